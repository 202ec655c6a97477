/* kernels_f32_avx512.c -- the f32 kernels compiled for AVX-512 (F/DQ/BW/VL); the table
 * softmax_kernels_f32_avx512 is the only symbol it exports. */
#define KERNELS_NAME softmax_kernels_f32_avx512

#include "vec_avx512.h"

#include "additive_split_avx512.h"
#include "half_avx512.h"
#include "type_f32.h"

#include "kernels.h"
