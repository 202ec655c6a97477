"""The seeds' operations (zeta.ops), computed by libsoftmax.

Change `from zeta.ops import norm_exp_softmax` to
`from softmax.ops import norm_exp_softmax` and the rest of the code stays.

Both are softmax(scale * x) along the last axis, batched over the others,
on torch tensors (differentiable, CPU) or NumPy arrays. Unlike the original
norm_exp_softmax, which exponentiates scale * x before normalising and so
returns NaN once scale * x > 88.7 in float32, these subtract the row maximum
first: no overflow for any finite input and scale.
"""

from . import _core
from . import softmax as _softmax

__all__ = ["norm_exp_softmax", "logit_scaled_softmax"]


def norm_exp_softmax(x, scale=1.0):
    """softmax(scale * x) along the last axis; the scale is fused into the kernel."""
    return _softmax(x, -1, _core.scale_argument(scale, "norm_exp_softmax"))


def logit_scaled_softmax(x, scale=1.0):
    """softmax(x * scale, dim=-1): logits scaled before the softmax, in one pass."""
    return _softmax(x, -1, _core.scale_argument(scale, "logit_scaled_softmax"))
