#include "netem_state.hpp"

#include <filesystem>

#include "../../common/write_ahead.hpp"

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
    : root_(netem_root(host)), claims_(root_ + "/claims", plugins::Survives::ProcessCrash) {}

std::string NetemState::dir(std::string_view uid) const {
  return root_ + "/experiments/" + std::string(uid);
}

void NetemState::checkpoint(const sdk::Call &call, std::string_view uid,
                            const nlohmann::json &record) const {
  plugins::save_ahead(call, dir(uid), record, plugins::Survives::ProcessCrash);
}

nlohmann::json NetemState::record(const sdk::Request &req) const {
  return plugins::record_for_destroy(req, dir(req.uid()));
}

void NetemState::refuse_if_held(const InterfaceRef &iface, std::string_view uid) const {
  const std::string id = iface.identity();
  auto c = claims_.conflict(
      uid, [&](const std::string &other) { return other.ends_with(id); },
      [this](const plugins::Claim &c) { return stale(c); });
  if (c)
    throw sdk::AlreadyExists("interface: " + iface.name + " " + id +
                             " is already the target of active experiment " + c->uid +
                             "; destroy it first");
}

void NetemState::claim(const InterfaceRef &iface, std::string_view uid) {
  refuse_if_held(iface, uid);
  const std::string id = iface.identity();
  claims_.take(
      "interface", iface.resource(), uid, nlohmann::json::object(),
      [&](const std::string &other) { return other.ends_with(id); },
      [this](const plugins::Claim &c) { return stale(c); });
}

std::optional<std::string> NetemState::other_owner(const std::string &resource,
                                                   std::string_view uid) const {
  // By identity, so a renamed interface is still found; a record without
  // one names no interface, and so no owner.
  const auto paren = resource.find(" (netns ");
  if (paren == std::string::npos) return std::nullopt;
  const std::string id = resource.substr(paren + 1);
  auto c = claims_.conflict(
      uid, [&](const std::string &other) { return other.ends_with(id); },
      [this](const plugins::Claim &c) { return stale(c); });
  if (!c) return std::nullopt;
  return c->uid;
}

void NetemState::finish(std::string_view uid) {
  claims_.release_all(uid);
  std::error_code ec;
  const std::string d = dir(uid);
  if (!std::filesystem::exists(d, ec)) return;
  std::filesystem::remove_all(d, ec);
  if (ec) throw sdk::FailedPrecondition("cannot remove " + d + ": " + ec.message());
  plugins::sync_dir(root_ + "/experiments");
}

bool NetemState::stale(const plugins::Claim &c) const {
  std::error_code ec;
  return !std::filesystem::exists(dir(c.uid), ec);
}

}  // namespace blade::network
