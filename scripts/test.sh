#!/usr/bin/env bash
# Every test of the repository, as CI runs it (.ci/run calls exactly this):
#
#   bash scripts/test.sh           (from any directory)
#
#  1. dependencies   installs what is missing with apt-get (only then needs root)
#  1b. header        include/softmax.h alone: ISO C11 -Wpedantic -Werror with gcc and
#                    clang (and clang -Weverything); preprocessed with the GNU compiler
#                    macros undefined, it shows no GNU keyword (what another compiler sees)
#  2. build/         gcc, Release, -Werror: build (the benchmarks too, not run), run ctest
#                    (every test but the unsuffixed runs that repeat a forced path's, see
#                    repeated_default_runs) and examples/seeds
#  3. build-asan/    gcc, RelWithDebInfo, ASan + UBSan, -Werror: build, run ctest (every
#                    test, but test_accuracy, test_general and test_axis only on the path
#                    the library picks, test_accuracy's one long row per type,
#                    test_sample's chi-square on four setups, and not test_regimes.mutated)
#                    and examples/seeds
#  3b. debug         build-debug/: clang, Debug (-O0), -Werror: build everything, run a
#                    subset: test_contract, test_determinism and test_fp_state on every
#                    path; test_errors, test_order, test_gradients, test_axis, test_fast,
#                    test_stats, test_seeds, test_bad_inputs(_sample), test_concurrency,
#                    test_masked_short_rows on the path the library picks, test_regimes
#                    on AVX-512; the command's tests but Streaming and valgrind; the fuzz
#                    corpus replays. Left out (minutes each at -O0, and run by steps 2
#                    and 3): test_accuracy, test_sample, test_general, test_threads,
#                    test_exp_exhaustive, test_regimes.mutated
#  3c. fast-math     build-fast-math/: gcc, Release with CMAKE_C_FLAGS="-ffast-math -O3"
#                    (the build must undo it): test_contract, test_determinism,
#                    test_fp_state on every path; test_accuracy on the portable path and
#                    the one the library picks; test_gradients, test_order, test_axis,
#                    test_errors, test_bad_inputs, test_seeds
#  3d. no-openmp     build-no-openmp/: SOFTMAX_OPENMP=OFF, the single-threaded library:
#                    no OpenMP runtime among its NEEDED libraries; test_threads,
#                    test_concurrency, test_determinism, test_contract on every path
#  4. install        cmake --install build into a temporary prefix
#  5. consumers      tests/install_consumer built with find_package(softmax) and
#                    with pkg-config + plain cc (softmax and softmax-static),
#                    against that prefix, and run
#  5b. mingw         build-mingw/: the library cross-built for Windows with MinGW-w64
#                    (cmake/toolchains/mingw-w64-x86_64.cmake, no command), installed;
#                    tests/install_consumer linked against softmax::softmax_static with
#                    CMake and against softmax-static.pc with pkg-config (not run: no Windows)
#  6. README         the ```c example of README.md compiled against the prefix,
#                    run, its output compared with tests/install_consumer/readme_example.expected
#  7. command        the installed softmax command (bin/softmax, man page) run from the prefix
#  8. python         the Python package: extension built in place (setup.py build_ext
#                    --inplace, -Werror, linking step 2's libsoftmax.a), pytest tests/python
#                    with Debian's /usr/bin/python3,
#                    and bench/test_report.py (the benchmark report's goal arithmetic);
#                    `pip install .` into a throwaway venv, imported from there; the figures
#  8b. python-asan the Python tests again, against the package built with ASan + UBSan
#                    (linking step 3's build-asan/libsoftmax.a)
#  9. fuzz           scripts/fuzz.sh: each libFuzzer target of fuzz/ for $FUZZ_SECONDS
#                    (default 10) seconds, with clang, ASan + UBSan (build-fuzz/)
# 10. tsan           tests/test_concurrency built with clang -fsanitize=thread (build-tsan/)
# 11. valgrind       a few C tests and the corpus replays under valgrind --error-exitcode=1
#                    (scalar path)
# 12. s390x          build-s390x/: cross-built for big-endian s390x
#                    (cmake/toolchains/s390x-linux-gnu.cmake) and run under qemu-s390x:
#                    test_contract and test_fp_state (portable path, linked and dlopen),
#                    the command's TextInput and NpyIO tests (tests/cli/test_cli.py)
# 13. cross          scripts/cross.sh aarch64 aarch64-clang ldbl64: aarch64 cross builds
#                    (gcc, and clang without OpenMP) running ctest subsets under
#                    qemu-aarch64 on the NEON and portable paths (the subsets are listed
#                    in the script), and an x86-64 build with -mlong-double-64 running
#                    the f64 accuracy, contract and determinism tests
#
# Exit status: 0 only if every step passed.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

jobs="$(nproc)"
start_seconds=$SECONDS
current_step="start-up"
step_started=$SECONDS
passed_steps=()
step_times=() # "name seconds" of each passed step, printed at the end
work_dir=""

finish() {
    local status=$?
    if [[ -n "$work_dir" ]]; then
        rm -rf "$work_dir"
    fi
    local elapsed=$((SECONDS - start_seconds))
    echo
    if ((${#step_times[@]} > 0)); then
        echo "step times (s): ${step_times[*]}"
    fi
    if ((status == 0)); then
        echo "==== ALL TESTS PASSED (${#passed_steps[@]} steps: ${passed_steps[*]}) in $((elapsed / 60))m$((elapsed % 60))s ===="
    else
        echo "==== TESTS FAILED in step '$current_step' (exit status $status) after $((elapsed / 60))m$((elapsed % 60))s;" \
            "passed before it: ${passed_steps[*]:-none} ====" >&2
    fi
}
trap finish EXIT

step() {
    current_step="$1"
    step_started=$SECONDS
    section "$1: $2"
}

step_passed() {
    passed_steps+=("$current_step")
    step_times+=("$current_step=$((SECONDS - step_started))")
}

# Runs "$@" with its output captured; shows the output only on failure.
run_quietly() {
    local log status=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    if ((status == 0)); then
        rm -f "$log"
        return 0
    fi
    cat "$log"
    rm -f "$log"
    echo "error: '$*' failed with exit status $status" >&2
    return "$status"
}

# --------------------------------------------------------------------------
step deps "dependencies"
ensure_foreign_architecture s390x
ensure_foreign_architecture arm64
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${HARDENING_PACKAGES[@]}" \
    "${CROSS_PACKAGES[@]}" "${S390X_TEST_PACKAGES[@]}" "${ARM64_TEST_PACKAGES[@]}"
clang_compiler="$(command -v clang-14 || command -v clang)"
step_passed

# --------------------------------------------------------------------------
step header "include/softmax.h alone: ISO C11, -Wpedantic, gcc and clang"
header_probe="$(mktemp "${TMPDIR:-/tmp}/softmax-header.XXXXXX.c")"
printf '#include "softmax.h"\nint main(void) { return softmax_version() == 0; }\n' >"$header_probe"
for header_check in "gcc -std=c11 -Wall -Wextra -Wpedantic -Werror" \
    "$clang_compiler -std=c11 -Wall -Wextra -Wpedantic -Werror" \
    "$clang_compiler -std=c11 -Weverything -Wno-unused-macros -Werror"; do
    # shellcheck disable=SC2086 # the compiler and its flags, split on purpose
    $header_check -Iinclude -fsyntax-only "$header_probe"
    echo "softmax.h: $header_check: OK"
done
rm -f "$header_probe"
# What a compiler that is neither gcc nor clang sees: no GNU keyword left.
gnu_keywords='__attribute__|__extension__|__typeof__|__asm__|__builtin_|__int128|__declspec'
# Only the lines that come from softmax.h (after its line markers), not
# those of the system headers it includes; freestanding, so that the
# compiler's own <stdint.h> is used: glibc's <sys/cdefs.h> would define
# __attribute__ away for a compiler without __GNUC__ and hide the question.
if "$clang_compiler" -std=c11 -ffreestanding -E -U__GNUC__ -U__clang__ -Wno-builtin-macro-redefined include/softmax.h |
    awk '/^# [0-9]+ "/ { ours = ($3 ~ /softmax\.h"$/); next } ours' | grep -En "$gnu_keywords"; then
    echo "error: softmax.h shows GNU-only constructs (above) to a compiler that does not define __GNUC__" >&2
    exit 1
fi
echo "softmax.h without __GNUC__/__clang__: no GNU keyword"
step_passed

# The numerics tests run unsuffixed on the path the library picks by itself,
# and once more per forced path (.scalar, .avx2, .avx512). Where the picked
# path is one of the forced ones, an unsuffixed run repeats a forced run's
# kernels exactly: those are left out (ctest -E) and the step says so. Kept
# unsuffixed, for what only the library's own choice exercises: test_seeds
# (which path is picked), test_contract, test_fp_state (the floating-point
# state around the first call's detection), test_determinism and
# test_concurrency (threads racing to that first call).
# (The sanitized step runs test_accuracy and test_general unsuffixed only, test_axis on
# the picked path only.)
lighter_repeats="test_order test_gradients test_axis test_threads test_masked_short_rows test_fast test_small_calls"
lighter_repeats+=" test_sample test_stats test_bad_inputs test_bad_inputs_sample"
# The code path the library of build directory $1 picks here (test_seeds says).
picked_path() {
    local picked
    picked="$(cd "$1" && ctest -R '^test_seeds$' -V 2>/dev/null | grep -o 'code path: [a-z0-9]*' | head -n 1)"
    echo "${picked#code path: }"
}
repeated_default_runs() {
    local build_dir="$1" tests="${2:-test_accuracy test_general $lighter_repeats}" picked
    picked="$(picked_path "$build_dir")"
    case "$picked" in
        scalar | avx2 | avx512)
            echo "-- the library picks $picked here: unsuffixed $tests left out (their .$picked runs run" \
                "the same code)" >&2
            echo "^(${tests// /|})\$"
            ;;
        *) echo '^$' ;;
    esac
}

# The test_axis runs other than the one on the path the library picks
# (unsuffixed where it picks none of scalar, avx2, avx512), as a -E
# alternative: "|^test_axis\.(scalar|avx2)$" on an AVX-512 machine.
axis_runs_left_out() {
    local picked others=()
    picked="$(picked_path "$1")"
    for isa in scalar avx2 avx512; do
        [[ $isa == "$picked" ]] || others+=("$isa")
    done
    local IFS='|'
    echo "|^test_axis\.(${others[*]})\$"
}

# --------------------------------------------------------------------------
step release "build/ (Release, -Werror): build (the benchmarks too) and ctest"
# The benchmarks are built (not run) so that they keep compiling against the
# internal kernel table they call (regimes_bench) under -Werror.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_WERROR=ON -DSOFTMAX_SANITIZE=OFF \
    -DSOFTMAX_BUILD_TESTS=ON -DSOFTMAX_BUILD_EXAMPLES=ON -DSOFTMAX_BUILD_BENCH=ON
cmake --build build -j"$jobs"
release_left_out="$(repeated_default_runs build)"
(cd build && ctest --output-on-failure --no-tests=error -j"$jobs" -E "$release_left_out")
echo "-- examples/seeds, examples/attention"
run_quietly build/examples/seeds
run_quietly build/examples/attention
echo "examples/seeds, examples/attention: OK"
step_passed

# --------------------------------------------------------------------------
step asan "build-asan/ (RelWithDebInfo, ASan + UBSan, -Werror): build and ctest"
# -g1: line tables for the sanitizers' stack traces, without the variable
# locations of -g, whose tracking was a third of the compile time of the SIMD
# kernel files (the step's critical path) under the sanitizers.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DSOFTMAX_WERROR=ON -DSOFTMAX_SANITIZE=ON -DSOFTMAX_BUILD_TESTS=ON -DSOFTMAX_BUILD_EXAMPLES=ON
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Under the sanitizers, the three heaviest numerics tests (test_accuracy and
# test_general, about a minute each there, and test_axis, 20 s a path) run
# once, on the path the library picks; the Release step runs them on every
# path, and every other test still runs on every path here (test_regimes
# among them: both sides of each threshold, on each path). The mutation run of test_regimes
# (a proof that its checks can fail, not a memory check) is the Release step's.
asan_left_out="$(repeated_default_runs build-asan "$lighter_repeats")"
asan_left_out+='|^test_(accuracy|general)\.(scalar|avx2|avx512)$|^test_regimes\.mutated$'
# test_axis's unsuffixed run is among the repeated ones left out above
# when the library picks a path of its own: its run on that path stays.
asan_left_out+="$(axis_runs_left_out build-asan)"
echo "-- sanitizers: test_accuracy, test_general and test_axis on the path the library picks;" \
    "test_regimes.mutated left out (all run in the Release step)"
# test_accuracy with one long row of 2^20 per type (past every threshold of
# the kernels): the MPFR references of the three long rows, the row of 2^22
# above all, were most of the test's time here.
(cd build-asan && SOFTMAX_ACCURACY_LIGHT=1 ctest --output-on-failure --no-tests=error -j"$jobs" -E "$asan_left_out")
echo "-- examples/seeds, examples/attention (sanitized)"
run_quietly build-asan/examples/seeds
run_quietly build-asan/examples/attention
echo "examples/seeds, examples/attention (sanitized): OK"
unset ASAN_OPTIONS UBSAN_OPTIONS
step_passed

# --------------------------------------------------------------------------
step debug "build-debug/ (clang, Debug, -Werror): build and a ctest subset"
cmake -S . -B build-debug -DCMAKE_C_COMPILER="$clang_compiler" -DCMAKE_BUILD_TYPE=Debug -DSOFTMAX_WERROR=ON \
    -DSOFTMAX_SANITIZE=OFF -DSOFTMAX_BUILD_TESTS=ON -DSOFTMAX_BUILD_EXAMPLES=ON >/dev/null
run_quietly cmake --build build-debug -j"$jobs"
# The heavy tests (minutes each without optimisation) run in steps 2 and 3.
debug_left_out='^test_(accuracy|sample|general|threads)(\.|$)|^test_exp_exhaustive|^cli\.(Streaming|valgrind)$'
debug_left_out+='|^test_(errors|order|gradients|axis|fast|stats|seeds|bad_inputs|bad_inputs_sample|concurrency|masked_short_rows)\.(scalar|avx2|avx512)$'
# test_regimes has no unsuffixed run: its AVX-512 one (skipped on a CPU without).
debug_left_out+='|^test_regimes\.(scalar|avx2|mutated)$'
(cd build-debug && ctest --output-on-failure --no-tests=error -j"$jobs" -E "$debug_left_out")
run_quietly build-debug/examples/seeds
echo "examples/seeds (Debug): OK"
step_passed

# --------------------------------------------------------------------------
step fast-math "build-fast-math/ (gcc, CMAKE_C_FLAGS=\"-ffast-math -O3\"): contract and accuracy tests"
# A user's fast-math flags must not reach the numerics nor, through
# crtfastmath.o, the floating-point control of the process that loads the
# library (test_fp_state).
cmake -S . -B build-fast-math -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-ffast-math -O3" \
    -DSOFTMAX_WERROR=ON -DSOFTMAX_SANITIZE=OFF -DSOFTMAX_BUILD_TESTS=ON -DSOFTMAX_BUILD_EXAMPLES=OFF \
    -DSOFTMAX_BUILD_CLI=OFF >/dev/null
fast_math_tests=(test_contract test_determinism test_fp_state test_accuracy test_gradients test_order test_axis
    test_errors test_bad_inputs test_seeds)
run_quietly cmake --build build-fast-math -j"$jobs" --target "${fast_math_tests[@]}" test_fp_state_dlopen
fast_math_pattern="^($(IFS='|' && echo "${fast_math_tests[*]}"))(\\..*)?\$"
# Every path for the first three; the portable path and the one the library
# picks for the others.
fast_math_left_out='^test_(accuracy|gradients|order|axis|errors|bad_inputs|seeds)\.(avx2|avx512)$'
(cd build-fast-math && ctest --output-on-failure --no-tests=error -j"$jobs" -R "$fast_math_pattern" -E "$fast_math_left_out")
step_passed

step no-openmp "build-no-openmp/ (SOFTMAX_OPENMP=OFF): the single-threaded library"
cmake -S . -B build-no-openmp -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_OPENMP=OFF -DSOFTMAX_WERROR=ON \
    -DSOFTMAX_BUILD_TESTS=ON -DSOFTMAX_BUILD_EXAMPLES=OFF -DSOFTMAX_BUILD_CLI=OFF >/dev/null
no_openmp_tests=(test_threads test_concurrency test_determinism test_contract)
run_quietly cmake --build build-no-openmp -j"$jobs" --target softmax "${no_openmp_tests[@]}"
if objdump -p build-no-openmp/libsoftmax.so | grep -E 'NEEDED.*(gomp|omp)'; then
    echo "no-openmp: libsoftmax.so still needs an OpenMP runtime" >&2
    exit 1
fi
(cd build-no-openmp && ctest --output-on-failure --no-tests=error -j"$jobs" \
    -R "^($(IFS='|' && echo "${no_openmp_tests[*]}"))(\\..*)?\$")
step_passed

# --------------------------------------------------------------------------
step install "cmake --install build --prefix <temporary directory>"
work_dir="$(mktemp -d "${TMPDIR:-/tmp}/softmax-test.XXXXXX")"
prefix="$work_dir/prefix"
cmake --install build --prefix "$prefix"
pc_file="$(find "$prefix" -name softmax.pc -print -quit)"
config_file="$(find "$prefix" -name softmaxConfig.cmake -print -quit)"
for installed in "$prefix/include/softmax.h" "$pc_file" "$config_file"; do
    if [[ ! -f "$installed" ]]; then
        echo "error: the install is missing a file (header, softmax.pc or softmaxConfig.cmake)" >&2
        exit 1
    fi
done
libdir="$(dirname "$(dirname "$pc_file")")"
for library in libsoftmax.so libsoftmax.a; do
    if [[ ! -e "$libdir/$library" ]]; then
        echo "error: $libdir/$library was not installed" >&2
        exit 1
    fi
done
echo "installed into $prefix (libdir $libdir)"
step_passed

# --------------------------------------------------------------------------
step consumer-cmake "tests/install_consumer with find_package(softmax CONFIG REQUIRED)"
cmake -S tests/install_consumer -B "$work_dir/consumer-cmake" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix"
found_dir="$(sed -n 's/^softmax_DIR:PATH=//p' "$work_dir/consumer-cmake/CMakeCache.txt")"
if [[ "$(realpath -m "$found_dir")" != "$(realpath -m "$(dirname "$config_file")")" ]]; then
    echo "error: find_package(softmax) found $found_dir, not the package just installed" >&2
    exit 1
fi
cmake --build "$work_dir/consumer-cmake" -j"$jobs"
"$work_dir/consumer-cmake/consumer"
"$work_dir/consumer-cmake/consumer_static"
step_passed

# --------------------------------------------------------------------------
step consumer-pkgconfig "tests/install_consumer with pkg-config --cflags --libs softmax and cc"
PKG_CONFIG_PATH="$(dirname "$pc_file")"
export PKG_CONFIG_PATH
pkg_config=(pkg-config)
pc_prefix="$(pkg-config --variable=prefix softmax)"
if [[ "$(realpath -m "$pc_prefix")" != "$(realpath -m "$prefix")" ]]; then
    # softmax.pc derives its prefix from its own location, so it must name the
    # directory given to cmake --install.
    echo "softmax.pc says prefix=$pc_prefix, not $prefix" >&2
    exit 1
fi
read -r -a softmax_cflags <<<"$("${pkg_config[@]}" --cflags softmax)"
read -r -a softmax_libs <<<"$("${pkg_config[@]}" --libs softmax)"
echo "pkg-config: cflags ${softmax_cflags[*]:-(none)}; libs ${softmax_libs[*]}"
c_compiler="${CC:-cc}"
command -v "$c_compiler" >/dev/null 2>&1 || c_compiler=gcc
strict_cflags=(-std=c11 -O2 -Wall -Wextra -Wpedantic -Werror)
"$c_compiler" "${strict_cflags[@]}" "${softmax_cflags[@]}" tests/install_consumer/main.c -o "$work_dir/consumer-pkgconfig" \
    "${softmax_libs[@]}" -lm
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work_dir/consumer-pkgconfig"
# The static library through its own .pc file: SOFTMAX_STATIC_DEFINE in its
# Cflags, the archive itself in its Libs.
read -r -a static_cflags <<<"$("${pkg_config[@]}" --cflags softmax-static)"
read -r -a static_libs <<<"$("${pkg_config[@]}" --libs softmax-static)"
echo "pkg-config softmax-static: cflags ${static_cflags[*]}; libs ${static_libs[*]}"
if [[ " ${static_cflags[*]} " != *" -DSOFTMAX_STATIC_DEFINE "* ]]; then
    echo "error: softmax-static.pc does not define SOFTMAX_STATIC_DEFINE" >&2
    exit 1
fi
"$c_compiler" "${strict_cflags[@]}" "${static_cflags[@]}" tests/install_consumer/main.c \
    -o "$work_dir/consumer-pkgconfig-static" "${static_libs[@]}" -lm
if readelf -d "$work_dir/consumer-pkgconfig-static" | grep -q 'NEEDED.*libsoftmax'; then
    echo "error: the softmax-static consumer needs libsoftmax.so" >&2
    exit 1
fi
"$work_dir/consumer-pkgconfig-static"
step_passed

# --------------------------------------------------------------------------
step mingw "build-mingw/ (MinGW-w64 cross build): consumers of the static library link"
# Windows is where SOFTMAX_STATIC_DEFINE matters: without it softmax.h
# declares the functions __declspec(dllimport) and a program linking
# libsoftmax.a fails on undefined __imp_softmax_* symbols. No Windows to run
# the programs here: linking, against the archive alone, is the check.
mingw_toolchain="$REPO_ROOT/cmake/toolchains/mingw-w64-x86_64.cmake"
cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE="$mingw_toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DSOFTMAX_WERROR=ON -DSOFTMAX_BUILD_CLI=OFF -DSOFTMAX_BUILD_TESTS=OFF -DSOFTMAX_BUILD_EXAMPLES=OFF >/dev/null
run_quietly cmake --build build-mingw -j"$jobs"
mingw_prefix="$work_dir/prefix-mingw"
run_quietly cmake --install build-mingw --prefix "$mingw_prefix"
cmake -S tests/install_consumer -B "$work_dir/consumer-mingw" -DCMAKE_TOOLCHAIN_FILE="$mingw_toolchain" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$mingw_prefix" >/dev/null
run_quietly cmake --build "$work_dir/consumer-mingw" -j"$jobs"
read -r -a mingw_static <<<"$(PKG_CONFIG_PATH="" PKG_CONFIG_LIBDIR="$mingw_prefix/lib/pkgconfig" \
    pkg-config --cflags --libs softmax-static)"
x86_64-w64-mingw32-gcc-posix "${strict_cflags[@]}" tests/install_consumer/main.c -o "$work_dir/consumer-mingw-pkgconfig.exe" \
    "${mingw_static[@]}"
for program in "$work_dir/consumer-mingw/consumer_static.exe" "$work_dir/consumer-mingw-pkgconfig.exe"; do
    if x86_64-w64-mingw32-objdump -p "$program" | grep -qi 'DLL Name: libsoftmax'; then
        echo "error: $program imports libsoftmax.dll instead of containing the static library" >&2
        exit 1
    fi
    echo "$(basename "$program"): linked with the static library"
done
echo "consumer.exe (the DLL's import library): linked"
step_passed

# --------------------------------------------------------------------------
step readme "the C example of README.md against the installed library"
readme_c="$work_dir/readme_example.c"
# The first ```c fenced block of README.md.
awk '/^```c[[:space:]]*$/ && !seen { inside = 1; seen = 1; next }
     inside && /^```/ { exit }
     inside { print }' README.md >"$readme_c"
if [[ ! -s "$readme_c" ]]; then
    echo "error: README.md has no \`\`\`c block" >&2
    exit 1
fi
"$c_compiler" "${strict_cflags[@]}" "${softmax_cflags[@]}" "$readme_c" -o "$work_dir/readme_example" "${softmax_libs[@]}" -lm
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work_dir/readme_example" >"$work_dir/readme_example.out"
if ! diff -u tests/install_consumer/readme_example.expected "$work_dir/readme_example.out"; then
    echo "error: the README example's output differs from tests/install_consumer/readme_example.expected" >&2
    exit 1
fi
cat "$work_dir/readme_example.out"
step_passed

# --------------------------------------------------------------------------
step command "the installed softmax command and its man page"
for installed in "$prefix/bin/softmax" "$prefix/share/man/man1/softmax.1"; do
    if [[ ! -f "$installed" ]]; then
        echo "error: the install is missing $installed" >&2
        exit 1
    fi
done
# No LD_LIBRARY_PATH: the command finds the library next to it (RUNPATH $ORIGIN/../lib).
"$prefix/bin/softmax" --version
command_output="$(echo 1 2 3 | "$prefix/bin/softmax")"
if [[ "$command_output" != "0.0900306 0.244728 0.665241" ]]; then
    echo "error: echo 1 2 3 | softmax printed '$command_output'" >&2
    exit 1
fi
echo "echo 1 2 3 | softmax: $command_output"
step_passed

# --------------------------------------------------------------------------
step python "Python package: build in place, pytest tests/python, pip install . into a venv, figures"
python=/usr/bin/python3 # Debian's: python3-numpy and python3-torch live there
ensure_packages "${PYTHON_PACKAGES[@]}"
[[ -n "$work_dir" ]] || work_dir="$(mktemp -d "${TMPDIR:-/tmp}/softmax-test.XXXXXX")"
# In place for the tests, linking step 2's build/libsoftmax.a (Release, the
# flags setup.py's own CMake build uses); `pip install .` below builds the
# library from scratch as a user's install does.
if [[ ! -f build/libsoftmax.a ]]; then
    echo "error: build/libsoftmax.a is missing (the release step builds it)" >&2
    exit 1
fi
SOFTMAX_PY_LIBRARY=build/libsoftmax.a run_quietly "$python" setup.py build_ext --inplace
"$python" -m pytest tests/python -q -p no:cacheprovider
# The benchmark report's arithmetic (speed-goal ratios) on made-up figures.
"$python" -m pytest bench/test_report.py -q -p no:cacheprovider
# pip install . as a user would, offline: Debian's pip refuses the system
# interpreter (PEP 668), so into a venv that still sees Debian's numpy and torch.
"$python" -m venv --system-site-packages "$work_dir/venv"
run_quietly "$work_dir/venv/bin/python" -m pip install --no-build-isolation --no-index --no-deps .
(cd "$work_dir" && "$work_dir/venv/bin/python" - <<'PY'
import numpy as np
import softmax
from softmax.ops import norm_exp_softmax
assert "/venv/" in softmax.__file__, softmax.__file__
print("installed:", softmax.__file__, "library", softmax.version(), softmax.isa_name())
print(norm_exp_softmax(np.array([[1.0, 2.0, 3.0]]), scale=2.0))
PY
)
(cd "$work_dir" && "$work_dir/venv/bin/python" -m softmax.figures "$work_dir/figures")
step_passed

# --------------------------------------------------------------------------
step python-asan "the Python tests against the package built with ASan + UBSan (build-python-asan/)"
# The library and the extension instrumented (setup.py, SOFTMAX_PY_SANITIZE=1;
# the library is step 3's build-asan/libsoftmax.a, built with the same
# sanitizers, through SOFTMAX_PY_LIBRARY, not built a second time); the
# interpreter is not, so the sanitizer runtimes are preloaded. Leak
# checking is off (the interpreter and torch keep memory to exit by design);
# test_memory's resident-size check is left out: the allocator's quarantine
# holds freed memory on purpose.
rm -rf build-python-asan
if [[ ! -f build-asan/libsoftmax.a ]]; then
    echo "error: build-asan/libsoftmax.a is missing (the asan step builds it)" >&2
    exit 1
fi
SOFTMAX_PY_SANITIZE=1 SOFTMAX_PY_LIBRARY=build-asan/libsoftmax.a run_quietly "$python" setup.py build \
    --build-base build-python-asan
asan_package="$(echo build-python-asan/lib.*)"
SOFTMAX_PY_BUILD="$asan_package" LD_PRELOAD="$(cc -print-file-name=libasan.so):$(cc -print-file-name=libubsan.so)" \
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$python" -m pytest tests/python -q -p no:cacheprovider -k "not million_small_calls"
step_passed

# --------------------------------------------------------------------------
# Six targets: 10 s each keeps the step, with its build, near two minutes.
step fuzz "scripts/fuzz.sh: each fuzz target for ${FUZZ_SECONDS:-10}s (clang, libFuzzer, ASan + UBSan)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
step_passed

# --------------------------------------------------------------------------
step tsan "build-tsan/ (clang, ThreadSanitizer): tests/test_concurrency"
# libomp is not instrumented: the OpenMP teams would be reported as races
# (their synchronisation is invisible to TSan), so the library runs on the
# calling threads (SOFTMAX_NUM_THREADS=1, the test's setter alternates 1 and
# 0) and tests/tsan.supp hides the runtime's own first-use allocations.
tsan_flags="-fsanitize=thread -fno-omit-frame-pointer"
cmake -S . -B build-tsan -DCMAKE_C_COMPILER="$(command -v clang-14 || command -v clang)" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOFTMAX_WERROR=ON -DSOFTMAX_BUILD_EXAMPLES=OFF \
    -DCMAKE_C_FLAGS="$tsan_flags" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build build-tsan -j"$jobs" --target test_concurrency >/dev/null
for isa in scalar avx2 avx512; do
    status=0
    SOFTMAX_ISA=$isa SOFTMAX_NUM_THREADS=1 SOFTMAX_CONCURRENCY_MAX_THREADS=1 \
        TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$REPO_ROOT/tests/tsan.supp" \
        run_quietly build-tsan/tests/test_concurrency || status=$?
    if ((status == 77)); then
        echo "test_concurrency (TSan, $isa): skipped, this CPU lacks the path"
        continue
    fi
    ((status == 0)) || exit "$status"
    echo "test_concurrency (TSan, $isa): OK"
done
step_passed

# --------------------------------------------------------------------------
step valgrind "valgrind --error-exitcode=1: test_errors, test_bad_inputs, test_seeds and the corpus replays"
# The portable path: valgrind 3.19 aborts on some AVX2 instructions of the
# SIMD kernels ("the 'impossible' happened") and hides AVX-512 altogether.
# No bit-exact test: valgrind runs x87 long double arithmetic (the f64
# reference path's accumulators) in double precision, so test_determinism
# would see other bits there.
valgrind_run() {
    SOFTMAX_ISA=scalar run_quietly valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q "$@"
    echo "valgrind $(basename "$1"): OK"
}
valgrind_run build/tests/test_errors
valgrind_run build/tests/test_seeds
valgrind_run build/tests/test_bad_inputs
for target in pinned execute convert; do
    valgrind_run "build/fuzz/fuzz_${target}_replay" "fuzz/corpus/$target"
done
step_passed

# --------------------------------------------------------------------------
step s390x "build-s390x/ (s390x cross build under qemu-s390x): contract tests, the command's text and .npy tests"
# Big-endian, and FLT_EVAL_METHOD 1 in ISO C mode. The test programs run
# through the toolchain file's CMAKE_CROSSCOMPILING_EMULATOR; the command's
# tests (Python on this host) through a wrapper that does the same.
cmake -S . -B build-s390x -DCMAKE_TOOLCHAIN_FILE="$REPO_ROOT/cmake/toolchains/s390x-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_WERROR=ON -DSOFTMAX_BUILD_TESTS=ON -DSOFTMAX_BUILD_EXAMPLES=OFF \
    -DSOFTMAX_TEST_ISAS=scalar >/dev/null
run_quietly cmake --build build-s390x -j"$jobs" --target softmax_cli test_contract test_fp_state test_fp_state_dlopen
# The portable path is the only one there: test_contract.scalar would repeat test_contract.
(cd build-s390x && ctest --output-on-failure --no-tests=error -j"$jobs" -R '^test_contract$|^test_fp_state(\..*)?$')
# The same command line as the toolchain file's emulator.
s390x_command="$REPO_ROOT/build-s390x/softmax-qemu"
printf '#!/bin/sh\nexec qemu-s390x -L /usr/s390x-linux-gnu -E LD_LIBRARY_PATH=/lib "%s" "$@"\n' \
    "$REPO_ROOT/build-s390x/cli/softmax" >"$s390x_command"
chmod +x "$s390x_command"
echo "1 2 3 | softmax (s390x): $(echo 1 2 3 | "$s390x_command")"
# SOFTMAX_CLI_BYTE_ORDER: the byte order of the command's host, which the
# tests of '|' (no byte order) .npy files need; here it is not Python's.
(cd tests/cli && SOFTMAX_CLI="$s390x_command" SOFTMAX_CLI_BYTE_ORDER=big PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 -m unittest test_cli.TextInput test_cli.NpyIO)
step_passed

# --------------------------------------------------------------------------
step cross "scripts/cross.sh aarch64 aarch64-clang ldbl64: aarch64 (gcc and clang) under qemu-aarch64, a 64-bit long double"
bash scripts/cross.sh aarch64 aarch64-clang ldbl64
step_passed
