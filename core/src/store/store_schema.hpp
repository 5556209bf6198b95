// The store's schema as numbered migrations. Migration i (counting from 0)
// takes a database from PRAGMA user_version i to i + 1.
#pragma once

#include <span>
#include <string_view>

namespace blade::store_schema {

// Append only: a migration that has shipped is never edited, since
// databases in the field already ran it.
std::span<const std::string_view> migrations();

// The user_version this code creates and understands.
inline int latest_version() {
  return static_cast<int>(migrations().size());
}

}  // namespace blade::store_schema
