/*
 * summary_sample.c -- sampling over a vocabulary split into slices, with
 * the same token for any split: an exponential race (Gumbel-max) whose
 * noise is keyed by the global column, so that the draw is a (score,
 * column) max-reduction; top-k from the merged candidates; top-p from an
 * exact radix search over (logit, column) keys with integer masses; min-p
 * per element. Every decision is a function of one column or of exact
 * integer sums, never of a rounded sum whose rounding depends on the split.
 */
#include <stdlib.h>
#include <string.h>

#include "summary_internal.h"

typedef unsigned __int128 u128;

/* Above every -log(-log(u)) for u < 1 - 2^-54 (the largest is about 37.4). */
#define GUMBEL_BOUND 40.0

static int check_params(const char *fn, const softmax_sampler_params *p)
{
    RETURN_ERROR_IF(p == NULL, SOFTMAX_E_NULL_POINTER, "%s: params is NULL", fn);
    for (size_t i = 0; i < sizeof p->reserved / sizeof p->reserved[0]; i++)
        RETURN_ERROR_IF(p->reserved[i] != 0, SOFTMAX_E_UNSUPPORTED, "%s: params->reserved[%zu] is not zero", fn, i);
    RETURN_ERROR_IF(!(p->temperature >= 0.0), SOFTMAX_E_INVALID_PARAMETER, "%s: temperature %g is not >= 0", fn,
                    p->temperature);
    RETURN_ERROR_IF(p->top_k < 0, SOFTMAX_E_INVALID_PARAMETER, "%s: top_k %lld is negative", fn, (long long)p->top_k);
    RETURN_ERROR_IF(!(p->top_p > 0.0 && p->top_p <= 1.0), SOFTMAX_E_INVALID_PARAMETER, "%s: top_p %g is not in (0, 1]",
                    fn, p->top_p);
    RETURN_ERROR_IF(!(p->min_p >= 0.0 && p->min_p <= 1.0), SOFTMAX_E_INVALID_PARAMETER, "%s: min_p %g is not in [0, 1]",
                    fn, p->min_p);
    return SOFTMAX_OK;
}

static int top_k_on(const softmax_sampler_params *p, uint64_t vocab)
{
    return p->top_k > 0 && (uint64_t)p->top_k < vocab;
}

int softmax_sample_rounds(const softmax_sampler_params *params, uint64_t vocab)
{
    softmax_clear_error();
    int status = check_params("softmax_sample_rounds", params);
    if (status != SOFTMAX_OK)
        return status;
    if (params->temperature == 0.0 || top_k_on(params, vocab))
        return 0;
    return SOFTMAX_SAMPLE_NEEDS_RACE | (params->top_p < 1.0 ? SOFTMAX_SAMPLE_NEEDS_TOP_P : 0);
}

size_t softmax_sample_capacity(const softmax_sampler_params *params, uint64_t vocab)
{
    return params != NULL && top_k_on(params, vocab) ? (size_t)params->top_k : 0;
}

int softmax_sample_summarize(const softmax_sampler_params *params, const softmax_slice *slice, void *summaries)
{
    static const char fn[] = "softmax_sample_summarize";
    softmax_clear_error();
    int status = check_params(fn, params);
    if (status != SOFTMAX_OK)
        return status;
    RETURN_ERROR_IF(slice == NULL, SOFTMAX_E_NULL_POINTER, "%s: slice is NULL", fn);
    return summary_compute(fn, slice, 1.0, softmax_sample_capacity(params, slice->vocab), 0, summaries);
}

/* A row has a distribution: no NaN, some logit above -inf. */
static int row_ok(const softmax_summary *s)
{
    return s->count_nan == 0 && s->count_kept > 0 && s->ref > -INFINITY;
}

/* The scaled log-weight d = (x - M) / T of a logit (M = the row's max). */
static double log_weight(double x, double max, double inv_temperature)
{
    if (x == -INFINITY)
        return -INFINITY;
    if (x == max)
        return 0.0;
    if (max == INFINITY)
        return -INFINITY;
    if (inv_temperature == 0.0)
        return 0.0;
    const double difference = x - max;
    if (isinf(difference) && isfinite(x)) /* overflows f64 though 1/T may bring it back: exact halves */
        return ((0.5 * x - 0.5 * max) * inv_temperature) * 2.0;
    return difference * inv_temperature;
}

/* Q = floor(exp(d) * 2^62): the exact integer mass top-p counts. */
static uint64_t integer_mass(double d)
{
    if (!(d > -INFINITY))
        return 0;
    return (uint64_t)floor(ldexp(exp(d), 62));
}

/* The 96-bit key: logit descending, then column ascending. */
static u128 order_key(double x, uint64_t column)
{
    if (x == 0.0)
        x = 0.0;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = (bits >> 63) ? ~bits : bits | (UINT64_C(1) << 63);
    return ((u128)bits << 32) | (uint32_t)(UINT32_MAX - (uint32_t)column);
}

static u128 load128(const uint64_t w[2])
{
    return ((u128)w[1] << 64) | w[0];
}

static void store128(uint64_t w[2], u128 v)
{
    w[0] = (uint64_t)v;
    w[1] = (uint64_t)(v >> 64);
}

/* ceil(p * total) exactly, for p in (0, 1] and total < 2^127. */
static u128 ceil_fraction(double p, u128 total)
{
    int exponent;
    double m = frexp(p, &exponent); /* p = m 2^exponent, m in [0.5, 1) */
    uint64_t mantissa = (uint64_t)ldexp(m, 53);
    int shift = 53 - exponent; /* p = mantissa 2^-shift, shift >= 53 */
    /* product = total * mantissa, 192 bits: hi:mid:lo. */
    u128 lo_part = (u128)(uint64_t)total * mantissa;
    u128 hi_part = (u128)(uint64_t)(total >> 64) * mantissa;
    uint64_t w0 = (uint64_t)lo_part;
    u128 carry = (lo_part >> 64) + (uint64_t)hi_part;
    uint64_t w1 = (uint64_t)carry;
    uint64_t w2 = (uint64_t)((carry >> 64) + (hi_part >> 64));
    /* Shift right by `shift`, rounding up. */
    const uint64_t words[3] = {w0, w1, w2};
    if (shift >= 192)
        return (w0 | w1 | w2) != 0;
    int word_shift = shift / 64, bit_shift = shift % 64;
    int any_low = 0;
    for (int i = 0; i < word_shift; i++)
        any_low |= words[i] != 0;
    if (bit_shift > 0)
        any_low |= (words[word_shift] & ((UINT64_C(1) << bit_shift) - 1)) != 0;
    uint64_t result[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        int source = i + word_shift;
        if (source > 2)
            break;
        uint64_t v = words[source] >> bit_shift;
        if (bit_shift > 0 && source + 1 <= 2)
            v |= words[source + 1] << (64 - bit_shift);
        result[i] = v;
    }
    return load128(result) + (any_low ? 1 : 0);
}

/* The uniform noise of a row: k = philox(step, stream; seed). */
typedef struct row_noise {
    uint32_t counter_high[2];
    uint32_t key[2];
} row_noise;

static row_noise noise_of_row(uint64_t seed, uint64_t stream, uint64_t step)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t counter[4] = {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t out[4];
    softmax_philox4x32_10(counter, key, out);
    return (row_noise){{out[0], out[1]}, {out[2], out[3]}};
}

/* The Gumbel noise of a column, -log(-log(u)), from the pair of words of
 * philox({c / 2, k[0], k[1]}; {k[2], k[3]}) that belongs to c. cache holds
 * the block of the last pair computed. */
typedef struct noise_cache {
    uint64_t pair;
    uint32_t out[4];
    int valid;
} noise_cache;

static double column_uniform(const row_noise *noise, uint64_t column, noise_cache *cache)
{
    uint64_t pair = column >> 1;
    if (!cache->valid || cache->pair != pair) {
        const uint32_t counter[4] = {(uint32_t)pair, (uint32_t)(pair >> 32), noise->counter_high[0],
                                     noise->counter_high[1]};
        softmax_philox4x32_10(counter, noise->key, cache->out);
        cache->pair = pair;
        cache->valid = 1;
    }
    const uint32_t *w = cache->out + ((column & 1) ? 2 : 0);
    uint64_t word = ((uint64_t)w[1] << 32) | w[0];
    return ((double)(word >> 11) + 0.5) * 0x1p-53;
}

static double gumbel_of(double u)
{
    return -log(-log(u));
}

static double gumbel(const row_noise *noise, uint64_t column, noise_cache *cache)
{
    return gumbel_of(column_uniform(noise, column, cache));
}

/* Whether a column of log-weight d and uniform u certainly scores below
 * best, without the two logarithms: d + g(u) < best - margin holds when
 * u <= exp(-exp(-a)), a = best - d - margin, and 1 - 1 / (1 + a + a^2/2 +
 * a^3/6) is below exp(-exp(-a)) (from exp(a) >= 1 + a + a^2/2 + a^3/6 and
 * exp(-y) >= 1 - y). The margin, 2^-30 of the magnitudes, is far above
 * the rounding of d + g, so a column skipped here could neither win nor
 * tie: the draw is the one computing every score would give. */
static int certainly_below(double d, double u, double best)
{
    double a = best - d - 0x1p-30 * (1.0 + fabs(best) + fabs(d));
    if (!(a > 0.0))
        return 0;
    double bound = 1.0 - 1.0 / (1.0 + a * (1.0 + a * (0.5 + a * (1.0 / 6.0))));
    return u <= bound * (1.0 - 0x1p-40);
}

static uint64_t stream_of(const uint64_t *stream_ids, size_t r)
{
    return stream_ids != NULL ? stream_ids[r] : (uint64_t)r;
}

/* Checks params, records and their number of columns. */
static int check_sampling(const char *fn, const softmax_sampler_params *params, const void *merged, size_t rows,
                          size_t *bytes)
{
    int status = check_params(fn, params);
    if (status != SOFTMAX_OK)
        return status;
    status = summary_check_records(fn, merged, rows, bytes);
    if (status != SOFTMAX_OK)
        return status;
    for (size_t r = 0; r < rows; r++) {
        const softmax_summary *s = summary_const_record(merged, *bytes, r);
        RETURN_ERROR_IF(!(s->scale >= 0.0), SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: record %zu was computed with scale %g; sampling needs scale >= 0", fn, r, s->scale);
        RETURN_ERROR_IF(top_k_on(params, s->columns) && s->top_k < (uint64_t)params->top_k, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: top_k %lld needs records of capacity >= top_k (have %u)", fn, (long long)params->top_k,
                        s->top_k);
    }
    return SOFTMAX_OK;
}

/* check_sampling of the records that go with a slice, the slice checked
 * first. */
static int check_slice_sampling(const char *fn, const softmax_sampler_params *params, const softmax_slice *slice,
                                const void *merged, size_t *bytes)
{
    int status = summary_check_slice(fn, slice);
    if (status == SOFTMAX_OK)
        status = check_sampling(fn, params, merged, slice->rows, bytes);
    if (status != SOFTMAX_OK)
        return status;
    /* A slice's own records (not merged) hold its own max and candidates:
     * the race and the rounds would run against them without a sign. */
    for (size_t r = 0; r < slice->rows; r++) {
        const softmax_summary *s = summary_const_record(merged, *bytes, r);
        RETURN_ERROR_IF(s->columns != slice->vocab, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: record %zu covers %llu columns, not the vocabulary of %llu (not fully merged?)", fn, r,
                        (unsigned long long)s->columns, (unsigned long long)slice->vocab);
    }
    return SOFTMAX_OK;
}

/* ---------------------------------------------------------------------------
 * Top-p search.
 * ------------------------------------------------------------------------ */

enum { SEARCHING = 0, FOUND = 1, NOT_NEEDED = 2 };

static u128 prefix_of(const softmax_top_p_search *s)
{
    return ((u128)s->key_hi << 64) | s->key_lo;
}

/* Whether a row's search is the state softmax_top_p_start and _narrow
 * make: searching with fewer than 96 bits fixed, found with all 96, or not
 * needed; the prefix no wider than its bits. (The bits feed shifts of
 * 96 - bits.) */
static int search_is_valid(const softmax_top_p_search *s)
{
    if (s->state == NOT_NEEDED)
        return 1;
    if (!(s->state == SEARCHING ? s->bits < 96 : s->state == FOUND && s->bits == 96))
        return 0;
    return s->bits == 0 ? s->key_hi == 0 && s->key_lo == 0 : (prefix_of(s) >> s->bits) == 0;
}

/* Whether row r of a sampling step needs the top-p search. */
static int top_p_needed(const softmax_sampler_params *params, const softmax_summary *s)
{
    return params->temperature > 0.0 && params->top_p < 1.0 && !top_k_on(params, s->columns) && row_ok(s);
}

int softmax_top_p_start(const softmax_sampler_params *params, const void *merged, size_t rows,
                        softmax_top_p_search *search)
{
    static const char fn[] = "softmax_top_p_start";
    softmax_clear_error();
    size_t bytes;
    int status = check_sampling(fn, params, merged, rows, &bytes);
    if (status != SOFTMAX_OK)
        return status;
    RETURN_ERROR_IF(rows > 0 && search == NULL, SOFTMAX_E_NULL_POINTER, "%s: search is NULL", fn);
    RETURN_ERROR_IF(bytes_overlap(search, rows * sizeof *search, merged, rows * bytes), SOFTMAX_E_OVERLAP,
                    "%s: search overlaps the records", fn);
    for (size_t r = 0; r < rows; r++) {
        const softmax_summary *s = summary_const_record(merged, bytes, r);
        memset(&search[r], 0, sizeof search[r]);
        search[r].state = top_p_needed(params, s) ? SEARCHING : NOT_NEEDED;
        memcpy(&search[r].target[0], &params->top_p, sizeof params->top_p); /* until the total is known */
    }
    return SOFTMAX_OK;
}

/* The bits a round splits: `width` bits below the `bits` fixed ones. */
static unsigned round_width(unsigned bits)
{
    return 96 - bits < 6 ? 96 - bits : 6;
}

static u128 key_of_words(const uint64_t w[2])
{
    return ((u128)w[1] << 64) | w[0];
}

int softmax_top_p_histogram(const softmax_sampler_params *params, const softmax_slice *slice, const void *merged,
                            const softmax_top_p_search *search, softmax_top_p_bin *bins)
{
    static const char fn[] = "softmax_top_p_histogram";
    softmax_clear_error();
    size_t bytes;
    int status = check_slice_sampling(fn, params, slice, merged, &bytes);
    if (status != SOFTMAX_OK || slice->rows == 0)
        return status;
    RETURN_ERROR_IF(search == NULL || bins == NULL, SOFTMAX_E_NULL_POINTER, "%s: search or bins is NULL", fn);
    for (size_t r = 0; r < slice->rows; r++)
        RETURN_ERROR_IF(!search_is_valid(&search[r]), SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: the search of row %zu is not a valid state", fn, r);
    RETURN_ERROR_IF(slice->rows > SIZE_MAX / (SOFTMAX_TOP_P_BINS * sizeof *bins), SOFTMAX_E_SIZE_OVERFLOW,
                    "%s: %zu rows of bins overflow", fn, slice->rows);
    const size_t bin_bytes = slice->rows * SOFTMAX_TOP_P_BINS * sizeof *bins;
    RETURN_ERROR_IF(summary_overlaps_slice(bins, bin_bytes, slice) ||
                        bytes_overlap(bins, bin_bytes, merged, slice->rows * bytes) ||
                        bytes_overlap(bins, bin_bytes, search, slice->rows * sizeof *search),
                    SOFTMAX_E_OVERLAP, "%s: bins overlap the slice, the records or the search", fn);
    memset(bins, 0, slice->rows * SOFTMAX_TOP_P_BINS * sizeof *bins);
    double inv_temperature = 1.0 / params->temperature;
    size_t n = slice->cols;
    int threads = summary_threads(slice);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t r = 0; r < slice->rows; r++) {
        double buffer[SUMMARY_CHUNK];
        const softmax_top_p_search *sr = &search[r];
        if (sr->state != SEARCHING || n == 0)
            continue;
        const softmax_summary *s = summary_const_record(merged, bytes, r);
        softmax_top_p_bin *row_bins = bins + r * SOFTMAX_TOP_P_BINS;
        unsigned fixed = sr->bits, width = round_width(fixed);
        u128 prefix = prefix_of(sr);
        for (size_t begin = 0, count; (count = summary_read_chunk(slice, r, begin, buffer)) > 0; begin += count) {
            for (size_t i = 0; i < count; i++) {
                double x = buffer[i];
                if (x == -INFINITY)
                    continue;
                u128 key = order_key(x, slice->col_offset + begin + i);
                if (fixed > 0 && (key >> (96 - fixed)) != prefix)
                    continue;
                unsigned b = (unsigned)(key >> (96 - fixed - width)) & ((1u << width) - 1);
                softmax_top_p_bin *bin = &row_bins[b];
                store128(bin->mass, load128(bin->mass) + integer_mass(log_weight(x, s->ref, inv_temperature)));
                if (bin->count++ == 0 || key < key_of_words(bin->min_key))
                    store128(bin->min_key, key);
                if (bin->count == 1 || key > key_of_words(bin->max_key))
                    store128(bin->max_key, key);
            }
        }
    }
    return SOFTMAX_OK;
}

int softmax_top_p_bins_merge(softmax_top_p_bin *inout, const softmax_top_p_bin *in, size_t rows)
{
    softmax_clear_error();
    RETURN_ERROR_IF(rows > 0 && (inout == NULL || in == NULL), SOFTMAX_E_NULL_POINTER,
                    "softmax_top_p_bins_merge: bins are NULL");
    RETURN_ERROR_IF(rows > SIZE_MAX / (SOFTMAX_TOP_P_BINS * sizeof *in), SOFTMAX_E_SIZE_OVERFLOW,
                    "softmax_top_p_bins_merge: %zu rows overflow", rows);
    /* in == inout would double the masses; a shifted in adds merged bins. */
    RETURN_ERROR_IF(
        bytes_overlap(inout, rows * SOFTMAX_TOP_P_BINS * sizeof *in, in, rows * SOFTMAX_TOP_P_BINS * sizeof *in),
        SOFTMAX_E_OVERLAP, "softmax_top_p_bins_merge: inout and in share bytes");
    for (size_t i = 0; i < rows * SOFTMAX_TOP_P_BINS; i++) {
        const softmax_top_p_bin *b = &in[i];
        softmax_top_p_bin *a = &inout[i];
        if (b->count == 0)
            continue;
        if (a->count == 0) {
            *a = *b;
            continue;
        }
        store128(a->mass, load128(a->mass) + load128(b->mass));
        a->count += b->count;
        if (key_of_words(b->min_key) < key_of_words(a->min_key))
            memcpy(a->min_key, b->min_key, sizeof a->min_key);
        if (key_of_words(b->max_key) > key_of_words(a->max_key))
            memcpy(a->max_key, b->max_key, sizeof a->max_key);
    }
    return SOFTMAX_OK;
}

/* Leading bits two different 96-bit keys share. */
static unsigned common_bits(u128 a, u128 b)
{
    unsigned bits = 0;
    for (u128 diff = a ^ b; bits < 96 && !((diff >> (95 - bits)) & 1); bits++)
        ;
    return bits;
}

/* One round of a row's search (state SEARCHING, valid) with its merged
 * bins into *out (NULL: only the check). The top-p fraction travels with
 * the search: stored in target until the first round knows the total.
 * Refuses bins that cannot be this round's -- the bin reaching the mass
 * must hold keys under the fixed prefix and in that bin -- since narrowing
 * to their keys would move the search backwards (no progress: the
 * protocol's loop would never end) or to a column that does not exist. */
static int narrow_row(const softmax_top_p_search *s, const softmax_top_p_bin *bins, softmax_top_p_search *out)
{
    const unsigned fixed = s->bits, width = round_width(fixed);
    u128 above = load128(s->above), target;
    if (fixed == 0) {
        u128 total = 0;
        for (int b = 0; b < SOFTMAX_TOP_P_BINS; b++) {
            u128 mass = load128(bins[b].mass);
            if (mass > ~(u128)0 / 2 - total) /* (real masses stay below 2^94) */
                return SOFTMAX_E_INVALID_ARGUMENT;
            total += mass;
        }
        double top_p;
        memcpy(&top_p, &s->target[0], sizeof top_p);
        if (!(top_p > 0.0 && top_p <= 1.0) || s->target[1] != 0)
            return SOFTMAX_E_INVALID_ARGUMENT;
        target = ceil_fraction(top_p, total);
        if (target == 0)
            target = 1;
    } else {
        target = load128(s->target);
    }
    int chosen = -1;
    for (int b = (1 << width) - 1; b >= 0; b--) {
        u128 mass = load128(bins[b].mass);
        if (bins[b].count > 0 && above + mass >= target) {
            chosen = b;
            break;
        }
        above += mass;
    }
    if (chosen < 0)
        return SOFTMAX_E_INVALID_ARGUMENT; /* the bins do not reach the searched mass */
    const softmax_top_p_bin *bin = &bins[chosen];
    u128 low = key_of_words(bin->min_key), high = key_of_words(bin->max_key);
    const u128 bin_prefix = (prefix_of(s) << width) | (unsigned)chosen;
    const unsigned shift = 96 - fixed - width;
    if ((low >> 96) != 0 || (high >> 96) != 0 || low > high || (low >> shift) != bin_prefix ||
        (high >> shift) != bin_prefix)
        return SOFTMAX_E_INVALID_ARGUMENT;
    if (out == NULL)
        return SOFTMAX_OK;
    *out = *s;
    if (fixed == 0)
        store128(out->target, target);
    /* Keys are unique: one key left is the boundary itself. */
    unsigned bits = bin->count == 1 || low == high ? 96 : common_bits(low, high);
    out->bits = bits;
    u128 prefix = low >> (96 - bits);
    out->key_hi = (uint64_t)(prefix >> 64);
    out->key_lo = (uint64_t)prefix;
    store128(out->above, above);
    out->state = bits == 96 ? FOUND : SEARCHING;
    return SOFTMAX_OK;
}

int softmax_top_p_narrow(softmax_top_p_search *search, const softmax_top_p_bin *merged_bins, size_t rows)
{
    static const char fn[] = "softmax_top_p_narrow";
    softmax_clear_error();
    RETURN_ERROR_IF(rows > 0 && (search == NULL || merged_bins == NULL), SOFTMAX_E_NULL_POINTER,
                    "%s: search or bins is NULL", fn);
    RETURN_ERROR_IF(rows > SIZE_MAX / (SOFTMAX_TOP_P_BINS * sizeof *merged_bins), SOFTMAX_E_SIZE_OVERFLOW,
                    "%s: %zu rows of bins overflow", fn, rows);
    RETURN_ERROR_IF(
        bytes_overlap(search, rows * sizeof *search, merged_bins, rows * SOFTMAX_TOP_P_BINS * sizeof *merged_bins),
        SOFTMAX_E_OVERLAP, "%s: search overlaps the bins", fn);
    /* Every row is checked before any search moves: nothing is written on
     * error. */
    for (size_t r = 0; r < rows; r++) {
        RETURN_ERROR_IF(!search_is_valid(&search[r]), SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: the search of row %zu is not a valid state", fn, r);
        RETURN_ERROR_IF(search[r].state == SEARCHING &&
                            narrow_row(&search[r], merged_bins + r * SOFTMAX_TOP_P_BINS, NULL) != SOFTMAX_OK,
                        SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: row %zu: the bins are not this round's (they do not reach the searched mass, or "
                        "hold keys outside the search's prefix: bins of another round or row?)",
                        fn, r);
    }
    int searching = 0;
    for (size_t r = 0; r < rows; r++) {
        if (search[r].state != SEARCHING)
            continue;
        narrow_row(&search[r], merged_bins + r * SOFTMAX_TOP_P_BINS, &search[r]);
        searching += search[r].state == SEARCHING;
    }
    return searching;
}

/* Whether a key is in the kept prefix of a finished search. */
static int top_p_keeps(const softmax_top_p_search *s, u128 key)
{
    if (s == NULL || s->state != FOUND)
        return 1;
    return (key >> (96 - s->bits)) >= prefix_of(s);
}

/* ---------------------------------------------------------------------------
 * The race.
 * ------------------------------------------------------------------------ */

int softmax_sample_race(const softmax_sampler_params *params, const softmax_slice *slice, const void *merged,
                        const softmax_top_p_search *search, uint64_t step, const uint64_t *stream_ids,
                        softmax_draw *draws)
{
    static const char fn[] = "softmax_sample_race";
    softmax_clear_error();
    size_t bytes;
    int status = check_slice_sampling(fn, params, slice, merged, &bytes);
    if (status != SOFTMAX_OK || slice->rows == 0)
        return status;
    RETURN_ERROR_IF(draws == NULL, SOFTMAX_E_NULL_POINTER, "%s: draws is NULL", fn);
    RETURN_ERROR_IF(params->top_p < 1.0 && search == NULL && !top_k_on(params, slice->vocab) &&
                        params->temperature > 0.0,
                    SOFTMAX_E_NULL_POINTER, "%s: top_p < 1 needs the finished top-p search", fn);
    const size_t rows = slice->rows, draw_bytes = rows * sizeof *draws;
    RETURN_ERROR_IF(
        summary_overlaps_slice(draws, draw_bytes, slice) || bytes_overlap(draws, draw_bytes, merged, rows * bytes) ||
            bytes_overlap(draws, draw_bytes, search, search != NULL ? rows * sizeof *search : 0) ||
            bytes_overlap(draws, draw_bytes, stream_ids, stream_ids != NULL ? rows * sizeof *stream_ids : 0),
        SOFTMAX_E_OVERLAP, "%s: draws overlap an input", fn);
    /* The search must be the one softmax_top_p_start made for these params
     * and records, finished: one started for other params (top_p 1, or
     * another top_k) would silently keep every column, or drop some. */
    for (size_t r = 0; r < rows && search != NULL; r++) {
        const softmax_top_p_search *sr = &search[r];
        RETURN_ERROR_IF(!search_is_valid(sr), SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: the search of row %zu is not a valid state", fn, r);
        RETURN_ERROR_IF(sr->state == SEARCHING, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: the top-p search of row %zu is not finished", fn, r);
        RETURN_ERROR_IF((sr->state == FOUND) != top_p_needed(params, summary_const_record(merged, bytes, r)),
                        SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: the top-p search of row %zu was started for other parameters (top_p, top_k or "
                        "temperature)",
                        fn, r);
    }
    double inv_temperature = 1.0 / params->temperature;
    size_t n = slice->cols;
    int threads = summary_threads(slice);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t r = 0; r < slice->rows; r++) {
        double buffer[SUMMARY_CHUNK];
        draws[r] = (softmax_draw){-INFINITY, -1};
        const softmax_summary *s = summary_const_record(merged, bytes, r);
        if (params->temperature == 0.0 || top_k_on(params, s->columns) || !row_ok(s) || n == 0)
            continue;
        const softmax_top_p_search *sr = search != NULL ? &search[r] : NULL;
        row_noise noise = noise_of_row(params->seed, stream_of(stream_ids, r), step);
        noise_cache cache = {0, {0, 0, 0, 0}, 0};
        double best = -INFINITY;
        int64_t best_column = -1;
        for (size_t begin = 0, count; (count = summary_read_chunk(slice, r, begin, buffer)) > 0; begin += count) {
            for (size_t i = 0; i < count; i++) {
                double d = log_weight(buffer[i], s->ref, inv_temperature);
                if (!(d > -INFINITY) || d + GUMBEL_BOUND < best)
                    continue; /* masked, or cannot reach the best score */
                uint64_t column = slice->col_offset + begin + i;
                if (!top_p_keeps(sr, order_key(buffer[i], column)))
                    continue;
                if (params->min_p > 0.0 && !(exp(d) >= params->min_p))
                    continue;
                double u = column_uniform(&noise, column, &cache);
                if (certainly_below(d, u, best))
                    continue;
                double score = d + gumbel_of(u);
                if (score > best) {
                    best = score;
                    best_column = (int64_t)column;
                }
            }
        }
        draws[r] = (softmax_draw){best, best_column};
    }
    return SOFTMAX_OK;
}

int softmax_draw_merge(softmax_draw *inout, const softmax_draw *in, size_t rows)
{
    softmax_clear_error();
    RETURN_ERROR_IF(rows > 0 && (inout == NULL || in == NULL), SOFTMAX_E_NULL_POINTER,
                    "softmax_draw_merge: draws are NULL");
    /* (in == inout is harmless: the max of a draw with itself.) */
    RETURN_ERROR_IF(inout != in && bytes_overlap(inout, rows * sizeof *in, in, rows * sizeof *in), SOFTMAX_E_OVERLAP,
                    "softmax_draw_merge: inout and in partially overlap");
    for (size_t r = 0; r < rows; r++) {
        if (in[r].column < 0)
            continue;
        if (inout[r].column < 0 || in[r].score > inout[r].score ||
            (in[r].score == inout[r].score && in[r].column < inout[r].column))
            inout[r] = in[r];
    }
    return SOFTMAX_OK;
}

/* Top-k (with top-p, min-p) from the merged candidates, then the race
 * among them. */
static int64_t draw_from_candidates(const softmax_sampler_params *params, const softmax_summary *s, uint64_t stream,
                                    uint64_t step)
{
    const softmax_candidate *c = summary_const_candidates(s);
    size_t k = (size_t)params->top_k < s->candidates ? (size_t)params->top_k : s->candidates;
    double inv_temperature = 1.0 / params->temperature;
    size_t kept = k;
    if (params->top_p < 1.0) {
        u128 total = 0;
        for (size_t i = 0; i < k; i++)
            total += integer_mass(log_weight(c[i].logit, s->ref, inv_temperature));
        u128 target = ceil_fraction(params->top_p, total), cumulative = 0;
        if (target == 0)
            target = 1;
        for (kept = 0; kept < k;) {
            cumulative += integer_mass(log_weight(c[kept].logit, s->ref, inv_temperature));
            kept++;
            if (cumulative >= target)
                break;
        }
    }
    row_noise noise = noise_of_row(params->seed, stream, step);
    noise_cache cache = {0, {0, 0, 0, 0}, 0};
    double best = -INFINITY;
    int64_t best_column = -1;
    for (size_t i = 0; i < kept; i++) {
        double d = log_weight(c[i].logit, s->ref, inv_temperature);
        if (!(d > -INFINITY))
            continue;
        if (params->min_p > 0.0 && !(exp(d) >= params->min_p))
            continue;
        cache.valid = 0;
        double score = d + gumbel(&noise, (uint64_t)c[i].column, &cache);
        if (score > best || (score == best && c[i].column < best_column)) {
            best = score;
            best_column = c[i].column;
        }
    }
    return best_column;
}

int softmax_sample_finish(const softmax_sampler_params *params, const void *merged, size_t rows,
                          const softmax_top_p_search *search, const softmax_draw *draws, uint64_t step,
                          const uint64_t *stream_ids, int64_t *indices)
{
    static const char fn[] = "softmax_sample_finish";
    softmax_clear_error();
    size_t bytes;
    int status = check_sampling(fn, params, merged, rows, &bytes);
    if (status != SOFTMAX_OK)
        return status;
    (void)search;
    RETURN_ERROR_IF(rows > 0 && indices == NULL, SOFTMAX_E_NULL_POINTER, "%s: indices is NULL", fn);
    const size_t index_bytes = rows * sizeof *indices;
    RETURN_ERROR_IF(
        bytes_overlap(indices, index_bytes, merged, rows * bytes) ||
            bytes_overlap(indices, index_bytes, draws, draws != NULL ? rows * sizeof *draws : 0) ||
            bytes_overlap(indices, index_bytes, stream_ids, stream_ids != NULL ? rows * sizeof *stream_ids : 0),
        SOFTMAX_E_OVERLAP, "%s: indices overlap an input", fn);
    int64_t failed = -1;
    for (size_t r = 0; r < rows; r++) {
        const softmax_summary *s = summary_const_record(merged, bytes, r);
        if (!row_ok(s))
            continue;
        if (params->temperature > 0.0 && !top_k_on(params, s->columns)) {
            RETURN_ERROR_IF(draws == NULL, SOFTMAX_E_NULL_POINTER,
                            "%s: the race's draws are needed (temperature > 0, no top-k)", fn);
            RETURN_ERROR_IF(draws[r].column < 0 || (uint64_t)draws[r].column >= s->columns, SOFTMAX_E_INVALID_ARGUMENT,
                            "%s: row %zu has no merged draw", fn, r);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        const softmax_summary *s = summary_const_record(merged, bytes, r);
        if (!row_ok(s)) {
            indices[r] = -1;
            if (failed < 0)
                failed = (int64_t)r;
        } else if (params->temperature == 0.0) {
            indices[r] = s->argmax;
        } else if (top_k_on(params, s->columns)) {
            indices[r] = draw_from_candidates(params, s, stream_of(stream_ids, r), step);
        } else {
            indices[r] = draws[r].column;
        }
    }
    RETURN_ERROR_IF(failed >= 0, SOFTMAX_E_NO_FINITE_LOGIT, "%s: row %lld has a NaN or no logit above -inf", fn,
                    (long long)failed);
    return SOFTMAX_OK;
}
