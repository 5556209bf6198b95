// The header fields that belong to one connection, not to the message
// (RFC 9110 section 7.6.1): a proxy drops them before forwarding, in both
// directions, and frames each hop itself.
#pragma once

#include <boost/beast/http/fields.hpp>

namespace blade::http {

// Removes Connection and every field it names, Keep-Alive, Proxy-Connection,
// Proxy-Authenticate, Proxy-Authorization, TE, Trailer and Upgrade.
// Transfer-Encoding and Content-Length stay: they frame the body, which is
// relayed as it came (chunked stays chunked).
void strip_hop_by_hop(boost::beast::http::fields &fields);

}  // namespace blade::http
