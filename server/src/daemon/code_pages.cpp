#include "code_pages.hpp"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <vector>

// A fault on a file page maps the 16 pages around it as well when they are
// cached (fault-around), so the startup code of every library and
// plugin (relocation, static constructors, spec parsing) leaves whole
// 64 KiB windows of text resident that the daemon never runs again: about
// two thirds of its idle RSS. MADV_DONTNEED drops the mappings of pages that
// are exactly the file's; the kernel maps them again from the page cache on
// the next touch (a minor fault, no I/O while they stay cached).
//
// Segments are found with dl_iterate_phdr, which holds the loader's lock
// through the walk: no object can be unmapped (dlclose of a reloaded plugin)
// and replaced by other memory while its ranges are advised. Within a
// read-only segment a page can still be the process's own copy: a uprobe
// (perf, bpftrace) or a debugger's breakpoint replaces the page it patches.
// /proc/self/pagemap tells those apart, and they are kept.

namespace blade::server {
namespace {

struct Range {
  std::uintptr_t begin;
  std::uintptr_t end;
};

bool has_text_relocations(const dl_phdr_info *info) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_DYNAMIC) continue;
    const auto *dyn = reinterpret_cast<const ElfW(Dyn) *>(info->dlpi_addr + ph.p_vaddr);
    for (; dyn->d_tag != DT_NULL; ++dyn) {
      if (dyn->d_tag == DT_TEXTREL) return true;
      if (dyn->d_tag == DT_FLAGS && (dyn->d_un.d_val & DF_TEXTREL)) return true;
    }
  }
  return false;
}

struct Walk {
  std::uintptr_t page;
  std::uintptr_t vdso;
  std::ifstream &pagemap;
  std::size_t advised = 0;
};

// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr std::uint64_t kPresent = 1ULL << 63;
constexpr std::uint64_t kFileOrShared = 1ULL << 61;

// Drops the runs of pages in [r) that are not the process's own copies.
void drop_file_pages(Walk &walk, const Range &r) {
  const std::size_t pages = (r.end - r.begin) / walk.page;
  std::vector<std::uint64_t> entries(pages);
  walk.pagemap.seekg(static_cast<std::streamoff>(r.begin / walk.page * sizeof(std::uint64_t)));
  walk.pagemap.read(reinterpret_cast<char *>(entries.data()),
                    static_cast<std::streamsize>(pages * sizeof(std::uint64_t)));
  if (!walk.pagemap) {
    walk.pagemap.clear();
    return;
  }
  std::size_t run = 0;  // first page of the current run of droppable pages
  for (std::size_t i = 0; i <= pages; ++i) {
    const bool own = i < pages && (entries[i] & kPresent) && !(entries[i] & kFileOrShared);
    if (i < pages && !own) continue;
    if (i > run) {
      const std::size_t len = (i - run) * walk.page;
      if (::madvise(reinterpret_cast<void *>(r.begin + run * walk.page), len, MADV_DONTNEED) == 0)
        walk.advised += len;
    }
    run = i + 1;
  }
}

void advise_object(dl_phdr_info *info, Walk &walk) {
  // The vDSO is the kernel's, not a file's.
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    if (info->dlpi_phdr[i].p_type == PT_LOAD &&
        info->dlpi_addr + info->dlpi_phdr[i].p_vaddr == walk.vdso)
      return;
  }
  if (has_text_relocations(info)) return;

  // Page-rounded ranges; a read-only range that shares a page with a
  // writable one (never, with the usual linker layouts) is left alone.
  std::vector<Range> readonly, writable;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    const Range r{start & ~(walk.page - 1), (start + ph.p_memsz + walk.page - 1) & ~(walk.page - 1)};
    ((ph.p_flags & PF_W) ? writable : readonly).push_back(r);
  }
  for (const auto &r : readonly) {
    bool shared = false;
    for (const auto &w : writable) shared = shared || (r.begin < w.end && w.begin < r.end);
    if (!shared) drop_file_pages(walk, r);
  }
}

// No exception may cross the C library's frames.
int advise_object_noexcept(dl_phdr_info *info, std::size_t, void *data) noexcept {
  try {
    advise_object(info, *static_cast<Walk *>(data));
    return 0;
  } catch (...) {
    return 1;  // out of memory: stop the walk, what was dropped stays dropped
  }
}

}  // namespace

std::size_t release_code_pages() {
  // Unbuffered: pagemap takes reads of whole 8-byte entries only.
  std::ifstream pagemap;
  pagemap.rdbuf()->pubsetbuf(nullptr, 0);
  pagemap.open("/proc/self/pagemap", std::ios::binary);
  if (!pagemap) return 0;  // no way to tell our own pages: leave all
  Walk walk{static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE)),
            static_cast<std::uintptr_t>(::getauxval(AT_SYSINFO_EHDR)), pagemap};
  ::dl_iterate_phdr(advise_object_noexcept, &walk);
  return walk.advised;
}

}  // namespace blade::server
