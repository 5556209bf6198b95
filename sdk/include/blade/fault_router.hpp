// SPDX-License-Identifier: Apache-2.0
// Blade plugin SDK: routing each (target, action) of a plugin to its own
// class, so a plugin with several faults writes no dispatch by hand.
//
//   class CpuLoad : public blade::sdk::Fault {
//    public:
//     blade::sdk::Outcome create(const blade::sdk::Request &, blade::sdk::Call &) override;
//     void destroy(const blade::sdk::Request &, blade::sdk::Call &) override;
//     std::string dry_run(const blade::sdk::Request &, blade::sdk::Call &) override;  // optional
//   };
//
//   class MyPlugin : public blade::sdk::FaultRouter {
//    public:
//     explicit MyPlugin(blade::sdk::Host host) : FaultRouter("my") {
//       add("cpu", "load", std::make_unique<CpuLoad>(host));
//     }
//   };
//   BLADE_PLUGIN(MyPlugin, "my", "1.0.0", kSpecYaml)
//
// The plugin class inherits create, destroy and dry_run, which the layer of
// blade/plugin.hpp calls like hand-written ones; a plugin may as well hold
// a FaultRouter as a member and forward to it.
#ifndef BLADE_FAULT_ROUTER_HPP
#define BLADE_FAULT_ROUTER_HPP

#include <blade/plugin.hpp>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace blade::sdk {

// One fault: what a (target, action) does. Called from the instance's
// hooks, so the threading contract is the plugin's (serialised unless the
// plugin class sets concurrent_calls).
class Fault {
 public:
  virtual ~Fault() = default;
  // Applies the fault. Bad input is an InvalidArgument naming the flag,
  // thrown before anything on the host changes.
  virtual Outcome create(const Request &req, Call &call) = 0;
  // Undoes it from req.restore_json() and the flags alone (it may run in a
  // new instance after a daemon restart). Idempotent: what is already undone
  // (or was never done) is success.
  virtual void destroy(const Request &req, Call &call) = 0;
  // JSON: what create would hit (cores, pids, files), changing nothing.
  // The default refuses with NotSupported, so the host reports that this
  // one action has no dry run while the plugin's others do.
  virtual std::string dry_run(const Request &req, Call &) {
    throw NotSupported("no dry run for " + std::string(req.target()) + " " +
                       std::string(req.action()));
  }
};

// (target, canonical action) -> its Fault. Filled in the plugin's
// constructor, read-only afterwards, so concurrent calls may dispatch
// through it without a lock.
class FaultRouter {
 public:
  // `plugin_name` prefixes the error for an unrouted pair.
  explicit FaultRouter(std::string plugin_name) : plugin_name_(std::move(plugin_name)) {}

  // Routes (target, action) to `fault`. Adding a pair twice, or a null
  // fault, is a bug of the plugin: std::logic_error (at init, which the
  // host reports as INTERNAL and refuses to load the plugin).
  void add(std::string target, std::string action, std::unique_ptr<Fault> fault) {
    if (!fault)
      throw std::logic_error(plugin_name_ + " plugin: null fault for " + target + " " + action);
    std::string what = target + " " + action;
    if (!faults_.try_emplace({std::move(target), std::move(action)}, std::move(fault)).second)
      throw std::logic_error(plugin_name_ + " plugin: " + what + " is added twice");
  }

  Outcome create(const Request &req, Call &call) { return find(req).create(req, call); }
  void destroy(const Request &req, Call &call) { find(req).destroy(req, call); }
  std::string dry_run(const Request &req, Call &call) { return find(req).dry_run(req, call); }

  bool contains(std::string_view target, std::string_view action) const {
    return faults_.find(Key(target, action)) != faults_.end();
  }
  std::size_t size() const { return faults_.size(); }

 private:
  using Key = std::pair<std::string, std::string>;

  // The host resolved aliases and checked the pair against the spec, so an
  // unrouted pair is a spec entry without code: NotSupported, naming it.
  Fault &find(const Request &req) const {
    auto it = faults_.find(Key(req.target(), req.action()));
    if (it == faults_.end()) {
      throw NotSupported(plugin_name_ + " plugin: no code for " + std::string(req.target()) + " " +
                         std::string(req.action()));
    }
    return *it->second;
  }

  std::string plugin_name_;
  std::map<Key, std::unique_ptr<Fault>> faults_;
};

}  // namespace blade::sdk

#endif  // BLADE_FAULT_ROUTER_HPP
