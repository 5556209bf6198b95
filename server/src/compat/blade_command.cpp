#include "blade_command.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include <fmt/format.h>

#include "blade/core/model/error.hpp"
#include "blade/core/spec/ssh_channel.hpp"

namespace blade::server {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;
using Words = std::vector<std::string>;

// A malformed command line: ChaosBlade's CommandIllegal.
[[noreturn]] void illegal(const std::string &description) {
  throw Error(ErrorCode::InvalidArgument, "cmd: " + description, {{"cmd", description}});
}

[[noreturn]] void invalid(const std::string &field, const std::string &description) {
  throw Error(ErrorCode::InvalidArgument, fmt::format("{}: {}", field, description),
              {{field, description}});
}

bool has_control(std::string_view word) {
  return std::any_of(word.begin(), word.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool is_flag_word(std::string_view word) {
  return word.size() >= 2 && word.substr(0, 2) == "--";
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char &c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// How a flag takes its value when none follows an `=`.
enum class Arity {
  Switch,   // --async means true; the next word is never taken
  Value,    // --path P
  Lenient,  // no spec to ask: a value if a non-flag word follows, else true
};

// The flag's arity, or nullopt if the sub-command does not know it.
using ArityOf = std::function<std::optional<Arity>(const std::string &name)>;

struct FlagContext {
  ArityOf arity;
  std::string unknown_field_prefix;  // "flags." for create
  std::string what;                  // "cmarker touch", "status": for messages
};

// The leading words that are not flags, then the rest.
std::pair<Words, Words> split_positional(Words::const_iterator begin, Words::const_iterator end) {
  auto first_flag = std::find_if(begin, end, [](const std::string &w) { return is_flag_word(w); });
  Words positional(begin, first_flag);
  for (const auto &w : positional)
    if (!w.empty() && w.front() == '-') illegal(fmt::format("unexpected option '{}'", w));
  return {std::move(positional), Words(first_flag, end)};
}

Options parse_flags(const Words &words, const FlagContext &context) {
  Options options;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string &word = words[i];
    if (!is_flag_word(word)) illegal(fmt::format("unexpected word '{}'", word));
    const std::size_t eq = word.find('=');
    std::string name = word.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (name.empty()) illegal(fmt::format("no flag name in '{}'", word));
    const auto arity = context.arity(name);
    if (!arity) {
      invalid(context.unknown_field_prefix + name,
              fmt::format("unknown flag --{} for {}", name, context.what));
    }
    if (!seen.insert(name).second) illegal(fmt::format("flag --{} given twice", name));
    std::string value;
    const bool next_is_value = i + 1 < words.size() && !is_flag_word(words[i + 1]);
    if (eq != std::string::npos) {
      value = word.substr(eq + 1);
    } else if (*arity == Arity::Switch || (*arity == Arity::Lenient && !next_is_value)) {
      value = "true";
    } else if (next_is_value) {
      value = words[++i];
    } else {
      illegal(fmt::format("flag --{} needs a value", name));
    }
    options.emplace_back(std::move(name), std::move(value));
  }
  return options;
}

bool switch_value(const std::string &name, const std::string &value) {
  if (value != "true" && value != "false") invalid(name, "must be true or false");
  return value == "true";
}

std::int64_t integer(const std::string &field, std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    invalid(field, fmt::format("must be an integer, got '{}'", text));
  return value;
}

void expect_positional(const Words &positional, std::size_t count, const char *usage) {
  if (positional.size() != count) illegal(fmt::format("usage: {}", usage));
}

BladeCommand parse_create(const Words &rest, const FlagSpecLookup &lookup) {
  auto [positional, flag_words] = split_positional(rest.begin(), rest.end());
  if (positional.size() != 2 && positional.size() != 3)
    illegal("usage: create [scope] <target> <action> [--flag value]...");
  BladeCommand cmd;
  cmd.verb = BladeVerb::Create;
  CreateRequest &create = cmd.create;
  if (positional.size() == 3) create.scope = positional[0];
  create.target = positional[positional.size() - 2];
  create.action = positional.back();

  const std::vector<FlagSpec> specs = lookup(create.scope, create.target, create.action);
  // ChaosBlade gives every action timeout, async and endpoint; they are the
  // daemon's, never the executor's, so they win over a spec that lists them.
  ArityOf arity = [&specs](const std::string &name) -> std::optional<Arity> {
    if (name == "async" || name == "dry-run") return Arity::Switch;
    if (name == "timeout" || name == "endpoint") return Arity::Value;
    for (const auto &flag : specs)
      if (flag.name == name) return flag.no_args ? Arity::Switch : Arity::Value;
    // Read so that the service refuses them by name ("not supported"),
    // rather than as flags it has never heard of.
    for (const auto &flag : ssh_channel_flags())
      if (flag.name == name) return flag.no_args ? Arity::Switch : Arity::Value;
    return std::nullopt;
  };
  const FlagContext context{arity, "flags.", create.target + " " + create.action};
  for (auto &[name, value] : parse_flags(flag_words, context)) {
    if (name == "async") {
      create.async = switch_value(name, value);
    } else if (name == "dry-run") {
      create.dry_run = switch_value(name, value);
    } else if (name == "timeout") {
      create.timeout = value;
    } else if (name == "endpoint") {
      create.callback = value;
    } else {
      create.flags[name] = value;
    }
  }
  return cmd;
}

BladeCommand parse_destroy(const Words &rest) {
  auto [positional, flag_words] = split_positional(rest.begin(), rest.end());
  expect_positional(positional, 1, "destroy <uid> [--force-remove]");
  BladeCommand cmd;
  cmd.verb = BladeVerb::Destroy;
  cmd.uid = positional[0];
  ArityOf arity = [](const std::string &name) -> std::optional<Arity> {
    if (name == "force-remove") return Arity::Switch;
    return std::nullopt;
  };
  for (const auto &[name, value] : parse_flags(flag_words, {arity, "", "destroy"}))
    cmd.force = switch_value(name, value);
  return cmd;
}

BladeCommand parse_revoke(const Words &rest) {
  auto [positional, flag_words] = split_positional(rest.begin(), rest.end());
  expect_positional(positional, 1, "revoke <uid>");
  ArityOf none = [](const std::string &) -> std::optional<Arity> { return std::nullopt; };
  parse_flags(flag_words, {none, "", "revoke"});
  BladeCommand cmd;
  cmd.verb = BladeVerb::Revoke;
  cmd.uid = positional[0];
  return cmd;
}

// No spec describes a preparation's flags, so a flag is a switch only when
// no value follows it.
BladeCommand parse_prepare(const Words &rest) {
  auto [positional, flag_words] = split_positional(rest.begin(), rest.end());
  expect_positional(positional, 1, "prepare <type> [--flag value]...");
  BladeCommand cmd;
  cmd.verb = BladeVerb::Prepare;
  cmd.prepare.type = positional[0];
  ArityOf lenient = [](const std::string &) -> std::optional<Arity> { return Arity::Lenient; };
  for (auto &[name, value] : parse_flags(flag_words, {lenient, "", "prepare"}))
    cmd.prepare.flags[name] = std::move(value);
  return cmd;
}

BladeCommand parse_status(const Words &rest) {
  auto [positional, flag_words] = split_positional(rest.begin(), rest.end());
  if (positional.size() > 1) illegal("usage: status <uid> | status [--uid <uid>] [filters]");
  ArityOf arity = [](const std::string &name) -> std::optional<Arity> {
    if (name == "asc") return Arity::Switch;
    for (const char *known : {"uid", "type", "target", "action", "status", "limit"})
      if (name == known) return Arity::Value;
    return std::nullopt;
  };
  Options options = parse_flags(flag_words, {arity, "", "status"});
  if (!positional.empty()) {
    const bool has_uid = std::any_of(options.begin(), options.end(),
                                     [](const auto &option) { return option.first == "uid"; });
    if (has_uid) illegal("status takes the uid once: status <uid> or status --uid <uid>");
    options.emplace_back("uid", positional[0]);
  }
  BladeCommand cmd;
  cmd.verb = BladeVerb::Status;
  cmd.status = parse_status_options(options);
  return cmd;
}

// "10" or ChaosBlade's "OFFSET,COUNT".
void parse_limit(const std::string &text, std::int64_t &limit, std::int64_t &offset) {
  const std::size_t comma = text.find(',');
  if (comma == std::string::npos) {
    limit = integer("limit", text);
    return;
  }
  offset = integer("limit", std::string_view(text).substr(0, comma));
  limit = integer("limit", std::string_view(text).substr(comma + 1));
}

}  // namespace

StatusQuery parse_status_options(const Options &options) {
  std::map<std::string, std::string> given;
  for (const auto &[name, value] : options) {
    if (std::find(kStatusOptions.begin(), kStatusOptions.end(), name) == kStatusOptions.end())
      invalid(name, "unknown option of status");
    if (!given.emplace(name, value).second) invalid(name, "given twice");
  }
  StatusQuery q;
  if (auto type = given.find("type"); type != given.end()) {
    const std::string t = lower(type->second);
    if (t == "prepare" || t == "p" || t == "revoke" || t == "r") {
      q.preparations = true;
    } else if (t != "create" && t != "c" && t != "destroy" && t != "d") {
      invalid("type", "must be create, destroy, prepare or revoke");
    }
  }
  if (auto uid = given.find("uid"); uid != given.end()) {
    if (uid->second.empty()) invalid("uid", "must not be empty");
    if (given.size() > (given.count("type") ? 2u : 1u))
      invalid("uid", "cannot be combined with target, action, status, limit or asc");
    q.uid = uid->second;
    return q;
  }
  const auto value = [&given](const char *name) -> const std::string * {
    auto it = given.find(name);
    return it == given.end() ? nullptr : &it->second;
  };
  if (q.preparations) {
    PreparationFilter &f = q.preparation_filter;
    if (value("action")) invalid("action", "does not apply to preparations");
    if (auto *target = value("target")) f.type = *target;
    if (auto *status = value("status")) {
      f.status = parse_preparation_status(*status);
      if (!f.status) invalid("status", "must be Created, Running, Error or Revoked");
    }
    if (auto *limit = value("limit")) parse_limit(*limit, f.limit, f.offset);
    if (auto *asc = value("asc")) f.ascending = switch_value("asc", *asc);
    return q;
  }
  ExperimentFilter &f = q.experiments;
  if (auto *target = value("target")) f.target = *target;
  if (auto *action = value("action")) f.action = *action;
  if (auto *status = value("status")) {
    f.status = parse_experiment_status(*status);
    if (!f.status) invalid("status", "must be Created, Success, Error or Destroyed");
  }
  if (auto *limit = value("limit")) parse_limit(*limit, f.limit, f.offset);
  if (auto *asc = value("asc")) f.ascending = switch_value("asc", *asc);
  return q;
}

BladeCommand parse_blade_command(const std::vector<std::string> &words,
                                 const FlagSpecLookup &lookup) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    // The word itself is not echoed: it is what a terminal should not print.
    if (has_control(words[i]))
      illegal(fmt::format("word {} contains NUL or a control character", i + 1));
  }
  auto at = words.begin();
  if (at != words.end() && *at == "blade") ++at;
  if (at == words.end())
    illegal("empty command; expected create, destroy, status, prepare, revoke or version");
  const std::string &verb = *at;
  const Words rest(at + 1, words.end());
  if (verb == "create" || verb == "c") return parse_create(rest, lookup);
  if (verb == "destroy" || verb == "d") return parse_destroy(rest);
  if (verb == "status" || verb == "s") return parse_status(rest);
  if (verb == "prepare" || verb == "p") return parse_prepare(rest);
  if (verb == "revoke" || verb == "r") return parse_revoke(rest);
  if (verb == "version" || verb == "v") {
    if (!rest.empty()) illegal(fmt::format("unexpected word '{}'", rest.front()));
    return BladeCommand{};
  }
  illegal(fmt::format(
      "unknown sub-command '{}'; expected create, destroy, status, prepare, revoke or version",
      verb));
}

}  // namespace blade::server
