"""The package among torch's machinery: out= and autograd's version counters, TorchScript, the profiler,
and a clean interpreter exit after an exception inside backward."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import softmax

# ---- out= ------------------------------------------------------------------


def test_out_write_bumps_the_version_counter_so_autograd_detects_it():
    a = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    saved = a.exp()  # exp saves its output for the backward
    version = saved._version
    with torch.no_grad():
        assert softmax.softmax(torch.randn(3, 4, dtype=torch.float64), out=saved) is saved
    assert saved._version > version
    torch.testing.assert_close(saved.sum(-1), torch.ones(3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.sum().backward()  # rather than a silently wrong gradient


@pytest.mark.parametrize("function", [softmax.softmax, softmax.log_softmax])
def test_out_refuses_a_leaf_that_requires_grad_as_torch_does(function):
    x = torch.randn(3, 4)
    leaf = torch.zeros(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError):
        torch.exp(x, out=leaf)  # torch's own rule
    with pytest.raises(RuntimeError, match="requires grad"):
        function(x, out=leaf)
    assert torch.count_nonzero(leaf) == 0  # untouched
    with torch.no_grad():  # allowed there, as torch allows it
        function(x, out=leaf)
    torch.testing.assert_close(leaf.detach(), (torch.log_softmax if function is softmax.log_softmax
                                               else torch.softmax)(x, -1))


def test_out_is_resized_when_empty_and_refused_otherwise():
    x = torch.randn(3, 4, dtype=torch.float64)
    empty = torch.empty(0, dtype=torch.float64)
    assert softmax.softmax(x, out=empty) is empty
    assert empty.shape == (3, 4)
    torch.testing.assert_close(empty, torch.softmax(x, -1))
    wrong = torch.full((4, 3), 7.0, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"out has shape \(4, 3\)"):
        softmax.softmax(x, out=wrong)
    assert bool((wrong == 7.0).all())
    strided = torch.zeros(4, 3, dtype=torch.float64).t()
    softmax.log_softmax(x, out=strided, axis=0)
    torch.testing.assert_close(strided, torch.log_softmax(x, 0))
    array_out = np.empty((3, 4))
    assert softmax.softmax(x.numpy(), out=array_out) is array_out


# ---- TorchScript and the profiler -------------------------------------------


class Attention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.project = torch.nn.Linear(6, 6)

    def forward(self, x, keep):
        scores = self.project(x) @ x.transpose(-1, -2)
        weights = softmax.softmax(scores, -1, 0.25, mask=keep)
        return weights @ x + softmax.log_softmax(x, 1).sum(-1, keepdim=True) + softmax.logsumexp(x).unsqueeze(-1)


def test_trace_records_the_operators():
    torch.manual_seed(0)
    model = Attention()
    x, keep = torch.randn(2, 5, 6), torch.ones(5, 5, dtype=torch.bool).tril()
    traced = torch.jit.trace(model, (x, keep))
    kinds = {node.kind() for node in traced.graph.nodes()}
    assert {"softmax::softmax", "softmax::log_softmax", "softmax::logsumexp"} <= kinds
    other = torch.randn(3, 5, 6)
    torch.testing.assert_close(traced(other, keep), model(other, keep))


def test_script_compiles_calls_of_the_package_functions():
    eager = Attention()
    model = torch.jit.script(eager)
    kinds = {node.kind() for node in model.graph.nodes()}
    assert {"softmax::softmax", "softmax::log_softmax", "softmax::logsumexp"} <= kinds
    x, keep = torch.randn(2, 5, 6), torch.ones(5, 5, dtype=torch.bool).tril()
    torch.testing.assert_close(model(x, keep), eager(x, keep))
    x.requires_grad_()
    model(x, keep).sum().backward()  # autograd through the operators
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_profiles_name_the_operators():
    x = torch.randn(4, 8, requires_grad=True)
    with torch.autograd.profiler.profile() as profile:
        softmax.softmax(x)
        softmax.log_softmax(x.detach(), causal=True)
        softmax.entropy(x)
    names = {event.name for event in profile.function_events}
    assert {"softmax::softmax", "softmax::log_softmax", "softmax::entropy"} <= names


# ---- interpreter exit ----------------------------------------------------------

EXIT_AFTER_BACKWARD_ERROR = textwrap.dedent("""
    import sys
    import torch
    import softmax

    torch.manual_seed(0)

    class Fail(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.clone()

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("an error inside backward")

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = (torch.nn.Linear(16, 16) for _ in range(3))

        def forward(self, x):
            scores = self.q(x) @ self.k(x).transpose(-1, -2) / 4  # backward after Fail's: its input waits ...
            checked = Fail.apply(self.v(x))  # ... in autograd's queue when this one raises
            keep = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
            weights = getattr(softmax, sys.argv[2])(scores, mask=keep)  # its gradient comes first, from the extension
            return weights @ checked

    model = Attention()
    y = model(torch.randn(4, 128, 16))
    mode = sys.argv[1]
    if mode == "queued":
        y.sum().backward()
    elif mode == "caught":
        try:
            y.sum().backward()
        except RuntimeError as error:
            kept = error  # the exception (and its traceback's tensors) alive until exit
        raise SystemExit(3)
    elif mode == "twice":
        model(torch.randn(2, 8, 16)).detach()
        z = softmax.softmax(torch.randn(3, 5, requires_grad=True) * 2).sum()
        z.backward()
        z.backward()  # the saved tensors are freed: an error inside the engine
""")


@pytest.mark.parametrize("mode,code,function", [("queued", 1, "softmax"), ("queued", 1, "log_softmax"),
                                                ("caught", 3, "softmax"), ("twice", 1, "softmax")])
def test_interpreter_exits_after_an_exception_inside_backward(mode, code, function, tmp_path):
    """Once hung at exit: a gradient left in autograd's queue by the error was a tensor over NumPy memory."""
    script = tmp_path / "attention_error.py"
    script.write_text(EXIT_AFTER_BACKWARD_ERROR)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run([sys.executable, str(script), mode, function], env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == code, result.stderr[-2000:]
    assert mode != "queued" or "an error inside backward" in result.stderr
