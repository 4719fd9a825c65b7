# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Family-specific checks for the continuous families Gamma, Chi2, Beta,
Dirichlet, InverseGamma, LogNormal and VonMises that the generic conformance
battery does not cover: the Newton / fixed-point inverse mean maps (convergence
over wide parameter ranges, agreement with scipy's maximum-likelihood fits,
implicit gradients), the mean-parameter-space and natural-parameter-space
errors, and the worked product examples checked by quadrature.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special
import scipy.stats
import torch

from pyro_expfam.distributions import (
    Beta,
    Chi2,
    Dirichlet,
    Gamma,
    InverseGamma,
    LogNormal,
    VonMises,
    product,
    weighted_product,
)

F64 = torch.float64


def _t(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=F64)


def _quad_log_norm_and_pdf(log_f, lo, hi, points=None):
    """Normalise exp(log_f) on (lo, hi) by adaptive quadrature; return (log Z, normalised pdf)."""
    z, _ = scipy.integrate.quad(lambda x: math.exp(log_f(x)), lo, hi, points=points, epsabs=0, epsrel=1e-12, limit=200)
    return math.log(z), lambda x: math.exp(log_f(x)) / z


# --------------------------------------------------------------------------- #
# Gamma
# --------------------------------------------------------------------------- #
def test_gamma_from_mean_parameters_converges_over_wide_range():
    # shapes spanning 1e-3 .. 1e4; recovery is limited only by the conditioning of
    # s = log E[x] - E[log x] (~1/(2a) for large a: relative error ~ eps * |log E[x]| * 2a),
    # which allows 1e-10 relative in float64 up to a ~ 1e4
    a = torch.logspace(-3, 4, 29, dtype=F64)
    b = torch.logspace(-2, 2, 29, dtype=F64).flip(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = Gamma.from_mean_parameters(*Gamma(a, b).mean_parameters())
    torch.testing.assert_close(fit.concentration, a, rtol=1e-10, atol=0)
    torch.testing.assert_close(fit.rate, b, rtol=1e-10, atol=0)


def test_gamma_from_mean_parameters_matches_scipy_mle():
    # the inverse mean map applied to average sufficient statistics is the MLE
    rng = np.random.default_rng(0)
    data = rng.gamma(2.5, 1 / 1.7, size=500)
    a_ref, _, scale_ref = scipy.stats.gamma.fit(data, floc=0)
    x = _t(data)
    fit = Gamma.from_mean_parameters(x.log().mean(), x.mean())
    # scipy solves the same equation log(a) - digamma(a) = s with a root finder (xtol ~1e-12)
    assert abs(fit.concentration.item() - a_ref) < 1e-8 * a_ref
    assert abs(1 / fit.rate.item() - scale_ref) < 1e-8 * scale_ref


def test_gamma_from_mean_parameters_batched_float32_and_grad():
    a = torch.tensor([[0.5, 2.0], [7.0, 30.0]])
    b = torch.tensor([1.5, 0.3])
    fit = Gamma.from_mean_parameters(*Gamma(a, b).mean_parameters())
    assert fit.concentration.dtype == torch.float32 and fit.batch_shape == (2, 2)
    torch.testing.assert_close(fit.concentration, a, rtol=1e-4, atol=0)

    # implicit-function gradients: d a / d s = 1 / (1/a - trigamma(a)) for s = log E[x] - E[log x]
    def shape_of(mean_log, mean_x):
        return Gamma.from_mean_parameters(mean_log, mean_x).concentration

    m = [p.detach().to(F64).requires_grad_() for p in Gamma(_t([0.7, 3.0]), _t([2.0, 0.5])).mean_parameters()]
    assert torch.autograd.gradcheck(shape_of, m)


@pytest.mark.parametrize(
    "mean_log,mean_x,match",
    [
        (0.0, 1.0, "log\\(mean_x\\)"),  # E[log x] = log E[x]: a point mass, not a Gamma
        (0.5, 1.0, "log\\(mean_x\\)"),  # violates Jensen
        (0.0, -1.0, "positive"),
        (float("nan"), 1.0, "finite"),
    ],
)
def test_gamma_from_mean_parameters_outside_space_raises(mean_log, mean_x, match):
    with pytest.raises(ValueError, match=match):
        Gamma.from_mean_parameters(_t(mean_log), _t(mean_x))


def test_gamma_product_formula_and_natural_space_error():
    p = product(Gamma(_t(2.0), _t(1.0)), Gamma(_t(3.0), _t(0.5)), Gamma(_t(1.5), _t(2.0)))
    torch.testing.assert_close(p.concentration, _t(2.0 + 3.0 + 1.5 - 2))
    torch.testing.assert_close(p.rate, _t(3.5))
    # shapes summing to <= 0 (in the natural parameter a - 1 > -1): ValueError, never NaN
    with pytest.raises(ValueError, match="natural parameter space"):
        product(Gamma(_t(0.3), _t(1.0)), Gamma(_t(0.5), _t(1.0)))
    with pytest.raises(ValueError, match="natural parameter space"):
        weighted_product([Gamma(_t(2.0), _t(1.0)), Gamma(_t(2.0), _t(1.0))], [1.0, -1.0])


# --------------------------------------------------------------------------- #
# Chi2
# --------------------------------------------------------------------------- #
def test_chi2_product_is_gamma_by_quadrature():
    dfs = [3.0, 4.5, 2.5]
    d = Chi2(_t(dfs))
    prod, log_z = d._product_with_log_normalizer(0, keepdim=False)
    assert type(prod) is Gamma
    torch.testing.assert_close(prod.concentration, _t(sum(v / 2 - 1 for v in dfs) + 1))
    torch.testing.assert_close(prod.rate, _t(1.5))

    def log_f(x):
        return sum(scipy.stats.chi2.logpdf(x, v) for v in dfs)

    ref_log_z, pdf = _quad_log_norm_and_pdf(log_f, 0, np.inf)
    assert abs(log_z.item() - ref_log_z) < 1e-9
    for x in [0.05, 0.7, 2.0, 6.0]:
        assert abs(prod.log_prob(_t(x)).item() - math.log(pdf(x))) < 1e-9
    # the product is not a Chi2: no Chi2 has rate 3/2
    assert not torch.allclose(prod.log_prob(_t(1.0)), Chi2(2 * prod.concentration).log_prob(_t(1.0)))


def test_chi2_weighted_product_and_conjugate_update():
    a, b = Chi2(_t(3.0)), Chi2(_t(5.0))
    w = weighted_product([a, b], [0.5, 2.0])
    assert type(w) is Gamma
    torch.testing.assert_close(w.concentration, _t(0.5 * 0.5 + 2.0 * 1.5 + 1))
    torch.testing.assert_close(w.rate, _t(1.25))
    fg, log_norm = a.conjugate_update(b)
    x = _t([0.3, 1.0, 4.0])
    torch.testing.assert_close(a.log_prob(x) + b.log_prob(x), fg.log_prob(x) + log_norm)
    with pytest.raises(ValueError, match="natural parameter space"):
        weighted_product([a, b], [0.0, 0.0])  # rate 0: no normalised product


def test_chi2_from_mean_parameters_matches_quadrature():
    # E[log x] of chi2(df) by quadrature in u = log x (no singularity at x = 0), inverted back to df
    for df in [0.3, 1.0, 4.0, 50.0]:
        mean_log, _ = scipy.integrate.quad(
            lambda u, df=df: u * math.exp(scipy.stats.chi2.logpdf(math.exp(u), df) + u),
            -400.0,  # the density of u decays like exp(df * u / 2): < 1e-20 beyond
            7.0,  # x < 1100: the chi2(50) tail beyond is < 1e-100
            epsabs=1e-13,
            limit=400,
        )
        torch.testing.assert_close(Chi2(_t(df)).mean_parameters()[0], _t(mean_log), rtol=0, atol=1e-9)
        fit = Chi2.from_mean_parameters(_t(mean_log))
        assert abs(fit.df.item() - df) < 1e-8 * df
    with pytest.raises(ValueError, match="finite"):
        Chi2.from_mean_parameters(_t(float("inf")))


# --------------------------------------------------------------------------- #
# Beta
# --------------------------------------------------------------------------- #
def test_beta_product_example_by_quadrature():
    # Beta(a1, b1) * Beta(a2, b2) = Beta(a1 + a2 - 1, b1 + b2 - 1)
    a1, b1, a2, b2 = 2.0, 3.0, 4.0, 1.5
    p, log_z = Beta(_t([a1, a2]), _t([b1, b2]))._product_with_log_normalizer(0, keepdim=False)
    torch.testing.assert_close(p.concentration1, _t(a1 + a2 - 1))
    torch.testing.assert_close(p.concentration0, _t(b1 + b2 - 1))

    def log_f(x):
        return scipy.stats.beta.logpdf(x, a1, b1) + scipy.stats.beta.logpdf(x, a2, b2)

    ref_log_z, pdf = _quad_log_norm_and_pdf(log_f, 0, 1)
    assert abs(log_z.item() - ref_log_z) < 1e-10
    xs = np.linspace(0.01, 0.99, 50)
    ours = p.log_prob(_t(xs)).exp().numpy()
    np.testing.assert_allclose(ours, [pdf(x) for x in xs], rtol=1e-9)
    # summing torch's raw concentrations is far off (total variation ~0.1)
    naive = scipy.stats.beta(a1 + a2, b1 + b2)
    tv = 0.5 * scipy.integrate.quad(lambda x: abs(naive.pdf(x) - pdf(x)), 0, 1)[0]
    assert tv > 0.05


def test_beta_from_mean_parameters_matches_scipy_mle():
    rng = np.random.default_rng(1)
    data = rng.beta(0.7, 2.3, size=400)
    a_ref, b_ref, _, _ = scipy.stats.beta.fit(data, floc=0, fscale=1)
    x = _t(data)
    fit = Beta.from_mean_parameters(x.log().mean(), torch.log1p(-x).mean())
    # scipy's fit with fixed loc/scale solves the same score equations with fsolve (tolerance ~1e-8)
    assert abs(fit.concentration1.item() - a_ref) < 1e-6 * a_ref
    assert abs(fit.concentration0.item() - b_ref) < 1e-6 * b_ref


def test_beta_from_mean_parameters_errors():
    with pytest.raises(ValueError, match="mean-parameter space"):
        Beta.from_mean_parameters(_t(math.log(0.5)), _t(math.log(0.5)))  # exp sum = 1: a point mass
    with pytest.raises(ValueError, match="mean-parameter space"):
        Beta.from_mean_parameters(_t(-0.1), _t(-0.2))
    with pytest.raises(ValueError, match="finite"):
        Beta.from_mean_parameters(_t(float("-inf")), _t(-1.0))


def test_beta_product_leaving_natural_space_raises():
    with pytest.raises(ValueError, match="natural parameter space"):
        product(Beta(_t(0.5), _t(2.0)), Beta(_t(0.4), _t(2.0)))


# --------------------------------------------------------------------------- #
# Dirichlet
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("k", [2, 3, 10, 50])
def test_dirichlet_from_mean_parameters_converges_over_wide_range(k):
    # concentrations from 1e-3 to 1e4, mixed within one vector
    g = torch.Generator().manual_seed(k)
    alpha = torch.empty(64, k, dtype=F64).uniform_(math.log(1e-3), math.log(1e4), generator=g).exp()
    mean_log = Dirichlet(alpha).mean_parameters()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = Dirichlet.from_mean_parameters(mean_log)
    # the defining equations hold to rounding level ...
    torch.testing.assert_close(fit.mean_parameters()[0], mean_log, rtol=1e-12, atol=1e-12)
    # ... and alpha is recovered up to the conditioning of psi(alpha_k) - psi(alpha_0) (~1e-8 at worst here)
    torch.testing.assert_close(fit.concentration, alpha, rtol=1e-6, atol=0)


def test_dirichlet_from_mean_parameters_matches_direct_mle():
    # maximise the Dirichlet log-likelihood directly with scipy and compare
    rng = np.random.default_rng(2)
    alpha_true = np.array([0.6, 2.0, 5.0])
    data = rng.dirichlet(alpha_true, size=300)
    mean_log = np.log(data).mean(0)

    def neg_ll(log_alpha):
        a = np.exp(log_alpha)
        return -(scipy.special.gammaln(a.sum()) - scipy.special.gammaln(a).sum() + ((a - 1) * mean_log).sum())

    ref = np.exp(scipy.optimize.minimize(neg_ll, np.zeros(3), method="BFGS", options={"gtol": 1e-12}).x)
    fit = Dirichlet.from_mean_parameters(_t(mean_log))
    np.testing.assert_allclose(fit.concentration.numpy(), ref, rtol=1e-5)


def test_dirichlet_from_mean_parameters_grad_and_errors():
    def conc(m):
        return Dirichlet.from_mean_parameters(m).concentration

    m = Dirichlet(_t([[0.5, 2.0, 4.0], [3.0, 1.0, 9.0]])).mean_parameters()[0].detach().requires_grad_()
    assert torch.autograd.gradcheck(conc, (m,))
    with pytest.raises(ValueError, match="mean-parameter space"):
        Dirichlet.from_mean_parameters(_t([math.log(0.5), math.log(0.3), math.log(0.2)]))
    with pytest.raises(ValueError, match="size >= 2"):
        Dirichlet.from_mean_parameters(_t([-1.0]))


def test_dirichlet_product_is_shifted_and_agrees_with_beta():
    a = _t([[2.0, 3.0, 1.0], [1.0, 1.5, 4.0], [0.7, 2.0, 2.0]])
    p = Dirichlet(a).product_along_axis(0, keepdim=False)
    torch.testing.assert_close(p.concentration, a.sum(0) - 2)
    # with K = 2 the Dirichlet product is the Beta product
    d2 = Dirichlet(_t([[2.0, 3.0], [4.0, 1.5]])).product_along_axis(0, keepdim=False)
    b2 = Beta(_t([2.0, 4.0]), _t([3.0, 1.5])).product_along_axis(0, keepdim=False)
    torch.testing.assert_close(d2.concentration, torch.stack([b2.concentration1, b2.concentration0]))
    with pytest.raises(ValueError, match="natural parameter space"):
        product(Dirichlet(_t([0.5, 2.0])), Dirichlet(_t([0.4, 2.0])))


# --------------------------------------------------------------------------- #
# InverseGamma
# --------------------------------------------------------------------------- #
def test_inverse_gamma_product_by_quadrature():
    # InvGamma(a1, b1) * InvGamma(a2, b2) = InvGamma(a1 + a2 + 1, b1 + b2)
    a1, b1, a2, b2 = 2.0, 1.0, 3.0, 0.5
    p, log_z = InverseGamma(_t([a1, a2]), _t([b1, b2]))._product_with_log_normalizer(0, keepdim=False)
    torch.testing.assert_close(p.concentration, _t(a1 + a2 + 1))
    torch.testing.assert_close(p.rate, _t(b1 + b2))

    def log_f(x):
        return scipy.stats.invgamma.logpdf(x, a1, scale=b1) + scipy.stats.invgamma.logpdf(x, a2, scale=b2)

    ref_log_z, pdf = _quad_log_norm_and_pdf(log_f, 0, np.inf, points=None)
    assert abs(log_z.item() - ref_log_z) < 1e-9
    for x in [0.05, 0.2, 1.0, 3.0]:
        assert abs(p.log_prob(_t(x)).item() - math.log(pdf(x))) < 1e-9


def test_inverse_gamma_mean_parameters_and_inverse():
    d = InverseGamma(_t([0.8, 3.0]), _t([2.0, 0.4]))
    # E[log x] and E[1/x] by quadrature against scipy's density
    for i, (a, b) in enumerate([(0.8, 2.0), (3.0, 0.4)]):
        pdf = scipy.stats.invgamma(a, scale=b).pdf
        e_log = scipy.integrate.quad(lambda x, pdf=pdf: math.log(x) * pdf(x), 0, np.inf, limit=200)[0]
        e_inv = scipy.integrate.quad(lambda x, pdf=pdf: pdf(x) / x, 0, np.inf, limit=200)[0]
        ml, mi = d.mean_parameters()
        assert abs(ml[i].item() - e_log) < 1e-7 and abs(mi[i].item() - e_inv) < 1e-7
    fit = InverseGamma.from_mean_parameters(*d.mean_parameters())
    torch.testing.assert_close(fit.concentration, d.concentration, rtol=1e-12, atol=0)
    torch.testing.assert_close(fit.rate, d.rate, rtol=1e-12, atol=0)
    torch.testing.assert_close(d.entropy(), _t([scipy.stats.invgamma(0.8, scale=2.0).entropy(),
                                                scipy.stats.invgamma(3.0, scale=0.4).entropy()]))
    with pytest.raises(ValueError, match="mean-parameter space"):
        InverseGamma.from_mean_parameters(_t(0.0), _t(1.0))  # -E[log x] = log E[1/x]


# --------------------------------------------------------------------------- #
# LogNormal
# --------------------------------------------------------------------------- #
def test_log_normal_product_is_a_log_normal_by_quadrature():
    # k(x) = -log x is linear in t(x) = (log x, log^2 x), so the product IS a LogNormal:
    # loc = (sum_i lambda_i mu_i - (n - 1)) / sum_i lambda_i, scale = (sum_i lambda_i)^(-1/2)
    mus, sigmas = [0.0, 1.0, -0.5], [1.0, 0.5, 2.0]
    p, log_z = LogNormal(_t(mus), _t(sigmas))._product_with_log_normalizer(0, keepdim=False)
    lam = [s**-2 for s in sigmas]
    assert type(p) is LogNormal
    torch.testing.assert_close(p.loc, _t((sum(li * mi for li, mi in zip(lam, mus)) - 2) / sum(lam)))
    torch.testing.assert_close(p.scale, _t(sum(lam) ** -0.5))

    def log_f(x):
        return sum(scipy.stats.lognorm.logpdf(x, s, scale=math.exp(m)) for m, s in zip(mus, sigmas))

    ref_log_z, pdf = _quad_log_norm_and_pdf(log_f, 0, np.inf, points=None)
    assert abs(log_z.item() - ref_log_z) < 1e-9
    for x in [0.1, 0.5, 1.0, 2.5]:
        assert abs(p.log_prob(_t(x)).item() - math.log(pdf(x))) < 1e-9
    # the naive answer (the Normal product of the underlying log x) is a different distribution
    naive_loc = sum(li * mi for li, mi in zip(lam, mus)) / sum(lam)
    assert abs(naive_loc - p.loc.item()) > 0.3


def test_log_normal_mean_parameters_entropy_and_errors():
    d = LogNormal(_t([0.3, -1.0]), _t([0.5, 2.0]))
    fit = LogNormal.from_mean_parameters(*d.mean_parameters())
    torch.testing.assert_close(fit.loc, d.loc)
    torch.testing.assert_close(fit.scale, d.scale)
    ref = [
        scipy.stats.lognorm(0.5, scale=math.exp(0.3)).entropy(),
        scipy.stats.lognorm(2.0, scale=math.exp(-1.0)).entropy(),
    ]
    torch.testing.assert_close(d.entropy(), _t(ref))
    with pytest.raises(ValueError, match="variance"):
        LogNormal.from_mean_parameters(_t(1.0), _t(1.0))


# --------------------------------------------------------------------------- #
# VonMises
# --------------------------------------------------------------------------- #
def test_von_mises_log_prob_and_entropy_match_scipy():
    loc, kappa = _t([0.3, -2.0, 1.0, 0.0]), _t([0.01, 1.0, 30.0, 700.0])
    d = VonMises(loc, kappa)
    x = _t([0.5, -1.0, 1.1, 0.01])
    ref = scipy.stats.vonmises.logpdf(x.numpy(), kappa.numpy(), loc=loc.numpy())
    # exact Bessel function (torch's own log_prob is only accurate to ~1e-7 here)
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref, rtol=1e-12, atol=1e-12)
    ref_h = [scipy.stats.vonmises(k).entropy() for k in kappa.tolist()[:3]]
    np.testing.assert_allclose(d.entropy()[:3].numpy(), ref_h, rtol=1e-9)


def test_von_mises_from_mean_parameters_matches_scipy_root():
    kappa = _t([1e-4, 0.1, 1.0, 5.0, 50.0, 1e3])
    loc = _t([0.0, 1.0, -2.0, 3.0, -0.5, 2.5])
    d = VonMises(loc, kappa)
    mc, ms = d.mean_parameters()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = VonMises.from_mean_parameters(mc, ms)
    r = torch.hypot(mc, ms).tolist()
    ref = [
        scipy.optimize.brentq(lambda k, r=ri: scipy.special.i1e(k) / scipy.special.i0e(k) - r, 1e-12, 1e6, xtol=1e-14)
        for ri in r
    ]
    np.testing.assert_allclose(fit.concentration.numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(fit.concentration.numpy(), kappa.numpy(), rtol=1e-9)
    torch.testing.assert_close(fit.loc, loc)

    def conc(mc, ms):
        return VonMises.from_mean_parameters(mc, ms).concentration

    m = [p.detach().requires_grad_() for p in VonMises(_t([0.3, 1.0]), _t([0.5, 4.0])).mean_parameters()]
    assert torch.autograd.gradcheck(conc, m)


@pytest.mark.parametrize("mc,ms,match", [(0.8, 0.6, "< 1"), (1.0, 0.0, "< 1"), (0.0, 0.0, "kappa = 0")])
def test_von_mises_from_mean_parameters_outside_space_raises(mc, ms, match):
    with pytest.raises(ValueError, match=match):
        VonMises.from_mean_parameters(_t(mc), _t(ms))


def test_von_mises_product_by_quadrature_and_kappa_zero():
    locs, kappas = [0.0, math.pi / 2, 2.0], [1.0, 1.0, 0.5]
    p, log_z = VonMises(_t(locs), _t(kappas))._product_with_log_normalizer(0, keepdim=False)
    c = sum(k * math.cos(m) for m, k in zip(locs, kappas))
    s = sum(k * math.sin(m) for m, k in zip(locs, kappas))
    torch.testing.assert_close(p.concentration, _t(math.hypot(c, s)))
    torch.testing.assert_close(p.loc, _t(math.atan2(s, c)))

    def log_f(x):
        return sum(scipy.stats.vonmises.logpdf(x, k, loc=m) for m, k in zip(locs, kappas))

    ref_log_z, pdf = _quad_log_norm_and_pdf(log_f, -math.pi, math.pi)
    assert abs(log_z.item() - ref_log_z) < 1e-10
    for x in [-3.0, -1.0, 0.5, 2.5]:
        assert abs(p.log_prob(_t(x)).item() - math.log(pdf(x))) < 1e-10
    # exactly cancelling natural parameters: the uniform distribution, not a von Mises with kappa > 0
    a = VonMises(_t(0.7), _t(2.0))
    with pytest.raises(ValueError, match="kappa = 0"):
        weighted_product([a, a], [1.0, -1.0])
    with pytest.raises(ValueError, match="kappa = 0"):
        weighted_product([a, a], [0.0, 0.0])
    # near cancellation in floating point leaves a valid, nearly uniform von Mises
    near = product(VonMises(_t(0.0), _t(1.0)), VonMises(_t(math.pi), _t(1.0)))
    assert 0 < near.concentration.item() < 1e-12
    torch.testing.assert_close(near.log_prob(_t(1.0)), _t(-math.log(2 * math.pi)))


# --------------------------------------------------------------------------- #
# All seven: the carrier measure is consistent with torch's Bregman entropy
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "d",
    [
        Gamma(_t([0.5, 3.0]), _t([2.0, 0.7])),
        Chi2(_t([0.5, 7.0])),
        Beta(_t([0.5, 3.0]), _t([2.0, 0.7])),
        Dirichlet(_t([[0.5, 3.0, 1.0], [2.0, 0.7, 9.0]])),
        InverseGamma(_t([0.5, 3.0]), _t([2.0, 0.7])),
        LogNormal(_t([0.5, -3.0]), _t([2.0, 0.7])),
        VonMises(_t([0.5, -3.0]), _t([2.0, 0.7])),
    ],
    ids=lambda d: type(d).__name__,
)
def test_mean_carrier_measure_consistent_with_bregman_entropy(d):
    # H = -E[k(x)] + A(eta) - <eta, grad A(eta)>; compares _mean_carrier_measure with the closed-form entropy
    bregman = torch.distributions.ExponentialFamily.entropy(d)
    torch.testing.assert_close(bregman.detach(), d.entropy().detach(), rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_inverse_mean_maps_follow_device():
    cases = [
        Gamma(_t([0.5, 3.0]), _t([2.0, 0.7])),
        Chi2(_t([0.5, 7.0])),
        Beta(_t([0.5, 3.0]), _t([2.0, 0.7])),
        Dirichlet(_t([[0.5, 3.0, 1.0], [2.0, 0.7, 9.0]])),
        InverseGamma(_t([0.5, 3.0]), _t([2.0, 0.7])),
        LogNormal(_t([0.5, -3.0]), _t([2.0, 0.7])),
        VonMises(_t([0.5, -3.0]), _t([2.0, 0.7])),
    ]
    for d in cases:
        m = [p.cuda() for p in d.mean_parameters()]
        fit = type(d).from_mean_parameters(*m)
        for a, b in zip(fit._natural_params, d._natural_params, strict=True):
            assert a.is_cuda
            torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-9)
