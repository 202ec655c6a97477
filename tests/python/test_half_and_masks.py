"""float16 / bfloat16 inputs, and masks through the library and through the array fallback."""

import numpy as np
import pytest
import torch

import softmax
from softmax import _softmax
from reference import log_softmax_ref, softmax_ref

needs_f16 = pytest.mark.skipif(not softmax.HAS_F16, reason="this build of libsoftmax has no float16")
needs_bf16 = pytest.mark.skipif(not softmax.HAS_BF16, reason="this build of libsoftmax has no bfloat16")


@needs_f16
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_numpy_float16(layout):
    x = np.random.default_rng(0).normal(scale=4, size=(6, 33)).astype(np.float16)
    if layout == "transposed":
        x = np.ascontiguousarray(x.T).T
    for axis in (-1, 0):
        y = softmax.softmax(x, axis=axis, scale=0.75)
        assert y.dtype == np.float16 and y.shape == x.shape
        # The f32 result correctly rounded to f16: within one f16 ulp of the exact value.
        np.testing.assert_allclose(y.astype(np.float64), softmax_ref(x, axis, 0.75), rtol=1e-3, atol=6e-8)
        logy = softmax.log_softmax(x, axis=axis, scale=0.75)
        np.testing.assert_allclose(logy.astype(np.float64), log_softmax_ref(x, axis, 0.75), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [
    pytest.param(torch.float16, marks=needs_f16),
    pytest.param(torch.bfloat16, marks=needs_bf16),
])
def test_torch_half_types(dtype):
    x = (torch.randn(5, 40) * 3).to(dtype)
    eps = torch.finfo(dtype).eps
    for axis in (-1, 0, 1):
        y = softmax.softmax(x, axis=axis, scale=1.25)
        assert y.dtype == dtype and y.shape == x.shape
        expected = torch.softmax(x.double() * 1.25, dim=axis)
        torch.testing.assert_close(y.double(), expected, rtol=eps, atol=1e-7)
        logy = softmax.log_softmax(x.t(), axis=axis % 2, scale=1.25)
        torch.testing.assert_close(logy.double(), torch.log_softmax(x.t().double() * 1.25, dim=axis % 2),
                                   rtol=eps, atol=eps)
    out = torch.empty_like(x)
    assert softmax.softmax(x, out=out) is out


@pytest.mark.parametrize("dtype", [
    pytest.param(torch.float16, marks=needs_f16),
    pytest.param(torch.bfloat16, marks=needs_bf16),
])
def test_half_types_autograd(dtype):
    x = torch.randn(4, 16).to(dtype).requires_grad_()
    weights = torch.randn(4, 16)
    (softmax.softmax(x, scale=0.5).float() * weights).sum().backward()
    reference = x.detach().double().requires_grad_()
    (torch.softmax(reference * 0.5, -1) * weights.double()).sum().backward()
    assert x.grad.dtype == dtype
    torch.testing.assert_close(x.grad.double(), reference.grad, rtol=0.05, atol=0.01)


MASK_PATHS = ["library", "fallback"]


@pytest.fixture(params=MASK_PATHS)
def mask_path(request, monkeypatch):
    if request.param == "library" and not softmax.HAS_MASKS:
        pytest.skip("this build of libsoftmax has no masks")
    if request.param == "fallback":
        monkeypatch.setattr(_softmax, "HAS_MASKS", 0)  # the Python layer then masks with array operations
    return request.param


@pytest.mark.parametrize("container", ["numpy", "torch"])
@pytest.mark.parametrize("scale", [1.0, 2.5, -0.5, np.inf])
def test_masks_both_paths(mask_path, container, scale):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 6))
    keep = rng.random(size=(3, 6)) > 0.3  # broadcast over the first axis
    keep[:, 0] = True
    bias = np.where(keep, rng.normal(size=(3, 6)), -np.inf)
    wrap = torch.from_numpy if container == "torch" else (lambda a: a)
    y = np.asarray(softmax.softmax(wrap(x), scale=scale, mask=wrap(keep)))
    excluded = -np.inf if scale >= 0 else np.inf
    if np.isinf(scale):
        expected = softmax_ref(np.where(keep, x, -np.inf) * 1.0, -1, 1e300)
    else:
        expected = softmax_ref(np.where(keep, x, excluded), -1, scale)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-300)
    assert (y[:, ~keep] == 0).all()
    if np.isfinite(scale):
        y_bias = np.asarray(softmax.softmax(wrap(x), scale=scale, mask=wrap(bias)))
        np.testing.assert_allclose(y_bias, softmax_ref(scale * x + bias), rtol=1e-12, atol=1e-300)
        logy = np.asarray(softmax.log_softmax(wrap(x), scale=scale, mask=wrap(keep)))
        assert (logy[:, ~keep] == -np.inf).all()
        np.testing.assert_allclose(logy[:, keep], np.log(expected[:, keep]), rtol=1e-12)


def test_mask_on_another_axis(mask_path):
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    keep = torch.tensor([[True], [False], [True], [True]])
    y = softmax.softmax(x, axis=0, mask=keep)
    torch.testing.assert_close(y, torch.softmax(x.masked_fill(~keep, -float("inf")), 0))
    assert torch.autograd.gradcheck(lambda t: softmax.log_softmax(t, axis=0, mask=keep)[keep.expand(4, 5)], (x,))


@pytest.mark.skipif(not softmax.HAS_MASKS, reason="this build of libsoftmax has no masks")
def test_library_masks_with_negative_scale():
    """The library itself, called directly: an excluded element must get 0 at any scale."""
    x = np.array([1.0, 2.0, 3.0])
    keep = np.array([True, False, True])
    y = _softmax.execute(_softmax.OP_SOFTMAX, x, None, None, -1, -1.0, False, None, False, keep)
    np.testing.assert_allclose(y, softmax_ref(np.array([1.0, 3.0]), -1, -1.0)[[0, 0, 1]] * [1, 0, 1])


def test_additive_mask_with_negative_scale_rounds_once(mask_path):
    """scale < 0 with an additive mask: z = scale * x + mask is not rounded to x's type before the exponential
    (the library splits it; the array fallback computes in float64), the result is rounded once."""
    rng = np.random.default_rng(6)
    x = rng.normal(scale=20, size=(4, 9)).astype(np.float32)
    bias = rng.normal(size=9)
    bias[2] = -np.inf
    expected = softmax_ref(-1.5 * x.astype(np.float64) + bias)
    y = softmax.softmax(x, scale=-1.5, mask=bias.astype(np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected.astype(np.float32), rtol=2e-6, atol=1e-30)
    out = np.full_like(x, 7.0)
    assert softmax.softmax(x, scale=-1.5, mask=bias.astype(np.float32), out=out) is out
    np.testing.assert_array_equal(out, y)
    with pytest.raises(TypeError, match="out has dtype"):
        softmax.softmax(x, scale=-1.5, mask=bias.astype(np.float32), out=np.empty((4, 9)))
    if softmax.HAS_BF16:
        t = torch.from_numpy(x).to(torch.bfloat16)
        y_bf16 = softmax.softmax(t, scale=-1.5, mask=torch.from_numpy(bias).to(torch.bfloat16))
        assert y_bf16.dtype == torch.bfloat16
        reference = softmax_ref(-1.5 * t.double().numpy() + torch.from_numpy(bias).to(torch.bfloat16).double().numpy())
        np.testing.assert_allclose(y_bf16.double().numpy(), reference, rtol=2 ** -8, atol=1e-30)
