// The three ways a blade command ends badly, each with its exit code:
// a usage error (2), an API error from bladed (1), any other failure (1).
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace blade::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// The command line itself is wrong; nothing was sent anywhere.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// bladed answered with an error envelope: `code` is the API's code name
// ("INVALID_ARGUMENT"), what() its message.
class ApiError : public std::runtime_error {
 public:
  ApiError(std::string code, const std::string &message, nlohmann::json data = nullptr,
           nlohmann::json details = nullptr)
      : std::runtime_error(message),
        code_(std::move(code)),
        data_(std::move(data)),
        details_(std::move(details)) {}
  const std::string &code() const { return code_; }
  const nlohmann::json &data() const { return data_; }
  // The envelope's `details`: [{"field": ..., "description": ...}].
  const nlohmann::json &details() const { return details_; }

 private:
  std::string code_;
  nlohmann::json data_;
  nlohmann::json details_;
};

// No answer at all: the daemon is not running, the address is wrong, TLS
// failed. what() is the whole line after "blade: ".
class Unreachable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Anything else that failed (a refused plugin, a verify mismatch): what()
// is the line after "blade: ".
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace blade::cli
