# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Where Pyro ships the posterior predictive (BetaBinomial, DirichletMultinomial,
GammaPoisson) the conjugate module returns Pyro's own class, for priors from
torch, Pyro or pyro_expfam alike.  Ground truth: the predictive is a ratio of
evidences, :math:`p(x\\mid D) = \\exp(\\log p(D, x) - \\log p(D))`, computed by
:func:`log_marginal_likelihood` through natural parameters (an independent
path), and for GammaPoisson also by quadrature over the rate.
"""

from __future__ import annotations

import pyro.distributions as pdist
import pytest
import torch
import torch.distributions as td

import pyro_expfam.distributions as expfam
from pyro_expfam.conjugate import log_marginal_likelihood, posterior_predictive

F64 = torch.float64


def _t(x):
    return torch.tensor(x, dtype=F64)


CASES = {
    "BetaBinomial": (
        lambda ns: ns.Beta(_t(2.0), _t(3.5)),
        "Binomial",
        _t([3.0, 5.0, 0.0, 2.0]),
        {"total_count": 5},
        torch.arange(6, dtype=F64),
        pdist.BetaBinomial,
    ),
    "DirichletMultinomial": (
        lambda ns: ns.Dirichlet(_t([1.0, 2.0, 0.5])),
        "Multinomial",
        _t([[1.0, 2.0, 1.0], [0.0, 4.0, 0.0], [3.0, 0.0, 1.0]]),
        {"total_count": 4},
        _t([[a, b, 4 - a - b] for a in range(5) for b in range(5 - a)]),
        pdist.DirichletMultinomial,
    ),
    "GammaPoisson": (
        lambda ns: ns.Gamma(_t(2.5), _t(0.7)),
        "Poisson",
        _t([3.0, 1.0, 4.0, 1.0, 5.0]),
        {},
        torch.arange(12, dtype=F64),
        pdist.GammaPoisson,
    ),
}


@pytest.mark.parametrize("namespace", [expfam, pdist, td], ids=["ours", "pyro", "torch"])
@pytest.mark.parametrize("name", list(CASES))
def test_predictive_is_pyros_class_and_an_evidence_ratio(name, namespace):
    make_prior, lik_name, data, fixed, xs, pyro_cls = CASES[name]
    prior, lik = make_prior(namespace), getattr(namespace, lik_name)
    pred = posterior_predictive(prior, lik, data, **fixed)
    assert type(pred) is pyro_cls
    evidence = log_marginal_likelihood(prior, lik, data, **fixed)
    for x in xs:
        joint = log_marginal_likelihood(prior, lik, torch.cat([data, x.unsqueeze(0)]), **fixed)
        torch.testing.assert_close(pred.log_prob(x), joint - evidence, rtol=1e-10, atol=1e-10)
    # the prior predictive too
    prior_pred = posterior_predictive(prior, lik, **fixed)
    assert type(prior_pred) is pyro_cls
    x = xs[1]
    torch.testing.assert_close(
        prior_pred.log_prob(x), log_marginal_likelihood(prior, lik, x.unsqueeze(0), **fixed), rtol=1e-10, atol=1e-10
    )


def test_gamma_poisson_predictive_by_quadrature():
    # p(x | D) = int Poisson(x | r) Gamma(r | a_n, b_n) dr, trapezoid on a fine grid of rates
    make_prior, _, data, _, xs, _ = CASES["GammaPoisson"]
    pred = posterior_predictive(make_prior(expfam), expfam.Poisson, data)
    post = td.Gamma(pred.concentration, pred.rate)
    r = torch.linspace(1e-9, 40.0, 200001, dtype=F64)
    for x in xs[:6]:
        dens = (td.Poisson(r).log_prob(x) + post.log_prob(r)).exp()
        torch.testing.assert_close(pred.log_prob(x).exp(), torch.trapezoid(dens, r), rtol=1e-7, atol=1e-12)
