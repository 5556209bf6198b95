// docker: its Engine API over the UNIX socket (GET /containers/json with
// label filters, GET /containers/<id>/json for State.Pid). docker records no
// start time of the init, so the one read from /proc is taken as it is.
#pragma once

#include <string>

#include "../resolver.hpp"

namespace blade::cri {

class DockerResolver final : public Resolver {
 public:
  explicit DockerResolver(std::string socket) : socket_(std::move(socket)) {}
  std::string_view runtime() const override { return "docker"; }
  std::string where() const override { return socket_; }
  std::vector<Container> list() const override;
  Listing list_matching(const Selector &sel) const override;
  std::optional<Container> get(const std::string &id) const override;

 private:
  Listing listing(const Selector *sel) const;
  std::string socket_;
};

}  // namespace blade::cri
