"""The Python rows of docs/bad_inputs.md that test_errors.py does not already back.

Every bad input raises TypeError or ValueError naming the function and the
reason, and leaves out= byte for byte as it was; inputs that are odd but valid
(read-only, non-contiguous, out= overlapping x) give the same bits as a plain
contiguous call.
"""

import math

import numpy as np
import pytest
import torch

import softmax

# These calls leave step= out on purpose (its default); the warning is tested in test_sampling.py.
pytestmark = pytest.mark.filterwarnings("ignore::softmax.RepeatedSampleWarning")

X = np.linspace(-3.0, 4.0, 12).reshape(3, 4)
SENTINEL = 7.0

needs_sampler = pytest.mark.skipif(not softmax.HAS_SAMPLER, reason="this build of libsoftmax has no sampler")


def sentinel_like(shape, dtype=np.float64):
    return np.full(shape, SENTINEL, dtype)


def expect_error(exception, match, call, *args, **kwargs):
    with pytest.raises(exception, match=match):
        call(*args, **kwargs)


# ---- out= ----------------------------------------------------------------

@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_bad_out_leaves_it_untouched(function):
    name = function.__name__
    read_only = sentinel_like((3, 4))
    read_only.flags.writeable = False
    for out, exception, match in [
        (read_only, ValueError, f"{name}: out is read-only"),
        (sentinel_like((3, 4), np.float32), TypeError, f"{name}: out has dtype float32 but x has dtype float64"),
        (sentinel_like((3, 5)), ValueError, rf"{name}: out has shape \(3, 5\) but x has shape \(3, 4\)"),
        (sentinel_like((12,)), ValueError, "out has shape"),
    ]:
        before = out.copy()
        expect_error(exception, match, function, X, out=out)
        np.testing.assert_array_equal(out, before)
        assert out.dtype == before.dtype
    # found while checking the other arguments, after out= passed its checks
    out = sentinel_like((3, 4))
    for kwargs, exception, match in [({"axis": 2}, ValueError, "axis 2 is out of range"),
                                     ({"scale": math.nan}, ValueError, "scale is NaN"),
                                     ({"temperature": -0.5}, ValueError, "temperature must be >= 0"),
                                     ({"mask": np.zeros(3)}, ValueError, "does not broadcast"),
                                     ({"mask": np.zeros(4, np.int64)}, TypeError, "an additive mask has dtype int64")]:
        expect_error(exception, match, function, X, out=out, **kwargs)
        np.testing.assert_array_equal(out, sentinel_like((3, 4)))


@pytest.mark.parametrize("function", [softmax.softmax_backward, softmax.log_softmax_backward])
def test_bad_out_of_the_gradients_leaves_it_untouched(function):
    y = softmax.softmax(X) if function is softmax.softmax_backward else softmax.log_softmax(X)
    dy = np.ones_like(X)
    read_only = sentinel_like((3, 4))
    read_only.flags.writeable = False
    for out, exception, match in [(read_only, ValueError, "out is read-only"),
                                  (sentinel_like((3, 4), np.float32), TypeError, "out has dtype float32"),
                                  (sentinel_like((4, 3)), ValueError, r"out has shape \(4, 3\)")]:
        before = out.copy()
        expect_error(exception, match, function, y, dy, out=out)
        np.testing.assert_array_equal(out, before)
    out = sentinel_like((3, 4))
    expect_error(ValueError, "scale is NaN", function, y, dy, scale=math.nan, out=out)
    expect_error(ValueError, r"dy has shape \(3, 3\)", function, y, np.ones((3, 3)), out=out)
    np.testing.assert_array_equal(out, sentinel_like((3, 4)))


def test_out_overlapping_x_gives_the_result_of_a_separate_out():
    expected = softmax.softmax(X)
    for shift in (1, -1):
        buffer = np.zeros((3, 6))
        x = buffer[:, 1:5]
        x[...] = X
        out = buffer[:, 1 + shift:5 + shift]
        assert np.shares_memory(x, out)
        assert softmax.softmax(x, out=out) is out
        np.testing.assert_array_equal(out, expected)
    # a tensor out= sharing memory with x, shifted by one element
    storage = torch.zeros(13, dtype=torch.float64)
    x = storage[:12].view(3, 4)
    x.copy_(torch.from_numpy(X))
    out = storage[1:].view(3, 4)
    assert softmax.softmax(x, out=out) is out
    np.testing.assert_array_equal(out.numpy(), expected)
    # exactly in place is allowed too
    inplace = X.copy()
    assert softmax.log_softmax(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, softmax.log_softmax(X))


def test_out_that_is_the_mask_gives_the_result_of_a_separate_out():
    # The library refuses an output that is a mask (even exactly the same
    # elements): the package computes into a scratch array and copies.
    mask = np.zeros((3, 4))
    mask[:, 0] = -np.inf
    expected = softmax.softmax(X, mask=mask)
    out = mask.copy()
    assert softmax.softmax(X, mask=out, out=out) is out
    np.testing.assert_array_equal(out, expected)
    # x, mask and out all one array
    both = X.copy()
    assert softmax.log_softmax(both, mask=both, out=both) is both
    np.testing.assert_array_equal(both, softmax.log_softmax(X, mask=X.copy()))


def test_strided_out_writes_only_its_elements():
    backing = sentinel_like((3, 8))
    out = backing[:, ::2]
    assert softmax.softmax(X, out=out) is out
    np.testing.assert_array_equal(out, softmax.softmax(X))
    np.testing.assert_array_equal(backing[:, 1::2], sentinel_like((3, 4)))


# ---- inputs that are valid though unusual ------------------------------------

def test_read_only_and_non_contiguous_inputs():
    read_only = X.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(softmax.softmax(read_only), softmax.softmax(X))
    wide = np.zeros((3, 8))
    wide[:, ::2] = X
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    # Another layout may take another kernel (the contract promises the same
    # bits for thread counts and in place, not across layouts): a few ulp.
    np.testing.assert_allclose(softmax.softmax(strided), softmax.softmax(X), rtol=1e-15, atol=0)
    transposed = np.ascontiguousarray(X.T).T
    np.testing.assert_allclose(softmax.log_softmax(transposed, axis=0), softmax.log_softmax(X, axis=0), rtol=1e-15,
                               atol=0)
    reversed_rows = X[::-1]
    np.testing.assert_allclose(softmax.softmax(reversed_rows), softmax.softmax(X)[::-1], rtol=1e-15, atol=0)
    # misaligned: float64 data at an odd byte offset is copied, not misread
    raw = np.zeros(X.size * 8 + 1, np.uint8)
    misaligned = raw[1:].view(np.float64).reshape(3, 4)
    misaligned[...] = X
    assert not misaligned.flags.aligned
    np.testing.assert_allclose(softmax.softmax(misaligned), softmax.softmax(X), rtol=1e-15, atol=0)


def test_wrong_shapes_and_axes():
    expect_error(TypeError, "axis must be an integer, not str", softmax.softmax, X, axis="0")
    expect_error(ValueError, r"axis 2 is out of range for x with 2 dimensions \(valid: -2..1\)", softmax.softmax, X,
                 axis=2)
    expect_error(ValueError, "axis -3 is out of range", softmax.softmax_backward, X, X, axis=-3)
    expect_error(TypeError, "dtype complex64", softmax.softmax, np.ones(3, np.complex64))  # (int8 is promoted)
    # zero-size arrays are not errors: an empty result of the same shape
    assert softmax.softmax(np.zeros((0, 4))).shape == (0, 4)
    assert softmax.softmax(np.zeros((3, 0)), axis=-1).shape == (3, 0)


def test_mask_of_the_wrong_shape_or_type():
    expect_error(ValueError, r"softmax: mask of shape \(2, 4\) does not broadcast to x's shape \(3, 4\)",
                 softmax.softmax, X, mask=np.zeros((2, 4), bool))
    expect_error(ValueError, r"log_softmax: mask of shape \(5,\) does not broadcast", softmax.log_softmax, X,
                 mask=np.zeros(5))
    expect_error(ValueError, "does not broadcast", softmax.softmax, torch.from_numpy(X), mask=torch.ones(2, 4))
    expect_error(TypeError, "an additive mask has dtype complex128", softmax.softmax, X, mask=np.zeros(4, complex))
    # a scale < 0 goes through the library like any other: the same checks
    expect_error(TypeError, "an additive mask has dtype int64", softmax.softmax, X, scale=-1.0,
                 mask=np.zeros(4, np.int64))
    expect_error(ValueError, "scale is NaN", softmax.softmax, X, scale=math.nan, mask=np.ones(4, bool))


# ---- sampling and row statistics ---------------------------------------------

@needs_sampler
@pytest.mark.parametrize("kwargs, exception, match", [
    ({"temperature": math.nan}, ValueError, r"softmax_sample: temperature = nan \(must be >= 0\)"),
    ({"temperature": -1.0}, ValueError, r"temperature = -1 \(must be >= 0\)"),
    ({"temperature": -math.inf}, ValueError, "temperature = -inf"),
    ({"temperature": "1"}, TypeError, "sample: temperature must be a real number, not str"),
    ({"top_p": 0.0}, ValueError, r"top_p = 0 \(must be in \(0, 1\]; 1 = off\)"),
    ({"top_p": 1.5}, ValueError, "top_p = 1.5"),
    ({"top_p": math.nan}, ValueError, "top_p = nan"),
    ({"min_p": -0.1}, ValueError, r"min_p = -0.1 \(must be in \[0, 1\]; 0 = off\)"),
    ({"min_p": 2}, ValueError, "min_p = 2"),
    ({"min_p": None}, TypeError, "min_p must be a real number, not NoneType"),
    ({"top_k": -1}, ValueError, r"sample: top_k = -1; it must be in \[0, 2\*\*63\) \(0 = off\)"),
    ({"top_k": 2 ** 63}, ValueError, "top_k = 9223372036854775808"),
    ({"top_k": 2.5}, TypeError, "sample: top_k must be an integer, not float"),
    ({"seed": -1}, ValueError, r"sample: seed = -1; it must be in \[0, 2\*\*64\)"),
    ({"seed": 2 ** 64}, ValueError, "seed = 18446744073709551616"),
    ({"seed": "3"}, TypeError, "seed must be an integer, not str"),
    ({"step": 2 ** 64}, ValueError, "step = 18446744073709551616"),
    ({"step": 1.0}, TypeError, "step must be an integer, not float"),
    ({"top_k": True}, TypeError, "sample: top_k must be an integer, not bool"),
    ({"seed": np.bool_(True)}, TypeError, "sample: seed must be an integer, not bool"),
])
def test_sampling_parameters_out_of_range(kwargs, exception, match):
    expect_error(exception, match, softmax.sample, X, **kwargs)
    expect_error(exception, match, softmax.sample, torch.from_numpy(X), **kwargs)


@needs_sampler
def test_sampling_parameters_at_their_limits_are_valid():
    greedy = softmax.sample(X, temperature=0)
    np.testing.assert_array_equal(greedy, X.argmax(axis=-1))
    np.testing.assert_array_equal(softmax.sample(X, temperature=1e-300), greedy)
    np.testing.assert_array_equal(softmax.sample(X, min_p=1.0), greedy)
    np.testing.assert_array_equal(softmax.sample(X, top_k=1), greedy)
    uniform = softmax.sample(np.tile(X[0], (4000, 1)), temperature=math.inf, top_k=2 ** 63 - 1,
                             seed=2 ** 64 - 1, step=2 ** 64 - 1)
    assert set(np.unique(uniform)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(softmax.sample(X, seed=np.uint64(5), top_k=np.int32(2)),
                                  softmax.sample(X, seed=5, top_k=2))


@needs_sampler
def test_sampling_rows_without_a_distribution():
    for bad_row, row in [([1.0, math.nan, 2.0, 0.0], 1), ([-math.inf] * 4, 2), ([math.inf, math.nan, 0, 0], 0)]:
        logits = X.copy()
        logits[row] = bad_row
        expect_error(ValueError, f"sample: softmax_sample: row {row} has a NaN logit or none above -inf",
                     softmax.sample, logits)
        expect_error(ValueError, f"row {row} has a NaN logit", softmax.sample, torch.from_numpy(logits))
    expect_error(ValueError, "row 0 has a NaN logit or none above -inf", softmax.sample, np.zeros((2, 0)))
    # no row at all is not an error
    assert softmax.sample(np.zeros((0, 4))).shape == (0,)
    # +inf logits share the draw, -inf ones are never drawn
    special = np.array([[-math.inf, math.inf, 0.0, math.inf]] * 200)
    assert set(np.unique(softmax.sample(special, seed=4))) == {1, 3}


@needs_sampler
def test_sampling_and_statistics_of_bad_arrays():
    for function in (softmax.sample, softmax.logsumexp, softmax.entropy):
        name = function.__name__
        expect_error(ValueError, f"{name}: x is on device 'meta'", function, torch.empty(2, 3, device="meta"))
        expect_error(TypeError, f"{name}: x is a numpy.ma.MaskedArray", function, np.ma.masked_array(X))
    # (logsumexp and entropy promote lists, integers and bools and take 0-d x, as SciPy: test_signatures.py)
    function, name = softmax.sample, "sample"
    expect_error(TypeError, f"{name}: x must be a numpy.ndarray or a torch.Tensor", function, [1.0, 2.0])
    expect_error(TypeError, f"{name}: x has dtype int32", function, np.ones(3, np.int32))
    expect_error(TypeError, f"{name}: x has dtype bool", function, np.ones(3, bool))
    expect_error(TypeError, f"{name}: x has dtype torch.int64", function, torch.ones(3, dtype=torch.int64))
    expect_error(ValueError, f"{name}: x is 0-dimensional", function, np.array(1.0))
    # read-only, non-contiguous and another axis: the same as a contiguous copy
    read_only = X.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(softmax.sample(read_only, seed=3), softmax.sample(X, seed=3))
    np.testing.assert_array_equal(softmax.sample(X.T.copy().T, seed=3), softmax.sample(X, seed=3))
    np.testing.assert_allclose(softmax.entropy(X.T, axis=0), softmax.entropy(X), rtol=1e-15, atol=0)


@needs_sampler
@pytest.mark.parametrize("function", [softmax.logsumexp, softmax.entropy])
def test_statistics_arguments(function):
    name = function.__name__
    expect_error(ValueError, f"{name}: scale is NaN", function, X, scale=math.nan)
    expect_error(TypeError, f"{name}: scale must be a real number, not str", function, X, scale="2")
    expect_error(ValueError, f"{name}: temperature must be >= 0", function, X, temperature=-1.0)
    expect_error(ValueError, f"{name}: temperature must be >= 0", function, X, temperature=math.nan)
    expect_error(ValueError, "0 / 0", function, X, scale=0.0, temperature=0.0)
    expect_error(ValueError, f"{name}: axis 2 is out of range for x with 2 dimensions", function, X, axis=2)
    expect_error(TypeError, f"{name}: axis must be an integer, not float", function, X, axis=0.5)
    # non-finite rows are not errors: the contract's values
    rows = np.array([[1.0, math.nan, 2.0], [-math.inf] * 3, [math.inf, 0.0, math.inf]])
    values = function(rows)
    assert math.isnan(values[0])
    assert values[1] == (-math.inf if function is softmax.logsumexp else 0.0)
    assert values[2] == (math.inf if function is softmax.logsumexp else pytest.approx(math.log(2)))
