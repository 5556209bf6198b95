// Requests of the experiment routes as the service's plain structs. Every
// problem is an InvalidArgument naming the field, before anything runs.
#pragma once

#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "blade/core/experiment_service.hpp"

namespace blade::server {

// The body of POST /v1/experiments (API.md).
CreateRequest parse_create_request(const std::string &body);

// The query of GET /v1/experiments: status, target, action, scope, limit,
// offset, order.
ExperimentFilter parse_experiment_filter(const httplib::Request &req);

}  // namespace blade::server
