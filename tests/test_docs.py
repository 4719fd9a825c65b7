# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Documentation checks.

- The Sphinx build is clean with warnings as errors (``-W``): the same command as in the docs'
  instructions.  Skipped unless the ``docs`` extra is installed (``pip install -e ".[docs]"``).
  The build executes the tutorial notebooks at reduced size (their ``smoke_test`` switch), so an
  error or a failing ``assert`` in a tutorial fails it: this is where the tutorials are tested.
- Every tutorial page of the built HTML shows its outputs and figures (counted).
- Every public object (every name in the ``__all__`` of a public module of the package) appears
  in the API reference, under its own name or under a re-export.
- The tutorial notebooks are committed without outputs and have the ``smoke_test`` switch.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import pyro_expfam

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"

_HAVE_SPHINX = all(importlib.util.find_spec(m) is not None for m in ("sphinx", "myst_nb"))
_needs_sphinx = pytest.mark.skipif(not _HAVE_SPHINX, reason='needs the docs extra: pip install -e ".[docs]"')


@pytest.fixture(scope="module")
def html_build(tmp_path_factory):
    """Build the HTML documentation once (fresh output and doctree dirs) and return (returncode, log, outdir)."""
    out = tmp_path_factory.mktemp("docs")
    cmd = [
        sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
        "-d", str(out / "doctrees"), str(DOCS), str(out / "html"),
    ]  # fmt: skip
    # execute the tutorials at reduced size (docs/conf.py sets CI for the kernels)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", PYRO_EXPFAM_DOCS_EXECUTE="1")
    env.pop("PYRO_EXPFAM_DOCS_INTERSPHINX", None)  # no network
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    return proc.returncode, proc.stdout + proc.stderr, out / "html"


@pytest.mark.slow
@_needs_sphinx
def test_docs_build_without_warnings(html_build):
    returncode, log, outdir = html_build
    assert returncode == 0, f"sphinx-build -W failed (fix the docstring or page it names):\n{log}"
    for page in ("index", "products", "overlapping", "distributions", "proposal", "benchmarks", "tutorials"):
        assert (outdir / f"{page}.html").exists(), page
    assert (outdir / "_generated" / "tutorials" / "products.html").exists()


def _read_inventory(path: Path) -> list[tuple[str, str]]:
    """(name, role) pairs of a Sphinx objects.inv (version 2: four header lines, then zlib text)."""
    data = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    entries = []
    for line in zlib.decompress(data[header_end:]).decode("utf-8").splitlines():
        name, domain_role = line.split(" ", 2)[:2]
        entries.append((name, domain_role))
    return entries


def _resolve(name: str):
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _public_modules():
    yield pyro_expfam
    for info in pkgutil.walk_packages(pyro_expfam.__path__, prefix="pyro_expfam."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        yield importlib.import_module(info.name)


@pytest.mark.slow
@_needs_sphinx
def test_api_reference_covers_public_objects(html_build):
    returncode, log, outdir = html_build  # --keep-going: the inventory is written even if a warning failed the build
    assert (outdir / "objects.inv").exists(), f"sphinx-build wrote no inventory:\n{log}"
    documented = set()
    for name, role in _read_inventory(outdir / "objects.inv"):
        if role in ("py:class", "py:function", "py:data", "py:exception", "py:module"):
            obj = _resolve(name)
            if obj is not None:
                documented.add(id(obj))
    missing = []
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if isinstance(obj, (int, float, str, bool, type(None))):
                continue  # plain constants: documented in the module text if at all
            if id(obj) not in documented:
                missing.append(f"{module.__name__}.{name}")
    assert not missing, (
        "public objects missing from the API reference (add them to the matching docs/*.rst page): "
        + ", ".join(missing)
    )


def _notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_notebooks_listed_and_stripped():
    notebooks = _notebooks()
    assert notebooks, "no tutorial notebooks found"
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert nb["nbformat"] == 4, path.name
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        for cell in code:
            assert cell.get("outputs", []) == [], f"{path.name}: commit notebooks without outputs"
            assert cell.get("execution_count") is None, f"{path.name}: commit notebooks without execution counts"
        assert any('smoke_test = "CI" in os.environ' in "".join(c["source"]) for c in code), (
            f"{path.name}: needs the smoke_test switch for CI"
        )
        assert path.name in readme, f"{path.name} is not listed in notebooks/README.md"


def _figure_cells(nb: dict) -> int:
    """Code cells that open a matplotlib figure themselves (each shows at least one image)."""
    marks = ("plt.subplots(", "plt.figure(")
    return sum(any(m in "".join(c["source"]) for m in marks) for c in nb["cells"] if c["cell_type"] == "code")


def _print_cells(nb: dict) -> int:
    return sum("print(" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.slow
@_needs_sphinx
@pytest.mark.parametrize("notebook", [p.stem for p in sorted(NOTEBOOKS.glob("*.ipynb"))])
def test_tutorial_pages_show_outputs_and_figures(html_build, notebook):
    returncode, log, outdir = html_build
    page = outdir / "_generated" / "tutorials" / f"{notebook}.html"
    assert page.exists(), f"{page.name} was not built:\n{log}"
    html = page.read_text(encoding="utf-8")
    nb = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    images = re.findall(r"<img [^>]*src=\"([^\"]+)\"", html)
    figures = [src for src in images if src.startswith("data:image/") or src.endswith((".png", ".svg", ".jpg"))]
    for src in figures:
        if not src.startswith("data:"):
            assert (page.parent / src).resolve().stat().st_size > 0, f"{notebook}: empty image {src}"
    expected = max(1, _figure_cells(nb))
    assert len(figures) >= expected, f"{notebook}: {len(figures)} figures in the built page, expected >= {expected}"
    outputs = html.count('class="cell_output')
    assert outputs >= _print_cells(nb), f"{notebook}: {outputs} cell outputs, {_print_cells(nb)} cells print"
