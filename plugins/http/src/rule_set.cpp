#include "rule_set.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace blade::http {
namespace {

using nlohmann::json;

// Names the fields of one rule in errors: "rules[2].match.path.regex
// (rule "checkout/0"): ...", so a bad set points at what to fix.
class RuleFields {
 public:
  explicit RuleFields(std::size_t index) : prefix_("rules[" + std::to_string(index) + "]") {}
  void know_id(const std::string &id) { note_ = " (rule \"" + id + "\")"; }

  [[noreturn]] void fail(std::string_view field, std::string_view what) const {
    std::string where = prefix_;
    if (!field.empty()) where += "." + std::string(field);
    throw std::invalid_argument(where + note_ + ": " + std::string(what));
  }

 private:
  std::string prefix_;
  std::string note_;
};

// A member of `obj`, or null when absent or JSON null (optional fields).
const json *member(const json &obj, const char *key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

const std::string &string_of(const json &v, const RuleFields &where, std::string_view field) {
  if (!v.is_string()) where.fail(field, "must be a string");
  return v.get_ref<const std::string &>();
}

std::int64_t integer_of(const json &v, const RuleFields &where, std::string_view field,
                        std::int64_t min, std::int64_t max) {
  bool in_range = false;
  std::int64_t n = 0;
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    in_range = u <= static_cast<std::uint64_t>(max);
    n = in_range ? static_cast<std::int64_t>(u) : 0;
    in_range = in_range && n >= min;
  } else if (v.is_number_integer()) {
    n = v.get<std::int64_t>();
    in_range = n >= min && n <= max;
  } else {
    where.fail(field, "must be an integer");
  }
  if (!in_range)
    where.fail(field, "must be from " + std::to_string(min) + " to " + std::to_string(max));
  return n;
}

// {"exact": s} | {"prefix": s} | {"regex": s}, and for a header also
// {"present": true}; other keys of `obj` (a header's "name") are ignored.
StringMatcher matcher_of(const json &obj, const RuleFields &where, const std::string &field,
                         bool allow_present) {
  static constexpr const char *kKinds[] = {"exact", "prefix", "regex", "present"};
  const char *kind = nullptr;
  for (const char *k : kKinds) {
    if (!allow_present && std::string_view(k) == "present") continue;
    if (!obj.contains(k)) continue;
    if (kind)
      where.fail(field, std::string("has both ") + kind + " and " + k + "; give exactly one");
    kind = k;
  }
  if (!kind)
    where.fail(field, allow_present ? "needs one of exact, prefix, regex, present"
                                    : "needs one of exact, prefix, regex");
  std::string sub = field + "." + kind;
  const json &v = obj.at(kind);
  std::string_view k(kind);
  if (k == "present") {
    if (v != json(true)) where.fail(sub, "must be true (a rule matches headers that are there)");
    return StringMatcher();
  }
  const std::string &text = string_of(v, where, sub);
  if (k == "exact") return StringMatcher::exact(text);
  if (k == "prefix") return StringMatcher::prefix(text);
  try {
    return StringMatcher::regex(text);
  } catch (const std::invalid_argument &e) {
    where.fail(sub, e.what());
  }
}

void parse_match(const json &match, const RuleFields &where, Rule &rule) {
  if (!match.is_object()) where.fail("match", "must be an object");
  if (const json *path = member(match, "path")) {
    if (!path->is_object()) where.fail("match.path", "must be an object");
    rule.path = matcher_of(*path, where, "match.path", false);
  }
  if (const json *method = member(match, "method")) {
    rule.method = string_of(*method, where, "match.method");
    if (!is_token(rule.method)) where.fail("match.method", "is not an HTTP method");
  }
  if (const json *headers = member(match, "headers")) {
    if (!headers->is_array()) where.fail("match.headers", "must be an array");
    for (std::size_t i = 0; i < headers->size(); ++i) {
      std::string field = "match.headers[" + std::to_string(i) + "]";
      const json &h = (*headers)[i];
      if (!h.is_object()) where.fail(field, "must be an object");
      const json *name = member(h, "name");
      if (!name) where.fail(field + ".name", "is required");
      const std::string &text = string_of(*name, where, field + ".name");
      if (!is_token(text)) where.fail(field + ".name", "is not a header name");
      rule.headers.push_back({to_lower(text), matcher_of(h, where, field, true)});
    }
  }
}

void parse_fault(const json &fault, const RuleFields &where, Rule &rule) {
  if (!fault.is_object()) where.fail("fault", "must be an object");
  const json *percentage = member(fault, "percentage");
  if (!percentage) where.fail("fault.percentage", "is required");
  if (!percentage->is_number()) where.fail("fault.percentage", "must be a number");
  rule.percentage = percentage->get<double>();
  if (!(rule.percentage >= 0 && rule.percentage <= 100))
    where.fail("fault.percentage", "must be from 0 to 100");

  const json *delay = member(fault, "delay_ms");
  if (delay)
    rule.delay =
        std::chrono::milliseconds(integer_of(*delay, where, "fault.delay_ms", 0, kMaxDelayMs));
  if (const json *jitter = member(fault, "delay_jitter_ms")) {
    if (!delay) where.fail("fault.delay_jitter_ms", "needs fault.delay_ms");
    rule.delay_jitter = std::chrono::milliseconds(
        integer_of(*jitter, where, "fault.delay_jitter_ms", 0, kMaxDelayMs));
  }
  if (const json *abort = member(fault, "abort")) {
    if (!abort->is_object()) where.fail("fault.abort", "must be an object");
    const json *status = member(*abort, "status");
    if (!status) where.fail("fault.abort.status", "is required");
    Abort a;
    a.status = static_cast<int>(
        integer_of(*status, where, "fault.abort.status", kMinAbortStatus, kMaxAbortStatus));
    if (const json *body = member(*abort, "body"))
      a.body = string_of(*body, where, "fault.abort.body");
    rule.abort = std::move(a);
  }
  if (!delay && !rule.abort) where.fail("fault", "needs delay_ms or abort");
}

Rule parse_rule(const json &r, const RuleFields &where) {
  Rule rule;
  if (const json *match = member(r, "match")) parse_match(*match, where, rule);
  const json *fault = member(r, "fault");
  if (!fault) where.fail("fault", "is required");
  parse_fault(*fault, where, rule);
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  if (const json *from = member(r, "active_from_ms"))
    rule.active_from_ms = integer_of(*from, where, "active_from_ms", kMin, kMax);
  if (const json *until = member(r, "active_until_ms"))
    rule.active_until_ms = integer_of(*until, where, "active_until_ms", kMin, kMax);
  return rule;
}

}  // namespace

bool Rule::matches(std::string_view request_path, const RequestView &request) const {
  if (!method.empty() && request.method != method) return false;
  if (!path.matches(request_path)) return false;
  return std::all_of(headers.begin(), headers.end(),
                     [&](const HeaderMatcher &h) { return h.matches(request.headers); });
}

RuleSet parse_rule_set(std::string_view text, const std::vector<std::string> &only_policies) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error &e) {
    throw std::invalid_argument(std::string("rule set: not JSON: ") + e.what());
  }
  if (!doc.is_object()) throw std::invalid_argument("rule set: must be a JSON object");
  const json *version = member(doc, "version");
  if (!version || !version->is_string()) throw std::invalid_argument("version: must be a string");
  const json *rules = member(doc, "rules");
  if (!rules || !rules->is_array()) throw std::invalid_argument("rules: must be an array");

  RuleSet set;
  set.version = version->get<std::string>();
  std::set<std::string, std::less<>> ids;
  for (std::size_t i = 0; i < rules->size(); ++i) {
    const json &r = (*rules)[i];
    RuleFields where(i);
    if (!r.is_object()) where.fail("", "must be an object");
    const json *id = member(r, "id");
    if (!id) where.fail("id", "is required");
    const std::string &id_text = string_of(*id, where, "id");
    // Ids label the counters the host shows (at most 64 series in 64 KiB).
    if (id_text.empty() || id_text.size() > kMaxRuleIdBytes)
      where.fail("id", "must have 1 to " + std::to_string(kMaxRuleIdBytes) + " bytes");
    where.know_id(id_text);
    const json *policy = member(r, "policy");
    if (!policy) where.fail("policy", "is required");
    const std::string &policy_text = string_of(*policy, where, "policy");
    if (!only_policies.empty() &&
        std::find(only_policies.begin(), only_policies.end(), policy_text) == only_policies.end())
      continue;
    // Counters are kept by id: two rules sharing one would merge theirs.
    if (!ids.insert(id_text).second) where.fail("id", "repeats an earlier rule's id");
    Rule rule = parse_rule(r, where);
    rule.id = id_text;
    rule.policy = policy_text;
    set.rules.push_back(std::move(rule));
  }
  return set;
}

}  // namespace blade::http
