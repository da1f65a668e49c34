/* tilecc OpenCL host runner: runs an unpacked OpenCL artifact with the OpenCL C API alone
 * (no Python), e.g. on a phone with a Mali or Adreno driver.
 *
 *   cc -O2 -std=c11 tilecc_ocl_runner.c -lOpenCL -o tilecc_ocl_runner
 *   tilecc_ocl_runner [-d DEVICE_INDEX] ARTIFACT_DIR IN0.bin ... OUT0.bin ...
 *
 * ARTIFACT_DIR holds kernels.cl, plan.txt (the launch plan as plain lines, written by the
 * compiler next to plan.json) and params.bin. Input and output files are raw tensors in the
 * plan's storage dtype (float32, or half for --precision fp16 builds), row-major.
 *
 * plan.txt grammar (whitespace separated):
 *   tilecc-ocl-plan 1 / arena BYTES / params BYTES / inputs N / {input BYTES DTYPE}*N
 *   outputs N / {output BYTES DTYPE}*N / launches N /
 *   {launch NAME NARGS G0 G1 G2 L0 L1 L2 / {arg KIND INDEX OFFSET}*NARGS}*N
 * Every kernel buffer argument is a (buffer, element offset) pair; KIND is arena, params,
 * input or output.
 *
 * Exit codes: 0 ok, 1 usage, 2 bad artifact or input file, 3 OpenCL error, 4 out of memory/IO.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call, what)                                                       \
    do {                                                                        \
        cl_int err_ = (call);                                                   \
        if (err_ != CL_SUCCESS) {                                               \
            fprintf(stderr, "tilecc_ocl_runner: %s failed (OpenCL error %d)\n", \
                    what, (int)err_);                                           \
            exit(3);                                                            \
        }                                                                       \
    } while (0)

typedef struct {
    int kind; /* 0 arena, 1 params, 2 input, 3 output */
    long index;
    long long offset;
} Arg;

typedef struct {
    char name[128];
    int nargs;
    size_t global[3], local[3];
    Arg *args;
    cl_kernel kernel;
} Launch;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "tilecc_ocl_runner: out of memory\n");
        exit(4);
    }
    return p;
}

static char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tilecc_ocl_runner: cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "tilecc_ocl_runner: cannot read %s\n", path);
        exit(4);
    }
    buf[n] = 0;
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void expect(FILE *f, const char *word) {
    char got[64];
    if (fscanf(f, "%63s", got) != 1 || strcmp(got, word) != 0) {
        fprintf(stderr, "tilecc_ocl_runner: plan.txt: expected '%s'\n", word);
        exit(2);
    }
}

static long long read_num(FILE *f) {
    long long v;
    if (fscanf(f, "%lld", &v) != 1) {
        fprintf(stderr, "tilecc_ocl_runner: plan.txt: expected a number\n");
        exit(2);
    }
    return v;
}

static int kind_of(const char *s) {
    const char *kinds[] = {"arena", "params", "input", "output"};
    for (int k = 0; k < 4; k++)
        if (strcmp(s, kinds[k]) == 0) return k;
    fprintf(stderr, "tilecc_ocl_runner: plan.txt: unknown buffer kind '%s'\n", s);
    exit(2);
}

int main(int argc, char **argv) {
    int arg = 1;
    int dev_index = 0;
    if (arg + 1 < argc && strcmp(argv[arg], "-d") == 0) {
        dev_index = atoi(argv[arg + 1]);
        arg += 2;
    }
    if (arg >= argc) {
        fprintf(stderr, "usage: %s [-d DEVICE] ARTIFACT_DIR IN.bin... OUT.bin...\n", argv[0]);
        return 1;
    }
    const char *dir = argv[arg++];
    char path[4096];

    snprintf(path, sizeof path, "%s/plan.txt", dir);
    FILE *pf = fopen(path, "r");
    if (!pf) {
        fprintf(stderr, "tilecc_ocl_runner: cannot open %s\n", path);
        return 2;
    }
    expect(pf, "tilecc-ocl-plan");
    if (read_num(pf) != 1) {
        fprintf(stderr, "tilecc_ocl_runner: plan.txt version not supported\n");
        return 2;
    }
    expect(pf, "arena");
    size_t arena_bytes = (size_t)read_num(pf);
    expect(pf, "params");
    size_t params_bytes = (size_t)read_num(pf);
    char word[128];
    expect(pf, "inputs");
    int nin = (int)read_num(pf);
    size_t *in_bytes = xmalloc(sizeof(size_t) * (size_t)(nin + 1));
    for (int i = 0; i < nin; i++) {
        expect(pf, "input");
        in_bytes[i] = (size_t)read_num(pf);
        if (fscanf(pf, "%127s", word) != 1) return 2;
    }
    expect(pf, "outputs");
    int nout = (int)read_num(pf);
    size_t *out_bytes = xmalloc(sizeof(size_t) * (size_t)(nout + 1));
    for (int i = 0; i < nout; i++) {
        expect(pf, "output");
        out_bytes[i] = (size_t)read_num(pf);
        if (fscanf(pf, "%127s", word) != 1) return 2;
    }
    expect(pf, "launches");
    int nl = (int)read_num(pf);
    Launch *launches = xmalloc(sizeof(Launch) * (size_t)(nl + 1));
    for (int l = 0; l < nl; l++) {
        Launch *ln = &launches[l];
        expect(pf, "launch");
        if (fscanf(pf, "%127s", ln->name) != 1) return 2;
        ln->nargs = (int)read_num(pf);
        for (int d = 0; d < 3; d++) ln->global[d] = (size_t)read_num(pf);
        for (int d = 0; d < 3; d++) ln->local[d] = (size_t)read_num(pf);
        ln->args = xmalloc(sizeof(Arg) * (size_t)(ln->nargs + 1));
        for (int a = 0; a < ln->nargs; a++) {
            expect(pf, "arg");
            if (fscanf(pf, "%127s", word) != 1) return 2;
            ln->args[a].kind = kind_of(word);
            ln->args[a].index = (long)read_num(pf);
            ln->args[a].offset = read_num(pf);
        }
    }
    fclose(pf);
    if (argc - arg != nin + nout) {
        fprintf(stderr, "tilecc_ocl_runner: the model has %d inputs and %d outputs; got %d "
                "files\n", nin, nout, argc - arg);
        return 1;
    }

    cl_platform_id platforms[8];
    cl_uint nplat = 0;
    CHECK(clGetPlatformIDs(8, platforms, &nplat), "clGetPlatformIDs");
    cl_device_id devices[16];
    cl_uint ndev = 0;
    for (cl_uint p = 0; p < nplat && ndev < 16; p++) {
        cl_uint n = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 16 - ndev, devices + ndev, &n) ==
            CL_SUCCESS)
            ndev += n;
    }
    if (dev_index < 0 || (cl_uint)dev_index >= ndev) {
        fprintf(stderr, "tilecc_ocl_runner: no OpenCL device %d (%u found)\n", dev_index, ndev);
        return 3;
    }
    cl_device_id dev = devices[dev_index];
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    CHECK(err, "clCreateContext");
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    CHECK(err, "clCreateCommandQueue");

    size_t src_size;
    snprintf(path, sizeof path, "%s/kernels.cl", dir);
    char *src = read_all(path, &src_size);
    const char *srcs[1] = {src};
    cl_program prog = clCreateProgramWithSource(ctx, 1, srcs, &src_size, &err);
    CHECK(err, "clCreateProgramWithSource");
    if (clBuildProgram(prog, 1, &dev, "-cl-fast-relaxed-math -cl-mad-enable", NULL, NULL) !=
        CL_SUCCESS) {
        size_t log_size = 0;
        clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
        char *log = xmalloc(log_size + 1);
        clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, log_size, log, NULL);
        log[log_size] = 0;
        fprintf(stderr, "tilecc_ocl_runner: kernels.cl build failed:\n%s\n", log);
        return 3;
    }

    size_t got;
    snprintf(path, sizeof path, "%s/params.bin", dir);
    char *params = read_all(path, &got);
    if (got != params_bytes) {
        fprintf(stderr, "tilecc_ocl_runner: params.bin has %zu bytes, plan says %zu\n", got,
                params_bytes);
        return 2;
    }
    cl_mem arena = clCreateBuffer(ctx, CL_MEM_READ_WRITE, arena_bytes ? arena_bytes : 1, NULL,
                                  &err);
    CHECK(err, "clCreateBuffer(arena)");
    cl_mem pbuf = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                 params_bytes ? params_bytes : 1,
                                 params_bytes ? params : (void *)&params_bytes, &err);
    CHECK(err, "clCreateBuffer(params)");
    cl_mem *ins = xmalloc(sizeof(cl_mem) * (size_t)(nin + 1));
    cl_mem *outs = xmalloc(sizeof(cl_mem) * (size_t)(nout + 1));
    for (int i = 0; i < nin; i++) {
        char *data = read_all(argv[arg + i], &got);
        if (got != in_bytes[i]) {
            fprintf(stderr, "tilecc_ocl_runner: %s has %zu bytes, input %d needs %zu\n",
                    argv[arg + i], got, i, in_bytes[i]);
            return 2;
        }
        ins[i] = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                got ? got : 1, got ? data : (void *)&got, &err);
        CHECK(err, "clCreateBuffer(input)");
        free(data);
    }
    for (int i = 0; i < nout; i++) {
        outs[i] = clCreateBuffer(ctx, CL_MEM_READ_WRITE, out_bytes[i] ? out_bytes[i] : 1, NULL,
                                 &err);
        CHECK(err, "clCreateBuffer(output)");
    }

    for (int l = 0; l < nl; l++) {
        Launch *ln = &launches[l];
        ln->kernel = clCreateKernel(prog, ln->name, &err);
        CHECK(err, ln->name);
        for (int a = 0; a < ln->nargs; a++) {
            Arg *ag = &ln->args[a];
            cl_mem m = ag->kind == 0 ? arena : ag->kind == 1 ? pbuf
                     : ag->kind == 2 ? ins[ag->index] : outs[ag->index];
            cl_long off = (cl_long)ag->offset;
            CHECK(clSetKernelArg(ln->kernel, (cl_uint)(2 * a), sizeof(cl_mem), &m),
                  "clSetKernelArg");
            CHECK(clSetKernelArg(ln->kernel, (cl_uint)(2 * a + 1), sizeof(cl_long), &off),
                  "clSetKernelArg");
        }
        CHECK(clEnqueueNDRangeKernel(q, ln->kernel, 3, NULL, ln->global, ln->local, 0, NULL,
                                     NULL), ln->name);
    }
    for (int i = 0; i < nout; i++) {
        char *host = xmalloc(out_bytes[i]);
        CHECK(clEnqueueReadBuffer(q, outs[i], CL_TRUE, 0, out_bytes[i], host, 0, NULL, NULL),
              "clEnqueueReadBuffer");
        const char *out_path = argv[arg + nin + i];
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(host, 1, out_bytes[i], f) != out_bytes[i]) {
            fprintf(stderr, "tilecc_ocl_runner: cannot write %s\n", out_path);
            return 4;
        }
        fclose(f);
        free(host);
    }
    CHECK(clFinish(q), "clFinish");
    printf("ran %d kernel launches\n", nl);
    return 0;
}
