#include "blade/core/plugin_json.hpp"

namespace blade {

nlohmann::json to_json(const PluginRecord &r) {
  return {{"name", r.name},
          {"version", r.version},
          {"abi", r.abi},
          {"path", r.path.string()},
          {"targets", r.targets},
          {"status", r.status == PluginRecord::Status::Loaded ? "loaded" : "refused"},
          {"error", r.error}};
}

}  // namespace blade
