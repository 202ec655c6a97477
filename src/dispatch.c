/*
 * dispatch.c -- picks the code path once: CPU features from CPUID, checked
 * against the registers the operating system saves (XGETBV), unless
 * SOFTMAX_ISA forces a path (scalar, avx2, avx512, neon). On AArch64 the
 * NEON kernels are the default: Advanced SIMD is part of every AArch64 CPU,
 * so nothing is detected. SOFTMAX_ISA naming a
 * path this CPU lacks makes every call fail with a message saying so,
 * rather than silently running another path.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "general.h"

#if defined(SOFTMAX_HAVE_X86_KERNELS)
#include <cpuid.h>

/* XCR0: which register states the OS saves on a context switch. Read with
 * the raw opcode so that this file needs no -mxsave. */
static unsigned long long read_xcr0(void)
{
    unsigned int low, high;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(low), "=d"(high) : "c"(0));
    return ((unsigned long long)high << 32) | low;
}

static softmax_isa detect_best_isa(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return SOFTMAX_ISA_SCALAR;
    const bool has_osxsave = ecx & (1u << 27);
    const bool has_avx = ecx & (1u << 28);
    const bool has_fma = ecx & (1u << 12);
    const bool has_f16c = ecx & (1u << 29); /* half conversions on the avx2 path */
    if (!has_osxsave || !has_avx || !has_fma || !has_f16c)
        return SOFTMAX_ISA_SCALAR;
    const unsigned long long xcr0 = read_xcr0();
    const bool os_saves_ymm = (xcr0 & 0x6) == 0x6;   /* SSE and AVX state */
    const bool os_saves_zmm = (xcr0 & 0xe6) == 0xe6; /* plus opmask, ZMM_Hi256, Hi16_ZMM */
    if (!os_saves_ymm || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return SOFTMAX_ISA_SCALAR;
    const bool has_avx2 = ebx & (1u << 5);
    const bool has_avx512 = (ebx & (1u << 16)) && (ebx & (1u << 17)) && (ebx & (1u << 30)) && (ebx & (1u << 31));
    if (has_avx2 && has_avx512 && os_saves_zmm)
        return SOFTMAX_ISA_AVX512;
    return has_avx2 ? SOFTMAX_ISA_AVX2 : SOFTMAX_ISA_SCALAR;
}
#elif defined(SOFTMAX_HAVE_NEON_KERNELS)
static softmax_isa detect_best_isa(void)
{
    return SOFTMAX_ISA_NEON;
}
#else
static softmax_isa detect_best_isa(void)
{
    return SOFTMAX_ISA_SCALAR;
}
#endif

static const char *const isa_names[] = {"scalar", "avx2", "avx512", "neon"};
static const char *const isa_requirements[] = {"nothing", "AVX2 and FMA", "AVX-512 F/DQ/BW/VL",
                                               "AArch64 Advanced SIMD"};

/* Whether `isa` can run where `best` is the best path: the x86 paths are
 * ordered (AVX-512 implies AVX2), NEON stands alone. */
static bool isa_available(softmax_isa isa, softmax_isa best)
{
    if (isa == SOFTMAX_ISA_SCALAR || isa == best)
        return true;
    if (isa == SOFTMAX_ISA_NEON || best == SOFTMAX_ISA_NEON)
        return false;
    return isa < best;
}

/* Filled once; read-only afterwards. */
static struct {
    softmax_isa best;
    softmax_isa active;
    bool forced_unavailable;
    char error[160];
    softmax_path path;
} dispatch;
static pthread_once_t dispatch_once = PTHREAD_ONCE_INIT;
/* &dispatch.path once it is filled and usable (no unavailable forced
 * path): a call that finds it set needs neither pthread_once nor a check. */
static _Atomic(const softmax_path *) ready_path;

static void set_active(softmax_isa isa)
{
    dispatch.active = isa;
    dispatch.path.isa = isa;
    dispatch.path.f32 = &softmax_ref_kernels_f32;
    dispatch.path.f64 = &softmax_ref_kernels_f64;
#if defined(SOFTMAX_HAVE_X86_KERNELS)
    if (isa == SOFTMAX_ISA_AVX2) {
        dispatch.path.f32 = &softmax_kernels_f32_avx2;
        dispatch.path.f64 = &softmax_kernels_f64_avx2;
    } else if (isa == SOFTMAX_ISA_AVX512) {
        dispatch.path.f32 = &softmax_kernels_f32_avx512;
        dispatch.path.f64 = &softmax_kernels_f64_avx512;
    }
#endif
#if defined(SOFTMAX_HAVE_NEON_KERNELS)
    if (isa == SOFTMAX_ISA_NEON) {
        dispatch.path.f32 = &softmax_kernels_f32_neon;
        dispatch.path.f64 = &softmax_kernels_f64_neon;
    }
#endif
}

static void choose_path(void)
{
    dispatch.best = detect_best_isa();
    set_active(dispatch.best);
    const char *forced = getenv("SOFTMAX_ISA");
    if (forced == NULL || *forced == '\0')
        return;
    for (int isa = SOFTMAX_ISA_SCALAR; isa <= SOFTMAX_ISA_NEON; isa++) {
        if (strcmp(forced, isa_names[isa]) != 0)
            continue;
        if (!isa_available((softmax_isa)isa, dispatch.best)) {
            dispatch.forced_unavailable = true;
            snprintf(dispatch.error, sizeof dispatch.error,
                     "SOFTMAX_ISA=%s: this CPU (or OS, or build) lacks %s; the best path here is %s", forced,
                     isa_requirements[isa], isa_names[dispatch.best]);
        } else {
            set_active((softmax_isa)isa);
        }
        return;
    }
    dispatch.forced_unavailable = true;
    snprintf(dispatch.error, sizeof dispatch.error,
             "SOFTMAX_ISA=%.40s: unknown path (use scalar, avx2, avx512 or neon)", forced);
}

static void initialize_dispatch(void)
{
    choose_path();
    if (!dispatch.forced_unavailable)
        atomic_store_explicit(&ready_path, &dispatch.path, memory_order_release);
}

const softmax_path *softmax_ready_path(void)
{
    const softmax_path *path = atomic_load_explicit(&ready_path, memory_order_acquire);
    if (path != NULL)
        return path;
    pthread_once(&dispatch_once, initialize_dispatch);
    return atomic_load_explicit(&ready_path, memory_order_acquire);
}

const softmax_path *softmax_dispatch_path(const char *fn, int *status)
{
    const softmax_path *ready = softmax_ready_path();
    if (ready == NULL) {
        /* softmax_ready_path() has run the dispatch, which leaves no
         * ready path only when SOFTMAX_ISA forces one this CPU lacks. */
        *status = softmax_fail(SOFTMAX_E_ISA_UNAVAILABLE, "%s: %s", fn, dispatch.error);
        return NULL;
    }
    *status = SOFTMAX_OK;
    return ready;
}

const softmax_kernels *softmax_dispatch(softmax_dtype dtype, const char *fn, int *status)
{
    const softmax_path *path = softmax_dispatch_path(fn, status);
    if (path == NULL)
        return NULL;
    switch (dtype) {
    case SOFTMAX_DTYPE_F32:
        return path->f32;
    case SOFTMAX_DTYPE_F64:
        return path->f64;
    default:
        break;
    }
    *status = softmax_fail(SOFTMAX_E_INVALID_DTYPE, "%s: unknown or unsupported dtype %d", fn, (int)dtype);
    return NULL;
}

const char *softmax_isa_name(void)
{
    softmax_clear_error();
    pthread_once(&dispatch_once, initialize_dispatch);
    if (dispatch.forced_unavailable) {
        softmax_fail(SOFTMAX_E_ISA_UNAVAILABLE, "softmax_isa_name: %s", dispatch.error);
        return NULL;
    }
    return isa_names[dispatch.active];
}
