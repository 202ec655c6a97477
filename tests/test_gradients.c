/*
 * test_gradients.c -- softmax backward, log-softmax backward and log-softmax
 * JVP, and the explicit Jacobians:
 *
 *  - against MPFR evaluations of the header's formulas (tolerances of
 *    reference.h: a few roundings of each term plus a pairwise-sum allowance);
 *  - against central finite differences of the library's own f64 forward
 *    functions (a consistency check: it catches a wrong formula, a missing
 *    scale, J used for J^T);
 *  - the Jacobian entries against MPFR, and J^T dy, J v computed in long
 *    double from the library's Jacobian against the VJP / JVP functions;
 *  - in-place calls (dx == y, dx == dy) give the bits of out-of-place ones.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "reference.h"
#include "testutil.h"

static const softmax_op grad_ops[] = {SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
                                      SOFTMAX_OP_LOG_SOFTMAX_JVP};
static int takes_log(softmax_op op)
{
    return op != SOFTMAX_OP_SOFTMAX_BACKWARD;
}

/* upstream gradients / tangents: 0 normal, 1 all positive, 2 wide range */
static void *make_upstream(softmax_dtype dt, size_t n, int kind, test_rng *rng)
{
    void *b = buf_alloc(dt, n);
    for (size_t i = 0; i < n; i++) {
        double v = kind == 0   ? rng_normal(rng)
                   : kind == 1 ? rng_range(rng, 0.5, 1.5)
                               : rng_normal(rng) * pow(10.0, rng_range(rng, -3.0, 3.0));
        buf_set(dt, b, i, v);
    }
    return b;
}

static void test_gradients_against_mpfr(void **state)
{
    (void)state;
    static const double scales[] = {1.0, 0.5, 7.3, -1.0, -3.5, 100.0, 0.01, 1e-30};
    size_t lengths[33 + 8];
    size_t count = 0;
    for (size_t n = 1; n <= 33; n++)
        lengths[count++] = n;
    const size_t more[] = {63, 64, 65, 127, 128, 129, 1000, 4097};
    for (size_t k = 0; k < ARRAY_LEN(more); k++)
        lengths[count++] = more[k];
    test_rng rng;
    rng_seed(&rng, 501);
    err_stats stats[3][2];
    size_t failures = 0;
    for (size_t g = 0; g < 3; g++) {
        for (size_t d = 0; d < 2; d++) {
            softmax_dtype dt = test_dtypes[d];
            err_stats_init(&stats[g][d]);
            for (size_t l = 0; l < count; l++) {
                size_t n = lengths[l], rows = n <= 129 ? 3 : 1;
                for (int kind = 0; kind < 3; kind++) {
                    double sigma = kind == 1 ? 5.0 : 1.0;
                    void *a =
                        reference_outputs(dt, takes_log(grad_ops[g]), rows, n, sigma, kind == 2 ? 0.1 : 0.0, &rng);
                    void *b = make_upstream(dt, rows * n, kind, &rng);
                    for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                        failures += check_grad(grad_ops[g], dt, a, b, rows, n, scales[s], "random", &stats[g][d]);
                    free(a);
                    free(b);
                }
            }
        }
    }
    for (size_t g = 0; g < 3; g++)
        for (size_t d = 0; d < 2; d++)
            printf("gradients: %s_%s max error %.3f of the tolerance (%zu outputs, rows up to %zu)\n",
                   op_name(grad_ops[g]), dtype_name(test_dtypes[d]), stats[g][d].max_err, stats[g][d].checked,
                   stats[g][d].max_len);
    if (failures)
        fail_msg("%zu gradient outputs beyond tolerance (details above)", failures);
}

/* d/dt f(x + t v) at t = 0 by the fourth-order central stencil. */
static void directional_derivative(int log, const double *x, const double *v, size_t n, double scale, double h,
                                   double *out)
{
    double *xs = malloc(n * sizeof(double)), *f[4];
    const double steps[4] = {-2 * h, -h, h, 2 * h};
    for (int k = 0; k < 4; k++) {
        f[k] = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            xs[i] = x[i] + steps[k] * v[i];
        int rc = log ? log_softmax_f64(xs, f[k], 1, n, scale) : softmax_f64(xs, f[k], 1, n, scale);
        assert_int_equal(rc, SOFTMAX_OK);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (8.0 * (f[2][i] - f[1][i]) - (f[3][i] - f[0][i])) / (12.0 * h);
    for (int k = 0; k < 4; k++)
        free(f[k]);
    free(xs);
}

static void test_gradients_against_finite_differences(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 5, 8, 17, 33, 100};
    static const double scales[] = {1.0, 0.5, -2.0, 3.7};
    test_rng rng;
    rng_seed(&rng, 502);
    double worst = 0.0;
    for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k];
        double *x = malloc(n * sizeof(double)), *v = malloc(n * sizeof(double)), *dy = malloc(n * sizeof(double));
        double *y = malloc(n * sizeof(double)), *fd = malloc(n * sizeof(double));
        double *jvp = malloc(n * sizeof(double)), *vjp = malloc(n * sizeof(double));
        for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
            double scale = scales[s], h = 1e-3 / fabs(scale);
            for (size_t i = 0; i < n; i++) {
                x[i] = 2.0 * rng_normal(&rng) / fabs(scale); /* z = scale * x of order 2 */
                v[i] = rng_normal(&rng);
                dy[i] = rng_normal(&rng);
            }
            for (int log = 0; log <= 1; log++) {
                directional_derivative(log, x, v, n, scale, h, fd);
                if (log) {
                    assert_int_equal(log_softmax_f64(x, y, 1, n, scale), SOFTMAX_OK);
                    assert_int_equal(log_softmax_jvp_f64(y, v, jvp, 1, n, scale), SOFTMAX_OK);
                    assert_int_equal(log_softmax_backward_f64(y, dy, vjp, 1, n, scale), SOFTMAX_OK);
                } else {
                    /* the softmax Jacobian is symmetric: its JVP is the VJP */
                    assert_int_equal(softmax_f64(x, y, 1, n, scale), SOFTMAX_OK);
                    assert_int_equal(softmax_backward_f64(y, v, jvp, 1, n, scale), SOFTMAX_OK);
                    assert_int_equal(softmax_backward_f64(y, dy, vjp, 1, n, scale), SOFTMAX_OK);
                }
                double vmax = 0.0, dymax = 0.0;
                for (size_t i = 0; i < n; i++) {
                    vmax = fmax(vmax, fabs(v[i]));
                    dymax = fmax(dymax, fabs(dy[i]));
                }
                double tol = 1e-8 * fabs(scale) * fmax(1.0, vmax);
                for (size_t i = 0; i < n; i++) {
                    double err = fabs(jvp[i] - fd[i]);
                    worst = fmax(worst, err / tol);
                    if (!(err <= tol))
                        fail_msg("%s JVP n=%zu scale=%g [%zu]: %.17g, finite differences give %.17g",
                                 log ? "log_softmax" : "softmax", n, scale, i, jvp[i], fd[i]);
                }
                /* <J^T dy, v> = <dy, J v> */
                long double lhs = 0, rhs = 0;
                for (size_t i = 0; i < n; i++) {
                    lhs += (long double)vjp[i] * v[i];
                    rhs += (long double)dy[i] * fd[i];
                }
                double tol_dot = (double)n * tol * fmax(1.0, dymax);
                worst = fmax(worst, fabs((double)(lhs - rhs)) / tol_dot);
                if (!(fabs((double)(lhs - rhs)) <= tol_dot))
                    fail_msg("%s VJP n=%zu scale=%g: <dx, v> = %.17Lg but <dy, J v> = %.17Lg",
                             log ? "log_softmax" : "softmax", n, scale, lhs, rhs);
            }
        }
        free(x);
        free(v);
        free(dy);
        free(y);
        free(fd);
        free(jvp);
        free(vjp);
    }
    printf("gradients: finite differences agree within %.2e of the tolerance\n", worst);
}

/* J^T b (transpose = 1) or J b from the library's Jacobian, in long double,
 * with the matching error allowance sum_j mag_(ji or ij) |b_j|. */
static void jacobian_product(softmax_dtype dt, const void *jac, const double *mag, const void *b, size_t n,
                             int transpose, long double *prod, double *allow)
{
    for (size_t i = 0; i < n; i++) {
        long double acc = 0;
        double a = 0;
        for (size_t j = 0; j < n; j++) {
            size_t at = transpose ? j * n + i : i * n + j;
            acc += (long double)buf_get(dt, jac, at) * buf_get(dt, b, j);
            a += mag[at] * fabs(buf_get(dt, b, j));
        }
        prod[i] = acc;
        allow[i] = a;
    }
}

static void test_jacobians_against_mpfr_and_the_products(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 4, 7, 8, 9, 16, 17, 33};
    static const double scales[] = {1.0, -2.0, 0.5, 7.3, 1e-30};
    test_rng rng;
    rng_seed(&rng, 503);
    size_t failures = 0;
    err_stats jstats[2][2];
    double worst_product = 0.0;
    for (int log = 0; log <= 1; log++) {
        for (size_t d = 0; d < 2; d++) {
            softmax_dtype dt = test_dtypes[d];
            double u = ldexp(1.0, -dtype_precision(dt));
            err_stats_init(&jstats[log][d]);
            for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
                size_t n = sizes[k];
                for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
                    double scale = scales[s], sc = scale_as(dt, scale);
                    void *y = reference_outputs(dt, log, 1, n, 2.0, s % 2 ? 0.2 : 0.0, &rng);
                    void *jac = buf_alloc(dt, n * n);
                    failures += check_jacobian(dt, log, y, n, scale, "random", &jstats[log][d], jac);
                    ref_vec ref;
                    ref_vec_init(&ref, n * n);
                    double *mag = malloc(n * n * sizeof(double));
                    if (log)
                        ref_log_softmax_jacobian(&ref, ref_line_make(dt, y, n, 1), sc, mag);
                    else
                        ref_softmax_jacobian(&ref, ref_line_make(dt, y, n, 1), sc, mag);
                    ref_vec_free(&ref);
                    /* J^T dy against the VJP, J v against the JVP */
                    for (int transpose = 0; transpose <= 1; transpose++) {
                        softmax_op op = transpose
                                            ? (log ? SOFTMAX_OP_LOG_SOFTMAX_BACKWARD : SOFTMAX_OP_SOFTMAX_BACKWARD)
                                            : (log ? SOFTMAX_OP_LOG_SOFTMAX_JVP : SOFTMAX_OP_SOFTMAX_BACKWARD);
                        void *b = make_upstream(dt, n, 0, &rng), *out = buf_alloc(dt, n);
                        assert_int_equal(call_grad(op, dt, y, b, out, 1, n, scale), SOFTMAX_OK);
                        long double *prod = malloc(n * sizeof(long double));
                        double *allow = malloc(n * sizeof(double)), *local = malloc(n * sizeof(double)),
                               *global = malloc(n * sizeof(double)), *tol = malloc(n * sizeof(double));
                        jacobian_product(dt, jac, mag, b, n, transpose, prod, allow);
                        ref_vec g;
                        ref_vec_init(&g, n);
                        ref_grad(op, &g, ref_line_make(dt, y, n, 1), ref_line_make(dt, b, n, 1), sc, local, global);
                        ref_vec_free(&g);
                        grad_tolerance(tol, local, global, n, dt, sc);
                        for (size_t i = 0; i < n; i++) {
                            double t = tol[i] + JACOBIAN_C * u * allow[i] + 4 * dtype_true_min(dt);
                            double err = fabs((double)(prod[i] - (long double)buf_get(dt, out, i)));
                            worst_product = fmax(worst_product, err / t);
                            if (!(err <= t)) {
                                fprintf(stderr,
                                        "  FAIL %s_jacobian_%s n=%zu scale=%g: (J%s b)[%zu] = %.17Lg, %s gives %.17g\n",
                                        fwd_name(log), dtype_name(dt), n, scale, transpose ? "^T" : "", i, prod[i],
                                        op_name(op), buf_get(dt, out, i));
                                failures++;
                            }
                        }
                        free(prod);
                        free(allow);
                        free(local);
                        free(global);
                        free(tol);
                        free(b);
                        free(out);
                    }
                    /* the softmax Jacobian is symmetric */
                    if (!log) {
                        for (size_t i = 0; i < n; i++) {
                            for (size_t j = 0; j < i; j++) {
                                double a1 = buf_get(dt, jac, i * n + j), a2 = buf_get(dt, jac, j * n + i);
                                double t = JACOBIAN_C * u * (mag[i * n + j] + mag[j * n + i]) + 4 * dtype_true_min(dt);
                                if (!(fabs(a1 - a2) <= t)) {
                                    fprintf(stderr,
                                            "  FAIL softmax_jacobian_%s n=%zu: J[%zu][%zu] = %.17g but J[%zu][%zu] = "
                                            "%.17g\n",
                                            dtype_name(dt), n, i, j, a1, j, i, a2);
                                    failures++;
                                }
                            }
                        }
                    }
                    free(mag);
                    free(jac);
                    free(y);
                }
            }
        }
    }
    for (int log = 0; log <= 1; log++)
        for (size_t d = 0; d < 2; d++)
            printf("gradients: %s_jacobian_%s max error %.3f of the tolerance\n", fwd_name(log),
                   dtype_name(test_dtypes[d]), jstats[log][d].max_err);
    printf("gradients: J^T dy and J v from the Jacobians agree within %.3f of the tolerance\n", worst_product);
    if (failures)
        fail_msg("%zu Jacobian failures (details above)", failures);
}

static void test_in_place_gradients_match_out_of_place(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 7, 33, 1000};
    test_rng rng;
    rng_seed(&rng, 504);
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        size_t es = dtype_size(dt);
        for (size_t g = 0; g < 3; g++) {
            softmax_op op = grad_ops[g];
            for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
                size_t n = 3 * sizes[k];
                void *a = reference_outputs(dt, takes_log(op), 3, sizes[k], 2.0, 0.1, &rng);
                void *b = make_upstream(dt, n, 0, &rng);
                void *out = buf_alloc(dt, n), *ia = buf_alloc(dt, n), *b2 = buf_alloc(dt, n);
                assert_int_equal(call_grad(op, dt, a, b, out, 3, sizes[k], -1.5), SOFTMAX_OK);
                memcpy(ia, a, n * es);
                memcpy(b2, b, n * es);
                assert_int_equal(call_grad(op, dt, ia, b, ia, 3, sizes[k], -1.5), SOFTMAX_OK);
                assert_int_equal(call_grad(op, dt, a, b2, b2, 3, sizes[k], -1.5), SOFTMAX_OK);
                if (memcmp(out, ia, n * es) != 0)
                    fail_msg("%s_%s n=%zu: dx == y differs from out of place", op_name(op), dtype_name(dt), sizes[k]);
                if (memcmp(out, b2, n * es) != 0)
                    fail_msg("%s_%s n=%zu: dx == dy differs from out of place", op_name(op), dtype_name(dt), sizes[k]);
                free(a);
                free(b);
                free(out);
                free(ia);
                free(b2);
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * The edges of the floating-point range
 *
 * Where the exact gradient (MPFR, from the very inputs and scale) is a number
 * of the output type, the library must give it within the tolerance of
 * reference.h, whatever its intermediates would have done in the data type:
 * dy - <dy, y> beyond the largest finite value, s * y below the smallest
 * normal, exp(logy) below it but times a sum of 1e300 an ordinary number.
 * Where the exact value lies beyond the type's range: the infinity of its
 * sign (the largest finite value is accepted too, a rounding away); an
 * infinity is accepted nowhere else, except where the tolerance itself
 * reaches beyond the range (a cancellation of values near DBL_MAX times a
 * huge scale). Where the formula reads inf - inf or 0 * inf: NaN.
 *
 * The tolerance is grad_tolerance's formula evaluated in MPFR: its
 * magnitudes exceed DBL_MAX here, where ref_grad's local / global doubles
 * overflow to an infinite tolerance that accepts anything.
 * ------------------------------------------------------------------------ */

typedef struct output_format {
    int precision;   /* significand bits */
    double max;      /* largest finite value */
    double true_min; /* smallest subnormal */
} output_format;

static output_format format_of(softmax_dtype dt)
{
    switch (dt) {
    case SOFTMAX_DTYPE_F32:
        return (output_format){24, FLT_MAX, 0x1p-149};
    case SOFTMAX_DTYPE_F64:
        return (output_format){53, DBL_MAX, 0x1p-1074};
    case SOFTMAX_DTYPE_BF16:
        return (output_format){8, 0x1.fep127, 0x1p-133};
    default:
        return (output_format){11, 65504.0, 0x1p-24};
    }
}

/* The tolerances of one line, computed in the type `computed` (f32 or f64)
 * and rounded to `out` (half an ulp more where out is narrower). */
static void edge_tolerances(softmax_op op, ref_line a, ref_line b, double scale, const ref_vec *ref,
                            softmax_dtype computed, softmax_dtype out, ref_vec *tol)
{
    const size_t n = a.n;
    const output_format c = format_of(computed), o = format_of(out);
    mpfr_t abs_sum, sum, p, t, local, global;
    mpfr_inits2(REF_PREC, abs_sum, sum, p, t, local, global, (mpfr_ptr)0);
    mpfr_set_zero(abs_sum, 1);
    mpfr_set_zero(sum, 1);
    for (size_t j = 0; j < n; j++) {
        if (op == SOFTMAX_OP_SOFTMAX_BACKWARD) {
            mpfr_set_d(t, ref_line_get(a, j), MPFR_RNDN);
            mpfr_mul_d(t, t, ref_line_get(b, j), MPFR_RNDN);
        } else if (op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD) {
            mpfr_set_d(t, ref_line_get(b, j), MPFR_RNDN);
            mpfr_add(sum, sum, t, MPFR_RNDN);
        } else {
            mpfr_set_d(t, ref_line_get(a, j), MPFR_RNDN);
            mpfr_exp(t, t, MPFR_RNDN);
            mpfr_mul_d(t, t, ref_line_get(b, j), MPFR_RNDN);
        }
        mpfr_abs(t, t, MPFR_RNDN);
        mpfr_add(abs_sum, abs_sum, t, MPFR_RNDN);
    }
    mpfr_abs(sum, sum, MPFR_RNDN);
    const double c_global = GRAD_C_GLOBAL + (n > 1 ? log2((double)n) : 0.0);
    const double abs_scale = fabs(scale);
    for (size_t i = 0; i < n; i++) {
        mpfr_ptr r = ref_at(tol, i);
        if (!mpfr_number_p(ref_at(ref, i))) {
            mpfr_set_zero(r, 1);
            continue;
        }
        mpfr_abs(local, ref_at(ref, i), MPFR_RNDN);
        if (op == SOFTMAX_OP_SOFTMAX_BACKWARD) {
            mpfr_mul_d(global, abs_sum, fabs(ref_line_get(a, i)) * abs_scale, MPFR_RNDN);
        } else if (op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD) {
            mpfr_set_d(p, ref_line_get(a, i), MPFR_RNDN);
            mpfr_exp(p, p, MPFR_RNDN);
            mpfr_mul_d(p, p, abs_scale, MPFR_RNDN);
            mpfr_mul(t, p, sum, MPFR_RNDN);
            mpfr_add(local, local, t, MPFR_RNDN); /* the library's exp(logy) is rounded */
            mpfr_mul(global, p, abs_sum, MPFR_RNDN);
        } else {
            mpfr_mul_d(global, abs_sum, abs_scale, MPFR_RNDN);
        }
        mpfr_mul_d(local, local, GRAD_C_LOCAL, MPFR_RNDN);
        mpfr_mul_d(global, global, c_global, MPFR_RNDN);
        mpfr_add(r, local, global, MPFR_RNDN);
        mpfr_mul_2si(r, r, -c.precision, MPFR_RNDN);
        mpfr_add_d(r, r, GRAD_C_FLOOR * c.true_min * fmax(1.0, abs_scale), MPFR_RNDN);
        if (o.precision < c.precision) {
            mpfr_abs(t, ref_at(ref, i), MPFR_RNDN);
            mpfr_mul_2si(t, t, -o.precision, MPFR_RNDN);
            mpfr_add(r, r, t, MPFR_RNDN);
            mpfr_add_d(r, r, o.true_min / 2, MPFR_RNDN);
        }
    }
    mpfr_clears(abs_sum, sum, p, t, local, global, (mpfr_ptr)0);
}

/* Outputs `values` (the library's, read as doubles) of one line against
 * the reference under the rules above; returns the failures. */
static size_t check_edge_values(const ref_vec *ref, const ref_vec *tol, const double *values, size_t n,
                                softmax_dtype out, const char *what)
{
    const output_format o = format_of(out);
    size_t failures = 0;
    mpfr_t beyond, diff;
    mpfr_inits2(REF_PREC, beyond, diff, (mpfr_ptr)0);
    /* Values from max + half an ulp of it up round to infinity. */
    mpfr_set_d(beyond, o.max, MPFR_RNDN);
    mpfr_add_d(beyond, beyond, ldexp(1.0, ilogb(o.max) - o.precision), MPFR_RNDN);
    for (size_t i = 0; i < n; i++) {
        mpfr_srcptr r = ref_at(ref, i);
        const double v = values[i];
        int ok;
        const char *rule;
        if (mpfr_nan_p(r)) {
            ok = isnan(v), rule = "NaN expected";
        } else if (mpfr_inf_p(r)) {
            ok = v == (mpfr_sgn(r) > 0 ? INFINITY : -INFINITY), rule = "the infinity expected";
        } else if (isfinite(v)) {
            /* within the tolerance, or the largest finite value where the
             * exact value is beyond it */
            mpfr_d_sub(diff, v, r, MPFR_RNDN);
            ok = mpfr_cmpabs(diff, ref_at(tol, i)) <= 0 ||
                 (mpfr_cmpabs(r, beyond) >= 0 && v == copysign(o.max, mpfr_sgn(r))),
            rule = "a finite value within tolerance expected";
        } else if (isinf(v)) {
            /* only where the exact value, or the tolerance around it,
             * reaches beyond the range on that side */
            mpfr_mul_si(diff, r, v > 0 ? 1 : -1, MPFR_RNDN);
            mpfr_add(diff, diff, ref_at(tol, i), MPFR_RNDN);
            ok = mpfr_cmp(diff, beyond) >= 0, rule = "a finite value expected";
        } else {
            ok = 0, rule = "a number expected";
        }
        if (!ok) {
            if (failures < 8)
                fprintf(stderr, "  FAIL %s [%zu]: %.17g, exact %.17g (tolerance %.3g): %s\n", what, i, v,
                        mpfr_get_d(r, MPFR_RNDN), mpfr_get_d(ref_at(tol, i), MPFR_RNDN), rule);
            failures++;
        }
    }
    mpfr_clears(beyond, diff, (mpfr_ptr)0);
    return failures;
}

/* One line of the computation type (f32 / f64) against MPFR. */
static size_t check_edge_line(softmax_op op, softmax_dtype dt, const void *a, const void *b, size_t n, size_t stride,
                              double scale, const void *out, size_t out_stride, const char *what)
{
    ref_vec ref, tol;
    ref_vec_init(&ref, n);
    ref_vec_init(&tol, n);
    const ref_line al = ref_line_make(dt, a, n, stride), bl = ref_line_make(dt, b, n, stride);
    ref_grad(op, &ref, al, bl, scale, NULL, NULL);
    edge_tolerances(op, al, bl, scale, &ref, dt, dt, &tol);
    double *values = malloc(n * sizeof(double));
    const ref_line ol = ref_line_make(dt, out, n, out_stride);
    for (size_t i = 0; i < n; i++)
        values[i] = ref_line_get(ol, i);
    const size_t failures = check_edge_values(&ref, &tol, values, n, dt, what);
    free(values);
    ref_vec_free(&ref);
    ref_vec_free(&tol);
    return failures;
}

/* A gradient op through softmax_execute: rows x n, the given strides along
 * the line (elements; NULL = contiguous), the double scale as given. */
static int execute_grad(softmax_op op, softmax_dtype dt, const void *a, const void *b, void *out, size_t rows, size_t n,
                        double scale)
{
    softmax_desc desc;
    assert_int_equal(softmax_desc_init(&desc, op, dt, n), SOFTMAX_OK);
    desc.ndim = 2;
    desc.shape[0] = rows;
    desc.shape[1] = n;
    desc.scale = scale;
    return softmax_execute(&desc, a, b, out);
}

static int execute_strided_grad(softmax_op op, softmax_dtype dt, const void *a, const void *b, void *out, size_t n,
                                int64_t stride, double scale)
{
    softmax_desc desc;
    assert_int_equal(softmax_desc_init(&desc, op, dt, n), SOFTMAX_OK);
    const int64_t strides[1] = {stride};
    desc.src_strides = desc.grad_strides = desc.dst_strides = strides;
    desc.scale = scale;
    return softmax_execute(&desc, a, b, out);
}

#define EDGE_MAX_N 4

/* One case: a = y or logy, b = dy or v, n <= EDGE_MAX_N values. */
typedef struct edge_case {
    const char *name;
    softmax_op op;
    double scale;
    size_t n;
    double a[EDGE_MAX_N];
    double b[EDGE_MAX_N];
} edge_case;

#define FM FLT_MAX
#define DM DBL_MAX
#define LOG_0_75 -0.28768207245178090
#define LOG_0_25 -1.3862943611198906
#define LOG_0_98 -0.020202707317519466
#define LOG_0_01 -4.6051701859880914

/* Each of these gave inf, NaN or a wrong finite value on some path before
 * the careful evaluations (see src/kernels/gradients/rows.h). */
static const edge_case f32_edge_cases[] = {
    {"dy - dot beyond FLT_MAX", SOFTMAX_OP_SOFTMAX_BACKWARD, 1.0, 2, {0.75, 0.25}, {-FM, FM}},
    {"dy - dot beyond FLT_MAX, negative scale", SOFTMAX_OP_SOFTMAX_BACKWARD, -0.5, 2, {0.75, 0.25}, {-FM, FM}},
    {"dot beyond FLT_MAX (y summing to 2)", SOFTMAX_OP_SOFTMAX_BACKWARD, 1.0, 2, {1, 1}, {FM, FM / 2}},
    {"subnormal scale times y underflows", SOFTMAX_OP_SOFTMAX_BACKWARD, 0x1.8p-141, 2, {0.3, 0.7}, {FM / 4, -FM / 4}},
    {"subnormal y times a non-power-of-two scale",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     1.5,
     2,
     {0x1.fffffep-1, 0x3p-149},
     {0, 1e30}},
    {"double scale below FLT_TRUE_MIN", SOFTMAX_OP_SOFTMAX_BACKWARD, 1e-50, 2, {0.5, 0.5}, {1e38, 0}},
    {"double scale beyond FLT_MAX, dy - dot = 0", SOFTMAX_OP_SOFTMAX_BACKWARD, 1e300, 2, {0.5, 0.5}, {1, 1}},
    {"exp(logy) below FLT_MIN times a sum of 1e30", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {0, -100}, {1e30, 0}},
    {"exp(logy) below FLT_MIN, subnormal result", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {0, -95}, {1, 0}},
    {"sum(dy) beyond FLT_MAX", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {LOG_0_75, LOG_0_25}, {FM, FM}},
    {"dy - y sum beyond FLT_MAX",
     SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
     0.5,
     3,
     {LOG_0_98, LOG_0_01, LOG_0_01},
     {-FM, FM, FM}},
    {"logy above 0 (exp beyond FLT_MAX)", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {100, 2}, {1, 2}},
    {"double scale below FLT_TRUE_MIN", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1e-50, 2, {LOG_0_75, LOG_0_25}, {1e38, 0}},
    {"exp(logy) below FLT_MIN times v = 1e30", SOFTMAX_OP_LOG_SOFTMAX_JVP, 1.0, 2, {0, -100}, {0, 1e30}},
    {"v - dot beyond FLT_MAX", SOFTMAX_OP_LOG_SOFTMAX_JVP, 0.5, 2, {LOG_0_75, LOG_0_25}, {-FM, FM}},
    {"double scale below FLT_TRUE_MIN", SOFTMAX_OP_LOG_SOFTMAX_JVP, 1e-50, 2, {LOG_0_75, LOG_0_25}, {1e38, 0}},
};

static const edge_case f64_edge_cases[] = {
    {"dy - dot beyond DBL_MAX", SOFTMAX_OP_SOFTMAX_BACKWARD, 1.0, 2, {0.75, 0.25}, {-DM, DM}},
    {"dy - dot beyond DBL_MAX, negative scale", SOFTMAX_OP_SOFTMAX_BACKWARD, -0.5, 2, {0.75, 0.25}, {-DM, DM}},
    {"dot beyond DBL_MAX (y summing to 1 + 2^-53)",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     1.0,
     2,
     {0.5, 0x1.0000000000001p-1},
     {DM, DM}},
    {"dot beyond DBL_MAX (y summing to 2)", SOFTMAX_OP_SOFTMAX_BACKWARD, 1.0, 2, {1, 1}, {DM, DM / 2}},
    {"subnormal scale times y underflows", SOFTMAX_OP_SOFTMAX_BACKWARD, 0x1p-1070, 2, {0.3, 0.7}, {DM / 4, -DM / 4}},
    {"subnormal y times a non-power-of-two scale",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     1.5,
     2,
     {0x1.fffffffffffffp-1, 0x3p-1074},
     {0, 1e300}},
    {"exp(logy) below DBL_MIN times a sum of 1e300", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {0, -800}, {1e300, 0}},
    {"exp(logy) below DBL_MIN, subnormal result", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {0, -720}, {1, 0}},
    {"sum(dy) beyond DBL_MAX", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {LOG_0_75, LOG_0_25}, {DM, DM}},
    {"dy - y sum beyond DBL_MAX",
     SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
     0.5,
     3,
     {LOG_0_98, LOG_0_01, LOG_0_01},
     {-DM, DM, DM}},
    {"logy above 709 times a sum of 1e-300", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, 1.0, 2, {750, 0}, {1e-300, 0}},
    {"exp(logy) below DBL_MIN times v = 1e300", SOFTMAX_OP_LOG_SOFTMAX_JVP, 1.0, 2, {0, -800}, {0, 1e300}},
    {"v - dot beyond DBL_MAX", SOFTMAX_OP_LOG_SOFTMAX_JVP, 0.5, 2, {LOG_0_75, LOG_0_25}, {-DM, DM}},
    {"logy above 709 times v = 1e-300", SOFTMAX_OP_LOG_SOFTMAX_JVP, 1.0, 2, {750, 0}, {1e-300, 0}},
};

/* The case's values at `offset` in a line of `len` (the rest: y = 0 or
 * logy = -inf, dy = v = 0, which change no other element). */
static void place_edge_case(const edge_case *c, softmax_dtype dt, void *a, void *b, size_t len, size_t offset)
{
    const double a_fill = c->op == SOFTMAX_OP_SOFTMAX_BACKWARD ? 0.0 : -INFINITY;
    for (size_t i = 0; i < len; i++) {
        buf_set(dt, a, i, a_fill);
        buf_set(dt, b, i, 0.0);
    }
    for (size_t k = 0; k < c->n; k++) {
        buf_set(dt, a, offset + k, c->a[k]);
        buf_set(dt, b, offset + k, c->b[k]);
    }
}

/* Runs one case alone, inside longer rows (at the start: in a full vector;
 * at the end: in the tail), in place (dx == dy, dx == y: the careful
 * elements must read their inputs before the vector is stored) and along a
 * strided view (the general path gathers the line). */
static size_t run_edge_case(const edge_case *c, softmax_dtype dt)
{
    enum { LONG = 37, ROWS = 2, COLUMNS = 19 };
    size_t failures = 0;
    const size_t es = dtype_size(dt);
    char what[200];
    void *a = buf_alloc(dt, ROWS * LONG), *b = buf_alloc(dt, ROWS * LONG), *out = buf_alloc(dt, ROWS * LONG);
    void *copy = buf_alloc(dt, ROWS * LONG), *strided_a = buf_alloc(dt, 2 * LONG), *strided_b = buf_alloc(dt, 2 * LONG),
         *strided_out = buf_alloc(dt, 2 * LONG);
    void *columns_a = buf_alloc(dt, LONG * COLUMNS), *columns_b = buf_alloc(dt, LONG * COLUMNS),
         *columns_out = buf_alloc(dt, LONG * COLUMNS);
    const size_t lengths[3] = {c->n, LONG, LONG}, offsets[3] = {0, 0, LONG - c->n};
    for (int layout = 0; layout < 3; layout++) {
        const size_t len = lengths[layout];
        place_edge_case(c, dt, a, b, len, offsets[layout]);
        memcpy(buf_at(dt, a, len), a, len * es); /* a second, equal row */
        memcpy(buf_at(dt, b, len), b, len * es);
        snprintf(what, sizeof what, "%s_%s \"%s\" (n=%zu at %zu, scale=%g)", op_name(c->op), dtype_name(dt), c->name,
                 len, offsets[layout], c->scale);
        fill_sentinel(out, ROWS * len * es);
        assert_int_equal(execute_grad(c->op, dt, a, b, out, ROWS, len, c->scale), SOFTMAX_OK);
        for (size_t r = 0; r < ROWS; r++)
            failures += check_edge_line(c->op, dt, buf_cat(dt, a, r * len), buf_cat(dt, b, r * len), len, 1, c->scale,
                                        buf_cat(dt, out, r * len), 1, what);
        /* in place: the same bits */
        for (int alias = 0; alias < 2; alias++) {
            memcpy(copy, alias ? a : b, ROWS * len * es);
            assert_int_equal(execute_grad(c->op, dt, alias ? copy : a, alias ? b : copy, copy, ROWS, len, c->scale),
                             SOFTMAX_OK);
            if (memcmp(copy, out, ROWS * len * es) != 0) {
                fprintf(stderr, "  FAIL %s: in place (dx == %s) differs from out of place\n", what, alias ? "y" : "dy");
                failures++;
            }
        }
        /* every other element of a buffer twice as long */
        for (size_t i = 0; i < 2 * len; i++) {
            buf_set(dt, strided_a, i, i % 2 ? 7.0 : buf_get(dt, a, i / 2));
            buf_set(dt, strided_b, i, i % 2 ? 7.0 : buf_get(dt, b, i / 2));
        }
        fill_sentinel(strided_out, 2 * len * es);
        assert_int_equal(execute_strided_grad(c->op, dt, strided_a, strided_b, strided_out, len, 2, c->scale),
                         SOFTMAX_OK);
        snprintf(what, sizeof what, "%s_%s \"%s\" (n=%zu at %zu, stride 2, scale=%g)", op_name(c->op), dtype_name(dt),
                 c->name, len, offsets[layout], c->scale);
        failures += check_edge_line(c->op, dt, a, b, len, 1, c->scale, strided_out, 2, what);
        /* along axis 0 of [len, COLUMNS]: the column kernels, one line per lane */
        for (size_t i = 0; i < len; i++)
            for (size_t j = 0; j < COLUMNS; j++) {
                buf_set(dt, columns_a, i * COLUMNS + j, buf_get(dt, a, i));
                buf_set(dt, columns_b, i * COLUMNS + j, buf_get(dt, b, i));
            }
        softmax_desc desc;
        assert_int_equal(softmax_desc_init(&desc, c->op, dt, len), SOFTMAX_OK);
        desc.ndim = 2;
        desc.shape[0] = len;
        desc.shape[1] = COLUMNS;
        desc.axis = 0;
        desc.scale = c->scale;
        assert_int_equal(softmax_execute(&desc, columns_a, columns_b, columns_out), SOFTMAX_OK);
        snprintf(what, sizeof what, "%s_%s \"%s\" (n=%zu at %zu, axis 0 of %zu columns, scale=%g)", op_name(c->op),
                 dtype_name(dt), c->name, len, offsets[layout], (size_t)COLUMNS, c->scale);
        for (size_t j = 0; j < COLUMNS; j += COLUMNS - 1)
            failures += check_edge_line(c->op, dt, a, b, len, 1, c->scale, buf_cat(dt, columns_out, j), COLUMNS, what);
    }
    free(a);
    free(b);
    free(out);
    free(copy);
    free(strided_a);
    free(strided_b);
    free(strided_out);
    free(columns_a);
    free(columns_b);
    free(columns_out);
    return failures;
}

static void test_gradients_at_the_edges_of_the_range(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t k = 0; k < ARRAY_LEN(f32_edge_cases); k++)
        failures += run_edge_case(&f32_edge_cases[k], SOFTMAX_DTYPE_F32);
    for (size_t k = 0; k < ARRAY_LEN(f64_edge_cases); k++)
        failures += run_edge_case(&f64_edge_cases[k], SOFTMAX_DTYPE_F64);
    if (failures)
        fail_msg("%zu gradient outputs wrong at the edges of the range (details above)", failures);
}

/* The same rules for half-precision and mixed data types through the
 * general API: lines computed in f32 (f64 if any operand is f64) and
 * rounded once to the output type. */
typedef struct mixed_edge_case {
    const char *name;
    softmax_op op;
    softmax_dtype src, grad, dst;
    double scale;
    size_t n;
    double a[EDGE_MAX_N];
    double b[EDGE_MAX_N];
} mixed_edge_case;

#define BM 0x1.fep127 /* the largest finite bf16 */
#define HM 65504.0    /* the largest finite f16 */

static const mixed_edge_case mixed_edge_cases[] = {
    {"bf16: dy - dot beyond FLT_MAX",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     SOFTMAX_DTYPE_BF16,
     SOFTMAX_DTYPE_BF16,
     SOFTMAX_DTYPE_BF16,
     1.0,
     2,
     {0.75, 0.25},
     {-BM, BM}},
    {"bf16: sum(dy) beyond FLT_MAX",
     SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
     SOFTMAX_DTYPE_BF16,
     SOFTMAX_DTYPE_BF16,
     SOFTMAX_DTYPE_BF16,
     1.0,
     2,
     {-0.287109375, -1.3828125},
     {BM, BM}},
    {"bf16: v - dot beyond FLT_MAX",
     SOFTMAX_OP_LOG_SOFTMAX_JVP,
     SOFTMAX_DTYPE_BF16,
     SOFTMAX_DTYPE_BF16,
     SOFTMAX_DTYPE_BF16,
     0.5,
     2,
     {-0.287109375, -1.3828125},
     {-BM, BM}},
    {"f16: a result beyond 65504",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     SOFTMAX_DTYPE_F16,
     SOFTMAX_DTYPE_F16,
     SOFTMAX_DTYPE_F16,
     4.0,
     2,
     {0.5, 0.5},
     {HM, -HM}},
    {"f16: a result of 65504",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     SOFTMAX_DTYPE_F16,
     SOFTMAX_DTYPE_F16,
     SOFTMAX_DTYPE_F16,
     2.0,
     2,
     {0.5, 0.5},
     {HM, -HM}},
    {"f16: scale 1e30",
     SOFTMAX_OP_LOG_SOFTMAX_JVP,
     SOFTMAX_DTYPE_F16,
     SOFTMAX_DTYPE_F16,
     SOFTMAX_DTYPE_F16,
     1e30,
     2,
     {-0.6931471805599453, -0.6931471805599453},
     {1, 0}},
    {"bf16 y, f32 dy and dx: dy - dot beyond FLT_MAX",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     SOFTMAX_DTYPE_BF16,
     SOFTMAX_DTYPE_F32,
     SOFTMAX_DTYPE_F32,
     1.0,
     2,
     {0.75, 0.25},
     {-FLT_MAX, FLT_MAX}},
    {"f32 in, f64 out: computed in f64",
     SOFTMAX_OP_SOFTMAX_BACKWARD,
     SOFTMAX_DTYPE_F32,
     SOFTMAX_DTYPE_F32,
     SOFTMAX_DTYPE_F64,
     1.0,
     2,
     {0.75, 0.25},
     {-FLT_MAX, FLT_MAX}},
};

/* n values of type dt from doubles (rounded to nearest even). */
static void *converted(const double *values, size_t n, softmax_dtype dt)
{
    void *out = malloc(n * dtype_size(dt));
    assert_non_null(out);
    assert_int_equal(softmax_convert(out, dt, values, SOFTMAX_DTYPE_F64, n), SOFTMAX_OK);
    return out;
}

static size_t run_mixed_edge_case(const mixed_edge_case *c)
{
    enum { LONG = 37 };
    size_t failures = 0;
    const softmax_dtype computed =
        c->src == SOFTMAX_DTYPE_F64 || c->grad == SOFTMAX_DTYPE_F64 || c->dst == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64
                                                                                                   : SOFTMAX_DTYPE_F32;
    const size_t lengths[2] = {c->n, LONG};
    for (int layout = 0; layout < 2; layout++) {
        const size_t len = lengths[layout], offset = len - c->n;
        double *a = malloc(len * sizeof(double)), *b = malloc(len * sizeof(double));
        double *values = malloc(len * sizeof(double));
        for (size_t i = 0; i < len; i++) {
            a[i] = c->op == SOFTMAX_OP_SOFTMAX_BACKWARD ? 0.0 : -INFINITY;
            b[i] = 0.0;
        }
        memcpy(a + offset, c->a, c->n * sizeof(double));
        memcpy(b + offset, c->b, c->n * sizeof(double));
        void *src = converted(a, len, c->src), *grad = converted(b, len, c->grad);
        void *dst = malloc(len * dtype_size(c->dst));
        softmax_desc desc;
        assert_int_equal(softmax_desc_init(&desc, c->op, c->src, len), SOFTMAX_OK);
        desc.grad_dtype = c->grad;
        desc.dst_dtype = c->dst;
        desc.scale = c->scale;
        assert_int_equal(softmax_execute(&desc, src, grad, dst), SOFTMAX_OK);
        assert_int_equal(softmax_convert(values, SOFTMAX_DTYPE_F64, dst, c->dst, len), SOFTMAX_OK);
        /* the inputs as the computation reads them (exact) */
        void *a_in = malloc(len * dtype_size(computed)), *b_in = malloc(len * dtype_size(computed));
        assert_int_equal(softmax_convert(a_in, computed, src, c->src, len), SOFTMAX_OK);
        assert_int_equal(softmax_convert(b_in, computed, grad, c->grad, len), SOFTMAX_OK);
        ref_vec ref, tol;
        ref_vec_init(&ref, len);
        ref_vec_init(&tol, len);
        const ref_line al = ref_line_make(computed, a_in, len, 1), bl = ref_line_make(computed, b_in, len, 1);
        ref_grad(c->op, &ref, al, bl, c->scale, NULL, NULL);
        edge_tolerances(c->op, al, bl, c->scale, &ref, computed, c->dst, &tol);
        char what[200];
        snprintf(what, sizeof what, "%s \"%s\" (n=%zu, scale=%g)", op_name(c->op), c->name, len, c->scale);
        failures += check_edge_values(&ref, &tol, values, len, c->dst, what);
        ref_vec_free(&ref);
        ref_vec_free(&tol);
        free(a);
        free(b);
        free(values);
        free(src);
        free(grad);
        free(dst);
        free(a_in);
        free(b_in);
    }
    return failures;
}

static void test_half_and_mixed_gradients_at_the_edges_of_the_range(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t k = 0; k < ARRAY_LEN(mixed_edge_cases); k++)
        failures += run_mixed_edge_case(&mixed_edge_cases[k]);
    if (failures)
        fail_msg("%zu half-precision or mixed-type gradient outputs wrong at the edges of the range", failures);
}

/* Random rows at the extremes: probabilities spread over the whole range
 * of the type (sigma up to 60: exps below the smallest normal), upstream
 * values near the largest finite value or spread over every binade, scales
 * from subnormal to huge; every output under the rules above. */
static double extreme_upstream(softmax_dtype dt, int kind, test_rng *rng)
{
    const double max = dtype_max(dt);
    const int max_exponent = dt == SOFTMAX_DTYPE_F32 ? 127 : 1023;
    switch (kind) {
    case 0: /* near the largest finite value, either sign */
        return max * rng_range(rng, -1.0, 1.0);
    case 1: /* any binade */
        return ldexp(rng_range(rng, -1.0, 1.0),
                     (int)rng_below(rng, (size_t)(2 * max_exponent + 40)) - max_exponent - 40);
    default: /* large and nearly equal: dy - <dy, y> cancels */
        return max / 2 * (1 + ldexp(rng_normal(rng), -20));
    }
}

static void test_gradients_with_extreme_random_rows(void **state)
{
    (void)state;
    static const size_t lengths[] = {1, 2, 3, 7, 16, 17, 33, 100};
    test_rng rng;
    rng_seed(&rng, 505);
    size_t failures = 0, checked = 0;
    for (size_t d = 0; d < 2; d++) {
        const softmax_dtype dt = test_dtypes[d];
        const double scales[] = {1.0,
                                 -1.0,
                                 0.7,
                                 -3.3,
                                 1e-30,
                                 dt == SOFTMAX_DTYPE_F32 ? 0x1.8p-141 : 0x1.8p-1071,
                                 1e30,
                                 dt == SOFTMAX_DTYPE_F32 ? 1e-50 : 1e-310,
                                 dt == SOFTMAX_DTYPE_F32 ? 1e300 : 1e307};
        for (size_t g = 0; g < 3; g++) {
            const softmax_op op = grad_ops[g];
            for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
                const size_t n = lengths[l];
                for (int kind = 0; kind < 3; kind++) {
                    const double sigma = kind == 0 ? 3.0 : dt == SOFTMAX_DTYPE_F32 ? 40.0 : 300.0;
                    void *a = reference_outputs(dt, takes_log(op), 1, n, sigma, 0.1, &rng);
                    void *b = buf_alloc(dt, n), *out = buf_alloc(dt, n);
                    for (size_t i = 0; i < n; i++)
                        buf_set(dt, b, i, extreme_upstream(dt, (kind + (int)i) % 3, &rng));
                    for (size_t k = 0; k < ARRAY_LEN(scales); k++) {
                        char what[160];
                        snprintf(what, sizeof what, "%s_%s random extreme row (n=%zu, kind %d, scale=%g)", op_name(op),
                                 dtype_name(dt), n, kind, scales[k]);
                        assert_int_equal(execute_grad(op, dt, a, b, out, 1, n, scales[k]), SOFTMAX_OK);
                        failures += check_edge_line(op, dt, a, b, n, 1, scales[k], out, 1, what);
                        checked += n;
                    }
                    free(a);
                    free(b);
                    free(out);
                }
            }
        }
    }
    printf("gradients: %zu outputs of extreme random rows checked\n", checked);
    if (failures)
        fail_msg("%zu gradient outputs of extreme random rows wrong (details above)", failures);
}

/* An infinite dy or v (finite scale, no NaN, not fully masked) goes
 * through the formula in extended-real arithmetic, on every path alike:
 * the reduction is infinite, an element meeting inf - inf or 0 * inf is
 * NaN, the others are infinite (include/softmax.h, "Gradient special
 * cases"). */
static const edge_case infinite_upstream_cases[] = {
    {"one dy = +inf", SOFTMAX_OP_SOFTMAX_BACKWARD, 1.0, 3, {0.5, 0.5, 0}, {INFINITY, 1, 2}},
    {"dy = +inf and -inf", SOFTMAX_OP_SOFTMAX_BACKWARD, -2.0, 2, {0.5, 0.5}, {INFINITY, -INFINITY}},
    {"one dy = -inf",
     SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
     0.5,
     3,
     {-0.6931471805599453, -0.6931471805599453, -INFINITY},
     {-INFINITY, 1, 2}},
    {"one v = +inf",
     SOFTMAX_OP_LOG_SOFTMAX_JVP,
     1.0,
     3,
     {-0.6931471805599453, -0.6931471805599453, -INFINITY},
     {INFINITY, 1, 2}},
};

static void test_gradients_of_infinite_upstream_values(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++)
        for (size_t k = 0; k < ARRAY_LEN(infinite_upstream_cases); k++)
            failures += run_edge_case(&infinite_upstream_cases[k], test_dtypes[d]);
    if (failures)
        fail_msg("%zu gradient outputs of infinite upstream values wrong (details above)", failures);
}

/* The checker itself: where the double magnitudes behind grad_tolerance
 * overflow (dy near DBL_MAX), its tolerance must not become infinite and
 * accept anything -- only the exact value passes there (the tests of such
 * rows compute their tolerances in MPFR). */
static void test_overflowing_tolerances_accept_only_the_exact_value(void **state)
{
    (void)state;
    const double y[2] = {0.5, 0.5}, dy[2] = {DBL_MAX, -DBL_MAX};
    double local[2], global[2], tol[2];
    ref_vec ref;
    ref_vec_init(&ref, 2);
    ref_grad(SOFTMAX_OP_SOFTMAX_BACKWARD, &ref, ref_line_make(SOFTMAX_DTYPE_F64, y, 2, 1),
             ref_line_make(SOFTMAX_DTYPE_F64, dy, 2, 1), 1.0, local, global);
    grad_tolerance(tol, local, global, 2, SOFTMAX_DTYPE_F64, 1.0);
    assert_false(isinf(tol[0]) || isinf(tol[1]));
    /* exact: dx = y * (dy - 0) = {DBL_MAX / 2, -DBL_MAX / 2} */
    const double exact[2] = {DBL_MAX / 2, -DBL_MAX / 2}, wrong[2] = {1.0, -1.0};
    err_stats st;
    err_stats_init(&st);
    assert_int_equal(check_tolerance_line(&ref, tol, ref_line_make(SOFTMAX_DTYPE_F64, exact, 2, 1), &st, "exact"), 0);
    fprintf(stderr, "(four FAIL lines expected next: the checker refusing wrong values)\n");
    assert_int_equal(check_tolerance_line(&ref, tol, ref_line_make(SOFTMAX_DTYPE_F64, wrong, 2, 1), &st, "wrong"), 2);
    /* dy - dot beyond DBL_MAX: the magnitudes themselves overflow */
    const double y2[2] = {0.75, 0.25}, dy2[2] = {-DBL_MAX, DBL_MAX};
    ref_grad(SOFTMAX_OP_SOFTMAX_BACKWARD, &ref, ref_line_make(SOFTMAX_DTYPE_F64, y2, 2, 1),
             ref_line_make(SOFTMAX_DTYPE_F64, dy2, 2, 1), 1.0, local, global);
    grad_tolerance(tol, local, global, 2, SOFTMAX_DTYPE_F64, 1.0);
    assert_false(isinf(tol[0]) || isinf(tol[1]));
    const double exact2[2] = {-0.375 * DBL_MAX, 0.375 * DBL_MAX}, wrong2[2] = {-0.25 * DBL_MAX, INFINITY};
    assert_int_equal(check_tolerance_line(&ref, tol, ref_line_make(SOFTMAX_DTYPE_F64, exact2, 2, 1), &st, "exact"), 0);
    assert_int_equal(check_tolerance_line(&ref, tol, ref_line_make(SOFTMAX_DTYPE_F64, wrong2, 2, 1), &st, "wrong"), 2);
    ref_vec_free(&ref);
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_against_mpfr),
        cmocka_unit_test(test_gradients_against_finite_differences),
        cmocka_unit_test(test_jacobians_against_mpfr_and_the_products),
        cmocka_unit_test(test_in_place_gradients_match_out_of_place),
        cmocka_unit_test(test_gradients_at_the_edges_of_the_range),
        cmocka_unit_test(test_half_and_mixed_gradients_at_the_edges_of_the_range),
        cmocka_unit_test(test_gradients_with_extreme_random_rows),
        cmocka_unit_test(test_gradients_of_infinite_upstream_values),
        cmocka_unit_test(test_overflowing_tolerances_accept_only_the_exact_value),
    };
    return cmocka_run_group_tests_name("gradients", tests, NULL, NULL);
}
