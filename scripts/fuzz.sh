#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan + libFuzzer)
# and runs each for a fixed time:
#
#   bash scripts/fuzz.sh [SECONDS]        (default 60 per target)
#
# Each target starts from its committed corpus fuzz/corpus/<target>/ (copied
# to a scratch directory: new inputs are not added to the repository), runs
# on one worker at the lowest priority (as many targets at once as there are
# cores), and stops at the first contract violation or sanitizer report,
# leaving the input in build-fuzz/findings/.
# Environment: CLANG (default clang-14, else clang), FUZZ_TARGETS (default
# "pinned execute convert sample text npy"), FUZZ_ARGS (extra libFuzzer
# flags). docs/fuzzing.md describes the targets and their run totals.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

seconds="${1:-60}"
clang="${CLANG:-$(command -v clang-14 || command -v clang || true)}"
if [[ -z "$clang" ]]; then
    echo "error: clang not found (Debian package clang)" >&2
    exit 1
fi
targets=(${FUZZ_TARGETS:-pinned execute convert sample text npy})

# -gline-tables-only: file and line in the sanitizers' stack traces, without
# the variable locations of -g (an eighth of the SIMD kernels' compile time).
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER="$clang" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" -DSOFTMAX_BUILD_FUZZ=ON \
    -DSOFTMAX_BUILD_TESTS=OFF -DSOFTMAX_BUILD_EXAMPLES=OFF -DSOFTMAX_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null

findings="build-fuzz/findings"
mkdir -p "$findings"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
# Idle OpenMP workers sleep instead of spinning: the machine is shared.
export KMP_BLOCKTIME="${KMP_BLOCKTIME:-0}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The targets run side by side, as many at a time as there are cores (each
# is one libFuzzer worker), then their logs are read in order.
run_target() {
    local target="$1" corpus="build-fuzz/corpus/$1"
    rm -rf "$corpus"
    mkdir -p "$corpus"
    # Top-level files only, as the replay tests read them.
    find "fuzz/corpus/$target" -maxdepth 1 -type f -exec cp {} "$corpus/" \;
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    nice -n 19 "build-fuzz/fuzz/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$findings/${target}-" ${FUZZ_ARGS:-} "$corpus" >"build-fuzz/fuzz_$target.log" 2>&1
}
parallel="$(nproc)"
failed=0
for ((first = 0; first < ${#targets[@]}; first += parallel)); do
    batch=("${targets[@]:first:parallel}")
    pids=()
    for target in "${batch[@]}"; do
        echo "-- fuzz_$target for ${seconds}s"
        run_target "$target" &
        pids+=($!)
    done
    for index in "${!batch[@]}"; do
        target="${batch[$index]}"
        log="build-fuzz/fuzz_$target.log"
        status=0
        wait "${pids[$index]}" || status=$?
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -n 1 || true)"
        if ((status != 0)); then
            tail -n 40 "$log" >&2
            echo "error: fuzz_$target found a problem after ${runs:-?} runs (input in $findings/)" >&2
            failed=1
            continue
        fi
        echo "fuzz_$target: ${runs:-?} runs, no finding"
    done
    ((failed == 0)) || exit 1
done
