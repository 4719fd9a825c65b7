# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
pytest configuration for running the tutorial notebooks with nbval (``CI=1 python -m pytest -o
addopts="" --nbval-lax notebooks/``; the test suite itself runs them in the documentation build,
see ``tests/test_docs.py``): the notebook kernels are separate processes, so put the repository
root on their ``PYTHONPATH``; the tutorials then import this checkout of ``pyro_expfam`` even when
it is not installed.  Under pytest the tutorials run at reduced size: their ``smoke_test`` switch
reads ``"CI" in os.environ``, as in Pyro's tutorials, so it is set here for the kernels.
"""

import os
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("CI", "true")
