"""Makes `import softmax` find the in-place build (python/softmax/_softmax*.so) when there is one.

scripts/test.sh builds it with `setup.py build_ext --inplace`; without an
in-place build the tests use whatever `softmax` is installed. SOFTMAX_PY_BUILD
names another build to test instead (the sanitizer build of scripts/test.sh).
"""

import glob
import os
import sys

PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
if os.environ.get("SOFTMAX_PY_BUILD"):
    # A package built elsewhere (scripts/test.sh's sanitizer build).
    sys.path.insert(0, os.path.abspath(os.environ["SOFTMAX_PY_BUILD"]))
elif glob.glob(os.path.join(PACKAGE_ROOT, "softmax", "_softmax*.so")):
    sys.path.insert(0, os.path.abspath(PACKAGE_ROOT))
