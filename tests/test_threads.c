/*
 * test_threads.c -- determinism and the thread-count API.
 *
 *  - every function gives the same bits for 1, 2, 3, 4, 7 threads and the
 *    default, on inputs large enough to be split (>= 1 Mi elements), in
 *    place or not; a sample of rows is checked against MPFR too;
 *  - softmax_set_num_threads / softmax_get_num_threads: n >= 1 sets, 0
 *    returns to the default, n < 0 is refused and changes nothing;
 *  - calls from several application threads at once, and a thread count
 *    changed while another thread computes, change no bits.
 *
 * `test_threads --env-only` only checks that the default thread count
 * follows SOFTMAX_NUM_THREADS (a positive integer; anything else ignored):
 * CTest runs it with several values of the variable (tests/CMakeLists.txt).
 * This is the only test program that looks at SOFTMAX_NUM_THREADS.
 */
#define _GNU_SOURCE /* sched_getaffinity */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

/* ------------------------------------------------------ default count */

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static int affinity_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    return CPU_COUNT(&set);
}

/* The value of SOFTMAX_NUM_THREADS if it is a positive integer, else 0. */
static int env_thread_count(void)
{
    const char *text = getenv("SOFTMAX_NUM_THREADS");
    if (text == NULL || text[0] == '\0')
        return 0;
    for (const char *c = text; *c; c++)
        if (*c < '0' || *c > '9')
            return 0;
    errno = 0;
    long v = strtol(text, NULL, 10);
    return errno == 0 && v >= 1 && v <= 1024 ? (int)v : 0;
}

/* The default must be the variable's value, or else the number of online
 * cores (the cores this process may run on are accepted too). */
static void assert_default_count(int got)
{
    int env = env_thread_count();
    const char *text = getenv("SOFTMAX_NUM_THREADS");
    if (env > 0) {
        if (got != env)
            fail_msg("SOFTMAX_NUM_THREADS=\"%s\" but the default thread count is %d", text, got);
    } else if (got != online_cores() && got != affinity_cores()) {
        fail_msg("SOFTMAX_NUM_THREADS=\"%s\": default thread count %d, expected the %d online cores",
                 text ? text : "(unset)", got, online_cores());
    }
}

static void test_default_follows_the_environment(void **state)
{
    (void)state;
    const char *text = getenv("SOFTMAX_NUM_THREADS");
    int first = softmax_get_num_threads();
    printf("threads: SOFTMAX_NUM_THREADS=%s%s%s -> default %d (online cores %d)\n", text ? "\"" : "",
           text ? text : "(unset)", text ? "\"" : "", first, online_cores());
    assert_default_count(first);
    set_threads_or_fail(2);
    assert_int_equal(softmax_get_num_threads(), 2);
    set_threads_or_fail(0);
    assert_default_count(softmax_get_num_threads());
    assert_int_equal(softmax_get_num_threads(), first);
}

static void test_set_and_get(void **state)
{
    (void)state;
    int def = softmax_get_num_threads();
    assert_true(def >= 1);
    assert_default_count(def);
    const int counts[] = {1, 2, 3, 4, 7, 16};
    for (size_t i = 0; i < ARRAY_LEN(counts); i++) {
        set_threads_or_fail(counts[i]);
        assert_int_equal(softmax_get_num_threads(), counts[i]);
        /* refused values change nothing */
        assert_int_equal(softmax_set_num_threads(-1), SOFTMAX_E_INVALID_THREADS);
        assert_int_equal(softmax_get_num_threads(), counts[i]);
    }
    set_threads_or_fail(0);
    assert_int_equal(softmax_get_num_threads(), def);
}

/* ------------------------------------------------------- determinism */

typedef struct shape {
    size_t rows, cols;
} shape;

/* >= 1 Mi elements: square-ish with odd row length, few long rows (fewer
 * rows than threads), many tiny rows */
static const shape shapes[] = {{1000, 1049}, {3, 349526}, {262144, 4}};
static const int thread_counts[] = {2, 3, 4, 7, 0};

enum fn_kind { FN_SOFTMAX, FN_LOG_SOFTMAX, FN_BACKWARD, FN_LOG_BACKWARD, FN_LOG_JVP, FN_AXIS0, FN_COUNT };
static const char *const fn_names[FN_COUNT] = {
    "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "log_softmax_jvp", "softmax_execute(axis 0)"};

/* Runs function `fn` on (a, b) into out; in_place: out holds a copy of a
 * (forward) or of b (gradients) and is used as that argument. */
static int run_fn(enum fn_kind fn, softmax_dtype dt, const void *a, const void *b, void *out, shape s, int in_place)
{
    size_t bytes = s.rows * s.cols * dtype_size(dt);
    switch (fn) {
    case FN_SOFTMAX:
    case FN_LOG_SOFTMAX:
        if (in_place)
            memcpy(out, a, bytes);
        return call_forward(dt, fn == FN_LOG_SOFTMAX, in_place ? out : a, out, s.rows, s.cols, 1.5);
    case FN_BACKWARD:
    case FN_LOG_BACKWARD:
    case FN_LOG_JVP: {
        softmax_op op = fn == FN_BACKWARD       ? SOFTMAX_OP_SOFTMAX_BACKWARD
                        : fn == FN_LOG_BACKWARD ? SOFTMAX_OP_LOG_SOFTMAX_BACKWARD
                                                : SOFTMAX_OP_LOG_SOFTMAX_JVP;
        if (in_place)
            memcpy(out, b, bytes);
        return call_grad(op, dt, a, in_place ? out : b, out, s.rows, s.cols, -0.75);
    }
    case FN_AXIS0: {
        softmax_desc desc;
        int rc = softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, dt, 1);
        if (rc != SOFTMAX_OK)
            return rc;
        desc.ndim = 2;
        desc.shape[0] = s.rows;
        desc.shape[1] = s.cols;
        desc.axis = 0;
        desc.scale = 2.0;
        if (in_place)
            memcpy(out, a, bytes);
        return softmax_execute(&desc, in_place ? out : a, NULL, out);
    }
    case FN_COUNT:
        break;
    }
    return -1000;
}

static void fill_inputs(enum fn_kind fn, softmax_dtype dt, void *a, void *b, size_t n, test_rng *rng)
{
    for (size_t i = 0; i < n; i++) {
        double v = fn == FN_BACKWARD                           ? rng_uniform(rng)
                   : fn >= FN_LOG_BACKWARD && fn <= FN_LOG_JVP ? -8 * rng_uniform(rng)
                                                               : 10 * rng_normal(rng);
        buf_set(dt, a, i, v);
        buf_set(dt, b, i, rng_normal(rng));
    }
}

/* A few rows of the single-thread result against MPFR: the bits being
 * compared are right, not only equal. */
static size_t spot_check(enum fn_kind fn, softmax_dtype dt, const void *a, const void *b, const void *out, shape s)
{
    if (fn == FN_AXIS0 || s.cols > 4096)
        return 0; /* covered by test_axis and test_accuracy */
    size_t failures = 0;
    ref_vec ref;
    ref_vec_init(&ref, s.cols);
    double *local = malloc(s.cols * sizeof(double)), *global = malloc(s.cols * sizeof(double)),
           *tol = malloc(s.cols * sizeof(double));
    err_stats st;
    err_stats_init(&st);
    const size_t rows[] = {0, s.rows / 2, s.rows - 1};
    for (size_t k = 0; k < 3; k++) {
        size_t off = rows[k] * s.cols;
        ref_line al = ref_line_make(dt, buf_cat(dt, a, off), s.cols, 1);
        ref_line bl = ref_line_make(dt, buf_cat(dt, b, off), s.cols, 1);
        ref_line ol = ref_line_make(dt, buf_cat(dt, out, off), s.cols, 1);
        if (fn == FN_SOFTMAX || fn == FN_LOG_SOFTMAX) {
            ref_softmax(&ref, al, scale_as(dt, 1.5), fn == FN_LOG_SOFTMAX);
            failures += fn == FN_SOFTMAX ? check_softmax_line(&ref, ol, contract_ulp_bound(dt), &st, fn_names[fn])
                                         : check_log_softmax_line(&ref, ol, contract_ulp_bound(dt), &st, fn_names[fn]);
        } else {
            softmax_op op = fn == FN_BACKWARD       ? SOFTMAX_OP_SOFTMAX_BACKWARD
                            : fn == FN_LOG_BACKWARD ? SOFTMAX_OP_LOG_SOFTMAX_BACKWARD
                                                    : SOFTMAX_OP_LOG_SOFTMAX_JVP;
            ref_grad(op, &ref, al, bl, -0.75, local, global);
            grad_tolerance(tol, local, global, s.cols, dt, -0.75);
            failures += check_tolerance_line(&ref, tol, ol, &st, fn_names[fn]);
        }
    }
    free(local);
    free(global);
    free(tol);
    ref_vec_free(&ref);
    return failures;
}

static void test_same_bits_for_every_thread_count(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 701);
    size_t checked = 0, wrong = 0, differing = 0;
    for (size_t d = 0; d < 2; d++) {
        softmax_dtype dt = test_dtypes[d];
        for (size_t sh = 0; sh < ARRAY_LEN(shapes); sh++) {
            shape s = shapes[sh];
            size_t n = s.rows * s.cols, bytes = n * dtype_size(dt);
            void *a = buf_alloc(dt, n), *b = buf_alloc(dt, n), *base = buf_alloc(dt, n), *out = buf_alloc(dt, n);
            for (int f = 0; f < FN_COUNT; f++) {
                enum fn_kind fn = (enum fn_kind)f;
                fill_inputs(fn, dt, a, b, n, &rng);
                set_threads_or_fail(1);
                assert_int_equal(run_fn(fn, dt, a, b, base, s, 0), SOFTMAX_OK);
                size_t bad = spot_check(fn, dt, a, b, base, s);
                if (bad) {
                    fprintf(stderr, "  %s_%s %zux%zu: %zu results beyond the bound (above)\n", fn_names[fn],
                            dtype_name(dt), s.rows, s.cols, bad);
                    wrong += bad;
                }
                for (size_t t = 0; t <= ARRAY_LEN(thread_counts); t++) {
                    int threads = t == 0 ? 1 : thread_counts[t - 1];
                    set_threads_or_fail(threads);
                    for (int in_place = 0; in_place <= 1; in_place++) {
                        /* in place: on one thread and on three */
                        if ((threads == 1 && !in_place) || (in_place && threads != 1 && threads != 3))
                            continue;
                        fill_sentinel(out, bytes);
                        assert_int_equal(run_fn(fn, dt, a, b, out, s, in_place), SOFTMAX_OK);
                        if (memcmp(out, base, bytes) != 0) {
                            size_t at = 0, count = 0;
                            while (at < n && buf_bits_equal(dt, out, at, base, at))
                                at++;
                            for (size_t i = at; i < n; i++)
                                count += !buf_bits_equal(dt, out, i, base, i);
                            fprintf(stderr,
                                    "  FAIL %s_%s %zux%zu: %d thread(s)%s: %zu elements differ from 1 thread, first "
                                    "%zu (row %zu): %a vs %a\n",
                                    fn_names[fn], dtype_name(dt), s.rows, s.cols, threads, in_place ? " in place" : "",
                                    count, at, at / s.cols, buf_get(dt, out, at), buf_get(dt, base, at));
                            differing++;
                        }
                        checked++;
                    }
                }
            }
            free(a);
            free(b);
            free(base);
            free(out);
        }
    }
    set_threads_or_fail(0);
    printf("threads: %zu runs compared with the single-thread bits, %zu differ\n", checked, differing);
    if (differing)
        fail_msg("%zu runs differ from the single-thread bits (details above)", differing);
    if (wrong)
        fail_msg("%zu sampled outputs are beyond the contract's bound (details above)", wrong);
}

/* The general API's in-kernel paths on >= 1 Mi elements: a `where` mask
 * with a causal prefix read by the kernels, bf16 rows widened by the
 * kernels, a transposed view gathered by register transposes. Every thread
 * count gives the single-thread bits. */
static void test_general_paths_same_bits_for_every_thread_count(void **state)
{
    (void)state;
    enum { ROWS = 1024, COLS = 1049, CASES = 3 };
    const size_t n = (size_t)ROWS * COLS;
    test_rng rng;
    rng_seed(&rng, 709);
    float *x = malloc(n * sizeof *x), *base = malloc(n * sizeof *base), *out = malloc(n * sizeof *out);
    uint16_t *x_bf16 = malloc(n * sizeof *x_bf16);
    uint8_t keep[COLS];
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(6 * rng_normal(&rng));
    for (size_t j = 0; j < COLS; j++)
        keep[j] = rng_below(&rng, 4) != 0;
    assert_int_equal(softmax_convert(x_bf16, SOFTMAX_DTYPE_BF16, x, SOFTMAX_DTYPE_F32, n), SOFTMAX_OK);
    static const int64_t keep_strides[2] = {0, 1}, transposed[2] = {1, ROWS};
    size_t differing = 0;
    for (int c = 0; c < CASES; c++) {
        softmax_desc desc;
        softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, c == 1 ? SOFTMAX_DTYPE_BF16 : SOFTMAX_DTYPE_F32, COLS);
        desc.ndim = 2;
        desc.shape[0] = ROWS, desc.shape[1] = COLS;
        desc.scale = 0.8;
        if (c == 0) {
            desc.where = keep;
            desc.where_strides = keep_strides;
            desc.causal = 1;
            desc.causal_offset = 200;
        } else if (c == 2) {
            desc.src_strides = transposed;
        }
        const void *src = c == 1 ? (const void *)x_bf16 : (const void *)x;
        const size_t bytes = n * (c == 1 ? 2 : 4);
        set_threads_or_fail(1);
        assert_int_equal(softmax_execute(&desc, src, NULL, base), SOFTMAX_OK);
        for (size_t t = 0; t < ARRAY_LEN(thread_counts); t++) {
            set_threads_or_fail(thread_counts[t]);
            fill_sentinel(out, bytes);
            assert_int_equal(softmax_execute(&desc, src, NULL, out), SOFTMAX_OK);
            if (memcmp(out, base, bytes) != 0) {
                fprintf(stderr, "  FAIL general case %d: %d thread(s) differ from 1 thread\n", c, thread_counts[t]);
                differing++;
            }
        }
    }
    set_threads_or_fail(0);
    free(x), free(base), free(out), free(x_bf16);
    if (differing)
        fail_msg("%zu runs of the general paths differ from the single-thread bits", differing);
}

/* ------------------------------------------------------- concurrency */

typedef struct worker {
    softmax_dtype dt;
    const void *x;
    const void *expect;
    size_t rows, cols;
    int mismatches;
    int errors;
} worker;

static atomic_int stop_flipping;

static void *flip_thread_count(void *arg)
{
    (void)arg;
    int n = 1;
    while (!atomic_load(&stop_flipping)) {
        softmax_set_num_threads(n);
        n = n % 4 + 1;
    }
    return NULL;
}

static void *compute_repeatedly(void *arg)
{
    worker *w = arg;
    size_t bytes = w->rows * w->cols * dtype_size(w->dt);
    void *y = buf_alloc(w->dt, w->rows * w->cols);
    for (int rep = 0; rep < 6; rep++) {
        if (call_forward(w->dt, 0, w->x, y, w->rows, w->cols, 1.0) != SOFTMAX_OK)
            w->errors++;
        else if (memcmp(y, w->expect, bytes) != 0)
            w->mismatches++;
    }
    free(y);
    return NULL;
}

static void test_concurrent_callers_and_thread_count_changes(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 702);
    enum { WORKERS = 3 };
    worker w[WORKERS];
    void *xs[WORKERS], *expects[WORKERS];
    set_threads_or_fail(1);
    for (int k = 0; k < WORKERS; k++) {
        softmax_dtype dt = test_dtypes[k % 2];
        size_t rows = 512, cols = 1024 + (size_t)k;
        xs[k] = buf_alloc(dt, rows * cols);
        expects[k] = buf_alloc(dt, rows * cols);
        for (size_t i = 0; i < rows * cols; i++)
            buf_set(dt, xs[k], i, 5 * rng_normal(&rng));
        assert_int_equal(call_forward(dt, 0, xs[k], expects[k], rows, cols, 1.0), SOFTMAX_OK);
        w[k] = (worker){dt, xs[k], expects[k], rows, cols, 0, 0};
    }
    atomic_store(&stop_flipping, 0);
    pthread_t flipper, threads[WORKERS];
    assert_int_equal(pthread_create(&flipper, NULL, flip_thread_count, NULL), 0);
    for (int k = 0; k < WORKERS; k++)
        assert_int_equal(pthread_create(&threads[k], NULL, compute_repeatedly, &w[k]), 0);
    for (int k = 0; k < WORKERS; k++)
        assert_int_equal(pthread_join(threads[k], NULL), 0);
    atomic_store(&stop_flipping, 1);
    assert_int_equal(pthread_join(flipper, NULL), 0);
    set_threads_or_fail(0);
    for (int k = 0; k < WORKERS; k++) {
        if (w[k].errors || w[k].mismatches)
            fail_msg("worker %d: %d failed calls, %d results differing from the single-thread bits", k, w[k].errors,
                     w[k].mismatches);
        free(xs[k]);
        free(expects[k]);
    }
}

int main(int argc, char **argv)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    if (argc > 1 && strcmp(argv[1], "--env-only") == 0) {
        const struct CMUnitTest env_tests[] = {
            cmocka_unit_test(test_default_follows_the_environment),
        };
        return cmocka_run_group_tests_name("threads (environment)", env_tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_get),
        cmocka_unit_test(test_same_bits_for_every_thread_count),
        cmocka_unit_test(test_general_paths_same_bits_for_every_thread_count),
        cmocka_unit_test(test_concurrent_callers_and_thread_count_changes),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
