/*
 * test_registry.c -- the table of kernels of the active code path (run once
 * per path with SOFTMAX_ISA): no slot is NULL, and a slot that holds the
 * portable entry (its capability bit clear) does what the table promises:
 * fast_rows is rows(), the in-place readers decline every line and write
 * nothing; the portable prefix_rows is rows() on each prefix plus the
 * fill and its long_row is rows(); on every path transpose_lines is the
 * transpose, the half
 * conversions are the scalar definitions, split_logits splits z - max z.
 * It calls the table directly, so it links the static library and sees the
 * internal header.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static const softmax_kernels *table_of(softmax_dtype dtype)
{
    int status = SOFTMAX_OK;
    const softmax_kernels *kernels = softmax_dispatch(dtype, "test_registry", &status);
    if (kernels == NULL)
        fail_msg("no kernels: %s", softmax_last_error());
    return kernels;
}

static uint32_t random_state = 12345u;
static double random_unit(void)
{
    random_state = random_state * 1664525u + 1013904223u;
    return (double)(random_state >> 8) / 16777216.0;
}

static void test_no_slot_is_null(void **state)
{
    (void)state;
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64};
    for (int t = 0; t < 2; t++) {
        const softmax_kernels *k = table_of(types[t]);
        const void *slots[] = {
            (const void *)k->rows,
            (const void *)k->fast_rows,
            (const void *)k->prefix_rows,
            (const void *)k->columns,
            (const void *)k->long_row,
            (const void *)k->exp,
            (const void *)k->transpose_lines,
            (const void *)k->excluding_row,
            (const void *)k->reduce_bias,
            (const void *)k->reduced_bias_row,
            (const void *)k->half_line,
            (const void *)k->widen_half,
            (const void *)k->narrow_half,
            (const void *)k->half_row,
            (const void *)k->fast_half_line,
            (const void *)k->split_logits,
            (const void *)k->apply_low_parts,
        };
        for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++)
            if (slots[s] == NULL)
                fail_msg("%s table: slot %zu is NULL", softmax_dtype_name(types[t]), s);
        assert_true(k->column_chunk >= 1);
        assert_int_equal(k->element_size, softmax_dtype_size(types[t]));
        /* lanes: 1 on the portable path, else the vector's elements, of which
         * a column chunk holds a fixed number of vectors; the f64 vector holds
         * half as many as the f32 one (both tables of one path). */
        const softmax_kernels *f32 = table_of(SOFTMAX_DTYPE_F32);
        if (f32->lanes == 1) {
            assert_int_equal(k->lanes, 1);
        } else {
            assert_true(k->lanes == 2 || k->lanes == 4 || k->lanes == 8 || k->lanes == 16);
            assert_int_equal(k->lanes * k->element_size, f32->lanes * f32->element_size);
            assert_int_equal(k->column_chunk % k->lanes, 0);
        }
        /* The f64 kernels have no fast mode and no in-place half or masked rows. */
        if (types[t] == SOFTMAX_DTYPE_F64)
            assert_int_equal(k->capabilities, 0);
    }
}

/* Rows of every regime the tables switch on, f32 and f64. */
static const size_t lengths[] = {1, 3, 8, 16, 17, 100, 257, 1000, 5000};

static void test_fast_rows_without_fast_mode_is_rows(void **state)
{
    (void)state;
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64};
    for (int t = 0; t < 2; t++) {
        const softmax_kernels *k = table_of(types[t]);
        if (k->capabilities & SOFTMAX_KERNELS_FAST_MODE)
            continue;
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
            const size_t n = lengths[l], rows = 3, bytes = rows * n * k->element_size;
            char *x = malloc(bytes), *a = malloc(bytes), *b = malloc(bytes);
            for (size_t i = 0; i < rows * n; i++) {
                if (types[t] == SOFTMAX_DTYPE_F32)
                    ((float *)(void *)x)[i] = (float)(20 * random_unit() - 10);
                else
                    ((double *)(void *)x)[i] = 20 * random_unit() - 10;
            }
            for (int op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX; op++) {
                k->rows((softmax_op)op, x, NULL, a, rows, n, 0.7);
                k->fast_rows((softmax_op)op, x, b, rows, n, 0.7);
                assert_memory_equal(a, b, bytes);
            }
            free(x), free(a), free(b);
        }
    }
}

/* The portable table's entries (the SIMD tables' own prefix_rows and
 * long_row are their kernels', held to the same rule by test_determinism
 * and test_threads). */
static void test_prefix_rows_and_long_row_are_rows(void **state)
{
    (void)state;
    const softmax_kernels *portable[] = {&softmax_ref_kernels_f32, &softmax_ref_kernels_f64};
    for (int t = 0; t < 2; t++) {
        const softmax_kernels *k = portable[t];
        const size_t e = k->element_size;
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
            const size_t n = lengths[l], rows = 4;
            char *x = malloc(rows * n * e), *a = malloc(rows * n * e), *b = malloc(rows * n * e);
            for (size_t i = 0; i < rows * n; i++) {
                if (e == sizeof(float))
                    ((float *)(void *)x)[i] = (float)(8 * random_unit() - 4);
                else
                    ((double *)(void *)x)[i] = 8 * random_unit() - 4;
            }
            const size_t kept[4] = {0, 1, n / 2, n};
            for (int op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX; op++) {
                k->prefix_rows((softmax_op)op, x, NULL, a, rows, n, kept, 1.25);
                for (size_t r = 0; r < rows; r++) {
                    char *expected = b + r * n * e;
                    if (kept[r] > 0)
                        k->rows((softmax_op)op, x + r * n * e, NULL, expected, 1, kept[r], 1.25);
                    const double fill = op == SOFTMAX_OP_LOG_SOFTMAX ? -INFINITY : 0.0;
                    for (size_t j = kept[r]; j < n; j++) {
                        if (e == sizeof(float))
                            ((float *)(void *)expected)[j] = (float)fill;
                        else
                            ((double *)(void *)expected)[j] = fill;
                    }
                }
                assert_memory_equal(a, b, rows * n * e);
            }
            free(x), free(a), free(b);
        }
        /* long_row serves rows of at least long_row_min elements. */
        const size_t n = k->long_row_min == SIZE_MAX ? 5000 : k->long_row_min + 3;
        char *x = malloc(n * e), *a = malloc(n * e), *b = malloc(n * e);
        for (size_t i = 0; i < n; i++) {
            if (e == sizeof(float))
                ((float *)(void *)x)[i] = (float)(8 * random_unit() - 4);
            else
                ((double *)(void *)x)[i] = 8 * random_unit() - 4;
        }
        for (int op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX; op++) {
            k->long_row((softmax_op)op, x, NULL, a, n, 1.25, 2);
            k->rows((softmax_op)op, x, NULL, b, 1, n, 1.25);
            assert_memory_equal(a, b, n * e);
        }
        free(x), free(a), free(b);
    }
}

static void test_transpose_lines(void **state)
{
    (void)state;
    const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64};
    for (int t = 0; t < 2; t++) {
        const softmax_kernels *k = table_of(types[t]);
        const size_t n = 37, lines = 19, stride = 23; /* [n, stride] storage, lines <= stride */
        double *values = malloc(n * stride * sizeof *values);
        float *values32 = malloc(n * stride * sizeof *values32);
        for (size_t i = 0; i < n * stride; i++)
            values32[i] = (float)(values[i] = (double)i);
        void *out = malloc(lines * n * sizeof(double));
        k->transpose_lines(types[t] == SOFTMAX_DTYPE_F32 ? (const void *)values32 : (const void *)values,
                           (int64_t)stride, lines, n, out);
        for (size_t b = 0; b < lines; b++)
            for (size_t j = 0; j < n; j++) {
                const double got =
                    types[t] == SOFTMAX_DTYPE_F32 ? ((float *)out)[b * n + j] : ((double *)out)[b * n + j];
                assert_true(got == (double)(j * stride + b));
            }
        free(values), free(values32), free(out);
    }
}

static void test_half_conversions_are_the_scalar_definitions(void **state)
{
    (void)state;
    const softmax_kernels *k = table_of(SOFTMAX_DTYPE_F32);
    enum { COUNT = 65536 };
    uint16_t *bits = malloc(COUNT * sizeof *bits), *narrowed = malloc(COUNT * sizeof *narrowed);
    float *widened = malloc(COUNT * sizeof *widened);
    for (uint32_t i = 0; i < COUNT; i++)
        bits[i] = (uint16_t)i;
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        k->widen_half(widened, bits, COUNT, bf16);
        for (uint32_t i = 0; i < COUNT; i++) {
            const float expected = bf16 ? softmax_bf16_to_float(bits[i]) : softmax_f16_to_float(bits[i]);
            assert_memory_equal(&widened[i], &expected, sizeof expected);
        }
        for (uint32_t i = 0; i < COUNT; i++) /* floats between and beyond the half values */
            widened[i] = (float)((random_unit() - 0.5) * ldexp(1.0, (int)(i % 80) - 40));
        k->narrow_half(narrowed, widened, COUNT, bf16);
        for (uint32_t i = 0; i < COUNT; i++)
            assert_int_equal(narrowed[i], bf16 ? softmax_float_to_bf16(widened[i]) : softmax_float_to_f16(widened[i]));
    }
    free(bits), free(narrowed), free(widened);
}

static void test_portable_in_place_readers_decline(void **state)
{
    (void)state;
    const softmax_kernels *k = table_of(SOFTMAX_DTYPE_F32);
    enum { N = 300 };
    float x[N], y[N], untouched[N];
    uint16_t halves[N], half_out[N], half_untouched[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)i / 7, y[i] = untouched[i] = -12345.f;
        halves[i] = softmax_float_to_bf16(x[i]), half_out[i] = half_untouched[i] = 0x7777;
    }
    if (!(k->capabilities & SOFTMAX_KERNELS_MASKED_ROWS)) {
        assert_int_equal(k->excluding_row(SOFTMAX_OP_SOFTMAX, x, NULL, NULL, NULL, 0, 0, false, 0.0, N, N, 1.0, y),
                         SOFTMAX_ROW_DECLINED);
        float g[N], lo[N];
        assert_false(k->reduce_bias(x, N, g, lo));
        assert_int_equal(k->reduced_bias_row(SOFTMAX_OP_SOFTMAX, x, x, x, N, N, 1.0, y), SOFTMAX_ROW_DECLINED);
        assert_memory_equal(y, untouched, sizeof y);
    }
    if (!(k->capabilities & SOFTMAX_KERNELS_HALF_ROWS)) {
        assert_false(k->half_line(SOFTMAX_OP_SOFTMAX, halves, 1, y, 0, N, 1.0));
        assert_false(k->half_row(SOFTMAX_OP_SOFTMAX, halves, half_out, N, 1.0, 1));
        assert_memory_equal(y, untouched, sizeof y);
        assert_memory_equal(half_out, half_untouched, sizeof half_out);
    }
    if (!(k->capabilities & SOFTMAX_KERNELS_HALF_ROWS) || !(k->capabilities & SOFTMAX_KERNELS_FAST_MODE)) {
        assert_false(k->fast_half_line(SOFTMAX_OP_SOFTMAX, halves, 1, y, 0, N, 1.0));
        assert_memory_equal(y, untouched, sizeof y);
    }
}

/* reduce_bias, where the path has it (SOFTMAX_KERNELS_MASKED_ROWS): g on
 * the grid 2^-12 and g + lo = log2(e) b within 2^-34 (the float product
 * alone is off by up to 2^-15 at b = 700), g = -inf and lo = 0 for a -inf
 * entry, and every NaN, +inf or out-of-range entry refused, at each
 * position of a vector and in a tail. */
static void test_reduce_bias(void **state)
{
    (void)state;
    const softmax_kernels *k = table_of(SOFTMAX_DTYPE_F32);
    if (!(k->capabilities & SOFTMAX_KERNELS_MASKED_ROWS))
        skip();
    enum { N = 1000 };
    float b[N], g[N], lo[N];
    for (int i = 0; i < N; i++)
        b[i] = i % 97 == 3 ? -INFINITY : (float)((i - N / 2) * 1.3999 + sin(i) * 1e-3);
    b[1] = 700.0f, b[2] = -700.0f, b[5] = 0x1p-140f, b[6] = -0.0f;
    assert_true(k->reduce_bias(b, N, g, lo));
    for (int i = 0; i < N; i++) {
        if (b[i] == -INFINITY) {
            assert_true(g[i] == -INFINITY && lo[i] == 0.0f);
            continue;
        }
        assert_true(g[i] * 4096.0 == nearbyint(g[i] * 4096.0));
        const double want = (double)b[i] * 1.4426950408889634;
        if (!(fabs((double)g[i] + (double)lo[i] - want) <= 0x1p-34))
            fail_msg("reduce_bias(%a): g %a + lo %a, want %a", (double)b[i], (double)g[i], (double)lo[i], want);
    }
    const float refused[] = {NAN, INFINITY, 700.5f, -700.5f, 1e30f};
    for (size_t r = 0; r < sizeof refused / sizeof *refused; r++)
        for (size_t count = 1; count <= 40; count++) {
            float one[40];
            for (size_t i = 0; i < count; i++)
                one[i] = (float)i;
            one[(count * 7 + r) % count] = refused[r];
            if (k->reduce_bias(one, count, g, lo))
                fail_msg("reduce_bias accepted %a among %zu entries", (double)refused[r], count);
        }
}

/* split_logits: d = z - max z with z = scale * x + (mask + slope * j) in
 * double, -inf where excluded, hi = (float)d; false for NaN / +inf / nothing
 * kept. The expected values are formed here in double, independently. */
static void test_split_logits(void **state)
{
    (void)state;
    const softmax_kernels *k = table_of(SOFTMAX_DTYPE_F32);
    enum { N = 77 };
    float x[N], mask[N], hi[N];
    uint8_t keep[N];
    double d[N], z[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(10 * random_unit() - 5);
        mask[i] = i % 11 == 3 ? -INFINITY : (float)(random_unit() - 0.5);
        keep[i] = i % 13 != 5;
    }
    const size_t kept = 60;
    const double scale = 0.375, slope = 0.0625; /* exact products: no rounding question */
    double top = -INFINITY;
    for (size_t j = 0; j < N; j++) {
        const bool excluded = j >= kept || mask[j] == -INFINITY || keep[j] == 0;
        z[j] = excluded ? -INFINITY : scale * (double)x[j] + ((double)mask[j] + slope * (double)j);
        top = fmax(top, z[j]);
    }
    assert_true(k->split_logits(x, mask, keep, kept, N, scale, slope, d, hi));
    for (size_t j = 0; j < N; j++) {
        const double expected = z[j] - top;
        assert_true(d[j] == expected);
        assert_true(hi[j] == (float)expected);
    }
    x[7] = NAN;
    keep[7] = 1, mask[7] = 0;
    assert_false(k->split_logits(x, mask, keep, kept, N, scale, slope, d, hi));
    x[7] = 1;
    assert_false(k->split_logits(x, mask, keep, 0, N, scale, slope, d, hi)); /* nothing kept */
}

int main(void)
{
    if (softmax_isa_name() == NULL) { /* SOFTMAX_ISA names a path this machine lacks */
        printf("SKIP: %s\n", softmax_last_error());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_slot_is_null),
        cmocka_unit_test(test_fast_rows_without_fast_mode_is_rows),
        cmocka_unit_test(test_prefix_rows_and_long_row_are_rows),
        cmocka_unit_test(test_transpose_lines),
        cmocka_unit_test(test_half_conversions_are_the_scalar_definitions),
        cmocka_unit_test(test_portable_in_place_readers_decline),
        cmocka_unit_test(test_reduce_bias),
        cmocka_unit_test(test_split_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
