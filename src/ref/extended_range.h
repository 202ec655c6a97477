/*
 * extended_range.h -- the gradient formulas of one element evaluated with an
 * unbounded exponent: the careful path of the gradient lines (ref_lines.h)
 * and of the SIMD gradient kernels (src/kernels/gradients/rows.h).
 *
 * Why: the plain evaluation of s * y * (dy - d), s * (dy - exp(logy) * S)
 * or s * (v - d) in the data type (or in double for f64 data) can overflow
 * in an intermediate (dy - d near 2 * DBL_MAX, exp(logy) * S with S beyond
 * DBL_MAX) or lose a factor that underflowed (s * y below DBL_MIN, exp(logy)
 * below DBL_MIN times S = 1e300) although the exact result is an ordinary
 * number. The callers evaluate plainly and come here only for the elements
 * where that happened (a result that is not finite, a factor below the
 * normal range), so the common path keeps its speed.
 *
 * A value is carried as m * 2^e (xreal): m a double with 0.5 <= |m| < 1, or
 * 0, or not finite (then e is 0 and IEEE rules apply); e a 64-bit integer.
 * Each product and sum rounds m once (53 bits, no exponent limit); exp(l)
 * is exp(t) * 2^k with t = l - k ln 2 reduced to about 2^-68 and exp(t) from
 * dd_exp (2^-72). Only the final conversion to double leaves the
 * unbounded range: rounded once, with gradual underflow, to +-inf beyond
 * DBL_MAX. For f32 data the double result is rounded once more, which is
 * exact whenever the value is in float's range.
 */
#ifndef SOFTMAX_REF_EXTENDED_RANGE_H
#define SOFTMAX_REF_EXTENDED_RANGE_H

#include <math.h>
#include <stdint.h>

#include "double_double.h"

typedef struct xreal {
    double m;
    int64_t e;
} xreal;

static inline xreal xreal_scaled(double m, int64_t e)
{
    if (m == 0 || !isfinite(m))
        return (xreal){m, 0};
    int shift;
    const double fraction = frexp(m, &shift);
    return (xreal){fraction, e + shift};
}

static inline xreal xreal_of(double v)
{
    return xreal_scaled(v, 0);
}

static inline xreal xreal_neg(xreal a)
{
    a.m = -a.m;
    return a;
}

static inline xreal xreal_mul(xreal a, xreal b)
{
    return xreal_scaled(a.m * b.m, a.e + b.e);
}

/* a + b, rounded once. Beyond 1100 binades apart the smaller one is below
 * the rounding of the larger and is dropped. */
static inline xreal xreal_add(xreal a, xreal b)
{
    if (!isfinite(a.m) || !isfinite(b.m))
        return (xreal){a.m + b.m, 0};
    if (b.m == 0)
        return a.m == 0 ? (xreal){a.m + b.m, 0} : a;
    if (a.m == 0)
        return b;
    if (a.e < b.e) {
        const xreal t = a;
        a = b;
        b = t;
    }
    const int64_t apart = a.e - b.e;
    if (apart > 1100)
        return a;
    return xreal_scaled(a.m + ldexp(b.m, -(int)apart), a.e);
}

/* To the nearest double (gradual underflow, +-inf beyond DBL_MAX). */
static inline double xreal_to_double(xreal a)
{
    if (a.m == 0 || !isfinite(a.m))
        return a.m;
    if (a.e > 1100)
        return copysign(INFINITY, a.m);
    if (a.e < -1200)
        return copysign(0.0, a.m);
    return ldexp(a.m, (int)a.e);
}

/* ln 2 = LN2_HI + LN2_MID to 2^-89: LN2_HI has 29 significant bits, so
 * k * LN2_HI is exact for |k| < 2^24. */
#define XREAL_LN2_HI 0x1.62e42ffp-1
#define XREAL_LN2_MID -0x1.718432a1b0e26p-35
#define XREAL_LOG2E 0x1.71547652b82fep+0

/* exp(l) for any l: exp(-inf) = 0, exp(+inf) = +inf, NaN stays NaN. Beyond
 * |l| = 2^20 the value is kept as a power of two far outside the range of
 * any double (2^+-2^22): it still multiplies a finite number into 0 or
 * inf, and 0 into 0. */
static inline xreal xreal_exp(double l)
{
    if (isnan(l) || l == INFINITY)
        return (xreal){l, 0};
    if (l == -INFINITY)
        return (xreal){0, 0};
    if (l > 0x1p20)
        return (xreal){0.5, (int64_t)1 << 22};
    if (l < -0x1p20)
        return (xreal){0.5, -((int64_t)1 << 22)};
    const double k = nearbyint(l * XREAL_LOG2E);
    /* l - k * LN2_HI is exact: the product is, and the two are within a
     * factor 2 of each other (Sterbenz) unless k is 0. */
    const dd t = two_sum(l - k * XREAL_LN2_HI, -(k * XREAL_LN2_MID));
    const dd e = dd_exp(t);
    return xreal_scaled(e.hi + e.lo, (int64_t)k);
}

/* ---- the gradient elements; row constants are hi + lo times 2^exponent ---- */

typedef struct xreal_pair {
    xreal hi;
    xreal lo;
} xreal_pair;

static inline xreal_pair xreal_pair_of(double hi, double lo, int64_t exponent)
{
    xreal_pair p = {xreal_scaled(hi, exponent), xreal_scaled(lo, exponent)};
    return p;
}

/* (a - d.hi) - d.lo */
static inline xreal xreal_minus_pair(double a, xreal_pair d)
{
    return xreal_add(xreal_add(xreal_of(a), xreal_neg(d.hi)), xreal_neg(d.lo));
}

/* softmax VJP: s * y * (dy - d), d = <dy, y> */
static inline double careful_softmax_backward(double s, double y, double dy, xreal_pair d)
{
    return xreal_to_double(xreal_mul(xreal_of(y), xreal_mul(xreal_of(s), xreal_minus_pair(dy, d))));
}

/* log-softmax VJP: s * (dy - exp(logy) * sum), sum = sum(dy) */
static inline double careful_log_softmax_backward(double s, double logy, double dy, xreal_pair sum)
{
    const xreal y = xreal_exp(logy);
    const xreal product = xreal_add(xreal_mul(y, sum.hi), xreal_mul(y, sum.lo));
    return xreal_to_double(xreal_mul(xreal_of(s), xreal_add(xreal_of(dy), xreal_neg(product))));
}

/* log-softmax JVP: s * (v - d), d = <exp(logy), v> */
static inline double careful_log_softmax_jvp(double s, double v, xreal_pair d)
{
    return xreal_to_double(xreal_mul(xreal_of(s), xreal_minus_pair(v, d)));
}

/* One term of the JVP's reduction, exp(logy) * v, scaled by 2^-shift. */
static inline double careful_exp_product(double logy, double v, int64_t shift)
{
    const xreal p = xreal_mul(xreal_exp(logy), xreal_of(v));
    return xreal_to_double((xreal){p.m, p.e - shift});
}

#endif /* SOFTMAX_REF_EXTENDED_RANGE_H */
