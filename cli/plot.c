/*
 * plot.c -- a distribution as horizontal bars of Unicode block characters,
 * one line per entry, with the value printed beside each bar: the seed
 * chapter's bar charts, readable in any terminal and over SSH.
 *
 * Bars are drawn in eighths of a character cell (U+2588 full block down to
 * U+258F one-eighth block), on an absolute scale where the full width is
 * probability 1, so that plots of the same row at different temperatures
 * compare by eye.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

#define FALLBACK_COLUMNS 80

int cli_terminal_columns(void)
{
    const char *columns = getenv("COLUMNS");
    if (columns != NULL && *columns != '\0') {
        char *stop;
        long value = strtol(columns, &stop, 10);
        if (*stop == '\0' && value > 0 && value < 10000) {
            return (int)value;
        }
    }
    struct winsize size;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
        return size.ws_col;
    }
    return FALLBACK_COLUMNS;
}

/* UTF-8 of the partial blocks, indexed by the eighths of a cell they fill:
 * U+258F is one eighth, ..., U+2589 seven eighths; U+2588 is a full cell. */
static const char *const eighth_blocks[8] = {"", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589"};
static const char full_block[] = "\u2588";

/* Terminal cells of a code point: 0 for combining marks and other
 * zero-width characters, 2 for East Asian wide and fullwidth characters and
 * emoji, 1 otherwise (what wcwidth says in a UTF-8 locale, without
 * depending on the locale). */
static int code_point_width(uint32_t c)
{
    static const uint32_t zero[][2] = {
        {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x0610, 0x061a}, {0x064b, 0x065f},   {0x0e31, 0x0e31},
        {0x0e34, 0x0e3a}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x200b, 0x200f}, {0x202a, 0x202e},   {0x2060, 0x2064},
        {0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f}, {0xfeff, 0xfeff}, {0x1f3fb, 0x1f3ff}, {0xe0000, 0xe0fff}};
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f},   {0x231a, 0x231b},   {0x2329, 0x232a},   {0x23e9, 0x23ec},   {0x23f0, 0x23f3},
        {0x25fd, 0x25fe},   {0x2614, 0x2615},   {0x2648, 0x2653},   {0x267f, 0x267f},   {0x2693, 0x2693},
        {0x26a1, 0x26a1},   {0x26aa, 0x26ab},   {0x26bd, 0x26be},   {0x26c4, 0x26c5},   {0x26ce, 0x26ce},
        {0x26d4, 0x26d4},   {0x26ea, 0x26ea},   {0x26f2, 0x26f5},   {0x26fa, 0x26fd},   {0x2705, 0x2705},
        {0x270a, 0x270b},   {0x2728, 0x2728},   {0x274c, 0x274c},   {0x2753, 0x2755},   {0x2757, 0x2757},
        {0x2795, 0x2797},   {0x27b0, 0x27b0},   {0x27bf, 0x27bf},   {0x2b1b, 0x2b1c},   {0x2b50, 0x2b50},
        {0x2e80, 0x303e},   {0x3041, 0x33ff},   {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xa000, 0xa4cf},
        {0xa960, 0xa97f},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},   {0xfe10, 0xfe19},   {0xfe30, 0xfe6f},
        {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x16fe0, 0x16fe4}, {0x17000, 0x18cff}, {0x1b000, 0x1b2ff},
        {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf}, {0x1f18e, 0x1f18e}, {0x1f191, 0x1f19a}, {0x1f200, 0x1f251},
        {0x1f300, 0x1f64f}, {0x1f680, 0x1f6ff}, {0x1f7e0, 0x1f7eb}, {0x1f90c, 0x1f9ff}, {0x1fa70, 0x1faff},
        {0x20000, 0x2fffd}, {0x30000, 0x3fffd}};
    if (c == 0x200d) {
        return 0;
    }
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        if (c >= zero[i][0] && c <= zero[i][1]) {
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        if (c >= wide[i][0] && c <= wide[i][1]) {
            return 2;
        }
    }
    return 1;
}

/* Number of terminal cells a UTF-8 string takes. */
static size_t display_width(const char *text)
{
    size_t width = 0;
    size_t length = strlen(text);
    for (size_t i = 0; i < length;) {
        uint32_t c;
        size_t n = cli_utf8_sequence((const unsigned char *)text + i, length - i, &c);
        width += n == 0 ? 1 : (size_t)code_point_width(c);
        i += n == 0 ? 1 : n;
    }
    return width;
}

/* A label made safe and short: control characters and bytes that are not
 * UTF-8 become '?', and a label wider than max_width cells is cut at a
 * character boundary and ends in U+2026 (an ellipsis, one cell). */
static void label_of(const cli_plot *plot, size_t i, size_t max_width, char *out, size_t size)
{
    char number[32];
    const char *text = number;
    if (plot->labels != NULL && i < plot->n_labels) {
        text = plot->labels[i];
    } else {
        snprintf(number, sizeof number, "%zu", i);
    }
    size_t length = strlen(text);
    size_t width = 0;
    size_t n = 0;
    int cut = display_width(text) > max_width;
    size_t room_width = cut ? (max_width > 0 ? max_width - 1 : 0) : max_width;
    for (size_t k = 0; k < length;) {
        uint32_t c = 0;
        size_t sequence = cli_utf8_sequence((const unsigned char *)text + k, length - k, &c);
        int printable = sequence != 0 && c >= 0x20 && c != 0x7f && !(c >= 0x80 && c < 0xa0);
        int cells = printable ? code_point_width(c) : 1;
        size_t bytes = printable ? sequence : 1;
        if (width + (size_t)cells > room_width || n + bytes + 4 > size) {
            break;
        }
        if (printable) {
            memcpy(out + n, text + k, sequence);
        } else {
            out[n] = '?';
        }
        n += bytes;
        width += (size_t)cells;
        k += sequence != 0 ? sequence : 1;
    }
    if (cut && max_width > 0) {
        memcpy(out + n, "\u2026", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* The widest label, capped: the labels take at most a third of the width. */
static size_t label_column(const cli_plot *plot, size_t n)
{
    size_t cap = plot->columns / 3 > 1 ? (size_t)plot->columns / 3 : 1;
    size_t widest = 1;
    for (size_t i = 0; i < n; i++) {
        size_t width;
        if (plot->labels != NULL && i < plot->n_labels) {
            width = display_width(plot->labels[i]);
        } else {
            char number[32];
            width = (size_t)snprintf(number, sizeof number, "%zu", i);
        }
        widest = width > widest ? width : widest;
    }
    return widest < cap ? widest : cap;
}

/* Lines are assembled here and written cut to the terminal's width: a
 * narrow terminal gets shortened lines, never wrapped ones. */
typedef struct line_buffer {
    char text[1 << 16];
    size_t length;
} line_buffer;

static void line_add(line_buffer *line, const char *text, size_t length)
{
    if (length > sizeof line->text - line->length) {
        length = sizeof line->text - line->length;
    }
    memcpy(line->text + line->length, text, length);
    line->length += length;
}

static void line_pad(line_buffer *line, size_t count)
{
    for (size_t k = 0; k < count && line->length < sizeof line->text; k++) {
        line->text[line->length++] = ' ';
    }
}

static void line_emit(cli_sink *sink, const cli_plot *plot, line_buffer *line)
{
    size_t width = 0;
    size_t i = 0;
    while (i < line->length) {
        uint32_t c = 0;
        size_t n = cli_utf8_sequence((const unsigned char *)line->text + i, line->length - i, &c);
        size_t cells = n == 0 ? 1 : (size_t)code_point_width(c);
        if (width + cells > (size_t)plot->columns) {
            break;
        }
        width += cells;
        i += n == 0 ? 1 : n;
    }
    /* no trailing blanks */
    while (i > 0 && line->text[i - 1] == ' ') {
        i--;
    }
    cli_sink_write(sink, line->text, i);
    cli_sink_putc(sink, '\n');
    line->length = 0;
}

/* One bar of `width` cells for a value in [0, 1], padded with spaces. */
static void draw_bar(line_buffer *line, double p, long width)
{
    long eighths = 0;
    if (p > 0) {
        eighths = (long)((p > 1 ? 1 : p) * (double)width * 8.0 + 0.5);
    }
    long full = eighths / 8;
    for (long k = 0; k < full; k++) {
        line_add(line, full_block, sizeof full_block - 1);
    }
    long used = full;
    if (eighths % 8 != 0) {
        const char *partial = eighth_blocks[eighths % 8];
        line_add(line, partial, strlen(partial));
        used++;
    }
    line_pad(line, used < width ? (size_t)(width - used) : 0);
}

void cli_plot_samples(cli_sink *sink, const cli_plot *plot, const char *title, const double *probability,
                      const double *frequency, const int64_t *counts, size_t n)
{
    char label[256];
    char value[48];
    char sampled[80];
    size_t label_width = label_column(plot, n);
    size_t value_width = (size_t)plot->precision + 5;
    size_t sampled_width = 1;
    for (size_t i = 0; i < n; i++) {
        size_t length = cli_format_g(value, probability[i], plot->precision);
        value_width = length > value_width ? length : value_width;
        length = (size_t)snprintf(sampled, sizeof sampled, "%.3f (%lld)", frequency[i], (long long)counts[i]);
        sampled_width = length > sampled_width ? length : sampled_width;
    }
    line_buffer line = {.length = 0};
    if (title != NULL) {
        line_add(&line, title, strlen(title));
        line_emit(sink, plot, &line);
    }
    /* label, " ", bar, " ", value, " | ", bar, " ", sampled */
    long bar_width = ((long)plot->columns - (long)label_width - (long)value_width - (long)sampled_width - 6) / 2;
    if (bar_width < 1) {
        bar_width = 1;
    }
    const char *left = "softmax";
    const char *right = "sampled frequency (count)";
    line_pad(&line, label_width + 1);
    line_add(&line, left, strlen(left));
    line_pad(&line, (size_t)bar_width + 1 + value_width > strlen(left)
                        ? (size_t)bar_width + 1 + value_width - strlen(left)
                        : 0);
    line_add(&line, " | ", 3);
    line_add(&line, right, strlen(right));
    line_emit(sink, plot, &line);
    for (size_t i = 0; i < n; i++) {
        label_of(plot, i, label_width, label, sizeof label);
        line_pad(&line, label_width - display_width(label));
        line_add(&line, label, strlen(label));
        line_add(&line, " ", 1);
        draw_bar(&line, probability[i], bar_width);
        line_add(&line, " ", 1);
        size_t length = cli_format_g(value, probability[i], plot->precision);
        line_add(&line, value, length);
        line_pad(&line, value_width - length);
        line_add(&line, " | ", 3);
        draw_bar(&line, frequency[i], bar_width);
        line_add(&line, " ", 1);
        length = (size_t)snprintf(sampled, sizeof sampled, "%.3f (%lld)", frequency[i], (long long)counts[i]);
        line_add(&line, sampled, length);
        line_emit(sink, plot, &line);
    }
}

void cli_plot_row(cli_sink *sink, const cli_plot *plot, const char *title, const double *probability,
                  const double *shown, size_t n)
{
    char label[256];
    char value[48];
    size_t label_width = label_column(plot, n);
    /* Room for the usual widest value ("4.24816e-18" at precision 6) even if
     * this row has none, so that the bars of successive plots (a temperature
     * sweep) share one scale. */
    size_t value_width = (size_t)plot->precision + 5;
    for (size_t i = 0; i < n; i++) {
        size_t length = cli_format_g(value, shown[i], plot->precision);
        value_width = length > value_width ? length : value_width;
    }
    line_buffer line = {.length = 0};
    if (title != NULL) {
        line_add(&line, title, strlen(title));
        line_emit(sink, plot, &line);
    }
    /* label, " ", bar, " ", value */
    long bar_width = (long)plot->columns - (long)label_width - (long)value_width - 2;
    if (bar_width < 1) {
        bar_width = 1;
    }
    for (size_t i = 0; i < n; i++) {
        label_of(plot, i, label_width, label, sizeof label);
        line_pad(&line, label_width - display_width(label));
        line_add(&line, label, strlen(label));
        line_add(&line, " ", 1);
        draw_bar(&line, probability[i], bar_width);
        line_add(&line, " ", 1);
        size_t length = cli_format_g(value, shown[i], plot->precision);
        line_add(&line, value, length);
        line_emit(sink, plot, &line);
    }
}
