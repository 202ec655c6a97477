/* sample_kernels_avx2.c -- the sampler's row kernels compiled for AVX2 + FMA; the
 * table softmax_sample_kernels_avx2 is the only symbol it exports. */
#define SAMPLE_KERNELS_NAME softmax_sample_kernels_avx2

#include "kernels/vec_avx2.h"

#include "sample_kernels.h"
