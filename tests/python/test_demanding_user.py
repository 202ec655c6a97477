"""A demanding NumPy / SciPy / PyTorch user swapping the package in: accuracy, layouts, odd array types.

Every expected value comes from an independent reference: mpmath at 200 bits
(Debian's python3-mpmath), exact rational arithmetic (fractions), values the
contract (include/softmax.h) fixes exactly, or NumPy / torch operations that
are exact for the case at hand (copies, reversals) -- never the package
itself, except where a test checks that two of the package's paths agree
bit for bit (a copy of an input must give the same bits as a view of it).
"""

import copy
import math
import pickle
import threading
import warnings

import numpy as np
import pytest
import torch

import softmax

mpmath = pytest.importorskip("mpmath")  # (python3-mpmath: python3-torch brings it, through python3-sympy)
mpmath.mp.prec = 200
INF = math.inf
F64_TINY = np.finfo(np.float64).tiny


def mp_softmax(row, scale=1.0, bias=None, log=False):
    """softmax(scale * row + bias) at 200 bits (-inf entries excluded), rounded to float64."""
    z = []
    for i, value in enumerate(row):
        extra = 0.0 if bias is None else float(bias[i])
        if value == -INF or extra == -INF:
            z.append(None)
        else:
            z.append(mpmath.mpf(float(value)) * mpmath.mpf(scale) + mpmath.mpf(extra))
    top = max(v for v in z if v is not None)
    total = mpmath.fsum(mpmath.exp(v - top) for v in z if v is not None)
    if log:
        return np.array([-INF if v is None else float(v - top - mpmath.log(total)) for v in z])
    return np.array([0.0 if v is None else float(mpmath.exp(v - top) / total) for v in z])


def ulp_error(got, exact, log):
    """|got - exact| in float64 ulps: of |exact| for probabilities in the normal range (others are
    not counted), of max(|exact|, 1) for log-probabilities (the contract's measure)."""
    got, exact = np.asarray(got, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    if log:
        finite = np.isfinite(exact)
        error = np.abs(got - np.where(finite, exact, 0.0)) / np.spacing(np.maximum(np.abs(exact), 1.0))
        return np.where(finite, error, np.where(got == exact, 0.0, np.inf))
    normal = exact >= F64_TINY
    return np.where(normal, np.abs(got - exact) / np.spacing(np.where(normal, exact, 1.0)), 0.0)


# -- the torch-operation path (functorch.vmap): float64 accuracy --------------------------------


def _vmapped(function, x, **kwargs):
    functorch = pytest.importorskip("functorch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # functorch's "no batching rule" performance warnings
        return functorch.vmap(lambda t: function(t, 0, **kwargs))(x)


@pytest.mark.parametrize("scale", [1.0, 0.7, -1.3, 1 / 3, 2.5e-3])
@pytest.mark.parametrize("log", [False, True])
def test_vmap_float64_is_as_accurate_as_the_kernels(scale, log):
    # Was 10 to 700 ulp on small probabilities: exp(z) of the logit z = scale * (x - max)
    # rounded to float64 carries z's rounding error, |z| * 2**-53 relative (z = -700: 256 ulp).
    # The contract's f64 bound is 4 ulp (DESIGN.md); the C kernels meet it.
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 24)) * np.array([1, 10, 30, 100, 300, 3e5])[:, None] / max(abs(scale), 1e-2)
    function = softmax.log_softmax if log else softmax.softmax
    got = _vmapped(function, torch.tensor(x), scale=scale).numpy()
    for row, values in zip(x, got):
        exact = mp_softmax(row, scale, log=log)
        assert ulp_error(values, exact, log).max() <= 4, (ulp_error(values, exact, log).max(), row)


@pytest.mark.parametrize("log", [False, True])
def test_vmap_float64_accuracy_with_an_additive_mask(log):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 20)) * 80
    bias = rng.standard_normal(20) * 50
    bias[3] = -INF
    function = softmax.log_softmax if log else softmax.softmax
    got = _vmapped(function, torch.tensor(x), scale=0.9, mask=torch.tensor(bias)).numpy()
    for row, values in zip(x, got):
        exact = mp_softmax(row, 0.9, bias=bias, log=log)
        assert ulp_error(values, exact, log).max() <= 4


def test_torch_operation_path_on_empty_rows():
    # amax over a dimension of size 0 raised IndexError: vmap over empty rows, and the
    # create_graph backward of log-softmax (whose backward is written in torch operations).
    for function in (softmax.softmax, softmax.log_softmax):
        assert _vmapped(function, torch.empty(2, 0, dtype=torch.float64)).shape == (2, 0)
        x = torch.empty(3, 0, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(function(x, -1), x, torch.ones(3, 0, dtype=torch.float64), create_graph=True)
        assert grad.shape == (3, 0)


# -- a learned scale or temperature (a tensor that requires grad) -------------------------------


def _exact_scale_gradient(x, s, weights, log):
    """d/ds sum(weights * f(s * x)) from the closed forms, y from mpmath:
    softmax: y * (x - <y, x>); log-softmax: x - <y, x> (per row, -inf entries contributing 0)."""
    total = 0.0
    for row, w in zip(x, weights):
        y = mp_softmax(row, s)
        finite = np.isfinite(row)
        mean = float(np.sum(y[finite] * row[finite]))
        d = np.where(finite, row - mean, 0.0)
        total += float(np.sum(w * (d if log else y * d)))
    return total


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("form", ["scale", "temperature", "ops", "module"])
def test_a_learned_scale_gets_its_gradient(log, form):
    # float(scale) dropped the tensor's gradient without a word: a learned inverse temperature
    # (CLIP's logit scale) never moved. Now the result is softmax(s * x) as a function of s.
    from softmax.ops import logit_scaled_softmax
    from softmax.torch import ScaledLogSoftmax, ScaledSoftmax

    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 6)) * 3
    x[0, 2] = -INF  # a masked logit: no NaN gradient (0 * inf) for s
    weights = rng.standard_normal((3, 6))
    value = 1.7
    s = torch.tensor(value if form != "temperature" else 1 / value, dtype=torch.float64, requires_grad=True)
    leaf = torch.tensor(x, requires_grad=True)
    function = softmax.log_softmax if log else softmax.softmax
    if form == "scale":
        y = function(leaf, -1, scale=s)
    elif form == "temperature":
        y = function(leaf, -1, temperature=s)
    elif form == "ops":
        if log:
            pytest.skip("the seeds' API has no log-softmax")
        y = logit_scaled_softmax(leaf, s)
    else:
        module = (ScaledLogSoftmax if log else ScaledSoftmax)(scale=torch.nn.Parameter(s.detach().clone()))
        assert len(list(module.parameters())) == 1  # registered: an optimizer sees it
        s = module.scale
        y = module(leaf)
    exact_y = np.array([mp_softmax(row, value, log=log) for row in x])
    assert ulp_error(y.detach().numpy(), exact_y, log).max() <= 4
    finite_y = torch.where(torch.isfinite(y), y, torch.zeros_like(y))
    (ds,) = torch.autograd.grad((finite_y * torch.tensor(weights)).sum(), s)
    expected = _exact_scale_gradient(x, value, weights, log)
    if form == "temperature":  # d/dT = d/ds * ds/dT, s = 1 / T
        expected *= -value ** 2
    assert math.isfinite(float(ds))
    np.testing.assert_allclose(float(ds), expected, rtol=1e-12)


def test_learned_scale_gradchecks_and_statistics():
    rng = torch.Generator().manual_seed(14)
    x = torch.randn(3, 5, dtype=torch.float64, generator=rng, requires_grad=True)
    for value in (0.8, -0.6, 0.0):
        s = torch.tensor(value, dtype=torch.float64, requires_grad=True)
        for function in (softmax.softmax, softmax.log_softmax):
            assert torch.autograd.gradcheck(lambda a, b: function(a, scale=b), (x, s), check_forward_ad=True)
            assert torch.autograd.gradgradcheck(lambda a, b: function(a, 0, scale=b), (x, s))
        for function in (softmax.logsumexp, softmax.entropy):
            assert torch.autograd.gradcheck(lambda a, b: function(a, scale=b), (x, s))
        assert torch.autograd.gradcheck(lambda a, b: softmax.logsumexp(a, scale=b, b=torch.ones(5) * 2), (x, s))
    # d/ds logsumexp(s * x) = <softmax(s * x), x>: closed form, mpmath's softmax
    s = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    (ds,) = torch.autograd.grad(softmax.logsumexp(x.detach(), scale=s).sum(), s)
    expected = sum(float(np.dot(mp_softmax(row, 1.3), row)) for row in x.detach().numpy())
    np.testing.assert_allclose(float(ds), expected, rtol=1e-13)


def test_learned_scale_under_functorch_grad():
    functorch = pytest.importorskip("functorch")
    x = np.array([0.5, -1.0, 2.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = functorch.grad(lambda s: softmax.softmax(torch.tensor(x), 0, scale=s)[1])(
            torch.tensor(1.3, dtype=torch.float64))
    y = mp_softmax(x, 1.3)
    np.testing.assert_allclose(float(ds), y[1] * (x[1] - np.dot(y, x)), rtol=1e-13)


def test_a_scale_that_requires_grad_is_refused_where_it_cannot_be_followed():
    s = torch.tensor(2.0, requires_grad=True)
    y = torch.full((2, 3), 1 / 3, dtype=torch.float64)
    for call in (lambda: softmax.softmax(np.zeros((2, 3)), scale=s),  # a NumPy result carries no gradient
                 lambda: softmax.softmax_backward(y, torch.ones(2, 3, dtype=torch.float64), scale=s),
                 lambda: softmax.log_softmax_backward(y.log(), torch.ones(2, 3, dtype=torch.float64), scale=s),
                 lambda: softmax.softmax(torch.zeros(2, 3, 3), max_bias=s)):
        with pytest.raises(TypeError, match="requires grad"):
            call()
    with torch.no_grad():  # nothing to follow: the value is used
        np.testing.assert_allclose(softmax.softmax(np.array([0.0, 1.0]), scale=s), mp_softmax([0.0, 1.0], 2.0),
                                   rtol=1e-15)
    # A draw has no gradient: sample reads the temperature's value.
    assert softmax.sample(np.zeros((1, 4)), temperature=s, step=0).shape == (1,)


# -- weighted logsumexp: the weights keep their values ---------------------------------------


def test_weighted_logsumexp_keeps_tiny_weights_of_a_float32_tensor():
    # b was cast to x's type first: a float64 weight of 1e-50 became 0 in float32, its term was
    # dropped and the result was -inf instead of 100 + log(1e-50) = -15.129.
    x = torch.tensor([100.0])
    expected = 100.0 + math.log(1e-50)
    got = softmax.logsumexp(x, b=torch.tensor([1e-50], dtype=torch.float64))
    assert got.dtype == torch.float64  # torch's promotion of float32 and float64
    np.testing.assert_allclose(float(got), expected, rtol=1e-15)
    got = softmax.logsumexp(x, b=[1e-50])  # (a list: x's type, the weight kept until the end)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(float(got), expected, rtol=1e-7)


def test_weighted_logsumexp_of_float16_with_a_scale_is_not_computed_in_float16():
    # scale * x was rounded to float16 (1.001 * 990 -> 991 instead of 990.99): the second term
    # off by 0.9% of itself.
    x = np.array([1000.0, 990.0], dtype=np.float16)
    z = [mpmath.mpf(1000) * mpmath.mpf(1.001), mpmath.mpf(990) * mpmath.mpf(1.001)]
    exact = float(mpmath.log(mpmath.exp(z[0]) + 3 * mpmath.exp(z[1])))
    got = softmax.logsumexp(x, scale=1.001, b=[1, 3])
    np.testing.assert_allclose(got, exact, rtol=1e-15)


# -- numpy.ma, numpy.matrix, byte order, odd dtypes ------------------------------------------


def test_masked_arrays_are_refused_wherever_they_enter():
    # A masked array's mask was ignored without a word where it came in as mask=, out=, dy= or b=.
    data = np.array([[1.0, 2.0, 3.0]])
    masked = np.ma.array(data, mask=[[False, True, False]])
    y = np.full((1, 3), 1 / 3)
    calls = {
        "x": lambda: softmax.softmax(masked),
        "mask": lambda: softmax.softmax(data, mask=np.ma.array([True, True, True], mask=[False, True, False])),
        "additive mask": lambda: softmax.softmax(data, mask=np.ma.array([0.0, 0.0, 0.0], mask=[False, True, False])),
        "out": lambda: softmax.softmax(data, out=np.ma.zeros((1, 3))),
        "out, axis None": lambda: softmax.softmax(data, axis=None, out=np.ma.zeros((1, 3))),
        "dy": lambda: softmax.softmax_backward(y, masked),
        "backward out": lambda: softmax.softmax_backward(y, data, out=np.ma.zeros((1, 3))),
        "b": lambda: softmax.logsumexp(data, b=np.ma.array([1.0, 1.0, 1.0], mask=[False, True, False])),
        "logsumexp x": lambda: softmax.logsumexp(masked),
        "entropy x": lambda: softmax.entropy(masked),
        "sample": lambda: softmax.sample(masked, step=0),
    }
    from softmax import distributed

    calls["distributed"] = lambda: distributed.softmax(masked, 0, 3)
    for name, call in calls.items():
        with pytest.raises(TypeError, match="MaskedArray"):
            call()
            pytest.fail(name)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_numpy_matrix_reduces_like_an_ndarray():
    # np.matrix keeps two dimensions through reshape: logsumexp(m) over all elements was an
    # array of shape (1,) (SciPy: a scalar), entropy too, and every axis tuple likewise.
    m = np.matrix([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    a = np.asarray(m)
    exact = math.log(sum(math.exp(v) for v in a.ravel()))
    for axis in (None, (0, 1)):
        got = softmax.logsumexp(m, axis=axis)
        assert np.shape(got) == ()
        np.testing.assert_allclose(got, exact, rtol=1e-15)
        assert np.shape(softmax.entropy(m, axis=axis)) == ()
        assert np.shape(softmax.logsumexp(m, axis=axis, keepdims=True)) == (1, 1)
    got = softmax.softmax(m, axis=None)
    assert type(got) is np.ndarray and got.shape == (2, 3)  # (as SciPy's: a plain array)
    np.testing.assert_allclose(got, np.exp(a) / np.exp(a).sum(), rtol=1e-14)


def test_byte_order_and_odd_dtypes_are_computed_right_or_refused():
    big = np.array([[1.0, 2.0, 4.0]], dtype=">f8")
    native = big.astype("<f8")
    for call in (lambda t: softmax.softmax(t), lambda t: softmax.log_softmax(t, axis=None),
                 lambda t: softmax.logsumexp(t), lambda t: softmax.entropy(t), lambda t: softmax.sample(t, step=0),
                 lambda t: softmax.softmax(native, mask=t), lambda t: softmax.softmax_backward(t, native)):
        with pytest.raises(TypeError, match="byte order"):
            call(big)
    # with b= the weighted sum is NumPy arithmetic, which reads any byte order right
    np.testing.assert_allclose(softmax.logsumexp(big, b=np.array([1.0, 1.0, 1.0], ">f8")),
                               math.log(math.exp(1) + math.exp(2) + math.exp(4)), rtol=1e-15)
    # integers of either byte order are promoted (a copy in native order)
    np.testing.assert_allclose(softmax.softmax(np.array([1, 2], ">i4")), mp_softmax([1.0, 2.0]), rtol=1e-15)
    for dtype in (object, np.longdouble, np.complex128):
        with pytest.raises(TypeError):
            softmax.softmax(np.array([1.0, 2.0], dtype=dtype))
    with pytest.raises(TypeError):
        softmax.logsumexp(np.array([1.0, 2.0], dtype=np.longdouble))


# -- integers beyond the float type's exact range --------------------------------------------


def _exact_integer_softmax(row, scale=1.0, log=False):
    z = [mpmath.mpf(int(v)) * mpmath.mpf(scale) for v in row]
    top = max(z)
    total = mpmath.fsum(mpmath.exp(v - top) for v in z)
    return np.array([float(v - top - mpmath.log(total)) if log else float(mpmath.exp(v - top) / total) for v in z])


@pytest.mark.parametrize("scale", [1.0, 0.5, -1.0])
def test_int64_logits_beyond_2_to_the_53(scale):
    # Converted to float64 first, 2**62 + 1 and 2**62 became equal: softmax [0.5, 0.5] for
    # [0.73, 0.27] (SciPy subtracts the maximum in integers: right).
    row = [2 ** 62 + 1, 2 ** 62, 2 ** 62 - 3, -(2 ** 63)]
    x = np.array([row, row[::-1]], dtype=np.int64)
    exact = np.array([_exact_integer_softmax(r, scale) for r in x])
    np.testing.assert_allclose(softmax.softmax(x, scale=scale), exact, rtol=1e-15, atol=0)
    exact_log = np.array([_exact_integer_softmax(r, scale, log=True) for r in x])
    got = softmax.log_softmax(x, scale=scale)
    finite = np.isfinite(exact_log) & (exact_log > -1e300)
    np.testing.assert_allclose(got[finite], exact_log[finite], rtol=1e-15)
    np.testing.assert_allclose(softmax.softmax(x.T, axis=0, scale=scale), exact.T, rtol=1e-15, atol=0)
    entropy = [float(-np.sum(p[p > 0] * np.log(p[p > 0]))) for p in exact]
    np.testing.assert_allclose(softmax.entropy(x, scale=scale), entropy, rtol=1e-13, atol=1e-300)


def test_integer_tensors_beyond_the_default_type():
    # int32 16777217 and 16777216 are the same float32.
    t = torch.tensor([[16777217, 16777216, 16777200]], dtype=torch.int32)
    got = softmax.softmax(t)
    assert got.dtype == torch.get_default_dtype()
    exact = _exact_integer_softmax(t[0].tolist())
    np.testing.assert_allclose(got[0].double().numpy(), exact, rtol=2e-7, atol=1e-45)
    # the one-hot limits keep the order exactly (no tie is made by rounding)
    np.testing.assert_array_equal(softmax.softmax(t, scale=INF)[0].numpy(), [1.0, 0.0, 0.0])
    n = torch.tensor([-(2 ** 62), -(2 ** 62) + 1, 5])
    np.testing.assert_array_equal(softmax.softmax(n, scale=-INF).numpy(), [1.0, 0.0, 0.0])


def test_logsumexp_of_int64_beyond_2_to_the_53():
    # logsumexp is not shift-invariant: the shift comes back as scale * m.
    row = [2 ** 53 + 3, 2 ** 53 + 1, 2 ** 53]
    exact = float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - 2 ** 53) for v in row)))  # minus 2**53
    x = np.array(row, dtype=np.int64)
    np.testing.assert_allclose(softmax.logsumexp(x) - 2.0 ** 53, exact, atol=2.0)  # (an ulp of 2**53 is 2)
    d = np.array(row, dtype=np.int64) - 2 ** 53
    weights = [1.0, 2.0, 0.5]
    exact_w = float(mpmath.log(mpmath.fsum(w * mpmath.exp(int(v)) for w, v in zip(weights, d))))
    # Shifted copies of one row: the same logsumexp minus the shift, exactly as far as float64 goes.
    got = softmax.logsumexp(np.stack([x, d]), axis=1, b=weights)
    np.testing.assert_allclose(got[1], exact_w, rtol=1e-15)
    np.testing.assert_allclose(got[0] - 2.0 ** 53, exact_w, atol=2.0)
    small = np.array([[2 ** 62 + 1, 2 ** 62]], dtype=np.int64)
    # exp(2**62 + 1) + exp(2**62) = exp(2**62) * (e + 1): its log rounds to 2**62 in float64,
    # but the weighted and unweighted forms must agree with each other and with torch's
    np.testing.assert_allclose(softmax.logsumexp(small, axis=1), [2.0 ** 62], rtol=1e-16)
    np.testing.assert_allclose(softmax.logsumexp(small, axis=1, b=[1.0, -1.0], return_sign=True)[1], [1.0])


# -- Generator: threads, pickling, copies ------------------------------------------------------


def test_generator_draws_never_repeat_across_threads():
    # The step was read, the draw made without the GIL, then the step written: two threads
    # could draw with the same step (197 distinct draws out of 200 calls).
    logits = np.random.default_rng(15).standard_normal((20000, 64)).astype(np.float32)
    rng = softmax.default_rng(7)
    steps = []
    lock = threading.Lock()
    original = softmax._stats._sample

    def recording_sample(*args):
        with lock:
            steps.append(args[-1])
        return original(*args)

    def work():
        for _ in range(25):
            rng.sample(logits)

    softmax._stats._sample = recording_sample
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        softmax._stats._sample = original
    assert sorted(steps) == list(range(100))
    assert rng.step == 100


def test_generator_pickles_copies_and_gives_back_a_failed_step():
    rng = softmax.default_rng(3)
    logits = np.random.default_rng(16).standard_normal((5, 30))
    rng.sample(logits)
    for twin in (pickle.loads(pickle.dumps(rng)), copy.copy(rng), copy.deepcopy(rng)):
        assert (twin.seed, twin.step) == (3, 1)
        np.testing.assert_array_equal(twin.sample(logits), softmax.sample(logits, seed=3, step=1))
        assert twin.step == 2
    assert rng.step == 1  # (the copies advanced on their own)
    with pytest.raises(ValueError):
        rng.sample(logits, temperature=-1.0)
    assert rng.step == 1  # a call that raised did not use up its step
    rng.step = -1
    with pytest.raises(ValueError, match="step"):
        rng.sample(logits)


# -- softmax.distributed --------------------------------------------------------------------------


def test_distributed_refuses_to_drop_a_gradient():
    # softmax / log_softmax / logsumexp / entropy detached their input: a result without grad
    # for logits that require it (cross_entropy is the differentiable one).
    from softmax import distributed

    logits = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    for function in (distributed.softmax, distributed.log_softmax, distributed.logsumexp, distributed.entropy):
        with pytest.raises(TypeError, match="not differentiable"):
            function(logits, 0, 5)
        with torch.no_grad():
            assert function(logits, 0, 5).shape[0] == 2
    scale = torch.tensor(1.5, requires_grad=True)
    with pytest.raises(TypeError, match="requires grad"):
        distributed.cross_entropy(logits, torch.tensor([1, 2]), 0, 5, scale=scale)


@pytest.mark.parametrize("scale", [INF, -INF])
def test_vmap_logsumexp_at_an_infinite_scale_of_a_zero_extreme(scale):
    # The limit scale * max(x) is 0 when that extreme is 0 (the kernels' value, softmax.h's
    # contract); the torch-operation path gave inf * 0 = NaN.
    rows = torch.tensor([[0.0, -1.0, -2.0], [0.0, 1.0, 2.0], [3.0, 1.0, -0.5]], dtype=torch.float64)
    extreme = rows.amax(1) if scale > 0 else rows.amin(1)
    expected = torch.where(extreme == 0, torch.zeros(3, dtype=torch.float64), extreme * scale)
    functorch = pytest.importorskip("functorch")
    batched = functorch.vmap(lambda row: softmax.logsumexp(row, scale=scale))(rows)
    torch.testing.assert_close(softmax.logsumexp(rows, scale=scale), expected, rtol=0, atol=0)
    torch.testing.assert_close(batched, expected, rtol=0, atol=0)


def test_masked_tensors_are_refused_wherever_they_enter():
    # torch.masked.MaskedTensor (torch 1.13's prototype) overrides __torch_dispatch__: the memory
    # behind its data_ptr() is not its data. logsumexp and entropy read it as log(3) whatever
    # the logits, sample drew from it, softmax_backward read dy = 0, and a MaskedTensor mask=
    # was taken as plain values.
    masked = pytest.importorskip("torch.masked")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the prototype warns on creation)
        data = torch.tensor([[1.0, 2.0, 3.0]])
        keep = torch.tensor([[True, False, True]])
        mt = masked.masked_tensor(data, keep)
        out = masked.masked_tensor(torch.zeros(1, 3), keep)
    from softmax import distributed

    calls = [lambda: softmax.softmax(mt), lambda: softmax.log_softmax(mt, axis=None), lambda: softmax.logsumexp(mt),
             lambda: softmax.entropy(mt), lambda: softmax.logsumexp(mt, b=torch.ones(3)),
             lambda: softmax.logsumexp(data, b=mt), lambda: softmax.sample(mt, step=0),
             lambda: softmax.softmax(data, mask=mt), lambda: softmax.softmax(data, out=out),
             lambda: softmax.softmax_backward(torch.full((1, 3), 1 / 3), mt), lambda: distributed.softmax(mt, 0, 3)]
    for call in calls:
        with pytest.raises(TypeError, match="MaskedTensor"):
            call()
    # plain subclasses (their own memory, torch's dispatch) are computed as tensors
    class Logits(torch.Tensor):
        pass

    sub = torch.tensor([[0.0, 1.0]], dtype=torch.float64).as_subclass(Logits)
    np.testing.assert_allclose(softmax.softmax(sub).numpy(), [mp_softmax([0.0, 1.0])], rtol=1e-15)
    np.testing.assert_allclose(float(softmax.logsumexp(sub)), math.log(1 + math.e), rtol=1e-15)


# -- memory: out= over x through every path --------------------------------------------------------


@pytest.mark.parametrize("kwargs", [dict(axis=None), dict(axis=(0, 2)), dict(axis=0, temperature=0.5),
                                    dict(mask=np.array([True, False, True, True])),
                                    dict(mask=np.array([0.0, -1.0, -np.inf, 2.0])),
                                    dict(causal=True), dict(axis=1, dtype=np.float64)])
@pytest.mark.parametrize("log", [False, True])
def test_out_over_x_itself_or_reversed_through_every_path(kwargs, log):
    # The general paths (axes moved and flattened, masks, temperature, causal, dtype=) write
    # out after reading x: out = x, or x reversed (the same bytes in another order), must give
    # what a separate out gets.
    function = softmax.log_softmax if log else softmax.softmax
    x = np.random.default_rng(17).standard_normal((3, 4, 4))
    expected = function(x.copy(), **kwargs)
    for view in (lambda a: a, lambda a: a[::-1], lambda a: a[:, :, ::-1]):
        data = x.copy()
        out = view(data)  # out[i] is to receive f(x)[i], over memory x still has to be read from
        assert function(data, out=out, **kwargs) is out
        np.testing.assert_array_equal(out, expected)
