/*
 * checks.h -- is each candidate computing what it claims? A loose comparison
 * with libsoftmax's output (catches a misconfigured anchor), its accuracy in
 * ulp against a double-precision reference, and how it treats the edge rows
 * of the numerics contract (masked rows, +inf).
 */
#ifndef SOFTMAX_BENCH_CHECKS_H
#define SOFTMAX_BENCH_CHECKS_H

#include <stddef.h>

#include "bench.h"

/* Above this, a candidate's output disagrees with libsoftmax's: a warning. */
#define CHECK_TOLERANCE 1e-5

/* Largest |out - ref| over n elements; for log-softmax, relative to
 * max(|ref|, 1). A NaN where the other has none counts as infinite. */
double checks_max_diff(const float *out, const float *ref, size_t n, bench_op op);

/* reference[i] = softmax or log-softmax of (double)scale * x, in double,
 * along the problem's axis (forward and log only). */
void checks_reference(const bench_problem *problem, double *reference);

/* Softmax outputs below this (but >= FLT_MIN) are the "tail": the anchors'
 * exps underflow there, so the max ulp is taken over outputs above it (as in
 * the speed targets) and the tail is checked apart, for outputs lost outright. */
#define CHECK_TAIL_BELOW 1e-30
/* A tail output is lost when it comes back 0 or off by this relative error
 * (~8000 ulp): not rounding, a wrong value. */
#define CHECK_LOST_RELATIVE 1e-3

/* Max error in float ulp of out against reference: softmax over outputs
 * >= CHECK_TAIL_BELOW, log-softmax over all outputs in ulp of max(|y|, 1).
 * *lost counts softmax outputs in [FLT_MIN, CHECK_TAIL_BELOW) that are lost
 * (see CHECK_LOST_RELATIVE). */
void checks_ulp(const float *out, const double *reference, size_t n, bench_op op, double *max_ulp, size_t *lost);

typedef enum edge_case {
    EDGE_ALL_MINUS_INF = 0, /* a fully masked row */
    EDGE_PLUS_INF = 1,      /* one element +inf */
    EDGE_SOME_MINUS_INF = 2 /* half the elements -inf (a mask) */
} edge_case;
#define EDGE_CASES 3

/* Runs the candidate on one row of the edge case (scale 1) and returns "ok"
 * (the contract's answer), "NaN", "inf" (infinite probabilities, or +inf
 * log-probabilities), "wrong" or "n/a". */
const char *checks_edge(bench_prepare_fn prepare, bench_op op, edge_case which);

#endif /* SOFTMAX_BENCH_CHECKS_H */
