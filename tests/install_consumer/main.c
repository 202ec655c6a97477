/*
 * Uses an installed libsoftmax through its public header only: computes
 * softmax_f64 of {1, 2, 3} and compares it with exp(x_i) / sum_j exp(x_j)
 * evaluated in long double. Prints OK and returns 0, or says what is wrong and
 * returns 1.
 */
#include <math.h>
#include <stdio.h>

#include <softmax.h>

#define N 3

int main(int argc, char **argv)
{
    const char *program = argc > 0 ? argv[0] : "consumer";
    const double x[N] = {1.0, 2.0, 3.0};
    double y[N];

    int status = softmax_f64(x, y, 1, N, 1.0);
    if (status != SOFTMAX_OK) {
        fprintf(stderr, "%s: softmax_f64 failed: %s (%s)\n", program, softmax_strerror(status), softmax_last_error());
        return 1;
    }

    long double sum = 0.0L;
    for (int i = 0; i < N; i++) {
        sum += expl((long double)x[i]);
    }
    int failures = 0;
    for (int i = 0; i < N; i++) {
        double expected = (double)(expl((long double)x[i]) / sum);
        double relative_error = fabs(y[i] - expected) / expected;
        if (!(relative_error <= 1e-15)) {
            fprintf(stderr, "%s: y[%d] = %.17g, expected %.17g (relative error %.3g > 1e-15)\n", program, i, y[i],
                    expected, relative_error);
            failures++;
        }
    }
    if (failures != 0) {
        return 1;
    }
    printf("OK: %s: libsoftmax %s, softmax_f64({1, 2, 3}) = {%.17g, %.17g, %.17g}\n", program, softmax_version(), y[0],
           y[1], y[2]);
    return 0;
}
