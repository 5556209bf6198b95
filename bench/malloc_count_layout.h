/* The layout of the allocation counter file, shared by its writer
 * (bench/malloc_count.c, preloaded into the counted process) and its reader
 * (bench/malloc_counter.hpp): kMallocCountSlots slots of kMallocCountSlotBytes
 * bytes, one uint64 count at the start of each. One slot per cache line, so
 * threads counting in their own slots do not share a line. Valid C and C++. */
#ifndef BLADE_BENCH_MALLOC_COUNT_LAYOUT_H
#define BLADE_BENCH_MALLOC_COUNT_LAYOUT_H

enum { kMallocCountSlots = 1024, kMallocCountSlotBytes = 64 };

#endif
