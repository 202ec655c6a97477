#include "reference.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ storage */

void ref_vec_init(ref_vec *r, size_t n)
{
    size_t limb_bytes = mpfr_custom_get_size(REF_PREC);
    size_t count = n ? n : 1;
    r->n = n;
    r->v = malloc(count * sizeof(__mpfr_struct));
    r->limbs = malloc(count * limb_bytes);
    if (!r->v || !r->limbs) {
        fprintf(stderr, "reference: out of memory for %zu values\n", n);
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        void *limbs = (char *)r->limbs + i * limb_bytes;
        mpfr_custom_init(limbs, REF_PREC);
        mpfr_custom_init_set(&r->v[i], MPFR_NAN_KIND, 0, REF_PREC, limbs);
    }
}

void ref_vec_free(ref_vec *r)
{
    free(r->v);
    free(r->limbs);
    r->v = NULL;
    r->limbs = NULL;
    r->n = 0;
}

ref_line ref_line_make(softmax_dtype dt, const void *base, size_t n, size_t stride)
{
    ref_line l = {base, n, stride, dt};
    return l;
}

double ref_line_get(ref_line l, size_t i)
{
    size_t k = i * l.stride;
    return l.dtype == SOFTMAX_DTYPE_F32 ? (double)((const float *)l.base)[k] : ((const double *)l.base)[k];
}

static int precision_of(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? FLT_MANT_DIG : DBL_MANT_DIG;
}

static void set_all_d(ref_vec *out, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        mpfr_set_d(ref_at(out, i), v, MPFR_RNDN);
}

static void zero_doubles(double *a, size_t n)
{
    if (a)
        for (size_t i = 0; i < n; i++)
            a[i] = 0.0;
}

static int line_has_nan(ref_line l)
{
    for (size_t i = 0; i < l.n; i++)
        if (isnan(ref_line_get(l, i)))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ forward */

/* out_i = 1/k and logout_i = -log k where key_i >= threshold, else 0 and
 * -inf. Either output may be NULL. */
static void share_equally(ref_vec *out, ref_vec *logout, size_t n, const double *key, double threshold, size_t k)
{
    mpfr_t share, log_share;
    mpfr_inits2(REF_PREC, share, log_share, (mpfr_ptr)0);
    mpfr_set_ui(share, (unsigned long)k, MPFR_RNDN);
    mpfr_log(log_share, share, MPFR_RNDN);
    mpfr_neg(log_share, log_share, MPFR_RNDN);
    mpfr_ui_div(share, 1, share, MPFR_RNDN);
    for (size_t i = 0; i < n; i++) {
        int picked = key[i] >= threshold;
        if (out) {
            if (picked)
                mpfr_set(ref_at(out, i), share, MPFR_RNDN);
            else
                mpfr_set_zero(ref_at(out, i), 1);
        }
        if (logout) {
            if (picked)
                mpfr_set(ref_at(logout, i), log_share, MPFR_RNDN);
            else
                mpfr_set_inf(ref_at(logout, i), -1);
        }
    }
    mpfr_clears(share, log_share, (mpfr_ptr)0);
}

static void set_both(ref_vec *out, ref_vec *logout, size_t n, double v, double log_v)
{
    if (out)
        set_all_d(out, n, v);
    if (logout)
        set_all_d(logout, n, log_v);
}

/* The general case of ref_softmax_both, split over a few threads for long
 * rows (MPFR's exp dominates the test suite's run time; MPFR is
 * thread-safe). Each chunk stores exp(t_i) and/or t_i and sums its exps;
 * the partial sums are added at REF_PREC bits and the outputs finished. */
typedef struct exp_chunk {
    ref_vec *out, *logout;
    const double *key;
    const size_t *count; /* multiplicity of each key (NULL: 1) */
    double top, abs_scale;
    size_t begin, end;
    mpfr_t sum;
    mpfr_srcptr total, log_total;
} exp_chunk;

static void *exp_chunk_sum(void *arg)
{
    exp_chunk *c = arg;
    mpfr_t t, e, abs_scale;
    mpfr_inits2(REF_PREC, t, e, abs_scale, (mpfr_ptr)0);
    mpfr_set_d(abs_scale, c->abs_scale, MPFR_RNDN);
    mpfr_set_zero(c->sum, 1);
    for (size_t i = c->begin; i < c->end; i++) {
        if (c->key[i] == -INFINITY) {
            mpfr_set_inf(t, -1);
        } else {
            mpfr_set_d(t, c->key[i], MPFR_RNDN);
            mpfr_sub_d(t, t, c->top, MPFR_RNDN);
            mpfr_mul(t, t, abs_scale, MPFR_RNDN);
        }
        mpfr_exp(e, t, MPFR_RNDN);
        if (c->out)
            mpfr_set(ref_at(c->out, i), e, MPFR_RNDN);
        if (c->count)
            mpfr_mul_ui(e, e, (unsigned long)c->count[i], MPFR_RNDN);
        mpfr_add(c->sum, c->sum, e, MPFR_RNDN);
        if (c->logout)
            mpfr_set(ref_at(c->logout, i), t, MPFR_RNDN);
    }
    mpfr_clears(t, e, abs_scale, (mpfr_ptr)0);
    return NULL;
}

static void *exp_chunk_finish(void *arg)
{
    exp_chunk *c = arg;
    for (size_t i = c->begin; i < c->end; i++) {
        if (c->out)
            mpfr_div(ref_at(c->out, i), ref_at(c->out, i), c->total, MPFR_RNDN);
        if (c->logout)
            mpfr_sub(ref_at(c->logout, i), ref_at(c->logout, i), c->log_total, MPFR_RNDN);
    }
    return NULL;
}

static void *exp_chunk_thread(void *arg)
{
    exp_chunk *c = arg;
    if (c->total)
        exp_chunk_finish(c);
    else
        exp_chunk_sum(c);
    mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE); /* this thread's constants */
    return NULL;
}

enum { MAX_REF_THREADS = 8, MIN_REF_CHUNK = 8192 };

/* Runs fn over the chunks, the first on the calling thread. */
static void run_chunks(exp_chunk *chunks, int count)
{
    pthread_t threads[MAX_REF_THREADS];
    int started[MAX_REF_THREADS] = {0};
    for (int k = 1; k < count; k++)
        started[k] = pthread_create(&threads[k], NULL, exp_chunk_thread, &chunks[k]) == 0;
    for (int k = 1; k < count; k++)
        if (!started[k]) /* no thread: do it here */
            chunks[k].total ? exp_chunk_finish(&chunks[k]) : exp_chunk_sum(&chunks[k]);
    chunks[0].total ? exp_chunk_finish(&chunks[0]) : exp_chunk_sum(&chunks[0]);
    for (int k = 1; k < count; k++)
        if (started[k])
            pthread_join(threads[k], NULL);
}

static void exp_pass(ref_vec *out, ref_vec *logout, const double *key, const size_t *multiplicity, size_t n, double top,
                     double abs_scale)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int count = (int)(n / MIN_REF_CHUNK);
    if (count > cores)
        count = (int)cores;
    if (count > MAX_REF_THREADS)
        count = MAX_REF_THREADS;
    if (count < 1)
        count = 1;
    exp_chunk chunks[MAX_REF_THREADS];
    for (int k = 0; k < count; k++) {
        exp_chunk *c = &chunks[k];
        c->out = out;
        c->logout = logout;
        c->key = key;
        c->count = multiplicity;
        c->top = top;
        c->abs_scale = abs_scale;
        c->begin = n * (size_t)k / (size_t)count;
        c->end = n * (size_t)(k + 1) / (size_t)count;
        c->total = c->log_total = NULL;
        mpfr_init2(c->sum, REF_PREC);
    }
    run_chunks(chunks, count);
    mpfr_t total, log_total;
    mpfr_inits2(REF_PREC, total, log_total, (mpfr_ptr)0);
    mpfr_set_zero(total, 1);
    for (int k = 0; k < count; k++)
        mpfr_add(total, total, chunks[k].sum, MPFR_RNDN);
    mpfr_log(log_total, total, MPFR_RNDN);
    for (int k = 0; k < count; k++) {
        chunks[k].total = total;
        chunks[k].log_total = log_total;
    }
    run_chunks(chunks, count);
    for (int k = 0; k < count; k++)
        mpfr_clear(chunks[k].sum);
    mpfr_clears(total, log_total, (mpfr_ptr)0);
}

static int compare_doubles(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/* exp_pass over the distinct keys only, when they are few (ties, pools of
 * values): exp and the final division are done once per distinct value and
 * copied to every element holding it. */
static void exp_pass_dedup(ref_vec *out, ref_vec *logout, const double *key, size_t n, double top, double abs_scale)
{
    double *sorted = malloc(n * sizeof(double));
    size_t *count = malloc(n * sizeof(size_t));
    assert(sorted && count);
    memcpy(sorted, key, n * sizeof(double));
    qsort(sorted, n, sizeof(double), compare_doubles);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && sorted[k - 1] == sorted[i]) {
            count[k - 1]++;
        } else {
            sorted[k] = sorted[i];
            count[k++] = 1;
        }
    }
    if (k > n / 2) {
        free(sorted);
        free(count);
        exp_pass(out, logout, key, NULL, n, top, abs_scale);
        return;
    }
    ref_vec u_out, u_log;
    ref_vec_init(&u_out, k);
    ref_vec_init(&u_log, k);
    exp_pass(out ? &u_out : NULL, logout ? &u_log : NULL, sorted, count, k, top, abs_scale);
    for (size_t i = 0; i < n; i++) {
        const double *at = bsearch(&key[i], sorted, k, sizeof(double), compare_doubles);
        assert(at);
        size_t j = (size_t)(at - sorted);
        if (out)
            mpfr_set(ref_at(out, i), ref_at(&u_out, j), MPFR_RNDN);
        if (logout)
            mpfr_set(ref_at(logout, i), ref_at(&u_log, j), MPFR_RNDN);
    }
    ref_vec_free(&u_out);
    ref_vec_free(&u_log);
    free(sorted);
    free(count);
}

void ref_softmax_both(ref_vec *out, ref_vec *logout, ref_line x, double scale)
{
    size_t n = x.n;
    assert((!out || out->n >= n) && (!logout || logout->n >= n) && !isnan(scale));
    if (n == 0)
        return;
    if (line_has_nan(x)) {
        set_both(out, logout, n, NAN, NAN);
        return;
    }
    size_t neg_inf = 0, pos_inf = 0;
    for (size_t i = 0; i < n; i++) {
        double v = ref_line_get(x, i);
        neg_inf += v == -INFINITY;
        pos_inf += v == INFINITY;
    }
    /* Fully masked rows: the row is all -inf (whatever the scale), or every
     * z = scale * x is -inf. */
    if (neg_inf == n || (scale < 0 && pos_inf == n)) {
        set_both(out, logout, n, 0.0, -INFINITY);
        return;
    }
    /* key orders the elements as z does: z_i = |scale| * key_i. */
    double sign = scale < 0 ? -1.0 : 1.0;
    double *key = malloc(n * sizeof(double));
    assert(key);
    double top = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        key[i] = sign * ref_line_get(x, i);
        if (key[i] > top)
            top = key[i];
    }
    if (scale == 0) {
        /* Infinite temperature: uniform over the elements that are not -inf
         * (a -inf element stays masked, whatever the sign of zero). */
        for (size_t i = 0; i < n; i++)
            key[i] = ref_line_get(x, i) == -INFINITY ? -INFINITY : 0.0;
        share_equally(out, logout, n, key, 0.0, n - neg_inf);
        free(key);
        return;
    }
    if (isinf(scale) || top == INFINITY) {
        /* The limit: the largest keys (ties, or the +inf z) share the mass. */
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += key[i] == top;
        share_equally(out, logout, n, key, top, k);
        free(key);
        return;
    }
    /* Finite scale, finite top: t_i = |scale| * (key_i - top) <= 0, and
     * y_i = exp(t_i) / sum_j exp(t_j), log y_i = t_i - log(sum). */
    if (n >= 1024)
        exp_pass_dedup(out, logout, key, n, top, fabs(scale));
    else
        exp_pass(out, logout, key, NULL, n, top, fabs(scale));
    free(key);
}

void ref_softmax(ref_vec *out, ref_line x, double scale, int log)
{
    ref_softmax_both(log ? NULL : out, log ? out : NULL, x, scale);
}

/* ---------------------------------------------------------------- gradients */

/* The special cases shared by every gradient: returns 1 if it filled out. */
static int grad_special(ref_vec *out, ref_line a, ref_line b, double scale, int a_is_log, double *local, double *global)
{
    size_t n = a.n;
    assert(b.n == n && out->n >= n && !isnan(scale));
    if (line_has_nan(a) || line_has_nan(b)) {
        set_all_d(out, n, NAN);
        zero_doubles(local, n);
        zero_doubles(global, n);
        return 1;
    }
    int masked = 1;
    for (size_t i = 0; i < n && masked; i++) {
        double v = ref_line_get(a, i);
        masked = a_is_log ? v == -INFINITY : v == 0.0;
    }
    if (masked || isinf(scale)) {
        set_all_d(out, n, 0.0);
        zero_doubles(local, n);
        zero_doubles(global, n);
        return 1;
    }
    return 0;
}

void ref_softmax_backward(ref_vec *out, ref_line y, ref_line dy, double scale, double *local, double *global)
{
    size_t n = y.n;
    if (n == 0 || grad_special(out, y, dy, scale, 0, local, global))
        return;
    mpfr_t d, t;
    mpfr_inits2(REF_PREC, d, t, (mpfr_ptr)0);
    mpfr_set_zero(d, 1);
    double abs_sum = 0.0;
    for (size_t j = 0; j < n; j++) {
        mpfr_set_d(t, ref_line_get(dy, j), MPFR_RNDN);
        mpfr_mul_d(t, t, ref_line_get(y, j), MPFR_RNDN); /* exact: 106 bits */
        mpfr_add(d, d, t, MPFR_RNDN);
        abs_sum += fabs(ref_line_get(dy, j) * ref_line_get(y, j));
    }
    for (size_t i = 0; i < n; i++) {
        mpfr_ptr o = ref_at(out, i);
        double yi = ref_line_get(y, i);
        mpfr_d_sub(o, ref_line_get(dy, i), d, MPFR_RNDN);
        mpfr_mul_d(o, o, yi, MPFR_RNDN);
        mpfr_mul_d(o, o, scale, MPFR_RNDN);
        if (local)
            local[i] = fabs(mpfr_get_d(o, MPFR_RNDN));
        if (global)
            global[i] = fabs(scale) * fabs(yi) * abs_sum;
    }
    mpfr_clears(d, t, (mpfr_ptr)0);
}

void ref_log_softmax_backward(ref_vec *out, ref_line logy, ref_line dy, double scale, double *local, double *global)
{
    size_t n = logy.n;
    if (n == 0 || grad_special(out, logy, dy, scale, 1, local, global))
        return;
    mpfr_t s, p;
    mpfr_inits2(REF_PREC, s, p, (mpfr_ptr)0);
    mpfr_set_zero(s, 1);
    double abs_sum = 0.0;
    for (size_t j = 0; j < n; j++) {
        mpfr_add_d(s, s, ref_line_get(dy, j), MPFR_RNDN);
        abs_sum += fabs(ref_line_get(dy, j));
    }
    double abs_s = fabs(mpfr_get_d(s, MPFR_RNDN));
    for (size_t i = 0; i < n; i++) {
        mpfr_ptr o = ref_at(out, i);
        mpfr_set_d(p, ref_line_get(logy, i), MPFR_RNDN);
        mpfr_exp(p, p, MPFR_RNDN);
        double pi = mpfr_get_d(p, MPFR_RNDN);
        mpfr_mul(p, p, s, MPFR_RNDN);
        mpfr_d_sub(o, ref_line_get(dy, i), p, MPFR_RNDN);
        mpfr_mul_d(o, o, scale, MPFR_RNDN);
        /* exp(logy_i) is itself rounded by the library: its error scales
         * with pi * |sum(dy)|. */
        if (local)
            local[i] = fabs(mpfr_get_d(o, MPFR_RNDN)) + fabs(scale) * pi * abs_s;
        if (global)
            global[i] = fabs(scale) * pi * abs_sum;
    }
    mpfr_clears(s, p, (mpfr_ptr)0);
}

void ref_log_softmax_jvp(ref_vec *out, ref_line logy, ref_line v, double scale, double *local, double *global)
{
    size_t n = logy.n;
    if (n == 0 || grad_special(out, logy, v, scale, 1, local, global))
        return;
    mpfr_t d, p;
    mpfr_inits2(REF_PREC, d, p, (mpfr_ptr)0);
    mpfr_set_zero(d, 1);
    double abs_sum = 0.0;
    for (size_t j = 0; j < n; j++) {
        mpfr_set_d(p, ref_line_get(logy, j), MPFR_RNDN);
        mpfr_exp(p, p, MPFR_RNDN);
        abs_sum += mpfr_get_d(p, MPFR_RNDN) * fabs(ref_line_get(v, j));
        mpfr_mul_d(p, p, ref_line_get(v, j), MPFR_RNDN);
        mpfr_add(d, d, p, MPFR_RNDN);
    }
    for (size_t i = 0; i < n; i++) {
        mpfr_ptr o = ref_at(out, i);
        mpfr_d_sub(o, ref_line_get(v, i), d, MPFR_RNDN);
        mpfr_mul_d(o, o, scale, MPFR_RNDN);
        if (local)
            local[i] = fabs(mpfr_get_d(o, MPFR_RNDN));
        if (global)
            global[i] = fabs(scale) * abs_sum;
    }
    mpfr_clears(d, p, (mpfr_ptr)0);
}

void ref_grad(softmax_op op, ref_vec *out, ref_line a, ref_line b, double scale, double *local, double *global)
{
    switch (op) {
    case SOFTMAX_OP_SOFTMAX_BACKWARD:
        ref_softmax_backward(out, a, b, scale, local, global);
        return;
    case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
        ref_log_softmax_backward(out, a, b, scale, local, global);
        return;
    case SOFTMAX_OP_LOG_SOFTMAX_JVP:
        ref_log_softmax_jvp(out, a, b, scale, local, global);
        return;
    default:
        break;
    }
    fprintf(stderr, "ref_grad: not a gradient op: %d\n", (int)op);
    abort();
}

void ref_softmax_jacobian(ref_vec *out, ref_line y, double scale, double *mag)
{
    size_t n = y.n;
    assert(out->n >= n * n && !isnan(scale));
    int any_nan = line_has_nan(y);
    mpfr_t t;
    mpfr_init2(t, REF_PREC);
    for (size_t i = 0; i < n; i++) {
        double yi = ref_line_get(y, i);
        for (size_t j = 0; j < n; j++) {
            double yj = ref_line_get(y, j);
            mpfr_ptr o = ref_at(out, i * n + j);
            if (isinf(scale) && !any_nan) {
                mpfr_set_zero(o, 1);
            } else {
                mpfr_set_d(t, yi, MPFR_RNDN);
                mpfr_mul_d(t, t, yj, MPFR_RNDN); /* exact */
                if (i == j)
                    mpfr_d_sub(o, yi, t, MPFR_RNDN);
                else
                    mpfr_neg(o, t, MPFR_RNDN);
                mpfr_mul_d(o, o, scale, MPFR_RNDN);
            }
            if (mag)
                mag[i * n + j] = isinf(scale) ? 0.0 : fabs(scale) * ((i == j ? fabs(yi) : 0.0) + fabs(yi * yj));
        }
    }
    mpfr_clear(t);
}

void ref_log_softmax_jacobian(ref_vec *out, ref_line logy, double scale, double *mag)
{
    size_t n = logy.n;
    assert(out->n >= n * n && !isnan(scale));
    int masked = 1;
    for (size_t i = 0; i < n; i++)
        masked &= ref_line_get(logy, i) == -INFINITY;
    int any_nan = line_has_nan(logy);
    mpfr_t p;
    mpfr_init2(p, REF_PREC);
    for (size_t j = 0; j < n; j++) {
        mpfr_set_d(p, ref_line_get(logy, j), MPFR_RNDN);
        mpfr_exp(p, p, MPFR_RNDN);
        double pj = mpfr_get_d(p, MPFR_RNDN);
        for (size_t i = 0; i < n; i++) {
            mpfr_ptr o = ref_at(out, i * n + j);
            int zero = !any_nan && (masked || isinf(scale));
            if (zero) {
                mpfr_set_zero(o, 1);
            } else {
                mpfr_si_sub(o, i == j ? 1 : 0, p, MPFR_RNDN);
                mpfr_mul_d(o, o, scale, MPFR_RNDN);
            }
            if (mag)
                mag[i * n + j] = zero ? 0.0 : fabs(scale) * ((i == j ? 1.0 : 0.0) + pj);
        }
    }
    mpfr_clear(p);
}

void ref_store(const ref_vec *ref, size_t n, softmax_dtype dt, void *buf)
{
    for (size_t i = 0; i < n; i++) {
        if (dt == SOFTMAX_DTYPE_F32)
            ((float *)buf)[i] = mpfr_get_flt(ref_at(ref, i), MPFR_RNDN);
        else
            ((double *)buf)[i] = mpfr_get_d(ref_at(ref, i), MPFR_RNDN);
    }
}

/* ------------------------------------------------------------------ errors */

double ulp_p(double v, int p)
{
    int e;
    (void)frexp(v, &e); /* v = m 2^e, 1/2 <= |m| < 1 */
    return ldexp(1.0, e - p);
}

void err_stats_init(err_stats *st)
{
    st->max_err = 0.0;
    st->checked = st->subnormal = st->failures = st->max_len = 0;
    st->worst_y = st->worst_ref = 0.0;
}

void err_stats_merge(err_stats *into, const err_stats *from)
{
    if (from->max_err > into->max_err || isnan(from->max_err)) {
        into->max_err = from->max_err;
        into->worst_y = from->worst_y;
        into->worst_ref = from->worst_ref;
    }
    into->checked += from->checked;
    into->subnormal += from->subnormal;
    into->failures += from->failures;
    if (from->max_len > into->max_len)
        into->max_len = from->max_len;
}

#define MAX_PRINTED_FAILURES 5

static int quiet_checks;
void ref_set_quiet(int quiet)
{
    quiet_checks = quiet;
}

static void record(err_stats *st, size_t *failures, int ok, double err, double y, mpfr_srcptr ref, size_t i,
                   double bound, const char *what)
{
    st->checked++;
    if (err > st->max_err || (!ok && !isnan(st->max_err) && isnan(err))) {
        st->max_err = err;
        st->worst_y = y;
        st->worst_ref = mpfr_get_d(ref, MPFR_RNDN);
    }
    if (!ok) {
        if (*failures < MAX_PRINTED_FAILURES && !quiet_checks)
            fprintf(stderr, "  FAIL %s [%zu]: got %.17g (%a), reference %.17g, error %.4g > bound %.4g\n", what, i, y,
                    y, mpfr_get_d(ref, MPFR_RNDN), err, bound);
        (*failures)++;
        st->failures++;
    }
}

/* |y - ref| * 2^-e as a double. */
static double scaled_abs_diff(double y, mpfr_srcptr ref, long e, mpfr_ptr tmp)
{
    mpfr_d_sub(tmp, y, ref, MPFR_RNDN);
    mpfr_abs(tmp, tmp, MPFR_RNDN);
    mpfr_mul_2si(tmp, tmp, -e, MPFR_RNDN);
    return mpfr_get_d(tmp, MPFR_RNDU);
}

size_t check_softmax_line(const ref_vec *ref, ref_line y, double bound, err_stats *st, const char *what)
{
    int p = precision_of(y.dtype);
    double min_normal = y.dtype == SOFTMAX_DTYPE_F32 ? FLT_MIN : DBL_MIN;
    double small_limit = min_normal + bound * ldexp(min_normal, 1 - p);
    size_t failures = 0;
    mpfr_t tmp, lim;
    mpfr_init2(tmp, REF_PREC + 64);
    mpfr_init2(lim, 64);
    mpfr_set_d(lim, min_normal, MPFR_RNDN);
    if (y.n > st->max_len)
        st->max_len = y.n;
    for (size_t i = 0; i < y.n; i++) {
        mpfr_srcptr r = ref_at(ref, i);
        double v = ref_line_get(y, i);
        if (mpfr_nan_p(r)) {
            record(st, &failures, isnan(v), isnan(v) ? 0.0 : INFINITY, v, r, i, bound, what);
        } else if (isnan(v)) {
            record(st, &failures, 0, INFINITY, v, r, i, bound, what);
        } else if (mpfr_cmpabs(r, lim) < 0) {
            /* Below the normal range: only the range is checked. */
            st->subnormal++;
            int ok = v >= 0.0 && v <= small_limit;
            record(st, &failures, ok, ok ? 0.0 : INFINITY, v, r, i, bound, what);
        } else {
            double err = scaled_abs_diff(v, r, mpfr_get_exp(r) - p, tmp);
            record(st, &failures, err <= bound, err, v, r, i, bound, what);
        }
    }
    mpfr_clears(tmp, lim, (mpfr_ptr)0);
    return failures;
}

size_t check_log_softmax_line(const ref_vec *ref, ref_line y, double bound, err_stats *st, const char *what)
{
    int p = precision_of(y.dtype);
    double max_finite = y.dtype == SOFTMAX_DTYPE_F32 ? FLT_MAX : DBL_MAX;
    size_t failures = 0;
    mpfr_t tmp;
    mpfr_init2(tmp, REF_PREC + 64);
    if (y.n > st->max_len)
        st->max_len = y.n;
    for (size_t i = 0; i < y.n; i++) {
        mpfr_srcptr r = ref_at(ref, i);
        double v = ref_line_get(y, i);
        if (mpfr_nan_p(r)) {
            record(st, &failures, isnan(v), isnan(v) ? 0.0 : INFINITY, v, r, i, bound, what);
            continue;
        }
        if (isnan(v)) {
            record(st, &failures, 0, INFINITY, v, r, i, bound, what);
            continue;
        }
        if (mpfr_inf_p(r)) {
            int ok = isinf(v) && (v > 0) == (mpfr_sgn(r) > 0);
            record(st, &failures, ok, ok ? 0.0 : INFINITY, v, r, i, bound, what);
            continue;
        }
        double rounded = p == FLT_MANT_DIG ? (double)mpfr_get_flt(r, MPFR_RNDN) : mpfr_get_d(r, MPFR_RNDN);
        if (isinf(rounded)) {
            /* The exact result lies beyond the format: its rounding is the
             * infinity; the largest finite value is accepted too. */
            int ok = v == rounded || v == copysign(max_finite, rounded);
            record(st, &failures, ok, ok ? 0.0 : INFINITY, v, r, i, bound, what);
            continue;
        }
        long e = mpfr_cmpabs_ui(r, 1) >= 0 ? mpfr_get_exp(r) : 1;
        double err = scaled_abs_diff(v, r, e - p, tmp);
        record(st, &failures, err <= bound, err, v, r, i, bound, what);
    }
    mpfr_clear(tmp);
    return failures;
}

size_t check_tolerance_line(const ref_vec *ref, const double *tol, ref_line y, err_stats *st, const char *what)
{
    size_t failures = 0;
    mpfr_t tmp;
    mpfr_init2(tmp, REF_PREC + 64);
    if (y.n > st->max_len)
        st->max_len = y.n;
    for (size_t i = 0; i < y.n; i++) {
        mpfr_srcptr r = ref_at(ref, i);
        double v = ref_line_get(y, i);
        if (mpfr_nan_p(r) || isnan(v)) {
            int ok = mpfr_nan_p(r) && isnan(v);
            record(st, &failures, ok, ok ? 0.0 : INFINITY, v, r, i, tol[i], what);
            continue;
        }
        double diff = scaled_abs_diff(v, r, 0, tmp);
        double err = diff == 0.0 ? 0.0 : diff / tol[i]; /* tol 0: exact result demanded */
        /* A NaN tolerance (see grad_tolerance) passes the exact result only. */
        record(st, &failures, diff == 0.0 || diff <= tol[i], err, v, r, i, tol[i], what);
    }
    mpfr_clear(tmp);
    return failures;
}

void grad_tolerance(double *tol, const double *local, const double *global, size_t n, softmax_dtype dt, double scale)
{
    int p = precision_of(dt);
    double u = ldexp(1.0, -p);
    double true_min = dt == SOFTMAX_DTYPE_F32 ? 0x1p-149 : 0x1p-1074;
    double c_global = GRAD_C_GLOBAL + (n > 1 ? log2((double)n) : 0.0);
    double floor_abs = GRAD_C_FLOOR * true_min * fmax(1.0, fabs(scale));
    for (size_t i = 0; i < n; i++) {
        /* u first: magnitudes near DBL_MAX keep a finite tolerance. Those
         * beyond it (dy near the end of the range) came out infinite: an
         * infinite tolerance would accept any result, so there it is NaN,
         * which only an exact result passes -- tests of such rows compute
         * their tolerances in MPFR (test_gradients). */
        const double t = GRAD_C_LOCAL * (u * local[i]) + c_global * (u * global[i]) + floor_abs;
        tol[i] = isfinite(t) ? t : NAN;
    }
}

double line_sum(ref_line l)
{
    mpfr_t s;
    mpfr_init2(s, 2 * REF_PREC);
    mpfr_set_zero(s, 1);
    for (size_t i = 0; i < l.n; i++)
        mpfr_add_d(s, s, ref_line_get(l, i), MPFR_RNDN);
    double r = mpfr_get_d(s, MPFR_RNDN);
    mpfr_clear(s);
    return r;
}

static double f32_ulp_bound = 2.0;
void ref_use_simd_bounds(int simd)
{
    f32_ulp_bound = simd ? 3.0 : 2.0;
}
double contract_ulp_bound(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? f32_ulp_bound : 4.0;
}

size_t check_forward_rows(softmax_dtype dt, int log, const void *x, const void *y, size_t rows, size_t cols,
                          double scale, err_stats *st, const char *what)
{
    size_t failures = 0, esize = dt == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    ref_vec ref;
    ref_vec_init(&ref, cols);
    for (size_t r = 0; r < rows; r++) {
        ref_line xl = ref_line_make(dt, (const char *)x + r * cols * esize, cols, 1);
        ref_line yl = ref_line_make(dt, (const char *)y + r * cols * esize, cols, 1);
        ref_softmax(&ref, xl, scale, log);
        failures += log ? check_log_softmax_line(&ref, yl, contract_ulp_bound(dt), st, what)
                        : check_softmax_line(&ref, yl, contract_ulp_bound(dt), st, what);
    }
    ref_vec_free(&ref);
    return failures;
}
