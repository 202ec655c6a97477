/*
 * rows/causal_prefix.h -- rows of which only a prefix is kept (a causal mask).
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* Rows of which only a prefix is kept (a causal mask): row r is the op on
 * its first kept[r] elements, then 0 (log-softmax: -inf; gradients: 0) to
 * n. One call for many rows, so that the rows share the call's set-up. Bit
 * for bit rows(op, row, 1, kept[r]) followed by the fill. */
static void prefix_rows(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                        const size_t *kept, double scale)
{
    const bool forward = op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX;
    const T *x = src;
    const T *g = grad;
    T *y = dst;
    const T fill = op == SOFTMAX_OP_LOG_SOFTMAX ? (T)-INFINITY : (T)0;
    const shared_plan shared = shared_plan_of(scale);
    /* rows() parks the exps' residuals of an in-cache softmax row in the
     * workspace: room for the longest prefix that can need it. */
    T *residuals = NULL;
    if (op == SOFTMAX_OP_SOFTMAX && n > SMALL_VECTORS * LANES) {
        const size_t longest = n * sizeof(T) <= STREAM_BYTES ? n : STREAM_BYTES / sizeof(T);
        residuals = softmax_workspace(longest * sizeof(T));
    }
    const unsigned int saved = forward ? vec_flush_to_zero_begin() : 0;
    prefix_groups groups;
    groups.count[0] = groups.count[1] = groups.longest[0] = groups.longest[1] = 0;
    for (size_t r = 0; r < rows; r++) {
        SOFTMAX_ASSERT(kept[r] <= n);
        const size_t offset = r * n, length = kept[r];
        /* The kernels ask for the data one row length ahead, which here is
         * the unread rest of this row: the kept prefix of a row ahead is
         * asked for here instead (a causal row's reads then hit the cache,
         * as an unmasked row's do). */
        if (r + ROW_AHEAD < rows) {
            prefetch_span(x + offset + ROW_AHEAD * n, kept[r + ROW_AHEAD]);
            if (!forward)
                prefetch_span(g + offset + ROW_AHEAD * n, kept[r + ROW_AHEAD]);
        }
        if (length == 0) {
        } else if (!forward) {
            rows_body(op, x + offset, g + offset, y + offset, 1, length, scale);
        } else if (length <= SMALL_VECTORS * LANES) {
            /* The rows of the tiny and small-row kernels, as rows() serves
             * them: filled by their group. */
            prefix_groups_add(&groups, op, x + offset, y + offset, length, n, scale, &shared);
            continue;
        } else if (op == SOFTMAX_OP_SOFTMAX && length * sizeof(T) <= STREAM_BYTES) {
            /* In-cache softmax: rows() with its workspace, or, when none
             * could be had, the portable line, as rows() then does. */
            if (residuals != NULL)
                blocks_forward_row(op, x + offset, y + offset, residuals, length, scale);
            else
                softmax_line_run(&REF_LINES, op, x + offset, NULL, y + offset, length, 1, scale);
        } else {
            blocks_forward_row(op, x + offset, y + offset, NULL, length, scale);
        }
        fill_row(y + offset, length, n, fill);
    }
    prefix_groups_flush(&groups, 0, op, n, scale, &shared);
    prefix_groups_flush(&groups, 1, op, n, scale, &shared);
    if (forward)
        vec_flush_to_zero_end(saved);
}
