/*
 * number.c -- decimal text to binary and back, fast and correctly rounded.
 *
 * Parsing: a hand-written scanner handles the common case exactly (Clinger's
 * fast path: at most 19 significant digits whose integer fits in 53 bits and a
 * decimal exponent within +-22, where one IEEE multiplication or division by
 * an exactly representable power of ten is correctly rounded). Everything
 * else (long mantissas, large exponents, inf, nan, hexadecimal) goes to
 * strtod/strtof, which glibc rounds correctly. The C locale is never changed,
 * so the decimal point is always '.'.
 *
 * Formatting: %.<p>g by scaling with an exact power of ten; when the scaled
 * value is too close to a rounding tie for the single rounding of that
 * product to decide, snprintf does it. Both give printf's digits.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* 10^0 .. 10^22: every one is exactly representable as a double. */
static const double exact_powers_of_ten[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

enum { FAST_EXACT = 1, FAST_NO = 0, FAST_INVALID = -1 };

static inline int is_digit(char c)
{
    return (unsigned)(c - '0') < 10u;
}

/* The fast path. FAST_EXACT: *value is the correctly rounded double.
 * FAST_NO: the text may be a number the slow path has to convert.
 * FAST_INVALID: the text cannot be a number in any form strtod accepts. */
static int scan_decimal(const char *p, const char *end, double *value)
{
    int negative = 0;
    if (p < end && (*p == '-' || *p == '+')) {
        negative = *p == '-';
        p++;
    }
    uint64_t mantissa = 0;
    int significant = 0;
    int exponent = 0;
    int any_digit = 0;
    while (p < end && is_digit(*p)) {
        if (significant >= 19) {
            return FAST_NO;
        }
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        significant += mantissa != 0;
        any_digit = 1;
        p++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && is_digit(*p)) {
            if (significant >= 19) {
                return FAST_NO;
            }
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
            significant += mantissa != 0;
            exponent--;
            any_digit = 1;
            p++;
        }
    }
    if (!any_digit) {
        /* "inf", "nan", "infinity" and friends, or garbage: strtod decides. */
        return (p < end && (*p == 'i' || *p == 'I' || *p == 'n' || *p == 'N')) ? FAST_NO : FAST_INVALID;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exponent_negative = 0;
        if (p < end && (*p == '-' || *p == '+')) {
            exponent_negative = *p == '-';
            p++;
        }
        if (p == end || !is_digit(*p)) {
            return FAST_INVALID;
        }
        int written = 0;
        while (p < end && is_digit(*p)) {
            if (written < 100000) {
                written = written * 10 + (*p - '0');
            }
            p++;
        }
        exponent += exponent_negative ? -written : written;
    }
    if (p != end) {
        /* "0x1p3" is valid for strtod; "1.5abc" is not, and strtod will say so. */
        return FAST_NO;
    }
    if (mantissa == 0) {
        *value = negative ? -0.0 : 0.0;
        return FAST_EXACT;
    }
    if (mantissa > (UINT64_C(1) << 53) || exponent < -22 || exponent > 22) {
        return FAST_NO;
    }
    double magnitude = (double)mantissa;
    magnitude = exponent < 0 ? magnitude / exact_powers_of_ten[-exponent] : magnitude * exact_powers_of_ten[exponent];
    *value = negative ? -magnitude : magnitude;
    return FAST_EXACT;
}

/* strtod/strtof need a terminated string; tokens are short, so a stack copy. */
static int copy_token(const char *begin, const char *end, char *copy, size_t size)
{
    size_t length = (size_t)(end - begin);
    if (length == 0 || length >= size) {
        return -1;
    }
    memcpy(copy, begin, length);
    copy[length] = '\0';
    return 0;
}

int cli_parse_double(const char *begin, const char *end, double *value)
{
    int fast = scan_decimal(begin, end, value);
    if (fast != FAST_NO) {
        return fast == FAST_EXACT ? 0 : -1;
    }
    char copy[512];
    if (copy_token(begin, end, copy, sizeof copy) != 0) {
        return -1;
    }
    char *stop;
    *value = strtod(copy, &stop);
    return *stop == '\0' ? 0 : -1;
}

/* d is the correctly rounded double of some decimal x. Rounding d to float
 * gives the float nearest x unless d sits exactly halfway between two floats
 * (then x may be on either side): only that case needs strtof. */
static int double_to_float_is_exact_rounding(double d)
{
    float f = (float)d;
    if (isinf(f) || (double)f == d) {
        return !isinf(f) || isinf(d);
    }
    float other = d > (double)f ? nextafterf(f, INFINITY) : nextafterf(f, -INFINITY);
    if (isinf(other)) {
        return 0;
    }
    return ((double)f + (double)other) * 0.5 != d;
}

int cli_parse_float(const char *begin, const char *end, float *value)
{
    double d;
    int fast = scan_decimal(begin, end, &d);
    if (fast == FAST_INVALID) {
        return -1;
    }
    if (fast == FAST_EXACT && double_to_float_is_exact_rounding(d)) {
        *value = (float)d;
        return 0;
    }
    char copy[512];
    if (copy_token(begin, end, copy, sizeof copy) != 0) {
        return -1;
    }
    char *stop;
    *value = strtof(copy, &stop);
    return *stop == '\0' ? 0 : -1;
}

/* ------------------------------------------------------------------------- */

static size_t format_special(char *out, double value)
{
    if (isnan(value)) {
        memcpy(out, "nan", 4);
        return 3;
    }
    if (value > 0) {
        memcpy(out, "inf", 4);
        return 3;
    }
    memcpy(out, "-inf", 5);
    return 4;
}

static size_t format_slow(char *out, double value, int precision)
{
    int length = snprintf(out, 40, "%.*g", precision, value);
    return length < 0 ? 0 : (size_t)length;
}

/* Writes the `count` decimal digits of `digits` (with leading zeros) at out. */
static void write_digits(char *out, uint64_t digits, int count)
{
    for (int i = count - 1; i >= 0; i--) {
        out[i] = (char)('0' + digits % 10);
        digits /= 10;
    }
}

size_t cli_format_g(char *out, double value, int precision)
{
    if (!isfinite(value)) {
        return format_special(out, value);
    }
    if (precision <= 0) {
        precision = 1;
    }
    double magnitude = fabs(value);
    if (precision > 15 || magnitude == 0.0 || magnitude < 1e-290 || magnitude > 1e290) {
        return format_slow(out, value, precision);
    }
    /* Decimal exponent of the value, first estimated from the binary one,
     * then corrected once by the range check of the scaled value. */
    int binary_exponent;
    frexp(magnitude, &binary_exponent);
    int decimal_exponent = (int)floor((binary_exponent - 1) * 0.30102999566398120);
    double scaled = 0.0;
    uint64_t lower = (uint64_t)exact_powers_of_ten[precision - 1];
    uint64_t upper = (uint64_t)exact_powers_of_ten[precision];
    for (int attempt = 0; attempt < 3; attempt++) {
        int shift = precision - 1 - decimal_exponent;
        if (shift > 22 || shift < -22) {
            return format_slow(out, value, precision);
        }
        scaled = shift >= 0 ? magnitude * exact_powers_of_ten[shift] : magnitude / exact_powers_of_ten[-shift];
        if (scaled < (double)lower) {
            decimal_exponent--;
        } else if (scaled >= (double)upper) {
            decimal_exponent++;
        } else {
            break;
        }
    }
    if (scaled < (double)lower || scaled >= (double)upper) {
        return format_slow(out, value, precision);
    }
    /* `scaled` is within half an ulp of the exact product: if its fraction is
     * that close to one half, printf's rounding of the exact value could go
     * either way, so let printf decide. */
    double whole = floor(scaled);
    double fraction = scaled - whole;
    double ulp = nextafter(scaled, INFINITY) - scaled;
    if (fabs(fraction - 0.5) <= ulp) {
        return format_slow(out, value, precision);
    }
    uint64_t digits = (uint64_t)whole + (fraction > 0.5);
    if (digits == upper) {
        digits = lower;
        decimal_exponent++;
    } else if (digits < lower) {
        return format_slow(out, value, precision);
    }

    char *p = out;
    if (value < 0) {
        *p++ = '-';
    }
    char text[20];
    write_digits(text, digits, precision);
    int kept = precision; /* %g drops trailing zeros of the fraction */
    if (decimal_exponent < -4 || decimal_exponent >= precision) {
        while (kept > 1 && text[kept - 1] == '0') {
            kept--;
        }
        *p++ = text[0];
        if (kept > 1) {
            *p++ = '.';
            memcpy(p, text + 1, (size_t)(kept - 1));
            p += kept - 1;
        }
        int e = decimal_exponent;
        *p++ = 'e';
        *p++ = e < 0 ? '-' : '+';
        e = e < 0 ? -e : e;
        if (e >= 100) {
            *p++ = (char)('0' + e / 100);
        }
        *p++ = (char)('0' + (e / 10) % 10);
        *p++ = (char)('0' + e % 10);
    } else if (decimal_exponent >= 0) {
        int integer_digits = decimal_exponent + 1;
        while (kept > integer_digits && text[kept - 1] == '0') {
            kept--;
        }
        memcpy(p, text, (size_t)integer_digits);
        p += integer_digits;
        if (kept > integer_digits) {
            *p++ = '.';
            memcpy(p, text + integer_digits, (size_t)(kept - integer_digits));
            p += kept - integer_digits;
        }
    } else {
        while (kept > 1 && text[kept - 1] == '0') {
            kept--;
        }
        *p++ = '0';
        *p++ = '.';
        for (int i = -1; i > decimal_exponent; i--) {
            *p++ = '0';
        }
        memcpy(p, text, (size_t)kept);
        p += kept;
    }
    *p = '\0';
    return (size_t)(p - out);
}
