/*
 * masks.c -- where each line is and what its masks keep: line positions,
 * the excluded logits of gathered lines (causal tail, `where`, -inf mask
 * entries), the additive-mask logits z = scale * x + bias (in double for
 * the f32 split, in double-double for f64 work) and the double-double
 * evaluation of a line.
 */
#include <string.h>

#include "general/general_internal.h"

/* Where the walk over lines stands: the index along every dimension but
 * the axis, and the innermost such dimension (-1: none, a single line). */
typedef struct line_walk {
    size_t index[SOFTMAX_MAX_NDIM];
    int inner;
} line_walk;

int runs_dimension(const general_plan *plan)
{
    for (int d = plan->ndim - 1; d >= 0; d--)
        if (d != plan->axis)
            return d;
    return -1;
}

/* The position of line `line`: one division per dimension. */
static line_position walk_to(const general_plan *plan, size_t line, line_walk *walk)
{
    line_position where = {{0}, 0, 0};
    size_t rest = line;
    walk->inner = runs_dimension(plan);
    for (int d = plan->ndim - 1; d >= 0; d--) {
        walk->index[d] = 0;
        if (d == plan->axis)
            continue;
        walk->index[d] = rest % plan->shape[d];
        rest /= plan->shape[d];
        for (int k = 0; k < GENERAL_OPERANDS; k++)
            where.offset[k] += (int64_t)walk->index[d] * plan->operands[k].strides[d];
    }
    if (plan->axis >= 1)
        where.query = (int64_t)walk->index[plan->axis - 1];
    if (plan->head_axis >= 0)
        where.head = (int64_t)walk->index[plan->head_axis];
    return where;
}

/* From the last line of a run to the first of the next: an odometer step
 * over the outer dimensions. The position goes by value: held in memory
 * through a pointer, each line's copy of it read back what the additions
 * had just stored (a forwarding stall that made positions_of 1.5x
 * slower). Inlined: called, the position went through the stack on the
 * way in and out, the same kind of stall (runs_of of [B, 16, 16] masked
 * rows spent most of its time there). */
static SOFTMAX_FORCE_INLINE line_position walk_to_next_run(const general_plan *plan, line_walk *walk,
                                                           line_position where)
{
    for (int d = walk->inner; d >= 0; d--) {
        if (d == plan->axis)
            continue;
        const bool carry = walk->index[d] + 1 == plan->shape[d];
        const int64_t by = carry ? -(int64_t)walk->index[d] : 1;
        walk->index[d] = carry ? 0 : walk->index[d] + 1;
        for (int k = 0; k < GENERAL_OPERANDS; k++)
            where.offset[k] += by * plan->operands[k].strides[d];
        if (!carry)
            break;
    }
    if (plan->axis >= 1)
        where.query = (int64_t)walk->index[plan->axis - 1];
    if (plan->head_axis >= 0)
        where.head = (int64_t)walk->index[plan->head_axis];
    return where;
}

/* From a line to the next along dimension `inner` (none if negative). */
line_position step_along(const general_plan *plan, int inner)
{
    line_position step = {{0}, 0, 0};
    if (inner >= 0) {
        for (int k = 0; k < GENERAL_OPERANDS; k++)
            step.offset[k] = plan->operands[k].strides[inner];
        step.query = plan->axis >= 1 && plan->axis - 1 == inner;
        step.head = plan->head_axis == inner;
    }
    return step;
}

/* Lines first_line .. first_line + count - 1 as runs along the innermost
 * dimension other than the axis: one division per dimension for the first
 * line, then an odometer step over the outer dimensions only between runs
 * (a division per line and dimension cost as much as a short row's
 * softmax, and the odometer's carry loop for every line a quarter of it).
 * Within a run, a line is the previous one plus *step. Returns the number
 * of runs written to out (at most count). */
size_t runs_of(const general_plan *plan, size_t first_line, size_t count, line_run *out, line_position *step)
{
    line_walk walk;
    line_position where = walk_to(plan, first_line, &walk);
    const int inner = walk.inner;
    *step = step_along(plan, inner);
    size_t runs = 0, b = 0;
    while (b < count) {
        /* Lines differ only along the axis's dimensions: count is then 1. */
        size_t run = inner >= 0 ? plan->shape[inner] - walk.index[inner] : 1;
        run = run < count - b ? run : count - b;
        out[runs++] = (line_run){where, run};
        b += run;
        if (b == count)
            break;
        walk.index[inner] += run - 1;
        for (int k = 0; k < GENERAL_OPERANDS; k++)
            where.offset[k] += (int64_t)(run - 1) * step->offset[k];
        where = walk_to_next_run(plan, &walk, where);
    }
    return runs;
}

/* The positions of lines first_line .. first_line + count - 1, run by run
 * (one addition per operand and line within a run). */
void positions_of(const general_plan *plan, size_t first_line, size_t count, line_position *out)
{
    line_walk walk;
    line_position where = walk_to(plan, first_line, &walk);
    const int inner = walk.inner;
    const line_position step = step_along(plan, inner);
    size_t b = 0;
    while (b < count) {
        size_t run = inner >= 0 ? plan->shape[inner] - walk.index[inner] : 1;
        run = run < count - b ? run : count - b;
        out[b++] = where;
        for (size_t i = 1; i < run; i++, b++) {
            step_line(&where, &step);
            out[b] = where;
        }
        if (b == count)
            break;
        walk.index[inner] += run - 1;
        where = walk_to_next_run(plan, &walk, where);
    }
}

line_position position_of(const general_plan *plan, size_t line)
{
    line_position where;
    positions_of(plan, line, 1, &where);
    return where;
}

/* ln 2 as a double-double. */
static const dd LN2_WIDE = {0x1.62e42fefa39efp-1, 0x1.abc9e3b39803fp-56};

/* 2^(-max_bias * power / denominator) as a double-double, the denominator a
 * power of two: the exponent exact as a double-double, then dd_exp. */
static dd alibi_power(double max_bias, double power, double denominator)
{
    /* Beyond 2^1100 the slope is 0 in double, and two_prod's range ends. */
    if (!(max_bias * power / denominator < 1100.0))
        return (dd){0.0, 0.0};
    const dd product = two_prod(-max_bias, power);
    const dd exponent = {product.hi / denominator, product.lo / denominator};
    return dd_exp(dd_mul(exponent, LN2_WIDE));
}

/* See general.h. The slope is 2^(-max_bias * power / denominator), power
 * h + 1 (or 2 (h - H2) + 1) and denominator H2 (or 2 H2), computed from
 * that exponent, exact as a double-double (the denominator a power of two),
 * by dd_exp: not as a power of m0 rounded to a double, whose rounding error
 * the power multiplies (and the bias slope * j then by j: rows of 4096 in
 * f64 came out up to 1255 ulp from the exact probabilities). */
void alibi_slope_parts(double max_bias, uint64_t heads_pow2, int64_t head, double *high, double *low)
{
    const int64_t h2 = (int64_t)heads_pow2;
    const double power = head < h2 ? (double)(head + 1) : (double)(2 * (head - h2) + 1);
    const double denominator = head < h2 ? (double)h2 : 2.0 * (double)h2;
    const dd slope = alibi_power(max_bias, power, denominator);
    *high = slope.hi;
    *low = slope.lo;
}

/* See general.h. Q is the least power of two with Q^2 >= D, so that q <=
 * D has q div Q <= Q. Every entry is at least 2^-max_bias, a normal double
 * with a low part of its own below ALIBI_PART_MAX_BIAS; the product of two
 * entries is within about 2^-100 of the slope, far inside the 2^-70 of
 * alibi_slope_parts, and the same whichever thread asks. */
void alibi_plan_parts(general_plan *plan, uint64_t heads)
{
    plan->alibi_part_size = 0;
    const uint64_t denominator = 2 * plan->alibi_heads_pow2;
    if (heads <= ALIBI_SLOPE_TABLE || denominator > (uint64_t)ALIBI_PART_TABLE * ALIBI_PART_TABLE ||
        !(plan->alibi_max_bias < ALIBI_PART_MAX_BIAS))
        return;
    uint64_t size = 1;
    while (size * size < denominator)
        size *= 2;
    /* A few heads past the table (65 heads: one) cost less one by one
     * than the tables' entries would. */
    if (heads - ALIBI_SLOPE_TABLE <= size + denominator / size + 1)
        return;
    for (uint64_t b = 0; b < size; b++) {
        const dd part = alibi_power(plan->alibi_max_bias, (double)b, (double)denominator);
        plan->alibi_fraction[b] = part.hi, plan->alibi_fraction_low[b] = part.lo;
    }
    for (uint64_t a = 0; a <= denominator / size; a++) {
        const dd part = alibi_power(plan->alibi_max_bias, (double)(size * a), (double)denominator);
        plan->alibi_whole[a] = part.hi, plan->alibi_whole_low[a] = part.lo;
    }
    plan->alibi_part_size = size;
}

/* scale * d as a double-double, or +-inf (low part 0) where it overflows
 * (the product's rounding error is then not a number). */
static dd scaled_by(double scale, dd d)
{
    const double high = scale * d.hi;
    if (!isfinite(high))
        return (dd){high, 0};
    const dd product = dd_product(scale, d.hi);
    return fast_two_sum(product.hi, product.lo + scale * d.lo);
}

/* The logit of a kept element, z = scale * x + bias up to a constant of
 * the line: with the contract's conventions for scale 0 (x stops mattering
 * unless it is -inf or NaN) and infinite scales (only the extreme x
 * survive, `extreme` is max or min of x over the kept elements); for a
 * finite scale, scale * (x - reference) + bias, `reference` a finite x of
 * the line (the largest for scale > 0, the smallest for scale < 0). Taken
 * around the reference, scale * x can neither overflow ({1e308, 1e308} at
 * scale 10 with the mask {0, 1} shared the mass as two +inf) nor swamp the
 * bias with its own rounding (1e300 * 1e-10 + 5 lost the 5 below the
 * product's last bit); softmax does not see the constant. */
static dd masked_logit(double scale, double x, dd bias, double extreme, double reference)
{
    static const dd minus_infinity = {-INFINITY, 0};
    if (isnan(x) || isnan(bias.hi)) /* a NaN bias makes z NaN for every scale, infinite ones too */
        return (dd){NAN, 0};
    if (scale == 0)
        return x == -INFINITY ? minus_infinity : bias;
    if (isinf(scale))
        return x == extreme && !(scale > 0 ? x == -INFINITY : x == INFINITY) ? bias : minus_infinity;
    if (isinf(x)) /* +-inf times the scale, plus a finite bias: still infinite */
        return (dd){scale * x + bias.hi, 0};
    const dd difference = two_sum(x, -reference);
    dd product;
    if (isfinite(difference.hi)) {
        product = scaled_by(scale, difference);
    } else { /* beyond the double range: in halves (exact: both normal, above 2^970) */
        product = scaled_by(scale, two_sum(0.5 * x, -0.5 * reference));
        product = (dd){2 * product.hi, isfinite(2 * product.hi) ? 2 * product.lo : 0};
    }
    if (!isfinite(product.hi) || !isfinite(bias.hi)) /* -inf + finite, or -inf + inf = NaN as in IEEE */
        return (dd){product.hi + bias.hi, 0};
    return dd_add(product, bias);
}

/* The mask's value of element j of the line (0 without a mask). */
static double mask_value_at(const general_plan *plan, const line_position *where, size_t j)
{
    const general_operand *m = &plan->operands[GENERAL_MASK];
    return plan->has_mask
               ? load_double(m->base, m->type, where->offset[GENERAL_MASK] + (int64_t)j * m->strides[plan->axis])
               : 0.0;
}

/* Per-line z for the additive-mask path: excluded elements -inf. `z` is a
 * double-double line for f64 work or a double line (through `z_double`). */
void masked_logits(const general_plan *plan, const line_position *where, const double *x, size_t n, dd *z_wide,
                   double *z_double)
{
    const size_t kept_prefix = causal_length(plan, where);
    const dd slope = alibi_slope_wide(plan, where->head);
    const double scale = plan->scale;
    /* Over the elements the mask keeps (an added -inf excludes as `where`
     * does): the extreme x (infinite scales), the reference (finite ones),
     * and whether every one is -inf -- a fully masked row for any scale, as
     * without a mask (with a negative scale, -inf + a finite bias was +inf
     * and shared the mass). */
    double extreme = scale > 0 ? -INFINITY : INFINITY, reference = NAN;
    bool all_minus_infinity = true;
    for (size_t j = 0; j < n; j++) {
        if (!is_kept(plan, where, j, kept_prefix))
            continue;
        const double bias = mask_value_at(plan, where, j);
        if (bias == -INFINITY)
            continue;
        const double v = x[j];
        all_minus_infinity &= v == -INFINITY && !isnan(bias); /* a NaN bias makes the row NaN */
        if (!isnan(v))
            extreme = scale > 0 ? fmax(extreme, v) : fmin(extreme, v);
        if (isfinite(v) && !(scale > 0 ? v <= reference : v >= reference))
            reference = v;
    }
    for (size_t j = 0; j < n; j++) {
        dd z = {-INFINITY, 0};
        if (is_kept(plan, where, j, kept_prefix) && !all_minus_infinity) {
            const double mask_value = mask_value_at(plan, where, j);
            if (mask_value != -INFINITY) {
                const dd slope_term = dd_mul(slope, (dd){(double)j, 0.0});
                const dd bias = isfinite(mask_value) && isfinite(slope_term.hi)
                                    ? dd_add((dd){mask_value, 0}, slope_term)
                                    : (dd){mask_value + slope_term.hi, 0};
                z = masked_logit(scale, x[j], bias, extreme, reference);
            }
        }
        if (z_wide != NULL)
            z_wide[j] = z;
        else
            z_double[j] = isfinite(z.hi) ? z.hi + z.lo : z.hi;
    }
}

/* One line of the additive-mask path through the kernels' split, for the
 * common layout (f32 or no mask and unit strides along the axis) and a
 * finite nonzero scale; false for other lines (left to the exact general
 * path) and for lines the split declines. x (f32 logits) may be the source
 * itself; hi is the line's buffer. */
bool split_line(const general_plan *plan, const line_position *where, const float *x, float *hi, double *line)
{
    const general_operand *m = &plan->operands[GENERAL_MASK];
    const general_operand *w = &plan->operands[GENERAL_WHERE];
    const bool common = plan->scale != 0 && !isinf(plan->scale) &&
                        (!plan->has_mask || (m->type == SOFTMAX_DTYPE_F32 && m->strides[plan->axis] == 1)) &&
                        (!plan->has_where || w->strides[plan->axis] == 1);
    if (!common)
        return false;
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
void double_double_line(softmax_op op, const dd *z, double *y, size_t n)
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

void set_excluded(const general_plan *plan, const line_position *where, void *line, double value)
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
 * (unit strides, f32 masks) take loops the compiler vectorises. One body
 * for both computation types: `f32` is a constant once inlined. */
static SOFTMAX_FORCE_INLINE void exclude_body(const general_plan *plan, const line_position *where, void *values,
                                              bool f32)
{
    float *line32 = values;
    double *line64 = values;
    const size_t n = plan->n;
    const double excluded = excluded_logit(plan);
    const float excluded32 = (float)excluded;
    const size_t kept = causal_length(plan, where);
    for (size_t j = kept; j < n; j++) {
        if (f32)
            line32[j] = excluded32;
        else
            line64[j] = excluded;
    }
    if (plan->has_where) {
        const general_operand *w = &plan->operands[GENERAL_WHERE];
        const uint8_t *keep = (const uint8_t *)(const void *)w->base + where->offset[GENERAL_WHERE];
        const int64_t stride = w->strides[plan->axis];
        if (f32 && stride == 1)
            for (size_t j = 0; j < kept; j++)
                line32[j] = keep[j] ? line32[j] : excluded32;
        else if (f32)
            for (size_t j = 0; j < kept; j++)
                line32[j] = keep[(int64_t)j * stride] ? line32[j] : excluded32;
        else if (stride == 1)
            for (size_t j = 0; j < kept; j++)
                line64[j] = keep[j] ? line64[j] : excluded;
        else
            for (size_t j = 0; j < kept; j++)
                line64[j] = keep[(int64_t)j * stride] ? line64[j] : excluded;
    }
    if (plan->has_mask) {
        const general_operand *m = &plan->operands[GENERAL_MASK];
        const int64_t stride = m->strides[plan->axis];
        const int64_t offset = where->offset[GENERAL_MASK];
        if (m->type == SOFTMAX_DTYPE_F32 && stride == 1) {
            const float *values_of_mask = (const float *)(const void *)m->base + offset;
            if (f32)
                for (size_t j = 0; j < kept; j++)
                    line32[j] = values_of_mask[j] == -INFINITY ? excluded32 : line32[j];
            else
                for (size_t j = 0; j < kept; j++)
                    line64[j] = values_of_mask[j] == -INFINITY ? excluded : line64[j];
        } else {
            for (size_t j = 0; j < kept; j++) {
                if (load_double(m->base, m->type, offset + (int64_t)j * stride) != -INFINITY)
                    continue;
                if (f32)
                    line32[j] = excluded32;
                else
                    line64[j] = excluded;
            }
        }
    }
}

void exclude_f32(const general_plan *plan, const line_position *where, float *line)
{
    exclude_body(plan, where, line, true);
}

void exclude_f64(const general_plan *plan, const line_position *where, double *line)
{
    exclude_body(plan, where, line, false);
}

/* The common attention layouts in one pass: f32 logits with unit stride
 * gathered with their exclusions (a `where` byte or a 0 / -inf f32 mask
 * entry, unit strides) applied on the way; loops without branches so that
 * the compiler vectorises them. False if the layout is not one of these. */
SOFTMAX_VECTOR_CLONES bool gather_excluding_f32(const general_plan *plan, const line_position *where, char *line_bytes)
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
