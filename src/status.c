/*
 * status.c -- status names and the per-thread detailed error message.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "internal.h"

/* One message per thread: calls from different threads never see each
 * other's errors. */
static _Thread_local char last_error_message[256];

/* How many threads hold a non-empty message. Every call clears the calling
 * thread's message first; while this count is 0 (always, in a process
 * whose calls all succeed) there is nothing to clear and the thread-local
 * slot is not touched at all: the library is a shared object, in which
 * reaching that slot is a call to __tls_get_addr, dearer than this load.
 * Relaxed order is enough: every change is a read-modify-write, so the
 * count is the sum of the threads' contributions at every point of its one
 * modification order, and a thread's own loads never see a value older
 * than its own last change (coherence). A thread whose message is set has
 * contributed 1 and so never reads 0. A thread that ends with a message
 * set leaves the count above 0: the later calls then clear their slots as
 * before, correct and no slower than without the count. */
static atomic_size_t threads_with_message;

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
    if (atomic_load_explicit(&threads_with_message, memory_order_relaxed) == 0)
        return;
    char *message = last_error_message;
    if (message[0] != '\0') {
        message[0] = '\0';
        atomic_fetch_sub_explicit(&threads_with_message, 1, memory_order_relaxed);
    }
}

int softmax_fail(int status, const char *format, ...)
{
    char *message = last_error_message;
    const bool had_message = message[0] != '\0';
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof last_error_message, format, args);
    va_end(args);
    const bool has_message = message[0] != '\0';
    if (has_message && !had_message)
        atomic_fetch_add_explicit(&threads_with_message, 1, memory_order_relaxed);
    else if (had_message && !has_message)
        atomic_fetch_sub_explicit(&threads_with_message, 1, memory_order_relaxed);
    return status;
}

const char *softmax_version(void)
{
#define SOFTMAX_STRINGIFY_(x) #x
#define SOFTMAX_STRINGIFY(x) SOFTMAX_STRINGIFY_(x)
    return SOFTMAX_STRINGIFY(SOFTMAX_VERSION_MAJOR) "." SOFTMAX_STRINGIFY(SOFTMAX_VERSION_MINOR) "." SOFTMAX_STRINGIFY(
        SOFTMAX_VERSION_PATCH);
}
