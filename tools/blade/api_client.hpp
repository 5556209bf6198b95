// bladed's HTTP API as blade uses it: every answer's envelope is opened
// here, so commands see the `data` they asked for or an ApiError.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "settings.hpp"

namespace httplib {
class Client;
class Result;
}  // namespace httplib

namespace blade::cli {

class ApiClient {
 public:
  explicit ApiClient(const Settings &settings);
  ~ApiClient();
  ApiClient(const ApiClient &) = delete;
  ApiClient &operator=(const ApiClient &) = delete;

  // Each returns the envelope's `data`. Throws ApiError for an error
  // envelope, Unreachable when no HTTP answer came.
  nlohmann::json get(const std::string &path);
  nlohmann::json post(const std::string &path, const nlohmann::json &body);
  nlohmann::json put(const std::string &path, const nlohmann::json &body);
  nlohmann::json del(const std::string &path);

  const std::string &endpoint() const { return endpoint_; }

 private:
  // The envelope's data, or the exception for no answer or an error.
  nlohmann::json finish(const httplib::Result &res) const;

  std::string endpoint_;
  std::unique_ptr<httplib::Client> client_;
};

// "a%20b" for use in a query string.
std::string url_encode(const std::string &text);

}  // namespace blade::cli
