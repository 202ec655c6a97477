#!/usr/bin/env bash
# Builds and tests beyond the host's native build (docs/platforms.md):
#
#   bash scripts/cross.sh                  both steps
#   bash scripts/cross.sh aarch64          some of them: aarch64, aarch64-clang, ldbl64
#
#  aarch64  gcc cross build for aarch64 Linux (cmake/toolchains/aarch64-linux-gnu.cmake),
#           a subset of the ctest suite run under qemu-aarch64, on the NEON kernels (the
#           default path there: the tests without a suffix) and on the portable path
#           (.scalar): contract, determinism, seeds, bad inputs, fp state on both;
#           test_order, test_gradients, test_accuracy and test_fast on NEON (the portable
#           path's order and gradients run natively here and in ldbl64's build, the
#           same C); the exponential's test on NEON,
#           sampled (every 1024th float of [-104, 0], 2^20 random doubles plus the dense
#           runs). Left out, as too slow under emulation: test_axis, test_general,
#           test_sample, test_stats, test_threads, test_concurrency, and the accuracy and
#           fast tests on the portable path (they run natively on x86-64).
#           test_accuracy runs one long row of 2^20 per type (SOFTMAX_ACCURACY_LIGHT):
#           its row of 2^22 alone takes minutes under emulation.
#  aarch64-clang  the same target compiled by clang (cmake/toolchains/
#           aarch64-linux-gnu-clang.cmake), single-threaded (-DSOFTMAX_OPENMP=OFF:
#           Debian has no arm64 OpenMP runtime for clang): test_determinism on NEON
#           and on the portable path (the same records as gcc's build: the bits do
#           not depend on the compiler), test_contract, test_seeds, test_fp_state
#           on NEON, test_errors.
#  ldbl64   x86-64 build with -mlong-double-64 (long double as narrow as double, as on
#           macOS arm64 and Windows): contract, order, gradients, determinism (the
#           same records as the native build) on the portable path and on the avx2
#           and avx512 kernels (a path this CPU lacks reports "skipped"), accuracy
#           on the portable and avx512 paths (avx2 shares its f64 code; left out
#           to keep the step short; one long row per type, SOFTMAX_ACCURACY_LIGHT),
#           and test_portable
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
[[ ${#steps[@]} -eq 0 ]] && steps=(aarch64 aarch64-clang ldbl64)
for step in "${steps[@]}"; do
    case "$step" in
        aarch64 | aarch64-clang | ldbl64) ;;
        *)
            echo "usage: bash scripts/cross.sh [aarch64] [aarch64-clang] [ldbl64]" >&2
            exit 2
            ;;
    esac
done
jobs=2
common_flags=(-DCMAKE_BUILD_TYPE=Release -DSOFTMAX_WERROR=ON -DSOFTMAX_BUILD_EXAMPLES=OFF -DSOFTMAX_BUILD_CLI=OFF)

# The tests each step runs (ctest -R). aarch64: the unsuffixed tests run the
# default path, NEON; the .scalar ones the portable path.
aarch64_both='test_determinism|test_contract|test_seeds|test_bad_inputs|test_fp_state'
aarch64_neon='test_portable|test_errors|test_bad_inputs_sample|test_accuracy|test_fast|test_order|test_gradients'
aarch64_tests="^(${aarch64_neon}|test_exp_exhaustive\.neon)\$|^(${aarch64_both})(\.scalar)?\$"
aarch64_programs="test_exp_exhaustive ${aarch64_neon//|/ } ${aarch64_both//|/ }"
aarch64_clang_tests='^(test_determinism(\.scalar)?|test_contract|test_seeds|test_fp_state|test_errors)$'
aarch64_clang_programs="test_determinism test_contract test_seeds test_fp_state test_errors"
ldbl64_tests='^(test_portable|test_determinism|test_contract|test_order|test_gradients)\.(scalar|avx2|avx512)$|^test_accuracy\.(scalar|avx512)$|^test_portable$'


for step in "${steps[@]}"; do
    case "$step" in
        aarch64)
            section "aarch64: cross build, tests under qemu-aarch64"
            ensure_foreign_architecture arm64
            ensure_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user "${ARM64_TEST_PACKAGES[@]}"
            dir=build-cross-aarch64
            # The exponential's test sampled: every 1024th float, one batch of random doubles
            # (expl is software quad on aarch64).
            cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
                "${common_flags[@]}" -DSOFTMAX_BUILD_TESTS=ON "-DSOFTMAX_TEST_ISAS=scalar;neon" \
                -DSOFTMAX_EXP_STRIDE=1024 -DSOFTMAX_EXP_F64_ROUNDS=1
            # Only the programs of the subset (and the library).
            # shellcheck disable=SC2086
            cmake --build "$dir" -j"$jobs" --target softmax $aarch64_programs
            # The unsuffixed tests count as NEON runs only if the library picks NEON by itself.
            seeds_log=$(cd "$dir" && ctest -R '^test_seeds$' -V)
            if ! grep -q 'code path: neon;' <<<"$seeds_log"; then
                echo "aarch64: the library does not pick the NEON path by default" >&2
                exit 1
            fi
            (cd "$dir" && SOFTMAX_ACCURACY_LIGHT=1 ctest -j"$jobs" -R "$aarch64_tests" --output-on-failure)
            ;;
        aarch64-clang)
            section "aarch64-clang: clang cross build, tests under qemu-aarch64"
            ensure_foreign_architecture arm64
            ensure_packages clang gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user "${ARM64_TEST_PACKAGES[@]}"
            dir=build-cross-aarch64-clang
            cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu-clang.cmake \
                "${common_flags[@]}" -DSOFTMAX_OPENMP=OFF -DSOFTMAX_BUILD_TESTS=ON "-DSOFTMAX_TEST_ISAS=scalar;neon"
            # shellcheck disable=SC2086
            cmake --build "$dir" -j"$jobs" --target softmax $aarch64_clang_programs
            seeds_log=$(cd "$dir" && ctest -R '^test_seeds$' -V)
            if ! grep -q 'code path: neon;' <<<"$seeds_log"; then
                echo "aarch64-clang: the library does not pick the NEON path by default" >&2
                exit 1
            fi
            (cd "$dir" && ctest -j"$jobs" -R "$aarch64_clang_tests" --output-on-failure)
            ;;
        ldbl64)
            section "ldbl64: x86-64 with -mlong-double-64, portable path and SIMD kernels"
            ensure_packages "${BUILD_PACKAGES[@]}"
            dir=build-cross-ldbl64
            cmake -S . -B "$dir" "${common_flags[@]}" -DSOFTMAX_BUILD_TESTS=ON -DCMAKE_C_FLAGS=-mlong-double-64 \
                "-DSOFTMAX_TEST_ISAS=scalar;avx2;avx512"
            cmake --build "$dir" -j"$jobs" --target softmax test_portable test_determinism test_contract test_order \
                test_gradients test_accuracy
            (cd "$dir" && SOFTMAX_ACCURACY_LIGHT=1 ctest -j"$jobs" -R "$ldbl64_tests" --output-on-failure)
            ;;
    esac
done
section "cross: ${steps[*]} passed"
