# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Run scikit-learn's own ``sklearn/mixture/tests/test_bayesian_mixture.py`` against
:class:`~pyro_expfam.mixture.dpmm.DirichletProcessMixture`, with the machinery of
:mod:`run` (``tools/sklearn_suites/run.py``): the file is copied at run time from
the installed scikit-learn into a scratch directory outside the project (no
scikit-learn code is committed), run once as it is (the baseline) and once with
``from sklearn.mixture import BayesianGaussianMixture`` replaced by our class
under that name.  Each test that fails with ours and passes with theirs is listed
with the reason below (why it tests scikit-learn's private internals or a
documented difference), or "unexplained".

Usage::

    python tools/sklearn_suites/run_bayesian.py [--source-dir DIR] [-k EXPR]

Results are written to ``tools/sklearn_suites/results_bayesian.json``.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import run  # noqa: E402  (tools/sklearn_suites/run.py)

# our class under scikit-learn's name (a subclass that only renames it, so that messages naming the class, e.g.
# "This BayesianGaussianMixture instance is not fitted yet", read as the suite expects)
run.SUITES["bayesian_mixture"] = (
    "test_bayesian_mixture.py",
    {"from sklearn.mixture import BayesianGaussianMixture":
     "from pyro_expfam.mixture.dpmm import DirichletProcessMixture\n\n\n"
     "class BayesianGaussianMixture(DirichletProcessMixture):\n"
     "    pass"},
)
run.RESULTS = run.HERE / "results_bayesian.json"

#: why a test of scikit-learn's suite fails with our class (by test name without parameters)
REASONS: dict[str, str] = {
    "test_bayesian_mixture_weights": (
        "recomputes the weights from scikit-learn's private layout of the stick posterior: weight_concentration_ "
        "as a tuple of two length-K arrays (K Beta sticks, the last one random too) and weights renormalised to "
        "sum to one.  Ours is the proper truncation (K-1 Beta sticks, v_K = 1, so E[pi] sums to one exactly), "
        "stored as a (K-1, 2) array.  The finite-Dirichlet half of the test passes; the stick-breaking weights "
        "are tested in tests/mixture/test_dpmm_inference.py (mix_weights, expected_weights against Monte Carlo)."
    ),
    "test_compare_covar_type": (
        "calls the private methods _check_parameters(X) and _initialize_parameters(X, RandomState) with numpy "
        "arrays on an unfitted estimator (ours take validated tensors and a torch.Generator), and checks "
        "scikit-learn's tied approximation (the tied covariance as the mean of the per-component full ones, "
        "degrees of freedom nu0 + N/K).  Ours is the exact shared Normal-Wishart posterior (nu0 + N), tested "
        "against its closed form and against scikit-learn for one component in tests/mixture/test_dpmm_parity.py."
    ),
}
run.REASONS.update(REASONS)


if __name__ == "__main__":
    if "--suite" not in sys.argv:
        sys.argv += ["--suite", "bayesian_mixture"]
    run.main()
