/*
 * text.c -- rows of numbers from text, as they arrive.
 *
 * The input is read in large blocks; every complete line in the block is
 * parsed straight into a batch of rows of the computation type. Rows of the
 * same length are handed on together (one library call for many short rows);
 * before each read that may block, whatever is pending is handed on and the
 * output flushed, so an interactive or slow producer sees each row's result
 * as soon as its line is complete. Memory is bounded by the batch and the
 * longest line, whatever the length of the input -- except in whole-matrix
 * mode (normalizing columns), which by nature needs every row first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Overridable so that the fuzz target (fuzz/fuzz_text.c) crosses block and
 * batch boundaries with inputs of a few hundred bytes. */
#ifndef CLI_TEXT_READ_SIZE
#define CLI_TEXT_READ_SIZE (1u << 20)
#endif
#ifndef CLI_TEXT_BATCH_ELEMENTS
#define CLI_TEXT_BATCH_ELEMENTS (1u << 16)
#endif
#define READ_SIZE CLI_TEXT_READ_SIZE
#define BATCH_ELEMENTS CLI_TEXT_BATCH_ELEMENTS

typedef struct reader {
    const cli_text_callbacks *callbacks;
    const char *name;
    size_t element_size;
    /* the batch: rows of `cols` values, then a row being parsed */
    unsigned char *batch;
    size_t batch_capacity; /* elements */
    size_t batch_rows;
    size_t batch_cols;
    size_t row_start; /* element index where the row being parsed starts */
    size_t used;      /* elements */
    uint64_t rows_handed;
    uint64_t *row_lines; /* the line of each row of the batch */
    size_t row_lines_capacity;
    uint64_t line;
    int seen_first_line;
    size_t first_cols;
    uint64_t first_cols_line;
} reader;

static int out_of_memory(void)
{
    cli_error("out of memory");
    return CLI_EX_OSERR;
}

static int hand_on(reader *r)
{
    if (r->batch_rows == 0) {
        return 0;
    }
    int status =
        r->callbacks->rows(r->callbacks->context, r->batch, r->batch_rows, r->batch_cols, r->rows_handed, r->row_lines);
    r->rows_handed += r->batch_rows;
    /* A row being parsed moves to the front. */
    size_t done = r->batch_rows * r->batch_cols;
    memmove(r->batch, r->batch + done * r->element_size, (r->used - done) * r->element_size);
    r->used -= done;
    r->row_start -= done;
    r->batch_rows = 0;
    return status;
}

/* Room for one more value. */
static int make_room(reader *r)
{
    if (r->used < r->batch_capacity) {
        return 0;
    }
    if (r->batch_rows > 0 && !r->callbacks->whole_matrix) {
        int status = hand_on(r);
        if (status != 0 || r->used < r->batch_capacity) {
            return status;
        }
    }
    size_t capacity = r->batch_capacity * 2;
    unsigned char *grown = realloc(r->batch, capacity * r->element_size);
    if (grown == NULL) {
        return out_of_memory();
    }
    r->batch = grown;
    r->batch_capacity = capacity;
    return 0;
}

/* [begin, begin + n) up to a NUL byte inside it, as a new string. What
 * strndup does, without reading past the range: the read block's last token
 * ends at the end of the buffer, and the sanitizers' strict string checks
 * (scripts/test.sh) read one byte past an unterminated range. */
static char *copy_up_to_nul(const char *begin, size_t n)
{
    const char *nul = memchr(begin, '\0', n);
    const size_t length = nul != NULL ? (size_t)(nul - begin) : n;
    char *copy = malloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, begin, length);
        copy[length] = '\0';
    }
    return copy;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int data_error(reader *r, const char *line_start, const char *at, const char *what, const char *token_end)
{
    size_t column = (size_t)(at - line_start) + 1;
    const char *nul = token_end != NULL ? memchr(at, '\0', (size_t)(token_end - at)) : NULL;
    if (nul != NULL) {
        /* %s would stop at it and show a token that looks valid */
        cli_error("%s:%llu:%zu: expected a number, found a NUL byte", r->name, (unsigned long long)r->line,
                  (size_t)(nul - line_start) + 1);
    } else if (token_end != NULL) {
        int length = (int)(token_end - at);
        const char *ellipsis = length > 40 ? "..." : "";
        cli_error("%s:%llu:%zu: expected a number, found '%.*s%s'%s", r->name, (unsigned long long)r->line, column,
                  length > 40 ? 40 : length, at, ellipsis, what);
    } else {
        cli_error("%s:%llu:%zu: %s", r->name, (unsigned long long)r->line, column, what);
    }
    return CLI_EX_DATAERR;
}

static const char *token_end_of(const char *p, const char *end)
{
    while (p < end && !is_blank(*p) && *p != ',') {
        p++;
    }
    return p;
}

/* A first line in which no field is a number is a header. */
static int looks_like_header(const char *p, const char *end)
{
    while (p < end) {
        while (p < end && (is_blank(*p) || *p == ',')) {
            p++;
        }
        if (p == end) {
            break;
        }
        const char *stop = token_end_of(p, end);
        double ignored;
        if (cli_parse_double(p, stop, &ignored) == 0) {
            return 0;
        }
        p = stop;
    }
    return 1;
}

static int keep_header(reader *r, const char *p, const char *end)
{
    if (r->callbacks->labels == NULL) {
        return 0;
    }
    size_t capacity = 16;
    size_t n = 0;
    char **labels = malloc(capacity * sizeof *labels);
    if (labels == NULL) {
        return out_of_memory();
    }
    while (p < end) {
        if (n == capacity) {
            char **grown = realloc(labels, 2 * capacity * sizeof *labels);
            if (grown == NULL) {
                return out_of_memory();
            }
            labels = grown;
            capacity *= 2;
        }
        while (p < end && (is_blank(*p) || *p == ',')) {
            p++;
        }
        if (p == end) {
            break;
        }
        const char *stop = token_end_of(p, end);
        const char *begin = p;
        if (stop - begin >= 2 && (*begin == '"' || *begin == '\'') && stop[-1] == *begin) {
            begin++;
            stop--;
        }
        labels[n] = copy_up_to_nul(begin, (size_t)(stop - begin));
        if (labels[n] == NULL) {
            return out_of_memory();
        }
        n++;
        p = token_end_of(p, end);
    }
    return r->callbacks->labels(r->callbacks->context, labels, n);
}

static int parse_line(reader *r, const char *line_start, const char *end)
{
    const char *p = line_start;
    if (r->line == 1 && end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; /* the byte order mark some spreadsheets put before a CSV file */
    }
    while (p < end && is_blank(*p)) {
        p++;
    }
    if (p == end || *p == '#') {
        return 0; /* blank lines and comments (our own "# temperature" lines) */
    }
    if (!r->seen_first_line) {
        r->seen_first_line = 1;
        if (r->callbacks->header || looks_like_header(p, end)) {
            return keep_header(r, p, end);
        }
    }
    r->row_start = r->used;
    size_t cols = 0;
    int single = r->callbacks->dtype == SOFTMAX_DTYPE_F32;
    for (;;) {
        int status = make_room(r);
        if (status != 0) {
            return status;
        }
        void *slot = r->batch + r->used * r->element_size;
        const char *stop;
        int fast = single ? cli_scan_float(p, end, slot, &stop) : cli_scan_double(p, end, slot, &stop);
        if (!fast || (stop < end && !is_blank(*stop) && *stop != ',')) {
            /* Not the common case: the whole token goes to strtod. */
            stop = token_end_of(p, end);
            if (stop == p) {
                return data_error(r, line_start, p, *p == ',' ? "expected a number before ','" : "expected a number",
                                  NULL);
            }
            int parsed = single ? cli_parse_float(p, stop, slot) : cli_parse_double(p, stop, slot);
            if (parsed != 0) {
                return data_error(r, line_start, p, "", stop);
            }
        }
        r->used++;
        cols++;
        p = stop;
        while (p < end && is_blank(*p)) {
            p++;
        }
        if (p < end && *p == ',') {
            const char *comma = p++;
            while (p < end && is_blank(*p)) {
                p++;
            }
            if (p == end) {
                return data_error(r, line_start, comma, "expected a number after ',' (the line ends with a comma)",
                                  NULL);
            }
        }
        if (p == end) {
            break;
        }
    }
    if (r->callbacks->equal_rows) {
        if (r->first_cols == 0) {
            r->first_cols = cols;
            r->first_cols_line = r->line;
        } else if (cols != r->first_cols) {
            cli_error("%s:%llu: ragged rows: this row has %zu values, line %llu has %zu; %s", r->name,
                      (unsigned long long)r->line, cols, (unsigned long long)r->first_cols_line, r->first_cols,
                      r->callbacks->equal_rows_reason);
            return CLI_EX_DATAERR;
        }
    }
    /* A row of another length closes the batch. */
    if (r->batch_rows > 0 && cols != r->batch_cols) {
        int status = hand_on(r);
        if (status != 0) {
            return status;
        }
    }
    if (r->batch_rows == r->row_lines_capacity) {
        size_t capacity = r->row_lines_capacity ? 2 * r->row_lines_capacity : 256;
        uint64_t *grown = realloc(r->row_lines, capacity * sizeof *grown);
        if (grown == NULL) {
            return out_of_memory();
        }
        r->row_lines = grown;
        r->row_lines_capacity = capacity;
    }
    r->row_lines[r->batch_rows] = r->line;
    r->batch_cols = cols;
    r->batch_rows++;
    if (!r->callbacks->whole_matrix && r->used >= BATCH_ELEMENTS) {
        return hand_on(r);
    }
    return 0;
}

int cli_read_text(int fd, const char *name, const cli_text_callbacks *callbacks)
{
    reader r;
    memset(&r, 0, sizeof r);
    r.callbacks = callbacks;
    r.name = name;
    r.element_size = cli_dtype_size(callbacks->dtype);
    r.batch_capacity = BATCH_ELEMENTS;
    r.batch = malloc(r.batch_capacity * r.element_size);
    size_t capacity = READ_SIZE;
    char *buffer = malloc(capacity + 1);
    if (r.batch == NULL || buffer == NULL) {
        free(r.batch);
        free(buffer);
        return out_of_memory();
    }
    size_t begin = 0;
    size_t end = 0;
    int at_eof = 0;
    int status = 0;
    r.line = 1;
    while (status == 0) {
        char *newline;
        while (status == 0 && (newline = memchr(buffer + begin, '\n', end - begin)) != NULL) {
            status = parse_line(&r, buffer + begin, newline);
            begin = (size_t)(newline - buffer) + 1;
            r.line++;
        }
        if (status != 0) {
            break;
        }
        if (at_eof) {
            if (begin < end) {
                status = parse_line(&r, buffer + begin, buffer + end);
            }
            break;
        }
        /* The next read may wait for the producer: hand on what is complete. */
        if (!callbacks->whole_matrix) {
            status = hand_on(&r);
            if (status == 0 && callbacks->idle != NULL) {
                status = callbacks->idle(callbacks->context);
            }
            if (status != 0) {
                break;
            }
        }
        memmove(buffer, buffer + begin, end - begin);
        end -= begin;
        begin = 0;
        if (end == capacity) {
            /* One line longer than the buffer. */
            char *grown = realloc(buffer, capacity * 2 + 1);
            if (grown == NULL) {
                status = out_of_memory();
                break;
            }
            buffer = grown;
            capacity *= 2;
        }
        ssize_t got = read(fd, buffer + end, capacity - end);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            cli_error("%s: read failed: %s", name, strerror(errno));
            status = CLI_EX_NOINPUT;
            break;
        }
        if (got == 0) {
            at_eof = 1;
        }
        end += (size_t)got;
    }
    if (status == 0) {
        status = hand_on(&r);
    }
    if (status == 0 && r.rows_handed == 0) {
        cli_error("%s: empty input: no row of numbers", name);
        status = CLI_EX_DATAERR;
    }
    free(buffer);
    free(r.batch);
    free(r.row_lines);
    return status;
}
