/*
 * test_stats.c -- softmax_row_stats(): log-sum-exp, entropy and arg max of
 * softmax(scale * x) against an MPFR reference computed from the very
 * values the library read, on random and hostile rows of every data type,
 * and the special values of the contract.
 *
 * Bounds (softmax.h): |logsumexp - exact| <= 8 ulp of max(|scale * max x|,
 * |logsumexp|, 1); |entropy - exact| <= 16 ulp of (entropy + 1); ulps of
 * f64 for f64 rows, of f32 otherwise. The largest errors seen are printed.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpfr.h>

#include "reference.h"
#include "testutil.h"

#define LSE_BOUND_ULP 8.0
#define LN2 0.69314718055994530942
#define ENTROPY_BOUND_ULP 16.0

/* Exact log-sum-exp and entropy of softmax(scale * x) for a row whose
 * scale * x_i are finite or -inf (at least one finite). */
static void mpfr_stats(const double *x, size_t n, double scale, double *lse_out, double *entropy_out)
{
    mpfr_t z, max, sum, term, lse, weighted;
    mpfr_inits2(REF_PREC, z, max, sum, term, lse, weighted, (mpfr_ptr)0);
    mpfr_set_inf(max, -1);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(z, x[i], MPFR_RNDN);
        mpfr_mul_d(z, z, scale, MPFR_RNDN); /* exact: 106 bits at most */
        if (mpfr_cmp(z, max) > 0)
            mpfr_set(max, z, MPFR_RNDN);
    }
    /* sum = sum e^(z - max); weighted = sum e^(z - max) * (z - max) */
    mpfr_set_zero(sum, 1);
    mpfr_set_zero(weighted, 1);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(z, x[i], MPFR_RNDN);
        mpfr_mul_d(z, z, scale, MPFR_RNDN);
        if (mpfr_inf_p(z))
            continue; /* -inf: weight 0 */
        mpfr_sub(z, z, max, MPFR_RNDN);
        mpfr_exp(term, z, MPFR_RNDN);
        mpfr_add(sum, sum, term, MPFR_RNDN);
        mpfr_mul(term, term, z, MPFR_RNDN);
        mpfr_add(weighted, weighted, term, MPFR_RNDN);
    }
    mpfr_log(lse, sum, MPFR_RNDN);
    /* entropy = log(sum) - weighted / sum */
    mpfr_div(weighted, weighted, sum, MPFR_RNDN);
    mpfr_sub(term, lse, weighted, MPFR_RNDN);
    *entropy_out = mpfr_get_d(term, MPFR_RNDN);
    mpfr_add(lse, lse, max, MPFR_RNDN);
    *lse_out = mpfr_get_d(lse, MPFR_RNDN);
    mpfr_clears(z, max, sum, term, lse, weighted, (mpfr_ptr)0);
}

static int precision_of(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F64 ? 53 : 24;
}

/* The row in the data type, and (into `stored`) the values it holds. */
static void *store_row(softmax_dtype dt, double *values, size_t n)
{
    void *row = malloc(n * dtype_size(dt) + 1);
    assert_int_equal(softmax_convert(row, dt, values, SOFTMAX_DTYPE_F64, n), SOFTMAX_OK);
    assert_int_equal(softmax_convert(values, SOFTMAX_DTYPE_F64, row, dt, n), SOFTMAX_OK);
    return row;
}

static size_t expected_argmax(const double *x, size_t n, double scale)
{
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            return i;
        double v = x[i], b = x[best];
        if (scale > 0 ? v > b : scale < 0 ? v < b : (b == -INFINITY && v > b))
            best = i;
    }
    return best;
}

static double worst_lse[4], worst_entropy[4]; /* in ulps of the bound's unit, per dtype */

static int dtype_slot(softmax_dtype dt)
{
    return (int)dt - 1;
}

/* Checks one finite row against MPFR; returns 1 on failure (printed). */
static int check_row(softmax_dtype dt, const double *values, const void *row, size_t n, double scale, const char *what)
{
    double lse, entropy;
    int64_t argmax;
    assert_int_equal(softmax_row_stats(dt, row, 1, n, scale, &lse, &entropy, &argmax), SOFTMAX_OK);
    double ref_lse, ref_entropy;
    mpfr_stats(values, n, scale, &ref_lse, &ref_entropy);
    double z_max = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(values[i])) /* masked (-inf) elements do not count */
            z_max = fmax(z_max, fabs(scale * values[i]));
    }
    int p = precision_of(dt);
    double lse_unit = ulp_p(fmax(fmax(z_max, fabs(ref_lse)), 1.0), p);
    double entropy_unit = ulp_p(ref_entropy + 1.0, p);
    double lse_err = fabs(lse - ref_lse) / lse_unit, entropy_err = fabs(entropy - ref_entropy) / entropy_unit;
    int slot = dtype_slot(dt);
    worst_lse[slot] = fmax(worst_lse[slot], lse_err);
    worst_entropy[slot] = fmax(worst_entropy[slot], entropy_err);
    int failed = 0;
    if (!(lse_err <= LSE_BOUND_ULP)) {
        printf("%s %s n=%zu scale=%g: logsumexp %.17g, exact %.17g (%.1f ulp)\n", dtype_name(dt), what, n, scale, lse,
               ref_lse, lse_err);
        failed = 1;
    }
    if (!(entropy_err <= ENTROPY_BOUND_ULP)) {
        printf("%s %s n=%zu scale=%g: entropy %.17g, exact %.17g (%.1f ulp)\n", dtype_name(dt), what, n, scale, entropy,
               ref_entropy, entropy_err);
        failed = 1;
    }
    if (argmax != (int64_t)expected_argmax(values, n, scale)) {
        printf("%s %s n=%zu scale=%g: argmax %lld, expected %zu\n", dtype_name(dt), what, n, scale, (long long)argmax,
               expected_argmax(values, n, scale));
        failed = 1;
    }
    return failed;
}

static const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};

static void test_random_rows_against_mpfr(void **state)
{
    (void)state;
    static const size_t lengths[] = {1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 64, 100, 257, 1000, 4097, 40000};
    static const double scales[] = {1.0, 0.5, 7.3, -1.0, -0.01, 1e-3, 30.0};
    const char *const kinds[] = {"normal*10", "uniform[-100,100]", "huge spread", "ties", "peaked", "masked"};
    test_rng rng;
    rng_seed(&rng, 2024);
    size_t failures = 0, rows = 0;
    for (size_t d = 0; d < ARRAY_LEN(types); d++) {
        softmax_dtype dt = types[d];
        double limit = dt == SOFTMAX_DTYPE_F16 ? 6e4 : dt == SOFTMAX_DTYPE_F64 ? 1e300 : 1e38;
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            double *values = malloc(n * sizeof *values);
            for (size_t kind = 0; kind < ARRAY_LEN(kinds); kind++) {
                for (size_t i = 0; i < n; i++) {
                    double v = 0;
                    switch (kind) {
                    case 0:
                        v = 10.0 * rng_normal(&rng);
                        break;
                    case 1:
                        v = rng_range(&rng, -100, 100);
                        break;
                    case 2:
                        v = (rng_next(&rng) & 1 ? -1 : 1) * pow(10.0, rng_range(&rng, -30, log10(limit)));
                        break;
                    case 3:
                        v = (double)((int)rng_below(&rng, 5) - 2);
                        break;
                    case 4:
                        v = 3.0 * rng_normal(&rng) + (i == n / 2 ? 30.0 : 0.0);
                        break;
                    default:
                        v = rng_below(&rng, 3) == 0 ? -INFINITY : rng_normal(&rng);
                        break;
                    }
                    values[i] = v;
                }
                if (kind == 5)
                    values[rng_below(&rng, n)] = 0.5; /* at least one finite */
                void *row = store_row(dt, values, n);
                double scale = scales[rng_below(&rng, ARRAY_LEN(scales))];
                if (kind == 5 && scale < 0)
                    scale = -scale; /* -inf masks with scale > 0 */
                if (kind == 2)
                    scale = scale > 0 ? 1.0 : -1.0; /* the spread itself is the test */
                failures += (size_t)check_row(dt, values, row, n, scale, kinds[kind]);
                rows++;
                free(row);
            }
            free(values);
        }
    }
    for (size_t d = 0; d < ARRAY_LEN(types); d++)
        printf("stats accuracy (%s): logsumexp max %.2f ulp, entropy max %.2f ulp (bounds %.0f, %.0f)\n",
               dtype_name(types[d]), worst_lse[dtype_slot(types[d])], worst_entropy[dtype_slot(types[d])],
               LSE_BOUND_ULP, ENTROPY_BOUND_ULP);
    printf("%zu rows checked\n", rows);
    if (failures)
        fail_msg("%zu rows beyond the bounds (details above)", failures);
}

static void test_hostile_rows(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t d = 0; d < ARRAY_LEN(types); d++) {
        softmax_dtype dt = types[d];
        double big = dt == SOFTMAX_DTYPE_F16 ? 65504.0 : dt == SOFTMAX_DTYPE_F64 ? 1e308 : 3e38;
        /* exp of the naive formula overflows; the stable one does not */
        double overflow[] = {big, big * 0.5, -big, big, 1.0};
        void *row = store_row(dt, overflow, 5);
        failures += (size_t)check_row(dt, overflow, row, 5, 1.0, "huge");
        failures += (size_t)check_row(dt, overflow, row, 5, -1.0, "huge, softmin");
        free(row);
        /* nearly one-hot: the entropy is tiny and must stay accurate */
        double peaked[] = {0.0, -60.0, -70.0, -80.0};
        row = store_row(dt, peaked, 4);
        failures += (size_t)check_row(dt, peaked, row, 4, 1.0, "nearly one-hot");
        free(row);
        /* nearly uniform */
        double flat[200];
        for (size_t i = 0; i < 200; i++)
            flat[i] = 1.0 + (double)(i % 3) * 0x1p-20;
        row = store_row(dt, flat, 200);
        failures += (size_t)check_row(dt, flat, row, 200, 1.0, "nearly uniform");
        free(row);
    }
    if (failures)
        fail_msg("%zu hostile rows beyond the bounds", failures);
}

typedef struct special_case {
    const char *what;
    double x[5];
    size_t n;
    double scale;
    double lse, entropy;
    int64_t argmax;
} special_case;

static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b || fabs(a - b) <= 1e-15 * fabs(b);
}

static void test_special_values(void **state)
{
    (void)state;
    const double inf = INFINITY;
    const special_case cases[] = {
        {"NaN", {1, NAN, 3, NAN, 0}, 5, 1.0, NAN, NAN, 1},
        {"NaN, scale 0", {1, 2, NAN}, 3, 0.0, NAN, NAN, 2},
        {"all -inf", {-inf, -inf, -inf}, 3, 1.0, -inf, 0.0, 0},
        {"all +inf, softmin", {inf, inf}, 2, -2.0, -inf, 0.0, 0},
        {"+inf entries", {1, inf, 3, inf, -inf}, 5, 1.0, inf, LN2, 1},
        {"-inf entries, softmin", {1, -inf, 3, -inf}, 4, -0.5, inf, LN2, 1},
        {"scale 0", {1, -inf, 300, 2}, 4, 0.0, log(3.0), log(3.0), 0},
        {"scale 0, masked first", {-inf, 5, 6}, 3, 0.0, LN2, LN2, 1},
        {"scale +inf", {1, 3, 3, -2}, 4, inf, inf, LN2, 1},
        {"scale +inf, max 0", {-1, 0, 0, -inf}, 4, inf, LN2, LN2, 1},
        {"scale +inf, max < 0", {-1, -3}, 2, inf, -inf, 0.0, 0},
        /* every z is -inf, but the limit is one-hot at the ties, not a masked row */
        {"scale +inf, max < 0 not first", {-3, -1, -1}, 3, inf, -inf, LN2, 1},
        {"scale -inf, min > 0 not first", {5, 2, 2}, 3, -inf, -inf, LN2, 1},
        {"scale -inf", {1, 3, -2, -2}, 4, -inf, inf, LN2, 2},
        {"one element", {-7}, 1, 3.0, -21.0, 0.0, 0},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        for (size_t d = 0; d < ARRAY_LEN(types); d++) {
            double values[5];
            memcpy(values, cases[c].x, sizeof values);
            void *row = store_row(types[d], values, cases[c].n);
            double lse = 42, entropy = 42;
            int64_t argmax = 42;
            int status = softmax_row_stats(types[d], row, 1, cases[c].n, cases[c].scale, &lse, &entropy, &argmax);
            free(row);
            assert_int_equal(status, SOFTMAX_OK);
            /* the kernels' log of a lone probability 1 may be a few ulp off 0 */
            int entropy_ok = same(entropy, cases[c].entropy) ||
                             fabs(entropy - cases[c].entropy) <= ENTROPY_BOUND_ULP * 0x1p-23 * (cases[c].entropy + 1);
            if (!same(lse, cases[c].lse) || !entropy_ok || argmax != cases[c].argmax)
                fail_msg("%s (%s): got lse %g entropy %g argmax %lld; expected %g %g %lld", cases[c].what,
                         dtype_name(types[d]), lse, entropy, (long long)argmax, cases[c].lse, cases[c].entropy,
                         (long long)cases[c].argmax);
        }
    }
}

static void test_errors_and_shapes(void **state)
{
    (void)state;
    const float x[6] = {1, 2, 3, 4, 5, 6};
    double lse[2] = {42, 42}, entropy[2] = {42, 42};
    int64_t argmax[2] = {42, 42};
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, x, 2, 3, NAN, lse, entropy, argmax), SOFTMAX_E_INVALID_SCALE);
    assert_int_equal(softmax_row_stats((softmax_dtype)9, x, 2, 3, 1.0, lse, entropy, argmax), SOFTMAX_E_INVALID_DTYPE);
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, NULL, 2, 3, 1.0, lse, entropy, argmax),
                     SOFTMAX_E_NULL_POINTER);
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, x, SIZE_MAX / 2, 3, 1.0, lse, entropy, argmax),
                     SOFTMAX_E_SIZE_OVERFLOW);
    assert_true(lse[0] == 42 && entropy[0] == 42 && argmax[0] == 42); /* nothing written */
    /* rows == 0: nothing; cols == 0: empty rows */
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, NULL, 0, 3, 1.0, NULL, NULL, NULL), SOFTMAX_OK);
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, NULL, 2, 0, 1.0, lse, entropy, argmax), SOFTMAX_OK);
    assert_true(lse[1] == -INFINITY && entropy[1] == 0.0 && argmax[1] == -1);
    /* two rows, outputs optional one by one */
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, x, 2, 3, 1.0, NULL, NULL, argmax), SOFTMAX_OK);
    assert_true(argmax[0] == 2 && argmax[1] == 2);
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, x, 2, 3, 1.0, lse, NULL, NULL), SOFTMAX_OK);
    assert_true(fabs(lse[1] - (6.0 + log(1.0 + exp(-1.0) + exp(-2.0)))) < 1e-6);
}

static void test_threads(void **state)
{
    (void)state;
    const size_t rows = 96, n = 3000;
    float *x = malloc(rows * n * sizeof *x);
    test_rng rng;
    rng_seed(&rng, 3);
    for (size_t i = 0; i < rows * n; i++)
        x[i] = (float)(5.0 * rng_normal(&rng));
    double lse1[96], h1[96], lse2[96], h2[96];
    int64_t a1[96], a2[96];
    set_threads_or_fail(1);
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, x, rows, n, 0.7, lse1, h1, a1), SOFTMAX_OK);
    set_threads_or_fail(2);
    assert_int_equal(softmax_row_stats(SOFTMAX_DTYPE_F32, x, rows, n, 0.7, lse2, h2, a2), SOFTMAX_OK);
    set_threads_or_fail(0);
    assert_memory_equal(lse1, lse2, sizeof lse1);
    assert_memory_equal(h1, h2, sizeof h1);
    assert_memory_equal(a1, a2, sizeof a1);
    free(x);
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_rows_against_mpfr),
        cmocka_unit_test(test_hostile_rows),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_errors_and_shapes),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
