/*
 * simd_kernels.h -- instantiates simd_body.h for f32 and f64 on the ISA
 * whose vocabulary header was included first (kernels_<isa>.c).
 */
#include <float.h>
#include <math.h>

#include "internal.h"

#define SOFTMAX_CONCAT_(a, b, c) a##b##c
#define SOFTMAX_CONCAT(a, b, c) SOFTMAX_CONCAT_(a, b, c)

/* ------------------------------------------------ half conversions -- */
/* Contiguous f32 <-> bf16 / f16, bit for bit the scalar definitions of
 * convert.c: f16 through the hardware conversions (exact, round to nearest
 * even, sub-normals kept: they run outside the kernels' flush-to-zero
 * region), bf16 with integer arithmetic (round to nearest even on the
 * dropped half, NaN kept quiet). */
#if defined(__AVX512F__)
#define HALF_STEP 16
static inline __m512 widen_16(const uint16_t *src, int bf16)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)src);
    if (bf16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}
/* The kernels' vocabulary name for it (simd_body.h reads half rows). */
static inline vf32 f32_load_half(const uint16_t *src, int bf16)
{
    return widen_16(src, bf16);
}
static inline __m256i narrow_16(__m512 v, int bf16)
{
    if (!bf16)
        return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512i bits = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}
/* narrow_16 of a vector that holds no NaN (the kernels' outputs, whose
 * NaN rows are filled apart): the bf16 rounding without its NaN lanes. */
static inline __m256i narrow_16_number(__m512 v, int bf16)
{
    if (!bf16)
        return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512i bits = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    return _mm512_cvtepi32_epi16(
        _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb), 16));
}
/* The kernels' vocabulary names for the narrowing stores (simd_body.h
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

/* The additive-mask split of general.c (split_logits() and
 * apply_low_parts() there are the portable definitions), eight doubles at a
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
    if (special != 0 || maximum == -INFINITY)
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
        for (size_t j = 0; j < n; j++)
            line[j] = ((double)w[j] + line[j]) - log_correction;
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
#elif defined(__AVX2__) && defined(__F16C__)
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
static inline __m128i narrow_8(__m256 v, int bf16)
{
    if (!bf16)
        return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i bits = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    /* NaN: magnitude above inf, compared as signed integers (both are
     * below 2^31). */
    __m256i nan =
        _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
    __m256i halves = _mm256_blendv_epi8(rounded, quiet, nan);
    /* Pack the eight 32-bit values (< 2^16) to 16 bits: packus works within
     * 128-bit lanes, the permute gathers the two lanes' results. */
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08);
    return _mm256_castsi256_si128(packed);
}
/* narrow_8 of a vector that holds no NaN (see the AVX-512 one). */
static inline __m128i narrow_8_number(__m256 v, int bf16)
{
    if (!bf16)
        return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i bits = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i halves = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb), 16);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08));
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
#define SPLIT_LOGITS NULL /* the portable loops of general.c */
#define APPLY_LOW_PARTS NULL
#else
#define HALF_WIDEN NULL
#define HALF_NARROW NULL
#define SPLIT_LOGITS NULL
#define APPLY_LOW_PARTS NULL
#endif

/* ---------------------------------------------------------------- f32 -- */
#define T float
#define T_MAX FLT_MAX
#define WIDE double
#define V vf32
#define LANES ((size_t)F32_LANES)
#define P(op) f32_##op
#define ACC f32_acc
#define FN(name) SOFTMAX_CONCAT(name, _f32_, SOFTMAX_ISA_SUFFIX)
#define EXP_FLOOR_ARG 160
#define OFFSET_LIMIT 4194304.0 /* 2^22: B + k stays an exact float integer */
#define WIDE_LOG log
#define FMA_T fmaf
#define T_FLOOR floorf
#define T_FABS fabsf
#define WIDE_FLOOR floor
#define NORMALIZE_SHIFT 64
#define NORMALIZE_SCALE 0x1p64
#define NORMALIZE_UNSCALE 0x1p-64
#define WIDE_LDEXP ldexp
#define WIDE_FABS fabs
#define REF_LINES softmax_ref_lines_f32
#define KERNELS_NAME SOFTMAX_CONCAT(softmax_kernels_f32, _, SOFTMAX_ISA_SUFFIX)
/* q(f) with 2^f = 1 + f * q(f) on [0, 1], relative error 2^-26.3 (Chebyshev fit of
 * q, float coefficients, all positive): well below the half ulp of the
 * final rounding. */
static inline vf32 exp2_q_f32(vf32 f)
{
    vf32 q = f32_set1(0x1.b49554p-13f);
    q = f32_fmadd(q, f, f32_set1(0x1.4cb7b0p-10f));
    q = f32_fmadd(q, f, f32_set1(0x1.3c487cp-7f));
    q = f32_fmadd(q, f, f32_set1(0x1.c69f98p-5f));
    q = f32_fmadd(q, f, f32_set1(0x1.ebfc3ep-3f));
    return f32_fmadd(q, f, f32_set1(0x1.62e430p-1f));
}
#define KEY_BIAS 0x1p-14f
#define EXP_Q(f) exp2_q_f32(f)
/* The fast mode's q(f) with 2^f = 1 + f * q(f) on [-0.5005, 0.5005]: a
 * near-minimax fit of the relative error (2^-25.9 with these float
 * coefficients in exact arithmetic), fitted for this library. */
static inline vf32 fast_exp2_q_f32(vf32 f)
{
    vf32 q = f32_set1(0x1.420a4ep-13f);
    q = f32_fmadd(q, f, f32_set1(0x1.5f3e60p-10f));
    q = f32_fmadd(q, f, f32_set1(0x1.3b2d3ap-7f));
    q = f32_fmadd(q, f, f32_set1(0x1.c6aee8p-5f));
    q = f32_fmadd(q, f, f32_set1(0x1.ebfbdcp-3f));
    return f32_fmadd(q, f, f32_set1(0x1.62e430p-1f));
}
#define FAST_EXP_Q(f) fast_exp2_q_f32(f)
/* The tiny rows' log-softmax constants in vectors (f32_neg_log_sum). */
#define NEG_LOG_SUM_VECTOR 1
#include "simd_body.h"
#undef T
#undef T_MAX
#undef WIDE
#undef V
#undef LANES
#undef P
#undef ACC
#undef FN
#undef EXP_FLOOR_ARG
#undef OFFSET_LIMIT
#undef WIDE_LOG
#undef FMA_T
#undef T_FLOOR
#undef T_FABS
#undef WIDE_FLOOR
#undef NORMALIZE_SHIFT
#undef NORMALIZE_SCALE
#undef NORMALIZE_UNSCALE
#undef WIDE_LDEXP
#undef WIDE_FABS
#undef REF_LINES
#undef KERNELS_NAME
#undef EXP_Q
#undef FAST_EXP_Q
#undef NEG_LOG_SUM_VECTOR
#undef KEY_BIAS

#undef HALF_WIDEN
#undef HALF_NARROW
#undef HALF_ROWS
#undef SPLIT_LOGITS
#undef APPLY_LOW_PARTS
#define HALF_WIDEN NULL
#define HALF_NARROW NULL
#define SPLIT_LOGITS NULL
#define APPLY_LOW_PARTS NULL

/* ---------------------------------------------------------------- f64 -- */
#define T double
#define T_MAX DBL_MAX
#define WIDE long double
#define V vf64
#define LANES ((size_t)F64_LANES)
#define P(op) f64_##op
#define ACC f64_acc
#define FN(name) SOFTMAX_CONCAT(name, _f64_, SOFTMAX_ISA_SUFFIX)
#define EXP_FLOOR_ARG 1100
#define OFFSET_LIMIT 1125899906842624.0 /* 2^50 */
#define WIDE_LOG logl
#define FMA_T fma
#define T_FLOOR floor
#define T_FABS fabs
#define WIDE_FLOOR floorl
#define NORMALIZE_SHIFT 128
#define NORMALIZE_SCALE 0x1p128L
#define NORMALIZE_UNSCALE 0x1p-128
#define WIDE_LDEXP ldexpl
#define WIDE_FABS fabsl
#define REF_LINES softmax_ref_lines_f64
#define KERNELS_NAME SOFTMAX_CONCAT(softmax_kernels_f64, _, SOFTMAX_ISA_SUFFIX)
/* q(f) with 2^f = 1 + f * q(f) on [0, 1], relative error 2^-54.9 (q of degree 10,
 * all coefficients positive). */
static inline vf64 exp2_q_f64(vf64 f)
{
    vf64 q = f64_set1(0x1.509edf2ecfdf8p-31);
    q = f64_fmadd(q, f, f64_set1(0x1.c7ea67ee59ebfp-28));
    q = f64_fmadd(q, f, f64_set1(0x1.b7a2459dca29cp-24));
    q = f64_fmadd(q, f, f64_set1(0x1.629e703ac7f08p-20));
    q = f64_fmadd(q, f, f64_set1(0x1.ffce434c232f0p-17));
    q = f64_fmadd(q, f, f64_set1(0x1.4309065c8357ap-13));
    q = f64_fmadd(q, f, f64_set1(0x1.5d87fecf83f7bp-10));
    q = f64_fmadd(q, f, f64_set1(0x1.3b2ab6fa48563p-7));
    q = f64_fmadd(q, f, f64_set1(0x1.c6b08d704fa4fp-5));
    q = f64_fmadd(q, f, f64_set1(0x1.ebfbdff82c4ffp-3));
    return f64_fmadd(q, f, f64_set1(0x1.62e42fefa39efp-1));
}
#define KEY_BIAS 0x1p-36
#define EXP_Q(f) exp2_q_f64(f)
#include "simd_body.h"
