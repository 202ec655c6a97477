"""The argument forms SciPy and torch users bring: 0-d inputs, axis=None and tuples of axes, promoted
types, dim= / dtype=, SciPy's logsumexp(b, keepdims, return_sign), causal= and ALiBi, and TypeError for
wrongly typed arguments. References: scipy.special, torch and NumPy formulas."""

import math

import numpy as np
import pytest

scipy = pytest.importorskip("scipy")  # python3-scipy: the reference
import scipy.special  # noqa: E402
import torch

import softmax
from softmax import special

RNG = np.random.default_rng(7)
A = RNG.normal(scale=2.0, size=(3, 4, 5))


def test_zero_dimensional_inputs():
    for x in (np.array(3.0), 3.0, np.float32(-2.0), torch.tensor(3.0, dtype=torch.float64)):
        y = softmax.softmax(x)
        assert y.shape == () and float(y) == 1.0
        logy = softmax.log_softmax(x)
        eps = np.finfo(np.float32 if isinstance(x, np.float32) else np.float64).eps
        assert logy.shape == () and abs(float(logy)) <= eps  # (exactly 0: the C library's contract)
    assert softmax.softmax(np.array(2.0), axis=0) == 1.0 and softmax.softmax(torch.tensor(2.0), dim=-1) == 1.0
    with pytest.raises(ValueError, match="out of range for a 0-d x"):
        softmax.softmax(np.array(2.0), axis=1)
    assert special.logsumexp(np.array(2.0)) == 2.0
    assert abs(softmax.entropy(np.array(2.0))) <= 2.0 ** -52  # (the library's row statistics: within an ulp of 0)


@pytest.mark.parametrize("axis", [None, (0, 2), (2, 0), (1,), (-1, -2), (0, 1, 2), -2])
def test_axis_none_and_tuples_match_scipy(axis):
    for function, reference in ((softmax.softmax, scipy.special.softmax),
                                (softmax.log_softmax, scipy.special.log_softmax)):
        np.testing.assert_allclose(function(A, axis=axis), reference(A, axis=axis), rtol=1e-14, atol=1e-15)
        t = torch.from_numpy(A)
        np.testing.assert_allclose(function(t, axis=axis).numpy(), reference(A, axis=axis), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(softmax.logsumexp(A, axis=axis), scipy.special.logsumexp(A, axis=axis), rtol=1e-14)
    np.testing.assert_allclose(special.logsumexp(A, axis=axis, keepdims=True),
                               scipy.special.logsumexp(A, axis=axis, keepdims=True), rtol=1e-14)
    assert special.softmax(A).shape == A.shape
    np.testing.assert_allclose(special.softmax(A), scipy.special.softmax(A), rtol=1e-14, atol=1e-16)
    mask = RNG.random((4, 5)) > 0.3
    expected = scipy.special.softmax(np.where(mask, A, -np.inf), axis=(1, 2))
    np.testing.assert_allclose(softmax.softmax(A, axis=(1, 2), mask=mask), expected, rtol=1e-14, atol=1e-16)
    out = np.empty_like(A)
    assert softmax.softmax(A, axis=(0, 2), out=out) is out
    with pytest.raises(ValueError, match="repeated axis"):
        softmax.softmax(A, axis=(0, 0))
    with pytest.raises(ValueError, match="out of range"):
        softmax.softmax(A, axis=(0, 3))


def test_types_are_promoted_as_scipy_and_torch_promote_them():
    for values in ([1, 2, 3], (1.0, 2.0, 3.0), np.arange(3), np.arange(3, dtype=np.int8), np.array([True, False])):
        y = softmax.softmax(values)
        assert isinstance(y, np.ndarray) and y.dtype == np.float64
        np.testing.assert_allclose(y, scipy.special.softmax(np.asarray(values, dtype=np.float64)), rtol=1e-15)
    assert softmax.softmax(np.arange(3, dtype=np.float32)).dtype == np.float32
    t = torch.arange(4)
    y = softmax.softmax(t)
    assert y.dtype == torch.get_default_dtype()
    torch.testing.assert_close(y, torch.softmax(t.float(), -1))
    torch.testing.assert_close(softmax.log_softmax(t, dim=0, dtype=torch.float64),
                               torch.log_softmax(t, dim=0, dtype=torch.float64))
    x = torch.randn(3, 4)
    torch.testing.assert_close(softmax.softmax(x, dim=0, dtype=torch.float64), torch.softmax(x, 0, dtype=torch.float64))
    np.testing.assert_allclose(softmax.softmax(A.astype(np.float32), dtype=np.float64),
                               scipy.special.softmax(A.astype(np.float32).astype(np.float64), -1),
                               rtol=1e-15)
    np.testing.assert_allclose(softmax.logsumexp([1, 2, 3]), scipy.special.logsumexp([1, 2, 3]), rtol=1e-15)


@pytest.mark.parametrize("kwargs,match", [
    (dict(fast="yes"), "fast must be True or False, not str"),
    (dict(fast=1), "fast must be True or False, not int"),
    (dict(axis=True), "axis must be an integer, not bool"),
    (dict(axis=1.0), "axis must be an integer, not float"),
    (dict(axis=(0, "1")), "axis must be an integer, not str"),
    (dict(dim=0, axis=1), "give axis or dim, not both"),
    (dict(dim=0, axis=-1), "give axis or dim, not both"),  # an explicit axis=-1 is not the default
    (dict(scale=True), "scale must be a real number, not bool"),
    (dict(scale="2"), "scale must be a real number, not str"),
    (dict(temperature=[1.0]), "temperature must be a real number, not list"),
    (dict(causal=1), "causal must be True or False, not int"),
    (dict(causal=True, causal_offset=0.5), "causal_offset must be an integer, not float"),
    (dict(max_bias="8"), "max_bias must be a real number, not str"),
    (dict(dtype="float64x"), "dtype must be a NumPy dtype"),
])
def test_wrongly_typed_arguments_are_type_errors(kwargs, match):
    for function in (softmax.softmax, softmax.log_softmax):
        with pytest.raises(TypeError, match=match):
            function(A, **kwargs)


def causal_alibi_reference(x, scale, offset, max_bias, log):
    """Scores [batch, heads, q, k]: keep j <= i + offset, bias slope(h) * j (ggml's slopes), in float64."""
    batch, heads, q, k = x.shape
    z = x.astype(np.float64) * scale
    if max_bias > 0:
        h2 = 2 ** int(math.floor(math.log2(heads)))
        m0, m1 = 2.0 ** (-max_bias / h2), 2.0 ** (-max_bias / (2 * h2))
        slopes = np.array([m0 ** (h + 1) if h < h2 else m1 ** (2 * (h - h2) + 1) for h in range(heads)])
        z = z + slopes[:, None, None] * np.arange(k)
    keep = np.arange(k)[None, :] <= np.arange(q)[:, None] + offset
    z = np.where(keep, z, -np.inf)
    return scipy.special.log_softmax(z, -1) if log else scipy.special.softmax(z, -1)


@pytest.mark.parametrize("offset", [0, 2, -1])
@pytest.mark.parametrize("max_bias", [0.0, 8.0])
def test_causal_and_alibi_match_a_reference(offset, max_bias):
    x = RNG.normal(size=(2, 3, 6, 6))  # 3 heads: ALiBi's second slope series is used too
    for log, function in ((False, softmax.softmax), (True, softmax.log_softmax)):
        expected = causal_alibi_reference(x, 0.7, offset, max_bias, log)
        if offset < 0:  # the first row keeps nothing: zeros (log: -inf), never NaN
            expected[:, :, 0, :] = -np.inf if log else 0.0
        got = function(x, scale=0.7, causal=True, causal_offset=offset, max_bias=max_bias)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
        got = function(torch.from_numpy(x), scale=0.7, causal=True, causal_offset=offset, max_bias=max_bias)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13, atol=1e-15)
    alibi_only = softmax.softmax(x, max_bias=8.0)
    expected = causal_alibi_reference(x, 1.0, 6, 8.0, False)
    np.testing.assert_allclose(alibi_only, expected, rtol=1e-13)
    with pytest.raises(ValueError, match="causal=True needs the query axis"):
        softmax.softmax(x[0, 0, 0], causal=True)
    with pytest.raises(ValueError, match="single axis"):
        softmax.softmax(x, axis=(2, 3), causal=True)
    with pytest.raises(ValueError, match="max_bias"):
        softmax.softmax(x, max_bias=-1.0)


def test_logsumexp_with_scipys_arguments():
    b = RNG.normal(size=(4, 5))
    for axis in (None, 0, 1, (0, 1), -1):
        for keepdims in (False, True):
            got = special.logsumexp(A[0], axis, b, keepdims, True)
            expected = scipy.special.logsumexp(A[0], axis, b, keepdims, True)
            np.testing.assert_allclose(got[0], expected[0], rtol=1e-13)
            np.testing.assert_array_equal(got[1], expected[1])
            with np.errstate(invalid="ignore"):
                np.testing.assert_allclose(special.logsumexp(A[0], axis, b, keepdims),
                                           scipy.special.logsumexp(A[0], axis, b, keepdims), rtol=1e-13)
            t = torch.from_numpy(A[0])
            value, sign = softmax.logsumexp(t, axis=axis, b=torch.from_numpy(b), keepdims=keepdims, return_sign=True)
            np.testing.assert_allclose(value.numpy(), expected[0], rtol=1e-13)
            np.testing.assert_array_equal(sign.numpy(), expected[1])
    assert special.logsumexp([-np.inf, -np.inf], return_sign=True) == scipy.special.logsumexp([-np.inf, -np.inf],
                                                                                              return_sign=True)
    assert special.logsumexp([1.0, 2.0], b=[1.0, -1.0]) != special.logsumexp([1.0, 2.0], b=[1.0, -1.0])  # NaN
    np.testing.assert_allclose(special.logsumexp([1.0, 2.0], b=[0.0, 3.0]), 2.0 + math.log(3.0), rtol=1e-15)
    with pytest.raises(TypeError, match="keepdims and return_sign must be True or False"):
        special.logsumexp(A, keepdims="no")


def same_value(got, expected):
    """Equal as numbers, NaN equal to NaN."""
    return math.isnan(expected) and math.isnan(got) or got == expected


def test_logsumexp_weights_of_zero_leave_out_infinite_and_nan_logits_as_scipy():
    # SciPy sets the logits of weight 0 to -inf before anything else: an inf
    # or a NaN there changes nothing (0 * exp(inf) would be NaN).
    b = np.array([0.0, 1.0, 2.0])
    for first in (np.inf, -np.inf, np.nan):
        a = np.array([first, 1.0, -0.5])
        with np.errstate(invalid="ignore"):  # SciPy's own inf - inf, on its way to the same answer
            expected = scipy.special.logsumexp(a, b=b)
            expected_with_sign = scipy.special.logsumexp(a, b=b, return_sign=True)
        assert math.isfinite(expected)
        np.testing.assert_allclose(special.logsumexp(a, b=b), expected, rtol=1e-15)
        np.testing.assert_allclose(float(softmax.logsumexp(torch.from_numpy(a), b=torch.from_numpy(b))), expected,
                                   rtol=1e-15)
        value, sign = special.logsumexp(a, b=b, return_sign=True)
        assert (value, sign) == pytest.approx(expected_with_sign, rel=1e-15)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_logsumexp_weights_at_the_limit_scales_are_the_unweighted_limits(kind):
    # With b of ones the weighted form is the unweighted one, also where
    # scale * x meets 0 * inf: scale 0 makes every non-NaN logit 0, an
    # infinite scale (temperature 0) leaves a zero logit 0.
    rows = [[0.0, 1.0], [0.0, -1.0], [-2.0, -1.0], [np.inf, 1.0], [-np.inf, 0.0], [np.nan, 0.0], [0.0, 0.0]]
    settings = [dict(scale=math.inf), dict(scale=-math.inf), dict(temperature=0), dict(scale=0.0),
                dict(scale=-2.0, temperature=0)]
    for row in rows:
        for setting in settings:
            x = np.array(row)
            if kind == "torch":
                x = torch.from_numpy(x)
            ones = np.ones(2) if kind == "numpy" else torch.ones(2, dtype=torch.float64)
            expected = float(softmax.logsumexp(x, **setting))
            got = float(softmax.logsumexp(x, b=ones, **setting))
            assert same_value(got, expected), (row, setting, got, expected)
            # and the weights still weigh: log(2 e^z) = log 2 + z
            got_twice = float(softmax.logsumexp(x, b=2 * ones, **setting))
            assert same_value(got_twice, expected + math.log(2.0)), (row, setting, got_twice)


def test_logsumexp_sign_of_a_nan_result_is_nan_as_scipys():
    a = np.array([np.nan, 1.0])
    expected = scipy.special.logsumexp(a, return_sign=True)
    assert math.isnan(expected[0]) and math.isnan(expected[1])
    for x in (a, torch.from_numpy(a)):
        for b in (None, np.ones(2)):
            value, sign = softmax.logsumexp(x, b=b if b is None or isinstance(x, np.ndarray) else torch.ones(2),
                                            return_sign=True)
            assert math.isnan(float(value)) and math.isnan(float(sign)), (type(x), b)
    # a row of -inf: sign 0, as SciPy's
    assert softmax.logsumexp(np.array([-np.inf, -np.inf]), return_sign=True)[1] == 0.0


def test_integers_beyond_the_double_range_are_value_errors_naming_the_argument():
    for name in ("scale", "temperature", "max_bias"):
        with pytest.raises(ValueError, match=f"softmax: {name} is beyond the range of a double"):
            softmax.softmax(A, **{name: 10 ** 5000})
    with pytest.raises(ValueError, match="sample: top_p is beyond the range of a double"):
        softmax.sample(A, top_p=-10 ** 400, step=0)


def test_scale_and_temperature_both_infinite_is_named():
    with pytest.raises(ValueError, match=r"scale inf with temperature inf is undefined \(inf / inf\)"):
        softmax.softmax(A, scale=math.inf, temperature=math.inf)
