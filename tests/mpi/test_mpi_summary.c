/*
 * test_mpi_summary.c -- the slice summaries over MPI (examples/mpi_softmax.h),
 * run by ctest with 1, 2, 3 and 4 ranks. Every rank holds the columns of
 * an uneven cut of the vocabulary (drawn from a seed all ranks share, so
 * some ranks may hold no column at all) and checks, against one process
 * holding whole rows (the same library, one slice, no MPI):
 *   - the sampled tokens, for every mode and many seeds: equal;
 *   - the exact fields (max, arg max, counts, candidates): equal bits;
 *   - softmax, log-softmax and the NLL gradient of its columns, logsumexp,
 *     entropy and NLL: within twice the bound of softmax.h (both sides are
 *     within it of the exact values), and exactly the contract's values on
 *     NaN, fully masked and +inf rows.
 * Exit status 0 when every rank passed.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_softmax.h"

enum { ROWS = 6 };

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            if (failures++ < 10) {                                                                                     \
                fprintf(stderr, "rank %d, %s:%d: ", my_rank, __FILE__, __LINE__);                                      \
                fprintf(stderr, __VA_ARGS__);                                                                          \
                fputc('\n', stderr);                                                                                   \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

static int my_rank;

static uint64_t mix(uint64_t h)
{
    h ^= h >> 31;
    h *= 0x94D049BB133111EBu;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9u;
    h ^= h >> 32;
    return h;
}

static double uniform(uint64_t key)
{
    return (double)(mix(key) >> 11) * 0x1p-53;
}

/* Row kinds: 0-2 random (2 with ties), 3 +inf entries, 4 a NaN, 5 fully masked. */
static double logit_of(uint64_t trial, size_t row, uint64_t column, uint64_t vocab)
{
    uint64_t key = trial * 0x9E3779B97F4A7C15u + row * 0xD1B54A32D192ED03u + column;
    double u = uniform(key);
    double v = (u - 0.5) * 14.0;
    if (row == 2)
        v = floor(v);
    if (uniform(key ^ 0x5555) < 0.03)
        v = -INFINITY;
    if (row == 3 && column % 97 == 5)
        v = INFINITY;
    if (row == 4 && column == vocab / 3)
        v = NAN;
    if (row == 5)
        v = -INFINITY;
    return v;
}

/* The cut: ranks + 1 bounds from the trial's key (the same on every rank). */
static void cut_of(uint64_t trial, uint64_t vocab, int ranks, uint64_t *bounds)
{
    bounds[0] = 0;
    bounds[ranks] = vocab;
    for (int k = 1; k < ranks; k++)
        bounds[k] = mix(trial * 31 + (uint64_t)k) % (vocab + 1);
    for (int i = 1; i < ranks; i++) /* sort */
        for (int j = i; j > 1 && bounds[j] < bounds[j - 1]; j--) {
            uint64_t t = bounds[j];
            bounds[j] = bounds[j - 1];
            bounds[j - 1] = t;
        }
}

static void *fill(softmax_dtype dt, uint64_t trial, uint64_t vocab, uint64_t begin, uint64_t end)
{
    size_t cols = (size_t)(end - begin), size = dt == SOFTMAX_DTYPE_F64 ? 8 : 4;
    void *x = malloc(ROWS * cols * size + 1);
    for (size_t r = 0; r < ROWS; r++)
        for (size_t i = 0; i < cols; i++) {
            double v = logit_of(trial, r, begin + i, vocab);
            if (dt == SOFTMAX_DTYPE_F64)
                ((double *)x)[r * cols + i] = v;
            else
                ((float *)x)[r * cols + i] = (float)v;
        }
    return x;
}

/* One process holding whole rows: the protocol with one slice, no MPI. */
static int sample_whole(const softmax_sampler_params *p, const softmax_slice *whole, size_t top_k, uint64_t step,
                        int64_t *tokens)
{
    double t = p->temperature;
    double scale = t > 0.0 && t < INFINITY && 1.0 / t < INFINITY ? 1.0 / t : 1.0;
    size_t bytes = softmax_summary_bytes(top_k);
    void *records = malloc(ROWS * bytes);
    softmax_top_p_search search[ROWS];
    softmax_draw draws[ROWS];
    softmax_top_p_bin *bins = malloc(ROWS * SOFTMAX_TOP_P_BINS * sizeof *bins);
    softmax_summary_compute(whole, scale, top_k, records);
    int needs = softmax_sample_rounds(p, whole->vocab);
    if (needs & SOFTMAX_SAMPLE_NEEDS_TOP_P) {
        softmax_top_p_start(p, records, ROWS, search);
        do
            softmax_top_p_histogram(p, whole, records, search, bins);
        while (softmax_top_p_narrow(search, bins, ROWS) > 0);
    }
    if (needs & SOFTMAX_SAMPLE_NEEDS_RACE)
        softmax_sample_race(p, whole, records, (needs & SOFTMAX_SAMPLE_NEEDS_TOP_P) ? search : NULL, step, NULL, draws);
    int status = softmax_sample_finish(p, records, ROWS, search, draws, step, NULL, tokens);
    free(records);
    free(bins);
    return status;
}

static int close_values(double a, double b, double ulps, int precision)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    double m = fmax(fmax(fabs(a), fabs(b)), precision == 24 ? FLT_MIN : DBL_MIN);
    return fabs(a - b) <= ulps * ldexp(1.0, ilogb(m) - precision + 1);
}

typedef struct mode {
    double temperature;
    int64_t top_k;
    double top_p, min_p;
} mode;

static const mode modes[] = {
    {1.0, 0, 1.0, 0.0}, {0.7, 0, 1.0, 0.0},      {0.8, 8, 1.0, 0.0},      {1.2, 0, 0.85, 0.0},
    {1.0, 0, 0.4, 0.0}, {1.0, 0, 1.0, 0.1},      {0.9, 16, 0.9, 0.05},    {1.1, 0, 0.95, 0.02},
    {0.0, 0, 1.0, 0.0}, {INFINITY, 0, 1.0, 0.0}, {INFINITY, 4, 1.0, 0.0}, {INFINITY, 0, 0.5, 0.0},
};

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    const size_t top_k = 16;
    size_t draws_compared = 0, values_compared = 0;

    for (uint64_t trial = 0; trial < 8; trial++) {
        softmax_dtype dt = trial % 2 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
        int precision = dt == SOFTMAX_DTYPE_F64 ? 53 : 24;
        uint64_t vocab = 1 + mix(trial + 1000) % (trial < 4 ? 300 : 6000);
        uint64_t bounds[5];
        cut_of(trial, vocab, ranks, bounds);
        uint64_t begin = bounds[my_rank], end = bounds[my_rank + 1];
        int64_t targets[ROWS];
        for (size_t r = 0; r < ROWS; r++)
            targets[r] = (int64_t)(mix(trial * 7 + r) % vocab);
        void *x = fill(dt, trial, vocab, begin, end), *whole_x = fill(dt, trial, vocab, 0, vocab);
        softmax_slice slice = {dt, x, ROWS, (size_t)(end - begin), begin, vocab, targets};
        softmax_slice whole = {dt, whole_x, ROWS, (size_t)vocab, 0, vocab, targets};

        /* The values, scale 1 and -0.75. */
        const double scales[2] = {1.0, -0.75};
        for (int s = 0; s < 2; s++) {
            mpi_softmax ctx;
            mpi_softmax_init(&ctx, MPI_COMM_WORLD, ROWS, top_k);
            CHECK(mpi_softmax_summarise(&ctx, &slice, scales[s]) == SOFTMAX_OK, "summarise: %s", softmax_last_error());
            size_t bytes = softmax_summary_bytes(top_k);
            void *one = malloc(ROWS * bytes);
            softmax_summary_compute(&whole, scales[s], top_k, one);
            double lse[2][ROWS], entropy[2][ROWS], nll[2][ROWS];
            int64_t argmax[2][ROWS];
            CHECK(softmax_summary_stats(ctx.merged, ROWS, lse[0], entropy[0], argmax[0], nll[0]) == SOFTMAX_OK,
                  "stats: %s", softmax_last_error());
            softmax_summary_stats(one, ROWS, lse[1], entropy[1], argmax[1], nll[1]);
            double bound = 2.0 * (ranks + 4);
            for (size_t r = 0; r < ROWS; r++) {
                const softmax_summary *a = (const softmax_summary *)((const char *)ctx.merged + r * bytes);
                const softmax_summary *b = (const softmax_summary *)((const char *)one + r * bytes);
                CHECK(memcmp(&a->ref, &b->ref, sizeof a->ref) == 0 && a->argmax == b->argmax &&
                          a->count_ref == b->count_ref && a->count_kept == b->count_kept &&
                          a->count_nan == b->count_nan && a->candidates == b->candidates &&
                          memcmp(a + 1, b + 1, a->candidates * sizeof(softmax_candidate)) == 0,
                      "trial %llu row %zu: exact fields differ", (unsigned long long)trial, r);
                CHECK(argmax[0][r] == argmax[1][r], "arg max %lld vs %lld", (long long)argmax[0][r],
                      (long long)argmax[1][r]);
                CHECK(close_values(lse[0][r], lse[1][r], bound, 53) &&
                          close_values(entropy[0][r], entropy[1][r], bound, 53) &&
                          close_values(nll[0][r], nll[1][r], bound, 53),
                      "trial %llu row %zu: lse %.17g / %.17g entropy %.17g / %.17g nll %.17g / %.17g",
                      (unsigned long long)trial, r, lse[0][r], lse[1][r], entropy[0][r], entropy[1][r], nll[0][r],
                      nll[1][r]);
            }
            /* The contract's rows: NaN (4) and fully masked (5). */
            CHECK(isnan(lse[0][4]) && isnan(entropy[0][4]) && isnan(nll[0][4]), "NaN row");
            if (scales[s] > 0) /* (with a negative scale, -inf logits take the mass) */
                CHECK(lse[0][5] == -INFINITY && entropy[0][5] == 0.0 && nll[0][5] == INFINITY, "masked row");
            size_t size = dt == SOFTMAX_DTYPE_F64 ? 8 : 4, cols = slice.cols, n = (size_t)vocab;
            void *outs[3], *whole_outs[3];
            for (int k = 0; k < 3; k++) {
                outs[k] = malloc(ROWS * cols * size + 1);
                whole_outs[k] = malloc(ROWS * n * size);
            }
            CHECK(softmax_summary_softmax(&slice, ctx.merged, 0, outs[0]) == SOFTMAX_OK, "softmax: %s",
                  softmax_last_error());
            CHECK(softmax_summary_softmax(&slice, ctx.merged, 1, outs[1]) == SOFTMAX_OK, "log-softmax");
            CHECK(softmax_summary_nll_backward(&slice, ctx.merged, outs[2]) == SOFTMAX_OK, "gradient");
            softmax_summary_softmax(&whole, one, 0, whole_outs[0]);
            softmax_summary_softmax(&whole, one, 1, whole_outs[1]);
            softmax_summary_nll_backward(&whole, one, whole_outs[2]);
            double value_bound = precision == 24 ? 2.0 : bound;
            for (size_t r = 0; r < ROWS; r++)
                for (size_t i = 0; i < cols; i++)
                    for (int k = 0; k < 3; k++) {
                        size_t at = r * cols + i, whole_at = r * n + (size_t)begin + i;
                        double got = size == 8 ? ((double *)outs[k])[at] : ((float *)outs[k])[at];
                        double want =
                            size == 8 ? ((double *)whole_outs[k])[whole_at] : ((float *)whole_outs[k])[whole_at];
                        if (r == 4 ||
                            (r == 5 && scales[s] > 0)) { /* NaN and masked rows: the contract's values, bit for bit */
                            double exact = r == 4 ? NAN : k == 1 ? -INFINITY : 0.0;
                            CHECK(isnan(exact) ? isnan(got) : got == exact, "row %zu output %d: %g", r, k, got);
                            continue;
                        }
                        double tolerance = value_bound + (k == 2 ? 4.0 : 0.0);
                        CHECK(k == 2 ? fabs(got - want) <= tolerance * ldexp(fabs(scales[s]), 1 - precision)
                                     : close_values(got, want, tolerance, precision),
                              "trial %llu scale %g row %zu column %llu output %d: %.17g vs %.17g",
                              (unsigned long long)trial, scales[s], r, (unsigned long long)(begin + i), k, got, want);
                        values_compared++;
                    }
            for (int k = 0; k < 3; k++) {
                free(outs[k]);
                free(whole_outs[k]);
            }
            free(one);
            mpi_softmax_free(&ctx);
        }

        /* Sampling: every mode, many seeds. */
        mpi_softmax ctx;
        mpi_softmax_init(&ctx, MPI_COMM_WORLD, ROWS, top_k);
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
            for (uint64_t seed = 0; seed < 4; seed++) {
                softmax_sampler_params p;
                softmax_sampler_params_init(&p);
                p.temperature = modes[m].temperature;
                p.top_k = modes[m].top_k;
                p.top_p = modes[m].top_p;
                p.min_p = modes[m].min_p;
                p.seed = mix(seed * 1000 + trial);
                uint64_t step = seed * 3 + m;
                int64_t tokens[ROWS], expected[ROWS], everyone[ROWS];
                int status = mpi_softmax_sample(&ctx, &p, &slice, step, NULL, tokens);
                int whole_status = sample_whole(&p, &whole, top_k, step, expected);
                CHECK(status == SOFTMAX_E_NO_FINITE_LOGIT && whole_status == SOFTMAX_E_NO_FINITE_LOGIT,
                      "statuses %d / %d", status, whole_status);
                /* The same on every rank: rank 0's tokens against ours. */
                memcpy(everyone, tokens, sizeof everyone);
                MPI_Bcast(everyone, ROWS, MPI_INT64_T, 0, MPI_COMM_WORLD);
                for (size_t r = 0; r < ROWS; r++) {
                    CHECK(tokens[r] == expected[r] && tokens[r] == everyone[r],
                          "trial %llu mode %zu seed %llu row %zu: token %lld, one process %lld, rank 0 %lld",
                          (unsigned long long)trial, m, (unsigned long long)seed, r, (long long)tokens[r],
                          (long long)expected[r], (long long)everyone[r]);
                    draws_compared++;
                }
                CHECK(tokens[4] == -1 && tokens[5] == -1, "NaN and masked rows draw -1");
            }
        mpi_softmax_free(&ctx);
        free(x);
        free(whole_x);
    }

    int total_failures;
    MPI_Allreduce(&failures, &total_failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (my_rank == 0)
        printf("%d ranks: %zu draws and %zu values compared on rank 0, %d failures on all ranks\n", ranks,
               draws_compared, values_compared, total_failures);
    MPI_Finalize();
    return total_failures == 0 ? 0 : 1;
}
