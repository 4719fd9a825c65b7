# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Conjugate priors through natural parameters.

The posterior of a conjugate model is the prior's natural parameters plus the
summed sufficient statistics of the data, :math:`\eta_n = \eta_0 + \sum_i s(x_i)`,
and the log evidence is :math:`A(\eta_n) - A(\eta_0) + \sum_i h(x_i)`:

    >>> import torch
    >>> from pyro_expfam.distributions import Beta, Bernoulli
    >>> from pyro_expfam.conjugate import posterior, posterior_predictive
    >>> x = torch.tensor([1.0, 0.0, 1.0, 1.0])
    >>> post = posterior(Beta(2.0, 2.0), Bernoulli, x)
    >>> post.concentration1, post.concentration0
    (tensor(5.), tensor(3.))
    >>> posterior_predictive(Beta(2.0, 2.0), Bernoulli, x).probs
    tensor(0.6250)

Registered pairs (see :func:`conjugate_pairs`): Beta–Bernoulli, Beta–Binomial,
Beta–Geometric, Gamma–Poisson, Gamma–Exponential, Dirichlet–Categorical,
Dirichlet–OneHotCategorical, Dirichlet–Multinomial, Normal–Normal (known
scale), MultivariateNormal–MultivariateNormal (known covariance),
NormalGamma–Normal and NormalWishart–MultivariateNormal.  Priors and
likelihood classes may come from torch, Pyro or :mod:`pyro_expfam.distributions`.
"""

from . import pairs as _pairs  # noqa: F401  (registers the pairs)
from .beta_geometric import BetaGeometric
from .lomax import Lomax
from .normal_gamma import NormalGamma
from .normal_wishart import NormalWishart
from .registry import (
    ConjugatePair,
    conjugate_likelihood,
    conjugate_pair,
    conjugate_pairs,
    conjugate_statistics,
    conjugate_update,
    log_marginal_likelihood,
    posterior,
    posterior_from_statistics,
    posterior_predictive,
    register_conjugate,
)

__all__ = [
    "BetaGeometric",
    "ConjugatePair",
    "Lomax",
    "NormalGamma",
    "NormalWishart",
    "conjugate_likelihood",
    "conjugate_pair",
    "conjugate_pairs",
    "conjugate_statistics",
    "conjugate_update",
    "log_marginal_likelihood",
    "posterior",
    "posterior_from_statistics",
    "posterior_predictive",
    "register_conjugate",
]
