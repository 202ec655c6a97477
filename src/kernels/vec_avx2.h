/*
 * vec_avx2.h -- the kernels' vector vocabulary on AVX2 + FMA.
 *
 * The same primitives as vec_avx512.h on 256-bit vectors (compound.h builds
 * the compound arithmetic on them). AVX2 has neither mask
 * registers nor scalef: tails use maskload/maskstore, and p * 2^k is two
 * multiplications by powers of two built in the exponent field.
 */
#ifndef SOFTMAX_VEC_AVX2_H
#define SOFTMAX_VEC_AVX2_H

#if !defined(__AVX2__) || !defined(__FMA__)
#error "vec_avx2.h needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define SOFTMAX_ISA_SUFFIX avx2

/* Kernels run with flush-to-zero: an exp or a product that underflows
 * otherwise takes a microcode assist of ~100 cycles on some cores, and every
 * masked-out tail lane and every negligible element underflows. Only
 * results below the normal range change (to 0), which the accuracy contract
 * leaves free. The caller's MXCSR is restored on the way out. */
static inline unsigned int vec_flush_to_zero_begin(void)
{
    unsigned int saved = _mm_getcsr();
    if (!(saved & 0x8000u))
        _mm_setcsr(saved | 0x8000u);
    return saved;
}
static inline void vec_flush_to_zero_end(unsigned int saved)
{
    if (!(saved & 0x8000u))
        _mm_setcsr(saved);
}

/* Asks for the cache line holding p; never faults, even past an array. */
static inline void vec_prefetch(const void *p)
{
    /* An asm statement: gcc 12 silently dropped both _mm_prefetch and
     * __builtin_prefetch from some always_inline bodies (and with them the
     * overlap of the next row's load with this row's exps). */
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
}

/* vec_prefetch into the L2 cache, not L1: for data asked for well before
 * its use, which the L1 would lose to the stores and loads in between. */
static inline void vec_prefetch_l2(const void *p)
{
    __asm__ volatile("prefetcht1 %0" : : "m"(*(const char *)p));
}

/* ---------------------------------------------------------------- f32 -- */

typedef __m256 vf32;
#define F32_LANES 8
typedef __m256d vf64;
#define F64_LANES 4

static inline __m256i f32_lane_mask(size_t count)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf32 f32_set1(float value)
{
    return _mm256_set1_ps(value);
}
static inline vf32 f32_load(const float *p)
{
    return _mm256_loadu_ps(p);
}
static inline void f32_store(float *p, vf32 v)
{
    _mm256_storeu_ps(p, v);
}
static inline vf32 f32_load_tail(const float *p, size_t count, float fill)
{
    __m256i mask = f32_lane_mask(count);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, mask), _mm256_castsi256_ps(mask));
}
static inline void f32_store_tail(float *p, vf32 v, size_t count)
{
    _mm256_maskstore_ps(p, f32_lane_mask(count), v);
}
static inline void f32_stream(float *p, vf32 v)
{
    _mm256_stream_ps(p, v);
}
static inline void f32_stream_fence(void)
{
    _mm_sfence();
}
static inline vf32 f32_keep_nan(vf32 flag, vf32 x)
{
    return _mm256_blendv_ps(flag, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
static inline int f32_any_nan(vf32 v)
{
    return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0;
}
static inline vf32 f32_add(vf32 a, vf32 b)
{
    return _mm256_add_ps(a, b);
}
static inline vf32 f32_sub(vf32 a, vf32 b)
{
    return _mm256_sub_ps(a, b);
}
static inline vf32 f32_mul(vf32 a, vf32 b)
{
    return _mm256_mul_ps(a, b);
}
static inline vf32 f32_fmadd(vf32 a, vf32 b, vf32 c)
{
    return _mm256_fmadd_ps(a, b, c);
}
/* Return b when either operand is NaN, like the AVX-512 versions. */
static inline vf32 f32_max(vf32 a, vf32 b)
{
    return _mm256_max_ps(a, b);
}
static inline vf32 f32_min(vf32 a, vf32 b)
{
    return _mm256_min_ps(a, b);
}
static inline vf32 f32_neg(vf32 a)
{
    return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f));
}
static inline void f32_wrap_below_zero(vf32 *f, vf32 *k)
{
    vf32 one_where_below = _mm256_and_ps(_mm256_cmp_ps(*f, _mm256_setzero_ps(), _CMP_LT_OQ), _mm256_set1_ps(1.0f));
    *f = _mm256_add_ps(*f, one_where_below);
    *k = _mm256_sub_ps(*k, one_where_below);
}
static inline vf32 f32_floor(vf32 a)
{
    return _mm256_floor_ps(a);
}
/* To the nearest integer, ties to even (the fast exponential's cell). */
static inline vf32 f32_round(vf32 a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* Bit l set where lane l is finite (not NaN or +-inf): v - v is 0 there. */
static inline unsigned f32_finite_lanes(vf32 v)
{
    return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(), _CMP_EQ_OQ));
}
/* Bit l set where a_l < b_l (false for NaN). */
static inline unsigned f32_lanes_below(vf32 a, vf32 b)
{
    return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ));
}
static inline vf32 f32_zero_below(vf32 value, vf32 x, vf32 threshold)
{
    return _mm256_and_ps(value, _mm256_cmp_ps(x, threshold, _CMP_GE_OQ));
}
/* 2^k for integral k in [-126, 127]. */
static inline vf32 f32_pow2(vf32 k)
{
    __m256i biased = _mm256_add_epi32(_mm256_cvttps_epi32(k), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
}
/* p * 2^k for integral k: p * 2^k1 is exact (normal), then one rounding. */
static inline vf32 f32_scale_pow2(vf32 p, vf32 k)
{
    k = _mm256_min_ps(_mm256_max_ps(k, _mm256_set1_ps(-200.0f)), _mm256_set1_ps(254.0f));
    vf32 k1 = _mm256_min_ps(_mm256_max_ps(k, _mm256_set1_ps(-100.0f)), _mm256_set1_ps(127.0f));
    vf32 k2 = _mm256_sub_ps(k, k1);
    return _mm256_mul_ps(_mm256_mul_ps(p, f32_pow2(k1)), f32_pow2(k2));
}
/* p * 2^k for integral k in [-126, 127] where the product is normal: exact,
 * so f32_scale_pow2's value, with one multiplication. */
static inline vf32 f32_scale_pow2_normal(vf32 p, vf32 k)
{
    return _mm256_mul_ps(p, f32_pow2(k));
}
static inline float f32_reduce_max(vf32 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline float f32_reduce_add(vf32 v)
{
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline float f32_reduce_min(vf32 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Lane 0 of the sum of the lanes in a fixed tree: lane j with lane j + 4,
 * then + 2, + 1. The tiny-row kernels rely on this order: their transposed
 * form adds whole column vectors in the same tree. */
static inline float f32_butterfly_sum(vf32 v)
{
    v = _mm256_add_ps(v, _mm256_permute2f128_ps(v, v, 0x01));
    v = _mm256_add_ps(v, _mm256_permute_ps(v, 0x4E));
    v = _mm256_add_ps(v, _mm256_permute_ps(v, 0xB1));
    return _mm256_cvtss_f32(v);
}
/* m[i] lane j <-> m[j] lane i, in 24 shuffles. */
static inline void f32_transpose(vf32 m[8])
{
    vf32 a[8], b[8];
    for (int k = 0; k < 4; k++) {
        a[2 * k] = _mm256_unpacklo_ps(m[2 * k], m[2 * k + 1]);
        a[2 * k + 1] = _mm256_unpackhi_ps(m[2 * k], m[2 * k + 1]);
    }
    for (int k = 0; k < 2; k++) {
        b[4 * k] = _mm256_shuffle_ps(a[4 * k], a[4 * k + 2], 0x44);
        b[4 * k + 1] = _mm256_shuffle_ps(a[4 * k], a[4 * k + 2], 0xEE);
        b[4 * k + 2] = _mm256_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0x44);
        b[4 * k + 3] = _mm256_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        m[c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x20);
        m[4 + c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x31);
    }
}

/* The first / last F64_LANES lanes of v as doubles (exact). */
static inline vf64 f32_widen_low(vf32 v)
{
    return _mm256_cvtps_pd(_mm256_castps256_ps128(v));
}
static inline vf64 f32_widen_high(vf32 v)
{
    return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}
/* low's lanes then high's, each rounded to float. */
static inline vf32 f32_narrow(vf64 low, vf64 high)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(low)), _mm256_cvtpd_ps(high), 1);
}

/* The first `bytes` (<= 16) bytes at p, zeros after: AVX2 has no masked
 * byte loads, so a partial block is copied first. */
static inline __m128i load_low_bytes(const void *p, size_t bytes)
{
    uint8_t copy[16] = {0};
    const uint8_t *source = p;
    for (size_t i = 0; i < bytes; i++)
        copy[i] = source[i];
    return _mm_loadu_si128((const __m128i *)(const void *)copy);
}

/* See vec_avx512.h. */
static inline vf32 f32_exclude(vf32 x, const uint8_t *keep, const float *mask, const uint16_t *half_mask,
                               uint16_t half_minus_inf, vf32 excluded, size_t count)
{
    __m256i out = _mm256_xor_si256(f32_lane_mask(count < 8 ? count : 8), _mm256_set1_epi32(-1));
    if (keep != NULL) {
        const __m128i bytes =
            count >= 8 ? _mm_loadl_epi64((const __m128i *)(const void *)keep) : load_low_bytes(keep, count);
        out = _mm256_or_si256(out, _mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(bytes), _mm256_setzero_si256()));
    }
    if (mask != NULL) {
        const vf32 values = count >= 8 ? _mm256_loadu_ps(mask) : f32_load_tail(mask, count, 0.0f);
        out = _mm256_or_si256(
            out, _mm256_castps_si256(_mm256_cmp_ps(values, _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ)));
    }
    if (half_mask != NULL) {
        const __m128i halves = count >= 8 ? _mm_loadu_si128((const __m128i *)(const void *)half_mask)
                                          : load_low_bytes(half_mask, 2 * count);
        const __m128i equal = _mm_cmpeq_epi16(halves, _mm_set1_epi16((short)half_minus_inf));
        out = _mm256_or_si256(out, _mm256_cvtepi16_epi32(equal));
    }
    return _mm256_blendv_ps(x, excluded, _mm256_castsi256_ps(out));
}

/* ---------------------------------------------------------------- f64 -- */

static inline __m256i f64_lane_mask(size_t count)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)count), _mm256_setr_epi64x(0, 1, 2, 3));
}
static inline vf64 f64_set1(double value)
{
    return _mm256_set1_pd(value);
}
static inline vf64 f64_load(const double *p)
{
    return _mm256_loadu_pd(p);
}
static inline void f64_store(double *p, vf64 v)
{
    _mm256_storeu_pd(p, v);
}
static inline vf64 f64_load_tail(const double *p, size_t count, double fill)
{
    __m256i mask = f64_lane_mask(count);
    return _mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, mask), _mm256_castsi256_pd(mask));
}
static inline void f64_store_tail(double *p, vf64 v, size_t count)
{
    _mm256_maskstore_pd(p, f64_lane_mask(count), v);
}
static inline void f64_stream(double *p, vf64 v)
{
    _mm256_stream_pd(p, v);
}
static inline void f64_stream_fence(void)
{
    _mm_sfence();
}
static inline vf64 f64_keep_nan(vf64 flag, vf64 x)
{
    return _mm256_blendv_pd(flag, x, _mm256_cmp_pd(x, x, _CMP_UNORD_Q));
}
static inline int f64_any_nan(vf64 v)
{
    return _mm256_movemask_pd(_mm256_cmp_pd(v, v, _CMP_UNORD_Q)) != 0;
}
static inline vf64 f64_add(vf64 a, vf64 b)
{
    return _mm256_add_pd(a, b);
}
static inline vf64 f64_sub(vf64 a, vf64 b)
{
    return _mm256_sub_pd(a, b);
}
static inline vf64 f64_mul(vf64 a, vf64 b)
{
    return _mm256_mul_pd(a, b);
}
static inline vf64 f64_div(vf64 a, vf64 b)
{
    return _mm256_div_pd(a, b);
}
static inline vf64 f64_fmadd(vf64 a, vf64 b, vf64 c)
{
    return _mm256_fmadd_pd(a, b, c);
}
static inline vf64 f64_max(vf64 a, vf64 b)
{
    return _mm256_max_pd(a, b);
}
static inline vf64 f64_min(vf64 a, vf64 b)
{
    return _mm256_min_pd(a, b);
}
static inline vf64 f64_neg(vf64 a)
{
    return _mm256_xor_pd(a, _mm256_set1_pd(-0.0));
}
static inline void f64_wrap_below_zero(vf64 *f, vf64 *k)
{
    vf64 one_where_below = _mm256_and_pd(_mm256_cmp_pd(*f, _mm256_setzero_pd(), _CMP_LT_OQ), _mm256_set1_pd(1.0));
    *f = _mm256_add_pd(*f, one_where_below);
    *k = _mm256_sub_pd(*k, one_where_below);
}
static inline vf64 f64_floor(vf64 a)
{
    return _mm256_floor_pd(a);
}
/* Bit l set where lane l is finite (not NaN or +-inf): v - v is 0 there. */
static inline unsigned f64_finite_lanes(vf64 v)
{
    return (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_sub_pd(v, v), _mm256_setzero_pd(), _CMP_EQ_OQ));
}
/* Bit l set where a_l < b_l (false for NaN). */
static inline unsigned f64_lanes_below(vf64 a, vf64 b)
{
    return (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_LT_OQ));
}
static inline vf64 f64_zero_below(vf64 value, vf64 x, vf64 threshold)
{
    return _mm256_and_pd(value, _mm256_cmp_pd(x, threshold, _CMP_GE_OQ));
}
/* 2^k for integral k in [-1022, 1023]: k + 1023 lands in the low mantissa
 * bits of 1.5 * 2^52 + k + 1023, and a shift moves it to the exponent. */
static inline vf64 f64_pow2(vf64 k)
{
    __m256d shifted = _mm256_add_pd(k, _mm256_set1_pd(6755399441055744.0 + 1023.0));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(shifted), 52));
}
/* s = m 2^e for positive normal s, m in [0.75, 1.5) and e integral: m
 * taken from the bits in [1, 2), halved from 1.5 on. */
static inline void f64_split_exponent(vf64 s, vf64 *m, vf64 *e)
{
    const __m256i bits = _mm256_castpd_si256(s);
    const __m256i biased = _mm256_srli_epi64(bits, 52);
    const vf64 mantissa = _mm256_castsi256_pd(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi64x(0x000FFFFFFFFFFFFF)), _mm256_set1_epi64x(0x3FF0000000000000)));
    /* 2^52 + biased exponent, exactly, as a double: the exponent without a
     * 64-bit integer conversion. */
    const vf64 exponent =
        _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(biased, _mm256_set1_epi64x(0x4330000000000000))),
                      _mm256_set1_pd(0x1p52 + 1023));
    const vf64 big = _mm256_cmp_pd(mantissa, _mm256_set1_pd(1.5), _CMP_GE_OQ);
    *m = _mm256_blendv_pd(mantissa, _mm256_mul_pd(mantissa, _mm256_set1_pd(0.5)), big);
    *e = _mm256_add_pd(exponent, _mm256_and_pd(big, _mm256_set1_pd(1.0)));
}
static inline vf64 f64_scale_pow2(vf64 p, vf64 k)
{
    k = _mm256_min_pd(_mm256_max_pd(k, _mm256_set1_pd(-2000.0)), _mm256_set1_pd(2046.0));
    vf64 k1 = _mm256_min_pd(_mm256_max_pd(k, _mm256_set1_pd(-1000.0)), _mm256_set1_pd(1023.0));
    vf64 k2 = _mm256_sub_pd(k, k1);
    return _mm256_mul_pd(_mm256_mul_pd(p, f64_pow2(k1)), f64_pow2(k2));
}
static inline double f64_reduce_max(vf64 v)
{
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_max_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}
static inline double f64_reduce_add(vf64 v)
{
    __m128d m = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_add_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}
static inline double f64_reduce_min(vf64 v)
{
    __m128d m = _mm_min_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_min_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}

/* Lane 0 of the sum of the lanes in a fixed tree: lane j with lane j + 2,
 * then + 1 (see f32_butterfly_sum). */
static inline double f64_butterfly_sum(vf64 v)
{
    v = _mm256_add_pd(v, _mm256_permute2f128_pd(v, v, 0x01));
    v = _mm256_add_pd(v, _mm256_permute_pd(v, 0x5));
    return _mm256_cvtsd_f64(v);
}
/* add(...) over lanes[0 .. 3] of any type in a fixed order: pairs, then
 * their sums (the order of an f64 accumulator's lane totals). */
#define F64_LANES_IN_ORDER(add, lanes) add(add((lanes)[0], (lanes)[1]), add((lanes)[2], (lanes)[3]))
/* m[i] lane j <-> m[j] lane i, in 8 shuffles. */
static inline void f64_transpose(vf64 m[4])
{
    vf64 a0 = _mm256_unpacklo_pd(m[0], m[1]), a1 = _mm256_unpackhi_pd(m[0], m[1]);
    vf64 a2 = _mm256_unpacklo_pd(m[2], m[3]), a3 = _mm256_unpackhi_pd(m[2], m[3]);
    m[0] = _mm256_permute2f128_pd(a0, a2, 0x20);
    m[2] = _mm256_permute2f128_pd(a0, a2, 0x31);
    m[1] = _mm256_permute2f128_pd(a1, a3, 0x20);
    m[3] = _mm256_permute2f128_pd(a1, a3, 0x31);
}

#endif /* SOFTMAX_VEC_AVX2_H */
