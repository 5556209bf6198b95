// CRI-O: each container's run directory in containers/storage's run root,
// <storage>/<driver>-containers/<id>/userdata/, holds CRI-O's state.json
// (the OCI state plus initPid and initStartTime, field 22 of the init's
// /proc stat as a string), the OCI config.json (annotations, among them
// io.kubernetes.cri-o.Labels: the container's labels as a JSON object) and
// conmon's pidfile. An older CRI-O without initStartTime: the start time
// recorded in the runc state under <runc_root>/<id>/ is checked instead.
#pragma once

#include <string>

#include "../resolver.hpp"

namespace blade::cri {

class CrioResolver final : public Resolver {
 public:
  CrioResolver(std::string storage, std::string runc_root)
      : storage_(std::move(storage)), runc_root_(std::move(runc_root)) {}
  std::string_view runtime() const override { return "cri-o"; }
  std::string where() const override { return storage_; }
  std::vector<Container> list() const override;
  std::optional<Container> get(const std::string &id) const override;

 private:
  // The userdata dirs of every storage driver's containers, by id.
  std::vector<std::pair<std::string, std::string>> userdata_dirs() const;
  std::optional<Container> load(const std::string &id, const std::string &userdata) const;
  std::string storage_, runc_root_;
};

}  // namespace blade::cri
