"""softmax.distributed over torch.distributed (gloo, processes on localhost) with 1-4 ranks.

One launch of 4 worker processes (this file run as a script, gloo over
TCP on localhost); inside it the groups of the first 1, 2, 3 and 4 ranks
each hold uneven column slices of the same logits and write what they
computed (one launch: importing torch in each process is the slow part). The
test compares it with one process holding whole rows (the same module
without a process group) and with independent references (scipy's softmax
and logsumexp in float64, torch's cross_entropy and its gradient):

  - sampled tokens: equal to the single-process tokens, every mode, many seeds;
  - softmax / log-softmax / logsumexp / entropy / NLL and its gradient:
    within the bounds of docs/distributed.md of the single-process values
    and of the references;
  - NaN and fully masked rows: the contract's values on every rank, and
    sample() raising on every rank.
"""

import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed  # noqa: E402

VOCAB = 3001
ROWS = 5
MODES = [  # temperature, top_k, top_p, min_p
    (1.0, 0, 1.0, 0.0), (0.7, 0, 1.0, 0.0), (0.8, 10, 1.0, 0.0), (1.2, 0, 0.85, 0.0), (1.0, 0, 1.0, 0.1),
    (0.9, 20, 0.9, 0.05), (1.1, 0, 0.95, 0.02), (0.0, 0, 1.0, 0.0), (float("inf"), 0, 0.5, 0.0),
]
SEEDS = range(3)


def logits(dtype):
    rng = np.random.default_rng(2024)
    x = rng.normal(scale=3.0, size=(ROWS, VOCAB))
    x[1] = np.floor(x[1])  # ties
    x[2, rng.random(VOCAB) < 0.05] = -np.inf  # masked columns
    return x.astype(dtype)


def special_logits():
    x = logits(np.float64)[:3].copy()
    x[0, 17] = np.nan
    x[1, :] = -np.inf
    x[2, ::100] = np.inf
    return x


def far_logits():
    """Rows whose differences overflow f64: 1e308 and -1e308 (z = 1 and -1 at scale 1e-308)."""
    x = np.zeros((2, VOCAB))
    x[:, 0], x[:, -1], x[1, VOCAB // 2] = 1e308, -1e308, -np.inf
    x[1, 7] = -1.5e308
    return x


def cut(ranks):
    """Uneven column boundaries, some slices possibly empty (the same on every rank)."""
    rng = np.random.default_rng(ranks)
    inner = np.sort(rng.integers(0, VOCAB + 1, size=ranks - 1))
    if ranks == 3:
        inner[0] = inner[1]  # an empty slice
    return [0, *inner.tolist(), VOCAB]


def targets():
    return np.random.default_rng(5).integers(0, VOCAB, size=ROWS)


# ---------------------------------------------------------------------------
# The worker (this file run as a script).
# ---------------------------------------------------------------------------

WORLD = 4


def worker(rank, port, out):
    """Rank `rank` of a world of 4: for K = 1..4, the first K ranks compute over the group of K."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    results = {}
    for ranks in range(1, WORLD + 1):
        group = dist.new_group(list(range(ranks)))  # every rank takes part in creating every group
        if rank < ranks:
            for key, value in compute(rank, ranks, group).items():
                results[f"{ranks}/{key}"] = value
    np.savez(out, **results)
    dist.barrier()
    dist.destroy_process_group()


def compute(rank, ranks, group):
    from softmax import distributed as sd

    bounds = cut(ranks)
    begin, end = bounds[rank], bounds[rank + 1]
    results = {}
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        x = logits(dtype)[:, begin:end]
        results[f"softmax_{name}"] = sd.softmax(x, begin, VOCAB, scale=0.9, group=group)
        results[f"log_softmax_{name}"] = sd.log_softmax(x, begin, VOCAB, temperature=1.5, group=group)
        results[f"logsumexp_{name}"] = sd.logsumexp(x, begin, VOCAB, group=group)
        results[f"entropy_{name}"] = sd.entropy(x, begin, VOCAB, group=group)
        tensor = torch.tensor(x, requires_grad=True)
        nll = sd.cross_entropy(tensor, torch.tensor(targets()), begin, VOCAB, group=group)
        nll.sum().backward()
        results[f"nll_{name}"] = nll.detach().numpy()
        results[f"grad_{name}"] = tensor.grad.numpy()
        for m, (temperature, top_k, top_p, min_p) in enumerate(MODES):
            results[f"tokens_{name}_{m}"] = np.stack([
                sd.sample(x, begin, VOCAB, temperature, top_k, top_p, min_p, seed=seed, step=seed + m, group=group)
                for seed in SEEDS])
    special = special_logits()[:, begin:end]
    results["special_softmax"] = sd.softmax(special, begin, VOCAB, group=group)
    results["special_log_softmax"] = sd.log_softmax(special, begin, VOCAB, group=group)
    results["special_logsumexp"] = sd.logsumexp(special, begin, VOCAB, group=group)
    raised = []
    for row in (0, 1):
        try:
            sd.sample(special[row:row + 1], begin, VOCAB, seed=1, group=group)
            raised.append(False)
        except ValueError:
            raised.append(True)
    results["special_raised"] = np.array(raised)
    results["special_tokens"] = sd.sample(special[2:3], begin, VOCAB, seed=1, group=group)
    # Differences beyond f64 (1e308 - -1e308) that the scale brings back.
    far = far_logits()[:, begin:end]
    results["far_logsumexp"] = sd.logsumexp(far, begin, VOCAB, scale=1e-308, group=group)
    results["far_softmax"] = sd.softmax(far, begin, VOCAB, scale=-1e-308, group=group)
    # Every rank must pass the same stream_ids: each rank's race draws its noise from its own.
    try:
        sd.sample(x, begin, VOCAB, seed=1, stream_ids=np.arange(ROWS) + rank, group=group)
        results["stream_mismatch"] = np.array("")
    except ValueError as error:
        results["stream_mismatch"] = np.array(str(error))
    # Every rank must pass the same seed: 2^60 + rank differ below float64's 53 bits.
    try:
        sd.sample(far, begin, VOCAB, temperature=1e308, seed=2 ** 60 + rank, group=group)
        results["seed_mismatch"] = np.array("")
    except ValueError as error:
        results["seed_mismatch"] = np.array(str(error))
    return results


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers():
    import softmax

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(softmax.__file__)))
    env = dict(os.environ, PYTHONPATH=package_root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        outs = [os.path.join(directory, f"rank{r}.npz") for r in range(WORLD)]
        processes = [subprocess.Popen([sys.executable, os.path.abspath(__file__), str(r), str(port), outs[r]],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for r in range(WORLD)]
        logs = []
        for p in processes:
            try:
                logs.append(p.communicate(timeout=180)[0].decode(errors="replace"))
            except subprocess.TimeoutExpired:
                for q in processes:
                    q.kill()
                raise
        for r, p in enumerate(processes):
            assert p.returncode == 0, f"rank {r} failed:\n{logs[r]}"
        return [dict(np.load(o)) for o in outs]


# ---------------------------------------------------------------------------
# The tests.
# ---------------------------------------------------------------------------

def ulp_distance(a, b, dtype):
    """|a - b| in ulps of the larger magnitude (of dtype); inf where only one is non-finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    finfo = np.finfo(dtype)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), finfo.tiny)
    ulp = np.ldexp(1.0, np.frexp(scale)[1] - 1 - (finfo.nmant))
    both_same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(both_same, 0.0, np.abs(a - b) / ulp)


@pytest.fixture(scope="module")
def all_results():
    """One launch of 4 processes; the groups of 1, 2, 3 and 4 ranks inside it."""
    return run_workers()


@pytest.fixture(params=[1, 2, 3, 4], ids=lambda k: f"{k}ranks")
def ranks_and_results(request, all_results):
    ranks = request.param
    prefix = f"{ranks}/"
    return ranks, [{key[len(prefix):]: value for key, value in all_results[r].items() if key.startswith(prefix)}
                   for r in range(ranks)]


def gathered(results, key):
    return np.concatenate([r[key] for r in results], axis=1)


def test_tokens_equal_single_process(ranks_and_results):
    from softmax import distributed as sd

    ranks, results = ranks_and_results
    compared = 0
    for dtype in (np.float32, np.float64):
        x = logits(dtype)
        name = np.dtype(dtype).name
        for m, (temperature, top_k, top_p, min_p) in enumerate(MODES):
            single = np.stack([sd.sample(x, 0, VOCAB, temperature, top_k, top_p, min_p, seed=seed, step=seed + m)
                               for seed in SEEDS])
            for rank, r in enumerate(results):
                np.testing.assert_array_equal(r[f"tokens_{name}_{m}"], single,
                                              err_msg=f"rank {rank} of {ranks}, mode {MODES[m]}")
                compared += single.size
            # The tokens are kept ones: never a masked column.
            assert np.all(np.isfinite(x[np.arange(ROWS)[None, :], single]))
    assert compared >= 2 * len(MODES) * len(SEEDS) * ROWS


def test_values_against_single_process_and_references(ranks_and_results):
    from scipy.special import logsumexp, softmax
    from softmax import distributed as sd

    ranks, results = ranks_and_results
    bound = ranks + 4  # docs/distributed.md: f64 within (N + 4) ulp; f32 the exact value rounded or a neighbour
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        x = logits(dtype)
        exact = x.astype(np.float64)
        mine = gathered(results, f"softmax_{name}")
        single = sd.softmax(x, 0, VOCAB, scale=0.9)
        f_bound = 1 if dtype == np.float32 else bound
        assert ulp_distance(mine, single, dtype).max() <= 2 * f_bound
        # The reference in x86 long double (64-bit significand): scipy's float64
        # softmax itself is off by up to |z| ulps from rounding z = scale * x.
        wide = x.astype(np.longdouble)
        z = np.longdouble(0.9) * wide if dtype == np.float32 else np.longdouble(0.9) * wide
        w = np.exp(z - z.max(axis=1, keepdims=True))
        assert ulp_distance(mine, (w / w.sum(axis=1, keepdims=True)).astype(np.float64), dtype).max() <= f_bound + 1
        log_mine = gathered(results, f"log_softmax_{name}")
        z = wide / np.longdouble(1.5)
        zmax = z.max(axis=1, keepdims=True)
        log_ref = (z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))).astype(np.float64)
        finite = np.isfinite(log_ref)
        assert np.array_equal(np.isfinite(log_mine), finite)
        eps = np.finfo(dtype).eps
        assert np.max(np.abs(log_mine[finite] - log_ref[finite]) / np.maximum(np.abs(log_ref[finite]), 1)) <= (bound + 4) * eps
        for rank, r in enumerate(results):  # every rank has the same row values (merged in rank order)
            np.testing.assert_array_equal(r[f"logsumexp_{name}"], results[0][f"logsumexp_{name}"])
            np.testing.assert_array_equal(r[f"nll_{name}"], results[0][f"nll_{name}"])
        lse = results[0][f"logsumexp_{name}"]
        assert np.max(np.abs(lse - logsumexp(exact, axis=1)) / np.abs(logsumexp(exact, axis=1))) <= 8 * 2.0 ** -52
        p = softmax(exact, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy_ref = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
        assert np.allclose(results[0][f"entropy_{name}"], entropy_ref, rtol=1e-12, atol=0)
        # Cross-entropy and its gradient against torch.
        t = torch.tensor(exact, requires_grad=True)
        nll_ref = torch.nn.functional.cross_entropy(t, torch.tensor(targets()), reduction="none")
        nll_ref.sum().backward()
        nll = results[0][f"nll_{name}"]
        # (float32 logits give a float32 loss: the float64 value rounded once)
        assert np.allclose(nll, nll_ref.detach().numpy(), rtol=1e-12 if dtype == np.float64 else eps, atol=0)
        grad = gathered(results, f"grad_{name}")
        assert np.max(np.abs(grad - t.grad.numpy())) <= 1e-13 + eps  # torch's own rounding is the larger part
        w = np.exp(wide - wide.max(axis=1, keepdims=True))
        grad_ref = w / w.sum(axis=1, keepdims=True)
        grad_ref[np.arange(ROWS), targets()] -= 1
        assert np.max(np.abs(grad - grad_ref.astype(np.float64))) <= (bound + 2) * eps


def test_special_rows(ranks_and_results):
    ranks, results = ranks_and_results
    p = gathered(results, "special_softmax")
    logp = gathered(results, "special_log_softmax")
    assert np.all(np.isnan(p[0])) and np.all(np.isnan(logp[0]))  # a NaN anywhere: a NaN row
    assert np.all(p[1] == 0) and np.all(logp[1] == -np.inf)  # fully masked: zeros, -inf
    infinite = np.isposinf(special_logits()[2])
    assert np.all(p[2][infinite] == 1.0 / infinite.sum()) and np.all(p[2][~infinite] == 0)
    for r in results:
        lse = r["special_logsumexp"]
        assert np.isnan(lse[0]) and lse[1] == -np.inf and lse[2] == np.inf
        assert r["special_raised"].tolist() == [True, True]  # NaN and masked rows raise on every rank
        assert infinite[r["special_tokens"][0]]  # +inf entries take the draw
        assert r["special_tokens"][0] == results[0]["special_tokens"][0]


def test_far_rows_and_mismatched_seeds(ranks_and_results):
    from scipy.special import logsumexp

    ranks, results = ranks_and_results
    x = far_logits().astype(np.longdouble)  # x86 long double holds 1e308 * 2
    for sign, key in ((1, "far_logsumexp"), (-1, "far_softmax")):
        z = x * np.longdouble(sign * 1e-308)
        if key == "far_logsumexp":
            want = logsumexp(z.astype(np.float64), axis=1)  # z itself fits in float64
            for r in results:
                np.testing.assert_allclose(r[key], want, rtol=4e-16, atol=0)
        else:  # row 1's -inf is +inf at a negative scale: the one-hot limit
            w = np.exp(z[0] - z[0].max())
            p = gathered(results, key)
            np.testing.assert_allclose(p[0], (w / w.sum()).astype(np.float64), rtol=(ranks + 4) * 2.0 ** -52, atol=0)
            np.testing.assert_array_equal(p[1], np.isneginf(far_logits()[1]).astype(np.float64))
    for r in results:
        message = str(r["seed_mismatch"])
        if ranks == 1:
            assert message == ""
        else:
            assert "disagree" in message and str(2 ** 60) in message and str(2 ** 60 + ranks - 1) in message
    for r in results:  # stream_ids differing between ranks: every rank raises (they drew from other streams)
        message = str(r["stream_mismatch"])
        assert message == "" if ranks == 1 else "disagree on stream_ids" in message


def test_single_process_errors():
    from softmax import distributed as sd

    x = logits(np.float32)
    with pytest.raises(ValueError, match="outside"):
        sd.softmax(x, 5, VOCAB)  # columns beyond the vocabulary
    with pytest.raises(ValueError):
        sd.sample(x, 0, VOCAB, temperature=-1.0)
    with pytest.raises(TypeError):
        sd.sample(x, 0, VOCAB, top_k=1.5)
    with pytest.raises(ValueError, match="merged"):
        sd.softmax(x[:, :10], 0, VOCAB)  # one process holding a slice: records do not cover the row
    with pytest.raises(TypeError):
        sd.softmax([[1.0, 2.0]], 0, 2)


def test_single_process_argument_ranges():
    """Integers that NumPy would wrap or truncate are refused, not read as another row's target or stream."""
    from softmax import distributed as sd

    x = logits(np.float64)[:1, :8]
    with pytest.raises(ValueError, match="2\\*\\*63"):  # as int64 it was -1: the row silently ignored (NLL 0)
        sd.cross_entropy(x, np.array([2 ** 64 - 1], dtype=np.uint64), 0, 8)
    with pytest.raises(ValueError, match="stream_ids"):  # wrapped to 2**64 - 1
        sd.sample(x, 0, 8, stream_ids=[-1])
    with pytest.raises(TypeError, match="stream_ids"):  # truncated to 1
        sd.sample(x, 0, 8, stream_ids=[1.5])
    with pytest.raises(ValueError, match="stream_ids"):
        sd.sample(x, 0, 8, stream_ids=[1, 2])
    with pytest.raises(TypeError, match="top_k"):  # operator.index(True) == 1
        sd.sample(x, 0, 8, top_k=True)
    # In range they are taken as given: the stream 2**64 - 1 draws like softmax.sample's stream 2**64 - 1.
    top = np.array([2 ** 64 - 1], dtype=np.uint64)
    assert sd.sample(x, 0, 8, seed=3, stream_ids=[2 ** 64 - 1]) == sd.sample(x, 0, 8, seed=3, stream_ids=top)


def test_single_process_backward_targets_and_far_logsumexp():
    """The gradient needs the targets of the summary; logsumexp beyond float64 is +-inf (it was NaN)."""
    mpmath = pytest.importorskip("mpmath")
    from softmax import distributed as sd

    x = logits(np.float64)[:2, :16]
    summary = sd.summarize(x, 0, 16, targets=[3, 4])
    with pytest.raises(ValueError, match="target"):
        sd.cross_entropy_backward(x, [3, 5], 0, 16, summary)
    with pytest.raises(ValueError, match="target"):
        sd.cross_entropy_backward(x, [3, 4], 0, 16, sd.summarize(x, 0, 16))
    dx = sd.cross_entropy_backward(x, [-1, -9], 0, 16, sd.summarize(x, 0, 16, targets=[-2, -1]))
    assert not dx.any()
    mpmath.mp.prec = 200
    far = np.array([[1e300, 1e300, 0.0], [-1e300, -1e300, -2e300], [1e300, 1e300, 0.0]])
    for scale in (1e10, 1.7e8, -1e10):
        got = sd.logsumexp(far, 0, 3, scale=scale)
        for row, value in zip(far, got):
            z = [mpmath.mpf(float(v)) * scale for v in row]
            top = max(z)
            exact = top + mpmath.log(sum(mpmath.exp(v - top) for v in z))
            want = float(exact) if abs(exact) < mpmath.mpf(np.finfo(np.float64).max) else float(mpmath.sign(exact)) * np.inf
            assert value == want or abs(value - want) <= 2 * np.spacing(abs(want)), (scale, row, value, want)


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
