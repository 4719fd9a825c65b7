# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
scikit-learn's own estimator checks (``check_estimator``) on the finite
mixtures, every covariance type and several families.  A check that cannot
apply to a configuration is declared, with its reason, by the estimator's
``_expected_failed_checks()``; there are no blanket skips.
"""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from pyro_expfam.mixture import GaussianMixture
from pyro_expfam.util import ConvergenceWarning

ESTIMATORS = [
    GaussianMixture(2, covariance_type=ct, max_iter=20, random_state=0) for ct in ("full", "tied", "diag", "spherical")
]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: est._expected_failed_checks())
def test_sklearn_compatible(estimator, check):
    check(estimator)
