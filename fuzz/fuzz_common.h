/*
 * fuzz_common.h -- what every fuzz target shares: a reader that turns the
 * fuzz input into sizes and hostile values, exact half-precision decoding
 * for the checks, and the failure report.
 *
 * The targets use only the public header: they check the library from the
 * outside, against the contract written at the top of softmax.h. A failed
 * check aborts, which libFuzzer and the replay runner both report as a crash
 * with the message printed first.
 */
#ifndef SOFTMAX_FUZZ_COMMON_H
#define SOFTMAX_FUZZ_COMMON_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "softmax.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(condition, ...)                                                                                     \
    do {                                                                                                               \
        if (!(condition)) {                                                                                            \
            fprintf(stderr, "%s:%d: contract violated: ", __FILE__, __LINE__);                                         \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Bytes that outputs are filled with before a call: a failed call must leave
 * them as they are, and gaps between strided elements must stay so too. */
#define FUZZ_SENTINEL 0xA5

typedef struct fuzz_reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
} fuzz_reader;

/* Past the end the reader yields zeros: every input decodes to something. */
static inline uint8_t take_u8(fuzz_reader *r)
{
    return r->pos < r->size ? r->data[r->pos++] : 0;
}

static inline uint16_t take_u16(fuzz_reader *r)
{
    uint16_t lo = take_u8(r);
    return (uint16_t)(lo | (uint16_t)take_u8(r) << 8);
}

static inline uint32_t take_u32(fuzz_reader *r)
{
    uint32_t lo = take_u16(r);
    return lo | (uint32_t)take_u16(r) << 16;
}

static inline uint64_t take_u64(fuzz_reader *r)
{
    uint64_t lo = take_u32(r);
    return lo | (uint64_t)take_u32(r) << 32;
}

static inline float bits_to_f32(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline double bits_to_f64(uint64_t bits)
{
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Values that break naive softmax code: signed zeros, infinities, NaN, the
 * edges of the normal and sub-normal ranges, exp's overflow and underflow
 * thresholds, and values whose differences are not representable. */
static inline double special_value(uint8_t selector)
{
    static const double table[] = {
        0.0,     -0.0,     1.0,     -1.0,       INFINITY,   -INFINITY, NAN,           -NAN,   FLT_MIN, 1e-45,   -1e-45,
        FLT_MAX, -FLT_MAX, DBL_MIN, 4.9e-324,   DBL_MAX,    -DBL_MAX,  88.72,         89.0,   -87.3,   -103.97, 709.78,
        -745.1,  1e30,     -1e30,   16777216.0, 16777217.0, 0.5,       0x1.fffffep-1, 1e-300, 65504.0, 3.0e38,
    };
    return table[selector % (sizeof table / sizeof table[0])];
}

/* One value for an f64 operand: a special value, a small number in a
 * narrow range (where ties and near-ties happen), or raw bits. */
static inline double take_f64(fuzz_reader *r)
{
    const uint8_t selector = take_u8(r);
    if (selector < 64)
        return special_value(selector);
    if (selector < 192)
        return ((double)selector - 128.0) / 8.0 + (double)take_u8(r) / 4096.0;
    return bits_to_f64(take_u64(r));
}

/* The same for f32: every result is an f32 value (no double-to-float
 * conversion out of range, which C leaves undefined). */
static inline float take_f32(fuzz_reader *r)
{
    const uint8_t selector = take_u8(r);
    if (selector < 64) {
        const double value = special_value(selector);
        if (isnan(value))
            return (float)value;
        if (fabs(value) > FLT_MAX)
            return value > 0 ? INFINITY : -INFINITY;
        return (float)value;
    }
    if (selector < 192)
        return (float)(((double)selector - 128.0) / 8.0 + (double)take_u8(r) / 4096.0);
    return bits_to_f32(take_u32(r));
}

/* A 16-bit pattern for bf16 or f16 operands: raw bits, or one of a few
 * patterns the raw bits rarely hit (infinities, NaN, the smallest
 * sub-normal, the largest finite value). */
static inline uint16_t take_half_bits(fuzz_reader *r, softmax_dtype type)
{
    static const uint16_t f16_special[] = {0x0000, 0x8000, 0x3c00, 0xbc00, 0x7c00, 0xfc00,
                                           0x7e00, 0x0001, 0x7bff, 0xfbff, 0x0400};
    static const uint16_t bf16_special[] = {0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f80, 0xff80,
                                            0x7fc0, 0x0001, 0x7f7f, 0xff7f, 0x0080};
    const uint8_t selector = take_u8(r);
    if (selector < 48) {
        const uint16_t *table = type == SOFTMAX_DTYPE_F16 ? f16_special : bf16_special;
        return table[selector % 11];
    }
    if (selector < 160) /* near 1: values that tie after rounding */
        return (uint16_t)((type == SOFTMAX_DTYPE_F16 ? 0x3c00 : 0x3f80) + (selector - 104) * 3);
    return take_u16(r);
}

static inline double bf16_to_double(uint16_t bits)
{
    return (double)bits_to_f32((uint32_t)bits << 16);
}

static inline double f16_to_double(uint16_t bits)
{
    const int sign = bits >> 15;
    const int exponent = (bits >> 10) & 0x1f;
    const int mantissa = bits & 0x3ff;
    double magnitude;
    if (exponent == 0x1f)
        magnitude = mantissa != 0 ? NAN : INFINITY;
    else if (exponent == 0)
        magnitude = ldexp((double)mantissa, -24);
    else
        magnitude = ldexp((double)(mantissa | 0x400), exponent - 25);
    return sign ? -magnitude : magnitude;
}

static inline size_t dtype_bytes(softmax_dtype type)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32:
        return 4;
    case SOFTMAX_DTYPE_F64:
        return 8;
    case SOFTMAX_DTYPE_BF16:
    case SOFTMAX_DTYPE_F16:
        return 2;
    default:
        return 0;
    }
}

/* The value of element `index` of a typed array, exactly, as a double. */
static inline double load_as_double(const void *base, softmax_dtype type, int64_t index)
{
    const char *at = (const char *)base + index * (int64_t)dtype_bytes(type);
    switch (type) {
    case SOFTMAX_DTYPE_F32: {
        float value;
        memcpy(&value, at, sizeof value);
        return value;
    }
    case SOFTMAX_DTYPE_F64: {
        double value;
        memcpy(&value, at, sizeof value);
        return value;
    }
    default: {
        uint16_t bits;
        memcpy(&bits, at, sizeof bits);
        return type == SOFTMAX_DTYPE_F16 ? f16_to_double(bits) : bf16_to_double(bits);
    }
    }
}

/* Unit roundoff of a computation type, and the half rounding of an output
 * type (0 when the output is the computation type). */
static inline double type_epsilon(softmax_dtype type)
{
    switch (type) {
    case SOFTMAX_DTYPE_F64:
        return DBL_EPSILON;
    case SOFTMAX_DTYPE_F32:
        return FLT_EPSILON;
    case SOFTMAX_DTYPE_BF16:
        return 0x1p-7;
    default:
        return 0x1p-10;
    }
}

/* Every failed call must explain itself. */
static inline void check_error_message(const char *call, int status)
{
    const char *message = softmax_last_error();
    FUZZ_CHECK(message != NULL && message[0] != '\0', "%s failed with %d but softmax_last_error() is empty", call,
               status);
    FUZZ_CHECK(strcmp(softmax_strerror(status), "unknown status") != 0, "%s returned an unknown status %d", call,
               status);
}

/* True for about one input in `one_in`, decided by a hash of the whole input.
 * The big (threaded) cases gate on it: a flag bit alone would make them
 * common, because libFuzzer keeps the big inputs for their extra coverage
 * and most mutants of a big input keep its flags, so a third of all runs
 * were big and each costs as much as a thousand small ones. Nearly every
 * mutation changes the hash, so mutants of a big input are mostly small. */
static inline int fuzz_input_is_rare(const uint8_t *data, size_t size, uint32_t one_in)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ data[i]) * 16777619u;
    return hash % one_in == 0;
}

static inline int bytes_are_sentinel(const void *buffer, size_t bytes)
{
    const uint8_t *p = buffer;
    for (size_t i = 0; i < bytes; i++)
        if (p[i] != FUZZ_SENTINEL)
            return 0;
    return 1;
}

#endif /* SOFTMAX_FUZZ_COMMON_H */
