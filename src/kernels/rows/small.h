/*
 * rows/small.h -- rows of one to SMALL_VECTORS vectors, grouped; the fast mode's
 * small rows beside them.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ------------------------------------------------------------ small rows */

/* Rows of LANES < n <= SMALL_VECTORS * LANES elements, LANES rows at a
 * time. Alone, such a row is one long chain of dependent steps (reduce the
 * maximum, the offset, the exps, reduce the sum, the reciprocal) whose
 * horizontal reductions and scalar steps cost about as much as its exps,
 * and that the core cannot overlap with the next row's. In a group, the
 * exps are computed along the rows as usual, but the per-row reductions
 * are vertical: the rows' lanewise maxima and partial sums are transposed
 * (lane r = row r) and reduced over whole vectors, and the per-row
 * constants are computed in lanes, as tiny_group_body does.
 *
 * The sums are split as in the tiny rows, with the high parts on the grid
 * 2^-15: at most SMALL_VECTORS exps below 4 per lane, so a row's high
 * total stays below 512 = 2^24 grid steps and adds up exactly in T in any
 * order. Lane r of every vector operation depends on row r alone, so a row
 * gets the same bits in any group and alone (count 1), on any thread. */
#define SMALL_MAGIC 384.0

static inline V grid_high_small(V e)
{
    const V magic = P(set1)((T)SMALL_MAGIC);
    return P(sub)(P(add)(e, magic), magic);
}

/* The rows of the group as group_flags say (access.h): plain rows x + r *
 * stride of n elements, or rows read through g. A row of `length` elements
 * takes ceil(length / LANES) vectors, the last one its tail. */
static SOFTMAX_FORCE_INLINE void small_group_reading(bool fast, softmax_op op, const T *x, T *y, size_t stride,
                                                     const row_group *g, int flags, size_t count, size_t n,
                                                     double scale, const shared_plan *shared)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = shared->negate;
    /* The tail's fill becomes -inf once negated or not: it is skipped by
     * the maximum, and its exp is 0. */
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    if (!shared->valid) {
        for (size_t r = 0; r < count; r++)
            group_row_aside(op, x, y, stride, g, flags, r, n, scale, false);
        return;
    }
#if TINY_VECTORS > 1
    /* Rows of up to TINY_VECTORS vectors are tiny (thresholds.h): here, so
     * that every caller of the small rows -- rows(), a row alone, causal
     * prefixes -- gives them the same bits. */
    if (n <= TINY_VECTORS * LANES) {
        tiny_group_vectors(fast, TINY_VECTORS, op, x, y, stride, g, flags, count, n, scale, shared);
        return;
    }
#endif
    /* Phase 1: each row's lanewise maximum, then the rows' maxima in lanes
     * (padding rows: 0, computed on and never stored). The running maximum
     * goes second so that a NaN element is skipped: its row is caught by
     * its NaN sum. */
    V lanes[LANES];
    for (size_t r = 0; r < LANES; r++) {
        if (r >= count) {
            lanes[r] = P(set1)((T)0);
            continue;
        }
        const T *row = group_x(x, stride, g, flags, r);
        const size_t length = group_length(n, g, flags, r);
        const size_t vectors = (length + LANES - 1) / LANES, tail = length - (vectors - 1) * LANES;
        V m = P(set1)((T)-INFINITY);
        for (size_t i = 0; i + 1 < vectors; i++) {
            const V v = group_read(row, g, flags, r, i * LANES, LANES, fill);
            m = P(max)(negate ? P(neg)(v) : v, m);
        }
        const V v = group_read(row, g, flags, r, (vectors - 1) * LANES, tail, fill);
        lanes[r] = P(max)(negate ? P(neg)(v) : v, m);
    }
    V row_max, offset;
    T block_maxima[LANES], offsets[LANES], floors[LANES];
    const unsigned planned = group_constants(lanes, shared->c_hi, shared->c_lo, shared->inverse_c, &row_max, &offset,
                                             block_maxima, offsets, floors);
    /* Rows the SIMD path does not take (a non-finite maximum, an offset out
     * of range) are written now, from their own input: no exp of the group
     * has been stored yet (in place). */
    for (size_t r = 0; r < count; r++)
        if (!((planned >> r) & 1u))
            group_row_aside(op, x, y, stride, g, flags, r, n, scale, false);

    /* Phase 2: the exps along each row (stored in y, their residuals here)
     * and the row's split partial sums per lane. */
    T residuals[LANES * SMALL_VECTORS * LANES];
    V highs[LANES], lows[LANES];
    for (size_t r = 0; r < LANES; r++) {
        highs[r] = lows[r] = P(set1)((T)0);
        if (r >= count || !((planned >> r) & 1u))
            continue;
        const T *row = group_x(x, stride, g, flags, r);
        T *out_row = group_y(y, stride, g, flags, r);
        const size_t length = group_length(n, g, flags, r);
        const size_t vectors = (length + LANES - 1) / LANES, tail = length - (vectors - 1) * LANES;
        T *residual_row = residuals + r * SMALL_VECTORS * LANES;
        const exp_args a = {P(set1)(floors[r]), P(set1)(shared->c_hi), P(set1)(shared->c_lo), P(set1)(-offsets[r])};
        V hi = P(set1)((T)0), lo = hi;
        for (size_t i = 0; i < vectors; i++) {
            const bool full = i + 1 < vectors || tail == LANES;
            /* The next group comes in while this one is computed from L1. */
            vec_prefetch(row + LANES * stride + i * LANES);
            V v = group_read(row, g, flags, r, i * LANES, full ? LANES : tail, fill);
            if (negate)
                v = P(neg)(v);
            /* A vector a mask excludes whole: exps and residuals 0, the
             * sums unchanged (as in exp_block_excluding). */
            if ((flags & EXCLUDING) && minus_infinity_lanes(v) == ALL_LANES) {
                if (!log_output) {
                    if (full)
                        P(store)(out_row + i * LANES, P(set1)((T)0));
                    else
                        P(store_tail)(out_row + i * LANES, P(set1)((T)0), tail);
                    if (!fast)
                        P(store)(residual_row + i * LANES, P(set1)((T)0));
                }
                continue;
            }
            V e, residual;
            tiny_exp(fast, v, &a, &e, &residual);
            if (!log_output) {
                if (full)
                    P(store)(out_row + i * LANES, e);
                else
                    P(store_tail)(out_row + i * LANES, e, tail);
                if (!fast)
                    P(store)(residual_row + i * LANES, residual);
            }
            const V h = grid_high_small(e);
            hi = P(add)(hi, h);
            lo = P(add)(lo, P(add)(P(sub)(e, h), residual));
        }
        highs[r] = hi;
        lows[r] = lo;
    }
    /* The rows' sums in lanes: the high parts exactly, the low parts in the
     * fixed tree of P(butterfly_sum). */
    V high, low;
    const unsigned number = group_sums(highs, lows, &high, &low);

    /* Phase 3: the per-row constants in lanes (lanes of rows off the SIMD
     * path compute garbage, unused), then the outputs. */
    V first, second;
    if (log_output) {
        first = P(set1)((T)scale);
        second = tiny_neg_log_sums(high, low, row_max, offset, shared);
    } else {
        P(reciprocal_halves)(high, low, NORMALIZE_SCALE, &first, &second);
    }
    T firsts[LANES], seconds[LANES];
    P(store)(firsts, first);
    P(store)(seconds, second);
    for (size_t r = 0; r < count; r++) {
        if (!((planned >> r) & 1u))
            continue;
        T *out_row = group_y(y, stride, g, flags, r);
        if (!((number >> r) & 1u)) {
            group_row_aside(op, x, y, stride, g, flags, r, n, scale, true);
            continue;
        }
        const T *row = group_x(x, stride, g, flags, r);
        const size_t length = group_length(n, g, flags, r);
        const size_t vectors = (length + LANES - 1) / LANES, tail = length - (vectors - 1) * LANES;
        const T *residual_row = residuals + r * SMALL_VECTORS * LANES;
        const V row_first = P(set1)(firsts[r]), row_second = P(set1)(seconds[r]);
        const V maxima = P(set1)(block_maxima[r]);
        for (size_t i = 0; i < vectors; i++) {
            const bool full = i + 1 < vectors || tail == LANES;
            V out;
            if (log_output) {
                V v = group_read(row, g, flags, r, i * LANES, full ? LANES : tail, 0);
                const V shifted = P(sub)(negate ? P(neg)(v) : v, maxima);
                out = P(fmadd)(row_first, negate ? P(neg)(shifted) : shifted, row_second);
            } else {
                const V e = full ? P(load)(out_row + i * LANES) : P(load_tail)(out_row + i * LANES, tail, 0);
                const V residual = fast ? P(set1)((T)0) : P(load)(residual_row + i * LANES);
                out = apply_reciprocal(e, residual, row_first, row_second);
            }
            if (full)
                P(store)(out_row + i * LANES, out);
            else
                P(store_tail)(out_row + i * LANES, out, tail);
        }
        if (flags & GROUP_LENGTHS)
            fill_row(out_row, length, stride, log_output ? (T)-INFINITY : (T)0);
    }
}

static SOFTMAX_FORCE_INLINE void small_group_body(bool fast, softmax_op op, const T *x, T *y, size_t count, size_t n,
                                                  double scale, const shared_plan *shared)
{
    small_group_reading(fast, op, x, y, n, NULL, 0, count, n, scale, shared);
}

static void small_group(softmax_op op, const T *x, T *y, size_t count, size_t n, double scale,
                        const shared_plan *shared)
{
    small_group_body(false, op, x, y, count, n, scale, shared);
}

static void small_forward_row(softmax_op op, const T *x, T *y, size_t n, double scale, const shared_plan *shared)
{
    small_group(op, x, y, 1, n, scale, shared);
}

typedef void (*small_group_fn)(softmax_op, const T *, T *, size_t, size_t, double, const shared_plan *);

/* `rows` consecutive rows of n elements, LANES at a time. */
static void small_rows_with(small_group_fn group, softmax_op op, const T *x, T *y, size_t rows, size_t n, double scale,
                            const shared_plan *shared)
{
    for (size_t r = 0; r < rows; r += LANES)
        group(op, x + r * n, y + r * n, rows - r < LANES ? rows - r : LANES, n, scale, shared);
}

static void small_forward_rows(softmax_op op, const T *x, T *y, size_t rows, size_t n, double scale,
                               const shared_plan *shared)
{
    small_rows_with(small_group, op, x, y, rows, n, scale, shared);
}

#if SOFTMAX_HAS_FAST_EXP
/* Fast-mode rows of LANES < n <= SMALL_VECTORS * LANES elements, in
 * registers from load to store, FAST_SMALL_GROUP rows at a time. The fast
 * exponential is cheap enough that storing the exps and reading them back,
 * as small_group_body does, costs more than the horizontal reductions it
 * saves; what remains of a row's chain of dependent steps is hidden by
 * running two rows' phases side by side. Each row gets the arithmetic it
 * gets alone (count 1), so its bits do not depend on the grouping. */
#define FAST_SMALL_AHEAD 8

static SOFTMAX_FORCE_INLINE void fast_small_body(size_t count, size_t vectors, softmax_op op, const T *x, T *y,
                                                 size_t n, double scale, const shared_plan *shared)
{
    const bool negate = shared->negate;
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const T fill = negate ? (T)INFINITY : (T)-INFINITY;
    V v[FAST_SMALL_GROUP][SMALL_VECTORS];
    T maxima[FAST_SMALL_GROUP], maxima_seen[FAST_SMALL_GROUP], offset[FAST_SMALL_GROUP];
    bool planned = true;
    for (size_t r = 0; r < count; r++) {
        V row_max = P(set1)(fill);
        for (size_t i = 0; i < vectors; i++) {
            const size_t lanes = n - i * LANES < LANES ? n - i * LANES : LANES;
            const T *at = x + r * n + i * LANES;
            /* Rows a few groups ahead come in while these are computed. */
            vec_prefetch(at + FAST_SMALL_AHEAD * n);
            v[r][i] = lanes == LANES ? P(load)(at) : P(load_tail)(at, lanes, fill);
            row_max = negate ? P(min)(v[r][i], row_max) : P(max)(v[r][i], row_max);
        }
        maxima[r] = negate ? P(reduce_min)(row_max) : P(reduce_max)(row_max);
    }
    for (size_t r = 0; r < count; r++) {
        maxima_seen[r] = negate ? -maxima[r] : maxima[r];
        offset[r] = T_FLOOR(FMA_T(shared->c_hi, maxima_seen[r], shared->c_lo * maxima_seen[r])) - 1;
        planned = planned && isfinite(maxima[r]) && T_FABS(offset[r]) < (T)OFFSET_LIMIT;
    }
    if (!planned) {
        /* Row by row: each one takes the path it takes alone. */
        for (size_t r = 0; r < count; r++) {
            if (count == 1)
                softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
            else
                fast_small_body(1, vectors, op, x + r * n, y + r * n, n, scale, shared);
        }
        return;
    }
    V e[FAST_SMALL_GROUP][SMALL_VECTORS];
    V first[FAST_SMALL_GROUP], second[FAST_SMALL_GROUP];
    bool nan_row[FAST_SMALL_GROUP];
    for (size_t r = 0; r < count; r++) {
        const exp_args a = {P(set1)((offset[r] - (T)EXP_FLOOR_ARG) * shared->inverse_c), P(set1)(shared->c_hi),
                            P(set1)(shared->c_lo), P(set1)(-offset[r])};
        V total = P(set1)((T)0);
        for (size_t i = 0; i < vectors; i++) {
            /* Lanes past n hold the fill, -inf once negated or not: exp 0. */
            e[r][i] = fast_exp(negate ? P(neg)(v[r][i]) : v[r][i], &a);
            total = P(add)(total, e[r][i]);
        }
        ACC acc = P(acc_zero)();
        P(acc_add)(&acc, total);
        const WIDE sum = (WIDE)P(acc_total)(&acc);
        nan_row[r] = isnan(sum);
        if (log_output) {
            const WIDE log_sum =
                log_sum_from(sum, offset_remainder(shared->c_hi, shared->c_lo, maxima_seen[r], offset[r]));
            first[r] = P(set1)((T)scale);
            second[r] = P(set1)((T)0 - (T)log_sum); /* +0 for a sum of 1 */
        } else {
            first[r] = P(set1)((T)((WIDE)1 / sum));
            second[r] = P(set1)((T)0);
        }
    }
    for (size_t r = 0; r < count; r++) {
        T *out_row = y + r * n;
        if (nan_row[r]) {
            fill_row(out_row, 0, n, (T)NAN);
            continue;
        }
        const V row_max_v = P(set1)(maxima[r]);
        for (size_t i = 0; i < vectors; i++) {
            const size_t lanes = n - i * LANES < LANES ? n - i * LANES : LANES;
            const V out =
                log_output ? P(fmadd)(first[r], P(sub)(v[r][i], row_max_v), second[r]) : P(mul)(e[r][i], first[r]);
            if (lanes == LANES)
                P(store)(out_row + i * LANES, out);
            else
                P(store_tail)(out_row + i * LANES, out, lanes);
        }
    }
}

/* The group's vector count as a compile-time constant: the phases unroll
 * completely and the exps stay in registers. */
static SOFTMAX_FORCE_INLINE void fast_small_by_vectors(size_t count, softmax_op op, const T *x, T *y, size_t n,
                                                       double scale, const shared_plan *shared)
{
    switch ((n + LANES - 1) / LANES) {
    case 2:
        fast_small_body(count, 2, op, x, y, n, scale, shared);
        break;
    case 3:
        fast_small_body(count, 3, op, x, y, n, scale, shared);
        break;
    case 4:
        fast_small_body(count, 4, op, x, y, n, scale, shared);
        break;
    case 5:
        fast_small_body(count, 5, op, x, y, n, scale, shared);
        break;
    case 6:
        fast_small_body(count, 6, op, x, y, n, scale, shared);
        break;
    case 7:
        fast_small_body(count, 7, op, x, y, n, scale, shared);
        break;
    default:
        fast_small_body(count, 8, op, x, y, n, scale, shared);
        break;
    }
}

/* `rows` consecutive rows of n elements (shared->valid). */
static void fast_small_rows(softmax_op op, const T *x, T *y, size_t rows, size_t n, double scale,
                            const shared_plan *shared)
{
    size_t r = 0;
    for (; r + FAST_SMALL_GROUP <= rows; r += FAST_SMALL_GROUP)
        fast_small_by_vectors(FAST_SMALL_GROUP, op, x + r * n, y + r * n, n, scale, shared);
    if (r < rows)
        fast_small_by_vectors(1, op, x + r * n, y + r * n, n, scale, shared);
}
#endif
