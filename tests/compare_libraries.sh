#!/bin/sh
# compare_libraries.sh BUILD_DIR [COMMIT]
#
# Builds libsoftmax at COMMIT (default: the parent of HEAD) in a scratch
# directory and compares it, bit for bit and on every code path this CPU
# has, with the library of BUILD_DIR (configured with SOFTMAX_BUILD_TESTS,
# so that it holds tests/compare_libraries). Exit status 0 if every output
# matched. About 5 minutes on two cores (the baseline build included).
set -eu
build=$(cd "$1" && pwd)
commit=${2:-HEAD~1}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
scratch=${TMPDIR:-/tmp}/softmax-baseline-$(git -C "$source_dir" rev-parse --short "$commit")
if [ ! -f "$scratch/build/libsoftmax.so" ]; then
    rm -rf "$scratch" && mkdir -p "$scratch/src"
    git -C "$source_dir" archive "$commit" | tar -x -C "$scratch/src"
    cmake -S "$scratch/src" -B "$scratch/build" -DCMAKE_BUILD_TYPE=Release -DSOFTMAX_BUILD_TESTS=OFF \
        -DSOFTMAX_BUILD_CLI=OFF -DSOFTMAX_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$scratch/build" -j2 --target softmax >/dev/null
fi
cmake --build "$build" -j2 --target softmax compare_libraries >/dev/null
status=0
for isa in scalar avx2 avx512; do
    SOFTMAX_ISA=$isa "$build/tests/compare_libraries" "$scratch/build/libsoftmax.so" "$build/libsoftmax.so" || {
        code=$?
        # 2: the path is missing here (or a library failed to load).
        [ $code -eq 2 ] && echo "compare_libraries: $isa skipped" || status=1
    }
done
exit $status
