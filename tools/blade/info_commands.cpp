// plugins, spec, version: what the daemon can do.
#include <fmt/format.h>

#include "build_info.hpp"
#include "cli_error.hpp"
#include "command.hpp"
#include "output.hpp"
#include "spec_help.hpp"

namespace blade::cli {

namespace po = boost::program_options;

po::variables_map parse_command_line(const std::string &command,
                                     const std::vector<std::string> &args,
                                     const po::options_description &options,
                                     const po::positional_options_description &positional) {
  po::variables_map vm;
  try {
    const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_guessing;
    po::store(
        po::command_line_parser(args).options(options).positional(positional).style(style).run(),
        vm);
    po::notify(vm);
  } catch (const po::error &e) {
    throw UsageError(fmt::format("{}: {}", command, e.what()));
  }
  return vm;
}

bool wants_help(const std::vector<std::string> &args) {
  for (const auto &a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

int run_plugins(Context &ctx) {
  po::options_description none;
  parse_command_line("plugins", ctx.args, none);
  auto data = ctx.api().get("/v1/plugins");
  if (ctx.json()) return ctx.print_data(data), kExitOk;
  Table table({"NAME", "VERSION", "ABI", "STATUS", "TARGETS", "PATH", "ERROR"});
  for (const auto &p : data) {
    table.add({p.value("name", ""), p.value("version", ""), p.value("abi", ""),
               p.value("status", ""),
               fmt::format("{}", fmt::join(p.value("targets", std::vector<std::string>{}), ", ")),
               p.value("path", ""), p.value("error", "")});
  }
  table.print(ctx.out, ctx.settings.output);
  return kExitOk;
}

int run_spec(Context &ctx) {
  po::options_description options;
  options.add_options()                     //
      ("target", po::value<std::string>())  //
      ("action", po::value<std::string>())  //
      ("scope", po::value<std::string>()->default_value("host"));
  po::positional_options_description positional;
  positional.add("target", 1).add("action", 1);
  auto vm = parse_command_line("spec", ctx.args, options, positional);
  const std::string scope = vm["scope"].as<std::string>();
  auto specs = ctx.api().get("/v1/specs");

  if (vm.count("target") && vm.count("action")) {
    auto entry = find_spec_entry(specs, scope, vm["target"].as<std::string>(),
                                 vm["action"].as<std::string>());
    if (!entry)
      throw Failure(fmt::format("NOT_FOUND: nothing serves {} {} {}", scope,
                                vm["target"].as<std::string>(), vm["action"].as<std::string>()));
    if (ctx.json()) return ctx.print_data(*entry), kExitOk;
    ctx.out << create_help(*entry);
    return kExitOk;
  }
  nlohmann::json matching = nlohmann::json::array();
  for (const auto &e : specs)
    if (!vm.count("target") || e.value("target", "") == vm["target"].as<std::string>())
      matching.push_back(e);
  if (vm.count("target") && matching.empty())
    throw Failure(
        fmt::format("NOT_FOUND: nothing serves target '{}'", vm["target"].as<std::string>()));
  if (ctx.json()) return ctx.print_data(matching), kExitOk;
  Table table({"SCOPE", "TARGET", "ACTION", "ALIASES", "EXECUTOR", "DESCRIPTION"});
  for (const auto &e : matching) {
    table.add({e.value("scope", ""), e.value("target", ""), e.value("action", ""),
               fmt::format("{}", fmt::join(e.value("aliases", std::vector<std::string>{}), ",")),
               e.value("executor", ""), e.value("short_desc", "")});
  }
  table.print(ctx.out, ctx.settings.output);
  return kExitOk;
}

int run_version(Context &ctx) {
  po::options_description none;
  parse_command_line("version", ctx.args, none);
  ctx.out << "blade " << BLADE_VERSION << "\n";
  try {
    auto health = ctx.api().get("/v1/health");
    ctx.out << fmt::format("bladed {} at {}\n", health.value("version", "?"), ctx.api().endpoint());
  } catch (const std::exception &e) {
    ctx.out << fmt::format("bladed: {}\n", e.what());
  }
  return kExitOk;
}

}  // namespace blade::cli
