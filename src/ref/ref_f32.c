/*
 * ref_f32.c -- portable f32 kernels: every intermediate in double (53 bits
 * against the 24 of float), one rounding to float at the end.
 */
#define REAL float
#define WIDE double
#define WIDE_EXP exp
#define WIDE_LOG log
#define WIDE_FABS fabs
#define LINES_NAME softmax_ref_lines_f32
#define KERNELS_NAME softmax_ref_kernels_f32
#include "ref_lines.h"
