#!/usr/bin/python3
"""PyTorch's softmax, log-softmax and softmax backward on softmax_bench's shapes.

The companion of softmax_bench (same shapes, same units: median ns per
element). Run it with Debian's interpreter, which has python3-torch:

    /usr/bin/python3 bench/torch_bench.py [--quick] [--shapes LIST] [--ops LIST]
        [--threads N] [--scale S] [--samples N] [--probe-lib PATH] [--csv FILE]

What is timed is what a user calls, writing into preallocated tensors (the
out= overloads of aten::_softmax, aten::_log_softmax and
aten::_softmax_backward_data) so that, like the C anchors, no allocation is
timed. With --scale S != 1 the scale is a separate pass (torch.mul into a
scratch tensor), as a user writes softmax(x * S).

Sampling follows DESIGN.md "Measuring on these machines": one thread and N
threads interleaved (torch.set_num_threads() before each sample), each sample
>= 2 ms, and only samples between two fast-state probes count. The probe is
softmax_bench's own (libsoftmax_bench_probe.so, through ctypes), found in
build-bench/bench/ or given with --probe-lib; the probe runs on the calling
thread only.
"""

import argparse
import ctypes
import math
import os
import sys
import time

import torch

DEFAULT_SHAPES = ("1x10,4096x10,65536x16,16384x128,4096x1000,1024x4096,64x32000,1x32000,1x256000,"
                  "8x151936,16x1048576,1024x4096:axis0")
QUICK_SHAPES = "1x10,4096x10,16384x128,1024x4096,1x256000,1024x4096:axis0"
OPS = ("forward", "log", "backward")
OP_TITLES = {"forward": "softmax forward", "log": "log-softmax forward", "backward": "softmax backward"}
BYTES_PER_ELEMENT = {"forward": 8.0, "log": 8.0, "backward": 12.0}
FAST_STATE_TOLERANCE = 1.3  # as fast_state.h
FAST_STATE_MAX_WAIT = 0.05
TAIL_BELOW = 1e-30  # as checks.h
LOST_RELATIVE = 1e-3


class Probe:
    """The register-only probe of fast_state.c, or None when it is not built."""

    def __init__(self, path):
        self.library = None
        self.fastest = math.inf
        if path and os.path.exists(path):
            self.library = ctypes.CDLL(path)
            self.library.fast_state_probe_ns.restype = ctypes.c_double
            self.library.fast_state_calibrate.restype = ctypes.c_double
            self.library.fast_state_calibrate.argtypes = [ctypes.c_double]
            self.library.fast_state_run_delay_ns.restype = ctypes.c_double

    def run_delay(self):
        """ns the process's threads have waited for a core, or -1 (fast_state.h)."""
        return -1.0 if self.library is None else self.library.fast_state_run_delay_ns()

    def calibrate(self, seconds):
        if self.library is not None:
            self.fastest = min(self.fastest, self.library.fast_state_calibrate(seconds))

    def __call__(self):
        if self.library is None:
            return 0.0
        ns = self.library.fast_state_probe_ns()
        self.fastest = min(self.fastest, ns)
        return ns

    def is_fast(self, ns):
        return self.library is None or ns <= FAST_STATE_TOLERANCE * self.fastest


def parse_shape(text):
    axis = 1
    if text.endswith(":axis0"):
        axis, text = 0, text[: -len(":axis0")]
    rows, cols = (int(v) for v in text.split("x"))
    label = f"{rows}x{cols}" + (" axis 0" if axis == 0 else "")
    return rows, cols, axis, label


def make_call(op, x, y, dy, out, scratch, dim, scale):
    """A no-argument function running one call of the op into `out`."""
    if op == "backward":
        backward = torch.ops.aten._softmax_backward_data.out

        def call():
            backward(dy, y, dim, torch.float32, grad_input=out)
            if scale != 1.0:
                out.mul_(scale)

        return call
    forward = torch._softmax if op == "forward" else torch._log_softmax

    def call():
        source = x
        if scale != 1.0:
            torch.mul(x, scale, out=scratch)
            source = scratch
        forward(source, dim, False, out=out)

    return call


def time_calls(call, reps):
    start = time.perf_counter_ns()
    for _ in range(reps):
        call()
    return time.perf_counter_ns() - start


def choose_reps(call, sample_ns):
    one = max(time_calls(call, 1), 1)
    if one >= sample_ns:
        return 1
    reps = math.ceil(sample_ns / one)
    measured = max(time_calls(call, reps), 1)
    return max(reps, math.ceil(reps * sample_ns / measured)) if measured < sample_ns else reps


def measure(call, elements, thread_counts, settings, probe):
    """Medians over fast samples, thread counts interleaved; {threads: (median, kept, samples)}."""
    samples = {t: [] for t in thread_counts}
    reps = {}
    for t in thread_counts:
        torch.set_num_threads(t)
        call()
        reps[t] = choose_reps(call, settings.sample_ns)
    for round_index in range(settings.max_rounds):
        order = thread_counts[round_index % len(thread_counts):] + thread_counts[: round_index % len(thread_counts)]
        for t in order:
            torch.set_num_threads(t)
            # Untimed calls first: after a thread-count switch torch's team
            # (and an idle core) takes a while to get going.
            time_calls(call, max(1, reps[t] // 8))
            delay_before = probe.run_delay()
            before = probe()
            elapsed = time_calls(call, reps[t])
            after = probe()
            waited = delay_before >= 0 and probe.run_delay() - delay_before > FAST_STATE_MAX_WAIT * elapsed
            samples[t].append((elapsed / reps[t] / elements, max(before, after), waited))
        kept = min(sum(counts(sample, probe) for sample in samples[t]) for t in thread_counts)
        if round_index + 1 >= settings.min_kept and kept >= settings.min_kept:
            break
    return samples


def counts(sample, probe):
    """A sample counts if both probes were fast and no thread waited for a core."""
    _, probe_ns, waited = sample
    return probe.is_fast(probe_ns) and not waited


def summarize(samples, probe):
    fast = sorted(sample[0] for sample in samples if counts(sample, probe))
    values = fast or sorted(sample[0] for sample in samples)
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else 0.5 * (values[middle - 1] + values[middle])
    return median, len(fast), len(samples)


def float_ulp(value):
    """Spacing of float32 numbers at |value| (a normal float's ulp), elementwise."""
    exponent = torch.frexp(value.abs())[1]
    return torch.ldexp(torch.ones_like(value), (exponent - 24).to(torch.float64))


def max_ulp(op, out, x, dim, scale):
    """Max error in ulp against float64, as softmax_bench's accuracy table."""
    want = (x.double() * scale)
    want = torch.log_softmax(want, dim) if op == "log" else torch.softmax(want, dim)
    got = out.double()
    if op == "log":
        return float(((got - want).abs() / float_ulp(want.abs().clamp(min=1.0))).max()), 0
    head = want >= TAIL_BELOW
    tail = (want >= 1.1754943508222875e-38) & ~head
    error = (got - want).abs() / float_ulp(want)
    lost = (got - want).abs()[tail] > LOST_RELATIVE * want[tail]
    return float(error[head].max()), int(lost.sum())


def edge_rows():
    """Same edge rows as softmax_bench (one row of 1000, scale 1)."""
    torch.set_num_threads(1)
    base = (torch.arange(1000, dtype=torch.float32) * 0.37).remainder(20.0) - 10.0
    masked_all = torch.full((1000,), -math.inf)
    plus_inf = base.clone()
    plus_inf[7] = math.inf
    half = base.clone()
    half[1::2] = -math.inf
    rows = []
    for op in ("forward", "log"):
        function = torch.softmax if op == "forward" else torch.log_softmax
        verdicts = []
        for name, row in (("all", masked_all), ("inf", plus_inf), ("half", half)):
            y = function(row, 0)
            p = y.exp() if op == "log" else y
            if torch.isnan(y).any():
                verdicts.append("NaN")
                continue
            if (torch.isinf(y) & ((y > 0) if op == "log" else torch.ones_like(y, dtype=torch.bool))).any():
                verdicts.append("inf")
                continue
            masked = torch.isinf(row) & (row < 0) if name != "inf" else torch.arange(1000) != 7
            want_sum = 0.0 if name == "all" else 1.0
            ok = bool((p[masked] == 0).all()) and abs(float(p.double().sum()) - want_sum) < 1e-4
            verdicts.append("ok" if ok else "wrong")
        rows.append((op, verdicts))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes, shorter samples, >= 5 kept")
    parser.add_argument("--shapes", help="comma-separated RxC or RxC:axis0 (default: softmax_bench's)")
    parser.add_argument("--ops", default=",".join(OPS), help="subset of forward,log,backward")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the multi-thread count")
    parser.add_argument("--scale", type=float, default=1.0, help="inverse temperature (a separate torch.mul)")
    parser.add_argument("--samples", type=int, default=0, help="median of >= N kept samples (default 11)")
    parser.add_argument("--probe-lib", help="path of libsoftmax_bench_probe.so")
    parser.add_argument("--csv", help="also write the figures to this CSV file")
    parser.add_argument("--markdown", action="store_true", help="accepted for symmetry: the output is markdown")
    settings = parser.parse_args()
    settings.sample_ns = 1e6 if settings.quick else 2e6
    settings.min_kept = settings.samples or (5 if settings.quick else 11)
    settings.max_rounds = 3 * settings.min_kept
    shapes = [parse_shape(s) for s in (settings.shapes or (QUICK_SHAPES if settings.quick else DEFAULT_SHAPES)).split(",")]
    ops = [op for op in settings.ops.split(",") if op]
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        parser.error(f"unknown op(s) {unknown}")
    thread_counts = [1] + ([settings.threads] if settings.threads > 1 else [])

    here = os.path.dirname(os.path.abspath(__file__))
    probe_path = settings.probe_lib or os.path.join(here, "..", "build-bench", "bench", "libsoftmax_bench_probe.so")
    probe = Probe(probe_path)
    probe.calibrate(0.3 if settings.quick else 1.0)
    started = time.time()

    results = []  # (label, op, {threads: (median, kept, samples)}, ulp)
    for rows, cols, axis, label in shapes:
        print(f"[torch] {label}", file=sys.stderr, flush=True)
        generator = torch.Generator().manual_seed(0x5EED)
        dim = -1 if axis == 1 else 0
        x = torch.randn(rows, cols, generator=generator) * 10.0
        dy = torch.randn(rows, cols, generator=generator)
        y = torch.softmax(x * settings.scale, dim)
        out, scratch = torch.empty_like(x), torch.empty_like(x)
        for op in ops:
            call = make_call(op, x, y, dy, out, scratch, dim, settings.scale)
            torch.set_num_threads(1)
            call()
            ulp = max_ulp(op, out, x, dim, settings.scale) if op != "backward" else None
            raw = measure(call, rows * cols, thread_counts, settings, probe)
            results.append((label, op, raw, ulp))
            print(f"  {label:18} {op:8} " + " ".join(f"{t} thr {summarize(raw[t], probe)[0]:.3g}" for t in raw),
                  file=sys.stderr, flush=True)

    print_tables(results, ops, thread_counts, settings, probe)
    if settings.csv:
        write_csv(settings.csv, results, settings, probe)
    print(f"torch_bench: {time.time() - started:.0f} s", file=sys.stderr)


def print_tables(results, ops, thread_counts, settings, probe):
    many = thread_counts[-1]
    probe_note = (f"fastest probe {probe.fastest / 1e3:.1f} us, tolerance {FAST_STATE_TOLERANCE}x, "
                  f"no sample in which a thread waited for a core for > {FAST_STATE_MAX_WAIT:.0%} of it"
                  if probe.library is not None else "probe library not found: every sample kept")
    capability = next((line.split(":", 1)[1].strip() for line in torch.__config__.show().splitlines()
                       if "CPU capability usage" in line), "?")
    print(f"- PyTorch {torch.__version__} ({torch.__file__.split('/torch/')[0]}), CPU capability {capability}")
    print((f"- threads 1 and {many}, interleaved" if many > 1 else "- 1 thread") + f"; scale {settings.scale:g}"
          + (" (a separate torch.mul pass)" if settings.scale != 1.0 else "")
          + f"; samples >= {settings.sample_ns / 1e6:.0f} ms, median of >= {settings.min_kept} fast samples; "
          + probe_note + "\n")
    for op in ops:
        print(f"### PyTorch {OP_TITLES[op]}, scale {settings.scale:g}\n")
        header = ["shape", "torch 1 thread", "GB/s"]
        if many > 1:
            header += [f"torch {many} threads", "GB/s", f"{many} thr / 1 thr"]
        header += ["max ulp (1 thread)", "kept"]
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header))
        for label, row_op, raw, ulp in results:
            if row_op != op:
                continue
            cells = [label]
            summaries = {t: summarize(raw[t], probe) for t in raw}
            for t in thread_counts:
                median = summaries[t][0]
                cells += [f"{median:.3g}", f"{BYTES_PER_ELEMENT[op] / median:.1f}"]
            if many > 1:
                cells.append(f"{summaries[1][0] / summaries[many][0]:.2f}x")
            if ulp is None:
                cells.append("n/a")
            else:
                cells.append(f"{ulp[0]:.1f}" + (f" ({ulp[1]} lost)" if ulp[1] else ""))
            cells.append(f"{min(s[1] for s in summaries.values())}/{max(s[2] for s in summaries.values())}")
            print("| " + " | ".join(cells) + " |")
        print()
    print("### PyTorch edge rows (torch.softmax / torch.log_softmax, one row of 1000, scale 1)\n")
    print("| op | fully masked row (all -inf) | one +inf element | half the row -inf (a mask) |")
    print("| --- | --- | --- | --- |")
    for op, verdicts in edge_rows():
        print(f"| {op} | " + " | ".join(verdicts) + " |")
    print()


def write_csv(path, results, settings, probe):
    with open(path, "w") as f:
        f.write("op,threads,scale,shape,candidate,ns_per_element,gb_per_s,kept,samples,max_diff,max_ulp,"
                "lost,status\n")
        for label, op, raw, ulp in results:
            for t in raw:
                median, kept, count = summarize(raw[t], probe)
                ulp_cells = f"{ulp[0]:.3g},{ulp[1]}" if ulp is not None and t == 1 else ","
                f.write(f"{op},{t},{settings.scale:g},{label},torch,{median:.6g},{BYTES_PER_ELEMENT[op] / median:.4g},"
                        f"{kept},{count},,{ulp_cells},{'ok' if kept else 'slow-state only'}\n")


if __name__ == "__main__":
    main()
