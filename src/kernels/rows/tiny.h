/*
 * rows/tiny.h -- rows of at most one vector, accurate and fast.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ------------------------------------------------------------ tiny rows */

/* Rows of at most LANES elements. The sum of a row's exps is split as in
 * exp_block_any: the high parts (grid 2^-16 or 2^-45) add up exactly in T in
 * any order, the low parts (with the residuals) add up in T in the fixed
 * tree of P(butterfly_sum), and the row's sum is high + low in WIDE. The
 * per-row constants are computed in T from the shared plan. A row's
 * bits are a function of that row alone: the grouped kernel below does
 * lane for lane the arithmetic of tiny_row on one row. */

/* The per-row outcome after the sums: whether the row leaves the SIMD path
 * (a non-finite row maximum -- NaN, +-inf, the contract's special rows -- or
 * an offset out of range), is NaN, or gets the two output constants
 * (softmax: the halves of the scaled reciprocal; log-softmax: scale and
 * -log sum). */
#ifndef SOFTMAX_TINY_OUTCOME_DEFINED /* once for both data types */
#define SOFTMAX_TINY_OUTCOME_DEFINED
typedef enum { TINY_SIMD, TINY_REFERENCE, TINY_NAN } tiny_outcome;
#endif

static tiny_outcome tiny_outcome_of(T row_max, T offset, T high, T low)
{
    if (!isfinite(row_max) || !(T_FABS(offset) < (T)OFFSET_LIMIT))
        return TINY_REFERENCE;
    return wide_is_nan(wide_sum_of(high, low)) ? TINY_NAN : TINY_SIMD;
}

/* The halves of the scaled reciprocal of a tiny row's sum, as
 * reciprocal_of and, lane for lane, P(reciprocal_halves). */
static void tiny_reciprocal(T high, T low, T *first, T *second)
{
    const reciprocal r = reciprocal_of(wide_sum_of(high, low));
    *first = r.hi;
    *second = r.lo;
}

/* -log(sum) lane by lane, each lane the function of its own row that
 * log_sum_from(offset_remainder) gives: in vectors where the vocabulary
 * has it (f32; a log to ~1e-11 in double lanes, rounded to f32 once), else
 * lane by lane in WIDE. tiny_row and tiny_group both call this, so a
 * row's constant never depends on its group. */
static inline V tiny_neg_log_sums(V high, V low, V row_max, V offset, const shared_plan *shared)
{
#if defined(NEG_LOG_SUM_VECTOR)
    /* log_sum_from's rule: -log-sum above -LOG_SUM_ZERO_BELOW is +0, NaN
     * stays NaN. */
    const V neg_log_sum = P(neg_log_sum)(high, low, row_max, offset, shared->c_hi, shared->c_lo);
    const V snapped = P(zero_below)(neg_log_sum, P(neg)(neg_log_sum), P(set1)((T)LOG_SUM_ZERO_BELOW));
    return P(keep_nan)(snapped, neg_log_sum);
#else
    T highs[LANES], lows[LANES], block_maxima[LANES], offsets[LANES], out[LANES];
    P(store)(highs, high);
    P(store)(lows, low);
    P(store)(block_maxima, row_max);
    P(store)(offsets, offset);
    for (size_t l = 0; l < LANES; l++) {
        const WIDE sum = wide_sum_of(highs[l], lows[l]);
        out[l] = (T)0 - (T)log_sum_from(sum, offset_remainder(shared->c_hi, shared->c_lo, block_maxima[l], offsets[l]));
    }
    return P(load)(out);
#endif
}

/* One tiny row in one vector: horizontal reductions. */
static SOFTMAX_FORCE_INLINE void tiny_row_body(bool fast, softmax_op op, const T *x, T *y, size_t n, double scale,
                                               const shared_plan *shared)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = shared->negate;
    V v = P(load_tail)(x, n, negate ? (T)INFINITY : (T)-INFINITY);
    if (negate)
        v = P(neg)(v);
    const T row_max = P(reduce_max)(v);
    const T offset = T_FLOOR(FMA_T(shared->c_hi, row_max, shared->c_lo * row_max)) - 1;
    const exp_args a = {P(set1)((offset - (T)EXP_FLOOR_ARG) * shared->inverse_c), P(set1)(shared->c_hi),
                        P(set1)(shared->c_lo), P(set1)(-offset)};
    /* Lanes past n hold -inf: clamped to the floor, their exp is exactly 0. */
    V e, r;
    tiny_exp(fast, v, &a, &e, &r);
    const V high = grid_high(e);
    const V low = P(add)(P(sub)(e, high), r);
    const T high_sum = P(reduce_add)(high), low_sum = P(butterfly_sum)(low);
    switch (tiny_outcome_of(row_max, offset, high_sum, low_sum)) {
    case TINY_REFERENCE:
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
        return;
    case TINY_NAN:
        fill_row(y, 0, n, (T)NAN);
        return;
    case TINY_SIMD:
        break;
    }
    V out;
    if (log_output) {
        const V second =
            tiny_neg_log_sums(P(set1)(high_sum), P(set1)(low_sum), P(set1)(row_max), P(set1)(offset), shared);
        const V shifted = P(sub)(v, P(set1)(row_max));
        out = P(fmadd)(P(set1)((T)scale), negate ? P(neg)(shifted) : shifted, second);
    } else {
        T first, second;
        tiny_reciprocal(high_sum, low_sum, &first, &second);
        out = apply_reciprocal(e, r, P(set1)(first), P(set1)(second));
    }
    P(store_tail)(y, out, n);
}

/* Row r of a group, off the SIMD path (a special row, or a special scale):
 * NaN if `nan`, else the reference kernels on the row as the gathered path
 * holds it (its exclusions written in); then a causal prefix's fill. */
static void group_row_aside(softmax_op op, const T *x, T *y, size_t stride, const row_group *g, int flags, size_t r,
                            size_t n, double scale, bool nan)
{
    const T *row = group_x(x, stride, g, flags, r);
    T *out = group_y(y, stride, g, flags, r);
    const size_t length = group_length(n, g, flags, r);
    /* A causal prefix with no other exclusion (the short causal rows,
     * SHORT_CAUSAL_MAX_VECTORS) is that row alone on its prefix, as
     * prefix_rows computes it, then the fill: a NaN or the reference stay
     * within the prefix. With other exclusions, the whole row, as gathered. */
#if defined(HALF_ROWS)
    const bool prefix_alone = (flags & EXCLUDING) == EXCLUDE_PREFIX;
    const size_t own = prefix_alone && g->kept[r] < length ? g->kept[r] : length;
#else
    const bool prefix_alone = false;
    const size_t own = length;
#endif
    if (nan || prefix_alone) {
        if (nan)
            fill_row(out, 0, own, (T)NAN);
        else if (own > 0)
            softmax_line_run(&REF_LINES, op, row, NULL, out, own, 1, scale);
        fill_row(out, own, length, op == SOFTMAX_OP_LOG_SOFTMAX ? (T)-INFINITY : (T)0);
    } else if (flags & EXCLUDING) {
        T gathered[SMALL_VECTORS * LANES];
        for (size_t i = 0; i < length; i += LANES) {
            const size_t lanes = length - i < LANES ? length - i : LANES;
            const V v = group_read(row, g, flags, r, i, lanes, 0);
            if (lanes == LANES)
                P(store)(gathered + i, v);
            else
                P(store_tail)(gathered + i, v, lanes);
        }
        softmax_line_run(&REF_LINES, op, gathered, NULL, out, length, 1, scale);
    } else {
        softmax_line_run(&REF_LINES, op, row, NULL, out, length, 1, scale);
    }
    if (flags & GROUP_LENGTHS)
        fill_row(out, length, stride, op == SOFTMAX_OP_LOG_SOFTMAX ? (T)-INFINITY : (T)0);
}

/* Rows of at most TINY_VECTORS vectors take the transposed group below
 * (thresholds.h): one vector, or two on AVX2, whose units define it. */
#ifndef TINY_VECTORS
#define TINY_VECTORS 1
#endif

/* The GROUP_AFFINE copies of the group kernels: left out under the
 * sanitizers (SOFTMAX_SANITIZED); the pointer groups compute the same bits
 * from the same addresses (the Release tests run both). */
#define AFFINE_GROUPS (!SOFTMAX_SANITIZED)

/* A causal prefix as the only exclusion of a group of LANES rows of one
 * vector (GROUP_AFFINE: kept[] set for every lane), AVX-512 f32: applied
 * to the transposed columns, two operations a column (the lanes whose
 * prefix ends at or before it take `excluded`), not to each row as it is
 * read (its prefix loaded, clamped and made a mask of lanes: about 8 % of
 * a causal call at T = 16). The same values in the same places: the same
 * bits. Only where the affine groups are (not under the sanitizers). */
#if defined(HALF_ROWS) && defined(SOFTMAX_VEC_AVX512_H) && AFFINE_GROUPS
#define PREFIX_IN_COLUMNS 1
#else
#define PREFIX_IN_COLUMNS 0
#endif
static SOFTMAX_FORCE_INLINE bool prefix_in_columns(int flags)
{
    return PREFIX_IN_COLUMNS && (flags & EXCLUDING) == EXCLUDE_PREFIX && (flags & GROUP_AFFINE) &&
           !(flags & GROUP_CHECKED);
}

#if PREFIX_IN_COLUMNS
/* The LANES counts (each below 2^32: prefixes of at most a row of one
 * vector) as the lanes of one vector, lane r = row r. */
static SOFTMAX_FORCE_INLINE __m512i lanes_of_counts(const size_t counts[LANES])
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_loadu_si512(counts))),
                              _mm512_cvtepi64_epi32(_mm512_loadu_si512(counts + 8)), 1);
}

/* The lanes (rows) of column j past their prefix. */
static SOFTMAX_FORCE_INLINE __mmask16 lanes_past(__m512i prefixes, size_t j)
{
    return _mm512_cmple_epu32_mask(prefixes, _mm512_set1_epi32((int)j));
}
#endif

/* Row r of a tiny group from element i, `count` (<= LANES) elements and
 * `fill` past them: group_read, but plain rows take one masked load
 * whatever their length.
 * group_read's full-width load when length == LANES is a second path into
 * the transpose, and with it gcc 12 no longer keeps the group's loads in
 * registers: it stores all LANES vectors to the stack and reads them back
 * before transposing them (AVX-512, 4096 rows of 10: 3-5% of the call). A
 * mask of all lanes loads the same values. */
static SOFTMAX_FORCE_INLINE V tiny_group_read(const T *row, const row_group *g, int flags, size_t r, size_t i,
                                              size_t count, T fill)
{
    if (!(flags & EXCLUDING))
        return P(load_tail)(row + i, count, fill);
    return group_read(row, g, flags, r, i, count, fill);
}

/* The elements of a row of `length` in its vector from element i (a
 * multiple of LANES): all of them in rows of one vector. */
static SOFTMAX_FORCE_INLINE size_t tiny_lanes(size_t vectors, size_t length, size_t i)
{
    if (vectors == 1)
        return length;
    return length <= i ? 0 : length - i < LANES ? length - i : LANES;
}

/* LANES rows at a time, transposed in registers: vector j holds column j of
 * the group (lane l = row l), so the maxima, the sums and the per-row
 * constants are vertical operations, only n exps are evaluated per group
 * however short the rows, and the sum of the low parts runs through the
 * tree of P(butterfly_sum) over whole column vectors. Lanes of padding rows
 * (a partial group) compute on zeros and are never stored.
 *
 * Rows of `vectors` vectors (a constant: 1, or TINY_VECTORS) are
 * transposed one LANES x LANES block at a time into vectors * LANES
 * columns; the low parts then add up in the tree over all the columns
 * (column j + column j + LANES first, then P(butterfly_sum)'s). Columns
 * past a row's end hold exps of exactly 0, so a row's bits never depend
 * on n, the longest row of its group. */
/* The column loops unrolled whole wherever the group is inlined: in the
 * large bodies of the masked-row kernels gcc kept them rolled, with the
 * exps, residuals and low parts in memory (the plain tiny rows gained a
 * tenth too). gcc only, and not under the sanitizers: there the unrolled
 * bodies took minutes to compile (clang with ASan, several). The same
 * operations either way: the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && !SOFTMAX_SANITIZED
#define TINY_UNROLL _Pragma("GCC unroll 32")
#else
#define TINY_UNROLL
#endif
static SOFTMAX_FORCE_INLINE void tiny_group_vectors(bool fast, size_t vectors, softmax_op op, const T *x, T *y,
                                                    size_t stride, const row_group *g, int flags, size_t count,
                                                    size_t n, double scale, const shared_plan *shared)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const bool negate = shared->negate;
    /* Rows shorter than the group (GROUP_LENGTHS) read -inf (once negated)
     * past their end, whose exp is 0: the lanes of tiny_row. */
    const T past_end = !(flags & GROUP_LENGTHS) ? (T)0 : negate ? (T)INFINITY : (T)-INFINITY;
    const size_t columns = vectors * LANES;
    /* Consecutive plain rows (stride n) of more than one vector: the last
     * vector of row r, but for the group's last row, is read and written
     * whole, into row r + 1, for masked moves cost several times a plain
     * one on AVX2. The lanes read past n are never used (columns past n are
     * skipped; the group's maxima, exps and sums read only its n first);
     * the lanes written there are written again by row r + 1's own stores,
     * which come after -- when row r + 1 is stored here, not aside. */
    const bool overlapping = vectors > 1 && !(flags & (GROUP_ROWS | GROUP_LENGTHS | EXCLUDING));
    /* A prefix applied to the columns below: the rows are read plain. */
    const bool columns_prefix = vectors == 1 && prefix_in_columns(flags);
    const int read_flags = columns_prefix ? flags & ~EXCLUDING : flags;
    V column[TINY_VECTORS * LANES];
    for (size_t b = 0; b < vectors; b++) {
        TINY_UNROLL
        for (size_t r = 0; r < LANES; r++) {
            if (r >= count) {
                column[b * LANES + r] = P(set1)(0);
                continue;
            }
            const T *row = group_x(x, stride, g, flags, r);
            const size_t length = group_length(n, g, flags, r), i = b * LANES;
            /* Rows of two vectors fill the first one (exclusions are
             * applied as it is read). */
            if ((b + 1 < vectors && !(flags & (GROUP_LENGTHS | EXCLUDING))) || (overlapping && r + 1 < count))
                column[b * LANES + r] = P(load)(row + i);
            else
                column[b * LANES + r] =
                    tiny_group_read(row, g, read_flags, r, i, tiny_lanes(vectors, length, i), past_end);
        }
        P(transpose)(column + b * LANES);
    }
#if PREFIX_IN_COLUMNS
    if (columns_prefix) {
        const __m512i kept = lanes_of_counts(g->kept);
        const V excluded = P(set1)(g->excluded);
        TINY_UNROLL
        for (size_t j = 0; j < n && j < LANES; j++)
            column[j] = _mm512_mask_blend_ps(lanes_past(kept, j), column[j], excluded);
    }
#endif
    V row_max = P(set1)((T)-INFINITY);
    TINY_UNROLL
    for (size_t j = 0; j < n && j < columns; j++) {
        if (negate)
            column[j] = P(neg)(column[j]);
        /* The running maximum second: a NaN element is skipped, as in
         * reduce_max; its row is caught by its NaN sum. */
        row_max = P(max)(column[j], row_max);
    }
    const V offset = P(sub)(P(floor)(P(fmadd)(P(set1)(shared->c_hi), row_max, P(mul)(P(set1)(shared->c_lo), row_max))),
                            P(set1)((T)1));
    const exp_args a = {P(mul)(P(sub)(offset, P(set1)((T)EXP_FLOOR_ARG)), P(set1)(shared->inverse_c)),
                        P(set1)(shared->c_hi), P(set1)(shared->c_lo), P(neg)(offset)};
    V e[TINY_VECTORS * LANES], residual[TINY_VECTORS * LANES], low[TINY_VECTORS * LANES];
    V high = P(set1)(0);
    TINY_UNROLL
    for (size_t j = 0; j < columns; j++) {
        if (j >= n) { /* never read; zeros so that no path reads them undefined */
            e[j] = residual[j] = low[j] = P(set1)(0);
            continue;
        }
        tiny_exp(fast, column[j], &a, &e[j], &residual[j]);
        const V h = grid_high(e[j]);
        high = P(add)(high, h);
        low[j] = P(add)(P(sub)(e[j], h), residual[j]);
    }
    for (size_t half = columns / 2; half > 0; half /= 2)
        for (size_t j = 0; j < half; j++)
            low[j] = P(add)(low[j], low[j + half]);
    T block_maxima[LANES], offsets[LANES], highs[LANES], lows[LANES];
    P(store)(block_maxima, row_max);
    P(store)(offsets, offset);
    P(store)(highs, high);
    P(store)(lows, low[0]);
    bool simd_row[LANES];
    /* The common case, every row of the group on the SIMD path, decided in
     * vectors: a finite row maximum and sum parts (no NaN), an offset in
     * range -- what tiny_outcome_of says lane by lane. */
    const unsigned group_lanes = count == LANES ? (unsigned)((1ull << LANES) - 1) : (1u << count) - 1;
    const unsigned simd_lanes = P(finite_lanes)(row_max) & P(finite_lanes)(high) & P(finite_lanes)(low[0]) &
                                P(lanes_below)(P(max)(offset, P(neg)(offset)), P(set1)((T)OFFSET_LIMIT));
    const bool whole_group = (simd_lanes & group_lanes) == group_lanes;
    for (size_t r = 0; r < LANES; r++) {
        simd_row[r] = whole_group && r < count;
        if (whole_group || r >= count)
            continue;
        /* Rows leaving the SIMD path are written now, each from its own
         * input row: no SIMD result has been stored yet (in place). */
        switch (tiny_outcome_of(block_maxima[r], offsets[r], highs[r], lows[r])) {
        case TINY_REFERENCE:
            group_row_aside(op, x, y, stride, g, flags, r, n, scale, false);
            break;
        case TINY_NAN:
            group_row_aside(op, x, y, stride, g, flags, r, n, scale, true);
            break;
        case TINY_SIMD:
            simd_row[r] = true;
            break;
        }
    }
    V first, second;
    if (log_output) {
        first = P(set1)((T)scale);
        second = tiny_neg_log_sums(high, low[0], row_max, offset, shared);
    } else {
        /* Lanes of rows that left the SIMD path compute garbage, unstored. */
        P(reciprocal_halves)(high, low[0], NORMALIZE_SCALE, &first, &second);
    }
    TINY_UNROLL
    for (size_t j = 0; j < columns; j++) {
        if (j >= n) {
            column[j] = P(set1)(0);
        } else if (log_output) {
            const V shifted = P(sub)(column[j], row_max);
            column[j] = P(fmadd)(first, negate ? P(neg)(shifted) : shifted, second);
        } else {
            column[j] = apply_reciprocal(e[j], residual[j], first, second);
        }
    }
    for (size_t b = 0; b < vectors; b++)
        P(transpose)(column + b * LANES);
    for (size_t r = 0; r < count; r++) {
        if (!simd_row[r])
            continue;
        T *out = group_y(y, stride, g, flags, r);
        const size_t length = group_length(n, g, flags, r);
        if ((flags & GROUP_LENGTHS) && vectors == 1 && stride == LANES) {
            /* A causal prefix in a row of exactly one vector: the fill and
             * the values in two vector stores, not an element loop (at T =
             * 16 it cost a fifth of the causal call). */
            if (length < LANES) {
                P(store)(out, P(set1)(log_output ? (T)-INFINITY : (T)0));
                P(store_tail)(out, column[r], length);
            } else {
                P(store)(out, column[r]);
            }
            continue;
        }
        for (size_t b = 0; b < vectors; b++) {
            const size_t i = b * LANES;
            if ((b + 1 < vectors && !(flags & GROUP_LENGTHS)) || (overlapping && r + 1 < count && simd_row[r + 1]))
                P(store)(out + i, column[i + r]);
            else
                P(store_tail)(out + i, column[i + r], tiny_lanes(vectors, length, i));
        }
        if (flags & GROUP_LENGTHS)
            fill_row(out, length, stride, log_output ? (T)-INFINITY : (T)0);
    }
}

/* Rows of one vector, read as group_flags say (rows/masked_rows.h). */
static SOFTMAX_FORCE_INLINE void tiny_group_reading(bool fast, softmax_op op, const T *x, T *y, size_t stride,
                                                    const row_group *g, int flags, size_t count, size_t n, double scale,
                                                    const shared_plan *shared)
{
    tiny_group_vectors(fast, 1, op, x, y, stride, g, flags, count, n, scale, shared);
}

static SOFTMAX_FORCE_INLINE void tiny_group_body(bool fast, softmax_op op, const T *x, T *y, size_t count, size_t n,
                                                 double scale, const shared_plan *shared)
{
    /* Rows of exactly one vector (16 f32 on AVX-512) get their own copy, in
     * which n is a constant: whole-vector loads and stores and unrolled
     * column loops (the general copy's masked moves cost 10-20% there). */
    if (n == LANES)
        tiny_group_vectors(fast, 1, op, x, y, LANES, NULL, 0, count, LANES, scale, shared);
    else
        tiny_group_vectors(fast, 1, op, x, y, n, NULL, 0, count, n, scale, shared);
}

static void tiny_group(softmax_op op, const T *x, T *y, size_t count, size_t n, double scale, const shared_plan *shared)
{
    tiny_group_body(false, op, x, y, count, n, scale, shared);
}

static void tiny_row(softmax_op op, const T *x, T *y, size_t n, double scale, const shared_plan *shared)
{
    tiny_row_body(false, op, x, y, n, scale, shared);
}

typedef void (*tiny_group_fn)(softmax_op, const T *, T *, size_t, size_t, double, const shared_plan *);
typedef void (*tiny_row_fn)(softmax_op, const T *, T *, size_t, double, const shared_plan *);

static void tiny_rows_with(tiny_group_fn group, tiny_row_fn one, softmax_op op, const T *x, T *y, size_t rows, size_t n,
                           double scale)
{
    const shared_plan shared = shared_plan_of(scale);
    if (!shared.valid) {
        for (size_t r = 0; r < rows; r++)
            softmax_line_run(&REF_LINES, op, x + r * n, NULL, y + r * n, n, 1, scale);
        return;
    }
    for (size_t r0 = 0; r0 < rows; r0 += LANES) {
        const size_t count = rows - r0 < LANES ? rows - r0 : LANES;
        if (count >= TINY_GROUP_MIN) {
            group(op, x + r0 * n, y + r0 * n, count, n, scale, &shared);
            continue;
        }
        for (size_t r = r0; r < r0 + count; r++)
            one(op, x + r * n, y + r * n, n, scale, &shared);
    }
}

static void tiny_rows(softmax_op op, const T *x, T *y, size_t rows, size_t n, double scale)
{
    tiny_rows_with(tiny_group, tiny_row, op, x, y, rows, n, scale);
}

#if SOFTMAX_HAS_FAST_EXP
/* The fast mode's tiny rows: the same kernels with the fast exponential. */

static void fast_tiny_group(softmax_op op, const T *x, T *y, size_t count, size_t n, double scale,
                            const shared_plan *shared)
{
    tiny_group_body(true, op, x, y, count, n, scale, shared);
}

static void fast_tiny_row(softmax_op op, const T *x, T *y, size_t n, double scale, const shared_plan *shared)
{
    tiny_row_body(true, op, x, y, n, scale, shared);
}
#endif
