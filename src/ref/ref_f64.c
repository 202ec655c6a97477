/*
 * ref_f64.c -- portable f64 kernels: every intermediate in long double, one
 * rounding to double at the end.
 *
 * The error analysis needs at least 64 significand bits (x87 extended or
 * IEEE quad): with long double == double the rounding of scale * (x - max)
 * alone costs up to |t| ulp (hundreds of ulp for t near -700).
 */
#include <float.h>

#if LDBL_MANT_DIG < 64
#error "the portable f64 path needs a long double of at least 64 significand bits"
#endif

#define REAL double
#define WIDE long double
#define WIDE_EXP expl
#define WIDE_LOG logl
#define WIDE_FABS fabsl
#define LINES_NAME softmax_ref_lines_f64
#define KERNELS_NAME softmax_ref_kernels_f64
#include "ref_lines.h"
