/*
 * test_dd_log.c -- dd_log (src/ref/double_double.h), the double-double log
 * of a row's sum that every f64 log-softmax path takes (the portable lines,
 * the masked rows, the SIMD kernels' log-sum), against MPFR at 256 bits:
 *
 *  - its table (src/ref/log_table.h): 1 / invc within 2^-8 of every z of
 *    its subinterval (exactly 1 next to 1), log(1 / invc) and ln 2 split
 *    to the precision the error analysis assumes;
 *  - a dense sweep of the sums the lines pass, 1 <= s < 2^64 (just above
 *    1, every subinterval of the table in every binade, powers of two and
 *    their neighbours, the counts, log-uniform sums up to 2^64), and of the
 *    rest of the domain (down to the smallest subnormal, up to DBL_MAX),
 *    each with low parts from 0 to the largest a normalised sum has:
 *    absolute error below 2^-73 (the bound double_double.h derives), and
 *    below 2^-65 |log s| + 2^-105 for s in [1 - 2^-9, 1 + 2^-8), output
 *    normalised, never negative from s.hi >= 1;
 *  - log(1) exactly 0, s.hi = 1 with a low part, 0, infinities, NaN.
 *
 * tests/CMakeLists.txt builds it twice on x86-64, so that both forms of
 * two_prod (Dekker's splitting, fma) are checked.
 */
#include <float.h>
#include <math.h>
#include <mpfr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "ref/double_double.h"

enum { PREC = 256 };

/* The bound dd_log's comment states, as log2 of the absolute error. */
#define DD_LOG_BOUND_LOG2 (-73.0)
/* ... and near 1, where it is also relative: 2^-65 |log s| + 2^-105. */
#define NEAR_ONE_RELATIVE_BOUND_LOG2 (-65.0)
#define NEAR_ONE_LOW (1 - 0x1p-9)
#define NEAR_ONE_HIGH (1 + 0x1p-8)

typedef struct sweep {
    const char *name;
    mpfr_t exact, got;
    double worst; /* log2 of the largest absolute error */
    dd worst_at;
    double worst_relative; /* the same, relative to |log s|, near 1 */
    dd worst_relative_at;
    size_t points;
    size_t failures;
} sweep;

static void sweep_begin(sweep *w, const char *name)
{
    w->name = name;
    mpfr_init2(w->exact, PREC);
    mpfr_init2(w->got, PREC);
    w->worst = -INFINITY;
    w->worst_at = (dd){0, 0};
    w->worst_relative = -INFINITY;
    w->worst_relative_at = (dd){0, 0};
    w->points = 0;
    w->failures = 0;
}

static void sweep_end(sweep *w)
{
    printf("dd_log %-28s %8zu sums, max absolute error 2^%.2f (at %a + %a)\n", w->name, w->points, w->worst,
           w->worst_at.hi, w->worst_at.lo);
    if (w->worst_relative > -INFINITY)
        printf("dd_log %-28s near 1: max error 2^%.2f |log s| + 2^-105 (at %a + %a)\n", w->name, w->worst_relative,
               w->worst_relative_at.hi, w->worst_relative_at.lo);
    mpfr_clear(w->exact);
    mpfr_clear(w->got);
    assert_int_equal(w->failures, 0);
    assert_true(w->worst_relative <= NEAR_ONE_RELATIVE_BOUND_LOG2);
    assert_true(w->worst <= DD_LOG_BOUND_LOG2);
}

static void report_failure(sweep *w, dd s, dd l, const char *why)
{
    if (w->failures++ < 5)
        printf("  dd_log(%a + %a) = %a + %a: %s\n", s.hi, s.lo, l.hi, l.lo, why);
}

/* One sum s = hi + lo, normalised (|lo| <= ulp(hi) / 2). */
static void check_sum(sweep *w, dd s)
{
    const dd l = dd_log(s);
    w->points++;
    if (!isfinite(l.hi) || !isfinite(l.lo)) {
        report_failure(w, s, l, "not finite");
        return;
    }
    if (l.hi + l.lo != l.hi)
        report_failure(w, s, l, "not normalised");
    if (s.hi >= 1 && (l.hi < 0 || (l.hi == 0 && l.lo < 0)))
        report_failure(w, s, l, "negative for s.hi >= 1");
    mpfr_set_d(w->exact, s.hi, MPFR_RNDN);
    mpfr_add_d(w->exact, w->exact, s.lo, MPFR_RNDN);
    mpfr_log(w->exact, w->exact, MPFR_RNDN);
    mpfr_set_d(w->got, l.hi, MPFR_RNDN);
    mpfr_add_d(w->got, w->got, l.lo, MPFR_RNDN);
    mpfr_sub(w->got, w->got, w->exact, MPFR_RNDN);
    if (mpfr_zero_p(w->got))
        return;
    mpfr_abs(w->got, w->got, MPFR_RNDN);
    const double error = log2(mpfr_get_d(w->got, MPFR_RNDN));
    if (error > w->worst) {
        w->worst = error;
        w->worst_at = s;
    }
    if (s.hi >= NEAR_ONE_LOW && s.hi < NEAR_ONE_HIGH && !mpfr_zero_p(w->exact)) {
        /* (error - 2^-105) / |log s| */
        mpfr_sub_d(w->got, w->got, 0x1p-105, MPFR_RNDN);
        mpfr_div(w->got, w->got, w->exact, MPFR_RNDN);
        const double relative = mpfr_sgn(w->got) != 0 ? log2(fabs(mpfr_get_d(w->got, MPFR_RNDN))) : -INFINITY;
        if (mpfr_sgn(w->got) * mpfr_sgn(w->exact) > 0 && relative > w->worst_relative) {
            w->worst_relative = relative;
            w->worst_relative_at = s;
        }
    }
}

/* ulp(x) for a finite x > 0 (also DBL_MAX, whose next double is inf). */
static double ulp_of(double x)
{
    return x < DBL_MIN ? 0x1p-1074 : ldexp(1, ilogb(x) - 52);
}

/* hi with low parts: 0, the two largest a normalised sum has (just inside
 * +-ulp(hi) / 2), and `randoms` drawn in between. For hi = 1 only
 * non-negative ones: a sum below 1 gives 0 on purpose (checked apart). */
static void check_with_low_parts(sweep *w, test_rng *rng, double hi, int randoms)
{
    if (!(hi > 0) || !isfinite(hi))
        return;
    const double half = ulp_of(hi) / 2 * (1 - 0x1p-50);
    check_sum(w, (dd){hi, 0});
    const double lows[2] = {half, -half};
    for (int j = 0; j < 2; j++)
        if (!(hi == 1 && lows[j] < 0))
            check_sum(w, fast_two_sum(hi, lows[j]));
    for (int j = 0; j < randoms; j++) {
        double lo = half * rng_range(rng, -1.0, 1.0);
        if (hi == 1)
            lo = fabs(lo);
        check_sum(w, fast_two_sum(hi, lo));
    }
}

/* ---- the table ---- */

/* Where log_table's i-th subinterval starts (i = 256: where the last
 * ends). */
static double subinterval_start(int i)
{
    return i < 160 ? 0.6875 + i * 0x1p-9 : 1 + (i - 160) * 0x1p-8;
}

static void test_log_table_against_mpfr(void **state)
{
    (void)state;
    mpfr_t z, r, logc, difference, limit;
    mpfr_inits2(PREC, z, r, logc, difference, limit, (mpfr_ptr)0);
    for (int i = 0; i < 256; i++) {
        /* The subinterval: 160 of width 2^-9 from 0.6875, then 96 of 2^-8
         * from 1. */
        const double low = subinterval_start(i), high = subinterval_start(i + 1);
        const double invc = log_table[i][0], logc_hi = log_table[i][1], logc_lo = log_table[i][2];
        /* |z invc - 1| <= 2^-8 - 2^-53 at the first and the last double of
         * the subinterval (and so in between): rh = fl(z invc) - 1 is at
         * most 2^-8. */
        const double ends[2] = {low, nextafter(high, 0)};
        for (int j = 0; j < 2; j++) {
            mpfr_set_d(z, ends[j], MPFR_RNDN);
            mpfr_mul_d(r, z, invc, MPFR_RNDN);
            mpfr_sub_ui(r, r, 1, MPFR_RNDN);
            mpfr_abs(r, r, MPFR_RNDN);
            if (!(mpfr_cmp_d(r, 0x1p-8 - 0x1p-53) <= 0))
                printf("  log_table[%d]: |%a * invc - 1| = %a\n", i, ends[j], mpfr_get_d(r, MPFR_RNDN));
            assert_true(mpfr_cmp_d(r, 0x1p-8 - 0x1p-53) <= 0);
        }
        /* Next to 1, no reduction: the log of a sum near 1 is then a series
         * in s - 1, exact relative to its value. */
        if (low == 1 || high == 1)
            assert_true(invc == 1 && logc_hi == 0 && logc_lo == 0);
        /* log(1 / invc) = logc_hi + logc_lo within 2^-106 of its size,
         * normalised. */
        mpfr_set_d(logc, invc, MPFR_RNDN);
        mpfr_log(logc, logc, MPFR_RNDN);
        mpfr_neg(logc, logc, MPFR_RNDN);
        assert_true(logc_hi == mpfr_get_d(logc, MPFR_RNDN));
        assert_true(logc_hi + logc_lo == logc_hi);
        mpfr_set_d(difference, logc_hi, MPFR_RNDN);
        mpfr_add_d(difference, difference, logc_lo, MPFR_RNDN);
        mpfr_sub(difference, difference, logc, MPFR_RNDN);
        mpfr_abs(difference, difference, MPFR_RNDN);
        mpfr_abs(limit, logc, MPFR_RNDN);
        mpfr_mul_2si(limit, limit, -106, MPFR_RNDN);
        assert_true(mpfr_cmp(difference, limit) <= 0);
    }
    /* ln 2 = LOG_LN2_HI + LOG_LN2_LO within 2^-97, LOG_LN2_HI of 42
     * significant bits (k * LOG_LN2_HI exact for |k| < 2^11). */
    const double scaled = LOG_LN2_HI * 0x1p42;
    assert_true(scaled == floor(scaled));
    mpfr_const_log2(logc, MPFR_RNDN);
    mpfr_sub_d(difference, logc, LOG_LN2_HI, MPFR_RNDN);
    mpfr_sub_d(difference, difference, LOG_LN2_LO, MPFR_RNDN);
    mpfr_abs(difference, difference, MPFR_RNDN);
    assert_true(mpfr_cmp_d(difference, 0x1p-97) <= 0);
    mpfr_clears(z, r, logc, difference, limit, (mpfr_ptr)0);
}

/* ---- the sums the lines pass: 1 <= s < 2^64 ---- */

static void test_sums_just_above_one(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 1901);
    sweep w;
    sweep_begin(&w, "just above 1");
    /* 1 + j ulp: a row whose other elements are 36 or more below its
     * maximum. */
    for (int j = 1; j <= 4096; j++)
        check_with_low_parts(&w, &rng, 1 + j * 0x1p-52, 1);
    /* 1 + 2^-e (1 + u), e = 1..52: every scale of the other elements. */
    for (int e = 1; e <= 52; e++)
        for (int j = 0; j < 200; j++)
            check_with_low_parts(&w, &rng, 1 + ldexp(1 + rng_uniform(&rng), -e), 1);
    sweep_end(&w);
}

/* Every subinterval of the table, at its ends, next to them and inside,
 * in every binade from 1 to 2^64 (and the one below 1). */
static void test_sums_every_subinterval(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 1902);
    sweep w;
    sweep_begin(&w, "every table subinterval");
    for (int k = -1; k <= 64; k++)
        for (int i = 0; i < 256; i++) {
            const double low = subinterval_start(i), high = subinterval_start(i + 1);
            const double points[6] = {low,
                                      nextafter(low, 2),
                                      nextafter(high, 0),
                                      (low + high) / 2,
                                      low + (high - low) * rng_uniform(&rng),
                                      low + (high - low) * rng_uniform(&rng)};
            for (int j = 0; j < 6; j++)
                check_with_low_parts(&w, &rng, ldexp(points[j], k), 1);
        }
    sweep_end(&w);
}

static void test_sums_powers_of_two_and_counts(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 1903);
    sweep w;
    sweep_begin(&w, "powers of two, counts");
    for (int k = 0; k <= 64; k++) {
        const double p = ldexp(1, k);
        const double around[5] = {p, nextafter(p, 0), nextafter(nextafter(p, 0), 0), nextafter(p, INFINITY),
                                  nextafter(nextafter(p, INFINITY), INFINITY)};
        for (int j = 0; j < 5; j++)
            if (around[j] >= 1)
                check_with_low_parts(&w, &rng, around[j], 4);
    }
    /* Counts (the share of each of `count` infinite elements). */
    for (int count = 1; count <= 65536; count++)
        check_sum(&w, (dd){(double)count, 0});
    for (int j = 0; j < 20000; j++)
        check_sum(&w, (dd){floor(exp2(rng_range(&rng, 16, 53))), 0});
    sweep_end(&w);
}

/* Sums log-uniform in [1, 2^64): past the largest a row can have (the SIMD
 * kernels' exps are below 4, so 4 n < 2^64 for any n that fits in
 * memory). */
static void test_sums_log_uniform(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 1904);
    sweep w;
    sweep_begin(&w, "log-uniform in [1, 2^64)");
    for (int j = 0; j < 100000; j++)
        check_with_low_parts(&w, &rng, exp2(rng_range(&rng, 0, 64)), 1);
    sweep_end(&w);
}

/* ---- the rest of the domain ---- */

static void test_beyond_the_sums(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 1905);
    sweep w;
    sweep_begin(&w, "(0, 1) and [2^64, DBL_MAX]");
    /* Every binade of double, its power of two and neighbours, and points
     * within: the rare path (below 2^-1000, from 2^1000 up) and the edges
     * of the direct one. */
    for (int k = -1074; k <= 1023; k++) {
        const double p = ldexp(1, k);
        check_with_low_parts(&w, &rng, p, 1);
        check_with_low_parts(&w, &rng, nextafter(p, 0), 1);
        check_with_low_parts(&w, &rng, nextafter(p, INFINITY), 1);
        if (k >= -1022)
            for (int j = 0; j < 4; j++)
                check_with_low_parts(&w, &rng, p * (1 + rng_uniform(&rng)), 1);
    }
    const double extremes[] = {1e300,     1e308,       DBL_MAX, nextafter(DBL_MAX, 0), DBL_MIN, nextafter(DBL_MIN, 0),
                               0x1p-1074, 1 - 0x1p-53, 0.6875,  nextafter(0.6875, 0),  1.375,   nextafter(1.375, 0)};
    for (size_t j = 0; j < sizeof extremes / sizeof extremes[0]; j++)
        check_with_low_parts(&w, &rng, extremes[j], 8);
    for (int j = 0; j < 20000; j++) {
        check_with_low_parts(&w, &rng, exp2(rng_range(&rng, -1074, 0)), 0);
        check_with_low_parts(&w, &rng, exp2(rng_range(&rng, 64, 1024)), 0);
    }
    sweep_end(&w);
}

/* ---- exact and special cases ---- */

static void test_exact_and_special_cases(void **state)
{
    (void)state;
    dd l = dd_log((dd){1.0, 0.0});
    assert_true(l.hi == 0 && !signbit(l.hi) && l.lo == 0);
    l = dd_log((dd){1.0, -0.0});
    assert_true(l.hi == 0 && !signbit(l.hi) && l.lo == 0);
    /* s.hi = 1: log(1 + lo) = lo within lo^2 / 2 (2^-107). */
    l = dd_log((dd){1.0, 0x1p-60});
    assert_true(l.hi == 0x1p-60 && l.lo == 0);
    /* A sum just below 1 by rounding: 0, not a negative log-sum. */
    l = dd_log((dd){1.0, -0x1p-60});
    assert_true(l.hi == 0 && l.lo == 0);
    l = dd_log((dd){0.0, 0.0});
    assert_true(l.hi == -INFINITY);
    l = dd_log((dd){INFINITY, 0.0});
    assert_true(l.hi == INFINITY);
    l = dd_log((dd){NAN, 0.0});
    assert_true(isnan(l.hi));
    l = dd_log((dd){-2.0, 0.0});
    assert_true(isnan(l.hi));
    /* A NaN low part (a sum that met a NaN) stays NaN. */
    l = dd_log((dd){3.0, NAN});
    assert_true(isnan(l.hi));
    l = dd_log((dd){1.0, NAN});
    assert_true(isnan(l.hi));
    /* The count wrapper. */
    mpfr_t exact;
    mpfr_init2(exact, PREC);
    mpfr_set_d(exact, 10.0, MPFR_RNDN);
    mpfr_log(exact, exact, MPFR_RNDN);
    assert_true(dd_log_double(10.0) == mpfr_get_d(exact, MPFR_RNDN));
    mpfr_clear(exact);
}

int main(void)
{
#if defined(DD_LOG_TEST_FMA)
    /* This build's two_prod is fma(): only where the CPU has it. */
    if (!__builtin_cpu_supports("fma")) {
        printf("test_dd_log: this CPU has no FMA, skipped\n");
        return 77;
    }
    printf("test_dd_log: two_prod by fma()\n");
#if !defined(__FMA__)
#error "DD_LOG_TEST_FMA wants -mfma"
#endif
#else
    printf("test_dd_log: two_prod by %s\n",
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
           "fma()"
#else
           "Dekker's splitting"
#endif
    );
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_table_against_mpfr),  cmocka_unit_test(test_sums_just_above_one),
        cmocka_unit_test(test_sums_every_subinterval),  cmocka_unit_test(test_sums_powers_of_two_and_counts),
        cmocka_unit_test(test_sums_log_uniform),        cmocka_unit_test(test_beyond_the_sums),
        cmocka_unit_test(test_exact_and_special_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
