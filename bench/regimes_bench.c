/*
 * regimes_bench.c -- one micro-benchmark per kernel regime, called through
 * the kernel tables directly (no public API, no planner, no threads): the
 * time per element of each regime on each side of the thresholds of
 * src/kernels/thresholds.h, for every code path this CPU runs (or the one
 * SOFTMAX_ISA names), f32 and f64.
 *
 *   regimes_bench [--quick] [--regime NAME]
 *
 * Each figure is the median of several samples, each sample enough calls
 * on the same buffers to last a few milliseconds (the data then sits in the
 * cache a row of that length fits in, as in a loop over rows). A single
 * thread: long_row, which only exists for several threads, is not timed.
 * Nothing here is a test: on a shared machine compare figures only
 * within one run.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kernels/thresholds.h"

/* The portable path has no vectors: its lengths are taken at the widest
 * SIMD vector (64 bytes). */
#define WIDEST_VECTOR_BYTES 64

static bool quick;
static const char *only_regime;

/* ------------------------------------------------------------------------
 * The tables: the only code that knows where they are and what they hold.
 * ---------------------------------------------------------------------- */

typedef struct bench_table {
    const char *isa;
    const char *type;
    size_t element_size;
    size_t lanes; /* lengths are taken at this vector width */
    const softmax_kernels *k;
} bench_table;

enum { MAX_TABLES = 6 };

/* The tables of every path up to the best this CPU runs (only the one
 * SOFTMAX_ISA forces, if set). */
static size_t available_tables(bench_table *out)
{
    const char *active = softmax_isa_name();
    if (active == NULL) {
        fprintf(stderr, "regimes_bench: %s\n", softmax_last_error());
        exit(1);
    }
    const char *forced = getenv("SOFTMAX_ISA");
    const bool only_active = forced != NULL && forced[0] != '\0';
    struct {
        const char *isa;
        const softmax_kernels *f32, *f64;
    } paths[] = {
        {"scalar", &softmax_ref_kernels_f32, &softmax_ref_kernels_f64},
#if defined(SOFTMAX_HAVE_X86_KERNELS)
        {"avx2", &softmax_kernels_f32_avx2, &softmax_kernels_f64_avx2},
        {"avx512", &softmax_kernels_f32_avx512, &softmax_kernels_f64_avx512},
#endif
    };
    size_t count = 0;
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (!only_active || strcmp(paths[p].isa, active) == 0) {
            const softmax_kernels *tables[2] = {paths[p].f32, paths[p].f64};
            for (int t = 0; t < 2; t++) {
                const softmax_kernels *k = tables[t];
                size_t lanes = k->column_chunk >= COLUMN_VECTORS ? k->column_chunk / COLUMN_VECTORS : 0;
                out[count++] = (bench_table){.isa = paths[p].isa,
                                             .type = t ? "f64" : "f32",
                                             .element_size = k->element_size,
                                             .lanes = lanes ? lanes : WIDEST_VECTOR_BYTES / k->element_size,
                                             .k = k};
            }
        }
        if (strcmp(paths[p].isa, active) == 0)
            break; /* the paths are listed best last */
    }
    return count;
}

/* ------------------------------------------------------------------------
 * Timing.
 * ---------------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bench_call {
    const bench_table *t;
    softmax_op op;
    size_t rows, n;
    void *x, *grad, *y;
    uint16_t *half_x;
    uint8_t *keep;
    size_t *kept;
    int regime;
} bench_call;

enum {
    REGIME_ROWS,
    REGIME_FAST_ROWS,
    REGIME_PREFIX_ROWS,
    REGIME_COLUMNS,
    REGIME_EXCLUDING_ROW,
    REGIME_HALF_LINE,
    REGIME_HALF_ROW,
    REGIME_FAST_HALF_LINE,
    REGIME_TRANSPOSE,
    REGIME_COUNT
};
static const char *const regime_names[REGIME_COUNT] = {"rows",     "fast_rows",      "prefix_rows",
                                                       "columns",  "excluding_row",  "half_line",
                                                       "half_row", "fast_half_line", "transpose_lines"};

static bool regime_available(const bench_table *t, int regime)
{
    const softmax_kernels *k = t->k;
    switch (regime) {
    case REGIME_ROWS:
        return true;
    case REGIME_FAST_ROWS:
        return k->fast_rows != NULL;
    case REGIME_PREFIX_ROWS:
        return k->prefix_rows != NULL;
    case REGIME_COLUMNS:
        return true;
    case REGIME_EXCLUDING_ROW:
        return k->excluding_row != NULL;
    case REGIME_HALF_LINE:
        return k->half_line != NULL;
    case REGIME_HALF_ROW:
        return k->half_row != NULL;
    case REGIME_FAST_HALF_LINE:
        return k->fast_half_line != NULL;
    case REGIME_TRANSPOSE:
        return k->transpose_lines != NULL;
    }
    return false;
}

/* One call; false if the kernel declined a line (the caller would then
 * take the general path: nothing to time). */
static bool run_once(const bench_call *c)
{
    const softmax_kernels *k = c->t->k;
    bool taken = true;
    switch (c->regime) {
    case REGIME_ROWS:
        k->rows(c->op, c->x, c->grad, c->y, c->rows, c->n, 1.0);
        break;
    case REGIME_FAST_ROWS:
        k->fast_rows(c->op, c->x, c->y, c->rows, c->n, 1.0);
        break;
    case REGIME_PREFIX_ROWS:
        k->prefix_rows(c->op, c->x, c->grad, c->y, c->rows, c->n, c->kept, 1.0);
        break;
    case REGIME_COLUMNS:
        k->columns(c->op, c->x, c->grad, c->y, c->rows, c->n, 0, c->n, 1.0);
        break;
    case REGIME_EXCLUDING_ROW:
        for (size_t r = 0; r < c->rows; r++)
            taken &= k->excluding_row(c->op, (const float *)c->x + r * c->n, c->keep, NULL, NULL, 0, 0, false, 0.0,
                                      c->n, c->n, 1.0, (float *)c->y + r * c->n) == SOFTMAX_ROW_DONE;
        break;
    case REGIME_HALF_LINE:
        for (size_t r = 0; r < c->rows; r++)
            taken &= k->half_line(c->op, c->half_x + r * c->n, 1, (uint16_t *)c->y + r * c->n, 1, c->n, 1.0);
        break;
    case REGIME_HALF_ROW:
        for (size_t r = 0; r < c->rows; r++)
            taken &= k->half_row(c->op, c->half_x + r * c->n, (uint16_t *)c->y + r * c->n, c->n, 1.0, 1);
        break;
    case REGIME_FAST_HALF_LINE:
        for (size_t r = 0; r < c->rows; r++)
            taken &= k->fast_half_line(c->op, c->half_x + r * c->n, 1, (uint16_t *)c->y + r * c->n, 1, c->n, 1.0);
        break;
    case REGIME_TRANSPOSE:
        k->transpose_lines(c->x, (int64_t)c->rows, c->rows, c->n, c->y);
        break;
    }
    return taken;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over samples of the seconds per call; NAN if the kernel
 * declines the call. */
static double time_call(const bench_call *c)
{
    enum { MAX_SAMPLES = 7 };
    const int samples = quick ? 3 : MAX_SAMPLES;
    const double sample_seconds = quick ? 0.002 : 0.01;
    if (!run_once(c)) /* also warms the caches and the workspace */
        return NAN;
    size_t calls = 1;
    for (;;) {
        double start = now_seconds();
        for (size_t i = 0; i < calls; i++)
            run_once(c);
        if (now_seconds() - start >= sample_seconds || calls > ((size_t)1 << 24))
            break;
        calls *= 2;
    }
    double per_call[MAX_SAMPLES];
    for (int s = 0; s < samples; s++) {
        double start = now_seconds();
        for (size_t i = 0; i < calls; i++)
            run_once(c);
        per_call[s] = (now_seconds() - start) / (double)calls;
    }
    qsort(per_call, (size_t)samples, sizeof per_call[0], compare_doubles);
    return per_call[samples / 2];
}

/* ------------------------------------------------------------------------
 * Lengths and buffers.
 * ---------------------------------------------------------------------- */

enum { MAX_LENGTHS = 32 };
typedef struct lengths {
    size_t n[MAX_LENGTHS];
    const char *why[MAX_LENGTHS];
    size_t count;
} lengths;

static void add_around(lengths *l, size_t limit, const char *why, bool both_sides)
{
    const size_t first = both_sides ? limit - 1 : limit, last = limit + 1;
    for (size_t n = first; n <= last && l->count < MAX_LENGTHS; n++) {
        if (n == 0)
            continue;
        l->n[l->count] = n;
        l->why[l->count++] = why;
    }
}

/* Lengths around each threshold a regime has (row lengths; for columns the
 * number of lines side by side, inner). */
static lengths lengths_of(const bench_table *t, int regime)
{
    lengths l = {.count = 0};
    const size_t small = SMALL_VECTORS * t->lanes, stream = STREAM_BYTES / t->element_size;
    const size_t stored = STORED_STREAM_BYTES / t->element_size;
    switch (regime) {
    case REGIME_ROWS:
    case REGIME_FAST_ROWS:
    case REGIME_PREFIX_ROWS:
        add_around(&l, t->lanes, "LANES", true);
        add_around(&l, small, "SMALL_VECTORS*LANES", true);
        add_around(&l, SUM_BLOCK, "SUM_BLOCK", !quick);
        if (!quick) {
            add_around(&l, stream, "STREAM_BYTES", true);
            add_around(&l, stored, "STORED_STREAM_BYTES", true);
        }
        break;
    case REGIME_COLUMNS:
        add_around(&l, COLUMN_VECTORS * t->lanes, "COLUMN_VECTORS*LANES", true);
        break;
    case REGIME_EXCLUDING_ROW:
    case REGIME_HALF_LINE:
        add_around(&l, small, "SMALL_VECTORS*LANES", true);
        add_around(&l, SUM_BLOCK, "SUM_BLOCK", false);
        if (!quick)
            add_around(&l, stream, "STREAM_BYTES", true);
        break;
    case REGIME_HALF_ROW:
        if (!quick)
            add_around(&l, HALF_ROW_MIN, "HALF_ROW_MIN", true);
        add_around(&l, stored, "STORED_STREAM_BYTES", true);
        break;
    case REGIME_FAST_HALF_LINE:
        add_around(&l, small, "SMALL_VECTORS*LANES", true);
        add_around(&l, FAST_HALF_LINE_MIN, "FAST_HALF_LINE_MIN", true);
        break;
    case REGIME_TRANSPOSE:
        add_around(&l, t->lanes, "LANES", true);
        break;
    }
    return l;
}

static void *checked_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) {
        fprintf(stderr, "regimes_bench: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* Logits 4 * U(-1, 1) (and bf16 copies), a fixed sequence. */
static void fill(const bench_table *t, void *x, uint16_t *half, size_t count)
{
    uint64_t state = 12345;
    for (size_t i = 0; i < count; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const double v = 8.0 * ((double)(state >> 11) * 0x1p-53) - 4.0;
        if (t->element_size == sizeof(float))
            ((float *)x)[i] = (float)v;
        else
            ((double *)x)[i] = v;
        if (half) {
            float f = (float)v;
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            half[i] = (uint16_t)(bits >> 16); /* truncated: any bf16 will do */
        }
    }
}

/* The elements one call covers: short rows are batched up to about this
 * many, so that each call does a comparable amount of work. */
#define BATCH_ELEMENTS ((size_t)1 << 15)

static void bench_regime(const bench_table *t, int regime)
{
    if (!regime_available(t, regime))
        return;
    if (only_regime && strcmp(only_regime, regime_names[regime]) != 0)
        return;
    const lengths l = lengths_of(t, regime);
    const bool half = regime == REGIME_HALF_LINE || regime == REGIME_HALF_ROW || regime == REGIME_FAST_HALF_LINE;
    const softmax_op ops[] = {SOFTMAX_OP_SOFTMAX, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_OP_SOFTMAX_BACKWARD};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        const softmax_op op = ops[o];
        const bool gradient = op == SOFTMAX_OP_SOFTMAX_BACKWARD;
        if (gradient && regime != REGIME_ROWS && regime != REGIME_COLUMNS)
            continue;
        if (quick && op == SOFTMAX_OP_LOG_SOFTMAX)
            continue;
        for (size_t i = 0; i < l.count; i++) {
            const size_t n = l.n[i];
            /* columns: n lines side by side (inner), down an axis of
             * COLUMN_AXIS elements; transpose: BATCH lines of n. */
            const size_t axis = regime == REGIME_COLUMNS ? (BATCH_ELEMENTS / n > 0 ? BATCH_ELEMENTS / n : 1) : 0;
            size_t rows = regime == REGIME_COLUMNS ? axis : (BATCH_ELEMENTS / n > 0 ? BATCH_ELEMENTS / n : 1);
            if (regime == REGIME_TRANSPOSE && rows < t->lanes)
                rows = t->lanes;
            const size_t count = rows * n;
            bench_call c = {.t = t, .op = op, .rows = rows, .n = n, .regime = regime};
            c.x = checked_malloc(count * t->element_size);
            c.y = checked_malloc(count * t->element_size);
            c.grad = gradient ? checked_malloc(count * t->element_size) : NULL;
            c.half_x = half ? checked_malloc(count * sizeof(uint16_t)) : NULL;
            fill(t, c.x, c.half_x, count);
            if (gradient) {
                /* A softmax output to differentiate. */
                if (regime == REGIME_COLUMNS)
                    t->k->columns(SOFTMAX_OP_SOFTMAX, c.x, NULL, c.grad, rows, n, 0, n, 1.0);
                else
                    t->k->rows(SOFTMAX_OP_SOFTMAX, c.x, NULL, c.grad, rows, n, 1.0);
                void *swap = c.x;
                c.x = c.grad; /* src: y; grad: the logits as dy */
                c.grad = swap;
            }
            if (regime == REGIME_EXCLUDING_ROW) {
                c.keep = checked_malloc(n);
                for (size_t j = 0; j < n; j++)
                    c.keep[j] = (j * 7) % 5 != 0; /* a fifth excluded */
            }
            if (regime == REGIME_PREFIX_ROWS) {
                /* Causal: row r keeps n - rows + 1 + r elements (at least 1). */
                c.kept = checked_malloc(rows * sizeof *c.kept);
                for (size_t r = 0; r < rows; r++)
                    c.kept[r] = n > rows - 1 - r ? n - (rows - 1 - r) : 1;
            }
            const double seconds = time_call(&c);
            const char *op_name = regime == REGIME_TRANSPOSE     ? "-"
                                  : op == SOFTMAX_OP_SOFTMAX     ? "softmax"
                                  : op == SOFTMAX_OP_LOG_SOFTMAX ? "log_softmax"
                                                                 : "softmax_backward";
            if (isnan(seconds))
                printf("%-7s %-4s %-16s %-21s %9zu %7zu  %-22s %8s\n", t->isa, t->type, regime_names[regime], op_name,
                       n, rows, l.why[i], "declined");
            else
                printf("%-7s %-4s %-16s %-21s %9zu %7zu  %-22s %8.3f\n", t->isa, t->type, regime_names[regime], op_name,
                       n, rows, l.why[i], 1e9 * seconds / (double)count);
            fflush(stdout);
            free(c.x);
            free(c.y);
            free(c.grad);
            free(c.half_x);
            free(c.keep);
            free(c.kept);
        }
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--regime") == 0 && i + 1 < argc) {
            only_regime = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--regime NAME]\n"
                    "  NAME: rows fast_rows prefix_rows columns excluding_row half_line half_row fast_half_line "
                    "transpose_lines\n"
                    "  SOFTMAX_ISA=scalar|avx2|avx512 times that path only (default: every path this CPU runs)\n",
                    argv[0]);
            return 2;
        }
    }
    bench_table tables[MAX_TABLES];
    const size_t count = available_tables(tables);
    printf("# one thread; ns per element, median of %d samples; n: row length (columns: lines side by side), "
           "rows: rows per call (columns: axis length)\n",
           quick ? 3 : 7);
    printf("%-7s %-4s %-16s %-21s %9s %7s  %-22s %8s\n", "isa", "type", "regime", "op", "n", "rows", "threshold",
           "ns/elem");
    for (size_t t = 0; t < count; t++)
        for (int regime = 0; regime < REGIME_COUNT; regime++)
            bench_regime(&tables[t], regime);
    return 0;
}
