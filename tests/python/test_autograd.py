"""Autograd: the C backward through torch.autograd.gradcheck, the nn.Module, masks."""

import pytest
import torch

import softmax
from softmax.ops import logit_scaled_softmax, norm_exp_softmax
from softmax.torch import ScaledLogSoftmax, ScaledSoftmax

SCALES = [1.0, 0.5, 3.0, -1.5]


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("shape,axis", [((7,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 4, 3), 1), ((2, 3, 4), -3)])
def test_gradcheck_float64(function, scale, shape, axis):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: function(t, axis=axis, scale=scale), (x,), eps=1e-6, atol=1e-8)


def test_gradcheck_non_contiguous_and_temperature():
    x = torch.randn(6, 4, dtype=torch.float64).t().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: softmax.softmax(t, axis=0, temperature=0.7), (x,))
    assert torch.autograd.gradcheck(lambda t: softmax.log_softmax(t, axis=1, temperature=2.0), (x,))


def test_gradcheck_with_masks():
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    keep = torch.tensor([True, False, True, True, False])
    bias = torch.tensor([0.0, -float("inf"), 0.3, -0.2, 0.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: softmax.softmax(t, scale=1.3, mask=keep), (x,))
    assert torch.autograd.gradcheck(lambda t: softmax.softmax(t, scale=0.8, mask=bias), (x,))


def test_gradients_match_torch_float32():
    x = torch.randn(8, 33, requires_grad=True)
    weights = torch.randn(8, 33)
    (softmax.log_softmax(x, axis=-1, scale=0.3) * weights).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    (torch.log_softmax(x * 0.3, dim=-1) * weights).sum().backward()
    torch.testing.assert_close(ours, x.grad, rtol=1e-5, atol=1e-6)


def test_seed_ops_are_differentiable():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: norm_exp_softmax(t, scale=2.0), (x,))
    assert torch.autograd.gradcheck(lambda t: logit_scaled_softmax(t, 0.5), (x,))


def test_modules():
    layer = ScaledSoftmax(scale=0.125, dim=1)
    assert "scale=0.125, dim=1" in repr(layer)
    x = torch.randn(2, 9, 4, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(layer(x), torch.softmax(x * 0.125, dim=1))
    assert torch.autograd.gradcheck(layer, (x,))
    torch.testing.assert_close(ScaledLogSoftmax(2.0)(x), torch.log_softmax(x * 2.0, dim=-1))


def test_no_grad_and_double_backward():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        assert softmax.softmax(x).grad_fn is None
    y = softmax.softmax(x)
    assert y.grad_fn is not None
    weights = torch.randn(3, 4, dtype=torch.float64)
    (grad,) = torch.autograd.grad((y * weights).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x)  # differentiable backward
    (expected_grad,) = torch.autograd.grad((torch.softmax(x, -1) * weights).sum(), x, create_graph=True)
    (expected,) = torch.autograd.grad(expected_grad.square().sum(), x)
    torch.testing.assert_close(second, expected, rtol=1e-12, atol=1e-14)


def test_learned_additive_mask_gets_a_gradient():
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, b: softmax.softmax(t, scale=0.7, mask=b), (x, bias))
