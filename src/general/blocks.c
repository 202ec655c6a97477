/*
 * blocks.c -- the general pipeline of softmax_execute(): any strides, mixed
 * and half-precision data types, and fused masks (additive, boolean, causal,
 * ALiBi).
 *
 * Lines (the 1-d slices along the softmax axis) are processed in blocks: a
 * block is gathered into a contiguous per-thread buffer in the computation
 * type (f32 or f64), converted and masked on the way in; the contiguous
 * kernels of the active code path run on the buffer; the result is converted
 * and scattered to the output on the way out. Gathering a block of adjacent
 * lines keeps a transposed walk inside the cache instead of copying the
 * whole tensor.
 *
 * An additive mask or ALiBi bias changes the logits, z = scale * x + bias.
 * Rounding z to the data type would cost up to |z| * 2^-24 of relative
 * error in exp(z - max) (tens of ulp for logits of a few dozen), so f32
 * work forms z in double and runs the f64 kernels, and f64 work forms z as
 * a double-double (ref/double_double.h: about 106 bits from double
 * operations, the same bits on every platform) and evaluates the line in
 * double-double.
 *
 * Causal masking of contiguous last-axis rows needs no copy: row i is the
 * softmax of its first i + offset + 1 elements followed by zeros.
 */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "general/general_internal.h"

static size_t block_lines(const general_plan *plan)
{
    size_t lines = BLOCK_ELEMENTS / plan->n;
    if (lines == 0)
        lines = 1;
    /* A strided walk along the axis reads one element per cache line and
     * page. Gathering many adjacent lines together uses every cache line
     * read whole and shares each page visit (a TLB miss when the axis spans
     * more pages than the TLB holds) among the lines: 128 lines of 4096
     * f32 (2 MiB) were 1.3x faster than 64 and 1.6x faster than 16. */
    if (plan->operands[GENERAL_SRC].strides[plan->axis] != 1) {
        const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
        size_t strided = STRIDED_BLOCK_BYTES / (plan->n * element);
        strided = strided < STRIDED_MAX_LINES ? strided : STRIDED_MAX_LINES;
        lines = strided > lines ? strided : lines;
    }
    if (lines > BLOCK_MAX_LINES)
        lines = BLOCK_MAX_LINES;
    return lines < plan->lines ? lines : plan->lines;
}

static bool route_reads_lines_in_place(const general_plan *plan)
{
    return plan->route == SOFTMAX_ROUTE_MASKED_LINES || plan->route == SOFTMAX_ROUTE_HALF_LINES ||
           plan->route == SOFTMAX_ROUTE_FAST_HALF_LINES;
}

/* The lines of one unit of work (see LINE_UNIT_ELEMENTS): a block, or more
 * where the line kernels read the lines in place. */
static size_t unit_lines(const general_plan *plan)
{
    const size_t block = block_lines(plan);
    if (!route_reads_lines_in_place(plan))
        return block;
    size_t lines = LINE_UNIT_ELEMENTS / plan->n;
    lines = lines > block ? lines : block;
    lines = lines < BLOCK_MAX_LINES ? lines : BLOCK_MAX_LINES;
    return lines < plan->lines ? lines : plan->lines;
}

static size_t buffers_bytes(const general_plan *plan, size_t lines, size_t parts[5])
{
    const size_t elements = lines * plan->n;
    const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    const bool additive = plan->forward && (plan->has_mask || plan->alibi);
    parts[0] = elements * element;
    parts[1] = plan->forward ? 0 : elements * element;
    parts[2] = additive && plan->compute == SOFTMAX_DTYPE_F32 ? elements * sizeof(double) : 0;
    parts[3] = additive && plan->compute == SOFTMAX_DTYPE_F64 ? plan->n * sizeof(dd) : 0;
    parts[4] = additive && plan->compute == SOFTMAX_DTYPE_F64 ? plan->n * sizeof(double) : 0;
    size_t total = 0;
    for (int k = 0; k < 5; k++) {
        parts[k] = (parts[k] + 63) & ~(size_t)63;
        total += parts[k];
    }
    return total;
}

static bool claim_buffers(const general_plan *plan, block_buffers *buffers)
{
    size_t parts[5];
    const size_t total = buffers_bytes(plan, block_lines(plan), parts);
    char *space = softmax_workspace_slot(1, total + 64);
    if (space == NULL)
        return false;
    space = (char *)(((uintptr_t)space + 63) & ~(uintptr_t)63);
    buffers->values = space;
    buffers->gradient = space + parts[0];
    buffers->wide = (double *)(void *)(space + parts[0] + parts[1]);
    buffers->extended = (dd *)(void *)(space + parts[0] + parts[1] + parts[2]);
    buffers->line = (double *)(void *)(space + parts[0] + parts[1] + parts[2] + parts[3]);
    return true;
}

/* Whether the line kernels check the mask (see
 * general_plan.mask_checked_by_blocks) as they read it: a mask alone, its
 * rows read whole by excluding_row's single-mask bodies. With `where`,
 * causal or ALiBi beside it the blocks check it themselves. */
static bool kernels_check_mask(const general_plan *plan)
{
    return plan->mask_checked_by_blocks && !plan->has_where && !plan->causal && !plan->alibi;
}

/* One line through the kernels' excluding_row, its ALiBi slope given: a
 * SOFTMAX_ROW_ outcome. */
static int run_excluding_line(const general_plan *plan, const line_position *line, double slope)
{
    const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
    const general_operand *w = &plan->operands[GENERAL_WHERE];
    const general_operand *m = &plan->operands[GENERAL_MASK];
    const line_position where = *line;
    const float *src = (const float *)(const void *)x->base + where.offset[GENERAL_SRC];
    const uint8_t *keep = plan->has_where ? (const uint8_t *)(const void *)w->base + where.offset[GENERAL_WHERE] : NULL;
    const bool f32_mask = plan->has_mask && m->type == SOFTMAX_DTYPE_F32;
    const bool half_mask = plan->has_mask && !f32_mask;
    const float *mask = f32_mask ? (const float *)(const void *)m->base + where.offset[GENERAL_MASK] : NULL;
    const uint16_t *halves = half_mask ? (const uint16_t *)(const void *)m->base + where.offset[GENERAL_MASK] : NULL;
    float *out = (float *)(void *)d->base_out + where.offset[GENERAL_DST];
    if (plan->reduced_g != NULL)
        return plan->kernels->reduced_bias_row(plan->op, src, plan->reduced_g + where.offset[GENERAL_MASK],
                                               plan->reduced_lo + where.offset[GENERAL_MASK],
                                               causal_length(plan, &where), plan->n, plan->scale, out);
    return plan->kernels->excluding_row(plan->op, src, keep, mask, halves, m->type == SOFTMAX_DTYPE_BF16,
                                        plan->has_mask && !plan->mask_only_excludes, kernels_check_mask(plan), slope,
                                        causal_length(plan, &where), plan->n, plan->scale, out);
}

/* One contiguous half-precision line through the kernels' half_line (or
 * fast_half_line); false if they decline it. */
static bool run_half_line(const general_plan *plan, const line_position *line)
{
    const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
    const line_position where = *line;
    const uint16_t *src = (const uint16_t *)(const void *)x->base + where.offset[GENERAL_SRC];
    char *dst = d->base_out + where.offset[GENERAL_DST] * (int64_t)softmax_dtype_size(d->type);
    const int dst_half = d->type == SOFTMAX_DTYPE_BF16 ? 1 : d->type == SOFTMAX_DTYPE_F16 ? 2 : 0;
    if (plan->route == SOFTMAX_ROUTE_FAST_HALF_LINES)
        return plan->kernels->fast_half_line(plan->op, src, x->type == SOFTMAX_DTYPE_BF16, dst, dst_half, plan->n,
                                             plan->scale);
    return plan->kernels->half_line(plan->op, src, x->type == SOFTMAX_DTYPE_BF16, dst, dst_half, plan->n, plan->scale);
}

/* The kernels' description of the run of `count` lines from `where` on
 * (see softmax_masked_run). */
static softmax_masked_run masked_run(const general_plan *plan, const line_position *where, const line_position *step,
                                     size_t count)
{
    const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
    const general_operand *w = &plan->operands[GENERAL_WHERE], *m = &plan->operands[GENERAL_MASK];
    const size_t mask_size = plan->has_mask ? softmax_dtype_size(m->type) : 0;
    return (softmax_masked_run){
        .x = (const float *)(const void *)x->base + where->offset[GENERAL_SRC],
        .y = (float *)(void *)d->base_out + where->offset[GENERAL_DST],
        .keep = plan->has_where ? (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE] : NULL,
        .mask = plan->reduced_g != NULL ? (const void *)(plan->reduced_g + where->offset[GENERAL_MASK])
                : plan->has_mask        ? m->base + where->offset[GENERAL_MASK] * (int64_t)mask_size
                                        : NULL,
        .low = plan->reduced_g != NULL ? plan->reduced_lo + where->offset[GENERAL_MASK] : NULL,
        .x_step = step->offset[GENERAL_SRC],
        .y_step = step->offset[GENERAL_DST],
        .keep_step = plan->has_where ? step->offset[GENERAL_WHERE] : 0,
        .mask_step = plan->has_mask ? step->offset[GENERAL_MASK] : 0,
        .kept = causal_length_unclamped(plan, where),
        .kept_step = plan->causal ? step->query : 0,
        .count = count,
        .slope = alibi_slope(plan, where->head)};
}

/* The dimension outside the runs along `inner` (the next one but the
 * axis), if the runs repeat along it: the same keep and mask rows, the
 * same causal prefixes, only x, y and the ALiBi head moved on -- scores
 * [B, T, T] with a broadcast [T, T] mask, or a causal one. -1 otherwise. */
static int runs_repeat_along(const general_plan *plan, int inner)
{
    if (inner < 0 || (plan->alibi && plan->head_axis == inner)) /* a slope per line */
        return -1;
    int outer = inner - 1;
    if (outer == plan->axis)
        outer--;
    if (outer < 0 || (plan->causal && plan->axis - 1 == outer) ||
        (plan->has_where && plan->operands[GENERAL_WHERE].strides[outer] != 0) ||
        (plan->has_mask && plan->operands[GENERAL_MASK].strides[outer] != 0))
        return -1;
    return outer;
}

/* masked_runs_of where the runs repeat along `outer`: a run that starts a
 * sweep along inner is the previous one moved on by one step along outer
 * (a copy and two additions), not a walk and a description of its own,
 * which at T = 16 cost 5 % of a masked call. */
static size_t repeated_runs_of(const general_plan *plan, int inner, int outer, size_t first_line, size_t line_count,
                               softmax_masked_run *out)
{
    const line_position step = step_along(plan, inner);
    const size_t run_lines = plan->shape[inner], sweeps = plan->shape[outer];
    const int64_t x_by = plan->operands[GENERAL_SRC].strides[outer], y_by = plan->operands[GENERAL_DST].strides[outer];
    const bool heads = plan->alibi && plan->head_axis == outer;
    /* Lines number the dimensions but the axis in row-major order, inner
     * the fastest: the first line's indices along inner and outer. */
    size_t at = first_line % run_lines, sweep = first_line / run_lines % sweeps;
    size_t count = 0, line = first_line;
    const size_t end = first_line + line_count;
    int64_t head = 0;
    bool whole_before = false; /* the previous run starts its sweep */
    while (line < end) {
        const size_t lines = run_lines - at < end - line ? run_lines - at : end - line;
        if (whole_before && sweep != 0) {
            softmax_masked_run next = out[count - 1];
            next.x += x_by;
            next.y += y_by;
            next.count = lines;
            if (heads)
                next.slope = alibi_slope(plan, ++head);
            out[count++] = next;
        } else {
            const line_position where = position_of(plan, line);
            head = where.head;
            out[count++] = masked_run(plan, &where, &step, lines);
        }
        whole_before = at == 0;
        line += lines;
        at = 0;
        sweep = sweep + 1 == sweeps ? 0 : sweep + 1;
    }
    return count;
}

/* The block's lines as the kernels' runs: one description per run of
 * lines (a query's successors of one head), not per line. Returns the
 * number of runs. */
static size_t masked_runs_of(const general_plan *plan, size_t first_line, size_t line_count, softmax_masked_run *out)
{
    const int inner = runs_dimension(plan), outer = runs_repeat_along(plan, inner);
    if (outer >= 0)
        return repeated_runs_of(plan, inner, outer, first_line, line_count, out);
    line_run runs[BLOCK_MAX_LINES];
    line_position step;
    const size_t run_count = runs_of(plan, first_line, line_count, runs, &step);
    /* A run has one slope: where the heads are the run's dimension, a run
     * per line. */
    const bool slope_per_line = plan->alibi && step.head != 0;
    size_t count = 0;
    for (size_t r = 0; r < run_count; r++) {
        if (!slope_per_line) {
            out[count++] = masked_run(plan, &runs[r].first, &step, runs[r].count);
            continue;
        }
        line_position where = runs[r].first;
        for (size_t i = 0; i < runs[r].count; i++) {
            out[count++] = masked_run(plan, &where, &step, 1);
            step_line(&where, &step);
        }
    }
    return count;
}

/* The kernels' mask_type: 0 none, 1 f32, 2 bf16, 3 f16, 4 an f32 bias
 * reduced once (general_plan.reduced_g). */
static int kernel_mask_type(const general_plan *plan)
{
    if (plan->reduced_g != NULL)
        return 4;
    const softmax_dtype type = plan->operands[GENERAL_MASK].type;
    return !plan->has_mask ? 0 : type == SOFTMAX_DTYPE_F32 ? 1 : type == SOFTMAX_DTYPE_BF16 ? 2 : 3;
}

/* Short masked rows through the grouped kernels, which read and write in
 * place: exclusion masks (excluding_rows) or added biases (adding_rows).
 * True if every line is done; else *grouped says whether adding_rows ran,
 * declined[b] then marking the lines it left. */
static bool run_grouped_lines(const general_plan *plan, size_t first_line, size_t line_count, bool *grouped,
                              bool *declined)
{
    softmax_masked_run runs[BLOCK_MAX_LINES];
    const size_t run_count = masked_runs_of(plan, first_line, line_count, runs);
    const bool additive = plan->has_mask && !plan->mask_only_excludes;
    if (!plan->alibi && !additive)
        return plan->kernels->excluding_rows(plan->op, runs, run_count, plan->n, kernel_mask_type(plan), plan->scale);
    *grouped = plan->kernels->adding_rows(plan->op, runs, run_count, plan->n, kernel_mask_type(plan), additive,
                                          plan->scale, declined);
    /* memchr, not a loop of |=: gcc kept that to a byte at a time, 3 % of
     * a bias-f32 call on rows of 16. */
    return *grouped && memchr(declined, true, line_count * sizeof *declined) == NULL;
}

static void run_gathered_block(const general_plan *plan, const block_buffers *buffers, const line_position *positions,
                               size_t first_line, size_t line_count);

/* run_gathered_block on any number of lines, in blocks the buffers hold. */
static void run_gathered_lines(const general_plan *plan, const block_buffers *buffers, const line_position *positions,
                               size_t first_line, size_t line_count)
{
    const size_t capacity = block_lines(plan);
    for (size_t done = 0; done < line_count; done += capacity) {
        const size_t count = line_count - done < capacity ? line_count - done : capacity;
        run_gathered_block(plan, buffers, positions + done, first_line + done, count);
    }
}

/* Whether every mask value the lines at positions read is 0 or -inf (see
 * general_plan.mask_checked_by_blocks). */
static bool lines_mask_only_excludes(const general_plan *plan, const line_position *positions, size_t line_count)
{
    const general_operand *m = &plan->operands[GENERAL_MASK];
    for (size_t b = 0; b < line_count; b++)
        if (!mask_run_only_excludes(m->base, m->type, positions[b].offset[GENERAL_MASK], m->strides[plan->axis],
                                    plan->n))
            return false;
    return true;
}

/* The layouts the kernels read (and write) in place, line by line: long
 * half-precision rows streamed (half_row), in-cache half rows widened as
 * they are read (half_line), exclusion masks applied as x is read
 * (excluding_row). Lines they decline take the gathered path. False where
 * a mask assumed to only exclude (general_plan.mask_checked_by_blocks) is
 * found to add: the unit's lines from there on are left unwritten. */
static bool run_block(const general_plan *plan, const block_buffers *buffers, size_t first_line, size_t line_count)
{
    if (plan->route == SOFTMAX_ROUTE_HALF_ROWS && line_count == 1) {
        const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
        const line_position where = position_of(plan, first_line);
        const uint16_t *src = (const uint16_t *)(const void *)x->base + where.offset[GENERAL_SRC];
        uint16_t *dst = (uint16_t *)(void *)d->base_out + where.offset[GENERAL_DST];
        if (plan->kernels->half_row(plan->op, src, dst, plan->n, plan->scale, x->type == SOFTMAX_DTYPE_BF16))
            return true;
    }
    const bool half_lines = plan->route == SOFTMAX_ROUTE_HALF_LINES || plan->route == SOFTMAX_ROUTE_FAST_HALF_LINES;
    line_position positions[BLOCK_MAX_LINES];
    if (!half_lines && plan->route != SOFTMAX_ROUTE_MASKED_LINES) {
        positions_of(plan, first_line, line_count, positions);
        /* A unit sized for the line kernels (a plan whose mask was found
         * to add keeps its units) spans several blocks. */
        run_gathered_lines(plan, buffers, positions, first_line, line_count);
        return true;
    }
    /* Where the line kernels check the mask, the grouped ones (which do
     * not, and decline rows that long anyway) are not asked. */
    const bool checking = kernels_check_mask(plan);
    bool declined_by_group[BLOCK_MAX_LINES];
    bool grouped = false;
    if (!half_lines && !checking && plan->n <= plan->kernels->grouped_rows_max &&
        run_grouped_lines(plan, first_line, line_count, &grouped, declined_by_group))
        return true;
    positions_of(plan, first_line, line_count, positions);
    /* Declined lines (short rows below the line kernels' regime, fully
     * masked rows, ...) are gathered together: the grouped small-row kernels
     * pay for a whole group whether it holds one row or sixteen, and a row's
     * bits do not depend on the rows beside it. Their masks, which the
     * line kernels may not have read whole, are checked here first. */
    size_t declined_first = 0, declined = 0;
    /* Consecutive lines share a head: its slope is computed once. */
    int64_t slope_head = -1;
    double slope = 0.0;
    /* The kernels' floating-point mode set once for the block's line
     * kernels (see softmax_kernels.fp_mode_begin), the caller's given back
     * around everything else (libm's pow, the gathered path, the mask
     * check) and on the way out. */
    const softmax_kernels *kernels = plan->kernels;
    unsigned int caller_mode = kernels->fp_mode_begin();
    bool all_done = true;
    for (size_t b = 0; b <= line_count; b++) {
        int outcome = SOFTMAX_ROW_DONE; /* past the last line: the declined ones are gathered */
        if (b < line_count && grouped) {
            outcome = declined_by_group[b] ? SOFTMAX_ROW_DECLINED : SOFTMAX_ROW_DONE;
        } else if (b < line_count && half_lines) {
            outcome = run_half_line(plan, &positions[b]) ? SOFTMAX_ROW_DONE : SOFTMAX_ROW_DECLINED;
        } else if (b < line_count) {
            if (plan->alibi && positions[b].head != slope_head) {
                slope_head = positions[b].head;
                if (slope_head < ALIBI_SLOPE_TABLE) {
                    slope = plan->alibi_slopes[slope_head];
                } else {
                    kernels->fp_mode_end(caller_mode);
                    slope = alibi_slope(plan, slope_head);
                    caller_mode = kernels->fp_mode_begin();
                }
            }
            outcome = run_excluding_line(plan, &positions[b], slope);
        }
        if (outcome == SOFTMAX_ROW_MASK_ADDS) {
            all_done = false;
            break;
        }
        if (outcome == SOFTMAX_ROW_DECLINED) {
            if (declined == 0)
                declined_first = b;
            declined++;
            continue;
        }
        if (declined > 0) {
            kernels->fp_mode_end(caller_mode);
            if (checking && !lines_mask_only_excludes(plan, positions + declined_first, declined))
                return false;
            run_gathered_lines(plan, buffers, positions + declined_first, first_line + declined_first, declined);
            caller_mode = kernels->fp_mode_begin();
        }
        declined = 0;
    }
    kernels->fp_mode_end(caller_mode);
    return all_done;
}

static void run_gathered_block(const general_plan *plan, const block_buffers *buffers, const line_position *positions,
                               size_t first_line, size_t line_count)
{
    const size_t n = plan->n;
    const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    const bool excluding = plan->has_where || plan->causal;
    const bool additive = plan->forward && (plan->alibi || (plan->has_mask && !plan->mask_only_excludes));
    const general_operand *d = &plan->operands[GENERAL_DST];
    char *rows = buffers->values;
    /* The kernels write dst once, directly, when it holds the block's rows
     * in the computation type. */
    const bool direct = !additive && plan->dst_rows_contiguous && (plan->forward || !excluding);
    char *results = direct ? d->base_out + first_line * n * element /* line l starts at l * n */ : rows;
    /* A forward block that fits in L1 is gathered into dst itself and the
     * kernels run in place: the gather pass then also brings dst's cache
     * lines in while it waits on the source, and the kernels run from L1
     * (a 0 / -inf mask went from 1.2x to 1.03x of the unmasked time).
     * Larger blocks, and transposed ones, would cost dst a second pass
     * through memory. */
    if (direct && plan->forward && plan->operands[GENERAL_SRC].strides[plan->axis] == 1 &&
        line_count * n * element <= IN_PLACE_BLOCK_BYTES)
        rows = results;
    /* The additive-mask split reads contiguous f32 logits where they are. */
    const general_operand *x_operand = &plan->operands[GENERAL_SRC];
    const bool split_in_place = additive && plan->compute == SOFTMAX_DTYPE_F32 &&
                                x_operand->type == SOFTMAX_DTYPE_F32 && x_operand->strides[plan->axis] == 1;
    const bool transposed = !split_in_place && gather_transposed(plan, GENERAL_SRC, positions, line_count, rows);
    const bool gradient_transposed =
        !plan->forward && gather_transposed(plan, GENERAL_GRAD, positions, line_count, buffers->gradient);
    for (size_t b = 0; b < line_count && !split_in_place; b++) {
        char *values = rows + b * n * element;
        if (!transposed && plan->forward && !additive && gather_excluding_f32(plan, &positions[b], values))
            continue;
        if (!transposed)
            gather_line(plan, GENERAL_SRC, &positions[b], values);
        if (!plan->forward) {
            char *gradient = (char *)buffers->gradient + b * n * element;
            if (!gradient_transposed)
                gather_line(plan, GENERAL_GRAD, &positions[b], gradient);
            if (excluding)
                set_excluded(plan, &positions[b], gradient, 0.0);
        } else if (!additive && (excluding || plan->has_mask || transposed)) {
            if (plan->compute == SOFTMAX_DTYPE_F32)
                exclude_f32(plan, &positions[b], (float *)(void *)values);
            else
                exclude_f64(plan, &positions[b], (double *)(void *)values);
        }
    }

    if (additive && plan->compute == SOFTMAX_DTYPE_F32) {
        float *x = buffers->values;
        bool all_split = true, split[BLOCK_MAX_LINES];
        for (size_t b = 0; b < line_count; b++) {
            double *line = buffers->wide + b * n;
            const float *source = split_in_place
                                      ? (const float *)(const void *)x_operand->base + positions[b].offset[GENERAL_SRC]
                                      : x + b * n;
            split[b] = split_line(plan, &positions[b], source, x + b * n, line);
            if (!split[b]) {
                if (split_in_place)
                    gather_line(plan, GENERAL_SRC, &positions[b], x + b * n);
                for (size_t j = 0; j < n; j++)
                    line[j] = x[b * n + j];
                masked_logits(plan, &positions[b], line, n, NULL, line);
                plan->wide_kernels->rows(plan->op, line, NULL, line, 1, n, 1.0);
            }
            all_split &= split[b];
        }
        /* The f32 kernels on the high parts: all lines at once if possible. */
        if (all_split)
            plan->kernels->rows(plan->op, x, NULL, x, line_count, n, 1.0);
        else
            for (size_t b = 0; b < line_count; b++)
                if (split[b])
                    plan->kernels->rows(plan->op, x + b * n, NULL, x + b * n, 1, n, 1.0);
        for (size_t b = 0; b < line_count; b++) {
            double *line = buffers->wide + b * n;
            if (split[b])
                plan->kernels->apply_low_parts(plan->op, x + b * n, line, n);
            scatter_f64(d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis], line, n);
        }
        return;
    }
    if (additive) { /* f64 work: double-double logits, evaluated in double-double */
        const double *x = buffers->values;
        for (size_t b = 0; b < line_count; b++) {
            masked_logits(plan, &positions[b], x + b * n, n, buffers->extended, NULL);
            double_double_line(plan->op, buffers->extended, buffers->line, n);
            scatter_f64(d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis], buffers->line,
                        n);
        }
        return;
    }

    if (route_is_fast(plan->route))
        plan->kernels->fast_rows(plan->op, rows, results, line_count, n, plan->scale);
    else
        plan->kernels->rows(plan->op, rows, plan->forward ? NULL : buffers->gradient, results, line_count, n,
                            plan->scale);
    if (direct)
        return;
    for (size_t b = 0; b < line_count; b++) {
        char *values = rows + b * n * element;
        if (!plan->forward && excluding)
            set_excluded(plan, &positions[b], values, 0.0);
        if (plan->compute == SOFTMAX_DTYPE_F32)
            scatter_f32(plan->kernels, d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis],
                        (const float *)(const void *)values, n);
        else
            scatter_f64(d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis],
                        (const double *)(const void *)values, n);
    }
}

/* Causal masking of contiguous rows: the kernels on each row's kept prefix,
 * the fill value on the rest. No copy. */
static void run_causal_rows(const general_plan *plan, size_t first_line, size_t line_count)
{
    const size_t n = plan->n;
    const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    const general_operand *src = &plan->operands[GENERAL_SRC];
    const general_operand *grad = &plan->operands[GENERAL_GRAD];
    const general_operand *dst = &plan->operands[GENERAL_DST];
    if (line_count == 0)
        return;
    line_run runs[BLOCK_MAX_LINES];
    line_position step;
    const size_t run_count = runs_of(plan, first_line, line_count, runs, &step);
    const line_position first = runs[0].first;
    /* The unit's rows are contiguous (layout checked by the plan); only
     * their queries differ. */
    size_t kept[BLOCK_MAX_LINES], b = 0;
    for (size_t r = 0; r < run_count; r++) {
        line_position where = runs[r].first;
        for (size_t i = 0; i < runs[r].count; i++, b++, where.query += step.query)
            kept[b] = causal_length(plan, &where);
    }
    plan->kernels->prefix_rows(plan->op, src->base + first.offset[GENERAL_SRC] * (int64_t)element,
                               plan->forward ? NULL : grad->base + first.offset[GENERAL_GRAD] * (int64_t)element,
                               dst->base_out + first.offset[GENERAL_DST] * (int64_t)element, line_count, n, kept,
                               plan->scale);
}

/* ---------------------------------------------------------------------- */
/* Driver                                                                  */
/* ---------------------------------------------------------------------- */

/* Whether every mask value the lines of a unit read is 0 or -inf. */
static bool unit_mask_only_excludes(const general_plan *plan, size_t first_line, size_t line_count)
{
    line_position positions[BLOCK_MAX_LINES];
    positions_of(plan, first_line, line_count, positions);
    return lines_mask_only_excludes(plan, positions, line_count);
}

/* The plan once a mask assumed to only exclude was found to add: the mask
 * added on every line, as if the planner had read it whole. */
static general_plan plan_with_mask_added(const general_plan *plan)
{
    general_plan added = *plan;
    added.mask_only_excludes = false;
    added.mask_checked_by_blocks = false;
    if (added.alibi) /* the masked lines do not add a mask and ALiBi together */
        added.route = SOFTMAX_ROUTE_GATHERED;
    return added;
}

/* How many distinct elements a mask with these strides over plan's shape
 * reads, where they fill [0, count) of its memory without gaps (every
 * stride 0 or the product of the extents of the strided axes inside it); 0
 * where they do not. */
static size_t mask_footprint(const general_plan *plan, const int64_t *strides)
{
    size_t count = 1;
    bool placed[SOFTMAX_MAX_NDIM] = {false};
    for (int round = 0; round < plan->ndim; round++) {
        /* The strided axis whose stride is the count so far. */
        int found = -1;
        for (int d = 0; d < plan->ndim && found < 0; d++)
            if (!placed[d] && strides[d] > 0 && plan->shape[d] > 1 && (size_t)strides[d] == count)
                found = d;
        if (found < 0)
            break;
        placed[found] = true;
        count *= plan->shape[found];
    }
    for (int d = 0; d < plan->ndim; d++)
        if (!placed[d] && strides[d] != 0 && plan->shape[d] > 1)
            return 0;
    return count;
}

/* The broadcast a bias must have for reducing it once to pay: each of its
 * entries read by at least this many rows (reduce_bias costs about what
 * one more row's worth of reading it does). */
#define REDUCED_BIAS_MIN_REUSE 8
/* The largest bias reduced (2 x 2 MiB of reduced entries). Beyond, g and
 * lo (8 bytes an entry) leave the caches the bias (4) might stay in, and
 * the rows that reduce the bias as they read it (kernels->excluding_row:
 * four operations a vector more) are faster: [8, 1024, 1024] 1.30x the
 * unmasked call reduced once, 1.23x reduced as read; [256, 512, 512]
 * 1.15x and 1.28x (AVX-512, Zen 4). */
#define REDUCED_BIAS_MAX_ENTRIES ((size_t)1 << 19)
/* Where g and lo start within their pages (multiples of 64, apart). */
#define REDUCED_G_PAGE_OFFSET 512
#define REDUCED_LO_PAGE_OFFSET 1536
#define PAGE_BYTES 4096

/* offset bytes past the first page boundary at or after p. */
static char *at_page_offset(char *p, size_t offset)
{
    return p + (PAGE_BYTES - (uintptr_t)p % PAGE_BYTES) % PAGE_BYTES + offset;
}

/* plan with its added f32 bias reduced once (reduced_g and reduced_lo set,
 * *space to be freed by the caller), for forward softmax on contiguous f32
 * rows whose bias [.., T, T] is broadcast over many rows (attention's
 * relative-position biases): the lines then cost the kernels one addition
 * a vector for it instead of an exact two-sum (kernels->reduced_bias_row).
 * plan itself where that does not apply, or the bias holds a value
 * reduce_bias refuses (NaN, +inf, beyond +-700): the lines then add it as
 * before. */
static general_plan reduced_bias_plan(const general_plan *plan, void **space)
{
    *space = NULL;
    const general_operand *m = &plan->operands[GENERAL_MASK];
    if (plan->route != SOFTMAX_ROUTE_MASKED_LINES || plan->op != SOFTMAX_OP_SOFTMAX ||
        !(plan->kernels->capabilities & SOFTMAX_KERNELS_MASKED_ROWS) || !plan->has_mask || plan->mask_only_excludes ||
        plan->mask_checked_by_blocks || m->type != SOFTMAX_DTYPE_F32 || plan->has_where || plan->alibi)
        return *plan;
    const size_t footprint = mask_footprint(plan, m->strides);
    if (footprint == 0 || footprint > plan->elements / REDUCED_BIAS_MIN_REUSE || footprint > REDUCED_BIAS_MAX_ENTRIES)
        return *plan;
    /* g and lo on cache-line boundaries (malloc's large blocks start 16
     * bytes into a page: every vector load split in two lines), at
     * different offsets within a page (REDUCED_G_PAGE_OFFSET,
     * REDUCED_LO_PAGE_OFFSET), so that the row kernels' five streams (x, g,
     * lo, y, residuals) do not all meet in the same L1 sets. [256, 512,
     * 512] dense, x and y 64 bytes into a page: 0.80 -> 0.75 ns/element. */
    char *start = malloc(2 * footprint * sizeof(float) + 3 * PAGE_BYTES);
    if (start == NULL)
        return *plan;
    float *g = (float *)(void *)at_page_offset(start, REDUCED_G_PAGE_OFFSET);
    float *lo = (float *)(void *)at_page_offset((char *)(g + footprint), REDUCED_LO_PAGE_OFFSET);
    if (!plan->kernels->reduce_bias((const float *)(const void *)m->base, footprint, g, lo)) {
        free(start);
        return *plan;
    }
    general_plan reduced = *plan;
    reduced.reduced_g = g;
    reduced.reduced_lo = lo;
    *space = start;
    return reduced;
}

static int run_plan(const general_plan *plan);

int softmax_general_run(const general_plan *given)
{
    void *reduced_space;
    const general_plan plan = reduced_bias_plan(given, &reduced_space);
    const int status = run_plan(&plan);
    free(reduced_space);
    return status;
}

static int run_plan(const general_plan *plan)
{
    const bool causal_rows = plan->route == SOFTMAX_ROUTE_CAUSAL_ROWS;
    const size_t lines_per_unit = unit_lines(plan); /* <= BLOCK_MAX_LINES, as run_causal_rows() needs */
    const size_t units = (plan->lines + lines_per_unit - 1) / lines_per_unit;
    const int threads = softmax_threads_for_job(plan->lines * plan->n, units);
    atomic_int failed = 0;
    atomic_bool mask_adds = false;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        block_buffers buffers = {0};
        if (!causal_rows && !claim_buffers(plan, &buffers)) {
            atomic_store(&failed, 1);
        }
        /* Nothing is written until every thread holds its buffers, so that an
         * allocation failure leaves the output untouched. */
#pragma omp barrier
        if (!atomic_load(&failed)) {
#pragma omp for schedule(static)
            for (size_t unit = 0; unit < units; unit++) {
                const size_t first = unit * lines_per_unit;
                const size_t count = first + lines_per_unit <= plan->lines ? lines_per_unit : plan->lines - first;
                if (plan->mask_checked_by_blocks) {
                    if (atomic_load_explicit(&mask_adds, memory_order_relaxed))
                        continue; /* everything starts over below */
                    /* The mask rows read just before the kernels read them
                     * again, from the cache, unless the kernels check them
                     * as they read them (run_block). */
                    if (!kernels_check_mask(plan) && !unit_mask_only_excludes(plan, first, count)) {
                        atomic_store(&mask_adds, true);
                        continue;
                    }
                }
                if (causal_rows)
                    run_causal_rows(plan, first, count);
                else if (!run_block(plan, &buffers, first, count))
                    atomic_store(&mask_adds, true);
            }
            /* After the loop's barrier every thread sees the same answer. The
             * buffers fit: their size does not depend on it. */
            if (atomic_load(&mask_adds)) {
                const general_plan added = plan_with_mask_added(plan);
#pragma omp for schedule(static)
                for (size_t unit = 0; unit < units; unit++) {
                    const size_t first = unit * lines_per_unit;
                    const size_t count = first + lines_per_unit <= plan->lines ? lines_per_unit : plan->lines - first;
                    (void)run_block(&added, &buffers, first, count); /* no assumption left to fail */
                }
            }
        }
    }
    if (atomic_load(&failed))
        return softmax_fail(SOFTMAX_E_OUT_OF_MEMORY, "softmax_execute: cannot allocate the per-thread line buffers");
    return SOFTMAX_OK;
}
