/* sample_kernels_neon.c -- the sampler's row kernels compiled for AArch64 Advanced SIMD; the
 * table softmax_sample_kernels_neon is the only symbol it exports. */
#define SAMPLE_KERNELS_NAME softmax_sample_kernels_neon

#include "kernels/vec_neon.h"

#include "sample_kernels.h"
