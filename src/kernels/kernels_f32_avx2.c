/* kernels_f32_avx2.c -- the f32 kernels compiled for AVX2 + FMA + F16C; the table
 * softmax_kernels_f32_avx2 is the only symbol it exports. */
#define KERNELS_NAME softmax_kernels_f32_avx2

#include "vec_avx2.h"

#include "half_avx2.h"
#include "type_f32.h"
/* Rows of up to two vectors are tiny here (thresholds.h). */
#define TINY_VECTORS TINY_VECTORS_AVX2

#include "kernels.h"
