// runc (and crun, which keeps the same format): <root>/<id>/state.json.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "../resolver.hpp"
#include "oci_labels.hpp"

namespace blade::cri {

// What runc's state.json says of one container: init_process_pid,
// init_process_start (field 22 of the init's /proc stat when runc started
// it), and config.labels, "k=v" strings holding the OCI annotations plus
// "bundle=<dir>".
struct RuncState {
  std::string id;
  pid_t init_pid = 0;
  std::optional<std::uint64_t> init_start;
  oci::Labels labels;  // without "bundle"
  std::string bundle;
};

// nullopt when the file is missing or is not runc's state.
std::optional<RuncState> read_runc_state(const std::string &path);

class RuncResolver final : public Resolver {
 public:
  // crun's containers are reported as "runc" too: the same state format,
  // one runtime name in restore records; the root tells them apart.
  explicit RuncResolver(std::string root) : root_(std::move(root)) {}
  std::string_view runtime() const override { return "runc"; }
  std::string where() const override { return root_; }
  std::vector<Container> list() const override;
  std::optional<Container> get(const std::string &id) const override;

 private:
  std::optional<Container> load(const std::string &id) const;
  std::string root_;
};

}  // namespace blade::cri
