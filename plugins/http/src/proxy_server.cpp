#include "proxy_server.hpp"

#include <future>
#include <thread>

#include <blade/plugin.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace blade::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

ProxyServer::ProxyServer(asio::io_context &io, std::shared_ptr<const ProxyConfig> config)
    : io_(io), config_(std::move(config)), acceptor_(asio::make_strand(io)) {}

ProxyServer::~ProxyServer() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

std::shared_ptr<ProxyServer> ProxyServer::start(asio::io_context &io, const Endpoint &listen,
                                                std::shared_ptr<const ProxyConfig> config) {
  std::shared_ptr<ProxyServer> server(new ProxyServer(io, std::move(config)));
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(listen.host, ec);
  if (ec) throw sdk::InvalidArgument("listen: '" + listen.host + "' is not an IP address");
  const tcp::endpoint at(address, listen.port);
  auto &a = server->acceptor_;
  a.open(at.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(at, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec == boost::system::errc::address_in_use) {
    throw sdk::AlreadyExists("listen: " + listen.text() +
                             " is already in use by another socket on this host");
  }
  if (ec) {
    throw sdk::InvalidArgument("listen: cannot listen on " + listen.text() + ": " + ec.message());
  }
  const tcp::endpoint local = a.local_endpoint(ec);
  server->bound_ = listen;
  server->bound_.port = local.port();
  asio::co_spawn(a.get_executor(), [self = server] { return self->accept_loop(); },
                 asio::detached);
  return server;
}

asio::awaitable<void> ProxyServer::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        asio::make_strand(io_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) continue;  // e.g. EMFILE or a client gone before accept: next one
    auto session = std::make_shared<ProxySession>(std::move(socket), config_);
    {
      std::lock_guard lock(mu_);
      if (stopped_) co_return;
      // Forget the sessions that ended, so a long-lived proxy's list stays
      // as long as its open connections.
      std::erase_if(sessions_, [](const auto &s) { return s.expired(); });
      sessions_.push_back(session);
    }
    session->start();
  }
}

std::size_t ProxyServer::open_sessions() {
  std::lock_guard lock(mu_);
  std::erase_if(sessions_, [](const auto &s) { return s.expired(); });
  return sessions_.size();
}

std::size_t ProxyServer::stop(std::chrono::milliseconds drain) {
  std::vector<std::shared_ptr<ProxySession>> live;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return 0;
    stopped_ = true;
    for (const auto &weak : sessions_)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  // The acceptor belongs to its strand: closed there, and waited for, so
  // the port is free when stop goes on.
  std::promise<void> closed;
  asio::dispatch(acceptor_.get_executor(), [this, &closed] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    closed.set_value();
  });
  closed.get_future().wait();

  for (auto &s : live) s->drain();
  live.clear();  // the sessions' own references keep them while they run
  const auto deadline = std::chrono::steady_clock::now() + drain;
  std::size_t left = open_sessions();
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    left = open_sessions();
  }
  if (left > 0) {
    {
      std::lock_guard lock(mu_);
      for (const auto &weak : sessions_)
        if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    for (auto &s : live) s->close();
    live.clear();
    // Closing takes a turn of each session's strand; bounded all the same.
    const auto closing = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (open_sessions() > 0 && std::chrono::steady_clock::now() < closing)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return left;
}

}  // namespace blade::http
