/*
 * testutil.h -- small helpers shared by the test programs: a seeded random
 * generator, typed buffers (f32 or f64 behind a void pointer), sentinel
 * fills, and one dispatching call per operation so that a test body can be
 * written once for both data types.
 */
#ifndef SOFTMAX_TESTS_TESTUTIL_H
#define SOFTMAX_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "softmax.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- random numbers (splitmix64: tiny, fixed sequence for a fixed seed) ---- */
typedef struct test_rng {
    uint64_t state;
} test_rng;

void rng_seed(test_rng *rng, uint64_t seed);
uint64_t rng_next(test_rng *rng);
double rng_uniform(test_rng *rng); /* [0, 1) */
double rng_range(test_rng *rng, double lo, double hi);
double rng_normal(test_rng *rng);
size_t rng_below(test_rng *rng, size_t n); /* [0, n) */

/* ---- typed buffers ---- */
extern const softmax_dtype test_dtypes[2]; /* F32, F64 */

size_t dtype_size(softmax_dtype dt);   /* every type; the other helpers: f32 and f64 */
int dtype_precision(softmax_dtype dt); /* 24 or 53 */
const char *dtype_name(softmax_dtype dt);
double dtype_eps(softmax_dtype dt);        /* 2^-23 or 2^-52 */
double dtype_min_normal(softmax_dtype dt); /* FLT_MIN or DBL_MIN */
double dtype_true_min(softmax_dtype dt);   /* smallest subnormal */
double dtype_max(softmax_dtype dt);        /* FLT_MAX or DBL_MAX */
/* v rounded to the data type (the value a buffer element would hold). */
double dtype_round(softmax_dtype dt, double v);

void *buf_alloc(softmax_dtype dt, size_t n); /* never NULL: aborts */
double buf_get(softmax_dtype dt, const void *buf, size_t i);
void buf_set(softmax_dtype dt, void *buf, size_t i, double v);
void *buf_at(softmax_dtype dt, void *buf, size_t i);
const void *buf_cat(softmax_dtype dt, const void *buf, size_t i);
/* Bitwise equality of element i of two buffers. */
int buf_bits_equal(softmax_dtype dt, const void *a, size_t i, const void *b, size_t j);

#define SENTINEL_BYTE 0xA5
void fill_sentinel(void *buf, size_t bytes);
/* 1 if every byte still holds the sentinel. */
int is_sentinel(const void *buf, size_t bytes);

/* ---- one call per operation, for either data type ----
 * For F32 the scale is converted to float; use scale_as(dt, s) to know the
 * value the library actually received. */
double scale_as(softmax_dtype dt, double scale);
int call_forward(softmax_dtype dt, int log, const void *x, void *y, size_t rows, size_t cols, double scale);
/* op: SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD or
 * SOFTMAX_OP_LOG_SOFTMAX_JVP; a = y / logy, b = dy / v. */
int call_grad(softmax_op op, softmax_dtype dt, const void *a, const void *b, void *out, size_t rows, size_t cols,
              double scale);
int call_jacobian(softmax_dtype dt, int log, const void *y, size_t n, double scale, void *jacobian);
const char *op_name(softmax_op op);

/* Sets the thread count and fails the test if that is refused. */
void set_threads_or_fail(int n);

double now_seconds(void);

/* Call first in main(). Prints the code path the library runs, selects the
 * accuracy bounds of that path (contract_ulp_bound) and returns
 * 0 to go on; returns 77 (the SKIP_RETURN_CODE of the CTest tests) when
 * SOFTMAX_ISA forces a path this CPU lacks, and 1 when the library runs a
 * path other than the one forced. */
#define TEST_SKIP_CODE 77
int isa_prologue(void);

#endif /* SOFTMAX_TESTS_TESTUTIL_H */
