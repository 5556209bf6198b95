#include "request_id.hpp"

#include <cctype>

#include "blade/core/model/experiment.hpp"

namespace blade::server {

std::string request_id_for(const httplib::Request &req) {
  // The first of the header's values, as get_header_value reads it, without
  // its copy.
  const auto given = req.headers.equal_range("X-Request-Id");
  if (given.first == given.second) return new_uid();
  const std::string &id = given.first->second;
  if (id.empty() || id.size() > 64) return new_uid();
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return new_uid();
  }
  return id;
}

}  // namespace blade::server
