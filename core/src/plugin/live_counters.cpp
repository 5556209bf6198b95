#include "blade/core/plugin/live_counters.hpp"

#include <fmt/format.h>

#include "blade/core/model/error.hpp"

namespace blade {
namespace {

// An experiment's uid: 16 lowercase hex characters. Anything else cannot
// be one of ours, and would only grow the table.
bool is_experiment_uid(std::string_view uid) {
  if (uid.size() != 16) return false;
  for (char c : uid)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

void LiveCounters::report(const std::string &plugin, std::uint64_t owner, const std::string &uid,
                          std::string_view json) {
  if (!is_experiment_uid(uid)) {
    throw Error(ErrorCode::InvalidArgument,
                "counters refused: the uid is not an experiment's (16 lowercase hex characters)");
  }
  sdk::CountersParse parsed = sdk::parse_counters(json);
  if (!parsed.ok()) {
    throw Error(ErrorCode::InvalidArgument,
                fmt::format("counters for experiment {} refused: {}", uid, parsed.error));
  }
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(plugin, uid);
  auto it = slots_.find(key);
  if (it == slots_.end()) {
    std::size_t mine = 0;
    for (auto s = slots_.lower_bound({plugin, std::string()});
         s != slots_.end() && s->first.first == plugin; ++s)
      ++mine;
    if (mine >= kMaxUidsPerPlugin) {
      throw Error(ErrorCode::ResourceExhausted,
                  fmt::format("counters for experiment {} refused: plugin {} already has "
                              "counters for {} experiments",
                              uid, plugin, kMaxUidsPerPlugin));
    }
    it = slots_.emplace(std::move(key), Slot{}).first;
  }
  it->second.owner = owner;
  it->second.series = std::move(parsed.series);
}

void LiveCounters::drop(const std::string &uid) {
  std::lock_guard lock(mutex_);
  std::erase_if(slots_, [&](const auto &slot) { return slot.first.second == uid; });
}

void LiveCounters::drop_owner(std::uint64_t owner) {
  std::lock_guard lock(mutex_);
  std::erase_if(slots_, [&](const auto &slot) { return slot.second.owner == owner; });
}

std::vector<LiveCounters::Entry> LiveCounters::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<Entry> out;
  out.reserve(slots_.size());
  for (const auto &[key, slot] : slots_) out.push_back({key.first, key.second, slot.series});
  return out;
}

std::optional<nlohmann::json> LiveCounters::for_uid(const std::string &uid) const {
  std::lock_guard lock(mutex_);
  for (const auto &[key, slot] : slots_)
    if (key.second == uid) return to_json(slot.series);
  return std::nullopt;
}

nlohmann::json LiveCounters::to_json(const std::vector<sdk::CounterSeries> &series) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto &one : series) {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto &[name, value] : one.labels) labels[name] = value;
    nlohmann::json counters = nlohmann::json::object();
    for (const auto &[name, value] : one.counters) counters[name] = value;
    list.push_back({{"labels", std::move(labels)}, {"counters", std::move(counters)}});
  }
  return {{"series", std::move(list)}};
}

}  // namespace blade
