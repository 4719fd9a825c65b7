# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The family layer: one exponential family of the data with its conjugate prior, as every model of the
package uses it, built on :mod:`pyro_expfam.distributions` (the families) and :mod:`pyro_expfam.conjugate`
(their conjugate priors).

A :class:`ConjugateFamily` owns

- the **data checks** (:meth:`~ConjugateFamily.check_data`, :meth:`~ConjugateFamily.validate`): support,
  dtype and shape, with one message naming the argument (:func:`~pyro_expfam.families.checks.check_support`);
- the **sufficient statistics** ``t(x)`` and the **log carrier measure** ``k(x)``
  (:meth:`~ConjugateFamily.sufficient_statistics`);
- the **conjugate prior** with its data-dependent (empirical-Bayes) default hyper-parameters
  (:meth:`~ConjugateFamily.prior`);
- the **initialisation**: the space of the k-means start (:meth:`~ConjugateFamily.seed_features`) and the
  seeding functions of :mod:`~pyro_expfam.families.seeding`.

Families: :class:`BernoulliFamily` (Beta prior), :class:`CategoricalFamily` (Dirichlet), :class:`PoissonFamily`
(Gamma), :class:`GaussianFamily` (unit/spherical/diag/full/tied covariance, Normal, Normal-Gamma or
Normal-Wishart prior) and :class:`ExpFamFamily` (any core family, Diaconis-Ylvisaker prior); one registry,
:func:`get_family`.  The models are thin views on this layer: the DP mixture's
:class:`~pyro_expfam.mixture.dpmm.ConjugateEmission` (its variational coordinates ``phi``), the overlapping
model's :class:`~pyro_expfam.models.overlapping.ClusterFamily` (its real-valued Pyro sites) and
:class:`~pyro_expfam.mixture.ExpFamMixture` (its EM in mean parameters).

>>> import torch
>>> fam = get_family("bernoulli")
>>> fam.check_data(torch.tensor([[0.0, 2.0]]))  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
ValueError: X contains values outside the support of the Bernoulli family: Bernoulli needs binary entries in
{0, 1}
"""

from . import checks, seeding
from .base import ConjugateFamily
from .discrete import BernoulliFamily, CategoricalFamily, PoissonFamily
from .gaussian import COVARIANCE_TYPES, GaussianFamily, check_resolution
from .generic import ExpFamFamily, family_support, prototype_from_class, resolve_family
from .registry import FAMILY_NAMES, get_family

__all__ = [
    "COVARIANCE_TYPES",
    "FAMILY_NAMES",
    "BernoulliFamily",
    "CategoricalFamily",
    "ConjugateFamily",
    "ExpFamFamily",
    "GaussianFamily",
    "PoissonFamily",
    "check_resolution",
    "checks",
    "family_support",
    "get_family",
    "prototype_from_class",
    "resolve_family",
    "seeding",
]
