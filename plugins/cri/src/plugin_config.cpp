#include "plugin_config.hpp"

#include <dlfcn.h>

#include <filesystem>

#include <nlohmann/json.hpp>

namespace blade::cri {

namespace {

// The directory of the object this function is linked into (cri.so).
std::string own_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void *>(&own_dir), &info) == 0 || !info.dli_fname) return {};
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

void take(const nlohmann::json &cfg, const char *key, std::string &into) {
  if (cfg.contains(key) && cfg[key].is_string()) into = cfg[key].get<std::string>();
}

}  // namespace

PluginConfig plugin_config(const sdk::Host &host) {
  PluginConfig out;
  const auto cfg = nlohmann::json::parse(host.config_json(), nullptr, false);
  if (cfg.is_object()) {
    take(cfg, "runc_root", out.roots.runc_root);
    take(cfg, "containerd_state", out.roots.containerd_state);
    take(cfg, "containerd_runc_root", out.roots.containerd_runc_root);
    take(cfg, "crio_storage", out.roots.crio_storage);
    take(cfg, "crio_runc_root", out.roots.crio_runc_root);
    take(cfg, "docker_socket", out.roots.docker_socket);
    take(cfg, "helper_path", out.helper_path);
  }
  if (out.helper_path.empty()) out.helper_path = own_dir() + "/blade-cri-helper";
  return out;
}

}  // namespace blade::cri
