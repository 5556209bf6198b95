// The one translation unit that provides doctest's main(); every other unit
// test file only includes doctest.h.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
