/* kernels_f64_neon.c -- the f64 kernels compiled for AArch64 Advanced SIMD; the table
 * softmax_kernels_f64_neon is the only symbol it exports. */
#define KERNELS_NAME softmax_kernels_f64_neon

#include "vec_neon.h"

#include "type_f64.h"

#include "kernels.h"
