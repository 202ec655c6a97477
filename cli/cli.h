/*
 * cli.h -- the pieces of the `softmax` command, shared between its files.
 *
 * The command uses only the library's public header; everything here is
 * private to the command.
 */
#ifndef SOFTMAX_CLI_H
#define SOFTMAX_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <softmax.h>

/* Exit codes, as in sysexits.h (spelled out so that the values are visible
 * where they are used and in the man page). */
enum {
    CLI_EX_OK = 0,
    CLI_EX_USAGE = 64,       /* bad command line */
    CLI_EX_DATAERR = 65,     /* malformed input data */
    CLI_EX_NOINPUT = 66,     /* an input file cannot be opened or read */
    CLI_EX_UNAVAILABLE = 69, /* an option this build of the library cannot do */
    CLI_EX_SOFTWARE = 70,    /* the library refused a well-formed request */
    CLI_EX_OSERR = 71,       /* out of memory and other system failures */
    CLI_EX_CANTCREAT = 73,   /* the output file cannot be created */
    CLI_EX_IOERR = 74        /* writing the output failed */
};

#define CLI_MAX_TEMPERATURES 64
#define CLI_MAX_COLUMN_RANGES 64

/* Fields first..last (numbered from 1; last SIZE_MAX: to the end). */
typedef struct cli_column_range {
    size_t first;
    size_t last;
} cli_column_range;

typedef struct cli_options {
    double scale;
    double temperatures[CLI_MAX_TEMPERATURES];
    int n_temperatures; /* 0: no --temperature, one block at scale */
    int log;
    int fast; /* --fast: SOFTMAX_FLAG_FAST */
    int axis;
    int axis_given;
    const char *mask_path;
    long long sample_count; /* --sample N; 0 = off */
    uint64_t seed;
    int seed_given;
    long long top_k;
    double top_p;
    double min_p;
    int counts;
    int entropy;
    int logsumexp;
    int argmax;
    char statistics[3]; /* 'e', 'l', 'a' in the order given */
    int n_statistics;
    softmax_dtype dtype; /* 0 = from the input */
    int threads;         /* 0 = the library's default */
    int precision;
    const char *format; /* NULL: %.<precision>g with the fast formatter */
    int plot;
    int header;                                      /* 1: --header (first line is a header), 0: detect */
    char delimiter;                                  /* --delimiter: 0 = blanks and commas */
    cli_column_range columns[CLI_MAX_COLUMN_RANGES]; /* --columns */
    int n_columns;
    size_t max_line;   /* --max-line-length, bytes */
    int require_input; /* --require-input: no row of numbers is an error */
    int keep_labels;   /* --keep-labels: the fields --columns leaves out go before each result */
    const char *output_path;
    char **inputs;
    int n_inputs;
} cli_options;

/* Parses argv into *options. Returns -1 to go on, or an exit code (0 after
 * --help / --version, CLI_EX_USAGE after an error it has reported). */
int cli_parse_options(int argc, char **argv, cli_options *options);

/* Prints an error "softmax: ..." on stderr. */
void cli_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Writes text[0, length) into out (room: size bytes, NUL-terminated) in
 * single quotes, with control characters, quotes, backslashes and bytes
 * that are not UTF-8 written as escapes (\n, \t, \x1b, ...): input text in
 * a message can never drive the terminal. Longer text is cut (at a
 * character boundary) and ends in "...'": room for n plain characters is
 * n + 6 bytes. Returns the length written. */
size_t cli_quote(char *out, size_t size, const char *text, size_t length);
/* The length (1 to 4) of the valid UTF-8 sequence at text, 0 if there is
 * none; *code_point is its value. */
size_t cli_utf8_sequence(const unsigned char *text, size_t length, uint32_t *code_point);

/* ---- numbers: scanning and formatting (number.c) ---- */

/* Converts the text [begin, end) (a whole token) to a double, correctly
 * rounded. Returns 0 on success, -1 if the token is not a number. */
int cli_parse_double(const char *begin, const char *end, double *value);

/* Likewise to a float, correctly rounded from the decimal text (not through a
 * double, which could round twice). */
int cli_parse_float(const char *begin, const char *end, float *value);

/* The fast path alone, on text that need not end at the number: returns 1
 * with *value correctly rounded and *stop after the number, or 0 when the
 * text at begin needs cli_parse_double/float (or is not a number). */
int cli_scan_double(const char *begin, const char *end, double *value, const char **stop);
int cli_scan_float(const char *begin, const char *end, float *value, const char **stop);

/* Writes value as printf("%.<precision>g") would (NaN as "nan", infinities as
 * "inf"/"-inf" on every platform) into out, which has room for 40 bytes.
 * Returns the length. */
size_t cli_format_g(char *out, double value, int precision);

/* ---- output (output.c): a buffered file descriptor, optionally a temporary
 * file renamed over the target on success ---- */

typedef struct cli_sink {
    int fd;
    const char *target;   /* final path, NULL for stdout */
    char *temp_path;      /* temporary file while writing, NULL for stdout */
    char *resolved;       /* the file the target names, through symbolic links */
    int rewrite_in_place; /* copy the result into that file (hard links, owner) */
    char *buffer;
    size_t used;
    size_t capacity;
    int failed;
} cli_sink;

int cli_sink_open_stdout(cli_sink *sink);
/* Creates a temporary file next to path. Returns 0 or an exit code (reported). */
int cli_sink_open_file(cli_sink *sink, const char *path);
void cli_sink_write(cli_sink *sink, const void *data, size_t size);
static inline void cli_sink_putc(cli_sink *sink, char c)
{
    if (sink->used == sink->capacity) {
        cli_sink_write(sink, &c, 1);
        return;
    }
    sink->buffer[sink->used++] = c;
}
/* Room for at least `size` bytes at the end of the buffer (flushes if needed). */
char *cli_sink_reserve(cli_sink *sink, size_t size);
int cli_sink_flush(cli_sink *sink);
/* One number through a --format (checked to hold one conversion of a
 * double), whatever the length of the result. */
void cli_sink_format_number(cli_sink *sink, const char *format, double value);
/* Flushes, and for a file renames the temporary over the target. Returns 0 or
 * an exit code (reported). */
int cli_sink_commit(cli_sink *sink);
/* Drops the temporary file (after an error). */
void cli_sink_abandon(cli_sink *sink);
/* Removes the temporary output file, if any; async-signal-safe (for a
 * handler that then ends the process). */
void cli_sink_remove_temp_for_signal(void);

/* ---- .npy files (npy.c) ---- */

typedef struct cli_npy {
    softmax_dtype dtype;
    int ndim;
    size_t shape[SOFTMAX_MAX_NDIM];
    size_t count;     /* product of the shape */
    const void *data; /* inside the mapping */
    int swap;         /* the file's byte order is not the host's */
    int direct;       /* data is in host order and aligned: usable in place */
    int scalar;       /* a 0-d array (shape ()), read as shape (1,) */
    void *mapping;
    size_t mapping_size;
    /* The mapped file, kept open to tell at the end whether it changed
     * while it was read (another process rewriting it in place). */
    const char *path;
    int fd;
    int64_t size_at_open;
    int64_t mtime_at_open[2]; /* seconds, nanoseconds */
    int watch_slot;           /* its entry for the SIGBUS handler, -1 if none */
} cli_npy;

/* Parses a whole .npy file held in memory (size bytes at file): dtype,
 * shape, count and data (pointing into file; mapping stays NULL). Returns 0
 * or an exit code (reported, naming `path`). */
int cli_npy_parse(const char *path, const void *file, size_t size, cli_npy *npy);
/* Maps a .npy file. Returns 0 or an exit code (reported, naming the file).
 * While it is mapped, a read of the mapping past the file's end (the file
 * truncated by another process: SIGBUS) ends the command with a message
 * naming the file, exit status CLI_EX_NOINPUT, and any temporary output
 * file removed. `path` must outlive the mapping. */
int cli_npy_open(const char *path, cli_npy *npy);
/* What the SIGBUS handler calls before it ends the process (async-signal-
 * safe): cli_sink_remove_temp_for_signal in the command. */
void cli_npy_on_fault(void (*cleanup)(void));
/* The same on an open file (owned by the call), named `path` in messages. */
int cli_npy_open_fd(int fd, const char *path, cli_npy *npy);
/* Unmaps the file. Returns 0, or CLI_EX_NOINPUT (reported) if its size or
 * modification time changed since it was opened: what was read may mix old
 * and new content. */
int cli_npy_close(cli_npy *npy);
/* The 6 bytes every .npy file starts with. */
extern const char cli_npy_magic[6];
/* True if the name ends in .npy. */
int cli_is_npy_path(const char *path);
/* True if the input is a .npy array: by its name, or by its first bytes. */
int cli_is_npy_input(const char *path);
/* Writes a version 1.0 header for the dtype and shape, padded to exactly
 * header_size bytes if header_size is non-zero (it must then be large enough
 * and a multiple of 64), else to the next multiple of 64. Returns the size
 * written into out (room: CLI_NPY_HEADER_ROOM bytes), or 0 if it does not
 * fit or numpy could not load the shape (its non-zero extents exceed 2^63 - 1
 * bytes). */
#define CLI_NPY_HEADER_ROOM 512
size_t cli_npy_header(char *out, softmax_dtype dtype, int ndim, const size_t *shape, size_t header_size);
size_t cli_dtype_size(softmax_dtype dtype);
/* 1 on a little-endian host, 0 on a big-endian one (detected at run time,
 * without relying on compiler macros). */
int cli_host_is_little_endian(void);
/* Reverses the bytes of each of count elements of element_size bytes. */
void cli_swap_bytes(void *data, size_t count, size_t element_size);
/* Copies elements [first, first + count) of the array to dst in the host's
 * byte order (whatever the file's order and alignment). */
void cli_npy_read(const cli_npy *npy, size_t first, size_t count, void *dst);
/* Writes count elements in the host's order as little-endian bytes, as the
 * headers written by cli_npy_header declare ('<'). */
void cli_sink_write_little_endian(cli_sink *sink, const void *values, size_t count, size_t element_size);

/* ---- text input (text.c) ---- */

/* What a read found (for the one-column hint and the empty-input rule). */
typedef struct cli_text_summary {
    uint64_t rows;    /* rows of numbers */
    size_t max_cols;  /* the longest row */
    uint64_t scanned; /* bytes looked at to find and check lines: a few times the input's size at most, however
                         the reads cut it (tests/cli/test_text.c) */
} cli_text_summary;

/* The longest line read by default (bytes, without the newline). */
#define CLI_DEFAULT_MAX_LINE ((size_t)16 << 20)

typedef struct cli_text_callbacks {
    void *context;
    softmax_dtype dtype;             /* parse into F32 or F64 */
    int whole_matrix;                /* keep every row, hand them on once at the end */
    int equal_rows;                  /* every row must have the same length ... */
    const char *equal_rows_reason;   /* ... because of this (for the message) */
    int header;                      /* --header: the first line is a header */
    char delimiter;                  /* 0: blanks and commas; else that character alone (a blank: runs of blanks) */
    const cli_column_range *columns; /* --columns: the fields holding numbers (NULL: all) */
    size_t n_columns;
    size_t max_line;           /* longest line, bytes (0: CLI_DEFAULT_MAX_LINE) */
    cli_text_summary *summary; /* filled at the end if not NULL */
    const char *prefix;        /* bytes already read from fd, to read first */
    size_t prefix_length;
    int keep_labels; /* --keep-labels: hand on each row's fields that are not numbers */
    /* Rows of `cols` values each (computation type, may be changed in place);
     * lines[i] is the input line of row i (for messages); labels[i] the
     * row's other fields joined by spaces (with keep_labels, else NULL).
     * Returns 0 or an exit code (reported). */
    int (*rows)(void *context, void *values, size_t rows, size_t cols, uint64_t first_row, const uint64_t *lines,
                const char *const *labels);
    /* Called before a read that may block: flush the output. */
    int (*idle)(void *context);
    /* The names of a header line (ownership passes on). */
    int (*labels)(void *context, char **labels, size_t n);
    /* Reads as read(2) does (NULL: read(2) itself): the tests and the fuzz
     * target deliver the input a few bytes at a time, as a pipe may. */
    ssize_t (*read)(void *context, int fd, void *buffer, size_t size);
} cli_text_callbacks;

/* Reads rows of numbers from fd until its end. Returns 0 or an exit code
 * (reported, naming `name`, the line and the column). */
int cli_read_text(int fd, const char *name, const cli_text_callbacks *callbacks);

/* ---- plots (plot.c) ---- */

typedef struct cli_plot {
    int columns;   /* terminal width */
    int precision; /* digits of the printed values */
    char **labels; /* optional names of the entries (a CSV header) */
    size_t n_labels;
} cli_plot;

/* The width to draw in: $COLUMNS, else the terminal of stdout, else 80. */
int cli_terminal_columns(void);
/* Draws one distribution: a title line, then one bar per entry. probability[i]
 * is drawn; shown[i] is printed beside it (the same, or the log-probability). */
void cli_plot_row(cli_sink *sink, const cli_plot *plot, const char *title, const double *probability,
                  const double *shown, size_t n);

/* Two bars per entry: the exact probability and the sampled frequency (with
 * the count), side by side. */
void cli_plot_samples(cli_sink *sink, const cli_plot *plot, const char *title, const double *probability,
                      const double *frequency, const int64_t *counts, size_t n);

/* ---- sampling and row statistics (sample.c) ---- */

typedef struct cli_draw_request {
    const cli_options *options;
    double scale;       /* of the pass: S / T (row statistics, plotted probabilities) */
    double temperature; /* of the pass for the sampler: T / S (0 greedy, inf uniform) */
    cli_sink *sink;
    const cli_plot *plot;
    const char *pass_description;  /* "temperature 0.5" or "" (plot titles) */
    const char *const *row_labels; /* each row's label fields (--keep-labels), or NULL */
    const char *input_name;        /* the file (or "standard input"), for messages */
    const uint64_t *lines;         /* the input line of each row (text), or NULL (.npy) */
    int *plotted;                  /* set once a plot has been drawn (blank line between plots) */
    int *statistics_heading;       /* set once the statistics' heading line is written */
    char *const *labels;           /* the input's header (column names), or NULL */
} cli_draw_request;

/* 1 if this build has the library's sampler and row statistics. */
int cli_sampler_available(void);
/* --entropy / --logsumexp / --argmax, or --sample [--counts] [--plot], for
 * rows x cols logits of the given type (contiguous rows). first_row numbers
 * the rows (the random stream of each row). Returns 0 or an exit code. */
int cli_stats_and_samples(const cli_draw_request *request, softmax_dtype dtype, const void *x, size_t rows, size_t cols,
                          uint64_t first_row);

#endif /* SOFTMAX_CLI_H */
