/* One model behind a function of its own: compile this file once per model, with that model's
 * include/ directory and -DCALL=<function name>. Each model.h stays in its own translation
 * unit, so the TILECC_* size macros of two models never meet. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static void *aligned_copy(const void *src, int64_t n) {
    void *p = aligned_alloc(64, (size_t)(n + 63) / 64 * 64 + 64);  /* 64-byte aligned */
    if (p && src) memcpy(p, src, (size_t)n);
    return p;
}

/* Bind params (once), run on one input tensor, copy the first output to `out`; returns the
 * output's size in bytes, or -1 on an error. */
int64_t CALL(const void *params, int64_t params_size, const void *input, void *out) {
    static const int64_t in_bytes[] = TILECC_INPUT_SIZES;
    static const int64_t out_bytes[] = TILECC_OUTPUT_SIZES;
    static void *bound, *ws;
    if (!bound) {
        if (params_size != TILECC_PARAMS_SIZE) return -1;
        bound = aligned_copy(params, TILECC_PARAMS_SIZE);
        ws = aligned_copy(NULL, TILECC_WORKSPACE_SIZE);
        if (TILECC_MODEL_INIT(bound, TILECC_PARAMS_SIZE) != 0) return -1;
    }
    const void *inputs[TILECC_NUM_INPUTS] = {aligned_copy(input, in_bytes[0])};
    void *outputs[TILECC_NUM_OUTPUTS];
    for (int i = 0; i < TILECC_NUM_OUTPUTS; i++) outputs[i] = aligned_copy(NULL, out_bytes[i]);
    int32_t rc = TILECC_MODEL_RUN(inputs, outputs, ws);
    if (rc == 0) memcpy(out, outputs[0], (size_t)out_bytes[0]);
    free((void *)inputs[0]);
    for (int i = 0; i < TILECC_NUM_OUTPUTS; i++) free(outputs[i]);
    return rc == 0 ? out_bytes[0] : -1;
}
