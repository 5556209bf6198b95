// The external fallback through the service: a (target, action) that no
// plugin serves but a chaosblade-exec spec file does runs the binary (here
// the stand-in), and its faults roll back like any other.
#include <signal.h>

#include <fstream>

#include <doctest/doctest.h>

#include "engine.hpp"

namespace fs = std::filesystem;
using namespace blade;
using blade::test::Engine;
using blade::test::eventually;

namespace {

// A ChaosBlade home: bin/chaos_standin and yaml/chaosblade-standin-spec-*.yaml.
struct Home {
  test::TempDir dir{"blade-cbhome"};
  Home() {
    fs::create_directories(dir / "bin");
    fs::create_directories(dir / "yaml");
    fs::copy_file(fs::path(BLADE_STANDIN_DIR) / "chaos_standin", dir / "bin" / "chaos_standin");
    fs::copy_file(BLADE_STANDIN_SPEC, dir / "yaml" / fs::path(BLADE_STANDIN_SPEC).filename());
  }
  RouterSettings routing(ExecMode mode = ExecMode::InProcess) const {
    RouterSettings s;
    s.mode = mode;
    s.external.bin_dir = dir / "bin";
    return s;
  }
};

bool alive(int pid) {
  return ::kill(pid, 0) == 0;
}

}  // namespace

TEST_CASE("what no plugin serves runs through the chaosblade-exec binary and rolls back") {
  Home home;
  auto catalog = ExternalCatalog::from_dir(home.dir / "yaml");
  Engine e({"c_marker.so"}, test::fast_settings(), {}, {}, {}, &catalog, home.routing());
  fs::path marker = e.dir / "ext-marker";
  CreateRequest r;
  r.target = "marker";
  r.action = "t";
  r.flags = {{"path", marker.string()}};
  auto x = e.service->create(r).experiment;
  CHECK(x.status == ExperimentStatus::Running);
  CHECK(x.executor == "external:chaos_standin");
  CHECK(x.action == "touch");
  CHECK(fs::exists(marker));
  CHECK(e.service->destroy(x.uid).experiment.status == ExperimentStatus::Destroyed);
  CHECK_FALSE(fs::exists(marker));

  // Plugins still serve their own targets.
  CreateRequest c;
  c.target = "cmarker";
  c.action = "touch";
  c.flags = {{"path", (e.dir / "c").string()}};
  auto y = e.service->create(c).experiment;
  CHECK(y.executor == "inprocess:c-marker");
  e.service->destroy(y.uid);
}

TEST_CASE("a hanging external action keeps its process until destroy, which ends it") {
  Home home;
  auto catalog = ExternalCatalog::from_dir(home.dir / "yaml");
  Engine e({}, test::fast_settings(), {}, {}, {}, &catalog, home.routing(ExecMode::External));
  fs::path marker = e.dir / "hang-marker";
  CreateRequest r;
  r.target = "marker";
  r.action = "hang";
  r.flags = {{"path", marker.string()}};
  auto x = e.service->create(r).experiment;
  REQUIRE(x.status == ExperimentStatus::Running);
  auto restore = nlohmann::json::parse(x.restore_json);
  REQUIRE(restore.contains("pid"));
  int pid = restore["pid"];
  CHECK(alive(pid));
  CHECK(eventually([&] { return fs::exists(marker); }));
  CHECK(e.service->destroy(x.uid).experiment.status == ExperimentStatus::Destroyed);
  CHECK(eventually([&] { return !alive(pid); }, std::chrono::seconds(5)));
  CHECK_FALSE(fs::exists(marker));
}

TEST_CASE("external failures become failed experiments with the binary's reason") {
  Home home;
  auto catalog = ExternalCatalog::from_dir(home.dir / "yaml");
  Engine e({}, test::fast_settings(), {}, {}, {}, &catalog, home.routing());
  CreateRequest r;
  r.target = "marker";
  r.action = "fail";
  auto failed = e.service->create(r);
  CHECK(failed.experiment.status == ExperimentStatus::Failed);
  CHECK(failed.failure == ErrorCode::FailedPrecondition);
  CHECK_FALSE(failed.experiment.error.empty());
  // A binary refusing its parameters (47000) did nothing: refused as the
  // spec check refuses, and nothing is stored.
  r.action = "error";
  const auto before = e.service->list({}).total;
  try {
    e.service->create(r);
    FAIL("the binary's refusal was not an error");
  } catch (const Error &err) {
    CHECK(err.code() == ErrorCode::InvalidArgument);
    CHECK(std::string(err.what()).find("47000") != std::string::npos);
  }
  CHECK(e.service->list({}).total == before);
}
