"""Defects found by probing the package as a user porting from SciPy / PyTorch 1.13 would.

Each test compares against an independent reference: mpmath at 200 bits,
SciPy, closed-form derivatives evaluated in NumPy, or values the contract
(include/softmax.h) fixes exactly -- never the package itself. The
torch-operation path (functorch's vmap / jacfwd / hessian, whose wrappers
have no storage for the library to read) must meet the same contract as
the C kernels.
"""

import math
import warnings

import mpmath
import numpy as np
import pytest
import scipy.special
import torch

import softmax

functorch = pytest.importorskip("functorch")

mpmath.mp.prec = 200
INF = math.inf


def mp_softmax(row, scale=1.0, bias=None, log=False):
    """softmax(scale * row + bias) at 200 bits (-inf entries excluded), rounded to float64."""
    z = []
    for i, value in enumerate(row):
        extra = 0.0 if bias is None else bias[i]
        z.append(None if value == -INF or extra == -INF else mpmath.mpf(float(value)) * mpmath.mpf(scale) + extra)
    top = max(v for v in z if v is not None)
    total = mpmath.fsum(mpmath.exp(v - top) for v in z if v is not None)
    if log:
        return np.array([-INF if v is None else float(v - top - mpmath.log(total)) for v in z])
    return np.array([0.0 if v is None else float(mpmath.exp(v - top) / total) for v in z])


def batched(function):
    """function applied row by row through functorch.vmap: the torch-operation path."""
    def call(x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # functorch's "no batching rule" performance warnings
            return functorch.vmap(function)(x)
    return call


# -- integers beyond the C range -------------------------------------------------------------


@pytest.mark.parametrize("axis", [2 ** 70, -(2 ** 70), 2 ** 63, np.uint64(2 ** 64 - 1)])
def test_axis_beyond_a_c_long_is_out_of_range(axis):
    # Was OverflowError("Python int too large to convert to C long") for NumPy input.
    for function in (softmax.softmax, softmax.log_softmax):
        with pytest.raises(ValueError, match="out of range"):
            function(np.zeros((2, 3)), axis)
    with pytest.raises(ValueError, match="out of range"):
        softmax.softmax_backward(np.full(3, 1 / 3), np.zeros(3), axis)


def test_set_num_threads_refuses_huge_counts_and_bools():
    before = softmax.get_num_threads()
    with pytest.raises(ValueError, match="set_num_threads"):
        softmax.set_num_threads(2 ** 70)  # was OverflowError
    with pytest.raises(TypeError, match="bool"):
        softmax.set_num_threads(True)  # was taken as 1 thread
    assert softmax.get_num_threads() == before


@pytest.mark.parametrize("offset", [2 ** 63 - 1, 2 ** 64, 2 ** 70, -(2 ** 63), -(2 ** 70)])
@pytest.mark.parametrize("kind", ["numpy", "tensor", "grad"])
def test_causal_offset_beyond_int64_means_everything_or_nothing(offset, kind):
    # Was OverflowError for offsets beyond int64; an offset this large keeps every element
    # (j <= i + offset), one this small none (rows of zeros).
    x = np.random.default_rng(1).standard_normal((3, 4))
    expected = np.array([mp_softmax(row) for row in x]) if offset > 0 else np.zeros((3, 4))
    data = x if kind == "numpy" else torch.tensor(x, requires_grad=kind == "grad")
    y = softmax.softmax(data, -1, causal=True, causal_offset=offset)
    y = y if kind == "numpy" else y.detach().numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-15, atol=0)


def test_head_axis_beyond_int_is_a_value_error():
    with pytest.raises(ValueError, match="head_axis"):
        softmax.softmax(np.zeros((2, 2, 3)), -1, max_bias=1.0, head_axis=2 ** 40)  # was OverflowError


@pytest.mark.parametrize("offset", [2 ** 63 - 1, 2 ** 62 + 5])
def test_causal_offset_near_int64_max_on_the_torch_operation_path(offset):
    # queries + offset wrapped around in int64: rows after the first were masked wrongly
    # under vmap, and the create_graph gradient was wrong.
    x = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = np.array([[mp_softmax(row) for row in head] for head in x.numpy()])
    y = batched(lambda t: softmax.softmax(t, -1, causal=True, causal_offset=offset))(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-14, atol=0)
    # create_graph: the backward as torch operations; reference the closed form s*y*(dy - <dy, y>).
    leaf = x.clone().requires_grad_()
    dy = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    (grad,) = torch.autograd.grad(softmax.softmax(leaf, -1, causal=True, causal_offset=offset), leaf, dy,
                                  create_graph=True)
    reference = expected * (dy.numpy() - (dy.numpy() * expected).sum(-1, keepdims=True))
    np.testing.assert_allclose(grad.detach().numpy(), reference, rtol=1e-12, atol=1e-15)


# -- logsumexp(axis=()) with b on tensors ------------------------------------------------------


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("return_sign", [False, True])
def test_weighted_logsumexp_over_no_axes_on_a_tensor(keepdims, return_sign):
    # axis=() reduces nothing (SciPy, NumPy); torch's amax / sum took dim=() as every
    # dimension: a RuntimeError, or with keepdims a result of shape (1, 1, 1).
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4))
    b = rng.standard_normal((3, 4))
    expected = scipy.special.logsumexp(x, axis=(), b=b, keepdims=keepdims, return_sign=return_sign)
    got = softmax.logsumexp(torch.tensor(x), axis=(), b=torch.tensor(b), keepdims=keepdims,
                            return_sign=return_sign)
    if not return_sign:
        expected, got = (expected,), (got,)
    for value, reference in zip(got, expected):
        assert tuple(value.shape) == np.shape(reference)
        np.testing.assert_allclose(value.numpy(), reference, rtol=1e-14, atol=1e-15)


# -- out= that is a lazily negated tensor --------------------------------------------------------


@pytest.mark.parametrize("log", [False, True])
def test_backward_into_a_negated_view(log):
    # out._neg_view(): its memory holds -out. The library wrote into a resolved copy, so out
    # kept its old values.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))
    y = np.array([mp_softmax(row) for row in x])
    dy = rng.standard_normal((3, 4))
    if log:
        expected = 0.5 * (dy - y * dy.sum(-1, keepdims=True))
        given, function = torch.tensor(np.log(y)), softmax.log_softmax_backward
    else:
        expected = 0.5 * y * (dy - (dy * y).sum(-1, keepdims=True))
        given, function = torch.tensor(y), softmax.softmax_backward
    out = torch.zeros(3, 4, dtype=torch.float64)._neg_view()
    assert out.is_neg()
    result = function(given, torch.tensor(dy), -1, 0.5, out=out)
    assert result is out
    np.testing.assert_allclose(out.numpy() if not out.is_neg() else out.resolve_neg().numpy(), expected,
                               rtol=1e-13, atol=1e-15)


# -- the torch-operation path (functorch) --------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, -0.7])
def test_functorch_hessian(scale):
    # jacfwd over jacrev: torch 1.13's softmax backward kernels have no forward derivative,
    # so functorch.hessian raised NotImplementedError (docs/python.md lists hessian).
    x = np.random.default_rng(6).standard_normal(5)
    y = mp_softmax(x, scale)
    eye = np.eye(5)
    i = 2
    # d2 y_i / dx_j dx_k = s^2 [y_i (d_ik - y_k)(d_ij - y_j) - y_i y_j (d_jk - y_k)]
    softmax_hessian = scale ** 2 * (y[i] * np.outer(eye[i] - y, eye[i] - y)
                                    - y[i] * (y[:, None] * (eye - y[None, :])))
    # d2 log y_i / dx_j dx_k = -s^2 (diag(y) - y y^T)
    log_softmax_hessian = -scale ** 2 * (np.diag(y) - np.outer(y, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = functorch.hessian(lambda t: softmax.softmax(t, 0, scale)[i])(torch.tensor(x))
        got_log = functorch.hessian(lambda t: softmax.log_softmax(t, 0, scale)[i])(torch.tensor(x))
    np.testing.assert_allclose(got.numpy(), softmax_hessian, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got_log.numpy(), log_softmax_hessian, rtol=1e-12, atol=1e-15)


EXTREME = [
    # (dtype, row, scale, log): rows whose scale does not fit float32, or whose spread overflows
    (torch.float32, [1e-40, 0.0, 1.0], 1e300, False),
    (torch.float32, [1e-40, 0.0, 1.0], 1e300, True),
    (torch.float16, [-INF, 0.0, 1.0], 1e-300, False),
    (torch.bfloat16, [-INF, 0.0, 1.0], 1e-300, True),
    (torch.float32, [3e38, -3e38, 1.0], 1e-39, False),
    (torch.float64, [1e308, -1e308, 0.0], 0.37, True),
    (torch.float64, [1.7e308, -1.7e308, 1e308], 0.25, False),
]


@pytest.mark.parametrize("dtype, row, scale, log", EXTREME)
def test_torch_operation_path_with_extreme_scales(dtype, row, scale, log):
    # scale * x was evaluated in float32 (1e300 -> inf, 1e-300 -> 0: NaN rows) and
    # t - max t overflowed for spreads beyond the range (log-softmax -inf instead of -7.4e307).
    function = softmax.log_softmax if log else softmax.softmax
    x = torch.tensor([row, row], dtype=dtype)
    expected = torch.tensor(mp_softmax(x[0].double().numpy(), scale, log=log)).to(dtype).double().numpy()
    for y in (function(x, -1, scale), batched(lambda t: function(t, 0, scale))(x)):
        got = y[1].double().numpy()
        assert not np.isnan(got).any()
        np.testing.assert_allclose(got, expected, rtol=4 * torch.finfo(dtype).eps, atol=0)


def test_torch_operation_path_float32_accuracy():
    # The formulas ran in float32: exp of a logit rounded to float32 is |z| ulp off.
    x = torch.tensor([[0.0, -30.1, -29.5, -61.3, -5.0, 12.0]], dtype=torch.float32)
    for log in (False, True):
        function = softmax.log_softmax if log else softmax.softmax
        got = batched(lambda t: function(t, 0, 0.7))(x)[0].double().numpy()
        reference = mp_softmax(x[0].double().numpy(), 0.7, log=log)
        ulp = np.spacing(np.maximum(np.abs(reference), 1.0 if log else 0.0).astype(np.float32)).astype(np.float64)
        assert np.all(np.abs(got - reference) <= 2 * ulp), (got, reference)


@pytest.mark.parametrize("scale", [1.0, -2.0, 0.0, 1e-300])
def test_nan_excluded_by_an_additive_mask_is_ignored(scale):
    # An additive -inf excludes its element: the library never reads its x. The
    # torch-operation path made the whole row NaN.
    x = torch.tensor([[1.5, math.nan, 0.25, -1.0]], dtype=torch.float64)
    mask = torch.tensor([0.0, -INF, 0.5, 0.0], dtype=torch.float64)
    for log in (False, True):
        function = softmax.log_softmax if log else softmax.softmax
        kept = [1.5, -INF, 0.25, -1.0]
        expected = mp_softmax(kept, scale, bias=[0.0, 0.0, 0.5, 0.0], log=log) if scale != 0 else \
            mp_softmax([0.0, -INF, 0.0, 0.0], 1.0, bias=[0.0, 0.0, 0.5, 0.0], log=log)
        for y in (function(x, -1, scale, mask=mask), batched(lambda t: function(t, 0, scale, mask=mask))(x)):
            np.testing.assert_allclose(y[0].numpy(), expected, rtol=1e-14, atol=0)


def test_infinite_scale_keeps_the_mask_bias_among_tied_maxima():
    # lim softmax(s * x + m), s -> inf, is softmax(m) over the tied maxima of x (what the
    # library computes); the torch-operation path dropped m and split the mass equally.
    x = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0, 5.0], dtype=torch.float64)
    expected = mp_softmax([1.0, 0.0, -INF])
    for y in (softmax.softmax(x, -1, INF, mask=mask), batched(lambda t: softmax.softmax(t, 0, INF, mask=mask))(x)):
        np.testing.assert_allclose(y[0].numpy(), expected, rtol=1e-15, atol=0)


def test_infinite_logits_share_the_mass_equally_whatever_the_mask():
    # Contract: +inf entries share the mass equally (inf + a finite mask value is inf). The
    # torch-operation path added the mask to the limit and gave softmax([5, 0]) instead.
    x = torch.tensor([[INF, INF, 1.0]], dtype=torch.float64)
    mask = torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64)
    for y in (softmax.softmax(x, -1, 0.5, mask=mask), batched(lambda t: softmax.softmax(t, 0, 0.5, mask=mask))(x)):
        np.testing.assert_array_equal(y[0].numpy(), [0.5, 0.5, 0.0])
