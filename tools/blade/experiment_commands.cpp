// create, destroy, status, prepare, revoke: the experiment and preparation
// routes of API.md, with ChaosBlade's command syntax.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "blade/core/error.hpp"
#include "blade/core/experiment.hpp"
#include "blade/core/experiment_service.hpp"
#include "cli_error.hpp"
#include "command.hpp"
#include "output.hpp"
#include "spec_help.hpp"

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
    return parse_timeout_seconds(text);
  } catch (const Error &e) {
    throw UsageError(fmt::format("--timeout: '{}': {}", text, e.what()));
  }
}

void print_created(Context &ctx, const Experiment &e, const nlohmann::json &data) {
  if (ctx.json()) return print_json(ctx.out, data);
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

}  // namespace

int run_create(Context &ctx) {
  const auto &args = ctx.args;
  const bool help = wants_help(args);
  if (args.empty() || is_option(args[0])) {
    if (!help)
      throw UsageError("create: expected <target> <action> (blade create --help lists them)");
    ctx.out << targets_help(ctx.api().get("/v1/specs"));
    return kExitOk;
  }
  const std::string target = args[0];
  if (args.size() < 2 || is_option(args[1])) {
    if (!help)
      throw UsageError(fmt::format("create {}: expected an action after the target", target));
    ctx.out << targets_help(ctx.api().get("/v1/specs"), target);
    return kExitOk;
  }
  const std::string action = args[1];
  const std::vector<std::string> rest(args.begin() + 2, args.end());
  const std::string scope = peek_option(rest, "scope").value_or("host");

  const auto specs = ctx.api().get("/v1/specs");
  const auto entry = find_spec_entry(specs, scope, target, action);
  if (help) {
    if (!entry)
      throw Failure(fmt::format("NOT_FOUND: nothing serves {} {} {} (blade spec lists what does)",
                                scope, target, action));
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
  if (entry) {
    for (const auto &f : entry_flags(*entry)) {
      if (common.count(f.name)) continue;
      flag_names.push_back(f.name);
      // A switch may still be written --force=false.
      if (f.no_args) {
        options.add_options()(f.name.c_str(), po::value<std::string>()->implicit_value("true"));
      } else {
        options.add_options()(f.name.c_str(), po::value<std::string>());
      }
    }
  }
  const std::string command = fmt::format("create {} {}", target, action);
  po::variables_map vm;
  try {
    vm = parse_command_line(command, rest, options);
  } catch (const UsageError &e) {
    // Without a spec the daemon's NOT_FOUND says more than "unknown flag".
    if (entry) throw UsageError(fmt::format("{} (blade {} --help)", e.what(), command));
  }

  nlohmann::json body = {{"scope", scope}, {"target", target}, {"action", action}};
  nlohmann::json flags = nlohmann::json::object();
  for (const auto &name : flag_names)
    if (vm.count(name)) flags[name] = vm[name].as<std::string>();
  body["flags"] = flags;
  if (vm.count("timeout")) body["timeout"] = timeout_value(vm["timeout"].as<std::string>());
  if (vm.count("callback")) body["callback"] = vm["callback"].as<std::string>();
  const bool dry_run = vm.count("dry-run") && vm["dry-run"].as<bool>();
  if (vm.count("async") && vm["async"].as<bool>()) body["async"] = true;
  if (dry_run) body["dry_run"] = true;

  const auto data = ctx.api().post("/v1/experiments", body);
  if (dry_run) {
    print_json(ctx.out, data);
    return kExitOk;
  }
  print_created(ctx, experiment_from_json(data), data);
  return kExitOk;
}

int run_destroy(Context &ctx) {
  po::options_description options;
  options.add_options()                                             //
      ("uid", po::value<std::vector<std::string>>()->multitoken())  //
      ("force", po::bool_switch());
  po::positional_options_description positional;
  positional.add("uid", -1);
  auto vm = parse_command_line("destroy", ctx.args, options, positional);
  if (!vm.count("uid")) throw UsageError("destroy: expected the uid of an experiment");
  const auto uids = vm["uid"].as<std::vector<std::string>>();
  const bool force = vm["force"].as<bool>();

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
  if (ctx.json()) print_json(ctx.out, uids.size() == 1 ? destroyed.at(0) : destroyed);
  return code;
}

int run_status(Context &ctx) {
  po::options_description options;
  options.add_options()                                            //
      ("uid", po::value<std::string>())                            //
      ("type", po::value<std::string>()->default_value("create"))  //
      ("status", po::value<std::string>())                         //
      ("target", po::value<std::string>())                         //
      ("action", po::value<std::string>())                         //
      ("scope", po::value<std::string>())                          //
      ("limit", po::value<int>())                                  //
      ("offset", po::value<int>())                                 //
      ("asc", po::bool_switch());
  po::positional_options_description positional;
  positional.add("uid", 1);
  auto vm = parse_command_line("status", ctx.args, options, positional);
  const std::string type = vm["type"].as<std::string>();
  if (type != "create" && type != "prepare")
    throw UsageError(fmt::format("status: --type '{}' is not create or prepare", type));
  const std::string collection = type == "create" ? "/v1/experiments" : "/v1/preparations";

  if (vm.count("uid")) {
    auto data = ctx.api().get(collection + "/" + url_encode(vm["uid"].as<std::string>()));
    if (ctx.json()) return print_json(ctx.out, data), kExitOk;
    if (type == "prepare") {
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

  if (vm.count("status") && type == "create" &&
      !experiment_status_from_string(vm["status"].as<std::string>()))
    throw UsageError(fmt::format(
        "status: --status '{}' is not created, running, destroying, destroyed or failed",
        vm["status"].as<std::string>()));
  std::vector<std::string> query;
  for (const char *name : {"status", "target", "action", "scope"})
    if (vm.count(name))
      query.push_back(fmt::format("{}={}", name, url_encode(vm[name].as<std::string>())));
  for (const char *name : {"limit", "offset"})
    if (vm.count(name)) query.push_back(fmt::format("{}={}", name, vm[name].as<int>()));
  if (vm["asc"].as<bool>()) query.emplace_back("order=asc");
  const std::string path =
      collection + (query.empty() ? "" : "?" + fmt::format("{}", fmt::join(query, "&")));
  auto data = ctx.api().get(path);
  if (ctx.json()) return print_json(ctx.out, data), kExitOk;

  const auto &items = data.at("items");
  if (type == "prepare") {
    Table table({"UID", "TYPE", "STATUS", "FLAGS", "ERROR"});
    for (const auto &p : items)
      table.add({p.value("uid", ""), p.value("type", ""), p.value("status", ""),
                 p.value("flags", nlohmann::json::object()).dump(), p.value("error", "")});
    table.print(ctx.out, ctx.settings.output);
  } else {
    experiment_table(experiments_of(items)).print(ctx.out, ctx.settings.output);
  }
  if (ctx.table()) {
    const auto total = data.value("total", 0);
    if (total > static_cast<int>(items.size()))
      ctx.out << fmt::format("({} of {}; see --limit and --offset)\n", items.size(), total);
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
  if (ctx.json()) return print_json(ctx.out, data), kExitOk;
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
  if (ctx.json()) return print_json(ctx.out, data), kExitOk;
  ctx.out << fmt::format("{}\t{}\n", data.value("uid", ""), data.value("status", ""));
  return kExitOk;
}

}  // namespace blade::cli
