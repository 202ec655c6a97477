/*
 * test_exp_exhaustive.c -- the exponential inside the forward kernels, on the
 * code path chosen by SOFTMAX_ISA (ctest runs it once per path):
 *
 *   f32: every float x in [-104, 0] (about 1.12e9 values): the ulp error
 *        against libm's double exp (29 bits more than float), of the
 *        rounded exponential and of the unrounded one the softmax kernels
 *        carry (rounded value + residual), and weak monotonicity (x1 < x2
 *        implies e^x1 <= e^x2) over the whole range.
 *   f64: 2e7 random doubles in [-745, 0] plus dense runs of consecutive
 *        doubles around every 1/2 of the argument reduction's grid in a few
 *        binades, against expl (11 bits more than double).
 *
 * SOFTMAX_EXP_STRIDE=K checks every K-th float only (the CI's reduced form);
 * the default, 1, is the full run. SOFTMAX_EXP_F64_ROUNDS=R draws R batches
 * of 2^20 random doubles instead of 20 (the dense runs always run): the
 * emulated aarch64 build, where expl is software quad, takes R = 1. Results below the normal range may be
 * flushed to zero by the SIMD paths and are only required to lie in
 * [0, FLT_MIN] there.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* Bounds over normal results, in ulp of the result: the exponential rounded
 * to the data type (what the gradients use), and the unrounded value the
 * softmax kernels round once at the end (their output adds half an ulp of
 * the normalisation and the sum's error; contract: 3 ulp f32, 4 f64). */
#define EXP_F32_ULP_BOUND 2.0
#define EXP_F64_ULP_BOUND 2.0
#define UNROUNDED_F32_ULP_BOUND 2.0
#define UNROUNDED_F64_ULP_BOUND 2.0

static const softmax_kernels *kernels_for(softmax_dtype dtype)
{
    int status = 0;
    const softmax_kernels *kernels = softmax_dispatch(dtype, "test_exp_exhaustive", &status);
    if (kernels == NULL)
        fail_msg("no kernels: %s", softmax_last_error());
    return kernels;
}

static float float_from_bits(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static double ulp_error_f32(float got, double reference)
{
    int exponent;
    frexp(reference, &exponent);
    return fabs((double)got - reference) / ldexp(1.0, exponent - 24);
}

typedef struct chunk_result {
    double max_ulp;
    double max_unrounded_ulp;
    float worst_x;
    size_t violations;    /* monotonicity, inside the chunk */
    size_t bad_subnormal; /* results outside [0, FLT_MIN] where e^x < FLT_MIN */
    float first_y;
    float last_y;
    size_t checked;
} chunk_result;

enum { BATCH = 1 << 14 };

static void check_f32_range(const softmax_kernels *k, uint32_t first_bits, uint32_t last_bits, uint32_t stride,
                            chunk_result *result)
{
    float x[BATCH], y[BATCH], residual[BATCH];
    memset(result, 0, sizeof *result);
    bool have_previous = false;
    float previous = 0;
    for (uint64_t start = first_bits; start <= last_bits;) {
        size_t count = 0;
        uint64_t bits = start;
        for (; count < BATCH && bits <= last_bits; bits += stride)
            x[count++] = float_from_bits((uint32_t)bits);
        start = bits;
        k->exp(x, y, residual, count);
        for (size_t i = 0; i < count; i++) {
            double reference = exp((double)x[i]);
            if (reference >= FLT_MIN) {
                double error = ulp_error_f32(y[i], reference);
                if (error > result->max_ulp) {
                    result->max_ulp = error;
                    result->worst_x = x[i];
                }
                int exponent;
                frexp(reference, &exponent);
                double unrounded = fabs(((double)y[i] + (double)residual[i]) - reference) / ldexp(1.0, exponent - 24);
                if (unrounded > result->max_unrounded_ulp)
                    result->max_unrounded_ulp = unrounded;
            } else if (!(y[i] >= 0 && y[i] <= FLT_MIN)) {
                result->bad_subnormal++;
            }
            /* x decreases along the bit patterns of negative floats. */
            if (have_previous && y[i] > previous)
                result->violations++;
            if (!have_previous)
                result->first_y = y[i];
            previous = y[i];
            have_previous = true;
        }
        result->checked += count;
    }
    result->last_y = previous;
}

static void test_f32_every_float_in_domain(void **state)
{
    (void)state;
    const softmax_kernels *k = kernels_for(SOFTMAX_DTYPE_F32);
    const char *stride_text = getenv("SOFTMAX_EXP_STRIDE");
    const uint32_t stride = stride_text ? (uint32_t)strtoul(stride_text, NULL, 10) : 1;
    assert_true(stride >= 1);
    const uint32_t first = 0x80000000u; /* -0 */
    uint32_t last;
    const float lowest = -104.0f;
    memcpy(&last, &lowest, sizeof last);
    enum { CHUNKS = 64 };
    chunk_result results[CHUNKS];
    const uint64_t span = (uint64_t)(last - first) + 1;
#pragma omp parallel for schedule(dynamic)
    for (int c = 0; c < CHUNKS; c++) {
        /* Chunk starts on the stride's grid so that the union is every
         * stride-th pattern. */
        uint64_t begin = first + (span * (uint64_t)c / CHUNKS) / stride * stride;
        uint64_t end = first + (span * (uint64_t)(c + 1) / CHUNKS) / stride * stride;
        if (c == CHUNKS - 1)
            end = (uint64_t)last + 1;
        if (end > begin)
            check_f32_range(k, (uint32_t)begin, (uint32_t)(end - 1), stride, &results[c]);
        else
            memset(&results[c], 0, sizeof results[c]);
    }
    double max_ulp = 0, max_unrounded = 0;
    float worst_x = 0;
    size_t violations = 0, bad_subnormal = 0, checked = 0;
    for (int c = 0; c < CHUNKS; c++) {
        if (results[c].max_unrounded_ulp > max_unrounded)
            max_unrounded = results[c].max_unrounded_ulp;
        if (results[c].max_ulp > max_ulp) {
            max_ulp = results[c].max_ulp;
            worst_x = results[c].worst_x;
        }
        violations += results[c].violations;
        bad_subnormal += results[c].bad_subnormal;
        checked += results[c].checked;
        if (c > 0 && results[c].checked && results[c - 1].checked && results[c].first_y > results[c - 1].last_y)
            violations++;
    }
    printf("exp f32 [%s]: %zu floats in [-104, 0] (stride %u): max error %.4f ulp at x = %a (unrounded %.4f ulp), "
           "%zu monotonicity violations, %zu bad sub-normal results\n",
           softmax_isa_name(), checked, stride, max_ulp, (double)worst_x, max_unrounded, violations, bad_subnormal);
    assert_true(checked >= (size_t)(span / stride));
    assert_int_equal(violations, 0);
    assert_int_equal(bad_subnormal, 0);
    assert_true(max_ulp <= EXP_F32_ULP_BOUND);
    assert_true(max_unrounded <= UNROUNDED_F32_ULP_BOUND);
}

/* ------------------------------------------------------------------ f64 */

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double ulp_error_f64(double got, long double reference)
{
    int exponent;
    frexpl(reference, &exponent);
    return (double)(fabsl((long double)got - reference) / ldexpl(1.0L, exponent - 53));
}

typedef struct f64_stats {
    double max_ulp;
    double max_unrounded_ulp;
    double worst_x;
    size_t violations;
    size_t bad_subnormal;
    size_t checked;
} f64_stats;

/* Checks x[0..n) (sorted ascending when `sorted`) and accumulates. */
static void check_f64(const softmax_kernels *k, const double *x, size_t n, bool sorted, f64_stats *stats)
{
    double *y = malloc(n * sizeof *y);
    double *residual = malloc(n * sizeof *residual);
    assert_non_null(y);
    assert_non_null(residual);
    k->exp(x, y, residual, n);
    for (size_t i = 0; i < n; i++) {
        long double reference = expl((long double)x[i]);
        if (reference >= DBL_MIN) {
            double error = ulp_error_f64(y[i], reference);
            if (error > stats->max_ulp) {
                stats->max_ulp = error;
                stats->worst_x = x[i];
            }
            int exponent;
            frexpl(reference, &exponent);
            double unrounded = (double)(fabsl(((long double)y[i] + (long double)residual[i]) - reference) /
                                        ldexpl(1.0L, exponent - 53));
            if (unrounded > stats->max_unrounded_ulp)
                stats->max_unrounded_ulp = unrounded;
        } else if (!(y[i] >= 0 && y[i] <= DBL_MIN)) {
            stats->bad_subnormal++;
        }
        if (sorted && i > 0 && y[i] < y[i - 1])
            stats->violations++;
    }
    stats->checked += n;
    free(y);
    free(residual);
}

static void test_f64_random_and_dense_runs(void **state)
{
    (void)state;
    const softmax_kernels *k = kernels_for(SOFTMAX_DTYPE_F64);
    f64_stats stats = {0, 0, 0, 0, 0, 0};
    enum { RANDOM = 1 << 20, RUN = 4096 };
    const char *rounds_text = getenv("SOFTMAX_EXP_F64_ROUNDS");
    const int rounds = rounds_text ? atoi(rounds_text) : 20;
    assert_true(rounds >= 1);
    double *x = malloc(RANDOM * sizeof *x);
    assert_non_null(x);
    uint64_t seed = 0x5eed;
    for (int round = 0; round < rounds; round++) {
        for (size_t i = 0; i < RANDOM; i++)
            x[i] = -745.0 * (double)(splitmix(&seed) >> 11) * 0x1p-53;
        check_f64(k, x, RANDOM, false, &stats);
    }
    /* Consecutive doubles across the points where the reduction switches
     * from k to k + 1 (x * log2(e) = j + 1/2) and around 0. */
    const double centers[] = {-0.0,
                              -0.34657359027997264,
                              -1.0397207708399179,
                              -10.051300784785912,
                              -100.16863885471856,
                              -700.2485838296839,
                              -708.3964185322641};
    for (size_t c = 0; c < sizeof centers / sizeof centers[0]; c++) {
        double start = centers[c];
        for (int i = 0; i < RUN / 2; i++)
            start = nextafter(start, -INFINITY);
        for (int i = 0; i < RUN; i++) {
            x[i] = start;
            start = nextafter(start, INFINITY);
        }
        check_f64(k, x, RUN, true, &stats);
    }
    free(x);
    printf("exp f64 [%s]: %zu doubles: max error %.4f ulp at x = %a (unrounded %.4f ulp), %zu monotonicity "
           "violations in dense runs, %zu bad sub-normal results\n",
           softmax_isa_name(), stats.checked, stats.max_ulp, stats.worst_x, stats.max_unrounded_ulp, stats.violations,
           stats.bad_subnormal);
    assert_int_equal(stats.violations, 0);
    assert_int_equal(stats.bad_subnormal, 0);
    assert_true(stats.max_ulp <= EXP_F64_ULP_BOUND);
    assert_true(stats.max_unrounded_ulp <= UNROUNDED_F64_ULP_BOUND);
}

int main(void)
{
    if (softmax_isa_name() == NULL) {
        printf("skipped: %s\n", softmax_last_error());
        return 77; /* ctest: SKIP_RETURN_CODE */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_every_float_in_domain),
        cmocka_unit_test(test_f64_random_and_dense_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
