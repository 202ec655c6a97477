/*
 * harness.h -- time candidates side by side: interleaved samples, fast-state
 * filter, medians.
 */
#ifndef SOFTMAX_BENCH_HARNESS_H
#define SOFTMAX_BENCH_HARNESS_H

#include <stddef.h>

#include "bench.h"

typedef enum candidate_role {
    ROLE_LIMIT,    /* memcpy: the physical limit */
    ROLE_ANCHOR,   /* an alternative a user could pick */
    ROLE_LIBRARY,  /* libsoftmax on the problem itself */
    ROLE_REFERENCE /* libsoftmax on a related problem, for an interleaved ratio */
} candidate_role;

typedef struct candidate {
    const char *name;
    candidate_role role;
    int available;
    const char *why_not; /* when not available */
    bench_runner runner;
    size_t elements; /* per call, for ns per element */
    size_t reps;     /* calls per sample */

    size_t samples;
    double *ns_per_element; /* per sample */
    double *probe_ns;       /* per sample: the slower of the probes before and after it */
    unsigned char *waited;  /* per sample: a thread waited for a core (fast_state_run_delay_ns) */

    /* harness_summarize() */
    double median; /* ns per element */
    size_t kept;   /* samples taken in the fast state, without waiting for a core */
    int slow_only; /* no fast sample: the median is over every sample */

    /* checks.c: against libsoftmax's output, and accuracy in ulp */
    int checked;
    double max_diff;
    int accuracy_checked;
    double max_ulp;
    size_t lost; /* tail outputs lost, see checks_ulp() */
} candidate;

typedef struct harness_settings {
    double sample_ns;  /* a sample lasts at least this long */
    size_t min_kept;   /* stop once every candidate has this many fast samples... */
    size_t max_rounds; /* ...or after this many rounds */
    int probe_threads; /* probe the cores of this many threads around each sample */
} harness_settings;

/* Times the available candidates of cands[0..count): chooses each one's
 * repetitions, then runs rounds in which every candidate takes one sample,
 * in an order rotated each round, each sample between two probes. */
void harness_measure(candidate *cands, size_t count, const harness_settings *settings);

/* Median over the fast samples (as judged against the fastest probe seen so
 * far: call again at the end of the run for the final verdict). */
void harness_summarize(candidate *c);

/* Fastest probe seen in this process, in ns; harness_calibrate() seeds it. */
double harness_fastest_probe(void);
void harness_calibrate(double seconds);
/* Probes seen / probes judged slow / samples in which a thread waited for a
 * core, for the report. */
void harness_probe_counts(size_t *probes, size_t *slow, size_t *waited);

double harness_median(double *values, size_t count);

#endif /* SOFTMAX_BENCH_HARNESS_H */
