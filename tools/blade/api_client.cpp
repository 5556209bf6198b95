#include "api_client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <httplib.h>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/error.hpp"
#include "cli_error.hpp"

namespace blade::cli {
namespace {

// httplib says only "Could not establish connection"; a user wants the
// kernel's reason ("Connection refused"), so one more connect asks for it.
std::string connect_failure_reason(const std::string &host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) return ::gai_strerror(rc);
  std::string reason = "Could not establish connection";
  for (addrinfo *a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 2000) == 1) {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
    }
    ::close(fd);
    if (err != 0) {
      reason = std::strerror(err);
      break;
    }
  }
  ::freeaddrinfo(found);
  return reason;
}

// "https://[::1]:9526" -> ("::1", 9526); the scheme's port when none is given.
std::pair<std::string, int> host_port(const std::string &endpoint) {
  const bool tls = endpoint.rfind("https://", 0) == 0;
  std::string rest = endpoint.substr(endpoint.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string host = rest;
  int port = tls ? 443 : 80;
  const auto colon = rest.rfind(':');
  const auto bracket = rest.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    host = rest.substr(0, colon);
    port = std::atoi(rest.c_str() + colon + 1);
  }
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {host, port};
}

std::string failure_reason(httplib::Error error, const std::string &endpoint) {
  switch (error) {
    case httplib::Error::Connection: {
      auto [host, port] = host_port(endpoint);
      return connect_failure_reason(host, port);
    }
    case httplib::Error::SSLConnection:
      return "TLS handshake failed (is it an https endpoint?)";
    case httplib::Error::SSLServerVerification:
      return "server certificate verification failed (use --ca-cert FILE, or --insecure)";
    case httplib::Error::Read:
      return "the connection closed without an answer (http to an https endpoint?)";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    default:
      return httplib::to_string(error);
  }
}

}  // namespace

std::string url_encode(const std::string &text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

ApiClient::ApiClient(const Settings &s)
    : endpoint_(s.endpoint), client_(std::make_unique<httplib::Client>(s.endpoint)) {
  if (!client_->is_valid())
    throw UsageError(fmt::format("endpoint '{}' cannot be used", s.endpoint));
  client_->set_connection_timeout(5);
  // A synchronous create waits for the plugin; bladed bounds that itself.
  client_->set_read_timeout(300);
  client_->set_write_timeout(30);
  if (s.insecure) client_->enable_server_certificate_verification(false);
  if (!s.ca_cert.empty()) client_->set_ca_cert_path(s.ca_cert.c_str());
  if (!s.token.empty()) client_->set_default_headers({{"X-Api-Token", s.token}});
}

ApiClient::~ApiClient() = default;

namespace {

nlohmann::json open_envelope(const httplib::Result &res, const std::string &endpoint) {
  const auto &r = *res;
  // An endpoint is not trusted to nest sanely: the answer is printed (dumped).
  auto body = parse_bounded_json(r.body).value;
  if (body.is_discarded() || !body.is_object() || !body.contains("code")) {
    throw ApiError(r.status >= 400 ? "HTTP_" + std::to_string(r.status) : "BAD_RESPONSE",
                   fmt::format("{} answered HTTP {} without a Blade envelope", endpoint, r.status));
  }
  const std::string code = body["code"].is_string() ? body["code"].get<std::string>() : "";
  if (code == "OK" && r.status < 400) return body.value("data", nlohmann::json());
  std::string message = body.value("message", "");
  // The message usually says it already (the host names the field, a
  // plugin's message holds the description); details add the others.
  if (body.contains("details") && body["details"].is_array()) {
    for (const auto &d : body["details"]) {
      const std::string field = d.value("field", "");
      const std::string description = d.value("description", "");
      if (!field.empty() && message.find(field) == std::string::npos &&
          (description.empty() || message.find(description) == std::string::npos))
        message += fmt::format("; {}: {}", field, description);
    }
  }
  if (!error_code_from_string(code)) message = fmt::format("HTTP {}: {}", r.status, message);
  throw ApiError(code.empty() ? "HTTP_" + std::to_string(r.status) : code, message,
                 body.value("data", nlohmann::json()), body.value("details", nlohmann::json()));
}

}  // namespace

nlohmann::json ApiClient::finish(const httplib::Result &res) const {
  if (!res)
    throw Unreachable(fmt::format("cannot reach bladed at {}: {}", endpoint_,
                                  failure_reason(res.error(), endpoint_)));
  return open_envelope(res, endpoint_);
}

nlohmann::json ApiClient::get(const std::string &path) {
  return finish(client_->Get(path.c_str()));
}

nlohmann::json ApiClient::post(const std::string &path, const nlohmann::json &body) {
  return finish(client_->Post(path.c_str(), body.dump(), "application/json"));
}

nlohmann::json ApiClient::put(const std::string &path, const nlohmann::json &body) {
  return finish(client_->Put(path.c_str(), body.dump(), "application/json"));
}

nlohmann::json ApiClient::del(const std::string &path) {
  return finish(client_->Delete(path.c_str()));
}

}  // namespace blade::cli
