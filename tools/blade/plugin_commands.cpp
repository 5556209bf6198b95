// blade plugin install | list | info | verify | remove: the plugin files of
// the daemon's host, checked before they are installed and recorded with
// their sha256 afterwards.
#include <stdlib.h>

#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "blade/core/model/experiment.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "blade/core/plugin/plugin_loader.hpp"
#include "cli_error.hpp"
#include "command.hpp"
#include "output.hpp"
#include "plugin_manifest.hpp"
#include "plugin_probe.hpp"

namespace blade::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

constexpr const char *kPluginUsage = R"(Usage: blade plugin COMMAND [--plugin-dir DIR]

  install <file.so> [--no-reload]   check the plugin in a child process, install it
                                    atomically (mode 0644, root-owned), record its
                                    sha256 in the manifest, ask bladed to reload
  list                              plugins installed by blade (and other .so files)
  info <name>                       one plugin: manifest entry, daemon status
  verify [<name>]                   installed files against the manifest and the ABI
  remove <name> [--force] [--no-reload]
                                    refuses while the plugin has active experiments;
                                    --force destroys them first

--plugin-dir defaults to BLADE_PLUGIN_DIR, plugin-dir: in the config file, or
the directory bladed loads installed plugins from.
)";

using RouteKey = std::tuple<std::string, std::string, std::string>;  // scope, target, name

// The staging copy lives in a private temp dir, so the loader's checks
// (regular file, not group/world-writable, owned by us) see exactly the
// bytes that will be installed, whatever the mode of the user's file.
class StagingDir {
 public:
  StagingDir() {
    std::string tmpl = (fs::temp_directory_path() / "blade-plugin-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw Failure("cannot make a temporary directory");
    path_ = tmpl;
  }
  ~StagingDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  StagingDir(const StagingDir &) = delete;
  StagingDir &operator=(const StagingDir &) = delete;
  const fs::path &path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path &file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw Failure(fmt::format("cannot install {}: not a regular file", file.string()));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Failure(fmt::format("cannot read {}", file.string()));
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

struct PluginDirOptions {
  fs::path dir;
  po::variables_map vm;
};

PluginDirOptions parse_plugin_command(Context &ctx, const std::string &command,
                                      po::options_description &options,
                                      const po::positional_options_description &positional = {}) {
  options.add_options()("plugin-dir", po::value<std::string>());
  std::vector<std::string> args(ctx.args.begin() + 1, ctx.args.end());
  PluginDirOptions out;
  out.vm = parse_command_line("plugin " + command, args, options, positional);
  out.dir = out.vm.count("plugin-dir") ? fs::path(out.vm["plugin-dir"].as<std::string>())
                                       : ctx.settings.plugin_dir;
  return out;
}

// The experiments that may still have a fault of `plugin` in effect.
std::vector<Experiment> active_experiments(ApiClient &api, const std::string &plugin) {
  std::vector<Experiment> out;
  for (const char *status : {"created", "running", "destroying"}) {
    auto data = api.get(fmt::format("/v1/experiments?status={}&limit=1000", status));
    for (const auto &item : data.at("items")) {
      auto e = experiment_from_json(item);
      if (e.executor == executor_name(ExecutorKind::InProcess, plugin))
        out.push_back(std::move(e));
    }
  }
  return out;
}

std::string route_text(const RouteKey &k) {
  return fmt::format("{} {} {}", std::get<0>(k), std::get<1>(k), std::get<2>(k));
}

// A plugin change with no daemon to tell: it is picked up later.
void note_unreachable(Context &ctx, const Unreachable &e) {
  ctx.err << fmt::format(
      "blade: note: {}; bladed picks the change up at its next start, or on "
      "SIGHUP or POST /v1/plugins/reload\n",
      e.what());
}

// Refuses a plugin whose name or (scope, target, action/alias) another
// plugin already has: among the files of the plugin dir, and in the daemon.
// False when the daemon could not be reached (nothing to ask it to reload).
bool check_clashes(const ProbedPlugin &candidate, const fs::path &dir, const fs::path &dest,
                   Context &ctx) {
  std::set<RouteKey> wanted;
  for (const auto &r : candidate.routes)
    wanted.emplace(r.scope, r.target, r.name);

  for (const auto &file : discover_plugin_files({dir})) {
    if (file.filename() == dest.filename()) continue;  // the file an upgrade replaces
    auto other = probe_plugin(file);
    if (!other.loaded) continue;  // bladed refuses it anyway
    if (other.name == candidate.name)
      throw Failure(fmt::format("plugin refused: a plugin named '{}' is already installed as {}",
                                candidate.name, file.string()));
    for (const auto &r : other.routes) {
      if (wanted.count({r.scope, r.target, r.name}))
        throw Failure(fmt::format("plugin refused: {} {} {} is already served by plugin '{}' ({})",
                                  r.scope, r.target, r.name, other.name, file.string()));
    }
  }

  // The daemon may load plugins from other dirs too.
  try {
    auto specs = ctx.api().get("/v1/specs");
    for (const auto &e : specs) {
      const auto executor = parse_executor_name(e.value("executor", ""));
      if (!executor || executor->kind != ExecutorKind::InProcess ||
          executor->id == candidate.name)
        continue;
      std::vector<std::string> names = e.value("aliases", std::vector<std::string>{});
      names.push_back(e.value("action", ""));
      for (const auto &name : names) {
        RouteKey key{e.value("scope", ""), e.value("target", ""), name};
        if (wanted.count(key))
          throw Failure(fmt::format("plugin refused: {} is already served by plugin '{}' in bladed",
                                    route_text(key), executor->id));
      }
    }
    for (const auto &p : ctx.api().get("/v1/plugins")) {
      if (p.value("name", "") != candidate.name || p.value("status", "") != "loaded") continue;
      const fs::path loaded_from = p.value("path", "");
      if (loaded_from.parent_path() != dest.parent_path())
        throw Failure(
            fmt::format("plugin refused: bladed already has a plugin named '{}' loaded from {}",
                        candidate.name, loaded_from.string()));
    }
  } catch (const Unreachable &e) {
    note_unreachable(ctx, e);
    return false;
  } catch (const ApiError &e) {
    ctx.err << fmt::format("blade: note: cannot ask bladed about its plugins: {}: {}\n", e.code(),
                           e.what());
  }
  return true;
}

int reload_after(Context &ctx, const std::string &name, const fs::path &dest, bool installing) {
  nlohmann::json report;
  try {
    report = ctx.api().post("/v1/plugins/reload", nlohmann::json::object());
  } catch (const Unreachable &e) {
    note_unreachable(ctx, e);
    return kExitOk;
  }
  auto has = [&](const char *list, const std::string &value) {
    for (const auto &item : report.value(list, nlohmann::json::array())) {
      if ((item.is_string() && item == value) ||
          (item.is_object() && item.value("name", "") == value))
        return true;
    }
    return false;
  };
  for (const auto &r : report.value("refused", nlohmann::json::array())) {
    if (fs::path(r.value("path", "")) == dest)
      throw Failure(fmt::format("{} is installed, but bladed refused it: {}", dest.string(),
                                r.value("error", "")));
  }
  if (has("kept", name)) {
    ctx.err << fmt::format(
        "blade: note: bladed keeps the old '{}' loaded while experiments use "
        "it; a reload after they end applies the change\n",
        name);
  } else if (installing && has("loaded", name)) {
    if (!ctx.json()) ctx.out << fmt::format("bladed loaded {}\n", name);
  } else if (!installing && has("unloaded", name)) {
    if (!ctx.json()) ctx.out << fmt::format("bladed unloaded {}\n", name);
  } else if (installing) {
    bool running = false;
    for (const auto &p : ctx.api().get("/v1/plugins"))
      running |= p.value("name", "") == name && p.value("status", "") == "loaded" &&
                 fs::path(p.value("path", "")) == dest;
    if (!running)
      ctx.err << fmt::format(
          "blade: note: bladed did not load {}: is {} among its plugin "
          "directories?\n",
          name, dest.parent_path().string());
  }
  return kExitOk;
}

int plugin_install(Context &ctx) {
  po::options_description options;
  options.add_options()                   //
      ("file", po::value<std::string>())  //
      ("no-reload", po::bool_switch());
  po::positional_options_description positional;
  positional.add("file", 1);
  auto [dir, vm] = parse_plugin_command(ctx, "install", options, positional);
  if (!vm.count("file")) throw UsageError("plugin install: expected a plugin file (.so)");
  const fs::path source = fs::absolute(vm["file"].as<std::string>());

  const std::string bytes = read_file(source);
  if (bytes.size() < 4 || bytes.compare(0, 4,
                                        "\x7f"
                                        "ELF") != 0)
    throw Failure(fmt::format("plugin refused: {} is not an ELF shared object", source.string()));
  StagingDir staging;
  const fs::path staged = staging.path() / source.filename();
  {
    std::ofstream out(staged, std::ios::binary);
    out << bytes;
    if (!out) throw Failure(fmt::format("cannot write {}", staged.string()));
  }
  fs::permissions(staged, fs::perms::owner_read | fs::perms::owner_write);
  auto candidate = probe_plugin(staged);
  if (!candidate.loaded) throw Failure("plugin refused: " + candidate.error);

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Failure(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  const fs::path dest = dir / (candidate.name + ".so");
  bool daemon_reachable = true;

  ManifestEntry entry;
  {
    DirLock lock(dir);
    daemon_reachable = check_clashes(candidate, dir, dest, ctx);
    write_file_atomically(dir, dest.filename().string(), bytes, 0644);
    entry.name = candidate.name;
    entry.version = candidate.version;
    entry.abi = candidate.abi;
    entry.file = dest.filename().string();
    entry.sha256 = sha256_hex(bytes);  // what was just written
    entry.size = bytes.size();
    entry.installed_at = format_time(std::chrono::system_clock::now());
    entry.source = source.string();
    entry.targets = candidate.targets;
    auto manifest = Manifest::load(dir);
    manifest.plugins[entry.name] = entry;
    manifest.save(dir);
  }
  if (ctx.json()) {
    ctx.print_data(to_json(entry));
  } else {
    ctx.out << fmt::format("installed {} {} (ABI {}) as {}\nsha256 {}\n", entry.name, entry.version,
                           entry.abi, dest.string(), entry.sha256);
  }
  if (vm["no-reload"].as<bool>() || !daemon_reachable) return kExitOk;
  return reload_after(ctx, entry.name, dest, true);
}

int plugin_list(Context &ctx) {
  po::options_description options;
  auto [dir, vm] = parse_plugin_command(ctx, "list", options);
  auto manifest = Manifest::load(dir);
  std::set<std::string> recorded;
  for (const auto &[name, e] : manifest.plugins)
    recorded.insert(e.file);
  std::vector<fs::path> others;
  for (const auto &file : discover_plugin_files({dir}))
    if (!recorded.count(file.filename().string())) others.push_back(file);

  if (ctx.json()) {
    nlohmann::json plugins = nlohmann::json::array();
    for (const auto &[name, e] : manifest.plugins)
      plugins.push_back(to_json(e));
    nlohmann::json unmanaged = nlohmann::json::array();
    for (const auto &f : others)
      unmanaged.push_back(f.string());
    ctx.print_data({{"plugin_dir", dir.string()}, {"plugins", plugins}, {"unmanaged", unmanaged}});
    return kExitOk;
  }
  Table table({"NAME", "VERSION", "ABI", "FILE", "INSTALLED", "SHA256"});
  for (const auto &[name, e] : manifest.plugins)
    table.add({e.name, e.version, e.abi, e.file, e.installed_at, e.sha256.substr(0, 16)});
  for (const auto &f : others)
    table.add({f.stem().string(), "", "", f.filename().string(), "(not installed by blade)", ""});
  table.print(ctx.out, ctx.settings.output);
  return kExitOk;
}

const ManifestEntry &find_entry(const Manifest &manifest, const std::string &name,
                                const fs::path &dir) {
  auto it = manifest.plugins.find(name);
  if (it == manifest.plugins.end())
    throw Failure(
        fmt::format("NOT_FOUND: no plugin '{}' installed by blade in {}", name, dir.string()));
  return it->second;
}

int plugin_info(Context &ctx) {
  po::options_description options;
  options.add_options()("name", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("name", 1);
  auto [dir, vm] = parse_plugin_command(ctx, "info", options, positional);
  if (!vm.count("name")) throw UsageError("plugin info: expected a plugin name");
  const auto entry = find_entry(Manifest::load(dir), vm["name"].as<std::string>(), dir);

  nlohmann::json daemon = nullptr;
  try {
    std::string status = "not loaded", error;
    for (const auto &p : ctx.api().get("/v1/plugins")) {
      if (p.value("name", "") != entry.name) continue;
      status = p.value("status", "");
      error = p.value("error", "");
    }
    daemon = {{"status", status},
              {"error", error},
              {"active_experiments", active_experiments(ctx.api(), entry.name).size()}};
  } catch (const std::exception &e) {
    daemon = {{"status", "unknown"}, {"error", e.what()}};
  }
  if (ctx.json()) {
    auto j = to_json(entry);
    j["path"] = (dir / entry.file).string();
    j["daemon"] = daemon;
    ctx.print_data(j);
    return kExitOk;
  }
  auto row = [&](const char *key, const std::string &value) {
    ctx.out << fmt::format("{:<13} {}\n", key, value);
  };
  row("name:", entry.name);
  row("version:", entry.version);
  row("abi:", entry.abi);
  row("path:", (dir / entry.file).string());
  row("sha256:", entry.sha256);
  row("size:", std::to_string(entry.size));
  row("installed:", entry.installed_at);
  row("source:", entry.source);
  row("targets:", fmt::format("{}", fmt::join(entry.targets, ", ")));
  std::string state = daemon.value("status", "");
  if (!daemon.value("error", "").empty()) state += " (" + daemon.value("error", "") + ")";
  row("bladed:", state);
  if (daemon.contains("active_experiments"))
    row("active:", std::to_string(daemon["active_experiments"].get<std::size_t>()));
  return kExitOk;
}

// Why an installed plugin no longer matches its manifest entry ("" if it does).
std::string verify_entry(const fs::path &dir, const ManifestEntry &e) {
  const fs::path file = dir / e.file;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return fmt::format("{} is missing", file.string());
  const auto size = fs::file_size(file, ec);
  const auto sha = sha256_hex(read_file(file));
  if (sha != e.sha256 || size != e.size)
    return fmt::format("{} was modified: sha256 {} (size {}), the manifest says {} (size {})",
                       file.string(), sha, size, e.sha256, e.size);
  auto probed = probe_plugin(file);
  if (!probed.loaded) return fmt::format("{} no longer loads: {}", file.string(), probed.error);
  if (probed.name != e.name || probed.abi != e.abi)
    return fmt::format("{} is now plugin '{}' ABI {}, the manifest says '{}' ABI {}", file.string(),
                       probed.name, probed.abi, e.name, e.abi);
  return "";
}

int plugin_verify(Context &ctx) {
  po::options_description options;
  options.add_options()("name", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("name", 1);
  auto [dir, vm] = parse_plugin_command(ctx, "verify", options, positional);
  auto manifest = Manifest::load(dir);
  std::vector<ManifestEntry> entries;
  if (vm.count("name")) {
    entries.push_back(find_entry(manifest, vm["name"].as<std::string>(), dir));
  } else {
    for (const auto &[name, e] : manifest.plugins)
      entries.push_back(e);
  }
  int code = kExitOk;
  nlohmann::json results = nlohmann::json::array();
  for (const auto &e : entries) {
    const std::string problem = verify_entry(dir, e);
    if (!problem.empty()) code = kExitFailed;
    results.push_back({{"name", e.name}, {"ok", problem.empty()}, {"problem", problem}});
    if (ctx.json()) continue;
    if (problem.empty()) {
      ctx.out << fmt::format("ok      {} {} (ABI {})\n", e.name, e.version, e.abi);
    } else {
      ctx.out << fmt::format("FAILED  {}: {}\n", e.name, problem);
    }
  }
  if (ctx.json()) ctx.print_data(results);
  if (!vm.count("name")) {
    std::set<std::string> recorded;
    for (const auto &e : entries)
      recorded.insert(e.file);
    for (const auto &file : discover_plugin_files({dir}))
      if (!recorded.count(file.filename().string()))
        ctx.err << fmt::format("blade: note: {} is not in the manifest (not installed by blade)\n",
                               file.string());
  }
  if (code != kExitOk) ctx.err << "blade: verify found installed plugins that do not match\n";
  return code;
}

int plugin_remove(Context &ctx) {
  po::options_description options;
  options.add_options()                   //
      ("name", po::value<std::string>())  //
      ("force", po::bool_switch())        //
      ("no-reload", po::bool_switch());
  po::positional_options_description positional;
  positional.add("name", 1);
  auto [dir, vm] = parse_plugin_command(ctx, "remove", options, positional);
  if (!vm.count("name")) throw UsageError("plugin remove: expected a plugin name");
  const bool force = vm["force"].as<bool>();
  const auto entry = find_entry(Manifest::load(dir), vm["name"].as<std::string>(), dir);

  // Removing the code of a fault in effect would leave it with nothing to
  // roll it back; bladed's recovery at start needs the plugin too.
  bool reachable = true;
  try {
    auto active = active_experiments(ctx.api(), entry.name);
    if (!active.empty() && !force) {
      std::vector<std::string> uids;
      for (const auto &e : active)
        uids.push_back(e.uid);
      throw Failure(fmt::format(
          "FAILED_PRECONDITION: plugin '{}' has {} active experiment(s): {}; destroy them or use "
          "--force",
          entry.name, active.size(), fmt::join(uids, ", ")));
    }
    for (const auto &e : active) {
      auto data = ctx.api().del("/v1/experiments/" + e.uid);
      if (!ctx.json())
        ctx.out << fmt::format("destroyed {} ({} {}): {}\n", e.uid, e.target, e.action,
                               data.value("status", ""));
    }
  } catch (const Unreachable &e) {
    if (!force)
      throw Failure(
          fmt::format("{}; cannot check '{}' for active experiments (--force removes "
                      "it anyway)",
                      e.what(), entry.name));
    reachable = false;
  }
  {
    DirLock lock(dir);
    auto manifest = Manifest::load(dir);
    std::error_code ec;
    fs::remove(dir / entry.file, ec);
    if (ec)
      throw Failure(fmt::format("cannot remove {}: {}", (dir / entry.file).string(), ec.message()));
    fsync_dir(dir);
    manifest.plugins.erase(entry.name);
    manifest.save(dir);
  }
  if (ctx.json()) {
    ctx.print_data({{"removed", to_json(entry)}});
  } else {
    ctx.out << fmt::format("removed {} ({})\n", entry.name, (dir / entry.file).string());
  }
  if (vm["no-reload"].as<bool>() || !reachable) return kExitOk;
  return reload_after(ctx, entry.name, dir / entry.file, false);
}

}  // namespace

int run_plugin(Context &ctx) {
  if (ctx.args.empty()) {
    ctx.err << kPluginUsage;
    return kExitUsage;
  }
  if (ctx.args[0] == "help" || wants_help(ctx.args)) {
    ctx.out << kPluginUsage;
    return kExitOk;
  }
  const std::string sub = ctx.args[0];
  if (sub == "install") return plugin_install(ctx);
  if (sub == "list") return plugin_list(ctx);
  if (sub == "info") return plugin_info(ctx);
  if (sub == "verify") return plugin_verify(ctx);
  if (sub == "remove") return plugin_remove(ctx);
  throw UsageError(
      fmt::format("plugin: unknown command '{}' (install, list, info, verify, remove)", sub));
}

}  // namespace blade::cli
