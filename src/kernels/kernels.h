/*
 * kernels.h -- the SIMD kernels of one data type on one ISA, written once
 * against the vector vocabulary (vec_<isa>.h) and the type parameters
 * (type_f32.h, type_f64.h). Each translation unit kernels_<type>_<isa>.c
 * defines KERNELS_NAME (the one exported symbol, the table at the end),
 * includes the vocabulary, the type parameters and this file; every other
 * function is static and keeps its plain name. The parameters:
 *
 *   T, WIDE          data type and the type that carries sums and per-row
 *                    constants (double for f32, double-double for f64;
 *                    its operations in wide.h)
 *   V, LANES, P(op)  the vector type, its lane count, and the vocabulary's
 *                    name for `op` on it (f32_add, f64_add, ...)
 *   ACC              the vocabulary's wide accumulator type
 *   KEY_BIAS         a margin larger than the estimate's error (2^-14, 2^-36)
 *   EXP_FLOOR_ARG    exponent below which 2^u is 0 in T (160, 1100)
 *   OFFSET_LIMIT     largest |scale * log2(e) * max| the exact argument
 *                    reduction supports (2^22, 2^50)
 *   WIDE_FABS        fabs of WIDE (f32 only: the f32-only kernels, where
 *                    WIDE is double, use double arithmetic directly)
 *   NORMALIZE_SHIFT  the reciprocal of the sum is applied times 2^SHIFT and
 *                    the result scaled back, so that its low part never
 *                    underflows (64 for f32, 128 for f64)
 *   REF_LINES        the reference line kernels of T
 *   KERNEL_F32       defined for f32 (the polynomials, the fast mode)
 *   HALF_ROWS        defined where the f32 kernels read and write bf16 / f16
 *                    rows (half_<isa>.h)
 *
 * The parts, in the order they build on each other (src/kernels/README.md
 * maps which kernel serves which op, length and layout):
 */
#if !defined(KERNELS_NAME) || !defined(T) || !defined(P)
#error "kernels.h is included by kernels_<type>_<isa>.c after the vocabulary and the type parameters"
#endif

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "compound.h" /* accumulators, reciprocals, the vector log: above the vocabulary */
#include "internal.h"
#include "preconditions.h"
#include "thresholds.h"
#include "wide.h" /* WIDE (double / double-double) and its operations */

/* Exact split summation of exps (exp_block_any): grid 2^-16, runs of 32
 * iterations per accumulator. */
#define SPLIT_MAGIC 192.0
#define SPLIT_RUN 32

/* The order matters: each part uses the ones above it. */
// clang-format off
#include "exp/exact.h"           /* the exponential, the per-row plan */
#include "rows/access.h"         /* reads (masks, half sources), writes, the row maximum */
#include "rows/exp_blocks.h"     /* exps and sums of a block, normalisation */
#include "rows/streamed.h"       /* rows beyond the cache: block summaries, rescaling */
#include "rows/cached.h"         /* one row of more than SMALL_VECTORS vectors */
#include "rows/reduced_bias.h"   /* rows with a bias reduced once per call */
#include "gradients/rows.h"      /* backward ops and the JVP */
#include "exp/fast.h"            /* the fast mode's exponential */
#include "rows/tiny.h"           /* rows of at most one vector */
#include "rows/small.h"          /* rows of at most SMALL_VECTORS vectors, grouped */
#include "rows/masked_rows.h"    /* short masked rows and causal prefixes, grouped */
#include "rows/fast_cached.h"    /* one fast-mode row of more than SMALL_VECTORS vectors */
#include "rows/switch.h"         /* the regime switch of contiguous rows */
#include "rows/causal_prefix.h"  /* rows of which a prefix is kept */
#include "rows/across_threads.h" /* one long row, several threads */
#include "columns/columns.h"     /* a non-last axis */
#include "transpose.h"           /* strided lines gathered into rows */
#include "rows/half_streamed.h"  /* long half-precision rows */
// clang-format on

/*
 * The table, reference-first: every slot starts from the portable entry
 * (src/ref/portable_slots.c, or a wrapper of this unit's rows) and the
 * parts above replace it where this (type, ISA) has its own kernel; the
 * capability bits say which replacements happened, so that callers never
 * test a pointer. A new ISA fills only what it has.
 */
#if SOFTMAX_HAS_FAST_EXP
#define TABLE_FAST_ROWS FAST_ROWS_FN
#define TABLE_FAST_MODE SOFTMAX_KERNELS_FAST_MODE
#else
/* No fast exponential here: SOFTMAX_FLAG_FAST computes rows(). */
static void rows_without_fast_mode(softmax_op op, const void *src, void *dst, size_t rows, size_t n, double scale)
{
    contiguous_rows(op, src, NULL, dst, rows, n, scale);
}
#define TABLE_FAST_ROWS rows_without_fast_mode
#define TABLE_FAST_MODE 0
#endif

#if defined(HALF_ROWS) /* masked and half-precision rows read in place come together */
#define TABLE_EXCLUDING_ROW EXCLUDING_ROW_FN
#define TABLE_HALF_LINE HALF_LINE_FN
#define TABLE_HALF_ROW HALF_ROW_FN
#define TABLE_IN_PLACE (SOFTMAX_KERNELS_MASKED_ROWS | SOFTMAX_KERNELS_HALF_ROWS)
#define TABLE_REDUCE_BIAS REDUCE_BIAS_FN
#define TABLE_REDUCED_BIAS_ROW REDUCED_BIAS_ROW_FN
#if SOFTMAX_HAS_FAST_EXP
#define TABLE_FAST_HALF_LINE FAST_HALF_LINE_FN
#else
#define TABLE_FAST_HALF_LINE softmax_portable_half_line
#endif
#else
#define TABLE_EXCLUDING_ROW softmax_portable_excluding_row
#define TABLE_HALF_LINE softmax_portable_half_line
#define TABLE_HALF_ROW softmax_portable_half_row
#define TABLE_FAST_HALF_LINE softmax_portable_half_line
#define TABLE_IN_PLACE 0
#define TABLE_REDUCE_BIAS softmax_portable_reduce_bias
#define TABLE_REDUCED_BIAS_ROW softmax_portable_reduced_bias_row
#endif

#ifdef HALF_WIDEN
#define TABLE_WIDEN_HALF HALF_WIDEN
#define TABLE_NARROW_HALF HALF_NARROW
#else /* the f64 kernels, and ISAs without half conversions */
#define TABLE_WIDEN_HALF softmax_portable_widen_half
#define TABLE_NARROW_HALF softmax_portable_narrow_half
#endif

#ifdef SPLIT_LOGITS
#define TABLE_SPLIT_LOGITS SPLIT_LOGITS
#define TABLE_APPLY_LOW_PARTS APPLY_LOW_PARTS
#else
#define TABLE_SPLIT_LOGITS softmax_portable_split_logits
#define TABLE_APPLY_LOW_PARTS softmax_portable_apply_low_parts
#endif

const softmax_kernels KERNELS_NAME = {
    .element_size = sizeof(T),
    .lanes = LANES,
    .capabilities = TABLE_FAST_MODE | TABLE_IN_PLACE,
    .rows = contiguous_rows,
    .fast_rows = TABLE_FAST_ROWS,
    .prefix_rows = prefix_rows,
    .columns = column_lines,
    .column_chunk = COLUMN_CHUNK,
    .long_row = long_row,
    .long_row_min = LONG_ROW_MIN_BLOCKS * SUM_BLOCK,
    .exp = exp_for_tests,
    .transpose_lines = transpose_lines,
    .fp_mode_begin = vec_flush_to_zero_begin,
    .fp_mode_end = vec_flush_to_zero_end,
    .excluding_row = TABLE_EXCLUDING_ROW,
    .excluding_rows = EXCLUDING_ROWS_FN,
    .reduce_bias = TABLE_REDUCE_BIAS,
    .reduced_bias_row = TABLE_REDUCED_BIAS_ROW,
    .adding_rows = ADDING_ROWS_FN,
    .grouped_rows_max = GROUPED_ROWS_MAX,
    .half_line = TABLE_HALF_LINE,
    .widen_half = TABLE_WIDEN_HALF,
    .narrow_half = TABLE_NARROW_HALF,
    .half_row = TABLE_HALF_ROW,
    .fast_half_line = TABLE_FAST_HALF_LINE,
    .split_logits = TABLE_SPLIT_LOGITS,
    .apply_low_parts = TABLE_APPLY_LOW_PARTS,
};
