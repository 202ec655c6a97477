/*
 * threads_ceiling.c -- how far two threads can go on this machine, against
 * how far the library's own split goes, on one softmax row.
 *
 *     cmake --build build-bench --target threads_ceiling
 *     build-bench/bench/threads_ceiling [N] [ROUNDS]      (default 256000, 31)
 *
 * Three ways to compute softmax (f32, scale 1) of a row of N elements,
 * interleaved in each round, the median of each printed in ns per element:
 *   one thread        softmax_f32 on the row, the library on one thread;
 *   library split     softmax_f32 on the row, the library on two threads
 *                     (its halves exchange maximum and sum: one barrier);
 *   independent       two threads each computing softmax_f32 of its own
 *   halves            half of the row (N/2 elements, no exchange, no
 *                     barrier but the region's end): the most two threads
 *                     can reach on this work, whatever the library does.
 * "one thread / independent halves" is the machine's ceiling for the
 * speed-up; "one thread / library split" is the library's. When the two
 * agree, what limits the split is the machine (two virtual cores, shared
 * caches and bandwidth, frequency), not the library's exchange.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "softmax.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { WAYS = 3, MAX_ROUNDS = 255 };

/* One sample: calls repeated for at least 5 ms; ns per element. */
static double sample(int way, const float *x, float *y, size_t n)
{
    long calls = 0;
    const double start = now_ns();
    double elapsed;
    do {
        if (way < 2) {
            if (softmax_f32(x, y, 1, n, 1.0f) != SOFTMAX_OK) {
                fprintf(stderr, "threads_ceiling: %s\n", softmax_last_error());
                exit(1);
            }
        } else {
            int failed = 0;
#pragma omp parallel num_threads(2) reduction(| : failed)
            {
                const size_t half = n / 2, first = (size_t)omp_get_thread_num() * half;
                failed |= softmax_f32(x + first, y + first, 1, half, 1.0f) != SOFTMAX_OK;
            }
            if (failed) {
                fprintf(stderr, "threads_ceiling: a half failed\n");
                exit(1);
            }
        }
        calls++;
        elapsed = now_ns() - start;
    } while (elapsed < 5e6);
    return elapsed / (double)calls / (double)n;
}

int main(int argc, char **argv)
{
    const size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) & ~(size_t)1 : 256000;
    int rounds = argc > 2 ? atoi(argv[2]) : 31;
    if (n < 2 || rounds < 1) {
        fprintf(stderr, "usage: %s [N (even, >= 2)] [ROUNDS]\n", argv[0]);
        return 2;
    }
    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    if (x == NULL || y == NULL)
        return 1;
    srand(1);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rand() / (float)RAND_MAX * 8.0f - 4.0f;
    static const char *const names[WAYS] = {"one thread", "library split", "independent halves"};
    static double times[WAYS][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < WAYS; k++) {
            const int way = (k + r) % WAYS; /* the order rotates per round */
            /* The library's thread count: 2 only for its own split; the
             * independent halves each run on one. */
            softmax_set_num_threads(way == 1 ? 2 : 1);
            times[way][r] = sample(way, x, y, n);
        }
    double median[WAYS];
    for (int k = 0; k < WAYS; k++) {
        qsort(times[k], (size_t)rounds, sizeof(double), compare_doubles);
        median[k] = times[k][rounds / 2];
    }
    printf("softmax f32 1x%zu, %d rounds, %s path, median ns per element\n", n, rounds, softmax_isa_name());
    for (int k = 0; k < WAYS; k++)
        printf("  %-20s %.4f  (speed-up over one thread %.2fx)\n", names[k], median[k], median[0] / median[k]);
    printf("library split / independent halves: %.2f\n", median[1] / median[2]);
    free(x);
    free(y);
    return 0;
}
