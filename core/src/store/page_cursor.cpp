#include "page_cursor.hpp"

#include <charconv>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"

namespace blade::page_cursor {
namespace {

[[noreturn]] void refuse(std::string_view text) {
  throw Error(ErrorCode::InvalidArgument, "invalid after",
              {{"after", fmt::format("not a cursor this server wrote: \"{}\" (pass a page's "
                                     "`next` as it is)",
                                     text.substr(0, 64))}});
}

std::uint64_t hex_field(std::string_view field, std::string_view whole) {
  // Lowercase hex digits only, 1 to 16 of them: one spelling per value.
  if (field.empty() || field.size() > 16) refuse(whole);
  for (char c : field)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) refuse(whole);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value, 16);
  if (ec != std::errc() || end != field.data() + field.size()) refuse(whole);
  return value;
}

}  // namespace

std::string encode(Position p) {
  return fmt::format("{:x}.{:x}", static_cast<std::uint64_t>(p.created_at_ms),
                     static_cast<std::uint64_t>(p.id));
}

Position decode(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) refuse(text);
  Position p;
  p.created_at_ms = static_cast<std::int64_t>(hex_field(text.substr(0, dot), text));
  const std::uint64_t id = hex_field(text.substr(dot + 1), text);
  // Row ids start at 1 and are positive 64-bit integers.
  if (id == 0 || id > static_cast<std::uint64_t>(INT64_MAX)) refuse(text);
  p.id = static_cast<std::int64_t>(id);
  return p;
}

}  // namespace blade::page_cursor
