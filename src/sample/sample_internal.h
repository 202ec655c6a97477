/*
 * sample_internal.h -- what the sampler's translation units share: the
 * per-path row kernels (sample_kernels.h compiled once per SIMD path,
 * sample_kernels_portable.c) and the selection helpers. Nothing here is
 * public.
 */
#ifndef SOFTMAX_SAMPLE_INTERNAL_H
#define SOFTMAX_SAMPLE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../internal.h"

/* Elements per block of the temperature-only draw: the exp-sum pass keeps
 * one partial sum per block, and the draw recomputes the weights of the
 * single block that holds the drawn index. */
#define SAMPLE_BLOCK 1024

/* Levels of the scaled log-weight d = (x - max) * (1 / T) at which the top-p
 * pass also sums the mass with d >= level, to find a small candidate set. */
#define SAMPLE_LEVELS 8

/* The widest vector of any path, in floats. */
#define SAMPLE_MAX_LANES 16

/* Weights of a scaled log-weight d below this are 0: under 2^-125 of the
 * largest weight (exp(0) = 1), far below what an f32 sum can hold, while
 * exp(SAMPLE_WEIGHT_FLOOR) is still a normal float (no lane of the
 * exponential leaves the normal range, so no flush-to-zero is needed). */
#define SAMPLE_WEIGHT_FLOOR (-87.0f)

/* Elements per block of the greedy pass: it keeps the block holding the
 * first maximum and looks for the maximum's index there at the end. */
#define SAMPLE_ARGMAX_BLOCK 256
extern const float softmax_sample_levels[SAMPLE_LEVELS];

/*
 * The f32 row kernels of one code path. All weights are
 *     w_i = exp(d_i),  d_i = (x_i - max) * inv_temperature   (d_i in f32
 *                      arithmetic, no FMA; w_i = 0 for d_i below
 *                      SAMPLE_WEIGHT_FLOOR)
 * through one exponential shared by every function below (on the SIMD
 * paths the kernels' exact exponential, src/kernels/exp/exact.h, on the
 * portable path the portable one, dd_exp of src/ref/double_double.h), so
 * that a weight summed in one pass and recomputed in another is the same
 * number.
 * Preconditions: no NaN in x, max finite and >= every x_i,
 * 0 < inv_temperature < inf.
 */
typedef struct sample_kernels {
    /* Largest element (-inf for n == 0) and whether any element is NaN. */
    void (*row_max)(const float *x, size_t n, float *max, int *has_nan);
    /* Index of the first element equal to value (n if none), for a value
     * no element exceeds (the row's maximum). */
    size_t (*find_first)(const float *x, size_t n, float value);
    /* Sums the weights per block of SAMPLE_BLOCK elements into
     * kept_block_sums[ceil(n / SAMPLE_BLOCK)], counting only weights >= floor;
     * returns the sum of all weights (kept or not). */
    double (*block_sums)(const float *x, size_t n, float max, float inv_temperature, float floor,
                         double *kept_block_sums);
    /* Returns the sum of all weights; level_totals[j] = the sum of the
     * weights with d >= softmax_sample_levels[j], and block_level_sums[b *
     * SAMPLE_LEVELS + j] the same within block b. */
    double (*level_sums)(const float *x, size_t n, float max, float inv_temperature, double *block_level_sums,
                         double *level_totals);
    /* w[i] = the weight of x[i] (0 if below floor). */
    void (*weights)(const float *x, size_t n, float max, float inv_temperature, float floor, float *w);
    /* Appends (x[i], base + i) for every x[i] >= threshold, in index order;
     * returns the number appended. */
    size_t (*gather_at_least)(const float *x, size_t n, float threshold, size_t base, float *values, uint32_t *indices);
    /* Appends (x[i], i) for every i with low <= d_i < high, in index order,
     * where d_i = (x[i] - max) * inv_temperature as the weights compute it;
     * returns the number appended. Both gathers may write SAMPLE_MAX_LANES
     * slots past the last one appended. */
    size_t (*gather_band)(const float *x, size_t n, float max, float inv_temperature, float low, float high,
                          float *values, uint32_t *indices);
    /* maxima[g] = the largest of x[g * group .. (g + 1) * group) (the last
     * group may be shorter; group a multiple of SAMPLE_MAX_LANES). */
    void (*group_maxima)(const float *x, size_t n, size_t group, float *maxima);
    /* The index of the first largest element (0 if all are -inf), its value
     * and whether any element is NaN, in one pass; n < 2^31. */
    size_t (*row_argmax)(const float *x, size_t n, float *max, int *has_nan);
} sample_kernels;

extern const sample_kernels softmax_sample_kernels_portable;
#if defined(SOFTMAX_HAVE_X86_KERNELS)
extern const sample_kernels softmax_sample_kernels_avx2;
extern const sample_kernels softmax_sample_kernels_avx512;
#endif
#if defined(SOFTMAX_HAVE_NEON_KERNELS)
extern const sample_kernels softmax_sample_kernels_neon;
#endif

/* gather_at_least one element at a time over x[begin, n), appending after
 * the `count` pairs already in values and indices; returns the new count.
 * The portable path's whole loop and the SIMD paths' tail. */
static inline size_t gather_at_least_scalar(const float *x, size_t begin, size_t n, float threshold, size_t base,
                                            float *values, uint32_t *indices, size_t count)
{
    for (size_t i = begin; i < n; i++) {
        if (x[i] >= threshold) {
            values[count] = x[i];
            indices[count++] = (uint32_t)(base + i);
        }
    }
    return count;
}

/* The kernels of the active code path, or NULL with the error recorded
 * (SOFTMAX_ISA naming a path this CPU lacks). */
const sample_kernels *softmax_sample_dispatch(const char *fn, int *status);
/* The sampler's kernels of an already dispatched path (no second dispatch). */
const sample_kernels *softmax_sample_kernels_of(const softmax_path *path);

/* True if the byte ranges [a, a + a_bytes) and [b, b + b_bytes) share a
 * byte (an empty range shares none). The sampler and the row statistics
 * write their outputs from many threads while others still read the
 * inputs, so no output may share memory with an input or another output. */
static inline int softmax_bytes_overlap(const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
    if (a == NULL || b == NULL || a_bytes == 0 || b_bytes == 0)
        return 0;
    uintptr_t a_begin = (uintptr_t)a, b_begin = (uintptr_t)b;
    return a_begin < b_begin + b_bytes && b_begin < a_begin + a_bytes;
}

/* The k-th largest (k >= 1, k <= n) of values[0..n), which it reorders. */
float softmax_kth_largest(float *values, size_t n, size_t k);

#endif /* SOFTMAX_SAMPLE_INTERNAL_H */
