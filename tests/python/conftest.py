"""Makes `import softmax` find the in-place build (python/softmax/_softmax*.so) when there is one.

scripts/test.sh builds it with `setup.py build_ext --inplace`; without an
in-place build the tests use whatever `softmax` is installed.
"""

import glob
import os
import sys

PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
if glob.glob(os.path.join(PACKAGE_ROOT, "softmax", "_softmax*.so")):
    sys.path.insert(0, os.path.abspath(PACKAGE_ROOT))
