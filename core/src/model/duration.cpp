#include "blade/core/model/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace blade {
namespace {

// Durations are accumulated as an unsigned magnitude so that the most
// negative value (-2^63 ns) is still representable before the sign is
// applied.
using Magnitude = std::uint64_t;

constexpr Magnitude kMaxPositive = std::numeric_limits<std::int64_t>::max();
constexpr Magnitude kMaxNegative = kMaxPositive + 1;
constexpr Magnitude kNanosPerSecond = 1'000'000'000;

struct Unit {
  std::string_view name;
  Magnitude nanos;
};

// Go accepts both the micro sign (U+00B5) and the Greek small mu (U+03BC);
// users copy durations from Go programs' output, so we do too.
constexpr std::array<Unit, 8> kUnits{{
    {"ns", 1},
    {"us", 1'000},
    {"\u00b5s", 1'000},
    {"\u03bcs", 1'000},
    {"ms", 1'000'000},
    {"s", kNanosPerSecond},
    {"m", 60 * kNanosPerSecond},
    {"h", 3600 * kNanosPerSecond},
}};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// Consumes leading digits into `value`; false on overflow.
bool take_integer(std::string_view &text, Magnitude &value, std::size_t &digits) {
  value = 0;
  digits = 0;
  while (!text.empty() && is_digit(text.front())) {
    const Magnitude digit = static_cast<Magnitude>(text.front() - '0');
    if (value > (kMaxNegative - digit) / 10) return false;
    value = value * 10 + digit;
    text.remove_prefix(1);
    ++digits;
  }
  return true;
}

// Digits after the decimal point. Digits beyond what 64 bits can scale are
// below nanosecond resolution for every unit, so they are dropped rather
// than treated as overflow.
struct Fraction {
  Magnitude numerator = 0;
  double scale = 1;
  std::size_t digits = 0;
};

Fraction take_fraction(std::string_view &text) {
  Fraction fraction;
  bool saturated = false;
  while (!text.empty() && is_digit(text.front())) {
    const Magnitude digit = static_cast<Magnitude>(text.front() - '0');
    if (!saturated && fraction.numerator <= (kMaxPositive - digit) / 10) {
      fraction.numerator = fraction.numerator * 10 + digit;
      fraction.scale *= 10;
    } else {
      saturated = true;
    }
    text.remove_prefix(1);
    ++fraction.digits;
  }
  return fraction;
}

std::optional<Magnitude> take_unit(std::string_view &text) {
  std::size_t length = 0;
  while (length < text.size() && !is_digit(text[length]) && text[length] != '.')
    ++length;
  const std::string_view name = text.substr(0, length);
  for (const Unit &unit : kUnits) {
    if (unit.name == name) {
      text.remove_prefix(length);
      return unit.nanos;
    }
  }
  return std::nullopt;
}

// One "<number><unit>" term, e.g. "1.5h"; nullopt when malformed or too big.
std::optional<Magnitude> take_term(std::string_view &text) {
  Magnitude whole = 0;
  std::size_t whole_digits = 0;
  if (!take_integer(text, whole, whole_digits)) return std::nullopt;
  Fraction fraction;
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    fraction = take_fraction(text);
  }
  if (whole_digits == 0 && fraction.digits == 0) return std::nullopt;
  const std::optional<Magnitude> unit = take_unit(text);
  if (!unit) return std::nullopt;
  if (whole > kMaxNegative / *unit) return std::nullopt;
  Magnitude nanos = whole * *unit;
  if (fraction.numerator > 0) {
    // Like Go, the sub-unit part goes through a double: exact for every
    // fraction a person writes, and it cannot overflow because it is < unit.
    const double part =
        static_cast<double>(fraction.numerator) * (static_cast<double>(*unit) / fraction.scale);
    nanos += static_cast<Magnitude>(part);
  }
  if (nanos > kMaxNegative) return std::nullopt;
  return nanos;
}

std::optional<Magnitude> parse_terms(std::string_view text) {
  // A bare integer means seconds, as ChaosBlade's --timeout did.
  if (all_digits(text)) {
    Magnitude seconds = 0;
    std::size_t digits = 0;
    if (!take_integer(text, seconds, digits)) return std::nullopt;
    if (seconds > kMaxNegative / kNanosPerSecond) return std::nullopt;
    return seconds * kNanosPerSecond;
  }
  if (text.empty()) return std::nullopt;
  Magnitude total = 0;
  while (!text.empty()) {
    const std::optional<Magnitude> term = take_term(text);
    if (!term || *term > kMaxNegative - total) return std::nullopt;
    total += *term;
  }
  return total;
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  const std::optional<Magnitude> magnitude = parse_terms(text);
  if (!magnitude) return std::nullopt;
  if (!negative) {
    if (*magnitude > kMaxPositive) return std::nullopt;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(*magnitude));
  }
  if (*magnitude == 0) return std::chrono::nanoseconds(0);
  // -(m - 1) - 1 avoids negating 2^63, which does not fit in int64.
  return std::chrono::nanoseconds(-static_cast<std::int64_t>(*magnitude - 1) - 1);
}

}  // namespace blade
