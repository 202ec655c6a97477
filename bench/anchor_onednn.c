/*
 * anchor_onednn.c -- oneDNN's softmax primitive (softmax v2 API, oneDNN 2.x):
 * softmax_accurate for softmax, softmax_log for log-softmax, the v2 backward
 * primitive for the gradient; along axis 1 or axis 0 of the 2-d tensor.
 *
 * oneDNN has no scale argument: with scale != 1 the forward runs on
 * scratch = scale * x (a separate pass, as a user would write it) and the
 * backward multiplies dx by scale afterwards. Debian's oneDNN uses OpenMP;
 * omp_set_num_threads() before each call gives it the problem's thread count.
 *
 * Compiled for real only when CMake found oneDNN (BENCH_HAVE_ONEDNN);
 * otherwise every problem is "n/a".
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#ifndef BENCH_HAVE_ONEDNN

const char *anchor_onednn_description(void)
{
    return "not built (oneDNN not found at configure time)";
}

int anchor_onednn_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    (void)problem;
    (void)runner;
    *why_not = "oneDNN not built in";
    return -1;
}

#else

#include <dnnl.h>
#include <omp.h>

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static char description[256] = "oneDNN: no primitive created yet";
static int described;

typedef struct onednn_context {
    bench_problem problem;
    dnnl_primitive_t primitive;
    dnnl_exec_arg_t args[3];
    int arg_count;
} onednn_context;

static int ensure_engine(void)
{
    if (stream != NULL)
        return 0;
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        return -1;
    return dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success ? 0 : -1;
}

static void describe(const_dnnl_primitive_desc_t pd)
{
    const dnnl_version_t *version = dnnl_version();
    const char *implementation = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &implementation);
    snprintf(description, sizeof description, "oneDNN %d.%d.%d, softmax implementation %s", version->major,
             version->minor, version->patch, implementation);
    described = 1;
}

static void destroy_onednn(void *opaque)
{
    onednn_context *context = opaque;
    for (int i = 0; i < context->arg_count; i++)
        dnnl_memory_destroy(context->args[i].memory);
    if (context->primitive != NULL)
        dnnl_primitive_destroy(context->primitive);
    free(context);
}

static int add_memory(onednn_context *context, int arg, const dnnl_memory_desc_t *md, const float *data)
{
    dnnl_memory_t memory;
    if (dnnl_memory_create(&memory, md, engine, (void *)data) != dnnl_success)
        return -1;
    context->args[context->arg_count].arg = arg;
    context->args[context->arg_count].memory = memory;
    context->arg_count++;
    return 0;
}

/* The forward primitive descriptor (training when a backward needs it as a hint). */
static dnnl_primitive_desc_t forward_pd(const dnnl_memory_desc_t *md, dnnl_alg_kind_t algorithm, int axis,
                                        dnnl_prop_kind_t kind)
{
    dnnl_softmax_v2_desc_t op;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_softmax_v2_forward_desc_init(&op, kind, algorithm, md, md, axis) != dnnl_success)
        return NULL;
    if (dnnl_primitive_desc_create(&pd, &op, NULL, engine, NULL) != dnnl_success)
        return NULL;
    return pd;
}

static int build_primitive(onednn_context *context, const dnnl_memory_desc_t *md)
{
    const bench_problem *p = &context->problem;
    const int axis = p->axis;
    dnnl_primitive_desc_t pd;
    if (p->op == BENCH_BACKWARD) {
        dnnl_primitive_desc_t hint = forward_pd(md, dnnl_softmax_accurate, axis, dnnl_forward_training);
        dnnl_softmax_v2_desc_t op;
        pd = NULL;
        if (hint != NULL &&
            dnnl_softmax_v2_backward_desc_init(&op, dnnl_softmax_accurate, md, md, md, axis) == dnnl_success)
            dnnl_primitive_desc_create(&pd, &op, NULL, engine, hint);
        if (hint != NULL)
            dnnl_primitive_desc_destroy(hint);
    } else {
        dnnl_alg_kind_t algorithm = p->op == BENCH_LOG ? dnnl_softmax_log : dnnl_softmax_accurate;
        pd = forward_pd(md, algorithm, axis, dnnl_forward_inference);
        if (pd != NULL && !described && axis == 1)
            describe(pd);
    }
    if (pd == NULL)
        return -1;
    dnnl_status_t status = dnnl_primitive_create(&context->primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    return status == dnnl_success ? 0 : -1;
}

static void run_onednn(void *opaque)
{
    onednn_context *context = opaque;
    const bench_problem *p = &context->problem;
    const size_t n = bench_elements(p);
    if (p->op != BENCH_BACKWARD && p->scale != 1.0f)
        bench_scale_pass(p->scratch, p->x, n, p->scale, p->threads);
    omp_set_num_threads(p->threads);
    dnnl_primitive_execute(context->primitive, stream, context->arg_count, context->args);
    dnnl_stream_wait(stream);
    if (p->op == BENCH_BACKWARD && p->scale != 1.0f)
        bench_scale_pass(p->out, p->out, n, p->scale, p->threads);
}

int anchor_onednn_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    *why_not = "oneDNN refused the problem";
    if (ensure_engine() != 0)
        return -1;
    onednn_context *context = calloc(1, sizeof *context);
    if (context == NULL)
        return -1;
    context->problem = *problem;
    const bench_problem *p = &context->problem;
    omp_set_num_threads(p->threads);

    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {(dnnl_dim_t)p->rows, (dnnl_dim_t)p->cols};
    int ok = dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab) == dnnl_success &&
             build_primitive(context, &md) == 0;
    if (ok && p->op == BENCH_BACKWARD) {
        ok = add_memory(context, DNNL_ARG_DST, &md, p->y) == 0 &&
             add_memory(context, DNNL_ARG_DIFF_DST, &md, p->dy) == 0 &&
             add_memory(context, DNNL_ARG_DIFF_SRC, &md, p->out) == 0;
    } else if (ok) {
        const float *source = p->scale != 1.0f ? p->scratch : p->x;
        ok = add_memory(context, DNNL_ARG_SRC, &md, source) == 0 && add_memory(context, DNNL_ARG_DST, &md, p->out) == 0;
    }
    if (!ok) {
        destroy_onednn(context);
        return -1;
    }
    runner->run = run_onednn;
    runner->destroy = destroy_onednn;
    runner->context = context;
    return 0;
}

const char *anchor_onednn_description(void)
{
    return description;
}

#endif /* BENCH_HAVE_ONEDNN */
