#!/usr/bin/env bash
# Builds and tests beyond the host's native build (docs/platforms.md):
#
#   bash scripts/cross.sh                  all three steps (about 10 minutes on 2 cores)
#   bash scripts/cross.sh aarch64 ldbl64   a subset: aarch64, ldbl64, mingw
#
#  aarch64  gcc cross build for aarch64 Linux (cmake/toolchains/aarch64-linux-gnu.cmake),
#           a representative subset of the ctest suite run under qemu-aarch64 on the
#           portable path (the only path there). Left out, as too slow under emulation:
#           test_accuracy, test_exp_exhaustive, test_axis, test_general, test_fast, test_sample,
#           test_stats, test_threads, test_concurrency (they run natively on x86-64).
#  ldbl64   x86-64 build with -mlong-double-64 (long double as narrow as double, as on
#           macOS arm64 and Windows): the f64 accuracy and contract tests, order,
#           gradients, determinism and test_portable with SOFTMAX_ISA=scalar
#  mingw    MinGW-w64 cross build of the library (DLL and static library) for
#           Windows x86-64 (cmake/toolchains/mingw-w64-library.cmake)
#
# Build directories: build-cross-aarch64/, build-cross-ldbl64/, build-cross-mingw/.
# Packages (installed when missing, as root): gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross qemu-user gcc-mingw-w64-x86-64, and for the aarch64 tests the
# arm64 builds of cmocka, MPFR and GMP (dpkg --add-architecture arm64).
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && steps=(aarch64 ldbl64 mingw)
for step in "${steps[@]}"; do
    case "$step" in
        aarch64 | ldbl64 | mingw) ;;
        *)
            echo "usage: bash scripts/cross.sh [aarch64] [ldbl64] [mingw]" >&2
            exit 2
            ;;
    esac
done
jobs=2
common_flags=(-DCMAKE_BUILD_TYPE=Release -DSOFTMAX_WERROR=ON -DSOFTMAX_BUILD_EXAMPLES=OFF -DSOFTMAX_BUILD_CLI=OFF)

# The tests each step runs (ctest -R); the aarch64 subset keeps the step near
# five minutes under emulation.
aarch64_tests='^(test_portable|test_determinism|test_contract|test_order|test_gradients|test_seeds|test_errors|test_bad_inputs|test_bad_inputs_sample)$'
ldbl64_tests='^(test_portable|test_determinism|test_contract|test_order|test_gradients|test_accuracy)\.scalar$|^test_portable$'

ensure_arm64_packages() {
    if command -v dpkg >/dev/null 2>&1 && ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if [[ "$(id -u)" -ne 0 ]]; then
            echo "error: the aarch64 tests need the arm64 architecture: dpkg --add-architecture arm64 (as root)" >&2
            return 1
        fi
        dpkg --add-architecture arm64
        apt-get update
    fi
    ensure_packages libcmocka-dev:arm64 libmpfr-dev:arm64 libgmp-dev:arm64
}

for step in "${steps[@]}"; do
    case "$step" in
        aarch64)
            section "aarch64: cross build, tests under qemu-aarch64"
            ensure_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
            ensure_arm64_packages
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
            section "ldbl64: x86-64 with -mlong-double-64, portable path"
            ensure_packages "${BUILD_PACKAGES[@]}"
            dir=build-cross-ldbl64
            cmake -S . -B "$dir" "${common_flags[@]}" -DSOFTMAX_BUILD_TESTS=ON -DCMAKE_C_FLAGS=-mlong-double-64 \
                -DSOFTMAX_TEST_ISAS=scalar
            cmake --build "$dir" -j"$jobs" --target softmax test_portable test_determinism test_contract test_order \
                test_gradients test_accuracy
            (cd "$dir" && ctest -j"$jobs" -R "$ldbl64_tests" --output-on-failure)
            ;;
        mingw)
            section "mingw: MinGW-w64 cross build of the library"
            ensure_packages gcc-mingw-w64-x86-64
            dir=build-cross-mingw
            cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-library.cmake \
                "${common_flags[@]}" -DSOFTMAX_BUILD_TESTS=OFF
            cmake --build "$dir" -j"$jobs" --target softmax softmax_static
            ls -l "$dir"/libsoftmax.dll "$dir"/libsoftmax.a
            ;;
    esac
done
section "cross: ${steps[*]} passed"
