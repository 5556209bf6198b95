// release_code_pages() unmaps the file pages of the loaded objects and
// keeps every page the process made its own.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include <doctest/doctest.h>

#include "daemon/code_pages.hpp"
#include "../support/process_state.hpp"

// In this binary's read-only data, on a page of its own.
alignas(4096) extern const unsigned char kReadOnlyPage[4096];
alignas(4096) const unsigned char kReadOnlyPage[4096] = {1, 2, 3};

namespace {

// A read through a pointer the compiler cannot see into, so the value is
// loaded from the page, not folded from the initializer.
unsigned char read_byte(const unsigned char *p) {
  const volatile unsigned char *v = p;
  return *v;
}

}  // namespace

TEST_CASE("the file pages of the loaded objects are unmapped and come back on use") {
  const long long before = blade::test::status_kib(::getpid(), "RssFile:");
  REQUIRE(before > 0);
  const std::size_t advised = blade::server::release_code_pages();
  const long long after = blade::test::status_kib(::getpid(), "RssFile:");
  CHECK(advised > 0);
  CHECK(after < before);
  // The code that runs now (this test, doctest, libstdc++) was among them.
  CHECK(read_byte(kReadOnlyPage) == 1);
  CHECK(blade::server::release_code_pages() > 0);
}

TEST_CASE("a read-only page the process changed keeps the change") {
  // What a uprobe or a debugger's breakpoint does to a text page: the
  // process's own copy in a read-only mapping.
  auto *page = const_cast<unsigned char *>(kReadOnlyPage);
  REQUIRE(::mprotect(page, sizeof kReadOnlyPage, PROT_READ | PROT_WRITE) == 0);
  page[0] = 42;
  REQUIRE(::mprotect(page, sizeof kReadOnlyPage, PROT_READ) == 0);

  blade::server::release_code_pages();
  CHECK(read_byte(kReadOnlyPage) == 42);
  CHECK(read_byte(kReadOnlyPage + 1) == 2);
}
