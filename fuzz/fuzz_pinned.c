/*
 * fuzz_pinned.c -- the rows x cols entry points: softmax, log-softmax, their
 * backward functions and the log-softmax JVP (f32 and f64), and the full
 * Jacobians, on hostile rows and any scale (0, negative, infinite, NaN).
 *
 * Input: [op/type/mode][rows/flags][cols][scale][values...]. What is checked
 * (each an exact consequence of the contract in softmax.h):
 *  - an error leaves the output bytes as they were and explains itself;
 *    NULL, rows * cols overflow and partial overlap give their statuses;
 *  - softmax: a row with a NaN is all NaN; otherwise values in [0, 1], a
 *    fully masked row all zero, any other row sums to 1 within
 *    (4 n + 8) ulp (the per-element bound summed), and the weak order of x
 *    is kept (reversed for scale < 0);
 *  - log-softmax: the same with <= 4 ulp(1) (0 within the accuracy bound),
 *    -inf for masked rows and exp() summed;
 *  - gradients: NaN in an input row gives a NaN row, a fully masked row or
 *    an infinite scale gives zeros, and proper inputs (y from the library's
 *    own forward call, bounded dy, bounded scale) give finite results;
 *  - the same bits in place as out of place, and for 1 and 2 threads (large,
 *    inputs only: smaller ones never split).
 */
#include "fuzz_common.h"

enum { OP_SOFTMAX, OP_LOG_SOFTMAX, OP_BACKWARD, OP_LOG_BACKWARD, OP_JVP, OP_JACOBIAN, OP_LOG_JACOBIAN, OP_COUNT };
/* BIG_ELEMENTS: 2 threads need at least 2 * 32768 elements (src/threads.c). */
enum { MAX_ROWS = 8, MAX_COLS = 255, MAX_JACOBIAN_N = 48, BIG_ELEMENTS = 65536, BIG_ONE_IN = 64 };
enum { MODE_NULL = 13, MODE_OVERFLOW = 14, MODE_OVERLAP = 15 };

static const char *const op_names[OP_COUNT] = {
    "softmax",         "log_softmax",      "softmax_backward",    "log_softmax_backward",
    "log_softmax_jvp", "softmax_jacobian", "log_softmax_jacobian"};

static int call_op(int op, int f64, const void *a, const void *b, void *out, size_t rows, size_t cols, double scale)
{
    if (f64) {
        switch (op) {
        case OP_SOFTMAX:
            return softmax_f64(a, out, rows, cols, scale);
        case OP_LOG_SOFTMAX:
            return log_softmax_f64(a, out, rows, cols, scale);
        case OP_BACKWARD:
            return softmax_backward_f64(a, b, out, rows, cols, scale);
        case OP_LOG_BACKWARD:
            return log_softmax_backward_f64(a, b, out, rows, cols, scale);
        case OP_JVP:
            return log_softmax_jvp_f64(a, b, out, rows, cols, scale);
        case OP_JACOBIAN:
            return softmax_jacobian_f64(a, cols, scale, out);
        default:
            return log_softmax_jacobian_f64(a, cols, scale, out);
        }
    }
    const float s = (float)scale; /* scale was decoded as an f32 value */
    switch (op) {
    case OP_SOFTMAX:
        return softmax_f32(a, out, rows, cols, s);
    case OP_LOG_SOFTMAX:
        return log_softmax_f32(a, out, rows, cols, s);
    case OP_BACKWARD:
        return softmax_backward_f32(a, b, out, rows, cols, s);
    case OP_LOG_BACKWARD:
        return log_softmax_backward_f32(a, b, out, rows, cols, s);
    case OP_JVP:
        return log_softmax_jvp_f32(a, b, out, rows, cols, s);
    case OP_JACOBIAN:
        return softmax_jacobian_f32(a, cols, s, out);
    default:
        return log_softmax_jacobian_f32(a, cols, s, out);
    }
}

typedef struct case_data {
    int op;
    int f64;
    size_t rows, cols, elements, out_elements, esize;
    double scale;
    void *a, *b;                /* x, y or logy; dy or v */
    int proper_gradient_inputs; /* y or logy from a forward call, dy bounded */
    int bounded_scale;          /* and |scale| <= 2^20: finite results expected */
} case_data;

static double value_at(const case_data *c, const void *buffer, size_t index)
{
    return load_as_double(buffer, c->f64 ? SOFTMAX_DTYPE_F64 : SOFTMAX_DTYPE_F32, (int64_t)index);
}

static void store_value(const case_data *c, void *buffer, size_t index, double value)
{
    if (c->f64)
        ((double *)buffer)[index] = value;
    else
        ((float *)buffer)[index] = (float)value; /* value came from this type */
}

/* Sorting indices by x, for the order check. */
static const double *sort_keys;
static int by_key(const void *p, const void *q)
{
    const double a = sort_keys[*(const size_t *)p], b = sort_keys[*(const size_t *)q];
    return (a > b) - (a < b);
}

/* x_i >= x_j implies y_i >= y_j (direction +1), or y_i <= y_j (-1). After
 * sorting by x, comparing neighbours covers every pair. */
static void check_order(const double *x, const double *y, size_t n, int direction, const char *name)
{
    size_t index[MAX_COLS];
    for (size_t j = 0; j < n; j++)
        index[j] = j;
    sort_keys = x;
    qsort(index, n, sizeof index[0], by_key);
    for (size_t k = 1; k < n; k++) {
        const size_t lo = index[k - 1], hi = index[k];
        if (x[lo] == x[hi])
            FUZZ_CHECK(y[lo] == y[hi], "%s: equal inputs %a give %a and %a", name, x[lo], y[lo], y[hi]);
        else if (direction > 0)
            FUZZ_CHECK(y[lo] <= y[hi], "%s: x %a < %a but y %a > %a", name, x[lo], x[hi], y[lo], y[hi]);
        else
            FUZZ_CHECK(y[lo] >= y[hi], "%s: x %a < %a but y %a < %a (scale < 0)", name, x[lo], x[hi], y[lo], y[hi]);
    }
}

static void check_forward_row(const case_data *c, const double *x, const double *y, size_t n)
{
    const char *name = op_names[c->op];
    const int log_op = c->op == OP_LOG_SOFTMAX;
    int any_nan = 0, all_minus_inf = 1, all_plus_inf = 1;
    for (size_t j = 0; j < n; j++) {
        any_nan |= isnan(x[j]);
        all_minus_inf &= x[j] == -INFINITY;
        all_plus_inf &= x[j] == INFINITY;
    }
    if (any_nan) {
        for (size_t j = 0; j < n; j++)
            FUZZ_CHECK(isnan(y[j]), "%s: a row with a NaN gave %a at %zu", name, y[j], j);
        return;
    }
    const int masked = all_minus_inf || (c->scale < 0 && all_plus_inf);
    long double sum = 0;
    for (size_t j = 0; j < n; j++) {
        FUZZ_CHECK(!isnan(y[j]), "%s: NaN at %zu without a NaN input (scale %a)", name, j, c->scale);
        if (masked) {
            FUZZ_CHECK(log_op ? y[j] == -INFINITY : y[j] == 0, "%s: fully masked row gave %a", name, y[j]);
            continue;
        }
        if (log_op) {
            /* <= 0 up to the accuracy bound: 4 ulp of max(|y|, 1) */
            FUZZ_CHECK(y[j] <= 4 * (c->f64 ? DBL_EPSILON : FLT_EPSILON), "%s: log-probability %a > 0", name, y[j]);
            sum += expl((long double)y[j]);
        } else {
            FUZZ_CHECK(y[j] >= 0 && y[j] <= 1, "%s: probability %a outside [0, 1]", name, y[j]);
            sum += y[j];
        }
    }
    if (!masked) {
        const double eps = c->f64 ? DBL_EPSILON : FLT_EPSILON;
        const double tiny = c->f64 ? DBL_MIN : FLT_MIN; /* flushed sub-normal outputs */
        const double bound = (4.0 * (double)n + 8.0) * eps + (double)n * tiny;
        FUZZ_CHECK(fabsl(sum - 1) <= bound, "%s: row of %zu sums to 1 + %Lg (bound %g, scale %a)", name, n, sum - 1,
                   bound, c->scale);
    }
    if (c->scale != 0)
        check_order(x, y, n, c->scale > 0 ? 1 : -1, name);
}

static void check_gradient_row(const case_data *c, const double *a, const double *b, const double *dx, size_t n)
{
    const char *name = op_names[c->op];
    int any_nan = 0, masked = 1;
    for (size_t j = 0; j < n; j++) {
        any_nan |= isnan(a[j]) || isnan(b[j]);
        masked &= c->op == OP_BACKWARD ? a[j] == 0 : a[j] == -INFINITY;
    }
    /* The zero rules hold for any inputs, also ones that are not a forward
     * result (an infinite dy or v, an infinite y, a logy so large that exp()
     * overflows): the kernels decide them from the inputs, not from the
     * reduction, where 0 * inf would be NaN. A NaN input wins over them. */
    if (any_nan) {
        for (size_t j = 0; j < n; j++)
            FUZZ_CHECK(isnan(dx[j]), "%s: a row with a NaN gave %a at %zu", name, dx[j], j);
        return;
    }
    if (masked || isinf(c->scale)) {
        for (size_t j = 0; j < n; j++)
            FUZZ_CHECK(dx[j] == 0, "%s: %s gave %a at %zu", name, masked ? "a fully masked row" : "an infinite scale",
                       dx[j], j);
        return;
    }
    if (c->proper_gradient_inputs && c->bounded_scale)
        for (size_t j = 0; j < n; j++)
            FUZZ_CHECK(isfinite(dx[j]), "%s: proper inputs gave %a at %zu (scale %a)", name, dx[j], j, c->scale);
}

static void check_jacobian(const case_data *c, const void *out)
{
    const size_t n = c->cols;
    int any_nan = 0, masked = 1;
    for (size_t j = 0; j < n; j++) {
        const double v = value_at(c, c->a, j);
        any_nan |= isnan(v);
        masked &= v == -INFINITY;
    }
    const int zeros_expected = !any_nan && (isinf(c->scale) || (c->op == OP_LOG_JACOBIAN && masked));
    if (!zeros_expected)
        return;
    for (size_t k = 0; k < n * n; k++)
        FUZZ_CHECK(value_at(c, out, k) == 0, "%s: expected zeros, entry %zu is %a", op_names[c->op], k,
                   value_at(c, out, k));
}

static void check_results(const case_data *c, const void *out)
{
    if (c->op >= OP_JACOBIAN) {
        check_jacobian(c, out);
        return;
    }
    double a[MAX_COLS], b[MAX_COLS], y[MAX_COLS];
    /* Big inputs repeat the first MAX_ROWS rows: checking those is enough,
     * the others are compared for equal bits with the single-thread run. */
    const size_t rows = c->rows < MAX_ROWS ? c->rows : MAX_ROWS;
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < c->cols; j++) {
            a[j] = value_at(c, c->a, r * c->cols + j);
            b[j] = c->b ? value_at(c, c->b, r * c->cols + j) : 0;
            y[j] = value_at(c, out, r * c->cols + j);
        }
        if (c->op <= OP_LOG_SOFTMAX)
            check_forward_row(c, a, y, c->cols);
        else
            check_gradient_row(c, a, b, y, c->cols);
    }
}

/* Modes that must fail: the status, the message, the untouched output. */
static void run_error_mode(case_data *c, int mode, void *out, size_t out_bytes)
{
    const int grad_op = c->op >= OP_BACKWARD && c->op <= OP_JVP;
    int status, expected;
    size_t rows = c->rows;
    if (mode == MODE_NULL) {
        status = call_op(c->op, c->f64, NULL, c->b, out, rows, c->cols, c->scale);
        expected = SOFTMAX_E_NULL_POINTER;
    } else if (mode == MODE_OVERFLOW) {
        if (c->cols < 2)
            return;
        if (c->op >= OP_JACOBIAN) {
            /* n * n overflows with n = 2^32 (checked before any pointer use) */
            status = call_op(c->op, c->f64, c->a, NULL, out, 1, (size_t)1 << 32, c->scale);
        } else {
            rows = SIZE_MAX / c->cols + 1;
            status = call_op(c->op, c->f64, c->a, c->b, out, rows, c->cols, c->scale);
        }
        expected = SOFTMAX_E_SIZE_OVERFLOW;
    } else {
        /* The output starts one element into the input it would overwrite:
         * out is not used, a buffer of elements + 1 holds both. */
        if (c->elements < 2)
            return;
        void *shared = grad_op ? c->b : c->a;
        const size_t bytes = c->elements * c->esize;
        uint8_t *before = malloc(bytes);
        memcpy(before, shared, bytes);
        status = call_op(c->op, c->f64, c->a, c->b, (char *)shared + c->esize, c->rows, c->cols, c->scale);
        FUZZ_CHECK(status == SOFTMAX_E_OVERLAP || (isnan(c->scale) && status == SOFTMAX_E_INVALID_SCALE),
                   "%s: partial overlap returned %d", op_names[c->op], status);
        FUZZ_CHECK(memcmp(before, shared, bytes) == 0, "%s: a failed call with overlap wrote to its buffers",
                   op_names[c->op]);
        free(before);
        check_error_message(op_names[c->op], status);
        return;
    }
    if (isnan(c->scale) && status == SOFTMAX_E_INVALID_SCALE)
        expected = status; /* both are wrong: either report is right */
    if (c->elements == 0 && mode == MODE_NULL)
        expected = isnan(c->scale) ? SOFTMAX_E_INVALID_SCALE : SOFTMAX_OK;
    FUZZ_CHECK(status == expected, "%s: mode %d returned %d, expected %d", op_names[c->op], mode, status, expected);
    FUZZ_CHECK(bytes_are_sentinel(out, out_bytes), "%s: a call that wrote nothing valid changed the output",
               op_names[c->op]);
    if (status != SOFTMAX_OK)
        check_error_message(op_names[c->op], status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader reader = {data, size, 0};
    const uint8_t head = take_u8(&reader);
    const uint8_t flags = take_u8(&reader);
    case_data c = {0};
    c.op = (head & 7) % OP_COUNT;
    c.f64 = (head >> 3) & 1;
    const int mode = head >> 4;
    /* Rare on purpose (1 input in 32 by the flags, and of those 1 in 64 by
     * the hash of the input): a big input costs a thousand small ones. */
    const int big = (flags & 0xf8) == 0xf8 && c.op < OP_JACOBIAN && fuzz_input_is_rare(data, size, BIG_ONE_IN);
    const int raw_gradient_inputs = (flags & 0x40) != 0;
    const size_t data_rows = 1 + (size_t)(flags & 7);
    c.cols = take_u8(&reader);
    if (c.op >= OP_JACOBIAN) {
        c.cols %= MAX_JACOBIAN_N + 1;
        c.rows = 1;
    } else {
        c.rows = data_rows;
        if (big && c.cols > 0)
            c.rows = (BIG_ELEMENTS + c.cols - 1) / c.cols;
    }
    c.esize = c.f64 ? sizeof(double) : sizeof(float);
    c.scale = c.f64 ? take_f64(&reader) : (double)take_f32(&reader);
    c.elements = c.rows * c.cols;
    c.out_elements = c.op >= OP_JACOBIAN ? c.cols * c.cols : c.elements;
    const size_t input_rows = c.op >= OP_JACOBIAN ? 1 : data_rows;
    const int grad_op = c.op >= OP_BACKWARD && c.op <= OP_JVP;

    /* One spare element so that the overlap mode can shift the output. */
    c.a = malloc((c.elements + 1) * c.esize);
    c.b = grad_op ? malloc((c.elements + 1) * c.esize) : NULL;
    for (size_t k = 0; k < input_rows * c.cols; k++)
        store_value(&c, c.a, k, c.f64 ? take_f64(&reader) : take_f32(&reader));
    if (grad_op)
        for (size_t k = 0; k < input_rows * c.cols; k++)
            store_value(&c, c.b, k, c.f64 ? take_f64(&reader) : take_f32(&reader));

    if (grad_op && !raw_gradient_inputs) {
        /* y or logy from the library's own forward call, dy bounded: then
         * the gradient must come out finite for a bounded scale. */
        void *forward = malloc(input_rows * c.cols * c.esize + 1);
        const int status = call_op(c.op == OP_BACKWARD ? OP_SOFTMAX : OP_LOG_SOFTMAX, c.f64, c.a, NULL, forward,
                                   input_rows, c.cols, 1.0);
        FUZZ_CHECK(status == SOFTMAX_OK, "forward call for the gradient inputs returned %d", status);
        memcpy(c.a, forward, input_rows * c.cols * c.esize);
        free(forward);
        for (size_t k = 0; k < input_rows * c.cols; k++) {
            const double v = value_at(&c, c.b, k);
            store_value(&c, c.b, k, !isfinite(v) ? 0.0 : fabs(v) > 0x1p20 ? copysign(0x1p20, v) : v);
        }
        c.proper_gradient_inputs = 1;
        c.bounded_scale = isfinite(c.scale) && fabs(c.scale) <= 0x1p20;
    }
    /* Big inputs repeat the decoded rows. */
    for (size_t k = input_rows * c.cols; k < c.elements; k++) {
        memcpy((char *)c.a + k * c.esize, (char *)c.a + (k % (input_rows * c.cols)) * c.esize, c.esize);
        if (c.b)
            memcpy((char *)c.b + k * c.esize, (char *)c.b + (k % (input_rows * c.cols)) * c.esize, c.esize);
    }

    const size_t out_bytes = c.out_elements * c.esize + 1;
    void *out = malloc(out_bytes);
    memset(out, FUZZ_SENTINEL, out_bytes);
    if (mode >= MODE_NULL) {
        run_error_mode(&c, mode, out, out_bytes);
        goto done;
    }

    softmax_set_num_threads(1);
    const int status = call_op(c.op, c.f64, c.a, c.b, out, c.rows, c.cols, c.scale);
    if (isnan(c.scale) && (c.out_elements != 0 || status != SOFTMAX_OK)) {
        FUZZ_CHECK(status == SOFTMAX_E_INVALID_SCALE, "%s: NaN scale returned %d", op_names[c.op], status);
        FUZZ_CHECK(bytes_are_sentinel(out, out_bytes), "%s: NaN scale wrote to the output", op_names[c.op]);
        check_error_message(op_names[c.op], status);
        goto done;
    }
    FUZZ_CHECK(status == SOFTMAX_OK, "%s: valid call returned %d (%s)", op_names[c.op], status, softmax_last_error());
    FUZZ_CHECK(((uint8_t *)out)[out_bytes - 1] == FUZZ_SENTINEL, "%s: wrote past the output", op_names[c.op]);
    if (c.out_elements == 0)
        FUZZ_CHECK(bytes_are_sentinel(out, out_bytes), "%s: an empty call wrote", op_names[c.op]);
    check_results(&c, out);

    const size_t bytes = c.out_elements * c.esize;
    if (big) {
        void *out2 = malloc(out_bytes);
        memset(out2, FUZZ_SENTINEL, out_bytes);
        softmax_set_num_threads(2);
        FUZZ_CHECK(call_op(c.op, c.f64, c.a, c.b, out2, c.rows, c.cols, c.scale) == SOFTMAX_OK, "2 threads failed");
        softmax_set_num_threads(1);
        FUZZ_CHECK(memcmp(out, out2, out_bytes) == 0, "%s: 2 threads give other bits than 1", op_names[c.op]);
        free(out2);
    }
    if (c.op < OP_JACOBIAN && c.elements != 0) {
        /* In place: the output replaces each allowed input in turn. */
        for (int which = 0; which < (grad_op ? 2 : 1); which++) {
            void *inplace = malloc(bytes);
            memcpy(inplace, which == 0 ? c.a : c.b, bytes);
            const void *a = which == 0 ? inplace : c.a;
            const void *b = which == 1 ? inplace : c.b;
            FUZZ_CHECK(call_op(c.op, c.f64, a, b, inplace, c.rows, c.cols, c.scale) == SOFTMAX_OK,
                       "%s: in-place call failed", op_names[c.op]);
            FUZZ_CHECK(memcmp(inplace, out, bytes) == 0, "%s: in place (over input %d) gives other bits",
                       op_names[c.op], which);
            free(inplace);
        }
    }
done:
    free(out);
    free(c.a);
    free(c.b);
    return 0;
}
