/* Counts the allocations of the process it is preloaded into (LD_PRELOAD),
 * for benchmarks that report mallocs per operation: every malloc, calloc,
 * realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc and
 * pvalloc call adds one, then goes on to glibc's own allocator, so the
 * process runs as it would without it. free is not replaced: the memory
 * comes from glibc's allocator either way.
 *
 * The counts live in a file the benchmark creates and names in
 * BLADE_MALLOC_COUNT_FILE: kMallocCountSlots 64-byte slots of one uint64 each
 * (malloc_count_layout.h). A thread takes a slot of its own on its first
 * allocation (threads beyond kMallocCountSlots share, still exactly, by
 * atomic adds), so the count costs an uncontended atomic add per call
 * instead of a cache line bouncing between cores, which would be the
 * benchmark measuring the counter. The reader sums the slots.
 *
 * Only the process the benchmark started counts: the constructor removes
 * both variables from the environment, so programs it executes neither load
 * this library nor write to the file. Allocations before the constructor
 * runs (the dynamic loader's, other constructors') are not counted: a
 * benchmark reads the counts before and after its window. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "malloc_count_layout.h" /* shared with the reader, malloc_counter.hpp */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

static char *slots; /* NULL until the constructor mapped the file */
static atomic_uint next_slot;
static __attribute__((tls_model("initial-exec"))) _Thread_local unsigned my_slot_plus_one;

static void count(void) {
  char *base = slots;
  if (!base) return;
  if (!my_slot_plus_one)
    my_slot_plus_one =
        atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % kMallocCountSlots + 1;
  atomic_uint_least64_t *slot =
      (atomic_uint_least64_t *)(base + (size_t)(my_slot_plus_one - 1) * kMallocCountSlotBytes);
  atomic_fetch_add_explicit(slot, 1, memory_order_relaxed);
}

__attribute__((constructor)) static void map_counter_file(void) {
  const char *file = getenv("BLADE_MALLOC_COUNT_FILE");
  if (!file) return;
  int fd = open(file, O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    void *p = mmap(NULL, (size_t)kMallocCountSlots * kMallocCountSlotBytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) slots = p;
  }
  unsetenv("BLADE_MALLOC_COUNT_FILE");
  unsetenv("LD_PRELOAD");
}

void *malloc(size_t size) {
  count();
  return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
  count();
  return __libc_realloc(p, size);
}

void *reallocarray(void *p, size_t n, size_t size) {
  count();
  if (size && n > SIZE_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_realloc(p, n * size);
}

void *memalign(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
  count();
  /* A power of two and a multiple of sizeof(void *), as POSIX requires. */
  if (alignment % sizeof(void *) || (alignment & (alignment - 1)) || !alignment) return EINVAL;
  void *p = __libc_memalign(alignment, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void *valloc(size_t size) {
  count();
  return __libc_valloc(size);
}

void *pvalloc(size_t size) {
  count();
  return __libc_pvalloc(size);
}
