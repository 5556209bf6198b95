// An experiment as the API shows it: the stored experiment (to_json, in the
// core's model) plus what only the running daemon knows about it, the live
// counters its plugin reports while the fault runs ("counters", absent when
// there are none).
#pragma once

#include <nlohmann/json.hpp>

#include "blade/core/model/experiment.hpp"
#include "blade/core/plugin/live_counters.hpp"

namespace blade::server {

nlohmann::json experiment_view(const Experiment &experiment, const LiveCounters &counters);

}  // namespace blade::server
