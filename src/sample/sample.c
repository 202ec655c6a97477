/*
 * sample.c -- softmax_sample(): one draw per row from softmax(x / T) after
 * top-k, top-p and min-p, without sorting the vocabulary.
 *
 * Paths of one row (f32 after widening; see softmax.h for the semantics):
 *   greedy (T == 0)       max pass, then the first index holding the max.
 *   temperature (+min-p)  max pass, one exp-sum pass keeping a sum per block
 *                         of SAMPLE_BLOCK weights, then the drawn block's
 *                         weights again: about two passes over the row.
 *   top-k                 candidates gathered above a rising threshold (the
 *                         k-th largest seen so far), cut to k by quickselect.
 *   top-p without top-k   the exp-sum pass also sums the mass above a few
 *                         levels of the log-weight; the highest level whose
 *                         mass below is under 1 - p bounds the kept set, and
 *                         only the candidates above it are examined.
 *   then, on candidates   top-p by weighted quickselect (the shortest prefix
 *                         by rank reaching p), min-p by threshold, and the
 *                         draw by one scan in index order.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "sample_internal.h"

const float softmax_sample_levels[SAMPLE_LEVELS] = {-1.0f, -2.0f, -3.0f, -4.5f, -6.0f, -8.0f, -11.0f, -16.0f};

typedef struct row_result {
    int64_t index;
    double probability;
    double logsumexp;
} row_result;

/* What every row of one call shares. */
typedef struct sample_call {
    const sample_kernels *kernels;
    const softmax_sampler_params *params;
    float inv_temperature; /* (float)(1 / T): the weights' scale */
    double inv_temperature_exact;
    int want_logsumexp;
} sample_call;

/* Per-thread scratch of one row of n elements. */
typedef struct row_scratch {
    float *widened; /* the row as f32 (non-f32 dtypes; rows divided by T first) */
    float *values;  /* candidate logits, index order */
    uint32_t *indices;
    float *weights;
    float *spare; /* quickselect copies */
    uint32_t *order;
    double *block_sums;
} row_scratch;

static size_t block_count(size_t n)
{
    return (n + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
}

static int scratch_for_row(row_scratch *s, size_t n)
{
    size_t sums = block_count(n) * (SAMPLE_LEVELS + 1) + 1;
    size_t bytes = (4 * sizeof(float) + 2 * sizeof(uint32_t)) * (n + SAMPLE_MAX_LANES) + sizeof(double) * sums;
    char *base = softmax_workspace(bytes);
    if (base == NULL)
        return 0;
    s->block_sums = (double *)base;
    char *p = base + sizeof(double) * sums;
    size_t slots = n + SAMPLE_MAX_LANES; /* the gathers write past their end */
    s->widened = (float *)p;
    s->values = s->widened + slots;
    s->weights = s->values + slots;
    s->spare = s->weights + slots;
    s->indices = (uint32_t *)(s->spare + slots);
    s->order = s->indices + slots;
    return 1;
}

static row_result failed_row(void)
{
    return (row_result){-1, NAN, NAN};
}

/* ---------------------------------------------------------------------------
 * Candidate sets: (value, index, weight) triples in index order.
 * ------------------------------------------------------------------------ */

typedef struct candidates {
    float *values;
    uint32_t *indices;
    float *weights;
    size_t count;
} candidates;

/* Keeps the k largest values, ties to the lowest index, in index order. */
static void keep_top_k(candidates *c, float *spare, size_t k)
{
    if (c->count <= k)
        return;
    memcpy(spare, c->values, c->count * sizeof(float));
    float kth = softmax_kth_largest(spare, c->count, k);
    size_t greater = 0;
    for (size_t i = 0; i < c->count; i++)
        greater += c->values[i] > kth;
    size_t ties_left = k - greater, kept = 0;
    for (size_t i = 0; i < c->count; i++) {
        int keep = c->values[i] > kth || (c->values[i] == kth && ties_left > 0);
        if (c->values[i] == kth && keep)
            ties_left--;
        if (keep) {
            c->values[kept] = c->values[i];
            c->indices[kept] = c->indices[i];
            if (c->weights != NULL)
                c->weights[kept] = c->weights[i];
            kept++;
        }
    }
    c->count = kept;
}

/* Gathers the k largest finite-or-+inf logits of x. The k-th largest of
 * any subset of x is a lower bound of the k-th largest of x; the maxima of
 * at least 4k groups give a tight one in one vector pass, so the gather
 * that follows keeps a few hundred candidates, not the row. Short rows
 * (fewer than 4k groups of 16) are gathered whole. */
static void gather_top_k(const sample_kernels *kernels, const float *x, size_t n, size_t k, candidates *c, float *spare)
{
    float threshold = -FLT_MAX; /* -inf logits have weight 0: never kept */
    size_t group = n / (4 * k) / SAMPLE_MAX_LANES * SAMPLE_MAX_LANES;
    group = group > 4096 ? 4096 : group;
    if (group >= SAMPLE_MAX_LANES) {
        size_t groups = (n + group - 1) / group;
        kernels->group_maxima(x, n, group, spare);
        float bound = softmax_kth_largest(spare, groups, k);
        threshold = bound > threshold ? bound : threshold;
    }
    c->count = kernels->gather_at_least(x, n, threshold, 0, c->values, c->indices);
    keep_top_k(c, spare, k);
}

/* Rank order of the filters: larger logit first, then lower index. */
static int ranks_before(const candidates *c, uint32_t a, uint32_t b)
{
    return c->values[a] > c->values[b] || (c->values[a] == c->values[b] && c->indices[a] < c->indices[b]);
}

static void swap_positions(uint32_t *a, uint32_t *b)
{
    uint32_t t = *a;
    *a = *b;
    *b = t;
}

/* The candidate (a position in c) ending the shortest prefix by rank whose
 * weight reaches `target`, by quickselect weighted by mass: expected O(count).
 * Returns c->count if the whole set does not reach it (rounding). */
static size_t top_p_boundary(const candidates *c, uint32_t *order, double target)
{
    for (size_t i = 0; i < c->count; i++)
        order[i] = (uint32_t)i;
    size_t lo = 0, hi = c->count;
    double remaining = target;
    while (lo < hi) {
        /* median of three by rank, moved to hi - 1 */
        size_t mid = lo + (hi - lo) / 2;
        if (ranks_before(c, order[mid], order[lo]))
            swap_positions(&order[mid], &order[lo]);
        if (ranks_before(c, order[hi - 1], order[lo]))
            swap_positions(&order[hi - 1], &order[lo]);
        if (ranks_before(c, order[mid], order[hi - 1]))
            swap_positions(&order[mid], &order[hi - 1]);
        uint32_t pivot = order[hi - 1];
        size_t store = lo;
        double mass_before = 0.0;
        for (size_t i = lo; i + 1 < hi; i++) {
            /* Branch-free: the comparisons are coin flips near the pivot. */
            uint32_t candidate = order[i];
            int before = ranks_before(c, candidate, pivot);
            mass_before += before ? c->weights[candidate] : 0.0f;
            order[i] = order[store];
            order[store] = candidate;
            store += (size_t)before;
        }
        swap_positions(&order[store], &order[hi - 1]);
        if (mass_before >= remaining) {
            hi = store;
        } else if (mass_before + c->weights[pivot] >= remaining) {
            return pivot;
        } else {
            remaining -= mass_before + c->weights[pivot];
            lo = store + 1;
        }
    }
    return c->count;
}

/* top-p, then min-p, then the draw, on a candidate set with weights.
 * top_p_total: the mass top-p measures against (the renormalisation). */
static row_result filter_and_draw(const softmax_sampler_params *params, candidates *c, uint32_t *order,
                                  double top_p_total, double u)
{
    if (params->top_p < 1.0) {
        size_t boundary = top_p_boundary(c, order, params->top_p * top_p_total);
        if (boundary < c->count) {
            float boundary_value = c->values[boundary];
            uint32_t boundary_index = c->indices[boundary];
            size_t kept = 0;
            for (size_t i = 0; i < c->count; i++) {
                if (c->values[i] > boundary_value ||
                    (c->values[i] == boundary_value && c->indices[i] <= boundary_index)) {
                    c->values[kept] = c->values[i];
                    c->indices[kept] = c->indices[i];
                    c->weights[kept++] = c->weights[i];
                }
            }
            c->count = kept;
        }
    }
    double floor = 0.0;
    if (params->min_p > 0.0) {
        float largest = 0.0f;
        for (size_t i = 0; i < c->count; i++)
            largest = c->weights[i] > largest ? c->weights[i] : largest;
        floor = params->min_p * largest;
    }
    double total = 0.0;
    for (size_t i = 0; i < c->count; i++)
        total += c->weights[i] >= floor ? c->weights[i] : 0.0;
    double target = u * total, cumulative = 0.0;
    size_t chosen = c->count, last_positive = 0;
    for (size_t i = 0; i < c->count; i++) {
        double w = c->weights[i] >= floor ? c->weights[i] : 0.0;
        if (w <= 0.0)
            continue;
        last_positive = i;
        cumulative += w;
        if (target < cumulative) {
            chosen = i;
            break;
        }
    }
    if (chosen == c->count) /* u * total rounded past the last edge */
        chosen = last_positive;
    return (row_result){c->indices[chosen], c->weights[chosen] / total, NAN};
}

/* ---------------------------------------------------------------------------
 * The row paths
 * ------------------------------------------------------------------------ */

/* Limits where every kept weight is 1 or 0: +inf logits, T = +inf, or a
 * 1/T beyond f32 (ties at the max). The filters still rank by logit. */
static row_result sample_indicator_row(const sample_call *call, const float *x, size_t n, float max, double offset,
                                       row_scratch *s, double u)
{
    const softmax_sampler_params *params = call->params;
    /* +inf logits share the mass; else (T = +inf, or 1/T below f32) every
     * logit above -inf does. */
    const int infinite_logits = max == INFINITY;
    candidates c = {s->values, s->indices, s->weights, 0};
    for (size_t i = 0; i < n; i++) {
        const int kept = infinite_logits ? x[i] == INFINITY : x[i] > -INFINITY;
        if (kept) {
            c.values[c.count] = x[i];
            c.indices[c.count] = (uint32_t)i;
            c.weights[c.count++] = 1.0f;
        }
    }
    /* A finite T whose 1/T underflows f32 still has max / T in the
     * logsumexp (large for f64 rows); T = +inf makes that term 0. */
    const double logsumexp =
        infinite_logits ? INFINITY : (offset + max) * call->inv_temperature_exact + log((double)c.count);
    if (params->top_k > 0 && (uint64_t)params->top_k < c.count)
        keep_top_k(&c, s->spare, (size_t)params->top_k);
    row_result r = filter_and_draw(params, &c, s->order, (double)c.count, u);
    r.logsumexp = logsumexp;
    return r;
}

/* Which tokens a block draw keeps: weight >= floor, and either d >= d_high
 * (d = (x - max) * inv_temperature, as the kernels compute it) or ranked
 * no later than (boundary_value, boundary_index). */
typedef struct keep_rule {
    float floor;
    float d_high;
    int has_boundary;
    float boundary_value;
    uint32_t boundary_index;
} keep_rule;

static int kept_by_rule(const keep_rule *rule, float x, size_t i, float max, float inv_temperature)
{
    /* Rounded to float at each step, as the kernels' lanes are: where
     * FLT_EVAL_METHOD is not 0 an unnamed float expression keeps double
     * (or long double) precision, and only an assignment rounds it. */
    float difference = x - max;
    float d = difference * inv_temperature;
    if (d >= rule->d_high)
        return 1;
    return rule->has_boundary && (x > rule->boundary_value || (x == rule->boundary_value && i <= rule->boundary_index));
}

/* The draw from per-block sums of the kept weights: find the block, then
 * recompute that block's weights only. */
static row_result draw_from_blocks(const sample_call *call, const float *x, size_t n, float max,
                                   const double *kept_block_sums, const keep_rule *rule, double u)
{
    size_t blocks = block_count(n);
    double kept = 0.0;
    for (size_t b = 0; b < blocks; b++)
        kept += kept_block_sums[b];
    double target = u * kept, before = 0.0;
    size_t block = blocks;
    for (size_t b = 0; b < blocks; b++) {
        if (kept_block_sums[b] > 0.0 && target < before + kept_block_sums[b]) {
            block = b;
            break;
        }
        before += kept_block_sums[b];
    }
    if (block == blocks) { /* rounded past the last edge: the last block with mass */
        block = blocks - 1;
        while (block > 0 && kept_block_sums[block] <= 0.0)
            block--;
        before = kept - kept_block_sums[block];
    }
    size_t begin = block * SAMPLE_BLOCK, length = n - begin < SAMPLE_BLOCK ? n - begin : SAMPLE_BLOCK;
    float w[SAMPLE_BLOCK];
    call->kernels->weights(x + begin, length, max, call->inv_temperature, rule->floor, w);
    double residual = target - before, cumulative = 0.0;
    size_t chosen = length, last_positive = 0;
    for (size_t i = 0; i < length; i++) {
        if (w[i] <= 0.0f || !kept_by_rule(rule, x[begin + i], begin + i, max, call->inv_temperature))
            continue;
        last_positive = i;
        cumulative += w[i];
        if (residual < cumulative) {
            chosen = i;
            break;
        }
    }
    if (chosen == length)
        chosen = last_positive;
    return (row_result){(int64_t)(begin + chosen), w[chosen] / kept, NAN};
}

/* Temperature only, or with min-p (a fixed floor on the weights, the
 * largest weight being exp(0) = 1). */
static row_result sample_temperature_row(const sample_call *call, const float *x, size_t n, float max, double offset,
                                         row_scratch *s, double u)
{
    float floor = (float)call->params->min_p;
    double all = call->kernels->block_sums(x, n, max, call->inv_temperature, floor, s->block_sums);
    keep_rule rule = {floor, -INFINITY, 0, 0.0f, 0};
    row_result r = draw_from_blocks(call, x, n, max, s->block_sums, &rule, u);
    r.logsumexp = (offset + max) * call->inv_temperature_exact + log(all);
    return r;
}

static double row_logsumexp(const sample_call *call, const float *x, size_t n, float max, double offset, row_scratch *s)
{
    double all = call->kernels->block_sums(x, n, max, call->inv_temperature, 0.0f, s->block_sums);
    return (offset + max) * call->inv_temperature_exact + log(all);
}

static row_result sample_top_k_row(const sample_call *call, const float *x, size_t n, float max, double offset,
                                   row_scratch *s, double u)
{
    const sample_kernels *k = call->kernels;
    candidates c = {s->values, s->indices, NULL, 0};
    gather_top_k(k, x, n, (size_t)call->params->top_k, &c, s->spare);
    c.weights = s->weights;
    k->weights(c.values, c.count, max, call->inv_temperature, 0.0f, c.weights);
    double total = 0.0;
    for (size_t i = 0; i < c.count; i++)
        total += c.weights[i];
    row_result r = filter_and_draw(call->params, &c, s->order, total, u);
    r.logsumexp = call->want_logsumexp ? row_logsumexp(call, x, n, max, offset, s) : NAN;
    return r;
}

/* Top-p without top-k. One pass sums the mass above each level of d; the
 * boundary of the kept prefix lies in the band between the last level whose
 * mass is under p and the next one, so only the band's tokens are selected
 * among, and the draw uses the per-block level sums plus the band's kept
 * tokens: no second exp pass. */
static row_result sample_top_p_row(const sample_call *call, const float *x, size_t n, float max, double offset,
                                   row_scratch *s, double u)
{
    const sample_kernels *k = call->kernels;
    size_t blocks = block_count(n);
    double *block_level_sums = s->block_sums, *kept_block_sums = s->block_sums + blocks * SAMPLE_LEVELS;
    double level_totals[SAMPLE_LEVELS];
    double all = k->level_sums(x, n, max, call->inv_temperature, block_level_sums, level_totals);
    double logsumexp = (offset + max) * call->inv_temperature_exact + log(all);
    double target = call->params->top_p * all;
    int band = 0;
    while (band < SAMPLE_LEVELS && level_totals[band] < target)
        band++;
    float low = band < SAMPLE_LEVELS ? softmax_sample_levels[band] : -INFINITY;
    float high = band > 0 ? softmax_sample_levels[band - 1] : INFINITY;
    double mass_above = band > 0 ? level_totals[band - 1] : 0.0;

    candidates c = {s->values, s->indices, s->weights, 0};
    c.count = k->gather_band(x, n, max, call->inv_temperature, low, high, c.values, c.indices);
    k->weights(c.values, c.count, max, call->inv_temperature, 0.0f, c.weights);
    keep_rule rule = {0.0f, high, 0, 0.0f, 0};
    if (c.count > 0) {
        size_t boundary = top_p_boundary(&c, s->order, target - mass_above);
        if (boundary == c.count) { /* rounding: the whole band; its last by rank */
            boundary = 0;
            for (size_t i = 1; i < c.count; i++) {
                if (ranks_before(&c, (uint32_t)boundary, (uint32_t)i))
                    boundary = i;
            }
        }
        rule.has_boundary = 1;
        rule.boundary_value = c.values[boundary];
        rule.boundary_index = c.indices[boundary];
        if (c.weights[boundary] < call->params->min_p) {
            /* min-p keeps a shorter prefix than top-p: min-p alone decides. */
            row_result r = sample_temperature_row(call, x, n, max, offset, s, u);
            r.logsumexp = logsumexp;
            return r;
        }
    }
    for (size_t b = 0; b < blocks; b++)
        kept_block_sums[b] = band > 0 ? block_level_sums[b * SAMPLE_LEVELS + (size_t)(band - 1)] : 0.0;
    for (size_t i = 0; i < c.count; i++) {
        if (rule.has_boundary && kept_by_rule(&rule, c.values[i], c.indices[i], max, call->inv_temperature))
            kept_block_sums[c.indices[i] / SAMPLE_BLOCK] += c.weights[i];
    }
    row_result r = draw_from_blocks(call, x, n, max, kept_block_sums, &rule, u);
    r.logsumexp = logsumexp;
    return r;
}

static row_result sample_f32_row(const sample_call *call, const float *x, size_t n, double offset, row_scratch *s,
                                 double u);

/* (x_i - max) / T rounded to f32 for the row sampled at T = 1; a finite
 * logit stays above -inf (weight 0, but not a mask). */
static float divided_difference(double scaled, double x)
{
    const float d = (float)scaled;
    return isinf(d) && isfinite(x) ? -FLT_MAX : d;
}

/* s->widened, a row already divided by T, sampled at T = 1 with the
 * offset max / T (the same filters, the same draw rule and the logsumexp
 * of x / T). */
static row_result sample_divided_row(const sample_call *call, size_t n, double offset, row_scratch *s, double u)
{
    softmax_sampler_params unit = *call->params;
    unit.temperature = 1.0;
    const sample_call at_unit = {call->kernels, &unit, 1.0f, 1.0, call->want_logsumexp};
    return sample_f32_row(&at_unit, s->widened, n, offset, s, u);
}

/* Above this temperature an f32 difference x_i - max that overflows to
 * -inf could still carry weight: exp(-FLT_MAX / 2^121) = exp(-128) is
 * below the least f32 weight, so at T <= 2^121 the weight 0 is the exact
 * one rounded. */
#define SCALE_FIRST_MIN_TEMPERATURE 0x1p121

/* The f32 row's index of a finite logit whose f32 difference from the
 * (finite) max overflows, or n. */
static size_t first_overflowing_difference(const float *x, size_t n, float max)
{
    if (!(max > 0.0f))
        return n; /* x_i >= -FLT_MAX: max - x_i <= FLT_MAX */
    for (size_t i = 0; i < n; i++) {
        const float difference = x[i] - max;
        if (isinf(difference) && isfinite(x[i]))
            return i;
    }
    return n;
}

/* An f32 (or widened bf16 / f16) row as sample_scaled_f64_row below has
 * f64 rows: x = {3e38, -3e38} at T = 1e38 never drew index 1 (exact
 * p = 0.0025), the difference -6e38 being -inf in f32 before 1/T; and at a
 * T whose 1/T overflows f32 ({0, -1e-40} at T = 1e-40) the row was taken
 * as the limit, uniform among the maxima. The differences are taken in f64
 * (exact for f32 operands near the overflow) and divided by T, and the row
 * is sampled at T = 1 with the offset max / T. x may be s->widened: each
 * element is read before it is written. */
static row_result sample_scaled_f32_row(const sample_call *call, const float *x, size_t n, float max, row_scratch *s,
                                        double u)
{
    const double t = call->params->temperature;
    for (size_t i = 0; i < n; i++)
        s->widened[i] = divided_difference(((double)x[i] - (double)max) / t, x[i]);
    return sample_divided_row(call, n, (double)max / t, s, u);
}

/* One row of f32 logits; `offset` was subtracted from them (f64 rows). */
static row_result sample_f32_row(const sample_call *call, const float *x, size_t n, double offset, row_scratch *s,
                                 double u)
{
    const softmax_sampler_params *params = call->params;
    float max;
    int has_nan;
    if (params->temperature == 0.0 && n < ((size_t)1 << 31)) {
        size_t index = call->kernels->row_argmax(x, n, &max, &has_nan);
        if (has_nan || max == -INFINITY)
            return failed_row();
        return (row_result){(int64_t)index, 1.0, NAN};
    }
    call->kernels->row_max(x, n, &max, &has_nan);
    if (has_nan || max == -INFINITY)
        return failed_row();
    if (params->temperature == 0.0)
        return (row_result){(int64_t)call->kernels->find_first(x, n, max), 1.0, NAN};
    if (max < INFINITY && params->temperature < INFINITY &&
        (call->inv_temperature == INFINITY ||
         (params->temperature > SCALE_FIRST_MIN_TEMPERATURE && first_overflowing_difference(x, n, max) < n)))
        return sample_scaled_f32_row(call, x, n, max, s, u);
    /* (A finite T whose 1/T overflows f32 was divided first, above.) */
    if (max == INFINITY || params->temperature == INFINITY || call->inv_temperature == 0.0f)
        return sample_indicator_row(call, x, n, max, offset, s, u);
    int top_k = params->top_k > 0 && (uint64_t)params->top_k < n;
    if (top_k)
        return sample_top_k_row(call, x, n, max, offset, s, u);
    if (params->top_p < 1.0)
        return sample_top_p_row(call, x, n, max, offset, s, u);
    return sample_temperature_row(call, x, n, max, offset, s, u);
}

/* Greedy on f64 rows compares the f64 values themselves. */
static row_result greedy_f64_row(const double *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            return failed_row();
        if (x[i] > x[best])
            best = i;
    }
    if (x[best] == -INFINITY)
        return failed_row();
    return (row_result){(int64_t)best, 1.0, NAN};
}

/* An f64 row with a logit more than FLT_MAX below its max, at a finite
 * T > 0, or at a T whose 1/T overflows f32: its differences rounded to f32
 * first would be clamped to -FLT_MAX before 1/T applies (x = {0, -1e40} at
 * T = 1e40 drew both about equally, not 0.73 / 0.27), or rounded to 0.
 * Here the row is scaled by 1/T in f64 first, (x_i - max) / T (x_i / T -
 * max / T where the difference overflows f64), and sampled at T = 1
 * (sample_divided_row). Other rows (differences within f32, 1/T
 * within f32) never come here: their draws are those of the f32
 * differences, as before. */
static row_result sample_scaled_f64_row(const sample_call *call, const double *x, size_t n, double max, row_scratch *s,
                                        double u)
{
    const double t = call->params->temperature;
    for (size_t i = 0; i < n; i++) {
        double scaled = x[i] - max;
        scaled = isfinite(scaled) || !isfinite(x[i]) ? scaled / t : x[i] / t - max / t;
        s->widened[i] = divided_difference(scaled, x[i]);
    }
    return sample_divided_row(call, n, max / t, s, u);
}

static row_result sample_row(const sample_call *call, softmax_dtype dtype, const void *row, size_t n, row_scratch *s,
                             double u)
{
    switch (dtype) {
    case SOFTMAX_DTYPE_F32:
        return sample_f32_row(call, row, n, 0.0, s, u);
    case SOFTMAX_DTYPE_BF16: {
        const uint16_t *x = row;
        for (size_t i = 0; i < n; i++)
            s->widened[i] = softmax_bf16_to_float(x[i]);
        return sample_f32_row(call, s->widened, n, 0.0, s, u);
    }
    case SOFTMAX_DTYPE_F16: {
        const uint16_t *x = row;
        for (size_t i = 0; i < n; i++)
            s->widened[i] = softmax_f16_to_float(x[i]);
        return sample_f32_row(call, s->widened, n, 0.0, s, u);
    }
    default: {
        const double *x = row;
        if (call->params->temperature == 0.0)
            return greedy_f64_row(x, n);
        double max = -INFINITY;
        for (size_t i = 0; i < n; i++)
            max = x[i] > max || isnan(x[i]) ? x[i] : max;
        if (isnan(max) || max == -INFINITY)
            return failed_row();
        /* Differences from a finite max keep every f64 logit's information
         * that an f32 weight can use; infinite rows keep their infinities. */
        double offset = isfinite(max) ? max : 0.0;
        const int may_scale = isfinite(max) && isfinite(call->params->temperature);
        /* 1/T overflows f32: the f32 differences would all be scaled to
         * -inf, {0, -1e-300} at T = 1e-300 drawing both equally (exact
         * 0.73 / 0.27); divided by T in f64 they are -1 and 0. */
        if (may_scale && call->inv_temperature == INFINITY)
            return sample_scaled_f64_row(call, x, n, max, s, u);
        for (size_t i = 0; i < n; i++) {
            /* A finite logit more than FLT_MAX below a finite max, at a
             * finite T: the row is divided by T in f64 instead. */
            if (may_scale && isfinite(x[i]) && !(max - x[i] <= (double)FLT_MAX))
                return sample_scaled_f64_row(call, x, n, max, s, u);
            /* A finite logit stays finite when its difference is beyond f32
             * (or f64 itself): far below the max it is still above -inf
             * (T = +inf counts it, a small enough 1/T weighs it), and beside
             * a +inf max (offset 0) it is not one of the +inf logits. */
            float d = (float)(x[i] - offset);
            if (isinf(d) && isfinite(x[i]))
                d = d > 0 ? FLT_MAX : -FLT_MAX;
            s->widened[i] = d;
        }
        return sample_f32_row(call, s->widened, n, offset, s, u);
    }
    }
}

/* ---------------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------------ */

int softmax_sampler_params_init(softmax_sampler_params *params)
{
    softmax_clear_error();
    RETURN_ERROR_IF(params == NULL, SOFTMAX_E_NULL_POINTER, "softmax_sampler_params_init: params is NULL");
    memset(params, 0, sizeof *params);
    params->temperature = 1.0;
    params->top_p = 1.0;
    return SOFTMAX_OK;
}

static int check_params(const softmax_sampler_params *p)
{
    const char *fn = "softmax_sample";
    RETURN_ERROR_IF(isnan(p->temperature) || p->temperature < 0.0, SOFTMAX_E_INVALID_PARAMETER,
                    "%s: temperature = %g (must be >= 0)", fn, p->temperature);
    RETURN_ERROR_IF(p->top_k < 0, SOFTMAX_E_INVALID_PARAMETER, "%s: top_k = %lld (must be >= 0; 0 = off)", fn,
                    (long long)p->top_k);
    RETURN_ERROR_IF(!(p->top_p > 0.0 && p->top_p <= 1.0), SOFTMAX_E_INVALID_PARAMETER,
                    "%s: top_p = %g (must be in (0, 1]; 1 = off)", fn, p->top_p);
    RETURN_ERROR_IF(!(p->min_p >= 0.0 && p->min_p <= 1.0), SOFTMAX_E_INVALID_PARAMETER,
                    "%s: min_p = %g (must be in [0, 1]; 0 = off)", fn, p->min_p);
    for (size_t i = 0; i < sizeof p->reserved / sizeof p->reserved[0]; i++) {
        RETURN_ERROR_IF(p->reserved[i] != 0, SOFTMAX_E_UNSUPPORTED, "%s: params->reserved[%zu] is not zero", fn, i);
    }
    return SOFTMAX_OK;
}

/* Rows are sampled in parallel, each writing its outputs while other rows
 * are still read: an output sharing bytes with the logits, the stream ids
 * or another output would be read after being overwritten, or raced on. */
static int check_sample_overlaps(const void *logits, size_t logits_bytes, const uint64_t *stream_ids,
                                 const int64_t *indices, const double *probs, const double *logsumexp, size_t rows)
{
    const char *fn = "softmax_sample";
    const size_t row_bytes = rows * sizeof(int64_t);
    const struct {
        const char *name;
        const void *data;
        size_t bytes;
    } inputs[] = {{"logits", logits, logits_bytes}, {"stream_ids", stream_ids, row_bytes}},
      outputs[] = {{"indices", indices, row_bytes}, {"probs", probs, row_bytes}, {"logsumexp", logsumexp, row_bytes}};
    for (size_t o = 0; o < sizeof outputs / sizeof outputs[0]; o++) {
        for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
            RETURN_ERROR_IF(softmax_bytes_overlap(outputs[o].data, outputs[o].bytes, inputs[i].data, inputs[i].bytes),
                            SOFTMAX_E_OVERLAP, "%s: %s overlaps %s", fn, outputs[o].name, inputs[i].name);
        }
        for (size_t other = 0; other < o; other++) {
            RETURN_ERROR_IF(
                softmax_bytes_overlap(outputs[o].data, outputs[o].bytes, outputs[other].data, outputs[other].bytes),
                SOFTMAX_E_OVERLAP, "%s: %s overlaps %s", fn, outputs[o].name, outputs[other].name);
        }
    }
    return SOFTMAX_OK;
}

int softmax_sample(const softmax_sampler_params *params, softmax_dtype dtype, const void *logits, size_t rows,
                   size_t vocab, uint64_t step, const uint64_t *stream_ids, int64_t *indices, double *probs,
                   double *logsumexp)
{
    softmax_clear_error();
    const char *fn = "softmax_sample";
    RETURN_ERROR_IF(params == NULL, SOFTMAX_E_NULL_POINTER, "%s: params is NULL", fn);
    int status = check_params(params);
    if (status != SOFTMAX_OK)
        return status;
    size_t element_size = softmax_dtype_size(dtype);
    RETURN_ERROR_IF(element_size == 0, SOFTMAX_E_INVALID_DTYPE, "%s: unknown dtype %d", fn, (int)dtype);
    /* Even an empty call reports a forced code path that this CPU lacks, as
     * every other entry point does. */
    const sample_kernels *kernels = softmax_sample_dispatch(fn, &status);
    if (kernels == NULL)
        return status;
    if (rows == 0)
        return SOFTMAX_OK;
    /* The per-row outputs are 8 bytes each; with vocab == 0 nothing else
     * bounds rows. */
    RETURN_ERROR_IF((vocab != 0 && rows > SIZE_MAX / vocab / element_size) || rows > SIZE_MAX / sizeof(int64_t),
                    SOFTMAX_E_SIZE_OVERFLOW, "%s: rows * vocab overflows", fn);
    RETURN_ERROR_IF(vocab > UINT32_MAX, SOFTMAX_E_INVALID_ARGUMENT, "%s: vocab = %zu (must be < 2^32)", fn, vocab);
    RETURN_ERROR_IF(indices == NULL || (logits == NULL && vocab > 0), SOFTMAX_E_NULL_POINTER, "%s: %s is NULL", fn,
                    indices == NULL ? "indices" : "logits");
    status = check_sample_overlaps(logits, rows * vocab * element_size, stream_ids, indices, probs, logsumexp, rows);
    if (status != SOFTMAX_OK)
        return status;

    double inv_temperature = 1.0 / params->temperature;
    sample_call call = {kernels, params, (float)inv_temperature, inv_temperature, logsumexp != NULL};
    int threads = softmax_threads_for_job(rows * vocab, rows);
    size_t first_failed = SIZE_MAX;
    int out_of_memory = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(min                                           \
                                                                         : first_failed) reduction(|                   \
                                                                                                   : out_of_memory)
    for (size_t r = 0; r < rows; r++) {
        row_scratch scratch;
        row_result result = failed_row();
        if (vocab > 0 && !scratch_for_row(&scratch, vocab)) {
            out_of_memory = 1;
        } else if (vocab > 0) {
            uint64_t stream = stream_ids != NULL ? stream_ids[r] : (uint64_t)r;
            double u = params->temperature == 0.0 ? 0.0 : softmax_sample_uniform(params->seed, stream, step);
            result = sample_row(&call, dtype, (const char *)logits + r * vocab * element_size, vocab, &scratch, u);
        }
        if (result.index < 0 && r < first_failed)
            first_failed = r;
        indices[r] = result.index;
        if (probs != NULL)
            probs[r] = result.probability;
        if (logsumexp != NULL)
            logsumexp[r] = result.logsumexp;
    }
    RETURN_ERROR_IF(out_of_memory, SOFTMAX_E_OUT_OF_MEMORY, "%s: no scratch memory for a row of %zu", fn, vocab);
    RETURN_ERROR_IF(first_failed != SIZE_MAX, SOFTMAX_E_NO_FINITE_LOGIT,
                    "%s: row %zu has a NaN logit or none above -inf", fn, first_failed);
    return SOFTMAX_OK;
}

const sample_kernels *softmax_sample_kernels_of(const softmax_path *path)
{
    /* The softmax dispatch decided the path once; follow it. */
    switch (path->isa) {
#if defined(SOFTMAX_HAVE_X86_KERNELS)
    case SOFTMAX_ISA_AVX512:
        return &softmax_sample_kernels_avx512;
    case SOFTMAX_ISA_AVX2:
        return &softmax_sample_kernels_avx2;
#endif
#if defined(SOFTMAX_HAVE_NEON_KERNELS)
    case SOFTMAX_ISA_NEON:
        return &softmax_sample_kernels_neon;
#endif
    default:
        return &softmax_sample_kernels_portable;
    }
}

const sample_kernels *softmax_sample_dispatch(const char *fn, int *status)
{
    const softmax_path *path = softmax_dispatch_path(fn, status);
    return path == NULL ? NULL : softmax_sample_kernels_of(path);
}
