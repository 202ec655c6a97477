/*
 * checks.c -- see checks.h.
 */
#include "checks.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

double checks_max_diff(const float *out, const float *ref, size_t n, bench_op op)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = out[i], b = ref[i];
        if (isnan(a) || isnan(b)) {
            if (isnan(a) != isnan(b))
                return INFINITY;
            continue;
        }
        if (a == b)
            continue; /* also equal infinities */
        double diff = fabs(a - b);
        if (op == BENCH_LOG && fabs(b) > 1.0)
            diff /= fabs(b);
        if (!(diff <= worst))
            worst = diff;
    }
    return worst;
}

/* One line of n elements `stride` apart. */
static void reference_line(const float *x, double *reference, size_t n, size_t stride, double scale, bench_op op)
{
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        max = fmax(max, scale * x[i * stride]);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += exp(scale * x[i * stride] - max);
    double log_sum = log(sum);
    for (size_t i = 0; i < n; i++) {
        double shifted = scale * x[i * stride] - max;
        reference[i * stride] = op == BENCH_LOG ? shifted - log_sum : exp(shifted) / sum;
    }
}

void checks_reference(const bench_problem *p, double *reference)
{
    const double scale = p->scale;
    if (p->axis == 0) {
        for (size_t c = 0; c < p->cols; c++)
            reference_line(p->x + c, reference + c, p->rows, p->cols, scale, p->op);
    } else {
        for (size_t r = 0; r < p->rows; r++)
            reference_line(p->x + r * p->cols, reference + r * p->cols, p->cols, 1, scale, p->op);
    }
}

/* The spacing of floats at |value| (a normal float's ulp). */
static double float_ulp(double value)
{
    int exponent;
    frexp(fabs(value), &exponent);
    return ldexp(1.0, exponent - FLT_MANT_DIG);
}

void checks_ulp(const float *out, const double *reference, size_t n, bench_op op, double *max_ulp, size_t *lost)
{
    *max_ulp = 0.0;
    *lost = 0;
    for (size_t i = 0; i < n; i++) {
        double want = reference[i];
        if (op == BENCH_LOG) {
            double error = fabs(out[i] - want) / float_ulp(fmax(fabs(want), 1.0));
            if (!(error <= *max_ulp))
                *max_ulp = error; /* NaN sticks */
        } else if (want >= CHECK_TAIL_BELOW) {
            double error = fabs(out[i] - want) / float_ulp(want);
            if (!(error <= *max_ulp))
                *max_ulp = error;
        } else if (want >= FLT_MIN) {
            *lost += !(fabs(out[i] - want) <= CHECK_LOST_RELATIVE * want);
        }
    }
}

enum { EDGE_COLS = 1000 };

static void fill_edge_row(float *x, edge_case which)
{
    uint32_t state = 12345u;
    for (size_t i = 0; i < EDGE_COLS; i++) {
        state = state * 1664525u + 1013904223u;
        x[i] = (float)((double)(state >> 8) / 16777216.0 * 20.0 - 10.0);
        if (which == EDGE_ALL_MINUS_INF || (which == EDGE_SOME_MINUS_INF && i % 2 == 1))
            x[i] = -INFINITY;
    }
    if (which == EDGE_PLUS_INF)
        x[7] = INFINITY;
}

static int any_nan(const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(y[i]))
            return 1;
    return 0;
}

/* Probabilities never are infinite, log-probabilities never +inf. */
static int any_impossible_infinity(const float *y, size_t n, bench_op op)
{
    for (size_t i = 0; i < n; i++)
        if (isinf(y[i]) && (op != BENCH_LOG || y[i] > 0))
            return 1;
    return 0;
}

/* The contract's answer for the row, for forward softmax (y) or log (log y). */
static int as_expected(const float *x, const float *y, bench_op op, edge_case which)
{
    double sum = 0.0;
    for (size_t i = 0; i < EDGE_COLS; i++) {
        double p = op == BENCH_LOG ? exp(y[i]) : y[i];
        int masked = which == EDGE_ALL_MINUS_INF || (which == EDGE_SOME_MINUS_INF && isinf(x[i])) ||
                     (which == EDGE_PLUS_INF && i != 7);
        if (masked && p != 0.0)
            return 0;
        sum += p;
    }
    double want = which == EDGE_ALL_MINUS_INF ? 0.0 : 1.0;
    return fabs(sum - want) < 1e-4;
}

const char *checks_edge(bench_prepare_fn prepare, bench_op op, edge_case which)
{
    float *x = malloc(EDGE_COLS * sizeof(float));
    float *y = malloc((EDGE_COLS + 64) * sizeof(float));
    float *scratch = malloc((EDGE_COLS + 64) * sizeof(float));
    const char *verdict = "n/a";
    if (x == NULL || y == NULL || scratch == NULL)
        goto done;
    fill_edge_row(x, which);
    bench_problem problem = {.op = op,
                             .rows = 1,
                             .cols = EDGE_COLS,
                             .axis = 1,
                             .scale = 1.0f,
                             .threads = 1,
                             .x = x,
                             .out = y,
                             .scratch = scratch};
    bench_runner runner;
    const char *why_not;
    if (prepare(&problem, &runner, &why_not) != 0)
        goto done;
    runner.run(runner.context);
    if (runner.destroy != NULL)
        runner.destroy(runner.context);
    verdict = any_nan(y, EDGE_COLS)                       ? "NaN"
              : any_impossible_infinity(y, EDGE_COLS, op) ? "inf"
              : as_expected(x, y, op, which)              ? "ok"
                                                          : "wrong";
done:
    free(x);
    free(y);
    free(scratch);
    return verdict;
}
