/*
 * exp/exact.h -- the exponential of the accurate kernels: its derivation, its
 * polynomial, the per-row plan and the vector evaluation.
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 *
 * THE EXPONENTIAL. Every kernel needs e_i = exp(scale * (x_i - max)). With
 * c = scale * log2(e) split as c_hi + c_lo (T values) and B = floor(c * max) - 1
 * an integer held exactly in T:
 *
 *     u_i = c * x_i - B,  k_i = floor(u_i),  f_i = u_i - k_i in [0, 1]
 *     f_i = fma(c_lo, x_i, fma(c_hi, x_i, -(B + k_i)))      (B + k_i exact)
 *     e_i = 2^k_i * p(f_i)                                   (scalef)
 *
 * c_hi * x_i is exact inside the fma and B + k_i is an exact integer, so f_i
 * carries an absolute error near 2^-p (p the precision of T) whatever the
 * size of scale * (x_i - max): the rounding of x_i - max and of the product
 * with scale, which costs ~|u| ulp in the textbook kernel, never happens.
 * The result is exp(scale * (x_i - max)) times 2^(c * max - B), a factor in
 * [2, 4) common to the whole row that cancels in the normalisation
 * (log-softmax takes it back out exactly). Inputs below the row's floor are clamped to it and
 * give exactly 0; -inf is such an input. Rows whose |c * max| exceeds
 * OFFSET_LIMIT, and every row the contract treats specially (NaN max, +-inf
 * max, scale 0 or +-inf), go to the reference line kernels.
 *
 * SUMS are carried in WIDE (f32: f64 lanes; f64: Kahan-compensated lanes)
 * over fixed blocks of SUM_BLOCK elements; block totals are added in block
 * order. The blocks never depend on the thread count, so neither do results.
 */

#if defined(KERNEL_F32)
/* q(f) with 2^f = 1 + f * q(f) on [0, 1], relative error 2^-26.3 (Chebyshev fit of
 * q, float coefficients, all positive): well below the half ulp of the
 * final rounding. */
static inline vf32 exp2_q(vf32 f)
{
    vf32 q = f32_set1(0x1.b49554p-13f);
    q = f32_fmadd(q, f, f32_set1(0x1.4cb7b0p-10f));
    q = f32_fmadd(q, f, f32_set1(0x1.3c487cp-7f));
    q = f32_fmadd(q, f, f32_set1(0x1.c69f98p-5f));
    q = f32_fmadd(q, f, f32_set1(0x1.ebfc3ep-3f));
    return f32_fmadd(q, f, f32_set1(0x1.62e430p-1f));
}
#else
/* q(f) with 2^f = 1 + f * q(f) on [0, 1], relative error 2^-54.9 (q of degree 10,
 * all coefficients positive). */
static inline vf64 exp2_q(vf64 f)
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
#endif
#define EXP_Q(f) exp2_q(f)

typedef struct exp_args {
    V x_floor;
    V c_hi;
    V c_lo;
    V neg_offset; /* -B */
} exp_args;

/* Per-row constants, computed in WIDE. */
typedef struct row_plan {
    bool negate;       /* scale < 0: the kernels see -x and a positive c */
    T row_max;         /* max x (min x when negated) */
    T offset;          /* B, an integer (exact in T: below OFFSET_LIMIT) */
    WIDE offset_error; /* c * row_max' - B: log-softmax adds it back */
    T c_hi;
    T c_lo;
    T x_floor;
} row_plan;

/* c * row_max - offset, exact up to its last rounding to WIDE, from the
 * exact product c_hi * row_max = p_hi + p_lo (p_hi - offset is exact: the
 * two are close). Log-softmax adds it back to every output, so an error here
 * would be an error everywhere (WIDE alone loses |c * row_max| * 2^-64 for
 * f64). */
static inline WIDE offset_remainder(T c_hi, T c_lo, T row_max, T offset)
{
    const T p_hi = c_hi * row_max;
    const T p_lo = FMA_T(c_hi, row_max, -p_hi);
    return wide_add(wide_sum_of(p_hi - offset, p_lo), wide_product_of(c_lo, row_max));
}

/* The log of a row's true sum from the sum of its exps, which carry the
 * factor 2^remainder, as computed. */
static inline WIDE computed_log_sum(WIDE sum, WIDE remainder)
{
    return wide_log_sum(sum, remainder);
}

/* The same for the log-softmax outputs of a row whose maximum is its
 * largest z. Its true log-sum is then >= 0 (the sum holds the maximum's
 * exp, 1) and 0 exactly where the maximum's probability is 1; a computed
 * one below LOG_SUM_ZERO_BELOW (one ulp of 1, more than its error there)
 * is taken as 0. Log-softmax outputs, s * (x - max) - log-sum, are then
 * never above 0 and exactly 0 at probability 1, for the price of at most
 * an ulp of 1 where the true log-sum is that small (the contract counts
 * log-softmax errors in ulp of max(|y|, 1)). NaN stays NaN. Not for rows
 * with an added mask: their maximum is the high part of z, and the
 * log-sum, about the low part of the largest z, may be below 0. */
static inline T log_sum_from(WIDE sum, WIDE remainder)
{
    const WIDE log_sum = computed_log_sum(sum, remainder);
    return wide_hi(log_sum) < LOG_SUM_ZERO_BELOW ? 0 : wide_round(log_sum);
}

/* Fills the plan for a row whose maximum (max, or min for scale
 * < 0) is row_max; false when the row must take the portable path.
 * (Marked unused, as exp_for_tests: the sampler's units include this file
 * for the exponential alone.) */
__attribute__((unused)) static bool plan_row(double scale, T row_max, row_plan *plan)
{
    if (!(scale != 0) || isinf(scale) || !isfinite(row_max))
        return false;
    WIDE c = wide_scale_log2e(scale);
    plan->negate = wide_hi(c) < 0;
    plan->row_max = row_max;
    T maxima_seen = plan->negate ? -row_max : row_max;
    if (plan->negate)
        c = wide_neg(c);
    if (!(wide_hi(c) < 1e30) || !(wide_hi(c) > 1e-30))
        return false;
    wide_split(c, &plan->c_hi, &plan->c_lo);
    const WIDE b = offset_remainder(plan->c_hi, plan->c_lo, maxima_seen, 0);
    if (!(fabs(wide_hi(b)) < OFFSET_LIMIT))
        return false;
    /* B = floor(b) - 1 puts the common factor 2^(b - B) in [2, 4): every exp
     * is at least twice its true value, so an output in the normal range
     * never comes from an exp that flushed to zero. */
    plan->offset = wide_floor(b) - 1;
    plan->offset_error = offset_remainder(plan->c_hi, plan->c_lo, maxima_seen, plan->offset);
    plan->x_floor = wide_floor_quotient(plan->offset, plan->c_hi, plan->c_lo);
    return true;
}

static inline exp_args broadcast_plan(const row_plan *plan)
{
    exp_args args = {P(set1)(plan->x_floor), P(set1)(plan->c_hi), P(set1)(plan->c_lo), P(set1)((T)-plan->offset)};
    return args;
}

/* 2^(c * x - B) for one vector; NaN in, NaN out.
 *
 * Monotone by construction, which the exhaustive test confirms: the
 * estimate v is a monotone function of x (c_hi, c_lo > 0), so is k0 =
 * floor(v + KEY_BIAS); for a fixed k0 the reduced argument f0 is monotone
 * in x; the bias keeps f0 below 1, and an f0 below 0 moves to the cell
 * below (f0 + 1, k0 - 1), so (k, f) is lexicographically monotone with f in
 * [0, 1]. On [0, 1] the polynomial has positive coefficients and a positive
 * argument, so every Horner step is monotone; P(0) = 1 and P(1) = 2 (q(1)
 * rounds to exactly 1, checked when the coefficients were chosen) make the
 * cells meet in order. */
/* The exponential in parts: 2^(c x - B) = 2^k * (mantissa + residual)
 * exactly up to the polynomial and argument errors, with mantissa =
 * round(1 + f * q(f)) in [1, 2] and residual the exact rounding error of
 * that last step. Kernels that keep the residual round the output once, from
 * the unrounded exponential; rounding the exp first and the quotient next
 * would cost up to an extra ulp on every output, twice over through the sum. */
typedef struct exp_parts {
    V mantissa;
    V residual;
    V k;
} exp_parts;

/* The parts from the reduced argument f (wrapped below 0 here) and the
 * cell k: the polynomial, the mantissa and its exact rounding error. */
static SOFTMAX_FORCE_INLINE exp_parts exp_parts_at(V f, V k)
{
    const V one = P(set1)((T)1);
    P(wrap_below_zero)(&f, &k);
    V q = EXP_Q(f);
    exp_parts parts;
    parts.mantissa = P(fmadd)(q, f, one);
    parts.residual = P(fmadd)(q, f, P(sub)(one, parts.mantissa));
    parts.k = k;
    return parts;
}

/* With `low` (not NULL): 2^(c (x + low) - B), x + low the two parts of
 * an added mask's logit (see adding), low taken into the reduced argument:
 * f = fma(c_hi, x, -(B + k)) + (c_lo x + c_hi low), the small terms summed
 * first so that f is rounded twice, as without a low part (one more
 * rounding of f, folding c_hi low in by an fma of its own, took the
 * largest error of the masked-rows test from 1.89 to 2.20 ulp). The cell
 * (k) is x's: f may leave [0, 1] by c |low|, which the polynomial covers,
 * and below 0 it wraps as any f does. low is clamped to +-2^-12
 * first: a low part is below 2^-23 |z|, so this changes only elements with
 * |z| > 2^11, whose exps are 0 below a row maximum of at most
 * ADDED_MASK_MAX_LIMIT; an element far below it may carry one of any size
 * (scale 1e30, x = -4: z about -4e30, its remainder about 1e23), and a NaN
 * low (a two-sum that met an infinity or overflowed, see adding) becomes
 * +2^-12: min returns its second operand when one is NaN (x86; only the
 * x86 masked rows pass a low). */
static SOFTMAX_FORCE_INLINE exp_parts exp_parts_with(V x, const V *low, const exp_args *a)
{
    V clamped = P(max)(a->x_floor, x);
    V estimate = P(fmadd)(a->c_lo, clamped, P(fmadd)(a->c_hi, clamped, a->neg_offset));
    V k = P(floor)(P(add)(estimate, P(set1)(KEY_BIAS)));
    const V reduced = P(fmadd)(a->c_hi, clamped, P(sub)(a->neg_offset, k));
    V f;
    if (low != NULL) {
        const V bound = P(set1)((T)0x1p-12);
        const V small = P(fmadd)(a->c_lo, clamped, P(mul)(a->c_hi, P(max)(P(min)(*low, bound), P(neg)(bound))));
        f = P(add)(reduced, small);
    } else {
        f = P(fmadd)(a->c_lo, clamped, reduced);
    }
    return exp_parts_at(f, k);
}

static inline exp_parts exp_parts_of(V x, const exp_args *a)
{
    return exp_parts_with(x, NULL, a);
}

static inline exp_parts exp_parts_added(V x, V low, const exp_args *a)
{
    return exp_parts_with(x, &low, a);
}

/* The exponential rounded to T. */
static inline V exp_eval(V x, const exp_args *a)
{
    exp_parts parts = exp_parts_of(x, a);
    return P(scale_pow2)(parts.mantissa, parts.k);
}

#if defined(KERNEL_F32)
/* exp_eval where every result is a normal float (2^k in [2^-126, 2^127]
 * and the product normal: the sampler's weights, arguments in [-87, 0]
 * with offset 0): the same value, since p * 2^k is then exact, with the
 * vocabulary's cheaper scaling (one multiplication on AVX2 and NEON). */
static inline V exp_eval_normal(V x, const exp_args *a)
{
    exp_parts parts = exp_parts_of(x, a);
    return P(scale_pow2_normal)(parts.mantissa, parts.k);
}
#endif

/* e^x through exp_eval with offset 0, under the forward kernels'
 * flush-to-zero: what the exhaustive test checks. */
__attribute__((unused)) static void exp_for_tests(const void *src, void *dst, void *residual_dst, size_t n)
{
    const T *x = src;
    T *y = dst;
    T *residual = residual_dst;
    T c_hi, c_lo;
    wide_split(wide_scale_log2e(1.0), &c_hi, &c_lo);
    const exp_args a = {P(set1)(neg_arg_over_log2e(EXP_FLOOR_ARG)), P(set1)(c_hi), P(set1)(c_lo), P(set1)(0)};
    const unsigned int saved = vec_flush_to_zero_begin();
    for (size_t i = 0; i < n; i += LANES) {
        size_t count = n - i < LANES ? n - i : LANES;
        exp_parts parts = exp_parts_of(P(load_tail)(x + i, count, 0), &a);
        P(store_tail)(y + i, P(scale_pow2)(parts.mantissa, parts.k), count);
        if (residual)
            P(store_tail)(residual + i, P(scale_pow2)(parts.residual, parts.k), count);
    }
    vec_flush_to_zero_end(saved);
}
