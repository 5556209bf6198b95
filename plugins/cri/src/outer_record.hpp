// The cri plugin's restore record: the container (id and its init's pid +
// start time, so destroy can tell the same container from a restarted or
// deleted one), what the helper entered, the helper that holds the fault,
// and the inner fault's own record. Written ahead of each step:
//   {"container":{"runtime","id","name","ns","init_pid","init_start"},
//    "enter":{"mnt","pid","net","ipc","uts","cgroup"},
//    "helper":{"pid","start"} | null,
//    "inner":<the inner fault's record> | null}
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "container.hpp"
#include "helper_protocol.hpp"

namespace blade::cri {

struct HelperRef {
  int pid = 0;
  std::uint64_t start = 0;
};

struct OuterRecord {
  Container container;  // labels and bundle are not recorded
  EnterPlan enter;      // its pid/start are the container's init's
  std::optional<HelperRef> helper;
  // The inner record as JSON text; nullopt until the fault saved one (then
  // nothing was changed inside the container yet).
  std::optional<std::string> inner;
};

std::string to_json(const OuterRecord &r);
// Throws std::invalid_argument naming the field that is missing or wrong.
OuterRecord outer_record_from_json(const std::string &text);

}  // namespace blade::cri
