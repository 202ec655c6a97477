/*
 * harness.c -- see harness.h. DESIGN.md, "Measuring on these machines":
 * candidates interleaved in one run (A B C A B C ...) and only samples taken
 * in the core's fast state.
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fast_state.h"

static double fastest_probe = INFINITY;
static size_t probe_count;
static size_t slow_probe_count;
static size_t waited_sample_count;

double harness_fastest_probe(void)
{
    return fastest_probe;
}

void harness_calibrate(double seconds)
{
    double fastest = fast_state_calibrate(seconds);
    if (fastest < fastest_probe)
        fastest_probe = fastest;
}

void harness_probe_counts(size_t *probes, size_t *slow, size_t *waited)
{
    *probes = probe_count;
    *slow = slow_probe_count;
    *waited = waited_sample_count;
}

/* The slowest of `threads` probes run at once, one per thread: a sample on
 * several threads is fast only if every core it used was. */
static double probe(int threads)
{
    double worst = 0.0;
    if (threads <= 1) {
        worst = fast_state_probe_ns();
    } else {
#pragma omp parallel num_threads(threads) reduction(max : worst)
        worst = fast_state_probe_ns();
    }
    if (worst < fastest_probe)
        fastest_probe = worst;
    probe_count++;
    if (worst > FAST_STATE_TOLERANCE * fastest_probe)
        slow_probe_count++;
    return worst;
}

static double time_calls(const candidate *c, size_t reps)
{
    double start = fast_state_now_ns();
    for (size_t r = 0; r < reps; r++)
        c->runner.run(c->runner.context);
    return fast_state_now_ns() - start;
}

/* Enough calls per sample for the sample to last settings->sample_ns. */
static size_t choose_reps(const candidate *c, double sample_ns)
{
    double one = time_calls(c, 1);
    size_t reps = 1;
    if (one < sample_ns) {
        reps = (size_t)ceil(sample_ns / (one > 1.0 ? one : 1.0));
        double measured = time_calls(c, reps);
        if (measured < sample_ns)
            reps = (size_t)ceil((double)reps * sample_ns / (measured > 1.0 ? measured : 1.0));
    }
    return reps;
}

static void take_sample(candidate *c, int probe_threads)
{
    double delay_before = fast_state_run_delay_ns();
    double before = probe(probe_threads);
    double elapsed = time_calls(c, c->reps);
    double after = probe(probe_threads);
    double delay_after = fast_state_run_delay_ns();
    c->ns_per_element[c->samples] = elapsed / (double)c->reps / (double)c->elements;
    c->probe_ns[c->samples] = before > after ? before : after;
    c->waited[c->samples] = delay_before >= 0.0 && delay_after - delay_before > FAST_STATE_MAX_WAIT * elapsed;
    waited_sample_count += c->waited[c->samples];
    c->samples++;
}

static int sample_counts(const candidate *c, size_t i)
{
    return c->probe_ns[i] <= FAST_STATE_TOLERANCE * fastest_probe && !c->waited[i];
}

static size_t fast_samples(const candidate *c)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->samples; i++)
        kept += sample_counts(c, i);
    return kept;
}

static int enough(const candidate *cands, size_t count, size_t min_kept)
{
    for (size_t i = 0; i < count; i++)
        if (cands[i].available && fast_samples(&cands[i]) < min_kept)
            return 0;
    return 1;
}

void harness_measure(candidate *cands, size_t count, const harness_settings *settings)
{
    for (size_t i = 0; i < count; i++) {
        candidate *c = &cands[i];
        c->samples = 0;
        c->ns_per_element = calloc(settings->max_rounds, sizeof(double));
        c->probe_ns = calloc(settings->max_rounds, sizeof(double));
        c->waited = calloc(settings->max_rounds, 1);
        if (c->ns_per_element == NULL || c->probe_ns == NULL || c->waited == NULL)
            c->available = 0;
        if (c->available)
            c->reps = choose_reps(c, settings->sample_ns);
    }
    for (size_t round = 0; round < settings->max_rounds; round++) {
        for (size_t k = 0; k < count; k++) {
            candidate *c = &cands[(k + round) % count];
            if (c->available)
                take_sample(c, settings->probe_threads);
        }
        if (round + 1 >= settings->min_kept && enough(cands, count, settings->min_kept))
            break;
    }
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double harness_median(double *values, size_t count)
{
    if (count == 0)
        return NAN;
    qsort(values, count, sizeof(double), compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

void harness_summarize(candidate *c)
{
    c->median = NAN;
    c->kept = 0;
    c->slow_only = 0;
    if (!c->available || c->samples == 0)
        return;
    double *values = malloc(c->samples * sizeof(double));
    if (values == NULL)
        return;
    for (size_t i = 0; i < c->samples; i++)
        if (sample_counts(c, i))
            values[c->kept++] = c->ns_per_element[i];
    if (c->kept == 0) {
        memcpy(values, c->ns_per_element, c->samples * sizeof(double));
        c->slow_only = 1;
        c->median = harness_median(values, c->samples);
    } else {
        c->median = harness_median(values, c->kept);
    }
    free(values);
}
