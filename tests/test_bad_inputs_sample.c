/*
 * test_bad_inputs_sample.c -- the sampler and row-statistics rows of
 * docs/bad_inputs.md: every kind of bad input to softmax_sample(),
 * softmax_sampler_params_init() and softmax_row_stats(), with the status,
 * the words of softmax_last_error(), and outputs that are left byte for byte
 * as they were (or, for rows without a distribution, the documented
 * row-failure values). Run on every code path; `--isa-unavailable` (with
 * SOFTMAX_ISA naming no path) checks that even empty calls report it.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { ROWS = 3, VOCAB = 5 };

/* Every output of one call, filled with the sentinel before it. */
typedef struct outputs {
    int64_t indices[ROWS];
    double probs[ROWS];
    double logsumexp[ROWS];
    double entropy[ROWS];
    int64_t argmax[ROWS];
} outputs;

static void reset(outputs *out)
{
    fill_sentinel(out, sizeof *out);
}

static void expect_untouched(const outputs *out)
{
    assert_true(is_sentinel(out, sizeof *out));
}

/* The status, and a message naming the function and containing `words`. */
static void expect_failure(int status, int expected, const char *function, const char *words)
{
    const char *message = softmax_last_error();
    if (status != expected)
        fail_msg("returned %d (%s), expected %d", status, message, expected);
    if (strstr(message, function) == NULL || strstr(message, words) == NULL)
        fail_msg("softmax_last_error() = \"%s\": expected \"%s\" and \"%s\" in it", message, function, words);
}

static void expect_success(int status)
{
    if (status != SOFTMAX_OK)
        fail_msg("returned %d (%s), expected SOFTMAX_OK", status, softmax_last_error());
    assert_string_equal(softmax_last_error(), "");
}

static const float logits_f32[ROWS * VOCAB] = {1, 2, 3, 4, 5, 0, -1, 2, 7, 3, 0.5f, 0.25f, 0, -2, 1};

static int sample_f32(const softmax_sampler_params *params, const void *logits, size_t rows, size_t vocab,
                      const uint64_t *streams, outputs *out)
{
    return softmax_sample(params, SOFTMAX_DTYPE_F32, logits, rows, vocab, 0, streams, out->indices, out->probs,
                          out->logsumexp);
}

static void test_sample_null_pointers(void **state)
{
    (void)state;
    outputs out;
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    reset(&out);
    expect_failure(sample_f32(NULL, logits_f32, ROWS, VOCAB, NULL, &out), SOFTMAX_E_NULL_POINTER, "softmax_sample",
                   "params is NULL");
    /* params is checked before anything else, even for an empty call */
    expect_failure(sample_f32(NULL, NULL, 0, 0, NULL, &out), SOFTMAX_E_NULL_POINTER, "softmax_sample",
                   "params is NULL");
    expect_failure(sample_f32(&params, NULL, ROWS, VOCAB, NULL, &out), SOFTMAX_E_NULL_POINTER, "softmax_sample",
                   "logits is NULL");
    expect_failure(
        softmax_sample(&params, SOFTMAX_DTYPE_F32, logits_f32, ROWS, VOCAB, 0, NULL, NULL, out.probs, out.logsumexp),
        SOFTMAX_E_NULL_POINTER, "softmax_sample", "indices is NULL");
    expect_untouched(&out);
    /* rows == 0: nothing to do, every pointer may be NULL */
    expect_success(softmax_sample(&params, SOFTMAX_DTYPE_F32, NULL, 0, VOCAB, 0, NULL, NULL, NULL, NULL));
    expect_success(softmax_sample(&params, SOFTMAX_DTYPE_BF16, NULL, 0, SIZE_MAX, 7, NULL, NULL, NULL, NULL));
    /* probs, logsumexp and stream_ids are optional */
    int64_t indices[ROWS];
    expect_success(softmax_sample(&params, SOFTMAX_DTYPE_F32, logits_f32, ROWS, VOCAB, 0, NULL, indices, NULL, NULL));
    for (int r = 0; r < ROWS; r++)
        assert_true(indices[r] >= 0 && indices[r] < VOCAB);
    assert_int_equal(softmax_sampler_params_init(NULL), SOFTMAX_E_NULL_POINTER);
    assert_non_null(strstr(softmax_last_error(), "softmax_sampler_params_init: params is NULL"));
}

/* vocab == 0 with rows > 0: logits may be NULL; every row has no
 * distribution and gets the row-failure values. */
static void test_sample_zero_vocab(void **state)
{
    (void)state;
    outputs out;
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    reset(&out);
    expect_failure(sample_f32(&params, NULL, ROWS, 0, NULL, &out), SOFTMAX_E_NO_FINITE_LOGIT, "softmax_sample",
                   "row 0 has a NaN logit or none above -inf");
    for (int r = 0; r < ROWS; r++) {
        assert_int_equal(out.indices[r], -1);
        assert_true(isnan(out.probs[r]) && isnan(out.logsumexp[r]));
    }
    assert_true(is_sentinel(out.entropy, sizeof out.entropy + sizeof out.argmax));
}

static void test_sample_sizes(void **state)
{
    (void)state;
    outputs out;
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    reset(&out);
    /* The logits are never read: the sizes are checked first. */
    expect_failure(sample_f32(&params, logits_f32, SIZE_MAX / 2, VOCAB, NULL, &out), SOFTMAX_E_SIZE_OVERFLOW,
                   "softmax_sample", "overflows");
    /* the element count fits, the byte count does not */
    expect_failure(
        softmax_sample(&params, SOFTMAX_DTYPE_F64, logits_f32, SIZE_MAX / 16, 3, 0, NULL, out.indices, NULL, NULL),
        SOFTMAX_E_SIZE_OVERFLOW, "softmax_sample", "overflows");
    /* vocab == 0 bounds nothing: the 8-byte outputs of SIZE_MAX rows do not fit */
    expect_failure(sample_f32(&params, NULL, SIZE_MAX, 0, NULL, &out), SOFTMAX_E_SIZE_OVERFLOW, "softmax_sample",
                   "overflows");
    /* indices are 32-bit inside the sampler */
    expect_failure(sample_f32(&params, logits_f32, 1, (size_t)1 << 32, NULL, &out), SOFTMAX_E_INVALID_ARGUMENT,
                   "softmax_sample", "vocab = 4294967296 (must be < 2^32)");
    expect_untouched(&out);
}

static void test_sample_unknown_dtype(void **state)
{
    (void)state;
    outputs out;
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    const int unknown[] = {0, 5, 99, -1};
    reset(&out);
    for (size_t k = 0; k < ARRAY_LEN(unknown); k++) {
        for (size_t rows = 0; rows <= ROWS; rows += ROWS) {
            expect_failure(softmax_sample(&params, (softmax_dtype)unknown[k], logits_f32, rows, VOCAB, 0, NULL,
                                          out.indices, out.probs, out.logsumexp),
                           SOFTMAX_E_INVALID_DTYPE, "softmax_sample", "unknown dtype");
        }
    }
    expect_untouched(&out);
}

static void test_sample_parameters_out_of_range(void **state)
{
    (void)state;
    softmax_sampler_params good;
    softmax_sampler_params_init(&good);
    struct {
        softmax_sampler_params params;
        int status;
        const char *words;
    } cases[24];
    size_t count = 0;
#define BAD(field, value, code, text)                                                                                  \
    do {                                                                                                               \
        cases[count].params = good;                                                                                    \
        cases[count].params.field = value;                                                                             \
        cases[count].status = code;                                                                                    \
        cases[count++].words = text;                                                                                   \
    } while (0)
    BAD(temperature, NAN, SOFTMAX_E_INVALID_PARAMETER, "temperature = nan (must be >= 0)");
    BAD(temperature, -NAN, SOFTMAX_E_INVALID_PARAMETER, "(must be >= 0)");
    BAD(temperature, -1e-300, SOFTMAX_E_INVALID_PARAMETER, "temperature = -1e-300 (must be >= 0)");
    BAD(temperature, -INFINITY, SOFTMAX_E_INVALID_PARAMETER, "temperature = -inf");
    BAD(top_k, -1, SOFTMAX_E_INVALID_PARAMETER, "top_k = -1 (must be >= 0; 0 = off)");
    BAD(top_k, INT64_MIN, SOFTMAX_E_INVALID_PARAMETER, "top_k = -9223372036854775808");
    BAD(top_p, 0.0, SOFTMAX_E_INVALID_PARAMETER, "top_p = 0 (must be in (0, 1]; 1 = off)");
    BAD(top_p, -0.5, SOFTMAX_E_INVALID_PARAMETER, "top_p = -0.5");
    BAD(top_p, 1.0000001, SOFTMAX_E_INVALID_PARAMETER, "top_p = 1");
    BAD(top_p, INFINITY, SOFTMAX_E_INVALID_PARAMETER, "top_p = inf");
    BAD(top_p, NAN, SOFTMAX_E_INVALID_PARAMETER, "top_p = nan");
    BAD(min_p, -0.1, SOFTMAX_E_INVALID_PARAMETER, "min_p = -0.1 (must be in [0, 1]; 0 = off)");
    BAD(min_p, 1.5, SOFTMAX_E_INVALID_PARAMETER, "min_p = 1.5");
    BAD(min_p, INFINITY, SOFTMAX_E_INVALID_PARAMETER, "min_p = inf");
    BAD(min_p, NAN, SOFTMAX_E_INVALID_PARAMETER, "min_p = nan");
    BAD(reserved[0], 1, SOFTMAX_E_UNSUPPORTED, "params->reserved[0] is not zero");
    BAD(reserved[2], UINT64_MAX, SOFTMAX_E_UNSUPPORTED, "params->reserved[2] is not zero");
    BAD(reserved[3], 1, SOFTMAX_E_UNSUPPORTED, "params->reserved[3] is not zero");
#undef BAD
    outputs out;
    reset(&out);
    for (size_t c = 0; c < count; c++) {
        /* also with rows == 0 and NULL pointers: parameters are checked first */
        expect_failure(sample_f32(&cases[c].params, logits_f32, ROWS, VOCAB, NULL, &out), cases[c].status,
                       "softmax_sample", cases[c].words);
        expect_failure(sample_f32(&cases[c].params, NULL, 0, VOCAB, NULL, &out), cases[c].status, "softmax_sample",
                       cases[c].words);
    }
    expect_untouched(&out);
    /* The boundaries are valid: -0 is greedy, +inf uniform, k beyond the
     * vocabulary off, top_p 1 off, min_p 0 off and 1 the arg max only. */
    const double temperatures[] = {-0.0, 0.0, 1e-300, INFINITY};
    for (size_t t = 0; t < ARRAY_LEN(temperatures); t++) {
        softmax_sampler_params edge = good;
        edge.temperature = temperatures[t];
        edge.top_k = INT64_MAX;
        edge.top_p = 1.0;
        edge.min_p = 0.0;
        expect_success(sample_f32(&edge, logits_f32, ROWS, VOCAB, NULL, &out));
        if (temperatures[t] == 0.0)
            assert_true(out.indices[0] == 4 && out.indices[1] == 3 && out.indices[2] == 4);
        edge.min_p = 1.0;
        edge.top_p = 4.9e-324;
        expect_success(sample_f32(&edge, logits_f32, ROWS, VOCAB, NULL, &out));
        if (temperatures[t] < INFINITY) /* only the arg max survives both */
            assert_true(out.indices[0] == 4 && out.indices[1] == 3 && out.indices[2] == 4);
    }
}

/* Logits of every type from doubles (exact for the values used here). */
static void *logits_as(softmax_dtype dtype, const double *values, size_t n)
{
    void *buffer = malloc(n * 8);
    assert_non_null(buffer);
    assert_int_equal(softmax_convert(buffer, dtype, values, SOFTMAX_DTYPE_F64, n), SOFTMAX_OK);
    return buffer;
}

static void test_sample_non_finite_logits(void **state)
{
    (void)state;
    const double inf = INFINITY;
    /* row 0 fine, row 1 a NaN (beside +inf: NaN decides), row 2 all -inf */
    const double failing[ROWS * VOCAB] = {1, 2, 3, -inf, 0, inf, 1, NAN, 2, 3, -inf, -inf, -inf, -inf, -inf};
    /* +inf entries share the draw, -inf entries are never drawn */
    const double special[ROWS * VOCAB] = {-inf, inf, 0, inf, -inf, -inf, -inf, 5, -inf, -inf, 1e300, -inf, 0, 0, 0};
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    for (size_t d = 0; d < ARRAY_LEN(types); d++) {
        for (int greedy = 0; greedy <= 1; greedy++) {
            softmax_sampler_params params;
            softmax_sampler_params_init(&params);
            params.temperature = greedy ? 0.0 : 0.7;
            params.top_k = greedy ? 0 : 2;
            params.top_p = 0.9;
            outputs out;
            reset(&out);
            void *logits = logits_as(types[d], failing, ROWS * VOCAB);
            int status =
                softmax_sample(&params, types[d], logits, ROWS, VOCAB, 3, NULL, out.indices, out.probs, out.logsumexp);
            free(logits);
            expect_failure(status, SOFTMAX_E_NO_FINITE_LOGIT, "softmax_sample",
                           "row 1 has a NaN logit or none above -inf");
            /* the one status after which outputs were written: the other
             * rows are sampled, the failed ones get -1 and NaN */
            assert_true(out.indices[0] >= 0 && out.indices[0] <= 2 && out.probs[0] > 0.0 && out.probs[0] <= 1.0);
            for (int r = 1; r < ROWS; r++) {
                assert_int_equal(out.indices[r], -1);
                assert_true(isnan(out.probs[r]) && isnan(out.logsumexp[r]));
            }
            assert_true(is_sentinel(out.entropy, sizeof out.entropy + sizeof out.argmax));

            logits = logits_as(types[d], special, ROWS * VOCAB);
            for (uint64_t step = 0; step < 20; step++) {
                expect_success(softmax_sample(&params, types[d], logits, ROWS, VOCAB, step, NULL, out.indices,
                                              out.probs, out.logsumexp));
                assert_true(out.indices[0] == 1 || out.indices[0] == 3);
                assert_true(out.indices[1] == 2);
                assert_true(out.indices[2] == 0); /* 1e300 (+inf in the narrower types) dominates */
                if (!greedy)
                    assert_true(out.logsumexp[0] == inf && out.probs[0] == 0.5);
            }
            free(logits);
        }
    }
}

static void test_sample_overlapping_outputs(void **state)
{
    (void)state;
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    /* one buffer holding the logits and room for outputs behind them */
    union {
        float logits[ROWS * VOCAB + 8];
        int64_t words[(ROWS * VOCAB + 8) / 2];
        double values[(ROWS * VOCAB + 8) / 2];
    } shared;
    uint64_t streams[ROWS + 2] = {4, 5, 6, 7, 8};
    outputs out;
    struct {
        int64_t *indices;
        double *probs, *logsumexp;
        const uint64_t *streams;
        const char *words;
    } cases[] = {
        {&shared.words[1], NULL, NULL, NULL, "indices overlaps logits"},
        {&shared.words[7], NULL, NULL, NULL, "indices overlaps logits"}, /* its last word */
        {out.indices, &shared.values[2], NULL, NULL, "probs overlaps logits"},
        {out.indices, NULL, &shared.values[0], NULL, "logsumexp overlaps logits"},
        {out.indices, (double *)(void *)&out.indices[2], NULL, NULL, "probs overlaps indices"},
        {out.indices, out.probs, out.probs, NULL, "logsumexp overlaps probs"},
        {out.indices, out.probs, (double *)(void *)out.indices, NULL, "logsumexp overlaps indices"},
        {(int64_t *)(void *)&streams[2], NULL, NULL, streams, "indices overlaps stream_ids"},
        {(int64_t *)(void *)streams, NULL, NULL, streams, "indices overlaps stream_ids"},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        memcpy(shared.logits, logits_f32, sizeof logits_f32);
        fill_sentinel(&shared.logits[ROWS * VOCAB], 8 * sizeof(float));
        uint64_t saved_streams[ROWS + 2];
        memcpy(saved_streams, streams, sizeof streams);
        reset(&out);
        int status = softmax_sample(&params, SOFTMAX_DTYPE_F32, shared.logits, ROWS, VOCAB, 0, cases[c].streams,
                                    cases[c].indices, cases[c].probs, cases[c].logsumexp);
        expect_failure(status, SOFTMAX_E_OVERLAP, "softmax_sample", cases[c].words);
        assert_memory_equal(shared.logits, logits_f32, sizeof logits_f32);
        assert_true(is_sentinel(&shared.logits[ROWS * VOCAB], 8 * sizeof(float)));
        assert_memory_equal(streams, saved_streams, sizeof streams);
        expect_untouched(&out);
    }
    /* touching is not overlapping: indices right behind 3 rows of 4 logits
     * (48 bytes in, 8-byte aligned) */
    memcpy(shared.logits, logits_f32, sizeof logits_f32);
    params.temperature = 0.0; /* greedy: rows {1 2 3 4}, {5 0 -1 2}, {7 3 .5 .25} */
    expect_success(softmax_sample(&params, SOFTMAX_DTYPE_F32, shared.logits, ROWS, VOCAB - 1, 0, NULL,
                                  &shared.words[ROWS * (VOCAB - 1) / 2], NULL, NULL));
    assert_true(shared.words[6] == 3 && shared.words[7] == 0 && shared.words[8] == 0);
    assert_memory_equal(shared.logits, logits_f32, ROWS * (VOCAB - 1) * sizeof(float));
}

static void test_row_stats_errors(void **state)
{
    (void)state;
    outputs out;
    reset(&out);
    const int unknown[] = {0, 7, -3};
    for (size_t k = 0; k < ARRAY_LEN(unknown); k++) {
        expect_failure(softmax_row_stats((softmax_dtype)unknown[k], logits_f32, ROWS, VOCAB, 1.0, out.logsumexp,
                                         out.entropy, out.argmax),
                       SOFTMAX_E_INVALID_DTYPE, "softmax_row_stats", "unknown dtype");
        expect_failure(softmax_row_stats((softmax_dtype)unknown[k], NULL, 0, 0, 1.0, NULL, NULL, NULL),
                       SOFTMAX_E_INVALID_DTYPE, "softmax_row_stats", "unknown dtype");
    }
    /* a NaN scale, even for an empty call */
    expect_failure(
        softmax_row_stats(SOFTMAX_DTYPE_F32, logits_f32, ROWS, VOCAB, NAN, out.logsumexp, out.entropy, out.argmax),
        SOFTMAX_E_INVALID_SCALE, "softmax_row_stats", "scale is NaN");
    expect_failure(softmax_row_stats(SOFTMAX_DTYPE_F16, NULL, 0, VOCAB, -NAN, NULL, NULL, NULL),
                   SOFTMAX_E_INVALID_SCALE, "softmax_row_stats", "scale is NaN");
    expect_failure(softmax_row_stats(SOFTMAX_DTYPE_F64, NULL, ROWS, VOCAB, 1.0, out.logsumexp, out.entropy, out.argmax),
                   SOFTMAX_E_NULL_POINTER, "softmax_row_stats", "x is NULL");
    expect_failure(softmax_row_stats(SOFTMAX_DTYPE_F32, logits_f32, SIZE_MAX / 4, VOCAB, 1.0, out.logsumexp,
                                     out.entropy, out.argmax),
                   SOFTMAX_E_SIZE_OVERFLOW, "softmax_row_stats", "overflows");
    /* x itself would fit, but not the scratch of three rows per thread */
    expect_failure(
        softmax_row_stats(SOFTMAX_DTYPE_F32, logits_f32, 1, SIZE_MAX / 8, 1.0, out.logsumexp, out.entropy, out.argmax),
        SOFTMAX_E_SIZE_OVERFLOW, "softmax_row_stats", "overflows");
    /* cols == 0 bounds nothing: SIZE_MAX rows of 8-byte outputs */
    expect_failure(softmax_row_stats(SOFTMAX_DTYPE_F32, NULL, SIZE_MAX, 0, 1.0, out.logsumexp, NULL, NULL),
                   SOFTMAX_E_SIZE_OVERFLOW, "softmax_row_stats", "overflows");
    expect_untouched(&out);

    /* rows == 0: nothing; cols == 0: "fully masked" rows with argmax -1 */
    expect_success(softmax_row_stats(SOFTMAX_DTYPE_F32, NULL, 0, VOCAB, 1.0, NULL, NULL, NULL));
    expect_success(softmax_row_stats(SOFTMAX_DTYPE_BF16, NULL, ROWS, 0, 1.0, out.logsumexp, out.entropy, out.argmax));
    for (int r = 0; r < ROWS; r++)
        assert_true(out.logsumexp[r] == -INFINITY && out.entropy[r] == 0.0 && out.argmax[r] == -1);
    /* every output optional: nothing computed, nothing written */
    reset(&out);
    expect_success(softmax_row_stats(SOFTMAX_DTYPE_F32, logits_f32, ROWS, VOCAB, 1.0, NULL, NULL, NULL));
    expect_untouched(&out);
}

static void test_row_stats_overlapping_outputs(void **state)
{
    (void)state;
    union {
        float x[ROWS * VOCAB + 9];
        double values[(ROWS * VOCAB + 9) / 2];
    } shared;
    outputs out;
    struct {
        double *logsumexp, *entropy;
        int64_t *argmax;
        const char *words;
    } cases[] = {
        {&shared.values[3], NULL, NULL, "logsumexp overlaps x"},
        {NULL, &shared.values[7], NULL, "entropy overlaps x"},
        {NULL, NULL, (int64_t *)(void *)&shared.values[0], "argmax overlaps x"},
        {out.logsumexp, out.logsumexp, NULL, "entropy overlaps logsumexp"},
        {out.logsumexp, &out.logsumexp[1], NULL, "entropy overlaps logsumexp"},
        {NULL, out.entropy, (int64_t *)(void *)&out.entropy[2], "argmax overlaps entropy"},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        memcpy(shared.x, logits_f32, sizeof logits_f32);
        reset(&out);
        int status = softmax_row_stats(SOFTMAX_DTYPE_F32, shared.x, ROWS, VOCAB, 2.0, cases[c].logsumexp,
                                       cases[c].entropy, cases[c].argmax);
        expect_failure(status, SOFTMAX_E_OVERLAP, "softmax_row_stats", cases[c].words);
        assert_memory_equal(shared.x, logits_f32, sizeof logits_f32);
        expect_untouched(&out);
    }
}

/* Non-finite inputs are not errors: the contract's values. */
static void test_row_stats_non_finite_rows(void **state)
{
    (void)state;
    const double inf = INFINITY;
    const double rows[ROWS * 4] = {1, NAN, inf, 3, -inf, -inf, -inf, -inf, 1, inf, inf, -inf};
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    for (size_t d = 0; d < ARRAY_LEN(types); d++) {
        void *x = logits_as(types[d], rows, ROWS * 4);
        outputs out;
        expect_success(softmax_row_stats(types[d], x, ROWS, 4, 1.0, out.logsumexp, out.entropy, out.argmax));
        free(x);
        assert_true(isnan(out.logsumexp[0]) && isnan(out.entropy[0]) && out.argmax[0] == 1);
        assert_true(out.logsumexp[1] == -inf && out.entropy[1] == 0.0 && out.argmax[1] == 0);
        assert_true(out.logsumexp[2] == inf && fabs(out.entropy[2] - log(2.0)) < 1e-15 && out.argmax[2] == 1);
    }
}

/* SOFTMAX_ISA naming a path this CPU lacks (or none): every call fails,
 * empty ones too, with a message naming the path, nothing written. */
static void test_unavailable_isa(void **state)
{
    (void)state;
    const char *forced = getenv("SOFTMAX_ISA");
    assert_non_null(forced);
    softmax_sampler_params params;
    assert_int_equal(softmax_sampler_params_init(&params), SOFTMAX_OK); /* fills a struct, runs no code path */
    outputs out;
    reset(&out);
    for (size_t rows = 0; rows <= ROWS; rows += ROWS) {
        expect_failure(sample_f32(&params, logits_f32, rows, VOCAB, NULL, &out), SOFTMAX_E_ISA_UNAVAILABLE,
                       "softmax_sample", forced);
        expect_failure(
            softmax_row_stats(SOFTMAX_DTYPE_F32, logits_f32, rows, VOCAB, 1.0, out.logsumexp, out.entropy, out.argmax),
            SOFTMAX_E_ISA_UNAVAILABLE, "softmax_row_stats", forced);
    }
    expect_untouched(&out);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--isa-unavailable") == 0) {
        const struct CMUnitTest isa_tests[] = {
            cmocka_unit_test(test_unavailable_isa),
        };
        return cmocka_run_group_tests_name("sampler bad inputs (SOFTMAX_ISA unavailable)", isa_tests, NULL, NULL);
    }
    const int prologue = isa_prologue();
    if (prologue != 0)
        return prologue;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_null_pointers),
        cmocka_unit_test(test_sample_zero_vocab),
        cmocka_unit_test(test_sample_sizes),
        cmocka_unit_test(test_sample_unknown_dtype),
        cmocka_unit_test(test_sample_parameters_out_of_range),
        cmocka_unit_test(test_sample_non_finite_logits),
        cmocka_unit_test(test_sample_overlapping_outputs),
        cmocka_unit_test(test_row_stats_errors),
        cmocka_unit_test(test_row_stats_overlapping_outputs),
        cmocka_unit_test(test_row_stats_non_finite_rows),
    };
    return cmocka_run_group_tests_name("sampler bad inputs", tests, NULL, NULL);
}
