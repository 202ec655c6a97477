/*
 * planner.c -- the planner of softmax_execute() and of the pinned
 * rows x cols entry points: checks every field of a softmax_desc and the
 * operands it describes, dispatches once, and chooses the route
 * (general.h: softmax_route) that api.c or the general pipeline runs.
 *
 * Every check happens here, before anything is written: a call that fails
 * leaves every output untouched. The checks run in a fixed order (the
 * basic fields, the code path, then -- for a non-empty tensor -- types,
 * masks, strides and overlaps), so that a call with several faults always
 * reports the same one.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "general.h"

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

/* Whether `count` mask elements from `at`, `step` apart, are all 0 (either
 * sign) or -inf, tested on their bits: min(|bits|, bits ^ -inf) is 0 for
 * those values only. A unit-stride run is read in chunks of branch-free
 * steps that the compiler vectorises (an and, a xor, an unsigned min, an
 * or), stopping at the first chunk with another value: a mask the size of
 * the logits costs a fraction of the softmax, not a multiple of it as a
 * per-element conversion and compare did. */
enum { MASK_SCAN_CHUNK = 1024 };

#define ZERO_OR_MINUS_INFINITY_RUN(UINT, MAGNITUDE_BITS, MINUS_INFINITY)                                               \
    do {                                                                                                               \
        const UINT *bits = (const UINT *)(const void *)base + at;                                                      \
        for (size_t first = 0; first < count; first += MASK_SCAN_CHUNK) {                                              \
            const size_t last = first + MASK_SCAN_CHUNK < count ? first + MASK_SCAN_CHUNK : count;                     \
            UINT other = 0;                                                                                            \
            for (size_t j = first; j < last; j++) {                                                                    \
                const UINT magnitude = bits[j] & (MAGNITUDE_BITS), from_minus_infinity = bits[j] ^ (MINUS_INFINITY);   \
                other |= magnitude < from_minus_infinity ? magnitude : from_minus_infinity;                            \
            }                                                                                                          \
            if (other != 0)                                                                                            \
                return false;                                                                                          \
        }                                                                                                              \
        return true;                                                                                                   \
    } while (0)

SOFTMAX_VECTOR_CLONES bool mask_run_only_excludes(const char *base, softmax_dtype type, int64_t at, int64_t step,
                                                  size_t count)
{
    const bool bf16 = type == SOFTMAX_DTYPE_BF16;
    if (step == 1) {
        switch (type) {
        case SOFTMAX_DTYPE_F32:
            ZERO_OR_MINUS_INFINITY_RUN(uint32_t, 0x7fffffffu, 0xff800000u);
        case SOFTMAX_DTYPE_F64:
            ZERO_OR_MINUS_INFINITY_RUN(uint64_t, 0x7fffffffffffffffu, 0xfff0000000000000u);
        default: /* bf16 and f16: one -inf pattern each */
            ZERO_OR_MINUS_INFINITY_RUN(uint16_t, 0x7fffu, bf16 ? 0xff80u : 0xfc00u);
        }
    }
    for (size_t j = 0; j < count; j++) {
        const int64_t k = at + (int64_t)j * step;
        double value;
        switch (type) {
        case SOFTMAX_DTYPE_F32:
            value = ((const float *)(const void *)base)[k];
            break;
        case SOFTMAX_DTYPE_F64:
            value = ((const double *)(const void *)base)[k];
            break;
        default: {
            const uint16_t bits = ((const uint16_t *)(const void *)base)[k];
            value = bf16 ? softmax_bf16_to_float(bits) : softmax_f16_to_float(bits);
            break;
        }
        }
        if (value != 0.0 && value != -INFINITY)
            return false;
    }
    return true;
}

/* True if every distinct mask element is 0 or -inf (a padding or causal
 * mask written additively): the mask then only excludes elements and the
 * data type's own kernels apply. Each stored element is read once, however
 * far the mask is broadcast, and the innermost dimensions that are stored
 * contiguously are read as one run; the answer depends on the data alone,
 * so every thread count takes the same path. */
static bool mask_only_excludes(const general_plan *plan)
{
    const general_operand *m = &plan->operands[GENERAL_MASK];
    size_t extent[SOFTMAX_MAX_NDIM] = {0}, index[SOFTMAX_MAX_NDIM] = {0};
    for (int d = 0; d < plan->ndim; d++)
        extent[d] = m->strides[d] == 0 ? 1 : plan->shape[d];
    /* The run: the last dimension, and the ones before it while the mask
     * is stored contiguously across them. */
    int last = plan->ndim - 1;
    const int64_t step = extent[last] == 1 ? 1 : m->strides[last];
    size_t run = extent[last];
    while (last > 0 && (extent[last - 1] == 1 || (int64_t)run * step == m->strides[last - 1])) {
        last--;
        run *= extent[last];
    }
    for (;;) {
        int64_t offset = 0;
        for (int d = 0; d < last; d++)
            offset += (int64_t)index[d] * m->strides[d];
        if (!mask_run_only_excludes(m->base, m->type, offset, step, run))
            return false;
        int d = last - 1;
        while (d >= 0 && ++index[d] == extent[d])
            index[d--] = 0;
        if (d < 0)
            return true;
    }
}

static const char *op_name(softmax_op op)
{
    switch (op) {
    case SOFTMAX_OP_SOFTMAX:
        return "softmax";
    case SOFTMAX_OP_LOG_SOFTMAX:
        return "log_softmax";
    case SOFTMAX_OP_SOFTMAX_BACKWARD:
        return "softmax_backward";
    case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
        return "log_softmax_backward";
    case SOFTMAX_OP_LOG_SOFTMAX_JVP:
        return "log_softmax_jvp";
    }
    return NULL;
}

/* a * b, or false if it overflows size_t. */
static bool checked_multiply(size_t a, size_t b, size_t *product)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *product = a * b;
    return true;
}

/* The basic fields, and the tensor seen around its softmax axis:
 * [outer, n, inner] and its element count (0 if any extent is 0). */
static int check_basic_fields(const char *fn, const softmax_desc *desc, general_plan *view)
{
    RETURN_ERROR_IF(desc == NULL, SOFTMAX_E_NULL_POINTER, "%s: desc is NULL", fn);
    RETURN_ERROR_IF(op_name(desc->op) == NULL, SOFTMAX_E_INVALID_ARGUMENT, "%s: unknown op %d", fn, (int)desc->op);
    const size_t element_size = softmax_dtype_size(desc->dtype);
    RETURN_ERROR_IF(element_size == 0, SOFTMAX_E_INVALID_DTYPE, "%s: unknown or unsupported dtype %d", fn,
                    (int)desc->dtype);
    RETURN_ERROR_IF(desc->ndim < 1 || desc->ndim > SOFTMAX_MAX_NDIM, SOFTMAX_E_INVALID_ARGUMENT,
                    "%s: ndim = %d is outside [1, %d]", fn, desc->ndim, SOFTMAX_MAX_NDIM);
    RETURN_ERROR_IF(desc->axis < -desc->ndim || desc->axis >= desc->ndim, SOFTMAX_E_INVALID_AXIS,
                    "%s: axis = %d is outside [%d, %d] for ndim = %d", fn, desc->axis, -desc->ndim, desc->ndim - 1,
                    desc->ndim);
    for (size_t i = 0; i < sizeof desc->reserved / sizeof desc->reserved[0]; i++)
        RETURN_ERROR_IF(desc->reserved[i] != 0, SOFTMAX_E_UNSUPPORTED,
                        "%s: reserved[%zu] is non-zero (not supported by version %s)", fn, i, softmax_version());
    RETURN_ERROR_IF((desc->flags & ~(uint64_t)SOFTMAX_FLAG_FAST) != 0, SOFTMAX_E_UNSUPPORTED,
                    "%s: flags = %#llx has bits other than SOFTMAX_FLAG_FAST", fn, (unsigned long long)desc->flags);
    RETURN_ERROR_IF(isnan(desc->scale), SOFTMAX_E_INVALID_SCALE, "%s: scale is NaN", fn);

    const int axis = desc->axis < 0 ? desc->axis + desc->ndim : desc->axis;
    view->outer = 1;
    view->inner = 1;
    view->n = desc->shape[axis];
    bool fits = true;
    for (int d = 0; d < desc->ndim; d++) {
        if (d < axis)
            fits &= checked_multiply(view->outer, desc->shape[d], &view->outer);
        else if (d > axis)
            fits &= checked_multiply(view->inner, desc->shape[d], &view->inner);
    }
    /* A zero extent anywhere makes the tensor empty even if the others
     * multiply past SIZE_MAX. */
    bool empty = false;
    for (int d = 0; d < desc->ndim; d++)
        empty |= desc->shape[d] == 0;
    if (empty) {
        view->elements = 0;
        return SOFTMAX_OK;
    }
    size_t lines = 0, bytes = 0;
    fits = fits && checked_multiply(view->outer, view->inner, &lines) &&
           checked_multiply(lines, view->n, &view->elements) && checked_multiply(view->elements, element_size, &bytes);
    RETURN_ERROR_IF(!fits, SOFTMAX_E_SIZE_OVERFLOW, "%s: the tensor's element count or byte size overflows size_t", fn);
    return SOFTMAX_OK;
}

int softmax_plan_call(const char *fn, const softmax_desc *desc, const void *src, const void *grad, void *dst,
                      general_plan *plan)
{
    *plan = (general_plan){0};
    int status = check_basic_fields(fn, desc, plan);
    if (status != SOFTMAX_OK)
        return status;
    /* The one dispatch of the call: even an empty call reports a forced
     * code path that this CPU lacks. */
    const softmax_path *path = softmax_dispatch_path(fn, &status);
    if (path == NULL)
        return status;
    if (plan->elements == 0) {
        plan->route = SOFTMAX_ROUTE_EMPTY;
        return SOFTMAX_OK;
    }
    plan->op = desc->op;
    plan->forward = desc->op == SOFTMAX_OP_SOFTMAX || desc->op == SOFTMAX_OP_LOG_SOFTMAX;
    plan->ndim = desc->ndim;
    plan->axis = desc->axis < 0 ? desc->axis + desc->ndim : desc->axis;
    plan->scale = desc->scale;
    plan->lines = plan->outer * plan->inner; /* no overflow: the element count was checked */
    for (int d = 0; d < desc->ndim; d++)
        plan->shape[d] = desc->shape[d];

    /* Types. */
    const softmax_dtype dst_type = desc->dst_dtype == 0 ? desc->dtype : desc->dst_dtype;
    const softmax_dtype grad_type = desc->grad_dtype == 0 ? desc->dtype : desc->grad_dtype;
    const softmax_dtype mask_type = desc->mask_dtype == 0 ? SOFTMAX_DTYPE_F32 : desc->mask_dtype;
    RETURN_ERROR_IF(!is_known_type(dst_type), SOFTMAX_E_INVALID_DTYPE, "%s: unknown dst_dtype %d", fn,
                    (int)desc->dst_dtype);
    RETURN_ERROR_IF(!plan->forward && !is_known_type(grad_type), SOFTMAX_E_INVALID_DTYPE, "%s: unknown grad_dtype %d",
                    fn, (int)desc->grad_dtype);
    RETURN_ERROR_IF(desc->mask != NULL && !is_known_type(mask_type), SOFTMAX_E_INVALID_MASK,
                    "%s: unknown mask_dtype %d", fn, (int)desc->mask_dtype);
    const bool any_f64 = desc->dtype == SOFTMAX_DTYPE_F64 || dst_type == SOFTMAX_DTYPE_F64 ||
                         (!plan->forward && grad_type == SOFTMAX_DTYPE_F64);
    plan->compute = any_f64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
    plan->kernels = any_f64 ? path->f64 : path->f32;
    plan->wide_kernels = path->f64;

    /* Masks. */
    plan->has_mask = desc->mask != NULL;
    plan->has_where = desc->where != NULL;
    plan->causal = desc->causal != 0;
    plan->causal_offset = desc->causal_offset;
    RETURN_ERROR_IF(!plan->has_mask && desc->mask_strides != NULL, SOFTMAX_E_INVALID_MASK,
                    "%s: mask_strides given without a mask", fn);
    RETURN_ERROR_IF(!plan->has_where && desc->where_strides != NULL, SOFTMAX_E_INVALID_MASK,
                    "%s: where_strides given without where", fn);
    RETURN_ERROR_IF(plan->causal && plan->axis == 0, SOFTMAX_E_INVALID_MASK,
                    "%s: a causal mask needs a query dimension before the softmax axis", fn);
    RETURN_ERROR_IF(isnan(desc->max_bias) || desc->max_bias < 0 || isinf(desc->max_bias), SOFTMAX_E_INVALID_MASK,
                    "%s: max_bias = %g must be finite and >= 0", fn, desc->max_bias);
    if (desc->max_bias > 0) {
        const int head_axis = desc->head_axis < 0 ? desc->head_axis + desc->ndim : desc->head_axis;
        RETURN_ERROR_IF(head_axis < 0 || head_axis >= desc->ndim || head_axis == plan->axis, SOFTMAX_E_INVALID_MASK,
                        "%s: head_axis = %d must name a dimension other than the softmax axis (ndim = %d)", fn,
                        desc->head_axis, desc->ndim);
        plan->alibi = plan->forward;
        plan->head_axis = head_axis;
        uint64_t heads = desc->shape[head_axis], pow2 = 1;
        while (pow2 * 2 <= heads)
            pow2 *= 2;
        plan->alibi_heads_pow2 = pow2;
        plan->alibi_max_bias = desc->max_bias;
        for (uint64_t h = 0; plan->alibi && h < heads && h < ALIBI_SLOPE_TABLE; h++)
            alibi_slope_parts(desc->max_bias, pow2, (int64_t)h, &plan->alibi_slopes[h], &plan->alibi_slopes_low[h]);
        if (plan->alibi)
            alibi_plan_parts(plan, heads);
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
        RETURN_ERROR_IF(bases[k] == NULL, SOFTMAX_E_NULL_POINTER, "%s: %s is NULL", fn, operand_names[k]);
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
        RETURN_ERROR_IF(!reach_of(plan, o->strides, &low, &high) || high - low >= INT64_MAX / 8,
                        SOFTMAX_E_SIZE_OVERFLOW, "%s: the strides of %s reach offsets that overflow", fn,
                        operand_names[k]);
        const uintptr_t base = (uintptr_t)o->base;
        const uintptr_t byte_low = (uintptr_t)((intptr_t)low * (intptr_t)element);
        RETURN_ERROR_IF(low < 0 && base < (uintptr_t)(-(intptr_t)low * (intptr_t)element), SOFTMAX_E_SIZE_OVERFLOW,
                        "%s: the negative strides of %s reach below address 0", fn, operand_names[k]);
        ranges[k].begin = base + byte_low;
        ranges[k].end = base + (uintptr_t)((high + 1) * (int64_t)element);
        RETURN_ERROR_IF(ranges[k].end < base, SOFTMAX_E_SIZE_OVERFLOW,
                        "%s: %s reaches past the end of the address space", fn, operand_names[k]);
    }
    RETURN_ERROR_IF(!strides_are_injective(plan, plan->operands[GENERAL_DST].strides), SOFTMAX_E_INVALID_STRIDE,
                    "%s: dst_strides map two elements of dst to the same address", fn);
    for (int k = 0; k < GENERAL_OPERANDS; k++) {
        if (k == GENERAL_DST || plan->operands[k].base == NULL)
            continue;
        const byte_range *a = &ranges[GENERAL_DST], *b = &ranges[k];
        if (a->begin < b->end && b->begin < a->end) {
            const bool in_place = (k == GENERAL_SRC || k == GENERAL_GRAD) &&
                                  same_layout(plan, &plan->operands[GENERAL_DST], &plan->operands[k]);
            RETURN_ERROR_IF(!in_place, SOFTMAX_E_OVERLAP, "%s: dst overlaps %s without being exactly the same elements",
                            fn, operand_names[k]);
        }
    }

    bool dst_contiguous = true, src_contiguous = true;
    for (int d = 0; d < plan->ndim; d++) {
        dst_contiguous &= plan->shape[d] <= 1 || plan->operands[GENERAL_DST].strides[d] == contiguous[d];
        src_contiguous &= plan->shape[d] <= 1 || plan->operands[GENERAL_SRC].strides[d] == contiguous[d];
    }
    plan->dst_rows_contiguous = dst_contiguous && dst_type == plan->compute && plan->axis == plan->ndim - 1;
    /* A mask about as large as the scores (broadcast over at most
     * LAZY_MASK_BROADCAST lines per stored row) and rows long enough for the
     * line kernels: rather than a pass of its own over the mask (one more
     * read of a tensor the size of x from memory), the mask is assumed to
     * only exclude and checked as the lines are computed -- by the line
     * kernels' max pass as they read it, or by the runner just before the
     * kernels read a block (general/blocks.c) -- starting over with the
     * mask added if one value does not: the same bits as the pass would
     * have chosen. Not in place: a restart
     * needs the source intact. The assumption stands only if the route it
     * picks is the masked lines' (checked below). */
    bool check_mask_lazily = false;
    if (plan->has_mask) {
        size_t stored = 1;
        for (int d = 0; d < plan->ndim; d++)
            stored *= plan->operands[GENERAL_MASK].strides[d] == 0 ? 1 : plan->shape[d];
        const byte_range *x_range = &ranges[GENERAL_SRC], *y_range = &ranges[GENERAL_DST];
        const bool in_place = x_range->begin < y_range->end && y_range->begin < x_range->end;
        check_mask_lazily = plan->n >= LAZY_MASK_MIN_N && stored * LAZY_MASK_BROADCAST >= plan->elements && !in_place;
        plan->mask_only_excludes = check_mask_lazily || mask_only_excludes(plan);
    }

    /* The route: the first that applies. */
    const bool masked = plan->has_mask || plan->has_where || plan->causal || plan->alibi;
    const unsigned can = plan->kernels->capabilities;
    const bool fast = (desc->flags & SOFTMAX_FLAG_FAST) != 0 && plan->forward && !masked &&
                      plan->compute == SOFTMAX_DTYPE_F32 && (can & SOFTMAX_KERNELS_FAST_MODE);
    const bool one_type = (desc->dtype == SOFTMAX_DTYPE_F32 || desc->dtype == SOFTMAX_DTYPE_F64) &&
                          dst_type == desc->dtype && (plan->forward || grad_type == desc->dtype);
    const bool last_axis = plan->axis == plan->ndim - 1;
    /* Forward rows along the last axis, contiguous in and out. */
    const bool rows = plan->forward && src_contiguous && dst_contiguous && last_axis;
    const bool half = desc->dtype == SOFTMAX_DTYPE_BF16 || desc->dtype == SOFTMAX_DTYPE_F16;
    const bool half_dst = dst_type == desc->dtype || dst_type == SOFTMAX_DTYPE_F32;
    const general_operand *x = &plan->operands[GENERAL_SRC], *w = &plan->operands[GENERAL_WHERE],
                          *m = &plan->operands[GENERAL_MASK];
    /* Short causal f32 rows: the masked lines below (SHORT_CAUSAL_MAX_VECTORS
     * vectors of the f32 kernels, plan->kernels here). */
    const bool short_causal_rows = plan->forward && plan->compute == SOFTMAX_DTYPE_F32 &&
                                   plan->n <= SHORT_CAUSAL_MAX_VECTORS * plan->kernels->lanes &&
                                   (can & SOFTMAX_KERNELS_MASKED_ROWS);
    if (one_type && layouts_contiguous && !masked)
        plan->route = plan->inner > 1 ? SOFTMAX_ROUTE_COLUMNS : fast ? SOFTMAX_ROUTE_FAST_ROWS : SOFTMAX_ROUTE_ROWS;
    else if (one_type && layouts_contiguous && plan->causal && !plan->has_where && !plan->has_mask && !plan->alibi &&
             last_axis && !short_causal_rows)
        plan->route = SOFTMAX_ROUTE_CAUSAL_ROWS;
    /* Half-precision rows the accurate kernels read in place; in fast mode
     * the rows long enough for fast_row (shorter ones gather in blocks of
     * several lines for the grouped fast kernels). */
    else if (half && rows && !masked && !fast && dst_type == desc->dtype && plan->n >= HALF_ROW_MIN &&
             (can & SOFTMAX_KERNELS_HALF_ROWS))
        plan->route = SOFTMAX_ROUTE_HALF_ROWS;
    else if (half && rows && !masked && !fast && half_dst && (can & SOFTMAX_KERNELS_HALF_ROWS))
        plan->route = SOFTMAX_ROUTE_HALF_LINES;
    else if (half && rows && fast && half_dst && plan->n > FAST_HALF_LINE_MIN && (can & SOFTMAX_KERNELS_HALF_ROWS))
        plan->route = SOFTMAX_ROUTE_FAST_HALF_LINES;
    /* Masks of unit stride along the axis (`where`, causal, an f32 / bf16 /
     * f16 mask, ALiBi unless with a mask that adds finite values): the
     * kernels apply them, adding the bias, as they read x. */
    else if (plan->forward && masked && (!plan->alibi || !plan->has_mask || plan->mask_only_excludes) &&
             plan->compute == SOFTMAX_DTYPE_F32 && x->type == SOFTMAX_DTYPE_F32 && x->strides[plan->axis] == 1 &&
             plan->dst_rows_contiguous && (can & SOFTMAX_KERNELS_MASKED_ROWS) &&
             (!plan->has_where || w->strides[plan->axis] == 1) &&
             (!plan->has_mask || (m->type != SOFTMAX_DTYPE_F64 && m->strides[plan->axis] == 1)))
        plan->route = SOFTMAX_ROUTE_MASKED_LINES;
    else
        plan->route = fast ? SOFTMAX_ROUTE_FAST_GATHERED : SOFTMAX_ROUTE_GATHERED;
    if (check_mask_lazily && plan->route != SOFTMAX_ROUTE_MASKED_LINES)
        plan->mask_only_excludes = mask_only_excludes(plan); /* the assumption did not pick the route */
    plan->mask_checked_by_blocks = check_mask_lazily && plan->route == SOFTMAX_ROUTE_MASKED_LINES;
    return SOFTMAX_OK;
}
