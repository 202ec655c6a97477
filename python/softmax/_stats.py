"""Sampling and row statistics (present when the library has them: softmax.HAS_SAMPLER).

Both work on rows of contiguous memory along the last axis (the library's
layout for them); another axis, or a non-contiguous input, is copied into
that layout first.
"""

import math
import operator
import threading
import warnings

import numpy as np

from . import _core, _softmax


def _rows(x, axis, fn):
    """x as a C-contiguous NumPy array with `axis` last, and whether it holds bfloat16 bits."""
    _core._check_kind(x, fn)
    if _core.is_tensor(x):
        array, bf16 = _core.tensor_as_array(x, fn, "x")
    else:
        array, bf16 = x, False
    if array.ndim == 0:
        raise ValueError(f"{fn}: x is 0-dimensional; it needs at least one axis")
    try:
        axis = operator.index(axis)  # not int(): that would take axis=0.5 as 0
    except TypeError:
        raise TypeError(f"{fn}: axis must be an integer, not {type(axis).__name__}") from None
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"{fn}: axis {axis} is out of range for x with {array.ndim} dimensions")
    return np.ascontiguousarray(np.moveaxis(array, axis, -1)), bf16


def _like(x, values, dtype_from_x):
    """values (a NumPy result) as x's kind; in x's dtype if dtype_from_x."""
    if _core.is_tensor(x):
        # A copy torch allocates (see _core.new_result: no tensor over NumPy memory is handed out).
        tensor = _core._torch_module().from_numpy(values)
        return tensor.to(x.dtype if dtype_from_x else tensor.dtype, copy=True)
    return values.astype(x.dtype) if dtype_from_x else values


def _integer(value, name, limit):
    """value as an int in [0, limit): TypeError for a non-integer (int() would
    truncate 2.7 to 2), ValueError out of range (the extension would wrap a
    seed of 2**64 to 0). A bool is refused, as softmax refuses axis=True
    (top_k=True is not a number of tokens)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"sample: {name} must be an integer, not bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"sample: {name} must be an integer, not {type(value).__name__}") from None
    if not 0 <= value < limit:
        raise ValueError(f"sample: {name} = {value}; it must be in [0, 2**{limit.bit_length() - 1})"
                         + (" (0 = off)" if name == "top_k" else ""))
    return value


class RepeatedSampleWarning(UserWarning):
    """sample() was called without step=: every such call with the same seed draws the same tokens."""


def sample(logits, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=0, step=None):
    """Draws one index per row of logits[..., vocab] from softmax(logits / temperature), filtered.

    temperature 0 is greedy (the arg max); top_k (0 = off), top_p (1 = off)
    and min_p (0 = off) filter in that order. The draw of row r depends only
    on (seed, r, step) and the row: reproducible for any thread count, and
    the same on every call with the same arguments. So a loop must advance
    step itself (the position, the call count); without step= a
    RepeatedSampleWarning says so and step 0 is used. softmax.default_rng(seed)
    gives an object that advances its own step.
    Returns int64 indices of shape logits.shape[:-1], of logits' kind.
    """
    if step is None:
        warnings.warn("sample(): no step= given, so every call with this seed draws the same tokens (step 0); "
                      "pass step= (e.g. the position) or draw with softmax.default_rng(seed).sample(...)",
                      RepeatedSampleWarning, stacklevel=2)
        step = 0
    return _sample(logits, temperature, top_k, top_p, min_p, seed, step)


def _sample(logits, temperature, top_k, top_p, min_p, seed, step):
    array, bf16 = _rows(logits, -1, "sample")
    # (A draw is not differentiable: a temperature that requires grad is read as its value.)
    temperature, top_p, min_p = (_core.real_number(value.detach() if _core.is_tensor(value) else value, "sample", name)
                                 for value, name in ((temperature, "temperature"), (top_p, "top_p"), (min_p, "min_p")))
    top_k, seed, step = (_integer(value, name, limit) for value, name, limit in
                         ((top_k, "top_k", 2 ** 63), (seed, "seed", 2 ** 64), (step, "step", 2 ** 64)))
    # The library checks temperature, top_p and min_p (and says why).
    indices, _, _ = _softmax.sample(array, bf16, temperature, top_k, top_p, min_p, seed, step)
    return _like(logits, indices, False)


class Generator:
    """A seeded source of draws that advances its own step, in numpy.random.Generator's style.

        rng = softmax.default_rng(1234)
        for position in range(n):
            token = rng.sample(logits, temperature=0.8, top_p=0.95)

    Call k (counting from 0) draws exactly softmax.sample(logits, ..., seed=seed,
    step=k): a run is reproducible from the seed, and no two calls repeat a
    draw. `step` is the next call's step (it may be set, to resume a run).

    Calls from several threads each take a step of their own (a lock hands
    them out before the draw, which runs without the GIL): no two calls
    draw with the same step, whatever the interleaving. A call that raises
    gives its step back unless another call took a later one meanwhile.
    Pickling and copying keep seed and step (a copy then repeats the
    original's future draws, as a copied numpy.random.Generator does).
    """

    def __init__(self, seed=0, step=0):
        self.seed = _integer(seed, "seed", 2 ** 64)
        self.step = _integer(step, "step", 2 ** 64)
        self._lock = threading.Lock()

    def sample(self, logits, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0):
        """One index per row, as softmax.sample; then the step advances by one."""
        with self._lock:  # (the draw releases the GIL: two threads must not read the same step)
            seed, step = self.seed, self.step
            _integer(seed, "seed", 2 ** 64)  # (both may have been set since: checked before the step moves)
            _integer(step, "step", 2 ** 64)
            self.step = (step + 1) % 2 ** 64
        try:
            return _sample(logits, temperature, top_k, top_p, min_p, seed, step)
        except BaseException:
            with self._lock:
                if self.step == (step + 1) % 2 ** 64:  # no call took a later step: give this one back
                    self.step = step
            raise

    def __getstate__(self):
        return {"seed": self.seed, "step": self.step}

    def __setstate__(self, state):
        self.seed, self.step = state["seed"], state["step"]
        self._lock = threading.Lock()

    def __repr__(self):
        return f"softmax.Generator(seed={self.seed}, step={self.step})"


def default_rng(seed=0):
    """A Generator seeded with seed (an integer in [0, 2**64)), at step 0."""
    return Generator(seed)


def row_statistic(x, axis, scale, which, fn):
    """One statistic per row (0 logsumexp, 1 entropy) by the library, of x's kind and dtype; no autograd."""
    array, bf16 = _rows(x, axis, fn)
    values = _softmax.row_stats(array, bf16, scale, fn)[which]
    return _like(x, values, True)


def row_function(x, axis, scale, which, fn, operator=False):
    """logsumexp (0) or entropy (1) along one axis: the autograd Functions for tensors."""
    if not _core.is_tensor(x):
        return row_statistic(x, axis, scale, which, fn)
    import torch

    from . import _torch_math
    from . import torch as softmax_torch

    if not -x.dim() <= axis < max(x.dim(), 1):
        raise ValueError(f"{fn}: axis {axis} is out of range for x with {x.dim()} dimensions")
    if not operator and (torch._C._get_tracing_state() is not None or torch.autograd._profiler_enabled()):
        ops = softmax_torch.operators()
        if ops is not None:
            return (ops.logsumexp if which == 0 else ops.entropy)(x, axis, scale)
    if not _torch_math.has_storage(x):
        return (_torch_math.logsumexp if which == 0 else _torch_math.entropy)(x, axis, scale)
    if (torch.is_grad_enabled() and x.requires_grad) or _core._has_tangent(torch, x):
        function = softmax_torch.LogSumExpFunction if which == 0 else softmax_torch.EntropyFunction
        return function.apply(x, axis, scale)
    return row_statistic(x, axis, scale, which, fn)


def _reduce(x, axis, scale, which, fn, keepdims):
    """A row statistic over axis = int, None (all) or a tuple: those axes flattened into the last."""
    axes = _core.normalize_axes(axis, None, fn)
    offset = None  # integers shifted by m (see _core.integer_shift): logsumexp adds scale * m back
    if which == 0 and not math.isinf(scale):
        x, offset = _core.promote_with_offset(x, axes, scale, fn)
    else:
        x = _core.promote(x, None, fn, shift=(axes, scale))
    ndim = x.ndim
    if ndim == 0:
        x, axes, ndim, scalar = x.reshape(1), None, 1, True
    else:
        scalar = False
    if axes is None:
        axes = tuple(range(ndim))
    elif isinstance(axes, int):
        axes = (axes,)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{fn}: axis {a} is out of range for x with {ndim} dimensions")
    axes = tuple(a % ndim for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{fn}: repeated axis in {axes}")
    is_torch = _core.is_tensor(x)
    count = len(axes)
    if count == 1:
        values = row_function(x, axes[0], scale, which, fn)
    else:
        targets = list(range(ndim - count, ndim))
        moved = _core._torch_module().movedim(x, axes, targets) if is_torch else np.moveaxis(x, axes, targets)
        flat = moved.reshape(tuple(moved.shape[:ndim - count]) + (-1,))
        values = row_function(flat, -1, scale, which, fn)
    if offset is not None:
        shape = [n for d, n in enumerate(x.shape) if d not in axes]
        if is_torch:
            values = (values.double() + scale * offset.reshape(shape)).to(values.dtype)
        else:
            values = (values + scale * offset.reshape(shape)).astype(values.dtype)
    if scalar:
        values = values.reshape(())
    elif keepdims:
        values = values.reshape([1 if d in axes else n for d, n in enumerate(x.shape)])
    return values if is_torch or values.ndim else values[()]  # NumPy: a scalar, as SciPy returns


def logsumexp(x, axis=-1, scale=1.0, temperature=None, *, b=None, keepdims=False, return_sign=False):
    """log(sum(exp(scale * x), axis)), stable; the result has x's kind and dtype.

    axis: an int, a tuple of axes or None (all elements). b, keepdims and
    return_sign as in scipy.special.logsumexp: log(sum(b * exp(scale * x)));
    with return_sign the pair (log|sum|, sign of the sum), else NaN where the
    sum is negative. Tensors that require grad get a differentiable result.
    Without b the library's row statistics compute it; with b, NumPy / torch
    operations (SciPy's algorithm) in float64 at least, the result in NumPy's
    type for x and b (SciPy's), or torch's promotion for a tensor b. Complex x
    or b raise TypeError. scale / temperature may be a tensor that requires grad.
    """
    tracked, scale = _core.differentiable_scale(scale, temperature, "logsumexp")
    if not isinstance(keepdims, (bool, np.bool_)) or not isinstance(return_sign, (bool, np.bool_)):
        raise TypeError("logsumexp: keepdims and return_sign must be True or False")
    if tracked is not None:
        x, scale = _core.apply_scale(_core.promote(x, None, "logsumexp"), tracked, scale, "logsumexp")
    if b is not None:
        return _weighted_logsumexp(x, axis, scale, b, keepdims, return_sign)
    values = _reduce(x, axis, scale, 0, "logsumexp", keepdims)
    if not return_sign:
        return values
    # The sum of exps is never negative: sign 1, 0 where it is 0, NaN where
    # the result is NaN (as SciPy's).
    if _core.is_tensor(values):
        torch = _core._torch_module()
        sign = (values != -np.inf).to(values.dtype)
        return values, torch.where(torch.isnan(values), values, sign)
    sign = np.where(np.isnan(values), np.nan, np.where(values == -np.inf, 0.0, 1.0))
    return values, sign.astype(np.result_type(values))[()]


def _scaled_logits(x, scale, xp):
    """scale * x with the library's limits (softmax.h's contract; xp: numpy or
    torch), not the NaN of 0 * inf: at scale 0 a -inf logit stays -inf (a
    mask) and every other non-NaN one is 0, +inf too; at an infinite scale a
    zero logit stays 0."""
    z = x * scale
    if scale == 0:
        z = xp.where(x == math.inf, xp.zeros_like(z), z)
        return xp.where(x == -math.inf, xp.full_like(z, -math.inf), z)
    if math.isinf(scale):
        return xp.where(x == 0, xp.zeros_like(z), z)
    return z


def _weights(b, fn):
    """b as a real NumPy array (lists, scalars, arrays), refusing what would lose information."""
    if isinstance(b, np.ma.MaskedArray):
        raise TypeError(f"{fn}: b is a numpy.ma.MaskedArray, whose mask would be ignored; pass "
                        "b=numpy.ma.filled(b, 0) (a weight of 0 leaves its term out)")
    b = np.asarray(b)
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: b has dtype {b.dtype}; the weights must be real numbers"
                        + (" (complex weights are not supported)" if b.dtype.kind == "c" else ""))
    return b


def _weighted_logsumexp(x, axis, scale, b, keepdims, return_sign):
    fn = "logsumexp"
    x = _core._input(x, fn)
    axes = _core.normalize_axes(axis, None, fn)
    exact = offset = None
    if not math.isinf(scale) and (x.dtype.kind in "iu" if not _core.is_tensor(x)
                                  else not (x.is_floating_point() or x.is_complex())):
        # Integers beyond float64's exact range: shifted exactly by the extreme m of each
        # reduced group (as _reduce does), over the shape x and b broadcast to, whose axes
        # `axis` names; scale * m is added back.
        b_shape = tuple(b.shape) if _core.is_tensor(b) else np.shape(b)
        if _core.is_tensor(x):
            shape = _core._torch_module().broadcast_shapes(x.shape, b_shape)
            shifted = _core.integer_shift(x.expand(shape), axes, scale, _core._torch_module().float64)
        else:
            shifted = _core.integer_shift(np.broadcast_to(x, np.broadcast_shapes(x.shape, b_shape)), axes, scale)
        if shifted is not None:
            exact, offset = shifted
    x = _core.promote(x, None, fn)
    if _core.is_tensor(x):
        torch = _core._torch_module()
        _core.refuse_dispatch_subclass(x, fn, "x")
        if x.is_complex():
            raise TypeError(f"{fn}: x has dtype {x.dtype}; complex input is not supported")
        if _core.is_tensor(b):
            _core.refuse_dispatch_subclass(b, fn, "b")
            if b.is_complex():
                raise TypeError(f"{fn}: b has dtype {b.dtype}; the weights must be real numbers "
                                "(complex weights are not supported)")
            # torch's promotion: a float64 b with a float32 x gives float64, as x * b would.
            dtype = torch.promote_types(x.dtype, b.dtype) if b.is_floating_point() else x.dtype
        else:
            b = torch.from_numpy(np.array(_weights(b, fn), dtype=np.float64))  # (a copy: b's exact values)
            dtype = x.dtype
        # Computed in float64 (then rounded once to dtype): the weights keep their values (a
        # float32 b would round a weight of 1e-50 to 0 and drop its term).
        x64 = exact if exact is not None else x.to(torch.float64)
        z, b = torch.broadcast_tensors(_scaled_logits(x64, scale, torch), b.to(torch.float64))
        dims = tuple(range(z.dim())) if axes is None else (axes,) if isinstance(axes, int) else axes
        dims = tuple(a % max(z.dim(), 1) for a in dims)
        # Entries of weight 0 are left out whatever their logit (an inf or
        # a NaN too), as SciPy does.
        z = torch.where(b != 0, z, torch.full_like(z, -np.inf))
        # dims () reduces nothing (NumPy's and SciPy's axis=()); torch's amax and
        # sum would take dim=() as every dimension.
        reduce = bool(dims) and z.dim() > 0
        if reduce and z.numel() == 0:  # (amax refuses empty dimensions: the sum of nothing is 0)
            top = z.new_zeros([1 if d in dims else n for d, n in enumerate(z.shape)])
        else:
            top = z.amax(dim=dims, keepdim=True).detach() if reduce else z.detach()
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        total = (b * torch.exp(z - top)).sum(dim=dims, keepdim=True) if reduce else b * torch.exp(z - top)
        sign = torch.where(torch.isnan(total), total, torch.sign(total))  # torch.sign(NaN) is 0
        values = torch.log(total.abs()) + top
        if offset is not None:
            values = values + scale * offset
        if not keepdims:
            shape = [n for d, n in enumerate(z.shape) if d not in dims]
            values, sign = values.reshape(shape), sign.reshape(shape)
        values, sign = values.to(dtype), sign.to(dtype)
        if return_sign:
            return values, sign
        return torch.where(sign < 0, torch.full_like(values, np.nan), values)
    if x.dtype.kind == "c":
        raise TypeError(f"{fn}: x has dtype {x.dtype}; complex input is not supported")
    b = _weights(b, fn)
    # The result type is NumPy's for x and b (SciPy's); the computation runs in float64 at
    # least, so that scale * x and the exponentials are not rounded to float16 / float32.
    dtype = np.result_type(x, b)
    work = np.promote_types(dtype, np.float64)
    with np.errstate(invalid="ignore"):
        x_work = exact if exact is not None else x.astype(work, copy=False)
        z, b = np.broadcast_arrays(_scaled_logits(x_work, scale, np), b.astype(work, copy=False))
    z = np.where(b != 0, z, -np.inf)
    top = np.amax(z, axis=axes, keepdims=True, initial=-np.inf)  # (initial: an empty axis sums to 0)
    top = np.where(np.isfinite(top), top, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.sum(b * np.exp(z - top), axis=axes, keepdims=True)
        sign = np.sign(total)
        values = np.log(np.abs(total)) + top
        if offset is not None:
            values = values + scale * offset
    if not keepdims:
        values, sign = np.squeeze(values, axis=axes), np.squeeze(sign, axis=axes)
    values, sign = values.astype(dtype, copy=False), sign.astype(dtype, copy=False)
    if return_sign:
        return values[()], sign[()]
    return np.where(sign < 0, dtype.type(np.nan), values)[()]


def entropy(x, axis=-1, scale=1.0, temperature=None, *, keepdims=False):
    """Entropy in nats of softmax(scale * x) along axis (0 * log 0 = 0); x's kind and dtype.

    axis: an int, a tuple of axes or None (all elements). Tensors that
    require grad get a differentiable result.
    """
    tracked, scale = _core.differentiable_scale(scale, temperature, "entropy")
    if tracked is not None:
        x = _core.promote(x, None, "entropy", shift=(_core.normalize_axes(axis, None, "entropy"), scale))
        x, scale = _core.apply_scale(x, tracked, scale, "entropy")
    return _reduce(x, axis, scale, 1, "entropy", keepdims)
