"""Builds the Python package `softmax`: the extension softmax._softmax over libsoftmax.

    /usr/bin/python3 setup.py build_ext --inplace          (for the tests: PYTHONPATH=python)
    /usr/bin/python3 -m pip install --no-build-isolation .  (into a venv, see README "Python")

The library's SIMD kernels need per-file ISA flags and OpenMP, which CMake
already knows (CMakeLists.txt), so this script does not restate them: it runs
CMake to build the static library (position-independent, as the project
builds every object) and links it into the extension. One build definition,
and the extension carries the library, so nothing has to be installed
beside it or found at run time.
"""

import os
import subprocess
import sys

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
# SOFTMAX_PY_SANITIZE=1: library and extension with ASan + UBSan, for
# scripts/test.sh's sanitizer run of the Python tests (load the ASan runtime
# first: LD_PRELOAD=$(cc -print-file-name=libasan.so)).
SANITIZE = os.environ.get("SOFTMAX_PY_SANITIZE") == "1"
# SOFTMAX_PY_LIBRARY=path/to/libsoftmax.a: link that archive, built by CMake
# from this same tree, instead of building one (scripts/test.sh reuses its
# ASan build's archive: the library is the longest part of the build).
PREBUILT_LIBRARY = os.environ.get("SOFTMAX_PY_LIBRARY")
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


class BuildWithCMake(build_ext):
    """build_ext that first builds libsoftmax.a with CMake."""

    def run(self):
        if PREBUILT_LIBRARY:
            if not os.path.isfile(PREBUILT_LIBRARY):
                raise SystemExit(f"SOFTMAX_PY_LIBRARY={PREBUILT_LIBRARY}: no such file")
            self.build_with_archive(os.path.abspath(PREBUILT_LIBRARY))
            return
        cmake_dir = os.path.join(os.path.abspath(self.build_temp), "libsoftmax")
        configure = ["cmake", "-S", ROOT, "-B", cmake_dir, "-DCMAKE_BUILD_TYPE=Release",
                     "-DSOFTMAX_BUILD_TESTS=OFF", "-DSOFTMAX_BUILD_EXAMPLES=OFF", "-DSOFTMAX_BUILD_BENCH=OFF",
                     "-DSOFTMAX_WERROR=ON"] + (["-DSOFTMAX_SANITIZE=ON"] if SANITIZE else [])
        subprocess.check_call(configure, stdout=sys.stderr)
        jobs = str(os.cpu_count() or 1)
        subprocess.check_call(["cmake", "--build", cmake_dir, "--target", "softmax_static", "-j", jobs],
                              stdout=sys.stderr)
        self.build_with_archive(os.path.join(cmake_dir, "libsoftmax.a"))

    def build_with_archive(self, archive):
        for extension in self.extensions:
            extension.extra_objects = [archive]
            # Make relinks happen when the library changed.
            extension.depends = list(extension.depends) + [archive]
        super().run()


def library_has_sampler():
    """softmax.h declares the sampler and the row statistics (they land in stages)."""
    with open(os.path.join(ROOT, "include", "softmax.h")) as header:
        text = header.read()
    return "softmax_sample(" in text and "softmax_row_stats(" in text


extension = Extension(
    "softmax._softmax",
    sources=["python/softmax/_softmax.c"],
    include_dirs=[os.path.join(ROOT, "include"), numpy.get_include()],
    define_macros=[("SOFTMAX_STATIC_DEFINE", None)] + ([("SOFTMAX_PY_HAS_SAMPLER", None)] if library_has_sampler() else []),
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"] + (SANITIZE_FLAGS if SANITIZE else []),
    # OpenMP runtime for the library's threads; --exclude-libs keeps the
    # static library's symbols private to the extension, so that a
    # libsoftmax.so loaded in the same process never resolves to this copy.
    extra_link_args=["-fopenmp", "-Wl,--exclude-libs,ALL"] + (SANITIZE_FLAGS if SANITIZE else []),
    libraries=["m"],
)

# softmax._summary: the slice summaries for softmax.distributed (python/softmax/_summary.c).
summary_extension = Extension(
    "softmax._summary",
    sources=["python/softmax/_summary.c"],
    include_dirs=extension.include_dirs,
    define_macros=[("SOFTMAX_STATIC_DEFINE", None)],
    extra_compile_args=extension.extra_compile_args,
    extra_link_args=extension.extra_link_args,
    libraries=["m"],
)

setup(
    name="softmax",
    version="0.1.0",
    description="Fast, exact softmax-family kernels (libsoftmax) for NumPy and PyTorch",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=["softmax"],
    ext_modules=[extension, summary_extension],
    cmdclass={"build_ext": BuildWithCMake},
    install_requires=["numpy"],
    extras_require={"torch": ["torch"], "figures": ["matplotlib"]},
    options={"build": {"build_base": "build-python"}},
    zip_safe=False,
)
