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
from .half_normal import HalfNormal
from .independent import Independent, product_along_axis
from .inverse_gamma import InverseGamma
from .kl import register_closed_form_kls
from .laplace import Laplace
from .log_normal import LogNormal
from .multinomial import Multinomial
from .multivariate_normal import MultivariateNormal
from .negative_binomial import NegativeBinomial
from .normal import Normal
from .one_hot_categorical import OneHotCategorical
from .pareto import Pareto
from .poisson import Poisson
from .von_mises import VonMises
from .weibull import Weibull
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
    HalfNormal,
    InverseGamma,
    Laplace,
    LogNormal,
    Multinomial,
    MultivariateNormal,
    NegativeBinomial,
    Normal,
    OneHotCategorical,
    Pareto,
    Poisson,
    VonMises,
    Weibull,
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
    "HalfNormal",
    "Independent",
    "InverseGamma",
    "Laplace",
    "LogNormal",
    "Multinomial",
    "MultivariateNormal",
    "NegativeBinomial",
    "Normal",
    "OneHotCategorical",
    "Pareto",
    "Poisson",
    "VonMises",
    "Weibull",
    "Wishart",
    "bregman_kl",
    "product",
    "product_along_axis",
    "weighted_product",
]
