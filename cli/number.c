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
static int scan_decimal(const char *p, const char *end, double *value, const char **stop)
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
    *stop = p;
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
    /* A NUL inside the token would end strtod's string early: "1<NUL>x"
     * would read as 1. */
    if (length == 0 || length >= size || memchr(begin, '\0', length) != NULL) {
        return -1;
    }
    memcpy(copy, begin, length);
    copy[length] = '\0';
    return 0;
}

int cli_parse_double(const char *begin, const char *end, double *value)
{
    const char *stop = begin;
    int fast = scan_decimal(begin, end, value, &stop);
    if (fast == FAST_INVALID) {
        return -1;
    }
    if (fast == FAST_EXACT && stop == end) {
        return 0;
    }
    /* Any number of digits: strtod rounds them all correctly, as it rounds
     * an exponent too large to 1e999 = inf. */
    char small[512];
    size_t length = (size_t)(end - begin);
    char *copy = length < sizeof small ? small : malloc(length + 1);
    if (copy == NULL || copy_token(begin, end, copy, length + 1) != 0) {
        if (copy != small) {
            free(copy);
        }
        return -1;
    }
    char *slow_stop;
    *value = strtod(copy, &slow_stop);
    /* The whole token, not up to a NUL byte inside it ("2\0x" is no number). */
    int parsed = slow_stop == copy + length ? 0 : -1;
    if (copy != small) {
        free(copy);
    }
    return parsed;
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
    const char *stop = begin;
    int fast = scan_decimal(begin, end, &d, &stop);
    if (fast == FAST_INVALID) {
        return -1;
    }
    if (fast == FAST_EXACT && stop == end && double_to_float_is_exact_rounding(d)) {
        *value = (float)d;
        return 0;
    }
    char small[512];
    size_t length = (size_t)(end - begin);
    char *copy = length < sizeof small ? small : malloc(length + 1);
    if (copy == NULL || copy_token(begin, end, copy, length + 1) != 0) {
        if (copy != small) {
            free(copy);
        }
        return -1;
    }
    char *slow_stop;
    *value = strtof(copy, &slow_stop);
    int parsed = slow_stop == copy + length ? 0 : -1;
    if (copy != small) {
        free(copy);
    }
    return parsed;
}

int cli_scan_double(const char *begin, const char *end, double *value, const char **stop)
{
    return scan_decimal(begin, end, value, stop) == FAST_EXACT;
}

int cli_scan_float(const char *begin, const char *end, float *value, const char **stop)
{
    double d;
    if (scan_decimal(begin, end, &d, stop) == FAST_EXACT && double_to_float_is_exact_rounding(d)) {
        *value = (float)d;
        return 1;
    }
    return 0;
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

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* Writes the `count` decimal digits of `digits` (with leading zeros) at out,
 * two at a time. */
static void write_digits(char *out, uint64_t digits, int count)
{
    int i = count;
    if (digits <= UINT32_MAX) {
        /* Precision <= 9, the usual case: 32-bit division is cheaper. */
        uint32_t small = (uint32_t)digits;
        while (i >= 2) {
            uint32_t pair = small % 100;
            small /= 100;
            out[i - 2] = digit_pairs[2 * pair];
            out[i - 1] = digit_pairs[2 * pair + 1];
            i -= 2;
        }
        if (i == 1) {
            out[0] = (char)('0' + small % 10);
        }
        return;
    }
    while (i >= 2) {
        unsigned pair = (unsigned)(digits % 100);
        digits /= 100;
        out[i - 2] = digit_pairs[2 * pair];
        out[i - 1] = digit_pairs[2 * pair + 1];
        i -= 2;
    }
    if (i == 1) {
        out[0] = (char)('0' + digits % 10);
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
    /* Decimal exponent: magnitude is in [2^b, 2^(b+1)), so floor(log10) is
     * floor(b * log10(2)) or one more; 78913 / 2^18 is log10(2) to enough
     * digits for every double exponent. */
    uint64_t bits;
    memcpy(&bits, &magnitude, sizeof bits);
    int binary_exponent = (int)((bits >> 52) & 0x7ff) - 1023;
    int decimal_exponent = (binary_exponent * 78913) >> 18;
    double lower = exact_powers_of_ten[precision - 1];
    double upper = exact_powers_of_ten[precision];
    int shift = precision - 1 - decimal_exponent;
    if (shift > 22 || shift < -21) {
        return format_slow(out, value, precision);
    }
    double scaled = shift >= 0 ? magnitude * exact_powers_of_ten[shift] : magnitude / exact_powers_of_ten[-shift];
    if (scaled >= upper) {
        decimal_exponent++;
        shift--;
        scaled = shift >= 0 ? magnitude * exact_powers_of_ten[shift] : magnitude / exact_powers_of_ten[-shift];
    }
    if (scaled < lower || scaled >= upper) {
        return format_slow(out, value, precision);
    }
    /* `scaled` is within half an ulp of the exact product: if its fraction is
     * that close to one half, printf's rounding of the exact value could go
     * either way, so let printf decide. */
    uint64_t whole = (uint64_t)(int64_t)scaled; /* < 10^15: the signed conversion is one instruction */
    double fraction = scaled - (double)whole;
    uint64_t scaled_bits;
    memcpy(&scaled_bits, &scaled, sizeof scaled_bits);
    uint64_t ulp_bits = (scaled_bits & 0x7ff0000000000000u) - ((uint64_t)52 << 52);
    double ulp;
    memcpy(&ulp, &ulp_bits, sizeof ulp);
    if (fabs(fraction - 0.5) <= ulp) {
        return format_slow(out, value, precision);
    }
    uint64_t digits = whole + (fraction > 0.5);
    if (digits == (uint64_t)upper) {
        digits = (uint64_t)lower;
        decimal_exponent++;
    }

    /* The digits are written where they end up and moved byte by byte:
     * copying them from a scratch buffer with wide loads right after byte
     * stores stalls on store forwarding and doubled the cost. */
    char *p = out;
    if (value < 0) {
        *p++ = '-';
    }
    if (decimal_exponent < -4 || decimal_exponent >= precision) {
        /* d.ddddde-XX: digits at p + 1, the first moved before the point. */
        write_digits(p + 1, digits, precision);
        p[0] = p[1];
        p[1] = '.';
        char *last = p + precision; /* the last digit */
        while (last > p + 1 && *last == '0') {
            last--;
        }
        p = last == p + 1 ? p + 1 : last + 1; /* no point without a fraction */
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
        /* ddd.ddd: digits at p + 1, the integer part moved one to the left. */
        int integer_digits = decimal_exponent + 1;
        write_digits(p + 1, digits, precision);
        for (int i = 0; i < integer_digits; i++) {
            p[i] = p[i + 1];
        }
        p[integer_digits] = '.';
        char *last = p + precision; /* the last digit */
        while (last > p + integer_digits && *last == '0') {
            last--;
        }
        p = last == p + integer_digits ? last : last + 1;
    } else {
        /* 0.000ddd */
        /* "0.000" written whole, then kept up to the exponent's zeros: no
         * branch that depends on the value. */
        memcpy(p, "0.000", 5);
        p += 1 - decimal_exponent;
        write_digits(p, digits, precision);
        char *last = p + precision - 1;
        while (last > p && *last == '0') {
            last--;
        }
        p = last + 1;
    }
    *p = '\0';
    return (size_t)(p - out);
}

/* ------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at text (1 to 4), or 0 if the bytes
 * there are not one (overlong forms, surrogates and values past U+10FFFF are
 * not). Sets *code_point. */
size_t cli_utf8_sequence(const unsigned char *text, size_t length, uint32_t *code_point)
{
    if (length == 0) {
        return 0;
    }
    unsigned char lead = text[0];
    if (lead < 0x80) {
        *code_point = lead;
        return 1;
    }
    size_t n = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
    if (n == 0 || n > length || lead > 0xf4) {
        return 0;
    }
    uint32_t value = lead & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((text[i] & 0xc0) != 0x80) {
            return 0;
        }
        value = value << 6 | (text[i] & 0x3f);
    }
    static const uint32_t smallest[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (value < smallest[n] || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
        return 0;
    }
    *code_point = value;
    return n;
}

/* Characters that show nothing, or reorder the text around them: a byte
 * order mark, zero-width spaces and joiners, bidirectional marks, embeddings
 * and overrides (a quoted token could be shown reversed or cut), invisible
 * operators and tags. A message showing the token 'x' that is really
 * U+FEFF 'x' (a BOM in the middle of a stream) would say nothing useful. */
static int invisible_code_point(uint32_t c)
{
    return c == 0xad || c == 0x61c || c == 0x180e || (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
           (c >= 0x2060 && c <= 0x206f) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || c == 0xe0001 ||
           (c >= 0xe0020 && c <= 0xe007f);
}

size_t cli_quote(char *out, size_t size, const char *text, size_t length)
{
    /* Room kept for the closing quote, "..." and the NUL. */
    if (size < 8) {
        if (size > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    size_t limit = size - 5;
    size_t n = 0;
    out[n++] = '\'';
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;
    while (i < length) {
        char piece[24];
        size_t piece_length;
        uint32_t code_point = 0;
        size_t sequence = cli_utf8_sequence(bytes + i, length - i, &code_point);
        if (sequence > 1 && invisible_code_point(code_point)) {
            piece_length = (size_t)snprintf(piece, sizeof piece, code_point > 0xffff ? "\\U%08x" : "\\u%04x",
                                            (unsigned)code_point);
        } else if (sequence == 0 || code_point < 0x20 || code_point == 0x7f ||
                   (code_point >= 0x80 && code_point < 0xa0) || code_point == '\'' || code_point == '\\') {
            unsigned char byte = bytes[i];
            static const char named[] = "\a\b\t\n\v\f\r";
            static const char letters[] = "abtnvfr";
            const char *found = byte != 0 ? memchr(named, byte, sizeof named - 1) : NULL;
            if (sequence > 1) {
                /* a C1 control: every byte escaped */
                piece_length = 0;
                for (size_t k = 0; k < sequence; k++) {
                    piece_length +=
                        (size_t)snprintf(piece + piece_length, sizeof piece - piece_length, "\\x%02x", bytes[i + k]);
                    if (piece_length >= 4 * 2) {
                        break;
                    }
                }
            } else if (found != NULL) {
                piece[0] = '\\';
                piece[1] = letters[found - named];
                piece_length = 2;
            } else if (byte == '\'' || byte == '\\') {
                piece[0] = '\\';
                piece[1] = (char)byte;
                piece_length = 2;
            } else {
                piece_length = (size_t)snprintf(piece, sizeof piece, "\\x%02x", byte);
            }
            sequence = sequence > 1 ? sequence : 1;
        } else {
            memcpy(piece, bytes + i, sequence);
            piece_length = sequence;
        }
        if (n + piece_length > limit) {
            memcpy(out + n, "...'", 4);
            n += 4;
            out[n] = '\0';
            return n;
        }
        memcpy(out + n, piece, piece_length);
        n += piece_length;
        i += sequence;
    }
    out[n++] = '\'';
    out[n] = '\0';
    return n;
}
