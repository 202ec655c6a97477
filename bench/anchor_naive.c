/*
 * anchor_naive.c -- the naive libm loop: max, expf-store-sum, scale, one row
 * at a time, scalar (compiled with the project's ordinary flags, no
 * -ffast-math, so every expf is a call into libm). Along axis 0 it walks
 * each column with a stride of `cols` elements, as the textbook loop does.
 */
#include <math.h>
#include <stdlib.h>

#include "bench.h"
#include "loop_rows.h"

typedef struct naive_context {
    bench_problem problem;
} naive_context;

static void column_softmax(const float *x, float *y, size_t rows, size_t stride, float scale)
{
    float max = -INFINITY;
    for (size_t i = 0; i < rows; i++)
        max = fmaxf(max, scale * x[i * stride]);
    float sum = 0.0f;
    for (size_t i = 0; i < rows; i++) {
        float e = expf(scale * x[i * stride] - max);
        y[i * stride] = e;
        sum += e;
    }
    float inverse = 1.0f / sum;
    for (size_t i = 0; i < rows; i++)
        y[i * stride] *= inverse;
}

static void column_log_softmax(const float *x, float *y, size_t rows, size_t stride, float scale)
{
    float max = -INFINITY;
    for (size_t i = 0; i < rows; i++)
        max = fmaxf(max, scale * x[i * stride]);
    float sum = 0.0f;
    for (size_t i = 0; i < rows; i++)
        sum += expf(scale * x[i * stride] - max);
    float log_sum_exp = max + logf(sum);
    for (size_t i = 0; i < rows; i++)
        y[i * stride] = scale * x[i * stride] - log_sum_exp;
}

static void column_softmax_backward(const float *y, const float *dy, float *dx, size_t rows, size_t stride, float scale)
{
    float dot = 0.0f;
    for (size_t i = 0; i < rows; i++)
        dot += dy[i * stride] * y[i * stride];
    for (size_t i = 0; i < rows; i++)
        dx[i * stride] = scale * y[i * stride] * (dy[i * stride] - dot);
}

static void naive_axis0(const bench_problem *p)
{
#pragma omp parallel for num_threads(p->threads) schedule(static) if (p->threads > 1)
    for (size_t c = 0; c < p->cols; c++) {
        switch (p->op) {
        case BENCH_FORWARD:
            column_softmax(p->x + c, p->out + c, p->rows, p->cols, p->scale);
            break;
        case BENCH_LOG:
            column_log_softmax(p->x + c, p->out + c, p->rows, p->cols, p->scale);
            break;
        case BENCH_BACKWARD:
            column_softmax_backward(p->y + c, p->dy + c, p->out + c, p->rows, p->cols, p->scale);
            break;
        }
    }
}

static void run_naive(void *opaque)
{
    const bench_problem *p = &((naive_context *)opaque)->problem;
    if (p->axis == 0)
        naive_axis0(p);
    else
        loop_last_axis(p);
}

int anchor_naive_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    naive_context *context = malloc(sizeof *context);
    if (context == NULL) {
        *why_not = "out of memory";
        return -1;
    }
    context->problem = *problem;
    runner->run = run_naive;
    runner->destroy = free;
    runner->context = context;
    return 0;
}
