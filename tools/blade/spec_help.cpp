#include "spec_help.hpp"

#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "blade/core/spec/spec_json.hpp"

namespace blade::cli {
namespace {

std::string number(double v) {
  return v == static_cast<double>(static_cast<long long>(v))
             ? std::to_string(static_cast<long long>(v))
             : fmt::format("{}", v);
}

// "int 0..100", "enum ram|cache", "string list": what a value must look like.
std::string value_hint(const FlagSpec &f) {
  if (f.no_args) return "";
  std::string hint(to_string(f.type));
  if (f.type == FlagType::Enum && !f.values.empty())
    hint = fmt::format("{}", fmt::join(f.values, "|"));
  if (f.list) hint += ",...";
  return hint;
}

std::string flag_notes(const FlagSpec &f) {
  std::vector<std::string> notes;
  if (f.required) notes.emplace_back("required");
  if (f.required_when_destroyed) notes.emplace_back("needed again on destroy");
  if (f.min && f.max) {
    notes.push_back(fmt::format("{}..{}", number(*f.min), number(*f.max)));
  } else if (f.min) {
    notes.push_back(fmt::format(">= {}", number(*f.min)));
  } else if (f.max) {
    notes.push_back(fmt::format("<= {}", number(*f.max)));
  }
  if (f.default_value) notes.push_back(fmt::format("default {}", *f.default_value));
  if (notes.empty()) return "";
  return fmt::format(" ({})", fmt::join(notes, ", "));
}

void flag_lines(std::ostringstream &out,
                const std::vector<std::pair<std::string, std::string>> &rows) {
  std::size_t width = 0;
  for (const auto &[left, _] : rows)
    width = std::max(width, left.size());
  for (const auto &[left, right] : rows)
    out << fmt::format("  {:<{}}  {}\n", left, width, right);
}

std::string indent(const std::string &text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    out += line.empty() ? "\n" : "  " + line + "\n";
  return out;
}

}  // namespace

std::optional<nlohmann::json> find_spec_entry(const nlohmann::json &specs, const std::string &scope,
                                              const std::string &target,
                                              const std::string &action) {
  if (!specs.is_array()) return std::nullopt;
  for (const auto &e : specs) {
    if (e.value("scope", "host") != scope || e.value("target", "") != target) continue;
    if (e.value("action", "") == action) return e;
    for (const auto &alias : e.value("aliases", std::vector<std::string>{}))
      if (alias == action) return e;
  }
  return std::nullopt;
}

std::vector<FlagSpec> entry_flags(const nlohmann::json &entry) {
  std::vector<FlagSpec> flags;
  if (entry.contains("flags") && entry["flags"].is_array())
    for (const auto &f : entry["flags"])
      flags.push_back(flag_spec_from_json(f));
  return flags;
}

std::string create_help(const nlohmann::json &e) {
  const std::string target = e.value("target", ""), action = e.value("action", "");
  std::ostringstream out;
  out << fmt::format("blade create {} {} - {}\n\n", target, action, e.value("short_desc", ""));
  if (auto long_desc = e.value("long_desc", ""); !long_desc.empty()) out << long_desc << "\n\n";
  out << "Usage:\n"
      << fmt::format(
             "  blade create {} {} [--FLAG VALUE | --FLAG=VALUE]... [--timeout N|5m] "
             "[--async] [--dry-run]\n\n",
             target, action);
  auto aliases = e.value("aliases", std::vector<std::string>{});
  if (!aliases.empty()) out << fmt::format("Aliases: {}\n", fmt::join(aliases, ", "));
  out << fmt::format("Scope: {}   Served by: {}\n\n", e.value("scope", "host"),
                     e.value("executor", ""));

  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto &f : entry_flags(e)) {
    std::string left = "--" + f.name;
    if (auto hint = value_hint(f); !hint.empty()) left += " " + hint;
    rows.emplace_back(left, f.desc + flag_notes(f));
  }
  out << "Flags:\n";
  if (rows.empty()) out << "  (none)\n";
  flag_lines(out, rows);
  out << "\nCommon flags:\n";
  flag_lines(out,
             {
                 {"--timeout N|DURATION", "destroy automatically after N seconds or 90s, 5m, 1h"},
                 {"--async", "return at once; the experiment starts in the background"},
                 {"--dry-run", "validate and show the plan; change nothing"},
                 {"--scope SCOPE", "scope of the target (default host)"},
                 {"--callback URL", "bladed POSTs the experiment there on each transition"},
             });
  if (auto example = e.value("example", ""); !example.empty())
    out << "\nExamples:\n" << indent(example);
  return out.str();
}

std::string targets_help(const nlohmann::json &specs, const std::string &target) {
  std::map<std::string, std::vector<std::string>> actions;  // target -> "action  desc"
  std::map<std::string, std::string> target_desc;
  for (const auto &e : specs) {
    const std::string t = e.value("target", "");
    if (!target.empty() && t != target) continue;
    std::string name = e.value("action", "");
    auto aliases = e.value("aliases", std::vector<std::string>{});
    if (!aliases.empty()) name += fmt::format(" ({})", fmt::join(aliases, ", "));
    actions[t].push_back(fmt::format("{:<24} {}", name, e.value("short_desc", "")));
    target_desc[t] = e.value("target_desc", "");
  }
  std::ostringstream out;
  out << "Usage: blade create <target> <action> [--FLAG VALUE]... [--timeout N|5m] [--async] "
         "[--dry-run]\n"
      << "       blade create <target> <action> --help\n\n";
  out << (target.empty() ? "Targets this daemon serves:\n" : "Actions:\n");
  for (const auto &[t, list] : actions) {
    out << fmt::format("  {:<12} {}\n", t, target_desc[t]);
    for (const auto &a : list)
      out << "      " << a << "\n";
  }
  return out.str();
}

}  // namespace blade::cli
