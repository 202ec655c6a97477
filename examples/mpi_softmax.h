/*
 * mpi_softmax.h -- libsoftmax's slice summaries over MPI: a vocabulary
 * split across the ranks of a communicator, with the summaries as the only
 * data exchanged (MPI_Allreduce with user-defined MPI_Ops that call the
 * library's merges). Header-only, for examples/mpi_sample.c, the MPI test
 * and the distributed benchmark; copy it into a program that needs it.
 *
 *     mpi_softmax ctx;
 *     mpi_softmax_init(&ctx, MPI_COMM_WORLD, rows, top_k);
 *     mpi_softmax_summarise(&ctx, &slice, scale);      // ctx.merged: the records
 *     softmax_summary_softmax(&slice, ctx.merged, 0, y); // this rank's columns
 *     mpi_softmax_sample(&ctx, &params, &slice, step, NULL, tokens);
 *     mpi_softmax_free(&ctx);
 *
 * Every rank calls every function (they are collective). The merges are
 * commutative; the sampled tokens depend only on the exact fields of the
 * records and on exact integer sums, so every rank gets the same tokens,
 * and the same as one process holding the whole row.
 */
#ifndef MPI_SOFTMAX_H
#define MPI_SOFTMAX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "softmax.h"

typedef struct mpi_softmax {
    MPI_Comm comm;
    size_t rows, top_k, record_bytes;
    void *merged;                 /* rows records: the merged summaries */
    softmax_top_p_search *search; /* rows */
    softmax_top_p_bin *bins;      /* rows * SOFTMAX_TOP_P_BINS */
    softmax_draw *draws;          /* rows */
    MPI_Datatype record_type, bins_type, draw_type;
    MPI_Op record_op, bins_op, draw_op;
    unsigned long long bytes_reduced; /* payload bytes of every all-reduce so far */
    unsigned reductions;              /* all-reduces so far */
} mpi_softmax;

/* A failed merge inside a reduction cannot return a status: abort. */
static inline void mpi_softmax_check(int status, const char *what)
{
    if (status < 0) {
        fprintf(stderr, "%s: %s (%s)\n", what, softmax_strerror(status), softmax_last_error());
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
}

static inline void mpi_softmax_merge_records(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    mpi_softmax_check(softmax_summary_merge(inout, in, (size_t)*len), "softmax_summary_merge");
}

static inline void mpi_softmax_merge_bins(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    mpi_softmax_check(softmax_top_p_bins_merge(inout, in, (size_t)*len), "softmax_top_p_bins_merge");
}

static inline void mpi_softmax_merge_draws(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    mpi_softmax_check(softmax_draw_merge(inout, in, (size_t)*len), "softmax_draw_merge");
}

/* Contiguous bytes as one MPI element (one row's record, bins or draw). */
static inline MPI_Datatype mpi_softmax_bytes_type(size_t bytes)
{
    MPI_Datatype type;
    MPI_Type_contiguous((int)bytes, MPI_BYTE, &type);
    MPI_Type_commit(&type);
    return type;
}

/* Collective. rows: rows of every call; top_k: the candidate capacity of
 * the records (>= any top_k sampled with). Returns 0 or -1 (no memory). */
static inline int mpi_softmax_init(mpi_softmax *ctx, MPI_Comm comm, size_t rows, size_t top_k)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->comm = comm;
    ctx->rows = rows;
    ctx->top_k = top_k;
    ctx->record_bytes = softmax_summary_bytes(top_k);
    ctx->merged = calloc(rows ? rows : 1, ctx->record_bytes);
    ctx->search = calloc(rows ? rows : 1, sizeof *ctx->search);
    ctx->bins = calloc((rows ? rows : 1) * SOFTMAX_TOP_P_BINS, sizeof *ctx->bins);
    ctx->draws = calloc(rows ? rows : 1, sizeof *ctx->draws);
    if (!ctx->merged || !ctx->search || !ctx->bins || !ctx->draws)
        return -1;
    ctx->record_type = mpi_softmax_bytes_type(ctx->record_bytes);
    ctx->bins_type = mpi_softmax_bytes_type(SOFTMAX_TOP_P_BINS * sizeof(softmax_top_p_bin));
    ctx->draw_type = mpi_softmax_bytes_type(sizeof(softmax_draw));
    MPI_Op_create(mpi_softmax_merge_records, 1, &ctx->record_op);
    MPI_Op_create(mpi_softmax_merge_bins, 1, &ctx->bins_op);
    MPI_Op_create(mpi_softmax_merge_draws, 1, &ctx->draw_op);
    return 0;
}

static inline void mpi_softmax_free(mpi_softmax *ctx)
{
    MPI_Op_free(&ctx->record_op);
    MPI_Op_free(&ctx->bins_op);
    MPI_Op_free(&ctx->draw_op);
    MPI_Type_free(&ctx->record_type);
    MPI_Type_free(&ctx->bins_type);
    MPI_Type_free(&ctx->draw_type);
    free(ctx->merged);
    free(ctx->search);
    free(ctx->bins);
    free(ctx->draws);
}

static inline void mpi_softmax_allreduce(mpi_softmax *ctx, void *buffer, size_t bytes_per_row, MPI_Datatype type,
                                         MPI_Op op)
{
    MPI_Allreduce(MPI_IN_PLACE, buffer, (int)ctx->rows, type, op, ctx->comm);
    ctx->bytes_reduced += (unsigned long long)ctx->rows * bytes_per_row;
    ctx->reductions++;
}

/* Summarises this rank's slice and merges the records of every rank into
 * ctx->merged (collective). */
static inline int mpi_softmax_summarise(mpi_softmax *ctx, const softmax_slice *slice, double scale)
{
    int status = softmax_summary_compute(slice, scale, ctx->top_k, ctx->merged);
    /* Every rank must take part in the reduction: agree on failure first. */
    int failed = status != SOFTMAX_OK, any_failed;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_LOR, ctx->comm);
    if (any_failed)
        return status != SOFTMAX_OK ? status : SOFTMAX_E_INVALID_ARGUMENT;
    mpi_softmax_allreduce(ctx, ctx->merged, ctx->record_bytes, ctx->record_type, ctx->record_op);
    return SOFTMAX_OK;
}

/* Draws one token per row (collective): the same tokens on every rank.
 * Needs ctx's capacity >= params->top_k when top-k is on. Returns the
 * status of softmax_sample_finish (SOFTMAX_E_NO_FINITE_LOGIT for rows
 * without a distribution: their index is -1). */
static inline int mpi_softmax_sample(mpi_softmax *ctx, const softmax_sampler_params *params, const softmax_slice *slice,
                                     uint64_t step, const uint64_t *stream_ids, int64_t *indices)
{
    /* Step 1: records without the sums, of the capacity top-k needs. */
    size_t capacity = softmax_sample_capacity(params, slice->vocab);
    if (capacity > ctx->top_k)
        return SOFTMAX_E_INVALID_ARGUMENT;
    size_t bytes = softmax_summary_bytes(capacity);
    int status = softmax_sample_summarize(params, slice, ctx->merged);
    int failed = status != SOFTMAX_OK, any_failed;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_LOR, ctx->comm);
    if (any_failed)
        return status != SOFTMAX_OK ? status : SOFTMAX_E_INVALID_ARGUMENT;
    MPI_Datatype type = ctx->record_type;
    if (bytes != ctx->record_bytes)
        type = mpi_softmax_bytes_type(bytes);
    mpi_softmax_allreduce(ctx, ctx->merged, bytes, type, ctx->record_op);
    if (type != ctx->record_type)
        MPI_Type_free(&type);
    int needs = softmax_sample_rounds(params, slice->vocab);
    if (needs < 0)
        return needs;
    if (needs & SOFTMAX_SAMPLE_NEEDS_TOP_P) {
        mpi_softmax_check(softmax_top_p_start(params, ctx->merged, ctx->rows, ctx->search), "softmax_top_p_start");
        int searching;
        do {
            mpi_softmax_check(softmax_top_p_histogram(params, slice, ctx->merged, ctx->search, ctx->bins),
                              "softmax_top_p_histogram");
            mpi_softmax_allreduce(ctx, ctx->bins, SOFTMAX_TOP_P_BINS * sizeof(softmax_top_p_bin), ctx->bins_type,
                                  ctx->bins_op);
            searching = softmax_top_p_narrow(ctx->search, ctx->bins, ctx->rows);
            mpi_softmax_check(searching, "softmax_top_p_narrow");
        } while (searching > 0);
    }
    if (needs & SOFTMAX_SAMPLE_NEEDS_RACE) {
        mpi_softmax_check(softmax_sample_race(params, slice, ctx->merged,
                                              (needs & SOFTMAX_SAMPLE_NEEDS_TOP_P) ? ctx->search : NULL, step,
                                              stream_ids, ctx->draws),
                          "softmax_sample_race");
        mpi_softmax_allreduce(ctx, ctx->draws, sizeof(softmax_draw), ctx->draw_type, ctx->draw_op);
    }
    return softmax_sample_finish(params, ctx->merged, ctx->rows, ctx->search, ctx->draws, step, stream_ids, indices);
}

/* The columns [begin, end) of rank `rank` among `ranks` for a vocabulary of
 * `vocab`: near-equal contiguous shares. */
static inline void mpi_softmax_share(uint64_t vocab, int rank, int ranks, uint64_t *begin, uint64_t *end)
{
    *begin = vocab * (uint64_t)rank / (uint64_t)ranks;
    *end = vocab * (uint64_t)(rank + 1) / (uint64_t)ranks;
}

#endif /* MPI_SOFTMAX_H */
