// YAML from bladed's config file as JSON, for the plugins: sections that are
// handed to plugins as JSON (host_info.config_json).
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace blade::server {

// Converts `node`. Plain scalars are typed as YAML 1.2's core schema types
// them (null, true/false, integers, floats; anything else a string); quoted
// scalars are always strings. Mapping keys must be scalars. Throws
// std::invalid_argument naming `path` (e.g. "plugins.os.hosts[1]") for a
// non-scalar key, a duplicate key, or nesting deeper than `max_depth`.
nlohmann::json yaml_to_json(const YAML::Node &node, const std::string &path,
                            std::size_t max_depth);

}  // namespace blade::server
