/*
 * checks.c -- one call of the library followed by a full comparison with the
 * MPFR reference, for each kind of operation. Shared by the test programs.
 */
#include "checks.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "reference.h"
#include "testutil.h"

const char *fwd_name(int log)
{
    return log ? "log_softmax" : "softmax";
}

size_t check_forward(softmax_dtype dt, int log, const void *x, size_t rows, size_t cols, double scale,
                     const char *label, err_stats *stats)
{
    size_t n = rows * cols, failures = 0;
    void *y = buf_alloc(dt, n);
    fill_sentinel(y, n * dtype_size(dt));
    char what[160];
    snprintf(what, sizeof what, "%s_%s %s (rows=%zu cols=%zu scale=%g)", fwd_name(log), dtype_name(dt), label, rows,
             cols, scale);
    int rc = call_forward(dt, log, x, y, rows, cols, scale);
    if (rc != SOFTMAX_OK) {
        fprintf(stderr, "  FAIL %s: status %d (%s)\n", what, rc, softmax_strerror(rc));
        free(y);
        return 1;
    }
    double s = scale_as(dt, scale);
    ref_vec ref;
    ref_vec_init(&ref, cols);
    err_stats st;
    err_stats_init(&st);
    for (size_t r = 0; r < rows; r++) {
        ref_line xl = ref_line_make(dt, buf_cat(dt, x, r * cols), cols, 1);
        ref_line yl = ref_line_make(dt, buf_cat(dt, y, r * cols), cols, 1);
        ref_softmax(&ref, xl, s, log);
        failures += log ? check_log_softmax_line(&ref, yl, contract_ulp_bound(dt), &st, what)
                        : check_softmax_line(&ref, yl, contract_ulp_bound(dt), &st, what);
        int any_nan = 0;
        double ref_sum = 0.0;
        for (size_t i = 0; i < cols; i++) {
            double yi = ref_line_get(yl, i);
            mpfr_srcptr ri = ref_at(&ref, i);
            any_nan |= mpfr_nan_p(ri);
            if (!log && mpfr_zero_p(ri) && yi != 0.0) {
                fprintf(stderr, "  FAIL %s: row %zu [%zu] = %a, exactly 0 expected\n", what, r, i, yi);
                failures++;
            }
            if (!log)
                ref_sum += mpfr_get_d(ri, MPFR_RNDN);
        }
        if (!log && !any_nan) {
            double sum = line_sum(yl);
            double expect = ref_sum > 0.5 ? 1.0 : 0.0;
            double tol = expect * contract_ulp_bound(dt) * dtype_eps(dt) + (double)cols * 2 * dtype_min_normal(dt);
            if (!(fabs(sum - expect) <= tol)) {
                fprintf(stderr, "  FAIL %s: row %zu sums to %.17g, expected %g\n", what, r, sum, expect);
                failures++;
            }
        }
    }
    ref_vec_free(&ref);
    free(y);
    if (stats)
        err_stats_merge(stats, &st);
    return failures;
}

size_t check_grad(softmax_op op, softmax_dtype dt, const void *a, const void *b, size_t rows, size_t cols, double scale,
                  const char *label, err_stats *stats)
{
    size_t n = rows * cols, failures = 0;
    void *out = buf_alloc(dt, n);
    fill_sentinel(out, n * dtype_size(dt));
    char what[160];
    snprintf(what, sizeof what, "%s_%s %s (rows=%zu cols=%zu scale=%g)", op_name(op), dtype_name(dt), label, rows, cols,
             scale);
    int rc = call_grad(op, dt, a, b, out, rows, cols, scale);
    if (rc != SOFTMAX_OK) {
        fprintf(stderr, "  FAIL %s: status %d (%s)\n", what, rc, softmax_strerror(rc));
        free(out);
        return 1;
    }
    double s = scale_as(dt, scale);
    ref_vec ref;
    ref_vec_init(&ref, cols);
    double *local = malloc(cols * sizeof(double)), *global = malloc(cols * sizeof(double));
    double *tol = malloc(cols * sizeof(double));
    err_stats st;
    err_stats_init(&st);
    for (size_t r = 0; r < rows; r++) {
        ref_line al = ref_line_make(dt, buf_cat(dt, a, r * cols), cols, 1);
        ref_line bl = ref_line_make(dt, buf_cat(dt, b, r * cols), cols, 1);
        ref_line ol = ref_line_make(dt, buf_cat(dt, out, r * cols), cols, 1);
        ref_grad(op, &ref, al, bl, s, local, global);
        grad_tolerance(tol, local, global, cols, dt, s);
        failures += check_tolerance_line(&ref, tol, ol, &st, what);
        for (size_t i = 0; i < cols; i++) {
            if (mpfr_zero_p(ref_at(&ref, i)) && ref_line_get(ol, i) != 0.0) {
                fprintf(stderr, "  FAIL %s: row %zu [%zu] = %a, exactly 0 expected\n", what, r, i, ref_line_get(ol, i));
                failures++;
            }
        }
    }
    free(local);
    free(global);
    free(tol);
    ref_vec_free(&ref);
    free(out);
    if (stats)
        err_stats_merge(stats, &st);
    return failures;
}

size_t check_jacobian(softmax_dtype dt, int log, const void *y, size_t n, double scale, const char *label,
                      err_stats *stats, void *jacobian_out)
{
    size_t failures = 0;
    void *jac = jacobian_out ? jacobian_out : buf_alloc(dt, n * n);
    fill_sentinel(jac, n * n * dtype_size(dt));
    char what[160];
    snprintf(what, sizeof what, "%s_jacobian_%s %s (n=%zu scale=%g)", fwd_name(log), dtype_name(dt), label, n, scale);
    int rc = call_jacobian(dt, log, y, n, scale, jac);
    if (rc != SOFTMAX_OK) {
        fprintf(stderr, "  FAIL %s: status %d\n", what, rc);
        if (!jacobian_out)
            free(jac);
        return 1;
    }
    double s = scale_as(dt, scale);
    ref_vec ref;
    ref_vec_init(&ref, n * n);
    double *mag = malloc(n * n * sizeof(double)), *tol = malloc(n * n * sizeof(double));
    ref_line yl = ref_line_make(dt, y, n, 1);
    if (log)
        ref_log_softmax_jacobian(&ref, yl, s, mag);
    else
        ref_softmax_jacobian(&ref, yl, s, mag);
    double u = ldexp(1.0, -dtype_precision(dt));
    for (size_t k = 0; k < n * n; k++)
        tol[k] = JACOBIAN_C * u * mag[k] + GRAD_C_FLOOR * dtype_true_min(dt) * fmax(1.0, fabs(s));
    err_stats st;
    err_stats_init(&st);
    failures += check_tolerance_line(&ref, tol, ref_line_make(dt, jac, n * n, 1), &st, what);
    for (size_t k = 0; k < n * n; k++)
        if (mpfr_zero_p(ref_at(&ref, k)) && buf_get(dt, jac, k) != 0.0)
            failures++, fprintf(stderr, "  FAIL %s: [%zu] = %a, exactly 0 expected\n", what, k, buf_get(dt, jac, k));
    free(mag);
    free(tol);
    ref_vec_free(&ref);
    if (!jacobian_out)
        free(jac);
    if (stats)
        err_stats_merge(stats, &st);
    return failures;
}

void *reference_outputs(softmax_dtype dt, int log, size_t rows, size_t cols, double sigma, double p_mask, test_rng *rng)
{
    void *x = buf_alloc(dt, cols), *y = buf_alloc(dt, rows * cols);
    ref_vec ref;
    ref_vec_init(&ref, cols);
    for (size_t r = 0; r < rows; r++) {
        size_t kept = 0;
        for (size_t i = 0; i < cols; i++) {
            int masked = rng_uniform(rng) < p_mask;
            buf_set(dt, x, i, masked ? -INFINITY : sigma * rng_normal(rng));
            kept += !masked;
        }
        if (kept == 0)
            buf_set(dt, x, rng_below(rng, cols), sigma * rng_normal(rng));
        ref_softmax(&ref, ref_line_make(dt, x, cols, 1), 1.0, log);
        ref_store(&ref, cols, dt, buf_at(dt, y, r * cols));
    }
    ref_vec_free(&ref);
    free(x);
    return y;
}
