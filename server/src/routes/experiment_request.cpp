#include "experiment_request.hpp"

#include <charconv>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/error.hpp"

namespace blade::server {
namespace {

[[noreturn]] void invalid(const std::string &field, const std::string &description) {
  throw Error(ErrorCode::InvalidArgument, fmt::format("{}: {}", field, description),
              {{field, description}});
}

std::string text_field(const nlohmann::json &body, const char *name) {
  if (!body.contains(name)) return {};
  if (!body[name].is_string()) invalid(name, "must be a string");
  return body[name].get<std::string>();
}

bool bool_field(const nlohmann::json &body, const char *name) {
  if (!body.contains(name)) return false;
  if (!body[name].is_boolean()) invalid(name, "must be true or false");
  return body[name].get<bool>();
}

std::int64_t int_param(const httplib::Request &req, const char *name, std::int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  const std::string text = req.get_param_value(name);
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) invalid(name, "must be an integer");
  return value;
}

nlohmann::json parse_object(const std::string &text, const std::set<std::string> &known) {
  nlohmann::json body = parse_body(text);
  if (!body.is_object()) invalid("body", "must be a JSON object");
  for (const auto &[key, value] : body.items())
    if (!known.count(key)) invalid(key, "unknown field");
  return body;
}

void parse_page(const httplib::Request &req, std::int64_t &limit, std::int64_t &offset,
                bool &ascending, std::optional<std::string> &after) {
  limit = int_param(req, "limit", 50);
  offset = int_param(req, "offset", 0);
  if (req.has_param("order")) {
    const std::string order = req.get_param_value("order");
    if (order != "asc" && order != "desc") invalid("order", "must be asc or desc");
    ascending = order == "asc";
  }
  if (req.has_param("after")) {
    // Two ways to say where a page starts: a client sending both (even
    // offset=0) means one of them wrongly.
    if (req.has_param("offset")) invalid("after", "cannot be combined with offset");
    after = req.get_param_value("after");
    if (after->empty()) invalid("after", "must be the `next` cursor of a page");
  }
}

}  // namespace

nlohmann::json parse_body(const std::string &text) {
  BoundedJson body = parse_bounded_json(text);
  if (body.problem == JsonProblem::TooDeep) {
    invalid("body", fmt::format("nested deeper than {} levels of arrays and objects", kMaxJsonDepth));
  }
  if (body.problem == JsonProblem::Malformed) invalid("body", "malformed JSON");
  return std::move(body.value);
}

void require_json(const httplib::Request &req) {
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) != 0) invalid("Content-Type", "must be application/json");
}

bool parse_force_param(const httplib::Request &req) {
  if (!req.has_param("force")) return false;
  const std::string v = req.get_param_value("force");
  if (v != "true" && v != "false") invalid("force", "must be true or false");
  return v == "true";
}

PrepareRequest parse_prepare_request(const std::string &body_text) {
  auto body = parse_object(body_text, {"type", "flags"});
  PrepareRequest r;
  r.type = text_field(body, "type");
  if (r.type.empty()) invalid("type", "required");
  if (body.contains("flags")) r.flags = flags_from_json(body["flags"]);
  return r;
}

PreparationFilter parse_preparation_filter(const httplib::Request &req) {
  PreparationFilter f;
  if (req.has_param("status")) {
    auto s = preparation_status_from_string(req.get_param_value("status"));
    if (!s) invalid("status", "must be created, running, revoked or failed");
    f.status = s;
  }
  if (req.has_param("type")) f.type = req.get_param_value("type");
  parse_page(req, f.limit, f.offset, f.ascending, f.after);
  return f;
}

CreateRequest parse_create_request(const std::string &body_text) {
  auto body = parse_object(
      body_text, {"scope", "target", "action", "flags", "async", "timeout", "callback", "dry_run"});

  CreateRequest r;
  if (body.contains("scope")) r.scope = text_field(body, "scope");
  r.target = text_field(body, "target");
  r.action = text_field(body, "action");
  if (body.contains("flags")) r.flags = flags_from_json(body["flags"]);
  r.async = bool_field(body, "async");
  r.dry_run = bool_field(body, "dry_run");
  r.callback = text_field(body, "callback");
  if (body.contains("timeout") && !body["timeout"].is_null()) {
    const auto &t = body["timeout"];
    if (t.is_number_integer()) {
      // As written: an unsigned beyond 2^63-1 read as int64 would wrap negative.
      r.timeout = t.dump();
    } else if (t.is_string()) {
      r.timeout = t.get<std::string>();
    } else {
      invalid("timeout", "must be whole seconds or a duration string such as \"90s\"");
    }
  }
  return r;
}

ExperimentFilter parse_experiment_filter(const httplib::Request &req) {
  ExperimentFilter f;
  if (req.has_param("status")) {
    auto s = experiment_status_from_string(req.get_param_value("status"));
    if (!s) invalid("status", "must be created, running, destroying, destroyed or failed");
    f.status = s;
  }
  for (const char *name : {"target", "action", "scope"}) {
    if (!req.has_param(name)) continue;
    std::string v = req.get_param_value(name);
    if (std::string_view(name) == "target") f.target = v;
    if (std::string_view(name) == "action") f.action = v;
    if (std::string_view(name) == "scope") f.scope = v;
  }
  parse_page(req, f.limit, f.offset, f.ascending, f.after);
  return f;
}

}  // namespace blade::server
