/*
 * test_concurrency.c -- the library called from several threads at once,
 * each with its own buffers, mixing pinned and general calls, while another
 * thread keeps changing softmax_set_num_threads(). Every result must equal,
 * bit for bit, the one computed beforehand on a single thread: the header
 * promises that results never depend on the thread count and that a call in
 * progress keeps the count it started with.
 *
 * Built a second time with ThreadSanitizer by scripts/test.sh. libgomp is
 * not instrumented, so that run sets SOFTMAX_CONCURRENCY_MAX_THREADS=1 and
 * SOFTMAX_NUM_THREADS=1: the setter then alternates between 1 and 0 (the
 * default, 1), no OpenMP team is started, and TSan sees only the library's
 * own shared state (thread count, dispatch table, per-thread errors).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { WORKERS = 4, ROUNDS = 6, BIG_ROWS = 260, BIG_COLS = 257, SMALL_ROWS = 7, SMALL_COLS = 33 };
enum { Q = 24, K = 40, HEADS = 3 }; /* attention-shaped general call: [HEADS, Q, K] */

typedef struct work {
    float big_x[BIG_ROWS * BIG_COLS], big_y[BIG_ROWS * BIG_COLS], big_expected[BIG_ROWS * BIG_COLS];
    double small_x[SMALL_ROWS * SMALL_COLS], small_y[SMALL_ROWS * SMALL_COLS], small_expected[SMALL_ROWS * SMALL_COLS];
    double dy[SMALL_ROWS * SMALL_COLS], dx[SMALL_ROWS * SMALL_COLS], dx_expected[SMALL_ROWS * SMALL_COLS];
    uint16_t scores[HEADS * Q * K], probs[HEADS * Q * K], probs_expected[HEADS * Q * K];
    int failures;
    int calls_failed;
} work;

static atomic_int stop_setter;
static int max_threads = 4;

static void fill(work *w, unsigned seed)
{
    uint64_t state = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (size_t i = 0; i < BIG_ROWS * BIG_COLS; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        w->big_x[i] = (float)((int64_t)(state >> 40) % 4000) / 100.0f;
    }
    for (size_t i = 0; i < SMALL_ROWS * SMALL_COLS; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        w->small_x[i] = (double)((int64_t)(state >> 33) % 100000) / 997.0;
        w->dy[i] = (double)((int64_t)(state >> 20) % 1000) / 333.0 - 1.5;
    }
    w->small_x[5] = -INFINITY; /* a hostile value on the way */
    for (size_t i = 0; i < HEADS * Q * K; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        w->scores[i] = (uint16_t)(0x3c00 + (state >> 54)); /* f16 in [1, 2) */
    }
}

static int run_general(work *w, uint16_t *out)
{
    softmax_desc desc;
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F16, K);
    desc.ndim = 3;
    desc.shape[0] = HEADS;
    desc.shape[1] = Q;
    desc.shape[2] = K;
    desc.causal = 1;
    desc.causal_offset = K - Q;
    desc.max_bias = 8.0;
    desc.head_axis = 0;
    desc.scale = 0.125;
    return softmax_execute(&desc, w->scores, NULL, out);
}

/* Every call of one round; outputs go to the y buffers. */
static int run_all(work *w)
{
    int status = softmax_f32(w->big_x, w->big_y, BIG_ROWS, BIG_COLS, 1.5f);
    status |= log_softmax_f64(w->small_x, w->small_y, SMALL_ROWS, SMALL_COLS, -0.75);
    status |= softmax_backward_f64(w->small_y, w->dy, w->dx, SMALL_ROWS, SMALL_COLS, 2.0);
    status |= run_general(w, w->probs);
    /* An error on the way: the per-thread message must not leak into the
     * next successful call of another thread. */
    status |= softmax_f32(NULL, w->big_y, 1, 1, 1.0f) == SOFTMAX_E_NULL_POINTER ? 0 : 1;
    return status;
}

static void *worker(void *argument)
{
    work *w = argument;
    for (int round = 0; round < ROUNDS; round++) {
        memset(w->big_y, 0, sizeof w->big_y);
        memset(w->probs, 0, sizeof w->probs);
        if (run_all(w) != 0)
            w->calls_failed++;
        w->failures += memcmp(w->big_y, w->big_expected, sizeof w->big_y) != 0;
        w->failures += memcmp(w->small_y, w->small_expected, sizeof w->small_y) != 0;
        w->failures += memcmp(w->dx, w->dx_expected, sizeof w->dx) != 0;
        w->failures += memcmp(w->probs, w->probs_expected, sizeof w->probs) != 0;
    }
    return NULL;
}

static void *setter(void *argument)
{
    (void)argument;
    int n = 0;
    while (!atomic_load(&stop_setter)) {
        softmax_set_num_threads(n); /* 0 = back to the default */
        (void)softmax_get_num_threads();
        n = (n + 1) % (max_threads + 1);
    }
    return NULL;
}

static void test_threads_share_the_library(void **state)
{
    (void)state;
    const char *cap = getenv("SOFTMAX_CONCURRENCY_MAX_THREADS");
    if (cap != NULL && atoi(cap) >= 1)
        max_threads = atoi(cap);
    static work works[WORKERS];
    softmax_set_num_threads(1);
    for (int t = 0; t < WORKERS; t++) {
        fill(&works[t], (unsigned)t);
        assert_int_equal(run_all(&works[t]), 0);
        memcpy(works[t].big_expected, works[t].big_y, sizeof works[t].big_y);
        memcpy(works[t].small_expected, works[t].small_y, sizeof works[t].small_y);
        memcpy(works[t].dx_expected, works[t].dx, sizeof works[t].dx);
        memcpy(works[t].probs_expected, works[t].probs, sizeof works[t].probs);
    }
    atomic_store(&stop_setter, 0);
    pthread_t setter_thread, threads[WORKERS];
    assert_int_equal(pthread_create(&setter_thread, NULL, setter, NULL), 0);
    for (int t = 0; t < WORKERS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, worker, &works[t]), 0);
    for (int t = 0; t < WORKERS; t++)
        pthread_join(threads[t], NULL);
    atomic_store(&stop_setter, 1);
    pthread_join(setter_thread, NULL);
    softmax_set_num_threads(0);
    for (int t = 0; t < WORKERS; t++) {
        if (works[t].calls_failed != 0)
            fail_msg("worker %d: %d rounds had a call with an unexpected status", t, works[t].calls_failed);
        if (works[t].failures != 0)
            fail_msg("worker %d: %d results differ from the single-threaded bits", t, works[t].failures);
    }
}

int main(void)
{
    const int prologue = isa_prologue(); /* skips a SOFTMAX_ISA path this machine lacks */
    if (prologue != 0)
        return prologue;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_share_the_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
