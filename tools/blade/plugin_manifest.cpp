#include "plugin_manifest.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "blade/core/model/bounded_json.hpp"
#include "cli_error.hpp"

namespace blade::cli {
namespace {

namespace fs = std::filesystem;

std::string errno_text(const std::string &what, const fs::path &path) {
  return fmt::format("{} {}: {}", what, path.string(), std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

nlohmann::json to_json(const ManifestEntry &e) {
  return {{"name", e.name},
          {"version", e.version},
          {"abi", e.abi},
          {"file", e.file},
          {"sha256", e.sha256},
          {"size", e.size},
          {"installed_at", e.installed_at},
          {"source", e.source},
          {"targets", e.targets}};
}

Manifest Manifest::load(const fs::path &dir) {
  Manifest m;
  const fs::path file = dir / kManifestName;
  std::ifstream in(file);
  if (!in) return m;
  std::stringstream text;
  text << in.rdbuf();
  auto j = parse_bounded_json(text.str()).value;
  if (j.is_discarded() || !j.is_object() || !j.contains("plugins") || !j["plugins"].is_array())
    throw Failure(fmt::format("{}: not a blade plugin manifest", file.string()));
  for (const auto &p : j["plugins"]) {
    ManifestEntry e;
    e.name = p.value("name", "");
    e.version = p.value("version", "");
    e.abi = p.value("abi", "");
    e.file = p.value("file", "");
    e.sha256 = p.value("sha256", "");
    e.size = p.value("size", std::uintmax_t{0});
    e.installed_at = p.value("installed_at", "");
    e.source = p.value("source", "");
    e.targets = p.value("targets", std::vector<std::string>{});
    if (!e.name.empty()) m.plugins[e.name] = e;
  }
  return m;
}

void Manifest::save(const fs::path &dir) const {
  nlohmann::json items = nlohmann::json::array();
  for (const auto &[name, e] : plugins)
    items.push_back(to_json(e));
  nlohmann::json doc = {{"version", 1}, {"plugins", items}};
  write_file_atomically(dir, kManifestName, doc.dump(2) + "\n", 0644);
}

std::string sha256_hex(std::string_view bytes) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i)
    hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

DirLock::DirLock(const fs::path &dir) {
  const fs::path file = dir / ".blade-manifest.lock";
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Failure(errno_text("cannot open", file));
  if (::flock(fd_, LOCK_EX) != 0) throw Failure(errno_text("cannot lock", file));
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);
}

void fsync_dir(const fs::path &dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

void write_file_atomically(const fs::path &dir, const std::string &name, const std::string &bytes,
                           unsigned mode) {
  // A dot name without the .so suffix: bladed's discovery never sees it.
  const fs::path tmp = dir / fmt::format(".{}.tmp-{}", name, ::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw Failure(errno_text("cannot create", tmp));
  auto fail = [&](const std::string &what) {
    const std::string text = errno_text(what, tmp);
    ::unlink(tmp.c_str());
    throw Failure(text);
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("cannot fsync");
  if (::fchmod(fd.get(), mode) != 0) fail("cannot chmod");
  // bladed refuses plugin files owned by anyone but root or its own user.
  if (::geteuid() == 0 && ::fchown(fd.get(), 0, 0) != 0) fail("cannot chown");
  if (::close(fd.release()) != 0) fail("cannot close");
  if (::rename(tmp.c_str(), (dir / name).c_str()) != 0) fail("cannot rename");
  fsync_dir(dir);
}

}  // namespace blade::cli
