/*
 * test_regimes.c -- every regime of the kernel tables called directly,
 * without the public API, on both sides of every threshold of
 * src/kernels/thresholds.h, for f32 and f64 on the code path SOFTMAX_ISA
 * selects (ctest runs it once per path of SOFTMAX_TEST_ISAS).
 *
 * Two kinds of checks (src/kernels/README.md lists the invariants):
 *   accuracy    against the MPFR reference of tests/reference.c, within the
 *               contract's bound (docs/numerics.md: 3 ulp f32 / 4 f64 on the
 *               SIMD paths, 2 / 4 on the portable one; the fast mode 4);
 *   invariants  bit for bit: a row alone = the same row in a group of tiny
 *               or small rows at every position, and in a causal prefix; a
 *               long row across threads = the single-thread row; masked in
 *               place (excluding_row) = gathered with -inf; a half line or
 *               row = the f32 kernel on the widened row, rounded once; a
 *               column chunk's bits do not depend on how the lines were
 *               split; a declined call writes nothing.
 *
 * The column kernels promise accuracy only, not the bits of the rows
 * kernels on the transposed data, so they are checked against MPFR.
 *
 * `test_regimes --mutate` perturbs one output of every kernel call under
 * check and passes only if every family of checks notices: the proof that
 * each check can fail (ctest runs it as test_regimes.mutated).
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks.h"
#include "internal.h"
#include "kernels/preconditions.h"
#include "kernels/thresholds.h"
#include "reference.h"
#include "testutil.h"

/* The fast mode's documented bound (docs/performance.md), in ulp. */
#define FAST_BOUND 5.0
/* The portable path has no vectors: its lengths are taken at the widest
 * SIMD vector (64 bytes), so that it is checked on the same rows. */
#define WIDEST_VECTOR_BYTES 64

static bool mutate_mode;

/* ------------------------------------------------------------------------
 * The table under test: the only code that knows the table's layout.
 * ---------------------------------------------------------------------- */

typedef struct regime_table {
    softmax_dtype dt;
    size_t element_size;
    size_t lanes; /* vector width in elements, 0 on the portable path */
    size_t threshold_lanes;
    const softmax_kernels *k;
} regime_table;

static regime_table table_for(softmax_dtype dt)
{
    int status = 0;
    const softmax_kernels *k = softmax_dispatch(dt, "test_regimes", &status);
    if (k == NULL)
        fail_msg("no kernels for %s: %s", dtype_name(dt), softmax_last_error());
    regime_table t = {.dt = dt, .element_size = k->element_size, .k = k};
    /* 0 on the portable path: no vectors, no SIMD regimes. */
    t.lanes = k->lanes > 1 ? k->lanes : 0;
    t.threshold_lanes = t.lanes ? t.lanes : WIDEST_VECTOR_BYTES / t.element_size;
    return t;
}

typedef enum regime {
    REGIME_FAST_ROWS,
    REGIME_PREFIX_ROWS,
    REGIME_LONG_ROW,
    REGIME_EXCLUDING_ROW,
    REGIME_HALF_LINE,
    REGIME_HALF_ROW,
    REGIME_FAST_HALF_LINE,
    REGIME_HALF_CONVERSIONS,
} regime;

static bool has_regime(const regime_table *t, regime r)
{
    /* Every slot is callable; the capability bits say which ones hold this
     * path's own kernel rather than the portable entry. */
    const softmax_kernels *k = t->k;
    const unsigned caps = k->capabilities;
    switch (r) {
    case REGIME_FAST_ROWS:
        return (caps & SOFTMAX_KERNELS_FAST_MODE) != 0;
    case REGIME_PREFIX_ROWS:
        return true;
    case REGIME_LONG_ROW:
        return k->long_row_min != SIZE_MAX;
    case REGIME_EXCLUDING_ROW:
        return (caps & SOFTMAX_KERNELS_MASKED_ROWS) != 0;
    case REGIME_HALF_LINE:
    case REGIME_HALF_ROW:
        return (caps & SOFTMAX_KERNELS_HALF_ROWS) != 0;
    case REGIME_FAST_HALF_LINE:
        return (caps & SOFTMAX_KERNELS_HALF_ROWS) != 0 && (caps & SOFTMAX_KERNELS_FAST_MODE) != 0;
    case REGIME_HALF_CONVERSIONS:
        return k->element_size == sizeof(float);
    }
    return false;
}

/* ------------------------------------------------------------------------
 * Lengths: both sides of every threshold.
 * ---------------------------------------------------------------------- */

enum { MAX_LENGTHS = 64 };
typedef struct lengths {
    size_t n[MAX_LENGTHS];
    size_t count;
} lengths;

static void add_length(lengths *l, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < l->count; i++)
        if (l->n[i] == n)
            return;
    assert_true(l->count < MAX_LENGTHS);
    l->n[l->count++] = n;
}

static void add_around(lengths *l, size_t limit)
{
    add_length(l, limit - 1);
    add_length(l, limit);
    add_length(l, limit + 1);
}

static int compare_sizes(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static void keep_up_to(lengths *l, size_t largest)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->count; i++)
        if (l->n[i] <= largest)
            l->n[kept++] = l->n[i];
    l->count = kept;
    qsort(l->n, l->count, sizeof l->n[0], compare_sizes);
}

/* The longest tiny row (thresholds.h): one vector, two on AVX2. */
static size_t tiny_limit(const regime_table *t)
{
    int status = 0;
    const softmax_path *path = softmax_dispatch_path("test_regimes", &status);
    const bool avx2 = path != NULL && path->isa == SOFTMAX_ISA_AVX2;
    return (avx2 ? TINY_VECTORS_AVX2 : 1) * t->threshold_lanes;
}
static size_t small_limit(const regime_table *t)
{
    return SMALL_VECTORS * t->threshold_lanes;
}
static size_t stream_limit(const regime_table *t)
{
    return STREAM_BYTES / t->element_size;
}
static size_t stored_stream_limit(const regime_table *t)
{
    return STORED_STREAM_BYTES / t->element_size;
}
static size_t long_row_limit(void)
{
    return LONG_ROW_MIN_BLOCKS * SUM_BLOCK;
}

/* Every length at which a contiguous forward row changes kernel. */
static lengths row_lengths(const regime_table *t, size_t largest)
{
    lengths l = {.count = 0};
    add_length(&l, 1);
    add_length(&l, 2);
    add_around(&l, t->threshold_lanes); /* one vector | two */
    add_around(&l, tiny_limit(t));      /* tiny | small */
    add_around(&l, small_limit(t));     /* small | one row from cache */
    add_around(&l, SUM_BLOCK);          /* one sum block | two */
    add_around(&l, 2 * SUM_BLOCK);
    add_around(&l, long_row_limit());       /* one thread | shared by threads (api.c) */
    add_around(&l, stream_limit(t));        /* from cache | streamed */
    add_around(&l, stored_stream_limit(t)); /* exps kept | computed again */
    keep_up_to(&l, largest);
    return l;
}

/* ------------------------------------------------------------------------
 * Data, perturbation, comparison.
 * ---------------------------------------------------------------------- */

/* Logits 4 * N(0, 1) in the data type. Long rows draw from a pool of
 * values, so that the MPFR reference computes one exponential per distinct
 * value (reference.c) and the long rows stay affordable. */
static void fill_logits(softmax_dtype dt, void *x, size_t n, test_rng *rng)
{
    enum { POOL = 512 };
    double pool[POOL];
    const bool pooled = n >= 4 * POOL;
    if (pooled)
        for (size_t k = 0; k < POOL; k++)
            pool[k] = 4.0 * rng_normal(rng);
    for (size_t i = 0; i < n; i++)
        buf_set(dt, x, i, pooled ? pool[rng_below(rng, POOL)] : 4.0 * rng_normal(rng));
}

/* --mutate: moves the largest output of a kernel call by 4096 ulp of
 * max(|y|, 1), beyond every bound and every bit-for-bit check. */
static void perturb(softmax_dtype dt, void *y, size_t n)
{
    if (!mutate_mode || n == 0)
        return;
    size_t at = 0;
    double largest = -1;
    for (size_t i = 0; i < n; i++) {
        double v = fabs(buf_get(dt, y, i));
        if (isfinite(v) && v > largest) {
            largest = v;
            at = i;
        }
    }
    double v = buf_get(dt, y, at);
    buf_set(dt, y, at, v - ldexp(fmax(fabs(v), 1.0), 12 - dtype_precision(dt)));
}

static void perturb_bits(void *y, size_t bytes)
{
    if (mutate_mode && bytes > 0)
        ((unsigned char *)y)[bytes / 2] ^= 1;
}

/* Number of elements of `got` whose bits differ from `want`; the first is
 * described. */
static size_t bit_differences(const void *got, const void *want, size_t n, size_t element_size, const char *what)
{
    size_t differences = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *g = (const unsigned char *)got + i * element_size;
        const unsigned char *w = (const unsigned char *)want + i * element_size;
        if (memcmp(g, w, element_size) != 0) {
            if (differences == 0 && !mutate_mode) {
                double gv = element_size == 8 ? *(const double *)g : element_size == 4 ? *(const float *)g : 0;
                double wv = element_size == 8 ? *(const double *)w : element_size == 4 ? *(const float *)w : 0;
                fprintf(stderr, "  FAIL %s: [%zu] differs: %a, expected %a (bits of %zu bytes)\n", what, i, gv, wv,
                        element_size);
            }
            differences++;
        }
    }
    return differences;
}

static size_t untouched_or_report(const void *buf, size_t bytes, const char *what)
{
    if (is_sentinel(buf, bytes))
        return 0;
    if (!mutate_mode)
        fprintf(stderr, "  FAIL %s: a declined call wrote to its output\n", what);
    return 1;
}

/* The end of a family of checks: no failure normally; under --mutate
 * every perturbed output must be noticed. */
static void family_outcome(const char *family, size_t failures, size_t calls)
{
    static double last = 0;
    const double now = (double)clock() / CLOCKS_PER_SEC;
    printf("%-30s %s: %4zu kernel calls checked, %zu failures (%.2f s of CPU)\n", family, softmax_isa_name(), calls,
           failures, now - last);
    last = now;
    fflush(stdout);
    if (calls == 0 && !mutate_mode)
        return;
    if (mutate_mode) {
        /* One output perturbed per call: one failure per call at least. */
        if (failures < calls)
            fail_msg("%s: perturbed outputs went unnoticed (%zu of %zu calls noticed)", family, failures, calls);
    } else if (failures > 0) {
        fail_msg("%s: %zu failures (details above)", family, failures);
    }
}

/* Forward outputs of one row against MPFR: y (softmax, may be NULL) and
 * logy (log-softmax, may be NULL). */
static size_t check_forward_row(softmax_dtype dt, const void *x, size_t n, double scale, const void *y,
                                const void *logy, double bound, const char *what)
{
    ref_vec ref, ref_log;
    ref_vec_init(&ref, n);
    ref_vec_init(&ref_log, n);
    ref_softmax_both(y ? &ref : NULL, logy ? &ref_log : NULL, ref_line_make(dt, x, n, 1), scale);
    err_stats st;
    err_stats_init(&st);
    size_t failures = 0;
    if (y)
        failures += check_softmax_line(&ref, ref_line_make(dt, y, n, 1), bound, &st, what);
    if (logy)
        failures += check_log_softmax_line(&ref_log, ref_line_make(dt, logy, n, 1), bound, &st, what);
    ref_vec_free(&ref);
    ref_vec_free(&ref_log);
    return failures;
}

static const double scales_short[] = {1.0, -0.75, 0.3125};
static const double scales_long[] = {1.0};

static const softmax_op forward_ops[] = {SOFTMAX_OP_SOFTMAX, SOFTMAX_OP_LOG_SOFTMAX};
static const softmax_op all_ops[] = {SOFTMAX_OP_SOFTMAX, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_OP_SOFTMAX_BACKWARD,
                                     SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, SOFTMAX_OP_LOG_SOFTMAX_JVP};

static bool is_forward(softmax_op op)
{
    return op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX;
}

/* Rows per call at length n: enough for two groups and a remainder where
 * rows are grouped. */
static size_t rows_at(const regime_table *t, size_t n)
{
    if (n <= small_limit(t) + 1)
        return 2 * t->threshold_lanes + 1;
    return n <= 2 * SUM_BLOCK + 1 ? 2 : 1;
}

/* ------------------------------------------------------------------------
 * Accuracy: rows, fast rows, gradients, columns.
 * ---------------------------------------------------------------------- */

static void test_rows_accuracy(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 101);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        const lengths l = row_lengths(&t, SIZE_MAX);
        for (size_t i = 0; i < l.count; i++) {
            const size_t n = l.n[i], rows = rows_at(&t, n);
            const bool short_row = n <= 2 * SUM_BLOCK + 1;
            const double *scales = short_row ? scales_short : scales_long;
            const size_t scale_count = short_row ? ARRAY_LEN(scales_short) : ARRAY_LEN(scales_long);
            void *x = buf_alloc(t.dt, rows * n), *y = buf_alloc(t.dt, rows * n), *logy = buf_alloc(t.dt, rows * n);
            fill_logits(t.dt, x, rows * n, &rng);
            for (size_t s = 0; s < scale_count; s++) {
                t.k->rows(SOFTMAX_OP_SOFTMAX, x, NULL, y, rows, n, scales[s]);
                t.k->rows(SOFTMAX_OP_LOG_SOFTMAX, x, NULL, logy, rows, n, scales[s]);
                perturb(t.dt, y, rows * n);
                perturb(t.dt, logy, rows * n);
                calls += 2;
                for (size_t r = 0; r < rows; r++) {
                    char what[128];
                    snprintf(what, sizeof what, "rows %s n=%zu row %zu/%zu scale=%g", dtype_name(t.dt), n, r, rows,
                             scales[s]);
                    failures += check_forward_row(t.dt, buf_cat(t.dt, x, r * n), n, scales[s], buf_cat(t.dt, y, r * n),
                                                  buf_cat(t.dt, logy, r * n), contract_ulp_bound(t.dt), what);
                }
            }
            free(x);
            free(y);
            free(logy);
        }
    }
    family_outcome("rows accuracy", failures, calls);
}

static void test_fast_rows_accuracy(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 202);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        if (!has_regime(&t, REGIME_FAST_ROWS))
            continue;
        lengths l = row_lengths(&t, SIZE_MAX);
        add_around(&l, FAST_HALF_LINE_MIN);
        keep_up_to(&l, SIZE_MAX);
        for (size_t i = 0; i < l.count; i++) {
            const size_t n = l.n[i], rows = rows_at(&t, n);
            void *x = buf_alloc(t.dt, rows * n), *y = buf_alloc(t.dt, rows * n), *logy = buf_alloc(t.dt, rows * n);
            fill_logits(t.dt, x, rows * n, &rng);
            t.k->fast_rows(SOFTMAX_OP_SOFTMAX, x, y, rows, n, 1.0);
            t.k->fast_rows(SOFTMAX_OP_LOG_SOFTMAX, x, logy, rows, n, 1.0);
            perturb(t.dt, y, rows * n);
            perturb(t.dt, logy, rows * n);
            calls += 2;
            for (size_t r = 0; r < rows; r++) {
                char what[128];
                snprintf(what, sizeof what, "fast_rows %s n=%zu row %zu/%zu", dtype_name(t.dt), n, r, rows);
                failures += check_forward_row(t.dt, buf_cat(t.dt, x, r * n), n, 1.0, buf_cat(t.dt, y, r * n),
                                              buf_cat(t.dt, logy, r * n), FAST_BOUND, what);
            }
            free(x);
            free(y);
            free(logy);
        }
    }
    family_outcome("fast rows accuracy", failures, calls);
}

/* One gradient output (rows x n, line stride `stride` between elements and
 * `row_step` between lines) against MPFR at the tolerance of
 * grad_tolerance(); an exactly zero reference demands 0. */
static size_t check_gradient_lines(softmax_op op, softmax_dtype dt, const void *a, const void *b, const void *out,
                                   size_t lines, size_t n, size_t stride, size_t line_step, double scale,
                                   const char *label)
{
    size_t failures = 0;
    ref_vec ref;
    ref_vec_init(&ref, n);
    double *local = malloc(n * sizeof(double)), *global = malloc(n * sizeof(double)), *tol = malloc(n * sizeof(double));
    assert_non_null(local);
    assert_non_null(global);
    assert_non_null(tol);
    err_stats st;
    err_stats_init(&st);
    char what[160];
    snprintf(what, sizeof what, "%s %s %s n=%zu scale=%g", label, op_name(op), dtype_name(dt), n, scale);
    for (size_t r = 0; r < lines; r++) {
        ref_line al = ref_line_make(dt, buf_cat(dt, a, r * line_step), n, stride);
        ref_line bl = ref_line_make(dt, buf_cat(dt, b, r * line_step), n, stride);
        ref_line ol = ref_line_make(dt, buf_cat(dt, out, r * line_step), n, stride);
        ref_grad(op, &ref, al, bl, scale, local, global);
        grad_tolerance(tol, local, global, n, dt, scale);
        failures += check_tolerance_line(&ref, tol, ol, &st, what);
        for (size_t i = 0; i < n; i++)
            if (mpfr_zero_p(ref_at(&ref, i)) && ref_line_get(ol, i) != 0.0)
                failures++;
    }
    free(local);
    free(global);
    free(tol);
    ref_vec_free(&ref);
    return failures;
}

static void test_gradients_accuracy(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 303);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        const lengths l = row_lengths(&t, 2 * SUM_BLOCK + 1);
        for (size_t i = 0; i < l.count; i++) {
            const size_t n = l.n[i], rows = n <= small_limit(&t) + 1 ? 2 : 1;
            void *y = reference_outputs(t.dt, 0, rows, n, 3.0, 0.0, &rng);
            void *logy = reference_outputs(t.dt, 1, rows, n, 3.0, 0.0, &rng);
            void *dy = buf_alloc(t.dt, rows * n), *out = buf_alloc(t.dt, rows * n);
            fill_logits(t.dt, dy, rows * n, &rng);
            for (size_t o = 2; o < ARRAY_LEN(all_ops); o++) {
                const softmax_op op = all_ops[o];
                const void *a = op == SOFTMAX_OP_SOFTMAX_BACKWARD ? y : logy;
                t.k->rows(op, a, dy, out, rows, n, -0.75);
                perturb(t.dt, out, rows * n);
                calls++;
                failures += check_gradient_lines(op, t.dt, a, dy, out, rows, n, 1, n, -0.75, "rows");
            }
            free(y);
            free(logy);
            free(dy);
            free(out);
        }
    }
    family_outcome("gradients accuracy", failures, calls);
}

/* Softmax along a non-last axis: one [n, inner] slice, inner around the
 * column chunk (COLUMN_VECTORS vectors of lines); accuracy of every line,
 * and the bits of a line independent of the chunks the lines were split
 * into (j_begin a multiple of column_chunk). */
static void test_columns(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0, split_failures = 0, split_calls = 0;
    test_rng rng;
    rng_seed(&rng, 404);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        const size_t chunk = COLUMN_VECTORS * t.threshold_lanes;
        if (t.lanes)
            assert_int_equal(t.k->column_chunk, chunk);
        lengths inners = {.count = 0};
        add_length(&inners, 1);
        add_around(&inners, t.threshold_lanes);
        add_around(&inners, chunk);
        add_length(&inners, 2 * chunk + 1);
        keep_up_to(&inners, SIZE_MAX);
        const size_t axis_lengths[] = {1, 2, t.threshold_lanes + 1, small_limit(&t) + 1};
        for (size_t an = 0; an < ARRAY_LEN(axis_lengths); an++) {
            for (size_t b = 0; b < inners.count; b++) {
                const size_t n = axis_lengths[an], inner = inners.n[b], count = n * inner;
                void *x = buf_alloc(t.dt, count), *y = buf_alloc(t.dt, count), *whole = buf_alloc(t.dt, count);
                void *dy = buf_alloc(t.dt, count);
                fill_logits(t.dt, x, count, &rng);
                fill_logits(t.dt, dy, count, &rng);
                for (size_t o = 0; o < ARRAY_LEN(all_ops); o++) {
                    const softmax_op op = all_ops[o];
                    const double scale = o % 2 ? 1.0 : -0.75;
                    /* The gradient ops read a softmax (log-softmax) output: the
                     * one the forward op just computed, in `whole`. */
                    void *a = x;
                    if (!is_forward(op)) {
                        a = buf_alloc(t.dt, count);
                        t.k->columns(op == SOFTMAX_OP_SOFTMAX_BACKWARD ? SOFTMAX_OP_SOFTMAX : SOFTMAX_OP_LOG_SOFTMAX, x,
                                     NULL, a, n, inner, 0, inner, 1.0);
                    }
                    const void *grad = is_forward(op) ? NULL : dy;
                    t.k->columns(op, a, grad, whole, n, inner, 0, inner, scale);
                    /* The same lines chunk by chunk, the last chunk first. */
                    fill_sentinel(y, count * t.element_size);
                    const size_t step = t.k->column_chunk;
                    for (size_t j0 = (inner - 1) / step * step;; j0 -= step) {
                        t.k->columns(op, a, grad, y, n, inner, j0, j0 + step < inner ? j0 + step : inner, scale);
                        if (j0 == 0)
                            break;
                    }
                    perturb(t.dt, y, count);
                    split_calls++;
                    char what[128];
                    snprintf(what, sizeof what, "columns split %s %s n=%zu inner=%zu", op_name(op), dtype_name(t.dt), n,
                             inner);
                    split_failures += bit_differences(y, whole, count, t.element_size, what) > 0;
                    perturb(t.dt, whole, count);
                    calls++;
                    if (is_forward(op)) {
                        ref_vec ref;
                        ref_vec_init(&ref, n);
                        err_stats st;
                        err_stats_init(&st);
                        snprintf(what, sizeof what, "columns %s %s n=%zu inner=%zu", op_name(op), dtype_name(t.dt), n,
                                 inner);
                        for (size_t j = 0; j < inner; j++) {
                            ref_softmax(&ref, ref_line_make(t.dt, buf_cat(t.dt, x, j), n, inner), scale,
                                        op == SOFTMAX_OP_LOG_SOFTMAX);
                            ref_line yl = ref_line_make(t.dt, buf_cat(t.dt, whole, j), n, inner);
                            failures += op == SOFTMAX_OP_LOG_SOFTMAX
                                            ? check_log_softmax_line(&ref, yl, contract_ulp_bound(t.dt), &st, what)
                                            : check_softmax_line(&ref, yl, contract_ulp_bound(t.dt), &st, what);
                        }
                        ref_vec_free(&ref);
                    } else {
                        failures += check_gradient_lines(op, t.dt, a, dy, whole, inner, n, inner, 1, scale, "columns");
                        free(a);
                    }
                }
                free(x);
                free(y);
                free(whole);
                free(dy);
            }
        }
    }
    family_outcome("columns accuracy", failures, calls);
    family_outcome("columns split invariance", split_failures, split_calls);
}

/* Rows whose |scale * log2(e) * max| lies just below OFFSET_LIMIT (the
 * SIMD kernels' exact argument reduction), just above it and far beyond it
 * (the portable kernels take those rows): accurate on every side, at the
 * lengths of every row regime up to the in-cache one. */
static void test_offset_limit(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 505);
    static const double factors[] = {1 - 0x1p-10, 1 + 0x1p-10, 16};
    static const double scales[] = {1.0, -0.75};
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        const double limit = t.dt == SOFTMAX_DTYPE_F32 ? OFFSET_LIMIT_F32 : OFFSET_LIMIT_F64;
        const size_t row_lengths_here[] = {1, t.threshold_lanes, small_limit(&t), small_limit(&t) + 1, SUM_BLOCK + 1};
        for (size_t f = 0; f < ARRAY_LEN(factors); f++) {
            for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
                /* Every logit near `centre`: the row's largest |c x| is
                 * limit * factor, within the spread. */
                const double centre = limit * factors[f] / (fabs(scales[s]) * 0x1.71547652b82fep+0);
                for (size_t i = 0; i < ARRAY_LEN(row_lengths_here); i++) {
                    const size_t n = row_lengths_here[i], rows = rows_at(&t, n);
                    void *x = buf_alloc(t.dt, rows * n), *y = buf_alloc(t.dt, rows * n),
                         *logy = buf_alloc(t.dt, rows * n);
                    for (size_t e = 0; e < rows * n; e++)
                        buf_set(t.dt, x, e, centre + 4.0 * rng_normal(&rng));
                    t.k->rows(SOFTMAX_OP_SOFTMAX, x, NULL, y, rows, n, scales[s]);
                    t.k->rows(SOFTMAX_OP_LOG_SOFTMAX, x, NULL, logy, rows, n, scales[s]);
                    perturb(t.dt, y, rows * n);
                    perturb(t.dt, logy, rows * n);
                    calls += 2;
                    for (size_t r = 0; r < rows; r++) {
                        char what[160];
                        snprintf(what, sizeof what, "offset limit x %g: %s n=%zu row %zu scale=%g", factors[f],
                                 dtype_name(t.dt), n, r, scales[s]);
                        failures +=
                            check_forward_row(t.dt, buf_cat(t.dt, x, r * n), n, scales[s], buf_cat(t.dt, y, r * n),
                                              buf_cat(t.dt, logy, r * n), contract_ulp_bound(t.dt), what);
                    }
                    free(x);
                    free(y);
                    free(logy);
                }
            }
        }
    }
    family_outcome("offset limit accuracy", failures, calls);
}

/* Softmax along a non-last axis whose exps and residuals of one chunk of
 * lines just fit in COLUMN_WORKSPACE_BYTES (the column kernels), and just
 * do not (the portable lines): accurate on both sides. */
/* The line after j when every step-th line and the last are checked;
 * count when none is left. */
static size_t next_sampled_line(size_t j, size_t step, size_t count)
{
    if (j + 1 >= count)
        return count;
    return j + step < count ? j + step : count - 1;
}

static void test_column_workspace(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 606);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        if (t.lanes == 0) {
            /* The portable columns are its lines one by one, at any length:
             * no workspace, no threshold (and a line of 4M elements whose
             * reference was a third of the test's time). */
            printf("column workspace: %s: the portable path has none\n", dtype_name(t.dt));
            continue;
        }
        const size_t inner = t.k->column_chunk;
        const size_t limit = COLUMN_WORKSPACE_BYTES / (2 * inner * t.element_size);
        for (size_t n = limit; n <= limit + 1; n++) {
            const size_t count = n * inner;
            void *x = buf_alloc(t.dt, count), *y = buf_alloc(t.dt, count);
            fill_logits(t.dt, x, count, &rng);
            t.k->columns(SOFTMAX_OP_SOFTMAX, x, NULL, y, n, inner, 0, inner, 1.0);
            perturb(t.dt, y, count);
            calls++;
            ref_vec ref;
            ref_vec_init(&ref, n);
            err_stats st;
            err_stats_init(&st);
            char what[128];
            snprintf(what, sizeof what, "column workspace: %s n=%zu inner=%zu", dtype_name(t.dt), n, inner);
            /* Lines lanes + 1 apart, and the last: every vector of the
             * chunk and every lane position within a vector, at a
             * fraction of the MPFR references of all lines (all of them
             * when mutated: the perturbed output may be in any line). */
            const size_t line_step = mutate_mode ? 1 : t.lanes + 1;
            for (size_t j = 0; j < inner; j = next_sampled_line(j, line_step, inner)) {
                ref_softmax(&ref, ref_line_make(t.dt, buf_cat(t.dt, x, j), n, inner), 1.0, false);
                failures += check_softmax_line(&ref, ref_line_make(t.dt, buf_cat(t.dt, y, j), n, inner),
                                               contract_ulp_bound(t.dt), &st, what);
            }
            ref_vec_free(&ref);
            free(x);
            free(y);
        }
    }
    family_outcome("column workspace accuracy", failures, calls);
}

/* ------------------------------------------------------------------------
 * Invariants: a row's bits are a function of that row alone.
 * ---------------------------------------------------------------------- */

typedef void (*rows_call)(const regime_table *t, softmax_op op, const void *x, void *y, size_t rows, size_t n,
                          double scale);
static void call_rows(const regime_table *t, softmax_op op, const void *x, void *y, size_t rows, size_t n, double scale)
{
    t->k->rows(op, x, NULL, y, rows, n, scale);
}
static void call_fast_rows(const regime_table *t, softmax_op op, const void *x, void *y, size_t rows, size_t n,
                           double scale)
{
    t->k->fast_rows(op, x, y, rows, n, scale);
}

/* Groups of R rows (R on both sides of TINY_GROUP_MIN, FAST_SMALL_GROUP and
 * the vector width) against each row computed alone. */
static size_t group_invariant(const regime_table *t, rows_call call, const char *label, size_t *calls, test_rng *rng)
{
    const size_t lanes = t->threshold_lanes;
    lengths groups = {.count = 0};
    add_length(&groups, 1);
    add_around(&groups, TINY_GROUP_MIN);
    add_around(&groups, FAST_SMALL_GROUP);
    add_around(&groups, lanes);
    add_length(&groups, 2 * lanes + 1);
    keep_up_to(&groups, SIZE_MAX);
    const size_t most = groups.n[groups.count - 1];
    const lengths l = row_lengths(t, small_limit(t) + 1);
    size_t failures = 0;
    for (size_t i = 0; i < l.count; i++) {
        const size_t n = l.n[i];
        void *x = buf_alloc(t->dt, most * n), *alone = buf_alloc(t->dt, most * n), *y = buf_alloc(t->dt, most * n);
        fill_logits(t->dt, x, most * n, rng);
        for (size_t o = 0; o < ARRAY_LEN(forward_ops); o++) {
            for (size_t s = 0; s < ARRAY_LEN(scales_short); s++) {
                const double scale = scales_short[s];
                for (size_t r = 0; r < most; r++)
                    call(t, forward_ops[o], buf_cat(t->dt, x, r * n), buf_at(t->dt, alone, r * n), 1, n, scale);
                for (size_t g = 0; g < groups.count; g++) {
                    const size_t rows = groups.n[g];
                    call(t, forward_ops[o], x, y, rows, n, scale);
                    perturb(t->dt, y, rows * n);
                    (*calls)++;
                    char what[128];
                    snprintf(what, sizeof what, "%s %s %s n=%zu group of %zu scale=%g", label, op_name(forward_ops[o]),
                             dtype_name(t->dt), n, rows, scale);
                    failures += bit_differences(y, alone, rows * n, t->element_size, what) > 0;
                }
            }
        }
        free(x);
        free(alone);
        free(y);
    }
    return failures;
}

static void test_group_invariant(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0, fast_failures = 0, fast_calls = 0;
    test_rng rng;
    rng_seed(&rng, 505);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        failures += group_invariant(&t, call_rows, "rows", &calls, &rng);
        if (has_regime(&t, REGIME_FAST_ROWS))
            fast_failures += group_invariant(&t, call_fast_rows, "fast_rows", &fast_calls, &rng);
    }
    family_outcome("row alone = in a group", failures, calls);
    family_outcome("fast: alone = in a group", fast_failures, fast_calls);
}

/* The prefixes for which prefix_rows runs another kernel than rows() on
 * the prefix alone, although internal.h and src/kernels/README.md promise
 * rows()'s bits (measured on both SIMD paths; the results stay within the
 * contract, which is what is checked for them):
 *   - f64 prefixes of the small regime (LANES < kept <= SMALL_VECTORS *
 *     LANES) take blocks_forward_row, rows() the grouped small kernel
 *     (the f32 kernels happen to agree, and are held to it);
 *   - softmax prefixes of the in-cache regime in rows longer than
 *     STREAM_BYTES take the portable lines (no workspace is asked for). */
static bool prefix_takes_another_kernel(const regime_table *t, softmax_op op, size_t n, size_t kept)
{
    /* None does: kept for the record of how a deviation would be checked. */
    (void)t, (void)op, (void)n, (void)kept;
    return false;
}

/* prefix_rows: row r is rows() on its first kept[r] elements, then 0
 * (log-softmax -inf; gradients 0), for row lengths on both sides of the
 * regimes (n decides whether a workspace is used) and prefixes across
 * every threshold below n. */
static void test_prefix_invariant(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0, deviations = 0;
    test_rng rng;
    rng_seed(&rng, 606);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        if (!has_regime(&t, REGIME_PREFIX_ROWS))
            continue;
        const size_t row_lengths_tested[] = {small_limit(&t), small_limit(&t) + 1, 2 * SUM_BLOCK + 1,
                                             stream_limit(&t) + 1};
        for (size_t a = 0; a < ARRAY_LEN(row_lengths_tested); a++) {
            const size_t n = row_lengths_tested[a];
            lengths prefixes = row_lengths(&t, n);
            size_t kept[MAX_LENGTHS + 1];
            const size_t rows = prefixes.count + 1;
            kept[0] = 0;
            memcpy(kept + 1, prefixes.n, prefixes.count * sizeof kept[0]);
            void *x = buf_alloc(t.dt, rows * n), *dy = buf_alloc(t.dt, rows * n);
            void *y = buf_alloc(t.dt, rows * n), *want = buf_alloc(t.dt, rows * n);
            void *in = buf_alloc(t.dt, rows * n);
            fill_logits(t.dt, x, rows * n, &rng);
            fill_logits(t.dt, dy, rows * n, &rng);
            for (size_t o = 0; o < ARRAY_LEN(all_ops); o++) {
                const softmax_op op = all_ops[o];
                const void *src = x;
                if (!is_forward(op)) {
                    /* A softmax (log-softmax) output of each prefix. */
                    t.k->prefix_rows(op == SOFTMAX_OP_SOFTMAX_BACKWARD ? SOFTMAX_OP_SOFTMAX : SOFTMAX_OP_LOG_SOFTMAX, x,
                                     NULL, in, rows, n, kept, 1.0);
                    src = in;
                }
                const void *grad = is_forward(op) ? NULL : dy;
                const double fill = op == SOFTMAX_OP_LOG_SOFTMAX ? -INFINITY : 0.0;
                for (size_t r = 0; r < rows; r++) {
                    if (kept[r] > 0)
                        t.k->rows(op, buf_cat(t.dt, src, r * n), grad ? buf_cat(t.dt, grad, r * n) : NULL,
                                  buf_at(t.dt, want, r * n), 1, kept[r], 1.0);
                    for (size_t i = kept[r]; i < n; i++)
                        buf_set(t.dt, want, r * n + i, fill);
                }
                t.k->prefix_rows(op, src, grad, y, rows, n, kept, 1.0);
                perturb(t.dt, y, rows * n);
                calls++;
                for (size_t r = 0; r < rows; r++) {
                    char what[128];
                    snprintf(what, sizeof what, "prefix_rows %s %s n=%zu kept=%zu", op_name(op), dtype_name(t.dt), n,
                             kept[r]);
                    if (prefix_takes_another_kernel(&t, op, n, kept[r])) {
                        /* The prefix within the contract's bound, the fill bit for bit. */
                        deviations++;
                        const bool log = op == SOFTMAX_OP_LOG_SOFTMAX;
                        failures += check_forward_row(
                            t.dt, buf_cat(t.dt, x, r * n), kept[r], 1.0, log ? NULL : buf_cat(t.dt, y, r * n),
                            log ? buf_cat(t.dt, y, r * n) : NULL, contract_ulp_bound(t.dt), what);
                        failures +=
                            bit_differences(buf_cat(t.dt, y, r * n + kept[r]), buf_cat(t.dt, want, r * n + kept[r]),
                                            n - kept[r], t.element_size, what) > 0;
                    } else {
                        failures += bit_differences(buf_cat(t.dt, y, r * n), buf_cat(t.dt, want, r * n), n,
                                                    t.element_size, what) > 0;
                    }
                }
            }
            free(x);
            free(dy);
            free(y);
            free(want);
            free(in);
        }
    }
    if (deviations > 0)
        printf("prefix_rows: %zu prefixes served by another kernel than rows() (see prefix_takes_another_kernel): "
               "checked against MPFR instead of bit for bit\n",
               deviations);
    family_outcome("prefix = rows on the prefix", failures, calls);
}

/* long_row with 2 threads = rows() on the one row, around the length from
 * which api.c shares a row (long_row_min) and the streaming limits. */
static void test_long_row_invariant(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 707);
    for (size_t d = 0; d < 2; d++) {
        const regime_table t = table_for(test_dtypes[d]);
        if (!has_regime(&t, REGIME_LONG_ROW))
            continue;
        assert_int_equal(t.k->long_row_min, long_row_limit());
        lengths l = {.count = 0};
        add_around(&l, long_row_limit());
        add_around(&l, stream_limit(&t));
        add_around(&l, stored_stream_limit(&t));
        keep_up_to(&l, SIZE_MAX);
        for (size_t i = 0; i < l.count; i++) {
            const size_t n = l.n[i];
            void *x = buf_alloc(t.dt, n), *dy = buf_alloc(t.dt, n), *y = buf_alloc(t.dt, n), *want = buf_alloc(t.dt, n);
            void *in = buf_alloc(t.dt, n);
            fill_logits(t.dt, x, n, &rng);
            fill_logits(t.dt, dy, n, &rng);
            for (size_t o = 0; o < ARRAY_LEN(all_ops); o++) {
                const softmax_op op = all_ops[o];
                const void *src = x;
                if (!is_forward(op)) {
                    t.k->rows(op == SOFTMAX_OP_SOFTMAX_BACKWARD ? SOFTMAX_OP_SOFTMAX : SOFTMAX_OP_LOG_SOFTMAX, x, NULL,
                              in, 1, n, 1.0);
                    src = in;
                }
                const void *grad = is_forward(op) ? NULL : dy;
                t.k->rows(op, src, grad, want, 1, n, 1.0);
                t.k->long_row(op, src, grad, y, n, 1.0, 2);
                perturb(t.dt, y, n);
                calls++;
                char what[128];
                snprintf(what, sizeof what, "long_row %s %s n=%zu", op_name(op), dtype_name(t.dt), n);
                failures += bit_differences(y, want, n, t.element_size, what) > 0;
            }
            free(x);
            free(dy);
            free(y);
            free(want);
            free(in);
        }
    }
    family_outcome("long row = one thread", failures, calls);
}

/* ------------------------------------------------------------------------
 * Masked in place = gathered; the added masks' accuracy.
 * ---------------------------------------------------------------------- */

enum {
    EXCLUDE_BY_KEEP = 1,
    EXCLUDE_BY_MASK = 2,
    EXCLUDE_BY_BF16 = 4,
    EXCLUDE_BY_F16 = 8,
    EXCLUDE_BY_PREFIX = 16,
};

static const int exclusion_sets[] = {
    EXCLUDE_BY_KEEP,
    EXCLUDE_BY_MASK,
    EXCLUDE_BY_BF16,
    EXCLUDE_BY_F16,
    EXCLUDE_BY_PREFIX,
    EXCLUDE_BY_KEEP | EXCLUDE_BY_MASK | EXCLUDE_BY_PREFIX,
    EXCLUDE_BY_KEEP | EXCLUDE_BY_F16 | EXCLUDE_BY_PREFIX,
};

/* The in-cache regime the masked kernel serves: more than SMALL_VECTORS
 * vectors, at most STREAM_BYTES. */
static bool excluding_regime(const regime_table *t, size_t n)
{
    return n > SMALL_VECTORS * t->lanes && n <= stream_limit(t);
}

static void test_excluding_invariant(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0, declined_failures = 0, declined_calls = 0;
    test_rng rng;
    rng_seed(&rng, 808);
    const regime_table t = table_for(SOFTMAX_DTYPE_F32);
    if (has_regime(&t, REGIME_EXCLUDING_ROW)) {
        lengths l = {.count = 0};
        add_around(&l, small_limit(&t));
        add_around(&l, SUM_BLOCK);
        add_around(&l, stream_limit(&t));
        keep_up_to(&l, SIZE_MAX);
        for (size_t i = 0; i < l.count; i++) {
            const size_t n = l.n[i];
            float *x = buf_alloc(t.dt, n), *y = buf_alloc(t.dt, n), *gathered = buf_alloc(t.dt, n);
            float *want = buf_alloc(t.dt, n), *mask = buf_alloc(t.dt, n);
            uint8_t *keep = malloc(n);
            uint16_t *bf16 = malloc(n * sizeof *bf16), *f16 = malloc(n * sizeof *f16);
            assert_non_null(keep);
            assert_non_null(bf16);
            assert_non_null(f16);
            fill_logits(t.dt, x, n, &rng);
            for (size_t s = 0; s < ARRAY_LEN(exclusion_sets); s++) {
                const int set = exclusion_sets[s];
                const size_t kept = set & EXCLUDE_BY_PREFIX ? n - n / 3 : n;
                /* A different third of the elements for each kind. */
                for (size_t j = 0; j < n; j++) {
                    keep[j] = !((set & EXCLUDE_BY_KEEP) && rng_below(&rng, 3) == 0);
                    mask[j] = (set & EXCLUDE_BY_MASK) && rng_below(&rng, 3) == 0 ? -INFINITY : 0.0f;
                    bf16[j] = (set & EXCLUDE_BY_BF16) && rng_below(&rng, 3) == 0 ? 0xff80u : 0;
                    f16[j] = (set & EXCLUDE_BY_F16) && rng_below(&rng, 3) == 0 ? 0xfc00u : 0;
                }
                const uint16_t *half_mask = set & EXCLUDE_BY_BF16 ? bf16 : set & EXCLUDE_BY_F16 ? f16 : NULL;
                for (size_t o = 0; o < ARRAY_LEN(forward_ops); o++) {
                    for (size_t c = 0; c < 2; c++) {
                        const double scale = c ? -0.75 : 1.0;
                        for (size_t j = 0; j < n; j++) {
                            const bool excluded = j >= kept || !keep[j] || mask[j] == -INFINITY ||
                                                  (half_mask != NULL && half_mask[j] != 0);
                            gathered[j] = excluded ? (scale < 0 ? INFINITY : -INFINITY) : x[j];
                        }
                        fill_sentinel(y, n * sizeof *y);
                        const bool taken = t.k->excluding_row(forward_ops[o], x, set & EXCLUDE_BY_KEEP ? keep : NULL,
                                                              set & EXCLUDE_BY_MASK ? mask : NULL, half_mask,
                                                              (set & EXCLUDE_BY_BF16) != 0, 0, false, 0.0, kept, n,
                                                              scale, y) == SOFTMAX_ROW_DONE;
                        char what[128];
                        snprintf(what, sizeof what, "excluding_row %s n=%zu kinds=%d scale=%g", op_name(forward_ops[o]),
                                 n, set, scale);
                        if (taken != excluding_regime(&t, n)) {
                            fprintf(stderr, "  FAIL %s: %s, expected the other\n", what, taken ? "taken" : "declined");
                            failures++;
                        }
                        if (!taken) {
                            perturb_bits(y, n * sizeof *y);
                            declined_calls++;
                            declined_failures += untouched_or_report(y, n * sizeof *y, what);
                            continue;
                        }
                        t.k->rows(forward_ops[o], gathered, NULL, want, 1, n, scale);
                        perturb(t.dt, y, n);
                        calls++;
                        failures += bit_differences(y, want, n, sizeof *y, what) > 0;
                    }
                }
            }
            free(x);
            free(y);
            free(gathered);
            free(want);
            free(mask);
            free(keep);
            free(bf16);
            free(f16);
        }
    }
    family_outcome("masked in place = gathered", failures, calls);
    family_outcome("declined masked rows", declined_failures, declined_calls);
}

/* excluding_row with check_mask (a mask assumed to hold only 0 and -inf,
 * checked as it is read): one value that is neither -- 0.5, the smallest
 * subnormal, -FLT_MAX, +inf, NaN -- anywhere in the row (the first
 * element, the last of the first vector, the middle, the tail, the last)
 * of an f32, bf16 or f16 mask, for either sign of the scale, makes it
 * return SOFTMAX_ROW_MASK_ADDS with y untouched; a mask of 0, -0 and -inf
 * gives the bits of the unchecked call. Combined with `where` (not a
 * single-mask body) it declines. */
static void test_excluding_row_checks_mask(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 818);
    const regime_table t = table_for(SOFTMAX_DTYPE_F32);
    if (!has_regime(&t, REGIME_EXCLUDING_ROW)) {
        family_outcome("checked masks", 0, 0);
        return;
    }
    const size_t row_lengths[] = {small_limit(&t) + 1, small_limit(&t) + t.lanes + 3, SUM_BLOCK + 5};
    const float f32_adding[] = {0.5f, 0x1p-149f, -FLT_MAX, INFINITY, NAN};
    /* bf16 and f16 patterns of the same values (f16: 2^-24, -65504). */
    const uint16_t bf16_adding[] = {0x3f00u, 0x0001u, 0xff7fu, 0x7f80u, 0x7fc0u};
    const uint16_t f16_adding[] = {0x3800u, 0x0001u, 0xfbffu, 0x7c00u, 0x7e00u};
    for (size_t a = 0; a < ARRAY_LEN(row_lengths); a++) {
        const size_t n = row_lengths[a];
        float *x = buf_alloc(t.dt, n), *y = buf_alloc(t.dt, n), *want = buf_alloc(t.dt, n);
        float *mask = buf_alloc(t.dt, n);
        uint16_t *halves = malloc(n * sizeof *halves);
        uint8_t *keep = malloc(n);
        assert_non_null(halves);
        assert_non_null(keep);
        fill_logits(t.dt, x, n, &rng);
        const size_t tail_spot = n % t.lanes != 0 ? n - n % t.lanes + (n % t.lanes) / 2 : n - 2;
        const size_t spots[] = {0, t.lanes - 1, n / 2, tail_spot, n - 1};
        for (int type = 0; type < 3; type++) { /* f32, bf16, f16 */
            const uint16_t half_zero = 0, half_negative_zero = 0x8000u;
            const uint16_t half_minus_inf = type == 1 ? 0xff80u : 0xfc00u;
            for (size_t j = 0; j < n; j++) {
                const unsigned pick = rng_below(&rng, 3);
                mask[j] = pick == 0 ? -INFINITY : pick == 1 ? -0.0f : 0.0f;
                halves[j] = pick == 0 ? half_minus_inf : pick == 1 ? half_negative_zero : half_zero;
                keep[j] = 1;
            }
            const float *f32_mask = type == 0 ? mask : NULL;
            const uint16_t *half_mask = type == 0 ? NULL : halves;
            for (size_t o = 0; o < ARRAY_LEN(forward_ops); o++)
                for (int negative = 0; negative < 2; negative++) {
                    const double scale = negative ? -0.75 : 1.0;
                    char what[160];
                    snprintf(what, sizeof what, "checked mask type %d %s n=%zu scale=%g", type, op_name(forward_ops[o]),
                             n, scale);
                    /* 0, -0 and -inf only: the unchecked call's bits. */
                    fill_sentinel(want, n * sizeof *want);
                    fill_sentinel(y, n * sizeof *y);
                    const int unchecked = t.k->excluding_row(forward_ops[o], x, NULL, f32_mask, half_mask, type == 1, 0,
                                                             false, 0.0, n, n, scale, want);
                    const int checked = t.k->excluding_row(forward_ops[o], x, NULL, f32_mask, half_mask, type == 1, 0,
                                                           true, 0.0, n, n, scale, y);
                    calls++;
                    if (unchecked != SOFTMAX_ROW_DONE || checked != SOFTMAX_ROW_DONE) {
                        fprintf(stderr, "  FAIL %s: outcomes %d (unchecked) and %d, expected done\n", what, unchecked,
                                checked);
                        failures++;
                    } else {
                        perturb(t.dt, y, n);
                        failures += bit_differences(y, want, n, sizeof *y, what) > 0;
                    }
                    /* With `where` beside it: declined, untouched. */
                    fill_sentinel(y, n * sizeof *y);
                    const int with_keep = t.k->excluding_row(forward_ops[o], x, keep, f32_mask, half_mask, type == 1, 0,
                                                             true, 0.0, n, n, scale, y);
                    calls++;
                    perturb_bits(y, n * sizeof *y);
                    failures += untouched_or_report(y, n * sizeof *y, what) + (with_keep != SOFTMAX_ROW_DECLINED);
                    for (size_t s = 0; s < ARRAY_LEN(spots); s++)
                        for (size_t v = 0; v < ARRAY_LEN(f32_adding); v++) {
                            const size_t spot = spots[s];
                            const float saved = mask[spot];
                            const uint16_t saved_half = halves[spot];
                            mask[spot] = f32_adding[v];
                            halves[spot] = type == 1 ? bf16_adding[v] : f16_adding[v];
                            fill_sentinel(y, n * sizeof *y);
                            const int outcome = t.k->excluding_row(forward_ops[o], x, NULL, f32_mask, half_mask,
                                                                   type == 1, 0, true, 0.0, n, n, scale, y);
                            mask[spot] = saved;
                            halves[spot] = saved_half;
                            calls++;
                            if (outcome != SOFTMAX_ROW_MASK_ADDS) {
                                fprintf(stderr, "  FAIL %s: value %zu at %zu gave outcome %d, expected mask adds\n",
                                        what, v, spot, outcome);
                                failures++;
                            }
                            perturb_bits(y, n * sizeof *y);
                            failures += untouched_or_report(y, n * sizeof *y, what);
                        }
                }
        }
        free(x);
        free(y);
        free(want);
        free(mask);
        free(halves);
        free(keep);
    }
    family_outcome("checked masks", failures, calls);
}

/* Added masks and ALiBi (excluding_row with `additive` or a slope):
 * accuracy against MPFR on z = scale * x + bias computed exactly (x and the
 * mask on a grid of 2^-12 in [-16, 16], scale and slope powers of 2, so
 * that z is exact in double), and the ADDED_MASK_MAX_LIMIT on |max z|. */
static void test_added_masks(void **state)
{
    (void)state;
    size_t failures = 0, calls = 0;
    test_rng rng;
    rng_seed(&rng, 909);
    const regime_table t = table_for(SOFTMAX_DTYPE_F32);
    if (!has_regime(&t, REGIME_EXCLUDING_ROW)) {
        family_outcome("added masks accuracy", 0, 0);
        return;
    }
    const size_t row_lengths_tested[] = {small_limit(&t) + 1, SUM_BLOCK + 1};
    for (size_t a = 0; a < ARRAY_LEN(row_lengths_tested); a++) {
        const size_t n = row_lengths_tested[a];
        float *x = buf_alloc(t.dt, n), *y = buf_alloc(t.dt, n), *mask = buf_alloc(t.dt, n);
        double *z = malloc(n * sizeof *z);
        uint8_t *keep = malloc(n);
        assert_non_null(z);
        assert_non_null(keep);
        for (size_t j = 0; j < n; j++) {
            x[j] = (float)ldexp(floor(rng_range(&rng, -16, 16) * 4096), -12);
            mask[j] = (float)ldexp(floor(rng_range(&rng, -16, 16) * 4096), -12);
            keep[j] = rng_below(&rng, 4) != 0;
        }
        /* kind 0: an added mask; 1: ALiBi with a keep mask; 2 and 3: the
         * added mask with |max z| at the limit and just beyond it. */
        for (int kind = 0; kind < 4; kind++) {
            const double scale = 0.5, slope = kind == 1 ? -0x1p-6 : 0.0;
            if (kind >= 2) {
                /* x_0 = 2 * limit, mask_0 = 0 (kind 2) or 2^-12 (kind 3):
                 * max z = limit or just above, every other z far below. */
                x[0] = (float)(2.0 * ADDED_MASK_MAX_LIMIT);
                mask[0] = kind == 2 ? 0.0f : 0x1p-12f;
            }
            for (size_t j = 0; j < n; j++)
                z[j] = kind == 1 ? (keep[j] ? scale * x[j] + slope * (double)j : -INFINITY) : scale * x[j] + mask[j];
            for (size_t o = 0; o < ARRAY_LEN(forward_ops); o++) {
                const softmax_op op = forward_ops[o];
                fill_sentinel(y, n * sizeof *y);
                const bool taken = t.k->excluding_row(op, x, kind == 1 ? keep : NULL, kind == 1 ? NULL : mask, NULL, 0,
                                                      kind != 1, false, slope, n, n, scale, y) == SOFTMAX_ROW_DONE;
                char what[128];
                snprintf(what, sizeof what, "excluding_row added kind %d %s n=%zu", kind, op_name(op), n);
                if (taken != (kind != 3)) {
                    fprintf(stderr, "  FAIL %s: %s, expected the other\n", what, taken ? "taken" : "declined");
                    failures++;
                    continue;
                }
                if (!taken) {
                    perturb_bits(y, n * sizeof *y);
                    failures += untouched_or_report(y, n * sizeof *y, what);
                    continue;
                }
                perturb(t.dt, y, n);
                calls++;
                ref_vec ref;
                ref_vec_init(&ref, n);
                ref_softmax(&ref, ref_line_make(SOFTMAX_DTYPE_F64, z, n, 1), 1.0, op == SOFTMAX_OP_LOG_SOFTMAX);
                err_stats st;
                err_stats_init(&st);
                const ref_line yl = ref_line_make(t.dt, y, n, 1);
                failures += op == SOFTMAX_OP_LOG_SOFTMAX
                                ? check_log_softmax_line(&ref, yl, contract_ulp_bound(t.dt), &st, what)
                                : check_softmax_line(&ref, yl, contract_ulp_bound(t.dt), &st, what);
                ref_vec_free(&ref);
            }
        }
        free(x);
        free(y);
        free(mask);
        free(z);
        free(keep);
    }
    family_outcome("added masks accuracy", failures, calls);
}

/* ------------------------------------------------------------------------
 * Half precision = the f32 kernel on the widened row, rounded once.
 * ---------------------------------------------------------------------- */

/* Independent definitions of the two 16-bit formats: bf16 (8 exponent
 * bits, 7 stored) and IEEE binary16 (5, 10), rounded to nearest even. */
typedef struct half_format {
    int exponent_bits, mantissa_bits;
} half_format;
static const half_format bf16_format = {8, 7}, f16_format = {5, 10};

static double decode_half(half_format f, uint16_t bits)
{
    const int bias = (1 << (f.exponent_bits - 1)) - 1;
    const unsigned exponent = (bits >> f.mantissa_bits) & ((1u << f.exponent_bits) - 1);
    const unsigned mantissa = bits & ((1u << f.mantissa_bits) - 1);
    double magnitude;
    if (exponent == (1u << f.exponent_bits) - 1)
        magnitude = mantissa ? NAN : INFINITY;
    else if (exponent == 0)
        magnitude = ldexp(mantissa, 1 - bias - f.mantissa_bits);
    else
        magnitude = ldexp(mantissa + (1u << f.mantissa_bits), (int)exponent - bias - f.mantissa_bits);
    return bits & 0x8000u ? -magnitude : magnitude;
}

static uint16_t encode_half(half_format f, double v)
{
    const int bias = (1 << (f.exponent_bits - 1)) - 1;
    const uint16_t sign = signbit(v) ? 0x8000u : 0;
    const uint16_t infinity = (uint16_t)(((1u << f.exponent_bits) - 1) << f.mantissa_bits);
    const double a = fabs(v);
    if (isnan(v))
        return (uint16_t)(sign | infinity | (1u << (f.mantissa_bits - 1)));
    unsigned bits;
    if (a < ldexp(1.0, 1 - bias)) {
        bits = (unsigned)rint(ldexp(a, bias - 1 + f.mantissa_bits)); /* subnormal (or the smallest normal) */
    } else {
        const int e = ilogb(a);
        if (e > bias)
            return sign | infinity;
        /* A mantissa rounded up to 2^(m+1) carries into the exponent. */
        bits = ((unsigned)(e + bias) << f.mantissa_bits) + (unsigned)rint(ldexp(a, f.mantissa_bits - e)) -
               (1u << f.mantissa_bits);
    }
    return (uint16_t)(sign | (bits >= infinity ? infinity : bits));
}

static half_format format_of(int bf16)
{
    return bf16 ? bf16_format : f16_format;
}

/* The expected output of a half kernel: the f32 result narrowed to
 * dst_half (0: f32 as is, 1: bf16, 2: f16). */
static void narrow_expected(const float *f32, size_t n, int dst_half, void *want)
{
    if (dst_half == 0) {
        memcpy(want, f32, n * sizeof *f32);
        return;
    }
    uint16_t *w = want;
    for (size_t i = 0; i < n; i++)
        w[i] = encode_half(format_of(dst_half == 1), f32[i]);
}

static void perturb_half_output(int dst_half, void *y, size_t n)
{
    if (dst_half == 0)
        perturb(SOFTMAX_DTYPE_F32, y, n);
    else
        perturb_bits(y, n * sizeof(uint16_t));
}

typedef struct half_tally {
    size_t failures, calls, declined_failures, declined_calls;
} half_tally;

/* One call of half_line, half_row or fast_half_line (which: 0, 1, 2) on a
 * row of halves x (widened: wide), checked against the f32 kernel. */
static void check_half_call(const regime_table *t, int which, softmax_op op, const uint16_t *x, const float *wide,
                            int bf16, int dst_half, size_t n, bool expect_taken, half_tally *tally)
{
    static const char *const names[] = {"half_line", "half_row", "fast_half_line"};
    const size_t out_size = dst_half ? sizeof(uint16_t) : sizeof(float);
    void *y = malloc(n * out_size), *want = malloc(n * out_size);
    float *f32 = malloc(n * sizeof *f32);
    assert_non_null(y);
    assert_non_null(want);
    assert_non_null(f32);
    fill_sentinel(y, n * out_size);
    const double scale = 1.0;
    bool taken;
    if (which == 0)
        taken = t->k->half_line(op, x, bf16, y, dst_half, n, scale);
    else if (which == 1)
        taken = t->k->half_row(op, x, y, n, scale, bf16);
    else
        taken = t->k->fast_half_line(op, x, bf16, y, dst_half, n, scale);
    char what[128];
    snprintf(what, sizeof what, "%s %s %s -> %s n=%zu", names[which], op_name(op), bf16 ? "bf16" : "f16",
             dst_half == 0   ? "f32"
             : dst_half == 1 ? "bf16"
                             : "f16",
             n);
    if (taken != expect_taken) {
        fprintf(stderr, "  FAIL %s: %s, expected the other\n", what, taken ? "taken" : "declined");
        tally->failures++;
    } else if (!taken) {
        perturb_bits(y, n * out_size);
        tally->declined_calls++;
        tally->declined_failures += untouched_or_report(y, n * out_size, what);
    } else {
        if (which == 2)
            t->k->fast_rows(op, wide, f32, 1, n, scale);
        else
            t->k->rows(op, wide, NULL, f32, 1, n, scale);
        narrow_expected(f32, n, dst_half, want);
        perturb_half_output(dst_half, y, n);
        tally->calls++;
        tally->failures += bit_differences(y, want, n, out_size, what) > 0;
    }
    free(y);
    free(want);
    free(f32);
}

static void test_half_invariant(void **state)
{
    (void)state;
    half_tally tally = {0, 0, 0, 0};
    size_t conversion_failures = 0, conversion_calls = 0;
    test_rng rng;
    rng_seed(&rng, 1010);
    const regime_table t = table_for(SOFTMAX_DTYPE_F32);
    /* The table's conversions against the definitions above: every half
     * widened, and floats around every half and its midpoints narrowed. */
    if (has_regime(&t, REGIME_HALF_CONVERSIONS)) {
        enum { ALL = 1 << 16 };
        uint16_t *halves = malloc(ALL * sizeof *halves), *narrowed = malloc(3 * ALL * sizeof *narrowed);
        float *wide = malloc(ALL * sizeof *wide), *floats = malloc(3 * ALL * sizeof *floats);
        assert_non_null(halves);
        assert_non_null(narrowed);
        assert_non_null(wide);
        assert_non_null(floats);
        for (int bf16 = 0; bf16 < 2; bf16++) {
            size_t count = 0;
            for (uint32_t h = 0; h < ALL; h++) {
                halves[h] = (uint16_t)h;
                const double v = decode_half(format_of(bf16), (uint16_t)h);
                if (isnan(v))
                    continue;
                const double next = decode_half(format_of(bf16), (uint16_t)(h + 1));
                floats[count++] = (float)v;
                if (isfinite(v) && isfinite(next) && fabs(next) > fabs(v) && !signbit(next) == !signbit(v)) {
                    const double midpoint = (v + next) / 2;
                    floats[count++] = (float)midpoint; /* a tie: to even */
                    floats[count++] = nextafterf((float)midpoint, (float)next);
                }
            }
            t.k->widen_half(wide, halves, ALL, bf16);
            t.k->narrow_half(narrowed, floats, count, bf16);
            perturb(SOFTMAX_DTYPE_F32, wide, ALL / 2);
            perturb_bits(narrowed, count * sizeof *narrowed);
            conversion_calls += 2;
            for (uint32_t h = 0; h < ALL; h++) {
                const double v = decode_half(format_of(bf16), (uint16_t)h);
                if (!(isnan(v) ? isnan(wide[h]) : (double)wide[h] == v && !signbit(wide[h]) == !signbit(v))) {
                    if (!mutate_mode)
                        fprintf(stderr, "  FAIL widen_half %s 0x%04x: %a, expected %a\n", bf16 ? "bf16" : "f16",
                                (unsigned)h, (double)wide[h], v);
                    conversion_failures++;
                }
            }
            for (size_t i = 0; i < count; i++) {
                const uint16_t expected = encode_half(format_of(bf16), floats[i]);
                if (narrowed[i] != expected) {
                    if (!mutate_mode)
                        fprintf(stderr, "  FAIL narrow_half %s %a: 0x%04x, expected 0x%04x\n", bf16 ? "bf16" : "f16",
                                (double)floats[i], narrowed[i], expected);
                    conversion_failures++;
                }
            }
        }
        free(halves);
        free(narrowed);
        free(wide);
        free(floats);
    }
    family_outcome("half conversions", conversion_failures, conversion_calls);
    if (!has_regime(&t, REGIME_HALF_LINE) && !has_regime(&t, REGIME_HALF_ROW) &&
        !has_regime(&t, REGIME_FAST_HALF_LINE)) {
        family_outcome("half = f32 rounded once", 0, 0);
        return;
    }
    lengths l = {.count = 0};
    add_around(&l, small_limit(&t));
    add_around(&l, FAST_HALF_LINE_MIN);
    add_around(&l, SUM_BLOCK);
    add_around(&l, HALF_ROW_MIN);
    add_around(&l, stored_stream_limit(&t));
    keep_up_to(&l, SIZE_MAX);
    for (size_t i = 0; i < l.count; i++) {
        const size_t n = l.n[i];
        uint16_t *x = malloc(n * sizeof *x);
        float *wide = malloc(n * sizeof *wide);
        assert_non_null(x);
        assert_non_null(wide);
        for (int bf16 = 0; bf16 < 2; bf16++) {
            for (size_t j = 0; j < n; j++) {
                x[j] = encode_half(format_of(bf16), 4.0 * rng_normal(&rng));
                wide[j] = (float)decode_half(format_of(bf16), x[j]);
            }
            const int same = bf16 ? 1 : 2;
            for (size_t o = 0; o < ARRAY_LEN(forward_ops); o++) {
                const softmax_op op = forward_ops[o];
                /* half_line: the in-cache regime, any destination type. */
                if (has_regime(&t, REGIME_HALF_LINE) && n < HALF_ROW_MIN + 2)
                    for (int dst_half = 0; dst_half < 3; dst_half++)
                        check_half_call(&t, 0, op, x, wide, bf16, dst_half, n,
                                        n > small_limit(&t) && n <= stream_limit(&t), &tally);
                /* half_row: from HALF_ROW_MIN on (the streaming regime). */
                if (has_regime(&t, REGIME_HALF_ROW) && n >= HALF_ROW_MIN)
                    check_half_call(&t, 1, op, x, wide, bf16, same, n, true, &tally);
                /* fast_half_line: more than SMALL_VECTORS vectors. */
                if (has_regime(&t, REGIME_FAST_HALF_LINE) && n <= 2 * SUM_BLOCK) {
                    check_half_call(&t, 2, op, x, wide, bf16, 0, n, n > small_limit(&t), &tally);
                    check_half_call(&t, 2, op, x, wide, bf16, same, n, n > small_limit(&t), &tally);
                }
            }
        }
        free(x);
        free(wide);
    }
    family_outcome("half = f32 rounded once", tally.failures, tally.calls);
    family_outcome("declined half lines", tally.declined_failures, tally.declined_calls);
}

/* ------------------------------------------------------------------------
 * --preconditions: each precondition the entry points assert
 * (src/kernels/preconditions.h) broken in a child process, which must
 * abort. Only where the checks are compiled in (the sanitizer build).
 * ---------------------------------------------------------------------- */

#if defined(SOFTMAX_ASSERTS_ACTIVE)
static bool child_aborts(const regime_table *t, int violation)
{
    fflush(NULL);
    const pid_t child = fork();
    if (child < 0)
        fail_msg("fork failed");
    if (child == 0) {
        float x[4096] = {0}, y[4096];
        uint16_t halves[4096] = {0};
        size_t kept = 65;
        switch (violation) {
        case 0: /* j_begin not a multiple of column_chunk */
            t->k->columns(SOFTMAX_OP_SOFTMAX, x, NULL, y, 2, 64, 1, 64, 1.0);
            break;
        case 1: /* a causal prefix longer than its row */
            t->k->prefix_rows(SOFTMAX_OP_SOFTMAX, x, NULL, y, 1, 64, &kept, 1.0);
            break;
        case 2: /* half_line into no type */
            (void)t->k->half_line(SOFTMAX_OP_SOFTMAX, halves, 1, y, 3, 1024, 1.0);
            break;
        default: /* fast_half_line from bf16 into f16 */
            (void)t->k->fast_half_line(SOFTMAX_OP_SOFTMAX, halves, 1, y, 2, 1024, 1.0);
            break;
        }
        _exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child)
        fail_msg("waitpid failed");
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void test_preconditions(void **state)
{
    (void)state;
    const regime_table t = table_for(SOFTMAX_DTYPE_F32);
    const bool available[] = {t.lanes > 0, has_regime(&t, REGIME_PREFIX_ROWS), has_regime(&t, REGIME_HALF_LINE),
                              has_regime(&t, REGIME_FAST_HALF_LINE)};
    static const char *const names[] = {"columns: j_begin % column_chunk", "prefix_rows: kept <= n",
                                        "half_line: dst_half", "fast_half_line: dst_half"};
    size_t missed = 0, checked = 0;
    for (int v = 0; v < 4; v++) {
        if (!available[v])
            continue;
        checked++;
        const bool aborted = child_aborts(&t, v);
        printf("precondition %-34s %s\n", names[v], aborted ? "caught (abort)" : "NOT CAUGHT");
        missed += !aborted;
    }
    if (missed > 0)
        fail_msg("%zu of %zu broken preconditions went through", missed, checked);
}

#endif

int main(int argc, char **argv)
{
    bool preconditions = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mutate") == 0) {
            mutate_mode = true;
        } else if (strcmp(argv[i], "--preconditions") == 0) {
            preconditions = true;
        } else {
            fprintf(stderr, "usage: %s [--mutate | --preconditions]\n", argv[0]);
            return 2;
        }
    }
    const int prologue = isa_prologue();
    if (prologue != 0)
        return prologue;
    if (preconditions) {
#if defined(SOFTMAX_ASSERTS_ACTIVE)
        const struct CMUnitTest precondition_tests[] = {cmocka_unit_test(test_preconditions)};
        return cmocka_run_group_tests(precondition_tests, NULL, NULL);
#else
        printf("SKIP: the preconditions are compiled out of this build (see src/kernels/preconditions.h)\n");
        return TEST_SKIP_CODE;
#endif
    }
    if (mutate_mode) {
        ref_set_quiet(1);
        printf("--mutate: every family below must notice its perturbed outputs\n");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_accuracy),
        cmocka_unit_test(test_fast_rows_accuracy),
        cmocka_unit_test(test_gradients_accuracy),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_offset_limit),
        cmocka_unit_test(test_column_workspace),
        cmocka_unit_test(test_group_invariant),
        cmocka_unit_test(test_prefix_invariant),
        cmocka_unit_test(test_long_row_invariant),
        cmocka_unit_test(test_excluding_invariant),
        cmocka_unit_test(test_excluding_row_checks_mask),
        cmocka_unit_test(test_added_masks),
        cmocka_unit_test(test_half_invariant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
