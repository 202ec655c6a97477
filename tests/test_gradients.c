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
    };
    return cmocka_run_group_tests_name("gradients", tests, NULL, NULL);
}
