// The JSON shape of plugins in the API (GET /v1/plugins, check-plugin).
#pragma once

#include <nlohmann/json.hpp>

#include "blade/core/plugin_record.hpp"

namespace blade::server {

nlohmann::json to_json(const PluginRecord &record);

}  // namespace blade::server
