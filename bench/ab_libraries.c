/*
 * ab_libraries.c -- the speed of two builds of libsoftmax.so, interleaved
 * in one process on the same buffers (A B A B ...), on the shapes of
 * BENCHMARKS.md.
 *
 *     cc -O2 -Iinclude bench/ab_libraries.c -o ab_libraries -ldl -lm
 *         (or: cmake -S . -B build -DSOFTMAX_BUILD_BENCH=ON && cmake --build build --target ab_libraries)
 *     ab_libraries A.so B.so [rounds]         the A/B table, B / A ratios
 *     ab_libraries --one A.so SHAPE OP CALLS  one library, one case, CALLS
 *                                             calls (for callgrind)
 *
 * Each round times every case on A and then on B (the order alternates per
 * round), each sample being repeated calls for at least 2 ms; the table
 * gives the median ns per element of each, the ratio of the medians and
 * the ratio of the fastest samples (the least disturbed by other jobs).
 * On a shared machine only the ratios mean anything, and only when they
 * repeat; `valgrind --tool=callgrind` on --one runs counts instructions,
 * which do not depend on the machine's load. Both builds are opened with
 * dlopen (bench/ab_loader.h), so the tool links neither. Where the two
 * libraries' workspaces land can move a case by a few percent (1024x4096):
 * run under LD_PRELOAD=align_large_allocations.so (bench/
 * align_large_allocations.c) to place them alike.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ab_loader.h"
#include "softmax.h"

typedef struct bench_case {
    const char *name;
    size_t rows, cols;
    softmax_op op;
    softmax_dtype type;
    int axis0; /* softmax over axis 0 of [rows, cols] */
    int fast;
} bench_case;

#define SHAPES(op, type, fast)                                                                                         \
    {"1x10", 1, 10, op, type, 0, fast}, {"4096x10", 4096, 10, op, type, 0, fast},                                      \
        {"65536x16", 65536, 16, op, type, 0, fast}, {"16384x128", 16384, 128, op, type, 0, fast},                      \
        {"4096x1000", 4096, 1000, op, type, 0, fast}, {"1024x4096", 1024, 4096, op, type, 0, fast},                    \
        {"64x32000", 64, 32000, op, type, 0, fast}, {"1x32000", 1, 32000, op, type, 0, fast},                          \
        {"1x256000", 1, 256000, op, type, 0, fast}, {"8x151936", 8, 151936, op, type, 0, fast},                        \
        {"16x1048576", 16, 1048576, op, type, 0, fast},                                                                \
    {                                                                                                                  \
        "1024x4096 axis 0", 1024, 4096, op, type, 1, fast                                                              \
    }

static const bench_case cases[] = {
    SHAPES(SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 0),
    SHAPES(SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F32, 0),
    SHAPES(SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32, 0),
    SHAPES(SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 1),
    {"1024x4096", 1024, 4096, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, 0, 0},
    {"1024x4096", 1024, 4096, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_BF16, 0, 0},
    {"1024x4096", 1024, 4096, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_BF16, 0, 1},
    {"16x1048576", 16, 1048576, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_BF16, 0, 0},
};
enum { CASES = sizeof cases / sizeof cases[0] };

static const char *op_name(softmax_op op)
{
    return op == SOFTMAX_OP_SOFTMAX ? "softmax" : op == SOFTMAX_OP_LOG_SOFTMAX ? "log_softmax" : "softmax_backward";
}
static const char *type_name(softmax_dtype type)
{
    return type == SOFTMAX_DTYPE_F32 ? "f32" : type == SOFTMAX_DTYPE_F64 ? "f64" : "bf16";
}
static size_t type_size(softmax_dtype type)
{
    return type == SOFTMAX_DTYPE_F64 ? 8 : type == SOFTMAX_DTYPE_F32 ? 4 : 2;
}

typedef struct buffers {
    void *x, *g, *y;
} buffers;

static buffers make_buffers(const bench_case *c)
{
    const size_t count = c->rows * c->cols, size = type_size(c->type);
    buffers b = {malloc(count * size), malloc(count * size), malloc(count * size)};
    uint64_t state = 12345;
    for (size_t i = 0; i < count; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        const float value = (float)((double)(state >> 40) * 0x1p-24 * 16 - 8); /* [-8, 8) */
        const float probability = 1.0f / (float)c->cols;
        if (c->type == SOFTMAX_DTYPE_F64) {
            ((double *)b.x)[i] = c->op == SOFTMAX_OP_SOFTMAX_BACKWARD ? probability : value;
            ((double *)b.g)[i] = value;
        } else if (c->type == SOFTMAX_DTYPE_F32) {
            ((float *)b.x)[i] = c->op == SOFTMAX_OP_SOFTMAX_BACKWARD ? probability : value;
            ((float *)b.g)[i] = value;
        } else {
            uint32_t bits;
            memcpy(&bits, &value, 4);
            ((uint16_t *)b.x)[i] = (uint16_t)(bits >> 16);
            ((uint16_t *)b.g)[i] = (uint16_t)(bits >> 16);
        }
    }
    memset(b.y, 0, count * size);
    return b;
}

static void describe(const library *lib, const bench_case *c, softmax_desc *d)
{
    lib->desc_init(d, c->op, c->type, c->cols);
    d->ndim = 2;
    d->shape[0] = c->rows;
    d->shape[1] = c->cols;
    d->axis = c->axis0 ? 0 : 1;
    d->flags = c->fast ? SOFTMAX_FLAG_FAST : 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ns per element of calls repeated for at least 2 ms. */
static double sample(const library *lib, const bench_case *c, const buffers *b)
{
    softmax_desc d;
    describe(lib, c, &d);
    const void *grad = c->op == SOFTMAX_OP_SOFTMAX_BACKWARD ? b->g : NULL;
    lib->execute(&d, b->x, grad, b->y); /* warm */
    size_t calls = 0;
    const double start = now();
    double elapsed;
    do {
        if (lib->execute(&d, b->x, grad, b->y) != 0) {
            fprintf(stderr, "ab_libraries: %s failed\n", c->name);
            exit(1);
        }
        calls++;
        elapsed = now() - start;
    } while (elapsed < 2e-3);
    return elapsed * 1e9 / ((double)calls * (double)(c->rows * c->cols));
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--one") == 0) {
        if (argc != 6) {
            fprintf(stderr, "usage: %s --one LIB.so CASE_INDEX unused CALLS\n", argv[0]);
            return 2;
        }
        library lib;
        load_library(&lib, argv[2], "ab_libraries");
        lib.set_num_threads(1);
        const bench_case *c = &cases[atoi(argv[3]) % CASES];
        buffers b = make_buffers(c);
        softmax_desc d;
        describe(&lib, c, &d);
        const long calls = atol(argv[5]);
        for (long i = 0; i < calls; i++)
            lib.execute(&d, b.x, c->op == SOFTMAX_OP_SOFTMAX_BACKWARD ? b.g : NULL, b.y);
        printf("%s %s %s%s %s\n", op_name(c->op), type_name(c->type), c->name, c->fast ? " fast" : "", argv[2]);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s A.so B.so [rounds]\n", argv[0]);
        return 2;
    }
    library libs[2];
    load_library(&libs[0], argv[1], "ab_libraries");
    load_library(&libs[1], argv[2], "ab_libraries");
    const int rounds = argc > 3 ? atoi(argv[3]) : 9;
    libs[0].set_num_threads(1);
    libs[1].set_num_threads(1);
    printf("| case | A median ns/elem | B median | B / A medians | B / A minima |\n|---|---|---|---|---|\n");
    double log_sum = 0;
    for (int k = 0; k < CASES; k++) {
        const bench_case *c = &cases[k];
        buffers b = make_buffers(c);
        double times[2][64];
        for (int r = 0; r < rounds && r < 64; r++)
            for (int i = 0; i < 2; i++) {
                const int which = (r + i) % 2;
                times[which][r] = sample(&libs[which], c, &b);
            }
        qsort(times[0], (size_t)rounds, sizeof(double), compare_doubles);
        qsort(times[1], (size_t)rounds, sizeof(double), compare_doubles);
        const double a = times[0][rounds / 2], bb = times[1][rounds / 2];
        const double fastest = times[1][0] / times[0][0];
        printf("| %s %s %s%s | %.4g | %.4g | %.3f | %.3f |\n", op_name(c->op), type_name(c->type), c->name,
               c->fast ? " fast" : "", a, bb, bb / a, fastest);
        fflush(stdout);
        log_sum += __builtin_log(fastest);
        free(b.x);
        free(b.g);
        free(b.y);
    }
    printf("geometric mean of the B / A minima over %d cases: %.3f\n", CASES, __builtin_exp(log_sum / CASES));
    return 0;
}
