/*
 * test_order.c -- "for scale > 0, x_i >= x_j implies y_i >= y_j (for
 * scale < 0 the order reverses). Rounding never breaks the weak order."
 *
 * Checked exactly, on the outputs of softmax and log-softmax: random rows,
 * dense runs of consecutive floats / doubles (where a non-monotone exp or a
 * badly rounded scale * (x - max) would show), ties (bitwise equal inputs
 * must give bitwise equal outputs), for positive and negative scales.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct keyed {
    double x;
    size_t i;
} keyed;

static int by_x(const void *pa, const void *pb)
{
    const keyed *a = pa, *b = pb;
    if (a->x < b->x)
        return -1;
    if (a->x > b->x)
        return 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

/* Checks the weak order of y against x over one row (no NaN in x); returns
 * the number of violations, printing the first few. */
static size_t check_row_order(softmax_dtype dt, int log, const void *x, const void *y, size_t n, double scale,
                              const char *label)
{
    keyed *k = malloc((n ? n : 1) * sizeof(keyed));
    for (size_t i = 0; i < n; i++) {
        k[i].x = buf_get(dt, x, i);
        k[i].i = i;
    }
    qsort(k, n, sizeof(keyed), by_x);
    size_t failures = 0;
    for (size_t j = 1; j < n; j++) {
        size_t a = k[j - 1].i, b = k[j].i; /* x_a <= x_b */
        double ya = buf_get(dt, y, a), yb = buf_get(dt, y, b);
        const char *broken = NULL;
        if (k[j - 1].x == k[j].x) {
            if (buf_bits_equal(dt, x, a, x, b) ? !buf_bits_equal(dt, y, a, y, b) : !(ya == yb))
                broken = "equal inputs, different outputs";
        } else if (scale > 0 && !(ya <= yb)) {
            broken = "order broken";
        } else if (scale < 0 && !(ya >= yb)) {
            broken = "reverse order broken";
        } else if (scale == 0 && !(ya == yb)) {
            broken = "scale 0 not uniform";
        }
        if (broken) {
            if (failures < 5)
                fprintf(stderr, "  FAIL %s_%s %s n=%zu scale=%g: %s: x[%zu]=%a <= x[%zu]=%a but y = %a, %a\n",
                        log ? "log_softmax" : "softmax", dtype_name(dt), label, n, scale, broken, a, k[j - 1].x, b,
                        k[j].x, ya, yb);
            failures++;
        }
    }
    free(k);
    return failures;
}

/* Runs both forward functions on rows x cols and checks every row. */
static size_t check_order(softmax_dtype dt, const void *x, size_t rows, size_t cols, double scale, const char *label)
{
    size_t failures = 0, n = rows * cols;
    void *y = buf_alloc(dt, n);
    for (int log = 0; log <= 1; log++) {
        int rc = call_forward(dt, log, x, y, rows, cols, scale);
        if (rc != SOFTMAX_OK) {
            fprintf(stderr, "  FAIL %s: status %d\n", label, rc);
            failures++;
            continue;
        }
        for (size_t r = 0; r < rows; r++)
            failures += check_row_order(dt, log, buf_cat(dt, x, r * cols), buf_cat(dt, y, r * cols), cols,
                                        scale_as(dt, scale), label);
    }
    free(y);
    return failures;
}

static const double scales[] = {1.0, 0.5, 7.3, 100.0, 1e30, 1e-30, -1.0, -0.5, -100.0, -1e30, 0.0};

static void test_random_rows_keep_the_weak_order(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 401);
    size_t failures = 0;
    static const size_t extra[] = {63, 64, 65, 100, 129, 1000, 4097};
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < 40 + ARRAY_LEN(extra); l++) {
            size_t n = l < 40 ? l + 1 : extra[l - 40];
            void *x = buf_alloc(dt, 2 * n);
            for (int dist = 0; dist < 4; dist++) {
                for (size_t i = 0; i < 2 * n; i++) {
                    double v = dist == 0   ? 10 * rng_normal(&rng)
                               : dist == 1 ? (double)((int)rng_below(&rng, 7) - 3) * 0.75
                               : dist == 2 ? 1.0 + (double)rng_below(&rng, 16) * dtype_eps(dt)
                                           : rng_range(&rng, -1.0, 1.0) * dtype_max(dt);
                    buf_set(dt, x, i, v);
                }
                for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                    failures += check_order(dt, x, 2, n, scales[s], "random row");
            }
            free(x);
        }
    }
    if (failures)
        fail_msg("%zu order violations (details above)", failures);
}

/* x_i = x0 stepped i times by nextafter: the closest inputs the format has. */
static void fill_run(softmax_dtype dt, void *x, size_t n, double x0, int down)
{
    double v = x0;
    for (size_t i = 0; i < n; i++) {
        buf_set(dt, x, i, v);
        if (dt == SOFTMAX_DTYPE_F32)
            v = nextafterf((float)v, down ? -INFINITY : INFINITY);
        else
            v = nextafter(v, down ? -INFINITY : INFINITY);
    }
}

static void test_dense_runs_of_consecutive_values(void **state)
{
    (void)state;
    enum { RUN = 2048 };
    test_rng rng;
    rng_seed(&rng, 402);
    size_t failures = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        const double starts[] = {0.0,
                                 1.0,
                                 -1.0,
                                 2.0,
                                 100.0,
                                 -100.0,
                                 88.0,
                                 1e-30,
                                 1e30,
                                 1e4,
                                 dtype_max(dt),
                                 -dtype_max(dt),
                                 dtype_min_normal(dt)};
        const double run_scales[] = {1.0, 0.5, 7.3, 100.0, 1e30, 1e-30, dtype_max(dt), -1.0, -100.0, -1e30};
        void *x = buf_alloc(dt, RUN), *shuffled = buf_alloc(dt, RUN);
        for (size_t st = 0; st < ARRAY_LEN(starts); st++) {
            for (int down = 0; down <= 1; down++) {
                /* stepping past the largest finite value would give +inf */
                if (starts[st] == dtype_max(dt) && !down)
                    continue;
                if (starts[st] == -dtype_max(dt) && down)
                    continue;
                fill_run(dt, x, RUN, starts[st], down);
                /* the same values in a random order: the order check sorts
                 * by x, so the positions (vector lanes) do not matter */
                memcpy(shuffled, x, RUN * dtype_size(dt));
                for (size_t i = RUN - 1; i > 0; i--) {
                    size_t j = rng_below(&rng, i + 1);
                    double t = buf_get(dt, shuffled, i);
                    buf_set(dt, shuffled, i, buf_get(dt, shuffled, j));
                    buf_set(dt, shuffled, j, t);
                }
                char label[64];
                snprintf(label, sizeof label, "run from %g %s", starts[st], down ? "down" : "up");
                for (size_t s = 0; s < ARRAY_LEN(run_scales); s++) {
                    failures += check_order(dt, x, 1, RUN, run_scales[s], label);
                    failures += check_order(dt, shuffled, 1, RUN, run_scales[s], label);
                    /* short rows from the run: a handful of neighbours */
                    failures += check_order(dt, x, RUN / 8, 8, run_scales[s], label);
                    failures += check_order(dt, shuffled, RUN / 17, 17, run_scales[s], label);
                }
            }
        }
        free(x);
        free(shuffled);
    }
    if (failures)
        fail_msg("%zu order violations in dense runs (details above)", failures);
}

static void test_ties_give_bitwise_equal_outputs(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 403);
    size_t failures = 0;
    static const size_t sizes[] = {2, 3, 7, 8, 9, 16, 17, 31, 33, 64, 65, 128, 129, 1000, 4097};
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t l = 0; l < ARRAY_LEN(sizes); l++) {
            size_t n = sizes[l];
            void *x = buf_alloc(dt, 3 * n);
            /* a few distinct values repeated at random positions (so the
             * copies sit in different vector lanes, blocks and tails), plus
             * +0 / -0 */
            double pool[6];
            for (int p = 0; p < 6; p++)
                pool[p] = dtype_round(dt, 5 * rng_normal(&rng));
            pool[4] = 0.0;
            pool[5] = -0.0;
            for (size_t i = 0; i < 3 * n; i++)
                buf_set(dt, x, i, pool[rng_below(&rng, 6)]);
            for (size_t s = 0; s < ARRAY_LEN(scales); s++)
                failures += check_order(dt, x, 3, n, scales[s], "ties");
            free(x);
        }
    }
    if (failures)
        fail_msg("%zu tie or order violations (details above)", failures);
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_rows_keep_the_weak_order),
        cmocka_unit_test(test_dense_runs_of_consecutive_values),
        cmocka_unit_test(test_ties_give_bitwise_equal_outputs),
    };
    return cmocka_run_group_tests_name("order", tests, NULL, NULL);
}
