/*
 * line_run.c -- calls the line kernel of an op; shared by every code path
 * (the SIMD kernels hand the rows the contract treats specially to the
 * reference lines).
 */
#include "internal.h"

void softmax_line_run(const softmax_line_kernels *lines, softmax_op op, const void *src, const void *grad, void *dst,
                      size_t n, ptrdiff_t stride, double scale)
{
    switch (op) {
    case SOFTMAX_OP_SOFTMAX:
        lines->softmax(src, stride, dst, stride, n, scale);
        break;
    case SOFTMAX_OP_LOG_SOFTMAX:
        lines->log_softmax(src, stride, dst, stride, n, scale);
        break;
    case SOFTMAX_OP_SOFTMAX_BACKWARD:
        lines->softmax_backward(src, stride, grad, stride, dst, stride, n, scale);
        break;
    case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
        lines->log_softmax_backward(src, stride, grad, stride, dst, stride, n, scale);
        break;
    case SOFTMAX_OP_LOG_SOFTMAX_JVP:
        lines->log_softmax_jvp(src, stride, grad, stride, dst, stride, n, scale);
        break;
    }
}
