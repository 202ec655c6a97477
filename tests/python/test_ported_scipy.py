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

Also ported (SciPy's later test_logsumexp.py / test_softmax.py): a zero weight
leaving out a huge, infinite or NaN logit; b broadcast against a of another
shape, with axes and keepdims; signs with infinite logits and NaN / inf
weights; the result types of float16 / float32 input and of b; empty
input with weights; axis=(); int64 logits beyond 2**53 (SciPy subtracts the
maximum in integers first, so softmax([2**62 + 1, 2**62]) is softmax([1, 0])).

Left out, and why:
- complex inputs (SciPy's logsumexp and softmax take them): the library is
  for real types; they raise TypeError (x and b, with and without b: the
  imaginary part is never dropped silently).
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


# -- further cases (SciPy's later tests) -----------------------------------------------------------


def test_logsumexp_a_zero_weight_leaves_out_any_logit():
    assert_equal(logsumexp([1.0, 10000.0], b=[1, 0]), 1.0)
    assert_equal(logsumexp([np.inf, 1.0], b=[0, 1]), 1.0)
    assert_equal(logsumexp([np.nan, 1.0], b=[0, 1]), 1.0)
    assert_equal(logsumexp([-np.inf, 1.0], b=[0, 2], return_sign=True), (1.0 + math.log(2.0), 1.0))


def test_logsumexp_weights_broadcast_against_a():
    a = np.zeros((4, 1, 2, 1))
    b = np.ones((3, 1, 5))
    # (4, 3, 2, 5) terms exp(0) = 1: the sum counts them
    assert_allclose(logsumexp(a, b=b), math.log(120.0), rtol=1e-15)
    got = logsumexp(a, axis=(0, 2), b=b)
    assert got.shape == (3, 5)
    assert_allclose(got, np.full((3, 5), math.log(8.0)), rtol=1e-15)
    got, sign = logsumexp(a, axis=(0, 2), b=-b, keepdims=True, return_sign=True)
    assert got.shape == sign.shape == (1, 3, 1, 5)
    assert_allclose(got, np.full((1, 3, 1, 5), math.log(8.0)), rtol=1e-15)
    assert_equal(sign, -np.ones((1, 3, 1, 5)))


def test_logsumexp_signs_with_infinities_and_odd_weights():
    assert_equal(logsumexp([np.inf, 1.0], b=[-1, 1], return_sign=True), (np.inf, -1.0))
    with np.errstate(invalid="ignore"):
        value, sign = logsumexp([np.inf, np.inf], b=[1, -1], return_sign=True)  # inf - inf
        assert math.isnan(value) and math.isnan(sign)
        value, sign = logsumexp([1.0, 2.0], b=[np.nan, 1.0], return_sign=True)
        assert math.isnan(value) and math.isnan(sign)
    assert_equal(logsumexp([1.0, 2.0], b=[np.inf, 1.0], return_sign=True), (np.inf, 1.0))
    assert_equal(logsumexp([-np.inf, -np.inf], b=[-1, 1], return_sign=True), (-np.inf, 0.0))


@pytest.mark.parametrize("a_dtype,b_dtype,expected", [
    (np.float32, None, np.float32),
    (np.float16, None, np.float16),
    (np.float32, np.float32, np.float32),
    (np.float32, np.float64, np.float64),
    (np.float64, np.float16, np.float64),
    (np.int64, None, np.float64),
])
def test_logsumexp_result_types(a_dtype, b_dtype, expected):
    a = np.array([1.0, 2.0, 4.0]).astype(a_dtype)
    b = None if b_dtype is None else np.array([1.0, 2.0, 0.5]).astype(b_dtype)
    value, sign = logsumexp(a, b=b, return_sign=True)
    assert np.asarray(value).dtype == expected and np.asarray(sign).dtype == expected
    weights = [1.0, 2.0, 0.5] if b_dtype else [1.0, 1.0, 1.0]
    exact = math.log(sum(w * math.exp(v) for w, v in zip(weights, [1.0, 2.0, 4.0])))  # (float64 to 1 ulp)
    assert_allclose(float(value), exact, rtol=4 * float(np.finfo(expected).eps))


def test_logsumexp_empty_input_with_weights():
    # The sum of no terms is 0: -inf, sign 0 (SciPy >= 1.11; the unweighted result is the same).
    assert_equal(logsumexp(np.empty((0, 3)), axis=0, b=np.ones((0, 3))), np.full(3, -np.inf))
    assert_equal(logsumexp(np.empty((0, 3)), axis=0), np.full(3, -np.inf))
    value, sign = logsumexp(np.empty((0, 3)), axis=0, b=np.ones((0, 3)), keepdims=True, return_sign=True)
    assert value.shape == sign.shape == (1, 3)
    assert_equal(sign, np.zeros((1, 3)))
    assert logsumexp(np.empty((0, 3)), axis=1, b=np.ones((0, 3))).shape == (0,)


def test_empty_tuple_of_axes_reduces_nothing():
    x = np.arange(6.0).reshape(2, 3)
    assert_equal(softmax(x, axis=()), np.ones((2, 3)))  # each element its own distribution
    assert_equal(log_softmax(x, axis=()), np.zeros((2, 3)))
    assert_equal(logsumexp(x, axis=()), x)
    assert_equal(logsumexp(x, axis=(), b=np.full((2, 3), 2.0)), x + math.log(2.0))


def test_complex_input_is_refused_never_truncated():
    # SciPy computes complex results; the package is for real types. Dropping the imaginary
    # part (what the weighted path did, as np.abs of a complex sum) would be a wrong value.
    z = np.array([1 + 1j, 2.0])
    for call in (lambda: softmax(z), lambda: log_softmax(z), lambda: logsumexp(z), lambda: logsumexp(z, b=[1, 1]),
                 lambda: logsumexp([1.0, 2.0], b=[1j, 1.0]),
                 lambda: logsumexp([1.0, 2.0], b=np.array([1, 1], complex))):
        with pytest.raises(TypeError, match="complex"):
            call()


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_int64_logits_beyond_float64_precision(dtype):
    # SciPy: x - max(x) in integers, then exp: softmax([2**62 + 1, 2**62]) = softmax([1, 0]).
    # Converting to float64 first made the two logits equal: [0.5, 0.5].
    x = np.array([2 ** 62 + 1, 2 ** 62, 2 ** 62 - 2], dtype=dtype)
    e = [math.exp(0.0), math.exp(-1.0), math.exp(-3.0)]
    expected = np.array(e) / sum(e)  # (to 2 ulp)
    assert_allclose(softmax(x), expected, rtol=1e-15)
    if dtype is np.int64:  # (SciPy's uint64 subtraction wraps around: NaN)
        assert_allclose(scipy.special.softmax(x), expected, rtol=1e-15)
    assert_allclose(log_softmax(x), np.log(expected), rtol=1e-15)
    assert_allclose(logsumexp(x), 2.0 ** 62, rtol=1e-15)
    assert_allclose(logsumexp(x - x.min(), b=[1.0, 2.0, 3.0]) - 3.0, math.log(1 + 2 * math.exp(-1) + 3 * math.exp(-3)),
                    rtol=1e-14)
