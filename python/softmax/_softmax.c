/*
 * _softmax.c -- the CPython extension over include/softmax.h.
 *
 * One entry point, execute(), runs any softmax_op on NumPy arrays; the pure
 * Python layer (softmax/_core.py) turns torch tensors into NumPy views of the
 * same memory and back, so this file only knows NumPy. Every argument is
 * checked before any output is touched: bad input raises TypeError or
 * ValueError with the reason, and a failed call leaves `out` as it was.
 *
 * The library may or may not take strides, half types and masks (they land
 * in stages); a probe at import says which, and what it cannot take is made
 * contiguous here (strides) or refused (types, masks; the Python layer has a
 * fallback for masks).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "softmax.h"

/* What this build of the library accepts, probed once at import. */
static bool library_takes_strides;
static bool library_takes_f16;
static bool library_takes_bf16;
static bool library_takes_masks;

/* Below this many elements a call takes well under a microsecond, less than
 * handing the GIL over and back costs; above it the GIL is released so that
 * other Python threads run while the library computes. */
#define RELEASE_GIL_MIN_ELEMENTS 4096

static bool op_is_known(long op)
{
    return op >= SOFTMAX_OP_SOFTMAX && op <= SOFTMAX_OP_LOG_SOFTMAX_JVP;
}

static bool op_takes_grad(softmax_op op)
{
    return op == SOFTMAX_OP_SOFTMAX_BACKWARD || op == SOFTMAX_OP_LOG_SOFTMAX_BACKWARD ||
           op == SOFTMAX_OP_LOG_SOFTMAX_JVP;
}

static const char *src_name_of(softmax_op op)
{
    switch (op) {
    case SOFTMAX_OP_SOFTMAX:
    case SOFTMAX_OP_LOG_SOFTMAX:
        return "x";
    case SOFTMAX_OP_SOFTMAX_BACKWARD:
        return "y";
    default:
        return "logy";
    }
}

/* The Python function an op comes from, for the messages. */
static const char *function_name_of(softmax_op op)
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
    default:
        return "log_softmax_jvp";
    }
}

static const char *dtype_name(softmax_dtype dtype)
{
    switch (dtype) {
    case SOFTMAX_DTYPE_F32:
        return "float32";
    case SOFTMAX_DTYPE_F64:
        return "float64";
    case SOFTMAX_DTYPE_BF16:
        return "bfloat16";
    case SOFTMAX_DTYPE_F16:
        return "float16";
    }
    return "?";
}

/* The supported types, for error messages. */
static const char *supported_dtypes(void)
{
    if (library_takes_f16 && library_takes_bf16)
        return "float32, float64, float16 and bfloat16";
    if (library_takes_f16)
        return "float32, float64 and float16";
    return "float32 and float64";
}

/* The library's type for a NumPy array; `bf16_bits` says that a 16-bit
 * integer array holds bfloat16 bit patterns (NumPy has no bfloat16: the
 * Python layer passes torch.bfloat16 tensors as int16 views). 0 if none. */
static softmax_dtype dtype_of(PyArrayObject *array, bool bf16_bits)
{
    const int type = PyArray_TYPE(array);
    if (bf16_bits)
        return (type == NPY_INT16 || type == NPY_UINT16) && library_takes_bf16 ? SOFTMAX_DTYPE_BF16 : 0;
    if (type == NPY_FLOAT32)
        return SOFTMAX_DTYPE_F32;
    if (type == NPY_FLOAT64)
        return SOFTMAX_DTYPE_F64;
    if (type == NPY_FLOAT16 && library_takes_f16)
        return SOFTMAX_DTYPE_F16;
    return 0;
}

static PyArrayObject *as_array(PyObject *object, const char *fn, const char *name)
{
    if (!PyArray_Check(object)) {
        /* Tensors arrive here as NumPy views, so only a mix of kinds (a
         * NumPy x with a tensor out=, say) or a non-array gets here. */
        const bool is_first_operand = strcmp(name, "x") == 0 || strcmp(name, "y") == 0 || strcmp(name, "logy") == 0;
        PyErr_Format(PyExc_TypeError, "%s: %s must be a %s, not %.200s", fn, name,
                     is_first_operand ? "numpy.ndarray or a torch.Tensor" : "numpy.ndarray like the input",
                     Py_TYPE(object)->tp_name);
        return NULL;
    }
    PyArrayObject *array = (PyArrayObject *)object;
    if (!PyArray_ISNOTSWAPPED(array)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: %s is in non-native byte order; convert it with %s.astype(%s.dtype.newbyteorder('='))", fn,
                     name, name, name);
        return NULL;
    }
    return array;
}

static bool same_shape(PyArrayObject *a, PyArrayObject *b)
{
    return PyArray_NDIM(a) == PyArray_NDIM(b) &&
           PyArray_CompareLists(PyArray_DIMS(a), PyArray_DIMS(b), PyArray_NDIM(a));
}

/* Checks that `other` (grad, out, mask) has the shape of src; the message
 * shows both shapes. */
static int check_shape(PyArrayObject *src, PyArrayObject *other, const char *fn, const char *src_name,
                       const char *other_name)
{
    if (same_shape(src, other))
        return 0;
    PyObject *src_shape = PyObject_GetAttrString((PyObject *)src, "shape");
    PyObject *other_shape = PyObject_GetAttrString((PyObject *)other, "shape");
    if (src_shape != NULL && other_shape != NULL)
        PyErr_Format(PyExc_ValueError, "%s: %s has shape %R but %s has shape %R; they must be equal", fn, other_name,
                     other_shape, src_name, src_shape);
    Py_XDECREF(src_shape);
    Py_XDECREF(other_shape);
    return -1;
}

/* The lowest and one-past-highest byte an array touches. */
static void byte_bounds(PyArrayObject *array, uintptr_t *low, uintptr_t *high)
{
    uintptr_t start = (uintptr_t)PyArray_DATA(array);
    intptr_t below = 0;
    intptr_t above = 0;
    for (int d = 0; d < PyArray_NDIM(array); d++) {
        const intptr_t span = (intptr_t)(PyArray_DIM(array, d) - 1) * (intptr_t)PyArray_STRIDE(array, d);
        if (span < 0)
            below += span;
        else
            above += span;
    }
    *low = start + (uintptr_t)below;
    *high = start + (uintptr_t)above + (uintptr_t)PyArray_ITEMSIZE(array);
}

/* True if writing `out` in place could clobber `in` before it is read:
 * their bytes intersect and, where the library allows exact aliasing (x
 * and the gradient: exact_alias_allowed), they are not the same view. The
 * library refuses an output that is a mask, even exactly. */
static bool conflicts(PyArrayObject *out, PyArrayObject *in, bool exact_alias_allowed)
{
    if (in == NULL || PyArray_SIZE(out) == 0 || PyArray_SIZE(in) == 0)
        return false;
    if (exact_alias_allowed && PyArray_DATA(out) == PyArray_DATA(in) && same_shape(out, in) &&
        PyArray_CompareLists(PyArray_STRIDES(out), PyArray_STRIDES(in), PyArray_NDIM(out)) &&
        PyArray_ITEMSIZE(out) == PyArray_ITEMSIZE(in))
        return false;
    uintptr_t out_low, out_high, in_low, in_high;
    byte_bounds(out, &out_low, &out_high);
    byte_bounds(in, &in_low, &in_high);
    return out_low < in_high && in_low < out_high;
}

/* Strides in elements, as the library takes them; false if a byte stride
 * is not a whole number of elements (then the array is copied). */
static bool element_strides(PyArrayObject *array, int64_t *strides)
{
    const npy_intp itemsize = PyArray_ITEMSIZE(array);
    for (int d = 0; d < PyArray_NDIM(array); d++) {
        const npy_intp stride = PyArray_STRIDE(array, d);
        if (stride % itemsize != 0)
            return false;
        strides[d] = (int64_t)(stride / itemsize);
    }
    return true;
}

/* An operand as the library will read or write it: the array (a new
 * reference: the caller's, or a contiguous copy) and its strides. */
typedef struct operand {
    PyArrayObject *array;
    int64_t strides[SOFTMAX_MAX_NDIM];
    bool strided; /* pass strides; otherwise the array is C-contiguous */
} operand;

/* Prepares an input: zero-copy if the library can read its layout,
 * otherwise a C-contiguous aligned copy. */
static int prepare_input(operand *op, PyArrayObject *array)
{
    const bool aligned = PyArray_ISALIGNED(array);
    if (aligned && PyArray_IS_C_CONTIGUOUS(array)) {
        Py_INCREF(array);
        op->array = array;
        op->strided = false;
        return 0;
    }
    if (aligned && library_takes_strides && PyArray_NDIM(array) <= SOFTMAX_MAX_NDIM &&
        element_strides(array, op->strides)) {
        Py_INCREF(array);
        op->array = array;
        op->strided = true;
        return 0;
    }
    op->array = (PyArrayObject *)PyArray_FromArray(array, NULL, NPY_ARRAY_CARRAY_RO | NPY_ARRAY_ENSURECOPY);
    op->strided = false;
    return op->array == NULL ? -1 : 0;
}

static void release_operand(operand *op)
{
    Py_XDECREF(op->array);
    op->array = NULL;
}

/* A C-contiguous array of src's shape and type. */
static PyArrayObject *new_like(PyArrayObject *src)
{
    PyArray_Descr *descr = PyArray_DESCR(src);
    Py_INCREF(descr);
    return (PyArrayObject *)PyArray_NewFromDescr(&PyArray_Type, descr, PyArray_NDIM(src), PyArray_DIMS(src), NULL, NULL,
                                                 0, NULL);
}

static PyObject *raise_status(int status, const char *fn)
{
    const char *detail = softmax_last_error();
    PyObject *type = status == SOFTMAX_E_OUT_OF_MEMORY ? PyExc_MemoryError : PyExc_ValueError;
    PyErr_Format(type, "%s: %s (%s)", fn, detail != NULL && detail[0] != '\0' ? detail : softmax_strerror(status),
                 softmax_strerror(status));
    return NULL;
}

/* Fills the descriptor's shape: with strides, the array's own; without,
 * the contiguous tensor seen as [outer, n, inner], which every library
 * version takes and which has no limit on the number of dimensions. */
static void describe_shape(softmax_desc *desc, PyArrayObject *src, int axis, bool strided)
{
    const int ndim = PyArray_NDIM(src);
    if (strided) {
        desc->ndim = ndim;
        desc->axis = axis;
        for (int d = 0; d < ndim; d++)
            desc->shape[d] = (size_t)PyArray_DIM(src, d);
        return;
    }
    size_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= (size_t)PyArray_DIM(src, d);
    for (int d = axis + 1; d < ndim; d++)
        inner *= (size_t)PyArray_DIM(src, d);
    desc->ndim = 3;
    desc->axis = 1;
    desc->shape[0] = outer;
    desc->shape[1] = (size_t)PyArray_DIM(src, axis);
    desc->shape[2] = inner;
}

typedef struct call_args {
    softmax_op op;
    const char *fn; /* the Python function, for messages */
    PyArrayObject *src, *grad, *out, *mask, *where;
    int axis;
    double scale;
    bool src_bf16, mask_bf16;
    bool fast; /* OP_FAST in the op argument: SOFTMAX_FLAG_FAST */
    softmax_dtype dtype, mask_dtype;
    bool causal; /* fused causal mask: keep j <= i + causal_offset */
    int64_t causal_offset;
    double max_bias; /* > 0: ALiBi over head_axis */
    int head_axis;
} call_args;

/* A bit in execute()'s op argument: the library's fast mode, passed as an
 * op bit so that every caller of execute() keeps its arity. */
#define OP_FAST_BIT 0x100L

static int parse_call(PyObject *const *args, Py_ssize_t nargs, call_args *call, const char *fn)
{
    if (nargs != 10 && nargs != 11) {
        PyErr_Format(PyExc_TypeError,
                     "%s takes 10 or 11 arguments (op, src, grad, out, axis, scale, src_bf16, mask, mask_bf16, where"
                     "[, (causal, causal_offset, max_bias, head_axis)])",
                     fn);
        return -1;
    }
    const long op_and_flags = PyLong_AsLong(args[0]);
    if (op_and_flags == -1 && PyErr_Occurred())
        return -1;
    const long op = op_and_flags & ~OP_FAST_BIT;
    call->fast = (op_and_flags & OP_FAST_BIT) != 0;
    if (!op_is_known(op)) {
        PyErr_Format(PyExc_ValueError, "%s: unknown op %ld", fn, op);
        return -1;
    }
    call->op = (softmax_op)op;
    /* Messages name the function called, not the extension's entry point. */
    fn = call->fn = function_name_of(call->op);
    const char *src_name = src_name_of(call->op);

    call->src = as_array(args[1], fn, src_name);
    if (call->src == NULL)
        return -1;
    call->src_bf16 = PyObject_IsTrue(args[6]) == 1;
    call->dtype = dtype_of(call->src, call->src_bf16);
    if (call->dtype == 0) {
        PyErr_Format(PyExc_TypeError, "%s: %s has dtype %S%s; supported: %s", fn, src_name,
                     (PyObject *)PyArray_DESCR(call->src), call->src_bf16 ? " (as bfloat16 bits)" : "",
                     supported_dtypes());
        return -1;
    }
    const int ndim = PyArray_NDIM(call->src);
    if (ndim == 0) {
        PyErr_Format(PyExc_ValueError, "%s: %s is 0-dimensional; softmax needs at least one axis", fn, src_name);
        return -1;
    }

    if (PyBool_Check(args[4])) { /* an int to Python, but axis=True is a mistake */
        PyErr_Format(PyExc_TypeError, "%s: axis must be an integer, not bool", fn);
        return -1;
    }
    PyObject *axis_object = PyNumber_Index(args[4]);
    if (axis_object == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: axis must be an integer, not %.200s", fn, Py_TYPE(args[4])->tp_name);
        return -1;
    }
    /* An axis beyond a C long is out of range like any other, not an
     * OverflowError. */
    int axis_overflow = 0;
    const long axis = PyLong_AsLongAndOverflow(axis_object, &axis_overflow);
    if (axis == -1 && PyErr_Occurred()) {
        Py_DECREF(axis_object);
        return -1;
    }
    if (axis_overflow != 0) {
        PyErr_Format(PyExc_ValueError, "%s: axis %S is out of range for %s with %d dimension%s (valid: %d..%d)", fn,
                     axis_object, src_name, ndim, ndim == 1 ? "" : "s", -ndim, ndim - 1);
        Py_DECREF(axis_object);
        return -1;
    }
    Py_DECREF(axis_object);
    if (axis < -ndim || axis >= ndim) {
        PyErr_Format(PyExc_ValueError, "%s: axis %ld is out of range for %s with %d dimension%s (valid: %d..%d)", fn,
                     axis, src_name, ndim, ndim == 1 ? "" : "s", -ndim, ndim - 1);
        return -1;
    }
    call->axis = (int)(axis < 0 ? axis + ndim : axis);

    if (PyBool_Check(args[5])) {
        PyErr_Format(PyExc_TypeError, "%s: scale must be a real number, not bool", fn);
        return -1;
    }
    call->scale = PyFloat_AsDouble(args[5]);
    if (call->scale == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "%s: scale must be a real number, not %.200s", fn, Py_TYPE(args[5])->tp_name);
        return -1;
    }
    if (isnan(call->scale)) {
        PyErr_Format(PyExc_ValueError, "%s: scale is NaN", fn);
        return -1;
    }

    call->grad = NULL;
    if (op_takes_grad(call->op)) {
        const char *grad_name = call->op == SOFTMAX_OP_LOG_SOFTMAX_JVP ? "v" : "dy";
        call->grad = as_array(args[2], fn, grad_name);
        if (call->grad == NULL || check_shape(call->src, call->grad, fn, src_name, grad_name) < 0)
            return -1;
        if (dtype_of(call->grad, call->src_bf16) != call->dtype) {
            PyErr_Format(PyExc_TypeError, "%s: %s has dtype %S but %s has dtype %s; they must be equal", fn, grad_name,
                         (PyObject *)PyArray_DESCR(call->grad), src_name, dtype_name(call->dtype));
            return -1;
        }
    }

    call->out = NULL;
    if (args[3] != Py_None) {
        call->out = as_array(args[3], fn, "out");
        if (call->out == NULL || check_shape(call->src, call->out, fn, src_name, "out") < 0)
            return -1;
        if (dtype_of(call->out, call->src_bf16) != call->dtype) {
            PyErr_Format(PyExc_TypeError, "%s: out has dtype %S but %s has dtype %s; they must be equal", fn,
                         (PyObject *)PyArray_DESCR(call->out), src_name, dtype_name(call->dtype));
            return -1;
        }
        if (!PyArray_ISWRITEABLE(call->out)) {
            PyErr_Format(PyExc_ValueError, "%s: out is read-only", fn);
            return -1;
        }
    }

    call->causal = false;
    call->causal_offset = 0;
    call->max_bias = 0.0;
    call->head_axis = -3;
    if (nargs == 11 && args[10] != Py_None) {
        int causal = 0;
        long long causal_offset = 0;
        if (!PyArg_ParseTuple(args[10], "pLdi", &causal, &causal_offset, &call->max_bias, &call->head_axis))
            return -1;
        call->causal = causal != 0;
        call->causal_offset = (int64_t)causal_offset;
        if (call->causal && call->axis == 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s: causal=True needs the query axis before `axis` (scores [..., q, k]); axis is 0", fn);
            return -1;
        }
    }

    call->mask = NULL;
    call->where = NULL;
    call->mask_bf16 = PyObject_IsTrue(args[8]) == 1;
    if ((args[7] != Py_None || args[9] != Py_None) && !library_takes_masks) {
        PyErr_Format(PyExc_NotImplementedError, "%s: this build of libsoftmax does not take masks", fn);
        return -1;
    }
    if (args[7] != Py_None) {
        call->mask = as_array(args[7], fn, "mask");
        if (call->mask == NULL || check_shape(call->src, call->mask, fn, src_name, "mask") < 0)
            return -1;
        call->mask_dtype = dtype_of(call->mask, call->mask_bf16);
        if (call->mask_dtype == 0) {
            PyErr_Format(PyExc_TypeError, "%s: an additive mask has dtype %S; supported: bool or %s", fn,
                         (PyObject *)PyArray_DESCR(call->mask), supported_dtypes());
            return -1;
        }
    }
    if (args[9] != Py_None) {
        call->where = as_array(args[9], fn, "mask");
        if (call->where == NULL || check_shape(call->src, call->where, fn, src_name, "mask") < 0)
            return -1;
        if (PyArray_TYPE(call->where) != NPY_BOOL && PyArray_TYPE(call->where) != NPY_UINT8) {
            PyErr_Format(PyExc_TypeError, "%s: a keep-mask must be bool or uint8", fn);
            return -1;
        }
    }
    return 0;
}

/* execute(op, src, grad, out, axis, scale, src_bf16, mask, mask_bf16, where)
 * -> out, or a new C-contiguous array of src's shape and type. */
static PyObject *execute(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    const char *fn = "softmax";
    call_args call = {0};
    if (parse_call(args, nargs, &call, fn) < 0)
        return NULL;

    operand src = {0}, grad = {0}, mask = {0}, where = {0}, dst = {0};
    PyArrayObject *result = NULL; /* what the call returns */
    PyObject *returned = NULL;
    bool copy_back = false;

    if (prepare_input(&src, call.src) < 0 || (call.grad != NULL && prepare_input(&grad, call.grad) < 0) ||
        (call.mask != NULL && prepare_input(&mask, call.mask) < 0) ||
        (call.where != NULL && prepare_input(&where, call.where) < 0))
        goto done;

    /* The output: out itself when the library can write its layout and
     * writing it cannot clobber an input still to be read; otherwise a
     * fresh array, copied into out after a successful call. */
    if (call.out != NULL) {
        result = call.out;
        Py_INCREF(result);
        const bool writable_layout =
            PyArray_ISALIGNED(call.out) && (PyArray_IS_C_CONTIGUOUS(call.out) ||
                                            (library_takes_strides && PyArray_NDIM(call.out) <= SOFTMAX_MAX_NDIM &&
                                             element_strides(call.out, dst.strides)));
        const bool safe = !conflicts(call.out, src.array, true) && !conflicts(call.out, grad.array, true) &&
                          !conflicts(call.out, mask.array, false) && !conflicts(call.out, where.array, false);
        if (writable_layout && safe) {
            dst.array = call.out;
            Py_INCREF(dst.array);
            dst.strided = !PyArray_IS_C_CONTIGUOUS(call.out);
        } else {
            copy_back = true;
        }
    }
    if (dst.array == NULL) {
        dst.array = new_like(call.src);
        if (dst.array == NULL)
            goto done;
        dst.strided = false;
        if (result == NULL) {
            result = dst.array;
            Py_INCREF(result);
        }
    }

    /* Causal masks and ALiBi index the query and head dimensions: they
     * need the real shape, not the [outer, n, inner] view. */
    const bool positional = call.causal || call.max_bias > 0.0;
    if (positional && PyArray_NDIM(call.src) > SOFTMAX_MAX_NDIM) {
        PyErr_Format(PyExc_ValueError, "%s: causal= and ALiBi take at most %d dimensions", call.fn, SOFTMAX_MAX_NDIM);
        goto done;
    }
    const bool strided = positional || src.strided || grad.strided || mask.strided || where.strided || dst.strided;
    softmax_desc desc;
    softmax_desc_init(&desc, call.op, call.dtype, 0);
    describe_shape(&desc, call.src, call.axis, strided);
    desc.scale = call.scale;
    desc.causal = call.causal;
    desc.causal_offset = call.causal_offset;
    desc.max_bias = call.max_bias;
    desc.head_axis = call.head_axis;
#ifdef SOFTMAX_FLAG_FAST
    desc.flags = call.fast ? SOFTMAX_FLAG_FAST : 0;
#endif
    if (strided) {
        /* One contiguous operand among strided ones still needs strides. */
        operand *all[] = {&src, &grad, &mask, &where, &dst};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (all[i]->array != NULL && !all[i]->strided)
                element_strides(all[i]->array, all[i]->strides);
        desc.src_strides = src.strides;
        desc.grad_strides = grad.array != NULL ? grad.strides : NULL;
        desc.dst_strides = dst.strides;
        desc.mask_strides = mask.array != NULL ? mask.strides : NULL;
        desc.where_strides = where.array != NULL ? where.strides : NULL;
    }
    if (mask.array != NULL) {
        desc.mask = PyArray_DATA(mask.array);
        desc.mask_dtype = call.mask_dtype;
    }
    if (where.array != NULL)
        desc.where = PyArray_DATA(where.array);

    const void *src_data = PyArray_DATA(src.array);
    const void *grad_data = grad.array != NULL ? PyArray_DATA(grad.array) : NULL;
    void *dst_data = PyArray_DATA(dst.array);
    int status;
    if (PyArray_SIZE(call.src) >= RELEASE_GIL_MIN_ELEMENTS) {
        PyThreadState *released = PyEval_SaveThread();
        status = softmax_execute(&desc, src_data, grad_data, dst_data);
        PyEval_RestoreThread(released);
    } else {
        status = softmax_execute(&desc, src_data, grad_data, dst_data);
    }
    if (status != SOFTMAX_OK) {
        raise_status(status, call.fn);
        goto done;
    }
    if (copy_back && PyArray_CopyInto(call.out, dst.array) < 0)
        goto done;
    returned = (PyObject *)result;
    result = NULL;

done:
    release_operand(&src);
    release_operand(&grad);
    release_operand(&mask);
    release_operand(&where);
    release_operand(&dst);
    Py_XDECREF(result);
    return returned;
}

/* Attribute and method names of torch.Tensor, interned once at import:
 * looking them up from C strings on every call would cost more than the
 * computation of a small softmax. */
static PyObject *name_data_ptr, *name_shape, *name_stride, *name_dtype, *name_requires_grad, *name_is_cpu, *name_layout,
    *name_is_neg, *name_new_empty, *name_current_level;

static int intern_names(void)
{
    const struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&name_data_ptr, "data_ptr"},
        {&name_shape, "shape"},
        {&name_stride, "stride"},
        {&name_dtype, "dtype"},
        {&name_requires_grad, "requires_grad"},
        {&name_is_cpu, "is_cpu"},
        {&name_layout, "layout"},
        {&name_is_neg, "is_neg"},
        {&name_new_empty, "new_empty"},
        {&name_current_level, "_current_level"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].text);
        if (*names[i].slot == NULL)
            return -1;
    }
    return 0;
}

/* tensor_view(tensor, dtype) -> a NumPy array over the tensor's memory.
 *
 * The Python layer has checked that the tensor is a dense CPU tensor whose
 * element type is `dtype` (a numpy.dtype of the same size). Tensor.numpy()
 * does the same but costs a detach() and about a microsecond; this reads
 * data_ptr(), shape and stride() and keeps the tensor alive as the array's
 * base. */
static PyObject *tensor_view(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyArray_DescrCheck(args[1])) {
        PyErr_SetString(PyExc_TypeError, "tensor_view(tensor, numpy.dtype)");
        return NULL;
    }
    PyObject *tensor = args[0];
    PyArray_Descr *descr = (PyArray_Descr *)args[1];
    npy_intp dims[NPY_MAXDIMS], strides[NPY_MAXDIMS];
    PyObject *pointer = NULL, *shape = NULL, *element_strides = NULL, *array = NULL;

    /* One call at a time: calling into torch with an exception set (a
     * tensor without storage fails data_ptr()) is a SystemError. */
    pointer = PyObject_CallMethodNoArgs(tensor, name_data_ptr);
    if (pointer == NULL)
        goto done;
    shape = PyObject_GetAttr(tensor, name_shape);
    if (shape == NULL)
        goto done;
    element_strides = PyObject_CallMethodNoArgs(tensor, name_stride);
    if (element_strides == NULL)
        goto done;
    const Py_ssize_t ndim = PyTuple_Check(shape) ? PyTuple_GET_SIZE(shape) : -1;
    if (ndim < 0 || ndim > NPY_MAXDIMS || !PyTuple_Check(element_strides) ||
        PyTuple_GET_SIZE(element_strides) != ndim) {
        PyErr_Format(PyExc_ValueError, "softmax: a tensor with %zd dimensions is not supported (at most %d)", ndim,
                     NPY_MAXDIMS);
        goto done;
    }
    for (Py_ssize_t d = 0; d < ndim; d++) {
        dims[d] = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, d));
        strides[d] = PyLong_AsSsize_t(PyTuple_GET_ITEM(element_strides, d)) * descr->elsize;
    }
    void *data = PyLong_AsVoidPtr(pointer);
    if (PyErr_Occurred())
        goto done;
    Py_INCREF(descr);
    array = PyArray_NewFromDescr(&PyArray_Type, descr, (int)ndim, dims, strides, data, NPY_ARRAY_WRITEABLE, NULL);
    if (array == NULL)
        goto done;
    Py_INCREF(tensor);
    if (PyArray_SetBaseObject((PyArrayObject *)array, tensor) < 0) {
        Py_CLEAR(array);
        goto done;
    }
    /* (Contiguity and alignment flags were computed from the strides and
     * the address by PyArray_NewFromDescr.) */

done:
    Py_XDECREF(pointer);
    Py_XDECREF(shape);
    Py_XDECREF(element_strides);
    return array;
}

/* What execute_tensor needs from torch, handed over by the Python layer
 * (register_torch) the first time it sees a tensor: this module never
 * imports torch itself. */
static PyObject *torch_tensor_type;      /* torch.Tensor */
static PyObject *torch_strided;          /* torch.strided */
static PyObject *torch_numpy_dtypes;     /* {torch.float32: numpy.dtype('float32'), ...}, no bfloat16 */
static PyObject *torch_tracing_state;    /* torch._C._get_tracing_state */
static PyObject *torch_profiler_enabled; /* torch._C._autograd._profiler_enabled */
static PyObject *torch_forward_ad;       /* the module torch.autograd.forward_ad */
static PyObject *torch_empty_like;       /* torch.empty_like */

static PyObject *register_torch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7 || !PyType_Check(args[0]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "register_torch(Tensor, strided, dtypes, get_tracing_state, "
                                         "profiler_enabled, forward_ad, empty_like)");
        return NULL;
    }
    PyObject **slots[] = {&torch_tensor_type,      &torch_strided,    &torch_numpy_dtypes, &torch_tracing_state,
                          &torch_profiler_enabled, &torch_forward_ad, &torch_empty_like};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(*slots[i], args[i]);
    }
    Py_RETURN_NONE;
}

/* 1 if object.name is `expected` (the same object), 0 if not, -1 on error. */
static int attribute_is(PyObject *object, PyObject *name, PyObject *expected)
{
    PyObject *value = PyObject_GetAttr(object, name);
    if (value == NULL)
        return -1;
    const int same = value == expected;
    Py_DECREF(value);
    return same;
}

/* 1 while torch.jit.trace records, the profiler runs or forward-mode AD is on
 * (then the Python layer decides: a trace must record the operator, a
 * profile name it, a dual tensor get its tangent), 0 if not, -1 on error. */
static int torch_is_watching(void)
{
    PyObject *state = PyObject_CallNoArgs(torch_tracing_state);
    if (state == NULL)
        return -1;
    const bool tracing = state != Py_None;
    Py_DECREF(state);
    if (tracing)
        return 1;
    PyObject *profiling = PyObject_CallNoArgs(torch_profiler_enabled);
    if (profiling == NULL)
        return -1;
    const int profiled = PyObject_IsTrue(profiling);
    Py_DECREF(profiling);
    if (profiled != 0)
        return profiled;
    PyObject *level = PyObject_GetAttr(torch_forward_ad, name_current_level);
    if (level == NULL)
        return -1;
    const long forward_level = PyLong_AsLong(level);
    Py_DECREF(level);
    if (forward_level == -1 && PyErr_Occurred())
        return -1;
    return forward_level >= 0;
}

/* execute_tensor(op, x, axis, scale) -> tensor, or NotImplemented.
 *
 * The short path for the common call on a tensor: softmax or log-softmax of
 * a dense CPU float tensor that needs no gradient, no mask and no out=.
 * Anything else returns NotImplemented and the Python layer takes over
 * (autograd, masks, out=, and the error messages). It exists because the
 * same steps in Python cost a few microseconds, more than torch.softmax
 * itself on a small tensor. */
static PyObject *execute_tensor(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "execute_tensor(op, x, axis, scale)");
        return NULL;
    }
    PyObject *x = args[1];
    if (torch_tensor_type == NULL || Py_TYPE(x) != (PyTypeObject *)torch_tensor_type)
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *dtype = PyObject_GetAttr(x, name_dtype);
    if (dtype == NULL)
        return NULL;
    PyObject *descr = PyDict_GetItemWithError(torch_numpy_dtypes, dtype); /* borrowed */
    Py_DECREF(dtype);
    if (descr == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    const int needs_no_grad = attribute_is(x, name_requires_grad, Py_False);
    const int on_cpu = attribute_is(x, name_is_cpu, Py_True);
    const int strided = attribute_is(x, name_layout, torch_strided);
    if (needs_no_grad < 0 || on_cpu < 0 || strided < 0)
        return NULL;
    /* requires_grad is left to the Python layer even under no_grad():
     * asking torch whether grad mode is on costs as much as that path. */
    if (!needs_no_grad || !on_cpu || !strided)
        Py_RETURN_NOTIMPLEMENTED;
    /* (Asked before any size is read: a trace makes sizes traced values.) */
    const int watched = torch_is_watching();
    if (watched < 0)
        return NULL;
    if (watched)
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *negated = PyObject_CallMethodNoArgs(x, name_is_neg);
    if (negated == NULL)
        return NULL;
    const int is_negated = PyObject_IsTrue(negated);
    Py_DECREF(negated);
    if (is_negated != 0)
        Py_RETURN_NOTIMPLEMENTED;

    PyObject *view_args[2] = {x, descr};
    PyObject *view = tensor_view(module, view_args, 2);
    if (view == NULL) {
        /* A tensor without storage (a functorch wrapper) has no memory to
         * read: the Python layer computes it with torch operations. */
        if (!PyErr_ExceptionMatches(PyExc_RuntimeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (PyArray_NDIM((PyArrayObject *)view) == 0) { /* softmax of a scalar: the Python layer's */
        Py_DECREF(view);
        Py_RETURN_NOTIMPLEMENTED;
    }
    /* The result is a tensor torch allocated (x.new_empty), written in
     * place: not torch.from_numpy of a NumPy result, whose memory torch
     * frees by taking the GIL -- at interpreter exit, after an error inside
     * backward left a gradient in autograd's queue, that waits forever. */
    PyObject *tensor = NULL;
    if (PyArray_IS_C_CONTIGUOUS((PyArrayObject *)view)) {
        /* torch.empty_like keeps a dense layout: C-contiguous here. The
         * cheapest allocation torch offers from Python. */
        tensor = PyObject_CallOneArg(torch_empty_like, x);
    } else {
        PyObject *shape = PyObject_GetAttr(x, name_shape);
        if (shape != NULL) {
            tensor = PyObject_CallMethodOneArg(x, name_new_empty, shape);
            Py_DECREF(shape);
        }
    }
    if (tensor == NULL) {
        Py_DECREF(view);
        return NULL;
    }
    PyObject *out_view = NULL;
    {
        /* A fresh tensor is C-contiguous with x's shape: only its address
         * is needed (cheaper than tensor_view's shape and stride calls). */
        PyObject *pointer = PyObject_CallMethodNoArgs(tensor, name_data_ptr);
        void *data = pointer != NULL ? PyLong_AsVoidPtr(pointer) : NULL;
        Py_XDECREF(pointer);
        if (!PyErr_Occurred()) {
            PyArrayObject *in = (PyArrayObject *)view;
            Py_INCREF(descr);
            out_view = PyArray_NewFromDescr(&PyArray_Type, (PyArray_Descr *)descr, PyArray_NDIM(in), PyArray_DIMS(in),
                                            NULL, data, NPY_ARRAY_CARRAY, NULL);
            Py_INCREF(tensor);
            if (out_view != NULL && PyArray_SetBaseObject((PyArrayObject *)out_view, tensor) < 0)
                Py_CLEAR(out_view);
            else if (out_view == NULL)
                Py_DECREF(tensor);
        }
    }
    if (out_view == NULL) {
        Py_DECREF(view);
        Py_XDECREF(tensor);
        return NULL;
    }
    PyObject *call[10] = {args[0], view, Py_None, out_view, args[2], args[3], Py_False, Py_None, Py_False, Py_None};
    PyObject *result = execute(module, call, 10);
    Py_DECREF(view);
    Py_DECREF(out_view);
    if (result == NULL) {
        Py_DECREF(tensor);
        return NULL;
    }
    Py_DECREF(result); /* out_view itself */
    return tensor;
}

static PyObject *version(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyUnicode_FromString(softmax_version());
}

static PyObject *isa_name(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    const char *name = softmax_isa_name();
    if (name == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(name);
}

static PyObject *set_num_threads(PyObject *module, PyObject *arg)
{
    (void)module;
    if (PyBool_Check(arg)) { /* an int to Python, but set_num_threads(True) is a mistake */
        PyErr_SetString(PyExc_TypeError, "set_num_threads: n must be an integer, not bool");
        return NULL;
    }
    int overflow = 0;
    const long n = PyLong_AsLongAndOverflow(arg, &overflow);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (overflow != 0 || n < 0 || n > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "set_num_threads: n = %S; it must be >= 1, or 0 for the default", arg);
        return NULL;
    }
    const int status = softmax_set_num_threads((int)n);
    if (status != SOFTMAX_OK)
        return raise_status(status, "set_num_threads");
    Py_RETURN_NONE;
}

static PyObject *get_num_threads(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(softmax_get_num_threads());
}

/* Asks the library, on a tiny input, whether it takes a feature: it
 * answers SOFTMAX_E_UNSUPPORTED or SOFTMAX_E_INVALID_DTYPE while it does not. */
static bool library_accepts(const softmax_desc *desc, const void *src, void *dst)
{
    return softmax_execute(desc, src, NULL, dst) == SOFTMAX_OK;
}

static void probe_library(void)
{
    const double src[2] = {0.0, 1.0};
    double dst[2];
    const int64_t strides[1] = {1};
    softmax_desc desc;

    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, 2);
    desc.src_strides = strides;
    desc.dst_strides = strides;
    library_takes_strides = library_accepts(&desc, src, dst);

    const float mask[2] = {0.0f, 0.0f};
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F64, 2);
    desc.mask = mask;
    desc.mask_dtype = SOFTMAX_DTYPE_F32;
    library_takes_masks = library_accepts(&desc, src, dst);

    const uint16_t half_src[2] = {0, 0};
    uint16_t half_dst[2];
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_F16, 2);
    library_takes_f16 = library_accepts(&desc, half_src, half_dst);
    softmax_desc_init(&desc, SOFTMAX_OP_SOFTMAX, SOFTMAX_DTYPE_BF16, 2);
    library_takes_bf16 = library_accepts(&desc, half_src, half_dst);
}

#ifdef SOFTMAX_PY_HAS_SAMPLER
/* The sampler and the row statistics, when the library declares them
 * (setup.py defines SOFTMAX_PY_HAS_SAMPLER after reading softmax.h). Both
 * take contiguous rows of the last axis: the Python layer moves the axis
 * and makes the array contiguous first. */

/* A C-contiguous array of `rows` elements of type `type`, shaped like
 * src without its last axis. */
static PyArrayObject *new_row_result(PyArrayObject *src, int type)
{
    return (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(src) - 1, PyArray_DIMS(src), type);
}

/* Checks a logits array for the sampler and row statistics: contiguous,
 * at least one dimension, a supported type. Fills rows and cols. */
static int rows_operand(PyObject *object, bool bf16_bits, const char *fn, PyArrayObject **array, softmax_dtype *dtype,
                        size_t *rows, size_t *cols)
{
    *array = as_array(object, fn, "x");
    if (*array == NULL)
        return -1;
    *dtype = dtype_of(*array, bf16_bits);
    if (*dtype == 0) {
        PyErr_Format(PyExc_TypeError, "%s: x has dtype %S; supported: %s", fn, (PyObject *)PyArray_DESCR(*array),
                     supported_dtypes());
        return -1;
    }
    const int ndim = PyArray_NDIM(*array);
    if (ndim == 0 || !PyArray_IS_C_CONTIGUOUS(*array) || !PyArray_ISALIGNED(*array)) {
        PyErr_Format(PyExc_ValueError, "%s: x must be a C-contiguous array with at least one dimension", fn);
        return -1;
    }
    *cols = (size_t)PyArray_DIM(*array, ndim - 1);
    *rows = 1;
    for (int d = 0; d < ndim - 1; d++)
        *rows *= (size_t)PyArray_DIM(*array, d);
    return 0;
}

/* sample(logits, bf16, temperature, top_k, top_p, min_p, seed, step)
 * -> (indices int64, probs float64, logsumexp float64), one per row. */
static PyObject *sample(PyObject *module, PyObject *args)
{
    (void)module;
    const char *fn = "sample";
    PyObject *logits_object;
    int bf16 = 0;
    softmax_sampler_params params;
    softmax_sampler_params_init(&params);
    long long top_k = 0;
    unsigned long long seed = 0, step = 0;
    if (!PyArg_ParseTuple(args, "OpdLddKK", &logits_object, &bf16, &params.temperature, &top_k, &params.top_p,
                          &params.min_p, &seed, &step))
        return NULL;
    params.top_k = top_k;
    params.seed = seed;
    PyArrayObject *logits;
    softmax_dtype dtype;
    size_t rows, vocab;
    if (rows_operand(logits_object, bf16, fn, &logits, &dtype, &rows, &vocab) < 0)
        return NULL;
    PyArrayObject *indices = new_row_result(logits, NPY_INT64);
    PyArrayObject *probs = new_row_result(logits, NPY_FLOAT64);
    PyArrayObject *logsumexp = new_row_result(logits, NPY_FLOAT64);
    PyObject *returned = NULL;
    if (indices == NULL || probs == NULL || logsumexp == NULL)
        goto done;
    PyThreadState *released = PyEval_SaveThread();
    const int status = softmax_sample(&params, dtype, PyArray_DATA(logits), rows, vocab, step, NULL,
                                      PyArray_DATA(indices), PyArray_DATA(probs), PyArray_DATA(logsumexp));
    PyEval_RestoreThread(released);
    if (status != SOFTMAX_OK) {
        raise_status(status, fn);
        goto done;
    }
    returned = PyTuple_Pack(3, (PyObject *)indices, (PyObject *)probs, (PyObject *)logsumexp);
done:
    Py_XDECREF(indices);
    Py_XDECREF(probs);
    Py_XDECREF(logsumexp);
    return returned;
}

/* row_stats(x, bf16, scale[, fn]) -> (logsumexp float64, entropy float64,
 * argmax int64), one per row of the last axis; fn names the Python function
 * in error messages. */
static PyObject *row_stats(PyObject *module, PyObject *args)
{
    (void)module;
    const char *fn = "row_stats";
    PyObject *x_object;
    int bf16 = 0;
    double scale = 1.0;
    if (!PyArg_ParseTuple(args, "Opd|s", &x_object, &bf16, &scale, &fn))
        return NULL;
    PyArrayObject *x;
    softmax_dtype dtype;
    size_t rows, cols;
    if (rows_operand(x_object, bf16, fn, &x, &dtype, &rows, &cols) < 0)
        return NULL;
    PyArrayObject *logsumexp = new_row_result(x, NPY_FLOAT64);
    PyArrayObject *entropy = new_row_result(x, NPY_FLOAT64);
    PyArrayObject *argmax = new_row_result(x, NPY_INT64);
    PyObject *returned = NULL;
    if (logsumexp == NULL || entropy == NULL || argmax == NULL)
        goto done;
    PyThreadState *released = PyEval_SaveThread();
    const int status = softmax_row_stats(dtype, PyArray_DATA(x), rows, cols, scale, PyArray_DATA(logsumexp),
                                         PyArray_DATA(entropy), PyArray_DATA(argmax));
    PyEval_RestoreThread(released);
    if (status != SOFTMAX_OK) {
        raise_status(status, fn);
        goto done;
    }
    returned = PyTuple_Pack(3, (PyObject *)logsumexp, (PyObject *)entropy, (PyObject *)argmax);
done:
    Py_XDECREF(logsumexp);
    Py_XDECREF(entropy);
    Py_XDECREF(argmax);
    return returned;
}
#endif

static PyMethodDef methods[] = {
    {"execute", (PyCFunction)(void (*)(void))execute, METH_FASTCALL,
     "execute(op, src, grad, out, axis, scale, src_bf16, mask, mask_bf16, where) -> array\n\n"
     "Runs one softmax_op of libsoftmax on NumPy arrays (the internals of softmax.softmax & co.)."},
    {"tensor_view", (PyCFunction)(void (*)(void))tensor_view, METH_FASTCALL,
     "tensor_view(tensor, dtype) -> numpy.ndarray over the tensor's memory (no copy)."},
    {"register_torch", (PyCFunction)(void (*)(void))register_torch, METH_FASTCALL,
     "register_torch(Tensor, strided, dtypes, get_tracing_state, profiler_enabled, forward_ad, empty_like): "
     "what execute_tensor needs from torch."},
    {"execute_tensor", (PyCFunction)(void (*)(void))execute_tensor, METH_FASTCALL,
     "execute_tensor(op, x, axis, scale) -> tensor, or NotImplemented when the Python layer must decide."},
#ifdef SOFTMAX_PY_HAS_SAMPLER
    {"sample", sample, METH_VARARGS,
     "sample(logits, bf16, temperature, top_k, top_p, min_p, seed, step) -> (indices, probs, logsumexp)."},
    {"row_stats", row_stats, METH_VARARGS, "row_stats(x, bf16, scale[, fn]) -> (logsumexp, entropy, argmax)."},
#endif
    {"version", version, METH_NOARGS, "The C library's version, \"MAJOR.MINOR.PATCH\"."},
    {"isa_name", isa_name, METH_NOARGS, "The code path the library runs: scalar, avx2 or avx512 (None if unusable)."},
    {"set_num_threads", set_num_threads, METH_O, "Thread count for later calls (0 = the default)."},
    {"get_num_threads", get_num_threads, METH_NOARGS, "The thread count that the next call will use at most."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "softmax._softmax",
    "CPython binding of libsoftmax (include/softmax.h).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__softmax(void);

PyMODINIT_FUNC PyInit__softmax(void)
{
    import_array();
    if (intern_names() < 0)
        return NULL;
    probe_library();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    const struct {
        const char *name;
        long value;
    } constants[] = {
        {"OP_SOFTMAX", SOFTMAX_OP_SOFTMAX},
        {"OP_LOG_SOFTMAX", SOFTMAX_OP_LOG_SOFTMAX},
        {"OP_SOFTMAX_BACKWARD", SOFTMAX_OP_SOFTMAX_BACKWARD},
        {"OP_LOG_SOFTMAX_BACKWARD", SOFTMAX_OP_LOG_SOFTMAX_BACKWARD},
        {"OP_LOG_SOFTMAX_JVP", SOFTMAX_OP_LOG_SOFTMAX_JVP},
        {"OP_FAST", OP_FAST_BIT},
        {"HAS_STRIDES", library_takes_strides},
        {"HAS_MASKS", library_takes_masks},
        {"HAS_F16", library_takes_f16},
        {"HAS_BF16", library_takes_bf16},
#ifdef SOFTMAX_PY_HAS_SAMPLER
        {"HAS_SAMPLER", 1},
#else
        {"HAS_SAMPLER", 0},
#endif
        {"RELEASE_GIL_MIN_ELEMENTS", RELEASE_GIL_MIN_ELEMENTS},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
        if (PyModule_AddIntConstant(module, constants[i].name, constants[i].value) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
