#include "dns_down.hpp"

#include <map>

#include <blade/failpoint.hpp>

#include "../../common/int_list.hpp"
#include "dns_experiment_state.hpp"
#include "dns_marked_file.hpp"
#include "dns_names.hpp"
#include "dns_stub_resolver.hpp"

namespace blade::network {
namespace {

constexpr const char *kResolvConf = "/etc/resolv.conf";

std::vector<std::string> allowed_domains(const sdk::Request &req) {
  std::vector<std::string> out;
  for (const auto &d : plugins::split_comma_list(req.flag("allow_domain").value_or(""))) {
    if (auto why = hostname_problem(d); !why.empty())
      throw sdk::InvalidArgument("allow_domain: " + why);
    out.push_back(lower_name(d));
  }
  return out;
}

// The nameservers queries for allowed domains go to: those resolv.conf
// names now, or, when it names none, the local one the C library would
// ask then.
std::vector<Nameserver> upstreams_of(const std::string &resolv_conf) {
  auto ns = nameservers_in(resolv_conf);
  if (ns.empty()) ns = nameservers_in("nameserver 127.0.0.1\n");
  return ns;
}

nlohmann::json texts(const std::vector<Nameserver> &ns) {
  auto out = nlohmann::json::array();
  for (const auto &n : ns)
    out.push_back(n.text);
  return out;
}

class DnsDown : public sdk::Fault {
 public:
  explicit DnsDown(sdk::Host host) : host_(host), state_(host) {}

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) override {
    const auto allowed = allowed_domains(req);
    const std::string uid(req.uid());
    const std::string file = real_config_file(kResolvConf);
    // One resolver configuration, one experiment: a second stub would
    // forward to the first, and undoing them out of order would leave
    // the host's resolver pointed at a stub that is gone.
    state_.claim("allow_domain", "resolver:" + file, uid);
    std::unique_ptr<StubResolver> stub;
    ConfigText old;
    std::vector<Nameserver> upstreams;
    try {
      old = read_config(file);
      upstreams = upstreams_of(old.bytes);
      stub = std::make_unique<StubResolver>(upstreams, allowed);
    } catch (const sdk::Error &) {
      state_.finish(uid);  // the claim goes again: nothing was done
      throw;
    }
    const std::string line = "nameserver " + stub->address() + added_marker(uid);
    const nlohmann::json record = {{"file", file}, {"line", line}};
    state_.checkpoint(call, uid, record);
    BLADE_FAILPOINT("network.dns_down.before_write");
    std::string how = "unchanged";  // a retried create whose edits are there
    if (!has_marks(old.bytes, uid))
      how =
          write_config(file, old, append_line(hide_lines(old.bytes, "nameserver", uid), line), uid);
    BLADE_FAILPOINT("network.dns_down.after_write");
    const nlohmann::json result = {
        {"file", file},       {"nameserver", stub->address()}, {"upstreams", texts(upstreams)},
        {"allowed", allowed}, {"denied_with", "SERVFAIL"},     {"written", how}};
    stubs_[uid] = std::move(stub);
    return {result.dump(), record.dump()};
  }

  void destroy(const sdk::Request &req, sdk::Call &) override {
    const std::string uid(req.uid());
    const auto record = state_.record(req);
    const std::string file = file_to_undo(record, kResolvConf);
    BLADE_FAILPOINT("network.dns_down.destroy.before_write");
    // The file first: allowed names keep resolving until it points back.
    undo_marks(file, uid);
    if (auto it = stubs_.find(uid); it != stubs_.end()) {
      host_.info("experiment " + uid + ": the stub resolver forwarded " +
                 std::to_string(it->second->forwarded()) + " and denied " +
                 std::to_string(it->second->denied()) + " queries");
      stubs_.erase(it);
    }
    state_.finish(uid);
  }

  std::string dry_run(const sdk::Request &req, sdk::Call &) override {
    const auto allowed = allowed_domains(req);
    const std::string file = real_config_file(kResolvConf);
    return nlohmann::json{{"file", file},
                          {"upstreams", texts(upstreams_of(read_config(file).bytes))},
                          {"allowed", allowed}}
        .dump();
  }

 private:
  sdk::Host host_;
  DnsExperimentState state_;
  // The stub of each active experiment; a daemon that stops takes them
  // along (its recovery at the next start undoes the file).
  std::map<std::string, std::unique_ptr<StubResolver>> stubs_;
};

}  // namespace

std::unique_ptr<sdk::Fault> make_dns_down(sdk::Host host) {
  return std::make_unique<DnsDown>(host);
}

}  // namespace blade::network
