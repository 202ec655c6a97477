/*
 * options.c -- the command line of `softmax`: parsing, checking, --help.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] = "Usage: softmax [OPTION]... [FILE]...\n"
                                 "Softmax of every row of numbers in FILEs (or standard input): one row per\n"
                                 "line, numbers separated by spaces, tabs or commas; or of .npy arrays.\n"
                                 "\n"
                                 "Input\n"
                                 "  FILE                  text, or a .npy array (float16/32/64, either byte\n"
                                 "                        order, C order, any shape); '-' or nothing: standard\n"
                                 "                        input (text, or .npy recognised by its first bytes)\n"
                                 "      --header          the first line is a header (column names) to skip;\n"
                                 "                        without it a first line with no number in it is\n"
                                 "                        taken as a header\n"
                                 "  -d, --delimiter C     each C ends one field, as in cut -d (',', ';', '|',\n"
                                 "                        'tab'): empty fields count, blanks around C are\n"
                                 "                        padding; 'space': runs of blanks, tabs included,\n"
                                 "                        as in awk; default: blanks and commas\n"
                                 "  -c, --columns LIST    the fields holding the numbers, numbered from 1 as\n"
                                 "                        in cut -f (2-, 1,3, 2-5); the others are skipped\n"
                                 "      --keep-labels     ... or written before each row's results (text)\n"
                                 "      --max-line-length N  the longest line read, in bytes (suffix K, M,\n"
                                 "                        G; default 16M); memory stays under about\n"
                                 "                        5 x N + 8 MiB whatever the input's length\n"
                                 "      --require-input   no row of numbers is an error (default: no output,\n"
                                 "                        exit status 0)\n"
                                 "  -a, --axis K          the axis to normalize (default -1, the last: each\n"
                                 "                        row). Text is a matrix: --axis 0 normalizes columns\n"
                                 "                        (the whole input is then read before output)\n"
                                 "      --mask FILE       add FILE's numbers to the logits before softmax\n"
                                 "                        (-inf excludes an entry); one row (applied to every\n"
                                 "                        row) or as many rows as the input; text or .npy\n"
                                 "\n"
                                 "What to compute\n"
                                 "  -s, --scale S         softmax(S * x) (default 1; S < 0 gives softmin)\n"
                                 "  -t, --temperature T   softmax(x / T); repeat it or give a list (0.1,1,10)\n"
                                 "                        for one output block per temperature; T = 0 (or\n"
                                 "                        -0) is the greedy limit: the probability mass on\n"
                                 "                        the arg max, shared equally by tied maxima\n"
                                 "  -l, --log             log-softmax instead of softmax\n"
                                 "      --fast            the library's fast mode: f32 within 5 ulp instead\n"
                                 "                        of 3, order kept up to an ulp (f64: no effect)\n"
                                 "      --dtype f32|f64   computation type (default: f64 for text, the\n"
                                 "                        file's type for .npy: f16 computes in f32 and a\n"
                                 "                        .npy output is f16 again)\n"
                                 "  -j, --threads N       threads for large arrays (default: all cores)\n"
                                 "\n"
                                 "Sampling and row statistics (need the library's sampler)\n"
                                 "      --sample N        draw N indices from each row's distribution\n"
                                 "      --seed S          random seed for --sample, 0 to 2^64 - 1 (default 0)\n"
                                 "      --top-k K         sample among the K most probable entries only\n"
                                 "      --top-p P         ... among the smallest set with probability >= P\n"
                                 "      --min-p P         ... among entries with probability >= P * max\n"
                                 "      --counts          how often each index is drawn: one multinomial draw\n"
                                 "                        of N (fast for any N), not a tally of the indices\n"
                                 "                        printed without --counts\n"
                                 "      --entropy         print each row's entropy (nats)\n"
                                 "      --logsumexp       print each row's log-sum-exp of S * x / T\n"
                                 "      --argmax          print each row's index of the largest value\n"
                                 "                        (the statistics in the order given; under a CSV\n"
                                 "                        header, with a heading line naming them)\n"
                                 "\n"
                                 "Output\n"
                                 "  -o, --output FILE     write to FILE (a .npy array if FILE ends in .npy,\n"
                                 "                        else text), through a temporary file renamed over\n"
                                 "                        it when complete: never half-written; a symbolic\n"
                                 "                        link's target is written, an existing file keeps\n"
                                 "                        its mode, owner and hard links, and a file you may\n"
                                 "                        not write is refused\n"
                                 "  -p, --precision N     significant digits of text output (default 6)\n"
                                 "  -f, --format FMT      printf format of one number (e.g. %.4f, %10.3e)\n"
                                 "      --plot            draw each row as horizontal bars with the values\n"
                                 "                        (width: $COLUMNS, else the terminal, else 80)\n"
                                 "  -h, --help            this help\n"
                                 "  -V, --version         the version of the command and of libsoftmax\n"
                                 "\n"
                                 "Examples\n"
                                 "  echo 1 2 3 | softmax                       0.0900306 0.244728 0.665241\n"
                                 "  echo 1 2 3 | softmax --scale 0.5 --plot    bars of softmax(0.5 * x)\n"
                                 "  echo 2 1 3 5 4 | softmax -t 0.1,0.5,1,10 --plot   a temperature sweep\n"
                                 "  softmax --log scores.csv                   log-softmax of each CSV row\n"
                                 "  softmax -c 2- -d , names.csv               skip a label column\n"
                                 "  softmax logits.npy --axis 1 -o probs.npy   any axis of an array\n"
                                 "  echo 2 1 3 5 4 | softmax --sample 1000 --seed 1 --counts --plot\n"
                                 "\n"
                                 "Exit status: 0 success, 64 bad usage, 65 malformed input (the message names\n"
                                 "the file, line and column), 66 unreadable input, 69 option not available in\n"
                                 "this build, 70 library error, 71 system error, 73 cannot create the output,\n"
                                 "74 write error. See softmax(1).\n";

void cli_error(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fputs("softmax: ", stderr);
    vfprintf(stderr, format, arguments);
    fputc('\n', stderr);
    va_end(arguments);
}

static int usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fputs("softmax: ", stderr);
    vfprintf(stderr, format, arguments);
    fputs("\nTry 'softmax --help' for more information.\n", stderr);
    va_end(arguments);
    return CLI_EX_USAGE;
}

/* " (blanks are not part of a number)" if text has a blank, else "". */
static const char *blank_hint(const char *text)
{
    return strpbrk(text, " \t\n\v\f\r") != NULL ? " (blanks are not part of a number)" : "";
}

/* A number in an option is written as in the input text (cli_parse_double:
 * decimal, hexadecimal, inf, infinity), the whole argument: no blanks around
 * it (strtod alone would skip leading ones). NaN is refused, and so is a
 * number that is not zero but rounds to it (1e-400): 0 is a value of its own
 * here (a uniform scale, the greedy temperature, min-p off), and -1e-400 as
 * a temperature would be the arg min's limit, not -0's arg max. Beyond the
 * range is infinity, as in the input (1e999 = inf). */
static int parse_real(const char *option, const char *text, double *value)
{
    if (cli_parse_double(text, text + strlen(text), value) != 0 || isnan(*value)) {
        return usage_error("%s: expected a number, got '%s'%s", option, text, blank_hint(text));
    }
    if (*value == 0) {
        /* the digits before the exponent: any but 0 make a number that is not zero */
        const char *p = text + (*text == '-' || *text == '+');
        int hexadecimal = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
        p += hexadecimal ? 2 : 0;
        for (; *p != '\0' && !strchr(hexadecimal ? "pP" : "eE", *p); p++) {
            if (*p != '0' && *p != '.') {
                return usage_error("%s: '%s' is not 0 but smaller than the smallest double (4.9e-324), which would "
                                   "make it 0; write 0 if 0 is meant",
                                   option, text);
            }
        }
    }
    return 0;
}

/* An integer written in decimal digits, with a minus sign only where
 * negative values are allowed (--axis): no blanks, no plus sign, no other
 * base (strtoll alone would skip leading blanks and take "+2"). */
static int parse_integer(const char *option, const char *text, long long minimum, long long maximum, long long *value)
{
    const char *digits = text + (minimum < 0 && text[0] == '-');
    int well_formed = *digits != '\0' && strspn(digits, "0123456789") == strlen(digits);
    char *stop;
    errno = 0;
    *value = well_formed ? strtoll(text, &stop, 10) : 0;
    if (!well_formed || errno != 0 || *value < minimum || *value > maximum) {
        return usage_error("%s: expected an integer in [%lld, %lld], got '%s'%s", option, minimum, maximum, text,
                           blank_hint(text));
    }
    return 0;
}

/* A seed is any 64-bit unsigned integer, as softmax_sample and the Python
 * package take it (a run seeded 2^63 or above can be repeated here). */
static int parse_seed(const char *text, uint64_t *seed)
{
    char *stop;
    errno = 0;
    unsigned long long value = strtoull(text, &stop, 10);
    /* strtoull would take "-1" as 2^64 - 1, and leading blanks */
    if (!isdigit((unsigned char)text[0]) || *stop != '\0' || errno != 0 || value > UINT64_MAX) {
        return usage_error("--seed: expected an integer in [0, %llu], got '%s'%s", (unsigned long long)UINT64_MAX, text,
                           blank_hint(text));
    }
    *seed = (uint64_t)value;
    return 0;
}

static int parse_temperatures(const char *text, cli_options *options)
{
    if (*text == '\0') {
        return usage_error("--temperature: expected a number or a comma-separated list, got ''");
    }
    char *copy = strdup(text);
    if (copy == NULL) {
        return usage_error("out of memory");
    }
    int status = 0;
    /* Every comma separates two temperatures: an empty item ("1,,2", "1,")
     * is an error, not skipped (a list typed wrong is not silently shorter). */
    for (char *item = copy, *next; item != NULL && status == 0; item = next) {
        char *comma = strchr(item, ',');
        next = comma != NULL ? comma + 1 : NULL;
        if (comma != NULL) {
            *comma = '\0';
        }
        if (*item == '\0') {
            status = usage_error("--temperature: an empty item in the list '%s'", text);
            break;
        }
        double t;
        status = parse_real("--temperature", item, &t);
        if (status == 0 && options->n_temperatures == CLI_MAX_TEMPERATURES) {
            status = usage_error("--temperature: at most %d temperatures", CLI_MAX_TEMPERATURES);
        }
        if (status == 0) {
            /* -0 is the temperature 0 (greedy at the arg max), not a limit
             * from below */
            options->temperatures[options->n_temperatures++] = t == 0 ? 0.0 : t;
        }
    }
    free(copy);
    return status;
}

/* A --format must print exactly one double: one conversion among e f g a
 * (any case) with flags, width and precision, and no other conversion but
 * "%%" -- anything else would read arguments that are not there. */
static int check_format(const char *format)
{
    int conversions = 0;
    for (const char *p = format; *p; p++) {
        if (*p != '%') {
            continue;
        }
        p++;
        if (*p == '%') {
            continue;
        }
        while (*p && strchr("-+ #0'", *p)) {
            p++;
        }
        /* width and precision: up to 4 digits (printf fails past INT_MAX) */
        const char *digits = p;
        while (*p >= '0' && *p <= '9') {
            p++;
        }
        int too_wide = p - digits > 4;
        if (*p == '.') {
            p++;
            digits = p;
            while (*p >= '0' && *p <= '9') {
                p++;
            }
            too_wide |= p - digits > 4;
        }
        if (too_wide) {
            return usage_error("--format: '%s': width and precision go up to 9999", format);
        }
        if (*p == '\0' || !strchr("eEfFgGaA", *p)) {
            return usage_error("--format: '%s' is not a format for one number; expected one of %%e %%f %%g %%a "
                               "with optional flags, width and precision, e.g. %%.4f",
                               format);
        }
        conversions++;
    }
    if (conversions != 1) {
        return usage_error("--format: '%s' has %d conversions; expected exactly one, e.g. %%.4f", format, conversions);
    }
    return 0;
}

/* --delimiter: one character; "tab" / "\t" and "space" by name. A space
 * means runs of blanks (tabs too); anything else, a tab included, exactly
 * that character, each one ending one field. */
static int parse_delimiter(const char *text, cli_options *options)
{
    char delimiter = 0;
    if (strcmp(text, "tab") == 0 || strcmp(text, "\\t") == 0) {
        delimiter = '\t';
    } else if (strcmp(text, "space") == 0) {
        delimiter = ' ';
    } else if (strlen(text) == 1 && (text[0] == ' ' || text[0] == '\t' ||
                                     (text[0] > ' ' && text[0] < 0x7f && !strchr("0123456789+-.eE#", text[0])))) {
        delimiter = text[0];
    } else {
        return usage_error("--delimiter: expected one character that cannot be part of a number (',', ';', '|', "
                           "'tab', 'space'), got '%s'",
                           text);
    }
    options->delimiter = delimiter;
    return 0;
}

/* --columns LIST: fields numbered from 1, as cut -f: "2", "2-5", "3-",
 * "1,3,5-7". */
static int parse_columns(const char *text, cli_options *options)
{
    const char *p = text;
    options->n_columns = 0;
    for (;;) {
        char *stop;
        if (*p < '0' || *p > '9') {
            break;
        }
        errno = 0;
        unsigned long long first = strtoull(p, &stop, 10);
        unsigned long long last = first;
        p = stop;
        if (*p == '-') {
            p++;
            if (*p >= '0' && *p <= '9') {
                last = strtoull(p, &stop, 10);
                p = stop;
            } else {
                last = SIZE_MAX;
            }
        }
        if (errno != 0 || first == 0 || last < first || options->n_columns == CLI_MAX_COLUMN_RANGES) {
            break;
        }
        options->columns[options->n_columns].first = (size_t)first;
        options->columns[options->n_columns].last = (size_t)last;
        options->n_columns++;
        if (*p == '\0') {
            return 0;
        }
        if (*p != ',') {
            break;
        }
        p++;
    }
    return usage_error("--columns: expected fields numbered from 1 as in cut -f (2, 2-5, 3-, 1,3,5-7), got '%s'", text);
}

/* A byte count: decimal digits, then an optional K, M or G (powers of 1024,
 * either case). */
static int parse_size(const char *option, const char *text, size_t *value)
{
    size_t digits = strspn(text, "0123456789");
    char suffix = (char)toupper((unsigned char)text[digits]);
    unsigned shift = suffix == 'K' ? 10 : suffix == 'M' ? 20 : suffix == 'G' ? 30 : 0;
    int well_formed = digits > 0 && text[digits + (shift != 0)] == '\0';
    errno = 0;
    unsigned long long number = well_formed ? strtoull(text, NULL, 10) : 0;
    if (!well_formed || errno != 0 || number == 0 || number > (SIZE_MAX >> 1) >> shift) {
        return usage_error("%s: expected a positive size in bytes (suffix K, M or G allowed), got '%s'%s", option, text,
                           blank_hint(text));
    }
    *value = (size_t)(number << shift);
    return 0;
}

enum {
    OPT_MASK = 256,
    OPT_SAMPLE,
    OPT_SEED,
    OPT_TOP_K,
    OPT_TOP_P,
    OPT_MIN_P,
    OPT_COUNTS,
    OPT_ENTROPY,
    OPT_LOGSUMEXP,
    OPT_ARGMAX,
    OPT_DTYPE,
    OPT_PLOT,
    OPT_HEADER,
    OPT_FAST,
    OPT_MAX_LINE,
    OPT_REQUIRE_INPUT,
    OPT_KEEP_LABELS,
    OPT_LAST
};

static const struct option long_options[] = {{"scale", required_argument, NULL, 's'},
                                             {"temperature", required_argument, NULL, 't'},
                                             {"log", no_argument, NULL, 'l'},
                                             {"fast", no_argument, NULL, OPT_FAST},
                                             {"axis", required_argument, NULL, 'a'},
                                             {"mask", required_argument, NULL, OPT_MASK},
                                             {"sample", required_argument, NULL, OPT_SAMPLE},
                                             {"seed", required_argument, NULL, OPT_SEED},
                                             {"top-k", required_argument, NULL, OPT_TOP_K},
                                             {"top-p", required_argument, NULL, OPT_TOP_P},
                                             {"min-p", required_argument, NULL, OPT_MIN_P},
                                             {"counts", no_argument, NULL, OPT_COUNTS},
                                             {"entropy", no_argument, NULL, OPT_ENTROPY},
                                             {"logsumexp", no_argument, NULL, OPT_LOGSUMEXP},
                                             {"argmax", no_argument, NULL, OPT_ARGMAX},
                                             {"dtype", required_argument, NULL, OPT_DTYPE},
                                             {"threads", required_argument, NULL, 'j'},
                                             {"precision", required_argument, NULL, 'p'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"plot", no_argument, NULL, OPT_PLOT},
                                             {"header", no_argument, NULL, OPT_HEADER},
                                             {"delimiter", required_argument, NULL, 'd'},
                                             {"columns", required_argument, NULL, 'c'},
                                             {"max-line-length", required_argument, NULL, OPT_MAX_LINE},
                                             {"require-input", no_argument, NULL, OPT_REQUIRE_INPUT},
                                             {"keep-labels", no_argument, NULL, OPT_KEEP_LABELS},
                                             {"output", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};

/* One option; returns 0, or an exit code after reporting. */
static int apply_option(int code, const char *argument, cli_options *options)
{
    long long integer;
    int status = 0;
    switch (code) {
    case 's':
        return parse_real("--scale", argument, &options->scale);
    case 't':
        return parse_temperatures(argument, options);
    case 'l':
        options->log = 1;
        return 0;
    case OPT_FAST:
        options->fast = 1;
        return 0;
    case 'a':
        status = parse_integer("--axis", argument, -SOFTMAX_MAX_NDIM, SOFTMAX_MAX_NDIM - 1, &integer);
        options->axis = (int)integer;
        options->axis_given = 1;
        return status;
    case OPT_MASK:
        options->mask_path = argument;
        return 0;
    case OPT_SAMPLE:
        status = parse_integer("--sample", argument, 1, INT64_MAX, &integer);
        options->sample_count = integer;
        return status;
    case OPT_SEED:
        status = parse_seed(argument, &options->seed);
        options->seed_given = 1;
        return status;
    case OPT_TOP_K:
        status = parse_integer("--top-k", argument, 1, INT64_MAX, &integer);
        options->top_k = integer;
        return status;
    case OPT_TOP_P:
        status = parse_real("--top-p", argument, &options->top_p);
        if (status == 0 && !(options->top_p > 0 && options->top_p <= 1)) {
            return usage_error("--top-p: expected a probability in (0, 1], got '%s'", argument);
        }
        return status;
    case OPT_MIN_P:
        status = parse_real("--min-p", argument, &options->min_p);
        if (status == 0 && !(options->min_p >= 0 && options->min_p <= 1)) {
            return usage_error("--min-p: expected a probability in [0, 1], got '%s'", argument);
        }
        return status;
    case OPT_COUNTS:
        options->counts = 1;
        return 0;
    case OPT_ENTROPY:
        if (!options->entropy) {
            options->statistics[options->n_statistics++] = 'e';
        }
        options->entropy = 1;
        return 0;
    case OPT_LOGSUMEXP:
        if (!options->logsumexp) {
            options->statistics[options->n_statistics++] = 'l';
        }
        options->logsumexp = 1;
        return 0;
    case OPT_ARGMAX:
        if (!options->argmax) {
            options->statistics[options->n_statistics++] = 'a';
        }
        options->argmax = 1;
        return 0;
    case OPT_DTYPE:
        if (strcmp(argument, "f32") == 0 || strcmp(argument, "float32") == 0) {
            options->dtype = SOFTMAX_DTYPE_F32;
        } else if (strcmp(argument, "f64") == 0 || strcmp(argument, "float64") == 0) {
            options->dtype = SOFTMAX_DTYPE_F64;
        } else {
            return usage_error("--dtype: expected f32 or f64, got '%s'", argument);
        }
        return 0;
    case 'j':
        status = parse_integer("--threads", argument, 1, 1024, &integer);
        options->threads = (int)integer;
        return status;
    case 'p':
        status = parse_integer("--precision", argument, 1, 17, &integer);
        options->precision = (int)integer;
        return status;
    case 'f':
        options->format = argument;
        return check_format(argument);
    case OPT_PLOT:
        options->plot = 1;
        return 0;
    case OPT_HEADER:
        options->header = 1;
        return 0;
    case 'o':
        if (argument[0] == '\0') {
            return usage_error("-o: the output file name is empty");
        }
        options->output_path = argument;
        return 0;
    case 'd':
        return parse_delimiter(argument, options);
    case 'c':
        return parse_columns(argument, options);
    case OPT_MAX_LINE:
        return parse_size("--max-line-length", argument, &options->max_line);
    case OPT_REQUIRE_INPUT:
        options->require_input = 1;
        return 0;
    case OPT_KEEP_LABELS:
        options->keep_labels = 1;
        return 0;
    }
    return CLI_EX_USAGE;
}

/* Combinations that cannot work, said before any input is read. */
static int check_combinations(const cli_options *options)
{
    int sampling_only =
        options->top_k || options->top_p > 0 || options->min_p > 0 || options->counts || options->seed_given;
    if (sampling_only && options->sample_count == 0) {
        return usage_error("--seed, --top-k, --top-p, --min-p and --counts go with --sample N");
    }
    for (int i = 0; i < options->n_temperatures; i++) {
        if (options->temperatures[i] == 0 && options->scale == 0) {
            return usage_error("--temperature 0 with --scale 0: the scale S / T is undefined");
        }
        if (isinf(options->temperatures[i]) && isinf(options->scale)) {
            /* inf / inf: NaN, which the library refused (status 70, as if it had failed) */
            return usage_error("--temperature %s with --scale %s: the scale S / T is undefined",
                               options->temperatures[i] > 0 ? "inf" : "-inf", options->scale > 0 ? "inf" : "-inf");
        }
    }
    if (options->output_path != NULL && options->n_inputs > 1) {
        return usage_error("-o writes one result: give one input FILE with it");
    }
    int statistics = options->entropy || options->logsumexp || options->argmax;
    int draws = statistics || options->sample_count > 0;
    if (draws && options->log) {
        return usage_error("--log does not combine with --sample, --entropy, --logsumexp or --argmax");
    }
    if (statistics && options->sample_count > 0) {
        return usage_error("--sample and --entropy/--logsumexp/--argmax: one at a time");
    }
    if (options->keep_labels && options->n_columns == 0) {
        return usage_error("--keep-labels keeps the fields --columns leaves out: give --columns too");
    }
    if (options->keep_labels && options->output_path != NULL && cli_is_npy_path(options->output_path)) {
        return usage_error("--keep-labels writes text; -o %s writes a .npy array", options->output_path);
    }
    if (options->plot && options->format != NULL) {
        return usage_error("--plot prints its values with --precision, not --format");
    }
    if (options->plot && options->output_path != NULL && cli_is_npy_path(options->output_path)) {
        return usage_error("--plot draws text; -o %s writes a .npy array: one or the other", options->output_path);
    }
    if (statistics && options->plot) {
        return usage_error("--plot draws distributions and samples, not --entropy, --logsumexp or --argmax");
    }
    if (draws && options->mask_path != NULL) {
        return usage_error("--mask does not combine with --sample, --entropy, --logsumexp or --argmax yet: put -inf "
                           "in the logits instead");
    }
    if (draws && options->output_path != NULL) {
        size_t length = strlen(options->output_path);
        if (length >= 4 && strcmp(options->output_path + length - 4, ".npy") == 0) {
            return usage_error("-o .npy holds distributions; --sample and the row statistics write text");
        }
    }
    if (options->sample_count > 0) {
        for (int i = 0; i < options->n_temperatures; i++) {
            if (options->temperatures[i] < 0) {
                return usage_error("--sample: the temperature must be >= 0");
            }
        }
        if (options->scale < 0) {
            return usage_error("--sample: the scale must be >= 0 (the sampler has no softmin)");
        }
    }
    return 0;
}

/* "--scale" for 's' and for OPT_... codes. */
static const char *option_name(int code)
{
    static char name[48];
    for (const struct option *o = long_options; o->name != NULL; o++) {
        if (o->val == code) {
            snprintf(name, sizeof name, "--%s", o->name);
            return name;
        }
    }
    return "?";
}

static int takes_value(int code)
{
    for (const struct option *o = long_options; o->name != NULL; o++) {
        if (o->val == code) {
            return o->has_arg == required_argument;
        }
    }
    return 0;
}

/* --help and --version: a write error (a full disk, a closed pipe with
 * SIGPIPE ignored) is reported, not lost. */
static int finish_standard_output(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("standard output: write failed: %s", strerror(errno));
        return CLI_EX_IOERR;
    }
    return 0;
}

int cli_parse_options(int argc, char **argv, cli_options *options)
{
    memset(options, 0, sizeof *options);
    options->scale = 1.0;
    options->axis = -1;
    options->precision = 6;
    opterr = 0;
    unsigned char given[OPT_LAST] = {0};
    int code;
    int long_index;
    while ((code = getopt_long(argc, argv, ":s:t:la:j:p:f:o:d:c:hV", long_options, &long_index)) != -1) {
        if (code == 'h') {
            fputs(usage_text, stdout);
            return finish_standard_output();
        }
        if (code == 'V') {
            printf("softmax (libsoftmax) %s, code path %s\n", softmax_version(), softmax_isa_name());
            return finish_standard_output();
        }
        if (code == '?') {
            if (optopt != 0) {
                return usage_error("unknown option '-%c'", optopt);
            }
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (code == ':') {
            return usage_error("option '%s' needs an argument", argv[optind - 1]);
        }
        /* An option with a value given twice: which one was meant? (-t
         * adds temperatures; flags may repeat.) */
        if (takes_value(code) && code != 't' && code >= 0 && code < (int)sizeof given) {
            if (given[code]) {
                return usage_error("option %s given twice; give it once", option_name(code));
            }
            given[code] = 1;
        }
        int status = apply_option(code, optarg, options);
        if (status != 0) {
            return status;
        }
    }
    options->inputs = argv + optind;
    options->n_inputs = argc - optind;
    int status = check_combinations(options);
    return status != 0 ? status : -1;
}
