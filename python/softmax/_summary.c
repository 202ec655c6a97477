/*
 * _summary.c -- the CPython extension over the slice summaries of
 * include/softmax.h (softmax_summary_*, the sampling over slices), for
 * softmax.distributed. A separate small module so that it builds and loads
 * on its own beside softmax._softmax.
 *
 * Every function takes NumPy arrays and returns new ones: logits as 2-D
 * C-contiguous float32 / float64 [rows, cols]; records, top-p searches,
 * bins and draws as 2-D uint8 arrays [rows, bytes per row] -- plain bytes
 * that softmax.distributed sends with torch.distributed and merges here.
 * Arguments are checked before anything is written; a failed call raises
 * ValueError (MemoryError when out of memory) with the library's message.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <stdint.h>
#include <string.h>

#include "softmax.h"

static PyObject *raise_status(int status)
{
    PyObject *type = status == SOFTMAX_E_OUT_OF_MEMORY ? PyExc_MemoryError : PyExc_ValueError;
    const char *detail = softmax_last_error();
    PyErr_Format(type, "%s: %s", softmax_strerror(status), detail[0] ? detail : "(no detail)");
    return NULL;
}

/* A 2-D C-contiguous array of the given type (or float32 / float64 when
 * type_num < 0); writable if asked. */
static int check_array(PyObject *object, const char *name, int type_num, int writable, PyArrayObject **out)
{
    if (!PyArray_Check(object)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray", name);
        return -1;
    }
    PyArrayObject *array = (PyArrayObject *)object;
    int t = PyArray_TYPE(array);
    if (type_num >= 0 ? t != type_num : (t != NPY_FLOAT32 && t != NPY_FLOAT64)) {
        PyErr_Format(PyExc_TypeError, "%s has the wrong dtype", name);
        return -1;
    }
    if (PyArray_NDIM(array) != 2 || !PyArray_IS_C_CONTIGUOUS(array) || !PyArray_ISALIGNED(array)) {
        PyErr_Format(PyExc_ValueError, "%s must be a 2-D C-contiguous aligned array", name);
        return -1;
    }
    if (writable && !PyArray_ISWRITEABLE(array)) {
        PyErr_Format(PyExc_ValueError, "%s must be writable", name);
        return -1;
    }
    *out = array;
    return 0;
}

/* Byte arrays of `rows` rows of `bytes` bytes. */
static int check_bytes(PyObject *object, const char *name, npy_intp rows, npy_intp bytes, int writable,
                       PyArrayObject **out)
{
    if (check_array(object, name, NPY_UINT8, writable, out) < 0)
        return -1;
    if (PyArray_DIM(*out, 0) != rows || (bytes >= 0 && PyArray_DIM(*out, 1) != bytes)) {
        PyErr_Format(PyExc_ValueError, "%s has shape (%zd, %zd), expected (%zd, %zd)", name,
                     (Py_ssize_t)PyArray_DIM(*out, 0), (Py_ssize_t)PyArray_DIM(*out, 1), (Py_ssize_t)rows,
                     (Py_ssize_t)bytes);
        return -1;
    }
    return 0;
}

static PyArrayObject *new_array(npy_intp rows, npy_intp cols, int type_num)
{
    npy_intp dims[2] = {rows, cols};
    return (PyArrayObject *)PyArray_ZEROS(cols < 0 ? 1 : 2, dims, type_num, 0);
}

/* The slice of (logits, col_offset, vocab, targets or None). */
static int make_slice(PyObject *logits_object, unsigned long long col_offset, unsigned long long vocab,
                      PyObject *targets_object, softmax_slice *slice, PyArrayObject **logits_out)
{
    PyArrayObject *logits;
    if (check_array(logits_object, "logits", -1, 0, &logits) < 0)
        return -1;
    memset(slice, 0, sizeof *slice);
    slice->dtype = PyArray_TYPE(logits) == NPY_FLOAT32 ? SOFTMAX_DTYPE_F32 : SOFTMAX_DTYPE_F64;
    slice->logits = PyArray_DATA(logits);
    slice->rows = (size_t)PyArray_DIM(logits, 0);
    slice->cols = (size_t)PyArray_DIM(logits, 1);
    slice->col_offset = col_offset;
    slice->vocab = vocab;
    if (targets_object != Py_None) {
        if (!PyArray_Check(targets_object) || PyArray_TYPE((PyArrayObject *)targets_object) != NPY_INT64 ||
            PyArray_NDIM((PyArrayObject *)targets_object) != 1 ||
            !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)targets_object) ||
            PyArray_DIM((PyArrayObject *)targets_object, 0) != PyArray_DIM(logits, 0)) {
            PyErr_SetString(PyExc_ValueError, "targets must be a contiguous int64 array of one entry per row");
            return -1;
        }
        slice->targets = PyArray_DATA((PyArrayObject *)targets_object);
    }
    if (logits_out != NULL)
        *logits_out = logits;
    return 0;
}

/* (temperature, top_k, top_p, min_p, seed) */
static int parse_params(PyObject *tuple, softmax_sampler_params *params)
{
    softmax_sampler_params_init(params);
    long long top_k;
    unsigned long long seed;
    if (!PyArg_ParseTuple(tuple, "dLddK", &params->temperature, &top_k, &params->top_p, &params->min_p, &seed))
        return -1;
    params->top_k = top_k;
    params->seed = seed;
    return 0;
}

static int optional_streams(PyObject *object, npy_intp rows, const uint64_t **streams)
{
    *streams = NULL;
    if (object == Py_None)
        return 0;
    if (!PyArray_Check(object) || PyArray_TYPE((PyArrayObject *)object) != NPY_UINT64 ||
        PyArray_NDIM((PyArrayObject *)object) != 1 || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)object) ||
        PyArray_DIM((PyArrayObject *)object, 0) != rows) {
        PyErr_SetString(PyExc_ValueError, "stream_ids must be a contiguous uint64 array of one entry per row");
        return -1;
    }
    *streams = PyArray_DATA((PyArrayObject *)object);
    return 0;
}

static npy_intp records_rows(PyObject *records)
{
    return PyArray_Check(records) && PyArray_NDIM((PyArrayObject *)records) == 2
               ? PyArray_DIM((PyArrayObject *)records, 0)
               : -1;
}

/* ---------------------------------------------------------------------------
 * Summaries.
 * ------------------------------------------------------------------------ */

static PyObject *py_record_bytes(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t top_k;
    if (!PyArg_ParseTuple(args, "n", &top_k))
        return NULL;
    if (top_k < 0) {
        PyErr_SetString(PyExc_ValueError, "top_k must be >= 0");
        return NULL;
    }
    return PyLong_FromSize_t(softmax_summary_bytes((size_t)top_k));
}

static PyObject *py_compute(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *logits_object, *targets_object;
    unsigned long long offset, vocab;
    double scale;
    Py_ssize_t top_k;
    if (!PyArg_ParseTuple(args, "OKKdnO", &logits_object, &offset, &vocab, &scale, &top_k, &targets_object))
        return NULL;
    softmax_slice slice;
    if (make_slice(logits_object, offset, vocab, targets_object, &slice, NULL) < 0)
        return NULL;
    size_t bytes = top_k >= 0 ? softmax_summary_bytes((size_t)top_k) : 0;
    if (bytes == 0) {
        PyErr_SetString(PyExc_ValueError, "top_k must be >= 0 and not overflow");
        return NULL;
    }
    PyArrayObject *records = new_array((npy_intp)slice.rows, (npy_intp)bytes, NPY_UINT8);
    if (records == NULL)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS status = softmax_summary_compute(&slice, scale, (size_t)top_k, PyArray_DATA(records));
    Py_END_ALLOW_THREADS if (status != SOFTMAX_OK)
    {
        Py_DECREF(records);
        return raise_status(status);
    }
    return (PyObject *)records;
}

/* merge(inout, other, kind): kind 0 = records, 1 = top-p bins, 2 = draws. */
static PyObject *py_merge(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *inout_object, *other_object;
    int kind;
    if (!PyArg_ParseTuple(args, "OOi", &inout_object, &other_object, &kind))
        return NULL;
    PyArrayObject *inout, *other;
    npy_intp rows = records_rows(inout_object);
    npy_intp width = kind == 1   ? (npy_intp)(SOFTMAX_TOP_P_BINS * sizeof(softmax_top_p_bin))
                     : kind == 2 ? (npy_intp)sizeof(softmax_draw)
                                 : -1;
    if (check_bytes(inout_object, "inout", rows, width, 1, &inout) < 0 ||
        check_bytes(other_object, "other", rows, PyArray_DIM(inout, 1), 0, &other) < 0)
        return NULL;
    int status;
    if (kind == 0)
        status = softmax_summary_merge(PyArray_DATA(inout), PyArray_DATA(other), (size_t)rows);
    else if (kind == 1)
        status = softmax_top_p_bins_merge(PyArray_DATA(inout), PyArray_DATA(other), (size_t)rows);
    else if (kind == 2)
        status = softmax_draw_merge(PyArray_DATA(inout), PyArray_DATA(other), (size_t)rows);
    else {
        PyErr_SetString(PyExc_ValueError, "kind must be 0, 1 or 2");
        return NULL;
    }
    if (status != SOFTMAX_OK)
        return raise_status(status);
    Py_RETURN_NONE;
}

/* finish(logits, col_offset, vocab, targets, records, what): what 0 =
 * softmax, 1 = log-softmax, 2 = NLL gradient. */
static PyObject *py_finish(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *logits_object, *targets_object, *records_object;
    unsigned long long offset, vocab;
    int what;
    if (!PyArg_ParseTuple(args, "OKKOOi", &logits_object, &offset, &vocab, &targets_object, &records_object, &what))
        return NULL;
    softmax_slice slice;
    PyArrayObject *logits, *records;
    if (make_slice(logits_object, offset, vocab, targets_object, &slice, &logits) < 0 ||
        check_bytes(records_object, "records", (npy_intp)slice.rows, -1, 0, &records) < 0)
        return NULL;
    PyArrayObject *out = new_array((npy_intp)slice.rows, (npy_intp)slice.cols, PyArray_TYPE(logits));
    if (out == NULL)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS if (what == 2) status =
        softmax_summary_nll_backward(&slice, PyArray_DATA(records), PyArray_DATA(out));
    else status = softmax_summary_softmax(&slice, PyArray_DATA(records), what, PyArray_DATA(out));
    Py_END_ALLOW_THREADS if (status != SOFTMAX_OK)
    {
        Py_DECREF(out);
        return raise_status(status);
    }
    return (PyObject *)out;
}

static PyObject *py_stats(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *records_object;
    if (!PyArg_ParseTuple(args, "O", &records_object))
        return NULL;
    PyArrayObject *records;
    npy_intp rows = records_rows(records_object);
    if (check_bytes(records_object, "records", rows, -1, 0, &records) < 0)
        return NULL;
    PyArrayObject *lse = new_array(rows, -1, NPY_FLOAT64), *entropy = new_array(rows, -1, NPY_FLOAT64);
    PyArrayObject *argmax = new_array(rows, -1, NPY_INT64), *nll = new_array(rows, -1, NPY_FLOAT64);
    if (!lse || !entropy || !argmax || !nll) {
        Py_XDECREF(lse);
        Py_XDECREF(entropy);
        Py_XDECREF(argmax);
        Py_XDECREF(nll);
        return NULL;
    }
    int status = softmax_summary_stats(PyArray_DATA(records), (size_t)rows, PyArray_DATA(lse), PyArray_DATA(entropy),
                                       PyArray_DATA(argmax), PyArray_DATA(nll));
    if (status != SOFTMAX_OK) {
        Py_DECREF(lse);
        Py_DECREF(entropy);
        Py_DECREF(argmax);
        Py_DECREF(nll);
        return raise_status(status);
    }
    return Py_BuildValue("NNNN", lse, entropy, argmax, nll);
}

/* ---------------------------------------------------------------------------
 * Sampling.
 * ------------------------------------------------------------------------ */

static PyObject *py_sample_rounds(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *params_tuple;
    unsigned long long vocab;
    if (!PyArg_ParseTuple(args, "OK", &params_tuple, &vocab))
        return NULL;
    softmax_sampler_params params;
    if (parse_params(params_tuple, &params) < 0)
        return NULL;
    int needs = softmax_sample_rounds(&params, vocab);
    if (needs < 0)
        return raise_status(needs);
    return PyLong_FromLong(needs);
}

/* sample_summarize(params, logits, col_offset, vocab) -> records without the sums */
static PyObject *py_sample_summarize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *params_tuple, *logits_object;
    unsigned long long offset, vocab;
    if (!PyArg_ParseTuple(args, "OOKK", &params_tuple, &logits_object, &offset, &vocab))
        return NULL;
    softmax_sampler_params params;
    softmax_slice slice;
    if (parse_params(params_tuple, &params) < 0 || make_slice(logits_object, offset, vocab, Py_None, &slice, NULL) < 0)
        return NULL;
    size_t bytes = softmax_summary_bytes(softmax_sample_capacity(&params, vocab));
    PyArrayObject *records = new_array((npy_intp)slice.rows, (npy_intp)bytes, NPY_UINT8);
    if (records == NULL)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS status = softmax_sample_summarize(&params, &slice, PyArray_DATA(records));
    Py_END_ALLOW_THREADS if (status != SOFTMAX_OK)
    {
        Py_DECREF(records);
        return raise_status(status);
    }
    return (PyObject *)records;
}

static PyObject *py_top_p_start(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *params_tuple, *records_object;
    if (!PyArg_ParseTuple(args, "OO", &params_tuple, &records_object))
        return NULL;
    softmax_sampler_params params;
    PyArrayObject *records;
    npy_intp rows = records_rows(records_object);
    if (parse_params(params_tuple, &params) < 0 || check_bytes(records_object, "records", rows, -1, 0, &records) < 0)
        return NULL;
    PyArrayObject *search = new_array(rows, (npy_intp)sizeof(softmax_top_p_search), NPY_UINT8);
    if (search == NULL)
        return NULL;
    int status = softmax_top_p_start(&params, PyArray_DATA(records), (size_t)rows, PyArray_DATA(search));
    if (status != SOFTMAX_OK) {
        Py_DECREF(search);
        return raise_status(status);
    }
    return (PyObject *)search;
}

static PyObject *py_top_p_histogram(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *params_tuple, *logits_object, *records_object, *search_object;
    unsigned long long offset, vocab;
    if (!PyArg_ParseTuple(args, "OOKKOO", &params_tuple, &logits_object, &offset, &vocab, &records_object,
                          &search_object))
        return NULL;
    softmax_sampler_params params;
    softmax_slice slice;
    PyArrayObject *records, *search;
    if (parse_params(params_tuple, &params) < 0 ||
        make_slice(logits_object, offset, vocab, Py_None, &slice, NULL) < 0 ||
        check_bytes(records_object, "records", (npy_intp)slice.rows, -1, 0, &records) < 0 ||
        check_bytes(search_object, "search", (npy_intp)slice.rows, (npy_intp)sizeof(softmax_top_p_search), 0, &search) <
            0)
        return NULL;
    PyArrayObject *bins =
        new_array((npy_intp)slice.rows, (npy_intp)(SOFTMAX_TOP_P_BINS * sizeof(softmax_top_p_bin)), NPY_UINT8);
    if (bins == NULL)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS status =
        softmax_top_p_histogram(&params, &slice, PyArray_DATA(records), PyArray_DATA(search), PyArray_DATA(bins));
    Py_END_ALLOW_THREADS if (status != SOFTMAX_OK)
    {
        Py_DECREF(bins);
        return raise_status(status);
    }
    return (PyObject *)bins;
}

static PyObject *py_top_p_narrow(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *search_object, *bins_object;
    if (!PyArg_ParseTuple(args, "OO", &search_object, &bins_object))
        return NULL;
    PyArrayObject *search, *bins;
    npy_intp rows = records_rows(search_object);
    if (check_bytes(search_object, "search", rows, (npy_intp)sizeof(softmax_top_p_search), 1, &search) < 0 ||
        check_bytes(bins_object, "bins", rows, (npy_intp)(SOFTMAX_TOP_P_BINS * sizeof(softmax_top_p_bin)), 0, &bins) <
            0)
        return NULL;
    int searching = softmax_top_p_narrow(PyArray_DATA(search), PyArray_DATA(bins), (size_t)rows);
    if (searching < 0)
        return raise_status(searching);
    return PyLong_FromLong(searching);
}

static PyObject *py_sample_race(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *params_tuple, *logits_object, *records_object, *search_object, *streams_object;
    unsigned long long offset, vocab, step;
    if (!PyArg_ParseTuple(args, "OOKKOOKO", &params_tuple, &logits_object, &offset, &vocab, &records_object,
                          &search_object, &step, &streams_object))
        return NULL;
    softmax_sampler_params params;
    softmax_slice slice;
    PyArrayObject *records, *search = NULL;
    const uint64_t *streams;
    if (parse_params(params_tuple, &params) < 0 ||
        make_slice(logits_object, offset, vocab, Py_None, &slice, NULL) < 0 ||
        check_bytes(records_object, "records", (npy_intp)slice.rows, -1, 0, &records) < 0 ||
        (search_object != Py_None && check_bytes(search_object, "search", (npy_intp)slice.rows,
                                                 (npy_intp)sizeof(softmax_top_p_search), 0, &search) < 0) ||
        optional_streams(streams_object, (npy_intp)slice.rows, &streams) < 0)
        return NULL;
    PyArrayObject *draws = new_array((npy_intp)slice.rows, (npy_intp)sizeof(softmax_draw), NPY_UINT8);
    if (draws == NULL)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS status =
        softmax_sample_race(&params, &slice, PyArray_DATA(records), search ? PyArray_DATA(search) : NULL, step, streams,
                            PyArray_DATA(draws));
    Py_END_ALLOW_THREADS if (status != SOFTMAX_OK)
    {
        Py_DECREF(draws);
        return raise_status(status);
    }
    return (PyObject *)draws;
}

/* Returns (indices, status): rows without a distribution get -1 and the
 * status SOFTMAX_E_NO_FINITE_LOGIT, which the caller turns into an error. */
static PyObject *py_sample_finish(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *params_tuple, *records_object, *search_object, *draws_object, *streams_object;
    unsigned long long step;
    if (!PyArg_ParseTuple(args, "OOOOKO", &params_tuple, &records_object, &search_object, &draws_object, &step,
                          &streams_object))
        return NULL;
    softmax_sampler_params params;
    PyArrayObject *records, *search = NULL, *draws = NULL;
    const uint64_t *streams;
    npy_intp rows = records_rows(records_object);
    if (parse_params(params_tuple, &params) < 0 || check_bytes(records_object, "records", rows, -1, 0, &records) < 0 ||
        (search_object != Py_None &&
         check_bytes(search_object, "search", rows, (npy_intp)sizeof(softmax_top_p_search), 0, &search) < 0) ||
        (draws_object != Py_None &&
         check_bytes(draws_object, "draws", rows, (npy_intp)sizeof(softmax_draw), 0, &draws) < 0) ||
        optional_streams(streams_object, rows, &streams) < 0)
        return NULL;
    PyArrayObject *indices = new_array(rows, -1, NPY_INT64);
    if (indices == NULL)
        return NULL;
    int status =
        softmax_sample_finish(&params, PyArray_DATA(records), (size_t)rows, search ? PyArray_DATA(search) : NULL,
                              draws ? PyArray_DATA(draws) : NULL, step, streams, PyArray_DATA(indices));
    if (status != SOFTMAX_OK && status != SOFTMAX_E_NO_FINITE_LOGIT) {
        Py_DECREF(indices);
        return raise_status(status);
    }
    PyObject *message = PyUnicode_FromString(status == SOFTMAX_OK ? "" : softmax_last_error());
    return Py_BuildValue("NiN", indices, status, message);
}

static PyMethodDef methods[] = {
    {"record_bytes", py_record_bytes, METH_VARARGS, "record_bytes(top_k): bytes of one row's record"},
    {"compute", py_compute, METH_VARARGS, "compute(logits, col_offset, vocab, scale, top_k, targets) -> records"},
    {"merge", py_merge, METH_VARARGS, "merge(inout, other, kind): records (0), top-p bins (1) or draws (2)"},
    {"finish", py_finish, METH_VARARGS,
     "finish(logits, col_offset, vocab, targets, records, what): softmax (0), log-softmax (1), NLL gradient (2)"},
    {"stats", py_stats, METH_VARARGS, "stats(records) -> (logsumexp, entropy, argmax, nll)"},
    {"sample_rounds", py_sample_rounds, METH_VARARGS, "sample_rounds(params, vocab) -> bits (1 top-p, 2 race)"},
    {"sample_summarize", py_sample_summarize, METH_VARARGS,
     "sample_summarize(params, logits, col_offset, vocab) -> records without sums"},
    {"top_p_start", py_top_p_start, METH_VARARGS, "top_p_start(params, records) -> search"},
    {"top_p_histogram", py_top_p_histogram, METH_VARARGS,
     "top_p_histogram(params, logits, col_offset, vocab, records, search) -> bins"},
    {"top_p_narrow", py_top_p_narrow, METH_VARARGS, "top_p_narrow(search, bins) -> rows still searching"},
    {"sample_race", py_sample_race, METH_VARARGS,
     "sample_race(params, logits, col_offset, vocab, records, search, step, stream_ids) -> draws"},
    {"sample_finish", py_sample_finish, METH_VARARGS,
     "sample_finish(params, records, search, draws, step, stream_ids) -> (indices, status, message)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "softmax._summary",
    "Slice summaries of libsoftmax for softmax.distributed.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__summary(void);
PyMODINIT_FUNC PyInit__summary(void)
{
    import_array();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "NEEDS_TOP_P", SOFTMAX_SAMPLE_NEEDS_TOP_P) < 0 ||
        PyModule_AddIntConstant(module, "NEEDS_RACE", SOFTMAX_SAMPLE_NEEDS_RACE) < 0 ||
        PyModule_AddIntConstant(module, "NO_FINITE_LOGIT", SOFTMAX_E_NO_FINITE_LOGIT) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
