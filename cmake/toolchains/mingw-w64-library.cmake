# Cross build of the library (and nothing that needs POSIX) for 64-bit
# Windows with Debian's MinGW-w64 (gcc-mingw-w64-x86-64):
#
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-library.cmake \
#         -DSOFTMAX_BUILD_TESTS=OFF -DSOFTMAX_BUILD_CLI=OFF -DSOFTMAX_BUILD_EXAMPLES=OFF
#
# scripts/cross.sh builds the libsoftmax DLL and static library this way.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
