// The read-only pages of the loaded ELF objects (bladed, its libraries,
// the plugins) that the process maps but never wrote.
#pragma once

#include <cstddef>

namespace blade::server {

// Unmaps those pages; returns the bytes advised. They stay in the page
// cache, and a page is mapped again when next used. Only segments without
// write permission, of objects without text relocations, are touched, and
// in them only pages that are the file's: no page this process changed
// (relocated data, relro, a patched text page) is ever dropped.
std::size_t release_code_pages();

}  // namespace blade::server
