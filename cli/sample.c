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

/* --keep-labels: the row's other fields before its results. */
static void write_row_label(const cli_draw_request *request, size_t row)
{
    if (request->row_labels != NULL) {
        const char *label = request->row_labels[row];
        cli_sink_write(request->sink, label, strlen(label));
        cli_sink_putc(request->sink, ' ');
    }
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
        write_row_label(request, i);
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

/* ---- --counts: one multinomial draw instead of N single draws ----
 *
 * The counts of N draws from a distribution p are multinomial(N, p). They
 * are drawn in O(vocab * log N) instead of O(N), by conditional binomials:
 * in index order, n_i ~ Binomial(N - n_0 - ... - n_(i-1), p_i / (p_i + ...
 * + p_last)), the last index getting the rest. Each binomial is exact in
 * distribution (up to floating-point rounding): while its mean is 30 or
 * more, Knuth's beta splitting (TAOCP vol. 2, 3.4.1): with a = 1 + n/2 and
 * b = n + 1 - a, X ~ Beta(a, b) is the a-th smallest of n uniforms, so
 * Binomial(n, p) = Binomial(a - 1, p / X) if X >= p, else a + Binomial(b -
 * 1, (p - X) / (1 - X)); Beta from two gamma variates (Marsaglia and Tsang,
 * 2000), normals by Box-Muller. Then inversion: the smallest k whose
 * cumulative probability reaches a uniform, the pmf by its recurrence.
 * Uniforms come from the library's random stream (softmax_sample_uniform
 * with the seed, the row's stream and a step counter): the counts depend
 * only on the seed, the row's number and its logits. */

typedef struct uniform_source {
    uint64_t seed;
    uint64_t stream;
    uint64_t step;
} uniform_source;

/* Uniform in (0, 1]. */
static double uniform_open(uniform_source *source)
{
    return 1.0 - softmax_sample_uniform(source->seed, source->stream, source->step++);
}

static double standard_normal(uniform_source *source)
{
    double radius = sqrt(-2.0 * log(uniform_open(source)));
    return radius * cos(2.0 * 3.14159265358979323846 * uniform_open(source));
}

/* Gamma(shape, 1) for shape >= 1 (Marsaglia and Tsang). */
static double gamma_variate(uniform_source *source, double shape)
{
    double d = shape - 1.0 / 3.0;
    double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = standard_normal(source);
        double v = 1.0 + c * x;
        if (v <= 0) {
            continue;
        }
        v = v * v * v;
        double u = uniform_open(source);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) {
            return d * v;
        }
    }
}

static uint64_t binomial_by_inversion(uniform_source *source, uint64_t n, double p)
{
    /* p <= 1/2 and n p < 30 here: (1 - p)^n >= e^-60 does not underflow. */
    double u = uniform_open(source);
    double ratio = p / (1.0 - p);
    double f = exp((double)n * log1p(-p));
    double cumulative = f;
    uint64_t k = 0;
    while (u > cumulative && k < n) {
        f *= (double)(n - k) / (double)(k + 1) * ratio;
        k++;
        if (f == 0) {
            break; /* the tail past double precision */
        }
        cumulative += f;
    }
    return k;
}

static uint64_t binomial_variate(uniform_source *source, uint64_t n, double p)
{
    /* The result is offset + sign * Binomial(n, p) as n and p shrink. */
    int64_t offset = 0;
    int64_t sign = 1;
    for (;;) {
        if (p <= 0 || n == 0) {
            return (uint64_t)offset;
        }
        if (p >= 1) {
            return (uint64_t)(offset + sign * (int64_t)n);
        }
        /* Binomial(n, p) = n - Binomial(n, 1 - p): keep p <= 1/2. */
        if (p > 0.5) {
            offset += sign * (int64_t)n;
            sign = -sign;
            p = 1.0 - p;
        }
        if ((double)n * p < 30.0) {
            return (uint64_t)(offset + sign * (int64_t)binomial_by_inversion(source, n, p));
        }
        uint64_t a = 1 + n / 2;
        uint64_t b = n + 1 - a;
        double ga = gamma_variate(source, (double)a);
        double gb = gamma_variate(source, (double)b);
        double x = ga / (ga + gb);
        if (x >= p) {
            n = a - 1;
            p = p / x;
        } else {
            offset += sign * (int64_t)a;
            n = b - 1;
            p = (p - x) / (1.0 - x);
        }
    }
}

typedef struct ranked_logit {
    double x;
    size_t index;
} ranked_logit;

static int by_logit_then_index(const void *a, const void *b)
{
    const ranked_logit *left = a;
    const ranked_logit *right = b;
    if (left->x != right->x) {
        return left->x > right->x ? -1 : 1;
    }
    return left->index < right->index ? -1 : left->index > right->index;
}

/* The distribution the sampler draws a row from, as softmax.h defines it:
 * the weights exp((x_i - max) / T) (uniform among the +inf logits if any,
 * uniform among the finite ones for T = +inf), then top-k, top-p and min-p
 * in that order, renormalised. weight[i] = 0 outside the kept set. Returns
 * the sum of the kept weights, or -1 out of memory. */
static double kept_weights(const softmax_sampler_params *params, const double *x, size_t n, double *weight)
{
    double largest = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        largest = x[i] > largest ? x[i] : largest;
    }
    for (size_t i = 0; i < n; i++) {
        if (largest == INFINITY) {
            weight[i] = x[i] == INFINITY;
        } else if (params->temperature == INFINITY) {
            weight[i] = x[i] > -INFINITY;
        } else {
            /* as the sampler takes it: x_i / T - max / T where x_i - max
             * overflows ({1e308, -1e308} at T = 1e308 is {1, -1}; its
             * difference -inf made the second weight 0, a count of 0) */
            double scaled = x[i] - largest;
            scaled = isfinite(scaled) || !isfinite(x[i]) ? scaled / params->temperature
                                                         : x[i] / params->temperature - largest / params->temperature;
            weight[i] = exp(scaled);
        }
    }
    int rank = (params->top_k > 0 && (uint64_t)params->top_k < n) || params->top_p < 1;
    if (rank) {
        ranked_logit *order = malloc((n ? n : 1) * sizeof *order);
        if (order == NULL) {
            return -1;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (weight[i] > 0) {
                order[m].x = x[i];
                order[m].index = i;
                m++;
            }
        }
        qsort(order, m, sizeof *order, by_logit_then_index);
        if (params->top_k > 0 && (uint64_t)params->top_k < m) {
            for (size_t r = (size_t)params->top_k; r < m; r++) {
                weight[order[r].index] = 0;
            }
            m = (size_t)params->top_k;
        }
        if (params->top_p < 1) {
            double total = 0;
            for (size_t r = 0; r < m; r++) {
                total += weight[order[r].index];
            }
            double cumulative = 0;
            size_t r = 0;
            for (; r < m; r++) {
                cumulative += weight[order[r].index];
                if (cumulative >= params->top_p * total) {
                    r++;
                    break;
                }
            }
            for (; r < m; r++) {
                weight[order[r].index] = 0;
            }
        }
        free(order);
    }
    if (params->min_p > 0) {
        double heaviest = 0;
        for (size_t i = 0; i < n; i++) {
            heaviest = weight[i] > heaviest ? weight[i] : heaviest;
        }
        for (size_t i = 0; i < n; i++) {
            weight[i] = weight[i] >= params->min_p * heaviest ? weight[i] : 0;
        }
    }
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        total += weight[i];
    }
    return total;
}

/* counts[0..n) of `draws` draws from the row's distribution. */
static int multinomial_counts(const softmax_sampler_params *params, softmax_dtype dtype, const void *row, size_t n,
                              uint64_t draws, uint64_t stream, int64_t *counts)
{
    double *x = malloc((n ? n : 1) * 2 * sizeof *x);
    if (x == NULL) {
        cli_error("out of memory");
        return CLI_EX_OSERR;
    }
    double *weight = x + n;
    softmax_convert(x, SOFTMAX_DTYPE_F64, row, dtype, n);
    memset(counts, 0, (n ? n : 1) * sizeof *counts);
    if (params->temperature == 0) {
        /* greedy: the arg max, lowest index first */
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            best = x[i] > x[best] ? i : best;
        }
        counts[best] = (int64_t)draws;
        free(x);
        return 0;
    }
    double remaining_mass = kept_weights(params, x, n, weight);
    if (remaining_mass < 0) {
        free(x);
        cli_error("out of memory");
        return CLI_EX_OSERR;
    }
    uniform_source source = {params->seed, stream, 0};
    uint64_t remaining = draws;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        last = weight[i] > 0 ? i : last;
    }
    for (size_t i = 0; i < n && remaining > 0; i++) {
        if (weight[i] <= 0) {
            continue;
        }
        uint64_t k = i == last ? remaining : binomial_variate(&source, remaining, weight[i] / remaining_mass);
        counts[i] = (int64_t)k;
        remaining -= k;
        remaining_mass -= weight[i];
    }
    free(x);
    return 0;
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
    if (status == 0 && cols == 0 && rows > 0) {
        /* a row of no value (a .npy array whose last extent is 0) */
        cli_error("%s: row %llu: nothing to sample: the row has no value (the array's last extent is 0)",
                  request->input_name, (unsigned long long)first_row + 1);
        status = CLI_EX_DATAERR;
    }
    for (size_t i = 0; status == 0 && i < rows; i++) {
        const void *row = (const unsigned char *)x + i * cols * element;
        uint64_t stream = first_row + i;
        if (tally) {
            memset(counts, 0, (cols ? cols : 1) * sizeof *counts);
        }
        if (!o->plot) {
            write_row_label(request, i);
        }
        /* With --counts (or the plot's frequencies) one real draw checks that
         * the row has a distribution (the sampler's own errors); the counts
         * are then one multinomial draw. */
        long long single_draws = tally ? 1 : o->sample_count;
        for (long long step = 0; step < single_draws; step++) {
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
                status = multinomial_counts(&params, dtype, row, cols, (uint64_t)o->sample_count, stream, counts);
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
            const char *label = request->row_labels != NULL ? request->row_labels[i] : NULL;
            snprintf(title, sizeof title, "row %llu%s%s%s%s%s: %lld samples, seed %llu", (unsigned long long)stream + 1,
                     request->pass_description[0] ? " (" : "", request->pass_description,
                     request->pass_description[0] ? ")" : "", label != NULL ? ": " : "", label != NULL ? label : "",
                     o->sample_count, (unsigned long long)o->seed);
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
