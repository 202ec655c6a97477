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
    size_t max_cols;
    /* --keep-labels: each batch row's label fields, NUL-terminated, in a pool */
    char *label_pool;
    size_t labels_used;
    size_t labels_capacity;
    size_t *label_offsets; /* per batch row (as many as row_lines) */
    char **label_pointers;
    char *header_text; /* the line taken as a header */
    size_t header_length;
    uint64_t header_line;
    /* check_line's progress through the line being read, kept across the
     * reads that bring it so that each byte is looked at once (rescanning a
     * line of 16 MiB arriving 64 KiB at a time from a pipe was quadratic) */
    size_t line_checked;    /* bytes of it checked for NUL bytes and carriage returns */
    size_t line_pending_cr; /* NO_CR, or a carriage return with only blanks after it so far */
    size_t line_lead;       /* its leading blanks (after a byte order mark) end here so far */
    int line_kind;          /* LINE_BLANK so far, LINE_COMMENT or LINE_DATA */
    uint64_t scanned;       /* bytes looked at by check_line and the search for line ends */
} reader;

#define NO_CR SIZE_MAX
enum { LINE_BLANK, LINE_COMMENT, LINE_DATA };

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
    const char *const *labels = NULL;
    if (r->callbacks->keep_labels) {
        /* The pool may have moved while it grew: pointers made now. */
        for (size_t i = 0; i < r->batch_rows; i++) {
            r->label_pointers[i] = r->label_pool + r->label_offsets[i];
        }
        labels = (const char *const *)r->label_pointers;
    }
    int status = r->callbacks->rows(r->callbacks->context, r->batch, r->batch_rows, r->batch_cols, r->rows_handed,
                                    r->row_lines, labels);
    r->labels_used = 0;
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
        /* quoted: a control character in the input never reaches the terminal */
        char shown[46];
        cli_quote(shown, sizeof shown, at, (size_t)(token_end - at));
        cli_error("%s:%llu:%zu: expected a number, found %s%s", r->name, (unsigned long long)r->line, column, shown,
                  what);
    } else {
        cli_error("%s:%llu:%zu: %s", r->name, (unsigned long long)r->line, column, what);
    }
    return CLI_EX_DATAERR;
}

/* A delimiter of its own (-d ',', -d tab): each one ends exactly one field,
 * as with cut -d, so that empty fields count in --columns. Without -d, and
 * with -d space, runs of blanks make one separator (as with awk). */
static int single_delimiter(const reader *r)
{
    return r->callbacks->delimiter != 0 && r->callbacks->delimiter != ' ';
}

/* Is c a field separator other than a run of blanks? */
static int is_delimiter(const reader *r, char c)
{
    char delimiter = r->callbacks->delimiter;
    return delimiter == 0 ? c == ',' : c == delimiter && single_delimiter(r);
}

/* Blanks that pad a field ("1 ,2", " 1 \t 2"): not a tab that delimits. */
static int is_padding(const reader *r, char c)
{
    return is_blank(c) && !is_delimiter(r, c);
}

/* The delimiter as messages show it: ',' or '\t'. */
static const char *shown_delimiter(char delimiter, char shown[3])
{
    if (delimiter == '\t') {
        return "\\t";
    }
    shown[0] = delimiter;
    shown[1] = '\0';
    return shown;
}

static const char *token_end_of(const reader *r, const char *p, const char *end)
{
    while (p < end && !is_blank(*p) && !is_delimiter(r, *p)) {
        p++;
    }
    return p;
}

/* The end of the field at p: up to the delimiter (blanks around it
 * trimmed) when it is not a blank, so that a field that is not a number may
 * hold blanks ("Ada Lovelace"); else a token up to a blank or a comma. */
static const char *field_end(const reader *r, const char *p, const char *end)
{
    char delimiter = r->callbacks->delimiter;
    if (!single_delimiter(r)) {
        return token_end_of(r, p, end);
    }
    const char *next = memchr(p, delimiter, (size_t)(end - p));
    const char *stop = next != NULL ? next : end;
    while (stop > p && is_blank(stop[-1])) {
        stop--;
    }
    return stop;
}

/* Field number `field` (from 1) is one of the numbers, per --columns. */
static int field_selected(const reader *r, size_t field)
{
    if (r->callbacks->columns == NULL) {
        return 1;
    }
    for (size_t i = 0; i < r->callbacks->n_columns; i++) {
        if (field >= r->callbacks->columns[i].first && field <= r->callbacks->columns[i].last) {
            return 1;
        }
    }
    return 0;
}

/* The highest field --columns names explicitly (a line must have it). */
static size_t highest_named_field(const reader *r)
{
    size_t highest = 0;
    for (size_t i = 0; i < r->callbacks->n_columns; i++) {
        const cli_column_range *range = &r->callbacks->columns[i];
        size_t named = range->last == SIZE_MAX ? range->first : range->last;
        highest = named > highest ? named : highest;
    }
    return highest;
}

/* Steps over the separator after a field: blanks, and the delimiter with
 * blanks around it. Returns 1 at the end of the line, 0 before the next
 * field (with a single delimiter, an empty last field at the end of the
 * line), or -1 after reporting an error. */
static int skip_separator(reader *r, const char *line_start, const char **at, const char *end)
{
    const char *p = *at;
    while (p < end && is_padding(r, *p)) {
        p++;
    }
    if (p == end) {
        *at = p;
        return 1;
    }
    char shown[3];
    if (single_delimiter(r) && !is_delimiter(r, *p)) {
        char message[96];
        snprintf(message, sizeof message, "expected the delimiter '%s' or the end of the line after a field",
                 shown_delimiter(r->callbacks->delimiter, shown));
        data_error(r, line_start, p, message, NULL);
        return -1;
    }
    if (is_delimiter(r, *p)) {
        const char *separator = p++;
        while (p < end && is_padding(r, *p)) {
            p++;
        }
        /* "1,2," is three fields to cut -d ','; the third is an error only
         * if it is selected. Without -d a trailing comma is a mistake. */
        if (p == end && !single_delimiter(r)) {
            char message[96];
            snprintf(message, sizeof message, "expected a number after '%s' (the line ends with it)",
                     shown_delimiter(*separator, shown));
            data_error(r, line_start, separator, message, NULL);
            return -1;
        }
    }
    *at = p;
    return 0;
}

/* The start of the field after the one that ends at p (its end, from
 * field_end), or NULL at the end of the line. */
static const char *next_field(const reader *r, const char *p, const char *end)
{
    if (single_delimiter(r)) {
        while (p < end && is_padding(r, *p)) {
            p++;
        }
        if (p == end || !is_delimiter(r, *p)) {
            return NULL;
        }
        p++;
        while (p < end && is_padding(r, *p)) {
            p++;
        }
        return p; /* end: the empty field after a last delimiter */
    }
    while (p < end && (is_blank(*p) || is_delimiter(r, *p))) {
        p++;
    }
    return p < end ? p : NULL;
}

/* A first line in which no selected field is a number is a header. */
static int looks_like_header(const reader *r, const char *p, const char *end)
{
    size_t field = 0;
    for (const char *stop; p != NULL; p = next_field(r, stop, end)) {
        stop = field_end(r, p, end);
        double ignored;
        if (field_selected(r, ++field) && cli_parse_double(p, stop, &ignored) == 0) {
            return 0;
        }
    }
    /* a line without the fields --columns names is data (and an error) */
    return r->callbacks->columns == NULL || field >= highest_named_field(r);
}

static int keep_header(reader *r, const char *p, const char *end)
{
    /* Kept for the message if no row of numbers follows. */
    size_t length = (size_t)(end - p);
    r->header_text = copy_up_to_nul(p, length);
    r->header_length = r->header_text != NULL ? strlen(r->header_text) : 0;
    r->header_line = r->line;
    if (r->callbacks->labels == NULL) {
        return 0;
    }
    size_t capacity = 16;
    size_t n = 0;
    size_t field = 0;
    char **labels = malloc(capacity * sizeof *labels);
    if (labels == NULL) {
        return out_of_memory();
    }
    for (const char *stop; p != NULL; p = next_field(r, stop, end)) {
        if (n == capacity) {
            char **grown = realloc(labels, 2 * capacity * sizeof *labels);
            if (grown == NULL) {
                return out_of_memory();
            }
            labels = grown;
            capacity *= 2;
        }
        stop = field_end(r, p, end);
        const char *begin = p;
        const char *label_end = stop;
        if (!field_selected(r, ++field)) {
            continue;
        }
        if (label_end - begin >= 2 && (*begin == '"' || *begin == '\'') && label_end[-1] == *begin) {
            begin++;
            label_end--;
        }
        labels[n] = copy_up_to_nul(begin, (size_t)(label_end - begin));
        if (labels[n] == NULL) {
            return out_of_memory();
        }
        n++;
    }
    return r->callbacks->labels(r->callbacks->context, labels, n);
}

/* Appends the row's fields that --columns leaves out (the empty ones
 * skipped), joined by spaces, to the label pool (the line has been read
 * without error). */
/* Past the separator after a field as parse_line steps over it (padding,
 * then one delimiter at most), so that the labels' fields are numbered as
 * the numbers' are: without -d, "a,,2" has an empty second field there
 * (next_field, for headers, takes a run of commas as one separator). */
static const char *past_separator(const reader *r, const char *p, const char *end)
{
    while (p < end && is_padding(r, *p)) {
        p++;
    }
    if (p < end && is_delimiter(r, *p)) {
        p++;
        while (p < end && is_padding(r, *p)) {
            p++;
        }
    }
    return p;
}

static int keep_row_labels(reader *r, const char *p, const char *end)
{
    size_t field = 0;
    size_t start = r->labels_used;
    int any = 0;
    for (const char *stop; p < end; p = past_separator(r, stop, end)) {
        stop = field_end(r, p, end);
        field++;
        if (!field_selected(r, field) && stop > p) {
            size_t length = (size_t)(stop - p);
            if (r->labels_used + length + 2 > r->labels_capacity) {
                size_t capacity = 2 * (r->labels_capacity + length + 2);
                char *grown = realloc(r->label_pool, capacity);
                if (grown == NULL) {
                    return out_of_memory();
                }
                r->label_pool = grown;
                r->labels_capacity = capacity;
            }
            if (any) {
                r->label_pool[r->labels_used++] = ' ';
            }
            memcpy(r->label_pool + r->labels_used, p, length);
            r->labels_used += length;
            any = 1;
        }
    }
    if (r->labels_used + 1 > r->labels_capacity) {
        char *grown = realloc(r->label_pool, r->labels_capacity + 64);
        if (grown == NULL) {
            return out_of_memory();
        }
        r->label_pool = grown;
        r->labels_capacity += 64;
    }
    r->label_pool[r->labels_used++] = '\0';
    r->label_offsets[r->batch_rows] = start;
    return 0;
}

static int is_digit_char(char c)
{
    return c >= '0' && c <= '9';
}

static int parse_line(reader *r, const char *line_start, const char *end)
{
    const char *p = line_start;
    if (r->line == 1 && end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; /* the byte order mark some spreadsheets put before a CSV file */
    }
    const char *first_field = p;
    while (p < end && is_blank(*p)) {
        p++;
    }
    if (p == end || *p == '#') {
        return 0; /* blank lines and comments (our own "# temperature" lines) */
    }
    if (single_delimiter(r)) {
        /* "\t1\t2" begins with an empty field: only padding goes */
        p = first_field;
        while (p < end && is_padding(r, *p)) {
            p++;
        }
    }
    if (!r->seen_first_line) {
        r->seen_first_line = 1;
        if (r->callbacks->header || looks_like_header(r, p, end)) {
            return keep_header(r, p, end);
        }
    }
    r->row_start = r->used;
    const char *row_fields_start = p;
    size_t cols = 0;
    size_t field = 0;
    int single = r->callbacks->dtype == SOFTMAX_DTYPE_F32;
    /* Decimal commas: "1,5 2,5" is two numbers to a French reader and four
     * to a CSV reader. A comma between two digits on a line where blanks
     * alone separate other numbers is refused rather than guessed. */
    const char *digit_comma = NULL;
    const char *blank_separator = NULL;
    for (;;) {
        field++;
        if (field_selected(r, field)) {
            int status = make_room(r);
            if (status != 0) {
                return status;
            }
            void *slot = r->batch + r->used * r->element_size;
            const char *stop;
            int fast = single ? cli_scan_float(p, end, slot, &stop) : cli_scan_double(p, end, slot, &stop);
            if (!fast || (stop < end && !is_blank(*stop) && !is_delimiter(r, *stop))) {
                /* Not the common case: the whole token goes to strtod. */
                stop = token_end_of(r, p, end);
                char message[64];
                char shown[3];
                if (p == end) { /* an empty last field, after the line's last delimiter */
                    snprintf(message, sizeof message, "expected a number after '%s' (the line ends with it)",
                             shown_delimiter(p[-1], shown));
                    return data_error(r, line_start, p - 1, message, NULL);
                }
                if (stop == p) {
                    snprintf(message, sizeof message, "expected a number before '%s'", shown_delimiter(*p, shown));
                    return data_error(r, line_start, p, is_delimiter(r, *p) ? message : "expected a number", NULL);
                }
                int parsed = single ? cli_parse_float(p, stop, slot) : cli_parse_double(p, stop, slot);
                if (parsed != 0) {
                    const char *hint = "";
                    if (r->callbacks->delimiter != ',' && memchr(p, ',', (size_t)(stop - p)) != NULL) {
                        hint = " (decimal commas are not read: write 1.5, not 1,5)";
                    }
                    return data_error(r, line_start, p, hint, stop);
                }
            }
            r->used++;
            cols++;
            p = stop;
        } else {
            p = field_end(r, p, end);
        }
        const char *after_field = p;
        if (r->callbacks->delimiter == 0 && p < end && *p == ',' && p > line_start && is_digit_char(p[-1]) &&
            p + 1 < end && is_digit_char(p[1]) && digit_comma == NULL) {
            digit_comma = p;
        }
        int at_end = skip_separator(r, line_start, &p, end);
        if (at_end < 0) {
            return CLI_EX_DATAERR;
        }
        if (at_end) {
            break;
        }
        if (r->callbacks->delimiter == 0 && blank_separator == NULL && !is_delimiter(r, *after_field) &&
            memchr(after_field, ',', (size_t)(p - after_field)) == NULL) {
            blank_separator = after_field;
        }
    }
    if (digit_comma != NULL && blank_separator != NULL) {
        char message[192];
        snprintf(message, sizeof message,
                 "ambiguous separators: a comma between digits here, blanks alone between numbers at column %zu "
                 "(decimal commas are not read: write 1.5); choose the separator with --delimiter",
                 (size_t)(blank_separator - line_start) + 1);
        return data_error(r, line_start, digit_comma, message, NULL);
    }
    if (r->callbacks->columns != NULL && field < highest_named_field(r)) {
        cli_error("%s:%llu: the line has %zu fields; --columns names field %zu", r->name, (unsigned long long)r->line,
                  field, highest_named_field(r));
        return CLI_EX_DATAERR;
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
    r->max_cols = cols > r->max_cols ? cols : r->max_cols;
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
        if (r->callbacks->keep_labels) {
            size_t *offsets = realloc(r->label_offsets, capacity * sizeof *offsets);
            if (offsets != NULL) {
                r->label_offsets = offsets;
            }
            char **pointers = realloc(r->label_pointers, capacity * sizeof *pointers);
            if (pointers != NULL) {
                r->label_pointers = pointers;
            }
            if (offsets == NULL || pointers == NULL) {
                return out_of_memory();
            }
        }
        r->row_lines_capacity = capacity;
    }
    if (r->callbacks->keep_labels) {
        int status = keep_row_labels(r, row_fields_start, end);
        if (status != 0) {
            return status;
        }
    }
    r->row_lines[r->batch_rows] = r->line;
    r->batch_cols = cols;
    r->batch_rows++;
    if (!r->callbacks->whole_matrix && r->used >= BATCH_ELEMENTS) {
        return hand_on(r);
    }
    return 0;
}

/* No row of numbers, but a first line taken as a header: say what was
 * found, as it is more often data in a form this command does not read. */
static void explain_lone_header(const reader *r)
{
    if (r->header_text == NULL || r->callbacks->header) {
        return;
    }
    const char *text = r->header_text;
    const char *hint = "";
    if (strstr(text, "\xEF\xBC") != NULL) {
        hint = "; full-width digits are not read: use ASCII digits";
    } else if (strchr(text, ';') != NULL) {
        hint = "; fields separated by ';'? try --delimiter ';'";
    } else if (strchr(text, '|') != NULL) {
        hint = "; fields separated by '|'? try --delimiter '|'";
    } else if (strchr(text, '"') != NULL || strchr(text, '\'') != NULL) {
        hint = "; quoted numbers are not read: remove the quotes";
    }
    char shown[86];
    cli_quote(shown, sizeof shown, text, r->header_length);
    cli_error("%s:%llu: no row of numbers: the only line with text has no number in a field and was taken as a "
              "header: %s%s",
              r->name, (unsigned long long)r->header_line, shown, hint);
}

/* The first carriage return in [begin, end) that something other than
 * blanks follows within that range, or NULL; then *trailing is the first
 * carriage return (NULL if none) that only blanks follow. */
static const char *inner_carriage_return(const char *begin, const char *end, const char **trailing)
{
    *trailing = NULL;
    for (const char *cr = memchr(begin, '\r', (size_t)(end - begin)); cr != NULL;
         cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1))) {
        for (const char *q = cr + 1; q < end; q++) {
            if (!is_blank(*q)) {
                return cr;
            }
        }
        *trailing = cr; /* only blanks after this one, so after any later one too */
        return NULL;
    }
    return NULL;
}

/* A new line: nothing of it checked yet. */
static void start_line_check(reader *r)
{
    r->line_checked = 0;
    r->line_pending_cr = NO_CR;
    r->line_lead = 0;
    r->line_kind = LINE_BLANK;
}

static int report_nul(reader *r, size_t offset)
{
    cli_error("%s:%llu:%zu: expected a number, found a NUL byte", r->name, (unsigned long long)r->line, offset + 1);
    return CLI_EX_DATAERR;
}

static int report_carriage_return(reader *r, size_t offset)
{
    cli_error("%s:%llu:%zu: a carriage return inside the line: lines end with a line feed (classic Mac line ends? "
              "convert them with tr '\\r' '\\n')",
              r->name, (unsigned long long)r->line, offset + 1);
    return CLI_EX_DATAERR;
}

/* check_line's work on the bytes of the line it has not seen yet, from
 * where the last call stopped. */
static int check_line_from(reader *r, const char *line, size_t length, size_t max_line)
{
    /* A comment is told by the first byte that is not a blank (after a byte
     * order mark on line 1); until it comes the line is checked as data --
     * it holds only blanks, so only carriage returns that may turn out to be
     * inside the line. */
    if (r->line_kind == LINE_BLANK) {
        size_t p = r->line_lead;
        if (p == 0 && r->line == 1 && length >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            p = 3;
        }
        const size_t from = p;
        while (p < length && is_blank(line[p])) {
            p++;
        }
        r->scanned += p - from;
        r->line_lead = p;
        if (p < length) {
            r->line_kind = line[p] == '#' ? LINE_COMMENT : LINE_DATA;
        }
    }
    const size_t scanned = length < max_line ? length : max_line;
    if (r->line_kind != LINE_COMMENT && scanned > r->line_checked) {
        const char *begin = line + r->line_checked;
        const char *end = line + scanned;
        r->scanned += 2 * (size_t)(end - begin); /* a search for NUL bytes, one for carriage returns */
        r->line_checked = scanned;
        const int check_cr = !is_delimiter(r, '\r');
        if (r->line_pending_cr != NO_CR) {
            /* Anything but blanks now puts that carriage return inside the
             * line, a NUL byte too (it comes later). */
            for (const char *q = begin; q < end; q++) {
                if (!is_blank(*q)) {
                    return report_carriage_return(r, r->line_pending_cr);
                }
            }
            return 0;
        }
        const char *nul = memchr(begin, '\0', (size_t)(end - begin));
        const char *trailing = NULL;
        const char *cr = check_cr ? inner_carriage_return(begin, end, &trailing) : NULL;
        /* The first of the two by column: what a line still arriving shows
         * first is what the whole line reports. */
        if (nul != NULL && (cr == NULL || nul < cr)) {
            return report_nul(r, (size_t)(nul - line));
        }
        if (cr != NULL) {
            return report_carriage_return(r, (size_t)(cr - line));
        }
        if (trailing != NULL) {
            r->line_pending_cr = (size_t)(trailing - line);
        }
    }
    return 0;
}

/* What is wrong with a line before its fields are read, the same whether
 * the line is complete or still arriving (so that `softmax /dev/zero` or an
 * endless line stops as soon as the fault is read, with the message the
 * complete line would get):
 *  1. a NUL byte within the first max_line bytes of a line that is not a
 *     comment: text with NUL bytes is not text; or, if it comes first,
 *  2. a carriage return followed by more than blanks within those bytes:
 *     a file with classic Mac line ends ("1 2\r3 4\r") is one line to a
 *     reader that splits at '\n', and its rows would silently run together
 *     (a CR before the line feed, as in CRLF, is a blank);
 *  3. more than max_line bytes.
 * Called on a line each time more of it has arrived (then once complete),
 * it goes on from where it stopped: each byte is looked at once. Returns 0
 * or an exit code (reported). */
static int check_line(reader *r, const char *line, size_t length, size_t max_line)
{
    int status;
    if (r->line == 1 && length < 3) {
        /* Too short to tell whether a byte order mark begins the line: checked
         * without keeping anything (three bytes at most), again once longer. */
        const size_t checked = r->line_checked, pending_cr = r->line_pending_cr, lead = r->line_lead;
        const int kind = r->line_kind;
        status = check_line_from(r, line, length, max_line);
        r->line_checked = checked;
        r->line_pending_cr = pending_cr;
        r->line_lead = lead;
        r->line_kind = kind;
    } else {
        status = check_line_from(r, line, length, max_line);
    }
    if (status != 0) {
        return status;
    }
    if (length > max_line) {
        cli_error("%s:%llu:%zu: the line is longer than the limit of %zu bytes; --max-line-length sets it", r->name,
                  (unsigned long long)r->line, max_line + 1, max_line);
        return CLI_EX_DATAERR;
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
    /* Memory: the read buffer holds at most the longest line allowed plus
     * one read, the batch that line's values. */
    const size_t max_line = callbacks->max_line ? callbacks->max_line : CLI_DEFAULT_MAX_LINE;
    size_t capacity = READ_SIZE;
    char *buffer = malloc(capacity + 1);
    if (r.batch == NULL || buffer == NULL) {
        free(r.batch);
        free(buffer);
        return out_of_memory();
    }
    size_t begin = 0;
    size_t end = callbacks->prefix_length < capacity ? callbacks->prefix_length : 0;
    if (end > 0) {
        memcpy(buffer, callbacks->prefix, end);
    }
    /* [begin, searched) has no line feed: the search for the end of a line
     * arriving over many reads goes on from where it stopped. */
    size_t searched = 0;
    int at_eof = 0;
    int status = 0;
    r.line = 1;
    start_line_check(&r);
    while (status == 0) {
        char *newline;
        while (status == 0 && (newline = memchr(buffer + searched, '\n', end - searched)) != NULL) {
            r.scanned += (size_t)(newline - (buffer + searched)) + 1;
            status = check_line(&r, buffer + begin, (size_t)(newline - (buffer + begin)), max_line);
            if (status == 0) {
                status = parse_line(&r, buffer + begin, newline);
            }
            begin = (size_t)(newline - buffer) + 1;
            searched = begin;
            r.line++;
            start_line_check(&r);
        }
        if (status != 0) {
            break;
        }
        r.scanned += end - searched;
        searched = end;
        /* the line still arriving (all of it at the end of the input) */
        status = check_line(&r, buffer + begin, end - begin, max_line);
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
        if (begin > 0) {
            /* the line still arriving moves to the front, once */
            memmove(buffer, buffer + begin, end - begin);
            end -= begin;
            searched -= begin;
            begin = 0;
        }
        if (end == capacity) {
            /* One line longer than the buffer (and within the limit). */
            size_t grown_capacity = capacity * 2 < max_line + READ_SIZE ? capacity * 2 : max_line + READ_SIZE;
            char *grown = realloc(buffer, grown_capacity + 1);
            if (grown == NULL) {
                status = out_of_memory();
                break;
            }
            buffer = grown;
            capacity = grown_capacity;
        }
        ssize_t got = callbacks->read != NULL ? callbacks->read(callbacks->context, fd, buffer + end, capacity - end)
                                              : read(fd, buffer + end, capacity - end);
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
        explain_lone_header(&r);
    }
    if (callbacks->summary != NULL) {
        callbacks->summary->rows += r.rows_handed;
        callbacks->summary->scanned += r.scanned;
        callbacks->summary->max_cols =
            r.max_cols > callbacks->summary->max_cols ? r.max_cols : callbacks->summary->max_cols;
    }
    free(r.header_text);
    free(r.label_pool);
    free(r.label_offsets);
    free(r.label_pointers);
    free(buffer);
    free(r.batch);
    free(r.row_lines);
    return status;
}
