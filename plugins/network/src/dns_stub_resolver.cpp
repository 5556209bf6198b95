#include "dns_stub_resolver.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>

#include <blade/plugin.hpp>

#include "dns_message.hpp"
#include "dns_names.hpp"

namespace blade::network {

using plugins::UniqueFd;
using Clock = std::chrono::steady_clock;

namespace {

// How long one nameserver gets to answer before the next is asked.
constexpr auto kUpstreamWait = std::chrono::seconds(2);
// How long a TCP client may take to send its query.
constexpr auto kClientWait = std::chrono::seconds(3);
// Queries forwarded at once over UDP; beyond, SERVFAIL (bounded memory).
constexpr std::size_t kMaxPending = 256;

int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<long long>(left.count(), 0, 60000));
}

// True once `fd` has `events`; false when `stop` fires or `deadline` passes.
bool wait_for(int fd, short events, int stop, Clock::time_point deadline) {
  for (;;) {
    pollfd p[2] = {{fd, events, 0}, {stop, POLLIN, 0}};
    const int n = ::poll(p, 2, ms_until(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || p[1].revents) return false;
    return true;
  }
}

bool read_exact(int fd, char *out, std::size_t size, int stop, Clock::time_point deadline) {
  std::size_t done = 0;
  while (done < size) {
    if (!wait_for(fd, POLLIN, stop, deadline)) return false;
    const ssize_t n = ::recv(fd, out + done, size - done, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool write_exact(int fd, std::string_view bytes, int stop, Clock::time_point deadline) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    if (!wait_for(fd, POLLOUT, stop, deadline)) return false;
    const ssize_t n =
        ::send(fd, bytes.data() + done, bytes.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// A DNS message over TCP: two bytes of length, then the message.
std::string read_tcp_message(int fd, int stop, Clock::time_point deadline) {
  unsigned char len[2];
  if (!read_exact(fd, reinterpret_cast<char *>(len), 2, stop, deadline)) return {};
  std::string msg(static_cast<std::size_t>(len[0] << 8 | len[1]), '\0');
  if (msg.empty() || !read_exact(fd, msg.data(), msg.size(), stop, deadline)) return {};
  return msg;
}

bool write_tcp_message(int fd, std::string_view msg, int stop, Clock::time_point deadline) {
  if (msg.size() > 0xffff) return false;
  std::string framed;
  framed += static_cast<char>(msg.size() >> 8);
  framed += static_cast<char>(msg.size() & 0xff);
  framed.append(msg);
  return write_exact(fd, framed, stop, deadline);
}

UniqueFd socket_to(const Nameserver &ns, int type, int stop, Clock::time_point deadline) {
  UniqueFd fd(::socket(ns.addr.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return {};
  if (::connect(fd.get(), reinterpret_cast<const sockaddr *>(&ns.addr), ns.len) == 0) return fd;
  if (errno != EINPROGRESS || !wait_for(fd.get(), POLLOUT, stop, deadline)) return {};
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return {};
  return fd;
}

// A socket of `type` bound to addr:53, or an empty one with errno set.
UniqueFd bind_port53(const std::string &addr, int type) {
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return {};
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(53);
  ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) return {};
  if (type == SOCK_STREAM && ::listen(fd.get(), 64) != 0) return {};
  return fd;
}

// One UDP query on its way to a nameserver: its own socket, so the answer
// is told apart by the socket it comes on, and the client's id kept as is.
struct Pending {
  UniqueFd fd;
  sockaddr_storage client{};
  socklen_t client_len = 0;
  std::string query;
  std::size_t question_end = 0;
  std::size_t next = 0;  // the next nameserver to ask
  Clock::time_point deadline;
};

}  // namespace

std::vector<Nameserver> nameservers_in(std::string_view text) {
  std::vector<Nameserver> out;
  std::size_t pos = 0;
  while (pos < text.size() && out.size() < 3) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.starts_with("nameserver")) continue;
    line.remove_prefix(10);
    if (line.empty() || (line.front() != ' ' && line.front() != '\t')) continue;
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    line.remove_prefix(first);
    const std::string addr(line.substr(0, line.find_first_of(" \t\r")));
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo *res = nullptr;
    if (::getaddrinfo(addr.c_str(), "53", &hints, &res) != 0 || !res) continue;
    Nameserver ns;
    std::memcpy(&ns.addr, res->ai_addr, res->ai_addrlen);
    ns.len = res->ai_addrlen;
    ns.text = addr;
    ::freeaddrinfo(res);
    out.push_back(std::move(ns));
  }
  return out;
}

StubResolver::StubResolver(std::vector<Nameserver> upstreams, std::vector<std::string> allowed)
    : upstreams_(std::move(upstreams)), allowed_(std::move(allowed)) {
  std::string why = "no candidate";
  for (int host = 1; host <= 9 && !udp_; ++host) {
    const std::string addr = "127.66.76." + std::to_string(host);
    if (std::any_of(upstreams_.begin(), upstreams_.end(),
                    [&](const Nameserver &n) { return n.text == addr; }))
      continue;
    UniqueFd udp = bind_port53(addr, SOCK_DGRAM);
    UniqueFd tcp = udp ? bind_port53(addr, SOCK_STREAM) : UniqueFd();
    if (!udp || !tcp) {
      why = addr + ":53: " + std::strerror(errno);
      continue;
    }
    udp_ = std::move(udp);
    tcp_ = std::move(tcp);
    address_ = addr;
  }
  if (!udp_)
    throw sdk::FailedPrecondition(
        "cannot listen on port 53 of a loopback address for the stub "
        "resolver (is lo up?): " +
        why);
  stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_) throw sdk::FailedPrecondition(std::string("eventfd: ") + std::strerror(errno));
  udp_thread_ = std::thread([this] { serve_udp(); });
  try {
    tcp_thread_ = std::thread([this] { serve_tcp(); });
  } catch (...) {
    stop();  // no destructor runs for a half-made object: the UDP thread must not outlive it
    throw;
  }
}

StubResolver::~StubResolver() {
  stop();
}

void StubResolver::stop() {
  const std::uint64_t one = 1;
  // The eventfd stays readable once written: both loops see it.
  [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
  if (udp_thread_.joinable()) udp_thread_.join();
  if (tcp_thread_.joinable()) tcp_thread_.join();
}

bool StubResolver::allowed(const std::string &name) const {
  return name_is_allowed(name, allowed_);
}

void StubResolver::serve_udp() {
  std::list<Pending> pending;
  std::string buf(65535, '\0');
  auto reply = [&](const sockaddr_storage &to, socklen_t to_len, std::string_view msg) {
    ::sendto(udp_.get(), msg.data(), msg.size(), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr *>(&to), to_len);
  };
  // Asks the next nameserver of `p`; false when none is left (or reachable).
  auto ask_next = [&](Pending &p) {
    while (p.next < upstreams_.size()) {
      const Nameserver &ns = upstreams_[p.next++];
      p.fd = socket_to(ns, SOCK_DGRAM, stop_.get(), Clock::now());
      if (p.fd && ::send(p.fd.get(), p.query.data(), p.query.size(), MSG_DONTWAIT) >= 0) {
        p.deadline = Clock::now() + kUpstreamWait;
        return true;
      }
    }
    return false;
  };
  for (;;) {
    std::vector<pollfd> fds = {{stop_.get(), POLLIN, 0}, {udp_.get(), POLLIN, 0}};
    auto wake = Clock::now() + std::chrono::seconds(60);
    for (const auto &p : pending) {
      fds.push_back({p.fd.get(), POLLIN, 0});
      wake = std::min(wake, p.deadline);
    }
    if (::poll(fds.data(), fds.size(), ms_until(wake)) < 0 && errno != EINTR) return;
    if (fds[0].revents) return;
    // Answers of nameservers, relayed as they are; a nameserver that
    // refused the datagram (ICMP) or kept silent makes way for the next.
    std::size_t i = 2;
    for (auto it = pending.begin(); it != pending.end(); ++i) {
      bool failed = Clock::now() >= it->deadline;
      if (fds[i].revents) {
        const ssize_t n = ::recv(it->fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        const std::string_view answer(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
        if (n > 0 && message_id(answer) == message_id(it->query)) {
          reply(it->client, it->client_len, answer);
          it = pending.erase(it);
          continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) failed = true;
      }
      if (failed && !ask_next(*it)) {
        reply(it->client, it->client_len,
              answer_with_rcode(it->query, it->question_end, kServFail));
        it = pending.erase(it);
        continue;
      }
      ++it;
    }
    // New queries.
    if (!(fds[1].revents & POLLIN)) continue;
    for (;;) {
      Pending p;
      p.client_len = sizeof p.client;
      const ssize_t n = ::recvfrom(udp_.get(), buf.data(), buf.size(), MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr *>(&p.client), &p.client_len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      const std::string_view msg(buf.data(), static_cast<std::size_t>(n));
      const auto q = parse_query(msg);
      if (!q) {
        if (msg.size() >= 12 && !(static_cast<unsigned char>(msg[2]) & 0x80))
          reply(p.client, p.client_len, answer_with_rcode(msg, 0, kFormErr));
        continue;
      }
      if (!allowed(q->name)) {
        ++denied_;
        reply(p.client, p.client_len, answer_with_rcode(msg, q->question_end, kServFail));
        continue;
      }
      p.query.assign(msg);
      p.question_end = q->question_end;
      if (pending.size() >= kMaxPending || !ask_next(p)) {
        reply(p.client, p.client_len, answer_with_rcode(msg, q->question_end, kServFail));
        continue;
      }
      ++forwarded_;
      pending.push_back(std::move(p));
    }
  }
}

std::string StubResolver::answer_tcp(const std::string &query) {
  const auto q = parse_query(query);
  if (!q) return answer_with_rcode(query, 0, kFormErr);
  if (!allowed(q->name)) {
    ++denied_;
    return answer_with_rcode(query, q->question_end, kServFail);
  }
  ++forwarded_;
  for (const Nameserver &ns : upstreams_) {
    const auto deadline = Clock::now() + kUpstreamWait;
    UniqueFd up = socket_to(ns, SOCK_STREAM, stop_.get(), deadline);
    if (!up || !write_tcp_message(up.get(), query, stop_.get(), deadline)) continue;
    std::string answer = read_tcp_message(up.get(), stop_.get(), deadline);
    if (message_id(answer) == message_id(query)) return answer;
  }
  return answer_with_rcode(query, q->question_end, kServFail);
}

void StubResolver::serve_tcp() {
  // One client at a time: TCP is the fallback for the rare answer too big
  // for UDP (and for use-vc), never the hot path.
  for (;;) {
    if (!wait_for(tcp_.get(), POLLIN, stop_.get(), Clock::now() + std::chrono::seconds(60))) {
      pollfd p{stop_.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) return;
      continue;
    }
    UniqueFd client(::accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!client) continue;
    // A resolver may send several queries on one connection (A and AAAA).
    for (;;) {
      const std::string query =
          read_tcp_message(client.get(), stop_.get(), Clock::now() + kClientWait);
      if (query.empty()) break;
      const std::string answer = answer_tcp(query);
      if (!write_tcp_message(client.get(), answer, stop_.get(), Clock::now() + kClientWait)) break;
    }
  }
}

}  // namespace blade::network
