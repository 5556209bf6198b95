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

#include "blade/core/model/chaosblade_response.hpp"
#include "build_info.hpp"
#include "cli_error.hpp"
#include "command.hpp"
#include "output.hpp"
#include "suggest.hpp"

namespace {

namespace po = boost::program_options;
using namespace blade;
using namespace blade::cli;

constexpr const char *kUsage = R"(Usage: blade [GLOBAL OPTIONS] COMMAND [ARGS]

Experiments:
  create <target> <action> [--FLAG VALUE]... [--timeout N|5m] [--async] [--dry-run]
                          inject a fault; prints its uid (--help: flags from the live spec)
  destroy <uid>... [--force | --force-remove]
                          roll a fault back
  status [<uid>] [--status S] [--target T] [--action A] [--limit N|OFFSET,N] [--offset N]
         [--after C] [--asc] [--all] [--type create|prepare]
                          one experiment, or a list (the active ones unless --all)
  prepare <type> [--FLAG VALUE]...   e.g. prepare jvm --pid 1234
  revoke <uid>            undo a preparation

HTTP fault policies (followed by the http plugin's proxies and the config stream):
  policy apply -f FILE    create or update each policy of a JSON or YAML file
  policy list | get <name> | delete <name>

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
  -o, --output MODE       table | json | plain | chaosblade (ChaosBlade's Response JSON)
                          (default: table on a terminal, else plain)
  --config FILE           config file (env BLADE_CONFIG; default ~/.config/blade/config.yaml)
  --ca-cert FILE          CA certificate to trust for an https endpoint
  --insecure              https without verifying the certificate
  --version               print blade's version

Exit codes: 0 success, 1 the operation failed, 2 usage error.
`blade help COMMAND` or `blade COMMAND --help`: that command's help.
)";

// Each command's own help (`blade help destroy`, `blade destroy --help`).
// create's comes from the spec (create_help), plugin's from its command.
const std::map<std::string, std::string> &command_help() {
  static const std::map<std::string, std::string> help = {
      {"destroy", R"(Usage: blade destroy <uid>... [--force | --force-remove]

Rolls back each experiment (DELETE /v1/experiments/{uid}).
  --force, --force-remove  mark it destroyed even if the plugin cannot roll it back
)"},
      {"status", R"(Usage: blade status [<uid> | --uid UID] [--type create|prepare]
       blade status [--status S] [--target T] [--action A] [--scope S]
                    [--limit N | --limit OFFSET,N] [--offset N | --after C] [--asc] [--all]

One experiment (or preparation), or a list. Without --status or --all the
list holds the active experiments (created, running, destroying).
  --status S   created, running, destroying, destroyed, failed, or ChaosBlade's
               Created, Success, Running, Error, Destroyed (any case)
  --action A   an action or one of its aliases (load, fl: fullload)
  --all        every experiment, the finished ones too
  --after C    the page after the one whose `next` cursor is C (one list:
               with --status or --all)
)"},
      {"prepare", R"(Usage: blade prepare <type> [--FLAG VALUE]...

Starts a preparation (POST /v1/preparations), e.g. blade prepare jvm --pid 1234.
)"},
      {"revoke", R"(Usage: blade revoke <uid>

Undoes a preparation (DELETE /v1/preparations/{uid}).
)"},
      {"plugins", R"(Usage: blade plugins

The plugins bladed loaded, and those it refused with the reason of each.
)"},
      {"spec", R"(Usage: blade spec [<target> [<action>]]

What bladed serves; with target and action, that action's flags.
)"},
      {"version", R"(Usage: blade version

blade's version and, if reachable, bladed's.
)"},
  };
  return help;
}

constexpr const char *kGlobalHint =
    "\nGlobal options (--endpoint, --token, -o ...): blade --help\n";

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
      {"policy", run_policy},
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

std::vector<std::string> command_names() {
  std::vector<std::string> names;
  for (const auto &[name, _] : commands())
    names.push_back(name);
  names.emplace_back("help");
  return names;
}

// The help of one command; false if it has none of its own here.
bool print_command_help(const std::string &name) {
  auto it = command_help().find(name);
  if (it == command_help().end()) return false;
  std::cout << it->second << kGlobalHint;
  return true;
}

std::string hint_for(const ApiError &e) {
  if (e.code() == "UNAUTHENTICATED")
    return " (give a valid token: --token, BLADE_API_TOKEN or token: in the config file)";
  if (e.code() == "PERMISSION_DENIED") return " (this token's role may not do this)";
  return "";
}

int run(int argc, char **argv, OutputMode &output) {
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
  Context ctx;
  ctx.settings = resolve_settings(inv.global, stdout_is_terminal());
  output = ctx.settings.output;
  ctx.args.assign(inv.words.begin() + 1, inv.words.end());
  if (name == "help" || name == "--help" || name == "-h") {
    // `blade help destroy`: that command's help; create's, plugin's and
    // policy's are their own (`blade help create cpu load` is `create cpu load --help`).
    if (name == "help" && !ctx.args.empty()) {
      const std::string of = canonical_command(ctx.args.front());
      if (print_command_help(of)) return kExitOk;
      if (of == "create" || of == "plugin" || of == "policy") {
        ctx.args.erase(ctx.args.begin());
        ctx.args.emplace_back("--help");
        return commands().at(of)(ctx);
      }
      throw UsageError(
          fmt::format("help: unknown command '{}'{}", of, did_you_mean(of, command_names())));
    }
    std::cout << kUsage;
    return kExitOk;
  }
  auto it = commands().find(name);
  if (it == commands().end())
    throw UsageError(fmt::format("unknown command '{}'{} (blade --help lists them)", name,
                                 did_you_mean(name, command_names())));
  // create builds its help from the spec, plugin and policy have their own;
  // the others here.
  if (name != "create" && name != "plugin" && name != "policy" && wants_help(ctx.args)) {
    if (!print_command_help(name)) std::cout << kUsage;
    return kExitOk;
  }
  return it->second(ctx);
}

// ChaosBlade's failure Response on stdout (-o chaosblade), where its
// scripts read it; the one-line error still goes to stderr.
void print_chaosblade_failure(const Error &error, nlohmann::json result = nullptr) {
  std::cout << to_json(chaosblade_failure(error, std::move(result)))
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
}

Error error_of(const ApiError &e) {
  std::vector<FieldError> details;
  if (e.details().is_array())
    for (const auto &d : e.details())
      if (d.is_object()) details.push_back({d.value("field", ""), d.value("description", "")});
  return Error(error_code_from_string(e.code()).value_or(ErrorCode::Internal), e.what(),
               std::move(details));
}

}  // namespace

int main(int argc, char **argv) {
  OutputMode output = OutputMode::Plain;
  try {
    return run(argc, argv, output);
  } catch (const UsageError &e) {
    if (output == OutputMode::Chaosblade)
      print_chaosblade_failure(Error(ErrorCode::InvalidArgument, e.what(), {{"cmd", e.what()}}));
    std::cerr << "blade: " << e.what() << "\n";
    return kExitUsage;
  } catch (const ApiError &e) {
    if (output == OutputMode::Chaosblade) {
      // A failed create's uid is its result, as on /chaosblade.
      const auto &d = e.data();
      print_chaosblade_failure(
          error_of(e),
          d.is_object() && d.contains("uid") && d.contains("target") ? d["uid"] : nlohmann::json());
    } else if (output == OutputMode::Json && !e.data().is_null()) {
      // A failed experiment comes back with the error; scripts get it too.
      print_json(std::cout, e.data());
    }
    std::cerr << fmt::format("blade: {}: {}{}\n", e.code(), e.what(), hint_for(e));
    return kExitFailed;
  } catch (const Unreachable &e) {
    if (output == OutputMode::Chaosblade)
      print_chaosblade_failure(Error(ErrorCode::Unavailable, e.what()));
    std::cerr << "blade: " << e.what() << "\n";
    return kExitFailed;
  } catch (const std::exception &e) {
    std::cerr << "blade: " << e.what() << "\n";
    return kExitFailed;
  } catch (...) {
    std::cerr << "blade: unexpected failure\n";
    return kExitFailed;
  }
}
