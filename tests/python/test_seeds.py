"""The seeds' examples run verbatim with only the import line changed (from zeta.ops -> from softmax.ops)."""

import contextlib
import glob
import io
import os

import pytest
import torch

from seed_examples import EXAMPLES

SEEDS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "seeds")


def run_example(source):
    assert source.count("from zeta.ops import") == 1
    code = source.replace("from zeta.ops import", "from softmax.ops import")
    namespace = {"__name__": "seed_example"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<seed example>", "exec"), namespace)
    return namespace, printed.getvalue()


# (name of the result, how torch computes it from the example's namespace)
EXPECTED = [
    ("softmax_probs", lambda ns: torch.softmax(ns["x"], dim=-1)),
    ("softmax_probs_scaled", lambda ns: torch.softmax(ns["x"] * 0.5, dim=-1)),
    ("batch_softmax_probs", lambda ns: torch.softmax(ns["x"] * 2.0, dim=-1)),
    ("softmax_probs", lambda ns: torch.softmax(ns["logits"], dim=-1)),
    ("sharper_softmax_probs", lambda ns: torch.softmax(ns["logits"] * 2.0, dim=-1)),
    ("output_probs", lambda ns: torch.softmax(ns["model"].fc(ns["input_tensor"]) * 1.5, dim=-1)),
]


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_seed_example_runs_and_is_right(index):
    namespace, printed = run_example(EXAMPLES[index])
    name, reference = EXPECTED[index]
    result = namespace[name]
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    assert printed.startswith("tensor(")
    torch.testing.assert_close(result, reference(namespace).detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(result.sum(-1), torch.ones(result.shape[:-1]))


def test_simple_nn_trains_like_torch():
    """The SimpleNN example's output is differentiable: gradients match F.softmax's."""
    namespace, _ = run_example(EXAMPLES[5])
    model, inputs = namespace["model"], namespace["input_tensor"]
    weights = torch.randn(5, 3)
    (namespace["output_probs"] * weights).sum().backward()
    ours = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    (torch.softmax(model.fc(inputs) * 1.5, dim=-1) * weights).sum().backward()
    for mine, theirs in zip(ours, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not os.path.isdir(SEEDS_DIR), reason="shared/seeds not beside the repository")
def test_examples_are_verbatim_copies_of_the_seeds():
    seeds = "".join(open(path).read() for path in sorted(glob.glob(os.path.join(SEEDS_DIR, "00[0-2]_*.txt"))))
    for example in EXAMPLES:
        assert example in seeds
