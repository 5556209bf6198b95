// The live counters plugins report for their running experiments (host API
// report_counters, ABI 1.5): the latest report per (plugin, uid), shown in
// /metrics and with the experiment, forgotten when the experiment's destroy
// returns or the plugin instance that reported it is gone.
//
// Reports are checked with the SDK's rules (blade/counters.hpp), the same
// definition the plugin test harness applies; a refused report leaves the
// last good one in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blade/counters.hpp>
#include <nlohmann/json.hpp>

namespace blade {

class LiveCounters {
 public:
  // At most this many uids with counters per plugin: a plugin reporting for
  // uids it never serves cannot grow the daemon without bound.
  static constexpr std::size_t kMaxUidsPerPlugin = 1024;

  struct Entry {
    std::string plugin;
    std::string uid;
    std::vector<sdk::CounterSeries> series;
  };

  // Makes `json` uid's counters, reported by `plugin` through the instance
  // `owner` (an id that instance alone uses). Throws blade::Error:
  // InvalidArgument naming the broken rule, ResourceExhausted past
  // kMaxUidsPerPlugin; either way the last good report stands.
  void report(const std::string &plugin, std::uint64_t owner, const std::string &uid,
              std::string_view json);
  // Forgets uid's counters (its destroy returned, or its create failed).
  void drop(const std::string &uid);
  // Forgets what instance `owner` reported last (it was shut down: nothing
  // it ran still counts). Reports a newer instance made are kept.
  void drop_owner(std::uint64_t owner);

  // Every entry, ordered by plugin then uid.
  std::vector<Entry> snapshot() const;
  // uid's counters as the report object {"series": [...]}, if any.
  std::optional<nlohmann::json> for_uid(const std::string &uid) const;

  // The report object for `series`.
  static nlohmann::json to_json(const std::vector<sdk::CounterSeries> &series);

 private:
  struct Slot {
    std::uint64_t owner = 0;
    std::vector<sdk::CounterSeries> series;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Slot> slots_;  // (plugin, uid)
};

}  // namespace blade
