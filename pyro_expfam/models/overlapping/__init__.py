# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Overlapping mixture models (Heller & Ghahramani 2007): each data point belongs
to a *set* of clusters and follows the normalised product of their densities.

- :class:`OverlappingMixture`: the scikit-learn estimator (fitted by Pyro's SVI; it holds an
  :class:`OverlappingMixtureModel` as ``model_``), with :func:`register_init_strategy` for new
  initialisations;
- :class:`OverlappingMixtureModel`: the Pyro model/guide pair on its own;
- cluster families (:mod:`.families`), membership priors (:mod:`.priors`),
  the matrix-product likelihood (:mod:`.likelihood`);
- :func:`match_clusters` / :func:`membership_accuracy` to score recovered
  memberships, :func:`demo` for a planted example.
"""

from .demo import demo
from .evaluation import match_clusters, membership_accuracy
from .families import (
    BernoulliClusters,
    CategoricalClusters,
    ClusterFamily,
    MultivariateNormalClusters,
    NormalClusters,
)
from .fit import OverlappingMixture, register_init_strategy
from .generic import ExpFamClusters
from .likelihood import MAX_EXACT_CLUSTERS, MembershipSets, OverlapLikelihood, membership_sets
from .marginal import OverlapMarginal
from .model import OverlappingMixtureModel
from .priors import FiniteBetaPrior, IBPPrior, MembershipPrior

__all__ = [
    "MAX_EXACT_CLUSTERS",
    "BernoulliClusters",
    "CategoricalClusters",
    "ClusterFamily",
    "ExpFamClusters",
    "FiniteBetaPrior",
    "IBPPrior",
    "MembershipPrior",
    "MembershipSets",
    "MultivariateNormalClusters",
    "NormalClusters",
    "OverlapLikelihood",
    "OverlapMarginal",
    "OverlappingMixture",
    "OverlappingMixtureModel",
    "demo",
    "match_clusters",
    "membership_accuracy",
    "membership_sets",
    "register_init_strategy",
]
