"""A float64 NumPy reference for the softmax family (the oracle of the parity tests)."""

import numpy as np


def softmax_ref(x, axis=-1, scale=1.0):
    z = np.asarray(x, dtype=np.float64) * scale
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax_ref(x, axis=-1, scale=1.0):
    z = np.asarray(x, dtype=np.float64) * scale
    z = z - np.max(z, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax_backward_ref(y, dy, axis=-1, scale=1.0):
    y = np.asarray(y, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    return scale * y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def log_softmax_backward_ref(logy, dy, axis=-1, scale=1.0):
    logy = np.asarray(logy, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    return scale * (dy - np.exp(logy) * np.sum(dy, axis=axis, keepdims=True))


# Tolerances: the library is within a few ulp; the float64 reference above is
# itself a few ulp off, and results below the normal range may be flushed.
TOLERANCE = {np.dtype(np.float32): dict(rtol=2e-6, atol=1e-30), np.dtype(np.float64): dict(rtol=1e-13, atol=1e-300)}
LOG_TOLERANCE = {np.dtype(np.float32): dict(rtol=2e-6, atol=2e-6), np.dtype(np.float64): dict(rtol=1e-13, atol=1e-13)}
