/*
 * distributed_bench.c -- sampling over a vocabulary split across MPI ranks:
 * the slice summaries (examples/mpi_softmax.h) against all-gather-then-
 * sample (MPI_Allgatherv of every rank's logits, then softmax_sample on
 * the whole rows). Bytes per step -- the summaries: the buffers each rank
 * puts into its all-reduces; the all-gather: the logits each rank receives
 * -- and time per step, interleaved A B A B in one run.
 *
 *     mpirun -np 2 build-bench/bench/distributed_bench [--rows R] [--reps N] [--vocab V,...]
 *
 * Every rank generates the same logits and keeps its share of columns.
 * Times are per step as seen by rank 0 between two barriers (median of the
 * repetitions); the machine's cores are shared, so compare the two columns
 * of one run, not runs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_softmax.h"

/* The logit of (row, column), the same on every rank: a sum of three
 * uniforms (bell-shaped, spread about 4.3), roughly a language model's. */
static float logit_of(size_t row, uint64_t column)
{
    uint64_t h = (row * 0x9E3779B97F4A7C15u) ^ (column * 0xBF58476D1CE4E5B9u);
    h ^= h >> 31;
    h *= 0x94D049BB133111EBu;
    h ^= h >> 29;
    double sum = (double)(h & 0xfffff) + (double)((h >> 21) & 0xfffff) + (double)((h >> 42) & 0xfffff);
    return (float)((sum * 0x1p-20 - 1.5) * 5.0);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct gather_state {
    int ranks;
    int *counts, *displs;
    float *gathered, *rows_full;
} gather_state;

/* All-gather-then-sample: every rank receives all logits, rebuilds the
 * rows and samples them itself (the same tokens on every rank). */
static void allgather_sample(gather_state *g, const float *mine, size_t rows, uint64_t vocab, size_t cols,
                             const softmax_sampler_params *params, uint64_t step, int64_t *tokens)
{
    MPI_Allgatherv(mine, (int)(rows * cols), MPI_FLOAT, g->gathered, g->counts, g->displs, MPI_FLOAT, MPI_COMM_WORLD);
    for (int k = 0; k < g->ranks; k++) {
        uint64_t begin, end;
        mpi_softmax_share(vocab, k, g->ranks, &begin, &end);
        size_t width = (size_t)(end - begin);
        for (size_t r = 0; r < rows; r++)
            memcpy(g->rows_full + r * vocab + begin, g->gathered + g->displs[k] + r * width, width * sizeof(float));
    }
    softmax_sample(params, SOFTMAX_DTYPE_F32, g->rows_full, rows, (size_t)vocab, step, NULL, tokens, NULL, NULL);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    size_t rows = 8;
    int reps = 15;
    uint64_t vocabs[4] = {131072, 262144};
    int vocab_count = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) {
            vocab_count = 0;
            for (char *p = strtok(argv[++i], ","); p && vocab_count < 4; p = strtok(NULL, ","))
                vocabs[vocab_count++] = strtoull(p, NULL, 10);
        } else {
            if (rank == 0)
                fprintf(stderr, "usage: distributed_bench [--rows R] [--reps N] [--vocab V1,V2]\n");
            MPI_Finalize();
            return 2;
        }
    }
    struct {
        const char *name;
        double temperature;
        int64_t top_k;
        double top_p, min_p;
    } modes[] = {
        {"temperature 1", 1.0, 0, 1.0, 0.0}, {"top-k 50, T 0.8", 0.8, 50, 1.0, 0.0}, {"top-p 0.9", 1.0, 0, 0.9, 0.0},
        {"min-p 0.05", 1.0, 0, 1.0, 0.05},   {"greedy", 0.0, 0, 1.0, 0.0},
    };
    const int mode_count = (int)(sizeof modes / sizeof modes[0]);
    if (rank == 0) {
        printf("%d ranks, %zu rows per step, %d repetitions (median ms per step, rank 0, interleaved)\n\n", ranks, rows,
               reps);
        printf("| vocab | ranks | mode | summaries: bytes reduced per rank | all-gather: bytes received per rank | "
               "summaries ms | all-gather ms | ratio | same tokens |\n");
        printf("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    }
    for (int v = 0; v < vocab_count; v++) {
        uint64_t vocab = vocabs[v], begin, end;
        mpi_softmax_share(vocab, rank, ranks, &begin, &end);
        size_t cols = (size_t)(end - begin);
        float *mine = malloc(rows * cols * sizeof(float) + 1);
        gather_state g = {ranks, calloc((size_t)ranks, sizeof(int)), calloc((size_t)ranks, sizeof(int)),
                          malloc(rows * vocab * sizeof(float)), malloc(rows * vocab * sizeof(float))};
        for (int k = 0, at = 0; k < ranks; k++) {
            uint64_t b, e;
            mpi_softmax_share(vocab, k, ranks, &b, &e);
            g.counts[k] = (int)(rows * (e - b));
            g.displs[k] = at;
            at += g.counts[k];
        }
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < cols; i++)
                mine[r * cols + i] = logit_of(r, begin + i);
        softmax_slice slice = {SOFTMAX_DTYPE_F32, mine, rows, cols, begin, vocab, NULL};
        mpi_softmax ctx;
        mpi_softmax_init(&ctx, MPI_COMM_WORLD, rows, 64);
        for (int m = 0; m < mode_count; m++) {
            softmax_sampler_params params;
            softmax_sampler_params_init(&params);
            params.temperature = modes[m].temperature;
            params.top_k = modes[m].top_k;
            params.top_p = modes[m].top_p;
            params.min_p = modes[m].min_p;
            params.seed = 7;
            double *t_summary = malloc((size_t)reps * sizeof(double)),
                   *t_gather = malloc((size_t)reps * sizeof(double));
            int64_t *tokens = malloc(rows * sizeof(int64_t)), *tokens_gather = malloc(rows * sizeof(int64_t));
            unsigned long long bytes_before = 0, bytes_summary = 0;
            int same_greedy = 1;
            for (int rep = -1; rep < reps; rep++) { /* rep -1: warm-up */
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = MPI_Wtime();
                bytes_before = ctx.bytes_reduced;
                mpi_softmax_sample(&ctx, &params, &slice, (uint64_t)rep + 1, NULL, tokens);
                bytes_summary = ctx.bytes_reduced - bytes_before;
                MPI_Barrier(MPI_COMM_WORLD);
                double t1 = MPI_Wtime();
                allgather_sample(&g, mine, rows, vocab, cols, &params, (uint64_t)rep + 1, tokens_gather);
                MPI_Barrier(MPI_COMM_WORLD);
                double t2 = MPI_Wtime();
                if (rep >= 0) {
                    t_summary[rep] = (t1 - t0) * 1e3;
                    t_gather[rep] = (t2 - t1) * 1e3;
                }
                if (params.temperature == 0.0)
                    same_greedy &= memcmp(tokens, tokens_gather, rows * sizeof(int64_t)) == 0;
            }
            unsigned long long gather_bytes = (unsigned long long)rows * (vocab - cols) * sizeof(float);
            double ms_summary = median(t_summary, reps), ms_gather = median(t_gather, reps);
            if (rank == 0)
                printf("| %llu | %d | %s | %llu | %llu | %.3f | %.3f | %.2f | %s |\n", (unsigned long long)vocab, ranks,
                       modes[m].name, bytes_summary, gather_bytes, ms_summary, ms_gather, ms_summary / ms_gather,
                       params.temperature == 0.0 ? (same_greedy ? "yes (greedy)" : "NO") : "(other draw)");
            free(t_summary);
            free(t_gather);
            free(tokens);
            free(tokens_gather);
        }
        mpi_softmax_free(&ctx);
        free(mine);
        free(g.counts);
        free(g.displs);
        free(g.gathered);
        free(g.rows_full);
    }
    MPI_Finalize();
    return 0;
}
