#include "blade/core/plugin/plugin_json.hpp"

namespace blade {

nlohmann::json to_json(const PluginRecord &r) {
  return {{"name", r.name},
          {"version", r.version},
          {"abi", r.abi},
          {"path", r.path.string()},
          {"targets", r.targets},
          {"status", r.status == PluginRecord::Status::Loaded ? "loaded" : "refused"},
          {"error", r.error},
          {"configured", r.configured},
          // Stored as text by the loader, which parsed it once already.
          {"config_schema", r.config_schema.empty() ? nlohmann::json(nullptr)
                                                    : nlohmann::json::parse(r.config_schema)}};
}

}  // namespace blade
