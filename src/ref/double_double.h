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
 * The error bounds are in units of 2^-k: relative for exp (for the
 * arguments the softmax lines pass, |t| <= 746), absolute for log (for every
 * s > 0; the lines pass 1 <= s < 2^64).
 */
#ifndef SOFTMAX_REF_DOUBLE_DOUBLE_H
#define SOFTMAX_REF_DOUBLE_DOUBLE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "exp2_table.h"
#include "log_table.h"

/* The build passes -ffp-contract=off; say it here too for clang, whose
 * default contracts a * b + c within an expression on FMA targets (aarch64),
 * which would break every error-free transformation below. (GCC in ISO C
 * mode does not contract by default.) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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

/* a = hi + lo with hi and lo of 26 significant bits at most (Veltkamp),
 * for |a| < 2^995. */
static inline dd split_in_halves(double a)
{
    const double big = 134217729.0 * a; /* 2^27 + 1 */
    const double hi = big - (big - a);
    return (dd){hi, a - hi};
}

/* a * b - p exactly, for p = fl(a * b), from the halves of a and b
 * (Dekker), in the same range as two_prod. */
static inline double product_error(double p, dd a, dd b)
{
    return ((a.hi * b.hi - p) + a.hi * b.lo + a.lo * b.hi) + a.lo * b.lo;
}

/* a * b = p.hi + p.lo exactly, for |a|, |b| < 2^995 and a product whose
 * error is not below the normal range (|a * b| >= 2^-969 or a * b == 0). */
static inline dd two_prod(double a, double b)
{
    const double p = a * b;
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
    return (dd){p, fma(a, b, -p)};
#else
    return (dd){p, product_error(p, split_in_halves(a), split_in_halves(b))};
#endif
}

/* x * 2^k for a finite x and k in [-2100, 2100], exact unless the result
 * leaves the normal range (two steps so that 2^k itself stays
 * representable). */
static inline double power_of_two(int k) /* k in [-1022, 1023] */
{
    const uint64_t bits = (uint64_t)(k + 1023) << 52;
    double factor;
    memcpy(&factor, &bits, sizeof factor);
    return factor;
}

static inline double scale_by_power_of_two(double x, int k)
{
    if (k >= -1000 && k <= 1000)
        return x * power_of_two(k);
    for (int step = 0; step < 3 && k != 0; step++) {
        const int part = k > 1000 ? 1000 : k < -1000 ? -1000 : k;
        x *= power_of_two(part);
        k -= part;
    }
    return x;
}

/* a + b for double-doubles, error below 2^-104 of |a| + |b|. */
static inline dd dd_add(dd a, dd b)
{
    const dd s = two_sum(a.hi, b.hi);
    return fast_two_sum(s.hi, s.lo + (a.lo + b.lo));
}

/* a * b as a double-double for any finite a, b: exact down to 2^-950
 * absolute (below that the product alone); +-inf or 0 where it overflows or
 * underflows. Factors out of [2^-500, 2^500] are first rebalanced by a
 * power of two (exact). Dekker's product alone (never fma()): the same bits
 * on every platform by construction. */
static inline dd dd_product(double a, double b)
{
    const double p = a * b;
    if (!isfinite(p) || !(fabs(p) >= 0x1p-900))
        return (dd){p, 0};
    if (!(fabs(a) >= 0x1p-500 && fabs(a) <= 0x1p500 && fabs(b) >= 0x1p-500 && fabs(b) <= 0x1p500)) {
        const int shift = (ilogb(a) - ilogb(b)) / 2;
        a = scale_by_power_of_two(a, -shift);
        b = scale_by_power_of_two(b, shift);
    }
    return (dd){p, product_error(p, split_in_halves(a), split_in_halves(b))};
}

/* ---- exp ---- */

/* Adding and subtracting it rounds |v| < 2^51 to an integer. */
#define ROUND_TO_INTEGER 0x1.8p52
/* Adding and subtracting it keeps the bits of |v| < 2^-9 down to 2^-36:
 * 26 significant bits at most. */
#define SPLIT_AT_2_36 0x1p16

/*
 * exp(t.hi + t.lo) as a double-double with a relative error below 2^-72
 * (t normalised: |t.lo| <= ulp(t.hi) / 2), in plain double operations (no
 * two_prod: the same bits with or without an FMA). 0 below -746
 * (exp < 2^-1076), +inf above 709.79, NaN for NaN.
 *
 * exp(t) = 2^(k / 512) * exp(r), k = round(t * 512 / ln 2), |r| <= ln 2 /
 * 1024 (< 2^-10.5); 2^(k / 512) = 2^floor(k / 512) * (head + tail) from
 * exp2_table.h. The reduction: t.hi - k * A is exact (k * A is, and
 * Sterbenz), its difference with k * B is kept as rh + error by two_sum,
 * and rl = error + (t.lo - k * C) collects the rest (2^-108 absolute).
 * Then, with q = rh^2 (1/2 + rh/6 + rh^2/24 + rh^3/120 + rh^4/720) (the
 * next term is below 2^-86; q is below 2^-22, its roundings 2^-75),
 *
 *   exp(r) = 1 + rh + b,  b = q + rl (1 + rh + q)   (rl^2 is below 2^-88)
 *   exp(t) = head + head * rh1 + [head * rh2 + head * b + tail * (1 + rh + b)]
 *
 * where rh = rh1 + rh2 splits rh at 2^-36: head (26 bits) times rh1 (26
 * bits) is exact, and every term of the bracket is below 2^-22 with
 * roundings below 2^-75. head + head * rh1 goes through fast_two_sum, so
 * the result carries about 72 bits: far more than the 53 of the rounded
 * outputs, and margins of 2^-19 ulp for the order of neighbouring values.
 */
static inline dd dd_exp(dd t)
{
    if (!(t.hi > -746.0)) /* also -inf; NaN goes on below */
        return isnan(t.hi) ? (dd){t.hi, 0} : (dd){0, 0};
    if (t.hi > 709.79)
        return (dd){INFINITY, 0};
    const double k_real = (t.hi * INV_LN2_512 + ROUND_TO_INTEGER) - ROUND_TO_INTEGER;
    const int k = (int)k_real;
    const double reduced = t.hi - k_real * LN2_512_A; /* exact */
    const dd r = two_sum(reduced, -(k_real * LN2_512_B));
    const double rh = r.hi;
    const double rl = r.lo + (t.lo - k_real * LN2_512_C);
    const double rh1 = (rh + SPLIT_AT_2_36) - SPLIT_AT_2_36, rh2 = rh - rh1; /* both exact */
    const double q = (rh * rh) * (0.5 + rh * (1.0 / 6 + rh * (1.0 / 24 + rh * (1.0 / 120 + rh * (1.0 / 720)))));
    /* (unsigned)k mod 512 is k mod 512 for a negative k too. */
    const unsigned index = (unsigned)k & 511u;
    const double head = exp2_table[index][0], tail = exp2_table[index][1];
    const dd top = fast_two_sum(head, head * rh1);
    const double beyond_rh = q + rl * (1 + (rh + q)); /* exp(r) - 1 - rh */
    const double rest = head * rh2 + head * beyond_rh + tail * (1 + (rh + beyond_rh));
    const dd value = fast_two_sum(top.hi, top.lo + rest);
    const int exponent = (k - (int)index) / 512; /* exact: floor(k / 512) */
    if (exponent >= -1000 && exponent <= 1000) {
        const double factor = power_of_two(exponent);
        return (dd){value.hi * factor, value.lo * factor};
    }
    return (dd){scale_by_power_of_two(value.hi, exponent), scale_by_power_of_two(value.lo, exponent)};
}

/*
 * dd_exp without a branch, for loops the compiler vectorises: the same
 * operations as dd_exp in the same order, so the same bits (and the same
 * 2^-72 bound) for every argument, with the range checks and the two-step
 * scaling turned into selects:
 *
 *   - an argument out of range (below -746, -inf, NaN, above 709.79) goes
 *     through the arithmetic as 0 and is replaced at the end by dd_exp's
 *     value for it (0, NaN or +inf, low part 0);
 *   - floor(k / 512) is in [-1077, 1024]: it is applied as 2^e1 * 2^e2 with
 *     e1 clamped to [-1000, 1000] and e2 the rest, which is 0 (a factor of
 *     exactly 1) whenever dd_exp multiplies once, and dd_exp's second step
 *     otherwise.
 *
 * The index and exponent come from the bits of t * 512 / ln 2 + 1.5 * 2^52
 * (its low 52 bits are 2^51 + k), in 64-bit integers.
 */
static inline void dd_exp_branchless(double t_hi, double t_lo, double *exp_hi, double *exp_lo)
{
    const int in_range = (t_hi > -746.0) & (t_hi <= 709.79); /* false for NaN */
    /* The choices as bit masks: a select would let the compiler move the
     * whole computation under a condition, which defeats vectorisation. */
    const uint64_t keep = (uint64_t)0 - (uint64_t)in_range;
    uint64_t hi_bits, lo_bits;
    memcpy(&hi_bits, &t_hi, sizeof hi_bits);
    memcpy(&lo_bits, &t_lo, sizeof lo_bits);
    hi_bits &= keep;
    lo_bits &= keep;
    double hi, lo;
    memcpy(&hi, &hi_bits, sizeof hi);
    memcpy(&lo, &lo_bits, sizeof lo);
    const double shifted = hi * INV_LN2_512 + ROUND_TO_INTEGER;
    const double k_real = shifted - ROUND_TO_INTEGER;
    uint64_t shifted_bits;
    memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    /* k + 2^21 (>= 0: |k| < 2^19), so that the shift below is a floor. */
    const uint64_t k_biased = (shifted_bits & 0xFFFFFFFFFFFFFull) - 0x8000000000000ull + 0x200000ull;
    const uint64_t index = k_biased & 511u;                     /* k mod 512 (2^21 is a multiple of 512) */
    const int64_t exponent = (int64_t)(k_biased >> 9) - 0x1000; /* floor(k / 512) */
    const double reduced = hi - k_real * LN2_512_A;
    const dd r = two_sum(reduced, -(k_real * LN2_512_B));
    const double rh = r.hi;
    const double rl = r.lo + (lo - k_real * LN2_512_C);
    const double rh1 = (rh + SPLIT_AT_2_36) - SPLIT_AT_2_36, rh2 = rh - rh1;
    const double q = (rh * rh) * (0.5 + rh * (1.0 / 6 + rh * (1.0 / 24 + rh * (1.0 / 120 + rh * (1.0 / 720)))));
    const double head = exp2_table[index][0], tail = exp2_table[index][1];
    const dd top = fast_two_sum(head, head * rh1);
    const double beyond_rh = q + rl * (1 + (rh + q));
    const double rest = head * rh2 + head * beyond_rh + tail * (1 + (rh + beyond_rh));
    const dd value = fast_two_sum(top.hi, top.lo + rest);
    const int64_t first = exponent < -1000 ? -1000 : exponent > 1000 ? 1000 : exponent;
    const uint64_t first_bits = (uint64_t)(first + 1023) << 52;
    const uint64_t second_bits = (uint64_t)(exponent - first + 1023) << 52;
    double first_factor, second_factor;
    memcpy(&first_factor, &first_bits, sizeof first_factor);
    memcpy(&second_factor, &second_bits, sizeof second_factor);
    const double not_a_number = t_hi != t_hi ? t_hi : 0.0;
    const double out_of_range = t_hi > 709.79 ? INFINITY : not_a_number;
    const double scaled_hi = (value.hi * first_factor) * second_factor;
    const double scaled_lo = (value.lo * first_factor) * second_factor;
    uint64_t out_bits;
    memcpy(&hi_bits, &scaled_hi, sizeof hi_bits);
    memcpy(&lo_bits, &scaled_lo, sizeof lo_bits);
    memcpy(&out_bits, &out_of_range, sizeof out_bits);
    hi_bits = (hi_bits & keep) | (out_bits & ~keep);
    lo_bits &= keep;
    memcpy(exp_hi, &hi_bits, sizeof hi_bits);
    memcpy(exp_lo, &lo_bits, sizeof lo_bits);
}

/* exp(x) rounded to double (within 1/2 ulp + 2^-72 relative in the normal
 * range). */
static inline double dd_exp_double(double x)
{
    const dd e = dd_exp((dd){x, 0});
    return e.hi + e.lo;
}

/* a * b for double-doubles, relative error below 2^-104 (two_prod's
 * range applies to a.hi, b.hi). */
static inline dd dd_mul(dd a, dd b)
{
    const dd p = two_prod(a.hi, b.hi);
    return fast_two_sum(p.hi, p.lo + (a.hi * b.lo + a.lo * b.hi));
}

/* 1 / s as a double-double for a normalised s with s.hi in [2^-900, 2^900]
 * (the sums of exponentials: at least 1): relative error 2^-104. NaN
 * stays NaN. */
static inline dd dd_reciprocal(dd s)
{
    const double r = 1.0 / s.hi;
    const dd p = two_prod(s.hi, r);
    const double remainder = ((1.0 - p.hi) - p.lo) - s.lo * r; /* 1 - p.hi is exact */
    return fast_two_sum(r, remainder * r);
}

/* ---- log ---- */

static inline uint64_t bits_of_double(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static inline double double_of_bits(uint64_t bits)
{
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* The bit pattern of 0.6875, where log_table's range starts: x's pattern
 * minus it holds k (x = 2^k z, z in [0.6875, 1.375)) above bit 52 and the
 * subinterval of z in the next 8 bits. */
#define LOG_TABLE_START_BITS 0x3fe6000000000000ull
/* dd_log_reduced takes s.hi in [2^-1000, 2^1000): 2^-k is then a normal
 * double, and k * LOG_LN2_HI exact with room for the rare path's shift. */
#define LOG_DIRECT_LOW_BITS 0x0170000000000000ull  /* 2^-1000 */
#define LOG_DIRECT_HIGH_BITS 0x7e70000000000000ull /* 2^1000 */

/*
 * log(2^extra * s) for a normalised s (|s.lo| <= ulp(s.hi) / 2) with s.hi in
 * [2^-1000, 2^1000), |extra| <= 600: absolute error below 2^-73.
 *
 * s = 2^k (z + z_lo), z in [0.6875, 1.375) and z_lo = s.lo * 2^-k (both
 * exact), and log_table gives for z's subinterval invc ~ 1 / z and
 * log(1 / invc) = logc_hi + logc_lo (invc = 1, log 0, for z in [1 - 2^-9,
 * 1 + 2^-8)). Then
 *
 *   log(s) = k ln 2 + log(1 / invc) + log1p(r),  r = (z + z_lo) invc - 1
 *
 * and r = rh + rl with rh = fl(z * invc) - 1 and rl = the product's error
 * + z_lo * invc: rh is exact (Sterbenz: z * invc is within 2^-8 of 1),
 * |rh| <= 2^-8 (gen_log_table.py checks it for every subinterval) and a
 * multiple of 2^-53, |rl| <= 2^-52 rounded once (2^-105). With
 * log1p(rh + rl) = log1p(rh) + log1p(rl / (1 + rh)):
 *
 *   log1p(rh) = rh - rh^2 / 2 + rh^3 (1/3 - rh/4 + ... - rh^5/8) + t,
 *       the truncation |t| <= |rh|^9 / 9 / (1 - 2^-8) < 2^-75.1;
 *       rh^2 = square.hi + square.lo exactly (two_prod: rh^2 >= 2^-106
 *       or 0), the rest (below 2^-25.5) to 6 roundings, 2^-76;
 *   log1p(rl / (1 + rh)) = rl (1 - rh + rh^2) within |rl rh^3| +
 *       rl^2 < 2^-75.9.
 *
 * The large parts, k * LOG_LN2_HI (exact: 42 bits times |k| < 2^11), logc_hi,
 * rh and -square.hi / 2, are added without error (fast_two_sum: |k ln 2|
 * >= 0.69 > |logc| unless k = 0; two_sum), and the small ones in one
 * double: the series last, whose rounding (2^-79.5) is the only one above
 * 2^-85. two_sum adds the two (|lo| may exceed |hi| where the parts cancel,
 * for s near 1). Altogether 2^-74.0, written 2^-73.
 *
 * For s in [1 - 2^-9, 1 + 2^-8) (k = 0, invc = 1: rh = s.hi - 1, rl = s.lo,
 * nothing to cancel) the same terms are relative to |rh| ~ |log s|: the
 * truncation, the series' and rl's roundings below 2^-65 |log s|, and the
 * rounding of the small parts below 2^-53 |rl| <= 2^-106. So a row whose
 * maximum nearly has probability 1 gets a log-sum exact to about 2^-65
 * of itself.
 */
static inline dd dd_log_reduced(dd s, int extra)
{
    const uint64_t bits = bits_of_double(s.hi);
    /* Biased by 1024 * 2^52 so that the shift sees a positive number. */
    const uint64_t from_start = bits - LOG_TABLE_START_BITS + (1024ull << 52);
    const int k = (int)(from_start >> 52) - 1024;
    const double *entry = log_table[(from_start >> 44) & 255u];
    const double z = double_of_bits(bits - ((uint64_t)(int64_t)k << 52));
    const double z_lo = s.lo * double_of_bits((uint64_t)(1023 - k) << 52);
    const double invc = entry[0];
    const dd product = two_prod(z, invc);
    const double rh = product.hi - 1.0;
    const double rl = product.lo + z_lo * invc;
    const dd square = two_prod(rh, rh);
    const double r2 = square.hi, r3 = rh * r2, r4 = r2 * r2;
    /* Estrin's scheme: three independent pairs, then two levels. */
    const double pair01 = 1.0 / 3 - rh * 0.25;
    const double pair23 = 0.2 - rh * (1.0 / 6);
    const double pair45 = 1.0 / 7 - rh * 0.125;
    const double series = r3 * ((pair01 + r2 * pair23) + r4 * pair45);
    const double rl_term = rl * ((1.0 - rh) + r2);
    const double kd = (double)(k + extra);
    const dd top = fast_two_sum(kd * LOG_LN2_HI, entry[1]);
    const dd with_r = two_sum(top.hi, rh);
    const dd with_square = two_sum(with_r.hi, -0.5 * square.hi);
    const double small =
        ((top.lo + with_r.lo) + (with_square.lo + (kd * LOG_LN2_LO + entry[2]))) + (rl_term - 0.5 * square.lo);
    return two_sum(with_square.hi, small + series);
}

/* The arguments dd_log_reduced does not take, out of the way of the
 * common ones: NaN, 0, negative, +inf, and s.hi below 2^-1000 or from
 * 2^1000 up, which a factor 2^+-600 brings into its range (exactly, but for
 * the bits of s.lo that fall below 2^-1074, 2^-1400 of s). */
static inline dd dd_log_rare(dd s)
{
    if (!(s.hi > 0)) /* NaN stays NaN */
        return (dd){s.hi == 0 ? -INFINITY : s.hi != s.hi ? s.hi : NAN, 0};
    if (s.hi == INFINITY)
        return (dd){INFINITY, 0};
    const int shift = s.hi < 1 ? 600 : -600;
    const double factor = power_of_two(shift);
    return dd_log_reduced((dd){s.hi * factor, s.lo * factor}, -shift);
}

/*
 * log(s) for a normalised double-double s (|s.lo| <= ulp(s.hi) / 2),
 * absolute error below 2^-73 for every s > 0, and below 2^-65 |log s| +
 * 2^-105 for s in [1 - 2^-9, 1 + 2^-8) (-inf for 0, NaN below 0 and for
 * NaN, +inf for +inf). The softmax lines pass a sum of exponentials
 * whose largest term is 1 (or, in the SIMD kernels, in [2, 4)), or a count:
 * 1 <= s < 2^64. The same bits on every platform (table-driven, plain
 * double operations, two_prod's exact products).
 *
 * Never negative for s.hi >= 1, and log(1) is exactly 0: for s.hi = 1,
 * log(1 + s.lo) = s.lo within 2^-107, and a sum just below 1 by rounding
 * (s.lo < 0) gives 0; for s.hi > 1, log(s) >= 2^-53 is far above the
 * error. A negative value would put log-softmax above 0.
 */
static inline dd dd_log(dd s)
{
    if (s.hi == 1.0)
        return (dd){s.lo > 0 || s.lo != s.lo ? s.lo : 0.0, 0.0};
    if (bits_of_double(s.hi) - LOG_DIRECT_LOW_BITS >= LOG_DIRECT_HIGH_BITS - LOG_DIRECT_LOW_BITS)
        return dd_log_rare(s);
    return dd_log_reduced(s, 0);
}

/* log(x) rounded to double for x >= 1 (the counts of the limit cases). */
static inline double dd_log_double(double x)
{
    const dd l = dd_log((dd){x, 0});
    return l.hi + l.lo;
}

#endif /* SOFTMAX_REF_DOUBLE_DOUBLE_H */
