/*
 * lines.c -- gather and scatter: a strided line of any data type read into
 * the computation type (f32 or f64) and written back, converted, rounded
 * once; blocks of adjacent transposed lines gathered by the kernels'
 * transposes.
 */
#include <string.h>

#include "general/general_internal.h"

/* Gathers n elements spaced `stride` apart into floats (the f32 computation
 * type; f32, bf16 and f16 sources are exact in float). */
static void gather_f32(const softmax_kernels *kernels, float *out, const char *base, softmax_dtype type, int64_t offset,
                       int64_t stride, size_t n)
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
            kernels->widen_half(out, src, n, 1);
        else
            for (size_t i = 0; i < n; i++)
                out[i] = softmax_bf16_to_float(src[(int64_t)i * stride]);
        break;
    }
    case SOFTMAX_DTYPE_F16: {
        const uint16_t *src = (const uint16_t *)(const void *)base + offset;
        if (stride == 1)
            kernels->widen_half(out, src, n, 0);
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

void scatter_f32(const softmax_kernels *kernels, char *base, softmax_dtype type, int64_t offset, int64_t stride,
                 const float *in, size_t n)
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
            kernels->narrow_half(dst, in, n, 1);
        else
            for (size_t i = 0; i < n; i++)
                dst[(int64_t)i * stride] = softmax_float_to_bf16(in[i]);
        break;
    }
    default: {
        uint16_t *dst = (uint16_t *)(void *)base + offset;
        if (stride == 1)
            kernels->narrow_half(dst, in, n, 0);
        else
            for (size_t i = 0; i < n; i++)
                dst[(int64_t)i * stride] = softmax_float_to_f16(in[i]);
        break;
    }
    }
}

/* From a double result: one rounding to f32 / f64, and round-to-odd then
 * nearest-even for the half types so that the value is rounded correctly. */
void scatter_f64(char *base, softmax_dtype type, int64_t offset, int64_t stride, const double *in, size_t n)
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

void gather_line(const general_plan *plan, int operand, const line_position *where, void *out)
{
    const general_operand *o = &plan->operands[operand];
    const int64_t stride = o->strides[plan->axis];
    if (plan->compute == SOFTMAX_DTYPE_F32)
        gather_f32(plan->kernels, out, o->base, o->type, where->offset[operand], stride, plan->n);
    else
        gather_f64(out, o->base, o->type, where->offset[operand], stride, plan->n);
}

/* Lines strided along the axis but adjacent to each other (a transposed
 * view) in the computation type: the block is gathered by the kernels'
 * transpose_lines, so memory is read in order. False for other layouts. */
bool gather_transposed(const general_plan *plan, int operand, const line_position *positions, size_t line_count,
                       char *rows)
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
    plan->kernels->transpose_lines(first, stride, line_count, n, rows);
    return true;
}
