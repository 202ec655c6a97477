"""softmax: fast, exact softmax-family kernels (libsoftmax, C) for NumPy arrays and CPU torch tensors.

    import softmax
    y = softmax.softmax(x, axis=-1, scale=1.0)          # same kind, shape and dtype as x
    logy = softmax.log_softmax(x, temperature=0.7)     # scale / temperature
    dx = softmax.softmax_backward(y, dy, axis=-1)      # vector-Jacobian product

    from softmax.special import softmax, log_softmax, logsumexp     # scipy.special's signatures
    from softmax.ops import norm_exp_softmax, logit_scaled_softmax   # the seeds' API
    from softmax.torch import ScaledSoftmax                          # nn.Module
    rng = softmax.default_rng(seed); rng.sample(logits)              # draws that never repeat

Inputs: numpy.ndarray or torch.Tensor (CPU), float32 or float64 (float16 and
bfloat16 when the library supports them: see HAS_F16 / HAS_BF16), any shape
and strides; lists, scalars, integer and bool arrays are promoted as SciPy and
torch promote them. Contiguous inputs are read in place; others are copied to
a contiguous buffer unless the library takes strides (HAS_STRIDES). Results
are new arrays/tensors (tensors allocated by torch), or written into out=. Bad
input raises TypeError or ValueError saying why; out= is left untouched on
error. Tensors on another device raise ValueError (no silent copy to the CPU).
Autograd to any order, forward mode, functorch and TorchScript: docs/python.md.
"""

import sys as _sys

from . import _core, _softmax
from ._core import effective_scale

__all__ = ["softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "version", "isa_name",
           "set_num_threads", "get_num_threads", "HAS_STRIDES", "HAS_MASKS", "HAS_F16", "HAS_BF16", "HAS_SAMPLER"]

HAS_STRIDES = bool(_softmax.HAS_STRIDES)
HAS_MASKS = bool(_softmax.HAS_MASKS)
HAS_F16 = bool(_softmax.HAS_F16)
HAS_BF16 = bool(_softmax.HAS_BF16)

version = _softmax.version
isa_name = _softmax.isa_name
set_num_threads = _softmax.set_num_threads
get_num_threads = _softmax.get_num_threads

__version__ = "0.1.0"

_execute = _softmax.execute
_execute_tensor = _softmax.execute_tensor
_ndarray = __import__("numpy").ndarray
_OP_SOFTMAX = _softmax.OP_SOFTMAX
_OP_LOG_SOFTMAX = _softmax.OP_LOG_SOFTMAX
_OP_FAST = _softmax.OP_FAST


def _short_path(op, x, axis, scale, out, fast):
    """The call without masks or temperature straight to the extension, or None for the general path.

    The common call costs a fraction of a microsecond this way; anything it cannot take
    (promoted types, a 0-d x, axis None or a tuple, or a real error) goes to the general
    path, which decides and says why.
    """
    op = op if fast is False else op | _OP_FAST if fast is True else 0
    if not op or (type(scale) is not float and type(scale) is not int and _core.tracked_tensor(scale)):
        return None  # (a scale autograd follows: the general path keeps its gradient)
    if type(x) is _ndarray:
        if out is not None and type(out) is not _ndarray:
            return None  # (a masked array or a tensor out=: the general path says why)
        try:
            return _execute(op, x, None, out, axis, scale, False, None, False, None)
        except (TypeError, ValueError):
            return None
    if out is not None:
        return None
    try:
        result = _execute_tensor(op, x, axis, scale)
    except (TypeError, ValueError):
        return None
    if result is not NotImplemented:
        return result
    # (the default axis is an int subclass of its own: see _core.LAST_AXIS)
    if (type(axis) is int or axis is _core.LAST_AXIS) and getattr(x, "requires_grad", False) is True:
        return _core.autograd_forward(op, x, int(axis), scale)
    return None


def softmax(x, axis=_core.LAST_AXIS, scale=1.0, temperature=None, mask=None, out=None, fast=False, *, dim=None,
            dtype=None, causal=False, causal_offset=0, max_bias=0.0, head_axis=-3):
    """softmax(scale / temperature * x + mask) along `axis`.

    x           numpy.ndarray or CPU torch.Tensor (float32, float64, float16,
                bfloat16); lists, scalars, integer and bool arrays are promoted
                (NumPy: to float64; tensors: to torch's default float type).
                A 0-d x gives 1 (log_softmax: 0).
    axis        the axis the probabilities sum over (negative counts from the
                end); None = all elements (SciPy's default), or a tuple of axes.
    dim         torch's name for axis (give one of them).
    dtype       the type x is cast to first (torch's dtype=).
    scale       inverse temperature multiplying x (fused: no extra pass). scale < 0
                gives softmin, 0 the uniform distribution, +-inf the one-hot limit.
    temperature if given, the scale is scale / temperature; temperature=0 is the
                greedy limit (one-hot at the arg max, ties share the mass).
                Either may be a one-element tensor that requires grad (a learned
                temperature): the result is differentiable in it too.
    mask        optional, broadcastable to x: a bool array (True = keep; excluded
                elements get exactly 0), or a float array added after scaling
                (-inf excludes). A row with nothing kept is all zeros, never NaN.
    causal      keep element j of a row only if j <= i + causal_offset, i being
                the row's index along axis - 1 (attention scores [..., q, k]).
    max_bias    > 0: ALiBi, a bias slope(h) * j with h the index along head_axis
                (ggml's slopes; see softmax.h).
    out         optional array/tensor of x's shape and dtype to write into (a
                tensor out= is written with torch's own copy_, so autograd sees
                the write; an empty tensor is resized).
    fast        the library's fast mode (SOFTMAX_FLAG_FAST): float32 within 5 ulp
                instead of 3, for speed on rows in cache. Arrays and tensors
                without grad or mask; elsewhere the accurate kernels run.

    Returns an array or tensor of x's kind and shape (or out). Tensors that
    require grad get a differentiable result: C backward and forward-mode
    kernels, exact higher derivatives (see softmax.torch).
    """
    if (temperature is None and mask is None and dim is None and dtype is None and causal is False
            and max_bias == 0.0):
        result = _short_path(_OP_SOFTMAX, x, axis, scale, out, fast)
        if result is not None:
            return result
    positional = _core.positional_masks(causal, causal_offset, max_bias, head_axis, "softmax")
    return _core.general(_OP_SOFTMAX, x, axis, scale, temperature, mask, out, fast, dim, dtype, positional,
                         "softmax")


def log_softmax(x, axis=_core.LAST_AXIS, scale=1.0, temperature=None, mask=None, out=None, fast=False, *, dim=None,
                dtype=None, causal=False, causal_offset=0, max_bias=0.0, head_axis=-3):
    """log(softmax(...)) computed directly: scale*x - logsumexp(scale*x); same arguments as softmax().

    Excluded (masked or -inf) elements give -inf; a fully masked row is all -inf.
    """
    if (temperature is None and mask is None and dim is None and dtype is None and causal is False
            and max_bias == 0.0):
        result = _short_path(_OP_LOG_SOFTMAX, x, axis, scale, out, fast)
        if result is not None:
            return result
    positional = _core.positional_masks(causal, causal_offset, max_bias, head_axis, "log_softmax")
    return _core.general(_OP_LOG_SOFTMAX, x, axis, scale, temperature, mask, out, fast, dim, dtype, positional,
                         "log_softmax")


def softmax_backward(y, dy, axis=-1, scale=1.0, temperature=None, out=None):
    """Gradient through softmax: dx = scale * y * (dy - sum(dy * y, axis)).

    y is the softmax output, dy the gradient of the loss with respect to y;
    scale/temperature as given to softmax(). Same kinds and dtypes in and out.
    """
    if temperature is not None or (type(scale) is not float and type(scale) is not int):
        scale = effective_scale(scale, temperature, "softmax_backward")  # (refuses a scale that requires grad)
    return _core.backward(_core.OP_SOFTMAX_BACKWARD, y, dy, axis, scale, out, "softmax_backward")


def log_softmax_backward(logy, dy, axis=-1, scale=1.0, temperature=None, out=None):
    """Gradient through log-softmax: dx = scale * (dy - exp(logy) * sum(dy, axis))."""
    if temperature is not None or (type(scale) is not float and type(scale) is not int):
        scale = effective_scale(scale, temperature, "log_softmax_backward")  # (refuses a scale that requires grad)
    return _core.backward(_core.OP_LOG_SOFTMAX_BACKWARD, logy, dy, axis, scale, out, "log_softmax_backward")


HAS_SAMPLER = bool(_softmax.HAS_SAMPLER)
if HAS_SAMPLER:
    from ._stats import Generator, RepeatedSampleWarning, default_rng, entropy, logsumexp, sample

    __all__ += ["sample", "logsumexp", "entropy", "Generator", "default_rng", "RepeatedSampleWarning"]

if "torch" in _sys.modules:
    # torch is loaded already: define the torch operators now, so that
    # torch.jit.script finds them (softmax.torch defines them otherwise).
    from . import _operators

    _operators.register()
