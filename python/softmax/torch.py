"""PyTorch glue: an autograd Function whose backward is libsoftmax's, and nn.Module wrappers.

softmax.softmax / log_softmax already use SoftmaxFunction for tensors that
require grad; use this module directly for the nn.Module:

    from softmax.torch import ScaledSoftmax
    layer = ScaledSoftmax(scale=0.125, dim=-1)
"""

import torch

from . import _core

__all__ = ["SoftmaxFunction", "ScaledSoftmax", "ScaledLogSoftmax"]


class SoftmaxFunction(torch.autograd.Function):
    """y = softmax(scale * x [+ mask]) or its log along `axis`, with a C backward.

    apply(x, axis, scale, log, additive_mask, keep_mask); the masks are not
    differentiated (None gradients).
    """

    @staticmethod
    def forward(ctx, x, axis, scale, log, additive, keep):
        op = _core.OP_LOG_SOFTMAX if log else _core.OP_SOFTMAX
        fn = "log_softmax" if log else "softmax"
        y = _core.forward_tensor(op, x, axis, scale, additive, keep, None, fn)
        ctx.save_for_backward(y)
        ctx.axis, ctx.scale, ctx.log, ctx.keep = axis, scale, log, keep
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        op = _core.OP_LOG_SOFTMAX_BACKWARD if ctx.log else _core.OP_SOFTMAX_BACKWARD
        fn = "log_softmax_backward" if ctx.log else "softmax_backward"
        dx = _core.backward(op, y, dy, ctx.axis, ctx.scale, None, fn, keep=ctx.keep)
        return dx, None, None, None, None, None


class ScaledSoftmax(torch.nn.Module):
    """softmax(scale * x) along `dim` as a layer (scale = inverse temperature)."""

    def __init__(self, scale=1.0, dim=-1):
        super().__init__()
        self.scale = _core.effective_scale(scale, None, "ScaledSoftmax")
        self.dim = dim

    def forward(self, x, mask=None):
        return _core.forward(_core.OP_SOFTMAX, x, self.dim, self.scale, mask, None, "ScaledSoftmax")

    def extra_repr(self):
        return f"scale={self.scale}, dim={self.dim}"


class ScaledLogSoftmax(ScaledSoftmax):
    """log_softmax(scale * x) along `dim` as a layer."""

    def forward(self, x, mask=None):
        return _core.forward(_core.OP_LOG_SOFTMAX, x, self.dim, self.scale, mask, None, "ScaledLogSoftmax")
