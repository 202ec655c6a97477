/*
 * axis_ab.c -- softmax along axis 0 against the last axis, for two builds of
 * libsoftmax side by side in one process.
 *
 * For each case (op, type, R x C) it times, on each library:
 *   axis 0   the softmax over axis 0 of an R x C matrix (C lines of R),
 *   last     the softmax over the last axis of the C x R matrix holding the
 *            same values transposed (the same lines, read contiguously),
 * and prints the ratio axis 0 / last of each library, and B / A of axis 0.
 * Every round calls the four (library, layout) pairs in an order that
 * rotates, each sample being calls repeated for at least 2 ms; the table
 * gives medians, and the ratio of the fastest samples (the least disturbed
 * by other jobs on a shared machine).
 *
 *     cmake -S . -B build -DSOFTMAX_BUILD_BENCH=ON && cmake --build build --target axis_ab
 *         (or: cc -O2 -Iinclude bench/axis_ab.c -o axis_ab -ldl -lm)
 *     axis_ab A/libsoftmax.so B/libsoftmax.so [rounds] [threads] [CASE,CASE,...]
 *     axis_ab --one LIB.so CASE axis0|last CALLS      one library, one case
 *                                                     (for callgrind)
 *
 * Both builds are opened with dlopen (bench/ab_loader.h), so the tool links
 * neither.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ab_loader.h"
#include "softmax.h"

typedef struct bench_case {
    size_t rows, cols; /* the axis-0 matrix: lines of `rows` elements, `cols` of them */
    softmax_op op;
    softmax_dtype type;
} bench_case;

static const bench_case cases[] = {
    {1024, 4096, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32},
    {4096, 1024, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32},
    {1024, 4096, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64},
    {4096, 1024, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64},
    {1024, 4096, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F32},
    {4096, 1024, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F32},
    {1024, 4096, SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32},
    {4096, 1024, SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32},
    {1024, 4096, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32},
    {256, 256, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32},
    {64, 4096, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32},
    {4096, 64, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32},
    {100, 30000, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32},
};
enum { CASES = sizeof cases / sizeof cases[0] };

static const char *op_name(softmax_op op)
{
    switch (op) {
    case SOFTMAX_OP_SOFTMAX:
        return "softmax";
    case SOFTMAX_OP_LOG_SOFTMAX:
        return "log_softmax";
    case SOFTMAX_OP_SOFTMAX_BACKWARD:
        return "softmax_backward";
    case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
        return "log_softmax_backward";
    default:
        return "log_softmax_jvp";
    }
}

static bool takes_grad(softmax_op op)
{
    return op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX;
}

/* The inputs of one layout: x (and g) as the axis-0 matrix, or transposed. */
typedef struct buffers {
    void *x, *g, *y;
} buffers;

static void store(const bench_case *c, void *array, size_t at, double value)
{
    if (c->type == SOFTMAX_DTYPE_F64)
        ((double *)array)[at] = value;
    else
        ((float *)array)[at] = (float)value;
}

static buffers make_buffers(const bench_case *c, bool transposed)
{
    const size_t count = c->rows * c->cols, size = c->type == SOFTMAX_DTYPE_F64 ? 8 : 4;
    buffers b = {malloc(count * size), malloc(count * size), malloc(count * size)};
    if (!b.x || !b.g || !b.y) {
        fprintf(stderr, "axis_ab: out of memory\n");
        exit(2);
    }
    uint64_t state = 12345;
    for (size_t r = 0; r < c->rows; r++)
        for (size_t j = 0; j < c->cols; j++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            const double value = (double)(state >> 40) * 0x1p-24 * 16 - 8; /* [-8, 8) */
            const size_t at = transposed ? j * c->rows + r : r * c->cols + j;
            /* The backward ops read probabilities (softmax_backward) or log-probabilities. */
            const double source = c->op == SOFTMAX_OP_SOFTMAX_BACKWARD ? 1.0 / (double)c->rows
                                  : takes_grad(c->op)                  ? -__builtin_log((double)c->rows)
                                                                       : value;
            store(c, b.x, at, source);
            store(c, b.g, at, value);
        }
    memset(b.y, 0, count * size);
    return b;
}

static void describe(const library *lib, const bench_case *c, bool axis0, softmax_desc *d)
{
    lib->desc_init(d, c->op, c->type, c->cols);
    d->ndim = 2;
    d->shape[0] = axis0 ? c->rows : c->cols;
    d->shape[1] = axis0 ? c->cols : c->rows;
    d->axis = axis0 ? 0 : 1;
}

/* With one thread, the CPU time of the calling thread: on a machine shared
 * with other jobs it leaves out the time the thread waited for a core
 * (what other jobs do to the caches stays in). */
static clockid_t timing_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(timing_clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ns per element of calls repeated for at least 2 ms. */
static double sample(const library *lib, const bench_case *c, bool axis0, const buffers *b)
{
    softmax_desc d;
    describe(lib, c, axis0, &d);
    const void *grad = takes_grad(c->op) ? b->g : NULL;
    if (lib->execute(&d, b->x, grad, b->y) != 0) { /* warm */
        fprintf(stderr, "axis_ab: a call failed\n");
        exit(1);
    }
    size_t calls = 0;
    const double start = now();
    double elapsed;
    do {
        lib->execute(&d, b->x, grad, b->y);
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

static void free_buffers(buffers *b)
{
    free(b->x);
    free(b->g);
    free(b->y);
}

enum { MAX_ROUNDS = 64 };

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--one") == 0) {
        if (argc != 6) {
            fprintf(stderr, "usage: %s --one LIB.so CASE axis0|last CALLS\n", argv[0]);
            return 2;
        }
        library lib;
        load_library(&lib, argv[2], "axis_ab");
        lib.set_num_threads(1);
        const bench_case *c = &cases[(size_t)atoi(argv[3]) % CASES];
        const bool axis0 = strcmp(argv[4], "axis0") == 0;
        buffers b = make_buffers(c, !axis0);
        softmax_desc d;
        describe(&lib, c, axis0, &d);
        const long calls = atol(argv[5]);
        for (long i = 0; i < calls; i++)
            lib.execute(&d, b.x, takes_grad(c->op) ? b.g : NULL, b.y);
        printf("%s %s %zux%zu %s %s\n", op_name(c->op), c->type == SOFTMAX_DTYPE_F64 ? "f64" : "f32", c->rows, c->cols,
               axis0 ? "axis 0" : "last axis of the transpose", argv[2]);
        free_buffers(&b);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s A.so B.so [rounds] [threads] [CASE,CASE,...]\n", argv[0]);
        return 2;
    }
    library libs[2];
    load_library(&libs[0], argv[1], "axis_ab");
    load_library(&libs[1], argv[2], "axis_ab");
    int rounds = argc > 3 ? atoi(argv[3]) : 9;
    rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    const int threads = argc > 4 ? atoi(argv[4]) : 1;
    libs[0].set_num_threads(threads);
    libs[1].set_num_threads(threads);
    if (threads == 1)
        timing_clock = CLOCK_THREAD_CPUTIME_ID;
    printf("%d thread(s) (%s time), %d rounds; ns per element, medians (ratios of the fastest samples in brackets)\n\n",
           threads, threads == 1 ? "thread CPU" : "wall", rounds);
    printf("| case | A axis 0 | A last | A axis0/last | B axis 0 | B last | B axis0/last | B/A axis 0 |\n"
           "|---|---|---|---|---|---|---|---|\n");
    bool chosen[CASES];
    for (int k = 0; k < CASES; k++)
        chosen[k] = argc <= 5;
    for (char *list = argc > 5 ? argv[5] : NULL; list != NULL && *list != '\0';) {
        char *end;
        const long k = strtol(list, &end, 10);
        if (end == list || k < 0 || k >= CASES) {
            fprintf(stderr, "axis_ab: bad case list %s (0..%d)\n", argv[5], CASES - 1);
            return 2;
        }
        chosen[k] = true;
        list = *end == ',' ? end + 1 : end;
    }
    for (int k = 0; k < CASES; k++) {
        if (!chosen[k])
            continue;
        const bench_case *c = &cases[k];
        buffers layouts[2] = {make_buffers(c, false), make_buffers(c, true)}; /* axis 0, last */
        double times[4][MAX_ROUNDS];                                          /* A axis0, A last, B axis0, B last */
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < 4; i++) {
                const int which = (r + i) % 4;
                const int lib = which / 2;
                const bool axis0 = which % 2 == 0;
                times[which][r] = sample(&libs[lib], c, axis0, &layouts[axis0 ? 0 : 1]);
            }
        double median[4], fastest[4];
        for (int i = 0; i < 4; i++) {
            qsort(times[i], (size_t)rounds, sizeof(double), compare_doubles);
            median[i] = times[i][rounds / 2];
            fastest[i] = times[i][0];
        }
        printf("| %s %s %zux%zu | %.3f | %.3f | %.2f (%.2f) | %.3f | %.3f | %.2f (%.2f) | %.2f (%.2f) |\n",
               op_name(c->op), c->type == SOFTMAX_DTYPE_F64 ? "f64" : "f32", c->rows, c->cols, median[0], median[1],
               median[0] / median[1], fastest[0] / fastest[1], median[2], median[3], median[2] / median[3],
               fastest[2] / fastest[3], median[2] / median[0], fastest[2] / fastest[0]);
        fflush(stdout);
        free_buffers(&layouts[0]);
        free_buffers(&layouts[1]);
    }
    return 0;
}
