/*
 * sample_body.h -- the sampler's f32 row kernels, written once with GCC/Clang
 * vector extensions and compiled once per code path: the including file
 * defines SAMPLE_VECTOR_BYTES (16, 32 or 64) and SAMPLE_KERNELS_NAME and is
 * compiled with that path's flags, so the same source becomes SSE2, AVX2 or
 * AVX-512 code without an intrinsic.
 *
 * Every weight goes through exp_nonpositive(), vector lane by lane the same
 * IEEE operations (the library builds with -ffp-contract=off), so the
 * weights a draw recomputes equal those the sum pass added.
 */
#include <string.h>

#include "sample_internal.h"

#if !defined(SAMPLE_VECTOR_BYTES) || !defined(SAMPLE_KERNELS_NAME)
#error "define SAMPLE_VECTOR_BYTES and SAMPLE_KERNELS_NAME before including sample_body.h"
#endif

#define LANES (SAMPLE_VECTOR_BYTES / 4)

typedef float vfloat __attribute__((vector_size(SAMPLE_VECTOR_BYTES)));
typedef int32_t vint __attribute__((vector_size(SAMPLE_VECTOR_BYTES)));

_Static_assert(SAMPLE_BLOCK % LANES == 0, "a block is a whole number of vectors");

static inline vfloat load(const float *p)
{
    vfloat v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store(float *p, vfloat v)
{
    memcpy(p, &v, sizeof v);
}

/* Every scalar operand of a vector operation goes through splat(): where
 * FLT_EVAL_METHOD is not 0 (s390x and x87 i386 in ISO C mode) a float
 * expression or constant has the range and precision of double or long
 * double, and GCC refuses to narrow it into a vector implicitly. The
 * vector lanes are plain float arithmetic on every host. */
#define SPLAT4(v) v, v, v, v
#if LANES == 4
#define SPLAT_LANES(v) SPLAT4(v)
#elif LANES == 8
#define SPLAT_LANES(v) SPLAT4(v), SPLAT4(v)
#else
#define SPLAT_LANES(v) SPLAT4(v), SPLAT4(v), SPLAT4(v), SPLAT4(v)
#endif
static inline vfloat splat(float value)
{
    return (vfloat){SPLAT_LANES(value)};
}

/* a where mask is set, b elsewhere (mask lanes are 0 or -1). */
static inline vfloat select(vint mask, vfloat a, vfloat b)
{
    return (vfloat)(((vint)a & mask) | ((vint)b & ~mask));
}

typedef int32_t vint4 __attribute__((vector_size(16)));

/* Whether any lane of a mask is set: fold the halves together (one
 * extract and OR each) down to 16 bytes, then test two 64-bit words;
 * a loop over the lanes would extract them one by one. */
static inline int any_lane(vint mask)
{
#if SAMPLE_VECTOR_BYTES == 64
    typedef int32_t vint8 __attribute__((vector_size(32)));
    vint8 low8, high8;
    memcpy(&low8, &mask, 32);
    memcpy(&high8, (const char *)&mask + 32, 32);
    vint8 folded8 = low8 | high8;
#elif SAMPLE_VECTOR_BYTES == 32
    vint folded8 = mask;
#endif
#if SAMPLE_VECTOR_BYTES >= 32
    vint4 low4, high4;
    memcpy(&low4, &folded8, 16);
    memcpy(&high4, (const char *)&folded8 + 16, 16);
    vint4 folded4 = low4 | high4;
#else
    vint4 folded4 = mask;
#endif
    uint64_t words[2];
    memcpy(words, &folded4, sizeof words);
    return (words[0] | words[1]) != 0;
}

static inline double lanes_sum(vfloat v)
{
    double sum = 0.0;
    for (int lane = 0; lane < LANES; lane++)
        sum += (double)v[lane];
    return sum;
}

/* Copies the last n < LANES elements into a vector padded with `pad`, so
 * that tails take the vector code (and its exact arithmetic) too. */
static inline vfloat load_tail(const float *x, size_t n, float pad)
{
    float buffer[LANES];
    for (int lane = 0; lane < LANES; lane++)
        buffer[lane] = (size_t)lane < n ? x[lane] : pad;
    return load(buffer);
}

/*
 * e^d for d <= 0 (d = -inf gives 0): d = n ln2 + r with |r| <= ln2 / 2, a
 * degree-6 Taylor polynomial for e^r (truncation below 2^-23 relative) and
 * 2^n put in the exponent field. Below -87 the result is flushed to 0: such
 * a weight is under 2^-125 of the largest one (which is 1), far below what
 * an f32 sum can hold. About 2 ulp.
 */
static inline vfloat exp_nonpositive(vfloat d)
{
    const float log2e = 0x1.715476p+0f, ln2_high = 0x1.62e4p-1f, ln2_low = 0x1.7f7d1cp-20f;
    const float round_magic = 0x1.8p23f; /* adding it rounds to an integer, read in the low bits */
    vint underflow = d < splat(-87.0f);
    d = select(underflow, splat(-87.0f), d);
    vfloat t = d * splat(log2e) + splat(round_magic);
    vfloat n = t - splat(round_magic);
    vfloat r = d - n * splat(ln2_high);
    r = r - n * splat(ln2_low);
    vfloat p = splat(0x1.6c16c2p-10f); /* 1/720 */
    p = p * r + splat(0x1.111112p-7f); /* 1/120 */
    p = p * r + splat(0x1.555556p-5f); /* 1/24 */
    p = p * r + splat(0x1.555556p-3f); /* 1/6 */
    p = p * r + splat(0.5f);
    p = p * r + splat(1.0f);
    p = p * r + splat(1.0f);
    vint n_int = (vint)t - (vint)splat(round_magic);
    vfloat two_to_n = (vfloat)((n_int + 127) << 23);
    return select(underflow, splat(0.0f), p * two_to_n);
}

static inline vfloat weight_of(vfloat x, float max, float inv_temperature)
{
    return exp_nonpositive((x - splat(max)) * splat(inv_temperature));
}

static void row_max(const float *x, size_t n, float *max, int *has_nan)
{
    vfloat best[4] = {splat(-__builtin_inff()), splat(-__builtin_inff()), splat(-__builtin_inff()),
                      splat(-__builtin_inff())};
    vint nan_seen = {0};
    size_t i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        for (int a = 0; a < 4; a++) {
            vfloat v = load(x + i + (size_t)a * LANES);
            best[a] = select(v > best[a], v, best[a]);
            nan_seen |= v != v;
        }
    }
    for (; i + LANES <= n; i += LANES) {
        vfloat v = load(x + i);
        best[0] = select(v > best[0], v, best[0]);
        nan_seen |= v != v;
    }
    if (i < n) {
        vfloat v = load_tail(x + i, n - i, -__builtin_inff());
        best[0] = select(v > best[0], v, best[0]);
        nan_seen |= v != v;
    }
    for (int a = 1; a < 4; a++)
        best[0] = select(best[a] > best[0], best[a], best[0]);
    float result = best[0][0];
    for (int lane = 1; lane < LANES; lane++)
        result = best[0][lane] > result ? best[0][lane] : result;
    *max = result;
    *has_nan = any_lane(nan_seen);
}

static size_t find_first(const float *x, size_t n, float value)
{
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        if (any_lane(load(x + i) == splat(value)))
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
    double total = 0.0;
    for (size_t begin = 0, block = 0; begin < n; begin += SAMPLE_BLOCK, block++) {
        size_t end = n - begin < SAMPLE_BLOCK ? n : begin + SAMPLE_BLOCK;
        vfloat all[2] = {{0}, {0}}, kept[2] = {{0}, {0}};
        size_t i = begin;
        if (floor > 0.0f) {
            for (; i + 2 * LANES <= end; i += 2 * LANES) {
                for (int a = 0; a < 2; a++) {
                    vfloat w = weight_of(load(x + i + (size_t)a * LANES), max, inv_temperature);
                    all[a] += w;
                    kept[a] += select(w >= splat(floor), w, splat(0.0f));
                }
            }
        } else {
            /* Temperature only: every weight is kept; one sum, four chains. */
            vfloat more[2] = {{0}, {0}};
            for (; i + 4 * LANES <= end; i += 4 * LANES) {
                all[0] += weight_of(load(x + i), max, inv_temperature);
                all[1] += weight_of(load(x + i + LANES), max, inv_temperature);
                more[0] += weight_of(load(x + i + 2 * LANES), max, inv_temperature);
                more[1] += weight_of(load(x + i + 3 * LANES), max, inv_temperature);
            }
            all[0] += more[0];
            all[1] += more[1];
        }
        for (; i < end; i += LANES) {
            vfloat v = end - i >= LANES ? load(x + i) : load_tail(x + i, end - i, -__builtin_inff());
            vfloat w = weight_of(v, max, inv_temperature);
            all[0] += w;
            kept[0] += select(w >= splat(floor), w, splat(0.0f));
        }
        double all_sum = lanes_sum(all[0] + all[1]);
        total += all_sum;
        kept_block_sums[block] = floor > 0.0f ? lanes_sum(kept[0] + kept[1]) : all_sum;
    }
    return total;
}

static double level_sums(const float *x, size_t n, float max, float inv_temperature, double *block_level_sums,
                         double *level_totals)
{
    double total = 0.0;
    for (int j = 0; j < SAMPLE_LEVELS; j++)
        level_totals[j] = 0.0;
    for (size_t begin = 0, block = 0; begin < n; begin += SAMPLE_BLOCK, block++) {
        size_t end = n - begin < SAMPLE_BLOCK ? n : begin + SAMPLE_BLOCK;
        vfloat all = {0}, above[SAMPLE_LEVELS];
        for (int j = 0; j < SAMPLE_LEVELS; j++)
            above[j] = splat(0.0f);
        for (size_t i = begin; i < end; i += LANES) {
            vfloat v = end - i >= LANES ? load(x + i) : load_tail(x + i, end - i, -__builtin_inff());
            vfloat d = (v - splat(max)) * splat(inv_temperature);
            vfloat w = exp_nonpositive(d);
            all += w;
            for (int j = 0; j < SAMPLE_LEVELS; j++)
                above[j] += select(d >= splat(softmax_sample_levels[j]), w, splat(0.0f));
        }
        total += lanes_sum(all);
        for (int j = 0; j < SAMPLE_LEVELS; j++) {
            double sum = lanes_sum(above[j]);
            block_level_sums[block * SAMPLE_LEVELS + (size_t)j] = sum;
            level_totals[j] += sum;
        }
    }
    return total;
}

static void weights(const float *x, size_t n, float max, float inv_temperature, float floor, float *w)
{
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vfloat v = weight_of(load(x + i), max, inv_temperature);
        store(w + i, select(v >= splat(floor), v, splat(0.0f)));
    }
    if (i < n) {
        vfloat v = weight_of(load_tail(x + i, n - i, -__builtin_inff()), max, inv_temperature);
        v = select(v >= splat(floor), v, splat(0.0f));
        for (size_t lane = 0; i + lane < n; lane++)
            w[i + lane] = v[lane];
    }
}

static size_t gather_at_least(const float *x, size_t n, float threshold, size_t base, float *values, uint32_t *indices)
{
    size_t count = 0, i = 0;
    for (; i + LANES <= n; i += LANES) {
        if (!any_lane(load(x + i) >= splat(threshold)))
            continue;
        for (size_t lane = 0; lane < LANES; lane++) { /* branch-free, as in gather_band */
            values[count] = x[i + lane];
            indices[count] = (uint32_t)(base + i + lane);
            count += x[i + lane] >= threshold;
        }
    }
    for (; i < n; i++) {
        if (x[i] >= threshold) {
            values[count] = x[i];
            indices[count++] = (uint32_t)(base + i);
        }
    }
    return count;
}

static size_t gather_band(const float *x, size_t n, float max, float inv_temperature, float low, float high,
                          float *values, uint32_t *indices)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i += LANES) {
        vfloat v = n - i >= LANES ? load(x + i) : load_tail(x + i, n - i, -__builtin_inff());
        vfloat d = (v - splat(max)) * splat(inv_temperature);
        vint in_band = (d >= splat(low)) & (d < splat(high));
        if (!any_lane(in_band))
            continue;
        /* Branch-free append: when many lanes hit, a branch per lane
         * mispredicts about half the time. The buffers have LANES spare
         * slots. The mask goes through memory once: reading lanes out of
         * a vector register one by one costs several cycles each. */
        int32_t hits[LANES];
        memcpy(hits, &in_band, sizeof hits);
        size_t lanes = n - i < LANES ? n - i : LANES;
        for (size_t lane = 0; lane < lanes; lane++) {
            values[count] = x[i + lane];
            indices[count] = (uint32_t)(i + lane);
            count += (size_t)(hits[lane] & 1);
        }
    }
    return count;
}

static void group_maxima(const float *x, size_t n, size_t group, float *maxima)
{
    for (size_t begin = 0, g = 0; begin < n; begin += group, g++) {
        size_t end = n - begin < group ? n : begin + group;
        vfloat best = splat(-__builtin_inff());
        size_t i = begin;
        for (; i + LANES <= end; i += LANES) {
            vfloat v = load(x + i);
            best = select(v > best, v, best);
        }
        if (i < end) {
            vfloat v = load_tail(x + i, end - i, -__builtin_inff());
            best = select(v > best, v, best);
        }
        float result = best[0];
        for (int lane = 1; lane < LANES; lane++)
            result = best[lane] > result ? best[lane] : result;
        maxima[g] = result;
    }
}

/* Greedy in one pass: each lane keeps its largest value and where it was
 * (the first, as only a strictly larger value replaces it); the lanes are
 * merged at the end, ties to the lowest index. */
static size_t row_argmax(const float *x, size_t n, float *max, int *has_nan)
{
    vfloat best[2] = {splat(-__builtin_inff()), splat(-__builtin_inff())};
    vint where[2] = {{0}, {0}}, position[2], nan_seen = {0};
    for (int lane = 0; lane < LANES; lane++) {
        position[0][lane] = lane;
        position[1][lane] = lane + LANES;
    }
    size_t i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        for (int a = 0; a < 2; a++) {
            vfloat v = load(x + i + (size_t)a * LANES);
            vint larger = v > best[a];
            best[a] = select(larger, v, best[a]);
            where[a] = (position[a] & larger) | (where[a] & ~larger);
            nan_seen |= v != v;
            position[a] += 2 * LANES;
        }
    }
    for (; i < n; i += LANES) { /* position[0] is i + lane here */
        vfloat v = n - i >= LANES ? load(x + i) : load_tail(x + i, n - i, -__builtin_inff());
        vint larger = v > best[0];
        best[0] = select(larger, v, best[0]);
        where[0] = (position[0] & larger) | (where[0] & ~larger);
        nan_seen |= v != v;
        position[0] += LANES;
    }
    float result = -__builtin_inff();
    size_t index = 0;
    for (int a = 0; a < 2; a++) {
        for (int lane = 0; lane < LANES; lane++) {
            size_t at = (size_t)(uint32_t)where[a][lane];
            if (best[a][lane] > result || (best[a][lane] == result && at < index)) {
                result = best[a][lane];
                index = at;
            }
        }
    }
    *max = result;
    *has_nan = any_lane(nan_seen);
    return index;
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
