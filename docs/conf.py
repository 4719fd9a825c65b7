# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Sphinx configuration for the pyro_expfam documentation (layout after Pyro's docs/source).

Build (warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Pages that live outside ``docs/`` (the tutorial notebooks in ``notebooks/`` and the benchmark
report ``benchmarks/README.md``) are staged into ``docs/_generated/`` (git-ignored) when the
build starts, so that a missing file gives a placeholder page instead of a broken build.

Environment switches:

- ``PYRO_EXPFAM_DOCS_EXECUTE``: the tutorials are executed while the documentation is built (myst-nb
  ``force`` mode, an error in a cell fails the build), so that their outputs and figures appear in
  the HTML.  By default they run at reduced size (their ``smoke_test`` switch: ``CI`` is set for the
  kernels), which takes a few minutes; ``PYRO_EXPFAM_DOCS_EXECUTE=full`` runs them at full size
  (several minutes) and ``PYRO_EXPFAM_DOCS_EXECUTE=0`` shows them without outputs (fast, no kernel).
- ``PYRO_EXPFAM_DOCS_INTERSPHINX=1``: link to the Python, PyTorch and Pyro documentation
  (downloads their inventories, so it needs network access).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import pyro_expfam  # noqa: E402

# -- Project information ---------------------------------------------------------------------------

project = "pyro_expfam"
copyright = "Contributors to the pyro_expfam project"
author = "pyro_expfam contributors"
version = pyro_expfam.__version__
release = version

# -- General configuration -------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",  # torch's inherited docstrings use Google style ("Args:")
    "sphinx.ext.viewcode",
    "sphinx.ext.todo",
    "myst_nb",  # also registers myst_parser for Markdown pages
]
if os.environ.get("PYRO_EXPFAM_DOCS_INTERSPHINX"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
        "pyro": ("https://docs.pyro.ai/en/stable/", None),
    }

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
# upstream.md is shown as the page "proposal" (see _proposal_page), not as a page of its own
exclude_patterns = ["_build", "upstream.md", "**.ipynb_checkpoints", ".gitignore"]
templates_path: list[str] = []
pygments_style = "sphinx"
todo_include_todos = True
add_module_names = False  # as in Pyro: "Normal", not "pyro_expfam.distributions.Normal"

# -- autodoc (Pyro's settings) ---------------------------------------------------------------------

autodoc_member_order = "bysource"
# ":members:" and ":show-inheritance:" are written on each directive (as Pyro's pages do), so that a
# bare ``automodule`` shows only the module docstring.
autodoc_default_options: dict[str, object] = {}
autodoc_typehints = "signature"
autodoc_inherit_docstrings = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# -- MyST / myst-nb --------------------------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# Markdown written elsewhere (benchmark report, upstream proposal) may skip heading levels.
suppress_warnings = ["myst.header"]
_EXECUTE = os.environ.get("PYRO_EXPFAM_DOCS_EXECUTE", "1").strip().lower()
nb_execution_mode = "off" if _EXECUTE in ("0", "off", "no", "false") else "force"
if nb_execution_mode != "off":
    # the notebook kernels are separate processes: let them import this checkout of the package,
    # draw with a non-interactive backend, and run at reduced size unless asked for the full size
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("MPLBACKEND", "Agg")
    if _EXECUTE == "full":
        os.environ.pop("CI", None)
    else:
        os.environ.setdefault("CI", "true")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True
nb_output_stderr = "remove"  # progress bars and warnings printed to stderr are not part of the tutorial

# -- HTML output -----------------------------------------------------------------------------------

try:
    import sphinx_rtd_theme  # noqa: F401

    html_theme = "sphinx_rtd_theme"
    html_theme_options = {"navigation_depth": 3}
except ImportError:  # the default theme still builds; install the "docs" extra for Pyro's look
    html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"pyro_expfam {version}"
htmlhelp_basename = "pyro_expfamdoc"

# -- Pages staged from outside docs/ ---------------------------------------------------------------

GENERATED = DOCS / "_generated"

_PLACEHOLDER = """\
# {title}

```{{note}}
{what} has not been written yet: this page shows `{path}` once it exists.
```
"""


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _copy_if_changed(src: Path, dst: Path) -> None:
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def _relink(text: str, src_dir: Path, dst_dir: Path) -> str:
    """Point the relative file links of a staged Markdown page back at the files next to its source."""

    def fix(m: re.Match) -> str:
        opening, target, closing = m.groups()
        if opening.startswith("!") or target.startswith(("#", "/")) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
            return m.group(0)  # images are copied alongside; anchors, absolute paths and URLs stay
        path, hash_, anchor = target.partition("#")
        resolved = (src_dir / path).resolve()
        if not resolved.exists():
            return m.group(0)  # a broken link stays broken, so that the -W build reports it
        if DOCS in resolved.parents and resolved.suffix in {".rst", ".md", ".ipynb"}:
            return m.group(0)  # a page of this documentation: MyST links the document
        # "path:" makes MyST link the file itself (a download) instead of looking for a document
        return f"{opening}path:{os.path.relpath(src_dir / path, dst_dir)}{hash_}{anchor}{closing}"

    return _LINK.sub(fix, text)


def _stage_external_pages() -> None:
    """Copy the tutorials and the benchmark report into docs/_generated (placeholders if absent)."""
    # tutorials: every notebooks/*.ipynb (tutorials.rst lists them in reading order)
    tutorials = GENERATED / "tutorials"
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for src in sources:
        _copy_if_changed(src, tutorials / src.name)
    names = {s.name for s in sources}
    if tutorials.exists():
        for old in tutorials.glob("*.ipynb"):
            if old.name not in names:
                old.unlink()
    # benchmark report
    report = ROOT / "benchmarks" / "README.md"
    target = GENERATED / "benchmarks" / "README.md"
    if report.exists():
        _write_if_changed(target, _relink(report.read_text(encoding="utf-8"), report.parent, target.parent))
        for fig in (ROOT / "benchmarks").rglob("*"):  # images the report links to
            if fig.suffix.lower() in {".png", ".svg", ".jpg", ".jpeg", ".gif"} and fig.is_file():
                _copy_if_changed(fig, target.parent / fig.relative_to(ROOT / "benchmarks"))
    else:
        text = _PLACEHOLDER.format(title="Benchmark report", what="The benchmark report", path="benchmarks/README.md")
        _write_if_changed(target, text)


_stage_external_pages()


def _proposal_page(app, docname: str, source: list[str]) -> None:
    """The page "proposal" shows docs/upstream.md (written separately), or a placeholder while it is absent."""
    if docname != "proposal":
        return
    upstream = DOCS / "upstream.md"
    app.env.note_dependency(str(upstream))  # rebuild the page when upstream.md appears or changes
    if upstream.exists():
        source[0] = _relink(upstream.read_text(encoding="utf-8"), DOCS, DOCS)
    else:
        source[0] = _PLACEHOLDER.format(
            title="Upstream proposal", what="The upstream proposal", path="docs/upstream.md"
        )


def _qualified_bases(app, name, obj, options, bases: list) -> None:
    """Show base classes fully qualified (torch.distributions.exp_family.ExponentialFamily, not ExponentialFamily)."""
    for i, base in enumerate(bases):
        if isinstance(base, type) and base.__module__ != "builtins":
            bases[i] = f":py:class:`{base.__module__}.{base.__qualname__}`"


def setup(app):
    app.connect("autodoc-process-bases", _qualified_bases)
    app.connect("source-read", _proposal_page)
