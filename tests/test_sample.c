/*
 * test_sample.c -- softmax_sample(): the random stream (Philox4x32-10
 * against Random123's own implementation and its published known-answer
 * vectors), the distribution of the draws (chi-square of empirical
 * frequencies against the exact kept-set probabilities, for every filter
 * combination, every data type, small and large vocabularies),
 * reproducibility across thread counts and batch compositions, greedy
 * decoding, special logits and bad parameters.
 *
 * The statistical tests use fixed seeds and a rejection threshold at a
 * p-value of about 3e-7 per test, so a correct sampler fails with
 * negligible probability; each test also checks that the same counts
 * reject a slightly wrong distribution (10% of the mass of the most
 * probable half of the kept set moved to the other half), so the test has
 * the power to catch a wrong sampler.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Random123/philox.h>

#include "testutil.h"

/* ---------------------------------------------------------------------------
 * The stream
 * ------------------------------------------------------------------------ */

static void test_philox_known_answers(void **state)
{
    (void)state;
    /* Random123's published philox4x32_10 known-answer vectors
     * (kat_vectors): zeros, all ones, and digits of pi. */
    static const uint32_t vectors[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (size_t v = 0; v < ARRAY_LEN(vectors); v++) {
        uint32_t out[4];
        softmax_philox4x32_10(&vectors[v][0], &vectors[v][4], out);
        for (int w = 0; w < 4; w++)
            assert_int_equal(out[w], vectors[v][6 + w]);
    }
    /* And against Random123's implementation on many random inputs. */
    test_rng rng;
    rng_seed(&rng, 123);
    for (int trial = 0; trial < 100000; trial++) {
        philox4x32_ctr_t counter;
        philox4x32_key_t key;
        for (int w = 0; w < 4; w++)
            counter.v[w] = (uint32_t)rng_next(&rng);
        key.v[0] = (uint32_t)rng_next(&rng);
        key.v[1] = (uint32_t)rng_next(&rng);
        philox4x32_ctr_t expected = philox4x32_R(10, counter, key);
        uint32_t out[4];
        softmax_philox4x32_10(counter.v, key.v, out);
        for (int w = 0; w < 4; w++)
            assert_int_equal(out[w], expected.v[w]);
    }
}

/* The uniform variate exactly as softmax.h defines it. */
static void test_uniform_definition(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 7);
    double sum = 0.0;
    const int trials = 100000;
    for (int trial = 0; trial < trials; trial++) {
        uint64_t seed = rng_next(&rng), stream = rng_next(&rng) >> (trial % 64), step = rng_next(&rng) >> 17;
        philox4x32_ctr_t counter = {
            {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)}};
        philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
        philox4x32_ctr_t out = philox4x32_R(10, counter, key);
        uint64_t word = ((uint64_t)out.v[1] << 32) | out.v[0];
        double expected = (double)(word >> 11) * 0x1p-53;
        double u = softmax_sample_uniform(seed, stream, step);
        assert_true(u == expected);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    /* mean of 1e5 uniforms: sd 0.0009 */
    assert_true(fabs(sum / trials - 0.5) < 0.005);
}

/* ---------------------------------------------------------------------------
 * The exact kept-set distribution (sorting is fine in a test)
 * ------------------------------------------------------------------------ */

typedef struct filters {
    double temperature;
    int64_t top_k;
    double top_p;
    double min_p;
} filters;

static const double *sort_values;
static int by_rank(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (sort_values[i] != sort_values[j])
        return sort_values[i] > sort_values[j] ? -1 : 1;
    return i < j ? -1 : 1;
}

/* prob[i] = probability of drawing i (0 outside the kept set). Returns the
 * smallest relative distance of a filter decision from its threshold: a
 * tiny one means rounding could legitimately flip it. */
static double reference_distribution(const double *x, size_t n, filters f, double *prob)
{
    size_t *order = malloc(n * sizeof *order);
    long double *w = calloc(n, sizeof *w);
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        if (max == INFINITY)
            w[i] = x[i] == INFINITY;
        else if (f.temperature == INFINITY)
            w[i] = x[i] > -INFINITY;
        else
            w[i] = expl(((long double)x[i] - max) / f.temperature);
    }
    sort_values = x;
    qsort(order, n, sizeof *order, by_rank);
    size_t kept = n;
    while (kept > 0 && w[order[kept - 1]] == 0)
        kept--;
    if (f.top_k > 0 && (size_t)f.top_k < kept)
        kept = (size_t)f.top_k;
    double margin = 1.0;
    if (f.top_p < 1.0) {
        long double total = 0, cumulative = 0;
        for (size_t r = 0; r < kept; r++)
            total += w[order[r]];
        long double target = f.top_p * total;
        size_t r = 0;
        for (; r < kept; r++) {
            long double before = cumulative;
            cumulative += w[order[r]];
            if (cumulative >= target) {
                margin = fmin(margin, (double)((cumulative - target) / total));
                margin = fmin(margin, (double)((target - before) / total));
                break;
            }
        }
        kept = r + 1 < kept ? r + 1 : kept;
    }
    long double floor = f.min_p * w[order[0]], total = 0;
    for (size_t r = 0; r < kept; r++) {
        long double wr = w[order[r]];
        if (f.min_p > 0)
            margin = fmin(margin, (double)(fabsl(wr - floor) / w[order[0]]));
        if (wr >= floor)
            total += wr;
    }
    for (size_t i = 0; i < n; i++)
        prob[i] = 0.0;
    for (size_t r = 0; r < kept; r++) {
        long double wr = w[order[r]];
        if (wr >= floor)
            prob[order[r]] = (double)(wr / total);
    }
    free(order);
    free(w);
    return margin;
}

/* Chi-square critical value at a p-value of about 3e-7 (z = 5) by the
 * Wilson-Hilferty approximation (accurate to a few percent for df >= 1,
 * conservative enough at this tail). */
static double chi_square_critical(int df)
{
    double a = 2.0 / (9.0 * df), z = 5.0;
    double root = 1.0 - a + z * sqrt(a);
    return df * root * root * root + 4.0;
}

/* Groups the kept tokens (by decreasing probability) into cells of
 * expected mass >= 1 / max_cells and returns the chi-square statistic of
 * counts against `expected` (probabilities); *cells receives the number of
 * cells. Tokens with expected probability 0 must have count 0 (checked by
 * the caller). */
static double chi_square(const double *expected, const size_t *counts, size_t n, size_t draws, int max_cells,
                         int *cells)
{
    size_t *order = malloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_values = expected;
    qsort(order, n, sizeof *order, by_rank);
    double statistic = 0.0, cell_mass = 0.0, cell_count = 0.0;
    *cells = 0;
    for (size_t r = 0; r < n && expected[order[r]] > 0; r++) {
        cell_mass += expected[order[r]];
        cell_count += (double)counts[order[r]];
        int last = r + 1 == n || expected[order[r + 1]] == 0;
        if (cell_mass >= 1.0 / max_cells || last) {
            double e = cell_mass * (double)draws;
            statistic += (cell_count - e) * (cell_count - e) / e;
            (*cells)++;
            cell_mass = 0.0;
            cell_count = 0.0;
        }
    }
    free(order);
    return statistic;
}

/* Logits as the data type stores them (values exact in bf16 and f16). */
static void *logits_of(softmax_dtype dt, const double *x, size_t n)
{
    size_t size = dt == SOFTMAX_DTYPE_F64 ? 8 : dt == SOFTMAX_DTYPE_F32 ? 4 : 2;
    void *buffer = malloc(n * size);
    double *copy = malloc(n * sizeof *copy);
    memcpy(copy, x, n * sizeof *copy);
    assert_int_equal(softmax_convert(buffer, dt, copy, SOFTMAX_DTYPE_F64, n), SOFTMAX_OK);
    free(copy);
    return buffer;
}

static size_t total_tests, total_rejections_of_wrong;
static double worst_ratio; /* largest statistic / critical value among correct runs */

/*
 * Draws `draws` times from the row (batches of `batch` copies, one call per
 * step) and checks: no token outside the kept set, the returned
 * probabilities, and the chi-square of the frequencies against the exact
 * distribution (and its rejection of a wrong one).
 */
static void check_distribution(softmax_dtype dt, const double *x, size_t n, filters f, size_t batch, size_t steps,
                               uint64_t seed)
{
    double *expected = malloc(n * sizeof *expected);
    /* A filter decision within rounding of its threshold could go either
     * way in f32: nudge top_p / min_p until every decision is clear. */
    filters asked = f;
    double *stored = malloc(n * sizeof *stored); /* x as the data type holds it */
    void *rounded = logits_of(dt, x, n);
    assert_int_equal(softmax_convert(stored, SOFTMAX_DTYPE_F64, rounded, dt, n), SOFTMAX_OK);
    free(rounded);
    x = stored;
    const double clear = 3e-6; /* well above the f32 rounding of the sums */
    double margin = reference_distribution(x, n, f, expected);
    for (int attempt = 1; margin < clear && attempt <= 200; attempt++) {
        f.top_p = asked.top_p < 1.0 ? asked.top_p * (1.0 - 1e-5 * attempt) : 1.0;
        f.min_p = asked.min_p * (1.0 - 1e-5 * attempt);
        margin = reference_distribution(x, n, f, expected);
    }
    if (margin < clear) {
        printf("  skipped (a filter decision within %.1e of its threshold): T=%g k=%lld p=%g min_p=%g\n", margin,
               f.temperature, (long long)f.top_k, f.top_p, f.min_p);
        free(expected);
        free(stored);
        return;
    }
    void *row = logits_of(dt, x, n);
    size_t size = dt == SOFTMAX_DTYPE_F64 ? 8 : dt == SOFTMAX_DTYPE_F32 ? 4 : 2;
    char *logits = malloc(batch * n * size);
    for (size_t r = 0; r < batch; r++)
        memcpy(logits + r * n * size, row, n * size);
    int64_t *indices = malloc(batch * sizeof *indices);
    double *probs = malloc(batch * sizeof *probs);
    size_t *counts = calloc(n, sizeof *counts);
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    params.temperature = f.temperature;
    params.top_k = f.top_k;
    params.top_p = f.top_p;
    params.min_p = f.min_p;
    params.seed = seed;
    for (size_t step = 0; step < steps; step++) {
        int status = softmax_sample(&params, dt, logits, batch, n, step, NULL, indices, probs, NULL);
        assert_int_equal(status, SOFTMAX_OK);
        for (size_t r = 0; r < batch; r++) {
            assert_true(indices[r] >= 0 && (size_t)indices[r] < n);
            if (expected[indices[r]] == 0.0)
                fail_msg("%s T=%g k=%lld p=%g min_p=%g: drew %lld, outside the kept set", dtype_name(dt), f.temperature,
                         (long long)f.top_k, f.top_p, f.min_p, (long long)indices[r]);
            if (fabs(probs[r] - expected[indices[r]]) > 1e-5 * expected[indices[r]] + 1e-12)
                fail_msg("%s T=%g k=%lld p=%g min_p=%g: probability of %lld is %.9g, exact %.9g", dtype_name(dt),
                         f.temperature, (long long)f.top_k, f.top_p, f.min_p, (long long)indices[r], probs[r],
                         expected[indices[r]]);
            counts[indices[r]]++;
        }
    }
    size_t draws = batch * steps;
    int cells;
    double statistic = chi_square(expected, counts, n, draws, 40, &cells);
    double critical = cells > 1 ? chi_square_critical(cells - 1) : 0.0;
    total_tests++;
    if (cells > 1) {
        worst_ratio = fmax(worst_ratio, statistic / critical);
        if (statistic > critical)
            fail_msg("%s T=%g k=%lld p=%g min_p=%g: chi-square %.1f > %.1f (%d cells, %zu draws)", dtype_name(dt),
                     f.temperature, (long long)f.top_k, f.top_p, f.min_p, statistic, critical, cells, draws);
        /* Power: the same counts must reject a slightly wrong
         * distribution: 10% of the mass of the most probable half of the
         * kept set moved, proportionally, to the other half. */
        double *wrong = malloc(n * sizeof *wrong);
        size_t *order = malloc(n * sizeof *order);
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        sort_values = expected;
        qsort(order, n, sizeof *order, by_rank);
        double upper_mass = 0.0;
        size_t upper = 0;
        while (upper < n && upper_mass < 0.5)
            upper_mass += expected[order[upper++]];
        double lower_mass = 1.0 - upper_mass;
        for (size_t r = 0; r < n; r++) {
            double e = expected[order[r]];
            wrong[order[r]] = r < upper ? e * 0.9 : lower_mass > 0 ? e * (1.0 + 0.1 * upper_mass / lower_mass) : e;
        }
        free(order);
        int wrong_cells;
        double wrong_statistic = chi_square(wrong, counts, n, draws, 40, &wrong_cells);
        if (wrong_statistic <= chi_square_critical(wrong_cells - 1))
            fail_msg("%s T=%g: the test cannot tell a wrong distribution (chi-square %.1f)", dtype_name(dt),
                     f.temperature, wrong_statistic);
        total_rejections_of_wrong++;
        free(wrong);
    } else {
        /* one kept token: every draw is it */
        for (size_t i = 0; i < n; i++)
            assert_true(counts[i] == (expected[i] > 0 ? draws : 0));
    }
    free(expected);
    free(stored);
    free(row);
    free(logits);
    free(indices);
    free(probs);
    free(counts);
}

/* A tie at the top (indices 2 and 3), a masked token, distinct values
 * exact in bf16 and f16. */
static const double small_row[10] = {0.25, -1.25, 2.0, 2.0, -INFINITY, 0.875, 1.5, -0.375, 1.125, 0.0};

static const filters small_filters[] = {
    {1, 0, 1, 0},    {1, 3, 1, 0},    {1, 1, 1, 0},        {1, 0, 0.6, 0},   {1, 0, 0.9, 0},
    {1, 0, 1, 0.2},  {1, 4, 0.8, 0},  {1, 5, 0.9, 0.15},   {1, 0, 0.7, 0.3}, {1, 6, 1, 0.1},
    {1, 2, 0.55, 0}, {1, 0, 0.05, 0}, {1, 9, 0.999, 0.01},
};
static const double small_temperatures[] = {1.0, 0.6, 2.5, INFINITY};

static void test_chi_square_small_vocabulary(void **state)
{
    (void)state;
    for (size_t t = 0; t < ARRAY_LEN(small_temperatures); t++) {
        for (size_t c = 0; c < ARRAY_LEN(small_filters); c++) {
            filters f = small_filters[c];
            f.temperature = small_temperatures[t];
            check_distribution(SOFTMAX_DTYPE_F32, small_row, ARRAY_LEN(small_row), f, 20000, 4, 1000 + c);
        }
    }
    printf("chi-square (small vocabulary, f32): %zu tests, largest statistic / critical %.3f\n", total_tests,
           worst_ratio);
}

static void test_chi_square_data_types(void **state)
{
    (void)state;
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    const filters chosen[] = {{0.8, 0, 1, 0}, {1.3, 4, 0.8, 0}, {1, 0, 0.7, 0.3}, {INFINITY, 5, 0.9, 0}};
    for (size_t d = 0; d < ARRAY_LEN(types); d++) {
        for (size_t c = 0; c < ARRAY_LEN(chosen); c++)
            check_distribution(types[d], small_row, ARRAY_LEN(small_row), chosen[c], 20000, 3, 77 + c);
    }
}

/* A vocabulary spanning several blocks, so that the block sums, the top-k
 * gather and the top-p bands are exercised; cells group tokens of equal
 * expected mass. */
static void test_chi_square_large_vocabulary(void **state)
{
    (void)state;
    set_threads_or_fail(1); /* a shared machine: no team spinning over rows this small */
    const size_t n = 3000;
    double *x = malloc(n * sizeof *x);
    test_rng rng;
    rng_seed(&rng, 99);
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0 * rng_normal(&rng);
    x[2345] = 9.0; /* a peak far from the start */
    const filters chosen[] = {
        {1, 0, 1, 0},        {0.3, 0, 1, 0},    {3, 0, 1, 0},     {1, 40, 1, 0},
        {1, 200, 1, 0},      {1, 0, 0.5, 0},    {1, 0, 0.9, 0},   {1, 0, 0.99, 0},
        {0.3, 0, 0.9, 0},    {3, 0, 0.95, 0},   {1, 0, 1, 0.05},  {1, 40, 0.95, 0.05},
        {0.7, 0, 0.95, 0.2}, {1, 1000, 0.9, 0}, {2, 0, 0.999, 0}, {INFINITY, 0, 0.5, 0},
    };
    /* Under the sanitizers (SAMPLE_TEST_LIGHT) four setups that reach every
     * filter's code: none, top-k + top-p + min-p together, a large top-k
     * with top-p, an infinite temperature. The instrumented run looks for
     * memory errors, the Release run for statistics (on the portable path
     * under ASan the whole list took a minute). */
#if defined(SAMPLE_TEST_LIGHT)
    static const size_t light[] = {0, 11, 13, 15};
    const size_t setups = ARRAY_LEN(light);
#else
    const size_t setups = ARRAY_LEN(chosen);
#endif
    for (size_t s = 0; s < setups; s++) {
#if defined(SAMPLE_TEST_LIGHT)
        const size_t c = light[s];
#else
        const size_t c = s;
#endif
        check_distribution(SOFTMAX_DTYPE_F32, x, n, chosen[c], 250, 100, 4242 + c);
    }
    check_distribution(SOFTMAX_DTYPE_BF16, x, n, chosen[6], 250, 100, 5);
    set_threads_or_fail(0);
    free(x);
    printf("chi-square: %zu tests in all, each also rejecting a wrong distribution; largest statistic / "
           "critical %.3f\n",
           total_tests, worst_ratio);
}

/* ---------------------------------------------------------------------------
 * Reproducibility
 * ------------------------------------------------------------------------ */

static void test_threads_and_batch_composition(void **state)
{
    (void)state;
    const size_t rows = 64, n = 6000;
    float *x = malloc(rows * n * sizeof *x);
    test_rng rng;
    rng_seed(&rng, 5);
    for (size_t i = 0; i < rows * n; i++)
        x[i] = (float)(2.0 * rng_normal(&rng));
    const filters chosen[] = {{1, 0, 1, 0}, {0.7, 40, 1, 0}, {1, 0, 0.95, 0}, {1, 40, 0.95, 0.05}, {1, 0, 1, 0.1}};
    int64_t base[64], other[64];
    double base_probs[64], other_probs[64], base_lse[64], other_lse[64];
    uint64_t streams[64];
    float *subset = malloc(rows * n * sizeof *subset);
    for (size_t c = 0; c < ARRAY_LEN(chosen); c++) {
        softmax_sampler_params params;
        softmax_sampler_params_init(&params);
        params.temperature = chosen[c].temperature;
        params.top_k = chosen[c].top_k;
        params.top_p = chosen[c].top_p;
        params.min_p = chosen[c].min_p;
        params.seed = 0x5eed + c;
        set_threads_or_fail(1);
        assert_int_equal(softmax_sample(&params, SOFTMAX_DTYPE_F32, x, rows, n, 17, NULL, base, base_probs, base_lse),
                         SOFTMAX_OK);
        for (int threads = 2; threads <= 4; threads++) {
            set_threads_or_fail(threads);
            assert_int_equal(
                softmax_sample(&params, SOFTMAX_DTYPE_F32, x, rows, n, 17, NULL, other, other_probs, other_lse),
                SOFTMAX_OK);
            assert_memory_equal(base, other, sizeof base);
            assert_memory_equal(base_probs, other_probs, sizeof base_probs);
            assert_memory_equal(base_lse, other_lse, sizeof base_lse);
        }
        /* Rows 40..11 in reverse order, keeping their streams. */
        size_t count = 0;
        for (size_t r = 40; r >= 11; r--, count++) {
            memcpy(subset + count * n, x + r * n, n * sizeof *x);
            streams[count] = r;
        }
        assert_int_equal(
            softmax_sample(&params, SOFTMAX_DTYPE_F32, subset, count, n, 17, streams, other, other_probs, NULL),
            SOFTMAX_OK);
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(other[i], base[streams[i]]);
            assert_true(other_probs[i] == base_probs[streams[i]]);
        }
        /* One row alone, as row 0 of its own call, with its stream. */
        assert_int_equal(
            softmax_sample(&params, SOFTMAX_DTYPE_F32, x + 33 * n, 1, n, 17, &streams[7], other, NULL, NULL),
            SOFTMAX_OK);
        assert_int_equal(other[0], base[33]);
        /* Another step gives other draws (for most rows). */
        assert_int_equal(softmax_sample(&params, SOFTMAX_DTYPE_F32, x, rows, n, 18, NULL, other, NULL, NULL),
                         SOFTMAX_OK);
        size_t same = 0;
        for (size_t r = 0; r < rows; r++)
            same += other[r] == base[r];
        assert_true(same < rows);
    }
    set_threads_or_fail(0);
    free(x);
    free(subset);
}

/* ---------------------------------------------------------------------------
 * Greedy, temperatures, special logits
 * ------------------------------------------------------------------------ */

static int sample_one(softmax_dtype dt, const double *x, size_t n, filters f, uint64_t step, int64_t *index,
                      double *prob, double *lse)
{
    void *logits = logits_of(dt, x, n);
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    params.temperature = f.temperature;
    params.top_k = f.top_k;
    params.top_p = f.top_p;
    params.min_p = f.min_p;
    params.seed = 11;
    int status = softmax_sample(&params, dt, logits, 1, n, step, NULL, index, prob, lse);
    free(logits);
    return status;
}

static const softmax_dtype all_types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};

static void test_greedy(void **state)
{
    (void)state;
    const double ties[] = {1.0, 5.0, -INFINITY, 5.0, 2.0};
    const double infinities[] = {1.0, INFINITY, 3.0, INFINITY};
    const double last[] = {-INFINITY, -INFINITY, -3.0};
    for (size_t d = 0; d < ARRAY_LEN(all_types); d++) {
        for (uint64_t step = 0; step < 5; step++) {
            int64_t index = -7;
            double prob = 0, lse = 0;
            filters greedy = {0, 2, 0.5, 0.5};
            assert_int_equal(sample_one(all_types[d], ties, 5, greedy, step, &index, &prob, &lse), SOFTMAX_OK);
            assert_int_equal(index, 1);
            assert_true(prob == 1.0);
            assert_true(isnan(lse));
            assert_int_equal(sample_one(all_types[d], infinities, 4, greedy, step, &index, NULL, NULL), SOFTMAX_OK);
            assert_int_equal(index, 1);
            assert_int_equal(sample_one(all_types[d], last, 3, greedy, step, &index, NULL, NULL), SOFTMAX_OK);
            assert_int_equal(index, 2);
        }
    }
    /* Long rows: the max in every position class of the vector loops. */
    for (size_t n = 1; n < 300; n += 7) {
        float *x = malloc(n * sizeof *x);
        for (size_t where = 0; where < n; where += 3) {
            for (size_t i = 0; i < n; i++)
                x[i] = (float)(i % 13) - 20.0f;
            x[where] = 100.0f;
            if (where + 5 < n)
                x[where + 5] = 100.0f; /* a later tie loses */
            softmax_sampler_params params;
            softmax_sampler_params_init(&params);
            params.temperature = 0.0;
            int64_t index;
            assert_int_equal(softmax_sample(&params, SOFTMAX_DTYPE_F32, x, 1, n, 0, NULL, &index, NULL, NULL),
                             SOFTMAX_OK);
            assert_int_equal(index, (int64_t)where);
        }
        free(x);
    }
}

static void test_special_logits(void **state)
{
    (void)state;
    for (size_t d = 0; d < ARRAY_LEN(all_types); d++) {
        softmax_dtype dt = all_types[d];
        int64_t index;
        double prob, lse;
        /* +inf logits share the draw; nothing else is drawn. */
        const double infinities[] = {1.0, INFINITY, 3.0, INFINITY, -INFINITY};
        int seen[5] = {0};
        for (uint64_t step = 0; step < 200; step++) {
            assert_int_equal(sample_one(dt, infinities, 5, (filters){1, 0, 1, 0}, step, &index, &prob, &lse),
                             SOFTMAX_OK);
            assert_true(index == 1 || index == 3);
            assert_true(prob == 0.5);
            assert_true(lse == INFINITY);
            seen[index]++;
        }
        assert_true(seen[1] > 50 && seen[3] > 50);
        /* T = inf: uniform over the tokens above -inf; logsumexp = log(4). */
        const double row[] = {1.0, -INFINITY, 30.0, -2.0, 0.5};
        assert_int_equal(sample_one(dt, row, 5, (filters){INFINITY, 0, 1, 0}, 3, &index, &prob, &lse), SOFTMAX_OK);
        assert_true(index != 1);
        assert_true(fabs(prob - 0.25) < 1e-15);
        assert_true(fabs(lse - log(4.0)) < 1e-15);
        /* T = inf with top-k 2: the two largest logits, equally. */
        for (uint64_t step = 0; step < 50; step++) {
            assert_int_equal(sample_one(dt, row, 5, (filters){INFINITY, 2, 1, 0}, step, &index, &prob, NULL),
                             SOFTMAX_OK);
            assert_true(index == 2 || index == 0);
            assert_true(prob == 0.5);
        }
        /* A tiny temperature (1/T overflows f32): uniform among tied maxima. */
        const double tied[] = {3.0, 1.0, 3.0, 2.9};
        for (uint64_t step = 0; step < 50; step++) {
            assert_int_equal(sample_one(dt, tied, 4, (filters){1e-300, 0, 1, 0}, step, &index, &prob, NULL),
                             SOFTMAX_OK);
            assert_true(index == 0 || index == 2);
        }
        /* logsumexp of x / T at an ordinary temperature. */
        const double plain[] = {0.5, -1.0, 2.0, 1.0};
        assert_int_equal(sample_one(dt, plain, 4, (filters){0.5, 0, 1, 0}, 1, &index, &prob, &lse), SOFTMAX_OK);
        double exact = log(exp(1.0) + exp(-2.0) + exp(4.0) + exp(2.0));
        assert_true(fabs(lse - exact) < 1e-6 * exact);
        /* Huge logits (exact in every type): no overflow. */
        const double huge[] = {32512.0, 32768.0, -32768.0};
        assert_int_equal(sample_one(dt, huge, 3, (filters){1, 0, 1, 0}, 1, &index, &prob, &lse), SOFTMAX_OK);
        assert_int_equal(index, 1);
        assert_true(prob == 1.0 && lse == 32768.0);
    }
    /* f64 logits whose difference from the max is beyond f32 stay finite:
     * T = inf counts them, beside +inf logits they are not drawn, and a
     * finite T whose 1/T is below f32 keeps max / T in logsumexp. */
    int64_t index;
    double prob, lse;
    const double far[] = {0.0, -1e300, -INFINITY};
    assert_int_equal(sample_one(SOFTMAX_DTYPE_F64, far, 3, (filters){INFINITY, 0, 1, 0}, 2, &index, &prob, &lse),
                     SOFTMAX_OK);
    assert_true(fabs(lse - log(2.0)) < 1e-15 && prob == 0.5 && index != 2);
    const double beside_infinity[] = {DBL_MAX, INFINITY, -DBL_MAX};
    for (uint64_t step = 0; step < 20; step++) {
        assert_int_equal(
            sample_one(SOFTMAX_DTYPE_F64, beside_infinity, 3, (filters){1, 0, 1, 0}, step, &index, &prob, &lse),
            SOFTMAX_OK);
        assert_true(index == 1 && prob == 1.0 && lse == INFINITY);
    }
    const double large[] = {1e300, -INFINITY};
    assert_int_equal(sample_one(SOFTMAX_DTYPE_F64, large, 2, (filters){1e300, 0, 1, 0}, 1, &index, &prob, &lse),
                     SOFTMAX_OK);
    assert_true(index == 0 && fabs(lse - 1.0) < 1e-15);
    /* f32 logits whose f32 difference from the max rounds to -FLT_MAX, not
     * -inf (-1e30 - FLT_MAX is within half an ulp of FLT_MAX): at T = FLT_MAX
     * each weighs e^-1 against the max's 1, as the exact x / T has it, and
     * is drawn that often. */
    const double beyond_half_range[] = {-1.0000000150474662e30, FLT_MAX, 0.0, -1.0000000150474662e30, -INFINITY};
    check_distribution(SOFTMAX_DTYPE_F32, beyond_half_range, ARRAY_LEN(beyond_half_range), (filters){FLT_MAX, 0, 1, 0},
                       2000, 10, 77);
}

/* A row of up to 5 logits and the filters to sample it with. */
typedef struct row_case {
    double x[5];
    size_t n;
    filters f;
} row_case;

/* logsumexp of x / T from softmax_sample against long double on the
 * values as the data type holds them (max-shifted: x / T may overflow
 * even long double's exp). */
static void check_logsumexp_of_scaled(softmax_dtype dt, const double *x, size_t n, filters f, size_t case_number)
{
    double stored[8];
    assert_true(n <= ARRAY_LEN(stored));
    void *row = logits_of(dt, x, n);
    assert_int_equal(softmax_convert(stored, SOFTMAX_DTYPE_F64, row, dt, n), SOFTMAX_OK);
    free(row);
    int64_t index;
    double prob, lse;
    assert_int_equal(sample_one(dt, x, n, f, 0, &index, &prob, &lse), SOFTMAX_OK);
    long double max = -INFINITY, total = 0;
    for (size_t i = 0; i < n; i++)
        max = stored[i] > max ? stored[i] : max;
    for (size_t i = 0; i < n; i++)
        total += expl(((long double)stored[i] - max) / f.temperature);
    const double exact = (double)(max / f.temperature + logl(total));
    if (fabs(lse - exact) > 1e-6 * fmax(1.0, fabs(exact)))
        fail_msg("%s case %zu, T = %g: logsumexp %.17g, exact %.17g", dtype_name(dt), case_number, f.temperature, lse,
                 exact);
}

/* f64 rows with logits more than FLT_MAX below the max, at a temperature
 * that brings them back into range: the distribution of x / T, not of
 * differences clamped to f32 before 1/T (which drew {0, -1e40} at
 * T = 1e40 about half and half), and logsumexp(x / T) against long double. */
static void test_f64_rows_beyond_f32_at_large_temperatures(void **state)
{
    (void)state;
    static const row_case cases[] = {
        {{0.0, -1e40, -3e39, -5e40, -INFINITY}, 5, {1e40, 0, 1, 0}},
        {{0.0, -1e40, -3e39, -5e40, -INFINITY}, 5, {1e40, 2, 1, 0}},
        {{0.0, -1e40, -3e39, -5e40, -INFINITY}, 5, {1e40, 0, 0.8, 0}},
        {{0.0, -1e40, -3e39, -5e40, -INFINITY}, 5, {2e40, 0, 1, 0.3}},
        /* the difference overflows f64 itself */
        {{1e308, 1e308, -1e308, 0.0, 5e307}, 5, {1e308, 0, 1, 0}},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        check_distribution(SOFTMAX_DTYPE_F64, cases[c].x, cases[c].n, cases[c].f, 2000, 50, 11 + c);
        check_logsumexp_of_scaled(SOFTMAX_DTYPE_F64, cases[c].x, cases[c].n, cases[c].f, c);
    }
}

/* f32 and bf16 rows whose f32 difference from the max overflows (both
 * types reach +-3.4e38), at a temperature large enough for those logits to
 * carry weight: {3e38, -3e38} at T = 1e38 never drew index 1 (exact
 * p = 0.0025). The distribution and logsumexp of x / T, against long
 * double on the values as the type holds them. */
static void test_f32_rows_beyond_f32_at_large_temperatures(void **state)
{
    (void)state;
    static const row_case cases[] = {
        {{3e38, -3e38, 1e38, -INFINITY, -2e38}, 5, {1e38, 0, 1, 0}},
        {{3e38, -3e38, 1e38, -INFINITY, -2e38}, 5, {1e38, 2, 1, 0}},
        {{3e38, -3e38, 1e38, -INFINITY, -2e38}, 5, {1e38, 0, 0.999, 0}},
        {{3e38, -3e38, 1e38, -INFINITY, -2e38}, 5, {5e37, 0, 1, 0.0001}},
        {{-3e38, 3e38, 0.0, -3e38, 2e38}, 5, {3e38, 0, 1, 0}},
        {{-3e38, 3e38, 0.0, -3e38, 2e38}, 5, {1e300, 0, 1, 0}}, /* 1/T is 0 in f32: near uniform */
        {{3e38, -3e38}, 2, {1e38, 0, 1, 0}},
    };
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_BF16};
    for (size_t d = 0; d < ARRAY_LEN(types); d++) {
        for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
            const size_t n = cases[c].n;
            check_distribution(types[d], cases[c].x, n, cases[c].f, 2000, 50, 31 + c);
            check_logsumexp_of_scaled(types[d], cases[c].x, n, cases[c].f, c);
        }
    }
}

/* A finite temperature whose 1/T overflows f32 (T < 2.9e-39): the row is
 * divided by T in f64 first, not taken as the limit. {0, -1e-300} at
 * T = 1e-300 drew both equally (exact 0.73 / 0.27). */
static void test_temperatures_whose_inverse_overflows_f32(void **state)
{
    (void)state;
    static const struct {
        softmax_dtype dtype;
        double x[5];
        size_t n;
        filters f;
    } cases[] = {
        {SOFTMAX_DTYPE_F64, {0.0, -1e-300, -3e-300, -INFINITY, -0.5e-300}, 5, {1e-300, 0, 1, 0}},
        {SOFTMAX_DTYPE_F64, {0.0, -1e-300, -3e-300, -INFINITY, -0.5e-300}, 5, {1e-300, 2, 1, 0}},
        {SOFTMAX_DTYPE_F64, {0.0, -1e-300, -3e-300, -INFINITY, -0.5e-300}, 5, {1e-300, 0, 0.7, 0}},
        {SOFTMAX_DTYPE_F64, {2e-300, 1e-300, 2e-300, 1.5e-300, -1.0}, 5, {1e-300, 0, 1, 0.4}},
        {SOFTMAX_DTYPE_F64, {3.0, 1.0, 3.0, 2.9, 3.0 - 1e-16 * 3}, 5, {1e-16, 0, 1, 0}}, /* T > 2.9e-39: unchanged */
        {SOFTMAX_DTYPE_F32, {0.0, -1e-40, -3e-40, -INFINITY, -0.5e-40}, 5, {1e-40, 0, 1, 0}},
        {SOFTMAX_DTYPE_F32, {0.0, -1e-40, -3e-40, -INFINITY, -0.5e-40}, 5, {1e-40, 0, 0.7, 0}},
        {SOFTMAX_DTYPE_BF16, {0.0, -1e-39, -3e-39, -INFINITY, -0.5e-39}, 5, {1e-39, 0, 1, 0}},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        const softmax_dtype dt = cases[c].dtype;
        const size_t n = cases[c].n;
        check_distribution(dt, cases[c].x, n, cases[c].f, 2000, 50, 61 + c);
        check_logsumexp_of_scaled(dt, cases[c].x, n, cases[c].f, c);
    }
}

static void test_rows_without_a_distribution(void **state)
{
    (void)state;
    const size_t n = 40;
    for (size_t d = 0; d < ARRAY_LEN(all_types); d++) {
        softmax_dtype dt = all_types[d];
        double x[4 * 40];
        for (size_t i = 0; i < 4 * n; i++)
            x[i] = (double)(i % 7) * 0.5;
        for (size_t i = 0; i < n; i++)
            x[n + i] = -INFINITY; /* row 1: fully masked */
        x[3 * n + 17] = NAN;      /* row 3: a NaN */
        void *logits = logits_of(dt, x, 4 * n);
        for (int greedy = 0; greedy < 2; greedy++) {
            softmax_sampler_params params;
            softmax_sampler_params_init(&params);
            params.temperature = greedy ? 0.0 : 1.0;
            params.top_p = 0.9;
            int64_t indices[4];
            double probs[4], lse[4];
            int status = softmax_sample(&params, dt, logits, 4, n, 0, NULL, indices, probs, lse);
            assert_int_equal(status, SOFTMAX_E_NO_FINITE_LOGIT);
            assert_non_null(strstr(softmax_last_error(), "row 1"));
            assert_int_equal(indices[1], -1);
            assert_int_equal(indices[3], -1);
            assert_true(isnan(probs[1]) && isnan(probs[3]) && isnan(lse[1]) && isnan(lse[3]));
            assert_true(indices[0] >= 0 && indices[2] >= 0 && probs[0] > 0 && probs[2] > 0);
        }
        free(logits);
    }
    /* vocab == 0: no logit at all. */
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    int64_t indices[2] = {5, 5};
    assert_int_equal(softmax_sample(&params, SOFTMAX_DTYPE_F32, NULL, 2, 0, 0, NULL, indices, NULL, NULL),
                     SOFTMAX_E_NO_FINITE_LOGIT);
    assert_true(indices[0] == -1 && indices[1] == -1);
    /* rows == 0: nothing to do, nothing written. */
    assert_int_equal(softmax_sample(&params, SOFTMAX_DTYPE_F32, NULL, 0, 10, 0, NULL, NULL, NULL, NULL), SOFTMAX_OK);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    const float x[3] = {1, 2, 3};
    int64_t index = 42;
    double prob = 42, lse = 42;
    softmax_sampler_params good;
    softmax_sampler_params_init(&good);
    struct {
        const char *what;
        softmax_sampler_params params;
        int status;
    } cases[16];
    size_t count = 0;
#define BAD(field, value, code)                                                                                        \
    do {                                                                                                               \
        cases[count].what = #field " = " #value;                                                                       \
        cases[count].params = good;                                                                                    \
        cases[count].params.field = value;                                                                             \
        cases[count++].status = code;                                                                                  \
    } while (0)
    BAD(temperature, -1.0, SOFTMAX_E_INVALID_PARAMETER);
    BAD(temperature, -0.0 - 1e-300, SOFTMAX_E_INVALID_PARAMETER);
    BAD(temperature, NAN, SOFTMAX_E_INVALID_PARAMETER);
    BAD(temperature, -INFINITY, SOFTMAX_E_INVALID_PARAMETER);
    BAD(top_k, -1, SOFTMAX_E_INVALID_PARAMETER);
    BAD(top_p, 0.0, SOFTMAX_E_INVALID_PARAMETER);
    BAD(top_p, 1.5, SOFTMAX_E_INVALID_PARAMETER);
    BAD(top_p, NAN, SOFTMAX_E_INVALID_PARAMETER);
    BAD(min_p, -0.1, SOFTMAX_E_INVALID_PARAMETER);
    BAD(min_p, 1.01, SOFTMAX_E_INVALID_PARAMETER);
    BAD(min_p, NAN, SOFTMAX_E_INVALID_PARAMETER);
    BAD(reserved[0], 1, SOFTMAX_E_UNSUPPORTED);
    BAD(reserved[3], 1, SOFTMAX_E_UNSUPPORTED);
#undef BAD
    for (size_t c = 0; c < count; c++) {
        int status = softmax_sample(&cases[c].params, SOFTMAX_DTYPE_F32, x, 1, 3, 0, NULL, &index, &prob, &lse);
        if (status != cases[c].status)
            fail_msg("%s: status %d, expected %d", cases[c].what, status, cases[c].status);
        assert_true(strlen(softmax_last_error()) > 0);
        assert_true(index == 42 && prob == 42 && lse == 42); /* nothing written */
    }
    assert_int_equal(softmax_sample(NULL, SOFTMAX_DTYPE_F32, x, 1, 3, 0, NULL, &index, NULL, NULL),
                     SOFTMAX_E_NULL_POINTER);
    assert_int_equal(softmax_sample(&good, SOFTMAX_DTYPE_F32, NULL, 1, 3, 0, NULL, &index, NULL, NULL),
                     SOFTMAX_E_NULL_POINTER);
    assert_int_equal(softmax_sample(&good, SOFTMAX_DTYPE_F32, x, 1, 3, 0, NULL, NULL, NULL, NULL),
                     SOFTMAX_E_NULL_POINTER);
    assert_int_equal(softmax_sample(&good, (softmax_dtype)99, x, 1, 3, 0, NULL, &index, NULL, NULL),
                     SOFTMAX_E_INVALID_DTYPE);
    assert_int_equal(softmax_sample(&good, SOFTMAX_DTYPE_F32, x, SIZE_MAX / 2, 3, 0, NULL, &index, NULL, NULL),
                     SOFTMAX_E_SIZE_OVERFLOW);
    assert_true(index == 42);
    assert_int_equal(softmax_sampler_params_init(NULL), SOFTMAX_E_NULL_POINTER);
    /* The boundaries themselves are valid. */
    softmax_sampler_params edge = good;
    edge.top_p = 1.0;
    edge.min_p = 1.0;
    edge.top_k = INT64_MAX;
    edge.temperature = INFINITY;
    assert_int_equal(softmax_sample(&edge, SOFTMAX_DTYPE_F32, x, 1, 3, 0, NULL, &index, &prob, NULL), SOFTMAX_OK);
    assert_true(index >= 0 && index < 3); /* T = inf: min-p 1 keeps all (equal weights) */
    edge.temperature = 1.0;
    assert_int_equal(softmax_sample(&edge, SOFTMAX_DTYPE_F32, x, 1, 3, 0, NULL, &index, &prob, NULL), SOFTMAX_OK);
    assert_int_equal(index, 2); /* min-p 1 keeps only the max */
    assert_true(prob == 1.0);
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_uniform_definition),
        cmocka_unit_test(test_chi_square_small_vocabulary),
        cmocka_unit_test(test_chi_square_data_types),
        cmocka_unit_test(test_chi_square_large_vocabulary),
        cmocka_unit_test(test_threads_and_batch_composition),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_special_logits),
        cmocka_unit_test(test_f64_rows_beyond_f32_at_large_temperatures),
        cmocka_unit_test(test_f32_rows_beyond_f32_at_large_temperatures),
        cmocka_unit_test(test_temperatures_whose_inverse_overflows_f32),
        cmocka_unit_test(test_rows_without_a_distribution),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests_name("sample", tests, NULL, NULL);
}
