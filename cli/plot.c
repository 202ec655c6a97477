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
#define MIN_BAR_WIDTH 10

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

static size_t label_of(const cli_plot *plot, size_t i, char *out, size_t size)
{
    if (plot->labels != NULL && i < plot->n_labels) {
        snprintf(out, size, "%s", plot->labels[i]);
    } else {
        snprintf(out, size, "%zu", i);
    }
    return strlen(out);
}

/* Number of terminal cells a UTF-8 string takes (one per code point: the
 * labels are expected to be narrow characters). */
static size_t display_width(const char *text)
{
    size_t width = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        width += (*p & 0xC0) != 0x80;
    }
    return width;
}

/* One bar of `width` cells for a value in [0, 1], padded with spaces. */
static void draw_bar(cli_sink *sink, double p, long width)
{
    long eighths = 0;
    if (p > 0) {
        eighths = (long)((p > 1 ? 1 : p) * (double)width * 8.0 + 0.5);
    }
    long full = eighths / 8;
    for (long k = 0; k < full; k++) {
        cli_sink_write(sink, full_block, sizeof full_block - 1);
    }
    long used = full;
    if (eighths % 8 != 0) {
        const char *partial = eighth_blocks[eighths % 8];
        cli_sink_write(sink, partial, strlen(partial));
        used++;
    }
    for (long k = used; k < width; k++) {
        cli_sink_putc(sink, ' ');
    }
}

static void pad(cli_sink *sink, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++) {
        cli_sink_putc(sink, ' ');
    }
}

void cli_plot_samples(cli_sink *sink, const cli_plot *plot, const char *title, const double *probability,
                      const double *frequency, const int64_t *counts, size_t n)
{
    char label[64];
    char value[48];
    char sampled[80];
    size_t label_width = 1;
    size_t value_width = (size_t)plot->precision + 5;
    size_t sampled_width = 1;
    for (size_t i = 0; i < n; i++) {
        label_of(plot, i, label, sizeof label);
        size_t width = display_width(label);
        label_width = width > label_width ? width : label_width;
        size_t length = cli_format_g(value, probability[i], plot->precision);
        value_width = length > value_width ? length : value_width;
        length = (size_t)snprintf(sampled, sizeof sampled, "%.3f (%lld)", frequency[i], (long long)counts[i]);
        sampled_width = length > sampled_width ? length : sampled_width;
    }
    if (title != NULL) {
        cli_sink_write(sink, title, strlen(title));
        cli_sink_putc(sink, '\n');
    }
    /* label, " ", bar, " ", value, " | ", bar, " ", sampled */
    long bar_width = ((long)plot->columns - (long)label_width - (long)value_width - (long)sampled_width - 6) / 2;
    if (bar_width < MIN_BAR_WIDTH) {
        bar_width = MIN_BAR_WIDTH;
    }
    const char *left = "softmax";
    const char *right = "sampled frequency (count)";
    pad(sink, 0, label_width + 1);
    cli_sink_write(sink, left, strlen(left));
    pad(sink, strlen(left), (size_t)bar_width + 1 + value_width);
    cli_sink_write(sink, " | ", 3);
    cli_sink_write(sink, right, strlen(right));
    cli_sink_putc(sink, '\n');
    for (size_t i = 0; i < n; i++) {
        label_of(plot, i, label, sizeof label);
        pad(sink, display_width(label), label_width);
        cli_sink_write(sink, label, strlen(label));
        cli_sink_putc(sink, ' ');
        draw_bar(sink, probability[i], bar_width);
        cli_sink_putc(sink, ' ');
        size_t length = cli_format_g(value, probability[i], plot->precision);
        cli_sink_write(sink, value, length);
        pad(sink, length, value_width);
        cli_sink_write(sink, " | ", 3);
        draw_bar(sink, frequency[i], bar_width);
        cli_sink_putc(sink, ' ');
        length = (size_t)snprintf(sampled, sizeof sampled, "%.3f (%lld)", frequency[i], (long long)counts[i]);
        cli_sink_write(sink, sampled, length);
        cli_sink_putc(sink, '\n');
    }
}

void cli_plot_row(cli_sink *sink, const cli_plot *plot, const char *title, const double *probability,
                  const double *shown, size_t n)
{
    char label[64];
    char value[48];
    size_t label_width = 1;
    /* Room for the usual widest value ("4.24816e-18" at precision 6) even if
     * this row has none, so that the bars of successive plots (a temperature
     * sweep) share one scale. */
    size_t value_width = (size_t)plot->precision + 5;
    for (size_t i = 0; i < n; i++) {
        label_of(plot, i, label, sizeof label);
        size_t width = display_width(label);
        label_width = width > label_width ? width : label_width;
        size_t length = cli_format_g(value, shown[i], plot->precision);
        value_width = length > value_width ? length : value_width;
    }
    if (title != NULL) {
        cli_sink_write(sink, title, strlen(title));
        cli_sink_putc(sink, '\n');
    }
    /* label, " ", bar, " ", value */
    long bar_width = (long)plot->columns - (long)label_width - (long)value_width - 2;
    if (bar_width < MIN_BAR_WIDTH) {
        bar_width = MIN_BAR_WIDTH;
    }
    for (size_t i = 0; i < n; i++) {
        label_of(plot, i, label, sizeof label);
        size_t width = display_width(label);
        for (size_t pad = width; pad < label_width; pad++) {
            cli_sink_putc(sink, ' ');
        }
        cli_sink_write(sink, label, strlen(label));
        cli_sink_putc(sink, ' ');
        draw_bar(sink, probability[i], bar_width);
        cli_sink_putc(sink, ' ');
        size_t length = cli_format_g(value, shown[i], plot->precision);
        cli_sink_write(sink, value, length);
        cli_sink_putc(sink, '\n');
    }
}
