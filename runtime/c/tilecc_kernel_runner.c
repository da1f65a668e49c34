/* tilecc_kernel_runner: run and time one autotuning candidate kernel without Python.
 *
 * The autotuner builds each candidate as a shared library with an entry
 * `int32_t ENTRY(void **args)` (tilecc.autotune.worker.do_build). This program loads such a
 * library, gives the entry 64-byte aligned buffers, runs it once to capture its outputs, then
 * times it the way the Python worker does (tilecc.autotune.worker._TIMER_C). It is what runs
 * on a board over SSH and under qemu-user, where there is no Python (tilecc.autotune.kernelrun
 * builds it with the target's cross gcc and drives it).
 *
 * Usage:
 *   tilecc_kernel_runner [-n NUMBER] [-r REPEAT] [-m MIN_REPEAT_MS] [-f FLUSH_BYTES]
 *                        [-j THREADS] [-x] LIB ENTRY ARG...
 *   ARG: in:BYTES:PATH    read BYTES from PATH (raw, row-major)
 *        out:BYTES:PATH   written to PATH after the first call
 *        scratch:BYTES    working memory only
 *   -x   check only: one call, outputs written, no timing.
 *
 * Outputs and scratch start as 0xFF bytes (NaN for floats), so an output element the kernel
 * never writes cannot match the reference by luck.
 *
 * Stdout, one line each: "number N" (calls per repeat), then "cost SECONDS" per repeat
 * (seconds per call). Exit codes: 0 ok, 1 usage, 2 library or entry not loadable, 3 bad input
 * file, 4 out of memory or output not writable, 5 the kernel returned non-zero.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALIGN 64
#define MAX_ARGS 64

typedef int32_t (*entry_t)(void **);
typedef void (*set_threads_t)(int32_t);

static const char *prog = "tilecc_kernel_runner";

static void die(int code, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(code);
}

static void *alloc64(size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, size ? size : ALIGN) != 0) die(4, "out of memory%s%s", "", "");
    return p;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void read_input(const char *path, void *buf, long long bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) die(3, "cannot open input %s: %s", path, strerror(errno));
    size_t got = fread(buf, 1, (size_t)bytes, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    /* A size mismatch means host and runner disagree about the arguments: say so rather than
     * run the kernel on half-filled memory. */
    if ((long long)got != bytes || extra) die(3, "input %s does not have the expected size%s",
                                              path, "");
}

static void write_output(const char *path, const void *buf, long long bytes) {
    FILE *f = fopen(path, "wb");
    if (!f) die(4, "cannot write output %s: %s", path, strerror(errno));
    if (fwrite(buf, 1, (size_t)bytes, f) != (size_t)bytes || fclose(f) != 0)
        die(4, "short write to output %s%s", path, "");
}

static void kernel_failed(int32_t rc) {
    fprintf(stderr, "%s: kernel returned %d\n", prog, (int)rc);
    exit(5);
}

/* Seconds per call over `number` back-to-back calls. */
static double time_warm(entry_t fn, void **args, int32_t number) {
    double a = now_s();
    for (int32_t i = 0; i < number; i++) {
        int32_t rc = fn(args);
        if (rc != 0) kernel_failed(rc);
    }
    return (now_s() - a) / number;
}

/* Each call timed alone after reading `flush_bytes` of other memory, so the kernel meets its
 * data in outer caches as inside a model run; reads, not writes, so the timed call is not
 * billed for write-backs (see worker._TIMER_C). */
static double time_cold(entry_t fn, void **args, int32_t number, const volatile char *flush,
                        long long flush_bytes) {
    double total = 0.0;
    volatile char sink = 0;
    for (int32_t i = 0; i < number; i++) {
        char acc = 0;
        for (long long j = 0; j < flush_bytes; j += 64) acc ^= flush[j];
        sink = acc;
        double a = now_s();
        int32_t rc = fn(args);
        double b = now_s();
        if (rc != 0) kernel_failed(rc);
        total += b - a;
    }
    (void)sink;
    return total / number;
}

static long long parse_ll(const char *s, const char *what) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) die(1, "bad %s: %s", what, s);
    return v;
}

int main(int argc, char **argv) {
    int32_t number = 1, repeat = 3, threads = 0;
    double min_repeat_ms = 0.0;
    long long flush_bytes = 0;
    int check_only = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        char opt = argv[i][1];
        if (opt == 'x') {
            check_only = 1;
            continue;
        }
        if (i + 1 >= argc) die(1, "option %s needs a value%s", argv[i], "");
        const char *v = argv[++i];
        switch (opt) {
        case 'n': number = (int32_t)parse_ll(v, "-n"); break;
        case 'r': repeat = (int32_t)parse_ll(v, "-r"); break;
        case 'j': threads = (int32_t)parse_ll(v, "-j"); break;
        case 'f': flush_bytes = parse_ll(v, "-f"); break;
        case 'm': {
            char *end = NULL;
            min_repeat_ms = strtod(v, &end);
            if (end == v || *end || min_repeat_ms < 0) die(1, "bad -m: %s%s", v, "");
            break;
        }
        default: die(1, "unknown option %s%s", argv[i - 1], "");
        }
    }
    if (argc - i < 3) {
        fprintf(stderr, "usage: %s [-n N] [-r R] [-m MS] [-f BYTES] [-j THREADS] [-x] LIB "
                        "ENTRY in:BYTES:PATH|out:BYTES:PATH|scratch:BYTES ...\n", prog);
        return 1;
    }
    const char *lib = argv[i], *entry_name = argv[i + 1];
    i += 2;
    int nargs = argc - i;
    if (nargs > MAX_ARGS) die(1, "too many arguments (at most %d)%s", "64", "");

    void *args[MAX_ARGS];
    long long bytes[MAX_ARGS];
    const char *out_path[MAX_ARGS];
    for (int k = 0; k < nargs; k++, i++) {
        char *spec = argv[i];
        char *colon = strchr(spec, ':');
        if (!colon) die(1, "bad argument spec %s%s", spec, "");
        *colon = '\0';
        char *rest = colon + 1;
        char *colon2 = strchr(rest, ':');
        const char *path = NULL;
        if (colon2) {
            *colon2 = '\0';
            path = colon2 + 1;
        }
        bytes[k] = parse_ll(rest, "argument size");
        args[k] = alloc64((size_t)bytes[k]);
        out_path[k] = NULL;
        if (strcmp(spec, "in") == 0 && path) {
            read_input(path, args[k], bytes[k]);
        } else if (strcmp(spec, "out") == 0 && path) {
            memset(args[k], 0xFF, (size_t)bytes[k]);
            out_path[k] = path;
        } else if (strcmp(spec, "scratch") == 0 && !path) {
            memset(args[k], 0xFF, (size_t)bytes[k]);
        } else {
            die(1, "bad argument spec %s:%s", spec, rest);
        }
    }

    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) die(2, "cannot load %s: %s", lib, dlerror());
    entry_t fn;
    /* POSIX's sanctioned way to turn dlsym's object pointer into a function pointer. */
    *(void **)(&fn) = dlsym(h, entry_name);
    if (!fn) die(2, "no entry %s in %s", entry_name, lib);
    if (threads > 0) {
        set_threads_t set;
        *(void **)(&set) = dlsym(h, "tilecc_set_num_threads");
        if (set) set(threads);
    }

    double first = time_warm(fn, args, 1);
    for (int k = 0; k < nargs; k++)
        if (out_path[k]) write_output(out_path[k], args[k], bytes[k]);
    if (check_only) return 0;

    /* As worker.do_run: grow `number` until a repeat lasts min_repeat_ms, except when every
     * call follows a cache flush (each call is timed alone, and flushes are costly). */
    if (min_repeat_ms > 0 && first > 0) {
        double want = min_repeat_ms / 1000.0 / first + 1;
        if (want > 1e6) want = 1e6;
        if ((int32_t)want > number) number = (int32_t)want;
    }
    char *flush = NULL;
    if (flush_bytes > 0) {
        if (number > 5) number = 5;
        flush = alloc64((size_t)flush_bytes);
        /* Written once so every page is really backed: untouched pages all read the kernel's
         * single zero page and would flush nothing. */
        memset(flush, 1, (size_t)flush_bytes);
    }
    if (number < 1) number = 1;
    printf("number %d\n", (int)number);
    for (int32_t r = 0; r < (repeat > 0 ? repeat : 1); r++) {
        double c = flush ? time_cold(fn, args, number, flush, flush_bytes)
                         : time_warm(fn, args, number);
        printf("cost %.9e\n", c);
    }
    fflush(stdout);
    return 0;
}
