# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
scikit-learn conformance of :class:`DirichletProcessMixture`: scikit-learn's own estimator checks
(``parametrize_with_checks``) for every Gaussian covariance type, both weight priors, the stochastic
natural-gradient method and the discrete emissions.  The only checks declared as expected failures are the
Bernoulli emission's fitting checks, whose data (integers ``0..3``) lie outside its support ``{0, 1}``
(:meth:`DirichletProcessMixture._expected_failed_checks` gives each reason).
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from pyro_expfam.mixture.dpmm import DirichletProcessMixture

_SMALL = {"n_components": 2, "max_iter": 5, "random_state": 0}

ESTIMATORS = [
    *(DirichletProcessMixture(covariance_type=ct, **_SMALL) for ct in ("unit", "spherical", "diag", "tied", "full")),
    DirichletProcessMixture(weight_concentration_prior_type="dirichlet_distribution", **_SMALL),
    DirichletProcessMixture(covariance_type="tied", weight_concentration_prior_type="dirichlet_distribution",
                            init_params="random_from_data", **_SMALL),
    DirichletProcessMixture(method="snvi", covariance_type="diag", batch_size=8, **_SMALL),
    DirichletProcessMixture(emission="bernoulli", **_SMALL),
    DirichletProcessMixture(emission="poisson", **_SMALL),
    DirichletProcessMixture(emission="categorical", **_SMALL),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: est._expected_failed_checks(),
                         xfail_strict=True)  # a declared failure that passes is an error
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
