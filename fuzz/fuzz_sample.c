/*
 * fuzz_sample.c -- softmax_sample() (temperature including 0 and +inf,
 * top-k, top-p, min-p, seeds and streams) and softmax_row_stats()
 * (log-sum-exp, entropy, arg max), on every data type and hostile rows.
 *
 * Input: [kind][type][rows/flags][cols][parameters...][values...]. Checked
 * against the contract in softmax.h:
 *  - sampler: an invalid parameter, reserved field, dtype or NULL pointer
 *    fails with its status and writes nothing; a row with a NaN or without
 *    a logit above -inf gets index -1, prob NaN and logsumexp NaN, and the
 *    call then returns SOFTMAX_E_NO_FINITE_LOGIT (otherwise SOFTMAX_OK);
 *    every other index is in range and never a -inf logit, a +inf one if
 *    the row has any, an arg max for T = 0 (prob 1, logsumexp NaN), inside
 *    the top-k, top-p and min-p sets (up to rounding of the weights); with
 *    no filter the index is the bucket of u = softmax_sample_uniform(seed,
 *    stream, step) and prob and logsumexp match an oracle; the draws are
 *    the same when repeated, when each row is sampled alone with its stream
 *    (no dependence on the rest of the batch) and for 1 and 2 threads;
 *  - statistics: a NaN scale or unknown dtype fails and writes nothing;
 *    NaN rows give NaN, NaN and the first NaN; fully masked rows -inf, 0,
 *    0; cols == 0 -inf, 0, -1; the limits (scale 0, +-inf, +inf logits)
 *    exactly as documented; otherwise logsumexp within the documented 8 ulp,
 *    entropy within 16 ulp of entropy + 1 and in [0, log(cols)], logsumexp
 *    >= the largest scale * x, and an arg max that is a maximum.
 */
#include "fuzz_common.h"

enum { MAX_ROWS = 5, MAX_VOCAB = 96, BIG_ROWS = 2, BIG_VOCAB = 40000, BIG_ONE_IN = 16 };

static softmax_dtype decode_dtype(uint8_t b)
{
    static const softmax_dtype types[8] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16,
                                           SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_F32,  (softmax_dtype)0};
    return (b & 0xf8) == 0xf8 ? (softmax_dtype)(b & 1 ? 9 : 0) : types[b % 7];
}

/* Decodes `count` values of the type into buffer (valid types only). */
static void fill_values(fuzz_reader *r, softmax_dtype type, void *buffer, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        switch (type) {
        case SOFTMAX_DTYPE_F32: {
            const float v = take_f32(r);
            memcpy((char *)buffer + 4 * i, &v, 4);
            break;
        }
        case SOFTMAX_DTYPE_F64: {
            const double v = take_f64(r);
            memcpy((char *)buffer + 8 * i, &v, 8);
            break;
        }
        default: {
            const uint16_t v = take_half_bits(r, type);
            memcpy((char *)buffer + 2 * i, &v, 2);
            break;
        }
        }
    }
}

/* ---- the sampler ---- */

static double decode_temperature(fuzz_reader *r)
{
    static const double table[] = {1.0, 0.0, INFINITY, 0.5, 2.0, 1e-30, 1e-300, 1e300, 0.7, NAN, -1.0, -0.0, 3.0e-39};
    const uint8_t b = take_u8(r);
    if (b < 200)
        return table[b % (sizeof table / sizeof table[0])];
    return fabs(take_f64(r)); /* raw values, mostly valid */
}

static double decode_top_p(fuzz_reader *r)
{
    static const double table[] = {1.0, 0.5, 0.9, 0.1, 1e-9, 0.999999, 0.0, NAN, 1.5, -0.5, 0.25, 0.75};
    return table[take_u8(r) % (sizeof table / sizeof table[0])];
}

static double decode_min_p(fuzz_reader *r)
{
    static const double table[] = {0.0, 0.1, 0.5, 1.0, 0.01, 1e-9, -0.1, 1.5, NAN, 0.9, 0.3, 0.0};
    return table[take_u8(r) % (sizeof table / sizeof table[0])];
}

static int params_valid(const softmax_sampler_params *p)
{
    int valid = p->temperature >= 0 && p->top_k >= 0 && p->top_p > 0 && p->top_p <= 1 && p->min_p >= 0 && p->min_p <= 1;
    for (int i = 0; i < 4; i++)
        valid &= p->reserved[i] == 0;
    return valid;
}

/* The row's sampling facts, from the exact input values. */
typedef struct row_facts {
    int f64;
    int failed; /* NaN or nothing above -inf */
    double max;
    size_t first_max, plus_inf, above_minus_inf;
    /* An f64 row with a finite logit more than FLT_MAX below its finite
     * max, at a finite T > 0 (an f32 or bf16 row whose f32 difference
     * overflows, at a finite T > 2^121; any row at a finite T whose 1/T
     * overflows f32): divided by T in f64 before rounding to f32, then
     * sampled at T = 1 (softmax.h, "Arithmetic"). */
    int scaled;
    double temperature;
} row_facts;

static row_facts facts_of(softmax_dtype dtype, const double *x, size_t n)
{
    row_facts f = {dtype == SOFTMAX_DTYPE_F64, 0, -INFINITY, 0, 0, 0, 0, 1.0};
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        nan |= isnan(x[i]);
        if (x[i] > f.max) {
            f.max = x[i];
            f.first_max = i;
        }
        f.plus_inf += x[i] == INFINITY;
        f.above_minus_inf += x[i] > -INFINITY;
    }
    f.failed = nan || f.above_minus_inf == 0;
    return f;
}

/* x - max as the sampler's arithmetic has it: in f32 (f64 rows: the f64
 * difference rounded to f32, a finite logit kept finite however far from
 * the max). For f32 operands the f64 difference rounded to f32 is the f32
 * difference itself, overflow included: -1e30 - FLT_MAX rounds to -FLT_MAX,
 * not -inf, so such a logit keeps its weight. */
static float rounded_difference(double x, const row_facts *f)
{
    if (x == f->max)
        return 0.0f;
    if (f->scaled) { /* (x - max) / T, x / T - max / T where the difference overflows */
        const double difference = x - f->max;
        const double scaled = isfinite(difference) || !isfinite(x) ? difference / f->temperature
                                                                   : x / f->temperature - f->max / f->temperature;
        const float rounded = (float)scaled;
        return isfinite(x) && isinf(rounded) ? -FLT_MAX : rounded;
    }
    const float difference = (float)(x - f->max);
    return f->f64 && isfinite(x) && isinf(difference) ? -FLT_MAX : difference;
}

/* The key the filters rank by: that difference, flushed below the normal
 * range as the SIMD paths may. Ranking by it is coarser than by x, so the
 * checks built on it hold for either. */
static float rank_key(double x, const row_facts *f)
{
    if (f->plus_inf > 0) /* +inf logits: the others rank by value below them */
        return x == INFINITY ? 0.0f : x > -INFINITY ? -FLT_MAX : -INFINITY;
    const float key = rounded_difference(x, f);
    return fabsf(key) < FLT_MIN ? 0.0f : key;
}

/* Weight of x relative to the maximum (p_i / p_max) as the documented
 * arithmetic has it: exp((x - max) * (1/T)) with the difference and 1/T in
 * f32 (the exponential here in double). */
static double relative_weight(double x, const row_facts *f, double temperature)
{
    if (f->plus_inf > 0)
        return x == INFINITY ? 1.0 : 0.0;
    const float d = rounded_difference(x, f);
    if (f->scaled) /* already divided by T: the weights at T = 1 */
        return exp((double)d);
    const double inv = 1.0 / temperature; /* (rows whose 1/T overflows f32 are scaled, above) */
    if ((float)inv == 0.0f) /* T = +inf, or 1/T below f32: uniform over the logits above -inf */
        return x > -INFINITY ? 1.0 : 0.0;
    return exp((double)d * (double)(float)inv);
}

static void check_sample_row(const softmax_sampler_params *p, softmax_dtype dtype, const double *x, size_t n,
                             uint64_t stream, uint64_t step, int64_t index, const double *prob, const double *lse)
{
    row_facts f = facts_of(dtype, x, n);
    if (f.f64 && f.plus_inf == 0 && !f.failed && isfinite(p->temperature) && p->temperature > 0)
        for (size_t j = 0; j < n; j++)
            if (isfinite(x[j]) && !(f.max - x[j] <= (double)FLT_MAX))
                f.scaled = 1;
    /* f32 and bf16 rows likewise where the f32 difference overflows, at a
     * finite T > 2^121 (below it such a weight is under the least f32). */
    if (!f.f64 && f.plus_inf == 0 && !f.failed && isfinite(p->temperature) && p->temperature > 0x1p121)
        for (size_t j = 0; j < n; j++)
            if (isfinite(x[j]) && isinf((float)(x[j] - f.max)))
                f.scaled = 1;
    /* Every row at a finite T whose 1/T overflows f32. */
    if (f.plus_inf == 0 && !f.failed && isfinite(p->temperature) && p->temperature > 0 &&
        isinf((float)(1.0 / p->temperature)))
        f.scaled = 1;
    f.temperature = p->temperature;
    if (f.failed) {
        FUZZ_CHECK(index == -1, "sample: a row without distribution got index %lld", (long long)index);
        FUZZ_CHECK(prob == NULL || isnan(*prob), "sample: a failed row's prob is %g, not NaN", *prob);
        FUZZ_CHECK(lse == NULL || isnan(*lse), "sample: a failed row's logsumexp is %g, not NaN", *lse);
        return;
    }
    FUZZ_CHECK(index >= 0 && (size_t)index < n, "sample: index %lld outside [0, %zu)", (long long)index, n);
    const double xi = x[index];
    FUZZ_CHECK(xi > -INFINITY, "sample: drew a -inf (masked) logit at %lld", (long long)index);
    if (f.plus_inf > 0 && p->temperature > 0)
        FUZZ_CHECK(xi == INFINITY, "sample: the row has +inf logits but drew %g", xi);
    if (p->temperature == 0) {
        /* Greedy compares the values themselves (f64 too): the first maximum. */
        FUZZ_CHECK((size_t)index == f.first_max, "greedy: drew %lld (%g), the first maximum is %zu (%g)",
                   (long long)index, xi, f.first_max, f.max);
        FUZZ_CHECK(prob == NULL || *prob == 1.0, "greedy: prob %g, not 1", *prob);
        FUZZ_CHECK(lse == NULL || isnan(*lse), "greedy: logsumexp %g, not NaN", *lse);
        return;
    }
    FUZZ_CHECK(prob == NULL || (*prob > 0 && *prob <= 1.0), "sample: prob %g outside (0, 1]", *prob);
    const float key = rank_key(xi, &f);
    /* Elements certainly ranked before the drawn one: a larger key, or the
     * same value at a lower index. */
    size_t before = 0;
    double mass_before = 0.0, mass_topk = 0.0;
    const double wi = relative_weight(xi, &f, p->temperature);
    for (size_t j = 0; j < n; j++) {
        const float kj = rank_key(x[j], &f);
        const double wj = relative_weight(x[j], &f, p->temperature);
        if (kj > key || (x[j] == xi && j < (size_t)index)) {
            before++;
            mass_before += wj;
        }
    }
    if (p->top_k > 0)
        FUZZ_CHECK(before < (size_t)p->top_k, "top-k %lld: drew %lld with %zu elements ranked before it",
                   (long long)p->top_k, (long long)index, before);
    {
        /* The mass of the top-k set: the k largest weights (ties do not
         * change the sum). */
        double *w = malloc((n + 1) * sizeof *w);
        for (size_t j = 0; j < n; j++)
            w[j] = relative_weight(x[j], &f, p->temperature);
        const size_t k = p->top_k > 0 && (size_t)p->top_k < n ? (size_t)p->top_k : n;
        /* Partial selection: k passes are fine for the small rows here. */
        double total = 0.0;
        for (size_t pass = 0; pass < k && n <= MAX_VOCAB; pass++) {
            size_t best = n;
            for (size_t j = 0; j < n; j++)
                if (w[j] >= 0 && (best == n || w[j] > w[best]))
                    best = j;
            if (best == n)
                break;
            total += w[best];
            w[best] = -1.0;
        }
        mass_topk = total;
        free(w);
    }
    if (p->top_p < 1.0 && n <= MAX_VOCAB && mass_topk > 0) {
        /* The kept prefix stops once it reaches top_p: what comes before the
         * drawn element must not have reached it yet. The weights are the
         * sampler's f32 ones, so allow for their rounding. */
        const double share = mass_before / mass_topk;
        FUZZ_CHECK(share < p->top_p * (1 + 1e-5) + 1e-6,
                   "top-p %g: drew %lld although the %zu elements before it hold %.17g", p->top_p, (long long)index,
                   before, share);
    }
    if (p->min_p > 0 && !isinf(p->temperature))
        FUZZ_CHECK(wi >= p->min_p * (1 - 1e-5) - 1e-30, "min-p %g: drew %lld with relative weight %g", p->min_p,
                   (long long)index, wi);

    const int filters_off = (p->top_k == 0 || (size_t)p->top_k >= n) && p->top_p == 1.0 && p->min_p == 0.0;
    if (filters_off && n <= MAX_VOCAB) {
        /* No filter: the bucket of u among the cumulative weights. */
        const double u = softmax_sample_uniform(p->seed, stream, step);
        double total = 0.0, below = 0.0;
        for (size_t j = 0; j < n; j++) {
            const double w = relative_weight(x[j], &f, p->temperature);
            total += w;
            if (j < (size_t)index)
                below += w;
        }
        const double lo = below / total, hi = (below + wi) / total;
        FUZZ_CHECK(u >= lo - 1e-5 && u <= hi + 1e-5, "sample: u = %.17g drew %lld, whose bucket is [%.17g, %.17g)", u,
                   (long long)index, lo, hi);
        if (prob != NULL)
            FUZZ_CHECK(fabs(*prob - wi / total) <= 1e-5 * (wi / total) + 1e-30, "sample: prob %.17g, expected %.17g",
                       *prob, wi / total);
    }
    if (lse != NULL) {
        if (f.plus_inf > 0)
            FUZZ_CHECK(*lse == INFINITY, "sample: +inf logits but logsumexp %g", *lse);
        else if (isinf(p->temperature))
            FUZZ_CHECK(fabs(*lse - log((double)f.above_minus_inf)) <= 1e-12 * log((double)f.above_minus_inf) + 1e-15,
                       "sample: T = inf, logsumexp %.17g, expected log(%zu)", *lse, f.above_minus_inf);
        else {
            const double inv = 1.0 / p->temperature;
            const long double top = (long double)f.max * inv;
            if (inv <= FLT_MAX && fabsl(top) < 1e300L) {
                long double sum = 0;
                for (size_t j = 0; j < n; j++)
                    sum += relative_weight(x[j], &f, p->temperature);
                const long double expected = top + logl(sum);
                /* f32 weights summed in f64, the maximum's term in f32 at worst. */
                const double bound = 1e-5 * fmax(1.0, fabs((double)top));
                FUZZ_CHECK(fabs(*lse - (double)expected) <= bound, "sample: logsumexp %.17g, expected %.17Lg", *lse,
                           expected);
            }
        }
    }
}

static void run_sample(fuzz_reader *r, const uint8_t *data, size_t size)
{
    const softmax_dtype dtype = decode_dtype(take_u8(r));
    const uint8_t flags = take_u8(r);
    const uint8_t vocab_byte = take_u8(r);
    size_t rows = flags % (MAX_ROWS + 1);
    size_t vocab = vocab_byte % (MAX_VOCAB + 1);
    const int want_probs = (flags & 0x08) == 0, want_lse = (flags & 0x10) == 0, given_streams = (flags & 0x20) != 0;
    const int error_mode = (flags & 0xc0) == 0xc0 ? 1 + take_u8(r) % 4 : 0;
    /* Big: enough elements for 2 threads, rare (a hash of the input). */
    const int big = vocab_byte == 0xff && fuzz_input_is_rare(data, size, BIG_ONE_IN);
    softmax_sampler_params p;
    FUZZ_CHECK(softmax_sampler_params_init(&p) == SOFTMAX_OK, "softmax_sampler_params_init failed");
    FUZZ_CHECK(p.temperature == 1.0 && p.top_k == 0 && p.top_p == 1.0 && p.min_p == 0.0 && p.seed == 0,
               "softmax_sampler_params_init: not temperature 1, filters off, seed 0");
    p.temperature = decode_temperature(r);
    const uint8_t k_byte = take_u8(r);
    p.top_k = k_byte < 128 ? 0 : k_byte == 255 ? -1 : k_byte == 254 ? INT64_MAX : (int64_t)(k_byte % 12);
    p.top_p = decode_top_p(r);
    p.min_p = decode_min_p(r);
    if (error_mode == 1)
        p.reserved[take_u8(r) % 4] = 1;
    p.seed = take_u8(r) < 128 ? take_u8(r) : take_u64(r);
    const uint64_t step = take_u8(r) < 128 ? take_u8(r) : take_u64(r);
    if (big) {
        rows = BIG_ROWS;
        vocab = BIG_VOCAB;
    }
    const size_t esize = dtype_bytes(dtype) ? dtype_bytes(dtype) : 4;
    const size_t decoded_rows = big ? 1 : rows;
    const size_t decoded_vocab = big ? 64 : vocab;
    uint8_t *logits = malloc(rows * vocab * esize + 1);
    if (dtype_bytes(dtype))
        fill_values(r, dtype, logits, decoded_rows * decoded_vocab);
    else
        memset(logits, 0, rows * vocab * esize + 1);
    /* Big inputs repeat the decoded values. */
    for (size_t k = decoded_rows * decoded_vocab; k < rows * vocab; k++)
        memcpy(logits + k * esize, logits + (k % (decoded_rows * decoded_vocab)) * esize, esize);
    uint64_t streams[MAX_ROWS > BIG_ROWS ? MAX_ROWS : BIG_ROWS];
    for (size_t i = 0; i < rows; i++)
        streams[i] = take_u8(r) < 200 ? take_u8(r) : take_u64(r);
    const uint64_t *stream_ids = given_streams ? streams : NULL;

    /* Outputs with a sentinel element after them. */
    int64_t *indices = malloc((rows + 1) * sizeof *indices);
    double *probs = malloc((rows + 1) * sizeof *probs), *lse = malloc((rows + 1) * sizeof *lse);
    memset(indices, FUZZ_SENTINEL, (rows + 1) * sizeof *indices);
    memset(probs, FUZZ_SENTINEL, (rows + 1) * sizeof *probs);
    memset(lse, FUZZ_SENTINEL, (rows + 1) * sizeof *lse);
    const void *logits_arg = error_mode == 2 ? NULL : logits;
    int64_t *indices_arg = error_mode == 3 ? NULL : indices;
    size_t call_rows = rows, call_vocab = vocab;
    if (error_mode == 4) { /* rows * vocab overflows, or vocab >= 2^32 */
        call_vocab = (size_t)1 << 32;
        call_rows = rows == 0 ? 0 : SIZE_MAX / 2;
    }
    const int status =
        softmax_sample(error_mode == 4 && rows == 1 ? NULL : &p, dtype, logits_arg, call_rows, call_vocab, step,
                       stream_ids, indices_arg, want_probs ? probs : NULL, want_lse ? lse : NULL);
    const size_t out_bytes = (rows + 1) * sizeof(double);
    int expect_error = !params_valid(&p) || dtype_bytes(dtype) == 0 || (error_mode == 4 && rows == 1);
    if (call_rows > 0)
        expect_error |= error_mode == 3 || error_mode == 4 || (error_mode == 2 && vocab > 0);
    if (expect_error || (status != SOFTMAX_OK && status != SOFTMAX_E_NO_FINITE_LOGIT)) {
        FUZZ_CHECK(expect_error, "softmax_sample: a valid call returned %d (%s)", status, softmax_last_error());
        if (call_rows > 0 || !params_valid(&p) || dtype_bytes(dtype) == 0 || (error_mode == 4 && rows == 1)) {
            FUZZ_CHECK(status != SOFTMAX_OK, "softmax_sample: an invalid call succeeded (mode %d)", error_mode);
            check_error_message("softmax_sample", status);
            int allowed = status == SOFTMAX_E_INVALID_PARAMETER || status == SOFTMAX_E_UNSUPPORTED ||
                          status == SOFTMAX_E_INVALID_DTYPE || status == SOFTMAX_E_NULL_POINTER ||
                          status == SOFTMAX_E_SIZE_OVERFLOW || status == SOFTMAX_E_INVALID_ARGUMENT;
            FUZZ_CHECK(allowed, "softmax_sample: unexpected status %d for an invalid call", status);
        }
        FUZZ_CHECK(bytes_are_sentinel(indices, out_bytes) && bytes_are_sentinel(probs, out_bytes) &&
                       bytes_are_sentinel(lse, out_bytes),
                   "softmax_sample: a failed or empty call (%d) wrote an output", status);
        goto done;
    }
    FUZZ_CHECK(bytes_are_sentinel(indices + rows, sizeof *indices) && bytes_are_sentinel(probs + rows, sizeof *probs) &&
                   bytes_are_sentinel(lse + rows, sizeof *lse),
               "softmax_sample: wrote past an output");
    if (!want_probs)
        FUZZ_CHECK(bytes_are_sentinel(probs, out_bytes), "softmax_sample: wrote probs that were not asked for");
    if (!want_lse)
        FUZZ_CHECK(bytes_are_sentinel(lse, out_bytes), "softmax_sample: wrote logsumexp that was not asked for");
    int any_failed = 0;
    double *row = malloc((vocab + 1) * sizeof *row);
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < vocab; j++)
            row[j] = load_as_double(logits, dtype, (int64_t)(i * vocab + j));
        any_failed |= facts_of(dtype, row, vocab).failed;
        if (i < MAX_ROWS)
            check_sample_row(&p, dtype, row, vocab, given_streams ? streams[i] : i, step, indices[i],
                             want_probs ? &probs[i] : NULL, want_lse ? &lse[i] : NULL);
    }
    free(row);
    FUZZ_CHECK(status == (any_failed ? SOFTMAX_E_NO_FINITE_LOGIT : SOFTMAX_OK),
               "softmax_sample returned %d, a row failed: %d", status, any_failed);
    if (any_failed)
        check_error_message("softmax_sample", status);
    else
        FUZZ_CHECK(softmax_last_error()[0] == '\0', "softmax_sample: success with a non-empty softmax_last_error()");

    /* Each row alone, with its stream: the same draw, the same bits. */
    for (size_t i = 0; i < rows && !big; i++) {
        const uint64_t stream = given_streams ? streams[i] : i;
        int64_t index = -2;
        double prob = 0, sum = 0;
        softmax_sample(&p, dtype, logits + i * vocab * esize, 1, vocab, step, &stream, &index, &prob, &sum);
        FUZZ_CHECK(index == indices[i], "row %zu alone drew %lld, in the batch %lld", i, (long long)index,
                   (long long)indices[i]);
        if (want_probs)
            FUZZ_CHECK(memcmp(&prob, &probs[i], sizeof prob) == 0, "row %zu alone: other prob bits", i);
        if (want_lse)
            FUZZ_CHECK(memcmp(&sum, &lse[i], sizeof sum) == 0, "row %zu alone: other logsumexp bits", i);
    }
    if (big) {
        int64_t *again = malloc((rows + 1) * sizeof *again);
        double *probs2 = malloc((rows + 1) * sizeof *probs2), *lse2 = malloc((rows + 1) * sizeof *lse2);
        softmax_set_num_threads(2);
        const int status2 = softmax_sample(&p, dtype, logits, rows, vocab, step, stream_ids, again,
                                           want_probs ? probs2 : NULL, want_lse ? lse2 : NULL);
        softmax_set_num_threads(1);
        FUZZ_CHECK(status2 == status && memcmp(again, indices, rows * sizeof *again) == 0 &&
                       (!want_probs || memcmp(probs2, probs, rows * sizeof *probs) == 0) &&
                       (!want_lse || memcmp(lse2, lse, rows * sizeof *lse) == 0),
                   "softmax_sample: 2 threads give other results than 1");
        free(again);
        free(probs2);
        free(lse2);
    }
done:
    free(logits);
    free(indices);
    free(probs);
    free(lse);
}

/* ---- row statistics ---- */

typedef struct stats_expected {
    int exact; /* the special cases: exact values */
    double lse, entropy;
    int64_t argmax;
    long double top; /* largest scale * x (the general case) */
} stats_expected;

static size_t count_equal(const double *x, size_t n, double value)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += x[i] == value;
    return count;
}

static size_t first_equal(const double *x, size_t n, double value)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] == value)
            return i;
    return n;
}

static void check_stats_row(softmax_dtype dtype, const double *x, size_t n, double scale, const double *lse,
                            const double *entropy, const int64_t *argmax)
{
    if (n == 0) {
        FUZZ_CHECK(lse == NULL || *lse == -INFINITY, "stats: cols == 0 gives logsumexp %g", *lse);
        FUZZ_CHECK(entropy == NULL || *entropy == 0, "stats: cols == 0 gives entropy %g", *entropy);
        FUZZ_CHECK(argmax == NULL || *argmax == -1, "stats: cols == 0 gives argmax %lld", (long long)*argmax);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) {
            FUZZ_CHECK(lse == NULL || isnan(*lse), "stats: NaN row gives logsumexp %g", *lse);
            FUZZ_CHECK(entropy == NULL || isnan(*entropy), "stats: NaN row gives entropy %g", *entropy);
            FUZZ_CHECK(argmax == NULL || *argmax == (int64_t)i, "stats: NaN row gives argmax %lld, first NaN %zu",
                       (long long)*argmax, i);
            return;
        }
    }
    double min = INFINITY, max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        min = fmin(min, x[i]);
        max = fmax(max, x[i]);
    }
    stats_expected e = {1, 0, 0, 0, 0};
    /* The element scale * x is largest at. */
    const double extreme = scale > 0 ? max : scale < 0 ? min : 0;
    if (scale == 0) {
        const size_t k = n - count_equal(x, n, -INFINITY);
        if (k == 0)
            e.lse = -INFINITY, e.entropy = 0, e.argmax = 0;
        else {
            e.lse = e.entropy = log((double)k);
            for (size_t i = 0; i < n; i++)
                if (x[i] > -INFINITY) {
                    e.argmax = (int64_t)i;
                    break;
                }
        }
    } else if ((scale > 0 && extreme == -INFINITY) || (scale < 0 && extreme == INFINITY) ||
               (isinf(scale) && scale * extreme == -INFINITY)) {
        e.lse = -INFINITY, e.entropy = 0, e.argmax = 0; /* every p is 0 */
        if (isinf(scale) && !isinf(extreme)) {
            /* scale = +-inf and the extreme finite (< 0 for +inf): z = -inf
             * everywhere but the limit is uniform over the ties. */
            const double ties = (double)count_equal(x, n, extreme);
            e.lse = -INFINITY, e.entropy = log(ties), e.argmax = (int64_t)first_equal(x, n, extreme);
        }
    } else if (isinf(scale) || isinf(extreme)) {
        const double ties = (double)count_equal(x, n, extreme);
        e.entropy = log(ties);
        e.lse = extreme == 0 ? log(ties) : scale * extreme;
        e.argmax = (int64_t)first_equal(x, n, extreme);
    } else {
        e.exact = 0;
        e.top = (long double)scale * extreme;
    }
    if (e.exact) {
        FUZZ_CHECK(lse == NULL || *lse == e.lse || fabs(*lse - e.lse) <= 1e-15 * fabs(e.lse),
                   "stats: scale %g, logsumexp %.17g, expected %.17g", scale, *lse, e.lse);
        FUZZ_CHECK(entropy == NULL || fabs(*entropy - e.entropy) <= 1e-15 * e.entropy,
                   "stats: scale %g, entropy %.17g, expected %.17g", scale, *entropy, e.entropy);
        FUZZ_CHECK(argmax == NULL || *argmax == e.argmax, "stats: scale %g, argmax %lld, expected %lld", scale,
                   (long long)*argmax, (long long)e.argmax);
        return;
    }
    /* The general case: against long double. The data type's ulp (f32 for
     * the half types). */
    /* Relative to the extreme element, w_i = scale * (x_i - extreme): the
     * logarithms of the probabilities stay exact even where scale * x is
     * so large that a sum with it would drop them. */
    const long double top = e.top;
    long double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += expl((long double)scale * ((long double)x[i] - extreme));
    const long double log_sum = logl(sum), exact_lse = top + log_sum;
    long double exact_entropy = 0;
    for (size_t i = 0; i < n; i++) {
        const long double log_p = (long double)scale * ((long double)x[i] - extreme) - log_sum;
        const long double pz = expl(log_p);
        if (pz > 0)
            exact_entropy -= pz * log_p;
    }
    const double ulp = dtype == SOFTMAX_DTYPE_F64 ? DBL_EPSILON : FLT_EPSILON;
    /* The library takes scale * x in the computation type: for f32 that
     * rounding alone moves the result by up to ulp * |scale * x|. */
    if (fabsl(top) > 1e300L || !isfinite((double)exact_lse))
        return; /* beyond double: no meaningful bound */
    if (lse != NULL) {
        const double bound = 8 * ulp * fmax(fmax(fabs((double)top), fabs((double)exact_lse)), 1.0);
        FUZZ_CHECK(fabs(*lse - (double)exact_lse) <= bound, "stats: logsumexp %.17g, expected %.17Lg (bound %g)", *lse,
                   exact_lse, bound);
        FUZZ_CHECK(*lse >= (double)top || (double)top - *lse <= bound, "stats: logsumexp %.17g below max %.17Lg", *lse,
                   top);
    }
    if (entropy != NULL) {
        const double bound = 16 * ulp * ((double)exact_entropy + 1);
        FUZZ_CHECK(fabs(*entropy - (double)exact_entropy) <= bound, "stats: entropy %.17g, expected %.17Lg", *entropy,
                   exact_entropy);
        FUZZ_CHECK(*entropy >= -bound && *entropy <= log((double)n) + bound,
                   "stats: entropy %.17g outside [0, log %zu]", *entropy, n);
    }
    if (argmax != NULL) {
        FUZZ_CHECK(*argmax >= 0 && (size_t)*argmax < n, "stats: argmax %lld outside [0, %zu)", (long long)*argmax, n);
        /* A maximum of p: no larger scale * x anywhere, and no element equal
         * to the extreme before it (p is monotone in z). */
        const size_t first = first_equal(x, n, extreme);
        const long double z = (long double)scale * x[*argmax];
        FUZZ_CHECK((size_t)*argmax <= first && top - z <= 8 * ulp * fmaxl(fabsl(top), 1),
                   "stats: argmax %lld (z %.17Lg), the first maximum is %zu (z %.17Lg)", (long long)*argmax, z, first,
                   top);
    }
}

static void run_stats(fuzz_reader *r, const uint8_t *data, size_t size)
{
    static const double scales[] = {1.0, 0.0, -1.0, INFINITY, -INFINITY, NAN, 0.5, 2.0, 1e-30, 1e30, -0.25, 3.0e38};
    const softmax_dtype dtype = decode_dtype(take_u8(r));
    const uint8_t flags = take_u8(r);
    const uint8_t cols_byte = take_u8(r);
    size_t rows = flags % (MAX_ROWS + 1);
    size_t cols = cols_byte % (MAX_VOCAB + 1);
    const int big = cols_byte == 0xff && fuzz_input_is_rare(data, size, BIG_ONE_IN);
    const int want_lse = (flags & 0x08) == 0, want_entropy = (flags & 0x10) == 0, want_argmax = (flags & 0x20) == 0;
    const int null_x = (flags & 0xc0) == 0xc0;
    const uint8_t scale_byte = take_u8(r);
    const double scale = scale_byte < 128 ? scales[scale_byte % (sizeof scales / sizeof scales[0])] : take_f64(r);
    if (big) {
        rows = BIG_ROWS;
        cols = BIG_VOCAB;
    }
    const size_t esize = dtype_bytes(dtype) ? dtype_bytes(dtype) : 4;
    const size_t decoded = big ? 64 : rows * cols;
    uint8_t *x = malloc(rows * cols * esize + 1);
    if (dtype_bytes(dtype))
        fill_values(r, dtype, x, decoded);
    else
        memset(x, 0, rows * cols * esize + 1);
    for (size_t k = decoded; k < rows * cols; k++)
        memcpy(x + k * esize, x + (k % decoded) * esize, esize);
    const size_t out_bytes = (rows + 1) * sizeof(double);
    double *lse = malloc(out_bytes), *entropy = malloc(out_bytes);
    int64_t *argmax = malloc(out_bytes);
    memset(lse, FUZZ_SENTINEL, out_bytes);
    memset(entropy, FUZZ_SENTINEL, out_bytes);
    memset(argmax, FUZZ_SENTINEL, out_bytes);
    const int status = softmax_row_stats(dtype, null_x ? NULL : x, rows, cols, scale, want_lse ? lse : NULL,
                                         want_entropy ? entropy : NULL, want_argmax ? argmax : NULL);
    const int expect_error = dtype_bytes(dtype) == 0 || isnan(scale) || (null_x && rows > 0 && cols > 0);
    if (expect_error || status != SOFTMAX_OK) {
        FUZZ_CHECK(expect_error, "softmax_row_stats: a valid call returned %d (%s)", status, softmax_last_error());
        FUZZ_CHECK(status != SOFTMAX_OK, "softmax_row_stats: an invalid call succeeded");
        /* Any of the statuses that apply (the order of the checks is not
         * part of the contract). */
        const int allowed = (dtype_bytes(dtype) == 0 && status == SOFTMAX_E_INVALID_DTYPE) ||
                            (isnan(scale) && status == SOFTMAX_E_INVALID_SCALE) ||
                            (null_x && status == SOFTMAX_E_NULL_POINTER);
        FUZZ_CHECK(allowed, "softmax_row_stats returned %d for this invalid call", status);
        check_error_message("softmax_row_stats", status);
        FUZZ_CHECK(bytes_are_sentinel(lse, out_bytes) && bytes_are_sentinel(entropy, out_bytes) &&
                       bytes_are_sentinel(argmax, out_bytes),
                   "softmax_row_stats: a failed call wrote an output");
        goto done;
    }
    FUZZ_CHECK(bytes_are_sentinel(lse + rows, 8) && bytes_are_sentinel(entropy + rows, 8) &&
                   bytes_are_sentinel(argmax + rows, 8),
               "softmax_row_stats: wrote past an output");
    FUZZ_CHECK((want_lse || bytes_are_sentinel(lse, out_bytes)) &&
                   (want_entropy || bytes_are_sentinel(entropy, out_bytes)) &&
                   (want_argmax || bytes_are_sentinel(argmax, out_bytes)),
               "softmax_row_stats: wrote an output that was not asked for");
    double *row = malloc((cols + 1) * sizeof *row);
    for (size_t i = 0; i < rows && i < MAX_ROWS; i++) {
        for (size_t j = 0; j < cols; j++)
            row[j] = load_as_double(x, dtype, (int64_t)(i * cols + j));
        if (cols <= MAX_VOCAB || i == 0)
            check_stats_row(dtype, row, cols, scale, want_lse ? &lse[i] : NULL, want_entropy ? &entropy[i] : NULL,
                            want_argmax ? &argmax[i] : NULL);
    }
    free(row);
    if (big) {
        double *lse2 = malloc(out_bytes), *entropy2 = malloc(out_bytes);
        int64_t *argmax2 = malloc(out_bytes);
        softmax_set_num_threads(2);
        FUZZ_CHECK(softmax_row_stats(dtype, x, rows, cols, scale, lse2, entropy2, argmax2) == SOFTMAX_OK,
                   "softmax_row_stats: 2 threads failed");
        softmax_set_num_threads(1);
        FUZZ_CHECK((!want_lse || memcmp(lse, lse2, rows * 8) == 0) &&
                       (!want_entropy || memcmp(entropy, entropy2, rows * 8) == 0) &&
                       (!want_argmax || memcmp(argmax, argmax2, rows * 8) == 0),
                   "softmax_row_stats: 2 threads give other bits than 1");
        free(lse2);
        free(entropy2);
        free(argmax2);
    }
done:
    free(x);
    free(lse);
    free(entropy);
    free(argmax);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader reader = {data, size, 0};
    softmax_set_num_threads(1);
    if (take_u8(&reader) & 1)
        run_stats(&reader, data, size);
    else
        run_sample(&reader, data, size);
    return 0;
}
