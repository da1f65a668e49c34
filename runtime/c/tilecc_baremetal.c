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

/* Profiling builds (--profile) time each kernel with this; firmware with a clock defines it
 * (runtime/c/tilecc_firmware.c: SysTick ticks). Without one every step reads 0. */
WEAK int64_t tilecc_now_ns(void) { return 0; }

WEAK void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

#if defined(__ARM_EABI__)
/* ARM EABI run-time helpers (RTABI) LLVM calls instead of the names above on ARM targets.
 * __aeabi_memset takes (dst, n, c), not memset's (dst, c, n). */
WEAK void __aeabi_memcpy(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
WEAK void __aeabi_memmove(void *dst, const void *src, size_t n) { memmove(dst, src, n); }
WEAK void __aeabi_memset(void *dst, size_t n, int c) { memset(dst, c, n); }
WEAK void __aeabi_memclr(void *dst, size_t n) { memset(dst, 0, n); }
/* The 4/8 variants only promise aligned pointers; the byte versions serve them. */
#define ALIAS(name, of) void name() __attribute__((weak, alias(#of)))
ALIAS(__aeabi_memcpy4, __aeabi_memcpy);
ALIAS(__aeabi_memcpy8, __aeabi_memcpy);
ALIAS(__aeabi_memmove4, __aeabi_memmove);
ALIAS(__aeabi_memmove8, __aeabi_memmove);
ALIAS(__aeabi_memset4, __aeabi_memset);
ALIAS(__aeabi_memset8, __aeabi_memset);
ALIAS(__aeabi_memclr4, __aeabi_memclr);
ALIAS(__aeabi_memclr8, __aeabi_memclr);

/* 64-bit division. Kernel index arithmetic is 64-bit; a 32-bit core divides it by a
 * non-power-of-two extent (a fused loop split back into its axes) through these helpers,
 * normally from libgcc, which a bare-metal object cannot assume (arm-linux-gnueabihf's
 * libgcc even raises SIGFPE through libc). Shift-subtract, one step per quotient bit: the
 * calls sit in outer loops (once per output row), where this costs nothing measurable. */
uint64_t tilecc_udivmod64(uint64_t n, uint64_t d, uint64_t *rem) {
    uint64_t q = 0;
    if (d == 0) { /* RTABI leaves x/0 to __aeabi_ldiv0; no handler here, saturate */
        *rem = n;
        return ~(uint64_t)0;
    }
    if (n >= d) {
        int shift = __builtin_clzll(d) - __builtin_clzll(n);
        d <<= shift;
        for (int i = 0; i <= shift; i++) {
            q <<= 1;
            if (n >= d) {
                n -= d;
                q |= 1;
            }
            d >>= 1;
        }
    }
    *rem = n;
    return q;
}

int64_t tilecc_divmod64(int64_t n, int64_t d, int64_t *rem) {
    uint64_t un = n < 0 ? -(uint64_t)n : (uint64_t)n, ud = d < 0 ? -(uint64_t)d : (uint64_t)d;
    uint64_t r, q = tilecc_udivmod64(un, ud, &r);
    *rem = n < 0 ? -(int64_t)r : (int64_t)r; /* C semantics: truncating division */
    return (n < 0) != (d < 0) ? -(int64_t)q : (int64_t)q;
}

/* RTABI returns the quotient in r0:r1 and the remainder in r2:r3, which C cannot express:
 * call the C routine with the remainder in a stack slot and load it into r2:r3. */
#if defined(__thumb__)
#define FUNC_MODE ".thumb\n.thumb_func\n"
#else
#define FUNC_MODE ".arm\n"
#endif
#define DIVMOD_WRAPPER(name, impl)                                                          \
    __asm__(".text\n.syntax unified\n.p2align 2\n.weak " #name "\n.type " #name ",%function\n" \
            FUNC_MODE #name ":\n"                                                           \
            "push {r4, lr}\n"                                                               \
            "sub sp, sp, #16\n"                                                             \
            "add r4, sp, #8\n"                                                              \
            "str r4, [sp]\n"                                                                \
            "bl " #impl "\n"                                                                \
            "ldrd r2, r3, [sp, #8]\n"                                                       \
            "add sp, sp, #16\n"                                                             \
            "pop {r4, pc}\n"                                                                \
            ".size " #name ", .-" #name "\n")
DIVMOD_WRAPPER(__aeabi_uldivmod, tilecc_udivmod64);
DIVMOD_WRAPPER(__aeabi_ldivmod, tilecc_divmod64);
#endif
