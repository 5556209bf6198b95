// "No fault left behind" at the windows a crash or a failing store opens:
// a kill between the fault and the answer (the write-ahead record), a
// create failing after its first step, SIGTERM during a create, a plugin
// that segfaults in destroy (quarantine, no crash loop), and a store that
// cannot write (a full disk) under destroy and create.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <future>
#include <optional>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "../server/bladed_process.hpp"
#include "../support/eventually.hpp"
#include "../support/file_text.hpp"
#include "../support/scratch_fs.hpp"
#include "blade/core/store/store.hpp"
#include "engine.hpp"

namespace fs = std::filesystem;
using namespace blade;
using namespace std::chrono_literals;
using blade::test::BladedProcess;
using blade::test::eventually;

namespace {

nlohmann::json marker(const fs::path &path, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json flags = {{"path", path.string()}};
  flags.update(extra);
  return {{"target", "cmarker"}, {"action", "touch"}, {"flags", flags}};
}

nlohmann::json get_experiment(BladedProcess &b, const std::string &uid) {
  auto c = b.client();
  auto r = c.Get(("/v1/experiments/" + uid).c_str(), blade::test::auth());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return nlohmann::json::parse(r->body)["data"];
}

// An async create whose marker file exists and whose create has not
// returned (it hangs for `hang_ms`); its uid.
std::string start_hanging_create(BladedProcess &b, const fs::path &file,
                                 const std::string &hang_ms) {
  auto c = b.client();
  auto body = marker(file, {{"hang-ms", hang_ms}});
  body["async"] = true;
  auto r = blade::test::post_json(c, "/v1/experiments", body);
  REQUIRE(r);
  REQUIRE(r->status == 202);
  const std::string uid = nlohmann::json::parse(r->body)["data"]["uid"];
  REQUIRE(eventually([&] { return fs::exists(file); }));
  return uid;
}

// Takes every free byte of the filesystem holding `dir` while it lives.
class Filler {
 public:
  explicit Filler(const fs::path &dir) : path_(dir / "filler") {
    std::FILE *f = std::fopen(path_.c_str(), "wb");
    REQUIRE(f);
    std::setvbuf(f, nullptr, _IONBF, 0);
    static const std::string block(64 * 1024, '\0');
    // Large pieces first, then single bytes, until the filesystem says no.
    for (std::size_t piece : {block.size(), std::size_t{4096}, std::size_t{1}})
      while (std::fwrite(block.data(), 1, piece, f) == piece) {
      }
    std::fclose(f);
  }
  ~Filler() { fs::remove(path_); }
  Filler(const Filler &) = delete;
  Filler &operator=(const Filler &) = delete;

 private:
  fs::path path_;
};

CreateRequest marker_request(const fs::path &path, FlagValues extra = {}) {
  CreateRequest r;
  r.target = "cmarker";
  r.action = "touch";
  r.flags = {{"path", path.string()}};
  for (auto &[k, v] : extra)
    r.flags[k] = v;
  return r;
}

}  // namespace

TEST_CASE("a kill between the fault and the answer: the record written ahead lets the next start "
          "undo it") {
  BladedProcess b;
  const fs::path file = b.dir / "marker";
  // The fault is in place while create has not returned.
  const std::string uid = start_hanging_create(b, file, "20000");
  b.crash();
  {
    // What the store holds is what the plugin recorded before its step.
    Store store(b.dir / "state" / "blade.db");
    auto row = store.get_experiment(uid);
    REQUIRE(row);
    CHECK(row->status == ExperimentStatus::Created);
    auto record = nlohmann::json::parse(row->restore_json, nullptr, false);
    REQUIRE(record.is_object());
    CHECK(record.value("path", "") == file.string());
  }
  CHECK(fs::exists(file));  // left by the crash
  b.restart();
  CHECK_FALSE(fs::exists(file));
  CHECK(get_experiment(b, uid)["status"] == "destroyed");
}

TEST_CASE("a create that fails after its first step is undone from the record it wrote ahead") {
  BladedProcess b;
  const fs::path file = b.dir / "marker";
  auto c = b.client();
  auto r = blade::test::post_json(c, "/v1/experiments", marker(file, {{"fail-after-write", "true"}}));
  REQUIRE(r);
  auto answer = nlohmann::json::parse(r->body);
  CHECK(r->status == 500);
  CHECK(answer["data"]["status"] == "failed");
  CHECK_FALSE(fs::exists(file));
}

TEST_CASE("SIGTERM during a create rolls that create back too") {
  BladedProcess b;
  const fs::path file = b.dir / "marker";
  // The fault is in place while create has not returned.
  const std::string uid = start_hanging_create(b, file, "1500");
  b.process->signal(SIGTERM);
  CHECK(b.process->exit_code(std::chrono::seconds(15)) == 0);
  CHECK_FALSE(fs::exists(file));
  Store store(b.dir / "state" / "blade.db");
  CHECK(store.get_experiment(uid)->status == ExperimentStatus::Destroyed);
}

TEST_CASE("a plugin that segfaults in destroy: named on the way down, quarantined at the next "
          "start, the rest recovered, no crash loop") {
  BladedProcess b;
  const fs::path bad_file = b.dir / "bad", good_file = b.dir / "good";
  auto c = b.client();
  auto bad = blade::test::post_json(c, "/v1/experiments",
                                    marker(bad_file, {{"crash-in-destroy", "true"}}));
  auto good = blade::test::post_json(c, "/v1/experiments", marker(good_file));
  REQUIRE(bad);
  REQUIRE(good);
  REQUIRE(bad->status == 201);
  REQUIRE(good->status == 201);
  const std::string bad_uid = nlohmann::json::parse(bad->body)["data"]["uid"];
  const std::string good_uid = nlohmann::json::parse(good->body)["data"]["uid"];

  auto killed = c.Delete(("/v1/experiments/" + bad_uid).c_str(), blade::test::auth());
  CHECK_FALSE(killed);  // the daemon died under the request
  CHECK(b.process->exit_code(std::chrono::seconds(10)) == -SIGSEGV);
  const std::string log = blade::test::read_text(b.log_file());
  CHECK(log.find("bladed: fatal signal 11 inside plugin c-marker (destroy of experiment " +
                 bad_uid + ")") != std::string::npos);

  b.restart();  // would die again here without the quarantine
  auto q = get_experiment(b, bad_uid);
  CHECK(q["status"] == "destroying");
  CHECK(q.value("quarantined", false));
  CHECK(q["error"].get<std::string>().find("quarantined") != std::string::npos);
  CHECK(get_experiment(b, good_uid)["status"] == "destroyed");
  CHECK_FALSE(fs::exists(good_file));

  auto client = b.client();
  auto metrics = client.Get("/metrics", blade::test::auth());
  REQUIRE(metrics);
  CHECK(metrics->body.find("blade_experiments_quarantined 1") != std::string::npos);

  // No automatic or plain call reaches the plugin again; force ends it.
  auto plain = client.Delete(("/v1/experiments/" + bad_uid).c_str(), blade::test::auth());
  REQUIRE(plain);
  CHECK(plain->status == 422);
  CHECK(fs::exists(bad_file));
  auto forced =
      client.Delete(("/v1/experiments/" + bad_uid + "?force=true").c_str(), blade::test::auth());
  REQUIRE(forced);
  CHECK(forced->status == 200);
  CHECK(get_experiment(b, bad_uid)["status"] == "destroyed");
  CHECK(b.process->exit_code(0ms) == std::nullopt);  // still alive
}

// The store holds its file's lock from open to close (locking_mode
// EXCLUSIVE), so no other process can lock it under a running daemon; a
// full disk is what makes its writes fail now (the create under it: the
// next test case).
TEST_CASE("a store that cannot write: a destroy still removes its fault") {
  blade::test::ScratchFs small("tmpfs", 8);
  const fs::path db = small / "blade.db";
  { Store prepare(db); }
  blade::test::Engine engine({"c_marker.so"}, blade::test::fast_settings(), {}, {}, db);
  const fs::path file = engine.dir / "marker";  // not on the small filesystem
  auto ok = engine.service->create(marker_request(file));
  REQUIRE(ok.experiment.status == ExperimentStatus::Running);
  REQUIRE(fs::exists(file));
  {
    Filler full(small.path());
    auto start = std::chrono::steady_clock::now();
    auto destroyed = engine.service->destroy(ok.experiment.uid);
    CHECK(destroyed.failure == ErrorCode::Unavailable);
    CHECK(std::chrono::steady_clock::now() - start < 15s);
    CHECK_FALSE(fs::exists(file));  // the fault came off first
  }
  CHECK(eventually([&] {
    return engine.service->get(ok.experiment.uid).status == ExperimentStatus::Destroyed;
  }));
}

TEST_CASE("a full disk under the store: a create is undone at once and answers the store's error") {
  blade::test::ScratchFs small("tmpfs", 8);
  const fs::path db = small / "blade.db";
  // Made and closed first: the engine's WAL then starts empty, and each
  // write of the create appends to it, so a full disk fails the write.
  { Store prepare(db); }
  blade::test::Engine engine({"c_marker.so"}, blade::test::fast_settings(), {}, {}, db);
  const fs::path file = engine.dir / "marker";  // not on the small filesystem
  // The disk is filled after the plugin's step and before the create's
  // last write (100 ms later; the store empties its WAL, freeing room, only
  // after a quiet second). A busy machine can miss that window: the create then succeeds,
  // is destroyed, and the trial is run again.
  std::optional<Error> refused;
  std::string uid;
  for (int attempt = 0; attempt < 5 && !refused; ++attempt) {
    auto created = std::async(std::launch::async, [&] {
      return engine.service->create(marker_request(file, {{"hang-ms", "100"}}));
    });
    REQUIRE(eventually([&] { return fs::exists(file); }, 5s));
    std::optional<Filler> full;
    full.emplace(small.path());
    try {
      auto late = created.get();
      full.reset();
      MESSAGE("the disk filled too late (attempt " << attempt + 1 << "); again");
      engine.service->destroy(late.experiment.uid);
      REQUIRE_FALSE(fs::exists(file));
      continue;
    } catch (const Error &e) {
      refused = e;
    }
    CHECK_FALSE(fs::exists(file));  // undone before the answer, disk still full
    full.reset();
  }
  REQUIRE(refused);
  CHECK(std::string(refused->what()).find("rolled back") != std::string::npos);
  CHECK(std::string(refused->what()).find("blade.db") != std::string::npos);
  // Once the disk has room again the row is written as failed.
  auto failed_rows = [&] {
    ExperimentFilter f;
    f.status = ExperimentStatus::Failed;
    return engine.service->list(f).items.size();
  };
  CHECK(eventually([&] { return failed_rows() == 1; }));
}
