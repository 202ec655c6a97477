/*
 * sample.c -- --sample, --counts, --entropy, --logsumexp and --argmax: the
 * library's sampler (softmax_sample) and row statistics (softmax_row_stats)
 * applied to the raw logits of each row.
 *
 * Draw k of row r uses the library's random stream (seed, stream = r, step =
 * k): the indices drawn for a row depend only on the seed, the row's number
 * and its logits, never on how the input was batched or on the threads.
 *
 * Built only against a libsoftmax whose header declares the sampler
 * (CMake defines SOFTMAX_CLI_HAVE_SAMPLER); otherwise the options say that
 * this build cannot do them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef SOFTMAX_CLI_HAVE_SAMPLER

int cli_sampler_available(void)
{
    return 0;
}

int cli_stats_and_samples(const cli_draw_request *request, softmax_dtype dtype, const void *x, size_t rows, size_t cols,
                          uint64_t first_row)
{
    (void)request;
    (void)dtype;
    (void)x;
    (void)rows;
    (void)cols;
    (void)first_row;
    return CLI_EX_UNAVAILABLE;
}

#else

int cli_sampler_available(void)
{
    return 1;
}

static int sampler_failure(const char *what, int status)
{
    cli_error("%s: libsoftmax: %s (%s)", what, softmax_strerror(status), softmax_last_error());
    return status == SOFTMAX_E_INVALID_PARAMETER ? CLI_EX_USAGE : CLI_EX_SOFTWARE;
}

static void write_value(cli_sink *sink, const cli_options *options, double value)
{
    if (options->format != NULL) {
        cli_sink_format_number(sink, options->format, value);
        return;
    }
    char *slot = cli_sink_reserve(sink, 64);
    sink->used += cli_format_g(slot, value, options->precision);
}

static void write_integer(cli_sink *sink, long long value)
{
    char text[32];
    int length = snprintf(text, sizeof text, "%lld", value);
    cli_sink_write(sink, text, (size_t)length);
}

/* --entropy, --logsumexp, --argmax: one line per row, in that order. */
static int row_statistics(const cli_draw_request *request, softmax_dtype dtype, const void *x, size_t rows, size_t cols)
{
    const cli_options *o = request->options;
    double *logsumexp = o->logsumexp ? malloc(rows * sizeof *logsumexp) : NULL;
    double *entropy = o->entropy ? malloc(rows * sizeof *entropy) : NULL;
    int64_t *argmax = o->argmax ? malloc(rows * sizeof *argmax) : NULL;
    int status = 0;
    if ((o->logsumexp && logsumexp == NULL) || (o->entropy && entropy == NULL) || (o->argmax && argmax == NULL)) {
        cli_error("out of memory");
        status = CLI_EX_OSERR;
    }
    if (status == 0) {
        int library_status = softmax_row_stats(dtype, x, rows, cols, request->scale, logsumexp, entropy, argmax);
        if (library_status != SOFTMAX_OK) {
            status = sampler_failure("--entropy/--logsumexp/--argmax", library_status);
        }
    }
    /* In the order the options were given; named in a heading when the
     * input had one (a CSV with column names). */
    if (status == 0 && request->labels != NULL && !*request->statistics_heading) {
        for (int k = 0; k < o->n_statistics; k++) {
            const char *name = o->statistics[k] == 'e' ? "entropy" : o->statistics[k] == 'l' ? "logsumexp" : "argmax";
            if (k > 0) {
                cli_sink_putc(request->sink, ' ');
            }
            cli_sink_write(request->sink, name, strlen(name));
        }
        cli_sink_putc(request->sink, '\n');
        *request->statistics_heading = 1;
    }
    for (size_t i = 0; status == 0 && i < rows; i++) {
        for (int k = 0; k < o->n_statistics; k++) {
            if (k > 0) {
                cli_sink_putc(request->sink, ' ');
            }
            if (o->statistics[k] == 'e') {
                write_value(request->sink, o, entropy[i]);
            } else if (o->statistics[k] == 'l') {
                write_value(request->sink, o, logsumexp[i]);
            } else {
                write_integer(request->sink, (long long)argmax[i]);
            }
        }
        cli_sink_putc(request->sink, '\n');
    }
    free(logsumexp);
    free(entropy);
    free(argmax);
    return status;
}

/* The softmax of one row (what --plot shows beside the sampled frequencies). */
static int row_probabilities(const cli_draw_request *request, softmax_dtype dtype, const void *row, size_t cols,
                             double *probability)
{
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, cols);
    desc.scale = request->scale;
    int status = softmax_convert(probability, SOFTMAX_DTYPE_F64, row, dtype, cols);
    if (status == SOFTMAX_OK) {
        status = softmax_execute(&desc, probability, NULL, probability);
    }
    return status == SOFTMAX_OK ? 0 : sampler_failure("--plot", status);
}

static int sample_rows(const cli_draw_request *request, softmax_dtype dtype, const void *x, size_t rows, size_t cols,
                       uint64_t first_row)
{
    const cli_options *o = request->options;
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    params.temperature = request->temperature;
    params.top_k = o->top_k;
    params.top_p = o->top_p > 0 ? o->top_p : 1.0;
    params.min_p = o->min_p;
    params.seed = o->seed;
    size_t element = cli_dtype_size(dtype);
    int tally = o->counts || o->plot;
    int64_t *counts = tally ? calloc(cols ? cols : 1, sizeof *counts) : NULL;
    double *probability = o->plot ? malloc((cols ? cols : 1) * 2 * sizeof *probability) : NULL;
    int status = 0;
    if ((tally && counts == NULL) || (o->plot && probability == NULL)) {
        cli_error("out of memory");
        status = CLI_EX_OSERR;
    }
    for (size_t i = 0; status == 0 && i < rows; i++) {
        const void *row = (const unsigned char *)x + i * cols * element;
        uint64_t stream = first_row + i;
        if (tally) {
            memset(counts, 0, (cols ? cols : 1) * sizeof *counts);
        }
        for (long long step = 0; step < o->sample_count; step++) {
            int64_t index;
            int library_status =
                softmax_sample(&params, dtype, row, 1, cols, (uint64_t)step, &stream, &index, NULL, NULL);
            if (library_status == SOFTMAX_E_NO_FINITE_LOGIT) {
                /* Where it is, as for a malformed number: file:line for
                 * text, the row of the array for a .npy. */
                if (request->lines != NULL) {
                    cli_error("%s:%llu: row %llu: nothing to sample: the row has a NaN or no logit above -inf",
                              request->input_name, (unsigned long long)request->lines[i],
                              (unsigned long long)stream + 1);
                } else {
                    cli_error("%s: row %llu: nothing to sample: the row has a NaN or no logit above -inf",
                              request->input_name, (unsigned long long)stream + 1);
                }
                status = CLI_EX_DATAERR;
                break;
            }
            if (library_status != SOFTMAX_OK) {
                status = sampler_failure("--sample", library_status);
                break;
            }
            if (tally) {
                counts[index]++;
            } else {
                if (step > 0) {
                    cli_sink_putc(request->sink, ' ');
                }
                write_integer(request->sink, (long long)index);
            }
        }
        if (status != 0) {
            break;
        }
        if (o->plot) {
            status = row_probabilities(request, dtype, row, cols, probability);
            if (status != 0) {
                break;
            }
            double *frequency = probability + cols;
            for (size_t j = 0; j < cols; j++) {
                frequency[j] = (double)counts[j] / (double)o->sample_count;
            }
            char title[320];
            snprintf(title, sizeof title, "row %llu%s%s%s: %lld samples, seed %llu", (unsigned long long)stream + 1,
                     request->pass_description[0] ? " (" : "", request->pass_description,
                     request->pass_description[0] ? ")" : "", o->sample_count, (unsigned long long)o->seed);
            if (*request->plotted) {
                cli_sink_putc(request->sink, '\n');
            }
            *request->plotted = 1;
            cli_plot_samples(request->sink, request->plot, title, probability, frequency, counts, cols);
        } else if (o->counts) {
            for (size_t j = 0; j < cols; j++) {
                if (j > 0) {
                    cli_sink_putc(request->sink, ' ');
                }
                write_integer(request->sink, (long long)counts[j]);
            }
            cli_sink_putc(request->sink, '\n');
        } else {
            cli_sink_putc(request->sink, '\n');
        }
    }
    free(counts);
    free(probability);
    return status;
}

int cli_stats_and_samples(const cli_draw_request *request, softmax_dtype dtype, const void *x, size_t rows, size_t cols,
                          uint64_t first_row)
{
    const cli_options *o = request->options;
    if (o->entropy || o->logsumexp || o->argmax) {
        return row_statistics(request, dtype, x, rows, cols);
    }
    return sample_rows(request, dtype, x, rows, cols, first_row);
}

#endif
