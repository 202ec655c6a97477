"""The runnable Python examples of README.md's "Python" section run as written."""

import contextlib
import io
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def python_section_examples():
    with open(README) as readme:
        text = readme.read()
    section = text[text.index("\n## Python\n"):]
    # Examples start with `import torch`; the API summary block is a listing, not a program.
    return [block for block in re.findall(r"```python\n(.*?)```", section, re.S) if block.startswith("import torch")]


def test_readme_has_examples():
    assert len(python_section_examples()) >= 2


@pytest.mark.parametrize("index", range(len(python_section_examples())))
def test_readme_example_runs(index):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(python_section_examples()[index], f"README example {index}", "exec"), {"__name__": "readme"})


def test_stable_where_the_original_is_not():
    torch = pytest.importorskip("torch")
    from softmax.ops import norm_exp_softmax

    result = norm_exp_softmax(torch.tensor([100.0, 200.0, 300.0]))
    torch.testing.assert_close(result, torch.tensor([0.0, 0.0, 1.0]))
