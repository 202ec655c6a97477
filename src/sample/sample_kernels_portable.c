/*
 * sample_kernels_portable.c -- the sampler's row kernels on the portable
 * path, in plain C: the weights through the portable path's exponential
 * (dd_exp, src/ref/double_double.h: IEEE double operations only, so the
 * same weights on every platform), summed in double. The SIMD paths'
 * kernels are sample_kernels.h.
 */
#include <math.h>

#include "ref/double_double.h"
#include "sample_internal.h"

/* The scaled log-weight, rounded to float at each step as the SIMD lanes
 * are: where FLT_EVAL_METHOD is not 0 (s390x, x87 i386) an unnamed float
 * expression keeps a wider precision, and only an assignment rounds it. */
static inline float scaled_difference(float x, float max, float inv_temperature)
{
    float difference = x - max;
    float d = difference * inv_temperature;
    return d;
}

/* Weights are computed a chunk at a time: the scaled log-weights first,
 * then their exponentials in a loop the compiler vectorises
 * (dd_exp_branchless: dd_exp's bits without a branch; on x86-64 one clone
 * per ISA level, the same bits from each). */
enum { WEIGHT_CHUNK = 256 };

SOFTMAX_VECTOR_CLONES static void exp_chunk(const double *restrict t, double *restrict e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double low;
        dd_exp_branchless(t[i], 0.0, &e[i], &low);
    }
}

/* w[i] = exp(d[i]) rounded to float (dd_exp's high part: the value rounded
 * to double), 0 below SAMPLE_WEIGHT_FLOOR (and for d = -inf); d[i] is the
 * scaled log-weight of x[i]. n <= WEIGHT_CHUNK. */
static void weights_of_chunk(const float *x, size_t n, float max, float inv_temperature, float *d, float *w)
{
    double t[WEIGHT_CHUNK], e[WEIGHT_CHUNK];
    for (size_t i = 0; i < n; i++) {
        d[i] = scaled_difference(x[i], max, inv_temperature);
        t[i] = d[i] >= SAMPLE_WEIGHT_FLOOR ? d[i] : SAMPLE_WEIGHT_FLOOR;
    }
    exp_chunk(t, e, n);
    for (size_t i = 0; i < n; i++)
        w[i] = d[i] >= SAMPLE_WEIGHT_FLOOR ? (float)e[i] : 0.0f;
}

static void row_max(const float *x, size_t n, float *max, int *has_nan)
{
    float best = -INFINITY;
    int nan_seen = 0;
    for (size_t i = 0; i < n; i++) {
        best = x[i] > best ? x[i] : best;
        nan_seen |= x[i] != x[i];
    }
    *max = best;
    *has_nan = nan_seen;
}

static size_t find_first(const float *x, size_t n, float value)
{
    for (size_t i = 0; i < n; i++) {
        if (x[i] == value)
            return i;
    }
    return n;
}

static double block_sums(const float *x, size_t n, float max, float inv_temperature, float floor,
                         double *kept_block_sums)
{
    float d[WEIGHT_CHUNK], w[WEIGHT_CHUNK];
    double total = 0.0;
    for (size_t begin = 0, block = 0; begin < n; begin += SAMPLE_BLOCK, block++) {
        size_t end = n - begin < SAMPLE_BLOCK ? n : begin + SAMPLE_BLOCK;
        double all = 0.0, kept = 0.0;
        for (size_t i = begin; i < end; i += WEIGHT_CHUNK) {
            size_t count = end - i < WEIGHT_CHUNK ? end - i : WEIGHT_CHUNK;
            weights_of_chunk(x + i, count, max, inv_temperature, d, w);
            for (size_t j = 0; j < count; j++) {
                all += w[j];
                kept += w[j] >= floor ? w[j] : 0.0f;
            }
        }
        total += all;
        kept_block_sums[block] = kept;
    }
    return total;
}

static double level_sums(const float *x, size_t n, float max, float inv_temperature, double *block_level_sums,
                         double *level_totals)
{
    float d[WEIGHT_CHUNK], w[WEIGHT_CHUNK];
    double total = 0.0;
    for (size_t j = 0; j < SAMPLE_LEVELS; j++)
        level_totals[j] = 0.0;
    for (size_t begin = 0, block = 0; begin < n; begin += SAMPLE_BLOCK, block++) {
        size_t end = n - begin < SAMPLE_BLOCK ? n : begin + SAMPLE_BLOCK;
        double all = 0.0, above[SAMPLE_LEVELS] = {0};
        for (size_t i = begin; i < end; i += WEIGHT_CHUNK) {
            size_t count = end - i < WEIGHT_CHUNK ? end - i : WEIGHT_CHUNK;
            weights_of_chunk(x + i, count, max, inv_temperature, d, w);
            for (size_t k = 0; k < count; k++) {
                all += w[k];
                for (size_t j = 0; j < SAMPLE_LEVELS; j++)
                    above[j] += d[k] >= softmax_sample_levels[j] ? w[k] : 0.0f;
            }
        }
        total += all;
        for (size_t j = 0; j < SAMPLE_LEVELS; j++) {
            block_level_sums[block * SAMPLE_LEVELS + j] = above[j];
            level_totals[j] += above[j];
        }
    }
    return total;
}

static void weights(const float *x, size_t n, float max, float inv_temperature, float floor, float *w)
{
    float d[WEIGHT_CHUNK];
    for (size_t i = 0; i < n; i += WEIGHT_CHUNK) {
        size_t count = n - i < WEIGHT_CHUNK ? n - i : WEIGHT_CHUNK;
        weights_of_chunk(x + i, count, max, inv_temperature, d, w + i);
        for (size_t j = 0; j < count; j++)
            w[i + j] = w[i + j] >= floor ? w[i + j] : 0.0f;
    }
}

static size_t gather_at_least(const float *x, size_t n, float threshold, size_t base, float *values, uint32_t *indices)
{
    return gather_at_least_scalar(x, 0, n, threshold, base, values, indices, 0);
}

static size_t gather_band(const float *x, size_t n, float max, float inv_temperature, float low, float high,
                          float *values, uint32_t *indices)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        float d = scaled_difference(x[i], max, inv_temperature);
        if (d >= low && d < high) {
            values[count] = x[i];
            indices[count++] = (uint32_t)i;
        }
    }
    return count;
}

static void group_maxima(const float *x, size_t n, size_t group, float *maxima)
{
    for (size_t begin = 0, g = 0; begin < n; begin += group, g++) {
        size_t end = n - begin < group ? n : begin + group;
        float best = -INFINITY;
        for (size_t i = begin; i < end; i++)
            best = x[i] > best ? x[i] : best;
        maxima[g] = best;
    }
}

static size_t row_argmax(const float *x, size_t n, float *max, int *has_nan)
{
    float best = -INFINITY;
    size_t index = 0;
    int nan_seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] > best) {
            best = x[i];
            index = i;
        }
        nan_seen |= x[i] != x[i];
    }
    *max = best;
    *has_nan = nan_seen;
    return index;
}

const sample_kernels softmax_sample_kernels_portable = {
    .row_max = row_max,
    .find_first = find_first,
    .block_sums = block_sums,
    .level_sums = level_sums,
    .weights = weights,
    .gather_at_least = gather_at_least,
    .gather_band = gather_band,
    .group_maxima = group_maxima,
    .row_argmax = row_argmax,
};
