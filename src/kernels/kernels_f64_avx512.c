/* kernels_f64_avx512.c -- the f64 kernels compiled for AVX-512 (F/DQ/BW/VL); the table
 * softmax_kernels_f64_avx512 is the only symbol it exports. */
#define KERNELS_NAME softmax_kernels_f64_avx512

#include "vec_avx512.h"

#include "type_f64.h"

#include "kernels.h"
