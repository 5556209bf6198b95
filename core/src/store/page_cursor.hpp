// The `next` cursor of a list page, passed back as `after`: the position
// of the page's last row in the list order (created_at_ms, then id). Opaque
// to clients; written "<created_at_ms>.<id>", each in lowercase hex (the
// milliseconds as their 64-bit two's complement), so it never needs
// escaping in a query string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace blade::page_cursor {

struct Position {
  std::int64_t created_at_ms = 0;
  std::int64_t id = 0;
};

std::string encode(Position p);
// Error(InvalidArgument) naming the field `after` for anything encode()
// could not have written.
Position decode(std::string_view text);

}  // namespace blade::page_cursor
