// A ChaosBlade command line (already split into words) as the service's
// plain requests. Only what `blade server` callers send is accepted:
//   [blade] create [scope] <target> <action> [--flag value | --flag=value | --switch]...
//                  [--timeout N] [--async] [--dry-run] [--endpoint URL]
//   [blade] destroy <uid> [--force-remove]
//   [blade] status <uid> | status --uid <uid>
//   [blade] status [--type create|destroy|prepare|revoke] [--target T] [--action A]
//                  [--status S] [--limit N | --limit OFFSET,N] [--asc]
//   [blade] prepare <type> [--flag value]...
//   [blade] revoke <uid>
//   [blade] version
// Every problem is a blade::Error naming the offending word, before
// anything runs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blade/core/experiment/experiment_service.hpp"
#include "blade/core/spec/spec.hpp"
#include "blade/core/store/store.hpp"

namespace blade::server {

enum class BladeVerb { Create, Destroy, Status, Prepare, Revoke, Version };

// What `status` answers: one record (uid set) or a list. ChaosBlade's --type
// create and destroy both list experiments; prepare and revoke both list
// preparations.
struct StatusQuery {
  std::string uid;
  bool preparations = false;
  ExperimentFilter experiments;
  PreparationFilter preparation_filter;
};

struct BladeCommand {
  BladeVerb verb = BladeVerb::Version;
  CreateRequest create;    // create
  PrepareRequest prepare;  // prepare
  std::string uid;         // destroy, revoke
  bool force = false;      // destroy --force-remove
  StatusQuery status;      // status
};

// The flags (scope, target, action) accepts (FlagSpec::no_args tells a
// switch); throws Error(NotFound) when nothing serves it.
using FlagSpecLookup = std::function<std::vector<FlagSpec>(
    const std::string &scope, const std::string &target, const std::string &action)>;

// Throws blade::Error: InvalidArgument on field "cmd" for a malformed line
// (unknown sub-command, stray word, control character, flag without its
// value), on "flags.<name>" for a flag the spec does not know, on the
// option's name for a bad status option; NotFound on field "action" when
// `lookup` knows no (scope, target, action).
BladeCommand parse_blade_command(const std::vector<std::string> &words,
                                 const FlagSpecLookup &lookup);

// The options of `status`, named as on the command line without dashes and
// as the query parameters of GET /api/v1/status: uid, type, target, action,
// status, limit, asc. Unknown names and bad values are InvalidArgument on
// the option's name. For preparations, target filters the type (jvm).
inline const std::vector<std::string> kStatusOptions = {"uid",    "type",  "target", "action",
                                                         "status", "limit", "asc"};
StatusQuery parse_status_options(const std::vector<std::pair<std::string, std::string>> &options);

}  // namespace blade::server
