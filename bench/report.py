#!/usr/bin/python3
"""Writes BENCHMARKS.md from the outputs that scripts/bench.sh collects.

    report.py RESULTS_DIR OUTPUT.md [--quick]

RESULTS_DIR holds machine.txt, softmax_bench.{md,csv},
softmax_bench_scale.{md,csv}, torch_bench.{md,csv} and
torch_bench_scale.{md,csv} (the torch files may be missing). Nothing here
measures: every figure comes from those files, and the speed-goals table only
takes ratios of them; the reason given for a goal not met comes from
bench/goal_notes.md (analysis kept by hand).
"""

import csv
import os
import sys

ANCHORS = ("naive libm", "libmvec 3-pass", "oneDNN", "XNNPACK")

HOW_TO_READ = """\
Every figure is a median in **ns per element** (lower is better) of samples
taken while the cores ran in their fast state: the machine is a shared VM whose
cores switch between a fast and a ~1.7x slower state, so each sample (>= 2 ms
of repeated calls) sits between two short register-only probes and counts only
if both ran at (within 1.3x of) the fastest probe speed and no thread of the
process spent more than 5% of the sample waiting for a core that another job
held (the kernel's schedstat says); "kept" gives the fewest such samples of any
candidate in the row / the rounds taken (a `*` after a figure means none was
seen and the median is over all samples: treat it as noise, and so the ratios
built on it, which carry the `*` too). In softmax_bench's tables
all candidates of a row ran **in one process, on the same buffers,
interleaved** (A B C ... A B C ...), so the ratios between them are the
trustworthy part; absolute figures move with the machine's state.
**memcpy** copies the bytes the operation must move (forward: read x + write y,
8 bytes per element; backward: read y and dy + write dx, 12 bytes); it is the
limit, and **GB/s** counts those same bytes. **lib / memcpy** is libsoftmax's
fraction of memcpy throughput (1.0 = at the memory limit). **lib speed-up vs
best anchor** is the fastest of naive libm, libmvec 3-pass, oneDNN and XNNPACK
divided by libsoftmax (> 1: libsoftmax is faster). **same-run ratios** are
libsoftmax against itself, measured interleaved in the same row: N threads over
1 thread, log-softmax over softmax, axis 0 over the last axis of the transposed
shape. **check** compares each anchor's output with libsoftmax's (max abs
difference, relative for log-softmax above 1) and names any anchor off by more
than 1e-5: a misconfigured anchor shows there. "n/a": the anchor has no such
operation (XNNPACK has only forward softmax along the last axis) or was not
built. In the multi-thread tables every candidate uses that many threads
(memcpy splits copies of 1 MiB or more; the loops split rows or columns with
OpenMP; oneDNN uses its OpenMP runtime; XNNPACK a pthreadpool). The anchors have
no scale argument: at scale != 1 oneDNN, XNNPACK and PyTorch pay a separate
multiply pass (as a user would), the hand-written loops fold the scale in, and
libsoftmax fuses it. PyTorch runs in its own process (Debian's python3-torch,
preallocated outputs), with the same probe filter, so its ratios to the C
table are across runs: read them with more caution. The single-short-row table
gives the forward medians of one-row shapes in **ns per call** (ns per element
times the row length): the latency one call pays. The accuracy tables give the
max error in ulp against a double-precision reference from the same inputs
(softmax over outputs >= 1e-30; "N lost" counts smaller normal outputs returned
as 0 or off by more than 0.1%), for the anchors, libsoftmax's default path and
its fast mode (`SOFTMAX_FLAG_FAST`), and the edge rows show what each candidate
returns for the numerics contract's masked and infinite rows."""


SPEED_GOALS_INTRO = """\
Each goal from the figures of the tables below, measured side by side in one
run (ratios > 1 are in libsoftmax's favour unless the target says <=). "The
fastest anchor" is the fastest of naive libm, the libmvec 3-pass loop, oneDNN,
XNNPACK and PyTorch (1 thread, its own process) on that shape, in ns per
element; "exact path" is the default call (`softmax_f32`, the numerics
contract), "fast mode" the same with `SOFTMAX_FLAG_FAST`. For a goal not met,
the last column points to its reason (listed under the table: analysis kept
in `bench/goal_notes.md`) and gives the figures this run reached."""


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def read_csv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def without_edge_rows(markdown):
    """The scale runs repeat the (scale-independent) edge-row table: drop it."""
    marker = markdown.find("### Edge rows")
    if marker < 0:
        marker = markdown.find("### PyTorch edge rows")
    return markdown[:marker].rstrip() + "\n" if marker >= 0 else markdown


class Results:
    """The CSV figures by (op, threads, shape, candidate); remembers which
    figures a goal used, so that its row can say how many samples they kept."""

    def __init__(self, c_rows, torch_rows):
        self.c, self.kept = {}, {}
        for r in c_rows + [dict(r, candidate="torch") for r in torch_rows]:
            if r["ns_per_element"]:
                key = (r["op"], int(r["threads"]), r["shape"], r["candidate"])
                self.c[key] = float(r["ns_per_element"])
                self.kept[key] = int(r["kept"])
        self.ulp = {(r["op"], r["shape"], r["candidate"]): float(r["max_ulp"]) for r in c_rows if r.get("max_ulp")}
        self.used = []

    def ns(self, op, threads, shape, candidate):
        key = (op, threads, shape, candidate)
        if key in self.c:
            self.used.append(key)
        return self.c.get(key)

    def fewest_kept(self):
        """Fewest samples kept among the figures used since the last call."""
        fewest = min((self.kept[key] for key in self.used), default=None)
        self.used = []
        return "n/a" if fewest is None else str(fewest)

    def best_anchor(self, op, threads, shape):
        found = [(self.c[(op, threads, shape, a)], a) for a in ANCHORS + ("torch",) if (op, threads, shape, a) in self.c]
        if not found:
            return None, None
        ns, name = min(found)
        self.used.append((op, threads, shape, name))
        return ns, name

    def threads(self):
        return max([t for (_, t, _, c) in self.c if c != "torch"] or [1])


def verdict(value, goal, higher_is_better=True):
    if value is None:
        return "n/a"
    return "met" if (value >= goal if higher_is_better else value <= goal) else "**not met**"


def fmt(value, suffix="x"):
    if value is None:
        return "n/a"
    return f"{value:.1f}{suffix}" if suffix == " ns" else f"{value:.2f}{suffix}"


def ns_text(value):
    return fmt(value, " ns")


def ratio(a, b):
    return None if a is None or b is None else a / b


def elements(shape):
    rows, cols = shape.split(" ")[0].split("x")
    return int(rows) * int(cols)


def transposed(shape):
    """The last-axis shape an axis-0 call is compared with: "4096x1024 axis 0" -> "1024x4096"."""
    rows, cols = shape.split(" ")[0].split("x")
    return f"{cols}x{rows}"


# The speed goals. Shapes are softmax_bench's labels; every one of them is in
# its quick shape list too, so that a smoke run fills the whole table.
IN_CACHE = ("16384x128", "1024x4096", "64x32000", "1x256000")
TINY_ROWS = ("4096x10", "65536x16")
OUT_OF_CACHE = "16x1048576"
SMALL_ROWS = ("1x10", "1x100")
SMALL_ROW_NS = 40.0
AXIS0 = ("4096x1024 axis 0", "1024x4096 axis 0")
THREAD_SHAPES = ("1x256000", "16x1048576", "1024x4096", "64x32000")
# 1x256000 f32 (1 024 000 bytes) counts as a 1 MiB input.
THREAD_MIN_BYTES = 1_000_000
# The accuracy bounds stated in include/softmax.h: the numerics contract
# (SIMD paths) and "Fast mode".
EXACT_BOUND_ULP = 3.0
FAST_BOUND_ULP = 5.0

NOTES_FILE = "bench/goal_notes.md"


def read_notes(path):
    """bench/goal_notes.md: a "## key" heading (a goal's key, or key and shape)
    then the reason, one paragraph; HTML comments and text before the first
    heading are skipped."""
    notes, key, lines, comment = {}, None, [], False
    for line in read(path).splitlines():
        stripped = line.strip()
        if comment or stripped.startswith("<!--"):
            comment = "-->" not in stripped
            continue
        if stripped.startswith("## "):
            if key is not None:
                notes[key] = " ".join(lines).strip()
            key, lines = stripped[3:].strip(), []
        elif key is not None and stripped:
            lines.append(stripped)
    if key is not None:
        notes[key] = " ".join(lines).strip()
    return notes


class Goals:
    """The rows of the speed-goals table, each built from figures of the tables
    below: (goal, target, measured, against, status, why not / best figure,
    fewest samples kept)."""

    def __init__(self, res, notes):
        self.res, self.notes, self.rows = res, notes, []
        self.reasons = []  # the notes cited, in order: the list under the table

    def add(self, goal, target, measured, against, status, key, shape="", best="", samples=True):
        kept = self.res.fewest_kept() if samples else "-"
        if kept == "0" and status != "n/a":
            status += " (no clean sample: noise)"
        why = ""
        if status == "n/a":
            why = "not measured in this run"
        elif status.startswith("**not met**"):
            note = self.notes.get(f"{key} {shape}".strip()) or self.notes.get(key)
            if note:
                if note not in self.reasons:
                    self.reasons.append(note)
                why = f"why: [{self.reasons.index(note) + 1}]"
            else:
                why = f"reason not analysed yet (no \"{key}\" paragraph in {NOTES_FILE})"
            if best:
                why += f"; best reached: {best}"
        self.rows.append((goal, target, measured, against, status, why, kept))


def goal_rows(res, notes):
    g = Goals(res, notes)
    lib, fast = "libsoftmax", "libsoftmax fast"
    many = res.threads()

    def over_anchors(shape, candidate):
        best, name = res.best_anchor("forward", 1, shape)
        value = ratio(best, res.ns("forward", 1, shape, candidate))
        shown = "PyTorch" if name == "torch" else name
        return value, (f"{shown} {best:.3g} ns/el" if best is not None else "n/a")

    def modes_reached(measure, suffix="x"):
        """The figure each libsoftmax mode reached on this goal's measure(candidate)."""
        mark = len(res.used)
        found = [(measure(candidate), mode) for candidate, mode in ((lib, "exact path"), (fast, "fast mode"))]
        del res.used[mark:]  # the row's own figures only count for its samples-kept cell
        return ", ".join(f"{fmt(v, suffix)} ({mode})" for v, mode in found if v is not None)

    def anchor_goals(key, title, shapes, goal, candidate):
        for shape in shapes:
            value, against = over_anchors(shape, candidate)
            best = modes_reached(lambda c: over_anchors(shape, c)[0])
            g.add(f"{title}: {shape}", f">= {goal:g}x the fastest anchor", fmt(value), against,
                  verdict(value, goal), key, shape, best)

    def over_memcpy(op, shape, candidate):
        copy = res.ns(op, 1, shape, "memcpy")
        return ratio(copy, res.ns(op, 1, shape, candidate)), (f"memcpy {copy:.3g} ns/el" if copy else "n/a")

    def memcpy_goal(key, title, op, shape, goal, candidate):
        value, against = over_memcpy(op, shape, candidate)
        best = modes_reached(lambda c: over_memcpy(op, shape, c)[0]) if op == "forward" else ""
        g.add(f"{title}: {shape}", f">= {goal:g}x memcpy throughput", fmt(value), against, verdict(value, goal),
              key, shape, best)

    def same_run(op, threads, shape, numerator, denominator):
        return ratio(res.ns(op, threads, shape, numerator), res.ns(op, threads, shape, denominator))

    def worst(pairs, numerator, denominator, largest):
        """The (value, op, shape) with the largest (or smallest) same-run ratio over
        the given (op, threads, shape), among the pairs with clean samples if any
        (a noisy one is no verdict); only the chosen figures count as used. Also
        the values judged and how many noisy pairs were left out."""
        found, clean = [], []
        for op, threads, shape in pairs:
            value = same_run(op, threads, shape, numerator, denominator)
            if value is not None:
                found.append((value, op, threads, shape))
                if res.fewest_kept() != "0":
                    clean.append((value, op, threads, shape))
            res.used = []
        chosen = clean or found
        if not chosen:
            return None, None, None, [], 0
        value, op, threads, shape = max(chosen) if largest else min(chosen)
        same_run(op, threads, shape, numerator, denominator)
        return value, op, shape, [v for v, *_ in chosen], len(found) - len(chosen)

    def count_text(values, beyond, word, left_out):
        text = f"{sum(beyond(v) for v in values)} of {len(values)} {word}"
        return text + (f" ({left_out} without a clean sample left out)" if left_out else "")

    def judged_status(status, left_out):
        return f"{status} ({left_out} noisy not judged)" if left_out and status != "n/a" else status

    # The exact path: the contract unchanged (softmax_f32 and friends).
    anchor_goals("exact-in-cache", "exact path, in cache", IN_CACHE, 1.5, lib)
    anchor_goals("exact-tiny-rows", "exact path, tiny rows", TINY_ROWS, 3.0, lib)
    memcpy_goal("exact-out-of-cache", "exact path, out of cache", "forward", OUT_OF_CACHE, 0.6, lib)
    ulps = [(u, s) for (op, s, c), u in res.ulp.items() if c == lib and op == "forward"]
    u, s = max(ulps) if ulps else (None, None)
    g.add("exact path, accuracy: softmax, worst shape", f"<= {EXACT_BOUND_ULP:g} ulp (SIMD paths)",
          f"{u:.1f} ulp ({s})" if u is not None else "n/a", "double reference (outputs >= 1e-30)",
          verdict(u, EXACT_BOUND_ULP, False), "exact-accuracy", samples=False)

    # The fast mode (SOFTMAX_FLAG_FAST).
    anchor_goals("fast-in-cache", "fast mode, in cache", IN_CACHE, 2.0, fast)
    anchor_goals("fast-tiny-rows", "fast mode, tiny rows", TINY_ROWS, 4.0, fast)
    memcpy_goal("fast-out-of-cache", "fast mode, out of cache", "forward", OUT_OF_CACHE, 0.65, fast)
    for op, what, unit in (("forward", "softmax", "ulp"), ("log", "log-softmax", "ulp of max(|y|, 1)")):
        ulps = [(u, s) for (o, s, c), u in res.ulp.items() if c == fast and o == op]
        u, s = max(ulps) if ulps else (None, None)
        g.add(f"fast mode, accuracy: {what}, worst shape", f"<= {FAST_BOUND_ULP:g} {unit} (the stated bound)",
              f"{u:.1f} ulp ({s})" if u is not None else "n/a", "double reference", verdict(u, FAST_BOUND_ULP, False),
              "fast-accuracy", samples=False)

    # A single short row: ns per call of the default path.
    def per_call(shape, candidate):
        ns = res.ns("forward", 1, shape, candidate)
        return None if ns is None else ns * elements(shape)

    for shape in SMALL_ROWS:
        call = per_call(shape, lib)
        g.add(f"a single short row: {shape}, time per call", f"<= {SMALL_ROW_NS:g} ns per call",
              ns_text(call), "(absolute)", verdict(call, SMALL_ROW_NS, False), "small-row-latency", shape,
              modes_reached(lambda c: per_call(shape, c), " ns"))
        xnnpack = per_call(shape, "XNNPACK")
        value = ratio(xnnpack, per_call(shape, lib))
        g.add(f"a single short row: {shape}, against XNNPACK", ">= 1x XNNPACK (ahead of it)", fmt(value),
              f"XNNPACK {xnnpack:.1f} ns/call" if xnnpack else "n/a", verdict(value, 1.0), "small-row-vs-xnnpack",
              shape, modes_reached(lambda c: ratio(xnnpack, per_call(shape, c))))

    # Non-last axis against the last axis of the same data, same run.
    for shape in AXIS0:
        value = same_run("forward", 1, shape, lib, "libsoftmax last axis")
        g.add(f"non-last axis: {shape}", "<= 1.2x own last-axis time", fmt(value),
              f"libsoftmax on {transposed(shape)} (last axis), same run", verdict(value, 1.2, False), "axis0", shape)

    # Threads: N threads over 1, same run.
    if many > 1:
        for shape in THREAD_SHAPES:
            value = same_run("forward", many, shape, "libsoftmax 1 thread", lib)
            g.add(f"threads: {shape}, {many} threads over 1", ">= 1.8x", fmt(value),
                  "libsoftmax on 1 thread, same run", verdict(value, 1.8), "threads", shape)
        pairs = sorted({(op, t, s) for (op, t, s, c) in res.c
                        if t == many and c == lib and elements(s) * 4 >= THREAD_MIN_BYTES})
        value, op, shape, judged, left_out = worst(pairs, "libsoftmax 1 thread", lib, largest=False)
        counts = count_text(judged, lambda v: v < 1.8, "below", left_out)
        g.add(f"threads: every input >= 1 MB, every op, worst, {many} threads over 1", ">= 1.8x",
              f"{fmt(value)} ({op}, {shape}); {counts}" if value else "n/a",
              "libsoftmax on 1 thread, same run", judged_status(verdict(value, 1.8), left_out), "threads", shape or "")
    else:
        g.add("threads: 2 threads over 1", ">= 1.8x", "n/a", "one core only", "n/a", "threads")

    # log-softmax against softmax, same run, every shape.
    pairs = sorted({(op, 1, s) for (op, t, s, c) in res.c if op == "log" and t == 1 and c == lib})
    value, op, shape, judged, left_out = worst(pairs, lib, "libsoftmax softmax", largest=True)
    counts = count_text(judged, lambda v: v > 1.1, "above", left_out)
    g.add("log-softmax time / softmax time, every shape, worst", "<= 1.1x",
          f"{fmt(value)} ({shape}); {counts}" if value else "n/a", "softmax, same run",
          judged_status(verdict(value, 1.1, False), left_out), "log-softmax", shape or "")

    memcpy_goal("backward-out-of-cache", "backward, out of cache", "backward", OUT_OF_CACHE, 0.8, lib)
    return g.rows, g.reasons


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    results, output = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv[3:]
    res = Results(read_csv(os.path.join(results, "softmax_bench.csv")), read_csv(os.path.join(results, "torch_bench.csv")))
    machine = []
    for line in read(os.path.join(results, "machine.txt")).splitlines():
        key, _, value = line.partition(":")
        if value.strip():
            machine.append(f"{key.strip()}: {' '.join(value.split())}")

    out = ["# Benchmarks", ""]
    out.append("Generated by `bash scripts/bench.sh` (one command: builds `build-bench/`, runs `softmax_bench` and "
               "`bench/torch_bench.py`, writes this file); do not edit by hand. Raw markdown and CSV: "
               "`build-bench/bench-results/`." + (" **Quick smoke run: few samples, few shapes.**" if quick else ""))
    out += ["", "## Machine", ""] + [f"- {line}" for line in machine]
    out += ["", "## How to read", "", HOW_TO_READ, ""]
    notes = read_notes(os.path.join(os.path.dirname(os.path.abspath(__file__)), "goal_notes.md"))
    out += ["## Speed goals (single thread unless stated)", "", SPEED_GOALS_INTRO, "",
            "| goal | target | measured | against | status | why not / best figure | fewest samples kept |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    rows, reasons = goal_rows(res, notes)
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    if reasons:
        out += ["", "Why a goal is not met (analysis, from `bench/goal_notes.md`):", ""]
        out += [f"- [{number}] {reason}" for number, reason in enumerate(reasons, 1)]
    out += ["", "## libsoftmax and the C anchors (one process, interleaved)", ""]
    out.append(read(os.path.join(results, "softmax_bench.md")).rstrip())
    scale = read(os.path.join(results, "softmax_bench_scale.md"))
    if scale:
        out += ["", "## With a temperature: scale 0.5, forward, 1 thread", "",
                "libsoftmax fuses the scale; oneDNN and XNNPACK run on a pre-scaled copy (one more pass); the "
                "accuracy table shows what the pre-scaling costs them.", "", without_edge_rows(scale).rstrip()]
    torch = read(os.path.join(results, "torch_bench.md"))
    if torch:
        out += ["", "## PyTorch (separate process, same shapes and units)", "", torch.rstrip()]
    torch_scale = read(os.path.join(results, "torch_bench_scale.md"))
    if torch_scale:
        out += ["", "PyTorch at scale 0.5: `softmax(x * 0.5)`, the multiply a separate pass.", "",
                without_edge_rows(torch_scale).rstrip()]
    with open(output, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
