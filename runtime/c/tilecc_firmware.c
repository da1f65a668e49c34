/* tilecc test firmware for Cortex-M boards under qemu-system-arm (runtime/semihost.py).
 *
 * Its own minimal startup, no libc: a vector table, a reset handler that copies .data,
 * clears .bss, enables the FPU and paints the stack, then runs a bare-metal model object
 * (lib/model.o, which brings its weights and arena) once:
 *   inputs  read from in<i>.bin, outputs written to out<i>.bin, and a record of what the
 *   run cost written to run.bin, all through ARM semihosting (SYS_OPEN/SYS_READ/SYS_WRITE,
 *   relative to qemu's working directory), then SYS_EXIT_EXTENDED with the model's code.
 *
 * run.bin is int64 little endian: {model return code, SysTick ticks around <name>_run,
 * bytes of stack the model touched below its caller, profile steps n, n per-kernel tick
 * counts}. SysTick runs from the CPU clock; under `qemu -icount shift=0` each executed
 * instruction advances virtual time by 1 ns, so instructions = ticks * 1e9 / clock. The
 * per-kernel counts exist when the model was compiled with profiling timers (tilecc_now_ns
 * below).
 *
 * Build (semihost.py): arm-none-eabi-gcc <target cflags> -O2 -ffreestanding -nostdlib
 *   -nostartfiles -T fw.ld -DFW_IO_BYTES=... [-DFW_PROFILE=<name>_profile
 *   -DFW_PROFILE_COUNT=<name>_profile_count] -I include tilecc_firmware.c lib/model.o
 */
#include <stdint.h>

#include "model.h"

#ifndef FW_IO_BYTES
#error "FW_IO_BYTES (bytes of all inputs and outputs, 64-byte aligned each) is required"
#endif

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];

/* ---- semihosting */

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE = 0x05, SYS_READ = 0x06,
       SYS_EXIT_EXTENDED = 0x20 };
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static int32_t semihost(int32_t op, const void *args) {
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;
    __asm__ __volatile__("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static uint32_t length(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    return n;
}

static __attribute__((noreturn)) void fw_exit(int32_t code) {
    uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost(SYS_EXIT_EXTENDED, args);
    for (;;) {}
}

static void say(const char *msg) {  /* to qemu's stderr (handle 2 is the debug console) */
    uint32_t args[3] = {2, (uint32_t)msg, length(msg)};
    semihost(SYS_WRITE, args);
}

/* Read (mode 1 "rb") or write (mode 5 "wb") one whole file; nonzero if it is short. */
static int file_io(const char *name, int write, void *buf, uint32_t n) {
    uint32_t open[3] = {(uint32_t)name, write ? 5u : 1u, length(name)};
    int32_t h = semihost(SYS_OPEN, open);
    if (h < 0) return 1;
    uint32_t io[3] = {(uint32_t)h, (uint32_t)buf, n};
    int32_t left = semihost(write ? SYS_WRITE : SYS_READ, io);
    semihost(SYS_CLOSE, &h);
    return left != 0;
}

static void file_name(char *out, const char *stem, int k) {  /* stem + k + ".bin" */
    char digits[12];
    int n = 0;
    do digits[n++] = (char)('0' + k % 10); while ((k /= 10) > 0);
    while (*stem) *out++ = *stem++;
    while (n) *out++ = digits[--n];
    for (const char *s = ".bin"; *s; s++) *out++ = *s;
    *out = 0;
}

/* ---- SysTick: a 24-bit down counter at the CPU clock, extended by its wrap interrupt */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
static volatile uint32_t systick_wraps;

void systick_handler(void) { systick_wraps++; }

static uint64_t ticks(void) {
    uint32_t w, v;
    do {  /* a wrap between the two reads would pair an old count with a new value */
        w = systick_wraps;
        v = SYST_CVR;
    } while (w != systick_wraps);
    /* A period counts 0xFFFFFF..1, then 0, whose entry raised the wrap interrupt: 0 is the
     * last tick of the period before (and reads -1 before the first reload). */
    return v ? ((uint64_t)w << 24) + (0xFFFFFFu - v) : ((uint64_t)w << 24) - 1;
}

/* Profiling builds time each kernel with this (codegen/aot.py); "ns" here are ticks. */
int64_t tilecc_now_ns(void) { return (int64_t)ticks(); }

/* ---- the run */

#define STACK_PAINT 0x5AC3A5C3u
static uint8_t io_pool[FW_IO_BYTES] __attribute__((aligned(64)));
static int64_t record[4 + 256];

#ifdef FW_PROFILE  /* the model's profile table and its length (codegen/aot.py) */
extern int64_t FW_PROFILE[];
int64_t FW_PROFILE_COUNT(void);
#endif

static __attribute__((noreturn)) void fw_main(void) {
    static const int64_t in_sizes[] = TILECC_INPUT_SIZES, out_sizes[] = TILECC_OUTPUT_SIZES;
    const void *inputs[TILECC_NUM_INPUTS > 0 ? TILECC_NUM_INPUTS : 1];
    void *outputs[TILECC_NUM_OUTPUTS > 0 ? TILECC_NUM_OUTPUTS : 1];
    char name[24];
    uint8_t *p = io_pool;
    for (int i = 0; i < TILECC_NUM_INPUTS; i++) {
        file_name(name, "in", i);
        if (file_io(name, 0, p, (uint32_t)in_sizes[i])) {
            say("tilecc firmware: cannot read an input file\n");
            fw_exit(101);
        }
        inputs[i] = p;
        p += (in_sizes[i] + 63) & ~63;
    }
    for (int j = 0; j < TILECC_NUM_OUTPUTS; j++) {
        outputs[j] = p;
        p += (out_sizes[j] + 63) & ~63;
    }

    uint8_t *sp;  /* the model's frames start below this */
    __asm__ __volatile__("mov %0, sp" : "=r"(sp));
    int32_t rc = TILECC_MODEL_INIT(TILECC_MODEL_WEIGHTS, TILECC_PARAMS_SIZE);
    uint64_t t0 = ticks();
    if (rc == 0) rc = TILECC_MODEL_RUN(inputs, outputs, TILECC_MODEL_ARENA);
    uint64_t t1 = ticks();

    uint32_t *s = __stack_limit;  /* lowest word the run overwrote */
    while (s < __stack_top && *s == STACK_PAINT) s++;
    record[0] = rc;
    record[1] = (int64_t)(t1 - t0);
    record[2] = (int64_t)(sp - (uint8_t *)s);
    int n = 0;
#ifdef FW_PROFILE
    n = (int)FW_PROFILE_COUNT();
    for (int k = 0; k < n && k < 256; k++) record[4 + k] = FW_PROFILE[k];
#endif
    record[3] = n;
    for (int j = 0; rc == 0 && j < TILECC_NUM_OUTPUTS; j++) {
        file_name(name, "out", j);
        if (file_io(name, 1, outputs[j], (uint32_t)out_sizes[j])) fw_exit(102);
    }
    if (file_io("run.bin", 1, record, (uint32_t)((4 + n) * sizeof(int64_t)))) fw_exit(102);
    fw_exit(rc);
}

void reset_handler(void) {
    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;  /* CPACR: CP10/CP11 full access */
    __asm__ __volatile__("dsb\n isb" ::: "memory");
#endif
    uint32_t *sp;
    __asm__ __volatile__("mov %0, sp" : "=r"(sp));
    for (uint32_t *w = __stack_limit; w < sp - 16; w++) *w = STACK_PAINT;
    SYST_RVR = 0xFFFFFF;
    SYST_CVR = 0;
    SYST_CSR = 7;  /* processor clock, wrap interrupt, enable */
    fw_main();
}

void fault_handler(void) {
    say("tilecc firmware: CPU fault (HardFault/MemManage/BusFault/UsageFault)\n");
    fw_exit(103);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top, reset_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, 0, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler,
    systick_handler,
};
