/*
 * compound.h -- the kernels' compound arithmetic, written once above the
 * vector vocabulary (vec_<isa>.h): the wide accumulators of sums, the
 * reciprocal of a sum split into hi + lo, the vector log and the tiny rows'
 * log-softmax constants. Everything here is a fixed sequence of the
 * vocabulary's primitives, so an ISA that provides the primitives gets these
 * with the same operations in the same order (the bits then differ between
 * ISAs only through the lane count and the per-ISA reduction trees). The
 * f64 compounds carry their extra precision in double-double
 * (src/ref/double_double.h), never in long double.
 *
 * The primitives used beyond plain arithmetic: f32_widen_low /
 * f32_widen_high / f32_narrow (an f32 vector as two f64 vectors and back),
 * f64_div, f64_split_exponent (s = m 2^e, m in [0.75, 1.5)), f64_reduce_add
 * and F64_LANES_IN_ORDER (the order in which an f64 accumulator's lanes are
 * added).
 */
#ifndef SOFTMAX_KERNELS_COMPOUND_H
#define SOFTMAX_KERNELS_COMPOUND_H

#if !defined(F32_LANES) || !defined(F64_LANES)
#error "compound.h is included after the vector vocabulary (vec_<isa>.h)"
#endif

#include "ref/double_double.h" /* the f64 sums' and reciprocals' extra precision */

/* ln 2 rounded to double. */
#define COMPOUND_LN2 0x1.62e42fefa39efp-1

/* ------------------------------------------------- f32 sums in f64 -- */

/* Sums of f32 terms are carried in f64 lanes: the rounding error of a sum of
 * up to 2^22 terms then stays below 2^-30 relative, invisible in f32. `low`
 * holds the first F64_LANES lanes of the f32 vectors added, `high` the
 * others. */
typedef struct f32_acc {
    vf64 low;
    vf64 high;
} f32_acc;

static inline f32_acc f32_acc_zero(void)
{
    f32_acc acc = {f64_set1(0.0), f64_set1(0.0)};
    return acc;
}
static inline void f32_acc_add(f32_acc *acc, vf32 v)
{
    acc->low = f64_add(acc->low, f32_widen_low(v));
    acc->high = f64_add(acc->high, f32_widen_high(v));
}
/* The products are exact in f64; one rounding each, in the sum. */
static inline void f32_acc_add_product(f32_acc *acc, vf32 a, vf32 b)
{
    acc->low = f64_fmadd(f32_widen_low(a), f32_widen_low(b), acc->low);
    acc->high = f64_fmadd(f32_widen_high(a), f32_widen_high(b), acc->high);
}
/* The per-lane totals: lane l of the f32 vectors that were added. */
static inline void f32_acc_lanes(const f32_acc *acc, double totals[F32_LANES])
{
    f64_store(totals, acc->low);
    f64_store(totals + F64_LANES, acc->high);
}
static inline double f32_acc_total(const f32_acc *acc)
{
    return f64_reduce_add(f64_add(acc->low, acc->high));
}

/* ------------------------------------------- f64 sums, compensated -- */

/* Sums of f64 terms use Kahan compensation per lane: the error bound is 2u
 * plus O(n u^2), independent of the row length. */
typedef struct f64_acc {
    vf64 sum;
    vf64 compensation;
} f64_acc;

static inline f64_acc f64_acc_zero(void)
{
    f64_acc acc = {f64_set1(0.0), f64_set1(0.0)};
    return acc;
}
static inline void f64_acc_add(f64_acc *acc, vf64 v)
{
    const vf64 corrected = f64_sub(v, acc->compensation);
    const vf64 total = f64_add(acc->sum, corrected);
    acc->compensation = f64_sub(f64_sub(total, acc->sum), corrected);
    acc->sum = total;
}
static inline void f64_acc_add_product(f64_acc *acc, vf64 a, vf64 b)
{
    f64_acc_add(acc, f64_mul(a, b));
}
/* The per-lane totals, sum - compensation, exactly as double-doubles. */
static inline void f64_acc_lanes(const f64_acc *acc, dd totals[F64_LANES])
{
    double sums[F64_LANES];
    double compensations[F64_LANES];
    f64_store(sums, acc->sum);
    f64_store(compensations, acc->compensation);
    for (int i = 0; i < F64_LANES; i++)
        totals[i] = two_sum(sums[i], -compensations[i]);
}
/* The lanes' totals added in double-double, in the ISA's order
 * (F64_LANES_IN_ORDER). */
static inline dd f64_acc_total(const f64_acc *acc)
{
    dd lanes[F64_LANES];
    f64_acc_lanes(acc, lanes);
    return F64_LANES_IN_ORDER(dd_add, lanes);
}

/* ------------------------------------------------------ reciprocals -- */

/* Per lane: r = scale / ((double)high + (double)low), hi = (float)r, lo =
 * (float)(r - hi), each step the IEEE operation that scalar code does (the
 * tiny-row kernels need the same bits from both). */
static inline void f32_reciprocal_halves(vf32 high, vf32 low, double scale, vf32 *hi, vf32 *lo)
{
    const vf64 one = f64_set1(1.0), s = f64_set1(scale);
    vf64 r0 = f64_add(f32_widen_low(high), f32_widen_low(low));
    vf64 r1 = f64_add(f32_widen_high(high), f32_widen_high(low));
    r0 = f64_mul(f64_div(one, r0), s);
    r1 = f64_mul(f64_div(one, r1), s);
    const vf32 h = f32_narrow(r0, r1);
    *hi = h;
    *lo = f32_narrow(f64_sub(r0, f32_widen_low(h)), f64_sub(r1, f32_widen_high(h)));
}

/* hi = r rounded, lo = (r - hi) rounded for r = scale / sum (scale a power
 * of two), r from dd_reciprocal: the f64 kernels' reciprocal of a row's
 * sum (wide.h) and, lane by lane, f64_reciprocal_halves. NaN stays NaN. */
static inline void dd_reciprocal_halves(dd sum, double scale, double *hi, double *lo)
{
    const dd r = dd_reciprocal(sum);
    const double r_hi = r.hi * scale, r_lo = r.lo * scale; /* exact */
    *hi = r_hi + r_lo;
    *lo = (r_hi - *hi) + r_lo;
}

/* Per lane: dd_reciprocal_halves of high + low (exactly, as a
 * double-double) -- what the scalar kernels do for one row. */
static inline void f64_reciprocal_halves(vf64 high, vf64 low, double scale, vf64 *hi, vf64 *lo)
{
    double h[F64_LANES], l[F64_LANES];
    f64_store(h, high);
    f64_store(l, low);
    for (int i = 0; i < F64_LANES; i++)
        dd_reciprocal_halves(two_sum(h[i], l[i]), scale, &h[i], &l[i]);
    *hi = f64_load(h);
    *lo = f64_load(l);
}

/* -------------------------------------------------------------- log -- */

/* log(s) for positive normal doubles, to about 1e-11 relative: s = m 2^e
 * with m in [0.75, 1.5), log m = 2 atanh((m - 1) / (m + 1)) from its series
 * to the z^6 term (|t| <= 0.2). The tiny-row kernels need log(sum) for a
 * vector of rows at a time; far below the half ulp of f32 that the result
 * is rounded to. */
static inline vf64 f64_log_positive(vf64 s)
{
    const vf64 one = f64_set1(1.0);
    vf64 m, e;
    f64_split_exponent(s, &m, &e);
    const vf64 t = f64_div(f64_sub(m, one), f64_add(m, one));
    const vf64 z = f64_mul(t, t);
    vf64 p = f64_set1(1.0 / 13);
    p = f64_fmadd(p, z, f64_set1(1.0 / 11));
    p = f64_fmadd(p, z, f64_set1(1.0 / 9));
    p = f64_fmadd(p, z, f64_set1(1.0 / 7));
    p = f64_fmadd(p, z, f64_set1(1.0 / 5));
    p = f64_fmadd(p, z, f64_set1(1.0 / 3));
    p = f64_fmadd(p, z, one);
    const vf64 log_m = f64_mul(f64_add(t, t), p);
    return f64_fmadd(e, f64_set1(COMPOUND_LN2), log_m);
}

/* One half (F64_LANES lanes, as doubles) of f32_neg_log_sum. */
static inline vf64 f32_neg_log_sum_half(vf64 high, vf64 low, vf64 remainder_high, vf64 remainder_low, vf64 row_max,
                                        double c_lo)
{
    const vf64 remainder = f64_add(f64_add(remainder_high, remainder_low), f64_mul(f64_set1(c_lo), row_max));
    const vf64 log_sum = f64_sub(f64_log_positive(f64_add(high, low)), f64_mul(remainder, f64_set1(COMPOUND_LN2)));
    return f64_sub(f64_set1(0.0), log_sum);
}
/* Per lane, -(float)(log(high + low) - remainder * ln2) with the remainder
 * c * row_max - offset computed as the kernels' offset_remainder (the
 * exact product c_hi * row_max as p_hi + p_lo, in double from there): the
 * log-softmax constant of a vector of tiny rows at once. */
static inline vf32 f32_neg_log_sum(vf32 high, vf32 low, vf32 row_max, vf32 offset, float c_hi, float c_lo)
{
    const vf32 ch = f32_set1(c_hi);
    const vf32 p_hi = f32_mul(ch, row_max);
    const vf32 p_lo = f32_fmadd(ch, row_max, f32_neg(p_hi)); /* exact */
    const vf32 d = f32_sub(p_hi, offset);
    const vf64 low_half = f32_neg_log_sum_half(f32_widen_low(high), f32_widen_low(low), f32_widen_low(d),
                                               f32_widen_low(p_lo), f32_widen_low(row_max), c_lo);
    const vf64 high_half = f32_neg_log_sum_half(f32_widen_high(high), f32_widen_high(low), f32_widen_high(d),
                                                f32_widen_high(p_lo), f32_widen_high(row_max), c_lo);
    return f32_narrow(low_half, high_half);
}

#endif /* SOFTMAX_KERNELS_COMPOUND_H */
