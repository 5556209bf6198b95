// One downstream connection of a proxy and the one upstream connection it
// uses (opened at its first forwarded request, kept alive, opened again when
// the upstream closed it). A loop of exchanges, each: read the request
// header, ask the FaultEngine, wait out a delay on a timer, then answer an
// abort without contacting the upstream, or relay the request up and the
// response down through one bounded buffer (bodies are never held whole).
// Runs as a coroutine on its own strand of the proxy's io_context; drain and
// close may be called from any thread.
#pragma once

// Before asio's awaitable.hpp, which uses std::exchange without including it.
#include <utility>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "endpoint.hpp"
#include "fault_engine.hpp"

namespace blade::http {

// What every session of one proxy shares; fixed while the proxy runs (the
// engine's rule set changes inside the engine).
struct ProxyConfig {
  std::shared_ptr<FaultEngine> engine;
  Endpoint upstream;
  // The upstream's address when it is an IP literal (no resolver call then).
  std::optional<boost::asio::ip::tcp::endpoint> upstream_address;
  // Connecting to the upstream, and each wait for its bytes: past it, 504.
  std::chrono::milliseconds upstream_timeout{30'000};
  // A client's silence (between requests, or within one) before its
  // connection is closed.
  std::chrono::milliseconds idle_timeout{60'000};
};

class ProxySession : public std::enable_shared_from_this<ProxySession> {
 public:
  // Bytes of body relayed at a time, each direction: the proxy's whole
  // buffer for a body of any size.
  static constexpr std::size_t kChunk = 64 * 1024;

  ProxySession(boost::asio::ip::tcp::socket socket, std::shared_ptr<const ProxyConfig> config);
  ProxySession(const ProxySession &) = delete;
  ProxySession &operator=(const ProxySession &) = delete;

  // Runs the session on its socket's executor (a strand).
  void start();
  // Ends the session after the request in flight (at once when idle).
  void drain();
  // Ends it now, a request in flight included.
  void close();

 private:
  using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;
  using ResponseParser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;
  struct Relayed;

  boost::asio::awaitable<void> run();
  // One request and its answer; true when the connection stays open.
  boost::asio::awaitable<bool> exchange(RequestParser &request);
  boost::asio::awaitable<bool> forward(RequestParser &request, const Decision &decision,
                                       bool client_keep_alive);
  template <bool IsRequest, class Parser>
  boost::asio::awaitable<Relayed> relay(boost::beast::tcp_stream &from,
                                        boost::beast::flat_buffer &buffer, Parser &parser,
                                        boost::beast::tcp_stream &to,
                                        std::chrono::milliseconds read_timeout);
  boost::asio::awaitable<boost::beast::error_code> connect_upstream();
  bool upstream_reusable();
  boost::asio::awaitable<bool> discard_body(RequestParser &request);
  // Writes a complete answer of our own; true when it was written and the
  // connection stays open.
  boost::asio::awaitable<bool> answer(unsigned status, const std::string &body, bool keep_alive);
  void close_now();

  std::shared_ptr<const ProxyConfig> config_;
  boost::beast::tcp_stream down_;
  boost::beast::tcp_stream up_;
  boost::asio::steady_timer delay_;
  boost::beast::flat_buffer down_buffer_;
  boost::beast::flat_buffer up_buffer_;
  std::unique_ptr<char[]> chunk_;
  // The request being answered: its version and whether it was a HEAD
  // (its answers carry no body).
  unsigned version_ = 11;
  bool head_ = false;
  // Strand only.
  bool busy_ = false;
  bool draining_ = false;
};

}  // namespace blade::http
