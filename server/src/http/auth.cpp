#include "auth.hpp"

#include "header_value.hpp"

namespace blade::server {

std::optional<std::string_view> request_token(const httplib::Request &req) {
  static const std::string kApiToken = "X-Api-Token";
  static const std::string kAuthorization = "Authorization";
  if (const std::string *token = header_value(req, kApiToken)) return *token;
  const std::string *auth = header_value(req, kAuthorization);
  constexpr std::string_view kBearer = "Bearer ";
  if (auth && auth->size() > kBearer.size() && auth->compare(0, kBearer.size(), kBearer) == 0)
    return std::string_view(*auth).substr(kBearer.size());
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
