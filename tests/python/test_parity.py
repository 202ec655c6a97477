"""Parity with a float64 NumPy reference and with torch.softmax / torch.log_softmax.

Property-based (hypothesis): random shapes, axes, dtypes, memory layouts
(contiguous, transposed, strided slices, reversed, broadcast) and scales.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import softmax
from reference import (LOG_TOLERANCE, TOLERANCE, log_softmax_backward_ref, log_softmax_ref, softmax_backward_ref,
                       softmax_ref)

DTYPES = [np.float32, np.float64]
LAYOUTS = ["contiguous", "transposed", "every_other", "reversed", "broadcast"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_input(rng, shape, dtype, layout, low=-30.0, high=30.0):
    """An array of `shape` whose memory layout is `layout` (values uniform in [low, high))."""
    if layout == "contiguous":
        return rng.uniform(low, high, size=shape).astype(dtype)
    if layout == "transposed":
        return rng.uniform(low, high, size=shape[::-1]).astype(dtype).T
    if layout == "every_other":
        big = rng.uniform(low, high, size=tuple(2 * d for d in shape)).astype(dtype)
        return big[tuple(slice(None, None, 2) for _ in shape)]
    if layout == "reversed":
        return rng.uniform(low, high, size=shape).astype(dtype)[..., ::-1]
    if layout == "broadcast":
        row = rng.uniform(low, high, size=(1,) + tuple(shape[1:])).astype(dtype)
        return np.broadcast_to(row, shape)
    raise AssertionError(layout)


cases = st.fixed_dictionaries({
    "shape": st.lists(st.integers(1, 7), min_size=1, max_size=4).map(tuple),
    "dtype": st.sampled_from(DTYPES),
    "layout": st.sampled_from(LAYOUTS),
    "scale": st.one_of(st.sampled_from([1.0, 0.5, 2.0, -1.0, 0.0, 0.01, 10.0]),
                       st.floats(-4.0, 4.0, allow_nan=False)),
    "axis_seed": st.integers(0, 1 << 16),
    "seed": st.integers(0, 1 << 30),
})


def pick_axis(shape, axis_seed):
    ndim = len(shape)
    return (axis_seed % (2 * ndim)) - ndim  # -ndim .. ndim-1


def f64_tolerance(dtype):
    tolerance = dict(TOLERANCE[np.dtype(dtype)])
    if dtype == np.float64:
        tolerance["rtol"] = 1e-12  # the reference's own rounding of scale * x, amplified by exp
    return tolerance


@SETTINGS
@given(cases)
def test_softmax_matches_float64_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = make_input(rng, case["shape"], case["dtype"], case["layout"])
    axis = pick_axis(case["shape"], case["axis_seed"])
    y = softmax.softmax(x, axis=axis, scale=case["scale"])
    assert type(y) is np.ndarray and y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(y, softmax_ref(x, axis, case["scale"]), **f64_tolerance(case["dtype"]))


@SETTINGS
@given(cases)
def test_log_softmax_matches_float64_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = make_input(rng, case["shape"], case["dtype"], case["layout"])
    axis = pick_axis(case["shape"], case["axis_seed"])
    y = softmax.log_softmax(x, axis=axis, scale=case["scale"])
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(y, log_softmax_ref(x, axis, case["scale"]), **LOG_TOLERANCE[np.dtype(case["dtype"])])


@SETTINGS
@given(cases)
def test_backward_matches_float64_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = make_input(rng, case["shape"], case["dtype"], case["layout"])
    dy = make_input(rng, case["shape"], case["dtype"], case["layout"], -1.0, 1.0)
    axis = pick_axis(case["shape"], case["axis_seed"])
    scale = case["scale"]
    y = softmax.softmax(x, axis=axis, scale=scale)
    logy = softmax.log_softmax(x, axis=axis, scale=scale)
    dx = softmax.softmax_backward(y, dy, axis=axis, scale=scale)
    dlog = softmax.log_softmax_backward(logy, dy, axis=axis, scale=scale)
    atol = 1e-5 if case["dtype"] == np.float32 else 1e-12
    np.testing.assert_allclose(dx, softmax_backward_ref(y, dy, axis, scale), rtol=1e-4, atol=atol * max(1, abs(scale)))
    np.testing.assert_allclose(dlog, log_softmax_backward_ref(logy, dy, axis, scale), rtol=1e-4,
                               atol=atol * max(1, abs(scale)))


@SETTINGS
@given(cases)
def test_torch_parity(case):
    rng = np.random.default_rng(case["seed"])
    x = torch.from_numpy(np.ascontiguousarray(make_input(rng, case["shape"], case["dtype"], "contiguous")))
    if case["layout"] == "transposed" and x.dim() >= 2:
        x = x.transpose(0, -1)
    elif case["layout"] == "every_other":
        x = x[..., ::2]
    axis = pick_axis(tuple(x.shape), case["axis_seed"])
    scale = case["scale"]
    y = softmax.softmax(x, axis=axis, scale=scale)
    logy = softmax.log_softmax(x, axis=axis, scale=scale)
    assert isinstance(y, torch.Tensor) and y.dtype == x.dtype and y.shape == x.shape
    # torch rounds x * scale in x's type before its softmax: its error grows
    # with |scale * x| (ours does not); allow for it.
    eps = float(torch.finfo(x.dtype).eps)
    rounding = 4 * eps * float((x * scale).abs().max()) if x.numel() else 0.0
    tolerance = dict(rtol=(1e-5 if case["dtype"] == np.float32 else 1e-12) + rounding,
                     atol=(1e-6 if case["dtype"] == np.float32 else 1e-14) + rounding)
    torch.testing.assert_close(y, torch.softmax(x * scale, dim=axis), **tolerance)
    torch.testing.assert_close(logy, torch.log_softmax(x * scale, dim=axis), rtol=tolerance["rtol"],
                               atol=tolerance["atol"] + (1e-5 if case["dtype"] == np.float32 else 1e-12))
    # ... and torch in float64 is as close as our own reference.
    torch.testing.assert_close(y, torch.softmax(x.double() * scale, dim=axis).to(x.dtype),
                               **f64_tolerance(case["dtype"]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_and_in_place(dtype):
    x = np.random.default_rng(1).normal(size=(5, 9)).astype(dtype)
    expected = softmax.softmax(x, axis=0, scale=0.7)
    out = np.empty_like(x)
    assert softmax.softmax(x, axis=0, scale=0.7, out=out) is out
    np.testing.assert_array_equal(out, expected)
    in_place = x.copy()
    assert softmax.softmax(in_place, axis=0, scale=0.7, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, expected)
    # A non-contiguous out, and an out that overlaps x without being x.
    wide = np.zeros((5, 18), dtype)
    softmax.softmax(x, axis=0, scale=0.7, out=wide[:, ::2])
    # Written in place through strides: another kernel than the contiguous
    # one, so equal within the accuracy contract rather than bitwise.
    np.testing.assert_allclose(wide[:, ::2], expected, **TOLERANCE[np.dtype(dtype)])
    assert not wide[:, 1::2].any()
    shifted = np.zeros(50, dtype)
    shifted[:45] = x.ravel()
    view_in, view_out = shifted[:45].reshape(5, 9), shifted[5:].reshape(5, 9)
    softmax.softmax(view_in, axis=0, scale=0.7, out=view_out)
    np.testing.assert_array_equal(view_out, expected)


def test_torch_out_and_zero_copy():
    x = torch.randn(4, 6)
    out = torch.empty(4, 6)
    assert softmax.softmax(x, out=out) is out
    torch.testing.assert_close(out, torch.softmax(x, -1))
    # The result is a tensor over the array the C code wrote: no copy back.
    y = softmax.softmax(x)
    assert y.is_contiguous() and y.data_ptr() == y.numpy().__array_interface__["data"][0]


def test_special_values_follow_the_contract():
    inf, nan = np.inf, np.nan
    x = np.array([[1.0, -inf, 2.0], [-inf, -inf, -inf], [inf, 0.0, inf], [1.0, nan, 2.0]])
    y = softmax.softmax(x)
    assert y[0, 1] == 0.0 and np.isclose(y[0].sum(), 1.0)
    np.testing.assert_array_equal(y[1], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(y[2], [0.5, 0.0, 0.5])
    assert np.isnan(y[3]).all()
    np.testing.assert_array_equal(softmax.log_softmax(x)[1], [-inf, -inf, -inf])
    np.testing.assert_array_equal(softmax.softmax(np.array([3.0, 1.0, 3.0]), scale=inf), [0.5, 0.0, 0.5])
    np.testing.assert_allclose(softmax.softmax(np.array([1.0, 5.0, 2.0, 4.0]), scale=0.0), [0.25] * 4)
    # Stable where the seeds' original norm_exp_softmax returns NaN (scale * x > 88.7 in float32).
    big = np.array([100.0, 200.0, 300.0], np.float32)
    np.testing.assert_allclose(softmax.softmax(big), softmax_ref(big).astype(np.float32), rtol=1e-6, atol=1e-30)


def test_temperature_is_scale_over_temperature():
    x = np.array([2.0, 1.0, 3.0, 5.0, 4.0])
    for temperature in [0.1, 0.5, 1.0, 10.0]:
        np.testing.assert_array_equal(softmax.softmax(x, temperature=temperature),
                                      softmax.softmax(x, scale=1.0 / temperature))
    np.testing.assert_array_equal(softmax.softmax(x, scale=2.0, temperature=4.0), softmax.softmax(x, scale=0.5))
    np.testing.assert_array_equal(softmax.softmax(x, temperature=0), [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(softmax.softmax(x, scale=-1.0, temperature=0), [0, 1, 0, 0, 0])


def test_empty_and_many_dimensions():
    assert softmax.softmax(np.zeros((0, 4))).shape == (0, 4)
    assert softmax.softmax(np.zeros((3, 0)), axis=0).shape == (3, 0)
    x = np.random.default_rng(2).normal(size=(2,) * 10)  # more dimensions than the C descriptor's 8
    np.testing.assert_allclose(softmax.softmax(x, axis=4), softmax_ref(x, 4), rtol=1e-13)


@pytest.mark.parametrize("container", ["numpy", "torch"])
def test_masks(container):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 5))
    keep = np.array([True, False, True, True, False])
    additive = np.where(keep, 0.5, -np.inf)
    expected_keep = softmax_ref(np.where(keep, x, -np.inf))
    expected_additive = softmax_ref(2.0 * x + additive)
    wrap = torch.from_numpy if container == "torch" else (lambda a: a)
    y_keep = softmax.softmax(wrap(x), mask=wrap(keep))
    y_additive = softmax.softmax(wrap(x), scale=2.0, mask=wrap(additive))
    np.testing.assert_allclose(np.asarray(y_keep), expected_keep, rtol=1e-13, atol=0)
    np.testing.assert_allclose(np.asarray(y_additive), expected_additive, rtol=1e-13, atol=0)
    # A fully masked row: zeros (log-softmax -inf), never NaN.
    nothing = np.zeros((3, 5), bool)
    np.testing.assert_array_equal(np.asarray(softmax.softmax(wrap(x), mask=wrap(nothing))), 0.0)
    np.testing.assert_array_equal(np.asarray(softmax.log_softmax(wrap(x), mask=wrap(nothing))), -np.inf)


def test_tensors_are_read_and_written_in_place():
    x = torch.randn(3, 7)
    expected = torch.softmax(x, -1)
    with torch.no_grad():
        assert softmax.softmax(x, out=x) is x  # the tensor's own memory, written by the C code
    torch.testing.assert_close(x, expected)
    base = torch.randn(6, 8, dtype=torch.float64)
    view = base.t()[::2]  # non-contiguous view with an offset-free, strided layout
    torch.testing.assert_close(softmax.softmax(view, axis=0), torch.softmax(view, 0), rtol=1e-13, atol=0)
    negated = torch.randn(4, 5)._neg_view()  # lazily negated: memory holds -x
    torch.testing.assert_close(softmax.softmax(negated), torch.softmax(negated.resolve_neg(), -1))
    empty = torch.empty(0, 5)
    assert softmax.softmax(empty).shape == (0, 5)


def test_tensor_short_path_is_taken_after_any_first_call():
    from softmax import _core, _softmax

    softmax.softmax_backward(torch.ones(2), torch.ones(2))  # a first tensor call that is not a forward
    softmax.softmax(torch.ones(2))
    assert _softmax.execute_tensor(_softmax.OP_SOFTMAX, torch.ones(3), -1, 1.0) is not NotImplemented
    assert _core._torch_registered
