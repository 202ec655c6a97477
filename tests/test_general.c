/*
 * test_general.c -- the general API beyond contiguous f32/f64: bf16 and f16
 * data (and mixed types), arbitrary strides, and fused masks (additive,
 * boolean, causal, ALiBi), forward and backward, against MPFR; the
 * conversions against MPFR rounding; and every new error path leaving the
 * output untouched.
 *
 * The reference never uses the library: half-precision values are decoded
 * here, logits z = scale * x + mask + slope * j are formed exactly in MPFR,
 * and rounding to half precision is MPFR's with the format's exponent range.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpfr.h>

#include "testutil.h"

#define PREC 160

/* ------------------------------------------------------------------------ */
/* Independent decoding and correct rounding of the half formats            */
/* ------------------------------------------------------------------------ */

static double decode_bf16(uint16_t bits)
{
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return value;
}

static double decode_f16(uint16_t bits)
{
    const int exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
    const double sign = (bits & 0x8000) ? -1.0 : 1.0;
    if (exponent == 0x1f)
        return mantissa ? NAN : sign * INFINITY;
    if (exponent == 0)
        return sign * ldexp(mantissa, -24);
    return sign * ldexp(1024 + mantissa, exponent - 25);
}

static double decode(softmax_dtype type, const void *buffer, size_t i)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32:
        return ((const float *)buffer)[i];
    case SOFTMAX_DTYPE_F64:
        return ((const double *)buffer)[i];
    case SOFTMAX_DTYPE_BF16:
        return decode_bf16(((const uint16_t *)buffer)[i]);
    default:
        return decode_f16(((const uint16_t *)buffer)[i]);
    }
}

/* Precision and MPFR exponent range (value = m * 2^e, m in [0.5, 1)) of each
 * format, sub-normals included. */
static void format_of(softmax_dtype type, int *precision, long *emin, long *emax)
{
    switch (type) {
    case SOFTMAX_DTYPE_BF16:
        *precision = 8, *emin = -132, *emax = 128;
        break;
    case SOFTMAX_DTYPE_F16:
        *precision = 11, *emin = -23, *emax = 16;
        break;
    case SOFTMAX_DTYPE_F32:
        *precision = 24, *emin = -148, *emax = 128;
        break;
    default:
        *precision = 53, *emin = -1073, *emax = 1024;
        break;
    }
}

/* value rounded to nearest even in `type`, sub-normals and overflow to inf
 * included, as a double. */
static double mpfr_round_to(softmax_dtype type, mpfr_srcptr value)
{
    int precision;
    long emin, emax;
    format_of(type, &precision, &emin, &emax);
    const mpfr_exp_t saved_min = mpfr_get_emin(), saved_max = mpfr_get_emax();
    mpfr_t rounded;
    mpfr_init2(rounded, precision);
    mpfr_set_emin(emin);
    mpfr_set_emax(emax);
    int inexact = mpfr_set(rounded, value, MPFR_RNDN);
    inexact = mpfr_check_range(rounded, inexact, MPFR_RNDN);
    mpfr_subnormalize(rounded, inexact, MPFR_RNDN);
    mpfr_set_emin(saved_min);
    mpfr_set_emax(saved_max);
    const double result = mpfr_get_d(rounded, MPFR_RNDN);
    mpfr_clear(rounded);
    return result;
}

/* The spacing of `type` at |value| (its ulp; the sub-normal spacing below
 * the normal range). */
static double ulp_in(softmax_dtype type, double value)
{
    int precision;
    long emin, emax;
    format_of(type, &precision, &emin, &emax);
    (void)emax;
    int exponent;
    frexp(fabs(value), &exponent); /* value = m * 2^exponent, m in [0.5, 1) */
    if (value == 0 || exponent < emin + precision - 1)
        exponent = (int)emin + precision - 1;
    return ldexp(1.0, exponent - precision);
}

static void test_conversions_round_like_mpfr(void **state)
{
    (void)state;
    /* Every f16 and bf16 pattern widens exactly. */
    for (uint32_t bits = 0; bits < 65536; bits++) {
        const uint16_t half = (uint16_t)bits;
        float wide[2];
        assert_int_equal(softmax_convert(&wide[0], SOFTMAX_DTYPE_F32, &half, SOFTMAX_DTYPE_F16, 1), 0);
        assert_int_equal(softmax_convert(&wide[1], SOFTMAX_DTYPE_F32, &half, SOFTMAX_DTYPE_BF16, 1), 0);
        const double expected[2] = {decode_f16(half), decode_bf16(half)};
        for (int k = 0; k < 2; k++)
            if (!(isnan(expected[k]) ? isnan(wide[k])
                                     : (double)wide[k] == expected[k] && !signbit(wide[k]) == !signbit(expected[k])))
                fail_msg("widening %s 0x%04x gave %a, expected %a", k ? "bf16" : "f16", bits, wide[k], expected[k]);
    }
    /* Narrowing: floats around every half value and midpoint, plus random
     * floats of every magnitude, from f32 and from f64. */
    test_rng rng;
    rng_seed(&rng, 7);
    mpfr_t exact;
    mpfr_init2(exact, 64);
    size_t checked = 0;
    const softmax_dtype narrow[2] = {SOFTMAX_DTYPE_F16, SOFTMAX_DTYPE_BF16};
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; i < 600000; i++) {
            double source;
            if (i < 65536 * 4) {
                const uint16_t half = (uint16_t)(i >> 2);
                const double base = k == 0 ? decode_f16(half) : decode_bf16(half);
                const double next = k == 0 ? decode_f16((uint16_t)(half + 1)) : decode_bf16((uint16_t)(half + 1));
                if (!isfinite(base) || !isfinite(next))
                    continue;
                const double midpoint = (base + next) / 2;
                const float mid_f = (float)midpoint;
                const float choices[4] = {mid_f, nextafterf(mid_f, INFINITY), nextafterf(mid_f, -INFINITY),
                                          (float)base};
                source = choices[i & 3];
            } else {
                uint32_t bits = (uint32_t)rng_next(&rng);
                float value;
                memcpy(&value, &bits, sizeof value);
                source = value;
            }
            uint16_t from_f32, from_f64;
            const float source_f = (float)source;
            assert_int_equal(softmax_convert(&from_f32, narrow[k], &source_f, SOFTMAX_DTYPE_F32, 1), 0);
            const double source_d = (double)source_f + (i % 5 == 0 ? ldexp((double)source_f, -40) : 0.0);
            assert_int_equal(softmax_convert(&from_f64, narrow[k], &source_d, SOFTMAX_DTYPE_F64, 1), 0);
            const double got_f32 = k == 0 ? decode_f16(from_f32) : decode_bf16(from_f32);
            const double got_f64 = k == 0 ? decode_f16(from_f64) : decode_bf16(from_f64);
            if (isnan(source_f)) {
                if (!isnan(got_f32) || !isnan(got_f64))
                    fail_msg("NaN did not stay NaN (%s)", k == 0 ? "f16" : "bf16");
                continue;
            }
            mpfr_set_d(exact, source_f, MPFR_RNDN);
            const double want_f32 = mpfr_round_to(narrow[k], exact);
            mpfr_set_d(exact, source_d, MPFR_RNDN);
            const double want_f64 = mpfr_round_to(narrow[k], exact);
            if (got_f32 != want_f32 || !signbit(got_f32) != !signbit(want_f32))
                fail_msg("%a (f32) -> %s gave %a, MPFR rounds to %a", source_f, k == 0 ? "f16" : "bf16", got_f32,
                         want_f32);
            if (got_f64 != want_f64 || !signbit(got_f64) != !signbit(want_f64))
                fail_msg("%a (f64) -> %s gave %a, MPFR rounds to %a", source_d, k == 0 ? "f16" : "bf16", got_f64,
                         want_f64);
            checked++;
        }
    }
    mpfr_clear(exact);
    printf("conversions: 2 x 65536 widenings exact, %zu narrowings rounded as MPFR\n", checked);
}

/* Bulk conversions (the SIMD lanes) equal the one-element ones checked
 * against MPFR above, for every half pattern and for floats of every kind. */
static void test_bulk_conversions_match_single(void **state)
{
    (void)state;
    const size_t count = 65536 + 4 * 65536 + 13;
    uint16_t *halves = malloc(65536 * sizeof *halves), *narrowed = malloc(count * sizeof *narrowed);
    float *wide = malloc(count * sizeof *wide), *sources = malloc(count * sizeof *sources);
    for (uint32_t i = 0; i < 65536; i++)
        halves[i] = (uint16_t)i;
    test_rng rng;
    rng_seed(&rng, 21);
    for (size_t i = 0; i < count; i++) {
        uint32_t bits = i < 65536 ? (uint32_t)i << 16 : (uint32_t)rng_next(&rng);
        if (i % 7 == 0)
            bits = (bits & 0xffff0000u) | 0x8000u; /* exact ties for bf16 */
        memcpy(&sources[i], &bits, sizeof bits);
    }
    const softmax_dtype types[2] = {SOFTMAX_DTYPE_F16, SOFTMAX_DTYPE_BF16};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(softmax_convert(wide, SOFTMAX_DTYPE_F32, halves, types[k], 65536), 0);
        for (uint32_t i = 0; i < 65536; i++) {
            const double want = k == 0 ? decode_f16((uint16_t)i) : decode_bf16((uint16_t)i);
            if (!(isnan(want) ? isnan(wide[i]) : (double)wide[i] == want))
                fail_msg("bulk widening of 0x%04x gave %a, expected %a", i, wide[i], want);
        }
        assert_int_equal(softmax_convert(narrowed, types[k], sources, SOFTMAX_DTYPE_F32, count), 0);
        for (size_t i = 0; i < count; i++) {
            uint16_t single;
            assert_int_equal(softmax_convert(&single, types[k], &sources[i], SOFTMAX_DTYPE_F32, 1), 0);
            const bool both_nan =
                isnan(sources[i]) && (k == 0 ? isnan(decode_f16(narrowed[i])) : isnan(decode_bf16(narrowed[i])));
            if (single != narrowed[i] && !both_nan)
                fail_msg("bulk narrowing of %a to %s gave 0x%04x, one at a time 0x%04x", sources[i],
                         k == 0 ? "f16" : "bf16", narrowed[i], single);
        }
    }
    free(halves), free(narrowed), free(wide), free(sources);
}

static void test_convert_errors(void **state)
{
    (void)state;
    float values[4] = {1, 2, 3, 4};
    uint16_t halves[4] = {0};
    assert_int_equal(softmax_convert(halves, (softmax_dtype)9, values, SOFTMAX_DTYPE_F32, 4), SOFTMAX_E_INVALID_DTYPE);
    assert_int_equal(softmax_convert(NULL, SOFTMAX_DTYPE_F16, values, SOFTMAX_DTYPE_F32, 4), SOFTMAX_E_NULL_POINTER);
    assert_int_equal(softmax_convert(halves, SOFTMAX_DTYPE_F16, NULL, SOFTMAX_DTYPE_F32, 0), SOFTMAX_OK);
    assert_int_equal(softmax_convert((char *)values + 2, SOFTMAX_DTYPE_F16, values, SOFTMAX_DTYPE_F32, 4),
                     SOFTMAX_E_OVERLAP);
    assert_int_equal(softmax_convert(values, SOFTMAX_DTYPE_F16, values, SOFTMAX_DTYPE_F32, 4), SOFTMAX_E_OVERLAP);
    assert_int_equal(softmax_convert(halves, SOFTMAX_DTYPE_F16, values, SOFTMAX_DTYPE_F32, SIZE_MAX / 2),
                     SOFTMAX_E_SIZE_OVERFLOW);
    for (int i = 0; i < 4; i++)
        assert_int_equal(halves[i], 0);
}

/* ------------------------------------------------------------------------ */
/* A general reference: one line of logits z (exact, MPFR), kept flags       */
/* ------------------------------------------------------------------------ */

typedef struct reference_line {
    size_t n;
    mpfr_t *z;   /* logits of kept elements */
    char *kept;  /* 0: excluded (probability 0) */
    double *p;   /* softmax, rounded to double */
    double *log; /* log-softmax, rounded to double */
    mpfr_t *p_exact;
} reference_line;

static void reference_init(reference_line *r, size_t n)
{
    r->n = n;
    r->z = malloc(n * sizeof *r->z);
    r->p_exact = malloc(n * sizeof *r->p_exact);
    r->kept = calloc(n, 1);
    r->p = calloc(n, sizeof *r->p);
    r->log = calloc(n, sizeof *r->log);
    for (size_t i = 0; i < n; i++) {
        mpfr_init2(r->z[i], PREC);
        mpfr_init2(r->p_exact[i], PREC);
    }
}

static void reference_free(reference_line *r)
{
    for (size_t i = 0; i < r->n; i++) {
        mpfr_clear(r->z[i]);
        mpfr_clear(r->p_exact[i]);
    }
    free(r->z);
    free(r->p_exact);
    free(r->kept);
    free(r->p);
    free(r->log);
}

/* Fills p and log from z and kept, for finite z only (the tests keep
 * logits finite; the special values are the contract tests' job), with the
 * fully masked row as all zeros / -inf. */
static void reference_evaluate(reference_line *r)
{
    mpfr_t top, sum, term, log_sum;
    mpfr_inits2(PREC, top, sum, term, log_sum, (mpfr_ptr)0);
    bool any = false;
    for (size_t i = 0; i < r->n; i++) {
        if (!r->kept[i])
            continue;
        if (!any || mpfr_greater_p(r->z[i], top))
            mpfr_set(top, r->z[i], MPFR_RNDN);
        any = true;
    }
    if (!any) {
        for (size_t i = 0; i < r->n; i++) {
            r->p[i] = 0;
            mpfr_set_zero(r->p_exact[i], 1);
            r->log[i] = -INFINITY;
        }
        mpfr_clears(top, sum, term, log_sum, (mpfr_ptr)0);
        return;
    }
    mpfr_set_zero(sum, 1);
    for (size_t i = 0; i < r->n; i++) {
        if (!r->kept[i])
            continue;
        mpfr_sub(term, r->z[i], top, MPFR_RNDN);
        mpfr_exp(term, term, MPFR_RNDN);
        mpfr_add(sum, sum, term, MPFR_RNDN);
    }
    mpfr_log(log_sum, sum, MPFR_RNDN);
    for (size_t i = 0; i < r->n; i++) {
        if (!r->kept[i]) {
            r->p[i] = 0;
            mpfr_set_zero(r->p_exact[i], 1);
            r->log[i] = -INFINITY;
            continue;
        }
        mpfr_sub(term, r->z[i], top, MPFR_RNDN);
        mpfr_sub(term, term, log_sum, MPFR_RNDN);
        r->log[i] = mpfr_get_d(term, MPFR_RNDN);
        mpfr_exp(r->p_exact[i], term, MPFR_RNDN);
        r->p[i] = mpfr_get_d(r->p_exact[i], MPFR_RNDN);
    }
    mpfr_clears(top, sum, term, log_sum, (mpfr_ptr)0);
}

/* Allowed error of an output of type `out` computed in `compute`: the
 * contract's ulp bound of the computation type, plus, for a half output,
 * one ulp of the half format (the result is the rounded f32 value). */
static double bound_ulps(softmax_dtype compute)
{
    const char *isa = softmax_isa_name();
    const bool simd = isa != NULL && strcmp(isa, "scalar") != 0;
    return compute == SOFTMAX_DTYPE_F64 ? 4.0 : (simd ? 3.0 : 2.0);
}

static size_t failures_reported;

static void check_value(const char *what, softmax_dtype out, softmax_dtype compute, bool log_output, double got,
                        const reference_line *r, size_t i)
{
    const double want = log_output ? r->log[i] : r->p[i];
    bool ok;
    if (!r->kept[i] || isinf(want)) {
        ok = log_output ? got == -INFINITY : got == 0;
    } else if (log_output) {
        const double magnitude = fmax(fabs(want), 1.0);
        double allowed = bound_ulps(compute) * ulp_in(compute, magnitude);
        if (out == SOFTMAX_DTYPE_BF16 || out == SOFTMAX_DTYPE_F16)
            allowed = ulp_in(out, magnitude) + allowed;
        ok = fabs(got - want) <= allowed;
    } else {
        const double normal_min = compute == SOFTMAX_DTYPE_F64 ? DBL_MIN : FLT_MIN;
        double allowed = bound_ulps(compute) * ulp_in(compute, want);
        if (out == SOFTMAX_DTYPE_BF16 || out == SOFTMAX_DTYPE_F16)
            allowed = ulp_in(out, want); /* <= 1 half ulp from exact */
        if (want < normal_min)
            allowed = fmax(allowed, normal_min); /* flush-to-zero region */
        ok = fabs(got - want) <= allowed;
    }
    if (!ok && failures_reported++ < 10)
        fprintf(stderr, "  %s: element %zu = %.9g, reference %.9g (kept %d)\n", what, i, got, want, r->kept[i]);
    if (!ok)
        fail_msg("%s: element %zu is %.17g, the reference is %.17g", what, i, got, want);
}

/* ------------------------------------------------------------------------ */
/* Buffers of any type                                                      */
/* ------------------------------------------------------------------------ */

static void *typed_alloc(softmax_dtype type, size_t n)
{
    void *buffer = calloc(n ? n : 1, dtype_size(type));
    assert_non_null(buffer);
    return buffer;
}

/* Stores values (doubles) as `type`, through softmax_convert (checked above
 * against MPFR). */
static void typed_store(softmax_dtype type, void *buffer, const double *values, size_t n)
{
    assert_int_equal(softmax_convert(buffer, type, values, SOFTMAX_DTYPE_F64, n), 0);
}

static softmax_dtype compute_type(softmax_dtype a, softmax_dtype b)
{
    return a == SOFTMAX_DTYPE_F64 || b == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
}

/* ------------------------------------------------------------------------ */
/* Half and mixed types, contiguous rows                                    */
/* ------------------------------------------------------------------------ */

static void test_half_and_mixed_types(void **state)
{
    (void)state;
    const softmax_dtype pairs[][2] = {
        {SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_BF16}, {SOFTMAX_DTYPE_F16, SOFTMAX_DTYPE_F16},
        {SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F32},  {SOFTMAX_DTYPE_F16, SOFTMAX_DTYPE_F32},
        {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_BF16},  {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F16},
        {SOFTMAX_DTYPE_F16, SOFTMAX_DTYPE_F64},   {SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16},
        {SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16},
    };
    const size_t lengths[] = {1, 5, 16, 33, 300, 4100};
    const double scales[] = {1.0, 0.37, -2.0};
    test_rng rng;
    rng_seed(&rng, 11);
    size_t checked = 0;
    for (size_t p = 0; p < ARRAY_LEN(pairs); p++) {
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            const size_t rows = 3, n = lengths[l], total = rows * n;
            const softmax_dtype in = pairs[p][0], out = pairs[p][1];
            const softmax_dtype compute = compute_type(in, out);
            double *values = malloc(total * sizeof *values);
            for (size_t i = 0; i < total; i++)
                values[i] = rng_normal(&rng) * (in == SOFTMAX_DTYPE_F16 ? 4.0 : 12.0);
            void *x = typed_alloc(in, total), *y = typed_alloc(out, total);
            typed_store(in, x, values, total);
            for (int log_output = 0; log_output < 2; log_output++) {
                const double scale = scales[(p + l + (size_t)log_output) % ARRAY_LEN(scales)];
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, in, n);
                desc.ndim = 2;
                desc.shape[0] = rows;
                desc.shape[1] = n;
                desc.dst_dtype = out;
                desc.scale = scale;
                int status = softmax_execute(&desc, x, NULL, y);
                if (status != 0)
                    fail_msg("execute %d -> %d: %s", (int)in, (int)out, softmax_last_error());
                reference_line r;
                reference_init(&r, n);
                for (size_t row = 0; row < rows; row++) {
                    for (size_t i = 0; i < n; i++) {
                        mpfr_set_d(r.z[i], decode(in, x, row * n + i), MPFR_RNDN);
                        mpfr_mul_d(r.z[i], r.z[i], scale, MPFR_RNDN);
                        r.kept[i] = 1;
                    }
                    reference_evaluate(&r);
                    char what[96];
                    snprintf(what, sizeof what, "%s %d->%d n=%zu scale=%g", log_output ? "log_softmax" : "softmax",
                             (int)in, (int)out, n, scale);
                    for (size_t i = 0; i < n; i++)
                        check_value(what, out, compute, log_output, decode(out, y, row * n + i), &r, i);
                    checked += n;
                }
                reference_free(&r);
            }
            free(values);
            free(x);
            free(y);
        }
    }
    printf("half and mixed types: %zu outputs within bounds\n", checked);
}

/* Rows long enough for the streamed half-precision path, with masked
 * (-inf) elements, and rows with +inf or NaN that it hands back to the
 * general path. */
static void test_long_half_rows(void **state)
{
    (void)state;
    /* 70001: the in-cache regime (half_line); 300001: streamed (half_row),
     * the exps kept between the passes; 600001: streamed, computed twice. */
    const size_t lengths[3] = {70001, 300001, 600001}, rows = 4;
    const softmax_dtype types[2] = {SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    test_rng rng;
    rng_seed(&rng, 17);
    for (int t = 0; t < 6; t++) {
        const size_t n = lengths[t / 2];
        double *values = malloc(rows * n * sizeof *values);
        for (size_t i = 0; i < rows * n; i++)
            values[i] = rng_normal(&rng) * 3 + (i % 1000 == 0 ? -INFINITY : 0);
        values[2 * n + 5] = INFINITY;
        values[3 * n + 7] = NAN;
        void *x = typed_alloc(types[t % 2], rows * n), *y = typed_alloc(types[t % 2], rows * n);
        typed_store(types[t % 2], x, values, rows * n);
        for (int log_output = 0; log_output < 2; log_output++) {
            softmax_desc desc;
            softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, types[t % 2], n);
            desc.ndim = 2;
            desc.shape[0] = rows, desc.shape[1] = n;
            desc.scale = log_output ? 1.5 : 0.75;
            assert_int_equal(softmax_execute(&desc, x, NULL, y), 0);
            /* The contract: the f32 result of the widened values, rounded
             * once to the half format (and bf16 in, f32 out: that result). */
            {
                float *wide = malloc(rows * n * sizeof *wide), *wide_y = malloc(rows * n * sizeof *wide_y);
                float *mixed = malloc(rows * n * sizeof *mixed);
                uint16_t *narrowed = malloc(rows * n * sizeof *narrowed);
                assert_int_equal(softmax_convert(wide, SOFTMAX_DTYPE_F32, x, types[t % 2], rows * n), 0);
                softmax_desc plain = desc;
                plain.dtype = SOFTMAX_DTYPE_F32;
                assert_int_equal(softmax_execute(&plain, wide, NULL, wide_y), 0);
                assert_int_equal(softmax_convert(narrowed, types[t % 2], wide_y, SOFTMAX_DTYPE_F32, rows * n), 0);
                softmax_desc to_f32 = desc;
                to_f32.dst_dtype = SOFTMAX_DTYPE_F32;
                assert_int_equal(softmax_execute(&to_f32, x, NULL, mixed), 0);
                for (size_t i = 0; i < rows * n; i++) {
                    const uint16_t got = ((const uint16_t *)y)[i];
                    if (got != narrowed[i] && !(isnan(wide_y[i]) && isnan(decode(types[t % 2], y, i))))
                        fail_msg("long half row %zu: element %zu is %#x, the rounded f32 result %#x", n, i, got,
                                 narrowed[i]);
                    if (memcmp(&mixed[i], &wide_y[i], sizeof *mixed) != 0 && !(isnan(mixed[i]) && isnan(wide_y[i])))
                        fail_msg("long half row %zu, f32 out: element %zu is %a, the f32 result %a", n, i, mixed[i],
                                 wide_y[i]);
                }
                free(wide), free(wide_y), free(mixed), free(narrowed);
            }
            reference_line r;
            reference_init(&r, n);
            /* Against MPFR too: two rows in cache, one streamed (the longest
             * rows: the bits above, of the f32 path that test_accuracy
             * checks on rows of 2^20). */
            for (size_t row = 0; row < (n > 300001 ? 0u : n > 70001 ? 1u : 2u); row++) {
                for (size_t i = 0; i < n; i++) {
                    const double v = decode(types[t % 2], x, row * n + i);
                    r.kept[i] = v != (desc.scale > 0 ? -INFINITY : INFINITY);
                    mpfr_set_d(r.z[i], r.kept[i] ? v : 0.0, MPFR_RNDN);
                    mpfr_mul_d(r.z[i], r.z[i], desc.scale, MPFR_RNDN);
                }
                reference_evaluate(&r);
                for (size_t i = 0; i < n; i++)
                    check_value("long half row", types[t % 2], SOFTMAX_DTYPE_F32, log_output,
                                decode(types[t % 2], y, row * n + i), &r, i);
            }
            reference_free(&r);
            /* Row 2 holds +inf: (scale > 0) one-hot on it, (scale < 0) it
             * gets 0; row 3 holds NaN: all NaN. */
            for (size_t i = 0; i < n; i++) {
                const double got = decode(types[t % 2], y, 3 * n + i);
                if (!isnan(got))
                    fail_msg("a NaN row gave %g at %zu", got, i);
            }
            if (desc.scale > 0) {
                const double at_inf = decode(types[t % 2], y, 2 * n + 5);
                if (at_inf != (log_output ? 0.0 : 1.0))
                    fail_msg("the +inf element of a long half row gave %g", at_inf);
            } else {
                const double at_inf = decode(types[t % 2], y, 2 * n + 5);
                if (at_inf != 0.0)
                    fail_msg("softmin of a +inf element gave %g", at_inf);
            }
        }
        free(x);
        free(y);
        free(values);
    }
}

/* The contract for half-precision outputs, bit for bit: the f32 result of
 * the (exactly widened) input, rounded once to the output format, on every
 * path that writes half values itself (in-cache rows from 129 elements,
 * streamed rows with the exps kept or computed twice) and for every pair of
 * types. The spread of the logits puts most f16 outputs of the long rows
 * among the sub-normals, where a flushed or twice-rounded value shows; the
 * row counts give every length about 2^20 outputs, so that f32 results
 * exactly half-way between two bf16 values (about one in 2^16) occur, and
 * the test asks that they did: there the rounding to nearest even shows. */
static void test_half_outputs_are_rounded_f32_results(void **state)
{
    (void)state;
    const softmax_dtype pairs[][2] = {
        {SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_BF16}, {SOFTMAX_DTYPE_F16, SOFTMAX_DTYPE_F16},
        {SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16},  {SOFTMAX_DTYPE_F16, SOFTMAX_DTYPE_BF16},
        {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_BF16},  {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F16},
    };
    const size_t lengths[] = {129, 200, 4100, 70001, 300001, 600001};
    const double scales[] = {1.0, 0.37, -2.0};
    test_rng rng;
    rng_seed(&rng, 23);
    size_t compared = 0;
    for (size_t p = 0; p < ARRAY_LEN(pairs); p++) {
        size_t bf16_ties = 0;
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
            const softmax_dtype in = pairs[p][0], out = pairs[p][1];
            const size_t n = lengths[l], rows = n < ((size_t)1 << 19) ? ((size_t)1 << 20) / n : 2, total = rows * n;
            double *values = malloc(total * sizeof *values);
            assert_non_null(values);
            for (size_t i = 0; i < total; i++)
                values[i] = rng_normal(&rng) * 5 + (i % 997 == 3 ? -INFINITY : 0);
            void *x = typed_alloc(in, total), *y = typed_alloc(out, total);
            float *wide = malloc(total * sizeof *wide), *wide_y = malloc(total * sizeof *wide_y);
            uint16_t *narrowed = malloc(total * sizeof *narrowed);
            assert_true(wide != NULL && wide_y != NULL && narrowed != NULL);
            typed_store(in, x, values, total);
            assert_int_equal(softmax_convert(wide, SOFTMAX_DTYPE_F32, x, in, total), 0);
            for (int log_output = 0; log_output < 2; log_output++) {
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, in, n);
                desc.ndim = 2;
                desc.shape[0] = rows, desc.shape[1] = n;
                desc.dst_dtype = out;
                desc.scale = scales[(p + l + (size_t)log_output) % ARRAY_LEN(scales)];
                if (softmax_execute(&desc, x, NULL, y) != 0)
                    fail_msg("execute %d -> %d: %s", (int)in, (int)out, softmax_last_error());
                softmax_desc plain = desc;
                plain.dtype = SOFTMAX_DTYPE_F32, plain.dst_dtype = SOFTMAX_DTYPE_F32;
                assert_int_equal(softmax_execute(&plain, wide, NULL, wide_y), 0);
                assert_int_equal(softmax_convert(narrowed, out, wide_y, SOFTMAX_DTYPE_F32, total), 0);
                for (size_t i = 0; i < total; i++) {
                    uint32_t bits;
                    memcpy(&bits, &wide_y[i], sizeof bits);
                    bf16_ties += out == SOFTMAX_DTYPE_BF16 && (bits & 0xffffu) == 0x8000u;
                    if (((const uint16_t *)y)[i] != narrowed[i])
                        fail_msg("%s %d -> %d, n = %zu, scale %g: element %zu is %#x, the rounded f32 result %#x",
                                 log_output ? "log_softmax" : "softmax", (int)in, (int)out, n, desc.scale, i,
                                 ((const uint16_t *)y)[i], narrowed[i]);
                }
                compared += total;
            }
            free(values), free(x), free(y), free(wide), free(wide_y), free(narrowed);
        }
        if (pairs[p][1] == SOFTMAX_DTYPE_BF16 && bf16_ties < 16)
            fail_msg("only %zu f32 results half-way between two bf16 values (%d -> bf16)", bf16_ties, (int)pairs[p][0]);
    }
    printf("half outputs: %zu equal to the rounded f32 results\n", compared);
}

/* ------------------------------------------------------------------------ */
/* Strided views                                                            */
/* ------------------------------------------------------------------------ */

/* A [d0, d1, d2] tensor stored transposed and padded: the source is laid
 * out as [d2][d0][d1 + pad] (so every axis is strided), the destination as
 * [d1][d2][d0] with a negative stride on d2. Softmax along each axis, f32
 * and bf16, against MPFR line by line. */
static void test_strided_views(void **state)
{
    (void)state;
    const size_t d0 = 5, d1 = 37, d2 = 9, pad = 3;
    const size_t src_count = d2 * d0 * (d1 + pad);
    const int64_t src_strides[3] = {(int64_t)(d1 + pad), 1, (int64_t)(d0 * (d1 + pad))};
    const size_t dst_count = d1 * d2 * d0;
    /* dst element (a, b, c) at b * d2 * d0 + (d2 - 1 - c) * d0 + a: base
     * offset (d2 - 1) * d0 and stride -d0 along c. */
    const int64_t dst_strides[3] = {1, (int64_t)(d2 * d0), -(int64_t)d0};
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F64};
    test_rng rng;
    rng_seed(&rng, 5);
    size_t checked = 0;
    for (size_t t = 0; t < ARRAY_LEN(types); t++) {
        const softmax_dtype type = types[t];
        double *values = malloc(src_count * sizeof *values);
        for (size_t i = 0; i < src_count; i++)
            values[i] = rng_normal(&rng) * 6.0;
        void *x = typed_alloc(type, src_count), *y = typed_alloc(type, dst_count);
        typed_store(type, x, values, src_count);
        for (int axis = 0; axis < 3; axis++) {
            for (int op_index = 0; op_index < 2; op_index++) {
                const bool log_output = op_index == 1;
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, type, 1);
                desc.ndim = 3;
                desc.shape[0] = d0, desc.shape[1] = d1, desc.shape[2] = d2;
                desc.axis = axis;
                desc.scale = 0.75;
                desc.src_strides = src_strides;
                desc.dst_strides = dst_strides;
                const size_t element = dtype_size(type);
                char *dst_base = (char *)y + (d2 - 1) * d0 * element;
                fill_sentinel(y, dst_count * element);
                int status = softmax_execute(&desc, x, NULL, dst_base);
                if (status != 0)
                    fail_msg("strided execute: %s", softmax_last_error());
                const size_t n = desc.shape[axis];
                reference_line r;
                reference_init(&r, n);
                size_t index[3];
                for (index[0] = 0; index[0] < d0; index[0]++)
                    for (index[1] = 0; index[1] < d1; index[1]++)
                        for (index[2] = 0; index[2] < d2; index[2]++) {
                            if (index[axis] != 0)
                                continue;
                            for (size_t j = 0; j < n; j++) {
                                size_t at[3] = {index[0], index[1], index[2]};
                                at[axis] = j;
                                const size_t s =
                                    at[0] * src_strides[0] + at[1] * src_strides[1] + at[2] * (size_t)src_strides[2];
                                mpfr_set_d(r.z[j], decode(type, x, s), MPFR_RNDN);
                                mpfr_mul_d(r.z[j], r.z[j], 0.75, MPFR_RNDN);
                                r.kept[j] = 1;
                            }
                            reference_evaluate(&r);
                            for (size_t j = 0; j < n; j++) {
                                size_t at[3] = {index[0], index[1], index[2]};
                                at[axis] = j;
                                const size_t o = at[1] * d2 * d0 + (d2 - 1 - at[2]) * d0 + at[0];
                                check_value("strided", type, type == SOFTMAX_DTYPE_F64 ? type : SOFTMAX_DTYPE_F32,
                                            log_output, decode(type, y, o), &r, j);
                                checked++;
                            }
                        }
                reference_free(&r);
            }
        }
        free(values);
        free(x);
        free(y);
    }
    printf("strided views: %zu outputs within bounds\n", checked);
}

/* Transposed views: lines adjacent in memory, strided along the axis (the
 * layout the kernels' register transposes gather), with line counts and
 * lengths that leave partial tiles. Forward outputs are checked against
 * MPFR and must equal, bit for bit, the same rows computed contiguously;
 * the backward, with y and dy both transposed, against a long double
 * evaluation of its formula. */
static void test_transposed_views(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{17, 35}, {16, 16}, {40, 7}, {130, 300}, {3, 1000}, {2, 1}};
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64};
    test_rng rng;
    rng_seed(&rng, 11);
    size_t checked = 0;
    for (size_t t = 0; t < ARRAY_LEN(types); t++)
        for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
            const softmax_dtype type = types[t];
            const size_t lines = shapes[s][0], n = shapes[s][1], total = lines * n;
            const size_t element = dtype_size(type);
            /* The view [lines, n] of an [n, lines] array: (l, j) at j * lines + l. */
            const int64_t strides[2] = {1, (int64_t)lines};
            double *values = malloc(total * sizeof *values), *rows = malloc(total * sizeof *rows);
            double *dy_values = malloc(total * sizeof *dy_values);
            for (size_t i = 0; i < total; i++) {
                values[i] = rng_normal(&rng) * 8.0;
                dy_values[i] = rng_normal(&rng);
            }
            for (size_t l = 0; l < lines; l++)
                for (size_t j = 0; j < n; j++)
                    rows[l * n + j] = values[j * lines + l];
            void *x = typed_alloc(type, total), *x_rows = typed_alloc(type, total);
            void *y = typed_alloc(type, total), *y_rows = typed_alloc(type, total);
            typed_store(type, x, values, total);
            typed_store(type, x_rows, rows, total);
            for (int log_output = 0; log_output < 2; log_output++) {
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, type, n);
                desc.ndim = 2;
                desc.shape[0] = lines, desc.shape[1] = n;
                desc.scale = 0.625;
                assert_int_equal(softmax_execute(&desc, x_rows, NULL, y_rows), 0);
                desc.src_strides = strides;
                if (softmax_execute(&desc, x, NULL, y) != 0)
                    fail_msg("transposed execute: %s", softmax_last_error());
                if (memcmp(y, y_rows, total * element) != 0)
                    fail_msg("transposed %zu x %zu (%s): not the bits of the contiguous rows", lines, n,
                             type == SOFTMAX_DTYPE_F32 ? "f32" : "f64");
                reference_line r;
                reference_init(&r, n);
                for (size_t l = 0; l < lines; l++) {
                    for (size_t j = 0; j < n; j++) {
                        mpfr_set_d(r.z[j], decode(type, x, j * lines + l), MPFR_RNDN);
                        mpfr_mul_d(r.z[j], r.z[j], 0.625, MPFR_RNDN);
                        r.kept[j] = 1;
                    }
                    reference_evaluate(&r);
                    for (size_t j = 0; j < n; j++, checked++)
                        check_value("transposed", type, type, log_output, decode(type, y, l * n + j), &r, j);
                }
                reference_free(&r);
            }
            /* Backward: y (the softmax above, contiguous) viewed transposed
             * like dy; dx contiguous. */
            softmax_desc desc;
            softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, type, n);
            desc.ndim = 2;
            desc.shape[0] = lines, desc.shape[1] = n;
            assert_int_equal(softmax_execute(&desc, x_rows, NULL, y_rows), 0);
            void *y_view = typed_alloc(type, total), *dy = typed_alloc(type, total), *dx = typed_alloc(type, total);
            double *y_values = malloc(total * sizeof *y_values);
            for (size_t l = 0; l < lines; l++)
                for (size_t j = 0; j < n; j++)
                    y_values[j * lines + l] = decode(type, y_rows, l * n + j);
            typed_store(type, y_view, y_values, total);
            typed_store(type, dy, dy_values, total);
            desc.op = SOFTMAX_OP_SOFTMAX_BACKWARD;
            desc.src_strides = strides;
            desc.grad_strides = strides;
            if (softmax_execute(&desc, y_view, dy, dx) != 0)
                fail_msg("transposed backward: %s", softmax_last_error());
            const double eps = type == SOFTMAX_DTYPE_F64 ? DBL_EPSILON : FLT_EPSILON;
            for (size_t l = 0; l < lines; l++) {
                long double dot = 0, magnitude = 0;
                for (size_t k = 0; k < n; k++) {
                    const long double yk = decode(type, y_view, k * lines + l), gk = decode(type, dy, k * lines + l);
                    dot += yk * gk;
                    magnitude += yk * fabsl(gk);
                }
                for (size_t j = 0; j < n; j++, checked++) {
                    const long double yj = decode(type, y_view, j * lines + l), gj = decode(type, dy, j * lines + l);
                    const double want = (double)(yj * (gj - dot));
                    const double allowed = 8 * eps * (double)(yj * (fabsl(gj) + magnitude)) + 1e-300;
                    const double got = decode(type, dx, l * n + j);
                    if (!(fabs(got - want) <= allowed))
                        fail_msg("transposed backward %zu x %zu line %zu element %zu: %.17g, want %.17g", lines, n, l,
                                 j, got, want);
                }
            }
            free(values), free(rows), free(dy_values), free(y_values);
            free(x), free(x_rows), free(y), free(y_rows), free(y_view), free(dy), free(dx);
        }
    printf("transposed views: %zu outputs within bounds, forward bits equal to contiguous rows\n", checked);
}

/* ------------------------------------------------------------------------ */
/* Masks                                                                    */
/* ------------------------------------------------------------------------ */

/* ALiBi's slope of head `head` of `heads` as the header defines it, to
 * PREC bits: m0^(h + 1) = 2^(-max_bias (h + 1) / H2), m1^(2 (h - H2) + 1) =
 * 2^(-max_bias (2 (h - H2) + 1) / (2 H2)), the exponent exact in MPFR. (A
 * power of m0 rounded to double, as ggml computes it, is off by (h + 1)
 * times m0's rounding: the bias slope * j of a long row then by far more
 * than an f64 ulp.) */
static void alibi_slope_reference(mpfr_t slope, double max_bias, size_t heads, size_t head)
{
    size_t pow2 = 1;
    while (pow2 * 2 <= heads)
        pow2 *= 2;
    mpfr_t exponent;
    mpfr_init2(exponent, PREC);
    mpfr_set_d(exponent, -max_bias, MPFR_RNDN);
    if (head < pow2) {
        mpfr_mul_ui(exponent, exponent, (unsigned long)(head + 1), MPFR_RNDN);
        mpfr_div_ui(exponent, exponent, (unsigned long)pow2, MPFR_RNDN);
    } else {
        mpfr_mul_ui(exponent, exponent, (unsigned long)(2 * (head - pow2) + 1), MPFR_RNDN);
        mpfr_div_ui(exponent, exponent, (unsigned long)(2 * pow2), MPFR_RNDN);
    }
    mpfr_exp2(slope, exponent, MPFR_RNDN);
    mpfr_clear(exponent);
}

/* The reference logit z = scale * x + bias + slope * k in MPFR, the bias
 * added where it is not -inf (an excluded element's z does not matter);
 * slope NULL: no ALiBi. */
static void reference_logit(mpfr_t z, double x, double scale, double bias, mpfr_srcptr slope, size_t k)
{
    mpfr_set_d(z, x, MPFR_RNDN);
    mpfr_mul_d(z, z, scale, MPFR_RNDN);
    if (bias != -INFINITY)
        mpfr_add_d(z, z, bias, MPFR_RNDN);
    if (slope != NULL) {
        mpfr_t slope_term;
        mpfr_init2(slope_term, PREC);
        mpfr_mul_ui(slope_term, slope, (unsigned long)k, MPFR_RNDN);
        mpfr_add(z, z, slope_term, MPFR_RNDN);
        mpfr_clear(slope_term);
    }
}

typedef struct mask_case {
    const char *name;
    softmax_dtype data, out, mask_type;
    bool additive, where, causal, alibi;
    int64_t causal_offset;
    double scale;
    bool mask_zero_or_inf; /* the additive mask only excludes (0 / -inf) */
} mask_case;

/* Attention-shaped scores [B, H, Q, K] softmaxed along K (K = 41: rows the
 * f32 kernels take gathered; K = 300: rows they read in place, the masks
 * and biases added as x is read). */
static void run_mask_case(const mask_case *c, size_t K, test_rng *rng, size_t *checked)
{
    const size_t B = 2, H = 3, Q = 9, total = B * H * Q * K;
    double *values = malloc(total * sizeof *values);
    for (size_t i = 0; i < total; i++)
        values[i] = rng_normal(rng) * 5.0;
    void *x = typed_alloc(c->data, total), *y = typed_alloc(c->out, total);
    typed_store(c->data, x, values, total);
    /* Additive mask [Q, K] shared by every batch and head: values in
     * [-3, 3], some -inf, and query row 4 fully masked. */
    double *mask_values = malloc(Q * K * sizeof *mask_values);
    for (size_t i = 0; i < Q * K; i++) {
        mask_values[i] = c->mask_zero_or_inf ? 0.0 : rng_range(rng, -3.0, 3.0);
        if (rng_below(rng, 5) == 0 || i / K == 4)
            mask_values[i] = -INFINITY;
    }
    void *mask = typed_alloc(c->mask_type, Q * K);
    typed_store(c->mask_type, mask, mask_values, Q * K);
    const int64_t mask_strides[4] = {0, 0, (int64_t)K, 1};
    /* Keep-mask [B, 1, 1, K] (padding): batch b keeps its first K - 7 * b
     * keys and one random gap. */
    uint8_t *where = malloc(B * K);
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < K; k++)
            where[b * K + k] = k < K - 7 * b && k != 3 + b;
    const int64_t where_strides[4] = {(int64_t)K, 0, 0, 1};
    const double max_bias = 8.0;

    for (int log_output = 0; log_output < 2; log_output++) {
        softmax_desc desc;
        softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, c->data, K);
        desc.ndim = 4;
        desc.shape[0] = B, desc.shape[1] = H, desc.shape[2] = Q, desc.shape[3] = K;
        desc.dst_dtype = c->out;
        desc.scale = c->scale;
        if (c->additive) {
            desc.mask = mask;
            desc.mask_dtype = c->mask_type;
            desc.mask_strides = mask_strides;
        }
        if (c->where) {
            desc.where = where;
            desc.where_strides = where_strides;
        }
        desc.causal = c->causal;
        desc.causal_offset = c->causal_offset;
        if (c->alibi)
            desc.max_bias = max_bias; /* head_axis -3 from softmax_desc_init */
        int status = softmax_execute(&desc, x, NULL, y);
        if (status != 0)
            fail_msg("%s: %s", c->name, softmax_last_error());
        if (c->data == c->out) {
            /* In place: the same bits. */
            void *xy = typed_alloc(c->data, total);
            memcpy(xy, x, total * dtype_size(c->data));
            if (softmax_execute(&desc, xy, NULL, xy) != 0)
                fail_msg("%s in place: %s", c->name, softmax_last_error());
            if (memcmp(xy, y, total * dtype_size(c->data)) != 0)
                fail_msg("%s %s, K = %zu: in place differs from out of place", c->name,
                         log_output ? "log_softmax" : "softmax", K);
            free(xy);
        }
        reference_line r;
        reference_init(&r, K);
        for (size_t b = 0; b < B; b++)
            for (size_t h = 0; h < H; h++)
                for (size_t q = 0; q < Q; q++) {
                    const size_t row = ((b * H + h) * Q + q) * K;
                    mpfr_t slope;
                    mpfr_init2(slope, PREC);
                    if (c->alibi)
                        alibi_slope_reference(slope, max_bias, H, h);
                    for (size_t k = 0; k < K; k++) {
                        bool kept = true;
                        if (c->additive && decode(c->mask_type, mask, q * K + k) == -INFINITY)
                            kept = false;
                        if (c->where && !where[b * K + k])
                            kept = false;
                        if (c->causal && (int64_t)k > (int64_t)q + c->causal_offset)
                            kept = false;
                        r.kept[k] = kept;
                        reference_logit(r.z[k], decode(c->data, x, row + k), c->scale,
                                        c->additive && kept ? decode(c->mask_type, mask, q * K + k) : 0.0,
                                        c->alibi ? slope : NULL, k);
                    }
                    mpfr_clear(slope);
                    reference_evaluate(&r);
                    char what[128];
                    snprintf(what, sizeof what, "%s %s [b=%zu h=%zu q=%zu]", c->name,
                             log_output ? "log_softmax" : "softmax", b, h, q);
                    for (size_t k = 0; k < K; k++) {
                        const double got = decode(c->out, y, row + k);
                        if (isnan(got))
                            fail_msg("%s: NaN at key %zu", what, k);
                        check_value(what, c->out, compute_type(c->data, c->out), log_output, got, &r, k);
                    }
                    *checked += K;
                }
        reference_free(&r);
    }
    free(values);
    free(x);
    free(y);
    free(mask_values);
    free(mask);
    free(where);
}

static void test_masks(void **state)
{
    (void)state;
    const softmax_dtype F32 = SOFTMAX_DTYPE_F32, F64 = SOFTMAX_DTYPE_F64, BF16 = SOFTMAX_DTYPE_BF16,
                        F16 = SOFTMAX_DTYPE_F16;
    const mask_case cases[] = {
        {"additive f32", F32, F32, F32, true, false, false, false, 0, 1.0, false},
        {"additive f16 mask on f16", F16, F16, F16, true, false, false, false, 0, 0.125, false},
        {"additive bf16 mask, bf16 -> f32", BF16, F32, BF16, true, false, false, false, 0, 1.0, false},
        {"additive f64", F64, F64, F64, true, false, false, false, 0, 0.3, false},
        {"where f32", F32, F32, F32, false, true, false, false, 0, 1.0, false},
        {"where bf16", BF16, BF16, F32, false, true, false, false, 0, 2.0, false},
        {"causal f32", F32, F32, F32, false, false, true, false, 0, 1.0, false},
        {"causal offset 3 f64", F64, F64, F32, false, false, true, false, 3, 1.0, false},
        {"causal offset -2 f16", F16, F16, F32, false, false, true, false, -2, 1.0, false},
        {"causal offset 100 f32", F32, F32, F32, false, false, true, false, 100, -0.5, false},
        {"alibi f32", F32, F32, F32, false, false, false, true, 0, 1.0, false},
        {"alibi + causal bf16", BF16, BF16, F32, false, false, true, true, 0, 1.0, false},
        {"everything f32", F32, F32, F16, true, true, true, true, 1, 0.7, false},
        {"everything f64", F64, F64, BF16, true, true, true, true, 0, 1.3, false},
        {"everything f16 -> f32", F16, F32, F32, true, true, true, true, 2, 0.25, false},
        {"0/-inf mask f32", F32, F32, F32, true, false, false, false, 0, 1.0, true},
        {"additive f64 mask on f32", F32, F32, F64, true, false, false, false, 0, 0.5, false},
        {"additive f64 mask on bf16 -> f16", BF16, F16, F64, true, true, false, false, 0, 2.0, false},
        {"0/-inf bf16 mask + where + causal, f32", F32, F32, BF16, true, true, true, false, 1, 0.5, true},
        {"0/-inf bf16 mask + causal, f32", F32, F32, BF16, true, false, true, false, 0, 1.0, true},
        {"0/-inf f16 mask, f32 -> bf16", F32, BF16, F16, true, false, false, false, 0, 1.0, true},
        {"0/-inf f16 mask, f64", F64, F64, F16, true, false, false, false, 0, 1.0, true},
        {"0/-inf mask with ALiBi f32", F32, F32, F32, true, false, false, true, 0, 1.0, true},
        /* Logits up to ~300 (rounding z = scale * x + bias to f32 before
         * the exp would cost ~100 ulp) and scales that f32 does not hold. */
        {"additive f32, large logits", F32, F32, F32, true, false, false, false, 0, 20.0, false},
        {"additive bf16 mask, large logits, -1/sqrt(80)", F32, F32, BF16, true, true, true, false, 0,
         -20.0 / sqrt(80.0), false},
        {"alibi f32, large logits, 1/sqrt(80)", F32, F32, F32, false, false, false, true, 0, 20.0 / sqrt(80.0), false},
        {"alibi + where f32, negative scale", F32, F32, F32, false, true, false, true, 0, -3.0, false},
        {"alibi + causal + 0/-inf mask f32", F32, F32, F32, true, false, true, true, 2, 11.0, true},
    };
    test_rng rng;
    rng_seed(&rng, 99);
    size_t checked = 0;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        run_mask_case(&cases[i], 41, &rng, &checked);
        run_mask_case(&cases[i], 300, &rng, &checked);
    }
    printf("masks: %zu cases, %zu outputs within bounds, no NaN\n", ARRAY_LEN(cases), checked);
}

/* Whether an additive mask only excludes (every value 0 or -inf) is read
 * from the mask itself: one value that adds something, anywhere, must be
 * added. Masks the size of the scores (each element used once, the stored
 * dimensions read as one run, or along a stride of 2), holding -0 and
 * -inf, with a single 0.5 at the last element of the run, in the middle of
 * it, or at its first element, in each mask type; the row holding it is
 * checked against MPFR, and so is a row without it. */
static void test_one_added_value_in_a_large_mask(void **state)
{
    (void)state;
    enum { LINES = 24, K = 600 };
    const softmax_dtype types[4] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    const size_t spots[3] = {LINES * K - 1, LINES * K / 2 + 77, 0};
    test_rng rng;
    rng_seed(&rng, 4242);
    float *x = malloc(LINES * K * sizeof *x), *y = malloc(LINES * K * sizeof *y);
    double *mask_values = malloc(2 * LINES * K * sizeof *mask_values);
    for (size_t i = 0; i < LINES * K; i++)
        x[i] = (float)(rng_normal(&rng) * 2.0);
    reference_line r;
    reference_init(&r, K);
    size_t checked = 0;
    for (int t = 0; t < 4; t++)
        for (int strided = 0; strided < 2; strided++)
            for (size_t s = 0; s < 3; s++) {
                const int64_t step = strided ? 2 : 1;
                for (size_t i = 0; i < 2 * LINES * K; i++)
                    mask_values[i] = i % 7 == 3 ? -INFINITY : i % 2 ? -0.0 : 0.0;
                const size_t spot = spots[s];
                mask_values[spot * (size_t)step] = 0.5;
                void *mask = typed_alloc(types[t], 2 * LINES * K);
                typed_store(types[t], mask, mask_values, 2 * LINES * K);
                const int64_t mask_strides[3] = {(int64_t)(LINES / 2 * K) * step, (int64_t)K * step, step};
                softmax_desc desc;
                softmax_desc_init(&desc, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F32, K);
                desc.ndim = 3;
                desc.shape[0] = 2, desc.shape[1] = LINES / 2, desc.shape[2] = K;
                desc.mask = mask;
                desc.mask_dtype = types[t];
                desc.mask_strides = mask_strides;
                desc.scale = 0.5;
                if (softmax_execute(&desc, x, NULL, y) != 0)
                    fail_msg("one added value: %s", softmax_last_error());
                const size_t rows[2] = {spot / K, (spot / K + 1) % LINES};
                for (int k = 0; k < 2; k++) {
                    const size_t row = rows[k];
                    for (size_t j = 0; j < K; j++) {
                        const double m = mask_values[(row * K + j) * (size_t)step];
                        r.kept[j] = m != -INFINITY;
                        reference_logit(r.z[j], x[row * K + j], 0.5, m, NULL, j);
                    }
                    reference_evaluate(&r);
                    char what[96];
                    snprintf(what, sizeof what, "one added value (mask type %d, stride %d, at %zu): row %zu", (int)t,
                             (int)step, spot, row);
                    for (size_t j = 0; j < K; j++, checked++)
                        check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, true, y[row * K + j], &r, j);
                }
                free(mask);
            }
    reference_free(&r);
    free(x), free(y), free(mask_values);
    printf("one added value in a large mask: %zu outputs within bounds\n", checked);
}

/* ALiBi slopes that are not powers of two (24 heads: H2 = 16, m0 =
 * 2^-1/2; 40 heads with max_bias 5.5: m0 = 2^(-5.5/32); 200 and 3000
 * heads, whose slopes past the 64th come from the plan's two tables),
 * heads below and above H2, on rows of 500 to 2000 in f64 and f32, against
 * MPFR slopes: the bias
 * slope * j of a long row needs the slope to far more than a double's 53
 * bits for f64 outputs within the contract (a double slope from a power of
 * the rounded m0 missed rows of 4096 by up to 1255 ulp). */
static void test_alibi_slopes_exact(void **state)
{
    (void)state;
    /* Past 64 heads the slopes are products of two plan tables (200 heads:
     * 16 + 17 entries; 3000: 64 + 65, heads below and above H2 = 2048), or
     * for a few heads past 64 made one by one (70 heads). */
    static const struct {
        size_t heads;
        double max_bias;
        size_t queries;
        size_t K;
    } setups[] = {
        {24, 8.0, 2, 2000}, {40, 5.5, 2, 2000}, {70, 3.0, 1, 1000}, {200, 0.75, 1, 1000}, {3000, 8.0, 1, 500}};
    static const size_t heads_checked[] = {0,  7,   15,  16,  23,  31,   32,   39,   63,  64,
                                           69, 100, 127, 128, 199, 1001, 2047, 2048, 2999};
    test_rng rng;
    rng_seed(&rng, 2024);
    size_t checked = 0;
    for (size_t s = 0; s < ARRAY_LEN(setups); s++) {
        const size_t H = setups[s].heads, Q = setups[s].queries, K = setups[s].K, total = H * Q * K;
        reference_line r;
        reference_init(&r, K);
        double *x = malloc(total * sizeof *x), *y = malloc(total * sizeof *y);
        float *x32 = malloc(total * sizeof *x32), *y32 = malloc(total * sizeof *y32);
        assert_non_null(x), assert_non_null(y), assert_non_null(x32), assert_non_null(y32);
        for (size_t i = 0; i < total; i++) {
            x32[i] = (float)(rng_normal(&rng) * 2.0);
            x[i] = x32[i];
        }
        for (int log_output = 0; log_output < 2; log_output++)
            for (int f32 = 0; f32 < 2; f32++) {
                const softmax_dtype type = f32 ? SOFTMAX_DTYPE_F32 : SOFTMAX_DTYPE_F64;
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, type, K);
                desc.ndim = 3;
                desc.shape[0] = H, desc.shape[1] = Q, desc.shape[2] = K;
                desc.scale = 0.5;
                desc.max_bias = setups[s].max_bias;
                desc.head_axis = 0;
                if (softmax_execute(&desc, f32 ? (const void *)x32 : (const void *)x, NULL,
                                    f32 ? (void *)y32 : (void *)y) != 0)
                    fail_msg("ALiBi slopes: %s", softmax_last_error());
                for (size_t c = 0; c < ARRAY_LEN(heads_checked); c++) {
                    const size_t h = heads_checked[c];
                    if (h >= H)
                        continue;
                    mpfr_t slope;
                    mpfr_init2(slope, PREC);
                    alibi_slope_reference(slope, setups[s].max_bias, H, h);
                    for (size_t q = 0; q < Q; q++) {
                        const size_t line = h * Q + q;
                        for (size_t k = 0; k < K; k++) {
                            r.kept[k] = true;
                            reference_logit(r.z[k], x[line * K + k], 0.5, 0.0, slope, k);
                        }
                        reference_evaluate(&r);
                        char what[128];
                        snprintf(what, sizeof what, "ALiBi %zu heads, max_bias %g, %s %s, head %zu query %zu", H,
                                 setups[s].max_bias, f32 ? "f32" : "f64", log_output ? "log_softmax" : "softmax", h, q);
                        for (size_t k = 0; k < K; k++, checked++)
                            check_value(what, type, type, log_output, f32 ? (double)y32[line * K + k] : y[line * K + k],
                                        &r, k);
                    }
                    mpfr_clear(slope);
                }
            }
        free(x), free(y), free(x32), free(y32);
        reference_free(&r);
    }
    printf("ALiBi slopes against MPFR: %zu outputs within bounds\n", checked);
}

/* A mask materialized over the batch (each stored value serves one line:
 * the blocks check the values as they go, assuming that they only exclude)
 * gives the bits of the same values broadcast over the batch (read whole by
 * the planner first): when every value is 0 or -inf, and when one value of
 * the last line adds 0.5 -- then every line has the mask added, as the
 * planner decides from the whole mask -- with and without ALiBi, on one
 * thread and on two; the first and the last line of both against MPFR. The
 * one exception, an adding bias without ALiBi, which the broadcast call
 * reduces once (within the bounds, not the same bits), is said below. */
static void test_materialized_mask_same_bits_as_broadcast(void **state)
{
    (void)state;
    enum { B = 8, Q = 32, K = 512 };
    const size_t total = (size_t)B * Q * K;
    test_rng rng;
    rng_seed(&rng, 5151);
    float *x = malloc(total * sizeof *x), *y_broadcast = malloc(total * sizeof *y_broadcast);
    float *y_full = malloc(total * sizeof *y_full);
    float *mask = malloc(Q * K * sizeof *mask), *mask_full = malloc(total * sizeof *mask_full);
    for (size_t i = 0; i < total; i++)
        x[i] = (float)(rng_normal(&rng) * 3.0);
    reference_line r;
    reference_init(&r, K);
    size_t compared = 0;
    for (int adds = 0; adds < 2; adds++)
        for (int alibi = 0; alibi < 2; alibi++)
            for (int threads = 1; threads <= 2; threads++) {
                for (size_t i = 0; i < (size_t)Q * K; i++)
                    mask[i] = i % 5 == 2 || i / K == 7 ? -INFINITY : i % 2 ? -0.0f : 0.0f;
                if (adds)
                    mask[(size_t)Q * K - 1] = 0.5f;
                for (size_t b = 0; b < B; b++)
                    memcpy(mask_full + b * Q * K, mask, Q * K * sizeof *mask);
                const int64_t broadcast_strides[3] = {0, K, 1}, full_strides[3] = {(int64_t)Q * K, K, 1};
                softmax_desc desc;
                softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, K);
                desc.ndim = 3;
                desc.shape[0] = B, desc.shape[1] = Q, desc.shape[2] = K;
                desc.scale = 0.3; /* not a power of two: adding 0 is not scaling */
                desc.mask_dtype = SOFTMAX_DTYPE_F32;
                desc.max_bias = alibi ? 8.0 : 0.0; /* heads along axis 0 */
                assert_int_equal(softmax_set_num_threads(threads), 0);
                desc.mask = mask;
                desc.mask_strides = broadcast_strides;
                if (softmax_execute(&desc, x, NULL, y_broadcast) != 0)
                    fail_msg("broadcast mask: %s", softmax_last_error());
                desc.mask = mask_full;
                desc.mask_strides = full_strides;
                if (softmax_execute(&desc, x, NULL, y_full) != 0)
                    fail_msg("materialized mask: %s", softmax_last_error());
                assert_int_equal(softmax_set_num_threads(0), 0);
                /* A bias that adds, broadcast over 8 batches of rows of 512
                 * without ALiBi, is reduced once for the call
                 * (test_broadcast_bias_reduced_once): its bits are not the
                 * materialized mask's, both are checked against MPFR below. */
                const bool reduced_once = adds && !alibi;
                for (size_t i = 0; i < total && !reduced_once; i++)
                    if (memcmp(&y_broadcast[i], &y_full[i], sizeof *y_full) != 0)
                        fail_msg("mask %s, ALiBi %d, %d thread(s): element %zu is %a materialized, %a broadcast",
                                 adds ? "adding 0.5 once" : "of 0 and -inf", alibi, threads, i, (double)y_full[i],
                                 (double)y_broadcast[i]);
                compared += reduced_once ? 0 : total;
                for (size_t line = 0; line < (size_t)B * Q; line += (size_t)B * Q - 1) {
                    const size_t batch = line / Q, query = line % Q;
                    mpfr_t slope;
                    mpfr_init2(slope, PREC);
                    if (alibi)
                        alibi_slope_reference(slope, 8.0, B, batch);
                    for (size_t k = 0; k < K; k++) {
                        r.kept[k] = mask[query * K + k] != -INFINITY;
                        reference_logit(r.z[k], x[line * K + k], 0.3, mask[query * K + k], alibi ? slope : NULL, k);
                    }
                    mpfr_clear(slope);
                    reference_evaluate(&r);
                    char what[96];
                    snprintf(what, sizeof what, "materialized mask (adds %d, ALiBi %d): line %zu", adds, alibi, line);
                    for (size_t k = 0; k < K; k++) {
                        check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, false, y_full[line * K + k], &r, k);
                        check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, false, y_broadcast[line * K + k], &r,
                                    k);
                    }
                }
            }
    reference_free(&r);
    free(x), free(y_broadcast), free(y_full), free(mask), free(mask_full);
    printf("materialized masks: %zu outputs with the bits of the broadcast ones\n", compared);
}

/* A dense f32 bias [T, T] broadcast over 16 heads (attention's relative-
 * position bias), the case the kernels reduce once per call
 * (softmax_kernels.reduce_bias): rows of 5 to 1000 (the grouped tiny and
 * small rows, the in-cache regime), scales of both signs, a power of two or not, biases up to +-600
 * cancelling scale * x (z small while both terms are large: every bit of
 * the bias's low part counts there), a causal bias of -inf entries, the
 * causal flag beside a bias, and a bias with one entry beyond the reduced
 * range (the whole call then adds it as the other rows do), against MPFR;
 * rows with a NaN or infinite x (which the general path takes) as the
 * contract has them. */
static void test_broadcast_bias_reduced_once(void **state)
{
    (void)state;
    enum { HEADS = 16 };
    const size_t lengths[] = {5, 16, 32, 100, 129, 200, 512, 1000};
    const double scales[] = {0.125, 0.3, -0.7, 3.0};
    test_rng rng;
    rng_seed(&rng, 7219);
    size_t checked = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        const size_t T = lengths[li], total = HEADS * T * T;
        float *x = malloc(total * sizeof *x), *y = malloc(total * sizeof *y), *bias = malloc(T * T * sizeof *bias);
        reference_line r;
        reference_init(&r, T);
        for (int kind = 0; kind < 5; kind++) {
            const double scale = scales[(li + (size_t)kind) % 4];
            /* 0 dense, 1 large and cancelling, 2 causal -inf entries, 3
             * with the causal flag, 4 one entry beyond the reduced range. */
            for (size_t q = 0; q < T; q++)
                for (size_t k = 0; k < T; k++) {
                    double b = rng_normal(&rng) * 4.0;
                    if (kind == 1)
                        b = (rng_uniform(&rng) * 2.0 - 1.0) * 600.0;
                    if (kind == 2 && k > q)
                        b = -INFINITY;
                    bias[q * T + k] = (float)b;
                }
            if (kind == 4)
                bias[T * T / 2] = 800.0f;
            for (size_t i = 0; i < total; i++) {
                const float b = bias[i % (T * T)];
                /* kind 1: scale * x about -b, so that z is small. */
                x[i] = kind == 1 && b != -INFINITY ? (float)(-(double)b / scale + rng_normal(&rng) * 2.0)
                                                   : (float)(rng_normal(&rng) * 3.0);
            }
            softmax_desc desc;
            softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, T);
            desc.ndim = 3;
            desc.shape[0] = HEADS, desc.shape[1] = T, desc.shape[2] = T;
            desc.mask_dtype = SOFTMAX_DTYPE_F32;
            desc.scale = scale;
            desc.causal = kind == 3;
            const int64_t broadcast_strides[3] = {0, (int64_t)T, 1};
            desc.mask = bias;
            desc.mask_strides = broadcast_strides;
            if (softmax_execute(&desc, x, NULL, y) != 0)
                fail_msg("broadcast bias: %s", softmax_last_error());
            for (size_t line = (size_t)kind; line < HEADS * T; line += 23) {
                const size_t query = line % T;
                for (size_t k = 0; k < T; k++) {
                    const float b = bias[query * T + k];
                    r.kept[k] = b != -INFINITY && (kind != 3 || k <= query);
                    reference_logit(r.z[k], x[line * T + k], scale, b, NULL, k);
                }
                reference_evaluate(&r);
                char what[128];
                snprintf(what, sizeof what, "broadcast bias kind %d, T %zu, scale %g, line %zu", kind, T, scale, line);
                for (size_t k = 0; k < T; k++, checked++)
                    check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, false, y[line * T + k], &r, k);
            }
            /* Rows with a non-finite x (the general path's): NaN gives a
             * NaN row; scale * x = -inf is excluded; +inf takes the whole
             * probability. */
            if (kind == 0) {
                const size_t special[3] = {3, T + 5, 2 * T + 9}, column[3] = {T / 2, 1, T - 1};
                const float value[3] = {NAN, INFINITY, -INFINITY};
                for (int s = 0; s < 3; s++)
                    x[special[s] * T + column[s]] = value[s];
                if (softmax_execute(&desc, x, NULL, y) != 0)
                    fail_msg("broadcast bias: %s", softmax_last_error());
                for (size_t k = 0; k < T; k++)
                    assert_true(isnan(y[special[0] * T + k]));
                for (int s = 1; s < 3; s++) {
                    const size_t line = special[s], query = line % T;
                    const bool wins = (value[s] > 0) == (scale > 0);
                    for (size_t k = 0; k < T; k++) {
                        r.kept[k] = k != column[s];
                        reference_logit(r.z[k], k == column[s] ? 0.0 : x[line * T + k], scale, bias[query * T + k],
                                        NULL, k);
                    }
                    reference_evaluate(&r);
                    char what[128];
                    snprintf(what, sizeof what, "broadcast bias, T %zu, scale %g, x = %g in line %zu", T, scale,
                             (double)value[s], line);
                    for (size_t k = 0; k < T; k++, checked++) {
                        const float got = y[line * T + k];
                        if (wins && got != (k == column[s] ? 1.0f : 0.0f))
                            fail_msg("%s: element %zu is %a", what, k, (double)got);
                        if (!wins)
                            check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, false, got, &r, k);
                    }
                }
            }
        }
        reference_free(&r);
        free(x), free(y), free(bias);
    }
    printf("broadcast biases reduced once: %zu outputs within bounds\n", checked);
}

/* f32 biases read by too few rows to be reduced once per call: the rows
 * of the in-cache regime reduce them as they read them (reducing_bias_row),
 * which takes any finite bias where x is moderate. A full [R, T] bias (each
 * entry read once) on rows of 129 to 4100, each row a kind: dense; large
 * and cancelling scale * x; shifted by -1500 and by +650 (beyond the range
 * the per-call reduction takes); -inf, -1e30 and -5000 entries among
 * normal ones; a NaN entry (the row is NaN); two +inf entries (they share
 * the row); x far beyond the reduced rows' limit with a bias of -60000
 * cancelling it; a shift of +1000 (maxima
 * beyond 1024) -- the last ones declined to the exact two-sum -- then all
 * again with a causal prefix, and both as log-softmax (the two-sum bodies
 * alone), against MPFR; in place on two threads, the same bits. */
static void test_bias_reduced_as_read(void **state)
{
    (void)state;
    enum { ROWS = 18, KINDS = 10 };
    const size_t lengths[] = {5, 16, 40, 100, 129, 200, 333, 1000, 4100};
    const double scales[] = {0.125, 0.3, -0.7, 3.0, 1.0};
    test_rng rng;
    rng_seed(&rng, 8806);
    size_t checked = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        const size_t T = lengths[li], total = ROWS * T, offset = T > ROWS + 5 ? T - ROWS - 5 : 0;
        float *x = malloc(total * sizeof *x), *y = malloc(total * sizeof *y), *bias = malloc(total * sizeof *bias);
        float *again = malloc(total * sizeof *again);
        reference_line r;
        reference_init(&r, T);
        for (size_t si = 0; si < 2; si++) {
            const double scale = scales[(li + si) % 5];
            for (size_t row = 0; row < ROWS; row++) {
                const int kind = (int)(row % KINDS);
                for (size_t k = 0; k < T; k++) {
                    const size_t i = row * T + k;
                    double b = rng_normal(&rng) * 4.0, value = rng_normal(&rng) * 3.0;
                    if (kind == 1) { /* scale * x about -b: z small */
                        b = (rng_uniform(&rng) * 2.0 - 1.0) * 340.0;
                        value = -b / scale + rng_normal(&rng) * 2.0;
                    }
                    b += kind == 2 ? -1500.0 : kind == 3 ? 650.0 : kind == 8 ? 1000.0 : 0.0;
                    if (kind == 4 && k % 7 == 3)
                        b = k % 3 == 0 ? -INFINITY : k % 3 == 1 ? -1e30 : -5000.0;
                    if (kind == 7 && k % 5 == 2) { /* c x far beyond 512, cancelled by the bias */
                        b = -60000.0 + rng_normal(&rng);
                        value = 60000.0 / scale + rng_normal(&rng) * 2.0;
                    }
                    bias[i] = (float)b;
                    x[i] = (float)value;
                }
                if (kind == 5)
                    bias[row * T + T / 3] = NAN;
                if (kind == 6)
                    bias[row * T + 1] = bias[row * T + T - 2] = INFINITY;
                /* A causal bias's -inf tail (from a column that moves with
                 * the row, on and off a vector's edge) over x that would
                 * make the row NaN or infinite were it kept: its elements
                 * are excluded whatever x holds. */
                for (size_t k = T / 2 + row % 7; kind == 9 && k < T; k++) {
                    static const float specials[4] = {NAN, INFINITY, -INFINITY, 3e38f};
                    bias[row * T + k] = -INFINITY;
                    x[row * T + k] = specials[k % 4];
                }
            }
            for (int pass = 0; pass < 4; pass++) {
                const int causal = pass & 1;
                const bool log_output = pass >= 2; /* the two-sum bodies alone */
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32,
                                  T);
                desc.ndim = 2;
                desc.shape[0] = ROWS, desc.shape[1] = T;
                desc.mask_dtype = SOFTMAX_DTYPE_F32;
                desc.mask = bias;
                desc.scale = scale;
                desc.causal = causal;
                desc.causal_offset = (int64_t)offset; /* row r keeps r + offset + 1 elements (at most T) */
                if (softmax_execute(&desc, x, NULL, y) != 0)
                    fail_msg("bias reduced as read: %s", softmax_last_error());
                /* In place and on two threads: the same bits. */
                memcpy(again, x, total * sizeof *x);
                assert_int_equal(softmax_set_num_threads(2), 0);
                const int in_place = softmax_execute(&desc, again, NULL, again);
                assert_int_equal(softmax_set_num_threads(0), 0);
                if (in_place != 0)
                    fail_msg("bias reduced as read, in place: %s", softmax_last_error());
                for (size_t i = 0; i < total; i++)
                    if (memcmp(&again[i], &y[i], sizeof *y) != 0 && !(isnan(again[i]) && isnan(y[i])))
                        fail_msg("bias reduced as read, T %zu, pass %d: element %zu is %a in place on two threads, %a",
                                 T, pass, i, (double)again[i], (double)y[i]);
                for (size_t row = 0; row < ROWS; row++) {
                    const int kind = (int)(row % KINDS);
                    const size_t kept = causal && row + offset + 1 < T ? row + offset + 1 : T;
                    char what[160];
                    snprintf(what, sizeof what,
                             "bias reduced as read: kind %d, T %zu, scale %g, causal %d, log %d, row %zu", kind, T,
                             scale, causal, (int)log_output, row);
                    const float *got = y + row * T;
                    if (kind == 5 && T / 3 < kept) {
                        for (size_t k = 0; k < T; k++)
                            if (!isnan(got[k]))
                                fail_msg("%s: element %zu is %a, not NaN", what, k, (double)got[k]);
                        continue;
                    }
                    if (kind == 6 && log_output)
                        continue;
                    if (kind == 6) { /* z = +inf at the two +inf entries, any scale: they share the row */
                        for (size_t k = 0; k < T; k++) {
                            const float want = (k == 1 || k == T - 2) && k < kept ? (T - 2 < kept ? 0.5f : 1.0f) : 0.0f;
                            if (got[k] != want)
                                fail_msg("%s: element %zu is %a, not %a", what, k, (double)got[k], (double)want);
                        }
                        continue;
                    }
                    for (size_t k = 0; k < T; k++) {
                        const float b = bias[row * T + k];
                        r.kept[k] = k < kept && b != -INFINITY && !(kind == 6 && isinf(b));
                        reference_logit(r.z[k], x[row * T + k], scale, b, NULL, k);
                    }
                    reference_evaluate(&r);
                    for (size_t k = 0; k < T; k++, checked++)
                        check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, log_output, got[k], &r, k);
                }
            }
        }
        reference_free(&r);
        free(x), free(y), free(bias), free(again);
    }
    printf("biases reduced as read: %zu outputs within bounds\n", checked);
}

/* Added biases on short rows (the grouped kernels add them as x is read):
 * every row length from 1 to 130 -- one vector and more, and the longest
 * grouped row (SMALL_VECTORS vectors: 64 on AVX2, 128 on AVX-512) and
 * beyond -- with f32 / bf16 / f16 additive masks holding -inf entries and a
 * fully masked query row, ALiBi slopes of 3 heads (irrational ones
 * included), causal prefixes, `where` padding and negative and large
 * scales, against MPFR. */
static void test_added_biases_on_short_rows(void **state)
{
    (void)state;
    const softmax_dtype F32 = SOFTMAX_DTYPE_F32, BF16 = SOFTMAX_DTYPE_BF16, F16 = SOFTMAX_DTYPE_F16;
    const mask_case cases[] = {
        {"short rows: additive f32", F32, F32, F32, true, false, false, false, 0, 0.125, false},
        {"short rows: additive bf16 mask + causal", F32, F32, BF16, true, false, true, false, 0, 1.0, false},
        {"short rows: additive f16 mask + where, negative scale", F32, F32, F16, true, true, false, false, 0, -0.75,
         false},
        {"short rows: additive f32, large logits", F32, F32, F32, true, false, false, false, 0, 20.0, false},
        {"short rows: alibi + causal", F32, F32, F32, false, false, true, true, 0, 1.0 / sqrt(8.0), false},
        {"short rows: alibi + causal offset -3", F32, F32, F32, false, false, true, true, -3, 1.0, false},
        {"short rows: alibi + where, negative scale", F32, F32, F32, false, true, false, true, 0, -3.0, false},
        {"short rows: alibi + 0/-inf bf16 mask + causal", F32, F32, BF16, true, false, true, true, 1, 11.0, true},
        /* Logits beyond 1024 in some rows of a group: those rows take the
         * gathered path, their neighbours stay in the group. */
        {"short rows: additive f32, logits beyond 1024", F32, F32, F32, true, false, false, false, 0, 100.0, false},
        /* The bodies of a power-of-two scale (scale * x exact) beside the
         * general one, for each added bias without `where`. */
        {"short rows: additive f32, scale 4", F32, F32, F32, true, false, false, false, 0, 4.0, false},
        {"short rows: additive f32, scale 0.3", F32, F32, F32, true, false, false, false, 0, 0.3, false},
        {"short rows: additive bf16 mask, scale -0.5", F32, F32, BF16, true, false, false, false, 0, -0.5, false},
        {"short rows: additive f16 mask, scale 0.25", F32, F32, F16, true, false, false, false, 0, 0.25, false},
        {"short rows: additive f16 mask, scale 0.3", F32, F32, F16, true, false, false, false, 0, 0.3, false},
        {"short rows: alibi, scale 0.125", F32, F32, F32, false, false, false, true, 0, 0.125, false},
        {"short rows: alibi, scale 8", F32, F32, F32, false, false, false, true, 0, 8.0, false},
        {"short rows: alibi, scale 0.3", F32, F32, F32, false, false, false, true, 0, 0.3, false},
    };
    test_rng rng;
    rng_seed(&rng, 1616);
    size_t checked = 0;
    /* Each case on the lengths where the kernels change body (every
     * tail of one vector, the ends of 2, 3, 4, 6 and 8 AVX-512 vectors and
     * of the grouped rows, and one past them), and on every 17th length
     * from its own start: together the cases still cover every length
     * from 1 to 130, at a fifth of the MPFR work of all cases on all. */
    static const size_t boundaries[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,  16,  17,  23,
                                        24, 25, 31, 32, 33, 47, 48, 49, 63, 64, 65, 95, 96, 97, 127, 128, 129, 130};
    size_t lengths_run = 0;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        for (size_t K = 1; K <= 130; K++) {
            bool boundary = K % 17 == i % 17;
            for (size_t b = 0; b < ARRAY_LEN(boundaries) && !boundary; b++)
                boundary = boundaries[b] == K;
            if (!boundary)
                continue;
            run_mask_case(&cases[i], K, &rng, &checked);
            lengths_run++;
        }
    printf("added biases on short rows: %zu cases, %zu (case, length) pairs, %zu outputs within bounds\n",
           ARRAY_LEN(cases), lengths_run, checked);
}

/* Special logits in rows with an added mask (short rows in one group, and
 * rows the line kernels read in place), each in its own row: a NaN kept logit makes its row NaN, a NaN excluded one (a -inf
 * mask entry) changes nothing, +inf takes all the probability, -inf gets
 * none; the other rows of the group are unaffected. */
static void added_bias_special_logits(size_t N, double scale, softmax_dtype mask_type)
{
    enum { ROWS = 8 };
    float *x = malloc(ROWS * N * sizeof *x), *mask = malloc(ROWS * N * sizeof *mask), *y = malloc(ROWS * N * sizeof *y);
    for (size_t i = 0; i < ROWS * N; i++) {
        x[i] = (float)((double)(i % 7) * 0.25 - 0.5);
        mask[i] = (float)((double)(i % 5) * 0.5 - 1.0);
    }
    x[1 * N + 3] = NAN;
    x[2 * N + 5] = INFINITY;
    x[3 * N + 7] = -INFINITY;
    x[4 * N + 9] = NAN, mask[4 * N + 9] = -INFINITY;
    for (size_t j = 0; j < N; j++) /* row 5 keeps one element: probability exactly 1 */
        mask[5 * N + j] = j == 2 ? 0.75f : -INFINITY;
    x[6 * N + N - 1] = INFINITY, mask[6 * N + N - 1] = -INFINITY; /* +inf and -inf logits under -inf entries */
    x[6 * N + 1] = -INFINITY, mask[6 * N + 1] = -INFINITY;
    for (size_t j = 0; j < N; j++) /* row 7: NaN under every -inf entry, one element kept */
        if (j != N / 2)
            x[7 * N + j] = NAN, mask[7 * N + j] = -INFINITY;
    /* The mask in its type (every value above is exact in bf16 and f16). */
    void *typed_mask = typed_alloc(mask_type, ROWS * N);
    double *mask_values = malloc(ROWS * N * sizeof *mask_values);
    for (size_t i = 0; i < ROWS * N; i++)
        mask_values[i] = mask[i];
    typed_store(mask_type, typed_mask, mask_values, ROWS * N);
    free(mask_values);
    for (int log_output = 0; log_output < 2; log_output++) {
        softmax_desc desc;
        softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, N);
        desc.ndim = 2;
        desc.shape[0] = ROWS, desc.shape[1] = N;
        desc.scale = scale;
        const int64_t mask_strides[2] = {(int64_t)N, 1};
        desc.mask = typed_mask;
        desc.mask_dtype = mask_type;
        desc.mask_strides = mask_strides;
        if (softmax_execute(&desc, x, NULL, y) != 0)
            fail_msg("special logits: %s", softmax_last_error());
        const double excluded = log_output ? -INFINITY : 0.0;
        for (size_t j = 0; j < N; j++) {
            if (!isnan(y[1 * N + j]))
                fail_msg("a NaN logit: element %zu is %g, not NaN", j, (double)y[1 * N + j]);
            const double at_infinity = log_output ? 0.0 : 1.0;
            if (y[2 * N + j] != (j == 5 ? at_infinity : excluded))
                fail_msg("a +inf logit: element %zu is %g", j, (double)y[2 * N + j]);
        }
        if (y[5 * N + 2] != (log_output ? 0.0f : 1.0f))
            fail_msg("a row's only kept element: %.9g, not exactly %s", (double)y[5 * N + 2], log_output ? "0" : "1");
        for (size_t j = 0; j < N; j++)
            if (y[7 * N + j] != (j == N / 2 ? (log_output ? 0.0f : 1.0f) : excluded))
                fail_msg("NaN logits under -inf entries (scale %g, N = %zu): element %zu is %.9g", scale, N, j,
                         (double)y[7 * N + j]);
        if (y[3 * N + 7] != excluded || y[4 * N + 9] != excluded)
            fail_msg("-inf logit or excluded NaN: %g, %g", (double)y[3 * N + 7], (double)y[4 * N + 9]);
        /* Rows 0, 3, 4, 5 and 6 against MPFR. */
        const size_t plain_rows[] = {0, 3, 4, 5, 6};
        reference_line r;
        reference_init(&r, N);
        for (size_t k = 0; k < ARRAY_LEN(plain_rows); k++) {
            const size_t row = plain_rows[k];
            for (size_t j = 0; j < N; j++) {
                const float xv = x[row * N + j], mv = mask[row * N + j];
                r.kept[j] = mv != -INFINITY && xv != -INFINITY;
                mpfr_set_d(r.z[j], r.kept[j] ? xv : 0.0, MPFR_RNDN);
                mpfr_mul_d(r.z[j], r.z[j], scale, MPFR_RNDN);
                mpfr_add_d(r.z[j], r.z[j], r.kept[j] ? mv : 0.0, MPFR_RNDN);
            }
            reference_evaluate(&r);
            for (size_t j = 0; j < N; j++)
                check_value("special logits, plain row", SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, log_output,
                            y[row * N + j], &r, j);
        }
        reference_free(&r);
    }
    free(x), free(mask), free(y), free(typed_mask);
}

/* The f32 softmax (log_output: log-softmax) of [rows, n] at `scale`, the
 * [rows, n] bias added when not NULL (strides {n, 1}, held by the caller:
 * the descriptor points at them). */
static softmax_desc rows_with_added_bias(int log_output, size_t rows, size_t n, double scale, const float *bias,
                                         const int64_t *strides)
{
    softmax_desc desc;
    softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, n);
    desc.ndim = 2;
    desc.shape[0] = rows, desc.shape[1] = n;
    desc.scale = scale;
    if (bias != NULL) {
        desc.mask = bias;
        desc.mask_strides = strides;
    }
    return desc;
}
/* An added bias with a scale so large that scale * x is far beyond the
 * float range's middle for every nonzero x, while the rows' maxima stay
 * moderate (x = 0 there): the other elements' z, about -1e30, carry a
 * rounding remainder of about 1e23 that must not leak into their
 * probabilities, exactly 0 (a negative "probability" came out before).
 * ALiBi and an additive f32 bias, short rows (grouped kernels) and long
 * ones (line kernels), softmax and log-softmax, against MPFR. */
static void test_added_bias_with_a_huge_scale(void **state)
{
    (void)state;
    enum { ROWS = 4 };
    static const size_t lengths[] = {5, 16, 33, 300};
    static const double huge_scales[] = {1e30, 3e29, -1e30};
    test_rng rng;
    rng_seed(&rng, 3030);
    size_t checked = 0;
    for (size_t l = 0; l < ARRAY_LEN(lengths); l++)
        for (size_t s = 0; s < ARRAY_LEN(huge_scales); s++)
            for (int kind = 0; kind < 2; kind++)
                for (int log_output = 0; log_output < 2; log_output++) {
                    const size_t n = lengths[l];
                    const double scale = huge_scales[s];
                    float *x = malloc(ROWS * n * sizeof *x), *y = malloc(ROWS * n * sizeof *y);
                    float *bias = malloc(ROWS * n * sizeof *bias);
                    for (size_t i = 0; i < ROWS * n; i++) {
                        /* Two zeros a row (its maximum), the rest of the sign
                         * that makes z hugely negative. */
                        x[i] = i % n < 2 ? 0.0f : (float)(-(scale > 0 ? 1.0 : -1.0) * (1.0 + 7.0 * rng_uniform(&rng)));
                        bias[i] = (float)rng_range(&rng, -2.0, 2.0);
                    }
                    const int64_t bias_strides[2] = {(int64_t)n, 1};
                    softmax_desc desc =
                        rows_with_added_bias(log_output, ROWS, n, scale, kind == 0 ? NULL : bias, bias_strides);
                    if (kind == 0) {
                        desc.max_bias = 8.0;
                        desc.head_axis = 0;
                    }
                    if (softmax_execute(&desc, x, NULL, y) != 0)
                        fail_msg("huge scale: %s", softmax_last_error());
                    reference_line r;
                    reference_init(&r, n);
                    for (size_t row = 0; row < ROWS; row++) {
                        mpfr_t slope;
                        mpfr_init2(slope, PREC);
                        if (kind == 0)
                            alibi_slope_reference(slope, 8.0, ROWS, row);
                        for (size_t k = 0; k < n; k++) {
                            r.kept[k] = 1;
                            reference_logit(r.z[k], x[row * n + k], scale, kind == 1 ? bias[row * n + k] : 0.0,
                                            kind == 0 ? slope : NULL, k);
                        }
                        mpfr_clear(slope);
                        reference_evaluate(&r);
                        char what[128];
                        snprintf(what, sizeof what, "%s, scale %g, n = %zu, %s, row %zu", kind == 0 ? "ALiBi" : "bias",
                                 scale, n, log_output ? "log-softmax" : "softmax", row);
                        for (size_t k = 0; k < n; k++, checked++) {
                            const float got = y[row * n + k];
                            if (!log_output && !(got >= 0.0f && got <= 1.0f))
                                fail_msg("%s: probability %a at %zu", what, (double)got, k);
                            if (log_output && !(got <= 0.0f))
                                fail_msg("%s: log-probability %a at %zu", what, (double)got, k);
                            check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, log_output, got, &r, k);
                        }
                    }
                    reference_free(&r);
                    free(x), free(y), free(bias);
                }
    printf("added biases with a huge scale: %zu outputs within bounds\n", checked);
}

/* z = scale * x + bias within a few ulp of the float range's end, from
 * finite x and bias (0.25 * 3e38 - FLT_MAX): the exact two-sum of the
 * added-bias kernels overflows in its intermediate steps, and its NaN rest
 * made the whole row NaN. Short and long rows, softmax and log-softmax,
 * against MPFR. */
static void test_added_bias_near_the_float_range_end(void **state)
{
    (void)state;
    static const size_t lengths[] = {3, 20, 300};
    size_t checked = 0;
    for (size_t l = 0; l < ARRAY_LEN(lengths); l++)
        for (int log_output = 0; log_output < 2; log_output++) {
            const size_t n = lengths[l];
            float *x = calloc(2 * n, sizeof *x), *bias = calloc(2 * n, sizeof *bias), *y = malloc(2 * n * sizeof *y);
            for (size_t row = 0; row < 2; row++) {
                x[row * n + 1] = 3e38f;
                bias[row * n + 1] = -FLT_MAX;
                bias[row * n + n - 1] = row == 0 ? 0.5f : -FLT_MAX; /* and one ordinary bias */
            }
            const int64_t strides[2] = {(int64_t)n, 1};
            const softmax_desc desc = rows_with_added_bias(log_output, 2, n, 0.25, bias, strides);
            if (softmax_execute(&desc, x, NULL, y) != 0)
                fail_msg("near the range end: %s", softmax_last_error());
            reference_line r;
            reference_init(&r, n);
            for (size_t row = 0; row < 2; row++) {
                for (size_t k = 0; k < n; k++) {
                    r.kept[k] = 1;
                    reference_logit(r.z[k], x[row * n + k], 0.25, bias[row * n + k], NULL, k);
                }
                reference_evaluate(&r);
                char what[96];
                snprintf(what, sizeof what, "z near -FLT_MAX, n = %zu, %s, row %zu", n,
                         log_output ? "log-softmax" : "softmax", row);
                for (size_t k = 0; k < n; k++, checked++)
                    check_value(what, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F32, log_output, y[row * n + k], &r, k);
            }
            reference_free(&r);
            free(x), free(bias), free(y);
        }
    printf("added biases near the float range's end: %zu outputs within bounds\n", checked);
}

/* One case of test_added_bias_around_the_largest_logit: rows of x with an
 * added f64 or f32 bias at a scale, against MPFR. */
typedef struct far_bias_case {
    softmax_dtype dtype;
    double x[3], bias[3], scale;
} far_bias_case;

/* z = scale * x + bias where scale * x is huge, or beyond the double range,
 * and the bias small: {1e308, 1e308} at scale 10 with the bias {0, 1} was
 * taken as two +inf (1/2 each, exact 0.27 / 0.73); float logits of 1e20
 * with a bias of 5, or 1e300 at scale 1e-10, lost the bias in z's own
 * rounding (1/2 each). The row is formed around its largest x now. Rows of
 * 3, 20 and 300 (the grouped kernels, the general path's split, the line
 * kernels), the pattern repeated along the row, softmax and log-softmax. */
static void test_added_bias_around_the_largest_logit(void **state)
{
    (void)state;
    static const far_bias_case cases[] = {
        {SOFTMAX_DTYPE_F64, {1e308, 1e308, -1e308}, {0.0, 1.0, 2.0}, 10.0},
        {SOFTMAX_DTYPE_F64, {1e300, 1e300, 1e300}, {5.0, 0.0, -1.0}, 1e-10},
        {SOFTMAX_DTYPE_F64, {-3e38, -3e38, -2.9e38}, {-1.5, 0.2, 0.0}, 1e300},
        {SOFTMAX_DTYPE_F64, {-1e308, 1e308, -1e308}, {0.5, 0.0, 0.0}, -3.0},
        {SOFTMAX_DTYPE_F32, {1e20, 1e20, -1e20}, {5.0, 0.0, 1.0}, 1.0},
        {SOFTMAX_DTYPE_F32, {3e38, 3e38, 2.9999998e38}, {0.0, 2.0, 0.5}, 1e-32}, /* z near 3e6 */
        {SOFTMAX_DTYPE_F32, {-3e38, -3e38, 1.0}, {-1.5, 0.2, 0.0}, -1e300},
    };
    static const size_t lengths[] = {3, 20, 300};
    size_t checked = 0;
    for (size_t c = 0; c < ARRAY_LEN(cases); c++)
        for (size_t l = 0; l < ARRAY_LEN(lengths); l++)
            for (int log_output = 0; log_output < 2; log_output++) {
                const far_bias_case *fc = &cases[c];
                const size_t n = lengths[l];
                double *x = malloc(n * sizeof *x), *bias = malloc(n * sizeof *bias), *y = malloc(n * sizeof *y);
                for (size_t k = 0; k < n; k++) {
                    /* the case's three, then copies of its third element */
                    x[k] = fc->x[k < 3 ? k : 2];
                    bias[k] = fc->bias[k < 3 ? k : 2];
                }
                void *xt = typed_alloc(fc->dtype, n), *yt = typed_alloc(fc->dtype, n),
                     *mask = typed_alloc(fc->dtype, n);
                typed_store(fc->dtype, xt, x, n);
                typed_store(fc->dtype, mask, bias, n);
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, fc->dtype, n);
                desc.ndim = 1;
                desc.shape[0] = n;
                desc.scale = fc->scale;
                desc.mask = mask;
                desc.mask_dtype = fc->dtype;
                if (softmax_execute(&desc, xt, NULL, yt) != 0)
                    fail_msg("far logits: %s", softmax_last_error());
                reference_line r;
                reference_init(&r, n);
                /* z - scale * x[0] (softmax ignores the constant), exact at
                 * PREC bits: z itself would need a thousand (1e309 + 1). */
                for (size_t k = 0; k < n; k++) {
                    r.kept[k] = 1;
                    mpfr_set_d(r.z[k], decode(fc->dtype, xt, k), MPFR_RNDN);
                    mpfr_sub_d(r.z[k], r.z[k], decode(fc->dtype, xt, 0), MPFR_RNDN);
                    mpfr_mul_d(r.z[k], r.z[k], fc->scale, MPFR_RNDN);
                    mpfr_add_d(r.z[k], r.z[k], decode(fc->dtype, mask, k), MPFR_RNDN);
                }
                reference_evaluate(&r);
                char what[128];
                snprintf(what, sizeof what, "case %zu (%s, scale %g), n = %zu, %s", c,
                         fc->dtype == SOFTMAX_DTYPE_F64 ? "f64" : "f32", fc->scale, n,
                         log_output ? "log-softmax" : "softmax");
                for (size_t k = 0; k < n; k++, checked++)
                    check_value(what, fc->dtype, fc->dtype, log_output, decode(fc->dtype, yt, k), &r, k);
                reference_free(&r);
                free(x), free(bias), free(y), free(xt), free(yt), free(mask);
            }
    printf("added biases beside huge scaled logits: %zu outputs within bounds\n", checked);
}

/* The additive mask's -inf excludes for every scale: at an infinite scale
 * an excluded element no longer wins the arg max ({-1, 0} with {-1, -inf}
 * at +inf gave {0, 0}, not {1, 0}); and a row whose kept x are all -inf is
 * fully masked at a negative scale too ({-inf, -inf} with {-1, 0} at scale
 * -1 gave {1/2, 1/2}: -inf + a bias had become +inf). */
static void test_added_minus_inf_excludes_at_every_scale(void **state)
{
    (void)state;
    static const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64};
    for (size_t t = 0; t < ARRAY_LEN(types); t++)
        for (int log_output = 0; log_output < 2; log_output++) {
            const softmax_dtype dt = types[t];
            softmax_desc desc;
            softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, dt, 3);
            desc.ndim = 1;
            desc.shape[0] = 3;
            desc.mask_dtype = dt;
            void *xt = typed_alloc(dt, 3), *mask = typed_alloc(dt, 3), *yt = typed_alloc(dt, 3);
            desc.mask = mask;
            /* arg max excluded: the kept extreme wins alone */
            const double x1[3] = {-1.0, 0.0, -2.0}, m1[3] = {-1.0, -INFINITY, 0.5};
            typed_store(dt, xt, x1, 3);
            typed_store(dt, mask, m1, 3);
            desc.scale = INFINITY;
            assert_int_equal(softmax_execute(&desc, xt, NULL, yt), SOFTMAX_OK);
            const double one = log_output ? 0.0 : 1.0, none = log_output ? -INFINITY : 0.0;
            if (decode(dt, yt, 0) != one || decode(dt, yt, 1) != none || decode(dt, yt, 2) != none)
                fail_msg("+inf scale, arg max excluded: %g %g %g", decode(dt, yt, 0), decode(dt, yt, 1),
                         decode(dt, yt, 2));
            desc.scale = -INFINITY;                     /* the arg min -2 kept: it wins */
            const double m2[3] = {0.0, 0.0, -INFINITY}; /* now the arg min excluded: -1 wins */
            typed_store(dt, mask, m2, 3);
            assert_int_equal(softmax_execute(&desc, xt, NULL, yt), SOFTMAX_OK);
            if (decode(dt, yt, 0) != one || decode(dt, yt, 1) != none || decode(dt, yt, 2) != none)
                fail_msg("-inf scale, arg min excluded: %g %g %g", decode(dt, yt, 0), decode(dt, yt, 1),
                         decode(dt, yt, 2));
            /* every kept x -inf: fully masked for every scale */
            const double x3[3] = {-INFINITY, -INFINITY, 7.0}, m3[3] = {-1.0, 0.0, -INFINITY};
            typed_store(dt, xt, x3, 3);
            typed_store(dt, mask, m3, 3);
            static const double scales[] = {-1.0, -INFINITY, 2.0, INFINITY, 0.0, -0.0};
            for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
                desc.scale = scales[s];
                assert_int_equal(softmax_execute(&desc, xt, NULL, yt), SOFTMAX_OK);
                for (size_t k = 0; k < 3; k++)
                    if (decode(dt, yt, k) != none)
                        fail_msg("every kept x -inf, scale %g: y[%zu] = %g", scales[s], k, decode(dt, yt, k));
            }
            /* ... unless a kept bias is NaN: a NaN makes the row NaN (the
             * first version of the rule above gave zeros; fuzz_execute) */
            const double m4[3] = {NAN, 0.0, -INFINITY};
            typed_store(dt, mask, m4, 3);
            for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
                desc.scale = scales[s];
                assert_int_equal(softmax_execute(&desc, xt, NULL, yt), SOFTMAX_OK);
                for (size_t k = 0; k < 2; k++)
                    if (!isnan(decode(dt, yt, k)))
                        fail_msg("a NaN bias, every kept x -inf, scale %g: y[%zu] = %g", scales[s], k,
                                 decode(dt, yt, k));
            }
            free(xt), free(mask), free(yt);
        }
}

static void test_added_bias_special_logits(void **state)
{
    (void)state;
    /* A power-of-two scale (the bodies of an exact scale * x) and others;
     * rows of one vector, of more, and rows the line kernels read. */
    const double scales[] = {0.5, 1.0, 0.3};
    const size_t lengths[] = {12, 20, 33, 300};
    const softmax_dtype mask_types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    for (size_t s = 0; s < ARRAY_LEN(scales); s++)
        for (size_t n = 0; n < ARRAY_LEN(lengths); n++)
            for (size_t m = 0; m < ARRAY_LEN(mask_types); m++)
                added_bias_special_logits(lengths[n], scales[s], mask_types[m]);
}

/* Masked gradients: where/causal exclude elements from the backward too. */
static void test_masked_backward(void **state)
{
    (void)state;
    const size_t Q = 7, K = 29, total = Q * K;
    test_rng rng;
    rng_seed(&rng, 3);
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    for (size_t t = 0; t < ARRAY_LEN(types); t++) {
        const softmax_dtype type = types[t];
        const bool half = type == SOFTMAX_DTYPE_BF16 || type == SOFTMAX_DTYPE_F16;
        double *values = malloc(total * sizeof *values), *dy_values = malloc(total * sizeof *dy_values);
        for (size_t i = 0; i < total; i++) {
            values[i] = rng_normal(&rng) * 3;
            dy_values[i] = rng_normal(&rng);
        }
        uint8_t where[K];
        for (size_t k = 0; k < K; k++)
            where[k] = k % 4 != 1;
        const int64_t where_strides[2] = {0, 1};
        void *x = typed_alloc(type, total), *logy = typed_alloc(type, total), *dy = typed_alloc(type, total),
             *dx = typed_alloc(type, total);
        typed_store(type, x, values, total);
        typed_store(type, dy, dy_values, total);
        for (int variant = 0; variant < 2; variant++) {
            softmax_desc desc;
            softmax_desc_init(&desc, SOFTMAX_OP_LOG_SOFTMAX, type, K);
            desc.ndim = 2;
            desc.shape[0] = Q, desc.shape[1] = K;
            desc.causal = 1;
            desc.causal_offset = 2;
            if (variant == 1) {
                desc.where = where;
                desc.where_strides = where_strides;
            }
            assert_int_equal(softmax_execute(&desc, x, NULL, logy), 0);
            desc.op = SOFTMAX_OP_LOG_SOFTMAX_BACKWARD;
            assert_int_equal(softmax_execute(&desc, logy, dy, dx), 0);
            for (size_t q = 0; q < Q; q++) {
                /* dx_k = dy_k - p_k * sum over kept of dy, p from the exact
                 * softmax of the kept logits; 0 where excluded. */
                reference_line r;
                reference_init(&r, K);
                for (size_t k = 0; k < K; k++) {
                    r.kept[k] = (int64_t)k <= (int64_t)q + 2 && (variant == 0 || where[k]);
                    mpfr_set_d(r.z[k], decode(type, x, q * K + k), MPFR_RNDN);
                }
                reference_evaluate(&r);
                long double sum = 0, magnitude = 0;
                for (size_t k = 0; k < K; k++)
                    if (r.kept[k]) {
                        sum += decode(type, dy, q * K + k);
                        magnitude += fabs(decode(type, dy, q * K + k));
                    }
                for (size_t k = 0; k < K; k++) {
                    const double got = decode(type, dx, q * K + k);
                    if (!r.kept[k]) {
                        if (got != 0)
                            fail_msg("masked backward: excluded element %zu of row %zu is %g, not 0", k, q, got);
                        continue;
                    }
                    /* p from the stored logy (which carries its own rounding
                     * in half precision), as the backward sees it. */
                    const double p_seen = half ? exp(decode(type, logy, q * K + k)) : r.p[k];
                    const double want = (double)((long double)decode(type, dy, q * K + k) - (long double)p_seen * sum);
                    const double eps = type == SOFTMAX_DTYPE_F64 ? DBL_EPSILON : FLT_EPSILON;
                    double allowed = 8 * eps * (fabs(decode(type, dy, q * K + k)) + (double)magnitude);
                    if (half) /* the f32 result rounded once more to the half format */
                        allowed += ulp_in(type, want);
                    if (fabs(got - want) > allowed)
                        fail_msg("masked backward row %zu element %zu: %.17g vs %.17g", q, k, got, want);
                }
                reference_free(&r);
            }
        }
        free(values);
        free(dy_values);
        free(x);
        free(logy);
        free(dy);
        free(dx);
    }
}

/* ------------------------------------------------------------------------ */
/* The contract table in every data type, through the general pipeline      */
/* ------------------------------------------------------------------------ */

typedef struct contract_row {
    const char *name;
    double scale;
    double x[7];
    double softmax[7]; /* expected; the log-softmax is its log */
} contract_row;

static void test_contract_in_every_dtype(void **state)
{
    (void)state;
    const double I = INFINITY, N = NAN, S6 = 1.0 / 6.0;
    const contract_row rows[] = {
        {"fully masked", 1.0, {-I, -I, -I, -I, -I, -I, -I}, {0, 0, 0, 0, 0, 0, 0}},
        {"NaN element", 1.0, {1, N, 2, 3, 4, 5, 6}, {N, N, N, N, N, N, N}},
        {"two +inf share", 1.0, {1, I, 3, I, -I, 0, 2}, {0, 0.5, 0, 0.5, 0, 0, 0}},
        {"scale 0: uniform over non -inf", 0.0, {1, -I, 3, 100, -5, 0, 2}, {S6, 0, S6, S6, S6, S6, S6}},
        {"scale +inf: arg max ties share", I, {1, 5, 5, 2, -I, 0, 3}, {0, 0.5, 0.5, 0, 0, 0, 0}},
        {"scale -inf: arg min", -I, {1, 5, -3, 2, I, 0, 3}, {0, 0, 1, 0, 0, 0, 0}},
        {"softmin of +inf is 0", -1.0, {0, I, 0, 0, 0, 0, 0}, {S6, 0, S6, S6, S6, S6, S6}},
        {"softmin, all +inf: fully masked", -1.0, {I, I, I, I, I, I, I}, {0, 0, 0, 0, 0, 0, 0}},
    };
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    const int64_t src_strides[1] = {2}; /* strided: the general pipeline for every type */
    mpfr_t exact;
    mpfr_init2(exact, PREC);
    for (size_t t = 0; t < ARRAY_LEN(types); t++) {
        for (size_t r = 0; r < ARRAY_LEN(rows); r++) {
            double spread[14];
            for (int j = 0; j < 7; j++)
                spread[2 * j] = rows[r].x[j], spread[2 * j + 1] = 12345.0; /* never read */
            void *x = typed_alloc(types[t], 14), *y = typed_alloc(types[t], 7);
            typed_store(types[t], x, spread, 14);
            for (int log_output = 0; log_output < 2; log_output++) {
                softmax_desc desc;
                softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, types[t], 7);
                desc.scale = rows[r].scale;
                desc.src_strides = src_strides;
                if (softmax_execute(&desc, x, NULL, y) != 0)
                    fail_msg("%s: %s", rows[r].name, softmax_last_error());
                for (size_t j = 0; j < 7; j++) {
                    const double p = rows[r].softmax[j];
                    double want = log_output ? log(p) : p;
                    if (isfinite(want) && want != 0) { /* rounded to the type, exactly as MPFR rounds */
                        mpfr_set_d(exact, p, MPFR_RNDN);
                        if (p == S6)
                            mpfr_set_ui(exact, 1, MPFR_RNDN), mpfr_div_ui(exact, exact, 6, MPFR_RNDN);
                        if (log_output)
                            mpfr_log(exact, exact, MPFR_RNDN);
                        want = mpfr_round_to(types[t], exact);
                    }
                    const double got = decode(types[t], y, j);
                    const bool same =
                        isnan(want) ? isnan(got)
                                    : got == want || (isfinite(want) && fabs(got - want) <= 2 * ulp_in(types[t], want));
                    if (!same)
                        fail_msg("%s, %s, dtype %d: element %zu is %.9g, the contract says %.9g", rows[r].name,
                                 log_output ? "log_softmax" : "softmax", (int)types[t], j, got, want);
                }
            }
            free(x);
            free(y);
        }
    }
    mpfr_clear(exact);
}

/* ------------------------------------------------------------------------ */
/* In place, and errors leave the output untouched                          */
/* ------------------------------------------------------------------------ */

/* Exclusion masks (`where` bytes, 0 / -inf masks in f32 and bf16, with and
 * without causal), softmax and log-softmax, positive and negative scales,
 * out of place and in place (src == dst): both must be the bits of the
 * plain kernels on the rows with the excluded logits set to -inf (+inf for
 * a negative scale), which the accuracy tests check against MPFR. Rows of
 * 100 take the gathered path, rows of 3000 the kernels' own exclusions.
 * Excluded elements hold NaN here and there (ignored); one row has a kept
 * NaN (a NaN row) and one is fully excluded (zeros). */
static void test_exclusion_masks_in_place(void **state)
{
    (void)state;
    const size_t lengths[] = {100, 3000};
    const double scales[] = {1.0, -0.7};
    const size_t rows = 37, nan_row = 5, empty_row = 9;
    /* Causal: row r keeps j <= r + offset (a prefix past the kernels'
     * small-row regime for the long rows). */
    test_rng rng;
    rng_seed(&rng, 21);
    for (size_t l = 0; l < ARRAY_LEN(lengths); l++) {
        const size_t n = lengths[l], total = rows * n;
        float *x = malloc(total * sizeof *x), *masked = malloc(total * sizeof *masked);
        float *want = malloc(total * sizeof *want), *out = malloc(total * sizeof *out);
        float *in_place = malloc(total * sizeof *in_place), *mask = malloc(total * sizeof *mask);
        uint16_t *mask_bf16 = malloc(total * sizeof *mask_bf16), *mask_f16 = malloc(total * sizeof *mask_f16);
        uint8_t *keep = malloc(total);
        for (size_t i = 0; i < total; i++) {
            keep[i] = rng_uniform(&rng) < 0.7 && i / n != empty_row;
            x[i] = keep[i] || rng_uniform(&rng) < 0.9 ? (float)(rng_normal(&rng) * 5.0) : NAN;
            mask[i] = keep[i] ? 0.0f : -INFINITY;
        }
        x[nan_row * n + 7] = NAN, keep[nan_row * n + 7] = 1, mask[nan_row * n + 7] = 0;
        assert_int_equal(softmax_convert(mask_bf16, SOFTMAX_DTYPE_BF16, mask, SOFTMAX_DTYPE_F32, total), 0);
        assert_int_equal(softmax_convert(mask_f16, SOFTMAX_DTYPE_F16, mask, SOFTMAX_DTYPE_F32, total), 0);
        /* where, f32 mask, bf16 mask, where + causal, f16 mask, where + f32 mask */
        for (int kind = 0; kind < 6; kind++)
            for (size_t sc = 0; sc < ARRAY_LEN(scales); sc++)
                for (int log_output = 0; log_output < 2; log_output++) {
                    const bool causal = kind == 3;
                    const size_t offset = n > 1000 ? 1500 : 40;
                    const float excluded = scales[sc] < 0 ? INFINITY : -INFINITY;
                    for (size_t r = 0; r < rows; r++)
                        for (size_t j = 0; j < n; j++) {
                            const bool kept = keep[r * n + j] && (!causal || j <= r + offset);
                            masked[r * n + j] = kept ? x[r * n + j] : excluded;
                        }
                    softmax_desc desc;
                    softmax_desc_init(&desc, log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX,
                                      SOFTMAX_DTYPE_F32, n);
                    desc.ndim = 2;
                    desc.shape[0] = rows, desc.shape[1] = n;
                    desc.scale = scales[sc];
                    assert_int_equal(softmax_execute(&desc, masked, NULL, want), 0);
                    if (kind == 0 || kind == 3 || kind == 5)
                        desc.where = keep;
                    if (kind == 1 || kind == 5) {
                        desc.mask = mask;
                        desc.mask_dtype = SOFTMAX_DTYPE_F32;
                    } else if (kind == 2 || kind == 4) {
                        desc.mask = kind == 2 ? mask_bf16 : mask_f16;
                        desc.mask_dtype = kind == 2 ? SOFTMAX_DTYPE_BF16 : SOFTMAX_DTYPE_F16;
                    }
                    desc.causal = causal;
                    desc.causal_offset = (int64_t)offset;
                    memcpy(in_place, x, total * sizeof *x);
                    assert_int_equal(softmax_execute(&desc, x, NULL, out), 0);
                    assert_int_equal(softmax_execute(&desc, in_place, NULL, in_place), 0);
                    for (size_t i = 0; i < total; i++) {
                        const bool same = isnan(want[i]) ? isnan(out[i]) && isnan(in_place[i])
                                                         : memcmp(&out[i], &want[i], sizeof *out) == 0 &&
                                                               memcmp(&in_place[i], &want[i], sizeof *out) == 0;
                        if (!same)
                            fail_msg("exclusion mask kind %d, n = %zu, scale %g, %s: row %zu element %zu is %.9g "
                                     "(in place %.9g), the masked rows give %.9g",
                                     kind, n, scales[sc], log_output ? "log-softmax" : "softmax", i / n, i % n, out[i],
                                     in_place[i], want[i]);
                    }
                    for (size_t j = 0; j < n; j++)
                        assert_true(isnan(out[nan_row * n + j]));
                    for (size_t j = 0; j < n; j++)
                        assert_true(out[empty_row * n + j] == (log_output ? -INFINITY : 0.0f));
                }
        free(x), free(masked), free(want), free(out), free(in_place), free(mask), free(mask_bf16), free(mask_f16),
            free(keep);
    }
}

/* Short rows (every length from 1 past the grouped small-row kernels'
 * longest, so every tail length of the tiny and small kernels) with
 * exclusion masks, which the kernels apply as they read x in groups of
 * rows: each row must be the bits of the plain kernels on that row with
 * the excluded logits at -inf (+inf for a negative scale), whatever its
 * position in a group; 37 rows fill two groups and part of a third. With
 * a causal mask alone (rows grouped by prefix length) each row must be the
 * plain kernels on its kept prefix alone, then 0 (log-softmax -inf). Rows of one n keep prefixes from none
 * to all; one row has a kept NaN, one is fully excluded. */
static void test_short_masked_rows_equal_gathered(void **state)
{
    (void)state;
    const double scales[] = {1.0, -0.7, 0.125};
    const size_t rows = 37, nan_row = 5, empty_row = 9;
    test_rng rng;
    rng_seed(&rng, 23);
    for (size_t n = 1; n <= 130; n++) {
        const size_t total = rows * n;
        float *x = malloc(total * sizeof *x), *masked = malloc(total * sizeof *masked);
        float *want = malloc(total * sizeof *want), *out = malloc(total * sizeof *out);
        float *in_place = malloc(total * sizeof *in_place), *mask = malloc(total * sizeof *mask);
        uint16_t *mask_bf16 = malloc(total * sizeof *mask_bf16), *mask_f16 = malloc(total * sizeof *mask_f16);
        uint8_t *keep = malloc(total);
        for (size_t i = 0; i < total; i++) {
            keep[i] = rng_uniform(&rng) < 0.7 && i / n != empty_row;
            x[i] = keep[i] || rng_uniform(&rng) < 0.9 ? (float)(rng_normal(&rng) * 5.0) : NAN;
            mask[i] = keep[i] ? 0.0f : -INFINITY;
        }
        x[nan_row * n + n / 2] = NAN, keep[nan_row * n + n / 2] = 1, mask[nan_row * n + n / 2] = 0;
        assert_int_equal(softmax_convert(mask_bf16, SOFTMAX_DTYPE_BF16, mask, SOFTMAX_DTYPE_F32, total), 0);
        assert_int_equal(softmax_convert(mask_f16, SOFTMAX_DTYPE_F16, mask, SOFTMAX_DTYPE_F32, total), 0);
        /* Row r keeps j <= r + offset: none in the first rows, all in the last. */
        const int64_t offset = (int64_t)n - (int64_t)rows + 3;
        /* where, f32 mask, bf16 mask, where + causal, f16 mask, where + f32 mask, causal alone */
        for (int kind = 0; kind < 7; kind++)
            for (size_t sc = 0; sc < ARRAY_LEN(scales); sc++)
                for (int log_output = 0; log_output < 2; log_output++) {
                    /* A causal prefix is computed as that row alone for
                     * softmax rows of the small-row kernels (n <= 64 on
                     * every path) and for log-softmax prefixes of the tiny
                     * ones (n <= 8); other prefixes take the in-cache
                     * blocks, whose bits differ. */
                    if (kind == 6 && n > (log_output ? 8u : 64u))
                        continue;
                    const bool causal = kind == 3 || kind == 6;
                    const softmax_op op = log_output ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX;
                    const float excluded = scales[sc] < 0 ? INFINITY : -INFINITY;
                    softmax_desc desc;
                    softmax_desc_init(&desc, op, SOFTMAX_DTYPE_F32, n);
                    desc.ndim = 2;
                    desc.shape[0] = rows, desc.shape[1] = n;
                    desc.scale = scales[sc];
                    if (kind == 6) {
                        for (size_t r = 0; r < rows; r++) {
                            const int64_t last = (int64_t)r + offset;
                            const size_t kept = last < 0 ? 0 : (size_t)last + 1 > n ? n : (size_t)last + 1;
                            softmax_desc prefix;
                            softmax_desc_init(&prefix, op, SOFTMAX_DTYPE_F32, kept);
                            prefix.scale = scales[sc];
                            if (kept > 0)
                                assert_int_equal(softmax_execute(&prefix, x + r * n, NULL, want + r * n), 0);
                            for (size_t j = kept; j < n; j++)
                                want[r * n + j] = log_output ? -INFINITY : 0.0f;
                        }
                    } else {
                        for (size_t r = 0; r < rows; r++)
                            for (size_t j = 0; j < n; j++) {
                                const bool kept = keep[r * n + j] && (!causal || (int64_t)j <= (int64_t)r + offset);
                                masked[r * n + j] = kept ? x[r * n + j] : excluded;
                            }
                        assert_int_equal(softmax_execute(&desc, masked, NULL, want), 0);
                    }
                    if (kind == 0 || kind == 3 || kind == 5)
                        desc.where = keep;
                    if (kind == 1 || kind == 5) {
                        desc.mask = mask;
                        desc.mask_dtype = SOFTMAX_DTYPE_F32;
                    } else if (kind == 2 || kind == 4) {
                        desc.mask = kind == 2 ? mask_bf16 : mask_f16;
                        desc.mask_dtype = kind == 2 ? SOFTMAX_DTYPE_BF16 : SOFTMAX_DTYPE_F16;
                    }
                    desc.causal = causal;
                    desc.causal_offset = offset;
                    memcpy(in_place, x, total * sizeof *x);
                    assert_int_equal(softmax_execute(&desc, x, NULL, out), 0);
                    assert_int_equal(softmax_execute(&desc, in_place, NULL, in_place), 0);
                    for (size_t i = 0; i < total; i++) {
                        const bool same = isnan(want[i]) ? isnan(out[i]) && isnan(in_place[i])
                                                         : memcmp(&out[i], &want[i], sizeof *out) == 0 &&
                                                               memcmp(&in_place[i], &want[i], sizeof *out) == 0;
                        if (!same)
                            fail_msg("short masked rows, kind %d, n = %zu, scale %g, %s: row %zu element %zu is "
                                     "%.9g (in place %.9g), the gathered rows give %.9g",
                                     kind, n, scales[sc], log_output ? "log-softmax" : "softmax", i / n, i % n, out[i],
                                     in_place[i], want[i]);
                    }
                    if (kind != 6 && (!causal || (int64_t)nan_row + offset >= (int64_t)(n / 2)))
                        for (size_t j = 0; j < n; j++)
                            assert_true(isnan(out[nan_row * n + j]));
                    if (kind != 6)
                        for (size_t j = 0; j < n; j++)
                            assert_true(out[empty_row * n + j] == (log_output ? -INFINITY : 0.0f));
                }
        free(x), free(masked), free(want), free(out), free(in_place), free(mask), free(mask_bf16), free(mask_f16),
            free(keep);
    }
}

static void test_in_place_strided_equals_out_of_place(void **state)
{
    (void)state;
    const size_t rows = 33, cols = 70, pitch = 80;
    const int64_t strides[2] = {1, (int64_t)pitch}; /* a transposed [cols x rows] view ... */
    float *a = calloc(pitch * cols, sizeof *a), *b = calloc(pitch * cols, sizeof *b), *c = calloc(pitch * cols, 4);
    test_rng rng;
    rng_seed(&rng, 8);
    for (size_t i = 0; i < pitch * cols; i++)
        a[i] = (float)rng_normal(&rng);
    memcpy(b, a, pitch * cols * sizeof *a);
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, rows);
    desc.ndim = 2;
    desc.shape[0] = rows, desc.shape[1] = cols; /* ... of shape [rows, cols] */
    desc.src_strides = strides;
    desc.dst_strides = strides;
    assert_int_equal(softmax_execute(&desc, a, NULL, c), 0);
    assert_int_equal(softmax_execute(&desc, b, NULL, b), 0);
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < cols; k++)
            assert_memory_equal(&b[r + k * pitch], &c[r + k * pitch], sizeof(float));
    /* Against a long double softmax of each line of the view (the
     * transposed gather path: adjacent lines, strided along the axis). */
    for (size_t r = 0; r < rows; r++) {
        long double top = -INFINITY, sum = 0;
        for (size_t k = 0; k < cols; k++)
            top = fmaxl(top, a[r + k * pitch]);
        for (size_t k = 0; k < cols; k++)
            sum += expl((long double)a[r + k * pitch] - top);
        for (size_t k = 0; k < cols; k++) {
            const double want = (double)(expl((long double)a[r + k * pitch] - top) / sum);
            if (fabs(c[r + k * pitch] - want) > 3 * ulp_in(SOFTMAX_DTYPE_F32, want))
                fail_msg("transposed view line %zu element %zu: %.9g vs %.9g", r, k, c[r + k * pitch], want);
        }
    }
    /* The padding between the view's elements is untouched. */
    for (size_t k = 0; k < cols; k++)
        for (size_t r = rows; r < pitch; r++)
            assert_memory_equal(&b[r + k * pitch], &a[r + k * pitch], sizeof(float));
    free(a);
    free(b);
    free(c);
}

#define EXPECT_UNTOUCHED(expected, call)                                                                               \
    do {                                                                                                               \
        fill_sentinel(out, sizeof out);                                                                                \
        int status_ = (call);                                                                                          \
        if (status_ != (expected))                                                                                     \
            fail_msg("%s returned %d, expected %d (%s)", #call, status_, (expected), softmax_last_error());            \
        if (softmax_last_error()[0] == '\0')                                                                           \
            fail_msg("%s: no message", #call);                                                                         \
        if (!is_sentinel(out, sizeof out))                                                                             \
            fail_msg("%s wrote to the output on error", #call);                                                        \
    } while (0)

static void test_general_errors(void **state)
{
    (void)state;
    float in[64] = {0};
    float out[64];
    uint8_t keep[64] = {1};
    softmax_desc desc;
    const int64_t bad_dst[2] = {0, 1};         /* every row at the same place */
    const int64_t crossing_dst[2] = {4, 3};    /* (0,3) and (1,... ) collide: 4 * 3 == 3 * 4 */
    const int64_t overlapping_src[2] = {8, 1}; /* rows of 8 elements */

#define RESET()                                                                                                        \
    do {                                                                                                               \
        softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 8);                                            \
        desc.ndim = 2;                                                                                                 \
        desc.shape[0] = 4, desc.shape[1] = 8;                                                                          \
    } while (0)

    RESET();
    desc.dst_strides = bad_dst;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_STRIDE, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.dst_strides = crossing_dst;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_STRIDE, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.src_strides = overlapping_src;
    EXPECT_UNTOUCHED(SOFTMAX_E_OVERLAP, softmax_execute(&desc, out + 3, NULL, out));
    RESET();
    desc.dst_dtype = (softmax_dtype)17;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_DTYPE, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.mask = in;
    desc.mask_dtype = (softmax_dtype)17;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_MASK, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.mask = out; /* the mask may not be overwritten while it is read */
    EXPECT_UNTOUCHED(SOFTMAX_E_OVERLAP, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.mask_strides = overlapping_src;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_MASK, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.where_strides = overlapping_src;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_MASK, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.causal = 1;
    desc.axis = 0;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_MASK, softmax_execute(&desc, in, NULL, out));
    const double bad_bias[] = {NAN, -1.0, INFINITY};
    for (size_t i = 0; i < ARRAY_LEN(bad_bias); i++) {
        RESET();
        desc.max_bias = bad_bias[i];
        EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_MASK, softmax_execute(&desc, in, NULL, out));
    }
    RESET();
    desc.max_bias = 8;
    desc.head_axis = -1; /* the softmax axis itself */
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_MASK, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.max_bias = 8;
    desc.head_axis = 5;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_MASK, softmax_execute(&desc, in, NULL, out));
    RESET();
    desc.op = SOFTMAX_OP_SOFTMAX_BACKWARD;
    desc.grad_dtype = (softmax_dtype)-3;
    EXPECT_UNTOUCHED(SOFTMAX_E_INVALID_DTYPE, softmax_execute(&desc, in, in, out));
    RESET();
    desc.where = keep;
    desc.where_strides = NULL;
    desc.src_strides = overlapping_src;
    const int64_t huge[2] = {INT64_MAX / 2, 1};
    desc.src_strides = huge;
    EXPECT_UNTOUCHED(SOFTMAX_E_SIZE_OVERFLOW, softmax_execute(&desc, in, NULL, out));
#undef RESET
}

int main(void)
{
    int prologue = isa_prologue();
    if (prologue != 0)
        return prologue;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversions_round_like_mpfr),
        cmocka_unit_test(test_bulk_conversions_match_single),
        cmocka_unit_test(test_convert_errors),
        cmocka_unit_test(test_half_and_mixed_types),
        cmocka_unit_test(test_long_half_rows),
        cmocka_unit_test(test_half_outputs_are_rounded_f32_results),
        cmocka_unit_test(test_strided_views),
        cmocka_unit_test(test_transposed_views),
        cmocka_unit_test(test_exclusion_masks_in_place),
        cmocka_unit_test(test_short_masked_rows_equal_gathered),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_alibi_slopes_exact),
        cmocka_unit_test(test_one_added_value_in_a_large_mask),
        cmocka_unit_test(test_materialized_mask_same_bits_as_broadcast),
        cmocka_unit_test(test_broadcast_bias_reduced_once),
        cmocka_unit_test(test_bias_reduced_as_read),
        cmocka_unit_test(test_added_biases_on_short_rows),
        cmocka_unit_test(test_added_bias_special_logits),
        cmocka_unit_test(test_added_bias_around_the_largest_logit),
        cmocka_unit_test(test_added_minus_inf_excludes_at_every_scale),
        cmocka_unit_test(test_added_bias_with_a_huge_scale),
        cmocka_unit_test(test_added_bias_near_the_float_range_end),
        cmocka_unit_test(test_masked_backward),
        cmocka_unit_test(test_contract_in_every_dtype),
        cmocka_unit_test(test_in_place_strided_equals_out_of_place),
        cmocka_unit_test(test_general_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
