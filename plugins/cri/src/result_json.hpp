// What create's result, a dry run's plan and destroy's report say about the
// container, around what the fault inside said.
#pragma once

#include <string>

#include "container.hpp"

namespace blade::cri {

// {"container":{"runtime","id","name","init_pid"}}
std::string container_result_json(const Container &c);

// The keys of the JSON object `first`, then those of `second` that `first`
// does not have; `second` when not an object is kept whole under `key`.
std::string merge_objects(const std::string &first, const std::string &second,
                          const std::string &key);

// `json_text` with every string under the inner faults' state dir
// (kInnerStateDir: meaningful only inside the helper) rewritten to the same
// place under `host_state_dir`, for results, plans and reports. Not for
// records: the inner destroy reads those inside a helper again.
std::string with_host_paths(const std::string &json_text, const std::string &host_state_dir);

}  // namespace blade::cri
