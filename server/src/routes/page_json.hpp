// A list page as the API answers it: {"items", "total", "next"}, the same
// for every list the store pages (docs/http-api.md, Paging).
#pragma once

#include <nlohmann/json.hpp>

#include "blade/core/store/store.hpp"

namespace blade::server {

// `view` turns one item into its JSON. `next` is always there: the cursor
// to pass as `after` while more items follow, null on the last page.
template <class T, class View>
nlohmann::json page_json(const Page<T> &page, View &&view) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto &item : page.items)
    items.push_back(view(item));
  nlohmann::json next = nullptr;
  if (!page.next.empty()) next = page.next;
  return {{"items", std::move(items)}, {"total", page.total}, {"next", std::move(next)}};
}

}  // namespace blade::server
