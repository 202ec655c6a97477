"""softmax.distributed: the softmax family and sampling over a vocabulary split across torch.distributed ranks.

Each rank holds the columns [col_offset, col_offset + cols) of every row of
logits (tensor parallelism of an output layer). Every function here is
collective over `group` (default: the default process group; without an
initialised process group it runs on one process) and exchanges only
per-row summaries, never the logits:

    import torch.distributed as dist
    from softmax import distributed as sd

    dist.init_process_group("gloo", ...)                  # any backend with all_gather
    nll = sd.cross_entropy(local_logits, targets, col_offset, vocab)   # autograd-aware
    p = sd.softmax(local_logits, col_offset, vocab)        # this rank's columns
    tokens = sd.sample(local_logits, col_offset, vocab, temperature=0.8, top_p=0.9, seed=7, step=t)

Guarantees (docs/distributed.md, include/softmax.h "A vocabulary split
across processes"): sample() returns the same tokens on every rank and for
any number of ranks and any column boundaries (an exponential race keyed
by the global column; the top-k, top-p and min-p decisions are exact);
the max, arg max and counts are bit-identical for any split; the sums are
double-double, within (N + 2) * 2^-52 relative for N slices, so softmax,
log-softmax, logsumexp, entropy and cross-entropy match one process within
the bounds stated there.

How the summaries travel: torch.distributed's reductions have no
user-defined operation, so each exchange is an all_gather of the fixed-size
byte records (uint8 tensors) followed by the library's merge, applied in
rank order on every rank -- so every rank holds the very same merged bits.
The records are computed and merged by the C library through the small
extension softmax._summary.
"""

import operator
import struct

import numpy as np

from . import _summary

__all__ = ["summarize", "Summary", "softmax", "log_softmax", "logsumexp", "entropy", "cross_entropy",
           "cross_entropy_backward", "sample"]

_RECORDS, _BINS, _DRAWS = 0, 1, 2


# ---------------------------------------------------------------------------
# Inputs and the process group.
# ---------------------------------------------------------------------------

def _torch():
    import torch
    return torch


def _is_tensor(x):
    return type(x).__module__.startswith("torch")


def _world(group):
    """(world size, rank) of the group, (1, 0) without torch.distributed."""
    try:
        import torch.distributed as dist
    except ImportError:
        return 1, 0
    if not dist.is_available() or not dist.is_initialized():
        return 1, 0
    return dist.get_world_size(group), dist.get_rank(group)


def _rows(x, fn):
    """x as a 2-D C-contiguous float32/float64 NumPy array (rows, cols); a 1-D x is one row."""
    if _is_tensor(x):
        torch = _torch()
        from ._core import refuse_dispatch_subclass

        refuse_dispatch_subclass(x, fn, "logits")
        if x.device.type != "cpu":
            raise ValueError(f"{fn}: logits are on {x.device}; softmax.distributed works on CPU tensors")
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # exact widening
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{fn}: logits must be floating point, not {x.dtype}")
        array = x.detach().contiguous().numpy()
    elif isinstance(x, np.ndarray):
        if isinstance(x, np.ma.MaskedArray):
            raise TypeError(f"{fn}: logits are a numpy.ma.MaskedArray, whose mask would be ignored; pass "
                            "numpy.ma.filled(logits, -numpy.inf) (a logit of -inf is left out)")
        x = x.view(np.ndarray)  # (numpy.matrix and other subclasses: their data)
        if x.dtype in (np.float16,):
            x = x.astype(np.float32)
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"{fn}: logits must be float32 or float64, not {x.dtype}")
        array = x
    else:
        raise TypeError(f"{fn}: logits must be a numpy.ndarray or a torch.Tensor, not {type(x).__name__}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{fn}: logits must be 1-D or 2-D (rows, columns of this rank), not {array.ndim}-D")
    return np.ascontiguousarray(array)


def _index(value, name, fn, low=0, high=2 ** 64):
    if isinstance(value, (bool, np.bool_)):  # operator.index(True) is 1: a flag passed by mistake
        raise TypeError(f"{fn}: {name} must be an integer, not {type(value).__name__}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an integer, not {type(value).__name__}") from None
    if not low <= value < high:
        raise ValueError(f"{fn}: {name} = {value} is outside [{low}, {high})")
    return value


def _real(value, name, fn):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        if not (_is_tensor(value) and value.numel() == 1):
            raise TypeError(f"{fn}: {name} must be a real number, not {type(value).__name__}")
        if fn != "sample" and _tracked(value):
            raise TypeError(f"{fn}: {name} is a tensor that requires grad, but softmax.distributed is not "
                            f"differentiable in {name} (its gradient would be lost); pass {name}.detach() "
                            "or a float")
        value = value.detach()  # (a draw has no gradient: sample reads the value)
    return float(value)


def _tracked(x):
    """x is a tensor whose gradient autograd would follow."""
    torch = _torch()
    return torch.is_grad_enabled() and x.requires_grad


def _refuse_grad(x, fn):
    """These functions return values without a graph: refused for a tensor that requires grad,
    whose gradient would be lost without a word (cross_entropy is the differentiable one)."""
    if _is_tensor(x) and _tracked(x):
        raise TypeError(f"softmax.distributed.{fn} is not differentiable: logits require grad, and the "
                        "result would carry no gradient; use softmax.distributed.cross_entropy (autograd-aware), "
                        "or pass logits.detach() (or call it under torch.no_grad())")


def _targets(targets, rows, fn):
    if targets is None:
        return None
    if _is_tensor(targets):
        targets = targets.detach().cpu().numpy()
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{fn}: targets must be integers, not {targets.dtype}")
    targets = targets.reshape(-1)
    if targets.shape[0] != rows:
        raise ValueError(f"{fn}: {targets.shape[0]} targets for {rows} rows")
    # A uint64 target >= 2^63 would turn negative as int64 and ignore its row without a word.
    if targets.dtype.kind == "u" and targets.size and int(targets.max()) >= 2 ** 63:
        raise ValueError(f"{fn}: target {int(targets.max())} is not below 2**63 (nor below vocab)")
    return np.ascontiguousarray(targets, dtype=np.int64)


def _streams(stream_ids, rows, fn):
    """stream_ids as contiguous uint64, one per row: integers in [0, 2**64) only (NumPy would wrap -1 to
    2**64 - 1 and truncate 1.5 to 1, drawing from another stream without a word)."""
    if stream_ids is None:
        return None
    if _is_tensor(stream_ids):
        stream_ids = stream_ids.detach().cpu().numpy()
    streams = np.asarray(stream_ids)
    if streams.dtype.kind not in "iu" and not (streams.dtype == object and all(
            isinstance(v, int) and not isinstance(v, bool) for v in streams.reshape(-1).tolist())):
        raise TypeError(f"{fn}: stream_ids must be integers, not {streams.dtype}")
    streams = streams.reshape(-1)
    if streams.shape[0] != rows:
        raise ValueError(f"{fn}: {streams.shape[0]} stream_ids for {rows} rows")
    values = streams.tolist()
    if values and not (0 <= min(values) and max(values) < 2 ** 64):
        raise ValueError(f"{fn}: stream_ids must lie in [0, 2**64), not {min(values)} .. {max(values)}")
    return np.ascontiguousarray(np.array(values, dtype=np.uint64))


def _like(x, values):
    return _torch().from_numpy(values) if _is_tensor(x) else values


def _merged(local, kind, group):
    """All-gather the per-row byte records of every rank and merge them in rank order."""
    world, _ = _world(group)
    if world == 1:
        return local
    torch = _torch()
    import torch.distributed as dist
    mine = torch.from_numpy(local)
    parts = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(parts, mine, group=group)
    merged = parts[0].numpy().copy()
    for part in parts[1:]:
        _summary.merge(merged, part.numpy(), kind)
    return merged


def _check_same(values, what, group):
    """Every rank must pass the same vocab, scale and parameters: a mismatch would silently mix rows."""
    world, _ = _world(group)
    if world == 1:
        return
    torch = _torch()
    import torch.distributed as dist
    # Compared exactly, as int64 words: a float by its bits (scale -0.0 is
    # not 0.0 to the records either), an integer (seed, step: up to 2^64 - 1)
    # by its two's complement. As float64, seeds 2^60 and 2^60 + 1 were equal.
    mine = torch.tensor([_exact_word(v) for v in values], dtype=torch.int64)
    both = torch.cat([mine, -1 - mine])  # one all_reduce gives the largest and the smallest (-1 - w: no overflow)
    dist.all_reduce(both, op=dist.ReduceOp.MAX, group=group)
    high, low = both[:len(values)], -1 - both[len(values):]
    if not bool((low == high).all()):
        raise ValueError(f"the ranks disagree on {what}: from {_shown(values, low)} to {_shown(values, high)}")


def _exact_word(value):
    if isinstance(value, float):
        return struct.unpack("<q", struct.pack("<d", value))[0]
    value = int(value)
    return value - 2 ** 64 if value >= 2 ** 63 else value


def _shown(values, words):
    """The words back as the values they encode (for the message)."""
    out = []
    for value, word in zip(values, words.tolist()):
        if isinstance(value, float):
            out.append(struct.unpack("<d", struct.pack("<q", word))[0])
        else:
            out.append(word + 2 ** 64 if word < 0 else word)  # the integers here are never negative
    return out


# ---------------------------------------------------------------------------
# Summaries and the values they finish.
# ---------------------------------------------------------------------------

class Summary:
    """The merged per-row records of a vocabulary split across ranks (the same bits on every rank)."""

    def __init__(self, records, col_offset, vocab, targets):
        self.records = records
        self.col_offset = col_offset
        self.vocab = vocab
        self.targets = targets
        self._stats = None

    def _row_stats(self):
        if self._stats is None:
            self._stats = _summary.stats(self.records)
        return self._stats

    def logsumexp(self):
        """log sum_j exp(scale * x_j) per row (float64)."""
        return self._row_stats()[0]

    def entropy(self):
        """The softmax's entropy in nats per row (float64)."""
        return self._row_stats()[1]

    def argmax(self):
        """The lowest global column of the largest probability per row (int64)."""
        return self._row_stats()[2]

    def nll(self):
        """logsumexp - scale * x[target] per row (0 for a negative target; needs targets)."""
        if self.targets is None:
            raise ValueError("nll: the summary was made without targets")
        return self._row_stats()[3]


def summarize(logits, col_offset, vocab, scale=1.0, temperature=None, top_k=0, targets=None, group=None):
    """Summarises this rank's columns of every row and merges the summaries of every rank (collective).

    logits      this rank's [rows, cols] slice (numpy.ndarray or CPU tensor)
    col_offset  the global column of its first column; vocab: the global row length (< 2**32)
    scale / temperature   softmax(scale * x), scale = 1 / temperature
    top_k       candidates kept per row (for sampling with top-k)
    targets     global target column per row (for cross-entropy; < 0 ignores the row)
    """
    fn = "summarize"
    array = _rows(logits, fn)
    col_offset = _index(col_offset, "col_offset", fn)
    vocab = _index(vocab, "vocab", fn, 1, 2 ** 32)
    scale = _scale(scale, temperature, fn)
    top_k = _index(top_k, "top_k", fn, 0, 2 ** 31)
    targets = _targets(targets, array.shape[0], fn)
    _check_same([vocab, scale, top_k, array.shape[0]], "vocab, scale, top_k and rows", group)
    records = _summary.compute(array, col_offset, vocab, scale, top_k, targets)
    return Summary(_merged(records, _RECORDS, group), col_offset, vocab, targets)


def _scale(scale, temperature, fn):
    scale = _real(scale, "scale", fn)
    if temperature is not None:
        temperature = _real(temperature, "temperature", fn)
        if not temperature > 0:
            raise ValueError(f"{fn}: temperature {temperature} must be > 0")
        scale = scale / temperature
    if scale != scale:
        raise ValueError(f"{fn}: scale is NaN")
    return scale


def softmax(logits, col_offset, vocab, scale=1.0, temperature=None, group=None):
    """softmax(scale * x) of this rank's columns, normalised over the whole row (collective)."""
    _refuse_grad(logits, "softmax")
    array = _rows(logits, "softmax")
    summary = summarize(array, col_offset, vocab, scale, temperature, group=group)
    return _like(logits, _summary.finish(array, summary.col_offset, summary.vocab, None, summary.records, 0))


def log_softmax(logits, col_offset, vocab, scale=1.0, temperature=None, group=None):
    """log_softmax(scale * x) of this rank's columns (collective)."""
    _refuse_grad(logits, "log_softmax")
    array = _rows(logits, "log_softmax")
    summary = summarize(array, col_offset, vocab, scale, temperature, group=group)
    return _like(logits, _summary.finish(array, summary.col_offset, summary.vocab, None, summary.records, 1))


def logsumexp(logits, col_offset, vocab, scale=1.0, temperature=None, group=None):
    """log sum_j exp(scale * x_j) of whole rows (float64, the same on every rank; collective)."""
    _refuse_grad(logits, "logsumexp")
    return _like(logits, summarize(logits, col_offset, vocab, scale, temperature, group=group).logsumexp())


def entropy(logits, col_offset, vocab, scale=1.0, temperature=None, group=None):
    """Entropy (nats) of softmax(scale * x) of whole rows (float64; collective)."""
    _refuse_grad(logits, "entropy")
    return _like(logits, summarize(logits, col_offset, vocab, scale, temperature, group=group).entropy())


def cross_entropy_backward(logits, targets, col_offset, vocab, summary, grad_nll=None):
    """d nll / d x for this rank's columns: scale * (p - onehot(target)), rows scaled by grad_nll (local)."""
    array = _rows(logits, "cross_entropy_backward")
    targets = _targets(targets, array.shape[0], "cross_entropy_backward")
    dx = _summary.finish(array, col_offset, vocab, targets, summary.records, 2)
    if grad_nll is not None:
        grad = np.asarray(grad_nll.detach().cpu().numpy() if _is_tensor(grad_nll) else grad_nll, dtype=dx.dtype)
        dx *= grad.reshape(-1, 1)
    return dx


def _nll_function():
    torch = _torch()

    class VocabParallelNLL(torch.autograd.Function):
        @staticmethod
        def forward(ctx, logits, targets, col_offset, vocab, scale, group):
            array = _rows(logits, "cross_entropy")
            summary = summarize(array, col_offset, vocab, scale, targets=targets, group=group)
            ctx.saved = (array, summary.targets, col_offset, vocab, summary)
            ctx.logits_dtype = logits.dtype
            return torch.from_numpy(summary.nll()).to(logits.dtype if logits.dtype.is_floating_point else torch.float64)

        @staticmethod
        def backward(ctx, grad_nll):
            array, targets, col_offset, vocab, summary = ctx.saved
            dx = cross_entropy_backward(array, targets, col_offset, vocab, summary, grad_nll)
            return torch.from_numpy(dx).to(ctx.logits_dtype), None, None, None, None, None

    return VocabParallelNLL


_NLL = None


def cross_entropy(logits, targets, col_offset, vocab, scale=1.0, reduction="none", group=None):
    """Negative log-likelihood of each row's global target column (collective).

    Returns per-row NLL (reduction "none"), or its "sum", or its "mean" over
    the rows whose target is >= 0 (a negative target is ignored). With a
    torch tensor that requires grad, the result is differentiable: the
    backward pass is local (the merged summaries are kept from the forward).
    """
    global _NLL
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"cross_entropy: reduction must be 'none', 'mean' or 'sum', not {reduction!r}")
    scale = _scale(scale, None, "cross_entropy")
    if _is_tensor(logits):
        torch = _torch()
        if _NLL is None:
            _NLL = _nll_function()
        rows = logits.shape[0] if logits.dim() == 2 else 1
        target_array = _targets(targets, rows, "cross_entropy")
        nll = _NLL.apply(logits if logits.dim() == 2 else logits.unsqueeze(0), target_array, col_offset, vocab,
                         scale, group)
        valid = torch.from_numpy(target_array >= 0)
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll[valid].sum() / valid.sum().clamp(min=1)
        return nll
    array = _rows(logits, "cross_entropy")
    summary = summarize(array, col_offset, vocab, scale, targets=targets, group=group)
    nll = summary.nll()
    if reduction == "sum":
        return nll.sum()
    if reduction == "mean":
        valid = summary.targets >= 0
        return nll[valid].sum() / max(int(valid.sum()), 1)
    return nll


# ---------------------------------------------------------------------------
# Sampling.
# ---------------------------------------------------------------------------

def sample(logits, col_offset, vocab, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=0, step=0,
           stream_ids=None, group=None):
    """Draws one global column per row of softmax(logits / temperature), filtered (collective).

    top_k (0 = off), top_p (1 = off), min_p (0 = off) as softmax.sample; the
    draw of row r depends on (seed, stream_ids[r] or r, step) and the whole
    row only: the same tokens on every rank, for any number of ranks and
    any column boundaries. Rows with a NaN or no logit above -inf raise
    ValueError. Returns int64 tokens of logits' kind.
    """
    fn = "sample"
    array = _rows(logits, fn)
    col_offset = _index(col_offset, "col_offset", fn)
    vocab = _index(vocab, "vocab", fn, 1, 2 ** 32)
    temperature, top_p, min_p = (_real(v, n, fn) for v, n in
                                 ((temperature, "temperature"), (top_p, "top_p"), (min_p, "min_p")))
    top_k = _index(top_k, "top_k", fn, 0, 2 ** 63)
    seed = _index(seed, "seed", fn)
    step = _index(step, "step", fn)
    streams = _streams(stream_ids, array.shape[0], fn)
    params = (temperature, top_k, top_p, min_p, seed)
    needs = _summary.sample_rounds(params, vocab)  # checks the parameters
    _check_same([vocab, temperature, top_k, top_p, min_p, seed, step, array.shape[0]],
                "vocab, the sampling parameters, step and rows", group)
    if streams is not None:  # each rank's noise comes from its own stream_ids: they must agree too
        _check_same(streams.tolist(), "stream_ids", group)
    records = _merged(_summary.sample_summarize(params, array, col_offset, vocab), _RECORDS, group)
    search = None
    if needs & _summary.NEEDS_TOP_P:
        search = _summary.top_p_start(params, records)
        while True:
            bins = _merged(_summary.top_p_histogram(params, array, col_offset, vocab, records, search), _BINS, group)
            if _summary.top_p_narrow(search, bins) == 0:
                break
    draws = None
    if needs & _summary.NEEDS_RACE:
        draws = _merged(_summary.sample_race(params, array, col_offset, vocab, records, search, step, streams),
                        _DRAWS, group)
    indices, status, message = _summary.sample_finish(params, records, search, draws, step, streams)
    if status == _summary.NO_FINITE_LOGIT:
        raise ValueError(f"sample: {message}")
    return _like(logits, indices)
