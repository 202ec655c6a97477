/*
 * layout.c -- checks the layout, type and mask fields of a softmax_desc and
 * turns them into a general_plan (general.h).
 *
 * Every check happens here, before anything is written: a call that fails
 * leaves every output untouched.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "general.h"

#define FAIL(status, ...) softmax_fail((status), __VA_ARGS__)

static bool is_known_type(softmax_dtype type)
{
    return softmax_dtype_size(type) != 0;
}

static const char *operand_names[GENERAL_OPERANDS] = {"src", "grad", "dst", "mask", "where"};

static void contiguous_strides(const general_plan *plan, int64_t *strides)
{
    int64_t step = 1;
    for (int d = plan->ndim - 1; d >= 0; d--) {
        strides[d] = step;
        step *= (int64_t)plan->shape[d];
    }
}

/* The element offsets an operand reaches, [low, high], or false if they
 * overflow. */
static bool reach_of(const general_plan *plan, const int64_t *strides, int64_t *low, int64_t *high)
{
    *low = 0;
    *high = 0;
    for (int d = 0; d < plan->ndim; d++) {
        const uint64_t extent = plan->shape[d] - 1;
        if (extent == 0)
            continue;
        const int64_t stride = strides[d];
        const uint64_t magnitude = stride < 0 ? (uint64_t)0 - (uint64_t)stride : (uint64_t)stride;
        if (magnitude != 0 && extent > (uint64_t)INT64_MAX / magnitude)
            return false;
        const int64_t span = (int64_t)(magnitude * extent);
        if (stride < 0) {
            if (*low < INT64_MIN + span)
                return false;
            *low -= span;
        } else {
            if (*high > INT64_MAX - span)
                return false;
            *high += span;
        }
    }
    return true;
}

typedef struct dim_order {
    uint64_t magnitude;
    uint64_t extent;
} dim_order;

static int by_magnitude(const void *a, const void *b)
{
    const dim_order *x = a, *y = b;
    return (x->magnitude > y->magnitude) - (x->magnitude < y->magnitude);
}

/* Sufficient condition for no two elements sharing an address: sorted by
 * stride magnitude, each stride steps past everything the smaller ones
 * reach. It accepts every transposed, sliced or padded view. */
static bool strides_are_injective(const general_plan *plan, const int64_t *strides)
{
    dim_order dims[SOFTMAX_MAX_NDIM];
    int count = 0;
    for (int d = 0; d < plan->ndim; d++) {
        if (plan->shape[d] <= 1)
            continue;
        const int64_t stride = strides[d];
        dims[count].magnitude = stride < 0 ? (uint64_t)0 - (uint64_t)stride : (uint64_t)stride;
        dims[count].extent = plan->shape[d] - 1;
        count++;
    }
    qsort(dims, (size_t)count, sizeof dims[0], by_magnitude);
    uint64_t reach = 0; /* largest offset the smaller dimensions reach */
    for (int k = 0; k < count; k++) {
        if (dims[k].magnitude <= reach)
            return false;
        reach += dims[k].magnitude * dims[k].extent; /* no overflow: reach_of passed */
    }
    return true;
}

typedef struct byte_range {
    uintptr_t begin;
    uintptr_t end;
} byte_range;

static bool same_layout(const general_plan *plan, const general_operand *a, const general_operand *b)
{
    if (a->base != b->base || softmax_dtype_size(a->type) != softmax_dtype_size(b->type))
        return false;
    for (int d = 0; d < plan->ndim; d++)
        if (plan->shape[d] > 1 && a->strides[d] != b->strides[d])
            return false;
    return true;
}

/* True if every distinct mask element is 0 or -inf (a padding or causal
 * mask written additively): the mask then only excludes elements and the
 * data type's own kernels apply. Each stored element is read once, however
 * far the mask is broadcast; the answer depends on the data alone, so every
 * thread count takes the same path. */
static bool mask_only_excludes(const general_plan *plan)
{
    const general_operand *m = &plan->operands[GENERAL_MASK];
    size_t extent[SOFTMAX_MAX_NDIM], index[SOFTMAX_MAX_NDIM] = {0};
    for (int d = 0; d < plan->ndim; d++)
        extent[d] = m->strides[d] == 0 ? 1 : plan->shape[d];
    for (;;) {
        int64_t offset = 0;
        for (int d = 0; d < plan->ndim; d++)
            offset += (int64_t)index[d] * m->strides[d];
        const int last = plan->ndim - 1;
        const int64_t step = m->strides[last];
        for (size_t j = 0; j < extent[last]; j++) {
            const int64_t at = offset + (int64_t)j * step;
            double value;
            switch (m->type) {
            case SOFTMAX_DTYPE_F32:
                value = ((const float *)(const void *)m->base)[at];
                break;
            case SOFTMAX_DTYPE_F64:
                value = ((const double *)(const void *)m->base)[at];
                break;
            case SOFTMAX_DTYPE_BF16:
                value = softmax_bf16_to_float(((const uint16_t *)(const void *)m->base)[at]);
                break;
            default:
                value = softmax_f16_to_float(((const uint16_t *)(const void *)m->base)[at]);
                break;
            }
            if (value != 0.0 && value != -INFINITY)
                return false;
        }
        int d = last - 1;
        while (d >= 0 && ++index[d] == extent[d])
            index[d--] = 0;
        if (d < 0)
            return true;
    }
}

int softmax_general_prepare(const char *fn, const softmax_desc *desc, const void *src, const void *grad, void *dst,
                            general_plan *plan, bool *plain)
{
    *plan = (general_plan){0};
    plan->op = desc->op;
    plan->forward = desc->op == SOFTMAX_OP_SOFTMAX || desc->op == SOFTMAX_OP_LOG_SOFTMAX;
    plan->ndim = desc->ndim;
    plan->axis = desc->axis < 0 ? desc->axis + desc->ndim : desc->axis;
    plan->scale = desc->scale;
    plan->lines = 1;
    for (int d = 0; d < desc->ndim; d++) {
        plan->shape[d] = desc->shape[d];
        if (d != plan->axis)
            plan->lines *= desc->shape[d]; /* no overflow: the element count was checked */
    }
    plan->n = desc->shape[plan->axis];

    /* Types. */
    const softmax_dtype dst_type = desc->dst_dtype == 0 ? desc->dtype : desc->dst_dtype;
    const softmax_dtype grad_type = desc->grad_dtype == 0 ? desc->dtype : desc->grad_dtype;
    const softmax_dtype mask_type = desc->mask_dtype == 0 ? SOFTMAX_DTYPE_F32 : desc->mask_dtype;
    if (!is_known_type(dst_type))
        return FAIL(SOFTMAX_E_INVALID_DTYPE, "%s: unknown dst_dtype %d", fn, (int)desc->dst_dtype);
    if (!plan->forward && !is_known_type(grad_type))
        return FAIL(SOFTMAX_E_INVALID_DTYPE, "%s: unknown grad_dtype %d", fn, (int)desc->grad_dtype);
    if (desc->mask != NULL && !is_known_type(mask_type))
        return FAIL(SOFTMAX_E_INVALID_MASK, "%s: unknown mask_dtype %d", fn, (int)desc->mask_dtype);
    const bool any_f64 = desc->dtype == SOFTMAX_DTYPE_F64 || dst_type == SOFTMAX_DTYPE_F64 ||
                         (!plan->forward && grad_type == SOFTMAX_DTYPE_F64);
    plan->compute = any_f64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
    int status = SOFTMAX_OK;
    plan->kernels = softmax_dispatch(plan->compute, fn, &status);
    if (plan->kernels == NULL)
        return status;
    plan->wide_kernels = softmax_dispatch(SOFTMAX_DTYPE_F64, fn, &status);
    if (plan->wide_kernels == NULL)
        return status;

    /* Masks. */
    plan->has_mask = desc->mask != NULL;
    plan->has_where = desc->where != NULL;
    plan->causal = desc->causal != 0;
    plan->causal_offset = desc->causal_offset;
    if (!plan->has_mask && desc->mask_strides != NULL)
        return FAIL(SOFTMAX_E_INVALID_MASK, "%s: mask_strides given without a mask", fn);
    if (!plan->has_where && desc->where_strides != NULL)
        return FAIL(SOFTMAX_E_INVALID_MASK, "%s: where_strides given without where", fn);
    if (plan->causal && plan->axis == 0)
        return FAIL(SOFTMAX_E_INVALID_MASK, "%s: a causal mask needs a query dimension before the softmax axis", fn);
    if (isnan(desc->max_bias) || desc->max_bias < 0 || isinf(desc->max_bias))
        return FAIL(SOFTMAX_E_INVALID_MASK, "%s: max_bias = %g must be finite and >= 0", fn, desc->max_bias);
    if (desc->max_bias > 0) {
        const int head_axis = desc->head_axis < 0 ? desc->head_axis + desc->ndim : desc->head_axis;
        if (head_axis < 0 || head_axis >= desc->ndim || head_axis == plan->axis)
            return FAIL(SOFTMAX_E_INVALID_MASK,
                        "%s: head_axis = %d must name a dimension other than the softmax axis (ndim = %d)", fn,
                        desc->head_axis, desc->ndim);
        plan->alibi = plan->forward;
        plan->head_axis = head_axis;
        uint64_t heads = desc->shape[head_axis], pow2 = 1;
        while (pow2 * 2 <= heads)
            pow2 *= 2;
        plan->alibi_heads_pow2 = pow2;
        plan->alibi_m0 = exp2(-desc->max_bias / (double)pow2);
        plan->alibi_m1 = exp2(-desc->max_bias / 2.0 / (double)pow2);
    } else {
        plan->head_axis = -1;
    }
    if (!plan->forward) {
        plan->has_mask = false; /* additive terms do not change the gradient formulas */
    }

    /* Operands and their layouts. */
    const void *bases[GENERAL_OPERANDS] = {src, plan->forward ? NULL : grad, dst, plan->has_mask ? desc->mask : NULL,
                                           desc->where};
    const softmax_dtype types[GENERAL_OPERANDS] = {desc->dtype, grad_type, dst_type, mask_type, SOFTMAX_DTYPE_F32};
    const int64_t *given[GENERAL_OPERANDS] = {desc->src_strides, desc->grad_strides, desc->dst_strides,
                                              desc->mask_strides, desc->where_strides};
    int64_t contiguous[SOFTMAX_MAX_NDIM];
    contiguous_strides(plan, contiguous);
    byte_range ranges[GENERAL_OPERANDS] = {{0}};
    bool layouts_contiguous = true;
    for (int k = 0; k < GENERAL_OPERANDS; k++) {
        general_operand *o = &plan->operands[k];
        const bool needed = k == GENERAL_SRC || k == GENERAL_DST || (k == GENERAL_GRAD && !plan->forward) ||
                            (k == GENERAL_MASK && plan->has_mask) || (k == GENERAL_WHERE && plan->has_where);
        if (!needed)
            continue;
        if (bases[k] == NULL)
            return FAIL(SOFTMAX_E_NULL_POINTER, "%s: %s is NULL", fn, operand_names[k]);
        o->base = bases[k];
        o->base_out = k == GENERAL_DST ? dst : NULL;
        o->type = types[k];
        const size_t element = k == GENERAL_WHERE ? 1 : softmax_dtype_size(o->type);
        for (int d = 0; d < plan->ndim; d++) {
            o->strides[d] = given[k] != NULL ? given[k][d] : contiguous[d];
            if (plan->shape[d] > 1 && o->strides[d] != contiguous[d])
                layouts_contiguous &= k >= GENERAL_MASK; /* mask layouts do not affect the fast path */
        }
        int64_t low = 0, high = 0;
        if (!reach_of(plan, o->strides, &low, &high) || high - low >= INT64_MAX / 8)
            return FAIL(SOFTMAX_E_SIZE_OVERFLOW, "%s: the strides of %s reach offsets that overflow", fn,
                        operand_names[k]);
        const uintptr_t base = (uintptr_t)o->base;
        const uintptr_t byte_low = (uintptr_t)((intptr_t)low * (intptr_t)element);
        if (low < 0 && base < (uintptr_t)(-(intptr_t)low * (intptr_t)element))
            return FAIL(SOFTMAX_E_SIZE_OVERFLOW, "%s: the negative strides of %s reach below address 0", fn,
                        operand_names[k]);
        ranges[k].begin = base + byte_low;
        ranges[k].end = base + (uintptr_t)((high + 1) * (int64_t)element);
        if (ranges[k].end < base)
            return FAIL(SOFTMAX_E_SIZE_OVERFLOW, "%s: %s reaches past the end of the address space", fn,
                        operand_names[k]);
    }
    if (!strides_are_injective(plan, plan->operands[GENERAL_DST].strides))
        return FAIL(SOFTMAX_E_INVALID_STRIDE, "%s: dst_strides map two elements of dst to the same address", fn);
    for (int k = 0; k < GENERAL_OPERANDS; k++) {
        if (k == GENERAL_DST || plan->operands[k].base == NULL)
            continue;
        const byte_range *a = &ranges[GENERAL_DST], *b = &ranges[k];
        if (a->begin < b->end && b->begin < a->end) {
            const bool in_place = (k == GENERAL_SRC || k == GENERAL_GRAD) &&
                                  same_layout(plan, &plan->operands[GENERAL_DST], &plan->operands[k]);
            if (!in_place)
                return FAIL(SOFTMAX_E_OVERLAP, "%s: dst overlaps %s without being exactly the same elements", fn,
                            operand_names[k]);
        }
    }

    bool dst_contiguous = true;
    for (int d = 0; d < plan->ndim; d++)
        dst_contiguous &= plan->shape[d] <= 1 || plan->operands[GENERAL_DST].strides[d] == contiguous[d];
    plan->dst_rows_contiguous = dst_contiguous && dst_type == plan->compute && plan->axis == plan->ndim - 1;
    if (plan->has_mask)
        plan->mask_only_excludes = mask_only_excludes(plan);
    const bool masked = plan->has_mask || plan->has_where || plan->causal || plan->alibi;
    {
        bool src_contiguous = true;
        for (int d = 0; d < plan->ndim; d++)
            src_contiguous &= plan->shape[d] <= 1 || plan->operands[GENERAL_SRC].strides[d] == contiguous[d];
        const bool half = desc->dtype == SOFTMAX_DTYPE_BF16 || desc->dtype == SOFTMAX_DTYPE_F16;
        /* Forward rows along the last axis, contiguous in and out. */
        const bool rows = plan->forward && src_contiguous && dst_contiguous && plan->axis == plan->ndim - 1;
        plan->fast = (desc->flags & SOFTMAX_FLAG_FAST) != 0 && plan->forward && !masked &&
                     plan->compute == SOFTMAX_DTYPE_F32 && (plan->kernels->capabilities & SOFTMAX_KERNELS_FAST_MODE);
        /* The half-precision rows the accurate kernels read in place; in
         * fast mode they are gathered for the fast kernels instead. */
        plan->half_rows = half && rows && !masked && !plan->fast && dst_type == desc->dtype &&
                          plan->n >= HALF_ROW_MIN && (plan->kernels->capabilities & SOFTMAX_KERNELS_HALF_ROWS);
        plan->half_lines = half && rows && !masked && !plan->fast &&
                           (dst_type == desc->dtype || dst_type == SOFTMAX_DTYPE_F32) && !plan->half_rows &&
                           (plan->kernels->capabilities & SOFTMAX_KERNELS_HALF_ROWS);
        /* Shorter rows gather in blocks of several lines for the grouped
         * fast kernels (the line kernel declines them). */
        plan->fast_half_lines =
            half && rows && plan->fast && (dst_type == desc->dtype || dst_type == SOFTMAX_DTYPE_F32) &&
            plan->n > FAST_HALF_LINE_MIN && (plan->kernels->capabilities & SOFTMAX_KERNELS_HALF_ROWS);
        const general_operand *x = &plan->operands[GENERAL_SRC], *w = &plan->operands[GENERAL_WHERE],
                              *m = &plan->operands[GENERAL_MASK];
        plan->excluding_lines =
            plan->forward && masked && (!plan->alibi || !plan->has_mask || plan->mask_only_excludes) &&
            plan->compute == SOFTMAX_DTYPE_F32 && x->type == SOFTMAX_DTYPE_F32 && x->strides[plan->axis] == 1 &&
            plan->dst_rows_contiguous && (plan->kernels->capabilities & SOFTMAX_KERNELS_MASKED_ROWS) &&
            (!plan->has_where || w->strides[plan->axis] == 1) &&
            (!plan->has_mask || (m->type != SOFTMAX_DTYPE_F64 && m->strides[plan->axis] == 1));
    }
    const bool one_type = (desc->dtype == SOFTMAX_DTYPE_F32 || desc->dtype == SOFTMAX_DTYPE_F64) &&
                          dst_type == desc->dtype && (plan->forward || grad_type == desc->dtype);
    *plain = one_type && layouts_contiguous && !masked;
    plan->causal_rows_fast = one_type && layouts_contiguous && plan->causal && !plan->has_where && !plan->has_mask &&
                             !plan->alibi && plan->axis == plan->ndim - 1;
    return SOFTMAX_OK;
}
