/*
 * test_summary.c -- the softmax family and sampling over a vocabulary cut
 * into slices (softmax_summary_*, softmax_sample_race and friends).
 *
 *  - Rows cut at random boundaries into 1..8 slices (empty ones included),
 *    merged in a random tree: the exact fields of the merged record (max,
 *    arg max, counts, candidates) equal the one-slice record bit for bit;
 *    the sums, softmax, log-softmax, logsumexp, entropy, NLL and its
 *    gradient are checked against MPFR at the bounds softmax.h states.
 *  - The contract's special rows (NaN, fully masked, +inf entries, scale
 *    0 and +-inf, negative scale) across slices.
 *  - Sampling: the token of every mode equals the one-slice token for many
 *    seeds and random cuts; the draw frequencies match the probabilities of
 *    an independent long double evaluation of the filters (chi-square), and
 *    no token outside the kept set is ever drawn.
 *  - Errors: bad arguments give their status and write nothing.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpfr.h>

#include "reference.h"
#include "testutil.h"

#define MAX_SLICES 8

/* ---------------------------------------------------------------------------
 * Cutting rows into slices and merging their records.
 * ------------------------------------------------------------------------ */

typedef struct cut {
    size_t count;
    size_t bounds[MAX_SLICES + 1]; /* slice s: columns [bounds[s], bounds[s + 1]) */
} cut;

static int compare_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static cut random_cut(test_rng *rng, size_t vocab, size_t count)
{
    cut c = {count, {0}};
    for (size_t s = 1; s < count; s++)
        c.bounds[s] = rng_below(rng, vocab + 1);
    c.bounds[count] = vocab;
    qsort(c.bounds + 1, count - 1, sizeof(size_t), compare_size);
    return c;
}

/* The columns [begin, end) of rows x vocab logits, as contiguous rows. */
static void *slice_copy(softmax_dtype dt, const void *x, size_t rows, size_t vocab, size_t begin, size_t end)
{
    size_t size = dtype_size(dt), cols = end - begin;
    char *out = malloc(rows * cols * size + 1);
    assert_non_null(out);
    for (size_t r = 0; r < rows; r++)
        memcpy(out + r * cols * size, (const char *)x + (r * vocab + begin) * size, cols * size);
    return out;
}

typedef struct sliced {
    size_t count;
    softmax_slice slices[MAX_SLICES];
    void *data[MAX_SLICES];
} sliced;

static sliced make_slices(softmax_dtype dt, const void *x, size_t rows, size_t vocab, const cut *c,
                          const int64_t *targets)
{
    sliced s = {c->count, {{0}}, {0}};
    for (size_t i = 0; i < c->count; i++) {
        s.data[i] = slice_copy(dt, x, rows, vocab, c->bounds[i], c->bounds[i + 1]);
        s.slices[i] =
            (softmax_slice){dt, s.data[i], rows, c->bounds[i + 1] - c->bounds[i], c->bounds[i], vocab, targets};
    }
    return s;
}

static void free_slices(sliced *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->data[i]);
}

/* Records of every slice, merged in a random tree; returns the merged
 * records (rows * bytes, malloc'ed). */
static void *merged_records_of(test_rng *rng, const sliced *s, double scale, size_t top_k,
                               const softmax_sampler_params *sampling)
{
    if (sampling != NULL)
        top_k = softmax_sample_capacity(sampling, s->slices[0].vocab);
    size_t rows = s->slices[0].rows, bytes = softmax_summary_bytes(top_k);
    void *parts[MAX_SLICES];
    for (size_t i = 0; i < s->count; i++) {
        parts[i] = malloc(rows * bytes + 1);
        assert_non_null(parts[i]);
        if (sampling != NULL)
            assert_int_equal(softmax_sample_summarize(sampling, &s->slices[i], parts[i]), SOFTMAX_OK);
        else
            assert_int_equal(softmax_summary_compute(&s->slices[i], scale, top_k, parts[i]), SOFTMAX_OK);
    }
    size_t live = s->count;
    while (live > 1) {
        size_t a = rng_below(rng, live), b = rng_below(rng, live - 1);
        if (b >= a)
            b++;
        assert_int_equal(softmax_summary_merge(parts[a], parts[b], rows), SOFTMAX_OK);
        free(parts[b]);
        parts[b] = parts[--live];
    }
    return parts[0];
}

static void *merged_records(test_rng *rng, const sliced *s, double scale, size_t top_k)
{
    return merged_records_of(rng, s, scale, top_k, NULL);
}

/* ---------------------------------------------------------------------------
 * The MPFR reference of a row: z = scale * x with max-subtraction.
 * ------------------------------------------------------------------------ */

typedef struct row_ref {
    double sum;     /* sum exp(z - max z) */
    double lse;     /* log sum exp z */
    double entropy; /* -sum p log p */
    double nll;     /* lse - z[target] */
} row_ref;

/* p_i (and log p_i) into p / logp (n doubles each), and the row values. Rows
 * with every z finite or -inf, at least one finite. */
static row_ref mpfr_row(const double *x, size_t n, double scale, size_t target, double *p, double *logp)
{
    mpfr_t z, max, sum, term, lse, weighted, tmp;
    mpfr_inits2(REF_PREC, z, max, sum, term, lse, weighted, tmp, (mpfr_ptr)0);
    mpfr_set_inf(max, -1);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(z, x[i], MPFR_RNDN);
        mpfr_mul_d(z, z, scale, MPFR_RNDN);
        if (mpfr_cmp(z, max) > 0)
            mpfr_set(max, z, MPFR_RNDN);
    }
    mpfr_set_zero(sum, 1);
    mpfr_set_zero(weighted, 1);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(z, x[i], MPFR_RNDN);
        mpfr_mul_d(z, z, scale, MPFR_RNDN);
        if (mpfr_inf_p(z))
            continue;
        mpfr_sub(z, z, max, MPFR_RNDN);
        mpfr_exp(term, z, MPFR_RNDN);
        mpfr_add(sum, sum, term, MPFR_RNDN);
        mpfr_mul(term, term, z, MPFR_RNDN);
        mpfr_add(weighted, weighted, term, MPFR_RNDN);
    }
    row_ref out;
    out.sum = mpfr_get_d(sum, MPFR_RNDN);
    mpfr_log(lse, sum, MPFR_RNDN);
    for (size_t i = 0; i < n; i++) {
        mpfr_set_d(z, x[i], MPFR_RNDN);
        mpfr_mul_d(z, z, scale, MPFR_RNDN);
        if (mpfr_inf_p(z)) {
            p[i] = 0.0;
            logp[i] = -INFINITY;
            continue;
        }
        mpfr_sub(z, z, max, MPFR_RNDN);
        mpfr_sub(tmp, z, lse, MPFR_RNDN);
        logp[i] = mpfr_get_d(tmp, MPFR_RNDN);
        mpfr_exp(tmp, tmp, MPFR_RNDN);
        p[i] = mpfr_get_d(tmp, MPFR_RNDN);
    }
    mpfr_div(weighted, weighted, sum, MPFR_RNDN);
    mpfr_sub(term, lse, weighted, MPFR_RNDN);
    out.entropy = mpfr_get_d(term, MPFR_RNDN);
    mpfr_set_d(z, x[target], MPFR_RNDN);
    mpfr_mul_d(z, z, scale, MPFR_RNDN);
    mpfr_sub(z, z, max, MPFR_RNDN);
    mpfr_sub(term, lse, z, MPFR_RNDN);
    out.nll = mpfr_get_d(term, MPFR_RNDN);
    mpfr_add(lse, lse, max, MPFR_RNDN);
    out.lse = mpfr_get_d(lse, MPFR_RNDN);
    mpfr_clears(z, max, sum, term, lse, weighted, tmp, (mpfr_ptr)0);
    return out;
}

static double ulp_of(double v, int precision)
{
    return ulp_p(fmax(fabs(v), DBL_MIN), precision);
}

/* Softmax outputs: f32 within 1 ulp of the exact value (the exact value
 * rounded or its neighbour), f64 within bound ulp; below the normal range,
 * within one ulp of the smallest normal. */
static int close_in_ulp(double got, double want, int precision, double bound)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    double min_normal = precision == 24 ? FLT_MIN : DBL_MIN;
    double unit = fabs(want) < min_normal ? ulp_p(min_normal, precision) : ulp_of(want, precision);
    return fabs(got - want) <= bound * unit;
}

/* ---------------------------------------------------------------------------
 * Random rows against MPFR.
 * ------------------------------------------------------------------------ */

/* Random logits; masked ones (scale * x = -inf) are -inf, or +inf for a
 * negative scale. */
static void fill_row(test_rng *rng, softmax_dtype dt, void *x, size_t offset, size_t n, int kind, double scale)
{
    double spread = kind == 0 ? 3.0 : kind == 1 ? 30.0 : 1e4;
    for (size_t i = 0; i < n; i++) {
        double v = rng_normal(rng) * spread + (kind == 2 ? 1e6 : 0.0);
        if (rng_below(rng, 50) == 0)
            v = scale < 0 ? INFINITY : -INFINITY; /* a masked column */
        if (dt == SOFTMAX_DTYPE_BF16) {
            float f = (float)v;
            uint16_t h;
            softmax_convert(&h, SOFTMAX_DTYPE_BF16, &f, SOFTMAX_DTYPE_F32, 1);
            ((uint16_t *)x)[offset + i] = h;
        } else {
            buf_set(dt, x, offset + i, v);
        }
    }
}

static double read_value(softmax_dtype dt, const void *x, size_t i)
{
    if (dt == SOFTMAX_DTYPE_BF16) {
        float f;
        softmax_convert(&f, SOFTMAX_DTYPE_F32, (const uint16_t *)x + i, SOFTMAX_DTYPE_BF16, 1);
        return f;
    }
    return buf_get(dt, x, i);
}

static void check_random_rows(softmax_dtype dt, uint64_t seed)
{
    test_rng rng;
    rng_seed(&rng, seed);
    const size_t rows = 3;
    const double scales[] = {1.0, 0.37, 2.5, -1.3, 1e-3, 40.0};
    size_t worst_slices = 0;
    double worst_sum = 0.0, worst_value = 0.0, worst_p = 0.0;
    for (int trial = 0; trial < 40; trial++) {
        size_t vocab = 1 + rng_below(&rng, trial < 30 ? 700 : 5000);
        size_t size = dtype_size(dt);
        void *x = malloc(rows * vocab * size);
        assert_non_null(x);
        double scale = scales[rng_below(&rng, ARRAY_LEN(scales))];
        if (dt == SOFTMAX_DTYPE_F64 && rng_below(&rng, 2))
            scale = rng_range(&rng, -5.0, 5.0);
        for (size_t r = 0; r < rows; r++)
            fill_row(&rng, dt, x, r * vocab, vocab, (int)rng_below(&rng, 3), scale);
        int64_t targets[3];
        for (size_t r = 0; r < rows; r++)
            targets[r] = (int64_t)rng_below(&rng, vocab);
        size_t top_k = rng_below(&rng, 6);
        size_t count = 1 + rng_below(&rng, MAX_SLICES);
        cut whole = {1, {0, vocab}};
        cut c = random_cut(&rng, vocab, count);
        sliced one = make_slices(dt, x, rows, vocab, &whole, targets);
        sliced many = make_slices(dt, x, rows, vocab, &c, targets);
        void *ref_records = merged_records(&rng, &one, scale, top_k);
        void *records = merged_records(&rng, &many, scale, top_k);
        size_t bytes = softmax_summary_bytes(top_k);

        double *xv = malloc(vocab * sizeof(double)), *p = malloc(vocab * sizeof(double));
        double *logp = malloc(vocab * sizeof(double));
        assert_true(xv && p && logp);
        int precision = dt == SOFTMAX_DTYPE_F64 ? 53 : 24;
        double value_bound = dt == SOFTMAX_DTYPE_F64 ? (double)count + 4.0 : 1.0;
        double lse[3], entropy[3], nll[3];
        int64_t argmax[3], ref_argmax[3];
        assert_int_equal(softmax_summary_stats(records, rows, lse, entropy, argmax, nll), SOFTMAX_OK);
        assert_int_equal(softmax_summary_stats(ref_records, rows, NULL, NULL, ref_argmax, NULL), SOFTMAX_OK);
        for (size_t r = 0; r < rows; r++) {
            const softmax_summary *a = (const softmax_summary *)((const char *)records + r * bytes);
            const softmax_summary *b = (const softmax_summary *)((const char *)ref_records + r * bytes);
            /* The exact fields: the same bits for any cut and merge order. */
            assert_memory_equal(&a->ref, &b->ref, sizeof a->ref);
            assert_int_equal(a->argmax, b->argmax);
            assert_int_equal(a->count_ref, b->count_ref);
            assert_int_equal(a->count_kept, b->count_kept);
            assert_int_equal(a->columns, vocab);
            assert_int_equal(a->candidates, b->candidates);
            assert_memory_equal(a + 1, b + 1, a->candidates * sizeof(softmax_candidate));
            assert_int_equal(argmax[r], ref_argmax[r]);
            /* Candidates: the top_k largest scale * x, ties by column. */
            for (size_t i = 0; i < vocab; i++)
                xv[i] = read_value(dt, x, r * vocab + i);
            const softmax_candidate *cand = (const softmax_candidate *)(a + 1);
            for (size_t k = 0; k < a->candidates; k++) {
                double t = scale < 0 ? -cand[k].logit : cand[k].logit;
                size_t better = 0;
                for (size_t i = 0; i < vocab; i++) {
                    double ti = scale < 0 ? -xv[i] : xv[i];
                    better += ti > t || (ti == t && (int64_t)i < cand[k].column);
                }
                assert_int_equal(better, k);
            }
            if (a->count_kept == 0)
                continue; /* fully masked: the special tests */
            row_ref want = mpfr_row(xv, vocab, scale, (size_t)targets[r], p, logp);
            double sum = a->sum_hi + a->sum_lo;
            double sum_err = fabs(sum - want.sum) / want.sum / 0x1p-52;
            if (sum_err > worst_sum)
                worst_sum = sum_err;
            if (!(sum_err <= (double)count + 2.0)) {
                printf("%s row %zu, %zu slices: S = %.17g, exact %.17g (%.2f x 2^-52)\n", dtype_name(dt), r, count, sum,
                       want.sum, sum_err);
                fail();
            }
            double bound53 = (double)count + 4.0;
            double got[3] = {lse[r], entropy[r], nll[r]}, exact[3] = {want.lse, want.entropy, want.nll};
            for (int k = 0; k < 3; k++) {
                double err = isinf(exact[k]) ? (got[k] == exact[k] ? 0.0 : INFINITY)
                                             : fabs(got[k] - exact[k]) / ulp_p(fmax(fabs(exact[k]), 1.0), 53);
                if (err > worst_value)
                    worst_value = err;
                if (!(err <= bound53)) {
                    printf("%s row %zu: value %d = %.17g, exact %.17g (%.1f ulp)\n", dtype_name(dt), r, k, got[k],
                           exact[k], err);
                    fail();
                }
            }
            /* Softmax, log-softmax and the NLL gradient of each slice. */
            for (size_t s = 0; s < many.count; s++) {
                const softmax_slice *sl = &many.slices[s];
                size_t out_size = dt == SOFTMAX_DTYPE_F64 ? 8 : 4;
                void *y = malloc(rows * sl->cols * out_size + 1), *ly = malloc(rows * sl->cols * out_size + 1);
                void *dx = malloc(rows * sl->cols * out_size + 1);
                assert_true(y && ly && dx);
                assert_int_equal(softmax_summary_softmax(sl, records, 0, y), SOFTMAX_OK);
                assert_int_equal(softmax_summary_softmax(sl, records, 1, ly), SOFTMAX_OK);
                assert_int_equal(softmax_summary_nll_backward(sl, records, dx), SOFTMAX_OK);
                softmax_dtype out_dt = dt == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
                for (size_t i = 0; i < sl->cols; i++) {
                    size_t column = sl->col_offset + i;
                    double yv = buf_get(out_dt, y, r * sl->cols + i), lv = buf_get(out_dt, ly, r * sl->cols + i);
                    double gv = buf_get(out_dt, dx, r * sl->cols + i);
                    double pe = fabs(yv - p[column]) / ulp_of(p[column], precision);
                    if (p[column] >= (precision == 24 ? FLT_MIN : DBL_MIN) && pe > worst_p)
                        worst_p = pe;
                    if (!close_in_ulp(yv, p[column], precision, value_bound) ||
                        !(isinf(logp[column]) ? lv == logp[column]
                                              : fabs(lv - logp[column]) <=
                                                    value_bound * ulp_p(fmax(fabs(logp[column]), 1.0), precision))) {
                        printf("%s row %zu column %zu (%zu slices): p %.17g / %.17g, log p %.17g / %.17g\n",
                               dtype_name(dt), r, column, count, yv, p[column], lv, logp[column]);
                        fail();
                    }
                    double g_exact = scale * (p[column] - ((int64_t)column == targets[r] ? 1.0 : 0.0));
                    double g_tol = fabs(scale) * (value_bound + 2.0) * ulp_p(1.0, precision);
                    if (!(fabs(gv - g_exact) <= g_tol)) {
                        printf("%s row %zu column %zu: gradient %.17g, exact %.17g\n", dtype_name(dt), r, column, gv,
                               g_exact);
                        fail();
                    }
                }
                free(y);
                free(ly);
                free(dx);
            }
        }
        if (count > worst_slices)
            worst_slices = count;
        free(xv);
        free(p);
        free(logp);
        free(records);
        free(ref_records);
        free_slices(&one);
        free_slices(&many);
        free(x);
    }
    printf("%s: largest errors: S %.2f x 2^-52, logsumexp/entropy/NLL %.2f ulp, softmax %.2f ulp\n", dtype_name(dt),
           worst_sum, worst_value, worst_p);
}

static void test_random_rows_f32(void **state)
{
    (void)state;
    check_random_rows(SOFTMAX_DTYPE_F32, 11);
}
static void test_random_rows_f64(void **state)
{
    (void)state;
    check_random_rows(SOFTMAX_DTYPE_F64, 12);
}
static void test_random_rows_bf16(void **state)
{
    (void)state;
    check_random_rows(SOFTMAX_DTYPE_BF16, 13);
}

/* ---------------------------------------------------------------------------
 * The contract's special rows, across every kind of cut.
 * ------------------------------------------------------------------------ */

typedef struct special_case {
    const char *name;
    double x[6];
    double scale;
    double p[6]; /* expected softmax (NaN: a NaN row) */
    double lse, entropy;
    int64_t argmax;
    int64_t target;
    double nll;
    int gradient_zero; /* the contract's all-zero gradient */
} special_case;

static void test_special_rows(void **state)
{
    (void)state;
    const double inf = INFINITY, nan = NAN, ln2 = log(2.0), ln5 = log(5.0);
    const special_case cases[] = {
        {"NaN row", {1, 2, nan, 3, -inf, 0}, 1.0, {nan, nan, nan, nan, nan, nan}, nan, nan, 2, 0, nan, 0},
        {"fully masked", {-inf, -inf, -inf, -inf, -inf, -inf}, 1.0, {0, 0, 0, 0, 0, 0}, -inf, 0.0, 0, 3, inf, 1},
        {"+inf entries", {1, inf, 2, inf, -inf, 0}, 1.5, {0, 0.5, 0, 0.5, 0, 0}, inf, ln2, 1, 1, ln2, 0},
        {"+inf entries, target outside",
         {1, inf, 2, inf, -inf, 0},
         1.5,
         {0, 0.5, 0, 0.5, 0, 0},
         inf,
         ln2,
         1,
         2,
         inf,
         0},
        {"negative scale: -inf gets the mass",
         {1, inf, 2, inf, -inf, 0},
         -2.0,
         {0, 0, 0, 0, 1, 0},
         inf,
         0.0,
         4,
         4,
         0.0,
         0},
        {"scale 0: uniform over the kept",
         {1, 3, 3, -inf, 2, 0},
         0.0,
         {0.2, 0.2, 0.2, 0, 0.2, 0.2},
         ln5,
         ln5,
         0,
         4,
         ln5,
         1},
        {"scale +inf: ties share", {1, 3, 3, -inf, 2, 0}, inf, {0, 0.5, 0.5, 0, 0, 0}, inf, ln2, 1, 2, ln2, 1},
        {"scale -inf: arg min", {1, 3, 3, -inf, 2, 0}, -inf, {0, 0, 0, 1, 0, 0}, inf, 0.0, 3, 0, inf, 1},
        {"scale +inf, max 0", {0, -1, 0, -inf, -2, -3}, inf, {0.5, 0, 0.5, 0, 0, 0}, ln2, ln2, 0, 0, ln2, 1},
        {"every +inf, negative scale: masked",
         {inf, inf, inf, inf, inf, inf},
         -1.0,
         {0, 0, 0, 0, 0, 0},
         -inf,
         0.0,
         0,
         0,
         inf,
         1},
        {"ignored target", {1, 2, 3, 4, 5, 6}, 1.0, {nan}, nan, nan, 5, -1, 0.0, 1},
    };
    test_rng rng;
    rng_seed(&rng, 5);
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        const special_case *sc = &cases[c];
        for (int trial = 0; trial < 30; trial++) {
            softmax_dtype dt = trial % 2 ? SOFTMAX_DTYPE_F32 : SOFTMAX_DTYPE_F64;
            void *x = buf_alloc(dt, 6);
            for (size_t i = 0; i < 6; i++)
                buf_set(dt, x, i, sc->x[i]);
            cut ct = random_cut(&rng, 6, 1 + rng_below(&rng, 6));
            int64_t target = sc->target;
            sliced s = make_slices(dt, x, 1, 6, &ct, &target);
            void *records = merged_records(&rng, &s, sc->scale, 2);
            double lse, entropy, nll;
            int64_t argmax;
            assert_int_equal(softmax_summary_stats(records, 1, &lse, &entropy, &argmax, &nll), SOFTMAX_OK);
            if (sc->target < 0) { /* an ignored row: NLL 0 (gradient 0 below) */
                assert_true(nll == 0.0);
            } else if (!(isnan(sc->lse) ? isnan(lse) : lse == sc->lse) ||
                       !(isnan(sc->entropy) ? isnan(entropy) : entropy == sc->entropy) || argmax != sc->argmax ||
                       !(isnan(sc->nll) ? isnan(nll) : nll == sc->nll)) {
                printf("%s: lse %g entropy %g argmax %lld nll %g\n", sc->name, lse, entropy, (long long)argmax, nll);
                fail();
            }
            softmax_dtype out_dt = dt == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
            for (size_t k = 0; k < s.count; k++) {
                const softmax_slice *sl = &s.slices[k];
                if (sl->cols == 0)
                    continue;
                void *y = buf_alloc(out_dt, sl->cols), *ly = buf_alloc(out_dt, sl->cols),
                     *g = buf_alloc(out_dt, sl->cols);
                assert_int_equal(softmax_summary_softmax(sl, records, 0, y), SOFTMAX_OK);
                assert_int_equal(softmax_summary_softmax(sl, records, 1, ly), SOFTMAX_OK);
                assert_int_equal(softmax_summary_nll_backward(sl, records, g), SOFTMAX_OK);
                for (size_t i = 0; i < sl->cols; i++) {
                    size_t column = sl->col_offset + i;
                    double want = sc->p[column], yv = buf_get(out_dt, y, i), lv = buf_get(out_dt, ly, i);
                    double gv = buf_get(out_dt, g, i);
                    if (sc->target < 0)
                        continue; /* only the gradient is pinned below */
                    double want_log = isnan(want) ? NAN : log(want);
                    int ok = isnan(want) ? isnan(yv) && isnan(lv) && isnan(gv)
                                         : yv == dtype_round(out_dt, want) && lv == dtype_round(out_dt, want_log);
                    if (ok && !isnan(want)) {
                        double want_g = sc->gradient_zero ? 0.0 : sc->scale * (want - ((int64_t)column == sc->target));
                        ok = gv == dtype_round(out_dt, want_g);
                    }
                    if (!ok) {
                        printf("%s (%s) column %zu: p %g log %g grad %g, want p %g\n", sc->name, dtype_name(dt), column,
                               yv, lv, gv, want);
                        fail();
                    }
                }
                if (sc->target < 0)
                    for (size_t i = 0; i < sl->cols; i++)
                        assert_true(buf_get(out_dt, g, i) == 0.0);
                free(y);
                free(ly);
                free(g);
            }
            free(records);
            free_slices(&s);
            free(x);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Sampling: the protocol run in one process over the slices of a cut.
 * ------------------------------------------------------------------------ */

static int sample_over(test_rng *rng, const softmax_sampler_params *params, softmax_dtype dt, const void *x,
                       size_t rows, size_t vocab, const cut *c, uint64_t step, const uint64_t *streams,
                       int64_t *indices)
{
    sliced s = make_slices(dt, x, rows, vocab, c, NULL);
    size_t top_k = params->top_k > 0 ? (size_t)params->top_k : 0;
    double scale = params->temperature > 0.0 && params->temperature < INFINITY ? 1.0 / params->temperature : 1.0;
    if (!(scale < INFINITY))
        scale = 1.0;
    /* Either records: with sums (softmax_summary_compute) or without
     * (softmax_sample_summarize); the tokens must not depend on it. */
    void *records = merged_records_of(rng, &s, scale, top_k, rng_below(rng, 2) ? params : NULL);
    int needs = softmax_sample_rounds(params, vocab);
    assert_true(needs >= 0);
    softmax_top_p_search *search = NULL;
    softmax_draw *draws = NULL;
    if (needs & SOFTMAX_SAMPLE_NEEDS_TOP_P) {
        search = calloc(rows, sizeof *search);
        softmax_top_p_bin *bins = calloc(rows * SOFTMAX_TOP_P_BINS, sizeof *bins);
        softmax_top_p_bin *part = calloc(rows * SOFTMAX_TOP_P_BINS, sizeof *part);
        assert_true(search && bins && part);
        assert_int_equal(softmax_top_p_start(params, records, rows, search), SOFTMAX_OK);
        int rounds = 0, searching = 1;
        while (searching > 0) {
            memset(bins, 0, rows * SOFTMAX_TOP_P_BINS * sizeof *bins);
            for (size_t k = 0; k < s.count; k++) {
                assert_int_equal(softmax_top_p_histogram(params, &s.slices[k], records, search, part), SOFTMAX_OK);
                assert_int_equal(softmax_top_p_bins_merge(bins, part, rows), SOFTMAX_OK);
            }
            searching = softmax_top_p_narrow(search, bins, rows);
            assert_true(searching >= 0);
            assert_true(++rounds <= 16);
        }
        free(bins);
        free(part);
    }
    if (needs & SOFTMAX_SAMPLE_NEEDS_RACE) {
        draws = calloc(rows, sizeof *draws);
        softmax_draw *part = calloc(rows, sizeof *part);
        assert_true(draws && part);
        for (size_t r = 0; r < rows; r++)
            draws[r] = (softmax_draw){-INFINITY, -1};
        /* Slices reduced in a random order. */
        size_t order[MAX_SLICES];
        for (size_t k = 0; k < s.count; k++)
            order[k] = k;
        for (size_t k = s.count; k > 1; k--) {
            size_t j = rng_below(rng, k), tmp = order[k - 1];
            order[k - 1] = order[j];
            order[j] = tmp;
        }
        for (size_t k = 0; k < s.count; k++) {
            assert_int_equal(softmax_sample_race(params, &s.slices[order[k]], records, search, step, streams, part),
                             SOFTMAX_OK);
            assert_int_equal(softmax_draw_merge(draws, part, rows), SOFTMAX_OK);
        }
        free(part);
    }
    int status = softmax_sample_finish(params, records, rows, search, draws, step, streams, indices);
    free(search);
    free(draws);
    free(records);
    free_slices(&s);
    return status;
}

static softmax_sampler_params params_of(double temperature, int64_t top_k, double top_p, double min_p, uint64_t seed)
{
    softmax_sampler_params p;
    softmax_sampler_params_init(&p);
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    return p;
}

typedef struct mode {
    const char *name;
    double temperature;
    int64_t top_k;
    double top_p, min_p;
} mode;

static const mode modes[] = {
    {"temperature 1", 1.0, 0, 1.0, 0.0},
    {"temperature 0.6", 0.6, 0, 1.0, 0.0},
    {"top-k 5", 0.8, 5, 1.0, 0.0},
    {"top-p 0.8", 1.3, 0, 0.8, 0.0},
    {"top-p 0.3", 1.0, 0, 0.3, 0.0},
    {"min-p 0.1", 1.0, 0, 1.0, 0.1},
    {"top-k 20 + top-p 0.9 + min-p 0.05", 0.9, 20, 0.9, 0.05},
    {"top-p 0.95 + min-p 0.02", 1.1, 0, 0.95, 0.02},
    {"greedy", 0.0, 0, 1.0, 0.0},
    {"temperature +inf", INFINITY, 0, 1.0, 0.0},
    {"temperature +inf, top-k 3", INFINITY, 3, 1.0, 0.0},
    {"temperature +inf, top-p 0.5", INFINITY, 0, 0.5, 0.0},
    {"tiny temperature", 1e-300, 0, 1.0, 0.0},
};

/* Every mode, many seeds, rows with ties, +inf entries, a NaN row and a
 * fully masked row: the tokens of any cut equal those of one slice. */
static void test_sampling_same_token_for_any_cut(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 77);
    const size_t rows = 6;
    size_t compared = 0;
    for (size_t m = 0; m < ARRAY_LEN(modes); m++) {
        for (int trial = 0; trial < 24; trial++) {
            softmax_dtype dt = trial % 3 == 0 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
            size_t vocab = 2 + rng_below(&rng, trial < 20 ? 400 : 3000);
            void *x = buf_alloc(dt, rows * vocab);
            for (size_t r = 0; r < rows; r++)
                for (size_t i = 0; i < vocab; i++) {
                    double v = rng_normal(&rng) * 2.0;
                    if (r == 1)
                        v = floor(v * 2.0) / 2.0; /* many ties */
                    if (r == 2 && rng_below(&rng, 40) == 0)
                        v = INFINITY;
                    if (rng_below(&rng, 30) == 0)
                        v = -INFINITY;
                    if (r == 4)
                        v = i == vocab / 2 ? NAN : v;
                    if (r == 5)
                        v = -INFINITY;
                    buf_set(dt, x, r * vocab + i, v);
                }
            softmax_sampler_params p =
                params_of(modes[m].temperature, modes[m].top_k, modes[m].top_p, modes[m].min_p, rng_next(&rng));
            uint64_t step = rng_below(&rng, 1000), streams[6];
            for (size_t r = 0; r < rows; r++)
                streams[r] = rng_next(&rng);
            int64_t one[6], many[6];
            cut whole = {1, {0, vocab}};
            assert_int_equal(sample_over(&rng, &p, dt, x, rows, vocab, &whole, step, streams, one),
                             SOFTMAX_E_NO_FINITE_LOGIT);
            assert_int_equal(one[4], -1);
            assert_int_equal(one[5], -1);
            for (int again = 0; again < 3; again++) {
                cut c = random_cut(&rng, vocab, 1 + rng_below(&rng, MAX_SLICES));
                assert_int_equal(sample_over(&rng, &p, dt, x, rows, vocab, &c, step, streams, many),
                                 SOFTMAX_E_NO_FINITE_LOGIT);
                for (size_t r = 0; r < rows; r++) {
                    if (one[r] != many[r]) {
                        printf("%s, row %zu, %zu slices: token %lld, one slice %lld\n", modes[m].name, r, c.count,
                               (long long)many[r], (long long)one[r]);
                        fail();
                    }
                    compared++;
                }
            }
            /* The tokens are kept ones: never masked, +inf when the row has +inf. */
            for (size_t r = 0; r < 4; r++) {
                assert_true(one[r] >= 0 && (size_t)one[r] < vocab);
                double v = buf_get(dt, x, r * vocab + (size_t)one[r]);
                assert_true(v > -INFINITY);
            }
            free(x);
        }
    }
    printf("%zu draws: the same token for every cut\n", compared);
}

/* The race as softmax.h defines it, computed here from the public
 * Philox4x32-10, every score of the row: the library's token (which skips
 * columns that cannot win) must be this one. */
static int64_t race_by_definition(const double *x, size_t n, double temperature, double min_p, uint64_t seed,
                                  uint64_t stream, uint64_t step)
{
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t counter[4] = {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t k[4];
    softmax_philox4x32_10(counter, key, k);
    double best = -INFINITY;
    int64_t best_column = -1;
    for (size_t c = 0; c < n; c++) {
        if (x[c] == -INFINITY)
            continue;
        double d = x[c] == max ? 0.0 : (x[c] - max) * (1.0 / temperature);
        if (isinf(x[c] - max) && isfinite(x[c])) /* the difference overflows f64: halves */
            d = ((0.5 * x[c] - 0.5 * max) * (1.0 / temperature)) * 2.0;
        if (min_p > 0.0 && !(exp(d) >= min_p))
            continue;
        const uint32_t column_counter[4] = {(uint32_t)(c / 2), (uint32_t)((uint64_t)(c / 2) >> 32), k[0], k[1]};
        const uint32_t column_key[2] = {k[2], k[3]};
        uint32_t o[4];
        softmax_philox4x32_10(column_counter, column_key, o);
        uint64_t w = c % 2 == 0 ? ((uint64_t)o[1] << 32 | o[0]) : ((uint64_t)o[3] << 32 | o[2]);
        double u = ((double)(w >> 11) + 0.5) * 0x1p-53;
        double score = d + -log(-log(u));
        if (score > best) {
            best = score;
            best_column = (int64_t)c;
        }
    }
    return best_column;
}

static void test_race_matches_definition(void **state)
{
    (void)state;
    test_rng rng;
    rng_seed(&rng, 4242);
    const double temperatures[] = {1.0, 0.7, 3.0, 0.05};
    size_t checked = 0;
    for (int trial = 0; trial < 120; trial++) {
        size_t n = 1 + rng_below(&rng, 3000);
        double *x = malloc(n * sizeof(double));
        assert_non_null(x);
        double spread = trial % 3 == 0 ? 1.0 : trial % 3 == 1 ? 5.0 : 30.0;
        for (size_t i = 0; i < n; i++)
            x[i] = rng_below(&rng, 40) == 0 ? -INFINITY : rng_normal(&rng) * spread;
        if (n > 1)
            x[rng_below(&rng, n)] = x[0]; /* a tie with column 0 */
        double temperature = temperatures[trial % 4], min_p = trial % 5 == 0 ? 0.01 : 0.0;
        softmax_sampler_params p = params_of(temperature, 0, 1.0, min_p, rng_next(&rng));
        uint64_t step = rng_below(&rng, 100);
        int any_kept = 0;
        for (size_t i = 0; i < n; i++)
            any_kept |= x[i] > -INFINITY;
        if (!any_kept)
            x[0] = 0.0;
        cut c = random_cut(&rng, n, 1 + rng_below(&rng, 4));
        int64_t token;
        assert_int_equal(sample_over(&rng, &p, SOFTMAX_DTYPE_F64, x, 1, n, &c, step, NULL, &token), SOFTMAX_OK);
        int64_t want = race_by_definition(x, n, temperature, min_p, p.seed, 0, step);
        if (token != want) {
            printf("n %zu, T %g: token %lld, by the definition %lld\n", n, temperature, (long long)token,
                   (long long)want);
            fail();
        }
        checked++;
        free(x);
    }
    printf("%zu draws equal the definition's\n", checked);
}

/* ---------------------------------------------------------------------------
 * The distribution: frequencies against long double probabilities of the
 * filtered distribution (the filters evaluated independently, by sorting).
 * ------------------------------------------------------------------------ */

static void reference_distribution(const double *x, size_t n, const mode *md, long double *prob)
{
    size_t order[64];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) /* insertion sort: logit descending, index ascending */
        for (size_t j = i; j > 0 && (x[order[j]] > x[order[j - 1]]); j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    long double w[64], max = x[order[0]];
    int kept[64];
    for (size_t i = 0; i < n; i++) {
        w[i] = expl(((long double)x[i] - max) / (long double)md->temperature);
        kept[i] = 1;
    }
    if (md->top_k > 0)
        for (size_t i = (size_t)md->top_k; i < n; i++)
            kept[order[i]] = 0;
    if (md->top_p < 1.0) {
        long double total = 0, cumulative = 0;
        for (size_t i = 0; i < n; i++)
            total += kept[i] ? w[i] : 0;
        int reached = 0;
        for (size_t i = 0; i < n; i++) {
            size_t j = order[i];
            if (!kept[j])
                continue;
            if (reached)
                kept[j] = 0;
            cumulative += w[j];
            if (cumulative >= (long double)md->top_p * total)
                reached = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (w[i] < (long double)md->min_p)
            kept[i] = 0;
    long double total = 0;
    for (size_t i = 0; i < n; i++)
        total += kept[i] ? w[i] : 0;
    for (size_t i = 0; i < n; i++)
        prob[i] = kept[i] ? w[i] / total : 0;
}

/* Frequencies of `draws` tokens of the row (random cuts) against the
 * long double probabilities of the mode: chi-square below its 1 - 1e-6
 * quantile, and nothing outside the kept set. */
static void check_frequencies(test_rng *rng, const double *x, size_t n, const mode *md, int draws, uint64_t salt)
{
    long double prob[64];
    assert_true(n <= 64);
    reference_distribution(x, n, md, prob);
    long counts[64] = {0};
    for (int d = 0; d < draws; d++) {
        softmax_sampler_params p =
            params_of(md->temperature, md->top_k, md->top_p, md->min_p, (uint64_t)d * 7919u + salt);
        cut c = random_cut(rng, n, 1 + rng_below(rng, 4));
        int64_t token;
        assert_int_equal(sample_over(rng, &p, SOFTMAX_DTYPE_F64, x, 1, n, &c, (uint64_t)d, NULL, &token), SOFTMAX_OK);
        assert_true(token >= 0 && (size_t)token < n);
        counts[token]++;
    }
    double chi2 = 0.0;
    int df = -1;
    for (size_t i = 0; i < n; i++) {
        if (prob[i] == 0) {
            if (counts[i] != 0) {
                printf("%s: token %zu outside the kept set drawn %ld times\n", md->name, i, counts[i]);
                fail();
            }
            continue;
        }
        double expected = (double)prob[i] * draws;
        chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
        df++;
    }
    if (df < 1) /* one token kept: drawn every time, checked above */
        return;
    /* The 1 - 1e-6 quantile of chi-square(df), Wilson-Hilferty. */
    double a = 2.0 / (9.0 * df), z = 4.75;
    double critical = df * pow(1.0 - a + z * sqrt(a), 3.0);
    printf("%s: chi-square %.2f with %d degrees of freedom (critical %.2f)\n", md->name, chi2, df, critical);
    assert_true(chi2 < critical);
}

static void test_sampling_distribution(void **state)
{
    (void)state;
    const double x[12] = {1.0, 2.5, 0.3, 2.2, -1.0, 1.7, 0.0, 2.4, -0.5, 1.1, 0.8, -2.0};
    const mode dist_modes[] = {
        {"temperature 1", 1.0, 0, 1.0, 0.0},
        {"temperature 0.5, top-k 4", 0.5, 4, 1.0, 0.0},
        {"top-p 0.7", 1.0, 0, 0.7, 0.0},
        {"min-p 0.2", 1.0, 0, 1.0, 0.2},
        {"top-k 6 + top-p 0.9 + min-p 0.1", 2.0, 6, 0.9, 0.1},
    };
    test_rng rng;
    rng_seed(&rng, 99);
    for (size_t m = 0; m < ARRAY_LEN(dist_modes); m++)
        check_frequencies(&rng, x, 12, &dist_modes[m], 20000, m);
}

/* Rows whose differences x_i - max overflow f64 (1e308 and -1e308) at a
 * scale or temperature that brings them back (scale 1e-308: z = {1, -1}):
 * the sums lost those columns ({1e308, -1e308} at scale 1e-308 gave
 * logsumexp 1, not 1.127, softmax {1, 0}, and the race at T = 1e308 drew
 * column 0 only). Against MPFR for 1 to 3 slices, and the draw frequencies. */
static void test_differences_beyond_f64(void **state)
{
    (void)state;
    const double x[6] = {1e308, -1e308, 0.0, -INFINITY, -DBL_MAX, 0.75 * DBL_MAX};
    const size_t n = 6;
    const double scales[] = {1e-308, -1e-308, 2.5e-308, 4e-309};
    test_rng rng;
    rng_seed(&rng, 1308);
    for (size_t k = 0; k < ARRAY_LEN(scales); k++) {
        double row[6];
        for (size_t i = 0; i < n; i++) /* masked for either sign of the scale */
            row[i] = x[i] == -INFINITY && scales[k] < 0 ? INFINITY : x[i];
        double p[6], logp[6];
        const row_ref want = mpfr_row(row, n, scales[k], 1, p, logp);
        for (size_t pieces = 1; pieces <= 3; pieces++) {
            const int64_t target = 1;
            cut c = random_cut(&rng, n, pieces);
            sliced s = make_slices(SOFTMAX_DTYPE_F64, row, 1, n, &c, &target);
            void *merged = merged_records(&rng, &s, scales[k], 0);
            double lse, entropy, nll;
            int64_t argmax;
            assert_int_equal(softmax_summary_stats(merged, 1, &lse, &entropy, &argmax, &nll), SOFTMAX_OK);
            if (!close_in_ulp(lse, want.lse, 53, 8) || !close_in_ulp(entropy, want.entropy, 53, 8) ||
                !close_in_ulp(nll, want.nll, 53, 8))
                fail_msg("scale %g, %zu slices: logsumexp %.17g entropy %.17g nll %.17g; exact %.17g %.17g %.17g",
                         scales[k], pieces, lse, entropy, nll, want.lse, want.entropy, want.nll);
            for (size_t piece = 0; piece < s.count; piece++) {
                const softmax_slice *slice = &s.slices[piece];
                for (int log_output = 0; log_output < 2; log_output++) {
                    double y[6];
                    assert_int_equal(softmax_summary_softmax(slice, merged, log_output, y), SOFTMAX_OK);
                    for (size_t j = 0; j < slice->cols; j++) {
                        const size_t column = slice->col_offset + j;
                        const double exact = log_output ? logp[column] : p[column];
                        if (!close_in_ulp(y[j], exact, 53, 8))
                            fail_msg("scale %g, %zu slices, %s column %zu: %.17g, exact %.17g", scales[k], pieces,
                                     log_output ? "log-softmax" : "softmax", column, y[j], exact);
                    }
                }
            }
            free(merged);
            free_slices(&s);
        }
    }
    const mode far_modes[] = {
        {"T = 1e308", 1e308, 0, 1.0, 0.0},
        {"T = 1e308, top-p 0.9", 1e308, 0, 0.9, 0.0},
        {"T = 1e308, min-p 0.1", 1e308, 0, 1.0, 0.1},
        {"T = 4e307, top-k 3", 4e307, 3, 1.0, 0.0},
    };
    for (size_t m = 0; m < ARRAY_LEN(far_modes); m++)
        check_frequencies(&rng, x, n, &far_modes[m], 20000, 100 + m);
}

/* Top-p whose boundary falls inside a group of tied logits: the kept set
 * is the shortest prefix in (logit descending, column ascending) order. */
static void test_top_p_boundary_in_ties(void **state)
{
    (void)state;
    double x[40];
    for (size_t i = 0; i < 40; i++)
        x[i] = -0.5 * (double)((i * 7) % 4);
    const mode md = {"top-p 0.5 in ties", 1.0, 0, 0.5, 0.0};
    long double prob[40];
    reference_distribution(x, 40, &md, prob);
    test_rng rng;
    rng_seed(&rng, 3);
    long counts[40] = {0};
    for (int d = 0; d < 4000; d++) {
        softmax_sampler_params p = params_of(1.0, 0, 0.5, 0.0, (uint64_t)d);
        cut c = random_cut(&rng, 40, 1 + rng_below(&rng, MAX_SLICES));
        int64_t token;
        assert_int_equal(sample_over(&rng, &p, SOFTMAX_DTYPE_F64, x, 1, 40, &c, 0, NULL, &token), SOFTMAX_OK);
        counts[token]++;
    }
    size_t kept = 0;
    for (size_t i = 0; i < 40; i++) {
        if (prob[i] == 0)
            assert_int_equal(counts[i], 0);
        else {
            assert_true(counts[i] > 0);
            kept++;
        }
    }
    assert_true(kept > 10 && kept < 20); /* the boundary cut the second tie group of 10 */
}

/* Rows spread over threads: the same records, outputs and draws for 1 and
 * 2 threads (a job large enough to be split). */
static void test_thread_count(void **state)
{
    (void)state;
    const size_t rows = 16, n = 9000, top_k = 8;
    float *x = malloc(rows * n * sizeof(float));
    assert_non_null(x);
    test_rng rng;
    rng_seed(&rng, 8);
    for (size_t i = 0; i < rows * n; i++)
        x[i] = (float)(rng_normal(&rng) * 3.0);
    int64_t targets[16];
    for (size_t r = 0; r < rows; r++)
        targets[r] = (int64_t)rng_below(&rng, n);
    softmax_slice slice = {SOFTMAX_DTYPE_F32, x, rows, n, 0, n, targets};
    size_t bytes = softmax_summary_bytes(top_k);
    void *records[2];
    float *y[2], *g[2];
    int64_t tokens[2][16];
    for (int t = 0; t < 2; t++) {
        set_threads_or_fail(t + 1);
        records[t] = malloc(rows * bytes);
        y[t] = malloc(rows * n * sizeof(float));
        g[t] = malloc(rows * n * sizeof(float));
        assert_true(records[t] && y[t] && g[t]);
        assert_int_equal(softmax_summary_compute(&slice, 0.8, top_k, records[t]), SOFTMAX_OK);
        assert_int_equal(softmax_summary_softmax(&slice, records[t], 0, y[t]), SOFTMAX_OK);
        assert_int_equal(softmax_summary_nll_backward(&slice, records[t], g[t]), SOFTMAX_OK);
        softmax_sampler_params p = params_of(1.25, 0, 0.9, 0.01, 3);
        cut whole = {1, {0, n}};
        assert_int_equal(sample_over(&rng, &p, SOFTMAX_DTYPE_F32, x, rows, n, &whole, 5, NULL, tokens[t]), SOFTMAX_OK);
    }
    set_threads_or_fail(0);
    assert_memory_equal(records[0], records[1], rows * bytes);
    assert_memory_equal(y[0], y[1], rows * n * sizeof(float));
    assert_memory_equal(g[0], g[1], rows * n * sizeof(float));
    assert_memory_equal(tokens[0], tokens[1], sizeof tokens[0]);
    for (int t = 0; t < 2; t++) {
        free(records[t]);
        free(y[t]);
        free(g[t]);
    }
    free(x);
}

/* Bad arguments: their status, nothing written. */
static void test_errors(void **state)
{
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t bytes = softmax_summary_bytes(2);
    unsigned char records[2 * 512], before[2 * 512];
    assert_true(bytes * 2 <= sizeof records);
    softmax_slice slice = {SOFTMAX_DTYPE_F32, x, 2, 4, 0, 4, NULL};

    fill_sentinel(records, sizeof records);
    assert_int_equal(softmax_summary_compute(&slice, NAN, 2, records), SOFTMAX_E_INVALID_SCALE);
    assert_true(is_sentinel(records, sizeof records));
    assert_int_equal(softmax_summary_compute(NULL, 1.0, 2, records), SOFTMAX_E_NULL_POINTER);
    softmax_slice bad = slice;
    bad.col_offset = 1;
    assert_int_equal(softmax_summary_compute(&bad, 1.0, 2, records), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "outside"));
    bad = slice;
    bad.vocab = UINT64_C(1) << 32;
    bad.col_offset = 0;
    assert_int_equal(softmax_summary_compute(&bad, 1.0, 2, records), SOFTMAX_E_INVALID_ARGUMENT);
    bad = slice;
    bad.dtype = (softmax_dtype)99;
    assert_int_equal(softmax_summary_compute(&bad, 1.0, 2, records), SOFTMAX_E_INVALID_DTYPE);
    int64_t targets[2] = {0, 4};
    bad = slice;
    bad.targets = targets;
    assert_int_equal(softmax_summary_compute(&bad, 1.0, 2, records), SOFTMAX_E_INVALID_ARGUMENT);
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 2, (void *)x), SOFTMAX_E_OVERLAP);
    assert_true(is_sentinel(records, sizeof records));

    /* Merges of records that do not belong together. */
    unsigned char other[2 * 512];
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 2, records), SOFTMAX_OK);
    assert_int_equal(softmax_summary_compute(&slice, 2.0, 2, other), SOFTMAX_OK);
    memcpy(before, records, sizeof before);
    assert_int_equal(softmax_summary_merge(records, other, 2), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "scales"));
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 3, other), SOFTMAX_OK);
    assert_int_equal(softmax_summary_merge(records, other, 2), SOFTMAX_E_INVALID_ARGUMENT);
    slice.targets = targets;
    targets[1] = 1;
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 2, other), SOFTMAX_OK);
    assert_int_equal(softmax_summary_merge(records, other, 2), SOFTMAX_E_INVALID_ARGUMENT); /* targets differ */
    assert_memory_equal(records, before, sizeof before);
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 2, records), SOFTMAX_OK);
    assert_int_equal(softmax_summary_merge(records, other, 2), SOFTMAX_E_INVALID_ARGUMENT); /* both hold targets */
    memset(other, 0, sizeof other);
    assert_int_equal(softmax_summary_merge(records, other, 2), SOFTMAX_E_INVALID_ARGUMENT); /* not records */
    assert_int_equal(softmax_summary_merge(records, records, 2), SOFTMAX_E_OVERLAP);

    /* Finishing with records of a slice that is not the whole vocabulary. */
    slice.targets = NULL;
    softmax_slice part = {SOFTMAX_DTYPE_F32, x, 2, 4, 0, 8, NULL};
    assert_int_equal(softmax_summary_compute(&part, 1.0, 2, records), SOFTMAX_OK);
    float y[8];
    fill_sentinel(y, sizeof y);
    assert_int_equal(softmax_summary_softmax(&part, records, 0, y), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "merged"));
    assert_true(is_sentinel(y, sizeof y));
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 2, records), SOFTMAX_OK);
    assert_int_equal(softmax_summary_softmax(&slice, records, 0, (char *)x + 4), SOFTMAX_E_OVERLAP);
    assert_int_equal(softmax_summary_nll_backward(&slice, records, y), SOFTMAX_E_NULL_POINTER); /* no targets */
    assert_true(is_sentinel(y, sizeof y));
    /* In place is allowed. */
    float copy[8];
    memcpy(copy, x, sizeof copy);
    softmax_slice in_place = {SOFTMAX_DTYPE_F32, copy, 2, 4, 0, 4, NULL};
    assert_int_equal(softmax_summary_softmax(&in_place, records, 0, copy), SOFTMAX_OK);
    assert_int_equal(softmax_summary_softmax(&slice, records, 0, y), SOFTMAX_OK);
    assert_memory_equal(copy, y, sizeof copy);

    /* Sampling parameters and capacities. */
    softmax_sampler_params p = params_of(1.0, 3, 1.0, 0.0, 1);
    int64_t tokens[2] = {7, 7};
    assert_int_equal(softmax_sample_finish(&p, records, 2, NULL, NULL, 0, NULL, tokens), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "capacity"));
    p = params_of(-1.0, 0, 1.0, 0.0, 1);
    assert_int_equal(softmax_sample_rounds(&p, 4), SOFTMAX_E_INVALID_PARAMETER);
    p = params_of(1.0, 0, 0.0, 0.0, 1);
    assert_int_equal(softmax_sample_rounds(&p, 4), SOFTMAX_E_INVALID_PARAMETER);
    p = params_of(1.0, 0, 1.0, 1.5, 1);
    assert_int_equal(softmax_sample_finish(&p, records, 2, NULL, NULL, 0, NULL, tokens), SOFTMAX_E_INVALID_PARAMETER);
    p = params_of(1.0, 0, 1.0, 0.0, 1);
    p.reserved[0] = 1;
    assert_int_equal(softmax_sample_rounds(&p, 4), SOFTMAX_E_UNSUPPORTED);
    p = params_of(1.0, 0, 1.0, 0.0, 1);
    assert_int_equal(softmax_sample_finish(&p, records, 2, NULL, NULL, 0, NULL, tokens), SOFTMAX_E_NULL_POINTER);
    assert_int_equal(tokens[0], 7);
    assert_int_equal(softmax_summary_compute(&slice, -1.0, 2, records), SOFTMAX_OK);
    p = params_of(0.0, 0, 1.0, 0.0, 1);
    assert_int_equal(softmax_sample_finish(&p, records, 2, NULL, NULL, 0, NULL, tokens), SOFTMAX_E_INVALID_ARGUMENT);
    assert_int_equal(tokens[0], 7);
    /* Records made for sampling carry no sums: the finishing calls refuse them. */
    p = params_of(1.0, 0, 1.0, 0.0, 1);
    assert_int_equal(softmax_summary_bytes(softmax_sample_capacity(&p, 4)), softmax_summary_bytes(0));
    unsigned char sampling_records[2 * 512];
    assert_int_equal(softmax_sample_summarize(&p, &slice, sampling_records), SOFTMAX_OK);
    fill_sentinel(y, sizeof y);
    assert_int_equal(softmax_summary_softmax(&slice, sampling_records, 0, y), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "no sums"));
    assert_true(is_sentinel(y, sizeof y));
    double lse[2];
    assert_int_equal(softmax_summary_stats(sampling_records, 2, lse, NULL, NULL, NULL), SOFTMAX_E_INVALID_ARGUMENT);
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 0, records), SOFTMAX_OK);
    assert_int_equal(softmax_summary_merge(records, sampling_records, 2), SOFTMAX_E_INVALID_ARGUMENT);
    /* Empty calls succeed. */
    assert_int_equal(softmax_summary_merge(NULL, NULL, 0), SOFTMAX_OK);
    assert_int_equal(softmax_summary_stats(NULL, 0, NULL, NULL, NULL, NULL), SOFTMAX_OK);
}

/* |scale * max x| beyond f64 ({1e300, 1e300} at scale 1e10): logsumexp
 * is +-inf, the rounding of the exact value (it came out NaN: inf - inf
 * from the product's rounding error). Against MPFR for 1-3 slices, with a
 * row just below the overflow that must stay finite. */
static void test_logsumexp_beyond_f64(void **state)
{
    (void)state;
    typedef struct far_case {
        double x[4];
        double scale;
    } far_case;
    const far_case cases[] = {
        {{1e300, 1e300, 0.0, -INFINITY}, 1e10},      /* +inf */
        {{-1e300, -1e300, -2e300, -INFINITY}, 1e10}, /* -inf */
        {{1e300, 1e300, 3e300, INFINITY}, -1e10},    /* -inf at a negative scale */
        {{-1e300, 5.0, -1e300, INFINITY}, -1e10},    /* +inf */
        {{1e300, 1e300, 0.0, -INFINITY}, 1.7e8},     /* 1.7e308 + log 2: finite */
        {{DBL_MAX, DBL_MAX, DBL_MAX, 1.0}, 2.0},
    };
    test_rng rng;
    rng_seed(&rng, 310);
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        const far_case *fc = &cases[k];
        double p[4], logp[4];
        const row_ref want = mpfr_row(fc->x, 4, fc->scale, 0, p, logp);
        for (size_t pieces = 1; pieces <= 3; pieces++) {
            const int64_t target = 0;
            cut c = random_cut(&rng, 4, pieces);
            sliced s = make_slices(SOFTMAX_DTYPE_F64, fc->x, 1, 4, &c, &target);
            void *merged = merged_records(&rng, &s, fc->scale, 0);
            double lse, entropy, nll;
            assert_int_equal(softmax_summary_stats(merged, 1, &lse, &entropy, NULL, &nll), SOFTMAX_OK);
            if (!close_in_ulp(lse, want.lse, 53, 4) || !close_in_ulp(entropy, want.entropy, 53, 4) ||
                !close_in_ulp(nll, want.nll, 53, 4))
                fail_msg("case %zu, %zu slices: logsumexp %.17g entropy %.17g nll %.17g; exact %.17g %.17g %.17g", k,
                         pieces, lse, entropy, nll, want.lse, want.entropy, want.nll);
            free(merged);
            free_slices(&s);
        }
    }
}

/* The gradient's one-hot comes from the slice's targets, the NLL from the
 * records' ones: a slice whose targets differ from those the records were
 * computed with is refused (it gave the gradient of another loss). */
static void test_nll_backward_targets_of_the_records(void **state)
{
    (void)state;
    const double x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t targets[2] = {0, 3}, other[2] = {0, 2}, ignored[2] = {-1, -7};
    const size_t bytes = softmax_summary_bytes(0);
    unsigned char records[2 * 256];
    double dx[8];
    softmax_slice slice = {SOFTMAX_DTYPE_F64, x, 2, 4, 0, 4, targets};
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 0, records), SOFTMAX_OK);
    softmax_slice wrong = slice;
    wrong.targets = other;
    fill_sentinel(dx, sizeof dx);
    assert_int_equal(softmax_summary_nll_backward(&wrong, records, dx), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "target"));
    assert_true(is_sentinel(dx, sizeof dx));
    /* Records made without targets, a gradient asked with targets. */
    softmax_slice none = slice;
    none.targets = NULL;
    assert_int_equal(softmax_summary_compute(&none, 1.0, 0, records), SOFTMAX_OK);
    assert_int_equal(softmax_summary_nll_backward(&slice, records, dx), SOFTMAX_E_INVALID_ARGUMENT);
    assert_true(is_sentinel(dx, sizeof dx));
    /* Any negative target ignores its row, whichever negative number. */
    softmax_slice minus = slice;
    minus.targets = ignored;
    assert_int_equal(softmax_summary_nll_backward(&minus, records, dx), SOFTMAX_OK);
    for (size_t i = 0; i < 8; i++)
        assert_true(dx[i] == 0.0);
    /* The matching targets: scale * (p - onehot), p against MPFR. */
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 0, records), SOFTMAX_OK);
    assert_int_equal(softmax_summary_nll_backward(&slice, records, dx), SOFTMAX_OK);
    for (size_t r = 0; r < 2; r++) {
        double p[4], logp[4];
        mpfr_row(x + 4 * r, 4, 1.0, (size_t)targets[r], p, logp);
        for (size_t i = 0; i < 4; i++)
            assert_true(close_in_ulp(dx[4 * r + i], p[i] - ((int64_t)i == targets[r]), 53, 6));
    }
    (void)bytes;
}

/* Outputs sharing bytes with an input (the header's SOFTMAX_E_OVERLAP,
 * nothing written): records over the targets, a gradient over the
 * targets, statistics over the records or each other, shifted merges,
 * sampling outputs over the records, logits, search or draws. */
static void test_overlapping_arguments(void **state)
{
    (void)state;
    enum { ROWS = 2, COLS = 4 };
    const size_t bytes = softmax_summary_bytes(0);
    unsigned char *arena = malloc(16 * 1024);
    assert_non_null(arena);
    double x[ROWS * COLS] = {1, 2, 3, 4, 5, 6, 7, 8};

    /* Records over the targets. */
    int64_t *targets = (int64_t *)(arena + bytes); /* inside the second record */
    targets[0] = 1;
    targets[1] = 2;
    softmax_slice slice = {SOFTMAX_DTYPE_F64, x, ROWS, COLS, 0, COLS, targets};
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 0, arena), SOFTMAX_E_OVERLAP);
    assert_int_equal(targets[0], 1);

    /* A gradient over the targets. */
    unsigned char records[ROWS * 256];
    double *dx = (double *)(arena + 4096);
    int64_t *in_dx = (int64_t *)(dx + COLS); /* row 1's gradient */
    in_dx[0] = 1;
    in_dx[1] = 2;
    slice.targets = in_dx;
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 0, records), SOFTMAX_OK);
    assert_int_equal(softmax_summary_nll_backward(&slice, records, dx), SOFTMAX_E_OVERLAP);
    assert_true(in_dx[0] == 1 && in_dx[1] == 2);
    double y[ROWS * COLS];
    assert_int_equal(softmax_summary_softmax(&slice, records, 0, in_dx - 1), SOFTMAX_E_OVERLAP);
    slice.targets = NULL;

    /* Statistics over the records, or two statistics in the same place. */
    assert_int_equal(softmax_summary_compute(&slice, 1.0, 0, records), SOFTMAX_OK);
    unsigned char before[ROWS * 256];
    memcpy(before, records, sizeof before);
    assert_int_equal(softmax_summary_stats(records, ROWS, (double *)(records + bytes), NULL, NULL, NULL),
                     SOFTMAX_E_OVERLAP);
    assert_memory_equal(records, before, ROWS * bytes);
    fill_sentinel(y, sizeof y);
    assert_int_equal(softmax_summary_stats(records, ROWS, y, NULL, NULL, y + 1), SOFTMAX_E_OVERLAP);
    assert_true(is_sentinel(y, sizeof y));

    /* Merges whose in is inout shifted by a record. */
    softmax_slice left = {SOFTMAX_DTYPE_F64, x, ROWS, 2, 0, COLS, NULL};
    unsigned char *shifted = arena + 8192;
    assert_int_equal(softmax_summary_compute(&left, 1.0, 0, shifted), SOFTMAX_OK);
    memcpy(shifted + ROWS * bytes, shifted + bytes, bytes);
    memcpy(before, shifted, (ROWS + 1) * bytes);
    assert_int_equal(softmax_summary_merge(shifted + bytes, shifted, ROWS), SOFTMAX_E_OVERLAP);
    assert_int_equal(softmax_summary_merge(shifted, shifted + bytes, ROWS), SOFTMAX_E_OVERLAP);
    assert_memory_equal(shifted, before, (ROWS + 1) * bytes);
    softmax_top_p_bin *bins = calloc(3 * SOFTMAX_TOP_P_BINS, sizeof *bins);
    assert_non_null(bins);
    bins[0].count = 1;
    bins[0].mass[0] = 5;
    assert_int_equal(softmax_top_p_bins_merge(bins, bins, 2), SOFTMAX_E_OVERLAP); /* would double the mass */
    assert_int_equal(softmax_top_p_bins_merge(bins + SOFTMAX_TOP_P_BINS, bins, 2), SOFTMAX_E_OVERLAP);
    assert_true(bins[0].mass[0] == 5 && bins[SOFTMAX_TOP_P_BINS].count == 0);
    softmax_draw draws[3] = {{1.0, 1}, {2.0, 2}, {0.5, 3}};
    assert_int_equal(softmax_draw_merge(draws + 1, draws, 2), SOFTMAX_E_OVERLAP);
    assert_true(draws[1].column == 2 && draws[2].column == 3);
    assert_int_equal(softmax_draw_merge(draws, draws, 3), SOFTMAX_OK); /* the max of a draw and itself */

    /* Sampling outputs over their inputs. */
    softmax_sampler_params p = params_of(1.0, 0, 0.5, 0.0, 1);
    assert_int_equal(softmax_sample_summarize(&p, &slice, records), SOFTMAX_OK);
    memcpy(before, records, sizeof before);
    assert_int_equal(softmax_top_p_start(&p, records, ROWS, (softmax_top_p_search *)(records + 8)), SOFTMAX_E_OVERLAP);
    assert_memory_equal(records, before, ROWS * bytes);
    softmax_top_p_search search[ROWS];
    assert_int_equal(softmax_top_p_start(&p, records, ROWS, search), SOFTMAX_OK);
    double *logits = (double *)(arena + 12288);
    memcpy(logits, x, sizeof x);
    softmax_slice in_arena = {SOFTMAX_DTYPE_F64, logits, ROWS, COLS, 0, COLS, NULL};
    assert_int_equal(softmax_top_p_histogram(&p, &in_arena, records, search, (softmax_top_p_bin *)logits),
                     SOFTMAX_E_OVERLAP);
    assert_memory_equal(logits, x, sizeof x);
    p = params_of(1.0, 0, 1.0, 0.0, 1);
    assert_int_equal(softmax_sample_race(&p, &in_arena, records, NULL, 0, NULL, (softmax_draw *)(logits + 2)),
                     SOFTMAX_E_OVERLAP);
    assert_memory_equal(logits, x, sizeof x);
    assert_int_equal(softmax_sample_race(&p, &slice, records, NULL, 0, NULL, (softmax_draw *)(records + 16)),
                     SOFTMAX_E_OVERLAP);
    assert_memory_equal(records, before, ROWS * bytes);
    uint64_t streams[ROWS] = {4, 5};
    assert_int_equal(softmax_sample_race(&p, &slice, records, NULL, 0, streams, (softmax_draw *)streams),
                     SOFTMAX_E_OVERLAP);
    assert_true(streams[0] == 4 && streams[1] == 5);
    softmax_draw merged_draws[ROWS];
    assert_int_equal(softmax_sample_race(&p, &slice, records, NULL, 0, NULL, merged_draws), SOFTMAX_OK);
    softmax_draw kept[ROWS];
    memcpy(kept, merged_draws, sizeof kept);
    assert_int_equal(softmax_sample_finish(&p, records, ROWS, NULL, merged_draws, 0, NULL, (int64_t *)merged_draws),
                     SOFTMAX_E_OVERLAP);
    assert_memory_equal(merged_draws, kept, sizeof kept);
    assert_int_equal(softmax_sample_finish(&p, records, ROWS, NULL, merged_draws, 0, NULL, (int64_t *)(records + 8)),
                     SOFTMAX_E_OVERLAP);
    assert_memory_equal(records, before, ROWS * bytes);
    free(bins);
    free(arena);
}

/* Records whose fields no summary or merge produces (bytes from a wrong
 * buffer, a truncated message): every call that reads records refuses
 * them and writes nothing. Before, merges took them (candidates beyond
 * the capacity, unknown flags, NaN scale) and stats made NaN of them. */
static void test_corrupted_records(void **state)
{
    (void)state;
    const double x[4] = {1, 2, 3, 4};
    const int64_t target = 2;
    const softmax_slice slice = {SOFTMAX_DTYPE_F64, x, 1, 4, 0, 4, &target};
    const size_t bytes = softmax_summary_bytes(2);
    for (int corruption = 0; corruption < 12; corruption++) {
        unsigned char good[512], bad[512], before[512];
        assert_int_equal(softmax_summary_compute(&slice, 1.0, 2, good), SOFTMAX_OK);
        memcpy(bad, good, bytes);
        softmax_summary *s = (softmax_summary *)bad;
        switch (corruption) {
        case 0:
            s->flags = 7;
            break;
        case 1:
            s->reserved = 1;
            break;
        case 2:
            s->candidates = 3;
            break; /* above the capacity of 2 */
        case 3:
            s->scale = NAN;
            break;
        case 4:
            s->ref = NAN;
            break;
        case 5:
            s->count_kept = 5;
            break; /* above the columns */
        case 6:
            s->count_nan = 1;
            break; /* kept + NaN above the columns */
        case 7:
            s->target_found = 2;
            break;
        case 8:
            s->columns = UINT64_C(1) << 32;
            break;
        case 9:
            s->argmax = -2;
            break;
        case 10:
            s->first_kept = INT64_C(1) << 40;
            break;
        default:
            s->target = -1;
            break; /* found a target it does not have */
        }
        memcpy(before, bad, bytes);
        double lse = 7.0;
        assert_int_equal(softmax_summary_stats(bad, 1, &lse, NULL, NULL, NULL), SOFTMAX_E_INVALID_ARGUMENT);
        assert_non_null(strstr(softmax_last_error(), "corrupted"));
        assert_true(lse == 7.0);
        double y[4];
        fill_sentinel(y, sizeof y);
        assert_int_equal(softmax_summary_softmax(&slice, bad, 0, y), SOFTMAX_E_INVALID_ARGUMENT);
        assert_true(is_sentinel(y, sizeof y));
        unsigned char other[512];
        const softmax_slice empty = {SOFTMAX_DTYPE_F64, NULL, 1, 0, 4, 4, &target};
        assert_int_equal(softmax_summary_compute(&empty, 1.0, 2, other), SOFTMAX_OK);
        assert_int_equal(softmax_summary_merge(bad, other, 1), SOFTMAX_E_INVALID_ARGUMENT);
        assert_memory_equal(bad, before, bytes);
        unsigned char other_before[512];
        memcpy(other_before, other, bytes);
        assert_int_equal(softmax_summary_merge(other, bad, 1), SOFTMAX_E_INVALID_ARGUMENT);
        assert_memory_equal(other, other_before, bytes);
        softmax_sampler_params p = params_of(0.0, 0, 1.0, 0.0, 1);
        int64_t token = 99;
        assert_int_equal(softmax_sample_finish(&p, bad, 1, NULL, NULL, 0, NULL, &token), SOFTMAX_E_INVALID_ARGUMENT);
        assert_int_equal(token, 99);
    }
}

/* The race and the top-p rounds on a slice's own records (not merged):
 * refused, as the finishing calls refuse them. They ran against the
 * slice's max and candidates (the race on the left half of {1..8} drew
 * from it as if it were the row). */
static void test_sampling_needs_merged_records(void **state)
{
    (void)state;
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const softmax_slice left = {SOFTMAX_DTYPE_F32, x, 1, 4, 0, 8, NULL};
    const softmax_sampler_params p = params_of(1.0, 0, 0.5, 0.0, 1);
    unsigned char records[512];
    assert_int_equal(softmax_sample_summarize(&p, &left, records), SOFTMAX_OK);
    softmax_top_p_search search;
    assert_int_equal(softmax_top_p_start(&p, records, 1, &search), SOFTMAX_OK);
    softmax_top_p_bin bins[SOFTMAX_TOP_P_BINS];
    fill_sentinel(bins, sizeof bins);
    assert_int_equal(softmax_top_p_histogram(&p, &left, records, &search, bins), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "merged"));
    assert_true(is_sentinel(bins, sizeof bins));
    const softmax_sampler_params t = params_of(1.0, 0, 1.0, 0.0, 1);
    softmax_draw draw;
    fill_sentinel(&draw, sizeof draw);
    assert_int_equal(softmax_sample_race(&t, &left, records, NULL, 0, NULL, &draw), SOFTMAX_E_INVALID_ARGUMENT);
    assert_true(is_sentinel(&draw, sizeof draw));
}

/* Top-p search states: the race refuses a search started for other
 * parameters (one of top_p 1 made the race keep every column without a
 * word, one of top_p 0.5 made a race of top_p 1 drop columns), and every
 * call refuses states that start and narrow never make (a FOUND state of
 * 200 bits shifted a 128-bit key by 2^32 - 104). Narrow refuses bins of
 * another round (fed the first round's bins again it never finished: the
 * protocol's loop ran forever) and foreign bins (it settled on a key no
 * column has), leaving the search as it was. */
static void test_top_p_search_states(void **state)
{
    (void)state;
    const double x[8] = {3, 1, 4, 1, 5, 9, 2, 6};
    const softmax_slice slice = {SOFTMAX_DTYPE_F64, x, 1, 8, 0, 8, NULL};
    const softmax_sampler_params half = params_of(1.0, 0, 0.5, 0.0, 1), all = params_of(1.0, 0, 1.0, 0.0, 1);
    unsigned char records[512];
    assert_int_equal(softmax_sample_summarize(&half, &slice, records), SOFTMAX_OK);
    softmax_top_p_search search, saved;
    softmax_draw draw;

    assert_int_equal(softmax_top_p_start(&all, records, 1, &search), SOFTMAX_OK); /* not needed */
    fill_sentinel(&draw, sizeof draw);
    assert_int_equal(softmax_sample_race(&half, &slice, records, &search, 0, NULL, &draw), SOFTMAX_E_INVALID_ARGUMENT);
    assert_non_null(strstr(softmax_last_error(), "other parameters"));
    assert_true(is_sentinel(&draw, sizeof draw));

    /* The real protocol, one slice, every round's bins kept. */
    softmax_top_p_bin rounds[17][SOFTMAX_TOP_P_BINS];
    assert_int_equal(softmax_top_p_start(&half, records, 1, &search), SOFTMAX_OK);
    softmax_top_p_search first = search;
    int n = 0, searching;
    do {
        assert_true(n < 16);
        assert_int_equal(softmax_top_p_histogram(&half, &slice, records, &search, rounds[n]), SOFTMAX_OK);
        if (n > 0) { /* the previous round's bins are not this round's */
            saved = search;
            assert_int_equal(softmax_top_p_narrow(&search, rounds[n - 1], 1), SOFTMAX_E_INVALID_ARGUMENT);
            assert_memory_equal(&search, &saved, sizeof saved);
        }
        searching = softmax_top_p_narrow(&search, rounds[n++], 1);
        assert_true(searching >= 0);
    } while (searching > 0);
    assert_true(n >= 2); /* (so that the check above ran) */
    assert_int_equal(softmax_sample_race(&all, &slice, records, &search, 0, NULL, &draw), SOFTMAX_E_INVALID_ARGUMENT);
    assert_int_equal(softmax_sample_race(&half, &slice, records, &search, 0, NULL, &draw), SOFTMAX_OK);
    /* The kept set of top-p 0.5 over softmax({3,1,4,1,5,9,2,6}): 9 alone
     * has 0.83 of the mass (long double below), so column 5 is drawn. */
    long double total = 0;
    for (size_t i = 0; i < 8; i++)
        total += expl((long double)x[i] - 9.0L);
    assert_true(1.0L / total > 0.5L);
    assert_int_equal(draw.column, 5);

    /* Foreign bins: one key that is no column's. */
    softmax_top_p_bin foreign[SOFTMAX_TOP_P_BINS];
    memset(foreign, 0, sizeof foreign);
    foreign[63].count = 1;
    foreign[63].mass[0] = 1;
    foreign[63].min_key[0] = foreign[63].max_key[0] = 5;
    search = first;
    assert_int_equal(softmax_top_p_narrow(&search, foreign, 1), SOFTMAX_E_INVALID_ARGUMENT);
    assert_memory_equal(&search, &first, sizeof first);

    /* States that start and narrow never make. */
    for (int bad = 0; bad < 4; bad++) {
        search = first;
        switch (bad) {
        case 0:
            search.state = 9;
            break;
        case 1:
            search.state = 1;
            search.bits = 200;
            break;
        case 2:
            search.bits = 96;
            break; /* searching with every bit fixed */
        default:
            search.bits = 3;
            search.key_lo = 8;
            break; /* a prefix wider than its bits */
        }
        saved = search;
        fill_sentinel(&draw, sizeof draw);
        assert_int_equal(softmax_sample_race(&half, &slice, records, &search, 0, NULL, &draw),
                         SOFTMAX_E_INVALID_ARGUMENT);
        assert_true(is_sentinel(&draw, sizeof draw));
        assert_int_equal(softmax_top_p_histogram(&half, &slice, records, &search, rounds[0]),
                         SOFTMAX_E_INVALID_ARGUMENT);
        assert_int_equal(softmax_top_p_narrow(&search, rounds[0], 1), SOFTMAX_E_INVALID_ARGUMENT);
        assert_memory_equal(&search, &saved, sizeof saved);
    }
}

int main(void)
{
    int skip = isa_prologue();
    if (skip)
        return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_rows_f32),
        cmocka_unit_test(test_random_rows_f64),
        cmocka_unit_test(test_random_rows_bf16),
        cmocka_unit_test(test_special_rows),
        cmocka_unit_test(test_sampling_same_token_for_any_cut),
        cmocka_unit_test(test_race_matches_definition),
        cmocka_unit_test(test_sampling_distribution),
        cmocka_unit_test(test_differences_beyond_f64),
        cmocka_unit_test(test_top_p_boundary_in_ties),
        cmocka_unit_test(test_thread_count),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_logsumexp_beyond_f64),
        cmocka_unit_test(test_nll_backward_targets_of_the_records),
        cmocka_unit_test(test_overlapping_arguments),
        cmocka_unit_test(test_corrupted_records),
        cmocka_unit_test(test_sampling_needs_merged_records),
        cmocka_unit_test(test_top_p_search_states),
    };
    return cmocka_run_group_tests_name("summary", tests, NULL, NULL);
}
