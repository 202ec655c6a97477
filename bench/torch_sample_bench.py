#!/usr/bin/python3
"""PyTorch's sampling pipelines next to libsoftmax's softmax_sample(), interleaved.

The companion of sample_bench (same vocabularies, batches, temperature and
logit distribution: 3 * N(0, 1), T = 0.8; median microseconds per drawn
token). Run it with Debian's interpreter, which has python3-torch:

    /usr/bin/python3 bench/torch_sample_bench.py [--quick] [--threads N]
        [--lib build-bench/libsoftmax.so] [--csv FILE]

PyTorch pipelines, as users write them:
  multinomial     torch.multinomial(torch.softmax(l / T, -1), 1)
  topk + top-p    torch.topk(l, 40), softmax of the 40 / T, cumsum, cut at 0.95, multinomial
  sort + top-p    torch.sort(l / T) of the whole row, softmax, cumsum, cut at 0.95,
                  softmax again, multinomial (the Hugging Face top-p warper)
  argmax          torch.argmax(l, -1)
With --lib, libsoftmax's softmax_sample() (temperature only, top-k 40, top-p
0.95 without top-k, greedy) runs in the same loop through ctypes, so the
ratios are measured side by side on the same tensors.
"""

import argparse
import ctypes
import statistics
import time

import torch

VOCABULARIES = (32000, 128256, 151936, 262144)
BATCHES = (1, 64)
TEMPERATURE = 0.8
TOP_P = 0.95
TOP_K = 40


class SamplerParams(ctypes.Structure):
    """softmax_sampler_params (include/softmax.h)."""

    _fields_ = [("temperature", ctypes.c_double), ("top_k", ctypes.c_int64), ("top_p", ctypes.c_double),
                ("min_p", ctypes.c_double), ("seed", ctypes.c_uint64), ("reserved", ctypes.c_uint64 * 4)]


def torch_pipelines():
    def multinomial(logits):
        return torch.multinomial(torch.softmax(logits / TEMPERATURE, -1), 1)

    def topk_top_p(logits):
        values, indices = torch.topk(logits, TOP_K, dim=-1)
        probs = torch.softmax(values / TEMPERATURE, -1)
        cumulative = torch.cumsum(probs, -1)
        probs[(cumulative - probs) > TOP_P] = 0.0
        return torch.gather(indices, -1, torch.multinomial(probs, 1))

    def sort_top_p(logits):
        ordered, indices = torch.sort(logits / TEMPERATURE, descending=True, dim=-1)
        probs = torch.softmax(ordered, -1)
        cumulative = torch.cumsum(probs, -1)
        ordered[(cumulative - probs) > TOP_P] = -float("inf")
        choice = torch.multinomial(torch.softmax(ordered, -1), 1)
        return torch.gather(indices, -1, choice)

    def argmax(logits):
        return torch.argmax(logits, -1)

    return [("torch multinomial", multinomial), ("torch topk+top-p", topk_top_p),
            ("torch sort+top-p", sort_top_p), ("torch argmax", argmax)]


def library_pipelines(path, threads):
    if not path:
        return []
    library = ctypes.CDLL(path)
    library.softmax_set_num_threads(threads)
    library.softmax_sample.restype = ctypes.c_int
    library.softmax_sample.argtypes = [ctypes.POINTER(SamplerParams), ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                       ctypes.c_size_t, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_void_p, ctypes.c_void_p]
    indices = torch.empty(64, dtype=torch.int64)
    steps = [0]

    def make(temperature, top_k, top_p):
        params = SamplerParams(temperature, top_k, top_p, 0.0, 42)

        def run(logits):
            steps[0] += 1
            status = library.softmax_sample(ctypes.byref(params), 1, logits.data_ptr(), logits.shape[0],
                                            logits.shape[1], steps[0], None, indices.data_ptr(), None, None)
            if status != 0:
                raise RuntimeError(f"softmax_sample failed: {status}")
            return indices

        return run

    return [("libsoftmax temperature", make(TEMPERATURE, 0, 1.0)),
            ("libsoftmax top-k 40", make(TEMPERATURE, TOP_K, 1.0)),
            ("libsoftmax top-p 0.95", make(TEMPERATURE, 0, TOP_P)),
            ("libsoftmax greedy", make(0.0, 0, 1.0))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lib", default="", help="libsoftmax.so to time side by side")
    parser.add_argument("--csv", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(2024)
    pipelines = torch_pipelines() + library_pipelines(args.lib, args.threads)
    names = [name for name, _ in pipelines]
    rows_out = []
    print(f"PyTorch {torch.__version__} sampling pipelines, f32 logits 3*N(0,1), T = {TEMPERATURE}, "
          f"{args.threads} thread(s); median microseconds per token (pipelines interleaved)\n")
    header = "| vocab | batch | " + " | ".join(names) + " |"
    if args.lib:
        header += " sort+top-p / libsoftmax top-p | multinomial / libsoftmax temperature | argmax / libsoftmax greedy |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for vocab in VOCABULARIES:
        for batch in BATCHES:
            logits = (3.0 * torch.randn(batch, vocab, dtype=torch.float32)).contiguous()
            work = vocab * batch * 2e-8  # rough seconds of the slowest pipeline
            rounds = max(5, min(101, int((0.3 if args.quick else 1.5) / max(work, 1e-5))))
            samples = {name: [] for name in names}
            for _, run in pipelines:  # warm-up
                run(logits)
            for _ in range(rounds):
                for name, run in pipelines:
                    start = time.perf_counter()
                    run(logits)
                    samples[name].append((time.perf_counter() - start) / batch * 1e6)
            medians = {name: statistics.median(values) for name, values in samples.items()}
            line = f"| {vocab} | {batch} | " + " | ".join(f"{medians[name]:.1f}" for name in names) + " |"
            if args.lib:
                line += (f" {medians['torch sort+top-p'] / medians['libsoftmax top-p 0.95']:.0f}x |"
                         f" {medians['torch multinomial'] / medians['libsoftmax temperature']:.0f}x |"
                         f" {medians['torch argmax'] / medians['libsoftmax greedy']:.1f}x |")
            print(line, flush=True)
            for name in names:
                rows_out.append((vocab, batch, name, medians[name], rounds))
    if args.csv:
        with open(args.csv, "w", encoding="utf-8") as out:
            out.write("vocab,batch,pipeline,median_us_per_token,samples\n")
            for vocab, batch, name, median, rounds in rows_out:
                out.write(f"{vocab},{batch},{name},{median:.3f},{rounds}\n")


if __name__ == "__main__":
    main()
