#include "testutil.h"

#include "reference.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const softmax_dtype test_dtypes[2] = {SOFTMAX_DTYPE_F32, SOFTMAX_DTYPE_F64};

/* ---------------------------------------------------------------- random */

void rng_seed(test_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

uint64_t rng_next(test_rng *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double rng_uniform(test_rng *rng)
{
    return (double)(rng_next(rng) >> 11) * 0x1p-53;
}

double rng_range(test_rng *rng, double lo, double hi)
{
    return lo + (hi - lo) * rng_uniform(rng);
}

double rng_normal(test_rng *rng)
{
    /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - rng_uniform(rng);
    double u2 = rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

size_t rng_below(test_rng *rng, size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next(rng) % n);
}

/* ---------------------------------------------------------------- dtypes */

size_t dtype_size(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F64 ? sizeof(double) : dt == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t);
}
int dtype_precision(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? FLT_MANT_DIG : DBL_MANT_DIG;
}
const char *dtype_name(softmax_dtype dt)
{
    switch (dt) {
    case SOFTMAX_DTYPE_F32:
        return "f32";
    case SOFTMAX_DTYPE_F64:
        return "f64";
    case SOFTMAX_DTYPE_BF16:
        return "bf16";
    default:
        return "f16";
    }
}
double dtype_eps(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? FLT_EPSILON : DBL_EPSILON;
}
double dtype_min_normal(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? FLT_MIN : DBL_MIN;
}
double dtype_true_min(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? 0x1p-149 : 0x1p-1074;
}
double dtype_max(softmax_dtype dt)
{
    return dt == SOFTMAX_DTYPE_F32 ? FLT_MAX : DBL_MAX;
}

double dtype_round(softmax_dtype dt, double v)
{
    if (dt == SOFTMAX_DTYPE_F32) {
        /* Out-of-range conversions are spelled out instead of relying on
         * Annex F, so that UBSan never sees them. */
        if (v > FLT_MAX || v < -FLT_MAX) {
            if (fabs(v) < (double)FLT_MAX + 0x1p103) /* below FLT_MAX + ulp/2 */
                return v > 0 ? FLT_MAX : -FLT_MAX;
            return v > 0 ? INFINITY : -INFINITY;
        }
        return (double)(float)v;
    }
    return v;
}

void *buf_alloc(softmax_dtype dt, size_t n)
{
    void *p = malloc((n ? n : 1) * dtype_size(dt));
    if (!p) {
        fprintf(stderr, "test: out of memory allocating %zu elements\n", n);
        abort();
    }
    return p;
}

double buf_get(softmax_dtype dt, const void *buf, size_t i)
{
    return dt == SOFTMAX_DTYPE_F32 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
}

void buf_set(softmax_dtype dt, void *buf, size_t i, double v)
{
    if (dt == SOFTMAX_DTYPE_F32)
        ((float *)buf)[i] = (float)dtype_round(dt, v);
    else
        ((double *)buf)[i] = v;
}

void *buf_at(softmax_dtype dt, void *buf, size_t i)
{
    return (char *)buf + i * dtype_size(dt);
}
const void *buf_cat(softmax_dtype dt, const void *buf, size_t i)
{
    return (const char *)buf + i * dtype_size(dt);
}

int buf_bits_equal(softmax_dtype dt, const void *a, size_t i, const void *b, size_t j)
{
    return memcmp(buf_cat(dt, a, i), buf_cat(dt, b, j), dtype_size(dt)) == 0;
}

void fill_sentinel(void *buf, size_t bytes)
{
    memset(buf, SENTINEL_BYTE, bytes);
}

int is_sentinel(const void *buf, size_t bytes)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < bytes; i++)
        if (p[i] != SENTINEL_BYTE)
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- calls */

double scale_as(softmax_dtype dt, double scale)
{
    return isnan(scale) ? scale : dtype_round(dt, scale);
}

int call_forward(softmax_dtype dt, int log, const void *x, void *y, size_t rows, size_t cols, double scale)
{
    if (dt == SOFTMAX_DTYPE_F32) {
        float s = (float)scale_as(dt, scale);
        return log ? log_softmax_f32(x, y, rows, cols, s) : softmax_f32(x, y, rows, cols, s);
    }
    return log ? log_softmax_f64(x, y, rows, cols, scale) : softmax_f64(x, y, rows, cols, scale);
}

int call_grad(softmax_op op, softmax_dtype dt, const void *a, const void *b, void *out, size_t rows, size_t cols,
              double scale)
{
    if (dt == SOFTMAX_DTYPE_F32) {
        float s = (float)scale_as(dt, scale);
        switch (op) {
        case SOFTMAX_OP_SOFTMAX_BACKWARD:
            return softmax_backward_f32(a, b, out, rows, cols, s);
        case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
            return log_softmax_backward_f32(a, b, out, rows, cols, s);
        case SOFTMAX_OP_LOG_SOFTMAX_JVP:
            return log_softmax_jvp_f32(a, b, out, rows, cols, s);
        default:
            break;
        }
    } else {
        switch (op) {
        case SOFTMAX_OP_SOFTMAX_BACKWARD:
            return softmax_backward_f64(a, b, out, rows, cols, scale);
        case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
            return log_softmax_backward_f64(a, b, out, rows, cols, scale);
        case SOFTMAX_OP_LOG_SOFTMAX_JVP:
            return log_softmax_jvp_f64(a, b, out, rows, cols, scale);
        default:
            break;
        }
    }
    fprintf(stderr, "call_grad: not a gradient op: %d\n", (int)op);
    abort();
}

int call_jacobian(softmax_dtype dt, int log, const void *y, size_t n, double scale, void *jacobian)
{
    if (dt == SOFTMAX_DTYPE_F32) {
        float s = (float)scale_as(dt, scale);
        return log ? log_softmax_jacobian_f32(y, n, s, jacobian) : softmax_jacobian_f32(y, n, s, jacobian);
    }
    return log ? log_softmax_jacobian_f64(y, n, scale, jacobian) : softmax_jacobian_f64(y, n, scale, jacobian);
}

const char *op_name(softmax_op op)
{
    switch (op) {
    case SOFTMAX_OP_SOFTMAX:
        return "softmax";
    case SOFTMAX_OP_LOG_SOFTMAX:
        return "log_softmax";
    case SOFTMAX_OP_SOFTMAX_BACKWARD:
        return "softmax_backward";
    case SOFTMAX_OP_LOG_SOFTMAX_BACKWARD:
        return "log_softmax_backward";
    case SOFTMAX_OP_LOG_SOFTMAX_JVP:
        return "log_softmax_jvp";
    }
    return "?";
}

void set_threads_or_fail(int n)
{
    int rc = softmax_set_num_threads(n);
    if (rc != SOFTMAX_OK)
        fail_msg("softmax_set_num_threads(%d) = %d (%s)", n, rc, softmax_strerror(rc));
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int isa_prologue(void)
{
    const char *forced = getenv("SOFTMAX_ISA");
    const char *name = softmax_isa_name();
    if (name == NULL) {
        if (forced && (!strcmp(forced, "scalar") || !strcmp(forced, "avx2") || !strcmp(forced, "avx512") ||
                       !strcmp(forced, "neon"))) {
            printf("SKIP: SOFTMAX_ISA=%s is not available on this CPU\n", forced);
            return TEST_SKIP_CODE;
        }
        fprintf(stderr, "softmax_isa_name() is NULL (SOFTMAX_ISA=%s): %s\n", forced ? forced : "(unset)",
                softmax_last_error());
        return 1;
    }
    if (forced && forced[0] != '\0' && strcmp(forced, name) != 0) {
        fprintf(stderr, "SOFTMAX_ISA=%s but the library runs \"%s\"\n", forced, name);
        return 1;
    }
    ref_use_simd_bounds(strcmp(name, "scalar") != 0);
    printf("code path: %s%s; accuracy bound %.0f ulp (f32), %.0f ulp (f64)\n", name,
           forced && forced[0] ? " (forced by SOFTMAX_ISA)" : "", contract_ulp_bound(SOFTMAX_DTYPE_F32),
           contract_ulp_bound(SOFTMAX_DTYPE_F64));
    fflush(stdout);
    return 0;
}
