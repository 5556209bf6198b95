// A stand-in for a daemon that dies with faults active: it assembles the
// engine as bladed does, creates one cmarker experiment per path given,
// writes their uids to <uids-file>, then waits to be killed.
//   fault_holder <db> <plugin-dir> <state-dir> <uids-file> <marker-path>...
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "blade/core/experiment_service.hpp"
#include "blade/core/plugin_loader.hpp"

int main(int argc, char **argv) {
  if (argc < 6) {
    std::cerr << "usage: fault_holder DB PLUGIN_DIR STATE_DIR UIDS_FILE MARKER...\n";
    return 2;
  }
  blade::Store store(argv[1]);
  blade::Registry registry;
  blade::load_plugins(blade::discover_plugin_files({argv[2]}), {"test", argv[3]}, registry);
  blade::Scheduler scheduler(2);
  blade::EventBus events;
  blade::ExperimentService service(store, registry, nullptr, scheduler, events, nullptr);
  std::string uids;
  for (int i = 5; i < argc; ++i) {
    blade::CreateRequest r;
    r.target = "cmarker";
    r.action = "touch";
    r.flags = {{"path", argv[i]}};
    auto result = service.create(r);
    if (result.experiment.status != blade::ExperimentStatus::Running) return 1;
    uids += result.experiment.uid + "\n";
  }
  {
    std::ofstream out(std::string(argv[4]) + ".tmp");
    out << uids;
  }
  std::rename((std::string(argv[4]) + ".tmp").c_str(), argv[4]);
  for (;;)
    ::pause();  // until SIGKILL
}
