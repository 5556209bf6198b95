// script delay | exit: one line inserted at the top of a shell function's
// body. The original bytes are kept under the plugin's state dir and written
// back on destroy, but only over the exact content the fault wrote, so an
// edit made meanwhile is never lost.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

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
  std::string path;
  std::string command;  // the line inserted into the function
  std::string original;
  std::string changed;
  struct stat st {};
};

Target prepare(const Request &req) {
  Target t;
  t.path = req.flag_or("file", "");
  if (t.path.empty() || t.path[0] != '/')
    throw sdk::InvalidArgument("file: must be an absolute path, got '" + t.path + "'");
  const std::string name = req.flag_or("function-name", "");
  if (name.empty() || name.find_first_of(" \t\n(){}<>|&;$'\"`\\") != std::string::npos)
    throw sdk::InvalidArgument("function-name: not a shell function name: '" + name + "'");
  t.command = injected_command(req);
  if (::stat(t.path.c_str(), &t.st) != 0)
    throw sdk::InvalidArgument("file: " + t.path + " does not exist");
  if (!S_ISREG(t.st.st_mode))
    throw sdk::InvalidArgument("file: " + t.path + " is not a regular file");
  try {
    t.original = fs::read_bytes(t.path);
  } catch (const sdk::Error &e) {
    throw sdk::InvalidArgument(std::string("file: ") + e.what());
  }
  auto at = body_start(t.original, name);
  if (!at) throw sdk::InvalidArgument("function-name: no function " + name + " in " + t.path);
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
  explicit ScriptFault(const Host &host) : host_(host) {}

  Outcome create(const Request &req, Call &) override {
    Target t = prepare(req);
    const std::string dir = fs::backup_dir(host_, req.uid());
    const std::string backup = dir + "/script";
    fs::make_private_dir(dir);
    fs::write_new(backup, t.original);
    try {
      fs::write_in_place(t.path, t.changed);  // same inode: mode and owner stay
    } catch (...) {
      fs::write_in_place(t.path, t.original);
      fs::remove_tree(dir);
      throw;
    }
    json restore = {{"file", t.path},
                    {"backup", backup},
                    {"backup_dir", dir},
                    {"written_size", t.changed.size()},
                    {"written_digest", fs::digest(t.changed)},
                    {"mode", t.st.st_mode & 07777},
                    {"uid", t.st.st_uid},
                    {"gid", t.st.st_gid}};
    json result = {
        {"file", t.path}, {"function", req.flag_or("function-name", "")}, {"backup", backup}};
    return {result.dump(), restore.dump()};
  }

  void destroy(const Request &req, Call &) override {
    json rec = fs::parse_restore(req);
    if (!rec.contains("file")) return;
    const std::string path = rec["file"];
    const std::string backup = rec["backup"];
    if (!fs::lstat_at(backup)) return;  // restored already
    const std::string original = fs::read_bytes(backup);
    if (!fs::lstat_at(path))
      throw sdk::FailedPrecondition("file: " + path + " is gone; the original is kept at " +
                                    backup);
    const std::string now = fs::read_bytes(path);
    if (now != original) {
      if (now.size() != rec["written_size"].get<std::size_t>() ||
          fs::digest(now) != rec["written_digest"].get<std::string>())
        throw sdk::FailedPrecondition(
            "file: " + path + " changed since the fault; the original is kept at " + backup);
      fs::write_in_place(path, original);
    }
    if (::chown(path.c_str(), rec["uid"].get<uid_t>(), rec["gid"].get<gid_t>()) != 0 ||
        ::chmod(path.c_str(), rec["mode"].get<mode_t>()) != 0)
      throw sdk::FailedPrecondition(fs::errno_text("cannot restore mode and owner of", path));
    fs::remove_tree(rec["backup_dir"]);
  }

  std::string plan(const Request &req, Call &) override {
    Target t = prepare(req);
    return json{
        {"file", t.path}, {"function", req.flag_or("function-name", "")}, {"insert", t.command}}
        .dump();
  }

 private:
  Host host_;
};

}  // namespace

void register_script_faults(FaultTable &table, const Host &host) {
  table[{"script", "delay"}] = std::make_unique<ScriptFault>(host);
  table[{"script", "exit"}] = std::make_unique<ScriptFault>(host);
}

}  // namespace blade::os
