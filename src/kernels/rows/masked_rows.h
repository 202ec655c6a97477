/*
 * rows/masked_rows.h -- short masked rows in the grouped tiny and small-row
 * kernels: exclusion masks applied as x is read (excluding_rows), added
 * biases (an additive mask or ALiBi) added as x is read (adding_rows), and
 * causal rows grouped by the length of their kept prefix (prefix_groups).
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* Up to LANES rows of g (plain rows x + r * stride -> y + r * stride
 * unless flags has GROUP_ROWS), each the kernels of its length: tiny if n
 * <= LANES (n the longest), else small. */
static SOFTMAX_FORCE_INLINE void run_group(softmax_op op, const T *x, T *y, const row_group *g, int flags, size_t count,
                                           size_t n, size_t stride, double scale, const shared_plan *shared)
{
    if (!shared->valid) {
        for (size_t r = 0; r < count; r++)
            group_row_aside(op, x, y, stride, g, flags, r, n, scale, false);
    } else if (n == LANES) {
        /* Rows of one whole vector (16 f32 on AVX-512) with n a constant:
         * the column loops unroll and the columns stay in registers (the
         * copy with n read at run time cost about 1.8x the unmasked rows
         * there). The same arithmetic: the same bits. */
        tiny_group_reading(false, op, x, y, stride, g, flags, count, LANES, scale, shared);
    } else if (n <= LANES) {
        tiny_group_reading(false, op, x, y, stride, g, flags, count, n, scale, shared);
    } else {
        small_group_reading(false, op, x, y, stride, g, flags | GROUP_MASKED_LOADS, count, n, scale, shared);
    }
}

/* ------------------------------------------------- causal rows, grouped */

/* Causal rows of which the kept prefix is short (at most SMALL_VECTORS
 * vectors), gathered by kind -- prefixes of at most LANES elements (the
 * tiny kernels) and longer ones (the small ones) -- and computed LANES
 * at a time, each row on its own prefix then filled to n: a row alone
 * in prefix_rows paid for a whole group (or for a single row's chain of
 * reductions). A row's bits do not depend on the rows beside it, so the
 * grouping changes none. */
typedef struct prefix_groups {
    row_group group[2]; /* [0]: tiny prefixes, [1]: small ones */
    size_t count[2];
    size_t longest[2];
} prefix_groups;

static void prefix_groups_flush(prefix_groups *p, int kind, softmax_op op, size_t n, double scale,
                                const shared_plan *shared)
{
    if (p->count[kind] == 0)
        return;
    run_group(op, NULL, NULL, &p->group[kind], GROUP_ROWS | GROUP_LENGTHS, p->count[kind], p->longest[kind], n, scale,
              shared);
    p->count[kind] = 0;
    p->longest[kind] = 0;
}

/* Adds the row x -> y of prefix `length` (0 < length <= SMALL_VECTORS *
 * LANES) of a call on rows of n elements, and runs its group once full. */
static void prefix_groups_add(prefix_groups *p, softmax_op op, const T *x, T *y, size_t length, size_t n, double scale,
                              const shared_plan *shared)
{
    const int kind = length > LANES;
    row_group *g = &p->group[kind];
    const size_t r = p->count[kind]++;
    g->rows_x[r] = x;
    g->rows_y[r] = y;
    g->length[r] = length;
    p->longest[kind] = length > p->longest[kind] ? length : p->longest[kind];
    if (p->count[kind] == LANES)
        prefix_groups_flush(p, kind, op, n, scale, shared);
}

/* ---------------------------------------------------- masked short rows */

#if defined(HALF_ROWS)
/* The kept prefix of line i of a run (see softmax_masked_run). */
static inline size_t run_kept(const softmax_masked_run *run, size_t i, size_t n)
{
    const int64_t kept = run->kept + (int64_t)i * run->kept_step;
    return kept <= 0 ? 0 : (uint64_t)kept >= n ? n : (size_t)kept;
}

/* run_kept of the LANES lines of run from line i on, into kept[]. On
 * AVX-512 computed and stored as vectors: the column prefix reads kept[]
 * back as vectors (lanes_of_counts), and a vector load of LANES scalar
 * stores waits for them all (2.4 % of an ALiBi + causal call at T = 16).
 * The same wrapping int64 arithmetic and clamp as run_kept. */
static SOFTMAX_FORCE_INLINE void run_kept_lanes(size_t kept[LANES], const softmax_masked_run *run, size_t i, size_t n)
{
#if defined(SOFTMAX_VEC_AVX512_H)
    _Static_assert(sizeof(size_t) == sizeof(int64_t), "kept[] holds 64-bit lanes");
    const __m512i step = _mm512_set1_epi64(run->kept_step), zero = _mm512_setzero_si512(),
                  limit = _mm512_set1_epi64((int64_t)n);
    const __m512i first = _mm512_set1_epi64((int64_t)((uint64_t)run->kept + (uint64_t)i * (uint64_t)run->kept_step));
    for (size_t b = 0; b < LANES; b += 8) {
        const __m512i line = _mm512_add_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi64((int64_t)b));
        const __m512i prefix = _mm512_add_epi64(first, _mm512_mullo_epi64(line, step));
        _mm512_storeu_si512(kept + b, _mm512_min_epi64(_mm512_max_epi64(prefix, zero), limit));
    }
#else
    for (size_t r = 0; r < LANES; r++)
        kept[r] = run_kept(run, i + r, n);
#endif
}

/* The bytes of one mask element: f32 (mask_type 1), else half bits. */
static inline size_t mask_element_size(int mask_type)
{
    return mask_type == 1 ? sizeof(float) : sizeof(uint16_t);
}

/* A cursor over the lines of runs: run k, its line i. */
typedef struct run_cursor {
    size_t k;
    size_t i;
} run_cursor;

/* The lines of the runs from the cursor on as the rows of g (rows_x,
 * rows_y, keep, mask, kept), up to LANES of them; the cursor moves past
 * them. Returns the number of rows, 0 once the runs are done. Not inlined:
 * inside the large bodies of the kernels its counters lived on the stack
 * (a fifth of the time of a masked row of 16 f32). */
static SOFTMAX_NOINLINE size_t fill_excluding_group(row_group *g, const softmax_masked_run *runs, size_t run_count,
                                                    run_cursor *at, size_t n, size_t mask_size)
{
    size_t k = at->k, i = at->i, rows = 0; /* in locals, as in fill_added_group */
    while (rows < LANES && k < run_count) {
        const softmax_masked_run *run = &runs[k];
        const size_t left = run->count - i, take = left < LANES - rows ? left : LANES - rows;
        for (size_t t = 0; t < take; t++, rows++) {
            const int64_t at_line = (int64_t)(i + t);
            g->rows_x[rows] = run->x + at_line * run->x_step;
            g->rows_y[rows] = run->y + at_line * run->y_step;
            g->keep[rows] = run->keep != NULL ? run->keep + at_line * run->keep_step : NULL;
            g->mask[rows] =
                run->mask != NULL ? (const char *)run->mask + at_line * run->mask_step * (int64_t)mask_size : NULL;
            g->kept[rows] = run_kept(run, (size_t)at_line, n);
        }
        i += take;
        if (i == run->count) {
            k++;
            i = 0;
        }
    }
    at->k = k;
    at->i = i;
    return rows;
}

/* Whether the LANES lines of run from line i on make a GROUP_AFFINE
 * group: tiny rows (the small ones measured slower so: their reads, a
 * vector each, computed the mask's address every time), x and y plain
 * rows of one stride, apart. */
static inline bool affine_run_lines(const softmax_masked_run *run, size_t i, size_t n)
{
    return AFFINE_GROUPS && run->count - i >= LANES && run->x_step == run->y_step && run->x_step >= (int64_t)n;
}

static inline bool affine_lines(const softmax_masked_run *run, size_t i, size_t n)
{
    return n <= LANES && affine_run_lines(run, i, n);
}

/* g's masks for the LANES lines of run from line i on (GROUP_AFFINE),
 * with their kept prefixes if flags has EXCLUDE_PREFIX. */
static SOFTMAX_NOINLINE void set_affine_group(row_group *g, const softmax_masked_run *run, size_t i, size_t n,
                                              size_t mask_size, int flags)
{
    g->keep_first = run->keep != NULL ? run->keep + (int64_t)i * run->keep_step : NULL;
    g->keep_step = run->keep_step;
    g->mask_first =
        run->mask != NULL ? (const char *)run->mask + (int64_t)i * run->mask_step * (int64_t)mask_size : NULL;
    g->mask_step = run->mask_step * (int64_t)mask_size;
    if (flags & EXCLUDE_PREFIX)
        run_kept_lanes(g->kept, run, i, n);
}

/* The lines of the runs in groups of LANES: LANES lines of one run whose
 * rows lie at one stride as such (GROUP_AFFINE: nothing per row to set up,
 * which cost a tenth of a masked row of 16 f32), the rest gathered
 * across runs by pointers (GROUP_ROWS). */
static SOFTMAX_FORCE_INLINE void excluding_groups(softmax_op op, const softmax_masked_run *runs, size_t run_count,
                                                  size_t n, int flags, size_t mask_size, row_group *g, double scale,
                                                  const shared_plan *shared)
{
    run_cursor at = {0, 0};
    while (at.k < run_count) {
        const softmax_masked_run *run = &runs[at.k];
        if (affine_lines(run, at.i, n)) {
            set_affine_group(g, run, at.i, n, mask_size, flags);
            const int64_t line = (int64_t)at.i;
            const T *x = run->x + line * run->x_step;
            T *y = run->y + line * run->y_step;
            const size_t stride = (size_t)run->x_step;
            if (!shared->valid)
                run_group(op, x, y, g, flags | GROUP_AFFINE, LANES, n, stride, scale, shared);
            else if (n == LANES) /* as in run_group */
                tiny_group_reading(false, op, x, y, stride, g, flags | GROUP_AFFINE, LANES, LANES, scale, shared);
            else
                tiny_group_reading(false, op, x, y, stride, g, flags | GROUP_AFFINE, LANES, n, scale, shared);
            at.i += LANES;
            if (at.i == run->count) {
                at.k++;
                at.i = 0;
            }
            continue;
        }
        const size_t rows = fill_excluding_group(g, runs, run_count, &at, n, mask_size);
        if (rows == 0)
            break;
        run_group(op, NULL, NULL, g, flags | GROUP_ROWS, rows, n, n, scale, shared);
    }
}

/* Each kind's body a function of its own, not inlined into excluding_rows:
 * in one large function the bodies' constants and counters were spilled to
 * the stack (a masked row of 16 f32 took about 1.3x the same kernel alone). */
#define EXCLUDING_BODY(name, body_flags)                                                                               \
    static SOFTMAX_NOINLINE void name(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n,       \
                                      size_t mask_size, row_group *g, double scale, const shared_plan *shared)         \
    {                                                                                                                  \
        excluding_groups(op, runs, run_count, n, body_flags, mask_size, g, scale, shared);                             \
    }
EXCLUDING_BODY(excluding_keep, EXCLUDE_KEEP)
EXCLUDING_BODY(excluding_mask, EXCLUDE_MASK)
EXCLUDING_BODY(excluding_half, EXCLUDE_HALF)
EXCLUDING_BODY(excluding_prefix, EXCLUDE_PREFIX)
EXCLUDING_BODY(excluding_keep_prefix, EXCLUDE_KEEP | EXCLUDE_PREFIX)
EXCLUDING_BODY(excluding_any_half, EXCLUDE_KEEP | EXCLUDE_HALF | EXCLUDE_PREFIX | GROUP_CHECKED)
EXCLUDING_BODY(excluding_any_mask, EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_PREFIX | GROUP_CHECKED)
#undef EXCLUDING_BODY

/* See softmax_kernels.excluding_rows. */
static bool excluding_rows(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n, int mask_type,
                           double scale)
{
    if ((op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) || run_count == 0 || n == 0 ||
        n > SMALL_VECTORS * LANES || mask_type < 0 || mask_type > 3)
        return false;
    size_t count = 0, keeps = 0, masks = 0;
    bool prefix = false;
    for (size_t k = 0; k < run_count; k++) {
        const softmax_masked_run *run = &runs[k];
        if (run->count == 0)
            continue;
        count += run->count;
        keeps += run->keep != NULL ? run->count : 0;
        masks += run->mask != NULL ? run->count : 0;
        /* the prefixes are monotone along a run: its shortest is at an end */
        prefix |= run_kept(run, 0, n) < n || run_kept(run, run->count - 1, n) < n;
    }
    if (count == 0)
        return false;
    row_group g;
    g.excluded = scale < 0 ? (T)INFINITY : (T)-INFINITY;
    g.half_minus_inf = mask_type == 2 ? (uint16_t)0xff80u : (uint16_t)0xfc00u;
    const int mask_flag = masks == 0 || mask_type == 0 ? 0 : mask_type == 1 ? EXCLUDE_MASK : EXCLUDE_HALF;
    /* Lines of one call come from one plan: each has a keep (a mask) or
     * none does; mixed ones are served too, testing each pointer. */
    const bool mixed = (keeps != 0 && keeps != count) || (mask_flag != 0 && masks != count);
    const int flags =
        (keeps > 0 ? EXCLUDE_KEEP : 0) | mask_flag | (prefix ? EXCLUDE_PREFIX : 0) | (mixed ? GROUP_CHECKED : 0);
    const size_t mask_size = mask_element_size(mask_type);
    const shared_plan shared = shared_plan_of(scale);
    const unsigned int saved = vec_flush_to_zero_begin();
    /* One specialised body for each single kind (the attention layouts);
     * combinations share a general one per mask type. */
    switch (flags) {
    case EXCLUDE_KEEP:
        excluding_keep(op, runs, run_count, n, mask_size, &g, scale, &shared);
        break;
    case EXCLUDE_MASK:
        excluding_mask(op, runs, run_count, n, mask_size, &g, scale, &shared);
        break;
    case EXCLUDE_HALF:
        excluding_half(op, runs, run_count, n, mask_size, &g, scale, &shared);
        break;
    case EXCLUDE_PREFIX: /* short causal rows (SHORT_CAUSAL_MAX_VECTORS) */
        excluding_prefix(op, runs, run_count, n, mask_size, &g, scale, &shared);
        break;
    case EXCLUDE_KEEP | EXCLUDE_PREFIX:
        excluding_keep_prefix(op, runs, run_count, n, mask_size, &g, scale, &shared);
        break;
    default:
        if (mask_flag == EXCLUDE_HALF)
            excluding_any_half(op, runs, run_count, n, mask_size, &g, scale, &shared);
        else
            excluding_any_mask(op, runs, run_count, n, mask_size, &g, scale, &shared);
        break;
    }
    vec_flush_to_zero_end(saved);
    return true;
}
#define EXCLUDING_ROWS_FN excluding_rows

/* ----------------------------------------- short rows with an added bias */

/* The rows of one group of adding_rows: row_group's rows_x, rows_y, keep
 * and length (the kept prefix, the op's length), and the bias each row
 * adds -- a mask row (T, or half bits: bf16 if bf16, else f16) or slope *
 * j -- with the scale split as scale_hi + scale_lo (see adding, access.h). */
typedef struct added_group {
    row_group rows;
    const void *mask[LANES]; /* added (ADD_MASK, ADD_HALF) or 0 / -inf (EXCLUDE_MASK, EXCLUDE_HALF) */
    T slope_hi[LANES];
    T slope_lo[LANES];
    T scale_hi;
    T scale_lo;
    int bf16;
    uint16_t half_minus_inf;
    /* GROUP_AFFINE (tiny rows): LANES lines of one run, row r at x_first +
     * r * stride -> y_first + r * stride, its mask at mask_first + r *
     * mask_step bytes, every slope slope_hi[0] + slope_lo[0]; only the
     * lengths are per row. */
    const T *x_first;
    T *y_first;
    size_t stride;
    const char *mask_first;
    int64_t mask_step;
    /* ADD_REDUCED: mask holds each row's g and low its lo (a bias reduced
     * once, rows/reduced_bias.h; low_first for GROUP_AFFINE, at the mask's
     * step), and c_hi + c_lo is the scale times log2(e). */
    const T *low[LANES];
    const T *low_first;
    T c_hi;
    T c_lo;
} added_group;

static SOFTMAX_FORCE_INLINE const T *added_x(const added_group *ag, int flags, size_t r)
{
    return (flags & GROUP_AFFINE) ? ag->x_first + r * ag->stride : ag->rows.rows_x[r];
}

static SOFTMAX_FORCE_INLINE T *added_y(const added_group *ag, int flags, size_t r)
{
    return (flags & GROUP_AFFINE) ? ag->y_first + r * ag->stride : ag->rows.rows_y[r];
}

static SOFTMAX_FORCE_INLINE const void *added_mask(const added_group *ag, int flags, size_t r)
{
    if (flags & GROUP_AFFINE)
        return ag->mask_first != NULL ? ag->mask_first + (int64_t)r * ag->mask_step : NULL;
    return ag->mask[r];
}

static SOFTMAX_FORCE_INLINE const T *added_low(const added_group *ag, int flags, size_t r)
{
    if (flags & GROUP_AFFINE)
        return (const T *)(const void *)((const char *)ag->low_first + (int64_t)r * ag->mask_step);
    return ag->low[r];
}

/* Elements i .. i + count (<= LANES) of row r as z = high + *low, the
 * high part returned: adding() of the line kernels on that row. Lanes past
 * count read high -inf, low 0. *x_read gets x as read (0 past count). */
static SOFTMAX_FORCE_INLINE V added_read(const added_group *ag, int flags, size_t r, size_t i, size_t count, V *low,
                                         V *x_read)
{
    const void *mask = added_mask(ag, flags, r);
    const size_t slope_row = (flags & GROUP_AFFINE) ? 0 : r;
    const row_masks ex = {.keep = group_keep(&ag->rows, flags, r),
                          .mask = (flags & EXCLUDE_MASK) ? (const T *)mask : NULL,
                          .half_mask = (flags & EXCLUDE_HALF) ? (const uint16_t *)mask : NULL,
                          .half_minus_inf = ag->half_minus_inf,
                          .excluded = (T)-INFINITY,
                          .kept = count,
                          .add_mask = (flags & ADD_MASK) ? (const T *)mask : NULL,
                          .add_half = (flags & ADD_HALF) ? (const uint16_t *)mask : NULL,
                          .add_bf16 = ag->bf16,
                          .scale_hi = ag->scale_hi,
                          .scale_lo = ag->scale_lo,
                          .slope_hi = ag->slope_hi[slope_row],
                          .slope_lo = ag->slope_lo[slope_row]};
    const T *x = added_x(ag, flags, r);
    const V v = count == LANES ? P(load)(x + i) : P(load_tail)(x + i, count, (T)0);
    *x_read = v;
    return adding(v, &ex, flags, i, count, low);
}

/* -log(sum) per lane, unsnapped: with an added bias the row's maximum is
 * the high part of the largest z, and the log-sum may be just below 0. */
static inline V added_neg_log_sums(V high, V low, V row_max, V offset, const shared_plan *shared)
{
#if defined(NEG_LOG_SUM_VECTOR)
    return P(neg_log_sum)(high, low, row_max, offset, shared->c_hi, shared->c_lo);
#else
    T highs[LANES], lows[LANES], maxima[LANES], offsets[LANES], out[LANES];
    P(store)(highs, high);
    P(store)(lows, low);
    P(store)(maxima, row_max);
    P(store)(offsets, offset);
    for (size_t l = 0; l < LANES; l++)
        out[l] = (T)0 - (T)computed_log_sum(wide_sum_of(highs[l], lows[l]),
                                            offset_remainder(shared->c_hi, shared->c_lo, maxima[l], offsets[l]));
    return P(load)(out);
#endif
}

/* Row r's output where the group writes its values; NULL for a row it
 * declined (bit r of planned clear: the caller's) and for a row with a NaN
 * logit (bit r of number clear), which is filled with NaN here, as the line
 * kernels fill it. */
static SOFTMAX_FORCE_INLINE T *added_output_row(const added_group *ag, int flags, unsigned planned, unsigned number,
                                                size_t r, size_t n)
{
    if (!((planned >> r) & 1u))
        return NULL;
    T *out_row = added_y(ag, flags, r);
    if (!((number >> r) & 1u)) {
        fill_row(out_row, 0, n, (T)NAN);
        return NULL;
    }
    return out_row;
}

/* Row r of a group of rows of more than one vector written to out_row
 * from its stored pairs (a, b; a_row may be out_row): softmax (e + residual) * (first + second),
 * the halves of the reciprocal of its sum, or for log-softmax z's parts
 * (high - max) + (low - log-sum), second the -log-sum; then filled to n. */
static SOFTMAX_FORCE_INLINE void write_group_row(bool log_output, T *out_row, const T *a_row, const T *b_row,
                                                 size_t length, size_t n, V first, V second, V maxima)
{
    const size_t vectors = (length + LANES - 1) / LANES;
    for (size_t i = 0; i < vectors; i++) {
        const size_t lanes_here = length - i * LANES < LANES ? length - i * LANES : LANES;
        /* a_row may be the output row itself: nothing read past its end. */
        const V a = lanes_here == LANES ? P(load)(a_row + i * LANES) : P(load_tail)(a_row + i * LANES, lanes_here, 0);
        const V b = P(load)(b_row + i * LANES);
        V out;
        if (log_output) /* (high - max) + (low - log-sum) */
            out = added_log_output(P(add)(P(sub)(a, maxima), P(add)(output_low(b), second)));
        else
            out = apply_reciprocal(a, b, first, second);
        if (lanes_here == LANES)
            P(store)(out_row + i * LANES, out);
        else
            P(store_tail)(out_row + i * LANES, out, lanes_here);
    }
    fill_row(out_row, length, n, log_output ? (T)-INFINITY : (T)0);
}

/* Up to LANES rows (count) of an added bias, each the op on its first
 * length[r] elements (1 <= length[r] <= SMALL_VECTORS * LANES) with scale
 * 1 on z = scale * x + bias, then filled to n (0, log-softmax -inf), as
 * the line kernels' read_row_body computes a row: z read once as high +
 * low parts (kept here), low taken into the exps' arguments (exp_parts_added), the sums split
 * as in the small rows and reduced in lanes (lane r = row r). Rows of
 * which the maximum is not finite or beyond ADDED_MASK_MAX_LIMIT, or the
 * offset out of range, are left unwritten and marked in *declined (bit r).
 * y is written only after every row of the group is read (in place). */
static SOFTMAX_FORCE_INLINE void added_group_run(softmax_op op, const added_group *ag, int flags, size_t count,
                                                 size_t n, const shared_plan *shared, unsigned *declined)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    _Alignas(64) T highs_of[LANES * SMALL_VECTORS * LANES];
    _Alignas(64) T lows_of[LANES * SMALL_VECTORS * LANES];
    V lanes[LANES];
    /* x's range (product_low: a scale not a power of two; ALiBi's slope *
     * j stays below 2^11 on rows this short, its slopes below 1): a group
     * with an x beyond the limit is declined whole. */
    V top = P(set1)((T)0), bottom = top;
    for (size_t r = 0; r < LANES; r++) {
        if (r >= count) {
            lanes[r] = P(set1)((T)0);
            continue;
        }
        const size_t length = ag->rows.length[r], vectors = (length + LANES - 1) / LANES;
        T *high_row = highs_of + r * SMALL_VECTORS * LANES, *low_row = lows_of + r * SMALL_VECTORS * LANES;
        V m = P(set1)((T)-INFINITY);
        for (size_t i = 0; i < vectors; i++) {
            const size_t lanes_here = length - i * LANES < LANES ? length - i * LANES : LANES;
            /* The next group's rows (adjacent lines, usually) come in while
             * this one is computed: nothing else hides their latency. */
            vec_prefetch(added_x(ag, flags, r) + LANES * n + i * LANES);
            V low, x_read;
            const V z = added_read(ag, flags, r, i * LANES, lanes_here, &low, &x_read);
            P(store)(high_row + i * LANES, z);
            P(store)(low_row + i * LANES, low);
            m = P(max)(z, m);
            if (product_low(flags, 0, 0))
                range_of(x_read, &top, &bottom);
        }
        lanes[r] = m;
    }
    V row_max, offset;
    T block_maxima[LANES], offsets[LANES], floors[LANES];
    const unsigned group_lanes = count == LANES ? (unsigned)((1ull << LANES) - 1) : (1u << count) - 1;
    /* The low parts stay small (exp_parts_added) only for logits of moderate size. */
    const unsigned usable = group_constants(lanes, shared->c_hi, shared->c_lo, shared->inverse_c, &row_max, &offset,
                                            block_maxima, offsets, floors);
    const bool within = !product_low(flags, 0, 0) || product_within_limit(top, bottom, ag->scale_hi);
    const unsigned planned =
        within
            ? group_lanes & usable & ~P(lanes_below)(P(set1)((T)ADDED_MASK_MAX_LIMIT), P(max)(row_max, P(neg)(row_max)))
            : 0;
    *declined = group_lanes & ~planned;

    /* The exps (softmax: kept in place of the parts) and the split sums. */
    V highs[LANES], lows[LANES];
    for (size_t r = 0; r < LANES; r++) {
        highs[r] = lows[r] = P(set1)((T)0);
        if (!((planned >> r) & 1u))
            continue;
        const size_t vectors = (ag->rows.length[r] + LANES - 1) / LANES;
        T *high_row = highs_of + r * SMALL_VECTORS * LANES, *low_row = lows_of + r * SMALL_VECTORS * LANES;
        const exp_args a = {P(set1)(floors[r]), P(set1)(shared->c_hi), P(set1)(shared->c_lo), P(set1)(-offsets[r])};
        V hi = P(set1)((T)0), lo = hi;
        for (size_t i = 0; i < vectors; i++) {
            const V high = P(load)(high_row + i * LANES);
            /* A vector the bias excludes whole (-inf): exps and residuals 0,
             * the sums unchanged (as in exp_block_excluding). */
            if (minus_infinity_lanes(high) == ALL_LANES) {
                if (!log_output) {
                    P(store)(high_row + i * LANES, P(set1)((T)0));
                    P(store)(low_row + i * LANES, P(set1)((T)0));
                }
                continue;
            }
            exp_parts p = exp_parts_added(high, P(load)(low_row + i * LANES), &a);
            const V e = P(scale_pow2)(p.mantissa, p.k), residual = P(scale_pow2)(p.residual, p.k);
            if (!log_output) {
                P(store)(high_row + i * LANES, e);
                P(store)(low_row + i * LANES, residual);
            }
            const V h = grid_high_small(e);
            hi = P(add)(hi, h);
            lo = P(add)(lo, P(add)(P(sub)(e, h), residual));
        }
        highs[r] = hi;
        lows[r] = lo;
    }
    V high, low;
    const unsigned number = group_sums(highs, lows, &high, &low);

    V first, second;
    if (log_output) {
        first = P(set1)((T)0);
        second = added_neg_log_sums(high, low, row_max, offset, shared);
    } else {
        P(reciprocal_halves)(high, low, NORMALIZE_SCALE, &first, &second);
    }
    T firsts[LANES], seconds[LANES];
    P(store)(firsts, first);
    P(store)(seconds, second);
    for (size_t r = 0; r < count; r++) {
        T *out_row = added_output_row(ag, flags, planned, number, r, n);
        if (out_row != NULL)
            write_group_row(log_output, out_row, highs_of + r * SMALL_VECTORS * LANES,
                            lows_of + r * SMALL_VECTORS * LANES, ag->rows.length[r], n, P(set1)(firsts[r]),
                            P(set1)(seconds[r]), P(set1)(block_maxima[r]));
    }
}

/* The rows of a tiny group from its transposed outputs out[r] (row r),
 * each filled from its length to n with `fill`; declined and NaN rows as
 * added_output_row has them. A softmax fill (+0) is what the lanes past a
 * row's length hold already (their exps are 0: -inf z, or g): the row is
 * stored whole, not stored to its length and then filled (a memset of up
 * to 60 bytes per row took a sixth of an ALiBi + causal call at T = 16). */
static SOFTMAX_FORCE_INLINE void store_tiny_rows(const added_group *ag, int flags, unsigned planned, unsigned number,
                                                 size_t count, size_t n, const V out[LANES], T fill)
{
    for (size_t r = 0; r < count; r++) {
        T *out_row = added_output_row(ag, flags, planned, number, r, n);
        if (out_row == NULL)
            continue;
        const size_t length = ag->rows.length[r];
        if (n == LANES && (length == LANES || fill == 0)) {
            P(store)(out_row, out[r]);
        } else if (fill == 0) {
            P(store_tail)(out_row, out[r], n);
        } else {
            P(store_tail)(out_row, out[r], length);
            fill_row(out_row, length, n, fill);
        }
    }
}

/* ALiBi on a GROUP_AFFINE group of tiny rows (one head: one slope), on
 * AVX-512 f32: z formed in columns. x is transposed alone, not z's two
 * parts, and the bias of column j is the same for every row, slope * j
 * computed once for the group, not per row; each row's causal prefix
 * applies to the columns as in tiny_group_vectors. Elementwise the
 * operations of added_read (x read 0 past the row's prefix, z's high part
 * -inf there): the same bits. */
static SOFTMAX_FORCE_INLINE bool slope_in_columns(int flags)
{
    return PREFIX_IN_COLUMNS && (flags & ADD_SLOPE) && (flags & GROUP_AFFINE) && !(flags & EXCLUDING);
}

static SOFTMAX_FORCE_INLINE void slope_columns(const added_group *ag, int flags, size_t n, V high_of[LANES],
                                               V low_of[LANES], V *top, V *bottom)
{
#if PREFIX_IN_COLUMNS
    V x_of[LANES];
    TINY_UNROLL
    for (size_t r = 0; r < LANES; r++) {
        const T *x = added_x(ag, flags, r);
        vec_prefetch(x + LANES * n);
        x_of[r] = n == LANES ? P(load)(x) : P(load_tail)(x, n, (T)0);
        range_of(x_of[r], top, bottom); /* past a row's prefix too: a decline at most */
    }
    P(transpose)(x_of);
    _Alignas(64) T bias_of[LANES], rest_of[LANES];
    V rest;
    P(store)(bias_of, slope_bias(P(load)(lane_index), ag->slope_hi[0], ag->slope_lo[0], &rest));
    P(store)(rest_of, rest);
    const __m512i kept = lanes_of_counts(ag->rows.length);
    TINY_UNROLL
    for (size_t j = 0; j < LANES; j++) {
        if (j >= n) { /* never read */
            high_of[j] = P(set1)((T)-INFINITY);
            low_of[j] = P(set1)((T)0);
            continue;
        }
        const __mmask16 past = lanes_past(kept, j);
        const V x = _mm512_mask_blend_ps(past, x_of[j], P(set1)((T)0));
        const V high =
            added_sum(x, P(set1)(bias_of[j]), P(set1)(rest_of[j]), ag->scale_hi, ag->scale_lo, flags, &low_of[j]);
        high_of[j] = _mm512_mask_blend_ps(past, high, P(set1)((T)-INFINITY));
    }
#else
    (void)ag, (void)flags, (void)n, (void)high_of, (void)low_of, (void)top, (void)bottom;
#endif
}

/* added_group_run on rows of at most one vector (n <= LANES; n == LANES a
 * constant where inlined so), transposed in registers as tiny_group_vectors
 * is: column j of the group in one vector (lane r = row r). The maxima, the
 * per-row constants and the sums are then vertical operations, and z's two
 * parts, the exps and the outputs stay in vectors instead of going through
 * per-row buffers and scalar constants (bias-f32 rows of 16 on AVX-512 took
 * about 2.1x the unmasked call that way). Lane for lane the operations of
 * added_group_run in its order -- the maximum of each column after
 * max(z, -inf), 0 + each low partial sum, the columns' low parts in the tree
 * of group_sums -- so that every row gets the same bits. */
static SOFTMAX_FORCE_INLINE void added_tiny_group_run(softmax_op op, const added_group *ag, int flags, size_t count,
                                                      size_t n, const shared_plan *shared, unsigned *declined)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const V zero = P(set1)((T)0), minus_inf = P(set1)((T)-INFINITY);
    V high_of[LANES], low_of[LANES];
    /* x's range (product_low: a scale not a power of two; ALiBi's slope *
     * j stays below 2^11 on rows this short, its slopes below 1): a group
     * with an x beyond the limit is declined whole. */
    V top = zero, bottom = zero;
    if (slope_in_columns(flags)) {
        slope_columns(ag, flags, n, high_of, low_of, &top, &bottom);
    } else {
        TINY_UNROLL
        for (size_t r = 0; r < LANES; r++) {
            if (r >= count) {
                high_of[r] = low_of[r] = zero;
                continue;
            }
            vec_prefetch(added_x(ag, flags, r) + LANES * n);
            V x_read;
            high_of[r] = added_read(ag, flags, r, 0, ag->rows.length[r], &low_of[r], &x_read);
            if (product_low(flags, 0, 0))
                range_of(x_read, &top, &bottom);
        }
        P(transpose)(high_of);
        P(transpose)(low_of);
    }
    /* Columns past n hold -inf (the bias's fill): they change no maximum. */
    V row_max = P(max)(high_of[0], minus_inf);
    TINY_UNROLL
    for (size_t j = 1; j < n; j++)
        row_max = P(max)(P(max)(high_of[j], minus_inf), row_max);
    V offset, x_floor;
    const unsigned usable = lane_constants(row_max, shared->c_hi, shared->c_lo, shared->inverse_c, &offset, &x_floor);
    const unsigned group_lanes = count == LANES ? (unsigned)((1ull << LANES) - 1) : (1u << count) - 1;
    const bool within = !product_low(flags, 0, 0) || product_within_limit(top, bottom, ag->scale_hi);
    const unsigned planned =
        within
            ? group_lanes & usable & ~P(lanes_below)(P(set1)((T)ADDED_MASK_MAX_LIMIT), P(max)(row_max, P(neg)(row_max)))
            : 0;
    *declined = group_lanes & ~planned;

    /* Lanes of declined rows compute garbage, never stored. */
    const exp_args a = {x_floor, P(set1)(shared->c_hi), P(set1)(shared->c_lo), P(neg)(offset)};
    V e[LANES], residual[LANES], low[LANES];
    V high = zero;
    TINY_UNROLL
    for (size_t j = 0; j < LANES; j++) {
        if (j >= n) { /* exps of exactly 0, as the row's tail lanes have */
            e[j] = residual[j] = low[j] = zero;
            continue;
        }
        exp_parts p = exp_parts_added(high_of[j], low_of[j], &a);
        e[j] = P(scale_pow2)(p.mantissa, p.k);
        residual[j] = P(scale_pow2)(p.residual, p.k);
        const V h = grid_high_small(e[j]);
        high = P(add)(high, h); /* h >= +0: the same bits as added_group_run's 0 + h first */
        low[j] = P(add)(zero, P(add)(P(sub)(e[j], h), residual[j]));
    }
    for (size_t half = LANES / 2; half > 0; half /= 2)
        for (size_t j = 0; j < half; j++)
            low[j] = P(add)(low[j], low[j + half]);
    const unsigned number = P(finite_lanes)(high) & P(finite_lanes)(low[0]);

    V first, second;
    if (log_output) {
        first = zero;
        second = added_neg_log_sums(high, low[0], row_max, offset, shared);
    } else {
        P(reciprocal_halves)(high, low[0], NORMALIZE_SCALE, &first, &second);
    }
    V out[LANES];
    TINY_UNROLL
    for (size_t j = 0; j < LANES; j++) {
        if (j >= n)
            out[j] = zero;
        else if (log_output) /* (high - max) + (low - log-sum) */
            out[j] = added_log_output(P(add)(P(sub)(high_of[j], row_max), P(add)(output_low(low_of[j]), second)));
        else
            out[j] = apply_reciprocal(e[j], residual[j], first, second);
    }
    P(transpose)(out);
    const unsigned all_rows = (unsigned)((1ull << LANES) - 1);
    if ((flags & GROUP_AFFINE) && count == LANES && (planned & number) == all_rows) {
        /* Every row of an affine group written: straight-line stores from
         * registers, y and the stride in locals (the loop below reloaded
         * them from ag at every row, the outputs from the stack). */
        T *y = ag->y_first;
        const size_t stride = ag->stride;
        const T fill = log_output ? (T)-INFINITY : (T)0;
        TINY_UNROLL
        for (size_t r = 0; r < LANES; r++) {
            T *out_row = y + r * stride;
            const size_t length = ag->rows.length[r];
            if (n == LANES && length == LANES) {
                P(store)(out_row, out[r]);
            } else if (n == LANES && stride == LANES) {
                P(store)(out_row, P(set1)(fill));
                P(store_tail)(out_row, out[r], length);
            } else {
                P(store_tail)(out_row, out[r], length);
                fill_row(out_row, length, n, fill);
            }
        }
        return;
    }
    store_tiny_rows(ag, flags, planned, number, count, n, out, log_output ? (T)-INFINITY : (T)0);
}

/* ---------------------------------- short rows with a bias reduced once */

/* Elements i .. i + count (<= LANES) of row r of a reduced group: x (0
 * past count), g (-inf past count) and lo (0). */
static SOFTMAX_FORCE_INLINE void reduced_read(const added_group *ag, int flags, size_t r, size_t i, size_t count, V *x,
                                              V *g, V *lo)
{
    const T *xr = added_x(ag, flags, r), *gr = (const T *)added_mask(ag, flags, r), *lr = added_low(ag, flags, r);
    if (count == LANES) {
        *x = P(load)(xr + i), *g = P(load)(gr + i), *lo = P(load)(lr + i);
    } else {
        *x = P(load_tail)(xr + i, count, (T)0);
        *g = P(load_tail)(gr + i, count, (T)-INFINITY);
        *lo = P(load_tail)(lr + i, count, (T)0);
    }
}

/* The rows a reduced group can take, from each row's largest c_hi x + g
 * in lane r of m and whether its x are all finite (bit r of finite): a
 * maximum within +-1024 (which a fully excluded row's -inf is not). */
static SOFTMAX_FORCE_INLINE unsigned reduced_usable(V m, unsigned finite)
{
    return finite & P(lanes_below)(P(max)(m, P(neg)(m)), P(set1)((T)1024.5));
}

/* added_group_run for a bias reduced once (ADD_REDUCED, softmax): rows of
 * more than one vector as reduced_bias_row computes a line -- the
 * maximum of c_hi x + g, B from it (reduced_offset, in lanes), the exps of
 * exp_parts_reduced -- with the small rows' split sums. Rows with a
 * non-finite x or a maximum beyond +-1024 are left to the caller
 * (*declined). */
static SOFTMAX_FORCE_INLINE void reduced_group_run(const added_group *ag, int flags, size_t count, size_t n,
                                                   unsigned *declined)
{
    /* The exps go to y (a row's x is read before its own exps are stored,
     * and the rows are read whole in the max pass: in place is safe), their
     * residuals here, as the unmasked small rows keep them. */
    _Alignas(64) T residuals_of[LANES * SMALL_VECTORS * LANES];
    const V zero = P(set1)((T)0), c_hi = P(set1)(ag->c_hi);
    V lanes[LANES];
    unsigned finite = 0;
    for (size_t r = 0; r < LANES; r++) {
        lanes[r] = P(set1)((T)-INFINITY);
        if (r >= count)
            continue;
        const size_t length = ag->rows.length[r], vectors = (length + LANES - 1) / LANES;
        V m = lanes[r], seen = zero;
        for (size_t i = 0; i < vectors; i++) {
            const size_t lanes_here = length - i * LANES < LANES ? length - i * LANES : LANES;
            /* The next group's x: into L2, as the group's exps, residuals
             * and bias would push it out of L1 before its max pass ([128,
             * 128, 128] with a dense bias: 1.37 -> 1.25x unmasked). */
            vec_prefetch_l2(added_x(ag, flags, r) + LANES * n + i * LANES);
            V x, g, lo;
            reduced_read(ag, flags, r, i * LANES, lanes_here, &x, &g, &lo);
            m = P(max)(P(fmadd)(c_hi, x, g), m);
            seen = P(fmadd)(x, zero, seen); /* NaN from a NaN or infinite x on */
        }
        lanes[r] = m;
        finite |= (P(finite_lanes)(seen) == ALL_LANES) << r;
    }
    P(transpose)(lanes);
    V m = lanes[0];
    for (size_t j = 1; j < LANES; j++)
        m = P(max)(lanes[j], m);
    const unsigned group_lanes = count == LANES ? (unsigned)((1ull << LANES) - 1) : (1u << count) - 1;
    const unsigned planned = group_lanes & reduced_usable(m, finite);
    *declined = group_lanes & ~planned;
    const V offset = reduced_offsets(m);
    T offsets[LANES];
    P(store)(offsets, offset);

    V highs[LANES], lows[LANES];
    for (size_t r = 0; r < LANES; r++) {
        highs[r] = lows[r] = zero;
        if (!((planned >> r) & 1u))
            continue;
        const size_t length = ag->rows.length[r], vectors = (length + LANES - 1) / LANES;
        T *e_row = added_y(ag, flags, r), *r_row = residuals_of + r * SMALL_VECTORS * LANES;
        const exp_args a = {zero, c_hi, P(set1)(ag->c_lo), P(set1)(-offsets[r])};
        V hi = zero, lo_sum = zero;
        for (size_t i = 0; i < vectors; i++) {
            const size_t lanes_here = length - i * LANES < LANES ? length - i * LANES : LANES;
            V x, g, lo, estimate;
            reduced_read(ag, flags, r, i * LANES, lanes_here, &x, &g, &lo);
            /* A vector the bias excludes whole: exps and residuals 0, the
             * sums unchanged. */
            if (minus_infinity_lanes(g) == ALL_LANES) {
                if (lanes_here == LANES)
                    P(store)(e_row + i * LANES, zero);
                else
                    P(store_tail)(e_row + i * LANES, zero, lanes_here);
                P(store)(r_row + i * LANES, zero);
                continue;
            }
            const exp_parts p = exp_parts_reduced(x, g, lo, &a, &estimate);
            const V e = reduced_exp(p.mantissa, p.k, estimate);
            const V residual = reduced_exp(p.residual, p.k, estimate);
            if (lanes_here == LANES)
                P(store)(e_row + i * LANES, e);
            else
                P(store_tail)(e_row + i * LANES, e, lanes_here);
            P(store)(r_row + i * LANES, residual);
            const V h = grid_high_small(e);
            hi = P(add)(hi, h);
            lo_sum = P(add)(lo_sum, P(add)(P(sub)(e, h), residual));
        }
        highs[r] = hi;
        lows[r] = lo_sum;
    }
    V high, low, first, second;
    const unsigned number = group_sums(highs, lows, &high, &low);
    P(reciprocal_halves)(high, low, NORMALIZE_SCALE, &first, &second);
    T firsts[LANES], seconds[LANES];
    P(store)(firsts, first);
    P(store)(seconds, second);
    for (size_t r = 0; r < count; r++) {
        T *out_row = added_output_row(ag, flags, planned, number, r, n);
        if (out_row != NULL)
            write_group_row(false, out_row, out_row, residuals_of + r * SMALL_VECTORS * LANES, ag->rows.length[r], n,
                            P(set1)(firsts[r]), P(set1)(seconds[r]), zero);
    }
}

/* log2(e) slope * j reduced for j = 0 .. n - 1 (n <= SMALL_VECTORS *
 * LANES, a whole number of vectors written): g[j] + lo[j] as
 * reduce_in_lanes gives it for slope * j's float, its rest in lo. slope *
 * j is below 2^7 here (slopes below 1): within the reduced form's range. */
static SOFTMAX_FORCE_INLINE void slope_reduced(T slope_hi, T slope_lo, size_t n, T *g, T *lo)
{
    V l_hi, l_lo;
    log2e_parts(&l_hi, &l_lo);
    for (size_t i = 0; i < n; i += LANES) {
        V rest, low;
        const V bias = slope_bias(P(add)(P(set1)((T)i), P(load)(lane_index)), slope_hi, slope_lo, &rest);
        P(store)(g + i, reduce_in_lanes(bias, l_hi, l_lo, &low));
        P(store)(lo + i, P(fmadd)(l_hi, rest, low));
    }
}

/* ALiBi's bias slope * j reduced for the columns of a GROUP_AFFINE group
 * of tiny rows (one head: one slope; AVX-512): log2(e) slope * j as g_j +
 * lo_j (slope_reduced, once per run by added_groups, at mask_first and
 * low_first), the same for every row, so that only x is transposed, as
 * slope_columns does; each
 * row's causal prefix applies to the columns (x 0 and g -inf past it).
 * slope * j is below 16 here: within the reduced form's range. */
static SOFTMAX_FORCE_INLINE void slope_reduced_columns(const added_group *ag, int flags, size_t n, V x_of[LANES],
                                                       V g_of[LANES], V lo_of[LANES])
{
#if PREFIX_IN_COLUMNS
    TINY_UNROLL
    for (size_t r = 0; r < LANES; r++) {
        const T *x = added_x(ag, flags, r);
        vec_prefetch(x + LANES * n);
        x_of[r] = n == LANES ? P(load)(x) : P(load_tail)(x, n, (T)0);
    }
    P(transpose)(x_of);
    /* The run's slope * j, reduced once by added_groups. */
    const T *g_at = (const T *)(const void *)ag->mask_first, *lo_at = ag->low_first;
    const __m512i kept = lanes_of_counts(ag->rows.length);
    TINY_UNROLL
    for (size_t j = 0; j < LANES; j++) {
        const __mmask16 past = lanes_past(kept, j);
        x_of[j] = _mm512_mask_blend_ps(past, x_of[j], P(set1)((T)0));
        g_of[j] = _mm512_mask_blend_ps(past, P(set1)(g_at[j]), P(set1)((T)-INFINITY));
        lo_of[j] = P(set1)(lo_at[j]);
    }
#else
    (void)ag, (void)flags, (void)n;
    for (size_t j = 0; j < LANES; j++) {
        x_of[j] = lo_of[j] = P(set1)((T)0);
        g_of[j] = P(set1)((T)-INFINITY);
    }
#endif
}

/* The same for rows of at most one vector, in transposed columns as
 * added_tiny_group_run: x, g and lo of the LANES rows transposed, row r in
 * lane r of every column (for ALiBi, x alone: slope_reduced_columns). */
static SOFTMAX_FORCE_INLINE void reduced_tiny_group_run(const added_group *ag, int flags, size_t count, size_t n,
                                                        unsigned *declined)
{
    const V zero = P(set1)((T)0), c_hi = P(set1)(ag->c_hi);
    V x_of[LANES], g_of[LANES], lo_of[LANES];
    if (flags & ADD_SLOPE) {
        slope_reduced_columns(ag, flags, n, x_of, g_of, lo_of);
    } else {
        TINY_UNROLL
        for (size_t r = 0; r < LANES; r++) {
            if (r >= count) {
                x_of[r] = lo_of[r] = zero;
                g_of[r] = P(set1)((T)-INFINITY);
                continue;
            }
            vec_prefetch(added_x(ag, flags, r) + LANES * n);
            reduced_read(ag, flags, r, 0, ag->rows.length[r], &x_of[r], &g_of[r], &lo_of[r]);
        }
        P(transpose)(x_of);
        P(transpose)(g_of);
        P(transpose)(lo_of);
    }
    V m = P(set1)((T)-INFINITY), seen = zero;
    TINY_UNROLL
    for (size_t j = 0; j < n; j++) {
        m = P(max)(P(fmadd)(c_hi, x_of[j], g_of[j]), m);
        seen = P(fmadd)(x_of[j], zero, seen);
    }
    const unsigned group_lanes = count == LANES ? (unsigned)((1ull << LANES) - 1) : (1u << count) - 1;
    const unsigned planned = group_lanes & reduced_usable(m, P(finite_lanes)(seen));
    *declined = group_lanes & ~planned;
    const V offset = reduced_offsets(m);
    /* Lanes of declined rows compute garbage, never stored. */
    const exp_args a = {zero, c_hi, P(set1)(ag->c_lo), P(neg)(offset)};
    V e[LANES], residual[LANES], low[LANES];
    V high = zero;
    TINY_UNROLL
    for (size_t j = 0; j < LANES; j++) {
        if (j >= n) {
            e[j] = residual[j] = low[j] = zero;
            continue;
        }
        V estimate;
        const exp_parts p = exp_parts_reduced(x_of[j], g_of[j], lo_of[j], &a, &estimate);
        e[j] = reduced_exp(p.mantissa, p.k, estimate);
        residual[j] = reduced_exp(p.residual, p.k, estimate);
        const V h = grid_high_small(e[j]);
        high = P(add)(high, h);
        low[j] = P(add)(zero, P(add)(P(sub)(e[j], h), residual[j]));
    }
    for (size_t half = LANES / 2; half > 0; half /= 2)
        for (size_t j = 0; j < half; j++)
            low[j] = P(add)(low[j], low[j + half]);
    const unsigned number = P(finite_lanes)(high) & P(finite_lanes)(low[0]);
    V first, second;
    P(reciprocal_halves)(high, low[0], NORMALIZE_SCALE, &first, &second);
    V out[LANES];
    TINY_UNROLL
    for (size_t j = 0; j < LANES; j++)
        out[j] = j >= n ? zero : apply_reciprocal(e[j], residual[j], first, second);
    P(transpose)(out);
    store_tiny_rows(ag, flags, planned, number, count, n, out, (T)0);
}

/* One group of an added bias: the tiny, small or reduced body. */
static SOFTMAX_FORCE_INLINE void added_any_group_run(softmax_op op, const added_group *ag, int flags, size_t count,
                                                     size_t n, const shared_plan *shared, unsigned *declined)
{
    /* ALiBi reduced (ADD_SLOPE | ADD_REDUCED) serves GROUP_AFFINE groups:
     * tiny rows in columns (slope_reduced_columns), longer ones as a bias
     * reduced once, the run's slope * j that added_groups put at
     * mask_first and low_first with a step of 0. Groups of rows from
     * several runs (per-row slopes) take the two-sum bodies. */
    if ((flags & ADD_REDUCED) && (flags & ADD_SLOPE)) {
        if (!(flags & GROUP_AFFINE))
            flags &= ~ADD_REDUCED;
        else if (n > LANES)
            flags &= ~ADD_SLOPE;
    }
    if (flags & ADD_REDUCED) {
        if (n == LANES)
            reduced_tiny_group_run(ag, flags, count, LANES, declined);
        else if (n < LANES)
            reduced_tiny_group_run(ag, flags, count, n, declined);
        else
            reduced_group_run(ag, flags, count, n, declined);
        return;
    }
    if (n == LANES) /* n a constant: the column loops unroll whole */
        added_tiny_group_run(op, ag, flags, count, LANES, shared, declined);
    else if (n < LANES)
        added_tiny_group_run(op, ag, flags, count, n, shared, declined);
    else
        added_group_run(op, ag, flags, count, n, shared, declined);
}

/* The lines of the runs from the cursor on (line number *line on) as the
 * rows of ag, up to LANES of them, with their line numbers in line_of;
 * fully masked lines are marked in declined (the general path's fill) and
 * skipped. The cursor moves past them. Returns the number of rows; 0 once
 * the runs are done. Not inlined, as fill_excluding_group. */
static SOFTMAX_NOINLINE size_t fill_added_group(added_group *ag, const softmax_masked_run *runs, size_t run_count,
                                                run_cursor *at, size_t *line, size_t n, size_t mask_size,
                                                bool *declined, size_t line_of[LANES])
{
    /* The cursor and the line number in locals: through their pointers,
     * every row's stores (size_t, as they are) made the compiler keep them
     * in memory, a store-forwarding delay per row (perf put 14 % of a
     * bias-f32 call at T = 16 here; 8 % after, the call no faster: the
     * kernel's own work hid most of it). */
    size_t k = at->k, i = at->i, line_number = *line, rows = 0;
    while (rows < LANES && k < run_count) {
        const softmax_masked_run *run = &runs[k];
        const T slope_hi = (T)run->slope, slope_lo = (T)((WIDE)run->slope - (WIDE)(T)run->slope);
        for (; rows < LANES && i < run->count; i++, line_number++) {
            const size_t kept = run_kept(run, i, n);
            declined[line_number] = kept == 0;
            if (kept == 0)
                continue;
            const int64_t at_line = (int64_t)i;
            ag->rows.rows_x[rows] = run->x + at_line * run->x_step;
            ag->rows.rows_y[rows] = run->y + at_line * run->y_step;
            ag->rows.keep[rows] = run->keep != NULL ? run->keep + at_line * run->keep_step : NULL;
            ag->rows.length[rows] = kept;
            ag->mask[rows] =
                run->mask != NULL ? (const char *)run->mask + at_line * run->mask_step * (int64_t)mask_size : NULL;
            ag->low[rows] = run->low != NULL ? run->low + at_line * run->mask_step : NULL;
            ag->slope_hi[rows] = slope_hi;
            ag->slope_lo[rows] = slope_lo;
            line_of[rows++] = line_number;
        }
        if (i == run->count) {
            k++;
            i = 0;
        }
    }
    at->k = k;
    at->i = i;
    *line = line_number;
    return rows;
}

/* The lines of the runs in groups of LANES; marks in declined (an entry
 * per line) the fully masked ones and those the groups decline. */
static SOFTMAX_FORCE_INLINE void added_groups(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n,
                                              int flags, size_t mask_size, added_group *ag, const shared_plan *shared,
                                              bool *declined)
{
    size_t line_of[LANES], line = 0, rows;
    run_cursor at = {0, 0};
    /* ALiBi reduced: the run's slope * j reduced once (slope_reduced),
     * read by its affine groups as a bias of one row (see
     * added_any_group_run; the tiny ones take its columns). */
    const bool slope_rows = (flags & ADD_SLOPE) && (flags & ADD_REDUCED);
    _Alignas(64) T slope_g[SMALL_VECTORS * LANES], slope_lo[SMALL_VECTORS * LANES];
    size_t slope_run = SIZE_MAX;
    while (at.k < run_count) {
        const softmax_masked_run *run = &runs[at.k];
        /* LANES lines of one run, every one with a kept element, as one
         * GROUP_AFFINE group (see affine_lines): nothing per row to store
         * but the lengths (fill_added_group's stores, read back at once,
         * took a fifth of a bias-f32 call on rows of 16). */
        if (affine_run_lines(run, at.i, n) && run_kept(run, at.i, n) > 0 && run_kept(run, at.i + LANES - 1, n) > 0) {
            const int64_t first = (int64_t)at.i;
            ag->x_first = run->x + first * run->x_step;
            ag->y_first = run->y + first * run->y_step;
            ag->stride = (size_t)run->x_step;
            ag->rows.keep_first = run->keep != NULL ? run->keep + first * run->keep_step : NULL;
            ag->rows.keep_step = run->keep_step;
            ag->mask_step = run->mask_step * (int64_t)mask_size;
            ag->mask_first = run->mask != NULL ? (const char *)run->mask + first * ag->mask_step : NULL;
            ag->low_first = run->low != NULL ? run->low + first * run->mask_step : NULL;
            ag->slope_hi[0] = (T)run->slope;
            ag->slope_lo[0] = (T)((WIDE)run->slope - (WIDE)(T)run->slope);
            if (slope_rows) {
                if (slope_run != at.k) {
                    slope_reduced(ag->slope_hi[0], ag->slope_lo[0], n, slope_g, slope_lo);
                    slope_run = at.k;
                }
                ag->mask_first = (const char *)slope_g;
                ag->low_first = slope_lo;
                ag->mask_step = 0;
            }
            run_kept_lanes(ag->rows.length, run, at.i, n);
            unsigned left = 0;
            added_any_group_run(op, ag, flags | GROUP_AFFINE, LANES, n, shared, &left);
            /* Usually none declined: one store, not LANES shifted bits. */
            if (left == 0)
                memset(declined + line, 0, LANES * sizeof *declined);
            else
                for (size_t r = 0; r < LANES; r++)
                    declined[line + r] = (left >> r) & 1u;
            line += LANES;
            at.i += LANES;
            if (at.i == run->count) {
                at.k++;
                at.i = 0;
            }
            continue;
        }
        /* 0 rows: the runs are done (a group stops only when full or at their end). */
        rows = fill_added_group(ag, runs, run_count, &at, &line, n, mask_size, declined, line_of);
        if (rows == 0)
            break;
        unsigned left = 0;
        added_any_group_run(op, ag, flags, rows, n, shared, &left);
        for (size_t r = 0; r < rows; r++)
            declined[line_of[r]] = (left >> r) & 1u;
    }
}

/* Each kind's body a function of its own, as EXCLUDING_BODY's. */
#define ADDING_BODY(name, body_flags)                                                                                  \
    static SOFTMAX_NOINLINE void name(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n,       \
                                      size_t mask_size, added_group *ag, const shared_plan *shared, bool *declined)    \
    {                                                                                                                  \
        added_groups(op, runs, run_count, n, body_flags, mask_size, ag, shared, declined);                             \
    }
ADDING_BODY(adding_mask_exact, ADD_MASK | ADD_EXACT_SCALE)
ADDING_BODY(adding_mask, ADD_MASK)
ADDING_BODY(adding_mask_keep, ADD_MASK | EXCLUDE_KEEP)
ADDING_BODY(adding_half_exact, ADD_HALF | ADD_EXACT_SCALE)
ADDING_BODY(adding_half, ADD_HALF)
ADDING_BODY(adding_half_keep, ADD_HALF | EXCLUDE_KEEP)
ADDING_BODY(adding_slope_exact, ADD_SLOPE | ADD_EXACT_SCALE)
ADDING_BODY(adding_slope, ADD_SLOPE)
ADDING_BODY(adding_slope_mask, ADD_SLOPE | EXCLUDE_MASK)
ADDING_BODY(adding_slope_mask_keep, ADD_SLOPE | EXCLUDE_MASK | EXCLUDE_KEEP)
ADDING_BODY(adding_slope_half_keep, ADD_SLOPE | EXCLUDE_HALF | EXCLUDE_KEEP)
ADDING_BODY(adding_reduced, ADD_REDUCED)
ADDING_BODY(adding_slope_reduced, ADD_SLOPE | ADD_REDUCED)
#undef ADDING_BODY

/* See softmax_kernels.adding_rows. */
static bool adding_rows(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n, int mask_type,
                        int additive, double scale, bool *declined)
{
    if ((op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) || run_count == 0 || n == 0 ||
        n > SMALL_VECTORS * LANES || mask_type < 0 || mask_type > 4 || (additive && mask_type == 0) ||
        (mask_type == 4 && (op != SOFTMAX_OP_SOFTMAX || !additive)))
        return false;
    /* The kernels run with scale 1 on z = scale * x + bias: the special
     * scales (0, +-inf, NaN, beyond the float range) stay with the general
     * path. */
    if (!(fabs(scale) >= 1e-30 && fabs(scale) <= 1e30))
        return false;
    bool keeps = false, slopes = false;
    for (size_t k = 0; k < run_count; k++) {
        keeps |= runs[k].keep != NULL && runs[k].count > 0;
        slopes |= runs[k].slope != 0 && runs[k].count > 0;
    }
    /* An added mask with ALiBi: not served (the bias would be a sum). */
    if ((additive && slopes) || (!additive && !slopes) || (mask_type == 4 && keeps))
        return false;
    added_group ag;
    ag.scale_hi = (T)scale;
    ag.scale_lo = (T)((WIDE)scale - (WIDE)(T)scale);
    ag.bf16 = mask_type == 2;
    ag.half_minus_inf = mask_type == 2 ? (uint16_t)0xff80u : (uint16_t)0xfc00u;
    const size_t mask_size = mask_element_size(mask_type);
    const shared_plan shared = shared_plan_of(1.0);
    const unsigned int saved = vec_flush_to_zero_begin();
    /* A power-of-two scale (1, 1/8 = 1/sqrt(64) of attention) makes
     * scale * x exact: z's high and low parts are then the two-sum of the
     * product and the bias alone (ADD_EXACT_SCALE, the same bits). */
    int exponent;
    const bool exact_scale = frexp(fabs(scale), &exponent) == 0.5 && ag.scale_lo == 0;
    /* One specialised body for each single kind (the attention layouts),
     * and for each one without keep one for an exact scale; a `where`
     * beside them shares a body per kind (keep tested for NULL). */
    T c_hi, c_lo;
    wide_split(wide_scale_log2e(scale), &c_hi, &c_lo);
    ag.c_hi = c_hi, ag.c_lo = c_lo;
    if (mask_type == 4)
        adding_reduced(op, runs, run_count, n, sizeof(T), &ag, &shared, declined);
    /* ALiBi softmax: slope * j reduced once per run (head), read in the
     * columns of tiny rows (slope_reduced_columns, x alone transposed) or
     * as a bias of one row by longer ones. */
    else if (PREFIX_IN_COLUMNS && mask_type == 0 && !keeps && op == SOFTMAX_OP_SOFTMAX)
        adding_slope_reduced(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (additive && mask_type == 1 && !keeps && exact_scale)
        adding_mask_exact(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (additive && mask_type == 1 && !keeps)
        adding_mask(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (additive && mask_type == 1)
        adding_mask_keep(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (additive && !keeps && exact_scale)
        adding_half_exact(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (additive && !keeps)
        adding_half(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (additive)
        adding_half_keep(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (mask_type == 0 && !keeps && exact_scale)
        adding_slope_exact(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (mask_type == 0 && !keeps)
        adding_slope(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (mask_type == 1 && keeps)
        adding_slope_mask_keep(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else if (mask_type == 1)
        adding_slope_mask(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    else
        adding_slope_half_keep(op, runs, run_count, n, mask_size, &ag, &shared, declined);
    vec_flush_to_zero_end(saved);
    return true;
}
#define ADDING_ROWS_FN adding_rows
#define GROUPED_ROWS_MAX (SMALL_VECTORS * LANES)
#else
/* Paths without f32_exclude decline every line: src/general/blocks.c gathers them. */
#define EXCLUDING_ROWS_FN softmax_portable_excluding_rows
#define ADDING_ROWS_FN softmax_portable_adding_rows
#define GROUPED_ROWS_MAX 0
#endif
