// The ExecutorRouter over a real loaded plugin (c_marker.so) and a real
// external spec file: the executor names, the choice between in-process and
// external per exec mode, and a catalogue that always names the executor
// resolve() (and so create) picks.

#include <doctest/doctest.h>

#include "../support/shared_external_spec.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "engine.hpp"

namespace fs = std::filesystem;
using namespace blade;
using blade::test::Engine;
using blade::test::write_shared_external_spec;

namespace {

// chaosblade-standin-spec-*.yaml is served by chaos_standin (by the file
// name convention); it shares `cmarker touch` with the c_marker plugin and
// has `marker touch` of its own.
struct SharedHome {
  test::TempDir dir{"blade-router-home"};
  SharedHome() {
    write_shared_external_spec(dir.path());
  }
  RouterSettings routing(ExecMode mode) const {
    RouterSettings s;
    s.mode = mode;
    s.external.bin_dir = dir / "bin";
    return s;
  }
};

const CatalogEntry *find(const std::vector<CatalogEntry> &entries, const std::string &target,
                         const std::string &action) {
  for (const auto &e : entries)
    if (e.target.target == target && e.action.name == action) return &e;
  return nullptr;
}

std::size_t count(const std::vector<CatalogEntry> &entries, const std::string &target,
                  const std::string &action) {
  std::size_t n = 0;
  for (const auto &e : entries)
    n += e.target.target == target && e.action.name == action;
  return n;
}

// Each entry's executor is the one resolve() picks for it.
void check_catalogue_matches_resolve(const ExecutorRouter &router) {
  for (const auto &e : router.catalogue()) {
    auto route = router.resolve(e.target.scope, e.target.target, e.action.name);
    CHECK(route.executor->name() == e.executor);
    CHECK(route.action->short_desc == e.action.short_desc);
    CHECK(e.target.actions.empty());
  }
}

}  // namespace

TEST_CASE("executor names: format and parse are inverses; malformed names parse to nothing") {
  CHECK(executor_name(ExecutorKind::InProcess, "os") == "inprocess:os");
  CHECK(executor_name(ExecutorKind::External, "chaos_os") == "external:chaos_os");
  auto in = parse_executor_name("inprocess:c-marker");
  REQUIRE(in);
  CHECK(in->kind == ExecutorKind::InProcess);
  CHECK(in->id == "c-marker");
  auto ex = parse_executor_name("external:chaos_os");
  REQUIRE(ex);
  CHECK(ex->kind == ExecutorKind::External);
  CHECK(ex->id == "chaos_os");
  for (const char *bad : {"", "os", "inprocess:", "external:", "inprocess", "INPROCESS:os",
                          ":os", "extern:os"})
    CHECK_MESSAGE(!parse_executor_name(bad), bad);
}

TEST_CASE("in-process mode: the plugin serves what it declares, the spec file the rest") {
  SharedHome home;
  auto catalog = ExternalCatalog::from_dir(home.dir / "yaml");
  REQUIRE(catalog.size() == 1);
  Engine e({"c_marker.so"}, test::fast_settings(), {}, {}, {}, &catalog,
           home.routing(ExecMode::InProcess));
  const ExecutorRouter &router = *e.router;

  auto shared = router.resolve("host", "cmarker", "t");  // the plugin's alias
  CHECK(shared.executor->name() == "inprocess:c-marker");
  CHECK(shared.action->name == "touch");
  CHECK(router.resolve("host", "marker", "t").executor->name() == "external:chaos_standin");
  CHECK_THROWS_AS(router.resolve("host", "nothing", "touch"), Error);
  CHECK_THROWS_AS(router.resolve("container", "cmarker", "touch"), Error);

  auto entries = router.catalogue();
  CHECK(entries.size() == 2);
  REQUIRE(find(entries, "cmarker", "touch"));
  CHECK(count(entries, "cmarker", "touch") == 1);  // the shadowed external one is not listed
  CHECK(find(entries, "cmarker", "touch")->executor == "inprocess:c-marker");
  REQUIRE(find(entries, "marker", "touch"));
  CHECK(find(entries, "marker", "touch")->executor == "external:chaos_standin");
  check_catalogue_matches_resolve(router);

  // The JSON of GET /v1/specs: the same executor names.
  auto json = catalogue_json(entries);
  REQUIRE(json.size() == 2);
  CHECK(json[0]["executor"] == "inprocess:c-marker");
  CHECK(json[0]["aliases"] == nlohmann::json::array({"t"}));
}

TEST_CASE("external mode: an action both serve goes to the binary, in resolve and catalogue") {
  SharedHome home;
  auto catalog = ExternalCatalog::from_dir(home.dir / "yaml");
  Engine e({"c_marker.so"}, test::fast_settings(), {}, {}, {}, &catalog,
           home.routing(ExecMode::External));
  const ExecutorRouter &router = *e.router;

  CHECK(router.resolve("host", "cmarker", "touch").executor->name() == "external:chaos_standin");
  // The external spec has no alias `t` for cmarker: the plugin still serves it.
  CHECK(router.resolve("host", "cmarker", "t").executor->name() == "inprocess:c-marker");

  auto entries = router.catalogue();
  REQUIRE(find(entries, "cmarker", "touch"));
  CHECK(find(entries, "cmarker", "touch")->executor == "external:chaos_standin");
  CHECK(find(entries, "cmarker", "touch")->action.short_desc == "external touch");
  CHECK(find(entries, "marker", "touch")->executor == "external:chaos_standin");
  check_catalogue_matches_resolve(router);

  // Create stores the name the catalogue showed.
  CreateRequest r;
  r.target = "cmarker";
  r.action = "touch";
  r.flags = {{"path", (e.dir / "m").string()}};
  r.dry_run = true;
  CHECK(e.service->create(r).experiment.executor == "external:chaos_standin");
}

TEST_CASE("executor_for: by the stored name; a plugin gone or no external fallback gives none") {
  SharedHome home;
  auto catalog = ExternalCatalog::from_dir(home.dir / "yaml");
  Engine e({"c_marker.so"}, test::fast_settings(), {}, {}, {}, &catalog,
           home.routing(ExecMode::InProcess));
  Experiment x;
  x.target = "cmarker";
  x.action = "touch";
  x.executor = "inprocess:c-marker";
  REQUIRE(e.router->executor_for(x));
  CHECK(e.router->executor_for(x)->name() == "inprocess:c-marker");
  x.executor = "external:chaos_standin";  // not what resolve picks now; still reachable
  REQUIRE(e.router->executor_for(x));
  CHECK(e.router->executor_for(x)->name() == "external:chaos_standin");
  x.executor = "inprocess:gone";
  CHECK_FALSE(e.router->executor_for(x));
  x.executor = "garbage";
  CHECK_FALSE(e.router->executor_for(x));

  ExecutorRouter no_external(e.registry);
  x.executor = "external:chaos_standin";
  CHECK_FALSE(no_external.executor_for(x));
  CHECK(no_external.catalogue().size() == 1);
}
