#!/usr/bin/env bash
# Builds and tests beyond the host's native build (docs/platforms.md):
#
#   bash scripts/cross.sh                  both steps (about 8 minutes on 2 cores)
#   bash scripts/cross.sh aarch64          one of them: aarch64, ldbl64
#
#  aarch64  gcc cross build for aarch64 Linux (cmake/toolchains/aarch64-linux-gnu.cmake),
#           a representative subset of the ctest suite run under qemu-aarch64 on the
#           portable path (the only path there). Left out, as too slow under emulation:
#           test_accuracy, test_exp_exhaustive, test_axis, test_general, test_fast, test_sample,
#           test_stats, test_threads, test_concurrency (they run natively on x86-64).
#  ldbl64   x86-64 build with -mlong-double-64 (long double as narrow as double, as on
#           macOS arm64 and Windows): the accuracy and contract tests, order,
#           gradients, determinism (the same records as the native build) on the
#           portable path and on the avx2 and avx512 kernels (a path this CPU
#           lacks reports "skipped"), and test_portable
#
# (The MinGW-w64 build for Windows is scripts/test.sh's mingw step.)
# Build directories: build-cross-aarch64/, build-cross-ldbl64/.
# Packages (installed when missing, as root): gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross qemu-user, and for the aarch64 tests the arm64 builds of
# cmocka, MPFR and GMP (dpkg --add-architecture arm64).
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && steps=(aarch64 ldbl64)
for step in "${steps[@]}"; do
    case "$step" in
        aarch64 | ldbl64) ;;
        *)
            echo "usage: bash scripts/cross.sh [aarch64] [ldbl64]" >&2
            exit 2
            ;;
    esac
done
jobs=2
common_flags=(-DCMAKE_BUILD_TYPE=Release -DSOFTMAX_WERROR=ON -DSOFTMAX_BUILD_EXAMPLES=OFF -DSOFTMAX_BUILD_CLI=OFF)

# The tests each step runs (ctest -R); the aarch64 subset keeps the step near
# five minutes under emulation.
aarch64_tests='^(test_portable|test_determinism|test_contract|test_order|test_gradients|test_seeds|test_errors|test_bad_inputs|test_bad_inputs_sample)$'
ldbl64_tests='^(test_portable|test_determinism|test_contract|test_order|test_gradients|test_accuracy)\.(scalar|avx2|avx512)$|^test_portable$'


for step in "${steps[@]}"; do
    case "$step" in
        aarch64)
            section "aarch64: cross build, tests under qemu-aarch64"
            ensure_foreign_architecture arm64
            ensure_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user "${ARM64_TEST_PACKAGES[@]}"
            dir=build-cross-aarch64
            cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
                "${common_flags[@]}" -DSOFTMAX_BUILD_TESTS=ON
            # Only the programs of the subset (and the library).
            targets=$(sed -E 's/[()^$|]+/ /g' <<<"$aarch64_tests")
            # shellcheck disable=SC2086
            cmake --build "$dir" -j"$jobs" --target softmax $targets
            (cd "$dir" && ctest -j"$jobs" -R "$aarch64_tests" --output-on-failure)
            ;;
        ldbl64)
            section "ldbl64: x86-64 with -mlong-double-64, portable path and SIMD kernels"
            ensure_packages "${BUILD_PACKAGES[@]}"
            dir=build-cross-ldbl64
            cmake -S . -B "$dir" "${common_flags[@]}" -DSOFTMAX_BUILD_TESTS=ON -DCMAKE_C_FLAGS=-mlong-double-64 \
                "-DSOFTMAX_TEST_ISAS=scalar;avx2;avx512"
            cmake --build "$dir" -j"$jobs" --target softmax test_portable test_determinism test_contract test_order \
                test_gradients test_accuracy
            (cd "$dir" && ctest -j"$jobs" -R "$ldbl64_tests" --output-on-failure)
            ;;
    esac
done
section "cross: ${steps[*]} passed"
