// The external fallback: ChaosBlade's chaosblade-exec binaries run per the
// contract in docs/design.md ("External fallback") — argv built from validated
// flags, never a shell, a deadline, stdout parsed as ChaosBlade's Response
// JSON. Hang actions keep running in the child until destroyed; their pid
// (with its start time, so a reused pid is never signalled) goes into the
// restore record.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blade/core/plugin/executor.hpp"
#include "blade/core/spec/spec.hpp"

namespace blade {

// A spec YAML of chaosblade-exec ("chaosblade-os-spec-1.7.4.yaml") and the
// binary that serves it ("chaos_os").
struct ExternalSpecFile {
  std::filesystem::path spec_file;
  std::string program;  // file name under the bin dir
};

// The file name convention: chaosblade-<kind>-spec-<version>.yaml is served
// by chaos_<kind>. nullopt for a name that does not follow it.
std::optional<std::string> program_for_spec_file(const std::filesystem::path &spec_file);

// (scope, target, action-or-alias) -> spec and program, from spec files.
class ExternalCatalog {
 public:
  struct Entry {
    const TargetSpec *target = nullptr;
    const ActionSpec *action = nullptr;
    std::string program;
  };

  // Every *.yaml in `yaml_dir` whose name follows the convention. A file
  // that fails to parse is logged and skipped.
  static ExternalCatalog from_dir(const std::filesystem::path &yaml_dir);
  // Throws blade::Error(InvalidArgument) naming the file if it does not parse.
  void add(const ExternalSpecFile &file);

  std::optional<Entry> resolve(const std::string &scope, const std::string &target,
                               const std::string &action) const;
  std::size_t size() const;
  // Each spec file's program and spec, in the order resolve() consults them.
  std::vector<std::pair<std::string, const PluginSpec *>> specs() const;

 private:
  struct Loaded {
    std::string program;
    PluginSpec spec;
  };
  std::vector<std::unique_ptr<Loaded>> specs_;
};

struct ExternalSettings {
  std::filesystem::path bin_dir;  // holds chaos_os ...
  // For create/destroy calls without a deadline of their own.
  std::chrono::milliseconds default_deadline{std::chrono::seconds(60)};
  // How long a hang action's child must stay alive to count as started.
  std::chrono::milliseconds hang_check{std::chrono::milliseconds(100)};
};

class ExternalExecutor final : public Executor {
 public:
  // `process_hang` is the action's actionProcessHang.
  ExternalExecutor(ExternalSettings settings, std::string program, bool process_hang);

  std::string name() const override;  // "external:<program>"
  CallOutcome create(const PluginRequest &request, const CallOptions &options) override;
  CallOutcome destroy(const PluginRequest &request, const CallOptions &options) override;
  // The plan: the argv create would run. Changes nothing.
  CallOutcome dry_run(const PluginRequest &request, const CallOptions &options) override;

  // The argv of `verb` (create or destroy) for `request`, as the contract
  // says: <bin>/<program> <verb> <target> <action> --uid=<uid> --k=v ...
  std::vector<std::string> argv(const std::string &verb, const PluginRequest &request) const;

 private:
  ExternalSettings settings_;
  std::string program_;
  bool process_hang_;
};

}  // namespace blade
