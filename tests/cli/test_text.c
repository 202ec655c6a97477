/*
 * test_text -- the command's text reader (cli/text.c) on input that arrives
 * a few bytes at a time, as from a pipe or a slow producer:
 *
 *  - the work of finding and checking lines (NUL bytes, carriage returns,
 *    comments, the length limit) stays linear in the input, however the
 *    reads cut it: the reader counts the bytes it looks at
 *    (cli_text_summary.scanned), and a line of megabytes read 4 KiB at a
 *    time must not be looked at more than a few times. Rescanning the line
 *    still arriving at every read (the quadratic behaviour this guards
 *    against) looks at it hundreds of times. Counted, not timed;
 *  - the outcome (exit status and message; rows and values on success) is
 *    the same whatever the size of the reads: random lines of hostile
 *    bytes, read whole and read in random small pieces.
 * Exit status 0 if every check passed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../fuzz/fuzz_cli.h" /* cli_error keeping the last message, as for the fuzz targets */

static long failures;

#define CHECK(condition, ...)                                                                                          \
    do {                                                                                                               \
        if (!(condition)) {                                                                                            \
            if (failures++ < 20) {                                                                                     \
                fprintf(stderr, "test_text:%d: ", __LINE__);                                                           \
                fprintf(stderr, __VA_ARGS__);                                                                          \
                fprintf(stderr, "\n");                                                                                 \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

/* The input, handed out at most `piece` bytes per read (0: as much as asked). */
typedef struct source {
    const char *text;
    size_t length;
    size_t position;
    size_t piece;
    uint64_t reads;
    /* what the rows callback saw */
    uint64_t rows;
    double checksum;
    uint64_t random_state; /* random piece sizes from 1 to piece when non-zero */
} source;

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64*: the same inputs on every run */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Du;
}

static ssize_t piecewise_read(void *context, int fd, void *buffer, size_t size)
{
    (void)fd;
    source *s = context;
    size_t n = s->length - s->position;
    size_t piece = s->piece;
    if (piece != 0 && s->random_state != 0) {
        piece = 1 + (size_t)(next_random(&s->random_state) % piece);
    }
    n = piece != 0 && n > piece ? piece : n;
    n = n > size ? size : n;
    memcpy(buffer, s->text + s->position, n);
    s->position += n;
    s->reads++;
    return (ssize_t)n;
}

static int on_rows(void *context, void *values, size_t rows, size_t cols, uint64_t first_row, const uint64_t *lines,
                   const char *const *labels)
{
    (void)first_row;
    (void)labels;
    source *s = context;
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            s->checksum = s->checksum * 1.000001 + ((const double *)values)[i * cols + j] + (double)lines[i];
        }
    }
    s->rows += rows;
    return 0;
}

typedef struct outcome {
    int status;
    char message[512];
    uint64_t rows;
    double checksum;
    uint64_t scanned;
    uint64_t reads;
} outcome;

static outcome read_text(const char *text, size_t length, size_t piece, uint64_t seed, size_t max_line)
{
    source s = {text, length, 0, piece, 0, 0, 0.0, seed};
    cli_text_summary summary = {0, 0, 0};
    cli_text_callbacks callbacks = {.context = &s,
                                    .dtype = SOFTMAX_DTYPE_F64,
                                    .max_line = max_line,
                                    .summary = &summary,
                                    .rows = on_rows,
                                    .read = piecewise_read};
    last_message[0] = '\0';
    outcome o;
    o.status = cli_read_text(-1, "in", &callbacks);
    memcpy(o.message, last_message, sizeof o.message);
    o.rows = s.rows;
    o.checksum = s.checksum;
    o.scanned = summary.scanned;
    o.reads = s.reads;
    return o;
}

/* A long line read 4 KiB at a time: each byte looked at a few times, not
 * once per read. */
static void check_linear(const char *what, const char *text, size_t length, int expected_status)
{
    const size_t pieces[] = {4096, 65536, 0};
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        outcome o = read_text(text, length, pieces[k], 0, 0);
        CHECK(o.status == expected_status, "%s, read %zu bytes at a time: status %d (%s), expected %d", what, pieces[k],
              o.status, o.message, expected_status);
        /* searches for line feeds, the end of leading blanks, NUL bytes
         * and carriage returns: each byte at most four times */
        const uint64_t bound = 4 * (uint64_t)length + 64;
        CHECK(o.scanned <= bound,
              "%s (%zu bytes), read %zu bytes at a time (%llu reads): %llu bytes looked at, more than %llu", what,
              length, pieces[k], (unsigned long long)o.reads, (unsigned long long)o.scanned, (unsigned long long)bound);
    }
}

static char *repeated(const char *head, const char *unit, size_t units, const char *tail, size_t *length)
{
    size_t head_length = strlen(head), unit_length = strlen(unit), tail_length = strlen(tail);
    *length = head_length + units * unit_length + tail_length;
    char *text = malloc(*length + 1);
    if (text == NULL) {
        fprintf(stderr, "test_text: out of memory\n");
        exit(1);
    }
    memcpy(text, head, head_length);
    for (size_t i = 0; i < units; i++) {
        memcpy(text + head_length + i * unit_length, unit, unit_length);
    }
    memcpy(text + head_length + units * unit_length, tail, tail_length + 1);
    return text;
}

static void linear_work_on_long_lines(void)
{
    const size_t units = (size_t)1 << 20; /* lines of 1 to 4 MiB */
    static const struct {
        const char *what, *head, *unit, *tail;
        size_t times; /* units */
        int status;
    } cases[] = {
        {"a long row of numbers", "", "1 ", "2\n3 4\n", 1, 0},
        {"the same without a final line feed", "", "1 ", "2", 1, 0},
        {"a row of numbers after leading blanks", "", " \t", "5 6\n", 1, 0},
        {"a long comment", "# ", "x\r", "\n1 2\n", 1, 0},
        {"a comment after a byte order mark and blanks", "\xEF\xBB\xBF", "  ", "# c\n1\n", 1, 0},
        {"carriage returns followed by blanks only", "1", " \r", "\n", 1, 0},
        {"a carriage return then blanks then a number", "1\r", "  ", "2\n", 1, CLI_EX_DATAERR},
        {"a line past the limit of 16 MiB", "", "1 2 3 4 ", "5\n", 3, CLI_EX_DATAERR},
        {"many short lines", "", "1 2\n", "", 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t length;
        char *text = repeated(cases[i].head, cases[i].unit, units * cases[i].times, cases[i].tail, &length);
        check_linear(cases[i].what, text, length, cases[i].status);
        free(text);
    }
    /* a NUL byte far into a long line */
    size_t length;
    char *text = repeated("", "7,", units, "x\n", &length);
    text[length - 2] = '\0';
    check_linear("a NUL byte at the end of a long line", text, length, CLI_EX_DATAERR);
    outcome o = read_text(text, length, 4096, 0, 0);
    char expected[64];
    snprintf(expected, sizeof expected, "in:1:%zu: expected a number, found a NUL byte", length - 1);
    CHECK(strcmp(o.message, expected) == 0, "a NUL byte read in pieces: '%s', expected '%s'", o.message, expected);
    free(text);
}

/* Random lines of hostile bytes: the same outcome whether read whole or in
 * random pieces of 1 to 17 bytes. */
static void same_outcome_whatever_the_reads(void)
{
    static const char alphabet[] = {'1', '2', ' ', ' ', '\t', '\r', '\r',   '\n',   '\n',   '\n', '#',
                                    ',', '.', 'e', '-', 'x',  '\0', '\xEF', '\xBB', '\xBF', '\v'};
    uint64_t state = 0x9E3779B97F4A7C15u;
    char text[400];
    for (int trial = 0; trial < 200000; trial++) {
        size_t length = (size_t)(next_random(&state) % sizeof text);
        int style = (int)(next_random(&state) % 4);
        for (size_t i = 0; i < length; i++) {
            uint64_t pick = next_random(&state);
            /* mostly numbers and blanks, so that some inputs are valid */
            text[i] = style == 0 && pick % 8 != 0 ? "1 2,3\n"[pick % 6] : alphabet[(pick >> 8) % sizeof alphabet];
        }
        if (style == 1 && length >= 3) {
            memcpy(text, "\xEF\xBB\xBF", 3);
        }
        size_t max_line = next_random(&state) % 3 == 0 ? 1 + (size_t)(next_random(&state) % 40) : 0;
        outcome whole = read_text(text, length, 0, 0, max_line);
        CHECK(whole.reads <= 2, "trial %d: %llu reads of a short input", trial, (unsigned long long)whole.reads);
        uint64_t seed = next_random(&state) | 1;
        outcome pieces = read_text(text, length, 17, seed, max_line);
        /* rows before an error may have been handed on (streaming): only
         * a success's rows are compared */
        CHECK(whole.status == pieces.status && strcmp(whole.message, pieces.message) == 0 &&
                  (whole.status != 0 || (whole.rows == pieces.rows &&
                                         memcmp(&whole.checksum, &pieces.checksum, sizeof whole.checksum) == 0)),
              "trial %d (%zu bytes, max line %zu): read whole: %d '%s' %llu rows; in pieces: %d '%s' %llu rows", trial,
              length, max_line, whole.status, whole.message, (unsigned long long)whole.rows, pieces.status,
              pieces.message, (unsigned long long)pieces.rows);
        CHECK(pieces.scanned <= 4 * (uint64_t)length + 64, "trial %d: %llu bytes looked at for %zu", trial,
              (unsigned long long)pieces.scanned, length);
    }
}

int main(void)
{
    linear_work_on_long_lines();
    same_outcome_whatever_the_reads();
    if (failures > 0) {
        fprintf(stderr, "test_text: %ld failures\n", failures);
        return 1;
    }
    printf("test_text: ok\n");
    return 0;
}
