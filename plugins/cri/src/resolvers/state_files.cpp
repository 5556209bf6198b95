#include "state_files.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "../../../common/handles.hpp"
#include "../../../common/proc_reader.hpp"
#include "../resolver.hpp"

namespace blade::cri::state {

std::optional<std::string> read_text(const std::string &path) {
  return plugins::proc::detail::read_text(path);
}

std::optional<nlohmann::json> read_json(const std::string &path) {
  auto text = read_text(path);
  if (!text) return std::nullopt;
  auto doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

std::optional<pid_t> read_pid_file(const std::string &path) {
  auto text = read_text(path);
  if (!text) return std::nullopt;
  std::string_view s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.remove_suffix(1);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), pid);
  if (ec != std::errc() || end != s.data() + s.size() || pid <= 0) return std::nullopt;
  return pid;
}

std::optional<std::vector<std::string>> subdirs(const std::string &dir) {
  plugins::DirPtr d(::opendir(dir.c_str()));
  if (!d) return std::nullopt;
  std::vector<std::string> out;
  while (dirent *e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir = ::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> subdirs_or_unavailable(const std::string &dir,
                                                const std::string &absent_hint) {
  auto entries = subdirs(dir);
  if (entries) return std::move(*entries);
  int err = errno;
  if (err == ENOENT) throw Unavailable("no state in " + dir + " (" + absent_hint + ")");
  throw Unavailable(describe_errno(dir, err));
}

std::optional<std::uint64_t> live_start(pid_t pid, std::optional<std::uint64_t> recorded) {
  if (pid <= 0) return std::nullopt;
  auto p = plugins::proc::read_process(pid);
  if (!p || p->dead()) return std::nullopt;
  if (recorded && *recorded != p->stat.start_time) return std::nullopt;
  return p->stat.start_time;
}

std::string string_at(const nlohmann::json &j, const char *key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::uint64_t> uint_at(const nlohmann::json &j, const char *key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(it->get<std::int64_t>());
  if (it->is_string()) {
    const auto &s = it->get_ref<const std::string &>();
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return v;
  }
  return std::nullopt;
}

std::string describe_errno(const std::string &dir, int err) {
  return dir + ": " + std::strerror(err);
}

}  // namespace blade::cri::state
