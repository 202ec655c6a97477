/*
 * half_avx512.h -- f32 <-> bf16 / f16 on AVX-512: the half-precision loads and
 * narrowing stores the f32 kernels read and write half rows with, and the
 * contiguous conversion loops of the table (widen_half, narrow_half).
 * Included by the f32 translation units of AVX-512 only.
 */
#ifndef SOFTMAX_HALF_AVX512_H
#define SOFTMAX_HALF_AVX512_H

#include <math.h>
#include <stdbool.h>

#include "internal.h"

/* Contiguous f32 <-> bf16 / f16, bit for bit the scalar definitions of
 * convert.c: f16 through the hardware conversions (exact, round to nearest
 * even, sub-normals kept: they run outside the kernels' flush-to-zero
 * region), bf16 with integer arithmetic (round to nearest even on the
 * dropped half, NaN kept quiet). */
#define HALF_STEP 16
static inline __m512 widen_16(const uint16_t *src, int bf16)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)src);
    if (bf16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}
/* The kernels' vocabulary name for it (the row kernels read half rows with it). */
static inline vf32 f32_load_half(const uint16_t *src, int bf16)
{
    return widen_16(src, bf16);
}
/* The bf16 of each f32 lane (given as its bits), rounded to nearest even
 * on the dropped half, in the low 16 bits of the 32-bit lane. A NaN lane
 * may come out as infinity or -0 (its payload rounded away, or carried into
 * the sign): narrow_16 puts a quiet NaN there. */
static inline __m512i bf16_round_16(__m512i bits)
{
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    return _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb), 16);
}
static inline __m256i narrow_16(__m512 v, int bf16)
{
    if (!bf16)
        return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512i bits = _mm512_castps_si512(v);
    __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, bf16_round_16(bits), quiet));
}
/* narrow_16 of a vector that holds no NaN (the kernels' outputs, whose
 * NaN rows are filled apart): the bf16 rounding without its NaN lanes. */
static inline __m256i narrow_16_number(__m512 v, int bf16)
{
    if (!bf16)
        return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_cvtepi32_epi16(bf16_round_16(_mm512_castps_si512(v)));
}
/* The kernels' vocabulary names for the narrowing stores (the row kernels
 * writes half rows): v holds no NaN. */
static inline void f32_store_half(uint16_t *dst, vf32 v, int bf16)
{
    _mm256_storeu_si256((__m256i *)(void *)dst, narrow_16_number(v, bf16));
}
/* The same with a streaming store: dst aligned to 32 bytes. */
static inline void f32_stream_half(uint16_t *dst, vf32 v, int bf16)
{
    _mm256_stream_si256((__m256i *)(void *)dst, narrow_16_number(v, bf16));
}
static void widen_half_simd(float *dst, const uint16_t *src, size_t n, int bf16)
{
    size_t i = 0;
    for (; i + HALF_STEP <= n; i += HALF_STEP)
        _mm512_storeu_ps(dst + i, widen_16(src + i, bf16));
    for (; i < n; i++)
        dst[i] = bf16 ? softmax_bf16_to_float(src[i]) : softmax_f16_to_float(src[i]);
}
static void narrow_half_simd(uint16_t *dst, const float *src, size_t n, int bf16)
{
    size_t i = 0;
    for (; i + HALF_STEP <= n; i += HALF_STEP)
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), narrow_16(_mm512_loadu_ps(src + i), bf16));
    for (; i < n; i++)
        dst[i] = bf16 ? softmax_float_to_bf16(src[i]) : softmax_float_to_f16(src[i]);
}
#define HALF_WIDEN widen_half_simd
#define HALF_NARROW narrow_half_simd
#define HALF_ROWS 1

#endif
