/*
 * anchor_xnnpack.c -- XNNPACK's softmax_nc_f32 operator: forward softmax
 * along the last axis only (this XNNPACK has no log-softmax, no backward and
 * no other axis: those are "n/a").
 *
 * XNNPACK has no scale argument: with scale != 1 it runs on
 * scratch = scale * x, a separate pass. One thread runs without a pool (the
 * caller's thread); more threads use a pthreadpool of that size.
 *
 * Compiled for real only when CMake found XNNPACK (BENCH_HAVE_XNNPACK).
 */
#include <stdlib.h>

#include "bench.h"

#ifndef BENCH_HAVE_XNNPACK

const char *anchor_xnnpack_description(void)
{
    return "not built (XNNPACK not found at configure time)";
}

int anchor_xnnpack_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    (void)problem;
    (void)runner;
    *why_not = "XNNPACK not built in";
    return -1;
}

#else

#include <xnnpack.h>

typedef struct xnnpack_context {
    bench_problem problem;
    xnn_operator_t op;
    pthreadpool_t pool;
} xnnpack_context;

const char *anchor_xnnpack_description(void)
{
    return "XNNPACK softmax_nc_f32";
}

static void destroy_xnnpack(void *opaque)
{
    xnnpack_context *context = opaque;
    if (context->op != NULL)
        xnn_delete_operator(context->op);
    if (context->pool != NULL)
        pthreadpool_destroy(context->pool);
    free(context);
}

static void run_xnnpack(void *opaque)
{
    xnnpack_context *context = opaque;
    const bench_problem *p = &context->problem;
    if (p->scale != 1.0f)
        bench_scale_pass(p->scratch, p->x, bench_elements(p), p->scale, p->threads);
    xnn_run_operator(context->op, context->pool);
}

int anchor_xnnpack_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    if (problem->op != BENCH_FORWARD || problem->axis != 1) {
        *why_not = "XNNPACK has only forward softmax along the last axis";
        return -1;
    }
    *why_not = "XNNPACK refused the problem";
    if (xnn_initialize(NULL) != xnn_status_success)
        return -1;
    xnnpack_context *context = calloc(1, sizeof *context);
    if (context == NULL)
        return -1;
    context->problem = *problem;
    const bench_problem *p = &context->problem;
    if (p->threads > 1 && (context->pool = pthreadpool_create((size_t)p->threads)) == NULL) {
        destroy_xnnpack(context);
        return -1;
    }
    const float *source = p->scale != 1.0f ? p->scratch : p->x;
    if (xnn_create_softmax_nc_f32(p->cols, p->cols, p->cols, 0, &context->op) != xnn_status_success ||
        xnn_setup_softmax_nc_f32(context->op, p->rows, source, p->out, context->pool) != xnn_status_success) {
        destroy_xnnpack(context);
        return -1;
    }
    runner->run = run_xnnpack;
    runner->destroy = destroy_xnnpack;
    runner->context = context;
    return 0;
}

#endif /* BENCH_HAVE_XNNPACK */
