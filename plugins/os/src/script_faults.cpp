// script delay | exit: one line inserted at the top of a shell function's
// body. The original bytes are kept in the experiment's dir under the
// plugin's state dir and written back on destroy, but only over the exact
// content the fault wrote, so an edit made meanwhile is never lost. Both
// rewrites go through a temp file renamed over the script (never truncated
// in place), so a crash leaves either version whole; destroy puts back the
// mode, owner and times the script had.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include <blade/failpoint.hpp>
#include <nlohmann/json.hpp>

#include "../../common/durable_file.hpp"
#include "../../common/path_guard.hpp"
#include "experiment_state.hpp"
#include "fault.hpp"
#include "file_backup.hpp"

namespace blade::os {
namespace {

using nlohmann::json;

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

// Where the function's body starts: the offset just past its `{`. Accepts
// `name() {`, `name () {`, `function name {` and `function name() {`, the
// brace on the same line or the next one.
std::optional<std::size_t> body_start(const std::string &text, const std::string &name) {
  std::size_t line = 0;
  while (line < text.size()) {
    std::size_t end = text.find('\n', line);
    if (end == std::string::npos) end = text.size();
    std::size_t i = line;
    while (i < end && is_space(text[i]))
      ++i;
    bool keyword = text.compare(i, 9, "function ") == 0 || text.compare(i, 9, "function\t") == 0;
    if (keyword) {
      i += 9;
      while (i < end && is_space(text[i]))
        ++i;
    }
    if (text.compare(i, name.size(), name) == 0) {
      std::size_t j = i + name.size();
      while (j < end && is_space(text[j]))
        ++j;
      bool parens = false;
      if (j < end && text[j] == '(') {
        ++j;
        while (j < end && is_space(text[j]))
          ++j;
        if (j < end && text[j] == ')') {
          parens = true;
          ++j;
        } else {
          j = std::string::npos;
        }
      }
      if (j != std::string::npos && (parens || keyword)) {
        while (j < end && is_space(text[j]))
          ++j;
        if (j < end && text[j] == '{') return j + 1;
        if (j == end && end < text.size()) {  // brace on the next line
          std::size_t k = end + 1;
          while (k < text.size() && (is_space(text[k]) || text[k] == '\n'))
            ++k;
          if (k < text.size() && text[k] == '{') return k + 1;
        }
      }
    }
    line = end + 1;
  }
  return std::nullopt;
}

std::string single_quoted(const std::string &s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

// The command the fault puts first in the function.
std::string injected_command(const Request &req) {
  if (req.action() == "delay") {
    const auto ms = req.flag_int("time", 0);
    if (ms < 1) throw sdk::InvalidArgument("time: must be at least 1 ms");
    char buf[64];
    std::snprintf(buf, sizeof buf, "sleep %lld.%03lld", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    return buf;
  }
  const auto code = req.flag_int("exit-code", 1);
  if (code < 0 || code > 255) throw sdk::InvalidArgument("exit-code: must be 0..255");
  const std::string message = req.flag_or("exit-message", "");
  if (message.find('\n') != std::string::npos || message.find('\0') != std::string::npos)
    throw sdk::InvalidArgument("exit-message: must be one line");
  std::string cmd = message.empty() ? "" : "echo " + single_quoted(message) + " >&2; ";
  return cmd + "exit " + std::to_string(code);
}

struct Target {
  std::string path;     // resolved: a symlink's target is what gets rewritten
  std::string command;  // the line inserted into the function
  std::string original;
  std::string changed;
  struct stat st {};
};

// The script a request names, refused if it is one of bladed's own files or
// under /proc or /sys; the text it would become.
Target prepare(const Request &req, const Host &host) {
  Target t;
  const std::string given = req.flag_or("file", "");
  if (given.empty() || given[0] != '/')
    throw sdk::InvalidArgument("file: must be an absolute path, got '" + given +
                               "' (the blade CLI resolves a relative one against its working "
                               "directory; a request to bladed has none)");
  const std::string name = req.flag_or("function-name", "");
  if (name.empty() || name.find_first_of(" \t\n(){}<>|&;$'\"`\\") != std::string::npos)
    throw sdk::InvalidArgument("function-name: not a shell function name: '" + name + "'");
  t.command = injected_command(req);
  plugins::refuse_protected("file", given, host.protected_paths(), true);
  // The rename replaces a name: through a symlink it must replace the
  // target, not turn the link into a file.
  t.path = plugins::resolved_path(given).string();
  if (::stat(t.path.c_str(), &t.st) != 0)
    throw sdk::InvalidArgument("file: " + given + " does not exist");
  if (!S_ISREG(t.st.st_mode))
    throw sdk::InvalidArgument("file: " + given + " is not a regular file");
  try {
    t.original = fs::read_bytes(t.path);
  } catch (const sdk::Error &e) {
    throw sdk::InvalidArgument(std::string("file: ") + e.what());
  }
  auto at = body_start(t.original, name);
  if (!at) throw sdk::InvalidArgument("function-name: no function " + name + " in " + given);
  std::size_t eol = t.original.find('\n', *at);
  bool brace_ends_line =
      eol != std::string::npos && t.original.find_first_not_of(" \t\r", *at) == eol;
  // `f() {` alone on its line gets the command as a new next line; a
  // one-line `f() { ...; }` gets it on its own line between.
  t.changed = t.original.substr(0, *at) + "\n" + t.command + (brace_ends_line ? "" : "\n") +
              t.original.substr(*at);
  return t;
}

class ScriptFault : public Fault {
 public:
  explicit ScriptFault(const Host &host, std::string action)
      : host_(host), state_(host), prefix_("os.script." + std::move(action)) {}

  Outcome create(const Request &req, Call &call) override {
    Target t = prepare(req, host_);
    const std::string uid(req.uid());
    state_.refuse_if_path_held("file", t.path, uid);
    const std::string backup = state_.dir(uid) + "/script";
    json rec = {{"fault", "script"},
                {"file", t.path},
                {"backup", backup},
                {"backup_dir", state_.dir(uid)},
                {"written_size", t.changed.size()},
                {"written_digest", fs::digest(t.changed)},
                {"mode", t.st.st_mode & 07777},
                {"uid", t.st.st_uid},
                {"gid", t.st.st_gid},
                {"atime", fs::time_json(t.st.st_atim)},
                {"mtime", fs::time_json(t.st.st_mtim)}};
    state_.checkpoint(call, uid, rec);
    try {
      state_.claim_path("file", t.path, uid);
      point("before_backup");
      plugins::replace_file(backup, t.original, plugins::FileAttrs{}, uid);
      point("after_backup");
      point("before_rename");
      plugins::replace_file(t.path, t.changed, attrs_of(rec, false), uid);
      point("after_rename");
    } catch (...) {
      state_.roll_back(uid, "create", [&] { undo(rec, uid); });
      throw;
    }
    json result = {
        {"file", t.path}, {"function", req.flag_or("function-name", "")}, {"backup", backup}};
    return {result.dump(), rec.dump()};
  }

  void destroy(const Request &req, Call &) override {
    undo(state_.record(req), req.uid());
    state_.finish(req.uid());
  }

  std::string plan(const Request &req, Call &) override {
    Target t = prepare(req, host_);
    state_.refuse_if_path_held("file", t.path, req.uid());
    return json{
        {"file", t.path}, {"function", req.flag_or("function-name", "")}, {"insert", t.command}}
        .dump();
  }

 private:
  // Mode and owner as the script had them; with `times`, its times too
  // (the fault's own write is a change, so it gets a new mtime).
  static plugins::FileAttrs attrs_of(const json &rec, bool times) {
    plugins::FileAttrs a;
    a.mode = rec["mode"].get<mode_t>();
    a.uid = rec["uid"].get<uid_t>();
    a.gid = rec["gid"].get<gid_t>();
    if (times) {
      a.atime = fs::json_time(rec.value("atime", json()));
      a.mtime = fs::json_time(rec.value("mtime", json()));
    }
    return a;
  }

  // Puts the original back when the script holds what the fault wrote;
  // a step that never happened (the script still original) is success.
  void undo(const json &rec, std::string_view uid) {
    if (!rec.contains("file")) return;
    const std::string path = rec["file"];
    const std::string backup = rec["backup"];
    if (state_.path_held_by_other(path, uid)) return;
    ::unlink(plugins::temp_path_for(path, uid).c_str());  // a rewrite a crash cut short
    if (!fs::lstat_at(backup)) return;  // never backed up, so never rewritten; or restored
    const std::string original = fs::read_bytes(backup);
    if (!fs::lstat_at(path))
      throw sdk::FailedPrecondition("file: " + path + " is gone; the original is kept at " +
                                    backup);
    const std::string now = fs::read_bytes(path);
    if (now == original) return;
    if (now.size() != rec["written_size"].get<std::size_t>() ||
        fs::digest(now) != rec["written_digest"].get<std::string>())
      throw sdk::FailedPrecondition("file: " + path +
                                    " changed since the fault; the original is kept at " + backup);
    point("destroy.before_rename");
    plugins::replace_file(path, original, attrs_of(rec, true), uid);
    point("destroy.after_rename");
  }

  void point([[maybe_unused]] const std::string &step) const {
    BLADE_FAILPOINT((prefix_ + "." + step).c_str());
  }

  Host host_;
  ExperimentState state_;
  std::string prefix_;  // os.script.<action>
};

}  // namespace

void register_script_faults(FaultTable &table, const Host &host) {
  table.add("script", "delay", std::make_unique<ScriptFault>(host, "delay"));
  table.add("script", "exit", std::make_unique<ScriptFault>(host, "exit"));
}

}  // namespace blade::os
