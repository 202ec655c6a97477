# Cross build for Linux on IBM Z (s390x, big-endian), with Debian's cross
# compiler, run under user-mode QEMU:
#
#   apt-get install gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user
#   # the test suite's own libraries, as Debian multiarch packages:
#   dpkg --add-architecture s390x && apt-get update
#   apt-get install libcmocka-dev:s390x libmpfr-dev:s390x libgmp-dev:s390x
#
#   cmake -S . -B build-s390x -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/s390x-linux-gnu.cmake
#   cmake --build build-s390x -j2 && (cd build-s390x && ctest -R test_contract)
#
# ctest runs every test program through CMAKE_CROSSCOMPILING_EMULATOR.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(CMAKE_C_COMPILER s390x-linux-gnu-gcc)

# The libraries the cross compiler links against live in two places: the C
# library and the compiler's runtimes (libgomp) in the cross sysroot
# /usr/s390x-linux-gnu, the multiarch packages (cmocka, MPFR, GMP) in
# /usr/lib/s390x-linux-gnu, where the compiler also looks. QEMU's -L prefix
# makes the program use the sysroot's dynamic loader; LD_LIBRARY_PATH=/lib
# (that is /usr/s390x-linux-gnu/lib under -L) makes that loader take the C
# library of the same build rather than the multiarch libc6:s390x, whose
# private interface to the loader may differ. The multiarch libraries are
# found next, in the loader's default directories.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-s390x -L /usr/s390x-linux-gnu -E LD_LIBRARY_PATH=/lib)

set(CMAKE_LIBRARY_ARCHITECTURE s390x-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config (cmocka) must read the s390x .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/s390x-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
