# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Pyro models built on the exponential-family core: overlapping mixture models
(Heller & Ghahramani 2007), finite and Indian-buffet-process, in
:mod:`pyro_expfam.models.overlapping`.
"""

from .overlapping import (
    BernoulliClusters,
    CategoricalClusters,
    ExpFamClusters,
    FiniteBetaPrior,
    IBPPrior,
    MultivariateNormalClusters,
    NormalClusters,
    OverlappingMixture,
    OverlappingMixtureModel,
)

__all__ = [
    "BernoulliClusters",
    "CategoricalClusters",
    "ExpFamClusters",
    "FiniteBetaPrior",
    "IBPPrior",
    "MultivariateNormalClusters",
    "NormalClusters",
    "OverlappingMixture",
    "OverlappingMixtureModel",
]
