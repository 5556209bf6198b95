// disk fill / burn rows on a tmpfs the row mounts (the examples' /home, and
// burn's default /, would be the machine's real disks), measured with statvfs
// and the io counters of bladed's tree; after destroy the tmpfs must be empty
// with its space back, no file of it held open, and the io stopped.
#include "../support/eventually.hpp"
#include "command_words.hpp"
#include "example_row.hpp"
#include "host_probes.hpp"

namespace blade::test::compat {
namespace {

using namespace std::chrono_literals;
using disk::usage;
constexpr std::uint64_t kMiB = 1024 * 1024;

std::string mib(std::uint64_t bytes) { return std::to_string(bytes / kMiB) + " MiB"; }

// `flag` names the example's directory flag (path; file fdleak's directory).
Fixture on_tmpfs(Env &env, const std::string &example, std::uint64_t size_mib,
                 std::function<Outcome(const fs::path &)> effect, std::string substituted = "",
                 const std::string &flag = "path") {
  auto mnt = std::make_shared<ScratchFs>("tmpfs", size_mib);
  const pid_t daemon = env.bladed_pid();
  const auto used_before = usage(mnt->path()).used;
  Fixture fx;
  fx.words = with_flag(command_words(example), flag, mnt->path().string());
  fx.substituted = "--" + flag + " " + mnt->path().string() + ": a " + std::to_string(size_mib) +
                   " MiB tmpfs" + (substituted.empty() ? "" : "; " + substituted);
  fx.effect = [mnt, effect](const std::string &) { return effect(mnt->path()); };
  fx.clean = [mnt, daemon, used_before](const std::string &) {
    std::vector<std::string> left;
    std::set<std::string> open;
    const bool clean = eventually(
        [&] {
          left = disk::entries(mnt->path());
          open = tree_open_files_under(daemon, mnt->path());
          return left.empty() && open.empty() && usage(mnt->path()).used <= used_before;
        },
        5s);
    const auto before = tree_io(daemon);
    std::this_thread::sleep_for(500ms);
    const auto after = tree_io(daemon);
    const auto moved = (after.rchar - before.rchar) + (after.wchar - before.wchar);
    const bool quiet = moved < 2 * kMiB;
    return Outcome{clean && quiet, std::to_string(left.size()) + " entries left, " +
                                       std::to_string(open.size()) + " held open, " +
                                       mib(usage(mnt->path()).used) + " used, " + mib(moved) +
                                       " of io in 0.5 s after destroy"};
  };
  return fx;
}

// The io of bladed's tree over a second: reads and/or writes must move.
std::function<Outcome(const fs::path &)> burns(pid_t daemon, bool read, bool write) {
  return [=](const fs::path &) {
    std::this_thread::sleep_for(500ms);  // the read file is written first
    const auto before = tree_io(daemon);
    std::this_thread::sleep_for(1000ms);
    const auto after = tree_io(daemon);
    const auto r = after.rchar - before.rchar, w = after.wchar - before.wchar;
    const bool ok = (!read || r >= 10 * kMiB) && (!write || w >= 10 * kMiB);
    return Outcome{ok, "bladed read " + mib(r) + " and wrote " + mib(w) + " in 1 s"};
  };
}

Row row(std::string example, std::function<Fixture(Env &, const std::string &)> make,
        std::string target = "disk") {
  return {target, example, [example, make](Env &env) { return make(env, example); }};
}

}  // namespace

std::vector<Row> disk_rows() {
  return {
      row("blade create disk fill --path /home --size 40000",
          [](Env &env, const std::string &e) {
            return on_tmpfs(env, e, 64, [](const fs::path &p) {
              const auto u = usage(p);
              return Outcome{u.available < kMiB, "available " + std::to_string(u.available) +
                                                     " bytes of " + mib(u.size) +
                                                     " (40000 MB asked: fill to full)"};
            });
          }),
      row("blade c disk fill --path /home --percent 80 --retain-handle",
          [](Env &env, const std::string &e) {
            const pid_t daemon = env.bladed_pid();
            return on_tmpfs(env, e, 64, [daemon](const fs::path &p) {
              const auto u = usage(p);
              const auto open = tree_open_files_under(daemon, p);
              const bool ok = u.used_percent() >= 79 && u.used_percent() <= 81 && !open.empty();
              return Outcome{ok, std::to_string(int(u.used_percent())) + "% used, " +
                                     std::to_string(open.size()) + " file(s) held open by bladed"};
            });
          }),
      row("blade c disk fill --path /home --reserve 1024",
          [](Env &env, const std::string &e) {
            return on_tmpfs(env, e, 1088, [](const fs::path &p) {
              const auto u = usage(p);
              const bool ok = u.available >= 1023 * kMiB && u.available <= 1025 * kMiB;
              return Outcome{ok, "available " + mib(u.available) + " (1024 MiB asked)"};
            });
          }),
      row("blade create disk burn --read --path /home",
          [](Env &env, const std::string &e) {
            return on_tmpfs(env, e, 256, burns(env.bladed_pid(), true, false));
          }),
      row("blade create disk burn --write --path /home",
          [](Env &env, const std::string &e) {
            return on_tmpfs(env, e, 256, burns(env.bladed_pid(), false, true));
          }),
      row("blade create disk burn --read --write",
          [](Env &env, const std::string &e) {
            return on_tmpfs(env, e, 256, burns(env.bladed_pid(), true, true),
                            "--path added: the default / is this machine's root filesystem");
          }),
      // file fdleak takes a filesystem's space too: the same tmpfs checks.
      row(
          "blade create file fdleak --percent 50 --directory /tmp --prefix chaos_test_",
          [](Env &env, const std::string &e) {
            const pid_t daemon = env.bladed_pid();
            return on_tmpfs(
                env, e, 64,
                [daemon](const fs::path &p) {
                  const auto u = usage(p);
                  const auto open = tree_open_files_under(daemon, p);
                  const auto names = disk::entries(p);
                  const bool ok = u.used_percent() >= 49 && u.used_percent() <= 51 &&
                                  !open.empty() && names.empty();
                  return Outcome{ok, std::to_string(int(u.used_percent())) + "% used, " +
                                         std::to_string(open.size()) +
                                         " file(s) held open by bladed, " +
                                         std::to_string(names.size()) + " names in the dir"};
                },
                "", "directory");
          },
          "file"),
  };
}

}  // namespace blade::test::compat
