/*
 * seeds -- the worked examples of the seed documents, computed by libsoftmax.
 *
 * The seeds describe norm_exp_softmax(x, scale) / logit_scaled_softmax(x, scale)
 * (softmax of scale * x along the last axis, batched) and a chapter on softmax
 * (scaling, temperature, stability, gradients). This program recomputes their
 * examples through the public header only, prints them, and compares them with
 * the values the seeds quote. Exit status: 0 if every call succeeded and every
 * quoted value matched, 1 otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <softmax.h>

#define MAX_N 16
#define LABEL_WIDTH 24
#define COLUMN_WIDTH 12

static int mismatches;

/* Every library call goes through CHECK: on failure, say which call failed and
 * why, and stop. */
#define CHECK(call) check_status((call), #call)

static void check_status(int status, const char *call)
{
    if (status != SOFTMAX_OK) {
        fprintf(stderr, "error: %s failed: %s (%s)\n", call, softmax_strerror(status), softmax_last_error());
        exit(EXIT_FAILURE);
    }
}

/* printf of one number, except that NaN and infinities print the same on every
 * platform ("nan", not "-nan"). */
static void format_number(char *buffer, size_t size, const char *format, double value)
{
    if (isnan(value)) {
        snprintf(buffer, size, "nan");
    } else if (isinf(value)) {
        snprintf(buffer, size, value > 0 ? "inf" : "-inf");
    } else {
        snprintf(buffer, size, format, value);
    }
}

static void print_values(const char *label, const double *values, size_t n, const char *format)
{
    char cell[64];
    printf("    %-*s", LABEL_WIDTH, label);
    for (size_t i = 0; i < n; i++) {
        format_number(cell, sizeof cell, format, values[i]);
        printf("%*s", COLUMN_WIDTH, cell);
    }
    putchar('\n');
}

static void print_values_f32(const char *label, const float *values, size_t n, const char *format)
{
    double widened[MAX_N];
    for (size_t i = 0; i < n; i++) {
        widened[i] = values[i];
    }
    print_values(label, widened, n, format);
}

static void print_caption(int number, const char *caption)
{
    printf("\n%d. %s\n", number, caption);
}

/* Prints the values a seed quotes (as written there) under ours, and checks
 * that ours round to them: |ours - quoted| <= half a unit of the quoted last
 * digit. */
static void compare_with_seed(const char *label, const float *ours, const char *const *quoted, size_t n)
{
    printf("    %-*s", LABEL_WIDTH, label);
    for (size_t i = 0; i < n; i++) {
        printf("%*s", COLUMN_WIDTH, quoted[i]);
    }
    int all_match = 1;
    for (size_t i = 0; i < n; i++) {
        const char *point = strchr(quoted[i], '.');
        const char *exponent = strpbrk(quoted[i], "eE");
        int decimals = 0;
        if (point != NULL) {
            decimals = (int)((exponent != NULL ? exponent : point + strlen(point)) - point - 1);
        }
        double half_unit = 0.5 * pow(10.0, (exponent != NULL ? atoi(exponent + 1) : 0) - decimals);
        if (!(fabs((double)ours[i] - strtod(quoted[i], NULL)) <= half_unit * (1.0 + 1e-9))) {
            all_match = 0;
        }
    }
    printf("   %s\n", all_match ? "(matches)" : "(MISMATCH)");
    mismatches += !all_match;
}

/* ------------------------------------------------------------------------ */

static void example_scale(void)
{
    const float x[3] = {1.0f, 2.0f, 3.0f};
    const float scales[3] = {1.0f, 0.5f, 2.0f};
    float y[3];
    char label[64];

    print_caption(1, "norm_exp_softmax(x, scale) = softmax(scale * x), x = [1, 2, 3]      (softmax_f32)");
    for (size_t k = 0; k < 3; k++) {
        CHECK(softmax_f32(x, y, 1, 3, scales[k]));
        snprintf(label, sizeof label, "scale %g", (double)scales[k]);
        print_values_f32(label, y, 3, "%.6f");
    }
    printf("    (a larger scale makes the distribution peakier, a smaller one flatter)\n");
}

static void example_batch(void)
{
    const float x[2][3] = {{1.0f, 2.0f, 3.0f}, {1.0f, 3.0f, 2.0f}};
    float y[2][3];

    print_caption(2, "Batched, scale 2: x = [[1, 2, 3], [1, 3, 2]], one softmax per row  (softmax_f32, rows = 2)");
    CHECK(softmax_f32(&x[0][0], &y[0][0], 2, 3, 2.0f));
    print_values_f32("row 0", y[0], 3, "%.6f");
    print_values_f32("row 1", y[1], 3, "%.6f");
}

static void example_not_scale_invariant(void)
{
    const float x[3] = {10.0f, 20.0f, 30.0f};
    const char *const quoted_large[3] = {"2.0611e-09", "4.5398e-05", "9.9995e-01"};
    const char *const quoted_small[3] = {"0.3006", "0.3322", "0.3672"};
    float y[3];

    print_caption(3, "Softmax is not invariant under scaling: x = [10, 20, 30]");
    CHECK(softmax_f32(x, y, 1, 3, 1.0f));
    print_values_f32("scale 1 (sharp)", y, 3, "%.4e");
    compare_with_seed("  the chapter says", y, quoted_large, 3);
    CHECK(softmax_f32(x, y, 1, 3, 0.01f));
    print_values_f32("scale 0.01 (dampened)", y, 3, "%.4f");
    compare_with_seed("  the chapter says", y, quoted_small, 3);
}

static void example_wikipedia(void)
{
    const float x[3] = {1.0f, 2.0f, 8.0f};
    const char *const quoted[3] = {"0.001", "0.002", "0.997"};
    float y[3];

    print_caption(4, "The softmax of (1, 2, 8) puts almost all the mass on the maximum");
    CHECK(softmax_f32(x, y, 1, 3, 1.0f));
    print_values_f32("softmax(1, 2, 8)", y, 3, "%.6f");
    compare_with_seed("  Wikipedia says", y, quoted, 3);
}

static double entropy_nats(const float *p, size_t n)
{
    double h = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] > 0.0f) {
            h -= (double)p[i] * log((double)p[i]);
        }
    }
    return h;
}

/* x_i >= x_j implies p_i >= p_j for every pair. */
static int weak_order_preserved(const float *x, const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (x[i] >= x[j] && !(p[i] >= p[j])) {
                return 0;
            }
        }
    }
    return 1;
}

static void example_temperature(void)
{
    enum { N = 5 };
    const float x[N] = {2.0f, 1.0f, 3.0f, 5.0f, 4.0f};
    const float temperatures[] = {0.0f, 0.1f, 0.5f, 1.0f, 2.0f, 5.0f, 10.0f};
    float p[N];
    char label[64];
    char cell[64];
    int order_kept = 1;

    print_caption(5, "Temperature: softmax(x / T) = softmax_f32(x, scale = 1/T), x = [2, 1, 3, 5, 4]");
    printf("    %-*s", LABEL_WIDTH, "T");
    for (size_t i = 0; i < N; i++) {
        snprintf(cell, sizeof cell, "p[%zu]", i);
        printf("%*s", COLUMN_WIDTH, cell);
    }
    printf("%*s\n", COLUMN_WIDTH + 4, "entropy");
    for (size_t k = 0; k < sizeof temperatures / sizeof temperatures[0]; k++) {
        float t = temperatures[k];
        /* T = 0 is greedy decoding: scale = +inf, which the library defines as
         * one-hot at the arg max. */
        float scale = t == 0.0f ? INFINITY : 1.0f / t;
        CHECK(softmax_f32(x, p, 1, N, scale));
        if (t == 0.0f) {
            snprintf(label, sizeof label, "0 (greedy, scale inf)");
        } else {
            snprintf(label, sizeof label, "%g", (double)t);
        }
        printf("    %-*s", LABEL_WIDTH, label);
        for (size_t i = 0; i < N; i++) {
            format_number(cell, sizeof cell, "%.6f", p[i]);
            printf("%*s", COLUMN_WIDTH, cell);
        }
        printf("%*.4f\n", COLUMN_WIDTH + 4, entropy_nats(p, N));
        order_kept &= weak_order_preserved(x, p, N);
    }
    printf("    (entropy in nats; the maximum, uniform, is ln 5 = %.4f)\n", log(5.0));
    printf("    x_i >= x_j implies p_i >= p_j at every T: %s\n", order_kept ? "yes" : "NO");
    mismatches += !order_kept;
}

static void example_log_softmax(void)
{
    const float x[3] = {1.0f, 2.0f, 3.0f};
    float logy[3];

    print_caption(6, "Log-softmax: x - logsumexp(x), x = [1, 2, 3]      (log_softmax_f32)");
    CHECK(log_softmax_f32(x, logy, 1, 3, 1.0f));
    print_values_f32("log_softmax(x)", logy, 3, "%.6f");
    printf("    (logsumexp([1, 2, 3]) = %.6f)\n", (double)(x[0] - logy[0]));
}

/* The seeds' formula as written: exp(x) / sum(exp(x)), in float. */
static void naive_softmax_f32(const float *x, float *exp_x, float *y, size_t n)
{
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        exp_x[i] = expf(x[i]);
        sum += exp_x[i];
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = exp_x[i] / sum;
    }
}

static void print_stability_table(const float *x, size_t n, const char *format)
{
    float exp_x[MAX_N], naive[MAX_N], ours[MAX_N];
    char exp_cell[64], naive_cell[64], ours_cell[64];

    naive_softmax_f32(x, exp_x, naive, n);
    CHECK(softmax_f32(x, ours, 1, n, 1.0f));
    printf("    %8s %14s %18s %14s\n", "x", "expf(x)", "naive softmax", "softmax_f32");
    for (size_t i = 0; i < n; i++) {
        format_number(exp_cell, sizeof exp_cell, "%.4e", exp_x[i]);
        format_number(naive_cell, sizeof naive_cell, "%.6f", naive[i]);
        format_number(ours_cell, sizeof ours_cell, format, ours[i]);
        printf("    %8g %14s %18s %14s\n", (double)x[i], exp_cell, naive_cell, ours_cell);
    }
}

static void example_stability(void)
{
    const float x_thousands[3] = {1000.0f, 1001.0f, 1002.0f};
    float x_nineties[11];
    for (size_t i = 0; i < 11; i++) {
        x_nineties[i] = 90.0f + (float)i;
    }

    print_caption(7, "Stability: the naive exp(x) / sum(exp(x)) overflows in float32 once x > 88.72");
    printf("    x = [1000, 1001, 1002]: the same distribution as [1, 2, 3]\n");
    print_stability_table(x_thousands, 3, "%.6f");
    printf("\n    x = [90, 91, ..., 100]\n");
    print_stability_table(x_nineties, 11, "%.4e");
    printf("    (libsoftmax evaluates exp(scale * (x - max x)): no overflow for any finite input)\n");
}

static void example_masks(void)
{
    const float partly_masked[3] = {1.0f, -INFINITY, 3.0f};
    const float fully_masked[3] = {-INFINITY, -INFINITY, -INFINITY};
    float y[3], exp_x[3], naive[3];

    print_caption(8, "Masks: adding -inf to a logit excludes it");
    CHECK(softmax_f32(partly_masked, y, 1, 3, 1.0f));
    print_values_f32("[1, -inf, 3]", y, 3, "%.6f");
    CHECK(softmax_f32(fully_masked, y, 1, 3, 1.0f));
    print_values_f32("[-inf, -inf, -inf]", y, 3, "%.6f");
    CHECK(log_softmax_f32(fully_masked, y, 1, 3, 1.0f));
    print_values_f32("  its log-softmax", y, 3, "%.6f");
    naive_softmax_f32(fully_masked, exp_x, naive, 3);
    print_values_f32("  naive softmax (0/0)", naive, 3, "%.6f");
    printf("    (a fully masked row gives zeros, never NaN)\n");
}

static void example_gradients(void)
{
    enum { N = 3 };
    const double x[N] = {1.0, 2.0, 3.0};
    const double dy[N] = {0.0, 0.0, 1.0};
    double y[N], dx[N], jacobian[N * N], column[N];
    char label[64];
    double largest_row_sum = 0.0;

    print_caption(9, "Gradients of y = softmax(x), x = [1, 2, 3]      (f64)");
    CHECK(softmax_f64(x, y, 1, N, 1.0));
    print_values("y", y, N, "%.6f");

    printf("    Jacobian dy_i/dx_j = y_i * (delta_ij - y_j)      (softmax_jacobian_f64)\n");
    CHECK(softmax_jacobian_f64(y, N, 1.0, jacobian));
    for (size_t i = 0; i < N; i++) {
        double row_sum = 0.0;
        for (size_t j = 0; j < N; j++) {
            row_sum += jacobian[i * N + j];
        }
        largest_row_sum = fmax(largest_row_sum, fabs(row_sum));
        snprintf(label, sizeof label, "  row %zu", i);
        print_values(label, &jacobian[i * N], N, "%.6f");
    }
    printf("    (symmetric; every row sums to 0: largest |row sum| = %.1e)\n", largest_row_sum);

    printf("    Backward pass dx = J^T dy = y * (dy - <dy, y>), dy = [0, 0, 1]      (softmax_backward_f64)\n");
    CHECK(softmax_backward_f64(y, dy, dx, 1, N, 1.0));
    print_values("  dx", dx, N, "%.6f");
    double largest_difference = 0.0;
    for (size_t j = 0; j < N; j++) {
        column[j] = jacobian[j * N + 2];
        largest_difference = fmax(largest_difference, fabs(dx[j] - column[j]));
    }
    print_values("  column 2 of J", column, N, "%.6f");
    int agree = largest_difference <= 1e-15;
    printf("    (backward pass and Jacobian agree: %s, largest difference %.1e)\n", agree ? "yes" : "NO",
           largest_difference);
    mismatches += !agree;
}

int main(void)
{
    printf("libsoftmax %s -- the worked examples of the seed documents\n", softmax_version());

    example_scale();
    example_batch();
    example_not_scale_invariant();
    example_wikipedia();
    example_temperature();
    example_log_softmax();
    example_stability();
    example_masks();
    example_gradients();

    if (mismatches != 0) {
        printf("\n%d check(s) FAILED (see MISMATCH / NO above)\n", mismatches);
        return EXIT_FAILURE;
    }
    printf("\nAll values agree with the seeds.\n");
    return EXIT_SUCCESS;
}
