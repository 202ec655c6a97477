/*
 * rows/switch.h -- the regime switch: which kernel serves a block of contiguous rows
 * of length n (see src/kernels/README.md for the map).
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

static void rows_body(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n, double scale)
{
    if ((op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX) && n <= LANES) {
        tiny_rows(op, src, dst, rows, n, scale);
        return;
    }
    const T *x = src;
    const T *g = grad;
    T *y = dst;
    const shared_plan shared = shared_plan_of(scale);
    /* Softmax rows of the in-cache regime park the exps' residuals here. */
    T *residuals = NULL;
    if (op == SOFTMAX_OP_SOFTMAX && n > SMALL_VECTORS * LANES && n * sizeof(T) <= STREAM_BYTES) {
        residuals = softmax_workspace(n * sizeof(T));
        if (residuals == NULL) {
            for (size_t r = 0; r < rows; r++)
                softmax_line_run(&REF_LINES, op, x + r * n, NULL, y + r * n, n, 1, scale);
            return;
        }
    }
    if ((op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX) && n <= SMALL_VECTORS * LANES) {
        small_forward_rows(op, x, y, rows, n, scale, &shared);
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        size_t offset = r * n;
        switch (op) {
        case SOFTMAX_OP_SOFTMAX:
        case SOFTMAX_OP_LOG_SOFTMAX:
            forward_row(op, x + offset, y + offset, residuals, n, scale, &shared);
            break;
        case SOFTMAX_OP_SOFTMAX_BACKWARD:
            softmax_backward_row(x + offset, g + offset, y + offset, n, scale);
            break;
        case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
        case SOFTMAX_OP_LOG_SOFTMAX_JVP:
            log_gradient_row(op, x + offset, g + offset, y + offset, n, scale);
            break;
        }
    }
}

/* Forward kernels run with flush-to-zero (see vec_flush_to_zero_begin);
 * the gradients keep the caller's floating-point environment. */
static void contiguous_rows(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                            double scale)
{
    if (op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) {
        rows_body(op, src, grad, dst, rows, n, scale);
        return;
    }
    const unsigned int saved = vec_flush_to_zero_begin();
    rows_body(op, src, grad, dst, rows, n, scale);
    vec_flush_to_zero_end(saved);
}

#if SOFTMAX_HAS_FAST_EXP
/* The forward ops under SOFTMAX_FLAG_FAST, contiguous rows; every row is
 * the same function of that row alone, as in rows(). */
static void fast_rows(softmax_op op, const void *src, void *dst, size_t rows, size_t n, double scale)
{
    const T *x = src;
    T *y = dst;
    const unsigned int saved = vec_flush_to_zero_begin();
    if (n <= LANES) {
        tiny_rows_with(fast_tiny_group, fast_tiny_row, op, x, y, rows, n, scale);
    } else {
        /* Only the longer rows read the scale's shared constants: planning
         * them was ~8% of a 1x10 call that never used them. */
        const shared_plan shared = shared_plan_of(scale);
        if (n <= SMALL_VECTORS * LANES && shared.valid) {
            fast_small_rows(op, x, y, rows, n, scale, &shared);
        } else {
            for (size_t r = 0; r < rows; r++)
                fast_row(op, x + r * n, y + r * n, n, scale);
        }
    }
    vec_flush_to_zero_end(saved);
}
#define FAST_ROWS_FN fast_rows
#endif
