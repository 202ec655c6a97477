/*
 * rows/streamed.h -- the streaming regime: rows larger than the cache, summarised
 * block by block, then rescaled.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ------------------------------------------------------ streaming regime */

/* Per block: its own plan (from its own max) and the sum of its exps. The
 * block is read from memory once and from L1 once. With y and residuals
 * (not NULL), the block's exps are stored there, relative to the block's
 * own offset (see rescale). */
typedef struct block_summary {
    T row_max;
    bool usable; /* false: a special value or an unsupported offset */
    T offset;
    WIDE sum;
} block_summary;

/* x of T or, with SOURCE_BF16 / SOURCE_F16 in io_flags, half-precision bits
 * widened as they are read. */
static SOFTMAX_FORCE_INLINE block_summary summarize_block_reading(const void *x, int io_flags, T *y, T *residuals,
                                                                  size_t begin, size_t end, double scale)
{
    block_summary s = {0, false, 0, wide_of(0)};
    const void *block = source_at(x, io_flags, begin);
    s.row_max = row_max_reading(block, end - begin, scale, NULL, io_flags);
    if (s.row_max == (scale < 0 ? (T)INFINITY : (T)-INFINITY)) {
        /* Every element masked (or NaN, which the scan skips): the block
         * contributes nothing, or NaN. */
        V nan_flag = P(set1)(0);
        for (size_t i = begin; i < end; i += LANES) {
            size_t count = end - i < LANES ? end - i : LANES;
            nan_flag = P(keep_nan)(nan_flag, read_tail(x, NULL, io_flags, i, count, 0));
        }
        s.usable = true;
        s.sum = wide_of(P(any_nan)(nan_flag) ? (T)NAN : 0);
        s.offset = 0;
        if (y != NULL) {
            fill_row(y, begin, end, (T)0);
            fill_row(residuals, begin, end, (T)0);
        }
        return s;
    }
    row_plan plan;
    if (!plan_row(scale, s.row_max, &plan))
        return s;
    exp_args a = broadcast_plan(&plan);
    s.usable = true;
    s.offset = plan.offset;
    s.sum = exp_block_excluding(x, y, residuals, begin, end, &a, plan.negate, SUM_BLOCK, NULL, io_flags);
    return s;
}

static block_summary summarize_block(const T *x, T *y, T *residuals, size_t begin, size_t end, double scale)
{
    return summarize_block_reading(x, 0, y, residuals, begin, end, scale);
}

/* Combines block summaries in block order: the row's maximum and sum,
 * the sum rescaled to the row's offset by exact powers of two. */
static bool combine_summaries(const block_summary *blocks, size_t count, double scale, row_plan *plan, WIDE *sum)
{
    T row_max = scale < 0 ? (T)INFINITY : (T)-INFINITY;
    for (size_t b = 0; b < count; b++) {
        if (!blocks[b].usable)
            return false;
        if (scale < 0 ? blocks[b].row_max < row_max : blocks[b].row_max > row_max)
            row_max = blocks[b].row_max;
    }
    if (!plan_row(scale, row_max, plan))
        return false;
    WIDE total = wide_of(0);
    for (size_t b = 0; b < count; b++)
        if (wide_hi(blocks[b].sum) != 0 || wide_is_nan(blocks[b].sum))
            total = wide_add(total, wide_ldexp(blocks[b].sum, (int)(blocks[b].offset - plan->offset)));
    *sum = total;
    return true;
}

/* The writing pass over a block whose exps summarize_block stored
 * relative to the block's offset (e, residual): out = (e + residual) * r *
 * 2^shift, shift = block offset - row offset (<= 0), the power of two
 * applied last, so that the result is rounded once (gradually where it
 * underflows). A block whose outputs all lie far below the normal range
 * gets zeros, as the flushed exps of the row's offset would give. With
 * `stream`, out (which may be e) is written with streaming stores. */
static inline V rescaled(V e, V residual, V hi, V lo, V k)
{
    return P(scale_pow2)(P(fmadd)(e, hi, P(fmadd)(residual, hi, P(mul)(e, lo))), k);
}

/* out of T, or half-precision (DEST_BF16 / DEST_F16 in io_flags). */
static SOFTMAX_FORCE_INLINE void rescale_into(void *out, int io_flags, const T *e, const T *residuals, size_t count,
                                              T shift, reciprocal r, bool stream)
{
    const T exponent = shift - (T)NORMALIZE_SHIFT; /* exact: integers */
    if (exponent < -200) {
        fill_out(out, io_flags, 0, count, (T)0);
        return;
    }
    const V hi = P(set1)(r.hi), lo = P(set1)(r.lo), k = P(set1)(exponent);
    size_t i = 0;
    /* Streaming stores need aligned addresses: a short head first. */
    while (stream && i < count && !stream_aligned(out, io_flags, i)) {
        write_tail(out, io_flags, i, rescaled(P(load_tail)(e + i, 1, 0), P(load_tail)(residuals + i, 1, 0), hi, lo, k),
                   1);
        i++;
    }
    for (; i + LANES <= count; i += LANES) {
        const V value = rescaled(P(load)(e + i), P(load)(residuals + i), hi, lo, k);
        write_as(out, io_flags, i, value, stream);
    }
    if (i < count)
        write_tail(out, io_flags, i,
                   rescaled(P(load_tail)(e + i, count - i, 0), P(load_tail)(residuals + i, count - i, 0), hi, lo, k),
                   count - i);
    if (stream)
        P(stream_fence)();
}

static void rescale(const T *e, const T *residuals, T *out, size_t count, T shift, reciprocal r, bool stream)
{
    rescale_into(out, 0, e, residuals, count, shift, r, stream);
}

/* The writing pass that computes the exps again: y = e * r, rounded once
 * from the exponential's parts. x and y as in summarize_block_reading and
 * rescale_into. With `stream`, y is written with streaming stores. */
static SOFTMAX_FORCE_INLINE void exp_normalize_into(const void *x, void *y, int io_flags, size_t begin, size_t end,
                                                    const exp_args *a, bool negate, reciprocal r, bool stream)
{
    const V hi = P(set1)(r.hi), lo = P(set1)(r.lo);
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    size_t i = begin;
    /* Streaming stores need aligned addresses: a short head first. */
    while (stream && i < end && !stream_aligned(y, io_flags, i)) {
        V x0 = read_tail(x, NULL, io_flags, i, 1, fill);
        if (negate)
            x0 = P(neg)(x0);
        write_tail(y, io_flags, i, apply_reciprocal_parts(exp_parts_of(x0, a), hi, lo), 1);
        i++;
    }
    for (; i + LANES <= end; i += LANES) {
        V x0 = read_vector(x, NULL, io_flags, i);
        if (negate)
            x0 = P(neg)(x0);
        const V value = apply_reciprocal_parts(exp_parts_of(x0, a), hi, lo);
        write_as(y, io_flags, i, value, stream);
    }
    if (i < end) {
        V x0 = read_tail(x, NULL, io_flags, i, end - i, fill);
        if (negate)
            x0 = P(neg)(x0);
        write_tail(y, io_flags, i, apply_reciprocal_parts(exp_parts_of(x0, a), hi, lo), end - i);
    }
    if (stream)
        P(stream_fence)();
}

static void exp_normalize_stream(const T *x, T *y, size_t begin, size_t end, const exp_args *a, bool negate,
                                 reciprocal r, bool stream)
{
    exp_normalize_into(x, y, 0, begin, end, a, negate, r, stream);
}
