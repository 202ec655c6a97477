/*
 * vec_avx512.h -- the kernels' vector vocabulary on AVX-512 (F, DQ, BW, VL).
 *
 * Primitives only (loads and stores with tails, arithmetic, compares and
 * blends, scale_pow2, reductions in fixed trees, transposes, flush-to-zero):
 * the compound arithmetic built on them (accumulators, reciprocals, the
 * vector log) is written once in compound.h, and every kernel is written
 * against these names and compound.h's. This header maps them to
 * intrinsics. It refuses to compile without the matching
 * -m flags so that no AVX-512 instruction can leak into a translation unit
 * that the dispatcher may run on an older CPU.
 */
#ifndef SOFTMAX_VEC_AVX512_H
#define SOFTMAX_VEC_AVX512_H

#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) ||             \
    !defined(__FMA__)
#error "vec_avx512.h needs -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h" /* SOFTMAX_SANITIZED */

#define SOFTMAX_ISA_SUFFIX avx512

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

typedef __m512 vf32;
#define F32_LANES 16
typedef __m512d vf64;
#define F64_LANES 8

static inline vf32 f32_set1(float value)
{
    return _mm512_set1_ps(value);
}
static inline vf32 f32_load(const float *p)
{
    return _mm512_loadu_ps(p);
}
static inline void f32_store(float *p, vf32 v)
{
    _mm512_storeu_ps(p, v);
}
/* Loads the first `count` (< F32_LANES) elements; the other lanes hold `fill`. */
static inline vf32 f32_load_tail(const float *p, size_t count, float fill)
{
    __mmask16 mask = (__mmask16)((1u << count) - 1u);
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask, p);
}
static inline void f32_store_tail(float *p, vf32 v, size_t count)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << count) - 1u), v);
}
/* A store that bypasses the caches (p 64-byte aligned): for outputs larger
 * than the cache, which would only evict the input still to be read. */
static inline void f32_stream(float *p, vf32 v)
{
    _mm512_stream_ps(p, v);
}
/* Orders the streaming stores before whatever follows. */
static inline void f32_stream_fence(void)
{
    _mm_sfence();
}
/* flag, with the lanes where x is NaN replaced by that NaN. */
static inline vf32 f32_keep_nan(vf32 flag, vf32 x)
{
    return _mm512_mask_mov_ps(flag, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}
static inline int f32_any_nan(vf32 v)
{
    return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0;
}
static inline vf32 f32_add(vf32 a, vf32 b)
{
    return _mm512_add_ps(a, b);
}
static inline vf32 f32_sub(vf32 a, vf32 b)
{
    return _mm512_sub_ps(a, b);
}
static inline vf32 f32_mul(vf32 a, vf32 b)
{
    return _mm512_mul_ps(a, b);
}
/* a * b + c with one rounding. */
static inline vf32 f32_fmadd(vf32 a, vf32 b, vf32 c)
{
    return _mm512_fmadd_ps(a, b, c);
}
/* max/min return b when either operand is NaN: kernels put the value that
 * must survive (the data) second. */
static inline vf32 f32_max(vf32 a, vf32 b)
{
    return _mm512_max_ps(a, b);
}
static inline vf32 f32_min(vf32 a, vf32 b)
{
    return _mm512_min_ps(a, b);
}
static inline vf32 f32_neg(vf32 a)
{
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)0x80000000u)));
}
/* Where f < 0: f += 1 and k -= 1 (the exponential's cell fix-up). */
static inline void f32_wrap_below_zero(vf32 *f, vf32 *k)
{
    __mmask16 below = _mm512_cmp_ps_mask(*f, _mm512_setzero_ps(), _CMP_LT_OQ);
    *f = _mm512_mask_add_ps(*f, below, *f, _mm512_set1_ps(1.0f));
    *k = _mm512_mask_sub_ps(*k, below, *k, _mm512_set1_ps(1.0f));
}
static inline vf32 f32_floor(vf32 a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
/* To the nearest integer, ties to even (the fast exponential's cell). */
static inline vf32 f32_round(vf32 a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* Bit l set where lane l is finite (not NaN or +-inf). */
static inline unsigned f32_finite_lanes(vf32 v)
{
    return (unsigned)(__mmask16)~_mm512_fpclass_ps_mask(v, 0x99);
}
/* Bit l set where a_l < b_l (false for NaN). */
static inline unsigned f32_lanes_below(vf32 a, vf32 b)
{
    return (unsigned)_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ);
}
/* value where x >= threshold, 0 elsewhere (and where x is NaN). */
static inline vf32 f32_zero_below(vf32 value, vf32 x, vf32 threshold)
{
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, threshold, _CMP_GE_OQ), value);
}
/* p * 2^k for integral k in [-200, 10], rounded once (gradual underflow). */
static inline vf32 f32_scale_pow2(vf32 p, vf32 k)
{
    return _mm512_scalef_ps(p, k);
}
/* p * 2^k where the product is normal (f32_scale_pow2's value: exact). */
static inline vf32 f32_scale_pow2_normal(vf32 p, vf32 k)
{
    return _mm512_scalef_ps(p, k);
}
static inline float f32_reduce_max(vf32 v)
{
    return _mm512_reduce_max_ps(v);
}
static inline float f32_reduce_add(vf32 v)
{
    return _mm512_reduce_add_ps(v);
}
static inline float f32_reduce_min(vf32 v)
{
    return _mm512_reduce_min_ps(v);
}

/* Lane 0 of the sum of the lanes in a fixed tree: lane j with lane j + 8,
 * then + 4, + 2, + 1. The tiny-row kernels rely on this order: their
 * transposed form adds whole column vectors in the same tree. */
static inline float f32_butterfly_sum(vf32 v)
{
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
    return _mm512_cvtss_f32(v);
}
/* m[i] lane j <-> m[j] lane i, in 64 shuffles: pairs of rows interleaved,
 * 4 x 4 blocks inside each 128-bit lane, then the 128-bit lanes across
 * groups of 4 and of 8 rows. Always inlined: where gcc chose, rows of 16
 * were 6 % slower. Not under the sanitizers, where its inlined copies
 * made most of a 170 s compile (see SOFTMAX_SANITIZED). */
#if SOFTMAX_SANITIZED
#define TRANSPOSE_INLINE inline
#else
#define TRANSPOSE_INLINE inline __attribute__((always_inline))
#endif
static TRANSPOSE_INLINE void f32_transpose(vf32 m[16])
{
    vf32 a[16], b[16];
    for (int k = 0; k < 8; k++) {
        a[2 * k] = _mm512_unpacklo_ps(m[2 * k], m[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_ps(m[2 * k], m[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) {
        b[4 * k] = _mm512_shuffle_ps(a[4 * k], a[4 * k + 2], 0x44);
        b[4 * k + 1] = _mm512_shuffle_ps(a[4 * k], a[4 * k + 2], 0xEE);
        b[4 * k + 2] = _mm512_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0x44);
        b[4 * k + 3] = _mm512_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0xEE);
    }
    /* b[4k + c] lane q: column 4q + c of rows 4k .. 4k + 3. */
    for (int c = 0; c < 4; c++) {
        vf32 even_low = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88),
             odd_low = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xDD);
        vf32 even_high = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88);
        vf32 odd_high = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xDD);
        m[c] = _mm512_shuffle_f32x4(even_low, even_high, 0x88);
        m[8 + c] = _mm512_shuffle_f32x4(even_low, even_high, 0xDD);
        m[4 + c] = _mm512_shuffle_f32x4(odd_low, odd_high, 0x88);
        m[12 + c] = _mm512_shuffle_f32x4(odd_low, odd_high, 0xDD);
    }
}

/* The first / last F64_LANES lanes of v as doubles (exact). */
static inline vf64 f32_widen_low(vf32 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}
static inline vf64 f32_widen_high(vf32 v)
{
    return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
}
/* low's lanes then high's, each rounded to float. */
static inline vf32 f32_narrow(vf64 low, vf64 high)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(low)), _mm512_cvtpd_ps(high), 1);
}

/* The first `count` (<= F32_LANES) lanes of x, with `excluded` in the
 * lanes a mask excludes: a zero `keep` byte, a -inf `mask` entry, or a
 * `half_mask` entry equal to the bit pattern `half_minus_inf` (each
 * pointer NULL when absent). Lanes from count on are excluded too. Masked
 * loads: nothing past count is read. */
static inline vf32 f32_exclude(vf32 x, const uint8_t *keep, const float *mask, const uint16_t *half_mask,
                               uint16_t half_minus_inf, vf32 excluded, size_t count)
{
    const __mmask16 lanes = count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1u);
    __mmask16 out = (__mmask16)~lanes;
    if (keep != NULL)
        out |= _mm_mask_cmpeq_epi8_mask(lanes, _mm_maskz_loadu_epi8(lanes, keep), _mm_setzero_si128());
    if (mask != NULL)
        out |= _mm512_mask_cmp_ps_mask(lanes, _mm512_maskz_loadu_ps(lanes, mask), _mm512_set1_ps(-__builtin_inff()),
                                       _CMP_EQ_OQ);
    if (half_mask != NULL)
        out |= _mm256_mask_cmpeq_epi16_mask(lanes, _mm256_maskz_loadu_epi16(lanes, half_mask),
                                            _mm256_set1_epi16((short)half_minus_inf));
    return _mm512_mask_blend_ps(out, x, excluded);
}

/* ---------------------------------------------------------------- f64 -- */

static inline vf64 f64_set1(double value)
{
    return _mm512_set1_pd(value);
}
static inline vf64 f64_load(const double *p)
{
    return _mm512_loadu_pd(p);
}
static inline void f64_store(double *p, vf64 v)
{
    _mm512_storeu_pd(p, v);
}
static inline vf64 f64_load_tail(const double *p, size_t count, double fill)
{
    __mmask8 mask = (__mmask8)((1u << count) - 1u);
    return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), mask, p);
}
static inline void f64_store_tail(double *p, vf64 v, size_t count)
{
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << count) - 1u), v);
}
static inline void f64_stream(double *p, vf64 v)
{
    _mm512_stream_pd(p, v);
}
static inline void f64_stream_fence(void)
{
    _mm_sfence();
}
static inline vf64 f64_keep_nan(vf64 flag, vf64 x)
{
    return _mm512_mask_mov_pd(flag, _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), x);
}
static inline int f64_any_nan(vf64 v)
{
    return _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q) != 0;
}
static inline vf64 f64_add(vf64 a, vf64 b)
{
    return _mm512_add_pd(a, b);
}
static inline vf64 f64_sub(vf64 a, vf64 b)
{
    return _mm512_sub_pd(a, b);
}
static inline vf64 f64_mul(vf64 a, vf64 b)
{
    return _mm512_mul_pd(a, b);
}
static inline vf64 f64_div(vf64 a, vf64 b)
{
    return _mm512_div_pd(a, b);
}
static inline vf64 f64_fmadd(vf64 a, vf64 b, vf64 c)
{
    return _mm512_fmadd_pd(a, b, c);
}
static inline vf64 f64_max(vf64 a, vf64 b)
{
    return _mm512_max_pd(a, b);
}
static inline vf64 f64_min(vf64 a, vf64 b)
{
    return _mm512_min_pd(a, b);
}
static inline vf64 f64_neg(vf64 a)
{
    return _mm512_castsi512_pd(
        _mm512_xor_si512(_mm512_castpd_si512(a), _mm512_set1_epi64((long long)0x8000000000000000ull)));
}
static inline void f64_wrap_below_zero(vf64 *f, vf64 *k)
{
    __mmask8 below = _mm512_cmp_pd_mask(*f, _mm512_setzero_pd(), _CMP_LT_OQ);
    *f = _mm512_mask_add_pd(*f, below, *f, _mm512_set1_pd(1.0));
    *k = _mm512_mask_sub_pd(*k, below, *k, _mm512_set1_pd(1.0));
}
static inline vf64 f64_floor(vf64 a)
{
    return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
/* Bit l set where lane l is finite (not NaN or +-inf). */
static inline unsigned f64_finite_lanes(vf64 v)
{
    return (unsigned)(__mmask8)~_mm512_fpclass_pd_mask(v, 0x99);
}
/* Bit l set where a_l < b_l (false for NaN). */
static inline unsigned f64_lanes_below(vf64 a, vf64 b)
{
    return (unsigned)_mm512_cmp_pd_mask(a, b, _CMP_LT_OQ);
}
static inline vf64 f64_zero_below(vf64 value, vf64 x, vf64 threshold)
{
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, threshold, _CMP_GE_OQ), value);
}
/* s = m 2^e for positive normal s, m in [0.75, 1.5) and e integral. */
static inline void f64_split_exponent(vf64 s, vf64 *m, vf64 *e)
{
    const vf64 one = _mm512_set1_pd(1.0);
    *m = _mm512_getmant_pd(s, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
    const vf64 exponent = _mm512_getexp_pd(s);
    *e = _mm512_mask_add_pd(exponent, _mm512_cmp_pd_mask(*m, one, _CMP_LT_OQ), exponent, one);
}
/* p * 2^k for integral k in [-1200, 10], rounded once. */
static inline vf64 f64_scale_pow2(vf64 p, vf64 k)
{
    return _mm512_scalef_pd(p, k);
}
static inline double f64_reduce_max(vf64 v)
{
    return _mm512_reduce_max_pd(v);
}
static inline double f64_reduce_add(vf64 v)
{
    return _mm512_reduce_add_pd(v);
}
static inline double f64_reduce_min(vf64 v)
{
    return _mm512_reduce_min_pd(v);
}

/* Lane 0 of the sum of the lanes in a fixed tree: lane j with lane j + 4,
 * then + 2, + 1 (see f32_butterfly_sum). */
static inline double f64_butterfly_sum(vf64 v)
{
    v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, 0x4E));
    v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, 0xB1));
    v = _mm512_add_pd(v, _mm512_permute_pd(v, 0x55));
    return _mm512_cvtsd_f64(v);
}
/* add(...) over lanes[0 .. 7] of any type in a fixed order: one after the
 * other (the order of an f64 accumulator's lane totals). */
#define F64_LANES_IN_ORDER(add, lanes)                                                                                 \
    add(add(add(add(add(add(add((lanes)[0], (lanes)[1]), (lanes)[2]), (lanes)[3]), (lanes)[4]), (lanes)[5]),           \
            (lanes)[6]),                                                                                               \
        (lanes)[7])
/* m[i] lane j <-> m[j] lane i, in 24 shuffles. */
static inline void f64_transpose(vf64 m[8])
{
    vf64 a[8];
    for (int k = 0; k < 4; k++) {
        a[2 * k] = _mm512_unpacklo_pd(m[2 * k], m[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_pd(m[2 * k], m[2 * k + 1]);
    }
    /* a[2k + c] lane q: column 2q + c of rows 2k, 2k + 1. */
    for (int c = 0; c < 2; c++) {
        vf64 even_low = _mm512_shuffle_f64x2(a[c], a[2 + c], 0x88),
             odd_low = _mm512_shuffle_f64x2(a[c], a[2 + c], 0xDD);
        vf64 even_high = _mm512_shuffle_f64x2(a[4 + c], a[6 + c], 0x88);
        vf64 odd_high = _mm512_shuffle_f64x2(a[4 + c], a[6 + c], 0xDD);
        m[c] = _mm512_shuffle_f64x2(even_low, even_high, 0x88);
        m[4 + c] = _mm512_shuffle_f64x2(even_low, even_high, 0xDD);
        m[2 + c] = _mm512_shuffle_f64x2(odd_low, odd_high, 0x88);
        m[6 + c] = _mm512_shuffle_f64x2(odd_low, odd_high, 0xDD);
    }
}

#endif /* SOFTMAX_VEC_AVX512_H */
