/*
 * internal.h -- declarations shared by the library's translation units.
 * Nothing here is part of the public API.
 */
#ifndef SOFTMAX_INTERNAL_H
#define SOFTMAX_INTERNAL_H

#include <stddef.h>

#include "softmax.h"

/*
 * A line is one softmax row: n elements spaced `stride` elements apart
 * (stride 1 for the last axis, `inner` for any other axis). Kernels work on
 * one line at a time; the API layer splits a tensor into lines and lines
 * over threads. Scales arrive as double whatever the data type so that the
 * general API keeps the caller's scale exactly.
 */
typedef void (*softmax_forward_line_fn)(const void *x, ptrdiff_t x_stride, void *y, ptrdiff_t y_stride, size_t n,
                                        double scale);
typedef void (*softmax_gradient_line_fn)(const void *src, ptrdiff_t src_stride, const void *grad, ptrdiff_t grad_stride,
                                         void *dst, ptrdiff_t dst_stride, size_t n, double scale);
typedef void (*softmax_jacobian_fn)(const void *src, size_t n, double scale, void *jacobian);

/* The kernels of one data type on one code path. */
typedef struct softmax_kernels {
    size_t element_size;
    softmax_forward_line_fn softmax;
    softmax_forward_line_fn log_softmax;
    softmax_gradient_line_fn softmax_backward;
    softmax_gradient_line_fn log_softmax_backward;
    softmax_gradient_line_fn log_softmax_jvp;
    softmax_jacobian_fn softmax_jacobian;
    softmax_jacobian_fn log_softmax_jacobian;
} softmax_kernels;

/* The portable reference path: f32 computed in double, f64 in long double. */
extern const softmax_kernels softmax_ref_kernels_f32;
extern const softmax_kernels softmax_ref_kernels_f64;

/* Error reporting (status.c): records a detailed message for
 * softmax_last_error() and returns `status`, so that a check reads
 * `return softmax_fail(SOFTMAX_E_..., "fmt", ...)`. */
int softmax_fail(int status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void softmax_clear_error(void);

/* Threads (threads.c): how many threads a job of `elements` elements split
 * into `lines` independent lines should use (1 for small jobs). */
int softmax_threads_for_job(size_t elements, size_t lines);

#endif /* SOFTMAX_INTERNAL_H */
