"""The package's functions as torch operators (torch.library), for TorchScript and the profiler.

    torch.ops.softmax.softmax(x, axis=-1, scale=1.0, mask=None, causal=False,
                              causal_offset=0, max_bias=0.0, head_axis=-3)
    torch.ops.softmax.log_softmax(...same...)
    torch.ops.softmax.logsumexp(x, axis=-1, scale=1.0)
    torch.ops.softmax.entropy(x, axis=-1, scale=1.0)

Registered (torch >= 1.13's torch.library) the first time softmax.torch is
used, under the CompositeImplicitAutograd key: the kernel is the package's
Python function, which computes in C through the autograd Functions of
softmax.torch, so autograd, forward-mode AD and the torch-operation path for
functorch wrappers all apply. torch.jit.trace records these operators (the
package's functions call them while a trace records or the profiler runs,
so profiles name them); torch.jit.script compiles calls of softmax.softmax,
log_softmax, logsumexp and entropy to them. A scripted or traced module runs
in any process that imported `softmax` (the kernels are Python functions).
"""

import torch

from . import _core

_SIGNATURE = ("(Tensor x, int axis=-1, float scale=1.0, Tensor? mask=None, bool causal=False, "
              "int causal_offset=0, float max_bias=0.0, int head_axis=-3) -> Tensor")
_registered = []


def _positional(causal, causal_offset, max_bias, head_axis):
    return (bool(causal), int(causal_offset), float(max_bias), int(head_axis)) if causal or max_bias > 0 else None


def _softmax_kernel(x, axis=-1, scale=1.0, mask=None, causal=False, causal_offset=0, max_bias=0.0, head_axis=-3):
    return _core.forward(_core.OP_SOFTMAX, x, axis, scale, mask, None, "softmax",
                         _positional(causal, causal_offset, max_bias, head_axis), operator=True)


def _log_softmax_kernel(x, axis=-1, scale=1.0, mask=None, causal=False, causal_offset=0, max_bias=0.0,
                        head_axis=-3):
    return _core.forward(_core.OP_LOG_SOFTMAX, x, axis, scale, mask, None, "log_softmax",
                         _positional(causal, causal_offset, max_bias, head_axis), operator=True)


def _logsumexp_kernel(x, axis=-1, scale=1.0):
    from . import _stats

    return _stats.row_function(x, axis, scale, 0, "logsumexp", operator=True)


def _entropy_kernel(x, axis=-1, scale=1.0):
    from . import _stats

    return _stats.row_function(x, axis, scale, 1, "entropy", operator=True)


def register():
    """Defines the operators once; returns torch.ops.softmax, or None where torch cannot define them."""
    if _registered:
        return torch.ops.softmax if _registered[0] is not None else None
    try:
        library = torch.library.Library("softmax", "DEF")
    except (AttributeError, RuntimeError):
        # No torch.library (torch < 1.13), or the namespace is taken (a reloaded module: then
        # the operators defined by the first load serve).
        _registered.append(None if not _defined() else True)
        return register()
    library.define("softmax" + _SIGNATURE)
    library.define("log_softmax" + _SIGNATURE)
    library.define("logsumexp(Tensor x, int axis=-1, float scale=1.0) -> Tensor")
    library.define("entropy(Tensor x, int axis=-1, float scale=1.0) -> Tensor")
    for name, kernel in (("softmax", _softmax_kernel), ("log_softmax", _log_softmax_kernel),
                         ("logsumexp", _logsumexp_kernel), ("entropy", _entropy_kernel)):
        library.impl(name, kernel, "CompositeImplicitAutograd")
    _registered.append(library)  # the registration lives as long as this object
    _register_script_builtins()
    return torch.ops.softmax


def _defined():
    try:
        return torch.ops.softmax.softmax is not None
    except (AttributeError, RuntimeError):
        return False


def available():
    """True if the operators are defined (tracing and profiling go through them)."""
    return register() is not None


def _register_script_builtins():
    """Lets torch.jit.script compile calls of the package's functions to the operators."""
    import softmax

    builtins = [(softmax.softmax, "softmax::softmax"), (softmax.log_softmax, "softmax::log_softmax")]
    if softmax.HAS_SAMPLER:
        builtins += [(softmax.logsumexp, "softmax::logsumexp"), (softmax.entropy, "softmax::entropy")]
    try:
        from torch.jit import _builtins
    except ImportError:  # a torch without the table: scripts call torch.ops.softmax.* themselves
        return
    for function, name in builtins:
        _builtins._register_builtin(function, name)


def call(op, x, axis, scale, mask, positional):
    """softmax / log-softmax through the operator (while a trace records or the profiler runs)."""
    ops = register()
    causal, causal_offset, max_bias, head_axis = positional if positional is not None else (False, 0, 0.0, -3)
    function = ops.log_softmax if op & ~_core._softmax.OP_FAST == _core.OP_LOG_SOFTMAX else ops.softmax
    return function(x, axis, scale, mask, causal, causal_offset, max_bias, head_axis)
