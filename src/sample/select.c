/*
 * select.c -- selection without sorting: the k-th largest of an array by
 * quickselect (expected O(n)), the sampler's top-k filter.
 */
#include "sample_internal.h"

static void swap_floats(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* Median of three as pivot: sorted, increasing, or many-equal inputs stay
 * O(n) on average instead of degrading to quadratic. */
static float median_of_three(float a, float b, float c)
{
    if (a > b)
        swap_floats(&a, &b);
    if (b > c)
        swap_floats(&b, &c);
    return a > b ? a : b;
}

float softmax_kth_largest(float *values, size_t n, size_t k)
{
    /* The answer is the element of rank k - 1 in decreasing order. The
     * three-way partition makes runs of equal values (ties are common in
     * logits rounded to bf16) cost one pass, not a recursion each. */
    size_t lo = 0, hi = n, wanted = k - 1;
    for (;;) {
        if (hi - lo <= 1)
            return values[lo];
        float pivot = median_of_three(values[lo], values[lo + (hi - lo) / 2], values[hi - 1]);
        /* [lo, greater) > pivot, [greater, i) == pivot, [smaller, hi) < pivot */
        size_t greater = lo, i = lo, smaller = hi;
        while (i < smaller) {
            if (values[i] > pivot) {
                swap_floats(&values[i++], &values[greater++]);
            } else if (values[i] < pivot) {
                swap_floats(&values[i], &values[--smaller]);
            } else {
                i++;
            }
        }
        if (wanted < greater) {
            hi = greater;
        } else if (wanted < smaller) {
            return pivot;
        } else {
            lo = smaller;
        }
    }
}
