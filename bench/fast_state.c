/*
 * fast_state.c -- the register-only probe of fast_state.h.
 */
#include "fast_state.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* 50000 adds: ~12 us in the fast state, long enough that clock jitter and
 * the clock read itself are well under 1% of it, short enough to cost
 * nothing next to a >= 2 ms sample. */
enum { PROBE_ADDS = 50000 };

double fast_state_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e9 + (double)now.tv_nsec;
}

/* The empty asm makes `sum` opaque to the optimiser at every step, so the
 * loop stays a chain of dependent adds in a register: no memory, no closed
 * form, no vectorisation. noinline keeps its code identical at every call. */
__attribute__((noinline)) static uint64_t dependent_add_chain(uint64_t count)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < count; i++) {
        sum += i;
        __asm__ volatile("" : "+r"(sum));
    }
    return sum;
}

double fast_state_probe_ns(void)
{
    double start = fast_state_now_ns();
    uint64_t sink = dependent_add_chain(PROBE_ADDS);
    double elapsed = fast_state_now_ns() - start;
    __asm__ volatile("" : : "r"(sink));
    return elapsed;
}

double fast_state_calibrate(double seconds)
{
    double fastest = fast_state_probe_ns();
    double start = fast_state_now_ns();
    while (fast_state_now_ns() - start < seconds * 1e9) {
        double probe = fast_state_probe_ns();
        if (probe < fastest)
            fastest = probe;
    }
    return fastest;
}

/* Field 2 of one task's schedstat: "on-cpu ns, run-queue wait ns, slices". */
static double task_run_delay_ns(const char *task)
{
    char path[64];
    unsigned long long on_cpu = 0, waited = 0;
    snprintf(path, sizeof path, "/proc/self/task/%.20s/schedstat", task);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0.0; /* the thread has just exited */
    int fields = fscanf(f, "%llu %llu", &on_cpu, &waited);
    fclose(f);
    return fields == 2 ? (double)waited : 0.0;
}

double fast_state_run_delay_ns(void)
{
    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL)
        return -1.0;
    double total = 0.0;
    int seen = 0;
    for (struct dirent *entry = readdir(tasks); entry != NULL; entry = readdir(tasks)) {
        if (entry->d_name[0] == '.')
            continue;
        total += task_run_delay_ns(entry->d_name);
        seen++;
    }
    closedir(tasks);
    FILE *own = fopen("/proc/self/schedstat", "r");
    if (own == NULL)
        return -1.0; /* no schedstat in this kernel */
    fclose(own);
    return seen > 0 ? total : -1.0;
}
