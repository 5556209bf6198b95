// process stop inside a runc container: the matched process inside stops
// (state T in the host's /proc) and runs again after destroy, while a host
// process with the very same command line is never touched.
#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include "../../support/child_process.hpp"
#include "../../support/process_state.hpp"
#include "cri_runc_support.hpp"

using namespace std::chrono_literals;
using namespace blade::test;
using namespace blade::test::cri;

namespace {

bool running(char state) { return state == 'S' || state == 'R'; }

}  // namespace

TEST_CASE("process stop of a process inside a container: T, then running again") {
  RuncContainer ctr;
  const pid_t inside = ctr.exec_detached({"/bin/sleep", "4242"});
  ChildProcess host({"/bin/sleep", "4242"});  // same command line, on the host
  REQUIRE(eventually([&] { return running(process_state(inside)); }));
  REQUIRE(eventually([&] { return running(process_state(host.pid())); }));

  BladedProcess d(cri_options());
  auto c = d.client();
  const auto a = create_in(c, ctr, "process", "stop", {{"process", "sleep 4242"}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  MESSAGE(a.body["data"]["result"].dump());
  CHECK(eventually([&] { return process_state(inside) == 'T'; }, 5s));
  CHECK(running(process_state(host.pid())));
  CHECK(running(process_state(ctr.init_pid())));  // the init matched nothing
  // The stop leaves paths named by the uid under the state dir while it
  // runs, so the check after destroy below is one that can fail.
  CHECK(!state_paths_named(d, a.uid()).empty());

  const auto gone = destroy(c, a.uid());
  CHECK_MESSAGE(gone.status == 200, gone.body.dump());
  CHECK(eventually([&] { return running(process_state(inside)); }, 5s));
  CHECK(running(process_state(host.pid())));
  // Nothing of the experiment in the inner state (its record, claims).
  check_nothing_left(d, a.uid());
}
