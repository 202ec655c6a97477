/*
 * test_fast.c -- SOFTMAX_FLAG_FAST (softmax.h, "Fast mode").
 *
 * The fast mode keeps every special-value rule of the contract and the same
 * bits for any thread count, and trades the accuracy bound (3 -> 5 ulp) and
 * the exact order guarantee for speed. Checked here against the MPFR
 * reference on every code path:
 *  - softmax and log-softmax of f32 rows of 1 .. 300000 elements (tiny rows
 *    in groups and alone, rows in registers, in cache and past the
 *    streaming threshold), seven distributions, scales of both signs, in
 *    place and not, within FAST_BOUND ulp, exact zeros where the reference
 *    is exactly zero, NaN rows where it is NaN;
 *  - the contract's special rows (masked, +inf, NaN, scale 0 and +-inf);
 *  - 1 and 2 threads give the same bits, batches and single rows too;
 *  - where the fast mode does not apply (f64, gradients, masks) the flag is
 *    accepted and the results are bitwise those of the accurate kernels.
 * The measured maxima are printed (the README and BENCHMARKS.md quote them).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

/* The fast mode's documented bound, in ulp (log-softmax: of max(|y|, 1)). */
#define FAST_BOUND 5.0

static err_stats softmax_stats, log_stats;

/* softmax_execute on a [rows, cols] tensor of type `in` (strides: NULL or
 * {row, column}) into type `out` (0: `in`). */
static int run_general(softmax_op op, softmax_dtype in, softmax_dtype out, const void *x, const int64_t *strides,
                       void *y, size_t rows, size_t cols, double scale, uint64_t flags)
{
    softmax_desc desc;
    if (softmax_desc_init(&desc, op, in, cols) != SOFTMAX_OK)
        return -100;
    desc.ndim = 2;
    desc.shape[0] = rows;
    desc.shape[1] = cols;
    desc.dst_dtype = out;
    desc.src_strides = strides;
    desc.scale = scale;
    desc.flags = flags;
    return softmax_execute(&desc, x, NULL, y);
}

static int run_fast(softmax_op op, softmax_dtype dt, const void *x, void *y, size_t rows, size_t cols, double scale,
                    uint64_t flags)
{
    return run_general(op, dt, 0, x, NULL, y, rows, cols, scale, flags);
}

static void fill(void *x, size_t n, int distribution, test_rng *rng)
{
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        switch (distribution) {
        case 0:
            v = 10.0 * rng_normal(rng);
            break;
        case 1:
            v = rng_range(rng, -100.0, 100.0);
            break;
        case 2:
            v = (rng_next(rng) & 1 ? -1.0 : 1.0) * pow(10.0, rng_range(rng, -38.0, 38.0));
            break;
        case 3:
            v = (double)((int)rng_below(rng, 5) - 2);
            break;
        case 4:
            v = 1.0 + (double)rng_below(rng, 64) * FLT_EPSILON;
            break;
        case 5:
            v = 3.0 * rng_normal(rng) + (rng_below(rng, 50) == 0 ? 30.0 : 0.0);
            break;
        default: { /* hostile: -inf, +inf and NaN among normal values */
            const size_t pick = rng_below(rng, 40);
            v = pick == 0 ? -INFINITY : pick == 1 ? INFINITY : pick == 2 ? NAN : 5.0 * rng_normal(rng);
            break;
        }
        }
        ((float *)x)[i] = (float)v;
    }
}

/* Fast softmax and log-softmax of rows x cols against the reference. */
static size_t measure(const float *x, size_t rows, size_t cols, double scale, int in_place, const char *label)
{
    const size_t n = rows * cols;
    size_t failures = 0;
    float *y[2];
    for (int log = 0; log < 2; log++) {
        y[log] = malloc(n * sizeof(float) + 1);
        if (in_place)
            memcpy(y[log], x, n * sizeof(float));
        const int rc = run_fast(log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32,
                                in_place ? y[log] : x, y[log], rows, cols, scale, SOFTMAX_FLAG_FAST);
        if (rc != SOFTMAX_OK) {
            fprintf(stderr, "  FAIL %s: status %d\n", label, rc);
            failures++;
        }
    }
    ref_vec ref, ref_log;
    ref_vec_init(&ref, cols);
    ref_vec_init(&ref_log, cols);
    char what[2][160];
    for (int log = 0; log < 2; log++)
        snprintf(what[log], sizeof what[log], "fast %s %s rows=%zu cols=%zu scale=%g%s",
                 log ? "log_softmax" : "softmax", label, rows, cols, scale, in_place ? " in place" : "");
    const double s = scale; /* softmax_execute applies the double scale */
    for (size_t r = 0; r < rows && failures == 0; r++) {
        ref_line xl = ref_line_make(SOFTMAX_DTYPE_F32, x + r * cols, cols, 1);
        ref_line yl = ref_line_make(SOFTMAX_DTYPE_F32, y[0] + r * cols, cols, 1);
        ref_line ll = ref_line_make(SOFTMAX_DTYPE_F32, y[1] + r * cols, cols, 1);
        ref_softmax_both(&ref, &ref_log, xl, s);
        failures += check_softmax_line(&ref, yl, FAST_BOUND, &softmax_stats, what[0]);
        failures += check_log_softmax_line(&ref_log, ll, FAST_BOUND, &log_stats, what[1]);
        for (size_t j = 0; j < cols; j++) {
            /* The contract's exact values: masked entries, losers of a limit. */
            if (mpfr_zero_p(ref_at(&ref, j)) && y[0][r * cols + j] != 0.0f && failures++ < 5)
                fprintf(stderr, "  FAIL %s: row %zu [%zu] = %a, exactly 0 expected\n", what[0], r, j,
                        (double)y[0][r * cols + j]);
        }
    }
    ref_vec_free(&ref);
    ref_vec_free(&ref_log);
    free(y[0]);
    free(y[1]);
    return failures;
}

static void test_fast_mode_accuracy_and_special_values(void **state)
{
    (void)state;
    static const size_t shapes[][2] = {{21, 1},  {21, 2},   {21, 3},   {21, 5},    {21, 8},    {21, 9}, {21, 10},
                                       {21, 15}, {21, 16},  {21, 17},  {3, 7},     {7, 33},    {5, 64}, {3, 100},
                                       {3, 129}, {2, 1000}, {1, 4097}, {1, 32000}, {1, 300000}};
    static const double scales[] = {1.0, 0.5, -1.3, 3e4, 1e-3, 0.0, INFINITY, -INFINITY};
    test_rng rng;
    rng_seed(&rng, 901);
    size_t failures = 0;
    unsigned counter = 0;
    for (size_t k = 0; k < ARRAY_LEN(shapes); k++) {
        const size_t rows = shapes[k][0], cols = shapes[k][1];
        float *x = malloc(rows * cols * sizeof(float));
        const int distributions = cols > 10000 ? 2 : 7;
        for (int d = 0; d < distributions; d++) {
            fill(x, rows * cols, cols > 10000 ? 6 * d : d, &rng);
            if (d == 6 && rows > 2) { /* a fully masked row and a row of +inf ties */
                for (size_t j = 0; j < cols; j++) {
                    x[j] = -INFINITY;
                    x[cols + j] = j % 3 == 0 ? INFINITY : 1.0f;
                }
            }
            for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
                if (cols > 10000 && s % 3 != 0)
                    continue;
                char label[64];
                snprintf(label, sizeof label, "distribution %d", d);
                failures += measure(x, rows, cols, scales[s], counter++ % 3 == 0, label);
            }
        }
        free(x);
    }
    printf("fast mode: softmax_f32 max_ulp=%.3f (bound %.0f) outputs=%zu; log_softmax_f32 max_ulp=%.3f of "
           "max(|y|,1) outputs=%zu\n",
           softmax_stats.max_err, FAST_BOUND, softmax_stats.checked, log_stats.max_err, log_stats.checked);
    fflush(stdout);
    if (failures)
        fail_msg("%zu fast-mode outputs beyond the bound (details above)", failures);
}

/* Same bits for 1 and 2 threads, for a batch and for one long row; and a row
 * alone equals the same row in a batch of tiny or small rows. */
static void test_fast_mode_is_deterministic(void **state)
{
    (void)state;
    static const size_t shapes[][2] = {{8192, 10}, {1024, 100}, {1024, 128}, {4096, 300}, {1, 1 << 19}};
    test_rng rng;
    rng_seed(&rng, 902);
    for (size_t k = 0; k < ARRAY_LEN(shapes); k++) {
        const size_t rows = shapes[k][0], cols = shapes[k][1], n = rows * cols;
        float *x = malloc(n * sizeof(float)), *one = malloc(n * sizeof(float)), *two = malloc(n * sizeof(float));
        fill(x, n, 0, &rng);
        for (int log = 0; log < 2; log++) {
            const softmax_op op = log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX;
            set_threads_or_fail(1);
            assert_int_equal(run_fast(op, SOFTMAX_DTYPE_F32, x, one, rows, cols, 1.0, SOFTMAX_FLAG_FAST), SOFTMAX_OK);
            set_threads_or_fail(2);
            assert_int_equal(run_fast(op, SOFTMAX_DTYPE_F32, x, two, rows, cols, 1.0, SOFTMAX_FLAG_FAST), SOFTMAX_OK);
            if (memcmp(one, two, n * sizeof(float)) != 0)
                fail_msg("fast %s %zux%zu: 1 and 2 threads differ", log ? "log_softmax" : "softmax", rows, cols);
            if (cols <= 128)
                for (size_t r = 0; r < rows; r += 97) {
                    float alone[128];
                    assert_int_equal(
                        run_fast(op, SOFTMAX_DTYPE_F32, x + r * cols, alone, 1, cols, 1.0, SOFTMAX_FLAG_FAST),
                        SOFTMAX_OK);
                    if (memcmp(alone, one + r * cols, cols * sizeof(float)) != 0)
                        fail_msg("fast %s: row %zu differs alone and in a batch", log ? "log_softmax" : "softmax", r);
                }
        }
        set_threads_or_fail(0);
        free(x);
        free(one);
        free(two);
    }
}

/* Where no fast kernel exists the flag changes nothing. */
static void test_fast_flag_elsewhere_gives_the_accurate_bits(void **state)
{
    (void)state;
    enum { ROWS = 5, COLS = 77 };
    test_rng rng;
    rng_seed(&rng, 903);
    double xd[ROWS * COLS], a[ROWS * COLS], b[ROWS * COLS];
    for (size_t i = 0; i < ROWS * COLS; i++)
        xd[i] = 10.0 * rng_normal(&rng);
    for (int log = 0; log < 2; log++) {
        const softmax_op op = log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX;
        assert_int_equal(run_fast(op, SOFTMAX_DTYPE_F64, xd, a, ROWS, COLS, 0.7, 0), SOFTMAX_OK);
        assert_int_equal(run_fast(op, SOFTMAX_DTYPE_F64, xd, b, ROWS, COLS, 0.7, SOFTMAX_FLAG_FAST), SOFTMAX_OK);
        assert_memory_equal(a, b, sizeof a);
    }
    /* A gradient op: y from the accurate forward, dy random. */
    float y[ROWS * COLS], dy[ROWS * COLS], g1[ROWS * COLS], g2[ROWS * COLS];
    for (size_t i = 0; i < ROWS * COLS; i++) {
        y[i] = (float)xd[i];
        dy[i] = (float)rng_normal(&rng);
    }
    assert_int_equal(softmax_f32(y, y, ROWS, COLS, 1.0f), SOFTMAX_OK);
    softmax_desc desc;
    assert_int_equal(softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32, COLS), SOFTMAX_OK);
    desc.ndim = 2;
    desc.shape[0] = ROWS;
    desc.shape[1] = COLS;
    assert_int_equal(softmax_execute(&desc, y, dy, g1), SOFTMAX_OK);
    desc.flags = SOFTMAX_FLAG_FAST;
    assert_int_equal(softmax_execute(&desc, y, dy, g2), SOFTMAX_OK);
    assert_memory_equal(g1, g2, sizeof g1);
}

/* The fast mode through the general API: bf16 / f16 data and strided views
 * are gathered (widened) for the fast kernels. Half outputs are the fast f32
 * result rounded, so each is the accurate one or its neighbour (the fast
 * f32 result is within FAST_BOUND f32 ulp, 2^-13 of a half ulp); f32
 * outputs from half inputs meet FAST_BOUND against MPFR; a transposed view
 * gives the bits of its contiguous copy; 1 and 2 threads the same bits. */
static void test_fast_mode_through_the_general_api(void **state)
{
    (void)state;
    static const softmax_dtype halves[] = {SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    static const size_t lengths[] = {100, 1000, 70001};
    test_rng rng;
    rng_seed(&rng, 904);
    size_t neighbours = 0, outputs = 0;
    err_stats st;
    err_stats_init(&st);
    for (size_t h = 0; h < ARRAY_LEN(halves); h++)
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            const softmax_dtype dt = halves[h];
            const size_t cols = lengths[l], rows = cols > 10000 ? 3 : 37, n = rows * cols;
            float *x = malloc(n * sizeof *x), *widened = malloc(n * sizeof *widened), *y = malloc(n * sizeof *y);
            uint16_t *xh = malloc(n * sizeof *xh), *fast = malloc(n * sizeof *fast), *accurate = malloc(n * 2),
                     *two = malloc(n * 2);
            fill(x, n, 0, &rng);
            assert_int_equal(softmax_convert(xh, dt, x, SOFTMAX_DTYPE_F32, n), SOFTMAX_OK);
            assert_int_equal(softmax_convert(widened, SOFTMAX_DTYPE_F32, xh, dt, n), SOFTMAX_OK);
            for (int log = 0; log < 2; log++) {
                const softmax_op op = log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX;
                set_threads_or_fail(1);
                assert_int_equal(run_general(op, dt, dt, xh, NULL, fast, rows, cols, 0.7, SOFTMAX_FLAG_FAST),
                                 SOFTMAX_OK);
                assert_int_equal(run_general(op, dt, dt, xh, NULL, accurate, rows, cols, 0.7, 0), SOFTMAX_OK);
                set_threads_or_fail(2);
                assert_int_equal(run_general(op, dt, dt, xh, NULL, two, rows, cols, 0.7, SOFTMAX_FLAG_FAST),
                                 SOFTMAX_OK);
                set_threads_or_fail(0);
                if (memcmp(fast, two, n * 2) != 0)
                    fail_msg("fast %s %s %zux%zu: 1 and 2 threads differ", dtype_name(dt), log ? "log" : "", rows,
                             cols);
                for (size_t i = 0; i < n; i++) {
                    /* Same-signed finite values: adjacent encodings differ by 1. */
                    const int d = (int)fast[i] - (int)accurate[i];
                    if (d < -1 || d > 1)
                        fail_msg("fast %s %s %zux%zu: output %zu is %#06x, the accurate one %#06x", dtype_name(dt),
                                 log ? "log_softmax" : "softmax", rows, cols, i, fast[i], accurate[i]);
                    neighbours += d != 0;
                }
                outputs += n;
                /* Half in, f32 out: the fast bound against MPFR. */
                assert_int_equal(
                    run_general(op, dt, SOFTMAX_DTYPE_F32, xh, NULL, y, rows, cols, 0.7, SOFTMAX_FLAG_FAST),
                    SOFTMAX_OK);
                /* And the documented bits: the fast f32 result of the
                 * widened values (half out: that result rounded once),
                 * whether the kernels read the half rows in place (rows
                 * past 8 vectors) or gathered them. */
                {
                    float *wide_fast = malloc(n * sizeof *wide_fast);
                    uint16_t *rounded = malloc(n * sizeof *rounded);
                    assert_true(wide_fast != NULL && rounded != NULL);
                    assert_int_equal(run_general(op, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, widened, NULL, wide_fast,
                                                 rows, cols, 0.7, SOFTMAX_FLAG_FAST),
                                     SOFTMAX_OK);
                    assert_int_equal(softmax_convert(rounded, dt, wide_fast, SOFTMAX_DTYPE_F32, n), SOFTMAX_OK);
                    for (size_t i = 0; i < n; i++) {
                        if (fast[i] != rounded[i])
                            fail_msg("fast %s %s %zux%zu: output %zu is %#06x, the rounded fast f32 result %#06x",
                                     dtype_name(dt), log ? "log_softmax" : "softmax", rows, cols, i, fast[i],
                                     rounded[i]);
                        if (memcmp(&y[i], &wide_fast[i], sizeof *y) != 0)
                            fail_msg("fast %s in, f32 out, %zux%zu: output %zu is %a, the fast f32 result %a",
                                     dtype_name(dt), rows, cols, i, (double)y[i], (double)wide_fast[i]);
                    }
                    free(wide_fast), free(rounded);
                }
                ref_vec ref;
                ref_vec_init(&ref, cols);
                size_t failures = 0;
                for (size_t r = 0; r < rows; r++) {
                    const ref_line in = ref_line_make(SOFTMAX_DTYPE_F32, widened + r * cols, cols, 1);
                    const ref_line got = ref_line_make(SOFTMAX_DTYPE_F32, y + r * cols, cols, 1);
                    ref_softmax(&ref, in, 0.7, log);
                    failures += log ? check_log_softmax_line(&ref, got, FAST_BOUND, &st, "fast, half in, f32 out")
                                    : check_softmax_line(&ref, got, FAST_BOUND, &st, "fast, half in, f32 out");
                }
                ref_vec_free(&ref);
                if (failures)
                    fail_msg("fast %s in, f32 out: %zu outputs beyond %g ulp", dtype_name(dt), failures, FAST_BOUND);
            }
            free(x), free(widened), free(y), free(xh), free(fast), free(accurate), free(two);
        }
    /* A transposed f32 view: the bits of its contiguous copy. */
    enum { ROWS = 300, COLS = 517 };
    float *x = malloc(ROWS * COLS * sizeof *x), *copy = malloc(ROWS * COLS * sizeof *copy);
    float *a = malloc(ROWS * COLS * sizeof *a), *b = malloc(ROWS * COLS * sizeof *b);
    fill(x, ROWS * COLS, 0, &rng);
    for (size_t r = 0; r < ROWS; r++)
        for (size_t j = 0; j < COLS; j++)
            copy[r * COLS + j] = x[j * ROWS + r];
    const int64_t transposed[2] = {1, ROWS};
    for (int log = 0; log < 2; log++) {
        const softmax_op op = log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX;
        assert_int_equal(
            run_general(op, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, x, transposed, a, ROWS, COLS, 0.7, SOFTMAX_FLAG_FAST),
            SOFTMAX_OK);
        assert_int_equal(
            run_general(op, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, copy, NULL, b, ROWS, COLS, 0.7, SOFTMAX_FLAG_FAST),
            SOFTMAX_OK);
        assert_memory_equal(a, b, ROWS * COLS * sizeof *a);
    }
    free(x), free(copy), free(a), free(b);
    printf("fast mode, general API: half outputs %zu of %zu the accurate one's neighbour, the rest equal; half in, "
           "f32 out: max %.3f ulp\n",
           neighbours, outputs, st.max_err);
}

int main(void)
{
    const int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_mode_accuracy_and_special_values),
        cmocka_unit_test(test_fast_mode_is_deterministic),
        cmocka_unit_test(test_fast_flag_elsewhere_gives_the_accurate_bits),
        cmocka_unit_test(test_fast_mode_through_the_general_api),
    };
    return cmocka_run_group_tests_name("fast mode", tests, NULL, NULL);
}
