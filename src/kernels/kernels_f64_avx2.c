/* kernels_f64_avx2.c -- the f64 kernels compiled for AVX2 + FMA; the table
 * softmax_kernels_f64_avx2 is the only symbol it exports. */
#define KERNELS_NAME softmax_kernels_f64_avx2

#include "vec_avx2.h"

#include "type_f64.h"
/* Rows of up to two vectors are tiny here (thresholds.h). */
#define TINY_VECTORS TINY_VECTORS_AVX2

#include "kernels.h"
