/* tilecc_runner: run a tilecc artifact from C, with raw binary files as inputs and outputs.
 *
 * One program for every model: the sizes and entry points come from the artifact's
 * include/model.h. Build it against an unpacked artifact (python: tilecc.runtime.crunner):
 *
 *   tar xf model.tar -C model
 *   cc -O2 -I model/include tilecc_runner.c model/lib/model.so \
 *      -Wl,-rpath,'$ORIGIN' -Wl,-rpath,"$PWD/model/lib" -o tilecc_runner
 *   # cross: aarch64-linux-gnu-gcc ... then qemu-aarch64 -L /usr/aarch64-linux-gnu ./tilecc_runner
 *
 * Usage:
 *   tilecc_runner [-r REPEAT] [-b] params.bin in0.bin ... inN.bin out0.bin ... outM.bin
 *
 * Inputs are raw dense row-major tensors (numpy: arr.tofile()); each file size must equal
 * the model's input size. With -r the model runs REPEAT times and per-run wall time (ms) is
 * printed to stderr as "tilecc_runner: run ms: min=... median=...".
 * With -b the runner prints where the model library and the runner itself were loaded
 * ("tilecc_runner: bases library=0x... runner=0x...") and waits for a line on stdin before
 * doing anything else: an instruction counter reading qemu's log (tilecc.runtime.icount)
 * needs the addresses before the model's code runs, and the wait keeps that race-free.
 * Threads: TILECC_NUM_THREADS (default: available cores; capped at 4 per core; not a positive
 * integer: a warning and the default).
 * Exit codes: 0 ok, 1 usage, 2 bad input file, 3 model init/run error, 4 out of memory/IO,
 * 5 the library was not built for this header (edited artifact, mixed builds).
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

#define ALIGN 64

static void *aligned_alloc64(size_t size) {
    void *p = NULL;
    /* posix_memalign(…, 0) may return NULL; models may still be handed the pointer */
    if (posix_memalign(&p, ALIGN, size ? size : ALIGN) != 0) return NULL;
    return p;
}

/* Reads a whole file into 64-byte aligned memory; checks its size is `expect` bytes. */
static void *read_file(const char *path, int64_t expect, const char *what) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tilecc_runner: cannot open %s %s: %s\n", what, path, strerror(errno));
        exit(2);
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fprintf(stderr, "tilecc_runner: cannot seek %s\n", path);
        exit(2);
    }
    long size = ftell(f);
    rewind(f);
    if (size != (long)expect) {
        fprintf(stderr, "tilecc_runner: %s %s has %ld bytes, the model expects %lld\n", what,
                path, size, (long long)expect);
        exit(2);
    }
    void *buf = aligned_alloc64((size_t)expect);
    if (!buf) {
        fprintf(stderr, "tilecc_runner: out of memory reading %s\n", path);
        exit(4);
    }
    if (expect && fread(buf, 1, (size_t)expect, f) != (size_t)expect) {
        fprintf(stderr, "tilecc_runner: short read on %s\n", path);
        exit(4);
    }
    fclose(f);
    return buf;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The header (from model.json) against the sizes compiled into the library, before any model
 * function runs: a header that disagrees would size every buffer below wrongly. */
static void check_abi(const int64_t *input_sizes, const int64_t *output_sizes) {
    const int64_t *lib = TILECC_MODEL_ABI_SIZES;
    const int64_t head[] = {TILECC_ABI_VERSION, TILECC_NUM_INPUTS, TILECC_NUM_OUTPUTS,
                            TILECC_WORKSPACE_SIZE, TILECC_PARAMS_SIZE};
    static const char *const what[] = {"ABI version", "number of inputs", "number of outputs",
                                       "workspace size", "params size"};
    for (int k = 0; k < 5; k++) {
        if (lib[k] != head[k]) {
            fprintf(stderr, "tilecc_runner: model.h says %s %lld, the library was built for "
                    "%lld; compile the model again\n", what[k], (long long)head[k],
                    (long long)lib[k]);
            exit(5);
        }
    }
    for (int i = 0; i < TILECC_NUM_INPUTS + TILECC_NUM_OUTPUTS; i++) {
        int is_in = i < TILECC_NUM_INPUTS;
        int64_t want = is_in ? input_sizes[i] : output_sizes[i - TILECC_NUM_INPUTS];
        if (lib[5 + i] != want) {
            fprintf(stderr, "tilecc_runner: model.h says %s %d has %lld bytes, the library "
                    "was built for %lld; compile the model again\n", is_in ? "input" : "output",
                    is_in ? i : i - TILECC_NUM_INPUTS, (long long)want, (long long)lib[5 + i]);
            exit(5);
        }
    }
}

/* -b: see the header comment. */
static void report_bases(void) {
    Dl_info lib, self;
    if (!dladdr((void *)TILECC_MODEL_RUN, &lib) || !dladdr((void *)&report_bases, &self)) {
        fprintf(stderr, "tilecc_runner: dladdr failed\n");
        exit(4);
    }
    fprintf(stderr, "tilecc_runner: bases library=%p runner=%p\n", lib.dli_fbase,
            self.dli_fbase);
    fflush(stderr);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) exit(1);
}

int main(int argc, char **argv) {
    static const int64_t input_sizes[] = TILECC_INPUT_SIZES;
    static const int64_t output_sizes[] = TILECC_OUTPUT_SIZES;
    static const char *const input_names[] = TILECC_INPUT_NAMES;
    static const char *const output_names[] = TILECC_OUTPUT_NAMES;
    const void *inputs[TILECC_NUM_INPUTS + 1];
    void *outputs[TILECC_NUM_OUTPUTS + 1];
    long repeat = 0;

    check_abi(input_sizes, output_sizes);
    int arg = 1;
    if (arg + 1 < argc && strcmp(argv[arg], "-r") == 0) {
        repeat = strtol(argv[arg + 1], NULL, 10);
        if (repeat < 1) {
            fprintf(stderr, "tilecc_runner: -r wants a positive count\n");
            return 1;
        }
        arg += 2;
    }
    if (arg < argc && strcmp(argv[arg], "-b") == 0) {
        report_bases();
        arg++;
    }
    if (argc - arg != 1 + TILECC_NUM_INPUTS + TILECC_NUM_OUTPUTS) {
        fprintf(stderr, "usage: %s [-r REPEAT] params.bin", argv[0]);
        for (int i = 0; i < TILECC_NUM_INPUTS; i++) fprintf(stderr, " %s.bin", input_names[i]);
        for (int i = 0; i < TILECC_NUM_OUTPUTS; i++) fprintf(stderr, " %s.bin", output_names[i]);
        fprintf(stderr, "\n  model %s: %d input(s), %d output(s)\n", TILECC_MODEL_NAME,
                TILECC_NUM_INPUTS, TILECC_NUM_OUTPUTS);
        return 1;
    }

    void *params = read_file(argv[arg++], TILECC_PARAMS_SIZE, "params");
    for (int i = 0; i < TILECC_NUM_INPUTS; i++) {
        char what[256];
        snprintf(what, sizeof what, "input %d (%s)", i, input_names[i]);
        inputs[i] = read_file(argv[arg++], input_sizes[i], what);
    }
    for (int i = 0; i < TILECC_NUM_OUTPUTS; i++) {
        outputs[i] = aligned_alloc64((size_t)output_sizes[i]);
        if (!outputs[i]) {
            fprintf(stderr, "tilecc_runner: out of memory\n");
            return 4;
        }
    }
    int64_t ws_size = TILECC_MODEL_WORKSPACE_SIZE();
    void *workspace = aligned_alloc64((size_t)ws_size);
    if (!workspace) {
        fprintf(stderr, "tilecc_runner: cannot allocate a %lld-byte workspace\n",
                (long long)ws_size);
        return 4;
    }

    int32_t rc = TILECC_MODEL_INIT(params, TILECC_PARAMS_SIZE);
    if (rc != 0) {
        fprintf(stderr, "tilecc_runner: %s_init failed with code %d\n", TILECC_MODEL_NAME, rc);
        return 3;
    }
    long runs = repeat ? repeat : 1;
    double *times = malloc(sizeof(double) * (size_t)runs);
    if (!times) return 4;
    for (long r = 0; r < runs; r++) {
        double t0 = now_ms();
        rc = TILECC_MODEL_RUN(inputs, outputs, workspace);
        times[r] = now_ms() - t0;
        if (rc != 0) {
            fprintf(stderr, "tilecc_runner: %s_run failed with code %d\n", TILECC_MODEL_NAME,
                    rc);
            return 3;
        }
    }
    if (repeat) {
        qsort(times, (size_t)runs, sizeof(double), cmp_double);
        fprintf(stderr, "tilecc_runner: run ms: min=%.4f median=%.4f max=%.4f runs=%ld\n",
                times[0], times[runs / 2], times[runs - 1], runs);
    }

    for (int i = 0; i < TILECC_NUM_OUTPUTS; i++) {
        const char *path = argv[arg++];
        FILE *f = fopen(path, "wb");
        if (!f || (output_sizes[i] &&
                   fwrite(outputs[i], 1, (size_t)output_sizes[i], f) != (size_t)output_sizes[i])
            || fclose(f) != 0) {
            fprintf(stderr, "tilecc_runner: cannot write output %s to %s\n", output_names[i],
                    path);
            return 4;
        }
    }
    return 0;
}
