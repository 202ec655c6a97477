/*
 * rows/fast_cached.h -- one fast-mode row of more than SMALL_VECTORS vectors, and the
 * half-precision lines read in place by it.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

#if SOFTMAX_HAS_FAST_EXP
/* Vectors per partial sum in T before it goes to the wide accumulator: 4
 * accumulators of FAST_RUN terms per lane keep the sum's relative error
 * below FAST_RUN * 2^-24 whatever the row length. */
#define FAST_RUN 16

/* One row of the fast mode, three passes from the cache: the row
 * maximum, the exps (stored in e, for softmax) and their sum, then the
 * scaling into y (softmax: by 1/sum rounded once; log-softmax: as the
 * accurate kernels). x and y of T, or of half-precision bits read and
 * written in place (SOURCE_ / DEST_ io_flags, as the accurate passes do; e
 * may be y when y is of T). False, having written nothing, when the row
 * needs the reference kernels (half-precision x only: a T row runs them
 * here). */
static SOFTMAX_FORCE_INLINE bool fast_row_reading(softmax_op op, const void *x, int io_flags, T *e, void *y, size_t n,
                                                  double scale)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    row_plan plan;
    const T row_max = row_max_reading(x, n, scale, NULL, io_flags);
    if (!plan_row(scale, row_max, &plan)) {
        if (io_flags & (SOURCE_BF16 | SOURCE_F16))
            return false;
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
        return true;
    }
    const exp_args a = broadcast_plan(&plan);
    const bool negate = plan.negate;
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    ACC wide = P(acc_zero)();
    V s0 = P(set1)(0), s1 = s0, s2 = s0, s3 = s0;
    size_t run = 0, i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        V x0 = read_vector(x, NULL, io_flags, i), x1 = read_vector(x, NULL, io_flags, i + LANES),
          x2 = read_vector(x, NULL, io_flags, i + 2 * LANES), x3 = read_vector(x, NULL, io_flags, i + 3 * LANES);
        if (negate) {
            x0 = P(neg)(x0);
            x1 = P(neg)(x1);
            x2 = P(neg)(x2);
            x3 = P(neg)(x3);
        }
        const V e0 = fast_exp(x0, &a), e1 = fast_exp(x1, &a), e2 = fast_exp(x2, &a), e3 = fast_exp(x3, &a);
        if (!log_output) {
            P(store)(e + i, e0);
            P(store)(e + i + LANES, e1);
            P(store)(e + i + 2 * LANES, e2);
            P(store)(e + i + 3 * LANES, e3);
        }
        s0 = P(add)(s0, e0);
        s1 = P(add)(s1, e1);
        s2 = P(add)(s2, e2);
        s3 = P(add)(s3, e3);
        if (++run == FAST_RUN) {
            P(acc_add)(&wide, P(add)(P(add)(s0, s1), P(add)(s2, s3)));
            s0 = s1 = s2 = s3 = P(set1)(0);
            run = 0;
        }
    }
    for (; i < n; i += LANES) {
        const size_t count = n - i < LANES ? n - i : LANES;
        /* The fill becomes -inf once negated or not: its exp is 0. */
        V x0 = read_tail(x, NULL, io_flags, i, count, fill);
        if (negate)
            x0 = P(neg)(x0);
        const V e0 = fast_exp(x0, &a);
        if (!log_output)
            P(store_tail)(e + i, e0, count);
        s0 = P(add)(s0, e0);
    }
    P(acc_add)(&wide, P(add)(P(add)(s0, s1), P(add)(s2, s3)));
    const WIDE sum = (WIDE)P(acc_total)(&wide);
    if (isnan(sum)) {
        fill_out(y, io_flags, 0, n, (T)NAN);
        return true;
    }
    if (log_output) {
        log_softmax_output_reading(x, y, 0, n, plan.row_max, (T)scale, (T)log_sum_of(sum, &plan), NULL, io_flags);
        return true;
    }
    const V r = P(set1)((T)((WIDE)1 / sum));
    /* A half-precision y is streamed, as in normalize_into. */
    const bool stream = (io_flags & DEST_HALF) != 0;
    for (i = 0; stream && i < n && !stream_aligned(y, io_flags, i); i++)
        write_tail(y, io_flags, i, P(mul)(P(load_tail)(e + i, 1, 0), r), 1);
    for (; i + LANES <= n; i += LANES) {
        write_as(y, io_flags, i, P(mul)(P(load)(e + i), r), stream);
    }
    if (stream)
        P(stream_fence)();
    if (i < n)
        write_tail(y, io_flags, i, P(mul)(P(load_tail)(e + i, n - i, 0), r), n - i);
    return true;
}

static void fast_row(softmax_op op, const T *x, T *y, size_t n, double scale)
{
    fast_row_reading(op, x, 0, y, y, n, scale);
}

#if defined(HALF_ROWS)
/* See softmax_kernels.fast_half_line. */
static bool fast_half_line(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n, double scale)
{
    SOFTMAX_ASSERT(dst_half == 0 || dst_half == (bf16 ? 1 : 2));
    if (n <= SMALL_VECTORS * LANES)
        return false;
    T *e = dst_half ? softmax_workspace(n * sizeof(T)) : dst;
    if (e == NULL)
        return false;
    const unsigned int saved = vec_flush_to_zero_begin();
    bool done;
    switch (half_line_io_flags(bf16, dst_half)) {
    case SOURCE_BF16:
        done = fast_row_reading(op, x, SOURCE_BF16, e, dst, n, scale);
        break;
    case SOURCE_BF16 | DEST_BF16:
        done = fast_row_reading(op, x, SOURCE_BF16 | DEST_BF16, e, dst, n, scale);
        break;
    case SOURCE_F16:
        done = fast_row_reading(op, x, SOURCE_F16, e, dst, n, scale);
        break;
    default:
        done = fast_row_reading(op, x, SOURCE_F16 | DEST_F16, e, dst, n, scale);
        break;
    }
    vec_flush_to_zero_end(saved);
    return done;
}
#define FAST_HALF_LINE_FN fast_half_line
#endif
#undef FAST_RUN
#endif
