// destroy: through the helper that holds the fault when it still runs;
// otherwise (bladed restarted, the helper died) by the restore record
// alone, in the container it names — which may since have restarted (a new
// init: what lived in the old one's namespaces is gone, what lives in the
// rootfs is undone in the new one) or been deleted (nothing left to undo).
#include <csignal>

#include <nlohmann/json.hpp>

#include "../../common/proc_reader.hpp"
#include "container_fate.hpp"
#include "cri_plugin.hpp"
#include "result_json.hpp"

namespace blade::cri {

namespace {

// A helper of a bladed that is gone: it exits when its socket closes, so
// one still alive is stuck; only that very process (pid + start) is killed.
void end_orphan_helper(const std::optional<HelperRef> &helper) {
  if (!helper || helper->pid <= 0) return;
  plugins::proc::signal_if_same(helper->pid, helper->start, SIGKILL);
}

bool empty_record(const std::optional<std::string_view> &restore) {
  if (!restore) return true;
  const auto j = nlohmann::json::parse(*restore, nullptr, false);
  return j.is_null() || (j.is_object() && j.empty());
}

}  // namespace

void CriPlugin::stateless_destroy(const sdk::Request &req, sdk::Call &call, const OuterRecord &rec,
                                  const Container &c, const std::string &report_base) {
  InnerSetup setup;
  setup.enter = rec.enter;
  setup.enter.pid = c.init_pid;
  setup.enter.start = c.init_start;
  Live live;
  live.uid = std::string(req.uid());
  live.call = &call;
  live.rec = rec;
  live.report_base = report_base;
  call.report(report_base);  // stands when the helper reports nothing
  throw_if_failed(run_helper(live, req, "destroy", c, setup, rec.inner));
}

void CriPlugin::destroy(const sdk::Request &req, sdk::Call &call) {
  if (auto live = take_live(std::string(req.uid()));
      live && live->session && live->session->alive()) {
    live->call = &call;
    live->report_base = container_result_json(live->rec.container);
    call.report(live->report_base);
    throw_if_failed(live->session->destroy(call));
    return;
  }
  const auto restore = req.restore_json();
  if (empty_record(restore)) {
    call.report(R"({"container":null,"restored":false,"why":"no record: nothing was done"})");
    return;
  }
  const OuterRecord rec = outer_record_from_json(std::string(*restore));
  end_orphan_helper(rec.helper);
  if (!rec.inner) {
    // The record was written ahead of the helper, which changed nothing.
    nlohmann::json report = nlohmann::json::parse(container_result_json(rec.container));
    report["restored"] = false;
    report["why"] = "the fault had not changed anything inside the container";
    call.report(report.dump());
    return;
  }

  const Selector sel = parse_selector(req);
  const ContainerFate fate =
      container_fate(rec.container, sel.ns, effective_roots(sel, config_.roots));

  const std::string target(req.target()), action(req.action());
  nlohmann::ordered_json report = {{"container", ""}, {"id", rec.container.id}};
  if (fate.kind == ContainerFate::Kind::deleted) {
    report["container"] = "deleted";
    report["why"] = fate.why_gone;
    report["vanished"] = "the container, with its namespaces, cgroup and processes";
    if (outlives_init(target, action))
      report["not_restored"] = "what the fault changed in the container's rootfs went with it";
    forget_container(rec.container.id);
    call.report(report.dump());
    return;
  }
  const Container &now = *fate.now;
  if (fate.kind == ContainerFate::Kind::same) {
    stateless_destroy(req, call, rec, now, container_result_json(now));
    return;
  }
  report["container"] = "restarted";
  report["old_init_pid"] = rec.container.init_pid;
  report["init_pid"] = now.init_pid;
  report["vanished"] = vanished_with_init(target, action);
  if (outlives_init(target, action)) {
    stateless_destroy(req, call, rec, now, report.dump());
    return;
  }
  call.report(report.dump());
}

}  // namespace blade::cri
