/*
 * rows/exp_blocks.h -- exps of one block and their sum, the reciprocal of the sum and
 * the normalisation: the steps every forward regime is made of.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ----------------------------------------------------- exp blocks and sums */

/* Writes 2^(c x_i - B) rounded for i in [begin, end) to y and its residual
 * (scaled alike) to residuals, unless they are NULL, and returns the sum of
 * the unrounded values. One block at most. With prefetch_ahead > 0, the
 * data that many elements ahead (the next block, or the next row) is fetched
 * from memory while this block is computed from the cache, so that the max
 * pass that reads it next finds it there. */
/* e rounded to the grid 2^-16 (exact for 0 <= e < 64): the high part of the
 * split summation of exps. */
static inline V grid_high(V e)
{
    const V magic = P(set1)((T)SPLIT_MAGIC);
    return P(sub)(P(add)(e, magic), magic);
}

/* The cache lines of `bytes` bytes from p, one request each. */
static SOFTMAX_FORCE_INLINE void prefetch_lines(const void *p, size_t bytes)
{
    for (size_t at = 0; at < bytes; at += 64)
        vec_prefetch((const char *)p + at);
}

/* The masks' elements i to i + 2 LANES: those of the next row where a
 * [T, T] mask lies as x does (a row of n after this one), asked for while
 * this row's exps are computed, as x's are; the max pass of the next row
 * waited on them (a `where` row of 4096 f32 spent a sixth of its time on
 * the first load of its keep bytes). Elsewhere a wasted fetch, never a
 * fault. One request per cache line: on AVX2, a second request for the
 * line an f32 mask's two vectors share made masked rows of 128 f32 1.3x
 * slower. */
static SOFTMAX_FORCE_INLINE void prefetch_masks(const row_masks *ex, int io_flags, size_t i)
{
#if defined(HALF_ROWS)
    if ((io_flags & EXCLUDE_KEEP) && ex->keep != NULL)
        vec_prefetch(ex->keep + i);
    if ((io_flags & EXCLUDE_MASK) && ex->mask != NULL)
        prefetch_lines(ex->mask + i, 2 * LANES * sizeof(T));
    if ((io_flags & EXCLUDE_HALF) && ex->half_mask != NULL)
        vec_prefetch(ex->half_mask + i);
    if ((io_flags & ADD_MASK) && ex->add_mask != NULL)
        prefetch_lines(ex->add_mask + i, 2 * LANES * sizeof(T));
    if ((io_flags & ADD_HALF) && ex->add_half != NULL)
        vec_prefetch(ex->add_half + i);
#else
    (void)ex, (void)io_flags, (void)i;
#endif
}

/* Bit l set where lane l of v is -inf. */
static SOFTMAX_FORCE_INLINE unsigned minus_infinity_lanes(V v)
{
    return P(lanes_below)(v, P(set1)(-T_MAX));
}

#define ALL_LANES ((1u << LANES) - 1u)

/* exp_block_excluding reading the row as io_flags say, the prefetches
 * (prefetch_ahead > 0) asking for the row at ahead_x read as ahead_flags
 * and ahead_ex say: x itself, or for a staged row (STAGED) the source it
 * was staged from. */
static SOFTMAX_FORCE_INLINE WIDE exp_block_reading(const void *x, T *y, T *residuals, size_t begin, size_t end,
                                                   const exp_args *a, bool negate, size_t prefetch_ahead,
                                                   const row_masks *ex, int io_flags, const void *ahead_x,
                                                   const row_masks *ahead_ex, int ahead_flags)
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
            vec_prefetch(source_at(ahead_x, ahead_flags, i + prefetch_ahead));
            vec_prefetch(source_at(ahead_x, ahead_flags, i + prefetch_ahead + LANES));
            if (ahead_ex != NULL)
                prefetch_masks(ahead_ex, ahead_flags, i + prefetch_ahead);
        }
        V low0, low1;
        V x0 = read_pair(x, ex, io_flags, i, &low0), x1 = read_pair(x, ex, io_flags, i + LANES, &low1);
        if (negate) {
            x0 = P(neg)(x0);
            x1 = P(neg)(x1);
        }
        /* Where a mask excludes both vectors whole (the far side of a
         * causal or padding mask: half of an attention row), their exps
         * are 0 and their residuals too: the same values, and the same
         * sums, without computing them. Kept NaN never get here (the max
         * pass saw them). */
        V e0, e1, r0, r1;
        if ((io_flags & (EXCLUDING | ADDING | STAGED)) &&
            (minus_infinity_lanes(x0) & minus_infinity_lanes(x1)) == ALL_LANES) {
            e0 = e1 = r0 = r1 = P(set1)(0);
        } else {
            /* An added mask's low parts go into the exps' arguments. */
            exp_parts p0 = (io_flags & ADDING) ? exp_parts_added(x0, low0, a) : exp_parts_of(x0, a);
            exp_parts p1 = (io_flags & ADDING) ? exp_parts_added(x1, low1, a) : exp_parts_of(x1, a);
            e0 = P(scale_pow2)(p0.mantissa, p0.k), e1 = P(scale_pow2)(p1.mantissa, p1.k);
            r0 = P(scale_pow2)(p0.residual, p0.k), r1 = P(scale_pow2)(p1.residual, p1.k);
        }
        if (y) {
            P(store)(y + i, e0);
            P(store)(y + i + LANES, e1);
        }
        if (residuals) {
            P(store)(residuals + i, r0);
            P(store)(residuals + i + LANES, r1);
        }
        V h0 = grid_high(e0), h1 = grid_high(e1);
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
        V x0 = read_tail_pair(x, ex, io_flags, i, count, negate ? (T)INFINITY : (T)-INFINITY, &low0);
        if (negate)
            x0 = P(neg)(x0);
        exp_parts p0 = (io_flags & ADDING) ? exp_parts_added(x0, low0, a) : exp_parts_of(x0, a);
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
    return P(acc_total)(&wide);
}

static SOFTMAX_FORCE_INLINE WIDE exp_block_excluding(const void *x, T *y, T *residuals, size_t begin, size_t end,
                                                     const exp_args *a, bool negate, size_t prefetch_ahead,
                                                     const row_masks *ex, int io_flags)
{
    return exp_block_reading(x, y, residuals, begin, end, a, negate, prefetch_ahead, ex, io_flags, x, ex, io_flags);
}

static inline WIDE exp_block_any(const T *x, T *y, T *residuals, size_t begin, size_t end, const exp_args *a,
                                 bool negate, size_t prefetch_ahead)
{
    return exp_block_excluding(x, y, residuals, begin, end, a, negate, prefetch_ahead, NULL, 0);
}

static WIDE exp_blocks(const T *x, T *y, T *residuals, size_t block_begin, size_t block_end, size_t n,
                       const exp_args *a, bool negate, size_t prefetch_ahead)
{
    WIDE total = wide_of(0);
    for (size_t b = block_begin; b < block_end; b++) {
        size_t begin = b * SUM_BLOCK;
        size_t end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
        total = wide_add(total, exp_block_any(x, y, residuals, begin, end, a, negate, prefetch_ahead));
    }
    return total;
}

/* The two halves of 1/sum in T: y = e * hi + e * lo loses half an ulp once. */
typedef hi_lo reciprocal;

/* 2^-NORMALIZE_SHIFT and 2^NORMALIZE_SHIFT, exactly (constants: no libm
 * call in the per-row path). */
#define UNSCALE ((T)NORMALIZE_UNSCALE)

static reciprocal reciprocal_of(WIDE sum)
{
    reciprocal result;
    wide_scaled_reciprocal_split(sum, &result.hi, &result.lo);
    return result;
}

/* (e + residual) * r, rounded once, from the scaled halves of r. */
static inline V apply_reciprocal(V e, V residual, V hi, V lo)
{
    return P(mul)(P(fmadd)(e, hi, P(fmadd)(residual, hi, P(mul)(e, lo))), P(set1)(UNSCALE));
}

/* The same from the exponential's parts: the scaling by 2^k comes last, so
 * no intermediate is ever tiny. */
static inline V apply_reciprocal_parts(exp_parts e, V hi, V lo)
{
    V product = P(fmadd)(e.mantissa, hi, P(fmadd)(e.residual, hi, P(mul)(e.mantissa, lo)));
    return P(scale_pow2)(product, P(sub)(e.k, P(set1)((T)NORMALIZE_SHIFT)));
}

/* out = (e + residual) * r for the exps e and their residuals; out may be e
 * (io_flags without DEST_HALF). */
static SOFTMAX_FORCE_INLINE void normalize_into(void *out, int io_flags, const T *e, const T *residuals, size_t begin,
                                                size_t end, reciprocal r)
{
    const V hi = P(set1)(r.hi), lo = P(set1)(r.lo);
    size_t i = begin;
    /* A half-precision out is a separate array that nothing here reads
     * again: streaming stores spare each of its cache lines the read for
     * ownership that an ordinary store waits for (bf16 1024x4096, single
     * thread: 0.50 -> 0.45 ns/element; the same in log_softmax_output_reading
     * measured slower, so it stores plainly). */
    const bool stream = (io_flags & DEST_HALF) != 0;
    for (; stream && i < end && !stream_aligned(out, io_flags, i); i++)
        write_tail(out, io_flags, i,
                   apply_reciprocal(P(load_tail)(e + i, 1, 0), P(load_tail)(residuals + i, 1, 0), hi, lo), 1);
    for (; i + LANES <= end; i += LANES) {
        const V value = apply_reciprocal(P(load)(e + i), P(load)(residuals + i), hi, lo);
        write_as(out, io_flags, i, value, stream);
    }
    if (stream)
        P(stream_fence)();
    if (i < end)
        write_tail(out, io_flags, i,
                   apply_reciprocal(P(load_tail)(e + i, end - i, 0), P(load_tail)(residuals + i, end - i, 0), hi, lo),
                   end - i);
}

static void normalize(T *y, const T *residuals, size_t begin, size_t end, reciprocal r)
{
    normalize_into(y, 0, y, residuals, begin, end, r);
}

static void fill_row(T *y, size_t begin, size_t end, T value)
{
    fill_out(y, 0, begin, end, value);
}
