// Fuzz target: the JSON request bodies, through the functions the routes
// call, without a daemon. One input is given to every body parser in turn:
//   POST /v1/experiments, POST /api/v1/experiments  parse_create_request,
//       then what create checks before anything runs (the action, the
//       flags against the all-types spec, the timeout)
//   POST /v1/preparations                          parse_prepare_request
//   POST /api/v1/preparations                      with_type_field, then
//                                                  parse_prepare_request
//   the audit line of any mutating request          audit_params_json
// A blade::Error is the parsers' refusal and expected; anything else that
// escapes would be a 500 from the route, and crashes the target.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "all_types_spec.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/timeout.hpp"
#include "blade/core/spec/flag_validation.hpp"
#include "compat/compat_preparation_body.hpp"
#include "fuzz_check.hpp"
#include "routes/audit_params.hpp"
#include "routes/experiment_request.hpp"

namespace {

using namespace blade;

void create(const std::string &body) {
  const CreateRequest request = server::parse_create_request(body);
  const auto [target, action] = fuzz::resolve(request.scope, request.target, request.action);
  validate_flags(*target, *action, request.flags);
  if (request.timeout) parse_timeout_seconds(*request.timeout);
}

void prepare_compat(const std::string &body) {
  const std::string renamed = server::with_type_field(body);
  if (renamed != body) {
    // Only an object with `target` is rewritten, into one with `type`.
    const auto json = nlohmann::json::parse(renamed, nullptr, false);
    FUZZ_CHECK(json.is_object() && json.contains("type") && !json.contains("target"));
  }
  server::parse_prepare_request(renamed);
}

void audit(const std::string &body) {
  httplib::Request request;
  request.body = body;
  const std::string line = server::audit_params_json(request, "fuzz");
  // The audit log stores JSON; whatever came in, the line must read back.
  FUZZ_CHECK(!nlohmann::json::parse(line, nullptr, false).is_discarded());
}

template <class F>
void refusing(F &&parse, const std::string &body) {
  try {
    parse(body);
  } catch (const Error &) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string body = fuzz::input_text(data, size);
  refusing(create, body);
  refusing([](const std::string &b) { server::parse_prepare_request(b); }, body);
  refusing(prepare_compat, body);
  audit(body);
  return 0;
}
