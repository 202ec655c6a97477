/*
 * masked_rows_ab.c -- two builds of libsoftmax side by side in one process on
 * the table "Masks on rows of every length" of general_bench: scores
 * [B, T, T] f32 (B * T * T = 2^21, at least one), scale 1/8, a [T, T] mask
 * broadcast over B. Every sample calls each kind on each library in turn
 * (best of 3 calls), so that both see the same state of a shared machine;
 * prints per library the median unmasked ns per element and each masked
 * kind's median over the unmasked one.
 *
 *   cc -O2 -Iinclude bench/masked_rows_ab.c -o masked_rows_ab -ldl -lm
 *   SOFTMAX_ISA=avx512 ./masked_rows_ab BEFORE/libsoftmax.so AFTER/libsoftmax.so [LONGEST_T]
 *
 * LONGEST_T (default 4096) stops after that row length; MASKED_ROWS_AB_CPU=1
 * times the thread's CPU time instead of the wall clock.
 *
 * Where each library's workspace lands relative to x, y and the mask
 * moves T = 4096 by about 10 %: a library against a copy of itself ran
 * second 0.44 -> 0.49 ns per element, whichever copy was second. Run
 * under LD_PRELOAD=align_large_allocations.so (bench/
 * align_large_allocations.c) to place them alike (0.481 and 0.480).
 *
 * After each shape a "memory" line: the same sampling of two plain loops
 * over the same arrays, y = x (memcpy) and y = x + mask (the f32 [T, T]
 * mask broadcast over B), in ns per element -- what moving the data costs
 * before any arithmetic, the floor under the unmasked call and under a
 * fused f32 mask.
 *
 * The masks are those of causal attention (k <= q kept), so that half of
 * each row is whole vectors the mask excludes, which the kernels skip;
 * "where-scattered" is a `where` of random bytes (half kept, scattered),
 * where no vector is excluded whole.
 */
#define _POSIX_C_SOURCE 200809L
#include "softmax.h"
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef struct lib {
    void *h;
    int (*init)(softmax_desc *, softmax_op, softmax_dtype, size_t);
    int (*exec)(const softmax_desc *, const void *, const void *, void *);
    int (*convert)(void *, softmax_dtype, const void *, softmax_dtype, size_t);
    void (*threads)(int);
} lib;
static void load(lib *l, const char *p)
{
    l->h = dlopen(p, RTLD_NOW | RTLD_LOCAL);
    if (!l->h) {
        puts(dlerror());
        exit(2);
    }
    l->init = dlsym(l->h, "softmax_desc_init");
    l->exec = dlsym(l->h, "softmax_execute");
    l->convert = dlsym(l->h, "softmax_convert");
    l->threads = dlsym(l->h, "softmax_set_num_threads");
    l->threads(1);
}
/* Wall-clock time, or with MASKED_ROWS_AB_CPU=1 in the environment the
 * thread's CPU time (on a shared machine: the time the call ran, not the
 * time other jobs held the core). */
static clockid_t clock_used = CLOCK_MONOTONIC;
static double now(void)
{
    struct timespec t;
    clock_gettime(clock_used, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}
static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
enum { KINDS = 8, SAMPLES = 31 };

/* y = x + mask over B rows of T * T, the mask broadcast: vectorised (the
 * file is built with -O2) so that it measures memory, not the loop. */
__attribute__((optimize("tree-vectorize"))) static void add_broadcast(float *restrict y, const float *restrict x,
                                                                      const float *restrict mask, size_t B, size_t TT)
{
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < TT; i++)
            y[b * TT + i] = x[b * TT + i] + mask[i];
}

/* Median over SAMPLES of the best of 3: memcpy (add == 0) or add_broadcast. */
static double memory_loop(int add, float *y, const float *x, const float *mask, size_t B, size_t TT)
{
    static double samples[SAMPLES];
    for (int s = -2; s < SAMPLES; s++) {
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            const double a = now();
            if (add)
                add_broadcast(y, x, mask, B, TT);
            else
                memcpy(y, x, B * TT * sizeof *y);
            const double e = now() - a;
            best = e < best ? e : best;
        }
        if (s >= 0)
            samples[s] = best;
    }
    qsort(samples, SAMPLES, sizeof(double), cmp);
    return samples[SAMPLES / 2] / (double)(B * TT);
}
int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: masked_rows_ab BEFORE/libsoftmax.so AFTER/libsoftmax.so [LONGEST_T]\n");
        return 2;
    }
    const size_t longest = argc == 4 ? (size_t)strtoul(argv[3], NULL, 10) : 4096;
    const char *cpu = getenv("MASKED_ROWS_AB_CPU");
    if (cpu != NULL && strcmp(cpu, "1") == 0)
        clock_used = CLOCK_THREAD_CPUTIME_ID;
    lib L[2];
    load(&L[0], argv[1]);
    load(&L[1], argv[2]);
    static const size_t lengths[] = {16, 32, 64, 128, 256, 1024, 4096};
    static const char *names[KINDS] = {"unmasked",  "causal",   "where",        "mask-f32",
                                       "mask-bf16", "bias-f32", "alibi+causal", "where-scattered"};
    printf("| T | lib | unmasked ns/elem |");
    for (int k = 1; k < KINDS; k++)
        printf(" %s |", names[k]);
    printf("\n");
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        if (lengths[li] > longest)
            break;
        const size_t T = lengths[li], B = 2097152 / (T * T) ? 2097152 / (T * T) : 1;
        float *x = aligned_alloc(64, B * T * T * 4), *y = aligned_alloc(64, B * T * T * 4), *mask = malloc(T * T * 4),
              *bias = malloc(T * T * 4);
        uint16_t *mb = malloc(T * T * 2);
        uint8_t *keep = malloc(T * T), *scattered = malloc(T * T);
        srand(1);
        for (size_t i = 0; i < B * T * T; i++)
            x[i] = (float)((rand() / (double)RAND_MAX - 0.5) * 6);
        for (size_t q = 0; q < T; q++)
            for (size_t k = 0; k < T; k++) {
                keep[q * T + k] = k <= q;
                scattered[q * T + k] = (uint8_t)(rand() & 1);
                mask[q * T + k] = k <= q ? 0.0f : -INFINITY;
                bias[q * T + k] = k <= q ? (float)(-0.05 * (double)(q - k)) : -INFINITY;
            }
        L[0].convert(mb, SOFTMAX_DTYPE_BF16, mask, SOFTMAX_DTYPE_F32, T * T);
        static int64_t ms[3];
        ms[0] = 0;
        ms[1] = (int64_t)T;
        ms[2] = 1;
        softmax_desc d[2][KINDS];
        for (int l = 0; l < 2; l++) {
            L[l].init(&d[l][0], SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 3);
            d[l][0].ndim = 3;
            d[l][0].shape[0] = B;
            d[l][0].shape[1] = T;
            d[l][0].shape[2] = T;
            d[l][0].scale = 0.125;
            for (int k = 1; k < KINDS; k++)
                d[l][k] = d[l][0];
            d[l][1].causal = 1;
            d[l][2].where = keep, d[l][2].where_strides = ms;
            d[l][7].where = scattered, d[l][7].where_strides = ms;
            d[l][3].mask = mask, d[l][3].mask_strides = ms;
            d[l][4].mask = mb, d[l][4].mask_dtype = SOFTMAX_DTYPE_BF16, d[l][4].mask_strides = ms;
            d[l][5].mask = bias, d[l][5].mask_strides = ms;
            d[l][6].causal = 1, d[l][6].max_bias = 8.0, d[l][6].head_axis = 0;
        }
        static double t[2][KINDS][SAMPLES];
        for (int s = -2; s < SAMPLES; s++)
            for (int k = 0; k < KINDS; k++)
                for (int l = 0; l < 2; l++) {
                    double best = 1e30;
                    for (int rep = 0; rep < 3; rep++) {
                        double a = now();
                        if (L[l].exec(&d[l][k], x, NULL, y)) {
                            puts("fail");
                            return 1;
                        }
                        double e = now() - a;
                        best = e < best ? e : best;
                    }
                    if (s >= 0)
                        t[l][k][s] = best;
                }
        for (int l = 0; l < 2; l++) {
            double med[KINDS];
            for (int k = 0; k < KINDS; k++) {
                qsort(t[l][k], SAMPLES, sizeof(double), cmp);
                med[k] = t[l][k][SAMPLES / 2];
            }
            printf("| %zu x %zu x %zu | %s | %.3f |", B, T, T, l ? "after" : "before", med[0] / (double)(B * T * T));
            for (int k = 1; k < KINDS; k++)
                printf(" %.2f |", med[k] / med[0]);
            printf("\n");
        }
        /* A mask of finite values: -inf + x would be the same speed, but
         * keep the loop to plain numbers. */
        const double copy_ns = memory_loop(0, y, x, bias, B, T * T);
        for (size_t i = 0; i < T * T; i++)
            bias[i] = isinf(bias[i]) ? -1e4f : bias[i];
        const double add_ns = memory_loop(1, y, x, bias, B, T * T);
        /* Where the arrays lie within their pages moves the f32 mask's
         * cells at T = 4096 (docs/performance.md, "The staged masked row"):
         * printed so that runs compare like with like. */
        printf("| %zu x %zu x %zu | memory | y = x: %.3f ns/element | y = x + f32 mask: %.3f ns/element | "
               "page offsets: x %zu, y %zu, f32 mask %zu |\n",
               B, T, T, copy_ns, add_ns, (size_t)((uintptr_t)x % 4096), (size_t)((uintptr_t)y % 4096),
               (size_t)((uintptr_t)mask % 4096));
        fflush(stdout);
        free(x), free(y), free(mask), free(bias), free(mb), free(keep), free(scattered);
    }
    return 0;
}
