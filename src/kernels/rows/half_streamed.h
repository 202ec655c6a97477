/*
 * rows/half_streamed.h -- long half-precision rows in and out, streamed through the f32
 * kernels of the streaming regime.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

#if defined(HALF_ROWS)
/* One long forward row of bf16 / f16 data computed in f32 (the streaming
 * regime): pass 1 summarizes each block, reading the half-precision values
 * as they come, and (softmax rows up to STORED_STREAM_BYTES of f32) keeps
 * its exps in the thread's workspace; pass 2 writes the outputs (rescaling
 * those exps, or from x read again), narrowed as they are stored: bit for
 * bit forward_row on the widened row, narrowed. False (nothing written)
 * when the row needs the general path: special values or an allocation
 * failure. */
static SOFTMAX_FORCE_INLINE bool half_row_body(softmax_op op, const uint16_t *x, uint16_t *y, size_t n, double scale,
                                               int io_flags)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const size_t blocks = block_count(n);
    block_summary *summaries = malloc(blocks * sizeof *summaries);
    /* The exps are kept where forward_row keeps them (stream_exps), for
     * the same bits. */
    const bool keep = !log_output && n * sizeof(T) <= STORED_STREAM_BYTES;
    T *exps = keep ? softmax_workspace(2 * n * sizeof(T)) : NULL;
    if (summaries == NULL || (keep && exps == NULL)) {
        free(summaries);
        return false;
    }
    T *residuals = keep ? exps + n : NULL;
    const unsigned int saved = vec_flush_to_zero_begin();
    for (size_t b = 0; b < blocks; b++) {
        const size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
        summaries[b] = summarize_block_reading(x, io_flags, exps, residuals, begin, end, scale);
    }
    row_plan plan;
    WIDE sum = 0;
    const bool planned = combine_summaries(summaries, blocks, scale, &plan, &sum);
    if (!planned || isnan(sum)) {
        free(summaries);
        vec_flush_to_zero_end(saved);
        return false;
    }
    const exp_args a = broadcast_plan(&plan);
    const reciprocal r = reciprocal_of(sum);
    if (log_output)
        log_softmax_output_reading(x, y, 0, n, plan.row_max, (T)scale, (T)log_sum_of(sum, &plan), NULL, io_flags);
    else if (keep)
        for (size_t b = 0; b < blocks; b++) {
            const size_t begin = b * SUM_BLOCK, length = begin + SUM_BLOCK < n ? SUM_BLOCK : n - begin;
            rescale_into(y + begin, io_flags, exps + begin, residuals + begin, length,
                         summaries[b].offset - plan.offset, r, true);
        }
    else
        exp_normalize_into(x, y, io_flags, 0, n, &a, plan.negate, r, true);
    free(summaries);
    vec_flush_to_zero_end(saved);
    return true;
}

static bool half_row(softmax_op op, const uint16_t *x, uint16_t *y, size_t n, double scale, int bf16)
{
    return bf16 ? half_row_body(op, x, y, n, scale, SOURCE_BF16 | DEST_BF16)
                : half_row_body(op, x, y, n, scale, SOURCE_F16 | DEST_F16);
}
#define HALF_ROW_FN half_row
#endif
