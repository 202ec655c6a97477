/*
 * fuzz_text.c -- the command's text reader (cli/text.c, cli_read_text) and
 * number scanner (cli/number.c) on hostile text, through a memory file.
 *
 * Input: [options][more options][text...]. The options byte picks f32 or
 * f64, --header, equal rows, whole-matrix mode, a rows callback that
 * fails, and (rarely) the text repeated to 64 KiB; when its top bits are
 * 01 a second byte picks --delimiter (',', ';', ' ', tab or none),
 * --columns (2-, 1, 1,3, 2-3, 3 or none) and --max-line-length (40 or 300
 * bytes) or else --keep-labels (the labels handed on with each row are the
 * oracle's unselected fields). text.c is built here with a 256-byte read
 * block and a 32-element batch (CMakeLists.txt), so that short inputs cross
 * block and batch boundaries and lines outgrow the buffer; two inputs in
 * three are read 1 to 29 bytes at a time (as from a pipe), so that lines are
 * checked while they arrive.
 * The text is checked against an oracle written here from the format's
 * rules (lines, '#' comments, blanks, comma or blank separators or the
 * chosen delimiter -- each one ends one field, as with cut -d, but for a
 * space, which is runs of blanks --, selected fields, a header line of non-numbers, a byte
 * order mark, NUL bytes, a carriage return inside a line and the line-length
 * limit before any field, decimal
 * commas refused when blanks alone separate other numbers on the line)
 * with strtod/strtof as the reference for each number:
 *  - no crash, no out-of-bounds access, no leak;
 *  - finding and checking lines looks at no more than 4 bytes per byte of
 *    input (the reader's count), however the reads cut it;
 *  - success exactly when the oracle finds every data token a number, no
 *    separator out of place and equal rows where required (no row at all
 *    is a success with nothing handed on); then the rows handed on are the oracle's, in order, numbered
 *    consecutively, every value bit for bit strtod's (f64) or strtof's
 *    (f32) of its token, and the header labels are the header's fields;
 *  - on a syntax error the message is "<name>:<line>:<column>: ..." at the
 *    oracle's first bad token or separator; ragged rows and missing
 *    --columns fields name the line; a failing callback's status is
 *    returned.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_cli.h"
#include "fuzz_common.h"

enum { LONG_TOKEN = 500, FAIL_STATUS = 99 };

/* ---- the oracle ---- */

typedef struct expected {
    int ok;
    uint64_t error_line;
    size_t error_column; /* 0: an error without a column */
    int ragged, empty, unsure;
    size_t n_values, n_rows, values_capacity, rows_capacity;
    double *values; /* as parsed by strtod/strtof */
    size_t *row_cols;
    uint64_t *row_lines; /* the input line of each row, for the messages */
    size_t n_labels;
    char **labels;
    char **row_labels; /* each row's unselected fields joined by spaces (--keep-labels) */
} expected;

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A whole token as a number, by the C library. */
static int oracle_number(const char *begin, size_t length, int single, double *value)
{
    if (length == 0 || memchr(begin, '\0', length) != NULL)
        return 0;
    char small[LONG_TOKEN + 1];
    char *copy = length <= LONG_TOKEN ? small : malloc(length + 1);
    memcpy(copy, begin, length);
    copy[length] = '\0';
    char *stop;
    if (single)
        *value = strtof(copy, &stop);
    else
        *value = strtod(copy, &stop);
    const int ok = *stop == '\0';
    if (copy != small)
        free(copy);
    return ok;
}

/* The label [b, b + n) up to a NUL byte inside it, as the reader's copy
 * does. Not strndup: the sanitizers' strict string checks read one byte
 * past an unterminated range, which at the end of the input is outside it. */
static char *copy_label(const char *b, size_t n)
{
    const char *nul = memchr(b, '\0', n);
    const size_t length = nul != NULL ? (size_t)(nul - b) : n;
    char *copy = malloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, b, length);
        copy[length] = '\0';
    }
    return copy;
}

/* The reader's options the fuzz picks (the command's --delimiter,
 * --columns and --max-line-length). */
typedef struct reader_options {
    char delimiter; /* 0: blanks and commas */
    const cli_column_range *columns;
    size_t n_columns;
    size_t max_line;
    int keep_labels;
} reader_options;

/* A delimiter of its own (any but space): each one ends exactly one field,
 * as with cut -d, so that empty fields count. Without one, and with a
 * space, runs of blanks (and, without one, commas) separate fields. */
static int oracle_single(const reader_options *o)
{
    return o->delimiter != 0 && o->delimiter != ' ';
}

static int oracle_is_delimiter(const reader_options *o, char c)
{
    return o->delimiter == 0 ? c == ',' : c == o->delimiter && oracle_single(o);
}

/* Blanks around a field: not a tab that is the delimiter. */
static int oracle_padding(const reader_options *o, char c)
{
    return is_blank(c) && !oracle_is_delimiter(o, c);
}

static const char *oracle_token_end(const reader_options *o, const char *p, const char *end)
{
    while (p < end && !is_blank(*p) && !oracle_is_delimiter(o, *p))
        p++;
    return p;
}

static const char *oracle_field_end(const reader_options *o, const char *p, const char *end)
{
    if (!oracle_single(o))
        return oracle_token_end(o, p, end);
    const char *stop = p;
    while (stop < end && *stop != o->delimiter)
        stop++;
    while (stop > p && is_blank(stop[-1]))
        stop--;
    return stop;
}

/* The start of the field after the one ending at p, or NULL at the end of
 * the line; with a single delimiter the field after a last delimiter is
 * empty and starts at the end. */
static const char *oracle_next_field(const reader_options *o, const char *p, const char *end)
{
    if (oracle_single(o)) {
        while (p < end && oracle_padding(o, *p))
            p++;
        if (p == end || !oracle_is_delimiter(o, *p))
            return NULL;
        p++;
        while (p < end && oracle_padding(o, *p))
            p++;
        return p;
    }
    while (p < end && (is_blank(*p) || oracle_is_delimiter(o, *p)))
        p++;
    return p < end ? p : NULL;
}

static int oracle_selected(const reader_options *o, size_t field)
{
    if (o->columns == NULL)
        return 1;
    for (size_t i = 0; i < o->n_columns; i++)
        if (field >= o->columns[i].first && field <= o->columns[i].last)
            return 1;
    return 0;
}

static size_t oracle_highest(const reader_options *o)
{
    size_t highest = 0;
    for (size_t i = 0; i < o->n_columns; i++) {
        const size_t named = o->columns[i].last == SIZE_MAX ? o->columns[i].first : o->columns[i].last;
        highest = named > highest ? named : highest;
    }
    return highest;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void oracle_error(expected *e, uint64_t line, size_t column)
{
    e->error_line = line;
    e->error_column = column;
}

static void oracle_line(expected *e, const reader_options *o, const char *p, const char *end, uint64_t line, int single,
                        int header_option, int *seen_first, size_t *first_cols, int equal_rows)
{
    const char *line_start = p;
    const size_t length = (size_t)(end - p);
    if (line == 1 && end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    const char *first_field = p;
    while (p < end && is_blank(*p))
        p++;
    /* A NUL byte within the limit in a line that is not a comment, then a
     * line over the limit: before any field. */
    if (p == end || *p != '#') {
        /* or a carriage return with anything but blanks after it (within
         * the limit: rows run together by classic Mac line ends), whichever
         * comes first. */
        const size_t scanned = length < o->max_line ? length : o->max_line;
        for (size_t i = 0; i < scanned; i++) {
            if (line_start[i] == '\0') {
                oracle_error(e, line, i + 1);
                return;
            }
            if (line_start[i] != '\r' || o->delimiter == '\r')
                continue;
            size_t j = i + 1;
            while (j < scanned && is_blank(line_start[j]))
                j++;
            if (j < scanned) {
                oracle_error(e, line, i + 1);
                return;
            }
            break; /* only blanks after it: no NUL byte, no other such carriage return (and no quadratic rescan) */
        }
    }
    if (length > o->max_line) {
        oracle_error(e, line, o->max_line + 1);
        return;
    }
    if (p == end || *p == '#')
        return;
    if (oracle_single(o)) { /* a leading delimiter begins with an empty field */
        p = first_field;
        while (p < end && oracle_padding(o, *p))
            p++;
    }
    if (!*seen_first) {
        *seen_first = 1;
        int any_number = 0;
        size_t fields = 0;
        for (const char *q = p, *stop; q != NULL; q = oracle_next_field(o, stop, end)) {
            stop = oracle_field_end(o, q, end);
            double ignored;
            fields++;
            if (oracle_selected(o, fields)) {
                if ((size_t)(stop - q) >= LONG_TOKEN)
                    e->unsure = 1;
                any_number |= oracle_number(q, (size_t)(stop - q), 0, &ignored);
            }
        }
        if (o->columns != NULL && fields < oracle_highest(o))
            any_number = 1; /* data, and an error below */
        if (header_option || !any_number) {
            e->labels = calloc(fields + 1, sizeof *e->labels);
            size_t field = 0;
            for (const char *q = p, *stop; q != NULL; q = oracle_next_field(o, stop, end)) {
                stop = oracle_field_end(o, q, end);
                const char *b = q, *s = stop;
                if (!oracle_selected(o, ++field))
                    continue;
                if (s - b >= 2 && (*b == '"' || *b == '\'') && s[-1] == *b)
                    b++, s--;
                e->labels[e->n_labels++] = copy_label(b, (size_t)(s - b));
            }
            return;
        }
    }
    size_t cols = 0, field = 0;
    const char *digit_comma = NULL, *blank_separator = NULL;
    char row_label[1024];
    size_t row_label_length = 0;
    const size_t values_before = e->n_values;
    for (;;) {
        field++;
        const char *stop;
        if (oracle_selected(o, field)) {
            if (p == end) { /* the empty field after a last delimiter: at the character before it */
                oracle_error(e, line, (size_t)(p - line_start));
                return;
            }
            stop = oracle_token_end(o, p, end);
            if (stop == p) {
                oracle_error(e, line, (size_t)(p - line_start) + 1);
                return;
            }
            if ((size_t)(stop - p) >= LONG_TOKEN)
                e->unsure = 1;
            double value;
            if (!oracle_number(p, (size_t)(stop - p), single, &value)) {
                oracle_error(e, line, (size_t)(p - line_start) + 1);
                return;
            }
            if (e->n_values == e->values_capacity) {
                e->values_capacity *= 2;
                e->values = realloc(e->values, e->values_capacity * sizeof *e->values);
            }
            e->values[e->n_values++] = value;
            cols++;
        } else {
            stop = oracle_field_end(o, p, end);
            const size_t n = (size_t)(stop - p);
            if (n == 0) {
                /* empty fields are left out of the labels */
            } else if (row_label_length + n + 2 < sizeof row_label) {
                if (row_label_length > 0)
                    row_label[row_label_length++] = ' ';
                memcpy(row_label + row_label_length, p, n);
                row_label_length += n;
            } else {
                e->unsure = 1;
            }
        }
        p = stop;
        const char *after_field = p;
        if (o->delimiter == 0 && p < end && *p == ',' && p > line_start && is_digit(p[-1]) && p + 1 < end &&
            is_digit(p[1]) && digit_comma == NULL)
            digit_comma = p;
        while (p < end && oracle_padding(o, *p))
            p++;
        if (p == end)
            break;
        if (oracle_single(o) && !oracle_is_delimiter(o, *p)) {
            oracle_error(e, line, (size_t)(p - line_start) + 1);
            return;
        }
        if (oracle_is_delimiter(o, *p)) {
            const char *separator = p++;
            while (p < end && oracle_padding(o, *p))
                p++;
            /* with a single delimiter, an empty last field follows */
            if (p == end && !oracle_single(o)) {
                oracle_error(e, line, (size_t)(separator - line_start) + 1);
                return;
            }
        }
        if (o->delimiter == 0 && blank_separator == NULL && *after_field != ',' &&
            memchr(after_field, ',', (size_t)(p - after_field)) == NULL)
            blank_separator = after_field;
    }
    if (digit_comma != NULL && blank_separator != NULL) {
        e->n_values = values_before;
        oracle_error(e, line, (size_t)(digit_comma - line_start) + 1);
        return;
    }
    if (o->columns != NULL && field < oracle_highest(o)) {
        e->n_values = values_before;
        oracle_error(e, line, 0);
        return;
    }
    if (equal_rows) {
        if (*first_cols == 0)
            *first_cols = cols;
        else if (cols != *first_cols) {
            e->error_line = line;
            e->ragged = 1;
            return;
        }
    }
    if (e->n_rows == e->rows_capacity) {
        e->rows_capacity *= 2;
        e->row_cols = realloc(e->row_cols, e->rows_capacity * sizeof *e->row_cols);
        e->row_lines = realloc(e->row_lines, e->rows_capacity * sizeof *e->row_lines);
        e->row_labels = realloc(e->row_labels, e->rows_capacity * sizeof *e->row_labels);
    }
    e->row_labels[e->n_rows] = copy_label(row_label, row_label_length);
    e->row_lines[e->n_rows] = line;
    e->row_cols[e->n_rows++] = cols;
}

static void oracle(expected *e, const reader_options *o, const char *text, size_t size, int single, int header_option,
                   int equal_rows)
{
    memset(e, 0, sizeof *e);
    e->values_capacity = e->rows_capacity = 64;
    e->values = malloc(e->values_capacity * sizeof *e->values);
    e->row_cols = malloc(e->rows_capacity * sizeof *e->row_cols);
    e->row_lines = malloc(e->rows_capacity * sizeof *e->row_lines);
    e->row_labels = malloc(e->rows_capacity * sizeof *e->row_labels);
    int seen_first = 0;
    size_t first_cols = 0;
    uint64_t line = 1;
    const char *p = text, *end = text + size;
    while (p < end && e->error_line == 0) {
        const char *newline = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = newline ? newline : end;
        oracle_line(e, o, p, line_end, line, single, header_option, &seen_first, &first_cols, equal_rows);
        if (!newline)
            break;
        p = newline + 1;
        line++;
    }
    /* no row of numbers is not an error: the command prints nothing */
    e->empty = e->error_line == 0 && e->n_rows == 0;
    e->ok = e->error_line == 0;
}

static void free_expected(expected *e)
{
    for (size_t i = 0; i < e->n_labels; i++)
        free(e->labels[i]);
    free(e->labels);
    for (size_t i = 0; i < e->n_rows; i++)
        free(e->row_labels[i]);
    free(e->row_labels);
    free(e->values);
    free(e->row_cols);
    free(e->row_lines);
}

/* ---- the callbacks ---- */

typedef struct context {
    const expected *e;
    softmax_dtype dtype;
    size_t values_seen, rows_seen;
    uint64_t next_first_row;
    int calls, fail_at, whole_matrix, keep_labels;
    size_t n_labels;
    int labels_calls;
    size_t piece; /* bytes per read at most (a pipe's short reads), 0: as many as asked */
} context;

static ssize_t on_read(void *opaque, int fd, void *buffer, size_t size)
{
    const context *c = opaque;
    return read(fd, buffer, c->piece != 0 && size > c->piece ? c->piece : size);
}

static int on_rows(void *opaque, void *values, size_t rows, size_t cols, uint64_t first_row, const uint64_t *lines,
                   const char *const *labels)
{
    context *c = opaque;
    const expected *e = c->e;
    FUZZ_CHECK(rows > 0, "rows callback with no rows");
    FUZZ_CHECK(first_row == c->next_first_row, "rows numbered from %llu, expected %llu", (unsigned long long)first_row,
               (unsigned long long)c->next_first_row);
    c->next_first_row += rows;
    for (size_t r = 0; r < rows; r++) {
        const size_t row = c->rows_seen + r;
        if (!e->unsure && row < e->n_rows) {
            FUZZ_CHECK(e->row_cols[row] == cols, "row %zu has %zu values, the oracle %zu", row, cols, e->row_cols[row]);
            FUZZ_CHECK(lines[r] == e->row_lines[row], "row %zu is said to be on line %llu, the oracle %llu", row,
                       (unsigned long long)lines[r], (unsigned long long)e->row_lines[row]);
            FUZZ_CHECK((labels != NULL) == c->keep_labels, "labels %s without --keep-labels",
                       labels != NULL ? "handed on" : "missing");
            if (labels != NULL)
                FUZZ_CHECK(strcmp(labels[r], e->row_labels[row]) == 0, "row %zu's labels are '%s', the oracle '%s'",
                           row, labels[r], e->row_labels[row]);
        }
        for (size_t j = 0; j < cols; j++) {
            const size_t k = c->values_seen + r * cols + j;
            const double got = c->dtype == SOFTMAX_DTYPE_F32 ? (double)((float *)values)[r * cols + j]
                                                             : ((double *)values)[r * cols + j];
            if (e->unsure || k >= e->n_values)
                continue;
            const double want = e->values[k];
            FUZZ_CHECK((isnan(got) && isnan(want)) || memcmp(&got, &want, sizeof got) == 0,
                       "value %zu (row %zu) is %.17g, strto%s gives %.17g", k, row, got,
                       c->dtype == SOFTMAX_DTYPE_F32 ? "f" : "d", want);
        }
    }
    c->rows_seen += rows;
    c->values_seen += rows * cols;
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at) {
        cli_error("the callback fails");
        return FAIL_STATUS;
    }
    return 0;
}

static int on_idle(void *opaque)
{
    (void)opaque;
    return 0;
}

static int on_labels(void *opaque, char **labels, size_t n)
{
    context *c = opaque;
    const expected *e = c->e;
    c->labels_calls++;
    c->n_labels = n;
    if (!e->unsure) {
        FUZZ_CHECK(n == e->n_labels, "%zu header labels, the oracle %zu", n, e->n_labels);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(strcmp(labels[i], e->labels[i]) == 0, "label %zu is '%s', the oracle '%s'", i, labels[i],
                       e->labels[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(labels[i]);
    free(labels);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t options = data[0];
    /* Bits 6-7 01: a second byte picks the reader's options. */
    reader_options reading = {0, NULL, 0, CLI_DEFAULT_MAX_LINE, 0};
    static const cli_column_range column_choices[][2] = {
        {{2, SIZE_MAX}, {0, 0}}, {{1, 1}, {0, 0}}, {{1, 1}, {3, 3}}, {{2, 3}, {0, 0}}, {{3, 3}, {0, 0}}};
    static const size_t column_counts[] = {1, 1, 2, 1, 1};
    if ((options & 0xc0) == 0x40 && size >= 2) {
        const uint8_t more = data[1];
        static const char delimiters[] = {0, ',', ';', ' ', '\t', 0, 0, 0};
        reading.delimiter = delimiters[more & 7];
        const int columns = (more >> 3) & 7;
        if (columns < 5) {
            reading.columns = column_choices[columns];
            reading.n_columns = column_counts[columns];
        }
        if (more & 0x40)
            reading.max_line = more & 0x80 ? 40 : 300;
        else
            reading.keep_labels = (more & 0x80) != 0;
        data++;
        size--;
    }
    const int single = options & 1, header_option = (options & 2) != 0, equal_rows = (options & 4) != 0;
    const int whole_matrix = (options & 8) != 0;
    const int fail_at = (options >> 4) & 3;
    /* Rare big inputs: the text repeated, many blocks and batches (a single
     * long line when the text has no newline). */
    const int big = (options & 0xc0) == 0xc0 && size > 1 && fuzz_input_is_rare(data, size, 64);
    const char *body = (const char *)data + 1;
    size_t length = size - 1;
    char *text = NULL;
    if (big) {
        const size_t target = (size_t)1 << 16;
        const size_t copies = (target + length - 1) / length;
        text = malloc(copies * length);
        for (size_t i = 0; i < copies; i++)
            memcpy(text + i * length, body, length);
        body = text;
        length *= copies;
    }

    expected e;
    oracle(&e, &reading, body, length, single, header_option, equal_rows);

    const int fd = memfd_create("fuzz_text", 0);
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    for (size_t done = 0; done < length;) {
        const ssize_t wrote = write(fd, body + done, length - done);
        FUZZ_CHECK(wrote > 0, "write to the memory file failed");
        done += (size_t)wrote;
    }
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek failed");

    /* Two inputs in three arrive 1 to 29 bytes per read, as from a pipe:
     * a line is then checked over many reads. */
    const size_t piece = size % 3 == 0 ? 0 : 1 + size * 7 % 29;
    context c = {&e,           single ? SOFTMAX_DTYPE_F32 : SOFTMAX_DTYPE_F64, 0, 0, 0,    0, fail_at,
                 whole_matrix, reading.columns != NULL && reading.keep_labels, 0, 0, piece};
    cli_text_summary summary = {0, 0, 0};
    cli_text_callbacks callbacks = {.context = &c,
                                    .dtype = c.dtype,
                                    .whole_matrix = whole_matrix,
                                    .equal_rows = equal_rows,
                                    .equal_rows_reason = "the fuzz needs equal rows",
                                    .header = header_option,
                                    .delimiter = reading.delimiter,
                                    .columns = reading.columns,
                                    .n_columns = reading.n_columns,
                                    .max_line = reading.max_line,
                                    .summary = &summary,
                                    .keep_labels = c.keep_labels,
                                    .rows = on_rows,
                                    .idle = on_idle,
                                    .labels = on_labels,
                                    .read = on_read};
    last_message[0] = '\0';
    const int status = cli_read_text(fd, "in", &callbacks);
    close(fd);
    /* Finding and checking lines looks at each byte a few times, however
     * the reads cut the input: never once per read (quadratic). */
    FUZZ_CHECK(summary.scanned <= 4 * (uint64_t)length + 64, "%llu bytes looked at for %zu bytes of input",
               (unsigned long long)summary.scanned, length);

    if (c.fail_at && c.calls >= c.fail_at) {
        FUZZ_CHECK(status == FAIL_STATUS, "the callback failed but cli_read_text returned %d", status);
        goto done;
    }
    if (e.unsure) {
        /* A token of 500 bytes or more: only the values checked so far
         * count (the oracle's copy is bounded). */
        if (status == 0)
            FUZZ_CHECK(summary.rows == c.rows_seen, "the summary counts %llu rows, %zu were handed on",
                       (unsigned long long)summary.rows, c.rows_seen);
        goto done;
    }
    if (e.ok) {
        FUZZ_CHECK(status == 0, "valid text (%zu rows) failed with %d: %s", e.n_rows, status, last_message);
        FUZZ_CHECK(summary.rows == e.n_rows, "the summary counts %llu rows, the oracle %zu",
                   (unsigned long long)summary.rows, e.n_rows);
        FUZZ_CHECK(c.rows_seen == e.n_rows && c.values_seen == e.n_values,
                   "%zu rows / %zu values, the oracle %zu / %zu", c.rows_seen, c.values_seen, e.n_rows, e.n_values);
        /* Whole-matrix mode hands every row on at once (the command asks
         * for equal rows with it; rows of another length close a batch). */
        if (whole_matrix && equal_rows)
            FUZZ_CHECK(c.calls == (e.n_rows > 0), "whole-matrix mode handed rows on %d times", c.calls);
        FUZZ_CHECK(e.labels == NULL ? c.labels_calls == 0 : c.labels_calls == 1, "labels handed on %d times",
                   c.labels_calls);
        goto done;
    }
    FUZZ_CHECK(status == CLI_EX_DATAERR, "invalid text returned %d, not CLI_EX_DATAERR (%s)", status, last_message);
    char prefix[64];
    if (e.ragged) {
        snprintf(prefix, sizeof prefix, "in:%llu: ragged rows", (unsigned long long)e.error_line);
        FUZZ_CHECK(strncmp(last_message, prefix, strlen(prefix)) == 0, "ragged rows: message '%s', expected '%s...'",
                   last_message, prefix);
    } else if (e.error_column == 0) {
        snprintf(prefix, sizeof prefix, "in:%llu: ", (unsigned long long)e.error_line);
        FUZZ_CHECK(strncmp(last_message, prefix, strlen(prefix)) == 0, "line error: message '%s', expected '%s...'",
                   last_message, prefix);
    } else {
        snprintf(prefix, sizeof prefix, "in:%llu:%zu: ", (unsigned long long)e.error_line, e.error_column);
        FUZZ_CHECK(strncmp(last_message, prefix, strlen(prefix)) == 0, "syntax error: message '%s', expected '%s...'",
                   last_message, prefix);
    }
    /* Rows before the bad line may have been handed on; none after it. */
    FUZZ_CHECK(c.rows_seen <= e.n_rows, "%zu rows handed on, only %zu precede the error", c.rows_seen, e.n_rows);
done:
    free_expected(&e);
    free(text);
    return 0;
}
