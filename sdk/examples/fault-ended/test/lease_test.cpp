// Unit test of the lease plugin with the SDK's host stand-in: the fault
// ends on its own (the file is removed, or the lease expires) and the
// plugin's watcher thread reports it through fault_ended, which the test
// waits for. No daemon needed.
#include <blade/plugin_test.hpp>

#include <unistd.h>

#include <chrono>
#include <string>

namespace bt = blade::sdk::testing;
using std::chrono::milliseconds;

namespace {

using bt::path_exists;

// A started host and a path for the lease; each test makes its own.
struct Fixture {
  bt::Host host{BLADE_PLUGIN_ENTRY};
  bt::Instance &inst = host.start();
  bt::TempDir dir;
  std::string path = dir.path() + "/lease";

  bt::CallResult hold(const std::string &ttl_ms) {
    return inst.create("lease", "hold", {{"path", path}, {"ttl-ms", ttl_ms}});
  }
};

// Destroy after the fault ended on its own has nothing to undo, twice.
void destroy_twice_leaves_nothing(bt::Instance &inst, const bt::CallResult &made,
                                  const std::string &path) {
  bt::CallResult first = inst.destroy(made);
  BLADE_TEST_CHECK(first.ok(), first.describe());
  bt::CallResult second = inst.destroy(made);
  BLADE_TEST_CHECK(second.ok(), "destroy is idempotent: " + second.describe());
  BLADE_TEST_CHECK(!path_exists(path));
}

void removed_file_is_reported() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult made = f.hold("0");
  BLADE_TEST_CHECK(made.ok(), made.describe());
  BLADE_TEST_CHECK(path_exists(path));
  BLADE_TEST_CHECK(!host.wait_fault_ended(made.uid, milliseconds(100)), "no report while held");

  ::unlink(path.c_str());  // what an operator (or a cleanup job) would do
  auto report = host.wait_fault_ended(made.uid, milliseconds(5000));
  BLADE_TEST_CHECK(report.has_value(), "the watcher reported the end");
  if (report) BLADE_TEST_CHECK(report->reason == "lease file " + path + " was removed", report->reason);
  destroy_twice_leaves_nothing(inst, made, path);
  BLADE_TEST_CHECK(host.fault_ended_reports().size() == 1, "reported once");
  BLADE_TEST_CHECK(host.violations().empty());
}

void expired_lease_is_reported() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult made = f.hold("200");
  BLADE_TEST_CHECK(made.ok(), made.describe());
  auto report = host.wait_fault_ended(made.uid, milliseconds(5000));
  BLADE_TEST_CHECK(report.has_value(), "the expiry was reported");
  if (report) BLADE_TEST_CHECK(report->reason == "lease expired after 200 ms", report->reason);
  BLADE_TEST_CHECK(!path_exists(path), "the expired lease removed its file");
  destroy_twice_leaves_nothing(inst, made, path);
}

// A destroy stops the watcher first: ending the fault on purpose is not
// "ended on its own".
void destroy_reports_nothing() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult made = f.hold("0");
  BLADE_TEST_CHECK(made.ok(), made.describe());
  destroy_twice_leaves_nothing(inst, made, path);
  BLADE_TEST_CHECK(!host.wait_fault_ended("", milliseconds(200)), "destroy is not a report");
}

// After a restart the new instance has no watcher, yet destroy still works
// from the restore record; shutdown stopped the old watcher, which reported
// nothing and left the file (the fault is still active).
void restart_then_destroy() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult made = f.hold("100000");
  BLADE_TEST_CHECK(made.ok(), made.describe());
  BLADE_TEST_CHECK(made.restore == "{\"path\":\"" + path + "\"}", made.restore.value_or("(none)"));
  host.restart();
  BLADE_TEST_CHECK(path_exists(path), "shutdown leaves active faults in place");
  destroy_twice_leaves_nothing(inst, made, path);
  BLADE_TEST_CHECK(host.fault_ended_reports().empty());
}

void existing_file_is_refused() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult first = f.hold("0");
  bt::CallResult second = f.hold("0");
  BLADE_TEST_CHECK(second.status == BLADE_STATUS_ALREADY_EXISTS, second.describe());
  // The refused create's destroy must not take the first experiment's file.
  BLADE_TEST_CHECK(inst.destroy(second).ok());
  BLADE_TEST_CHECK(path_exists(path), "the first lease survives the second's destroy");
  destroy_twice_leaves_nothing(inst, first, path);
}

}  // namespace

int main() {
  return bt::run_tests({
      {"a removed lease file is reported through fault_ended", removed_file_is_reported},
      {"an expired lease is reported through fault_ended", expired_lease_is_reported},
      {"destroy stops the watcher and reports nothing", destroy_reports_nothing},
      {"restart, then destroy from the record", restart_then_destroy},
      {"an existing file is refused and kept", existing_file_is_refused},
  });
}
