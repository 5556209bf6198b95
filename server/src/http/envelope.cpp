#include "envelope.hpp"

namespace blade::server {
namespace {

// Replacement keeps a response from throwing on a path with invalid UTF-8.
std::string dump(const nlohmann::json &value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The success envelope's two halves around its data. Its keys stay in the
// order nlohmann's sorted objects wrote them (code, data, message), so the
// bytes are the same whichever way the data came.
constexpr std::string_view kOkHead = R"({"code":"OK","data":)";
constexpr std::string_view kOkTail = R"(,"message":""})";

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

void send_ok_text(httplib::Response &res, int status, std::string_view data_json) {
  res.status = status;
  std::string body;
  body.reserve(kOkHead.size() + data_json.size() + kOkTail.size());
  body.append(kOkHead).append(data_json).append(kOkTail);
  // Moved in, not copied as set_content(const std::string &) would.
  res.body = std::move(body);
  res.headers.erase("Content-Type");
  res.set_header("Content-Type", "application/json");
}

void send_ok(httplib::Response &res, int status, const nlohmann::json &data) {
  send_ok_text(res, status, dump(data));
}

void send_error(httplib::Response &res, const Error &error, const nlohmann::json &data,
                int status) {
  nlohmann::json details = nlohmann::json::array();
  for (const auto &d : error.details())
    details.push_back({{"field", d.field}, {"description", d.description}});
  nlohmann::json body = {{"code", to_string(error.code())}, {"message", error.what()}, {"data", data}};
  if (!details.empty()) body["details"] = details;
  res.status = status ? status : http_status(error.code());
  res.set_content(dump(body), "application/json");
}

}  // namespace blade::server
