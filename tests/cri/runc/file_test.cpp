// file delete inside a runc container: the file goes from the container's
// rootfs (seen through its init's root and by a process inside), the host's
// file of the same path is left alone, and destroy puts the container's
// back with its bytes and mode.
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "cri_runc_support.hpp"

namespace fs = std::filesystem;
using namespace blade::test;
using namespace blade::test::cri;

namespace {

struct Seen {
  bool exists = false;
  std::string bytes;
  mode_t mode = 0;
  bool operator==(const Seen &) const = default;
};

Seen seen(const fs::path &p) {
  Seen s;
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return s;
  s.exists = true;
  s.mode = st.st_mode;
  s.bytes = read_text(p);
  return s;
}

}  // namespace

TEST_CASE("file delete in a container: gone inside only, back after destroy") {
  const TwinFile twin("cri-file");
  const fs::path &path = twin.path;
  std::ofstream(path) << "host\n";
  RuncOptions o;
  o.files[path.string()] = "inside the container\n";
  RuncContainer ctr(o);
  const fs::path inside = ctr.proc() / "root" / path.relative_path();
  ::chmod(inside.c_str(), 0604);
  const Seen before = seen(inside), host_before = seen(path);
  REQUIRE(before.bytes == "inside the container\n");

  BladedProcess d(cri_options());
  auto c = d.client();
  const auto a = create_in(c, ctr, "file", "delete", {{"filepath", path.string()}});
  REQUIRE_MESSAGE(a.status == 201, a.body.dump());
  MESSAGE(a.body["data"]["result"].dump());
  CHECK_FALSE(fs::exists(inside));
  const auto cat = ctr.exec({"/bin/cat", path.string()});
  CHECK(cat.code != 0);  // a process inside does not find it either
  CHECK(seen(path) == host_before);

  const auto gone = destroy(c, a.uid());
  CHECK_MESSAGE(gone.status == 200, gone.body.dump());
  CHECK(seen(inside) == before);
  CHECK(ctr.exec({"/bin/cat", path.string()}).output == "inside the container\n");
  CHECK(seen(path) == host_before);
  check_nothing_left(d, a.uid());  // no helper, no backup left
}
