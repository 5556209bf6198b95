// network drop: one nftables table per experiment (drop_rules.hpp), loaded
// and deleted through libnftables (nft_session.hpp), with a string-pattern
// rule added to it over nfnetlink (nft_string_match.hpp). The table's name
// comes from the uid, so destroy needs neither the flags nor, strictly, the
// record, and cannot touch a rule that is not the experiment's own.
#include <memory>

#include <blade/failpoint.hpp>

#include "../../common/experiment_dirs.hpp"
#include "drop_rules.hpp"
#include "fault_families.hpp"
#include "nft_netlink.hpp"
#include "nft_session.hpp"
#include "nft_string_match.hpp"

namespace blade::network {
namespace {

[[noreturn]] void refuse_unsupported(const std::string &nft_error) {
  throw sdk::FailedPrecondition(
      "the kernel's nf_tables lacks what a drop needs: its inet family (CONFIG_NF_TABLES_INET, "
      "part of nf_tables), and nft_numgen for a percent below 100 (modprobe nft_numgen); "
      "libnftables said: " +
      nft_error + ". Nothing was changed");
}

// Deletes `table` of kDropFamily; one that is not there is success.
void delete_table(NftSession &nft, const std::string &table) {
  const NftAnswer deleted =
      nft.run(std::string("delete table ") + kDropFamily + " " + table + "\n");
  if (deleted.ok) return;
  NftAnswer listed;
  const bool exists = nft.table_exists(kDropFamily, table, &listed);
  // No nf_tables at all: no table of ours can be there either.
  if (!listed.ok && nft_kernel_lacks_support(listed.error)) return;
  if (listed.ok && !exists) return;
  throw sdk::FailedPrecondition("cannot delete nftables table " + std::string(kDropFamily) + " " +
                                table + ": " + deleted.error);
}

class DropFault : public sdk::Fault {
 public:
  // <state>/drop/<uid>: the local copy of the record. No claims: the
  // table's name is the experiment's own, so two drops never share one.
  explicit DropFault(sdk::Host host)
      : host_(host), dirs_(plugins::ExperimentDirs::under_state(host, "drop"), "") {}

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call) override {
    const Plan p = plan(req);
    NftSession nft;
    // Whether nf_tables answers at all, before anything is written.
    NftAnswer probe;
    nft.table_exists(kDropFamily, p.table, &probe);
    if (!probe.ok) {
      if (nft_kernel_lacks_support(probe.error)) refuse_unsupported(probe.error);
      throw sdk::FailedPrecondition("nftables cannot be read: " + probe.error);
    }
    // Ahead of the table: a crash from here on leaves the name to delete.
    // (plan() checked the uid: it names the table, and so the dir.)
    dirs_.checkpoint(call, req.uid(), record_of(p));
    BLADE_FAILPOINT("network.drop.before_table");
    // A refusal leaves nothing: not the table, nor the local record. The
    // refusal is the answer: a record left behind is removed by the
    // destroy the host sends next.
    auto forget = [&] {
      try {
        dirs_.finish(req.uid());
      } catch (const sdk::Error &) {
      }
    };
    const NftAnswer loaded = nft.run(p.ruleset);
    if (!loaded.ok) {
      // One transaction: nothing of it is in place.
      forget();
      if (nft_kernel_lacks_support(loaded.error)) refuse_unsupported(loaded.error);
      throw sdk::FailedPrecondition("nftables refused the drop table: " + loaded.error);
    }
    if (!p.spec.string_pattern.empty()) {
      BLADE_FAILPOINT("network.drop.before_payload_rule");
      try {
        add_string_drop_rule(p.table, kPayloadChain, p.spec.string_pattern);
      } catch (const sdk::Error &) {
        // The table alone drops nothing (its rules jump to an empty chain).
        delete_table(nft, p.table);
        forget();
        throw;
      }
    }
    BLADE_FAILPOINT("network.drop.after_table");
    return {text_of(describe(p)), record_of(p).dump()};
  }

  void destroy(const sdk::Request &req, sdk::Call &) override {
    const std::string table = drop_table_name(req.uid());
    const auto record = dirs_.record(req);
    // A kernel without nf_tables has no table of ours either.
    if (nftables_missing().empty()) {
      NftSession nft;
      delete_table(nft, table);
      // A record naming another of our tables (written by a build that
      // named them differently) is honoured too; anything else in it is
      // ignored.
      if (auto t = record.find("table"); t != record.end() && t->is_string()) {
        const std::string named = t->get<std::string>();
        if (named != table && is_drop_table_name(named)) delete_table(nft, named);
      }
    }
    dirs_.finish(req.uid());
  }

  std::string dry_run(const sdk::Request &req, sdk::Call &) override {
    const Plan p = plan(req);
    // libnftables' dry run: the kernel checks the transaction, then it is
    // aborted, so the plan says whether the create would load.
    NftSession check(true);
    const NftAnswer checked = check.run(p.ruleset);
    // What the create would refuse as a 422, the dry run refuses alike.
    if (!checked.ok && nft_kernel_lacks_support(checked.error)) refuse_unsupported(checked.error);
    nlohmann::json plan = describe(p);
    plan["kernel_check"] = checked.ok ? nlohmann::json("accepted") : nlohmann::json(checked.error);
    if (!p.spec.string_pattern.empty())
      plan["payload_rule_note"] =
          "the payload rule is added through nfnetlink once the table is in; the kernel "
          "check covers the table only";
    return text_of(plan);
  }

 private:
  struct Plan {
    DropSpec spec;
    std::string table;
    ControlPath path;
    bool control_included = false;
    std::string ruleset;
  };

  Plan plan(const sdk::Request &req) const {
    Plan p;
    p.spec = parse_drop(req);
    // A dry run has no uid yet: the check loads the same text under a
    // stand-in name.
    p.table = req.uid().empty() ? std::string("blade_dry_run") : drop_table_name(req.uid());
    p.control_included = req.flag_bool("include-control-ports");
    p.path = control_path_for(req, host_.daemon_pid());
    p.ruleset = drop_ruleset(p.spec, p.table, p.path);
    return p;
  }

  // Invalid UTF-8 (a pattern's bytes, should any host pass such) is
  // replaced in the text: the answer must not throw once the table is in.
  static std::string text_of(const nlohmann::json &j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  static nlohmann::json record_of(const Plan &p) {
    return {{"table", p.table}, {"family", kDropFamily}};
  }

  // The name of each direction's chain (or hook) the table has.
  static nlohmann::json chains_of(const DropSpec &s, const char *(*name)(bool outgoing)) {
    nlohmann::json out = nlohmann::json::array();
    if (s.incoming) out.push_back(name(false));
    if (s.outgoing) out.push_back(name(true));
    return out;
  }

  static nlohmann::json describe(const Plan &p) {
    nlohmann::json d = {{"table", p.table},
                        {"family", kDropFamily},
                        {"chains", chains_of(p.spec, drop_chain_name)},
                        {"hooks", chains_of(p.spec, drop_hook_name)},
                        {"priority", kDropPriority},
                        {"drop", drop_spec_json(p.spec)},
                        {"excluded", p.path.excluded},
                        {"control_ports_included", p.control_included},
                        {"ruleset", p.ruleset}};
    if (!p.spec.string_pattern.empty())
      d["payload_rule"] = {{"chain", kPayloadChain},
                           {"rule", string_drop_rule_text(p.spec.string_pattern)}};
    return d;
  }

  sdk::Host host_;
  plugins::ExperimentDirs dirs_;
};

}  // namespace

void add_drop_fault(sdk::FaultRouter &router, sdk::Host host) {
  router.add("network", "drop", std::make_unique<DropFault>(host));
}

}  // namespace blade::network
