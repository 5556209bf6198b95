#include "hop_headers.hpp"

#include <string>
#include <vector>

#include <boost/beast/http/rfc7230.hpp>

namespace blade::http {

void strip_hop_by_hop(boost::beast::http::fields &fields) {
  namespace bh = boost::beast::http;
  // The names Connection lists are read before Connection itself goes.
  std::vector<std::string> named;
  for (auto range = fields.equal_range(bh::field::connection); range.first != range.second;
       ++range.first) {
    for (const auto &token : bh::token_list(range.first->value()))
      named.emplace_back(token.data(), token.size());
  }
  for (const auto &name : named) {
    // Framing fields are never dropped for a name Connection lists: without
    // them the next hop would read the body's end elsewhere than this one.
    const bh::field f = bh::string_to_field(boost::beast::string_view(name.data(), name.size()));
    if (f == bh::field::content_length || f == bh::field::transfer_encoding || f == bh::field::host)
      continue;
    fields.erase(boost::beast::string_view(name.data(), name.size()));
  }
  for (bh::field f : {bh::field::connection, bh::field::keep_alive, bh::field::proxy_connection,
                      bh::field::proxy_authenticate, bh::field::proxy_authorization, bh::field::te,
                      bh::field::trailer, bh::field::upgrade})
    fields.erase(f);
}

}  // namespace blade::http
