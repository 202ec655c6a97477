/*
 * double_double.h -- the extra precision of the portable f64 path, from
 * IEEE double operations alone: an unevaluated sum hi + lo of two doubles
 * (|lo| <= ulp(hi) / 2) carries about 106 bits.
 *
 * Why not long double: its width is the platform's (80-bit x87 on x86,
 * 128-bit software quad on aarch64 Linux, plain double on macOS arm64 and
 * Windows), so results, speed and even whether the code compiles depended on
 * it. Everything here is a fixed sequence of correctly rounded double
 * additions, multiplications and divisions (the build uses -ffp-contract=off:
 * no fused operation the source does not name), so the same inputs give the
 * same bits on every IEEE platform.
 *
 * The one fused operation the source names is the error of a product,
 * two_prod(): with a hardware FMA it is fma(a, b, -a * b), otherwise
 * Dekker's splitting. Both return the exact error a * b - fl(a * b) whenever
 * it is representable, so they agree bit for bit; every caller keeps its
 * operands in the range where it is (no overflow in the splitting, no
 * underflow of the error), and says so.
 *
 * The error bounds are relative, in units of 2^-k, for the arguments the
 * softmax lines pass (|t| <= 746 for exp, 1 <= s < 2^64 for log).
 */
#ifndef SOFTMAX_REF_DOUBLE_DOUBLE_H
#define SOFTMAX_REF_DOUBLE_DOUBLE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "exp2_table.h"

typedef struct dd {
    double hi;
    double lo;
} dd;

/* ---- error-free transformations ---- */

/* a + b = s.hi + s.lo exactly, any order of magnitude (Knuth). */
static inline dd two_sum(double a, double b)
{
    const double s = a + b;
    const double b_virtual = s - a;
    const double a_virtual = s - b_virtual;
    return (dd){s, (a - a_virtual) + (b - b_virtual)};
}

/* The same when |a| >= |b| (or a == 0): three operations (Dekker). */
static inline dd fast_two_sum(double a, double b)
{
    const double s = a + b;
    return (dd){s, b - (s - a)};
}

/* a * b = p.hi + p.lo exactly, for |a|, |b| < 2^995 and a product whose
 * error is not below the normal range (|a * b| >= 2^-969 or a * b == 0). */
static inline dd two_prod(double a, double b)
{
    const double p = a * b;
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
    return (dd){p, fma(a, b, -p)};
#else
    const double splitter = 134217729.0; /* 2^27 + 1 */
    const double a_big = splitter * a, b_big = splitter * b;
    const double a_hi = a_big - (a_big - a), b_hi = b_big - (b_big - b);
    const double a_lo = a - a_hi, b_lo = b - b_hi;
    return (dd){p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo};
#endif
}

/* x * 2^k for a finite x and k in [-2100, 2100], exact unless the result
 * leaves the normal range (two steps so that 2^k itself stays
 * representable). */
static inline double scale_by_power_of_two(double x, int k)
{
    for (int step = 0; step < 3 && k != 0; step++) {
        const int part = k > 1000 ? 1000 : k < -1000 ? -1000 : k;
        const uint64_t bits = (uint64_t)(part + 1023) << 52;
        double factor;
        memcpy(&factor, &bits, sizeof factor);
        x *= factor;
        k -= part;
    }
    return x;
}

/* ---- exp ---- */

/* ln(2) / 128 = LN2_128_A + LN2_128_B + LN2_128_C: A and B have 35
 * significant bits, so k * A and k * B are exact for |k| < 2^18. */
#define LN2_128_A 0x1.62e42fefc0000p-8
#define LN2_128_B -0x1.c610ca86c0000p-44
#define LN2_128_C -0x1.c4c67fc0d0951p-83
#define INV_LN2_128 0x1.71547652b82fep+7
/* Adding and subtracting it rounds |v| < 2^51 to an integer. */
#define ROUND_TO_INTEGER 0x1.8p52

/*
 * exp(t.hi + t.lo) as a double-double with a relative error below 2^-78
 * (t normalised: |t.lo| <= ulp(t.hi) / 2). 0 below -746 (exp < 2^-1076),
 * +inf above 709.79, NaN for NaN.
 *
 * exp(t) = 2^(k / 128) * exp(r), k = round(t * 128 / ln 2), |r| <= ln 2 / 256
 * (< 2^-8.5); 2^(k / 128) = 2^(k >> 7) * table[k & 127] (106 bits, see
 * exp2_table.h). The reduction is exact up to 2^-110 (Cody-Waite with three
 * parts of ln 2 / 128; t.hi - k * A is exact by Sterbenz), r comes out
 * normalised as rh + rl, |rl| <= 2^-62. Then
 *
 *   exp(r) - 1 = rh + rh^2 / 2 + [rl + rh * rl + rh^3 * P(rh)]
 *
 * with rh^2 exact (two_prod; |rh| >= 2^-60 there, so no underflow), P the
 * Taylor coefficients 1/3! .. 1/7! (the next term, rh^8 / 8!, is below
 * 2^-83) and the bracket in plain double (its terms are below 2^-27, their
 * roundings below 2^-80). For |rh| < 2^-60, exp(r) - 1 = r within 2^-121.
 */
static inline dd dd_exp(dd t)
{
    if (!(t.hi > -746.0)) /* also -inf; NaN goes on below */
        return isnan(t.hi) ? (dd){t.hi, 0} : (dd){0, 0};
    if (t.hi > 709.79)
        return (dd){INFINITY, 0};
    const double k_real = (t.hi * INV_LN2_128 + ROUND_TO_INTEGER) - ROUND_TO_INTEGER;
    const int k = (int)k_real;
    const double reduced = t.hi - k_real * LN2_128_A; /* exact */
    const dd r_parts = two_sum(reduced, -(k_real * LN2_128_B));
    const dd r = two_sum(r_parts.hi, r_parts.lo + (t.lo - k_real * LN2_128_C));
    double p_hi, p_lo;
    if (fabs(r.hi) < 0x1p-60) {
        p_hi = r.hi;
        p_lo = r.lo;
    } else {
        const dd square = two_prod(r.hi, r.hi);
        const dd head = fast_two_sum(r.hi, 0.5 * square.hi);
        const double poly = 1.0 / 6 + r.hi * (1.0 / 24 + r.hi * (1.0 / 120 + r.hi * (1.0 / 720 + r.hi * (1.0 / 5040))));
        const double cube = square.hi * r.hi;
        p_hi = head.hi;
        p_lo = head.lo + (0.5 * square.lo + (r.lo + r.hi * r.lo + cube * poly));
    }
    /* table * (1 + p): |p| < 2^-8, table in [1, 2). */
    const int index = ((k % 128) + 128) % 128;
    const double *entry = exp2_table[index];
    const dd product = two_prod(entry[0], p_hi);
    const dd head = fast_two_sum(entry[0], product.hi);
    const double tail = head.lo + (product.lo + (entry[1] + (entry[1] * p_hi + entry[0] * p_lo)));
    const dd value = fast_two_sum(head.hi, tail);
    const int exponent = (k - index) / 128; /* exact: floor(k / 128) */
    return (dd){scale_by_power_of_two(value.hi, exponent), scale_by_power_of_two(value.lo, exponent)};
}

/* exp(x) rounded to double (within 1/2 ulp + 2^-78 relative in the normal
 * range). */
static inline double dd_exp_double(double x)
{
    const dd e = dd_exp((dd){x, 0});
    return e.hi + e.lo;
}

/* ---- log ---- */

/* log(x) to about 2^-50 for a finite x > 0: x = m * 2^e with m in
 * [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s), s = (m - 1) / (m + 1),
 * |s| < 0.172, the series to s^23. Only a starting value for dd_log. */
static inline double log_estimate(double x)
{
    int e = 0;
    double m = frexp(x, &e); /* exact: m in [1/2, 1) */
    if (m < 0.70710678118654752) {
        m *= 2;
        e -= 1;
    }
    const double s = (m - 1) / (m + 1), s2 = s * s;
    double series = 1.0 / 23;
    for (int odd = 21; odd >= 1; odd -= 2)
        series = 1.0 / odd + s2 * series;
    return (double)e * 0x1.62e42fefa39efp-1 + 2 * s * series;
}

/* a * b for double-doubles, relative error below 2^-104 (two_prod's
 * range applies to a.hi, b.hi). */
static inline dd dd_mul(dd a, dd b)
{
    const dd p = two_prod(a.hi, b.hi);
    return fast_two_sum(p.hi, p.lo + (a.hi * b.lo + a.lo * b.hi));
}

/*
 * log(s) for a normalised double-double s >= 1 (a sum of exponentials whose
 * largest term is 1, or a count), absolute error below 2^-76, never
 * negative: log(1) is exactly 0.
 *
 * One Newton step from the estimate l0 (error e0 < 2^-49): with
 * c = s * exp(-l0) - 1 = exp(log s - l0) - 1, log(s) = l0 + log1p(c) =
 * l0 + c - c^2 / 2 + ..., |c| < 2^-48 so c^3 / 3 < 2^-145. exp carries
 * 2^-78, the product and the subtraction of 1 (exact: s * exp(-l0) is
 * within 2^-48 of 1) add 2^-104.
 *
 * Why the clamp: for s within 2^-76 of 1 (a row whose other elements are
 * 50 or more below its maximum) the rounding errors may exceed log(s)
 * itself; a negative value there would put log-softmax above 0.
 */
static inline dd dd_log(dd s)
{
    if (s.hi == 1.0 && s.lo == 0.0)
        return (dd){0, 0};
    const double l0 = log_estimate(s.hi);
    const dd ratio = dd_mul(s, dd_exp((dd){-l0, 0}));
    const dd c = two_sum(ratio.hi - 1.0, ratio.lo); /* ratio.hi - 1 is exact (Sterbenz) */
    const double c_full = c.hi + c.lo;
    const dd head = two_sum(l0, c.hi);
    const dd result = fast_two_sum(head.hi, head.lo + (c.lo - 0.5 * c_full * c_full));
    if (result.hi < 0 || (result.hi == 0 && result.lo < 0))
        return (dd){0, 0};
    return result;
}

/* log(x) rounded to double for x >= 1 (the counts of the limit cases). */
static inline double dd_log_double(double x)
{
    const dd l = dd_log((dd){x, 0});
    return l.hi + l.lo;
}

#endif /* SOFTMAX_REF_DOUBLE_DOUBLE_H */
