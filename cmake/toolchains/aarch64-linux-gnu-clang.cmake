# Cross build for aarch64 Linux with clang (scripts/cross.sh, step aarch64-clang):
#
#   cmake -S . -B build-aarch64-clang -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu-clang.cmake
#
# The same target as aarch64-linux-gnu.cmake (sysroot, arm64 packages, qemu),
# compiled by the host's clang: clang --target=aarch64-linux-gnu finds Debian's
# cross binutils, C library and libgcc of gcc-aarch64-linux-gnu by itself.
# Debian has no arm64 build of clang's OpenMP runtime to link against here, so
# configure with -DSOFTMAX_OPENMP=OFF (the single-threaded library).
include(${CMAKE_CURRENT_LIST_DIR}/aarch64-linux-gnu.cmake)

find_program(SOFTMAX_HOST_CLANG NAMES clang-14 clang REQUIRED)
set(CMAKE_C_COMPILER ${SOFTMAX_HOST_CLANG})
set(CMAKE_C_COMPILER_TARGET aarch64-linux-gnu)
set(CMAKE_CXX_COMPILER_TARGET aarch64-linux-gnu)
