/*
 * softmax.h -- the one public header of libsoftmax.
 *
 * libsoftmax computes the softmax family along one axis of a tensor:
 *
 *     softmax(scale * x)_i     = exp(scale * x_i) / sum_j exp(scale * x_j)
 *     log_softmax(scale * x)_i = scale * x_i - log(sum_j exp(scale * x_j))
 *
 * together with their gradients (vector-Jacobian products), the Jacobian-vector
 * product of log-softmax and the full Jacobian of one row. `scale` is the
 * inverse temperature: scale = 1 / T.
 *
 * Every function returns SOFTMAX_OK (0) on success and a negative
 * softmax_status otherwise; softmax_strerror() names a status and
 * softmax_last_error() says, for the calling thread, what was wrong with the
 * last failed call. On error nothing is written to any output.
 *
 * ---------------------------------------------------------------------------
 * THE NUMERICS CONTRACT (every function, every data type, every code path)
 * ---------------------------------------------------------------------------
 * Let z = scale * x for one row of n elements (extended-real arithmetic).
 *
 *  finite row, finite scale > 0
 *      softmax(z), evaluated as exp(scale * (x_i - max x)) / sum: no overflow
 *      for any finite input and any finite scale.
 *  finite scale < 0
 *      softmin: evaluated around the row minimum, exp(scale * (x_i - min x)).
 *  scale == 0
 *      infinite temperature: uniform 1/k over the k elements that are not -inf
 *      (a -inf element stays masked and gets 0).
 *  scale == +inf / -inf
 *      the limit: one-hot at the arg max (arg min for -inf); ties share the
 *      mass equally.
 *  an element -inf (scale > 0)
 *      its probability is exactly 0 (log-softmax: -inf). This is how a mask is
 *      applied: add -inf to the excluded logits.
 *  elements +inf (scale > 0)
 *      the limit: the +inf entries share the mass equally, the rest get 0.
 *      For scale < 0 the roles of +inf and -inf swap (softmin of z = scale*x).
 *  every element -inf (a fully masked row), any scale
 *      all zeros; log-softmax: all -inf; gradients: all zeros. Never NaN.
 *      (Likewise every element +inf with scale < 0: every z is -inf.)
 *  any NaN in the row
 *      the whole output row is NaN.
 *  NaN scale
 *      SOFTMAX_E_INVALID_SCALE, nothing written.
 *  rows == 0 or cols == 0 (or any extent 0)
 *      SOFTMAX_OK, nothing read or written (pointers may then be NULL).
 *  rows * cols (or the byte size) overflows size_t
 *      SOFTMAX_E_SIZE_OVERFLOW, nothing written.
 *  NULL pointer with a non-zero size
 *      SOFTMAX_E_NULL_POINTER, nothing written.
 *  output partially overlapping an input
 *      SOFTMAX_E_OVERLAP, nothing written. Exact aliasing is allowed: y == x
 *      for the forward functions, dx == y or dx == dy for the backward ones.
 *
 * Accuracy, for outputs in the normal range, against a high-precision
 * reference computed from the same inputs (any row length up to 2^22 and any
 * scale): softmax within 2 ulp (f32) / 4 ulp (f64) on the portable path and
 * 3 / 4 ulp on the SIMD paths; log-softmax within the same number of ulp of
 * max(|y|, 1). Log-softmax outputs are never above 0, and exactly +0 (not
 * -0, whatever the sign of the scale) where the probability is exactly 1: a
 * row of one element, or one whose other elements are -inf or excluded
 * (`where`, causal). Measured figures are in
 * the README. The SIMD paths compute
 * the forward functions with flush-to-zero: a result below the normal range
 * (|y| < FLT_MIN or DBL_MIN) may come out as 0, never a normal one.
 *
 * Order: for scale > 0, x_i >= x_j implies y_i >= y_j (for scale < 0 the
 * order reverses). Rounding never breaks the weak order.
 *
 * Determinism: the same input gives the same bits for any thread count and
 * for in-place or out-of-place calls.
 *
 * ---------------------------------------------------------------------------
 * GRADIENTS (the chapter's "Gradient, Jacobian, and Hessian", finished)
 * ---------------------------------------------------------------------------
 * With y = softmax(scale * x) over a row and delta_ij the Kronecker delta:
 *
 *   Jacobian of softmax       dy_i/dx_j  = scale * y_i * (delta_ij - y_j)
 *                             J = scale * (diag(y) - y y^T)   (symmetric)
 *   Jacobian of log-softmax   dlogy_i/dx_j = scale * (delta_ij - y_j)
 *                             J = scale * (I - 1 y^T)
 *   softmax VJP (backward)    dx = J^T dy = scale * y * (dy - <dy, y>)
 *   softmax JVP               dy = J v    = scale * y * (v - <v, y>)  (= VJP)
 *   log-softmax VJP           dx = J^T dy = scale * (dy - y * sum(dy))
 *   log-softmax JVP           dlogy = J v = scale * (v - <v, y>)
 *   Hessian of log-softmax    d2 logy_i / dx_j dx_k = -scale^2 * (diag(y) - y y^T)_jk
 *                             (the same for every i: minus the softmax Jacobian
 *                             times scale, hence log-sum-exp is convex)
 *
 * Gradient special cases, decided from the inputs (whatever dy or v hold, and
 * whether or not y came from a forward call): a NaN in y, logy, dy or v gives
 * a NaN row; otherwise a fully masked row (y all 0, or logy all -inf) gives
 * an all-zero gradient, and so does an infinite scale (the limit is piecewise
 * constant), also where an infinite dy or v would make 0 * inf. Otherwise an
 * infinite dy or v goes through the formulas above in extended-real
 * arithmetic: the row's sum or dot product is infinite (NaN with both
 * signs, then the whole row is NaN), an element meeting inf - inf or
 * 0 * inf (y = 0) is NaN, the others are +-inf.
 *
 * Gradient range and accuracy: for finite inputs and any finite scale the
 * result is the exact value of the formulas (computed from the very inputs
 * and the scale as given, a double for every data type) within a few
 * roundings of each of its terms, wherever an intermediate of a plain
 * evaluation would leave the type's range: dy - <dy, y> beyond the largest
 * finite value, <dy, y> or sum(dy) beyond it, s * y or exp(logy) below the
 * smallest normal while the result is not, a subnormal or huge scale. An
 * output is finite whenever the exact value lies within the type's range;
 * +-inf only where it lies beyond (or where the accuracy bound itself does:
 * values near the largest finite that cancel, times a huge scale). Subnormal
 * outputs are computed, not flushed (unless the caller's own floating-point
 * mode flushes them: the gradients keep it). Rows that need it take a careful
 * evaluation with an unbounded exponent; the others pay a few comparisons.
 * The one exception, on the SIMD paths: for a y outside [-1, 1] (no softmax
 * gives one), an output may be off by up to |y| / 2 units of the smallest
 * subnormal more.
 *
 * ---------------------------------------------------------------------------
 * THREADS
 * ---------------------------------------------------------------------------
 * Work is split over rows with OpenMP. The default thread count is the number
 * of online cores, or SOFTMAX_NUM_THREADS from the environment (an integer
 * in [1, 1024]; anything else is ignored). Counts above 1024 are capped.
 * Inputs smaller than about 64 Ki elements run on the calling thread.
 * Results never depend on the thread count.
 */
#ifndef SOFTMAX_H
#define SOFTMAX_H

#include <stddef.h>
#include <stdint.h>

/* SOFTMAX_API marks the exported functions. Code that links the static
 * library defines SOFTMAX_STATIC_DEFINE (CMake's softmax::softmax_static and
 * pkg-config's softmax-static do it), so that on Windows the functions are
 * not declared __declspec(dllimport). Elsewhere only compilers that know the
 * GNU visibility attribute see it; the library is built with hidden
 * visibility by default and this is what exports its functions. */
#if defined(SOFTMAX_STATIC_DEFINE)
#define SOFTMAX_API
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(SOFTMAX_BUILDING_LIBRARY)
#define SOFTMAX_API __declspec(dllexport)
#else
#define SOFTMAX_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define SOFTMAX_API __attribute__((visibility("default")))
#else
#define SOFTMAX_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define SOFTMAX_VERSION_MAJOR 0
#define SOFTMAX_VERSION_MINOR 1
#define SOFTMAX_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH". */
SOFTMAX_API const char *softmax_version(void);

/* ===========================================================================
 * Status codes. The values are pinned: they never change between versions.
 * ======================================================================== */
typedef enum softmax_status {
    SOFTMAX_OK = 0,
    SOFTMAX_E_NULL_POINTER = -1,       /* a required pointer is NULL */
    SOFTMAX_E_SIZE_OVERFLOW = -2,      /* element or byte count overflows size_t */
    SOFTMAX_E_INVALID_SCALE = -3,      /* scale is NaN */
    SOFTMAX_E_INVALID_AXIS = -4,       /* axis outside [-ndim, ndim) */
    SOFTMAX_E_OVERLAP = -5,            /* output partially overlaps an input */
    SOFTMAX_E_INVALID_DTYPE = -6,      /* unknown or unsupported data type */
    SOFTMAX_E_INVALID_ARGUMENT = -7,   /* other bad argument (op, ndim, ...) */
    SOFTMAX_E_INVALID_THREADS = -8,    /* thread count < 0 */
    SOFTMAX_E_OUT_OF_MEMORY = -9,      /* an allocation failed */
    SOFTMAX_E_UNSUPPORTED = -10,       /* a field reserved for later versions is set */
    SOFTMAX_E_ISA_UNAVAILABLE = -11,   /* SOFTMAX_ISA names a path this CPU lacks, or no path */
    SOFTMAX_E_INVALID_STRIDE = -12,    /* output strides map two elements to one address */
    SOFTMAX_E_INVALID_MASK = -13,      /* mask type, strides or masking parameters invalid */
    SOFTMAX_E_INVALID_PARAMETER = -14, /* a sampling parameter is out of range or NaN */
    SOFTMAX_E_NO_FINITE_LOGIT = -15    /* a row to sample from has no finite logit */
} softmax_status;

/* A short, static, human-readable description of a status code (never NULL;
 * "unknown status" for values this version does not define). */
SOFTMAX_API const char *softmax_strerror(int status);

/* Details of the last error returned on the calling thread, for example
 * "softmax_f32: dst overlaps src without being exactly the same elements". Empty if the
 * thread's last call succeeded. The pointer stays valid until the thread's
 * next call into the library. */
SOFTMAX_API const char *softmax_last_error(void);

/* The code path the library runs: "scalar" (portable C), "avx2" (AVX2 +
 * FMA) or "avx512" (AVX-512 F/DQ/BW/VL), chosen once from the CPU's
 * features. The environment variable SOFTMAX_ISA=scalar|avx2|avx512 forces
 * a path; if the CPU lacks it (or the value is unknown) this returns NULL
 * and every other call fails with SOFTMAX_E_ISA_UNAVAILABLE and a message
 * naming the path, rather than silently running another one. */
SOFTMAX_API const char *softmax_isa_name(void);

/* ===========================================================================
 * Pinned entry points: rows x cols, contiguous rows, along the last axis.
 * Each row of `cols` elements is independent. y may equal x (in place).
 * ======================================================================== */

/* y = softmax(scale * x) for each row. */
SOFTMAX_API int softmax_f32(const float *x, float *y, size_t rows, size_t cols, float scale);
SOFTMAX_API int softmax_f64(const double *x, double *y, size_t rows, size_t cols, double scale);

/* y = log_softmax(scale * x) = scale * x - logsumexp(scale * x) for each row. */
SOFTMAX_API int log_softmax_f32(const float *x, float *y, size_t rows, size_t cols, float scale);
SOFTMAX_API int log_softmax_f64(const double *x, double *y, size_t rows, size_t cols, double scale);

/* dx = scale * y * (dy - sum(dy * y)), y = softmax output (vector-Jacobian
 * product of softmax). dx may equal y or dy. */
SOFTMAX_API int softmax_backward_f32(const float *y, const float *dy, float *dx, size_t rows, size_t cols, float scale);
SOFTMAX_API int softmax_backward_f64(const double *y, const double *dy, double *dx, size_t rows, size_t cols,
                                     double scale);

/* dx = scale * (dy - exp(logy) * sum(dy)), logy = log-softmax output
 * (vector-Jacobian product of log-softmax). dx may equal logy or dy. */
SOFTMAX_API int log_softmax_backward_f32(const float *logy, const float *dy, float *dx, size_t rows, size_t cols,
                                         float scale);
SOFTMAX_API int log_softmax_backward_f64(const double *logy, const double *dy, double *dx, size_t rows, size_t cols,
                                         double scale);

/* Thread count for later calls: n >= 1 sets it, n == 0 returns to the default
 * (SOFTMAX_NUM_THREADS or the number of online cores). n < 0 is
 * SOFTMAX_E_INVALID_THREADS. Safe to call while other threads compute: a
 * call in progress keeps the count it started with. A library built without
 * OpenMP (CMake option SOFTMAX_OPENMP=OFF, or no OpenMP found) runs every
 * call on the calling thread: the count is kept and reported, and unused. */
SOFTMAX_API int softmax_set_num_threads(int n);
/* The thread count that the next call will use at most (>= 1). */
SOFTMAX_API int softmax_get_num_threads(void);

/* ===========================================================================
 * Jacobian-vector products and full Jacobians
 * ======================================================================== */

/* dlogy = scale * (v - sum(exp(logy) * v)): the Jacobian-vector product of
 * log-softmax (forward-mode derivative), logy = log-softmax output, v = the
 * tangent of x. dlogy may equal logy or v. The JVP of softmax equals its VJP
 * (the Jacobian is symmetric): use softmax_backward_*. */
SOFTMAX_API int log_softmax_jvp_f32(const float *logy, const float *v, float *dlogy, size_t rows, size_t cols,
                                    float scale);
SOFTMAX_API int log_softmax_jvp_f64(const double *logy, const double *v, double *dlogy, size_t rows, size_t cols,
                                    double scale);

/* Writes the full n x n Jacobian of one softmax row, row-major:
 *     jacobian[i * n + j] = scale * (delta_ij * y_i - y_i * y_j)
 * from the softmax output y (n elements). Meant for small n (n * n elements
 * are written). jacobian must not overlap y. An infinite scale gives zeros. */
SOFTMAX_API int softmax_jacobian_f32(const float *y, size_t n, float scale, float *jacobian);
SOFTMAX_API int softmax_jacobian_f64(const double *y, size_t n, double scale, double *jacobian);

/* Writes the full n x n Jacobian of one log-softmax row, row-major:
 *     jacobian[i * n + j] = scale * (delta_ij - exp(logy_j))
 * from the log-softmax output logy. A fully masked row (all -inf) or an
 * infinite scale gives zeros. */
SOFTMAX_API int log_softmax_jacobian_f32(const float *logy, size_t n, float scale, float *jacobian);
SOFTMAX_API int log_softmax_jacobian_f64(const double *logy, size_t n, double scale, double *jacobian);

/* ===========================================================================
 * General API: any axis of an N-d tensor of any layout and data type, with
 * fused masks, described once.
 *
 * The tensor has shape [d0, ..., d(ndim-1)]. Without strides it is row-major
 * and contiguous, viewed as [outer, n, inner] around `axis`: outer = d0 * ...
 * * d(axis-1), n = d(axis), inner = d(axis+1) * ... * d(ndim-1); the
 * operation applies to each of the outer * inner lines of n elements.
 *
 * Data types. bf16 and f16 are stored as uint16_t bit patterns and computed
 * in f32 with the f32 contract; a half-precision output is the correctly
 * rounded (nearest even) value of the f32 result. src, grad and dst may each
 * have their own type (dst_dtype / grad_dtype 0 = same as dtype), e.g. bf16
 * in and f32 out. The computation type is f64 if any operand is f64, else f32.
 *
 * Strides, in elements (not bytes), one per dimension; NULL = row-major
 * contiguous. Input strides may be zero (broadcast) or negative; an output
 * stride layout must not map two elements to one address
 * (SOFTMAX_E_INVALID_STRIDE). Overlap between an output and an input other
 * than exact aliasing with identical layout is SOFTMAX_E_OVERLAP.
 *
 * Masks (forward ops), all fused in the same pass. For each element the
 * logit is
 *
 *     z = scale * x + mask + alibi_slope(h) * j          (kept elements)
 *     z = -inf                                           (excluded elements)
 *
 * where j is the element's index along `axis`:
 *  - mask: an additive bias of type mask_dtype (F32, F64, BF16 or F16) with
 *    mask_strides over the full shape (NULL = same shape, contiguous; a zero
 *    stride broadcasts, e.g. one [q, k] mask for every batch and head).
 *    -inf entries exclude their element.
 *  - where: one byte per element (nonzero = kept), with where_strides as for
 *    mask; excluded elements get probability exactly 0 (log-softmax -inf).
 *  - causal: element j of a line is kept only if j <= i + causal_offset,
 *    where i is the line's index along dimension axis - 1 (the query index of
 *    an attention score tensor [..., q, k]); requires axis >= 1.
 *  - ALiBi: if max_bias > 0, with H = d(head_axis) heads, h = the line's index
 *    along head_axis, H2 = the largest power of two <= H,
 *        m0 = 2^(-max_bias / H2), m1 = 2^(-max_bias / (2 * H2)),
 *        alibi_slope(h) = m0^(h + 1)              if h < H2,
 *                         m1^(2 * (h - H2) + 1)   otherwise,
 *    the slopes of ggml's soft_max_ext, taken as these exact real numbers
 *    (computed to about 2^-70 relative: a slope rounded to a double would
 *    move slope * j of a long row by many f64 ulp). The bias is slope * j;
 *    by translation invariance this equals the usual -slope * (i - j) of
 *    ALiBi. head_axis counts like axis (negative from the end;
 *    softmax_desc_init sets -3 for [batch, heads, q, k]) and must differ
 *    from axis.
 * A line with no kept element (fully masked) gives zeros (log-softmax -inf,
 * gradients zeros), never NaN; so does a line whose kept x are all -inf,
 * for every scale (a -inf x plus a bias stays excluded when the scale is
 * negative). An element whose bias is -inf is excluded at every scale,
 * infinite ones included (it never wins the arg max). The additive mask is
 * computed in f64 around the line's largest finite x (smallest for
 * scale < 0), so that the logit z is neither rounded before the
 * exponential nor overflowed by scale * x alone: the accuracy contract
 * holds for z as the exact value of the expression above, for any finite
 * x, bias and scale.
 *
 * Backward ops take y or logy, which already carry the mask; `where` and
 * `causal` are also honoured by the backward ops (excluded elements get
 * gradient 0 and their dy is ignored), so a masked log-softmax backward is
 * the exact gradient. Additive masks and ALiBi do not change the backward
 * formulas and are ignored there.
 *
 * Fast mode. flags = SOFTMAX_FLAG_FAST lets the forward ops (softmax and
 * log-softmax) trade the accuracy and order guarantees of the contract for
 * speed, where a faster algorithm exists: today unmasked calls computed in
 * f32 on the SIMD paths -- f32 along a contiguous last axis, and bf16 / f16
 * data or strided views, gathered for the same kernels (textbook
 * exponential with an exact argument reduction, no rounding-error carry,
 * sums of 64-term runs in f32; a half-precision output is that f32 result
 * rounded). Elsewhere (f64, masks, a contiguous f32 non-last axis) the flag
 * is accepted and the accurate kernels run. What stays:
 * every special-value rule of the contract table (-inf, +inf, NaN, scale 0
 * and +-inf, fully masked rows), no overflow for any finite input, and the
 * same bits for any thread count. What changes: outputs are within 5 ulp
 * instead of 3 (log-softmax: 5 ulp of max(|y|, 1)), measured by
 * tests/test_fast.c against MPFR, and the weak order of the inputs may be
 * broken by one ulp where the exponential changes its power of two. Other
 * flag bits are SOFTMAX_E_UNSUPPORTED.
 *
 * Build a descriptor with softmax_desc_init() and set its fields; `reserved`
 * must stay zero (SOFTMAX_E_UNSUPPORTED otherwise).
 * ======================================================================== */

#define SOFTMAX_MAX_NDIM 8

/* softmax_desc.flags: faster forward kernels with a looser accuracy bound
 * (see "Fast mode" above). */
#define SOFTMAX_FLAG_FAST 1u

typedef enum softmax_dtype {
    SOFTMAX_DTYPE_F32 = 1,  /* IEEE binary32 */
    SOFTMAX_DTYPE_F64 = 2,  /* IEEE binary64 */
    SOFTMAX_DTYPE_BF16 = 3, /* bfloat16 (the high half of a binary32), as uint16_t */
    SOFTMAX_DTYPE_F16 = 4   /* IEEE binary16, as uint16_t */
} softmax_dtype;

typedef enum softmax_op {
    /* dst = softmax(scale * src); grad unused (may be NULL). */
    SOFTMAX_OP_SOFTMAX = 1,
    /* dst = log_softmax(scale * src); grad unused (may be NULL). */
    SOFTMAX_OP_LOG_SOFTMAX = 2,
    /* src = y (softmax output), grad = dy; dst = dx = scale * y * (dy - <dy, y>).
     * Also the JVP of softmax (grad = tangent v). */
    SOFTMAX_OP_SOFTMAX_BACKWARD = 3,
    /* src = logy, grad = dy; dst = dx = scale * (dy - exp(logy) * sum(dy)). */
    SOFTMAX_OP_LOG_SOFTMAX_BACKWARD = 4,
    /* src = logy, grad = v (tangent of x); dst = scale * (v - <exp(logy), v>). */
    SOFTMAX_OP_LOG_SOFTMAX_JVP = 5
} softmax_op;

typedef struct softmax_desc {
    softmax_op op;                  /* what to compute */
    softmax_dtype dtype;            /* type of src (and of grad and dst unless set below) */
    int ndim;                       /* 1 .. SOFTMAX_MAX_NDIM */
    int axis;                       /* -ndim .. ndim-1; negative counts from the end */
    size_t shape[SOFTMAX_MAX_NDIM]; /* extents; entries past ndim are ignored */
    double scale;                   /* inverse temperature (applied in the computation type or better) */

    softmax_dtype dst_dtype;  /* 0 = dtype */
    softmax_dtype grad_dtype; /* 0 = dtype */

    const int64_t *src_strides;  /* ndim strides in elements; NULL = contiguous */
    const int64_t *grad_strides; /* likewise for grad */
    const int64_t *dst_strides;  /* likewise for dst */

    const void *mask;             /* additive mask, NULL = none */
    softmax_dtype mask_dtype;     /* its type (0 = F32) */
    const int64_t *mask_strides;  /* NULL = contiguous over the full shape; 0 broadcasts */
    const uint8_t *where;         /* keep-mask, NULL = none; nonzero = kept */
    const int64_t *where_strides; /* NULL = contiguous over the full shape; 0 broadcasts */
    int causal;                   /* nonzero: keep j <= i + causal_offset */
    int head_axis;                /* ALiBi head dimension (see above) */
    int64_t causal_offset;
    double max_bias; /* > 0 enables ALiBi */

    uint64_t flags;        /* SOFTMAX_FLAG_FAST or 0 */
    uint64_t reserved[15]; /* must be zero */
} softmax_desc;

/* Fills *desc: the given op and dtype, a 1-d shape {n}, axis -1, scale 1,
 * head_axis -3, everything else zero (contiguous, no mask). */
SOFTMAX_API int softmax_desc_init(softmax_desc *desc, softmax_op op, softmax_dtype dtype, size_t n);

/* Runs the operation described by *desc. src, grad and dst have the shape
 * of the descriptor (grad only for the gradient ops). */
SOFTMAX_API int softmax_execute(const softmax_desc *desc, const void *src, const void *grad, void *dst);

/* Converts n values between any two data types (round to nearest even, NaN
 * stays NaN, overflow to inf; f16 sub-normals exact). dst and src may be the
 * same pointer only if both types have the same size. */
SOFTMAX_API int softmax_convert(void *dst, softmax_dtype dst_dtype, const void *src, softmax_dtype src_dtype, size_t n);

/* ===========================================================================
 * Sampling and row statistics
 * ======================================================================== */

/*
 * SAMPLING. softmax_sample() draws one index per row from
 *
 *     p_i = softmax(x / T)_i          (T = params->temperature)
 *
 * after optional filters, applied in this order to the temperature-scaled
 * distribution, each one to the distribution the previous one left
 * (renormalised):
 *
 *   1. top-k  (top_k > 0): keep the k largest logits. Ties at the boundary
 *      are broken towards the lowest index, so exactly k are kept.
 *   2. top-p  (top_p < 1): rank the kept tokens by logit (ties: lowest index
 *      first) and keep the shortest prefix whose probability reaches top_p.
 *   3. min-p  (min_p > 0): keep the tokens with p_i >= min_p * max_j p_j.
 *
 * The draw is from the kept set, renormalised: index i with probability
 * p_i / sum_{j kept} p_j. Exactly that: no token outside the kept set is
 * ever drawn, and no approximation is made beyond floating-point rounding.
 * Every filter keeps the most probable token, so the kept set is never
 * empty. Parameters and their "off" values:
 *
 *   temperature   >= 0. 0 = greedy: the arg max (ties: lowest index), no
 *                 random number is used and the filters change nothing.
 *                 +inf = uniform over the kept set. The filters still rank
 *                 by logit: top-k keeps the k largest logits, top-p the
 *                 shortest prefix of them whose count reaches top_p of the
 *                 tokens above -inf (equal masses), min-p keeps all.
 *                 NaN or < 0: SOFTMAX_E_INVALID_PARAMETER.
 *   top_k         0 = off (as is any k >= vocab); < 0 is invalid.
 *   top_p         in (0, 1]; 1 = off.
 *   min_p         in [0, 1]; 0 = off.
 *   seed          the key of the random stream (below).
 *   reserved      must be zero (SOFTMAX_E_UNSUPPORTED otherwise).
 *
 * Special logits (temperature > 0): a -inf logit is never drawn (a mask);
 * if a row has +inf logits, the draw is uniform among them (the limit of
 * the numerics contract); a row with a NaN logit, or with no logit above
 * -inf (fully masked, or vocab == 0), has no distribution: see "row
 * failures" below. A temperature so small that 1/T overflows f32 (below
 * about 2.9e-39) divides the row by T in f64 first (below): the logits
 * more than about 100 T below the max get weight 0, the limit, so most
 * rows are uniform among their tied maxima, but {0, -1e-300} at
 * T = 1e-300 weighs e^0 and e^-1.
 *
 * Arithmetic: the weights exp((x_i - max x) / T) are computed in f32 for
 * every data type (bf16 and f16 are widened exactly; for f64 the
 * differences x_i - max x are taken in f64 and rounded to f32, and top-k
 * compares those rounded values -- but where a finite logit lies more than
 * FLT_MAX below the max and T is finite, the row is divided by T in f64
 * first, so that a large T brings it back into range; so is an f32 or
 * bf16 row where a finite logit's f32 difference from the max overflows,
 * at a finite T > 2^121, below which such a weight is under the least
 * f32; and so is every row at a finite T whose 1/T overflows f32 -- such
 * a row is then sampled at T = 1, top-k comparing its (x_i - max x) / T
 * rounded to f32); sums are carried in f64. Different code
 * paths (SOFTMAX_ISA) round and sum the weights differently, so a draw may
 * differ between paths only when u falls within rounding of a bucket edge
 * (measured: a few draws in 100,000).
 *
 * THE RANDOM STREAM. Row r of a call draws with the uniform variate
 *
 *     u = softmax_sample_uniform(seed, stream, step)        in [0, 1)
 *
 * where stream = stream_ids[r] (or r when stream_ids is NULL) and step is
 * the call's argument, e.g. the position of the token being generated. u is
 * Philox4x32-10 (Salmon et al., SC 2011; the Random123 generator
 * philox4x32) with
 *
 *     key     = {seed & 0xffffffff, seed >> 32}
 *     counter = {step & 0xffffffff, step >> 32, stream & 0xffffffff, stream >> 32}
 *     out     = philox4x32_10(counter, key)
 *     u       = ((out[1] << 32 | out[0]) >> 11) * 2^-53
 *
 * A draw therefore depends only on (seed, stream, step) and the row's
 * logits: never on the thread count, on the other rows of the batch or on
 * its position in the batch (pass stream_ids to keep a sequence's stream
 * when batches are reshuffled). The index drawn is the first kept index i
 * (in index order) with u * W < C_i, where C_i is the sum of the kept
 * weights up to and including i and W the sum of all kept weights.
 *
 * ROW FAILURES. A row with a NaN logit or without any logit above -inf
 * gets indices[r] = -1, probs[r] = NaN and logsumexp[r] = NaN (no random
 * index is ever drawn for it); the other rows are sampled normally and the
 * call returns SOFTMAX_E_NO_FINITE_LOGIT (softmax_last_error() names the
 * first failed row). This is the one status after which outputs have been
 * written.
 */
typedef struct softmax_sampler_params {
    double temperature;   /* >= 0; 1 = softmax(x); 0 = greedy; +inf = uniform */
    int64_t top_k;        /* 0 = off */
    double top_p;         /* (0, 1]; 1 = off */
    double min_p;         /* [0, 1]; 0 = off */
    uint64_t seed;        /* key of the random stream */
    uint64_t reserved[4]; /* must be zero */
} softmax_sampler_params;

/* Fills *params with temperature 1, every filter off and seed 0. */
SOFTMAX_API int softmax_sampler_params_init(softmax_sampler_params *params);

/* Draws one index per row of the rows x vocab logits (dtype F32, F64, BF16
 * or F16; contiguous rows) into indices[rows]. Optional outputs (NULL =
 * not wanted):
 *   probs[r]      the probability the drawn index had in the distribution it
 *                 was drawn from (the kept set renormalised; 1 for greedy);
 *   logsumexp[r]  log sum_j exp(x_j / T) over the whole row, before any
 *                 filter (so log p_i = x_i / T - logsumexp[r]); log(number
 *                 of logits above -inf) for T = +inf; +inf if the row has
 *                 +inf logits; NaN for T = 0.
 * stream_ids (NULL = the row numbers 0 .. rows-1) and step select the
 * random stream, see above. vocab must be < 2^32. Errors: NULL params or
 * NULL pointer with rows > 0 (SOFTMAX_E_NULL_POINTER), rows * vocab
 * overflowing (SOFTMAX_E_SIZE_OVERFLOW), an invalid parameter
 * (SOFTMAX_E_INVALID_PARAMETER), reserved fields set (SOFTMAX_E_UNSUPPORTED),
 * an unknown dtype (SOFTMAX_E_INVALID_DTYPE), vocab >= 2^32
 * (SOFTMAX_E_INVALID_ARGUMENT), an output (indices, probs, logsumexp)
 * sharing a byte with logits, stream_ids or another output
 * (SOFTMAX_E_OVERLAP): nothing written. Parameters, dtype and the code path
 * (SOFTMAX_ISA) are checked even when rows == 0. Rows without a
 * distribution: SOFTMAX_E_NO_FINITE_LOGIT, see above.
 * Rows are spread over threads; results never depend on the thread count. */
SOFTMAX_API int softmax_sample(const softmax_sampler_params *params, softmax_dtype dtype, const void *logits,
                               size_t rows, size_t vocab, uint64_t step, const uint64_t *stream_ids, int64_t *indices,
                               double *probs, double *logsumexp);

/* The uniform variate of (seed, stream, step) in [0, 1), as defined above. */
SOFTMAX_API double softmax_sample_uniform(uint64_t seed, uint64_t stream, uint64_t step);

/* Philox4x32-10 itself: out = philox4x32_10(counter, key), bit for bit the
 * Random123 function philox4x32(counter, key). */
SOFTMAX_API void softmax_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/*
 * ROW STATISTICS of p = softmax(scale * x) for each of rows x cols
 * contiguous rows (dtype F32, F64, BF16 or F16), each output optional
 * (NULL = not computed):
 *
 *   logsumexp[r]  log sum_j exp(scale * x_j)
 *   entropy[r]    -sum_j p_j log p_j, in nats (terms with p_j = 0 add 0)
 *   argmax[r]     the lowest index j maximising p_j
 *
 * computed with the softmax and log-softmax kernels of the active code path
 * (so: stable for every finite input and scale, no overflow). The special
 * values follow the numerics contract:
 *   - a NaN in the row: logsumexp and entropy NaN, argmax = the first NaN;
 *   - every p_j = 0 (every scale * x_j = -inf, a fully masked row):
 *     logsumexp -inf, entropy 0, argmax 0;
 *   - +inf among scale * x: logsumexp +inf, the k infinite entries share
 *     the mass: entropy log(k), argmax the first of them;
 *   - scale == 0: uniform over the k elements that are not -inf:
 *     logsumexp = entropy = log(k), argmax the first of them;
 *   - scale == +-inf: the limit: entropy log(number of tied maxima of
 *     scale * x), logsumexp +-inf (log of that number if the extreme
 *     element is 0), argmax the first of the ties;
 *   - NaN scale: SOFTMAX_E_INVALID_SCALE, nothing written.
 * Other errors, nothing written: an unknown dtype (SOFTMAX_E_INVALID_DTYPE),
 * x NULL with rows * cols > 0 (SOFTMAX_E_NULL_POINTER), sizes overflowing
 * (SOFTMAX_E_SIZE_OVERFLOW), an output sharing a byte with x or another
 * output (SOFTMAX_E_OVERLAP). dtype, scale and the code path are checked
 * even when rows == 0.
 * Accuracy (against MPFR, tests/test_stats.c): |logsumexp - exact| within
 * 8 ulp of the data type (f32 for bf16/f16) of max(|scale * max x|,
 * |logsumexp|, 1); |entropy - exact| within 16 ulp of entropy + 1.
 * cols == 0 with rows > 0: every row is "fully masked" (logsumexp -inf,
 * entropy 0, argmax -1).
 */
SOFTMAX_API int softmax_row_stats(softmax_dtype dtype, const void *x, size_t rows, size_t cols, double scale,
                                  double *logsumexp, double *entropy, int64_t *argmax);

/* ===========================================================================
 * A vocabulary split across processes: slice summaries, exact merges and
 * sampling that draws the same token for any split (docs/distributed.md)
 * ======================================================================== */

/*
 * Each process (rank) holds a slice of columns of every row of logits: the
 * columns [col_offset, col_offset + cols) of rows of `vocab` columns. A
 * slice is summarised per row into a fixed-size record; records merge
 * (softmax_summary_merge, an associative and commutative operation: an
 * MPI_Op or an all-reduce) and the merged record finishes the softmax
 * family on each slice without any other data crossing between ranks.
 *
 * With t_i = x_i for scale >= 0 and t_i = -x_i for scale < 0 (so that
 * z_i = scale * x_i = |scale| * t_i), a record holds for its row:
 *
 *   ref            the largest t_i (-inf if none, e.g. every x_i masked)
 *   sum            S = sum_i exp(|scale| * (t_i - ref)), double-double
 *   dsum           D = sum_i exp(d_i) * d_i, d_i = |scale| * (t_i - ref)
 *   argmax         the lowest global column with t_i == ref
 *   counts         of t_i == ref, of t_i > -inf, of NaN; the first NaN
 *   target         the logit of the row's target column, from the one
 *                  slice that holds it (cross-entropy)
 *   candidates     the top_k largest scale * x_i with their global columns,
 *                  ordered by scale * x descending, ties by column ascending
 *
 * GUARANTEES. Everything but sum and dsum is bit-identical whatever the
 * slice boundaries, the number of slices and the order of the merges. sum
 * and dsum are carried relative to ref (no overflow for any finite input
 * and scale) in double-double and rescaled with exp when a merge raises
 * ref: for a row cut into N slices, merged in any order,
 *     |S - S_exact| <= (N + 2) * 2^-52 * S_exact
 * and the finishing calls inherit that: f32 outputs are the exact value
 * rounded, or its neighbour; f64 outputs within (N + 4) ulp (log-softmax,
 * logsumexp, entropy, NLL: within (N + 4) ulp of max(|value|, 1)), measured
 * against MPFR by tests/test_summary.c. The special values follow the
 * numerics contract across slices: a NaN anywhere in the row makes every
 * output of the row NaN; a fully masked row gives softmax 0, log-softmax
 * -inf, logsumexp -inf, entropy 0, gradient 0; +inf entries share the
 * mass; scale 0 is uniform over the elements that are not masked; scale
 * +-inf is the one-hot limit (ties share). NaN scale is
 * SOFTMAX_E_INVALID_SCALE.
 *
 * Records of one reduction must come from calls with the same scale (bit
 * for bit) and the same top_k capacity: merge checks both
 * (SOFTMAX_E_INVALID_ARGUMENT). The bytes of a record are plain data
 * (no pointers): copy them, send them, reduce them as bytes. Every call
 * that reads records refuses (SOFTMAX_E_INVALID_ARGUMENT, "corrupted")
 * bytes that no summary or merge produces: a wrong magic or capacity,
 * unknown flags, reserved != 0, a NaN scale or ref, counts above
 * `columns`, candidates above min(top_k, columns), columns >= 2^32.
 * Outputs sharing a byte with any input of the call (logits, targets,
 * records, search, bins, draws, stream_ids, another output) are
 * SOFTMAX_E_OVERLAP, except the in-place cases stated below.
 */

/* One rank's share of rows x vocab logits: `cols` contiguous columns per
 * row starting at global column col_offset (rows of `cols` elements,
 * contiguous). targets (optional, NULL = none): rows global target
 * columns for the cross-entropy; a negative target ignores the row (NLL 0,
 * gradient 0). Each rank passes the same targets array. */
typedef struct softmax_slice {
    softmax_dtype dtype;    /* F32, F64, BF16 or F16 */
    const void *logits;     /* rows x cols */
    size_t rows;            /* the same on every rank */
    size_t cols;            /* columns of this slice (may be 0) */
    uint64_t col_offset;    /* global column of the slice's first column */
    uint64_t vocab;         /* global row length, < 2^32; col_offset + cols <= vocab */
    const int64_t *targets; /* rows entries, or NULL */
} softmax_slice;

/* A top-k candidate: a logit and its global column. */
typedef struct softmax_candidate {
    double logit;
    int64_t column;
} softmax_candidate;

#define SOFTMAX_SUMMARY_MAGIC 0x736d7331u

/* The record of one row: this header, then `top_k` softmax_candidate
 * (of which `candidates` are filled). softmax_summary_bytes(top_k) bytes;
 * the records of a call are that many bytes apart. */
typedef struct softmax_summary {
    uint32_t magic;          /* SOFTMAX_SUMMARY_MAGIC */
    uint32_t top_k;          /* candidate capacity */
    double scale;            /* the scale of the call */
    double ref;              /* max t (t = x, or -x for scale < 0) */
    double sum_hi, sum_lo;   /* S, relative to ref */
    double dsum_hi, dsum_lo; /* D, relative to ref */
    double target_logit;     /* x[target] if target_found */
    int64_t argmax;          /* lowest global column with t == ref; -1 if no column */
    int64_t first_nan;       /* lowest global column holding NaN, -1 if none */
    int64_t first_kept;      /* lowest global column with scale * x > -inf, -1 if none */
    int64_t target;          /* global target column, < 0 if none */
    uint64_t count_ref;      /* columns with t == ref */
    uint64_t count_kept;     /* columns with scale * x > -inf (and not NaN) */
    uint64_t count_nan;      /* NaN columns */
    uint64_t columns;        /* columns summarised */
    uint32_t target_found;   /* 1 if this record has seen the target column */
    uint32_t candidates;     /* filled candidates (min(top_k, columns)) */
    uint32_t flags;          /* SOFTMAX_SUMMARY_NO_SUMS or 0 */
    uint32_t reserved;       /* 0 */
} softmax_summary;

/* softmax_summary.flags: a record of softmax_sample_summarize, without the
 * sums (sampling needs none): the finishing calls refuse it. */
#define SOFTMAX_SUMMARY_NO_SUMS 1u

/* Bytes of one row's record with room for top_k candidates (0 if top_k
 * is so large that the size overflows). */
SOFTMAX_API size_t softmax_summary_bytes(size_t top_k);

/* Summarises each row of the slice into summaries (rows records of
 * softmax_summary_bytes(top_k) bytes). scale as in softmax_f32 (for
 * sampling: 1 / temperature, or any scale > 0). Errors (nothing written):
 * NULL slice or summaries (SOFTMAX_E_NULL_POINTER), NaN scale
 * (SOFTMAX_E_INVALID_SCALE), unknown dtype (SOFTMAX_E_INVALID_DTYPE),
 * col_offset + cols > vocab, vocab >= 2^32 or a target >= vocab
 * (SOFTMAX_E_INVALID_ARGUMENT), sizes overflowing (SOFTMAX_E_SIZE_OVERFLOW),
 * summaries overlapping the logits or the targets (SOFTMAX_E_OVERLAP). */
SOFTMAX_API int softmax_summary_compute(const softmax_slice *slice, double scale, size_t top_k, void *summaries);

/* inout[r] = merge(inout[r], in[r]) for rows records of
 * softmax_summary_bytes(top_k) bytes (top_k read from the records).
 * Associative and commutative (see GUARANTEES above); the records must
 * come from softmax_summary_compute or earlier merges, with equal scale and
 * capacity, and their targets must agree; two records that both hold the
 * target column, or cover 2^32 columns or more together, are overlapping
 * slices (all SOFTMAX_E_INVALID_ARGUMENT). in and inout sharing any byte:
 * SOFTMAX_E_OVERLAP. */
SOFTMAX_API int softmax_summary_merge(void *inout, const void *in, size_t rows);

/* Finishing calls: the slice with its rows' merged records. */

/* y = softmax(scale * x) (log = 0) or log_softmax (log = 1) of the slice's
 * columns: rows x cols into y, f64 for F64 slices and f32 otherwise. y may
 * equal the logits of an F32 / F64 slice (in place). */
SOFTMAX_API int softmax_summary_softmax(const softmax_slice *slice, const void *merged, int log, void *y);

/* Per row (each output optional): logsumexp of scale * x, entropy of the
 * softmax in nats, the lowest arg max (global column), and the negative
 * log-likelihood of the target, nll = logsumexp - scale * x[target]
 * (+inf if the target is masked; 0 if the row's target is negative; NaN
 * if the row has a NaN). Needs only the merged records. logsumexp is
 * +-inf where |scale * max x| overflows f64. An output sharing a byte with
 * the records or another output: SOFTMAX_E_OVERLAP. */
SOFTMAX_API int softmax_summary_stats(const void *merged, size_t rows, double *logsumexp, double *entropy,
                                      int64_t *argmax, double *nll);

/* Gradient of nll (above) with respect to the slice's logits:
 * dx_i = scale * (p_i - [column i == target]) into dx (rows x cols, f64
 * for F64 slices, f32 otherwise); zeros for rows with a negative target,
 * fully masked rows and infinite scale; NaN rows for a NaN. Needs the
 * slice's targets (NULL: SOFTMAX_E_NULL_POINTER), the very targets the
 * records were computed with (any negative equals any negative; else
 * SOFTMAX_E_INVALID_ARGUMENT). dx sharing a byte with the logits or the
 * targets: SOFTMAX_E_OVERLAP. */
SOFTMAX_API int softmax_summary_nll_backward(const softmax_slice *slice, const void *merged, void *dx);

/*
 * SAMPLING OVER SLICES. The same token for any number of slices and any
 * slice boundaries, for temperature, top-k, top-p and min-p (the filters of
 * softmax_sample, applied in the same order). It is not softmax_sample's
 * draw (one uniform per row against cumulative sums, which depend on how
 * the row is cut): it is an exponential race (Gumbel-max). With M the
 * row's max logit, T the temperature and
 *
 *     d_i = (x_i - M) * (1 / T)                         (f64; 0 if x_i == M;
 *           where x_i - M overflows f64: ((x_i/2 - M/2) * (1 / T)) * 2)
 *     g_i = -log(-log(u_i))    u_i = the uniform of (seed, stream, step,
 *                              global column i), from Philox4x32-10 below
 *     token = the kept i maximising d_i + g_i (ties: lowest column)
 *
 * Each score is a function of its own column alone, so the draw is a
 * (score, column) max-reduction of the slices' bests: softmax_sample_race
 * per slice, softmax_draw_merge to reduce. The noise: k = philox4x32_10(
 * {step, step >> 32, stream, stream >> 32}, {seed, seed >> 32}), then for
 * column c, o = philox4x32_10({c / 2, (c / 2) >> 32, k[0], k[1]}, {k[2],
 * k[3]}); w = o[1] << 32 | o[0] for even c, o[3] << 32 | o[2] for odd c;
 * u = ((w >> 11) + 0.5) * 2^-53 (32-bit words, as softmax_sample_uniform).
 *
 * The kept set, decided exactly and identically on every rank:
 *   top-k  (0 < top_k < vocab): the merged candidates (summaries computed
 *          with capacity >= top_k): the decision and the race happen in
 *          softmax_sample_finish, no race round.
 *   top-p  (top_p < 1): the shortest prefix, in the order (logit
 *          descending, column ascending), whose mass reaches top_p of the
 *          mass of the kept set, with the mass of a column counted as
 *          Q_i = floor(exp(d_i) * 2^62), an integer, summed exactly.
 *          Without top-k the prefix is found by a radix search over
 *          (logit, column) keys: rounds of softmax_top_p_histogram per
 *          slice, softmax_top_p_bins_merge to reduce, softmax_top_p_narrow
 *          (at most 16 rounds, fewer when the boundary is isolated early).
 *   min-p  (min_p > 0): exp(d_i) >= min_p.
 * temperature 0 is the merged arg max (no noise); +inf makes every d_i 0.
 * A row with a NaN, or without a logit above -inf, gets index -1 and the
 * call SOFTMAX_E_NO_FINITE_LOGIT, as softmax_sample.
 *
 * The protocol, per step (every rank runs it; the merges are all-reduces):
 *   1. softmax_sample_summarize (or softmax_summary_compute with scale > 0
 *      and capacity >= top_k), merge;
 *   2. if softmax_sample_rounds() says so: softmax_top_p_start, then until
 *      softmax_top_p_narrow returns 0: histogram, merge bins, narrow;
 *   3. if it says so: softmax_sample_race, merge the draws;
 *   4. softmax_sample_finish: the tokens, the same on every rank.
 * The result depends on the logits, params, step and streams only, bit for
 * bit, for ranks running the same build of the library and of libm (exp,
 * log). tests/test_summary.c checks 1 to 8 slices at random boundaries
 * against the one-slice draw in every mode, and the draw frequencies
 * against long double probabilities of the filters (chi-square), and the
 * token against the race computed from this definition.
 */

/* Step 1 of sampling, about half the work of softmax_summary_compute: the
 * records of the slice without the sums (exp per column), with capacity
 * softmax_sample_capacity(params, vocab) -- top_k when 0 < top_k < vocab,
 * else 0 -- so rows records of softmax_summary_bytes(that) bytes. */
SOFTMAX_API size_t softmax_sample_capacity(const softmax_sampler_params *params, uint64_t vocab);
SOFTMAX_API int softmax_sample_summarize(const softmax_sampler_params *params, const softmax_slice *slice,
                                         void *summaries);

/* What a sampling step needs beyond step 1: bit 1 = the top-p search,
 * bit 2 = the race. (A function of params and vocab only: every rank
 * agrees.) Returns < 0 on invalid params. */
#define SOFTMAX_SAMPLE_NEEDS_TOP_P 1
#define SOFTMAX_SAMPLE_NEEDS_RACE 2
SOFTMAX_API int softmax_sample_rounds(const softmax_sampler_params *params, uint64_t vocab);

/* Per row, the state of the top-p search (plain data, the same on every
 * rank after each narrow). */
typedef struct softmax_top_p_search {
    uint64_t key_hi;    /* the fixed leading bits of the threshold key, */
    uint64_t key_lo;    /* right-aligned: bits 95..64 in key_hi, 63..0 in key_lo */
    uint64_t target[2]; /* mass to reach, 128-bit little-endian words */
    uint64_t above[2];  /* exact mass of keys above the fixed prefix */
    uint32_t bits;      /* leading bits of the 96-bit key fixed so far (key: the
                          * logit's order bits << 32 | (2^32 - 1 - column)) */
    uint32_t state;     /* 0 = searching, 1 = found, 2 = not needed */
} softmax_top_p_search;

#define SOFTMAX_TOP_P_BINS 64
/* One bin of a round: exact mass (128-bit), count, and the smallest and
 * largest 96-bit key in it (words: low 64 bits, then the high 32), so
 * that the next round splits just the bits where the bin's keys differ. */
typedef struct softmax_top_p_bin {
    uint64_t mass[2];
    uint64_t count;
    uint64_t min_key[2];
    uint64_t max_key[2];
} softmax_top_p_bin;

/* Starts rows searches from the merged records. The calls below that
 * take a search refuse (SOFTMAX_E_INVALID_ARGUMENT) states that start and
 * narrow never make. */
SOFTMAX_API int softmax_top_p_start(const softmax_sampler_params *params, const void *merged, size_t rows,
                                    softmax_top_p_search *search);
/* One round on a slice: bins[r * SOFTMAX_TOP_P_BINS + b]. */
SOFTMAX_API int softmax_top_p_histogram(const softmax_sampler_params *params, const softmax_slice *slice,
                                        const void *merged, const softmax_top_p_search *search,
                                        softmax_top_p_bin *bins);
/* inout += in (masses and counts, exactly; min and max of the keys), for
 * rows * SOFTMAX_TOP_P_BINS bins. Bins with count 0 are empty, whatever
 * their keys: zeroed bins are a valid start. */
SOFTMAX_API int softmax_top_p_bins_merge(softmax_top_p_bin *inout, const softmax_top_p_bin *in, size_t rows);
/* Advances the searches with the merged bins; returns the number of rows
 * still searching (0: done), or a negative status: bins that cannot be
 * this round's (they do not reach the searched mass, or the bin that does
 * holds keys outside the search's prefix -- bins of another round or row)
 * are SOFTMAX_E_INVALID_ARGUMENT, every search left as it was. */
SOFTMAX_API int softmax_top_p_narrow(softmax_top_p_search *search, const softmax_top_p_bin *merged_bins, size_t rows);

/* A slice's best (score, column) of a row; score -inf and column -1 when
 * it has no kept column. */
typedef struct softmax_draw {
    double score;
    int64_t column;
} softmax_draw;

/* The race on a slice: draws[r] for each row. search may be NULL when the
 * top-p search is not needed. stream_ids: NULL = the row numbers. The
 * records must be merged over the whole vocabulary (columns == vocab; this
 * holds for softmax_top_p_histogram too) and the search finished and
 * started for the same params (else SOFTMAX_E_INVALID_ARGUMENT). */
SOFTMAX_API int softmax_sample_race(const softmax_sampler_params *params, const softmax_slice *slice,
                                    const void *merged, const softmax_top_p_search *search, uint64_t step,
                                    const uint64_t *stream_ids, softmax_draw *draws);
/* inout[r] = the better of inout[r] and in[r] (higher score, then lower
 * column). Associative and commutative, exact. inout == in is allowed;
 * a partial overlap is SOFTMAX_E_OVERLAP (as is any overlap for
 * softmax_top_p_bins_merge, where in == inout would double the mass). */
SOFTMAX_API int softmax_draw_merge(softmax_draw *inout, const softmax_draw *in, size_t rows);
/* The tokens: indices[r] (global columns). draws / search may be NULL when
 * softmax_sample_rounds() did not ask for them. */
SOFTMAX_API int softmax_sample_finish(const softmax_sampler_params *params, const void *merged, size_t rows,
                                      const softmax_top_p_search *search, const softmax_draw *draws, uint64_t step,
                                      const uint64_t *stream_ids, int64_t *indices);

#ifdef __cplusplus
}
#endif

#endif /* SOFTMAX_H */
