/*
 * simd_body.h -- the SIMD kernels, written once against the vector
 * vocabulary (vec_<isa>.h) and once for both data types. simd_kernels.h
 * includes it once per data type after defining:
 *
 *   T, WIDE          data type and the type that carries sums and per-row
 *                    constants (double for f32, long double for f64)
 *   V, LANES, P(op)  the vector type, its lane count, and the vocabulary's
 *                    name for `op` on it (f32_add, f64_add, ...)
 *   ACC              the vocabulary's wide accumulator type
 *   FN(name)         a name made unique per data type
 *   EXP_Q(f)         q(f) with 2^f = 1 + f * q(f) on [0, 1], a vector
 *                    polynomial with positive coefficients
 *   KEY_BIAS         a margin larger than the estimate's error (2^-14, 2^-36)
 *   EXP_FLOOR_ARG    exponent below which 2^u is 0 in T (160, 1100)
 *   OFFSET_LIMIT     largest |scale * log2(e) * max| the exact argument
 *                    reduction supports (2^22, 2^50)
 *   WIDE_LOG, WIDE_FLOOR, WIDE_LDEXP, WIDE_FABS   libm functions of WIDE
 *   NORMALIZE_SHIFT  the reciprocal of the sum is applied times 2^SHIFT and
 *                    the result scaled back, so that its low part never
 *                    underflows (64 for f32, 128 for f64)
 *   REF_LINES        the reference line kernels of T
 *   KERNELS_NAME     the exported softmax_kernels table
 *
 * THE EXPONENTIAL. Every kernel needs e_i = exp(scale * (x_i - max)). With
 * c = scale * log2(e) split as c_hi + c_lo (T values) and B = floor(c * max) - 1
 * an integer held exactly in T:
 *
 *     u_i = c * x_i - B,  k_i = floor(u_i),  f_i = u_i - k_i in [0, 1]
 *     f_i = fma(c_lo, x_i, fma(c_hi, x_i, -(B + k_i)))      (B + k_i exact)
 *     e_i = 2^k_i * p(f_i)                                   (scalef)
 *
 * c_hi * x_i is exact inside the fma and B + k_i is an exact integer, so f_i
 * carries an absolute error near 2^-p (p the precision of T) whatever the
 * size of scale * (x_i - max): the rounding of x_i - max and of the product
 * with scale, which costs ~|u| ulp in the textbook kernel, never happens.
 * The result is exp(scale * (x_i - max)) times 2^(c * max - B), a factor in
 * [2, 4) common to the whole row that cancels in the normalisation
 * (log-softmax takes it back out exactly). Inputs below the row's floor are clamped to it and
 * give exactly 0; -inf is such an input. Rows whose |c * max| exceeds
 * OFFSET_LIMIT, and every row the contract treats specially (NaN max, +-inf
 * max, scale 0 or +-inf), go to the reference line kernels.
 *
 * SUMS are carried in WIDE (f32: f64 lanes; f64: Kahan-compensated lanes)
 * over fixed blocks of BLOCK elements; block totals are added in block
 * order. The blocks never depend on the thread count, so neither do results.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

/* Elements per partial sum. A block of f32 is 16 KiB: it stays in L1 between
 * the two reads of the streaming regime. */
#define BLOCK ((size_t)4096)
/* Largest |max z| of a row with an added mask that the kernels take. */
#define ADD_REFERENCE_LIMIT 1024
#define WIDE_LN2 ((WIDE)0.6931471805599453094172321214581765680755L)
#define WIDE_LOG2E ((WIDE)1.442695040888963407359924681001892137L)
/* Exact split summation of exps (exp_block_any): grid 2^-16, runs of 32
 * iterations per accumulator. */
#define SPLIT_MAGIC 192.0
#define SPLIT_RUN 32
/* Rows whose data exceeds this stream: block summaries, then a writing
 * pass around the cache that rescales the exps kept in the workspace (up
 * to STORED_STREAM_BYTES) or computes them again (see stream_exps). Below
 * it rows stay in L2 between passes and are read from cache three times
 * with one exp per element. */
#define STREAM_BYTES ((size_t)1 << 20)

typedef struct FN(exp_args) {
    V x_floor;
    V c_hi;
    V c_lo;
    V neg_offset; /* -B */
} FN(exp_args);

/* Per-row constants, computed in WIDE. */
typedef struct FN(row_plan) {
    bool negate;       /* scale < 0: the kernels see -x and a positive c */
    T reference;       /* max x (min x when negated) */
    WIDE offset;       /* B, an integer */
    WIDE offset_error; /* c * reference' - B: log-softmax adds it back */
    T c_hi;
    T c_lo;
    T x_floor;
} FN(row_plan);

/* c * reference - offset, exact up to its last rounding to WIDE, from the
 * exact product c_hi * reference = p_hi + p_lo (p_hi - offset is exact: the
 * two are close). Log-softmax adds it back to every output, so an error here
 * would be an error everywhere (WIDE alone loses |c * reference| * 2^-64 for
 * f64). */
static inline WIDE FN(offset_remainder)(T c_hi, T c_lo, T reference, T offset)
{
    const T p_hi = c_hi * reference;
    const T p_lo = FMA_T(c_hi, reference, -p_hi);
    return ((WIDE)(p_hi - offset) + (WIDE)p_lo) + (WIDE)c_lo * (WIDE)reference;
}

/* The log of a row's true sum from the sum of its exps, which carry the
 * factor 2^remainder. */
static inline WIDE FN(log_sum_from)(WIDE sum, WIDE remainder)
{
    return WIDE_LOG(sum) - remainder * WIDE_LN2;
}

/* Fills the plan for a row whose reference element (max, or min for scale
 * < 0) is `reference`; false when the row must take the reference path. */
static bool FN(plan_row)(double scale, T reference, FN(row_plan) * plan)
{
    if (!(scale != 0) || isinf(scale) || !isfinite(reference))
        return false;
    WIDE c = (WIDE)scale * WIDE_LOG2E;
    plan->negate = c < 0;
    plan->reference = reference;
    T reference_seen = plan->negate ? -reference : reference;
    if (plan->negate)
        c = -c;
    if (!(c < (WIDE)1e30) || !(c > (WIDE)1e-30))
        return false;
    plan->c_hi = (T)c;
    plan->c_lo = (T)(c - (WIDE)plan->c_hi);
    const WIDE b = FN(offset_remainder)(plan->c_hi, plan->c_lo, reference_seen, 0);
    if (!(WIDE_FABS(b) < (WIDE)OFFSET_LIMIT))
        return false;
    /* B = floor(b) - 1 puts the common factor 2^(b - B) in [2, 4): every exp
     * is at least twice its true value, so an output in the normal range
     * never comes from an exp that flushed to zero. */
    plan->offset = WIDE_FLOOR(b) - 1;
    plan->offset_error = FN(offset_remainder)(plan->c_hi, plan->c_lo, reference_seen, (T)plan->offset);
    const WIDE c_effective = (WIDE)plan->c_hi + (WIDE)plan->c_lo;
    WIDE floor_value = (plan->offset - (WIDE)EXP_FLOOR_ARG) / c_effective;
    plan->x_floor = floor_value < -(WIDE)T_MAX ? (T)-INFINITY : (T)floor_value;
    return true;
}

static inline FN(exp_args) FN(broadcast_plan)(const FN(row_plan) * plan)
{
    FN(exp_args) args = {P(set1)(plan->x_floor), P(set1)(plan->c_hi), P(set1)(plan->c_lo), P(set1)((T)-plan->offset)};
    return args;
}

/* 2^(c * x - B) for one vector; NaN in, NaN out.
 *
 * Monotone by construction, which the exhaustive test confirms: the
 * estimate v is a monotone function of x (c_hi, c_lo > 0), so is k0 =
 * floor(v + KEY_BIAS); for a fixed k0 the reduced argument f0 is monotone
 * in x; the bias keeps f0 below 1, and an f0 below 0 moves to the cell
 * below (f0 + 1, k0 - 1), so (k, f) is lexicographically monotone with f in
 * [0, 1]. On [0, 1] the polynomial has positive coefficients and a positive
 * argument, so every Horner step is monotone; P(0) = 1 and P(1) = 2 (q(1)
 * rounds to exactly 1, checked when the coefficients were chosen) make the
 * cells meet in order. */
/* The exponential in parts: 2^(c x - B) = 2^k * (mantissa + residual)
 * exactly up to the polynomial and argument errors, with mantissa =
 * round(1 + f * q(f)) in [1, 2] and residual the exact rounding error of
 * that last step. Kernels that keep the residual round the output once, from
 * the unrounded exponential; rounding the exp first and the quotient next
 * would cost up to an extra ulp on every output, twice over through the sum. */
typedef struct FN(exp_parts) {
    V mantissa;
    V residual;
    V k;
} FN(exp_parts);

static inline FN(exp_parts) FN(exp_parts_of)(V x, const FN(exp_args) * a)
{
    const V one = P(set1)((T)1);
    V clamped = P(max)(a->x_floor, x);
    V estimate = P(fmadd)(a->c_lo, clamped, P(fmadd)(a->c_hi, clamped, a->neg_offset));
    V k = P(floor)(P(add)(estimate, P(set1)(KEY_BIAS)));
    V f = P(fmadd)(a->c_lo, clamped, P(fmadd)(a->c_hi, clamped, P(sub)(a->neg_offset, k)));
    P(wrap_below_zero)(&f, &k);
    V q = EXP_Q(f);
    FN(exp_parts) parts;
    parts.mantissa = P(fmadd)(q, f, one);
    parts.residual = P(fmadd)(q, f, P(sub)(one, parts.mantissa));
    parts.k = k;
    return parts;
}

/* The exponential rounded to T. */
static inline V FN(exp_eval)(V x, const FN(exp_args) * a)
{
    FN(exp_parts) parts = FN(exp_parts_of)(x, a);
    return P(scale_pow2)(parts.mantissa, parts.k);
}

/* ------------------------------------------------------------------ scans */

/* Exclusion masks read by the kernels themselves (see excluding_row): an
 * excluded element is read as `excluded` (-inf, or +inf for a negative
 * scale, which the kernels negate), so it gets probability 0. Pointers are
 * NULL when absent and index the row like x. Only the f32 paths define
 * P(exclude); elsewhere the loads are plain. */
typedef struct FN(exclusion) {
    const uint8_t *keep;       /* a zero byte excludes */
    const T *mask;             /* a -inf entry excludes */
    const uint16_t *half_mask; /* an entry equal to half_minus_inf excludes */
    uint16_t half_minus_inf;   /* 0xff80 (bf16) or 0xfc00 (f16) */
    T excluded;
    size_t kept; /* elements from kept on are excluded (a causal mask) */
    /* An additive mask (ADD_MASK: add_mask; ADD_HALF: add_half, bf16 if
     * add_bf16, else f16): the kernels see z = scale * x + mask as a high
     * part (what they read) and a low part (see FN(adding)), with the scale
     * split as scale_hi + scale_lo, and run with scale 1. */
    const T *add_mask;
    const uint16_t *add_half;
    int add_bf16;
    T scale_hi;
    T scale_lo;
    /* ALiBi (ADD_SLOPE): the bias slope * j, slope = slope_hi + slope_lo. */
    T slope_hi;
    T slope_lo;
} FN(exclusion);

/* Which exclusions a row has, a compile-time constant where the bodies
 * below are specialised (excluding_row): a zero test of a NULL pointer per
 * vector costs more than the exclusion itself. */
#ifndef EXCLUDE_KEEP
#define EXCLUDE_KEEP 1   /* ex->keep */
#define EXCLUDE_MASK 2   /* ex->mask */
#define EXCLUDE_HALF 4   /* ex->half_mask */
#define EXCLUDE_PREFIX 8 /* elements from ex->kept on */
#define ADD_MASK 64      /* ex->add_mask */
#define ADD_HALF 128     /* ex->add_half */
#define ADD_SLOPE 256    /* slope * j, j the element's index (ALiBi) */
#define ADDING (ADD_MASK | ADD_HALF | ADD_SLOPE)
#endif

/* x (elements i .. i + count of the row) as the kernels see it. */
static SOFTMAX_FORCE_INLINE V FN(excluding)(V x, const FN(exclusion) * ex, int kinds, size_t i, size_t count)
{
#if defined(HALF_ROWS)
    if ((kinds & (EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_HALF | EXCLUDE_PREFIX)) != 0) {
        const size_t limit = !(kinds & EXCLUDE_PREFIX) ? count
                             : i >= ex->kept           ? 0
                             : ex->kept - i < count    ? ex->kept - i
                                                       : count;
        const uint8_t *keep = (kinds & EXCLUDE_KEEP) && ex->keep != NULL ? ex->keep + i : NULL;
        const T *mask = (kinds & EXCLUDE_MASK) && ex->mask != NULL ? ex->mask + i : NULL;
        const uint16_t *half_mask = (kinds & EXCLUDE_HALF) && ex->half_mask != NULL ? ex->half_mask + i : NULL;
        return P(exclude)(x, keep, mask, half_mask, ex->half_minus_inf, P(set1)(ex->excluded), limit);
    }
#endif
    (void)ex, (void)kinds, (void)i, (void)count;
    return x;
}

/* The element type of x: T, or half-precision bits widened as they are
 * read (f32 paths only; the widening is exact). */
#ifndef SOURCE_BF16
#define SOURCE_BF16 16
#define SOURCE_F16 32
#endif

/* The address of element i of x (for prefetches). */
static SOFTMAX_FORCE_INLINE const void *FN(source_at)(const void *x, int kinds, size_t i)
{
    if (kinds & (SOURCE_BF16 | SOURCE_F16))
        return (const uint16_t *)x + i;
    return (const T *)x + i;
}

/* count (<= LANES) half-precision values widened, `fill` in the other
 * lanes. */
static SOFTMAX_FORCE_INLINE V FN(widen_tail)(const uint16_t *h, int bf16, size_t count, T fill)
{
    _Alignas(64) T widened[LANES];
    for (size_t k = 0; k < LANES; k++)
        widened[k] = k >= count ? fill : bf16 ? softmax_bf16_to_float(h[k]) : softmax_f16_to_float(h[k]);
    return P(load)(widened);
}

/* Lane l holds l (the index of an element within its vector). */
static const T FN(lane_index)[16] __attribute__((aligned(64))) = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* The logits z = scale * x + bias of elements i .. i + count, the bias a
 * mask (which reads -inf past count, where x reads 0) or slope * j, as z =
 * high + *low: high the rounded sum, *low the rest, from exact products
 * (fmas) and an exact two-sum. |low| <= 2^-23 |z|; it is 0 where high is
 * -inf or NaN. The exps take it in through their residual (e^z = e^high (1
 * + low), see exp_block_excluding), so that z is never rounded before the
 * exp: rounding it would cost |z| * 2^-24 in the argument, 40 ulp at z =
 * -80. Exclusions (keep, a 0 / -inf mask, prefix) apply to high
 * afterwards. */
static SOFTMAX_FORCE_INLINE V FN(adding)(V x, const FN(exclusion) * ex, int kinds, size_t i, size_t count, V *low)
{
#if defined(HALF_ROWS)
    if (kinds & ADDING) {
        const V scale_hi = P(set1)(ex->scale_hi);
        const V product = P(mul)(scale_hi, x);
        V rest = P(fmadd)(P(set1)(ex->scale_lo), x, P(fmadd)(scale_hi, x, P(neg)(product)));
        V bias;
        if (kinds & ADD_SLOPE) {
            const V j = P(add)(P(set1)((T)i), P(load)(FN(lane_index)));
            const V slope_hi = P(set1)(ex->slope_hi);
            bias = P(mul)(slope_hi, j);
            rest = P(add)(rest, P(fmadd)(P(set1)(ex->slope_lo), j, P(fmadd)(slope_hi, j, P(neg)(bias))));
        } else if (kinds & ADD_MASK) {
            bias = count == LANES ? P(load)(ex->add_mask + i) : P(load_tail)(ex->add_mask + i, count, (T)-INFINITY);
        } else {
            bias = count == LANES ? P(load_half)(ex->add_half + i, ex->add_bf16)
                                  : FN(widen_tail)(ex->add_half + i, ex->add_bf16, count, (T)-INFINITY);
        }
        const V high = P(add)(product, bias);
        const V bias_seen = P(sub)(high, product);
        const V error = P(add)(P(sub)(product, P(sub)(high, bias_seen)), P(sub)(bias, bias_seen));
        V seen = FN(excluding)(high, ex, kinds, i, count);
        if ((kinds & ADD_SLOPE) && count < LANES)
            seen = P(exclude)(seen, NULL, NULL, NULL, 0, P(set1)((T)-INFINITY), count);
        *low = P(zero_below)(P(add)(error, rest), seen, P(set1)(-T_MAX));
        return seen;
    }
#endif
    *low = P(set1)((T)0);
    return FN(excluding)(x, ex, kinds, i, count);
}

/* Elements i .. i + LANES of x as the kernels see them (the high part of
 * the logits where a mask is added: *low gets the rest). */
static SOFTMAX_FORCE_INLINE V FN(read_pair)(const void *x, const FN(exclusion) * ex, int kinds, size_t i, V *low)
{
    V v;
#if defined(HALF_ROWS)
    if (kinds & (SOURCE_BF16 | SOURCE_F16))
        v = P(load_half)((const uint16_t *)x + i, (kinds & SOURCE_BF16) != 0);
    else
#endif
        v = P(load)((const T *)x + i);
    return FN(adding)(v, ex, kinds, i, LANES, low);
}

static SOFTMAX_FORCE_INLINE V FN(read)(const void *x, const FN(exclusion) * ex, int kinds, size_t i)
{
    V low;
    return FN(read_pair)(x, ex, kinds, i, &low);
}

/* The first count (< LANES) elements from i, `fill` in the other lanes (an
 * added mask fills them with -inf itself). */
static SOFTMAX_FORCE_INLINE V FN(read_tail_pair)(const void *x, const FN(exclusion) * ex, int kinds, size_t i,
                                                 size_t count, T fill, V *low)
{
    V v;
#if defined(HALF_ROWS)
    if (kinds & (SOURCE_BF16 | SOURCE_F16))
        v = FN(widen_tail)((const uint16_t *)x + i, (kinds & SOURCE_BF16) != 0, count, fill);
    else
#endif
        v = P(load_tail)((const T *)x + i, count, (kinds & ADDING) ? (T)0 : fill);
    return FN(adding)(v, ex, kinds, i, count, low);
}

static SOFTMAX_FORCE_INLINE V FN(read_tail)(const void *x, const FN(exclusion) * ex, int kinds, size_t i, size_t count,
                                            T fill)
{
    V low;
    return FN(read_tail_pair)(x, ex, kinds, i, count, fill, &low);
}

/* The element type of an output: T, or half-precision bits narrowed as
 * they are stored (f32 paths only). The narrowing is the one of
 * narrow_half (round to nearest even, NaN kept quiet) and ignores
 * flush-to-zero: the hardware f16 conversion never flushes, the bf16 one is
 * integer arithmetic. Under the kernels' flush-to-zero the f32 values
 * themselves are what the f32 path computes, so a half output stored here
 * is bit for bit the f32 output narrowed. The vector stores take no NaN
 * (rows with one are filled through fill_out). */
#ifndef DEST_BF16
#define DEST_BF16 512
#define DEST_F16 1024
#define DEST_HALF (DEST_BF16 | DEST_F16)
#endif

static SOFTMAX_FORCE_INLINE void FN(write)(void *y, int kinds, size_t i, V v)
{
#if defined(HALF_ROWS)
    if (kinds & DEST_HALF) {
        P(store_half)((uint16_t *)y + i, v, (kinds & DEST_BF16) != 0);
        return;
    }
#endif
    (void)kinds;
    P(store)((T *)y + i, v);
}

/* The same with a streaming store, element i at an address that
 * FN(stream_aligned) accepts. */
static SOFTMAX_FORCE_INLINE void FN(write_stream)(void *y, int kinds, size_t i, V v)
{
#if defined(HALF_ROWS)
    if (kinds & DEST_HALF) {
        P(stream_half)((uint16_t *)y + i, v, (kinds & DEST_BF16) != 0);
        return;
    }
#endif
    (void)kinds;
    P(stream)((T *)y + i, v);
}

/* FN(write_stream) if `stream`, else FN(write). */
static SOFTMAX_FORCE_INLINE void FN(write_as)(void *y, int kinds, size_t i, V v, bool stream)
{
    if (stream)
        FN(write_stream)(y, kinds, i, v);
    else
        FN(write)(y, kinds, i, v);
}

/* Whether element i of y is where a vector's streaming store may begin. */
static SOFTMAX_FORCE_INLINE bool FN(stream_aligned)(const void *y, int kinds, size_t i)
{
    const size_t size = (kinds & DEST_HALF) ? sizeof(uint16_t) : sizeof(T);
    return ((uintptr_t)y + i * size) % (LANES * size) == 0;
}

/* The first count (< LANES) lanes of v to elements i .. i + count. */
static SOFTMAX_FORCE_INLINE void FN(write_tail)(void *y, int kinds, size_t i, V v, size_t count)
{
#if defined(HALF_ROWS)
    if (kinds & DEST_HALF) {
        _Alignas(64) T values[LANES];
        P(store)(values, v);
        uint16_t *h = (uint16_t *)y + i;
        for (size_t k = 0; k < count; k++)
            h[k] = (kinds & DEST_BF16) ? softmax_float_to_bf16(values[k]) : softmax_float_to_f16(values[k]);
        return;
    }
#endif
    (void)kinds;
    P(store_tail)((T *)y + i, v, count);
}

static SOFTMAX_FORCE_INLINE void FN(fill_out)(void *y, int kinds, size_t begin, size_t end, T value)
{
#if defined(HALF_ROWS)
    if (kinds & DEST_HALF) {
        const uint16_t h = (kinds & DEST_BF16) ? softmax_float_to_bf16(value) : softmax_float_to_f16(value);
        for (size_t i = begin; i < end; i++)
            ((uint16_t *)y)[i] = h;
        return;
    }
#endif
    (void)kinds;
    for (size_t i = begin; i < end; i++)
        ((T *)y)[i] = value;
}

/* Asks for the cache lines of p[0 .. count) (never faults). */
static inline void FN(prefetch_span)(const T *p, size_t count)
{
    for (size_t i = 0; i < count; i += 64 / sizeof(T))
        vec_prefetch(p + i);
}

/* Rows ahead that a causal row's prefix is asked for (1 and 2 measured the
 * same; 2 leaves more time for the short rows). */
#ifndef ROW_AHEAD
#define ROW_AHEAD 2
#endif

static SOFTMAX_FORCE_INLINE T FN(max_body)(const void *x, size_t n, const FN(exclusion) * ex, int kinds)
{
    V m0 = P(set1)((T)-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    /* The running maximum goes second so that a NaN element is skipped: rows
     * with NaN are caught later by their NaN sum. */
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        m0 = P(max)(FN(read)(x, ex, kinds, i), m0);
        m1 = P(max)(FN(read)(x, ex, kinds, i + LANES), m1);
        m2 = P(max)(FN(read)(x, ex, kinds, i + 2 * LANES), m2);
        m3 = P(max)(FN(read)(x, ex, kinds, i + 3 * LANES), m3);
    }
    for (; i + LANES <= n; i += LANES)
        m0 = P(max)(FN(read)(x, ex, kinds, i), m0);
    if (i < n)
        m1 = P(max)(FN(read_tail)(x, ex, kinds, i, n - i, (T)-INFINITY), m1);
    return P(reduce_max)(P(max)(P(max)(m0, m1), P(max)(m2, m3)));
}

static SOFTMAX_FORCE_INLINE T FN(min_body)(const void *x, size_t n, const FN(exclusion) * ex, int kinds)
{
    V m0 = P(set1)((T)INFINITY), m1 = m0;
    size_t i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        m0 = P(min)(FN(read)(x, ex, kinds, i), m0);
        m1 = P(min)(FN(read)(x, ex, kinds, i + LANES), m1);
    }
    for (; i + LANES <= n; i += LANES)
        m0 = P(min)(FN(read)(x, ex, kinds, i), m0);
    if (i < n)
        m1 = P(min)(FN(read_tail)(x, ex, kinds, i, n - i, (T)INFINITY), m1);
    return P(reduce_min)(P(min)(m0, m1));
}

/* The element the row's plan is built on: the maximum (the minimum for a
 * negative scale) of x as the kernels read it. */
static SOFTMAX_FORCE_INLINE T FN(reference_reading)(const void *x, size_t n, double scale, const FN(exclusion) * ex,
                                                    int kinds)
{
    return scale < 0 ? FN(min_body)(x, n, ex, kinds) : FN(max_body)(x, n, ex, kinds);
}

static inline T FN(reference_of)(const T *x, size_t n, double scale)
{
    return FN(reference_reading)(x, n, scale, NULL, 0);
}

/* ----------------------------------------------------- exp blocks and sums */

/* Writes 2^(c x_i - B) rounded for i in [begin, end) to y and its residual
 * (scaled alike) to residuals, unless they are NULL, and returns the sum of
 * the unrounded values. One block at most. With prefetch_ahead > 0, the
 * data that many elements ahead (the next block, or the next row) is fetched
 * from memory while this block is computed from the cache, so that the max
 * pass that reads it next finds it there. */
/* e rounded to the grid 2^-16 (exact for 0 <= e < 64): the high part of the
 * split summation of exps. */
static inline V FN(grid_high)(V e)
{
    const V magic = P(set1)((T)SPLIT_MAGIC);
    return P(sub)(P(add)(e, magic), magic);
}

/* e^(high + low) = 2^k (mantissa + residual) (1 + low) to within low^2 / 2,
 * below 2^-33 for |z| <= ADD_REFERENCE_LIMIT + 120 (outputs in the normal
 * range). The product goes into the mantissa, its rounding error into the
 * residual, which stays below half an ulp of the mantissa: a residual that
 * flushes to zero in a tiny exp then costs what it costs without a mask. */
static SOFTMAX_FORCE_INLINE void FN(take_low)(FN(exp_parts) * p, V low)
{
    const V mantissa = P(fmadd)(p->mantissa, low, p->mantissa);
    p->residual = P(add)(p->residual, P(fmadd)(p->mantissa, low, P(sub)(p->mantissa, mantissa)));
    p->mantissa = mantissa;
}

static SOFTMAX_FORCE_INLINE WIDE FN(exp_block_excluding)(const void *x, T *y, T *residuals, size_t begin, size_t end,
                                                         const FN(exp_args) * a, bool negate, size_t prefetch_ahead,
                                                         const FN(exclusion) * ex, int kinds)
{
    /* The exps (all below 5) are summed in T without rounding: each is split
     * at the grid 2^-16 (hi = (e + 192) - 192), the hi parts of at most
     * SPLIT_RUN vectors per lane add up exactly (< 2^8 on a 2^-16 grid: 24
     * bits), and the small remainders (with the residuals) add up with an
     * error below 2^-29 of the sum. Every SPLIT_RUN iterations both go to
     * the wide accumulator. This replaces a conversion to f64 per vector. */
    ACC wide = P(acc_zero)();
    V hi0 = P(set1)(0), hi1 = hi0, lo = hi0;
    size_t run = 0;
    size_t i = begin;
    for (; i + 2 * LANES <= end; i += 2 * LANES) {
        if (prefetch_ahead) {
            vec_prefetch(FN(source_at)(x, kinds, i + prefetch_ahead));
            vec_prefetch(FN(source_at)(x, kinds, i + prefetch_ahead + LANES));
        }
        V low0, low1;
        V x0 = FN(read_pair)(x, ex, kinds, i, &low0), x1 = FN(read_pair)(x, ex, kinds, i + LANES, &low1);
        if (negate) {
            x0 = P(neg)(x0);
            x1 = P(neg)(x1);
        }
        FN(exp_parts) p0 = FN(exp_parts_of)(x0, a), p1 = FN(exp_parts_of)(x1, a);
        if (kinds & ADDING) {
            FN(take_low)(&p0, low0);
            FN(take_low)(&p1, low1);
        }
        V e0 = P(scale_pow2)(p0.mantissa, p0.k), e1 = P(scale_pow2)(p1.mantissa, p1.k);
        V r0 = P(scale_pow2)(p0.residual, p0.k), r1 = P(scale_pow2)(p1.residual, p1.k);
        if (y) {
            P(store)(y + i, e0);
            P(store)(y + i + LANES, e1);
        }
        if (residuals) {
            P(store)(residuals + i, r0);
            P(store)(residuals + i + LANES, r1);
        }
        V h0 = FN(grid_high)(e0), h1 = FN(grid_high)(e1);
        hi0 = P(add)(hi0, h0);
        hi1 = P(add)(hi1, h1);
        lo = P(add)(lo, P(add)(P(sub)(e0, h0), P(sub)(e1, h1)));
        lo = P(add)(lo, P(add)(r0, r1));
        if (++run == SPLIT_RUN) {
            P(acc_add)(&wide, hi0);
            P(acc_add)(&wide, hi1);
            P(acc_add)(&wide, lo);
            hi0 = hi1 = lo = P(set1)(0);
            run = 0;
        }
    }
    for (; i < end; i += LANES) {
        size_t count = end - i < LANES ? end - i : LANES;
        /* The fill becomes -inf once negated or not: its exp is 0. */
        V low0;
        V x0 = FN(read_tail_pair)(x, ex, kinds, i, count, negate ? (T)INFINITY : (T)-INFINITY, &low0);
        if (negate)
            x0 = P(neg)(x0);
        FN(exp_parts) p0 = FN(exp_parts_of)(x0, a);
        if (kinds & ADDING)
            FN(take_low)(&p0, low0);
        V e0 = P(scale_pow2)(p0.mantissa, p0.k), r0 = P(scale_pow2)(p0.residual, p0.k);
        if (y)
            P(store_tail)(y + i, e0, count);
        if (residuals)
            P(store_tail)(residuals + i, r0, count);
        P(acc_add)(&wide, e0);
        lo = P(add)(lo, r0);
    }
    P(acc_add)(&wide, hi0);
    P(acc_add)(&wide, hi1);
    P(acc_add)(&wide, lo);
    return (WIDE)P(acc_total)(&wide);
}

static inline WIDE FN(exp_block_any)(const T *x, T *y, T *residuals, size_t begin, size_t end, const FN(exp_args) * a,
                                     bool negate, size_t prefetch_ahead)
{
    return FN(exp_block_excluding)(x, y, residuals, begin, end, a, negate, prefetch_ahead, NULL, 0);
}

static WIDE FN(exp_blocks)(const T *x, T *y, T *residuals, size_t block_begin, size_t block_end, size_t n,
                           const FN(exp_args) * a, bool negate, size_t prefetch_ahead)
{
    WIDE total = 0;
    for (size_t b = block_begin; b < block_end; b++) {
        size_t begin = b * BLOCK;
        size_t end = begin + BLOCK < n ? begin + BLOCK : n;
        total += FN(exp_block_any)(x, y, residuals, begin, end, a, negate, prefetch_ahead);
    }
    return total;
}

/* The two halves of 1/sum in T: y = e * hi + e * lo loses half an ulp once. */
typedef struct FN(reciprocal) {
    T hi;
    T lo;
} FN(reciprocal);

/* 2^-NORMALIZE_SHIFT and 2^NORMALIZE_SHIFT, exactly (constants: no libm
 * call in the per-row path). */
#define UNSCALE ((T)NORMALIZE_UNSCALE)

static FN(reciprocal) FN(reciprocal_of)(WIDE sum)
{
    WIDE r = ((WIDE)1 / sum) * (WIDE)NORMALIZE_SCALE;
    FN(reciprocal) result;
    result.hi = (T)r;
    result.lo = (T)(r - (WIDE)result.hi);
    return result;
}

/* (e + residual) * r, rounded once, from the scaled halves of r. */
static inline V FN(apply_reciprocal)(V e, V residual, V hi, V lo)
{
    return P(mul)(P(fmadd)(e, hi, P(fmadd)(residual, hi, P(mul)(e, lo))), P(set1)(UNSCALE));
}

/* The same from the exponential's parts: the scaling by 2^k comes last, so
 * no intermediate is ever tiny. */
static inline V FN(apply_reciprocal_parts)(FN(exp_parts) e, V hi, V lo)
{
    V product = P(fmadd)(e.mantissa, hi, P(fmadd)(e.residual, hi, P(mul)(e.mantissa, lo)));
    return P(scale_pow2)(product, P(sub)(e.k, P(set1)((T)NORMALIZE_SHIFT)));
}

/* out = (e + residual) * r for the exps e and their residuals; out may be e
 * (kinds without DEST_HALF). */
static SOFTMAX_FORCE_INLINE void FN(normalize_into)(void *out, int kinds, const T *e, const T *residuals, size_t begin,
                                                    size_t end, FN(reciprocal) r)
{
    const V hi = P(set1)(r.hi), lo = P(set1)(r.lo);
    size_t i = begin;
    /* A half-precision out is a separate array that nothing here reads
     * again: streaming stores spare each of its cache lines the read for
     * ownership that an ordinary store waits for (bf16 1024x4096, single
     * thread: 0.50 -> 0.45 ns/element; the same in log_output_excluding
     * measured slower, so it stores plainly). */
    const bool stream = (kinds & DEST_HALF) != 0;
    for (; stream && i < end && !FN(stream_aligned)(out, kinds, i); i++)
        FN(write_tail)
    (out, kinds, i, FN(apply_reciprocal)(P(load_tail)(e + i, 1, 0), P(load_tail)(residuals + i, 1, 0), hi, lo), 1);
    for (; i + LANES <= end; i += LANES) {
        const V value = FN(apply_reciprocal)(P(load)(e + i), P(load)(residuals + i), hi, lo);
        FN(write_as)(out, kinds, i, value, stream);
    }
    if (stream)
        P(stream_fence)();
    if (i < end)
        FN(write_tail)
    (out, kinds, i,
     FN(apply_reciprocal)(P(load_tail)(e + i, end - i, 0), P(load_tail)(residuals + i, end - i, 0), hi, lo), end - i);
}

static void FN(normalize)(T *y, const T *residuals, size_t begin, size_t end, FN(reciprocal) r)
{
    FN(normalize_into)(y, 0, y, residuals, begin, end, r);
}

static void FN(fill)(T *y, size_t begin, size_t end, T value)
{
    FN(fill_out)(y, 0, begin, end, value);
}

/* ------------------------------------------------------ streaming regime */

/* Per block: its own plan (from its own max) and the sum of its exps. The
 * block is read from memory once and from L1 once. With y and residuals
 * (not NULL), the block's exps are stored there, relative to the block's
 * own offset (see rescale). */
typedef struct FN(block_summary) {
    T reference;
    bool usable; /* false: a special value or an unsupported offset */
    WIDE offset;
    WIDE sum;
} FN(block_summary);

/* x of T or, with SOURCE_BF16 / SOURCE_F16 in kinds, half-precision bits
 * widened as they are read. */
static SOFTMAX_FORCE_INLINE FN(block_summary)
    FN(summarize_block_reading)(const void *x, int kinds, T *y, T *residuals, size_t begin, size_t end, double scale)
{
    FN(block_summary) s = {0, false, 0, 0};
    const void *block = FN(source_at)(x, kinds, begin);
    s.reference = FN(reference_reading)(block, end - begin, scale, NULL, kinds);
    if (s.reference == (scale < 0 ? (T)INFINITY : (T)-INFINITY)) {
        /* Every element masked (or NaN, which the scan skips): the block
         * contributes nothing, or NaN. */
        V nan_flag = P(set1)(0);
        for (size_t i = begin; i < end; i += LANES) {
            size_t count = end - i < LANES ? end - i : LANES;
            nan_flag = P(keep_nan)(nan_flag, FN(read_tail)(x, NULL, kinds, i, count, 0));
        }
        s.usable = true;
        s.sum = P(any_nan)(nan_flag) ? (WIDE)NAN : 0;
        s.offset = 0;
        if (y != NULL) {
            FN(fill)(y, begin, end, (T)0);
            FN(fill)(residuals, begin, end, (T)0);
        }
        return s;
    }
    FN(row_plan) plan;
    if (!FN(plan_row)(scale, s.reference, &plan))
        return s;
    FN(exp_args) a = FN(broadcast_plan)(&plan);
    s.usable = true;
    s.offset = plan.offset;
    s.sum = FN(exp_block_excluding)(x, y, residuals, begin, end, &a, plan.negate, BLOCK, NULL, kinds);
    return s;
}

static FN(block_summary) FN(summarize_block)(const T *x, T *y, T *residuals, size_t begin, size_t end, double scale)
{
    return FN(summarize_block_reading)(x, 0, y, residuals, begin, end, scale);
}

/* Combines block summaries in block order: the row's reference and sum,
 * the sum rescaled to the row's offset by exact powers of two. */
static bool FN(combine_summaries)(const FN(block_summary) * blocks, size_t count, double scale, FN(row_plan) * plan,
                                  WIDE *sum)
{
    T reference = scale < 0 ? (T)INFINITY : (T)-INFINITY;
    for (size_t b = 0; b < count; b++) {
        if (!blocks[b].usable)
            return false;
        if (scale < 0 ? blocks[b].reference < reference : blocks[b].reference > reference)
            reference = blocks[b].reference;
    }
    if (!FN(plan_row)(scale, reference, plan))
        return false;
    WIDE total = 0;
    for (size_t b = 0; b < count; b++)
        if (blocks[b].sum != 0 || isnan(blocks[b].sum))
            total += WIDE_LDEXP(blocks[b].sum, (int)(blocks[b].offset - plan->offset));
    *sum = total;
    return true;
}

/* The writing pass over a block whose exps summarize_block stored
 * relative to the block's offset (e, residual): out = (e + residual) * r *
 * 2^shift, shift = block offset - row offset (<= 0), the power of two
 * applied last, so that the result is rounded once (gradually where it
 * underflows). A block whose outputs all lie far below the normal range
 * gets zeros, as the flushed exps of the row's offset would give. With
 * `stream`, out (which may be e) is written with streaming stores. */
static inline V FN(rescaled)(V e, V residual, V hi, V lo, V k)
{
    return P(scale_pow2)(P(fmadd)(e, hi, P(fmadd)(residual, hi, P(mul)(e, lo))), k);
}

/* out of T, or half-precision (DEST_BF16 / DEST_F16 in kinds). */
static SOFTMAX_FORCE_INLINE void FN(rescale_into)(void *out, int kinds, const T *e, const T *residuals, size_t count,
                                                  WIDE shift, FN(reciprocal) r, bool stream)
{
    const WIDE exponent = shift - (WIDE)NORMALIZE_SHIFT;
    if (exponent < -200) {
        FN(fill_out)(out, kinds, 0, count, (T)0);
        return;
    }
    const V hi = P(set1)(r.hi), lo = P(set1)(r.lo), k = P(set1)((T)exponent);
    size_t i = 0;
    /* Streaming stores need aligned addresses: a short head first. */
    while (stream && i < count && !FN(stream_aligned)(out, kinds, i)) {
        FN(write_tail)
        (out, kinds, i, FN(rescaled)(P(load_tail)(e + i, 1, 0), P(load_tail)(residuals + i, 1, 0), hi, lo, k), 1);
        i++;
    }
    for (; i + LANES <= count; i += LANES) {
        const V value = FN(rescaled)(P(load)(e + i), P(load)(residuals + i), hi, lo, k);
        FN(write_as)(out, kinds, i, value, stream);
    }
    if (i < count)
        FN(write_tail)
    (out, kinds, i,
     FN(rescaled)(P(load_tail)(e + i, count - i, 0), P(load_tail)(residuals + i, count - i, 0), hi, lo, k), count - i);
    if (stream)
        P(stream_fence)();
}

static void FN(rescale)(const T *e, const T *residuals, T *out, size_t count, WIDE shift, FN(reciprocal) r, bool stream)
{
    FN(rescale_into)(out, 0, e, residuals, count, shift, r, stream);
}

/* The writing pass that computes the exps again: y = e * r, rounded once
 * from the exponential's parts. x and y as in summarize_block_reading and
 * rescale_into. With `stream`, y is written with streaming stores. */
static SOFTMAX_FORCE_INLINE void FN(exp_normalize_into)(const void *x, void *y, int kinds, size_t begin, size_t end,
                                                        const FN(exp_args) * a, bool negate, FN(reciprocal) r,
                                                        bool stream)
{
    const V hi = P(set1)(r.hi), lo = P(set1)(r.lo);
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    size_t i = begin;
    /* Streaming stores need aligned addresses: a short head first. */
    while (stream && i < end && !FN(stream_aligned)(y, kinds, i)) {
        V x0 = FN(read_tail)(x, NULL, kinds, i, 1, fill);
        if (negate)
            x0 = P(neg)(x0);
        FN(write_tail)(y, kinds, i, FN(apply_reciprocal_parts)(FN(exp_parts_of)(x0, a), hi, lo), 1);
        i++;
    }
    for (; i + LANES <= end; i += LANES) {
        V x0 = FN(read)(x, NULL, kinds, i);
        if (negate)
            x0 = P(neg)(x0);
        const V value = FN(apply_reciprocal_parts)(FN(exp_parts_of)(x0, a), hi, lo);
        FN(write_as)(y, kinds, i, value, stream);
    }
    if (i < end) {
        V x0 = FN(read_tail)(x, NULL, kinds, i, end - i, fill);
        if (negate)
            x0 = P(neg)(x0);
        FN(write_tail)(y, kinds, i, FN(apply_reciprocal_parts)(FN(exp_parts_of)(x0, a), hi, lo), end - i);
    }
    if (stream)
        P(stream_fence)();
}

static void FN(exp_normalize_stream)(const T *x, T *y, size_t begin, size_t end, const FN(exp_args) * a, bool negate,
                                     FN(reciprocal) r, bool stream)
{
    FN(exp_normalize_into)(x, y, 0, begin, end, a, negate, r, stream);
}

/* ----------------------------------------------------------- forward rows */

/* Where a streaming softmax row keeps the exps (and their residuals, n
 * further on) of its first pass: the thread's workspace, so that its
 * writing pass rescales them (FN(rescale)) instead of computing every exp
 * a second time, and x is intact until then (in place, a row with a special
 * value still finds its input when the plan fails at the end of the first
 * pass). NULL (the two-exp path: exp_normalize_stream) for log-softmax,
 * which needs no exps to write, for rows beyond STORED_STREAM_BYTES, or
 * when no workspace can be had.
 *
 * The workspace costs 8 bytes per f32 element of traffic through the
 * caches, which pays while it stays in them: measured single-thread on a
 * Zen 4 (1 MiB L2 per core, 32 MiB L3), rows of 300000 f32 went from 0.75
 * to 0.60 ns per element (2 threads: 0.41 -> 0.34), rows of 2^20 from 0.70
 * to 0.55 but with 2 threads from 0.40 to 0.46, rows of 2^22 from 0.83 to
 * 1.14. The choice depends on the row length alone, never on the thread
 * count, so that the bits do not either. */
#define STORED_STREAM_BYTES ((size_t)2 << 20)

static T *FN(stream_exps)(softmax_op op, size_t n)
{
    if (op != SOFTMAX_OP_SOFTMAX || n * sizeof(T) > STORED_STREAM_BYTES)
        return NULL;
    return softmax_workspace(2 * n * sizeof(T));
}

static size_t FN(block_count)(size_t n)
{
    return (n + BLOCK - 1) / BLOCK;
}

/* y = s * (x - reference) - log_sum: |y| >= |s * (x - reference)|, so the
 * rounding of x - reference costs at most half an ulp of y. With an added
 * mask (s = 1), y = (high - reference) + (low - log_sum). */
static SOFTMAX_FORCE_INLINE void FN(log_output_excluding)(const void *x, void *y, size_t begin, size_t end, T reference,
                                                          T scale_t, T log_sum, const FN(exclusion) * ex, int kinds)
{
    const V ref = P(set1)(reference), s = P(set1)(scale_t), neg_log_sum = P(set1)(-log_sum);
    size_t i = begin;
    V low;
    for (; i + LANES <= end; i += LANES) {
        const V z = FN(read_pair)(x, ex, kinds, i, &low);
        FN(write)
        (y, kinds, i, P(fmadd)(s, P(sub)(z, ref), (kinds & ADDING) ? P(add)(low, neg_log_sum) : neg_log_sum));
    }
    if (i < end) {
        const V z = FN(read_tail_pair)(x, ex, kinds, i, end - i, 0, &low);
        FN(write_tail)
        (y, kinds, i, P(fmadd)(s, P(sub)(z, ref), (kinds & ADDING) ? P(add)(low, neg_log_sum) : neg_log_sum), end - i);
    }
}

static void FN(log_output)(const T *x, T *y, size_t begin, size_t end, T reference, T scale_t, T log_sum)
{
    FN(log_output_excluding)(x, y, begin, end, reference, scale_t, log_sum, NULL, 0);
}

static WIDE FN(log_sum_of)(WIDE sum, const FN(row_plan) * plan)
{
    return FN(log_sum_from)(sum, plan->offset_error);
}

/* Phase 1 for the in-cache regime: the reference element over blocks
 * [b0, b1). */
static T FN(reference_over)(const T *x, size_t n, size_t b0, size_t b1, double scale)
{
    size_t begin = b0 * BLOCK, end = b1 * BLOCK < n ? b1 * BLOCK : n;
    return FN(reference_of)(x + begin, end - begin, scale);
}

/* Rows of at most SMALL_VECTORS vectors stay in registers from load to
 * store: writing the exps and reading them back would cost a failed
 * store-to-load forwarding (masked store, then load) on every row. */
#define SMALL_VECTORS 8

/* What every row of a call shares: c = |scale| log2(e) split in two, 1/c,
 * and the sign. Computed once per call; `valid` is false for the scales
 * the contract treats specially (0, +-inf). */
typedef struct FN(shared_plan) {
    bool valid;
    bool negate;
    T c_hi;
    T c_lo;
    T inverse_c;
} FN(shared_plan);

static FN(shared_plan) FN(shared_plan_of)(double scale)
{
    FN(shared_plan) shared = {false, false, 0, 0, 0};
    FN(row_plan) plan;
    if (!FN(plan_row)(scale, 0, &plan))
        return shared;
    shared.valid = true;
    shared.negate = plan.negate;
    shared.c_hi = plan.c_hi;
    shared.c_lo = plan.c_lo;
    shared.inverse_c = (T)(1 / ((WIDE)plan.c_hi + (WIDE)plan.c_lo));
    return shared;
}

static void FN(small_forward_row)(softmax_op op, const T *x, T *y, size_t n, double scale,
                                  const FN(shared_plan) * shared);

/* residuals: room for n elements, used by softmax rows in the in-cache
 * regime. */
static void FN(blocks_forward_row)(softmax_op op, const T *x, T *y, T *residuals, size_t n, double scale);

static void FN(forward_row)(softmax_op op, const T *x, T *y, T *residuals, size_t n, double scale,
                            const FN(shared_plan) * shared)
{
    if (n <= SMALL_VECTORS * LANES)
        FN(small_forward_row)(op, x, y, n, scale, shared);
    else
        FN(blocks_forward_row)(op, x, y, residuals, n, scale);
}

/* forward_row through the blocks of the in-cache and streaming regimes, for
 * any n > 0 (residuals: room for n elements in the in-cache regime). The
 * grouped small-row kernels are faster for many rows of one short length,
 * this for a single one. */
static void FN(blocks_forward_row)(softmax_op op, const T *x, T *y, T *residuals, size_t n, double scale)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const size_t blocks = FN(block_count)(n);
    FN(row_plan) plan;
    WIDE sum;
    if (n * sizeof(T) <= STREAM_BYTES) {
        if (!FN(plan_row)(scale, FN(reference_of)(x, n, scale), &plan)) {
            softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
            return;
        }
        FN(exp_args) a = FN(broadcast_plan)(&plan);
        /* While this row's exps are computed, the next row comes in. */
        sum = FN(exp_blocks)(x, log_output ? NULL : y, log_output ? NULL : residuals, 0, blocks, n, &a, plan.negate, n);
        if (isnan(sum)) {
            FN(fill)(y, 0, n, (T)NAN);
            return;
        }
        if (log_output)
            FN(log_output)(x, y, 0, n, plan.reference, (T)scale, (T)FN(log_sum_of)(sum, &plan));
        else
            FN(normalize)(y, residuals, 0, n, FN(reciprocal_of)(sum));
        return;
    }
    /* Streaming: summaries of every block, then one writing pass. */
    /* At least 64 blocks here: one allocation is negligible next to the row. */
    FN(block_summary) *summaries = malloc(blocks * sizeof *summaries);
    T *stored = FN(stream_exps)(op, n);
    bool planned = false;
    if (summaries != NULL) {
        for (size_t b = 0; b < blocks; b++) {
            size_t begin = b * BLOCK, end = begin + BLOCK < n ? begin + BLOCK : n;
            summaries[b] = FN(summarize_block)(x, stored, stored ? stored + n : NULL, begin, end, scale);
        }
        planned = FN(combine_summaries)(summaries, blocks, scale, &plan, &sum);
    }
    if (!planned) {
        free(summaries);
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
        return;
    }
    if (isnan(sum)) {
        free(summaries);
        FN(fill)(y, 0, n, (T)NAN);
        return;
    }
    FN(exp_args) a = FN(broadcast_plan)(&plan);
    if (log_output) {
        FN(log_output)(x, y, 0, n, plan.reference, (T)scale, (T)FN(log_sum_of)(sum, &plan));
    } else if (stored != NULL) {
        const FN(reciprocal) r = FN(reciprocal_of)(sum);
        for (size_t b = 0; b < blocks; b++) {
            size_t begin = b * BLOCK, end = begin + BLOCK < n ? begin + BLOCK : n;
            FN(rescale)
            (stored + begin, stored + n + begin, y + begin, end - begin, summaries[b].offset - plan.offset, r, true);
        }
    } else {
        FN(exp_normalize_stream)(x, y, 0, n, &a, plan.negate, FN(reciprocal_of)(sum), true);
    }
    free(summaries);
}

#if defined(HALF_ROWS)
/* The in-cache regime of forward_row reading x through FN(read): y and
 * residuals have room for n elements (the exps and their residuals), out
 * gets the outputs (y itself unless kinds has DEST_HALF). False, having
 * written nothing, for rows that need the general path. */
static SOFTMAX_FORCE_INLINE bool FN(read_row_body)(softmax_op op, const void *x, const FN(exclusion) * ex, int kinds,
                                                   size_t n, double scale, T *y, T *residuals, void *out)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    /* With an added bias a causal row is computed over its kept prefix
     * only, the rest filled (as prefix_rows does); elsewhere over the whole
     * row, bit for bit the gathered path. */
    const size_t used = (kinds & ADDING) && (kinds & EXCLUDE_PREFIX) ? ex->kept : n;
    const int inner = (kinds & ADDING) ? kinds & ~EXCLUDE_PREFIX : kinds;
    const unsigned int saved = vec_flush_to_zero_begin();
    /* A causal row reads a prefix one element longer than the row before:
     * the hardware's stream prefetch does not follow, and the kernels' own
     * prefetch (one row length ahead, during the exps) comes too late for
     * short rows. The row ROW_AHEAD on is asked for here, as prefix_rows
     * does (attention 256x512x512, ALiBi + causal: 0.63 -> 0.55 ns/element
     * single-thread; full rows did not gain, so they do not ask). */
    if (kinds & EXCLUDE_PREFIX)
        FN(prefetch_span)((const T *)x + ROW_AHEAD * n, used + ROW_AHEAD);
    const T reference = FN(reference_reading)(x, used, scale, ex, inner);
    FN(row_plan) plan;
    /* Added biases: the low parts stay small (see take_low) only for
     * logits of moderate size; rows beyond, and fully masked ones, take the
     * general path. */
    const bool moderate = !(kinds & ADDING) || T_FABS(reference) <= (T)ADD_REFERENCE_LIMIT;
    if (used == 0 || !moderate || !FN(plan_row)(scale, reference, &plan)) {
        vec_flush_to_zero_end(saved);
        return false;
    }
    const FN(exp_args) a = FN(broadcast_plan)(&plan);
    WIDE sum = 0;
    /* The blocks of exp_blocks, the next row asked for as there. */
    for (size_t begin = 0; begin < used; begin += BLOCK) {
        const size_t end = begin + BLOCK < used ? begin + BLOCK : used;
        sum += FN(exp_block_excluding)(x, log_output ? NULL : y, residuals, begin, end, &a, plan.negate, n, ex, inner);
    }
    if (isnan(sum)) {
        FN(fill_out)(out, kinds, 0, n, (T)NAN);
    } else {
        if (log_output)
            FN(log_output_excluding)
        (x, out, 0, used, plan.reference, (T)scale, (T)FN(log_sum_of)(sum, &plan), ex, inner);
        else FN(normalize_into)(out, kinds, y, residuals, 0, used, FN(reciprocal_of)(sum));
        FN(fill_out)(out, kinds, used, n, log_output ? (T)-INFINITY : (T)0);
    }
    vec_flush_to_zero_end(saved);
    return true;
}

static inline bool FN(in_cache_regime)(size_t n)
{
    return n > SMALL_VECTORS * LANES && n * sizeof(T) <= STREAM_BYTES;
}

/* See softmax_kernels.excluding_row: the in-cache regime of forward_row
 * with the exclusions applied (and an additive mask added) as x is loaded,
 * so that a masked row costs about what an unmasked one does (no gathered
 * copy). */
static bool FN(excluding_row)(softmax_op op, const T *x, const uint8_t *keep, const T *mask, const uint16_t *half_mask,
                              int half_bf16, int additive, double slope, size_t kept, size_t n, double scale, T *y)
{
    if (!FN(in_cache_regime)(n) || kept > n || (additive && slope != 0))
        return false;
    /* With an added mask or ALiBi bias the kernels run with scale 1 on z =
     * scale * x + bias: the special scales (0, +-inf, beyond the float
     * range) stay with the general path. */
    const bool adding = additive || slope != 0;
    const T scale_hi = (T)scale;
    if (adding && !(WIDE_FABS((WIDE)scale) >= (WIDE)1e-30 && WIDE_FABS((WIDE)scale) <= (WIDE)1e30))
        return false;
    T *residuals = softmax_workspace(n * sizeof(T));
    if (residuals == NULL)
        return false;
    FN(exclusion)
    ex = {.keep = keep,
          .half_minus_inf = half_bf16 ? (uint16_t)0xff80u : (uint16_t)0xfc00u,
          .excluded = scale < 0 && !adding ? (T)INFINITY : (T)-INFINITY,
          .kept = kept,
          .scale_hi = scale_hi,
          .scale_lo = (T)((WIDE)scale - (WIDE)scale_hi),
          .slope_hi = (T)slope,
          .slope_lo = (T)((WIDE)slope - (WIDE)(T)slope)};
    if (additive) {
        ex.add_mask = mask;
        ex.add_half = half_mask;
        ex.add_bf16 = half_bf16;
    } else {
        ex.mask = mask;
        ex.half_mask = half_mask;
    }
    const int masks = additive ? (mask != NULL ? ADD_MASK : 0) | (half_mask != NULL ? ADD_HALF : 0)
                               : (mask != NULL ? EXCLUDE_MASK : 0) | (half_mask != NULL ? EXCLUDE_HALF : 0);
    const int kinds =
        masks | (keep != NULL ? EXCLUDE_KEEP : 0) | (kept < n ? EXCLUDE_PREFIX : 0) | (slope != 0 ? ADD_SLOPE : 0);
    const double kernel_scale = adding ? 1.0 : scale;
    /* One specialised body for each single kind (the attention layouts);
     * combinations share a general one. */
    switch (kinds) {
    case EXCLUDE_KEEP:
        return FN(read_row_body)(op, x, &ex, EXCLUDE_KEEP, n, scale, y, residuals, y);
    case EXCLUDE_MASK:
        return FN(read_row_body)(op, x, &ex, EXCLUDE_MASK, n, scale, y, residuals, y);
    case EXCLUDE_HALF:
        return FN(read_row_body)(op, x, &ex, EXCLUDE_HALF, n, scale, y, residuals, y);
    case ADD_MASK:
        return FN(read_row_body)(op, x, &ex, ADD_MASK, n, kernel_scale, y, residuals, y);
    case ADD_HALF:
        return FN(read_row_body)(op, x, &ex, ADD_HALF, n, kernel_scale, y, residuals, y);
    case ADD_SLOPE | EXCLUDE_PREFIX: /* ALiBi with a causal mask */
        return FN(read_row_body)(op, x, &ex, ADD_SLOPE | EXCLUDE_PREFIX, n, kernel_scale, y, residuals, y);
    default:
        if (kinds & ADD_SLOPE)
            return FN(read_row_body)(op, x, &ex,
                                     ADD_SLOPE | EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_HALF | EXCLUDE_PREFIX, n,
                                     kernel_scale, y, residuals, y);
        if (kinds & ADD_MASK)
            return FN(read_row_body)(op, x, &ex, ADD_MASK | EXCLUDE_KEEP | EXCLUDE_PREFIX, n, kernel_scale, y,
                                     residuals, y);
        if (kinds & ADD_HALF)
            return FN(read_row_body)(op, x, &ex, ADD_HALF | EXCLUDE_KEEP | EXCLUDE_PREFIX, n, kernel_scale, y,
                                     residuals, y);
        return FN(read_row_body)(op, x, &ex, EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_HALF | EXCLUDE_PREFIX, n, scale, y,
                                 residuals, y);
    }
}

/* The SOURCE_ / DEST_ kinds of a half_line call. */
static inline int FN(half_line_kinds)(int bf16, int dst_half)
{
    return (bf16 ? SOURCE_BF16 : SOURCE_F16) | (dst_half == 1 ? DEST_BF16 : dst_half == 2 ? DEST_F16 : 0);
}

/* See softmax_kernels.half_line. */
static bool FN(half_line)(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n, double scale)
{
    if (!FN(in_cache_regime)(n))
        return false;
    T *space = softmax_workspace(2 * n * sizeof(T));
    if (space == NULL)
        return false;
    T *residuals = space, *y = dst_half ? space + n : dst;
    /* Each source and destination type its own body: the conversions are
     * one or two instructions a vector, in the passes that read and write. */
    switch (FN(half_line_kinds)(bf16, dst_half)) {
    case SOURCE_BF16:
        return FN(read_row_body)(op, x, NULL, SOURCE_BF16, n, scale, y, residuals, dst);
    case SOURCE_BF16 | DEST_BF16:
        return FN(read_row_body)(op, x, NULL, SOURCE_BF16 | DEST_BF16, n, scale, y, residuals, dst);
    case SOURCE_BF16 | DEST_F16:
        return FN(read_row_body)(op, x, NULL, SOURCE_BF16 | DEST_F16, n, scale, y, residuals, dst);
    case SOURCE_F16:
        return FN(read_row_body)(op, x, NULL, SOURCE_F16, n, scale, y, residuals, dst);
    case SOURCE_F16 | DEST_BF16:
        return FN(read_row_body)(op, x, NULL, SOURCE_F16 | DEST_BF16, n, scale, y, residuals, dst);
    default:
        return FN(read_row_body)(op, x, NULL, SOURCE_F16 | DEST_F16, n, scale, y, residuals, dst);
    }
}
#define EXCLUDING_ROW_FN FN(excluding_row)
#define HALF_LINE_FN FN(half_line)
#else
#define EXCLUDING_ROW_FN NULL
#define HALF_LINE_FN NULL
#endif

/* --------------------------------------------------------- gradient rows */

typedef struct FN(split) {
    T hi;
    T lo;
} FN(split);

static FN(split) FN(split_of)(WIDE value)
{
    FN(split) s;
    s.hi = (T)value;
    s.lo = isfinite(value) ? (T)(value - (WIDE)s.hi) : 0;
    return s;
}

/* dx = s * y * ((dy - dot_hi) - dot_lo) */
static void FN(softmax_backward_row)(const T *y, const T *dy, T *dx, size_t n, double scale)
{
    const size_t blocks = FN(block_count)(n);
    WIDE dot = 0;
    for (size_t b = 0; b < blocks; b++) {
        size_t begin = b * BLOCK, end = begin + BLOCK < n ? begin + BLOCK : n;
        ACC acc = P(acc_zero)();
        size_t i = begin;
        for (; i + LANES <= end; i += LANES)
            P(acc_add_product)(&acc, P(load)(y + i), P(load)(dy + i));
        if (i < end)
            P(acc_add_product)(&acc, P(load_tail)(y + i, end - i, 0), P(load_tail)(dy + i, end - i, 0));
        dot += (WIDE)P(acc_total)(&acc);
    }
    if (isinf(scale) || isnan(dot)) {
        softmax_line_run(&REF_LINES, SOFTMAX_OP_SOFTMAX_BACKWARD, y, dy, dx, n, 1, scale);
        return;
    }
    const FN(split) d = FN(split_of)(dot);
    const V dot_hi = P(set1)(d.hi), dot_lo = P(set1)(d.lo), s = P(set1)((T)scale);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        V yi = P(load)(y + i);
        V diff = P(sub)(P(sub)(P(load)(dy + i), dot_hi), dot_lo);
        P(store)(dx + i, P(mul)(P(mul)(s, yi), diff));
    }
    if (i < n) {
        V yi = P(load_tail)(y + i, n - i, 0);
        V diff = P(sub)(P(sub)(P(load_tail)(dy + i, n - i, 0), dot_hi), dot_lo);
        P(store_tail)(dx + i, P(mul)(P(mul)(s, yi), diff), n - i);
    }
}

/* exp(logy) for the log-softmax gradients: the exp kernel with c = log2(e),
 * B = 0 and a floor where 2^u is still normal; below it the result is set
 * to 0 by a mask. The gradients run without flush-to-zero, and an exp that
 * underflowed would cost a microcode assist on some cores. */
#define GRADIENT_FLOOR_ARG (EXP_FLOOR_ARG == 160 ? 125 : 1021)

static FN(exp_args) FN(plain_exp_args)(void)
{
    const WIDE c = WIDE_LOG2E;
    const T c_hi = (T)c;
    const T c_lo = (T)(c - (WIDE)c_hi);
    FN(exp_args) a = {P(set1)((T)(-(WIDE)GRADIENT_FLOOR_ARG / c)), P(set1)(c_hi), P(set1)(c_lo), P(set1)(0)};
    return a;
}

static inline V FN(plain_exp)(V logy, const FN(exp_args) * a)
{
    return P(zero_below)(FN(exp_eval)(logy, a), logy, a->x_floor);
}

/* Log-softmax VJP (dx = s * (dy - exp(logy) * sum dy)) and JVP
 * (out = s * (v - sum exp(logy) * v)) share their shape: a reduction, then
 * an elementwise pass. */
static void FN(log_gradient_row)(softmax_op op, const T *logy, const T *g, T *out, size_t n, double scale)
{
    const bool jvp = op == SOFTMAX_OP_LOG_SOFTMAX_JVP;
    const FN(exp_args) a = FN(plain_exp_args)();
    const size_t blocks = FN(block_count)(n);
    WIDE reduction = 0;
    V max_logy = P(set1)((T)-INFINITY);
    V nan_flag = P(set1)(0); /* the VJP's reduction does not see logy */
    for (size_t b = 0; b < blocks; b++) {
        size_t begin = b * BLOCK, end = begin + BLOCK < n ? begin + BLOCK : n;
        ACC acc = P(acc_zero)();
        for (size_t i = begin; i < end; i += LANES) {
            size_t count = end - i < LANES ? end - i : LANES;
            V l = count == LANES ? P(load)(logy + i) : P(load_tail)(logy + i, count, (T)-INFINITY);
            V gi = count == LANES ? P(load)(g + i) : P(load_tail)(g + i, count, 0);
            max_logy = P(max)(l, max_logy);
            nan_flag = P(keep_nan)(nan_flag, l);
            if (jvp)
                P(acc_add_product)(&acc, FN(plain_exp)(l, &a), gi);
            else
                P(acc_add)(&acc, gi);
        }
        reduction += (WIDE)P(acc_total)(&acc);
    }
    const T top = P(reduce_max)(max_logy);
    if (!(top > (T)-INFINITY) || isinf(scale) || isnan(reduction) || P(any_nan)(nan_flag)) {
        softmax_line_run(&REF_LINES, op, logy, g, out, n, 1, scale);
        return;
    }
    const FN(split) r = FN(split_of)(reduction);
    const V r_hi = P(set1)(r.hi), r_lo = P(set1)(r.lo), s = P(set1)((T)scale);
    for (size_t i = 0; i < n; i += LANES) {
        size_t count = n - i < LANES ? n - i : LANES;
        V l = count == LANES ? P(load)(logy + i) : P(load_tail)(logy + i, count, (T)-INFINITY);
        V gi = count == LANES ? P(load)(g + i) : P(load_tail)(g + i, count, 0);
        V w;
        if (jvp) {
            w = P(sub)(P(sub)(gi, r_hi), r_lo);
        } else {
            V yi = FN(plain_exp)(l, &a);
            w = P(fmadd)(P(neg)(yi), r_hi, gi);
            w = P(fmadd)(P(neg)(yi), r_lo, w);
        }
        V result = P(mul)(s, w);
        if (count == LANES)
            P(store)(out + i, result);
        else
            P(store_tail)(out + i, result, count);
    }
}

/* ---------------------------------------------------- the fast exponential */

#ifdef FAST_EXP_Q
/* SOFTMAX_FLAG_FAST: 2^(c x - B) as the textbook kernels compute it, with
 * the argument reduction kept exact: k = round(estimate), f = c x - B - k
 * from the same two fmas as exp_parts_of, f in [-0.5005, 0.5005], one
 * polynomial, scalef. No residual, no cell fix-up: about 1 ulp, and the
 * weak order of the inputs may break by an ulp where k changes (the
 * accurate kernels guarantee it). */
static inline V FN(fast_exp)(V x, const FN(exp_args) * a)
{
    V clamped = P(max)(a->x_floor, x);
    V k = P(round)(P(fmadd)(a->c_lo, clamped, P(fmadd)(a->c_hi, clamped, a->neg_offset)));
    V f = P(fmadd)(a->c_lo, clamped, P(fmadd)(a->c_hi, clamped, P(sub)(a->neg_offset, k)));
    return P(scale_pow2)(P(fmadd)(FAST_EXP_Q(f), f, P(set1)((T)1)), k);
}
#define SOFTMAX_HAS_FAST_EXP 1
#else
#define SOFTMAX_HAS_FAST_EXP 0
#endif

/* The exponential of the tiny-row kernels: exact-parts (accurate) or fast,
 * chosen at compile time where the bodies are inlined. */
static SOFTMAX_FORCE_INLINE void FN(tiny_exp)(bool fast, V x, const FN(exp_args) * a, V *e, V *residual)
{
#if SOFTMAX_HAS_FAST_EXP
    if (fast) {
        *e = FN(fast_exp)(x, a);
        *residual = P(set1)(0);
        return;
    }
#endif
    (void)fast;
    const FN(exp_parts) parts = FN(exp_parts_of)(x, a);
    *e = P(scale_pow2)(parts.mantissa, parts.k);
    *residual = P(scale_pow2)(parts.residual, parts.k);
}

/* ------------------------------------------------------------ tiny rows */

/* Rows of at most LANES elements. The sum of a row's exps is split as in
 * exp_block_any: the high parts (grid 2^-16 or 2^-45) add up exactly in T in
 * any order, the low parts (with the residuals) add up in T in the fixed
 * tree of P(butterfly_sum), and the row's sum is high + low in WIDE. The
 * per-row constants are computed in T from the shared plan. A row's
 * bits are a function of that row alone: the grouped kernel below does
 * lane for lane the arithmetic of tiny_row on one row. */

/* The per-row outcome after the sums: whether the row leaves the SIMD path
 * (a non-finite reference -- NaN, +-inf, the contract's special rows -- or
 * an offset out of range), is NaN, or gets the two output constants
 * (softmax: the halves of the scaled reciprocal; log-softmax: scale and
 * -log sum). */
#ifndef SOFTMAX_TINY_OUTCOME_DEFINED /* once for both data types */
#define SOFTMAX_TINY_OUTCOME_DEFINED
typedef enum { TINY_SIMD, TINY_REFERENCE, TINY_NAN } tiny_outcome;
#endif

static tiny_outcome FN(tiny_outcome_of)(T reference, T offset, T high, T low)
{
    if (!isfinite(reference) || !(WIDE_FABS((WIDE)offset) < (WIDE)OFFSET_LIMIT))
        return TINY_REFERENCE;
    return isnan((WIDE)high + (WIDE)low) ? TINY_NAN : TINY_SIMD;
}

/* The halves of the scaled reciprocal of a tiny row's sum, as
 * FN(reciprocal_of) and, lane for lane, P(reciprocal_halves). */
static void FN(tiny_reciprocal)(T high, T low, T *first, T *second)
{
    const FN(reciprocal) r = FN(reciprocal_of)((WIDE)high + (WIDE)low);
    *first = r.hi;
    *second = r.lo;
}

/* -log(sum) lane by lane, each lane the function of its own row that
 * log_sum_from(offset_remainder) gives: in vectors where the vocabulary
 * has it (f32; a log to ~1e-11 in double lanes, rounded to f32 once), else
 * lane by lane with WIDE_LOG. tiny_row and tiny_group both call this, so a
 * row's constant never depends on its group. */
static inline V FN(tiny_neg_log_sums)(V high, V low, V reference, V offset, const FN(shared_plan) * shared)
{
#if defined(NEG_LOG_SUM_VECTOR)
    return P(neg_log_sum)(high, low, reference, offset, shared->c_hi, shared->c_lo);
#else
    T highs[LANES], lows[LANES], references[LANES], offsets[LANES], out[LANES];
    P(store)(highs, high);
    P(store)(lows, low);
    P(store)(references, reference);
    P(store)(offsets, offset);
    for (size_t l = 0; l < LANES; l++) {
        const WIDE sum = (WIDE)highs[l] + (WIDE)lows[l];
        out[l] = -(T)FN(log_sum_from)(sum, FN(offset_remainder)(shared->c_hi, shared->c_lo, references[l], offsets[l]));
    }
    return P(load)(out);
#endif
}

/* One tiny row in one vector: horizontal reductions. */
static SOFTMAX_FORCE_INLINE void FN(tiny_row_body)(bool fast, softmax_op op, const T *x, T *y, size_t n, double scale,
                                                   const FN(shared_plan) * shared)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = shared->negate;
    V v = P(load_tail)(x, n, negate ? (T)INFINITY : (T)-INFINITY);
    if (negate)
        v = P(neg)(v);
    const T reference = P(reduce_max)(v);
    const T offset = T_FLOOR(FMA_T(shared->c_hi, reference, shared->c_lo * reference)) - 1;
    const FN(exp_args) a = {P(set1)((offset - (T)EXP_FLOOR_ARG) * shared->inverse_c), P(set1)(shared->c_hi),
                            P(set1)(shared->c_lo), P(set1)(-offset)};
    /* Lanes past n hold -inf: clamped to the floor, their exp is exactly 0. */
    V e, r;
    FN(tiny_exp)(fast, v, &a, &e, &r);
    const V high = FN(grid_high)(e);
    const V low = P(add)(P(sub)(e, high), r);
    const T high_sum = P(reduce_add)(high), low_sum = P(butterfly_sum)(low);
    switch (FN(tiny_outcome_of)(reference, offset, high_sum, low_sum)) {
    case TINY_REFERENCE:
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
        return;
    case TINY_NAN:
        FN(fill)(y, 0, n, (T)NAN);
        return;
    case TINY_SIMD:
        break;
    }
    V out;
    if (log_output) {
        const V second =
            FN(tiny_neg_log_sums)(P(set1)(high_sum), P(set1)(low_sum), P(set1)(reference), P(set1)(offset), shared);
        const V shifted = P(sub)(v, P(set1)(reference));
        out = P(fmadd)(P(set1)((T)scale), negate ? P(neg)(shifted) : shifted, second);
    } else {
        T first, second;
        FN(tiny_reciprocal)(high_sum, low_sum, &first, &second);
        out = FN(apply_reciprocal)(e, r, P(set1)(first), P(set1)(second));
    }
    P(store_tail)(y, out, n);
}

/* Groups smaller than this take tiny_row row by row: the two transposes
 * cost more than a few rows' horizontal reductions. */
#define TINY_GROUP_MIN 4

/* LANES rows at a time, transposed in registers: vector j holds column j of
 * the group (lane l = row l), so the maxima, the sums and the per-row
 * constants are vertical operations, only n exps are evaluated per group
 * however short the rows, and the sum of the low parts runs through the
 * tree of P(butterfly_sum) over whole column vectors. Lanes of padding rows
 * (a partial group) compute on zeros and are never stored. */
static SOFTMAX_FORCE_INLINE void FN(tiny_group_body)(bool fast, softmax_op op, const T *x, T *y, size_t count, size_t n,
                                                     double scale, const FN(shared_plan) * shared)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = shared->negate;
    V column[LANES];
    for (size_t r = 0; r < LANES; r++)
        column[r] = r < count ? P(load_tail)(x + r * n, n, 0) : P(set1)(0);
    P(transpose)(column);
    V reference = P(set1)((T)-INFINITY);
    for (size_t j = 0; j < n; j++) {
        if (negate)
            column[j] = P(neg)(column[j]);
        /* The running maximum second: a NaN element is skipped, as in
         * reduce_max; its row is caught by its NaN sum. */
        reference = P(max)(column[j], reference);
    }
    const V offset = P(sub)(
        P(floor)(P(fmadd)(P(set1)(shared->c_hi), reference, P(mul)(P(set1)(shared->c_lo), reference))), P(set1)((T)1));
    const FN(exp_args) a = {P(mul)(P(sub)(offset, P(set1)((T)EXP_FLOOR_ARG)), P(set1)(shared->inverse_c)),
                            P(set1)(shared->c_hi), P(set1)(shared->c_lo), P(neg)(offset)};
    V e[LANES], residual[LANES], low[LANES];
    V high = P(set1)(0);
    for (size_t j = 0; j < LANES; j++) {
        if (j >= n) {
            low[j] = P(set1)(0);
            continue;
        }
        FN(tiny_exp)(fast, column[j], &a, &e[j], &residual[j]);
        const V h = FN(grid_high)(e[j]);
        high = P(add)(high, h);
        low[j] = P(add)(P(sub)(e[j], h), residual[j]);
    }
    for (size_t half = LANES / 2; half > 0; half /= 2)
        for (size_t j = 0; j < half; j++)
            low[j] = P(add)(low[j], low[j + half]);
    T references[LANES], offsets[LANES], highs[LANES], lows[LANES];
    P(store)(references, reference);
    P(store)(offsets, offset);
    P(store)(highs, high);
    P(store)(lows, low[0]);
    bool simd_row[LANES];
    /* The common case, every row of the group on the SIMD path, decided in
     * vectors: a finite reference and sum parts (no NaN), an offset in
     * range -- what tiny_outcome_of says lane by lane. */
    const unsigned group_lanes = count == LANES ? (unsigned)((1ull << LANES) - 1) : (1u << count) - 1;
    const unsigned simd_lanes = P(finite_lanes)(reference) & P(finite_lanes)(high) & P(finite_lanes)(low[0]) &
                                P(lanes_below)(P(max)(offset, P(neg)(offset)), P(set1)((T)OFFSET_LIMIT));
    const bool whole_group = (simd_lanes & group_lanes) == group_lanes;
    for (size_t r = 0; r < LANES; r++) {
        simd_row[r] = whole_group && r < count;
        if (whole_group || r >= count)
            continue;
        /* Rows leaving the SIMD path are written now, each from its own
         * input row: no SIMD result has been stored yet (in place). */
        switch (FN(tiny_outcome_of)(references[r], offsets[r], highs[r], lows[r])) {
        case TINY_REFERENCE:
            softmax_line_run(&REF_LINES, op, x + r * n, NULL, y + r * n, n, 1, scale);
            break;
        case TINY_NAN:
            FN(fill)(y + r * n, 0, n, (T)NAN);
            break;
        case TINY_SIMD:
            simd_row[r] = true;
            break;
        }
    }
    V first, second;
    if (log_output) {
        first = P(set1)((T)scale);
        second = FN(tiny_neg_log_sums)(high, low[0], reference, offset, shared);
    } else {
        /* Lanes of rows that left the SIMD path compute garbage, unstored. */
        P(reciprocal_halves)(high, low[0], NORMALIZE_SCALE, &first, &second);
    }
    for (size_t j = 0; j < LANES; j++) {
        if (j >= n) {
            column[j] = P(set1)(0);
        } else if (log_output) {
            const V shifted = P(sub)(column[j], reference);
            column[j] = P(fmadd)(first, negate ? P(neg)(shifted) : shifted, second);
        } else {
            column[j] = FN(apply_reciprocal)(e[j], residual[j], first, second);
        }
    }
    P(transpose)(column);
    for (size_t r = 0; r < count; r++)
        if (simd_row[r])
            P(store_tail)(y + r * n, column[r], n);
}

static void FN(tiny_group)(softmax_op op, const T *x, T *y, size_t count, size_t n, double scale,
                           const FN(shared_plan) * shared)
{
    FN(tiny_group_body)(false, op, x, y, count, n, scale, shared);
}

static void FN(tiny_row)(softmax_op op, const T *x, T *y, size_t n, double scale, const FN(shared_plan) * shared)
{
    FN(tiny_row_body)(false, op, x, y, n, scale, shared);
}

typedef void (*FN(tiny_group_fn))(softmax_op, const T *, T *, size_t, size_t, double, const FN(shared_plan) *);
typedef void (*FN(tiny_row_fn))(softmax_op, const T *, T *, size_t, double, const FN(shared_plan) *);

static void FN(tiny_rows_with)(FN(tiny_group_fn) group, FN(tiny_row_fn) one, softmax_op op, const T *x, T *y,
                               size_t rows, size_t n, double scale)
{
    const FN(shared_plan) shared = FN(shared_plan_of)(scale);
    if (!shared.valid) {
        for (size_t r = 0; r < rows; r++)
            softmax_line_run(&REF_LINES, op, x + r * n, NULL, y + r * n, n, 1, scale);
        return;
    }
    for (size_t r0 = 0; r0 < rows; r0 += LANES) {
        const size_t count = rows - r0 < LANES ? rows - r0 : LANES;
        if (count >= TINY_GROUP_MIN) {
            group(op, x + r0 * n, y + r0 * n, count, n, scale, &shared);
            continue;
        }
        for (size_t r = r0; r < r0 + count; r++)
            one(op, x + r * n, y + r * n, n, scale, &shared);
    }
}

static void FN(tiny_rows)(softmax_op op, const T *x, T *y, size_t rows, size_t n, double scale)
{
    FN(tiny_rows_with)(FN(tiny_group), FN(tiny_row), op, x, y, rows, n, scale);
}

/* ------------------------------------------------------------ small rows */

/* Rows of LANES < n <= SMALL_VECTORS * LANES elements, LANES rows at a
 * time. Alone, such a row is one long chain of dependent steps (reduce the
 * maximum, the offset, the exps, reduce the sum, the reciprocal) whose
 * horizontal reductions and scalar steps cost about as much as its exps,
 * and that the core cannot overlap with the next row's. In a group, the
 * exps are computed along the rows as usual, but the per-row reductions
 * are vertical: the rows' lanewise maxima and partial sums are transposed
 * (lane r = row r) and reduced over whole vectors, and the per-row
 * constants are computed in lanes, as tiny_group_body does.
 *
 * The sums are split as in the tiny rows, with the high parts on the grid
 * 2^-15: at most SMALL_VECTORS exps below 4 per lane, so a row's high
 * total stays below 512 = 2^24 grid steps and adds up exactly in T in any
 * order. Lane r of every vector operation depends on row r alone, so a row
 * gets the same bits in any group and alone (count 1), on any thread. */
#define SMALL_MAGIC 384.0

static inline V FN(grid_high_small)(V e)
{
    const V magic = P(set1)((T)SMALL_MAGIC);
    return P(sub)(P(add)(e, magic), magic);
}

static SOFTMAX_FORCE_INLINE void FN(small_group_body)(bool fast, softmax_op op, const T *x, T *y, size_t count,
                                                      size_t n, double scale, const FN(shared_plan) * shared)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = shared->negate;
    const size_t vectors = (n + LANES - 1) / LANES, tail = n - (vectors - 1) * LANES;
    /* The tail's fill becomes -inf once negated or not: it is skipped by
     * the maximum, and its exp is 0. */
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    if (!shared->valid) {
        for (size_t r = 0; r < count; r++)
            softmax_line_run(&REF_LINES, op, x + r * n, NULL, y + r * n, n, 1, scale);
        return;
    }
    /* Phase 1: each row's lanewise maximum, then the rows' maxima in lanes
     * (padding rows: 0, computed on and never stored). The running maximum
     * goes second so that a NaN element is skipped: its row is caught by
     * its NaN sum. */
    V lanes[LANES];
    for (size_t r = 0; r < LANES; r++) {
        if (r >= count) {
            lanes[r] = P(set1)((T)0);
            continue;
        }
        const T *row = x + r * n;
        V m = P(set1)((T)-INFINITY);
        for (size_t i = 0; i + 1 < vectors; i++) {
            const V v = P(load)(row + i * LANES);
            m = P(max)(negate ? P(neg)(v) : v, m);
        }
        const V v = P(load_tail)(row + (vectors - 1) * LANES, tail, fill);
        lanes[r] = P(max)(negate ? P(neg)(v) : v, m);
    }
    P(transpose)(lanes);
    V reference = lanes[0];
    for (size_t j = 1; j < LANES; j++)
        reference = P(max)(lanes[j], reference);
    const V offset = P(sub)(
        P(floor)(P(fmadd)(P(set1)(shared->c_hi), reference, P(mul)(P(set1)(shared->c_lo), reference))), P(set1)((T)1));
    const V x_floor = P(mul)(P(sub)(offset, P(set1)((T)EXP_FLOOR_ARG)), P(set1)(shared->inverse_c));
    const unsigned planned =
        P(finite_lanes)(reference) & P(lanes_below)(P(max)(offset, P(neg)(offset)), P(set1)((T)OFFSET_LIMIT));
    T references[LANES], offsets[LANES], floors[LANES];
    P(store)(references, reference);
    P(store)(offsets, offset);
    P(store)(floors, x_floor);
    /* Rows the SIMD path does not take (a non-finite maximum, an offset out
     * of range) are written now, from their own input: no exp of the group
     * has been stored yet (in place). */
    for (size_t r = 0; r < count; r++)
        if (!((planned >> r) & 1u))
            softmax_line_run(&REF_LINES, op, x + r * n, NULL, y + r * n, n, 1, scale);

    /* Phase 2: the exps along each row (stored in y, their residuals here)
     * and the row's split partial sums per lane. */
    T residuals[LANES * SMALL_VECTORS * LANES];
    V highs[LANES], lows[LANES];
    for (size_t r = 0; r < LANES; r++) {
        highs[r] = lows[r] = P(set1)((T)0);
        if (r >= count || !((planned >> r) & 1u))
            continue;
        const T *row = x + r * n;
        T *out_row = y + r * n;
        T *residual_row = residuals + r * SMALL_VECTORS * LANES;
        const FN(exp_args) a = {P(set1)(floors[r]), P(set1)(shared->c_hi), P(set1)(shared->c_lo), P(set1)(-offsets[r])};
        V hi = P(set1)((T)0), lo = hi;
        for (size_t i = 0; i < vectors; i++) {
            const bool full = i + 1 < vectors || tail == LANES;
            /* The next group comes in while this one is computed from L1. */
            vec_prefetch(row + LANES * n + i * LANES);
            V v = full ? P(load)(row + i * LANES) : P(load_tail)(row + i * LANES, tail, fill);
            if (negate)
                v = P(neg)(v);
            V e, residual;
            FN(tiny_exp)(fast, v, &a, &e, &residual);
            if (!log_output) {
                if (full)
                    P(store)(out_row + i * LANES, e);
                else
                    P(store_tail)(out_row + i * LANES, e, tail);
                if (!fast)
                    P(store)(residual_row + i * LANES, residual);
            }
            const V h = FN(grid_high_small)(e);
            hi = P(add)(hi, h);
            lo = P(add)(lo, P(add)(P(sub)(e, h), residual));
        }
        highs[r] = hi;
        lows[r] = lo;
    }
    /* The rows' sums in lanes: the high parts exactly, the low parts in the
     * fixed tree of P(butterfly_sum). */
    P(transpose)(highs);
    P(transpose)(lows);
    V high = highs[0];
    for (size_t j = 1; j < LANES; j++)
        high = P(add)(high, highs[j]);
    for (size_t half = LANES / 2; half > 0; half /= 2)
        for (size_t j = 0; j < half; j++)
            lows[j] = P(add)(lows[j], lows[j + half]);
    const V low = lows[0];
    const unsigned number = P(finite_lanes)(high) & P(finite_lanes)(low);

    /* Phase 3: the per-row constants in lanes (lanes of rows off the SIMD
     * path compute garbage, unused), then the outputs. */
    V first, second;
    if (log_output) {
        first = P(set1)((T)scale);
        second = FN(tiny_neg_log_sums)(high, low, reference, offset, shared);
    } else {
        P(reciprocal_halves)(high, low, NORMALIZE_SCALE, &first, &second);
    }
    T firsts[LANES], seconds[LANES];
    P(store)(firsts, first);
    P(store)(seconds, second);
    for (size_t r = 0; r < count; r++) {
        if (!((planned >> r) & 1u))
            continue;
        T *out_row = y + r * n;
        if (!((number >> r) & 1u)) {
            FN(fill)(out_row, 0, n, (T)NAN);
            continue;
        }
        const T *row = x + r * n;
        const T *residual_row = residuals + r * SMALL_VECTORS * LANES;
        const V row_first = P(set1)(firsts[r]), row_second = P(set1)(seconds[r]);
        const V row_reference = P(set1)(references[r]);
        for (size_t i = 0; i < vectors; i++) {
            const bool full = i + 1 < vectors || tail == LANES;
            V out;
            if (log_output) {
                V v = full ? P(load)(row + i * LANES) : P(load_tail)(row + i * LANES, tail, 0);
                const V shifted = P(sub)(negate ? P(neg)(v) : v, row_reference);
                out = P(fmadd)(row_first, negate ? P(neg)(shifted) : shifted, row_second);
            } else {
                const V e = full ? P(load)(out_row + i * LANES) : P(load_tail)(out_row + i * LANES, tail, 0);
                const V residual = fast ? P(set1)((T)0) : P(load)(residual_row + i * LANES);
                out = FN(apply_reciprocal)(e, residual, row_first, row_second);
            }
            if (full)
                P(store)(out_row + i * LANES, out);
            else
                P(store_tail)(out_row + i * LANES, out, tail);
        }
    }
}

static void FN(small_group)(softmax_op op, const T *x, T *y, size_t count, size_t n, double scale,
                            const FN(shared_plan) * shared)
{
    FN(small_group_body)(false, op, x, y, count, n, scale, shared);
}

static void FN(small_forward_row)(softmax_op op, const T *x, T *y, size_t n, double scale,
                                  const FN(shared_plan) * shared)
{
    FN(small_group)(op, x, y, 1, n, scale, shared);
}

typedef void (*FN(small_group_fn))(softmax_op, const T *, T *, size_t, size_t, double, const FN(shared_plan) *);

/* `rows` consecutive rows of n elements, LANES at a time. */
static void FN(small_rows_with)(FN(small_group_fn) group, softmax_op op, const T *x, T *y, size_t rows, size_t n,
                                double scale, const FN(shared_plan) * shared)
{
    for (size_t r = 0; r < rows; r += LANES)
        group(op, x + r * n, y + r * n, rows - r < LANES ? rows - r : LANES, n, scale, shared);
}

static void FN(small_forward_rows)(softmax_op op, const T *x, T *y, size_t rows, size_t n, double scale,
                                   const FN(shared_plan) * shared)
{
    FN(small_rows_with)(FN(small_group), op, x, y, rows, n, scale, shared);
}

#if SOFTMAX_HAS_FAST_EXP
/* Fast-mode rows of LANES < n <= SMALL_VECTORS * LANES elements, in
 * registers from load to store, FAST_SMALL_GROUP rows at a time. The fast
 * exponential is cheap enough that storing the exps and reading them back,
 * as small_group_body does, costs more than the horizontal reductions it
 * saves; what remains of a row's chain of dependent steps is hidden by
 * running two rows' phases side by side. Each row gets the arithmetic it
 * gets alone (count 1), so its bits do not depend on the grouping. */
#define FAST_SMALL_GROUP 2
#define FAST_SMALL_AHEAD 8

static SOFTMAX_FORCE_INLINE void FN(fast_small_body)(size_t count, size_t vectors, softmax_op op, const T *x, T *y,
                                                     size_t n, double scale, const FN(shared_plan) * shared)
{
    const bool negate = shared->negate;
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    V v[FAST_SMALL_GROUP][SMALL_VECTORS];
    T row_reference[FAST_SMALL_GROUP], reference_seen[FAST_SMALL_GROUP], offset[FAST_SMALL_GROUP];
    bool planned = true;
    for (size_t r = 0; r < count; r++) {
        V reference = P(set1)(fill);
        for (size_t i = 0; i < vectors; i++) {
            const size_t lanes = n - i * LANES < LANES ? n - i * LANES : LANES;
            const T *at = x + r * n + i * LANES;
            /* Rows a few groups ahead come in while these are computed. */
            vec_prefetch(at + FAST_SMALL_AHEAD * n);
            v[r][i] = lanes == LANES ? P(load)(at) : P(load_tail)(at, lanes, fill);
            reference = negate ? P(min)(v[r][i], reference) : P(max)(v[r][i], reference);
        }
        row_reference[r] = negate ? P(reduce_min)(reference) : P(reduce_max)(reference);
    }
    for (size_t r = 0; r < count; r++) {
        reference_seen[r] = negate ? -row_reference[r] : row_reference[r];
        offset[r] = T_FLOOR(FMA_T(shared->c_hi, reference_seen[r], shared->c_lo * reference_seen[r])) - 1;
        planned = planned && isfinite(row_reference[r]) && T_FABS(offset[r]) < (T)OFFSET_LIMIT;
    }
    if (!planned) {
        /* Row by row: each one takes the path it takes alone. */
        for (size_t r = 0; r < count; r++) {
            if (count == 1)
                softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
            else
                FN(fast_small_body)(1, vectors, op, x + r * n, y + r * n, n, scale, shared);
        }
        return;
    }
    V e[FAST_SMALL_GROUP][SMALL_VECTORS];
    V first[FAST_SMALL_GROUP], second[FAST_SMALL_GROUP];
    bool nan_row[FAST_SMALL_GROUP];
    for (size_t r = 0; r < count; r++) {
        const FN(exp_args) a = {P(set1)((offset[r] - (T)EXP_FLOOR_ARG) * shared->inverse_c), P(set1)(shared->c_hi),
                                P(set1)(shared->c_lo), P(set1)(-offset[r])};
        V total = P(set1)((T)0);
        for (size_t i = 0; i < vectors; i++) {
            /* Lanes past n hold the fill, -inf once negated or not: exp 0. */
            e[r][i] = FN(fast_exp)(negate ? P(neg)(v[r][i]) : v[r][i], &a);
            total = P(add)(total, e[r][i]);
        }
        ACC acc = P(acc_zero)();
        P(acc_add)(&acc, total);
        const WIDE sum = (WIDE)P(acc_total)(&acc);
        nan_row[r] = isnan(sum);
        if (log_output) {
            const WIDE log_sum =
                FN(log_sum_from)(sum, FN(offset_remainder)(shared->c_hi, shared->c_lo, reference_seen[r], offset[r]));
            first[r] = P(set1)((T)scale);
            second[r] = P(set1)(-(T)log_sum);
        } else {
            first[r] = P(set1)((T)((WIDE)1 / sum));
            second[r] = P(set1)((T)0);
        }
    }
    for (size_t r = 0; r < count; r++) {
        T *out_row = y + r * n;
        if (nan_row[r]) {
            FN(fill)(out_row, 0, n, (T)NAN);
            continue;
        }
        const V reference_v = P(set1)(row_reference[r]);
        for (size_t i = 0; i < vectors; i++) {
            const size_t lanes = n - i * LANES < LANES ? n - i * LANES : LANES;
            const V out =
                log_output ? P(fmadd)(first[r], P(sub)(v[r][i], reference_v), second[r]) : P(mul)(e[r][i], first[r]);
            if (lanes == LANES)
                P(store)(out_row + i * LANES, out);
            else
                P(store_tail)(out_row + i * LANES, out, lanes);
        }
    }
}

/* The group's vector count as a compile-time constant: the phases unroll
 * completely and the exps stay in registers. */
static SOFTMAX_FORCE_INLINE void FN(fast_small_by_vectors)(size_t count, softmax_op op, const T *x, T *y, size_t n,
                                                           double scale, const FN(shared_plan) * shared)
{
    switch ((n + LANES - 1) / LANES) {
    case 2:
        FN(fast_small_body)(count, 2, op, x, y, n, scale, shared);
        break;
    case 3:
        FN(fast_small_body)(count, 3, op, x, y, n, scale, shared);
        break;
    case 4:
        FN(fast_small_body)(count, 4, op, x, y, n, scale, shared);
        break;
    case 5:
        FN(fast_small_body)(count, 5, op, x, y, n, scale, shared);
        break;
    case 6:
        FN(fast_small_body)(count, 6, op, x, y, n, scale, shared);
        break;
    case 7:
        FN(fast_small_body)(count, 7, op, x, y, n, scale, shared);
        break;
    default:
        FN(fast_small_body)(count, 8, op, x, y, n, scale, shared);
        break;
    }
}

/* `rows` consecutive rows of n elements (shared->valid). */
static void FN(fast_small_rows)(softmax_op op, const T *x, T *y, size_t rows, size_t n, double scale,
                                const FN(shared_plan) * shared)
{
    size_t r = 0;
    for (; r + FAST_SMALL_GROUP <= rows; r += FAST_SMALL_GROUP)
        FN(fast_small_by_vectors)(FAST_SMALL_GROUP, op, x + r * n, y + r * n, n, scale, shared);
    if (r < rows)
        FN(fast_small_by_vectors)(1, op, x + r * n, y + r * n, n, scale, shared);
}
#endif

static void FN(rows_body)(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                          double scale)
{
    if ((op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX) && n <= LANES) {
        FN(tiny_rows)(op, src, dst, rows, n, scale);
        return;
    }
    const T *x = src;
    const T *g = grad;
    T *y = dst;
    const FN(shared_plan) shared = FN(shared_plan_of)(scale);
    /* Softmax rows of the in-cache regime park the exps' residuals here. */
    T *residuals = NULL;
    if (op == SOFTMAX_OP_SOFTMAX && n > SMALL_VECTORS * LANES && n * sizeof(T) <= STREAM_BYTES) {
        residuals = softmax_workspace(n * sizeof(T));
        if (residuals == NULL) {
            for (size_t r = 0; r < rows; r++)
                softmax_line_run(&REF_LINES, op, x + r * n, NULL, y + r * n, n, 1, scale);
            return;
        }
    }
    if ((op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX) && n <= SMALL_VECTORS * LANES) {
        FN(small_forward_rows)(op, x, y, rows, n, scale, &shared);
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        size_t offset = r * n;
        switch (op) {
        case SOFTMAX_OP_SOFTMAX:
        case SOFTMAX_OP_LOG_SOFTMAX:
            FN(forward_row)(op, x + offset, y + offset, residuals, n, scale, &shared);
            break;
        case SOFTMAX_OP_SOFTMAX_BACKWARD:
            FN(softmax_backward_row)(x + offset, g + offset, y + offset, n, scale);
            break;
        case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
        case SOFTMAX_OP_LOG_SOFTMAX_JVP:
            FN(log_gradient_row)(op, x + offset, g + offset, y + offset, n, scale);
            break;
        }
    }
}

/* Forward kernels run with flush-to-zero (see vec_flush_to_zero_begin);
 * the gradients keep the caller's floating-point environment. */
static void FN(rows)(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n, double scale)
{
    if (op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) {
        FN(rows_body)(op, src, grad, dst, rows, n, scale);
        return;
    }
    const unsigned int saved = vec_flush_to_zero_begin();
    FN(rows_body)(op, src, grad, dst, rows, n, scale);
    vec_flush_to_zero_end(saved);
}

#if SOFTMAX_HAS_FAST_EXP
/* ------------------------------------------------------------ fast mode */

static void FN(fast_tiny_group)(softmax_op op, const T *x, T *y, size_t count, size_t n, double scale,
                                const FN(shared_plan) * shared)
{
    FN(tiny_group_body)(true, op, x, y, count, n, scale, shared);
}

static void FN(fast_tiny_row)(softmax_op op, const T *x, T *y, size_t n, double scale, const FN(shared_plan) * shared)
{
    FN(tiny_row_body)(true, op, x, y, n, scale, shared);
}

/* Vectors per partial sum in T before it goes to the wide accumulator: 4
 * accumulators of FAST_RUN terms per lane keep the sum's relative error
 * below FAST_RUN * 2^-24 whatever the row length. */
#define FAST_RUN 16

/* One row of the fast mode, three passes from the cache: the reference
 * element, the exps (stored in e, for softmax) and their sum, then the
 * scaling into y (softmax: by 1/sum rounded once; log-softmax: as the
 * accurate kernels). x and y of T, or of half-precision bits read and
 * written in place (SOURCE_ / DEST_ kinds, as the accurate passes do; e
 * may be y when y is of T). False, having written nothing, when the row
 * needs the reference kernels (half-precision x only: a T row runs them
 * here). */
static SOFTMAX_FORCE_INLINE bool FN(fast_row_reading)(softmax_op op, const void *x, int kinds, T *e, void *y, size_t n,
                                                      double scale)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    FN(row_plan) plan;
    const T reference = FN(reference_reading)(x, n, scale, NULL, kinds);
    if (!FN(plan_row)(scale, reference, &plan)) {
        if (kinds & (SOURCE_BF16 | SOURCE_F16))
            return false;
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
        return true;
    }
    const FN(exp_args) a = FN(broadcast_plan)(&plan);
    const bool negate = plan.negate;
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    ACC wide = P(acc_zero)();
    V s0 = P(set1)(0), s1 = s0, s2 = s0, s3 = s0;
    size_t run = 0, i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        V x0 = FN(read)(x, NULL, kinds, i), x1 = FN(read)(x, NULL, kinds, i + LANES),
          x2 = FN(read)(x, NULL, kinds, i + 2 * LANES), x3 = FN(read)(x, NULL, kinds, i + 3 * LANES);
        if (negate) {
            x0 = P(neg)(x0);
            x1 = P(neg)(x1);
            x2 = P(neg)(x2);
            x3 = P(neg)(x3);
        }
        const V e0 = FN(fast_exp)(x0, &a), e1 = FN(fast_exp)(x1, &a), e2 = FN(fast_exp)(x2, &a),
                e3 = FN(fast_exp)(x3, &a);
        if (!log_output) {
            P(store)(e + i, e0);
            P(store)(e + i + LANES, e1);
            P(store)(e + i + 2 * LANES, e2);
            P(store)(e + i + 3 * LANES, e3);
        }
        s0 = P(add)(s0, e0);
        s1 = P(add)(s1, e1);
        s2 = P(add)(s2, e2);
        s3 = P(add)(s3, e3);
        if (++run == FAST_RUN) {
            P(acc_add)(&wide, P(add)(P(add)(s0, s1), P(add)(s2, s3)));
            s0 = s1 = s2 = s3 = P(set1)(0);
            run = 0;
        }
    }
    for (; i < n; i += LANES) {
        const size_t count = n - i < LANES ? n - i : LANES;
        /* The fill becomes -inf once negated or not: its exp is 0. */
        V x0 = FN(read_tail)(x, NULL, kinds, i, count, fill);
        if (negate)
            x0 = P(neg)(x0);
        const V e0 = FN(fast_exp)(x0, &a);
        if (!log_output)
            P(store_tail)(e + i, e0, count);
        s0 = P(add)(s0, e0);
    }
    P(acc_add)(&wide, P(add)(P(add)(s0, s1), P(add)(s2, s3)));
    const WIDE sum = (WIDE)P(acc_total)(&wide);
    if (isnan(sum)) {
        FN(fill_out)(y, kinds, 0, n, (T)NAN);
        return true;
    }
    if (log_output) {
        FN(log_output_excluding)
        (x, y, 0, n, plan.reference, (T)scale, (T)FN(log_sum_of)(sum, &plan), NULL, kinds);
        return true;
    }
    const V r = P(set1)((T)((WIDE)1 / sum));
    /* A half-precision y is streamed, as in normalize_into. */
    const bool stream = (kinds & DEST_HALF) != 0;
    for (i = 0; stream && i < n && !FN(stream_aligned)(y, kinds, i); i++)
        FN(write_tail)(y, kinds, i, P(mul)(P(load_tail)(e + i, 1, 0), r), 1);
    for (; i + LANES <= n; i += LANES) {
        FN(write_as)(y, kinds, i, P(mul)(P(load)(e + i), r), stream);
    }
    if (stream)
        P(stream_fence)();
    if (i < n)
        FN(write_tail)(y, kinds, i, P(mul)(P(load_tail)(e + i, n - i, 0), r), n - i);
    return true;
}

static void FN(fast_row)(softmax_op op, const T *x, T *y, size_t n, double scale)
{
    FN(fast_row_reading)(op, x, 0, y, y, n, scale);
}

/* The forward ops under SOFTMAX_FLAG_FAST, contiguous rows; every row is
 * the same function of that row alone, as in rows(). */
static void FN(fast_rows)(softmax_op op, const void *src, void *dst, size_t rows, size_t n, double scale)
{
    const T *x = src;
    T *y = dst;
    const unsigned int saved = vec_flush_to_zero_begin();
    const FN(shared_plan) shared = FN(shared_plan_of)(scale);
    if (n <= LANES) {
        FN(tiny_rows_with)(FN(fast_tiny_group), FN(fast_tiny_row), op, x, y, rows, n, scale);
    } else if (n <= SMALL_VECTORS * LANES && shared.valid) {
        FN(fast_small_rows)(op, x, y, rows, n, scale, &shared);
    } else {
        for (size_t r = 0; r < rows; r++)
            FN(fast_row)(op, x + r * n, y + r * n, n, scale);
    }
    vec_flush_to_zero_end(saved);
}
#define FAST_ROWS_FN FN(fast_rows)

#if defined(HALF_ROWS)
/* See softmax_kernels.fast_half_line. */
static bool FN(fast_half_line)(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n,
                               double scale)
{
    if (n <= SMALL_VECTORS * LANES)
        return false;
    T *e = dst_half ? softmax_workspace(n * sizeof(T)) : dst;
    if (e == NULL)
        return false;
    const unsigned int saved = vec_flush_to_zero_begin();
    bool done;
    switch (FN(half_line_kinds)(bf16, dst_half)) {
    case SOURCE_BF16:
        done = FN(fast_row_reading)(op, x, SOURCE_BF16, e, dst, n, scale);
        break;
    case SOURCE_BF16 | DEST_BF16:
        done = FN(fast_row_reading)(op, x, SOURCE_BF16 | DEST_BF16, e, dst, n, scale);
        break;
    case SOURCE_F16:
        done = FN(fast_row_reading)(op, x, SOURCE_F16, e, dst, n, scale);
        break;
    default:
        done = FN(fast_row_reading)(op, x, SOURCE_F16 | DEST_F16, e, dst, n, scale);
        break;
    }
    vec_flush_to_zero_end(saved);
    return done;
}
#define FAST_HALF_LINE_FN FN(fast_half_line)
#else
#define FAST_HALF_LINE_FN NULL
#endif
#undef FAST_RUN
#else
#define FAST_ROWS_FN NULL
#define FAST_HALF_LINE_FN NULL
#endif

/* Rows of which only a prefix is kept (a causal mask): row r is the op on
 * its first kept[r] elements, then 0 (log-softmax: -inf; gradients: 0) to
 * n. One call for many rows, so that the rows share the call's set-up. Bit
 * for bit rows(op, row, 1, kept[r]) followed by the fill. */
static void FN(prefix_rows)(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                            const size_t *kept, double scale)
{
    const bool forward = op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX;
    const T *x = src;
    const T *g = grad;
    T *y = dst;
    const T fill = op == SOFTMAX_OP_LOG_SOFTMAX ? (T)-INFINITY : (T)0;
    const FN(shared_plan) shared = FN(shared_plan_of)(scale);
    T *residuals = NULL;
    if (op == SOFTMAX_OP_SOFTMAX && n > SMALL_VECTORS * LANES && n * sizeof(T) <= STREAM_BYTES)
        residuals = softmax_workspace(n * sizeof(T));
    const unsigned int saved = forward ? vec_flush_to_zero_begin() : 0;
    for (size_t r = 0; r < rows; r++) {
        const size_t offset = r * n, length = kept[r];
        /* The kernels ask for the data one row length ahead, which here is
         * the unread rest of this row: the kept prefix of a row ahead is
         * asked for here instead (a causal row's reads then hit the cache,
         * as an unmasked row's do). */
        if (r + ROW_AHEAD < rows) {
            FN(prefetch_span)(x + offset + ROW_AHEAD * n, kept[r + ROW_AHEAD]);
            if (!forward)
                FN(prefetch_span)(g + offset + ROW_AHEAD * n, kept[r + ROW_AHEAD]);
        }
        if (length == 0) {
        } else if (!forward) {
            FN(rows_body)(op, x + offset, g + offset, y + offset, 1, length, scale);
        } else if (length <= LANES) {
            FN(tiny_rows)(op, x + offset, y + offset, 1, length, scale);
        } else if (op == SOFTMAX_OP_SOFTMAX && length * sizeof(T) <= STREAM_BYTES && residuals == NULL) {
            /* No workspace (n itself is short, or none could be had). */
            if (length > SMALL_VECTORS * LANES)
                softmax_line_run(&REF_LINES, op, x + offset, NULL, y + offset, length, 1, scale);
            else
                FN(forward_row)(op, x + offset, y + offset, NULL, length, scale, &shared);
        } else {
            /* Every causal row has its own length: a short one alone in the
             * grouped small-row kernels would pay for LANES rows. */
            FN(blocks_forward_row)(op, x + offset, y + offset, residuals, length, scale);
        }
        FN(fill)(y + offset, length, n, fill);
    }
    if (forward)
        vec_flush_to_zero_end(saved);
}

/* ------------------------------------------------ one row, many threads */

/* The same phases as forward_row over the same blocks, each phase shared
 * by the team; the per-block results are combined in block order by one
 * thread, so the bits equal the single-thread ones. */
static void FN(long_row)(softmax_op op, const void *src, const void *grad, void *dst, size_t n, double scale,
                         int threads)
{
    const T *x = src;
    T *y = dst;
    const size_t blocks = FN(block_count)(n);
    const bool forward = op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool streaming = n * sizeof(T) > STREAM_BYTES;
    FN(block_summary) *summaries = forward ? malloc(blocks * sizeof *summaries) : NULL;
    T *references = forward ? malloc(blocks * sizeof *references) : NULL;
    /* The calling thread's workspace, shared by the team for this call. */
    T *residuals = op == SOFTMAX_OP_SOFTMAX && !streaming ? softmax_workspace(n * sizeof *residuals)
                   : streaming                            ? FN(stream_exps)(op, n)
                                                          : NULL;
    if (summaries == NULL || references == NULL || (op == SOFTMAX_OP_SOFTMAX && !streaming && residuals == NULL) ||
        threads < 2) {
        free(summaries);
        free(references);
        FN(rows)(op, src, grad, dst, 1, n, scale);
        return;
    }
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    bool planned = false;
    FN(row_plan) plan;
    WIDE sum = 0;
#pragma omp parallel num_threads(threads)
    {
        const unsigned int saved_csr = vec_flush_to_zero_begin(); /* per thread */
        /* Phase 1: block maxima (in-cache) or block summaries (streaming). */
#pragma omp for schedule(static)
        for (size_t b = 0; b < blocks; b++) {
            if (streaming) {
                size_t begin = b * BLOCK, end = begin + BLOCK < n ? begin + BLOCK : n;
                summaries[b] = FN(summarize_block)(x, residuals, residuals ? residuals + n : NULL, begin, end, scale);
            } else {
                references[b] = FN(reference_over)(x, n, b, b + 1, scale);
            }
        }
#pragma omp single
        {
            if (streaming) {
                planned = FN(combine_summaries)(summaries, blocks, scale, &plan, &sum);
            } else {
                T reference = references[0];
                for (size_t b = 1; b < blocks; b++)
                    if (scale < 0 ? references[b] < reference : references[b] > reference)
                        reference = references[b];
                planned = FN(plan_row)(scale, reference, &plan);
            }
        }
        /* Phase 2 (in-cache): exps stored, one sum per block. */
        if (planned && !streaming) {
            FN(exp_args) a = FN(broadcast_plan)(&plan);
#pragma omp for schedule(static)
            for (size_t b = 0; b < blocks; b++)
                summaries[b].sum = FN(exp_blocks)(x, log_output ? NULL : y, residuals, b, b + 1, n, &a, plan.negate, 0);
#pragma omp single
            {
                for (size_t b = 0; b < blocks; b++)
                    sum += summaries[b].sum;
            }
        }
        /* Phase 3: the writing pass. */
        if (planned && !isnan(sum)) {
            FN(exp_args) a = FN(broadcast_plan)(&plan);
            const FN(reciprocal) r = FN(reciprocal_of)(sum);
            const T log_sum = (T)FN(log_sum_of)(sum, &plan);
#pragma omp for schedule(static)
            for (size_t b = 0; b < blocks; b++) {
                size_t begin = b * BLOCK, end = begin + BLOCK < n ? begin + BLOCK : n;
                if (log_output)
                    FN(log_output)(x, y, begin, end, plan.reference, (T)scale, log_sum);
                else if (streaming && residuals != NULL)
                    FN(rescale)
                (residuals + begin, residuals + n + begin, y + begin, end - begin, summaries[b].offset - plan.offset, r,
                 true);
                else if (streaming) FN(exp_normalize_stream)(x, y, begin, end, &a, plan.negate, r, true);
                else FN(normalize)(y, residuals, begin, end, r);
            }
        }
        vec_flush_to_zero_end(saved_csr);
    }
    free(summaries);
    free(references);
    if (!planned)
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
    else if (isnan(sum))
        FN(fill)(y, 0, n, (T)NAN);
}

/* ------------------------------------------- columns (a non-last axis) */

/* Lines j in [j_begin, j_end) of an [n, inner] slice, COLUMN_VECTORS
 * vectors of adjacent lines at a time: each lane is its own softmax row,
 * walked down the n axis, so loads stay contiguous. */
#define COLUMN_VECTORS 4
#define COLUMN_CHUNK ((size_t)COLUMN_VECTORS * LANES)
#define COLUMN_AHEAD 16

/* residuals: room for 2 * n * COLUMN_CHUNK elements (softmax only): the
 * residuals, then the exps. */
static SOFTMAX_FORCE_INLINE void FN(column_chunk_body)(softmax_op op, const T *x, T *y, T *residuals, size_t n,
                                                       size_t inner, size_t j0, size_t width, double scale)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = scale < 0;
    const size_t vectors = (width + LANES - 1) / LANES;
    /* Pass 1: per-lane reference (max, or min for scale < 0). */
    T references[COLUMN_CHUNK];
    {
        V m[COLUMN_VECTORS];
        const T start = negate ? (T)INFINITY : (T)-INFINITY;
        for (size_t v = 0; v < vectors; v++)
            m[v] = P(set1)(start);
        for (size_t k = 0; k < n; k++) {
            const T *row = x + k * inner + j0;
            for (size_t v = 0; v < vectors; v++) {
                size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
                /* Every row of the chunk is on its own page, where the
                 * hardware's prefetchers do not follow: ask for the rows
                 * ahead. */
                if (k + COLUMN_AHEAD < n)
                    vec_prefetch(row + COLUMN_AHEAD * inner + v * LANES);
                V xv = count == LANES ? P(load)(row + v * LANES) : P(load_tail)(row + v * LANES, count, start);
                m[v] = negate ? P(min)(xv, m[v]) : P(max)(xv, m[v]);
            }
        }
        for (size_t v = 0; v < vectors; v++)
            P(store)(references + v * LANES, m[v]);
    }
    /* Per-lane plans; any special lane sends the chunk to the reference. */
    FN(row_plan) plans[COLUMN_CHUNK];
    for (size_t j = 0; j < width; j++) {
        if (!FN(plan_row)(scale, references[j], &plans[j])) {
            for (size_t jj = 0; jj < width; jj++)
                softmax_line_run(&REF_LINES, op, x + j0 + jj, NULL, y + j0 + jj, n, (ptrdiff_t)inner, scale);
            return;
        }
    }
    FN(exp_args) args[COLUMN_VECTORS];
    {
        T floors[COLUMN_CHUNK], neg_offsets[COLUMN_CHUNK];
        for (size_t j = 0; j < COLUMN_CHUNK; j++) {
            size_t source = j < width ? j : 0;
            floors[j] = plans[source].x_floor;
            neg_offsets[j] = (T)-plans[source].offset;
        }
        for (size_t v = 0; v < vectors; v++) {
            args[v].x_floor = P(load)(floors + v * LANES);
            args[v].neg_offset = P(load)(neg_offsets + v * LANES);
            args[v].c_hi = P(set1)(plans[0].c_hi);
            args[v].c_lo = P(set1)(plans[0].c_lo);
        }
    }
    /* Pass 2: exps (stored for softmax) and per-lane sums, split as in
     * exp_block_excluding: the high parts of SPLIT_RUN rows add up exactly,
     * then go to the wide accumulator with the low parts. */
    ACC sums[COLUMN_VECTORS];
    V residual_sums[COLUMN_VECTORS], highs[COLUMN_VECTORS];
    for (size_t v = 0; v < vectors; v++) {
        sums[v] = P(acc_zero)();
        residual_sums[v] = highs[v] = P(set1)(0);
    }
    for (size_t k = 0; k < n; k++) {
        if (k % SPLIT_RUN == 0 && k != 0)
            for (size_t v = 0; v < vectors; v++) {
                P(acc_add)(&sums[v], highs[v]);
                P(acc_add)(&sums[v], residual_sums[v]);
                highs[v] = residual_sums[v] = P(set1)(0);
            }
        const T *row = x + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V xv = count == LANES ? P(load)(row + v * LANES)
                                  : P(load_tail)(row + v * LANES, count, negate ? (T)INFINITY : (T)-INFINITY);
            if (negate)
                xv = P(neg)(xv);
            FN(exp_parts) parts = FN(exp_parts_of)(xv, &args[v]);
            V e = P(scale_pow2)(parts.mantissa, parts.k);
            V residual = P(scale_pow2)(parts.residual, parts.k);
            if (!log_output) {
                /* In the workspace beside the residuals, not in y: y's rows
                 * are a page apart each (and not in cache: every store
                 * would first read its line), the workspace is contiguous. */
                P(store)(residuals + (n + k) * COLUMN_CHUNK + v * LANES, e);
                P(store)(residuals + k * COLUMN_CHUNK + v * LANES, residual);
            }
            const V high = FN(grid_high)(e);
            highs[v] = P(add)(highs[v], high);
            residual_sums[v] = P(add)(residual_sums[v], P(add)(P(sub)(e, high), residual));
        }
    }
    for (size_t v = 0; v < vectors; v++) {
        P(acc_add)(&sums[v], highs[v]);
        P(acc_add)(&sums[v], residual_sums[v]);
        residual_sums[v] = P(set1)(0);
    }
    /* Per-lane constants of the writing pass. */
    T first[COLUMN_CHUNK], second[COLUMN_CHUNK];
    for (size_t v = 0; v < vectors; v++) {
        WIDE lane_sums[LANES];
        T lane_residuals[LANES];
        P(acc_lanes)(&sums[v], lane_sums);
        P(store)(lane_residuals, residual_sums[v]);
        for (size_t l = 0; l < LANES; l++) {
            lane_sums[l] += (WIDE)lane_residuals[l];
            size_t j = v * LANES + l;
            size_t source = j < width ? j : 0;
            if (log_output) {
                first[j] = (T)FN(log_sum_of)(lane_sums[l], &plans[source]);
                second[j] = plans[source].reference;
            } else {
                FN(reciprocal) r = FN(reciprocal_of)(lane_sums[l]);
                first[j] = r.hi; /* NaN for a lane that met a NaN */
                second[j] = isnan(lane_sums[l]) ? (T)NAN : r.lo;
            }
        }
    }
    /* Pass 3. */
    const V s = P(set1)((T)scale);
    for (size_t k = 0; k < n; k++) {
        const T *row = x + k * inner + j0;
        T *out = y + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V a = P(load)(first + v * LANES), b = P(load)(second + v * LANES);
            V result;
            if (log_output) {
                V xv = count == LANES ? P(load)(row + v * LANES) : P(load_tail)(row + v * LANES, count, 0);
                result = P(fmadd)(s, P(sub)(xv, b), P(neg)(a));
            } else {
                const V e = P(load)(residuals + (n + k) * COLUMN_CHUNK + v * LANES);
                result = FN(apply_reciprocal)(e, P(load)(residuals + k * COLUMN_CHUNK + v * LANES), a, b);
            }
            if (count == LANES)
                P(store)(out + v * LANES, result);
            else
                P(store_tail)(out + v * LANES, result, count);
        }
    }
}

/* A full chunk with its width a constant: the loops over its vectors
 * unroll and the per-vector tail tests vanish. */
static void FN(column_chunk)(softmax_op op, const T *x, T *y, T *residuals, size_t n, size_t inner, size_t j0,
                             size_t width, double scale)
{
    if (width == COLUMN_CHUNK)
        FN(column_chunk_body)(op, x, y, residuals, n, inner, j0, COLUMN_CHUNK, scale);
    else
        FN(column_chunk_body)(op, x, y, residuals, n, inner, j0, width, scale);
}

/* The gradients over a non-last axis, a chunk of adjacent lines at a time:
 * the same formulas as the row kernels, one lane per line. A chunk holding
 * a line the contract treats specially (infinite scale, NaN, a fully masked
 * line) goes to the reference lines whole, before anything is written. */
static void FN(column_gradient_chunk)(softmax_op op, const T *src, const T *g, T *out, size_t n, size_t inner,
                                      size_t j0, size_t width, double scale)
{
    const bool log_input = op != SOFTMAX_OP_SOFTMAX_BACKWARD;
    const FN(exp_args) a = FN(plain_exp_args)();
    const size_t vectors = (width + LANES - 1) / LANES;
    const T src_fill = log_input ? (T)-INFINITY : (T)0;
    ACC acc[COLUMN_VECTORS];
    V top[COLUMN_VECTORS], nan_flag[COLUMN_VECTORS];
    for (size_t v = 0; v < vectors; v++) {
        acc[v] = P(acc_zero)();
        top[v] = P(set1)((T)-INFINITY);
        nan_flag[v] = P(set1)(0);
    }
    for (size_t k = 0; k < n; k++) {
        const T *s_row = src + k * inner + j0, *g_row = g + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V sv = count == LANES ? P(load)(s_row + v * LANES) : P(load_tail)(s_row + v * LANES, count, src_fill);
            V gv = count == LANES ? P(load)(g_row + v * LANES) : P(load_tail)(g_row + v * LANES, count, 0);
            top[v] = P(max)(sv, top[v]);
            nan_flag[v] = P(keep_nan)(nan_flag[v], sv);
            if (op == SOFTMAX_OP_SOFTMAX_BACKWARD)
                P(acc_add_product)(&acc[v], sv, gv);
            else if (op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD)
                P(acc_add)(&acc[v], gv);
            else
                P(acc_add_product)(&acc[v], FN(plain_exp)(sv, &a), gv);
        }
    }
    T hi[COLUMN_CHUNK], lo[COLUMN_CHUNK];
    bool special = isinf(scale);
    for (size_t v = 0; v < vectors; v++) {
        WIDE lanes[LANES];
        T tops[LANES];
        P(acc_lanes)(&acc[v], lanes);
        P(store)(tops, top[v]);
        special |= P(any_nan)(nan_flag[v]) != 0;
        for (size_t l = 0; l < LANES; l++) {
            size_t j = v * LANES + l;
            if (j < width) {
                special |= isnan(lanes[l]) || (log_input && !(tops[l] > (T)-INFINITY));
                const FN(split) split = FN(split_of)(lanes[l]);
                hi[j] = split.hi;
                lo[j] = split.lo;
            } else {
                hi[j] = lo[j] = 0;
            }
        }
    }
    if (special) {
        for (size_t j = j0; j < j0 + width; j++)
            softmax_line_run(&REF_LINES, op, src + j, g + j, out + j, n, (ptrdiff_t)inner, scale);
        return;
    }
    const V sc = P(set1)((T)scale);
    for (size_t k = 0; k < n; k++) {
        const T *s_row = src + k * inner + j0, *g_row = g + k * inner + j0;
        T *o_row = out + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V sv = count == LANES ? P(load)(s_row + v * LANES) : P(load_tail)(s_row + v * LANES, count, src_fill);
            V gv = count == LANES ? P(load)(g_row + v * LANES) : P(load_tail)(g_row + v * LANES, count, 0);
            V h = P(load)(hi + v * LANES), l = P(load)(lo + v * LANES);
            V result;
            if (op == SOFTMAX_OP_SOFTMAX_BACKWARD) {
                result = P(mul)(P(mul)(sc, sv), P(sub)(P(sub)(gv, h), l));
            } else if (op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD) {
                V yi = FN(plain_exp)(sv, &a);
                result = P(mul)(sc, P(fmadd)(P(neg)(yi), l, P(fmadd)(P(neg)(yi), h, gv)));
            } else {
                result = P(mul)(sc, P(sub)(P(sub)(gv, h), l));
            }
            if (count == LANES)
                P(store)(o_row + v * LANES, result);
            else
                P(store_tail)(o_row + v * LANES, result, count);
        }
    }
}

static void FN(columns)(softmax_op op, const void *src, const void *grad, void *dst, size_t n, size_t inner,
                        size_t j_begin, size_t j_end, double scale)
{
    const T *x = src;
    T *y = dst;
    if (op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) {
        for (size_t j0 = j_begin; j0 < j_end; j0 += COLUMN_CHUNK) {
            size_t width = j_end - j0 < COLUMN_CHUNK ? j_end - j0 : COLUMN_CHUNK;
            FN(column_gradient_chunk)(op, x, grad, y, n, inner, j0, width, scale);
        }
        return;
    }
    T *residuals = NULL;
    if (op == SOFTMAX_OP_SOFTMAX) {
        /* Long columns (beyond 32 MiB of exps and residuals, 65536 f32) take the reference lines
         * rather than a scratch buffer the size of the input. */
        const size_t bytes = 2 * n * COLUMN_CHUNK * sizeof *residuals;
        residuals = bytes <= ((size_t)32 << 20) ? softmax_workspace(bytes) : NULL;
        if (residuals == NULL) {
            for (size_t j = j_begin; j < j_end; j++)
                softmax_line_run(&REF_LINES, op, x + j, NULL, y + j, n, (ptrdiff_t)inner, scale);
            return;
        }
    }
    const unsigned int saved = vec_flush_to_zero_begin();
    for (size_t j0 = j_begin; j0 < j_end; j0 += COLUMN_CHUNK) {
        size_t width = j_end - j0 < COLUMN_CHUNK ? j_end - j0 : COLUMN_CHUNK;
        FN(column_chunk)(op, x, y, residuals, n, inner, j0, width, scale);
    }
    vec_flush_to_zero_end(saved);
}

/* e^x through exp_eval with offset 0, under the forward kernels'
 * flush-to-zero: what the exhaustive test checks. */
static void FN(exp_for_tests)(const void *src, void *dst, void *residual_dst, size_t n)
{
    const T *x = src;
    T *y = dst;
    T *residual = residual_dst;
    const WIDE c = WIDE_LOG2E;
    const T c_hi = (T)c;
    const T c_lo = (T)(c - (WIDE)c_hi);
    const FN(exp_args) a = {P(set1)((T)(-(WIDE)EXP_FLOOR_ARG / c)), P(set1)(c_hi), P(set1)(c_lo), P(set1)(0)};
    const unsigned int saved = vec_flush_to_zero_begin();
    for (size_t i = 0; i < n; i += LANES) {
        size_t count = n - i < LANES ? n - i : LANES;
        FN(exp_parts) parts = FN(exp_parts_of)(P(load_tail)(x + i, count, 0), &a);
        P(store_tail)(y + i, P(scale_pow2)(parts.mantissa, parts.k), count);
        if (residual)
            P(store_tail)(residual + i, P(scale_pow2)(parts.residual, parts.k), count);
    }
    vec_flush_to_zero_end(saved);
}

/* See softmax_kernels.transpose_lines. Tiles of LANES source rows (j) by
 * LANES lines (b): each load is LANES adjacent lines of one j, each store
 * LANES consecutive j of one line. The b tiles run innermost so that the
 * LANES source rows of a j tile are read in address order. */
static void FN(transpose_lines)(const void *src_bytes, int64_t stride, size_t lines, size_t n, void *out_bytes)
{
    const T *src = src_bytes;
    T *out = out_bytes;
    const size_t full_lines = lines - lines % LANES, full_n = n - n % LANES;
    for (size_t j0 = 0; j0 < full_n; j0 += LANES) {
        const T *rows = src + (int64_t)j0 * stride;
        for (size_t b0 = 0; b0 < full_lines; b0 += LANES) {
            V tile[LANES];
            for (size_t r = 0; r < LANES; r++)
                tile[r] = P(load)(rows + (int64_t)r * stride + (int64_t)b0);
            P(transpose)(tile);
            for (size_t c = 0; c < LANES; c++)
                P(store)(out + (b0 + c) * n + j0, tile[c]);
        }
        for (size_t b = full_lines; b < lines; b++)
            for (size_t r = 0; r < LANES; r++)
                out[b * n + j0 + r] = rows[(int64_t)r * stride + (int64_t)b];
    }
    for (size_t j = full_n; j < n; j++)
        for (size_t b = 0; b < lines; b++)
            out[b * n + j] = src[(int64_t)j * stride + (int64_t)b];
}

#if defined(HALF_ROWS)
/* One long forward row of bf16 / f16 data computed in f32 (the streaming
 * regime): pass 1 summarizes each block, reading the half-precision values
 * as they come, and (softmax rows up to STORED_STREAM_BYTES of f32) keeps
 * its exps in the thread's workspace; pass 2 writes the outputs (rescaling
 * those exps, or from x read again), narrowed as they are stored: bit for
 * bit forward_row on the widened row, narrowed. False (nothing written)
 * when the row needs the general path: special values or an allocation
 * failure. */
static SOFTMAX_FORCE_INLINE bool FN(half_row_body)(softmax_op op, const uint16_t *x, uint16_t *y, size_t n,
                                                   double scale, int kinds)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const size_t blocks = FN(block_count)(n);
    FN(block_summary) *summaries = malloc(blocks * sizeof *summaries);
    /* The exps are kept where forward_row keeps them (stream_exps), for
     * the same bits. */
    const bool keep = !log_output && n * sizeof(T) <= STORED_STREAM_BYTES;
    T *exps = keep ? softmax_workspace(2 * n * sizeof(T)) : NULL;
    if (summaries == NULL || (keep && exps == NULL)) {
        free(summaries);
        return false;
    }
    T *residuals = keep ? exps + n : NULL;
    const unsigned int saved = vec_flush_to_zero_begin();
    for (size_t b = 0; b < blocks; b++) {
        const size_t begin = b * BLOCK, end = begin + BLOCK < n ? begin + BLOCK : n;
        summaries[b] = FN(summarize_block_reading)(x, kinds, exps, residuals, begin, end, scale);
    }
    FN(row_plan) plan;
    WIDE sum = 0;
    const bool planned = FN(combine_summaries)(summaries, blocks, scale, &plan, &sum);
    if (!planned || isnan(sum)) {
        free(summaries);
        vec_flush_to_zero_end(saved);
        return false;
    }
    const FN(exp_args) a = FN(broadcast_plan)(&plan);
    const FN(reciprocal) r = FN(reciprocal_of)(sum);
    if (log_output)
        FN(log_output_excluding)(x, y, 0, n, plan.reference, (T)scale, (T)FN(log_sum_of)(sum, &plan), NULL, kinds);
    else if (keep)
        for (size_t b = 0; b < blocks; b++) {
            const size_t begin = b * BLOCK, length = begin + BLOCK < n ? BLOCK : n - begin;
            FN(rescale_into)
            (y + begin, kinds, exps + begin, residuals + begin, length, summaries[b].offset - plan.offset, r, true);
        }
    else
        FN(exp_normalize_into)(x, y, kinds, 0, n, &a, plan.negate, r, true);
    free(summaries);
    vec_flush_to_zero_end(saved);
    return true;
}

static bool FN(half_row)(softmax_op op, const uint16_t *x, uint16_t *y, size_t n, double scale, int bf16)
{
    return bf16 ? FN(half_row_body)(op, x, y, n, scale, SOURCE_BF16 | DEST_BF16)
                : FN(half_row_body)(op, x, y, n, scale, SOURCE_F16 | DEST_F16);
}
#define HALF_ROW_FN FN(half_row)
#else
#define HALF_ROW_FN NULL
#endif

const softmax_kernels KERNELS_NAME = {
    .element_size = sizeof(T),
    .rows = FN(rows),
    .fast_rows = FAST_ROWS_FN,
    .prefix_rows = FN(prefix_rows),
    .columns = FN(columns),
    .column_chunk = COLUMN_CHUNK,
    .long_row = FN(long_row),
    .long_row_min = 8 * BLOCK,
    .exp = FN(exp_for_tests),
    .transpose_lines = FN(transpose_lines),
    .excluding_row = EXCLUDING_ROW_FN,
    .half_line = HALF_LINE_FN,
    .widen_half = HALF_WIDEN,
    .narrow_half = HALF_NARROW,
    .half_row = HALF_ROW_FN,
    .fast_half_line = FAST_HALF_LINE_FN,
    .split_logits = SPLIT_LOGITS,
    .apply_low_parts = APPLY_LOW_PARTS,
};
#undef HALF_ROW_FN
#undef EXCLUDING_ROW_FN
#undef HALF_LINE_FN
#undef FAST_ROWS_FN
#undef FAST_HALF_LINE_FN
#undef SOFTMAX_HAS_FAST_EXP

#undef BLOCK
#undef ADD_REFERENCE_LIMIT
#undef STORED_STREAM_BYTES
#undef WIDE_LN2
#undef WIDE_LOG2E
#undef SPLIT_MAGIC
#undef SPLIT_RUN
#undef STREAM_BYTES
#undef COLUMN_VECTORS
#undef COLUMN_CHUNK
#undef ROW_AHEAD
#undef SMALL_VECTORS
#undef SMALL_MAGIC
#undef FAST_SMALL_GROUP
#undef FAST_SMALL_AHEAD
#undef UNSCALE
#undef GRADIENT_FLOOR_ARG
