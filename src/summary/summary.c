/*
 * summary.c -- the softmax family over a vocabulary split into slices:
 * per-row records of a slice (max, sums relative to it, arg max, counts,
 * target logit, top-k candidates), their merge, and the finishing calls
 * that turn a slice and its merged records into softmax, log-softmax,
 * row statistics, cross-entropy and its gradient.
 *
 * Everything that decides a special case (the reference max, the counts,
 * the arg max, the candidates) is exact, so it is the same for any split;
 * only the sums are rounded, in double-double, and rescaled with exp when
 * a merge raises the reference (see softmax.h for the bound).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "summary_internal.h"

void summary_read(softmax_dtype dtype, const void *row, size_t begin, size_t count, double *out)
{
    switch (dtype) {
    case SOFTMAX_DTYPE_F32: {
        const float *x = (const float *)row + begin;
        for (size_t i = 0; i < count; i++)
            out[i] = x[i];
        break;
    }
    case SOFTMAX_DTYPE_F64:
        memcpy(out, (const double *)row + begin, count * sizeof(double));
        break;
    default: {
        float widened[SUMMARY_CHUNK];
        softmax_convert(widened, SOFTMAX_DTYPE_F32, (const uint16_t *)row + begin, dtype, count);
        for (size_t i = 0; i < count; i++)
            out[i] = widened[i];
        break;
    }
    }
}

int summary_check_slice(const char *fn, const softmax_slice *slice)
{
    if (softmax_isa_name() == NULL)
        return SOFTMAX_E_ISA_UNAVAILABLE; /* recorded by softmax_isa_name */
    RETURN_ERROR_IF(slice == NULL, SOFTMAX_E_NULL_POINTER, "%s: slice is NULL", fn);
    size_t size = softmax_dtype_size(slice->dtype);
    RETURN_ERROR_IF(size == 0, SOFTMAX_E_INVALID_DTYPE, "%s: unsupported slice dtype %d", fn, (int)slice->dtype);
    RETURN_ERROR_IF(slice->vocab >= (UINT64_C(1) << 32), SOFTMAX_E_INVALID_ARGUMENT, "%s: vocab %llu is not below 2^32",
                    fn, (unsigned long long)slice->vocab);
    RETURN_ERROR_IF(slice->col_offset > slice->vocab || slice->cols > slice->vocab - slice->col_offset,
                    SOFTMAX_E_INVALID_ARGUMENT, "%s: columns [%llu, %llu + %zu) lie outside a vocabulary of %llu", fn,
                    (unsigned long long)slice->col_offset, (unsigned long long)slice->col_offset, slice->cols,
                    (unsigned long long)slice->vocab);
    RETURN_ERROR_IF(slice->cols != 0 && slice->rows > SIZE_MAX / slice->cols / size, SOFTMAX_E_SIZE_OVERFLOW,
                    "%s: %zu rows x %zu columns overflow", fn, slice->rows, slice->cols);
    RETURN_ERROR_IF(slice->logits == NULL && slice->rows != 0 && slice->cols != 0, SOFTMAX_E_NULL_POINTER,
                    "%s: logits is NULL with %zu x %zu elements", fn, slice->rows, slice->cols);
    RETURN_ERROR_IF(slice->targets != NULL && slice->rows > SIZE_MAX / sizeof *slice->targets, SOFTMAX_E_SIZE_OVERFLOW,
                    "%s: %zu targets overflow", fn, slice->rows);
    if (slice->targets != NULL)
        for (size_t r = 0; r < slice->rows; r++)
            RETURN_ERROR_IF(slice->targets[r] >= 0 && (uint64_t)slice->targets[r] >= slice->vocab,
                            SOFTMAX_E_INVALID_ARGUMENT, "%s: target %lld of row %zu is not below vocab %llu", fn,
                            (long long)slice->targets[r], r, (unsigned long long)slice->vocab);
    return SOFTMAX_OK;
}

size_t softmax_summary_bytes(size_t top_k)
{
    if (top_k > (SIZE_MAX - sizeof(softmax_summary)) / sizeof(softmax_candidate) || top_k > UINT32_MAX)
        return 0;
    return sizeof(softmax_summary) + top_k * sizeof(softmax_candidate);
}

/* A column field of a record: -1 (none) or a column of a vocabulary. */
static int column_or_none(int64_t column)
{
    return column >= -1 && column < (INT64_C(1) << 32);
}

/* Whether a record's fields could come from softmax_summary_compute and
 * merges: the finishing calls index candidates and divide by counts, so
 * bytes from elsewhere (a wrong buffer, a truncated message) are refused
 * rather than read as a distribution. */
static int record_is_consistent(const softmax_summary *s)
{
    const uint64_t vocab_limit = UINT64_C(1) << 32;
    return (s->flags == 0 || s->flags == SOFTMAX_SUMMARY_NO_SUMS) && s->reserved == 0 && !isnan(s->scale) &&
           !isnan(s->ref) && s->columns < vocab_limit && s->count_ref <= s->columns && s->count_kept <= s->columns &&
           s->count_nan <= s->columns - s->count_kept && s->candidates <= s->top_k && s->candidates <= s->columns &&
           s->target_found <= 1 && column_or_none(s->argmax) && column_or_none(s->first_nan) &&
           column_or_none(s->first_kept) && s->target < (int64_t)vocab_limit && (s->target >= 0 || !s->target_found);
}

int summary_check_records(const char *fn, const void *records, size_t rows, size_t *bytes)
{
    if (softmax_isa_name() == NULL)
        return SOFTMAX_E_ISA_UNAVAILABLE;
    if (rows == 0) {
        *bytes = 0;
        return SOFTMAX_OK;
    }
    RETURN_ERROR_IF(records == NULL, SOFTMAX_E_NULL_POINTER, "%s: records are NULL with %zu rows", fn, rows);
    const softmax_summary *first = records;
    RETURN_ERROR_IF(first->magic != SOFTMAX_SUMMARY_MAGIC, SOFTMAX_E_INVALID_ARGUMENT,
                    "%s: not a summary record (bad magic)", fn);
    *bytes = softmax_summary_bytes(first->top_k);
    RETURN_ERROR_IF(rows > SIZE_MAX / *bytes, SOFTMAX_E_SIZE_OVERFLOW, "%s: %zu records overflow", fn, rows);
    for (size_t r = 0; r < rows; r++) {
        const softmax_summary *s = summary_const_record(records, *bytes, r);
        RETURN_ERROR_IF(s->magic != SOFTMAX_SUMMARY_MAGIC || s->top_k != first->top_k, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: record %zu is not a summary of the same capacity", fn, r);
        RETURN_ERROR_IF(!record_is_consistent(s), SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: record %zu is corrupted (fields that no summary or merge produces)", fn, r);
    }
    return SOFTMAX_OK;
}

/* ---------------------------------------------------------------------------
 * Candidates: better = larger t, then lower column.
 * ------------------------------------------------------------------------ */

static int better(double t_a, int64_t col_a, double t_b, int64_t col_b)
{
    return t_a > t_b || (t_a == t_b && col_a < col_b);
}

typedef struct heap_entry {
    double t; /* sign * logit */
    double logit;
    int64_t column;
} heap_entry;

/* Min-heap by "better": the root is the worst kept candidate. */
static void heap_sift_down(heap_entry *h, size_t n, size_t i)
{
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && better(h[worst].t, h[worst].column, h[l].t, h[l].column))
            worst = l;
        if (r < n && better(h[worst].t, h[worst].column, h[r].t, h[r].column))
            worst = r;
        if (worst == i)
            return;
        heap_entry tmp = h[i];
        h[i] = h[worst];
        h[worst] = tmp;
        i = worst;
    }
}

static void heap_sift_up(heap_entry *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(h[parent].t, h[parent].column, h[i].t, h[i].column))
            return;
        heap_entry tmp = h[i];
        h[i] = h[parent];
        h[parent] = tmp;
        i = parent;
    }
}

static int compare_entries(const void *a, const void *b)
{
    const heap_entry *x = a, *y = b;
    if (better(x->t, x->column, y->t, y->column))
        return -1;
    return better(y->t, y->column, x->t, x->column) ? 1 : 0;
}

/* ---------------------------------------------------------------------------
 * Records of a slice.
 * ------------------------------------------------------------------------ */

static void summarise_row(const softmax_slice *slice, size_t r, double scale, size_t top_k, int with_sums,
                          heap_entry *heap, softmax_summary *s)
{
    const size_t heap_capacity = top_k < slice->cols ? top_k : slice->cols;
    const double sign = summary_sign(scale), a = fabs(scale);
    const size_t n = slice->cols;
    const int64_t offset = (int64_t)slice->col_offset;
    double buffer[SUMMARY_CHUNK];

    memset(s, 0, softmax_summary_bytes(top_k));
    s->magic = SOFTMAX_SUMMARY_MAGIC;
    s->top_k = (uint32_t)top_k;
    s->scale = scale;
    s->ref = -INFINITY;
    s->argmax = n > 0 ? offset : -1;
    s->first_nan = -1;
    s->first_kept = -1;
    s->target = -1;
    s->target_logit = NAN;
    s->columns = n;
    s->flags = with_sums ? 0u : SOFTMAX_SUMMARY_NO_SUMS;

    /* Pass 1: the reference, counts, arg max, target, candidates. */
    size_t heap_size = 0;
    for (size_t begin = 0, count; (count = summary_read_chunk(slice, r, begin, buffer)) > 0; begin += count) {
        for (size_t i = 0; i < count; i++) {
            double x = buffer[i];
            int64_t column = offset + (int64_t)(begin + i);
            if (isnan(x)) {
                if (s->count_nan++ == 0)
                    s->first_nan = column;
                continue;
            }
            double t = sign * x;
            if (t > s->ref) {
                s->ref = t;
                s->argmax = column;
                s->count_ref = 1;
            } else if (t == s->ref) {
                s->count_ref++;
            }
            if (t > -INFINITY && s->count_kept++ == 0)
                s->first_kept = column;
            if (heap_capacity == 0)
                continue;
            if (x == 0.0)
                x = 0.0; /* one zero: -0 and +0 are the same logit */
            heap_entry e = {t, x, column};
            if (heap_size < heap_capacity) {
                heap[heap_size] = e;
                heap_sift_up(heap, heap_size++);
            } else if (better(t, column, heap[0].t, heap[0].column)) {
                heap[0] = e;
                heap_sift_down(heap, heap_size, 0);
            }
        }
    }
    if (n > 0 && s->count_ref == 0) /* every element NaN: ref stays -inf */
        s->argmax = s->first_nan;
    if (heap_size > 0) { /* (heap is NULL for an empty slice) */
        qsort(heap, heap_size, sizeof *heap, compare_entries);
        softmax_candidate *c = summary_candidates(s);
        for (size_t i = 0; i < heap_size; i++)
            c[i] = (softmax_candidate){heap[i].logit, heap[i].column};
        s->candidates = (uint32_t)heap_size;
    }
    if (slice->targets != NULL) {
        int64_t target = slice->targets[r];
        s->target = target;
        if (target >= offset && target < offset + (int64_t)n) {
            summary_read(slice->dtype, summary_row(slice, r), (size_t)(target - offset), 1, buffer);
            s->target_found = 1;
            s->target_logit = buffer[0];
        }
    }

    /* Pass 2: the sums relative to the reference (only where they are
     * used: finite positive |scale|, finite reference, no NaN). */
    if (!with_sums || !(a > 0.0 && a < INFINITY && isfinite(s->ref)) || s->count_nan > 0)
        return;
    double sum_hi = 0.0, sum_lo = 0.0, dsum_hi = 0.0, dsum_lo = 0.0;
    for (size_t begin = 0, count; (count = summary_read_chunk(slice, r, begin, buffer)) > 0; begin += count) {
        for (size_t i = 0; i < count; i++) {
            double t = sign * buffer[i];
            if (!(t > -INFINITY))
                continue;
            double d_hi, d_lo;
            scaled_difference(a, t, s->ref, &d_hi, &d_lo);
            if (!(d_hi > -746.0))
                continue; /* exp underflows to 0 */
            double w = exp_dd(d_hi, d_lo);
            dd_add(&sum_hi, &sum_lo, w);
            dd_add(&dsum_hi, &dsum_lo, w * d_hi);
            dsum_lo += w * d_lo;
        }
    }
    two_sum(sum_hi, sum_lo, &s->sum_hi, &s->sum_lo);
    two_sum(dsum_hi, dsum_lo, &s->dsum_hi, &s->dsum_lo);
}

int summary_compute(const char *fn, const softmax_slice *slice, double scale, size_t top_k, int with_sums,
                    void *summaries)
{
    int status = summary_check_slice(fn, slice);
    if (status != SOFTMAX_OK)
        return status;
    RETURN_ERROR_IF(isnan(scale), SOFTMAX_E_INVALID_SCALE, "%s: scale is NaN", fn);
    size_t bytes = softmax_summary_bytes(top_k);
    RETURN_ERROR_IF(bytes == 0 || (slice->rows != 0 && slice->rows > SIZE_MAX / bytes), SOFTMAX_E_SIZE_OVERFLOW,
                    "%s: %zu records of capacity %zu overflow", fn, slice->rows, top_k);
    if (slice->rows == 0)
        return SOFTMAX_OK;
    RETURN_ERROR_IF(summaries == NULL, SOFTMAX_E_NULL_POINTER, "%s: summaries is NULL", fn);
    RETURN_ERROR_IF(summary_overlaps_slice(summaries, slice->rows * bytes, slice), SOFTMAX_E_OVERLAP,
                    "%s: summaries overlap the logits or the targets", fn);
    size_t heap_capacity = top_k < slice->cols ? top_k : slice->cols;
    /* Rows are independent: spread over threads, the same bits for any count. */
    int threads = summary_threads(slice);
    atomic_int out_of_memory = 0;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        /* No record is written until every thread holds its heap, so that an
         * allocation failure leaves the summaries untouched. */
        heap_entry *heap = heap_capacity > 0 ? malloc(heap_capacity * sizeof *heap) : NULL;
        if (heap_capacity > 0 && heap == NULL) {
            atomic_store(&out_of_memory, 1);
        }
#pragma omp barrier
        if (!atomic_load(&out_of_memory)) {
#pragma omp for schedule(static)
            for (size_t r = 0; r < slice->rows; r++)
                summarise_row(slice, r, scale, top_k, with_sums, heap, summary_record(summaries, bytes, r));
        }
        free(heap);
    }
    RETURN_ERROR_IF(atomic_load(&out_of_memory), SOFTMAX_E_OUT_OF_MEMORY, "%s: no memory for %zu candidates", fn,
                    heap_capacity);
    return SOFTMAX_OK;
}

int softmax_summary_compute(const softmax_slice *slice, double scale, size_t top_k, void *summaries)
{
    softmax_clear_error();
    return summary_compute("softmax_summary_compute", slice, scale, top_k, 1, summaries);
}

/* ---------------------------------------------------------------------------
 * Merge.
 * ------------------------------------------------------------------------ */

/* Rescales a record's sums from its reference to `ref` (>= it, finite). */
static void rescaled_sums(const softmax_summary *s, double ref, double *sum_hi, double *sum_lo, double *dsum_hi,
                          double *dsum_lo)
{
    *sum_hi = *sum_lo = *dsum_hi = *dsum_lo = 0.0;
    if (!(s->ref > -INFINITY) || s->count_nan > 0)
        return;
    if (s->ref == ref) {
        *sum_hi = s->sum_hi;
        *sum_lo = s->sum_lo;
        *dsum_hi = s->dsum_hi;
        *dsum_lo = s->dsum_lo;
        return;
    }
    double d_hi, d_lo;
    scaled_difference(fabs(s->scale), s->ref, ref, &d_hi, &d_lo);
    if (!(d_hi > -746.0))
        return;
    double f = exp_dd(d_hi, d_lo);
    /* S' = f S, D' = f (D + d S), each as hi + lo. */
    double p = s->sum_hi * f;
    *sum_hi = p;
    *sum_lo = fma(s->sum_hi, f, -p) + s->sum_lo * f;
    double inner_hi = s->dsum_hi, inner_lo = s->dsum_lo;
    double q = d_hi * s->sum_hi;
    dd_add(&inner_hi, &inner_lo, q);
    inner_lo += fma(d_hi, s->sum_hi, -q) + d_hi * s->sum_lo + d_lo * s->sum_hi;
    double r = inner_hi * f;
    *dsum_hi = r;
    *dsum_lo = fma(inner_hi, f, -r) + inner_lo * f;
}

/* a's candidates = the best a->top_k of a's and b's; scratch holds top_k. */
static void merge_candidates(softmax_summary *a, const softmax_summary *b, softmax_candidate *scratch)
{
    double sign = summary_sign(a->scale);
    size_t total = (size_t)a->candidates + b->candidates;
    if (total > a->top_k)
        total = a->top_k;
    const softmax_candidate *ca = summary_const_candidates(a), *cb = summary_const_candidates(b);
    size_t i = 0, j = 0;
    for (size_t k = 0; k < total; k++) {
        int take_a = j >= b->candidates ||
                     (i < a->candidates && better(sign * ca[i].logit, ca[i].column, sign * cb[j].logit, cb[j].column));
        scratch[k] = take_a ? ca[i++] : cb[j++];
    }
    if (total > 0) /* (scratch is NULL for a capacity of 0) */
        memcpy(summary_candidates(a), scratch, total * sizeof *scratch);
    a->candidates = (uint32_t)total;
}

static int merge_pair(softmax_summary *a, const softmax_summary *b, size_t row, softmax_candidate *scratch)
{
    static const char fn[] = "softmax_summary_merge";
    RETURN_ERROR_IF(memcmp(&a->scale, &b->scale, sizeof a->scale) != 0, SOFTMAX_E_INVALID_ARGUMENT,
                    "%s: row %zu merges records of scales %.17g and %.17g", fn, row, a->scale, b->scale);
    RETURN_ERROR_IF(a->flags != b->flags, SOFTMAX_E_INVALID_ARGUMENT,
                    "%s: row %zu merges a record with sums and one without", fn, row);
    RETURN_ERROR_IF(a->target != b->target, SOFTMAX_E_INVALID_ARGUMENT,
                    "%s: row %zu merges records of targets %lld and %lld", fn, row, (long long)a->target,
                    (long long)b->target);
    RETURN_ERROR_IF(a->target_found && b->target_found, SOFTMAX_E_INVALID_ARGUMENT,
                    "%s: row %zu: both records hold the target column (overlapping slices)", fn, row);
    /* (Both counts are below 2^32: a checked record's.) */
    RETURN_ERROR_IF(a->columns + b->columns >= (UINT64_C(1) << 32), SOFTMAX_E_INVALID_ARGUMENT,
                    "%s: row %zu: the records cover %llu + %llu columns, more than a vocabulary (overlapping slices?)",
                    fn, row, (unsigned long long)a->columns, (unsigned long long)b->columns);
    softmax_summary out = *a;
    double ref = a->ref > b->ref ? a->ref : b->ref;
    if (b->ref > a->ref) {
        out.argmax = b->argmax;
        out.count_ref = b->count_ref;
    } else if (b->ref == a->ref) {
        out.count_ref = a->count_ref + b->count_ref;
        out.argmax = a->argmax < 0           ? b->argmax
                     : b->argmax < 0         ? a->argmax
                     : a->argmax < b->argmax ? a->argmax
                                             : b->argmax;
    }
    out.ref = ref;
    if (a->columns == 0)
        out.argmax = b->argmax;
    else if (b->columns == 0)
        out.argmax = a->argmax;
    out.count_nan = a->count_nan + b->count_nan;
    out.first_nan = a->first_nan < 0              ? b->first_nan
                    : b->first_nan < 0            ? a->first_nan
                    : a->first_nan < b->first_nan ? a->first_nan
                                                  : b->first_nan;
    out.count_kept = a->count_kept + b->count_kept;
    out.first_kept = a->first_kept < 0               ? b->first_kept
                     : b->first_kept < 0             ? a->first_kept
                     : a->first_kept < b->first_kept ? a->first_kept
                                                     : b->first_kept;
    out.columns = a->columns + b->columns;
    if (b->target_found) {
        out.target_found = 1;
        out.target_logit = b->target_logit;
    }
    double a_abs = fabs(a->scale);
    out.sum_hi = out.sum_lo = out.dsum_hi = out.dsum_lo = 0.0;
    if (a_abs > 0.0 && a_abs < INFINITY && isfinite(ref) && out.count_nan == 0 &&
        !(a->flags & SOFTMAX_SUMMARY_NO_SUMS)) {
        double s1h, s1l, d1h, d1l, s2h, s2l, d2h, d2l;
        rescaled_sums(a, ref, &s1h, &s1l, &d1h, &d1l);
        rescaled_sums(b, ref, &s2h, &s2l, &d2h, &d2l);
        double sh = s1h, sl = s1l + s2l, dh = d1h, dl = d1l + d2l;
        dd_add(&sh, &sl, s2h);
        dd_add(&dh, &dl, d2h);
        two_sum(sh, sl, &out.sum_hi, &out.sum_lo);
        two_sum(dh, dl, &out.dsum_hi, &out.dsum_lo);
    }
    merge_candidates(a, b, scratch);
    out.candidates = a->candidates;
    *a = out;
    return SOFTMAX_OK;
}

int softmax_summary_merge(void *inout, const void *in, size_t rows)
{
    static const char fn[] = "softmax_summary_merge";
    softmax_clear_error();
    size_t bytes, in_bytes;
    int status = summary_check_records(fn, inout, rows, &bytes);
    if (status == SOFTMAX_OK)
        status = summary_check_records(fn, in, rows, &in_bytes);
    if (status != SOFTMAX_OK)
        return status;
    if (rows == 0)
        return SOFTMAX_OK;
    RETURN_ERROR_IF(bytes != in_bytes, SOFTMAX_E_INVALID_ARGUMENT, "%s: records of capacities %u and %u", fn,
                    ((const softmax_summary *)inout)->top_k, ((const softmax_summary *)in)->top_k);
    /* A shifted in (in = inout - one record) would merge rows already
     * merged: refused like in == inout. */
    RETURN_ERROR_IF(bytes_overlap(inout, rows * bytes, in, rows * bytes), SOFTMAX_E_OVERLAP,
                    "%s: inout and in share bytes", fn);
    /* Check every row first: nothing is written unless all rows merge. */
    for (size_t r = 0; r < rows; r++) {
        const softmax_summary *a = summary_const_record(inout, bytes, r), *b = summary_const_record(in, bytes, r);
        if (memcmp(&a->scale, &b->scale, sizeof a->scale) != 0 || a->target != b->target || a->flags != b->flags ||
            (a->target_found && b->target_found) || a->columns + b->columns >= (UINT64_C(1) << 32)) {
            softmax_summary copy = *a;
            return merge_pair(&copy, b, r, NULL); /* fails before the candidates: records the message */
        }
    }
    size_t capacity = ((const softmax_summary *)inout)->top_k;
    softmax_candidate *scratch = NULL;
    RETURN_ERROR_IF(capacity > 0 && (scratch = malloc(capacity * sizeof *scratch)) == NULL, SOFTMAX_E_OUT_OF_MEMORY,
                    "%s: no memory for %zu candidates", fn, capacity);
    for (size_t r = 0; r < rows; r++)
        merge_pair(summary_record(inout, bytes, r), summary_const_record(in, bytes, r), r, scratch);
    free(scratch);
    return SOFTMAX_OK;
}

/* ---------------------------------------------------------------------------
 * Finishing calls.
 * ------------------------------------------------------------------------ */

typedef enum row_mode {
    ROW_NAN,     /* a NaN in the row: NaN outputs */
    ROW_MASKED,  /* no element above -inf: zeros / -inf */
    ROW_SHARED,  /* the elements with t == ref share the mass equally (+inf entries, infinite scale) */
    ROW_UNIFORM, /* scale 0: the elements above -inf share the mass */
    ROW_NORMAL   /* exp(|scale| * (t - ref)) / S */
} row_mode;

static row_mode mode_of(const softmax_summary *s)
{
    double a = fabs(s->scale);
    if (s->count_nan > 0)
        return ROW_NAN;
    if (s->count_kept == 0 || !(s->ref > -INFINITY))
        return ROW_MASKED;
    if (a == 0.0)
        return ROW_UNIFORM;
    if (a == INFINITY || s->ref == INFINITY)
        return ROW_SHARED;
    return ROW_NORMAL;
}

/* The checks shared by the calls that take a slice and its merged records. */
static int check_slice_and_records(const char *fn, const softmax_slice *slice, const void *merged, const void *out,
                                   size_t *bytes)
{
    int status = summary_check_slice(fn, slice);
    if (status != SOFTMAX_OK)
        return status;
    status = summary_check_records(fn, merged, slice->rows, bytes);
    if (status != SOFTMAX_OK)
        return status;
    if (slice->rows == 0 || slice->cols == 0)
        return SOFTMAX_OK;
    RETURN_ERROR_IF(out == NULL, SOFTMAX_E_NULL_POINTER, "%s: output is NULL", fn);
    size_t in_size = softmax_dtype_size(slice->dtype);
    size_t out_size = slice->dtype == SOFTMAX_DTYPE_F64 ? sizeof(double) : sizeof(float);
    size_t n = slice->rows * slice->cols;
    RETURN_ERROR_IF(n > SIZE_MAX / out_size, SOFTMAX_E_SIZE_OVERFLOW, "%s: output size overflows", fn);
    int aliased = out == slice->logits && in_size == out_size;
    RETURN_ERROR_IF(!aliased && bytes_overlap(out, n * out_size, slice->logits, n * in_size), SOFTMAX_E_OVERLAP,
                    "%s: the output overlaps the logits without being equal to them", fn);
    /* The targets are read while the rows are written. */
    RETURN_ERROR_IF(bytes_overlap(out, n * out_size, slice->targets, summary_target_bytes(slice)), SOFTMAX_E_OVERLAP,
                    "%s: the output overlaps the targets", fn);
    RETURN_ERROR_IF(bytes_overlap(out, n * out_size, merged, slice->rows * *bytes), SOFTMAX_E_OVERLAP,
                    "%s: the output overlaps the records", fn);
    for (size_t r = 0; r < slice->rows; r++) {
        const softmax_summary *s = summary_const_record(merged, *bytes, r);
        RETURN_ERROR_IF(s->flags & SOFTMAX_SUMMARY_NO_SUMS, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: record %zu has no sums (made for sampling)", fn, r);
        RETURN_ERROR_IF(s->columns != slice->vocab, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: record %zu covers %llu columns, not the vocabulary of %llu (not fully merged?)", fn, r,
                        (unsigned long long)s->columns, (unsigned long long)slice->vocab);
    }
    return SOFTMAX_OK;
}

/* log S as hi + lo. */
static void log_sum(const softmax_summary *s, double *hi, double *lo)
{
    *hi = log(s->sum_hi);
    *lo = s->sum_lo / s->sum_hi;
}

/* What the finishing passes over a row's elements need of its record,
 * found once per row. */
typedef struct row_finish {
    const softmax_summary *s;
    row_mode mode;
    double log_s_hi, log_s_lo; /* log S as hi + lo (rows of ROW_NORMAL only, 0 otherwise) */
    double sum;                /* S */
} row_finish;

static row_finish row_finish_of(const void *merged, size_t bytes, size_t r)
{
    row_finish f = {summary_const_record(merged, bytes, r), ROW_NORMAL, 0.0, 0.0, 0.0};
    f.mode = mode_of(f.s);
    f.sum = f.s->sum_hi + f.s->sum_lo;
    if (f.mode == ROW_NORMAL)
        log_sum(f.s, &f.log_s_hi, &f.log_s_lo);
    return f;
}

/* p (log = 0) or log p (log = 1) of one element of a row. */
static double finish_element(const row_finish *f, double x, int log_output)
{
    const softmax_summary *s = f->s;
    double t = summary_sign(s->scale) * x;
    switch (f->mode) {
    case ROW_NAN:
        return NAN;
    case ROW_MASKED:
        return log_output ? -INFINITY : 0.0;
    case ROW_SHARED:
        if (t == s->ref)
            return log_output ? -log((double)s->count_ref) : 1.0 / (double)s->count_ref;
        return log_output ? -INFINITY : 0.0;
    case ROW_UNIFORM:
        if (t > -INFINITY)
            return log_output ? -log((double)s->count_kept) : 1.0 / (double)s->count_kept;
        return log_output ? -INFINITY : 0.0;
    case ROW_NORMAL:
    default:
        break;
    }
    if (!(t > -INFINITY))
        return log_output ? -INFINITY : 0.0;
    double d_hi, d_lo;
    scaled_difference(fabs(s->scale), t, s->ref, &d_hi, &d_lo);
    if (log_output)
        return (d_hi - f->log_s_hi) + (d_lo - f->log_s_lo);
    if (!(d_hi > -746.0))
        return 0.0;
    return exp_dd(d_hi, d_lo) / f->sum;
}

/* Row r of an output of n columns of out_type (f32 or f64). */
static void *output_row(softmax_dtype out_type, void *out, size_t r, size_t n)
{
    return out_type == SOFTMAX_DTYPE_F64 ? (void *)((double *)out + r * n) : (void *)((float *)out + r * n);
}

static void store(softmax_dtype out_type, void *out, size_t i, double v)
{
    if (out_type == SOFTMAX_DTYPE_F64)
        ((double *)out)[i] = v;
    else
        ((float *)out)[i] = (float)v;
}

int softmax_summary_softmax(const softmax_slice *slice, const void *merged, int log_output, void *y)
{
    static const char fn[] = "softmax_summary_softmax";
    softmax_clear_error();
    size_t bytes;
    int status = check_slice_and_records(fn, slice, merged, y, &bytes);
    if (status != SOFTMAX_OK || slice->rows == 0 || slice->cols == 0)
        return status;
    softmax_dtype out_type = slice->dtype == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
    size_t n = slice->cols;
    int threads = summary_threads(slice);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t r = 0; r < slice->rows; r++) {
        const row_finish f = row_finish_of(merged, bytes, r);
        void *out_row = output_row(out_type, y, r, n);
        double buffer[SUMMARY_CHUNK];
        for (size_t begin = 0, count; (count = summary_read_chunk(slice, r, begin, buffer)) > 0; begin += count) {
            for (size_t i = 0; i < count; i++)
                store(out_type, out_row, begin + i, finish_element(&f, buffer[i], log_output));
        }
    }
    return SOFTMAX_OK;
}

/* lse = |scale| * ref + log S, and the other per-row values. */
static double row_logsumexp(const softmax_summary *s, row_mode mode)
{
    double a = fabs(s->scale);
    switch (mode) {
    case ROW_NAN:
        return NAN;
    case ROW_MASKED:
        return -INFINITY;
    case ROW_UNIFORM:
        return log((double)s->count_kept);
    case ROW_SHARED:
        if (s->ref == 0.0) /* infinite scale, extreme element 0: z = 0 for the ties */
            return log((double)s->count_ref);
        return s->ref > 0.0 ? INFINITY : (a == INFINITY ? -INFINITY : INFINITY);
    case ROW_NORMAL:
    default:
        break;
    }
    double z = a * s->ref;
    if (isinf(z)) /* |scale * max| beyond f64: log S in [0, 22.2] cannot bring it back */
        return z;
    double log_hi, log_lo;
    log_sum(s, &log_hi, &log_lo);
    double z_lo = fma(a, s->ref, -z);
    return z + (log_hi + (log_lo + z_lo));
}

static double row_entropy(const softmax_summary *s, row_mode mode)
{
    switch (mode) {
    case ROW_NAN:
        return NAN;
    case ROW_MASKED:
        return 0.0;
    case ROW_UNIFORM:
        return log((double)s->count_kept);
    case ROW_SHARED:
        return log((double)s->count_ref);
    case ROW_NORMAL:
    default:
        break;
    }
    double log_hi, log_lo;
    log_sum(s, &log_hi, &log_lo);
    /* H = log S - D / S, both terms >= 0 (D <= 0). */
    double mean = -(s->dsum_hi + s->dsum_lo) / (s->sum_hi + s->sum_lo);
    return log_hi + (mean + log_lo);
}

static double row_nll(const softmax_summary *s, row_mode mode)
{
    if (s->target < 0)
        return 0.0;
    double t = summary_sign(s->scale) * s->target_logit;
    switch (mode) {
    case ROW_NAN:
        return NAN;
    case ROW_MASKED:
        return INFINITY;
    case ROW_UNIFORM:
        return t > -INFINITY ? log((double)s->count_kept) : INFINITY;
    case ROW_SHARED:
        return t == s->ref ? log((double)s->count_ref) : INFINITY;
    case ROW_NORMAL:
    default:
        break;
    }
    if (!(t > -INFINITY))
        return INFINITY;
    double log_hi, log_lo, d_hi, d_lo;
    log_sum(s, &log_hi, &log_lo);
    scaled_difference(fabs(s->scale), t, s->ref, &d_hi, &d_lo);
    /* log S - d, both terms >= 0. */
    return (log_hi - d_hi) + (log_lo - d_lo);
}

int softmax_summary_stats(const void *merged, size_t rows, double *logsumexp, double *entropy, int64_t *argmax,
                          double *nll)
{
    static const char fn[] = "softmax_summary_stats";
    softmax_clear_error();
    size_t bytes;
    int status = summary_check_records(fn, merged, rows, &bytes);
    if (status != SOFTMAX_OK)
        return status;
    /* Outputs are written row by row while later records are read. */
    void *outputs[4] = {logsumexp, entropy, argmax, nll};
    for (int i = 0; i < 4 && rows > 0; i++) {
        RETURN_ERROR_IF(bytes_overlap(outputs[i], rows * 8, merged, rows * bytes), SOFTMAX_E_OVERLAP,
                        "%s: an output overlaps the records", fn);
        for (int j = 0; j < i; j++)
            RETURN_ERROR_IF(bytes_overlap(outputs[i], rows * 8, outputs[j], rows * 8), SOFTMAX_E_OVERLAP,
                            "%s: two outputs share bytes", fn);
    }
    for (size_t r = 0; r < rows; r++)
        RETURN_ERROR_IF((summary_const_record(merged, bytes, r)->flags & SOFTMAX_SUMMARY_NO_SUMS) &&
                            (logsumexp != NULL || entropy != NULL || nll != NULL),
                        SOFTMAX_E_INVALID_ARGUMENT, "%s: record %zu has no sums (made for sampling)", fn, r);
    for (size_t r = 0; r < rows && nll != NULL; r++) {
        const softmax_summary *s = summary_const_record(merged, bytes, r);
        RETURN_ERROR_IF(s->target >= 0 && !s->target_found && s->count_nan == 0, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: row %zu: no merged record holds the target column %lld", fn, r, (long long)s->target);
    }
    for (size_t r = 0; r < rows; r++) {
        const softmax_summary *s = summary_const_record(merged, bytes, r);
        row_mode mode = mode_of(s);
        if (logsumexp != NULL)
            logsumexp[r] = row_logsumexp(s, mode);
        if (entropy != NULL)
            entropy[r] = row_entropy(s, mode);
        if (argmax != NULL)
            argmax[r] = mode == ROW_NAN ? s->first_nan : mode == ROW_UNIFORM ? s->first_kept : s->argmax;
        if (nll != NULL)
            nll[r] = row_nll(s, mode);
    }
    return SOFTMAX_OK;
}

int softmax_summary_nll_backward(const softmax_slice *slice, const void *merged, void *dx)
{
    static const char fn[] = "softmax_summary_nll_backward";
    softmax_clear_error();
    size_t bytes;
    int status = check_slice_and_records(fn, slice, merged, dx, &bytes);
    if (status != SOFTMAX_OK || slice->rows == 0 || slice->cols == 0)
        return status;
    RETURN_ERROR_IF(slice->targets == NULL, SOFTMAX_E_NULL_POINTER, "%s: the slice has no targets", fn);
    /* The gradient's one-hot comes from these targets and its NLL from the
     * records' ones: they must be the same (any negative = ignored). */
    for (size_t r = 0; r < slice->rows; r++) {
        const int64_t want = slice->targets[r], had = summary_const_record(merged, bytes, r)->target;
        RETURN_ERROR_IF(want < 0 ? had >= 0 : want != had, SOFTMAX_E_INVALID_ARGUMENT,
                        "%s: row %zu: target %lld, but the records were computed with target %lld", fn, r,
                        (long long)want, (long long)had);
    }
    softmax_dtype out_type = slice->dtype == SOFTMAX_DTYPE_F64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32;
    size_t n = slice->cols;
    int threads = summary_threads(slice);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t r = 0; r < slice->rows; r++) {
        const row_finish f = row_finish_of(merged, bytes, r);
        double scale = f.s->scale, a = fabs(scale);
        int zeros = slice->targets[r] < 0 || f.mode == ROW_MASKED || a == INFINITY;
        void *out_row = output_row(out_type, dx, r, n);
        double buffer[SUMMARY_CHUNK];
        for (size_t begin = 0, count; (count = summary_read_chunk(slice, r, begin, buffer)) > 0; begin += count) {
            for (size_t i = 0; i < count; i++) {
                double v;
                if (f.mode == ROW_NAN) {
                    v = NAN;
                } else if (zeros) {
                    v = 0.0;
                } else {
                    double p = finish_element(&f, buffer[i], 0);
                    int is_target = (int64_t)(slice->col_offset + begin + i) == slice->targets[r];
                    v = scale * (is_target ? p - 1.0 : p);
                }
                store(out_type, out_row, begin + i, v);
            }
        }
    }
    return SOFTMAX_OK;
}
