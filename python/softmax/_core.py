"""The general functions: softmax, log_softmax and their gradients on NumPy arrays and CPU torch tensors.

NumPy arrays go straight to the extension (softmax._softmax, C). A torch tensor
is seen as a NumPy array over the same memory (softmax._softmax.tensor_view), so
no data is copied on the way in or out; tensors that need gradients go
through the autograd Function in softmax.torch.
"""

import math
import sys

import numpy as np

from . import _softmax

OP_SOFTMAX = _softmax.OP_SOFTMAX
OP_LOG_SOFTMAX = _softmax.OP_LOG_SOFTMAX
OP_SOFTMAX_BACKWARD = _softmax.OP_SOFTMAX_BACKWARD
OP_LOG_SOFTMAX_BACKWARD = _softmax.OP_LOG_SOFTMAX_BACKWARD

_execute = _softmax.execute
_ndarray = np.ndarray


def real_number(value, fn, name):
    """value as a float; TypeError unless it is a real number.

    float() alone would also take the text "2": the extension refuses text
    for scale, so every real-valued argument refuses it the same way.
    """
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{fn}: {name} must be a real number, not {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a real number, not {type(value).__name__}") from None


def effective_scale(scale, temperature, fn="softmax"):
    """The inverse temperature actually applied: scale / temperature.

    temperature=None leaves scale alone. temperature=0 is the greedy limit:
    an infinite scale of scale's sign (one-hot at the arg max; ties share).
    """
    scale = real_number(scale, fn, "scale")
    if math.isnan(scale):
        raise ValueError(f"{fn}: scale is NaN")
    if temperature is None:
        return scale
    temperature = real_number(temperature, fn, "temperature")
    if math.isnan(temperature) or temperature < 0:
        raise ValueError(f"{fn}: temperature must be >= 0 (0 = greedy), got {temperature}")
    if temperature == 0:
        if scale == 0:
            raise ValueError(f"{fn}: temperature 0 with scale 0 is undefined (0 / 0)")
        return math.copysign(math.inf, scale)
    return scale / temperature


def _torch_module():
    # torch is never imported here: if the caller has no torch loaded, x
    # cannot be a tensor, and importing it would cost a second.
    return sys.modules.get("torch")


def is_tensor(x):
    torch = _torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


_numpy_dtype_of_torch = {}  # filled on first use, when torch is loaded


def _dtype_table(torch):
    if not _numpy_dtype_of_torch:
        _numpy_dtype_of_torch.update({torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)})
        if _softmax.HAS_F16:
            _numpy_dtype_of_torch[torch.float16] = np.dtype(np.float16)
        if _softmax.HAS_BF16:
            # NumPy has no bfloat16: pass the bits, and say what they are.
            _numpy_dtype_of_torch[torch.bfloat16] = np.dtype(np.int16)
    return _numpy_dtype_of_torch


_torch_registered = []  # [True] once register_torch() ran


def register_torch(torch):
    """Hands the extension what its short path for tensors needs (once)."""
    table = {dtype: np_dtype for dtype, np_dtype in _dtype_table(torch).items() if dtype is not torch.bfloat16}
    _softmax.register_torch(torch.Tensor, torch.from_numpy, torch.strided, table)
    _torch_registered.append(True)


def tensor_as_array(tensor, fn, name, bool_allowed=False):
    """(NumPy view of the tensor's memory, whether it holds bfloat16 bits).

    A view, not a copy: the library reads and writes the tensor's own memory.
    """
    torch = _torch_module()
    if not tensor.is_cpu:
        raise ValueError(
            f"{fn}: {name} is on device '{tensor.device}'; libsoftmax computes on the CPU. "
            f"Move it with .cpu(), or use torch.softmax for tensors on an accelerator")
    if tensor.layout is not torch.strided:
        raise TypeError(f"{fn}: {name} has layout {tensor.layout}; only dense (strided) tensors are supported")
    dtype = _dtype_table(torch).get(tensor.dtype)
    if dtype is None:
        if bool_allowed and tensor.dtype is torch.bool:
            dtype = np.dtype(np.bool_)
        else:
            supported = ", ".join(str(t).replace("torch.", "") for t in _dtype_table(torch))
            raise TypeError(f"{fn}: {name} has dtype {tensor.dtype}; supported: {supported}")
    if tensor.is_neg():  # a lazily negated view: its memory holds -x
        tensor = tensor.resolve_neg()
    return _softmax.tensor_view(tensor, dtype), tensor.dtype is torch.bfloat16


def array_as_tensor(array, bf16):
    torch = _torch_module()
    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if bf16 else tensor


def _check_kind(x, fn):
    if type(x) is not _ndarray and not isinstance(x, _ndarray) and not is_tensor(x):
        raise TypeError(f"{fn}: x must be a numpy.ndarray or a torch.Tensor, not {type(x).__name__}"
                        " (convert it with numpy.asarray(x, dtype=float))")
    if isinstance(x, np.ma.MaskedArray):
        # Its mask would be silently ignored by the library.
        raise TypeError(f"{fn}: x is a numpy.ma.MaskedArray; pass x.data and the mask as mask=~x.mask")


def _prepare_mask(x, mask, fn):
    """The mask broadcast to x's shape, of x's kind: (additive, keep)."""
    x_is_tensor = is_tensor(x)
    if x_is_tensor != is_tensor(mask) or (not x_is_tensor and not isinstance(mask, _ndarray)):
        kind = "torch.Tensor" if x_is_tensor else "numpy.ndarray"
        raise TypeError(f"{fn}: mask must be a {kind} like x, not {type(mask).__name__}")
    try:
        mask = mask.expand(x.shape) if x_is_tensor else np.broadcast_to(mask, x.shape)
    except (RuntimeError, ValueError):
        raise ValueError(f"{fn}: mask of shape {tuple(mask.shape)} does not broadcast to x's shape "
                         f"{tuple(x.shape)}") from None
    is_bool = str(mask.dtype) in ("bool", "torch.bool")
    return (None, mask) if is_bool else (mask, None)


def _mask_fallback(x, additive, keep, scale):
    """Applies a mask with array operations, where the library's fused mask cannot be used.

    Returns (logits, scale, dtype): softmax(scale * logits), converted to
    dtype if that is not None, is the masked softmax. A keep-mask is exact:
    excluded logits become the value whose probability is 0 at this scale's
    sign. An additive mask is added after scaling in float64, and the
    softmax computed in float64 too (then rounded once to x's type), so that
    the logits are not rounded to x's type before the exponential.
    """
    x_is_tensor = is_tensor(x)
    excluded_value = -math.inf if scale >= 0 else math.inf
    if keep is not None:
        if x_is_tensor:
            return x.masked_fill(~keep, excluded_value), scale, None
        return np.where(keep, x, x.dtype.type(excluded_value)), scale, None
    if math.isinf(scale):
        # The limit of an infinite scale: the mask only excludes (-inf).
        excluded = additive == -math.inf
        if x_is_tensor:
            return x.masked_fill(excluded, excluded_value), scale, None
        return np.where(excluded, x.dtype.type(excluded_value), x), scale, None
    if x_is_tensor:
        return x.double() * scale + additive.double(), 1.0, x.dtype
    return x.astype(np.float64) * scale + additive.astype(np.float64), 1.0, x.dtype


def _copy_into(out, result, x, fn):
    """out[...] = result rounded to out's type, after the checks the library would make."""
    if is_tensor(x) != is_tensor(out):
        kind = "torch.Tensor" if is_tensor(x) else "numpy.ndarray"
        raise TypeError(f"{fn}: out must be a {kind} like x, not {type(out).__name__}")
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"{fn}: out has shape {tuple(out.shape)} but x has shape {tuple(x.shape)}; they must be equal")
    if out.dtype != x.dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype} but x has dtype {x.dtype}; they must be equal")
    if is_tensor(out):
        if _torch_module().is_grad_enabled() and result.requires_grad:
            raise ValueError(f"{fn}: out= cannot be used while x requires grad (autograd needs a new tensor)")
        out.copy_(result)
    else:
        np.copyto(out, result, casting="same_kind")
    return out


def forward(op, x, axis, scale, mask, out, fn):
    """softmax / log-softmax of any supported input (the slow path of softmax())."""
    torch = _torch_module()
    if torch is not None and not _torch_registered:
        register_torch(torch)
    if (mask is None and out is None and torch is not None and isinstance(x, torch.Tensor)
            and not (x.requires_grad and torch.is_grad_enabled())):
        # The common case of a tensor, kept short: it is most of a tiny call's cost.
        array, bf16 = tensor_as_array(x, fn, "x")
        result = torch.from_numpy(_execute(op, array, None, None, axis, scale, bf16, None, False, None))
        return result.view(torch.bfloat16) if bf16 else result
    _check_kind(x, fn)
    additive = keep = None
    if mask is not None:
        additive, keep = _prepare_mask(x, mask, fn)
        # A mask that requires grad (a learned bias) is added with torch's
        # operations, so that autograd differentiates it too.
        learned = is_tensor(mask) and mask.requires_grad and _torch_module().is_grad_enabled()
        if not _softmax.HAS_MASKS or learned:
            logits, scale, result_dtype = _mask_fallback(x, additive, keep, scale)
            if result_dtype is not None:
                if out is not None:
                    result = forward(op, logits, axis, scale, None, None, fn)
                    # Rounded once into out (which keeps its own type check).
                    return _copy_into(out, result, x, fn)
                return forward(op, logits, axis, scale, None, None, fn).to(result_dtype) if is_tensor(logits) \
                    else forward(op, logits, axis, scale, None, None, fn).astype(result_dtype)
            x = logits
            additive = keep = None
    if not is_tensor(x):
        if out is not None and not isinstance(out, _ndarray):
            raise TypeError(f"{fn}: out must be a numpy.ndarray like x, not {type(out).__name__}")
        return _execute(op, x, None, out, axis, scale, False, additive, False, keep)

    torch = _torch_module()
    if out is not None and not isinstance(out, torch.Tensor):
        raise TypeError(f"{fn}: out must be a torch.Tensor like x, not {type(out).__name__}")
    if torch.is_grad_enabled() and x.requires_grad:
        if out is not None:
            raise ValueError(f"{fn}: out= cannot be used while x requires grad (autograd needs a new tensor); "
                             "call it under torch.no_grad() or drop out=")
        from . import torch as softmax_torch

        return softmax_torch.SoftmaxFunction.apply(x, axis, scale, op == OP_LOG_SOFTMAX, additive, keep)
    return forward_tensor(op, x, axis, scale, additive, keep, out, fn)


def forward_tensor(op, x, axis, scale, additive, keep, out, fn):
    """The C forward on a tensor, no autograd: a new tensor, or out."""
    array, bf16 = tensor_as_array(x, fn, "x")
    out_array = None
    if out is not None:
        out_array, out_bf16 = tensor_as_array(out, fn, "out")
        if out.dtype != x.dtype:
            raise TypeError(f"{fn}: out has dtype {out.dtype} but x has dtype {x.dtype}; they must be equal")
    additive_array = additive_bf16 = keep_array = None
    if additive is not None:
        additive_array, additive_bf16 = tensor_as_array(additive, fn, "mask")
    if keep is not None:
        keep_array, _ = tensor_as_array(keep, fn, "mask", bool_allowed=True)
    result = _execute(op, array, None, out_array, axis, scale, bf16, additive_array, bool(additive_bf16), keep_array)
    return out if out is not None else array_as_tensor(result, bf16)


def backward(op, y, dy, axis, scale, out, fn, keep=None):
    """The vector-Jacobian product of softmax / log-softmax from its output y (or log y)."""
    _check_kind(y, fn)
    if is_tensor(y) != is_tensor(dy):
        raise TypeError(f"{fn}: dy must be of the same kind as y (both numpy.ndarray or both torch.Tensor), "
                        f"not {type(dy).__name__}")
    if not is_tensor(y):
        if out is not None and not isinstance(out, _ndarray):
            raise TypeError(f"{fn}: out must be a numpy.ndarray like y, not {type(out).__name__}")
        return _execute(op, y, dy, out, axis, scale, False, None, False, keep)
    torch = _torch_module()
    if out is not None and not isinstance(out, torch.Tensor):
        raise TypeError(f"{fn}: out must be a torch.Tensor like y, not {type(out).__name__}")
    y_array, bf16 = tensor_as_array(y, fn, "y")
    dy_array, dy_bf16 = tensor_as_array(dy, fn, "dy")
    if dy.dtype != y.dtype:
        raise TypeError(f"{fn}: dy has dtype {dy.dtype} but y has dtype {y.dtype}; they must be equal")
    out_array = None
    if out is not None:
        out_array, _ = tensor_as_array(out, fn, "out")
        if out.dtype != y.dtype:
            raise TypeError(f"{fn}: out has dtype {out.dtype} but y has dtype {y.dtype}; they must be equal")
    keep_array = tensor_as_array(keep, fn, "mask", bool_allowed=True)[0] if keep is not None else None
    result = _execute(op, y_array, dy_array, out_array, axis, scale, bf16, None, False, keep_array)
    return out if out is not None else array_as_tensor(result, bf16)
