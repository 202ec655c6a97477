/*
 * test_masked_short_rows.c -- short rows with fused masks, as attention
 * lays them out: scores [B, T, T] f32 with a causal mask, a `where`, a 0 /
 * -inf mask (f32, bf16), an added f32 bias or ALiBi, the mask [T, T]
 * broadcast over B, for row lengths T around one vector of every path (8
 * f32 on AVX2, 16 on AVX-512) and a few longer ones; softmax and
 * log-softmax, positive and negative scales.
 *
 * Such rows take the grouped tiny and small-row kernels with the mask
 * applied as x is read (and rows of exactly one vector have copies of their
 * own); B = 19 rows of each query fill a group of 16 (two of 8 on AVX2) and
 * leave a partial one.
 * Every row is checked against MPFR on the logits the mask leaves (z =
 * scale * x + bias over the kept elements, bias in double), within the
 * contract's bound; every excluded element must be exactly 0 (log-softmax
 * -inf).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

enum { KIND_CAUSAL, KIND_WHERE, KIND_MASK_F32, KIND_MASK_BF16, KIND_BIAS_F32, KIND_ALIBI_CAUSAL, KINDS };
static const char *const kind_names[KINDS] = {"causal",           "where",          "0/-inf f32 mask",
                                              "0/-inf bf16 mask", "added f32 bias", "ALiBi + causal"};

/* ALiBi's slope of head h of H heads with max_bias 8, as softmax.h
 * defines it (H2 the largest power of two <= H). */
static double alibi_slope_of(size_t h, size_t H)
{
    size_t H2 = 1;
    while (2 * H2 <= H)
        H2 *= 2;
    const double m0 = exp2(-8.0 / (double)H2), m1 = exp2(-8.0 / 2.0 / (double)H2);
    return h < H2 ? pow(m0, (double)(h + 1)) : pow(m1, (double)(2 * (h - H2) + 1));
}

/* The outputs got[0 .. count) of softmax (log-softmax) of the logits z
 * against MPFR: the test fails beyond the contract's f32 bound. */
static void check_row(const double *z, const float *got, size_t count, int log_output, err_stats *stats,
                      const char *what)
{
    ref_vec ref;
    ref_vec_init(&ref, count);
    ref_softmax(&ref, ref_line_make(SOFTMAX_DTYPE_F64, z, count, 1), 1.0, log_output);
    const ref_line line = ref_line_make(SOFTMAX_DTYPE_F32, got, count, 1);
    const double bound = contract_ulp_bound(SOFTMAX_DTYPE_F32);
    const size_t failures = log_output ? check_log_softmax_line(&ref, line, bound, stats, what)
                                       : check_softmax_line(&ref, line, bound, stats, what);
    ref_vec_free(&ref);
    if (failures != 0)
        fail_msg("%s: %zu outputs beyond %g ulp of MPFR", what, failures, bound);
}

static void check_kind(int kind, size_t T, double scale, int log_output, const float *x, const uint8_t *keep,
                       const float *bias, size_t B, err_stats *stats)
{
    const size_t total = B * T * T;
    float *mask = malloc(T * T * sizeof *mask), *y = malloc(total * sizeof *y);
    uint16_t *mask_bf16 = malloc(T * T * sizeof *mask_bf16);
    double *z = malloc(T * sizeof *z);
    assert_non_null(mask), assert_non_null(y), assert_non_null(mask_bf16), assert_non_null(z);
    for (size_t i = 0; i < T * T; i++)
        mask[i] = keep[i] ? 0.0f : -INFINITY;
    assert_int_equal(softmax_convert(mask_bf16, SOFTMAX_DTYPE_BF16, mask, SOFTMAX_DTYPE_F32, T * T), 0);
    const bool alibi = kind == KIND_ALIBI_CAUSAL;
    const size_t heads = alibi ? B : 1;
    softmax_desc desc;
    softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 3);
    desc.ndim = 3;
    desc.shape[0] = B, desc.shape[1] = T, desc.shape[2] = T;
    desc.scale = scale;
    int64_t mask_strides[3] = {0, (int64_t)T, 1};
    switch (kind) {
    case KIND_CAUSAL:
        desc.causal = 1;
        break;
    case KIND_WHERE:
        desc.where = keep, desc.where_strides = mask_strides;
        break;
    case KIND_MASK_F32:
        desc.mask = mask, desc.mask_strides = mask_strides;
        break;
    case KIND_MASK_BF16:
        desc.mask = mask_bf16, desc.mask_dtype = SOFTMAX_DTYPE_BF16, desc.mask_strides = mask_strides;
        break;
    case KIND_BIAS_F32:
        desc.mask = bias, desc.mask_strides = mask_strides;
        break;
    case KIND_ALIBI_CAUSAL:
        desc.causal = 1, desc.max_bias = 8.0, desc.head_axis = 0;
        break;
    }
    memset(y, 0x55, total * sizeof *y);
    assert_int_equal(softmax_execute(&desc, x, NULL, y), 0);
    char what[160];
    for (size_t b = 0; b < B; b++)
        for (size_t q = 0; q < T; q++) {
            const float *row = x + (b * T + q) * T;
            float *out = y + (b * T + q) * T;
            /* The kept elements' logits z (in double: exact for the
             * products and biases here), the rest excluded. */
            size_t kept = 0;
            bool is_kept[4096];
            for (size_t k = 0; k < T; k++) {
                const bool causal_kept = k <= q;
                switch (kind) {
                case KIND_CAUSAL:
                case KIND_ALIBI_CAUSAL:
                    is_kept[k] = causal_kept;
                    break;
                case KIND_BIAS_F32:
                    is_kept[k] = bias[q * T + k] != -INFINITY;
                    break;
                default:
                    is_kept[k] = keep[q * T + k] != 0;
                    break;
                }
                if (!is_kept[k])
                    continue;
                const double added = kind == KIND_BIAS_F32 ? (double)bias[q * T + k]
                                     : alibi               ? alibi_slope_of(b, heads) * (double)k
                                                           : 0.0;
                z[kept++] = scale * (double)row[k] + added;
            }
            float kept_out[4096];
            for (size_t k = 0, i = 0; k < T; k++) {
                if (is_kept[k]) {
                    kept_out[i++] = out[k];
                } else if (out[k] != (log_output ? -INFINITY : 0.0f)) {
                    fail_msg("%s, T = %zu, scale %g, %s: batch %zu row %zu element %zu is %.9g, excluded",
                             kind_names[kind], T, scale, log_output ? "log-softmax" : "softmax", b, q, k, out[k]);
                }
            }
            if (kept == 0)
                continue;
            snprintf(what, sizeof what, "%s, T = %zu, scale %g, %s, batch %zu row %zu", kind_names[kind], T, scale,
                     log_output ? "log-softmax" : "softmax", b, q);
            check_row(z, kept_out, kept, log_output, stats, what);
        }
    free(mask), free(y), free(mask_bf16), free(z);
}

/* Scores [B = 19, T, T] for each of the lengths: x normal (sd 6), plus
 * line_offset on every seventh line; the keep mask causal (with a few
 * holes if holes, every row keeping its diagonal), the bias finite (a few
 * units) where kept; every kind, each scale, softmax and log-softmax
 * checked (check_kind). */
static void check_every_kind(const char *label, const size_t *lengths, size_t length_count, const double *scales,
                             size_t scale_count, unsigned seed, double line_offset, bool holes)
{
    const size_t B = 19;
    test_rng rng;
    rng_seed(&rng, seed);
    err_stats stats;
    err_stats_init(&stats);
    for (size_t l = 0; l < length_count; l++) {
        const size_t T = lengths[l], total = B * T * T;
        float *x = malloc(total * sizeof *x), *bias = malloc(T * T * sizeof *bias);
        uint8_t *keep = malloc(T * T);
        assert_non_null(x), assert_non_null(bias), assert_non_null(keep);
        for (size_t line = 0; line < B * T; line++)
            for (size_t k = 0; k < T; k++)
                x[line * T + k] = (float)(rng_normal(&rng) * 6.0 + (line % 7 == 3 ? line_offset : 0.0));
        for (size_t q = 0; q < T; q++)
            for (size_t k = 0; k < T; k++) {
                keep[q * T + k] = k == q || (k < q && (!holes || rng_uniform(&rng) < 0.8));
                bias[q * T + k] = keep[q * T + k] ? (float)(rng_normal(&rng) * 3.0) : -INFINITY;
            }
        for (int kind = 0; kind < KINDS; kind++)
            for (size_t s = 0; s < scale_count; s++)
                for (int log_output = 0; log_output < 2; log_output++)
                    check_kind(kind, T, scales[s], log_output, x, keep, bias, B, &stats);
        free(x), free(bias), free(keep);
    }
    printf("%s: %zu outputs checked, largest error %.3f ulp\n", label, stats.checked, stats.max_err);
}

/* Every kind at T = 4 .. 20 (one vector of AVX2 and AVX-512 and their
 * neighbours), and 32, scales 1/8 (a power of two: the added-bias
 * kernels' exact-scale copies), 0.3 and -0.7, softmax and log-softmax;
 * B = 19 rows of each query fill a group of 16 (two of 8 on AVX2) and
 * leave a partial one. */
static void test_masked_short_rows_against_mpfr(void **state)
{
    (void)state;
    static const size_t lengths[] = {4, 7, 8, 9, 15, 16, 17, 20, 32};
    static const double scales[] = {0.125, 0.3, -0.7};
    check_every_kind("masked short rows", lengths, ARRAY_LEN(lengths), scales, ARRAY_LEN(scales), 16, 0.0, true);
}

/* Rows that the grouped kernels decline -- a maximum logit beyond their
 * range (ADDED_MASK_MAX_LIMIT: |z| above 1024 here) -- among rows they
 * compute, in whole groups of one run (rows of T <= one vector: groups of
 * 16 lines of one query sweep) and partial ones: each declined row must
 * still be computed (by the general path), its neighbours by the group.
 * Every seventh line offset by 20000, so that most groups hold one. */
static void test_declined_rows_in_groups(void **state)
{
    (void)state;
    static const size_t lengths[] = {8, 16, 20};
    static const double scales[] = {0.125, 0.3};
    check_every_kind("declined rows in groups", lengths, ARRAY_LEN(lengths), scales, ARRAY_LEN(scales), 1024, 20000.0,
                     false);
}

/* ALiBi on 70 heads: the planner computes the first heads' slopes once
 * (a table of 64), the others per line or run, and the line kernels' runner
 * reuses a slope across a head's lines. Rows of 16 (the grouped kernels)
 * and 300 (the line kernels) of heads 0, 1, 63, 64, 65 and 69 against MPFR,
 * two query rows each, softmax and log-softmax. */
static void test_alibi_slopes_of_many_heads(void **state)
{
    (void)state;
    enum { HEADS = 70, QUERIES = 2 };
    static const size_t lengths[] = {16, 300};
    static const size_t heads_checked[] = {0, 1, 63, 64, 65, 69};
    const double scale = 0.3;
    test_rng rng;
    rng_seed(&rng, 70);
    err_stats stats;
    err_stats_init(&stats);
    for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
        const size_t K = lengths[l], total = (size_t)HEADS * QUERIES * K;
        float *x = malloc(total * sizeof *x), *y = malloc(total * sizeof *y);
        double *z = malloc(K * sizeof *z);
        assert_non_null(x), assert_non_null(y), assert_non_null(z);
        for (size_t i = 0; i < total; i++)
            x[i] = (float)(rng_normal(&rng) * 4.0);
        for (int log_output = 0; log_output < 2; log_output++) {
            softmax_desc desc;
            softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 3);
            desc.ndim = 3;
            desc.shape[0] = HEADS, desc.shape[1] = QUERIES, desc.shape[2] = K;
            desc.scale = scale;
            desc.max_bias = 8.0, desc.head_axis = 0;
            assert_int_equal(softmax_execute(&desc, x, NULL, y), 0);
            for (size_t c = 0; c < ARRAY_LEN(heads_checked); c++)
                for (size_t q = 0; q < QUERIES; q++) {
                    const size_t h = heads_checked[c], line = h * QUERIES + q;
                    for (size_t k = 0; k < K; k++)
                        z[k] = scale * (double)x[line * K + k] + alibi_slope_of(h, HEADS) * (double)k;
                    char what[96];
                    snprintf(what, sizeof what, "ALiBi of %d heads, K = %zu, %s, head %zu query %zu", HEADS, K,
                             log_output ? "log-softmax" : "softmax", h, q);
                    check_row(z, y + line * K, K, log_output, &stats, what);
                }
        }
        free(x), free(y), free(z);
    }
    printf("ALiBi slopes of %d heads: %zu outputs checked, largest error %.3f ulp\n", HEADS, stats.checked,
           stats.max_err);
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masked_short_rows_against_mpfr),
        cmocka_unit_test(test_alibi_slopes_of_many_heads),
        cmocka_unit_test(test_declined_rows_in_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
