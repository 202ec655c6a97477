"""fast=True: the library's fast mode (SOFTMAX_FLAG_FAST) from Python.

float32 results stay within the fast mode's bound (5 ulp; log-softmax 5 ulp of
max(|y|, 1)) of a float64 reference computed from the same float32 inputs, the
contract's special rows still hold, and where no fast kernel exists (float64,
masks) the result is bitwise the accurate one.
"""
import numpy as np
import pytest
import torch

import softmax

FAST_BOUND_ULP = 5.0


def reference(x, axis=-1, scale=1.0, log=False):
    z = x.astype(np.float64) * scale
    z = z - z.max(axis=axis, keepdims=True)
    if log:
        return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def ulp_error(got, exact, log):
    measured = np.maximum(np.abs(exact), 1.0) if log else np.abs(exact)
    ulp = np.spacing(measured.astype(np.float32)).astype(np.float64)
    keep = np.isfinite(exact) if log else np.abs(exact) > 1e-30
    return float(np.max(np.abs(got.astype(np.float64) - exact)[keep] / ulp[keep]))


@pytest.mark.parametrize("shape", [(4096, 10), (512, 16), (300, 128), (8, 4097), (1, 70000)])
@pytest.mark.parametrize("log", [False, True])
def test_float32_within_the_fast_bound(shape, log):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 10).astype(np.float32)
    f = softmax.log_softmax if log else softmax.softmax
    for scale in (1.0, 0.5, -2.0):
        got = f(x, scale=scale, fast=True)
        assert got.dtype == np.float32 and got.shape == x.shape
        assert ulp_error(got, reference(x, scale=scale, log=log), log) <= FAST_BOUND_ULP


def test_tensors_without_grad_and_special_rows():
    x = torch.randn(64, 33) * 5
    x[3] = float("-inf")           # fully masked row: zeros
    x[5, 7] = float("nan")         # NaN row
    x[9, 2] = x[9, 4] = float("inf")  # +inf entries share the mass
    y = softmax.softmax(x, fast=True)
    assert isinstance(y, torch.Tensor)
    assert torch.all(y[3] == 0)
    assert torch.all(torch.isnan(y[5]))
    assert y[9, 2] == 0.5 and y[9, 4] == 0.5 and float(y[9].sum()) == 1.0
    ok = [r for r in range(64) if r not in (3, 5, 9)]
    exact = reference(x[ok].numpy())
    assert ulp_error(y[ok].numpy(), exact, False) <= FAST_BOUND_ULP


def test_where_no_fast_kernel_exists_the_bits_are_the_accurate_ones():
    rng = np.random.default_rng(7)
    x64 = rng.standard_normal((20, 50)) * 4
    assert np.array_equal(softmax.softmax(x64, fast=True), softmax.softmax(x64))
    assert np.array_equal(softmax.log_softmax(x64, fast=True), softmax.log_softmax(x64))
    x32 = x64.astype(np.float32)
    keep = rng.random((20, 50)) > 0.3
    assert np.array_equal(softmax.softmax(x32, mask=keep, fast=True), softmax.softmax(x32, mask=keep))
