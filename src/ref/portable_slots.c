/*
 * portable_slots.c -- the portable entries of the f32-only table slots.
 * Every table of kernels is filled from the portable entries first, then
 * the ISA's own kernels replace those it has (src/kernels/kernels.h), so no
 * slot is ever NULL. The in-place readers (masked rows, half-precision
 * lines) decline every line here: the general path then gathers the line,
 * which gives the same bits. The conversions and the additive-mask split
 * compute the result in plain C loops the compiler vectorises.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

int softmax_portable_excluding_row(softmax_op op, const float *x, const uint8_t *keep, const float *mask,
                                   const uint16_t *half_mask, int half_bf16, int additive, bool check_mask,
                                   double slope, size_t kept, size_t n, double scale, float *y)
{
    (void)op, (void)x, (void)keep, (void)mask, (void)half_mask, (void)half_bf16, (void)additive, (void)check_mask;
    (void)slope, (void)kept, (void)n, (void)scale, (void)y;
    return SOFTMAX_ROW_DECLINED;
}

bool softmax_portable_reduce_bias(const float *bias, size_t count, float *g, float *lo)
{
    (void)bias, (void)count, (void)g, (void)lo;
    return false;
}

int softmax_portable_reduced_bias_row(softmax_op op, const float *x, const float *g, const float *lo, size_t kept,
                                      size_t n, double scale, float *y)
{
    (void)op, (void)x, (void)g, (void)lo, (void)kept, (void)n, (void)scale, (void)y;
    return SOFTMAX_ROW_DECLINED;
}

bool softmax_portable_excluding_rows(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n,
                                     int mask_type, double scale)
{
    (void)op, (void)runs, (void)run_count, (void)n, (void)mask_type, (void)scale;
    return false;
}

bool softmax_portable_adding_rows(softmax_op op, const softmax_masked_run *runs, size_t run_count, size_t n,
                                  int mask_type, int additive, double scale, bool *declined)
{
    (void)op, (void)runs, (void)run_count, (void)n, (void)mask_type, (void)additive, (void)scale, (void)declined;
    return false;
}

bool softmax_portable_half_line(softmax_op op, const uint16_t *x, int bf16, void *dst, int dst_half, size_t n,
                                double scale)
{
    (void)op, (void)x, (void)bf16, (void)dst, (void)dst_half, (void)n, (void)scale;
    return false;
}

bool softmax_portable_half_row(softmax_op op, const uint16_t *x, uint16_t *y, size_t n, double scale, int bf16)
{
    (void)op, (void)x, (void)y, (void)n, (void)scale, (void)bf16;
    return false;
}

void softmax_portable_widen_half(float *dst, const uint16_t *src, size_t n, int bf16)
{
    if (bf16)
        for (size_t i = 0; i < n; i++)
            dst[i] = softmax_bf16_to_float(src[i]);
    else
        for (size_t i = 0; i < n; i++)
            dst[i] = softmax_f16_to_float(src[i]);
}

void softmax_portable_narrow_half(uint16_t *dst, const float *src, size_t n, int bf16)
{
    if (bf16)
        for (size_t i = 0; i < n; i++)
            dst[i] = softmax_float_to_bf16(src[i]);
    else
        for (size_t i = 0; i < n; i++)
            dst[i] = softmax_float_to_f16(src[i]);
}

/* The f32 logits in double: z = scale * x + mask + slope * j has a
 * relative error of 2^-52 in double, far below the f32 result's ulp.
 * Excluded elements (mask -inf, keep 0, j >= kept) are -inf whatever x
 * is. */
SOFTMAX_VECTOR_CLONES static void masked_logits(const float *x, const float *mask, const uint8_t *keep, size_t kept,
                                                size_t n, double scale, double slope, double *z)
{
    if (mask != NULL) {
        for (size_t j = 0; j < kept; j++) {
            const double bias = mask[j];
            const double logit = scale * (double)x[j] + (bias + slope * (double)j);
            z[j] = bias == -INFINITY ? -INFINITY : logit;
        }
    } else {
        for (size_t j = 0; j < kept; j++)
            z[j] = scale * (double)x[j] + slope * (double)j;
    }
    if (keep != NULL) {
        for (size_t j = 0; j < kept; j++) {
            const double logit = z[j];
            z[j] = keep[j] != 0 ? logit : -INFINITY;
        }
    }
    for (size_t j = kept; j < n; j++)
        z[j] = -INFINITY;
}

/* Splits a line of finite-or-masked double logits z for the f32 kernels:
 * d = z - max z exactly enough (double), hi = (float)d into `hi`, and d kept
 * in z. softmax(d) = w * e^lo / sum(w * e^lo) with w = softmax(hi) and
 * lo = d - hi, |lo| <= 2^-24 |d|: the f32 kernels compute w, and
 * apply_low_parts() folds in e^lo ~ 1 + lo (the next term, lo^2 / 2, is
 * below 2^-40 for the outputs in the normal range, |d| < 104). False (line
 * untouched in its meaning) for lines with NaN, +inf, no finite logit or a
 * max beyond SPLIT_MAX_TOP (z's own rounding would show):
 * they take the exact general path. */
SOFTMAX_VECTOR_CLONES static bool split_at_maximum(double *z, float *hi, size_t n)
{
    /* Eight running maxima (a fixed order: the same bits on every path). */
    enum { PARTS = 8 };
    double tops[PARTS];
    int special[PARTS];
    for (int l = 0; l < PARTS; l++)
        tops[l] = -INFINITY, special[l] = 0;
    size_t j = 0;
    for (; j + PARTS <= n; j += PARTS)
        for (int l = 0; l < PARTS; l++) {
            const double value = z[j + (size_t)l];
            special[l] |= (value != value) | (value == INFINITY);
            tops[l] = value > tops[l] ? value : tops[l];
        }
    for (; j < n; j++) {
        special[0] |= (z[j] != z[j]) | (z[j] == INFINITY);
        tops[0] = z[j] > tops[0] ? z[j] : tops[0];
    }
    double top = -INFINITY;
    int any_special = 0;
    for (int l = 0; l < PARTS; l++) {
        top = tops[l] > top ? tops[l] : top;
        any_special |= special[l];
    }
    if (any_special || top == -INFINITY || !(fabs(top) <= SPLIT_MAX_TOP))
        return false;
    for (j = 0; j < n; j++) {
        const double d = z[j] - top;
        z[j] = d;
        hi[j] = (float)d;
    }
    return true;
}

bool softmax_portable_split_logits(const float *x, const float *mask, const uint8_t *keep, size_t kept, size_t n,
                                   double scale, double slope, double *d, float *hi)
{
    masked_logits(x, mask, keep, kept, n, scale, slope, d);
    return split_at_maximum(d, hi, n);
}

/* out = softmax(d) from w = softmax(hi) (or log-softmax), see
 * split_at_maximum(); d arrives in `line` and leaves as the result. */
SOFTMAX_VECTOR_CLONES static void apply_low_parts(softmax_op op, const float *w, double *line, size_t n)
{
    /* The low parts, then their weighted sum in eight fixed partial sums. */
    size_t j = 0;
    for (; j < n; j++) {
        const double d = line[j];
        const double high = (double)(float)d; /* -inf also below the float range: e^d is 0 there */
        line[j] = high == -INFINITY ? 0.0 : d - high;
    }
    enum { PARTS = 8 };
    double partial[PARTS] = {0};
    j = 0;
    if (op == SOFTMAX_OP_LOG_SOFTMAX) {
        for (; j < n; j++) /* exp of log-probabilities: no vector exp here, but rare */
            partial[j % PARTS] += exp((double)w[j]) * line[j];
    } else {
        for (; j + PARTS <= n; j += PARTS)
            for (int l = 0; l < PARTS; l++)
                partial[l] += (double)w[j + (size_t)l] * line[j + (size_t)l];
        for (; j < n; j++)
            partial[0] += (double)w[j] * line[j];
    }
    double correction = 0;
    for (int l = 0; l < PARTS; l++)
        correction += partial[l];
    if (op == SOFTMAX_OP_LOG_SOFTMAX) {
        const double log_correction = log1p(correction);
        for (j = 0; j < n; j++) {
            line[j] = ((double)w[j] + line[j]) - log_correction;
            if (line[j] > 0) /* log-softmax is never above 0 (NaN stays) */
                line[j] = 0;
        }
    } else {
        const double normalizer = 1.0 / (1.0 + correction);
        for (j = 0; j < n; j++)
            line[j] = (double)w[j] * (1.0 + line[j]) * normalizer;
    }
}

/* The table holds a plain function: the clones above are chosen behind it. */
void softmax_portable_apply_low_parts(softmax_op op, const float *w, double *line, size_t n)
{
    apply_low_parts(op, w, line, n);
}
