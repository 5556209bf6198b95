#include "blade/core/model/error.hpp"

namespace blade {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return "INVALID_ARGUMENT";
    case ErrorCode::NotFound:
      return "NOT_FOUND";
    case ErrorCode::AlreadyExists:
      return "ALREADY_EXISTS";
    case ErrorCode::FailedPrecondition:
      return "FAILED_PRECONDITION";
    case ErrorCode::Unauthenticated:
      return "UNAUTHENTICATED";
    case ErrorCode::PermissionDenied:
      return "PERMISSION_DENIED";
    case ErrorCode::ResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case ErrorCode::Unavailable:
      return "UNAVAILABLE";
    case ErrorCode::Internal:
      return "INTERNAL";
  }
  return "INTERNAL";
}

Error executor_error(ErrorCode code, const std::string &message) {
  if (code != ErrorCode::InvalidArgument) return Error(code, message);
  const auto colon = message.find(": ");
  if (colon == std::string::npos || colon == 0 || colon > 64) return Error(code, message);
  const std::string name = message.substr(0, colon);
  // Flag names are lower case with '-' or '_' (ChaosBlade's allow_domain).
  for (char ch : name)
    if (!(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') && ch != '-' && ch != '_')
      return Error(code, message);
  return Error(code, message, {{"flags." + name, message.substr(colon + 2)}});
}

std::optional<ErrorCode> error_code_from_string(std::string_view name) {
  for (auto code :
       {ErrorCode::InvalidArgument, ErrorCode::NotFound, ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition, ErrorCode::Unauthenticated, ErrorCode::PermissionDenied,
        ErrorCode::ResourceExhausted, ErrorCode::Unavailable, ErrorCode::Internal}) {
    if (to_string(code) == name) return code;
  }
  return std::nullopt;
}

}  // namespace blade
