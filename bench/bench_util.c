/*
 * bench_util.c -- small helpers shared by the anchors.
 */
#include "bench.h"

size_t bench_elements(const bench_problem *problem)
{
    return problem->rows * problem->cols;
}

void bench_scale_pass(float *dst, const float *src, size_t n, float scale, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (size_t i = 0; i < n; i++)
        dst[i] = scale * src[i];
}
