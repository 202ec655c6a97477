/*
 * exp/fast.h -- the exponential of the fast mode (SOFTMAX_FLAG_FAST), beside the
 * exact one it shares its argument reduction with.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ---------------------------------------------------- the fast exponential */

#if defined(KERNEL_F32)
/* The fast mode's q(f) with 2^f = 1 + f * q(f) on [-0.5005, 0.5005]: a
 * near-minimax fit of the relative error with float coefficients (each
 * rounded in turn from the constant term up, the others refitted),
 * 2^-28.3 in exact arithmetic, fitted for this library (the previous fit:
 * 2^-25.9). A fit on [-0.7501, 0.7501], which would spare the estimate
 * its c_lo term (one fma), reaches only 2^-24.75: measured, the fast mode
 * then loses about one ulp (4.21 ulp against 3.17, half inputs to f32). */
static inline vf32 fast_exp2_q(vf32 f)
{
    vf32 q = f32_set1(0x1.4172b4p-13f);
    q = f32_fmadd(q, f, f32_set1(0x1.5f0976p-10f));
    q = f32_fmadd(q, f, f32_set1(0x1.3b2ddap-7f));
    q = f32_fmadd(q, f, f32_set1(0x1.c6af7ap-5f));
    q = f32_fmadd(q, f, f32_set1(0x1.ebfbdcp-3f));
    return f32_fmadd(q, f, f32_set1(0x1.62e430p-1f));
}
#define FAST_EXP_Q(f) fast_exp2_q(f)
#endif

#ifdef FAST_EXP_Q
/* SOFTMAX_FLAG_FAST: 2^(c x - B) as the textbook kernels compute it, with
 * the argument reduction kept exact: k = round(estimate), f = c x - B - k
 * from the same two fmas as exp_parts_of, f in [-0.5005, 0.5005], one
 * polynomial, scalef. No residual, no cell fix-up: about 1 ulp, and the
 * weak order of the inputs may break by an ulp where k changes (the
 * accurate kernels guarantee it). */
static inline V fast_exp(V x, const exp_args *a)
{
    V clamped = P(max)(a->x_floor, x);
    V k = P(round)(P(fmadd)(a->c_lo, clamped, P(fmadd)(a->c_hi, clamped, a->neg_offset)));
    V f = P(fmadd)(a->c_lo, clamped, P(fmadd)(a->c_hi, clamped, P(sub)(a->neg_offset, k)));
    return P(scale_pow2)(P(fmadd)(FAST_EXP_Q(f), f, P(set1)((T)1)), k);
}
#define SOFTMAX_HAS_FAST_EXP 1
#else
#define SOFTMAX_HAS_FAST_EXP 0
#endif

/* The exponential of the tiny-row kernels: exact-parts (accurate) or fast,
 * chosen at compile time where the bodies are inlined. */
static SOFTMAX_FORCE_INLINE void tiny_exp(bool fast, V x, const exp_args *a, V *e, V *residual)
{
#if SOFTMAX_HAS_FAST_EXP
    if (fast) {
        *e = fast_exp(x, a);
        *residual = P(set1)(0);
        return;
    }
#endif
    (void)fast;
    const exp_parts parts = exp_parts_of(x, a);
    *e = P(scale_pow2)(parts.mantissa, parts.k);
    *residual = P(scale_pow2)(parts.residual, parts.k);
}
