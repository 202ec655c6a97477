/*
 * convert.c -- conversions between the data types, exact in software.
 *
 * bf16 is the high half of a binary32; f16 is IEEE binary16. Narrowing
 * rounds to nearest even, keeps NaN a (quiet) NaN and overflows to inf;
 * f16 sub-normals are produced and read exactly. These scalar versions are
 * the definition; the SIMD paths (src/kernels/) must agree bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

static uint32_t bits_of_float(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static float float_of_bits(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

float softmax_bf16_to_float(uint16_t half)
{
    return float_of_bits((uint32_t)half << 16);
}

uint16_t softmax_float_to_bf16(float value)
{
    uint32_t bits = bits_of_float(value);
    if ((bits & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and payload top, force quiet */
        return (uint16_t)((bits >> 16) | 0x0040u);
    /* Round to nearest even on the dropped 16 bits; a carry into the exponent
     * is exactly the correct rounding up (to inf on overflow). */
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

float softmax_f16_to_float(uint16_t half)
{
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    if (exponent == 0x1fu) /* inf or NaN (quiet bit set: NaN stays NaN) */
        return float_of_bits(sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0u));
    if (exponent == 0) { /* zero or sub-normal: mantissa * 2^-24, exact in float */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    return float_of_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t softmax_float_to_f16(float value)
{
    uint32_t bits = bits_of_float(value);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    if (magnitude >= 0x477ff000u) /* >= 65520 = the half-way point above the largest f16: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (magnitude < 0x38800000u) {
        /* Below the smallest normal f16 (2^-14): the result is a multiple of
         * 2^-24. Adding 0.5 (exponent 2^-1, ulp 2^-24) makes the hardware round the
         * value to that grid with nearest-even, exactly once. */
        float shifted = fabsf(value) + 0.5f;
        return (uint16_t)(sign | (uint16_t)(bits_of_float(shifted) - 0x3f000000u));
    }
    /* Normal: rebias the exponent and round the 13 dropped bits to nearest
     * even; a carry moves into the exponent (and to inf) correctly. */
    uint32_t rounding = 0xfffu + ((magnitude >> 13) & 1u);
    return (uint16_t)(sign | ((magnitude - 0x38000000u + rounding) >> 13));
}

static double load_as_double(const void *src, softmax_dtype type, size_t i)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32:
        return ((const float *)src)[i];
    case SOFTMAX_DTYPE_F64:
        return ((const double *)src)[i];
    case SOFTMAX_DTYPE_BF16:
        return softmax_bf16_to_float(((const uint16_t *)src)[i]);
    case SOFTMAX_DTYPE_F16:
    default:
        return softmax_f16_to_float(((const uint16_t *)src)[i]);
    }
}

static void store_from_double(void *dst, softmax_dtype type, size_t i, double value)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32:
        ((float *)dst)[i] = (float)value;
        break;
    case SOFTMAX_DTYPE_F64:
        ((double *)dst)[i] = value;
        break;
    case SOFTMAX_DTYPE_BF16:
        /* double -> float -> bf16 could round twice; a double that is not exactly
         * a float is nudged to odd in its last float bit ("round to odd"), which
         * makes the second rounding correct. */
        ((uint16_t *)dst)[i] = softmax_float_to_bf16(softmax_round_to_odd_float(value));
        break;
    case SOFTMAX_DTYPE_F16:
    default:
        ((uint16_t *)dst)[i] = softmax_float_to_f16(softmax_round_to_odd_float(value));
        break;
    }
}

float softmax_round_to_odd_float(double value)
{
    float nearest = (float)value;
    if ((double)nearest == value || isnan(value) || isinf(nearest))
        return nearest;
    /* Truncate toward zero, then set the last bit if anything was dropped. */
    float toward_zero = fabs((double)nearest) > fabs(value) ? nextafterf(nearest, 0.0f) : nearest;
    return float_of_bits(bits_of_float(toward_zero) | 1u);
}

size_t softmax_dtype_size(softmax_dtype type)
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

const char *softmax_dtype_name(softmax_dtype type)
{
    switch (type) {
    case SOFTMAX_DTYPE_F32:
        return "f32";
    case SOFTMAX_DTYPE_F64:
        return "f64";
    case SOFTMAX_DTYPE_BF16:
        return "bf16";
    case SOFTMAX_DTYPE_F16:
        return "f16";
    default:
        return "unknown";
    }
}

int softmax_convert(void *dst, softmax_dtype dst_dtype, const void *src, softmax_dtype src_dtype, size_t n)
{
    softmax_clear_error();
    size_t dst_size = softmax_dtype_size(dst_dtype), src_size = softmax_dtype_size(src_dtype);
    RETURN_ERROR_IF(dst_size == 0 || src_size == 0, SOFTMAX_E_INVALID_DTYPE,
                    "softmax_convert: unknown data type (dst %d, src %d)", (int)dst_dtype, (int)src_dtype);
    if (n == 0)
        return SOFTMAX_OK;
    RETURN_ERROR_IF(dst == NULL || src == NULL, SOFTMAX_E_NULL_POINTER, "softmax_convert: %s is NULL with n = %zu",
                    dst == NULL ? "dst" : "src", n);
    size_t largest = dst_size > src_size ? dst_size : src_size;
    RETURN_ERROR_IF(n > SIZE_MAX / largest, SOFTMAX_E_SIZE_OVERFLOW, "softmax_convert: n = %zu overflows the byte size",
                    n);
    const char *d = dst, *s = src;
    RETURN_ERROR_IF(d != s && d < s + n * src_size && s < d + n * dst_size, SOFTMAX_E_OVERLAP,
                    "softmax_convert: dst partially overlaps src");
    RETURN_ERROR_IF(d == s && dst_size != src_size, SOFTMAX_E_OVERLAP,
                    "softmax_convert: in place needs types of the same size");
    int status = SOFTMAX_OK;
    /* The active path's contiguous conversions: bit for bit the scalar
     * definitions above (the portable table holds those). */
    const softmax_kernels *f32 = softmax_dispatch(SOFTMAX_DTYPE_F32, "softmax_convert", &status);
    if (f32 == NULL)
        return status;
    if (src_dtype == SOFTMAX_DTYPE_F32 && (dst_dtype == SOFTMAX_DTYPE_BF16 || dst_dtype == SOFTMAX_DTYPE_F16)) {
        f32->narrow_half(dst, src, n, dst_dtype == SOFTMAX_DTYPE_BF16);
        return SOFTMAX_OK;
    }
    if (dst_dtype == SOFTMAX_DTYPE_F32 && (src_dtype == SOFTMAX_DTYPE_BF16 || src_dtype == SOFTMAX_DTYPE_F16)) {
        f32->widen_half(dst, src, n, src_dtype == SOFTMAX_DTYPE_BF16);
        return SOFTMAX_OK;
    }
    if (dst_dtype == src_dtype) {
        if (d != s)
            memcpy(dst, src, n * src_size);
        return SOFTMAX_OK;
    }
    /* Same size (bf16 <-> f16) in place is safe element by element. */
    for (size_t i = 0; i < n; i++)
        store_from_double(dst, dst_dtype, i, load_as_double(src, src_dtype, i));
    return SOFTMAX_OK;
}
