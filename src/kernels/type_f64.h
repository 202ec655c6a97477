/*
 * type_f64.h -- the data-type parameters of the f64 kernels (see kernels.h
 * for what each one means). Included by kernels_f64_<isa>.c.
 */
#ifndef SOFTMAX_TYPE_F64_H
#define SOFTMAX_TYPE_F64_H

#include <float.h>

#include "thresholds.h"

#define KERNEL_F64 1
#define T double
#define T_MAX DBL_MAX
/* Sums and per-row constants in double-double (wide.h): no long double. */
#define WIDE dd
#define V vf64
#define LANES ((size_t)F64_LANES)
#define P(op) f64_##op
#define ACC f64_acc
#define EXP_FLOOR_ARG 1100
#define OFFSET_LIMIT OFFSET_LIMIT_F64 /* thresholds.h */
#define FMA_T fma
#define T_FLOOR floor
#define T_FABS fabs
#define NORMALIZE_SHIFT 128
#define NORMALIZE_SCALE 0x1p128
#define NORMALIZE_UNSCALE 0x1p-128
#define REF_LINES softmax_ref_lines_f64
#define KEY_BIAS 0x1p-36
/* A row's log-sum below this (one ulp of 1) is taken as 0 (exp/exact.h). */
#define LOG_SUM_ZERO_BELOW 0x1p-52

#endif
