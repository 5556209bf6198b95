// create, destroy, status, prepare, revoke: the experiment and preparation
// routes of docs/http-api.md, with ChaosBlade's command syntax.
#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/model/experiment.hpp"
#include "blade/core/model/timeout.hpp"
#include "blade/core/spec/ssh_channel.hpp"
#include "cli_error.hpp"
#include "command.hpp"
#include "output.hpp"
#include "plugin_probe.hpp"
#include "spec_help.hpp"
#include "suggest.hpp"

namespace blade::cli {
namespace {

namespace po = boost::program_options;

bool is_option(const std::string &word) {
  return word.size() > 1 && word[0] == '-';
}

// The value of `--name V` or `--name=V` among `args`, found before the full
// parse because the spec to parse with depends on it.
std::optional<std::string> peek_option(const std::vector<std::string> &args,
                                       const std::string &name) {
  const std::string flag = "--" + name;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag && i + 1 < args.size()) return args[i + 1];
    if (args[i].rfind(flag + "=", 0) == 0) return args[i].substr(flag.size() + 1);
  }
  return std::nullopt;
}

// Seconds, checked as bladed checks them (core's parse_timeout_seconds), so
// a bad value is a usage error before anything is sent.
nlohmann::json timeout_value(const std::string &text) {
  try {
    const auto seconds = parse_optional_timeout(text);
    return seconds ? nlohmann::json(*seconds) : nlohmann::json(nullptr);
  } catch (const Error &e) {
    throw UsageError(fmt::format("--timeout: '{}': {}", text, e.what()));
  }
}

void print_created(Context &ctx, const Experiment &e, const nlohmann::json &data) {
  // ChaosBlade's create answered the uid as its result.
  if (ctx.chaosblade()) return ctx.print_data(e.uid);
  if (ctx.json()) return ctx.print_data(data);
  ctx.out << e.uid << "\n";
  if (!ctx.table()) return;
  std::string summary = fmt::format("{} {} {}: {}, executor {}", e.scope, e.target, e.action,
                                    to_string(e.status), e.executor.empty() ? "-" : e.executor);
  if (e.deadline)
    summary += fmt::format(", destroyed automatically at {} UTC", short_time(e.deadline));
  ctx.out << summary << "\n";
}

std::vector<Experiment> experiments_of(const nlohmann::json &items) {
  std::vector<Experiment> out;
  for (const auto &item : items)
    out.push_back(experiment_from_json(item));
  return out;
}

// " (did you mean '--x'?)" for the first flag among `args` that is not in
// `known`.
std::string unknown_flag_hint(const std::vector<std::string> &args,
                              const std::vector<std::string> &known) {
  for (const auto &word : args) {
    if (word.rfind("--", 0) != 0) continue;
    const std::string name = word.substr(2, word.find('=') - 2);
    if (std::find(known.begin(), known.end(), name) == known.end())
      return did_you_mean(name, known, "--");
  }
  return "";
}

// --flag value and --flag=value, for commands without a spec to go by.
nlohmann::json loose_flags(const std::string &command, const std::vector<std::string> &args) {
  nlohmann::json flags = nlohmann::json::object();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string &word = args[i];
    if (word.rfind("--", 0) != 0 || word.size() < 3)
      throw UsageError(fmt::format("{}: unexpected argument '{}'", command, word));
    const auto eq = word.find('=');
    if (eq != std::string::npos) {
      flags[word.substr(2, eq - 2)] = word.substr(eq + 1);
    } else if (i + 1 < args.size() && !is_option(args[i + 1])) {
      flags[word.substr(2)] = args[++i];
    } else {
      flags[word.substr(2)] = "true";
    }
  }
  return flags;
}

// The live spec; for help only, when bladed cannot be reached, what the
// plugin files on this host would serve, saying so.
nlohmann::json specs_for(Context &ctx, bool help) {
  try {
    return ctx.api().get("/v1/specs");
  } catch (const Unreachable &e) {
    if (!help) throw;
    const auto &dir = ctx.settings.plugin_dir;
    ctx.err << fmt::format(
        "blade: {}; this help is from the plugin files in {} (BLADE_PLUGIN_DIR), not the daemon's "
        "live spec\n",
        e.what(), dir.string());
    return specs_of_plugin_dir(dir);
  }
}

// " (did you mean ...?)" for a target or action nothing serves in `scope`.
std::string spec_hint(const nlohmann::json &specs, const std::string &scope,
                      const std::string &target, const std::string &action) {
  std::vector<std::string> targets, actions;
  bool target_known = false;
  for (const auto &e : specs) {
    if (e.value("scope", "host") != scope) continue;
    const std::string t = e.value("target", "");
    targets.push_back(t);
    if (t != target) continue;
    target_known = true;
    actions.push_back(e.value("action", ""));
    for (const auto &alias : e.value("aliases", std::vector<std::string>{}))
      actions.push_back(alias);
  }
  if (!target_known) return did_you_mean(target, targets);
  return did_you_mean(action, actions);
}

// True when `word` is a scope other than host that some entry serves and no
// entry's target: `blade create cri ...` names the scope, not a target.
bool names_scope(const nlohmann::json &specs, const std::string &word) {
  bool scope = false;
  for (const auto &e : specs) {
    if (e.value("target", "") == word) return false;
    if (word != "host" && e.value("scope", "host") == word) scope = true;
  }
  return scope;
}

// ChaosBlade ran its executor in the caller's directory, so a relative
// path named a file there; bladed runs elsewhere and wants it absolute.
std::string absolute_path(const std::string &value) {
  if (value.empty() || value.front() == '/') return value;
  return std::filesystem::absolute(value).lexically_normal().string();
}

}  // namespace

int run_create(Context &ctx) {
  std::vector<std::string> args = ctx.args;
  const bool help = wants_help(args);
  // Fetched once, and only when needed (a usage error needs no daemon).
  std::optional<nlohmann::json> specs_cache;
  auto specs = [&]() -> const nlohmann::json & {
    if (!specs_cache) specs_cache = specs_for(ctx, help);
    return *specs_cache;
  };
  // ChaosBlade's `blade create cri cpu fullload ...`: a first word that is a
  // scope some plugin serves (and no target) is that scope.
  std::optional<std::string> scope_word;
  if (!args.empty() && !is_option(args[0]) && ((args.size() >= 2 && !is_option(args[1])) || help) &&
      names_scope(specs(), args[0])) {
    scope_word = args[0];
    args.erase(args.begin());
  }
  // The help lists one scope's targets: host's, or the one named first
  // (the same target may be served in several, e.g. cpu on the host and in
  // a container).
  auto scope_specs = [&] {
    nlohmann::json out = nlohmann::json::array();
    for (const auto &e : specs())
      if (e.value("scope", "host") == scope_word.value_or("host")) out.push_back(e);
    return out;
  };
  if (args.empty() || is_option(args[0])) {
    if (!help)
      throw UsageError("create: expected <target> <action> (blade create --help lists them)");
    ctx.out << targets_help(scope_specs());
    return kExitOk;
  }
  const std::string target = args[0];
  if (args.size() < 2 || is_option(args[1])) {
    if (!help)
      throw UsageError(fmt::format("create {}: expected an action after the target", target));
    ctx.out << targets_help(scope_specs(), target);
    return kExitOk;
  }
  const std::string action = args[1];
  const std::vector<std::string> rest(args.begin() + 2, args.end());
  const auto scope_option = peek_option(rest, "scope");
  if (scope_word && scope_option && *scope_option != *scope_word)
    throw UsageError(fmt::format("create: scope {} given twice, the second time as --scope {}",
                                 *scope_word, *scope_option));
  const std::string scope = scope_word.value_or(scope_option.value_or("host"));

  const auto entry = find_spec_entry(specs(), scope, target, action);
  if (!entry) {
    // A near miss is named here; anything else is the daemon's NOT_FOUND.
    const std::string hint = spec_hint(specs(), scope, target, action);
    if (help || !hint.empty())
      throw Failure(fmt::format("NOT_FOUND: nothing serves {} {} {}{} (blade spec lists what does)",
                                scope, target, action, hint));
  }
  if (help) {
    ctx.out << create_help(*entry);
    return kExitOk;
  }

  po::options_description options;
  options.add_options()                      //
      ("timeout", po::value<std::string>())  //
      ("async", po::bool_switch())           //
      ("dry-run", po::bool_switch())         //
      ("scope", po::value<std::string>())    //
      ("callback", po::value<std::string>());
  std::set<std::string> common = {"timeout", "async", "dry-run", "scope", "callback"};
  std::vector<std::string> flag_names;
  std::set<std::string> path_flags;
  if (entry) {
    for (const auto &f : entry_flags(*entry)) {
      if (common.count(f.name)) continue;
      flag_names.push_back(f.name);
      if (f.type == FlagType::Path) path_flags.insert(f.name);
      // A switch may still be written --force=false.
      if (f.no_args) {
        options.add_options()(f.name.c_str(), po::value<std::string>()->implicit_value("true"));
      } else {
        options.add_options()(f.name.c_str(), po::value<std::string>());
      }
    }
    // ChaosBlade's SSH flags go to bladed, which refuses them by name.
    for (const auto &f : ssh_channel_flags()) {
      const std::string name(f.name);
      if (std::find(flag_names.begin(), flag_names.end(), name) != flag_names.end()) continue;
      flag_names.push_back(name);
      if (f.no_args) {
        options.add_options()(name.c_str(), po::value<std::string>()->implicit_value("true"));
      } else {
        options.add_options()(name.c_str(), po::value<std::string>());
      }
    }
  }
  const std::string command =
      fmt::format("create {}{} {}", scope_word ? *scope_word + " " : "", target, action);
  po::variables_map vm;
  try {
    vm = parse_command_line(command, rest, options);
  } catch (const UsageError &e) {
    // Without a spec the daemon's NOT_FOUND says more than "unknown flag".
    if (entry) {
      std::vector<std::string> known(common.begin(), common.end());
      known.insert(known.end(), flag_names.begin(), flag_names.end());
      throw UsageError(
          fmt::format("{}{} (blade {} --help)", e.what(), unknown_flag_hint(rest, known), command));
    }
  }

  nlohmann::json body = {{"scope", scope}, {"target", target}, {"action", action}};
  nlohmann::json flags = nlohmann::json::object();
  for (const auto &name : flag_names) {
    if (!vm.count(name)) continue;
    const std::string value = vm[name].as<std::string>();
    // A relative path means the caller's directory only on the host; in a
    // container it is sent as given, and refused there as over the API.
    flags[name] = path_flags.count(name) && scope == "host" ? absolute_path(value) : value;
  }
  body["flags"] = flags;
  if (vm.count("timeout"))
    if (auto t = timeout_value(vm["timeout"].as<std::string>()); !t.is_null()) body["timeout"] = t;
  if (vm.count("callback")) body["callback"] = vm["callback"].as<std::string>();
  const bool dry_run = vm.count("dry-run") && vm["dry-run"].as<bool>();
  if (vm.count("async") && vm["async"].as<bool>()) body["async"] = true;
  if (dry_run) body["dry_run"] = true;

  const auto data = ctx.api().post("/v1/experiments", body);
  if (dry_run) {
    ctx.print_data(data);
    return kExitOk;
  }
  print_created(ctx, experiment_from_json(data), data);
  return kExitOk;
}

int run_destroy(Context &ctx) {
  po::options_description options;
  options.add_options()                                             //
      ("uid", po::value<std::vector<std::string>>()->multitoken())  //
      ("force", po::bool_switch())                                  //
      ("force-remove", po::bool_switch());                          // ChaosBlade's name of --force
  po::positional_options_description positional;
  positional.add("uid", -1);
  auto vm = parse_command_line("destroy", ctx.args, options, positional);
  if (!vm.count("uid")) throw UsageError("destroy: expected the uid of an experiment");
  const auto uids = vm["uid"].as<std::vector<std::string>>();
  const bool force = vm["force"].as<bool>() || vm["force-remove"].as<bool>();

  nlohmann::json destroyed = nlohmann::json::array();
  int code = kExitOk;
  for (const auto &uid : uids) {
    try {
      auto data =
          ctx.api().del("/v1/experiments/" + url_encode(uid) + (force ? "?force=true" : ""));
      auto e = experiment_from_json(data);
      destroyed.push_back(data);
      if (ctx.table()) {
        ctx.out << fmt::format("{} {} {}: {}{}\n", e.uid, e.target, e.action, to_string(e.status),
                               e.error.empty() ? "" : " (" + e.error + ")");
      } else if (!ctx.json()) {
        ctx.out << e.uid << "\t" << to_string(e.status) << "\n";
      }
    } catch (const ApiError &e) {
      if (uids.size() == 1) throw;
      ctx.err << fmt::format("blade: {}: {}: {}\n", uid, e.code(), e.what());
      code = kExitFailed;
    }
  }
  if (ctx.json()) ctx.print_data(uids.size() == 1 ? destroyed.at(0) : destroyed);
  return code;
}

namespace {

// The action as the store keeps it: an alias (`load`, `fl`) is resolved
// through the live spec to its action (`fullload`), as create resolves it.
std::string canonical_action(Context &ctx, const std::optional<std::string> &scope,
                             const std::optional<std::string> &target, const std::string &action) {
  std::set<std::string> found;
  for (const auto &entry : ctx.api().get("/v1/specs")) {
    if (scope && entry.value("scope", "host") != *scope) continue;
    if (target && entry.value("target", "") != *target) continue;
    const std::string name = entry.value("action", "");
    const auto aliases = entry.value("aliases", std::vector<std::string>{});
    if (name == action || std::find(aliases.begin(), aliases.end(), action) != aliases.end())
      found.insert(name);
  }
  // Ambiguous without a target (two targets' aliases alike), or unknown
  // (a plugin since removed): the word as given.
  return found.size() == 1 ? *found.begin() : action;
}

// "10" or ChaosBlade's "OFFSET,COUNT".
void parse_limit(const std::string &text, int &limit, std::optional<int> &offset) {
  auto number = [&](const std::string &part) {
    try {
      std::size_t used = 0;
      const int n = std::stoi(part, &used);
      if (used == part.size() && n >= 0) return n;
    } catch (const std::exception &) {
    }
    throw UsageError(fmt::format("status: --limit '{}' is not N or OFFSET,N", text));
  };
  const auto comma = text.find(',');
  if (comma == std::string::npos) {
    limit = number(text);
    return;
  }
  offset = number(text.substr(0, comma));
  limit = number(text.substr(comma + 1));
}

}  // namespace

int run_status(Context &ctx) {
  po::options_description options;
  options.add_options()                                            //
      ("uid", po::value<std::string>())                            //
      ("type", po::value<std::string>()->default_value("create"))  //
      ("status", po::value<std::string>())                         //
      ("target", po::value<std::string>())                         //
      ("action", po::value<std::string>())                         //
      ("scope", po::value<std::string>())                          //
      ("limit", po::value<std::string>())                          //
      ("offset", po::value<int>())                                 //
      ("after", po::value<std::string>())                          //
      ("asc", po::bool_switch())                                   //
      ("all", po::bool_switch());
  po::positional_options_description positional;
  positional.add("uid", 1);
  auto vm = parse_command_line("status", ctx.args, options, positional);
  std::string type = vm["type"].as<std::string>();
  // ChaosBlade's types: destroy lists experiments, revoke preparations.
  if (type == "destroy" || type == "c" || type == "d") type = "create";
  if (type == "revoke" || type == "p" || type == "r") type = "prepare";
  if (type != "create" && type != "prepare")
    throw UsageError(fmt::format("status: --type '{}' is not create or prepare", type));
  const bool experiments = type == "create";
  const std::string collection = experiments ? "/v1/experiments" : "/v1/preparations";

  if (vm.count("uid")) {
    auto data = ctx.api().get(collection + "/" + url_encode(vm["uid"].as<std::string>()));
    if (ctx.json()) return ctx.print_data(data), kExitOk;
    if (!experiments) {
      ctx.out << fmt::format("{}\t{}\t{}\t{}\n", data.value("uid", ""), data.value("type", ""),
                             data.value("status", ""), data.value("error", ""));
      return kExitOk;
    }
    auto e = experiment_from_json(data);
    if (ctx.table()) {
      print_experiment_detail(ctx.out, e);
    } else {
      experiment_table({e}).print(ctx.out, ctx.settings.output);
    }
    return kExitOk;
  }

  auto text = [&](const char *name) -> std::optional<std::string> {
    if (!vm.count(name)) return std::nullopt;
    return vm[name].as<std::string>();
  };
  std::vector<std::string> statuses;
  if (auto s = text("status")) {
    if (experiments) {
      auto status = parse_experiment_status(*s);
      if (!status)
        throw UsageError(fmt::format(
            "status: --status '{}' is not created, running, destroying, destroyed or failed "
            "(or ChaosBlade's Created, Success, Running, Error, Destroyed)",
            *s));
      statuses.emplace_back(to_string(*status));
    } else {
      auto status = parse_preparation_status(*s);
      if (!status)
        throw UsageError(fmt::format(
            "status: --status '{}' is not created, running, revoked or failed (or Error)", *s));
      statuses.emplace_back(to_string(*status));
    }
  } else if (experiments && !vm["all"].as<bool>()) {
    // What is in effect now, as a glance at `blade status` should show;
    // --all (or a --status) for the history.
    statuses = {"created", "running", "destroying"};
  }
  int limit = 50;
  std::optional<int> offset;
  if (auto l = text("limit")) parse_limit(*l, limit, offset);
  if (vm.count("offset")) offset = vm["offset"].as<int>();
  const std::optional<std::string> after = text("after");
  std::vector<std::string> query;
  std::optional<std::string> action = text("action");
  if (action && experiments)
    *action = canonical_action(ctx, text("scope"), text("target"), *action);
  const std::vector<std::pair<std::string, std::optional<std::string>>> filters = {
      {"target", text("target")}, {"action", action}, {"scope", text("scope")}};
  for (const auto &[name, value] : filters)
    if (value) query.push_back(fmt::format("{}={}", name, url_encode(*value)));
  if (vm["asc"].as<bool>()) query.emplace_back("order=asc");

  // One page per status, merged: a page of the union needs each status's
  // first offset+limit rows, sorted as the daemon sorts (created_at).
  const int want = offset.value_or(0) + limit;
  std::vector<nlohmann::json> items;
  std::int64_t total = 0;
  const std::vector<std::string> each = statuses.empty() ? std::vector<std::string>{""} : statuses;
  // A cursor belongs to one list of the daemon, not to the merged pages.
  if (after && (!experiments || each.size() > 1))
    throw UsageError("status: --after pages one list of experiments: give --status or --all");
  if (after && offset) throw UsageError("status: --after and --offset both say where to start");
  nlohmann::json next = nullptr;
  for (const auto &status : each) {
    std::vector<std::string> q = query;
    if (!status.empty()) q.push_back("status=" + status);
    if (each.size() == 1) {
      q.push_back(fmt::format("limit={}", limit));
      if (offset) q.push_back(fmt::format("offset={}", *offset));
      if (after) q.push_back("after=" + url_encode(*after));
    } else {
      q.push_back(fmt::format("limit={}", std::clamp(want, 1, 1000)));
    }
    auto page = ctx.api().get(collection + "?" + fmt::format("{}", fmt::join(q, "&")));
    total += page.value("total", std::int64_t{0});
    if (each.size() == 1 && page.contains("next")) next = page["next"];
    for (auto &item : page.at("items"))
      items.push_back(std::move(item));
  }
  if (each.size() > 1) {
    const bool asc = vm["asc"].as<bool>();
    std::stable_sort(items.begin(), items.end(), [asc](const auto &a, const auto &b) {
      const std::string ta = a.value("created_at", ""), tb = b.value("created_at", "");
      return asc ? ta < tb : ta > tb;
    });
    const auto from = std::min<std::size_t>(offset.value_or(0), items.size());
    const auto to = std::min<std::size_t>(from + static_cast<std::size_t>(limit), items.size());
    items = std::vector<nlohmann::json>(items.begin() + static_cast<std::ptrdiff_t>(from),
                                        items.begin() + static_cast<std::ptrdiff_t>(to));
  }
  nlohmann::json data = {{"items", items}, {"total", total}};
  if (experiments && each.size() == 1) data["next"] = next;
  // ChaosBlade's status answered the records as an array.
  if (ctx.chaosblade()) return ctx.print_data(items), kExitOk;
  if (ctx.json()) return ctx.print_data(data), kExitOk;

  if (!experiments) {
    Table table({"UID", "TYPE", "STATUS", "FLAGS", "ERROR"});
    for (const auto &p : items)
      table.add({p.value("uid", ""), p.value("type", ""), p.value("status", ""),
                 p.value("flags", nlohmann::json::object()).dump(), p.value("error", "")});
    table.print(ctx.out, ctx.settings.output);
  } else {
    experiment_table(experiments_of(items)).print(ctx.out, ctx.settings.output);
  }
  if (ctx.table()) {
    if (total > static_cast<std::int64_t>(items.size()))
      ctx.out << fmt::format("({} of {}; see --limit and --offset)\n", items.size(), total);
    if (next.is_string())
      ctx.out << fmt::format("(next page: --after {})\n", next.get<std::string>());
    if (experiments && statuses.size() > 1)
      ctx.out << "(active experiments; --all shows the history too)\n";
  }
  return kExitOk;
}

int run_prepare(Context &ctx) {
  if (ctx.args.empty() || is_option(ctx.args[0]))
    throw UsageError("prepare: expected a type, e.g. blade prepare jvm --pid 1234");
  const std::string type = ctx.args[0];
  const std::vector<std::string> rest(ctx.args.begin() + 1, ctx.args.end());
  nlohmann::json body = {{"type", type}, {"flags", loose_flags("prepare " + type, rest)}};
  auto data = ctx.api().post("/v1/preparations", body);
  if (ctx.json()) return ctx.print_data(data), kExitOk;
  ctx.out << data.value("uid", "") << "\n";
  if (ctx.table())
    ctx.out << fmt::format("prepare {}: {}\n", data.value("type", ""), data.value("status", ""));
  return kExitOk;
}

int run_revoke(Context &ctx) {
  po::options_description options;
  options.add_options()("uid", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("uid", 1);
  auto vm = parse_command_line("revoke", ctx.args, options, positional);
  if (!vm.count("uid")) throw UsageError("revoke: expected the uid of a preparation");
  auto data = ctx.api().del("/v1/preparations/" + url_encode(vm["uid"].as<std::string>()));
  if (ctx.json()) return ctx.print_data(data), kExitOk;
  ctx.out << fmt::format("{}\t{}\n", data.value("uid", ""), data.value("status", ""));
  return kExitOk;
}

}  // namespace blade::cli
