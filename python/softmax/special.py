"""scipy.special's softmax, log_softmax and logsumexp, computed by libsoftmax.

Change `from scipy.special import softmax, log_softmax, logsumexp` to
`from softmax.special import softmax, log_softmax, logsumexp`: the same
signatures and defaults (axis=None: over all elements), the same promotion of
lists, scalars and integer arrays to float64, and the same results for every
input SciPy defines (within the library's accuracy contract, which is tighter
than SciPy's). They also take CPU torch tensors (differentiable).
"""

from . import _stats
from . import log_softmax as _log_softmax
from . import softmax as _softmax

__all__ = ["softmax", "log_softmax", "logsumexp"]


def softmax(x, axis=None):
    """exp(x) / sum(exp(x), axis): scipy.special.softmax."""
    return _softmax(x, axis=axis)


def log_softmax(x, axis=None):
    """x - logsumexp(x, axis): scipy.special.log_softmax."""
    return _log_softmax(x, axis=axis)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log(sum(b * exp(a), axis)): scipy.special.logsumexp (with b's sign handled as SciPy does)."""
    return _stats.logsumexp(a, axis, b=b, keepdims=keepdims, return_sign=return_sign)
