#include "chaosblade_response.hpp"

namespace blade::server {

void send_chaosblade(httplib::Response &res, int status, const ChaosbladeResponse &response) {
  res.status = status;
  // Replacement keeps a response from throwing on a value with invalid UTF-8.
  res.set_content(to_json(response).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

}  // namespace blade::server
