/*
 * latency_ab.c -- the latency of one small call (a single row of 10 or 100
 * elements: what a sampler or a Python call pays), two builds of
 * libsoftmax.so interleaved in one process on the same buffers, beside
 * XNNPACK's and oneDNN's softmax of the same row when they were found.
 *
 *     cc -O2 -Iinclude bench/latency_ab.c -o latency_ab -ldl -lm
 *         (without the XNNPACK and oneDNN columns; with them:
 *          cmake -S . -B build -DSOFTMAX_BUILD_BENCH=ON && cmake --build build --target latency_ab)
 *     latency_ab A.so B.so [rounds]         the table: ns per call, B / A
 *     latency_ab --one LIB.so OP TYPE COLS CALLS
 *                                           one library, one case, CALLS
 *                                           calls (for callgrind); OP is
 *                                           softmax or log_softmax (the
 *                                           pinned call) or execute_softmax,
 *                                           execute_log_softmax; TYPE f32
 *                                           or f64
 *
 * The calls are the pinned entry points (softmax_f32, log_softmax_f32 and
 * the f64 twins) with rows = 1 and scale 1, and softmax_execute() on the
 * descriptor the Python package makes for a last-axis call ([1, n, 1]
 * along axis 1). XNNPACK's operator is created
 * and set up once and only xnn_run_operator() is timed, oneDNN's primitive
 * likewise (dnnl_primitive_execute + dnnl_stream_wait): their per-call
 * cost, already planned, against ours, planned at every call.
 *
 * Each round times every contender on the case in an order that rotates
 * per round; a sample is batches of BATCH calls repeated for at least
 * 1 ms. The table gives the median and the fastest sample of each in ns
 * per call and the ratios. On a shared machine only the ratios mean
 * anything, and only when they repeat; `valgrind --tool=callgrind` on
 * --one runs counts instructions, which do not depend on the load. Both
 * builds are opened with dlopen (bench/ab_loader.h), so the tool links
 * neither.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ab_loader.h"
#include "softmax.h"

#if defined(BENCH_HAVE_XNNPACK)
#include <xnnpack.h>
#endif
#if defined(BENCH_HAVE_ONEDNN)
#include <dnnl.h>
#if defined(_OPENMP)
#include <omp.h>
#endif
#endif

enum { BATCH = 200, MAX_ROUNDS = 64, MAX_COLS = 100 };

/* Opens a build, timed on one thread. */
static void load(library *lib, const char *path)
{
    load_library(lib, path, "latency_ab");
    lib->set_num_threads(1);
}

typedef struct latency_case {
    int log; /* 0 softmax, 1 log-softmax */
    int f64;
    size_t cols;
    /* softmax_execute on [1, cols, 1] along axis 1, as the Python package
     * describes a last-axis call, instead of the pinned entry point */
    int execute;
} latency_case;

static const latency_case cases[] = {
    {0, 0, 10, 0}, {1, 0, 10, 0},  {0, 0, 100, 0}, {1, 0, 100, 0}, {0, 1, 10, 0},
    {1, 1, 10, 0}, {0, 1, 100, 0}, {1, 1, 100, 0}, {0, 0, 10, 1},  {1, 0, 10, 1},
};
enum { CASES = sizeof cases / sizeof cases[0] };

/* Logits in [-8, 8), the same for every contender. */
static float x32[MAX_COLS], y32[MAX_COLS];
static double x64[MAX_COLS], y64[MAX_COLS];

static void fill_inputs(void)
{
    uint64_t state = 12345;
    for (size_t i = 0; i < MAX_COLS; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        const float value = (float)((double)(state >> 40) * 0x1p-24 * 16 - 8);
        x32[i] = value;
        x64[i] = value;
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ns per call of `call`, repeated in batches for at least 1 ms. */
#define TIME_CALLS(result, call)                                                                                       \
    do {                                                                                                               \
        size_t calls_ = 0;                                                                                             \
        const double start_ = now();                                                                                   \
        double elapsed_;                                                                                               \
        do {                                                                                                           \
            for (int i_ = 0; i_ < BATCH; i_++)                                                                         \
                call;                                                                                                  \
            calls_ += BATCH;                                                                                           \
            elapsed_ = now() - start_;                                                                                 \
        } while (elapsed_ < 1e-3);                                                                                     \
        (result) = elapsed_ * 1e9 / (double)calls_;                                                                    \
    } while (0)

static void describe(const library *lib, const latency_case *c, softmax_desc *desc)
{
    lib->desc_init(desc, c->log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX,
                   c->f64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32, c->cols);
    desc->ndim = 3;
    desc->axis = 1;
    desc->shape[0] = 1;
    desc->shape[1] = c->cols;
    desc->shape[2] = 1;
}

static double time_library(const library *lib, const latency_case *c)
{
    double ns;
    if (c->execute) {
        softmax_desc desc;
        describe(lib, c, &desc);
        const void *x = c->f64 ? (const void *)x64 : (const void *)x32;
        void *y = c->f64 ? (void *)y64 : (void *)y32;
        TIME_CALLS(ns, lib->execute(&desc, x, NULL, y));
    } else if (c->f64) {
        const f64_entry entry = lib->f64[c->log];
        TIME_CALLS(ns, entry(x64, y64, 1, c->cols, 1.0));
    } else {
        const f32_entry entry = lib->f32[c->log];
        TIME_CALLS(ns, entry(x32, y32, 1, c->cols, 1.0f));
    }
    return ns;
}

/* ---- anchors: prepared once per case, their per-call cost timed ---- */

typedef struct anchor {
    const char *name;
    int (*prepare)(const latency_case *c); /* 0: ready; -1: n/a for this case */
    double (*time)(void);
    void (*release)(void);
} anchor;

#if defined(BENCH_HAVE_XNNPACK)
static xnn_operator_t xnn_softmax;

static int prepare_xnnpack(const latency_case *c)
{
    static int initialized;
    if (c->log || c->f64) /* this XNNPACK has f32 softmax only */
        return -1;
    if (!initialized && xnn_initialize(NULL) != xnn_status_success)
        return -1;
    initialized = 1;
    if (xnn_create_softmax_nc_f32(c->cols, c->cols, c->cols, 0, &xnn_softmax) != xnn_status_success)
        return -1;
    if (xnn_setup_softmax_nc_f32(xnn_softmax, 1, x32, y32, NULL) != xnn_status_success) {
        xnn_delete_operator(xnn_softmax);
        return -1;
    }
    return 0;
}
static double time_xnnpack(void)
{
    double ns;
    TIME_CALLS(ns, xnn_run_operator(xnn_softmax, NULL));
    return ns;
}
static void release_xnnpack(void)
{
    xnn_delete_operator(xnn_softmax);
}
#endif

#if defined(BENCH_HAVE_ONEDNN)
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_primitive_t primitive;
static dnnl_exec_arg_t dnnl_args[2];

static int prepare_onednn(const latency_case *c)
{
    if (c->f64) /* no f64 softmax on oneDNN's CPU engine */
        return -1;
#if defined(_OPENMP)
    omp_set_num_threads(1);
#endif
    if (stream == NULL && (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
                           dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success))
        return -1;
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {1, (dnnl_dim_t)c->cols};
    dnnl_softmax_v2_desc_t op;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_softmax_v2_forward_desc_init(&op, dnnl_forward_inference,
                                          c->log ? dnnl_softmax_log : dnnl_softmax_accurate, &md, &md,
                                          1) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &op, NULL, engine, NULL) != dnnl_success)
        return -1;
    const dnnl_status_t status = dnnl_primitive_create(&primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    if (status != dnnl_success)
        return -1;
    dnnl_args[0].arg = DNNL_ARG_SRC;
    dnnl_args[1].arg = DNNL_ARG_DST;
    if (dnnl_memory_create(&dnnl_args[0].memory, &md, engine, x32) != dnnl_success ||
        dnnl_memory_create(&dnnl_args[1].memory, &md, engine, y32) != dnnl_success)
        return -1;
    return 0;
}
static double time_onednn(void)
{
    double ns;
    TIME_CALLS(ns, (dnnl_primitive_execute(primitive, stream, 2, dnnl_args), dnnl_stream_wait(stream)));
    return ns;
}
static void release_onednn(void)
{
    dnnl_memory_destroy(dnnl_args[0].memory);
    dnnl_memory_destroy(dnnl_args[1].memory);
    dnnl_primitive_destroy(primitive);
}
#endif

static const anchor anchors[] = {
#if defined(BENCH_HAVE_XNNPACK)
    {"XNNPACK", prepare_xnnpack, time_xnnpack, release_xnnpack},
#endif
#if defined(BENCH_HAVE_ONEDNN)
    {"oneDNN", prepare_onednn, time_onednn, release_onednn},
#endif
    {NULL, NULL, NULL, NULL},
};
enum { ANCHORS = sizeof anchors / sizeof anchors[0] - 1 };

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *case_name(const latency_case *c, char *buffer, size_t size)
{
    snprintf(buffer, size, "%s%s %s 1x%zu", c->execute ? "execute " : "", c->log ? "log_softmax" : "softmax",
             c->f64 ? "f64" : "f32", c->cols);
    return buffer;
}

static int run_one(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s --one LIB.so [execute_]softmax|[execute_]log_softmax f32|f64 COLS CALLS\n", argv[0]);
        return 2;
    }
    library lib;
    load(&lib, argv[2]);
    const char *op = argv[3];
    const int execute = strncmp(op, "execute_", 8) == 0;
    if (execute)
        op += 8;
    const latency_case c = {strcmp(op, "log_softmax") == 0, strcmp(argv[4], "f64") == 0, (size_t)atol(argv[5]),
                            execute};
    if (c.cols == 0 || c.cols > MAX_COLS) {
        fprintf(stderr, "latency_ab: COLS must be in [1, %d]\n", MAX_COLS);
        return 2;
    }
    const long calls = atol(argv[6]);
    int status = 0;
    softmax_desc desc;
    describe(&lib, &c, &desc);
    for (long i = 0; i < calls; i++) {
        if (c.execute)
            status |= lib.execute(&desc, c.f64 ? (const void *)x64 : (const void *)x32, NULL,
                                  c.f64 ? (void *)y64 : (void *)y32);
        else
            status |= c.f64 ? lib.f64[c.log](x64, y64, 1, c.cols, 1.0) : lib.f32[c.log](x32, y32, 1, c.cols, 1.0f);
    }
    char name[64];
    printf("%s: %ld calls of %s, status %d\n", argv[2], calls, case_name(&c, name, sizeof name), status);
    return status != 0;
}

int main(int argc, char **argv)
{
    fill_inputs();
    if (argc >= 2 && strcmp(argv[1], "--one") == 0)
        return run_one(argc, argv);
    if (argc < 3) {
        fprintf(stderr, "usage: %s A.so B.so [rounds]\n       %s --one LIB.so OP TYPE COLS CALLS\n", argv[0], argv[0]);
        return 2;
    }
    library libs[2];
    load(&libs[0], argv[1]);
    load(&libs[1], argv[2]);
    int rounds = argc > 3 ? atoi(argv[3]) : 15;
    rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    printf("A = %s\nB = %s\n%d rounds; ns per call, median (fastest sample)\n\n", argv[1], argv[2], rounds);
    printf("| case | A | B | B / A medians | B / A fastest |");
    for (int k = 0; k < ANCHORS; k++)
        printf(" %s | B / %s fastest |", anchors[k].name, anchors[k].name);
    printf("\n|---|---|---|---|---|");
    for (int k = 0; k < ANCHORS; k++)
        printf("---|---|");
    printf("\n");
    for (int k = 0; k < CASES; k++) {
        const latency_case *c = &cases[k];
        enum { CONTENDERS = 2 + ANCHORS };
        double times[CONTENDERS][MAX_ROUNDS];
        int ready[CONTENDERS];
        ready[0] = ready[1] = 1;
        for (int a = 0; a < ANCHORS; a++)
            ready[2 + a] = anchors[a].prepare(c) == 0;
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < CONTENDERS; i++) {
                const int who = (r + i) % CONTENDERS;
                if (who < 2)
                    times[who][r] = time_library(&libs[who], c);
                else if (ready[who])
                    times[who][r] = anchors[who - 2].time();
            }
        double median[CONTENDERS], fastest[CONTENDERS];
        for (int i = 0; i < CONTENDERS; i++) {
            if (!ready[i])
                continue;
            qsort(times[i], (size_t)rounds, sizeof(double), compare_doubles);
            median[i] = times[i][rounds / 2];
            fastest[i] = times[i][0];
        }
        char name[64];
        printf("| %s | %.1f (%.1f) | %.1f (%.1f) | %.3f | %.3f |", case_name(c, name, sizeof name), median[0],
               fastest[0], median[1], fastest[1], median[1] / median[0], fastest[1] / fastest[0]);
        for (int a = 0; a < ANCHORS; a++) {
            if (ready[2 + a])
                printf(" %.1f (%.1f) | %.3f |", median[2 + a], fastest[2 + a], fastest[1] / fastest[2 + a]);
            else
                printf(" n/a | |");
        }
        printf("\n");
        fflush(stdout);
        for (int a = 0; a < ANCHORS; a++)
            if (ready[2 + a])
                anchors[a].release();
    }
    return 0;
}
