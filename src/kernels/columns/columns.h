/*
 * columns/columns.h -- softmax along a non-last axis: many lines side by side, one per
 * lane, walked down the axis; their gradients.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ------------------------------------------- columns (a non-last axis) */

/* Lines j in [j_begin, j_end) of an [n, inner] slice, COLUMN_VECTORS
 * vectors of adjacent lines at a time: each lane is its own softmax row,
 * walked down the n axis, so loads stay contiguous. */
#define COLUMN_CHUNK ((size_t)COLUMN_VECTORS * LANES)
#define COLUMN_AHEAD 16

/* Pass 1 of a chunk: the maximum of each line (its minimum for scale < 0),
 * a lane per line, into maxima. */
static SOFTMAX_FORCE_INLINE void column_maxima_body(const T *x, size_t n, size_t inner, size_t j0, size_t width,
                                                    bool negate, T *maxima)
{
    const size_t vectors = (width + LANES - 1) / LANES;
    V m[COLUMN_VECTORS];
    const T start = negate ? (T)INFINITY : (T)-INFINITY;
    for (size_t v = 0; v < vectors; v++)
        m[v] = P(set1)(start);
    for (size_t k = 0; k < n; k++) {
        const T *row = x + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            /* Every row of the chunk is on its own page, where the
             * hardware's prefetchers do not follow: ask for the rows
             * ahead. */
            if (k + COLUMN_AHEAD < n)
                vec_prefetch(row + COLUMN_AHEAD * inner + v * LANES);
            V xv = count == LANES ? P(load)(row + v * LANES) : P(load_tail)(row + v * LANES, count, start);
            m[v] = negate ? P(min)(xv, m[v]) : P(max)(xv, m[v]);
        }
    }
    for (size_t v = 0; v < vectors; v++)
        P(store)(maxima + v * LANES, m[v]);
}

static void column_maxima(const T *x, size_t n, size_t inner, size_t j0, size_t width, bool negate, T *maxima)
{
    if (width == COLUMN_CHUNK)
        column_maxima_body(x, n, inner, j0, COLUMN_CHUNK, negate, maxima);
    else
        column_maxima_body(x, n, inner, j0, width, negate, maxima);
}

/* One chunk, its maxima given (pass 1). residuals: room for 2 * n *
 * COLUMN_CHUNK elements (softmax only): the residuals, then the exps.
 *
 * With next_maxima, the exp pass also takes the maxima of the next chunk, a
 * full one starting at j0 + COLUMN_CHUNK: its loads from memory, a page
 * apart, overlap the exps of this chunk instead of waiting in a pass of
 * their own, and leave the next chunk in the cache for its exp pass.
 * Returns whether next_maxima was filled (not when a special line sends
 * the chunk to the reference lines). */
static SOFTMAX_FORCE_INLINE bool column_chunk_body(softmax_op op, const T *x, T *y, T *residuals, size_t n,
                                                   size_t inner, size_t j0, size_t width, double scale,
                                                   const T *block_maxima, T *next_maxima)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = scale < 0;
    const size_t vectors = (width + LANES - 1) / LANES;
    const T start = negate ? (T)INFINITY : (T)-INFINITY;
    /* Per-lane plans; any special lane sends the chunk to the reference. */
    row_plan plans[COLUMN_CHUNK];
    for (size_t j = 0; j < width; j++) {
        if (!plan_row(scale, block_maxima[j], &plans[j])) {
            for (size_t jj = 0; jj < width; jj++)
                softmax_line_run(&REF_LINES, op, x + j0 + jj, NULL, y + j0 + jj, n, (ptrdiff_t)inner, scale);
            return false;
        }
    }
    exp_args args[COLUMN_VECTORS];
    {
        T floors[COLUMN_CHUNK], neg_offsets[COLUMN_CHUNK];
        for (size_t j = 0; j < COLUMN_CHUNK; j++) {
            size_t source = j < width ? j : 0;
            floors[j] = plans[source].x_floor;
            neg_offsets[j] = (T)-plans[source].offset;
        }
        for (size_t v = 0; v < vectors; v++) {
            args[v].x_floor = P(load)(floors + v * LANES);
            args[v].neg_offset = P(load)(neg_offsets + v * LANES);
            args[v].c_hi = P(set1)(plans[0].c_hi);
            args[v].c_lo = P(set1)(plans[0].c_lo);
        }
    }
    /* Pass 2: exps (stored for softmax) and per-lane sums, split as in
     * exp_block_excluding: the high parts of SPLIT_RUN rows add up exactly,
     * then go to the wide accumulator with the low parts. */
    ACC sums[COLUMN_VECTORS];
    V residual_sums[COLUMN_VECTORS], highs[COLUMN_VECTORS], next_m[COLUMN_VECTORS];
    for (size_t v = 0; v < vectors; v++) {
        sums[v] = P(acc_zero)();
        residual_sums[v] = highs[v] = P(set1)(0);
    }
    for (size_t v = 0; v < COLUMN_VECTORS; v++)
        next_m[v] = P(set1)(start);
    for (size_t k = 0; k < n; k++) {
        if (next_maxima != NULL) {
            const T *next_row = x + k * inner + j0 + COLUMN_CHUNK;
            for (size_t v = 0; v < COLUMN_VECTORS; v++) {
                if (k + COLUMN_AHEAD < n)
                    vec_prefetch(next_row + COLUMN_AHEAD * inner + v * LANES);
                const V xv = P(load)(next_row + v * LANES);
                next_m[v] = negate ? P(min)(xv, next_m[v]) : P(max)(xv, next_m[v]);
            }
        }
        if (k % SPLIT_RUN == 0 && k != 0)
            for (size_t v = 0; v < vectors; v++) {
                P(acc_add)(&sums[v], highs[v]);
                P(acc_add)(&sums[v], residual_sums[v]);
                highs[v] = residual_sums[v] = P(set1)(0);
            }
        const T *row = x + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V xv = count == LANES ? P(load)(row + v * LANES) : P(load_tail)(row + v * LANES, count, start);
            if (negate)
                xv = P(neg)(xv);
            exp_parts parts = exp_parts_of(xv, &args[v]);
            V e = P(scale_pow2)(parts.mantissa, parts.k);
            V residual = P(scale_pow2)(parts.residual, parts.k);
            if (!log_output) {
                /* In the workspace beside the residuals, not in y: y's rows
                 * are a page apart each (and not in cache: every store
                 * would first read its line), the workspace is contiguous. */
                P(store)(residuals + (n + k) * COLUMN_CHUNK + v * LANES, e);
                P(store)(residuals + k * COLUMN_CHUNK + v * LANES, residual);
            }
            const V high = grid_high(e);
            highs[v] = P(add)(highs[v], high);
            residual_sums[v] = P(add)(residual_sums[v], P(add)(P(sub)(e, high), residual));
        }
    }
    for (size_t v = 0; v < vectors; v++) {
        P(acc_add)(&sums[v], highs[v]);
        P(acc_add)(&sums[v], residual_sums[v]);
        residual_sums[v] = P(set1)(0);
    }
    if (next_maxima != NULL)
        for (size_t v = 0; v < COLUMN_VECTORS; v++)
            P(store)(next_maxima + v * LANES, next_m[v]);
    /* Per-lane constants of the writing pass. */
    T first[COLUMN_CHUNK], second[COLUMN_CHUNK];
    for (size_t v = 0; v < vectors; v++) {
        WIDE lane_sums[LANES];
        T lane_residuals[LANES];
        P(acc_lanes)(&sums[v], lane_sums);
        P(store)(lane_residuals, residual_sums[v]);
        for (size_t l = 0; l < LANES; l++) {
            lane_sums[l] = wide_add(lane_sums[l], wide_of(lane_residuals[l]));
            size_t j = v * LANES + l;
            size_t source = j < width ? j : 0;
            if (log_output) {
                first[j] = (T)0 - (T)log_sum_of(lane_sums[l], &plans[source]); /* -log sum, +0 for 1 */
                second[j] = plans[source].row_max;
            } else {
                reciprocal r = reciprocal_of(lane_sums[l]);
                first[j] = r.hi; /* NaN for a lane that met a NaN */
                second[j] = wide_is_nan(lane_sums[l]) ? (T)NAN : r.lo;
            }
        }
    }
    /* Pass 3. */
    const V s = P(set1)((T)scale);
    for (size_t k = 0; k < n; k++) {
        const T *row = x + k * inner + j0;
        T *out = y + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V a = P(load)(first + v * LANES), b = P(load)(second + v * LANES);
            V result;
            if (log_output) {
                V xv = count == LANES ? P(load)(row + v * LANES) : P(load_tail)(row + v * LANES, count, 0);
                result = P(fmadd)(s, P(sub)(xv, b), a);
            } else {
                const V e = P(load)(residuals + (n + k) * COLUMN_CHUNK + v * LANES);
                result = apply_reciprocal(e, P(load)(residuals + k * COLUMN_CHUNK + v * LANES), a, b);
            }
            if (count == LANES)
                P(store)(out + v * LANES, result);
            else
                P(store_tail)(out + v * LANES, result, count);
        }
    }
    return next_maxima != NULL;
}

/* A full chunk with its width a constant: the loops over its vectors
 * unroll and the per-vector tail tests vanish. */
static bool column_chunk(softmax_op op, const T *x, T *y, T *residuals, size_t n, size_t inner, size_t j0, size_t width,
                         double scale, const T *maxima, T *next_maxima)
{
    if (width != COLUMN_CHUNK)
        return column_chunk_body(op, x, y, residuals, n, inner, j0, width, scale, maxima, next_maxima);
    if (next_maxima != NULL)
        return column_chunk_body(op, x, y, residuals, n, inner, j0, COLUMN_CHUNK, scale, maxima, next_maxima);
    return column_chunk_body(op, x, y, residuals, n, inner, j0, COLUMN_CHUNK, scale, maxima, NULL);
}

/* The gradients over a non-last axis, a chunk of adjacent lines at a time:
 * the same formulas as the row kernels, one lane per line. A chunk holding
 * a line the row kernels would not evaluate plainly (see
 * gradients/rows.h: infinite scale, NaN, a fully masked line, a reduction
 * that is not finite, a scale the vectors cannot apply, a logy above 0, a
 * plain pass that could overflow, a logy below the exp's floor whose 0
 * matters) goes to the reference lines whole, before anything is
 * written. */
static void column_gradient_chunk(softmax_op op, const T *src, const T *g, T *out, size_t n, size_t inner, size_t j0,
                                  size_t width, double scale)
{
    const bool log_input = op != SOFTMAX_OP_SOFTMAX_BACKWARD;
    const exp_args a = plain_exp_args();
    const size_t vectors = (width + LANES - 1) / LANES;
    const T src_fill = log_input ? (T)-INFINITY : (T)0;
    /* bottom: the smallest logy not negligible whatever the sums, 0 where
     * there is none (see log_gradient_row) */
    const V negligible = P(set1)((T)GRADIENT_NEGLIGIBLE_LOGY);
    ACC acc[COLUMN_VECTORS];
    V top[COLUMN_VECTORS], bottom[COLUMN_VECTORS], nan_flag[COLUMN_VECTORS];
    value_range g_range[COLUMN_VECTORS];
    for (size_t v = 0; v < vectors; v++) {
        acc[v] = P(acc_zero)();
        top[v] = P(set1)((T)-INFINITY);
        bottom[v] = P(set1)(0);
        nan_flag[v] = P(set1)(0);
        g_range[v] = range_start();
    }
    for (size_t k = 0; k < n; k++) {
        const T *s_row = src + k * inner + j0, *g_row = g + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V sv = count == LANES ? P(load)(s_row + v * LANES) : P(load_tail)(s_row + v * LANES, count, src_fill);
            V gv = count == LANES ? P(load)(g_row + v * LANES) : P(load_tail)(g_row + v * LANES, count, 0);
            top[v] = P(max)(sv, top[v]);
            if (log_input)
                bottom[v] = P(min)(P(zero_below)(sv, sv, negligible), bottom[v]);
            nan_flag[v] = P(keep_nan)(nan_flag[v], sv);
            range_add(&g_range[v], gv);
            if (op == SOFTMAX_OP_SOFTMAX_BACKWARD)
                P(acc_add_product)(&acc[v], sv, gv);
            else if (op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD)
                P(acc_add)(&acc[v], gv);
            else
                P(acc_add_product)(&acc[v], plain_exp(sv, &a), gv);
        }
    }
    const T floor_value = neg_arg_over_log2e(GRADIENT_FLOOR_ARG);
    T hi[COLUMN_CHUNK], lo[COLUMN_CHUNK];
    bool special = isinf(scale) || !scale_fits_vectors(scale);
    for (size_t v = 0; v < vectors; v++) {
        WIDE lanes[LANES];
        T tops[LANES], bottoms[LANES], g_max[LANES], g_min[LANES];
        P(acc_lanes)(&acc[v], lanes);
        P(store)(tops, top[v]);
        P(store)(bottoms, bottom[v]);
        P(store)(g_max, g_range[v].max);
        P(store)(g_min, g_range[v].min);
        special |= P(any_nan)(nan_flag[v]) != 0;
        for (size_t l = 0; l < LANES; l++) {
            size_t j = v * LANES + l;
            if (j < width) {
                const double total = wide_hi(lanes[l]);
                const double g_magnitude = fmax(fabs((double)g_max[l]), fabs((double)g_min[l]));
                special |= !isfinite(total) || !plain_pass_fits(scale, g_magnitude, total);
                if (log_input) {
                    special |= !(tops[l] > (T)-INFINITY) || tops[l] > 0;
                    /* a zeroed exp that matters: the lines evaluate it */
                    if (bottoms[l] < floor_value)
                        special |=
                            (op == SOFTMAX_OP_LOG_SOFTMAX_JVP ? negligible_below((double)n * g_magnitude)
                                                              : negligible_below(fabs(total))) < (double)floor_value;
                }
                const hi_lo split = hi_lo_of(lanes[l]);
                hi[j] = split.hi;
                lo[j] = split.lo;
            } else {
                hi[j] = lo[j] = 0;
            }
        }
    }
    if (special) {
        for (size_t j = j0; j < j0 + width; j++)
            softmax_line_run(&REF_LINES, op, src + j, g + j, out + j, n, (ptrdiff_t)inner, scale);
        return;
    }
    const V sc = P(set1)((T)scale);
    for (size_t k = 0; k < n; k++) {
        const T *s_row = src + k * inner + j0, *g_row = g + k * inner + j0;
        T *o_row = out + k * inner + j0;
        for (size_t v = 0; v < vectors; v++) {
            size_t count = width - v * LANES < LANES ? width - v * LANES : LANES;
            V sv = count == LANES ? P(load)(s_row + v * LANES) : P(load_tail)(s_row + v * LANES, count, src_fill);
            V gv = count == LANES ? P(load)(g_row + v * LANES) : P(load_tail)(g_row + v * LANES, count, 0);
            V h = P(load)(hi + v * LANES), l = P(load)(lo + v * LANES);
            V result;
            if (op == SOFTMAX_OP_SOFTMAX_BACKWARD) {
                /* y * (s * diff), as softmax_backward_row */
                result = P(mul)(sv, P(mul)(sc, P(sub)(P(sub)(gv, h), l)));
            } else if (op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD) {
                V yi = plain_exp(sv, &a);
                result = P(mul)(sc, P(fmadd)(P(neg)(yi), l, P(fmadd)(P(neg)(yi), h, gv)));
            } else {
                result = P(mul)(sc, P(sub)(P(sub)(gv, h), l));
            }
            if (count == LANES)
                P(store)(o_row + v * LANES, result);
            else
                P(store_tail)(o_row + v * LANES, result, count);
        }
    }
}

static void column_lines(softmax_op op, const void *src, const void *grad, void *dst, size_t n, size_t inner,
                         size_t j_begin, size_t j_end, double scale)
{
    SOFTMAX_ASSERT(j_begin % COLUMN_CHUNK == 0 && j_begin <= j_end && j_end <= inner);
    const T *x = src;
    T *y = dst;
    if (op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) {
        for (size_t j0 = j_begin; j0 < j_end; j0 += COLUMN_CHUNK) {
            size_t width = j_end - j0 < COLUMN_CHUNK ? j_end - j0 : COLUMN_CHUNK;
            column_gradient_chunk(op, x, grad, y, n, inner, j0, width, scale);
        }
        return;
    }
    T *residuals = NULL;
    if (op == SOFTMAX_OP_SOFTMAX) {
        /* Long columns (beyond COLUMN_WORKSPACE_BYTES, 32 MiB, of exps and residuals, 65536 f32) take the reference lines
         * rather than a scratch buffer the size of the input. */
        const size_t bytes = 2 * n * COLUMN_CHUNK * sizeof *residuals;
        residuals = bytes <= COLUMN_WORKSPACE_BYTES ? softmax_workspace(bytes) : NULL;
        if (residuals == NULL) {
            for (size_t j = j_begin; j < j_end; j++)
                softmax_line_run(&REF_LINES, op, x + j, NULL, y + j, n, (ptrdiff_t)inner, scale);
            return;
        }
    }
    const unsigned int saved = vec_flush_to_zero_begin();
    /* The maxima of this chunk and of the next (the exp pass of a chunk
     * finds those of the next full one). */
    T maxima[2][COLUMN_CHUNK];
    bool have_maxima = false;
    for (size_t j0 = j_begin, at = 0; j0 < j_end; j0 += COLUMN_CHUNK, at ^= 1) {
        size_t width = j_end - j0 < COLUMN_CHUNK ? j_end - j0 : COLUMN_CHUNK;
        if (!have_maxima)
            column_maxima(x, n, inner, j0, width, scale < 0, maxima[at]);
        const bool next_is_full = j_end - j0 >= 2 * COLUMN_CHUNK;
        have_maxima = column_chunk(op, x, y, residuals, n, inner, j0, width, scale, maxima[at],
                                   next_is_full ? maxima[at ^ 1] : NULL);
    }
    vec_flush_to_zero_end(saved);
}
