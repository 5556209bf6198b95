// Requests of the experiment routes as the service's plain structs. Every
// problem is an InvalidArgument naming the field, before anything runs.
#pragma once

#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "blade/core/experiment/experiment_service.hpp"

namespace blade::server {

// A request body as JSON, nested at most kMaxJsonDepth levels (bounded_json.hpp);
// throws InvalidArgument on field "body" otherwise. Every route reading a JSON
// body goes through this.
nlohmann::json parse_body(const std::string &text);

// Throws InvalidArgument on field Content-Type unless the request says JSON.
void require_json(const httplib::Request &req);

// The body of POST /v1/experiments (docs/http-api.md).
CreateRequest parse_create_request(const std::string &body);

// The query of GET /v1/experiments: status, target, action, scope, limit,
// offset or after (a page's `next` cursor), order.
ExperimentFilter parse_experiment_filter(const httplib::Request &req);

// ?force=true|false on DELETE /v1/experiments/{uid}: mark it destroyed even
// if the executor cannot roll it back.
bool parse_force_param(const httplib::Request &req);

// The body of POST /v1/preparations: {"type": "jvm", "flags": {...}}.
PrepareRequest parse_prepare_request(const std::string &body);

// The query of GET /v1/preparations: status, type, limit, offset or after,
// order.
PreparationFilter parse_preparation_filter(const httplib::Request &req);

}  // namespace blade::server
