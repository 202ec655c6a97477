/*
 * general.h -- the general pipeline behind softmax_execute() (general.c) and
 * the description it runs from (layout.c). Internal.
 */
#ifndef SOFTMAX_GENERAL_H
#define SOFTMAX_GENERAL_H

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

typedef struct general_plan {
    softmax_op op;
    bool forward;
    int ndim;
    int axis;
    size_t shape[SOFTMAX_MAX_NDIM];
    size_t n;     /* shape[axis] */
    size_t lines; /* elements / n */
    double scale;
    softmax_dtype compute;               /* F32 or F64 */
    const softmax_kernels *kernels;      /* contiguous kernels of the computation type */
    const softmax_kernels *wide_kernels; /* f64 kernels (additive masks on f32 work) */
    general_operand operands[GENERAL_OPERANDS];
    bool has_mask;
    bool mask_only_excludes; /* every mask value is 0 or -inf: the mask only excludes */
    bool has_where;
    bool causal;
    int64_t causal_offset;
    bool alibi;
    int head_axis;
    double alibi_m0;
    double alibi_m1;
    uint64_t alibi_heads_pow2;
    /* dst is row-major contiguous in the computation type, softmax along the
     * last axis: blocks of lines are contiguous rows of dst. */
    bool dst_rows_contiguous;
    /* Long contiguous half-precision rows in and out (same type), forward,
     * unmasked: the kernels' half_row streams them. */
    bool half_rows;
    /* Contiguous bf16 / f16 rows in, contiguous f32 or same-type rows out,
     * forward, unmasked: the kernels' half_line reads them directly. */
    bool half_lines;
    /* The same under SOFTMAX_FLAG_FAST (rows long enough for fast_row): the
     * kernels' fast_half_line reads them directly. */
    bool fast_half_lines;
    /* Contiguous f32 rows in and out, forward, with masks of unit stride
     * along the axis (`where`, causal, an f32 / bf16 / f16 mask, ALiBi
     * unless with a mask that adds finite values): the kernels'
     * excluding_row reads them directly, adding the bias as it reads x. */
    bool excluding_lines;
    /* Contiguous same-type rows along the last axis with only a causal mask. */
    bool causal_rows_fast;
    /* SOFTMAX_FLAG_FAST on an unmasked forward op computed in f32 (any
     * data type, any layout): the gathered blocks take the fast kernels. */
    bool fast;
} general_plan;

/* Validates the layout, type and mask fields of *desc (the basic fields are
 * already checked) and fills *plan. Sets *plain when the call is a
 * contiguous, single-type, unmasked one for the fast path in api.c.
 * Returns a status with the error recorded. */
int softmax_general_prepare(const char *fn, const softmax_desc *desc, const void *src, const void *grad, void *dst,
                            general_plan *plan, bool *plain);

/* Runs a prepared plan (general.c). */
int softmax_general_run(const general_plan *plan);

#endif /* SOFTMAX_GENERAL_H */
