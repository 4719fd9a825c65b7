# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Exponential-family distributions with natural-parameter algebra, each a
drop-in replacement for the Pyro distribution of the same name.
"""

from .bernoulli import Bernoulli
from .beta import Beta
from .binomial import Binomial
from .categorical import Categorical
from .chi2 import Chi2
from .continuous_bernoulli import ContinuousBernoulli
from .dirichlet import Dirichlet
from .exp_family import ExponentialFamily, bregman_kl, product, weighted_product
from .exponential import Exponential
from .gamma import Gamma
from .geometric import Geometric
from .independent import Independent, product_along_axis
from .inverse_gamma import InverseGamma
from .kl import register_closed_form_kls
from .log_normal import LogNormal
from .multinomial import Multinomial
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical
from .poisson import Poisson
from .von_mises import VonMises
from .wishart import Wishart

#: Every family shipped by this package, in alphabetical order.
FAMILIES = (
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Chi2,
    ContinuousBernoulli,
    Dirichlet,
    Exponential,
    Gamma,
    Geometric,
    InverseGamma,
    LogNormal,
    Multinomial,
    MultivariateNormal,
    Normal,
    OneHotCategorical,
    Poisson,
    VonMises,
    Wishart,
)

register_closed_form_kls(FAMILIES)

__all__ = [
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Chi2",
    "ContinuousBernoulli",
    "Dirichlet",
    "Exponential",
    "ExponentialFamily",
    "FAMILIES",
    "Gamma",
    "Geometric",
    "Independent",
    "InverseGamma",
    "LogNormal",
    "Multinomial",
    "MultivariateNormal",
    "Normal",
    "OneHotCategorical",
    "Poisson",
    "VonMises",
    "Wishart",
    "bregman_kl",
    "product",
    "product_along_axis",
    "weighted_product",
]
