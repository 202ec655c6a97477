/*
 * test_bad_inputs.c -- the rows of docs/bad_inputs.md that test_errors.c and
 * test_general.c do not already back: empty calls with NULL pointers on
 * every entry point (and the NaN scale that still fails them), dst
 * overlapping `where`, in place with another layout,
 * negative strides below address 0, extreme causal offsets, unknown source
 * types and in-place half conversions, thread counts above the cap, and the
 * exclusions of `where` / causal / -inf masks with scale < 0.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

/* The status, a message on failure, an empty message on success, and the
 * sentinel-filled output untouched on failure. */
#define EXPECT_CALL(expected, call, out, bytes)                                                                        \
    do {                                                                                                               \
        fill_sentinel((out), (bytes));                                                                                 \
        const int status_ = (call);                                                                                    \
        if (status_ != (expected))                                                                                     \
            fail_msg("%s returned %d (%s), expected %d", #call, status_, softmax_last_error(), (int)(expected));       \
        if ((expected) != SOFTMAX_OK) {                                                                                \
            assert_true(softmax_last_error()[0] != '\0');                                                              \
            assert_true(is_sentinel((out), (bytes)));                                                                  \
        } else {                                                                                                       \
            assert_true(softmax_last_error()[0] == '\0');                                                              \
        }                                                                                                              \
    } while (0)

static void test_empty_calls_accept_null_pointers(void **state)
{
    (void)state;
    float out[4];
    /* rows == 0 or cols == 0: success, nothing read or written */
    for (int zero_rows = 0; zero_rows <= 1; zero_rows++) {
        const size_t rows = zero_rows ? 0 : 3, cols = zero_rows ? 3 : 0;
        assert_int_equal(softmax_f32(NULL, NULL, rows, cols, 1.0f), SOFTMAX_OK);
        assert_int_equal(softmax_f64(NULL, NULL, rows, cols, 1.0), SOFTMAX_OK);
        assert_int_equal(log_softmax_f32(NULL, NULL, rows, cols, 1.0f), SOFTMAX_OK);
        assert_int_equal(log_softmax_f64(NULL, NULL, rows, cols, 1.0), SOFTMAX_OK);
        assert_int_equal(softmax_backward_f32(NULL, NULL, NULL, rows, cols, 1.0f), SOFTMAX_OK);
        assert_int_equal(softmax_backward_f64(NULL, NULL, NULL, rows, cols, 1.0), SOFTMAX_OK);
        assert_int_equal(log_softmax_backward_f32(NULL, NULL, NULL, rows, cols, 1.0f), SOFTMAX_OK);
        assert_int_equal(log_softmax_backward_f64(NULL, NULL, NULL, rows, cols, 1.0), SOFTMAX_OK);
        assert_int_equal(log_softmax_jvp_f32(NULL, NULL, NULL, rows, cols, 1.0f), SOFTMAX_OK);
        assert_int_equal(log_softmax_jvp_f64(NULL, NULL, NULL, rows, cols, 1.0), SOFTMAX_OK);
    }
    assert_int_equal(softmax_jacobian_f32(NULL, 0, 1.0f, NULL), SOFTMAX_OK);
    assert_int_equal(softmax_jacobian_f64(NULL, 0, 1.0, NULL), SOFTMAX_OK);
    assert_int_equal(log_softmax_jacobian_f32(NULL, 0, 1.0f, NULL), SOFTMAX_OK);
    assert_int_equal(log_softmax_jacobian_f64(NULL, 0, 1.0, NULL), SOFTMAX_OK);
    assert_int_equal(softmax_convert(NULL, SOFTMAX_DTYPE_F16, NULL, SOFTMAX_DTYPE_F64, 0), SOFTMAX_OK);
    /* ... but a NaN scale is reported even then: it is checked first */
    assert_int_equal(softmax_f32(NULL, NULL, 0, 3, NAN), SOFTMAX_E_INVALID_SCALE);
    assert_int_equal(log_softmax_jvp_f64(NULL, NULL, NULL, 3, 0, NAN), SOFTMAX_E_INVALID_SCALE);
    assert_int_equal(softmax_jacobian_f32(NULL, 0, NAN, NULL), SOFTMAX_E_INVALID_SCALE);
    /* any zero extent, even with others whose product would overflow */
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_BF16, 5);
    desc.ndim = 3;
    desc.shape[0] = SIZE_MAX;
    desc.shape[1] = 0;
    desc.shape[2] = SIZE_MAX;
    EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, NULL, NULL, NULL), out, sizeof out);
    assert_true(is_sentinel(out, sizeof out));
}

static void test_dst_overlapping_where_or_other_layout(void **state)
{
    (void)state;
    float in[32], out[32];
    for (int i = 0; i < 32; i++)
        in[i] = (float)i / 8.0f;
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 8);
    desc.ndim = 2;
    desc.shape[0] = 4;
    desc.shape[1] = 8;
    /* `where` is read while dst is written: they may not share bytes */
    desc.where = (const uint8_t *)out + 5;
    EXPECT_CALL(SOFTMAX_E_OVERLAP, softmax_execute(&desc, in, NULL, out), out, sizeof out);
    /* in place needs the same layout: the same base with transposed
     * strides is an overlap, not in place */
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 4);
    desc.ndim = 2;
    desc.shape[0] = 4;
    desc.shape[1] = 4;
    static const int64_t transposed[2] = {1, 4};
    desc.dst_strides = transposed;
    float shared[16];
    for (int i = 0; i < 16; i++)
        shared[i] = (float)i;
    float saved[16];
    memcpy(saved, shared, sizeof shared);
    assert_int_equal(softmax_execute(&desc, shared, NULL, shared), SOFTMAX_E_OVERLAP);
    assert_true(softmax_last_error()[0] != '\0');
    assert_memory_equal(saved, shared, sizeof shared);
}

static void test_negative_strides_below_address_zero(void **state)
{
    (void)state;
    float out[32];
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 8);
    desc.ndim = 2;
    desc.shape[0] = 4;
    desc.shape[1] = 8;
    static const int64_t backwards[2] = {-1000000, 1};
    desc.src_strides = backwards;
    /* src near address 0 (never dereferenced: the check comes first) */
    const void *low_src = (const void *)(uintptr_t)4096;
    EXPECT_CALL(SOFTMAX_E_SIZE_OVERFLOW, softmax_execute(&desc, low_src, NULL, out), out, sizeof out);
}

static void test_extreme_causal_offsets(void **state)
{
    (void)state;
    enum { Q = 3, K = 5 };
    float in[Q * K], out[Q * K], plain[Q * K];
    for (int i = 0; i < Q * K; i++)
        in[i] = (float)(i % 7) - 3.0f;
    assert_int_equal(softmax_f32(in, plain, Q, K, 1.0f), SOFTMAX_OK);
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, K);
    desc.ndim = 2;
    desc.shape[0] = Q;
    desc.shape[1] = K;
    desc.causal = 1;
    /* i + offset would overflow int64: every element is kept */
    desc.causal_offset = INT64_MAX;
    EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, in, NULL, out), out, sizeof out);
    assert_memory_equal(out, plain, sizeof out);
    /* nothing is kept: zeros (log-softmax -inf), never NaN */
    desc.causal_offset = INT64_MIN;
    EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, in, NULL, out), out, sizeof out);
    for (int i = 0; i < Q * K; i++)
        assert_true(out[i] == 0.0f);
    desc.op = SOFTMAX_OP_LOG_SOFTMAX;
    EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, in, NULL, out), out, sizeof out);
    for (int i = 0; i < Q * K; i++)
        assert_true(out[i] == -INFINITY);
}

/* The same offsets with a `where`, an added mask and ALiBi beside the
 * causal mask: short rows then go through the grouped masked-row kernels,
 * which take each run of lines' causal prefix as a first length and a step
 * (softmax_masked_run), clamped line by line -- an offset near the int64
 * range must neither wrap nor leave a row half masked. */
static void test_extreme_causal_offsets_with_masks(void **state)
{
    (void)state;
    enum { B = 3, Q = 20, K = 16 };
    static float in[B * Q * K], out[B * Q * K], uncausal[B * Q * K], bias[Q * K];
    static uint8_t keep[Q * K];
    for (int i = 0; i < B * Q * K; i++)
        in[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < Q * K; i++) {
        keep[i] = 1;
        bias[i] = 0.25f * (float)(i % 5);
    }
    const int64_t mask_strides[3] = {0, K, 1};
    for (int kind = 0; kind < 3; kind++) {
        for (int log_output = 0; log_output < 2; log_output++) {
            softmax_desc desc;
            softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, K);
            desc.ndim = 3;
            desc.shape[0] = B, desc.shape[1] = Q, desc.shape[2] = K;
            if (kind == 0)
                desc.where = keep, desc.where_strides = mask_strides;
            else if (kind == 1)
                desc.mask = bias, desc.mask_strides = mask_strides;
            else
                desc.max_bias = 8.0, desc.head_axis = 0;
            EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, in, NULL, uncausal), uncausal, sizeof uncausal);
            desc.causal = 1;
            /* every element kept: the call without the causal mask */
            desc.causal_offset = INT64_MAX;
            EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, in, NULL, out), out, sizeof out);
            for (int i = 0; i < B * Q * K; i++)
                if (!(fabsf(out[i] - uncausal[i]) <= 1e-6f * fabsf(uncausal[i])))
                    fail_msg("kind %d, log %d, offset INT64_MAX: element %d is %g, without causal %g", kind, log_output,
                             i, (double)out[i], (double)uncausal[i]);
            /* nothing kept, with or without the largest negative offsets */
            const int64_t none_kept[] = {INT64_MIN, INT64_MIN + 1, -(int64_t)Q - 300, -(int64_t)Q};
            for (size_t o = 0; o < sizeof none_kept / sizeof none_kept[0]; o++) {
                desc.causal_offset = none_kept[o];
                EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, in, NULL, out), out, sizeof out);
                for (int i = 0; i < B * Q * K; i++)
                    if (out[i] != (log_output ? -INFINITY : 0.0f))
                        fail_msg("kind %d, log %d, offset %lld: element %d is %g", kind, log_output,
                                 (long long)none_kept[o], i, (double)out[i]);
            }
        }
    }
}

/* where / causal / -inf mask exclusions give probability 0 whatever the
 * sign of the scale (they once took all the mass for scale < 0). */
static void test_exclusions_with_negative_scale(void **state)
{
    (void)state;
    enum { ROWS = 3, COLS = 6 };
    float in[ROWS * COLS], out[ROWS * COLS], mask[COLS];
    uint8_t keep[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) {
        in[i] = (float)((i * 5) % 11) - 5.0f;
        keep[i] = (uint8_t)(i % 3 != 1);
    }
    for (int j = 0; j < COLS; j++)
        mask[j] = j % 2 ? -INFINITY : 0.0f;
    static const int64_t broadcast_rows[2] = {0, 1};
    const double scales[] = {-0.5, -3.0, -INFINITY, 0.0, 2.0};
    for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
        for (int kind = 0; kind < 3; kind++) {
            for (int axis = 0; axis <= 1; axis++) {
                softmax_desc desc;
                softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, COLS);
                desc.ndim = 2;
                desc.shape[0] = ROWS;
                desc.shape[1] = COLS;
                desc.scale = scales[s];
                if (kind == 0) {
                    desc.axis = axis;
                    desc.where = keep;
                } else if (kind == 1) {
                    desc.causal = 1;
                } else {
                    desc.axis = axis;
                    desc.mask = mask;
                    desc.mask_strides = broadcast_rows;
                }
                EXPECT_CALL(SOFTMAX_OK, softmax_execute(&desc, in, NULL, out), out, sizeof out);
                for (int r = 0; r < ROWS; r++) {
                    for (int j = 0; j < COLS; j++) {
                        const int excluded = kind == 0 ? !keep[r * COLS + j] : kind == 1 ? j > r : j % 2;
                        if (excluded && out[r * COLS + j] != 0.0f)
                            fail_msg("scale %g, exclusion kind %d, axis %d: excluded (%d, %d) got %g", scales[s], kind,
                                     desc.axis, r, j, (double)out[r * COLS + j]);
                    }
                }
            }
        }
    }
}

static void test_convert_bad_types_and_in_place(void **state)
{
    (void)state;
    uint16_t halves[4] = {0x3c00, 0xbc00, 0x7c00, 0x0001};
    float out[4];
    EXPECT_CALL(SOFTMAX_E_INVALID_DTYPE, softmax_convert(out, SOFTMAX_DTYPE_F32, halves, (softmax_dtype)0, 4), out,
                sizeof out);
    EXPECT_CALL(SOFTMAX_E_INVALID_DTYPE, softmax_convert(out, SOFTMAX_DTYPE_F32, halves, (softmax_dtype)-1, 4), out,
                sizeof out);
    EXPECT_CALL(SOFTMAX_E_NULL_POINTER, softmax_convert(out, SOFTMAX_DTYPE_F32, NULL, SOFTMAX_DTYPE_F16, 4), out,
                sizeof out);
    /* in place between the two 16-bit types is allowed, element by element */
    uint16_t in_place[4];
    memcpy(in_place, halves, sizeof halves);
    uint16_t separate[4];
    assert_int_equal(softmax_convert(separate, SOFTMAX_DTYPE_BF16, halves, SOFTMAX_DTYPE_F16, 4), SOFTMAX_OK);
    assert_int_equal(softmax_convert(in_place, SOFTMAX_DTYPE_BF16, in_place, SOFTMAX_DTYPE_F16, 4), SOFTMAX_OK);
    assert_memory_equal(in_place, separate, sizeof separate);
}

static void test_desc_init_defers_checks(void **state)
{
    (void)state;
    float in[3] = {1, 2, 3}, out[3];
    softmax_desc desc;
    assert_int_equal(softmax_desc_init(&desc, (softmax_op)99, SOFTMAX_DTYPE_F32, 3), SOFTMAX_OK);
    EXPECT_CALL(SOFTMAX_E_INVALID_ARGUMENT, softmax_execute(&desc, in, NULL, out), out, sizeof out);
    assert_int_equal(softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, (softmax_dtype)42, 3), SOFTMAX_OK);
    EXPECT_CALL(SOFTMAX_E_INVALID_DTYPE, softmax_execute(&desc, in, NULL, out), out, sizeof out);
}

static void test_thread_counts_above_the_cap(void **state)
{
    (void)state;
    assert_int_equal(softmax_set_num_threads(1 << 20), SOFTMAX_OK);
    assert_true(softmax_get_num_threads() >= 1 && softmax_get_num_threads() <= 1024);
    assert_int_equal(softmax_set_num_threads(0), SOFTMAX_OK);
}

int main(void)
{
    const int prologue = isa_prologue();
    if (prologue != 0)
        return prologue;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_calls_accept_null_pointers),
        cmocka_unit_test(test_dst_overlapping_where_or_other_layout),
        cmocka_unit_test(test_negative_strides_below_address_zero),
        cmocka_unit_test(test_extreme_causal_offsets),
        cmocka_unit_test(test_extreme_causal_offsets_with_masks),
        cmocka_unit_test(test_exclusions_with_negative_scale),
        cmocka_unit_test(test_convert_bad_types_and_in_place),
        cmocka_unit_test(test_desc_init_defers_checks),
        cmocka_unit_test(test_thread_counts_above_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
