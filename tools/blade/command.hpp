// What every blade command gets, and the commands themselves. Each returns
// its exit code or throws one of cli_error.hpp's errors.
#pragma once

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "api_client.hpp"
#include "output.hpp"
#include "settings.hpp"

namespace blade::cli {

struct Context {
  Settings settings;
  std::vector<std::string> args;  // the words after the command's name
  std::ostream &out = std::cout;
  std::ostream &err = std::cerr;

  // Made on first use, so commands that need no daemon never dial one.
  ApiClient &api() {
    if (!api_) api_ = std::make_unique<ApiClient>(settings);
    return *api_;
  }
  // Machine-readable output: json, or json inside ChaosBlade's Response.
  bool json() const {
    return settings.output == OutputMode::Json || settings.output == OutputMode::Chaosblade;
  }
  bool chaosblade() const { return settings.output == OutputMode::Chaosblade; }
  // A command's result in json mode: as it is, or as a ChaosBlade Response.
  void print_data(const nlohmann::json &data) { print_result(out, settings.output, data); }
  bool table() const { return settings.output == OutputMode::Table; }

 private:
  std::unique_ptr<ApiClient> api_;
};

// Parses `args` against `options` (positionals by `positional`); any
// problem is a UsageError naming `command`.
boost::program_options::variables_map parse_command_line(
    const std::string &command, const std::vector<std::string> &args,
    const boost::program_options::options_description &options,
    const boost::program_options::positional_options_description &positional =
        boost::program_options::positional_options_description());

bool wants_help(const std::vector<std::string> &args);

int run_create(Context &ctx);
int run_destroy(Context &ctx);
int run_status(Context &ctx);
int run_prepare(Context &ctx);
int run_revoke(Context &ctx);
int run_plugins(Context &ctx);
int run_spec(Context &ctx);
int run_version(Context &ctx);
int run_plugin(Context &ctx);  // install | list | info | verify | remove
int run_policy(Context &ctx);  // apply | list | get | delete

}  // namespace blade::cli
