#include "request_id.hpp"

#include <cctype>
#include <random>

namespace blade::server {

std::string fresh_request_id() {
  thread_local std::mt19937_64 generator{[] {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  }()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t bits = generator();
  std::string id(16, '0');
  for (auto it = id.rbegin(); it != id.rend(); ++it, bits >>= 4)
    *it = kHex[bits & 0xf];
  return id;
}

std::string request_id_for(const httplib::Request &req) {
  // The first of the header's values, as get_header_value reads it, without
  // its copy.
  const auto given = req.headers.equal_range("X-Request-Id");
  if (given.first == given.second) return fresh_request_id();
  const std::string &id = given.first->second;
  if (id.empty() || id.size() > 64) return fresh_request_id();
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return fresh_request_id();
  }
  return id;
}

}  // namespace blade::server
