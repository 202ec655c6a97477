/*
 * half_avx2.h -- f32 <-> bf16 / f16 on AVX2 + F16C: the half-precision loads and
 * narrowing stores the f32 kernels read and write half rows with, and the
 * contiguous conversion loops of the table (widen_half, narrow_half).
 * Included by the f32 translation units of AVX2 + F16C only.
 */
#ifndef SOFTMAX_HALF_AVX2_H
#define SOFTMAX_HALF_AVX2_H

#include <math.h>
#include <stdbool.h>

#include "internal.h"

/* Contiguous f32 <-> bf16 / f16, bit for bit the scalar definitions of
 * convert.c: f16 through the hardware conversions (exact, round to nearest
 * even, sub-normals kept: they run outside the kernels' flush-to-zero
 * region), bf16 with integer arithmetic (round to nearest even on the
 * dropped half, NaN kept quiet). */
#define HALF_STEP 8
static inline __m256 widen_8(const uint16_t *src, int bf16)
{
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)src);
    if (bf16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}
static inline vf32 f32_load_half(const uint16_t *src, int bf16)
{
    return widen_8(src, bf16);
}
/* The bf16 of each f32 lane (given as its bits), rounded to nearest even
 * on the dropped half, in the low 16 bits of the 32-bit lane. A NaN lane
 * may come out as infinity or -0 (its payload rounded away, or carried into
 * the sign): narrow_8 puts a quiet NaN there. */
static inline __m256i bf16_round_8(__m256i bits)
{
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb), 16);
}
/* Packs eight 32-bit values (< 2^16) to 16 bits: packus works within
 * 128-bit lanes, the permute gathers the two lanes' results. */
static inline __m128i pack_halves_8(__m256i halves)
{
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08));
}
static inline __m128i narrow_8(__m256 v, int bf16)
{
    if (!bf16)
        return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i bits = _mm256_castps_si256(v);
    /* NaN: magnitude above inf, compared as signed integers (both are
     * below 2^31). */
    __m256i nan =
        _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
    return pack_halves_8(_mm256_blendv_epi8(bf16_round_8(bits), quiet, nan));
}
/* narrow_8 of a vector that holds no NaN (see the AVX-512 one). */
static inline __m128i narrow_8_number(__m256 v, int bf16)
{
    if (!bf16)
        return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return pack_halves_8(bf16_round_8(_mm256_castps_si256(v)));
}
static inline void f32_store_half(uint16_t *dst, vf32 v, int bf16)
{
    _mm_storeu_si128((__m128i *)(void *)dst, narrow_8_number(v, bf16));
}
static inline void f32_stream_half(uint16_t *dst, vf32 v, int bf16)
{
    _mm_stream_si128((__m128i *)(void *)dst, narrow_8_number(v, bf16));
}
static void widen_half_simd(float *dst, const uint16_t *src, size_t n, int bf16)
{
    size_t i = 0;
    for (; i + HALF_STEP <= n; i += HALF_STEP)
        _mm256_storeu_ps(dst + i, widen_8(src + i, bf16));
    for (; i < n; i++)
        dst[i] = bf16 ? softmax_bf16_to_float(src[i]) : softmax_f16_to_float(src[i]);
}
static void narrow_half_simd(uint16_t *dst, const float *src, size_t n, int bf16)
{
    size_t i = 0;
    for (; i + HALF_STEP <= n; i += HALF_STEP)
        _mm_storeu_si128((__m128i *)(void *)(dst + i), narrow_8(_mm256_loadu_ps(src + i), bf16));
    for (; i < n; i++)
        dst[i] = bf16 ? softmax_float_to_bf16(src[i]) : softmax_float_to_f16(src[i]);
}
#define HALF_WIDEN widen_half_simd
#define HALF_NARROW narrow_half_simd
#define HALF_ROWS 1

#endif
