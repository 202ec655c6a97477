/*
 * test_fp_state.c -- the library leaves the caller's floating-point control
 * state alone: loading it (linked at build time, or with dlopen) and calling
 * it do not turn on flush-to-zero or denormals-are-zero, nor change the
 * rounding mode or the exception masks.
 *
 * A library built with -ffast-math (or -Ofast, -funsafe-math-optimizations)
 * on its link line gets gcc's and clang's crtfastmath.o, whose constructor
 * sets FTZ and DAZ in MXCSR (FZ in FPCR on AArch64) for the whole process
 * the moment the library is loaded. The build countermands such flags
 * (CMakeLists.txt, SOFTMAX_IEEE_FLAGS); this test proves it, built with
 * whatever CMAKE_C_FLAGS the build was given.
 *
 * Two programs come from this file:
 *   test_fp_state          linked with libsoftmax: the state at main() must
 *                          be the one the ABI starts a process with;
 *   test_fp_state_dlopen   not linked with it (FP_STATE_DLOPEN): sets that
 *                          state, dlopen()s the library named by argv[1],
 *                          and compares.
 * Both then call the forward functions (whose SIMD paths flush to zero
 * inside the call) and the sampler, and compare again. The control
 * register is read where the platform has one we know (x86 MXCSR, AArch64
 * FPCR); everywhere the behaviour is checked too: a product that falls
 * below FLT_MIN / DBL_MIN must come out subnormal, and a subnormal operand
 * must not be read as zero.
 */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "softmax.h"

#if defined(FP_STATE_DLOPEN)
#include <dlfcn.h>
#endif

#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))
#include <xmmintrin.h>
#define HAVE_CONTROL_REGISTER 1
#define CONTROL_REGISTER_NAME "MXCSR"
/* The psABI's initial MXCSR: every exception masked, round to nearest, FTZ
 * and DAZ off. The low six bits are the sticky exception flags, which any
 * arithmetic may set: they are not control state and are left out. */
enum { STATUS_FLAGS = 0x3f };
static const uint64_t initial_control = 0x1f80;
static uint64_t control_register(void)
{
    return _mm_getcsr() & ~(unsigned)STATUS_FLAGS;
}
#if defined(FP_STATE_DLOPEN)
static void set_control_register(uint64_t value)
{
    _mm_setcsr((unsigned)value);
}
#endif
#elif defined(__aarch64__)
#define HAVE_CONTROL_REGISTER 1
#define CONTROL_REGISTER_NAME "FPCR"
/* Linux starts a process with FPCR 0: round to nearest, no trap enabled,
 * FZ (flush-to-zero, which on AArch64 also flushes subnormal inputs) off.
 * The status flags live in FPSR, a separate register. */
static const uint64_t initial_control = 0;
static uint64_t control_register(void)
{
    uint64_t value;
    __asm__ volatile("mrs %0, fpcr" : "=r"(value));
    return value;
}
#if defined(FP_STATE_DLOPEN)
static void set_control_register(uint64_t value)
{
    __asm__ volatile("msr fpcr, %0" : : "r"(value));
}
#endif
#else
#define HAVE_CONTROL_REGISTER 0
#endif

/* ------------------------------------------------------------ the library */

typedef int (*softmax_f32_fn)(const float *, float *, size_t, size_t, float);
typedef int (*softmax_f64_fn)(const double *, double *, size_t, size_t, double);
typedef int (*sampler_params_init_fn)(softmax_sampler_params *);
typedef int (*sample_fn)(const softmax_sampler_params *, softmax_dtype, const void *, size_t, size_t, uint64_t,
                         const uint64_t *, int64_t *, double *, double *);

typedef struct library {
    softmax_f32_fn softmax_f32, log_softmax_f32;
    softmax_f64_fn softmax_f64;
    sampler_params_init_fn sampler_params_init;
    sample_fn sample;
} library;

static library lib;

#if defined(FP_STATE_DLOPEN)
static const char *library_path;

/* dlsym returns an object pointer; ISO C has no conversion to a function
 * pointer, so the bits are copied (POSIX guarantees they are the same). */
static void symbol(void *handle, const char *name, void *function_pointer, size_t size)
{
    void *address = dlsym(handle, name);
    if (address == NULL)
        fail_msg("%s: no symbol %s: %s", library_path, name, dlerror());
    assert_int_equal(size, sizeof address);
    memcpy(function_pointer, &address, size);
}
#endif

/* -------------------------------------------------------- the state checks */

/* FLT_MIN * 0.5 is the subnormal 2^-127 unless the product is flushed to 0
 * (FTZ); the subnormal FLT_TRUE_MIN plus 0 stays FLT_TRUE_MIN unless the
 * operand is read as 0 (DAZ). The same in double. volatile keeps the
 * compiler from folding them. */
static void expect_subnormals_kept(const char *when)
{
    volatile float float_min = FLT_MIN, float_half = 0.5f, float_true_min = FLT_TRUE_MIN, float_zero = 0.0f;
    volatile double double_min = DBL_MIN, double_half = 0.5, double_true_min = DBL_TRUE_MIN, double_zero = 0.0;
    float float_product = float_min * float_half, float_sum = float_true_min + float_zero;
    double double_product = double_min * double_half, double_sum = double_true_min + double_zero;
    if (float_product != ldexpf(1.0f, -127) || double_product != ldexp(1.0, -1023))
        fail_msg("%s: a result below the normal range was flushed to zero (float %a, double %a)", when,
                 (double)float_product, double_product);
    if (float_sum != FLT_TRUE_MIN || double_sum != DBL_TRUE_MIN)
        fail_msg("%s: a subnormal operand was read as zero (float %a, double %a)", when, (double)float_sum, double_sum);
    if (fegetround() != FE_TONEAREST)
        fail_msg("%s: the rounding mode is %d, not FE_TONEAREST", when, fegetround());
}

#if HAVE_CONTROL_REGISTER
static void expect_control(uint64_t expected, const char *when)
{
    uint64_t actual = control_register();
    if (actual != expected)
        fail_msg("%s: " CONTROL_REGISTER_NAME " is %#llx, was %#llx", when, (unsigned long long)actual,
                 (unsigned long long)expected);
}
#endif

/* Forward calls large enough for the SIMD kernels and the thread team, on
 * rows whose results reach below the normal range (where the kernels flush
 * inside the call), then the sampler. */
static void call_the_library(void)
{
    enum { ROWS = 64, COLS = 2048 };
    float *x32 = malloc(sizeof(float) * ROWS * COLS), *y32 = malloc(sizeof(float) * ROWS * COLS);
    double *x64 = malloc(sizeof(double) * ROWS * COLS), *y64 = malloc(sizeof(double) * ROWS * COLS);
    int64_t indices[ROWS];
    assert_non_null(x32);
    assert_non_null(y32);
    assert_non_null(x64);
    assert_non_null(y64);
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) {
        x32[i] = (float)(i % 97) * 1.5f;
        x64[i] = (double)(i % 89) * 9.0;
    }
    assert_int_equal(lib.softmax_f32(x32, y32, ROWS, COLS, 1.0f), SOFTMAX_OK);
    assert_int_equal(lib.log_softmax_f32(x32, y32, ROWS, COLS, 1.0f), SOFTMAX_OK);
    assert_int_equal(lib.softmax_f64(x64, y64, ROWS, COLS, 1.0), SOFTMAX_OK);
    softmax_sampler_params params;
    assert_int_equal(lib.sampler_params_init(&params), SOFTMAX_OK);
    params.top_p = 0.9;
    assert_int_equal(lib.sample(&params, SOFTMAX_DTYPE_F32, x32, ROWS, COLS, 0, NULL, indices, NULL, NULL), SOFTMAX_OK);
    free(x32);
    free(y32);
    free(x64);
    free(y64);
}

/* ------------------------------------------------------------------ tests */

#if defined(FP_STATE_DLOPEN)
static void test_dlopen_leaves_the_state_alone(void **state)
{
    (void)state;
#if HAVE_CONTROL_REGISTER
    /* From the ABI's initial state, whatever this program's own start-up
     * did, so that only the library's loading can change it. */
    set_control_register(initial_control);
    expect_control(initial_control, "before dlopen");
#endif
    expect_subnormals_kept("before dlopen");
    void *handle = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        fail_msg("dlopen(%s): %s", library_path, dlerror());
#if HAVE_CONTROL_REGISTER
    expect_control(initial_control, "after dlopen of the library");
#endif
    expect_subnormals_kept("after dlopen of the library");
    symbol(handle, "softmax_f32", &lib.softmax_f32, sizeof lib.softmax_f32);
    symbol(handle, "log_softmax_f32", &lib.log_softmax_f32, sizeof lib.log_softmax_f32);
    symbol(handle, "softmax_f64", &lib.softmax_f64, sizeof lib.softmax_f64);
    symbol(handle, "softmax_sampler_params_init", &lib.sampler_params_init, sizeof lib.sampler_params_init);
    symbol(handle, "softmax_sample", &lib.sample, sizeof lib.sample);
    call_the_library();
#if HAVE_CONTROL_REGISTER
    expect_control(initial_control, "after calls into the library");
#endif
    expect_subnormals_kept("after calls into the library");
    /* The library stays loaded: unloading it would run the OpenMP
     * runtime's destructors with its threads still parked. */
}
#else
static void test_linked_library_leaves_the_state_alone(void **state)
{
    (void)state;
#if HAVE_CONTROL_REGISTER
    expect_control(initial_control, "at main() of a program linked with the library");
#endif
    expect_subnormals_kept("at main() of a program linked with the library");
    lib = (library){softmax_f32, log_softmax_f32, softmax_f64, softmax_sampler_params_init, softmax_sample};
    call_the_library();
#if HAVE_CONTROL_REGISTER
    expect_control(initial_control, "after calls into the library");
#endif
    expect_subnormals_kept("after calls into the library");
}

/* Masked rows of 300 f32 through the general API's line kernels, which
 * the blocks run with the kernels' floating-point mode set once around
 * many lines and the caller's given back in between: ALiBi + causal over
 * 70 heads (heads from 64 on take their slope from libm, in the caller's
 * mode) with a +inf logit in one line (that line declined and gathered
 * among line-kernel lines), then a bf16 0 / -inf mask. The caller's
 * state must be intact after each call; on x86 the same calls from a
 * caller running with flush-to-zero must give the same bits and leave
 * its MXCSR as it was. */
static void masked_calls(float *y_alibi, float *y_mask)
{
    enum { HEADS = 70, Q = 2, K = 300 };
    static float x[HEADS * Q * K];
    static uint16_t mask[Q * K];
    for (size_t i = 0; i < (size_t)HEADS * Q * K; i++)
        x[i] = (float)((i * 37) % 101) * 0.25f - 12.0f;
    x[65 * Q * K + 7] = INFINITY; /* head 65, query 0: declined by the line kernels */
    for (size_t i = 0; i < (size_t)Q * K; i++)
        mask[i] = (i % 7 == 3) ? (uint16_t)0xff80u : (uint16_t)0; /* bf16 -inf or 0 */
    softmax_desc d;
    assert_int_equal(softmax_desc_init(&d, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, K), SOFTMAX_OK);
    d.ndim = 3;
    d.shape[0] = HEADS;
    d.shape[1] = Q;
    d.shape[2] = K;
    d.causal = 1;
    d.causal_offset = K - Q;
    d.max_bias = 8.0;
    d.head_axis = 0;
    const int alibi_status = softmax_execute(&d, x, NULL, y_alibi);
    if (alibi_status != SOFTMAX_OK)
        fail_msg("ALiBi call: %s", softmax_last_error());
#if HAVE_CONTROL_REGISTER
    const uint64_t before = control_register();
#endif
    static int64_t mask_strides[3] = {0, K, 1};
    assert_int_equal(softmax_desc_init(&d, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, K), SOFTMAX_OK);
    d.ndim = 3;
    d.shape[0] = HEADS;
    d.shape[1] = Q;
    d.shape[2] = K;
    d.mask = mask;
    d.mask_dtype = SOFTMAX_DTYPE_BF16;
    d.mask_strides = mask_strides;
    assert_int_equal(softmax_execute(&d, x, NULL, y_mask), SOFTMAX_OK);
#if HAVE_CONTROL_REGISTER
    if (control_register() != before)
        fail_msg("the masked call changed " CONTROL_REGISTER_NAME " from %#llx to %#llx", (unsigned long long)before,
                 (unsigned long long)control_register());
#endif
}

static void test_masked_lines_leave_the_state_alone(void **state)
{
    (void)state;
    enum { ELEMENTS = 70 * 2 * 300 };
    static float alibi[ELEMENTS], masked[ELEMENTS];
    masked_calls(alibi, masked);
#if HAVE_CONTROL_REGISTER
    expect_control(initial_control, "after the masked calls");
#endif
    expect_subnormals_kept("after the masked calls");
    /* The declined line: its +inf shares the mass alone (the contract's limit). */
    const float *declined = alibi + 65 * 2 * 300;
    assert_true(declined[7] == 1.0f && declined[6] == 0.0f);
#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))
    static float alibi_flushing[ELEMENTS], masked_flushing[ELEMENTS];
    const unsigned int flushing = _mm_getcsr() | 0x8000u;
    _mm_setcsr(flushing);
    masked_calls(alibi_flushing, masked_flushing);
    const unsigned int after = _mm_getcsr();
    _mm_setcsr((unsigned int)initial_control);
    if ((after & ~(unsigned)STATUS_FLAGS) != (flushing & ~(unsigned)STATUS_FLAGS))
        fail_msg("MXCSR %#x after the calls, the caller had %#x", after, flushing);
    /* Outputs below the normal range are the contract's to flush (the
     * portable path keeps them sub-normal unless the caller flushes). */
    for (size_t i = 0; i < ELEMENTS; i++) {
        const bool alibi_same = memcmp(&alibi[i], &alibi_flushing[i], sizeof(float)) == 0 ||
                                (fabsf(alibi[i]) < FLT_MIN && fabsf(alibi_flushing[i]) < FLT_MIN);
        const bool masked_same = memcmp(&masked[i], &masked_flushing[i], sizeof(float)) == 0 ||
                                 (fabsf(masked[i]) < FLT_MIN && fabsf(masked_flushing[i]) < FLT_MIN);
        if (!alibi_same || !masked_same)
            fail_msg("element %zu: %a and %a (ALiBi), %a and %a (mask) without and with a caller's flush-to-zero", i,
                     (double)alibi[i], (double)alibi_flushing[i], (double)masked[i], (double)masked_flushing[i]);
    }
#endif
}

#if defined(__aarch64__)
/* A caller running with FPCR.FZ (which on AArch64 also reads sub-normal
 * operands as zero): the NEON kernels clear it for the call, so that a row
 * of sub-normal logits times a scale near FLT_MAX is computed as without
 * it, and hand the caller's FPCR back. The reference is computed in double
 * before FZ is set. */
static void test_neon_kernels_ignore_a_callers_flush_to_zero(void **state)
{
    (void)state;
    const char *isa = softmax_isa_name();
    if (isa == NULL || strcmp(isa, "neon") != 0) {
        printf("not the neon path (%s): nothing to check\n", isa ? isa : "none");
        return;
    }
    enum { N = 19 };
    const float scale = FLT_MAX;
    float x[N], y[N];
    double reference[N], sum = 0, max = -INFINITY;
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i + 1) * FLT_TRUE_MIN * 1000.0f; /* sub-normal */
        reference[i] = (double)scale * (double)x[i];
        max = reference[i] > max ? reference[i] : max;
    }
    for (int i = 0; i < N; i++)
        sum += exp(reference[i] - max);
    for (int i = 0; i < N; i++)
        reference[i] = exp(reference[i] - max) / sum;
    const uint64_t with_flush = control_register() | ((uint64_t)1 << 24);
    __asm__ volatile("msr fpcr, %0" : : "r"(with_flush));
    const int status = softmax_f32(x, y, 1, N, scale);
    const uint64_t after = control_register();
    __asm__ volatile("msr fpcr, %0" : : "r"(initial_control));
    assert_int_equal(status, SOFTMAX_OK);
    if (after != with_flush)
        fail_msg("FPCR is %#llx after the call, was %#llx", (unsigned long long)after, (unsigned long long)with_flush);
    for (int i = 0; i < N; i++)
        if (!(fabs((double)y[i] - reference[i]) <= 1e-6 * reference[i]))
            fail_msg("y[%d] = %a, reference %a: the call ran with sub-normal operands read as zero", i, (double)y[i],
                     reference[i]);
}
#endif
#endif

int main(int argc, char **argv)
{
#if !HAVE_CONTROL_REGISTER
    printf("no known floating-point control register here: the subnormal behaviour is checked alone\n");
#endif
#if defined(FP_STATE_DLOPEN)
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH_OF_LIBSOFTMAX\n", argv[0]);
        return 2;
    }
    library_path = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_dlopen_leaves_the_state_alone)};
    return cmocka_run_group_tests_name("fp_state (dlopen)", tests, NULL, NULL);
#else
    (void)argc;
    (void)argv;
    if (softmax_isa_name() == NULL) { /* SOFTMAX_ISA names a path this machine lacks */
        printf("SKIP: %s\n", softmax_last_error());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linked_library_leaves_the_state_alone),
        cmocka_unit_test(test_masked_lines_leave_the_state_alone),
#if defined(__aarch64__)
        cmocka_unit_test(test_neon_kernels_ignore_a_callers_flush_to_zero),
#endif
    };
    return cmocka_run_group_tests_name("fp_state (linked)", tests, NULL, NULL);
#endif
}
