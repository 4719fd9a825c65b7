# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Mixture models on the exponential-family core, as scikit-learn style estimators
whose Pyro model/guide pairs stay public:

- :class:`DirichletProcessMixture`: truncated stick-breaking DP mixtures with
  conjugate emissions, fitted by CAVI, stochastic natural-gradient VI or SVI;
- :class:`ExpFamMixture`: finite mixtures of any family fitted by EM;
- :class:`GaussianMixture`: EM for Gaussian mixtures (full, tied, diag, spherical),
  a drop-in for :class:`sklearn.mixture.GaussianMixture`.
"""

from .base import BaseMixture, FittedTensor
from .dpmm import (
    BernoulliEmission,
    CategoricalEmission,
    ConjugateEmission,
    DiagGaussianEmission,
    DirichletProcessMixture,
    DPMixtureModel,
    FullGaussianEmission,
    PoissonEmission,
    SphericalGaussianEmission,
    UnitGaussianEmission,
    make_emission,
    mix_weights,
)
from .em import ExpFamMixture
from .gaussian import GaussianMixture
from .init import initial_responsibilities, kmeans, kmeans_plusplus

__all__ = [
    "BaseMixture",
    "BernoulliEmission",
    "CategoricalEmission",
    "ConjugateEmission",
    "DPMixtureModel",
    "DiagGaussianEmission",
    "DirichletProcessMixture",
    "ExpFamMixture",
    "FittedTensor",
    "FullGaussianEmission",
    "GaussianMixture",
    "PoissonEmission",
    "SphericalGaussianEmission",
    "UnitGaussianEmission",
    "initial_responsibilities",
    "kmeans",
    "kmeans_plusplus",
    "make_emission",
    "mix_weights",
]
