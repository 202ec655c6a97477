#!/usr/bin/python3
"""PyTorch on general_bench's cases: half-precision softmax, masked attention
as attention code writes it, and a transposed view.

    /usr/bin/python3 bench/torch_general_bench.py [--quick] [--threads N]

Prints markdown tables of median ns per element (time.perf_counter around
each call, outputs preallocated where PyTorch allows it). Run it with
Debian's interpreter, which has python3-torch.
"""

import argparse
import math
import statistics
import time

import torch


def median_ns_per_element(fn, elements, seconds):
    fn()  # warm-up: allocations, page faults
    samples = []
    deadline = time.perf_counter() + seconds
    while len(samples) < 5 or (time.perf_counter() < deadline and len(samples) < 200):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e9 / elements)
    return statistics.median(samples)


def cell(value):
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def try_time(fn, elements, seconds):
    try:
        return median_ns_per_element(fn, elements, seconds)
    except RuntimeError:  # e.g. no Half kernel on this CPU build
        return None


def half_types(seconds):
    print("| shape | torch f32 | torch bf16 | torch f16 | bf16 speed-up over f32 |")
    print("| --- | --- | --- | --- | --- |")
    for rows, cols in ((1024, 4096), (16, 1048576)):
        x = torch.randn(rows, cols) * 4
        out = torch.empty_like(x)
        xb, xh = x.bfloat16(), x.half()
        ob, oh = torch.empty_like(xb), torch.empty_like(xh)
        n = rows * cols
        f32 = try_time(lambda: torch.softmax(x, -1, out=out), n, seconds)
        bf16 = try_time(lambda: torch.softmax(xb, -1, out=ob), n, seconds)
        f16 = try_time(lambda: torch.softmax(xh, -1, out=oh), n, seconds)
        ratio = f"{f32 / bf16:.2f}" if f32 and bf16 else "n/a"
        print(f"| {rows}x{cols} | {cell(f32)} | {cell(bf16)} | {cell(f16)} | {ratio} |")


def attention(seconds):
    b, h, q, k = 8, 32, 512, 512
    n = b * h * q * k
    x = torch.randn(b, h, q, k)
    out = torch.empty_like(x)
    scale = 0.125
    causal = torch.triu(torch.ones(q, k, dtype=torch.bool), diagonal=1)
    additive = torch.zeros(q, k).masked_fill(causal, -math.inf)
    keep = torch.ones(b, 1, 1, k, dtype=torch.bool)
    for i in range(b):
        keep[i, ..., k - 40 * i:] = False
    qi = torch.arange(q).view(q, 1)
    kj = torch.arange(k).view(1, k)
    bias = -0.05 * (qi - kj).abs().float()
    slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / h) for i in range(h)]).view(1, h, 1, 1)
    alibi = slopes * kj.float()
    cases = [
        ("unmasked", "`softmax(x * s)`", lambda: torch.softmax(x * scale, -1, out=out)),
        ("causal", "`softmax((x * s).masked_fill(triu, -inf))`",
         lambda: torch.softmax((x * scale).masked_fill(causal, -math.inf), -1, out=out)),
        ("padding", "`softmax((x * s).masked_fill(~keep, -inf))`",
         lambda: torch.softmax((x * scale).masked_fill(~keep, -math.inf), -1, out=out)),
        ("mask-f32", "`softmax(x * s + mask)`, mask [512, 512] of 0 / -inf",
         lambda: torch.softmax(x * scale + additive, -1, out=out)),
        ("bias-f32", "`softmax(x * s + bias)`, finite bias [512, 512]",
         lambda: torch.softmax(x * scale + bias, -1, out=out)),
        ("alibi+causal", "`softmax(x * s + alibi + mask)`",
         lambda: torch.softmax(x * scale + alibi + additive, -1, out=out)),
    ]
    print("| case | what PyTorch runs | ns/element | / unmasked |")
    print("| --- | --- | --- | --- |")
    base = None
    for name, what, fn in cases:
        value = try_time(fn, n, seconds)
        base = value if base is None else base
        print(f"| {name} | {what} | {cell(value)} | {value / base:.2f} |" if value else f"| {name} | {what} | n/a | n/a |")


def strided(seconds):
    rows, cols = 1024, 4096
    x = torch.randn(rows, cols)
    xt = x.t().contiguous().t()  # same values, the axis strided
    out = torch.empty_like(x)
    n = rows * cols
    contiguous = try_time(lambda: torch.softmax(x, -1, out=out), n, seconds)
    transposed = try_time(lambda: torch.softmax(xt, -1, out=out), n, seconds)
    print("| layout | ns/element | / contiguous |")
    print("| --- | --- | --- |")
    print(f"| contiguous | {cell(contiguous)} | 1.00 |")
    print(f"| transposed view | {cell(transposed)} | {transposed / contiguous:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = 0.5 if args.quick else 2.0
    print(f"PyTorch {torch.__version__}, {args.threads} thread(s); median ns per element\n")
    print("#### PyTorch: bf16 and f16\n")
    half_types(seconds)
    print("\n#### PyTorch: masked attention 8 x 32 x 512 x 512, f32, s = 1/8\n")
    attention(seconds)
    print("\n#### PyTorch: a 1024 x 4096 view along its axis of 4096\n")
    strided(seconds)


if __name__ == "__main__":
    main()
