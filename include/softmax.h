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
 * max(|y|, 1). Log-softmax outputs are never above 0, and exactly 0 where
 * the probability is exactly 1: a row of one element, or one whose other
 * elements are -inf or excluded (`where`, causal). Measured figures are in
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
 * constant), also where an infinite dy or v would make 0 * inf.
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

#if defined(SOFTMAX_STATIC_DEFINE)
#define SOFTMAX_API
#elif defined(_WIN32)
#if defined(SOFTMAX_BUILDING_LIBRARY)
#define SOFTMAX_API __declspec(dllexport)
#else
#define SOFTMAX_API __declspec(dllimport)
#endif
#else
#define SOFTMAX_API __attribute__((visibility("default")))
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
    SOFTMAX_E_NULL_POINTER = -1,     /* a required pointer is NULL */
    SOFTMAX_E_SIZE_OVERFLOW = -2,    /* element or byte count overflows size_t */
    SOFTMAX_E_INVALID_SCALE = -3,    /* scale is NaN */
    SOFTMAX_E_INVALID_AXIS = -4,     /* axis outside [-ndim, ndim) */
    SOFTMAX_E_OVERLAP = -5,          /* output partially overlaps an input */
    SOFTMAX_E_INVALID_DTYPE = -6,    /* unknown or unsupported data type */
    SOFTMAX_E_INVALID_ARGUMENT = -7, /* other bad argument (op, ndim, ...) */
    SOFTMAX_E_INVALID_THREADS = -8,  /* thread count < 0 */
    SOFTMAX_E_OUT_OF_MEMORY = -9,    /* an allocation failed */
    SOFTMAX_E_UNSUPPORTED = -10,     /* a field reserved for later versions is set */
    SOFTMAX_E_ISA_UNAVAILABLE = -11, /* SOFTMAX_ISA names a path this CPU lacks, or no path */
    SOFTMAX_E_INVALID_STRIDE = -12,  /* output strides map two elements to one address */
    SOFTMAX_E_INVALID_MASK = -13,    /* mask type, strides or masking parameters invalid */
    SOFTMAX_E_INVALID_PARAMETER = -14, /* a sampling parameter is out of range or NaN */
    SOFTMAX_E_NO_FINITE_LOGIT = -15  /* a row to sample from has no finite logit */
} softmax_status;

/* A short, static, human-readable description of a status code (never NULL;
 * "unknown status" for values this version does not define). */
SOFTMAX_API const char *softmax_strerror(int status);

/* Details of the last error returned on the calling thread, for example
 * "softmax_f32: y overlaps x without being equal to it". Empty if the
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
 * call in progress keeps the count it started with. */
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
 *    the slopes of ggml's soft_max_ext. The bias is slope * j; by translation
 *    invariance this equals the usual -slope * (i - j) of ALiBi. head_axis
 *    counts like axis (negative from the end; softmax_desc_init sets -3 for
 *    [batch, heads, q, k]) and must differ from axis.
 * A line with no kept element (fully masked) gives zeros (log-softmax -inf,
 * gradients zeros), never NaN. The additive mask is computed in f64 so that
 * the logit z is not rounded before the exponential: the accuracy contract
 * holds for z as the exact value of the expression above.
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
 * same bits for any thread count. What changes: outputs are within 4 ulp
 * instead of 3 (log-softmax: 4 ulp of max(|y|, 1)), measured by
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
 * failures" below. A temperature so small that 1/T overflows f32 gives the
 * limit too: uniform among the tied maxima.
 *
 * Arithmetic: the weights exp((x_i - max x) / T) are computed in f32 for
 * every data type (bf16 and f16 are widened exactly; for f64 the
 * differences x_i - max x are taken in f64 and rounded to f32, and top-k
 * compares those rounded values); sums are carried in f64. Different code
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

#ifdef __cplusplus
}
#endif

#endif /* SOFTMAX_H */
