// What the fuzz targets share: the input as text, and FUZZ_CHECK for the
// properties a parser promises beyond not crashing. A broken property
// aborts, which libFuzzer reports as a crash and saves the input, and which
// fails the replay test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(condition)                                                              \
  do {                                                                                     \
    if (!(condition)) {                                                                    \
      std::fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (false)

namespace blade::fuzz {

inline std::string input_text(const std::uint8_t *data, std::size_t size) {
  return {reinterpret_cast<const char *>(data), size};
}

}  // namespace blade::fuzz

// libFuzzer's entry point; the replay test calls the same one.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size);
