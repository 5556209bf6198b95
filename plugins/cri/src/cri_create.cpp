// create and dry_run: find the container, then let the helper run the fault
// (or its plan) inside it.
#include <utility>

#include "cri_plugin.hpp"
#include "result_json.hpp"

namespace blade::cri {

sdk::Outcome CriPlugin::create(const sdk::Request &req, sdk::Call &call) {
  check_offered(req.target(), req.action());
  const Selector sel = parse_selector(req);
  const Container c = find_container(sel, config_.roots);
  const InnerSetup setup = inner_setup(req.target(), req.action(), c);

  auto live = std::make_unique<Live>();
  live->uid = std::string(req.uid());
  live->call = &call;
  live->roots = effective_roots(sel, config_.roots);
  live->ns_fallback = sel.ns;
  live->rec.container = c;
  live->rec.container.labels.clear();
  live->rec.enter = setup.enter;
  // Ahead of the helper: a crash from here on leaves destroy the container
  // and what was entered, and nothing inside to undo yet.
  call.save_restore(to_json(live->rec));

  const HelperDone done = run_helper(*live, req, "create", c, setup, std::nullopt);
  throw_if_failed(done);
  live->rec.inner = done.restore_json;
  live->rec.helper = HelperRef{live->session->pid(), live->session->start_time()};
  sdk::Outcome out;
  out.result_json = merge_objects(container_result_json(c),
                                  with_host_paths(done.result_json, container_state_dir(c.id)),
                                  "result");
  out.restore_json = to_json(live->rec);
  live->call = nullptr;
  std::lock_guard lock(mu_);
  live_[live->uid] = std::move(live);
  return out;
}

std::string CriPlugin::dry_run(const sdk::Request &req, sdk::Call &call) {
  check_offered(req.target(), req.action());
  const Selector sel = parse_selector(req);
  const Container c = find_container(sel, config_.roots);
  const InnerSetup setup = inner_setup(req.target(), req.action(), c);
  Live live;
  live.uid = std::string(req.uid());
  live.call = &call;
  live.rec.container = c;
  live.rec.enter = setup.enter;
  const HelperDone done = run_helper(live, req, "dry_run", c, setup, std::nullopt);
  throw_if_failed(done);
  return merge_objects(container_result_json(c),
                       "{\"plan\":" + with_host_paths(done.plan_json, container_state_dir(c.id)) +
                           "}",
                       "plan");
}

}  // namespace blade::cri
