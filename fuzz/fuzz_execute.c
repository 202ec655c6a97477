/*
 * fuzz_execute.c -- softmax_execute() with a fuzzed descriptor: op, ndim,
 * shape, axis, every data type and mix of types, strides (zero, negative,
 * overlapping), additive / where / causal / ALiBi masks, and outputs that
 * alias an input exactly or partly.
 *
 * Sizes are decoded with small caps, and every operand gets a buffer that
 * covers exactly what its strides reach (so ASan sees any access outside
 * it); element values are drawn from a small pool of hostile values.
 *
 * Checked (exact consequences of the contract in softmax.h):
 *  - an invalid op, type, ndim, axis, scale, reserved field, flag bit, NULL operand,
 *    mask type or ALiBi parameter fails; any failure leaves dst as it was
 *    and explains itself; inputs are never written (unless aliased);
 *  - on success no two dst elements share an address, bytes between dst
 *    elements stay untouched, and an aliased dst gets the same bits as a
 *    separate one;
 *  - forward lines: a NaN among the kept logits gives NaN for every kept
 *    element; otherwise (finite scale and kept values) no NaN, excluded
 *    elements 0 (log: -inf), a line with nothing kept all 0 (log: -inf),
 *    others sum to 1 within (4 n + 8) ulp of the computation type plus the
 *    rounding to a narrower dst type, log-softmax <= 4 ulp(1), and without an
 *    additive bias the weak order of x is kept (not checked in the fast
 *    mode, SOFTMAX_FLAG_FAST, which keeps it up to an ulp);
 *  - gradient ops: elements excluded by `where` or `causal` get 0;
 *  - 1 and 2 threads give the same bits (inputs large enough to split).
 */
#include "fuzz_common.h"

enum { FUZZ_NDIM = 4, MAX_ELEMENTS = 1 << 17, MAX_REACH = 1 << 18, POOL = 64, SMALL_ELEMENTS = 2048, BIG_ONE_IN = 16 };
enum { SRC, GRAD, DST, MASK, WHERE, OPERANDS };

/* A pool entry: a selector and raw bits, read as any type. */
typedef struct record {
    uint8_t selector;
    uint8_t small;
    uint64_t bits;
} record;

static void store_record(const record *rec, softmax_dtype type, void *at)
{
    const uint8_t s = rec->selector;
    switch (type) {
    case SOFTMAX_DTYPE_F64: {
        double v = s < 64    ? special_value(s)
                   : s < 192 ? ((double)s - 128.0) / 8.0 + rec->small / 4096.0
                             : bits_to_f64(rec->bits);
        memcpy(at, &v, sizeof v);
        break;
    }
    case SOFTMAX_DTYPE_F32: {
        float v;
        if (s < 64) {
            const double d = special_value(s);
            v = isnan(d) ? (float)d : fabs(d) > FLT_MAX ? (d > 0 ? INFINITY : -INFINITY) : (float)d;
        } else if (s < 192) {
            v = (float)(((double)s - 128.0) / 8.0 + rec->small / 4096.0);
        } else {
            v = bits_to_f32((uint32_t)rec->bits);
        }
        memcpy(at, &v, sizeof v);
        break;
    }
    default: {
        static const uint16_t f16[] = {0x0000, 0x8000, 0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x7bff, 0x0400};
        static const uint16_t bf16[] = {0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x7f7f, 0x0080};
        uint16_t v;
        if (s < 64)
            v = (type == SOFTMAX_DTYPE_F16 ? f16 : bf16)[s % 10];
        else if (s < 192)
            v = (uint16_t)((type == SOFTMAX_DTYPE_F16 ? 0x3c00 : 0x3f80) + (s - 128) * 3 + (rec->small & 3));
        else
            v = (uint16_t)rec->bits;
        memcpy(at, &v, sizeof v);
        break;
    }
    }
}

typedef struct operand {
    int used;
    softmax_dtype type; /* for `where`: bytes */
    size_t esize;
    int64_t strides[SOFTMAX_MAX_NDIM];
    int strides_given;
    int64_t low, high; /* element offsets reached */
    uint8_t *buffer;   /* (high - low + 1) elements */
    size_t bytes;
    uint8_t *base; /* buffer - low * esize: element 0 */
} operand;

typedef struct fuzz_case {
    softmax_desc desc;
    int ndim, axis, head_axis;
    size_t shape[SOFTMAX_MAX_NDIM];
    size_t elements, n;
    int forward;
    softmax_dtype compute;
    operand ops[OPERANDS];
} fuzz_case;

static softmax_dtype decode_type(unsigned choice)
{
    /* 0 = "same as dtype", 1..4 the types, 5 an invalid value. */
    static const softmax_dtype types[8] = {
        0, SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16, (softmax_dtype)7, 0, 0};
    return types[choice & 7];
}

static int valid_type(softmax_dtype type)
{
    return dtype_bytes(type) != 0;
}

/* The element offsets that strides reach over the shape. */
static void reach(const fuzz_case *c, operand *o)
{
    o->low = o->high = 0;
    for (int d = 0; d < c->ndim; d++) {
        if (c->shape[d] == 0)
            continue;
        const int64_t span = o->strides[d] * (int64_t)(c->shape[d] - 1);
        if (span < 0)
            o->low += span;
        else
            o->high += span;
    }
}

/* Offset of element (line, j): lines enumerate the dimensions other than
 * the axis in row-major order. Also returns the line's query index (along
 * axis - 1) and head index (along head_axis). */
static int64_t line_offset(const fuzz_case *c, const int64_t *strides, size_t line, int64_t *query, int64_t *head)
{
    int64_t offset = 0;
    *query = 0;
    *head = 0;
    for (int d = c->ndim - 1; d >= 0; d--) {
        if (d == c->axis)
            continue;
        const size_t index = line % c->shape[d];
        line /= c->shape[d];
        offset += (int64_t)index * strides[d];
        if (d == c->axis - 1)
            *query = (int64_t)index;
        if (d == c->head_axis)
            *head = (int64_t)index;
    }
    return offset;
}

/* j <= query + offset without overflowing (query >= 0). */
static int causal_keeps(int64_t j, int64_t query, int64_t offset)
{
    return offset > INT64_MAX - query || j <= query + offset;
}

static const double *sort_keys;
static int by_key(const void *p, const void *q)
{
    const double a = sort_keys[*(const size_t *)p], b = sort_keys[*(const size_t *)q];
    return (a > b) - (a < b);
}

static void check_forward_line(const fuzz_case *c, size_t line, const uint8_t *dst_base)
{
    const softmax_desc *desc = &c->desc;
    const int log_op = desc->op == SOFTMAX_OP_LOG_SOFTMAX;
    const size_t n = c->n;
    static double x[128], y[128];
    static int kept[128];
    static size_t index[128];
    int64_t query = 0, head = 0, o[OPERANDS];
    for (int k = 0; k < OPERANDS; k++)
        o[k] = c->ops[k].used ? line_offset(c, c->ops[k].strides, line, &query, &head) : 0;
    int nan_line = 0, clean = isfinite(desc->scale), any_kept = 0;
    for (size_t j = 0; j < n; j++) {
        const int64_t at[OPERANDS] = {o[SRC] + (int64_t)j * c->ops[SRC].strides[c->axis], 0,
                                      o[DST] + (int64_t)j * c->ops[DST].strides[c->axis],
                                      o[MASK] + (int64_t)j * c->ops[MASK].strides[c->axis],
                                      o[WHERE] + (int64_t)j * c->ops[WHERE].strides[c->axis]};
        x[j] = load_as_double(c->ops[SRC].base, desc->dtype, at[SRC]);
        y[j] = load_as_double(dst_base, c->ops[DST].type, at[DST]);
        kept[j] = 1;
        if (c->ops[WHERE].used)
            kept[j] &= c->ops[WHERE].base[at[WHERE]] != 0;
        if (desc->causal)
            kept[j] &= causal_keeps((int64_t)j, query, desc->causal_offset);
        double bias = 0;
        if (c->ops[MASK].used) {
            bias = load_as_double(c->ops[MASK].base, c->ops[MASK].type, at[MASK]);
            kept[j] &= bias != -INFINITY;
        }
        if (!kept[j])
            continue;
        any_kept = 1;
        nan_line |= isnan(x[j]) || isnan(bias);
        clean &= isfinite(x[j]) && isfinite(bias) && fabs(x[j] * desc->scale) < 1e300 && fabs(bias) < 1e300;
    }
    if (nan_line) {
        for (size_t j = 0; j < n; j++)
            FUZZ_CHECK(!kept[j] || isnan(y[j]), "line %zu: NaN among the kept logits but %a at %zu", line, y[j], j);
        return;
    }
    if (!clean)
        return;
    const softmax_dtype dst_type = c->ops[DST].type;
    /* A dst type narrower than the computation type adds its rounding. */
    const int narrower_dst = type_epsilon(dst_type) > type_epsilon(c->compute);
    long double sum = 0;
    size_t count = 0;
    for (size_t j = 0; j < n; j++) {
        FUZZ_CHECK(!isnan(y[j]), "line %zu: NaN at %zu from finite kept logits (scale %a)", line, j, desc->scale);
        if (!kept[j]) {
            FUZZ_CHECK(log_op ? y[j] == -INFINITY : y[j] == 0, "line %zu: excluded element %zu gave %a", line, j, y[j]);
            continue;
        }
        if (log_op) {
            /* <= 0 up to the accuracy bound: 4 ulp of max(|y|, 1) */
            FUZZ_CHECK(y[j] <= 4 * type_epsilon(c->compute), "line %zu: log-probability %a > 0 at %zu", line, y[j], j);
            sum += expl((long double)y[j]);
        } else {
            FUZZ_CHECK(y[j] >= 0 && y[j] <= 1, "line %zu: probability %a outside [0, 1]", line, y[j]);
            sum += y[j];
        }
        index[count++] = j;
    }
    if (!any_kept)
        return;
    /* Outputs below the normal range may be flushed or sub-normal. */
    const double tiny = dst_type == SOFTMAX_DTYPE_F16                                      ? 0x1p-24
                        : dst_type == SOFTMAX_DTYPE_F64 && c->compute == SOFTMAX_DTYPE_F64 ? DBL_MIN
                                                                                           : FLT_MIN;
    const double bound = (4.0 * (double)n + 8.0) * type_epsilon(c->compute) +
                         (narrower_dst ? (log_op ? (double)n : 1.0) * type_epsilon(dst_type) : 0) + (double)n * tiny;
    FUZZ_CHECK(fabsl(sum - 1) <= bound, "line %zu of %zu: sums to 1 + %Lg (bound %g, scale %a)", line, n, sum - 1,
               bound, desc->scale);
    /* The fast mode keeps the order only up to an ulp (softmax.h). */
    if (c->ops[MASK].used || desc->max_bias > 0 || desc->scale == 0 || (desc->flags & SOFTMAX_FLAG_FAST))
        return;
    /* The weak order of x among the kept elements (reversed for scale < 0). */
    sort_keys = x;
    qsort(index, count, sizeof index[0], by_key);
    for (size_t k = 1; k < count; k++) {
        const size_t lo = index[k - 1], hi = index[k];
        if (x[lo] == x[hi])
            FUZZ_CHECK(y[lo] == y[hi], "line %zu: equal inputs %a give %a and %a", line, x[lo], y[lo], y[hi]);
        else if (desc->scale > 0)
            FUZZ_CHECK(y[lo] <= y[hi], "line %zu: x %a < %a but y %a > %a", line, x[lo], x[hi], y[lo], y[hi]);
        else
            FUZZ_CHECK(y[lo] >= y[hi], "line %zu: x %a < %a but y %a < %a (scale<0)", line, x[lo], x[hi], y[lo], y[hi]);
    }
}

static void check_gradient_line(const fuzz_case *c, size_t line, const uint8_t *dst_base)
{
    if (!c->ops[WHERE].used && !c->desc.causal)
        return;
    int64_t query, head;
    const int64_t dst_offset = line_offset(c, c->ops[DST].strides, line, &query, &head);
    const int64_t where_offset = c->ops[WHERE].used ? line_offset(c, c->ops[WHERE].strides, line, &query, &head) : 0;
    for (size_t j = 0; j < c->n; j++) {
        int kept = !c->desc.causal || causal_keeps((int64_t)j, query, c->desc.causal_offset);
        if (c->ops[WHERE].used)
            kept &= c->ops[WHERE].base[where_offset + (int64_t)j * c->ops[WHERE].strides[c->axis]] != 0;
        if (kept)
            continue;
        const double v =
            load_as_double(dst_base, c->ops[DST].type, dst_offset + (int64_t)j * c->ops[DST].strides[c->axis]);
        FUZZ_CHECK(v == 0, "line %zu: excluded element %zu has gradient %a", line, j, v);
    }
}

/* The dst elements of a successful call: distinct addresses, and nothing
 * written between them. */
static void check_dst_footprint(const fuzz_case *c, const uint8_t *dst_buffer)
{
    const operand *d = &c->ops[DST];
    uint8_t *hits = calloc(d->bytes ? d->bytes : 1, 1);
    const size_t lines = c->elements / c->n;
    for (size_t line = 0; line < lines; line++) {
        int64_t query, head;
        const int64_t offset = line_offset(c, d->strides, line, &query, &head);
        for (size_t j = 0; j < c->n; j++) {
            const int64_t element = offset + (int64_t)j * d->strides[c->axis] - d->low;
            FUZZ_CHECK(hits[element * (int64_t)d->esize] == 0, "success although dst strides map two elements to one");
            memset(hits + element * (int64_t)d->esize, 1, d->esize);
        }
    }
    for (size_t b = 0; b < d->bytes; b++)
        FUZZ_CHECK(hits[b] || dst_buffer[b] == FUZZ_SENTINEL, "a byte between dst elements was written");
    free(hits);
}

static int decode_case(fuzz_case *c, fuzz_reader *r, int *alias_mode, int64_t *alias_offset, int *null_operand)
{
    softmax_desc *desc = &c->desc;
    softmax_desc_init(desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 1);
    const uint8_t op_byte = take_u8(r), type_byte = take_u8(r), ndim_byte = take_u8(r), axis_byte = take_u8(r);
    desc->op = (op_byte & 0xf0) == 0xf0 ? (softmax_op)(op_byte & 1 ? 0 : 6) : (softmax_op)(1 + op_byte % 5);
    desc->dtype = decode_type(1 + (type_byte & 3));
    if ((type_byte & 0xe3) == 0xe3)
        desc->dtype = (softmax_dtype)0;
    desc->dst_dtype = decode_type(type_byte >> 2);
    desc->grad_dtype = decode_type(type_byte >> 5);
    desc->ndim = ndim_byte >= 0xf8 ? (ndim_byte & 1 ? 0 : SOFTMAX_MAX_NDIM + 1) : 1 + ndim_byte % FUZZ_NDIM;
    const int ndim = desc->ndim >= 1 && desc->ndim <= SOFTMAX_MAX_NDIM ? desc->ndim : 1;
    desc->axis = (int)(axis_byte % (2 * ndim + 2)) - ndim - 1;
    size_t elements = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t b = take_u8(r);
        desc->shape[d] = b & 0x80 ? (size_t)(b & 0x3f) + 1 : (size_t)(b % 6);
        elements *= desc->shape[d];
    }
    if (elements > MAX_ELEMENTS)
        return 0;
    /* Large tensors (where 2 threads split the work) are kept for about one
     * input in BIG_ONE_IN; the others are shrunk, halving the largest extent
     * until they are small. Otherwise libFuzzer's corpus fills with large
     * inputs (they add coverage) and most runs cost a thousand small ones. */
    if (elements > SMALL_ELEMENTS && !fuzz_input_is_rare(r->data, r->size, BIG_ONE_IN)) {
        while (elements > SMALL_ELEMENTS) {
            int largest = 0;
            for (int d = 1; d < ndim; d++)
                if (desc->shape[d] > desc->shape[largest])
                    largest = d;
            elements = elements / desc->shape[largest] * (desc->shape[largest] / 2);
            desc->shape[largest] /= 2;
        }
    }
    desc->scale = take_f64(r);
    const uint8_t f1 = take_u8(r), f2 = take_u8(r);
    *alias_mode = f2 & 3;
    *null_operand = (f2 & 8) ? 1 + (take_u8(r) % 4) : 0;
    if (f2 & 4) {
        /* Half of these ask for the fast mode (valid), the rest set a
         * reserved word or an undefined flag bit (invalid). */
        const uint8_t which = take_u8(r);
        const size_t reserved_count = sizeof desc->reserved / sizeof desc->reserved[0];
        if (which & 0x80)
            desc->flags = SOFTMAX_FLAG_FAST;
        else if (which % (reserved_count + 1) == reserved_count)
            desc->flags = SOFTMAX_FLAG_FAST | 2;
        else
            desc->reserved[which % (reserved_count + 1)] = 1;
    }
    desc->mask_dtype = decode_type(f2 >> 4);
    desc->causal = (f1 & 0x80) != 0;
    const uint8_t offset_byte = take_u8(r);
    /* Small offsets, and the extremes (where i + offset would overflow). */
    desc->causal_offset = offset_byte == 0x7f ? INT64_MAX : offset_byte == 0x80 ? INT64_MIN : (int8_t)offset_byte;
    if (f2 & 0x80) {
        static const double biases[] = {8.0, 0.5, 1.0, 16.0, NAN, -1.0, INFINITY, 0x1p-30, 1e10, 3.0};
        desc->max_bias = biases[take_u8(r) % 10];
        desc->head_axis = (int)(take_u8(r) % (2 * ndim + 2)) - ndim - 1;
    }
    c->ndim = ndim;
    c->axis = desc->axis < 0 ? desc->axis + ndim : desc->axis;
    c->head_axis = desc->head_axis < 0 ? desc->head_axis + ndim : desc->head_axis;
    c->elements = elements;
    memcpy(c->shape, desc->shape, sizeof c->shape);
    c->forward = desc->op == SOFTMAX_OP_SOFTMAX || desc->op == SOFTMAX_OP_LOG_SOFTMAX;

    const softmax_dtype dst_type = desc->dst_dtype ? desc->dst_dtype : desc->dtype;
    const softmax_dtype grad_type = desc->grad_dtype ? desc->grad_dtype : desc->dtype;
    const softmax_dtype types[OPERANDS] = {desc->dtype, grad_type, dst_type,
                                           desc->mask_dtype ? desc->mask_dtype : SOFTMAX_DTYPE_F32, 0};
    const int given[OPERANDS] = {f1 & 1, f1 & 2, f1 & 4, f1 & 16, f1 & 64};
    c->ops[SRC].used = c->ops[DST].used = 1;
    c->ops[GRAD].used = !c->forward;
    c->ops[MASK].used = (f1 & 8) != 0;
    c->ops[WHERE].used = (f1 & 32) != 0;
    for (int k = 0; k < OPERANDS; k++) {
        operand *o = &c->ops[k];
        o->type = types[k];
        o->esize = k == WHERE ? 1 : dtype_bytes(types[k]);
        if (o->esize == 0)
            o->esize = 4; /* invalid type: the call fails; the buffer only has to exist */
        int64_t step = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            o->strides[d] = step;
            step *= (int64_t)desc->shape[d];
        }
        o->strides_given = o->used && given[k];
        if (o->strides_given)
            for (int d = 0; d < ndim; d++)
                o->strides[d] = (int8_t)take_u8(r);
        reach(c, o);
        if (o->high - o->low + 1 > MAX_REACH)
            return 0;
    }
    if (*alias_mode == 1) /* dst exactly over src: the same strides */
        memcpy(c->ops[DST].strides, c->ops[SRC].strides, sizeof c->ops[DST].strides);
    if (*alias_mode == 2)
        memcpy(c->ops[DST].strides, c->ops[GRAD].strides, sizeof c->ops[DST].strides);
    if (*alias_mode != 0) {
        c->ops[DST].strides_given = 1;
        reach(c, &c->ops[DST]);
    }
    *alias_offset = *alias_mode == 3 ? (int8_t)take_u8(r) : 0;
    if (*alias_mode != 0) {
        /* An aliased dst must lie inside its host's buffer (else the harness,
         * not the library, would write out of bounds) and be aligned for its
         * type (a misaligned pointer is undefined behaviour in the caller). */
        const operand *host = &c->ops[*alias_mode == 2 && c->ops[GRAD].used ? GRAD : SRC];
        const operand *d = &c->ops[DST];
        const int64_t base = *alias_offset * (int64_t)host->esize;
        const int64_t begin = base + d->low * (int64_t)d->esize, end = base + (d->high + 1) * (int64_t)d->esize;
        const int inside = begin >= host->low * (int64_t)host->esize && end <= (host->high + 1) * (int64_t)host->esize;
        if (!inside || base % (int64_t)d->esize != 0 || (host->low * (int64_t)host->esize) % (int64_t)d->esize != 0)
            *alias_mode = 0;
    }
    const int axis_valid = desc->axis >= -ndim && desc->axis < ndim;
    c->n = elements && axis_valid ? desc->shape[c->axis] : 0;
    c->compute = desc->dtype == SOFTMAX_DTYPE_F64 || dst_type == SOFTMAX_DTYPE_F64 ||
                         (!c->forward && grad_type == SOFTMAX_DTYPE_F64)
                     ? SOFTMAX_DTYPE_F64
                     : SOFTMAX_DTYPE_F32;
    return 1;
}

/* Whatever else happens, these calls must fail. */
static int must_fail(const fuzz_case *c, int null_operand)
{
    const softmax_desc *desc = &c->desc;
    int fail = desc->op < 1 || desc->op > 5 || !valid_type(desc->dtype) || desc->ndim < 1 ||
               desc->ndim > SOFTMAX_MAX_NDIM || desc->axis < -desc->ndim || desc->axis >= desc->ndim ||
               isnan(desc->scale);
    for (size_t i = 0; i < sizeof desc->reserved / sizeof desc->reserved[0]; i++)
        fail |= desc->reserved[i] != 0;
    fail |= (desc->flags & ~(uint64_t)SOFTMAX_FLAG_FAST) != 0;
    if (fail || c->elements == 0)
        return fail;
    fail |= !valid_type(c->ops[DST].type) || (!c->forward && !valid_type(c->ops[GRAD].type));
    fail |= c->ops[MASK].used && !valid_type(c->ops[MASK].type);
    fail |= isnan(desc->max_bias) || desc->max_bias < 0 || isinf(desc->max_bias);
    fail |= desc->causal && c->axis == 0;
    fail |= desc->max_bias > 0 && (c->head_axis < 0 || c->head_axis >= c->ndim || c->head_axis == c->axis);
    fail |= null_operand != 0;
    return fail;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader reader = {data, size, 0};
    static fuzz_case c;
    memset(&c, 0, sizeof c);
    int alias_mode, null_operand;
    int64_t alias_offset;
    if (!decode_case(&c, &reader, &alias_mode, &alias_offset, &null_operand))
        return 0;
    record pool[POOL];
    const size_t pool_size = 1 + take_u8(&reader) % POOL;
    for (size_t k = 0; k < pool_size && k < POOL; k++) {
        pool[k].selector = take_u8(&reader);
        pool[k].small = take_u8(&reader);
        pool[k].bits = pool[k].selector >= 192 ? take_u64(&reader) : 0;
    }

    /* Buffers: inputs filled from the pool, dst with the sentinel. In alias
     * modes dst lives in the buffer of the input it overlaps. */
    for (int k = 0; k < OPERANDS; k++) {
        operand *o = &c.ops[k];
        if (!o->used || (k == DST && alias_mode != 0))
            continue;
        o->bytes = (size_t)(o->high - o->low + 1) * o->esize;
        o->buffer = malloc(o->bytes);
        o->base = o->buffer - o->low * (int64_t)o->esize;
        if (k == DST) {
            memset(o->buffer, FUZZ_SENTINEL, o->bytes);
            continue;
        }
        for (size_t e = 0; e < o->bytes / o->esize; e++) {
            if (k == WHERE)
                o->buffer[e] = (pool[(e + 3) % pool_size].selector & 3) != 0;
            else if (valid_type(o->type))
                store_record(&pool[(e + (size_t)k) % pool_size], o->type, o->buffer + e * o->esize);
            else
                memset(o->buffer + e * o->esize, 0, o->esize);
        }
    }
    operand *dst = &c.ops[DST];
    if (alias_mode != 0) {
        const operand *host = &c.ops[alias_mode == 2 && c.ops[GRAD].used ? GRAD : SRC];
        dst->base = host->base + alias_offset * (int64_t)host->esize;
    }
    softmax_desc *desc = &c.desc;
    desc->src_strides = c.ops[SRC].strides_given ? c.ops[SRC].strides : NULL;
    desc->grad_strides = c.ops[GRAD].strides_given ? c.ops[GRAD].strides : NULL;
    desc->dst_strides = dst->strides_given ? dst->strides : NULL;
    desc->mask = c.ops[MASK].used ? c.ops[MASK].base : NULL;
    desc->mask_strides = c.ops[MASK].strides_given ? c.ops[MASK].strides : NULL;
    desc->where = c.ops[WHERE].used ? c.ops[WHERE].base : NULL;
    desc->where_strides = c.ops[WHERE].strides_given ? c.ops[WHERE].strides : NULL;

    /* Copies of every input buffer: failed calls must leave them, and the
     * aliased run is compared with a separate one. */
    uint8_t *copies[OPERANDS] = {0};
    for (int k = 0; k < OPERANDS; k++) {
        if (k == DST || c.ops[k].buffer == NULL)
            continue;
        copies[k] = malloc(c.ops[k].bytes);
        memcpy(copies[k], c.ops[k].buffer, c.ops[k].bytes);
    }
    const void *src = null_operand == 1 ? NULL : c.ops[SRC].base;
    const void *grad = null_operand == 2 && !c.forward ? NULL : c.ops[GRAD].base;
    void *dst_pointer = null_operand == 3 ? NULL : dst->base;
    if (null_operand == 4 && c.ops[MASK].used)
        desc->mask = NULL, desc->mask_strides = NULL, c.ops[MASK].used = 0; /* without a mask: a valid call */
    if (null_operand == 4 || (null_operand == 2 && c.forward))
        null_operand = 0;
    if (null_operand != 0 && c.elements == 0)
        null_operand = 0;

    softmax_set_num_threads(1);
    const int status = softmax_execute(desc, src, grad, dst_pointer);
    if (must_fail(&c, null_operand))
        FUZZ_CHECK(status != SOFTMAX_OK, "an invalid descriptor (op %d dtype %d ndim %d axis %d) succeeded", desc->op,
                   desc->dtype, desc->ndim, desc->axis);
    if (status != SOFTMAX_OK) {
        check_error_message("softmax_execute", status);
        for (int k = 0; k < OPERANDS; k++)
            if (copies[k] != NULL)
                FUZZ_CHECK(memcmp(copies[k], c.ops[k].buffer, c.ops[k].bytes) == 0,
                           "a failed call (%d) changed operand %d", status, k);
        if (alias_mode == 0)
            FUZZ_CHECK(bytes_are_sentinel(dst->buffer, dst->bytes), "a failed call (%d) wrote to dst", status);
        goto done;
    }
    FUZZ_CHECK(softmax_last_error()[0] == '\0', "success with a non-empty softmax_last_error()");
    if (c.elements == 0) {
        if (alias_mode == 0)
            FUZZ_CHECK(bytes_are_sentinel(dst->buffer, dst->bytes), "an empty call wrote to dst");
        goto done;
    }
    if (alias_mode != 0) {
        /* The same call on separate buffers, from the saved inputs, must give
         * the same bits at every dst element. */
        uint8_t *separate_dst = malloc((size_t)(dst->high - dst->low + 1) * dst->esize);
        uint8_t *inputs[OPERANDS] = {0};
        for (int k = 0; k < OPERANDS; k++)
            inputs[k] = copies[k] ? copies[k] - c.ops[k].low * (int64_t)c.ops[k].esize : NULL;
        softmax_desc separate = *desc;
        if (separate.mask)
            separate.mask = inputs[MASK];
        if (separate.where)
            separate.where = inputs[WHERE];
        uint8_t *separate_base = separate_dst - dst->low * (int64_t)dst->esize;
        FUZZ_CHECK(softmax_execute(&separate, inputs[SRC], inputs[GRAD], separate_base) == SOFTMAX_OK,
                   "the aliased call succeeded, the separate one failed");
        const size_t lines = c.elements / c.n;
        for (size_t line = 0; line < lines; line++) {
            int64_t query, head;
            const int64_t offset = line_offset(&c, dst->strides, line, &query, &head);
            for (size_t j = 0; j < c.n; j++) {
                const int64_t at = (offset + (int64_t)j * dst->strides[c.axis]) * (int64_t)dst->esize;
                FUZZ_CHECK(memcmp(dst->base + at, separate_base + at, dst->esize) == 0,
                           "aliased dst (mode %d) differs from a separate one at line %zu, %zu", alias_mode, line, j);
            }
        }
        free(separate_dst);
        goto done;
    }
    for (int k = 0; k < OPERANDS; k++)
        if (copies[k] != NULL)
            FUZZ_CHECK(memcmp(copies[k], c.ops[k].buffer, c.ops[k].bytes) == 0, "a call changed input operand %d", k);
    check_dst_footprint(&c, dst->buffer);
    const size_t lines = c.elements / c.n;
    if (c.n <= 128) {
        for (size_t line = 0; line < lines && line < 512; line++) {
            if (c.forward)
                check_forward_line(&c, line, dst->base);
            else
                check_gradient_line(&c, line, dst->base);
        }
    }
    if (c.elements >= 65536) {
        uint8_t *again = malloc(dst->bytes);
        memset(again, FUZZ_SENTINEL, dst->bytes);
        softmax_set_num_threads(2);
        const int status2 = softmax_execute(desc, src, grad, again - dst->low * (int64_t)dst->esize);
        softmax_set_num_threads(1);
        FUZZ_CHECK(status2 == SOFTMAX_OK && memcmp(again, dst->buffer, dst->bytes) == 0,
                   "2 threads give other bits than 1");
        free(again);
    }
done:
    for (int k = 0; k < OPERANDS; k++) {
        free(c.ops[k].buffer);
        free(copies[k]);
    }
    return 0;
}
