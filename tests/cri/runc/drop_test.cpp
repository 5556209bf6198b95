// network drop inside a runc container's network namespace: a TCP connect
// inside the container (busybox nc, to a listener inside on lo) fails while
// the host's own loopback connect to the same port still works; the nft
// table is in the container's namespace, never in the host's; destroy
// removes it.
#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include "cri_runc_support.hpp"

using namespace std::chrono_literals;
using namespace blade::test;
using namespace blade::test::cri;

TEST_CASE("network drop in a container's netns: its connects fail, the host's do not") {
  HostListener host;
  const std::string port = std::to_string(host.port());
  RuncContainer ctr;
  ctr.exec_detached({"/bin/nc", "-ll", "-p", port, "-e", "/bin/echo", "pong"});
  const auto connect_inside = [&] {
    return ctr.exec({"/bin/nc", "-w", "1", "127.0.0.1", port}).output == "pong\n";
  };
  REQUIRE(eventually(connect_inside, 5s));
  REQUIRE(host.connects());
  REQUIRE_FALSE(has_blade_table(host_nft_tables()));
  REQUIRE_FALSE(has_blade_table(nft_tables_of(ctr.init_pid())));

  BladedProcess d(cri_options());
  auto c = d.client();
  // A dry run first: the plan from inside the container, nothing changed.
  const auto plan = create(c, json{{"scope", "cri"},
                                   {"target", "network"},
                                   {"action", "drop"},
                                   {"dry_run", true},
                                   {"flags", container_flags(ctr, {{"destination-port", port}})}});
  CHECK_MESSAGE(plan.status == 200, plan.body.dump());
  CHECK_FALSE(has_blade_table(nft_tables_of(ctr.init_pid())));
  CHECK(eventually(connect_inside, 5s));

  const auto a = create_in(c, ctr, "network", "drop", {{"destination-port", port}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  MESSAGE(a.body["data"]["result"].dump());
  CHECK(has_blade_table(nft_tables_of(ctr.init_pid())));
  CHECK_FALSE(has_blade_table(host_nft_tables()));
  CHECK_FALSE(connect_inside());
  CHECK(host.connects());

  const auto gone = destroy(c, a.uid());
  CHECK_MESSAGE(gone.status == 200, gone.body.dump());
  CHECK_FALSE(has_blade_table(nft_tables_of(ctr.init_pid())));
  CHECK(eventually(connect_inside, 5s));
  CHECK_FALSE(has_blade_table(host_nft_tables()));
  CHECK(no_helper_left(d));
}
