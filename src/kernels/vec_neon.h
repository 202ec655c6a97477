/*
 * vec_neon.h -- the kernels' vector vocabulary on AArch64 Advanced SIMD (NEON).
 *
 * The same names as vec_avx2.h. A NEON register holds 4 f32 or 2 f64; a
 * vector here is two registers side by side (8 f32 / 4 f64 lanes, the
 * shape of AVX2), for three reasons:
 *   - the f64 tiny rows are transposed in groups of LANES rows and taken
 *     grouped from TINY_GROUP_MIN (4) rows on: with 2 lanes no group would
 *     ever form;
 *   - every loop step then carries two independent dependency chains, which
 *     the two to four FP pipes of current cores (Neoverse, Apple, Cortex-X)
 *     need, and the per-vector costs (tails, horizontal reductions, plan
 *     broadcasts) are paid once per 8 elements instead of 4;
 *   - 8 x 8 f32 transposes use 16 of the 32 registers; 16 lanes (four
 *     registers) would need 64 and spill.
 * Every operation below does, lane for lane, the IEEE operation the AVX2
 * vocabulary does, and the reductions add and compare in the same tree, so
 * the two paths give the same bits wherever WIDE (double for f32) is the
 * same type on both machines.
 *
 * No instruction needs more than the base AArch64 Advanced SIMD, which every
 * AArch64 CPU has: nothing is detected at run time.
 */
#ifndef SOFTMAX_VEC_NEON_H
#define SOFTMAX_VEC_NEON_H

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "vec_neon.h needs an AArch64 target with Advanced SIMD"
#endif

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

#define SOFTMAX_ISA_SUFFIX neon

/* Flush-to-zero is NOT used on this path, unlike MXCSR.FTZ on x86: AArch64's
 * FPCR.FZ (bit 24) also reads every sub-normal input of an arithmetic
 * instruction as zero (x86 only does that with DAZ), and the contract's
 * sub-normal cases need those inputs -- a sub-normal logit times a scale
 * near FLT_MAX, a sub-normal c_lo of a tiny scale, the reference kernels
 * that rows leaving the SIMD path run inside this region. With FZ set,
 * test_contract's denormal cases fail. FPCR.AH with FIZ (FEAT_AFP, Armv8.7)
 * would flush outputs only, but AH also changes FMAX/FMIN and NaN results,
 * and few cores have it. The reason x86 flushes, a ~100-cycle microcode
 * assist per sub-normal result, does not carry over: AArch64 cores compute
 * sub-normals in hardware. Sub-normal results are then rounded once
 * (gradual underflow), which the contract allows as much as a flush.
 *
 * The kernels do clear FZ while they run, so that a caller that set it
 * (-ffast-math's startup code does) gets the same results as any other; the
 * caller's FPCR is restored on the way out, and neither register write
 * happens when FZ was already clear. */
#define NEON_FPCR_FZ ((uint64_t)1 << 24)
static inline unsigned int vec_flush_to_zero_begin(void)
{
    uint64_t saved;
    __asm__ volatile("mrs %0, fpcr" : "=r"(saved));
    if (saved & NEON_FPCR_FZ)
        __asm__ volatile("msr fpcr, %0" : : "r"(saved & ~NEON_FPCR_FZ));
    return (unsigned int)saved;
}
static inline void vec_flush_to_zero_end(unsigned int saved)
{
    if ((uint64_t)saved & NEON_FPCR_FZ)
        __asm__ volatile("msr fpcr, %0" : : "r"((uint64_t)saved));
}

/* Asks for the cache line holding p; never faults, even past an array.
 * An asm statement for the reason given in vec_avx2.h. */
static inline void vec_prefetch(const void *p)
{
    __asm__ volatile("prfm pldl1keep, %a0" : : "p"(p));
}

/* vec_prefetch into the L2 cache (see vec_avx2.h). */
static inline void vec_prefetch_l2(const void *p)
{
    __asm__ volatile("prfm pldl2keep, %a0" : : "p"(p));
}

/* Bit l set where lane l of the comparison result m is all ones. */
static inline unsigned u32x4_lane_bits(uint32x4_t m)
{
    const uint32_t weights[4] = {1, 2, 4, 8};
    return vaddvq_u32(vandq_u32(m, vld1q_u32(weights)));
}
static inline unsigned u64x2_lane_bits(uint64x2_t m)
{
    return (unsigned)((vgetq_lane_u64(m, 0) & 1u) | ((vgetq_lane_u64(m, 1) & 1u) << 1));
}

/* ---------------------------------------------------------------- f32 -- */

/* Lanes 0..3 in lo, 4..7 in hi. */
typedef struct vf32 {
    float32x4_t lo;
    float32x4_t hi;
} vf32;
#define F32_LANES 8

static inline vf32 f32_make(float32x4_t lo, float32x4_t hi)
{
    vf32 v = {lo, hi};
    return v;
}
/* x86's maxps / minps: b where either operand is NaN, and b for +0 vs -0
 * (FMAX would return the NaN; the kernels put the value that must survive
 * second). */
static inline float32x4_t f32x4_max(float32x4_t a, float32x4_t b)
{
    return vbslq_f32(vcgtq_f32(a, b), a, b);
}
static inline float32x4_t f32x4_min(float32x4_t a, float32x4_t b)
{
    return vbslq_f32(vcltq_f32(a, b), a, b);
}
/* The first count (< 4) elements at p, `fill` in the other lanes; nothing
 * past p + count is read. */
static inline float32x4_t f32x4_load_partial(const float *p, size_t count, float fill)
{
    const float32x2_t filled = vdup_n_f32(fill);
    switch (count) {
    case 0:
        return vcombine_f32(filled, filled);
    case 1:
        return vcombine_f32(vld1_lane_f32(p, filled, 0), filled);
    case 2:
        return vcombine_f32(vld1_f32(p), filled);
    default:
        return vcombine_f32(vld1_f32(p), vld1_lane_f32(p + 2, filled, 0));
    }
}
static inline void f32x4_store_partial(float *p, float32x4_t v, size_t count)
{
    switch (count) {
    case 0:
        return;
    case 1:
        vst1q_lane_f32(p, v, 0);
        return;
    case 2:
        vst1_f32(p, vget_low_f32(v));
        return;
    default:
        vst1_f32(p, vget_low_f32(v));
        vst1q_lane_f32(p + 2, v, 2);
        return;
    }
}

static inline vf32 f32_set1(float value)
{
    return f32_make(vdupq_n_f32(value), vdupq_n_f32(value));
}
static inline vf32 f32_load(const float *p)
{
    return f32_make(vld1q_f32(p), vld1q_f32(p + 4));
}
static inline void f32_store(float *p, vf32 v)
{
    vst1q_f32(p, v.lo);
    vst1q_f32(p + 4, v.hi);
}
/* Loads the first `count` (<= F32_LANES) elements; the other lanes hold
 * `fill`. */
static inline vf32 f32_load_tail(const float *p, size_t count, float fill)
{
    if (count >= 8)
        return f32_load(p);
    if (count >= 4)
        return f32_make(vld1q_f32(p), f32x4_load_partial(p + 4, count - 4, fill));
    return f32_make(f32x4_load_partial(p, count, fill), vdupq_n_f32(fill));
}
static inline void f32_store_tail(float *p, vf32 v, size_t count)
{
    if (count >= 8) {
        f32_store(p, v);
    } else if (count >= 4) {
        vst1q_f32(p, v.lo);
        f32x4_store_partial(p + 4, v.hi, count - 4);
    } else {
        f32x4_store_partial(p, v.lo, count);
    }
}
/* NEON has no streaming store that bypasses the caches: the kernels' large
 * outputs are written with plain stores. (STNP is only a hint that the
 * line will not be reused; it keeps write-allocate on most cores, and its
 * effect cannot be measured under emulation, so it is not used.) Current
 * cores detect full-line write streams and skip the read for ownership by
 * themselves. */
static inline void f32_stream(float *p, vf32 v)
{
    f32_store(p, v);
}
/* Plain stores need no fence. */
static inline void f32_stream_fence(void)
{
}
/* flag, with the lanes where x is NaN replaced by that NaN. */
static inline vf32 f32_keep_nan(vf32 flag, vf32 x)
{
    return f32_make(vbslq_f32(vceqq_f32(x.lo, x.lo), flag.lo, x.lo), vbslq_f32(vceqq_f32(x.hi, x.hi), flag.hi, x.hi));
}
static inline int f32_any_nan(vf32 v)
{
    return vminvq_u32(vandq_u32(vceqq_f32(v.lo, v.lo), vceqq_f32(v.hi, v.hi))) == 0;
}
static inline vf32 f32_add(vf32 a, vf32 b)
{
    return f32_make(vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi));
}
static inline vf32 f32_sub(vf32 a, vf32 b)
{
    return f32_make(vsubq_f32(a.lo, b.lo), vsubq_f32(a.hi, b.hi));
}
static inline vf32 f32_mul(vf32 a, vf32 b)
{
    return f32_make(vmulq_f32(a.lo, b.lo), vmulq_f32(a.hi, b.hi));
}
/* a * b + c with one rounding. */
static inline vf32 f32_fmadd(vf32 a, vf32 b, vf32 c)
{
    return f32_make(vfmaq_f32(c.lo, a.lo, b.lo), vfmaq_f32(c.hi, a.hi, b.hi));
}
/* max/min return b when either operand is NaN (see f32x4_max). */
static inline vf32 f32_max(vf32 a, vf32 b)
{
    return f32_make(f32x4_max(a.lo, b.lo), f32x4_max(a.hi, b.hi));
}
static inline vf32 f32_min(vf32 a, vf32 b)
{
    return f32_make(f32x4_min(a.lo, b.lo), f32x4_min(a.hi, b.hi));
}
static inline vf32 f32_neg(vf32 a)
{
    return f32_make(vnegq_f32(a.lo), vnegq_f32(a.hi));
}
/* Where f < 0: f += 1 and k -= 1 (the exponential's cell fix-up), as
 * vec_avx2.h does it (adding 0 elsewhere). */
static inline float32x4_t f32x4_one_where_below_zero(float32x4_t f)
{
    return vreinterpretq_f32_u32(vandq_u32(vcltzq_f32(f), vreinterpretq_u32_f32(vdupq_n_f32(1.0f))));
}
static inline void f32_wrap_below_zero(vf32 *f, vf32 *k)
{
    const vf32 one_where_below = f32_make(f32x4_one_where_below_zero(f->lo), f32x4_one_where_below_zero(f->hi));
    *f = f32_add(*f, one_where_below);
    *k = f32_sub(*k, one_where_below);
}
static inline vf32 f32_floor(vf32 a)
{
    return f32_make(vrndmq_f32(a.lo), vrndmq_f32(a.hi));
}
/* To the nearest integer, ties to even (the fast exponential's cell). */
static inline vf32 f32_round(vf32 a)
{
    return f32_make(vrndnq_f32(a.lo), vrndnq_f32(a.hi));
}
/* Bit l set where lane l is finite (not NaN or +-inf): v - v is 0 there. */
static inline unsigned f32_finite_lanes(vf32 v)
{
    return u32x4_lane_bits(vceqzq_f32(vsubq_f32(v.lo, v.lo))) |
           (u32x4_lane_bits(vceqzq_f32(vsubq_f32(v.hi, v.hi))) << 4);
}
/* Bit l set where a_l < b_l (false for NaN). */
static inline unsigned f32_lanes_below(vf32 a, vf32 b)
{
    return u32x4_lane_bits(vcltq_f32(a.lo, b.lo)) | (u32x4_lane_bits(vcltq_f32(a.hi, b.hi)) << 4);
}
/* value where x >= threshold, 0 elsewhere (and where x is NaN). */
static inline vf32 f32_zero_below(vf32 value, vf32 x, vf32 threshold)
{
    return f32_make(vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(value.lo), vcgeq_f32(x.lo, threshold.lo))),
                    vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(value.hi), vcgeq_f32(x.hi, threshold.hi))));
}
/* 2^k for integral k in [-126, 127]. */
static inline float32x4_t f32x4_pow2(float32x4_t k)
{
    const int32x4_t biased = vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(biased, 23));
}
/* p * 2^k for integral k: p * 2^k1 is exact (normal), then one rounding.
 * AArch64 has no scalef (SVE's FSCALE is not Advanced SIMD). The clamps
 * are FMAX / FMIN (one instruction each, not f32x4_max's two): k is NaN
 * only where p is (the exponential's k and p both come from x), and the
 * product is then p's NaN whatever the clamps return. */
static inline float32x4_t f32x4_scale_pow2(float32x4_t p, float32x4_t k)
{
    k = vminq_f32(vmaxq_f32(k, vdupq_n_f32(-200.0f)), vdupq_n_f32(254.0f));
    const float32x4_t k1 = vminq_f32(vmaxq_f32(k, vdupq_n_f32(-100.0f)), vdupq_n_f32(127.0f));
    const float32x4_t k2 = vsubq_f32(k, k1);
    return vmulq_f32(vmulq_f32(p, f32x4_pow2(k1)), f32x4_pow2(k2));
}
static inline vf32 f32_scale_pow2(vf32 p, vf32 k)
{
    return f32_make(f32x4_scale_pow2(p.lo, k.lo), f32x4_scale_pow2(p.hi, k.hi));
}
/* p * 2^k for integral k in [-126, 127] where the product is normal: exact,
 * so f32_scale_pow2's value, with one multiplication. */
static inline vf32 f32_scale_pow2_normal(vf32 p, vf32 k)
{
    return f32_make(vmulq_f32(p.lo, f32x4_pow2(k.lo)), vmulq_f32(p.hi, f32x4_pow2(k.hi)));
}
/* The reductions compare and add in vec_avx2.h's tree: lane j with lane
 * j + 4, then with j + 2, then lane 0 with lane 1. */
static inline float f32_reduce_max(vf32 v)
{
    const float32x4_t m = f32x4_max(v.lo, v.hi);
    const float32x2_t n = vget_low_f32(f32x4_max(m, vcombine_f32(vget_high_f32(m), vget_high_f32(m))));
    return vget_lane_f32(vget_low_f32(f32x4_max(vcombine_f32(n, n), vdupq_lane_f32(n, 1))), 0);
}
static inline float f32_reduce_min(vf32 v)
{
    const float32x4_t m = f32x4_min(v.lo, v.hi);
    const float32x2_t n = vget_low_f32(f32x4_min(m, vcombine_f32(vget_high_f32(m), vget_high_f32(m))));
    return vget_lane_f32(vget_low_f32(f32x4_min(vcombine_f32(n, n), vdupq_lane_f32(n, 1))), 0);
}
/* Lane 0 of the sum of the lanes in a fixed tree: lane j with lane j + 4,
 * then + 2, + 1. The tiny-row kernels rely on this order: their transposed
 * form adds whole column vectors in the same tree. */
static inline float f32_butterfly_sum(vf32 v)
{
    const float32x4_t m = vaddq_f32(v.lo, v.hi);
    const float32x2_t n = vadd_f32(vget_low_f32(m), vget_high_f32(m));
    return vget_lane_f32(n, 0) + vget_lane_f32(n, 1);
}
static inline float f32_reduce_add(vf32 v)
{
    return f32_butterfly_sum(v);
}
/* Rows a0..a3 of a 4 x 4 block transposed in place. */
static inline void f32x4_transpose4(float32x4_t *a0, float32x4_t *a1, float32x4_t *a2, float32x4_t *a3)
{
    const float32x4_t t0 = vtrn1q_f32(*a0, *a1), t1 = vtrn2q_f32(*a0, *a1);
    const float32x4_t t2 = vtrn1q_f32(*a2, *a3), t3 = vtrn2q_f32(*a2, *a3);
    *a0 = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    *a1 = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    *a2 = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    *a3 = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}
/* m[i] lane j <-> m[j] lane i: the four 4 x 4 blocks transposed, the two
 * off-diagonal ones swapped (32 shuffles). */
static inline void f32_transpose(vf32 m[8])
{
    f32x4_transpose4(&m[0].lo, &m[1].lo, &m[2].lo, &m[3].lo);
    f32x4_transpose4(&m[4].hi, &m[5].hi, &m[6].hi, &m[7].hi);
    f32x4_transpose4(&m[0].hi, &m[1].hi, &m[2].hi, &m[3].hi);
    f32x4_transpose4(&m[4].lo, &m[5].lo, &m[6].lo, &m[7].lo);
    for (int r = 0; r < 4; r++) {
        const float32x4_t upper_right = m[r].hi;
        m[r].hi = m[4 + r].lo;
        m[4 + r].lo = upper_right;
    }
}

/* ---------------------------------------------------------------- f64 -- */

/* Lanes 0, 1 in lo, 2, 3 in hi. */
typedef struct vf64 {
    float64x2_t lo;
    float64x2_t hi;
} vf64;
#define F64_LANES 4

static inline vf64 f64_make(float64x2_t lo, float64x2_t hi)
{
    vf64 v = {lo, hi};
    return v;
}
static inline float64x2_t f64x2_max(float64x2_t a, float64x2_t b)
{
    return vbslq_f64(vcgtq_f64(a, b), a, b);
}
static inline float64x2_t f64x2_min(float64x2_t a, float64x2_t b)
{
    return vbslq_f64(vcltq_f64(a, b), a, b);
}
static inline float64x2_t f64x2_load_partial(const double *p, size_t count, double fill)
{
    const float64x2_t filled = vdupq_n_f64(fill);
    return count == 0 ? filled : vld1q_lane_f64(p, filled, 0);
}

static inline vf64 f64_set1(double value)
{
    return f64_make(vdupq_n_f64(value), vdupq_n_f64(value));
}
static inline vf64 f64_load(const double *p)
{
    return f64_make(vld1q_f64(p), vld1q_f64(p + 2));
}
static inline void f64_store(double *p, vf64 v)
{
    vst1q_f64(p, v.lo);
    vst1q_f64(p + 2, v.hi);
}
static inline vf64 f64_load_tail(const double *p, size_t count, double fill)
{
    if (count >= 4)
        return f64_load(p);
    if (count >= 2)
        return f64_make(vld1q_f64(p), f64x2_load_partial(p + 2, count - 2, fill));
    return f64_make(f64x2_load_partial(p, count, fill), vdupq_n_f64(fill));
}
static inline void f64_store_tail(double *p, vf64 v, size_t count)
{
    if (count >= 4) {
        f64_store(p, v);
        return;
    }
    if (count >= 2) {
        vst1q_f64(p, v.lo);
        if (count == 3)
            vst1q_lane_f64(p + 2, v.hi, 0);
    } else if (count == 1) {
        vst1q_lane_f64(p, v.lo, 0);
    }
}
/* Plain stores: see f32_stream. */
static inline void f64_stream(double *p, vf64 v)
{
    f64_store(p, v);
}
static inline void f64_stream_fence(void)
{
}
static inline vf64 f64_keep_nan(vf64 flag, vf64 x)
{
    return f64_make(vbslq_f64(vceqq_f64(x.lo, x.lo), flag.lo, x.lo), vbslq_f64(vceqq_f64(x.hi, x.hi), flag.hi, x.hi));
}
static inline int f64_any_nan(vf64 v)
{
    const uint64x2_t ordered = vandq_u64(vceqq_f64(v.lo, v.lo), vceqq_f64(v.hi, v.hi));
    return (vgetq_lane_u64(ordered, 0) & vgetq_lane_u64(ordered, 1)) == 0;
}
static inline vf64 f64_add(vf64 a, vf64 b)
{
    return f64_make(vaddq_f64(a.lo, b.lo), vaddq_f64(a.hi, b.hi));
}
static inline vf64 f64_sub(vf64 a, vf64 b)
{
    return f64_make(vsubq_f64(a.lo, b.lo), vsubq_f64(a.hi, b.hi));
}
static inline vf64 f64_mul(vf64 a, vf64 b)
{
    return f64_make(vmulq_f64(a.lo, b.lo), vmulq_f64(a.hi, b.hi));
}
static inline vf64 f64_fmadd(vf64 a, vf64 b, vf64 c)
{
    return f64_make(vfmaq_f64(c.lo, a.lo, b.lo), vfmaq_f64(c.hi, a.hi, b.hi));
}
static inline vf64 f64_max(vf64 a, vf64 b)
{
    return f64_make(f64x2_max(a.lo, b.lo), f64x2_max(a.hi, b.hi));
}
static inline vf64 f64_min(vf64 a, vf64 b)
{
    return f64_make(f64x2_min(a.lo, b.lo), f64x2_min(a.hi, b.hi));
}
static inline vf64 f64_neg(vf64 a)
{
    return f64_make(vnegq_f64(a.lo), vnegq_f64(a.hi));
}
static inline float64x2_t f64x2_one_where_below_zero(float64x2_t f)
{
    return vreinterpretq_f64_u64(vandq_u64(vcltzq_f64(f), vreinterpretq_u64_f64(vdupq_n_f64(1.0))));
}
static inline void f64_wrap_below_zero(vf64 *f, vf64 *k)
{
    const vf64 one_where_below = f64_make(f64x2_one_where_below_zero(f->lo), f64x2_one_where_below_zero(f->hi));
    *f = f64_add(*f, one_where_below);
    *k = f64_sub(*k, one_where_below);
}
static inline vf64 f64_floor(vf64 a)
{
    return f64_make(vrndmq_f64(a.lo), vrndmq_f64(a.hi));
}
static inline unsigned f64_finite_lanes(vf64 v)
{
    return u64x2_lane_bits(vceqzq_f64(vsubq_f64(v.lo, v.lo))) |
           (u64x2_lane_bits(vceqzq_f64(vsubq_f64(v.hi, v.hi))) << 2);
}
static inline unsigned f64_lanes_below(vf64 a, vf64 b)
{
    return u64x2_lane_bits(vcltq_f64(a.lo, b.lo)) | (u64x2_lane_bits(vcltq_f64(a.hi, b.hi)) << 2);
}
static inline vf64 f64_zero_below(vf64 value, vf64 x, vf64 threshold)
{
    return f64_make(vreinterpretq_f64_u64(vandq_u64(vreinterpretq_u64_f64(value.lo), vcgeq_f64(x.lo, threshold.lo))),
                    vreinterpretq_f64_u64(vandq_u64(vreinterpretq_u64_f64(value.hi), vcgeq_f64(x.hi, threshold.hi))));
}
/* 2^k for integral k in [-1022, 1023]: k + 1023 lands in the low mantissa
 * bits of 1.5 * 2^52 + k + 1023, and a shift moves it to the exponent. */
static inline float64x2_t f64x2_pow2(float64x2_t k)
{
    const float64x2_t shifted = vaddq_f64(k, vdupq_n_f64(6755399441055744.0 + 1023.0));
    return vreinterpretq_f64_u64(vshlq_n_u64(vreinterpretq_u64_f64(shifted), 52));
}
/* FMAX / FMIN clamps: see f32x4_scale_pow2. */
static inline float64x2_t f64x2_scale_pow2(float64x2_t p, float64x2_t k)
{
    k = vminq_f64(vmaxq_f64(k, vdupq_n_f64(-2000.0)), vdupq_n_f64(2046.0));
    const float64x2_t k1 = vminq_f64(vmaxq_f64(k, vdupq_n_f64(-1000.0)), vdupq_n_f64(1023.0));
    const float64x2_t k2 = vsubq_f64(k, k1);
    return vmulq_f64(vmulq_f64(p, f64x2_pow2(k1)), f64x2_pow2(k2));
}
static inline vf64 f64_scale_pow2(vf64 p, vf64 k)
{
    return f64_make(f64x2_scale_pow2(p.lo, k.lo), f64x2_scale_pow2(p.hi, k.hi));
}
/* Lane j with lane j + 2, then lane 0 with lane 1 (vec_avx2.h's tree). */
static inline double f64_reduce_max(vf64 v)
{
    const float64x2_t m = f64x2_max(v.lo, v.hi);
    return vgetq_lane_f64(f64x2_max(m, vdupq_laneq_f64(m, 1)), 0);
}
static inline double f64_reduce_min(vf64 v)
{
    const float64x2_t m = f64x2_min(v.lo, v.hi);
    return vgetq_lane_f64(f64x2_min(m, vdupq_laneq_f64(m, 1)), 0);
}
/* Lane 0 of the sum of the lanes in a fixed tree: lane j with lane j + 2,
 * then + 1 (see f32_butterfly_sum). */
static inline double f64_butterfly_sum(vf64 v)
{
    const float64x2_t m = vaddq_f64(v.lo, v.hi);
    return vgetq_lane_f64(m, 0) + vgetq_lane_f64(m, 1);
}
static inline double f64_reduce_add(vf64 v)
{
    return f64_butterfly_sum(v);
}
/* m[i] lane j <-> m[j] lane i: four 2 x 2 blocks (8 shuffles). */
static inline void f64_transpose(vf64 m[4])
{
    const float64x2_t a0 = vtrn1q_f64(m[0].lo, m[1].lo), a1 = vtrn2q_f64(m[0].lo, m[1].lo);
    const float64x2_t b0 = vtrn1q_f64(m[0].hi, m[1].hi), b1 = vtrn2q_f64(m[0].hi, m[1].hi);
    const float64x2_t c0 = vtrn1q_f64(m[2].lo, m[3].lo), c1 = vtrn2q_f64(m[2].lo, m[3].lo);
    const float64x2_t d0 = vtrn1q_f64(m[2].hi, m[3].hi), d1 = vtrn2q_f64(m[2].hi, m[3].hi);
    m[0] = f64_make(a0, c0);
    m[1] = f64_make(a1, c1);
    m[2] = f64_make(b0, d0);
    m[3] = f64_make(b1, d1);
}

/* ------------------------------------------ f32 <-> f64, for compound.h -- */

/* The first / last F64_LANES lanes of v as doubles (exact). */
static inline vf64 f32_widen_low(vf32 v)
{
    return f64_make(vcvt_f64_f32(vget_low_f32(v.lo)), vcvt_high_f64_f32(v.lo));
}
static inline vf64 f32_widen_high(vf32 v)
{
    return f64_make(vcvt_f64_f32(vget_low_f32(v.hi)), vcvt_high_f64_f32(v.hi));
}
/* low's lanes then high's, each rounded to float. */
static inline vf32 f32_narrow(vf64 low, vf64 high)
{
    return f32_make(vcvt_high_f32_f64(vcvt_f32_f64(low.lo), low.hi), vcvt_high_f32_f64(vcvt_f32_f64(high.lo), high.hi));
}
static inline vf64 f64_div(vf64 a, vf64 b)
{
    return f64_make(vdivq_f64(a.lo, b.lo), vdivq_f64(a.hi, b.hi));
}
/* s = m 2^e for positive normal s, m in [0.75, 1.5) and e integral: m
 * taken from the bits in [1, 2), halved from 1.5 on (vec_avx2.h's steps:
 * every operation is exact, so the bits are the same). */
static inline float64x2_t f64x2_split_exponent(float64x2_t s, float64x2_t *e)
{
    const uint64x2_t bits = vreinterpretq_u64_f64(s);
    const float64x2_t mantissa = vreinterpretq_f64_u64(
        vorrq_u64(vandq_u64(bits, vdupq_n_u64(0x000FFFFFFFFFFFFFull)), vdupq_n_u64(0x3FF0000000000000ull)));
    const float64x2_t exponent = vsubq_f64(vcvtq_f64_u64(vshrq_n_u64(bits, 52)), vdupq_n_f64(1023.0));
    const uint64x2_t big = vcgeq_f64(mantissa, vdupq_n_f64(1.5));
    *e = vaddq_f64(exponent, vreinterpretq_f64_u64(vandq_u64(big, vreinterpretq_u64_f64(vdupq_n_f64(1.0)))));
    return vbslq_f64(big, vmulq_f64(mantissa, vdupq_n_f64(0.5)), mantissa);
}
static inline void f64_split_exponent(vf64 s, vf64 *m, vf64 *e)
{
    float64x2_t e_lo, e_hi;
    const float64x2_t m_lo = f64x2_split_exponent(s.lo, &e_lo), m_hi = f64x2_split_exponent(s.hi, &e_hi);
    *m = f64_make(m_lo, m_hi);
    *e = f64_make(e_lo, e_hi);
}
/* add(...) over lanes[0 .. 3] of any type in a fixed order: pairs, then
 * their sums (the order of an f64 accumulator's lane totals, as on AVX2). */
#define F64_LANES_IN_ORDER(add, lanes) add(add((lanes)[0], (lanes)[1]), add((lanes)[2], (lanes)[3]))

#endif /* SOFTMAX_VEC_NEON_H */
