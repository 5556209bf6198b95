// "Run this inside a real Linux kernel of its own": Debian's user-mode Linux
// (/usr/bin/linux, package user-mode-linux) booted as an ordinary process on
// the host's root fs (hostfs), for tests whose fault would disturb the test
// machine itself: its wall clock, its PID 1, its qdiscs.
//
// The guest never writes to the host: its init (a shell script in the job
// dir) remounts the hostfs root read-only and pivots into an overlay whose
// upper layer is a tmpfs, so /etc, /var, /tmp and everything else are
// writable in the guest and thrown away at power-off. /tmp is the overlay's
// too, not a fresh tmpfs: a checkout under /tmp (a CI clone there) must stay
// visible, as its binaries run in the guest. Only the job dir is
// shared writable, mounted at /blade-uml: the command's output and exit code
// come back there. The built binaries are under the host's root, so the
// guest runs them as they are (a test binary re-running itself in the
// guest, bladed, the blade CLI).
//
// Two ways to boot:
//  - plain: the init script runs the command itself (PID 1 is the shell);
//  - systemd: Debian's systemd boots as PID 1 into a target of our own
//    (basic.target plus one oneshot service that runs the command), with
//    D-Bus; the slow units of a full boot are masked.
// `modules` are loaded with kmod from /usr/lib/uml/modules/<version> (UML's
// own builds), e.g. sch_netem; overlay is always loaded (the guest's root).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace blade::test {

struct UmlOptions {
  bool systemd = false;              // boot systemd as PID 1
  std::vector<std::string> modules;  // kernel modules to load first
  std::vector<std::string> env;      // NAME=value for the command
  std::string mem = "512M";
  std::chrono::seconds timeout{180};  // the whole boot, command and power-off
};

struct UmlResult {
  // Empty when the guest ran the command to its end; else why not (no
  // /usr/bin/linux, a boot that never reached the command, a timeout).
  std::string failure;
  int exit_code = -1;   // the command's
  std::string output;   // its stdout and stderr
  std::string console;  // the kernel's (and systemd's) console, for diagnosis
  double seconds = 0;   // wall time of the whole run
  bool ok() const { return failure.empty() && exit_code == 0; }
  // The guest doctest's "test cases: ..." line, when it printed one.
  std::string summary() const {
    const auto at = output.find("test cases:");
    return at == std::string::npos ? "" : output.substr(at, output.find('\n', at) - at);
  }
  // Everything a failed check should show.
  std::string report() const {
    std::string tail = console.size() > 6000 ? console.substr(console.size() - 6000) : console;
    return "uml: " + (failure.empty() ? "command exited " + std::to_string(exit_code) : failure) +
           "\n--- output ---\n" + output + "\n--- console (tail) ---\n" + tail;
  }
};

namespace uml_detail {

inline std::string quoted(const std::string &s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline std::string slurp(const std::filesystem::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string kernel_version() {
  // The one version UML ships modules for (the package holds one kernel).
  std::error_code ec;
  for (const auto &e : std::filesystem::directory_iterator("/usr/lib/uml/modules", ec))
    return e.path().filename().string();
  return "";
}

// The command, as the guest runs it: env, output and exit code to the job dir.
inline std::string job_script(const std::vector<std::string> &argv, const UmlOptions &o) {
  std::string s = "#!/bin/sh\n# the command, run inside the guest\n";
  s += "export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp\n";
  for (const auto &e : o.env)
    s += "export " + quoted(e) + "\n";
  s += "cd /tmp\n";
  std::string cmd;
  for (const auto &a : argv)
    cmd += quoted(a) + " ";
  s += cmd + "> /blade-uml/output 2>&1 < /dev/null\n";
  s += "echo $? > /blade-uml/rc.tmp && mv /blade-uml/rc.tmp /blade-uml/rc\nsync\n";
  return s;
}

// PID 1 of the guest: the read-only root, the overlay, then the command or
// systemd.
inline std::string init_script(const std::filesystem::path &job, const UmlOptions &o) {
  const std::string j = quoted(job.string());
  std::string s = R"(#!/bin/sh
# PID 1 of a user-mode Linux guest (tests/support/uml_vm.hpp)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "blade-uml: $*"; }
mount -t proc proc /proc || say "cannot mount /proc"
mount -t tmpfs -o mode=0755 tmpfs /run || say "cannot mount /run"
mount -o remount,ro / || { say "cannot make the host root read-only; stopping"; poweroff -f; }
mkdir -p /run/up /run/work /run/newroot /run/mods/lib/modules
mount --bind /usr/lib/uml/modules /run/mods/lib/modules
for m in overlay )";
  for (const auto &m : o.modules)
    s += quoted(m) + " ";
  s += R"(; do modprobe -d /run/mods "$m" || say "modprobe $m failed"; done
umount /run/mods/lib/modules
mount -t overlay overlay -o lowerdir=/,upperdir=/run/up,workdir=/run/work /run/newroot ||
  { say "no overlay root; stopping"; poweroff -f; }
mkdir -p /run/newroot/blade-uml /run/newroot/oldroot
mount -t hostfs -o )" +
       j + R"( none /run/newroot/blade-uml || { say "cannot mount the job dir"; poweroff -f; }
echo booted > /run/newroot/blade-uml/booted
)";
  if (!o.systemd) {
    s += R"(umount /proc
cd /run/newroot
pivot_root . oldroot || { say "pivot_root failed"; poweroff -f; }
exec chroot . /bin/sh -c '
  mount -t proc proc /proc; mount -t sysfs sys /sys
  mount -t tmpfs tmpfs /run; mkdir -p /dev/shm; mount -t tmpfs tmpfs /dev/shm
  ip link set lo up 2>/dev/null || ifconfig lo up
  /bin/sh /blade-uml/job.sh; sync; poweroff -f'
)";
    return s;
  }
  s += R"(etc=/run/newroot/etc/systemd/system
cat > $etc/blade-uml.target <<'EOF'
[Unit]
Description=blade uml test
Requires=basic.target blade-uml.service
After=basic.target
EOF
cat > $etc/blade-uml.service <<'EOF'
[Unit]
Description=blade uml test command
After=basic.target dbus.socket
[Service]
Type=oneshot
ExecStart=/bin/sh /blade-uml/job.sh
ExecStopPost=/bin/sh -c 'sync; systemctl poweroff -ff'
EOF
# Slow on hostfs and of no use to a test (seconds each).
for u in systemd-tmpfiles-setup.service systemd-tmpfiles-clean.timer \
    systemd-journal-flush.service apt-daily.timer apt-daily-upgrade.timer man-db.timer \
    e2scrub_all.timer dpkg-db-backup.timer; do ln -sf /dev/null $etc/$u; done
umount /proc
cd /run/newroot
pivot_root . oldroot || { say "pivot_root failed"; poweroff -f; }
exec chroot . /lib/systemd/systemd systemd.unit=blade-uml.target
)";
  return s;
}

}  // namespace uml_detail

// The UML kernel: a process group of its own (UML runs the guest's address
// spaces as child processes), all of it killed when the object goes.
class UmlProcess {
 public:
  UmlProcess(const std::vector<std::string> &argv, const std::string &log) {
    std::vector<char *> args;
    for (const auto &a : argv)
      args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int in = ::open("/dev/null", O_RDONLY);
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0) ::_exit(126);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (pid_ > 0) ::setpgid(pid_, pid_);
  }
  UmlProcess(const UmlProcess &) = delete;
  UmlProcess &operator=(const UmlProcess &) = delete;
  ~UmlProcess() { kill_all(); }

  // True when the kernel exited within `timeout`.
  bool wait(std::chrono::seconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0 && !reaped_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_)
        reaped_ = true;
      else if (std::chrono::steady_clock::now() > end)
        return false;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pid_ > 0;
  }
  void kill_all() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    if (!reaped_) {
      int st = 0;
      ::waitpid(pid_, &st, 0);
      reaped_ = true;
    }
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Boots a guest, runs `argv` in it (absolute paths), powers it off.
inline UmlResult run_in_uml(const std::vector<std::string> &argv, const UmlOptions &o = {}) {
  namespace fs = std::filesystem;
  using namespace uml_detail;
  UmlResult r;
  const auto start = std::chrono::steady_clock::now();
  if (::access("/usr/bin/linux", X_OK) != 0) {
    r.failure =
        "cannot start user-mode Linux: /usr/bin/linux is missing (apt-get install "
        "user-mode-linux kmod; tools/dev/install-deps.sh installs them)";
    return r;
  }
  if (kernel_version().empty()) {
    r.failure = "cannot start user-mode Linux: no modules under /usr/lib/uml/modules";
    return r;
  }
  TempDir job("blade-uml");
  ::chmod(job.path().c_str(), 0755);
  {
    std::ofstream(job / "init.sh") << init_script(job.path(), o);
    std::ofstream(job / "job.sh") << job_script(argv, o);
  }
  fs::permissions(job / "init.sh", fs::perms(0755));
  const std::string console = (job / "console.log").string();
  // umid and uml_dir keep UML's pid file and mconsole socket in the job dir
  // (not ~/.uml); stdin is /dev/null, the console goes to the log.
  const std::vector<std::string> args = {"/usr/bin/linux",
                                         "mem=" + o.mem,
                                         "rootfstype=hostfs",
                                         "rootflags=/",
                                         "rw",
                                         "init=" + (job / "init.sh").string(),
                                         "con=null",
                                         "con0=fd:0,fd:1",
                                         "umid=blade-test",
                                         "uml_dir=" + job.path().string()};
  UmlProcess vm(args, console);
  if (!vm.wait(o.timeout))
    r.failure =
        "user-mode Linux did not power off within " + std::to_string(o.timeout.count()) + " s";
  vm.kill_all();
  r.console = slurp(console);
  r.output = slurp(job / "output");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!fs::exists(job / "booted")) {
    if (r.failure.empty()) r.failure = "user-mode Linux never reached its init script";
  } else if (!fs::exists(job / "rc")) {
    if (r.failure.empty()) r.failure = "the guest powered off before the command finished";
  } else {
    r.exit_code = std::stoi(slurp(job / "rc"));
  }
  return r;
}

// Runs this test binary's own cases matching `filter` inside a guest: they
// are marked doctest::skip(), so the host's run only boots the guest, and
// --no-skip runs them there. Passed when the guest's doctest ran at least
// one case and none failed.
inline UmlResult run_guest_cases(const std::string &filter, const UmlOptions &o = {}) {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  UmlResult r = run_in_uml({self, "--test-case=" + filter, "--no-skip=true"}, o);
  if (r.failure.empty() && r.exit_code == 0 &&
      (r.output.find("| 0 failed") == std::string::npos ||
       r.output.find("test cases: 0 |") != std::string::npos))
    r.failure = "no guest case named '" + filter + "' ran";
  return r;
}

}  // namespace blade::test
