// The os plugin: cpu, mem, process, file and script faults, built on the SDK
// like any third-party plugin. Each family lives in its own file; this one
// only routes calls to them.
#include <string>

#include <blade/plugin.hpp>

#include "fault.hpp"

namespace blade::os {

// Generated from spec-yaml/os.yaml at build time.
extern const unsigned char kSpecYaml[];

namespace {

class OsPlugin {
 public:
  explicit OsPlugin(Host host) {
    register_cpu_faults(faults_, host);
    register_mem_faults(faults_, host);
    register_process_faults(faults_, host);
    register_file_faults(faults_, host);
    register_script_faults(faults_, host);
    register_strace_faults(faults_, host);
    register_time_faults(faults_, host);
    register_systemd_faults(faults_, host);
  }

  Outcome create(const Request &req, Call &call) { return fault(req).create(req, call); }
  void destroy(const Request &req, Call &call) { fault(req).destroy(req, call); }
  std::string dry_run(const Request &req, Call &call) { return fault(req).plan(req, call); }

 private:
  // The host resolved aliases and validated flags against the spec, so an
  // unknown pair here is a spec entry without code: a bug of this plugin.
  Fault &fault(const Request &req) {
    auto it = faults_.find({std::string(req.target()), std::string(req.action())});
    if (it == faults_.end()) {
      throw sdk::NotSupported("os plugin: no code for " + std::string(req.target()) + " " +
                              std::string(req.action()));
    }
    return *it->second;
  }

  FaultTable faults_;
};

}  // namespace
}  // namespace blade::os

BLADE_PLUGIN(blade::os::OsPlugin, "os", "0.1.0",
             reinterpret_cast<const char *>(blade::os::kSpecYaml))
