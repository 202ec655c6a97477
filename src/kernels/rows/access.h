/*
 * rows/access.h -- how the row kernels read and write: row_masks and additive masks
 * applied as x is loaded, half-precision sources and destinations, the
 * row maximum (minimum for a negative scale).
 *
 * One part of the kernels of one (data type, ISA): kernels.h includes it
 * once in each translation unit kernels_<type>_<isa>.c, after the vector
 * vocabulary (vec_<isa>.h) and the type parameters (type_<type>.h).
 */

/* ------------------------------------------------------------------ scans */

/* Exclusion masks read by the kernels themselves (see excluding_row): an
 * excluded element is read as `excluded` (-inf, or +inf for a negative
 * scale, which the kernels negate), so it gets probability 0. Pointers are
 * NULL when absent and index the row like x. Only the f32 paths define
 * P(exclude); elsewhere the loads are plain. */
typedef struct row_masks {
    const uint8_t *keep;       /* a zero byte excludes */
    const T *mask;             /* a -inf entry excludes */
    const uint16_t *half_mask; /* an entry equal to half_minus_inf excludes */
    uint16_t half_minus_inf;   /* 0xff80 (bf16) or 0xfc00 (f16) */
    T excluded;
    size_t kept; /* elements from kept on are excluded (a causal mask) */
    /* An additive mask (ADD_MASK: add_mask; ADD_HALF: add_half, bf16 if
     * add_bf16, else f16): the kernels see z = scale * x + mask as a high
     * part (what they read) and a low part (see adding), with the scale
     * split as scale_hi + scale_lo, and run with scale 1. */
    const T *add_mask;
    const uint16_t *add_half;
    int add_bf16;
    T scale_hi;
    T scale_lo;
    /* ALiBi (ADD_SLOPE): the bias slope * j, slope = slope_hi + slope_lo. */
    T slope_hi;
    T slope_lo;
} row_masks;

/* io_flags: how a row is read and written, one bit per choice -- which
 * masks apply as x is read (EXCLUDE_*, ADD_*), whether x holds bf16 / f16
 * bits (SOURCE_*), whether y is written as bf16 / f16 (DEST_*). A
 * compile-time constant where the bodies below are specialised
 * (excluding_row, half_line): a zero test of a NULL pointer per vector
 * costs more than the masking itself. */
#ifndef EXCLUDE_KEEP
#define EXCLUDE_KEEP 1   /* ex->keep */
#define EXCLUDE_MASK 2   /* ex->mask */
#define EXCLUDE_HALF 4   /* ex->half_mask */
#define EXCLUDE_PREFIX 8 /* elements from ex->kept on */
#define ADD_MASK 64      /* ex->add_mask */
#define ADD_HALF 128     /* ex->add_half */
#define ADD_SLOPE 256    /* slope * j, j the element's index (ALiBi) */
#define ADDING (ADD_MASK | ADD_HALF | ADD_SLOPE)
/* With EXCLUDE_MASK or EXCLUDE_HALF: the mask is assumed to hold only 0
 * and -inf, which the kernel checks in its max pass (row_max_staging): a
 * mask as large as x (the planner's lazy check) is then read from memory
 * once, by the kernel, not once more in a pass of its own. */
#define CHECK_MASK 65536
/* With ADD_*: scale_hi is a power of two and scale_lo 0, so that
 * scale_hi * x is exact (below the normal range the kernels' flush-to-zero
 * makes it 0 in both forms): the product needs no rest, and z = high + low
 * is the two-sum of the product and the bias alone -- the same bits as the
 * general form, about half its operations. */
#define ADD_EXACT_SCALE 16384
/* x is a row the max pass staged in the workspace (see read_row_body):
 * plain T values, the exclusions already applied. */
#define STAGED 262144
/* An added bias reduced once (rows/reduced_bias.h): the grouped rows read
 * its g and lo (added_group). */
#define ADD_REDUCED 524288
#endif

/* x (elements i .. i + count of the row) as the kernels see it. */
static SOFTMAX_FORCE_INLINE V excluding(V x, const row_masks *ex, int io_flags, size_t i, size_t count)
{
#if defined(HALF_ROWS)
    if ((io_flags & (EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_HALF | EXCLUDE_PREFIX)) != 0) {
        const size_t limit = !(io_flags & EXCLUDE_PREFIX) ? count
                             : i >= ex->kept              ? 0
                             : ex->kept - i < count       ? ex->kept - i
                                                          : count;
        const uint8_t *keep = (io_flags & EXCLUDE_KEEP) && ex->keep != NULL ? ex->keep + i : NULL;
        const T *mask = (io_flags & EXCLUDE_MASK) && ex->mask != NULL ? ex->mask + i : NULL;
        const uint16_t *half_mask = (io_flags & EXCLUDE_HALF) && ex->half_mask != NULL ? ex->half_mask + i : NULL;
        return P(exclude)(x, keep, mask, half_mask, ex->half_minus_inf, P(set1)(ex->excluded), limit);
    }
#endif
    (void)ex, (void)io_flags, (void)i, (void)count;
    return x;
}

/* The element type of x: T, or half-precision bits widened as they are
 * read (f32 paths only; the widening is exact). */
#ifndef SOURCE_BF16
#define SOURCE_BF16 16
#define SOURCE_F16 32
#endif

/* The address of element i of x (for prefetches). */
static SOFTMAX_FORCE_INLINE const void *source_at(const void *x, int io_flags, size_t i)
{
    if (io_flags & (SOURCE_BF16 | SOURCE_F16))
        return (const uint16_t *)x + i;
    return (const T *)x + i;
}

/* count (<= LANES) half-precision values widened, `fill` in the other
 * lanes. */
static SOFTMAX_FORCE_INLINE V widen_tail(const uint16_t *h, int bf16, size_t count, T fill)
{
    _Alignas(64) T widened[LANES];
    for (size_t k = 0; k < LANES; k++)
        widened[k] = k >= count ? fill : bf16 ? softmax_bf16_to_float(h[k]) : softmax_f16_to_float(h[k]);
    return P(load)(widened);
}

/* Lane l holds l (the index of an element within its vector). */
static const T lane_index[16] __attribute__((aligned(64))) = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

#if defined(HALF_ROWS)
/* product + bias, and -inf where the bias is -inf (a -inf entry of an
 * added mask, or a lane past the row's end, which the bias loads fill with
 * -inf): such an element is excluded whatever x holds (a NaN or +inf x
 * would make the sum NaN there). The bias is the mask entry widened
 * exactly, so this is the test of the entry itself without loading it
 * again. On AVX-512 the test masks the addition itself (one instruction
 * fewer than a select after it). */
static SOFTMAX_FORCE_INLINE V sum_kept_by_bias(V product, V bias)
{
#if defined(SOFTMAX_VEC_AVX512_H)
    return _mm512_mask_add_ps(bias, _mm512_cmp_ps_mask(bias, _mm512_set1_ps(-INFINITY), _CMP_NEQ_UQ), product, bias);
#else
    return _mm256_blendv_ps(_mm256_add_ps(product, bias), bias,
                            _mm256_cmp_ps(bias, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ));
#endif
}

/* v with its NaN lanes 0: a two-sum whose inputs are finite overflows in
 * its intermediate steps when the sum is within a few ulp of the float
 * range's end (scale * x = 7.5e37 and a bias of -FLT_MAX), and its error
 * term comes out NaN; the element's z (high) is finite and far below any
 * moderate row maximum, its exp 0, and a NaN rest would turn the row NaN.
 * A NaN z stays NaN in high. */
static SOFTMAX_FORCE_INLINE V zero_nan(V v)
{
#if defined(SOFTMAX_VEC_AVX512_H)
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
#else
    return _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
#endif
}
#endif

/* An added mask's low part as a log-softmax output adds it: NaN (see
 * adding) made 0, where high is -inf (the output stays -inf) or far below
 * the maximum (the two-sum overflowed). */
static SOFTMAX_FORCE_INLINE V output_low(V low)
{
#if defined(HALF_ROWS)
    return zero_nan(low);
#else
    return low;
#endif
}

/* Whether z's low part may hold a rounding error large enough to matter:
 * scale * x's (a scale not a power of two) or, for ALiBi on a row of n
 * elements, slope * j's, below 2^-14 where slope * n is within 2^11. Such
 * rows keep |scale * x| within ADDED_PRODUCT_LIMIT, or take the general
 * path. */
static SOFTMAX_FORCE_INLINE bool product_low(int io_flags, T slope, size_t n)
{
    return (io_flags & ADDING) &&
           (!(io_flags & ADD_EXACT_SCALE) || ((io_flags & ADD_SLOPE) && !(T_FABS(slope) * (T)n <= (T)0x1p11)));
}

/* The running range of x (*top, *bottom; NaN skipped) and whether
 * |scale_hi| times its largest magnitude is within ADDED_PRODUCT_LIMIT. */
static SOFTMAX_FORCE_INLINE void range_of(V value, V *top, V *bottom)
{
    *top = P(max)(value, *top);
    *bottom = P(min)(value, *bottom);
}
/* The largest magnitude of a range (top, bottom). */
static SOFTMAX_FORCE_INLINE T range_reach(V top, V bottom)
{
    return P(reduce_max)(P(max)(top, P(neg)(bottom)));
}
static SOFTMAX_FORCE_INLINE bool product_within_limit(V top, V bottom, T scale_hi)
{
    return T_FABS(scale_hi) * range_reach(top, bottom) <= (T)ADDED_PRODUCT_LIMIT;
}

/* The logits z = scale * x + bias of elements i .. i + count, the bias a
 * mask (which reads -inf past count, where x reads 0) or slope * j, as z =
 * high + *low: high the rounded sum, *low the rest, from exact products
 * (fmas) and an exact two-sum: |low| <= 2^-24 (|z| + |scale * x| + |slope
 * * j|), below 2^-12 where the exp is not 0 as the rows keep it (see
 * ADDED_PRODUCT_LIMIT). The exps take low into
 * their reduced argument (exp_parts_added), so that z is never rounded
 * before the exp: rounding it would cost |z| * 2^-24 in the argument, 40
 * ulp at z = -80. Exclusions (keep, a 0 / -inf mask, prefix) apply to high
 * afterwards. *low is left as the arithmetic gives it -- NaN where the
 * two-sum met an infinity (high -inf, or NaN) or overflowed (a sum within
 * a few ulp of the float range's end) -- for its two readers to deal with
 * in one instruction or two: the exps clamp it (a NaN becomes a small
 * finite number, and the exp of an excluded or far-below element is 0
 * whatever it is), log-softmax outputs zero its NaNs (output_low). With
 * ADD_EXACT_SCALE the product's rest is 0 and is not computed (the same
 * bits). */
#if defined(HALF_ROWS)
/* A slope's bias at the element indices j: slope * j as its float and
 * *rest, the part the float lost. */
static SOFTMAX_FORCE_INLINE V slope_bias(V j, T slope_hi, T slope_lo, V *rest)
{
    const V hi = P(set1)(slope_hi);
    const V bias = P(mul)(hi, j);
    *rest = P(fmadd)(P(set1)(slope_lo), j, P(fmadd)(hi, j, P(neg)(bias)));
    return bias;
}

/* z = scale * x + bias, before any exclusion, as its high part (returned)
 * and *low: adding()'s arithmetic, shared with the tiny groups that form
 * z in columns (added_columns), so that both give the same bits.
 * slope_rest is read with ADD_SLOPE only. */
static SOFTMAX_FORCE_INLINE V added_sum(V x, V bias, V slope_rest, T scale_hi_value, T scale_lo_value, int io_flags,
                                        V *low)
{
    const bool exact_scale = (io_flags & ADD_EXACT_SCALE) != 0;
    const V scale_hi = P(set1)(scale_hi_value);
    const V product = P(mul)(scale_hi, x);
    V rest = exact_scale ? P(set1)((T)0) : P(fmadd)(P(set1)(scale_lo_value), x, P(fmadd)(scale_hi, x, P(neg)(product)));
    if (io_flags & ADD_SLOPE)
        rest = exact_scale ? slope_rest : P(add)(rest, slope_rest);
    /* The two-sum's error is NaN where the bias is -inf, as it was
     * with high = product + bias there (see exp_parts_added). */
    const V high = (io_flags & (ADD_MASK | ADD_HALF)) ? sum_kept_by_bias(product, bias) : P(add)(product, bias);
    const V bias_seen = P(sub)(high, product);
    const V error = P(add)(P(sub)(product, P(sub)(high, bias_seen)), P(sub)(bias, bias_seen));
    /* Without a slope an exact scale leaves the two-sum's error alone. */
    *low = exact_scale && !(io_flags & ADD_SLOPE) ? error : P(add)(error, rest);
    return high;
}
#endif

static SOFTMAX_FORCE_INLINE V adding(V x, const row_masks *ex, int io_flags, size_t i, size_t count, V *low)
{
#if defined(HALF_ROWS)
    if (io_flags & ADDING) {
        V bias, slope_rest = P(set1)((T)0);
        if (io_flags & ADD_SLOPE) {
            bias = slope_bias(P(add)(P(set1)((T)i), P(load)(lane_index)), ex->slope_hi, ex->slope_lo, &slope_rest);
        } else if (io_flags & ADD_MASK) {
            bias = count == LANES ? P(load)(ex->add_mask + i) : P(load_tail)(ex->add_mask + i, count, (T)-INFINITY);
        } else {
            bias = count == LANES ? P(load_half)(ex->add_half + i, ex->add_bf16)
                                  : widen_tail(ex->add_half + i, ex->add_bf16, count, (T)-INFINITY);
        }
        const V high = added_sum(x, bias, slope_rest, ex->scale_hi, ex->scale_lo, io_flags, low);
        V seen = excluding(high, ex, io_flags, i, count);
        if ((io_flags & ADD_SLOPE) && count < LANES)
            seen = P(exclude)(seen, NULL, NULL, NULL, 0, P(set1)((T)-INFINITY), count);
        return seen;
    }
#endif
    *low = P(set1)((T)0);
    return excluding(x, ex, io_flags, i, count);
}

/* Elements i .. i + LANES of x as the kernels see them (the high part of
 * the logits where a mask is added: *low gets the rest). */
static SOFTMAX_FORCE_INLINE V read_pair(const void *x, const row_masks *ex, int io_flags, size_t i, V *low)
{
    V v;
#if defined(HALF_ROWS)
    if (io_flags & (SOURCE_BF16 | SOURCE_F16))
        v = P(load_half)((const uint16_t *)x + i, (io_flags & SOURCE_BF16) != 0);
    else
#endif
        v = P(load)((const T *)x + i);
    return adding(v, ex, io_flags, i, LANES, low);
}

static SOFTMAX_FORCE_INLINE V read_vector(const void *x, const row_masks *ex, int io_flags, size_t i)
{
    V low;
    return read_pair(x, ex, io_flags, i, &low);
}

/* The first count (< LANES) elements from i, `fill` in the other lanes (an
 * added mask fills them with -inf itself). */
static SOFTMAX_FORCE_INLINE V read_tail_pair(const void *x, const row_masks *ex, int io_flags, size_t i, size_t count,
                                             T fill, V *low)
{
    V v;
#if defined(HALF_ROWS)
    if (io_flags & (SOURCE_BF16 | SOURCE_F16))
        v = widen_tail((const uint16_t *)x + i, (io_flags & SOURCE_BF16) != 0, count, fill);
    else
#endif
        v = P(load_tail)((const T *)x + i, count, (io_flags & ADDING) ? (T)0 : fill);
    return adding(v, ex, io_flags, i, count, low);
}

static SOFTMAX_FORCE_INLINE V read_tail(const void *x, const row_masks *ex, int io_flags, size_t i, size_t count,
                                        T fill)
{
    V low;
    return read_tail_pair(x, ex, io_flags, i, count, fill, &low);
}

/* The element type of an output: T, or half-precision bits narrowed as
 * they are stored (f32 paths only). The narrowing is the one of
 * narrow_half (round to nearest even, NaN kept quiet) and ignores
 * flush-to-zero: the hardware f16 conversion never flushes, the bf16 one is
 * integer arithmetic. Under the kernels' flush-to-zero the f32 values
 * themselves are what the f32 path computes, so a half output stored here
 * is bit for bit the f32 output narrowed. The vector stores take no NaN
 * (rows with one are filled through fill_out). */
#ifndef DEST_BF16
#define DEST_BF16 512
#define DEST_F16 1024
#define DEST_HALF (DEST_BF16 | DEST_F16)
#endif

static SOFTMAX_FORCE_INLINE void write_vector(void *y, int io_flags, size_t i, V v)
{
#if defined(HALF_ROWS)
    if (io_flags & DEST_HALF) {
        P(store_half)((uint16_t *)y + i, v, (io_flags & DEST_BF16) != 0);
        return;
    }
#endif
    (void)io_flags;
    P(store)((T *)y + i, v);
}

/* The same with a streaming store, element i at an address that
 * stream_aligned accepts. */
static SOFTMAX_FORCE_INLINE void write_stream(void *y, int io_flags, size_t i, V v)
{
#if defined(HALF_ROWS)
    if (io_flags & DEST_HALF) {
        P(stream_half)((uint16_t *)y + i, v, (io_flags & DEST_BF16) != 0);
        return;
    }
#endif
    (void)io_flags;
    P(stream)((T *)y + i, v);
}

/* write_stream if `stream`, else write_vector. */
static SOFTMAX_FORCE_INLINE void write_as(void *y, int io_flags, size_t i, V v, bool stream)
{
    if (stream)
        write_stream(y, io_flags, i, v);
    else
        write_vector(y, io_flags, i, v);
}

/* Whether element i of y is where a vector's streaming store may begin. */
static SOFTMAX_FORCE_INLINE bool stream_aligned(const void *y, int io_flags, size_t i)
{
    const size_t size = (io_flags & DEST_HALF) ? sizeof(uint16_t) : sizeof(T);
    return ((uintptr_t)y + i * size) % (LANES * size) == 0;
}

/* The first count (< LANES) lanes of v to elements i .. i + count. */
static SOFTMAX_FORCE_INLINE void write_tail(void *y, int io_flags, size_t i, V v, size_t count)
{
#if defined(HALF_ROWS)
    if (io_flags & DEST_HALF) {
        _Alignas(64) T values[LANES];
        P(store)(values, v);
        uint16_t *h = (uint16_t *)y + i;
        for (size_t k = 0; k < count; k++)
            h[k] = (io_flags & DEST_BF16) ? softmax_float_to_bf16(values[k]) : softmax_float_to_f16(values[k]);
        return;
    }
#endif
    (void)io_flags;
    P(store_tail)((T *)y + i, v, count);
}

static SOFTMAX_FORCE_INLINE void fill_out(void *y, int io_flags, size_t begin, size_t end, T value)
{
#if defined(HALF_ROWS)
    if (io_flags & DEST_HALF) {
        const uint16_t h = (io_flags & DEST_BF16) ? softmax_float_to_bf16(value) : softmax_float_to_f16(value);
        for (size_t i = begin; i < end; i++)
            ((uint16_t *)y)[i] = h;
        return;
    }
#endif
    (void)io_flags;
    for (size_t i = begin; i < end; i++)
        ((T *)y)[i] = value;
}

/* Asks for the cache lines of p[0 .. count) (never faults). */
static inline void prefetch_span(const T *p, size_t count)
{
    for (size_t i = 0; i < count; i += 64 / sizeof(T))
        vec_prefetch(p + i);
}

/* Rows ahead that a causal row's prefix is asked for (1 and 2 measured the
 * same; 2 leaves more time for the short rows). */
#ifndef ROW_AHEAD
#define ROW_AHEAD 2
#endif

/* The mask entries that are neither 0 (either sign) nor -inf, as bits:
 * an entry's magnitude or its difference from -inf, whichever is smaller
 * as an unsigned integer, is 0 exactly for those three. mask_others ORs
 * the entries i .. i + LANES of the row's mask into others (see
 * CHECK_MASK); mask_others_tail tests the last ones. */
#if defined(HALF_ROWS)
#if defined(SOFTMAX_VEC_AVX512_H)
typedef __m512i mask_bits;
#define MASK_BITS_ZERO() _mm512_setzero_si512()
#define MASK_BITS_ANY(v) (_mm512_test_epi32_mask((v), (v)) != 0)
#else
typedef __m256i mask_bits;
#define MASK_BITS_ZERO() _mm256_setzero_si256()
#define MASK_BITS_ANY(v) (!_mm256_testz_si256((v), (v)))
#endif

static SOFTMAX_FORCE_INLINE mask_bits mask_others(mask_bits others, const row_masks *ex, int io_flags, size_t i)
{
#if defined(SOFTMAX_VEC_AVX512_H)
    if (io_flags & EXCLUDE_MASK) {
        const __m512i bits = _mm512_loadu_si512((const void *)(ex->mask + i));
        const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
        const __m512i from_minus_infinity = _mm512_xor_si512(bits, _mm512_set1_epi32((int)0xff800000u));
        others = _mm512_or_si512(others, _mm512_min_epu32(magnitude, from_minus_infinity));
    }
    if (io_flags & EXCLUDE_HALF) {
        const __m256i bits = _mm256_loadu_si256((const __m256i *)(const void *)(ex->half_mask + i));
        const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi16(0x7fff));
        const __m256i from_minus_infinity = _mm256_xor_si256(bits, _mm256_set1_epi16((short)ex->half_minus_inf));
        others = _mm512_or_si512(others, _mm512_zextsi256_si512(_mm256_min_epu16(magnitude, from_minus_infinity)));
    }
#else
    if (io_flags & EXCLUDE_MASK) {
        const __m256i bits = _mm256_loadu_si256((const __m256i *)(const void *)(ex->mask + i));
        const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
        const __m256i from_minus_infinity = _mm256_xor_si256(bits, _mm256_set1_epi32((int)0xff800000u));
        others = _mm256_or_si256(others, _mm256_min_epu32(magnitude, from_minus_infinity));
    }
    if (io_flags & EXCLUDE_HALF) {
        const __m128i bits = _mm_loadu_si128((const __m128i *)(const void *)(ex->half_mask + i));
        const __m128i magnitude = _mm_and_si128(bits, _mm_set1_epi16(0x7fff));
        const __m128i from_minus_infinity = _mm_xor_si128(bits, _mm_set1_epi16((short)ex->half_minus_inf));
        others = _mm256_or_si256(others, _mm256_zextsi128_si256(_mm_min_epu16(magnitude, from_minus_infinity)));
    }
#endif
    return others;
}

static SOFTMAX_FORCE_INLINE bool mask_others_tail(const row_masks *ex, int io_flags, size_t i, size_t count)
{
    bool found = false;
    for (size_t j = i; j < i + count; j++) {
        if (io_flags & EXCLUDE_MASK) {
            uint32_t bits;
            memcpy(&bits, ex->mask + j, sizeof bits);
            const uint32_t magnitude = bits & 0x7fffffffu, from_minus_infinity = bits ^ 0xff800000u;
            found |= (magnitude < from_minus_infinity ? magnitude : from_minus_infinity) != 0;
        }
        if (io_flags & EXCLUDE_HALF) {
            const uint16_t bits = ex->half_mask[j];
            const uint16_t magnitude = bits & 0x7fffu, from_minus_infinity = bits ^ ex->half_minus_inf;
            found |= (magnitude < from_minus_infinity ? magnitude : from_minus_infinity) != 0;
        }
    }
    return found;
}
#endif

/* With CHECK_MASK (a compile-time constant in each body: the others
 * compute as before), the max and min passes also test the mask entries
 * they read (mask_others): *adds says whether one is neither 0 nor -inf.
 * In a pass of its own, after the max pass, the test took about a tenth of
 * a 0 / -inf f32 mask call on rows of 4096 (a mask as large as x). */
#if defined(HALF_ROWS)
#define CHECKING_MASK(others, i)                                                                                       \
    do {                                                                                                               \
        if (io_flags & CHECK_MASK)                                                                                     \
            (others) = mask_others((others), ex, io_flags, (i));                                                       \
    } while (0)
#define CHECKED_MASK_ADDS(others, i, count)                                                                            \
    ((io_flags & CHECK_MASK) && (MASK_BITS_ANY(others) || mask_others_tail(ex, io_flags, (i), (count))))
#else /* no masked rows here: nothing to check */
typedef int mask_bits;
#define MASK_BITS_ZERO() 0
#define CHECKING_MASK(others, i) ((void)(others), (void)(i))
#define CHECKED_MASK_ADDS(others, i, count) ((void)(others), false)
#endif

/* Elements i .. i + LANES as read_vector reads them, also kept at stage + i
 * unless stage is NULL (the max pass staging the row for the passes after
 * it: see read_row_body). */
static SOFTMAX_FORCE_INLINE V read_staging(const void *x, const row_masks *ex, int io_flags, size_t i, T *stage)
{
    const V v = read_vector(x, ex, io_flags, i);
    if (stage != NULL)
        P(store)(stage + i, v);
    return v;
}

/* The same for the last count (< LANES) elements, `fill` in the other lanes. */
static SOFTMAX_FORCE_INLINE V read_tail_staging(const void *x, const row_masks *ex, int io_flags, size_t i,
                                                size_t count, T fill, T *stage)
{
    const V v = read_tail(x, ex, io_flags, i, count, fill);
    if (stage != NULL)
        P(store_tail)(stage + i, v, count);
    return v;
}

/* The range of `vectors` vectors of an f32 row from element i: *top and
 * *bottom the running maximum and minimum (NaN skipped), for max_body's
 * reach. */
static SOFTMAX_FORCE_INLINE void reaching(const void *x, size_t i, size_t vectors, V *top, V *bottom)
{
    const T *row = (const T *)x + i;
    for (size_t v = 0; v < vectors; v++)
        range_of(P(load)(row + v * LANES), top, bottom);
}

/* The row maximum as the kernels read x. With `reach` (added biases whose
 * z = scale * x + bias has a low part from scale * x or slope * j, an f32
 * x): *reach gets the largest |x| of the row (+inf for an infinite x; NaN
 * skipped), for read_row_body's limit on those low parts. */
static SOFTMAX_FORCE_INLINE T max_body(const void *x, size_t n, const row_masks *ex, int io_flags, bool *adds, T *stage,
                                       T *reach)
{
    V m0 = P(set1)((T)-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    V top = P(set1)((T)0), bottom = top;
    mask_bits others = MASK_BITS_ZERO();
    size_t i = 0;
    /* The running maximum goes second so that a NaN element is skipped: rows
     * with NaN are caught later by their NaN sum. */
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        m0 = P(max)(read_staging(x, ex, io_flags, i, stage), m0);
        m1 = P(max)(read_staging(x, ex, io_flags, i + LANES, stage), m1);
        m2 = P(max)(read_staging(x, ex, io_flags, i + 2 * LANES, stage), m2);
        m3 = P(max)(read_staging(x, ex, io_flags, i + 3 * LANES, stage), m3);
        if (reach != NULL)
            reaching(x, i, 4, &top, &bottom);
        CHECKING_MASK(others, i);
        CHECKING_MASK(others, i + LANES);
        CHECKING_MASK(others, i + 2 * LANES);
        CHECKING_MASK(others, i + 3 * LANES);
    }
    for (; i + LANES <= n; i += LANES) {
        m0 = P(max)(read_staging(x, ex, io_flags, i, stage), m0);
        if (reach != NULL)
            reaching(x, i, 1, &top, &bottom);
        CHECKING_MASK(others, i);
    }
    if (i < n) {
        m1 = P(max)(read_tail_staging(x, ex, io_flags, i, n - i, (T)-INFINITY, stage), m1);
        if (reach != NULL)
            range_of(P(load_tail)((const T *)x + i, n - i, 0), &top, &bottom);
    }
    if (adds != NULL)
        *adds = CHECKED_MASK_ADDS(others, i, n - i);
    if (reach != NULL)
        *reach = range_reach(top, bottom);
    return P(reduce_max)(P(max)(P(max)(m0, m1), P(max)(m2, m3)));
}

static SOFTMAX_FORCE_INLINE T min_body(const void *x, size_t n, const row_masks *ex, int io_flags, bool *adds, T *stage)
{
    V m0 = P(set1)((T)INFINITY), m1 = m0;
    mask_bits others = MASK_BITS_ZERO();
    size_t i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        m0 = P(min)(read_staging(x, ex, io_flags, i, stage), m0);
        m1 = P(min)(read_staging(x, ex, io_flags, i + LANES, stage), m1);
        CHECKING_MASK(others, i);
        CHECKING_MASK(others, i + LANES);
    }
    for (; i + LANES <= n; i += LANES) {
        m0 = P(min)(read_staging(x, ex, io_flags, i, stage), m0);
        CHECKING_MASK(others, i);
    }
    if (i < n)
        m1 = P(min)(read_tail_staging(x, ex, io_flags, i, n - i, (T)INFINITY, stage), m1);
    if (adds != NULL)
        *adds = CHECKED_MASK_ADDS(others, i, n - i);
    return P(reduce_min)(P(min)(m0, m1));
}
#undef CHECKING_MASK
#undef CHECKED_MASK_ADDS

/* The element the row's plan is built on: the maximum (the minimum for a
 * negative scale) of x as the kernels read it. */
static SOFTMAX_FORCE_INLINE T row_max_reading(const void *x, size_t n, double scale, const row_masks *ex, int io_flags)
{
    return scale < 0 ? min_body(x, n, ex, io_flags, NULL, NULL) : max_body(x, n, ex, io_flags, NULL, NULL, NULL);
}

/* The same, with CHECK_MASK *adds saying whether the first n entries of
 * the row's mask hold a value other than 0 and -inf (adds NULL without),
 * the row staged at stage unless it is NULL. */
static SOFTMAX_FORCE_INLINE T row_max_staging(const void *x, size_t n, double scale, const row_masks *ex, int io_flags,
                                              bool *adds, T *stage, T *reach)
{
    return scale < 0 ? min_body(x, n, ex, io_flags, adds, stage) : max_body(x, n, ex, io_flags, adds, stage, reach);
}

static inline T row_max_of(const T *x, size_t n, double scale)
{
    return row_max_reading(x, n, scale, NULL, 0);
}

/* ------------------------------------------------------------ row groups */

/* The rows of one call of the grouped tiny and small-row kernels (at most
 * LANES rows). Plain rows are consecutive: row r at x + r * stride, n
 * elements. The group_flags below (with the EXCLUDE_ bits of io_flags)
 * say otherwise, as compile-time constants of the specialised bodies:
 * GROUP_ROWS: row r reads rows_x[r] and writes rows_y[r] (the block of
 *   masked lines of general/blocks.c, or causal rows sorted by length);
 * GROUP_LENGTHS: row r is the op on its first length[r] elements, then the
 *   fill (0, log-softmax -inf) to stride (a causal prefix, as prefix_rows);
 * EXCLUDE_*: the exclusions of row r (keep[r], mask[r], kept[r]) applied
 *   as it is read, the excluded elements read as `excluded`: bit for bit
 *   the gathered row with them written in;
 * GROUP_CHECKED: keep[r] and mask[r] may be NULL (none), tested per read;
 * GROUP_AFFINE: row r's keep and mask are keep_first + r * keep_step and
 *   mask_first + r * mask_step bytes (NULL if absent), not keep[r] and
 *   mask[r]: LANES lines of one run (see excluding_groups), with x and y
 *   plain rows of one stride, need no per-row pointers. */
#ifndef GROUP_ROWS
#define GROUP_ROWS 2048
#define GROUP_LENGTHS 4096
#define GROUP_CHECKED 8192
#define EXCLUDING (EXCLUDE_KEEP | EXCLUDE_MASK | EXCLUDE_HALF | EXCLUDE_PREFIX)
/* GROUP_MASKED_LOADS: a whole vector of one `where` or one f32 0 / -inf
 * mask is read as a masked load (see group_read). Set for the small rows
 * only: in the tiny ones (one read of each row, its length known at run
 * time) it measured slower. */
#define GROUP_MASKED_LOADS 32768
#define GROUP_AFFINE 131072
#endif

typedef struct row_group {
    const T *rows_x[LANES];
    T *rows_y[LANES];
    size_t length[LANES];
    const uint8_t *keep[LANES];
    const void *mask[LANES]; /* T (EXCLUDE_MASK) or half bits (EXCLUDE_HALF) */
    size_t kept[LANES];
    const uint8_t *keep_first; /* GROUP_AFFINE */
    const char *mask_first;
    int64_t keep_step;
    int64_t mask_step; /* bytes */
    T excluded;
    uint16_t half_minus_inf;
} row_group;

/* Row r's keep bytes and mask (NULL if absent). */
static SOFTMAX_FORCE_INLINE const uint8_t *group_keep(const row_group *g, int flags, size_t r)
{
    if (flags & GROUP_AFFINE)
        return g->keep_first != NULL ? g->keep_first + (int64_t)r * g->keep_step : NULL;
    return g->keep[r];
}

static SOFTMAX_FORCE_INLINE const void *group_mask(const row_group *g, int flags, size_t r)
{
    if (flags & GROUP_AFFINE)
        return g->mask_first != NULL ? g->mask_first + (int64_t)r * g->mask_step : NULL;
    return g->mask[r];
}

static SOFTMAX_FORCE_INLINE const T *group_x(const T *x, size_t stride, const row_group *g, int flags, size_t r)
{
    return (flags & GROUP_ROWS) ? g->rows_x[r] : x + r * stride;
}

static SOFTMAX_FORCE_INLINE T *group_y(T *y, size_t stride, const row_group *g, int flags, size_t r)
{
    return (flags & GROUP_ROWS) ? g->rows_y[r] : y + r * stride;
}

/* The number of elements the op runs on in row r. */
static SOFTMAX_FORCE_INLINE size_t group_length(size_t n, const row_group *g, int flags, size_t r)
{
    return (flags & GROUP_LENGTHS) ? g->length[r] : n;
}

/* count (<= LANES) elements of row r (at `row`) from element i, `fill` in
 * the other lanes, the row's exclusions applied. */
static SOFTMAX_FORCE_INLINE V group_read(const T *row, const row_group *g, int flags, size_t r, size_t i, size_t count,
                                         T fill)
{
#if defined(HALF_ROWS) && defined(SOFTMAX_VEC_AVX512_H)
    /* One `where` or one 0 / -inf mask over a whole vector: the test of
     * the mask becomes the mask of the load (the excluded lanes get
     * `excluded`, the others x: the bits of P(exclude)), one operation and
     * one load fewer per vector. A local form: the vocabulary has no
     * masked load of this kind (T is float here). */
    if ((flags & GROUP_MASKED_LOADS) && count == LANES && (flags & EXCLUDING) == EXCLUDE_KEEP &&
        !(flags & GROUP_CHECKED)) {
        const __mmask16 kept = _mm_cmpneq_epi8_mask(
            _mm_loadu_si128((const __m128i *)(const void *)(group_keep(g, flags, r) + i)), _mm_setzero_si128());
        return _mm512_mask_loadu_ps(_mm512_set1_ps(g->excluded), kept, row + i);
    }
    if ((flags & GROUP_MASKED_LOADS) && count == LANES && (flags & EXCLUDING) == EXCLUDE_MASK &&
        !(flags & GROUP_CHECKED)) {
        const __mmask16 kept = _mm512_cmp_ps_mask(_mm512_loadu_ps((const T *)group_mask(g, flags, r) + i),
                                                  _mm512_set1_ps(-INFINITY), _CMP_NEQ_UQ);
        return _mm512_mask_loadu_ps(_mm512_set1_ps(g->excluded), kept, row + i);
    }
    if ((flags & GROUP_MASKED_LOADS) && count == LANES && (flags & EXCLUDING) == EXCLUDE_HALF &&
        !(flags & GROUP_CHECKED)) {
        /* A bf16 / f16 mask: its -inf entries by their bit pattern. */
        const __mmask16 kept = _mm256_cmpneq_epi16_mask(
            _mm256_loadu_si256((const __m256i *)(const void *)((const uint16_t *)group_mask(g, flags, r) + i)),
            _mm256_set1_epi16((short)g->half_minus_inf));
        return _mm512_mask_loadu_ps(_mm512_set1_ps(g->excluded), kept, row + i);
    }
#endif
    V v = count == LANES ? P(load)(row + i) : P(load_tail)(row + i, count, fill);
#if defined(HALF_ROWS)
    if (flags & EXCLUDING) {
        const size_t kept = g->kept[r];
        const size_t limit = !(flags & EXCLUDE_PREFIX) ? count : i >= kept ? 0 : kept - i < count ? kept - i : count;
        const bool checked = (flags & GROUP_CHECKED) != 0;
        const uint8_t *row_keep = group_keep(g, flags, r);
        const void *row_mask = group_mask(g, flags, r);
        const uint8_t *keep = (flags & EXCLUDE_KEEP) && (!checked || row_keep != NULL) ? row_keep + i : NULL;
        const T *mask = (flags & EXCLUDE_MASK) && (!checked || row_mask != NULL) ? (const T *)row_mask + i : NULL;
        const uint16_t *half_mask =
            (flags & EXCLUDE_HALF) && (!checked || row_mask != NULL) ? (const uint16_t *)row_mask + i : NULL;
        v = P(exclude)(v, keep, mask, half_mask, g->half_minus_inf, P(set1)(g->excluded), limit);
    }
#else
    (void)g, (void)flags, (void)r;
#endif
    return v;
}

/* The per-row constants of a group of LANES rows (the grouped tiny, small
 * and added-bias rows), from each row's lanewise maximum lanes[r]
 * (transposed here, in place): row r's maximum, offset (floor(c max) - 1)
 * and exp floor in lane r, also stored per row. Returns the lanes the SIMD
 * path can take: a finite maximum and an offset within OFFSET_LIMIT.
 * lane_constants is its part after the maxima (row r's in lane r of m). */
static SOFTMAX_FORCE_INLINE unsigned lane_constants(V m, T c_hi, T c_lo, T inverse_c, V *offset, V *x_floor)
{
    const V o = P(sub)(P(floor)(P(fmadd)(P(set1)(c_hi), m, P(mul)(P(set1)(c_lo), m))), P(set1)((T)1));
    *x_floor = P(mul)(P(sub)(o, P(set1)((T)EXP_FLOOR_ARG)), P(set1)(inverse_c));
    *offset = o;
    return P(finite_lanes)(m) & P(lanes_below)(P(max)(o, P(neg)(o)), P(set1)((T)OFFSET_LIMIT));
}

static SOFTMAX_FORCE_INLINE unsigned group_constants(V lanes[LANES], T c_hi, T c_lo, T inverse_c, V *row_max, V *offset,
                                                     T maxima[LANES], T offsets[LANES], T floors[LANES])
{
    P(transpose)(lanes);
    V m = lanes[0];
    for (size_t j = 1; j < LANES; j++)
        m = P(max)(lanes[j], m);
    V x_floor;
    const unsigned usable = lane_constants(m, c_hi, c_lo, inverse_c, offset, &x_floor);
    P(store)(maxima, m);
    P(store)(offsets, *offset);
    P(store)(floors, x_floor);
    *row_max = m;
    return usable;
}

/* The rows' split sums in lanes (lane r = row r), from each row's lanewise
 * partial sums highs[r], lows[r] (transposed here, in place): the high
 * parts added exactly, the low parts in the fixed tree of
 * P(butterfly_sum). Returns the lanes of which both are finite. */
static SOFTMAX_FORCE_INLINE unsigned group_sums(V highs[LANES], V lows[LANES], V *high, V *low)
{
    P(transpose)(highs);
    P(transpose)(lows);
    V h = highs[0];
    for (size_t j = 1; j < LANES; j++)
        h = P(add)(h, highs[j]);
    for (size_t half = LANES / 2; half > 0; half /= 2)
        for (size_t j = 0; j < half; j++)
            lows[j] = P(add)(lows[j], lows[j + half]);
    *high = h;
    *low = lows[0];
    return P(finite_lanes)(h) & P(finite_lanes)(lows[0]);
}
