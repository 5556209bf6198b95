#include "netem_options.hpp"

#include <linux/netlink.h>
#include <linux/pkt_sched.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace blade::network {
namespace {

[[noreturn]] void bad(std::string_view flag, const std::string &what) {
  throw sdk::InvalidArgument(std::string(flag) + ": " + what);
}

double number(std::string_view flag, std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
    bad(flag, "'" + std::string(text) + "' is not a number");
  return v;
}

double percent(const sdk::Request &req, std::string_view flag, bool required) {
  const auto v = req.flag(flag);
  if (!v || v->empty()) {
    if (required) bad(flag, "is required");
    return 0;
  }
  const double p = number(flag, *v);
  if (p < 0 || p > 100) bad(flag, "must be a percentage from 0 to 100, got " + std::string(*v));
  return p;
}

std::int64_t millis(const sdk::Request &req, std::string_view flag, std::int64_t fallback,
                    std::int64_t min, bool required) {
  const auto v = req.flag(flag);
  if (!v || v->empty()) {
    if (required) bad(flag, "is required");
    return fallback;
  }
  std::int64_t ms = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), ms);
  if (ec != std::errc() || end != v->data() + v->size())
    bad(flag, "'" + std::string(*v) + "' is not a whole number of milliseconds");
  if (ms < min || ms > 600000)
    bad(flag, "must be " + std::to_string(min) + " to 600000 milliseconds, got " + std::string(*v));
  return ms;
}

// A percentage as netem's probability scale: 0 .. 2^32-1 for 0 .. 100 %.
std::uint32_t scaled(double percent) {
  const double v = std::round(percent / 100.0 * 4294967295.0);
  return static_cast<std::uint32_t>(std::clamp(v, 0.0, 4294967295.0));
}

void put(std::vector<std::uint8_t> &out, std::uint16_t type, const void *data, std::size_t len) {
  nlattr a{};
  a.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  const std::size_t at = out.size();
  out.resize(at + NLA_ALIGN(NLA_HDRLEN + len), 0);
  std::memcpy(out.data() + at, &a, sizeof a);
  std::memcpy(out.data() + at + NLA_HDRLEN, data, len);
}

// Time in the kernel's packet-scheduler ticks (64 ns), saturated: the
// 64-bit attributes carry the exact value.
std::uint32_t ticks(std::int64_t us) {
  const std::int64_t t = us * 1000 / 64;
  return static_cast<std::uint32_t>(std::min<std::int64_t>(t, 0xffffffffLL));
}

}  // namespace

std::uint64_t parse_rate(std::string_view flag, std::string_view text) {
  const auto unit_at = std::find_if(text.begin(), text.end(), [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0;
  });
  const std::string_view digits = text.substr(0, static_cast<std::size_t>(unit_at - text.begin()));
  std::string unit(unit_at, text.end());
  for (char &c : unit)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  struct Unit {
    const char *name;
    double bits;
  };
  static constexpr Unit kUnits[] = {{"bit", 1}, {"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9},
                                    {"bps", 8}, {"kbps", 8e3}, {"mbps", 8e6}, {"gbps", 8e9}};
  const std::string how =
      "a rate is a number with a unit: bit, kbit, mbit, gbit (bits per second) or bps, kbps, "
      "mbps, gbps (bytes per second), e.g. 1mbit; got '" +
      std::string(text) + "'";
  const Unit *found = nullptr;
  for (const Unit &u : kUnits)
    if (unit == u.name) found = &u;
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (!found || digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      !std::isfinite(value) || value <= 0)
    bad(flag, how);
  const double bytes = std::floor(value * found->bits / 8);
  if (bytes < 1)
    bad(flag, "must be at least 8bit (1 byte per second), got '" + std::string(text) + "'");
  if (bytes > std::numeric_limits<std::int32_t>::max())
    bad(flag, "must be at most 17gbit (2^31-1 bytes per second), got '" + std::string(text) + "'");
  return static_cast<std::uint64_t>(bytes);
}

Shaping shaping_for(const sdk::Request &req) {
  Shaping s;
  s.kind = "netem";
  NetemParams &n = s.netem;
  const std::string_view action = req.action();
  if (action == "delay") {
    n.delay_us = millis(req, "time", 0, 1, true) * 1000;
    n.jitter_us = millis(req, "offset", 0, 0, false) * 1000;
    n.delay_correlation = percent(req, "correlation", false);
  } else if (action == "loss") {
    n.loss = percent(req, "percent", true);
    n.loss_correlation = percent(req, "correlation", false);
  } else if (action == "duplicate") {
    n.duplicate = percent(req, "percent", true);
    n.duplicate_correlation = percent(req, "correlation", false);
  } else if (action == "corrupt") {
    n.corrupt = percent(req, "percent", true);
    n.corrupt_correlation = percent(req, "correlation", false);
  } else if (action == "reorder") {
    n.reorder = percent(req, "percent", true);
    n.reorder_correlation = percent(req, "correlation", false);
    // Reordering needs a delay to overtake: the packets not picked wait it.
    n.delay_us = millis(req, "time", 10, 1, false) * 1000;
    const auto gap = req.flag("gap");
    if (gap && !gap->empty()) {
      std::int64_t g = 0;
      const auto [end, ec] = std::from_chars(gap->data(), gap->data() + gap->size(), g);
      if (ec != std::errc() || end != gap->data() + gap->size() || g < 1 || g > 0x7fffffff)
        bad("gap", "must be a whole number from 1, got '" + std::string(*gap) + "'");
      n.gap = static_cast<std::uint32_t>(g);
    } else {
      // gap 1: any packet may be picked, at random (gap 0 would reorder none).
      n.gap = 1;
    }
  } else if (action == "rate") {
    s.kind = "tbf";
    const auto rate = req.flag("rate");
    if (!rate || rate->empty()) bad("rate", "is required");
    s.tbf.rate_text = std::string(*rate);
    s.tbf.rate_bytes = parse_rate("rate", *rate);
  } else {
    throw sdk::NotSupported("network " + std::string(action) + " is not a netem-family action");
  }
  return s;
}

nlohmann::json Shaping::describe() const {
  nlohmann::json j = nlohmann::json::object();
  if (kind == "tbf") {
    j["rate"] = tbf.rate_text;
    j["rate_bytes_per_second"] = tbf.rate_bytes;
    j["burst_bytes"] = tbf.burst;
    j["latency_ms"] = tbf.latency_us / 1000;
    return j;
  }
  const NetemParams &n = netem;
  if (n.delay_us) j["delay_ms"] = n.delay_us / 1000;
  if (n.jitter_us) j["jitter_ms"] = n.jitter_us / 1000;
  if (n.delay_correlation) j["delay_correlation_percent"] = n.delay_correlation;
  if (n.loss) j["loss_percent"] = n.loss;
  if (n.loss_correlation) j["loss_correlation_percent"] = n.loss_correlation;
  if (n.duplicate) j["duplicate_percent"] = n.duplicate;
  if (n.duplicate_correlation) j["duplicate_correlation_percent"] = n.duplicate_correlation;
  if (n.corrupt) j["corrupt_percent"] = n.corrupt;
  if (n.corrupt_correlation) j["corrupt_correlation_percent"] = n.corrupt_correlation;
  if (n.reorder) j["reorder_percent"] = n.reorder;
  if (n.reorder_correlation) j["reorder_correlation_percent"] = n.reorder_correlation;
  if (n.gap) j["gap"] = n.gap;
  j["limit_packets"] = n.limit;
  return j;
}

std::vector<std::uint8_t> netem_options(const NetemParams &p) {
  tc_netem_qopt q{};
  q.latency = ticks(p.delay_us);
  q.jitter = ticks(p.jitter_us);
  q.limit = p.limit;
  q.loss = scaled(p.loss);
  q.gap = p.gap;
  q.duplicate = scaled(p.duplicate);
  std::vector<std::uint8_t> out(NLA_ALIGN(sizeof q), 0);
  std::memcpy(out.data(), &q, sizeof q);

  tc_netem_corr corr{};
  corr.delay_corr = scaled(p.delay_correlation);
  corr.loss_corr = scaled(p.loss_correlation);
  corr.dup_corr = scaled(p.duplicate_correlation);
  put(out, TCA_NETEM_CORR, &corr, sizeof corr);
  if (p.reorder > 0) {
    tc_netem_reorder r{};
    r.probability = scaled(p.reorder);
    r.correlation = scaled(p.reorder_correlation);
    put(out, TCA_NETEM_REORDER, &r, sizeof r);
  }
  if (p.corrupt > 0) {
    tc_netem_corrupt c{};
    c.probability = scaled(p.corrupt);
    c.correlation = scaled(p.corrupt_correlation);
    put(out, TCA_NETEM_CORRUPT, &c, sizeof c);
  }
  const std::int64_t latency_ns = p.delay_us * 1000;
  const std::int64_t jitter_ns = p.jitter_us * 1000;
  put(out, TCA_NETEM_LATENCY64, &latency_ns, sizeof latency_ns);
  put(out, TCA_NETEM_JITTER64, &jitter_ns, sizeof jitter_ns);
  return out;
}

}  // namespace blade::network
