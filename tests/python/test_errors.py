"""Every bad input raises TypeError or ValueError with the reason, and leaves out= untouched."""

import numpy as np
import pytest
import torch

import softmax

X = np.arange(12, dtype=np.float64).reshape(3, 4)


def raises(exception, match, call, *args, **kwargs):
    with pytest.raises(exception, match=match):
        call(*args, **kwargs)


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_bad_inputs(function):
    # (lists, scalars, integer and bool arrays are promoted: see test_signatures.py)
    raises(TypeError, "numpy.ndarray or a torch.Tensor", function, "1.0")
    raises(TypeError, "numpy.ndarray or a torch.Tensor", function, None)
    raises(TypeError, "dtype complex128", function, np.ones(4, complex))
    raises(TypeError, "holds complex128", function, [1j, 2.0])
    raises(ValueError, "axis 2 is out of range", function, X, axis=2)
    raises(ValueError, "axis -3 is out of range", function, X, axis=-3)
    raises(TypeError, "axis must be an integer", function, X, axis=1.5)
    raises(ValueError, "scale is NaN", function, X, scale=float("nan"))
    raises(TypeError, "scale must be a real number", function, X, scale="2")
    raises(ValueError, "temperature must be >= 0", function, X, temperature=-1.0)
    raises(ValueError, "temperature must be >= 0", function, X, temperature=float("nan"))
    raises(ValueError, "0 / 0", function, X, scale=0.0, temperature=0.0)
    raises(TypeError, "non-native byte order", function, X.astype(">f8"))


def test_out_errors_leave_out_untouched():
    sentinel = np.full((3, 4), 7.0)
    for out, exception, match in [
        (np.full((4, 3), 7.0), ValueError, r"out has shape \(4, 3\) but x has shape \(3, 4\)"),
        (np.full((3, 4), 7.0, np.float32), TypeError, "out has dtype"),
        (torch.full((3, 4), 7.0, dtype=torch.float64), TypeError, "out must be a numpy.ndarray"),
    ]:
        before = np.array(out, copy=True)
        raises(exception, match, softmax.softmax, X, out=out)
        np.testing.assert_array_equal(np.asarray(out), before)
    read_only = sentinel.copy()
    read_only.flags.writeable = False
    raises(ValueError, "read-only", softmax.softmax, X, out=read_only)
    # An error found by the library itself (NaN scale inside) also writes nothing.
    out = sentinel.copy()
    raises(ValueError, "scale is NaN", softmax.softmax, X, scale=float("nan"), out=out)
    np.testing.assert_array_equal(out, sentinel)
    raises(ValueError, "axis", softmax.softmax, X, axis=5, out=out)
    np.testing.assert_array_equal(out, sentinel)


def test_backward_errors():
    y = softmax.softmax(X)
    raises(ValueError, r"dy has shape \(4, 3\)", softmax.softmax_backward, y, np.ones((4, 3)))
    raises(TypeError, "dy has dtype", softmax.softmax_backward, y, np.ones((3, 4), np.float32))
    raises(TypeError, "dy must be a numpy.ndarray like the input", softmax.softmax_backward, y, [1.0] * 4)
    raises(TypeError, "same kind", softmax.softmax_backward, y, torch.ones(3, 4, dtype=torch.float64))
    raises(TypeError, "dy has dtype", softmax.log_softmax_backward, torch.zeros(2, 2), torch.zeros(2, 2,
                                                                                               dtype=torch.float64))


def test_torch_errors():
    raises(ValueError, "on device 'meta'.*libsoftmax computes on the CPU", softmax.softmax,
           torch.empty(3, 4, device="meta"))
    raises(TypeError, "layout", softmax.softmax, torch.eye(3).to_sparse())
    raises(TypeError, "dtype torch.complex64", softmax.softmax, torch.ones(3, dtype=torch.complex64))
    x = torch.randn(3, 4, requires_grad=True)
    raises(ValueError, "out= cannot be used while x requires grad", softmax.softmax, x, out=torch.empty(3, 4))
    raises(TypeError, "out must be a torch.Tensor", softmax.softmax, x.detach(), out=np.empty((3, 4), np.float32))
    raises(TypeError, "out has dtype", softmax.softmax, x.detach(), out=torch.empty(3, 4, dtype=torch.float64))


def test_mask_errors():
    raises(ValueError, "does not broadcast", softmax.softmax, X, mask=np.ones(3, bool))
    raises(TypeError, "mask must be a numpy.ndarray", softmax.softmax, X, mask=torch.ones(4, dtype=torch.bool))
    raises(TypeError, "mask must be a torch.Tensor", softmax.softmax, torch.from_numpy(X), mask=np.ones(4, bool))
    raises(TypeError, "mask must be a numpy.ndarray", softmax.softmax, X, mask=[True] * 4)


def test_no_half_types_unless_the_library_takes_them():
    if softmax.HAS_F16:
        pytest.skip("the library takes float16")
    raises(TypeError, "dtype float16", softmax.softmax, np.ones(4, np.float16))
    raises(TypeError, "dtype torch.float16", softmax.softmax, torch.ones(4, dtype=torch.float16))
    raises(TypeError, "dtype torch.bfloat16", softmax.softmax, torch.ones(4, dtype=torch.bfloat16))


def test_threads():
    before = softmax.get_num_threads()
    softmax.set_num_threads(1)
    assert softmax.get_num_threads() == 1
    softmax.set_num_threads(0)
    assert softmax.get_num_threads() == before
    raises(ValueError, "must be >= 1", softmax.set_num_threads, -1)


def test_masked_arrays_are_refused():
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    raises(TypeError, "MaskedArray", softmax.softmax, masked)
