/*
 * checks.h -- one call of the library, then a full comparison of its output
 * with the MPFR reference. Each returns the number of failures (the first
 * few are described on stderr, prefixed with the label) and, when stats is
 * not NULL, merges the measured errors into it.
 */
#ifndef SOFTMAX_TESTS_CHECKS_H
#define SOFTMAX_TESTS_CHECKS_H

#include <stddef.h>

#include "reference.h"
#include "softmax.h"
#include "testutil.h"

/* Jacobian entries: |J_ij - ref_ij| <= JACOBIAN_C * 2^-p * |scale| *
 * (delta_ij y_i + y_i y_j) (softmax) or |scale| * (delta_ij + exp(logy_j))
 * (log-softmax): a handful of roundings, the exp of the library included. */
#define JACOBIAN_C 8.0

const char *fwd_name(int log);

/* Softmax (log = 0) or log-softmax of rows x cols contiguous x, at the
 * contract's ulp bound, with exact zeros wherever the reference is exactly
 * zero (masked entries, losers of a limit) and rows summing to 1. */
size_t check_forward(softmax_dtype dt, int log, const void *x, size_t rows, size_t cols, double scale,
                     const char *label, err_stats *stats);

/* A gradient op (a = y or logy, b = dy or v) at the tolerance of
 * grad_tolerance(); an exactly zero reference demands exactly 0. */
size_t check_grad(softmax_op op, softmax_dtype dt, const void *a, const void *b, size_t rows, size_t cols, double scale,
                  const char *label, err_stats *stats);

/* The n x n Jacobian of one row at JACOBIAN_C; written to jacobian_out too
 * when that is not NULL. */
size_t check_jacobian(softmax_dtype dt, int log, const void *y, size_t n, double scale, const char *label,
                      err_stats *stats, void *jacobian_out);

/* rows x cols outputs of softmax (log = 0) or log-softmax of random logits
 * sigma * N(0, 1), each logit masked (-inf) with probability p_mask (one per
 * row always kept), computed by the reference and rounded: valid gradient
 * inputs that the library did not produce. */
void *reference_outputs(softmax_dtype dt, int log, size_t rows, size_t cols, double sigma, double p_mask,
                        test_rng *rng);

#endif /* SOFTMAX_TESTS_CHECKS_H */
