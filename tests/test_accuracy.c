/*
 * test_accuracy.c -- the contract's accuracy bound, measured: softmax within
 * the bound (in ulp) of the MPFR reference for outputs in the normal range,
 * log-softmax within the same number of ulp of max(|y|, 1), over row
 * lengths 1 .. 33, on both sides of every vector width up to 128, 1000,
 * 4097, 32000, 2^20 and 2^22, several value distributions and scales
 * (including negative ones), misaligned and in-place buffers.
 *
 * SOFTMAX_ACCURACY_LIGHT=1 (environment) runs one long row per type instead
 * of three: f32 a row of 2^20 at scale 0.5, f64 a row of 2^20 of nearly equal
 * values in place (both still past every threshold of
 * src/kernels/thresholds.h), no row of 2^22, and of the medium rows those of
 * 1000 and 4097 (two sum blocks) but not those of 32000 (eight, the same
 * kernels). The MPFR references of the long rows are most of the test's time
 * under emulation (a row of 2^22 takes minutes there) and under the
 * sanitizers; the cross builds and the sanitized build set it. Unset, every
 * row runs.
 *
 * The bound is that of the code path under test (2 ulp f32 on the portable
 * path, 3 on the SIMD paths; 4 ulp f64). The measured maxima are printed
 * ("accuracy (...): ..." lines) so that they can be quoted; the largest row
 * length measured is printed with them.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

typedef enum distribution {
    D_NORMAL10,     /* 10 * N(0, 1) */
    D_UNIFORM100,   /* U[-100, 100] */
    D_HUGE_SPREAD,  /* +-10^U[-38, 38] (f32) / +-10^U[-300, 300] (f64) */
    D_TIES,         /* integers in [-2, 2]: many ties */
    D_NEAR_UNIFORM, /* 1 + k ulp(1), k < 64: every output close to 1/n */
    D_PEAKED,       /* 3 * N(0, 1) with one element raised by 30 */
    D_POOL,         /* U[-10, 10], drawn from a pool of 65536 values */
    D_COUNT
} distribution;

static const char *const dist_names[D_COUNT] = {"normal*10", "uniform[-100,100]", "huge spread", "ties", "near uniform",
                                                "peaked",    "pool of U[-10,10]"};

static const double scales[] = {1.0, 0.5, 0.01, 1e-30, 7.3, 100.0, -1.0, -3.5};

static void generate(softmax_dtype dt, void *x, size_t n, distribution d, test_rng *rng)
{
    double huge_exp = dt == SOFTMAX_DTYPE_F32 ? 38.0 : 300.0;
    for (size_t i = 0; i < n; i++) {
        double v = 0.0;
        switch (d) {
        case D_NORMAL10:
            v = 10.0 * rng_normal(rng);
            break;
        case D_UNIFORM100:
            v = rng_range(rng, -100.0, 100.0);
            break;
        case D_HUGE_SPREAD:
            v = (rng_next(rng) & 1 ? -1.0 : 1.0) * pow(10.0, rng_range(rng, -huge_exp, huge_exp));
            break;
        case D_TIES:
            v = (double)((int)rng_below(rng, 5) - 2);
            break;
        case D_NEAR_UNIFORM:
            v = 1.0 + (double)rng_below(rng, 64) * dtype_eps(dt);
            break;
        case D_PEAKED:
            v = 3.0 * rng_normal(rng);
            break;
        case D_POOL: {
            /* the pool's values come from a second generator seeded by the
             * index, so no table is needed */
            test_rng pool;
            rng_seed(&pool, 0xC0FFEE + rng_below(rng, 65536));
            v = rng_range(&pool, -10.0, 10.0);
            break;
        }
        case D_COUNT:
            break;
        }
        buf_set(dt, x, i, v);
    }
    if (d == D_PEAKED && n > 0) {
        size_t k = rng_below(rng, n);
        buf_set(dt, x, k, buf_get(dt, x, k) + 30.0);
    }
}

/* Totals per data type (index 0: f32, 1: f64). */
static err_stats softmax_stats[2], log_stats[2];
static double max_sum_deviation[2]; /* |sum(y) - 1| / eps */

static int dt_index(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? 0 : 1;
}

/* Runs softmax and log-softmax on rows x cols of x (optionally in place,
 * optionally with the output `offset` elements past an aligned address) and
 * checks them against the reference. Returns the number of failures. */
static size_t measure(softmax_dtype dt, const void *x, size_t rows, size_t cols, double scale, int in_place,
                      size_t offset, const char *label)
{
    size_t n = rows * cols, esize = dtype_size(dt), failures = 0;
    int k = dt_index(dt);
    char what[2][200];
    for (int log = 0; log <= 1; log++)
        snprintf(what[log], sizeof what[log], "%s_%s %s rows=%zu cols=%zu scale=%g%s", log ? "log_softmax" : "softmax",
                 dtype_name(dt), label, rows, cols, scale, in_place ? " in place" : "");
    void *buf[2], *y[2];
    for (int log = 0; log <= 1; log++) {
        buf[log] = buf_alloc(dt, n + offset);
        y[log] = buf_at(dt, buf[log], offset);
        int rc;
        if (in_place) {
            memcpy(y[log], x, n * esize);
            rc = call_forward(dt, log, y[log], y[log], rows, cols, scale);
        } else {
            rc = call_forward(dt, log, x, y[log], rows, cols, scale);
        }
        if (rc != SOFTMAX_OK) {
            fprintf(stderr, "  FAIL %s: status %d (%s)\n", what[log], rc, softmax_strerror(rc));
            failures++;
        }
    }
    if (failures) {
        free(buf[0]);
        free(buf[1]);
        return failures;
    }
    double s = scale_as(dt, scale);
    ref_vec ref, ref_log;
    ref_vec_init(&ref, cols);
    ref_vec_init(&ref_log, cols);
    double bound = contract_ulp_bound(dt);
    for (size_t r = 0; r < rows; r++) {
        ref_line xl = ref_line_make(dt, buf_cat(dt, x, r * cols), cols, 1);
        ref_line yl = ref_line_make(dt, buf_cat(dt, y[0], r * cols), cols, 1);
        ref_line ll = ref_line_make(dt, buf_cat(dt, y[1], r * cols), cols, 1);
        ref_softmax_both(&ref, &ref_log, xl, s);
        failures += check_softmax_line(&ref, yl, bound, &softmax_stats[k], what[0]);
        failures += check_log_softmax_line(&ref_log, ll, bound, &log_stats[k], what[1]);
        /* The outputs sum to 1 within the bound (each is within `bound` ulp
         * <= bound * eps * y of its reference) plus what the outputs below
         * the normal range may lose. */
        double dev = fabs(line_sum(yl) - 1.0);
        double tol = bound * dtype_eps(dt) + (double)cols * 2 * dtype_min_normal(dt);
        if (dev / dtype_eps(dt) > max_sum_deviation[k])
            max_sum_deviation[k] = dev / dtype_eps(dt);
        if (!(dev <= tol)) {
            fprintf(stderr, "  FAIL %s: row %zu sums to 1 %+.3g\n", what[0], r, line_sum(yl) - 1.0);
            failures++;
        }
    }
    ref_vec_free(&ref);
    ref_vec_free(&ref_log);
    free(buf[0]);
    free(buf[1]);
    return failures;
}

/* Every distribution and scale for one row length; every third run is in
 * place, every other one misaligned by one or three elements. */
static size_t sweep_length(softmax_dtype dt, size_t cols, size_t rows, test_rng *rng, unsigned *counter)
{
    size_t failures = 0;
    void *xbuf = buf_alloc(dt, rows * cols + 2);
    for (int d = 0; d < D_COUNT; d++) {
        if (d == D_POOL)
            continue;
        for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
            unsigned c = (*counter)++;
            void *x = buf_at(dt, xbuf, c % 2);
            generate(dt, x, rows * cols, (distribution)d, rng);
            failures +=
                measure(dt, x, rows, cols, scales[s], c % 3 == 0, c % 4 == 1 ? 3 : (c % 4 == 3 ? 1 : 0), dist_names[d]);
        }
    }
    free(xbuf);
    return failures;
}

static void print_summary(const char *when)
{
    for (int k = 0; k < 2; k++) {
        const char *name = k == 0 ? "f32" : "f64";
        printf("accuracy (%s): softmax_%s max_ulp=%.3f (bound %.0f) outputs=%zu below_normal=%zu largest_row=%zu "
               "max|sum-1|=%.3f eps\n",
               when, name, softmax_stats[k].max_err, contract_ulp_bound(test_dtypes[k]), softmax_stats[k].checked,
               softmax_stats[k].subnormal, softmax_stats[k].max_len, max_sum_deviation[k]);
        printf("accuracy (%s): log_softmax_%s max_ulp=%.3f (of max(|y|,1), bound %.0f) outputs=%zu largest_row=%zu\n",
               when, name, log_stats[k].max_err, contract_ulp_bound(test_dtypes[k]), log_stats[k].checked,
               log_stats[k].max_len);
    }
    fflush(stdout);
}

static void test_short_rows_and_vector_widths(void **state)
{
    (void)state;
    static const size_t widths[] = {63, 64, 65, 127, 128, 129};
    test_rng rng;
    rng_seed(&rng, 301);
    size_t failures = 0;
    unsigned counter = 0;
    for (size_t d = 0; d < 2; d++) {
        for (size_t n = 1; n <= 33; n++)
            failures += sweep_length(test_dtypes[d], n, 3, &rng, &counter);
        for (size_t w = 0; w < ARRAY_LEN(widths); w++)
            failures += sweep_length(test_dtypes[d], widths[w], 3, &rng, &counter);
    }
    print_summary("rows <= 129");
    if (failures)
        fail_msg("%zu outputs beyond the contract's bound (details above)", failures);
}

/* Rows of at most one vector and of at most 8 vectors (small rows) in
 * many-row batches: the kernels take them a group of one vector's lanes at
 * a time (tiny rows transposed; small rows with their reductions
 * transposed), and a tiny group's last rows, when fewer than a few, one by
 * one. */
static const size_t small_widths[] = {18, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100, 127, 128, 129};

/* Rows a batch of test_many_tiny_and_small_rows: a whole group of the
 * path's f32 lanes and 5 rows more (21 on AVX-512), so that every type
 * gets full groups and a partial one of the same size as with 21 rows
 * (f32 and f64, every width of 2 to 16 lanes). A larger batch on a
 * narrower path would only repeat full groups: under emulation (NEON under
 * qemu) their MPFR references cost a third of the test. */
static size_t rows_per_batch(void)
{
    const char *isa = softmax_isa_name();
    const size_t f32_lanes = strcmp(isa, "avx512") == 0 ? 16 : strcmp(isa, "avx2") == 0 ? 8 : 4;
    return f32_lanes + 5;
}

static void test_many_tiny_and_small_rows(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 304);
    size_t failures = 0;
    unsigned counter = 0;
    const size_t rows = rows_per_batch();
    for (size_t d = 0; d < 2; d++) {
        for (size_t n = 1; n <= 17; n++)
            failures += sweep_length(test_dtypes[d], n, rows, &rng, &counter);
        for (size_t w = 0; w < ARRAY_LEN(small_widths); w++)
            failures += sweep_length(test_dtypes[d], small_widths[w], rows, &rng, &counter);
    }
    char what[64];
    snprintf(what, sizeof what, "%zu rows of <= 129", rows);
    print_summary(what);
    if (failures)
        fail_msg("%zu outputs beyond the contract's bound (details above)", failures);
}

/* A row's bits must not depend on the rows it is computed with (the split
 * over threads and the caller's batching decide that): every row of a batch
 * of tiny or small rows, hostile values included, equals the same row
 * computed alone, and the batch started at any row. */
static void test_short_rows_give_the_same_bits_alone_and_in_a_batch(void **state)
{
    (void)state;
    static const double specials[] = {-INFINITY, INFINITY, NAN, 0.0, 1e30, -1e30};
    static const double batch_scales[] = {1.0, -0.75, 3e4, 1e-3};
    enum { ROWS = 37 };
    test_rng rng;
    rng_seed(&rng, 305);
    size_t mismatches = 0;
    for (size_t d = 0; d < 2; d++) {
        const softmax_dtype dt = test_dtypes[d];
        const size_t esize = dtype_size(dt);
        for (size_t k = 0; k < 17 + ARRAY_LEN(small_widths); k++) {
            const size_t n = k < 17 ? k + 1 : small_widths[k - 17];
            void *x = buf_alloc(dt, ROWS * n), *batch = buf_alloc(dt, ROWS * n), *alone = buf_alloc(dt, n);
            for (size_t i = 0; i < ROWS * n; i++)
                buf_set(dt, x, i,
                        rng_uniform(&rng) < 0.05 ? specials[rng_below(&rng, ARRAY_LEN(specials))]
                                                 : 10.0 * rng_normal(&rng));
            for (int log = 0; log < 2; log++)
                for (size_t s = 0; s < ARRAY_LEN(batch_scales); s++)
                    for (size_t start = 0; start < 3; start++) {
                        const size_t rows = ROWS - start;
                        assert_int_equal(
                            call_forward(dt, log, buf_cat(dt, x, start * n), batch, rows, n, batch_scales[s]),
                            SOFTMAX_OK);
                        for (size_t r = 0; r < rows; r++) {
                            assert_int_equal(
                                call_forward(dt, log, buf_cat(dt, x, (start + r) * n), alone, 1, n, batch_scales[s]),
                                SOFTMAX_OK);
                            if (memcmp(buf_at(dt, batch, r * n), alone, n * esize) != 0 && mismatches++ < 5)
                                fprintf(stderr, "  FAIL %s_%s n=%zu scale=%g: row %zu differs alone and in a batch\n",
                                        log ? "log_softmax" : "softmax", dtype_name(dt), n, batch_scales[s], start + r);
                        }
                    }
            free(x);
            free(batch);
            free(alone);
        }
    }
    if (mismatches)
        fail_msg("%zu rows differ alone and in a batch", mismatches);
}

/* SOFTMAX_ACCURACY_LIGHT=1 (see the top of the file). */
static bool light_mode(void)
{
    const char *setting = getenv("SOFTMAX_ACCURACY_LIGHT");
    if (setting == NULL || *setting == '\0' || strcmp(setting, "0") == 0)
        return false;
    if (strcmp(setting, "1") != 0)
        fail_msg("SOFTMAX_ACCURACY_LIGHT=%s: expected 1 (the lighter set of rows) or 0", setting);
    return true;
}

static void test_medium_rows(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 302);
    size_t failures = 0;
    unsigned counter = 0;
    const bool light = light_mode();
    for (size_t d = 0; d < 2; d++) {
        failures += sweep_length(test_dtypes[d], 1000, 2, &rng, &counter);
        failures += sweep_length(test_dtypes[d], 4097, 1, &rng, &counter);
        if (light)
            printf("accuracy: %s rows of 32000 left out (SOFTMAX_ACCURACY_LIGHT=1)\n", dtype_name(test_dtypes[d]));
        else
            failures += sweep_length(test_dtypes[d], 32000, 1, &rng, &counter);
    }
    print_summary("rows <= 32000");
    if (failures)
        fail_msg("%zu outputs beyond the contract's bound (details above)", failures);
}

static void test_rows_of_a_million_and_of_2_pow_22(void **state)
{
    (void)state;
    enum { IN_LIGHT_F32 = 1, IN_LIGHT_F64 = 2 };
    static const struct {
        size_t cols;
        distribution dist;
        double scale;
        int in_place;
        int light; /* the types this row also runs for under SOFTMAX_ACCURACY_LIGHT */
    } runs[] = {
        {(size_t)1 << 20, D_NORMAL10, 0.5, 0, IN_LIGHT_F32},
        {(size_t)1 << 20, D_NEAR_UNIFORM, 1.0, 1, IN_LIGHT_F64},
        {(size_t)1 << 22, D_POOL, 1.0, 0, 0},
    };
    const bool light = light_mode();
    test_rng rng;
    rng_seed(&rng, 303);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        const int light_bit = dt == SOFTMAX_DTYPE_F32 ? IN_LIGHT_F32 : IN_LIGHT_F64;
        for (size_t r = 0; r < ARRAY_LEN(runs); r++) {
            if (light && !(runs[r].light & light_bit)) {
                printf("accuracy: %s row of %zu (%s) left out (SOFTMAX_ACCURACY_LIGHT=1)\n", dtype_name(dt),
                       runs[r].cols, dist_names[runs[r].dist]);
                continue;
            }
            void *x = buf_alloc(dt, runs[r].cols);
            generate(dt, x, runs[r].cols, runs[r].dist, &rng);
            failures += measure(dt, x, 1, runs[r].cols, runs[r].scale, runs[r].in_place, 0, dist_names[runs[r].dist]);
            free(x);
        }
    }
    print_summary("all rows");
    if (failures)
        fail_msg("%zu outputs beyond the contract's bound (details above)", failures);
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    for (int k = 0; k < 2; k++) {
        err_stats_init(&softmax_stats[k]);
        err_stats_init(&log_stats[k]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_rows_and_vector_widths),
        cmocka_unit_test(test_many_tiny_and_small_rows),
        cmocka_unit_test(test_short_rows_give_the_same_bits_alone_and_in_a_batch),
        cmocka_unit_test(test_medium_rows),
        cmocka_unit_test(test_rows_of_a_million_and_of_2_pow_22),
    };
    return cmocka_run_group_tests_name("accuracy", tests, NULL, NULL);
}
