/*
 * gradients/rows.h -- the backward ops and the log-softmax JVP on contiguous rows.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* --------------------------------------------------------- gradient rows */

/* dx = s * y * ((dy - dot_hi) - dot_lo) */
static void softmax_backward_row(const T *y, const T *dy, T *dx, size_t n, double scale)
{
    const size_t blocks = block_count(n);
    WIDE dot = wide_of(0);
    for (size_t b = 0; b < blocks; b++) {
        size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
        ACC acc = P(acc_zero)();
        size_t i = begin;
        for (; i + LANES <= end; i += LANES)
            P(acc_add_product)(&acc, P(load)(y + i), P(load)(dy + i));
        if (i < end)
            P(acc_add_product)(&acc, P(load_tail)(y + i, end - i, 0), P(load_tail)(dy + i, end - i, 0));
        dot = wide_add(dot, P(acc_total)(&acc));
    }
    if (isinf(scale) || wide_is_nan(dot)) {
        softmax_line_run(&REF_LINES, SOFTMAX_OP_SOFTMAX_BACKWARD, y, dy, dx, n, 1, scale);
        return;
    }
    const hi_lo d = hi_lo_of(dot);
    const V dot_hi = P(set1)(d.hi), dot_lo = P(set1)(d.lo), s = P(set1)((T)scale);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        V yi = P(load)(y + i);
        V diff = P(sub)(P(sub)(P(load)(dy + i), dot_hi), dot_lo);
        P(store)(dx + i, P(mul)(P(mul)(s, yi), diff));
    }
    if (i < n) {
        V yi = P(load_tail)(y + i, n - i, 0);
        V diff = P(sub)(P(sub)(P(load_tail)(dy + i, n - i, 0), dot_hi), dot_lo);
        P(store_tail)(dx + i, P(mul)(P(mul)(s, yi), diff), n - i);
    }
}

/* exp(logy) for the log-softmax gradients: the exp kernel with c = log2(e),
 * B = 0 and a floor where 2^u is still normal; below it the result is set
 * to 0 by a mask. The gradients run without flush-to-zero, and an exp that
 * underflowed would cost a microcode assist on some cores. */
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

/* Log-softmax VJP (dx = s * (dy - exp(logy) * sum dy)) and JVP
 * (out = s * (v - sum exp(logy) * v)) share their shape: a reduction, then
 * an elementwise pass. */
static void log_gradient_row(softmax_op op, const T *logy, const T *g, T *out, size_t n, double scale)
{
    const bool jvp = op == SOFTMAX_OP_LOG_SOFTMAX_JVP;
    const exp_args a = plain_exp_args();
    const size_t blocks = block_count(n);
    WIDE reduction = wide_of(0);
    V max_logy = P(set1)((T)-INFINITY);
    V nan_flag = P(set1)(0); /* the VJP's reduction does not see logy */
    for (size_t b = 0; b < blocks; b++) {
        size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
        ACC acc = P(acc_zero)();
        for (size_t i = begin; i < end; i += LANES) {
            size_t count = end - i < LANES ? end - i : LANES;
            V l = count == LANES ? P(load)(logy + i) : P(load_tail)(logy + i, count, (T)-INFINITY);
            V gi = count == LANES ? P(load)(g + i) : P(load_tail)(g + i, count, 0);
            max_logy = P(max)(l, max_logy);
            nan_flag = P(keep_nan)(nan_flag, l);
            if (jvp)
                P(acc_add_product)(&acc, plain_exp(l, &a), gi);
            else
                P(acc_add)(&acc, gi);
        }
        reduction = wide_add(reduction, P(acc_total)(&acc));
    }
    const T top = P(reduce_max)(max_logy);
    if (!(top > (T)-INFINITY) || isinf(scale) || wide_is_nan(reduction) || P(any_nan)(nan_flag)) {
        softmax_line_run(&REF_LINES, op, logy, g, out, n, 1, scale);
        return;
    }
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
        if (count == LANES)
            P(store)(out + i, result);
        else
            P(store_tail)(out + i, result, count);
    }
}
