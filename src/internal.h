/*
 * internal.h -- declarations shared by the library's translation units.
 * Nothing here is part of the public API.
 */
#ifndef SOFTMAX_INTERNAL_H
#define SOFTMAX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "softmax.h"

/*
 * SOFTMAX_FORCE_INLINE: for kernel bodies that are only fast once inlined
 * into a caller that passes compile-time constants (a vector count, a set
 * of mask kinds), so that their loops unroll and their branches fold.
 * Without optimisation (-O0, a Debug build) it is plain `inline`: the
 * compiler inlines nothing there, and always_inline would turn a body that
 * calls itself, or one called through a non-constant argument, into an
 * error. The results are the same either way; only the speed differs.
 */
#if defined(__GNUC__) && defined(__OPTIMIZE__)
#define SOFTMAX_FORCE_INLINE inline __attribute__((always_inline))
#else
#define SOFTMAX_FORCE_INLINE inline
#endif

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

/* The line kernels of one data type: the portable reference path. */
typedef struct softmax_line_kernels {
    size_t element_size;
    softmax_forward_line_fn softmax;
    softmax_forward_line_fn log_softmax;
    softmax_gradient_line_fn softmax_backward;
    softmax_gradient_line_fn log_softmax_backward;
    softmax_gradient_line_fn log_softmax_jvp;
    softmax_jacobian_fn softmax_jacobian;
    softmax_jacobian_fn log_softmax_jacobian;
} softmax_line_kernels;

/* f32 computed in double, f64 in double-double (src/ref/). */
extern const softmax_line_kernels softmax_ref_lines_f32;
extern const softmax_line_kernels softmax_ref_lines_f64;

/* Calls the line kernel of `op` on one strided line. */
void softmax_line_run(const softmax_line_kernels *lines, softmax_op op, const void *src, const void *grad, void *dst,
                      size_t n, ptrdiff_t stride, double scale);

/*
 * The kernels of one data type on one code path, at the level the API layer
 * splits work: blocks of contiguous rows, chunks of columns of one
 * [n, inner] slice (softmax over a non-last axis), or one long row shared by
 * several threads. `op` is a softmax_op; grad is NULL for the forward ops.
 */
typedef struct softmax_kernels {
    size_t element_size;
    /* `rows` contiguous rows of n elements. */
    void (*rows)(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n, double scale);
    /* The forward ops under SOFTMAX_FLAG_FAST on `rows` contiguous rows (the
     * fast exponential, no residuals); NULL where the path has no fast mode
     * (rows() then serves). */
    void (*fast_rows)(softmax_op op, const void *src, void *dst, size_t rows, size_t n, double scale);
    /* `rows` contiguous rows of which row r keeps its first kept[r]
     * elements (a causal mask): the op on the prefix, then 0 (log-softmax
     * -inf) to n; bit for bit rows() on each prefix. NULL: call rows(). */
    void (*prefix_rows)(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                        const size_t *kept, double scale);
    /* Lines j in [j_begin, j_end) of one [n, inner] slice; j_begin is a
     * multiple of column_chunk so that results never depend on how the API
     * split the lines. */
    void (*columns)(softmax_op op, const void *src, const void *grad, void *dst, size_t n, size_t inner, size_t j_begin,
                    size_t j_end, double scale);
    size_t column_chunk;
    /* One row of n elements computed by `threads` threads, bitwise equal to
     * rows(..., 1, n, ...). NULL if the path has none. */
    void (*long_row)(softmax_op op, const void *src, const void *grad, void *dst, size_t n, double scale, int threads);
    /* Rows at least this long go to long_row when threads are available. */
    size_t long_row_min;
    /* For the tests only: y_i = e^(x_i) rounded, through the exponential the
     * forward kernels use (same code, offset 0, same floating-point
     * environment), and, unless residual is NULL, the rounding error of y_i
     * as the kernels carry it (softmax outputs are rounded from y + residual;
     * the reference path gives 0). */
    void (*exp)(const void *x, void *y, void *residual, size_t n);
    /* out[b * n + j] = src[j * stride + b] for b < lines, j < n: lines that
     * are adjacent in memory but strided along their axis (a transposed
     * view) gathered into contiguous rows, LANES x LANES tiles transposed
     * in registers. NULL: the portable loop of general.c. */
    void (*transpose_lines)(const void *src, int64_t stride, size_t lines, size_t n, void *out);
    /* f32 SIMD kernels only (NULL elsewhere): one contiguous forward row of
     * which the first `kept` elements (<= n) may be kept, the others
     * excluded; within those a zero `keep` byte excludes too, and so, if
     * `additive` is 0, does a -inf `mask` entry or a -inf `half_mask`
     * entry (bf16 if half_bf16, else f16; each NULL if absent). The
     * exclusions are applied as x is read: bit for bit rows() on the whole
     * row with the excluded logits at -inf (+inf for a negative scale), as
     * the gathered path computes it. If `additive` is nonzero, the mask
     * (or half_mask) is added instead: softmax(scale * x + mask), the sum
     * carried unrounded into the exps (within the contract's bound, not
     * bit for bit the gathered path). A nonzero `slope` adds the ALiBi
     * bias slope * j likewise (with an exclusion mask only, not with
     * `additive`). False, having written nothing, outside the in-cache
     * regime or for rows that need the general path (nothing kept,
     * infinite logits or scale; with an added mask or slope, also |max z| >
     * 1024 and scales outside [1e-30, 1e30]). */
    bool (*excluding_row)(softmax_op op, const float *x, const uint8_t *keep, const float *mask,
                          const uint16_t *half_mask, int half_bf16, int additive, double slope, size_t kept, size_t n,
                          double scale, float *y);
    /* f32 SIMD kernels only (NULL elsewhere): one contiguous forward line
     * of bf16 (bf16 != 0) or f16 data, widened as the kernels read it, into
     * f32 (dst_half 0), bf16 (1) or f16 (2) outputs: bit for bit rows() on
     * the widened line, then narrowed. False, having written nothing,
     * outside the in-cache regime or for lines that need the general path. */
    bool (*half_line)(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n, double scale);
    /* f32 kernels only (NULL elsewhere): contiguous conversions between f32
     * and bf16 (bf16 != 0) or f16, bit for bit those of convert.c. */
    void (*widen_half)(float *dst, const uint16_t *src, size_t n, int bf16);
    void (*narrow_half)(uint16_t *dst, const float *src, size_t n, int bf16);
    /* f32 kernels only (NULL elsewhere): one long contiguous forward row of
     * bf16 / f16 data in and out, streamed through an L1 buffer. Returns
     * false, having written nothing, if the row needs the general path. */
    bool (*half_row)(softmax_op op, const uint16_t *x, uint16_t *y, size_t n, double scale, int bf16);
    /* f32 SIMD kernels with a fast mode only (NULL elsewhere): half_line
     * under SOFTMAX_FLAG_FAST, for dst of the source's type or f32: bit for
     * bit fast_rows on the widened line, then narrowed. False, having
     * written nothing, for lines of at most SMALL_VECTORS vectors (the
     * grouped kernels take them gathered) or that need the general path. */
    bool (*fast_half_line)(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n, double scale);
    /* f32 kernels only, may be NULL: the additive-mask split of general.c.
     * split_logits: z_j = scale * x_j + (mask_j + slope * j) in double for
     * j < kept (mask or keep NULL: none; mask -inf or keep 0 excludes),
     * -inf from kept to n; false if a kept z is NaN or +inf or none is
     * finite; else d_j = z_j - max z into d, (float)d_j into hi.
     * apply_low_parts: the result from w = (log-)softmax(hi) and d, into d. */
    bool (*split_logits)(const float *x, const float *mask, const uint8_t *keep, size_t kept, size_t n, double scale,
                         double slope, double *d, float *hi);
    void (*apply_low_parts)(softmax_op op, const float *w, double *line, size_t n);
} softmax_kernels;

extern const softmax_kernels softmax_ref_kernels_f32;
extern const softmax_kernels softmax_ref_kernels_f64;

/* Code paths, best last. */
typedef enum softmax_isa {
    SOFTMAX_ISA_SCALAR = 0,
    SOFTMAX_ISA_AVX2 = 1,
    SOFTMAX_ISA_AVX512 = 2,
    SOFTMAX_ISA_NEON = 3 /* AArch64 only: not "better" than the x86 paths */
} softmax_isa;

#if defined(SOFTMAX_HAVE_X86_KERNELS)
extern const softmax_kernels softmax_kernels_f32_avx2;
extern const softmax_kernels softmax_kernels_f64_avx2;
extern const softmax_kernels softmax_kernels_f32_avx512;
extern const softmax_kernels softmax_kernels_f64_avx512;
#endif
#if defined(SOFTMAX_HAVE_NEON_KERNELS)
extern const softmax_kernels softmax_kernels_f32_neon;
extern const softmax_kernels softmax_kernels_f64_neon;
#endif

/* Dispatch (dispatch.c): the kernels of `dtype` on the active path, or NULL
 * with the error recorded (unknown dtype, or SOFTMAX_ISA naming a path this
 * CPU lacks); *status receives the code. */
const softmax_kernels *softmax_dispatch(softmax_dtype dtype, const char *fn, int *status);

/* Error reporting (status.c): records a detailed message for
 * softmax_last_error() and returns `status`, so that a check reads
 * `return softmax_fail(SOFTMAX_E_..., "fmt", ...)`. */
int softmax_fail(int status, const char *format, ...)
#if defined(__MINGW32__) /* C99 formats (%zu): the build sets __USE_MINGW_ANSI_STDIO */
    __attribute__((format(gnu_printf, 2, 3)))
#elif defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void softmax_clear_error(void);

/* A scratch buffer of at least `bytes` bytes owned by the calling thread,
 * valid until its next call (workspace.c); NULL if it cannot be allocated. */
void *softmax_workspace(size_t bytes);
/* The same with a slot number: 0 is softmax_workspace()'s, 1 the general
 * pipeline's (src/general.c). */
void *softmax_workspace_slot(int slot, size_t bytes);

/* Threads (threads.c): how many threads a job of `elements` elements split
 * into `lines` independent lines should use (1 for small jobs). */
int softmax_threads_for_job(size_t elements, size_t lines);

/* Conversions (convert.c): exact scalar definitions. */
float softmax_bf16_to_float(uint16_t half);
uint16_t softmax_float_to_bf16(float value);
float softmax_f16_to_float(uint16_t half);
uint16_t softmax_float_to_f16(float value);
/* value rounded to float with "round to odd" (truncate, set the last bit if
 * inexact): a later rounding to a narrower type is then correct. */
float softmax_round_to_odd_float(double value);
/* Bytes per element (0 for an unknown type) and a short name. */
size_t softmax_dtype_size(softmax_dtype type);
const char *softmax_dtype_name(softmax_dtype type);

#endif /* SOFTMAX_INTERNAL_H */
