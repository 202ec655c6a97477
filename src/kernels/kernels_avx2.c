/* kernels_avx2.c -- the SIMD kernels compiled for AVX2 + FMA. */
#include "vec_avx2.h"

#include "simd_kernels.h"
