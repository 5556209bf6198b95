// A stand-in for a chaosblade-exec binary (chaos_os), written for the tests
// of the external fallback. It follows the same contract:
//   chaos_standin create|destroy <target> <action> --uid=<uid> --k=v ...
// prints one Response JSON on stdout and exits 0. Its only target is
// `marker`; each action exercises one path of the caller (see usage()).
// If CHAOS_STANDIN_LOG is set, every argv it receives is appended to that
// file as one line, the arguments separated by \x1f, so tests see the exact
// argv.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>

namespace {

constexpr char kUsage[] =
    "usage: chaos_standin create|destroy marker <action> --uid=<uid> [--k=v ...]\n"
    "actions: touch (--path), hang (--path), badjson, fail, slow (--path: pid file, --spawn),\n"
    "error, env (answers the names in its environment)\n";

// The marker a hang process removes on SIGTERM; fixed storage, because the
// handler may only make async-signal-safe calls.
char g_hang_marker[4096];

struct Args {
  std::string verb;
  std::string target;
  std::string action;
  std::map<std::string, std::string> flags;  // uid included
};

// Escapes what JSON needs escaped; enough for paths and messages.
std::string json_string(const std::string &text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int respond_ok(const std::string &result_json) {
  std::printf("{\"code\":200,\"success\":true,\"result\":%s}\n", result_json.c_str());
  std::fflush(stdout);
  return 0;
}

int respond_error(int code, const std::string &error) {
  std::printf("{\"code\":%d,\"success\":false,\"error\":%s}\n", code, json_string(error).c_str());
  std::fflush(stdout);
  return 0;
}

void log_argv(int argc, char **argv) {
  const char *log = std::getenv("CHAOS_STANDIN_LOG");
  if (log == nullptr || *log == '\0') return;
  std::string line;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) line += '\x1f';
    line += argv[i];
  }
  line += '\n';
  // One write with O_APPEND: lines of concurrent runs do not interleave.
  int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (::write(fd, line.data(), line.size()) < 0) {
  }
  ::close(fd);
}

bool parse(int argc, char **argv, Args &args) {
  if (argc < 4) return false;
  args.verb = argv[1];
  args.target = argv[2];
  args.action = argv[3];
  for (int i = 4; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) return false;
    const auto eq = arg.find('=');
    if (eq == std::string::npos) {
      args.flags[arg.substr(2)] = "true";
    } else {
      args.flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    }
  }
  return args.verb == "create" || args.verb == "destroy";
}

std::string flag(const Args &args, const std::string &name) {
  const auto it = args.flags.find(name);
  return it == args.flags.end() ? std::string{} : it->second;
}

bool write_file(const std::string &path, const std::string &content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  return static_cast<bool>(out.flush());
}

int remove_marker(const std::string &path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return respond_error(63040, "cannot remove " + path + ": " + std::strerror(errno));
  }
  return respond_ok(json_string("removed " + path));
}

int touch(const Args &args) {
  const std::string path = flag(args, "path");
  if (path.empty()) return respond_error(45000, "ParameterLess: path");
  if (args.verb == "destroy") return remove_marker(path);
  if (!write_file(path, flag(args, "uid"))) {
    return respond_error(63040, "cannot write " + path + ": " + std::strerror(errno));
  }
  return respond_ok(json_string(flag(args, "uid")));
}

extern "C" void on_sigterm(int) {
  ::unlink(g_hang_marker);
  ::_exit(0);
}

// The fault lives in this process until it is killed; SIGTERM undoes it.
int hang(const Args &args) {
  const std::string path = flag(args, "path");
  if (path.empty()) return respond_error(45000, "ParameterLess: path");
  if (args.verb == "destroy") return remove_marker(path);
  if (path.size() >= sizeof g_hang_marker) return respond_error(47000, "path too long");
  std::memcpy(g_hang_marker, path.c_str(), path.size() + 1);
  // The handler before the marker: a SIGTERM at any moment removes it.
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  if (!write_file(path, flag(args, "uid"))) {
    return respond_error(63040, "cannot write " + path + ": " + std::strerror(errno));
  }
  respond_ok("{\"pid\":" + std::to_string(::getpid()) + "}");
  for (;;)
    ::pause();
}

// With --spawn, a child of its own sleeps too (pid in <path>.child): what a
// timeout kills must include what the binary started.
int slow(const Args &args) {
  const std::string pid_file = flag(args, "path");
  if (flag(args, "spawn") == "true") {
    const pid_t child = ::fork();
    if (child == 0) {
      std::this_thread::sleep_for(std::chrono::seconds(60));
      ::_exit(0);
    }
    if (child > 0 && !pid_file.empty()) write_file(pid_file + ".child", std::to_string(child));
  }
  if (!pid_file.empty()) write_file(pid_file, std::to_string(::getpid()));
  std::this_thread::sleep_for(std::chrono::seconds(60));
  return respond_ok("\"slept\"");
}

// The names of the variables in its environment, as a JSON array.
int environment_names() {
  std::string names = "[";
  for (char **entry = environ; *entry != nullptr; ++entry) {
    const std::string variable = *entry;
    if (names.size() > 1) names += ',';
    names += json_string(variable.substr(0, variable.find('=')));
  }
  return respond_ok(names + "]");
}

int run(const Args &args) {
  if (args.target != "marker") return respond_error(44000, "ActionNotSupport: " + args.target);
  if (args.action == "touch") return touch(args);
  if (args.action == "hang") return hang(args);
  if (args.action == "badjson") {
    std::printf("this is not json\n");
    return 0;
  }
  if (args.action == "fail") {
    std::fprintf(stderr, "standin: failing on purpose\nsecond line of the reason\n");
    return 3;
  }
  if (args.action == "slow") return slow(args);
  if (args.action == "error") return respond_error(47000, "ParameterInvalid: bad value");
  if (args.action == "env") return environment_names();
  if (args.action == "noop") return respond_ok("{}");  // the benchmark's baseline fault
  return respond_error(44000, "ActionNotSupport: " + args.action);
}

}  // namespace

int main(int argc, char **argv) {
  log_argv(argc, argv);
  Args args;
  if (!parse(argc, argv, args)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  return run(args);
}
