#include "blade/core/external/external_executor.hpp"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"
#include "blade/core/plugin/executor_router.hpp"
#include "blade/plugin.h"
#include "child_process.hpp"

namespace blade {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using detail::ChildProcess;
using detail::Termination;
using detail::WaitEnd;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr std::string_view kSpecPrefix = "chaosblade-";
constexpr std::string_view kSpecInfix = "-spec-";
constexpr std::string_view kSpecSuffix = ".yaml";

// How long a hang process gets between SIGTERM and SIGKILL on destroy.
constexpr milliseconds kHangGrace{2000};
// Longest piece of a binary's output quoted in a message.
constexpr std::size_t kExcerptBytes = 200;
constexpr std::size_t kStderrLines = 3;

// ChaosBlade's Response codes that Blade maps to a status of its own.
constexpr long long kParameterLess = 45000;
constexpr long long kParameterIllegal = 46000;
constexpr long long kParameterInvalidFirst = 47000;
constexpr long long kParameterInvalidLast = 47999;
constexpr long long kCommandIllegal = 49000;
constexpr long long kForbidden = 43000;
constexpr long long kActionNotSupport = 44000;
constexpr long long kToolNotFoundFirst = 52000;
constexpr long long kToolNotFoundLast = 52099;
constexpr long long kFileNotFound = 51000;
constexpr long long kCriExecNotFound = 55002;
constexpr long long kContainerNotFound = 56002;
constexpr long long kProcessErrorFirst = 63010;
constexpr long long kProcessErrorLast = 63014;

bool in_range(long long code, long long first, long long last) {
  return code >= first && code <= last;
}

int status_for_code(long long code) {
  if (code == kParameterLess || code == kParameterIllegal || code == kCommandIllegal ||
      in_range(code, kParameterInvalidFirst, kParameterInvalidLast)) {
    return BLADE_STATUS_INVALID_ARGUMENT;
  }
  if (code == kForbidden) return BLADE_STATUS_PERMISSION_DENIED;
  if (code == kActionNotSupport || in_range(code, kToolNotFoundFirst, kToolNotFoundLast)) {
    return BLADE_STATUS_NOT_SUPPORTED;
  }
  if (code == kFileNotFound || code == kCriExecNotFound || code == kContainerNotFound ||
      in_range(code, kProcessErrorFirst, kProcessErrorLast)) {
    return BLADE_STATUS_NOT_FOUND;
  }
  return BLADE_STATUS_FAILED_PRECONDITION;
}

// Bytes of the well-formed UTF-8 sequence starting at text[i], or 0.
// Messages end up in JSON, which refuses malformed UTF-8 (overlong forms and
// surrogates included), and binaries print anything.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;  // the range of the second byte
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size() || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  }
  return length;
}

// Up to `max` bytes of `text` fit to quote in a message: control characters
// become spaces, invalid UTF-8 becomes '?'.
std::string excerpt(std::string_view text, std::size_t max = kExcerptBytes) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && out.size() < max) {
    const std::size_t length = utf8_length(text, i);
    if (length == 0) {
      out += '?';
      ++i;
    } else if (length == 1) {
      const char c = text[i++];
      out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? ' ' : c;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  if (i < text.size()) out += "...";
  return out;
}

// The first few non-empty lines of stderr, where a failing binary says why.
std::string stderr_summary(std::string_view err) {
  std::string lines;
  std::size_t taken = 0;
  while (!err.empty() && taken < kStderrLines) {
    const auto end = err.find('\n');
    std::string_view line = err.substr(0, end);
    err = end == std::string_view::npos ? std::string_view{} : err.substr(end + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.remove_suffix(1);
    if (line.empty()) continue;
    if (taken++ > 0) lines += " | ";
    lines += line;
  }
  return excerpt(lines, 2 * kExcerptBytes);
}

CallOutcome outcome(int status, std::string message) {
  CallOutcome o;
  o.status = status;
  o.message = std::move(message);
  return o;
}

// The Response a binary printed, if stdout holds exactly one: a JSON object
// with a boolean "success" and an integer "code".
std::optional<json> parse_response(const std::string &text) {
  json response = parse_bounded_json(text).value;
  if (response.is_discarded() || !response.is_object()) return std::nullopt;
  const auto success = response.find("success");
  const auto code = response.find("code");
  if (success == response.end() || !success->is_boolean()) return std::nullopt;
  if (code == response.end() || !code->is_number_integer()) return std::nullopt;
  return response;
}

CallOutcome from_response(const json &response) {
  if (response.at("success").get<bool>()) {
    CallOutcome ok;
    const auto result = response.find("result");
    if (result != response.end() && !result->is_null()) ok.result_json = result->dump();
    return ok;
  }
  const auto code = response.at("code").get<long long>();
  const auto error = response.find("error");
  std::string text =
      error != response.end() && error->is_string() ? error->get<std::string>() : std::string{};
  if (text.empty()) text = "failed without a message";
  return outcome(status_for_code(code), fmt::format("{}: {}", code, text));
}

// ChaosBlade's reading of a finished binary: a non-zero exit is 63063, output
// that is not a Response is 60000, otherwise the Response says.
CallOutcome interpret_exit(const std::string &program, int wait_status,
                           const ChildProcess::Output &output) {
  if (WIFSIGNALED(wait_status)) {
    const char *name = sigabbrev_np(WTERMSIG(wait_status));
    return outcome(BLADE_STATUS_FAILED_PRECONDITION,
                   fmt::format("63063: command exec failed: {} was killed by SIG{}", program,
                               name != nullptr ? name : std::to_string(WTERMSIG(wait_status))));
  }
  if (WEXITSTATUS(wait_status) != 0) {
    const std::string why = stderr_summary(output.err);
    return outcome(BLADE_STATUS_FAILED_PRECONDITION,
                   fmt::format("63063: command exec failed: {} exited with code {}{}{}", program,
                               WEXITSTATUS(wait_status), why.empty() ? "" : ": ", why));
  }
  const auto response = parse_response(output.out);
  if (!response) {
    return outcome(BLADE_STATUS_INTERNAL,
                   fmt::format("60000: ResultUnmarshalFailed: {} did not print a Response JSON{}: "
                               "\"{}\"",
                               program, output.out_truncated ? " (output over 1 MiB)" : "",
                               excerpt(output.out)));
  }
  return from_response(*response);
}

Clock::time_point deadline_of(const ExternalSettings &settings, const CallOptions &options) {
  return options.deadline.value_or(Clock::now() + settings.default_deadline);
}

// The binary could not be started at all: a missing binary is a host that
// lacks the feature, an unreadable one a missing privilege.
CallOutcome spawn_failure(const std::system_error &e) {
  const int error = e.code().value();
  const int status = error == ENOENT                     ? BLADE_STATUS_NOT_SUPPORTED
                     : error == EACCES || error == EPERM ? BLADE_STATUS_PERMISSION_DENIED
                                                         : BLADE_STATUS_INTERNAL;
  return outcome(status, excerpt(e.what(), 2 * kExcerptBytes));
}

// The daemon's environment without its own settings (BLADE_*): they are
// none of the binary's business, and BLADE_API_TOKEN is a secret.
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char **entry = environ; *entry != nullptr; ++entry) {
    if (!std::string_view(*entry).starts_with("BLADE_")) env.emplace_back(*entry);
  }
  return env;
}

// The child, or nullptr with `failed` saying why it did not start.
std::unique_ptr<ChildProcess> start_child(const std::vector<std::string> &argv,
                                          CallOutcome &failed) {
  try {
    return std::make_unique<ChildProcess>(argv, child_environment());
  } catch (const std::system_error &e) {
    failed = spawn_failure(e);
    return nullptr;
  }
}

// Turns a wait that did not see the exit into an outcome; the child is
// killed and reaped first, so nothing of the call is left running.
CallOutcome abandon(ChildProcess &child, WaitEnd end, const std::string &label,
                    milliseconds budget) {
  child.kill_and_reap();
  if (end == WaitEnd::Cancelled) {
    return outcome(BLADE_STATUS_CANCELLED,
                   fmt::format("{} was cancelled; its process was killed", label));
  }
  return outcome(
      BLADE_STATUS_TIMEOUT,
      fmt::format("{} timed out after {} ms; its process was killed", label, budget.count()));
}

milliseconds budget_until(Clock::time_point deadline) {
  return std::chrono::round<milliseconds>(deadline - Clock::now());
}

CallOutcome deadline_passed(const std::string &label) {
  return outcome(BLADE_STATUS_TIMEOUT,
                 fmt::format("{}: the deadline passed before it started", label));
}

// Runs a binary that applies (or undoes) its fault and exits.
CallOutcome run_to_exit(const std::string &program, const std::string &label,
                        const std::vector<std::string> &argv, Clock::time_point deadline,
                        const std::atomic<bool> *cancel) {
  const milliseconds budget = budget_until(deadline);
  if (budget.count() <= 0) return deadline_passed(label);
  CallOutcome failed;
  auto child = start_child(argv, failed);
  if (!child) return failed;
  const WaitEnd end = child->wait(deadline, cancel);
  if (end != WaitEnd::Exited) return abandon(*child, end, label, budget);
  return interpret_exit(program, *child->wait_status(), child->output());
}

// Flag values may hold any bytes; a restore record that failed to serialise
// after the fault was applied would leave the fault behind, so bytes that
// are not UTF-8 are replaced rather than thrown about.
std::string to_text(const json &value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json restore_record(const std::vector<std::string> &argv) {
  return json{{"argv", argv}};
}

// Where a hang action's process is, from its restore record.
struct HangProcess {
  pid_t pid = 0;
  unsigned long long start_time = 0;
};

std::optional<HangProcess> hang_process(const std::optional<std::string> &restore_json) {
  if (!restore_json) return std::nullopt;
  const json record = parse_bounded_json(*restore_json).value;
  if (!record.is_object() || !record.contains("pid")) return std::nullopt;
  const json &pid = record.at("pid");
  const auto start = record.find("start_time");
  // pid 0, 1 or negative would signal a group, init or everything: never.
  if (!pid.is_number_integer() || pid.get<long long>() <= 1 ||
      pid.get<long long>() > std::numeric_limits<pid_t>::max() || start == record.end() ||
      !start->is_number_unsigned()) {
    log::warn("unusable pid in an external restore record; running destroy instead",
              {{"restore", excerpt(*restore_json)}});
    return std::nullopt;
  }
  return HangProcess{static_cast<pid_t>(pid.get<long long>()), start->get<unsigned long long>()};
}

CallOutcome stop_hang_process(const std::string &label, const HangProcess &process,
                              Clock::time_point deadline) {
  const milliseconds grace = std::clamp(budget_until(deadline), milliseconds(0), kHangGrace);
  Termination result;
  try {
    result = detail::terminate_process(process.pid, process.start_time, grace);
  } catch (const std::system_error &e) {
    return outcome(BLADE_STATUS_INTERNAL, fmt::format("{}: {}", label, e.what()));
  }
  const std::string pid = std::to_string(process.pid);
  switch (result) {
    case Termination::Reused:
      log::info("hang process already gone; its pid now names another process, left alone",
                {{"pid", pid}});
      return {};
    case Termination::Gone:
    case Termination::Terminated:
    case Termination::Killed:
      return {};
    case Termination::NotPermitted:
      return outcome(BLADE_STATUS_PERMISSION_DENIED,
                     fmt::format("{}: not permitted to signal process {}", label, pid));
    case Termination::StillAlive:
      break;
  }
  return outcome(BLADE_STATUS_FAILED_PRECONDITION,
                 fmt::format("{}: process {} survived SIGKILL", label, pid));
}

// A plain file name: the program is looked up under bin_dir and nowhere else.
bool is_plain_file_name(const std::string &name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

bool is_kind_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_version_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '+' || c == '-';
}

// An empty value or "false" means "not set" to chaosblade-exec, and it
// never sees `timeout`: the core schedules that destroy itself.
bool passed_to_binary(const std::string &name, const std::string &value) {
  return !value.empty() && value != "false" && name != "timeout";
}

}  // namespace

std::optional<std::string> program_for_spec_file(const fs::path &spec_file) {
  const std::string name = spec_file.filename().string();
  if (!name.starts_with(kSpecPrefix) || !name.ends_with(kSpecSuffix)) return std::nullopt;
  const std::string_view middle = std::string_view(name).substr(
      kSpecPrefix.size(), name.size() - kSpecPrefix.size() - kSpecSuffix.size());
  const auto infix = middle.find(kSpecInfix);
  if (infix == std::string_view::npos) return std::nullopt;
  const std::string_view kind = middle.substr(0, infix);
  const std::string_view version = middle.substr(infix + kSpecInfix.size());
  if (kind.empty() || version.empty() || !std::all_of(kind.begin(), kind.end(), is_kind_char) ||
      !std::all_of(version.begin(), version.end(), is_version_char)) {
    return std::nullopt;
  }
  return "chaos_" + std::string(kind);
}

ExternalExecutor::ExternalExecutor(ExternalSettings settings, std::string program,
                                   bool process_hang)
    : settings_(std::move(settings)), program_(std::move(program)), process_hang_(process_hang) {
  if (!is_plain_file_name(program_)) {
    throw Error(
        ErrorCode::InvalidArgument,
        fmt::format("external program \"{}\" must be a file name under the bin dir", program_));
  }
}

std::string ExternalExecutor::name() const {
  return executor_name(ExecutorKind::External, program_);
}

std::vector<std::string> ExternalExecutor::argv(const std::string &verb,
                                                const PluginRequest &request) const {
  std::vector<std::string> args{(settings_.bin_dir / program_).string(), verb, request.target,
                                request.action, "--uid=" + request.uid};
  // FlagValues is ordered by name, so the argv is the same for the same
  // request: destroy repeats exactly what create passed.
  for (const auto &[name, value] : request.flags) {
    if (passed_to_binary(name, value)) args.push_back(fmt::format("--{}={}", name, value));
  }
  return args;
}

CallOutcome ExternalExecutor::create(const PluginRequest &request, const CallOptions &options) {
  const std::vector<std::string> args = argv("create", request);
  const std::string label = name() + " create";
  const Clock::time_point deadline = deadline_of(settings_, options);
  if (!process_hang_) {
    CallOutcome result = run_to_exit(program_, label, args, deadline, options.cancel);
    if (result.ok()) result.restore_json = to_text(restore_record(args));
    return result;
  }

  const milliseconds budget = budget_until(deadline);
  if (budget.count() <= 0) return deadline_passed(label);
  CallOutcome failed;
  auto child = start_child(args, failed);
  if (!child) return failed;
  // A hang action is started, not awaited: alive after hang_check means the
  // fault is running in it.
  const WaitEnd end =
      child->wait(std::min(deadline, Clock::now() + settings_.hang_check), options.cancel);
  if (end == WaitEnd::Cancelled) return abandon(*child, end, label, budget);
  if (end == WaitEnd::Exited) {
    // It finished on its own: read like any other binary's answer.
    CallOutcome result = interpret_exit(program_, *child->wait_status(), child->output());
    if (result.ok()) result.restore_json = to_text(restore_record(args));
    return result;
  }

  // It may already have said it failed while still running; then it goes.
  const auto early = parse_response(child->output().out);
  CallOutcome result = early ? from_response(*early) : CallOutcome{};
  if (!result.ok()) {
    child->kill_and_reap();
    return result;
  }
  json record = restore_record(args);
  record["pid"] = child->pid();
  record["start_time"] = child->start_time();
  result.restore_json = to_text(record);
  log::info("external hang action running",
            {{"executor", name()}, {"uid", request.uid}, {"pid", std::to_string(child->pid())}});
  child->release();
  return result;
}

CallOutcome ExternalExecutor::destroy(const PluginRequest &request, const CallOptions &options) {
  const std::string label = name() + " destroy";
  const Clock::time_point deadline = deadline_of(settings_, options);
  // "Destroy of such a fault kills that process" (the contract): the fault
  // lives in it. A hang action without a process of record (it exited by
  // itself at create, or the record is lost) is left to the binary's destroy.
  if (process_hang_) {
    if (const auto process = hang_process(request.restore_json)) {
      return stop_hang_process(label, *process, deadline);
    }
  }
  return run_to_exit(program_, label, argv("destroy", request), deadline, options.cancel);
}

CallOutcome ExternalExecutor::dry_run(const PluginRequest &request, const CallOptions &) {
  CallOutcome plan;
  plan.plan_json = to_text(json{{"executor", name()}, {"argv", argv("create", request)}});
  return plan;
}

}  // namespace blade
