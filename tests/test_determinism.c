/*
 * test_determinism.c -- numerics regression: fixed inputs and the exact
 * output bits on each code path, committed in tests/data/determinism.txt.
 * A change that alters any output bit fails here, so it is always made on
 * purpose and shows in the diff of the data file.
 *
 *   test_determinism [FILE]                 check the current path (ctest)
 *   test_determinism --regenerate [FILE]    rewrite the current path's outputs
 *
 * To regenerate deliberately (inputs are kept; they are only created when the
 * file does not exist yet), once per path:
 *
 *   for isa in scalar avx2 avx512; do   # neon: from the aarch64 build (scripts/cross.sh)
 *       SOFTMAX_ISA=$isa build/tests/test_determinism --regenerate
 *   done
 *
 * One record per path serves every platform: the portable path computes in
 * double and double-double only (no long double, no libm call whose last
 * bit differs between C libraries in the f64 path), so its records are the
 * same on x86-64, aarch64 and with a 64-bit long double; scripts/cross.sh
 * runs this test under qemu-aarch64 and in a -mlong-double-64 build. The
 * f32 portable path calls the C library's exp and log in double: glibc
 * gives the same bits on x86-64 and aarch64; another C library may differ
 * in a rare last bit of an f32 output.
 *
 * File format, one record per line: "in CASE OPERAND HEX" (the bytes of one
 * input operand) and "out CASE PATH HEX" (the bytes of the output on PATH).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#ifndef DETERMINISM_DATA
#define DETERMINISM_DATA "tests/data/determinism.txt"
#endif

enum { OPERANDS = 3, MAX_CASES = 32, PATHS = 4 };
static const char *const path_names[PATHS] = {"scalar", "avx2", "avx512", "neon"};

typedef struct det_case det_case;
struct det_case {
    const char *name;
    size_t in_bytes[OPERANDS]; /* 0 = operand unused */
    size_t out_bytes;
    /* Fills the inputs the first time (from a fixed seed). */
    void (*generate)(const det_case *c, uint8_t *in[OPERANDS], test_rng *rng);
    /* Runs the case; returns the library's status. */
    int (*run)(const det_case *c, uint8_t *const in[OPERANDS], uint8_t *out);
    softmax_dtype dtype;
    size_t rows, cols;
    double scale;
    softmax_op op;
};

/* ---- inputs ---- */

static double hostile_value(test_rng *rng)
{
    static const double specials[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-45, 3.0e38, -3.0e38, 88.7, -104.0};
    if (rng_below(rng, 4) == 0)
        return specials[rng_below(rng, sizeof specials / sizeof specials[0])];
    return rng_range(rng, -30.0, 30.0);
}

static void generate_random(const det_case *c, uint8_t *in[OPERANDS], test_rng *rng)
{
    for (size_t i = 0; i < c->rows * c->cols; i++)
        buf_set(c->dtype, in[0], i, dtype_round(c->dtype, rng_normal(rng) * 4.0));
}

static void generate_hostile(const det_case *c, uint8_t *in[OPERANDS], test_rng *rng)
{
    for (size_t i = 0; i < c->rows * c->cols; i++)
        buf_set(c->dtype, in[0], i, dtype_round(c->dtype, hostile_value(rng)));
}

/* y or logy from the library's forward call on random logits, and dy. */
static void generate_gradient(const det_case *c, uint8_t *in[OPERANDS], test_rng *rng)
{
    const size_t n = c->rows * c->cols;
    void *x = buf_alloc(c->dtype, n);
    for (size_t i = 0; i < n; i++) {
        buf_set(c->dtype, x, i, dtype_round(c->dtype, rng_normal(rng) * 3.0));
        buf_set(c->dtype, in[1], i, dtype_round(c->dtype, rng_normal(rng)));
    }
    buf_set(c->dtype, x, 3, -INFINITY); /* a masked element */
    const int log = c->op != SOFTMAX_OP_SOFTMAX_BACKWARD;
    if (call_forward(c->dtype, log, x, in[0], c->rows, c->cols, 1.0) != SOFTMAX_OK)
        abort();
    free(x);
}

/* Half-precision bits near 1 and a few special patterns; for masks, 0 / -inf
 * / small biases; for `where`, bytes. */
static void generate_half_and_masks(const det_case *c, uint8_t *in[OPERANDS], test_rng *rng)
{
    const size_t elements = c->in_bytes[0] / 2;
    uint16_t *half = (uint16_t *)(void *)in[0];
    const uint16_t one = c->dtype == SOFTMAX_DTYPE_F16 ? 0x3c00 : 0x3f80;
    for (size_t i = 0; i < elements; i++)
        half[i] = (uint16_t)(one - 0x200 + rng_below(rng, 0x400));
    half[1] = c->dtype == SOFTMAX_DTYPE_F16 ? 0xfc00 : 0xff80; /* -inf */
    if (c->in_bytes[1] != 0) {
        float *mask = (float *)(void *)in[1];
        for (size_t i = 0; i < c->in_bytes[1] / sizeof(float); i++)
            mask[i] = rng_below(rng, 5) == 0 ? -INFINITY : (float)rng_range(rng, -2.0, 2.0);
    }
    for (size_t i = 0; i < c->in_bytes[2]; i++)
        in[2][i] = rng_below(rng, 4) != 0;
}

/* ---- calls ---- */

static int run_pinned_forward(const det_case *c, uint8_t *const in[OPERANDS], uint8_t *out)
{
    return call_forward(c->dtype, c->op == SOFTMAX_OP_LOG_SOFTMAX, in[0], out, c->rows, c->cols, c->scale);
}

static int run_pinned_gradient(const det_case *c, uint8_t *const in[OPERANDS], uint8_t *out)
{
    return call_grad(c->op, c->dtype, in[0], in[1], out, c->rows, c->cols, c->scale);
}

/* [batch 2, heads 3, q 8, k 8] scores, causal + ALiBi, bf16 in and out. */
static int run_attention(const det_case *c, uint8_t *const in[OPERANDS], uint8_t *out)
{
    softmax_desc desc;
    softmax_desc_init(&desc, c->op, c->dtype, 8);
    desc.ndim = 4;
    desc.shape[0] = 2;
    desc.shape[1] = 3;
    desc.shape[2] = 8;
    desc.shape[3] = 8;
    desc.causal = 1;
    desc.max_bias = 8.0;
    desc.scale = c->scale;
    return softmax_execute(&desc, in[0], NULL, out);
}

/* [4, 12] f16 logits + an f32 additive mask broadcast over rows, f32 out. */
static int run_masked_mixed(const det_case *c, uint8_t *const in[OPERANDS], uint8_t *out)
{
    static const int64_t mask_strides[2] = {0, 1};
    softmax_desc desc;
    softmax_desc_init(&desc, c->op, c->dtype, 12);
    desc.ndim = 2;
    desc.shape[0] = 4;
    desc.shape[1] = 12;
    desc.dst_dtype = SOFTMAX_DTYPE_F32;
    desc.mask = in[1];
    desc.mask_strides = mask_strides;
    desc.scale = c->scale;
    return softmax_execute(&desc, in[0], NULL, out);
}

/* Axis 0 of a [10, 6] bf16 tensor with a `where` keep-mask, f64 out. */
static int run_where_axis0(const det_case *c, uint8_t *const in[OPERANDS], uint8_t *out)
{
    softmax_desc desc;
    softmax_desc_init(&desc, c->op, c->dtype, 10);
    desc.ndim = 2;
    desc.shape[0] = 10;
    desc.shape[1] = 6;
    desc.axis = 0;
    desc.dst_dtype = SOFTMAX_DTYPE_F64;
    desc.where = in[2];
    desc.scale = c->scale;
    return softmax_execute(&desc, in[0], NULL, out);
}

/* Axis 0 of a contiguous [rows, cols] tensor: the column kernels (several
 * whole chunks of lines and a partial one). */
static int run_axis0(const det_case *c, uint8_t *const in[OPERANDS], uint8_t *out)
{
    softmax_desc desc;
    softmax_desc_init(&desc, c->op, c->dtype, c->cols);
    desc.ndim = 2;
    desc.shape[0] = (int64_t)c->rows;
    desc.shape[1] = (int64_t)c->cols;
    desc.axis = 0;
    desc.scale = c->scale;
    return softmax_execute(&desc, in[0], NULL, out);
}

/* A case of one input [ROWS, COLS] of TYPE and one output of the same size,
 * run by RUN. */
#define ONE_INPUT(NAME, OP, TYPE, ROWS, COLS, SCALE, GENERATE, RUN)                                                    \
    {                                                                                                                  \
        .name = NAME, .in_bytes = {(ROWS) * (COLS) * ((TYPE) == SOFTMAX_DTYPE_F32 ? 4 : 8)},                           \
        .out_bytes = (ROWS) * (COLS) * ((TYPE) == SOFTMAX_DTYPE_F32 ? 4 : 8), .generate = GENERATE, .run = RUN,        \
        .dtype = TYPE, .rows = ROWS, .cols = COLS, .scale = SCALE, .op = OP                                            \
    }
#define PINNED(NAME, OP, TYPE, ROWS, COLS, SCALE, GENERATE)                                                            \
    ONE_INPUT(NAME, OP, TYPE, ROWS, COLS, SCALE, GENERATE, run_pinned_forward)
#define AXIS0(NAME, OP, TYPE, ROWS, COLS, SCALE, GENERATE)                                                             \
    ONE_INPUT(NAME, OP, TYPE, ROWS, COLS, SCALE, GENERATE, run_axis0)
#define GRADIENT(NAME, OP, TYPE, ROWS, COLS, SCALE)                                                                    \
    {                                                                                                                  \
        .name = NAME,                                                                                                  \
        .in_bytes = {(ROWS) * (COLS) * ((TYPE) == SOFTMAX_DTYPE_F32 ? 4 : 8),                                          \
                     (ROWS) * (COLS) * ((TYPE) == SOFTMAX_DTYPE_F32 ? 4 : 8)},                                         \
        .out_bytes = (ROWS) * (COLS) * ((TYPE) == SOFTMAX_DTYPE_F32 ? 4 : 8), .generate = generate_gradient,           \
        .run = run_pinned_gradient, .dtype = TYPE, .rows = ROWS, .cols = COLS, .scale = SCALE, .op = OP                \
    }

static const det_case cases[] = {
    PINNED("softmax_f32_random", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 64, 17, 1.0, generate_random),
    PINNED("softmax_f32_long_rows", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 2, 1000, 0.75, generate_random),
    PINNED("softmax_f64_random", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, 32, 33, 2.0, generate_random),
    PINNED("log_softmax_f32_random", SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F32, 32, 24, 1.0, generate_random),
    PINNED("log_softmax_f64_random", SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F64, 24, 9, 0.5, generate_random),
    PINNED("softmax_f32_hostile", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 24, 9, 1.0, generate_hostile),
    PINNED("softmin_f32_hostile", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 16, 9, -0.5, generate_hostile),
    PINNED("softmax_f64_hostile_inf_scale", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, 16, 7, INFINITY, generate_hostile),
    PINNED("log_softmax_f64_hostile", SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F64, 16, 9, 3.0, generate_hostile),
    PINNED("softmax_f32_zero_scale", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 8, 9, 0.0, generate_hostile),
    AXIS0("softmax_f32_axis0_columns", SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, 37, 150, 1.0, generate_random),
    AXIS0("log_softmax_f64_axis0_hostile", SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F64, 20, 70, 0.5, generate_hostile),
    GRADIENT("softmax_backward_f32", SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32, 16, 11, 1.5),
    GRADIENT("log_softmax_backward_f64", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F64, 16, 11, 0.5),
    GRADIENT("log_softmax_jvp_f32", SOFTMAX_OP_LOG_SOFTMAX_JVP, SOFTMAX_DTYPE_F32, 16, 11, 2.0),
    {.name = "attention_bf16_causal_alibi",
     .in_bytes = {2 * 3 * 8 * 8 * 2},
     .out_bytes = 2 * 3 * 8 * 8 * 2,
     .generate = generate_half_and_masks,
     .run = run_attention,
     .dtype = SOFTMAX_DTYPE_BF16,
     .scale = 0.35,
     .op = SOFTMAX_OP_SOFTMAX},
    {.name = "attention_bf16_log",
     .in_bytes = {2 * 3 * 8 * 8 * 2},
     .out_bytes = 2 * 3 * 8 * 8 * 2,
     .generate = generate_half_and_masks,
     .run = run_attention,
     .dtype = SOFTMAX_DTYPE_BF16,
     .scale = 1.0,
     .op = SOFTMAX_OP_LOG_SOFTMAX},
    {.name = "f16_additive_mask_to_f32",
     .in_bytes = {4 * 12 * 2, 12 * 4},
     .out_bytes = 4 * 12 * 4,
     .generate = generate_half_and_masks,
     .run = run_masked_mixed,
     .dtype = SOFTMAX_DTYPE_F16,
     .scale = 1.25,
     .op = SOFTMAX_OP_SOFTMAX},
    {.name = "bf16_where_axis0_to_f64",
     .in_bytes = {10 * 6 * 2, 0, 10 * 6},
     .out_bytes = 10 * 6 * 8,
     .generate = generate_half_and_masks,
     .run = run_where_axis0,
     .dtype = SOFTMAX_DTYPE_BF16,
     .scale = -1.0,
     .op = SOFTMAX_OP_SOFTMAX},
};
enum { CASES = sizeof cases / sizeof cases[0] };

/* ---- the data file ---- */

typedef struct case_data {
    uint8_t *in[OPERANDS];
    uint8_t *out[PATHS]; /* NULL = not recorded */
} case_data;

static case_data data[CASES];

static int case_index(const char *name)
{
    for (int k = 0; k < CASES; k++)
        if (strcmp(cases[k].name, name) == 0)
            return k;
    return -1;
}

static int path_index(const char *name)
{
    for (int p = 0; p < PATHS; p++)
        if (strcmp(path_names[p], name) == 0)
            return p;
    return -1;
}

static uint8_t *decode_hex(const char *hex, size_t bytes)
{
    if (strlen(hex) != 2 * bytes)
        return NULL;
    uint8_t *out = malloc(bytes ? bytes : 1);
    for (size_t i = 0; i < bytes; i++) {
        unsigned value;
        if (sscanf(hex + 2 * i, "%2x", &value) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)value;
    }
    return out;
}

static void write_hex(FILE *file, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(file, "%02x", bytes[i]);
}

/* Reads the file if it exists; returns 0 if it does not, -1 if malformed. */
static int load(const char *file_name)
{
    FILE *file = fopen(file_name, "r");
    if (file == NULL)
        return 0;
    char *line = NULL;
    size_t capacity = 0;
    int status = 1;
    while (getline(&line, &capacity, file) > 0) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char kind[8], name[64], which[16];
        int consumed = 0;
        if (sscanf(line, "%7s %63s %15s %n", kind, name, which, &consumed) != 3) {
            status = -1;
            break;
        }
        const int k = case_index(name);
        if (k < 0)
            continue; /* a case that no longer exists */
        if (strcmp(kind, "in") == 0) {
            const int operand = atoi(which);
            if (operand < 0 || operand >= OPERANDS ||
                (data[k].in[operand] = decode_hex(line + consumed, cases[k].in_bytes[operand])) == NULL) {
                fprintf(stderr, "%s: bad input %s of case %s\n", file_name, which, name);
                status = -1;
                break;
            }
        } else if (strcmp(kind, "out") == 0) {
            const int p = path_index(which);
            if (p < 0 || (data[k].out[p] = decode_hex(line + consumed, cases[k].out_bytes)) == NULL) {
                fprintf(stderr, "%s: bad output %s of case %s\n", file_name, which, name);
                status = -1;
                break;
            }
        }
    }
    free(line);
    fclose(file);
    return status;
}

static int save(const char *file_name)
{
    FILE *file = fopen(file_name, "w");
    if (file == NULL)
        return -1;
    fprintf(file, "# Determinism reference of libsoftmax: fixed inputs and the exact output bytes on each code\n"
                  "# path (tests/test_determinism.c). Regenerate deliberately, once per path:\n"
                  "#   SOFTMAX_ISA=<scalar|avx2|avx512|neon> build/tests/test_determinism --regenerate\n"
                  "# The scalar records hold on every platform (x86-64, aarch64, any long double):\n"
                  "# scripts/cross.sh checks them under qemu-aarch64 and with -mlong-double-64.\n");
    for (int k = 0; k < CASES; k++) {
        for (int o = 0; o < OPERANDS; o++) {
            if (cases[k].in_bytes[o] == 0)
                continue;
            fprintf(file, "in %s %d ", cases[k].name, o);
            write_hex(file, data[k].in[o], cases[k].in_bytes[o]);
            fputc('\n', file);
        }
        for (int p = 0; p < PATHS; p++) {
            if (data[k].out[p] == NULL)
                continue;
            fprintf(file, "out %s %s ", cases[k].name, path_names[p]);
            write_hex(file, data[k].out[p], cases[k].out_bytes);
            fputc('\n', file);
        }
    }
    return fclose(file) == 0 ? 0 : -1;
}

static int inputs_complete(int k)
{
    for (int o = 0; o < OPERANDS; o++)
        if (cases[k].in_bytes[o] != 0 && data[k].in[o] == NULL)
            return 0;
    return 1;
}

static const char *file_name = DETERMINISM_DATA;

static void test_outputs_are_the_recorded_bits(void **state)
{
    (void)state;
    const int p = path_index(softmax_isa_name());
    assert_true(p >= 0);
    int mismatches = 0;
    for (int k = 0; k < CASES; k++) {
        if (!inputs_complete(k) || data[k].out[p] == NULL)
            fail_msg("%s has no record of case %s on path %s: regenerate it (see the file's header)", file_name,
                     cases[k].name, path_names[p]);
        uint8_t *out = malloc(cases[k].out_bytes);
        for (int threads = 1; threads <= 2; threads++) {
            set_threads_or_fail(threads);
            fill_sentinel(out, cases[k].out_bytes);
            assert_int_equal(cases[k].run(&cases[k], data[k].in, out), SOFTMAX_OK);
            if (memcmp(out, data[k].out[p], cases[k].out_bytes) != 0) {
                size_t first = 0;
                while (out[first] == data[k].out[p][first])
                    first++;
                print_error("case %s (%d threads): output differs from the record from byte %zu on\n", cases[k].name,
                            threads, first);
                mismatches++;
            }
        }
        free(out);
    }
    set_threads_or_fail(0);
    if (mismatches != 0)
        fail_msg("%d case runs differ from %s on path %s; if the change is deliberate, regenerate", mismatches,
                 file_name, path_names[p]);
}

static int regenerate(void)
{
    const int p = path_index(softmax_isa_name());
    if (p < 0)
        return 1;
    test_rng rng;
    for (int k = 0; k < CASES; k++) {
        if (!inputs_complete(k)) {
            for (int o = 0; o < OPERANDS; o++) {
                free(data[k].in[o]);
                data[k].in[o] = cases[k].in_bytes[o] ? calloc(cases[k].in_bytes[o], 1) : NULL;
            }
            rng_seed(&rng, 0x5eed0000u + (uint64_t)k);
            cases[k].generate(&cases[k], data[k].in, &rng);
            for (int q = 0; q < PATHS; q++) { /* new inputs: old outputs are void */
                free(data[k].out[q]);
                data[k].out[q] = NULL;
            }
        }
        free(data[k].out[p]);
        data[k].out[p] = malloc(cases[k].out_bytes);
        if (cases[k].run(&cases[k], data[k].in, data[k].out[p]) != SOFTMAX_OK) {
            fprintf(stderr, "case %s failed: %s\n", cases[k].name, softmax_last_error());
            return 1;
        }
    }
    if (save(file_name) != 0) {
        fprintf(stderr, "cannot write %s\n", file_name);
        return 1;
    }
    printf("wrote the %s outputs of %d cases to %s\n", path_names[p], (int)CASES, file_name);
    return 0;
}

int main(int argc, char **argv)
{
    int regenerate_mode = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--regenerate") == 0)
            regenerate_mode = 1;
        else
            file_name = argv[a];
    }
    const int prologue = isa_prologue();
    if (prologue != 0)
        return prologue;
    if (load(file_name) < 0)
        return 1;
    if (regenerate_mode)
        return regenerate();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_are_the_recorded_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
