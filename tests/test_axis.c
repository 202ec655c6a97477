/*
 * test_axis.c -- softmax_execute(): every op along every axis (positive and
 * negative) of 1-d to 4-d tensors (and one 8-d), against MPFR line by line,
 * and against the pinned last-axis functions applied to the transposed
 * tensor; in place equals out of place; zero extents; extents past ndim
 * ignored; the f32 scale applied in float precision or better.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "reference.h"
#include "testutil.h"

typedef struct geometry {
    size_t outer, n, inner, total;
    int axis; /* normalised: 0 .. ndim-1 */
} geometry;

static geometry geometry_of(const softmax_desc *desc)
{
    geometry g = {1, 1, 1, 1, desc->axis < 0 ? desc->axis + desc->ndim : desc->axis};
    for (int k = 0; k < desc->ndim; k++) {
        if (k < g.axis)
            g.outer *= desc->shape[k];
        else if (k == g.axis)
            g.n = desc->shape[k];
        else
            g.inner *= desc->shape[k];
    }
    g.total = g.outer * g.n * g.inner;
    return g;
}

static int is_forward(softmax_op op)
{
    return op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX;
}

/* Inputs suited to the op: logits for the forward ops, probabilities in
 * (0, 1) for the softmax backward, log-probabilities in (-5, 0] for the
 * log-softmax ops (the formulas hold for any such values). */
static void fill_inputs(softmax_op op, softmax_dtype dt, void *src, void *grad, size_t total, test_rng *rng)
{
    for (size_t i = 0; i < total; i++) {
        double v;
        if (is_forward(op))
            v = 3.0 * rng_normal(rng);
        else if (op == SOFTMAX_OP_SOFTMAX_BACKWARD)
            v = rng_uniform(rng);
        else
            v = -5.0 * rng_uniform(rng);
        buf_set(dt, src, i, v);
        buf_set(dt, grad, i, rng_normal(rng));
    }
}

/* Checks dst line by line against the reference. */
static size_t check_lines(const softmax_desc *desc, const void *src, const void *grad, const void *dst,
                          double scale_used, const char *label)
{
    geometry g = geometry_of(desc);
    softmax_dtype dt = desc->dtype;
    size_t failures = 0;
    ref_vec ref;
    ref_vec_init(&ref, g.n);
    double *local = malloc((g.n + 1) * sizeof(double)), *global = malloc((g.n + 1) * sizeof(double));
    double *tol = malloc((g.n + 1) * sizeof(double));
    err_stats st;
    err_stats_init(&st);
    for (size_t o = 0; o < g.outer; o++) {
        for (size_t i = 0; i < g.inner; i++) {
            size_t base = o * g.n * g.inner + i;
            ref_line sl = ref_line_make(dt, buf_cat(dt, src, base), g.n, g.inner);
            ref_line gl = ref_line_make(dt, buf_cat(dt, grad, base), g.n, g.inner);
            ref_line dl = ref_line_make(dt, buf_cat(dt, dst, base), g.n, g.inner);
            if (is_forward(desc->op)) {
                int log = desc->op == SOFTMAX_OP_LOG_SOFTMAX;
                ref_softmax(&ref, sl, scale_used, log);
                failures += log ? check_log_softmax_line(&ref, dl, contract_ulp_bound(dt), &st, label)
                                : check_softmax_line(&ref, dl, contract_ulp_bound(dt), &st, label);
            } else {
                ref_grad(desc->op, &ref, sl, gl, scale_used, local, global);
                grad_tolerance(tol, local, global, g.n, dt, scale_used);
                failures += check_tolerance_line(&ref, tol, dl, &st, label);
            }
        }
    }
    free(local);
    free(global);
    free(tol);
    ref_vec_free(&ref);
    return failures;
}

/* [outer, n, inner] -> [outer, inner, n] */
static void *to_last_axis(softmax_dtype dt, const void *t, geometry g)
{
    void *out = buf_alloc(dt, g.total);
    size_t es = dtype_size(dt);
    for (size_t o = 0; o < g.outer; o++)
        for (size_t k = 0; k < g.n; k++)
            for (size_t i = 0; i < g.inner; i++)
                memcpy(buf_at(dt, out, (o * g.inner + i) * g.n + k), buf_cat(dt, t, (o * g.n + k) * g.inner + i), es);
    return out;
}

/* Per-element gradient tolerances (grad_tolerance of each line), in the
 * tensor's own layout. */
static double *gradient_tolerances(const softmax_desc *desc, const void *src, const void *grad, double scale_used)
{
    geometry g = geometry_of(desc);
    softmax_dtype dt = desc->dtype;
    double *all = malloc((g.total + 1) * sizeof(double));
    double *local = malloc((g.n + 1) * sizeof(double)), *global = malloc((g.n + 1) * sizeof(double));
    double *tol = malloc((g.n + 1) * sizeof(double));
    ref_vec ref;
    ref_vec_init(&ref, g.n);
    for (size_t o = 0; o < g.outer; o++) {
        for (size_t i = 0; i < g.inner; i++) {
            size_t base = o * g.n * g.inner + i;
            ref_grad(desc->op, &ref, ref_line_make(dt, buf_cat(dt, src, base), g.n, g.inner),
                     ref_line_make(dt, buf_cat(dt, grad, base), g.n, g.inner), scale_used, local, global);
            grad_tolerance(tol, local, global, g.n, dt, scale_used);
            for (size_t k = 0; k < g.n; k++)
                all[base + k * g.inner] = tol[k];
        }
    }
    ref_vec_free(&ref);
    free(local);
    free(global);
    free(tol);
    return all;
}

/* The same op through the pinned last-axis function on transposed data;
 * the two results agree within twice the bound (both are within the bound
 * of the same reference). */
static size_t compare_with_last_axis(const softmax_desc *desc, const void *src, const void *grad, const void *dst,
                                     double scale_used, const char *label)
{
    geometry g = geometry_of(desc);
    softmax_dtype dt = desc->dtype;
    void *ts = to_last_axis(dt, src, g), *tg = to_last_axis(dt, grad, g), *tout = buf_alloc(dt, g.total);
    size_t rows = g.outer * g.inner, failures = 0;
    int rc;
    if (is_forward(desc->op))
        rc = call_forward(dt, desc->op == SOFTMAX_OP_LOG_SOFTMAX, ts, tout, rows, g.n, desc->scale);
    else
        rc = call_grad(desc->op, dt, ts, tg, tout, rows, g.n, desc->scale);
    assert_int_equal(rc, SOFTMAX_OK);
    double *gtol = is_forward(desc->op) ? NULL : gradient_tolerances(desc, src, grad, scale_used);
    double *ttol = gtol ? malloc((g.total + 1) * sizeof(double)) : NULL;
    if (gtol) /* transpose the tolerances like the data */
        for (size_t o = 0; o < g.outer; o++)
            for (size_t k = 0; k < g.n; k++)
                for (size_t i = 0; i < g.inner; i++)
                    ttol[(o * g.inner + i) * g.n + k] = gtol[(o * g.n + k) * g.inner + i];
    void *td = to_last_axis(dt, dst, g);
    int p = dtype_precision(dt);
    double bound = contract_ulp_bound(dt);
    for (size_t k = 0; k < g.total; k++) {
        double a = buf_get(dt, td, k), b = buf_get(dt, tout, k), allowed;
        if (desc->op == SOFTMAX_OP_LOG_SOFTMAX)
            allowed = 2 * bound * ulp_p(fmax(fabs(b), 1.0), p);
        else if (desc->op == SOFTMAX_OP_SOFTMAX)
            allowed = 2 * bound * ulp_p(fmax(b, dtype_min_normal(dt)), p);
        else
            allowed = 2 * ttol[k];
        if (!(fabs(a - b) <= allowed)) {
            if (failures < 5)
                fprintf(stderr, "  FAIL %s: element %zu (last-axis order) execute %.17g vs pinned %.17g\n", label, k, a,
                        b);
            failures++;
        }
    }
    free(gtol);
    free(ttol);
    free(ts);
    free(tg);
    free(tout);
    free(td);
    return failures;
}

static size_t run_case(softmax_op op, softmax_dtype dt, int ndim, const size_t *shape, int axis, double scale,
                       test_rng *rng)
{
    softmax_desc desc;
    assert_int_equal(softmax_desc_init(&desc, op, dt, 1), SOFTMAX_OK);
    desc.ndim = ndim;
    for (int k = 0; k < ndim; k++)
        desc.shape[k] = shape[k];
    desc.axis = axis;
    desc.scale = scale;
    geometry g = geometry_of(&desc);
    void *src = buf_alloc(dt, g.total), *grad = buf_alloc(dt, g.total), *dst = buf_alloc(dt, g.total);
    fill_inputs(op, dt, src, grad, g.total, rng);
    fill_sentinel(dst, g.total * dtype_size(dt));
    char label[200];
    int len = snprintf(label, sizeof label, "%s_%s axis=%d shape=[", op_name(op), dtype_name(dt), axis);
    for (int k = 0; k < ndim && len > 0 && (size_t)len < sizeof label; k++)
        len += snprintf(label + len, sizeof label - (size_t)len, k ? ",%zu" : "%zu", shape[k]);
    if (len > 0 && (size_t)len < sizeof label)
        snprintf(label + len, sizeof label - (size_t)len, "] scale=%g", scale);
    size_t failures = 0;
    int rc = softmax_execute(&desc, src, is_forward(op) ? NULL : grad, dst);
    if (rc != SOFTMAX_OK) {
        fprintf(stderr, "  FAIL %s: status %d (%s): %s\n", label, rc, softmax_strerror(rc), softmax_last_error());
        failures++;
    } else {
        failures += check_lines(&desc, src, grad, dst, scale, label);
        failures += compare_with_last_axis(&desc, src, grad, dst, scale, label);
        /* in place (on src, and on grad for the gradient ops) gives the same bits */
        void *inplace = buf_alloc(dt, g.total);
        memcpy(inplace, src, g.total * dtype_size(dt));
        assert_int_equal(softmax_execute(&desc, inplace, grad, inplace), SOFTMAX_OK);
        if (memcmp(inplace, dst, g.total * dtype_size(dt)) != 0) {
            fprintf(stderr, "  FAIL %s: dst == src differs from out of place\n", label);
            failures++;
        }
        if (!is_forward(op)) {
            memcpy(inplace, grad, g.total * dtype_size(dt));
            assert_int_equal(softmax_execute(&desc, src, inplace, inplace), SOFTMAX_OK);
            if (memcmp(inplace, dst, g.total * dtype_size(dt)) != 0) {
                fprintf(stderr, "  FAIL %s: dst == grad differs from out of place\n", label);
                failures++;
            }
        }
        free(inplace);
    }
    free(src);
    free(grad);
    free(dst);
    return failures;
}

static void test_every_axis_of_small_tensors(void **state)
{
    (void)state;
    static const size_t extents[] = {1, 2, 3, 5, 8, 17};
    static const double scales[] = {1.0, -0.5, 2.5};
    test_rng rng;
    rng_seed(&rng, 601);
    size_t failures = 0, cases = 0;
    for (int ndim = 1; ndim <= 4; ndim++) {
        for (int rep = 0; rep < 6; rep++) {
            size_t shape[4];
            for (int k = 0; k < ndim; k++)
                shape[k] = extents[rng_below(&rng, ARRAY_LEN(extents))];
            for (int axis = -ndim; axis < ndim; axis++) {
                for (int opi = SOFTMAX_OP_SOFTMAX; opi <= SOFTMAX_OP_LOG_SOFTMAX_JVP; opi++) {
                    for (size_t d = 0; d < 2; d++) {
                        double scale = scales[(size_t)(rep + axis + ndim + 3) % ARRAY_LEN(scales)];
                        failures += run_case((softmax_op)opi, test_dtypes[d], ndim, shape, axis, scale, &rng);
                        cases++;
                    }
                }
            }
        }
    }
    printf("axis: %zu execute cases checked\n", cases);
    if (failures)
        fail_msg("%zu failures along axes (details above)", failures);
}

static void test_long_lines_and_wide_inner_extents(void **state)
{
    (void)state;
    static const struct {
        int ndim;
        size_t shape[3];
        int axis;
    } cases[] = {
        {2, {7, 129}, 0},     {2, {1000, 3}, 0},  {3, {2, 5, 300}, 1},  {3, {4, 33, 65}, 1},
        {3, {3, 64, 17}, -2}, {2, {129, 64}, -2}, {3, {2, 1000, 9}, 1}, {2, {3, 4097}, -1},
    };
    test_rng rng;
    rng_seed(&rng, 602);
    size_t failures = 0;
    for (size_t c = 0; c < ARRAY_LEN(cases); c++)
        for (int opi = SOFTMAX_OP_SOFTMAX; opi <= SOFTMAX_OP_LOG_SOFTMAX_JVP; opi++)
            for (size_t d = 0; d < 2; d++)
                failures += run_case((softmax_op)opi, test_dtypes[d], cases[c].ndim, cases[c].shape, cases[c].axis,
                                     opi % 2 ? 1.0 : -1.5, &rng);
    if (failures)
        fail_msg("%zu failures on long lines (details above)", failures);
}

/* Softmax and log-softmax along axis 0 of [n, inner], around the column
 * kernel's chunk boundaries (chunks of 16 to 64 lines across the code
 * paths; the exp pass of a chunk also reads the maxima of the next full
 * one), with a line of special values in a chunk after a full one (a chunk
 * holding one goes to the reference lines whole, and the chunk after it
 * then reads its own maxima), on 1 and 2 threads (a thread's units are
 * adjacent chunks of one slice): against MPFR, and the same bits on every
 * thread count. */
static size_t run_column_case(softmax_op op, softmax_dtype dt, size_t n, size_t inner, size_t special_line,
                              int special_kind, test_rng *rng)
{
    softmax_desc desc;
    assert_int_equal(softmax_desc_init(&desc, op, dt, 1), SOFTMAX_OK);
    desc.ndim = 2;
    desc.shape[0] = n;
    desc.shape[1] = inner;
    desc.axis = 0;
    desc.scale = special_kind == 3 ? -0.75 : 1.0;
    const size_t total = n * inner;
    void *src = buf_alloc(dt, total), *dst[2] = {buf_alloc(dt, total), buf_alloc(dt, total)};
    for (size_t i = 0; i < total; i++)
        buf_set(dt, src, i, 3.0 * rng_normal(rng));
    if (special_line < inner) {
        for (size_t k = 0; k < n; k++) {
            const size_t at = k * inner + special_line;
            if (special_kind == 0 && k == n / 2)
                buf_set(dt, src, at, NAN);
            else if (special_kind == 1)
                buf_set(dt, src, at, -INFINITY);
            else if (special_kind >= 2 && k % 7 == 3)
                buf_set(dt, src, at, INFINITY);
        }
    }
    char label[160];
    snprintf(label, sizeof label, "%s_%s axis=0 shape=[%zu,%zu] special line %zu kind %d", op_name(op), dtype_name(dt),
             n, inner, special_line, special_kind);
    const int threads_before = softmax_get_num_threads();
    size_t failures = 0;
    for (int t = 0; t < 2; t++) {
        fill_sentinel(dst[t], total * dtype_size(dt));
        softmax_set_num_threads(t + 1);
        const int rc = softmax_execute(&desc, src, NULL, dst[t]);
        if (rc != SOFTMAX_OK) {
            fprintf(stderr, "  FAIL %s: status %d: %s\n", label, rc, softmax_last_error());
            failures++;
        }
    }
    softmax_set_num_threads(threads_before);
    failures += check_lines(&desc, src, NULL, dst[0], desc.scale, label);
    if (memcmp(dst[0], dst[1], total * dtype_size(dt)) != 0) {
        fprintf(stderr, "  FAIL %s: 2 threads differ from 1\n", label);
        failures++;
    }
    free(src);
    free(dst[0]);
    free(dst[1]);
    return failures;
}

static void test_column_chunks_and_special_lines(void **state)
{
    (void)state;
    static const size_t inners[] = {31, 63, 64, 65, 127, 128, 129, 197, 256};
    static const size_t special_lines[] = {SIZE_MAX, 0, 40, 70, 130, 196};
    test_rng rng;
    rng_seed(&rng, 604);
    size_t failures = 0, cases = 0;
    for (size_t i = 0; i < ARRAY_LEN(inners); i++)
        for (size_t l = 0; l < ARRAY_LEN(special_lines); l++) {
            if (special_lines[l] != SIZE_MAX && special_lines[l] >= inners[i])
                continue;
            const size_t n = (i + l) % 2 ? 300 : 33;
            for (int opi = SOFTMAX_OP_SOFTMAX; opi <= SOFTMAX_OP_LOG_SOFTMAX; opi++)
                for (size_t d = 0; d < 2; d++) {
                    failures += run_column_case((softmax_op)opi, test_dtypes[d], n, inners[i], special_lines[l],
                                                (int)((i + l + d) % 4), &rng);
                    cases++;
                }
        }
    printf("axis: %zu column-chunk cases checked\n", cases);
    if (failures)
        fail_msg("%zu failures around column chunks (details above)", failures);
}

static void test_eight_dimensions(void **state)
{
    (void)state;
    static const size_t shape[SOFTMAX_MAX_NDIM] = {2, 1, 3, 1, 2, 1, 2, 3};
    test_rng rng;
    rng_seed(&rng, 603);
    size_t failures = 0;
    for (int axis = -SOFTMAX_MAX_NDIM; axis < SOFTMAX_MAX_NDIM; axis++)
        for (int opi = SOFTMAX_OP_SOFTMAX; opi <= SOFTMAX_OP_LOG_SOFTMAX_JVP; opi++)
            failures += run_case((softmax_op)opi, SOFTMAX_DTYPE_F64, SOFTMAX_MAX_NDIM, shape, axis, 1.0, &rng);
    if (failures)
        fail_msg("%zu failures in 8-d (details above)", failures);
}

static void test_zero_extents_and_ignored_extents(void **state)
{
    (void)state;
    unsigned char out[256];
    const double in[32] = {0};
    for (size_t d = 0; d < 2; d++) {
        for (int opi = SOFTMAX_OP_SOFTMAX; opi <= SOFTMAX_OP_LOG_SOFTMAX_JVP; opi++) {
            for (int zero_at = 0; zero_at < 4; zero_at++) {
                for (int axis = -4; axis < 4; axis++) {
                    softmax_desc desc;
                    assert_int_equal(softmax_desc_init(&desc, (softmax_op)opi, test_dtypes[d], 2), SOFTMAX_OK);
                    desc.ndim = 4;
                    for (int k = 0; k < 4; k++)
                        desc.shape[k] = k == zero_at ? 0 : (size_t)(k + 2);
                    desc.axis = axis;
                    fill_sentinel(out, sizeof out);
                    assert_int_equal(softmax_execute(&desc, NULL, NULL, NULL), SOFTMAX_OK);
                    assert_int_equal(softmax_execute(&desc, in, in, out), SOFTMAX_OK);
                    assert_true(is_sentinel(out, sizeof out));
                }
            }
        }
    }
    /* extents past ndim are ignored, whatever they hold */
    test_rng rng;
    rng_seed(&rng, 604);
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        softmax_desc desc;
        assert_int_equal(softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, dt, 10), SOFTMAX_OK);
        for (int k = 1; k < SOFTMAX_MAX_NDIM; k++)
            desc.shape[k] = k % 2 ? 0 : SIZE_MAX;
        void *x = buf_alloc(dt, 10), *y = buf_alloc(dt, 10);
        for (size_t i = 0; i < 10; i++)
            buf_set(dt, x, i, rng_normal(&rng));
        assert_int_equal(softmax_execute(&desc, x, NULL, y), SOFTMAX_OK);
        assert_int_equal(check_lines(&desc, x, x, y, 1.0, "1-d with junk extents"), 0);
        free(x);
        free(y);
    }
}

/* desc.scale is a double; for f32 data it is "applied in the data type's
 * precision or better": either (float)scale or scale itself is accepted,
 * and the pinned f32 function with (float)scale is within the bound too. */
static void test_f32_scale_precision(void **state)
{
    (void)state;
    static const double scales[] = {0.1, 1.0 / 3.0, -7.3, 1e-3};
    test_rng rng;
    rng_seed(&rng, 605);
    enum { N = 257 };
    float x[N], y[N];
    for (size_t i = 0; i < N; i++)
        x[i] = (float)(20 * rng_normal(&rng));
    for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
        for (int log = 0; log <= 1; log++) {
            softmax_desc desc;
            assert_int_equal(
                softmax_desc_init(&desc, log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, N),
                SOFTMAX_OK);
            desc.scale = scales[s];
            assert_int_equal(softmax_execute(&desc, x, NULL, y), SOFTMAX_OK);
            ref_set_quiet(1);
            size_t as_float = check_lines(&desc, x, x, y, (double)(float)scales[s], "scale as float");
            size_t as_double = check_lines(&desc, x, x, y, scales[s], "scale as double");
            ref_set_quiet(0);
            if (as_float != 0 && as_double != 0) {
                check_lines(&desc, x, x, y, (double)(float)scales[s], "scale as float");
                fail_msg("f32 %s with desc.scale=%g matches neither scale (see above)", log ? "log_softmax" : "softmax",
                         scales[s]);
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
        cmocka_unit_test(test_every_axis_of_small_tensors),
        cmocka_unit_test(test_long_lines_and_wide_inner_extents),
        cmocka_unit_test(test_column_chunks_and_special_lines),
        cmocka_unit_test(test_eight_dimensions),
        cmocka_unit_test(test_zero_extents_and_ignored_extents),
        cmocka_unit_test(test_f32_scale_precision),
    };
    return cmocka_run_group_tests_name("axis", tests, NULL, NULL);
}
