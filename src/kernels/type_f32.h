/*
 * type_f32.h -- the data-type parameters of the f32 kernels (see kernels.h
 * for what each one means). Included by kernels_f32_<isa>.c.
 */
#ifndef SOFTMAX_TYPE_F32_H
#define SOFTMAX_TYPE_F32_H

#include <float.h>

#include "thresholds.h"

#define KERNEL_F32 1
#define T float
#define T_MAX FLT_MAX
/* Sums and per-row constants in double (wide.h). */
#define WIDE double
#define V vf32
#define LANES ((size_t)F32_LANES)
#define P(op) f32_##op
#define ACC f32_acc
#define EXP_FLOOR_ARG 160
#define OFFSET_LIMIT OFFSET_LIMIT_F32 /* thresholds.h */
#define FMA_T fmaf
#define T_FLOOR floorf
#define T_FABS fabsf
#define NORMALIZE_SHIFT 64
#define NORMALIZE_SCALE 0x1p64
#define NORMALIZE_UNSCALE 0x1p-64
#define WIDE_FABS fabs
#define REF_LINES softmax_ref_lines_f32
#define KEY_BIAS 0x1p-14f
/* A row's log-sum below this (one ulp of 1) is taken as 0 (exp/exact.h). */
#define LOG_SUM_ZERO_BELOW 0x1p-23
/* The tiny rows' log-softmax constants in vectors (f32_neg_log_sum). */
#define NEG_LOG_SUM_VECTOR 1

#endif
