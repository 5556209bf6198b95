#include "blade/core/model/chaosblade_response.hpp"

#include <algorithm>

namespace blade {
namespace {

bool any_detail(const Error &error, bool (*test)(const FieldError &)) {
  return std::any_of(error.details().begin(), error.details().end(), test);
}

}  // namespace

nlohmann::json to_json(const ChaosbladeResponse &response) {
  nlohmann::json body = {{"code", response.code}, {"success", response.success}};
  if (!response.error.empty()) body["error"] = response.error;
  if (!response.result.is_null()) body["result"] = response.result;
  return body;
}

// Blade error (and the detail that tells cases apart) -> ChaosBlade code:
//   InvalidArgument on field "cmd" (the command line)  -> 49000 CommandIllegal
//   InvalidArgument, a detail "required"               -> 45000 ParameterLess
//   InvalidArgument, a detail "unknown ..."            -> 46000 ParameterIllegal
//   InvalidArgument, any other (a value fails its spec) -> 47000 ParameterInvalid
//   NotFound on field "uid" (experiment, preparation)  -> 67002 DataNotFound
//   NotFound otherwise (no executor for target/action
//     or preparation type)                             -> 44000 ActionNotSupport
//   Unauthenticated, PermissionDenied                  -> 43000 Forbidden
//   FailedPrecondition (the fault could not be applied) -> 63063 OsCmdExecFailed
//   Unavailable (store unavailable, shutting down,
//     deadline passed)                                 -> 67001 DatabaseError
//   AlreadyExists, ResourceExhausted, Internal         -> 54000 UnexpectedStatus
// ChaosBlade has no code of its own for a conflict, a rate limit or a bug;
// 54000 is its catch-all for "cannot be done in this state".
int chaosblade_code(const Error &error) {
  using namespace chaosblade;
  switch (error.code()) {
    case ErrorCode::InvalidArgument:
      if (any_detail(error, [](const FieldError &d) { return d.field == "cmd"; }))
        return kCommandIllegal;
      if (any_detail(error, [](const FieldError &d) { return d.description == "required"; }))
        return kParameterLess;
      if (any_detail(error,
                     [](const FieldError &d) { return d.description.starts_with("unknown"); }))
        return kParameterIllegal;
      return kParameterInvalid;
    case ErrorCode::NotFound:
      if (any_detail(error, [](const FieldError &d) { return d.field == "uid"; }))
        return kDataNotFound;
      return kActionNotSupport;
    case ErrorCode::Unauthenticated:
    case ErrorCode::PermissionDenied:
      return kForbidden;
    case ErrorCode::FailedPrecondition:
      return kOsCmdExecFailed;
    case ErrorCode::Unavailable:
      return kDatabaseError;
    case ErrorCode::AlreadyExists:
    case ErrorCode::ResourceExhausted:
    case ErrorCode::Internal:
      return kUnexpectedStatus;
  }
  return kUnexpectedStatus;
}

ChaosbladeResponse chaosblade_ok(nlohmann::json result) {
  return {chaosblade::kOk, true, "", std::move(result)};
}

ChaosbladeResponse chaosblade_failure(const Error &error, nlohmann::json result) {
  return {chaosblade_code(error), false, error.what(), std::move(result)};
}

}  // namespace blade
