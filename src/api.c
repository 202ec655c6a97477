/*
 * api.c -- the public entry points: the planner (planner.c) checks every
 * argument before any output is touched and chooses the route; the
 * contiguous one-type routes run here (the tensor as [outer, n, inner], its
 * lines split over threads, each unit handed to a kernel), the others in
 * the general pipeline (src/general/).
 */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "general.h"
#include "internal.h"

static bool op_takes_grad(softmax_op op)
{
    return op == SOFTMAX_OP_SOFTMAX_BACKWARD || op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD ||
           op == SOFTMAX_OP_LOG_SOFTMAX_JVP;
}

/* a * b, or false if it overflows size_t. */
static bool checked_multiply(size_t a, size_t b, size_t *product)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *product = a * b;
    return true;
}

/* The routes of one type, contiguous and unmasked: rows, fast rows or
 * columns of the tensor seen as [outer, n, inner]. */
typedef struct job {
    softmax_op op;
    const softmax_kernels *kernels;
    const char *src;
    const char *grad;
    char *dst;
    size_t outer;
    size_t n;
    size_t inner;
    size_t elements;
    double scale;
    bool fast; /* SOFTMAX_ROUTE_FAST_ROWS */
} job;

/* Work units: blocks of contiguous rows (inner == 1) or, for a non-last
 * axis, chunks of adjacent lines of one outer slice. */
static size_t unit_count(const job *work)
{
    if (work->inner == 1)
        return work->outer;
    const size_t chunk = work->kernels->column_chunk;
    return work->outer * ((work->inner + chunk - 1) / chunk);
}

static void run_units(const job *work, size_t first, size_t last)
{
    const softmax_kernels *k = work->kernels;
    const size_t n = work->n;
    const size_t inner = work->inner;
    const size_t element_size = k->element_size;
    if (inner == 1) {
        size_t offset = first * n * element_size;
        if (work->fast) {
            k->fast_rows(work->op, work->src + offset, work->dst + offset, last - first, n, work->scale);
            return;
        }
        k->rows(work->op, work->src + offset, work->grad ? work->grad + offset : NULL, work->dst + offset, last - first,
                n, work->scale);
        return;
    }
    const size_t chunk = k->column_chunk;
    const size_t chunks_per_slice = (inner + chunk - 1) / chunk;
    /* The units of one slice in one call: the kernel overlaps the reads of
     * a chunk with the work of the one before (a line's result depends on
     * its own chunk only). */
    for (size_t unit = first, stop; unit < last; unit = stop) {
        size_t slice = unit / chunks_per_slice;
        stop = (slice + 1) * chunks_per_slice < last ? (slice + 1) * chunks_per_slice : last;
        size_t j_begin = (unit % chunks_per_slice) * chunk;
        size_t j_end = j_begin + (stop - unit) * chunk < inner ? j_begin + (stop - unit) * chunk : inner;
        size_t offset = slice * n * inner * element_size;
        k->columns(work->op, work->src + offset, work->grad ? work->grad + offset : NULL, work->dst + offset, n, inner,
                   j_begin, j_end, work->scale);
    }
}

/* Every unit is computed by exactly one thread with the same code, and a
 * long row's blocks are fixed by its length, so results do not depend on
 * the thread count. */
static void run_job(const job *work)
{
    const size_t units = unit_count(work);
    const bool single_long_row =
        !work->fast && work->inner == 1 && units == 1 && work->n >= work->kernels->long_row_min;
    const int threads = softmax_threads_for_job(work->elements, single_long_row ? work->elements : units);
    if (single_long_row && threads > 1) {
        work->kernels->long_row(work->op, work->src, work->grad, work->dst, work->n, work->scale, threads);
        return;
    }
    if (threads == 1) {
        run_units(work, 0, units);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    {
        const size_t team = (size_t)omp_get_num_threads();
        const size_t member = (size_t)omp_get_thread_num();
        const size_t base = units / team;
        const size_t extra = units % team;
        const size_t first = member * base + (member < extra ? member : extra);
        const size_t count = base + (member < extra ? 1 : 0);
        run_units(work, first, first + count);
    }
#else
    run_units(work, 0, units); /* unreachable: one thread without OpenMP */
#endif
}

static int execute(const char *fn, const softmax_desc *desc, const void *src, const void *grad, void *dst)
{
    general_plan plan;
    const int status = softmax_plan_call(fn, desc, src, grad, dst, &plan);
    if (status != SOFTMAX_OK)
        return status;
    switch (plan.route) {
    case SOFTMAX_ROUTE_EMPTY:
        return SOFTMAX_OK;
    case SOFTMAX_ROUTE_ROWS:
    case SOFTMAX_ROUTE_FAST_ROWS:
    case SOFTMAX_ROUTE_COLUMNS: {
        const job work = {
            .op = plan.op,
            .kernels = plan.kernels,
            .src = src,
            .grad = op_takes_grad(plan.op) ? grad : NULL,
            .dst = dst,
            .outer = plan.outer,
            .n = plan.n,
            .inner = plan.inner,
            .elements = plan.elements,
            .scale = plan.scale,
            .fast = plan.route == SOFTMAX_ROUTE_FAST_ROWS,
        };
        run_job(&work);
        return SOFTMAX_OK;
    }
    default:
        return softmax_general_run(&plan);
    }
}

int softmax_desc_init(softmax_desc *desc, softmax_op op, softmax_dtype dtype, size_t n)
{
    softmax_clear_error();
    RETURN_ERROR_IF(desc == NULL, SOFTMAX_E_NULL_POINTER, "softmax_desc_init: desc is NULL");
    memset(desc, 0, sizeof *desc);
    desc->op = op;
    desc->dtype = dtype;
    desc->ndim = 1;
    desc->axis = -1;
    desc->shape[0] = n;
    desc->scale = 1.0;
    desc->head_axis = -3;
    return SOFTMAX_OK;
}

/*
 * The lean route of small forward calls (the pinned forward entry points,
 * and softmax_execute on a plain descriptor): a small call that every check
 * of the planner would pass goes straight to the kernels' rows() (or
 * fast_rows()), which is what the planner's route (SOFTMAX_ROUTE_ROWS or
 * SOFTMAX_ROUTE_FAST_ROWS) and run_job would call for it, with the same
 * arguments, so the bits are the same. Anything else -- an empty or large
 * tensor, a NULL pointer, a NaN scale, buffers that overlap other than
 * exactly (in place), a forced code path this CPU lacks, any field of a
 * descriptor beyond the plain ones -- takes the full planner, which reports
 * it with its status and message.
 *
 * "Small" keeps the call on the calling thread: run_job gives a job of
 * fewer than MIN_ELEMENTS_PER_THREAD (threads.c, 32768) elements one
 * thread whatever the thread setting, and the bits never depend on the
 * thread count anyway.
 */
enum { LEAN_MAX_ELEMENTS = 4096 };

static inline bool lean_call_is_valid(const void *x, const void *y, size_t rows, size_t cols, size_t element_size,
                                      double scale)
{
    /* rows * cols cannot overflow once both are at most LEAN_MAX_ELEMENTS
     * (and no division is needed to bound it). */
    if (x == NULL || y == NULL || isnan(scale) || rows == 0 || cols == 0 || rows > LEAN_MAX_ELEMENTS ||
        cols > LEAN_MAX_ELEMENTS || rows * cols > LEAN_MAX_ELEMENTS)
        return false;
    const size_t bytes = rows * cols * element_size;
    const uintptr_t x_begin = (uintptr_t)x, y_begin = (uintptr_t)y;
    const uintptr_t x_end = x_begin + bytes, y_end = y_begin + bytes;
    if (x_end < x_begin || y_end < y_begin)
        return false; /* reaches past the end of the address space */
    return x == y || x_end <= y_begin || y_end <= x_begin;
}

/* Runs `rows` contiguous rows of `cols` elements on the lean route and
 * returns true, or returns false, having done nothing, for a call the
 * planner must see. */
static bool run_lean(softmax_op op, softmax_dtype dtype, const void *x, void *y, size_t rows, size_t cols, double scale,
                     bool fast)
{
    const size_t element_size = dtype == SOFTMAX_DTYPE_F32 ? sizeof(float) : sizeof(double);
    if (!lean_call_is_valid(x, y, rows, cols, element_size, scale))
        return false;
    const softmax_path *path = softmax_ready_path();
    if (path == NULL)
        return false;
    softmax_clear_error();
    const softmax_kernels *kernels = dtype == SOFTMAX_DTYPE_F32 ? path->f32 : path->f64;
    /* The planner's choice of the fast route: f32 work on a path that has
     * the fast mode. */
    if (fast && dtype == SOFTMAX_DTYPE_F32 && (kernels->capabilities & SOFTMAX_KERNELS_FAST_MODE))
        kernels->fast_rows(op, x, y, rows, cols, scale);
    else
        kernels->rows(op, x, NULL, y, rows, cols, scale);
    return true;
}

/* A descriptor of a forward op on contiguous f32 or f64 data, unmasked,
 * whose extents after the axis are all 1 (as the Python package describes
 * a last-axis call: [outer, n, 1], axis 1), of at most LEAN_MAX_ELEMENTS
 * elements, every other field at its default: its rows and row length.
 * Fields the planner would reject (an unknown flag, a reserved word, a NaN
 * max_bias) all fail these tests too.
 *
 * This test is most of what a small softmax_execute() call costs beyond
 * the kernel, so it is written to run straight through: the fields that
 * must be zero are or-ed together and tested once, and the extents are
 * folded without early exits. */
static bool lean_descriptor(const softmax_desc *desc, size_t *rows, size_t *cols)
{
    if (desc == NULL)
        return false;
    uint64_t must_be_zero = (uintptr_t)desc->src_strides | (uintptr_t)desc->dst_strides | (uintptr_t)desc->mask |
                            (uintptr_t)desc->mask_strides | (uintptr_t)desc->where | (uintptr_t)desc->where_strides |
                            (uint64_t)(unsigned)desc->causal | (desc->flags & ~(uint64_t)SOFTMAX_FLAG_FAST);
    for (size_t i = 0; i < sizeof desc->reserved / sizeof desc->reserved[0]; i++)
        must_be_zero |= desc->reserved[i];
    const int ndim = desc->ndim;
    if (must_be_zero != 0 || (desc->op != SOFTMAX_OP_SOFTMAX && desc->op != SOFTMAX_OP_LOG_SOFTMAX) ||
        (desc->dtype != SOFTMAX_DTYPE_F32 && desc->dtype != SOFTMAX_DTYPE_F64) ||
        (desc->dst_dtype != 0 && desc->dst_dtype != desc->dtype) || !(desc->max_bias == 0) || ndim < 1 ||
        ndim > SOFTMAX_MAX_NDIM || desc->axis < -ndim || desc->axis >= ndim)
        return false;
    const int axis = desc->axis < 0 ? desc->axis + ndim : desc->axis;
    /* outer: the product of the extents before the axis, each at most
     * LEAN_MAX_ELEMENTS and the running product checked at every step, so
     * that it never overflows; `beyond` collects what the extents after
     * the axis differ from 1. */
    size_t outer = 1, too_large = 0, beyond = 0;
    for (int d = 0; d < axis; d++) {
        const size_t extent = desc->shape[d];
        too_large |= extent > LEAN_MAX_ELEMENTS;
        outer *= extent > LEAN_MAX_ELEMENTS ? 0 : extent;
        too_large |= outer > LEAN_MAX_ELEMENTS;
        outer = outer > LEAN_MAX_ELEMENTS ? 0 : outer;
    }
    for (int d = axis + 1; d < ndim; d++)
        beyond |= desc->shape[d] ^ 1;
    if (too_large || beyond != 0)
        return false;
    *rows = outer;
    *cols = desc->shape[axis];
    return true;
}

int softmax_execute(const softmax_desc *desc, const void *src, const void *grad, void *dst)
{
    size_t rows = 0, cols = 0;
    if (lean_descriptor(desc, &rows, &cols) &&
        run_lean(desc->op, desc->dtype, src, dst, rows, cols, desc->scale, (desc->flags & SOFTMAX_FLAG_FAST) != 0))
        return SOFTMAX_OK;
    softmax_clear_error();
    return execute("softmax_execute", desc, src, grad, dst);
}

/* ---- pinned rows x cols entry points ---- */

static int run_matrix(const char *fn, softmax_op op, softmax_dtype dtype, const void *src, const void *grad, void *dst,
                      size_t rows, size_t cols, double scale)
{
    softmax_clear_error();
    softmax_desc desc;
    softmax_desc_init(&desc, op, dtype, cols);
    desc.ndim = 2;
    desc.shape[0] = rows;
    desc.shape[1] = cols;
    desc.scale = scale;
    return execute(fn, &desc, src, grad, dst);
}

static int run_forward(const char *fn, softmax_op op, softmax_dtype dtype, const void *x, void *y, size_t rows,
                       size_t cols, double scale)
{
    if (run_lean(op, dtype, x, y, rows, cols, scale, false))
        return SOFTMAX_OK;
    return run_matrix(fn, op, dtype, x, NULL, y, rows, cols, scale);
}

int softmax_f32(const float *x, float *y, size_t rows, size_t cols, float scale)
{
    return run_forward(__func__, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F32, x, y, rows, cols, scale);
}

int softmax_f64(const double *x, double *y, size_t rows, size_t cols, double scale)
{
    return run_forward(__func__, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, x, y, rows, cols, scale);
}

int log_softmax_f32(const float *x, float *y, size_t rows, size_t cols, float scale)
{
    return run_forward(__func__, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F32, x, y, rows, cols, scale);
}

int log_softmax_f64(const double *x, double *y, size_t rows, size_t cols, double scale)
{
    return run_forward(__func__, SOFTMAX_OP_LOG_SOFTMAX, SOFTMAX_DTYPE_F64, x, y, rows, cols, scale);
}

int softmax_backward_f32(const float *y, const float *dy, float *dx, size_t rows, size_t cols, float scale)
{
    return run_matrix(__func__, SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32, y, dy, dx, rows, cols, scale);
}

int softmax_backward_f64(const double *y, const double *dy, double *dx, size_t rows, size_t cols, double scale)
{
    return run_matrix(__func__, SOFTMAX_OP_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F64, y, dy, dx, rows, cols, scale);
}

int log_softmax_backward_f32(const float *logy, const float *dy, float *dx, size_t rows, size_t cols, float scale)
{
    return run_matrix(__func__, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F32, logy, dy, dx, rows, cols, scale);
}

int log_softmax_backward_f64(const double *logy, const double *dy, double *dx, size_t rows, size_t cols, double scale)
{
    return run_matrix(__func__, SOFTMAX_OP_LOG_SOFTMAX_BACKWARD, SOFTMAX_DTYPE_F64, logy, dy, dx, rows, cols, scale);
}

int log_softmax_jvp_f32(const float *logy, const float *v, float *dlogy, size_t rows, size_t cols, float scale)
{
    return run_matrix(__func__, SOFTMAX_OP_LOG_SOFTMAX_JVP, SOFTMAX_DTYPE_F32, logy, v, dlogy, rows, cols, scale);
}

int log_softmax_jvp_f64(const double *logy, const double *v, double *dlogy, size_t rows, size_t cols, double scale)
{
    return run_matrix(__func__, SOFTMAX_OP_LOG_SOFTMAX_JVP, SOFTMAX_DTYPE_F64, logy, v, dlogy, rows, cols, scale);
}

/* ---- full Jacobians ---- */

typedef enum jacobian_kind { SOFTMAX_JACOBIAN, LOG_SOFTMAX_JACOBIAN } jacobian_kind;

static int run_jacobian(const char *fn, jacobian_kind kind, softmax_dtype dtype, const void *src, size_t n,
                        double scale, void *jacobian)
{
    softmax_clear_error();
    int status = SOFTMAX_OK;
    if (softmax_dispatch(dtype, fn, &status) == NULL)
        return status;
    const softmax_line_kernels *kernels = dtype == SOFTMAX_DTYPE_F32 ? &softmax_ref_lines_f32 : &softmax_ref_lines_f64;
    const char *src_name = kind == SOFTMAX_JACOBIAN ? "y" : "logy";
    RETURN_ERROR_IF(isnan(scale), SOFTMAX_E_INVALID_SCALE, "%s: scale is NaN", fn);
    size_t entries = 0;
    size_t jacobian_bytes = 0;
    RETURN_ERROR_IF(!checked_multiply(n, n, &entries) ||
                        !checked_multiply(entries, kernels->element_size, &jacobian_bytes),
                    SOFTMAX_E_SIZE_OVERFLOW, "%s: n * n Jacobian entries for n = %zu overflow size_t", fn, n);
    /* No object is larger than PTRDIFF_MAX bytes: a larger Jacobian is a
     * wrong n, not an overlap (which its byte range would also claim). */
    RETURN_ERROR_IF(jacobian_bytes > (size_t)PTRDIFF_MAX, SOFTMAX_E_SIZE_OVERFLOW,
                    "%s: the Jacobian for n = %zu would take %zu bytes, more than any object", fn, n, jacobian_bytes);
    if (n == 0)
        return SOFTMAX_OK;
    RETURN_ERROR_IF(src == NULL, SOFTMAX_E_NULL_POINTER, "%s: %s is NULL", fn, src_name);
    RETURN_ERROR_IF(jacobian == NULL, SOFTMAX_E_NULL_POINTER, "%s: jacobian is NULL", fn);
    uintptr_t src_start = (uintptr_t)src;
    uintptr_t jacobian_start = (uintptr_t)jacobian;
    size_t src_bytes = n * kernels->element_size;
    RETURN_ERROR_IF(src_start < jacobian_start + jacobian_bytes && jacobian_start < src_start + src_bytes,
                    SOFTMAX_E_OVERLAP, "%s: jacobian overlaps %s", fn, src_name);
    if (kind == SOFTMAX_JACOBIAN)
        kernels->softmax_jacobian(src, n, scale, jacobian);
    else
        kernels->log_softmax_jacobian(src, n, scale, jacobian);
    return SOFTMAX_OK;
}

int softmax_jacobian_f32(const float *y, size_t n, float scale, float *jacobian)
{
    return run_jacobian(__func__, SOFTMAX_JACOBIAN, SOFTMAX_DTYPE_F32, y, n, scale, jacobian);
}

int softmax_jacobian_f64(const double *y, size_t n, double scale, double *jacobian)
{
    return run_jacobian(__func__, SOFTMAX_JACOBIAN, SOFTMAX_DTYPE_F64, y, n, scale, jacobian);
}

int log_softmax_jacobian_f32(const float *logy, size_t n, float scale, float *jacobian)
{
    return run_jacobian(__func__, LOG_SOFTMAX_JACOBIAN, SOFTMAX_DTYPE_F32, logy, n, scale, jacobian);
}

int log_softmax_jacobian_f64(const double *logy, size_t n, double scale, double *jacobian)
{
    return run_jacobian(__func__, LOG_SOFTMAX_JACOBIAN, SOFTMAX_DTYPE_F64, logy, n, scale, jacobian);
}
