/* Freestanding stand-in for <string.h> (the firmware has no C library): the CMSIS-NN headers
 * only use memcpy/memset, mapped to the builtins here so that gcc expands the small constant sizes
 * inline even with -ffreestanding (which implies -fno-builtin); any
 * remaining call links to the Rust firmware's compiler_builtins `memcpy`/`memset`. Not part of
 * CMSIS-NN. */
#ifndef RUNNEL_SHIM_STRING_H
#define RUNNEL_SHIM_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
#define memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
void *memset(void *dst, int c, size_t n);
#define memset(d, c, n) __builtin_memset((d), (c), (n))
void *memmove(void *dst, const void *src, size_t n);
#endif
