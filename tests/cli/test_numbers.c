/*
 * test_numbers -- the command's number scanner and formatter against the C
 * library: cli_parse_double/float must equal strtod/strtof (correct rounding)
 * and cli_format_g must equal printf's "%.<p>g", digit for digit, on random
 * and hand-picked values (ties, powers of ten, carries into a new digit).
 * Exit status 0 if every comparison agreed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static uint64_t state = 0x9E3779B97F4A7C15u;

static uint64_t next_random(void)
{
    /* xorshift64*: enough for test inputs, and the same on every run. */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Du;
}

static long failures;

static void check_format(double value, int precision)
{
    char expected[64];
    char got[64];
    snprintf(expected, sizeof expected, "%.*g", precision, value);
    if (isnan(value)) {
        strcpy(expected, "nan");
    } else if (isinf(value)) {
        strcpy(expected, value > 0 ? "inf" : "-inf");
    }
    size_t length = cli_format_g(got, value, precision);
    if (strcmp(expected, got) != 0 || length != strlen(expected)) {
        if (failures++ < 20) {
            fprintf(stderr, "format %.17g at precision %d: expected '%s', got '%s'\n", value, precision, expected, got);
        }
    }
}

static void check_parse(const char *text)
{
    double expected = strtod(text, NULL);
    float expected_float = strtof(text, NULL);
    double got;
    float got_float;
    const char *end = text + strlen(text);
    if (cli_parse_double(text, end, &got) != 0 || memcmp(&got, &expected, sizeof got) != 0) {
        if (failures++ < 20) {
            fprintf(stderr, "parse '%s': expected %.17g, got %.17g\n", text, expected, got);
        }
    }
    if (cli_parse_float(text, end, &got_float) != 0 || memcmp(&got_float, &expected_float, sizeof got_float) != 0) {
        if (failures++ < 20) {
            fprintf(stderr, "parse float '%s': expected %.9g, got %.9g\n", text, (double)expected_float,
                    (double)got_float);
        }
    }
}

static void check_rejected(const char *text)
{
    double got;
    float got_float;
    const char *end = text + strlen(text);
    if (cli_parse_double(text, end, &got) == 0 || cli_parse_float(text, end, &got_float) == 0) {
        if (failures++ < 20) {
            fprintf(stderr, "'%s' was accepted as a number\n", text);
        }
    }
}

int main(void)
{
    static const double special[] = {0.0,
                                     -0.0,
                                     1.0,
                                     0.5,
                                     0.25,
                                     0.125,
                                     1e-5,
                                     9.5,
                                     99.5,
                                     999999.5,
                                     0.0001,
                                     1e-4,
                                     9.9999995e-5,
                                     1e15,
                                     1e16,
                                     123456789012345678.0,
                                     0.0900306,
                                     0.244728,
                                     0.665241,
                                     9.99995e-01,
                                     4.53979e-05,
                                     1e-300,
                                     1e300,
                                     5e-324,
                                     2.2250738585072014e-308,
                                     1.7976931348623157e308,
                                     INFINITY,
                                     -INFINITY,
                                     NAN};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        for (int p = 1; p <= 17; p++) {
            check_format(special[i], p);
            check_format(-special[i], p);
        }
    }
    /* Random bit patterns (every magnitude) and random probabilities. */
    for (int i = 0; i < 300000; i++) {
        uint64_t bits = next_random();
        double value;
        memcpy(&value, &bits, sizeof value);
        check_format(value, 1 + i % 17);
        double probability = (double)(next_random() >> 11) * 0x1p-53;
        check_format(probability, 1 + i % 17);
        check_format(probability * 1e-6, 6);
        /* Short decimals: ties at the printed precision are common here. */
        double decimal = (double)(next_random() % 2000000) / 1000.0;
        check_format(decimal, 1 + i % 8);
    }
    /* Parsing: hand-picked cases, then random decimal strings of every shape. */
    static const char *const texts[] = {"0",
                                        "-0",
                                        "+1",
                                        "1.",
                                        ".5",
                                        "1e10",
                                        "1E-10",
                                        "3.14159",
                                        "-2.5e+3",
                                        "0.1",
                                        "0.30000000000000004",
                                        "123456789012345678901234567890",
                                        "1e-400",
                                        "1e400",
                                        "inf",
                                        "-Infinity",
                                        "nan",
                                        "0x1p-3",
                                        "9007199254740993",
                                        "4.35e-7",
                                        "2.2250738585072011e-308",
                                        "16777217",
                                        "1.00000005960464477539062",
                                        "3.4028235677973366e38",
                                        "7.006492321624085e-46",
                                        "0.000000000000000000000000000001"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        check_parse(texts[i]);
    }
    char text[64];
    for (int i = 0; i < 300000; i++) {
        int digits = 1 + (int)(next_random() % 20);
        int point = (int)(next_random() % (uint64_t)(digits + 1));
        int exponent = (int)(next_random() % 90) - 45;
        char *p = text;
        if (next_random() & 1) {
            *p++ = '-';
        }
        for (int d = 0; d < digits; d++) {
            if (d == point) {
                *p++ = '.';
            }
            *p++ = (char)('0' + next_random() % 10);
        }
        if (next_random() % 3 == 0) {
            p += sprintf(p, "e%d", exponent);
        }
        *p = '\0';
        check_parse(text);
        /* Values just around float midpoints: the double rounding trap. */
        float f = (float)((double)(next_random() >> 11) * 0x1p-40);
        double midpoint = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
        snprintf(text, sizeof text, "%.25g", midpoint);
        check_parse(text);
        snprintf(text, sizeof text, "%.17g", midpoint);
        check_parse(text);
    }
    static const char *const bad[] = {"",    "-",      "+",    ".",   "e5",  "1e", "1e+",
                                      "abc", "1.5abc", "1..2", "--1", "1-2", "0x", "nanx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        check_rejected(bad[i]);
    }
    /* A NUL inside a token (strtod would stop there and read "1"). */
    static const char with_nul[][6] = {"1\0x", "1e5\0", "0.5\0z", "inf\0"};
    for (size_t i = 0; i < sizeof with_nul / sizeof with_nul[0]; i++) {
        const char *token = with_nul[i];
        const char *end = token + strlen(token) + 2; /* past the NUL: the whole token */
        double got;
        float got_float;
        if (cli_parse_double(token, end, &got) == 0 || cli_parse_float(token, end, &got_float) == 0) {
            if (failures++ < 20) {
                fprintf(stderr, "'%s<NUL>...' was accepted as a number\n", token);
            }
        }
    }
    if (failures != 0) {
        fprintf(stderr, "test_numbers: %ld mismatches\n", failures);
        return 1;
    }
    printf("test_numbers: every value formatted and parsed as the C library does\n");
    return 0;
}
