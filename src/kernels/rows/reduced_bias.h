/*
 * rows/reduced_bias.h -- softmax rows with an added f32 bias given in
 * reduced form: z = scale * x + b with log2(e) * b held as g + lo, g on the
 * grid 2^-12 and lo its small exact-enough rest, computed once per call for
 * a bias broadcast over many rows (reduce_bias) instead of once per row.
 *
 * Why: a row with an added bias computes z exactly, as a two-sum of scale *
 * x and b whose low part is carried into the exponential (access.h,
 * adding): about fourteen operations a vector more than an unmasked row,
 * which made a dense [512, 512] bias broadcast over 8 x 32 heads 1.45x the
 * unmasked call. Reduced once, the bias costs the exp pass one addition
 * and two loads: the exponent 2^(c x + g + lo - B) is reduced as the
 * unmasked one is, with g folded into the integer offset (exactly: both lie
 * on the grid 2^-12 and below 2^12) and lo beside c_lo x.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * in the f32 x86 translation units (HALF_ROWS).
 */

#if defined(HALF_ROWS)
/* The biases reduce_bias takes: |b| at most this (log2(e) * b below 2^10,
 * so that g + B and g + B - k stay exact floats on the grid 2^-12). */
#define REDUCED_BIAS_LIMIT 700.0f
#define REDUCED_BIAS_PAST_LIMIT 0x1.5e0002p+9f /* the next float */
/* Adding and subtracting it rounds a value below 2^10 to the grid 2^-12. */
#define REDUCED_GRID_MAGIC 3072.0f /* 1.5 * 2^11: its ulp is 2^-12 */

/* See softmax_kernels.reduce_bias. */
static bool reduce_bias(const float *bias, size_t count, float *g, float *lo)
{
    T log2e_hi, log2e_lo;
    wide_split(wide_scale_log2e(1.0), &log2e_hi, &log2e_lo);
    const V l_hi = P(set1)(log2e_hi), l_lo = P(set1)(log2e_lo);
    const V magic = P(set1)(REDUCED_GRID_MAGIC);
    /* The float after the limit: |b| <= limit is b strictly inside it,
     * false for NaN. */
    const V above = P(set1)(-REDUCED_BIAS_PAST_LIMIT), below = P(set1)(REDUCED_BIAS_PAST_LIMIT);
    unsigned refused = 0;
    for (size_t i = 0; i < count; i += LANES) {
        const size_t lanes = count - i < LANES ? count - i : LANES;
        const unsigned used = lanes == LANES ? ALL_LANES : (1u << lanes) - 1u;
        const V b = P(load_tail)(bias + i, lanes, 0);
        /* Kept: finite within the limit; excluded: -inf. Anything else
         * (NaN, +inf, a bias beyond the limit) refuses the whole bias. */
        const unsigned minus_inf = P(lanes_below)(b, P(set1)(-T_MAX));
        const unsigned in_range = P(lanes_below)(above, b) & P(lanes_below)(b, below);
        refused |= used & ~(minus_inf | in_range);
        const V kept = P(zero_below)(b, b, P(set1)(-T_MAX)); /* -inf (and NaN) as 0 */
        const V integer = P(round)(P(mul)(l_hi, kept));
        /* log2(e) b - integer, rounded (|t| <= 1/2), then to the grid: g
         * is exact (an integer below 2^10 plus a multiple of 2^-12) and the
         * rest, below 2^-13, is computed from the exact product. */
        const V t = P(fmadd)(l_hi, kept, P(neg)(integer));
        const V on_grid = P(add)(integer, P(sub)(P(add)(t, magic), magic));
        const V rest = P(fmadd)(l_lo, kept, P(fmadd)(l_hi, kept, P(neg)(on_grid)));
        /* b - kept is -inf where b is (0 elsewhere): g = -inf there, lo 0. */
        P(store_tail)(g + i, P(add)(on_grid, P(sub)(b, kept)), lanes);
        P(store_tail)(lo + i, rest, lanes);
    }
    return refused == 0;
}

/* B for a row whose largest c_hi x + g is row_max (|row_max| <= 1024): an
 * integer with the row's largest exponent c x + g + lo - B in [1 - 2^-10,
 * 2), its exp in [2 - 2^-9, 4) as plan_row puts it (the sums' grids count
 * on exps below 4). row_max is that exponent up to lo, c_lo x and its own
 * rounding: below 2^-13, 2^-13 and 2^-14. */
static inline T reduced_offset(T row_max)
{
    return T_FLOOR(row_max + (T)0x1p-11) - 1;
}

/* reduced_offset in lanes (the grouped rows: row r's maximum in lane r). */
static SOFTMAX_FORCE_INLINE V reduced_offsets(V row_max)
{
    return P(sub)(P(floor)(P(add)(row_max, P(set1)((T)0x1p-11))), P(set1)((T)1));
}

/* 2^(c x + g + lo - B) in parts, for c = c_hi + c_lo (the scale times
 * log2(e), of either sign) and B = -a->neg_offset an integer: g + B and
 * g + B - k are exact (see reduce_bias), so that the reduced argument f is
 * rounded twice, as an added mask's is (exp_parts_with). The cell k comes
 * from the estimate c_hi x + g - B, which leaves out c_lo x and lo (below
 * 2^-12 and 2^-13 here): f may leave [0, 1] by about 2^-11, which the
 * polynomial covers, and below 0 it wraps. *estimate gets that estimate:
 * below -EXP_FLOOR_ARG (and -inf where g is) the element's exp is 0 and
 * the parts are not meaningful. */
static SOFTMAX_FORCE_INLINE exp_parts exp_parts_reduced(V x, V g, V lo, const exp_args *a, V *estimate)
{
    const V base = P(add)(a->neg_offset, g);
    *estimate = P(fmadd)(a->c_hi, x, base);
    const V k = P(floor)(P(add)(*estimate, P(set1)(KEY_BIAS)));
    return exp_parts_at(P(add)(P(fmadd)(a->c_hi, x, P(sub)(base, k)), P(fmadd)(a->c_lo, x, lo)), k);
}

/* The exps of elements [begin, end) into y and residuals and the sum of
 * their unrounded values (exp_block_reading's summation); the data
 * prefetch_ahead elements on (the next row) is asked for meanwhile. */
static SOFTMAX_FORCE_INLINE WIDE exp_block_reduced(const T *x, const T *g, const T *lo, T *y, T *residuals,
                                                   size_t begin, size_t end, const exp_args *a, size_t prefetch_ahead)
{
    const V floor_arg = P(set1)((T)-EXP_FLOOR_ARG);
    ACC wide = P(acc_zero)();
    V hi0 = P(set1)(0), hi1 = hi0, small = hi0;
    size_t run = 0;
    size_t i = begin;
    for (; i + 2 * LANES <= end; i += 2 * LANES) {
        vec_prefetch(x + i + prefetch_ahead);
        vec_prefetch(x + i + prefetch_ahead + LANES);
        prefetch_lines(g + i + prefetch_ahead, 2 * LANES * sizeof(T));
        prefetch_lines(lo + i + prefetch_ahead, 2 * LANES * sizeof(T));
        const V g0 = P(load)(g + i), g1 = P(load)(g + i + LANES);
        V e0, e1, r0, r1;
        /* Both vectors excluded whole (the far side of a causal bias). */
        if ((minus_infinity_lanes(g0) & minus_infinity_lanes(g1)) == ALL_LANES) {
            e0 = e1 = r0 = r1 = P(set1)(0);
        } else {
            V v0, v1;
            const exp_parts p0 = exp_parts_reduced(P(load)(x + i), g0, P(load)(lo + i), a, &v0);
            const exp_parts p1 = exp_parts_reduced(P(load)(x + i + LANES), g1, P(load)(lo + i + LANES), a, &v1);
            e0 = P(zero_below)(P(scale_pow2)(p0.mantissa, p0.k), v0, floor_arg);
            e1 = P(zero_below)(P(scale_pow2)(p1.mantissa, p1.k), v1, floor_arg);
            r0 = P(zero_below)(P(scale_pow2)(p0.residual, p0.k), v0, floor_arg);
            r1 = P(zero_below)(P(scale_pow2)(p1.residual, p1.k), v1, floor_arg);
        }
        P(store)(y + i, e0);
        P(store)(y + i + LANES, e1);
        P(store)(residuals + i, r0);
        P(store)(residuals + i + LANES, r1);
        const V h0 = grid_high(e0), h1 = grid_high(e1);
        hi0 = P(add)(hi0, h0);
        hi1 = P(add)(hi1, h1);
        small = P(add)(small, P(add)(P(sub)(e0, h0), P(sub)(e1, h1)));
        small = P(add)(small, P(add)(r0, r1));
        if (++run == SPLIT_RUN) {
            P(acc_add)(&wide, hi0);
            P(acc_add)(&wide, hi1);
            P(acc_add)(&wide, small);
            hi0 = hi1 = small = P(set1)(0);
            run = 0;
        }
    }
    for (; i < end; i += LANES) {
        const size_t count = end - i < LANES ? end - i : LANES;
        V v0;
        const exp_parts p0 = exp_parts_reduced(P(load_tail)(x + i, count, 0), P(load_tail)(g + i, count, -INFINITY),
                                               P(load_tail)(lo + i, count, 0), a, &v0);
        const V e0 = P(zero_below)(P(scale_pow2)(p0.mantissa, p0.k), v0, floor_arg);
        const V r0 = P(zero_below)(P(scale_pow2)(p0.residual, p0.k), v0, floor_arg);
        P(store_tail)(y + i, e0, count);
        P(store_tail)(residuals + i, r0, count);
        P(acc_add)(&wide, e0);
        small = P(add)(small, r0);
    }
    P(acc_add)(&wide, hi0);
    P(acc_add)(&wide, hi1);
    P(acc_add)(&wide, small);
    return P(acc_total)(&wide);
}

/* See softmax_kernels.reduced_bias_row. */
static int reduced_bias_row(softmax_op op, const float *x, const float *g, const float *lo, size_t kept, size_t n,
                            double scale, float *y)
{
    if (op != SOFTMAX_OP_SOFTMAX || !in_cache_regime(n) || kept > n || kept == 0)
        return SOFTMAX_ROW_DECLINED;
    const WIDE c = wide_scale_log2e(scale);
    if (!(WIDE_FABS(c) >= (WIDE)1e-30 && WIDE_FABS(c) <= (WIDE)1e30))
        return SOFTMAX_ROW_DECLINED;
    T c_hi, c_lo;
    wide_split(c, &c_hi, &c_lo);
    T *residuals = softmax_workspace(n * sizeof(T));
    if (residuals == NULL)
        return SOFTMAX_ROW_DECLINED;
    const size_t used = kept;
    const unsigned int saved = vec_flush_to_zero_begin();
    /* The maximum of c_hi x + g (the exponent up to lo and c_lo x), and
     * whether every x is finite: x * 0 + ... is NaN from the first NaN or
     * infinite x on. Rows with one take the general path, which has the
     * contract's rules for them; so do rows whose maximum is not moderate
     * (g + B must stay below 2^11) and fully excluded ones. */
    const V c_hi_v = P(set1)(c_hi), zero = P(set1)(0);
    V m0 = P(set1)(-INFINITY), m1 = m0, finite0 = zero, finite1 = zero;
    size_t i = 0;
    for (; i + 2 * LANES <= used; i += 2 * LANES) {
        const V x0 = P(load)(x + i), x1 = P(load)(x + i + LANES);
        m0 = P(max)(P(fmadd)(c_hi_v, x0, P(load)(g + i)), m0);
        m1 = P(max)(P(fmadd)(c_hi_v, x1, P(load)(g + i + LANES)), m1);
        finite0 = P(fmadd)(x0, zero, finite0);
        finite1 = P(fmadd)(x1, zero, finite1);
    }
    for (; i < used; i += LANES) {
        const size_t count = used - i < LANES ? used - i : LANES;
        const V x0 = P(load_tail)(x + i, count, 0);
        m0 = P(max)(P(fmadd)(c_hi_v, x0, P(load_tail)(g + i, count, -INFINITY)), m0);
        finite0 = P(fmadd)(x0, zero, finite0);
    }
    const T row_max = P(reduce_max)(P(max)(m0, m1));
    if (P(finite_lanes)(P(add)(finite0, finite1)) != ALL_LANES || !(T_FABS(row_max) <= (T)1024)) {
        vec_flush_to_zero_end(saved);
        return SOFTMAX_ROW_DECLINED;
    }
    const T offset = reduced_offset(row_max);
    const exp_args a = {P(set1)(0), c_hi_v, P(set1)(c_lo), P(set1)(-offset)};
    WIDE sum = 0;
    for (size_t begin = 0; begin < used; begin += SUM_BLOCK) {
        const size_t end = begin + SUM_BLOCK < used ? begin + SUM_BLOCK : used;
        sum += exp_block_reduced(x, g, lo, y, residuals, begin, end, &a, n);
    }
    normalize(y, residuals, 0, used, reciprocal_of(sum));
    fill_row(y, used, n, 0);
    vec_flush_to_zero_end(saved);
    return SOFTMAX_ROW_DONE;
}
#define REDUCE_BIAS_FN reduce_bias
#define REDUCED_BIAS_ROW_FN reduced_bias_row
#endif
