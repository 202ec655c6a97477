#!/usr/bin/env bash
# The main job: build libsoftmax and examples/seeds, then run the seeds' worked
# examples through the library. Installs cmake, gcc and make first if missing.
#
#   bash scripts/run.sh            (from any directory)
#
# Build directory: build-run/ (override with SOFTMAX_RUN_BUILD_DIR).
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

build_dir="${SOFTMAX_RUN_BUILD_DIR:-build-run}"

section "dependencies"
ensure_packages "${BUILD_PACKAGES[@]}"

section "build libsoftmax and examples ($build_dir/, Release)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_BUILD_TESTS=OFF -DSOFTMAX_BUILD_EXAMPLES=ON
cmake --build "$build_dir" -j"$(nproc)"

section "examples/seeds"
"$build_dir/examples/seeds"
