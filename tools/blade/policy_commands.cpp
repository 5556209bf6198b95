// blade policy apply | list | get | delete: the HTTP fault policies of
// /v1/policies. apply takes the policy files people keep in a repository
// (JSON or YAML, several YAML documents per file) and creates or updates
// each, so applying the same file twice is harmless.
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "blade/core/model/bounded_json.hpp"
#include "cli_error.hpp"
#include "command.hpp"
#include "daemon/yaml_json.hpp"
#include "output.hpp"

namespace blade::cli {
namespace {

namespace po = boost::program_options;

constexpr const char *kPolicyUsage = R"(Usage: blade policy COMMAND

  apply -f FILE      create each policy of FILE, or update it when it exists
                     (JSON, or YAML with one policy per document; - reads stdin)
  list               every policy: name, version, rules, window
  get <name>         one policy (-o json: the whole policy)
  delete <name>      delete a policy; its rules stop applying at once

A policy (the HTTP fault docs describe every field):
  apiVersion: v1
  kind: FaultInjectionPolicy
  metadata: {name: checkout}
  spec:
    rules:
      - match: {path: {prefix: /api/}, method: POST}
        fault: {percentage: 25, abort: {httpStatus: 503}}
    duration_seconds: 600      # then bladed deletes it; 0 keeps it
)";

std::string read_input(const std::string &file) {
  if (file == "-") {
    std::stringstream bytes;
    bytes << std::cin.rdbuf();
    return bytes.str();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Failure(fmt::format("cannot read {}", file));
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The policies of a file: one JSON document, or one per YAML document.
// JSON is tried first so its numbers and strings are kept exactly.
std::vector<nlohmann::json> policies_in(const std::string &text, const std::string &file) {
  BoundedJson as_json = parse_bounded_json(text);
  if (as_json.problem == JsonProblem::None) {
    if (as_json.value.is_array()) return {as_json.value.begin(), as_json.value.end()};
    return {as_json.value};
  }
  std::vector<nlohmann::json> out;
  try {
    for (const auto &doc : YAML::LoadAll(text)) {
      if (doc.IsNull()) continue;  // an empty document (a trailing ---)
      out.push_back(server::yaml_to_json(doc, file, kMaxJsonDepth));
    }
  } catch (const YAML::Exception &e) {
    throw Failure(fmt::format("{}: neither JSON nor YAML: {}", file, e.what()));
  } catch (const std::invalid_argument &e) {
    throw Failure(e.what());
  }
  if (out.empty()) throw Failure(fmt::format("{}: holds no policy", file));
  return out;
}

std::string name_of(const nlohmann::json &policy, const std::string &file) {
  if (!policy.is_object() || !policy.contains("metadata") || !policy["metadata"].is_object() ||
      !policy["metadata"].contains("name") || !policy["metadata"]["name"].is_string())
    throw Failure(fmt::format("{}: a policy without metadata.name", file));
  return policy["metadata"]["name"].get<std::string>();
}

std::string policy_path(const std::string &name) {
  return "/v1/policies/" + url_encode(name);
}

std::string text_at(const nlohmann::json &j, const nlohmann::json::json_pointer &at) {
  if (!j.contains(at)) return "";
  const auto &v = j.at(at);
  return v.is_string() ? v.get<std::string>() : (v.is_null() ? "" : v.dump());
}

Table policy_table(const std::vector<nlohmann::json> &policies) {
  using ptr = nlohmann::json::json_pointer;
  Table table({"NAME", "VERSION", "RULES", "ACTIVE FROM", "EXPIRES", "UPDATED"});
  for (const auto &p : policies) {
    const auto rules = p.contains(ptr("/spec/rules")) ? p.at(ptr("/spec/rules")).size() : 0;
    const std::string expires = text_at(p, ptr("/status/expires_at"));
    table.add({text_at(p, ptr("/metadata/name")), text_at(p, ptr("/metadata/version")),
               std::to_string(rules), text_at(p, ptr("/status/active_from")),
               expires.empty() ? "never" : expires, text_at(p, ptr("/metadata/updated_at"))});
  }
  return table;
}

// Creates the policy, or updates it when its name is taken; what happened
// ("created", "configured", "unchanged") and the policy as stored.
std::pair<std::string, nlohmann::json> apply_one(ApiClient &api, const nlohmann::json &policy,
                                                 const std::string &name) {
  try {
    return {"created", api.post("/v1/policies", policy)};
  } catch (const ApiError &e) {
    if (e.code() != "ALREADY_EXISTS") throw;
  }
  const auto before = api.get(policy_path(name));
  auto after = api.put(policy_path(name), policy);
  const bool same = before.value("metadata", nlohmann::json::object()).value("version", "") ==
                    after.value("metadata", nlohmann::json::object()).value("version", "");
  return {same ? "unchanged" : "configured", std::move(after)};
}

int policy_apply(Context &ctx) {
  po::options_description options;
  options.add_options()("filename,f", po::value<std::string>());
  std::vector<std::string> args(ctx.args.begin() + 1, ctx.args.end());
  const auto vm = parse_command_line("policy apply", args, options);
  if (!vm.count("filename")) throw UsageError("policy apply: -f FILE is required");
  const std::string file = vm["filename"].as<std::string>();
  const auto policies = policies_in(read_input(file), file);

  nlohmann::json applied = nlohmann::json::array();
  for (const auto &policy : policies) {
    const std::string name = name_of(policy, file);
    auto [outcome, stored] = apply_one(ctx.api(), policy, name);
    if (!ctx.json())
      ctx.out << fmt::format("policy/{} {} (version {})\n", name, outcome,
                             stored["metadata"].value("version", "?"));
    applied.push_back(std::move(stored));
  }
  if (ctx.json()) ctx.print_data(applied.size() == 1 ? applied.at(0) : applied);
  return kExitOk;
}

int policy_list(Context &ctx) {
  std::vector<std::string> args(ctx.args.begin() + 1, ctx.args.end());
  po::options_description options;
  parse_command_line("policy list", args, options);
  const auto data = ctx.api().get("/v1/policies");
  if (ctx.json()) return ctx.print_data(data), kExitOk;
  const auto &items = data.at("items");
  policy_table({items.begin(), items.end()}).print(ctx.out, ctx.settings.output);
  return kExitOk;
}

// `policy get NAME` and `policy delete NAME`: the one name.
std::string the_name(Context &ctx, const std::string &command) {
  po::options_description options;
  options.add_options()("name", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("name", 1);
  std::vector<std::string> args(ctx.args.begin() + 1, ctx.args.end());
  const auto vm = parse_command_line("policy " + command, args, options, positional);
  if (!vm.count("name")) throw UsageError(fmt::format("policy {}: a policy name is required", command));
  return vm["name"].as<std::string>();
}

int policy_get(Context &ctx) {
  const auto data = ctx.api().get(policy_path(the_name(ctx, "get")));
  if (ctx.json()) return ctx.print_data(data), kExitOk;
  policy_table({data}).print(ctx.out, ctx.settings.output);
  return kExitOk;
}

int policy_delete(Context &ctx) {
  const std::string name = the_name(ctx, "delete");
  const auto data = ctx.api().del(policy_path(name));
  if (ctx.json()) return ctx.print_data(data), kExitOk;
  ctx.out << fmt::format("policy/{} deleted\n", name);
  return kExitOk;
}

}  // namespace

int run_policy(Context &ctx) {
  if (ctx.args.empty()) {
    ctx.err << kPolicyUsage;
    return kExitUsage;
  }
  if (ctx.args[0] == "help" || wants_help(ctx.args)) {
    ctx.out << kPolicyUsage;
    return kExitOk;
  }
  const std::string sub = ctx.args[0];
  if (sub == "apply") return policy_apply(ctx);
  if (sub == "list") return policy_list(ctx);
  if (sub == "get") return policy_get(ctx);
  if (sub == "delete") return policy_delete(ctx);
  throw UsageError(fmt::format("policy: unknown command '{}' (apply, list, get, delete)", sub));
}

}  // namespace blade::cli
