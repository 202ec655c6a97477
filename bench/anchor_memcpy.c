/*
 * anchor_memcpy.c -- the physical limit: memcpy of the bytes the operation
 * must move at least once (forward: read x, write y = 8 bytes per element;
 * backward: read y and dy, write dx = 12 bytes per element). With several
 * threads, copies of 1 MiB or more are split over them.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct memcpy_context {
    bench_problem problem;
} memcpy_context;

/* Below this a copy stays on one thread: waking a team costs more than it
 * saves, and a limit should be the best one can do. */
enum { THREADED_COPY_MIN_BYTES = 1 << 20 };

/* memcpy of `bytes` split into `threads` contiguous pieces, one per thread,
 * so that the multi-thread limit is what that many cores can move. */
static void copy_on_threads(void *dst, const void *src, size_t bytes, int threads)
{
    if (threads <= 1 || bytes < THREADED_COPY_MIN_BYTES) {
        memcpy(dst, src, bytes);
        return;
    }
    size_t piece = (bytes / (size_t)threads + 63) & ~(size_t)63;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) {
        size_t begin = (size_t)t * piece;
        if (begin < bytes) {
            size_t length = bytes - begin < piece ? bytes - begin : piece;
            memcpy((char *)dst + begin, (const char *)src + begin, length);
        }
    }
}

static void run_memcpy(void *opaque)
{
    const bench_problem *p = &((memcpy_context *)opaque)->problem;
    size_t n = bench_elements(p);
    if (p->op == BENCH_BACKWARD) {
        /* 12 bytes per element: all of y into out, half of dy into scratch. */
        copy_on_threads(p->out, p->y, n * sizeof(float), p->threads);
        copy_on_threads(p->scratch, p->dy, n * sizeof(float) / 2, p->threads);
    } else {
        copy_on_threads(p->out, p->x, n * sizeof(float), p->threads);
    }
}

int anchor_memcpy_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not)
{
    memcpy_context *context = malloc(sizeof *context);
    if (context == NULL) {
        *why_not = "out of memory";
        return -1;
    }
    context->problem = *problem;
    runner->run = run_memcpy;
    runner->destroy = free;
    runner->context = context;
    return 0;
}
