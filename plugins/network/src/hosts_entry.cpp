#include "hosts_entry.hpp"

#include <arpa/inet.h>

#include <optional>
#include <sstream>

#include <blade/failpoint.hpp>

#include "dns_experiment_state.hpp"
#include "dns_marked_file.hpp"
#include "dns_names.hpp"

namespace blade::network {
namespace {

constexpr const char *kHostsFile = "/etc/hosts";

struct HostsLine {
  std::string domain;  // lower case
  std::string ip;
};

HostsLine parse(const sdk::Request &req) {
  HostsLine out;
  const std::string domain(req.flag("domain").value_or(""));
  if (auto why = hostname_problem(domain); !why.empty())
    throw sdk::InvalidArgument("domain: " + why);
  out.domain = lower_name(domain);
  // The host checked the type; checked again because the text becomes a
  // line of a file every program on the host reads.
  out.ip = std::string(req.flag("ip").value_or(""));
  unsigned char buf[16];
  if (::inet_pton(AF_INET, out.ip.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, out.ip.c_str(), buf) != 1)
    throw sdk::InvalidArgument("ip: '" + out.ip + "' is not an IPv4 or IPv6 address");
  return out;
}

// The first line of a hosts file that names `domain` (lower case), if
// any: "<address> <name> [<alias> ...]  # comment".
std::optional<std::string> line_naming(std::string_view text, const std::string &domain) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::istringstream words(std::string(line.substr(0, line.find('#'))));
    std::string word;
    words >> word;  // the address
    while (words >> word)
      if (lower_name(word) == domain) return std::string(line);
  }
  return std::nullopt;
}

std::string line_for(const HostsLine &h, std::string_view uid) {
  return h.ip + " " + h.domain + added_marker(uid);
}

// A name the file lists already would keep its own line: the C library
// answers from the first line naming it (getaddrinfo lists that address
// first), so the appended line would not take effect. Refused, unless the
// line is this experiment's own (a create retried after a crash).
void refuse_if_named(const std::string &file, const std::string &domain, std::string_view uid) {
  const std::string text = read_config(file).bytes;
  if (has_marks(text, uid)) return;
  if (auto line = line_naming(text, domain))
    throw sdk::FailedPrecondition("domain: " + domain + " is already named in " + file +
                                  " by the line '" + *line +
                                  "', which would take precedence over an appended one");
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
    state_.claim("domain", "domain:" + h.domain, uid);
    try {
      refuse_if_named(file, h.domain, uid);
    } catch (const sdk::Error &) {
      state_.finish(uid);  // the claim goes again: nothing was done
      throw;
    }
    state_.checkpoint(call, uid, {{"file", file}, {"line", line}});
    BLADE_FAILPOINT("network.dns.before_write");
    const ConfigText old = read_config(file);
    std::string how = "unchanged";  // a retried create whose line is there
    if (!has_marks(old.bytes, uid))
      how = write_config(file, old, append_line(old.bytes, line), uid);
    BLADE_FAILPOINT("network.dns.after_write");
    nlohmann::json result = {{"file", file}, {"line", line}, {"written", how}};
    return {result.dump(), nlohmann::json{{"file", file}, {"line", line}}.dump()};
  }

  void destroy(const sdk::Request &req, sdk::Call &) override {
    const std::string uid(req.uid());
    const auto record = state_.record(req);
    const std::string file = file_to_undo(record, kHostsFile);
    BLADE_FAILPOINT("network.dns.destroy.before_write");
    undo_marks(file, uid);
    state_.finish(uid);
  }

  std::string dry_run(const sdk::Request &req, sdk::Call &) override {
    const HostsLine h = parse(req);
    const std::string file = real_config_file(kHostsFile);
    refuse_if_named(file, h.domain, req.uid());
    return nlohmann::json{{"file", file}, {"line", line_for(h, req.uid())}}.dump();
  }

 private:
  DnsExperimentState state_;
};

}  // namespace

std::unique_ptr<sdk::Fault> make_hosts_entry(sdk::Host host) {
  return std::make_unique<HostsEntry>(host);
}

}  // namespace blade::network
