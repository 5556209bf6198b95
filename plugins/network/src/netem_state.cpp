#include "netem_state.hpp"

namespace blade::network {
namespace {

std::string netem_root(const sdk::Host &host) {
  const std::string state = host.state_dir();
  if (state.empty()) throw sdk::FailedPrecondition("the daemon gave the plugin no state dir");
  return state + "/netem";
}

}  // namespace

// The record and the claims without fsync: they describe qdiscs, which
// live in the kernel's memory. A crash of the daemon loses nothing written
// (the page cache keeps it); a power cut or a kernel crash, which could
// lose unsynced writes, takes the qdiscs with it, leaving nothing to undo.
// (The host's copy of the record is stored as the host decides.)
NetemState::NetemState(const sdk::Host &host)
    : dirs_(netem_root(host) + "/experiments", netem_root(host) + "/claims",
            plugins::Survives::ProcessCrash) {}

std::string NetemState::dir(std::string_view uid) const { return dirs_.dir(uid); }

void NetemState::checkpoint(const sdk::Call &call, std::string_view uid,
                            const nlohmann::json &record) const {
  dirs_.checkpoint(call, uid, record);
}

nlohmann::json NetemState::record(const sdk::Request &req) const { return dirs_.record(req); }

namespace {

// A claim on the same interface: matched by its identity (netns, ifindex),
// so a renamed interface is still found.
auto same_interface(const std::string &id) {
  return [id](const std::string &other) { return other.ends_with(id); };
}

}  // namespace

void NetemState::refuse_if_held(const InterfaceRef &iface, std::string_view uid) const {
  const std::string id = iface.identity();
  if (auto c = dirs_.conflict(uid, same_interface(id)))
    throw sdk::AlreadyExists("interface: " + iface.name + " " + id +
                             " is already the target of active experiment " + c->uid +
                             "; destroy it first");
}

void NetemState::claim(const InterfaceRef &iface, std::string_view uid) {
  refuse_if_held(iface, uid);
  dirs_.take("interface", iface.resource(), uid, nlohmann::json::object(),
             same_interface(iface.identity()));
}

std::optional<std::string> NetemState::other_owner(const std::string &resource,
                                                   std::string_view uid) const {
  // By identity; a record without one names no interface, and so no owner.
  const auto paren = resource.find(" (netns ");
  if (paren == std::string::npos) return std::nullopt;
  auto c = dirs_.conflict(uid, same_interface(resource.substr(paren + 1)));
  if (!c) return std::nullopt;
  return c->uid;
}

void NetemState::finish(std::string_view uid) { dirs_.finish(uid); }

}  // namespace blade::network
