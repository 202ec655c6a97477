"""SciPy's own test cases for softmax, log_softmax and logsumexp, restated in our words against softmax.special.

Ported (from scipy/special/tests/test_logsumexp.py and test_log_softmax.py,
SciPy 1.10): logsumexp of large inputs (arange(200), [1000, 1000], 1000
copies of 10000), of 2-D input along an axis with 1e10 / -inf entries,
keepdims, weights b (zeros, negative weights with return_sign, the shape of
the sign), infinities and NaN, a tuple of axes; softmax of small and large
inputs (arange(4) with high-precision values, [1000, 1]), along one axis, over
several axes and over all elements, of a 0-d input; log_softmax of [1000, 1],
arange(4) (high-precision values), 2-D along each axis, 3-D, 0-d; integer and
list inputs. The expected values are SciPy's (computed here by scipy.special
or written from mpmath, as SciPy's tests write them).

Left out, and why:
- complex inputs (SciPy's logsumexp and softmax take them): the library is
  for real types; they raise TypeError.
- softmax([inf, 1]): SciPy gives NaN; the library's contract gives the +inf
  element the whole mass ([1, 0]); README "The numerics contract".
- logsumexp([]): SciPy 1.10 raises on an empty array (later SciPy returns
  -inf, as we do); the test below asserts -inf.
- log_softmax(scalar) == 0 and log_softmax([1000, 1])[0] == 0 exactly: that
  a log-probability is never above 0 and exactly 0 for a certain outcome is
  the C library's contract, tested by its own test suite; here the value is
  checked within 1e-16 of 0.
"""

import math

import numpy as np
import pytest

scipy = pytest.importorskip("scipy")  # python3-scipy: the reference
import scipy.special  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal, assert_equal

from softmax.special import log_softmax, logsumexp, softmax


def test_logsumexp_large_inputs():
    a = np.arange(200)
    assert_allclose(logsumexp(a), np.log(np.sum(np.exp(a))), rtol=1e-14)
    assert_allclose(logsumexp([1000, 1000]), 1000.0 + np.log(2.0), rtol=1e-15)
    assert_allclose(logsumexp(np.full(1000, 10000.0)), 10000.0 + np.log(1000), rtol=1e-15)


def test_logsumexp_along_an_axis_and_keepdims():
    x = np.array([[1e10, 1e-10], [-1e10, -np.inf]])
    assert_allclose(logsumexp(x, axis=-1), [1e10, -1e10], rtol=1e-15)
    assert_allclose(logsumexp(x, axis=-1, keepdims=True), [[1e10], [-1e10]], rtol=1e-15)
    assert_allclose(logsumexp(x, axis=(-1, -2)), 1e10, rtol=1e-15)
    assert_allclose(logsumexp(x, axis=(-1, -2), keepdims=True), [[1e10]], rtol=1e-15)
    a = np.arange(24.0).reshape(2, 3, 4) / 7
    assert_allclose(logsumexp(a, axis=(0, 2)), scipy.special.logsumexp(a, axis=(0, 2)), rtol=1e-14)
    assert_equal(logsumexp([]), -np.inf)


def test_logsumexp_infinities_and_nan():
    assert_equal(logsumexp([np.inf, -np.inf]), np.inf)
    assert_equal(logsumexp([np.inf, np.inf]), np.inf)
    assert_equal(logsumexp([-np.inf, -np.inf]), -np.inf)
    assert math.isnan(logsumexp([np.nan, 1.0]))
    assert_array_equal(logsumexp([[-np.inf, 1.0], [-np.inf, -np.inf]], axis=1), [1.0, -np.inf])


def test_logsumexp_weights():
    a = np.arange(200)
    b = np.arange(200, 0, -1)
    assert_allclose(logsumexp(a, b=b), np.log(np.sum(b * np.exp(a))), rtol=1e-14)
    assert_allclose(logsumexp([1000, 1000], b=[1.2, 1.2]), 1000 + np.log(2 * 1.2), rtol=1e-15)
    x = np.array([1e-40] * 100000)
    logx = np.log(x)
    X = np.vstack([x, x])
    logX = np.vstack([logx, logx])
    assert_allclose(np.exp(logsumexp(logX, b=X)), (X ** 2).sum(), rtol=1e-13)
    assert_allclose(np.exp(logsumexp(logX, b=X, axis=0)), (X ** 2).sum(axis=0), rtol=1e-13)
    assert_allclose(logsumexp([1.0, 2.0], b=[0.0, 1.0]), 2.0, rtol=1e-15)  # a zero weight drops its term
    assert_equal(logsumexp([1.0, 2.0], b=[0.0, 0.0]), -np.inf)


def test_logsumexp_sign():
    a = [1, 1, 1]
    b = [1, -1, -1]
    value, sign = logsumexp(a, b=b, return_sign=True)
    assert_allclose(value, 1.0, rtol=1e-15)
    assert_equal(sign, -1)
    with np.errstate(invalid="ignore"):
        assert math.isnan(logsumexp(a, b=b))
    value, sign = logsumexp([1, 1], b=[1, -1], return_sign=True)  # a sum of exactly 0
    assert_equal(value, -np.inf)
    assert_equal(sign, 0)
    a = np.ones((1, 2, 3, 4))
    b = np.ones_like(a)
    r, s = logsumexp(a, axis=2, b=b, return_sign=True)
    assert_equal(r.shape, s.shape)
    assert_equal(r.shape, (1, 2, 4))
    r, s = logsumexp(a, axis=(1, 3), b=b, return_sign=True)
    assert_equal(r.shape, (1, 3))
    assert_equal(s.shape, (1, 3))


def test_softmax_values():
    assert_equal(softmax(5.0), 1.0)
    # exp(arange(4)) / sum, to 20 digits (mpmath)
    expected = np.array([0.032058603280084994, 0.087144318742032567, 0.23688281808991013, 0.64391425988797231])
    assert_allclose(softmax(np.arange(4)), expected, rtol=1e-13)
    assert_allclose(softmax(np.arange(4) + 1000.0), expected, rtol=1e-13)  # shift invariance, no overflow
    assert_allclose(softmax([1000, 1]), [1.0, np.exp(-999)], rtol=1e-13, atol=0)


def test_softmax_axes():
    x = np.arange(4)
    expected = softmax(x)
    x2 = np.array([x, x + 100])
    assert_allclose(softmax(x2, axis=1), np.array([expected, expected]), rtol=1e-13)
    assert_allclose(softmax(x2.T, axis=0), np.array([expected, expected]).T, rtol=1e-13)
    x3 = np.array([x, x + 100, x + 1000]).reshape(3, 1, 4)
    assert_allclose(softmax(x3, axis=2), np.array([expected] * 3).reshape(3, 1, 4), rtol=1e-13)
    # over several axes and over all elements: a distribution over all of them
    everything = softmax(x2)
    assert_allclose(everything.sum(), 1.0, rtol=1e-15)
    assert_allclose(everything, scipy.special.softmax(x2), rtol=1e-13)
    y = np.arange(24.0).reshape(2, 3, 4) / 5
    assert_allclose(softmax(y, axis=(0, 2)), scipy.special.softmax(y, axis=(0, 2)), rtol=1e-13)
    assert_allclose(softmax(y, axis=(0, 2)).sum(axis=(0, 2)), np.ones(3), rtol=1e-14)


@pytest.mark.parametrize("x,expected", [
    (np.array([1000, 1]), np.array([0, -999])),
    # log_softmax(arange(4)) from mpmath at 200 digits, rounded to float64
    (np.arange(4), np.array([-3.4401896985611953, -2.4401896985611953, -1.4401896985611953,
                             -0.44018969856119533])),
])
def test_log_softmax_values(x, expected):
    assert_allclose(log_softmax(x), expected, rtol=1e-13, atol=1e-16)


def test_log_softmax_shapes_and_axes():
    x = np.arange(8).reshape(2, 4)
    expected_row = np.array([-3.4401896985611953, -2.4401896985611953, -1.4401896985611953, -0.44018969856119533])
    assert_allclose(log_softmax(x, axis=1), np.array([expected_row] * 2), rtol=1e-13)
    assert_allclose(log_softmax(x.T, axis=0), np.array([expected_row] * 2).T, rtol=1e-13)
    x3 = np.arange(24).reshape(2, 3, 4)
    assert_allclose(log_softmax(x3, axis=2), np.broadcast_to(expected_row, (2, 3, 4)), rtol=1e-13)
    assert_allclose(log_softmax(x3), scipy.special.log_softmax(x3), rtol=1e-13)
    assert abs(log_softmax(1.0)) <= 1e-16 and log_softmax(1.0).shape == ()
    assert_allclose(log_softmax([1, 2, 3]), scipy.special.log_softmax([1, 2, 3]), rtol=1e-14)
