// compile_rule_set: every policy's rules as the one document data planes
// apply (docs/http-faults.md, "The compiled rule set").
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "blade/core/model/duration.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/policy/policy.hpp"

namespace blade {
namespace {

using nlohmann::json;

std::int64_t epoch_ms(SystemTime t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A stored fixedDelay (validated at parse) in whole milliseconds, rounded
// up: a data plane never holds a request for less than was asked.
std::int64_t delay_ms(const std::string &fixed_delay) {
  const auto d = parse_duration(fixed_delay);
  if (!d) throw Error(ErrorCode::Internal, "stored fixedDelay is not a duration: " + fixed_delay);
  return std::chrono::ceil<std::chrono::milliseconds>(*d).count();
}

std::string lower(std::string s) {
  for (char &c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// The stored match (the user's shape) in the data planes' shape: the method
// a plain string, header names lower-case (they compare case-insensitively,
// so "X-Canary" and "x-canary" compile, and hash, the same), no empty list.
json compile_match(const json &match) {
  json out = json::object();
  if (match.contains("path")) out["path"] = match.at("path");
  if (match.contains("method")) {
    const json &m = match.at("method");
    out["method"] = m.is_object() ? m.at("exact") : m;
  }
  if (match.contains("headers") && !match.at("headers").empty()) {
    json headers = json::array();
    for (json h : match.at("headers")) {
      h["name"] = lower(h.at("name").get<std::string>());
      headers.push_back(std::move(h));
    }
    out["headers"] = std::move(headers);
  }
  return out;
}

// Keys absent from the stored fault stay absent: no delay_ms means no
// delay, no abort means the request goes upstream.
json compile_fault(const json &fault) {
  json out{{"percentage", fault.at("percentage")}};
  if (fault.contains("delay"))
    out["delay_ms"] = delay_ms(fault.at("delay").at("fixedDelay").get<std::string>());
  if (fault.contains("abort")) {
    const json &abort = fault.at("abort");
    out["abort"] = {{"status", abort.at("httpStatus")},
                    {"body", abort.contains("body") ? abort.at("body") : json("")}};
  }
  return out;
}

// FNV-1a, 64 bits: cheap, stable across builds and platforms, and enough to
// tell two rule sets apart (it is a change marker, not a security check).
std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

struct Entry {
  std::int64_t priority;
  const std::string *policy;
  std::size_t index;
  json rule;
};

}  // namespace

std::string compile_rule_set(const std::vector<FaultPolicy> &policies) {
  std::vector<Entry> entries;
  for (const FaultPolicy &p : policies) {
    const json &rules = p.spec.at("rules");
    for (std::size_t i = 0; i < rules.size(); ++i) {
      const json &r = rules[i];
      const std::int64_t priority = r.at("priority").get<std::int64_t>();
      json rule{{"id", fmt::format("{}/{}", p.name, i)},
                {"policy", p.name},
                {"index", i},
                {"priority", priority},
                {"match", compile_match(r.at("match"))},
                {"fault", compile_fault(r.at("fault"))},
                {"active_from_ms", epoch_ms(p.active_from)},
                {"active_until_ms", p.expires_at ? json(epoch_ms(*p.expires_at)) : json(nullptr)}};
      entries.push_back(Entry{priority, &p.name, i, std::move(rule)});
    }
  }
  // A total order (names are unique, indexes within a policy too), so the
  // output does not depend on the order the policies came in.
  std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
    return std::tie(b.priority, *a.policy, a.index) < std::tie(a.priority, *b.policy, b.index);
  });
  json rules = json::array();
  for (Entry &e : entries)
    rules.push_back(std::move(e.rule));
  // nlohmann's objects keep their keys sorted, so the same rules always
  // give the same text; the version leads the document so a reader sees it
  // first.
  const std::string text = rules.dump(-1, ' ', false, json::error_handler_t::strict);
  return fmt::format(R"({{"version":"{:016x}","rules":{}}})", fnv1a(text), text);
}

}  // namespace blade
