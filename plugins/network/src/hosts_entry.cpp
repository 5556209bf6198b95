#include "hosts_entry.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <vector>

#include <blade/failpoint.hpp>

#include "dns_experiment_state.hpp"
#include "dns_marked_file.hpp"
#include "dns_names.hpp"
#include "hosts_lines.hpp"

namespace blade::network {
namespace {

constexpr const char *kHostsFile = "/etc/hosts";

struct HostsLine {
  std::vector<std::string> domains;  // lower case, each once, in the order given
  std::string ip;
  bool replace = false;
};

HostsLine parse(const sdk::Request &req) {
  HostsLine out;
  // A list, as ChaosBlade takes it: every name maps to the one ip.
  const std::string list(req.flag("domain").value_or(""));
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string domain = list.substr(start, comma - start);
    start = comma + 1;
    if (auto why = hostname_problem(domain); !why.empty())
      throw sdk::InvalidArgument("domain: " + why);
    std::string name = lower_name(domain);
    if (std::find(out.domains.begin(), out.domains.end(), name) == out.domains.end())
      out.domains.push_back(std::move(name));
  }
  // The host checked the type; checked again because the text becomes a
  // line of a file every program on the host reads.
  out.ip = std::string(req.flag("ip").value_or(""));
  unsigned char buf[16];
  if (::inet_pton(AF_INET, out.ip.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, out.ip.c_str(), buf) != 1)
    throw sdk::InvalidArgument("ip: '" + out.ip + "' is not an IPv4 or IPv6 address");
  out.replace = req.flag_bool("replace");
  return out;
}

std::string line_for(const HostsLine &h, std::string_view uid) {
  std::string line = h.ip;
  for (const std::string &d : h.domains)
    line += " " + d;
  return line + added_marker(uid);
}

// The file's new text: the lines naming the domains hidden (replace), then
// ours appended. A name the file lists already would keep its own line
// without replace: the C library answers from the first line naming it
// (getaddrinfo lists that address first), so the appended line would not
// take effect; refused.
HostsReplacement planned(const std::string &file, std::string_view text, const HostsLine &h,
                         std::string_view uid) {
  if (!h.replace) {
    if (auto named = first_line_naming(text, h.domains))
      throw sdk::FailedPrecondition(
          "domain: " + named->name + " is already named in " + file + " by the line '" +
          named->line +
          "', which would take precedence over an appended one; replace hides that line "
          "while the experiment runs (destroy puts it back)");
    return {std::string(text), {}};
  }
  return replace_names(text, h.domains, uid);
}

nlohmann::json replaced_json(const std::vector<ReplacedLine> &replaced) {
  nlohmann::json out = nlohmann::json::array();
  for (const ReplacedLine &r : replaced) {
    nlohmann::json one = {{"line", r.line}, {"names", r.names}};
    if (!r.kept.empty()) one["kept"] = r.kept;
    out.push_back(std::move(one));
  }
  return out;
}

class HostsEntry : public sdk::Fault {
 public:
  explicit HostsEntry(sdk::Host host) : state_(host) {}

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) override {
    const HostsLine h = parse(req);
    const std::string uid(req.uid());
    const std::string file = real_config_file(kHostsFile);
    const std::string line = line_for(h, uid);
    // One experiment per domain: /etc/hosts answers with its first line
    // for a name, so a second one would either be ignored or, destroyed
    // first, hand the name back to the older one's ip; neither is what
    // its caller asked for.
    HostsReplacement plan;
    try {
      for (const std::string &d : h.domains)
        state_.claim("domain", "domain:" + d, uid);
      const std::string text = read_config(file).bytes;
      // A create retried after a crash finds its own edit: done already.
      if (!has_marks(text, uid)) plan = planned(file, text, h, uid);
    } catch (const sdk::Error &) {
      state_.finish(uid);  // the claims go again: nothing was done
      throw;
    }
    const nlohmann::json replaced = replaced_json(plan.replaced);
    const nlohmann::json record = {{"file", file}, {"line", line}, {"replaced", replaced}};
    state_.checkpoint(call, uid, record);
    BLADE_FAILPOINT("network.dns.before_write");
    const ConfigText old = read_config(file);
    nlohmann::json result = record;
    result["written"] = "unchanged";  // a retried create whose line is there
    if (!has_marks(old.bytes, uid)) {
      // Planned again on the file as it is now, which is what gets written
      // (an edit made since the first read is kept, and a line naming a
      // domain added since is refused as it would have been then).
      HostsReplacement now;
      try {
        now = planned(file, old.bytes, h, uid);
      } catch (const sdk::Error &) {
        state_.finish(uid);  // nothing was written
        throw;
      }
      result["written"] = write_config(file, old, append_line(now.text, line), uid);
      result["replaced"] = replaced_json(now.replaced);
    }
    BLADE_FAILPOINT("network.dns.after_write");
    return {result.dump(), record.dump()};
  }

  void destroy(const sdk::Request &req, sdk::Call &) override {
    const std::string uid(req.uid());
    const auto record = state_.record(req);
    const std::string file = file_to_undo(record, kHostsFile);
    BLADE_FAILPOINT("network.dns.destroy.before_write");
    // Its added lines (ours and the copies) go, its hidden lines come back.
    undo_marks(file, uid);
    state_.finish(uid);
  }

  std::string dry_run(const sdk::Request &req, sdk::Call &) override {
    const HostsLine h = parse(req);
    const std::string file = real_config_file(kHostsFile);
    const HostsReplacement plan = planned(file, read_config(file).bytes, h, req.uid());
    return nlohmann::json{{"file", file},
                          {"line", line_for(h, req.uid())},
                          {"replaced", replaced_json(plan.replaced)}}
        .dump();
  }

 private:
  DnsExperimentState state_;
};

}  // namespace

std::unique_ptr<sdk::Fault> make_hosts_entry(sdk::Host host) {
  return std::make_unique<HostsEntry>(host);
}

}  // namespace blade::network
