/*
 * ref_lines.h -- the portable reference kernels, written once for both
 * floating-point types. Include it after defining:
 *
 *   REAL             the data type (float, double)
 *   WIDE             the type of the gradients' sums and products and of
 *                    the f32 forward intermediates (double for both types)
 *   WIDE_EXP, WIDE_LOG, WIDE_FABS   exp, log, fabs of WIDE
 *   REF_DOUBLE_DOUBLE  (f64) the forward lines carry their intermediates in
 *                    double-double (double_double.h) instead of WIDE
 *   LINES_NAME       the name of the exported softmax_line_kernels table
 *   KERNELS_NAME     the name of the exported softmax_kernels table (rows and
 *                    columns as loops over lines)
 *
 * Why these are accurate: every forward output is a short chain of
 * operations carried with at least 11 more bits than REAL (double: 53 vs
 * 24; double-double: about 106 vs 53, its exp and log to 2^-71) followed by
 * one rounding to REAL. The error of the chain (the argument
 * scale * (x - max), exp, a compensated sum, one division) stays well below
 * half an ulp of REAL, so outputs are within 1 ulp (nearly always correctly
 * rounded). Why they preserve order: for a fixed row every step -- x - max,
 * times scale, exp, rounding, division by the same sum -- is a monotone
 * function of x_i. The gradients are a few double roundings per term around
 * compensated sums (their tolerance is a few roundings of each term), with
 * an extended-range evaluation (extended_range.h) for the elements where
 * double overflowed or underflowed (see "gradients" below).
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extended_range.h" /* the gradients' careful path */
#include "internal.h"
#ifdef REF_DOUBLE_DOUBLE
#include "double_double.h"
#endif

/* ---- compensated summation (Neumaier): the error does not grow with n ---- */

typedef struct wide_sum {
    WIDE sum;
    WIDE carry;
} wide_sum;

static inline void wide_sum_add(wide_sum *acc, WIDE value)
{
    WIDE total = acc->sum + value;
    if (WIDE_FABS(acc->sum) >= WIDE_FABS(value))
        acc->carry += (acc->sum - total) + value;
    else
        acc->carry += (value - total) + acc->sum;
    acc->sum = total;
}

static inline WIDE wide_sum_result(const wide_sum *acc)
{
    /* With an infinite or NaN partial sum the carry is meaningless (inf - inf). */
    return isfinite(acc->sum) ? acc->sum + acc->carry : acc->sum;
}

/* ---- helpers over one strided line ---- */

static void fill_line(REAL *y, ptrdiff_t y_stride, size_t n, REAL value)
{
    for (size_t i = 0; i < n; i++)
        y[(ptrdiff_t)i * y_stride] = value;
}

typedef struct line_extremes {
    REAL max;
    REAL min;
    bool has_nan;
} line_extremes;

static line_extremes scan_line(const REAL *x, ptrdiff_t x_stride, size_t n)
{
    line_extremes result = {(REAL)-INFINITY, (REAL)INFINITY, false};
    for (size_t i = 0; i < n; i++) {
        REAL v = x[(ptrdiff_t)i * x_stride];
        if (isnan(v))
            result.has_nan = true;
        if (v > result.max)
            result.max = v;
        if (v < result.min)
            result.min = v;
    }
    return result;
}

/* The limit cases all give equal shares to a subset of the row: the
 * elements equal to `chosen` (share_equal) or those that are not -inf
 * (share_unmasked). */
static void share_equal(const REAL *x, ptrdiff_t x_stride, REAL *y, ptrdiff_t y_stride, size_t n, REAL chosen,
                        bool log_output)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += x[(ptrdiff_t)i * x_stride] == chosen;
    /* 0 - log: a single share is +0, as log_sum_from gives (-log 1 is -0) */
    REAL share = log_output ? (REAL)((WIDE)0 - WIDE_LOG((WIDE)count)) : (REAL)((WIDE)1 / (WIDE)count);
    REAL rest = log_output ? (REAL)-INFINITY : (REAL)0;
    for (size_t i = 0; i < n; i++) {
        REAL v = x[(ptrdiff_t)i * x_stride];
        y[(ptrdiff_t)i * y_stride] = v == chosen ? share : rest;
    }
}

static void share_unmasked(const REAL *x, ptrdiff_t x_stride, REAL *y, ptrdiff_t y_stride, size_t n, bool log_output)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += x[(ptrdiff_t)i * x_stride] != (REAL)-INFINITY;
    /* 0 - log: a single share is +0, as log_sum_from gives (-log 1 is -0) */
    REAL share = log_output ? (REAL)((WIDE)0 - WIDE_LOG((WIDE)count)) : (REAL)((WIDE)1 / (WIDE)count);
    REAL masked = log_output ? (REAL)-INFINITY : (REAL)0;
    for (size_t i = 0; i < n; i++) {
        REAL v = x[(ptrdiff_t)i * x_stride];
        y[(ptrdiff_t)i * y_stride] = v == (REAL)-INFINITY ? masked : share;
    }
}

/*
 * Handles every row the contract treats specially. Returns true when the
 * output is written; false leaves a row with a finite reference element
 * (`*reference` = max for scale > 0, min for scale < 0) and a finite,
 * non-zero scale to the general path.
 */
static bool special_line(const REAL *x, ptrdiff_t x_stride, REAL *y, ptrdiff_t y_stride, size_t n, double scale,
                         bool log_output, REAL *reference)
{
    line_extremes extremes = scan_line(x, x_stride, n);
    if (extremes.has_nan) {
        fill_line(y, y_stride, n, (REAL)NAN);
        return true;
    }
    if (extremes.max == (REAL)-INFINITY) { /* fully masked, whatever the scale */
        fill_line(y, y_stride, n, log_output ? (REAL)-INFINITY : (REAL)0);
        return true;
    }
    if (scale == 0) {
        share_unmasked(x, x_stride, y, y_stride, n, log_output);
        return true;
    }
    REAL top = scale > 0 ? extremes.max : extremes.min;
    if (scale < 0 && top == (REAL)INFINITY) { /* all +inf under softmin: every z is -inf */
        fill_line(y, y_stride, n, log_output ? (REAL)-INFINITY : (REAL)0);
        return true;
    }
    if (isinf(scale) || isinf(top)) {
        share_equal(x, x_stride, y, y_stride, n, top, log_output);
        return true;
    }
    *reference = top;
    return false;
}

/* ---- forward ---- */

#ifdef REF_DOUBLE_DOUBLE

/* The SIMD forward kernels run with flush-to-zero (MXCSR.FTZ) and hand the
 * rows the contract treats specially to these lines, subnormal scales and
 * differences of subnormal inputs among them: a flushed intermediate would
 * turn scale * (x - top) into 0. The double-double lines therefore run with
 * FTZ and DAZ clear and restore the caller's MXCSR. (x87 long double, which
 * these lines replace, never looked at MXCSR.) */
#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
enum { MXCSR_FLUSH_BITS = 0x8040 }; /* FTZ, DAZ */
static inline unsigned int gradual_underflow_begin(void)
{
    const unsigned int saved = _mm_getcsr();
    if (saved & MXCSR_FLUSH_BITS)
        _mm_setcsr(saved & ~(unsigned int)MXCSR_FLUSH_BITS);
    return saved;
}
static inline void gradual_underflow_end(unsigned int saved)
{
    if (saved & MXCSR_FLUSH_BITS)
        _mm_setcsr(saved);
}
#else
static inline unsigned int gradual_underflow_begin(void)
{
    return 0;
}
static inline void gradual_underflow_end(unsigned int saved)
{
    (void)saved;
}
#endif

/* t = scale * (x - top) as a double-double, relative error below 2^-104.
 * x - top is exact as a double-double; where it (or an intermediate of
 * two_sum) overflows, (x/2 - top/2) is (halving is exact for numbers that
 * large) and the 2 goes to the scale. The product's error needs factors
 * below 2^995 and an error in the normal range: with both factors in
 * [2^-400, 2^400] and |t| >= 2^-60 that holds (the scale is split in
 * halves once per row); otherwise the factors are first rescaled by a
 * power of two (exact) to balance their exponents. A scale that is a power
 * of two multiplies exactly. Below 2^-60 t needs no error term
 * (exp(t) = 1 + t within 2^-121; log-softmax's t - log(sum) is measured
 * against max(|y|, 1)). A product beyond the double range is -inf, as t is
 * then (exp(t) = 0, t - log(sum) rounds to -inf). */
typedef struct row_scale {
    double value;
    dd halves;       /* split_in_halves(value), when usable */
    bool exact;      /* a power of two: products are exact */
    bool splittable; /* |value| in [2^-400, 2^400] */
} row_scale;

static row_scale row_scale_of(double scale)
{
    int exponent = 0;
    row_scale s = {scale, {0, 0}, frexp(scale, &exponent) == (scale > 0 ? 0.5 : -0.5), false};
    s.splittable = fabs(scale) >= 0x1p-400 && fabs(scale) <= 0x1p400;
    if (s.splittable)
        s.halves = split_in_halves(scale);
    return s;
}

static dd scaled_difference_rescaled(double a, dd d)
{
    /* |a * d| is in [2^-60, 2^1024): both factors end within 2^+-600. */
    const int shift = (ilogb(a) - ilogb(d.hi)) / 2;
    const double a_scaled = scale_by_power_of_two(a, -shift);
    const double b_hi = scale_by_power_of_two(d.hi, shift), b_lo = scale_by_power_of_two(d.lo, shift);
    const double p = a_scaled * b_hi;
    return fast_two_sum(p, product_error(p, split_in_halves(a_scaled), split_in_halves(b_hi)) + a_scaled * b_lo);
}

static dd scaled_difference_overflowed(double scale, double x, double top)
{
    const dd d = two_sum(0.5 * x, -0.5 * top);
    const double a = 2 * scale;
    const double product = a * d.hi;
    if (!isfinite(d.lo) || isinf(product)) /* x = -inf (or +inf under softmin) */
        return (dd){isnan(product) ? -INFINITY : product, 0};
    return fabs(product) >= 0x1p-60 ? scaled_difference_rescaled(a, d) : (dd){product, 0};
}

static inline dd scaled_difference(const row_scale *scale, double x, double top)
{
    const dd d = two_sum(x, -top);
    if (!isfinite(d.lo)) /* d.hi or an intermediate of two_sum overflowed (or x is -inf) */
        return scaled_difference_overflowed(scale->value, x, top);
    const double product = scale->value * d.hi;
    if (!(fabs(product) >= 0x1p-60) || isinf(product)) /* also d.hi == 0 */
        return (dd){product, 0};
    if (scale->exact)
        return (dd){product, scale->value * d.lo};
    if (!(scale->splittable && fabs(d.hi) >= 0x1p-400 && fabs(d.hi) <= 0x1p400))
        return scaled_difference_rescaled(scale->value, d);
    const double error = product_error(product, scale->halves, split_in_halves(d.hi));
    return fast_two_sum(product, error + scale->value * d.lo);
}

/* Sum2 (Ogita, Rump, Oishi): the high parts with two_sum, every error and
 * low part in a second double; relative error n * 2^-106 + 2^-104 for
 * positive terms. Each step depends on the last through one addition. */
typedef struct dd_sum {
    double hi;
    double lo;
} dd_sum;

static inline void dd_sum_add(dd_sum *acc, dd value)
{
    const dd s = two_sum(acc->hi, value.hi);
    acc->hi = s.hi;
    acc->lo += s.lo + value.lo;
}

static inline dd dd_sum_result(const dd_sum *acc)
{
    return isfinite(acc->hi) ? fast_two_sum(acc->hi, acc->lo) : (dd){acc->hi, 0};
}

/* The exponentials of a block of arguments, in loops the compiler
 * vectorises (dd_exp_branchless: the bits of dd_exp). BLOCK arguments are
 * formed by the scalar scaled_difference, their exponentials computed here,
 * then summed in order: the same operations in the same order as one loop
 * over dd_exp would do, hence the same bits on every ISA level. */
enum { EXP_BLOCK = 256 };

SOFTMAX_VECTOR_CLONES static void dd_exp_block(const double *restrict t_hi, const double *restrict t_lo,
                                               double *restrict exp_hi, double *restrict exp_lo, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dd_exp_branchless(t_hi[i], t_lo[i], &exp_hi[i], &exp_lo[i]);
}

/* Adds exp(scale * (x_i - top)) for the whole line to total; with `parked`,
 * also writes each exponential's high part to parked (stride y_stride). */
static void dd_sum_exponentials(const row_scale *row, const REAL *x, ptrdiff_t x_stride, size_t n, REAL top,
                                dd_sum *total, REAL *parked, ptrdiff_t y_stride)
{
    double t_hi[EXP_BLOCK], t_lo[EXP_BLOCK], e_hi[EXP_BLOCK], e_lo[EXP_BLOCK];
    for (size_t begin = 0; begin < n; begin += EXP_BLOCK) {
        const size_t count = n - begin < EXP_BLOCK ? n - begin : EXP_BLOCK;
        for (size_t j = 0; j < count; j++) {
            const dd t = scaled_difference(row, x[(ptrdiff_t)(begin + j) * x_stride], top);
            t_hi[j] = t.hi;
            t_lo[j] = t.lo;
        }
        dd_exp_block(t_hi, t_lo, e_hi, e_lo, count);
        for (size_t j = 0; j < count; j++)
            dd_sum_add(total, (dd){e_hi[j], e_lo[j]});
        /* Written after the block's x are read (x may be y). */
        if (parked)
            for (size_t j = 0; j < count; j++)
                parked[(ptrdiff_t)(begin + j) * y_stride] = e_hi[j];
    }
}

/* e * (inverse.hi + inverse.lo) rounded once. Below 2^-900 the product's
 * error would leave the normal range: there the same product of e * 2^200,
 * scaled back (exact for a result in the normal range, one more rounding
 * below it). The choice is a factor (1 or 2^200, and back), not a branch,
 * so that the loop vectorises: multiplying by 1 is exact. */
static inline double normalised(double e, dd inverse, dd inverse_halves)
{
    const int tiny = e < 0x1p-900;
    const double up = tiny ? 0x1p200 : 1.0, down = tiny ? 0x1p-200 : 1.0;
    const double e_scaled = e * up;
    const double p = e_scaled * inverse.hi;
    return (p + (product_error(p, split_in_halves(e_scaled), inverse_halves) + e_scaled * inverse.lo)) * down;
}

SOFTMAX_VECTOR_CLONES static void normalise_contiguous(double *restrict y, size_t n, dd inverse, dd inverse_halves)
{
    for (size_t i = 0; i < n; i++)
        y[i] = normalised(y[i], inverse, inverse_halves);
}

static void softmax_line_unflushed(const void *x_data, ptrdiff_t x_stride, void *y_data, ptrdiff_t y_stride, size_t n,
                                   double scale)
{
    const REAL *x = x_data;
    REAL *y = y_data;
    REAL top;
    if (special_line(x, x_stride, y, y_stride, n, scale, false, &top))
        return;
    /* t_i = scale * (x_i - top) <= 0, so exp never overflows and the
     * reference element contributes exactly 1 to the sum. */
    const row_scale row = row_scale_of(scale);
    dd_sum total = {0, 0};
    /* The exponential, rounded to double, waits in y: half an ulp, then half
     * an ulp for the division below. */
    dd_sum_exponentials(&row, x, x_stride, n, top, &total, y, y_stride);
    const dd inverse = dd_reciprocal(dd_sum_result(&total));
    const dd inverse_halves = split_in_halves(inverse.hi);
    if (y_stride == 1) {
        normalise_contiguous(y, n, inverse, inverse_halves);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        REAL *out = &y[(ptrdiff_t)i * y_stride];
        *out = normalised(*out, inverse, inverse_halves);
    }
}

static void log_softmax_line_unflushed(const void *x_data, ptrdiff_t x_stride, void *y_data, ptrdiff_t y_stride,
                                       size_t n, double scale)
{
    const REAL *x = x_data;
    REAL *y = y_data;
    REAL top;
    if (special_line(x, x_stride, y, y_stride, n, scale, true, &top))
        return;
    const row_scale row = row_scale_of(scale);
    dd_sum total = {0, 0};
    dd_sum_exponentials(&row, x, x_stride, n, top, &total, NULL, 0);
    /* y_i = t_i - log(sum) with t_i <= 0 and log(sum) >= 0 (dd_log never
     * returns a negative value): both terms push the same way, so there is
     * no cancellation and y_i <= 0, exactly 0 where t_i = 0 and the sum is
     * exactly 1 (every other element -inf or too small to add to 1). */
    const dd log_sum = dd_log(dd_sum_result(&total));
    for (size_t i = 0; i < n; i++) {
        const dd t = scaled_difference(&row, x[(ptrdiff_t)i * x_stride], top);
        if (fabs(t.hi) <= 0x1p1020) {
            const dd difference = two_sum(t.hi, -log_sum.hi);
            y[(ptrdiff_t)i * y_stride] = difference.hi + (difference.lo + (t.lo - log_sum.lo));
            continue;
        }
        /* Near the end of the range (t may have overflowed where y does
         * not): the same in halves, doubled at the end (exact, or -inf). A
         * scale that small would not make t this large, so halving it is
         * exact. */
        const row_scale half_scale = row_scale_of(0.5 * scale);
        const dd half = scaled_difference(&half_scale, x[(ptrdiff_t)i * x_stride], top);
        if (isinf(half.hi)) { /* a -inf element, or y beyond the range */
            y[(ptrdiff_t)i * y_stride] = half.hi;
            continue;
        }
        const dd difference = two_sum(half.hi, -0.5 * log_sum.hi);
        y[(ptrdiff_t)i * y_stride] = 2 * (difference.hi + (difference.lo + (half.lo - 0.5 * log_sum.lo)));
    }
}

static void softmax_line(const void *x_data, ptrdiff_t x_stride, void *y_data, ptrdiff_t y_stride, size_t n,
                         double scale)
{
    const unsigned int saved = gradual_underflow_begin();
    softmax_line_unflushed(x_data, x_stride, y_data, y_stride, n, scale);
    gradual_underflow_end(saved);
}

static void log_softmax_line(const void *x_data, ptrdiff_t x_stride, void *y_data, ptrdiff_t y_stride, size_t n,
                             double scale)
{
    const unsigned int saved = gradual_underflow_begin();
    log_softmax_line_unflushed(x_data, x_stride, y_data, y_stride, n, scale);
    gradual_underflow_end(saved);
}

#else /* WIDE intermediates */

static void softmax_line(const void *x_data, ptrdiff_t x_stride, void *y_data, ptrdiff_t y_stride, size_t n,
                         double scale)
{
    const REAL *x = x_data;
    REAL *y = y_data;
    REAL top;
    if (special_line(x, x_stride, y, y_stride, n, scale, false, &top))
        return;
    /* t_i = scale * (x_i - top) <= 0, so exp never overflows and the
     * reference element contributes exactly 1 to the sum. */
    const WIDE wide_scale = (WIDE)scale;
    const WIDE wide_top = (WIDE)top;
    wide_sum total = {0, 0};
    for (size_t i = 0; i < n; i++) {
        WIDE t = wide_scale * ((WIDE)x[(ptrdiff_t)i * x_stride] - wide_top);
        WIDE e = WIDE_EXP(t);
        wide_sum_add(&total, e);
        /* The unnormalised value is parked in y (x may be y: x_i is read
         * before y_i is written). For every output in the normal range e is
         * normal too (e >= y since the sum is >= 1), so parking it in REAL
         * costs at most half an ulp. */
        y[(ptrdiff_t)i * y_stride] = (REAL)e;
    }
    const WIDE sum = wide_sum_result(&total);
    for (size_t i = 0; i < n; i++) {
        REAL *out = &y[(ptrdiff_t)i * y_stride];
        *out = (REAL)((WIDE)*out / sum);
    }
}

static void log_softmax_line(const void *x_data, ptrdiff_t x_stride, void *y_data, ptrdiff_t y_stride, size_t n,
                             double scale)
{
    const REAL *x = x_data;
    REAL *y = y_data;
    REAL top;
    if (special_line(x, x_stride, y, y_stride, n, scale, true, &top))
        return;
    const WIDE wide_scale = (WIDE)scale;
    const WIDE wide_top = (WIDE)top;
    wide_sum total = {0, 0};
    for (size_t i = 0; i < n; i++)
        wide_sum_add(&total, WIDE_EXP(wide_scale * ((WIDE)x[(ptrdiff_t)i * x_stride] - wide_top)));
    /* y_i = t_i - log(sum) with t_i <= 0 and log(sum) >= 0: both terms push
     * the same way, so there is no cancellation. */
    const WIDE log_sum = WIDE_LOG(wide_sum_result(&total));
    for (size_t i = 0; i < n; i++) {
        WIDE t = wide_scale * ((WIDE)x[(ptrdiff_t)i * x_stride] - wide_top);
        /* + 0: a negative scale makes t = -0 at the max, and -0 - log 1 is -0 */
        y[(ptrdiff_t)i * y_stride] = (REAL)((t - log_sum) + (WIDE)0);
    }
}

#endif /* REF_DOUBLE_DOUBLE */

/* ---- gradients ---- */

/* The special rows of the gradients are decided from the inputs, never from
 * the reduction: a reduction can be NaN without a NaN input (0 * inf when a
 * masked y meets an infinite dy, exp(logy) = inf times v = 0, dy holding
 * both +inf and -inf), and the contract's zero rules must still hold there.
 *
 * An infinite scale makes the forward function piecewise constant: its
 * derivative is zero wherever it exists; a fully masked row has no
 * dependence on x at all. Both give zeros; a NaN input still shows, and wins
 * over the zero rules (a NaN dy is never silently dropped). */
static void zero_or_nan_line(REAL *dst, ptrdiff_t dst_stride, size_t n, bool has_nan)
{
    fill_line(dst, dst_stride, n, has_nan ? (REAL)NAN : (REAL)0);
}

/* Whether either strided line holds a NaN or an infinity (other than a
 * logy of -inf: a probability of 0), and whether the first is all equal to
 * masked_value (0 for y, -inf for logy). */
typedef struct gradient_inputs {
    bool has_nan;
    bool has_inf;
    bool fully_masked;
} gradient_inputs;

static gradient_inputs gradient_inputs_of(const REAL *a, ptrdiff_t a_stride, const REAL *b, ptrdiff_t b_stride,
                                          size_t n, REAL masked_value)
{
    gradient_inputs in = {false, false, true};
    for (size_t i = 0; i < n; i++) {
        REAL ai = a[(ptrdiff_t)i * a_stride], bi = b[(ptrdiff_t)i * b_stride];
        in.has_nan |= isnan(ai) || isnan(bi);
        in.has_inf |= isinf(bi) || (isinf(ai) && ai != masked_value);
        in.fully_masked &= ai == masked_value;
    }
    return in;
}

/*
 * The gradients are evaluated plainly in WIDE (double) and rounded once to
 * REAL. For f32 data double has room for every intermediate; for f64 data
 * it has none to spare, so each element checks what the plain evaluation
 * may have lost and is evaluated again in extended range
 * (extended_range.h) where it:
 *   - came out infinite or NaN from finite inputs (dy - d beyond DBL_MAX,
 *     exp(logy) = inf for a logy above 709), although the exact value may
 *     be finite;
 *   - multiplied a factor that fell below the normal range by something
 *     that brings the product back (exp(logy) below DBL_MIN times a sum of
 *     1e300; s * (dy - d) below DBL_MIN times a y above 1).
 * A reduction that overflows from finite terms is summed again with its
 * terms scaled by a power of two (scaled_sum), and its elements go through
 * the extended range. Lines with an infinite input follow IEEE arithmetic in
 * the plain evaluation (inf - inf and 0 * inf are NaN), as the formulas
 * read in extended-real arithmetic.
 */

/* The terms of the three reductions. */
typedef enum gradient_term {
    TERM_B,            /* b_j: sum(dy) */
    TERM_A_TIMES_B,    /* a_j * b_j: <y, dy> */
    TERM_EXP_A_TIMES_B /* exp(a_j) * b_j: <exp(logy), v> */
} gradient_term;

static xreal term_of(gradient_term term, REAL a, REAL b)
{
    switch (term) {
    case TERM_B:
        return xreal_of((double)b);
    case TERM_A_TIMES_B:
        return xreal_mul(xreal_of((double)a), xreal_of((double)b));
    default:
        return xreal_mul(xreal_exp((double)a), xreal_of((double)b));
    }
}

/* The sum of a line's terms times 2^-*shift, for a line whose plain sum
 * overflowed: the shift puts the largest term at 2^(1022 - bits(n)), so
 * that no partial sum of the n terms can overflow; a term that the shift
 * takes below the normal range was below 2^-1000 of the largest. */
static WIDE scaled_sum(gradient_term term, const REAL *a, ptrdiff_t a_stride, const REAL *b, ptrdiff_t b_stride,
                       size_t n, int64_t *shift)
{
    int64_t top = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        const xreal t = term_of(term, a[(ptrdiff_t)i * a_stride], b[(ptrdiff_t)i * b_stride]);
        if (t.m != 0 && t.e > top)
            top = t.e;
    }
    int count_bits = 0;
    for (size_t rest = n; rest != 0; rest >>= 1)
        count_bits++;
    *shift = top - 1022 + count_bits;
    wide_sum acc = {0, 0};
    for (size_t i = 0; i < n; i++) {
        const xreal t = term_of(term, a[(ptrdiff_t)i * a_stride], b[(ptrdiff_t)i * b_stride]);
        wide_sum_add(&acc, (WIDE)xreal_to_double((xreal){t.m, t.e - *shift}));
    }
    return wide_sum_result(&acc);
}

/* Below this logy, exp(logy) * |factor| < 2^-1100: far below every rounding
 * of a result in either type, whatever the plain evaluation did with it. */
static WIDE negligible_logy(WIDE factor)
{
    if (factor == 0)
        return (WIDE)INFINITY;
    if (!isfinite(factor)) /* nothing is negligible beside an infinite factor (ilogb would be INT_MAX) */
        return (WIDE)-INFINITY;
    return ((WIDE)-1101 - (WIDE)ilogb(factor)) * (WIDE)XREAL_LN2_HI;
}

static void softmax_backward_line(const void *y_data, ptrdiff_t y_stride, const void *dy_data, ptrdiff_t dy_stride,
                                  void *dx_data, ptrdiff_t dx_stride, size_t n, double scale)
{
    const REAL *y = y_data;
    const REAL *dy = dy_data;
    REAL *dx = dx_data;
    const gradient_inputs in = gradient_inputs_of(y, y_stride, dy, dy_stride, n, 0);
    if (in.has_nan || in.fully_masked || isinf(scale)) {
        zero_or_nan_line(dx, dx_stride, n, in.has_nan);
        return;
    }
    wide_sum dot_acc = {0, 0};
    for (size_t i = 0; i < n; i++)
        wide_sum_add(&dot_acc, (WIDE)y[(ptrdiff_t)i * y_stride] * (WIDE)dy[(ptrdiff_t)i * dy_stride]);
    WIDE dot = wide_sum_result(&dot_acc);
    int64_t dot_shift = 0;
    if (!isfinite(dot) && !in.has_inf)
        dot = scaled_sum(TERM_A_TIMES_B, y, y_stride, dy, dy_stride, n, &dot_shift);
    const WIDE wide_scale = (WIDE)scale;
    for (size_t i = 0; i < n; i++) {
        WIDE yi = (WIDE)y[(ptrdiff_t)i * y_stride];
        WIDE dyi = (WIDE)dy[(ptrdiff_t)i * dy_stride];
        if (dot_shift == 0) {
            /* y * (s * (dy - d)): s * y may underflow where the product
             * does not; s * (dy - d) underflowing costs at most half a
             * subnormal ulp times |y|, nothing while |y| <= 1. */
            const WIDE scaled = wide_scale * (dyi - dot);
            const WIDE result = yi * scaled;
            if (in.has_inf || (isfinite(result) && (!(WIDE_FABS(scaled) < DBL_MIN) || WIDE_FABS(yi) <= 1))) {
                dx[(ptrdiff_t)i * dx_stride] = (REAL)result;
                continue;
            }
        }
        dx[(ptrdiff_t)i * dx_stride] = (REAL)careful_softmax_backward(scale, yi, dyi, xreal_pair_of(dot, 0, dot_shift));
    }
}

static void log_softmax_backward_line(const void *logy_data, ptrdiff_t logy_stride, const void *dy_data,
                                      ptrdiff_t dy_stride, void *dx_data, ptrdiff_t dx_stride, size_t n, double scale)
{
    const REAL *logy = logy_data;
    const REAL *dy = dy_data;
    REAL *dx = dx_data;
    const gradient_inputs in = gradient_inputs_of(logy, logy_stride, dy, dy_stride, n, (REAL)-INFINITY);
    if (in.has_nan || in.fully_masked || isinf(scale)) {
        zero_or_nan_line(dx, dx_stride, n, in.has_nan);
        return;
    }
    wide_sum dy_acc = {0, 0};
    for (size_t i = 0; i < n; i++)
        wide_sum_add(&dy_acc, (WIDE)dy[(ptrdiff_t)i * dy_stride]);
    WIDE dy_sum = wide_sum_result(&dy_acc);
    int64_t sum_shift = 0;
    if (!isfinite(dy_sum) && !in.has_inf)
        dy_sum = scaled_sum(TERM_B, logy, logy_stride, dy, dy_stride, n, &sum_shift);
    const WIDE wide_scale = (WIDE)scale;
    const WIDE negligible = negligible_logy(dy_sum);
    for (size_t i = 0; i < n; i++) {
        WIDE li = (WIDE)logy[(ptrdiff_t)i * logy_stride];
        WIDE dyi = (WIDE)dy[(ptrdiff_t)i * dy_stride];
        if (sum_shift == 0) {
            const WIDE yi = WIDE_EXP(li);
            const WIDE result = wide_scale * (dyi - yi * dy_sum);
            if (in.has_inf || (isfinite(result) && !(yi < DBL_MIN && li > negligible))) {
                dx[(ptrdiff_t)i * dx_stride] = (REAL)result;
                continue;
            }
        }
        dx[(ptrdiff_t)i * dx_stride] =
            (REAL)careful_log_softmax_backward(scale, li, dyi, xreal_pair_of(dy_sum, 0, sum_shift));
    }
}

static void log_softmax_jvp_line(const void *logy_data, ptrdiff_t logy_stride, const void *v_data, ptrdiff_t v_stride,
                                 void *out_data, ptrdiff_t out_stride, size_t n, double scale)
{
    const REAL *logy = logy_data;
    const REAL *v = v_data;
    REAL *out = out_data;
    const gradient_inputs in = gradient_inputs_of(logy, logy_stride, v, v_stride, n, (REAL)-INFINITY);
    if (in.has_nan || in.fully_masked || isinf(scale)) {
        zero_or_nan_line(out, out_stride, n, in.has_nan);
        return;
    }
    wide_sum dot_acc = {0, 0};
    for (size_t i = 0; i < n; i++) {
        const WIDE li = (WIDE)logy[(ptrdiff_t)i * logy_stride], vi = (WIDE)v[(ptrdiff_t)i * v_stride];
        const WIDE yi = WIDE_EXP(li);
        WIDE term = yi * vi;
        if (!in.has_inf && (!isfinite(term) || (yi < DBL_MIN && li > negligible_logy(vi))))
            term = (WIDE)careful_exp_product(li, vi, 0);
        wide_sum_add(&dot_acc, term);
    }
    WIDE dot = wide_sum_result(&dot_acc);
    int64_t dot_shift = 0;
    if (!isfinite(dot) && !in.has_inf)
        dot = scaled_sum(TERM_EXP_A_TIMES_B, logy, logy_stride, v, v_stride, n, &dot_shift);
    const WIDE wide_scale = (WIDE)scale;
    for (size_t i = 0; i < n; i++) {
        const WIDE vi = (WIDE)v[(ptrdiff_t)i * v_stride];
        if (dot_shift == 0) {
            const WIDE result = wide_scale * (vi - dot);
            if (in.has_inf || isfinite(result)) {
                out[(ptrdiff_t)i * out_stride] = (REAL)result;
                continue;
            }
        }
        out[(ptrdiff_t)i * out_stride] = (REAL)careful_log_softmax_jvp(scale, vi, xreal_pair_of(dot, 0, dot_shift));
    }
}

/* ---- full Jacobians of one row ---- */

static bool any_nan(const REAL *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(values[i]))
            return true;
    return false;
}

static void softmax_jacobian(const void *y_data, size_t n, double scale, void *jacobian_data)
{
    const REAL *y = y_data;
    REAL *jacobian = jacobian_data;
    if (isinf(scale)) {
        fill_line(jacobian, 1, n * n, any_nan(y, n) ? (REAL)NAN : (REAL)0);
        return;
    }
    const WIDE wide_scale = (WIDE)scale;
    for (size_t i = 0; i < n; i++) {
        WIDE yi = (WIDE)y[i];
        for (size_t j = 0; j < n; j++) {
            /* The diagonal as y_i * (1 - y_i): one rounding instead of the
             * cancellation in y_i - y_i^2. */
            WIDE entry = i == j ? yi * (1 - yi) : -(yi * (WIDE)y[j]);
            jacobian[i * n + j] = (REAL)(wide_scale * entry);
        }
    }
}

static void log_softmax_jacobian(const void *logy_data, size_t n, double scale, void *jacobian_data)
{
    const REAL *logy = logy_data;
    REAL *jacobian = jacobian_data;
    bool fully_masked = true;
    for (size_t j = 0; j < n; j++)
        fully_masked &= logy[j] == (REAL)-INFINITY;
    if (fully_masked || isinf(scale)) {
        fill_line(jacobian, 1, n * n, any_nan(logy, n) ? (REAL)NAN : (REAL)0);
        return;
    }
    const WIDE wide_scale = (WIDE)scale;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            WIDE yj = WIDE_EXP((WIDE)logy[j]);
            WIDE entry = i == j ? 1 - yj : -yj;
            jacobian[i * n + j] = (REAL)(wide_scale * entry);
        }
}

const softmax_line_kernels LINES_NAME = {
    .element_size = sizeof(REAL),
    .softmax = softmax_line,
    .log_softmax = log_softmax_line,
    .softmax_backward = softmax_backward_line,
    .log_softmax_backward = log_softmax_backward_line,
    .log_softmax_jvp = log_softmax_jvp_line,
    .softmax_jacobian = softmax_jacobian,
    .log_softmax_jacobian = log_softmax_jacobian,
};

static void reference_rows(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                           double scale)
{
    for (size_t r = 0; r < rows; r++) {
        size_t offset = r * n;
        softmax_line_run(&LINES_NAME, op, (const REAL *)src + offset, grad ? (const REAL *)grad + offset : NULL,
                         (REAL *)dst + offset, n, 1, scale);
    }
}

static void reference_columns(softmax_op op, const void *src, const void *grad, void *dst, size_t n, size_t inner,
                              size_t j_begin, size_t j_end, double scale)
{
    for (size_t j = j_begin; j < j_end; j++)
        softmax_line_run(&LINES_NAME, op, (const REAL *)src + j, grad ? (const REAL *)grad + j : NULL, (REAL *)dst + j,
                         n, (ptrdiff_t)inner, scale);
}

static void reference_exp(const void *src, void *dst, void *residual, size_t n)
{
    const REAL *x = src;
    REAL *y = dst;
    for (size_t i = 0; i < n; i++) {
        y[i] = (REAL)WIDE_EXP((WIDE)x[i]);
        if (residual)
            ((REAL *)residual)[i] = 0;
    }
}

/* The portable path has no fast mode: SOFTMAX_FLAG_FAST computes rows(). */
static void reference_fast_rows(softmax_op op, const void *src, void *dst, size_t rows, size_t n, double scale)
{
    reference_rows(op, src, NULL, dst, rows, n, scale);
}

/* Each row's kept prefix through rows(), then the fill value to n. */
static void reference_prefix_rows(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                                  const size_t *kept, double scale)
{
    const REAL fill = (REAL)(op == SOFTMAX_OP_LOG_SOFTMAX ? -INFINITY : 0.0);
    for (size_t r = 0; r < rows; r++) {
        const size_t offset = r * n;
        REAL *out = (REAL *)dst + offset;
        if (kept[r] > 0)
            reference_rows(op, (const REAL *)src + offset, grad ? (const REAL *)grad + offset : NULL, out, 1, kept[r],
                           scale);
        for (size_t j = kept[r]; j < n; j++)
            out[j] = fill;
    }
}

/* One row on one thread (long_row_min is SIZE_MAX: never chosen). */
static void reference_long_row(softmax_op op, const void *src, const void *grad, void *dst, size_t n, double scale,
                               int threads)
{
    (void)threads;
    reference_rows(op, src, grad, dst, 1, n, scale);
}

/* Tiles of 16 elements x all lines, so that memory is read in order. */
SOFTMAX_VECTOR_CLONES static void reference_transpose_tiles(const REAL *src, int64_t stride, size_t lines, size_t n,
                                                            REAL *out)
{
    enum { TILE = 16 };
    for (size_t j0 = 0; j0 < n; j0 += TILE) {
        const size_t j1 = j0 + TILE < n ? j0 + TILE : n;
        for (size_t b = 0; b < lines; b++)
            for (size_t j = j0; j < j1; j++)
                out[b * n + j] = src[(int64_t)j * stride + (int64_t)b];
    }
}

static void reference_transpose_lines(const void *src, int64_t stride, size_t lines, size_t n, void *out)
{
    reference_transpose_tiles(src, stride, lines, n, out);
}

/* The portable lines set the mode they need themselves, line by line
 * (gradual_underflow_begin): nothing to set around them. */
static unsigned int reference_fp_mode_begin(void)
{
    return 0;
}

static void reference_fp_mode_end(unsigned int saved)
{
    (void)saved;
}

const softmax_kernels KERNELS_NAME = {
    .element_size = sizeof(REAL),
    .lanes = 1,
    .capabilities = 0,
    .rows = reference_rows,
    .fast_rows = reference_fast_rows,
    .prefix_rows = reference_prefix_rows,
    .columns = reference_columns,
    .column_chunk = 1,
    .long_row = reference_long_row,
    .long_row_min = SIZE_MAX,
    .exp = reference_exp,
    .transpose_lines = reference_transpose_lines,
    .fp_mode_begin = reference_fp_mode_begin,
    .fp_mode_end = reference_fp_mode_end,
    .excluding_row = softmax_portable_excluding_row,
    .excluding_rows = softmax_portable_excluding_rows,
    .reduce_bias = softmax_portable_reduce_bias,
    .reduced_bias_row = softmax_portable_reduced_bias_row,
    .adding_rows = softmax_portable_adding_rows,
    .grouped_rows_max = 0,
    .half_line = softmax_portable_half_line,
    .widen_half = softmax_portable_widen_half,
    .narrow_half = softmax_portable_narrow_half,
    .half_row = softmax_portable_half_row,
    .fast_half_line = softmax_portable_half_line,
    .split_logits = softmax_portable_split_logits,
    .apply_low_parts = softmax_portable_apply_low_parts,
};
