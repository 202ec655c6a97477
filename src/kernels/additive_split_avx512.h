/*
 * additive_split_avx512.h -- the additive-mask split of the general path on
 * AVX-512 (split_logits and apply_low_parts of the f32 table). Included by
 * the f32 AVX-512 translation unit only; the other tables hold the
 * portable loops of src/ref/portable_slots.c.
 */
#ifndef SOFTMAX_ADDITIVE_SPLIT_AVX512_H
#define SOFTMAX_ADDITIVE_SPLIT_AVX512_H

#include <math.h>
#include <stdbool.h>

#include "internal.h"

/* The additive-mask split of the general path (src/ref/portable_slots.c
 * holds the portable definitions), eight doubles at a
 * time. */
static bool split_logits_simd(const float *x, const float *mask, const uint8_t *keep, size_t kept, size_t n,
                              double scale, double slope, double *d, float *hi)
{
    const __m512d vscale = _mm512_set1_pd(scale), vslope = _mm512_set1_pd(slope);
    const __m512d minus_inf = _mm512_set1_pd(-INFINITY), plus_inf = _mm512_set1_pd(INFINITY);
    __m512d index = _mm512_setr_pd(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512d eight = _mm512_set1_pd(8);
    __m512d top = minus_inf;
    __mmask8 special = 0;
    for (size_t j = 0; j < kept; j += 8) {
        const size_t count = kept - j < 8 ? kept - j : 8;
        const __mmask8 lanes = (__mmask8)((1u << count) - 1u);
        /* The logits come from memory and nothing else here hides the
         * latency: ask for them 2 KiB ahead (the next line, usually). */
        _mm_prefetch((const char *)(x + j) + 2048, _MM_HINT_T0);
        const __m512d xv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(lanes, x + j));
        __m512d bias = _mm512_mul_pd(vslope, index);
        __mmask8 excluded = (__mmask8)~lanes;
        if (mask != NULL) {
            const __m512d mv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(lanes, mask + j));
            excluded |= _mm512_cmp_pd_mask(mv, minus_inf, _CMP_EQ_OQ);
            bias = _mm512_add_pd(mv, bias);
        }
        if (keep != NULL) {
            const __m128i bytes = _mm_maskz_loadu_epi8(lanes, keep + j);
            excluded |= (__mmask8)_mm_cmpeq_epi8_mask(bytes, _mm_setzero_si128());
        }
        __m512d z = _mm512_fmadd_pd(vscale, xv, bias);
        z = _mm512_mask_blend_pd(excluded, z, minus_inf);
        special |= _mm512_cmp_pd_mask(z, z, _CMP_UNORD_Q) | _mm512_cmp_pd_mask(z, plus_inf, _CMP_EQ_OQ);
        top = _mm512_max_pd(top, z);
        _mm512_mask_storeu_pd(d + j, lanes, z);
        index = _mm512_add_pd(index, eight);
    }
    for (size_t j = kept; j < n; j++)
        d[j] = -INFINITY;
    const double maximum = _mm512_reduce_max_pd(top);
    if (special != 0 || maximum == -INFINITY || !(fabs(maximum) <= SPLIT_MAX_TOP))
        return false;
    const __m512d vtop = _mm512_set1_pd(maximum);
    for (size_t j = 0; j < n; j += 8) {
        const size_t count = n - j < 8 ? n - j : 8;
        const __mmask8 lanes = (__mmask8)((1u << count) - 1u);
        const __m512d difference = _mm512_sub_pd(_mm512_maskz_loadu_pd(lanes, d + j), vtop);
        _mm512_mask_storeu_pd(d + j, lanes, difference);
        _mm256_mask_storeu_ps(hi + j, lanes, _mm512_cvtpd_ps(difference));
    }
    return true;
}

static void apply_low_parts_simd(softmax_op op, const float *w, double *line, size_t n)
{
    const __m512d minus_inf = _mm512_set1_pd(-INFINITY);
    __m512d sum = _mm512_setzero_pd();
    for (size_t j = 0; j < n; j += 8) {
        const size_t count = n - j < 8 ? n - j : 8;
        const __mmask8 lanes = (__mmask8)((1u << count) - 1u);
        const __m512d d = _mm512_maskz_loadu_pd(lanes, line + j);
        /* hi = -inf (d masked, or below the float range, where e^d is 0):
         * no low part. */
        const __m512d high = _mm512_cvtps_pd(_mm512_cvtpd_ps(d));
        __m512d low = _mm512_sub_pd(d, high);
        low = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(high, minus_inf, _CMP_EQ_OQ), low, _mm512_setzero_pd());
        _mm512_mask_storeu_pd(line + j, lanes, low);
        if (op != SOFTMAX_OP_LOG_SOFTMAX)
            sum = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(lanes, w + j)), low, sum);
    }
    if (op == SOFTMAX_OP_LOG_SOFTMAX) {
        double correction = 0;
        for (size_t j = 0; j < n; j++)
            correction += exp((double)w[j]) * line[j];
        const double log_correction = log1p(correction);
        for (size_t j = 0; j < n; j++) {
            line[j] = ((double)w[j] + line[j]) - log_correction;
            if (line[j] > 0) /* log-softmax is never above 0 (NaN stays) */
                line[j] = 0;
        }
        return;
    }
    const __m512d normalizer = _mm512_set1_pd(1.0 / (1.0 + _mm512_reduce_add_pd(sum)));
    const __m512d one = _mm512_set1_pd(1.0);
    for (size_t j = 0; j < n; j += 8) {
        const size_t count = n - j < 8 ? n - j : 8;
        const __mmask8 lanes = (__mmask8)((1u << count) - 1u);
        const __m512d wv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(lanes, w + j));
        const __m512d low = _mm512_maskz_loadu_pd(lanes, line + j);
        _mm512_mask_storeu_pd(line + j, lanes, _mm512_mul_pd(_mm512_mul_pd(wv, _mm512_add_pd(one, low)), normalizer));
    }
}
#define SPLIT_LOGITS split_logits_simd
#define APPLY_LOW_PARTS apply_low_parts_simd

#endif
