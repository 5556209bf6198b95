#include "request_id.hpp"

#include <cctype>

#include "blade/core/model/experiment.hpp"
#include "header_value.hpp"

namespace blade::server {

std::string request_id_for(const httplib::Request &req) {
  static const std::string kRequestId = "X-Request-Id";
  const std::string *given = header_value(req, kRequestId);
  if (!given) return new_uid();
  const std::string &id = *given;
  if (id.empty() || id.size() > 64) return new_uid();
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return new_uid();
  }
  return id;
}

}  // namespace blade::server
