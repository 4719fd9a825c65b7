# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The upstream patch series (``upstream/patches/*.patch``) against torch's
``torch/distributions``: it applies to a copy of the *installed* torch
distributions package, the tests it adds (torch's own test style) pass on
the patched classes, and the patched products agree with pyro_expfam's.

The patched copy is imported in a subprocess, where an import hook
(``upstream/patched_import.py``) makes ``torch.distributions`` (and its
submodules) resolve to the copy before ``import torch`` runs, so the installed
torch is never modified.  Skipped
only when neither ``git`` nor ``patch`` is installed.
"""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import pyro_expfam.distributions as expfam

ROOT = pathlib.Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "upstream"
PATCHES = sorted((UPSTREAM / "patches").glob("*.patch"))
TEST_FILE = "test/distributions/test_exp_family_products.py"

#: torch's ExponentialFamily subclasses that the series covers, each with the patch that does it.
COVERED = {
    "Normal": "Normal",
    "Bernoulli": "Bernoulli",
    "ContinuousBernoulli": "ContinuousBernoulli",
    "Exponential": "Exponential",
    "Gamma": "Gamma",
    "Chi2": "Gamma",  # torch's Chi2 subclasses Gamma: one commit covers both
    "Beta": "Beta",
    "Dirichlet": "Dirichlet",
    "Wishart": "Wishart",
    "Poisson": "Poisson",
}

#: Factors (constructor arguments, float64) whose products along the last batch dimension are compared.
FACTORS = {
    "Normal": {"loc": [0.0, 2.0, -1.0], "scale": [1.0, 0.5, 2.0]},
    "Bernoulli": {"logits": [1.5, -0.5, 3.0]},
    "ContinuousBernoulli": {"logits": [0.3, -2.0, 1.0]},
    "Exponential": {"rate": [0.5, 2.0, 3.0]},
    "Gamma": {"concentration": [1.5, 2.0, 3.0], "rate": [1.0, 0.5, 2.0]},
    "Chi2": {"df": [3.0, 4.0, 5.0]},
    "Beta": {"concentration1": [2.0, 4.0, 0.7], "concentration0": [3.0, 1.5, 2.2]},
    "Dirichlet": {"concentration": [[2.0, 4.0], [3.0, 1.5], [1.5, 2.0]]},
    "Wishart": {
        "df": [4.0, 5.0, 3.0],
        "scale_tril": [[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]], [[1.0, 0.0], [1.0, 1.0]]],
    },
}
#: The parameters of each product that are compared (the product of Chi2 densities is a Gamma).
PRODUCT_PARAMS = {
    "Normal": ("loc", "scale"),
    "Bernoulli": ("logits",),
    "ContinuousBernoulli": ("logits",),
    "Exponential": ("rate",),
    "Gamma": ("concentration", "rate"),
    "Chi2": ("concentration", "rate"),
    "Beta": ("concentration1", "concentration0"),
    "Dirichlet": ("concentration",),
    "Wishart": ("df", "precision_matrix"),
}


def _products(namespace, factors: dict, params: dict) -> dict:
    """The products of ``factors`` built with the classes of ``namespace``: type name and parameters."""
    out = {}
    for name, kwargs in factors.items():
        d = getattr(namespace, name)(**{k: torch.tensor(v, dtype=torch.double) for k, v in kwargs.items()})
        prod = d.product_along_axis(-1, keepdim=False)
        out[name] = {"type": type(prod).__name__, "params": {k: getattr(prod, k).tolist() for k in params[name]}}
    return out


# Run in the subprocess: resolve torch.distributions to the patched copy, run the series'
# tests (torch's TestCase), then write the products of FACTORS with the patched torch classes
# and with pyro_expfam's classes (imported on top of the patched torch) as JSON.
_RUNNER = textwrap.dedent(
    r"""
    import json, runpy, sys, types, unittest

    PATCHED, TEST_FILE, SPEC, OUT, UPSTREAM = sys.argv[1:6]
    try:
        import expecttest  # noqa: F401  (torch's TestCase derives from expecttest.TestCase)
    except ImportError:
        stub = types.ModuleType("expecttest")
        stub.TestCase, stub.ACCEPT = unittest.TestCase, False
        sys.modules["expecttest"] = stub
    sys.path.insert(0, UPSTREAM)
    import patched_import

    patched_import.install(PATCHED)
    sys.argv = [TEST_FILE]
    import torch

    namespace = runpy.run_path(TEST_FILE, run_name="upstream_tests")
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(namespace["TestExponentialFamilyProducts"])
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=1).run(suite)

    spec = json.load(open(SPEC))
    products = {}
    exec(spec["products_source"], products)
    import pyro_expfam.distributions

    out = {
        "tests_run": result.testsRun,
        "ok": result.wasSuccessful(),
        "torch": products["_products"](torch.distributions, spec["factors"], spec["params"]),
        "expfam": products["_products"](pyro_expfam.distributions, spec["factors"], spec["params"]),
    }
    try:
        torch.distributions.Poisson(torch.tensor([3.0, 10.0, 2.0])).product_along_axis()
        out["poisson"] = "accepted"
    except NotImplementedError as e:
        out["poisson"] = str(e)
    with open(OUT, "w") as f:
        json.dump(out, f)
    """
)


def _apply(tree: pathlib.Path, patch: pathlib.Path) -> None:
    git, patch_tool = shutil.which("git"), shutil.which("patch")
    if git is not None:
        check = subprocess.run([git, "apply", "--check", str(patch)], cwd=tree, capture_output=True, text=True)
        assert check.returncode == 0, f"{patch.name} does not apply:\n{check.stderr}"
        subprocess.run([git, "apply", str(patch)], cwd=tree, check=True)
    else:
        args = [patch_tool, "-p1", "--forward", "--batch", "-i", str(patch)]
        check = subprocess.run([*args, "--dry-run"], cwd=tree, capture_output=True, text=True)
        assert check.returncode == 0, f"{patch.name} does not apply:\n{check.stdout}{check.stderr}"
        subprocess.run(args, cwd=tree, check=True, capture_output=True)


@pytest.fixture(scope="module")
def patched(tmp_path_factory) -> pathlib.Path:
    """A copy of the installed torch/distributions with the series applied (the tree root)."""
    if shutil.which("git") is None and shutil.which("patch") is None:
        pytest.skip("neither git nor patch is installed")
    tree = tmp_path_factory.mktemp("torch_upstream")
    installed = pathlib.Path(torch.distributions.__file__).parent
    shutil.copytree(installed, tree / "torch" / "distributions", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "test" / "distributions").mkdir(parents=True)
    if shutil.which("git") is not None:
        # a repository of its own, so that git apply never resolves paths against an enclosing one
        subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    for patch in PATCHES:
        _apply(tree, patch)
    return tree


@pytest.fixture(scope="module")
def patched_run(patched, tmp_path_factory) -> dict:
    """Run the series' tests and the products of fixed factors on the patched copy, in a subprocess."""
    work = tmp_path_factory.mktemp("torch_upstream_run")
    runner, spec, out = work / "runner.py", work / "spec.json", work / "out.json"
    runner.write_text(_RUNNER)
    source = "import torch\n\n" + inspect.getsource(_products)
    spec.write_text(json.dumps({"factors": FACTORS, "params": PRODUCT_PARAMS, "products_source": source}))
    proc = subprocess.run(
        [sys.executable, str(runner), str(patched), str(patched / TEST_FILE), str(spec), str(out), str(UPSTREAM)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0 and out.exists(), f"the patched run failed:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
    return {**json.loads(out.read_text()), "log": proc.stdout + proc.stderr}


def test_series_is_one_family_per_commit():
    assert len(PATCHES) == 10
    numbers = [int(p.name[:4]) for p in PATCHES]
    assert numbers == list(range(1, len(PATCHES) + 1))
    subjects = [re.search(r"^Subject: \[PATCH \d+/\d+\] (.*)$", p.read_text(), re.M).group(1) for p in PATCHES]
    assert subjects[0].startswith("ExponentialFamily:")
    families = [s.split(":")[0].split()[0] for s in subjects[1:]]
    assert sorted(families) == sorted(set(COVERED.values()))
    for patch in PATCHES:
        text = patch.read_text()
        touched = re.findall(r"^diff --git a/(\S+)", text, re.M)
        assert TEST_FILE in touched, f"{patch.name} adds no test"
        assert all(f == TEST_FILE or f.startswith("torch/distributions/") for f in touched)
        assert "pyro" not in "".join(line for line in text.splitlines() if line.startswith("+")).lower()


def test_series_covers_torch_exponential_families():
    # every ExponentialFamily subclass that the installed torch ships has _from_natural_params
    shipped = {
        name
        for name in dir(torch.distributions)
        if isinstance(getattr(torch.distributions, name), type)
        and issubclass(getattr(torch.distributions, name), torch.distributions.ExponentialFamily)
        and name != "ExponentialFamily"
    }
    assert shipped == set(COVERED)


def test_patches_apply_to_installed_torch(patched):
    for name, module in [("Normal", "normal"), ("Wishart", "wishart"), ("Chi2", "chi2")]:
        source = (patched / "torch" / "distributions" / f"{module}.py").read_text()
        assert "def _from_natural_params(" in source, name
    assert "def product_along_axis(" in (patched / "torch" / "distributions" / "exp_family.py").read_text()
    assert (patched / TEST_FILE).exists()


def test_torch_style_tests_pass_on_patched_classes(patched_run):
    assert patched_run["ok"], patched_run["log"][-4000:]
    assert patched_run["tests_run"] >= 17


def test_patched_poisson_refuses(patched_run):
    assert "Conway-Maxwell-Poisson" in patched_run["poisson"]
    with pytest.raises(NotImplementedError, match="Conway-Maxwell"):
        expfam.Poisson(torch.tensor([3.0, 10.0, 2.0])).product_along_axis()


@pytest.fixture(scope="module")
def expfam_products() -> dict:
    return _products(expfam, FACTORS, PRODUCT_PARAMS)


@pytest.mark.parametrize("family", sorted(FACTORS))
def test_patched_products_agree_with_pyro_expfam(patched_run, expfam_products, family):
    ours = expfam_products[family]
    # torch's patched classes, and pyro_expfam's classes on top of the patched torch
    for where in ("torch", "expfam"):
        theirs = patched_run[where][family]
        assert theirs["type"] == ours["type"], where
        for name, value in theirs["params"].items():
            torch.testing.assert_close(
                torch.tensor(value, dtype=torch.double),
                torch.tensor(ours["params"][name], dtype=torch.double),
                msg=f"{where}: {family}.{name}",
            )
