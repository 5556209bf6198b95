// The typed errors of the core. The server maps each code to an HTTP status
// in one place; nothing else in the core knows about HTTP.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blade {

enum class ErrorCode {
  InvalidArgument,
  NotFound,
  AlreadyExists,
  FailedPrecondition,
  Unauthenticated,
  PermissionDenied,
  ResourceExhausted,
  Unavailable,
  Internal,
};

// "INVALID_ARGUMENT", ... : the API's wire names.
std::string_view to_string(ErrorCode code);
// The inverse, for clients reading an error envelope; nullopt if unknown.
std::optional<ErrorCode> error_code_from_string(std::string_view name);

// One offending input, named as the API names it ("flags.cpu-percent").
struct FieldError {
  std::string field;
  std::string description;
  bool operator==(const FieldError &) const = default;
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string &message, std::vector<FieldError> details = {})
      : std::runtime_error(message), code_(code), details_(std::move(details)) {}

  ErrorCode code() const noexcept { return code_; }
  const std::vector<FieldError> &details() const noexcept { return details_; }

 private:
  ErrorCode code_;
  std::vector<FieldError> details_;
};

// An executor's failure as the API's error. Plugins name the flag at fault
// by starting their message "<flag>: ..." (the SDK's convention): for an
// InvalidArgument that flag becomes the field detail "flags.<flag>".
Error executor_error(ErrorCode code, const std::string &message);

}  // namespace blade
