#include "plugin_config.hpp"

#include <optional>

#include <fmt/format.h>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/plugin/config_schema.hpp"
#include "blade/core/plugin/plugin_record.hpp"

namespace blade {

PluginConfig plugin_config(const blade_plugin_descriptor &d, const HostSettings &settings) {
  const std::string name = d.name;
  PluginConfig out;
  const char *schema_text = BLADE_HAS_MEMBER(&d, config_schema) ? d.config_schema : nullptr;
  auto section_it = settings.plugin_configs.find(name);
  out.configured = section_it != settings.plugin_configs.end();

  if (!schema_text) {
    if (out.configured)
      throw PluginRefused(fmt::format("plugin {} takes no configuration (its descriptor declares "
                                      "no config_schema), but the config file has a "
                                      "plugins.{} section",
                                      name, name),
                          name);
    return out;
  }

  std::optional<ConfigSchema> schema;
  try {
    schema.emplace(ConfigSchema::parse(schema_text));
  } catch (const ConfigSchemaError &e) {
    throw PluginRefused(fmt::format("invalid config_schema: {}", e.what()), name);
  }
  out.schema_json = schema->json().dump();

  nlohmann::json section = nlohmann::json::object();
  if (out.configured) {
    // Made by the config reader from YAML it bounded; a failure here is a
    // caller's mistake, still reported rather than trusted.
    BoundedJson parsed = parse_bounded_json(section_it->second);
    if (parsed.problem != JsonProblem::None)
      throw PluginRefused(fmt::format("plugins.{}: not a JSON text", name), name);
    section = std::move(parsed.value);
  }
  try {
    out.config_json = schema->apply(section, "plugins." + name).dump();
  } catch (const ConfigInvalid &e) {
    throw PluginRefused(fmt::format("invalid configuration: {}", e.what()), name);
  }
  return out;
}

}  // namespace blade
