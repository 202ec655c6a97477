/*
 * main.c -- the `softmax` command: reads rows of numbers (text) or arrays
 * (.npy), applies the library's softmax family, writes text, .npy or plots.
 *
 * Data flow: input (text.c streams rows; npy.c maps arrays) -> one
 * softmax_execute per batch of rows or chunk of an array -> output (text
 * lines, .npy bytes or plot.c bars) into a cli_sink (output.c). Each
 * --temperature is one pass over the input, so that every pass streams.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* Chunk of an array computed at once when writing: bounds memory for any
 * array size while keeping library calls large. */
#define CHUNK_ELEMENTS ((size_t)1 << 22)
/* Header size reserved in a .npy written from streamed text, whose shape is
 * known only at the end. */
#define STREAMED_NPY_HEADER 192

typedef struct run {
    const cli_options *options;
    cli_sink sink;
    int npy_output;
    softmax_dtype compute;
    double scale; /* of the current pass */
    int pass;
    int passes;
    const char *input_name;
    int text_axis_columns; /* text with --axis 0: normalize columns */
    /* text -> .npy: the shape seen so far */
    uint64_t rows_written;
    size_t cols_written;
    /* --mask, as f64 */
    double *mask;
    uint64_t text_rows_read; /* rows of the current text input and pass so far */
    int mask_ndim;
    size_t mask_shape[SOFTMAX_MAX_NDIM];
    /* --plot */
    cli_plot plot;
    int plotted;
    const char *plot_label; /* --keep-labels: the row's label, in its plot's title */
    int statistics_heading;
    double *scratch;
    size_t scratch_capacity;
    /* --sample / --entropy / --logsumexp / --argmax instead of softmax */
    int draws;
    /* --keep-labels: the label fields of the rows being written (text) */
    const char *const *row_labels;
    /* text read so far (all inputs, the first pass) */
    cli_text_summary summary;
    /* bytes of standard input read to look for the .npy magic */
    char stdin_prefix[sizeof cli_npy_magic];
    size_t stdin_prefix_length;
    /* rows of numbers in the .npy inputs (for --require-input) */
    uint64_t array_rows;
    /* text -> .npy: where the header goes (0 but for -o /dev/stdout on a file) */
    off_t npy_header_offset;
} run;

/* ------------------------------------------------------------------------- */

static int library_failure(const run *r, int status)
{
    if (status == SOFTMAX_E_UNSUPPORTED && r->mask != NULL) {
        cli_error("--mask: not available in this build: libsoftmax %s does not apply masks yet (%s)", softmax_version(),
                  softmax_last_error());
        return CLI_EX_UNAVAILABLE;
    }
    cli_error("%s: libsoftmax: %s (%s)", r->input_name, softmax_strerror(status), softmax_last_error());
    return CLI_EX_SOFTWARE;
}

static double pass_scale(const cli_options *options, int pass)
{
    if (options->n_temperatures == 0) {
        return options->scale;
    }
    double t = options->temperatures[pass];
    /* T = 0 (or -0: the same temperature) is the greedy limit: an infinite
     * scale, which the library defines as one-hot at the arg max (ties
     * share the mass). */
    return t == 0 ? INFINITY * options->scale : options->scale / t;
}

/* The sampler's temperature for the pass: T / S (the sampler divides the
 * logits by it), 0 for greedy and +inf for uniform. */
static double pass_temperature(const cli_options *options, int pass)
{
    double t = options->n_temperatures == 0 ? 1.0 : options->temperatures[pass];
    return options->scale == 0 ? INFINITY : t / options->scale;
}

static void describe_pass(const run *r, char *out, size_t size)
{
    const cli_options *o = r->options;
    out[0] = '\0';
    if (o->n_temperatures > 0) {
        char t[48];
        cli_format_g(t, o->temperatures[r->pass], 6);
        snprintf(out, size, "temperature %s", t);
    }
    if (o->scale != 1.0) {
        char s[48];
        cli_format_g(s, o->scale, 6);
        size_t length = strlen(out);
        snprintf(out + length, size - length, "%sscale %s", length ? ", " : "", s);
    }
}

/* ------------------------------------------------------------------------- */
/* Output of computed values */

static double value_at(const run *r, const void *values, size_t i)
{
    return r->compute == SOFTMAX_DTYPE_F32 ? (double)((const float *)values)[i] : ((const double *)values)[i];
}

static void write_number(run *r, double value)
{
    if (r->options->format != NULL) {
        cli_sink_format_number(&r->sink, r->options->format, value);
        return;
    }
    char *slot = cli_sink_reserve(&r->sink, 64);
    r->sink.used += cli_format_g(slot, value, r->options->precision);
}

static int ensure_scratch(run *r, size_t n)
{
    if (n <= r->scratch_capacity) {
        return 0;
    }
    double *grown = realloc(r->scratch, 2 * n * sizeof *grown);
    if (grown == NULL) {
        cli_error("out of memory");
        return CLI_EX_OSERR;
    }
    r->scratch = grown;
    r->scratch_capacity = n;
    return 0;
}

/* Plots one line of n values found at values[first + k * stride]. */
static int plot_line(run *r, const void *values, size_t first, size_t stride, size_t n, const char *what,
                     uint64_t index)
{
    int status = ensure_scratch(r, n);
    if (status != 0) {
        return status;
    }
    double *shown = r->scratch;
    double *probability = r->scratch + n;
    for (size_t k = 0; k < n; k++) {
        shown[k] = value_at(r, values, first + k * stride);
        probability[k] = r->options->log ? exp(shown[k]) : shown[k];
    }
    char pass[128];
    char title[192];
    describe_pass(r, pass, sizeof pass);
    snprintf(title, sizeof title, "%s %llu%s%s%s%s%s", what, (unsigned long long)index + 1, pass[0] ? " (" : "", pass,
             pass[0] ? ")" : "", r->plot_label != NULL ? ": " : "", r->plot_label != NULL ? r->plot_label : "");
    r->plot_label = NULL;
    if (r->plotted) {
        cli_sink_putc(&r->sink, '\n');
    }
    r->plotted = 1;
    cli_plot_row(&r->sink, &r->plot, title, probability, shown, n);
    return 0;
}

/* Writes rows x cols computed values as text lines, plots or .npy bytes.
 * `first_row` numbers the rows in plot titles. */
static int emit_rows(run *r, const void *values, size_t rows, size_t cols, uint64_t first_row)
{
    if (r->npy_output) {
        cli_sink_write_little_endian(&r->sink, values, rows * cols, cli_dtype_size(r->compute));
        return r->sink.failed ? CLI_EX_IOERR : 0;
    }
    if (r->options->plot) {
        for (size_t i = 0; i < rows; i++) {
            r->plot_label = r->row_labels != NULL ? r->row_labels[i] : NULL;
            int status = plot_line(r, values, i * cols, 1, cols, "row", first_row + i);
            if (status != 0) {
                return status;
            }
        }
        return r->sink.failed ? CLI_EX_IOERR : 0;
    }
    size_t k = 0;
    /* The common case, %g of rows that fit the buffer: one reservation per
     * row and a loop per type, without per-value calls. */
    int fast = r->options->format == NULL && cols < r->sink.capacity / 32;
    for (size_t i = 0; i < rows; i++) {
        if (r->row_labels != NULL) {
            /* --keep-labels: the row's other fields first */
            cli_sink_write(&r->sink, r->row_labels[i], strlen(r->row_labels[i]));
            cli_sink_putc(&r->sink, ' ');
        }
        if (!fast) {
            for (size_t j = 0; j < cols; j++, k++) {
                if (j > 0) {
                    cli_sink_putc(&r->sink, ' ');
                }
                write_number(r, value_at(r, values, k));
            }
            cli_sink_putc(&r->sink, '\n');
            continue;
        }
        /* cli_format_g writes at most 24 characters, plus a separator. */
        char *out = cli_sink_reserve(&r->sink, cols * 32);
        char *p = out;
        int precision = r->options->precision;
        if (r->compute == SOFTMAX_DTYPE_F32) {
            const float *row = (const float *)values + k;
            for (size_t j = 0; j < cols; j++) {
                p += cli_format_g(p, (double)row[j], precision);
                *p++ = ' ';
            }
        } else {
            const double *row = (const double *)values + k;
            for (size_t j = 0; j < cols; j++) {
                p += cli_format_g(p, row[j], precision);
                *p++ = ' ';
            }
        }
        k += cols;
        if (cols > 0) {
            p--;
        }
        *p++ = '\n';
        r->sink.used += (size_t)(p - out);
    }
    return r->sink.failed ? CLI_EX_IOERR : 0;
}

/* ------------------------------------------------------------------------- */
/* The computation */

/* Mask strides for a tensor of the given shape: the mask's dimensions align
 * with the tensor's last ones; extent-1 and missing dimensions broadcast. */
static int mask_strides_for(const run *r, int ndim, const size_t *shape, int64_t *strides)
{
    if (r->mask_ndim > ndim) {
        cli_error("%s: --mask has %d dimensions, the input %d", r->options->mask_path, r->mask_ndim, ndim);
        return CLI_EX_DATAERR;
    }
    int64_t stride = 1;
    for (int i = 0; i < ndim; i++) {
        strides[i] = 0;
    }
    for (int m = r->mask_ndim - 1, i = ndim - 1; m >= 0; m--, i--) {
        size_t extent = r->mask_shape[m];
        if (extent != shape[i] && extent != 1) {
            cli_error("%s: --mask extent %zu does not match the input's %zu (dimension %d); expected the same or 1",
                      r->options->mask_path, extent, shape[i], i);
            return CLI_EX_DATAERR;
        }
        strides[i] = extent == 1 ? 0 : stride;
        stride *= (int64_t)extent;
    }
    return 0;
}

/* Computes in `dtype`, from src to dst (which may be the same buffer). */
static int execute(run *r, const void *src, softmax_dtype dtype, void *dst, int ndim, const size_t *shape, int axis,
                   const double *mask, const int64_t *mask_strides)
{
    softmax_desc desc;
    softmax_desc_init(&desc, r->options->log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, dtype, 1);
    desc.ndim = ndim;
    desc.axis = axis;
    memcpy(desc.shape, shape, (size_t)ndim * sizeof shape[0]);
    desc.scale = r->scale;
    desc.flags = r->options->fast ? SOFTMAX_FLAG_FAST : 0;
    if (mask != NULL) {
        desc.mask = mask;
        desc.mask_dtype = SOFTMAX_DTYPE_F64;
        desc.mask_strides = mask_strides;
    }
    int status = softmax_execute(&desc, src, NULL, dst);
    return status == SOFTMAX_OK ? 0 : library_failure(r, status);
}

/* Text rows: rows x cols values, computed in place. In whole-matrix mode
 * (--axis 0) they are every row of the input. */
static int draw_rows(run *r, softmax_dtype dtype, const void *x, size_t rows, size_t cols, uint64_t first_row,
                     const uint64_t *lines)
{
    char pass[128];
    describe_pass(r, pass, sizeof pass);
    cli_draw_request request = {.options = r->options,
                                .scale = r->scale,
                                .temperature = pass_temperature(r->options, r->pass),
                                .sink = &r->sink,
                                .plot = &r->plot,
                                .pass_description = pass,
                                .row_labels = r->row_labels,
                                .input_name = r->input_name,
                                .lines = lines,
                                .plotted = &r->plotted,
                                .statistics_heading = &r->statistics_heading,
                                .labels = r->plot.labels};
    return cli_stats_and_samples(&request, dtype, x, rows, cols, first_row);
}

static int text_rows(void *context, void *values, size_t rows, size_t cols, uint64_t first_row, const uint64_t *lines,
                     const char *const *labels)
{
    run *r = context;
    r->row_labels = labels;
    r->text_rows_read = first_row + rows;
    if (r->draws) {
        return draw_rows(r, r->compute, values, rows, cols, first_row, lines);
    }
    size_t shape[2] = {rows, cols};
    int64_t strides[2];
    const double *mask = NULL;
    if (r->mask != NULL) {
        /* A one-row mask applies to every row; a matrix row by row. */
        size_t mask_rows = r->mask_ndim == 2 ? r->mask_shape[0] : 1;
        size_t mask_cols = r->mask_shape[r->mask_ndim - 1];
        if (mask_cols != cols && mask_cols != 1) {
            cli_error("%s: --mask rows have %zu values, rows %llu.. of the input %zu", r->options->mask_path, mask_cols,
                      (unsigned long long)first_row + 1, cols);
            return CLI_EX_DATAERR;
        }
        if (mask_rows > 1 && first_row + rows > mask_rows) {
            cli_error("%s: --mask has %zu rows, the input at least %llu", r->options->mask_path, mask_rows,
                      (unsigned long long)(first_row + rows));
            return CLI_EX_DATAERR;
        }
        mask = r->mask + (mask_rows > 1 ? first_row * mask_cols : 0);
        strides[0] = mask_rows > 1 ? (int64_t)mask_cols : 0;
        strides[1] = mask_cols > 1 ? 1 : 0;
    }
    int status = execute(r, values, r->compute, values, 2, shape, r->text_axis_columns ? 0 : 1, mask, strides);
    if (status != 0) {
        return status;
    }
    if (r->npy_output) {
        if (r->cols_written != 0 && r->cols_written != cols) {
            cli_error("%s: ragged rows: row %llu has %zu values, earlier rows %zu; a .npy output needs a matrix",
                      r->input_name, (unsigned long long)first_row + 1, cols, r->cols_written);
            return CLI_EX_DATAERR;
        }
        r->cols_written = cols;
        r->rows_written += rows;
    }
    if (r->text_axis_columns && r->options->plot) {
        /* A column's bars are its rows: the header's names (of the columns)
         * title the plots, and the bars are numbered, or named by the rows'
         * labels (--keep-labels). */
        char **header = r->plot.labels;
        size_t header_length = r->plot.n_labels;
        r->plot.labels = labels != NULL ? (char **)labels : NULL;
        r->plot.n_labels = labels != NULL ? rows : 0;
        for (size_t j = 0; j < cols && status == 0; j++) {
            r->plot_label = header != NULL && j < header_length ? header[j] : NULL;
            status = plot_line(r, values, j, cols, rows, "column", j);
        }
        r->plot.labels = header;
        r->plot.n_labels = header_length;
        return status;
    }
    return emit_rows(r, values, rows, cols, first_row);
}

static int text_idle(void *context)
{
    run *r = context;
    return cli_sink_flush(&r->sink);
}

static int text_labels(void *context, char **labels, size_t n)
{
    run *r = context;
    if (r->plot.labels == NULL) {
        r->plot.labels = labels;
        r->plot.n_labels = n;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        free(labels[i]);
    }
    free(labels);
    return 0;
}

static void pass_heading(run *r)
{
    if (r->passes > 1 && !r->options->plot && !r->npy_output) {
        char pass[128];
        describe_pass(r, pass, sizeof pass);
        cli_sink_write(&r->sink, "# ", 2);
        cli_sink_write(&r->sink, pass, strlen(pass));
        cli_sink_putc(&r->sink, '\n');
    }
}

/* Standard input read more than once (one pass per temperature) is first
 * copied to an anonymous temporary file. */
static int spool_to_temporary(int fd, const char *name, const char *prefix, size_t prefix_length, int *spooled)
{
    char path[] = "/tmp/softmax-stdin.XXXXXX";
    const char *directory = getenv("TMPDIR");
    char custom[4096];
    char *template = path;
    if (directory != NULL && *directory != '\0' && strlen(directory) < sizeof custom - 32) {
        snprintf(custom, sizeof custom, "%s/softmax-stdin.XXXXXX", directory);
        template = custom;
    }
    int out = mkstemp(template);
    if (out < 0) {
        cli_error("cannot create a temporary file for %s: %s", name, strerror(errno));
        return CLI_EX_OSERR;
    }
    unlink(template);
    char buffer[1 << 16];
    memcpy(buffer, prefix, prefix_length);
    size_t pending = prefix_length;
    for (;;) {
        ssize_t got = pending ? (ssize_t)pending : read(fd, buffer, sizeof buffer);
        pending = 0;
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            cli_error("%s: read failed: %s", name, strerror(errno));
            close(out);
            return CLI_EX_NOINPUT;
        }
        if (got == 0) {
            break;
        }
        for (ssize_t done = 0; done < got;) {
            ssize_t put = write(out, buffer + done, (size_t)(got - done));
            if (put < 0 && errno == EINTR) {
                continue;
            }
            if (put < 0) {
                cli_error("cannot spool %s to a temporary file: %s", name, strerror(errno));
                close(out);
                return CLI_EX_OSERR;
            }
            done += put;
        }
    }
    if (lseek(out, 0, SEEK_SET) != 0) {
        cli_error("cannot rewind the temporary copy of %s: %s", name, strerror(errno));
        close(out);
        return CLI_EX_OSERR;
    }
    *spooled = out;
    return 0;
}

static int run_npy(run *r, const char *path, int fd);
static int peek_npy_magic(int fd, const char *name, char *prefix, size_t *prefix_length, int *is_npy);

static int run_text(run *r, const char *path)
{
    const cli_options *o = r->options;
    int is_stdin = path == NULL || strcmp(path, "-") == 0;
    r->input_name = is_stdin ? "standard input" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY);
    if (fd < 0) {
        cli_error("%s: cannot open: %s", path, strerror(errno));
        return CLI_EX_NOINPUT;
    }
    int status = 0;
    int owned = !is_stdin;
    const char *prefix = is_stdin ? r->stdin_prefix : NULL;
    size_t prefix_length = is_stdin ? r->stdin_prefix_length : 0;
    /* A pipe or device named on the command line (`softmax <(...)`, a FIFO)
     * is told apart as standard input is, by its first bytes: a .npy array
     * there would otherwise be read as text ("found a NUL byte"). */
    char peeked[sizeof cli_npy_magic];
    struct stat info;
    if (!is_stdin && fstat(fd, &info) == 0 && !S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode)) {
        int is_npy;
        status = peek_npy_magic(fd, path, peeked, &prefix_length, &is_npy);
        prefix = peeked;
        if (status == 0 && is_npy && r->npy_output) {
            /* The output was set up for rows of text (its shape written
             * last) before this input could be looked at. */
            cli_error("%s: a .npy array in a pipe, with a .npy output: give it on standard input, or as a regular "
                      "file",
                      path);
            status = CLI_EX_USAGE;
        }
        if (status == 0 && is_npy) {
            int spooled;
            status = spool_to_temporary(fd, path, prefix, prefix_length, &spooled);
            close(fd);
            return status != 0 ? status : run_npy(r, path, spooled);
        }
        if (status != 0) {
            close(fd);
            return status;
        }
    }
    if (r->passes > 1 && (prefix_length > 0 || lseek(fd, 0, SEEK_CUR) < 0)) {
        int spooled;
        status = spool_to_temporary(fd, r->input_name, prefix, prefix_length, &spooled);
        prefix_length = 0;
        if (status != 0) {
            if (owned) {
                close(fd);
            }
            return status;
        }
        if (owned) {
            close(fd);
        }
        fd = spooled;
        owned = 1;
    }
    off_t start = r->passes > 1 ? lseek(fd, 0, SEEK_CUR) : 0;
    int axis = o->axis;
    if (axis != -1 && axis != 1 && axis != 0 && axis != -2) {
        cli_error("--axis %d: text input is a matrix (rows x columns); expected 0 (columns) or 1 / -1 (rows)", axis);
        status = CLI_EX_USAGE;
    }
    r->text_axis_columns = axis == 0 || axis == -2;
    if (status == 0 && r->text_axis_columns && r->draws) {
        cli_error("--axis %d: sampling and row statistics work along rows", axis);
        status = CLI_EX_USAGE;
    }
    cli_text_callbacks callbacks = {
        .context = r,
        .dtype = r->compute,
        .whole_matrix = r->text_axis_columns,
        .equal_rows = r->text_axis_columns || r->npy_output,
        .equal_rows_reason = r->text_axis_columns ? "--axis 0 needs a matrix (every row the same length)"
                                                  : "a .npy output needs a matrix (every row the same length)",
        .header = o->header,
        .delimiter = o->delimiter,
        .columns = o->n_columns > 0 ? o->columns : NULL,
        .n_columns = (size_t)o->n_columns,
        .max_line = o->max_line,
        .summary = &r->summary,
        .prefix = prefix,
        .prefix_length = prefix_length,
        .keep_labels = o->keep_labels,
        .rows = text_rows,
        .idle = text_idle,
        .labels = text_labels};
    for (r->pass = 0; status == 0 && r->pass < r->passes; r->pass++) {
        if (r->pass > 0) {
            callbacks.summary = NULL;
            callbacks.prefix_length = 0;
        }
        r->scale = pass_scale(o, r->pass);
        if (r->pass > 0 && lseek(fd, start, SEEK_SET) < 0) {
            cli_error("%s: cannot read it again for the next temperature: %s", r->input_name, strerror(errno));
            status = CLI_EX_NOINPUT;
            break;
        }
        pass_heading(r);
        r->text_rows_read = 0;
        status = cli_read_text(fd, r->input_name, &callbacks);
        r->row_labels = NULL; /* freed with the reader */
        /* A mask of several rows is the input's, row by row: one with rows
         * left over was written for some other input (rows beyond it were
         * refused as they came, in text_rows). */
        if (status == 0 && r->mask != NULL && r->mask_ndim == 2 && r->mask_shape[0] > 1 &&
            r->text_rows_read != r->mask_shape[0]) {
            cli_error("%s: --mask has %zu rows, %s %llu", o->mask_path, r->mask_shape[0], r->input_name,
                      (unsigned long long)r->text_rows_read);
            status = CLI_EX_DATAERR;
        }
    }
    if (owned) {
        close(fd);
    }
    return status;
}

/* ------------------------------------------------------------------------- */
/* .npy input */

/* A buffer for a whole array or a large chunk of one. Along a non-last
 * axis the whole array is one library call, and faulting its pages in 4 KiB
 * at a time cost as much as the computation: transparent huge pages are
 * asked for where the system offers them on request (Linux's "madvise"
 * setting). */
static void *large_buffer(size_t size)
{
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    if (size >= 4 * huge) {
        void *buffer = NULL;
        if (posix_memalign(&buffer, huge, (size + huge - 1) / huge * huge) != 0) {
            return NULL;
        }
        madvise(buffer, (size + huge - 1) / huge * huge, MADV_HUGEPAGE);
        return buffer;
    }
#endif
    return malloc(size);
}

/* An array with no element, as text: each pass's heading, then one empty
 * line per row of the last axis (rows of no value: a (3, 0) array is three
 * empty lines, as numpy.savetxt writes it), or with --plot one plot with a
 * title and no bar per distribution of no value along the axis. */
static int empty_array_as_text(run *r, size_t rows, size_t empty_distributions, int along_rows)
{
    int status = 0;
    for (r->pass = 0; status == 0 && r->pass < r->passes; r->pass++) {
        r->scale = pass_scale(r->options, r->pass);
        pass_heading(r);
        if (r->options->plot) {
            for (size_t i = 0; i < empty_distributions && status == 0; i++) {
                status = plot_line(r, NULL, 0, 1, 0, along_rows ? "row" : "line", i);
            }
        } else {
            for (size_t i = 0; i < rows && !r->sink.failed; i++) {
                cli_sink_putc(&r->sink, '\n');
            }
        }
        if (status == 0) {
            status = cli_sink_flush(&r->sink);
        }
    }
    if (status == 0 && rows > 0 && !r->options->plot) {
        cli_error("note: %s: the last extent of the array is 0: each of its %zu rows is an empty line, which text "
                  "input skips as a blank line (-o FILE.npy keeps the shape)",
                  r->input_name, rows);
    }
    return status;
}

/* fd >= 0: the array is in that file (standard input spooled), named path. */
static int run_npy(run *r, const char *path, int fd)
{
    const cli_options *o = r->options;
    r->input_name = path;
    /* An array's rows have no label fields (those of an earlier text input
     * were freed with its reader). */
    r->row_labels = NULL;
    struct stat info;
    if (fd < 0 && stat(path, &info) == 0 && !S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode)) {
        /* A FIFO or device named *.npy: copied to a temporary file to map,
         * as standard input is. */
        int in = open(path, O_RDONLY);
        if (in < 0) {
            cli_error("%s: cannot open: %s", path, strerror(errno));
            return CLI_EX_NOINPUT;
        }
        int spool_status = spool_to_temporary(in, path, "", 0, &fd);
        close(in);
        if (spool_status != 0) {
            return spool_status;
        }
    }
    cli_npy npy;
    int status = fd >= 0 ? cli_npy_open_fd(fd, path, &npy) : cli_npy_open(path, &npy);
    if (status != 0) {
        return status;
    }
    if (o->dtype == 0) {
        /* A .npy output has the file's type (float16 computed in f32 and
         * rounded once); text is printed from the f32 or f64 result. */
        r->compute = npy.dtype == SOFTMAX_DTYPE_F64                    ? SOFTMAX_DTYPE_F64
                     : npy.dtype == SOFTMAX_DTYPE_F16 && r->npy_output ? SOFTMAX_DTYPE_F16
                                                                       : SOFTMAX_DTYPE_F32;
    }
    int axis = o->axis < 0 ? o->axis + npy.ndim : o->axis;
    if (axis < 0 || axis >= npy.ndim) {
        cli_error("--axis %d: %s has %d dimension%s; expected an axis in [%d, %d]", o->axis, path, npy.ndim,
                  npy.ndim == 1 ? "" : "s", -npy.ndim, npy.ndim - 1);
        cli_npy_close(&npy);
        return CLI_EX_USAGE;
    }
    size_t outer = 1;
    size_t inner = 1;
    for (int i = 0; i < axis; i++) {
        outer *= npy.shape[i];
    }
    for (int i = axis + 1; i < npy.ndim; i++) {
        inner *= npy.shape[i];
    }
    size_t n = npy.shape[axis];
    size_t line = n * inner; /* elements per outer index */
    size_t last = npy.shape[npy.ndim - 1];
    /* Rows of the last axis, the lines of a text output: every index of
     * the other axes, also when the last extent is 0 (rows of no value). */
    size_t rows_of_last = 1;
    for (int i = 0; i < npy.ndim - 1; i++) {
        rows_of_last *= npy.shape[i];
    }
    r->array_rows += npy.count > 0 ? rows_of_last : 0;
    if (r->draws) {
        if (axis != npy.ndim - 1) {
            cli_error("--axis %d: sampling and row statistics work along the last axis of %s", o->axis, path);
            cli_npy_close(&npy);
            return CLI_EX_USAGE;
        }
        /* Straight from the mapping, in the file's type, a block of rows at
         * a time. */
        size_t total = rows_of_last;
        size_t block = last == 0 ? (size_t)1 << 16 : CHUNK_ELEMENTS / last;
        block = block == 0 ? 1 : block > total ? total : block;
        /* Data in another byte order or misaligned is copied a block at a
         * time into host order. */
        void *copy = NULL;
        if (!npy.direct && total > 0 && last > 0) {
            copy = malloc(block * last * cli_dtype_size(npy.dtype));
            if (copy == NULL) {
                cli_error("out of memory");
                status = CLI_EX_OSERR;
            }
        }
        for (r->pass = 0; status == 0 && r->pass < r->passes; r->pass++) {
            r->scale = pass_scale(o, r->pass);
            pass_heading(r);
            for (size_t first = 0; status == 0 && first < total; first += block) {
                size_t count = total - first < block ? total - first : block;
                const void *rows = (const unsigned char *)npy.data + first * last * cli_dtype_size(npy.dtype);
                if (copy != NULL) {
                    cli_npy_read(&npy, first * last, count * last, copy);
                    rows = copy;
                }
                status = draw_rows(r, npy.dtype, rows, count, last, first, NULL);
                if (status == 0) {
                    status = cli_sink_flush(&r->sink);
                }
            }
        }
        free(copy);
        int closed = cli_npy_close(&npy);
        return status != 0 ? status : closed;
    }

    int64_t strides[SOFTMAX_MAX_NDIM];
    if (r->mask != NULL) {
        status = mask_strides_for(r, npy.ndim, npy.shape, strides);
    }
    if (status == 0 && r->npy_output) {
        size_t shape[SOFTMAX_MAX_NDIM + 1];
        int ndim = 0;
        if (r->passes > 1) {
            shape[ndim++] = (size_t)r->passes;
        }
        for (int i = 0; i < npy.ndim; i++) {
            shape[ndim++] = npy.shape[i];
        }
        if (npy.scalar) {
            ndim--; /* a 0-d array stays 0-d */
        }
        char header[CLI_NPY_HEADER_ROOM];
        size_t length = cli_npy_header(header, r->compute, ndim, shape, 0);
        if (length == 0) {
            cli_error("%s: the output array would be larger than numpy can load", r->sink.target);
            status = CLI_EX_DATAERR;
        }
        cli_sink_write(&r->sink, header, length);
    }
    size_t chunk_outer = line == 0 || r->mask != NULL ? outer : CHUNK_ELEMENTS / line;
    chunk_outer = chunk_outer == 0 ? 1 : chunk_outer > outer ? outer : chunk_outer;
    /* The file's type is converted to the working type (f16 computes in
     * f32, anything with f64 in f64), computed in place, and rounded to the
     * output type if that is narrower. */
    size_t in_size = cli_dtype_size(npy.dtype);
    softmax_dtype work =
        npy.dtype == SOFTMAX_DTYPE_F64 || r->compute == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
    void *work_buffer = NULL;
    void *chunk = NULL;
    void *host_order = NULL; /* the file's values in host order, when they cannot be used in place */
    if (status == 0 && npy.count > 0) {
        work_buffer = large_buffer(chunk_outer * line * cli_dtype_size(work));
        chunk = work == r->compute ? work_buffer : malloc(chunk_outer * line * cli_dtype_size(r->compute));
        host_order = npy.direct ? NULL : npy.dtype == work ? work_buffer : malloc(chunk_outer * line * in_size);
        if (work_buffer == NULL || chunk == NULL || (!npy.direct && host_order == NULL)) {
            cli_error("out of memory");
            status = CLI_EX_OSERR;
        }
    }
    if (status == 0 && npy.count == 0 && !r->npy_output) {
        status = empty_array_as_text(r, rows_of_last, n == 0 ? outer * inner : 0, axis == npy.ndim - 1);
    }
    for (r->pass = 0; status == 0 && r->pass < r->passes && npy.count > 0; r->pass++) {
        r->scale = pass_scale(o, r->pass);
        pass_heading(r);
        for (size_t o0 = 0; status == 0 && o0 < outer; o0 += chunk_outer) {
            size_t count = outer - o0 < chunk_outer ? outer - o0 : chunk_outer;
            size_t shape[3] = {count, n, inner};
            const void *src = (const unsigned char *)npy.data + o0 * line * in_size;
            if (!npy.direct) {
                cli_npy_read(&npy, o0 * line, count * line, host_order);
                src = host_order;
            }
            if (npy.dtype != work) {
                softmax_convert(work_buffer, work, src, npy.dtype, count * line);
                src = work_buffer;
            }
            if (r->mask != NULL) {
                /* With a mask the whole array is one call: the mask's
                 * broadcast strides need the array's own dimensions. */
                status = execute(r, src, work, work_buffer, npy.ndim, npy.shape, axis, r->mask, strides);
            } else {
                /* Along the last axis the view is plain rows: the 2-d form
                 * takes the library's contiguous-rows path. */
                status = inner == 1 ? execute(r, src, work, work_buffer, 2, shape, 1, NULL, NULL)
                                    : execute(r, src, work, work_buffer, 3, shape, 1, NULL, NULL);
            }
            if (status == 0 && chunk != work_buffer) {
                softmax_convert(chunk, r->compute, work_buffer, work, count * line);
            }
            if (status != 0) {
                break;
            }
            if (o->plot && !r->npy_output) {
                for (size_t a = 0; a < count && status == 0; a++) {
                    for (size_t b = 0; b < inner && status == 0; b++) {
                        status = plot_line(r, chunk, a * line + b, inner, n, axis == npy.ndim - 1 ? "row" : "line",
                                           (o0 + a) * inner + b);
                    }
                }
            } else {
                status = emit_rows(r, chunk, count * line / last, last, o0 * line / last);
            }
            if (status == 0 && !r->npy_output) {
                status = cli_sink_flush(&r->sink);
            }
        }
    }
    if (chunk != work_buffer) {
        free(chunk);
    }
    if (host_order != work_buffer) {
        free(host_order);
    }
    free(work_buffer);
    int closed = cli_npy_close(&npy);
    return status != 0 ? status : closed;
}

/* ------------------------------------------------------------------------- */
/* --mask FILE */

static int mask_rows_callback(void *context, void *values, size_t rows, size_t cols, uint64_t first_row,
                              const uint64_t *lines, const char *const *labels)
{
    run *r = context;
    (void)first_row;
    (void)lines;
    (void)labels;
    size_t have = r->mask_ndim == 0 ? 0 : r->mask_shape[0] * r->mask_shape[1];
    double *grown = realloc(r->mask, (have + rows * cols) * sizeof *grown);
    if (grown == NULL) {
        cli_error("out of memory");
        return CLI_EX_OSERR;
    }
    memcpy(grown + have, values, rows * cols * sizeof *grown);
    r->mask = grown;
    r->mask_ndim = 2;
    r->mask_shape[0] = (have / (cols ? cols : 1)) + rows;
    r->mask_shape[1] = cols;
    return 0;
}

static int load_mask(run *r, const char *path)
{
    if (cli_is_npy_input(path)) {
        cli_npy npy;
        int status = cli_npy_open(path, &npy);
        if (status != 0) {
            return status;
        }
        r->mask = malloc((npy.count ? npy.count : 1) * sizeof(double));
        if (r->mask == NULL) {
            cli_npy_close(&npy);
            cli_error("out of memory");
            return CLI_EX_OSERR;
        }
        const void *values = npy.data;
        void *copy = NULL;
        if (!npy.direct && npy.count > 0) {
            copy = malloc(npy.count * cli_dtype_size(npy.dtype));
            if (copy == NULL) {
                cli_npy_close(&npy);
                cli_error("out of memory");
                return CLI_EX_OSERR;
            }
            cli_npy_read(&npy, 0, npy.count, copy);
            values = copy;
        }
        softmax_convert(r->mask, SOFTMAX_DTYPE_F64, values, npy.dtype, npy.count);
        free(copy);
        r->mask_ndim = npy.ndim;
        memcpy(r->mask_shape, npy.shape, sizeof npy.shape);
        return cli_npy_close(&npy);
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        cli_error("%s: cannot open the mask: %s", path, strerror(errno));
        return CLI_EX_NOINPUT;
    }
    cli_text_summary summary = {0, 0, 0};
    cli_text_callbacks callbacks = {.context = r,
                                    .dtype = SOFTMAX_DTYPE_F64,
                                    .whole_matrix = 1,
                                    .equal_rows = 1,
                                    .equal_rows_reason = "a --mask is a matrix (every row the same length)",
                                    .delimiter = r->options->delimiter,
                                    .max_line = r->options->max_line,
                                    .summary = &summary,
                                    .rows = mask_rows_callback};
    int status = cli_read_text(fd, path, &callbacks);
    close(fd);
    if (status == 0 && summary.rows == 0) {
        cli_error("%s: the --mask has no row of numbers", path);
        status = CLI_EX_DATAERR;
    }
    if (status == 0 && r->mask_shape[0] == 1) {
        r->mask_ndim = 1;
        r->mask_shape[0] = r->mask_shape[1];
    }
    return status;
}

/* ------------------------------------------------------------------------- */

static int unavailable(const char *option)
{
    cli_error("%s: not available in this build: libsoftmax %s has no sampler or row statistics", option,
              softmax_version());
    return CLI_EX_UNAVAILABLE;
}

/* Which of the sampling and statistics options this build cannot do. */
static int check_sampler(const cli_options *options)
{
    if (cli_sampler_available()) {
        return 0;
    }
    if (options->sample_count > 0) {
        return unavailable("--sample");
    }
    if (options->entropy) {
        return unavailable("--entropy");
    }
    if (options->logsumexp) {
        return unavailable("--logsumexp");
    }
    if (options->argmax) {
        return unavailable("--argmax");
    }
    return 0;
}

/* Reads the first bytes of fd (standard input, or a pipe named as a FILE)
 * into prefix (room: the magic's length) while they match the .npy magic
 * string (text stops it at its first byte); the text reader then starts with
 * them. *is_npy: the whole magic string came. */
static int peek_npy_magic(int fd, const char *name, char *prefix, size_t *prefix_length, int *is_npy)
{
    *is_npy = 0;
    while (*prefix_length < sizeof cli_npy_magic) {
        /* One byte at a time: a text input never has more than its first
         * byte taken here, so its lines reach the reader as they would
         * without the test. */
        ssize_t got = read(fd, prefix + *prefix_length, 1);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            cli_error("%s: read failed: %s", name, strerror(errno));
            return CLI_EX_NOINPUT;
        }
        if (got == 0) {
            return 0;
        }
        *prefix_length += (size_t)got;
        if (memcmp(prefix, cli_npy_magic, *prefix_length) != 0) {
            return 0;
        }
    }
    *is_npy = 1;
    return 0;
}

static int peek_stdin(run *r, int *is_npy)
{
    return peek_npy_magic(STDIN_FILENO, "standard input", r->stdin_prefix, &r->stdin_prefix_length, is_npy);
}

static int finish_streamed_npy(run *r)
{
    size_t shape[3];
    int ndim = 0;
    if (r->passes > 1) {
        shape[ndim++] = (size_t)r->passes;
    }
    shape[ndim++] = (size_t)(r->rows_written / (uint64_t)r->passes);
    shape[ndim++] = r->cols_written;
    char header[CLI_NPY_HEADER_ROOM];
    size_t length = cli_npy_header(header, r->compute, ndim, shape, STREAMED_NPY_HEADER);
    int status = cli_sink_flush(&r->sink);
    if (status == 0 && (length == 0 || pwrite(r->sink.fd, header, length, r->npy_header_offset) != (ssize_t)length)) {
        cli_error("%s: cannot write the .npy header (the output must be a regular file): %s", r->sink.target,
                  strerror(errno));
        status = CLI_EX_IOERR;
    }
    return status;
}

/* -o naming the pipe an input comes through (-o /dev/stdin, a FIFO given
 * as both): each result written would be read again as input, without end.
 * (A terminal may be both: `softmax /dev/tty -o /dev/tty` is a dialogue.) */
static int output_is_an_input_pipe(const cli_options *options)
{
    struct stat output;
    if (options->output_path == NULL || stat(options->output_path, &output) != 0 || !S_ISFIFO(output.st_mode)) {
        return 0;
    }
    /* the inputs (standard input if there is none), then the mask */
    const int n = options->n_inputs > 0 ? options->n_inputs : 1;
    for (int i = 0; i <= n; i++) {
        const char *path = i == n ? options->mask_path : options->n_inputs > 0 ? options->inputs[i] : "-";
        struct stat input;
        if (path == NULL || (strcmp(path, "-") == 0 ? fstat(STDIN_FILENO, &input) : stat(path, &input)) != 0) {
            continue;
        }
        if (input.st_dev == output.st_dev && input.st_ino == output.st_ino) {
            cli_error("-o %s: it is the pipe that %s is read from: every result would be read again as input",
                      options->output_path, strcmp(path, "-") == 0 ? "standard input" : path);
            return CLI_EX_USAGE;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_options options;
    int status = cli_parse_options(argc, argv, &options);
    if (status >= 0) {
        return status;
    }
    status = check_sampler(&options);
    if (status != 0) {
        return status;
    }
    if (options.threads > 0 && softmax_set_num_threads(options.threads) != SOFTMAX_OK) {
        cli_error("--threads %d: %s", options.threads, softmax_last_error());
        return CLI_EX_USAGE;
    }

    /* A .npy input truncated while mapped ends the run (npy.c): without a
     * temporary output file left behind. */
    cli_npy_on_fault(cli_sink_remove_temp_for_signal);
    run r;
    memset(&r, 0, sizeof r);
    r.options = &options;
    r.passes = options.n_temperatures > 0 ? options.n_temperatures : 1;
    r.compute = options.dtype ? options.dtype : SOFTMAX_DTYPE_F64;
    r.plot.columns = cli_terminal_columns();
    r.plot.precision = options.precision;
    r.npy_output = options.output_path != NULL && cli_is_npy_path(options.output_path);
    r.draws = options.sample_count > 0 || options.entropy || options.logsumexp || options.argmax;

    status = output_is_an_input_pipe(&options);
    if (status != 0) {
        return status;
    }
    if (options.mask_path != NULL) {
        status = load_mask(&r, options.mask_path);
        if (status != 0) {
            return status;
        }
    }
    status = options.output_path ? cli_sink_open_file(&r.sink, options.output_path) : cli_sink_open_stdout(&r.sink);
    if (status != 0) {
        free(r.mask);
        return status;
    }
    /* Standard input is text or a .npy array, told apart by its first bytes. */
    int reads_stdin = options.n_inputs == 0;
    for (int i = 0; i < options.n_inputs; i++) {
        reads_stdin |= strcmp(options.inputs[i], "-") == 0;
    }
    int stdin_is_npy = 0;
    if (reads_stdin) {
        if (isatty(STDIN_FILENO)) {
            cli_error("reading rows of numbers from the terminal (standard input); end with Ctrl-D, or see "
                      "'softmax --help'");
        }
        status = peek_stdin(&r, &stdin_is_npy);
    }
    int any_text = 0;
    for (int i = 0; i < options.n_inputs; i++) {
        int is_stdin = strcmp(options.inputs[i], "-") == 0;
        int is_npy = is_stdin ? stdin_is_npy : cli_is_npy_input(options.inputs[i]);
        any_text |= !is_npy;
    }
    if (options.n_inputs == 0) {
        any_text = !stdin_is_npy;
    }
    if (status == 0 && r.npy_output && any_text) {
        /* The shape is known at the end; the header goes in last, which
         * needs a file to seek in: said now, not after the whole input. */
        struct stat info;
        /* -o /dev/stdout on a file: the header goes where the output starts */
        r.npy_header_offset = r.sink.temp_path != NULL ? 0 : lseek(r.sink.fd, 0, SEEK_CUR);
        int flags = fcntl(r.sink.fd, F_GETFL);
        if (fstat(r.sink.fd, &info) != 0 || !S_ISREG(info.st_mode) || r.npy_header_offset < 0) {
            cli_error("%s: a .npy output from text must be a regular file (its shape is written last); write text, "
                      "or a file and copy it",
                      options.output_path);
            status = CLI_EX_CANTCREAT;
        } else if (flags < 0 || (flags & O_APPEND) != 0) {
            cli_error("%s: a .npy output from text cannot be appended to a file (its shape is written last, at its "
                      "start)",
                      options.output_path);
            status = CLI_EX_CANTCREAT;
        }
        char zeros[STREAMED_NPY_HEADER] = {0};
        cli_sink_write(&r.sink, zeros, sizeof zeros);
    }
    for (int i = 0; status == 0 && i < (options.n_inputs == 0 ? 1 : options.n_inputs); i++) {
        const char *path = options.n_inputs == 0 ? "-" : options.inputs[i];
        if (strcmp(path, "-") == 0 && stdin_is_npy) {
            int spooled;
            status =
                spool_to_temporary(STDIN_FILENO, "standard input", r.stdin_prefix, r.stdin_prefix_length, &spooled);
            if (status == 0) {
                status = run_npy(&r, "standard input", spooled);
            }
        } else if (strcmp(path, "-") != 0 && cli_is_npy_input(path)) {
            status = run_npy(&r, path, -1);
        } else {
            status = run_text(&r, strcmp(path, "-") == 0 ? NULL : path);
        }
        r.stdin_prefix_length = strcmp(path, "-") == 0 ? 0 : r.stdin_prefix_length;
    }
    if (status == 0 && r.summary.rows + r.array_rows == 0 && options.require_input) {
        cli_error("%s: empty input: no row of numbers (--require-input)",
                  options.n_inputs > 1                                           ? "the inputs"
                  : options.n_inputs == 1 && strcmp(options.inputs[0], "-") != 0 ? options.inputs[0]
                                                                                 : "standard input");
        status = CLI_EX_DATAERR;
    }
    if (status == 0 && r.summary.rows > 0 && r.summary.max_cols == 1 && options.axis != 0 && options.axis != -2 &&
        !r.draws) {
        cli_error("note: every row has one number, so every result is %s; to normalize down the column, use --axis 0",
                  options.log ? "0" : "1");
    }
    if (status == 0 && r.npy_output && any_text) {
        status = finish_streamed_npy(&r);
    }
    if (status == 0) {
        status = cli_sink_commit(&r.sink);
    } else {
        cli_sink_abandon(&r.sink);
    }
    if (r.plot.labels != NULL) {
        for (size_t i = 0; i < r.plot.n_labels; i++) {
            free(r.plot.labels[i]);
        }
        free(r.plot.labels);
    }
    free(r.scratch);
    free(r.mask);
    return status;
}
