/*
 * general_bench.c -- the general API side by side with its baselines:
 * bf16 / f16 data against the f32 path, a memcpy of the same bytes and
 * oneDNN's bf16 softmax; fused masks on an attention-shaped tensor against
 * the unmasked call and against the unfused "add the mask, then softmax"
 * that attention code writes today; a transposed (strided) view against the
 * contiguous call.
 *
 *   general_bench [--quick] [--threads N] [--masks-only]
 *
 * --masks-only: only the table of fused masks on rows of every length (to
 * run two builds of the library alternately on it).
 *
 * Prints markdown tables: median ns per element over fast-state samples,
 * interleaved, and the ratios to the unmasked or f32 calls.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fast_state.h"
#include "harness.h"
#include "softmax.h"

#ifdef BENCH_HAVE_ONEDNN
#include <dnnl.h>
#endif

static int threads = 1;

static void *checked_alloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (p == NULL) {
        fprintf(stderr, "general_bench: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static double normal(void)
{
    double u[2];
    for (int k = 0; k < 2; k++) {
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
        u[k] = ((double)(rng_state >> 11) + 0.5) * 0x1p-53;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* ---- runners ---- */

typedef struct execute_context {
    softmax_desc desc;
    int64_t src_strides[SOFTMAX_MAX_NDIM];
    const void *src;
    void *dst;
    /* unfused: scores + mask into `scratch` first */
    const float *mask;
    float *scratch;
    size_t rows_per_mask;
    size_t mask_elements;
} execute_context;

static void run_execute(void *opaque)
{
    execute_context *c = opaque;
    int status = softmax_execute(&c->desc, c->src, NULL, c->dst);
    if (status != 0) {
        fprintf(stderr, "general_bench: softmax_execute failed: %s\n", softmax_last_error());
        exit(1);
    }
}

/* out = scores + mask, the mask broadcast over the blocks; without a mask
 * scores + 0, the same loop but for the mask's reads. */
static void add_mask_into(const execute_context *c, float *out)
{
    const float *x = c->src;
    const size_t blocks = c->rows_per_mask;
    const size_t m = c->mask_elements;
    if (c->mask == NULL) {
#pragma omp parallel for num_threads(threads) if (threads > 1)
        for (size_t i = 0; i < blocks * m; i++)
            out[i] = x[i] + 0.0f;
        return;
    }
#pragma omp parallel for num_threads(threads) if (threads > 1)
    for (size_t b = 0; b < blocks; b++)
        for (size_t i = 0; i < m; i++)
            out[b * m + i] = x[b * m + i] + c->mask[i];
}

/* The memory alone: x (and the mask) read, y written, nothing else
 * computed. */
static void run_add_mask(void *opaque)
{
    execute_context *c = opaque;
    add_mask_into(c, c->dst);
}

/* What attention code does without a fused mask: scores + mask (broadcast)
 * written out, then the softmax of that. */
static void run_unfused(void *opaque)
{
    execute_context *c = opaque;
    add_mask_into(c, c->scratch);
    softmax_desc plain = c->desc;
    plain.mask = NULL;
    plain.mask_strides = NULL;
    if (softmax_execute(&plain, c->scratch, NULL, c->dst) != 0)
        exit(1);
}

typedef struct copy_context {
    void *dst;
    const void *src;
    size_t bytes;
} copy_context;

static void run_copy(void *opaque)
{
    copy_context *c = opaque;
    const size_t parts = (size_t)threads;
#pragma omp parallel for num_threads(threads) if (threads > 1)
    for (size_t part = 0; part < parts; part++) {
        const size_t begin = c->bytes * part / parts, end = c->bytes * (part + 1) / parts;
        memcpy((char *)c->dst + begin, (const char *)c->src + begin, end - begin);
    }
}

#ifdef BENCH_HAVE_ONEDNN
typedef struct onednn_context {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t primitive;
    dnnl_exec_arg_t args[2];
} onednn_context;

static void run_onednn(void *opaque)
{
    onednn_context *c = opaque;
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    dnnl_primitive_execute(c->primitive, c->stream, 2, c->args);
    dnnl_stream_wait(c->stream);
}

/* oneDNN's bf16 softmax along the last axis of rows x cols, or NULL. */
static onednn_context *onednn_bf16(size_t rows, size_t cols, const void *src, void *dst)
{
    onednn_context *c = calloc(1, sizeof *c);
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {(dnnl_dim_t)rows, (dnnl_dim_t)cols};
    dnnl_softmax_v2_desc_t op;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t memory[2];
    /* oneDNN fixes its thread count when the primitive is created: set it
     * first (without this the "1 thread" anchor ran on every core). */
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    if (c == NULL || dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_bf16, dnnl_ab) != dnnl_success ||
        dnnl_softmax_v2_forward_desc_init(&op, dnnl_forward_inference, dnnl_softmax_accurate, &md, &md, 1) !=
            dnnl_success ||
        dnnl_primitive_desc_create(&pd, &op, NULL, c->engine, NULL) != dnnl_success ||
        dnnl_primitive_create(&c->primitive, pd) != dnnl_success ||
        dnnl_memory_create(&memory[0], &md, c->engine, (void *)src) != dnnl_success ||
        dnnl_memory_create(&memory[1], &md, c->engine, dst) != dnnl_success) {
        free(c);
        return NULL;
    }
    dnnl_primitive_desc_destroy(pd);
    c->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, memory[0]};
    c->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, memory[1]};
    return c;
}
#else
static void run_onednn_missing(void *opaque)
{
    (void)opaque;
}
#endif

/* ---- table ---- */

static harness_settings settings;

typedef struct row_spec {
    const char *label;
    candidate cands[10];
    size_t count;
} row_spec;

static void add(row_spec *row, const char *name, candidate_role role, void (*run)(void *), void *context,
                size_t elements)
{
    candidate *c = &row->cands[row->count++];
    *c = (candidate){.name = name, .role = role, .available = context != NULL, .elements = elements};
    c->why_not = context == NULL ? "n/a" : NULL;
    c->runner.run = run;
    c->runner.context = context;
}

static void measure(row_spec *row)
{
    settings.probe_threads = threads;
    harness_measure(row->cands, row->count, &settings);
    for (size_t i = 0; i < row->count; i++)
        if (row->cands[i].available)
            harness_summarize(&row->cands[i]);
}

static size_t fewest_kept(const row_spec *row)
{
    size_t fewest = SIZE_MAX;
    for (size_t i = 0; i < row->count; i++)
        if (row->cands[i].available && row->cands[i].kept < fewest)
            fewest = row->cands[i].kept;
    return fewest == SIZE_MAX ? 0 : fewest;
}

/* One table cell: a median, or n/a. */
static void cell(double value)
{
    if (isnan(value))
        printf(" n/a |");
    else
        printf(" %.3f |", value);
}

static void ratio_cell(double value)
{
    if (isnan(value))
        printf(" n/a |");
    else
        printf(" %.2f |", value);
}

static double median_of(const row_spec *row, const char *name)
{
    for (size_t i = 0; i < row->count; i++)
        if (strcmp(row->cands[i].name, name) == 0 && row->cands[i].available)
            return row->cands[i].median;
    return NAN;
}

/* ---- cases ---- */

static execute_context *plain_context(softmax_dtype in, softmax_dtype out, size_t rows, size_t cols, const void *x,
                                      void *y)
{
    execute_context *c = calloc(1, sizeof *c);
    softmax_desc_init(&c->desc, SOFTMAX_OP_SOFTMAX, in, cols);
    c->desc.ndim = 2;
    c->desc.shape[0] = rows;
    c->desc.shape[1] = cols;
    c->desc.dst_dtype = out;
    c->src = x;
    c->dst = y;
    return c;
}

static void half_rows(size_t rows, size_t cols)
{
    const size_t n = rows * cols;
    float *x32 = checked_alloc(n * 4), *y32 = checked_alloc(n * 4);
    uint16_t *x16 = checked_alloc(n * 2), *y16 = checked_alloc(n * 2), *xbf = checked_alloc(n * 2),
             *ybf = checked_alloc(n * 2);
    for (size_t i = 0; i < n; i++)
        x32[i] = (float)(normal() * 4);
    softmax_convert(x16, SOFTMAX_DTYPE_F16, x32, SOFTMAX_DTYPE_F32, n);
    softmax_convert(xbf, SOFTMAX_DTYPE_BF16, x32, SOFTMAX_DTYPE_F32, n);
    copy_context copy = {y16, x16, n * 2};
    row_spec row = {0};
    char label[96];
    snprintf(label, sizeof label, "%zux%zu half (ns/element)", rows, cols);
    row.label = label;
    add(&row, "memcpy-2B", ROLE_LIMIT, run_copy, &copy, n);
    add(&row, "f32", ROLE_REFERENCE, run_execute, plain_context(SOFTMAX_DTYPE_F32, 0, rows, cols, x32, y32), n);
    add(&row, "bf16", ROLE_LIBRARY, run_execute, plain_context(SOFTMAX_DTYPE_BF16, 0, rows, cols, xbf, ybf), n);
    add(&row, "f16", ROLE_LIBRARY, run_execute, plain_context(SOFTMAX_DTYPE_F16, 0, rows, cols, x16, y16), n);
    add(&row, "bf16->f32", ROLE_LIBRARY, run_execute,
        plain_context(SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F32, rows, cols, xbf, y32), n);
    execute_context *fast = plain_context(SOFTMAX_DTYPE_BF16, 0, rows, cols, xbf, ybf);
    fast->desc.flags = SOFTMAX_FLAG_FAST;
    add(&row, "bf16-fast", ROLE_LIBRARY, run_execute, fast, n);
#ifdef BENCH_HAVE_ONEDNN
    add(&row, "oneDNN-bf16", ROLE_ANCHOR, run_onednn, onednn_bf16(rows, cols, xbf, ybf), n);
#else
    add(&row, "oneDNN-bf16", ROLE_ANCHOR, run_onednn_missing, NULL, n);
#endif
    measure(&row);
    const double f32 = median_of(&row, "f32"), bf16 = median_of(&row, "bf16"), f16 = median_of(&row, "f16"),
                 copy_ns = median_of(&row, "memcpy-2B");
    printf("| %zux%zu |", rows, cols);
    cell(copy_ns), cell(f32), cell(bf16), cell(f16), cell(median_of(&row, "bf16->f32")),
        cell(median_of(&row, "bf16-fast")), cell(median_of(&row, "oneDNN-bf16"));
    ratio_cell(f32 / bf16), ratio_cell(f32 / f16), ratio_cell(copy_ns / bf16), ratio_cell(copy_ns / f16);
    printf(" %zu |\n", fewest_kept(&row));
    fflush(stdout);
    free(x32), free(y32), free(x16), free(y16), free(xbf), free(ybf);
}

static void attention(void)
{
    const size_t B = 8, H = 32, Q = 512, K = 512, n = B * H * Q * K;
    float *x = checked_alloc(n * 4), *y = checked_alloc(n * 4), *scratch = checked_alloc(n * 4);
    float *mask = checked_alloc(Q * K * 4), *bias = checked_alloc(Q * K * 4);
    uint16_t *mask_bf16 = checked_alloc(Q * K * 2);
    uint8_t *padding = checked_alloc(B * K);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)normal();
    for (size_t q = 0; q < Q; q++)
        for (size_t k = 0; k < K; k++)
            mask[q * K + k] = k <= q ? 0.0f : -INFINITY, bias[q * K + k] = (float)(-0.05 * fabs((double)q - k));
    softmax_convert(mask_bf16, SOFTMAX_DTYPE_BF16, mask, SOFTMAX_DTYPE_F32, Q * K);
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < K; k++)
            padding[b * K + k] = k < K - 40 * b;
    static const int64_t mask_strides[4] = {0, 0, 512, 1};
    static const int64_t padding_strides[4] = {512, 0, 0, 1};

    execute_context *base = calloc(1, sizeof *base);
    softmax_desc_init(&base->desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, K);
    base->desc.ndim = 4;
    base->desc.shape[0] = B, base->desc.shape[1] = H, base->desc.shape[2] = Q, base->desc.shape[3] = K;
    base->desc.scale = 0.125;
    base->src = x;
    base->dst = y;
    execute_context *causal = malloc(sizeof *causal), *padded = malloc(sizeof *padded),
                    *additive = malloc(sizeof *additive), *additive_bf16 = malloc(sizeof *additive_bf16),
                    *unfused = malloc(sizeof *unfused), *biased = malloc(sizeof *biased),
                    *alibi = malloc(sizeof *alibi);
    *causal = *padded = *additive = *additive_bf16 = *unfused = *biased = *alibi = *base;
    biased->desc.mask = bias;
    biased->desc.mask_strides = mask_strides;
    alibi->desc.max_bias = 8.0;
    alibi->desc.causal = 1;
    causal->desc.causal = 1;
    padded->desc.where = padding;
    padded->desc.where_strides = padding_strides;
    additive->desc.mask = mask;
    additive->desc.mask_strides = mask_strides;
    additive_bf16->desc.mask = mask_bf16;
    additive_bf16->desc.mask_dtype = SOFTMAX_DTYPE_BF16;
    additive_bf16->desc.mask_strides = mask_strides;
    unfused->mask = mask;
    unfused->scratch = scratch;
    unfused->rows_per_mask = B * H;
    unfused->mask_elements = Q * K;

    row_spec row = {0};
    row.label = "attention 8x32x512x512 f32, scale 1/8";
    add(&row, "unmasked", ROLE_REFERENCE, run_execute, base, n);
    add(&row, "causal", ROLE_LIBRARY, run_execute, causal, n);
    add(&row, "padding", ROLE_LIBRARY, run_execute, padded, n);
    add(&row, "mask-f32", ROLE_LIBRARY, run_execute, additive, n);
    add(&row, "mask-bf16", ROLE_LIBRARY, run_execute, additive_bf16, n);
    add(&row, "bias-f32", ROLE_LIBRARY, run_execute, biased, n);
    add(&row, "alibi+causal", ROLE_LIBRARY, run_execute, alibi, n);
    add(&row, "x+mask,softmax", ROLE_ANCHOR, run_unfused, unfused, n);
    measure(&row);
    const double unmasked = median_of(&row, "unmasked");
    static const char *const descriptions[] = {
        "no mask",
        "`causal = 1` (no mask tensor)",
        "`where`: padding keep-mask [8, 1, 1, 512] (bytes, broadcast over heads and queries)",
        "additive f32 mask [512, 512] of 0 / -inf, broadcast over batch and heads",
        "additive bf16 mask [512, 512] of 0 / -inf",
        "additive f32 bias [512, 512] of finite values (relative-position style)",
        "ALiBi (`max_bias = 8`) + causal",
        "unfused: `x + mask` written out, then softmax (what attention code does without a fused mask)",
    };
    for (size_t i = 0; i < row.count; i++) {
        printf("| %s | %s |", row.cands[i].name, descriptions[i]);
        cell(row.cands[i].available ? row.cands[i].median : NAN);
        ratio_cell(row.cands[i].available ? row.cands[i].median / unmasked : NAN);
        printf(" %zu |\n", row.cands[i].kept);
    }
    fflush(stdout);
    free(x), free(y), free(scratch), free(mask), free(bias), free(mask_bf16), free(padding);
    free(base), free(causal), free(padded), free(additive), free(additive_bf16), free(unfused), free(biased),
        free(alibi);
}

/* Fused masks on attention rows of every length: scores [B, T, T] with a
 * [T, T] mask broadcast over B (B * T * T about 2 Mi elements, at least one
 * matrix), each kind against the unmasked call of the same shape. */
static void short_masked_rows(size_t T)
{
    const size_t B = T * T >= ((size_t)1 << 21) ? 1 : ((size_t)1 << 21) / (T * T), n = B * T * T;
    float *x = checked_alloc(n * 4), *y = checked_alloc(n * 4);
    float *mask = checked_alloc(T * T * 4), *bias = checked_alloc(T * T * 4), *dense = checked_alloc(T * T * 4);
    uint16_t *mask_bf16 = checked_alloc(T * T * 2);
    uint8_t *keep = checked_alloc(T * T);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)normal();
    for (size_t q = 0; q < T; q++)
        for (size_t k = 0; k < T; k++) {
            keep[q * T + k] = k <= q;
            mask[q * T + k] = k <= q ? 0.0f : -INFINITY;
            bias[q * T + k] = k <= q ? (float)(-0.05 * (double)(q - k)) : -INFINITY;
            dense[q * T + k] = (float)(-0.05 * fabs((double)q - (double)k));
        }
    softmax_convert(mask_bf16, SOFTMAX_DTYPE_BF16, mask, SOFTMAX_DTYPE_F32, T * T);
    const int64_t mask_strides[3] = {0, (int64_t)T, 1};

    enum { KINDS = 8 };
    execute_context *contexts = calloc(KINDS, sizeof *contexts);
    softmax_desc_init(&contexts[0].desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 3);
    contexts[0].desc.ndim = 3;
    contexts[0].desc.shape[0] = B, contexts[0].desc.shape[1] = T, contexts[0].desc.shape[2] = T;
    contexts[0].desc.scale = 0.125;
    contexts[0].src = x;
    contexts[0].dst = y;
    for (int k = 1; k < KINDS; k++)
        contexts[k] = contexts[0];
    contexts[1].desc.causal = 1;
    contexts[2].desc.where = keep, contexts[2].desc.where_strides = mask_strides;
    contexts[3].desc.mask = mask, contexts[3].desc.mask_strides = mask_strides;
    contexts[4].desc.mask = mask_bf16, contexts[4].desc.mask_dtype = SOFTMAX_DTYPE_BF16;
    contexts[4].desc.mask_strides = mask_strides;
    contexts[5].desc.mask = bias, contexts[5].desc.mask_strides = mask_strides;
    contexts[6].desc.mask = dense, contexts[6].desc.mask_strides = mask_strides;
    contexts[7].desc.causal = 1, contexts[7].desc.max_bias = 8.0, contexts[7].desc.head_axis = 0;

    static const char *const names[KINDS] = {"unmasked",  "causal",   "where",          "mask-f32",
                                             "mask-bf16", "bias-f32", "bias-f32 dense", "alibi+causal"};
    row_spec row = {0};
    char label[64];
    snprintf(label, sizeof label, "masks on rows of %zu", T);
    row.label = label;
    for (int k = 0; k < KINDS; k++)
        add(&row, names[k], k == 0 ? ROLE_REFERENCE : ROLE_LIBRARY, run_execute, &contexts[k], n);
    /* The memory alone, interleaved with the rest: y = x + 0 and y = x +
     * the f32 mask, one loop (the least an f32 mask adds is their
     * difference; memcpy's stores, which skip reading y, would not
     * compare). */
    execute_context add_zero = contexts[0], add_mask = contexts[0];
    add_zero.mask = NULL, add_zero.rows_per_mask = B, add_zero.mask_elements = T * T;
    add_mask.mask = mask, add_mask.rows_per_mask = B, add_mask.mask_elements = T * T;
    add(&row, "y = x + 0", ROLE_LIMIT, run_add_mask, &add_zero, n);
    add(&row, "y = x + mask", ROLE_LIMIT, run_add_mask, &add_mask, n);
    measure(&row);
    const double unmasked = median_of(&row, "unmasked");
    printf("| %zu x %zu x %zu |", B, T, T);
    cell(unmasked);
    for (int k = 1; k < KINDS; k++)
        ratio_cell(row.cands[k].available ? row.cands[k].median / unmasked : NAN);
    cell(median_of(&row, "mask-f32") - unmasked);
    cell(median_of(&row, "y = x + mask") - median_of(&row, "y = x + 0"));
    printf(" %zu |\n", fewest_kept(&row));
    fflush(stdout);
    free(x), free(y), free(mask), free(bias), free(dense), free(mask_bf16), free(keep), free(contexts);
}

static void strided(void)
{
    const size_t rows = 1024, cols = 4096, n = rows * cols;
    float *x = checked_alloc(n * 4), *xt = checked_alloc(n * 4), *y = checked_alloc(n * 4);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            x[r * cols + j] = (float)normal();
            xt[j * rows + r] = x[r * cols + j];
        }
    execute_context *contiguous = plain_context(SOFTMAX_DTYPE_F32, 0, rows, cols, x, y);
    execute_context *transposed = plain_context(SOFTMAX_DTYPE_F32, 0, rows, cols, xt, y);
    transposed->src_strides[0] = 1;
    transposed->src_strides[1] = (int64_t)rows;
    transposed->desc.src_strides = transposed->src_strides;
    row_spec row = {0};
    row.label = "1024x4096 f32, transposed input view";
    add(&row, "contiguous", ROLE_REFERENCE, run_execute, contiguous, n);
    add(&row, "transposed", ROLE_LIBRARY, run_execute, transposed, n);
    measure(&row);
    const double contiguous_ns = median_of(&row, "contiguous"), transposed_ns = median_of(&row, "transposed");
    printf("| contiguous rows (4096 elements apart from each other) |");
    cell(contiguous_ns), ratio_cell(1.0);
    printf(" %zu |\n| transposed view: `src_strides = {1, 1024}` (the axis strided, lines adjacent) |",
           row.cands[0].kept);
    cell(transposed_ns), ratio_cell(transposed_ns / contiguous_ns);
    printf(" %zu |\n", row.cands[1].kept);
    fflush(stdout);
    free(x), free(xt), free(y), free(contiguous), free(transposed);
}

static void masked_rows_table(void)
{
    printf("\n### Masks on rows of every length: scores [B, T, T], f32, scale 1/8, a [T, T] mask broadcast over B\n\n"
           "Each fused mask kind's time over the unmasked call of the same shape (the causal kinds compute about half "
           "the elements; bias-f32 is a causal bias, -inf above the diagonal, bias-f32 dense the same values "
           "-0.05 |q - k| everywhere). The last two columns put the f32 mask's cost beside the memory it adds: "
           "mask-f32's time "
           "less the unmasked call's, and, measured interleaved with them, a plain loop y = x + mask (the mask "
           "broadcast as in the call) less the same loop without it, y = x + 0, both in ns per element. Where the mask "
           "is as large as x "
           "(T = 4096, B = 1) the second is the floor of the first: reading the mask from memory.\n\n");
    printf("| shape | unmasked ns/element | causal | where | mask-f32 0/-inf | mask-bf16 0/-inf | bias-f32 causal | "
           "bias-f32 dense | ALiBi + causal | mask-f32 - unmasked | (y = x + mask) - (y = x + 0) | fewest samples "
           "kept |\n"
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    static const size_t lengths[] = {16, 32, 64, 128, 256, 1024, 4096};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++)
        short_masked_rows(lengths[i]);
}

int main(int argc, char **argv)
{
    int quick = 0, masks_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--masks-only") == 0)
            masks_only = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: general_bench [--quick] [--threads N] [--masks-only]\n");
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;
    softmax_set_num_threads(threads);
    settings.sample_ns = quick ? 1e6 : 2e6;
    settings.min_kept = quick ? 5 : 9;
    settings.max_rounds = 3 * settings.min_kept;
    harness_calibrate(quick ? 0.2 : 0.5);
    printf("general_bench: %s path, %d thread(s); median ns per element over fast-state samples (interleaved, "
           "%zu+ kept per candidate)\n\n",
           softmax_isa_name(), threads, settings.min_kept);
    if (masks_only) {
        masked_rows_table();
        return 0;
    }
    printf("### bf16 and f16 (ns per element; speed-ups over f32 and fractions of a 2-byte memcpy)\n\n");
    printf("| shape | memcpy, 2 bytes/element | f32 | bf16 | f16 | bf16 in, f32 out | bf16, fast mode | oneDNN bf16 | "
           "bf16 speed-up over f32 | f16 speed-up over f32 | bf16 / memcpy | f16 / memcpy | fewest samples kept |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    half_rows(1024, 4096);
    half_rows(16, 1048576);
    printf("\n### Masks: attention scores 8 x 32 x 512 x 512, f32, scale 1/8, softmax along the last axis\n\n");
    printf("| candidate | what | ns/element | / unmasked | samples kept |\n| --- | --- | --- | --- | --- |\n");
    attention();
    masked_rows_table();
    printf("\n### Strides: softmax of a 1024 x 4096 f32 view along its axis of 4096\n\n");
    printf("| layout | ns/element | / contiguous | samples kept |\n| --- | --- | --- | --- |\n");
    strided();
    return 0;
}
