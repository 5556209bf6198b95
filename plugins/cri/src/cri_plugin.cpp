#include "cri_plugin.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "../../common/write_ahead.hpp"
#include "container_fate.hpp"
#include "container_flags.hpp"
#include "result_json.hpp"

namespace blade::cri {

// Generated at build time (tools/cri_spec.py) from the os, disk and network
// plugins' specs and spec-yaml/container-flags.yaml.
extern const unsigned char kSpecYaml[];

void throw_if_failed(const HelperDone &done) {
  if (done.status != BLADE_STATUS_OK) throw sdk::Error(done.status, done.error);
}

CriPlugin::CriPlugin(sdk::Host host) : host_(host), config_(plugin_config(host)) {}

std::string CriPlugin::container_state_dir(const std::string &id) const {
  // Ids come from the runtime's state; one that could leave the directory is
  // not a container this plugin acts on.
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos)
    throw sdk::Error(BLADE_STATUS_INTERNAL, "container id '" + id + "' is not a file name");
  return host_.state_dir() + "/containers/" + id;
}

HelperDone CriPlugin::run_helper(Live &live, const sdk::Request &req, const std::string &op,
                                 const Container &c, const InnerSetup &setup,
                                 std::optional<std::string> inner_restore) {
  HelperRequest hr;
  hr.op = op;
  // A dry run has no experiment, so no uid; the helper's request needs one
  // (its inner faults name their records and tables by it, and refuse what
  // a uid cannot hold, like '-'), and nothing is recorded.
  hr.uid = req.uid().empty() ? std::string("dryrun") : std::string(req.uid());
  hr.target = std::string(req.target());
  hr.action = std::string(req.action());
  for (std::size_t i = 0; i < req.flag_count(); ++i)
    if (!is_container_flag(req.flag_name(i)))
      hr.flags.emplace_back(std::string(req.flag_name(i)), std::string(req.flag_value(i)));
  hr.restore_json = std::move(inner_restore);
  hr.enter = setup.enter;
  // The inner faults keep their records and backups here: nobody else may
  // look in. Their own records are synced as they write them.
  hr.state_dir = container_state_dir(c.id);
  plugins::make_private_dir(hr.state_dir, plugins::Survives::ProcessCrash);
  hr.daemon_pid = host_.daemon_pid();
  hr.config_json = setup.config_json;
  // The call's budget (none: INT64_MAX from the host) as the helper's; one
  // already spent is 1 ms, since 0 would mean none.
  const std::int64_t remaining = live.call->remaining_ms();
  hr.deadline_ms = remaining == INT64_MAX ? 0 : std::max<std::int64_t>(remaining, 1);

  HelperHooks hooks;
  Live *l = &live;
  // save_restore, report and progress come only while a call is served
  // (create's, destroy's), on its thread: the session drops them otherwise.
  // The watcher between calls forwards only logs and the end.
  hooks.save_restore = [l](const std::string &inner) {
    if (!l->call) throw std::logic_error("save_restore outside a call");
    l->rec.inner = inner;
    if (l->session) l->rec.helper = HelperRef{l->session->pid(), l->session->start_time()};
    l->call->save_restore(to_json(l->rec));
  };
  const std::string host_state = hr.state_dir;
  hooks.report = [l, host_state](const std::string &report) {
    if (l->call)
      l->call->report(merge_objects(l->report_base, with_host_paths(report, host_state), "inner"));
  };
  hooks.progress = [l](int percent, const std::string &note) {
    if (l->call) l->call->progress(percent, note);
  };
  const sdk::Host host = host_;
  const std::string uid = hr.uid;
  hooks.log = [host, uid](blade_log_level level, const std::string &message) {
    host.log(level, "cri " + uid + ": " + message);
  };
  const std::string target = hr.target, action = hr.action;
  hooks.fault_ended = [this, l, target, action](const std::string &reason) {
    helper_ended(*l, target, action, reason);
  };
  live.session = HelperSession::start(config_.helper_path, hr, std::move(hooks));
  return live.session->wait_done(*live.call);
}

void CriPlugin::forget_container(const std::string &id) const {
  std::error_code ec;
  std::filesystem::remove_all(container_state_dir(id), ec);
}

void CriPlugin::helper_ended(const Live &l, const std::string &target, const std::string &action,
                             const std::string &reason) const {
  // The experiment ends when its fault is gone: with the container, with
  // the old init's namespaces and cgroup (restarted), or with the helper it
  // lived in. Otherwise it stays active, so that its destroy undoes what is
  // still there (a file in the rootfs, an nft table in a live netns, a
  // stopped process), in a restarted container too.
  const ContainerFate fate =
      settled_container_fate(l.rec.container, l.ns_fallback, l.roots, kInitExitSettle);
  const std::string &id = l.rec.container.id;
  if (fate.kind == ContainerFate::Kind::deleted) {
    forget_container(id);
    host_.fault_ended(l.uid, "container " + id + " was deleted (" + fate.why_gone + "): " + reason);
  } else if (fate.kind == ContainerFate::Kind::restarted && !outlives_init(target, action)) {
    host_.fault_ended(l.uid, "container " + id + " restarted; gone with its old init: " +
                                 vanished_with_init(target, action) + " (" + reason + ")");
  } else if (fate.kind == ContainerFate::Kind::same && lives_in_helper(target, action)) {
    host_.fault_ended(l.uid, reason);
  } else {
    host_.warn("cri " + l.uid + ": " + reason +
               "; what the fault changed in the container stays until the experiment is "
               "destroyed");
  }
}

std::unique_ptr<CriPlugin::Live> CriPlugin::take_live(const std::string &uid) {
  std::lock_guard lock(mu_);
  auto it = live_.find(uid);
  if (it == live_.end()) return nullptr;
  auto out = std::move(it->second);
  live_.erase(it);
  return out;
}

}  // namespace blade::cri

BLADE_PLUGIN(blade::cri::CriPlugin, "cri", "0.1.0",
             reinterpret_cast<const char *>(blade::cri::kSpecYaml))
