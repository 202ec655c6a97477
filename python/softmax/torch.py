"""PyTorch glue: autograd Functions over the C kernels, nn.Module wrappers, and torch operators.

softmax.softmax / log_softmax / logsumexp / entropy use these Functions for
tensors that require grad; use this module directly for the nn.Modules:

    from softmax.torch import ScaledSoftmax
    layer = ScaledSoftmax(scale=0.125, dim=-1)

What autograd gets:
- backward: the C kernels (softmax_backward / log_softmax_backward) when the
  gradient is not itself differentiated; under create_graph=True (double
  backprop, gradgradcheck, Hessians) the same formulas as torch operations on
  the saved output, so every higher derivative is exact;
- forward mode (torch.autograd.forward_ad, jvp): the C kernels (the softmax
  backward kernel, which is also its JVP, and log_softmax_jvp);
- tensors without storage (functorch vmap / grad wrappers, gradcheck's batched
  gradients): the torch-operation path of softmax._torch_math, which torch
  batches and differentiates itself.
"""

import math

import torch

from . import _core, _torch_math

__all__ = ["SoftmaxFunction", "LogSumExpFunction", "EntropyFunction", "ScaledSoftmax", "ScaledLogSoftmax",
           "operators"]


def _use_torch_ops(*tensors):
    """True where the C kernels must not run: a tensor without storage, or a result autograd will differentiate."""
    if not all(_torch_math.has_storage(t) for t in tensors if t is not None):
        return True
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class SoftmaxFunction(torch.autograd.Function):
    """y = softmax(scale * x [+ mask]) or its log along `axis`, C forward, backward and JVP.

    apply(x, axis, scale, log, additive_mask, keep_mask, positional); the masks
    are not differentiated (None gradients; a learned additive mask is added
    with torch operations before this Function instead). positional is None or
    (causal, causal_offset, max_bias, head_axis), the C descriptor's fields.
    """

    @staticmethod
    def forward(ctx, x, axis, scale, log, additive=None, keep=None, positional=None):
        op = _core.OP_LOG_SOFTMAX if log else _core.OP_SOFTMAX
        fn = "log_softmax" if log else "softmax"
        y = _core.forward_tensor(op, x, axis, scale, additive, keep, None, fn, positional)
        ctx.save_for_backward(y, keep)
        ctx.save_for_forward(y, keep)
        ctx.axis, ctx.scale, ctx.log, ctx.positional = axis, scale, log, positional
        return y

    @staticmethod
    def backward(ctx, dy):
        y, keep = ctx.saved_tensors
        if _use_torch_ops(y, dy):
            excluded = _torch_math.excluded_elements(y.shape, ctx.axis, keep, ctx.positional, y.device)
            dx = _torch_math.backward(y, dy, ctx.axis, ctx.scale, ctx.log, excluded)
        else:
            op = _core.OP_LOG_SOFTMAX_BACKWARD if ctx.log else _core.OP_SOFTMAX_BACKWARD
            fn = "log_softmax_backward" if ctx.log else "softmax_backward"
            dx = _core.backward(op, y, dy, ctx.axis, ctx.scale, None, fn, keep=keep, positional=ctx.positional)
        return dx, None, None, None, None, None, None

    @staticmethod
    def jvp(ctx, x_tangent, axis_t, scale_t, log_t, additive_tangent, keep_t, positional_t):
        y, keep = ctx.saved_tensors
        scale = ctx.scale
        if x_tangent is None and additive_tangent is None:
            return torch.zeros_like(y)
        excluded = None
        if additive_tangent is not None or _use_torch_ops(y, x_tangent):
            # The tangent of the logits z = scale * x + mask, through torch operations.
            tangent = additive_tangent if x_tangent is None else scale * x_tangent
            if x_tangent is not None and additive_tangent is not None:
                tangent = tangent + additive_tangent
            if math.isinf(scale):
                return torch.zeros_like(y)
            excluded = _torch_math.excluded_elements(y.shape, ctx.axis, keep, ctx.positional, y.device)
            return _torch_math.jvp(y, tangent, ctx.axis, 1.0, ctx.log, excluded)
        op = _core.OP_LOG_SOFTMAX_JVP if ctx.log else _core.OP_SOFTMAX_BACKWARD  # softmax: JVP = VJP
        fn = "log_softmax_jvp" if ctx.log else "softmax_jvp"
        return _core.backward(op, y, x_tangent, ctx.axis, scale, None, fn, keep=keep, positional=ctx.positional)


def _row_axis(x, axis):
    return axis % x.dim()


class LogSumExpFunction(torch.autograd.Function):
    """log(sum(exp(scale * x), axis)) by the library's row statistics; gradient scale * softmax(scale * x)."""

    @staticmethod
    def forward(ctx, x, axis, scale):
        from . import _stats

        value = _stats.row_statistic(x, axis, scale, 0, "logsumexp")
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.axis, ctx.scale = _row_axis(x, axis), scale
        return value

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if math.isinf(ctx.scale):
            return torch.zeros_like(x), None, None
        p = probabilities(x, ctx.axis, ctx.scale, False)
        return ctx.scale * grad.unsqueeze(ctx.axis) * p, None, None

    @staticmethod
    def jvp(ctx, x_tangent, axis_t, scale_t):
        (x,) = ctx.saved_tensors
        if math.isinf(ctx.scale):
            return torch.zeros(x.shape[:ctx.axis] + x.shape[ctx.axis + 1:], dtype=x.dtype)
        p = probabilities(x, ctx.axis, ctx.scale, False)
        return ctx.scale * (p * x_tangent).sum(ctx.axis)


class EntropyFunction(torch.autograd.Function):
    """-sum(p log p), p = softmax(scale * x), by the library's row statistics.

    dH/dx = -scale * p * (log p + H), with 0 * log 0 = 0.
    """

    @staticmethod
    def forward(ctx, x, axis, scale):
        from . import _stats

        value = _stats.row_statistic(x, axis, scale, 1, "entropy")
        ctx.save_for_backward(x, value)
        ctx.save_for_forward(x, value)
        ctx.axis, ctx.scale = _row_axis(x, axis), scale
        return value

    @staticmethod
    def _weights(ctx, x, value):
        """-scale * p * (log p + H): the gradient for an incoming gradient of 1."""
        logp = probabilities(x, ctx.axis, ctx.scale, True)
        p = logp.exp()
        logp = logp.masked_fill(p == 0, 0.0)
        return -ctx.scale * p * (logp + value.unsqueeze(ctx.axis))

    @staticmethod
    def backward(ctx, grad):
        x, value = ctx.saved_tensors
        if math.isinf(ctx.scale):
            return torch.zeros_like(x), None, None
        return grad.unsqueeze(ctx.axis) * EntropyFunction._weights(ctx, x, value), None, None

    @staticmethod
    def jvp(ctx, x_tangent, axis_t, scale_t):
        x, value = ctx.saved_tensors
        if math.isinf(ctx.scale):
            return torch.zeros_like(value)
        return (EntropyFunction._weights(ctx, x, value) * x_tangent).sum(ctx.axis)


def probabilities(x, axis, scale, log):
    """softmax / log-softmax of scale * x, differentiable: the C Function, or torch operations without storage."""
    if not _torch_math.has_storage(x):
        return _torch_math.forward(x, axis, scale, log)
    if (torch.is_grad_enabled() and x.requires_grad) or _core._has_tangent(torch, x):
        return SoftmaxFunction.apply(x, axis, scale, log, None, None, None)
    op = _core.OP_LOG_SOFTMAX if log else _core.OP_SOFTMAX
    return _core.forward_tensor(op, x, axis, scale, None, None, None, "log_softmax" if log else "softmax")


class ScaledSoftmax(torch.nn.Module):
    """softmax(scale * x) along `dim` as a layer (scale = inverse temperature)."""

    def __init__(self, scale=1.0, dim=-1):
        super().__init__()
        # A float, or a tensor that requires grad (an nn.Parameter is registered: a learned
        # inverse temperature), whose gradient softmax() keeps.
        self.scale = _core.scale_argument(scale, type(self).__name__)
        self.dim = dim

    def forward(self, x, mask=None):
        from . import softmax

        return softmax(x, self.dim, self.scale, mask=mask)

    def extra_repr(self):
        return f"scale={self.scale}, dim={self.dim}"


class ScaledLogSoftmax(ScaledSoftmax):
    """log_softmax(scale * x) along `dim` as a layer."""

    def forward(self, x, mask=None):
        from . import log_softmax

        return log_softmax(x, self.dim, self.scale, mask=mask)


def operators():
    """The torch operators softmax::softmax, log_softmax, logsumexp and entropy (registered once)."""
    from . import _operators

    return _operators.register()


operators()  # importing softmax.torch defines them
