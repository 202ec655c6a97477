/* The sampler's row kernels on the avx512 path (64-byte vectors). */
#define SAMPLE_VECTOR_BYTES 64
#define SAMPLE_KERNELS_NAME softmax_sample_kernels_avx512
#include "sample_body.h"
