#ifndef BLADE_TEST_C_LAYOUT_H
#define BLADE_TEST_C_LAYOUT_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Fills out[] with sizes and offsets as the C compiler laid them out, in
 * the order of abi_layout_test.cpp's table; returns how many there are. */
size_t blade_abi_c_layout(size_t *out, size_t cap);
#ifdef __cplusplus
}
#endif
#endif
