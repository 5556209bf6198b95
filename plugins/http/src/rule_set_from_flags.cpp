// The classic form (`blade create http delay --path /api --time 200`): one
// rule from an experiment's flags, in the compiled rule set format, so the
// proxy applies it exactly as it applies the policies' rules.
#include <charconv>
#include <cstdio>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "fault_engine.hpp"
#include "rule_matchers.hpp"
#include "rule_set.hpp"

namespace blade::http {
namespace {

using nlohmann::json;

[[noreturn]] void fail(std::string_view flag, std::string_view what) {
  throw std::invalid_argument(std::string(flag) + ": " + std::string(what));
}

// The host has checked the flags against the spec already; a plugin still
// trusts no input, so each is parsed again here, by name.
std::int64_t integer_flag(std::string_view flag, const std::string &text, std::int64_t min,
                          std::int64_t max) {
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    fail(flag, "\"" + text + "\" is not an integer");
  if (n < min || n > max)
    fail(flag, "must be from " + std::to_string(min) + " to " + std::to_string(max));
  return n;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// "Name=value" entries, comma-separated, any number of flag occurrences.
json header_matchers(const std::vector<std::string> &values) {
  json out = json::array();
  for (const std::string &value : values) {
    std::string_view rest(value);
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view entry = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (entry.empty()) continue;  // "a=1, ,b=2" or a trailing comma
      auto eq = entry.find('=');
      if (eq == std::string_view::npos)
        fail("header", "\"" + std::string(entry) + "\" is not Name=value");
      std::string_view name = entry.substr(0, eq);
      if (!is_token(name)) fail("header", "\"" + std::string(name) + "\" is not a header name");
      out.push_back({{"name", to_lower(name)}, {"exact", std::string(entry.substr(eq + 1))}});
    }
  }
  return out;
}

json path_matcher(const std::map<std::string, std::string, std::less<>> &flags) {
  static constexpr std::pair<const char *, const char *> kPathFlags[] = {
      {"path", "exact"}, {"path-prefix", "prefix"}, {"path-regex", "regex"}};
  const char *given = nullptr;
  json out;
  for (auto [flag, kind] : kPathFlags) {
    auto it = flags.find(flag);
    if (it == flags.end()) continue;
    if (given) fail(std::string(given) + ", " + flag, "give at most one of them");
    given = flag;
    const std::string &text = it->second;
    if (std::string_view(kind) == "regex") {
      std::string error;
      if (!compile_regex(text, error)) fail(flag, "not a valid RE2 expression: " + error);
    } else if (!text.starts_with('/')) {
      fail(flag, "must start with '/'");
    }
    out = {{kind, text}};
  }
  return out;
}

// FNV-1a, 64 bits, as 16 hex digits: the set's version only has to change
// when its rules do.
std::string version_of(const std::string &text) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

}  // namespace

std::string rule_set_from_flags(std::string_view action,
                                const std::vector<std::pair<std::string, std::string>> &flags) {
  if (action != "delay" && action != "abort")
    throw std::invalid_argument("action: \"" + std::string(action) +
                                "\" is neither delay nor abort");
  std::map<std::string, std::string, std::less<>> single;
  std::vector<std::string> headers;
  for (const auto &[name, value] : flags) {
    if (name == "header")
      headers.push_back(value);
    else
      single[name] = value;
  }
  auto flag = [&](std::string_view name) -> const std::string * {
    auto it = single.find(name);
    return it == single.end() ? nullptr : &it->second;
  };

  json match = json::object();
  if (json path = path_matcher(single); !path.is_null()) match["path"] = std::move(path);
  if (const std::string *method = flag("method")) {
    if (!is_token(*method)) fail("method", "\"" + *method + "\" is not an HTTP method");
    std::string upper = *method;
    for (char &c : upper)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    match["method"] = upper;
  }
  if (json h = header_matchers(headers); !h.empty()) match["headers"] = std::move(h);

  json fault = json::object();
  const std::string *percent = flag("percent");
  fault["percentage"] = percent ? integer_flag("percent", *percent, 0, 100) : 100;
  if (action == "delay") {
    const std::string *time = flag("time");
    if (!time) fail("time", "is required");
    // The spec's bound (600000 ms) is tighter than a rule's; both apply.
    fault["delay_ms"] = integer_flag("time", *time, 0, std::min<std::int64_t>(600000, kMaxDelayMs));
    if (const std::string *offset = flag("offset")) {
      std::int64_t jitter = integer_flag("offset", *offset, 0, 600000);
      if (jitter > 0) fault["delay_jitter_ms"] = jitter;
    }
  } else {
    const std::string *code = flag("code");
    if (!code) fail("code", "is required");
    const std::string *body = flag("body");
    fault["abort"] = {{"status", integer_flag("code", *code, kMinAbortStatus, kMaxAbortStatus)},
                      {"body", body ? *body : std::string()}};
  }

  json rules = json::array({{{"id", "flags/0"},
                             {"policy", "flags"},
                             {"index", 0},
                             {"priority", 0},
                             {"match", std::move(match)},
                             {"fault", std::move(fault)},
                             {"active_from_ms", 0},
                             {"active_until_ms", nullptr}}});
  std::string rules_text = rules.dump();
  return json{{"version", version_of(rules_text)}, {"rules", std::move(rules)}}.dump();
}

}  // namespace blade::http
