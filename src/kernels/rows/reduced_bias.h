/*
 * rows/reduced_bias.h -- softmax rows with an added f32 bias given in
 * reduced form: z = scale * x + b with log2(e) * b held as g + lo, g on the
 * grid 2^-12 and lo its small exact-enough rest, computed once per call for
 * a bias broadcast over many rows (reduce_bias, read by reduced_bias_row)
 * or, for a bias read by few rows, as each row reads it (reducing_bias_row:
 * four operations a vector).
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

/* log2(e) b in reduced form, lane by lane: g = log2(e) b rounded to the
 * grid 2^-12 in one rounding (fma(l_hi, b, 1.5 * 2^11) lies in [2^11,
 * 2^12), where the floats are that grid, for |b| <= REDUCED_BIAS_LIMIT) and
 * *lo = log2(e) b - g from the exact product (|lo| <= 2^-13, within 2^-36).
 * A -inf b gives g = -inf and a NaN *lo, which the exps never read (their
 * estimate is -inf: exp_parts_reduced). Returned as g - B for an integer
 * B (-B in neg_offset), the exponent's offset part: -g = magic - fma(l_hi,
 * b, magic) is exact as g is, and serves both lo and the offset. */
static SOFTMAX_FORCE_INLINE V reduce_offset_in_lanes(V b, V l_hi, V l_lo, V neg_offset, V *lo)
{
    const V magic = P(set1)(REDUCED_GRID_MAGIC);
    const V minus_g = P(sub)(magic, P(fmadd)(l_hi, b, magic));
    *lo = P(fmadd)(l_lo, b, P(fmadd)(l_hi, b, minus_g));
    return P(sub)(neg_offset, minus_g);
}

/* g itself (B = 0). */
static SOFTMAX_FORCE_INLINE V reduce_in_lanes(V b, V l_hi, V l_lo, V *lo)
{
    return reduce_offset_in_lanes(b, l_hi, l_lo, P(set1)(0), lo);
}

/* The lanes of b a reduced form cannot take: NaN, +inf and finite values
 * beyond +-REDUCED_BIAS_LIMIT (-inf, an excluded element, is taken). */
static SOFTMAX_FORCE_INLINE unsigned refused_bias_lanes(V b)
{
    /* The float after the limit: |b| <= limit is b strictly inside it,
     * false for NaN. */
    const V above = P(set1)(-REDUCED_BIAS_PAST_LIMIT), below = P(set1)(REDUCED_BIAS_PAST_LIMIT);
    const unsigned in_range = P(lanes_below)(above, b) & P(lanes_below)(b, below);
    return ~(minus_infinity_lanes(b) | in_range) & ALL_LANES;
}

/* log2(e) as the float l_hi and its rest l_lo. */
static inline void log2e_parts(V *l_hi, V *l_lo)
{
    T hi, lo;
    wide_split(wide_scale_log2e(1.0), &hi, &lo);
    *l_hi = P(set1)(hi);
    *l_lo = P(set1)(lo);
}

/* See softmax_kernels.reduce_bias. */
static bool reduce_bias(const float *bias, size_t count, float *g, float *lo)
{
    V l_hi, l_lo;
    log2e_parts(&l_hi, &l_lo);
    unsigned refused = 0;
    for (size_t i = 0; i < count; i += LANES) {
        const size_t lanes = count - i < LANES ? count - i : LANES;
        const V b = P(load_tail)(bias + i, lanes, -INFINITY);
        refused |= refused_bias_lanes(b);
        V rest;
        const V on_grid = reduce_in_lanes(b, l_hi, l_lo, &rest);
        P(store_tail)(g + i, on_grid, lanes);
        /* lo = 0 where b is -inf (the arithmetic's NaN is never read, but
         * the arrays say what they hold). */
        P(store_tail)(lo + i, P(zero_below)(rest, b, P(set1)(-T_MAX)), lanes);
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

/* 2^(c x + g + lo - B) in parts, from base = g - B, for c = c_hi + c_lo
 * (the scale times log2(e), of either sign) and B = -a->neg_offset an
 * integer: g + B and g + B - k are exact (see reduce_bias), so that the
 * reduced argument f is rounded twice, as an added mask's is
 * (exp_parts_with). The cell k comes
 * from the estimate c_hi x + g - B, which leaves out c_lo x and lo (below
 * 2^-12 and 2^-13 here): f may leave [0, 1] by about 2^-11, which the
 * polynomial covers, and below 0 it wraps. *estimate gets that estimate:
 * below -EXP_FLOOR_ARG (and -inf where g is) the element's exp is 0 and
 * the parts are not meaningful. */
static SOFTMAX_FORCE_INLINE exp_parts exp_parts_offset(V x, V base, V lo, const exp_args *a, V *estimate)
{
    *estimate = P(fmadd)(a->c_hi, x, base);
    const V k = P(floor)(P(add)(*estimate, P(set1)(KEY_BIAS)));
    return exp_parts_at(P(add)(P(fmadd)(a->c_hi, x, P(sub)(base, k)), P(fmadd)(a->c_lo, x, lo)), k);
}

/* exp_parts_offset from g: base = g - B. */
static SOFTMAX_FORCE_INLINE exp_parts exp_parts_reduced(V x, V g, V lo, const exp_args *a, V *estimate)
{
    return exp_parts_offset(x, P(add)(a->neg_offset, g), lo, a, estimate);
}

/* Where a row's reduced bias comes from: the arrays reduce_bias wrote
 * (g, lo), or the bias itself (bias, reduced as it is read: a bias read by
 * too few rows to be worth a pass of its own). */
typedef struct reduced_source {
    const T *g;
    const T *lo;
    const T *bias;
    V l_hi; /* log2(e) in two parts, for the bias */
    V l_lo;
} reduced_source;

/* The offset part g - B of the vector at i (count lanes; the rest
 * excluded), its *lo, and *excluded, its -inf lanes. from_bias is a
 * constant of each body. */
static SOFTMAX_FORCE_INLINE V reduced_base_at(const reduced_source *s, bool from_bias, size_t i, size_t count,
                                              V neg_offset, V *lo, unsigned *excluded)
{
    if (from_bias) {
        const V b = count == LANES ? P(load)(s->bias + i) : P(load_tail)(s->bias + i, count, -INFINITY);
        *excluded = minus_infinity_lanes(b);
        return reduce_offset_in_lanes(b, s->l_hi, s->l_lo, neg_offset, lo);
    }
    *lo = count == LANES ? P(load)(s->lo + i) : P(load_tail)(s->lo + i, count, 0);
    const V g = count == LANES ? P(load)(s->g + i) : P(load_tail)(s->g + i, count, -INFINITY);
    *excluded = minus_infinity_lanes(g);
    return P(add)(neg_offset, g);
}

/* An exp or its residual: 0 where the estimate is below the floor (where
 * g is -inf the parts are not meaningful). */
static SOFTMAX_FORCE_INLINE V reduced_exp(V parts, V k, V estimate)
{
    return P(zero_below)(P(scale_pow2)(parts, k), estimate, P(set1)((T)-EXP_FLOOR_ARG));
}

/* The exps of elements [begin, end) into y and residuals and the sum of
 * their unrounded values (exp_block_reading's summation); the data
 * prefetch_ahead elements on (the next row) is asked for meanwhile. */
static SOFTMAX_FORCE_INLINE WIDE exp_block_reduced(const T *x, const reduced_source *s, bool from_bias,
                                                   bool may_exclude, T *y, T *residuals, size_t begin, size_t end,
                                                   const exp_args *a, size_t prefetch_ahead)
{
    ACC wide = P(acc_zero)();
    V hi0 = P(set1)(0), hi1 = hi0, small = hi0;
    size_t run = 0;
    size_t i = begin;
    for (; i + 2 * LANES <= end; i += 2 * LANES) {
        vec_prefetch(x + i + prefetch_ahead);
        vec_prefetch(x + i + prefetch_ahead + LANES);
        if (from_bias) {
            prefetch_lines(s->bias + i + prefetch_ahead, 2 * LANES * sizeof(T));
        } else {
            prefetch_lines(s->g + i + prefetch_ahead, 2 * LANES * sizeof(T));
            prefetch_lines(s->lo + i + prefetch_ahead, 2 * LANES * sizeof(T));
        }
        V lo0, lo1;
        unsigned excluded0, excluded1;
        const V base0 = reduced_base_at(s, from_bias, i, LANES, a->neg_offset, &lo0, &excluded0);
        const V base1 = reduced_base_at(s, from_bias, i + LANES, LANES, a->neg_offset, &lo1, &excluded1);
        V e0, e1, r0, r1;
        /* Both vectors excluded whole (the far side of a causal bias). A
         * row without -inf (may_exclude false, a constant) skips the
         * test. */
        if (may_exclude && (excluded0 & excluded1) == ALL_LANES) {
            e0 = e1 = r0 = r1 = P(set1)(0);
        } else {
            V v0, v1;
            const exp_parts p0 = exp_parts_offset(P(load)(x + i), base0, lo0, a, &v0);
            const exp_parts p1 = exp_parts_offset(P(load)(x + i + LANES), base1, lo1, a, &v1);
            e0 = reduced_exp(p0.mantissa, p0.k, v0);
            e1 = reduced_exp(p1.mantissa, p1.k, v1);
            r0 = reduced_exp(p0.residual, p0.k, v0);
            r1 = reduced_exp(p1.residual, p1.k, v1);
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
        V v0, lo0;
        unsigned excluded0;
        const V base0 = reduced_base_at(s, from_bias, i, count, a->neg_offset, &lo0, &excluded0);
        const exp_parts p0 = exp_parts_offset(P(load_tail)(x + i, count, 0), base0, lo0, a, &v0);
        const V e0 = reduced_exp(p0.mantissa, p0.k, v0);
        const V r0 = reduced_exp(p0.residual, p0.k, v0);
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

/* The max pass's view of the exponent's bias part at i: g, or for a bias
 * read as it is, the product l_hi b (closer to log2(e) b than g, and one
 * operation). */
static SOFTMAX_FORCE_INLINE V reduced_estimate_at(const reduced_source *s, bool from_bias, size_t i, size_t count)
{
    if (!from_bias)
        return count == LANES ? P(load)(s->g + i) : P(load_tail)(s->g + i, count, -INFINITY);
    const V b = count == LANES ? P(load)(s->bias + i) : P(load_tail)(s->bias + i, count, -INFINITY);
    return P(mul)(s->l_hi, b);
}

/* The largest |c_hi x| of a row whose bias is reduced as it is read: the
 * reduced form is exact for any finite b (g on the grid 2^-12 at least, g
 * - B exact) for the elements whose exp is not 0, provided their c x stays
 * within this (g - B then stays below 2^10 where the exp is not 0; beyond
 * +-700 the arrays' bound on b gave that instead). */
#define REDUCING_X_LIMIT 512.0f

/* The elements [0, kept) less the vectors at their end whose bias is -inf
 * (g is where b is): the far side of a causal bias, excluded whatever x
 * holds (the contract), so that neither pass reads x there and the row's
 * tail is only filled with 0 -- a [4096, 4096] causal bias read half of x
 * for nothing, a quarter of its memory traffic. Read backwards, one vector
 * of the bias each until a kept element. */
static SOFTMAX_FORCE_INLINE size_t kept_before_excluded_tail(const T *entries, size_t kept)
{
    size_t end = kept;
    while (end > 0) {
        const size_t start = (end - 1) / LANES * LANES;
        const V v =
            end - start == LANES ? P(load)(entries + start) : P(load_tail)(entries + start, end - start, -INFINITY);
        if (minus_infinity_lanes(v) != ALL_LANES)
            break;
        end = start;
    }
    return end;
}

/* reduced_bias_row and reducing_bias_row, from_bias a constant of each. */
static SOFTMAX_FORCE_INLINE int reduced_row_body(softmax_op op, const float *x, const reduced_source *s, bool from_bias,
                                                 size_t kept, size_t n, double scale, float *y)
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
    const T *entries = from_bias ? s->bias : s->g; /* -inf where the bias excludes */
    const size_t used = kept_before_excluded_tail(entries, kept);
    if (used == 0)
        return SOFTMAX_ROW_DECLINED; /* fully excluded: the general path's zeros */
    const unsigned int saved = vec_flush_to_zero_begin();
    /* The maximum of c_hi x + g (the exponent up to lo and c_lo x), and
     * whether every x is finite: x * 0 + ... is NaN from the first NaN or
     * infinite x on. For a bias read as it is, the sum of the exponents
     * c_hi x + l_hi b is NaN from the first NaN x or b on (-inf ones,
     * excluded elements, keep it -inf; a +inf one makes the maximum
     * infinite; finite ones stay far from overflow below a maximum of
     * 1024), and an infinite x is beyond the x limit. Rows with one take the
     * general path, which has the contract's rules for them; so do rows
     * whose maximum is not moderate (g + B must stay below 2^11; a +inf b
     * is such a maximum), fully excluded ones and, for a bias read as it
     * is, rows with an x beyond REDUCING_X_LIMIT. */
    const V c_hi_v = P(set1)(c_hi), zero = P(set1)(0);
    V m0 = P(set1)(-INFINITY), m1 = m0, finite0 = zero, finite1 = zero;
    V x_top = zero, x_bottom = zero;
    size_t i = 0;
    for (; i + 2 * LANES <= used; i += 2 * LANES) {
        const V x0 = P(load)(x + i), x1 = P(load)(x + i + LANES);
        const V v0 = P(fmadd)(c_hi_v, x0, reduced_estimate_at(s, from_bias, i, LANES));
        const V v1 = P(fmadd)(c_hi_v, x1, reduced_estimate_at(s, from_bias, i + LANES, LANES));
        m0 = P(max)(v0, m0);
        m1 = P(max)(v1, m1);
        if (from_bias) {
            finite0 = P(add)(finite0, v0);
            finite1 = P(add)(finite1, v1);
            range_of(x0, &x_top, &x_bottom);
            range_of(x1, &x_top, &x_bottom);
        } else {
            finite0 = P(fmadd)(x0, zero, finite0);
            finite1 = P(fmadd)(x1, zero, finite1);
        }
    }
    for (; i < used; i += LANES) {
        const size_t count = used - i < LANES ? used - i : LANES;
        const V x0 = P(load_tail)(x + i, count, 0);
        const V v0 = P(fmadd)(c_hi_v, x0, reduced_estimate_at(s, from_bias, i, count));
        m0 = P(max)(v0, m0);
        if (from_bias) {
            finite0 = P(add)(finite0, v0);
            range_of(x0, &x_top, &x_bottom);
        } else {
            finite0 = P(fmadd)(x0, zero, finite0);
        }
    }
    const T row_max = P(reduce_max)(P(max)(m0, m1));
    const V finite = P(add)(finite0, finite1);
    const T x_reach = T_FABS(c_hi) * range_reach(x_top, x_bottom);
    const bool special =
        from_bias ? P(any_nan)(finite) || !(x_reach <= (T)REDUCING_X_LIMIT) : P(finite_lanes)(finite) != ALL_LANES;
    if (special || !(T_FABS(row_max) <= (T)1024)) {
        vec_flush_to_zero_end(saved);
        return SOFTMAX_ROW_DECLINED;
    }
    const T offset = reduced_offset(row_max);
    const exp_args a = {P(set1)(0), c_hi_v, P(set1)(c_lo), P(set1)(-offset)};
    /* A bias read as it is: a row without -inf in it has a finite sum of
     * exponents (a bias beyond -1e38 can make it -inf: the test is then
     * only kept). reduce_bias's arrays say nothing of theirs. */
    const bool may_exclude = !from_bias || P(finite_lanes)(finite) != ALL_LANES;
    WIDE sum = 0;
    for (size_t begin = 0; begin < used; begin += SUM_BLOCK) {
        const size_t end = begin + SUM_BLOCK < used ? begin + SUM_BLOCK : used;
        sum += may_exclude ? exp_block_reduced(x, s, from_bias, true, y, residuals, begin, end, &a, n)
                           : exp_block_reduced(x, s, from_bias, false, y, residuals, begin, end, &a, n);
    }
    /* The rest of the next row's bias (the exp pass asked for its [0,
     * used)), which kept_before_excluded_tail reads first and backwards,
     * where the hardware's prefetcher does not follow. */
    if (used < n)
        prefetch_lines(entries + n + used, (n - used) * sizeof(T));
    normalize(y, residuals, 0, used, reciprocal_of(sum));
    fill_row(y, used, n, 0);
    vec_flush_to_zero_end(saved);
    return SOFTMAX_ROW_DONE;
}

/* See softmax_kernels.reduced_bias_row. */
static SOFTMAX_NOINLINE int reduced_bias_row(softmax_op op, const float *x, const float *g, const float *lo,
                                             size_t kept, size_t n, double scale, float *y)
{
    const reduced_source s = {.g = g, .lo = lo};
    return reduced_row_body(op, x, &s, false, kept, n, scale, y);
}

/* excluding_row for softmax with an f32 bias added (ADD_MASK alone, or
 * with a causal prefix): the bias reduced as it is read (reduce_in_lanes:
 * four operations a vector, where the exact two-sum of z = scale * x + b
 * costs about fourteen in the exp pass), the same values as from
 * reduce_bias's arrays. SOFTMAX_ROW_DECLINED, having written nothing, as
 * reduced_bias_row, and for a row with a bias entry NaN, +inf or beyond
 * +-700. */
static SOFTMAX_NOINLINE int reducing_bias_row(softmax_op op, const float *x, const float *bias, size_t kept, size_t n,
                                              double scale, float *y)
{
    reduced_source s = {.bias = bias};
    log2e_parts(&s.l_hi, &s.l_lo);
    return reduced_row_body(op, x, &s, true, kept, n, scale, y);
}
#define REDUCE_BIAS_FN reduce_bias
#define REDUCED_BIAS_ROW_FN reduced_bias_row
#endif
