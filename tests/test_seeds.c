/*
 * test_seeds.c -- the worked numbers of the softmax chapter (seeds/003):
 * the examples a reader checks first, in f32 and f64, each both against the
 * rounded figures quoted by the text and against the MPFR reference at the
 * contract's ulp bound.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

/* Runs softmax (log = 0) or log-softmax over rows x cols values of x (given
 * as doubles, stored in dt), checks every row against MPFR and returns the
 * outputs as doubles in y_out. */
static void run_checked(softmax_dtype dt, int log, const double *x_values, size_t rows, size_t cols, double scale,
                        double *y_out)
{
    size_t n = rows * cols;
    void *x = buf_alloc(dt, n), *y = buf_alloc(dt, n);
    for (size_t i = 0; i < n; i++)
        buf_set(dt, x, i, x_values[i]);
    int rc = call_forward(dt, log, x, y, rows, cols, scale);
    assert_int_equal(rc, SOFTMAX_OK);
    err_stats st;
    err_stats_init(&st);
    char what[96];
    snprintf(what, sizeof what, "%s_%s scale=%g", log ? "log_softmax" : "softmax", dtype_name(dt), scale);
    size_t failures = check_forward_rows(dt, log, x, y, rows, cols, scale_as(dt, scale), &st, what);
    for (size_t i = 0; i < n; i++)
        y_out[i] = buf_get(dt, y, i);
    free(x);
    free(y);
    if (failures)
        fail_msg("%s: %zu outputs beyond %.0f ulp of the MPFR reference", what, failures, contract_ulp_bound(dt));
}

/* |got - quoted| <= tol for each of n values quoted by the text. */
static void assert_near(const char *what, const double *got, const double *quoted, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - quoted[i]) <= tol))
            fail_msg("%s[%zu] = %.9g, the text says %.9g (tolerance %g)", what, i, got[i], quoted[i], tol);
}

/* |got - quoted| <= rel * |quoted| */
static void assert_rel_near(const char *what, const double *got, const double *quoted, size_t n, double rel)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - quoted[i]) <= rel * fabs(quoted[i])))
            fail_msg("%s[%zu] = %.9g, the text says %.9g (relative tolerance %g)", what, i, got[i], quoted[i], rel);
}

static void test_one_two_three_at_three_temperatures(void **state)
{
    (void)state;
    static const double x[3] = {1, 2, 3};
    static const struct {
        double scale;
        double expect[3];
    } cases[] = {
        {1.0, {0.09003057317038046, 0.24472847105479764, 0.6652409557748218}},
        {0.5, {0.1863237232258476, 0.3071958857184984, 0.506480391055654}},
        {2.0, {0.015876239976466765, 0.11731042782619838, 0.8668133321973349}},
    };
    for (size_t d = 0; d < 2; d++) {
        for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
            double y[3], logy[3];
            run_checked(test_dtypes[d], 0, x, 1, 3, cases[c].scale, y);
            assert_rel_near("softmax([1,2,3])", y, cases[c].expect, 3, 4 * dtype_eps(test_dtypes[d]));
            run_checked(test_dtypes[d], 1, x, 1, 3, cases[c].scale, logy);
            double expect_log[3];
            for (int i = 0; i < 3; i++)
                expect_log[i] = log(cases[c].expect[i]);
            assert_near("log_softmax([1,2,3])", logy, expect_log, 3, 8 * dtype_eps(test_dtypes[d]) * 4.0);
            /* Lower temperature (larger scale) sharpens: the top output grows. */
            assert_true(y[0] < y[1] && y[1] < y[2]);
        }
    }
}

static void test_large_inputs_and_their_hundredth(void **state)
{
    (void)state;
    static const double large[3] = {10, 20, 30};
    static const double quoted_large[3] = {2.0611e-09, 4.5398e-05, 9.9995e-01};
    static const double quoted_small[3] = {0.3006, 0.3322, 0.3672};
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        double y_large[3], y_data[3], y_scale[3], small[3];
        run_checked(dt, 0, large, 1, 3, 1.0, y_large);
        assert_rel_near("softmax([10,20,30])", y_large, quoted_large, 3, 0.5e-4);

        /* c = 0.01 applied to the data, as the text does (in the data type) ... */
        double c = scale_as(dt, 0.01);
        for (int i = 0; i < 3; i++)
            small[i] = dtype_round(dt, c * large[i]);
        run_checked(dt, 0, small, 1, 3, 1.0, y_data);
        assert_near("softmax(0.01 * [10,20,30])", y_data, quoted_small, 3, 0.5e-4);
        /* ... and as the inverse temperature. */
        run_checked(dt, 0, large, 1, 3, 0.01, y_scale);
        assert_near("softmax([10,20,30], scale=0.01)", y_scale, quoted_small, 3, 0.5e-4);
        /* Not invariant under scaling: the top weight drops from ~1 to ~0.37. */
        assert_true(y_large[2] > 0.9999 && y_scale[2] < 0.37);
        /* Both routes describe the same distribution up to the rounding of
         * c * x: a few ulp apart at most. */
        for (int i = 0; i < 3; i++) {
            double diff = fabs(y_data[i] - y_scale[i]) / ulp_p(y_scale[i], dtype_precision(dt));
            if (diff > 2 * contract_ulp_bound(dt) + 1)
                fail_msg("%s: data-scaled and scale=0.01 outputs differ by %.2f ulp at [%d]", dtype_name(dt), diff, i);
        }
    }
}

static void test_one_two_eight_is_almost_one_hot(void **state)
{
    (void)state;
    static const double x[3] = {1, 2, 8};
    static const double quoted[3] = {0.001, 0.002, 0.997};
    for (size_t d = 0; d < 2; d++) {
        double y[3];
        run_checked(test_dtypes[d], 0, x, 1, 3, 1.0, y);
        assert_near("softmax([1,2,8])", y, quoted, 3, 0.5e-3);
    }
}

static void test_order_of_two_one_three_five_four(void **state)
{
    (void)state;
    static const double x[5] = {2, 1, 3, 5, 4};
    static const double scales[] = {1.0, 0.5, 2.0, 0.01};
    for (size_t d = 0; d < 2; d++) {
        for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
            double y[5], logy[5];
            run_checked(test_dtypes[d], 0, x, 1, 5, scales[s], y);
            run_checked(test_dtypes[d], 1, x, 1, 5, scales[s], logy);
            for (int i = 0; i < 5; i++) {
                for (int j = 0; j < 5; j++) {
                    if (x[i] > x[j] && !(y[i] > y[j] && logy[i] > logy[j]))
                        fail_msg("%s scale=%g: x[%d] > x[%d] but y = %.9g, %.9g (log %.9g, %.9g)",
                                 dtype_name(test_dtypes[d]), scales[s], i, j, y[i], y[j], logy[i], logy[j]);
                }
            }
            /* The arg max is kept: index 3 (the 5). */
            assert_true(y[3] > y[4] && y[4] > y[2] && y[2] > y[0] && y[0] > y[1]);
        }
    }
}

static void test_translation_invariance(void **state)
{
    (void)state;
    /* Dyadic values, so that x + c is exact in both formats for every c
     * below: the exact results are then identical. */
    static const double x[6] = {0.5, 1.25, -2.0, 3.75, 0.0, 1.25};
    static const double shifts[] = {1.0, 10.0, -50.0, 1000.0, -4096.0, 65536.0, 1048576.0};
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (int log = 0; log <= 1; log++) {
            double base[6];
            run_checked(dt, log, x, 1, 6, 1.0, base);
            for (size_t k = 0; k < ARRAY_LEN(shifts); k++) {
                double shifted_x[6], shifted[6];
                for (int i = 0; i < 6; i++) {
                    shifted_x[i] = x[i] + shifts[k];
                    assert_true(dtype_round(dt, shifted_x[i]) == shifted_x[i]);
                }
                /* run_checked compares with the reference of the shifted
                 * row, which equals that of x: softmax(x + c) == softmax(x)
                 * within the contract bound. Compare the two outputs too. */
                run_checked(dt, log, shifted_x, 1, 6, 1.0, shifted);
                for (int i = 0; i < 6; i++) {
                    double unit = ulp_p(log ? fmax(fabs(base[i]), 1.0) : base[i], dtype_precision(dt));
                    double diff = fabs(shifted[i] - base[i]) / unit;
                    if (diff > 2 * contract_ulp_bound(dt))
                        fail_msg("%s %s: shift %g moves output %d by %.2f ulp (%.17g vs %.17g)", dtype_name(dt),
                                 log ? "log_softmax" : "softmax", shifts[k], i, diff, shifted[i], base[i]);
                }
                /* Equal inputs give equal outputs, whatever the shift. */
                assert_true(shifted[1] == shifted[5]);
            }
        }
    }
}

static void test_batched_rows_at_scale_two(void **state)
{
    (void)state;
    static const double x[6] = {1, 2, 3, 1, 3, 2};
    static const double expect[6] = {0.015876239976466765, 0.11731042782619838, 0.8668133321973349,
                                     0.015876239976466765, 0.8668133321973349,  0.11731042782619838};
    for (size_t d = 0; d < 2; d++) {
        double y[6];
        run_checked(test_dtypes[d], 0, x, 2, 3, 2.0, y);
        assert_rel_near("softmax([[1,2,3],[1,3,2]], 2)", y, expect, 6, 4 * dtype_eps(test_dtypes[d]));
        /* Each row sums to 1. */
        for (int r = 0; r < 2; r++)
            assert_true(fabs(y[3 * r] + y[3 * r + 1] + y[3 * r + 2] - 1.0) <= 8 * dtype_eps(test_dtypes[d]));
    }
}

/* The oracle itself, on numbers worked by hand (or by a second, decimal
 * evaluation): a wrong reference would otherwise fail every test, or none. */
static void test_the_reference_on_hand_worked_numbers(void **state)
{
    (void)state;
    const double x[3] = {1, 2, 3};
    const double expect[3] = {0.09003057317038046, 0.24472847105479764, 0.6652409557748218};
    ref_vec r;
    ref_vec_init(&r, 4);
    ref_softmax(&r, ref_line_make(SOFTMAX_DTYPE_F64, x, 3, 1), 1.0, 0);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(mpfr_get_d(ref_at(&r, i), MPFR_RNDN) - expect[i]) <= 2e-16 * expect[i]);
    ref_softmax(&r, ref_line_make(SOFTMAX_DTYPE_F64, x, 3, 1), 1.0, 1);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(mpfr_get_d(ref_at(&r, i), MPFR_RNDN) - log(expect[i])) <= 1e-15);
    /* strided line: every other element of {1, 9, 2, 9, 3} is {1, 2, 3} */
    const double strided[5] = {1, 9, 2, 9, 3};
    ref_softmax(&r, ref_line_make(SOFTMAX_DTYPE_F64, strided, 3, 2), 1.0, 0);
    assert_true(fabs(mpfr_get_d(ref_at(&r, 2), MPFR_RNDN) - expect[2]) <= 2e-16);
    /* special rules: scale 0 -> 1/3 over the unmasked; -inf scale -> arg min */
    const double masked[4] = {5, -INFINITY, 7, 1e300};
    ref_softmax(&r, ref_line_make(SOFTMAX_DTYPE_F64, masked, 4, 1), 0.0, 0);
    assert_true(mpfr_get_d(ref_at(&r, 0), MPFR_RNDN) == 1.0 / 3.0 && mpfr_zero_p(ref_at(&r, 1)));
    ref_softmax(&r, ref_line_make(SOFTMAX_DTYPE_F64, masked, 4, 1), -INFINITY, 0);
    assert_true(mpfr_zero_p(ref_at(&r, 0)) && mpfr_cmp_ui(ref_at(&r, 1), 1) == 0);
    /* backward: y = {1/4, 3/4}, dy = {1, 0}, scale 2: <dy, y> = 1/4,
     * dx = 2 * y * (dy - 1/4) = {3/8, -3/8} */
    const double y[2] = {0.25, 0.75}, dy[2] = {1, 0};
    ref_softmax_backward(&r, ref_line_make(SOFTMAX_DTYPE_F64, y, 2, 1), ref_line_make(SOFTMAX_DTYPE_F64, dy, 2, 1), 2.0,
                         NULL, NULL);
    assert_true(mpfr_get_d(ref_at(&r, 0), MPFR_RNDN) == 0.375 && mpfr_get_d(ref_at(&r, 1), MPFR_RNDN) == -0.375);
    /* log backward: logy = {-inf, 0}, dy = {1, 2}: dx = dy - {0, 1} * 3 = {1, -1} */
    const double logy[2] = {-INFINITY, 0}, dy2[2] = {1, 2};
    ref_log_softmax_backward(&r, ref_line_make(SOFTMAX_DTYPE_F64, logy, 2, 1),
                             ref_line_make(SOFTMAX_DTYPE_F64, dy2, 2, 1), 1.0, NULL, NULL);
    assert_true(mpfr_get_d(ref_at(&r, 0), MPFR_RNDN) == 1.0 && mpfr_get_d(ref_at(&r, 1), MPFR_RNDN) == -1.0);
    /* log JVP: logy = {0, -inf}, v = {3, 5}, scale -1: -(v - 3) = {0, -2} */
    const double logy2[2] = {0, -INFINITY}, v[2] = {3, 5};
    ref_log_softmax_jvp(&r, ref_line_make(SOFTMAX_DTYPE_F64, logy2, 2, 1), ref_line_make(SOFTMAX_DTYPE_F64, v, 2, 1),
                        -1.0, NULL, NULL);
    assert_true(mpfr_zero_p(ref_at(&r, 0)) && mpfr_get_d(ref_at(&r, 1), MPFR_RNDN) == -2.0);
    ref_vec_free(&r);
    /* ulp: 2^-23 at 1 in binary32, 2^-24 just below; 2^-52 at 1 in binary64 */
    assert_true(ulp_p(1.0, 24) == 0x1p-23 && ulp_p(0.75, 24) == 0x1p-24 && ulp_p(-1.5, 53) == 0x1p-52);
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_reference_on_hand_worked_numbers),
        cmocka_unit_test(test_one_two_three_at_three_temperatures),
        cmocka_unit_test(test_large_inputs_and_their_hundredth),
        cmocka_unit_test(test_one_two_eight_is_almost_one_hot),
        cmocka_unit_test(test_order_of_two_one_three_five_four),
        cmocka_unit_test(test_translation_invariance),
        cmocka_unit_test(test_batched_rows_at_scale_two),
    };
    return cmocka_run_group_tests_name("seeds", tests, NULL, NULL);
}
