# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Run scikit-learn's own mixture test suites against pyro_expfam's estimators.

Each suite file is copied at run time from the installed scikit-learn (or from
``--source-dir``, e.g. a checkout of scikit-learn at the installed version)
into a scratch directory outside the project -- no scikit-learn code is
committed -- and run twice with pytest: once as it is (the baseline: their
class) and once with the import of the estimator substituted by ours
(``from sklearn.mixture import GaussianMixture`` ->
``from pyro_expfam.mixture import GaussianMixture``).  A test is a failure of
ours where it fails with our class and passes with theirs; each such failure
is listed with the reason recorded in ``REASONS`` (why it is a test of
scikit-learn's private internals), or "unexplained".

Usage::

    python tools/sklearn_suites/run.py [--suite gaussian_mixture] [--source-dir DIR] [-k EXPR]

The float32 variants of scikit-learn's dtype-parametrised tests are included
(``SKLEARN_RUN_FLOAT32_TESTS=1``); its array-API tests are skipped by
scikit-learn itself unless ``SCIPY_ARRAY_API=1`` and an array library are set up.

Results (counts, every failing test with its reason) are merged into
``tools/sklearn_suites/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = HERE / "results.json"

#: suite name -> (file under sklearn/mixture/tests, {their import line: our import line})
SUITES = {
    "gaussian_mixture": (
        "test_gaussian_mixture.py",
        {"from sklearn.mixture import GaussianMixture": "from pyro_expfam.mixture import GaussianMixture"},
    ),
}

#: why a test that fails with our class is about scikit-learn's private internals (by test name prefix)
REASONS: dict[str, str] = {
    "test_check_weights": (
        "expects scikit-learn's out-of-range message, which prints the minimum as 'max value' and the maximum as "
        "'min value' (a bug in sklearn.mixture._gaussian_mixture._check_weights); ours labels them the right way "
        "round. The test's other messages (shape, normalisation) match ours."
    ),
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
        "counts calls to scikit-learn's private function sklearn.mixture._gaussian_mixture."
        "_estimate_gaussian_parameters through a mock; our class never calls scikit-learn's function (0 calls "
        "!= n_iter_). The behaviour it protects (no estimate at initialisation when all *_init are given) is "
        "tested in tests/mixture/test_reliability.py::test_initial_parameters_given_skip_kmeans."
    ),
    "test_gaussian_mixture_precisions_init": (
        "calls the private methods _initialize(X, resp) on an unfitted estimator with numpy arrays and "
        "_set_parameters of scikit-learn's class; ours keeps tensors in private state with other private hooks. "
        "precisions_init itself is tested in tests/mixture/test_em_gaussian.py (same fit as scikit-learn from "
        "the same initial parameters)."
    ),
    "test_gaussian_mixture_precisions_init_diag": (
        "needs our k-means start to pick the same labels as scikit-learn's KMeans(random_state=0), i.e. the same "
        "numpy RandomState stream; ours draws from a torch.Generator, so EM starts from other labels and takes 2 "
        "iterations instead of 3. From identical initial parameters both agree "
        "(tests/mixture/test_em_gaussian.py::test_matches_sklearn_from_same_init)."
    ),
}


def _source(args, filename: str) -> pathlib.Path:
    if args.source_dir:
        path = pathlib.Path(args.source_dir) / filename
    else:
        import sklearn

        path = pathlib.Path(sklearn.__file__).parent / "mixture" / "tests" / filename
    if not path.exists():
        sys.exit(f"{path} not found: pass --source-dir pointing at sklearn/mixture/tests of scikit-learn "
                 "(e.g. a checkout of github.com/scikit-learn/scikit-learn at the installed version)")
    return path


def _run(test_file: pathlib.Path, xml: pathlib.Path, k: str | None) -> dict[str, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval", "-o", "addopts=",
           "--rootdir", str(test_file.parent), "-x" if False else "-q", str(test_file), f"--junitxml={xml}"]
    if k:
        cmd += ["-k", k]
    # SKLEARN_RUN_FLOAT32_TESTS: also the float32 variants of the dtype-parametrised tests
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               SKLEARN_RUN_FLOAT32_TESTS="1")
    subprocess.run(cmd, cwd=test_file.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outcomes = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name")
        status = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed"
                outcomes.setdefault("_messages", {})
            elif child.tag == "skipped":
                status = "skipped"
        outcomes[name] = status
    outcomes.pop("_messages", None)
    return outcomes


def _messages(xml: pathlib.Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        for child in case:
            if child.tag in ("failure", "error"):
                out[case.get("name")] = (child.get("message") or "").splitlines()[0][:300]
    return out


def _reason(name: str) -> str:
    base = re.sub(r"\[.*", "", name)
    return REASONS.get(base, "unexplained")


def run_suite(args, suite: str) -> dict:
    filename, substitutions = SUITES[suite]
    src = _source(args, filename)
    with tempfile.TemporaryDirectory(prefix=f"sklearn_{suite}_") as tmp:
        tmp = pathlib.Path(tmp)
        theirs, ours = tmp / "theirs", tmp / "ours"
        for d in (theirs, ours):
            d.mkdir()
            # scikit-learn's fixtures (global_random_seed, ...) and hooks, from its installed conftest
            (d / "conftest.py").write_text("from sklearn.conftest import *  # noqa: F401,F403\n")
        shutil.copy(src, theirs / filename)
        text = src.read_text()
        for old, new in substitutions.items():
            if old not in text:
                sys.exit(f"{filename}: the import {old!r} to substitute was not found")
            text = text.replace(old, new)
        (ours / filename).write_text(text)
        base = _run(theirs / filename, tmp / "theirs.xml", args.k)
        mine = _run(ours / filename, tmp / "ours.xml", args.k)
        messages = _messages(tmp / "ours.xml")
    ours_failed = sorted(n for n, s in mine.items() if s == "failed" and base.get(n) == "passed")
    return {
        "file": f"sklearn/mixture/tests/{filename}",
        "substituted": substitutions,
        "tests": len(mine),
        "passed": sum(s == "passed" for s in mine.values()),
        "failed": sum(s == "failed" for s in mine.values()),
        "skipped": sum(s == "skipped" for s in mine.values()),
        "baseline": {s: sum(v == s for v in base.values()) for s in ("passed", "failed", "skipped")},
        "failures_of_ours": [{"test": n, "reason": _reason(n), "message": messages.get(n, "")} for n in ours_failed],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), action="append")
    parser.add_argument("--source-dir", help="directory holding scikit-learn's mixture test files")
    parser.add_argument("-k", help="pytest -k expression (for a quick partial run; not written to results)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for suite in args.suite or sorted(SUITES):
        res = run_suite(args, suite)
        import sklearn

        res["sklearn"] = sklearn.__version__
        print(json.dumps(res, indent=1))
        if not args.k:
            results[suite] = res
    if not args.k:
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
