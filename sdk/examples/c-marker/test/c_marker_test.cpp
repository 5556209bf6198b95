// Unit test of the C plugin with the SDK's host stand-in: no daemon. The
// plugin's C source is linked into this test (so a debugger steps into it),
// and the built .so (argv[1]) is also dlopen'ed the way bladed loads it.
#include <blade/plugin_test.hpp>

#include <fstream>
#include <string>

namespace bt = blade::sdk::testing;

namespace {

std::string built_plugin;  // argv[1]

using bt::path_exists;
using bt::read_file;

// The lifecycle the daemon runs, with a restart between create and destroy:
// only the restore record and the flags reach the new instance.
void create_restart_destroy_twice(bt::Host &host) {
  bt::TempDir dir;
  const std::string path = dir.path() + "/marker";
  bt::Instance &inst = host.start();

  bt::CallResult made = inst.create("cmarker", "touch", {{"path", path}});
  BLADE_TEST_CHECK(made.ok(), made.describe());
  BLADE_TEST_CHECK(path_exists(path));
  BLADE_TEST_CHECK(read_file(path) == made.uid, "the marker holds the experiment's uid");
  BLADE_TEST_CHECK(made.restore == "{\"path\":\"" + path + "\"}", made.restore.value_or("(none)"));
  BLADE_TEST_CHECK(made.saved_restores.size() == 1, "the record is written ahead of the open");
  BLADE_TEST_CHECK(host.logged("marker created"));

  host.restart();
  BLADE_TEST_CHECK(inst.generation() == 2);
  BLADE_TEST_CHECK(path_exists(path), "a restart leaves the fault in place");
  bt::CallResult undone = inst.destroy(made);
  BLADE_TEST_CHECK(undone.ok(), undone.describe());
  BLADE_TEST_CHECK(!path_exists(path), "destroy removed the marker");
  bt::CallResult again = inst.destroy(made);
  BLADE_TEST_CHECK(again.ok(), "destroy is idempotent: " + again.describe());
  BLADE_TEST_CHECK(host.violations().empty());
}

void linked_lifecycle() {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  BLADE_TEST_CHECK(std::string(host.descriptor().name) == "c-marker");
  BLADE_TEST_CHECK(host.descriptor().dry_run == nullptr, "the C example has no dry run");
  create_restart_destroy_twice(host);
}

// The same, through dlopen of the .so meson built: the file bladed loads.
void loaded_lifecycle() {
  BLADE_TEST_CHECK(!built_plugin.empty(), "pass the built c_marker.so as the first argument");
  if (built_plugin.empty()) return;
  bt::Host host = bt::Host::load(built_plugin);
  create_restart_destroy_twice(host);
}

void failed_create_changes_nothing() {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  bt::TempDir dir;
  const std::string path = dir.path() + "/marker";

  bt::CallResult r = inst.create("cmarker", "touch", {{"path", path}, {"fail", "true"}});
  BLADE_TEST_CHECK(r.status == BLADE_STATUS_INVALID_ARGUMENT, r.describe());
  BLADE_TEST_CHECK(r.message == "asked to fail");
  BLADE_TEST_CHECK(!path_exists(path));

  // A file already there is refused and left as it was.
  { std::ofstream(path) << "someone else's"; }
  r = inst.create("cmarker", "touch", {{"path", path}});
  BLADE_TEST_CHECK(r.status == BLADE_STATUS_ALREADY_EXISTS, r.describe());
  BLADE_TEST_CHECK(read_file(path) == "someone else's");
  // Its destroy (bladed calls it for a create that saved a record) keeps
  // the file: it does not hold this experiment's uid.
  bt::CallResult undone = inst.destroy(r);
  BLADE_TEST_CHECK(undone.ok(), undone.describe());
  BLADE_TEST_CHECK(read_file(path) == "someone else's");
  BLADE_TEST_CHECK(host.logged("belongs to another experiment"));
}

// hang-ms waits after the file is made and stops when the host cancels.
void cancelled_wait_ends_early() {
  bt::Host host(BLADE_PLUGIN_ENTRY);
  bt::Instance &inst = host.start();
  bt::TempDir dir;
  const std::string path = dir.path() + "/marker";
  bt::CallResult r = inst.create("cmarker", "touch", {{"path", path}, {"hang-ms", "20000"}},
                                 bt::CallOptions().with_cancel_after(std::chrono::milliseconds(100)));
  BLADE_TEST_CHECK(r.elapsed < std::chrono::milliseconds(5000), "cancel was honoured");
  BLADE_TEST_CHECK(inst.destroy(r).ok());
  BLADE_TEST_CHECK(!path_exists(path));
}

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1) built_plugin = argv[1];
  return bt::run_tests({
      {"linked: create, restart, destroy twice", linked_lifecycle},
      {"dlopen'ed: create, restart, destroy twice", loaded_lifecycle},
      {"a failed create changes nothing", failed_create_changes_nothing},
      {"a cancelled wait ends early", cancelled_wait_ends_early},
  });
}
