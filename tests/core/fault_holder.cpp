// A stand-in for a daemon that dies with faults active: it assembles the
// engine exactly as bladed does (server::Daemon), creates one cmarker
// experiment per path given, writes their uids to <uids-file>, then waits
// to be killed.
//   fault_holder <db> <plugin-dir> <state-dir> <uids-file> <marker-path>...
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "daemon/daemon.hpp"

int main(int argc, char **argv) {
  if (argc < 6) {
    std::cerr << "usage: fault_holder DB PLUGIN_DIR STATE_DIR UIDS_FILE MARKER...\n";
    return 2;
  }
  blade::server::Config config;
  config.sqlite_path = argv[1];
  config.plugin_dirs = {argv[2]};
  config.state_dir = argv[3];
  blade::server::Daemon daemon(config);
  std::string uids;
  for (int i = 5; i < argc; ++i) {
    blade::CreateRequest r;
    r.target = "cmarker";
    r.action = "touch";
    r.flags = {{"path", argv[i]}};
    auto result = daemon.service().create(r);
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
