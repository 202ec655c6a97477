# Cross build for 64-bit Windows with Debian's MinGW-w64 compiler (the POSIX
# threads variant, which has OpenMP and winpthreads):
#
#   apt-get install gcc-mingw-w64-x86-64
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-x86_64.cmake \
#       -DSOFTMAX_BUILD_CLI=OFF -DSOFTMAX_BUILD_TESTS=OFF -DSOFTMAX_BUILD_EXAMPLES=OFF
#   cmake --build build-mingw -j2 && cmake --install build-mingw --prefix PREFIX
#   # a consumer: softmax::softmax_static (or softmax::softmax, the DLL)
#   cmake -S tests/install_consumer -B build-consumer -DCMAKE_PREFIX_PATH=PREFIX \
#       -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-x86_64.cmake
#
# The command (cli/) uses POSIX interfaces (mmap, getline) and is left out.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Packages both in the MinGW root and as given in CMAKE_PREFIX_PATH (an
# install prefix of this library, say), which ONLY would re-root.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
