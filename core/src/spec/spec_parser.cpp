#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "blade/core/model/error.hpp"
#include "blade/core/spec/flag_validation.hpp"
#include "blade/core/spec/spec.hpp"

namespace blade {
namespace {

constexpr std::array<std::string_view, 11> kFlagTypeNames{
    "string", "int",  "float",      "bool", "duration", "ip",
    "cidr",   "port", "port-range", "path", "enum",
};

using Keys = std::span<const std::string_view>;

constexpr std::array<std::string_view, 3> kRootKeys{"version", "kind", "items"};
constexpr std::array<std::string_view, 6> kTargetKeys{"target", "shortDesc", "longDesc",
                                                      "scope",  "flags",     "actions"};
// ChaosBlade specs carry these, but they describe its own preparation and
// sub-command machinery, which Blade does not have; rejecting them would make
// real ChaosBlade spec files unusable.
constexpr std::array<std::string_view, 2> kIgnoredTargetKeys{"prepare", "subTargets"};
constexpr std::array<std::string_view, 10> kActionKeys{
    "action", "aliases", "shortDesc", "longDesc",   "matchers",
    "flags",  "example", "programs",  "categories", "actionProcessHang",
};
constexpr std::array<std::string_view, 11> kFlagKeys{
    "name", "desc", "noArgs", "required", "requiredWhenDestroyed", "default", "type",
    "list", "min",  "max",    "values",
};

// The core owns these: it schedules the destroy for `timeout`, answers
// `async` itself, and names the experiment with `uid`. ChaosBlade's
// generator appends timeout/async/endpoint to every action, so a spec that
// declares them is normal and they are dropped rather than refused; a plugin
// must never see them as its own flags.
constexpr std::array<std::string_view, 4> kReservedFlags{"timeout", "async", "endpoint", "uid"};

bool contains(Keys keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

bool is_lower_or_digit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [a-z0-9][a-z0-9_-]* : names that appear in URLs and command lines.
bool is_command_name(std::string_view name) {
  if (name.empty() || !is_lower_or_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_lower_or_digit(c) || c == '_' || c == '-'; });
}

// [a-z0-9][a-zA-Z0-9_.-]* : ChaosBlade has camelCase flags (disableNtp).
bool is_flag_name(std::string_view name) {
  if (name.empty() || !is_lower_or_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
  });
}

constexpr std::string_view kCommandNamePattern = "[a-z0-9][a-z0-9_-]*";
constexpr std::string_view kFlagNamePattern = "[a-z0-9][a-zA-Z0-9_.-]*";

std::string child(const std::string &path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string element(const std::string &path, std::size_t index) {
  return fmt::format("{}[{}]", path, index);
}

bool present(const YAML::Node &node) {
  return node.IsDefined() && !node.IsNull();
}

std::optional<double> parse_number(const std::string &text) {
  double value = 0;
  const char *first = text.data();
  if (!text.empty() && text.front() == '+') ++first;
  const char *last = text.data() + text.size();
  const auto [end, error] = std::from_chars(first, last, value);
  if (error != std::errc() || end != last || first == last || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// A flag with the path of its YAML node, kept until the cross-flag checks
// (duplicate names) have run.
struct LocatedFlag {
  FlagSpec flag;
  std::string path;
};

// Reads the document into the model, collecting every problem it can find
// instead of stopping at the first, so one round trip fixes a spec.
class SpecReader {
 public:
  PluginSpec read(const YAML::Node &root);
  const std::vector<FieldError> &problems() const { return problems_; }

 private:
  void add(std::string path, std::string description) {
    problems_.push_back({std::move(path), std::move(description)});
  }
  // Whether `path` already has a problem, so one mistake is not reported
  // twice in different words.
  bool reported(std::string_view path) const {
    return std::any_of(problems_.begin(), problems_.end(),
                       [path](const FieldError &problem) { return problem.field == path; });
  }

  bool check_mapping(const YAML::Node &node, const std::string &path, Keys known,
                     Keys ignored = {});
  std::string text(const YAML::Node &map, const char *key, const std::string &path);
  std::optional<std::string> read_name(const YAML::Node &map, const char *key,
                                       const std::string &path, bool (*valid)(std::string_view),
                                       std::string_view pattern);
  bool boolean(const YAML::Node &map, const char *key, const std::string &path);
  std::optional<double> number(const YAML::Node &map, const char *key, const std::string &path);
  std::vector<std::string> strings(const YAML::Node &map, const char *key, const std::string &path);
  std::optional<YAML::Node> sequence(const YAML::Node &map, const char *key,
                                     const std::string &path, bool required);
  std::string fixed(const YAML::Node &map, const char *key, std::string_view expected);

  std::optional<TargetSpec> read_target(const YAML::Node &node, const std::string &path);
  std::optional<ActionSpec> read_action(const YAML::Node &node, const std::string &path,
                                        const std::map<std::string, std::string> &target_flags);
  std::vector<LocatedFlag> read_flags(const YAML::Node &map, const char *key,
                                      const std::string &path);
  std::optional<LocatedFlag> read_flag(const YAML::Node &node, const std::string &path);
  std::optional<FlagType> read_type(const YAML::Node &map, const std::string &path);
  void check_flag_rules(FlagSpec &flag, bool type_given, const std::string &path);
  void check_enum_values(const FlagSpec &flag, const std::string &path);
  void check_range(const FlagSpec &flag, const std::string &path);
  void check_default(const FlagSpec &flag, const std::string &path);

  void check_unique_flags(const std::vector<LocatedFlag> &flags,
                          std::map<std::string, std::string> &seen);
  void check_unique_actions(const std::vector<ActionSpec> &actions,
                            const std::vector<std::string> &paths);
  void check_unique_targets(const std::vector<TargetSpec> &targets,
                            const std::vector<std::string> &paths);

  std::vector<FieldError> problems_;
};

bool SpecReader::check_mapping(const YAML::Node &node, const std::string &path, Keys known,
                               Keys ignored) {
  if (!node.IsMap()) {
    add(path, "must be a mapping");
    return false;
  }
  std::set<std::string> seen;
  for (const auto &entry : node) {
    if (!entry.first.IsScalar()) {
      add(path, "keys must be strings");
      continue;
    }
    const std::string key = entry.first.Scalar();
    if (!seen.insert(key).second) {
      add(child(path, key), "duplicate key");
    } else if (!contains(known, key) && !contains(ignored, key)) {
      add(child(path, key), "unknown key");
    }
  }
  return true;
}

std::string SpecReader::text(const YAML::Node &map, const char *key, const std::string &path) {
  const YAML::Node node = map[key];
  if (!present(node)) return {};
  if (!node.IsScalar()) {
    add(child(path, key), "must be a string");
    return {};
  }
  return node.Scalar();
}

std::optional<std::string> SpecReader::read_name(const YAML::Node &map, const char *key,
                                                 const std::string &path,
                                                 bool (*valid)(std::string_view),
                                                 std::string_view pattern) {
  const YAML::Node node = map[key];
  if (!present(node)) {
    add(child(path, key), "required");
    return std::nullopt;
  }
  if (!node.IsScalar() || !valid(node.Scalar())) {
    add(child(path, key), fmt::format("must match {}", pattern));
    return std::nullopt;
  }
  return node.Scalar();
}

bool SpecReader::boolean(const YAML::Node &map, const char *key, const std::string &path) {
  const YAML::Node node = map[key];
  if (!present(node)) return false;
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    add(child(path, key), "must be true or false");
  }
  return value;
}

std::optional<double> SpecReader::number(const YAML::Node &map, const char *key,
                                         const std::string &path) {
  const YAML::Node node = map[key];
  if (!present(node)) return std::nullopt;
  std::optional<double> value;
  if (node.IsScalar()) value = parse_number(node.Scalar());
  if (!value) add(child(path, key), "must be a number");
  return value;
}

std::vector<std::string> SpecReader::strings(const YAML::Node &map, const char *key,
                                             const std::string &path) {
  std::vector<std::string> values;
  const std::optional<YAML::Node> list = sequence(map, key, path, false);
  if (!list) return values;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const YAML::Node item = (*list)[i];
    if (item.IsScalar()) {
      values.push_back(item.Scalar());
    } else {
      add(element(child(path, key), i), "must be a string");
    }
  }
  return values;
}

std::optional<YAML::Node> SpecReader::sequence(const YAML::Node &map, const char *key,
                                               const std::string &path, bool required) {
  const YAML::Node node = map[key];
  if (!present(node)) {
    if (required) add(child(path, key), "required");
    return std::nullopt;
  }
  if (!node.IsSequence()) {
    add(child(path, key), "must be a sequence");
    return std::nullopt;
  }
  if (required && node.size() == 0) {
    add(child(path, key), "must not be empty");
    return std::nullopt;
  }
  return node;
}

// A key whose only valid value is `expected` (version, kind).
std::string SpecReader::fixed(const YAML::Node &map, const char *key, std::string_view expected) {
  const YAML::Node node = map[key];
  if (!present(node)) {
    add(key, "required");
    return {};
  }
  if (!node.IsScalar()) {
    add(key, fmt::format("must be \"{}\"", expected));
    return {};
  }
  if (node.Scalar() != expected) {
    add(key, fmt::format("must be \"{}\", got \"{}\"", expected, node.Scalar()));
  }
  return node.Scalar();
}

PluginSpec SpecReader::read(const YAML::Node &root) {
  PluginSpec spec;
  if (!root.IsMap()) {
    add("", "spec YAML must be a mapping with version, kind and items");
    return spec;
  }
  check_mapping(root, "", kRootKeys);
  spec.version = fixed(root, "version", "v1");
  spec.kind = fixed(root, "kind", "plugin");
  const std::optional<YAML::Node> items = sequence(root, "items", "", true);
  if (!items) return spec;
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < items->size(); ++i) {
    std::string path = element("items", i);
    if (std::optional<TargetSpec> target = read_target((*items)[i], path)) {
      spec.items.push_back(std::move(*target));
      paths.push_back(std::move(path));
    }
  }
  check_unique_targets(spec.items, paths);
  return spec;
}

std::optional<TargetSpec> SpecReader::read_target(const YAML::Node &node, const std::string &path) {
  if (!check_mapping(node, path, kTargetKeys, kIgnoredTargetKeys)) return std::nullopt;
  TargetSpec target;
  const std::optional<std::string> name =
      read_name(node, "target", path, is_command_name, kCommandNamePattern);
  target.short_desc = text(node, "shortDesc", path);
  target.long_desc = text(node, "longDesc", path);
  if (present(node["scope"])) {
    std::optional<std::string> scope =
        read_name(node, "scope", path, is_command_name, kCommandNamePattern);
    if (scope) target.scope = std::move(*scope);
  }
  const std::vector<LocatedFlag> flags = read_flags(node, "flags", path);
  std::map<std::string, std::string> flag_paths;
  check_unique_flags(flags, flag_paths);
  for (const LocatedFlag &located : flags)
    target.flags.push_back(located.flag);

  const std::optional<YAML::Node> actions = sequence(node, "actions", path, true);
  std::vector<std::string> action_paths;
  for (std::size_t i = 0; actions && i < actions->size(); ++i) {
    std::string action_path = element(child(path, "actions"), i);
    if (std::optional<ActionSpec> action = read_action((*actions)[i], action_path, flag_paths)) {
      target.actions.push_back(std::move(*action));
      action_paths.push_back(std::move(action_path));
    }
  }
  check_unique_actions(target.actions, action_paths);
  if (!name) return std::nullopt;
  target.target = *name;
  return target;
}

std::optional<ActionSpec> SpecReader::read_action(
    const YAML::Node &node, const std::string &path,
    const std::map<std::string, std::string> &target_flags) {
  if (!check_mapping(node, path, kActionKeys)) return std::nullopt;
  ActionSpec action;
  const std::optional<std::string> name =
      read_name(node, "action", path, is_command_name, kCommandNamePattern);
  action.aliases = strings(node, "aliases", path);
  for (std::size_t i = 0; i < action.aliases.size(); ++i) {
    if (!is_command_name(action.aliases[i])) {
      add(element(child(path, "aliases"), i), fmt::format("must match {}", kCommandNamePattern));
    }
  }
  action.short_desc = text(node, "shortDesc", path);
  action.long_desc = text(node, "longDesc", path);
  action.example = text(node, "example", path);
  action.programs = strings(node, "programs", path);
  action.categories = strings(node, "categories", path);
  action.process_hang = boolean(node, "actionProcessHang", path);

  const std::vector<LocatedFlag> matchers = read_flags(node, "matchers", path);
  const std::vector<LocatedFlag> flags = read_flags(node, "flags", path);
  std::map<std::string, std::string> seen = target_flags;
  check_unique_flags(matchers, seen);
  check_unique_flags(flags, seen);
  for (const LocatedFlag &located : matchers)
    action.matchers.push_back(located.flag);
  for (const LocatedFlag &located : flags)
    action.flags.push_back(located.flag);
  if (!name) return std::nullopt;
  action.name = *name;
  return action;
}

std::vector<LocatedFlag> SpecReader::read_flags(const YAML::Node &map, const char *key,
                                                const std::string &path) {
  std::vector<LocatedFlag> flags;
  const std::optional<YAML::Node> list = sequence(map, key, path, false);
  for (std::size_t i = 0; list && i < list->size(); ++i) {
    if (std::optional<LocatedFlag> flag = read_flag((*list)[i], element(child(path, key), i))) {
      flags.push_back(std::move(*flag));
    }
  }
  return flags;
}

std::optional<LocatedFlag> SpecReader::read_flag(const YAML::Node &node, const std::string &path) {
  if (node.IsMap() && present(node["name"]) && node["name"].IsScalar() &&
      contains(kReservedFlags, node["name"].Scalar())) {
    return std::nullopt;
  }
  if (!check_mapping(node, path, kFlagKeys)) return std::nullopt;
  const std::size_t problems_before = problems_.size();
  FlagSpec flag;
  const std::optional<std::string> name =
      read_name(node, "name", path, is_flag_name, kFlagNamePattern);
  flag.desc = text(node, "desc", path);
  flag.no_args = boolean(node, "noArgs", path);
  flag.required = boolean(node, "required", path);
  flag.required_when_destroyed = boolean(node, "requiredWhenDestroyed", path);
  flag.list = boolean(node, "list", path);
  flag.min = number(node, "min", path);
  flag.max = number(node, "max", path);
  flag.values = strings(node, "values", path);
  if (present(node["default"])) {
    if (node["default"].IsScalar()) {
      flag.default_value = node["default"].Scalar();
    } else {
      add(child(path, "default"), "must be a scalar");
    }
  }
  const std::optional<FlagType> type = read_type(node, path);
  if (type) flag.type = *type;
  check_flag_rules(flag, type.has_value(), path);
  if (!name) return std::nullopt;
  flag.name = *name;
  // A default is only meaningful to check once the flag itself is sound.
  if (problems_.size() == problems_before) check_default(flag, path);
  return LocatedFlag{std::move(flag), path};
}

std::optional<FlagType> SpecReader::read_type(const YAML::Node &map, const std::string &path) {
  const YAML::Node node = map["type"];
  if (!present(node)) return std::nullopt;
  std::optional<FlagType> type;
  if (node.IsScalar()) type = flag_type_from_string(node.Scalar());
  if (!type) {
    add(child(path, "type"),
        fmt::format("must be one of {}",
                    fmt::join(kFlagTypeNames.begin(), kFlagTypeNames.end(), ", ")));
  }
  return type;
}

void SpecReader::check_flag_rules(FlagSpec &flag, bool type_given, const std::string &path) {
  if (flag.no_args) {
    if (!type_given) {
      flag.type = FlagType::Bool;
    } else if (flag.type != FlagType::Bool) {
      add(child(path, "type"), "must be bool for a noArgs flag");
    }
    if (flag.list) add(child(path, "list"), "not allowed for a noArgs flag");
  }
  check_enum_values(flag, path);
  check_range(flag, path);
  if (flag.required && flag.default_value) {
    add(child(path, "default"), "not allowed on a required flag");
  }
}

void SpecReader::check_enum_values(const FlagSpec &flag, const std::string &path) {
  const std::string values_path = child(path, "values");
  if (flag.type != FlagType::Enum) {
    if (!flag.values.empty()) add(values_path, "only allowed for an enum flag");
    return;
  }
  if (flag.values.empty()) {
    if (!reported(values_path)) add(values_path, "required for an enum flag");
    return;
  }
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < flag.values.size(); ++i) {
    if (!seen.insert(flag.values[i]).second) add(element(values_path, i), "duplicate value");
  }
}

void SpecReader::check_range(const FlagSpec &flag, const std::string &path) {
  const bool ranged = flag.type == FlagType::Int || flag.type == FlagType::Float ||
                      flag.type == FlagType::Duration || flag.type == FlagType::Port;
  constexpr std::string_view kRangedOnly = "only allowed for int, float, duration and port flags";
  if (!ranged) {
    if (flag.min) add(child(path, "min"), std::string(kRangedOnly));
    if (flag.max) add(child(path, "max"), std::string(kRangedOnly));
    return;
  }
  if (flag.min && flag.max && *flag.min > *flag.max) {
    add(child(path, "min"), fmt::format("must not exceed max ({} > {})", *flag.min, *flag.max));
  }
}

// The default goes through the very checks a request goes through, so a
// default can never produce a value the plugin was promised it won't see.
void SpecReader::check_default(const FlagSpec &flag, const std::string &path) {
  if (!flag.default_value || flag.required) return;
  ActionSpec probe;
  probe.flags.push_back(flag);
  try {
    validate_flags(TargetSpec{}, probe, FlagValues{{flag.name, *flag.default_value}});
  } catch (const Error &error) {
    const std::string description =
        error.details().empty() ? error.what() : error.details().front().description;
    add(child(path, "default"), description);
  }
}

void SpecReader::check_unique_flags(const std::vector<LocatedFlag> &flags,
                                    std::map<std::string, std::string> &seen) {
  for (const LocatedFlag &located : flags) {
    const auto [it, inserted] = seen.emplace(located.flag.name, located.path);
    if (!inserted) {
      add(child(located.path, "name"),
          fmt::format("duplicate flag \"{}\" (first at {})", located.flag.name, it->second));
    }
  }
}

// Actions are reached by name or alias, so every one of those must resolve
// to a single action. Names are registered first so that a clash between a
// name and an alias is blamed on the alias.
void SpecReader::check_unique_actions(const std::vector<ActionSpec> &actions,
                                      const std::vector<std::string> &paths) {
  std::map<std::string, std::string> seen;
  for (std::size_t i = 0; i < actions.size(); ++i) {
    const std::string path = child(paths[i], "action");
    const auto [it, inserted] = seen.emplace(actions[i].name, path);
    if (!inserted) {
      add(path, fmt::format("duplicate action \"{}\" (first at {})", actions[i].name, it->second));
    }
  }
  for (std::size_t i = 0; i < actions.size(); ++i) {
    for (std::size_t j = 0; j < actions[i].aliases.size(); ++j) {
      const std::string &alias = actions[i].aliases[j];
      const std::string path = element(child(paths[i], "aliases"), j);
      const auto [it, inserted] = seen.emplace(alias, path);
      if (!inserted) {
        add(path, fmt::format("alias \"{}\" is already used at {}", alias, it->second));
      }
    }
  }
}

void SpecReader::check_unique_targets(const std::vector<TargetSpec> &targets,
                                      const std::vector<std::string> &paths) {
  std::map<std::pair<std::string, std::string>, std::string> seen;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const std::string path = child(paths[i], "target");
    const auto [it, inserted] = seen.emplace(std::pair(targets[i].scope, targets[i].target), path);
    if (!inserted) {
      add(path, fmt::format("duplicate target \"{}\" in scope \"{}\" (first at {})",
                            targets[i].target, targets[i].scope, it->second));
    }
  }
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

[[noreturn]] void throw_yaml_error(const YAML::Exception &error) {
  if (error.mark.is_null()) throw Error(ErrorCode::InvalidArgument, "spec YAML: " + error.msg);
  throw Error(ErrorCode::InvalidArgument,
              fmt::format("spec YAML: line {}, column {}: {}", error.mark.line + 1,
                          error.mark.column + 1, error.msg));
}

// Sees the documents of a stream go by without building them: only where
// each one starts matters here.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;

  void OnDocumentStart(const YAML::Mark &mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark &, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark &, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark &, const std::string &, YAML::anchor_t,
                const std::string &) override {}
  void OnSequenceStart(const YAML::Mark &, const std::string &, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark &, const std::string &, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// How many documents `yaml` holds. Not YAML::LoadAll: yaml-cpp 0.7 never
// consumes a token that no rule takes, such as a ',' outside a flow
// collection, and LoadAll then yields one empty document after another
// without moving on, growing its vector until memory runs out (found by
// fuzz/spec_yaml.cpp; one stray comma in a plugin's spec hung the loader).
// A document that starts where the one before it started is that token.
std::size_t count_documents(const std::string &yaml) {
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  DocumentStarts documents;
  while (parser.HandleNextDocument(documents)) {
    const std::vector<YAML::Mark> &starts = documents.starts;
    const std::size_t n = starts.size();
    if (n >= 2 && starts[n - 1].pos == starts[n - 2].pos) {
      const auto at = static_cast<std::size_t>(starts[n - 1].pos);
      const char c = at < yaml.size() ? yaml[at] : ' ';
      throw YAML::ParserException(starts[n - 1], c > 0x20 && c < 0x7f
                                                     ? fmt::format("unexpected '{}'", c)
                                                     : std::string("unexpected character"));
    }
  }
  return documents.starts.size();
}

YAML::Node load_document(std::string_view yaml) {
  const std::string text(yaml);
  std::size_t documents = 0;
  YAML::Node root;
  try {
    // Counted first, then the one document built: spec files are small,
    // and the count is what guards the build.
    documents = count_documents(text);
    if (documents == 1) root = YAML::Load(text);
  } catch (const YAML::Exception &error) {
    throw_yaml_error(error);
  }
  if (documents > 1) {
    throw Error(ErrorCode::InvalidArgument,
                fmt::format("spec YAML: expected one document, found {}", documents));
  }
  if (documents == 0 || root.IsNull()) {
    throw Error(ErrorCode::InvalidArgument, "spec YAML is empty");
  }
  return root;
}

}  // namespace

std::string_view to_string(FlagType type) {
  const auto index = static_cast<std::size_t>(type);
  return index < kFlagTypeNames.size() ? kFlagTypeNames[index] : "string";
}

std::optional<FlagType> flag_type_from_string(std::string_view name) {
  for (std::size_t i = 0; i < kFlagTypeNames.size(); ++i) {
    if (kFlagTypeNames[i] == name) return static_cast<FlagType>(i);
  }
  return std::nullopt;
}

PluginSpec parse_spec_yaml(std::string_view yaml) {
  if (is_blank(yaml)) throw Error(ErrorCode::InvalidArgument, "spec YAML is empty");
  const YAML::Node root = load_document(yaml);
  SpecReader reader;
  PluginSpec spec;
  try {
    spec = reader.read(root);
  } catch (const YAML::Exception &error) {
    throw_yaml_error(error);
  }
  const std::vector<FieldError> &problems = reader.problems();
  if (!problems.empty()) {
    const FieldError &first = problems.front();
    const std::string message =
        first.field.empty() ? first.description : first.field + ": " + first.description;
    throw Error(ErrorCode::InvalidArgument, message, problems);
  }
  return spec;
}

std::vector<const FlagSpec *> effective_flags(const TargetSpec &target, const ActionSpec &action) {
  std::vector<const FlagSpec *> flags;
  flags.reserve(target.flags.size() + action.matchers.size() + action.flags.size());
  for (const FlagSpec &flag : target.flags)
    flags.push_back(&flag);
  for (const FlagSpec &flag : action.matchers)
    flags.push_back(&flag);
  for (const FlagSpec &flag : action.flags)
    flags.push_back(&flag);
  return flags;
}

}  // namespace blade
