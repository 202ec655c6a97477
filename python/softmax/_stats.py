"""Sampling and row statistics (present when the library has them: softmax.HAS_SAMPLER).

Both work on rows of contiguous memory along the last axis (the library's
layout for them); another axis, or a non-contiguous input, is copied into
that layout first.
"""

import operator

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
        tensor = _core._torch_module().from_numpy(values)
        return tensor.to(x.dtype) if dtype_from_x else tensor
    return values.astype(x.dtype) if dtype_from_x else values


def _integer(value, name, limit):
    """value as an int in [0, limit): TypeError for a non-integer (int() would
    truncate 2.7 to 2), ValueError out of range (the extension would wrap a
    seed of 2**64 to 0)."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"sample: {name} must be an integer, not {type(value).__name__}") from None
    if not 0 <= value < limit:
        raise ValueError(f"sample: {name} = {value}; it must be in [0, 2**{limit.bit_length() - 1})"
                         + (" (0 = off)" if name == "top_k" else ""))
    return value


def sample(logits, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=0, step=0):
    """Draws one index per row of logits[..., vocab] from softmax(logits / temperature), filtered.

    temperature 0 is greedy (the arg max); top_k (0 = off), top_p (1 = off)
    and min_p (0 = off) filter in that order. The draw of row r depends only
    on (seed, r, step) and the row: reproducible for any thread count.
    Returns int64 indices of shape logits.shape[:-1], of logits' kind.
    """
    array, bf16 = _rows(logits, -1, "sample")
    temperature, top_p, min_p = (_core.real_number(value, "sample", name)
                                 for value, name in ((temperature, "temperature"), (top_p, "top_p"), (min_p, "min_p")))
    top_k, seed, step = (_integer(value, name, limit) for value, name, limit in
                         ((top_k, "top_k", 2 ** 63), (seed, "seed", 2 ** 64), (step, "step", 2 ** 64)))
    # The library checks temperature, top_p and min_p (and says why).
    indices, _, _ = _softmax.sample(array, bf16, temperature, top_k, top_p, min_p, seed, step)
    return _like(logits, indices, False)


def logsumexp(x, axis=-1, scale=1.0, temperature=None):
    """log(sum(exp(scale * x), axis)), stable; the result has x's kind and dtype."""
    scale = _core.effective_scale(scale, temperature, "logsumexp")
    array, bf16 = _rows(x, axis, "logsumexp")
    values, _, _ = _softmax.row_stats(array, bf16, scale, "logsumexp")
    return _like(x, values, True)


def entropy(x, axis=-1, scale=1.0, temperature=None):
    """Entropy in nats of softmax(scale * x) along axis (0 * log 0 = 0); x's kind and dtype."""
    scale = _core.effective_scale(scale, temperature, "entropy")
    array, bf16 = _rows(x, axis, "entropy")
    _, values, _ = _softmax.row_stats(array, bf16, scale, "entropy")
    return _like(x, values, True)
