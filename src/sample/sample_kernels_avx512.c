/* sample_kernels_avx512.c -- the sampler's row kernels compiled for AVX-512; the
 * table softmax_sample_kernels_avx512 is the only symbol it exports. */
#define SAMPLE_KERNELS_NAME softmax_sample_kernels_avx512

#include "kernels/vec_avx512.h"

#include "sample_kernels.h"
