# shellcheck shell=bash
# Helpers shared by scripts/run.sh and scripts/test.sh. Source it, do not run it.
#
#   REPO_ROOT               absolute path of the repository (the parent of scripts/)
#   section TITLE           prints a header for the next step
#   ensure_packages PKG...  installs the Debian packages that are missing

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

section() {
    printf '\n==== %s ====\n' "$*"
}

# A tool counts as present when its command is on PATH, whatever installed it;
# a library package when dpkg says "install ok installed".
_command_of_package() {
    case "$1" in
        cmake | gcc | make | pkg-config | valgrind) printf '%s\n' "$1" ;;
        clang) printf 'clang\n' ;;
        *) printf '\n' ;;
    esac
}

_package_present() {
    local command_name
    command_name="$(_command_of_package "$1")"
    if [[ -n "$command_name" ]]; then
        command -v "$command_name" >/dev/null 2>&1
        return
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        # Not Debian: let CMake report what is missing.
        return 0
    fi
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# Makes dpkg accept packages of another architecture (Debian multiarch):
# ensure_foreign_architecture s390x lets "libcmocka-dev:s390x" be installed.
# Needs root only when the architecture is not yet there.
ensure_foreign_architecture() {
    if ! command -v dpkg >/dev/null 2>&1; then
        return 0 # not Debian: the packages are the user's business
    fi
    if [[ "$(dpkg --print-architecture)" == "$1" ]] || dpkg --print-foreign-architectures | grep -qx "$1"; then
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "error: packages of architecture $1 are needed; as root run: dpkg --add-architecture $1" >&2
        return 1
    fi
    echo "adding the foreign architecture $1 (dpkg --add-architecture)"
    dpkg --add-architecture "$1"
}

# Installs, with apt-get, the packages among "$@" that are missing. Does
# nothing (no apt-get update, no root needed) when everything is present.
ensure_packages() {
    local missing=() package
    for package in "$@"; do
        _package_present "$package" || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        echo "dependencies present: $*"
        return 0
    fi
    echo "missing packages: ${missing[*]}"
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "error: installing them needs root; run this script as root, or first run:" >&2
        echo "    apt-get install ${missing[*]}" >&2
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: apt-get not found; install these packages by hand: ${missing[*]}" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# Packages that building the library needs. libc6-dev is only a Recommends of
# gcc, so --no-install-recommends would otherwise leave the C headers out.
# shellcheck disable=SC2034 # used by the scripts that source this file
BUILD_PACKAGES=(cmake gcc libc6-dev make)
# ... and what the test suite and the install checks need on top.
# shellcheck disable=SC2034
# librandom123-dev: Random123's headers, against which test_sample checks the
# sampler's Philox4x32-10 (the library itself does not use them).
TEST_PACKAGES=(pkg-config libcmocka-dev libmpfr-dev libgmp-dev librandom123-dev)
# ... and what the command's end-to-end tests (tests/cli/) check against.
TEST_PACKAGES+=(python3 python3-numpy python3-mpmath)
# ... GNU time, whose peak resident size the command's memory-bound tests read,
# and Open MPI, over which tests/mpi runs the vocabulary-slice merges.
TEST_PACKAGES+=(time libopenmpi-dev openmpi-bin)
# ... and what the Python package (python/, tests/python/) needs: Debian's
# /usr/bin/python3 with its headers, NumPy, PyTorch, matplotlib for the
# figures, pytest and hypothesis for the tests, pip and venv for `pip install .`.
# shellcheck disable=SC2034
PYTHON_PACKAGES=(python3-dev python3-numpy python3-setuptools python3-pip python3-venv python3-torch
    python3-matplotlib python3-pytest python3-hypothesis python3-scipy python3-mpmath)
# ... and the hardening steps: libFuzzer and ThreadSanitizer come with clang
# (its OpenMP runtime with libomp-dev), the memory checker with valgrind.
# shellcheck disable=SC2034
HARDENING_PACKAGES=(clang libomp-dev valgrind)
# ... and the builds for other platforms: an s390x (big-endian) cross compiler
# run under user-mode QEMU, whose test programs link the s390x builds of the
# test libraries (Debian multiarch: ensure_foreign_architecture s390x
# first), likewise for aarch64 (scripts/cross.sh), and the MinGW-w64 compiler
# for the Windows static library.
# shellcheck disable=SC2034
CROSS_PACKAGES=(gcc-s390x-linux-gnu libc6-dev-s390x-cross gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
    gcc-mingw-w64-x86-64)
# shellcheck disable=SC2034
S390X_TEST_PACKAGES=(libcmocka-dev:s390x libmpfr-dev:s390x libgmp-dev:s390x)
# shellcheck disable=SC2034
ARM64_TEST_PACKAGES=(libcmocka-dev:arm64 libmpfr-dev:arm64 libgmp-dev:arm64)
