// An OCI image of a busybox rootfs, built without a network or a registry:
// tests/cri/containerd/make_oci_image.py writes the layer (busybox-static
// and a few applet links, a victim file for the file faults), the
// image config, the manifest, index.json (whose ref.name annotation names
// the image) and oci-layout, with their digests and sizes, into one tarball
// for `ctr image import`. Python's tarfile and hashlib do the tar and the
// sha256s; every entry has mtime 0 and owner root, so the tarball is the
// same bytes on every run.
#pragma once

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "child_process.hpp"
#include "file_text.hpp"

namespace blade::test {

// The file the image holds for the file faults to act on, inside the
// container (the script is told it).
inline constexpr const char *kOciVictimPath = "/srv/blade-victim.txt";

// Writes the busybox image named `ref` (e.g. "blade.test/busybox:1") to
// `tar`. Throws, with the script's output, when it cannot.
inline void build_busybox_oci_image(const std::filesystem::path &tar, const std::string &ref) {
  if (std::string(BLADE_BUSYBOX_PATH).empty())
    throw std::runtime_error(
        "busybox not found at build time: install the Debian package busybox-static "
        "(tools/dev/install-deps.sh) and reconfigure");
  const std::filesystem::path log = tar.string() + ".log";
  ChildProcess p({BLADE_PYTHON_PATH, BLADE_OCI_IMAGE_SCRIPT, BLADE_BUSYBOX_PATH, tar.string(), ref,
                  kOciVictimPath},
                 {}, log.string());
  const auto code = p.exit_code(std::chrono::seconds(30));
  if (code != 0)
    throw std::runtime_error("make_oci_image.py failed (" +
                             (code ? std::to_string(*code) : std::string("timed out")) +
                             "): " + read_text(log));
}

}  // namespace blade::test
