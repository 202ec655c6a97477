/*
 * stats.c -- softmax_row_stats(): log-sum-exp, entropy and arg max of
 * softmax(scale * x) per row, through the library's softmax and
 * log-softmax kernels (so the same stability and accuracy), with the
 * contract's special values decided before any kernel runs.
 *
 * With p = softmax(z) and y = log_softmax(z) from the kernels:
 *     logsumexp = z_a - log(p_a)     (a = the arg max: p_a >= 1/n, so its
 *                                     relative error stays small in the log)
 *     entropy   = -sum_{p_i > 0} p_i y_i   (every term >= 0: no cancellation)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample_internal.h"

typedef struct row_stats {
    double logsumexp;
    double entropy;
    int64_t argmax;
} row_stats;

static double element(softmax_dtype dtype, const void *x, size_t i)
{
    return dtype == SOFTMAX_DTYPE_F32 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}

/* The first NaN (or n), and the lowest index maximising softmax(scale * x):
 * the first max (scale > 0), min (scale < 0), or element above -inf
 * (scale == 0); 0 when none stands out (a fully masked row). */
static size_t first_nan_and_argmax(const sample_kernels *kernels, softmax_dtype dtype, const void *x, size_t n,
                                   double scale, size_t *argmax)
{
    if (dtype == SOFTMAX_DTYPE_F32 && scale > 0.0) {
        float max;
        int has_nan;
        kernels->row_max(x, n, &max, &has_nan);
        if (!has_nan) {
            *argmax = kernels->find_first(x, n, max);
            return n;
        }
    }
    size_t best = 0, first_nan = n;
    for (size_t i = 0; i < n; i++) {
        double v = element(dtype, x, i), b = element(dtype, x, best);
        if (isnan(v)) {
            first_nan = i;
            break;
        }
        if (scale > 0.0 ? v > b : scale < 0.0 ? v < b : (b == -INFINITY && v > b))
            best = i;
    }
    *argmax = best;
    return first_nan;
}

static size_t count_equal(softmax_dtype dtype, const void *x, size_t n, double value)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += element(dtype, x, i) == value;
    return count;
}

static size_t count_above_minus_infinity(softmax_dtype dtype, const void *x, size_t n)
{
    return n - count_equal(dtype, x, n, -INFINITY);
}

static row_stats stats_row(const softmax_kernels *kernels, const sample_kernels *row_kernels, softmax_dtype dtype,
                           const void *x, size_t n, double scale, int want_lse, int want_entropy, void *scratch)
{
    row_stats s = {-INFINITY, 0.0, n == 0 ? -1 : 0};
    if (n == 0)
        return s;
    size_t a;
    size_t first_nan = first_nan_and_argmax(row_kernels, dtype, x, n, scale, &a);
    if (first_nan < n)
        return (row_stats){NAN, NAN, (int64_t)first_nan};
    double extreme = element(dtype, x, a);
    if (scale == 0.0) {
        if (extreme == -INFINITY)
            return s;
        double log_k = log((double)count_above_minus_infinity(dtype, x, n));
        return (row_stats){log_k, log_k, (int64_t)a};
    }
    double z_extreme = scale * extreme;
    /* Every z is -inf: a fully masked row. Not so for an infinite scale and
     * a finite extreme (all x < 0 with scale +inf): that is the limit,
     * one-hot at the ties, as softmax itself gives. */
    if (z_extreme == -INFINITY && isinf(extreme))
        return s;
    s.argmax = (int64_t)a;
    if (isinf(scale) || isinf(extreme)) {
        /* The limit: uniform over the ties at the extreme element. */
        double log_ties = log((double)count_equal(dtype, x, n, extreme));
        s.entropy = log_ties;
        s.logsumexp = extreme == 0.0 ? log_ties : z_extreme;
        return s;
    }
    if (!want_lse && !want_entropy)
        return s;
    size_t size = softmax_dtype_size(dtype);
    void *probabilities = scratch, *log_probabilities = (char *)scratch + n * size;
    kernels->rows(SOFTMAX_OP_SOFTMAX, x, NULL, probabilities, 1, n, scale);
    /* p_a >= 1/n is the largest probability: its relative error of a few
     * ulp becomes an absolute error of a few ulp(1) in the logarithm. */
    s.logsumexp = z_extreme - log(element(dtype, probabilities, a));
    if (want_entropy) {
        kernels->rows(SOFTMAX_OP_LOG_SOFTMAX, x, NULL, log_probabilities, 1, n, scale);
        /* Neumaier's compensated sum: a plain f64 sum of 10^5 terms would
         * lose more than the kernels' few ulp. */
        double sum = 0.0, compensation = 0.0;
        for (size_t i = 0; i < n; i++) {
            double p = element(dtype, probabilities, i);
            if (!(p > 0.0))
                continue;
            double term = -p * element(dtype, log_probabilities, i), next = sum + term;
            compensation += fabs(sum) >= fabs(term) ? (sum - next) + term : (term - next) + sum;
            sum = next;
        }
        s.entropy = sum + compensation;
    }
    return s;
}

/* Rows run in parallel, each writing its outputs while other rows are still
 * read: no output may share bytes with x or with another output. */
static int check_stats_overlaps(const void *x, size_t x_bytes, const double *logsumexp, const double *entropy,
                                const int64_t *argmax, size_t rows)
{
    const char *fn = "softmax_row_stats";
    const size_t row_bytes = rows * sizeof(double);
    const struct {
        const char *name;
        const void *data;
    } outputs[] = {{"logsumexp", logsumexp}, {"entropy", entropy}, {"argmax", argmax}};
    for (size_t o = 0; o < sizeof outputs / sizeof outputs[0]; o++) {
        RETURN_ERROR_IF(softmax_bytes_overlap(outputs[o].data, row_bytes, x, x_bytes), SOFTMAX_E_OVERLAP,
                        "%s: %s overlaps x", fn, outputs[o].name);
        for (size_t other = 0; other < o; other++) {
            RETURN_ERROR_IF(softmax_bytes_overlap(outputs[o].data, row_bytes, outputs[other].data, row_bytes),
                            SOFTMAX_E_OVERLAP, "%s: %s overlaps %s", fn, outputs[o].name, outputs[other].name);
        }
    }
    return SOFTMAX_OK;
}

int softmax_row_stats(softmax_dtype dtype, const void *x, size_t rows, size_t cols, double scale, double *logsumexp,
                      double *entropy, int64_t *argmax)
{
    softmax_clear_error();
    const char *fn = "softmax_row_stats";
    size_t element_size = softmax_dtype_size(dtype);
    RETURN_ERROR_IF(element_size == 0, SOFTMAX_E_INVALID_DTYPE, "%s: unknown dtype %d", fn, (int)dtype);
    RETURN_ERROR_IF(isnan(scale), SOFTMAX_E_INVALID_SCALE, "%s: scale is NaN", fn);
    softmax_dtype compute = dtype == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
    /* Even an empty call reports a forced code path that this CPU lacks, as
     * every other entry point does. */
    int status;
    const softmax_path *path = softmax_dispatch_path(fn, &status);
    if (path == NULL)
        return status;
    const softmax_kernels *kernels = compute == SOFTMAX_DTYPE_F64 ? path->f64 : path->f32;
    const sample_kernels *row_kernels = softmax_sample_kernels_of(path);
    if (rows == 0)
        return SOFTMAX_OK;
    size_t compute_size = softmax_dtype_size(compute);
    /* rows * cols elements of up to 8 bytes, 8-byte outputs per row, and a
     * scratch of 3 * cols elements per thread must all be representable. */
    RETURN_ERROR_IF((cols != 0 && rows > SIZE_MAX / cols / 8) || rows > SIZE_MAX / sizeof(double) ||
                        cols > (SIZE_MAX - 1) / 3 / compute_size,
                    SOFTMAX_E_SIZE_OVERFLOW, "%s: rows * cols overflows", fn);
    RETURN_ERROR_IF(x == NULL && cols > 0, SOFTMAX_E_NULL_POINTER, "%s: x is NULL", fn);
    status = check_stats_overlaps(x, rows * cols * element_size, logsumexp, entropy, argmax, rows);
    if (status != SOFTMAX_OK)
        return status;

    int threads = softmax_threads_for_job(rows * cols, rows);
    int out_of_memory = 0;
    /* Scratch of our own: the kernels use the thread's softmax_workspace. */
    size_t scratch_bytes = 3 * cols * compute_size + 1;
#pragma omp parallel num_threads(threads) reduction(| : out_of_memory)
    {
        char *scratch = malloc(scratch_bytes);
        out_of_memory = scratch == NULL;
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            if (scratch == NULL)
                continue;
            /* x may be NULL when cols == 0, and NULL + 0 is undefined in C. */
            const void *row = cols == 0 ? x : (const char *)x + r * cols * element_size;
            if (dtype == SOFTMAX_DTYPE_BF16 || dtype == SOFTMAX_DTYPE_F16) {
                float *widened = (float *)(scratch + 2 * cols * compute_size);
                const uint16_t *half = row;
                for (size_t i = 0; i < cols; i++)
                    widened[i] =
                        dtype == SOFTMAX_DTYPE_BF16 ? softmax_bf16_to_float(half[i]) : softmax_f16_to_float(half[i]);
                row = widened;
            }
            row_stats s =
                stats_row(kernels, row_kernels, compute, row, cols, scale, logsumexp != NULL, entropy != NULL, scratch);
            if (logsumexp != NULL)
                logsumexp[r] = s.logsumexp;
            if (entropy != NULL)
                entropy[r] = s.entropy;
            if (argmax != NULL)
                argmax[r] = s.argmax;
        }
        free(scratch);
    }
    RETURN_ERROR_IF(out_of_memory, SOFTMAX_E_OUT_OF_MEMORY, "%s: no scratch memory for a row of %zu", fn, cols);
    return SOFTMAX_OK;
}
