/*
 * general.c -- the general pipeline of softmax_execute(): any strides, mixed
 * and half-precision data types, and fused masks (additive, boolean, causal,
 * ALiBi).
 *
 * Lines (the 1-d slices along the softmax axis) are processed in blocks: a
 * block is gathered into a contiguous per-thread buffer in the computation
 * type (f32 or f64), converted and masked on the way in; the contiguous
 * kernels of the active code path run on the buffer; the result is converted
 * and scattered to the output on the way out. Gathering a block of adjacent
 * lines keeps a transposed walk inside the cache instead of copying the
 * whole tensor.
 *
 * An additive mask or ALiBi bias changes the logits, z = scale * x + bias.
 * Rounding z to the data type would cost up to |z| * 2^-24 of relative
 * error in exp(z - max) (tens of ulp for logits of a few dozen), so f32
 * work forms z in double and runs the f64 kernels, and f64 work forms z as
 * a double-double (ref/double_double.h: about 106 bits from double
 * operations, the same bits on every platform) and evaluates the line in
 * double-double.
 *
 * Causal masking of contiguous last-axis rows needs no copy: row i is the
 * softmax of its first i + offset + 1 elements followed by zeros.
 */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "general.h"
#include "ref/double_double.h"

/* The loops that gather, mask and split lines are plain C that the compiler
 * vectorises; compiled once per ISA level (chosen by the CPU at load time:
 * they are exact, so every clone gives the same bits). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Elements per gathered block: a few lines of a short row, or one line.
 * 2048 keeps the block (8 KiB of f32, and the additive-mask split's 16 KiB
 * of doubles) in L1 while the kernels run on it. */
#define BLOCK_ELEMENTS ((size_t)2048)
#define BLOCK_MAX_LINES ((size_t)256)
/* Forward blocks up to this size are gathered into dst (see run_block). */
#define IN_PLACE_BLOCK_BYTES ((size_t)16 << 10)
/* Blocks of lines strided along the axis: up to this many bytes of lines
 * in the computation type, at most STRIDED_MAX_LINES lines. */
#define STRIDED_BLOCK_BYTES ((size_t)2 << 20)
#define STRIDED_MAX_LINES ((size_t)128)

/* ---------------------------------------------------------------------- */
/* Element access                                                          */
/* ---------------------------------------------------------------------- */

static inline double load_double(const char *base, softmax_dtype type, int64_t index)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32:
        return ((const float *)(const void *)base)[index];
    case SOFTMAX_DTYPE_F64:
        return ((const double *)(const void *)base)[index];
    case SOFTMAX_DTYPE_BF16:
        return softmax_bf16_to_float(((const uint16_t *)(const void *)base)[index]);
    default:
        return softmax_f16_to_float(((const uint16_t *)(const void *)base)[index]);
    }
}

/* Gathers n elements spaced `stride` apart into floats (the f32 computation
 * type; f32, bf16 and f16 sources are exact in float). */
static void gather_f32(float *out, const char *base, softmax_dtype type, int64_t offset, int64_t stride, size_t n)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32: {
        const float *src = (const float *)(const void *)base + offset;
        if (stride == 1) {
            if (out != src)
                memmove(out, src, n * sizeof *out);
        } else {
            for (size_t i = 0; i < n; i++)
                out[i] = src[(int64_t)i * stride];
        }
        break;
    }
    case SOFTMAX_DTYPE_BF16: {
        const uint16_t *src = (const uint16_t *)(const void *)base + offset;
        if (stride == 1)
            softmax_convert_lane_bf16_to_f32(out, src, n);
        else
            for (size_t i = 0; i < n; i++)
                out[i] = softmax_bf16_to_float(src[(int64_t)i * stride]);
        break;
    }
    case SOFTMAX_DTYPE_F16: {
        const uint16_t *src = (const uint16_t *)(const void *)base + offset;
        if (stride == 1)
            softmax_convert_lane_f16_to_f32(out, src, n);
        else
            for (size_t i = 0; i < n; i++)
                out[i] = softmax_f16_to_float(src[(int64_t)i * stride]);
        break;
    }
    default: /* f64 never reaches the f32 computation type */
        break;
    }
}

static void gather_f64(double *out, const char *base, softmax_dtype type, int64_t offset, int64_t stride, size_t n)
{
    if (type == SOFTMAX_DTYPE_F64 && stride == 1) {
        const double *src = (const double *)(const void *)base + offset;
        if (out != src)
            memmove(out, src, n * sizeof *out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = load_double(base, type, offset + (int64_t)i * stride);
}

static void scatter_f32(char *base, softmax_dtype type, int64_t offset, int64_t stride, const float *in, size_t n)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32: {
        float *dst = (float *)(void *)base + offset;
        if (stride == 1)
            memcpy(dst, in, n * sizeof *in);
        else
            for (size_t i = 0; i < n; i++)
                dst[(int64_t)i * stride] = in[i];
        break;
    }
    case SOFTMAX_DTYPE_F64: {
        double *dst = (double *)(void *)base + offset;
        for (size_t i = 0; i < n; i++)
            dst[(int64_t)i * stride] = in[i];
        break;
    }
    case SOFTMAX_DTYPE_BF16: {
        uint16_t *dst = (uint16_t *)(void *)base + offset;
        if (stride == 1)
            softmax_convert_lane_f32_to_bf16(dst, in, n);
        else
            for (size_t i = 0; i < n; i++)
                dst[(int64_t)i * stride] = softmax_float_to_bf16(in[i]);
        break;
    }
    default: {
        uint16_t *dst = (uint16_t *)(void *)base + offset;
        if (stride == 1)
            softmax_convert_lane_f32_to_f16(dst, in, n);
        else
            for (size_t i = 0; i < n; i++)
                dst[(int64_t)i * stride] = softmax_float_to_f16(in[i]);
        break;
    }
    }
}

/* From a double result: one rounding to f32 / f64, and round-to-odd then
 * nearest-even for the half types so that the value is rounded correctly. */
static void scatter_f64(char *base, softmax_dtype type, int64_t offset, int64_t stride, const double *in, size_t n)
{
    if (type == SOFTMAX_DTYPE_F32 && stride == 1) { /* the common case, vectorised */
        float *dst = (float *)(void *)base + offset;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)in[i];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const int64_t at = offset + (int64_t)i * stride;
        switch (type) {
        case SOFTMAX_DTYPE_F32:
            ((float *)(void *)base)[at] = (float)in[i];
            break;
        case SOFTMAX_DTYPE_F64:
            ((double *)(void *)base)[at] = in[i];
            break;
        case SOFTMAX_DTYPE_BF16:
            ((uint16_t *)(void *)base)[at] = softmax_float_to_bf16(softmax_round_to_odd_float(in[i]));
            break;
        default:
            ((uint16_t *)(void *)base)[at] = softmax_float_to_f16(softmax_round_to_odd_float(in[i]));
            break;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Lines                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct line_position {
    int64_t offset[GENERAL_OPERANDS]; /* element offset of element 0 of the line, per operand */
    int64_t query;                    /* index along axis - 1 (causal) */
    int64_t head;                     /* index along head_axis (ALiBi) */
} line_position;

/* The positions of lines first_line .. first_line + count - 1: one division
 * per dimension for the first line, then an odometer over the dimensions
 * other than the axis (a division per line and dimension cost as much as a
 * short row's softmax). */
static void positions_of(const general_plan *plan, size_t first_line, size_t count, line_position *out)
{
    size_t index[SOFTMAX_MAX_NDIM] = {0};
    line_position where = {{0}, 0, 0};
    size_t rest = first_line;
    for (int d = plan->ndim - 1; d >= 0; d--) {
        if (d == plan->axis)
            continue;
        index[d] = rest % plan->shape[d];
        rest /= plan->shape[d];
        for (int k = 0; k < GENERAL_OPERANDS; k++)
            where.offset[k] += (int64_t)index[d] * plan->operands[k].strides[d];
    }
    if (plan->axis >= 1)
        where.query = (int64_t)index[plan->axis - 1];
    if (plan->head_axis >= 0)
        where.head = (int64_t)index[plan->head_axis];
    if (count > 0)
        out[0] = where;
    for (size_t b = 1; b < count; b++) {
        for (int d = plan->ndim - 1; d >= 0; d--) {
            if (d == plan->axis)
                continue;
            const bool carry = index[d] + 1 == plan->shape[d];
            const int64_t step = carry ? -(int64_t)index[d] : 1;
            index[d] = carry ? 0 : index[d] + 1;
            for (int k = 0; k < GENERAL_OPERANDS; k++)
                where.offset[k] += step * plan->operands[k].strides[d];
            if (!carry)
                break;
        }
        if (plan->axis >= 1)
            where.query = (int64_t)index[plan->axis - 1];
        if (plan->head_axis >= 0)
            where.head = (int64_t)index[plan->head_axis];
        out[b] = where;
    }
}

static line_position position_of(const general_plan *plan, size_t line)
{
    line_position where;
    positions_of(plan, line, 1, &where);
    return where;
}

/* Number of leading elements of the line a causal mask keeps. */
static size_t causal_length(const general_plan *plan, const line_position *where)
{
    if (!plan->causal)
        return plan->n;
    /* query >= 0: only a large positive offset can overflow (all kept). */
    const int64_t last_kept =
        plan->causal_offset > INT64_MAX - where->query ? INT64_MAX : where->query + plan->causal_offset;
    if (last_kept < 0)
        return 0;
    return (uint64_t)last_kept >= plan->n ? plan->n : (size_t)last_kept + 1;
}

static bool is_kept(const general_plan *plan, const line_position *where, size_t j, size_t kept_prefix)
{
    if (j >= kept_prefix)
        return false;
    if (plan->has_where) {
        const general_operand *w = &plan->operands[GENERAL_WHERE];
        const uint8_t *bytes = (const uint8_t *)(const void *)w->base;
        if (bytes[where->offset[GENERAL_WHERE] + (int64_t)j * w->strides[plan->axis]] == 0)
            return false;
    }
    return true;
}

static double alibi_slope(const general_plan *plan, int64_t head)
{
    if (!plan->alibi)
        return 0.0;
    const int64_t h2 = (int64_t)plan->alibi_heads_pow2;
    return head < h2 ? pow(plan->alibi_m0, (double)(head + 1)) : pow(plan->alibi_m1, (double)(2 * (head - h2) + 1));
}

/* ---------------------------------------------------------------------- */
/* Masked logits                                                           */
/* ---------------------------------------------------------------------- */

/* The logit of a kept element: z = scale * x + bias, with the contract's
 * conventions for scale 0 (x stops mattering unless it is -inf or NaN) and
 * infinite scales (only the extreme x survive, `extreme` is max or min of x
 * over the kept elements). */
static dd masked_logit(double scale, double x, dd bias, double extreme)
{
    static const dd minus_infinity = {-INFINITY, 0};
    if (isnan(x) || isnan(bias.hi)) /* a NaN bias makes z NaN for every scale, infinite ones too */
        return (dd){NAN, 0};
    if (scale == 0)
        return x == -INFINITY ? minus_infinity : bias;
    if (isinf(scale))
        return x == extreme && !(scale > 0 ? x == -INFINITY : x == INFINITY) ? bias : minus_infinity;
    const dd product = dd_product(scale, x);
    if (!isfinite(product.hi) || !isfinite(bias.hi)) /* inf + finite, or inf - inf = NaN as in IEEE */
        return (dd){product.hi + bias.hi, 0};
    return dd_add(product, bias);
}

/* Per-line z for the additive-mask path: excluded elements -inf. `z` is a
 * double-double line for f64 work or a double line (through `z_double`). */
static void masked_logits(const general_plan *plan, const line_position *where, const double *x, size_t n, dd *z_wide,
                          double *z_double)
{
    const size_t kept_prefix = causal_length(plan, where);
    const general_operand *m = &plan->operands[GENERAL_MASK];
    const double slope = alibi_slope(plan, where->head);
    const double scale = plan->scale;
    double extreme = scale > 0 ? -INFINITY : INFINITY;
    if (isinf(scale))
        for (size_t j = 0; j < n; j++)
            if (is_kept(plan, where, j, kept_prefix) && !isnan(x[j]))
                extreme = scale > 0 ? fmax(extreme, x[j]) : fmin(extreme, x[j]);
    for (size_t j = 0; j < n; j++) {
        dd z = {-INFINITY, 0};
        if (is_kept(plan, where, j, kept_prefix)) {
            const double mask_value =
                plan->has_mask
                    ? load_double(m->base, m->type, where->offset[GENERAL_MASK] + (int64_t)j * m->strides[plan->axis])
                    : 0.0;
            if (mask_value != -INFINITY) {
                const dd slope_term = dd_product(slope, (double)j);
                const dd bias = isfinite(mask_value) && isfinite(slope_term.hi)
                                    ? dd_add((dd){mask_value, 0}, slope_term)
                                    : (dd){mask_value + slope_term.hi, 0};
                z = masked_logit(scale, x[j], bias, extreme);
            }
        }
        if (z_wide != NULL)
            z_wide[j] = z;
        else
            z_double[j] = isfinite(z.hi) ? z.hi + z.lo : z.hi;
    }
}

/* The f32 logits of the common case in double, in loops the compiler
 * vectorises: a finite non-zero scale, an f32 (or absent) mask with unit
 * stride. z = scale * x + mask + slope * j has a relative error of 2^-52
 * in double, far below the f32 result's ulp. Excluded elements (mask -inf,
 * `where`, causal) are -inf whatever x is. False for other cases, which
 * take masked_logits(). */
VECTOR_CLONES static bool masked_logits_f32_fast(const general_plan *plan, const line_position *where, const float *x,
                                                 double *z)
{
    const general_operand *m = &plan->operands[GENERAL_MASK];
    const general_operand *w = &plan->operands[GENERAL_WHERE];
    const double scale = plan->scale;
    if (scale == 0 || isinf(scale) ||
        (plan->has_mask && (m->type != SOFTMAX_DTYPE_F32 || m->strides[plan->axis] != 1)) ||
        (plan->has_where && w->strides[plan->axis] != 1))
        return false;
    const size_t n = plan->n, kept = causal_length(plan, where);
    const double slope = alibi_slope(plan, where->head);
    if (plan->has_mask) {
        const float *mask = (const float *)(const void *)m->base + where->offset[GENERAL_MASK];
        for (size_t j = 0; j < kept; j++) {
            const double bias = mask[j];
            const double logit = scale * (double)x[j] + (bias + slope * (double)j);
            z[j] = bias == -INFINITY ? -INFINITY : logit;
        }
    } else {
        for (size_t j = 0; j < kept; j++)
            z[j] = scale * (double)x[j] + slope * (double)j;
    }
    if (plan->has_where) {
        const uint8_t *keep = (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE];
        for (size_t j = 0; j < kept; j++) {
            const double logit = z[j];
            z[j] = keep[j] != 0 ? logit : -INFINITY;
        }
    }
    for (size_t j = kept; j < n; j++)
        z[j] = -INFINITY;
    return true;
}

/* Splits a line of finite-or-masked double logits z for the f32 kernels:
 * d = z - max z exactly enough (double), hi = (float)d into `hi`, and d kept
 * in z. softmax(d) = w * e^lo / sum(w * e^lo) with w = softmax(hi) and
 * lo = d - hi, |lo| <= 2^-24 |d|: the f32 kernels compute w, and
 * apply_low_parts() folds in e^lo ~ 1 + lo (the next term, lo^2 / 2, is
 * below 2^-40 for the outputs in the normal range, |d| < 104). False (line
 * untouched in its meaning) for lines with NaN, +inf or no finite logit:
 * they take the exact general path. */
VECTOR_CLONES static bool split_logits(double *z, float *hi, size_t n)
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
    if (any_special || top == -INFINITY)
        return false;
    for (j = 0; j < n; j++) {
        const double d = z[j] - top;
        z[j] = d;
        hi[j] = (float)d;
    }
    return true;
}

/* out = softmax(d) from w = softmax(hi) (or log-softmax), see
 * split_logits(); d arrives in `line` and leaves as the result. */
VECTOR_CLONES static void apply_low_parts(softmax_op op, const float *w, double *line, size_t n)
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

/* One line of the additive-mask path: the kernels' split when the layout
 * is the common one, else the portable loops. x (f32 logits) may be the
 * source itself; hi is the line's buffer. */
static bool split_line(const general_plan *plan, const line_position *where, const float *x, float *hi, double *line)
{
    const general_operand *m = &plan->operands[GENERAL_MASK];
    const general_operand *w = &plan->operands[GENERAL_WHERE];
    const bool common = plan->kernels->split_logits != NULL && plan->scale != 0 && !isinf(plan->scale) &&
                        (!plan->has_mask || (m->type == SOFTMAX_DTYPE_F32 && m->strides[plan->axis] == 1)) &&
                        (!plan->has_where || w->strides[plan->axis] == 1);
    if (!common)
        return masked_logits_f32_fast(plan, where, x, line) && split_logits(line, hi, plan->n);
    const float *mask = plan->has_mask ? (const float *)(const void *)m->base + where->offset[GENERAL_MASK] : NULL;
    const uint8_t *keep =
        plan->has_where ? (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE] : NULL;
    return plan->kernels->split_logits(x, mask, keep, causal_length(plan, where), plan->n, plan->scale,
                                       alibi_slope(plan, where->head), line, hi);
}

/* z - top for double-doubles z <= top, top finite: exact to 2^-104, or -inf
 * (z = -inf, or a difference beyond the double range). */
static dd difference_from(dd z, dd top)
{
    const dd d = two_sum(z.hi, -top.hi);
    if (!isfinite(d.lo))
        return (dd){-INFINITY, 0};
    return fast_two_sum(d.hi, d.lo + (z.lo - top.lo));
}

/* Softmax or log-softmax of a double-double line z (scale already applied),
 * with the contract's special cases: t = z - max z exact to 2^-104,
 * exp and log of double_double.h, a Sum2 sum, one rounding per output. */
static void double_double_line(softmax_op op, const dd *z, double *y, size_t n)
{
    dd top = {-INFINITY, 0};
    size_t infinities = 0;
    for (size_t j = 0; j < n; j++) {
        if (isnan(z[j].hi)) {
            for (size_t i = 0; i < n; i++)
                y[i] = NAN;
            return;
        }
        if (z[j].hi > top.hi || (z[j].hi == top.hi && z[j].lo > top.lo))
            top = z[j];
        infinities += z[j].hi == INFINITY;
    }
    const bool log_output = op == SOFTMAX_OP_LOG_SOFTMAX;
    if (top.hi == -INFINITY) { /* fully masked */
        for (size_t j = 0; j < n; j++)
            y[j] = log_output ? -INFINITY : 0.0;
        return;
    }
    if (infinities > 0) {
        const double share = log_output ? -dd_log_double((double)infinities) : 1.0 / (double)infinities;
        for (size_t j = 0; j < n; j++)
            y[j] = z[j].hi == INFINITY ? share : (log_output ? -INFINITY : 0.0);
        return;
    }
    double sum_hi = 0, sum_lo = 0;
    for (size_t j = 0; j < n; j++) {
        const dd e = dd_exp(difference_from(z[j], top));
        const dd s = two_sum(sum_hi, e.hi);
        sum_hi = s.hi;
        sum_lo += s.lo + e.lo;
    }
    const dd sum = fast_two_sum(sum_hi, sum_lo);
    const dd log_sum = dd_log(sum);
    const double reciprocal = 1.0 / sum.hi;
    const dd one = dd_product(sum.hi, reciprocal); /* 1 - one.hi is exact */
    const dd inverse_sum = fast_two_sum(reciprocal, (((1.0 - one.hi) - one.lo) - sum.lo * reciprocal) * reciprocal);
    for (size_t j = 0; j < n; j++) {
        const dd t = difference_from(z[j], top);
        if (t.hi == -INFINITY) { /* masked, or z - top beyond the double range */
            y[j] = log_output ? -INFINITY : 0.0;
            continue;
        }
        if (log_output) {
            const dd difference = two_sum(t.hi, -log_sum.hi);
            y[j] = difference.hi + (difference.lo + (t.lo - log_sum.lo));
        } else {
            const dd e = dd_exp(t);
            const dd p = dd_product(e.hi, inverse_sum.hi);
            y[j] = p.hi + (p.lo + (e.hi * inverse_sum.lo + e.lo * inverse_sum.hi));
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Blocks                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct block_buffers {
    void *values;   /* block x n in the computation type: src, then the result */
    void *gradient; /* block x n in the computation type (gradient ops) */
    double *wide;   /* block x n doubles (additive mask, f32 work) */
    dd *extended;   /* n double-doubles (additive mask, f64 work) */
    double *line;   /* n doubles (additive mask, f64 work) */
} block_buffers;

static size_t block_lines(const general_plan *plan)
{
    size_t lines = BLOCK_ELEMENTS / plan->n;
    if (lines == 0)
        lines = 1;
    /* A strided walk along the axis reads one element per cache line and
     * page. Gathering many adjacent lines together uses every cache line
     * read whole and shares each page visit (a TLB miss when the axis spans
     * more pages than the TLB holds) among the lines: 128 lines of 4096
     * f32 (2 MiB) were 1.3x faster than 64 and 1.6x faster than 16. */
    if (plan->operands[GENERAL_SRC].strides[plan->axis] != 1) {
        const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
        size_t strided = STRIDED_BLOCK_BYTES / (plan->n * element);
        strided = strided < STRIDED_MAX_LINES ? strided : STRIDED_MAX_LINES;
        lines = strided > lines ? strided : lines;
    }
    if (lines > BLOCK_MAX_LINES)
        lines = BLOCK_MAX_LINES;
    return lines < plan->lines ? lines : plan->lines;
}

static size_t buffers_bytes(const general_plan *plan, size_t lines, size_t parts[5])
{
    const size_t elements = lines * plan->n;
    const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    const bool additive = plan->forward && (plan->has_mask || plan->alibi);
    parts[0] = elements * element;
    parts[1] = plan->forward ? 0 : elements * element;
    parts[2] = additive && plan->compute == SOFTMAX_DTYPE_F32 ? elements * sizeof(double) : 0;
    parts[3] = additive && plan->compute == SOFTMAX_DTYPE_F64 ? plan->n * sizeof(dd) : 0;
    parts[4] = additive && plan->compute == SOFTMAX_DTYPE_F64 ? plan->n * sizeof(double) : 0;
    size_t total = 0;
    for (int k = 0; k < 5; k++) {
        parts[k] = (parts[k] + 63) & ~(size_t)63;
        total += parts[k];
    }
    return total;
}

static bool claim_buffers(const general_plan *plan, block_buffers *buffers)
{
    size_t parts[5];
    const size_t total = buffers_bytes(plan, block_lines(plan), parts);
    char *space = softmax_workspace_slot(1, total + 64);
    if (space == NULL)
        return false;
    space = (char *)(((uintptr_t)space + 63) & ~(uintptr_t)63);
    buffers->values = space;
    buffers->gradient = space + parts[0];
    buffers->wide = (double *)(void *)(space + parts[0] + parts[1]);
    buffers->extended = (dd *)(void *)(space + parts[0] + parts[1] + parts[2]);
    buffers->line = (double *)(void *)(space + parts[0] + parts[1] + parts[2] + parts[3]);
    return true;
}

static void gather_line(const general_plan *plan, int operand, const line_position *where, void *out)
{
    const general_operand *o = &plan->operands[operand];
    const int64_t stride = o->strides[plan->axis];
    if (plan->compute == SOFTMAX_DTYPE_F32)
        gather_f32(out, o->base, o->type, where->offset[operand], stride, plan->n);
    else
        gather_f64(out, o->base, o->type, where->offset[operand], stride, plan->n);
}

static void set_excluded(const general_plan *plan, const line_position *where, void *line, double value)
{
    const size_t kept_prefix = causal_length(plan, where);
    for (size_t j = 0; j < plan->n; j++) {
        if (is_kept(plan, where, j, kept_prefix))
            continue;
        if (plan->compute == SOFTMAX_DTYPE_F32)
            ((float *)line)[j] = (float)value;
        else
            ((double *)line)[j] = value;
    }
}

/* The x that an excluded element takes in a gathered line, before the
 * kernels apply the scale: one whose z = scale * x is -inf. For scale < 0
 * that is +inf (-inf would become the +inf that takes all the mass). */
static double excluded_logit(const general_plan *plan)
{
    return plan->scale < 0 ? INFINITY : -INFINITY;
}

/* Sets the excluded logits of a gathered forward line (to the value above):
 * the causal tail, `where` zeros and -inf mask entries. The common layouts
 * (unit strides, f32 masks) take loops the compiler vectorises. */
#define DEFINE_EXCLUDE(T, NAME)                                                                                        \
    static void NAME(const general_plan *plan, const line_position *where, T *line)                                    \
    {                                                                                                                  \
        const size_t n = plan->n;                                                                                      \
        const T excluded = (T)excluded_logit(plan);                                                                    \
        const size_t kept = causal_length(plan, where);                                                                \
        for (size_t j = kept; j < n; j++)                                                                              \
            line[j] = excluded;                                                                                        \
        if (plan->has_where) {                                                                                         \
            const general_operand *w = &plan->operands[GENERAL_WHERE];                                                 \
            const uint8_t *keep = (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE];               \
            const int64_t stride = w->strides[plan->axis];                                                             \
            if (stride == 1)                                                                                           \
                for (size_t j = 0; j < kept; j++)                                                                      \
                    line[j] = keep[j] ? line[j] : excluded;                                                            \
            else                                                                                                       \
                for (size_t j = 0; j < kept; j++)                                                                      \
                    line[j] = keep[(int64_t)j * stride] ? line[j] : excluded;                                          \
        }                                                                                                              \
        if (plan->has_mask) {                                                                                          \
            const general_operand *m = &plan->operands[GENERAL_MASK];                                                  \
            const int64_t stride = m->strides[plan->axis];                                                             \
            const int64_t offset = where->offset[GENERAL_MASK];                                                        \
            if (m->type == SOFTMAX_DTYPE_F32 && stride == 1) {                                                         \
                const float *values = (const float *)(const void *)m->base + offset;                                   \
                for (size_t j = 0; j < kept; j++)                                                                      \
                    line[j] = values[j] == -INFINITY ? excluded : line[j];                                             \
            } else {                                                                                                   \
                for (size_t j = 0; j < kept; j++)                                                                      \
                    if (load_double(m->base, m->type, offset + (int64_t)j * stride) == -INFINITY)                      \
                        line[j] = excluded;                                                                            \
            }                                                                                                          \
        }                                                                                                              \
    }
DEFINE_EXCLUDE(float, exclude_f32)
DEFINE_EXCLUDE(double, exclude_f64)
#undef DEFINE_EXCLUDE

/* The common attention layouts in one pass: f32 logits with unit stride
 * gathered with their exclusions (a `where` byte or a 0 / -inf f32 mask
 * entry, unit strides) applied on the way; loops without branches so that
 * the compiler vectorises them. False if the layout is not one of these. */
VECTOR_CLONES static bool gather_excluding_f32(const general_plan *plan, const line_position *where, char *line_bytes)
{
    const general_operand *x = &plan->operands[GENERAL_SRC];
    const general_operand *w = &plan->operands[GENERAL_WHERE];
    const general_operand *m = &plan->operands[GENERAL_MASK];
    if (plan->compute != SOFTMAX_DTYPE_F32 || x->type != SOFTMAX_DTYPE_F32 || x->strides[plan->axis] != 1 ||
        (plan->has_where && w->strides[plan->axis] != 1) ||
        (plan->has_mask && (m->type == SOFTMAX_DTYPE_F64 || m->strides[plan->axis] != 1)))
        return false;
    const float excluded = (float)excluded_logit(plan);
    if (plan->has_mask && m->type != SOFTMAX_DTYPE_F32 && !plan->has_where) {
        /* A half-precision 0 / -inf mask: -inf is one bit pattern. */
        const uint16_t minus_infinity = m->type == SOFTMAX_DTYPE_BF16 ? 0xff80u : 0xfc00u;
        const uint16_t *mask = (const uint16_t *)(const void *)m->base + where->offset[GENERAL_MASK];
        float *line = (float *)(void *)line_bytes;
        const float *src = (const float *)(const void *)x->base + where->offset[GENERAL_SRC];
        const size_t kept = causal_length(plan, where);
        for (size_t j = 0; j < kept; j++) {
            const float value = src[j];
            line[j] = mask[j] != minus_infinity ? value : excluded;
        }
        for (size_t j = kept; j < plan->n; j++)
            line[j] = excluded;
        return true;
    }
    if (plan->has_mask && m->type != SOFTMAX_DTYPE_F32)
        return false;
    float *line = (float *)(void *)line_bytes;
    const float *src = (const float *)(const void *)x->base + where->offset[GENERAL_SRC];
    const size_t n = plan->n, kept = causal_length(plan, where);
    if (plan->has_where && plan->has_mask) {
        const uint8_t *keep = (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE];
        const float *mask = (const float *)(const void *)m->base + where->offset[GENERAL_MASK];
        for (size_t j = 0; j < kept; j++) {
            const float value = src[j], bias = mask[j]; /* unconditional loads: the loop vectorises */
            line[j] = ((keep[j] != 0) & (bias != -INFINITY)) ? value : excluded;
        }
    } else if (plan->has_where) {
        const uint8_t *keep = (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE];
        for (size_t j = 0; j < kept; j++) {
            const float value = src[j];
            line[j] = keep[j] != 0 ? value : excluded;
        }
    } else if (plan->has_mask) {
        const float *mask = (const float *)(const void *)m->base + where->offset[GENERAL_MASK];
        for (size_t j = 0; j < kept; j++) {
            const float value = src[j];
            line[j] = mask[j] != -INFINITY ? value : excluded;
        }
    } else {
        if (line != src) /* gathered into dst, in place */
            memmove(line, src, kept * sizeof *line);
    }
    for (size_t j = kept; j < n; j++)
        line[j] = excluded;
    return true;
}

/* Lines strided along the axis but adjacent to each other (a transposed
 * view) in the computation type: the block is gathered by the kernels'
 * register transposes (or tiles of 16 elements x all lines in the portable
 * code, f32 only), so memory is read in order. False for other layouts. */
VECTOR_CLONES static bool gather_transposed(const general_plan *plan, int operand, const line_position *positions,
                                            size_t line_count, char *rows)
{
    const general_operand *x = &plan->operands[operand];
    const int64_t stride = x->strides[plan->axis];
    if (x->type != plan->compute || stride == 1 || line_count < 2)
        return false;
    for (size_t b = 1; b < line_count; b++)
        if (positions[b].offset[operand] != positions[0].offset[operand] + (int64_t)b)
            return false;
    const size_t n = plan->n;
    const size_t element = softmax_dtype_size(x->type);
    const char *first = x->base + positions[0].offset[operand] * (int64_t)element;
    if (plan->kernels->transpose_lines != NULL) {
        plan->kernels->transpose_lines(first, stride, line_count, n, rows);
        return true;
    }
    if (plan->compute != SOFTMAX_DTYPE_F32)
        return false;
    const float *src = (const float *)(const void *)first;
    float *out = (float *)(void *)rows;
    enum { TILE = 16 };
    for (size_t j0 = 0; j0 < n; j0 += TILE) {
        const size_t j1 = j0 + TILE < n ? j0 + TILE : n;
        for (size_t b = 0; b < line_count; b++)
            for (size_t j = j0; j < j1; j++)
                out[b * n + j] = src[(int64_t)j * stride + (int64_t)b];
    }
    return true;
}

/* One line through the kernels' excluding_row; false if they decline it. */
static bool run_excluding_line(const general_plan *plan, const line_position *line)
{
    const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
    const general_operand *w = &plan->operands[GENERAL_WHERE];
    const general_operand *m = &plan->operands[GENERAL_MASK];
    const line_position where = *line;
    const float *src = (const float *)(const void *)x->base + where.offset[GENERAL_SRC];
    const uint8_t *keep = plan->has_where ? (const uint8_t *)(const void *)w->base + where.offset[GENERAL_WHERE] : NULL;
    const bool f32_mask = plan->has_mask && m->type == SOFTMAX_DTYPE_F32;
    const bool half_mask = plan->has_mask && !f32_mask;
    const float *mask = f32_mask ? (const float *)(const void *)m->base + where.offset[GENERAL_MASK] : NULL;
    const uint16_t *halves = half_mask ? (const uint16_t *)(const void *)m->base + where.offset[GENERAL_MASK] : NULL;
    float *out = (float *)(void *)d->base_out + where.offset[GENERAL_DST];
    return plan->kernels->excluding_row(plan->op, src, keep, mask, halves, m->type == SOFTMAX_DTYPE_BF16,
                                        plan->has_mask && !plan->mask_only_excludes, alibi_slope(plan, where.head),
                                        causal_length(plan, &where), plan->n, plan->scale, out);
}

/* One contiguous half-precision line through the kernels' half_line (or
 * fast_half_line); false if they decline it. */
static bool run_half_line(const general_plan *plan, const line_position *line)
{
    const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
    const line_position where = *line;
    const uint16_t *src = (const uint16_t *)(const void *)x->base + where.offset[GENERAL_SRC];
    char *dst = d->base_out + where.offset[GENERAL_DST] * (int64_t)softmax_dtype_size(d->type);
    const int dst_half = d->type == SOFTMAX_DTYPE_BF16 ? 1 : d->type == SOFTMAX_DTYPE_F16 ? 2 : 0;
    if (plan->fast_half_lines)
        return plan->kernels->fast_half_line(plan->op, src, x->type == SOFTMAX_DTYPE_BF16, dst, dst_half, plan->n,
                                             plan->scale);
    return plan->kernels->half_line(plan->op, src, x->type == SOFTMAX_DTYPE_BF16, dst, dst_half, plan->n, plan->scale);
}

static void run_gathered_block(const general_plan *plan, const block_buffers *buffers, const line_position *positions,
                               size_t first_line, size_t line_count);

/* A block of short lines with exclusion masks through the kernels' grouped
 * excluding_rows (masks applied as x is read); false if they decline it. */
static bool run_excluding_rows(const general_plan *plan, const line_position *positions, size_t line_count)
{
    const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
    const general_operand *w = &plan->operands[GENERAL_WHERE], *m = &plan->operands[GENERAL_MASK];
    if (plan->alibi || (plan->has_mask && !plan->mask_only_excludes))
        return false;
    softmax_masked_line lines[BLOCK_MAX_LINES];
    const size_t mask_size = plan->has_mask ? softmax_dtype_size(m->type) : 0;
    for (size_t b = 0; b < line_count; b++) {
        const line_position *where = &positions[b];
        lines[b] = (softmax_masked_line){
            (const float *)(const void *)x->base + where->offset[GENERAL_SRC],
            plan->has_where ? (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE] : NULL,
            plan->has_mask ? m->base + where->offset[GENERAL_MASK] * (int64_t)mask_size : NULL,
            causal_length(plan, where), (float *)(void *)d->base_out + where->offset[GENERAL_DST]};
    }
    const int mask_type = !plan->has_mask                 ? 0
                          : m->type == SOFTMAX_DTYPE_F32  ? 1
                          : m->type == SOFTMAX_DTYPE_BF16 ? 2
                                                          : 3;
    return plan->kernels->excluding_rows(plan->op, lines, line_count, plan->n, mask_type, plan->scale);
}

/* The layouts the kernels read (and write) in place, line by line: long
 * half-precision rows streamed (half_row), in-cache half rows widened as
 * they are read (half_line), exclusion masks applied as x is read
 * (excluding_row). Lines they decline take the gathered path. */
static void run_block(const general_plan *plan, const block_buffers *buffers, size_t first_line, size_t line_count)
{
    if (plan->half_rows && line_count == 1) {
        const general_operand *x = &plan->operands[GENERAL_SRC], *d = &plan->operands[GENERAL_DST];
        const line_position where = position_of(plan, first_line);
        const uint16_t *src = (const uint16_t *)(const void *)x->base + where.offset[GENERAL_SRC];
        uint16_t *dst = (uint16_t *)(void *)d->base_out + where.offset[GENERAL_DST];
        if (plan->kernels->half_row(plan->op, src, dst, plan->n, plan->scale, x->type == SOFTMAX_DTYPE_BF16))
            return;
    }
    line_position positions[BLOCK_MAX_LINES];
    positions_of(plan, first_line, line_count, positions);
    const bool half_lines = plan->half_lines || plan->fast_half_lines;
    if (!half_lines && !plan->excluding_lines) {
        run_gathered_block(plan, buffers, positions, first_line, line_count);
        return;
    }
    if (!half_lines && run_excluding_rows(plan, positions, line_count))
        return;
    /* Declined lines (short rows below the line kernels' regime, fully
     * masked rows, ...) are gathered together: the grouped small-row kernels
     * pay for a whole group whether it holds one row or sixteen, and a row's
     * bits do not depend on the rows beside it. */
    size_t declined_first = 0, declined = 0;
    for (size_t b = 0; b < line_count; b++) {
        if (!(half_lines ? run_half_line(plan, &positions[b]) : run_excluding_line(plan, &positions[b]))) {
            if (declined == 0)
                declined_first = b;
            declined++;
            continue;
        }
        if (declined > 0)
            run_gathered_block(plan, buffers, positions + declined_first, first_line + declined_first, declined);
        declined = 0;
    }
    if (declined > 0)
        run_gathered_block(plan, buffers, positions + declined_first, first_line + declined_first, declined);
}

static void run_gathered_block(const general_plan *plan, const block_buffers *buffers, const line_position *positions,
                               size_t first_line, size_t line_count)
{
    const size_t n = plan->n;
    const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    const bool excluding = plan->has_where || plan->causal;
    const bool additive = plan->forward && (plan->alibi || (plan->has_mask && !plan->mask_only_excludes));
    const general_operand *d = &plan->operands[GENERAL_DST];
    char *rows = buffers->values;
    /* The kernels write dst once, directly, when it holds the block's rows
     * in the computation type. */
    const bool direct = !additive && plan->dst_rows_contiguous && (plan->forward || !excluding);
    char *results = direct ? d->base_out + first_line * n * element /* line l starts at l * n */ : rows;
    /* A forward block that fits in L1 is gathered into dst itself and the
     * kernels run in place: the gather pass then also brings dst's cache
     * lines in while it waits on the source, and the kernels run from L1
     * (a 0 / -inf mask went from 1.2x to 1.03x of the unmasked time).
     * Larger blocks, and transposed ones, would cost dst a second pass
     * through memory. */
    if (direct && plan->forward && plan->operands[GENERAL_SRC].strides[plan->axis] == 1 &&
        line_count * n * element <= IN_PLACE_BLOCK_BYTES)
        rows = results;
    /* The additive-mask split reads contiguous f32 logits where they are. */
    const general_operand *x_operand = &plan->operands[GENERAL_SRC];
    const bool split_in_place = additive && plan->compute == SOFTMAX_DTYPE_F32 &&
                                x_operand->type == SOFTMAX_DTYPE_F32 && x_operand->strides[plan->axis] == 1;
    const bool transposed = !split_in_place && gather_transposed(plan, GENERAL_SRC, positions, line_count, rows);
    const bool gradient_transposed =
        !plan->forward && gather_transposed(plan, GENERAL_GRAD, positions, line_count, buffers->gradient);
    for (size_t b = 0; b < line_count && !split_in_place; b++) {
        char *values = rows + b * n * element;
        if (!transposed && plan->forward && !additive && gather_excluding_f32(plan, &positions[b], values))
            continue;
        if (!transposed)
            gather_line(plan, GENERAL_SRC, &positions[b], values);
        if (!plan->forward) {
            char *gradient = (char *)buffers->gradient + b * n * element;
            if (!gradient_transposed)
                gather_line(plan, GENERAL_GRAD, &positions[b], gradient);
            if (excluding)
                set_excluded(plan, &positions[b], gradient, 0.0);
        } else if (!additive && (excluding || plan->has_mask || transposed)) {
            if (plan->compute == SOFTMAX_DTYPE_F32)
                exclude_f32(plan, &positions[b], (float *)(void *)values);
            else
                exclude_f64(plan, &positions[b], (double *)(void *)values);
        }
    }

    if (additive && plan->compute == SOFTMAX_DTYPE_F32) {
        float *x = buffers->values;
        bool all_split = true, split[BLOCK_MAX_LINES];
        for (size_t b = 0; b < line_count; b++) {
            double *line = buffers->wide + b * n;
            const float *source = split_in_place
                                      ? (const float *)(const void *)x_operand->base + positions[b].offset[GENERAL_SRC]
                                      : x + b * n;
            split[b] = split_line(plan, &positions[b], source, x + b * n, line);
            if (!split[b]) {
                if (split_in_place)
                    gather_line(plan, GENERAL_SRC, &positions[b], x + b * n);
                for (size_t j = 0; j < n; j++)
                    line[j] = x[b * n + j];
                masked_logits(plan, &positions[b], line, n, NULL, line);
                plan->wide_kernels->rows(plan->op, line, NULL, line, 1, n, 1.0);
            }
            all_split &= split[b];
        }
        /* The f32 kernels on the high parts: all lines at once if possible. */
        if (all_split)
            plan->kernels->rows(plan->op, x, NULL, x, line_count, n, 1.0);
        else
            for (size_t b = 0; b < line_count; b++)
                if (split[b])
                    plan->kernels->rows(plan->op, x + b * n, NULL, x + b * n, 1, n, 1.0);
        for (size_t b = 0; b < line_count; b++) {
            double *line = buffers->wide + b * n;
            if (split[b] && plan->kernels->apply_low_parts != NULL)
                plan->kernels->apply_low_parts(plan->op, x + b * n, line, n);
            else if (split[b])
                apply_low_parts(plan->op, x + b * n, line, n);
            scatter_f64(d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis], line, n);
        }
        return;
    }
    if (additive) { /* f64 work: double-double logits, evaluated in double-double */
        const double *x = buffers->values;
        for (size_t b = 0; b < line_count; b++) {
            masked_logits(plan, &positions[b], x + b * n, n, buffers->extended, NULL);
            double_double_line(plan->op, buffers->extended, buffers->line, n);
            scatter_f64(d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis], buffers->line,
                        n);
        }
        return;
    }

    if (plan->fast)
        plan->kernels->fast_rows(plan->op, rows, results, line_count, n, plan->scale);
    else
        plan->kernels->rows(plan->op, rows, plan->forward ? NULL : buffers->gradient, results, line_count, n,
                            plan->scale);
    if (direct)
        return;
    for (size_t b = 0; b < line_count; b++) {
        char *values = rows + b * n * element;
        if (!plan->forward && excluding)
            set_excluded(plan, &positions[b], values, 0.0);
        if (plan->compute == SOFTMAX_DTYPE_F32)
            scatter_f32(d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis],
                        (const float *)(const void *)values, n);
        else
            scatter_f64(d->base_out, d->type, positions[b].offset[GENERAL_DST], d->strides[plan->axis],
                        (const double *)(const void *)values, n);
    }
}

/* Causal masking of contiguous rows: the kernels on each row's kept prefix,
 * the fill value on the rest. No copy. */
static void run_causal_rows(const general_plan *plan, size_t first_line, size_t line_count)
{
    const size_t n = plan->n;
    const size_t element = plan->compute == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    const general_operand *src = &plan->operands[GENERAL_SRC];
    const general_operand *grad = &plan->operands[GENERAL_GRAD];
    const general_operand *dst = &plan->operands[GENERAL_DST];
    const double fill = plan->op == SOFTMAX_OP_LOG_SOFTMAX ? -INFINITY : 0.0;
    if (line_count == 0)
        return;
    line_position positions[BLOCK_MAX_LINES];
    positions_of(plan, first_line, line_count, positions);
    const line_position first = positions[0];
    if (plan->kernels->prefix_rows != NULL) {
        /* The unit's rows are contiguous (layout checked by the plan). */
        size_t kept[BLOCK_MAX_LINES];
        for (size_t b = 0; b < line_count; b++)
            kept[b] = causal_length(plan, &positions[b]);
        plan->kernels->prefix_rows(plan->op, src->base + first.offset[GENERAL_SRC] * (int64_t)element,
                                   plan->forward ? NULL : grad->base + first.offset[GENERAL_GRAD] * (int64_t)element,
                                   dst->base_out + first.offset[GENERAL_DST] * (int64_t)element, line_count, n, kept,
                                   plan->scale);
        return;
    }
    for (size_t b = 0; b < line_count; b++) {
        const line_position where = positions[b];
        const size_t kept = causal_length(plan, &where);
        char *out = dst->base_out + where.offset[GENERAL_DST] * (int64_t)element;
        if (kept > 0)
            plan->kernels->rows(plan->op, src->base + where.offset[GENERAL_SRC] * (int64_t)element,
                                plan->forward ? NULL : grad->base + where.offset[GENERAL_GRAD] * (int64_t)element, out,
                                1, kept, plan->scale);
        for (size_t j = kept; j < n; j++) {
            if (plan->compute == SOFTMAX_DTYPE_F32)
                ((float *)(void *)out)[j] = (float)fill;
            else
                ((double *)(void *)out)[j] = fill;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Driver                                                                  */
/* ---------------------------------------------------------------------- */

int softmax_general_run(const general_plan *plan)
{
    const bool causal_rows = plan->causal_rows_fast;
    const size_t lines_per_unit = block_lines(plan); /* <= BLOCK_MAX_LINES, as run_causal_rows() needs */
    const size_t units = (plan->lines + lines_per_unit - 1) / lines_per_unit;
    const int threads = softmax_threads_for_job(plan->lines * plan->n, units);
    atomic_int failed = 0;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        block_buffers buffers = {0};
        if (!causal_rows && !claim_buffers(plan, &buffers))
            atomic_store(&failed, 1);
            /* Nothing is written until every thread holds its buffers, so that an
         * allocation failure leaves the output untouched. */
#pragma omp barrier
        if (!atomic_load(&failed)) {
#pragma omp for schedule(static)
            for (size_t unit = 0; unit < units; unit++) {
                const size_t first = unit * lines_per_unit;
                const size_t count = first + lines_per_unit <= plan->lines ? lines_per_unit : plan->lines - first;
                if (causal_rows)
                    run_causal_rows(plan, first, count);
                else
                    run_block(plan, &buffers, first, count);
            }
        }
    }
    if (atomic_load(&failed))
        return softmax_fail(SOFTMAX_E_OUT_OF_MEMORY, "softmax_execute: cannot allocate the per-thread line buffers");
    return SOFTMAX_OK;
}
