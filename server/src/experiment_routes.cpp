// The experiment routes of API.md over the ExperimentService.
#include <fmt/format.h>

#include "blade/core/error.hpp"
#include "envelope.hpp"
#include "experiment_request.hpp"
#include "http_server.hpp"

namespace blade::server {
namespace {

// Runs a handler, turning a core error into its envelope.
template <class F>
void answer(httplib::Response &res, F &&handler) {
  try {
    handler();
  } catch (const Error &e) {
    send_error(res, e);
  }
}

void require_json(const httplib::Request &req) {
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) != 0) {
    throw Error(ErrorCode::InvalidArgument, "Content-Type: must be application/json",
                {{"Content-Type", "must be application/json"}});
  }
}

// A failed experiment goes back with the matrix's status for its failure
// kind, and the experiment itself as data.
void send_failed(httplib::Response &res, ErrorCode code, const Experiment &e) {
  send_error(res, Error(code, e.error.empty() ? "the executor failed" : e.error), to_json(e));
}

}  // namespace

void HttpServer::install_experiment_routes() {
  http_.Post("/v1/experiments", [this](const httplib::Request &req, httplib::Response &res) {
    if (!authorised(req, res)) return;
    answer(res, [&] {
      require_json(req);
      CreateRequest create = parse_create_request(req.body);
      CreateResult result = service_.create(create, caller_of(req));
      if (result.plan) return send_ok(res, 200, *result.plan);
      if (result.failure) return send_failed(res, *result.failure, result.experiment);
      send_ok(res, create.async ? 202 : 201, to_json(result.experiment));
    });
  });

  http_.Get("/v1/experiments", [this](const httplib::Request &req, httplib::Response &res) {
    if (!authorised(req, res)) return;
    answer(res, [&] {
      auto page = service_.list(parse_experiment_filter(req));
      nlohmann::json items = nlohmann::json::array();
      for (const auto &e : page.items)
        items.push_back(to_json(e));
      send_ok(res, 200, {{"items", items}, {"total", page.total}});
    });
  });

  http_.Get(R"(/v1/experiments/([^/]+))",
            [this](const httplib::Request &req, httplib::Response &res) {
              if (!authorised(req, res)) return;
              answer(res, [&] { send_ok(res, 200, to_json(service_.get(req.matches[1]))); });
            });

  http_.Delete(R"(/v1/experiments/([^/]+))",
               [this](const httplib::Request &req, httplib::Response &res) {
                 if (!authorised(req, res)) return;
                 answer(res, [&] {
                   DestroyResult result = service_.destroy(req.matches[1], caller_of(req));
                   if (result.failure) return send_failed(res, *result.failure, result.experiment);
                   send_ok(res, 200, to_json(result.experiment));
                 });
               });
}

}  // namespace blade::server
