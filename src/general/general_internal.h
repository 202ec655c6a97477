/*
 * general_internal.h -- what the parts of the general pipeline share:
 * lines.c (gather and scatter: strided lines converted to and from the
 * computation type), masks.c (line positions, masks, the additive-mask
 * logits and the double-double line), blocks.c (buffers, blocks of lines,
 * the routes, softmax_general_run). Internal.
 */
#ifndef SOFTMAX_GENERAL_INTERNAL_H
#define SOFTMAX_GENERAL_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "general.h"
#include "ref/double_double.h"

/* Elements per gathered block: a few lines of a short row, or one line.
 * 2048 keeps the block (8 KiB of f32, and the additive-mask split's 16 KiB
 * of doubles) in L1 while the kernels run on it. */
#define BLOCK_ELEMENTS ((size_t)2048)
#define BLOCK_MAX_LINES ((size_t)256)
/* Lines that the line kernels read in place (the masked and half-precision
 * lines routes) go in units of about this many elements, up to
 * BLOCK_MAX_LINES lines: every unit pays a position walk (a division per
 * dimension), the floating-point mode switch and the grouped kernels' look,
 * which in units of BLOCK_ELEMENTS (2 lines of 1024) cost 5 % of a masked
 * row. The lines these kernels decline are still gathered in blocks of
 * block_lines. 128 KiB of f32 mask rows stay in L2 between the unit's
 * check and the kernels' read. */
#define LINE_UNIT_ELEMENTS ((size_t)1 << 15)
/* Forward blocks up to this size are gathered into dst (see run_block). */
#define IN_PLACE_BLOCK_BYTES ((size_t)16 << 10)
/* Blocks of lines strided along the axis: up to this many bytes of lines
 * in the computation type, at most STRIDED_MAX_LINES lines. */
#define STRIDED_BLOCK_BYTES ((size_t)2 << 20)
#define STRIDED_MAX_LINES ((size_t)128)

/* Where one line is: its first element in each operand, and its indices
 * along the causal and ALiBi dimensions. */
typedef struct line_position {
    int64_t offset[GENERAL_OPERANDS]; /* element offset of element 0 of the line, per operand */
    int64_t query;                    /* index along axis - 1 (causal) */
    int64_t head;                     /* index along head_axis (ALiBi) */
} line_position;

/* The next line of a run: where advanced by one step (see runs_of). */
static inline void step_line(line_position *where, const line_position *step)
{
    for (int k = 0; k < GENERAL_OPERANDS; k++)
        where->offset[k] += step->offset[k];
    where->query += step->query;
    where->head += step->head;
}

/* Lines at a constant step from one to the next (see runs_of). */
typedef struct line_run {
    line_position first;
    size_t count;
} line_run;

typedef struct block_buffers {
    void *values;   /* block x n in the computation type: src, then the result */
    void *gradient; /* block x n in the computation type (gradient ops) */
    double *wide;   /* block x n doubles (additive mask, f32 work) */
    dd *extended;   /* n double-doubles (additive mask, f64 work) */
    double *line;   /* n doubles (additive mask, f64 work) */
} block_buffers;

static inline double load_double(const char *base, softmax_dtype type, int64_t index)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32:
        return ((const float *)(const void *)base)[index];
    case SOFTMAX_DTYPE_F64:
        return ((const double *)(const void *)base)[index];
    case SOFTMAX_DTYPE_BF16:
        return softmax_bf16_to_float(((const uint16_t *)(const void *)base)[index]);
    default:
        return softmax_f16_to_float(((const uint16_t *)(const void *)base)[index]);
    }
}

/* Number of leading elements of the line a causal mask keeps. */
static inline size_t causal_length(const general_plan *plan, const line_position *where)
{
    if (!plan->causal)
        return plan->n;
    /* query >= 0: only a large positive offset can overflow (all kept). */
    const int64_t last_kept =
        plan->causal_offset > INT64_MAX - where->query ? INT64_MAX : where->query + plan->causal_offset;
    if (last_kept < 0)
        return 0;
    return (uint64_t)last_kept >= plan->n ? plan->n : (size_t)last_kept + 1;
}

/* causal_length() before its clamp to [0, n] from below, for runs whose
 * lines keep one element more each (softmax_masked_run.kept): at most n,
 * so that adding a line's index never overflows; at least INT64_MIN + 1. */
static inline int64_t causal_length_unclamped(const general_plan *plan, const line_position *where)
{
    if (!plan->causal)
        return (int64_t)plan->n;
    /* query >= 0: only a large positive offset can overflow (all kept). */
    const int64_t last_kept =
        plan->causal_offset > INT64_MAX - where->query ? INT64_MAX : where->query + plan->causal_offset;
    return last_kept >= (int64_t)plan->n ? (int64_t)plan->n : last_kept + 1;
}

static inline bool is_kept(const general_plan *plan, const line_position *where, size_t j, size_t kept_prefix)
{
    if (j >= kept_prefix)
        return false;
    if (plan->has_where) {
        const general_operand *w = &plan->operands[GENERAL_WHERE];
        const uint8_t *bytes = (const uint8_t *)(const void *)w->base;
        if (bytes[where->offset[GENERAL_WHERE] + (int64_t)j * w->strides[plan->axis]] == 0)
            return false;
    }
    return true;
}

/* The ALiBi slope of a head as a double-double (0 without ALiBi): what the
 * f64 logits take; alibi_slope is its high part, for the f32 kernels (which
 * split it into two floats, 48 bits). */
static inline dd alibi_slope_wide(const general_plan *plan, int64_t head)
{
    if (!plan->alibi)
        return (dd){0.0, 0.0};
    if (head < ALIBI_SLOPE_TABLE)
        return (dd){plan->alibi_slopes[head], plan->alibi_slopes_low[head]};
    if (plan->alibi_part_size != 0) {
        const uint64_t h2 = plan->alibi_heads_pow2, size = plan->alibi_part_size, h = (uint64_t)head;
        const uint64_t q = h < h2 ? 2 * (h + 1) : 2 * (h - h2) + 1, b = q % size, a = q / size;
        return dd_mul((dd){plan->alibi_fraction[b], plan->alibi_fraction_low[b]},
                      (dd){plan->alibi_whole[a], plan->alibi_whole_low[a]});
    }
    dd slope;
    alibi_slope_parts(plan->alibi_max_bias, plan->alibi_heads_pow2, head, &slope.hi, &slope.lo);
    return slope;
}

static inline double alibi_slope(const general_plan *plan, int64_t head)
{
    return alibi_slope_wide(plan, head).hi;
}

/* lines.c */
void gather_line(const general_plan *plan, int operand, const line_position *where, void *out);
bool gather_transposed(const general_plan *plan, int operand, const line_position *positions, size_t line_count,
                       char *rows);
void scatter_f32(const softmax_kernels *kernels, char *base, softmax_dtype type, int64_t offset, int64_t stride,
                 const float *in, size_t n);
void scatter_f64(char *base, softmax_dtype type, int64_t offset, int64_t stride, const double *in, size_t n);

/* masks.c */
size_t runs_of(const general_plan *plan, size_t first_line, size_t count, line_run *out, line_position *step);
/* The dimension runs_of's runs go along (the innermost one but the axis),
 * -1 if none (a single line). */
int runs_dimension(const general_plan *plan);
line_position step_along(const general_plan *plan, int inner);
void positions_of(const general_plan *plan, size_t first_line, size_t count, line_position *out);
line_position position_of(const general_plan *plan, size_t line);
void masked_logits(const general_plan *plan, const line_position *where, const double *x, size_t n, dd *z_wide,
                   double *z_double);
bool split_line(const general_plan *plan, const line_position *where, const float *x, float *hi, double *line);
void double_double_line(softmax_op op, const dd *z, double *y, size_t n);
void set_excluded(const general_plan *plan, const line_position *where, void *line, double value);
void exclude_f32(const general_plan *plan, const line_position *where, float *line);
void exclude_f64(const general_plan *plan, const line_position *where, double *line);
bool gather_excluding_f32(const general_plan *plan, const line_position *where, char *line_bytes);

#endif /* SOFTMAX_GENERAL_INTERNAL_H */
