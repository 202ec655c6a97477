/*
 * ref_f64.c -- portable f64 kernels. The forward lines carry their
 * intermediates in double-double (double_double.h: about 106 bits from
 * double operations alone, exp and log to 2^-71), one rounding to double at
 * the end; the gradients are double around compensated sums. No long
 * double: the same bits on every platform with IEEE doubles, whatever its
 * long double is.
 *
 * Why more than 53 bits: rounding scale * (x - max) to double alone would
 * cost up to |t| ulp (hundreds of ulp for t near -700).
 */
#define REF_DOUBLE_DOUBLE
#include "double_double.h"

#define REAL double
#define WIDE double
#define WIDE_EXP dd_exp_double
#define WIDE_LOG dd_log_double
#define WIDE_FABS fabs
#define LINES_NAME softmax_ref_lines_f64
#define KERNELS_NAME softmax_ref_kernels_f64
#include "ref_lines.h"
