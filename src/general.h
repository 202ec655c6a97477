/*
 * general.h -- the plan of one softmax_execute() call (planner.c: every
 * check, the one dispatch, the route) and the general pipeline that runs
 * the routes of the general API (src/general/). Internal.
 */
#ifndef SOFTMAX_GENERAL_H
#define SOFTMAX_GENERAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "kernels/thresholds.h" /* HALF_ROW_MIN, FAST_HALF_LINE_MIN */

enum { GENERAL_SRC, GENERAL_GRAD, GENERAL_DST, GENERAL_MASK, GENERAL_WHERE, GENERAL_OPERANDS };

typedef struct general_operand {
    const char *base; /* NULL if the operand is absent */
    char *base_out;   /* the same pointer, writable (dst only) */
    softmax_dtype type;
    int64_t strides[SOFTMAX_MAX_NDIM]; /* elements */
} general_operand;

/*
 * How a call runs, chosen once by the planner from the layout, the types,
 * the masks and the capabilities of the active path's kernels (the first
 * that applies, in this order):
 */
typedef enum softmax_route {
    SOFTMAX_ROUTE_EMPTY,       /* no element: nothing to compute */
    SOFTMAX_ROUTE_ROWS,        /* one type, contiguous, unmasked, last axis: kernels->rows (long_row) */
    SOFTMAX_ROUTE_FAST_ROWS,   /* the same under SOFTMAX_FLAG_FAST: kernels->fast_rows */
    SOFTMAX_ROUTE_COLUMNS,     /* one type, contiguous, unmasked, a non-last axis: kernels->columns */
    SOFTMAX_ROUTE_CAUSAL_ROWS, /* one type, contiguous, only a causal mask: kernels->prefix_rows, no copy */
    /* The rest runs in blocks of lines (general/blocks.c run_block); lines
     * the in-place kernels decline are gathered. */
    SOFTMAX_ROUTE_HALF_ROWS,       /* long bf16 / f16 rows in and out, unmasked: kernels->half_row */
    SOFTMAX_ROUTE_HALF_LINES,      /* bf16 / f16 rows into f32 or the same type, unmasked: kernels->half_line */
    SOFTMAX_ROUTE_FAST_HALF_LINES, /* the same under SOFTMAX_FLAG_FAST: kernels->fast_half_line */
    SOFTMAX_ROUTE_MASKED_LINES,    /* contiguous f32 rows with unit-stride masks: kernels->excluding_row */
    SOFTMAX_ROUTE_GATHERED,        /* anything else: gathered, converted and masked into blocks */
    SOFTMAX_ROUTE_FAST_GATHERED,   /* the same under SOFTMAX_FLAG_FAST (unmasked, f32 work) */
} softmax_route;

/* The routes whose gathered blocks take the fast kernels. */
static inline bool route_is_fast(softmax_route route)
{
    return route == SOFTMAX_ROUTE_FAST_ROWS || route == SOFTMAX_ROUTE_FAST_HALF_LINES ||
           route == SOFTMAX_ROUTE_FAST_GATHERED;
}

/* When the planner leaves the mask's "only excludes" question to the
 * blocks (general_plan.mask_checked_by_blocks): rows of at least
 * LAZY_MASK_MIN_N elements, a mask whose every stored element serves at
 * most LAZY_MASK_BROADCAST lines. Shorter rows, and masks broadcast
 * further, read less in one pass of their own. */
#define LAZY_MASK_MIN_N ((size_t)256)
#define LAZY_MASK_BROADCAST ((size_t)4)

#define ALIBI_SLOPE_TABLE 64
/* The longest of the tables from which the slopes of heads beyond
 * ALIBI_SLOPE_TABLE are made (general_plan's alibi_part_size): 2 H2 up to
 * its square, 8192 heads. */
#define ALIBI_PART_TABLE 128
/* From this max_bias on (slopes down to 2^-512 and below) every slope is
 * made by itself, not from alibi_plan_parts' tables. */
#define ALIBI_PART_MAX_BIAS 512.0

/* ALiBi's slope of head h (see softmax.h): m0^(h + 1) for the first
 * heads_pow2 heads, m1^(2 (h - heads_pow2) + 1) after them, as *high +
 * *low (relative error below 2^-70). general/masks.c. */
void alibi_slope_parts(double max_bias, uint64_t heads_pow2, int64_t head, double *high, double *low);

typedef struct general_plan general_plan;
/* The tables of plan's alibi_part_size for `heads` heads (alibi_max_bias
 * and alibi_heads_pow2 set), or alibi_part_size 0 where the slopes are
 * computed one by one: no more heads past ALIBI_SLOPE_TABLE than the
 * tables would have entries, more than ALIBI_PART_TABLE^2 / 2 heads, or
 * max_bias from ALIBI_PART_MAX_BIAS on. Either way a function of the
 * call's heads and max_bias: the same slopes at every call. */
void alibi_plan_parts(general_plan *plan, uint64_t heads);

struct general_plan {
    softmax_route route;
    softmax_op op;
    bool forward;
    int ndim;
    int axis;
    size_t shape[SOFTMAX_MAX_NDIM];
    size_t n;     /* shape[axis] */
    size_t lines; /* elements / n */
    size_t outer; /* product of the extents before the axis */
    size_t inner; /* product of the extents after the axis */
    size_t elements;
    double scale;
    softmax_dtype compute;               /* F32 or F64 */
    const softmax_kernels *kernels;      /* contiguous kernels of the computation type */
    const softmax_kernels *wide_kernels; /* f64 kernels (additive masks on f32 work) */
    general_operand operands[GENERAL_OPERANDS];
    bool has_mask;
    bool mask_only_excludes; /* every mask value is 0 or -inf: the mask only excludes */
    /* mask_only_excludes is an assumption that the runner checks block by
     * block (general/blocks.c), starting over with the mask added if it
     * fails. */
    bool mask_checked_by_blocks;
    bool has_where;
    bool causal;
    int64_t causal_offset;
    bool alibi;
    int head_axis;
    double alibi_max_bias;
    uint64_t alibi_heads_pow2;
    /* The slopes of the first ALIBI_SLOPE_TABLE heads (of those present),
     * computed once by the planner: the kernels ask for a line's slope per
     * line, and a pow per line was a tenth of an ALiBi + causal call on
     * rows of 128. High and low parts (alibi_slope_parts). */
    double alibi_slopes[ALIBI_SLOPE_TABLE];
    double alibi_slopes_low[ALIBI_SLOPE_TABLE];
    /* The heads from ALIBI_SLOPE_TABLE on (alibi_part_size Q > 0, see
     * alibi_plan_parts): slope 2^(-max_bias q / D), D = 2 H2, q = 2 (h + 1)
     * below H2 and 2 (h - H2) + 1 from it on, as the double-double product
     * of alibi_fraction[q mod Q] = 2^(-max_bias (q mod Q) / D) and
     * alibi_whole[q div Q] = 2^(-max_bias Q (q div Q) / D), each a
     * double-double (high, low). A dd_exp per head (~15 ns) was a tenth of
     * an ALiBi call on 8192 heads of rows of 16; these are about 2 sqrt(D)
     * of them once per plan, and a product per head. */
    uint64_t alibi_part_size;
    double alibi_fraction[ALIBI_PART_TABLE];
    double alibi_fraction_low[ALIBI_PART_TABLE];
    double alibi_whole[ALIBI_PART_TABLE + 1];
    double alibi_whole_low[ALIBI_PART_TABLE + 1];
    /* dst is row-major contiguous in the computation type, softmax along the
     * last axis: blocks of lines are contiguous rows of dst. */
    bool dst_rows_contiguous;
    /* An added f32 bias reduced once for the call (kernels->reduce_bias),
     * at the mask's own element offsets, or NULL: see general/blocks.c,
     * reduced_bias_plan. */
    const float *reduced_g;
    const float *reduced_lo;
};

/* The planner (planner.c): checks every field of *desc and the operands
 * before anything is written, dispatches once and fills *plan with the
 * route. Returns a status with the error recorded. */
int softmax_plan_call(const char *fn, const softmax_desc *desc, const void *src, const void *grad, void *dst,
                      general_plan *plan);

/* The code path the dispatcher chose (dispatch.c), NULL if SOFTMAX_ISA
 * forces one this CPU lacks; records no error (softmax_dispatch_path does,
 * for the same answer). After the first call, one atomic load. */
const softmax_path *softmax_ready_path(void);

/* Whether `count` mask elements of `type` from element `at` of base, `step`
 * apart, are all 0 (either sign) or -inf (planner.c). */
bool mask_run_only_excludes(const char *base, softmax_dtype type, int64_t at, int64_t step, size_t count);

/* Runs a plan of the general routes (SOFTMAX_ROUTE_CAUSAL_ROWS and after;
 * general/blocks.c). */
int softmax_general_run(const general_plan *plan);

#endif /* SOFTMAX_GENERAL_H */
