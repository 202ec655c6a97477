/*
 * wide.h -- WIDE, the type that carries the kernels' sums and per-row
 * constants, and the few operations the kernels do on it.
 *
 * f32: WIDE is double, and each operation is the plain double arithmetic
 * (about 29 bits beyond f32).
 *
 * f64: WIDE is a double-double (src/ref/double_double.h, shared with the
 * portable f64 path): about 106 bits from IEEE double operations alone, so
 * the f64 kernels give the same bits wherever double is IEEE, whatever the
 * platform's long double is (80-bit x87, 128-bit software quad on aarch64,
 * plain double on macOS and Windows).
 *
 *   wide_of(x), wide_sum_of(a, b), wide_product_of(a, b)   from T values
 *                    (the sum and product exact for f64)
 *   wide_add(a, b)   a + b
 *   wide_hi(a)       the value rounded to double (for comparisons)
 *   wide_round(a)    the value rounded to T
 *   wide_is_nan(a), wide_ldexp(a, e)
 *   wide_floor(a)    floor(a) as T, for |a| below OFFSET_LIMIT (exact)
 *   wide_scale_log2e(scale)      scale * log2(e)
 *   wide_log_sum(sum, remainder) log(sum) - remainder * ln 2, for sum >= 1
 *   wide_split(a, &hi, &lo)      hi = a rounded to T, lo = (a - hi) rounded
 *   wide_scaled_reciprocal_split(sum, &hi, &lo)   the same for
 *                    2^NORMALIZE_SHIFT / sum, for a sum >= 1 (NaN stays NaN)
 *   wide_floor_quotient(offset, c_hi, c_lo)   (offset - EXP_FLOOR_ARG) / c
 *                    as T (-inf below the range of T): the row's floor,
 *                    where exps are 0 however it rounds
 *   neg_arg_over_log2e(arg)      -arg / log2(e) as T (the floors of the
 *                    plain exponentials)
 *   wide_inverse(c_hi, c_lo)     1 / c as T
 */
#ifndef SOFTMAX_KERNELS_WIDE_H
#define SOFTMAX_KERNELS_WIDE_H

#if !defined(T) || !defined(WIDE)
#error "wide.h is included by kernels.h after the type parameters"
#endif

#if defined(KERNEL_F32)

#define WIDE_LN2 0x1.62e42fefa39efp-1
#define WIDE_LOG2E 0x1.71547652b82fep+0

static inline WIDE wide_of(T x)
{
    return (WIDE)x;
}
static inline WIDE wide_sum_of(T a, T b)
{
    return (WIDE)a + (WIDE)b;
}
static inline WIDE wide_product_of(T a, T b)
{
    return (WIDE)a * (WIDE)b;
}
static inline WIDE wide_add(WIDE a, WIDE b)
{
    return a + b;
}
static inline double wide_hi(WIDE a)
{
    return a;
}
static inline T wide_round(WIDE a)
{
    return (T)a;
}
static inline bool wide_is_nan(WIDE a)
{
    return isnan(a);
}
static inline WIDE wide_ldexp(WIDE a, int e)
{
    return ldexp(a, e);
}
static inline T wide_floor(WIDE a)
{
    return (T)floor(a);
}
static inline WIDE wide_neg(WIDE a)
{
    return -a;
}
static inline WIDE wide_scale_log2e(double scale)
{
    return (WIDE)scale * WIDE_LOG2E;
}
static inline WIDE wide_log_sum(WIDE sum, WIDE remainder)
{
    return log(sum) - remainder * WIDE_LN2;
}
static inline void wide_split(WIDE a, T *hi, T *lo)
{
    *hi = (T)a;
    *lo = (T)(a - (WIDE)*hi);
}
static inline void wide_scaled_reciprocal_split(WIDE sum, T *hi, T *lo)
{
    wide_split(((WIDE)1 / sum) * (WIDE)NORMALIZE_SCALE, hi, lo);
}
static inline T wide_floor_quotient(T offset, T c_hi, T c_lo)
{
    const WIDE floor_value = ((WIDE)offset - (WIDE)EXP_FLOOR_ARG) / ((WIDE)c_hi + (WIDE)c_lo);
    return floor_value < -(WIDE)T_MAX ? (T)-INFINITY : (T)floor_value;
}
static inline T neg_arg_over_log2e(double arg)
{
    return (T)(-(WIDE)arg / WIDE_LOG2E);
}
static inline T wide_inverse(T c_hi, T c_lo)
{
    return (T)(1 / ((WIDE)c_hi + (WIDE)c_lo));
}

#else /* f64: double-double */

/* log2(e) and ln 2 as double-doubles (hi, then the rest rounded). */
#define LOG2E_HI 0x1.71547652b82fep+0
#define LOG2E_LO 0x1.777d0ffda0d24p-56
#define LN2_HI 0x1.62e42fefa39efp-1
#define LN2_LO 0x1.abc9e3b39803fp-56

static inline WIDE wide_of(T x)
{
    return (dd){x, 0};
}
static inline WIDE wide_sum_of(T a, T b)
{
    return two_sum(a, b);
}
/* Exact where the product's error is representable (the kernels' c_lo *
 * max: a correction far below the sum it joins otherwise). */
static inline WIDE wide_product_of(T a, T b)
{
    return two_prod(a, b);
}
static inline WIDE wide_add(WIDE a, WIDE b)
{
    return dd_add(a, b);
}
/* Every WIDE value the kernels make is normalised (|lo| <= ulp(hi) / 2):
 * hi is the value rounded, up to a tie. */
static inline double wide_hi(WIDE a)
{
    return a.hi;
}
static inline T wide_round(WIDE a)
{
    return a.hi + a.lo;
}
static inline bool wide_is_nan(WIDE a)
{
    return isnan(a.hi) || isnan(a.lo);
}
/* Exact unless a part leaves the normal range (sums of blocks far below the
 * row's largest, which then do not count). */
static inline WIDE wide_ldexp(WIDE a, int e)
{
    return (dd){ldexp(a.hi, e), ldexp(a.lo, e)};
}
static inline T wide_floor(WIDE a)
{
    T f = floor(a.hi);
    if (f == a.hi && a.lo < 0) /* an integer hi, the value just below it */
        f -= 1;
    return f;
}
static inline WIDE wide_neg(WIDE a)
{
    return (dd){-a.hi, -a.lo};
}
/* Outside [2^-995, 2^995] the product is not exact, and plan_row rejects
 * such a scale (c outside [1e-30, 1e30]) anyway. */
static inline WIDE wide_scale_log2e(double scale)
{
    const dd p = two_prod(scale, LOG2E_HI);
    return fast_two_sum(p.hi, p.lo + scale * LOG2E_LO);
}
/* dd_log's error (2^-73 absolute) and the product's (2^-104 relative of a
 * remainder below 4) are far below the half ulp of double that the result
 * is rounded to. */
static inline WIDE wide_log_sum(WIDE sum, WIDE remainder)
{
    const dd product = dd_mul(remainder, (dd){LN2_HI, LN2_LO});
    return dd_add(dd_log(sum), wide_neg(product));
}
static inline void wide_split(WIDE a, T *hi, T *lo)
{
    *hi = a.hi + a.lo;
    *lo = (a.hi - *hi) + a.lo;
}
static inline void wide_scaled_reciprocal_split(WIDE sum, T *hi, T *lo)
{
    dd_reciprocal_halves(sum, NORMALIZE_SCALE, hi, lo);
}
/* In double: the floor only needs to lie where 2^(c x - B) is 0 in T
 * (EXP_FLOOR_ARG is far beyond the subnormal range). */
static inline T wide_floor_quotient(T offset, T c_hi, T c_lo)
{
    const double floor_value = (offset - (double)EXP_FLOOR_ARG) / (c_hi + c_lo);
    return floor_value < -T_MAX ? (T)-INFINITY : floor_value;
}
/* -arg / log2(e) = -arg * ln 2, the exact product rounded once. */
static inline T neg_arg_over_log2e(double arg)
{
    const dd p = two_prod(arg, LN2_HI);
    return -(p.hi + (p.lo + arg * LN2_LO));
}
static inline T wide_inverse(T c_hi, T c_lo)
{
    return 1 / (c_hi + c_lo);
}

#endif

/* A value of WIDE carried as two T, hi + lo (wide_split: hi the value
 * rounded, lo the rest rounded; lo = 0 when hi is not finite): the
 * reciprocal of a row's sum, the gradients' dot products. The kernels' one
 * hi/lo pair of T (the f64 WIDE, dd, is itself a pair of doubles). */
typedef struct hi_lo {
    T hi;
    T lo;
} hi_lo;

static inline hi_lo hi_lo_of(WIDE value)
{
    hi_lo s;
    wide_split(value, &s.hi, &s.lo);
    if (!isfinite(wide_hi(value)))
        s.lo = 0;
    return s;
}

#endif /* SOFTMAX_KERNELS_WIDE_H */
