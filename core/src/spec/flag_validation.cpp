#include "blade/core/spec/flag_validation.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/duration.hpp"
#include "blade/core/model/error.hpp"

namespace blade {
namespace {

// The outcome of checking one value: the normalised value, or why not.
struct Checked {
  std::string value;
  std::string problem;
  bool ok() const { return problem.empty(); }
};

Checked accept(std::string value) {
  return {std::move(value), {}};
}
Checked reject(std::string problem) {
  return {{}, std::move(problem)};
}

// User input is echoed back in descriptions; keep it short and printable so
// a hostile value cannot bloat or garble the error a client displays.
std::string quote(std::string_view value) {
  constexpr std::size_t kMaxShown = 64;
  std::string shown = "\"";
  for (char c : value.substr(0, kMaxShown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      shown += fmt::format("\\x{:02x}", byte);
    } else {
      if (c == '"' || c == '\\') shown += '\\';
      shown += c;
    }
  }
  shown += '"';
  if (value.size() > kMaxShown) shown += "...";
  return shown;
}

bool is_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Flag values end up in the argv of external programs; control characters
// there are never intended and can forge log lines or terminal output.
bool has_control(std::string_view text, bool allow_whitespace) {
  return std::any_of(text.begin(), text.end(), [allow_whitespace](char c) {
    const auto byte = static_cast<unsigned char>(c);
    if (allow_whitespace && (c == '\t' || c == '\n')) return false;
    return byte < 0x20 || byte == 0x7f;
  });
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  const bool negative = !text.empty() && text.front() == '-';
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  if (!is_digits(text)) return std::nullopt;
  // Parse the magnitude with the sign in place, so INT64_MIN still fits.
  std::string signed_text = negative ? "-" : "";
  signed_text.append(text);
  std::int64_t value = 0;
  const char *last = signed_text.data() + signed_text.size();
  const auto [end, error] = std::from_chars(signed_text.data(), last, value);
  if (error != std::errc() || end != last) return std::nullopt;
  return value;
}

std::optional<double> parse_float(std::string_view text) {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return std::nullopt;
  }
  double value = 0;
  const char *last = text.data() + text.size();
  const auto [end, error] = std::from_chars(text.data(), last, value);
  if (text.empty() || error != std::errc() || end != last || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Empty means "on": a noArgs switch given without a value (--force).
std::optional<bool> parse_bool(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  if (lower.empty() || lower == "true" || lower == "1" || lower == "yes") return true;
  if (lower == "false" || lower == "0" || lower == "no") return false;
  return std::nullopt;
}

std::optional<int> parse_port(std::string_view text) {
  if (!is_digits(text) || text.size() > 5) return std::nullopt;
  int port = 0;
  std::from_chars(text.data(), text.data() + text.size(), port);
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

// Returns the address family, or 0 when `text` is not an address.
int ip_family(std::string_view text) {
  const std::string address(text);
  unsigned char buffer[16];
  if (inet_pton(AF_INET, address.c_str(), buffer) == 1) return AF_INET;
  if (inet_pton(AF_INET6, address.c_str(), buffer) == 1) return AF_INET6;
  return 0;
}

// Empty when `number` lies within the flag's bounds; `got` is the value as
// the user wrote it, `unit` follows the bounds ("seconds").
std::string range_problem(const FlagSpec &flag, double number, std::string_view got,
                          std::string_view unit = {}) {
  const bool below = flag.min && number < *flag.min;
  const bool above = flag.max && number > *flag.max;
  if (!below && !above) return {};
  const std::string suffix = unit.empty() ? "" : fmt::format(" {}", unit);
  if (flag.min && flag.max) {
    return fmt::format("must be between {} and {}{}, got {}", *flag.min, *flag.max, suffix, got);
  }
  if (below) return fmt::format("must be at least {}{}, got {}", *flag.min, suffix, got);
  return fmt::format("must be at most {}{}, got {}", *flag.max, suffix, got);
}

Checked check_bool(std::string_view value) {
  const std::optional<bool> parsed = parse_bool(value);
  if (!parsed) return reject(fmt::format("must be true or false, got {}", quote(value)));
  return accept(*parsed ? "true" : "false");
}

// Integers are re-printed so that "+05" reaches a plugin as "5", never as
// something a C tool might read as octal.
Checked check_int(const FlagSpec &flag, std::string_view value) {
  const std::optional<std::int64_t> parsed = parse_int(value);
  if (!parsed) return reject(fmt::format("must be a 64-bit integer, got {}", quote(value)));
  std::string problem = range_problem(flag, static_cast<double>(*parsed), std::to_string(*parsed));
  if (!problem.empty()) return reject(std::move(problem));
  return accept(std::to_string(*parsed));
}

Checked check_float(const FlagSpec &flag, std::string_view value) {
  const std::optional<double> parsed = parse_float(value);
  if (!parsed) return reject(fmt::format("must be a number, got {}", quote(value)));
  std::string problem = range_problem(flag, *parsed, value);
  if (!problem.empty()) return reject(std::move(problem));
  return accept(std::string(value));
}

Checked check_duration(const FlagSpec &flag, std::string_view value) {
  const std::optional<std::chrono::nanoseconds> parsed = parse_duration(value);
  if (!parsed) {
    return reject(
        fmt::format("must be a duration like 90, 90s, 5m or 1h30m, got {}", quote(value)));
  }
  const double seconds = std::chrono::duration<double>(*parsed).count();
  std::string problem = range_problem(flag, seconds, quote(value), "seconds");
  if (!problem.empty()) return reject(std::move(problem));
  return accept(std::string(value));
}

Checked check_ip(std::string_view value) {
  if (ip_family(value) == 0) {
    return reject(fmt::format("must be an IPv4 or IPv6 address, got {}", quote(value)));
  }
  return accept(std::string(value));
}

Checked check_cidr(std::string_view value) {
  const std::size_t slash = value.find('/');
  const int family = ip_family(value.substr(0, slash));
  if (family == 0) {
    return reject(
        fmt::format("must be an IP address or a CIDR like 10.0.0.0/8, got {}", quote(value)));
  }
  if (slash == std::string_view::npos) return accept(std::string(value));
  const std::string_view prefix = value.substr(slash + 1);
  const int max_prefix = family == AF_INET ? 32 : 128;
  const std::optional<std::int64_t> bits =
      is_digits(prefix) && prefix.size() <= 3 ? parse_int(prefix) : std::nullopt;
  if (!bits || *bits > max_prefix) {
    return reject(
        fmt::format("prefix length must be between 0 and {}, got {}", max_prefix, quote(value)));
  }
  return accept(std::string(value));
}

Checked check_port(const FlagSpec &flag, std::string_view value) {
  const std::optional<int> port = parse_port(value);
  if (!port) return reject(fmt::format("must be a port between 1 and 65535, got {}", quote(value)));
  std::string problem = range_problem(flag, *port, std::to_string(*port));
  if (!problem.empty()) return reject(std::move(problem));
  return accept(std::to_string(*port));
}

Checked check_port_range(std::string_view value) {
  const std::size_t dash = value.find('-');
  const std::optional<int> first = parse_port(value.substr(0, dash));
  const std::optional<int> last =
      dash == std::string_view::npos ? first : parse_port(value.substr(dash + 1));
  if (!first || !last) {
    return reject(
        fmt::format("must be a port or a port range like 8000-8080, got {}", quote(value)));
  }
  if (*first > *last) {
    return reject(fmt::format("range start must not exceed its end, got {}", quote(value)));
  }
  if (dash == std::string_view::npos) return accept(std::to_string(*first));
  return accept(fmt::format("{}-{}", *first, *last));
}

// Paths are checked strictly (no control character at all), since a
// newline in a path handed to a tool is never what a user meant.
Checked check_path(std::string_view value) {
  if (value.empty()) return reject("must not be empty");
  if (has_control(value, false)) return reject("must not contain NUL or control characters");
  if (value.front() != '/')
    return reject(fmt::format("must be an absolute path, got {}", quote(value)));
  return accept(std::string(value));
}

Checked check_enum(const FlagSpec &flag, std::string_view value) {
  if (std::find(flag.values.begin(), flag.values.end(), value) == flag.values.end()) {
    return reject(
        fmt::format("must be one of {}; got {}", fmt::join(flag.values, ", "), quote(value)));
  }
  return accept(std::string(value));
}

Checked check_string(std::string_view value) {
  if (has_control(value, true)) return reject("must not contain NUL or control characters");
  return accept(std::string(value));
}

Checked check_single(const FlagSpec &flag, std::string_view value) {
  switch (flag.type) {
    case FlagType::Bool:
      return check_bool(value);
    case FlagType::Int:
      return check_int(flag, value);
    case FlagType::Float:
      return check_float(flag, value);
    case FlagType::Duration:
      return check_duration(flag, value);
    case FlagType::Ip:
      return check_ip(value);
    case FlagType::Cidr:
      return check_cidr(value);
    case FlagType::Port:
      return check_port(flag, value);
    case FlagType::PortRange:
      return check_port_range(value);
    case FlagType::Path:
      return check_path(value);
    case FlagType::Enum:
      return check_enum(flag, value);
    case FlagType::String:
      return check_string(value);
  }
  return check_string(value);
}

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::vector<std::string_view> split_list(std::string_view value) {
  std::vector<std::string_view> elements;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = value.find(',', start);
    elements.push_back(trim(value.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return elements;
}

// Every element is checked, and all bad ones named, so one correction fixes
// the whole list.
Checked check_list(const FlagSpec &flag, std::string_view value) {
  std::vector<std::string> normalised;
  std::vector<std::string> problems;
  const std::vector<std::string_view> elements = split_list(value);
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (elements[i].empty()) {
      problems.push_back(fmt::format("element {} is empty", i + 1));
      continue;
    }
    Checked checked = check_single(flag, elements[i]);
    if (checked.ok()) {
      normalised.push_back(std::move(checked.value));
    } else {
      problems.push_back(fmt::format("element {}: {}", i + 1, checked.problem));
    }
  }
  if (!problems.empty()) return reject(fmt::format("{}", fmt::join(problems, "; ")));
  return accept(fmt::format("{}", fmt::join(normalised, ",")));
}

Checked check_value(const FlagSpec &flag, std::string_view value) {
  return flag.list ? check_list(flag, value) : check_single(flag, value);
}

std::string summary(const std::vector<FieldError> &problems) {
  const FieldError &first = problems.front();
  std::string message = fmt::format("{}: {}", first.field, first.description);
  if (problems.size() > 1) message += fmt::format(" (and {} more)", problems.size() - 1);
  return message;
}

std::string field_of(std::string_view name) {
  return fmt::format("flags.{}", name);
}

// A switch given as "" is on; for any other flag an empty value is as good
// as absent, so a required one is still missing.
bool missing(const FlagSpec &flag, const std::string *value) {
  if (value == nullptr) return true;
  return value->empty() && !flag.no_args;
}

}  // namespace

FlagValues flags_from_json(const nlohmann::json &flags) {
  if (!flags.is_object()) {
    throw Error(ErrorCode::InvalidArgument, "flags: must be a JSON object",
                {{"flags", "must be a JSON object"}});
  }
  FlagValues values;
  std::vector<FieldError> problems;
  for (const auto &[name, value] : flags.items()) {
    if (value.is_string()) {
      values[name] = value.get<std::string>();
    } else if (value.is_boolean()) {
      values[name] = value.get<bool>() ? "true" : "false";
    } else if (value.is_number_unsigned()) {
      values[name] = std::to_string(value.get<std::uint64_t>());
    } else if (value.is_number_integer()) {
      values[name] = std::to_string(value.get<std::int64_t>());
    } else if (value.is_number_float() && std::isfinite(value.get<double>())) {
      // fmt prints the shortest text that reads back as the same double.
      values[name] = fmt::format("{}", value.get<double>());
    } else {
      problems.push_back({field_of(name), "must be a string, number or boolean"});
    }
  }
  if (!problems.empty()) throw Error(ErrorCode::InvalidArgument, summary(problems), problems);
  return values;
}

FlagValues validate_flags(const TargetSpec &target, const ActionSpec &action,
                          const FlagValues &input) {
  const std::vector<const FlagSpec *> flags = effective_flags(target, action);
  std::vector<FieldError> problems;
  for (const auto &[name, value] : input) {
    const bool known =
        std::any_of(flags.begin(), flags.end(),
                    [&name = name](const FlagSpec *flag) { return flag->name == name; });
    if (!known) {
      problems.push_back(
          {field_of(name), fmt::format("unknown flag for {} {}", target.target, action.name)});
    }
  }
  FlagValues output;
  std::set<std::string_view> done;
  for (const FlagSpec *flag : flags) {
    if (!done.insert(flag->name).second) continue;
    const auto found = input.find(flag->name);
    const std::string *value = found == input.end() ? nullptr : &found->second;
    if (missing(*flag, value)) {
      if (flag->required) {
        problems.push_back({field_of(flag->name), "required"});
        continue;
      }
      if (value == nullptr && flag->default_value) value = &*flag->default_value;
      if (value == nullptr) continue;
    }
    Checked checked = check_value(*flag, *value);
    if (checked.ok()) {
      output[flag->name] = std::move(checked.value);
    } else {
      problems.push_back({field_of(flag->name), std::move(checked.problem)});
    }
  }
  if (!problems.empty()) throw Error(ErrorCode::InvalidArgument, summary(problems), problems);
  return output;
}

}  // namespace blade
