"""The softmax chapter's figures, computed by this library.

    python3 -m softmax.figures OUTDIR

writes, as PNG and SVG:
  scale_bars              softmax probabilities of [10, 20, 30] at scale 1 and 0.01, and of
                          [1, 2, 3, 4, 1, 2, 3] at scale 1 and 0.1
  temperature_bars        probabilities of the logits [2, 1, 3, 5, 4] at temperatures 0.1, 0.5, 1, 10
  entropy_temperature     entropy of softmax([2, 1, 3, 5, 4] / T) against T (log axis), with the
                          limits 0 (greedy) and log 5 (uniform)
  sampling_histograms     1000 draws per temperature from the library's sampler -- only when the
                          library has one (softmax.sample); otherwise skipped, and said so
"""

import math
import os
import sys

import numpy as np

import softmax

CHAPTER_LOGITS = np.array([2.0, 1.0, 3.0, 5.0, 4.0])
CHAPTER_TEMPERATURES = [0.1, 0.5, 1.0, 10.0]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, outdir, name):
    paths = []
    for extension in ("png", "svg"):
        path = os.path.join(outdir, f"{name}.{extension}")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        paths.append(path)
    return paths


def _bars(ax, logits, scale, color):
    probabilities = softmax.softmax(np.asarray(logits, dtype=np.float64), scale=scale)
    positions = np.arange(len(logits))
    bars = ax.bar(positions, probabilities, color=color)
    for bar, p in zip(bars, probabilities):
        ax.annotate(f"{p:.3f}", (bar.get_x() + bar.get_width() / 2, p), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(positions, [f"{v:g}" for v in logits])
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("logit")
    ax.set_ylabel("probability")
    ax.set_title(f"softmax({scale:g} * x), x = {list(map(lambda v: int(v) if v == int(v) else v, logits))}",
                 fontsize=10)


def scale_bars(plt, outdir):
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    _bars(axes[0, 0], [10, 20, 30], 1.0, "tab:red")
    _bars(axes[0, 1], [10, 20, 30], 0.01, "tab:blue")
    _bars(axes[1, 0], [1, 2, 3, 4, 1, 2, 3], 1.0, "tab:red")
    _bars(axes[1, 1], [1, 2, 3, 4, 1, 2, 3], 0.1, "tab:blue")
    fig.suptitle("A scale (inverse temperature) sharpens or flattens the same logits")
    return _save(fig, outdir, "scale_bars")


def temperature_bars(plt, outdir):
    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    width = 0.8 / len(CHAPTER_TEMPERATURES)
    positions = np.arange(len(CHAPTER_LOGITS))
    for i, temperature in enumerate(CHAPTER_TEMPERATURES):
        probabilities = softmax.softmax(CHAPTER_LOGITS, temperature=temperature)
        ax.bar(positions + (i - (len(CHAPTER_TEMPERATURES) - 1) / 2) * width, probabilities, width,
               label=f"T = {temperature:g}")
    ax.set_xticks(positions, [f"x{i} = {v:g}" for i, v in enumerate(CHAPTER_LOGITS)])
    ax.set_xlabel("logit")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.05)
    ax.legend(title="temperature")
    ax.set_title("softmax(x / T) for x = [2, 1, 3, 5, 4]: low T is greedy, high T is uniform")
    return _save(fig, outdir, "temperature_bars")


def entropy_of(logits, temperature):
    """Entropy in nats of softmax(logits / T): the library's own, or from its softmax and log-softmax."""
    if hasattr(softmax, "entropy"):
        return float(softmax.entropy(logits, temperature=temperature))
    p = softmax.softmax(logits, temperature=temperature)
    log_p = softmax.log_softmax(logits, temperature=temperature)
    terms = np.zeros_like(p)
    np.multiply(p, log_p, out=terms, where=p > 0)  # 0 * log 0 = 0, not 0 * -inf
    return float(-terms.sum())


def entropy_temperature(plt, outdir):
    temperatures = np.logspace(-2, 2, 200)
    entropies = [entropy_of(CHAPTER_LOGITS, t) for t in temperatures]
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    ax.semilogx(temperatures, entropies, color="tab:purple", label="H(softmax(x / T))")
    ax.axhline(math.log(len(CHAPTER_LOGITS)), color="gray", linestyle="--", label="log 5 (uniform, T -> inf)")
    ax.axhline(0.0, color="gray", linestyle=":", label="0 (one-hot, T -> 0)")
    for t in CHAPTER_TEMPERATURES:
        ax.plot([t], [entropy_of(CHAPTER_LOGITS, t)], "o", color="tab:orange")
        ax.annotate(f"T = {t:g}", (t, entropy_of(CHAPTER_LOGITS, t)), textcoords="offset points", xytext=(6, -12))
    ax.set_xlabel("temperature T (log scale)")
    ax.set_ylabel("entropy (nats)")
    ax.set_title("Entropy of softmax([2, 1, 3, 5, 4] / T) rises with the temperature")
    ax.legend(loc="upper left")
    return _save(fig, outdir, "entropy_temperature")


def sampling_histograms(plt, outdir, draws=1000, seed=2024):
    sample = getattr(softmax, "sample", None)
    if sample is None:
        return None
    fig, axes = plt.subplots(len(CHAPTER_TEMPERATURES), 1, figsize=(9, 3 * len(CHAPTER_TEMPERATURES)),
                             constrained_layout=True, sharex=True)
    logits = np.tile(CHAPTER_LOGITS, (draws, 1))
    for ax, temperature in zip(axes, CHAPTER_TEMPERATURES):
        outcomes = np.asarray(sample(logits, temperature=temperature, seed=seed, step=0)).reshape(-1)
        counts = np.bincount(outcomes, minlength=len(CHAPTER_LOGITS))
        ax.bar(np.arange(len(CHAPTER_LOGITS)), counts, color="tab:green", alpha=0.7)
        ax.set_ylabel("count")
        ax.set_title(f"{draws} samples at temperature {temperature:g}")
    axes[-1].set_xticks(np.arange(len(CHAPTER_LOGITS)), [f"x{i} = {v:g}" for i, v in enumerate(CHAPTER_LOGITS)])
    axes[-1].set_xlabel("sampled outcome (logit)")
    fig.suptitle("Sampling from softmax(x / T), x = [2, 1, 3, 5, 4]")
    return _save(fig, outdir, "sampling_histograms")


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    plt = _pyplot()
    written = []
    for draw in (scale_bars, temperature_bars, entropy_temperature):
        written += draw(plt, outdir)
        plt.close("all")
    histograms = sampling_histograms(plt, outdir)
    if histograms is None:
        print("sampling_histograms: skipped (this build of libsoftmax has no sampler)", file=sys.stderr)
    else:
        written += histograms
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
