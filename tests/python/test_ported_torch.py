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

Also ported: the remaining OpInfo sample inputs ((S,) along 0, (S, 0, 0) along
-1, and the dtype=torch.float64 variant for floating inputs, whose gradient
comes back in the input's type); test_softmax_results (odd sizes and
misaligned views, dtype=torch.float on float32 / float16 input, first and
second derivatives); test_log_softmax_big (an integer-valued row and the
same row plus a large offset give identical results); test_softmax_bfloat16
(4-D along every dim, with and without inputs scaled by 1000, values and
gradients); F.softmin; _softmax_backward_data / _log_softmax_backward_data
along every dim on channels-last and transposed operands; rows with -inf
and NaN where torch defines them; 0-d and empty tensors through backward.
The float64 references are torch's own float64 kernels (a few ulp: far
below the tolerances of the lower-precision results they check).

Left out, and why:
- CUDA / MPS / sparse / nested-tensor variants: the library computes on the
  CPU on dense tensors (others raise ValueError / TypeError).
- _softmax_backward_data with input_dtype different from the output's (the
  half-input, float-output mixed-precision case): softmax_backward takes y and
  dy of one type; the autograd path handles dtype= (test above).
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


# -- further cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_opinfo_remaining_sample_inputs(function):
    torch.manual_seed(4)
    reference = torch_reference(function)
    for shape, dim in (((S,), 0), ((S, 0, 0), -1)):
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        got = function(x, dim=dim)
        torch.testing.assert_close(got, reference(x, dim), rtol=1e-14, atol=1e-15)
        if x.numel():
            (grad,) = torch.autograd.grad(got.sum(), x)
            torch.testing.assert_close(grad, torch.autograd.grad(reference(x, dim).sum(), x)[0], rtol=1e-13,
                                       atol=1e-15)
    # The dtype=torch.float64 variant: the result in float64, the gradient back in the input's type.
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        if dtype is torch.bfloat16 and not softmax.HAS_BF16 or dtype is torch.float16 and not softmax.HAS_F16:
            continue
        x = torch.randn(S, M, S).to(dtype).requires_grad_()
        got = function(x, dim=1, dtype=torch.float64)
        assert got.dtype == torch.float64
        expected = reference(x.detach().double(), 1)
        torch.testing.assert_close(got, expected, rtol=1e-14, atol=1e-15)
        weights = torch.randn(S, M, S, dtype=torch.float64)
        (grad,) = torch.autograd.grad((got * weights).sum(), x)
        assert grad.dtype == dtype
        leaf = x.detach().double().requires_grad_()
        (exact,) = torch.autograd.grad((reference(leaf, 1) * weights).sum(), leaf)
        torch.testing.assert_close(grad.double(), exact.to(dtype).double(), rtol=0, atol=0)  # rounded once


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_results_on_odd_sizes_and_shifted_views(function, dtype):
    if dtype is torch.float16 and not softmax.HAS_F16:
        pytest.skip("this build of libsoftmax has no float16")
    torch.manual_seed(5)
    reference = torch_reference(function)
    sizes = [(0, 10), (32, 20), (10, 0), (31, 20), (32, 21), (31, 23), (32, 1536), (31, 2048), (33, 2049)]
    for size in sizes:
        for shift in ((0, 0), (1, 0), (0, 1), (1, 1)):
            base = torch.rand(size, dtype=dtype)
            x = base[shift[0]:, shift[1]:].detach().requires_grad_()  # misaligned rows and starts
            for dim in (0, 1):
                got = function(x, dim=dim, dtype=torch.float32)
                assert got.dtype == torch.float32
                leaf = x.detach().double().requires_grad_()
                expected = reference(leaf, dim)
                torch.testing.assert_close(got.double(), expected, rtol=2e-6, atol=1e-7)
                grad_output = torch.rand(size, dtype=dtype)[shift[0]:, shift[1]:]
                (grad,) = torch.autograd.grad(got, x, grad_output, create_graph=True)
                (exact,) = torch.autograd.grad(expected, leaf, grad_output.double(), create_graph=True)
                tolerance = 1e-5 if dtype is torch.float32 else 2e-3
                torch.testing.assert_close(grad.double(), exact, rtol=tolerance, atol=tolerance)
                if x.numel():
                    (second,) = torch.autograd.grad(grad.sum(), x)
                    (exact_second,) = torch.autograd.grad(exact.sum(), leaf)
                    torch.testing.assert_close(second.double(), exact_second, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype,offset", [(torch.float64, 1e7), (torch.float32, 1e7), (torch.float16, 1.5e3)])
def test_log_softmax_of_a_row_and_the_row_plus_an_offset(dtype, offset):
    if dtype is torch.float16 and not softmax.HAS_F16:
        pytest.skip("this build of libsoftmax has no float16")
    torch.manual_seed(6)
    small = torch.randint(100, (16, 4)).to(dtype)
    big = small + offset  # exact in dtype: x - max is the same in both
    # Within the contract's bound of the exact value, 4 ulp of max(|y|, 1) (the library's
    # log-softmax is not bit-for-bit shift-invariant near 0: [0, -20, -30] in float32 gives 0
    # for -2.06e-9, the same row plus 1e7 gives -2.06e-9; both within 4 ulp of 1).
    eps = torch.finfo(dtype).eps
    for function in (softmax.log_softmax, softmax.softmax):
        torch.testing.assert_close(function(small, dim=-1), function(big, dim=-1), rtol=4 * eps, atol=4 * eps)
        exact = torch_reference(function)(small.double(), -1)
        torch.testing.assert_close(function(big, dim=-1).double(), exact, rtol=4 * eps, atol=4 * eps)


@pytest.mark.parametrize("scale_factor", [1.0, 1000.0])
def test_bfloat16_four_dimensional_values_and_gradients(scale_factor):
    if not softmax.HAS_BF16:
        pytest.skip("this build of libsoftmax has no bfloat16")
    torch.manual_seed(7)
    x = (torch.randn(4, 9, 5, 6) * scale_factor).bfloat16()
    tolerance = 1e-2 if scale_factor == 1.0 else 0.05
    for dim in range(4):
        leaf = x.clone().requires_grad_()
        y = softmax.softmax(leaf, dim=dim)
        assert y.dtype == torch.bfloat16
        grad_output = torch.randn(4, 9, 5, 6).bfloat16()
        y.backward(grad_output)
        exact_leaf = x.double().requires_grad_()
        exact = torch.softmax(exact_leaf, dim)
        exact.backward(grad_output.double())
        torch.testing.assert_close(y.double(), exact, rtol=tolerance, atol=tolerance)
        assert leaf.grad.dtype == torch.bfloat16
        torch.testing.assert_close(leaf.grad.double(), exact_leaf.grad, rtol=tolerance, atol=tolerance)


def test_softmin_like_torch():
    torch.manual_seed(8)
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    for dim in (0, 1, 2, -1):
        torch.testing.assert_close(softmax.softmax(x, dim=dim, scale=-1.0), torch.nn.functional.softmin(x, dim))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_data_ops_on_every_dim_and_layout(dtype):
    torch.manual_seed(9)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    rtol, atol = (1e-5, 1e-6) if dtype is torch.float32 else (1e-13, 1e-15)
    for dim in range(4):
        y = torch.softmax(x, dim).to(dtype)
        logy = torch.log_softmax(x, dim).to(dtype)
        dy = torch.randn(2, 5, 4, 3, dtype=dtype).transpose(1, 3)  # transposed
        for layout in (lambda t: t, lambda t: t.contiguous(memory_format=torch.channels_last)):
            got = softmax.softmax_backward(layout(y), dy, axis=dim)
            expected = torch._softmax_backward_data(dy.double(), y.double(), dim, torch.float64)
            torch.testing.assert_close(got.double(), expected, rtol=rtol, atol=atol)
            got = softmax.log_softmax_backward(layout(logy), dy, axis=dim)
            expected = torch._log_softmax_backward_data(dy.double(), logy.double(), dim, torch.float64)
            torch.testing.assert_close(got.double(), expected, rtol=rtol, atol=atol)


def test_channels_last_forward_and_backward():
    torch.manual_seed(10)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    for function in (softmax.softmax, softmax.log_softmax):
        for dim in range(4):
            leaf = x.clone().requires_grad_()
            got = function(leaf, dim=dim)
            grad_output = torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
            got.backward(grad_output)
            exact_leaf = x.clone().requires_grad_()
            exact = torch_reference(function)(exact_leaf, dim)
            exact.backward(grad_output)
            torch.testing.assert_close(got, exact, rtol=1e-14, atol=1e-15)
            torch.testing.assert_close(leaf.grad, exact_leaf.grad, rtol=1e-13, atol=1e-15)


def test_rows_with_infinities_and_nan_where_torch_defines_them():
    inf, nan = math.inf, math.nan
    x = torch.tensor([[-inf, 1.0, 2.0, -inf], [1.0, nan, 2.0, 3.0], [nan, -inf, -inf, -inf],
                      [-1e300, 1e300, 0.0, -inf]], dtype=torch.float64)
    for function in (softmax.softmax, softmax.log_softmax):
        torch.testing.assert_close(function(x, dim=1), torch_reference(function)(x, 1), equal_nan=True)
    # Rows that are all -inf (torch: NaN) and rows with +inf (torch: NaN): the contract's limits.
    y = softmax.softmax(torch.tensor([[-inf, -inf], [inf, 1.0], [inf, inf]]), dim=1)
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.5]]), rtol=0, atol=0)


def test_zero_dimensional_and_empty_tensors_through_backward():
    for function in (softmax.softmax, softmax.log_softmax):
        x = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
        y = function(x, dim=0)
        assert y.shape == () and float(y) == float(torch_reference(function)(x.detach(), 0))
        y.backward()
        assert float(x.grad) == 0.0  # (a one-element distribution does not move)
        empty = torch.empty(0, 3, dtype=torch.float64, requires_grad=True)
        function(empty, dim=1).sum().backward()
        assert empty.grad.shape == (0, 3)
