/* The sampler's row kernels on the avx2 path (32-byte vectors). */
#define SAMPLE_VECTOR_BYTES 32
#define SAMPLE_KERNELS_NAME softmax_sample_kernels_avx2
#include "sample_body.h"
