#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "blade/core/external/external_executor.hpp"
#include "blade/core/model/error.hpp"
#include "blade/core/model/log.hpp"

namespace blade {
namespace {

namespace fs = std::filesystem;

bool names_action(const ActionSpec &action, const std::string &name) {
  return action.name == name ||
         std::find(action.aliases.begin(), action.aliases.end(), name) != action.aliases.end();
}

std::string read_file(const fs::path &file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    throw Error(ErrorCode::InvalidArgument, fmt::format("cannot read spec file {}", file.string()));
  }
  return text.str();
}

// "items[0].scope: must match ...; ..." for a log line.
std::string describe(const Error &error) {
  std::string text = error.what();
  for (const auto &d : error.details())
    text += fmt::format("; {}: {}", d.field, d.description);
  return text;
}

// The *.yaml regular files of `dir`, in name order: the order decides which
// of two files serving the same action wins, so it must not depend on the
// file system's.
std::vector<fs::path> yaml_files(const fs::path &dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    throw Error(ErrorCode::FailedPrecondition,
                fmt::format("cannot read spec directory {}: {}", dir.string(), ec.message()));
  }
  std::vector<fs::path> files;
  for (const fs::directory_entry &entry : it) {
    if (entry.path().extension() == ".yaml" && entry.is_regular_file(ec)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

ExternalCatalog ExternalCatalog::from_dir(const fs::path &yaml_dir) {
  ExternalCatalog catalog;
  for (const fs::path &file : yaml_files(yaml_dir)) {
    const auto program = program_for_spec_file(file);
    if (!program) {
      log::info("skipped a spec file: its name is not chaosblade-<kind>-spec-<version>.yaml",
                {{"file", file.string()}});
      continue;
    }
    try {
      catalog.add({file, *program});
    } catch (const Error &e) {
      log::warn("skipped a spec file that does not parse",
                {{"file", file.string()}, {"error", describe(e)}});
    }
  }
  return catalog;
}

void ExternalCatalog::add(const ExternalSpecFile &file) {
  PluginSpec spec;
  try {
    spec = parse_spec_yaml(read_file(file.spec_file));
  } catch (const Error &e) {
    throw Error(ErrorCode::InvalidArgument,
                fmt::format("spec file {}: {}", file.spec_file.string(), e.what()), e.details());
  }
  // resolve() takes the first spec that serves a name, so an earlier file
  // keeps what it serves; say so rather than shadow silently.
  for (const TargetSpec &target : spec.items) {
    for (const ActionSpec &action : target.actions) {
      std::vector<std::string> names = action.aliases;
      names.insert(names.begin(), action.name);
      for (const std::string &name : names) {
        const auto first = resolve(target.scope, target.target, name);
        if (!first) continue;
        log::warn("an earlier spec file already serves this action; it keeps it",
                  {{"file", file.spec_file.string()},
                   {"scope", target.scope},
                   {"target", target.target},
                   {"action", name},
                   {"served_by", first->program}});
      }
    }
  }
  specs_.push_back(std::make_unique<Loaded>(Loaded{file.program, std::move(spec)}));
}

std::optional<ExternalCatalog::Entry> ExternalCatalog::resolve(const std::string &scope,
                                                               const std::string &target,
                                                               const std::string &action) const {
  for (const auto &loaded : specs_) {
    for (const TargetSpec &t : loaded->spec.items) {
      if (t.scope != scope || t.target != target) continue;
      for (const ActionSpec &a : t.actions) {
        if (names_action(a, action)) return Entry{&t, &a, loaded->program};
      }
    }
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, const PluginSpec *>> ExternalCatalog::specs() const {
  std::vector<std::pair<std::string, const PluginSpec *>> out;
  for (const auto &s : specs_)
    out.emplace_back(s->program, &s->spec);
  return out;
}

std::size_t ExternalCatalog::size() const {
  return specs_.size();
}

}  // namespace blade
