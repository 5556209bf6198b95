#include "selector_checks.hpp"

#include <cctype>

#include <blade/plugin.hpp>

namespace blade::cri {

namespace {
bool alnum(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) != 0;
}
}  // namespace

void check_container_id(const std::string &id) {
  bool ok = !id.empty() && id.size() <= 1024 && alnum(id.front());
  for (char ch : id)
    ok = ok && (alnum(ch) || ch == '_' || ch == '.' || ch == '+' || ch == '-');
  if (!ok)
    throw sdk::InvalidArgument(
        "container-id '" + id +
        "' is not a container id (letters, digits and _.+-, starting with a letter or digit)");
}

void check_namespace(const std::string &ns) {
  bool ok = !ns.empty() && ns.size() <= 76 && alnum(ns.front()) && alnum(ns.back());
  for (std::size_t i = 0; ok && i < ns.size(); ++i) {
    char ch = ns[i];
    bool sep = ch == '.' || ch == '_' || ch == '-';
    ok = alnum(ch) || (sep && alnum(ns[i - 1]));
  }
  if (!ok)
    throw sdk::InvalidArgument(
        "container-namespace '" + ns +
        "' is not a containerd namespace (letters and digits, single . _ - between them)");
}

std::string socket_path(const std::string &flag, const std::string &value) {
  std::string path = value.starts_with("unix://") ? value.substr(7) : value;
  if (path.empty() || path.front() != '/')
    throw sdk::InvalidArgument(flag + " '" + value +
                               "' must be an absolute path (a unix:// prefix is accepted)");
  return path;
}

void check_runtime(std::string_view runtime) {
  if (runtime == "runc" || runtime == "containerd" || runtime == "cri-o" || runtime == "docker")
    return;
  throw sdk::InvalidArgument(
      "container-runtime must be one of runc, crun, containerd, cri-o, docker; got '" +
      std::string(runtime) + "'");
}

}  // namespace blade::cri
