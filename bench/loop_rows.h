/*
 * loop_rows.h -- the plain three-pass loops a user writes by hand, for one
 * contiguous row, written once and included by two anchors:
 *
 *   anchor_naive.c      compiled as is: scalar code calling libm's expf;
 *   anchor_simd_loop.c  with SIMD_FOR / SIMD_MAX / SIMD_SUM set to OpenMP
 *                       simd pragmas and -ffast-math: GCC then vectorises the
 *                       loops and calls glibc's vector expf (libmvec).
 *
 * The scale is folded into the loops (z = scale * x, max of z, exp(z - max)),
 * as anyone writing the loop would do; the row maximum of z also covers
 * scale < 0. No care is taken of -inf, +inf or NaN: that is the point of a
 * naive anchor.
 */
#ifndef SIMD_FOR
#define SIMD_FOR
#define SIMD_MAX(variable)
#define SIMD_SUM(variable)
#endif

static void loop_softmax_row(const float *x, float *y, size_t n, float scale)
{
    float max = -INFINITY;
    SIMD_MAX(max)
    for (size_t i = 0; i < n; i++)
        max = fmaxf(max, scale * x[i]);
    float sum = 0.0f;
    SIMD_SUM(sum)
    for (size_t i = 0; i < n; i++) {
        float e = expf(scale * x[i] - max);
        y[i] = e;
        sum += e;
    }
    float inverse = 1.0f / sum;
    SIMD_FOR
    for (size_t i = 0; i < n; i++)
        y[i] *= inverse;
}

static void loop_log_softmax_row(const float *x, float *y, size_t n, float scale)
{
    float max = -INFINITY;
    SIMD_MAX(max)
    for (size_t i = 0; i < n; i++)
        max = fmaxf(max, scale * x[i]);
    float sum = 0.0f;
    SIMD_SUM(sum)
    for (size_t i = 0; i < n; i++)
        sum += expf(scale * x[i] - max);
    float log_sum_exp = max + logf(sum);
    SIMD_FOR
    for (size_t i = 0; i < n; i++)
        y[i] = scale * x[i] - log_sum_exp;
}

static void loop_softmax_backward_row(const float *y, const float *dy, float *dx, size_t n, float scale)
{
    float dot = 0.0f;
    SIMD_SUM(dot)
    for (size_t i = 0; i < n; i++)
        dot += dy[i] * y[i];
    SIMD_FOR
    for (size_t i = 0; i < n; i++)
        dx[i] = scale * y[i] * (dy[i] - dot);
}

static void loop_one_row(const bench_problem *p, size_t r)
{
    const size_t n = p->cols, offset = r * n;
    switch (p->op) {
    case BENCH_FORWARD:
        loop_softmax_row(p->x + offset, p->out + offset, n, p->scale);
        break;
    case BENCH_LOG:
        loop_log_softmax_row(p->x + offset, p->out + offset, n, p->scale);
        break;
    case BENCH_BACKWARD:
        loop_softmax_backward_row(p->y + offset, p->dy + offset, p->out + offset, n, p->scale);
        break;
    }
}

/* Every row of the problem, rows split over threads. One thread does not
 * enter an OpenMP region at all: a region costs about a microsecond even
 * with if(0), most of a single short row's time and nothing a user's loop
 * over one row pays. */
static void loop_last_axis(const bench_problem *p)
{
    if (p->threads <= 1) {
        for (size_t r = 0; r < p->rows; r++)
            loop_one_row(p, r);
        return;
    }
#pragma omp parallel for num_threads(p->threads) schedule(static)
    for (size_t r = 0; r < p->rows; r++)
        loop_one_row(p, r);
}
