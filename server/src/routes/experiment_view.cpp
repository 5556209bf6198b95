#include "experiment_view.hpp"

namespace blade::server {

nlohmann::json experiment_view(const Experiment &experiment, const LiveCounters &counters) {
  nlohmann::json out = to_json(experiment);
  if (auto live = counters.for_uid(experiment.uid)) out["counters"] = std::move(*live);
  return out;
}

}  // namespace blade::server
