#include "meter_config.hpp"

#include <blade/plugin.hpp>
#include <nlohmann/json.hpp>

namespace blade::os {

Meter meter_from_config(const std::string &config_json, std::string_view key) {
  const auto config = nlohmann::json::parse(config_json, nullptr, false);
  if (!config.is_object()) return Meter::host;  // the host hands an object; "{}" when none
  const auto it = config.find(key);
  if (it == config.end()) return Meter::host;
  if (it->is_string() && *it == "host") return Meter::host;
  if (it->is_string() && *it == "cgroup") return Meter::cgroup;
  // A configuration error, not the request's: the request is not at fault.
  throw sdk::FailedPrecondition("configuration " + std::string(key) + ": " + it->dump() +
                                " is neither \"host\" nor \"cgroup\"");
}

}  // namespace blade::os
