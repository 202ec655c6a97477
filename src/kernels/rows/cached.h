/*
 * rows/cached.h -- one forward row of more than SMALL_VECTORS vectors: the in-cache
 * regime (three reads from the cache) and the switch to the streaming one;
 * the masked and half-precision lines read in place.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ----------------------------------------------------------- forward rows */

/* Where a streaming softmax row keeps the exps (and their residuals, n
 * further on) of its first pass: the thread's workspace, so that its
 * writing pass rescales them (rescale) instead of computing every exp
 * a second time, and x is intact until then (in place, a row with a special
 * value still finds its input when the plan fails at the end of the first
 * pass). NULL (the two-exp path: exp_normalize_stream) for log-softmax,
 * which needs no exps to write, for rows beyond STORED_STREAM_BYTES, or
 * when no workspace can be had.
 * (STORED_STREAM_BYTES: thresholds.h). */

static T *stream_exps(softmax_op op, size_t n)
{
    if (op != SOFTMAX_OP_SOFTMAX || n * sizeof(T) > STORED_STREAM_BYTES)
        return NULL;
    return softmax_workspace(2 * n * sizeof(T));
}

static size_t block_count(size_t n)
{
    return (n + SUM_BLOCK - 1) / SUM_BLOCK;
}

/* A log-softmax output of a row with an added mask: never above 0 (the
 * low part can make it so), and 0 above -LOG_SUM_ZERO_BELOW (one ulp of 1):
 * only an element of probability near 1 gets there, so that a row's only
 * kept element gets exactly 0, for at most an ulp of 1 (log_sum_from's
 * rule). NaN stays NaN. */
static inline V added_log_output(V out)
{
    const V y = P(min)(P(set1)((T)0), out);
    return P(keep_nan)(P(zero_below)(y, P(neg)(y), P(set1)((T)LOG_SUM_ZERO_BELOW)), y);
}

/* y = s * (x - row_max) - log_sum: |y| >= |s * (x - row_max)|, so the
 * rounding of x - row_max costs at most half an ulp of y. With an added
 * mask (s = 1), y = (high - row_max) + (low - log_sum). */
static SOFTMAX_FORCE_INLINE void log_softmax_output_reading(const void *x, void *y, size_t begin, size_t end, T row_max,
                                                            T scale_t, T log_sum, const row_masks *ex, int io_flags)
{
    const V ref = P(set1)(row_max), s = P(set1)(scale_t),
            neg_log_sum = P(set1)((T)0 - log_sum); /* +0, not -0, for a sum of 1 */
    /* s * (z - max) <= 0 and -log_sum <= 0: the output is never above 0.
     * An added mask's low part can be: see added_log_output. */
    size_t i = begin;
    V low;
    for (; i + LANES <= end; i += LANES) {
        const V z = read_pair(x, ex, io_flags, i, &low);
        const V out =
            P(fmadd)(s, P(sub)(z, ref), (io_flags & ADDING) ? P(add)(output_low(low), neg_log_sum) : neg_log_sum);
        write_vector(y, io_flags, i, (io_flags & ADDING) ? added_log_output(out) : out);
    }
    if (i < end) {
        const V z = read_tail_pair(x, ex, io_flags, i, end - i, 0, &low);
        const V out =
            P(fmadd)(s, P(sub)(z, ref), (io_flags & ADDING) ? P(add)(output_low(low), neg_log_sum) : neg_log_sum);
        write_tail(y, io_flags, i, (io_flags & ADDING) ? added_log_output(out) : out, end - i);
    }
}

static void log_softmax_output(const T *x, T *y, size_t begin, size_t end, T row_max, T scale_t, T log_sum)
{
    log_softmax_output_reading(x, y, begin, end, row_max, scale_t, log_sum, NULL, 0);
}

static T log_sum_of(WIDE sum, const row_plan *plan)
{
    return log_sum_from(sum, plan->offset_error);
}

/* Phase 1 for the in-cache regime: the row maximum over blocks
 * [b0, b1). */
static T row_max_over(const T *x, size_t n, size_t b0, size_t b1, double scale)
{
    size_t begin = b0 * SUM_BLOCK, end = b1 * SUM_BLOCK < n ? b1 * SUM_BLOCK : n;
    return row_max_of(x + begin, end - begin, scale);
}

/* What every row of a call shares: c = |scale| log2(e) split in two, 1/c,
 * and the sign. Computed once per call; `valid` is false for the scales
 * the contract treats specially (0, +-inf). */
typedef struct shared_plan {
    bool valid;
    bool negate;
    T c_hi;
    T c_lo;
    T inverse_c;
} shared_plan;

static shared_plan shared_plan_of(double scale)
{
    shared_plan shared = {false, false, 0, 0, 0};
    row_plan plan;
    if (!plan_row(scale, 0, &plan))
        return shared;
    shared.valid = true;
    shared.negate = plan.negate;
    shared.c_hi = plan.c_hi;
    shared.c_lo = plan.c_lo;
    shared.inverse_c = wide_inverse(plan.c_hi, plan.c_lo);
    return shared;
}

static void small_forward_row(softmax_op op, const T *x, T *y, size_t n, double scale, const shared_plan *shared);

/* residuals: room for n elements, used by softmax rows in the in-cache
 * regime. */
static void blocks_forward_row(softmax_op op, const T *x, T *y, T *residuals, size_t n, double scale);

static void forward_row(softmax_op op, const T *x, T *y, T *residuals, size_t n, double scale,
                        const shared_plan *shared)
{
    if (n <= SMALL_VECTORS * LANES)
        small_forward_row(op, x, y, n, scale, shared);
    else
        blocks_forward_row(op, x, y, residuals, n, scale);
}

/* forward_row through the blocks of the in-cache and streaming regimes, for
 * any n > 0 (residuals: room for n elements in the in-cache regime). The
 * grouped small-row kernels are faster for many rows of one short length,
 * this for a single one. */
static void blocks_forward_row(softmax_op op, const T *x, T *y, T *residuals, size_t n, double scale)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    const size_t blocks = block_count(n);
    row_plan plan;
    WIDE sum;
    if (n * sizeof(T) <= STREAM_BYTES) {
        if (!plan_row(scale, row_max_of(x, n, scale), &plan)) {
            softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
            return;
        }
        exp_args a = broadcast_plan(&plan);
        /* While this row's exps are computed, the next row comes in. */
        sum = exp_blocks(x, log_output ? NULL : y, log_output ? NULL : residuals, 0, blocks, n, &a, plan.negate, n);
        if (wide_is_nan(sum)) {
            fill_row(y, 0, n, (T)NAN);
            return;
        }
        if (log_output)
            log_softmax_output(x, y, 0, n, plan.row_max, (T)scale, (T)log_sum_of(sum, &plan));
        else
            normalize(y, residuals, 0, n, reciprocal_of(sum));
        return;
    }
    /* Streaming: summaries of every block, then one writing pass. */
    /* At least 64 blocks here: one allocation is negligible next to the row. */
    block_summary *summaries = malloc(blocks * sizeof *summaries);
    T *stored = stream_exps(op, n);
    bool planned = false;
    if (summaries != NULL) {
        for (size_t b = 0; b < blocks; b++) {
            size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
            summaries[b] = summarize_block(x, stored, stored ? stored + n : NULL, begin, end, scale);
        }
        planned = combine_summaries(summaries, blocks, scale, &plan, &sum);
    }
    if (!planned) {
        free(summaries);
        softmax_line_run(&REF_LINES, op, x, NULL, y, n, 1, scale);
        return;
    }
    if (wide_is_nan(sum)) {
        free(summaries);
        fill_row(y, 0, n, (T)NAN);
        return;
    }
    exp_args a = broadcast_plan(&plan);
    if (log_output) {
        log_softmax_output(x, y, 0, n, plan.row_max, (T)scale, (T)log_sum_of(sum, &plan));
    } else if (stored != NULL) {
        const reciprocal r = reciprocal_of(sum);
        for (size_t b = 0; b < blocks; b++) {
            size_t begin = b * SUM_BLOCK, end = begin + SUM_BLOCK < n ? begin + SUM_BLOCK : n;
            rescale(stored + begin, stored + n + begin, y + begin, end - begin, summaries[b].offset - plan.offset, r,
                    true);
        }
    } else {
        exp_normalize_stream(x, y, 0, n, &a, plan.negate, reciprocal_of(sum), true);
    }
    free(summaries);
}

#if defined(HALF_ROWS)
/* The in-cache regime of forward_row reading x through read_vector: y and
 * residuals have room for n elements (the exps and their residuals), out
 * gets the outputs (y itself unless io_flags has DEST_HALF). Returns
 * SOFTMAX_ROW_DONE, or, having written nothing, SOFTMAX_ROW_DECLINED for
 * rows that need the general path and SOFTMAX_ROW_MASK_ADDS for a mask
 * that CHECK_MASK finds adding. */
static SOFTMAX_FORCE_INLINE int read_row_body(softmax_op op, const void *x, const row_masks *ex, int io_flags, size_t n,
                                              double scale, T *y, T *residuals, void *out)
{
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    /* With an added bias a causal row is computed over its kept prefix
     * only, the rest filled (as prefix_rows does); elsewhere over the whole
     * row, bit for bit the gathered path. */
    const size_t used = (io_flags & ADDING) && (io_flags & EXCLUDE_PREFIX) ? ex->kept : n;
    const int inner = (io_flags & ADDING) ? io_flags & ~EXCLUDE_PREFIX : io_flags;
    const unsigned int saved = vec_flush_to_zero_begin();
    /* A causal row reads a prefix one element longer than the row before:
     * the hardware's stream prefetch does not follow, and the kernels' own
     * prefetch (one row length ahead, during the exps) comes too late for
     * short rows. The row ROW_AHEAD on is asked for here, as prefix_rows
     * does (attention 256x512x512, ALiBi + causal: 0.63 -> 0.55 ns/element
     * single-thread; full rows did not gain, so they do not ask). */
    if (io_flags & EXCLUDE_PREFIX)
        prefetch_span((const T *)x + ROW_AHEAD * n, used + ROW_AHEAD);
    bool mask_adds = false;
    /* An f32 row with exclusions alone: the max pass keeps it as the
     * kernels see it (excluded elements -inf, +inf for a negative scale) in
     * the workspace, and the exps and log-softmax outputs read it there,
     * not x and the mask a second time (rows of 4096 with a causal [T, T]
     * f32 mask from memory: 1.37x -> 1.17x the unmasked call; see
     * docs/performance.md). The same values: the same bits. An added bias
     * is not staged: its two parts doubled the staged bytes and measured
     * no faster at 4096, slower at 1024. */
    const bool staged = (inner & EXCLUDING) && !(inner & (ADDING | SOURCE_BF16 | SOURCE_F16));
    T *stage = staged ? residuals : NULL;
    /* z's low part holds scale * x's rounding error (a scale not a power
     * of two) or slope * j's (ALiBi): below 2^-12, as exp_parts_added
     * needs, where z is moderate only for |scale * x| within
     * ADDED_PRODUCT_LIMIT. Rows beyond (a large x that the bias cancels)
     * take the general path. */
    T reach = 0;
    const T row_max = row_max_staging(x, used, scale, ex, inner, (io_flags & CHECK_MASK) ? &mask_adds : NULL, stage,
                                      product_low(inner, (inner & ADD_SLOPE) ? ex->slope_hi : 0, used) ? &reach : NULL);
    if (mask_adds) {
        vec_flush_to_zero_end(saved);
        return SOFTMAX_ROW_MASK_ADDS;
    }
    row_plan plan;
    /* Added biases: the low parts stay small (see exp_parts_added) only for
     * logits of moderate size; rows beyond, and fully masked ones, take the
     * general path. */
    const bool moderate = !(io_flags & ADDING) || (T_FABS(row_max) <= (T)ADDED_MASK_MAX_LIMIT &&
                                                   T_FABS(ex->scale_hi) * reach <= (T)ADDED_PRODUCT_LIMIT);
    if (used == 0 || !moderate || !plan_row(scale, row_max, &plan)) {
        vec_flush_to_zero_end(saved);
        return SOFTMAX_ROW_DECLINED;
    }
    const exp_args a = broadcast_plan(&plan);
    WIDE sum = 0;
    /* The blocks of exp_blocks, the next row asked for as there. */
    for (size_t begin = 0; begin < used; begin += SUM_BLOCK) {
        const size_t end = begin + SUM_BLOCK < used ? begin + SUM_BLOCK : used;
        if (staged) /* log-softmax keeps the staged row: no residuals */
            sum += exp_block_reading(stage, log_output ? NULL : y, log_output ? NULL : residuals, begin, end, &a,
                                     plan.negate, n, NULL, STAGED, x, ex, inner);
        else
            sum += exp_block_excluding(x, log_output ? NULL : y, residuals, begin, end, &a, plan.negate, n, ex, inner);
    }
    if (isnan(sum)) {
        fill_out(out, io_flags, 0, n, (T)NAN);
    } else {
        if (log_output)
            log_softmax_output_reading(staged ? (const void *)stage : x, out, 0, used, plan.row_max, (T)scale,
                                       (inner & ADDING) ? (T)computed_log_sum(sum, plan.offset_error)
                                                        : (T)log_sum_of(sum, &plan),
                                       staged ? NULL : ex, staged ? STAGED | (inner & DEST_HALF) : inner);
        else
            normalize_into(out, io_flags, y, residuals, 0, used, reciprocal_of(sum));
        fill_out(out, io_flags, used, n, log_output ? (T)-INFINITY : (T)0);
    }
    vec_flush_to_zero_end(saved);
    return SOFTMAX_ROW_DONE;
}

/* Each io_flags of excluding_row and half_line a function of its own, not
 * inlined into them: with ten copies of read_row_body in one function gcc
 * stopped inlining their helpers (the exps, the accumulators, the
 * reciprocal were calls: a `where` row of 256 f32 took about 1.4x the
 * unmasked row). */
#define READ_ROW_BODY(name, body_flags)                                                                                \
    static SOFTMAX_NOINLINE int name(softmax_op op, const void *x, const row_masks *ex, size_t n, double scale, T *y,  \
                                     T *residuals, void *out)                                                          \
    {                                                                                                                  \
        return read_row_body(op, x, ex, body_flags, n, scale, y, residuals, out);                                      \
    }
READ_ROW_BODY(read_row_keep, EXCLUDE_KEEP)
READ_ROW_BODY(read_row_mask, EXCLUDE_MASK)
READ_ROW_BODY(read_row_half_mask, EXCLUDE_HALF)
READ_ROW_BODY(read_row_add_mask, ADD_MASK)
READ_ROW_BODY(read_row_add_half, ADD_HALF)
READ_ROW_BODY(read_row_slope_prefix, ADD_SLOPE | EXCLUDE_PREFIX)
READ_ROW_BODY(read_row_add_mask_exact, ADD_MASK | ADD_EXACT_SCALE)
READ_ROW_BODY(read_row_add_half_exact, ADD_HALF | ADD_EXACT_SCALE)
READ_ROW_BODY(read_row_slope_prefix_exact, ADD_SLOPE | EXCLUDE_PREFIX | ADD_EXACT_SCALE)
READ_ROW_BODY(read_row_any_slope, ADD_SLOPE | EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_HALF | EXCLUDE_PREFIX)
READ_ROW_BODY(read_row_any_add_mask, ADD_MASK | EXCLUDE_KEEP | EXCLUDE_PREFIX)
READ_ROW_BODY(read_row_any_add_half, ADD_HALF | EXCLUDE_KEEP | EXCLUDE_PREFIX)
READ_ROW_BODY(read_row_any_exclusion, EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_HALF | EXCLUDE_PREFIX)
READ_ROW_BODY(read_row_bf16, SOURCE_BF16)
READ_ROW_BODY(read_row_bf16_bf16, SOURCE_BF16 | DEST_BF16)
READ_ROW_BODY(read_row_bf16_f16, SOURCE_BF16 | DEST_F16)
READ_ROW_BODY(read_row_f16, SOURCE_F16)
READ_ROW_BODY(read_row_f16_bf16, SOURCE_F16 | DEST_BF16)
READ_ROW_BODY(read_row_f16_f16, SOURCE_F16 | DEST_F16)
READ_ROW_BODY(read_row_mask_checked, EXCLUDE_MASK | CHECK_MASK)
READ_ROW_BODY(read_row_half_mask_checked, EXCLUDE_HALF | CHECK_MASK)
#undef READ_ROW_BODY

static inline bool in_cache_regime(size_t n)
{
    return n > SMALL_VECTORS * LANES && n * sizeof(T) <= STREAM_BYTES;
}

static int reducing_bias_row(softmax_op op, const float *x, const float *bias, size_t kept, size_t n, double scale,
                             float *y);

/* See softmax_kernels.excluding_row: the in-cache regime of forward_row
 * with the exclusions applied (and an additive mask added) as x is loaded,
 * so that a masked row costs about what an unmasked one does (no gathered
 * copy). */
static int excluding_row(softmax_op op, const T *x, const uint8_t *keep, const T *mask, const uint16_t *half_mask,
                         int half_bf16, int additive, bool check_mask, double slope, size_t kept, size_t n,
                         double scale, T *y)
{
    if (!in_cache_regime(n) || kept > n || (additive && slope != 0))
        return SOFTMAX_ROW_DECLINED;
    /* With an added mask or ALiBi bias the kernels run with scale 1 on z =
     * scale * x + bias: the special scales (0, +-inf, beyond the float
     * range) stay with the general path. */
    const bool adding = additive || slope != 0;
    const T scale_hi = (T)scale;
    if (adding && !(WIDE_FABS((WIDE)scale) >= (WIDE)1e-30 && WIDE_FABS((WIDE)scale) <= (WIDE)1e30))
        return SOFTMAX_ROW_DECLINED;
    T *residuals = softmax_workspace(n * sizeof(T));
    if (residuals == NULL)
        return SOFTMAX_ROW_DECLINED;
    row_masks ex = {.keep = keep,
                    .half_minus_inf = half_bf16 ? (uint16_t)0xff80u : (uint16_t)0xfc00u,
                    .excluded = scale < 0 && !adding ? (T)INFINITY : (T)-INFINITY,
                    .kept = kept,
                    .scale_hi = scale_hi,
                    .scale_lo = (T)((WIDE)scale - (WIDE)scale_hi),
                    .slope_hi = (T)slope,
                    .slope_lo = (T)((WIDE)slope - (WIDE)(T)slope)};
    if (additive) {
        ex.add_mask = mask;
        ex.add_half = half_mask;
        ex.add_bf16 = half_bf16;
    } else {
        ex.mask = mask;
        ex.half_mask = half_mask;
    }
    const int masks = additive ? (mask != NULL ? ADD_MASK : 0) | (half_mask != NULL ? ADD_HALF : 0)
                               : (mask != NULL ? EXCLUDE_MASK : 0) | (half_mask != NULL ? EXCLUDE_HALF : 0);
    const int io_flags =
        masks | (keep != NULL ? EXCLUDE_KEEP : 0) | (kept < n ? EXCLUDE_PREFIX : 0) | (slope != 0 ? ADD_SLOPE : 0);
    const double kernel_scale = adding ? 1.0 : scale;
    /* A power-of-two scale (1, the default, and 1/sqrt(d) for d = 64 or
     * 256) makes scale * x exact: the single kinds then skip the product's
     * rest (ADD_EXACT_SCALE, the same bits, as adding_rows does). */
    int exponent;
    const bool exact_scale = adding && frexp(fabs(scale), &exponent) == 0.5 && ex.scale_lo == 0;
    /* One specialised body for each single kind (the attention layouts);
     * combinations share a general one. */
    /* A softmax row with an f32 bias (and at most a causal prefix): the
     * bias reduced as it is read, cheaper than the two-sum of the bodies
     * below, which take the rows it declines. */
    if (op == SOFTMAX_OP_SOFTMAX && (io_flags & ~EXCLUDE_PREFIX) == ADD_MASK) {
        const int done = reducing_bias_row(op, x, mask, kept, n, scale, y);
        if (done != SOFTMAX_ROW_DECLINED)
            return done;
    }
    if (check_mask) /* only the single-mask bodies check as they read */
        return io_flags == EXCLUDE_MASK   ? read_row_mask_checked(op, x, &ex, n, scale, y, residuals, y)
               : io_flags == EXCLUDE_HALF ? read_row_half_mask_checked(op, x, &ex, n, scale, y, residuals, y)
                                          : SOFTMAX_ROW_DECLINED;
    switch (io_flags | (exact_scale ? ADD_EXACT_SCALE : 0)) {
    case ADD_MASK | ADD_EXACT_SCALE:
        return read_row_add_mask_exact(op, x, &ex, n, kernel_scale, y, residuals, y);
    case ADD_HALF | ADD_EXACT_SCALE:
        return read_row_add_half_exact(op, x, &ex, n, kernel_scale, y, residuals, y);
    case ADD_SLOPE | EXCLUDE_PREFIX | ADD_EXACT_SCALE:
        return read_row_slope_prefix_exact(op, x, &ex, n, kernel_scale, y, residuals, y);
    case EXCLUDE_KEEP:
        return read_row_keep(op, x, &ex, n, scale, y, residuals, y);
    case EXCLUDE_MASK:
        return read_row_mask(op, x, &ex, n, scale, y, residuals, y);
    case EXCLUDE_HALF:
        return read_row_half_mask(op, x, &ex, n, scale, y, residuals, y);
    case ADD_MASK:
        return read_row_add_mask(op, x, &ex, n, kernel_scale, y, residuals, y);
    case ADD_HALF:
        return read_row_add_half(op, x, &ex, n, kernel_scale, y, residuals, y);
    case ADD_SLOPE | EXCLUDE_PREFIX: /* ALiBi with a causal mask */
        return read_row_slope_prefix(op, x, &ex, n, kernel_scale, y, residuals, y);
    default: /* the general bodies whatever the scale */
        if (io_flags & ADD_SLOPE)
            return read_row_any_slope(op, x, &ex, n, kernel_scale, y, residuals, y);
        if (io_flags & ADD_MASK)
            return read_row_any_add_mask(op, x, &ex, n, kernel_scale, y, residuals, y);
        if (io_flags & ADD_HALF)
            return read_row_any_add_half(op, x, &ex, n, kernel_scale, y, residuals, y);
        return read_row_any_exclusion(op, x, &ex, n, scale, y, residuals, y);
    }
}

/* The SOURCE_ / DEST_ io_flags of a half_line call. */
static inline int half_line_io_flags(int bf16, int dst_half)
{
    return (bf16 ? SOURCE_BF16 : SOURCE_F16) | (dst_half == 1 ? DEST_BF16 : dst_half == 2 ? DEST_F16 : 0);
}

/* See softmax_kernels.half_line. */
static bool half_line(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n, double scale)
{
    SOFTMAX_ASSERT(dst_half >= 0 && dst_half <= 2);
    if (!in_cache_regime(n))
        return false;
    T *space = softmax_workspace(2 * n * sizeof(T));
    if (space == NULL)
        return false;
    T *residuals = space, *y = dst_half ? space + n : dst;
    /* Each source and destination type its own body: the conversions are
     * one or two instructions a vector, in the passes that read and write. */
    switch (half_line_io_flags(bf16, dst_half)) {
    case SOURCE_BF16:
        return read_row_bf16(op, x, NULL, n, scale, y, residuals, dst) == SOFTMAX_ROW_DONE;
    case SOURCE_BF16 | DEST_BF16:
        return read_row_bf16_bf16(op, x, NULL, n, scale, y, residuals, dst) == SOFTMAX_ROW_DONE;
    case SOURCE_BF16 | DEST_F16:
        return read_row_bf16_f16(op, x, NULL, n, scale, y, residuals, dst) == SOFTMAX_ROW_DONE;
    case SOURCE_F16:
        return read_row_f16(op, x, NULL, n, scale, y, residuals, dst) == SOFTMAX_ROW_DONE;
    case SOURCE_F16 | DEST_BF16:
        return read_row_f16_bf16(op, x, NULL, n, scale, y, residuals, dst) == SOFTMAX_ROW_DONE;
    default:
        return read_row_f16_f16(op, x, NULL, n, scale, y, residuals, dst) == SOFTMAX_ROW_DONE;
    }
}
#define EXCLUDING_ROW_FN excluding_row
#define HALF_LINE_FN half_line
#endif
