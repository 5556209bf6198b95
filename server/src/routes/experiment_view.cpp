#include "experiment_view.hpp"

#include "http/envelope.hpp"

namespace blade::server {

nlohmann::json experiment_view(const Experiment &experiment, const LiveCounters &counters) {
  nlohmann::json out = to_json(experiment);
  if (auto live = counters.for_uid(experiment.uid)) out["counters"] = std::move(*live);
  return out;
}

void send_experiment(httplib::Response &res, int status, const Experiment &experiment,
                     const std::string *json, const LiveCounters &counters) {
  if (json && !counters.for_uid(experiment.uid)) return send_ok_text(res, status, *json);
  send_ok(res, status, experiment_view(experiment, counters));
}

}  // namespace blade::server
