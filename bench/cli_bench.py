#!/usr/bin/python3
"""Throughput of the `softmax` command, and the "Command-line tool" section of
BENCHMARKS.md.

    /usr/bin/python3 bench/cli_bench.py [--build build] [--mb 1024] [--runs 5] [--write]
    /usr/bin/python3 bench/cli_bench.py --slow-paths 100000 [--runs 5]

Needs a Release build of the command (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
&& cmake --build build) and python3-numpy. What it measures, all single-threaded
(--threads 1 and softmax_set_num_threads(1)), medians of interleaved runs
(A B A B ...: the machine is shared and its cores change speed, so candidates
are compared in the same stretch of time):

 1. text: --mb MiB of generated numeric text (rows of 10 numbers "%.6f", about
    10 bytes each) through `softmax FILE > /dev/null` (parse, softmax, format
    the text output) and `softmax FILE -o OUT.npy` on tmpfs (parse and
    softmax, binary output), in MB/s of input text; against awk (the same
    softmax per row, printf "%g") and numpy.loadtxt (parsing alone) on the
    first 128 MiB of the same file (both are far slower; MB/s are comparable,
    the smaller file is said in the table).
 2. .npy: a 1 GiB float32 array of shape (262144, 1024) through
    `softmax X.npy -o /dev/null` (memory-mapped input, whole process) against
    one softmax_f32 call on the same data already in memory (ctypes, output
    buffer already touched).

The input files live in a temporary directory under /dev/shm (tmpfs) when
present, so that disk speed does not enter; the page cache is warm for every
run (each file is read once before timing).
"""

import argparse
import ctypes
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(command, **kwargs):
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    return time.perf_counter() - start


def generate_text(path, megabytes):
    rng = np.random.default_rng(2026)
    rows = 200000
    with open(path, "wb") as f:
        block = None
        written = 0
        target = megabytes << 20
        while written < target:
            if block is None or written // len(block) % 4 == 0:
                # A few distinct blocks, so that the file is not one repeated page.
                lines = np.char.mod("%.6f", rng.standard_normal((rows, 10)) * 3)
                block = ("\n".join(" ".join(r) for r in lines) + "\n").encode()
            piece = block[: target - written]
            if len(piece) < len(block):
                piece = piece[: piece.rfind(b"\n") + 1]
                if not piece:
                    break
            f.write(piece)
            written += len(piece)
    return os.path.getsize(path)


AWK_SOFTMAX = ('{m=$1; for(i=2;i<=NF;i++) if($i>m) m=$i; s=0; for(i=1;i<=NF;i++){e[i]=exp($i-m); s+=e[i]} '
               'for(i=1;i<=NF;i++) printf "%g%s", e[i]/s, (i<NF?" ":"\\n")}')


def cpu_timed(command, **kwargs):
    """(wall seconds, CPU seconds of the child: user + system)."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def slow_paths(cli, rows, runs):
    """--axis 0 against the last axis on a rows x 1000 float32 .npy (A B A B ..., medians of wall
    and CPU time; the output goes to a .npy name for /dev/null), SciPy's softmax on the same
    array in memory, and --sample N --counts for growing N."""
    import scipy.special
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="softmax-cli-slow.", dir=base)
    try:
        x = np.random.default_rng(3).standard_normal((rows, 1000)).astype(np.float32)
        array = os.path.join(work, "x.npy")
        np.save(array, x)
        null_npy = os.path.join(work, "null.npy")
        os.symlink(os.devnull, null_npy)
        times = {"axis -1": [], "axis 0": [], "scipy axis -1": [], "scipy axis 0": []}
        for _ in range(runs):
            for axis in ("-1", "0"):
                times["axis " + axis].append(cpu_timed([cli, "-j", "1", array, "--axis", axis, "-o", null_npy]))
                start = time.perf_counter()
                scipy.special.softmax(x, axis=int(axis))
                elapsed = time.perf_counter() - start
                times["scipy axis " + axis].append((elapsed, elapsed))
        print(f"{rows} x 1000 float32 .npy, one thread, medians of {runs} interleaved runs (wall / CPU seconds):")
        for name, values in times.items():
            wall = statistics.median(v[0] for v in values)
            cpu = statistics.median(v[1] for v in values)
            print(f"  {name:14} {wall:7.3f} s  {cpu:7.3f} s")
        ratio = statistics.median(v[1] for v in times["axis 0"]) / statistics.median(v[1] for v in times["axis -1"])
        print(f"  --axis 0 / --axis -1 CPU time: {ratio:.2f}")
        print("--sample N --counts on one row of 5 logits:")
        for n in (10 ** 4, 10 ** 8, 10 ** 15):
            wall, cpu = cpu_timed([cli, "--sample", str(n), "--counts"], input=b"2 1 3 5 4\n",
                                  stdout=subprocess.DEVNULL)
            print(f"  N = {n:>16}: {wall:.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"))
    parser.add_argument("--mb", type=int, default=1024, help="MiB of text (default 1024)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    parser.add_argument("--slow-paths", type=int, metavar="ROWS", default=0,
                        help="instead: --axis 0 against the last axis on ROWS x 1000 float32, and --counts")
    args = parser.parse_args()

    cli = os.path.join(args.build, "cli", "softmax")
    if args.slow_paths:
        slow_paths(cli, args.slow_paths, args.runs)
        return
    library = os.path.join(args.build, "libsoftmax.so")
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="softmax-cli-bench.", dir=base)
    results = {}
    try:
        text = os.path.join(work, "rows.txt")
        size = generate_text(text, args.mb)
        small = os.path.join(work, "rows-small.txt")
        with open(text, "rb") as f:
            head = f.read(128 << 20)
        with open(small, "wb") as f:
            f.write(head[: head.rfind(b"\n") + 1])
        small_size = os.path.getsize(small)
        out_npy = os.path.join(work, "out.npy")
        subprocess.run(["cat", text], stdout=subprocess.DEVNULL, check=True)

        with open(os.devnull, "wb") as null:
            text_out, npy_out = [], []
            for _ in range(args.runs):
                text_out.append(timed([cli, "--threads", "1", text], stdout=null))
                npy_out.append(timed([cli, "--threads", "1", text, "-o", out_npy]))
                os.remove(out_npy)
            awk = shutil.which("mawk") or shutil.which("awk")
            awk_times = [timed([awk, AWK_SOFTMAX, small], stdout=null) for _ in range(max(1, args.runs // 2))]
            loadtxt = []
            for _ in range(max(1, args.runs // 2)):
                start = time.perf_counter()
                np.loadtxt(small, dtype=np.float64)
                loadtxt.append(time.perf_counter() - start)
        mb = lambda n, seconds: n / 1e6 / statistics.median(seconds)
        results["text"] = [
            ("`softmax FILE > /dev/null` (parse, softmax, text out)", size, mb(size, text_out), text_out),
            ("`softmax FILE -o out.npy` (parse, softmax, .npy out)", size, mb(size, npy_out), npy_out),
            (f"`{os.path.basename(awk)}` softmax per row, printf %g", small_size, mb(small_size, awk_times),
             awk_times),
            ("`numpy.loadtxt` (parsing only)", small_size, mb(small_size, loadtxt), loadtxt),
        ]
        os.remove(text)
        os.remove(small)

        # .npy: 1 GiB of float32.
        x = np.random.default_rng(1).standard_normal((262144, 1024), dtype=np.float32)
        array = os.path.join(work, "x.npy")
        np.save(array, x)
        subprocess.run(["cat", array], stdout=subprocess.DEVNULL, check=True)
        lib = ctypes.CDLL(library)
        lib.softmax_f32.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                                    ctypes.c_float]
        lib.softmax_set_num_threads(1)
        y = np.ones_like(x)
        # A .npy name for /dev/null: the command writes devices in place, so
        # this measures mapping, computing and formatting the .npy output
        # without a file system's cost of storing 1 GiB.
        null_npy = os.path.join(work, "null.npy")
        os.symlink(os.devnull, null_npy)
        out_npy = os.path.join(work, "y.npy")
        cli_times, lib_times, file_times, fresh_times = [], [], [], []
        for _ in range(args.runs + 2):
            cli_times.append(timed([cli, "--threads", "1", array, "-o", null_npy]))
            start = time.perf_counter()
            status = lib.softmax_f32(x.ctypes.data, y.ctypes.data, x.shape[0], x.shape[1], 1.0)
            lib_times.append(time.perf_counter() - start)
            assert status == 0
            file_times.append(timed([cli, "--threads", "1", array, "-o", out_npy]))
            os.remove(out_npy)
            start = time.perf_counter()
            fresh = np.empty_like(x)
            status = lib.softmax_f32(x.ctypes.data, fresh.ctypes.data, x.shape[0], x.shape[1], 1.0)
            fresh_times.append(time.perf_counter() - start)
            del fresh
        results["npy"] = (cli_times, lib_times, file_times, fresh_times, x.nbytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = render(results, args)
    print("\n".join(lines))
    if args.write:
        write_section(lines)


def render(results, args):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = ["## Command-line tool", "",
             "Generated by `/usr/bin/python3 bench/cli_bench.py --write` (separate from `scripts/bench.sh`; rerun it "
             "after regenerating this file). The `softmax` command of `build/` (Release), one thread, medians of "
             f"{args.runs} interleaved runs (individual times in seconds in brackets); "
             f"{os.cpu_count()} CPUs, {cpu}, {platform.release()}, commit {commit}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Files on tmpfs, page cache warm. "
             "The machine is shared and noisy: read ratios, not the last digit.", "",
             "### Text: rows of 10 numbers (`%.6f` of N(0, 9)), MB/s of input text (target >= 200)", "",
             "| program | input | MB/s | runs (s) |", "| --- | ---: | ---: | --- |"]
    for name, size, rate, times in results["text"]:
        lines.append(f"| {name} | {size / 2**20:.0f} MiB | {rate:.0f} | "
                     f"{', '.join(f'{t:.2f}' for t in times)} |")
    lines += ["", "awk and numpy.loadtxt read only the first 128 MiB of the same file (a 1 GiB run would take "
              "minutes); MB/s compare directly. Numbers are converted correctly rounded: a hand-written scanner "
              "takes up to 19 significant digits with a decimal exponent within +-22 (Clinger's exact fast path), "
              "strtod/strtof the rest; text output uses a %g formatter that scales by an exact power of ten and "
              "falls back to snprintf near rounding ties (tests/cli/test_numbers.c checks both against glibc).", ""]
    cli_times, lib_times, file_times, fresh_times, nbytes = results["npy"]
    c, l = statistics.median(cli_times), statistics.median(lib_times)
    f, fresh = statistics.median(file_times), statistics.median(fresh_times)
    row = lambda name, times: (f"| {name} | {statistics.median(times):.3f} | "
                               f"{nbytes / 1e9 / statistics.median(times):.2f} | "
                               f"{', '.join(f'{t:.3f}' for t in times)} |")
    lines += [f"### .npy: {nbytes / 2**30:.0f} GiB float32, shape (262144, 1024) (target: within 1.5x)", "",
              "| program | median (s) | GB/s of input | runs (s) |", "| --- | ---: | ---: | --- |",
              row("`softmax x.npy -o null.npy` (whole process: mapped input, .npy output to /dev/null)", cli_times),
              row("`softmax_f32` on the same data in memory (one call, output buffer already touched)", lib_times),
              row("`softmax x.npy -o y.npy` (1 GiB written to a new file on tmpfs)", file_times),
              row("`softmax_f32` into a newly allocated output buffer (page faults included)", fresh_times),
              "", f"Command / library call: **{c / l:.2f}x** (same work: read 1 GiB, write 1 GiB); writing a new "
              f"1 GiB file / filling a new buffer: {f / fresh:.2f}x.", ""]
    return lines


def write_section(lines):
    path = os.path.join(REPO, "BENCHMARKS.md")
    with open(path) as f:
        content = f.read()
    section = "\n".join(lines)
    match = re.search(r"^## Command-line tool\n.*?(?=^## |\Z)", content, flags=re.S | re.M)
    if match:
        content = content[: match.start()] + section + "\n" + content[match.end():]
    else:
        content = content.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(content.rstrip("\n") + "\n")


if __name__ == "__main__":
    sys.exit(main())
