#!/usr/bin/env bash
# The main job: build libsoftmax and the `softmax` command (Release), then run
# the seed chapter's worked examples through the command, as a user would
# type them: softmax of [1, 2, 3] at scales 1, 0.5 and 2; of [10, 20, 30] at
# scales 1 and 0.01; the temperature sweep of [2, 1, 3, 5, 4] at T = 0.1, 0.5,
# 1 and 10 drawn as bar charts, with 1000 samples per temperature when the
# library has its sampler; then examples/seeds, which checks the values the
# seeds quote. Installs cmake, gcc and make first if missing.
#
#   bash scripts/run.sh            (from any directory; no terminal needed)
#
# Build directory: build-run/ (override with SOFTMAX_RUN_BUILD_DIR). Plots are
# as wide as $COLUMNS, else the terminal, else 80 columns.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

build_dir="${SOFTMAX_RUN_BUILD_DIR:-build-run}"

section "dependencies"
ensure_packages "${BUILD_PACKAGES[@]}"

section "build libsoftmax, the softmax command and examples ($build_dir/, Release)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_BUILD_TESTS=OFF -DSOFTMAX_BUILD_EXAMPLES=ON \
    -DSOFTMAX_BUILD_CLI=ON
cmake --build "$build_dir" -j"$(nproc)"

softmax_command="$build_dir/cli/softmax"

# Shows a command line as the user would type it, then runs it.
show() {
    local input="$1"
    shift
    printf '\n$ echo %s | softmax %s\n' "$input" "$*"
    echo "$input" | "$softmax_command" "$@"
}

section "1. softmax(scale * x), x = [1, 2, 3]: a larger scale sharpens, a smaller one flattens"
show "1 2 3" --scale 1
show "1 2 3" --scale 0.5
show "1 2 3" --scale 2
show "1 2 3" --scale 0.5 --plot

section "2. Softmax is not invariant under scaling: x = [10, 20, 30] at scale 1 (sharp) and 0.01 (dampened)"
show "10 20 30" --scale 1 --format %.4e
show "10 20 30" --scale 0.01 --format %.4f
show "10 20 30" --scale 1 --plot
show "10 20 30" --scale 0.01 --plot

section "3. Temperature: softmax(x / T), x = [2, 1, 3, 5, 4], T = 0.1, 0.5, 1, 10"
show "2 1 3 5 4" --temperature 0.1,0.5,1,10
show "2 1 3 5 4" --temperature 0.1,0.5,1,10 --plot

section "4. Sampling 1000 times at each temperature"
if echo "1 2" | "$softmax_command" --sample 1 --seed 0 >/dev/null 2>&1; then
    for t in 0.1 0.5 1 10; do
        show "2 1 3 5 4" --temperature "$t" --sample 1000 --seed 42 --counts --plot
    done
else
    echo "(skipped: this build of libsoftmax has no sampler yet; softmax --sample says so and exits with status 69)"
fi

section "examples/seeds: the seeds' quoted values, recomputed through the C API"
"$build_dir/examples/seeds"
