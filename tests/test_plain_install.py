# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
A plain ``pip install .`` has no matplotlib (it is the ``plot`` extra): every public module must
import without it, and the README demonstration must run without it (the default figure is then
skipped with a note; a figure asked for with ``--figure`` is refused before fitting).  Each check
runs in a fresh interpreter in which ``import matplotlib`` fails.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyro_expfam

ROOT = Path(__file__).resolve().parents[1]

# a fresh interpreter in which matplotlib (and everything under it) cannot be imported
_BLOCK = textwrap.dedent(
    """
    import sys
    sys.modules["matplotlib"] = None
    sys.modules["matplotlib.pyplot"] = None
    """
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_modules_import_and_demo_runs_without_matplotlib():
    # one interpreter for both checks (importing torch, Pyro and scikit-learn dominates the time)
    names = [pyro_expfam.__name__] + [
        info.name
        for info in pkgutil.walk_packages(pyro_expfam.__path__, prefix="pyro_expfam.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    code = textwrap.dedent(
        f"""
        import importlib, runpy
        for name in {names!r}:
            importlib.import_module(name)
        print("imported", len({names!r}), "modules")
        sys.argv[0] = "pyro_expfam.demo"
        runpy.run_module("pyro_expfam.demo", run_name="__main__")
        """
    )
    # a figure asked for explicitly: refused before fitting (argparse's exit status 2)
    demo_only = (
        'import runpy; sys.argv[0] = "pyro_expfam.demo"; runpy.run_module("pyro_expfam.demo", run_name="__main__")'
    )
    out = _run(demo_only, "--figure", os.devnull)
    assert out.returncode == 2 and "--figure needs matplotlib" in out.stderr, out.stderr
    out = _run(code, "--points", "60", "--steps", "30", "--no-progress")  # the default figure: skipped with a note
    assert f"imported {len(names)} modules" in out.stdout, out.stderr
    assert "matplotlib is not installed: no figure" in out.stdout, out.stdout
    # the demo exits with status 1 when the tiny fit misses its accuracy target; a missing import is a traceback
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "membership accuracy" in out.stdout, out.stdout
