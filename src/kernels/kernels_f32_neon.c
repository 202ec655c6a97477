/* kernels_f32_neon.c -- the f32 kernels compiled for AArch64 Advanced SIMD; the table
 * softmax_kernels_f32_neon is the only symbol it exports. */
#define KERNELS_NAME softmax_kernels_f32_neon

#include "vec_neon.h"

#include "type_f32.h"

#include "kernels.h"
