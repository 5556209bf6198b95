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
  // Counters looked up once; without them the text is spliced as it is
  // (to_json_text when the core handed none), never parsed and dumped again.
  auto live = counters.for_uid(experiment.uid);
  if (!live) return send_ok_text(res, status, json ? *json : to_json_text(experiment));
  nlohmann::json out = to_json(experiment);
  out["counters"] = std::move(*live);
  send_ok(res, status, out);
}

}  // namespace blade::server
