# Cross build for aarch64 Linux with Debian's cross compiler, tests run under
# qemu-user (scripts/cross.sh):
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#
# Packages: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user, and for the
# tests the arm64 builds of cmocka, MPFR and GMP (dpkg --add-architecture
# arm64; libcmocka-dev:arm64 libmpfr-dev:arm64 libgmp-dev:arm64).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Headers and libraries of the target: the cross libc and the arm64 multiarch
# packages (pkg-config finds cmocka through PKG_CONFIG_LIBDIR, set below).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_LIBRARY_PATH /usr/lib/aarch64-linux-gnu)
set(CMAKE_INCLUDE_PATH /usr/include/aarch64-linux-gnu /usr/include)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)

# ctest runs every test program through qemu. -L: the target's loader and
# libraries; LD_LIBRARY_PATH for the libraries outside the sysroot (the
# multiarch ones). Without both, qemu resolves the host's libraries and
# pthread_join can hang.
set(CMAKE_CROSSCOMPILING_EMULATOR
    qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib:/usr/lib/aarch64-linux-gnu)
