#include "auth.hpp"

namespace blade::server {

std::optional<std::string> request_token(const httplib::Request &req) {
  if (req.has_header("X-Api-Token")) return req.get_header_value("X-Api-Token");
  const std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() > kBearer.size() && auth.compare(0, kBearer.size(), kBearer) == 0)
    return auth.substr(kBearer.size());
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the expected length whatever the guess, folding every difference
  // (and a length mismatch) into one accumulator.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < b.size(); ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

}  // namespace blade::server
