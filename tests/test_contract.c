/*
 * test_contract.c -- every row of the numerics contract in softmax.h, for
 * softmax, log-softmax, their gradients and the Jacobians, in f32 and f64,
 * over row lengths on both sides of every plausible vector width.
 *
 * Each case is checked against the MPFR reference (which implements the
 * contract's special-value rules independently), at the contract's ulp
 * bound, and where the contract says "exactly" the output must be exactly
 * 0, -inf or NaN.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "reference.h"
#include "testutil.h"

static const size_t lengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257};
static const double positive_scales[] = {1.0, 0.5, 7.25, 100.0, 1e-30, 3e30};
static const double negative_scales[] = {-1.0, -0.5, -7.25, -100.0};

#define EXPECT_NO_FAILURES(count, what)                                                                                \
    do {                                                                                                               \
        if ((count) != 0)                                                                                              \
            fail_msg("%s: %zu failures (details above)", what, (size_t)(count));                                       \
    } while (0)

/* ------------------------------------------------------------ row builders */

static double finite_value(test_rng *rng)
{
    return 10.0 * rng_normal(rng);
}

/* Row of n finite values, each replaced by `special` with probability p; at
 * least one element stays finite when keep_finite. */
static void fill_row(softmax_dtype dt, void *buf, size_t n, test_rng *rng, double special, double p, int keep_finite)
{
    size_t finite = 0;
    for (size_t i = 0; i < n; i++) {
        int sp = rng_uniform(rng) < p;
        buf_set(dt, buf, i, sp ? special : finite_value(rng));
        finite += !sp;
    }
    if (keep_finite && finite == 0)
        buf_set(dt, buf, rng_below(rng, n), finite_value(rng));
}

static void fill_constant(softmax_dtype dt, void *buf, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        buf_set(dt, buf, i, v);
}

/* Three rows: random, the row under test in the middle, random. The normal
 * neighbours catch a special case leaking out of its row. */
static void *sandwich(softmax_dtype dt, size_t cols, test_rng *rng, void **middle)
{
    void *x = buf_alloc(dt, 3 * cols);
    fill_row(dt, x, cols, rng, 0.0, 0.0, 1);
    fill_row(dt, buf_at(dt, x, 2 * cols), cols, rng, 0.0, 0.0, 1);
    *middle = buf_at(dt, x, cols);
    return x;
}

/* ---------------------------------------------------------- forward rules */

static void test_minus_inf_entries_get_exactly_zero(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 101);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            void *x = buf_alloc(dt, 3 * n);
            /* random mask; mask at both ends; a single masked middle element */
            fill_row(dt, x, n, &rng, -INFINITY, 0.3, 1);
            fill_row(dt, buf_at(dt, x, n), n, &rng, 0.0, 0.0, 1);
            fill_row(dt, buf_at(dt, x, 2 * n), n, &rng, 0.0, 0.0, 1);
            if (n >= 2) {
                buf_set(dt, x, n, -INFINITY);
                buf_set(dt, x, 2 * n - 1, -INFINITY);
                buf_set(dt, x, 2 * n + n / 2, -INFINITY);
            }
            for (int log = 0; log <= 1; log++)
                for (size_t s = 0; s < ARRAY_LEN(positive_scales); s++)
                    failures += check_forward(dt, log, x, 3, n, positive_scales[s], "-inf mask", NULL);
            free(x);
        }
    }
    EXPECT_NO_FAILURES(failures, "-inf entries");
}

static void test_plus_inf_entries_share_the_mass(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 102);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            void *middle;
            void *x = sandwich(dt, n, &rng, &middle);
            fill_row(dt, middle, n, &rng, -INFINITY, 0.2, 0);
            size_t k = 1 + rng_below(&rng, n < 3 ? n : 3);
            for (size_t j = 0; j < k; j++)
                buf_set(dt, middle, rng_below(&rng, n), INFINITY);
            for (int log = 0; log <= 1; log++) {
                for (size_t s = 0; s < ARRAY_LEN(positive_scales); s++)
                    failures += check_forward(dt, log, x, 3, n, positive_scales[s], "+inf entries", NULL);
                /* scale < 0: +inf entries are masked, -inf ones share */
                for (size_t s = 0; s < ARRAY_LEN(negative_scales); s++)
                    failures += check_forward(dt, log, x, 3, n, negative_scales[s], "+inf entries, softmin", NULL);
            }
            /* The +inf entries get bitwise equal outputs. */
            void *y = buf_alloc(dt, n);
            assert_int_equal(call_forward(dt, 0, middle, y, 1, n, 1.0), SOFTMAX_OK);
            size_t first = n;
            for (size_t i = 0; i < n; i++) {
                if (buf_get(dt, middle, i) != INFINITY)
                    continue;
                if (first == n)
                    first = i;
                else if (!buf_bits_equal(dt, y, i, y, first))
                    failures++, fprintf(stderr, "  FAIL %s n=%zu: +inf entries %zu and %zu differ\n", dtype_name(dt), n,
                                        first, i);
            }
            free(y);
            free(x);
        }
    }
    EXPECT_NO_FAILURES(failures, "+inf entries");
}

static void test_fully_masked_rows_give_zeros_never_nan(void **state)
{
    (void)state;
    static const double scales[] = {1.0, -1.0, 0.0, -0.0, 0.5, INFINITY, -INFINITY, 1e30, -7.25};
    test_rng rng;
    rng_seed(&rng, 103);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            void *middle;
            void *x = sandwich(dt, n, &rng, &middle);
            for (int log = 0; log <= 1; log++) {
                for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
                    fill_constant(dt, middle, n, -INFINITY);
                    failures += check_forward(dt, log, x, 3, n, scales[s], "all -inf", NULL);
                    /* all +inf: every z is -inf for scale < 0 (zeros), +inf
                     * for scale > 0 (uniform), and scale 0 is uniform. */
                    fill_constant(dt, middle, n, INFINITY);
                    failures += check_forward(dt, log, x, 3, n, scales[s], "all +inf", NULL);
                }
            }
            free(x);
        }
    }
    EXPECT_NO_FAILURES(failures, "fully masked rows");
}

static void test_any_nan_makes_the_whole_row_nan(void **state)
{
    (void)state;
    static const double scales[] = {1.0, -1.0, 0.0, INFINITY, -INFINITY, 0.5};
    test_rng rng;
    rng_seed(&rng, 104);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            size_t positions[3] = {0, n / 2, n - 1};
            for (size_t p = 0; p < 3; p++) {
                void *middle;
                void *x = sandwich(dt, n, &rng, &middle);
                for (int variant = 0; variant < 4; variant++) {
                    if (variant == 0)
                        fill_row(dt, middle, n, &rng, 0.0, 0.0, 1);
                    else if (variant == 1)
                        fill_row(dt, middle, n, &rng, INFINITY, 0.3, 0);
                    else if (variant == 2)
                        fill_constant(dt, middle, n, -INFINITY);
                    else
                        fill_row(dt, middle, n, &rng, -INFINITY, 0.5, 0);
                    buf_set(dt, middle, positions[p], variant == 3 ? -NAN : NAN);
                    for (int log = 0; log <= 1; log++)
                        for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                            failures += check_forward(dt, log, x, 3, n, scales[s], "NaN in row", NULL);
                }
                free(x);
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "NaN rows");
}

static void test_zero_scale_is_uniform_over_unmasked(void **state)
{
    (void)state;
    static const double zeros[] = {0.0, -0.0};
    test_rng rng;
    rng_seed(&rng, 105);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            void *x = buf_alloc(dt, 4 * n);
            fill_row(dt, x, n, &rng, 0.0, 0.0, 1);
            fill_row(dt, buf_at(dt, x, n), n, &rng, -INFINITY, 0.4, 1);
            fill_row(dt, buf_at(dt, x, 2 * n), n, &rng, INFINITY, 0.4, 0);
            for (size_t i = 0; i < n; i++) /* huge magnitudes: scale * x is still 0 */
                buf_set(dt, x, 3 * n + i, (i % 2 ? -1.0 : 1.0) * dtype_max(dt) / (double)(1 + i % 3));
            for (int log = 0; log <= 1; log++) {
                for (size_t z = 0; z < 2; z++) {
                    failures += check_forward(dt, log, x, 4, n, zeros[z], "scale 0", NULL);
                    void *y = buf_alloc(dt, 4 * n);
                    assert_int_equal(call_forward(dt, log, x, y, 4, n, zeros[z]), SOFTMAX_OK);
                    /* uniform: every unmasked entry of a row has the same bits */
                    for (size_t r = 0; r < 4; r++) {
                        size_t first = n;
                        for (size_t i = 0; i < n; i++) {
                            if (buf_get(dt, x, r * n + i) == -INFINITY)
                                continue;
                            if (first == n)
                                first = i;
                            else if (!buf_bits_equal(dt, y, r * n + i, y, r * n + first))
                                failures++, fprintf(stderr, "  FAIL scale 0 %s n=%zu row %zu: [%zu] != [%zu]\n",
                                                    dtype_name(dt), n, r, i, first);
                        }
                    }
                    free(y);
                }
            }
            free(x);
        }
    }
    EXPECT_NO_FAILURES(failures, "scale 0");
}

static void test_infinite_scale_is_one_hot_with_ties_sharing(void **state)
{
    (void)state;
    static const double scales[] = {INFINITY, -INFINITY};
    test_rng rng;
    rng_seed(&rng, 106);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            void *x = buf_alloc(dt, 5 * n);
            fill_row(dt, x, n, &rng, 0.0, 0.0, 1); /* distinct values */
            for (size_t i = 0; i < n; i++)         /* small integers: ties, and zeros (0 * inf) */
                buf_set(dt, x, n + i, (double)((int)rng_below(&rng, 4) - 1));
            fill_row(dt, buf_at(dt, x, 2 * n), n, &rng, -INFINITY, 0.3, 1);
            fill_row(dt, buf_at(dt, x, 3 * n), n, &rng, INFINITY, 0.2, 0);
            for (size_t i = 0; i < n; i++) /* ties at the extremes */
                buf_set(dt, x, 4 * n + i, i % 3 == 0 ? 2.5 : (i % 3 == 1 ? -2.5 : 0.0));
            for (int log = 0; log <= 1; log++)
                for (size_t s = 0; s < 2; s++)
                    failures += check_forward(dt, log, x, 5, n, scales[s], "infinite scale", NULL);
            free(x);
        }
    }
    EXPECT_NO_FAILURES(failures, "infinite scale");
}

static void test_negative_scale_is_softmin(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 107);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            size_t n = lengths[l];
            void *x = buf_alloc(dt, 2 * n), *y = buf_alloc(dt, 2 * n);
            fill_row(dt, x, 2 * n, &rng, 0.0, 0.0, 1);
            for (int log = 0; log <= 1; log++) {
                for (size_t s = 0; s < ARRAY_LEN(negative_scales); s++) {
                    failures += check_forward(dt, log, x, 2, n, negative_scales[s], "softmin", NULL);
                    /* the arg min of x gets the largest output */
                    assert_int_equal(call_forward(dt, log, x, y, 2, n, negative_scales[s]), SOFTMAX_OK);
                    for (size_t r = 0; r < 2; r++) {
                        size_t amin = 0, amax = 0;
                        for (size_t i = 1; i < n; i++) {
                            if (buf_get(dt, x, r * n + i) < buf_get(dt, x, r * n + amin))
                                amin = i;
                            if (buf_get(dt, y, r * n + i) > buf_get(dt, y, r * n + amax))
                                amax = i;
                        }
                        if (buf_get(dt, y, r * n + amax) != buf_get(dt, y, r * n + amin))
                            failures++, fprintf(stderr, "  FAIL softmin %s n=%zu: arg min %zu is not the top\n",
                                                dtype_name(dt), n, amin);
                    }
                }
            }
            free(x);
            free(y);
        }
    }
    EXPECT_NO_FAILURES(failures, "negative scale");
}

static void test_inputs_that_overflow_exp_without_the_max(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 108);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        double big = dtype_max(dt);
        const double scales[] = {1.0, 0.5, 100.0, 1e30, big, -1.0, -1e30, -big, 1e-30, 7.25};
        enum { ROWS = 6, COLS = 37 };
        void *x = buf_alloc(dt, ROWS * COLS);
        for (size_t i = 0; i < COLS; i++) {
            buf_set(dt, x, 0 * COLS + i, 90.0 + (double)(i % 11));                           /* 90 .. 100 */
            buf_set(dt, x, 1 * COLS + i, (i % 2 ? -1e4 : 1e4) + (double)i);                  /* +-1e4 */
            buf_set(dt, x, 2 * COLS + i, (i % 2 ? -0.9 : 0.9) * big * rng_uniform(&rng));    /* +-3e38 / +-1.6e308 */
            buf_set(dt, x, 3 * COLS + i, big - (double)i * ulp_p(big, dtype_precision(dt))); /* top floats */
            buf_set(dt, x, 4 * COLS + i, -big + (double)(i % 4) * ulp_p(big, dtype_precision(dt)));
            buf_set(dt, x, 5 * COLS + i, 1e4 + 0.25 * (double)i);
        }
        for (int log = 0; log <= 1; log++)
            for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                failures += check_forward(dt, log, x, ROWS, COLS, scales[s], "overflow-prone", NULL);
        free(x);
    }
    EXPECT_NO_FAILURES(failures, "overflow-prone inputs");
}

/* x - max overflows the format although scale * x is small: the contract
 * ("no overflow for any finite input and any finite scale") still holds. */
static void test_differences_beyond_the_format_with_a_tiny_scale(void **state)
{
    (void)state;
    size_t failures = 0;
    const double f32_row[4] = {3e38, -3e38, 0.0, 1e38};
    const double f64_row[4] = {1.5e308, -1.5e308, 0.0, 5e307};
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        const double *row = dt == SOFTMAX_DTYPE_F32 ? f32_row : f64_row;
        /* z = scale * x = {3, -3, 0, 1}: nothing near an overflow */
        double scale = dt == SOFTMAX_DTYPE_F32 ? 1e-38 : 1e-308;
        void *x = buf_alloc(dt, 4);
        for (int i = 0; i < 4; i++)
            buf_set(dt, x, (size_t)i, row[i]);
        for (int log = 0; log <= 1; log++) {
            failures += check_forward(dt, log, x, 1, 4, scale, "x - max overflows", NULL);
            failures += check_forward(dt, log, x, 1, 4, -scale, "x - min overflows", NULL);
        }
        free(x);
    }
    EXPECT_NO_FAILURES(failures, "differences beyond the format");
}

static void test_denormal_inputs_and_scales(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        double tiny = dtype_true_min(dt), minn = dtype_min_normal(dt), big = dtype_max(dt);
        enum { COLS = 19 };
        void *x = buf_alloc(dt, 2 * COLS);
        for (size_t i = 0; i < COLS; i++) {
            double v = (i % 5 == 0) ? 0.0 : (i % 5 == 1 ? -0.0 : (double)(i * 37 % 101) * tiny);
            buf_set(dt, x, i, i % 2 ? -v : v);
            buf_set(dt, x, COLS + i, (double)(i % 7) * minn / 7.0);
        }
        const double scales[] = {1.0, -1.0, 1e30, big, -big, 0.5 / minn, 1e-30};
        for (int log = 0; log <= 1; log++)
            for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                failures += check_forward(dt, log, x, 2, COLS, scales[s], "denormal inputs", NULL);
        /* a denormal scale applied to large inputs */
        void *xl = buf_alloc(dt, COLS);
        for (size_t i = 0; i < COLS; i++)
            buf_set(dt, xl, i, big / (double)(1 + i) * (i % 2 ? -1.0 : 1.0));
        for (int log = 0; log <= 1; log++) {
            failures += check_forward(dt, log, xl, 1, COLS, 1e6 * tiny, "denormal scale", NULL);
            failures += check_forward(dt, log, xl, 1, COLS, -3 * tiny, "denormal negative scale", NULL);
        }
        free(xl);
        free(x);
    }
    EXPECT_NO_FAILURES(failures, "denormals");
}

/* ------------------------------------------------------------ empty shapes */

static void test_empty_shapes_succeed_and_touch_nothing(void **state)
{
    (void)state;
    static const softmax_op grad_ops[] = {SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
                                          SOFTMAX_OP_LOG_SOFTMAX_JVP};
    const size_t shapes[][2] = {{0, 5}, {5, 0}, {0, 0}, {SIZE_MAX, 0}, {0, SIZE_MAX}};
    unsigned char out[64];
    const double in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t k = 0; k < ARRAY_LEN(shapes); k++) {
            size_t rows = shapes[k][0], cols = shapes[k][1];
            for (int log = 0; log <= 1; log++) {
                assert_int_equal(call_forward(dt, log, NULL, NULL, rows, cols, 1.0), SOFTMAX_OK);
                fill_sentinel(out, sizeof out);
                assert_int_equal(call_forward(dt, log, in, out, rows, cols, 1.0), SOFTMAX_OK);
                assert_true(is_sentinel(out, sizeof out));
            }
            for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
                assert_int_equal(call_grad(grad_ops[g], dt, NULL, NULL, NULL, rows, cols, 1.0), SOFTMAX_OK);
                fill_sentinel(out, sizeof out);
                assert_int_equal(call_grad(grad_ops[g], dt, in, in, out, rows, cols, 1.0), SOFTMAX_OK);
                assert_true(is_sentinel(out, sizeof out));
            }
        }
        for (int log = 0; log <= 1; log++) {
            assert_int_equal(call_jacobian(dt, log, NULL, 0, 1.0, NULL), SOFTMAX_OK);
            fill_sentinel(out, sizeof out);
            assert_int_equal(call_jacobian(dt, log, in, 0, 1.0, out), SOFTMAX_OK);
            assert_true(is_sentinel(out, sizeof out));
        }
        /* the general API: any zero extent, any op, any axis */
        for (int op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX_JVP; op++) {
            for (int axis = -3; axis < 3; axis++) {
                softmax_desc desc;
                assert_int_equal(softmax_desc_init(&desc, (softmax_op)op, dt, 0), SOFTMAX_OK);
                desc.ndim = 3;
                desc.shape[0] = 3;
                desc.shape[1] = 0;
                desc.shape[2] = 4;
                desc.axis = axis;
                assert_int_equal(softmax_execute(&desc, NULL, NULL, NULL), SOFTMAX_OK);
                fill_sentinel(out, sizeof out);
                assert_int_equal(softmax_execute(&desc, in, in, out), SOFTMAX_OK);
                assert_true(is_sentinel(out, sizeof out));
            }
            softmax_desc desc1;
            assert_int_equal(softmax_desc_init(&desc1, (softmax_op)op, dt, 0), SOFTMAX_OK);
            assert_int_equal(softmax_execute(&desc1, NULL, NULL, NULL), SOFTMAX_OK);
        }
    }
}

/* --------------------------------------------------------------- gradients */

static const softmax_op grad_ops[] = {SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
                                      SOFTMAX_OP_LOG_SOFTMAX_JVP};

static int op_takes_log(softmax_op op)
{
    return op != SOFTMAX_OP_SOFTMAX_BACKWARD;
}

/* Valid gradient inputs: outputs of random logits (2 * N(0, 1)). */
static void *make_outputs(softmax_dtype dt, int log, size_t rows, size_t cols, test_rng *rng, double p_mask)
{
    return reference_outputs(dt, log, rows, cols, 2.0, p_mask, rng);
}

static void *make_upstream(softmax_dtype dt, size_t n, test_rng *rng)
{
    void *b = buf_alloc(dt, n);
    for (size_t i = 0; i < n; i++)
        buf_set(dt, b, i, rng_normal(rng));
    return b;
}

static void test_gradient_of_a_fully_masked_row_is_zero(void **state)
{
    (void)state;
    static const double scales[] = {1.0, -2.0, 0.5, 0.0, INFINITY, -INFINITY, 1e30};
    test_rng rng;
    rng_seed(&rng, 201);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
            softmax_op op = grad_ops[g];
            for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
                size_t n = lengths[l];
                void *a = make_outputs(dt, op_takes_log(op), 3, n, &rng, 0.0);
                void *b = make_upstream(dt, 3 * n, &rng);
                fill_constant(dt, buf_at(dt, a, n), n, op_takes_log(op) ? -INFINITY : 0.0);
                for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                    failures += check_grad(op, dt, a, b, 3, n, scales[s], "fully masked row", NULL);
                free(a);
                free(b);
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "gradient of fully masked rows");
}

static void test_gradient_at_infinite_scale_is_zero_unless_nan(void **state)
{
    (void)state;
    static const double scales[] = {INFINITY, -INFINITY};
    test_rng rng;
    rng_seed(&rng, 202);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
            softmax_op op = grad_ops[g];
            for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
                size_t n = lengths[l];
                void *a = make_outputs(dt, op_takes_log(op), 3, n, &rng, 0.2);
                void *b = make_upstream(dt, 3 * n, &rng);
                for (size_t s = 0; s < 2; s++)
                    failures += check_grad(op, dt, a, b, 3, n, scales[s], "infinite scale", NULL);
                buf_set(dt, b, n + rng_below(&rng, n), NAN); /* NaN upstream: NaN row */
                for (size_t s = 0; s < 2; s++)
                    failures += check_grad(op, dt, a, b, 3, n, scales[s], "infinite scale, NaN in b", NULL);
                free(a);
                free(b);
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "gradient at infinite scale");
}

/* The zero rules hold for inputs that are not a forward result, where the
 * reduction alone would be NaN without a NaN input (0 * inf): an infinite
 * dy or v (both signs in one row too), an infinite y, a logy of +inf or so
 * large that exp(logy) overflows -- with an infinite scale, and in fully
 * masked rows whose upstream is infinite. */
static void test_gradient_zero_rules_with_infinite_inputs(void **state)
{
    (void)state;
    static const double inf_scales[] = {INFINITY, -INFINITY};
    static const double masked_scales[] = {1.0, -2.0, 0.0, INFINITY};
    test_rng rng;
    rng_seed(&rng, 206);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        const double huge_log = dt == SOFTMAX_DTYPE_F32 ? 200.0 : 1000.0; /* exp() overflows the type */
        for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
            softmax_op op = grad_ops[g];
            const int log = op_takes_log(op);
            for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
                size_t n = lengths[l];
                for (int kind = 0; kind < 4; kind++) {
                    void *a = make_outputs(dt, log, 3, n, &rng, 0.1);
                    void *b = make_upstream(dt, 3 * n, &rng);
                    size_t at = n + rng_below(&rng, n);
                    if (kind == 0) { /* +inf and -inf upstream in one row */
                        buf_set(dt, b, at, INFINITY);
                        buf_set(dt, b, n + rng_below(&rng, n), -INFINITY);
                    } else if (kind == 1) { /* an infinite y or logy */
                        buf_set(dt, a, at, INFINITY);
                    } else if (kind == 2) { /* exp(logy) overflows; for y: a huge y */
                        buf_set(dt, a, at, log ? huge_log : 1e30);
                        buf_set(dt, b, at, 0.0);
                    } else { /* an infinite upstream element where y is 0 or logy -inf */
                        buf_set(dt, a, at, log ? -INFINITY : 0.0);
                        buf_set(dt, b, at, rng_below(&rng, 2) ? INFINITY : -INFINITY);
                    }
                    for (size_t s = 0; s < ARRAY_LEN(inf_scales); s++)
                        failures +=
                            check_grad(op, dt, a, b, 3, n, inf_scales[s], "infinite scale, infinite inputs", NULL);
                    /* The same middle row fully masked, its upstream infinite. */
                    fill_constant(dt, buf_at(dt, a, n), n, log ? -INFINITY : 0.0);
                    buf_set(dt, b, at, INFINITY);
                    for (size_t s = 0; s < ARRAY_LEN(masked_scales); s++)
                        failures +=
                            check_grad(op, dt, a, b, 3, n, masked_scales[s], "masked row, infinite upstream", NULL);
                    free(a);
                    free(b);
                }
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "gradient zero rules with infinite inputs");
}

static void test_gradient_nan_inputs_give_nan_rows(void **state)
{
    (void)state;
    static const double scales[] = {1.0, 0.0, -1.0, 3.5};
    test_rng rng;
    rng_seed(&rng, 203);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
            softmax_op op = grad_ops[g];
            for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
                size_t n = lengths[l];
                for (int which = 0; which < 3; which++) {
                    void *a = make_outputs(dt, op_takes_log(op), 3, n, &rng, 0.1);
                    void *b = make_upstream(dt, 3 * n, &rng);
                    size_t at = n + (which == 2 ? n - 1 : rng_below(&rng, n));
                    buf_set(dt, which == 1 ? b : a, at, NAN);
                    if (which == 2) /* NaN together with a fully masked row */
                        fill_constant(dt, buf_at(dt, a, n), n - 1, op_takes_log(op) ? -INFINITY : 0.0);
                    for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                        failures += check_grad(op, dt, a, b, 3, n, scales[s], "NaN input", NULL);
                    free(a);
                    free(b);
                }
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "gradient NaN rows");
}

static void test_gradient_of_partially_masked_rows_and_zero_scale(void **state)
{
    (void)state;
    static const double scales[] = {1.0, 0.0, -0.0, -1.5, 4.0};
    test_rng rng;
    rng_seed(&rng, 204);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
            softmax_op op = grad_ops[g];
            for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
                size_t n = lengths[l];
                void *a = make_outputs(dt, op_takes_log(op), 4, n, &rng, 0.4);
                void *b = make_upstream(dt, 4 * n, &rng);
                for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                    failures += check_grad(op, dt, a, b, 4, n, scales[s], "partially masked rows", NULL);
                free(a);
                free(b);
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "gradient of partially masked rows");
}

/* One-hot rows (the output of an infinite scale or of +inf entries): the
 * softmax backward is exactly zero there; log backward / JVP follow the
 * formula. */
static void test_gradient_of_one_hot_rows(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 205);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
            softmax_op op = grad_ops[g];
            for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
                size_t n = lengths[l];
                void *a = buf_alloc(dt, n);
                fill_constant(dt, a, n, op_takes_log(op) ? -INFINITY : 0.0);
                buf_set(dt, a, rng_below(&rng, n), op_takes_log(op) ? 0.0 : 1.0);
                void *b = make_upstream(dt, n, &rng);
                failures += check_grad(op, dt, a, b, 1, n, 2.0, "one-hot row", NULL);
                free(a);
                free(b);
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "gradient of one-hot rows");
}

static void test_jacobian_special_cases(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 5, 8, 9, 17};
    test_rng rng;
    rng_seed(&rng, 206);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
            size_t n = sizes[k];
            for (int log = 0; log <= 1; log++) {
                void *y = make_outputs(dt, log, 1, n, &rng, 0.3);
                failures += check_jacobian(dt, log, y, n, INFINITY, "infinite scale", NULL, NULL);
                failures += check_jacobian(dt, log, y, n, -INFINITY, "-infinite scale", NULL, NULL);
                failures += check_jacobian(dt, log, y, n, 0.0, "scale 0", NULL, NULL);
                failures += check_jacobian(dt, log, y, n, -1.5, "partially masked", NULL, NULL);
                fill_constant(dt, y, n, log ? -INFINITY : 0.0);
                failures += check_jacobian(dt, log, y, n, 1.0, "fully masked", NULL, NULL);
                failures += check_jacobian(dt, log, y, n, INFINITY, "fully masked, infinite scale", NULL, NULL);
                /* NaN: row and column of the NaN entry are NaN */
                free(y);
                y = make_outputs(dt, log, 1, n, &rng, 0.0);
                size_t at = rng_below(&rng, n);
                buf_set(dt, y, at, NAN);
                void *jac = buf_alloc(dt, n * n);
                assert_int_equal(call_jacobian(dt, log, y, n, 1.0, jac), SOFTMAX_OK);
                for (size_t j = 0; j < n; j++) {
                    /* softmax: row `at` and column `at`; log-softmax: column `at` */
                    if (!isnan(buf_get(dt, jac, j * n + at)))
                        failures++, fprintf(stderr, "  FAIL %s jacobian %s: [%zu][%zu] is not NaN\n", fwd_name(log),
                                            dtype_name(dt), j, at);
                    if (!log && !isnan(buf_get(dt, jac, at * n + j)))
                        failures++, fprintf(stderr, "  FAIL softmax jacobian %s: [%zu][%zu] is not NaN\n",
                                            dtype_name(dt), at, j);
                }
                free(jac);
                free(y);
            }
        }
    }
    EXPECT_NO_FAILURES(failures, "Jacobian special cases");
}

/* ----------------------------------------------- log-softmax never above 0 */

/* log_softmax(z)_i = z_i - log(sum_j exp(z_j)) <= 0 exactly, since the sum
 * holds exp(z_i); it is exactly 0 where the probability is exactly 1: the
 * one element of a row, or the one element whose z is not -inf. Checked on
 * the outputs alone (no reference needed) for every data type, the row
 * lengths of every regime of the SIMD kernels (tiny, small, in cache,
 * streamed), several row counts, scales of both signs, fast mode, masks
 * that leave one element, an additive mask, and a non-last axis. */
enum log_row { LOG_ROW_RANDOM, LOG_ROW_CONFIDENT, LOG_ROW_ONE_FINITE, LOG_ROW_KINDS };

static size_t check_log_outputs(const char *what, softmax_dtype dt, const double *x_values, const void *y, size_t rows,
                                size_t n, size_t inner, double scale, const uint8_t *where)
{
    size_t failures = 0;
    double *out = malloc(rows * n * inner * sizeof *out);
    assert_non_null(out);
    assert_int_equal(softmax_convert(out, SOFTMAX_DTYPE_F64, y, dt, rows * n * inner), SOFTMAX_OK);
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < inner; k++) {
            size_t kept = 0, last_kept = 0;
            for (size_t j = 0; j < n; j++) {
                const size_t at = (r * n + j) * inner + k;
                const double z = scale * x_values[at];
                if (z != -INFINITY && (where == NULL || where[at] != 0))
                    kept++, last_kept = at;
            }
            for (size_t j = 0; j < n; j++) {
                const size_t at = (r * n + j) * inner + k;
                if (out[at] > 0 || isnan(out[at])) {
                    if (failures++ < 10)
                        fprintf(stderr, "  FAIL %s %s row %zu of %zu, n %zu, scale %g: y[%zu] = %a > 0\n", what,
                                dtype_name(dt), r, rows, n, scale, j, out[at]);
                }
            }
            if (kept == 1 && (out[last_kept] != 0 || signbit(out[last_kept]))) {
                if (failures++ < 10)
                    fprintf(stderr, "  FAIL %s %s row %zu, n %zu, scale %g: probability 1, y = %a, not +0\n", what,
                            dtype_name(dt), r, n, scale, out[last_kept]);
            }
        }
    free(out);
    return failures;
}

static void fill_log_rows(test_rng *rng, double *x, size_t rows, size_t n, size_t inner, double scale, int kind)
{
    const double excluded = scale < 0 ? INFINITY : -INFINITY; /* z = -inf */
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < inner; k++) {
            const size_t top = rng_below(rng, n);
            const double gap = (double)(1u << rng_below(rng, 11)); /* 1 .. 1024 */
            for (size_t j = 0; j < n; j++) {
                double v;
                if (kind == LOG_ROW_RANDOM)
                    v = 4 * rng_normal(rng);
                else if (kind == LOG_ROW_CONFIDENT)
                    v = j == top ? gap : -rng_uniform(rng);
                else
                    v = j == top ? 3 * rng_normal(rng) : excluded;
                /* Representable in bf16 / f16 (the inputs are converted):
                 * small integers and halves. */
                v = isinf(v) ? v : ldexp(nearbyint(ldexp(v, 1)), -1);
                x[(r * n + j) * inner + k] = scale < 0 && kind == LOG_ROW_CONFIDENT ? -v : v;
            }
        }
}

static size_t run_log_case(test_rng *rng, softmax_dtype dt, size_t rows, size_t n, size_t inner, double scale, int kind,
                           int fast, int mask_kind)
{
    const size_t count = rows * n * inner;
    double *x = malloc(count * sizeof *x);
    void *xt = malloc(count * dtype_size(dt));
    void *y = malloc(count * dtype_size(dt));
    float *mask = NULL;
    uint8_t *where = NULL;
    assert_true(x && xt && y);
    fill_log_rows(rng, x, rows, n, inner, scale, kind);
    assert_int_equal(softmax_convert(xt, dt, x, SOFTMAX_DTYPE_F64, count), SOFTMAX_OK);
    /* The converted values, as the library sees them. */
    assert_int_equal(softmax_convert(x, SOFTMAX_DTYPE_F64, xt, dt, count), SOFTMAX_OK);
    softmax_desc d;
    softmax_desc_init(&d, SOFTMAX_OP_LOG_SOFTMAX, dt, n);
    d.ndim = 3;
    d.shape[0] = rows;
    d.shape[1] = n;
    d.shape[2] = inner;
    d.axis = 1;
    d.scale = scale;
    d.flags = fast ? SOFTMAX_FLAG_FAST : 0;
    if (mask_kind == 1) {
        /* `where` keeping one element of each row. */
        where = calloc(count, 1);
        assert_non_null(where);
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < inner; k++)
                where[(r * n + rng_below(rng, n)) * inner + k] = 1;
        d.where = where;
    } else if (mask_kind == 2) {
        /* An additive mask of small finite values (f32). */
        mask = malloc(count * sizeof *mask);
        assert_non_null(mask);
        for (size_t i = 0; i < count; i++)
            mask[i] = (float)ldexp(nearbyint(ldexp(rng_normal(rng), 4)), -4);
        d.mask = mask;
        d.mask_dtype = SOFTMAX_DTYPE_F32;
        for (size_t i = 0; i < count; i++)
            x[i] = x[i] + (double)mask[i] / scale; /* z = scale * x + mask, for the checker */
    }
    const int status = softmax_execute(&d, xt, NULL, y);
    size_t failures = 0;
    if (status != SOFTMAX_OK) {
        fprintf(stderr, "  FAIL log-softmax %s n %zu: status %d (%s)\n", dtype_name(dt), n, status,
                softmax_last_error());
        failures = 1;
    } else {
        char what[64];
        snprintf(what, sizeof what, "log-softmax%s%s%s", fast ? " fast" : "",
                 mask_kind == 1   ? " where"
                 : mask_kind == 2 ? " add-mask"
                                  : "",
                 inner > 1 ? " axis 1" : "");
        failures = check_log_outputs(what, dt, x, y, rows, n, inner, scale, where);
    }
    free(x);
    free(xt);
    free(y);
    free(mask);
    free(where);
    return failures;
}

static void test_log_softmax_is_never_above_zero(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 0x106);
    static const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    /* Around one vector (4, 8, 16 lanes), eight vectors, one block, and
     * the in-cache limits (2^17 f64, 2^18 f32 elements). */
    static const size_t row_lengths[] = {1, 2, 3, 5, 8, 9, 16, 17, 33, 64, 65, 128, 129, 1000, 4097};
    static const double scales[] = {1.0, 3.0, -0.25, 1e-3};
    size_t failures = 0;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t l = 0; l < sizeof row_lengths / sizeof row_lengths[0]; l++)
            for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++)
                for (int kind = 0; kind < LOG_ROW_KINDS; kind++) {
                    const size_t n = row_lengths[l], rows = 1 + (l + s + (size_t)kind) % 5;
                    failures += run_log_case(&rng, types[t], rows, n, 1, scales[s], kind, 0, 0);
                    failures += run_log_case(&rng, types[t], rows, n, 1, scales[s], kind, 1, 0);
                    if (kind != LOG_ROW_ONE_FINITE) {
                        failures += run_log_case(&rng, types[t], rows, n, 1, scales[s], kind, 0, 1);
                        if (types[t] == SOFTMAX_DTYPE_F32 && scales[s] > 0.1)
                            failures += run_log_case(&rng, types[t], rows, n, 1, scales[s], kind, 0, 2);
                    }
                    if (n <= 129)
                        failures += run_log_case(&rng, types[t], 2, n, 1 + (l % 20), scales[s], kind, 0, 0);
                }
    /* Streamed rows (beyond 1 MiB of f32 / f64). */
    for (size_t t = 0; t < 2; t++)
        for (int kind = 0; kind < LOG_ROW_KINDS; kind++) {
            failures +=
                run_log_case(&rng, types[t], 1, 300000, 1, kind == LOG_ROW_RANDOM ? -0.5 : 1.0, kind, kind == 1, 0);
        }
    EXPECT_NO_FAILURES(failures, "log-softmax never above 0, exactly 0 at probability 1");
}

/* Probability exactly 1 under the special scales (0, -0, +-inf, a scale
 * that is 0 in f32) and for rows with one kept element: log-softmax +0,
 * not -0 (scale 0 on a row of one gave -log 1 = -0 on the SIMD paths). */
static void test_log_softmax_at_probability_one_is_plus_zero(void **state)
{
    (void)state;
    static const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    static const double scales[] = {0.0, -0.0, INFINITY, -INFINITY, 1e-300, 1.0, -2.5};
    static const size_t row_lengths[] = {1, 3, 17, 40};
    size_t failures = 0;
    for (size_t t = 0; t < ARRAY_LEN(types); t++)
        for (size_t s = 0; s < ARRAY_LEN(scales); s++)
            for (size_t l = 0; l < ARRAY_LEN(row_lengths); l++) {
                const size_t n = row_lengths[l], rows = 3;
                double x[3 * 40];
                for (size_t r = 0; r < rows; r++)
                    for (size_t j = 0; j < n; j++) {
                        /* row 0: one element kept (the rest masked: -inf, +inf for a scale < 0; at
                         * scale +-0 the -inf are masked), row 1: a
                         * single +inf, row 2: one clear extreme (one-hot at +-inf scale) */
                        const double masked = scales[s] < 0 ? INFINITY : -INFINITY;
                        const double v = r == 0 ? (j == n / 2 ? 0.5 : masked)
                                         : r == 1
                                             ? (j == n / 3 ? (scales[s] < 0 ? -INFINITY : INFINITY) : 1.0)
                                             : (j == n - 1 ? (scales[s] < 0 ? -4.0 : 4.0) : 0.25 * (double)(j % 3));
                        x[r * n + j] = n == 1 ? 2.0 : v;
                    }
                void *xt = malloc(rows * n * dtype_size(types[t])), *y = malloc(rows * n * dtype_size(types[t]));
                assert_true(xt && y);
                assert_int_equal(softmax_convert(xt, types[t], x, SOFTMAX_DTYPE_F64, rows * n), SOFTMAX_OK);
                softmax_desc d;
                softmax_desc_init(&d, SOFTMAX_OP_LOG_SOFTMAX, types[t], n);
                d.ndim = 2;
                d.shape[0] = rows;
                d.shape[1] = n;
                d.axis = 1;
                d.scale = scales[s];
                assert_int_equal(softmax_execute(&d, xt, NULL, y), SOFTMAX_OK);
                double out[3 * 40];
                assert_int_equal(softmax_convert(out, SOFTMAX_DTYPE_F64, y, types[t], rows * n), SOFTMAX_OK);
                for (size_t r = 0; r < rows; r++) {
                    /* which element has probability 1, if one does */
                    size_t one = n;
                    if (n == 1)
                        one = 0;
                    else if (r == 0 && scales[s] != 0)
                        one = n / 2;
                    else if (r == 1 && scales[s] != 0)
                        one = n / 3;
                    else if (r == 2 && isinf(scales[s]))
                        one = n - 1;
                    if (r == 0 && scales[s] == 0 && n > 1)
                        one = n / 2; /* scale 0: uniform over the kept, which is one element */
                    if (one == n)
                        continue;
                    if (out[r * n + one] != 0 || signbit(out[r * n + one])) {
                        if (failures++ < 10)
                            fprintf(stderr, "  FAIL %s n %zu scale %g row %zu: y[%zu] = %a, not +0\n",
                                    dtype_name(types[t]), n, scales[s], r, one, out[r * n + one]);
                    }
                }
                free(xt);
                free(y);
            }
    EXPECT_NO_FAILURES(failures, "log-softmax +0 at probability 1");
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minus_inf_entries_get_exactly_zero),
        cmocka_unit_test(test_plus_inf_entries_share_the_mass),
        cmocka_unit_test(test_fully_masked_rows_give_zeros_never_nan),
        cmocka_unit_test(test_any_nan_makes_the_whole_row_nan),
        cmocka_unit_test(test_zero_scale_is_uniform_over_unmasked),
        cmocka_unit_test(test_log_softmax_at_probability_one_is_plus_zero),
        cmocka_unit_test(test_infinite_scale_is_one_hot_with_ties_sharing),
        cmocka_unit_test(test_negative_scale_is_softmin),
        cmocka_unit_test(test_inputs_that_overflow_exp_without_the_max),
        cmocka_unit_test(test_differences_beyond_the_format_with_a_tiny_scale),
        cmocka_unit_test(test_denormal_inputs_and_scales),
        cmocka_unit_test(test_empty_shapes_succeed_and_touch_nothing),
        cmocka_unit_test(test_gradient_of_a_fully_masked_row_is_zero),
        cmocka_unit_test(test_gradient_at_infinite_scale_is_zero_unless_nan),
        cmocka_unit_test(test_gradient_nan_inputs_give_nan_rows),
        cmocka_unit_test(test_gradient_zero_rules_with_infinite_inputs),
        cmocka_unit_test(test_gradient_of_partially_masked_rows_and_zero_scale),
        cmocka_unit_test(test_gradient_of_one_hot_rows),
        cmocka_unit_test(test_jacobian_special_cases),
        cmocka_unit_test(test_log_softmax_is_never_above_zero),
    };
    return cmocka_run_group_tests_name("contract", tests, NULL, NULL);
}
