/*
 * test_small_calls.c -- small forward calls of the pinned entry points
 * (softmax_f32, log_softmax_f32 and the f64 twins) and of softmax_execute,
 * which skip the general planning: every row length 1..64, one and several
 * rows, ordinary, wide and special logits, ordinary and special scales.
 * Each result must be
 *   - bit for bit what the planner's routes give for the same data:
 *     softmax_execute() on the same rows with their contiguous strides
 *     given (which the lean route leaves to the planner), and on a strided
 *     view of them (rows padded apart, run by the general pipeline);
 *   - the same bits from softmax_execute() on plain descriptions of the
 *     rows ([rows, n]; [rows, n, 1] along axis 1, as the Python package
 *     describes them; [n]), which take the lean route too, in the fast
 *     mode as well;
 *   - the same bits in place (y == x);
 *   - within the contract's bound of the MPFR reference;
 * and a bad small call must still fail with the planner's status and
 * message, its output untouched, while the next good call clears the
 * message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
/* The version as softmax_version() spells it. */
#define SOFTMAX_TEXT_OF_(x) #x
#define SOFTMAX_TEXT_OF(x) SOFTMAX_TEXT_OF_(x)
#define SOFTMAX_VERSION_TEXT                                                                                           \
    SOFTMAX_TEXT_OF(SOFTMAX_VERSION_MAJOR)                                                                             \
    "." SOFTMAX_TEXT_OF(SOFTMAX_VERSION_MINOR) "." SOFTMAX_TEXT_OF(SOFTMAX_VERSION_PATCH)
#include "testutil.h"

enum { MAX_LENGTH = 64, ROW_PAD = 3 };

static const size_t row_counts[] = {1, 2, 17};
static const double scales[] = {1.0, 0.37, -2.5, 60.0, 1e-3, 0.0, INFINITY};

/* Logits of one kind: 0 ordinary, 1 a range wide enough that exps fall
 * below the normal range, 2 special values (infinities, NaN, ties, huge and
 * subnormal inputs) mixed with ordinary ones. */
static void fill_logits(softmax_dtype dt, void *x, size_t count, int kind, test_rng *rng)
{
    const double wide = dt == SOFTMAX_DTYPE_F32 ? 60.0 : 500.0;
    for (size_t i = 0; i < count; i++) {
        double v = rng_range(rng, -8.0, 8.0);
        if (kind == 1)
            v = rng_normal(rng) * wide;
        if (kind == 2) {
            switch (rng_below(rng, 9)) {
            case 0:
                v = -INFINITY;
                break;
            case 1:
                v = rng_below(rng, 4) == 0 ? INFINITY : v;
                break;
            case 2:
                v = rng_below(rng, 6) == 0 ? NAN : v;
                break;
            case 3:
                v = 2.0; /* ties */
                break;
            case 4:
                v = dtype_max(dt) * rng_range(rng, -1.0, 1.0);
                break;
            case 5:
                v = dtype_true_min(dt) * (double)rng_below(rng, 5);
                break;
            default:
                break;
            }
        }
        buf_set(dt, x, i, v);
    }
}

/* How execute_rows describes rows x cols. */
typedef enum layout {
    PLANNED,     /* [rows, cols] with its contiguous strides given: the planner's route */
    PADDED,      /* [rows, cols], rows row_stride elements apart: the general pipeline */
    PLAIN,       /* [rows, cols], no strides: the lean route */
    PYTHON_VIEW, /* [rows, cols, 1] along axis 1, as the Python package describes it */
    ONE_DIM,     /* [cols] (one row) */
} layout;

/* softmax_execute on rows x cols of x (fast: SOFTMAX_FLAG_FAST). */
static int execute_rows(softmax_dtype dt, int log, const void *x, void *y, size_t rows, size_t cols, size_t row_stride,
                        double scale, layout how, int fast)
{
    softmax_desc desc;
    int status = softmax_desc_init(&desc, log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, dt, cols);
    assert_int_equal(status, SOFTMAX_OK);
    desc.ndim = 2;
    desc.shape[0] = rows;
    desc.shape[1] = cols;
    desc.scale = scale;
    desc.flags = fast ? SOFTMAX_FLAG_FAST : 0;
    const int64_t strides[2] = {(int64_t)row_stride, 1};
    if (how == PLANNED || how == PADDED) {
        desc.src_strides = strides;
        desc.dst_strides = strides;
    } else if (how == PYTHON_VIEW) {
        desc.ndim = 3;
        desc.axis = 1;
        desc.shape[2] = 1;
    } else if (how == ONE_DIM) {
        assert_int_equal(rows, 1);
        desc.ndim = 1;
        desc.shape[0] = cols;
    }
    return softmax_execute(&desc, x, NULL, y);
}

static void report_difference(const char *what, softmax_dtype dt, int log, size_t rows, size_t n, int kind,
                              double scale, const void *got, const void *want, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (buf_bits_equal(dt, got, i, want, i))
            continue;
        fail_msg("%s %s %s rows=%zu n=%zu kind=%d scale=%g: element %zu is %a, the planner's route gives %a", what,
                 dtype_name(dt), log ? "log_softmax" : "softmax", rows, n, kind, scale, i, buf_get(dt, got, i),
                 buf_get(dt, want, i));
    }
}

/* The rows of one call (count elements) bit for bit those of the planner's
 * route, and nothing written past them in a buffer of `capacity`
 * elements. */
static void expect_planner_rows(const char *what, softmax_dtype dt, int log, size_t rows, size_t n, int kind,
                                double scale, const void *got, const void *want, size_t count, size_t capacity)
{
    report_difference(what, dt, log, rows, n, kind, scale, got, want, count);
    assert_true(is_sentinel(buf_cat(dt, got, count), (capacity - count) * dtype_size(dt)));
}

/* The fast mode's documented bound, in ulp (log-softmax: of max(|y|, 1)),
 * where it applies: f32 data. f64 runs the accurate kernels. */
#define FAST_BOUND 5.0

static double fast_bound(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? FAST_BOUND : contract_ulp_bound(dt);
}

/* Fast-mode outputs y of rows x n logits x against the MPFR reference:
 * the number of outputs beyond fast_bound(). */
static size_t check_fast_rows(softmax_dtype dt, int log, const void *x, const void *y, size_t rows, size_t n,
                              double scale, err_stats *stats, const char *what)
{
    size_t failures = 0;
    ref_vec ref;
    ref_vec_init(&ref, n);
    for (size_t r = 0; r < rows; r++) {
        ref_line xl = ref_line_make(dt, buf_cat(dt, x, r * n), n, 1);
        ref_line yl = ref_line_make(dt, buf_cat(dt, y, r * n), n, 1);
        ref_softmax(&ref, xl, scale, log);
        failures += log ? check_log_softmax_line(&ref, yl, fast_bound(dt), stats, what)
                        : check_softmax_line(&ref, yl, fast_bound(dt), stats, what);
    }
    ref_vec_free(&ref);
    return failures;
}

static const char *layout_name(layout how)
{
    return how == PLAIN ? "plain desc" : how == PYTHON_VIEW ? "[rows, n, 1]" : "1-d";
}

static void test_small_rows_match_the_planner_and_mpfr(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 0x5ca11ed);
    err_stats stats, fast_stats;
    err_stats_init(&stats);
    err_stats_init(&fast_stats);
    size_t failures = 0, fast_failures = 0, calls = 0;
    const size_t most = 17 * MAX_LENGTH;
    for (size_t t = 0; t < ARRAY_LEN(test_dtypes); t++) {
        const softmax_dtype dt = test_dtypes[t];
        const size_t size = dtype_size(dt);
        void *x = buf_alloc(dt, most), *lean = buf_alloc(dt, most), *planned = buf_alloc(dt, most);
        void *in_place = buf_alloc(dt, most);
        void *x_strided = buf_alloc(dt, 17 * (MAX_LENGTH + ROW_PAD));
        void *y_strided = buf_alloc(dt, 17 * (MAX_LENGTH + ROW_PAD));
        void *general = buf_alloc(dt, most);
        for (int log = 0; log <= 1; log++)
            for (size_t n = 1; n <= MAX_LENGTH; n++)
                for (size_t r = 0; r < ARRAY_LEN(row_counts); r++)
                    for (int kind = 0; kind < 3; kind++)
                        for (size_t s = 0; s < ARRAY_LEN(scales); s++) {
                            const size_t rows = row_counts[r], count = rows * n, stride = n + ROW_PAD;
                            const double scale = scale_as(dt, scales[s]);
                            fill_logits(dt, x, count, kind, &rng);
                            fill_sentinel(lean, most * size);
                            fill_sentinel(planned, most * size);
                            assert_int_equal(call_forward(dt, log, x, lean, rows, n, scale), SOFTMAX_OK);
                            assert_string_equal(softmax_last_error(), "");
                            assert_int_equal(execute_rows(dt, log, x, planned, rows, n, n, scale, PLANNED, 0),
                                             SOFTMAX_OK);
                            expect_planner_rows("contiguous", dt, log, rows, n, kind, scale, lean, planned, count,
                                                most);

                            /* softmax_execute's lean route, on each plain description of the rows, in the
                             * accurate and the fast mode, against the planner's route of the same mode. */
                            for (int fast = 0; fast <= 1; fast++) {
                                if (fast) {
                                    fill_sentinel(planned, most * size);
                                    assert_int_equal(execute_rows(dt, log, x, planned, rows, n, n, scale, PLANNED, 1),
                                                     SOFTMAX_OK);
                                }
                                for (layout how = PLAIN; how <= ONE_DIM; how++) {
                                    if (how == ONE_DIM && rows != 1)
                                        continue;
                                    char what[48];
                                    snprintf(what, sizeof what, "%s%s", fast ? "fast, " : "", layout_name(how));
                                    fill_sentinel(general, most * size);
                                    assert_int_equal(execute_rows(dt, log, x, general, rows, n, n, scale, how, fast),
                                                     SOFTMAX_OK);
                                    assert_string_equal(softmax_last_error(), "");
                                    expect_planner_rows(what, dt, log, rows, n, kind, scale, general, planned, count,
                                                        most);
                                }
                            }
                            /* The fast mode in place, and within its bound of MPFR. */
                            memcpy(in_place, x, count * size);
                            assert_int_equal(execute_rows(dt, log, in_place, in_place, rows, n, n, scale, PLAIN, 1),
                                             SOFTMAX_OK);
                            report_difference("fast, in place", dt, log, rows, n, kind, scale, in_place, planned,
                                              count);
                            if (rows <= 2) {
                                char what[96];
                                snprintf(what, sizeof what, "fast %s %s rows=%zu n=%zu kind=%d scale=%g",
                                         dtype_name(dt), log ? "log_softmax" : "softmax", rows, n, kind, scale);
                                fast_failures +=
                                    check_fast_rows(dt, log, x, general, rows, n, scale, &fast_stats, what);
                            }

                            /* The general pipeline on rows padded apart. */
                            fill_sentinel(y_strided, rows * stride * size);
                            for (size_t row = 0; row < rows; row++)
                                memcpy(buf_at(dt, x_strided, row * stride), buf_cat(dt, x, row * n), n * size);
                            assert_int_equal(
                                execute_rows(dt, log, x_strided, y_strided, rows, n, stride, scale, PADDED, 0),
                                SOFTMAX_OK);
                            for (size_t row = 0; row < rows; row++)
                                memcpy(buf_at(dt, general, row * n), buf_cat(dt, y_strided, row * stride), n * size);
                            report_difference("strided", dt, log, rows, n, kind, scale, lean, general, count);

                            memcpy(in_place, x, count * size);
                            assert_int_equal(call_forward(dt, log, in_place, in_place, rows, n, scale), SOFTMAX_OK);
                            report_difference("in place", dt, log, rows, n, kind, scale, in_place, lean, count);

                            if (rows <= 2) {
                                char what[96];
                                snprintf(what, sizeof what, "%s %s rows=%zu n=%zu kind=%d scale=%g", dtype_name(dt),
                                         log ? "log_softmax" : "softmax", rows, n, kind, scale);
                                failures += check_forward_rows(dt, log, x, lean, rows, n, scale, &stats, what);
                            }
                            calls++;
                        }
        free(x);
        free(lean);
        free(planned);
        free(in_place);
        free(x_strided);
        free(y_strided);
        free(general);
    }
    printf("small calls: %zu cases, %zu outputs against MPFR, max error %.3f ulp; fast mode: %zu outputs, max error "
           "%.3f ulp (bound %.0f for f32)\n",
           calls, stats.checked, stats.max_err, fast_stats.checked, fast_stats.max_err, FAST_BOUND);
    assert_int_equal(failures, 0);
    assert_int_equal(fast_failures, 0);
}

/* The call of `dt` and `log` with the library's own function name. */
static const char *entry_name(softmax_dtype dt, int log)
{
    if (dt == SOFTMAX_DTYPE_F32)
        return log ? "log_softmax_f32" : "softmax_f32";
    return log ? "log_softmax_f64" : "softmax_f64";
}

static void expect_failure(int status, int expected, const char *message, const void *out, size_t bytes)
{
    assert_int_equal(status, expected);
    assert_string_equal(softmax_last_error(), message);
    assert_true(is_sentinel(out, bytes));
}

/* A call of `fn` whose output partially overlapped its input: the
 * planner's status and message, and the `bytes` of `buffer` (which holds
 * both) still equal to `copy`, taken before the call. */
static void expect_overlap(int status, const char *fn, const void *buffer, const void *copy, size_t bytes)
{
    char message[160];
    snprintf(message, sizeof message, "%s: dst overlaps src without being exactly the same elements", fn);
    assert_int_equal(status, SOFTMAX_E_OVERLAP);
    assert_string_equal(softmax_last_error(), message);
    assert_memory_equal(copy, buffer, bytes);
}

static void test_bad_small_calls_fail_as_the_planner_says(void **state)
{
    (void)state;
    enum { N = 10 };
    for (size_t t = 0; t < ARRAY_LEN(test_dtypes); t++) {
        const softmax_dtype dt = test_dtypes[t];
        const size_t size = dtype_size(dt);
        void *x = buf_alloc(dt, 2 * N), *y = buf_alloc(dt, 2 * N);
        for (size_t i = 0; i < 2 * N; i++)
            buf_set(dt, x, i, 0.5 * (double)i - 3.0);
        for (int log = 0; log <= 1; log++) {
            const char *fn = entry_name(dt, log);
            char message[160];

            fill_sentinel(y, 2 * N * size);
            snprintf(message, sizeof message, "%s: src is NULL", fn);
            expect_failure(call_forward(dt, log, NULL, y, 1, N, 1.0), SOFTMAX_E_NULL_POINTER, message, y, 2 * N * size);
            snprintf(message, sizeof message, "%s: dst is NULL", fn);
            expect_failure(call_forward(dt, log, x, NULL, 1, N, 1.0), SOFTMAX_E_NULL_POINTER, message, y, 2 * N * size);
            snprintf(message, sizeof message, "%s: scale is NaN", fn);
            expect_failure(call_forward(dt, log, x, y, 1, N, NAN), SOFTMAX_E_INVALID_SCALE, message, y, 2 * N * size);
            /* The NaN scale is reported before the NULL pointers. */
            expect_failure(call_forward(dt, log, NULL, NULL, 1, N, NAN), SOFTMAX_E_INVALID_SCALE, message, y,
                           2 * N * size);

            /* y one element past x: a partial overlap, x untouched; and a
             * longer row whose output overlaps its input by one element. */
            for (size_t i = 0; i < 2 * N; i++)
                buf_set(dt, y, i, 0.25 * (double)i);
            void *copy = buf_alloc(dt, 2 * N);
            memcpy(copy, y, 2 * N * size);
            expect_overlap(call_forward(dt, log, y, buf_at(dt, y, 1), 1, N, 1.0), fn, y, copy, 2 * N * size);
            expect_overlap(call_forward(dt, log, y, buf_at(dt, y, 2 * N - 1 - N), 1, N + 1, 1.0), fn, y, copy,
                           2 * N * size);
            free(copy);

            /* Adjacent buffers are fine, and a good call clears the message. */
            fill_sentinel(y, 2 * N * size);
            assert_int_equal(call_forward(dt, log, x, buf_at(dt, x, N), 1, N, 1.0), SOFTMAX_OK);
            assert_string_equal(softmax_last_error(), "");

            /* Empty calls succeed and write nothing. */
            assert_int_equal(call_forward(dt, log, NULL, NULL, 0, N, 1.0), SOFTMAX_OK);
            assert_int_equal(call_forward(dt, log, x, y, 1, 0, 1.0), SOFTMAX_OK);
            assert_true(is_sentinel(y, 2 * N * size));
        }
        free(x);
        free(y);
    }
}

/* Small tensors along a non-last axis ([3, n, 2] along axis 1) are not
 * rows: the same bits with and without their contiguous strides given. */
static void test_small_columns_are_not_rows(void **state)
{
    (void)state;
    enum { OUTER = 3, INNER = 2, MAX_N = 16 };
    test_rng rng;
    rng_seed(&rng, 0xc01);
    for (size_t t = 0; t < ARRAY_LEN(test_dtypes); t++) {
        const softmax_dtype dt = test_dtypes[t];
        const size_t most = OUTER * MAX_N * INNER;
        void *x = buf_alloc(dt, most), *plain = buf_alloc(dt, most), *planned = buf_alloc(dt, most);
        for (int log = 0; log <= 1; log++)
            for (size_t n = 1; n <= MAX_N; n++) {
                const size_t count = OUTER * n * INNER;
                fill_logits(dt, x, count, 0, &rng);
                softmax_desc desc;
                assert_int_equal(softmax_desc_init(&desc, log ? SOFTMAX_OP_LOG_SOFTMAX : SOFTMAX_OP_SOFTMAX, dt, n),
                                 SOFTMAX_OK);
                desc.ndim = 3;
                desc.axis = 1;
                desc.shape[0] = OUTER;
                desc.shape[1] = n;
                desc.shape[2] = INNER;
                assert_int_equal(softmax_execute(&desc, x, NULL, plain), SOFTMAX_OK);
                const int64_t strides[3] = {(int64_t)(n * INNER), INNER, 1};
                desc.src_strides = strides;
                desc.dst_strides = strides;
                assert_int_equal(softmax_execute(&desc, x, NULL, planned), SOFTMAX_OK);
                report_difference("[3, n, 2] axis 1", dt, log, OUTER, n, 0, 1.0, plain, planned, count);
            }
        free(x);
        free(plain);
        free(planned);
    }
}

/* Descriptors of small forward calls that the planner rejects, in the
 * accurate and the fast mode: the same status and message as ever, the
 * output untouched. */
static void test_bad_small_descriptors_fail_as_the_planner_says(void **state)
{
    (void)state;
    enum { N = 10 };
    for (size_t t = 0; t < ARRAY_LEN(test_dtypes); t++)
        for (int fast = 0; fast <= 1; fast++) {
            const softmax_dtype dt = test_dtypes[t];
            const size_t size = dtype_size(dt);
            const uint64_t mode = fast ? SOFTMAX_FLAG_FAST : 0;
            void *x = buf_alloc(dt, 2 * N), *y = buf_alloc(dt, 2 * N);
            for (size_t i = 0; i < 2 * N; i++)
                buf_set(dt, x, i, 0.5 * (double)i - 3.0);
            softmax_desc desc;
            fill_sentinel(y, 2 * N * size);

            assert_int_equal(softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, dt, N), SOFTMAX_OK);
            desc.flags = mode;
            desc.scale = NAN;
            expect_failure(softmax_execute(&desc, x, NULL, y), SOFTMAX_E_INVALID_SCALE, "softmax_execute: scale is NaN",
                           y, 2 * N * size);
            desc.scale = 1;
            /* A reserved word of the first block and one of the last. */
            static const int reserved_words[] = {3, 14};
            for (size_t w = 0; w < sizeof reserved_words / sizeof reserved_words[0]; w++) {
                char message[128];
                snprintf(message, sizeof message,
                         "softmax_execute: reserved[%d] is non-zero (not supported by version " SOFTMAX_VERSION_TEXT
                         ")",
                         reserved_words[w]);
                desc.reserved[reserved_words[w]] = 1;
                expect_failure(softmax_execute(&desc, x, NULL, y), SOFTMAX_E_UNSUPPORTED, message, y, 2 * N * size);
                desc.reserved[reserved_words[w]] = 0;
            }
            desc.max_bias = NAN;
            expect_failure(softmax_execute(&desc, x, NULL, y), SOFTMAX_E_INVALID_MASK,
                           "softmax_execute: max_bias = nan must be finite and >= 0", y, 2 * N * size);
            desc.max_bias = 0;
            desc.flags = mode | 2;
            expect_failure(softmax_execute(&desc, x, NULL, y), SOFTMAX_E_UNSUPPORTED,
                           fast ? "softmax_execute: flags = 0x3 has bits other than SOFTMAX_FLAG_FAST"
                                : "softmax_execute: flags = 0x2 has bits other than SOFTMAX_FLAG_FAST",
                           y, 2 * N * size);
            desc.flags = mode;
            desc.dst_dtype = (softmax_dtype)99;
            expect_failure(softmax_execute(&desc, x, NULL, y), SOFTMAX_E_INVALID_DTYPE,
                           "softmax_execute: unknown dst_dtype 99", y, 2 * N * size);
            desc.dst_dtype = 0;
            expect_failure(softmax_execute(&desc, x, NULL, NULL), SOFTMAX_E_NULL_POINTER,
                           "softmax_execute: dst is NULL", y, 2 * N * size);
            expect_failure(softmax_execute(&desc, NULL, NULL, y), SOFTMAX_E_NULL_POINTER,
                           "softmax_execute: src is NULL", y, 2 * N * size);
            desc.axis = 1;
            expect_failure(softmax_execute(&desc, x, NULL, y), SOFTMAX_E_INVALID_AXIS,
                           "softmax_execute: axis = 1 is outside [-1, 0] for ndim = 1", y, 2 * N * size);
            desc.axis = -1;
            /* A 2-d tensor of too many elements for its size_t count:
             * the planner's overflow error, not a lean call. */
            desc.ndim = 2;
            desc.shape[0] = SIZE_MAX / 2;
            desc.shape[1] = N;
            expect_failure(softmax_execute(&desc, x, NULL, y), SOFTMAX_E_SIZE_OVERFLOW,
                           "softmax_execute: the tensor's element count or byte size overflows size_t", y,
                           2 * N * size);
            desc.ndim = 1;
            desc.shape[0] = N;
            /* Output one element into the input: a partial overlap, x untouched. */
            void *copy = buf_alloc(dt, 2 * N);
            memcpy(copy, x, 2 * N * size);
            expect_overlap(softmax_execute(&desc, x, NULL, buf_at(dt, x, 1)), "softmax_execute", x, copy, 2 * N * size);
            free(copy);
            /* A good call clears the message. */
            assert_int_equal(softmax_execute(&desc, x, NULL, y), SOFTMAX_OK);
            assert_string_equal(softmax_last_error(), "");
            free(x);
            free(y);
        }
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_rows_match_the_planner_and_mpfr),
        cmocka_unit_test(test_small_columns_are_not_rows),
        cmocka_unit_test(test_bad_small_calls_fail_as_the_planner_says),
        cmocka_unit_test(test_bad_small_descriptors_fail_as_the_planner_says),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
