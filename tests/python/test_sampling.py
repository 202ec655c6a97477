"""softmax.sample, softmax.logsumexp and softmax.entropy (when the library has the sampler)."""

import math

import numpy as np
import pytest
import torch

import softmax
from reference import log_softmax_ref, softmax_ref

pytestmark = [pytest.mark.skipif(not softmax.HAS_SAMPLER, reason="this build of libsoftmax has no sampler"),
              pytest.mark.filterwarnings("ignore::softmax.RepeatedSampleWarning")]


def test_sample_follows_the_distribution_and_is_reproducible():
    logits = np.array([2.0, 1.0, 3.0, 5.0, 4.0])
    rows = np.tile(logits, (20000, 1))
    draws = softmax.sample(rows, temperature=1.0, seed=7)
    assert draws.dtype == np.int64 and draws.shape == (20000,)
    np.testing.assert_array_equal(draws, softmax.sample(rows, temperature=1.0, seed=7))
    frequencies = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(frequencies, softmax_ref(logits), atol=0.015)
    np.testing.assert_array_equal(softmax.sample(rows[:10], temperature=0), 3)
    top2 = softmax.sample(rows, top_k=2, seed=1)
    assert set(np.unique(top2)) <= {3, 4}


def test_sample_kinds_and_errors():
    t = torch.tensor([[0.0, -math.inf, 1.0], [5.0, 0.0, 0.0]])
    drawn = softmax.sample(t, seed=3)
    assert isinstance(drawn, torch.Tensor) and drawn.dtype == torch.int64 and drawn.shape == (2,)
    assert drawn[0].item() != 1
    with pytest.raises(ValueError):
        softmax.sample(np.zeros((2, 3)), temperature=-1.0)
    with pytest.raises(ValueError):
        softmax.sample(np.full((1, 3), -np.inf))
    with pytest.raises(TypeError):
        softmax.sample(np.zeros(3, np.int64))


@pytest.mark.parametrize("axis", [-1, 0])
def test_logsumexp_and_entropy(axis):
    x = np.random.default_rng(0).normal(scale=3, size=(6, 7))
    expected_lse = np.log(np.sum(np.exp(0.5 * x), axis=axis))
    np.testing.assert_allclose(softmax.logsumexp(x, axis=axis, scale=0.5), expected_lse, rtol=1e-12)
    p = softmax_ref(x, axis, 0.5)
    expected_entropy = -np.sum(p * log_softmax_ref(x, axis, 0.5), axis=axis)
    np.testing.assert_allclose(softmax.entropy(x, axis=axis, temperature=2.0), expected_entropy, rtol=1e-10)
    t = torch.from_numpy(x).float()
    result = softmax.entropy(t, axis=axis)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    assert softmax.entropy(np.array([1.0, 1.0, -np.inf])) == pytest.approx(math.log(2))


def test_sample_without_step_warns_that_draws_repeat():
    rows = np.zeros((64, 50))
    with pytest.warns(softmax.RepeatedSampleWarning, match="draws the same tokens"):
        first = softmax.sample(rows, seed=11)
    with pytest.warns(softmax.RepeatedSampleWarning):
        second = softmax.sample(rows, seed=11)
    np.testing.assert_array_equal(first, second)  # what the warning is about
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        softmax.sample(rows, seed=11, step=0)  # an explicit step: no warning


def test_generator_advances_its_own_step_and_is_reproducible():
    rows = np.zeros((64, 50))  # uniform rows: repeated draws of 64 rows would be a 50**-64 coincidence
    rng = softmax.default_rng(11)
    draws = [rng.sample(rows) for _ in range(4)]
    assert rng.step == 4 and "seed=11, step=4" in repr(rng)
    for k, drawn in enumerate(draws):
        np.testing.assert_array_equal(drawn, softmax.sample(rows, seed=11, step=k))
    for a in range(4):
        for b in range(a):
            assert not np.array_equal(draws[a], draws[b])
    again = softmax.default_rng(11)
    np.testing.assert_array_equal(again.sample(rows), draws[0])  # reproducible from the seed
    resumed = softmax.Generator(11, step=2)
    np.testing.assert_array_equal(resumed.sample(rows), draws[2])
    with pytest.raises(TypeError, match="seed must be an integer"):
        softmax.default_rng(1.5)
    with pytest.raises(ValueError, match="seed = -1"):
        softmax.default_rng(-1)
