// The JSON shape of plugins in the API (GET /v1/plugins, check-plugin,
// blade plugin install's validation child).
#pragma once

#include <nlohmann/json.hpp>

#include "blade/core/plugin/plugin_record.hpp"

namespace blade {

nlohmann::json to_json(const PluginRecord &record);

}  // namespace blade
