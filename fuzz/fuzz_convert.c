/*
 * fuzz_convert.c -- softmax_convert() between every pair of types (and
 * invalid ones), with in-place, partly overlapping and NULL buffers.
 *
 * Checked: every output value is the source value rounded to nearest even
 * in the destination type, computed here independently (exactly, in double,
 * with gradual underflow and overflow to inf); NaN stays NaN and the sign
 * of zeros and infinities is kept. A call that fails leaves dst untouched
 * and explains itself; invalid types, NULL with n > 0, in place with types
 * of different sizes, and partial overlap must fail.
 */
#include "fuzz_common.h"

enum { MAX_N = 300 };
enum { MODE_SEPARATE, MODE_IN_PLACE, MODE_OVERLAP, MODE_NULL_SRC, MODE_NULL_DST, MODE_COUNT };

/* Round-to-nearest-even of v to a binary format with p significand bits,
 * minimum normal exponent emin and maximum exponent emax. */
static double round_to_format(double v, int p, int emin, int emax)
{
    if (isnan(v) || isinf(v) || v == 0)
        return v;
    int e;
    frexp(v, &e); /* |v| in [2^(e-1), 2^e) */
    const int exponent = (e - 1) > emin ? e - 1 : emin;
    const int quantum = exponent - (p - 1);
    const double rounded = ldexp(nearbyint(ldexp(v, -quantum)), quantum);
    if (fabs(rounded) >= ldexp(1.0, emax + 1))
        return rounded > 0 ? INFINITY : -INFINITY;
    return rounded;
}

static double expected_value(double v, softmax_dtype to)
{
    switch (to) {
    case SOFTMAX_DTYPE_F64:
        return v;
    case SOFTMAX_DTYPE_F32:
        return round_to_format(v, 24, -126, 127);
    case SOFTMAX_DTYPE_BF16:
        return round_to_format(v, 8, -126, 127);
    default:
        return round_to_format(v, 11, -14, 15);
    }
}

static softmax_dtype decode_type(uint8_t b)
{
    static const softmax_dtype types[8] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64,  SOFTMAX_DTYPE_BF16, SOFTMAX_DTYPE_F16,
                                           SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_BF16, (softmax_dtype)0,   (softmax_dtype)5};
    return types[b & 7];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader reader = {data, size, 0};
    const uint8_t types = take_u8(&reader);
    const softmax_dtype from = decode_type(types), to = decode_type(types >> 3);
    const int mode = (types >> 6) | ((take_u8(&reader) & 1) << 2);
    const size_t n = take_u16(&reader) % (MAX_N + 1);
    const int types_valid = dtype_bytes(from) != 0 && dtype_bytes(to) != 0;
    const size_t from_size = dtype_bytes(from) ? dtype_bytes(from) : 4;
    const size_t to_size = dtype_bytes(to) ? dtype_bytes(to) : 4;

    /* One arena holds src and, in the aliasing modes, dst. */
    const size_t arena_bytes = (n + 2) * 8;
    uint8_t *arena = malloc(arena_bytes);
    memset(arena, FUZZ_SENTINEL, arena_bytes);
    uint8_t *src = arena;
    for (size_t i = 0; i < n; i++) {
        if (from == SOFTMAX_DTYPE_F64) {
            const double v = take_f64(&reader);
            memcpy(src + i * 8, &v, 8);
        } else if (from == SOFTMAX_DTYPE_F32 || !types_valid) {
            const float v = take_f32(&reader);
            memcpy(src + i * 4, &v, 4);
        } else {
            const uint16_t v = take_half_bits(&reader, from);
            memcpy(src + i * 2, &v, 2);
        }
    }
    uint8_t *src_copy = malloc(arena_bytes);
    memcpy(src_copy, arena, arena_bytes);

    uint8_t *separate = malloc(n * to_size + 8);
    memset(separate, FUZZ_SENTINEL, n * to_size + 8);
    uint8_t *dst = separate;
    const void *src_arg = src;
    int must_fail = !types_valid && n > 0;
    switch (mode % MODE_COUNT) {
    case MODE_IN_PLACE:
        dst = src;
        must_fail |= from_size != to_size && n > 0;
        break;
    case MODE_OVERLAP:
        /* dst starts one dst element into src: they overlap for n >= 2
         * (n == 1 with a wider dst too). */
        dst = src + to_size;
        must_fail |= n * from_size > to_size;
        break;
    case MODE_NULL_SRC:
        src_arg = NULL;
        must_fail |= n > 0;
        break;
    case MODE_NULL_DST:
        dst = NULL;
        must_fail |= n > 0;
        break;
    default:
        break;
    }
    if (!types_valid)
        must_fail = 1; /* an unknown type is an error even for n == 0 ... */
    const int status = softmax_convert(dst, to, src_arg, from, n);
    if (!types_valid && status == SOFTMAX_OK && n == 0)
        must_fail = 0; /* ... or, with nothing to convert, a success: both read the contract */
    if (must_fail)
        FUZZ_CHECK(status != SOFTMAX_OK, "convert %d -> %d of %zu (mode %d) should fail", from, to, n, mode);
    if (status != SOFTMAX_OK) {
        check_error_message("softmax_convert", status);
        FUZZ_CHECK(memcmp(arena, src_copy, arena_bytes) == 0, "a failed convert wrote into src");
        FUZZ_CHECK(bytes_are_sentinel(separate, n * to_size + 8), "a failed convert wrote into dst");
        goto done;
    }
    FUZZ_CHECK(softmax_last_error()[0] == '\0', "success with a non-empty softmax_last_error()");
    if (dst == NULL || n == 0)
        goto done;
    if (dst != src)
        FUZZ_CHECK(memcmp(arena, src_copy, arena_bytes) == 0 || dst == arena + to_size, "convert wrote into src");
    FUZZ_CHECK(dst != separate || bytes_are_sentinel(separate + n * to_size, 8), "convert wrote past dst");
    for (size_t i = 0; i < n; i++) {
        const double in = load_as_double(src_copy, from, (int64_t)i);
        const double want = expected_value(in, to);
        const double got = load_as_double(dst, to, (int64_t)i);
        if (isnan(want)) {
            FUZZ_CHECK(isnan(got), "convert %d -> %d: NaN became %a", from, to, got);
            continue;
        }
        FUZZ_CHECK(got == want && signbit(got) == signbit(want), "convert %d -> %d: %a gave %a, expected %a", from, to,
                   in, got, want);
    }
done:
    free(separate);
    free(src_copy);
    free(arena);
    return 0;
}
