/*
 * gradients/rows.h -- the backward ops and the log-softmax JVP on contiguous rows.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 *
 * Each row is a reduction pass and an elementwise pass in the vectors, in
 * T around WIDE row constants. The reduction pass also tracks what decides
 * whether the plain elementwise pass is exact enough (the range of dy or v,
 * the smallest logy), so that the common row pays a max and a min per
 * vector and nothing more; the rest goes to the careful evaluations of
 * src/ref/, decided before anything is written (an in-place call still
 * finds its inputs):
 *
 *  - whole rows to the reference lines: the contract's special rows
 *    (infinite scale, NaN, fully masked), a reduction that is not finite
 *    (an infinite input, an f64 sum that overflowed), a scale that is not 0
 *    or a normal T (as a T it would lose its value; the lines apply the
 *    double), a logy above 0 (outside the domain of the plain pass: its
 *    exp can exceed 1), and rows whose plain pass could overflow:
 *    max(1, |scale|) * (max |dy| + |d|) beyond T_MAX / 2 (dy - d near
 *    2 * T_MAX although y * (dy - d) is not);
 *  - single elements of the log-softmax gradients to extended_range.h: the
 *    kernel sets exp(logy) to 0 below 2^-125 (2^-1021; a subnormal exp
 *    costs a microcode assist), which is exact enough unless, times the
 *    row's sum (VJP) or v (JVP), it reaches half the smallest subnormal
 *    (exp(-100) * 1e30 is 3.7e-14). Only rows holding a logy between the
 *    floor and what is negligible for any sum (-236, -1498: not the -inf
 *    or -1e4 of masks) look for those elements.
 */

#include "ref/extended_range.h" /* the careful element evaluations */

#if defined(KERNEL_F32)
#define GRADIENT_T_MIN FLT_MIN
#define GRADIENT_TRUE_MIN 0x1p-149
#else
#define GRADIENT_T_MIN DBL_MIN
#define GRADIENT_TRUE_MIN 0x1p-1074
#endif

/* A WIDE row constant for the careful evaluations. */
static inline xreal_pair careful_constant(WIDE value)
{
#if defined(KERNEL_F32)
    return xreal_pair_of(value, 0, 0);
#else
    return xreal_pair_of(value.hi, value.lo, 0);
#endif
}

static inline WIDE wide_of_double(double value)
{
#if defined(KERNEL_F32)
    return value;
#else
    return (dd){value, 0};
#endif
}

/* Whether the vectors can apply the scale as a T: 0 or a normal T (a
 * subnormal T would keep a few bits of it, an overflowing one none). */
static inline bool scale_fits_vectors(double scale)
{
    const double magnitude = fabs(scale);
    return scale == 0 || (magnitude >= GRADIENT_T_MIN && magnitude <= T_MAX);
}

/* The largest and smallest values of a row, lane by lane. */
typedef struct value_range {
    V max;
    V min;
} value_range;

static inline value_range range_start(void)
{
    value_range r = {P(set1)((T)-INFINITY), P(set1)((T)INFINITY)};
    return r;
}

static inline void range_add(value_range *r, V v)
{
    r->max = P(max)(r->max, v);
    r->min = P(min)(r->min, v);
}

/* max |v| (-inf for an empty range). */
static inline double range_magnitude(const value_range *r)
{
    return (double)P(reduce_max)(P(max)(r->max, P(neg)(r->min)));
}

/* Whether the plain elementwise pass, s * (a - d) with |a| <= magnitude,
 * stays finite, a - d and its product with s alike: max(1, |scale|) *
 * (magnitude + |d|) <= T_MAX / 2, in double (an f64 sum beyond DBL_MAX is
 * inf and fails). */
static inline bool plain_pass_fits(double scale, double magnitude, double constant)
{
    const double factor = fabs(scale) > 1 ? fabs(scale) : 1; /* not fmax: a libm call per row */
    return factor * (magnitude + fabs(constant)) <= T_MAX / 2;
}

/* --------------------------------------------------------- gradient rows */

/* dx = y * (s * ((dy - dot_hi) - dot_lo)). The order of the products: s * y
 * underflows for a small scale and a small y where the result need not;
 * s * (dy - d) below the normal range costs at most half a subnormal ulp
 * times |y| (times |s| where dy - d itself is that small: a rounding any
 * evaluation of dy - d in T makes). y is not checked: for a y outside
 * [-1, 1], which no softmax gives, that is all the SIMD paths lose. */
static void softmax_backward_row(const T *y, const T *dy, T *dx, size_t n, double scale)
{
    const size_t blocks = block_count(n);
    WIDE dot = wide_of(0);
    value_range dy_range = range_start();
    for (size_t b = 0; b < blocks; b++) {
        size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
        ACC acc = P(acc_zero)();
        size_t i = begin;
        for (; i + LANES <= end; i += LANES) {
            const V dyi = P(load)(dy + i);
            P(acc_add_product)(&acc, P(load)(y + i), dyi);
            range_add(&dy_range, dyi);
        }
        if (i < end) {
            const V dyi = P(load_tail)(dy + i, end - i, 0);
            P(acc_add_product)(&acc, P(load_tail)(y + i, end - i, 0), dyi);
            range_add(&dy_range, dyi);
        }
        dot = wide_add(dot, P(acc_total)(&acc));
    }
    if (isinf(scale) || !isfinite(wide_hi(dot)) || !scale_fits_vectors(scale) ||
        !plain_pass_fits(scale, range_magnitude(&dy_range), wide_hi(dot))) {
        softmax_line_run(&REF_LINES, SOFTMAX_OP_SOFTMAX_BACKWARD, y, dy, dx, n, 1, scale);
        return;
    }
    const hi_lo d = hi_lo_of(dot);
    const V dot_hi = P(set1)(d.hi), dot_lo = P(set1)(d.lo), s = P(set1)((T)scale);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        V diff = P(sub)(P(sub)(P(load)(dy + i), dot_hi), dot_lo);
        P(store)(dx + i, P(mul)(P(load)(y + i), P(mul)(s, diff)));
    }
    if (i < n) {
        V diff = P(sub)(P(sub)(P(load_tail)(dy + i, n - i, 0), dot_hi), dot_lo);
        P(store_tail)(dx + i, P(mul)(P(load_tail)(y + i, n - i, 0), P(mul)(s, diff)), n - i);
    }
}

/* exp(logy) for the log-softmax gradients: the exp kernel with c = log2(e),
 * B = 0 and a floor where 2^u is still normal; below it the result is set
 * to 0 by a mask. The gradients run without flush-to-zero, and an exp that
 * underflowed would cost a microcode assist on some cores. Where such a 0
 * matters, the element is evaluated carefully (log_gradient_row). */
#define GRADIENT_FLOOR_ARG (EXP_FLOOR_ARG == 160 ? 125 : 1021)

static exp_args plain_exp_args(void)
{
    T c_hi, c_lo;
    wide_split(wide_scale_log2e(1.0), &c_hi, &c_lo);
    exp_args a = {P(set1)(neg_arg_over_log2e(GRADIENT_FLOOR_ARG)), P(set1)(c_hi), P(set1)(c_lo), P(set1)(0)};
    return a;
}

static inline V plain_exp(V logy, const exp_args *a)
{
    return P(zero_below)(exp_eval(logy, a), logy, a->x_floor);
}

/* The lanes whose logy is in (low, floor): exp set to 0, but not
 * negligible. */
static inline unsigned lanes_between(V logy, V low, V floor)
{
    return P(lanes_below)(logy, floor) & P(lanes_below)(low, logy);
}

/* Below this logy, exp(logy) * factor is under half the smallest subnormal
 * of T for any factor up to 2^62 * T_MAX (the largest sum of a row, or n
 * times the largest v): log(2^-150) - log(2^62 FLT_MAX) = -235.7,
 * log(2^-1075) - log(2^62 DBL_MAX) = -1497.9. Masks (-inf, or -1e4) are
 * far below it. */
#define GRADIENT_NEGLIGIBLE_LOGY (EXP_FLOOR_ARG == 160 ? -236 : -1498)

/* Below this logy, exp(logy) * factor is under half the smallest subnormal
 * of T: the kernel's 0 for it is exact enough. +inf for a factor of 0. */
static inline double negligible_below(double factor)
{
    return factor == 0 ? INFINITY : log(GRADIENT_TRUE_MIN / 2) - log(factor);
}

/* The JVP's reduction is missing exp(logy) * v for the lanes in (low,
 * floor): their terms in extended range, in order. Rare: only rows with a
 * logy below the floor come here, and only those lanes cost more than a
 * comparison. */
static SOFTMAX_NOINLINE WIDE missing_exp_products(const T *logy, const T *v, size_t n, V low, V floor)
{
    WIDE sum = wide_of(0);
    for (size_t i = 0; i < n; i += LANES) {
        const size_t count = n - i < LANES ? n - i : LANES;
        const V l = count == LANES ? P(load)(logy + i) : P(load_tail)(logy + i, count, (T)-INFINITY);
        const unsigned careful = lanes_between(l, low, floor);
        if (careful == 0)
            continue;
        for (size_t k = 0; k < count; k++)
            if (careful >> k & 1u)
                sum = wide_add(sum, wide_of_double(careful_exp_product((double)logy[i + k], (double)v[i + k], 0)));
    }
    return sum;
}

/* Stores `count` lanes of the VJP's `result` at dx, the lanes in `careful`
 * evaluated again in extended range from the inputs, which are read before
 * the store (dx may be logy or dy). */
static SOFTMAX_NOINLINE void store_log_backward_carefully(V result, unsigned careful, const T *logy, const T *dy, T *dx,
                                                          size_t count, double scale, xreal_pair sum)
{
    T values[LANES];
    P(store)(values, result);
    for (size_t k = 0; k < count; k++)
        if (careful >> k & 1u)
            values[k] = (T)careful_log_softmax_backward(scale, (double)logy[k], (double)dy[k], sum);
    memcpy(dx, values, count * sizeof(T));
}

/* The elementwise pass of log_gradient_row; with check_floor, the VJP's
 * elements whose exp the kernel zeroes but whose product with the sum is
 * not negligible (logy in (low, floor)) are evaluated carefully. */
static SOFTMAX_FORCE_INLINE void log_gradient_pass(bool jvp, bool check_floor, const T *logy, const T *g, T *out,
                                                   size_t n, double scale, WIDE reduction, V low)
{
    const exp_args a = plain_exp_args();
    const hi_lo r = hi_lo_of(reduction);
    const V r_hi = P(set1)(r.hi), r_lo = P(set1)(r.lo), s = P(set1)((T)scale);
    for (size_t i = 0; i < n; i += LANES) {
        size_t count = n - i < LANES ? n - i : LANES;
        V l = count == LANES ? P(load)(logy + i) : P(load_tail)(logy + i, count, (T)-INFINITY);
        V gi = count == LANES ? P(load)(g + i) : P(load_tail)(g + i, count, 0);
        V w;
        if (jvp) {
            w = P(sub)(P(sub)(gi, r_hi), r_lo);
        } else {
            V yi = plain_exp(l, &a);
            w = P(fmadd)(P(neg)(yi), r_hi, gi);
            w = P(fmadd)(P(neg)(yi), r_lo, w);
        }
        V result = P(mul)(s, w);
        const unsigned careful = check_floor ? lanes_between(l, low, a.x_floor) : 0;
        if (careful != 0)
            store_log_backward_carefully(result, careful, logy + i, g + i, out + i, count, scale,
                                         careful_constant(reduction));
        else if (count == LANES)
            P(store)(out + i, result);
        else
            P(store_tail)(out + i, result, count);
    }
}

/* Log-softmax VJP (dx = s * (dy - exp(logy) * sum dy)) and JVP
 * (out = s * (v - sum exp(logy) * v)) share their shape: a reduction, then
 * an elementwise pass. With logy <= 0, |exp(logy)| <= 1 and the pass stays
 * within |s| * (max |g| + |reduction|). */
static void log_gradient_row(softmax_op op, const T *logy, const T *g, T *out, size_t n, double scale)
{
    const bool jvp = op == SOFTMAX_OP_LOG_SOFTMAX_JVP;
    const exp_args a = plain_exp_args();
    const size_t blocks = block_count(n);
    WIDE reduction = wide_of(0);
    /* min_logy: the smallest logy not negligible whatever the sums (0 where
     * there is none), to know whether a logy lies below the floor. */
    const V negligible = P(set1)((T)GRADIENT_NEGLIGIBLE_LOGY);
    V max_logy = P(set1)((T)-INFINITY), min_logy = P(set1)(0);
    value_range g_range = range_start();
    V nan_flag = P(set1)(0); /* the VJP's reduction does not see logy */
    for (size_t b = 0; b < blocks; b++) {
        size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
        ACC acc = P(acc_zero)();
        for (size_t i = begin; i < end; i += LANES) {
            size_t count = end - i < LANES ? end - i : LANES;
            V l = count == LANES ? P(load)(logy + i) : P(load_tail)(logy + i, count, (T)-INFINITY);
            V gi = count == LANES ? P(load)(g + i) : P(load_tail)(g + i, count, 0);
            max_logy = P(max)(l, max_logy);
            min_logy = P(min)(P(zero_below)(l, l, negligible), min_logy);
            nan_flag = P(keep_nan)(nan_flag, l);
            range_add(&g_range, gi);
            if (jvp)
                P(acc_add_product)(&acc, plain_exp(l, &a), gi);
            else
                P(acc_add)(&acc, gi);
        }
        reduction = wide_add(reduction, P(acc_total)(&acc));
    }
    const T top = P(reduce_max)(max_logy);
    if (!(top > (T)-INFINITY) || top > 0 || P(any_nan)(nan_flag) || isinf(scale) || !scale_fits_vectors(scale)) {
        softmax_line_run(&REF_LINES, op, logy, g, out, n, 1, scale);
        return;
    }
    const double g_magnitude = range_magnitude(&g_range);
    /* Exps the kernel zeroed that matter: only where a logy is below the
     * floor, and above `low` (>= GRADIENT_NEGLIGIBLE_LOGY). */
    const T floor_value = neg_arg_over_log2e(GRADIENT_FLOOR_ARG);
    const double low = !(P(reduce_min)(min_logy) < floor_value) ? INFINITY
                       : jvp                                    ? negligible_below((double)n * g_magnitude)
                                                                : negligible_below(fabs(wide_hi(reduction)));
    const bool check_floor = low < (double)floor_value;
    const V low_v = P(set1)(check_floor ? (T)low : 0);
    if (jvp && check_floor && isfinite(wide_hi(reduction)))
        reduction = wide_add(reduction, missing_exp_products(logy, g, n, low_v, a.x_floor));
    if (!isfinite(wide_hi(reduction)) || !plain_pass_fits(scale, g_magnitude, wide_hi(reduction))) {
        softmax_line_run(&REF_LINES, op, logy, g, out, n, 1, scale);
        return;
    }
    if (jvp)
        log_gradient_pass(true, false, logy, g, out, n, scale, reduction, low_v);
    else if (check_floor)
        log_gradient_pass(false, true, logy, g, out, n, scale, reduction, low_v);
    else
        log_gradient_pass(false, false, logy, g, out, n, scale, reduction, low_v);
}
