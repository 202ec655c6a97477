/*
 * simd_kernels.h -- instantiates simd_body.h for f32 and f64 on the ISA
 * whose vocabulary header was included first (kernels_<isa>.c).
 */
#include <float.h>
#include <math.h>

#include "internal.h"

#define SOFTMAX_CONCAT_(a, b, c) a##b##c
#define SOFTMAX_CONCAT(a, b, c) SOFTMAX_CONCAT_(a, b, c)

/* ---------------------------------------------------------------- f32 -- */
#define T float
#define T_MAX FLT_MAX
#define WIDE double
#define V vf32
#define LANES ((size_t)F32_LANES)
#define P(op) f32_##op
#define ACC f32_acc
#define FN(name) SOFTMAX_CONCAT(name, _f32_, SOFTMAX_ISA_SUFFIX)
#define EXP_FLOOR_ARG 160
#define OFFSET_LIMIT 4194304.0 /* 2^22: B + k stays an exact float integer */
#define WIDE_LOG log
#define FMA_T fmaf
#define WIDE_FLOOR floor
#define NORMALIZE_SHIFT 64
#define WIDE_LDEXP ldexp
#define WIDE_FABS fabs
#define REF_LINES softmax_ref_lines_f32
#define KERNELS_NAME SOFTMAX_CONCAT(softmax_kernels_f32, _, SOFTMAX_ISA_SUFFIX)
/* 2^f on [-0.502, 0.502], relative error 2^-25.6 (Chebyshev fit, float
 * coefficients): well below the half ulp of the final rounding. */
static inline vf32 exp2_poly_f32(vf32 f)
{
    vf32 p = f32_set1(0x1.444270p-13f);
    p = f32_fmadd(p, f, f32_set1(0x1.5f4c46p-10f));
    p = f32_fmadd(p, f, f32_set1(0x1.3b2a18p-7f));
    p = f32_fmadd(p, f, f32_set1(0x1.c6aec6p-5f));
    p = f32_fmadd(p, f, f32_set1(0x1.ebfbe0p-3f));
    p = f32_fmadd(p, f, f32_set1(0x1.62e430p-1f));
    return f32_fmadd(p, f, f32_set1(1.0f));
}
#define EXP_POLY(f) exp2_poly_f32(f)
#include "simd_body.h"
#undef T
#undef T_MAX
#undef WIDE
#undef V
#undef LANES
#undef P
#undef ACC
#undef FN
#undef EXP_FLOOR_ARG
#undef OFFSET_LIMIT
#undef WIDE_LOG
#undef FMA_T
#undef WIDE_FLOOR
#undef NORMALIZE_SHIFT
#undef WIDE_LDEXP
#undef WIDE_FABS
#undef REF_LINES
#undef KERNELS_NAME
#undef EXP_POLY

/* ---------------------------------------------------------------- f64 -- */
#define T double
#define T_MAX DBL_MAX
#define WIDE long double
#define V vf64
#define LANES ((size_t)F64_LANES)
#define P(op) f64_##op
#define ACC f64_acc
#define FN(name) SOFTMAX_CONCAT(name, _f64_, SOFTMAX_ISA_SUFFIX)
#define EXP_FLOOR_ARG 1100
#define OFFSET_LIMIT 1125899906842624.0 /* 2^50 */
#define WIDE_LOG logl
#define FMA_T fma
#define WIDE_FLOOR floorl
#define NORMALIZE_SHIFT 128
#define WIDE_LDEXP ldexpl
#define WIDE_FABS fabsl
#define REF_LINES softmax_ref_lines_f64
#define KERNELS_NAME SOFTMAX_CONCAT(softmax_kernels_f64, _, SOFTMAX_ISA_SUFFIX)
/* 2^f on [-0.502, 0.502], relative error 2^-55.1 (degree 11). */
static inline vf64 exp2_poly_f64(vf64 f)
{
    vf64 p = f64_set1(0x1.e9ee643e68b86p-32);
    p = f64_fmadd(p, f, f64_set1(0x1.e625336c54e8bp-28));
    p = f64_fmadd(p, f, f64_set1(0x1.b524ea8973d8ep-24));
    p = f64_fmadd(p, f, f64_set1(0x1.62bfc14816166p-20));
    p = f64_fmadd(p, f, f64_set1(0x1.ffcbfc6e26e42p-17));
    p = f64_fmadd(p, f, f64_set1(0x1.43091311c26e1p-13));
    p = f64_fmadd(p, f, f64_set1(0x1.5d87fe78a3e5bp-10));
    p = f64_fmadd(p, f, f64_set1(0x1.3b2ab6fb9eeb4p-7));
    p = f64_fmadd(p, f, f64_set1(0x1.c6b08d704a0c7p-5));
    p = f64_fmadd(p, f, f64_set1(0x1.ebfbdff82c5b0p-3));
    p = f64_fmadd(p, f, f64_set1(0x1.62e42fefa39efp-1));
    return f64_fmadd(p, f, f64_set1(1.0));
}
#define EXP_POLY(f) exp2_poly_f64(f)
#include "simd_body.h"
