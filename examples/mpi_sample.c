/*
 * mpi_sample.c -- a vocabulary split across MPI ranks: cross-entropy,
 * softmax of each rank's columns and sampled tokens, with per-row summaries
 * as the only data exchanged.
 *
 *     mpirun -np 4 ./mpi_sample            (Open MPI as root: add --allow-run-as-root)
 *
 * Each rank holds the columns [begin, end) of every row of logits (here it
 * makes them itself, as the output layer of a tensor-parallel model would).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mpi_softmax.h"

enum { ROWS = 4, VOCAB = 50000, TOP_K = 50 };

/* The logit of (row, column): the same on every rank. */
static float logit_of(size_t row, uint64_t column)
{
    uint64_t h = (row * 0x9E3779B97F4A7C15u) ^ (column * 0xBF58476D1CE4E5B9u);
    h ^= h >> 31;
    h *= 0x94D049BB133111EBu;
    h ^= h >> 29;
    return (float)((double)(h >> 11) * 0x1p-53 * 12.0 - 6.0);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);

    uint64_t begin, end;
    mpi_softmax_share(VOCAB, rank, ranks, &begin, &end);
    size_t cols = (size_t)(end - begin);
    float *logits = malloc(ROWS * cols * sizeof(float) + 1);
    float *probs = malloc(ROWS * cols * sizeof(float) + 1);
    if (logits == NULL || probs == NULL)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (size_t r = 0; r < ROWS; r++)
        for (size_t i = 0; i < cols; i++)
            logits[r * cols + i] = logit_of(r, begin + i);
    int64_t targets[ROWS] = {17, 4242, 31337, 49999};
    softmax_slice slice = {SOFTMAX_DTYPE_F32, logits, ROWS, cols, begin, VOCAB, targets};

    mpi_softmax ctx;
    if (mpi_softmax_init(&ctx, MPI_COMM_WORLD, ROWS, TOP_K) != 0)
        MPI_Abort(MPI_COMM_WORLD, 1);

    /* Cross-entropy: one reduction of the records, then local work. */
    double lse[ROWS], entropy[ROWS], nll[ROWS];
    int64_t argmax[ROWS];
    int status = mpi_softmax_summarise(&ctx, &slice, 1.0);
    if (status == SOFTMAX_OK)
        status = softmax_summary_stats(ctx.merged, ROWS, lse, entropy, argmax, nll);
    if (status == SOFTMAX_OK) /* p = softmax(x) of this rank's columns, and the NLL gradient */
        status = softmax_summary_softmax(&slice, ctx.merged, 0, probs);
    if (status != SOFTMAX_OK) {
        fprintf(stderr, "rank %d: %s (%s)\n", rank, softmax_strerror(status), softmax_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank == 0)
        for (size_t r = 0; r < ROWS; r++)
            printf("row %zu: logsumexp %.9f  entropy %.9f  arg max %lld  NLL of %lld %.9f\n", r, lse[r], entropy[r],
                   (long long)argmax[r], (long long)targets[r], nll[r]);

    /* Sampling: temperature 0.8, top-k 50, top-p 0.9, min-p 0.05; the
     * tokens are the same on every rank, and for any number of ranks. */
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    params.temperature = 0.8;
    params.top_k = TOP_K;
    params.top_p = 0.9;
    params.min_p = 0.05;
    params.seed = 2024;
    for (uint64_t step = 0; step < 3; step++) {
        int64_t tokens[ROWS];
        status = mpi_softmax_sample(&ctx, &params, &slice, step, NULL, tokens);
        if (status != SOFTMAX_OK) {
            fprintf(stderr, "rank %d: %s (%s)\n", rank, softmax_strerror(status), softmax_last_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (rank == 0)
            printf("step %llu: tokens %lld %lld %lld %lld\n", (unsigned long long)step, (long long)tokens[0],
                   (long long)tokens[1], (long long)tokens[2], (long long)tokens[3]);
    }
    /* Without top-k the race runs on every rank: top-p 0.9 alone. */
    params.top_k = 0;
    int64_t tokens[ROWS];
    status = mpi_softmax_sample(&ctx, &params, &slice, 3, NULL, tokens);
    if (status != SOFTMAX_OK)
        MPI_Abort(MPI_COMM_WORLD, 1);
    if (rank == 0) {
        printf("top-p 0.9 alone: tokens %lld %lld %lld %lld\n", (long long)tokens[0], (long long)tokens[1],
               (long long)tokens[2], (long long)tokens[3]);
        printf("%u all-reduces, %llu bytes of summaries per rank (vs %zu bytes of logits for one all-gather)\n",
               ctx.reductions, ctx.bytes_reduced, (size_t)ROWS * VOCAB * sizeof(float));
    }
    mpi_softmax_free(&ctx);
    free(logits);
    free(probs);
    MPI_Finalize();
    return 0;
}
