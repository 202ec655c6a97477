/*
 * mask_traffic.c -- where the time of a 0 / -inf f32 mask goes on rows of
 * 4096 f32 (the "Masks on rows of every length" cell that misses 1.2x):
 * the same call with the mask read from memory, with one mask row that
 * every line reuses (it stays in the cache: the mask's arithmetic without
 * its memory traffic), and with x itself small enough to stay in the cache
 * (the arithmetic alone). Scale 1/8, one thread, each kind's best of
 * ROUNDS calls, the kinds interleaved so that all see the same machine.
 *
 *   cc -O2 -Iinclude bench/mask_traffic.c -o mask_traffic build/libsoftmax.a -lm -fopenmp
 *   SOFTMAX_ISA=avx512 ./mask_traffic [ROUNDS]
 *
 * Rows: "x from memory" is scores [4096, 4096] (64 MiB each for x, y and
 * the mask); "x in cache" is [64, 4096] (1 MiB each), called again and
 * again. Kinds: unmasked; causal (no mask tensor: only the kept prefix
 * is read); mask [T, T] (the causal pattern as a tensor as large as x);
 * one row half kept (a [T] mask, its first half 0, broadcast over the
 * lines); one row all kept (a [T] mask of zeros).
 */
#define _POSIX_C_SOURCE 200809L
#include "softmax.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { T = 4096, CACHED_LINES = 64, KINDS = 5 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Lines from query first_query on (the cached rows take the middle of the
 * causal pattern: about half of each row kept, as over the whole [T, T]). */
static void describe(softmax_desc *d, size_t lines, size_t first_query, int kind, const float *mask,
                     const float *half_row, const float *zero_row)
{
    static const int64_t full_strides[2] = {T, 1}, row_strides[2] = {0, 1};
    softmax_desc_init(d, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, T);
    d->ndim = 2;
    d->shape[0] = lines;
    d->shape[1] = T;
    d->scale = 0.125;
    if (kind == 1)
        d->causal = 1, d->causal_offset = (int64_t)first_query;
    if (kind == 2)
        d->mask = mask + first_query * T, d->mask_strides = full_strides;
    if (kind == 3)
        d->mask = half_row, d->mask_strides = row_strides;
    if (kind == 4)
        d->mask = zero_row, d->mask_strides = row_strides;
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 15;
    static const char *names[KINDS] = {"unmasked", "causal", "mask [T, T]", "one row half kept", "one row all kept"};
    float *x = aligned_alloc(64, (size_t)T * T * 4), *y = aligned_alloc(64, (size_t)T * T * 4),
          *mask = aligned_alloc(64, (size_t)T * T * 4), *zero_row = calloc(T, 4);
    if (x == NULL || y == NULL || mask == NULL || zero_row == NULL)
        return 2;
    srand(1);
    for (size_t i = 0; i < (size_t)T * T; i++) {
        x[i] = (float)((rand() / (double)RAND_MAX - 0.5) * 6);
        y[i] = 0;
        mask[i] = i % T <= i / T ? 0.0f : -INFINITY; /* kept: k <= q */
    }
    const float *half_row = mask + (size_t)(T / 2) * T;
    softmax_set_num_threads(1);
    printf("| x | ISA %s |", softmax_isa_name());
    for (int k = 0; k < KINDS; k++)
        printf(" %s |", names[k]);
    printf("\n| --- | --- |");
    for (int k = 0; k < KINDS; k++)
        printf(" --- |");
    printf("\n");
    for (int in_cache = 0; in_cache < 2; in_cache++) {
        const size_t lines = in_cache ? CACHED_LINES : T;
        const int calls = in_cache ? 64 : 1; /* per timed sample */
        softmax_desc d[KINDS];
        double best[KINDS];
        for (int k = 0; k < KINDS; k++) {
            describe(&d[k], lines, in_cache ? T / 2 - CACHED_LINES / 2 : 0, k, mask, half_row, zero_row);
            best[k] = 1e30;
        }
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < KINDS; k++) {
                const double start = now();
                for (int c = 0; c < calls; c++)
                    if (softmax_execute(&d[k], x, NULL, y) != SOFTMAX_OK) {
                        fprintf(stderr, "%s: %s\n", names[k], softmax_last_error());
                        return 1;
                    }
                const double elapsed = (now() - start) / calls;
                best[k] = elapsed < best[k] ? elapsed : best[k];
            }
        printf("| %s | ns/element (/ unmasked) |", in_cache ? "in cache [64, 4096]" : "from memory [4096, 4096]");
        for (int k = 0; k < KINDS; k++)
            printf(" %.3f (%.2f) |", best[k] / ((double)lines * T) * 1e9, best[k] / best[0]);
        printf("\n");
    }
    free(x), free(y), free(mask), free(zero_row);
    return 0;
}
