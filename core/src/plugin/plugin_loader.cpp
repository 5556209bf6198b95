#include "blade/core/plugin/plugin_loader.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <system_error>

#include <blade/plugin.h>
#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "plugin_library.hpp"

namespace blade {

std::vector<std::filesystem::path> plugin_search_dirs(
    const std::vector<std::filesystem::path> &configured, const char *env_plugin_path,
    const std::filesystem::path &install_dir) {
  std::vector<std::filesystem::path> dirs = configured;
  if (env_plugin_path) {
    std::stringstream in(env_plugin_path);
    std::string entry;
    while (std::getline(in, entry, ':'))
      if (!entry.empty()) dirs.emplace_back(entry);
  }
  if (!install_dir.empty()) dirs.push_back(install_dir);

  std::vector<std::filesystem::path> unique;
  std::set<std::filesystem::path> seen;
  for (const auto &d : dirs) {
    std::error_code ec;
    auto key = std::filesystem::weakly_canonical(d, ec);
    if (ec) key = d.lexically_normal();
    if (seen.insert(key).second) unique.push_back(d);
  }
  return unique;
}

std::vector<std::filesystem::path> discover_plugin_files(
    const std::vector<std::filesystem::path> &dirs) {
  std::vector<std::filesystem::path> files;
  for (const auto &dir : dirs) {
    std::error_code ec;
    std::vector<std::filesystem::path> here;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".so") here.push_back(it->path());
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
      log::warn("cannot read plugin directory", {{"dir", dir.string()}, {"error", ec.message()}});
    }
    std::sort(here.begin(), here.end());
    files.insert(files.end(), here.begin(), here.end());
  }
  return files;
}

std::shared_ptr<LoadedPlugin> load_plugin(const std::filesystem::path &path,
                                          const HostSettings &settings, const Registry *registry) {
  auto library = std::make_unique<PluginLibrary>(path);
  const blade_plugin_descriptor &d = library->descriptor();
  PluginSpec spec;
  try {
    spec = parse_spec_yaml(d.spec_yaml);
  } catch (const Error &e) {
    throw PluginRefused(fmt::format("invalid spec YAML: {}", e.what()), d.name);
  }
  if (registry) registry->check_conflicts(d.name, spec);
  PluginConfig config = plugin_config(d, settings);
  return make_loaded_plugin(std::move(library), std::move(spec), settings, std::move(config));
}

std::size_t load_plugins(const std::vector<std::filesystem::path> &files,
                         const HostSettings &settings, Registry &registry) {
  std::size_t loaded = 0;
  for (const auto &file : files) {
    try {
      auto plugin = load_plugin(file, settings, &registry);
      registry.add(plugin);
      ++loaded;
      log::info("plugin loaded", {{"plugin", plugin->name()},
                                  {"version", plugin->version()},
                                  {"abi", plugin->abi()},
                                  {"path", file.string()}});
    } catch (const PluginRefused &e) {
      PluginRecord r;
      r.name = e.name().empty() ? file.stem().string() : e.name();
      r.path = file;
      r.status = PluginRecord::Status::Refused;
      r.error = e.what();
      r.configured = settings.plugin_configs.count(r.name) > 0;
      log::error("plugin refused",
                 {{"plugin", r.name}, {"path", file.string()}, {"reason", r.error}});
      registry.add_refused(std::move(r));
    }
  }
  return loaded;
}

void warn_unmatched_plugin_configs(const HostSettings &settings, const Registry &registry) {
  std::set<std::string> known;
  for (const auto &record : registry.records())
    known.insert(record.name);
  for (const auto &[name, section] : settings.plugin_configs) {
    if (known.count(name)) continue;
    log::warn("config section for a plugin that is not installed; it applies once the plugin is",
              {{"plugin", name}, {"section", "plugins." + name}});
  }
}

}  // namespace blade
