/*
 * sample_kernels.h -- the sampler's f32 row kernels on one SIMD path,
 * written against the kernels' vector vocabulary (src/kernels/vec_<isa>.h)
 * and their exact exponential (src/kernels/exp/exact.h). Each translation
 * unit sample_kernels_<isa>.c defines SAMPLE_KERNELS_NAME (the one exported
 * symbol, the table at the end) and includes the vocabulary, then this
 * file; every function is static and keeps its plain name. The portable
 * path's kernels are sample_kernels_portable.c.
 *
 * Every weight is w = exp(d), d = (x - max) * inv_temperature rounded to
 * f32 at each step (the library builds with -ffp-contract=off), through
 * weight_of(): the exact exponential evaluated at d with offset 0, lane by
 * lane the same operations whichever function and lane computes it, so the
 * weights a draw recomputes equal those the sum pass added.
 */
#ifndef SAMPLE_KERNELS_NAME
#error "sample_kernels_<isa>.c defines SAMPLE_KERNELS_NAME and includes the vocabulary first"
#endif

#include <math.h>
#include <stdbool.h>

#include "sample_internal.h"

// clang-format off
#include "kernels/type_f32.h"   /* T = float, V = vf32, P(op) = f32_op, ... */
#include "kernels/thresholds.h"
#include "kernels/wide.h"       /* the exponential's constants in double */
#include "kernels/exp/exact.h"  /* exp_args, exp_eval */
// clang-format on

_Static_assert(SAMPLE_BLOCK % F32_LANES == 0, "a block is a whole number of vectors");
_Static_assert(F32_LANES <= SAMPLE_MAX_LANES, "the gathers' spare slots hold one vector");
_Static_assert(SAMPLE_ARGMAX_BLOCK % (4 * F32_LANES) == 0, "an argmax block is a whole number of vector quads");

/* The exponential's constants: c = log2(e) as c_hi + c_lo, offset 0 (the
 * weights are exp(d) itself, 1 at the maximum), and d clamped to
 * SAMPLE_WEIGHT_FLOOR so that no lane leaves the normal range. */
static exp_args weight_args(void)
{
    float c_hi, c_lo;
    wide_split(wide_scale_log2e(1.0), &c_hi, &c_lo);
    exp_args args = {f32_set1(SAMPLE_WEIGHT_FLOOR), f32_set1(c_hi), f32_set1(c_lo), f32_set1(0.0f)};
    return args;
}

/* The scaled log-weight of a vector of logits. */
static inline vf32 scaled_difference(vf32 x, vf32 max, vf32 inv_temperature)
{
    return f32_mul(f32_sub(x, max), inv_temperature);
}

/* exp(d), and 0 below SAMPLE_WEIGHT_FLOOR (where -inf logits land too).
 * d is clamped to SAMPLE_WEIGHT_FLOOR and is at most 0, so exp_eval's
 * value is a normal float and exp_eval_normal computes it more cheaply. */
static inline vf32 weight_at(vf32 d, const exp_args *args)
{
    return f32_zero_below(exp_eval_normal(d, args), d, args->x_floor);
}

static inline vf32 weight_of(vf32 x, vf32 max, vf32 inv_temperature, const exp_args *args)
{
    return weight_at(scaled_difference(x, max, inv_temperature), args);
}

/* The next vector of x at i < end: whole, or the tail padded with -inf
 * (weight 0), so that tails take the same arithmetic. */
static inline vf32 load_or_tail(const float *x, size_t i, size_t end)
{
    return end - i >= LANES ? f32_load(x + i) : f32_load_tail(x + i, end - i, -INFINITY);
}

/* The lanes of a vector added in double, in lane order. */
static inline double lanes_sum(vf32 v)
{
    float lanes[F32_LANES];
    f32_store(lanes, v);
    double sum = 0.0;
    for (size_t lane = 0; lane < LANES; lane++)
        sum += (double)lanes[lane];
    return sum;
}

#define ALL_LANES ((1u << F32_LANES) - 1u)

/* Lanes where a >= b, as bits (for a and b not NaN). */
static inline unsigned lanes_at_least(vf32 a, vf32 b)
{
    return ~f32_lanes_below(a, b) & ALL_LANES;
}

/* The largest of x[begin, end) (-inf if none), in four chains of vectors.
 * f32_max(v, best) keeps best where v is NaN (the vocabulary's max returns
 * its second operand then): NaNs are tracked apart, in the flag vector
 * *nan_seen, which f32_keep_nan turns NaN in the lanes where one was seen. */
static inline float span_max(const float *x, size_t begin, size_t end, vf32 *nan_seen)
{
    vf32 best[4] = {f32_set1(-INFINITY), f32_set1(-INFINITY), f32_set1(-INFINITY), f32_set1(-INFINITY)};
    size_t i = begin;
    for (; i + 4 * LANES <= end; i += 4 * LANES) {
        for (size_t a = 0; a < 4; a++) {
            vf32 v = f32_load(x + i + a * LANES);
            best[a] = f32_max(v, best[a]);
            *nan_seen = f32_keep_nan(*nan_seen, v);
        }
    }
    for (; i < end; i += LANES) {
        vf32 v = load_or_tail(x, i, end);
        best[0] = f32_max(v, best[0]);
        *nan_seen = f32_keep_nan(*nan_seen, v);
    }
    return f32_reduce_max(f32_max(f32_max(best[0], best[1]), f32_max(best[2], best[3])));
}

static void row_max(const float *x, size_t n, float *max, int *has_nan)
{
    vf32 nan_seen = f32_set1(0.0f);
    *max = span_max(x, 0, n, &nan_seen);
    *has_nan = f32_any_nan(nan_seen);
}

/* value is the row's maximum: a lane equals it where it is not below. */
static size_t find_first(const float *x, size_t n, float value)
{
    const vf32 target = f32_set1(value);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        if (lanes_at_least(f32_load(x + i), target) != 0)
            break;
    }
    for (; i < n; i++) {
        if (x[i] == value)
            return i;
    }
    return n;
}

static double block_sums(const float *x, size_t n, float max, float inv_temperature, float floor,
                         double *kept_block_sums)
{
    const exp_args args = weight_args();
    const vf32 vmax = f32_set1(max), vscale = f32_set1(inv_temperature), vfloor = f32_set1(floor);
    double total = 0.0;
    for (size_t begin = 0, block = 0; begin < n; begin += SAMPLE_BLOCK, block++) {
        size_t end = n - begin < SAMPLE_BLOCK ? n : begin + SAMPLE_BLOCK;
        vf32 all[2] = {f32_set1(0.0f), f32_set1(0.0f)}, kept[2] = {f32_set1(0.0f), f32_set1(0.0f)};
        size_t i = begin;
        if (floor > 0.0f) {
            for (; i + 2 * LANES <= end; i += 2 * LANES) {
                for (size_t a = 0; a < 2; a++) {
                    vf32 w = weight_of(f32_load(x + i + a * LANES), vmax, vscale, &args);
                    all[a] = f32_add(all[a], w);
                    kept[a] = f32_add(kept[a], f32_zero_below(w, w, vfloor));
                }
            }
        } else {
            /* Temperature only: every weight is kept; one sum, four chains. */
            vf32 more[2] = {f32_set1(0.0f), f32_set1(0.0f)};
            for (; i + 4 * LANES <= end; i += 4 * LANES) {
                all[0] = f32_add(all[0], weight_of(f32_load(x + i), vmax, vscale, &args));
                all[1] = f32_add(all[1], weight_of(f32_load(x + i + LANES), vmax, vscale, &args));
                more[0] = f32_add(more[0], weight_of(f32_load(x + i + 2 * LANES), vmax, vscale, &args));
                more[1] = f32_add(more[1], weight_of(f32_load(x + i + 3 * LANES), vmax, vscale, &args));
            }
            all[0] = f32_add(all[0], more[0]);
            all[1] = f32_add(all[1], more[1]);
        }
        for (; i < end; i += LANES) {
            vf32 w = weight_of(load_or_tail(x, i, end), vmax, vscale, &args);
            all[0] = f32_add(all[0], w);
            kept[0] = f32_add(kept[0], f32_zero_below(w, w, vfloor));
        }
        double all_sum = lanes_sum(f32_add(all[0], all[1]));
        total += all_sum;
        kept_block_sums[block] = floor > 0.0f ? lanes_sum(f32_add(kept[0], kept[1])) : all_sum;
    }
    return total;
}

static double level_sums(const float *x, size_t n, float max, float inv_temperature, double *block_level_sums,
                         double *level_totals)
{
    const exp_args args = weight_args();
    const vf32 vmax = f32_set1(max), vscale = f32_set1(inv_temperature);
    vf32 levels[SAMPLE_LEVELS];
    for (size_t j = 0; j < SAMPLE_LEVELS; j++) {
        levels[j] = f32_set1(softmax_sample_levels[j]);
        level_totals[j] = 0.0;
    }
    double total = 0.0;
    for (size_t begin = 0, block = 0; begin < n; begin += SAMPLE_BLOCK, block++) {
        size_t end = n - begin < SAMPLE_BLOCK ? n : begin + SAMPLE_BLOCK;
        vf32 all = f32_set1(0.0f), above[SAMPLE_LEVELS];
        for (size_t j = 0; j < SAMPLE_LEVELS; j++)
            above[j] = f32_set1(0.0f);
        for (size_t i = begin; i < end; i += LANES) {
            vf32 d = scaled_difference(load_or_tail(x, i, end), vmax, vscale);
            vf32 w = weight_at(d, &args);
            all = f32_add(all, w);
            for (size_t j = 0; j < SAMPLE_LEVELS; j++)
                above[j] = f32_add(above[j], f32_zero_below(w, d, levels[j]));
        }
        total += lanes_sum(all);
        for (size_t j = 0; j < SAMPLE_LEVELS; j++) {
            double sum = lanes_sum(above[j]);
            block_level_sums[block * SAMPLE_LEVELS + j] = sum;
            level_totals[j] += sum;
        }
    }
    return total;
}

static void weights(const float *x, size_t n, float max, float inv_temperature, float floor, float *w)
{
    const exp_args args = weight_args();
    const vf32 vmax = f32_set1(max), vscale = f32_set1(inv_temperature), vfloor = f32_set1(floor);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf32 v = weight_of(f32_load(x + i), vmax, vscale, &args);
        f32_store(w + i, f32_zero_below(v, v, vfloor));
    }
    if (i < n) {
        vf32 v = weight_of(f32_load_tail(x + i, n - i, -INFINITY), vmax, vscale, &args);
        f32_store_tail(w + i, f32_zero_below(v, v, vfloor), n - i);
    }
}

static size_t gather_at_least(const float *x, size_t n, float threshold, size_t base, float *values, uint32_t *indices)
{
    const vf32 vthreshold = f32_set1(threshold);
    size_t count = 0, i = 0;
    for (; i + LANES <= n; i += LANES) {
        unsigned hits = lanes_at_least(f32_load(x + i), vthreshold);
        if (hits == 0)
            continue;
        for (size_t lane = 0; lane < LANES; lane++) { /* branch-free, as in gather_band */
            values[count] = x[i + lane];
            indices[count] = (uint32_t)(base + i + lane);
            count += (hits >> lane) & 1u;
        }
    }
    return gather_at_least_scalar(x, i, n, threshold, base, values, indices, count);
}

static size_t gather_band(const float *x, size_t n, float max, float inv_temperature, float low, float high,
                          float *values, uint32_t *indices)
{
    const vf32 vmax = f32_set1(max), vscale = f32_set1(inv_temperature), vlow = f32_set1(low), vhigh = f32_set1(high);
    size_t count = 0;
    for (size_t i = 0; i < n; i += LANES) {
        vf32 d = scaled_difference(load_or_tail(x, i, n), vmax, vscale);
        unsigned in_band = lanes_at_least(d, vlow) & f32_lanes_below(d, vhigh);
        if (in_band == 0)
            continue;
        /* Branch-free append: when many lanes hit, a branch per lane
         * mispredicts about half the time. The buffers have LANES spare
         * slots. The tail's padding lanes are not appended. */
        size_t lanes = n - i < LANES ? n - i : LANES;
        for (size_t lane = 0; lane < lanes; lane++) {
            values[count] = x[i + lane];
            indices[count] = (uint32_t)(i + lane);
            count += (in_band >> lane) & 1u;
        }
    }
    return count;
}

static void group_maxima(const float *x, size_t n, size_t group, float *maxima)
{
    for (size_t begin = 0, g = 0; begin < n; begin += group, g++) {
        size_t end = n - begin < group ? n : begin + group;
        vf32 best = f32_set1(-INFINITY);
        for (size_t i = begin; i < end; i += LANES)
            best = f32_max(load_or_tail(x, i, end), best);
        maxima[g] = f32_reduce_max(best);
    }
}

/* The first largest element in one pass: the maximum of each block of
 * SAMPLE_ARGMAX_BLOCK elements, the block that first holds a strictly
 * larger one remembered, then the first element equal to the maximum in
 * that block (a short rescan of data still in L1). */
static size_t row_argmax(const float *x, size_t n, float *max, int *has_nan)
{
    vf32 nan_seen = f32_set1(0.0f);
    float result = -INFINITY;
    size_t best_block = 0;
    for (size_t begin = 0; begin < n; begin += SAMPLE_ARGMAX_BLOCK) {
        size_t end = n - begin < SAMPLE_ARGMAX_BLOCK ? n : begin + SAMPLE_ARGMAX_BLOCK;
        float block_max = span_max(x, begin, end, &nan_seen);
        if (block_max > result) {
            result = block_max;
            best_block = begin;
        }
    }
    *max = result;
    *has_nan = f32_any_nan(nan_seen);
    if (result == -INFINITY) /* every element -inf (or none): the first */
        return 0;
    size_t end = n - best_block < SAMPLE_ARGMAX_BLOCK ? n : best_block + SAMPLE_ARGMAX_BLOCK;
    return best_block + find_first(x + best_block, end - best_block, result);
}

const sample_kernels SAMPLE_KERNELS_NAME = {
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
