// What a netem-family fault does to the packets it gets, from the action's
// flags: netem's parameters (delay, loss, duplicate, corrupt, reorder) or
// tbf's (rate). The flags were validated by the host against the spec;
// they are parsed again here, and a bad one is sdk::InvalidArgument naming
// it, before anything is changed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace blade::network {

struct NetemParams {
  std::int64_t delay_us = 0;
  std::int64_t jitter_us = 0;
  // Percentages, 0-100.
  double delay_correlation = 0;
  double loss = 0, loss_correlation = 0;
  double duplicate = 0, duplicate_correlation = 0;
  double corrupt = 0, corrupt_correlation = 0;
  double reorder = 0, reorder_correlation = 0;
  std::uint32_t gap = 0;
  // Packets netem may hold at once. tc's default (1000) drops packets of a
  // fast sender under a long delay, a loss nobody asked for; this holds
  // 100 ms of a 1 Gbit/s stream of full-size packets.
  std::uint32_t limit = 10000;
};

struct TbfParams {
  std::string rate_text;              // as given, e.g. "1mbit"
  std::uint64_t rate_bytes = 0;       // per second
  std::uint32_t burst = 0;            // bytes, set by the tree from the MTU
  std::uint32_t latency_us = 100000;  // how long a packet may wait: the queue's length
};

struct Shaping {
  std::string kind;  // "netem" or "tbf"
  NetemParams netem;
  TbfParams tbf;
  // The parameters as the result shows them.
  nlohmann::json describe() const;
};

// The shaping of `req`'s action (delay, loss, duplicate, corrupt, reorder,
// rate) from its flags.
Shaping shaping_for(const sdk::Request &req);

// netem's TCA_OPTIONS payload: struct tc_netem_qopt, then the attributes
// for correlations, reorder, corrupt and the 64-bit delay and jitter
// (nanoseconds, which the 32-bit tick fields cannot hold past ~274 s).
std::vector<std::uint8_t> netem_options(const NetemParams &p);

// A rate with its unit ("1mbit", "500kbps", "2.5gbit") in bytes per second;
// InvalidArgument("<flag>: ...") for anything else or a rate outside
// 1 byte/s .. 2^31-1 bytes/s (about 17 gbit).
std::uint64_t parse_rate(std::string_view flag, std::string_view text);

}  // namespace blade::network
