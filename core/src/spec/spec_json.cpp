#include "blade/core/spec/spec_json.hpp"

namespace blade {
namespace {

nlohmann::json flags_json(const std::vector<FlagSpec> &flags, bool matcher) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto &f : flags) {
    auto j = to_json(f);
    j["matcher"] = matcher;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const FlagSpec &f) {
  nlohmann::json j = {
      {"name", f.name},
      {"desc", f.desc},
      {"type", std::string(to_string(f.type))},
      {"list", f.list},
      {"no_args", f.no_args},
      {"required", f.required},
      {"required_when_destroyed", f.required_when_destroyed},
      {"default", f.default_value ? nlohmann::json(*f.default_value) : nlohmann::json(nullptr)},
      {"min", f.min ? nlohmann::json(*f.min) : nlohmann::json(nullptr)},
      {"max", f.max ? nlohmann::json(*f.max) : nlohmann::json(nullptr)},
      {"values", f.values}};
  return j;
}

FlagSpec flag_spec_from_json(const nlohmann::json &j) {
  FlagSpec f;
  f.name = j.value("name", "");
  f.desc = j.value("desc", "");
  if (auto type = flag_type_from_string(j.value("type", "string"))) f.type = *type;
  f.list = j.value("list", false);
  f.no_args = j.value("no_args", false);
  f.required = j.value("required", false);
  f.required_when_destroyed = j.value("required_when_destroyed", false);
  if (j.contains("default") && j["default"].is_string())
    f.default_value = j["default"].get<std::string>();
  if (j.contains("min") && j["min"].is_number()) f.min = j["min"].get<double>();
  if (j.contains("max") && j["max"].is_number()) f.max = j["max"].get<double>();
  if (j.contains("values") && j["values"].is_array())
    f.values = j["values"].get<std::vector<std::string>>();
  return f;
}

nlohmann::json spec_entry(const TargetSpec &target, const ActionSpec &action,
                          const std::string &executor) {
  // Target-level flags apply to every action; matchers select what is hit.
  nlohmann::json flags = flags_json(target.flags, false);
  for (auto &m : flags_json(action.matchers, true))
    flags.push_back(std::move(m));
  for (auto &f : flags_json(action.flags, false))
    flags.push_back(std::move(f));
  return {{"scope", target.scope},
          {"target", target.target},
          {"action", action.name},
          {"aliases", action.aliases},
          {"short_desc", action.short_desc},
          {"long_desc", action.long_desc},
          {"target_desc", target.short_desc},
          {"example", action.example},
          {"categories", action.categories},
          {"executor", executor},
          {"flags", flags}};
}

}  // namespace blade
