// The cri plugin: the os, disk and network faults inside a container. It
// finds the container (resolver.hpp), writes its own restore record ahead
// of every step (outer_record.hpp) and runs the fault in blade-cri-helper
// (helper_session.hpp), which enters the container as enter_plans.hpp says
// and runs the host plugins' own fault code there.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <blade/plugin.hpp>

#include "enter_plans.hpp"
#include "helper_session.hpp"
#include "outer_record.hpp"
#include "plugin_config.hpp"

namespace blade::cri {

// The inner fault's status passes through as the call's (e.g.
// FAILED_PRECONDITION for a netem qdisc on a kernel without sch_netem, as
// on the host).
void throw_if_failed(const HelperDone &done);

class CriPlugin {
 public:
  // Calls only share the session map (locked); a slow create (a mem load
  // climbing) must not hold up others.
  static constexpr bool concurrent_calls = true;
  static constexpr const char *config_schema = kConfigSchema;
  // 1.2's write-ahead records are what make a crash between entering the
  // container and the fault's first step recoverable; 1.3 gives the config.
  static constexpr std::uint16_t abi_minor = 3;

  explicit CriPlugin(sdk::Host host);

  sdk::Outcome create(const sdk::Request &req, sdk::Call &call);
  void destroy(const sdk::Request &req, sdk::Call &call);
  std::string dry_run(const sdk::Request &req, sdk::Call &call);

 private:
  // One helper and the record it writes into. The helper's hooks point at
  // it, so it lives on the heap from create through destroy.
  struct Live {
    std::string uid;
    OuterRecord rec;
    sdk::Call *call = nullptr;  // the call being served: create, then destroy
    // Keys destroy's report starts with (e.g. "container"), the helper's
    // report merged after them.
    std::string report_base = "{}";
    // Where the container was found (create), to see what became of it
    // when the helper dies.
    RuntimeRoots roots;
    std::string ns_fallback;
    std::unique_ptr<HelperSession> session;  // last: ends (joins) first
  };

  // Starts blade-cri-helper for `op` on `req`'s fault in `c` as `setup`
  // says, hooks bound to `live`, and serves it until its done.
  HelperDone run_helper(Live &live, const sdk::Request &req, const std::string &op,
                        const Container &c, const InnerSetup &setup,
                        std::optional<std::string> inner_restore);
  // The inner state dir of container `id`: <state>/containers/<id>.
  std::string container_state_dir(const std::string &id) const;
  // Destroy without a live session: a fresh helper undoes the inner record
  // in `c` (the same container, or its restarted successor for what lives
  // in the rootfs).
  void stateless_destroy(const sdk::Request &req, sdk::Call &call, const OuterRecord &rec,
                         const Container &c, const std::string &report_base);
  std::unique_ptr<Live> take_live(const std::string &uid);
  // The helper holding `l`'s fault ended (or its fault said it ended):
  // tells the host, in the words of what became of the container.
  void helper_ended(const Live &l, const std::string &target, const std::string &action,
                    const std::string &reason) const;
  // The container is deleted: its inner records and backups have nothing
  // left to act on.
  void forget_container(const std::string &id) const;

  sdk::Host host_;
  PluginConfig config_;
  std::mutex mu_;
  // Helpers holding a created fault, by experiment uid.
  std::map<std::string, std::unique_ptr<Live>> live_;
};

}  // namespace blade::cri
