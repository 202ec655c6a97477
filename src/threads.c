/*
 * threads.c -- the thread count: set by the caller, from the environment, or
 * the number of online cores.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(_WIN32)
#include <windows.h>
#else
#include <unistd.h>
#endif

#include "internal.h"

/* Below this many elements a job runs on the calling thread: waking a team
 * costs a few microseconds, which is more than the whole job. */
enum { MIN_ELEMENTS_PER_THREAD = 32768 };
/* An upper bound that keeps absurd settings from exhausting the system. */
enum { MAX_THREADS = 1024 };

/* 0 means "use the default". Atomic because softmax_set_num_threads() may
 * run while other threads compute; relaxed, because the count publishes no
 * other data (a call sees the old count or the new one, both valid). A
 * sequentially consistent store is a locked exchange: 9% of a 1x10 call in
 * a loop that sets the count before each call. */
static atomic_int requested_threads;
static int default_threads = 1;
static pthread_once_t default_threads_once = PTHREAD_ONCE_INIT;

static int parse_thread_count(const char *text)
{
    if (text == NULL || *text == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 1 || value > MAX_THREADS)
        return 0;
    return (int)value;
}

static void compute_default_threads(void)
{
    int from_environment = parse_thread_count(getenv("SOFTMAX_NUM_THREADS"));
    if (from_environment > 0) {
        default_threads = from_environment;
        return;
    }
#if defined(_WIN32)
    SYSTEM_INFO system;
    GetSystemInfo(&system);
    long online = (long)system.dwNumberOfProcessors;
#else
    long online = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    default_threads = online < 1 ? 1 : online > MAX_THREADS ? MAX_THREADS : (int)online;
}

int softmax_set_num_threads(int n)
{
    softmax_clear_error();
    if (n < 0)
        return softmax_fail(SOFTMAX_E_INVALID_THREADS, "softmax_set_num_threads: n = %d is negative", n);
    atomic_store_explicit(&requested_threads, n > MAX_THREADS ? MAX_THREADS : n, memory_order_relaxed);
    return SOFTMAX_OK;
}

int softmax_get_num_threads(void)
{
    int requested = atomic_load_explicit(&requested_threads, memory_order_relaxed);
    if (requested > 0)
        return requested;
    pthread_once(&default_threads_once, compute_default_threads);
    return default_threads;
}

int softmax_threads_for_job(size_t elements, size_t lines)
{
#ifndef _OPENMP
    /* A build without OpenMP: every job on the calling thread. */
    (void)elements, (void)lines;
    return 1;
#endif
    size_t threads = (size_t)softmax_get_num_threads();
    size_t by_size = elements / MIN_ELEMENTS_PER_THREAD;
    if (threads > by_size)
        threads = by_size;
    if (threads > lines)
        threads = lines;
    return threads < 1 ? 1 : (int)threads;
}
