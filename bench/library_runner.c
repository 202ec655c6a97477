/*
 * library_runner.c -- libsoftmax as a benchmark candidate, through the
 * public header only: the pinned entry points along the last axis,
 * softmax_execute() with a 2-d descriptor along axis 0. The scale is passed
 * to the library, which fuses it. library_fast_prepare: the same through
 * softmax_execute() with SOFTMAX_FLAG_FAST (forward ops; the flag changes
 * nothing for the backward op or axis 0).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "softmax.h"

typedef struct library_context {
    bench_problem problem;
    softmax_desc desc; /* axis 0, and the fast mode */
    int through_desc;  /* softmax_execute() with desc instead of the pinned entry points */
} library_context;

static softmax_op desc_op(bench_op op)
{
    switch (op) {
    case BENCH_FORWARD:
        return SOFTMAX_OP_SOFTMAX;
    case BENCH_LOG:
        return SOFTMAX_OP_LOG_SOFTMAX;
    case BENCH_BACKWARD:
        return SOFTMAX_OP_SOFTMAX_BACKWARD;
    }
    return SOFTMAX_OP_SOFTMAX;
}

static int call_library(const library_context *context)
{
    const bench_problem *p = &context->problem;
    /* An atomic store: negligible, and it lets candidates with different
     * thread counts be interleaved. */
    softmax_set_num_threads(p->threads);
    if (context->through_desc) {
        const void *src = p->op == BENCH_BACKWARD ? (const void *)p->y : (const void *)p->x;
        const void *grad = p->op == BENCH_BACKWARD ? (const void *)p->dy : NULL;
        return softmax_execute(&context->desc, src, grad, p->out);
    }
    switch (p->op) {
    case BENCH_FORWARD:
        return softmax_f32(p->x, p->out, p->rows, p->cols, p->scale);
    case BENCH_LOG:
        return log_softmax_f32(p->x, p->out, p->rows, p->cols, p->scale);
    case BENCH_BACKWARD:
        return softmax_backward_f32(p->y, p->dy, p->out, p->rows, p->cols, p->scale);
    }
    return SOFTMAX_E_INVALID_ARGUMENT;
}

static void run_library(void *opaque)
{
    (void)call_library(opaque);
}

static int prepare(const bench_problem *problem, bench_runner *runner, const char **why_not, int fast)
{
    static _Thread_local char reason[256];
    library_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        *why_not = "out of memory";
        return -1;
    }
    context->problem = *problem;
    if (problem->axis == 0 || fast) {
        const int axis = problem->axis == 0 ? 0 : 1;
        softmax_desc_init(&context->desc, desc_op(problem->op), SOFTMAX_DTYPE_F32, problem->cols);
        context->desc.ndim = 2;
        context->desc.axis = axis;
        context->desc.shape[0] = problem->rows;
        context->desc.shape[1] = problem->cols;
        /* The pinned entry points take a float scale: the same value. */
        context->desc.scale = problem->scale;
        context->desc.flags = fast ? SOFTMAX_FLAG_FAST : 0;
        context->through_desc = 1;
    }
    /* One call up front: a library that refuses the problem is "n/a" with
     * its own words, not a silently fast no-op. */
    int status = call_library(context);
    if (status != SOFTMAX_OK) {
        snprintf(reason, sizeof reason, "libsoftmax: %s (%s)", softmax_strerror(status), softmax_last_error());
        *why_not = reason;
        free(context);
        return -1;
    }
    runner->run = run_library;
    runner->destroy = free;
    runner->context = context;
    return 0;
}

int library_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    return prepare(problem, runner, why_not, 0);
}

int library_fast_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    return prepare(problem, runner, why_not, 1);
}

/* ---- libsoftmax on the same problem in f64 (--f64: the f64 / f32 ratio) ---- */

typedef struct library_f64_context {
    bench_problem problem;
    double *x, *y, *dy, *out; /* the problem's inputs widened to double */
} library_f64_context;

static int call_library_f64(const library_f64_context *context)
{
    const bench_problem *p = &context->problem;
    softmax_set_num_threads(p->threads);
    switch (p->op) {
    case BENCH_FORWARD:
        return softmax_f64(context->x, context->out, p->rows, p->cols, p->scale);
    case BENCH_LOG:
        return log_softmax_f64(context->x, context->out, p->rows, p->cols, p->scale);
    case BENCH_BACKWARD:
        return softmax_backward_f64(context->y, context->dy, context->out, p->rows, p->cols, p->scale);
    }
    return SOFTMAX_E_INVALID_ARGUMENT;
}

static void run_library_f64(void *opaque)
{
    (void)call_library_f64(opaque);
}

static void destroy_library_f64(void *opaque)
{
    library_f64_context *context = opaque;
    free(context->x), free(context->y), free(context->dy), free(context->out);
    free(context);
}

static double *widened(const float *values, size_t n)
{
    double *wide = malloc(n * sizeof *wide);
    if (wide != NULL)
        for (size_t i = 0; i < n; i++)
            wide[i] = values != NULL ? (double)values[i] : 0.0;
    return wide;
}

int library_f64_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    if (problem->axis != 1) {
        *why_not = "the f64 comparison runs along the last axis only";
        return -1;
    }
    library_f64_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        *why_not = "out of memory";
        return -1;
    }
    const size_t n = bench_elements(problem);
    context->problem = *problem;
    context->x = widened(problem->x, n);
    context->y = widened(problem->y, n);
    context->dy = widened(problem->dy, n);
    context->out = widened(NULL, n);
    if (context->x == NULL || context->y == NULL || context->dy == NULL || context->out == NULL) {
        destroy_library_f64(context);
        *why_not = "out of memory";
        return -1;
    }
    if (call_library_f64(context) != SOFTMAX_OK) {
        destroy_library_f64(context);
        *why_not = "libsoftmax f64 refused the problem";
        return -1;
    }
    runner->run = run_library_f64;
    runner->destroy = destroy_library_f64;
    runner->context = context;
    return 0;
}
