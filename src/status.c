/*
 * status.c -- status names and the per-thread detailed error message.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

/* One message per thread: calls from different threads never see each
 * other's errors. */
static _Thread_local char last_error_message[256];

const char *softmax_strerror(int status)
{
    switch (status) {
    case SOFTMAX_OK:
        return "success";
    case SOFTMAX_E_NULL_POINTER:
        return "a required pointer is NULL";
    case SOFTMAX_E_SIZE_OVERFLOW:
        return "the element count or byte size overflows size_t";
    case SOFTMAX_E_INVALID_SCALE:
        return "scale is NaN";
    case SOFTMAX_E_INVALID_AXIS:
        return "axis is outside [-ndim, ndim)";
    case SOFTMAX_E_OVERLAP:
        return "an output buffer partially overlaps an input buffer";
    case SOFTMAX_E_INVALID_DTYPE:
        return "unknown or unsupported data type";
    case SOFTMAX_E_INVALID_ARGUMENT:
        return "invalid argument";
    case SOFTMAX_E_INVALID_THREADS:
        return "the thread count must be >= 0";
    case SOFTMAX_E_OUT_OF_MEMORY:
        return "out of memory";
    case SOFTMAX_E_UNSUPPORTED:
        return "a field reserved for later versions is set";
    case SOFTMAX_E_ISA_UNAVAILABLE:
        return "the code path forced by SOFTMAX_ISA is not available on this CPU";
    case SOFTMAX_E_INVALID_STRIDE:
        return "the output strides map two elements to one address";
    case SOFTMAX_E_INVALID_MASK:
        return "invalid mask: type, strides or masking parameters";
    case SOFTMAX_E_INVALID_PARAMETER:
        return "a sampling parameter is out of range or NaN";
    case SOFTMAX_E_NO_FINITE_LOGIT:
        return "a row has no finite logit to sample from";
    default:
        return "unknown status";
    }
}

const char *softmax_last_error(void)
{
    return last_error_message;
}

void softmax_clear_error(void)
{
    last_error_message[0] = '\0';
}

int softmax_fail(int status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(last_error_message, sizeof last_error_message, format, args);
    va_end(args);
    return status;
}

const char *softmax_version(void)
{
#define SOFTMAX_STRINGIFY_(x) #x
#define SOFTMAX_STRINGIFY(x) SOFTMAX_STRINGIFY_(x)
    return SOFTMAX_STRINGIFY(SOFTMAX_VERSION_MAJOR) "." SOFTMAX_STRINGIFY(SOFTMAX_VERSION_MINOR) "." SOFTMAX_STRINGIFY(
        SOFTMAX_VERSION_PATCH);
}
