/*
 * test_portable.c -- the portable (scalar) path's own arithmetic and the
 * log-softmax sign rule on it:
 *
 *  - the double-double pieces of the f64 path (src/ref/double_double.h):
 *    the table of 2^(j/512), exp and log against MPFR at 256 bits, with the
 *    error bounds their comments state;
 *  - log-softmax never above 0 on the portable path, f32 and f64, and
 *    exactly 0 where the probability is exactly 1 (a row of one element,
 *    every other element -inf, or under softmin every other element +inf).
 *
 * It runs the library on the portable path: SOFTMAX_ISA=scalar unless the
 * environment names a path already (ctest sets it).
 */
#include <math.h>
#include <mpfr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "ref/double_double.h"

enum { PREC = 256 };

/* log2(|got - exact| / max(|exact|, floor)), exact from MPFR. */
static double relative_error_log2(double got_hi, double got_lo, const mpfr_t exact, double floor)
{
    mpfr_t difference;
    mpfr_init2(difference, PREC);
    mpfr_set_d(difference, got_hi, MPFR_RNDN);
    mpfr_add_d(difference, difference, got_lo, MPFR_RNDN);
    mpfr_sub(difference, difference, exact, MPFR_RNDN);
    if (mpfr_zero_p(difference)) {
        mpfr_clear(difference);
        return -INFINITY;
    }
    mpfr_abs(difference, difference, MPFR_RNDN);
    if (mpfr_cmp_d(exact, floor) >= 0)
        mpfr_div(difference, difference, exact, MPFR_RNDN);
    else
        mpfr_div_d(difference, difference, floor, MPFR_RNDN);
    const double result = log2(mpfr_get_d(difference, MPFR_RNDN));
    mpfr_clear(difference);
    return result;
}

static void test_exp2_table(void **state)
{
    (void)state;
    mpfr_t exact, head;
    mpfr_init2(exact, PREC);
    mpfr_init2(head, 26);
    double worst = -INFINITY;
    for (int j = 0; j < 512; j++) {
        mpfr_set_si(exact, j, MPFR_RNDN);
        mpfr_div_si(exact, exact, 512, MPFR_RNDN);
        mpfr_exp2(exact, exact, MPFR_RNDN);
        const double error = relative_error_log2(exp2_table[j][0], exp2_table[j][1], exact, 0.0);
        worst = error > worst ? error : worst;
        /* The head is the value rounded to 26 bits (its products with
         * 26-bit numbers are exact). */
        mpfr_set(head, exact, MPFR_RNDN);
        assert_true(exp2_table[j][0] == mpfr_get_d(head, MPFR_RNDN));
    }
    printf("portable: 2^(j/512) table max relative error 2^%.1f\n", worst);
    assert_true(worst <= -79);
    /* ln(2) / 512 in three parts, the first two of 33 bits. */
    mpfr_const_log2(exact, MPFR_RNDN);
    mpfr_div_si(exact, exact, 512, MPFR_RNDN);
    mpfr_sub_d(exact, exact, LN2_512_A, MPFR_RNDN);
    mpfr_sub_d(exact, exact, LN2_512_B, MPFR_RNDN);
    mpfr_sub_d(exact, exact, LN2_512_C, MPFR_RNDN);
    assert_true(mpfr_zero_p(exact) || mpfr_get_exp(exact) <= -119);
    assert_true(fmod(LN2_512_A * 0x1p42, 1.0) == 0.0);
    assert_true(fmod(LN2_512_B * 0x1p76, 1.0) == 0.0);
    mpfr_clear(exact);
    mpfr_clear(head);
}

/* dd_exp_branchless in dd_exp's signature. */
static dd exp_branchless(dd t)
{
    dd e;
    dd_exp_branchless(t.hi, t.lo, &e.hi, &e.lo);
    return e;
}

/* exp of a double-double t = hi + lo against MPFR, relative error in log2. */
static double exp_error(dd (*exp_function)(dd), double hi, double lo)
{
    const dd t = fast_two_sum(hi, lo);
    const dd e = exp_function(t);
    mpfr_t exact;
    mpfr_init2(exact, PREC);
    mpfr_set_d(exact, t.hi, MPFR_RNDN);
    mpfr_add_d(exact, exact, t.lo, MPFR_RNDN);
    mpfr_exp(exact, exact, MPFR_RNDN);
    /* Below 2^-990 the low part runs out of exponent range: there the
     * bound is 2^-1074 absolute (e.hi alone is what the softmax keeps of
     * such a term; its share of the sum is nil). */
    const double error = relative_error_log2(e.hi, e.lo, exact, 0x1p-990);
    mpfr_clear(exact);
    return error;
}

static void check_exp_against_mpfr(const char *name, dd (*exp_function)(dd))
{
    test_rng rng;
    rng_seed(&rng, 2020);
    double worst = -INFINITY, worst_at = 0;
    for (int i = 0; i < 400000; i++) {
        /* Mostly the softmax range [-745, 0], some of [0, 709]; tiny
         * arguments; arguments near the reduction's break points k ln2/128. */
        double hi;
        switch (i % 4) {
        case 0:
            hi = rng_range(&rng, -745.0, 0.0);
            break;
        case 1:
            hi = rng_range(&rng, -745.0, 709.0);
            break;
        case 2:
            hi = ldexp(rng_range(&rng, -1.0, 1.0), -(int)rng_below(&rng, 70));
            break;
        default:
            hi = ((double)(long)rng_range(&rng, -137000.0, 130000.0) + 0.5) * 0.0054152123481245725 +
                 rng_range(&rng, -1e-12, 1e-12);
            break;
        }
        const double lo = hi * 0x1p-53 * rng_range(&rng, -1.0, 1.0);
        const double error = exp_error(exp_function, hi, lo);
        if (error > worst)
            worst = error, worst_at = hi;
    }
    printf("portable: %s max relative error 2^%.1f (at t = %a)\n", name, worst, worst_at);
    assert_true(worst <= -72);
    /* The limits: exp(0) is exactly 1, beyond the range 0 (low part 0 too)
     * and +inf; the two-step scaling at both ends of the range. */
    const dd one = exp_function((dd){0, 0});
    assert_true(one.hi == 1.0 && one.lo == 0.0);
    const dd below = exp_function((dd){-746.5, 0});
    assert_true(below.hi == 0.0 && below.lo == 0.0);
    assert_true(exp_function((dd){-INFINITY, 0}).hi == 0.0);
    assert_true(isinf(exp_function((dd){710.0, 0}).hi));
    assert_true(isnan(exp_function((dd){NAN, 0}).hi));
    const double ends[] = {-745.9, -745.0, -720.0, -700.0, 700.0, 709.7};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        assert_true(exp_error(exp_function, ends[i], 0) <= -72);
}

static void test_dd_exp_against_mpfr(void **state)
{
    (void)state;
    check_exp_against_mpfr("dd_exp", dd_exp);
}

/* The vectorisable form the portable lines use: the same bound. */
static void test_dd_exp_branchless_against_mpfr(void **state)
{
    (void)state;
    check_exp_against_mpfr("dd_exp_branchless", exp_branchless);
}

static void test_dd_log_against_mpfr(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 2021);
    mpfr_t exact, difference;
    mpfr_init2(exact, PREC);
    mpfr_init2(difference, PREC);
    double worst = -INFINITY;
    for (int i = 0; i < 200000; i++) {
        /* Sums of exponentials whose largest is 1: [1, 2^40], many just
         * above 1; counts. */
        double hi;
        switch (i % 3) {
        case 0:
            hi = exp2(rng_range(&rng, 0.0, 40.0));
            break;
        case 1:
            hi = 1.0 + ldexp(rng_uniform(&rng), -(int)rng_below(&rng, 53));
            break;
        default:
            hi = (double)(1 + rng_below(&rng, 1u << 22));
            break;
        }
        const double lo = i % 3 == 2 ? 0.0 : hi * 0x1p-53 * rng_range(&rng, -1.0, 1.0);
        const dd s = hi == 1.0 && lo < 0 ? (dd){1.0, -lo} : fast_two_sum(hi, lo);
        const dd l = dd_log(s);
        assert_true(l.hi >= 0);
        mpfr_set_d(exact, s.hi, MPFR_RNDN);
        mpfr_add_d(exact, exact, s.lo, MPFR_RNDN);
        mpfr_log(exact, exact, MPFR_RNDN);
        /* Absolute error, in log2. */
        mpfr_set_d(difference, l.hi, MPFR_RNDN);
        mpfr_add_d(difference, difference, l.lo, MPFR_RNDN);
        mpfr_sub(difference, difference, exact, MPFR_RNDN);
        if (!mpfr_zero_p(difference)) {
            const double error = log2(fabs(mpfr_get_d(difference, MPFR_RNDN)));
            worst = error > worst ? error : worst;
        }
    }
    printf("portable: dd_log max absolute error 2^%.1f\n", worst);
    assert_true(worst <= -71);
    const dd zero = dd_log((dd){1.0, 0.0});
    assert_true(zero.hi == 0.0 && zero.lo == 0.0);
    mpfr_clear(exact);
    mpfr_clear(difference);
}

/* ---- log-softmax <= 0, exactly 0 where the probability is exactly 1 ---- */

static size_t check_log_softmax_row(softmax_dtype dt, const double *values, size_t n, double scale, ptrdiff_t certain)
{
    void *x = buf_alloc(dt, n), *y = buf_alloc(dt, n);
    for (size_t i = 0; i < n; i++)
        buf_set(dt, x, i, values[i]);
    assert_int_equal(call_forward(dt, 1, x, y, 1, n, scale), SOFTMAX_OK);
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        const double got = buf_get(dt, y, i);
        const int wrong = (ptrdiff_t)i == certain ? !(got == 0) : got > 0;
        if (wrong && failures++ < 5)
            printf("  %s log_softmax row of %zu, scale %g: y[%zu] = %a (x = %a)%s\n", dtype_name(dt), n, scale, i, got,
                   values[i], (ptrdiff_t)i == certain ? ", want exactly 0" : "");
    }
    free(x);
    free(y);
    return failures;
}

static void test_log_softmax_never_above_zero(void **state)
{
    (void)state;
    static const double scales[] = {1.0, 0.5, 2.0, 7.3, 100.0, 1e-3, 1e-30, -1.0, -3.5, -1e-3};
    test_rng rng;
    rng_seed(&rng, 2022);
    size_t failures = 0, rows = 0;
    for (size_t d = 0; d < 2; d++) {
        const softmax_dtype dt = test_dtypes[d];
        for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
            const double scale = scales[s];
            const double direction = scale > 0 ? 1.0 : -1.0;
            /* Two elements, the second `gap` below the first (in the
             * direction of the scale): the sum is 1 + exp(-|scale| gap), as
             * close to 1 as the format allows and closer. */
            for (int k = 0; k < 4000; k++) {
                const double gap = ldexp(1.0 + k % 97 / 97.0, k / 97 - 20);
                double row[2] = {rng_normal(&rng), 0};
                row[1] = dtype_round(dt, row[0] - direction * gap);
                failures += check_log_softmax_row(dt, row, 2, scale, -1);
                rows++;
            }
            /* A row of one element: probability exactly 1. */
            for (int k = 0; k < 200; k++) {
                double one[1] = {dtype_round(dt, rng_normal(&rng) * pow(10.0, rng_range(&rng, -3, 30)))};
                failures += check_log_softmax_row(dt, one, 1, scale, 0);
                rows++;
            }
            /* Every other element masked (-inf; +inf under softmin). */
            for (int k = 0; k < 200; k++) {
                const size_t n = 2 + rng_below(&rng, 40), keep = rng_below(&rng, n);
                double *row = malloc(n * sizeof *row);
                for (size_t i = 0; i < n; i++)
                    row[i] = i == keep ? dtype_round(dt, rng_normal(&rng) * 50) : -direction * INFINITY;
                failures += check_log_softmax_row(dt, row, n, scale, (ptrdiff_t)keep);
                free(row);
                rows++;
            }
            /* Random rows, the maximum far above the rest or not. */
            for (int k = 0; k < 300; k++) {
                const size_t n = 1 + rng_below(&rng, 300);
                double *row = malloc(n * sizeof *row);
                const double spread = pow(10.0, rng_range(&rng, -8, 3));
                for (size_t i = 0; i < n; i++)
                    row[i] = dtype_round(dt, rng_normal(&rng) * spread);
                failures += check_log_softmax_row(dt, row, n, scale, n == 1 ? 0 : -1);
                free(row);
                rows++;
            }
        }
    }
    printf("portable: log-softmax sign checked on %zu rows\n", rows);
    assert_int_equal(failures, 0);
}

int main(void)
{
    /* The portable path unless ctest (or the user) names one. */
    const char *isa = getenv("SOFTMAX_ISA");
    if (isa == NULL || isa[0] == '\0')
        setenv("SOFTMAX_ISA", "scalar", 1);
    const char *path = softmax_isa_name();
    printf("portable: library path %s\n", path != NULL ? path : "unavailable");
    if (path == NULL)
        return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp2_table),
        cmocka_unit_test(test_dd_exp_against_mpfr),
        cmocka_unit_test(test_dd_exp_branchless_against_mpfr),
        cmocka_unit_test(test_dd_log_against_mpfr),
        cmocka_unit_test(test_log_softmax_never_above_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
