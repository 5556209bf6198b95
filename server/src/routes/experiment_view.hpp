// An experiment as the API shows it: the stored experiment (to_json, in the
// core's model) plus what only the running daemon knows about it, the live
// counters its plugin reports while the fault runs ("counters", absent when
// there are none).
#pragma once

#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/experiment.hpp"
#include "blade/core/plugin/live_counters.hpp"

namespace blade::server {

nlohmann::json experiment_view(const Experiment &experiment, const LiveCounters &counters);

// The success envelope with the experiment as data. `json` is the
// experiment as the core serialized it once (to_json_text, may be null: it
// is then made here): spliced in as it is unless live counters add a field
// to it, when the view is built instead.
void send_experiment(httplib::Response &res, int status, const Experiment &experiment,
                     const std::string *json, const LiveCounters &counters);

}  // namespace blade::server
