/*
 * rows/across_threads.h -- one long row computed by several threads, bit for bit the
 * single-thread result.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ------------------------------------------------ one row, many threads */

/* The same phases as forward_row over the same blocks, each phase shared
 * by the team; the per-block results are combined in block order by one
 * thread, so the bits equal the single-thread ones. */
static void long_row(softmax_op op, const void *src, const void *grad, void *dst, size_t n, double scale, int threads)
{
    const T *x = src;
    T *y = dst;
    const size_t blocks = block_count(n);
    const bool forward = op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool streaming = n * sizeof(T) > STREAM_BYTES;
    block_summary *summaries = forward ? malloc(blocks * sizeof *summaries) : NULL;
    T *block_maxima = forward ? malloc(blocks * sizeof *block_maxima) : NULL;
    /* The calling thread's workspace, shared by the team for this call. */
    T *residuals = op == SOFTMAX_OP_SOFTMAX && !streaming ? softmax_workspace(n * sizeof *residuals)
                   : streaming                            ? stream_exps(op, n)
                                                          : NULL;
    if (summaries == NULL || block_maxima == NULL || (op == SOFTMAX_OP_SOFTMAX && !streaming && residuals == NULL) ||
        threads < 2) {
        free(summaries);
        free(block_maxima);
        contiguous_rows(op, src, grad, dst, 1, n, scale);
        return;
    }
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    bool planned = false;
    row_plan plan;
    WIDE sum = wide_of(0);
#pragma omp parallel num_threads(threads)
    {
        const unsigned int saved_csr = vec_flush_to_zero_begin(); /* per thread */
        /* Phase 1: block maxima (in-cache) or block summaries (streaming). */
#pragma omp for schedule(static)
        for (size_t b = 0; b < blocks; b++) {
            if (streaming) {
                size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
                summaries[b] = summarize_block(x, residuals, residuals ? residuals + n : NULL, begin, end, scale);
            } else {
                block_maxima[b] = row_max_over(x, n, b, b + 1, scale);
            }
        }
#pragma omp single
        {
            if (streaming) {
                planned = combine_summaries(summaries, blocks, scale, &plan, &sum);
            } else {
                T row_max = block_maxima[0];
                for (size_t b = 1; b < blocks; b++)
                    if (scale < 0 ? block_maxima[b] < row_max : block_maxima[b] > row_max)
                        row_max = block_maxima[b];
                planned = plan_row(scale, row_max, &plan);
            }
        }
        /* Phase 2 (in-cache): exps stored, one sum per block. */
        if (planned && !streaming) {
            exp_args a = broadcast_plan(&plan);
#pragma omp for schedule(static)
            for (size_t b = 0; b < blocks; b++)
                summaries[b].sum = exp_blocks(x, log_output ? NULL : y, residuals, b, b + 1, n, &a, plan.negate, 0);
#pragma omp single
            {
                for (size_t b = 0; b < blocks; b++)
                    sum = wide_add(sum, summaries[b].sum);
            }
        }
        /* Phase 3: the writing pass. */
        if (planned && !wide_is_nan(sum)) {
            exp_args a = broadcast_plan(&plan);
            const reciprocal r = reciprocal_of(sum);
            const T log_sum = (T)log_sum_of(sum, &plan);
#pragma omp for schedule(static)
            for (size_t b = 0; b < blocks; b++) {
                size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
                if (log_output)
                    log_softmax_output(x, y, begin, end, plan.row_max, (T)scale, log_sum);
                else if (streaming && residuals != NULL)
                    rescale(residuals + begin, residuals + n + begin, y + begin, end - begin,
                            summaries[b].offset - plan.offset, r, true);
                else if (streaming)
                    exp_normalize_stream(x, y, begin, end, &a, plan.negate, r, true);
                else
                    normalize(y, residuals, begin, end, r);
            }
        }
        vec_flush_to_zero_end(saved_csr);
    }
    free(summaries);
    free(block_maxima);
    if (!planned)
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
    else if (wide_is_nan(sum))
        fill_row(y, 0, n, (T)NAN);
}
