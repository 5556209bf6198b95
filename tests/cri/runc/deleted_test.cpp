// Destroy after the container was deleted: 200, the result says the
// container is deleted, and nothing of the experiment is left (no helper,
// no inner state for the container). Deleting a container while a cpu load
// runs in its cgroup works too (the helper does not pin the cgroup).
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "cri_runc_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::cri;

namespace {

// The destroy's answer: 200, and the experiment's record says the
// container was deleted: the destroy's report (destroy_result) when the
// destroy found it gone, or the error of an experiment that had already
// ended with it.
void check_deleted_answer(const Answer &gone) {
  INFO(gone.body.dump());
  CHECK(gone.status == 200);
  const auto &x = gone.body["data"];
  const bool reported = x.contains("destroy_result") && x["destroy_result"].is_object() &&
                        x["destroy_result"].value("container", "") == "deleted";
  const bool ended_with_it = x.value("status", "") == "failed" &&
                             x.value("error", "").find("deleted") != std::string::npos;
  CHECK((reported || ended_with_it));
}

}  // namespace

TEST_CASE("destroy after the container was deleted is 200 and says so") {
  TwinContainer box("cri-deleted");
  RuncContainer &ctr = box.ctr;
  const fs::path &path = box.twin.path;
  BladedProcess d(cri_options());
  auto c = d.client();

  SUBCASE("file delete (an effect in the rootfs)") {
    const auto a = create_in(c, ctr, "file", "delete", {{"filepath", path.string()}});
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    const auto cgroups = ctr.cgroup_paths();
    ctr.remove();
    CHECK_FALSE(ctr.exists());
    for (const auto &p : cgroups)
      CHECK_MESSAGE(!fs::exists(p), p);
    check_deleted_answer(destroy(c, a.uid()));
    check_nothing_left(d, ctr.id());
    CHECK(destroy(c, a.uid()).status == 200);  // twice is still success
  }
  SUBCASE("cpu fullload (the helper in the container's cgroup)") {
    const auto a = create_in(c, ctr, "cpu", "fullload", {{"cpu-percent", "50"}});
    REQUIRE_MESSAGE(a.status == 201, a.body.dump());
    const auto cgroups = ctr.cgroup_paths();
    ctr.remove();
    CHECK_FALSE(ctr.exists());
    // runc could remove the cgroups: nothing of the load held them.
    for (const auto &p : cgroups)
      CHECK_MESSAGE(eventually([&] { return !fs::exists(p); }), p);
    check_deleted_answer(destroy(c, a.uid()));
    check_nothing_left(d, ctr.id());
  }
  CHECK_FALSE(has_blade_table(host_nft_tables()));
}
