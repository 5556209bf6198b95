// parse_policy: a request body to a validated, normalised PolicyDraft;
// to_json: a stored policy in the API's shape.
#include "blade/core/policy/policy.hpp"

#include <re2/re2.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "blade/core/model/duration.hpp"
#include "blade/core/model/error.hpp"
#include "field_path.hpp"
#include "policy_limits.hpp"

namespace blade {
namespace {

using nlohmann::json;
using policy_fields::FieldPath;
using policy_fields::integer_in;
using policy_fields::object_with;
using policy_fields::string_of;
using policy_fields::type_name;

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Like a Kubernetes object name: it ends up in rule ids, URLs and labels.
const std::string &policy_name(const json &v, const FieldPath &at) {
  const std::string &name = string_of(v, at, policy_limits::kMaxNameBytes);
  const std::string rule = fmt::format(
      "must be 1 to {} characters of a-z, 0-9, '.', '_' or '-', starting and ending with a "
      "letter or digit",
      policy_limits::kMaxNameBytes);
  if (!is_lower_alnum(name.front()) || !is_lower_alnum(name.back())) at.fail(rule);
  for (char c : name)
    if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-') at.fail(rule);
  return name;
}

// metadata.version: an integer, or a string of one (the FaultInjectionPolicy shape writes it as a
// string, as to_json does).
std::int64_t policy_version(const json &v, const FieldPath &at) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (!v.is_string()) return integer_in(v, at, 1, kMax);
  const std::string &text = v.get_ref<const std::string &>();
  const std::string why = "must be a positive integer or a string of one";
  if (text.empty() || text.size() > 18) at.fail(why);
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') at.fail(why);
    n = n * 10 + (c - '0');
  }
  if (n < 1) at.fail(why);
  return n;
}

// RFC 9110 tchar: what a method or a header name may hold.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                        std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Checked with the options a data plane compiles it with (no logging to
// stderr, bounded memory), so a pattern accepted here compiles there too.
void check_regex(const std::string &pattern, const FieldPath &at) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(policy_limits::kRegexMaxMem);
  const RE2 re(pattern, options);
  if (!re.ok()) at.fail(fmt::format("not a valid RE2 regular expression: {}", re.error()));
}

// One string matcher of `m` (exact, prefix or regex), exactly one; `path`
// says whether the values are request paths (which start with '/').
json string_matcher(const json &m, const FieldPath &at, bool path) {
  const char *kinds[] = {"exact", "prefix", "regex"};
  const char *chosen = nullptr;
  for (const char *kind : kinds) {
    if (!m.contains(kind)) continue;
    if (chosen)
      at.fail(fmt::format("exactly one of exact, prefix, regex: both {} and {} are given", chosen,
                          kind));
    chosen = kind;
  }
  if (!chosen) at.fail("needs one of exact, prefix, regex");
  const FieldPath field = at.key(chosen);
  const std::string_view kind = chosen;
  // An empty header value is a value; an empty path never occurs.
  const std::string &value =
      string_of(m.at(chosen), field, policy_limits::kMaxPatternBytes, !path && kind != "regex");
  if (kind == "regex")
    check_regex(value, field);
  else if (path && value.front() != '/')
    field.fail("a request path starts with '/'");
  return json{{chosen, value}};
}

std::string upper(std::string s) {
  for (char &c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

// "GET" or {"exact": "GET"}; kept in the shape given, upper-cased.
json method_matcher(const json &v, const FieldPath &at) {
  const bool is_object = v.is_object();
  const FieldPath field = is_object ? at.key("exact") : at;
  if (is_object) {
    object_with(v, at, {"exact"});
    if (!v.contains("exact")) at.fail("needs exact (or write the method as a string)");
  } else if (!v.is_string()) {
    at.fail(fmt::format("must be a method name or {{\"exact\": name}}, not {}", type_name(v)));
  }
  const std::string &name =
      string_of(is_object ? v.at("exact") : v, field, policy_limits::kMaxMethodBytes);
  if (!is_token(name)) field.fail("must be an HTTP method name (letters, digits and !#$%&'*+-.^_`|~)");
  if (is_object) return json{{"exact", upper(name)}};
  return upper(name);
}

json header_matcher(const json &v, const FieldPath &at) {
  object_with(v, at, {"name", "exact", "prefix", "regex", "present"});
  if (!v.contains("name")) at.key("name").fail("is required");
  const std::string &name = string_of(v.at("name"), at.key("name"), policy_limits::kMaxHeaderNameBytes);
  if (!is_token(name)) at.key("name").fail("must be an HTTP header name (a token)");
  json out;
  if (v.contains("present")) {
    const FieldPath field = at.key("present");
    for (const char *kind : {"exact", "prefix", "regex"})
      if (v.contains(kind))
        at.fail(fmt::format("exactly one of exact, prefix, regex, present: both present and {} "
                            "are given",
                            kind));
    if (v.at("present") != json(true))
      field.fail("must be true (to match any request, leave the header out)");
    out = json{{"present", true}};
  } else if (!v.contains("exact") && !v.contains("prefix") && !v.contains("regex")) {
    at.fail("needs one of exact, prefix, regex, present");
  } else {
    out = string_matcher(v, at, false);
  }
  out["name"] = name;
  return out;
}

json match_of(const json &v, const FieldPath &at) {
  object_with(v, at, {"path", "method", "headers"});
  json out = json::object();
  if (v.contains("path")) {
    const FieldPath field = at.key("path");
    object_with(v.at("path"), field, {"exact", "prefix", "regex"});
    out["path"] = string_matcher(v.at("path"), field, true);
  }
  if (v.contains("method")) out["method"] = method_matcher(v.at("method"), at.key("method"));
  if (v.contains("headers")) {
    const FieldPath field = at.key("headers");
    const json &headers = v.at("headers");
    if (!headers.is_array()) field.fail(fmt::format("must be an array, not {}", type_name(headers)));
    if (headers.size() > policy_limits::kMaxHeaderMatchers)
      field.fail(fmt::format("at most {} entries, not {}", policy_limits::kMaxHeaderMatchers,
                             headers.size()));
    json list = json::array();
    for (std::size_t i = 0; i < headers.size(); ++i)
      list.push_back(header_matcher(headers[i], field.index(i)));
    out["headers"] = std::move(list);
  }
  return out;
}

// A whole number is kept as an integer, so 25 and 25.0 store and compile
// the same.
json percentage_of(const json &v, const FieldPath &at) {
  if (!v.is_number()) at.fail(fmt::format("must be a number from 0 to 100, not {}", type_name(v)));
  const double p = v.get<double>();
  if (!(p >= 0 && p <= 100)) at.fail(fmt::format("must be a number from 0 to 100, not {}", v.dump()));
  if (p == std::floor(p)) return static_cast<std::int64_t>(p);
  return p;
}

json delay_of(const json &v, const FieldPath &at) {
  object_with(v, at, {"fixedDelay"});
  const FieldPath field = at.key("fixedDelay");
  if (!v.contains("fixedDelay")) field.fail("is required");
  const std::string &text = string_of(v.at("fixedDelay"), field, 64);
  const std::string why = fmt::format(
      "must be a duration with a unit, e.g. \"200ms\", \"1.5s\", \"2s\" (more than 0, at most "
      "{}m), not \"{}\"",
      policy_limits::kMaxDelay.count() / 60000, text);
  // A bare number would be seconds to parse_duration, where an HTTP delay
  // is usually meant in milliseconds: a unit is required.
  if (text.back() >= '0' && text.back() <= '9') field.fail(why);
  const auto d = parse_duration(text);
  if (!d || *d <= std::chrono::nanoseconds::zero() || *d > policy_limits::kMaxDelay) field.fail(why);
  return json{{"fixedDelay", text}};
}

json abort_of(const json &v, const FieldPath &at) {
  object_with(v, at, {"httpStatus", "body"});
  if (!v.contains("httpStatus")) at.key("httpStatus").fail("is required");
  json out{{"httpStatus", integer_in(v.at("httpStatus"), at.key("httpStatus"), 200, 599)}};
  if (v.contains("body"))
    out["body"] = string_of(v.at("body"), at.key("body"), policy_limits::kMaxAbortBodyBytes, true);
  return out;
}

json fault_of(const json &v, const FieldPath &at) {
  object_with(v, at, {"percentage", "delay", "abort"});
  if (!v.contains("delay") && !v.contains("abort")) at.fail("needs a delay, an abort or both");
  json out{{"percentage", v.contains("percentage")
                              ? percentage_of(v.at("percentage"), at.key("percentage"))
                              : json(100)}};
  if (v.contains("delay")) out["delay"] = delay_of(v.at("delay"), at.key("delay"));
  if (v.contains("abort")) out["abort"] = abort_of(v.at("abort"), at.key("abort"));
  return out;
}

json rule_of(const json &v, const FieldPath &at) {
  object_with(v, at, {"priority", "match", "fault"});
  if (!v.contains("fault")) at.key("fault").fail("is required");
  json out;
  out["priority"] = v.contains("priority")
                        ? integer_in(v.at("priority"), at.key("priority"),
                                     policy_limits::kMinPriority, policy_limits::kMaxPriority)
                        : 0;
  // No match: every request.
  out["match"] = v.contains("match") ? match_of(v.at("match"), at.key("match")) : json::object();
  out["fault"] = fault_of(v.at("fault"), at.key("fault"));
  return out;
}

json rules_of(const json &v, const FieldPath &at) {
  if (!v.is_array()) at.fail(fmt::format("must be an array, not {}", type_name(v)));
  if (v.empty() || v.size() > policy_limits::kMaxRules)
    at.fail(fmt::format("must hold 1 to {} rules, not {}", policy_limits::kMaxRules, v.size()));
  json out = json::array();
  for (std::size_t i = 0; i < v.size(); ++i)
    out.push_back(rule_of(v[i], at.index(i)));
  return out;
}

}  // namespace

PolicyDraft parse_policy(const json &body) {
  const FieldPath root;
  // metadata.created_at/updated_at and status are what to_json adds: a
  // policy read back can be sent again as it is, and they are ignored.
  object_with(body, root, {"apiVersion", "kind", "metadata", "spec", "status"});
  if (body.contains("apiVersion") && body.at("apiVersion") != json(policy_limits::kApiVersion))
    root.key("apiVersion").fail(fmt::format("must be \"{}\"", policy_limits::kApiVersion));
  if (body.contains("kind") && body.at("kind") != json(policy_limits::kKind))
    root.key("kind").fail(fmt::format("must be \"{}\"", policy_limits::kKind));

  PolicyDraft draft;
  const FieldPath metadata = root.key("metadata");
  if (!body.contains("metadata")) metadata.fail("is required");
  const json &meta =
      object_with(body.at("metadata"), metadata, {"name", "version", "created_at", "updated_at"});
  if (!meta.contains("name")) metadata.key("name").fail("is required");
  draft.name = policy_name(meta.at("name"), metadata.key("name"));
  if (meta.contains("version"))
    draft.expected_version = policy_version(meta.at("version"), metadata.key("version"));

  const FieldPath spec_path = root.key("spec");
  if (!body.contains("spec")) spec_path.fail("is required");
  const json &spec =
      object_with(body.at("spec"), spec_path, {"rules", "start_delay_ms", "duration_seconds"});
  if (!spec.contains("rules")) spec_path.key("rules").fail("is required");
  draft.spec = json{{"rules", rules_of(spec.at("rules"), spec_path.key("rules"))}};
  if (spec.contains("start_delay_ms"))
    draft.start_delay_ms = integer_in(spec.at("start_delay_ms"), spec_path.key("start_delay_ms"),
                                      0, policy_limits::kMaxStartDelayMs);
  if (spec.contains("duration_seconds"))
    draft.duration_seconds =
        integer_in(spec.at("duration_seconds"), spec_path.key("duration_seconds"), 0,
                   policy_limits::kMaxDurationSeconds);
  return draft;
}

json to_json(const FaultPolicy &p) {
  json spec = p.spec;
  spec["start_delay_ms"] = p.start_delay_ms;
  spec["duration_seconds"] = p.duration_seconds;
  return json{
      {"apiVersion", policy_limits::kApiVersion},
      {"kind", policy_limits::kKind},
      {"metadata",
       {{"name", p.name},
        {"version", std::to_string(p.version)},
        {"created_at", format_time(p.created_at)},
        {"updated_at", format_time(p.updated_at)}}},
      {"spec", std::move(spec)},
      {"status",
       {{"active_from", format_time(p.active_from)},
        {"expires_at", p.expires_at ? json(format_time(*p.expires_at)) : json(nullptr)}}},
  };
}

Error policy_not_found(const std::string &name) {
  return Error(ErrorCode::NotFound, fmt::format("policy '{}' not found", name));
}

Error policy_exists(const std::string &name) {
  return Error(ErrorCode::AlreadyExists, fmt::format("policy {} already exists", name),
               {{"metadata.name", fmt::format("a policy named {} already exists", name)}});
}

Error policy_version_conflict(const std::string &name, std::int64_t stored,
                              std::int64_t expected) {
  return Error(ErrorCode::AlreadyExists,
               fmt::format("policy {} is at version {}, not {}: it changed meanwhile", name,
                           stored, expected),
               {{"metadata.version",
                 fmt::format("the stored version is {}, not {}", stored, expected)}});
}

}  // namespace blade
