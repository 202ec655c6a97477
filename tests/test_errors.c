/*
 * test_errors.c -- every error path of every public function: the pinned
 * status code, a specific softmax_strerror() text, a non-empty
 * softmax_last_error(), and an output left bitwise untouched (it is filled
 * with a sentinel pattern first). Also the allowed aliasing (in place) and
 * the neighbours of the error cases that must succeed (adjacent buffers).
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { N = 64 };

/* Input and output areas of one test. The output is one array with room
 * around it, so that partial overlaps can be built from the same storage. */
typedef struct arena {
    double in[N];
    double in2[N];
    double out[N];
    double in_copy[N], in2_copy[N];
} arena;

static void arena_reset(arena *a)
{
    for (size_t i = 0; i < N; i++) {
        a->in[i] = 0.25 * (double)i - 3.0;
        a->in2[i] = 1.0 / (double)(i + 1);
    }
    /* f32 views use the same bytes: make them finite floats too */
    for (size_t i = 0; i < N; i++) {
        ((float *)a->in)[i] = (float)i * 0.125f - 1.0f;
        ((float *)a->in2)[i] = 0.5f / (float)(i + 1);
    }
    memcpy(a->in_copy, a->in, sizeof a->in);
    memcpy(a->in2_copy, a->in2, sizeof a->in2);
    fill_sentinel(a->out, sizeof a->out);
}

static void expect_status(int rc, int expected, const char *call, const arena *a, int check_inputs)
{
    if (rc != expected)
        fail_msg("%s returned %d (%s), expected %d (%s)", call, rc, softmax_strerror(rc), expected,
                 softmax_strerror(expected));
    if (expected != SOFTMAX_OK) {
        const char *msg = softmax_last_error();
        if (msg == NULL || msg[0] == '\0')
            fail_msg("%s failed with %d but softmax_last_error() is empty", call, rc);
        if (a && !is_sentinel(a->out, sizeof a->out))
            fail_msg("%s failed with %d but wrote to its output", call, rc);
    } else {
        const char *msg = softmax_last_error();
        if (msg == NULL || msg[0] != '\0')
            fail_msg("%s succeeded but softmax_last_error() is \"%s\"", call, msg ? msg : "(null)");
    }
    /* Inputs are never written, whatever happens. */
    if (a && check_inputs &&
        (memcmp(a->in, a->in_copy, sizeof a->in) != 0 || memcmp(a->in2, a->in2_copy, sizeof a->in2) != 0))
        fail_msg("%s modified an input", call);
}

#define EXPECT(expected, a, call) expect_status((call), (expected), #call, (a), 1)

/* -------------------------------------------------------------- strerror */

static void test_status_names_are_pinned_and_specific(void **state)
{
    (void)state;
    assert_int_equal(SOFTMAX_OK, 0);
    assert_int_equal(SOFTMAX_E_NULL_POINTER, -1);
    assert_int_equal(SOFTMAX_E_SIZE_OVERFLOW, -2);
    assert_int_equal(SOFTMAX_E_INVALID_SCALE, -3);
    assert_int_equal(SOFTMAX_E_INVALID_AXIS, -4);
    assert_int_equal(SOFTMAX_E_OVERLAP, -5);
    assert_int_equal(SOFTMAX_E_INVALID_DTYPE, -6);
    assert_int_equal(SOFTMAX_E_INVALID_ARGUMENT, -7);
    assert_int_equal(SOFTMAX_E_INVALID_THREADS, -8);
    assert_int_equal(SOFTMAX_E_OUT_OF_MEMORY, -9);
    assert_int_equal(SOFTMAX_E_UNSUPPORTED, -10);
    assert_int_equal(SOFTMAX_E_ISA_UNAVAILABLE, -11);
    assert_int_equal(SOFTMAX_E_INVALID_STRIDE, -12);
    assert_int_equal(SOFTMAX_E_INVALID_MASK, -13);
    assert_int_equal(SOFTMAX_E_INVALID_PARAMETER, -14);
    assert_int_equal(SOFTMAX_E_NO_FINITE_LOGIT, -15);
    const char *names[16];
    for (int code = 0; code >= -15; code--) {
        const char *s = softmax_strerror(code);
        assert_non_null(s);
        if (s[0] == '\0' || strcmp(s, "unknown status") == 0)
            fail_msg("softmax_strerror(%d) = \"%s\" is not a specific description", code, s);
        names[-code] = s;
        for (int other = 0; other < -code; other++)
            if (strcmp(names[other], s) == 0)
                fail_msg("softmax_strerror(%d) and softmax_strerror(%d) are both \"%s\"", -other, code, s);
    }
    const int unknown[] = {1, 2, -16, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < ARRAY_LEN(unknown); i++) {
        const char *s = softmax_strerror(unknown[i]);
        assert_non_null(s);
        assert_string_equal(s, "unknown status");
    }
}

static void test_version_matches_the_header(void **state)
{
    (void)state;
    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", SOFTMAX_VERSION_MAJOR, SOFTMAX_VERSION_MINOR, SOFTMAX_VERSION_PATCH);
    assert_non_null(softmax_version());
    assert_string_equal(softmax_version(), expect);
}

/* ------------------------------------------------------- forward entries */

static void test_forward_errors(void **state)
{
    (void)state;
    static arena a;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        size_t es = dtype_size(dt);
        for (int log = 0; log <= 1; log++) {
            void *out = a.out;
            arena_reset(&a);
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_forward(dt, log, NULL, out, 2, 3, 1.0));
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_forward(dt, log, a.in, NULL, 2, 3, 1.0));
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_forward(dt, log, NULL, NULL, 1, 1, 1.0));
            /* element count overflows */
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_forward(dt, log, a.in, out, SIZE_MAX / 2 + 1, 2, 1.0));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_forward(dt, log, a.in, out, 2, SIZE_MAX / 2 + 1, 1.0));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_forward(dt, log, a.in, out, SIZE_MAX, SIZE_MAX, 1.0));
            /* element count fine, byte count overflows */
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_forward(dt, log, a.in, out, 1, SIZE_MAX / es + 1, 1.0));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_forward(dt, log, a.in, out, SIZE_MAX / es / 2 + 1, 2, 1.0));
            /* NaN scale, either sign */
            EXPECT(SOFTMAX_E_INVALID_SCALE, &a, call_forward(dt, log, a.in, out, 2, 3, NAN));
            EXPECT(SOFTMAX_E_INVALID_SCALE, &a, call_forward(dt, log, a.in, out, 2, 3, -NAN));
            /* partial overlaps of y with x (inside the out array, so the
             * sentinel check covers both) */
            const size_t shifts[] = {1, 2, 3, 5};
            for (size_t k = 0; k < ARRAY_LEN(shifts); k++) {
                arena_reset(&a);
                void *x = buf_at(dt, a.out, 8);
                EXPECT(SOFTMAX_E_OVERLAP, &a, call_forward(dt, log, x, buf_at(dt, a.out, 8 + shifts[k]), 2, 3, 1.0));
                EXPECT(SOFTMAX_E_OVERLAP, &a, call_forward(dt, log, x, buf_at(dt, a.out, 8 - shifts[k]), 2, 3, 1.0));
            }
            /* adjacent is not overlapping; equal is in place */
            arena_reset(&a);
            for (size_t i = 0; i < 6; i++)
                buf_set(dt, a.out, 8 + i, (double)i);
            EXPECT(SOFTMAX_OK, NULL, call_forward(dt, log, buf_at(dt, a.out, 8), buf_at(dt, a.out, 14), 2, 3, 1.0));
            EXPECT(SOFTMAX_OK, NULL, call_forward(dt, log, buf_at(dt, a.out, 8), buf_at(dt, a.out, 2), 2, 3, 1.0));
            EXPECT(SOFTMAX_OK, NULL, call_forward(dt, log, buf_at(dt, a.out, 8), buf_at(dt, a.out, 8), 2, 3, 1.0));
        }
    }
}

/* ------------------------------------------------------ gradient entries */

static const softmax_op grad_ops[] = {SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD,
                                      SOFTMAX_OP_LOG_SOFTMAX_JVP};

static void test_gradient_errors(void **state)
{
    (void)state;
    static arena a;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        size_t es = dtype_size(dt);
        for (size_t g = 0; g < ARRAY_LEN(grad_ops); g++) {
            softmax_op op = grad_ops[g];
            void *out = a.out;
            arena_reset(&a);
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_grad(op, dt, NULL, a.in2, out, 2, 3, 1.0));
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_grad(op, dt, a.in, NULL, out, 2, 3, 1.0));
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_grad(op, dt, a.in, a.in2, NULL, 2, 3, 1.0));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_grad(op, dt, a.in, a.in2, out, SIZE_MAX / 2 + 1, 2, 1.0));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_grad(op, dt, a.in, a.in2, out, 3, SIZE_MAX / 3 + 1, 1.0));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_grad(op, dt, a.in, a.in2, out, 1, SIZE_MAX / es + 1, 1.0));
            EXPECT(SOFTMAX_E_INVALID_SCALE, &a, call_grad(op, dt, a.in, a.in2, out, 2, 3, NAN));
            /* out partially overlapping either input */
            for (size_t shift = 1; shift < 6; shift += 2) {
                arena_reset(&a);
                void *first = buf_at(dt, a.out, 8), *second = buf_at(dt, a.out, 24);
                EXPECT(SOFTMAX_E_OVERLAP, &a, call_grad(op, dt, first, a.in2, buf_at(dt, a.out, 8 + shift), 2, 3, 1.0));
                EXPECT(SOFTMAX_E_OVERLAP, &a, call_grad(op, dt, first, a.in2, buf_at(dt, a.out, 8 - shift), 2, 3, 1.0));
                EXPECT(SOFTMAX_E_OVERLAP, &a,
                       call_grad(op, dt, a.in, second, buf_at(dt, a.out, 24 + shift), 2, 3, 1.0));
                EXPECT(SOFTMAX_E_OVERLAP, &a,
                       call_grad(op, dt, a.in, second, buf_at(dt, a.out, 24 - shift), 2, 3, 1.0));
                /* out == y with dy overlapping: still an overlap with dy */
                EXPECT(SOFTMAX_E_OVERLAP, &a, call_grad(op, dt, first, buf_at(dt, a.out, 8 + shift), first, 2, 3, 1.0));
            }
            /* allowed: out == a, out == b, a == b, and adjacent buffers */
            arena_reset(&a);
            for (size_t i = 0; i < 24; i++)
                buf_set(dt, a.out, i, 0.125);
            void *p = buf_at(dt, a.out, 0), *q = buf_at(dt, a.out, 6), *r = buf_at(dt, a.out, 12);
            EXPECT(SOFTMAX_OK, NULL, call_grad(op, dt, p, q, p, 2, 3, 1.0));
            EXPECT(SOFTMAX_OK, NULL, call_grad(op, dt, p, q, q, 2, 3, 1.0));
            EXPECT(SOFTMAX_OK, NULL, call_grad(op, dt, p, p, r, 2, 3, 1.0));
            EXPECT(SOFTMAX_OK, NULL, call_grad(op, dt, q, r, p, 2, 3, 1.0));
        }
    }
}

/* ------------------------------------------------------------- Jacobians */

static void test_jacobian_errors(void **state)
{
    (void)state;
    static arena a;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        size_t es = dtype_size(dt);
        for (int log = 0; log <= 1; log++) {
            arena_reset(&a);
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_jacobian(dt, log, NULL, 3, 1.0, a.out));
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, call_jacobian(dt, log, a.in, 3, 1.0, NULL));
            /* n * n overflows */
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_jacobian(dt, log, a.in, SIZE_MAX / 2 + 1, 1.0, a.out));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_jacobian(dt, log, a.in, (size_t)1 << 32, 1.0, a.out));
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_jacobian(dt, log, a.in, SIZE_MAX, 1.0, a.out));
            /* n * n fits, the byte count does not: n = 2^31 gives 2^62 elements */
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_jacobian(dt, log, a.in, (size_t)1 << 31, 1.0, a.out));
            /* the byte count fits in size_t but no object is that large
             * (f64, n = 2^30: 2^63 bytes), whichever side of y it starts */
            if (dt == SOFTMAX_DTYPE_F64) {
                EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_jacobian(dt, log, a.in, (size_t)1 << 30, 1.0, a.out));
                EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, call_jacobian(dt, log, a.out, (size_t)1 << 30, 1.0, a.in));
            }
            EXPECT(SOFTMAX_E_INVALID_SCALE, &a, call_jacobian(dt, log, a.in, 3, NAN, a.out));
            /* the Jacobian must not overlap y at all: n = 3 writes 9 values;
             * y sits inside a sentinel-filled area that must stay as it was */
            const ptrdiff_t starts[] = {0, 1, 2, -8, -5};
            for (size_t k = 0; k < ARRAY_LEN(starts); k++) {
                double area[N], saved[N];
                fill_sentinel(area, sizeof area);
                void *y = buf_at(dt, area, 20);
                for (size_t i = 0; i < 3; i++)
                    buf_set(dt, y, i, 1.0 / 3.0);
                memcpy(saved, area, sizeof area);
                void *jac = (char *)y + starts[k] * (ptrdiff_t)es;
                int rc = call_jacobian(dt, log, y, 3, 1.0, jac);
                expect_status(rc, SOFTMAX_E_OVERLAP, "jacobian overlapping y", NULL, 0);
                if (memcmp(saved, area, sizeof area) != 0)
                    fail_msg("%s jacobian overlapping y at offset %td wrote on error", dtype_name(dt), starts[k]);
            }
            /* adjacent: fine */
            arena_reset(&a);
            void *y = buf_at(dt, a.out, 0);
            for (size_t i = 0; i < 3; i++)
                buf_set(dt, y, i, 1.0 / 3.0);
            EXPECT(SOFTMAX_OK, NULL, call_jacobian(dt, log, y, 3, 1.0, buf_at(dt, a.out, 3)));
            EXPECT(SOFTMAX_OK, NULL, call_jacobian(dt, log, buf_at(dt, a.out, 9), 3, 1.0, a.out));
        }
    }
}

/* --------------------------------------------------------------- threads */

static void test_thread_count_errors(void **state)
{
    (void)state;
    int before = softmax_get_num_threads();
    assert_true(before >= 1);
    EXPECT(SOFTMAX_E_INVALID_THREADS, NULL, softmax_set_num_threads(-1));
    EXPECT(SOFTMAX_E_INVALID_THREADS, NULL, softmax_set_num_threads(INT_MIN));
    assert_int_equal(softmax_get_num_threads(), before);
}

/* ------------------------------------------------------------ general API */

static void init_desc(softmax_desc *desc, softmax_op op, softmax_dtype dt)
{
    assert_int_equal(softmax_desc_init(desc, op, dt, 6), SOFTMAX_OK);
    desc->ndim = 2;
    desc->shape[0] = 2;
    desc->shape[1] = 3;
    desc->axis = 1;
}

static void test_desc_init(void **state)
{
    (void)state;
    EXPECT(SOFTMAX_E_NULL_POINTER, NULL, softmax_desc_init(NULL, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 4));
    softmax_desc desc;
    memset(&desc, 0x5A, sizeof desc);
    EXPECT(SOFTMAX_OK, NULL, softmax_desc_init(&desc, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F64, 17));
    assert_int_equal(desc.op, SOFTMAX_OP_LOG_SOFTMAX);
    assert_int_equal(desc.dtype, SOFTMAX_DTYPE_F64);
    assert_int_equal(desc.ndim, 1);
    assert_int_equal(desc.axis, -1);
    assert_int_equal(desc.shape[0], 17);
    assert_true(desc.scale == 1.0);
    for (size_t i = 0; i < ARRAY_LEN(desc.reserved); i++)
        assert_int_equal(desc.reserved[i], 0);
}

static void test_execute_errors(void **state)
{
    (void)state;
    static arena a;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        size_t es = dtype_size(dt);
        for (int opi = SOFTMAX_OP_SOFTMAX; opi <= SOFTMAX_OP_LOG_SOFTMAX_JVP; opi++) {
            softmax_op op = (softmax_op)opi;
            int needs_grad = op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX;
            softmax_desc desc;
            arena_reset(&a);
            init_desc(&desc, op, dt);
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, softmax_execute(NULL, a.in, a.in2, a.out));
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, softmax_execute(&desc, NULL, a.in2, a.out));
            EXPECT(SOFTMAX_E_NULL_POINTER, &a, softmax_execute(&desc, a.in, a.in2, NULL));
            if (needs_grad)
                EXPECT(SOFTMAX_E_NULL_POINTER, &a, softmax_execute(&desc, a.in, NULL, a.out));

            const int bad_ops[] = {0, 6, -1, 100};
            for (size_t k = 0; k < ARRAY_LEN(bad_ops); k++) {
                init_desc(&desc, op, dt);
                desc.op = (softmax_op)bad_ops[k];
                EXPECT(SOFTMAX_E_INVALID_ARGUMENT, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            }
            const int bad_dtypes[] = {0, 5, 6, 1000, -1};
            for (size_t k = 0; k < ARRAY_LEN(bad_dtypes); k++) {
                init_desc(&desc, op, dt);
                desc.dtype = (softmax_dtype)bad_dtypes[k];
                EXPECT(SOFTMAX_E_INVALID_DTYPE, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            }
            const int bad_ndims[] = {0, -1, SOFTMAX_MAX_NDIM + 1, INT_MAX, INT_MIN};
            for (size_t k = 0; k < ARRAY_LEN(bad_ndims); k++) {
                init_desc(&desc, op, dt);
                desc.ndim = bad_ndims[k];
                desc.axis = 0;
                EXPECT(SOFTMAX_E_INVALID_ARGUMENT, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            }
            const int bad_axes[] = {2, -3, 100, INT_MAX, INT_MIN};
            for (size_t k = 0; k < ARRAY_LEN(bad_axes); k++) {
                init_desc(&desc, op, dt);
                desc.axis = bad_axes[k];
                EXPECT(SOFTMAX_E_INVALID_AXIS, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            }
            const size_t reserved_at[] = {0, 1, 7, ARRAY_LEN(desc.reserved) - 1};
            for (size_t k = 0; k < ARRAY_LEN(reserved_at); k++) {
                init_desc(&desc, op, dt);
                desc.reserved[reserved_at[k]] = k == 3 ? UINT64_C(1) << 63 : 1;
                EXPECT(SOFTMAX_E_UNSUPPORTED, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            }
            /* flags: only SOFTMAX_FLAG_FAST is defined. */
            const uint64_t bad_flags[] = {2, SOFTMAX_FLAG_FAST | 4, UINT64_C(1) << 63};
            for (size_t k = 0; k < ARRAY_LEN(bad_flags); k++) {
                init_desc(&desc, op, dt);
                desc.flags = bad_flags[k];
                EXPECT(SOFTMAX_E_UNSUPPORTED, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            }
            init_desc(&desc, op, dt);
            desc.scale = NAN;
            EXPECT(SOFTMAX_E_INVALID_SCALE, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            if (dt == SOFTMAX_DTYPE_F32) {
                init_desc(&desc, op, dt);
                desc.scale = -NAN;
                EXPECT(SOFTMAX_E_INVALID_SCALE, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            }

            /* extents whose product (or byte size) overflows */
            init_desc(&desc, op, dt);
            desc.shape[0] = SIZE_MAX / 2 + 1;
            desc.shape[1] = 2;
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            init_desc(&desc, op, dt);
            desc.ndim = 3;
            desc.shape[0] = desc.shape[1] = desc.shape[2] = (size_t)1 << 22;
            desc.axis = -2;
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, softmax_execute(&desc, a.in, a.in2, a.out));
            init_desc(&desc, op, dt);
            desc.ndim = 1;
            desc.shape[0] = SIZE_MAX / es + 1;
            desc.axis = 0;
            EXPECT(SOFTMAX_E_SIZE_OVERFLOW, &a, softmax_execute(&desc, a.in, a.in2, a.out));

            /* dst partially overlapping src, or grad */
            for (size_t shift = 1; shift < 6; shift += 4) {
                arena_reset(&a);
                init_desc(&desc, op, dt);
                void *src = buf_at(dt, a.out, 8), *grad = buf_at(dt, a.out, 24);
                EXPECT(SOFTMAX_E_OVERLAP, &a, softmax_execute(&desc, src, a.in2, buf_at(dt, a.out, 8 + shift)));
                EXPECT(SOFTMAX_E_OVERLAP, &a, softmax_execute(&desc, src, a.in2, buf_at(dt, a.out, 8 - shift)));
                if (needs_grad) {
                    EXPECT(SOFTMAX_E_OVERLAP, &a, softmax_execute(&desc, a.in, grad, buf_at(dt, a.out, 24 + shift)));
                    EXPECT(SOFTMAX_E_OVERLAP, &a, softmax_execute(&desc, a.in, grad, buf_at(dt, a.out, 24 - shift)));
                }
            }

            /* what must succeed: in place on src or grad, NULL grad for the
             * forward ops, extents past ndim ignored */
            arena_reset(&a);
            for (size_t i = 0; i < 24; i++)
                buf_set(dt, a.out, i, 0.125);
            void *p = buf_at(dt, a.out, 0), *q = buf_at(dt, a.out, 6), *r = buf_at(dt, a.out, 12);
            init_desc(&desc, op, dt);
            EXPECT(SOFTMAX_OK, NULL, softmax_execute(&desc, p, q, p));
            EXPECT(SOFTMAX_OK, NULL, softmax_execute(&desc, p, q, q));
            EXPECT(SOFTMAX_OK, NULL, softmax_execute(&desc, p, p, r));
            if (!needs_grad)
                EXPECT(SOFTMAX_OK, NULL, softmax_execute(&desc, p, NULL, r));
            for (int k = 2; k < SOFTMAX_MAX_NDIM; k++)
                desc.shape[k] = k % 2 ? SIZE_MAX : 0;
            EXPECT(SOFTMAX_OK, NULL, softmax_execute(&desc, p, q, r));
        }
    }
}

/* ------------------------------------------------------------ last_error */

static void *fail_on_another_thread(void *arg)
{
    (void)arg;
    float x[2] = {1, 2}, y[2];
    int rc = softmax_f32(x, y, 1, 2, NAN);
    const char *msg = softmax_last_error();
    int ok = rc == SOFTMAX_E_INVALID_SCALE && msg && msg[0] != '\0';
    return ok ? arg : NULL;
}

static void test_last_error_is_per_thread_and_cleared_by_success(void **state)
{
    (void)state;
    float x[2] = {1, 2}, y[2];
    assert_int_equal(softmax_f32(x, y, 1, 2, NAN), SOFTMAX_E_INVALID_SCALE);
    const char *nan_msg = softmax_last_error();
    assert_true(nan_msg && nan_msg[0] != '\0');
    char saved[256];
    snprintf(saved, sizeof saved, "%s", nan_msg);
    assert_int_equal(softmax_f32(x, x + 1, 1, 2, 1.0f), SOFTMAX_E_OVERLAP);
    const char *overlap_msg = softmax_last_error();
    assert_true(overlap_msg && overlap_msg[0] != '\0');
    /* specific: the two failures are described differently */
    if (strcmp(saved, overlap_msg) == 0)
        fail_msg("NaN scale and overlap give the same last_error: \"%s\"", saved);

    assert_int_equal(softmax_f32(x, y, 1, 2, 1.0f), SOFTMAX_OK);
    assert_string_equal(softmax_last_error(), "");

    /* another thread's failure leaves this thread's (empty) error alone */
    pthread_t thread;
    void *result = NULL;
    int marker = 0;
    assert_int_equal(pthread_create(&thread, NULL, fail_on_another_thread, &marker), 0);
    assert_int_equal(pthread_join(thread, &result), 0);
    assert_ptr_equal(result, &marker);
    assert_string_equal(softmax_last_error(), "");
}

/* Successful calls on another thread, then one failure and one success
 * there: its own message empty at the end. */
static void *succeed_on_another_thread(void *arg)
{
    float x[2] = {1, 2}, y[2];
    for (int i = 0; i < 3; i++)
        if (softmax_f32(x, y, 1, 2, 1.0f) != SOFTMAX_OK || softmax_last_error()[0] != '\0')
            return NULL;
    if (softmax_f32(x, y, 1, 2, NAN) != SOFTMAX_E_INVALID_SCALE || softmax_last_error()[0] == '\0')
        return NULL;
    if (softmax_set_num_threads(0) != SOFTMAX_OK || softmax_last_error()[0] != '\0')
        return NULL;
    return arg;
}

/* A message stays until its own thread's next call, whatever other
 * threads do in between (succeed, fail, end with a message set), and that
 * call clears it; each thread sees its own message. */
static void test_pending_message_survives_other_threads(void **state)
{
    (void)state;
    float x[2] = {1, 2}, y[2];
    for (int round = 0; round < 2; round++) {
        assert_int_equal(softmax_f32(x, y, 1, 2, NAN), SOFTMAX_E_INVALID_SCALE);
        char saved[256];
        snprintf(saved, sizeof saved, "%s", softmax_last_error());
        assert_true(saved[0] != '\0');

        pthread_t thread;
        void *result = NULL;
        int marker = 0;
        /* A thread that ends with its message set, then one that clears
         * its own (empty, then set) message several times. */
        assert_int_equal(pthread_create(&thread, NULL, fail_on_another_thread, &marker), 0);
        assert_int_equal(pthread_join(thread, &result), 0);
        assert_ptr_equal(result, &marker);
        assert_int_equal(pthread_create(&thread, NULL, succeed_on_another_thread, &marker), 0);
        assert_int_equal(pthread_join(thread, &result), 0);
        assert_ptr_equal(result, &marker);

        assert_string_equal(softmax_last_error(), saved);
        assert_int_equal(softmax_f32(x, y, 1, 2, 1.0f), SOFTMAX_OK);
        assert_string_equal(softmax_last_error(), "");
        /* Through softmax_execute's lean route and the planner's too. */
        assert_int_equal(softmax_f32(x, y, 1, 2, NAN), SOFTMAX_E_INVALID_SCALE);
        softmax_desc desc;
        assert_int_equal(softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 2), SOFTMAX_OK);
        desc.flags = SOFTMAX_FLAG_FAST;
        assert_int_equal(softmax_execute(&desc, x, NULL, y), SOFTMAX_OK);
        assert_string_equal(softmax_last_error(), "");
        assert_int_equal(softmax_f32(x, y, 1, 2, NAN), SOFTMAX_E_INVALID_SCALE);
        assert_int_equal(softmax_backward_f32(x, x, y, 1, 2, 1.0f), SOFTMAX_OK);
        assert_string_equal(softmax_last_error(), "");
    }
}

/* ------------------------------------------- SOFTMAX_ISA naming no path */

/* Run by CTest with SOFTMAX_ISA set to a path that does not exist: no
 * silent fallback, every call fails and says which path was asked for. */
static void test_unavailable_isa_fails_every_call(void **state)
{
    (void)state;
    const char *forced = getenv("SOFTMAX_ISA");
    assert_non_null(forced);
    assert_null(softmax_isa_name());
    float x[4] = {1, 2, 3, 4}, y[4];
    double xd[4] = {1, 2, 3, 4}, yd[4];
    fill_sentinel(y, sizeof y);
    fill_sentinel(yd, sizeof yd);
    int rcs[5];
    rcs[0] = softmax_f32(x, y, 1, 4, 1.0f);
    rcs[1] = log_softmax_f64(xd, yd, 2, 2, 1.0);
    rcs[2] = softmax_backward_f32(x, x, y, 1, 4, 1.0f);
    rcs[3] = softmax_jacobian_f64(xd, 2, 1.0, yd);
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, 4);
    rcs[4] = softmax_execute(&desc, xd, NULL, yd);
    for (int k = 0; k < 5; k++) {
        if (rcs[k] != SOFTMAX_E_ISA_UNAVAILABLE)
            fail_msg("call %d returned %d, expected SOFTMAX_E_ISA_UNAVAILABLE", k, rcs[k]);
    }
    const char *msg = softmax_last_error();
    assert_non_null(msg);
    if (strstr(msg, forced) == NULL)
        fail_msg("softmax_last_error() = \"%s\" does not name the path \"%s\"", msg, forced);
    assert_true(is_sentinel(y, sizeof y));
    assert_true(is_sentinel(yd, sizeof yd));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--isa-unavailable") == 0) {
        const struct CMUnitTest isa_tests[] = {
            cmocka_unit_test(test_unavailable_isa_fails_every_call),
        };
        return cmocka_run_group_tests_name("errors (SOFTMAX_ISA unavailable)", isa_tests, NULL, NULL);
    }
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names_are_pinned_and_specific),
        cmocka_unit_test(test_version_matches_the_header),
        cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_gradient_errors),
        cmocka_unit_test(test_jacobian_errors),
        cmocka_unit_test(test_thread_count_errors),
        cmocka_unit_test(test_desc_init),
        cmocka_unit_test(test_execute_errors),
        cmocka_unit_test(test_last_error_is_per_thread_and_cleared_by_success),
        cmocka_unit_test(test_pending_message_survives_other_threads),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
