"""PyTorch's own softmax test cases, restated in our words against softmax.softmax / log_softmax.

Ported (from torch's test_nn.py softmax tests and the OpInfo entries of
softmax / log_softmax / _masked.softmax, torch 1.13): the OpInfo sample
inputs (shapes (S, S) and (S, M, S) along each dim, 0-d input along 0 and -1,
dtype= casting integer input), results in float32 / bfloat16 / float16
against a float64 computation on contiguous and transposed inputs, large
magnitudes in log_softmax, zero-size dimensions, nn.Softmax / nn.LogSoftmax
as modules, masked softmax against torch._masked_softmax (whose CPU kernel
gives NaN for a fully masked row in torch 1.13, 0 later; ours 0),
gradcheck / gradgradcheck with forward AD in float64, and a backward with a
non-contiguous incoming gradient.

Left out, and why:
- CUDA / MPS / sparse / nested-tensor variants: the library computes on the
  CPU on dense tensors (others raise ValueError / TypeError).
- softmax of a row that is all -inf: torch gives NaN; the library's contract
  gives zeros (log-softmax -inf), as later torch._masked_softmax does for
  fully masked rows.
- the 64-bit indexing test (a tensor of more than 2**31 elements): memory.
- the implicit dim (dim=None) deprecation warnings of torch.nn.functional.
"""

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import softmax
from softmax.torch import ScaledLogSoftmax, ScaledSoftmax

S, M = 5, 10


def torch_reference(function):
    return torch.log_softmax if function is softmax.log_softmax else torch.softmax


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_opinfo_sample_inputs(function):
    torch.manual_seed(0)
    reference = torch_reference(function)
    for shape, dim in (((S, S), 1), ((S, S), -1), ((S, S), 0), ((S, M, S), 1), ((S, M, S), -1), ((), 0), ((), -1)):
        x = torch.randn(shape, dtype=torch.float64)
        torch.testing.assert_close(function(x, dim=dim), reference(x, dim), rtol=1e-14, atol=1e-15)
    integers = torch.randint(-5, 5, (S, S))
    torch.testing.assert_close(function(integers, dim=1, dtype=torch.float64),
                               reference(integers, 1, dtype=torch.float64), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2), (torch.float16, 1e-3)])
def test_results_against_float64(function, dtype, tolerance):
    if dtype is torch.bfloat16 and not softmax.HAS_BF16 or dtype is torch.float16 and not softmax.HAS_F16:
        pytest.skip("this build of libsoftmax has no such type")
    torch.manual_seed(1)
    reference = torch_reference(function)
    x = (torch.randn(7, 33, dtype=torch.float64) * 4).to(dtype)
    for tensor in (x, x.t()):
        for dim in range(tensor.dim()):
            got = function(tensor, dim=dim)
            assert got.dtype == dtype and got.shape == tensor.shape
            expected = reference(tensor.double(), dim)
            torch.testing.assert_close(got.double(), expected, rtol=tolerance, atol=tolerance)
            if dtype is not torch.float16:  # (torch 1.13 has no float16 softmax on the CPU)
                torch.testing.assert_close(got, reference(tensor, dim), rtol=tolerance, atol=tolerance)


def test_log_softmax_of_large_magnitudes():
    x = torch.tensor([[1e4, -1e4], [-1e4, 1e4], [1e30, 1e30]], dtype=torch.float64)
    torch.testing.assert_close(softmax.log_softmax(x, dim=1), torch.log_softmax(x, 1), rtol=1e-15, atol=1e-15)
    x32 = torch.tensor([[88.0, -88.0, 100.0], [3e38, 0.0, -3e38]])
    torch.testing.assert_close(softmax.log_softmax(x32, dim=1), torch.log_softmax(x32, 1))
    torch.testing.assert_close(softmax.softmax(x32, dim=1), torch.softmax(x32, 1))


def test_zero_size_dimensions():
    for shape, dim in (((0, 3), 1), ((0, 3), 0), ((3, 0), 1), ((3, 0), 0), ((2, 0, 4), -1)):
        x = torch.empty(shape)
        for function in (softmax.softmax, softmax.log_softmax):
            got = function(x, dim=dim)
            assert got.shape == torch_reference(function)(x, dim).shape


def test_modules_like_nn_softmax():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    for dim in (0, 1, 2, -1):
        torch.testing.assert_close(ScaledSoftmax(dim=dim)(x), torch.nn.Softmax(dim=dim)(x))
        torch.testing.assert_close(ScaledLogSoftmax(dim=dim)(x), torch.nn.LogSoftmax(dim=dim)(x))


def test_masked_softmax_like_torchs():
    masked_softmax = getattr(torch, "_masked_softmax", None)
    if masked_softmax is None:
        pytest.skip("this torch has no _masked_softmax")
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4, 6)
    excluded = torch.rand(2, 3, 4, 6) > 0.6
    excluded[0, 0, 0] = True  # a fully masked row
    expected = masked_softmax(x, excluded, 3, 2)  # mask type 2: a mask of the input's shape
    got = softmax.softmax(x, dim=3, mask=~excluded)
    torch.testing.assert_close(got[0, 0, 1:], expected[0, 0, 1:])
    torch.testing.assert_close(got[1:], expected[1:])
    assert bool((got[0, 0, 0] == 0).all())  # torch 1.13's CPU kernel: NaN there (later versions: 0)


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_gradients_as_the_opinfo_checks_them(function):
    torch.manual_seed(3)
    x = torch.randn(S, M, S, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: function(t, dim=1), (x,), check_forward_ad=True)
    assert gradgradcheck(lambda t: function(t, dim=-1), (x,))
    y = function(x, dim=1)
    grad = torch.randn(S, S, M, dtype=torch.float64).transpose(1, 2)  # non-contiguous incoming gradient
    (ours,) = torch.autograd.grad(y, x, grad)
    (expected,) = torch.autograd.grad(torch_reference(function)(x, 1), x, grad)
    torch.testing.assert_close(ours, expected, rtol=1e-13, atol=1e-15)
    assert not math.isnan(float(ours.sum()))
    assert np.isfinite(ours.numpy()).all()
