/*
 * reference.h -- the test oracle: the softmax family evaluated with MPFR at
 * REF_PREC bits from the very inputs (and the very scale) the library was
 * given, with the special-value rules of the contract in softmax.h, plus the
 * error measures the tests use to judge the library against it.
 *
 * Nothing here calls the library: the reference never depends on the code
 * under test.
 */
#ifndef SOFTMAX_TESTS_REFERENCE_H
#define SOFTMAX_TESTS_REFERENCE_H

#include <stddef.h>
#include <stdio.h>

#include <mpfr.h>

#include "softmax.h"

/* Working precision of the reference, in bits. The errors the tests measure
 * are 2^-24 .. 2^-53 relative; 192 bits leaves over 130 bits of margin for
 * the rounding of sums over 2^22 terms and of scale * (x - max). */
#define REF_PREC 192

/* n MPFR numbers of REF_PREC bits in a single allocation. */
typedef struct ref_vec {
    size_t n;
    __mpfr_struct *v;
    void *limbs;
} ref_vec;

void ref_vec_init(ref_vec *r, size_t n);
void ref_vec_free(ref_vec *r);
static inline mpfr_ptr ref_at(const ref_vec *r, size_t i)
{
    return &r->v[i];
}

/* A read-only view of n elements of a float or double array, `stride`
 * elements apart (a row: stride 1; a line along a non-last axis: stride =
 * inner). */
typedef struct ref_line {
    const void *base;
    size_t n;
    size_t stride;
    softmax_dtype dtype;
} ref_line;

ref_line ref_line_make(softmax_dtype dt, const void *base, size_t n, size_t stride);
double ref_line_get(ref_line l, size_t i);

/* ---------------------------------------------------------------------------
 * Reference operations. `scale` must be the value the library received (for
 * the f32 entry points: the float value). out must hold l.n elements (n * n
 * for the Jacobians). The optional arrays `local` and `global` (n doubles,
 * may be NULL) receive, for the gradients, the magnitudes their rounding
 * errors scale with (see grad_tolerance).
 * ------------------------------------------------------------------------ */

/* softmax(scale * x) (log = 0) or log_softmax(scale * x) (log = 1). */
void ref_softmax(ref_vec *out, ref_line x, double scale, int log);
/* Both at once (one exp per element); either output may be NULL. */
void ref_softmax_both(ref_vec *out, ref_vec *logout, ref_line x, double scale);
/* dx = scale * y * (dy - <dy, y>) */
void ref_softmax_backward(ref_vec *out, ref_line y, ref_line dy, double scale, double *local, double *global);
/* dx = scale * (dy - exp(logy) * sum(dy)) */
void ref_log_softmax_backward(ref_vec *out, ref_line logy, ref_line dy, double scale, double *local, double *global);
/* dlogy = scale * (v - <exp(logy), v>) */
void ref_log_softmax_jvp(ref_vec *out, ref_line logy, ref_line v, double scale, double *local, double *global);
/* Any of the three above by op (SOFTMAX_OP_*_BACKWARD / _JVP). */
void ref_grad(softmax_op op, ref_vec *out, ref_line a, ref_line b, double scale, double *local, double *global);
/* scale * (delta_ij y_i - y_i y_j), row-major n x n; mag[i*n+j] (optional)
 * gets |scale| * (delta_ij y_i + y_i y_j). */
void ref_softmax_jacobian(ref_vec *out, ref_line y, double scale, double *mag);
/* scale * (delta_ij - exp(logy_j)); mag[i*n+j] gets |scale| * (delta_ij + exp(logy_j)). */
void ref_log_softmax_jacobian(ref_vec *out, ref_line logy, double scale, double *mag);

/* Stores ref[0..n) rounded to nearest in the data type into buf[0..n):
 * exact inputs for gradient tests (a softmax output not made by the library). */
void ref_store(const ref_vec *ref, size_t n, softmax_dtype dt, void *buf);

/* ---------------------------------------------------------------------------
 * Error measures
 * ------------------------------------------------------------------------ */

/* ulp of |v| in a binary format with p significand bits: 2^(e - p + 1) for
 * 2^e <= |v| < 2^(e + 1) (v normal, non-zero). */
double ulp_p(double v, int p);

/* Largest errors seen by the checks below, and their counts. */
typedef struct err_stats {
    double max_err;   /* in ulp, or in units of the tolerance for gradients */
    size_t checked;   /* outputs measured */
    size_t subnormal; /* softmax outputs whose reference is below the normal range */
    size_t failures;  /* outputs outside the bound */
    size_t max_len;   /* longest line checked */
    double worst_y, worst_ref;
} err_stats;

void err_stats_init(err_stats *st);
/* 1: the checks below print nothing (to try several interpretations). */
void ref_set_quiet(int quiet);
void err_stats_merge(err_stats *into, const err_stats *from);

/* Softmax outputs y against ref: |y - ref| / ulp_p(ref) <= bound for
 * references in the normal range; below it, 0 <= y <= min_normal + bound
 * ulps. NaN references demand NaN. Returns the number of failures (the
 * first few are printed, prefixed with `what`). */
size_t check_softmax_line(const ref_vec *ref, ref_line y, double bound, err_stats *st, const char *what);
/* Log-softmax: |y - ref| / ulp_p(max(|ref|, 1)) <= bound; -inf and NaN
 * references demand the same value; references beyond the format's range
 * accept the infinity or the largest finite value of their sign. */
size_t check_log_softmax_line(const ref_vec *ref, ref_line y, double bound, err_stats *st, const char *what);
/* |y_i - ref_i| <= tol_i (NaN references demand NaN); the error is recorded
 * in units of tol. */
size_t check_tolerance_line(const ref_vec *ref, const double *tol, ref_line y, err_stats *st, const char *what);

/* Gradient tolerance: with u = 2^-p,
 *   tol_i = u * (GRAD_C_LOCAL * local_i + (GRAD_C_GLOBAL + log2(n)) * global_i)
 *           + GRAD_C_FLOOR * true_min * max(1, |scale|)
 * local_i is what the last few roundings of element i scale with (e.g.
 * |scale * y_i * (dy_i - d)|), global_i what the rounding of the row's sum
 * scales with (e.g. |scale| * y_i * sum |dy_j y_j|); log2(n) allows a
 * pairwise or blocked sum. The header pins no gradient accuracy; these are
 * the bounds of a careful evaluation of the formulas, loose enough for any
 * reasonable summation order and tight enough to catch a wrong term. */
#define GRAD_C_LOCAL 6.0
#define GRAD_C_GLOBAL 6.0
#define GRAD_C_FLOOR 8.0
void grad_tolerance(double *tol, const double *local, const double *global, size_t n, softmax_dtype dt, double scale);

/* The contract's accuracy bound in ulp for the code path under test:
 * softmax within 2 ulp (f32) / 4 ulp (f64) on the portable path and 3 / 4
 * on the SIMD paths; log-softmax the same number of ulp of max(|y|, 1).
 * isa_prologue() (testutil.h) selects the path's bounds. */
double contract_ulp_bound(softmax_dtype dt);
void ref_use_simd_bounds(int simd);

/* Checks rows x cols contiguous outputs y of softmax (log = 0) or
 * log-softmax (log = 1) of x against the reference at the contract bound.
 * `scale` is the value the library received. Returns the failure count. */
size_t check_forward_rows(softmax_dtype dt, int log, const void *x, const void *y, size_t rows, size_t cols,
                          double scale, err_stats *st, const char *what);

/* Exact sum of a line, rounded once (used for "outputs sum to 1"). */
double line_sum(ref_line l);

#endif /* SOFTMAX_TESTS_REFERENCE_H */
