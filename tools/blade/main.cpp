// blade: the command line of the Blade daemon. ChaosBlade's syntax
// (`blade create cpu load --cpu-percent 60`) over bladed's HTTP API, and the
// tooling that installs plugins. Exit codes: 0 done, 1 the operation failed,
// 2 the command line is wrong.
#include <unistd.h>

#include <functional>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include "build_info.hpp"
#include "cli_error.hpp"
#include "command.hpp"
#include "output.hpp"

namespace {

namespace po = boost::program_options;
using namespace blade::cli;

constexpr const char *kUsage = R"(Usage: blade [GLOBAL OPTIONS] COMMAND [ARGS]

Experiments:
  create <target> <action> [--FLAG VALUE]... [--timeout N|5m] [--async] [--dry-run]
                          inject a fault; prints its uid (--help: flags from the live spec)
  destroy <uid>... [--force]
                          roll a fault back
  status [<uid>] [--status S] [--target T] [--action A] [--limit N] [--offset N] [--asc]
         [--type create|prepare]
                          one experiment, or a list
  prepare <type> [--FLAG VALUE]...   e.g. prepare jvm --pid 1234
  revoke <uid>            undo a preparation

Daemon:
  plugins                 plugins loaded and refused (with the reason)
  spec [<target> [<action>]]
                          what the daemon serves, and each action's flags
  version                 blade's and bladed's versions

Plugin files (run on the daemon's host):
  plugin install <file.so> [--plugin-dir DIR] [--no-reload]
  plugin list | info <name> | verify [<name>] | remove <name> [--force]

Global options:
  -e, --endpoint URL      bladed's address (env BLADE_ENDPOINT; default http://127.0.0.1:9526)
  --token TOKEN           API token (env BLADE_API_TOKEN; or token: in the config file)
  -o, --output MODE       table | json | plain (default: table on a terminal, else plain)
  --config FILE           config file (env BLADE_CONFIG; default ~/.config/blade/config.yaml)
  --ca-cert FILE          CA certificate to trust for an https endpoint
  --insecure              https without verifying the certificate
  --version               print blade's version

Exit codes: 0 success, 1 the operation failed, 2 usage error.
)";

bool stdout_is_terminal() {
  return ::isatty(STDOUT_FILENO) == 1;
}

struct Invocation {
  GlobalOptions global;
  std::vector<std::string> words;  // the command and its arguments
  bool version = false;
};

// Global options may stand anywhere; everything else, in order, is the
// command's (its flags are parsed by the command, against the live spec
// for create).
Invocation parse_invocation(int argc, char **argv) {
  po::options_description global;
  global.add_options()                          //
      ("endpoint,e", po::value<std::string>())  //
      ("token", po::value<std::string>())       //
      ("output,o", po::value<std::string>())    //
      ("config", po::value<std::string>())      //
      ("ca-cert", po::value<std::string>())     //
      ("insecure", po::bool_switch())           //
      ("version", po::bool_switch());
  po::options_description words;
  words.add_options()("words", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(global).add(words);
  po::positional_options_description positional;
  positional.add("words", -1);
  Invocation inv;
  po::variables_map vm;
  try {
    const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_guessing;
    auto parsed = po::command_line_parser(argc, argv)
                      .options(all)
                      .positional(positional)
                      .style(style)
                      .allow_unregistered()
                      .run();
    // The command's words in their order: positionals and the options this
    // parse does not know (the command's own) interleave.
    for (auto &option : parsed.options) {
      if (option.unregistered) {
        inv.words.insert(inv.words.end(), option.original_tokens.begin(),
                         option.original_tokens.end());
      } else if (option.string_key == "words") {
        inv.words.insert(inv.words.end(), option.value.begin(), option.value.end());
        option.value.clear();
      }
    }
    std::erase_if(parsed.options, [](const po::option &o) { return o.string_key == "words"; });
    po::store(parsed, vm);
  } catch (const po::error &e) {
    throw UsageError(e.what());
  }
  auto text = [&](const char *name) -> std::optional<std::string> {
    if (!vm.count(name)) return std::nullopt;
    return vm[name].as<std::string>();
  };
  inv.global.endpoint = text("endpoint");
  inv.global.token = text("token");
  inv.global.output = text("output");
  inv.global.config = text("config");
  inv.global.ca_cert = text("ca-cert");
  inv.global.insecure = vm["insecure"].as<bool>();
  inv.version = vm["version"].as<bool>();
  return inv;
}

const std::map<std::string, std::function<int(Context &)>> &commands() {
  static const std::map<std::string, std::function<int(Context &)>> table = {
      {"create", run_create},   {"destroy", run_destroy}, {"status", run_status},
      {"prepare", run_prepare}, {"revoke", run_revoke},   {"plugins", run_plugins},
      {"spec", run_spec},       {"version", run_version}, {"plugin", run_plugin},
  };
  return table;
}

// ChaosBlade's short names.
std::string canonical_command(const std::string &word) {
  if (word == "c") return "create";
  if (word == "d") return "destroy";
  if (word == "s") return "status";
  if (word == "p") return "prepare";
  if (word == "r") return "revoke";
  return word;
}

std::string hint_for(const ApiError &e) {
  if (e.code() == "UNAUTHENTICATED")
    return " (give a valid token: --token, BLADE_API_TOKEN or token: in the config file)";
  if (e.code() == "PERMISSION_DENIED") return " (this token's role may not do this)";
  return "";
}

int run(int argc, char **argv, bool &json_mode) {
  auto inv = parse_invocation(argc, argv);
  if (inv.version) {
    std::cout << "blade " << BLADE_VERSION << "\n";
    return kExitOk;
  }
  if (inv.words.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string name = canonical_command(inv.words.front());
  if (name == "help" || name == "--help" || name == "-h") {
    std::cout << kUsage;
    return kExitOk;
  }
  auto it = commands().find(name);
  if (it == commands().end())
    throw UsageError(fmt::format("unknown command '{}' (blade --help lists them)", name));
  Context ctx;
  ctx.settings = resolve_settings(inv.global, stdout_is_terminal());
  json_mode = ctx.json();
  ctx.args.assign(inv.words.begin() + 1, inv.words.end());
  // create builds its help from the spec; the others have this one.
  if (name != "create" && name != "plugin" && wants_help(ctx.args)) {
    std::cout << kUsage;
    return kExitOk;
  }
  return it->second(ctx);
}

}  // namespace

int main(int argc, char **argv) {
  bool json_mode = false;
  try {
    return run(argc, argv, json_mode);
  } catch (const UsageError &e) {
    std::cerr << "blade: " << e.what() << "\n";
    return kExitUsage;
  } catch (const ApiError &e) {
    // A failed experiment comes back with the error; scripts get it too.
    if (json_mode && !e.data().is_null()) print_json(std::cout, e.data());
    std::cerr << fmt::format("blade: {}: {}{}\n", e.code(), e.what(), hint_for(e));
    return kExitFailed;
  } catch (const std::exception &e) {
    std::cerr << "blade: " << e.what() << "\n";
    return kExitFailed;
  } catch (...) {
    std::cerr << "blade: unexpected failure\n";
    return kExitFailed;
  }
}
