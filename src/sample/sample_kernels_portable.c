/* The sampler's row kernels on the portable path (16-byte vectors). */
#define SAMPLE_VECTOR_BYTES 16
#define SAMPLE_KERNELS_NAME softmax_sample_kernels_portable
#include "sample_body.h"
