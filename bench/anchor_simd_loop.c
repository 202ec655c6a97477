/*
 * anchor_simd_loop.c -- the same three-pass loop as anchor_naive.c, written
 * the way a performance-aware user would: OpenMP simd pragmas and, through
 * CMake, -O3 -ffast-math -march=native on this file only, so that GCC
 * vectorises it and calls glibc's vector expf (libmvec). -ffast-math is a
 * compile flag of this file, never a link flag: linking with it would turn
 * on flush-to-zero for the whole benchmark process.
 *
 * Along axis 0 it sweeps the rows in memory order and keeps one running max
 * and sum per column (vectorised across columns), as one writes
 * np.max(x, axis=0): three passes over the tensor, no strided walk.
 */
#include <math.h>
#include <stdlib.h>

#include "bench.h"

#define PRAGMA(text) _Pragma(#text)
#define SIMD_FOR PRAGMA(omp simd)
#define SIMD_MAX(variable) PRAGMA(omp simd reduction(max : variable))
#define SIMD_SUM(variable) PRAGMA(omp simd reduction(+ : variable))
#include "loop_rows.h"

typedef struct simd_loop_context {
    bench_problem problem;
    float *column_max; /* cols floats */
    float *column_sum; /* cols floats */
} simd_loop_context;

/* Columns [begin, end) of the axis-0 problem. */
static void sweep_columns(const bench_problem *p, float *max, float *sum, size_t begin, size_t end)
{
    const size_t cols = p->cols;
    const float s = p->scale;
    if (p->op == BENCH_BACKWARD) {
        for (size_t c = begin; c < end; c++)
            sum[c] = 0.0f;
        for (size_t r = 0; r < p->rows; r++) {
            const float *y = p->y + r * cols, *dy = p->dy + r * cols;
            SIMD_FOR
            for (size_t c = begin; c < end; c++)
                sum[c] += dy[c] * y[c];
        }
        for (size_t r = 0; r < p->rows; r++) {
            const float *y = p->y + r * cols, *dy = p->dy + r * cols;
            float *dx = p->out + r * cols;
            SIMD_FOR
            for (size_t c = begin; c < end; c++)
                dx[c] = s * y[c] * (dy[c] - sum[c]);
        }
        return;
    }
    for (size_t c = begin; c < end; c++) {
        max[c] = -INFINITY;
        sum[c] = 0.0f;
    }
    for (size_t r = 0; r < p->rows; r++) {
        const float *x = p->x + r * cols;
        SIMD_FOR
        for (size_t c = begin; c < end; c++)
            max[c] = fmaxf(max[c], s * x[c]);
    }
    for (size_t r = 0; r < p->rows; r++) {
        const float *x = p->x + r * cols;
        float *y = p->out + r * cols;
        if (p->op == BENCH_FORWARD) {
            SIMD_FOR
            for (size_t c = begin; c < end; c++) {
                float e = expf(s * x[c] - max[c]);
                y[c] = e;
                sum[c] += e;
            }
        } else {
            SIMD_FOR
            for (size_t c = begin; c < end; c++)
                sum[c] += expf(s * x[c] - max[c]);
        }
    }
    if (p->op == BENCH_FORWARD) {
        for (size_t c = begin; c < end; c++)
            sum[c] = 1.0f / sum[c];
        for (size_t r = 0; r < p->rows; r++) {
            float *y = p->out + r * cols;
            SIMD_FOR
            for (size_t c = begin; c < end; c++)
                y[c] *= sum[c];
        }
    } else {
        for (size_t c = begin; c < end; c++)
            sum[c] = max[c] + logf(sum[c]);
        for (size_t r = 0; r < p->rows; r++) {
            const float *x = p->x + r * cols;
            float *y = p->out + r * cols;
            SIMD_FOR
            for (size_t c = begin; c < end; c++)
                y[c] = s * x[c] - sum[c];
        }
    }
}

static void simd_loop_axis0(const simd_loop_context *context)
{
    const bench_problem *p = &context->problem;
    const int threads = p->threads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int t = 0; t < threads; t++) {
        /* Column ranges of whole cache lines (16 floats) per thread. */
        size_t lines = (p->cols + 15) / 16;
        size_t begin = lines * (size_t)t / (size_t)threads * 16;
        size_t end = lines * (size_t)(t + 1) / (size_t)threads * 16;
        if (end > p->cols)
            end = p->cols;
        if (begin < end)
            sweep_columns(p, context->column_max, context->column_sum, begin, end);
    }
}

static void run_simd_loop(void *opaque)
{
    const simd_loop_context *context = opaque;
    if (context->problem.axis == 0)
        simd_loop_axis0(context);
    else
        loop_last_axis(&context->problem);
}

static void destroy_simd_loop(void *opaque)
{
    simd_loop_context *context = opaque;
    free(context->column_max);
    free(context->column_sum);
    free(context);
}

int anchor_simd_loop_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    simd_loop_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        *why_not = "out of memory";
        return -1;
    }
    context->problem = *problem;
    if (problem->axis == 0) {
        context->column_max = malloc(problem->cols * sizeof(float));
        context->column_sum = malloc(problem->cols * sizeof(float));
        if (context->column_max == NULL || context->column_sum == NULL) {
            destroy_simd_loop(context);
            *why_not = "out of memory";
            return -1;
        }
    }
    runner->run = run_simd_loop;
    runner->destroy = destroy_simd_loop;
    runner->context = context;
    return 0;
}
