// containerd (runtime v2 shims): <state>/io.containerd.runtime.v2.task/<ns>/<id>/
// holds the task's bundle: init.pid (written by the shim's runc) and the OCI
// config.json. The init's start time comes from the shim's runc state,
// <runc_root>/<ns>/<id>/state.json (a shim other than runc keeps none: then
// the pid is taken alive as it is).
#pragma once

#include <string>

#include "../resolver.hpp"

namespace blade::cri {

class ContainerdResolver final : public Resolver {
 public:
  ContainerdResolver(std::string state, std::string runc_root, std::string ns)
      : state_(std::move(state)), runc_root_(std::move(runc_root)), ns_(std::move(ns)) {}
  std::string_view runtime() const override { return "containerd"; }
  std::string where() const override;
  std::vector<Container> list() const override;
  std::optional<Container> get(const std::string &id) const override;

 private:
  std::string tasks_dir() const;
  std::optional<Container> load(const std::string &id) const;
  std::string state_, runc_root_, ns_;
};

}  // namespace blade::cri
