#include "proxy_session.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "hop_headers.hpp"

namespace blade::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// A request or response header larger than this is refused (a request's
// with 400): the header is the one part read whole.
constexpr std::uint32_t kHeaderLimit = 64 * 1024;

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A header the client sent that Beast could not read as HTTP/1.x (as
// opposed to the connection ending or timing out).
bool malformed(const beast::error_code &ec) {
  return ec.category() == bh::make_error_code(bh::error::bad_method).category() &&
         ec != bh::error::end_of_stream && ec != bh::error::partial_message;
}

template <class Parser>
void unbounded(Parser &p) {
  p.header_limit(kHeaderLimit);
  // Bodies are streamed through, never held, so their size is the
  // endpoints' business. (Not boost::none: Beast 1.74 compares a length
  // with the empty optional as greater and refuses every body then.)
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
}

}  // namespace

struct ProxySession::Relayed {
  enum class Side { None, Read, Write };
  Side failed = Side::None;
  beast::error_code ec;
};

ProxySession::ProxySession(tcp::socket socket, std::shared_ptr<const ProxyConfig> config)
    : config_(std::move(config)),
      down_(std::move(socket)),
      up_(down_.get_executor()),
      delay_(down_.get_executor()),
      down_buffer_(kHeaderLimit + kChunk),
      up_buffer_(kHeaderLimit + kChunk),
      chunk_(new char[kChunk]) {}

void ProxySession::start() {
  asio::co_spawn(down_.get_executor(), [self = shared_from_this()] { return self->run(); },
                 asio::detached);
}

void ProxySession::drain() {
  asio::post(down_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    if (!self->busy_) self->close_now();
  });
}

void ProxySession::close() {
  asio::post(down_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    self->close_now();
  });
}

void ProxySession::close_now() {
  beast::error_code ignored;
  down_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  down_.close();
  up_.close();
  delay_.cancel();
}

asio::awaitable<void> ProxySession::run() {
  beast::error_code ec;
  down_.socket().set_option(tcp::no_delay(true), ec);
  for (;;) {
    busy_ = false;
    if (draining_) break;
    RequestParser request;
    unbounded(request);
    down_.expires_after(config_->idle_timeout);
    co_await bh::async_read_header(down_, down_buffer_, request,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (malformed(ec)) {
        version_ = 11;
        head_ = false;
        co_await answer(400, "malformed HTTP request: " + ec.message() + "\n", false);
      }
      break;
    }
    busy_ = true;
    if (!co_await exchange(request)) break;
  }
  close_now();
}

asio::awaitable<bool> ProxySession::exchange(RequestParser &request) {
  auto &req = request.get();
  version_ = req.version();
  head_ = req.method() == bh::verb::head;
  const bool client_keep_alive = req.keep_alive();
  if (req.method() == bh::verb::connect) {
    co_await answer(501, "CONNECT is not supported by the Blade fault proxy\n", false);
    co_return false;
  }

  std::vector<HeaderField> headers;
  for (const auto &field : req) headers.push_back({sv(field.name_string()), sv(field.value())});
  const RequestView view{sv(req.method_string()), sv(req.target()), headers};
  const Decision decision = config_->engine->decide(view, now_ms());

  beast::error_code ec;
  if (decision.inject && decision.delay.count() > 0) {
    // A timer, so a held request costs no thread.
    delay_.expires_after(decision.delay);
    co_await delay_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !down_.socket().is_open()) co_return false;  // closed meanwhile
  }

  // The client waits for a "100 Continue" before it sends the body; the
  // proxy gives it itself (the upstream gets the body without asking).
  const bool expects_continue = beast::iequals(req[bh::field::expect], "100-continue");
  if (expects_continue) req.erase(bh::field::expect);

  if (decision.inject && decision.abort) {
    if (expects_continue && !request.is_done()) {
      // Answered before the body is sent; the client may still send it, so
      // the connection cannot be trusted to be in step: closed after.
      co_await answer(static_cast<unsigned>(decision.abort->status), decision.abort->body, false);
      co_return false;
    }
    // The body is read and dropped so the next request starts in step.
    if (!co_await discard_body(request)) co_return false;
    co_return co_await answer(static_cast<unsigned>(decision.abort->status),
                              decision.abort->body, client_keep_alive && !draining_);
  }

  if (expects_continue && !request.is_done()) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    down_.expires_after(config_->idle_timeout);
    co_await asio::async_write(down_, asio::buffer(kContinue.data(), kContinue.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return false;
  }
  co_return co_await forward(request, decision, client_keep_alive);
}

asio::awaitable<bool> ProxySession::forward(RequestParser &request, const Decision &decision,
                                            bool client_keep_alive) {
  auto &req = request.get();
  // A request without a body can be sent again on a new connection when a
  // kept-alive one turns out closed by the upstream before it answered.
  const bool replayable = request.is_done();
  strip_hop_by_hop(req);
  req.version(11);  // keep-alive upstream whatever the client speaks

  std::optional<ResponseParser> response;
  for (int attempt = 0;; ++attempt) {
    const bool reused = upstream_reusable();
    if (!reused) {
      const beast::error_code ec = co_await connect_upstream();
      if (ec) {
        config_->engine->count_error(decision);
        up_.close();
        if (!co_await discard_body(request)) co_return false;
        const bool timed_out = ec == beast::error::timeout;
        co_return co_await answer(
            timed_out ? 504 : 502,
            std::string(timed_out ? "upstream connect timed out: " : "upstream unreachable: ") +
                config_->upstream.text() + ": " + ec.message() + "\n",
            client_keep_alive && !draining_);
      }
    }

    const Relayed sent = co_await relay<true>(down_, down_buffer_, request, up_,
                                              config_->idle_timeout);
    if (sent.failed == Relayed::Side::Read) co_return false;  // the client went away
    if (sent.failed == Relayed::Side::Write) {
      up_.close();
      if (reused && replayable && attempt == 0) continue;
      config_->engine->count_error(decision);
      co_await answer(502, "upstream closed the connection: " + sent.ec.message() + "\n", false);
      co_return false;
    }

    // Interim answers (100, 102, 103) go down as they come; the final one
    // follows. 101 needs Upgrade, which is never forwarded.
    beast::error_code ec;
    for (;;) {
      response.emplace();
      unbounded(*response);
      if (head_) response->skip(true);
      up_.expires_after(config_->upstream_timeout);
      co_await bh::async_read_header(up_, up_buffer_, *response,
                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      const unsigned status = response->get().result_int();
      if (status < 100 || status >= 200 || status == 101) break;
      if (version_ >= 11) {
        bh::response<bh::empty_body> interim(response->get().result(), 11);
        for (const auto &field : response->get()) interim.insert(field.name_string(), field.value());
        strip_hop_by_hop(interim);
        down_.expires_after(config_->idle_timeout);
        co_await bh::async_write(down_, interim, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
      }
    }
    if (ec) {
      up_.close();
      if (reused && replayable && attempt == 0 && ec != beast::error::timeout) continue;
      config_->engine->count_error(decision);
      const bool timed_out = ec == beast::error::timeout;
      co_return co_await answer(timed_out ? 504 : 502,
                                std::string(timed_out ? "upstream timed out: "
                                                      : "upstream failed: ") +
                                    ec.message() + "\n",
                                client_keep_alive && !draining_);
    }
    break;
  }

  auto &res = response->get();
  if (res.result_int() == 101) {
    config_->engine->count_error(decision);
    up_.close();
    co_await answer(502, "upstream switched protocols, which this proxy does not relay\n", false);
    co_return false;
  }
  const bool upstream_keep_alive = res.keep_alive() && !response->need_eof();
  bool keep_alive = client_keep_alive && !draining_;
  strip_hop_by_hop(res);
  if (response->need_eof()) {
    // The upstream ends this body by closing: a 1.1 client gets it chunked
    // (and keeps its connection), a 1.0 client by the close of its own.
    if (version_ >= 11)
      res.chunked(true);
    else
      keep_alive = false;
  } else if (version_ < 11 && res.chunked()) {
    res.chunked(false);  // 1.0 knows no chunks: the close ends the body
    keep_alive = false;
  }
  res.version(version_);
  res.keep_alive(keep_alive);

  const Relayed got = co_await relay<false>(up_, up_buffer_, *response, down_,
                                            config_->upstream_timeout);
  if (got.failed == Relayed::Side::Read) {
    // Part of the answer is gone already: the client can only see the
    // connection end early.
    config_->engine->count_error(decision);
    co_return false;
  }
  if (got.failed == Relayed::Side::Write) co_return false;
  if (!upstream_keep_alive) up_.close();
  co_return keep_alive;
}

template <bool IsRequest, class Parser>
asio::awaitable<ProxySession::Relayed> ProxySession::relay(beast::tcp_stream &from,
                                                           beast::flat_buffer &buffer,
                                                           Parser &parser, beast::tcp_stream &to,
                                                           std::chrono::milliseconds read_timeout) {
  bh::serializer<IsRequest, bh::buffer_body> out(parser.get());
  auto &body = parser.get().body();
  beast::error_code ec;
  do {
    if (!parser.is_done()) {
      body.data = chunk_.get();
      body.size = kChunk;
      from.expires_after(read_timeout);
      co_await bh::async_read(from, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bh::error::need_buffer) ec = {};
      if (ec) co_return Relayed{Relayed::Side::Read, ec};
      body.size = kChunk - body.size;
      body.data = chunk_.get();
      body.more = !parser.is_done();
    } else {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    }
    to.expires_after(config_->idle_timeout);
    co_await bh::async_write(to, out, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bh::error::need_buffer) ec = {};
    if (ec) co_return Relayed{Relayed::Side::Write, ec};
  } while (!parser.is_done() && !out.is_done());
  co_return Relayed{};
}

bool ProxySession::upstream_reusable() {
  if (!up_.socket().is_open()) return false;
  // Bytes the upstream sent unasked mean the connection is out of step;
  // none and an end of stream mean it closed its side while idle.
  if (up_buffer_.size() != 0) return false;
  char probe;
  const ssize_t n =
      ::recv(up_.socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT | MSG_NOSIGNAL);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

asio::awaitable<beast::error_code> ProxySession::connect_upstream() {
  beast::error_code ec;
  up_.close();
  up_buffer_.clear();
  up_.expires_after(config_->upstream_timeout);
  if (config_->upstream_address) {
    co_await up_.async_connect(*config_->upstream_address,
                               asio::redirect_error(asio::use_awaitable, ec));
  } else {
    tcp::resolver resolver(down_.get_executor());
    const auto found = co_await resolver.async_resolve(
        config_->upstream.host, std::to_string(config_->upstream.port),
        asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) co_await up_.async_connect(found, asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!ec) {
    beast::error_code ignored;
    up_.socket().set_option(tcp::no_delay(true), ignored);
  }
  co_return ec;
}

asio::awaitable<bool> ProxySession::discard_body(RequestParser &request) {
  beast::error_code ec;
  auto &body = request.get().body();
  while (!request.is_done()) {
    body.data = chunk_.get();
    body.size = kChunk;
    down_.expires_after(config_->idle_timeout);
    co_await bh::async_read(down_, down_buffer_, request,
                            asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bh::error::need_buffer) ec = {};
    if (ec) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> ProxySession::answer(unsigned status, const std::string &body,
                                           bool keep_alive) {
  bh::response<bh::string_body> res(static_cast<bh::status>(status), version_ >= 11 ? 11 : 10);
  // A status Beast has no reason phrase for gets an empty one (allowed),
  // not Beast's "<unknown-status>".
  if (bh::int_to_status(status) == bh::status::unknown) res.reason("");
  res.set(bh::field::content_type, "text/plain");
  res.keep_alive(keep_alive);
  if (head_) {
    res.content_length(body.size());
  } else {
    res.body() = body;
    res.prepare_payload();
  }
  beast::error_code ec;
  down_.expires_after(config_->idle_timeout);
  co_await bh::async_write(down_, res, asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec && keep_alive;
}

}  // namespace blade::http
