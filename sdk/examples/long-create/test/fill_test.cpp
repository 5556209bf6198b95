// Unit test of the fill plugin with the SDK's host stand-in: a long create
// that reports progress, and that leaves nothing behind when cancelled from
// another thread, after some progress, or at its deadline. No daemon needed.
#include <blade/plugin_test.hpp>

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace bt = blade::sdk::testing;
using std::chrono::milliseconds;

namespace {

using bt::list_dir;

// A started host and a directory for the file; each test makes its own.
struct Fixture {
  bt::Host host{BLADE_PLUGIN_ENTRY};
  bt::Instance &inst = host.start();
  bt::TempDir dir;
  std::string path = dir.path() + "/fill";
};

long long file_size(const std::string &path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

void complete_fill_then_restart_and_destroy() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult made =
      inst.create("fill", "file", {{"path", path}, {"size-mb", "4"}, {"step-ms", "10"}});
  BLADE_TEST_CHECK(made.ok(), made.describe());
  BLADE_TEST_CHECK(file_size(path) == 4LL * 1024 * 1024);
  BLADE_TEST_CHECK(list_dir(dir.path()) == std::vector<std::string>{"fill"}, "no part file left");
  BLADE_TEST_CHECK(made.progress.size() == 4);
  BLADE_TEST_CHECK(!made.progress.empty() && made.progress.back().percent == 100);
  BLADE_TEST_CHECK(!made.progress.empty() && made.progress.back().note == "4 of 4 MiB");
  BLADE_TEST_CHECK(made.saved_restores.size() == 2, "a record ahead of each step");

  host.restart();
  bt::CallResult undone = inst.destroy(made);
  BLADE_TEST_CHECK(undone.ok(), undone.describe());
  BLADE_TEST_CHECK(list_dir(dir.path()).empty(), "destroy removed the file");
  BLADE_TEST_CHECK(inst.destroy(made).ok(), "destroy is idempotent");
  BLADE_TEST_CHECK(host.violations().empty());
}

// Cancelled from another thread mid-way: CANCELLED, nothing on disk, and
// the destroy bladed then runs for the saved record is harmless.
void cancelled_midway_leaves_nothing() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CancelFlag stop;
  std::thread canceller([stop]() mutable {
    std::this_thread::sleep_for(milliseconds(200));
    stop.cancel();
  });
  bt::CallResult r = inst.create("fill", "file",
                                 {{"path", path}, {"size-mb", "100"}, {"step-ms", "20"}},
                                 bt::CallOptions().with_cancel(stop));
  canceller.join();
  BLADE_TEST_CHECK(r.status == BLADE_STATUS_CANCELLED, r.describe());
  BLADE_TEST_CHECK(r.message.find("nothing left behind") != std::string::npos, r.message);
  BLADE_TEST_CHECK(!r.progress.empty() && r.progress.back().percent < 100, "stopped mid-way");
  BLADE_TEST_CHECK(r.elapsed < milliseconds(1500), "stopped soon after the cancel");
  BLADE_TEST_CHECK(list_dir(dir.path()).empty(), "nothing left after the cancel");
  BLADE_TEST_CHECK(inst.destroy(r).ok());
  BLADE_TEST_CHECK(list_dir(dir.path()).empty());
}

void cancelled_after_progress_leaves_nothing() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult r = inst.create("fill", "file", {{"path", path}, {"size-mb", "50"}},
                                 bt::CallOptions().with_cancel_after_progress(3));
  BLADE_TEST_CHECK(r.status == BLADE_STATUS_CANCELLED, r.describe());
  BLADE_TEST_CHECK(r.message == "cancelled after 3 of 50 MiB; nothing left behind", r.message);
  BLADE_TEST_CHECK(r.progress.size() == 3);
  BLADE_TEST_CHECK(list_dir(dir.path()).empty());
}

void deadline_gives_timeout_and_leaves_nothing() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  bt::CallResult r = inst.create("fill", "file",
                                 {{"path", path}, {"size-mb", "100"}, {"step-ms", "20"}},
                                 bt::CallOptions().with_deadline(milliseconds(150)));
  BLADE_TEST_CHECK(r.status == BLADE_STATUS_TIMEOUT, r.describe());
  BLADE_TEST_CHECK(r.message.find("deadline passed") == 0, r.message);
  BLADE_TEST_CHECK(list_dir(dir.path()).empty(), "nothing left after the timeout");
  BLADE_TEST_CHECK(inst.destroy(r).ok());
}

void existing_file_is_kept() {
  Fixture f;
  auto &[host, inst, dir, path] = f;
  { std::ofstream(path) << "precious"; }
  bt::CallResult r = inst.create("fill", "file", {{"path", path}, {"size-mb", "1"}});
  BLADE_TEST_CHECK(r.status == BLADE_STATUS_ALREADY_EXISTS, r.describe());
  BLADE_TEST_CHECK(inst.destroy(r).ok());
  BLADE_TEST_CHECK(file_size(path) == 8, "the file that was there is untouched");
  BLADE_TEST_CHECK(list_dir(dir.path()) == std::vector<std::string>{"fill"});
}

}  // namespace

int main() {
  return bt::run_tests({
      {"a complete fill, a restart, destroy twice", complete_fill_then_restart_and_destroy},
      {"cancelled mid-way from another thread leaves nothing", cancelled_midway_leaves_nothing},
      {"cancelled after three progress reports leaves nothing", cancelled_after_progress_leaves_nothing},
      {"the deadline gives TIMEOUT and leaves nothing", deadline_gives_timeout_and_leaves_nothing},
      {"an existing file is refused and kept", existing_file_is_kept},
  });
}
