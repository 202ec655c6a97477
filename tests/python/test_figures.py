"""python3 -m softmax.figures OUTDIR writes every figure as PNG and SVG."""

import os

import numpy as np
import pytest

import softmax
from softmax import figures

pytest.importorskip("matplotlib")


def test_figures_are_written(tmp_path, capsys):
    assert figures.main(["figures", str(tmp_path)]) == 0
    names = ["scale_bars", "temperature_bars", "entropy_temperature"]
    if hasattr(softmax, "sample"):
        names.append("sampling_histograms")
    else:
        assert "sampling_histograms: skipped" in capsys.readouterr().err
    for name in names:
        for extension in ("png", "svg"):
            path = tmp_path / f"{name}.{extension}"
            assert path.is_file() and os.path.getsize(path) > 1000, path
    with open(tmp_path / "scale_bars.png", "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def test_entropy_limits():
    assert figures.entropy_of(figures.CHAPTER_LOGITS, 100.0) == pytest.approx(np.log(5), abs=1e-3)
    assert figures.entropy_of(figures.CHAPTER_LOGITS, 0.01) == pytest.approx(0.0, abs=1e-12)
    assert figures.entropy_of(figures.CHAPTER_LOGITS, 0) == 0.0


def test_usage_without_outdir(capsys):
    assert figures.main(["figures"]) == 2
    assert "OUTDIR" in capsys.readouterr().err
