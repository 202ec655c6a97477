#!/usr/bin/python3
"""The Python binding against the C library itself and against torch.softmax.

    /usr/bin/python3 bench/py_bench.py [--quick] [--lib PATH] [--shapes LIST] [--rounds N]

Prints a markdown section (for BENCHMARKS.md) with, per shape (f32, softmax
forward along the last axis, scale 1, one thread unless --threads says otherwise):

  C           softmax_f32 from libsoftmax.so into a preallocated buffer, called
              through ctypes (the library's own time; ctypes adds ~0.3 us, which
              is why 1x10 is reported separately)
  binding out softmax.softmax(x, out=y): the extension, no allocation
  binding     softmax.softmax(x): the extension, result allocated
  binding tensor  softmax.softmax(t) on a tensor over the same memory, result allocated
  torch       torch.softmax(t, -1) on a tensor over the same memory, result allocated

and the per-call time of tiny inputs (1x10) through each Python entry point.

The machine is shared and its cores switch speed (DESIGN.md, "Measuring on
these machines"), so candidates are timed interleaved, A B C D A B C D ...,
each sample long enough (>= 2 ms); a sample during which the thread waited
for a core is retaken. The tables show medians, and ratios as medians of
per-round ratios. libsoftmax.so comes from --lib or the first of build-bench/,
build/ that has it; without it the C column says n/a.
"""

import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import softmax  # noqa: E402

try:
    import torch
except ImportError:  # the torch column says n/a
    torch = None

DEFAULT_SHAPES = "1x10,4096x10,65536x16,16384x128,4096x1000,1024x4096,64x32000,1x256000,16x1048576"
QUICK_SHAPES = "1x10,4096x10,16384x128,1024x4096"
SAMPLE_SECONDS = 0.002


def load_library(path):
    candidates = [path] if path else [os.path.join(ROOT, d, "libsoftmax.so") for d in ("build-bench", "build")]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            library = ctypes.CDLL(os.path.abspath(candidate))
            library.softmax_f32.restype = ctypes.c_int
            library.softmax_f32.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                                            ctypes.c_float]
            return library, candidate
    return None, None


def calls_per_sample(function):
    """How many calls make one sample of >= SAMPLE_SECONDS."""
    calls = 1
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            function()
        if time.perf_counter() - started >= SAMPLE_SECONDS:
            return calls
        calls *= 2


def run_delay_ns():
    """Nanoseconds this thread has waited for a core (the kernel's schedstat), or None."""
    try:
        with open("/proc/thread-self/schedstat") as schedstat:
            return int(schedstat.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None


SAMPLE_STATS = {"kept": 0, "dropped": 0}


def timed_sample(function, calls):
    """Seconds per call over `calls` calls, or None if the thread waited for a core meanwhile.

    Other jobs on this 2-core machine take the core away for milliseconds at
    a time; a sample that waited more than 2 % of its length is dropped.
    """
    waited_before = run_delay_ns()
    started = time.perf_counter()
    for _ in range(calls):
        function()
    elapsed = time.perf_counter() - started
    waited_after = run_delay_ns()
    if waited_before is not None and (waited_after - waited_before) * 1e-9 > 0.02 * elapsed:
        SAMPLE_STATS["dropped"] += 1
        return None
    SAMPLE_STATS["kept"] += 1
    return elapsed / calls


def interleaved_samples(candidates, rounds, attempts=20):
    """{name: [seconds per call, one per round]}: the candidates timed in turn, round after round.

    A dropped sample is retried (up to `attempts` times; then kept as it is),
    so that every round has one sample of each candidate for paired ratios.
    """
    plan = [(name, function, calls_per_sample(function)) for name, function in candidates]
    samples = {name: [] for name, _, _ in plan}
    for _ in range(rounds):
        for name, function, calls in plan:
            for _ in range(attempts):
                seconds = timed_sample(function, calls)
                if seconds is not None:
                    break
            else:
                started = time.perf_counter()
                for _ in range(calls):
                    function()
                seconds = (time.perf_counter() - started) / calls
            samples[name].append(seconds)
    return samples


def interleaved_medians(candidates, rounds):
    """{name: median seconds per call}."""
    return {name: statistics.median(values) for name, values in interleaved_samples(candidates, rounds).items()}


def paired_ratio(samples, numerator, denominator):
    """Median over rounds of numerator / denominator timed in the same round: a slow phase of
    the machine that spans a round cancels out."""
    return statistics.median(a / b for a, b in zip(samples[numerator], samples[denominator]))


def overhead_table(rounds):
    x = np.random.default_rng(0).normal(size=(1, 10)).astype(np.float32)
    y = np.empty_like(x)
    call, log = softmax.softmax, softmax.log_softmax
    candidates = [
        ("softmax.softmax(x)", lambda: call(x)),
        ("softmax.softmax(x, out=y)", lambda: call(x, out=y)),
        ("softmax.log_softmax(x)", lambda: log(x)),
        ("softmax.softmax(x, scale=0.5)", lambda: call(x, scale=0.5)),
    ]
    if torch is not None:
        t = torch.from_numpy(x)
        t_grad = t.clone().requires_grad_()
        candidates += [
            ("softmax.softmax(tensor)", lambda: call(t)),
            ("softmax.softmax(tensor requiring grad)", lambda: call(t_grad)),
            ("torch.softmax(tensor, -1)", lambda: torch.softmax(t, -1)),
        ]
    candidates.append(("numpy: np.empty_like(x) alone", lambda: np.empty_like(x)))
    medians = interleaved_medians(candidates, rounds)
    lines = ["| call (1x10 float32) | median per call (us) |", "| --- | ---: |"]
    lines += [f"| `{name}` | {seconds * 1e6:.2f} |" for name, seconds in medians.items()]
    return lines, medians


def shape_row(shape, library, rounds):
    rows, cols = shape
    x = np.random.default_rng(1).normal(size=(rows, cols)).astype(np.float32)
    y = np.empty_like(x)
    call = softmax.softmax
    candidates = [("binding out", lambda: call(x, out=y)), ("binding", lambda: call(x))]
    if library is not None:
        f = library.softmax_f32
        x_address, y_address = x.ctypes.data, y.ctypes.data
        candidates.insert(0, ("C", lambda: f(x_address, y_address, rows, cols, 1.0)))
    if torch is not None:
        t = torch.from_numpy(x)
        candidates.append(("binding tensor", lambda: call(t)))
        candidates.append(("torch", lambda: torch.softmax(t, -1)))
    return interleaved_samples(candidates, rounds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes and rounds")
    parser.add_argument("--lib", help="path of libsoftmax.so (default: build-bench/ or build/)")
    parser.add_argument("--shapes", help="comma-separated ROWSxCOLS list")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per shape (default 31, quick 11)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for every candidate (default 1: on a shared 2-core machine a parallel "
                             "region waits for whichever thread was descheduled)")
    args = parser.parse_args()
    rounds = args.rounds or (11 if args.quick else 31)
    shapes = [tuple(int(v) for v in s.split("x")) for s in (args.shapes or (QUICK_SHAPES if args.quick
                                                                             else DEFAULT_SHAPES)).split(",")]
    library, library_path = load_library(args.lib)
    # The same thread count everywhere: the binding's copy of the library,
    # the shared library behind the C column, and torch.
    softmax.set_num_threads(args.threads)
    if library is not None:
        library.softmax_set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)

    overhead_lines, overhead = overhead_table(rounds * 3)
    out = ["## Python binding (bench/py_bench.py)", "",
           f"Debian's /usr/bin/python3 {sys.version.split()[0]}, NumPy {np.__version__}, "
           f"PyTorch {torch.__version__ if torch else 'n/a'}; libsoftmax {softmax.version()} on the "
           f"{softmax.isa_name()} path, {args.threads} thread{'s' if args.threads > 1 else ''} for every candidate; "
           f"C column: {os.path.relpath(library_path, ROOT) if library_path else 'n/a'} through ctypes. "
           f"Candidates interleaved, medians of {rounds} samples (x3 for the 1x10 calls) of >= 2 ms each; "
           f"float32 softmax along the last axis, scale 1.", "",
           "### Per-call time on a 1x10 array (target: <= 1.5 us)", ""]
    out += overhead_lines
    out += ["", "### Against the C library and torch.softmax (targets at 1024x4096: binding out / C <= 1.1, "
            "torch / binding >= 1.5)", "",
            "| shape | C (us) | binding out (us) | binding (us) | binding tensor (us) | torch (us) | binding out / C "
            "| torch / binding | torch / binding tensor |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for shape in shapes:
        samples = shape_row(shape, library, rounds)
        m = {name: statistics.median(values) for name, values in samples.items()}

        def cell(name):
            return f"{m[name] * 1e6:.2f}" if name in m else "n/a"

        def ratio(a, b):
            return f"{paired_ratio(samples, a, b):.2f}" if a in m and b in m else "n/a"

        out.append(f"| {shape[0]}x{shape[1]} | {cell('C')} | {cell('binding out')} | {cell('binding')} | "
                   f"{cell('binding tensor')} | {cell('torch')} | {ratio('binding out', 'C')} | "
                   f"{ratio('torch', 'binding')} | {ratio('torch', 'binding tensor')} |")
        print(out[-1], file=sys.stderr)
    out += ["", "Times are medians; ratios are medians of the ratios of samples taken in the same round. "
            f"Samples during which the thread waited for a core (> 2 % of the sample) were dropped and retaken: "
            f"{SAMPLE_STATS['dropped']} dropped, {SAMPLE_STATS['kept']} kept. "
            "At 1x10 the C column includes ctypes' own call cost (about 0.3 us), so the binding can beat it; "
            "the per-call table above is the figure for small inputs.", ""]
    print("\n".join(out))
    tiny = overhead["softmax.softmax(x)"]
    print(f"per-call 1x10: {tiny * 1e6:.2f} us", file=sys.stderr)


if __name__ == "__main__":
    main()
