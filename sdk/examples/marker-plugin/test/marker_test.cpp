// Unit test of the example plugin with the SDK's host stand-in: the
// lifecycle bladed runs, create -> restore record -> daemon restart (a new
// plugin instance) -> destroy -> destroy again, with the marker checked on
// the file system at each step. No daemon needed.
#include <blade/plugin_test.hpp>

#include <fstream>
#include <string>

namespace bt = blade::sdk::testing;

namespace {

using bt::path_exists;
using bt::read_file;

// A started host and a directory for the marker; each test makes its own.
struct Fixture {
  bt::Host host{BLADE_PLUGIN_ENTRY};
  bt::Instance &inst = host.start();
  bt::TempDir dir;
  std::string path = dir.path() + "/marker";
};

void create_restart_destroy_twice() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  const bt::Flags flags = {{"path", path}, {"content", "hello\n"}};

  bt::CallResult made = inst.create("example", "marker", flags);
  BLADE_TEST_CHECK(made.ok(), made.describe());
  BLADE_TEST_CHECK(read_file(path) == "hello\n");
  BLADE_TEST_CHECK(made.result == "{\"bytes\":6,\"path\":\"" + path + "\"}", made.result);
  // The record destroy works from: the path, the uid-named temp file, and
  // the identity of the file made (written ahead before the link step).
  BLADE_TEST_CHECK(made.restore && made.restore->find("\"ino\":") != std::string::npos,
                   made.restore.value_or("(none)"));
  BLADE_TEST_CHECK(made.saved_restores.size() == 2, "one record ahead of each step");
  BLADE_TEST_CHECK(!path_exists(path + ".blade-" + made.uid), "the temp name is gone");

  host.restart();  // the new instance knows nothing but the record and the flags
  BLADE_TEST_CHECK(path_exists(path), "a restart leaves the fault in place");
  bt::CallResult undone = inst.destroy(made);
  BLADE_TEST_CHECK(undone.ok(), undone.describe());
  BLADE_TEST_CHECK(!path_exists(path), "destroy removed the marker");
  bt::CallResult again = inst.destroy(made);
  BLADE_TEST_CHECK(again.ok(), "destroy is idempotent: " + again.describe());
  BLADE_TEST_CHECK(host.logged("created marker " + path));
  BLADE_TEST_CHECK(host.logged("removed marker " + path));
  BLADE_TEST_CHECK(host.violations().empty());
}

// Destroy after a crash mid-create: only the first write-ahead record (no
// inode yet) reached the store, and the uid-named temp file exists.
void destroy_from_the_first_saved_record() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult made = inst.create("example", "marker", {{"path", path}, {"content", "x"}});
  BLADE_TEST_CHECK(made.ok() && made.saved_restores.size() == 2, made.describe());
  if (made.saved_restores.size() != 2) return;

  bt::CallResult crashed = made;
  crashed.restore = made.saved_restores[0];
  { std::ofstream(path + ".blade-" + made.uid) << "half"; }
  host.restart();
  BLADE_TEST_CHECK(inst.destroy(crashed).ok());
  BLADE_TEST_CHECK(!path_exists(path + ".blade-" + made.uid), "the temp file is removed");
  BLADE_TEST_CHECK(path_exists(path), "without the inode, the file at path is not assumed ours");
  BLADE_TEST_CHECK(inst.destroy(made).ok());
  BLADE_TEST_CHECK(!path_exists(path));
}

void dry_run_changes_nothing() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult plan = inst.dry_run("example", "marker", {{"path", path}, {"content", "abc"}});
  BLADE_TEST_CHECK(plan.ok(), plan.describe());
  BLADE_TEST_CHECK(plan.plan == "{\"bytes\":3,\"create_file\":\"" + path + "\",\"would_fail\":\"\"}",
                   plan.plan);
  BLADE_TEST_CHECK(!path_exists(path));
}

void existing_file_is_kept() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  { std::ofstream(path) << "mine"; }
  bt::CallResult r = inst.create("example", "marker", {{"path", path}, {"content", "x"}});
  BLADE_TEST_CHECK(r.status == BLADE_STATUS_ALREADY_EXISTS, r.describe());
  BLADE_TEST_CHECK(r.message == "path: " + path + " already exists", r.message);
  BLADE_TEST_CHECK(inst.destroy(r).ok());
  BLADE_TEST_CHECK(read_file(path) == "mine", "the file that was there is untouched");
  BLADE_TEST_CHECK(!path_exists(path + ".blade-" + r.uid));
}

}  // namespace

int main() {
  return bt::run_tests({
      {"create, restart, destroy, destroy again", create_restart_destroy_twice},
      {"destroy from the first write-ahead record", destroy_from_the_first_saved_record},
      {"dry run changes nothing", dry_run_changes_nothing},
      {"an existing file is refused and kept", existing_file_is_kept},
  });
}
