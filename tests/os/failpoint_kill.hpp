// One crash of bladed at a named failpoint (BLADE_FAILPOINTS "<point>=kill")
// and the restart whose recovery must undo what the dead daemon left; for
// the faults tested inside user-mode Linux, whose host-side crash rows
// cannot run (they would move the test machine's clock or need its PID 1
// to be systemd).
#pragma once

#include <signal.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "os_test_support.hpp"

namespace blade::test::os {

// Restarts `d` with `point` armed and sends `body`. A create point kills the
// daemon in the POST. A destroy point is met by a DELETE after a create that
// answered 201 (`created` runs in between, to see the fault in place): a
// restart recovers (destroys) what is active, so the point is armed before
// the create. Then `d` is restarted unarmed, which returns once recovery has
// run. Returns the experiment's uid for a destroy point, "" otherwise.
inline std::string killed_at(BladedProcess &d, const std::string &point, const nlohmann::json &body,
                             const std::function<void()> &created = {}) {
  d.crash();
  d.set_env({"BLADE_FAILPOINTS=" + point + "=kill"});
  d.restart();
  std::string uid;
  {
    auto c = d.client();
    if (point.find(".destroy.") == std::string::npos) {
      CHECK_FALSE(post_json(c, "/v1/experiments", body));
    } else {
      auto a = create(c, body);
      REQUIRE_MESSAGE(a.status == 201, a.body.dump());
      uid = a.uid();
      if (created) created();
      CHECK_FALSE(c.Delete(("/v1/experiments/" + uid).c_str(), auth()));
    }
  }
  REQUIRE(d.process->exit_code(std::chrono::seconds(10)) == -SIGKILL);
  d.set_env({});
  d.restart();
  return uid;
}

// killed_at for each of `points` in turn; after each restart the
// experiment (when it got a uid) is destroyed and `restored` checks the host.
inline void killed_at_each(BladedProcess &d, const std::vector<std::string> &points,
                           const nlohmann::json &body, const std::function<void()> &created,
                           const std::function<void()> &restored) {
  for (const auto &point : points) {
    CAPTURE(point);
    const std::string uid = killed_at(d, point, body, created);
    if (!uid.empty()) {
      auto c = d.client();
      CHECK(wait_destroyed(c, uid) == "destroyed");
    }
    restored();
  }
}

}  // namespace blade::test::os
