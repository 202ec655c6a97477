#!/usr/bin/env bash
# The benchmark, end to end, and BENCHMARKS.md regenerated from it:
#
#   bash scripts/bench.sh            (from any directory; ~15 minutes on 2 cores)
#   bash scripts/bench.sh --quick    (a smoke run: the shapes of the speed goals
#                                     only, fewer samples; several minutes, far
#                                     more on a busy machine; writes
#                                     build-bench/BENCHMARKS.quick.md and leaves
#                                     BENCHMARKS.md alone)
#
#  1. dependencies  cmake, gcc, make (required); oneDNN, XNNPACK (+ pthreadpool
#                   headers) and PyTorch from Debian (optional: a missing one is
#                   an "n/a" column) -- installed with apt-get when missing
#  2. build-bench/  Release, -DSOFTMAX_BUILD_BENCH=ON, tests off
#  3. softmax_bench libsoftmax vs memcpy, the loops, oneDNN, XNNPACK; 1 and all
#                   threads; forward, log, backward; then forward at scale 0.5
#  4. torch_bench   PyTorch on the same shapes, with Debian's /usr/bin/python3
#  5. report        bench/report.py writes BENCHMARKS.md (machine, the speed
#                   goals -- each with its figure, met or not, and for one not
#                   met the reason kept in bench/goal_notes.md --, the tables,
#                   how to read)
#  6. general_bench bf16/f16, masks and strides (+ bench/torch_general_bench.py),
#                   appended to the report
#  7. sampling     sample_bench (softmax_sample vs softmax and a read of the same
#                   bytes) and torch_sample_bench.py (PyTorch's pipelines with
#                   libsoftmax in the same loop); both appended to the report
#
# Raw outputs (markdown and CSV) stay in build-bench/bench-results/.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

quick=()
report="BENCHMARKS.md"
if [[ "${1:-}" == "--quick" ]]; then
    quick=(--quick)
    report="build-bench/BENCHMARKS.quick.md"
elif [[ $# -gt 0 ]]; then
    echo "usage: bash scripts/bench.sh [--quick]" >&2
    exit 2
fi
build_dir="build-bench"
results="$build_dir/bench-results"
python=/usr/bin/python3 # Debian's: python3-torch lives there, not in a pyenv
# The shapes of the scale run: the fused scale matters most where the kernel
# is fast relative to an extra pass over memory.
scale_shapes="4096x10,16384x128,1024x4096,1x256000,16x1048576"
[[ ${#quick[@]} -gt 0 ]] && scale_shapes="4096x10,1024x4096"

# Other jobs on this small shared machine make samples wait for a core; the
# benchmark drops those samples, so a busy machine means more rounds and more
# rows marked "*". Say so up front (and in BENCHMARKS.md).
load_at_start="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
if awk -v load="${load_at_start%% *}" -v cores="$(nproc)" 'BEGIN { exit !(load > 0.5 * cores) }' 2>/dev/null; then
    echo "warning: load average $load_at_start on $(nproc) cores: other jobs are running; expect noisy figures" >&2
fi

section "dependencies"
ensure_packages "${BUILD_PACKAGES[@]}"
# Optional: the benchmark runs without them, with "n/a" in their columns.
ensure_packages libdnnl-dev libxnnpack-dev libpthreadpool-dev python3-torch ||
    echo "warning: optional benchmark dependencies missing; their columns will say n/a" >&2

section "build ($build_dir/, Release)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_BUILD_BENCH=ON -DSOFTMAX_BUILD_TESTS=OFF \
    -DSOFTMAX_BUILD_EXAMPLES=OFF
cmake --build "$build_dir" -j"$(nproc)" --target softmax_bench softmax_bench_probe
mkdir -p "$results"
rm -f "$results"/*

section "softmax_bench (progress on stderr)"
bench="$build_dir/bench/softmax_bench"
"$bench" "${quick[@]}" --markdown --csv "$results/softmax_bench.csv" >"$results/softmax_bench.md"
"$bench" "${quick[@]}" --markdown --scale 0.5 --ops forward --threads 1 --shapes "$scale_shapes" \
    --csv "$results/softmax_bench_scale.csv" >"$results/softmax_bench_scale.md"

section "torch_bench"
if [[ -x "$python" ]] && "$python" -c 'import torch' 2>/dev/null; then
    probe="$build_dir/bench/libsoftmax_bench_probe.so"
    # PyTorch is one of the anchors of the speed goals: the same shapes as softmax_bench.
    shapes="$("$bench" "${quick[@]}" --list-shapes)"
    "$python" bench/torch_bench.py "${quick[@]}" --probe-lib "$probe" --shapes "$shapes" \
        --csv "$results/torch_bench.csv" >"$results/torch_bench.md"
    "$python" bench/torch_bench.py "${quick[@]}" --probe-lib "$probe" --scale 0.5 --ops forward --threads 1 \
        --shapes "$scale_shapes" --csv "$results/torch_bench_scale.csv" >"$results/torch_bench_scale.md"
else
    echo "PyTorch not available under $python: no torch tables" | tee "$results/torch_bench.md"
fi

section "machine"
{
    lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|L1d cache|L2 cache|L3 cache|Flags)' |
        sed -E 's/^Flags: +(.*)$/ISA flags: \1/' |
        awk -F': +' '$1 == "ISA flags" { n = split($2, f, " "); s = "";
                                        for (i = 1; i <= n; i++) if (f[i] ~ /^(avx2|fma|avx512f|avx512bw|avx512vl|avx512dq|avx512_fp16|amx_tile)$/) s = s " " f[i];
                                        print "ISA flags (selected):" s; next } { print }'
    compiler="$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")"
    echo "Compiler: $("${compiler:-cc}" --version | head -n 1)"
    echo "Kernel: $(uname -sr)"
    for package in libdnnl-dev libxnnpack-dev python3-torch; do
        echo "Package $package: $(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || echo 'not installed')"
    done
    changes="$(git status --porcelain -- src include CMakeLists.txt 2>/dev/null | head -n 1 || true)"
    echo "Library commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')${changes:+ + uncommitted changes in src/, include/ or CMakeLists.txt}"
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average when the run started: $load_at_start"
} >"$results/machine.txt"
cat "$results/machine.txt"

section "report"
# The command-line tool's section is measured separately (bench/cli_bench.py
# --write, ~10 minutes on 1 GiB of text): keep it across the rewrite.
if [[ -f BENCHMARKS.md ]]; then
    awk '/^## Command-line tool/ { keep = 1 } /^## / && !/^## Command-line tool/ { keep = 0 } keep' BENCHMARKS.md \
        >"$results/cli_section.md"
fi
"$python" bench/report.py "$results" "$report" "${quick[@]}"
echo "wrote $report"

section "general_bench (half types, masks, strides) and its PyTorch companion"
# Appended to the report as its own section: bench/report.py knows nothing of it.
cmake --build "$build_dir" -j"$(nproc)" --target general_bench
"$build_dir/bench/general_bench" "${quick[@]}" >"$results/general_bench.md"
if [[ -x "$python" ]] && "$python" -c 'import torch' 2>/dev/null; then
    "$python" bench/torch_general_bench.py "${quick[@]}" >"$results/torch_general_bench.md"
else
    echo "PyTorch not available under $python" >"$results/torch_general_bench.md"
fi
{
    echo
    echo "## General API: bf16 / f16, masks, strides (1 thread)"
    echo
    echo "From \`build-bench/bench/general_bench\` (libsoftmax, memcpy and oneDNN in one process, interleaved)"
    echo "and \`bench/torch_general_bench.py\` (PyTorch, separate process, what attention code writes today)."
    echo
    sed 's/^### /### /' "$results/general_bench.md"
    echo
    cat "$results/torch_general_bench.md"
} >>"$report"
echo "appended the general API section to $report"

section "portable path: f64 against f32"
# The portable (scalar) path in f64 computes in double-double: its cost
# against the portable f32 path, both timed interleaved in one process.
SOFTMAX_ISA=scalar "$bench" "${quick[@]}" --markdown --f64 --threads 1 --ops forward,log \
    --shapes 1024x4096,4096x128,1x256000 >"$results/portable_f64.md"
{
    echo
    echo "## Portable path: f64 against f32 (SOFTMAX_ISA=scalar, 1 thread)"
    echo
    echo "From \`softmax_bench --f64\` with \`SOFTMAX_ISA=scalar\`: \"f64 / f32\" in the same-run ratios is the"
    echo "portable f64 path's time over the portable f32 path's on the same shape, interleaved."
    echo
    sed -n '/^### /,$p' "$results/portable_f64.md"
} >>"$report"
echo "appended the portable f64 section to $report"

# Sampling: softmax_sample() against this library's softmax of the
# same rows and a read of the same bytes, then PyTorch's pipelines with
# libsoftmax timed in the same loop; both tables are appended to the report.
section "sample_bench"
cmake --build "$build_dir" -j"$(nproc)" --target sample_bench softmax
"$build_dir/bench/sample_bench" "${quick[@]}" --markdown --csv "$results/sample_bench.csv" >"$results/sample_bench.md"
cat "$results/sample_bench.md"
if [[ -x "$python" ]] && "$python" -c 'import torch' 2>/dev/null; then
    "$python" bench/torch_sample_bench.py "${quick[@]}" --lib "$build_dir/libsoftmax.so" \
        --csv "$results/torch_sample_bench.csv" >"$results/torch_sample_bench.md"
    cat "$results/torch_sample_bench.md"
else
    echo "PyTorch not available under $python: no torch sampling table" | tee "$results/torch_sample_bench.md"
fi
{
    printf '\n## Sampling (softmax_sample)\n\n'
    printf 'From `bash scripts/bench.sh` (bench/sample_bench.c, bench/torch_sample_bench.py), single thread. '
    printf 'Logits 3*N(0,1) in f32, temperature 0.8; every figure is a median of interleaved samples, in '
    printf 'microseconds per drawn token (the call time divided by the batch).\n\n'
    cat "$results/sample_bench.md"
    printf '\n'
    cat "$results/torch_sample_bench.md"
} >>"$report"
echo "appended the sampling tables to $report"

section "distributed_bench (MPI: slice summaries against all-gather-then-sample)"
if cmake --build "$build_dir" -j"$(nproc)" --target distributed_bench 2>/dev/null; then
    {
        echo
        echo "## Vocabulary split across MPI ranks"
        echo
        echo "From \`mpirun -np K $build_dir/bench/distributed_bench --rows 8 --reps 9\` for K = 2, 3, 4"
        echo "(Open MPI over shared memory on this machine; the two paths interleaved in one run; bytes are exact,"
        echo "times are medians per step on rank 0). docs/distributed.md has the communication model for more ranks."
        for ranks in 2 3 4; do
            echo
            OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
                OMPI_MCA_mpi_yield_when_idle=1 mpirun -np "$ranks" "$build_dir/bench/distributed_bench" --rows 8 --reps 9
        done
    } >>"$report"
    echo "appended the distributed section to $report"
else
    echo "MPI not found: no distributed section"
fi

if [[ -s "$results/cli_section.md" ]]; then
    { echo; cat "$results/cli_section.md"; } >>"$report"
    echo "kept the command-line tool's section (bench/cli_bench.py --write refreshes it)"
fi

section "py_bench (the Python binding against libsoftmax.so and torch.softmax)"
# Appended to the report as its own section: bench/report.py knows nothing of it.
if [[ -x "$python" ]] && "$python" -c 'import numpy' 2>/dev/null; then
    cmake --build "$build_dir" -j"$(nproc)" --target softmax
    (cd "$REPO_ROOT" && "$python" setup.py -q build_ext --inplace >"$results/py_build.log" 2>&1) ||
        { cat "$results/py_build.log"; exit 1; }
    "$python" bench/py_bench.py "${quick[@]}" --lib "$build_dir/libsoftmax.so" >"$results/py_bench.md"
    { echo; cat "$results/py_bench.md"; } >>"$report"
    echo "appended the Python binding's section to $report"
else
    echo "warning: no NumPy under $python: no Python binding section" >&2
fi
