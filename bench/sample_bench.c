/*
 * sample_bench.c -- per-token latency of softmax_sample() for the common
 * decoding setups, next to this library's softmax of the same rows and a
 * plain read of the same bytes, measured interleaved (A B C ... A B C ...)
 * so that the machine's speed changes hit every candidate alike. Medians.
 *
 *   sample_bench [--quick] [--threads N] [--markdown] [--csv FILE]
 *
 * Logits: 3 * N(0, 1) per element (a fixed seed), f32, contiguous rows.
 * Every call draws one token per row; the per-token figure is the call's
 * time divided by the batch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <softmax.h>

typedef enum mode {
    MODE_READ,
    MODE_SOFTMAX,
    MODE_GREEDY,
    MODE_TEMPERATURE,
    MODE_TOP_K,
    MODE_TOP_P,
    MODE_COMBINED,
    MODE_COUNT
} mode;

static const char *const mode_names[MODE_COUNT] = {
    "read", "softmax", "greedy", "temperature", "top-k 40", "top-p 0.95", "k40+p0.95+min-p0.05",
};

static const double temperature = 0.8;

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* splitmix64 and Box-Muller: reproducible logits without libc's rand(). */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double next_normal(uint64_t *state)
{
    double u1 = ((double)(next_random(state) >> 11) + 0.5) * 0x1p-53;
    double u2 = (double)(next_random(state) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A read of the bytes the sampler reads: greedy's physical limit. */
static uint32_t read_bytes(const float *x, size_t n)
{
    const uint32_t *words = (const uint32_t *)(const void *)x;
    uint32_t folded = 0;
    for (size_t i = 0; i < n; i++)
        folded ^= words[i];
    return folded;
}

static volatile uint32_t read_sink;

static void run_mode(mode m, const float *x, float *y, size_t rows, size_t vocab, uint64_t step, int64_t *indices)
{
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    params.temperature = temperature;
    params.seed = 42;
    switch (m) {
    case MODE_READ:
        read_sink = read_bytes(x, rows * vocab);
        return;
    case MODE_SOFTMAX:
        softmax_f32(x, y, rows, vocab, (float)(1.0 / temperature));
        return;
    case MODE_GREEDY:
        params.temperature = 0.0;
        break;
    case MODE_TEMPERATURE:
        break;
    case MODE_TOP_K:
        params.top_k = 40;
        break;
    case MODE_TOP_P:
        params.top_p = 0.95;
        break;
    default:
        params.top_k = 40;
        params.top_p = 0.95;
        params.min_p = 0.05;
        break;
    }
    if (softmax_sample(&params, SOFTMAX_DTYPE_F32, x, rows, vocab, step, NULL, indices, NULL, NULL) != SOFTMAX_OK) {
        fprintf(stderr, "softmax_sample failed: %s\n", softmax_last_error());
        exit(1);
    }
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int quick = 0, markdown = 0, threads = 1;
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--markdown")) {
            markdown = 1;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv_path = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--threads N] [--markdown] [--csv FILE]\n", argv[0]);
            return 2;
        }
    }
    softmax_set_num_threads(threads);
    static const size_t vocabularies[] = {32000, 128256, 151936, 262144};
    static const size_t batches[] = {1, 64};
    size_t largest = 64 * 262144;
    float *x = malloc(largest * sizeof *x), *y = malloc(largest * sizeof *y);
    int64_t *indices = malloc(64 * sizeof *indices);
    if (x == NULL || y == NULL || indices == NULL)
        return 1;
    uint64_t state = 2024;
    for (size_t i = 0; i < largest; i++)
        x[i] = (float)(3.0 * next_normal(&state));
    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv)
        fprintf(csv, "vocab,batch,mode,median_us_per_token,samples\n");

    printf("%sSampling, f32 logits 3*N(0,1), T = %.1f, %d thread(s), code path %s; median microseconds per token "
           "(modes interleaved)%s\n\n",
           markdown ? "" : "# ", temperature, threads, softmax_isa_name(), markdown ? "" : "");
    printf("| vocab | batch |");
    for (int m = 0; m < MODE_COUNT; m++)
        printf(" %s |", mode_names[m]);
    printf(" temperature / softmax | top-p / temperature | greedy / read |\n|---|---|");
    for (int m = 0; m < MODE_COUNT + 3; m++)
        printf("---|");
    printf("\n");
    for (size_t v = 0; v < sizeof vocabularies / sizeof *vocabularies; v++) {
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            size_t vocab = vocabularies[v], rows = batches[b];
            /* about 0.2 s (quick: 0.05 s) per mode and shape */
            double work = (double)vocab * (double)rows * 5e-10;
            int rounds = (int)((quick ? 0.05 : 0.2) / (work > 1e-6 ? work : 1e-6));
            rounds = rounds < 7 ? 7 : rounds > 301 ? 301 : rounds;
            double *samples[MODE_COUNT];
            for (int m = 0; m < MODE_COUNT; m++)
                samples[m] = malloc((size_t)rounds * sizeof(double));
            for (int m = 0; m < MODE_COUNT; m++) /* warm-up: pages, workspaces, caches */
                run_mode((mode)m, x, y, rows, vocab, 0, indices);
            for (int r = 0; r < rounds; r++) {
                for (int m = 0; m < MODE_COUNT; m++) {
                    double start = seconds_now();
                    run_mode((mode)m, x, y, rows, vocab, (uint64_t)r + 1, indices);
                    samples[m][r] = (seconds_now() - start) / (double)rows * 1e6;
                }
            }
            double median[MODE_COUNT];
            for (int m = 0; m < MODE_COUNT; m++) {
                qsort(samples[m], (size_t)rounds, sizeof(double), compare_doubles);
                median[m] = samples[m][rounds / 2];
                if (csv)
                    fprintf(csv, "%zu,%zu,%s,%.3f,%d\n", vocab, rows, mode_names[m], median[m], rounds);
                free(samples[m]);
            }
            printf("| %zu | %zu |", vocab, rows);
            for (int m = 0; m < MODE_COUNT; m++)
                printf(" %.1f |", median[m]);
            printf(" %.2f | %.2f | %.2f |\n", median[MODE_TEMPERATURE] / median[MODE_SOFTMAX],
                   median[MODE_TOP_P] / median[MODE_TEMPERATURE], median[MODE_GREEDY] / median[MODE_READ]);
            fflush(stdout);
        }
    }
    if (csv)
        fclose(csv);
    free(x);
    free(y);
    free(indices);
    return 0;
}
