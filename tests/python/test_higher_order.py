"""Higher-order, forward-mode and batched autograd through the package's functions.

The references are torch's own softmax / log_softmax / logsumexp and
torch.autograd's numerical checks (gradcheck / gradgradcheck in float64),
never the package itself.
"""

import math

import pytest
import torch
from torch.autograd import forward_ad, gradcheck, gradgradcheck

import softmax

SCALES = [1.0, 0.5, -1.5]
EXCLUDED_BY_CAUSAL = torch.ones(3, 5, dtype=torch.bool).triu(1)


def keep_mask():
    keep = torch.tensor([[True, False, True, True, False],
                         [False, True, True, False, True],
                         [True, True, True, True, True]])
    return keep


CASES = {
    "last axis": (dict(axis=-1), None),
    "non-last axis": (dict(axis=1), None),
    "first axis": (dict(axis=0), None),
    "keep mask": (dict(mask=keep_mask()), ~keep_mask()),
    "additive mask": (dict(mask=torch.tensor([0.0, 0.5, -0.25, 1.0, -2.0], dtype=torch.float64)), None),
    "causal": (dict(causal=True), EXCLUDED_BY_CAUSAL),
    "causal + ALiBi": (dict(causal=True, max_bias=8.0, head_axis=0), EXCLUDED_BY_CAUSAL),
    "axes (0, 2)": (dict(axis=(0, 2)), None),
}


def case_function(function, scale, case):
    kwargs, excluded = CASES[case]

    def f(x):
        y = function(x, scale=scale, **kwargs)
        if excluded is not None and function is softmax.log_softmax:
            # -inf outputs have no finite difference: compare the kept ones.
            y = y.masked_fill(excluded, 0.0)
        return y

    return f


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("case", list(CASES))
def test_gradcheck_gradgradcheck_forward_and_batched(function, scale, case):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    f = case_function(function, scale, case)
    assert gradcheck(f, (x,), check_forward_ad=True, check_batched_grad=True, check_batched_forward_grad=True)
    assert gradgradcheck(f, (x,), check_batched_grad=True, check_fwd_over_rev=True)


def reference(function, x, scale, case):
    """The same function by torch alone."""
    kwargs, excluded = CASES[case]
    z = x * scale
    axis = kwargs.get("axis", -1)
    if case == "keep mask":
        z = z.masked_fill(~keep_mask(), -math.inf)
    if case == "additive mask":
        z = z + kwargs["mask"]
    if case.startswith("causal"):
        z = z.masked_fill(EXCLUDED_BY_CAUSAL, -math.inf)
    if case == "causal + ALiBi":
        # ALiBi over the head axis 0 of extent H = 2: H2 = 2, m0 = 2^(-8 / 2), slope(h) = m0^(h + 1)
        slopes = torch.tensor([2.0 ** -4, 2.0 ** -8], dtype=torch.float64)
        z = z + slopes.view(2, 1, 1) * torch.arange(5, dtype=torch.float64)
    if isinstance(axis, tuple):
        moved = z.movedim((0, 2), (1, 2))
        out = (torch.log_softmax if function is softmax.log_softmax else torch.softmax)(moved.reshape(3, 10), -1)
        return out.reshape(3, 2, 5).movedim((1, 2), (0, 2))
    y = (torch.log_softmax if function is softmax.log_softmax else torch.softmax)(z, axis)
    if excluded is not None and function is softmax.log_softmax:
        y = y.masked_fill(excluded, 0.0)
    return y


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
@pytest.mark.parametrize("case", list(CASES))
def test_double_backprop_gradient_penalty_matches_torch(function, case):
    """A model whose loss includes the norm of an input gradient through our op: parameter gradients as torch's."""
    torch.manual_seed(2)
    scale = -0.7
    weight = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    targets = torch.randn(2, 3, 5, dtype=torch.float64)
    f = case_function(function, scale, case)

    def parameter_gradient(model):
        out = model(x @ weight)
        loss = (out * targets).sum()
        (input_gradient,) = torch.autograd.grad(loss, x, create_graph=True)
        penalty = loss + input_gradient.square().sum()
        return torch.autograd.grad(penalty, weight)[0]

    ours = parameter_gradient(f)
    expected = parameter_gradient(lambda z: reference(function, z, scale, case))
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_forward_mode_tangent_is_torchs(function):
    torch.manual_seed(3)
    x = torch.randn(4, 6, dtype=torch.float64)
    v = torch.randn(4, 6, dtype=torch.float64)
    expected = torch.autograd.functional.jvp(
        lambda t: (torch.log_softmax if function is softmax.log_softmax else torch.softmax)(t * 0.8, -1), x, v)[1]
    with forward_ad.dual_level():
        y = function(forward_ad.make_dual(x, v), scale=0.8)
        tangent = forward_ad.unpack_dual(y).tangent
    assert tangent is not None
    torch.testing.assert_close(tangent, expected, rtol=1e-13, atol=1e-15)


def test_first_order_gradients_agree_with_and_without_create_graph():
    """The C backward (no graph) and the torch-operation backward (create_graph) give the same numbers."""
    torch.manual_seed(4)
    x = torch.randn(3, 7, 9, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(3, 7, 9, dtype=torch.float64)
    keep = torch.rand(7, 9) > 0.3
    for function in (softmax.softmax, softmax.log_softmax):
        for kwargs in (dict(axis=1), dict(mask=keep), dict(causal=True, causal_offset=1), dict(scale=math.inf)):
            y = function(x, **kwargs)
            plain = torch.autograd.grad(y, x, dy, retain_graph=True)[0]
            graph = torch.autograd.grad(y, x, dy, create_graph=True)[0]
            torch.testing.assert_close(plain, graph.detach(), rtol=1e-13, atol=1e-15)


def test_vmap_and_functorch_transforms():
    functorch = pytest.importorskip("functorch")
    torch.manual_seed(5)
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    keep = torch.rand(3, 6) > 0.3
    keep[:, 0] = True
    batched = functorch.vmap(lambda t: softmax.softmax(t, scale=1.5, mask=keep))(x)
    torch.testing.assert_close(batched, torch.softmax((x * 1.5).masked_fill(~keep, -math.inf), -1))
    batched = functorch.vmap(lambda t: softmax.log_softmax(t, axis=0, causal=False))(x)
    torch.testing.assert_close(batched, torch.log_softmax(x, 1))
    grad = functorch.grad(lambda t: softmax.log_softmax(t, scale=-2.0)[0, 1])(x[0])
    expected = functorch.grad(lambda t: torch.log_softmax(t * -2.0, -1)[0, 1])(x[0])
    torch.testing.assert_close(grad, expected)
    jacobian = functorch.jacrev(lambda t: softmax.softmax(t))(x[0, 0])
    torch.testing.assert_close(jacobian, functorch.jacrev(lambda t: torch.softmax(t, -1))(x[0, 0]))
    jacobian = functorch.jacfwd(lambda t: softmax.log_softmax(t))(x[0, 0])
    torch.testing.assert_close(jacobian, functorch.jacfwd(lambda t: torch.log_softmax(t, -1))(x[0, 0]))
    hessian = functorch.hessian(lambda t: softmax.logsumexp(t, axis=-1))(x[0, 0])
    torch.testing.assert_close(hessian, functorch.hessian(lambda t: torch.logsumexp(t, -1))(x[0, 0]))


def test_tensor_without_storage_is_never_a_system_error():
    """The extension's view of a tensor asks for its memory one call at a time, and says why it fails."""
    functorch = pytest.importorskip("functorch")

    def probe(t):
        with pytest.raises(RuntimeError, match="storage"):
            softmax._softmax.tensor_view(t, __import__("numpy").dtype("float64"))
        return t

    functorch.vmap(probe)(torch.randn(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("function", [softmax.logsumexp, softmax.entropy])
@pytest.mark.parametrize("scale", [1.0, -0.6])
def test_logsumexp_and_entropy_are_differentiable(function, scale):
    torch.manual_seed(6)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert function(x, scale=scale).requires_grad
    for axis in (-1, 0, None, (0, 1)):
        f = lambda t: function(t, axis=axis, scale=scale)  # noqa: E731
        assert gradcheck(f, (x,), check_forward_ad=True, check_batched_grad=True)
        assert gradgradcheck(f, (x,), check_batched_grad=True, check_fwd_over_rev=True)
    ours = torch.autograd.grad(softmax.logsumexp(x, scale=scale).sum(), x)[0]
    torch.testing.assert_close(ours, torch.autograd.grad(torch.logsumexp(x * scale, -1).sum(), x)[0])
    p = torch.softmax(x * scale, -1)
    torch_entropy = -(p * torch.log_softmax(x * scale, -1)).sum(-1)
    ours = torch.autograd.grad(softmax.entropy(x, scale=scale).sum(), x)[0]
    torch.testing.assert_close(ours, torch.autograd.grad(torch_entropy.sum(), x)[0])


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_learned_additive_mask_to_second_order(function):
    torch.manual_seed(7)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    f = lambda t, b: function(t, scale=0.7, mask=b)  # noqa: E731
    assert gradcheck(f, (x, bias), check_forward_ad=True, check_batched_grad=True)
    assert gradgradcheck(f, (x, bias), check_batched_grad=True, check_fwd_over_rev=True)


def test_half_precision_double_backward_is_finite_and_close_to_float64():
    if not softmax.HAS_BF16:
        pytest.skip("this build of libsoftmax has no bfloat16")
    torch.manual_seed(8)
    x64 = torch.randn(4, 8, dtype=torch.float64)
    weights = torch.randn(4, 8, dtype=torch.float64)
    results = []
    for dtype in (torch.bfloat16, torch.float64):
        x = x64.to(dtype).requires_grad_()
        (grad,) = torch.autograd.grad((softmax.log_softmax(x) * weights.to(dtype)).sum(), x, create_graph=True)
        (second,) = torch.autograd.grad(grad.square().sum(), x)
        assert second.dtype == dtype
        results.append(second.double())
    torch.testing.assert_close(results[0], results[1], rtol=0.05, atol=0.05)


@pytest.mark.parametrize("scale", [0.0, 1.0, -1.0, 0.7, 1e30, -1e30, math.inf, -math.inf])
@pytest.mark.parametrize("log", [False, True])
def test_tensors_without_storage_follow_the_contract_on_special_rows(scale, log):
    """vmap's wrappers take the torch-operation path: the same special-value rules as the C kernels."""
    functorch = pytest.importorskip("functorch")
    inf = math.inf
    rows = torch.tensor(
        [
            [1.0, 2.0, 3.0, 4.0],
            [inf, 1.0, inf, -inf],  # +inf entries share the mass (scale > 0)
            [-inf, 1.0, 2.0, -inf],  # -inf entries are masked (scale > 0)
            [-inf, -inf, -inf, -inf],  # fully masked: zeros (log: -inf), never NaN
            [inf, inf, inf, inf],  # all +inf: uniform for scale > 0, masked for scale < 0
            [3e300, -3e300, 1e300, 0.0],  # finite, but scale * x overflows a double for |scale| = 1e30
            [1.0, math.nan, 2.0, 3.0],  # NaN row
        ],
        dtype=torch.float64,
    )
    function = softmax.log_softmax if log else softmax.softmax
    batched = functorch.vmap(lambda row: function(row, scale=scale))(rows)
    direct = function(rows, scale=scale)  # the C kernels
    torch.testing.assert_close(batched, direct, rtol=1e-12, atol=0.0, equal_nan=True)
    if scale == 0:
        expected = torch.tensor([0.25] * 4, dtype=torch.float64)
        torch.testing.assert_close(batched[0].exp() if log else batched[0], expected)
    if scale > 0:
        expected = torch.tensor([0.5, 0.0, 0.5, 0.0], dtype=torch.float64)
        torch.testing.assert_close(batched[1].exp() if log else batched[1], expected)
    assert not torch.isnan(batched[3]).any()


def test_logsumexp_without_storage_at_scale_zero_counts_the_kept_elements():
    functorch = pytest.importorskip("functorch")
    rows = torch.tensor([[1.0, -math.inf, math.inf, 2.0], [-math.inf] * 4], dtype=torch.float64)
    batched = functorch.vmap(lambda row: softmax.logsumexp(row, scale=0.0))(rows)
    torch.testing.assert_close(batched, torch.tensor([math.log(3.0), -math.inf], dtype=torch.float64))
