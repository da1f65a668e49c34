/* Run a tilecc model once on an input file; print the outputs' first values. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

/* The artifact's functions for threads (in lib/model.so; not in model.h yet). */
void tilecc_set_num_threads(int32_t n);

static void *read_aligned(const char *path, long want) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    if (want >= 0 && size != want) {
        fprintf(stderr, "%s: %ld bytes, want %ld\n", path, size, want);
        exit(1);
    }
    /* every buffer 64-byte aligned; aligned_alloc wants a multiple of the alignment */
    void *buf = aligned_alloc(64, (size_t)(size + 63) / 64 * 64);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) { perror(path); exit(1); }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s params.bin input.bin\n", argv[0]);
        return 2;
    }
    static const int64_t in_bytes[] = TILECC_INPUT_SIZES;   /* sizes are in bytes */
    static const int64_t out_bytes[] = TILECC_OUTPUT_SIZES;
    void *params = read_aligned(argv[1], TILECC_PARAMS_SIZE);
    if (tilecc_model_init(params, TILECC_PARAMS_SIZE) != 0) return 1;
    tilecc_set_num_threads(1);
    const void *inputs[TILECC_NUM_INPUTS] = {read_aligned(argv[2], in_bytes[0])};
    void *outputs[TILECC_NUM_OUTPUTS];
    for (int i = 0; i < TILECC_NUM_OUTPUTS; i++)
        outputs[i] = aligned_alloc(64, (size_t)(out_bytes[i] + 63) / 64 * 64);
    void *ws = aligned_alloc(64, (TILECC_WORKSPACE_SIZE + 63) / 64 * 64 + 64);
    int32_t rc = tilecc_model_run(inputs, outputs, ws);  /* 0 = ok; no malloc inside */
    if (rc != 0) { fprintf(stderr, "run failed: %d\n", rc); return 1; }
    const float *y = outputs[0];  /* this model's output is float32 */
    for (int64_t k = 0; k < out_bytes[0] / 4 && k < 4; k++) printf("%g ", y[k]);
    printf("\n");
    return 0;
}
