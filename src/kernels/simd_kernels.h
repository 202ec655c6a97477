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
#define T_FLOOR floorf
#define T_FABS fabsf
#define WIDE_FLOOR floor
#define NORMALIZE_SHIFT 64
#define NORMALIZE_SCALE 0x1p64
#define NORMALIZE_UNSCALE 0x1p-64
#define WIDE_LDEXP ldexp
#define WIDE_FABS fabs
#define REF_LINES softmax_ref_lines_f32
#define KERNELS_NAME SOFTMAX_CONCAT(softmax_kernels_f32, _, SOFTMAX_ISA_SUFFIX)
/* q(f) with 2^f = 1 + f * q(f) on [0, 1], relative error 2^-26.3 (Chebyshev fit of
 * q, float coefficients, all positive): well below the half ulp of the
 * final rounding. */
static inline vf32 exp2_q_f32(vf32 f)
{
    vf32 q = f32_set1(0x1.b49554p-13f);
    q = f32_fmadd(q, f, f32_set1(0x1.4cb7b0p-10f));
    q = f32_fmadd(q, f, f32_set1(0x1.3c487cp-7f));
    q = f32_fmadd(q, f, f32_set1(0x1.c69f98p-5f));
    q = f32_fmadd(q, f, f32_set1(0x1.ebfc3ep-3f));
    return f32_fmadd(q, f, f32_set1(0x1.62e430p-1f));
}
#define KEY_BIAS 0x1p-14f
#define EXP_Q(f) exp2_q_f32(f)
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
#undef T_FLOOR
#undef T_FABS
#undef WIDE_FLOOR
#undef NORMALIZE_SHIFT
#undef NORMALIZE_SCALE
#undef NORMALIZE_UNSCALE
#undef WIDE_LDEXP
#undef WIDE_FABS
#undef REF_LINES
#undef KERNELS_NAME
#undef EXP_Q
#undef KEY_BIAS

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
#define T_FLOOR floor
#define T_FABS fabs
#define WIDE_FLOOR floorl
#define NORMALIZE_SHIFT 128
#define NORMALIZE_SCALE 0x1p128L
#define NORMALIZE_UNSCALE 0x1p-128
#define WIDE_LDEXP ldexpl
#define WIDE_FABS fabsl
#define REF_LINES softmax_ref_lines_f64
#define KERNELS_NAME SOFTMAX_CONCAT(softmax_kernels_f64, _, SOFTMAX_ISA_SUFFIX)
/* q(f) with 2^f = 1 + f * q(f) on [0, 1], relative error 2^-54.9 (q of degree 10,
 * all coefficients positive). */
static inline vf64 exp2_q_f64(vf64 f)
{
    vf64 q = f64_set1(0x1.509edf2ecfdf8p-31);
    q = f64_fmadd(q, f, f64_set1(0x1.c7ea67ee59ebfp-28));
    q = f64_fmadd(q, f, f64_set1(0x1.b7a2459dca29cp-24));
    q = f64_fmadd(q, f, f64_set1(0x1.629e703ac7f08p-20));
    q = f64_fmadd(q, f, f64_set1(0x1.ffce434c232f0p-17));
    q = f64_fmadd(q, f, f64_set1(0x1.4309065c8357ap-13));
    q = f64_fmadd(q, f, f64_set1(0x1.5d87fecf83f7bp-10));
    q = f64_fmadd(q, f, f64_set1(0x1.3b2ab6fa48563p-7));
    q = f64_fmadd(q, f, f64_set1(0x1.c6b08d704fa4fp-5));
    q = f64_fmadd(q, f, f64_set1(0x1.ebfbdff82c4ffp-3));
    return f64_fmadd(q, f, f64_set1(0x1.62e42fefa39efp-1));
}
#define KEY_BIAS 0x1p-36
#define EXP_Q(f) exp2_q_f64(f)
#include "simd_body.h"
