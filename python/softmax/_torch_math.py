"""The softmax family written with torch operations: the differentiable twin of the C kernels.

Used where the C kernels cannot be: the backward of a backward (create_graph=True,
double backprop, gradgradcheck), and tensors without storage of their own
(functorch's vmap/grad wrappers, the batched gradients of gradcheck), whose
memory the library cannot read. Every function here is made of torch
operations, so autograd, forward-mode AD and vmap differentiate and batch it
exactly (to rounding in the computation type) -- no step of it is an
approximation of the C result.

Masks follow the C contract: a keep-mask or a causal mask excludes elements
(probability exactly 0, log-probability -inf, gradient 0, their incoming
gradient ignored); an additive mask is a bias (-inf excludes in the forward);
a fully excluded row gives zeros (log-softmax -inf, gradients zeros); an
infinite scale gives the one-hot limit and zero gradients.
"""

import math

import torch


def has_storage(tensor):
    """False for tensors that are views over nothing the library could read (functorch wrappers)."""
    return torch._C._has_storage(tensor)


def computation_dtype(dtype):
    """Every type is computed in float64 and rounded once at the end.

    The library's float32 results are within 3 ulp of the exact softmax; the
    same formulas evaluated in float32 would be off by |z| ulp (exp(z) of a
    logit z rounded to float32), 30 ulp at z = -30.
    """
    return torch.float64


def positional_masks(shape, axis, positional, device):
    """(excluded, bias): the causal exclusion and the ALiBi bias broadcastable to shape, or None each.

    positional = (causal, causal_offset, max_bias, head_axis), as the C descriptor takes them.
    """
    if positional is None:
        return None, None
    causal, causal_offset, max_bias, head_axis = positional
    ndim = len(shape)
    axis = axis % ndim
    excluded = bias = None
    keys = torch.arange(shape[axis], device=device)
    if causal:
        query_axis = axis - 1
        queries = torch.arange(shape[query_axis], device=device)
        view = [1] * ndim
        view[query_axis] = shape[query_axis]
        key_view = [1] * ndim
        key_view[axis] = shape[axis]
        # Clamped to what changes nothing in this shape: an offset near the
        # int64 limits would wrap around in queries + causal_offset.
        causal_offset = min(max(causal_offset, -shape[query_axis] - 1), shape[axis])
        excluded = keys.view(key_view) > queries.view(view) + causal_offset
    if max_bias > 0:
        head_axis = head_axis % ndim
        heads = shape[head_axis]
        power_of_two = 1 << (heads.bit_length() - 1)
        m0 = 2.0 ** (-max_bias / power_of_two)
        m1 = 2.0 ** (-max_bias / (2 * power_of_two))
        slopes = torch.tensor([m0 ** (h + 1) if h < power_of_two else m1 ** (2 * (h - power_of_two) + 1)
                               for h in range(heads)], dtype=torch.float64, device=device)
        head_view = [1] * ndim
        head_view[head_axis] = heads
        key_view = [1] * ndim
        key_view[axis] = shape[axis]
        bias = slopes.view(head_view) * keys.to(torch.float64).view(key_view)
    return excluded, bias


def excluded_elements(shape, axis, keep, positional, device):
    """The elements a keep-mask or a causal mask excludes (bool, broadcastable), or None."""
    excluded, _ = positional_masks(shape, axis, positional, device)
    if keep is not None:
        dropped = ~keep.bool()
        excluded = dropped if excluded is None else excluded | dropped
    return excluded


def scaled_logits(z, scale, excluded=None, additive=None, axis=-1, bias=None, error=False):
    """scale * z (+ additive + bias) as the C contract evaluates it, ready for a softmax along axis.

    Finite rows: |scale| * (t - max t) with t = z (or -z for scale < 0), so that no finite
    input and scale overflow; a row whose kept t holds +inf: the +inf entries share the
    mass (0 there, -inf elsewhere: inf + a finite bias is still inf); scale 0: uniform over
    the elements that are not -inf. NaN stays NaN. The shift by max t changes neither
    softmax nor log-softmax. An additive -inf excludes its element whatever z holds.

    Computed in float64 and rounded once to z's type (the library adds masks in f64 too):
    a float32 (or half) scale would round 1e300 to inf and 1e-300 to 0 (then inf * 0 =
    NaN), and t - max t can overflow where the scaled difference does not.

    With error=True, returns (logits, error): error (detached, float64, 0 where the logit
    is not finite) is the exact value of the logit minus the computed one -- the roundings
    of t - max t, of the product by |scale| and of the bias addition, recovered exactly
    (two-sum, two-product). exp(logit) alone carries |logit| * 2**-53 of relative error
    from them (256 ulp at logit -700); _softmax_ops folds error back in.
    """
    dtype = z.dtype
    z = z.to(torch.float64)
    offset = None
    if additive is not None:
        offset = additive.to(torch.float64)
    if bias is not None:
        offset = bias if offset is None else offset + bias
    rounding = None
    if scale == 0:
        result = torch.where(z == -math.inf, -math.inf, torch.where(torch.isnan(z), z, 0.0))
        if offset is not None:
            result = result + offset
    else:
        t = z if scale > 0 else -z
        kept = t
        if excluded is not None:
            kept = kept.masked_fill(excluded, -math.inf)
        if additive is not None:
            kept = kept.masked_fill(additive == -math.inf, -math.inf)
        top = kept.masked_fill(torch.isnan(kept), -math.inf).amax(axis, keepdim=True)
        infinite = top == math.inf
        shift = top.masked_fill(infinite | (top == -math.inf), 0.0)
        difference = t - shift
        finite = abs(scale) * difference
        if error:
            rounding = (abs(scale) * _two_sum_error(t.detach(), -shift.detach(), difference.detach())
                        + _product_error(difference.detach(), abs(scale), finite.detach()))
        # A spread beyond the float64 range (1e308 - -1e308): scale each term first
        # (|scale| < 1 brings it back; otherwise the result is -inf either way; the
        # terms have opposite signs there, so never inf - inf).
        spread = abs(scale) * t - abs(scale) * shift
        finite = torch.where(torch.isinf(difference) & torch.isfinite(t), spread, finite)
        if offset is not None:
            unbiased = finite
            finite = finite + offset
            if error:
                rounding = rounding + _two_sum_error(unbiased.detach(), offset.detach(), finite.detach())
        limit = torch.where(t == math.inf, 0.0, -math.inf).to(z.dtype)
        limit = torch.where(torch.isnan(t), t, limit)
        if offset is not None:
            limit = torch.where(torch.isnan(offset), offset, limit)  # a NaN bias: NaN for every scale
        result = torch.where(infinite, limit, finite)
        # Every kept element -inf is a fully masked row for either sign of scale.
        masked_row = (kept == (-math.inf if scale > 0 else math.inf)).all(axis, keepdim=True)
        result = result.masked_fill(masked_row, -math.inf)
    if additive is not None:
        result = result.masked_fill(additive == -math.inf, -math.inf)
    result = result.to(dtype)
    if not error:
        return result
    if rounding is None:
        return result, None
    # Only where the logit is the finite product computed above (not a limit, a masked
    # row, the spread fallback or a NaN).
    usable = torch.isfinite(result) & torch.isfinite(rounding) & torch.isfinite(difference) & ~infinite
    return result, torch.where(usable.detach(), rounding, torch.zeros_like(rounding))


_SPLITTER = 2.0 ** 27 + 1.0  # Veltkamp's constant for float64
_SPLIT_LIMIT = 2.0 ** 995  # beyond, splitting overflows (such logits give exp = 0 anyway)


def _two_sum_error(a, b, s):
    """a + b - s exactly, for s = a + b rounded (Knuth's TwoSum; finite operands)."""
    b_virtual = s - a
    return (a - (s - b_virtual)) + (b - b_virtual)


def _product_error(d, factor, p):
    """factor * d - p exactly (Dekker's TwoProduct), for p = factor * d rounded; factor a
    positive Python float, d a float64 tensor. factor is brought to [0.5, 1) by a power of
    two moved onto d (exact), so that neither split overflows; 0 where d * 2**e is out of
    the range that splits (the product is then beyond any logit whose exp is not 0)."""
    mantissa, exponent = math.frexp(factor)
    high = mantissa * _SPLITTER
    m_high = high - (high - mantissa)
    m_low = mantissa - m_high
    b = d * 2.0 ** (exponent // 2) * 2.0 ** (exponent - exponent // 2)
    in_range = b.abs() <= _SPLIT_LIMIT
    b = torch.where(in_range, b, torch.zeros_like(b))
    t = b * _SPLITTER
    b_high = t - (t - b)
    b_low = b - b_high
    product = mantissa * b  # = p unless scaling d went below the normal range
    low = ((m_high * b_high - product) + m_high * b_low + m_low * b_high) + m_low * b_low
    return torch.where(in_range, (product - p) + low, torch.zeros_like(low))


def forward(x, axis, scale, log, additive=None, keep=None, positional=None):
    """softmax / log-softmax of scale * x + mask along axis, with the C contract's special cases."""
    dtype = x.dtype
    if x.numel() == 0:  # (amax refuses a dimension of size 0: nothing to compute)
        return x.clone()
    z = x.to(computation_dtype(dtype))
    excluded, bias = positional_masks(x.shape, axis, positional, x.device)
    if keep is not None:
        dropped = ~keep.bool()
        excluded = dropped if excluded is None else excluded | dropped
    rounding = None  # the logits' exact remainder (scaled_logits)
    if math.isinf(scale):
        # The limit: the arg max (arg min for -inf) of the kept elements shares the mass.
        signed = z if scale > 0 else -z
        if excluded is not None:
            signed = signed.masked_fill(excluded, -math.inf)
        if additive is not None:
            signed = signed.masked_fill(additive == -math.inf, -math.inf)
        top = signed.amax(axis, keepdim=True)
        # The extremes keep their bias (the mask and ALiBi terms): the limit of
        # softmax(scale * x + bias) is softmax(bias) over the tied extremes.
        winners = torch.where(signed == top, 0.0, -math.inf).to(torch.float64)
        if additive is not None:
            winners = winners + additive.to(torch.float64)
        if bias is not None:
            winners = winners + bias
        z = winners.to(z.dtype)
        # Nothing kept, or (scale = -inf) every kept element -inf: a fully masked row.
        masked_row = top == -math.inf
        if scale < 0:
            masked_row = masked_row | (signed == math.inf).all(axis, keepdim=True)
        z = z.masked_fill(masked_row, -math.inf)
    else:
        z, rounding = scaled_logits(z, scale, excluded, additive, axis, bias, error=True)
    if excluded is not None:
        z = z.masked_fill(excluded, -math.inf)
    dead = z.amax(axis, keepdim=True) == -math.inf  # (amax: functorch batches it)
    z = z.masked_fill(dead, 0.0)  # a row with nothing kept: zeros, not NaN
    y = _softmax_ops(z, axis, log, rounding)
    y = y.masked_fill(dead, -math.inf if log else 0.0)
    # A NaN among the kept elements makes the row NaN, whatever the scale (an
    # additive -inf excludes its element too: its x is never read).
    if additive is not None:
        dropped = additive == -math.inf
        excluded = dropped if excluded is None else excluded | dropped
    nan = torch.isnan(x) if excluded is None else torch.isnan(x) & ~excluded
    return y.masked_fill(nan.any(axis, keepdim=True), math.nan).to(dtype)


def _softmax_ops(z, axis, log, rounding=None):
    """softmax / log-softmax of z (+ rounding, the logits' exact remainder) along axis from exp, sum and log.

    Not torch.softmax / log_softmax: in torch 1.13 their backward kernels have
    no forward-mode derivative, which functorch.hessian (jacfwd over jacrev)
    needs. The shift by the row maximum is a constant (detached): both are
    invariant to it, so no derivative is lost.

    The remainder r of each logit (and of the shift, recovered by two-sum) is
    folded in as exp(z + r) = exp(z) + exp(z) * r to first order (|r| <= 2**-44
    for the logits whose exp is not 0): float64 results within the kernels'
    4 ulp instead of |z| * 2**-53 relative. r is a constant to autograd, so
    the derivative is exp(z) * (1 + r) * dz: the forward value's own.
    """
    shift = z.amax(axis, keepdim=True).detach()
    shift = shift.masked_fill(torch.isinf(shift), 0.0)
    shifted = z - shift
    if rounding is not None or z.dtype == torch.float64:
        remainder = _two_sum_error(z.detach(), -shift, shifted.detach())
        if rounding is not None:
            remainder = remainder + rounding
        usable = torch.isfinite(shifted.detach()) & torch.isfinite(remainder)
        rounding = torch.where(usable, remainder, torch.zeros_like(remainder))
    z = shifted
    e = torch.exp(z)
    if rounding is not None:
        e = e + e * rounding
    total = e.sum(axis, keepdim=True)
    if log:
        return (z + rounding if rounding is not None else z) - torch.log(total)
    return e / total


def backward(y, dy, axis, scale, log, excluded=None):
    """The vector-Jacobian product from the output y (or log y), as differentiable torch operations.

    softmax:     dx = scale * y * (dy - <dy, y>)
    log-softmax: dx = scale * (dy - exp(logy) * sum(dy))
    """
    if math.isinf(scale):
        return torch.zeros_like(dy)
    dtype = dy.dtype
    y, dy = y.to(computation_dtype(y.dtype)), dy.to(computation_dtype(dtype))
    if excluded is not None:
        dy = dy.masked_fill(excluded, 0.0)
    if log:
        p = y.exp()
        dx = scale * (dy - p * dy.sum(axis, keepdim=True))
        dead = y.amax(axis, keepdim=True) == -math.inf if y.numel() else torch.zeros_like(y, dtype=torch.bool)
        dx = dx.masked_fill(dead, 0.0)
        if excluded is not None:
            dx = dx.masked_fill(excluded, 0.0)
    else:
        dx = scale * y * (dy - (dy * y).sum(axis, keepdim=True))
    return dx.to(dtype)


def jvp(y, v, axis, scale, log, excluded=None):
    """The Jacobian-vector product (tangent of the output for the tangent v of x)."""
    if math.isinf(scale):
        return torch.zeros_like(v)
    dtype = v.dtype
    y, v = y.to(computation_dtype(y.dtype)), v.to(computation_dtype(dtype))
    if excluded is not None:
        v = v.masked_fill(excluded, 0.0)
    if log:
        p = y.exp()
        dy = scale * (v - (p * v).sum(axis, keepdim=True))
        dead = y.amax(axis, keepdim=True) == -math.inf if y.numel() else torch.zeros_like(y, dtype=torch.bool)
        dy = dy.masked_fill(dead, 0.0)
        if excluded is not None:
            dy = dy.masked_fill(excluded, 0.0)
    else:
        dy = scale * y * (v - (v * y).sum(axis, keepdim=True))
    return dy.to(dtype)


def logsumexp(x, axis, scale):
    """log(sum(exp(scale * x))) along axis (an infinite scale: the limit, scale * max)."""
    z = x.to(computation_dtype(x.dtype))
    if math.isinf(scale):
        if z.numel() == 0:  # (the sum of nothing: -inf, as torch.logsumexp gives)
            return torch.logsumexp(z, axis).to(x.dtype)
        extreme = z.amax(axis) if scale > 0 else z.amin(axis)
        # The limit scale * max, with a zero extreme giving 0 (the library's), not inf * 0 = NaN.
        return torch.where(extreme == 0, torch.zeros_like(extreme), extreme * scale).to(x.dtype)
    if scale == 0:  # log of the number of elements that are not -inf (NaN stays NaN)
        return torch.logsumexp(scaled_logits(z, scale, axis=axis), axis).to(x.dtype)
    # scale * z in float64: a float32 scale would round 1e300 to inf and 1e-300 to 0.
    return torch.logsumexp(z.to(torch.float64) * scale, axis).to(x.dtype)


def entropy(x, axis, scale):
    """-sum(p log p), p = softmax(scale * x), with 0 log 0 = 0."""
    logp = forward(x, axis, scale, True).to(computation_dtype(x.dtype))
    p = logp.exp()
    return -(p * logp.masked_fill(p == 0, 0.0)).sum(axis).to(x.dtype)
