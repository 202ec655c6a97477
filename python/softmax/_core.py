"""The general functions: softmax, log_softmax and their gradients on NumPy arrays and CPU torch tensors.

NumPy arrays go straight to the extension (softmax._softmax, C). A torch tensor
is seen as a NumPy array over the same memory (softmax._softmax.tensor_view), so
no data is copied on the way in or out; tensors that need gradients go
through the autograd Function in softmax.torch.
"""

import math
import operator
import sys

import numpy as np

from . import _softmax

OP_SOFTMAX = _softmax.OP_SOFTMAX
OP_LOG_SOFTMAX = _softmax.OP_LOG_SOFTMAX
OP_SOFTMAX_BACKWARD = _softmax.OP_SOFTMAX_BACKWARD
OP_LOG_SOFTMAX_BACKWARD = _softmax.OP_LOG_SOFTMAX_BACKWARD
OP_LOG_SOFTMAX_JVP = _softmax.OP_LOG_SOFTMAX_JVP

_execute = _softmax.execute
_ndarray = np.ndarray
_MaskedArray = np.ma.MaskedArray


def real_number(value, fn, name):
    """value as a float; TypeError unless it is a real number.

    float() alone would also take the text "2": the extension refuses text
    for scale, so every real-valued argument refuses it the same way. A
    tensor that autograd tracks is refused too: float() would drop its
    gradient without a word (the functions that are differentiable in
    scale and temperature take those through differentiable_scale).
    """
    if type(value) is float:
        return value
    if isinstance(value, (str, bytes, bytearray, bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a real number, not {type(value).__name__}")
    if tracked_tensor(value):
        raise TypeError(f"{fn}: {name} is a tensor that requires grad, but {fn} is not differentiable in {name} "
                        f"(its gradient would be lost); pass {name}.detach() or a float")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a real number, not {type(value).__name__}") from None
    except OverflowError:  # an int beyond the double range: say which argument
        raise ValueError(f"{fn}: {name} is beyond the range of a double") from None


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
    if math.isinf(scale) and math.isinf(temperature):
        raise ValueError(f"{fn}: scale {scale} with temperature inf is undefined (inf / inf)")
    return scale / temperature


def tracked_tensor(value):
    """value is a torch tensor whose gradient autograd or functorch would follow."""
    if value is None or type(value) is float or type(value) is int:
        return False
    torch = _torch_module()
    if torch is None or not isinstance(value, torch.Tensor):
        return False
    return ((torch.is_grad_enabled() and value.requires_grad) or _has_tangent(torch, value)
            or not torch._C._has_storage(value))


def differentiable_scale(scale, temperature, fn):
    """(s, c): c = scale / temperature as effective_scale gives it (a float), and s the same
    value as a float64 0-d tensor carrying the gradient of scale and temperature when either
    is a tensor that autograd tracks (a learned temperature, CLIP's logit scale), else None."""
    if not ((type(scale) is not float and tracked_tensor(scale))
            or (temperature is not None and type(temperature) is not float and tracked_tensor(temperature))):
        return None, effective_scale(scale, temperature, fn)
    torch = _torch_module()
    values = []
    for value, name in ((scale, "scale"), (temperature, "temperature")):
        if isinstance(value, torch.Tensor):
            if value.numel() != 1 or value.is_complex() or value.dtype is torch.bool:
                raise TypeError(f"{fn}: {name} must be a real number or a one-element real tensor, not a tensor of "
                                f"shape {tuple(value.shape)} and dtype {value.dtype}")
            if not value.is_cpu:
                raise ValueError(f"{fn}: {name} is on device '{value.device}'; libsoftmax computes on the CPU")
            values.append(value.detach().reshape(()).item())
        else:
            values.append(value)
    c = effective_scale(values[0], values[1], fn)  # the checks and the value (float64 arithmetic)
    s = scale.reshape(()).to(torch.float64) if isinstance(scale, torch.Tensor) else float(values[0])
    if temperature is not None:
        t = temperature.reshape(()).to(torch.float64) if isinstance(temperature, torch.Tensor) else values[1]
        s = s / t
    return s, c


def scale_argument(scale, fn):
    """scale checked as fn's argument: a float, or the tensor itself when autograd tracks it
    (softmax() then keeps its gradient)."""
    tracked, value = differentiable_scale(scale, None, fn)
    return value if tracked is None else scale


def apply_scale(x, s, c, fn):
    """x' equal to x in value, such that f(x', scale=c) is f(x, scale=s) as a function of the
    tensor s for the softmax family (softmax, log-softmax, logsumexp, entropy): every derivative
    in s (and in x) is exact, and the kernels still see x and the fused float scale c.

    c != 0 and finite: x' = x * (s / c) on finite x (s / c is exactly 1); c == 0: x' = s * x
    on finite x, +inf -> 0 (the scale-0 contract), computed at scale 1; c infinite: the limit,
    whose derivative is 0 (x' = x + 0 * clamp(s)). Returns (x', scale to apply)."""
    torch = _torch_module()
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: scale or temperature is a tensor that requires grad, but x is a "
                        f"{type(x).__name__}: the result could not carry its gradient; pass a tensor x, "
                        "or a float scale")
    finite = torch.isfinite(x)
    # The products below read only finite x: an inf or NaN there would give the
    # scale a NaN gradient (0 * inf) through the branch torch.where drops.
    safe = torch.where(finite, x, torch.zeros_like(x))
    if math.isinf(c):
        zero = s.clamp(-1.0, 1.0) * 0.0
        return torch.where(finite, safe + zero.to(x.dtype), x), c
    if c == 0:
        limit = torch.where(x == math.inf, torch.zeros_like(x), x)
        return torch.where(finite, safe * s.to(x.dtype), limit), 1.0
    ratio = (s / c).to(x.dtype)  # exactly 1 (c is s's value), with d ratio / ds = 1 / c
    return torch.where(finite, safe * ratio, x), c


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
    _softmax.register_torch(torch.Tensor, torch.strided, table, torch._C._get_tracing_state,
                            torch._C._autograd._profiler_enabled, torch.autograd.forward_ad, torch.empty_like)
    _torch_registered.append(True)
    from . import _operators  # the torch operators too, if `import softmax` came before `import torch`

    _operators.register()


_plain_tensor_type = [None]  # [torch.Tensor] once seen (torch is never imported here)


def refuse_dispatch_subclass(tensor, fn, name):
    """TypeError for a tensor subclass with its own __torch_dispatch__ (torch.masked.MaskedTensor,
    FakeTensor, ...): the memory behind data_ptr() is not its data (a MaskedTensor read that way
    gave logsumexp(x) = log(n) whatever x held, and its mask was ignored). Plain subclasses and
    nn.Parameter keep torch.Tensor's dispatch and their own memory: accepted."""
    cls = type(tensor)
    if cls is _plain_tensor_type[0]:
        return
    torch = _torch_module()
    if cls is torch.Tensor:
        _plain_tensor_type[0] = cls
        return
    if cls.__torch_dispatch__ is torch.Tensor.__torch_dispatch__:
        return
    hint = ("; its mask would be ignored: pass the data with the mask as mask= (softmax, log_softmax) or "
            "the data with -inf at the excluded elements" if "Masked" in cls.__name__ else
            "; pass a plain tensor")
    raise TypeError(f"{fn}: {name} is a {cls.__name__}, a tensor subclass with its own dispatch whose "
                    f"memory libsoftmax cannot read{hint}")


def tensor_as_array(tensor, fn, name, bool_allowed=False):
    """(NumPy view of the tensor's memory, whether it holds bfloat16 bits).

    A view, not a copy: the library reads and writes the tensor's own memory.
    """
    torch = _torch_module()
    refuse_dispatch_subclass(tensor, fn, name)
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


def new_result(like, fn):
    """(A new C-contiguous tensor of like's shape and dtype, its NumPy view).

    Results are tensors torch allocated, written in place by the library,
    never torch.from_numpy of a NumPy array: torch frees the memory of those
    by taking the GIL, which waits forever at interpreter exit when an error
    inside backward left such a gradient in autograd's queue.
    """
    torch = _torch_module()
    tensor = torch.empty_like(like) if like.is_contiguous() else like.new_empty(like.shape)
    return tensor, tensor_as_array(tensor, fn, "out")[0]


def _check_kind(x, fn, name="x"):
    if type(x) is not _ndarray and not isinstance(x, _ndarray) and not is_tensor(x):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray or a torch.Tensor, not {type(x).__name__}"
                        " (convert it with numpy.asarray(x, dtype=float))")
    refuse_masked_array(x, fn, name)


def refuse_masked_array(value, fn, name):
    """TypeError for a numpy.ma.MaskedArray: the library reads and writes its data, and its
    mask would be ignored without a word."""
    if value is None or type(value) is _ndarray or not isinstance(value, _MaskedArray):
        return
    if name == "x" and fn in ("softmax", "log_softmax"):
        hint = "pass x.data and the mask as mask=~numpy.ma.getmaskarray(x)"
    elif name in ("x", "logits"):
        hint = "pass numpy.ma.filled(x, -numpy.inf) (a logit of -inf is left out)"
    elif name == "mask":
        hint = "pass a plain array: a keep-mask numpy.ma.filled(mask, False) or an additive mask " \
               "numpy.ma.filled(mask, -numpy.inf)"
    else:
        hint = f"pass a plain numpy.ndarray ({name}.data, numpy.ma.filled({name}, ...))"
    raise TypeError(f"{fn}: {name} is a numpy.ma.MaskedArray, whose mask would be ignored; {hint}")


def plain_array(value):
    """An ndarray subclass (numpy.matrix, numpy.memmap, ...) seen as a plain ndarray over the
    same memory: np.matrix keeps 2 dimensions through reshape, which would give reductions
    over several axes a wrong shape. (Masked arrays are refused before this.)"""
    if type(value) is not _ndarray and isinstance(value, _ndarray):
        return value.view(_ndarray)
    return value


def _prepare_mask(x, mask, fn):
    """The mask broadcast to x's shape, of x's kind: (additive, keep)."""
    x_is_tensor = is_tensor(x)
    if x_is_tensor != is_tensor(mask) or (not x_is_tensor and not isinstance(mask, _ndarray)):
        kind = "torch.Tensor" if x_is_tensor else "numpy.ndarray"
        raise TypeError(f"{fn}: mask must be a {kind} like x, not {type(mask).__name__}")
    refuse_masked_array(mask, fn, "mask")
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
    if is_tensor(out):
        if _torch_module().is_grad_enabled() and result.requires_grad:
            raise ValueError(f"{fn}: out= cannot be used while x requires grad (autograd needs a new tensor)")
        _check_tensor_out(out, x, fn)
        if out.numel() == 0 and tuple(out.shape) != tuple(x.shape):
            out.resize_(x.shape)
        # torch's own in-place write: it bumps out's version counter, so a
        # tensor saved for a backward and then overwritten is detected.
        out.copy_(result)
        return out
    refuse_masked_array(out, fn, "out")
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"{fn}: out has shape {tuple(out.shape)} but x has shape {tuple(x.shape)}; they must be equal")
    if out.dtype != x.dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype} but x has dtype {x.dtype}; they must be equal")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: out is read-only")
    np.copyto(out, result, casting="same_kind")
    return out


def _tracing_or_profiling(torch):
    """True while torch.jit.trace records or the profiler runs: then calls go through the torch operators."""
    return torch._C._get_tracing_state() is not None or torch.autograd._profiler_enabled()


def _is_flag(value):
    return value is True or value is False or isinstance(value, np.bool_)


def _integer(value, fn, name):
    """value as an int; TypeError for bools, floats and text (operator.index semantics)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be an integer, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an integer, not {type(value).__name__}") from None


class _DefaultAxis(int):
    """The default axis, -1, as an object of its own: an explicit axis=-1 is a
    plain int, so that axis=-1 with dim= is told apart from dim= alone."""

    def __repr__(self):
        return "-1"


LAST_AXIS = _DefaultAxis(-1)


def normalize_axes(axis, dim, fn):
    """axis (or torch's dim) as an int, None (every axis) or a tuple of ints."""
    if dim is not None:
        if axis is not LAST_AXIS:
            raise TypeError(f"{fn}: give axis or dim, not both")
        axis = dim
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(_integer(a, fn, "axis") for a in axis)
    return _integer(axis, fn, "axis")


def _input(x, fn):
    """x as a tensor or a plain NumPy array: lists, tuples and scalars converted, masked arrays
    refused, other ndarray subclasses (numpy.matrix) seen as plain arrays."""
    if type(x) is _ndarray:
        return x
    torch = _torch_module()
    if torch is not None and isinstance(x, torch.Tensor):
        return x
    if not isinstance(x, _ndarray):
        if isinstance(x, (str, bytes, bytearray, dict, set)) or x is None:
            raise TypeError(f"{fn}: x must be a numpy.ndarray or a torch.Tensor, not {type(x).__name__}"
                            " (convert it with numpy.asarray(x, dtype=float))")
        if isinstance(x, (list, tuple, int, float, np.generic)):
            x = np.asarray(x)
            if x.dtype.kind not in "biuf":
                raise TypeError(f"{fn}: x holds {x.dtype} values; softmax needs real numbers")
        else:
            _check_kind(x, fn)
        return x
    refuse_masked_array(x, fn, "x")
    return plain_array(x)


def promote(x, dtype, fn, shift=None):
    """x as an array or tensor of a floating type, as SciPy / torch promote it.

    Lists and scalars become NumPy arrays; integer and bool arrays become
    float64 (NumPy's promotion for exp), integer and bool tensors torch's
    default float type; dtype=, if given, is the type x is cast to first
    (torch's meaning of dtype=). shift=(axes, scale), for functions that do
    not change when a row is shifted (softmax, log-softmax, entropy): integers
    that type cannot all hold exactly become x - m instead (integer_shift).
    """
    x = _input(x, fn)
    torch = _torch_module()
    if torch is not None and isinstance(x, torch.Tensor):
        if dtype is not None:
            if not isinstance(dtype, torch.dtype):
                raise TypeError(f"{fn}: dtype must be a torch.dtype for a tensor, not {type(dtype).__name__}")
            return x.to(dtype)
        if not (x.is_floating_point() or x.is_complex()):
            shifted = integer_shift(x, shift[0], shift[1]) if shift is not None else None
            return shifted[0] if shifted is not None else x.to(torch.get_default_dtype())
        return x
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{fn}: dtype must be a NumPy dtype for an array, not {dtype!r}") from None
        return x.astype(dtype, copy=False)
    if x.dtype.kind in "biu":
        shifted = integer_shift(x, shift[0], shift[1]) if shift is not None else None
        return shifted[0] if shifted is not None else x.astype(np.float64)
    return x


def promote_with_offset(x, axes, scale, fn):
    """(promote(x), m): for logsumexp, which a shift changes by scale * m. m (float64, the
    reduced axes kept) is None unless x holds integers shifted by integer_shift."""
    x = _input(x, fn)
    if type(x) is _ndarray and x.dtype.kind == "f":
        return x, None
    shifted = integer_shift(x, axes, scale)
    if shifted is not None:
        return shifted
    return promote(x, None, fn), None


def integer_shift(x, axes, scale, target=None):
    """(x - m, m) for integer x whose values the float type they become (float64 for NumPy,
    torch's default type for tensors) cannot all hold exactly, else None.

    m is the maximum along axes (None: all; an int or a tuple), the minimum for scale < 0 (the
    row's extreme, as the library shifts); x - m is computed exactly (in 64-bit unsigned
    arithmetic: 0 <= m - x < 2**64) and then rounded once. softmax([2**62 + 1, 2**62]) is
    softmax([1, 0]), not the [0.5, 0.5] of a conversion to float64 first (SciPy subtracts the
    maximum in integers too). m comes as float64 with the reduced axes kept (logsumexp adds
    scale * m back). target: the float type of a tensor result (default: torch's default)."""
    torch = _torch_module()
    is_torch = torch is not None and isinstance(x, torch.Tensor)
    if is_torch:
        if x.is_floating_point() or x.is_complex() or x.dtype is torch.bool or not x.numel() or not x.dim():
            return None
        if not torch._C._has_storage(x) or not x.is_cpu:
            return None  # (a functorch wrapper or another device: converted as before)
        target = target or torch.get_default_dtype()
        limit = 2 ** (round(-math.log2(torch.finfo(target).eps)) + 1)  # (every integer up to it is exact)
        if -limit <= int(x.min()) and int(x.max()) <= limit:
            return None
        array = x.numpy()
    else:
        if x.dtype.kind not in "iu" or x.dtype.itemsize < 8 or not x.size or not x.ndim:
            return None
        limit = 2 ** 53
        if -limit <= int(x.min()) and int(x.max()) <= limit:
            return None
        array = x
    ndim = array.ndim
    try:
        if axes is None:
            axes = tuple(range(ndim))
        elif isinstance(axes, int):
            axes = (axes,)
        axes = tuple(operator.index(a) % ndim for a in axes if -ndim <= operator.index(a) < ndim)
    except TypeError:
        return None  # (the caller reports a bad axis)
    if scale >= 0:
        m = array.max(axis=axes, keepdims=True)
        difference = -(m.astype(np.uint64) - array.astype(np.uint64)).astype(np.float64)  # x - m <= 0
    else:
        m = array.min(axis=axes, keepdims=True)
        difference = (array.astype(np.uint64) - m.astype(np.uint64)).astype(np.float64)  # x - m >= 0
    m = m.astype(np.float64)
    if is_torch:
        return torch.from_numpy(difference).to(target), torch.from_numpy(m)
    return difference, m


def autograd_forward(op, x, axis, scale):
    """The short path of a tensor that requires grad (an int axis, no mask, no out=): the autograd
    Function's result, or None where the general path must decide (no grad mode, a 0-d tensor, one
    without storage, a trace or a profile)."""
    torch = _torch_module()
    if (torch is None or not isinstance(x, torch.Tensor) or not torch.is_grad_enabled() or not x.dim()
            or not torch._C._has_storage(x) or _tracing_or_profiling(torch)):
        return None
    softmax_torch = sys.modules.get("softmax.torch")
    if softmax_torch is None:
        from . import torch as softmax_torch
    return softmax_torch.SoftmaxFunction.apply(x, axis, scale, op & ~_softmax.OP_FAST == OP_LOG_SOFTMAX,
                                                None, None, None)


def positional_masks(causal, causal_offset, max_bias, head_axis, fn):
    """(causal, causal_offset, max_bias, head_axis) for the C descriptor, or None when neither is on."""
    if causal is False and max_bias == 0 and type(causal_offset) is int and type(head_axis) is int:
        return None  # the common case, checked at once
    if not _is_flag(causal):
        raise TypeError(f"{fn}: causal must be True or False, not {type(causal).__name__}")
    causal_offset = _integer(causal_offset, fn, "causal_offset")
    # Any offset beyond the int64 range the descriptor takes keeps (or drops)
    # the same elements as the range's end: no dimension reaches 2**62.
    causal_offset = min(max(causal_offset, -2 ** 63), 2 ** 63 - 1)
    head_axis = _integer(head_axis, fn, "head_axis")
    if not -2 ** 31 <= head_axis < 2 ** 31:
        raise ValueError(f"{fn}: head_axis {head_axis} is out of range (it names a dimension of x)")
    max_bias = real_number(max_bias, fn, "max_bias")
    if not max_bias >= 0 or math.isinf(max_bias):
        raise ValueError(f"{fn}: max_bias must be finite and >= 0 (0 = no ALiBi), got {max_bias}")
    if not causal and max_bias == 0:
        return None
    return (bool(causal), causal_offset, max_bias, head_axis)


def general(op, x, axis, scale, temperature, mask, out, fast, dim, dtype, positional, fn):
    """softmax / log-softmax with every argument form: the slow path of softmax()."""
    if not _is_flag(fast):
        raise TypeError(f"{fn}: fast must be True or False, not {type(fast).__name__}")
    tracked, scale = differentiable_scale(scale, temperature, fn)
    axes = normalize_axes(axis, dim, fn)
    x = promote(x, dtype, fn, shift=(axes, scale))
    if is_tensor(x):
        refuse_dispatch_subclass(x, fn, "x")
    if tracked is not None:
        x, scale = apply_scale(x, tracked, scale, fn)
    if fast and not (mask is not None or positional is not None):
        op |= _softmax.OP_FAST
    if x.ndim == 0 or not isinstance(axes, int):
        return _over_axes(op, x, axes, scale, mask, out, positional, fn)
    return forward(op, x, axes, scale, mask, out, fn, positional)


def _over_axes(op, x, axes, scale, mask, out, positional, fn):
    """Softmax over several axes (None = all, or a 0-d x): those axes moved last and flattened into one."""
    ndim = x.ndim
    if axes is None:
        axes = tuple(range(ndim))
    elif isinstance(axes, int):
        if ndim == 0 and axes not in (0, -1):
            raise ValueError(f"{fn}: axis {axes} is out of range for a 0-d x (valid: -1, 0, None)")
        axes = (axes,) if ndim else ()  # a 0-d x has axis 0 (= -1), as torch's softmax says
    normalized = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{fn}: axis {a} is out of range for x with {ndim} dimensions")
        normalized.append(a % ndim if ndim else 0)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{fn}: repeated axis in {tuple(axes)}")
    if len(normalized) == 1 and ndim > 0:
        return forward(op, x, normalized[0], scale, mask, out, fn, positional)
    if positional is not None:
        raise ValueError(f"{fn}: causal= and max_bias= need a single axis (the key axis)")
    is_torch = is_tensor(x)
    count = len(normalized)
    targets = list(range(ndim - count, ndim))

    def flatten(a):
        moved = _torch_module().movedim(a, normalized, targets) if is_torch else np.moveaxis(a, normalized, targets)
        return moved, moved.reshape(tuple(moved.shape[:ndim - count]) + (-1,))

    moved, flat = flatten(x)
    if mask is not None:
        if is_tensor(mask) != is_torch:
            kind = "torch.Tensor" if is_torch else "numpy.ndarray"
            raise TypeError(f"{fn}: mask must be a {kind} like x, not {type(mask).__name__}")
        refuse_masked_array(mask, fn, "mask")
        try:
            mask = mask.expand(x.shape) if is_torch else np.broadcast_to(mask, x.shape)
        except (RuntimeError, ValueError):
            raise ValueError(f"{fn}: mask of shape {tuple(mask.shape)} does not broadcast to x's shape "
                             f"{tuple(x.shape)}") from None
        mask = flatten(mask)[1]
    result = forward(op, flat, -1, scale, mask, None, fn, None).reshape(moved.shape)
    if is_torch:
        result = _torch_module().movedim(result, targets, normalized)
    else:
        result = np.moveaxis(result, targets, normalized)
    if out is None:
        return result if is_torch or result.ndim == 0 else np.ascontiguousarray(result)
    return _copy_into(out, result, x, fn)


def forward(op, x, axis, scale, mask, out, fn, positional=None, operator=False):
    """softmax / log-softmax of an array or tensor along one axis (operator: called as the torch operator's kernel)."""
    torch = _torch_module()
    if torch is not None and not _torch_registered:
        register_torch(torch)
    _check_kind(x, fn)
    if is_tensor(x):
        refuse_dispatch_subclass(x, fn, "x")
        if is_tensor(mask):
            refuse_dispatch_subclass(mask, fn, "mask")
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"{fn}: axis {axis} is out of range for x with {x.ndim} dimension"
                             f"{'' if x.ndim == 1 else 's'} (valid: {-x.ndim}..{x.ndim - 1})")
        from . import _torch_math  # (imports torch: only once x is a tensor)

        if x.layout is not torch.strided:
            raise TypeError(f"{fn}: x has layout {x.layout}; only dense (strided) tensors are supported")
        if not x.is_cpu:
            raise ValueError(f"{fn}: x is on device '{x.device}'; libsoftmax computes on the CPU. "
                             f"Move it with .cpu(), or use torch.softmax for tensors on an accelerator")

        if not _torch_math.has_storage(x) or (is_tensor(mask) and not _torch_math.has_storage(mask)):
            return _forward_without_storage(op, x, axis, scale, mask, out, fn, positional)
        if not operator and out is None and _tracing_or_profiling(torch):
            from . import _operators

            if _operators.available():
                return _operators.call(op, x, axis, scale, mask, positional)
    additive = keep = None
    if mask is not None:
        additive, keep = _prepare_mask(x, mask, fn)
        # A mask that requires grad (a learned bias) is added with torch's
        # operations, so that autograd differentiates it too.
        learned = is_tensor(mask) and mask.requires_grad and _torch_module().is_grad_enabled()
        if not _softmax.HAS_MASKS or learned:
            logits, scale, result_dtype = _mask_fallback(x, additive, keep, scale)
            if result_dtype is not None:
                result = forward(op, logits, axis, scale, None, None, fn, positional)
                if out is not None:
                    # Rounded once into out (which keeps its own type check).
                    return _copy_into(out, result, x, fn)
                return result.to(result_dtype) if is_tensor(logits) else result.astype(result_dtype)
            x = logits
            additive = keep = None
    if not is_tensor(x):
        if out is not None and not isinstance(out, _ndarray):
            raise TypeError(f"{fn}: out must be a numpy.ndarray like x, not {type(out).__name__}")
        refuse_masked_array(out, fn, "out")
        return _execute(op, x, None, out, axis, scale, False, additive, False, keep, positional)

    torch = _torch_module()
    if (torch.is_grad_enabled() and x.requires_grad) or _has_tangent(torch, x):
        if out is not None:
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"{fn}: out must be a torch.Tensor like x, not {type(out).__name__}")
            raise ValueError(f"{fn}: out= cannot be used while x requires grad or has a tangent (autograd needs "
                             "a new tensor); call it under torch.no_grad() or drop out=")
        from . import torch as softmax_torch

        log = op & ~_softmax.OP_FAST == OP_LOG_SOFTMAX
        return softmax_torch.SoftmaxFunction.apply(x, axis, scale, log, additive, keep, positional)
    if out is not None:
        _check_tensor_out(out, x, fn)
    result = forward_tensor(op, x, axis, scale, additive, keep, None, fn, positional)
    return result if out is None else _copy_into(out, result, x, fn)


def _has_tangent(torch, x):
    """x is a dual tensor of forward-mode AD (torch.autograd.forward_ad)."""
    level = torch.autograd.forward_ad._current_level
    return level >= 0 and torch._VF._unpack_dual(x, level=level)[1] is not None


def _forward_without_storage(op, x, axis, scale, mask, out, fn, positional):
    """The torch-operation path for tensors the library cannot read (functorch wrappers)."""
    additive = keep = None
    if mask is not None:
        additive, keep = _prepare_mask(x, mask, fn)
    from . import _torch_math

    log = op & ~_softmax.OP_FAST == OP_LOG_SOFTMAX
    result = _torch_math.forward(x, axis, scale, log, additive, keep, positional)
    return result if out is None else _copy_into(out, result, x, fn)


def _check_tensor_out(out, x, fn):
    """out= for a tensor, checked as torch checks it, before anything is written.

    An empty out is resized to x's shape (as torch does); another shape is
    refused. A leaf that requires grad is refused while grad mode is on, as
    torch's in-place write refuses it.
    """
    torch = _torch_module()
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{fn}: out must be a torch.Tensor like x, not {type(out).__name__}")
    refuse_dispatch_subclass(out, fn, "out")
    if out.dtype != x.dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype} but x has dtype {x.dtype}; they must be equal")
    if not out.is_cpu:
        raise ValueError(f"{fn}: out is on device '{out.device}'; libsoftmax computes on the CPU")
    if torch.is_grad_enabled() and out.requires_grad:
        raise RuntimeError(f"{fn}: out= is a tensor that requires grad; functions with out= do not support "
                           "automatic differentiation (torch refuses it too): drop out= or use torch.no_grad()")
    if tuple(out.shape) != tuple(x.shape):
        if out.numel() != 0:
            raise ValueError(f"{fn}: out has shape {tuple(out.shape)} but x has shape {tuple(x.shape)}; "
                             "they must be equal (an empty out is resized)")


def forward_tensor(op, x, axis, scale, additive, keep, out, fn, positional=None):
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
    if out is None:
        out, out_array = new_result(x, fn)
    _execute(op, array, None, out_array, axis, scale, bf16, additive_array, bool(additive_bf16), keep_array, positional)
    return out


def backward(op, y, dy, axis, scale, out, fn, keep=None, positional=None):
    """The vector-Jacobian product of softmax / log-softmax from its output y (or log y)."""
    _check_kind(y, fn, "logy" if op == OP_LOG_SOFTMAX_BACKWARD else "y")
    if is_tensor(y) != is_tensor(dy):
        raise TypeError(f"{fn}: dy must be of the same kind as y (both numpy.ndarray or both torch.Tensor), "
                        f"not {type(dy).__name__}")
    if not is_tensor(y):
        refuse_masked_array(dy, fn, "dy")
        if out is not None and not isinstance(out, _ndarray):
            raise TypeError(f"{fn}: out must be a numpy.ndarray like y, not {type(out).__name__}")
        refuse_masked_array(out, fn, "out")
        return _execute(op, y, dy, out, axis, scale, False, None, False, keep, positional)
    torch = _torch_module()
    if out is not None and not isinstance(out, torch.Tensor):
        raise TypeError(f"{fn}: out must be a torch.Tensor like y, not {type(out).__name__}")
    y_array, bf16 = tensor_as_array(y, fn, "y")
    dy_array, dy_bf16 = tensor_as_array(dy, fn, "dy")
    if dy.dtype != y.dtype:
        raise TypeError(f"{fn}: dy has dtype {dy.dtype} but y has dtype {y.dtype}; they must be equal")
    out_array = None
    target = None  # a lazily negated out=: written by torch's copy_ after the call
    if out is not None:
        out_array, _ = tensor_as_array(out, fn, "out")  # (checks device, layout and type)
        if out.dtype != y.dtype:
            raise TypeError(f"{fn}: out has dtype {out.dtype} but y has dtype {y.dtype}; they must be equal")
        if out.is_neg():
            # Its memory holds -out: a view of it would be a copy (resolve_neg), never written back.
            if tuple(out.shape) != tuple(y.shape):
                raise ValueError(f"{fn}: out has shape {tuple(out.shape)} but y has shape {tuple(y.shape)}; "
                                 "they must be equal")
            target, out, out_array = out, None, None
    keep_array = tensor_as_array(keep, fn, "mask", bool_allowed=True)[0] if keep is not None else None
    if out is None:
        out, out_array = new_result(y, fn)
    _execute(op, y_array, dy_array, out_array, axis, scale, bf16, None, False, keep_array, positional)
    if target is not None:
        target.copy_(out)
        return target
    return out
