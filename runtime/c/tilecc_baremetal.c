/* tilecc bare-metal runtime: the few C library routines a model object may still call.
 *
 * A bare-metal model (tilecc compile --bare-metal) is single-threaded, allocates nothing and
 * has its math inlined, but LLVM turns copy and fill loops into memcpy/memset/memmove calls.
 * They are defined here (weak, so a libc linked next to the model wins) and combined with
 * the model into one relocatable lib/model.o, which therefore has no undefined symbols.
 *
 * Build (tilecc.codegen.link does this): cc -O2 -ffreestanding -fno-builtin
 *   -fno-tree-loop-distribute-patterns -c tilecc_baremetal.c
 * The last flag stops gcc from recognising these very loops as memcpy/memset again.
 */
#include <stddef.h>
#include <stdint.h>

#define WEAK __attribute__((weak))

WEAK void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    /* Word copies when both are aligned alike: weights and tensors are 64-byte aligned. */
    if ((((uintptr_t)d | (uintptr_t)s) & (sizeof(uintptr_t) - 1)) == 0) {
        for (; n >= sizeof(uintptr_t); n -= sizeof(uintptr_t)) {
            *(uintptr_t *)(void *)d = *(const uintptr_t *)(const void *)s;
            d += sizeof(uintptr_t);
            s += sizeof(uintptr_t);
        }
    }
    while (n--) *d++ = *s++;
    return dst;
}

WEAK void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d == s || n == 0) return dst;
    if (d < s || d >= s + n) return memcpy(dst, src, n);
    while (n--) d[n] = s[n];
    return dst;
}

WEAK void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
