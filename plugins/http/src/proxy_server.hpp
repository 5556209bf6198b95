// One running proxy (one experiment): its listening socket, the sessions
// of the clients it accepted, and the way it stops: stop accepting, let
// the requests in flight finish up to a deadline, then close everything.
#pragma once

// Before asio's awaitable.hpp, which uses std::exchange without including it.
#include <utility>

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy_session.hpp"

namespace blade::http {

class ProxyServer : public std::enable_shared_from_this<ProxyServer> {
 public:
  // Binds `listen` and starts accepting on `io`. Throws sdk::AlreadyExists
  // when the address is in use and sdk::InvalidArgument (naming listen) when
  // it cannot be bound for another reason; nothing is left open then.
  static std::shared_ptr<ProxyServer> start(boost::asio::io_context &io, const Endpoint &listen,
                                            std::shared_ptr<const ProxyConfig> config);
  ~ProxyServer();
  ProxyServer(const ProxyServer &) = delete;
  ProxyServer &operator=(const ProxyServer &) = delete;

  // The address actually bound ("127.0.0.1:41234" when port 0 was asked).
  Endpoint bound() const { return bound_; }

  // Stops accepting (the port is closed when this returns), lets the
  // requests in flight finish for up to `drain`, then closes every
  // connection. Blocks the calling thread, which must not be one of the
  // io_context's. Returns how many sessions were still open at the
  // deadline (closed then). Idempotent.
  std::size_t stop(std::chrono::milliseconds drain);

 private:
  ProxyServer(boost::asio::io_context &io, std::shared_ptr<const ProxyConfig> config);
  boost::asio::awaitable<void> accept_loop();
  std::size_t open_sessions();

  boost::asio::io_context &io_;
  std::shared_ptr<const ProxyConfig> config_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Endpoint bound_;
  std::mutex mu_;
  std::vector<std::weak_ptr<ProxySession>> sessions_;
  bool stopped_ = false;
};

}  // namespace blade::http
