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
/* SOFTMAX_SANITIZED: 1 in a build with ASan, TSan or MSan (gcc or clang).
 * Such builds leave out the kernels' copies that exist for speed alone
 * (forced inlining of the transposes, GROUP_AFFINE groups, unrolled column
 * loops): clang's ASan + fuzzer build of the f32 AVX-512 unit took 170 s
 * with them, 45 s without. The remaining code computes the same bits. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SOFTMAX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define SOFTMAX_SANITIZED 1
#endif
#endif
#ifndef SOFTMAX_SANITIZED
#define SOFTMAX_SANITIZED 0
#endif
/* SOFTMAX_NOINLINE: a small helper kept out of a large kernel body, where
 * its loop variables would live on the stack. Speed only, as above. */
#if defined(__GNUC__)
#define SOFTMAX_NOINLINE __attribute__((noinline))
#else
#define SOFTMAX_NOINLINE
#endif

/*
 * SOFTMAX_VECTOR_CLONES: for the plain C loops of the general path and the
 * portable table entries (gather, mask, split) that the compiler
 * vectorises: compiled once per ISA level and chosen by the CPU at load
 * time. They are exact (and -ffp-contract=off forbids fused operations), so
 * every clone gives the same bits.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SOFTMAX_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SOFTMAX_VECTOR_CLONES
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
 * What a table of kernels does beyond the portable path
 * (softmax_kernels.capabilities). Every slot of every table is callable:
 * a table is filled from the portable entries first (src/ref/), then the
 * ISA's own kernels replace those it has (src/kernels/kernels.h). Where an
 * ISA lacks a kernel, its slot holds the portable entry, which either
 * computes the same bits another way or declines every line; the planner
 * (src/planner.c) asks these bits, never a pointer, to choose a route.
 */
enum {
    /* fast_rows (and fast_half_line) use the fast exponential. Without it
     * fast_rows is rows() and SOFTMAX_FLAG_FAST changes nothing. */
    SOFTMAX_KERNELS_FAST_MODE = 1u << 0,
    /* excluding_row reads masked f32 rows in place. Without it, it
     * declines every row (the masks are then applied to gathered lines). */
    SOFTMAX_KERNELS_MASKED_ROWS = 1u << 1,
    /* half_line, half_row (and fast_half_line with the fast mode) read
     * bf16 / f16 rows in place. Without it they decline every line. */
    SOFTMAX_KERNELS_HALF_ROWS = 1u << 2,
};

/*
 * The kernels of one data type on one code path, at the level the API layer
 * splits work: blocks of contiguous rows, chunks of columns of one
 * [n, inner] slice (softmax over a non-last axis), or one long row shared by
 * several threads. `op` is a softmax_op; grad is NULL for the forward ops.
 * No slot is NULL.
 */
/* A run of lines of softmax_kernels.excluding_rows and adding_rows: lines
 * at constant steps from one to the next (adjacent queries of one head,
 * say), described once rather than line by line -- on rows of 16 f32 a
 * description per line cost as much as the row's softmax. Line i of the
 * run: f32 logits x + i * x_step, outputs y + i * y_step (may be the
 * logits themselves), `where` bytes keep + i * keep_step and mask
 * (elements of the mask's type) mask + i * mask_step, each NULL if absent
 * and indexed like x; its causal prefix is kept + i * kept_step clamped to
 * [0, n]; every line of a run has the same ALiBi slope (0: none). */
typedef struct softmax_masked_run {
    const float *x;
    float *y;
    const uint8_t *keep;
    const void *mask;
    const float *low; /* mask_type 4: mask holds a reduced bias's g, low its lo */
    int64_t x_step, y_step, keep_step, mask_step;
    int64_t kept, kept_step;
    size_t count;
    double slope;
} softmax_masked_run;

/* What softmax_kernels.excluding_row did with its line. */
enum { SOFTMAX_ROW_DECLINED = 0, SOFTMAX_ROW_DONE = 1, SOFTMAX_ROW_MASK_ADDS = 2 };

typedef struct softmax_kernels {
    size_t element_size;
    /* Elements per vector on this path (1 on the portable one). */
    size_t lanes;
    /* SOFTMAX_KERNELS_* bits: what the slots below do on this path. */
    unsigned capabilities;
    /* `rows` contiguous rows of n elements. */
    void (*rows)(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n, double scale);
    /* The forward ops under SOFTMAX_FLAG_FAST on `rows` contiguous rows (the
     * fast exponential, no residuals); rows() itself without
     * SOFTMAX_KERNELS_FAST_MODE. */
    void (*fast_rows)(softmax_op op, const void *src, void *dst, size_t rows, size_t n, double scale);
    /* `rows` contiguous rows of which row r keeps its first kept[r]
     * elements (a causal mask): the op on the prefix, then 0 (log-softmax
     * -inf) to n; bit for bit rows() on each prefix. */
    void (*prefix_rows)(softmax_op op, const void *src, const void *grad, void *dst, size_t rows, size_t n,
                        const size_t *kept, double scale);
    /* Lines j in [j_begin, j_end) of one [n, inner] slice; j_begin is a
     * multiple of column_chunk so that results never depend on how the API
     * split the lines. */
    void (*columns)(softmax_op op, const void *src, const void *grad, void *dst, size_t n, size_t inner, size_t j_begin,
                    size_t j_end, double scale);
    size_t column_chunk;
    /* One row of n elements computed by `threads` threads, bitwise equal to
     * rows(..., 1, n, ...) (the portable entry runs rows() on one thread). */
    void (*long_row)(softmax_op op, const void *src, const void *grad, void *dst, size_t n, double scale, int threads);
    /* Rows at least this long go to long_row when threads are available;
     * SIZE_MAX where the path does not share a row between threads. */
    size_t long_row_min;
    /* For the tests only: y_i = e^(x_i) rounded, through the exponential the
     * forward kernels use (same code, offset 0, same floating-point
     * environment), and, unless residual is NULL, the rounding error of y_i
     * as the kernels carry it (softmax outputs are rounded from y + residual;
     * the reference path gives 0). */
    void (*exp)(const void *x, void *y, void *residual, size_t n);
    /* out[b * n + j] = src[j * stride + b] for b < lines, j < n: lines that
     * are adjacent in memory but strided along their axis (a transposed
     * view) gathered into contiguous rows (LANES x LANES tiles transposed
     * in registers on the SIMD paths, tiles of 16 elements x all lines on
     * the portable one). */
    void (*transpose_lines)(const void *src, int64_t stride, size_t lines, size_t n, void *out);
    /* f32 (the portable entry declines every row; so does every table
     * without SOFTMAX_KERNELS_MASKED_ROWS): one contiguous forward row of
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
     * 1024 and scales outside [1e-30, 1e30]). With check_mask (a mask
     * assumed to exclude, not yet read: general_plan.mask_checked_by_blocks)
     * the kernels also check that the row's mask holds only 0 and -inf as
     * they read it, and return SOFTMAX_ROW_MASK_ADDS, having written
     * nothing, where it does not. SOFTMAX_ROW_DECLINED (nothing written,
     * the mask maybe not checked) or SOFTMAX_ROW_DONE otherwise. */
    /* The floating-point mode the kernels run in (x86: flush-to-zero set;
     * AArch64: FZ clear; nothing on the portable path): begin sets it and
     * returns the caller's, end gives that back. Every kernel sets it
     * itself, without a register write when it is already so; a caller of
     * many line kernels in a row (run_block) sets it once around them, as
     * changing MXCSR twice per line cost up to a quarter of a masked row of
     * 256 f32. */
    unsigned int (*fp_mode_begin)(void);
    void (*fp_mode_end)(unsigned int saved);
    int (*excluding_row)(softmax_op op, const float *x, const uint8_t *keep, const float *mask,
                         const uint16_t *half_mask, int half_bf16, int additive, bool check_mask, double slope,
                         size_t kept, size_t n, double scale, float *y);
    /* An added f32 bias reduced once for many rows (with
     * SOFTMAX_KERNELS_MASKED_ROWS; elsewhere reduce_bias refuses every bias
     * and reduced_bias_row declines every line). reduce_bias writes,
     * for each of count entries b, g = log2(e) b on the grid 2^-12 and lo =
     * log2(e) b - g (g = -inf, lo = 0 for a -inf entry); false where an
     * entry is NaN, +inf or beyond +-700 (the arrays are then not to be
     * used). reduced_bias_row is then excluding_row for softmax with that
     * bias added: op softmax on z = scale * x + b over the first `kept`
     * elements of a row of n (the others 0), SOFTMAX_ROW_DONE or
     * SOFTMAX_ROW_DECLINED (nothing written: rows outside the in-cache
     * regime, with a non-finite x, fully excluded or with a large
     * maximum, other ops). */
    bool (*reduce_bias)(const float *bias, size_t count, float *g, float *lo);
    int (*reduced_bias_row)(softmax_op op, const float *x, const float *g, const float *lo, size_t kept, size_t n,
                            double scale, float *y);
    /* A block of short contiguous forward rows (n <= SMALL_VECTORS vectors)
     * with exclusion masks applied as x is read, in the grouped tiny and
     * small-row kernels: each line of the runs is the op on its x with the
     * elements from its kept prefix on, those of a zero keep byte and those
     * of a -inf mask entry (mask_type: 0 none, 1 f32, 2 bf16, 3 f16)
     * excluded, into its y. Bit for bit rows() on each line with
     * the excluded logits at -inf (+inf for a negative scale), as the
     * gathered path computes it. False, having written nothing, where the
     * path has no such kernels (f64, the portable path, ISAs without
     * f32_exclude) or n is longer. */
    bool (*excluding_rows)(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n, int mask_type,
                           double scale);
    /* The longest rows excluding_rows and adding_rows serve (0: none), so
     * that longer lines are not described to them only to be declined. */
    size_t grouped_rows_max;
    /* The same with an added bias: an additive mask (additive != 0,
     * mask_type 1 f32, 2 bf16, 3 f16) or ALiBi (the run's slope * j; the
     * mask, if any, then a 0 / -inf one), the op computed with scale 1 on z
     * = scale * x + bias over the line's kept prefix (accurate as the line
     * kernels' excluding_row), the rest filled. declined[b] (an entry per
     * line of the runs, in order, written) marks the lines left unwritten for the general
     * path: fully masked ones, non-finite or large logits. False, having
     * written nothing, where the path has no such kernels, n is longer, the
     * scale is special or a line has both an added mask and a slope. */
    bool (*adding_rows)(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n, int mask_type,
                        int additive, double scale, bool *declined);
    /* f32 (declines every line without SOFTMAX_KERNELS_HALF_ROWS): one
     * contiguous forward line of bf16 (bf16 != 0) or f16 data, widened as
     * the kernels read it, into f32 (dst_half 0), bf16 (1) or f16 (2)
     * outputs: bit for bit rows() on the widened line, then narrowed.
     * False, having written nothing, outside the in-cache regime or for
     * lines that need the general path. */
    bool (*half_line)(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n, double scale);
    /* f32: contiguous conversions between f32 and bf16 (bf16 != 0) or f16,
     * bit for bit those of convert.c (the portable entries are those). */
    void (*widen_half)(float *dst, const uint16_t *src, size_t n, int bf16);
    void (*narrow_half)(uint16_t *dst, const float *src, size_t n, int bf16);
    /* f32 (declines every row without SOFTMAX_KERNELS_HALF_ROWS): one long
     * contiguous forward row of bf16 / f16 data in and out, streamed
     * through an L1 buffer. Returns false, having written nothing, if the
     * row needs the general path. */
    bool (*half_row)(softmax_op op, const uint16_t *x, uint16_t *y, size_t n, double scale, int bf16);
    /* f32 (declines every line without both SOFTMAX_KERNELS_HALF_ROWS and
     * SOFTMAX_KERNELS_FAST_MODE): half_line under SOFTMAX_FLAG_FAST, for
     * dst of the source's type or f32: bit for bit fast_rows on the
     * widened line, then narrowed. False, having written nothing, for lines
     * of at most SMALL_VECTORS vectors (the grouped kernels take them
     * gathered) or that need the general path. */
    bool (*fast_half_line)(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n, double scale);
    /* f32, the additive-mask split of the general path. split_logits:
     * z_j = scale * x_j + (mask_j + slope * j) in double for j < kept
     * (mask or keep NULL: none; mask -inf or keep 0 excludes), -inf from
     * kept to n; false if a kept z is NaN or +inf or none is finite, or if
     * |max z| > SPLIT_MAX_TOP; else d_j = z_j - max z into d, (float)d_j
     * into hi. Called only with a finite nonzero scale. apply_low_parts:
     * the result from w = (log-)softmax(hi) and d, into d. */
    bool (*split_logits)(const float *x, const float *mask, const uint8_t *keep, size_t kept, size_t n, double scale,
                         double slope, double *d, float *hi);
    void (*apply_low_parts)(softmax_op op, const float *w, double *line, size_t n);
} softmax_kernels;

/* The largest |max z| the additive-mask split takes: z is rounded to
 * double before max z is subtracted, an error of |z| 2^-53, which must stay
 * far below the f32 result's 2^-24 (2^-33 here). Beyond it (float logits of
 * 1e20 with a mask of 5: the 5 was lost in z's rounding) the line takes the
 * general path, which forms z around the row's largest x. */
#define SPLIT_MAX_TOP 0x1p20

/* The portable entries of the f32-only slots (src/ref/portable_slots.c),
 * with which every table without its own kernel fills them. */
int softmax_portable_excluding_row(softmax_op op, const float *x, const uint8_t *keep, const float *mask,
                                   const uint16_t *half_mask, int half_bf16, int additive, bool check_mask,
                                   double slope, size_t kept, size_t n, double scale, float *y);
bool softmax_portable_reduce_bias(const float *bias, size_t count, float *g, float *lo);
int softmax_portable_reduced_bias_row(softmax_op op, const float *x, const float *g, const float *lo, size_t kept,
                                      size_t n, double scale, float *y);
bool softmax_portable_excluding_rows(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n,
                                     int mask_type, double scale);
bool softmax_portable_adding_rows(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n,
                                  int mask_type, int additive, double scale, bool *declined);
bool softmax_portable_half_line(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n,
                                double scale);
bool softmax_portable_half_row(softmax_op op, const uint16_t *x, uint16_t *y, size_t n, double scale, int bf16);
void softmax_portable_widen_half(float *dst, const uint16_t *src, size_t n, int bf16);
void softmax_portable_narrow_half(uint16_t *dst, const float *src, size_t n, int bf16);
bool softmax_portable_split_logits(const float *x, const float *mask, const uint8_t *keep, size_t kept, size_t n,
                                   double scale, double slope, double *d, float *hi);
void softmax_portable_apply_low_parts(softmax_op op, const float *w, double *line, size_t n);

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

/* The tables of the active code path, one per computation type, and the
 * path's name (for the units that keep their own per-ISA tables, such as
 * the sampler's). */
typedef struct softmax_path {
    const softmax_kernels *f32;
    const softmax_kernels *f64;
    softmax_isa isa;
} softmax_path;

/* Dispatch (dispatch.c), decided once per process: the active path, or
 * NULL with the error recorded (SOFTMAX_ISA naming a path this CPU lacks);
 * *status receives the code. A call dispatches once, at its start. */
const softmax_path *softmax_dispatch_path(const char *fn, int *status);
/* The same for one computation type: the kernels of `dtype`, or NULL with
 * the error recorded (also for a dtype other than f32 and f64). */
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

/* One check per line: on failure, record the message (printf format) for
 * softmax_last_error() and return `status` from the calling function. */
#define RETURN_ERROR_IF(condition, status, ...)                                                                        \
    do {                                                                                                               \
        if (condition)                                                                                                 \
            return softmax_fail((status), __VA_ARGS__);                                                                \
    } while (0)

/* A scratch buffer of at least `bytes` bytes owned by the calling thread,
 * valid until its next call (workspace.c); NULL if it cannot be allocated. */
void *softmax_workspace(size_t bytes);
/* The same with a slot number: 0 is softmax_workspace()'s, 1 the general
 * pipeline's (src/general/blocks.c). */
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
