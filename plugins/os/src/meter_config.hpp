// Which figures a cpu or mem load is sized by, from the host's configuration
// (config_json): {"cpu_meter":"cgroup","mem_meter":"cgroup"} makes the load
// judge the cgroup the process runs in (the cri helper, inside a
// container's cgroup, passes both); absent or "host", the host's figures.
#pragma once

#include <string>
#include <string_view>

namespace blade::os {

enum class Meter { host, cgroup };

// The meter `key` names in the configuration object `config_json`. Throws
// sdk::FailedPrecondition naming the key on a value that is neither.
Meter meter_from_config(const std::string &config_json, std::string_view key);

}  // namespace blade::os
