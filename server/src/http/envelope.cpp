#include "envelope.hpp"

namespace blade::server {
namespace {

void send_json(httplib::Response &res, int status, const nlohmann::json &body) {
  res.status = status;
  // Replacement keeps a response from throwing on a path with invalid UTF-8.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

}  // namespace

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return 400;
    case ErrorCode::NotFound:
      return 404;
    case ErrorCode::AlreadyExists:
      return 409;
    case ErrorCode::FailedPrecondition:
      return 422;
    case ErrorCode::Unauthenticated:
      return 401;
    case ErrorCode::PermissionDenied:
      return 403;
    case ErrorCode::ResourceExhausted:
      return 429;
    case ErrorCode::Unavailable:
      return 503;
    case ErrorCode::Internal:
      return 500;
  }
  return 500;
}

void send_ok(httplib::Response &res, int status, nlohmann::json data) {
  send_json(res, status, {{"code", "OK"}, {"message", ""}, {"data", std::move(data)}});
}

void send_error(httplib::Response &res, const Error &error, nlohmann::json data, int status) {
  nlohmann::json details = nlohmann::json::array();
  for (const auto &d : error.details())
    details.push_back({{"field", d.field}, {"description", d.description}});
  nlohmann::json body = {
      {"code", to_string(error.code())}, {"message", error.what()}, {"data", std::move(data)}};
  if (!details.empty()) body["details"] = details;
  send_json(res, status ? status : http_status(error.code()), body);
}

}  // namespace blade::server
