#include "plugin_library.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <regex>
#include <string>

#include <fmt/format.h>
#include <boost/dll/library_info.hpp>

#include "blade/core/plugin/plugin_record.hpp"

namespace blade {
namespace {

// Boost.DLL clears dlerror() before reporting a failed load, and the loader
// error ("undefined symbol: x", "invalid ELF header") is what an operator
// needs; ask the dynamic loader once more for it.
std::string dl_failure_reason(const std::filesystem::path &path) {
  void *h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h) {
    ::dlclose(h);
    return "the dynamic loader refused it";
  }
  const char *why = ::dlerror();
  return why ? why : "unknown dynamic loader error";
}

// A library without our entry symbol may still be a Blade plugin of another
// ABI major; name that major so the operator knows which build to get.
std::string missing_entry_reason(const std::filesystem::path &path) {
  try {
    boost::dll::library_info info(path);
    const std::string prefix = BLADE_PLUGIN_ENTRY_PREFIX;
    for (const std::string &sym : info.symbols()) {
      if (sym.rfind(prefix, 0) == 0 && sym != BLADE_PLUGIN_ENTRY_NAME) {
        return fmt::format(
            "ABI major mismatch: plugin is built for ABI {}, host provides ABI {}.{}",
            sym.substr(prefix.size()), BLADE_PLUGIN_ABI_MAJOR, BLADE_PLUGIN_ABI_MINOR);
      }
    }
  } catch (const std::exception &) {
    // Unreadable symbol table: fall through to the plain message.
  }
  return fmt::format("missing entry symbol {}: not a Blade plugin", BLADE_PLUGIN_ENTRY_NAME);
}

bool valid_plugin_name(const char *name) {
  static const std::regex pattern("[a-z0-9][a-z0-9_-]{0,63}");
  return name && std::regex_match(name, pattern);
}

}  // namespace

void check_plugin_file(const std::filesystem::path &path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw PluginRefused("cannot stat the file");
  if (!S_ISREG(st.st_mode)) throw PluginRefused("not a regular file");
  // A writable plugin is code anyone in that group (or anyone at all) can
  // swap for their own, running as the daemon: refuse it.
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    throw PluginRefused(
        fmt::format("file is group- or world-writable (mode {:04o}); "
                    "chmod go-w it",
                    st.st_mode & 07777));
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    throw PluginRefused(fmt::format(
        "file is owned by uid {}, not root or the daemon's user (uid {})", st.st_uid, ::geteuid()));
  }
}

void check_descriptor(const blade_plugin_descriptor *d) {
  if (!d) throw PluginRefused("entry symbol returned no descriptor");
  // The major is checked before the size: another major's struct may differ.
  if (d->abi_major != BLADE_PLUGIN_ABI_MAJOR) {
    throw PluginRefused(
        fmt::format("ABI major mismatch: plugin is built for ABI {}.{}, host provides ABI {}.{}",
                    d->abi_major, d->abi_minor, BLADE_PLUGIN_ABI_MAJOR, BLADE_PLUGIN_ABI_MINOR));
  }
  if (d->abi_minor > BLADE_PLUGIN_ABI_MINOR) {
    throw PluginRefused(fmt::format("plugin needs ABI {}.{}, newer than the host's ABI {}.{}",
                                    d->abi_major, d->abi_minor, BLADE_PLUGIN_ABI_MAJOR,
                                    BLADE_PLUGIN_ABI_MINOR));
  }
  // Minor 0 defined every field up to dry_run; a smaller struct is corrupt.
  constexpr std::size_t kMinor0Size =
      offsetof(blade_plugin_descriptor, dry_run) + sizeof(d->dry_run);
  if (d->struct_size < kMinor0Size) {
    throw PluginRefused(fmt::format("descriptor struct_size {} is smaller than ABI 1.0's {}",
                                    d->struct_size, kMinor0Size));
  }
  std::string name = d->name ? d->name : "";
  if (!valid_plugin_name(d->name)) {
    throw PluginRefused(fmt::format("invalid plugin name '{}': use [a-z0-9_-], at most 64", name));
  }
  if (!d->version || !*d->version) throw PluginRefused("plugin has no version", name);
  if (!d->init || !d->shutdown || !d->create || !d->destroy) {
    throw PluginRefused("plugin lacks a required function (init, shutdown, create, destroy)", name);
  }
  // WRITES_AHEAD (1.6) is taken whatever minor the plugin declares: it asks
  // nothing of the host, it only lets the host store less.
  constexpr std::uint64_t kKnownCaps =
      BLADE_CAP_DRY_RUN | BLADE_CAP_CONCURRENT_CALLS | BLADE_CAP_WRITES_AHEAD;
  if (d->capabilities & ~kKnownCaps) {
    throw PluginRefused(
        fmt::format("unknown capability bits {:#x} for ABI {}.{}", d->capabilities & ~kKnownCaps,
                    BLADE_PLUGIN_ABI_MAJOR, BLADE_PLUGIN_ABI_MINOR),
        name);
  }
  bool says_dry_run = (d->capabilities & BLADE_CAP_DRY_RUN) != 0;
  if (says_dry_run != (d->dry_run != nullptr)) {
    throw PluginRefused(says_dry_run ? "capability DRY_RUN is set but dry_run is NULL"
                                     : "dry_run is set but capability DRY_RUN is not",
                        name);
  }
  if (!d->spec_yaml) throw PluginRefused("plugin has no spec YAML", name);
}

PluginLibrary::PluginLibrary(const std::filesystem::path &path) : path_(path) {
  check_plugin_file(path);
  try {
    library_.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception &) {
    throw PluginRefused("cannot load: " + dl_failure_reason(path));
  }
  if (!library_.has(BLADE_PLUGIN_ENTRY_NAME)) throw PluginRefused(missing_entry_reason(path));
  auto entry = library_.get<const blade_plugin_descriptor *()>(BLADE_PLUGIN_ENTRY_NAME);
  descriptor_ = entry();
  check_descriptor(descriptor_);
}

}  // namespace blade
