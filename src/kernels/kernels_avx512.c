/* kernels_avx512.c -- the SIMD kernels compiled for AVX-512 (F/DQ/BW/VL). */
#include "vec_avx512.h"

#include "simd_kernels.h"
