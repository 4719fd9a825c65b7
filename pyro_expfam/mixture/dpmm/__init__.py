# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Truncated stick-breaking Dirichlet-process mixtures with conjugate emissions:

- :mod:`~pyro_expfam.mixture.dpmm.emissions`, :mod:`~pyro_expfam.mixture.dpmm.gaussian`: conjugate
  emission families in natural parameters (Gaussian unit/spherical/diag/full/tied, Bernoulli, categorical, Poisson);
- :mod:`~pyro_expfam.mixture.dpmm.cavi`: exact-ELBO coordinate ascent (with merge moves) and stochastic
  natural-gradient VI;
- :mod:`~pyro_expfam.mixture.dpmm.model`: the Pyro model/guide pair for ``SVI`` + ``TraceEnum_ELBO``;
- :mod:`~pyro_expfam.mixture.dpmm.estimator`: :class:`DirichletProcessMixture`, the scikit-learn style estimator.
"""

from .cavi import (
    SufficientStatistics,
    cavi_pass,
    elbo,
    expected_log_weights,
    expected_weights,
    merge_and_sort,
    snvi_epoch,
    stick_kl,
    stick_posterior,
)
from .emissions import BernoulliEmission, CategoricalEmission, ConjugateEmission, PoissonEmission
from .estimator import DirichletProcessMixture, make_emission
from .gaussian import (
    DiagGaussianEmission,
    FullGaussianEmission,
    SphericalGaussianEmission,
    TiedGaussianEmission,
    UnitGaussianEmission,
)
from .model import DPMixtureModel, mix_weights

__all__ = [
    "BernoulliEmission",
    "CategoricalEmission",
    "ConjugateEmission",
    "DPMixtureModel",
    "DiagGaussianEmission",
    "DirichletProcessMixture",
    "FullGaussianEmission",
    "PoissonEmission",
    "SphericalGaussianEmission",
    "SufficientStatistics",
    "TiedGaussianEmission",
    "UnitGaussianEmission",
    "cavi_pass",
    "elbo",
    "expected_log_weights",
    "expected_weights",
    "make_emission",
    "merge_and_sort",
    "mix_weights",
    "snvi_epoch",
    "stick_kl",
    "stick_posterior",
]
