"""The speed-goals table of bench/report.py on made-up figures whose ratios
are worked out by hand here.

    /usr/bin/python3 -m pytest bench/test_report.py -q -p no:cacheprovider
"""

import csv
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = ["op", "threads", "scale", "shape", "candidate", "ns_per_element", "kept", "max_ulp"]
ANCHORS = ("naive libm", "libmvec 3-pass", "oneDNN", "XNNPACK")


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({"scale": 1, "kept": 5, "max_ulp": "", **row})


def figure(op, threads, shape, candidate, ns, **extra):
    return {"op": op, "threads": threads, "shape": shape, "candidate": candidate, "ns_per_element": ns, **extra}


def goals_table(tmp_path, c_rows, torch_rows=()):
    write_csv(tmp_path / "softmax_bench.csv", c_rows)
    if torch_rows:
        write_csv(tmp_path / "torch_bench.csv", torch_rows)
    output = tmp_path / "out.md"
    subprocess.run([sys.executable, os.path.join(HERE, "report.py"), str(tmp_path), str(output), "--quick"], check=True)
    text = output.read_text()
    table = text[text.index("## Speed goals"):text.index("## libsoftmax and the C anchors")]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 7 and cells[0] not in ("goal", "---"):
            rows[cells[0]] = dict(zip(("target", "measured", "against", "status", "why", "kept"), cells[1:]))
    return rows, table


def test_every_goal_has_a_row_and_unmeasured_ones_say_so(tmp_path):
    rows, _ = goals_table(tmp_path, [figure("forward", 2, "1x10", "libsoftmax", 1.0)])
    expected = (
        [f"exact path, in cache: {s}" for s in ("16384x128", "1024x4096", "64x32000", "1x256000")]
        + [f"exact path, tiny rows: {s}" for s in ("4096x10", "65536x16")]
        + ["exact path, out of cache: 16x1048576", "exact path, accuracy: softmax, worst shape"]
        + [f"fast mode, in cache: {s}" for s in ("16384x128", "1024x4096", "64x32000", "1x256000")]
        + [f"fast mode, tiny rows: {s}" for s in ("4096x10", "65536x16")]
        + ["fast mode, out of cache: 16x1048576", "fast mode, accuracy: softmax, worst shape",
           "fast mode, accuracy: log-softmax, worst shape"]
        + [f"a single short row: {s}, {what}" for s in ("1x10", "1x100") for what in ("time per call", "against XNNPACK")]
        + ["non-last axis: 4096x1024 axis 0", "non-last axis: 1024x4096 axis 0"]
        + [f"threads: {s}, 2 threads over 1" for s in ("1x256000", "16x1048576", "1024x4096", "64x32000")]
        + ["threads: every input >= 1 MB, every op, worst, 2 threads over 1",
           "log-softmax time / softmax time, every shape, worst", "backward, out of cache: 16x1048576"])
    assert sorted(rows) == sorted(expected)
    assert rows["exact path, in cache: 16384x128"]["status"] == "n/a"
    assert rows["exact path, in cache: 16384x128"]["why"] == "not measured in this run"


def test_ratios_verdicts_and_reasons(tmp_path):
    c = []
    # 16384x128: fastest C anchor libmvec at 0.6; PyTorch faster at 0.5.
    for name, ns in zip(ANCHORS, (9.0, 0.6, 0.8, 0.9)):
        c.append(figure("forward", 1, "16384x128", name, ns))
    c.append(figure("forward", 1, "16384x128", "libsoftmax", 0.25, max_ulp=1.5))  # 0.5 / 0.25 = 2.00x: met
    c.append(figure("forward", 1, "16384x128", "libsoftmax fast", 0.4, max_ulp=5.5))  # 1.25x < 2: not met
    c.append(figure("log", 1, "16384x128", "libsoftmax fast", 0.4, max_ulp=2.0))
    # A single short row 1x10: ns per element x 10 = ns per call.
    c.append(figure("forward", 1, "1x10", "libsoftmax", 3.5))  # 35 ns <= 40: met
    c.append(figure("forward", 1, "1x10", "libsoftmax fast", 3.0))
    c.append(figure("forward", 1, "1x10", "XNNPACK", 2.8))  # 28 / 35 = 0.80x: not met
    # Out of cache: memcpy 0.3 over libsoftmax 0.6 = 0.50x.
    c.append(figure("forward", 1, "16x1048576", "memcpy", 0.3))
    c.append(figure("forward", 1, "16x1048576", "libsoftmax", 0.6))
    c.append(figure("forward", 1, "16x1048576", "libsoftmax fast", 0.4))  # 0.75x
    # Axis 0 against its own last axis: 1.5 / 1.0.
    c.append(figure("forward", 1, "4096x1024 axis 0", "libsoftmax", 1.5))
    c.append(figure("forward", 1, "4096x1024 axis 0", "libsoftmax last axis", 1.0))
    # Threads: 1x256000 (1 024 000 bytes counts): 1 thread 0.5, 2 threads 0.25 = 2.00x;
    # 1024x4096 log: 0.5 / 0.4 = 1.25x, the worst.
    c.append(figure("forward", 2, "1x256000", "libsoftmax", 0.25))
    c.append(figure("forward", 2, "1x256000", "libsoftmax 1 thread", 0.5))
    c.append(figure("log", 2, "1024x4096", "libsoftmax", 0.4))
    c.append(figure("log", 2, "1024x4096", "libsoftmax 1 thread", 0.5))
    # log-softmax over softmax: 1.2 (a clean row) and 2.0 (no clean sample: not judged).
    c.append(figure("log", 1, "4096x10", "libsoftmax", 1.2))
    c.append(figure("log", 1, "4096x10", "libsoftmax softmax", 1.0))
    c.append(figure("log", 1, "65536x16", "libsoftmax", 2.0, kept=0))
    c.append(figure("log", 1, "65536x16", "libsoftmax softmax", 1.0, kept=0))
    torch = [figure("forward", 1, "16384x128", "torch", 0.5)]
    rows, table = goals_table(tmp_path, c, torch)

    row = rows["exact path, in cache: 16384x128"]
    assert (row["measured"], row["against"], row["status"]) == ("2.00x", "PyTorch 0.5 ns/el", "met")
    row = rows["fast mode, in cache: 16384x128"]
    assert (row["measured"], row["status"]) == ("1.25x", "**not met**")
    assert row["why"].startswith("why: [")
    assert "best reached: 2.00x (exact path), 1.25x (fast mode)" in row["why"]
    reason = row["why"][len("why: ["):row["why"].index("]")]
    assert f"- [{reason}] The fast kernels" in table  # the paragraph of bench/goal_notes.md, listed once

    assert rows["exact path, accuracy: softmax, worst shape"]["status"] == "met"
    assert rows["fast mode, accuracy: softmax, worst shape"]["measured"] == "5.5 ulp (16384x128)"
    assert rows["fast mode, accuracy: softmax, worst shape"]["status"] == "**not met**"
    assert rows["fast mode, accuracy: log-softmax, worst shape"]["status"] == "met"

    row = rows["a single short row: 1x10, time per call"]
    assert (row["measured"], row["status"]) == ("35.0 ns", "met")
    row = rows["a single short row: 1x10, against XNNPACK"]
    assert (row["measured"], row["against"], row["status"]) == ("0.80x", "XNNPACK 28.0 ns/call", "**not met**")

    row = rows["exact path, out of cache: 16x1048576"]
    assert (row["measured"], row["status"]) == ("0.50x", "**not met**")
    assert "best reached: 0.50x (exact path), 0.75x (fast mode)" in row["why"]
    assert rows["fast mode, out of cache: 16x1048576"]["status"] == "met"

    row = rows["non-last axis: 4096x1024 axis 0"]
    assert (row["measured"], row["status"]) == ("1.50x", "**not met**")
    assert row["against"] == "libsoftmax on 1024x4096 (last axis), same run"

    assert rows["threads: 1x256000, 2 threads over 1"]["measured"] == "2.00x"
    assert rows["threads: 1x256000, 2 threads over 1"]["status"] == "met"
    row = rows["threads: every input >= 1 MB, every op, worst, 2 threads over 1"]
    assert row["measured"] == "1.25x (log, 1024x4096); 1 of 2 below"
    assert row["why"].startswith("why: [")  # bench/goal_notes.md's "threads" paragraph

    row = rows["log-softmax time / softmax time, every shape, worst"]
    assert row["measured"] == "1.20x (4096x10); 1 of 1 above (1 without a clean sample left out)"
    assert row["status"] == "**not met** (1 noisy not judged)"
