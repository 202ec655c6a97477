/*
 * bench.h -- what the benchmark driver (softmax_bench.c) and the anchors
 * (anchor_*.c) share: one problem to time, and a runner that times it.
 *
 * An anchor is something a user could call instead of libsoftmax (memcpy is
 * the physical limit, the rest are real alternatives). Each anchor exposes a
 * prepare function: it looks at a problem and either builds a runner for it
 * or says why it cannot ("n/a").
 */
#ifndef SOFTMAX_BENCH_H
#define SOFTMAX_BENCH_H

#include <stddef.h>

typedef enum bench_op {
    BENCH_FORWARD = 0, /* y = softmax(scale * x) */
    BENCH_LOG = 1,     /* y = log_softmax(scale * x) */
    BENCH_BACKWARD = 2 /* dx = scale * y * (dy - <dy, y>) */
} bench_op;

/* A 2-d tensor rows x cols, row-major, contiguous; the operation runs along
 * the last axis (axis 1: each row is one softmax) or along axis 0 (each
 * column is one softmax, its elements `cols` apart). */
typedef struct bench_problem {
    bench_op op;
    size_t rows;
    size_t cols;
    int axis;        /* 1 or 0 */
    float scale;     /* libsoftmax fuses it; anchors pay a separate multiply pass */
    int threads;     /* threads the candidate may use */
    const float *x;  /* forward input */
    const float *y;  /* backward: the softmax output */
    const float *dy; /* backward: the incoming gradient */
    float *out;      /* the candidate's output (y or dx) */
    float *scratch;  /* rows * cols floats for an anchor's separate scale pass */
} bench_problem;

/* One call of the candidate on its problem. run() must be repeatable: every
 * call computes the same output from the same inputs. */
typedef struct bench_runner {
    void (*run)(void *context);
    void (*destroy)(void *context); /* may be NULL */
    void *context;
} bench_runner;

/* Builds *runner for *problem and returns 0, or returns -1 and sets *why_not
 * to a short static reason when the anchor cannot run this problem. The
 * problem is copied: the caller's struct may go away, its buffers may not. */
typedef int (*bench_prepare_fn)(const bench_problem *problem, bench_runner *runner, const char **why_not);

size_t bench_elements(const bench_problem *problem);

/* dst[i] = scale * src[i] over n floats, on `threads` threads: the pass a
 * user adds in front of a library that has no scale argument. */
void bench_scale_pass(float *dst, const float *src, size_t n, float scale, int threads);

/* libsoftmax itself (library_runner.c). */
int library_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);
/* The same with SOFTMAX_FLAG_FAST (softmax.h, "Fast mode"). */
int library_fast_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);
/* The same problem in f64 (inputs widened), through the pinned f64 entry
 * points: softmax_bench --f64 reports the f64 / f32 time ratio. */
int library_f64_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);

/* The anchors. Each lives in its own file. */
int anchor_memcpy_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);
int anchor_naive_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);
int anchor_simd_loop_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);
int anchor_onednn_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);
int anchor_xnnpack_prepare(const bench_problem *problem, bench_runner *runner, const char **why_not);

/* A one-line description of each optional anchor ("oneDNN 2.6.3, jit:avx512_core"
 * or "not built"), filled once the anchor has prepared a problem. */
const char *anchor_onednn_description(void);
const char *anchor_xnnpack_description(void);

#endif /* SOFTMAX_BENCH_H */
