/*
 * summary_internal.h -- what the slice summaries (summary.c) and the
 * sampling over slices (summary_sample.c) share: reading a slice's row in
 * f64, record access and validation, double-double arithmetic.
 */
#ifndef SOFTMAX_SUMMARY_INTERNAL_H
#define SOFTMAX_SUMMARY_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../internal.h"

/* Elements read at a time into an f64 buffer on the stack. */
#define SUMMARY_CHUNK 512

/* Converts elements [begin, begin + count) of a slice's row to f64
 * (count <= SUMMARY_CHUNK). bf16 and f16 widen exactly. */
void summary_read(softmax_dtype dtype, const void *row, size_t begin, size_t count, double *out);

/* Row r of a slice's logits (NULL for a slice of no columns). */
static inline const void *summary_row(const softmax_slice *slice, size_t r)
{
    return slice->cols > 0 ? (const char *)slice->logits + r * slice->cols * softmax_dtype_size(slice->dtype) : NULL;
}

/* Reads the chunk of row r of a slice that starts at element begin into
 * buffer, in f64, and returns its length, min(cols - begin, SUMMARY_CHUNK):
 * 0 once begin reaches the end of the row. Every pass over a row is
 *
 *     for (size_t begin = 0, count; (count = summary_read_chunk(slice, r, begin, buffer)) > 0; begin += count)
 *         for (size_t i = 0; i < count; i++)
 *             ... buffer[i], the row's element begin + i ...
 */
static inline size_t summary_read_chunk(const softmax_slice *slice, size_t r, size_t begin, double *buffer)
{
    size_t count = slice->cols - begin < SUMMARY_CHUNK ? slice->cols - begin : SUMMARY_CHUNK;
    if (count > 0)
        summary_read(slice->dtype, summary_row(slice, r), begin, count, buffer);
    return count;
}

/* The threads of a pass over every element of a slice, one row per task. */
static inline int summary_threads(const softmax_slice *slice)
{
    return softmax_threads_for_job(slice->rows * slice->cols, slice->rows);
}

/* Checks a slice (fn names the caller in messages). */
int summary_check_slice(const char *fn, const softmax_slice *slice);

/* Whether two byte ranges share a byte (empty or NULL ranges share none). */
static inline int bytes_overlap(const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
    if (a == NULL || b == NULL || a_bytes == 0 || b_bytes == 0)
        return 0;
    uintptr_t a_begin = (uintptr_t)a, b_begin = (uintptr_t)b;
    return a_begin < b_begin + b_bytes && b_begin < a_begin + a_bytes;
}

/* Bytes of a slice's logits and of its targets (0 without targets). */
static inline size_t summary_logit_bytes(const softmax_slice *slice)
{
    return slice->rows * slice->cols * softmax_dtype_size(slice->dtype);
}
static inline size_t summary_target_bytes(const softmax_slice *slice)
{
    return slice->targets != NULL ? slice->rows * sizeof *slice->targets : 0;
}

/* Whether `bytes` bytes at out share a byte with the slice's logits or
 * targets (the slice checked). */
static inline int summary_overlaps_slice(const void *out, size_t bytes, const softmax_slice *slice)
{
    return bytes_overlap(out, bytes, slice->logits, summary_logit_bytes(slice)) ||
           bytes_overlap(out, bytes, slice->targets, summary_target_bytes(slice));
}

/* The record of row r in a buffer of records of `bytes` bytes each. */
static inline softmax_summary *summary_record(void *records, size_t bytes, size_t r)
{
    return (softmax_summary *)((char *)records + r * bytes);
}
static inline const softmax_summary *summary_const_record(const void *records, size_t bytes, size_t r)
{
    return (const softmax_summary *)((const char *)records + r * bytes);
}
static inline softmax_candidate *summary_candidates(softmax_summary *s)
{
    return (softmax_candidate *)(s + 1);
}
static inline const softmax_candidate *summary_const_candidates(const softmax_summary *s)
{
    return (const softmax_candidate *)(s + 1);
}

/* softmax_summary_compute with or without the sums (fn names the caller). */
int summary_compute(const char *fn, const softmax_slice *slice, double scale, size_t top_k, int with_sums,
                    void *summaries);

/* Checks the first record of a merged buffer (magic, capacity) and returns
 * its size in bytes through *bytes. */
int summary_check_records(const char *fn, const void *records, size_t rows, size_t *bytes);

/* The order of the records: t = x (scale >= 0) or -x (scale < 0). */
static inline double summary_sign(double scale)
{
    return signbit(scale) && scale != 0.0 ? -1.0 : 1.0;
}

/* s + e = a + b exactly. */
static inline void two_sum(double a, double b, double *s, double *e)
{
    double sum = a + b;
    double b_virtual = sum - a;
    double a_virtual = sum - b_virtual;
    *s = sum;
    *e = (a - a_virtual) + (b - b_virtual);
}

/* (hi, lo) += v, compensated. */
static inline void dd_add(double *hi, double *lo, double v)
{
    double s, e;
    two_sum(*hi, v, &s, &e);
    *hi = s;
    *lo += e;
}

/* d = a * (t - ref) as hi + lo (a >= 0 finite, t and ref finite), with the
 * rounding of the difference and of the product carried in lo. */
static inline void scaled_difference(double a, double t, double ref, double *hi, double *lo)
{
    double dh, dl;
    two_sum(t, -ref, &dh, &dl);
    if (isinf(dh) && isfinite(t) && isfinite(ref)) {
        /* t - ref overflows f64 (t = -1e308, ref = 1e308) though a small
         * |scale| brings it back: the halves are exact (both operands are
         * then normal, above 2^970) and so is doubling the product. */
        two_sum(0.5 * t, -0.5 * ref, &dh, &dl);
        const double p = a * dh;
        *hi = 2.0 * p;
        *lo = isfinite(*hi) ? 2.0 * (fma(a, dh, -p) + a * dl) : 0.0;
        return;
    }
    double p = a * dh;
    *hi = p;
    *lo = isfinite(p) ? fma(a, dh, -p) + a * dl : 0.0;
}

/* exp(hi + lo) for |lo| <= ulp(hi)-ish: exp(hi) * (1 + lo). */
static inline double exp_dd(double hi, double lo)
{
    double e = exp(hi);
    return e + e * lo;
}

#endif /* SOFTMAX_SUMMARY_INTERNAL_H */
