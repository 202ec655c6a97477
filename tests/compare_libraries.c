/*
 * compare_libraries.c -- runs the same calls through two builds of
 * libsoftmax.so and compares every output bit for bit.
 *
 *     SOFTMAX_ISA=avx512 compare_libraries BASELINE.so CANDIDATE.so
 *
 * A guard for changes that must not change any result (moving kernels
 * between files, renaming, a new table layout): the baseline is a build of
 * the previous commit, the candidate the new one. Both libraries are
 * loaded into one process with RTLD_LOCAL, so each binds to its own
 * symbols; both read SOFTMAX_ISA, so one run compares one code path (run it
 * once per path). The calls cover the regime boundaries of every path:
 * lengths at and around every threshold of the kernels and of the general
 * pipeline (vector widths of f32 and f64 on AVX2 and AVX-512, the small and
 * in-cache limits, the streaming blocks, the half-row and long-row limits),
 * every op, every data type and mixed types, masks of every kind, causal
 * prefixes, ALiBi, non-last axes, transposed views, fast mode, several
 * scales (negative, tiny, huge, 0, infinite) and rows of special values.
 *
 * Exit status 0 if every output and status matched, 1 otherwise (the first
 * differences are printed), 2 if a library could not be loaded.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/thresholds.h" /* the regime limits the lengths go around */
#include "softmax.h"

typedef struct library {
    const char *path;
    void *handle;
    int (*desc_init)(softmax_desc *, softmax_op, softmax_dtype, size_t);
    int (*execute)(const softmax_desc *, const void *, const void *, void *);
    int (*set_num_threads)(int);
    const char *(*isa_name)(void);
    int (*softmax_f32)(const float *, float *, size_t, size_t, float);
    int (*log_softmax_f64)(const double *, double *, size_t, size_t, double);
} library;

static void *symbol(library *lib, const char *name)
{
    void *address = dlsym(lib->handle, name);
    if (address == NULL) {
        fprintf(stderr, "compare_libraries: %s: no symbol %s\n", lib->path, name);
        exit(2);
    }
    return address;
}

static void load(library *lib, const char *path)
{
    lib->path = path;
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib->handle == NULL) {
        fprintf(stderr, "compare_libraries: %s\n", dlerror());
        exit(2);
    }
    *(void **)&lib->desc_init = symbol(lib, "softmax_desc_init");
    *(void **)&lib->execute = symbol(lib, "softmax_execute");
    *(void **)&lib->set_num_threads = symbol(lib, "softmax_set_num_threads");
    *(void **)&lib->isa_name = symbol(lib, "softmax_isa_name");
    *(void **)&lib->softmax_f32 = symbol(lib, "softmax_f32");
    *(void **)&lib->log_softmax_f64 = symbol(lib, "log_softmax_f64");
}

static library baseline, candidate;

static int compare_sizes(const void *a, const void *b)
{
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}
static size_t cases, mismatches;
/* Differences per op (index softmax_op), for the summary. */
static size_t mismatches_by_op[6];

/* ------------------------------------------------------------ inputs -- */

static uint64_t random_state = 0x9e3779b97f4a7c15u;
static uint64_t next_random(void)
{
    uint64_t z = (random_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
/* Uniform in [-1, 1). */
static double uniform(void)
{
    return (double)(next_random() >> 11) * 0x1p-52 - 1.0;
}

static size_t dtype_size(softmax_dtype type)
{
    return type == SOFTMAX_DTYPE_F64 ? 8 : type == SOFTMAX_DTYPE_F32 ? 4 : 2;
}

/* Value kinds of the logits: each row gets one. */
enum values {
    VALUES_SPREAD,    /* uniform in [-8, 8) */
    VALUES_WIDE,      /* uniform in [-300, 300): many exps underflow */
    VALUES_CONFIDENT, /* one large logit, the rest far below */
    VALUES_SPECIAL,   /* -inf, +inf, NaN and huge entries sprinkled in */
    VALUES_LARGE,     /* around 3e7 (f32) or 1e15: near the offset limits */
    VALUES_ALL_MINUS_INF,
    VALUES_KINDS
};

static double logit(enum values kind, size_t j, size_t n)
{
    switch (kind) {
    case VALUES_SPREAD:
        return 8 * uniform();
    case VALUES_WIDE:
        return 300 * uniform();
    case VALUES_CONFIDENT:
        return j == n / 3 ? 40.0 : -40 + uniform();
    case VALUES_SPECIAL: {
        const uint64_t pick = next_random() % 16;
        if (pick == 0)
            return -INFINITY;
        if (pick == 1 && j % 7 == 0)
            return INFINITY;
        if (pick == 2 && j % 11 == 0)
            return NAN;
        if (pick == 3)
            return 1e30;
        return 4 * uniform();
    }
    case VALUES_LARGE:
        return (j % 2 ? 3e7 : 1e15) + 1e3 * uniform();
    case VALUES_ALL_MINUS_INF:
        return -INFINITY;
    default:
        return 0;
    }
}

/* Fills count elements of type `type` (rows of n); each row takes a value
 * kind from `kinds` in turn. Gradients (kinds 0) are plain uniforms. */
static void fill(void *data, softmax_dtype type, size_t count, size_t n, unsigned kinds)
{
    for (size_t i = 0; i < count; i++) {
        const size_t row = i / (n ? n : 1);
        enum values kind = VALUES_SPREAD;
        if (kinds != 0) {
            unsigned seen = 0;
            for (int k = 0; k < VALUES_KINDS; k++)
                if (kinds & (1u << k)) {
                    if (seen == row % (unsigned)__builtin_popcount(kinds))
                        kind = (enum values)k;
                    seen++;
                }
        }
        const double value = kinds ? logit(kind, i % n, n) : uniform();
        switch (type) {
        case SOFTMAX_DTYPE_F64:
            ((double *)data)[i] = value;
            break;
        case SOFTMAX_DTYPE_F32:
            ((float *)data)[i] = (float)value;
            break;
        case SOFTMAX_DTYPE_BF16: {
            const float f = (float)value;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            ((uint16_t *)data)[i] = (uint16_t)(bits >> 16); /* truncated: any bf16 will do */
            break;
        }
        default: {
            /* f16: finite values of moderate size through a crude encoding
             * (sign, exponent, random mantissa); specials kept. */
            uint16_t h;
            if (isnan(value))
                h = 0x7e00;
            else if (isinf(value))
                h = value > 0 ? 0x7c00 : 0xfc00;
            else {
                const double magnitude = fabs(value) > 60000 ? 60000 : fabs(value);
                int exponent;
                frexp(magnitude, &exponent);
                int biased = exponent - 1 + 15;
                if (biased < 1)
                    biased = 1;
                if (biased > 30)
                    biased = 30;
                h = (uint16_t)(((value < 0) << 15) | (biased << 10) | (next_random() & 0x3ff));
            }
            ((uint16_t *)data)[i] = h;
        }
        }
    }
}

/* ------------------------------------------------------------- calls -- */

typedef struct call {
    softmax_desc desc;
    const void *src;
    const void *grad;
    size_t dst_bytes;
    int threads;
    char what[200];
} call;

static void compare(const call *c)
{
    unsigned char *out[2];
    int status[2];
    library *libs[2] = {&baseline, &candidate};
    for (int l = 0; l < 2; l++) {
        /* Same junk in both destinations: an element a library leaves
         * unwritten shows as a difference only if the other writes it. */
        out[l] = malloc(c->dst_bytes ? c->dst_bytes : 1);
        memset(out[l], 0xa5, c->dst_bytes);
        libs[l]->set_num_threads(c->threads);
        status[l] = libs[l]->execute(&c->desc, c->src, c->grad, out[l]);
    }
    cases++;
    if (status[0] != status[1] || memcmp(out[0], out[1], c->dst_bytes) != 0) {
        if (mismatches < 30) {
            size_t first = 0;
            while (first < c->dst_bytes && out[0][first] == out[1][first])
                first++;
            fprintf(stderr, "DIFFERENT: %s (status %d vs %d, first differing byte %zu of %zu)\n", c->what, status[0],
                    status[1], first, c->dst_bytes);
        }
        mismatches++;
        if ((int)c->desc.op >= 1 && (int)c->desc.op <= 5)
            mismatches_by_op[c->desc.op]++;
    }
    free(out[0]);
    free(out[1]);
}

static const char *const type_names[] = {"?", "f32", "f64", "bf16", "f16"};
static const char *const op_names[] = {
    "?", "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "log_softmax_jvp"};

/* Mask kinds of one forward call. */
enum masks {
    MASK_NONE,
    MASK_WHERE,
    MASK_ADD_F32,     /* finite values and -inf */
    MASK_EXCLUDE_F32, /* 0 and -inf only */
    MASK_ADD_BF16,
    MASK_EXCLUDE_F16,
    MASK_CAUSAL, /* causal over [rows, n] (offset n - rows) */
    MASK_CAUSAL_WHERE,
    MASK_ALIBI,     /* ALiBi with an exclusion mask */
    MASK_ALIBI_ADD, /* ALiBi with an additive mask */
    MASK_ALIBI_CAUSAL,
    MASK_KINDS
};
static const char *const mask_names[] = {"none",     "where",       "add-f32",     "exclude-f32",
                                         "add-bf16", "exclude-f16", "causal",      "causal+where",
                                         "alibi",    "alibi+add",   "alibi+causal"};

/* One call on `rows` contiguous rows of n (shape [heads, rows / heads, n]
 * with masks), src / dst of the given types. */
static void run_rows(softmax_op op, softmax_dtype type, softmax_dtype dst_type, size_t rows, size_t n, double scale,
                     enum masks mask, bool fast, unsigned kinds, int threads)
{
    const size_t count = rows * n;
    void *src = malloc(count * dtype_size(type) + 1);
    void *grad = NULL;
    fill(src, type, count, n, kinds);
    const bool forward = op == SOFTMAX_OP_SOFTMAX || op == SOFTMAX_OP_LOG_SOFTMAX;
    if (!forward) {
        /* Backward ops read y or log y: make them from a forward call of
         * the baseline (the same inputs for both libraries). */
        softmax_desc d;
        baseline.desc_init(&d, op == SOFTMAX_OP_SOFTMAX_BACKWARD ? SOFTMAX_OP_SOFTMAX : SOFTMAX_OP_LOG_SOFTMAX, type,
                           n);
        d.ndim = 2;
        d.shape[0] = rows;
        d.shape[1] = n;
        d.scale = scale;
        void *y = malloc(count * dtype_size(type) + 1);
        baseline.set_num_threads(1);
        baseline.execute(&d, src, NULL, y);
        free(src);
        src = y;
        grad = malloc(count * dtype_size(type) + 1);
        fill(grad, type, count, n, 0);
    }
    call c;
    memset(&c, 0, sizeof c);
    baseline.desc_init(&c.desc, op, type, n);
    const size_t heads = rows % 2 == 0 && rows >= 4 ? 2 : 1;
    c.desc.ndim = 3;
    c.desc.shape[0] = heads;
    c.desc.shape[1] = rows / heads;
    c.desc.shape[2] = n;
    c.desc.scale = scale;
    c.desc.dst_dtype = dst_type;
    c.desc.flags = fast ? SOFTMAX_FLAG_FAST : 0;
    c.src = src;
    c.grad = grad;
    c.threads = threads;
    c.dst_bytes = count * dtype_size(dst_type ? dst_type : type);
    void *mask_data = NULL;
    uint8_t *where = NULL;
    if (mask == MASK_WHERE || mask == MASK_CAUSAL_WHERE || mask == MASK_ALIBI) {
        where = malloc(count + 1);
        for (size_t i = 0; i < count; i++)
            where[i] = (next_random() % 5) != 0;
        if (n > 3)
            for (size_t j = 0; j < n; j++)
                where[j] = 0; /* the first row fully masked */
        c.desc.where = where;
    }
    if (mask == MASK_ADD_F32 || mask == MASK_EXCLUDE_F32 || mask == MASK_ALIBI_ADD) {
        float *m = malloc(count * 4 + 4);
        for (size_t i = 0; i < count; i++) {
            const bool excluded = next_random() % 6 == 0;
            m[i] = excluded ? -INFINITY : mask == MASK_EXCLUDE_F32 ? 0.0f : (float)(3 * uniform());
        }
        mask_data = m;
        c.desc.mask = m;
        c.desc.mask_dtype = SOFTMAX_DTYPE_F32;
    }
    if (mask == MASK_ADD_BF16 || mask == MASK_EXCLUDE_F16) {
        uint16_t *m = malloc(count * 2 + 2);
        for (size_t i = 0; i < count; i++) {
            const bool excluded = next_random() % 6 == 0;
            if (mask == MASK_ADD_BF16)
                m[i] = excluded ? 0xff80 : (uint16_t)(0x3f00 + (next_random() % 0x100)); /* -inf or [0.5, 1) */
            else
                m[i] = excluded ? 0xfc00 : 0x0000; /* -inf or 0 */
        }
        mask_data = m;
        c.desc.mask = m;
        c.desc.mask_dtype = mask == MASK_ADD_BF16 ? SOFTMAX_DTYPE_BF16 : SOFTMAX_DTYPE_F16;
    }
    if (mask == MASK_CAUSAL || mask == MASK_CAUSAL_WHERE || mask == MASK_ALIBI_CAUSAL) {
        c.desc.causal = 1;
        c.desc.causal_offset = (int64_t)n - (int64_t)(rows / heads);
    }
    if (mask == MASK_ALIBI || mask == MASK_ALIBI_ADD || mask == MASK_ALIBI_CAUSAL) {
        c.desc.max_bias = 8;
        c.desc.head_axis = 0;
    }
    snprintf(c.what, sizeof c.what, "%s %s->%s rows %zu n %zu scale %g mask %s%s kinds %#x threads %d", op_names[op],
             type_names[type], type_names[dst_type ? dst_type : type], rows, n, scale, mask_names[mask],
             fast ? " fast" : "", kinds, threads);
    compare(&c);
    free(src);
    free(grad);
    free(mask_data);
    free(where);
}

/* Softmax over the middle axis of [outer, n, inner], or over the last axis
 * of a transposed view (the lines strided along their axis). */
static void run_columns(softmax_op op, softmax_dtype type, size_t outer, size_t n, size_t inner, double scale,
                        bool transposed, bool fast)
{
    const size_t count = outer * n * inner;
    void *src = malloc(count * dtype_size(type) + 1);
    void *grad = NULL;
    fill(src, type, count, n, 1u << VALUES_SPREAD | 1u << VALUES_SPECIAL);
    if (op != SOFTMAX_OP_SOFTMAX && op != SOFTMAX_OP_LOG_SOFTMAX) {
        grad = malloc(count * dtype_size(type) + 1);
        fill(grad, type, count, n, 0);
    }
    call c;
    memset(&c, 0, sizeof c);
    baseline.desc_init(&c.desc, op, type, n);
    c.desc.ndim = 3;
    c.desc.shape[0] = outer;
    c.desc.scale = scale;
    c.desc.flags = fast ? SOFTMAX_FLAG_FAST : 0;
    static int64_t strides[3];
    if (transposed) {
        /* A [outer, inner, n] view of [outer, n, inner] memory. */
        c.desc.shape[1] = inner;
        c.desc.shape[2] = n;
        c.desc.axis = 2;
        strides[0] = (int64_t)(n * inner);
        strides[1] = 1;
        strides[2] = (int64_t)inner;
        c.desc.src_strides = strides;
        if (grad != NULL)
            c.desc.grad_strides = strides;
    } else {
        c.desc.shape[1] = n;
        c.desc.shape[2] = inner;
        c.desc.axis = 1;
    }
    c.src = src;
    c.grad = grad;
    c.threads = 1;
    c.dst_bytes = count * dtype_size(type);
    snprintf(c.what, sizeof c.what, "%s %s [%zu, %zu, %zu] %s scale %g%s", op_names[op], type_names[type], outer, n,
             inner, transposed ? "transposed last axis" : "middle axis", scale, fast ? " fast" : "");
    compare(&c);
    free(src);
    free(grad);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: SOFTMAX_ISA=scalar|avx2|avx512 %s BASELINE.so CANDIDATE.so\n", argv[0]);
        return 2;
    }
    load(&baseline, argv[1]);
    load(&candidate, argv[2]);
    const char *isa = baseline.isa_name();
    const char *isa_candidate = candidate.isa_name();
    if (isa == NULL || isa_candidate == NULL || strcmp(isa, isa_candidate) != 0) {
        fprintf(stderr, "compare_libraries: the libraries run different paths (%s, %s)\n", isa ? isa : "none",
                isa_candidate ? isa_candidate : "none");
        return 2;
    }
    const bool quick = getenv("COMPARE_QUICK") != NULL;

    /* Every length at and around a threshold of some path (thresholds.h,
     * for every vector width: f64 4 / 8 and f32 8 / 16 lanes), plus a few
     * lengths in between. */
    size_t short_lengths[160], long_lengths[64], short_count = 0, long_count = 0;
    {
        size_t candidates[160];
        size_t count = 0;
        static const size_t between[] = {1,   2,   3,   5,   7,   12,  24,   40,    48,   96,
                                         100, 120, 191, 255, 257, 511, 1000, 12289, 65537};
        for (size_t i = 0; i < sizeof between / sizeof between[0]; i++)
            candidates[count++] = between[i];
        const size_t thresholds[] = {4,
                                     8,
                                     16,
                                     32,
                                     64,
                                     128,
                                     SMALL_VECTORS * 4,
                                     SMALL_VECTORS * 8,
                                     SMALL_VECTORS * 16,
                                     FAST_HALF_LINE_MIN,
                                     SUM_BLOCK,
                                     2 * SUM_BLOCK,
                                     LONG_ROW_MIN_BLOCKS * SUM_BLOCK,
                                     STREAM_BYTES / sizeof(double),
                                     STREAM_BYTES / sizeof(float),
                                     HALF_ROW_MIN,
                                     STORED_STREAM_BYTES / sizeof(float)};
        for (size_t i = 0; i < sizeof thresholds / sizeof thresholds[0]; i++)
            for (int d = -1; d <= 1; d++)
                candidates[count++] = thresholds[i] + (size_t)(ptrdiff_t)d;
        qsort(candidates, count, sizeof candidates[0], compare_sizes);
        for (size_t i = 0; i < count; i++) {
            if (candidates[i] == 0 || (i > 0 && candidates[i] == candidates[i - 1]))
                continue;
            if (candidates[i] <= 3 * SUM_BLOCK)
                short_lengths[short_count++] = candidates[i];
            else
                long_lengths[long_count++] = candidates[i];
        }
    }
    static const double scales[] = {1.0, 0.5, -1.25, 3e-3, 37.0};
    static const double special_scales[] = {0.0, INFINITY, -INFINITY, 1e-31, 1e31, -2e-40};
    static const softmax_dtype types[] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64, SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16};
    const unsigned all_kinds = (1u << VALUES_KINDS) - 1;
    const unsigned ordinary = 1u << VALUES_SPREAD | 1u << VALUES_WIDE | 1u << VALUES_CONFIDENT;

    /* Short rows: every op, type, scale; several row counts (one row, a
     * group of 2, the tiny group minimum 4, odd counts). */
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t l = 0; l < short_count; l++) {
            const size_t n = short_lengths[l];
            static const size_t row_counts[] = {1, 2, 3, 4, 5, 9};
            for (softmax_op op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX_JVP; op++)
                for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
                    const size_t rows = row_counts[(l + s + (size_t)op) % 6];
                    run_rows(op, types[t], 0, rows, n, scales[s], MASK_NONE, false, all_kinds, 1);
                    if (op <= SOFTMAX_OP_LOG_SOFTMAX) {
                        run_rows(op, types[t], 0, rows, n, scales[s], MASK_NONE, true, all_kinds, 1);
                        run_rows(op, types[t], 0, 4 * rows + 3, n, scales[s], MASK_NONE, true, ordinary, 1);
                        if (types[t] >= SOFTMAX_DTYPE_BF16) {
                            run_rows(op, types[t], SOFTMAX_DTYPE_F32, rows, n, scales[s], MASK_NONE, false, all_kinds,
                                     1);
                            run_rows(op, types[t], SOFTMAX_DTYPE_F32, rows, n, scales[s], MASK_NONE, true, all_kinds,
                                     1);
                        }
                    }
                }
            for (size_t s = 0; s < sizeof special_scales / sizeof special_scales[0]; s++)
                for (softmax_op op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX; op++) {
                    run_rows(op, types[t], 0, 3, n, special_scales[s], MASK_NONE, false, all_kinds, 1);
                    run_rows(op, types[t], 0, 3, n, special_scales[s], MASK_NONE, true, all_kinds, 1);
                    run_rows(op, types[t], 0, 4, n, special_scales[s], MASK_WHERE, false, all_kinds, 1);
                }
            /* Masks of every kind, forward ops; exclusion masks also on the
             * backward ops (where, causal). */
            for (int m = MASK_WHERE; m < MASK_KINDS; m++)
                for (softmax_op op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX_JVP; op++) {
                    if (op > SOFTMAX_OP_LOG_SOFTMAX && m != MASK_WHERE && m != MASK_CAUSAL)
                        continue;
                    const bool causal = m == MASK_CAUSAL || m == MASK_CAUSAL_WHERE || m == MASK_ALIBI_CAUSAL;
                    const size_t rows = causal ? (n < 6 ? n : 6) : 4;
                    run_rows(op, types[t], 0, rows, n, scales[(size_t)m % 5], (enum masks)m, false, ordinary, 1);
                    /* Whole groups of the grouped masked kernels (16 rows). */
                    if (op <= SOFTMAX_OP_LOG_SOFTMAX)
                        run_rows(op, types[t], 0, 36, n, scales[(size_t)m % 5], (enum masks)m, false, ordinary, 1);
                    /* Special rows under a causal mask: enough rows that a NaN or an
                     * infinity lands inside a prefix shorter than the row. */
                    const size_t special_rows = causal ? (n < 37 ? n + 3 : 40) : rows;
                    run_rows(op, types[t], 0, special_rows, n, -0.75, (enum masks)m, false, all_kinds, 1);
                }
        }
    if (!quick) {
        /* Long rows: fewer combinations, one and two threads. */
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            for (size_t l = 0; l < long_count; l++) {
                const size_t n = long_lengths[l];
                for (softmax_op op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX_JVP; op++) {
                    run_rows(op, types[t], 0, 1, n, 1.0, MASK_NONE, false, ordinary, 1);
                    run_rows(op, types[t], 0, 1, n, -0.5, MASK_NONE, false, 1u << VALUES_SPECIAL, 2);
                    if (op <= SOFTMAX_OP_LOG_SOFTMAX) {
                        run_rows(op, types[t], 0, 1, n, 2.0, MASK_NONE, true, ordinary, 1);
                        run_rows(op, types[t], 0, 2, n, 1.0, MASK_NONE, false, 1u << VALUES_LARGE | ordinary, 2);
                        run_rows(op, types[t], 0, 2, n, 0.25, MASK_WHERE, false, ordinary, 1);
                        run_rows(op, types[t], 0, 2, n, 1.0, MASK_ADD_F32, false, ordinary, 1);
                        if (types[t] >= SOFTMAX_DTYPE_BF16)
                            run_rows(op, types[t], SOFTMAX_DTYPE_F32, 1, n, 1.0, MASK_NONE, false, ordinary, 1);
                    }
                }
            }
    }
    /* Non-last axes and transposed views: inner around the column chunks
     * (4 vectors: 16, 32, 64 lanes) and the transpose tiles. */
    static const size_t inners[] = {1,
                                    3,
                                    8,
                                    COLUMN_VECTORS * 4 - 1,
                                    COLUMN_VECTORS * 4,
                                    COLUMN_VECTORS * 4 + 1,
                                    31,
                                    COLUMN_VECTORS * 8,
                                    33,
                                    63,
                                    COLUMN_VECTORS * 16,
                                    65,
                                    130};
    static const size_t column_lengths[] = {1, 2, 5, 16, 17, 100, 257, 4097};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t i = 0; i < sizeof inners / sizeof inners[0]; i++)
            for (size_t l = 0; l < sizeof column_lengths / sizeof column_lengths[0]; l++) {
                const size_t n = column_lengths[l];
                if (n * inners[i] > 300000)
                    continue;
                for (softmax_op op = SOFTMAX_OP_SOFTMAX; op <= SOFTMAX_OP_LOG_SOFTMAX_JVP; op++) {
                    const double scale = scales[(i + l + (size_t)op) % 5];
                    run_columns(op, types[t], 2, n, inners[i], scale, false, false);
                    run_columns(op, types[t], 2, n, inners[i], scale, true, false);
                    if (op <= SOFTMAX_OP_LOG_SOFTMAX) {
                        run_columns(op, types[t], 1, n, inners[i], scale, false, true);
                        run_columns(op, types[t], 1, n, inners[i], scale, true, true);
                    }
                }
            }
    /* The plain entry points (api.c's contiguous path). */
    {
        float xf[1000], yf[2][1000];
        double xd[1000], yd[2][1000];
        for (int i = 0; i < 1000; i++) {
            xf[i] = (float)(10 * uniform());
            xd[i] = 10 * uniform();
        }
        for (int l = 0; l < 2; l++) {
            library *lib = l ? &candidate : &baseline;
            lib->softmax_f32(xf, yf[l], 10, 100, 1.5f);
            lib->log_softmax_f64(xd, yd[l], 4, 250, -0.5);
        }
        cases += 2;
        if (memcmp(yf[0], yf[1], sizeof yf[0]) != 0 || memcmp(yd[0], yd[1], sizeof yd[0]) != 0) {
            fprintf(stderr, "DIFFERENT: softmax_f32 / log_softmax_f64\n");
            mismatches++;
        }
    }
    printf("compare_libraries (%s): %zu calls, %zu different\n", isa, cases, mismatches);
    for (int op = 1; op <= 5; op++)
        if (mismatches_by_op[op] != 0)
            printf("  %s: %zu different\n", op_names[op], mismatches_by_op[op]);
    return mismatches == 0 ? 0 : 1;
}
