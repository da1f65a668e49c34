/* Two tilecc models in one program: ./two a.params a.in b.params b.in prints both outputs
 * (float32) on one line each. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int64_t run_a(const void *params, int64_t params_size, const void *input, void *out);
int64_t run_b(const void *params, int64_t params_size, const void *input, void *out);
void tilecc_set_num_threads(int32_t n);  /* one runtime, one pool, shared by both models */

static void *slurp(const char *path, int64_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    void *buf = malloc((size_t)*size + 1);
    if (fread(buf, 1, (size_t)*size, f) != (size_t)*size) { perror(path); exit(1); }
    fclose(f);
    return buf;
}

static int show(const char *what, int64_t (*run)(const void *, int64_t, const void *, void *),
                const char *params_path, const char *input_path) {
    int64_t psize, isize;
    void *params = slurp(params_path, &psize), *input = slurp(input_path, &isize);
    float out[4096];
    int64_t n = run(params, psize, input, out);
    if (n < 0 || n > (int64_t)sizeof out) { fprintf(stderr, "%s failed\n", what); return 1; }
    printf("%s:", what);
    for (int64_t k = 0; k < n / 4; k++) printf(" %.9g", out[k]);
    printf("\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s a.params a.in b.params b.in\n", argv[0]);
        return 2;
    }
    tilecc_set_num_threads(2);
    return show("a", run_a, argv[1], argv[2]) || show("b", run_b, argv[3], argv[4]);
}
