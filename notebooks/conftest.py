# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
pytest configuration for ``python -m pytest --nbval-lax notebooks/``: the notebook kernels are
separate processes, so put the repository root on their ``PYTHONPATH``; the tutorials then import
this checkout of ``pyro_expfam`` even when it is not installed (CI installs it with ``pip install -e``).
"""

import os
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)
