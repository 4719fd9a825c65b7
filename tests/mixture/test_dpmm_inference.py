# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Inference for the DP mixture: the closed-form ELBO against Monte Carlo, CAVI
monotonicity for every emission family, the Pyro model's enumerated loss
against brute force, and CAVI / stochastic natural-gradient VI / SVI reaching
the same ELBO from the same start.
"""

from __future__ import annotations

import math
import warnings

import pyro
import pyro.distributions as pdist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, TraceEnum_ELBO
from sklearn.metrics import adjusted_rand_score

from pyro_expfam.datasets.blobs import make_blobs
from pyro_expfam.mixture.dpmm import (
    DirichletProcessMixture,
    DPMixtureModel,
    SufficientStatistics,
    cavi_pass,
    elbo,
    expected_log_weights,
    expected_weights,
    make_emission,
    mix_weights,
    snvi_epoch,
    stick_posterior,
)
from pyro_expfam.util import ConvergenceWarning


def _mixture_data(family: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three planted clusters for each emission family (float64)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    if family == "gaussian":
        X, y = make_blobs(n, 3, 3, separation=6.0, random_state=seed, dtype=torch.float64)
        return X, y
    if family == "bernoulli":
        p = torch.tensor([[0.9] * 6 + [0.1] * 6, [0.1] * 6 + [0.9] * 6, [0.5] * 12], dtype=torch.float64)
        return torch.bernoulli(p[y], generator=g), y
    if family == "categorical":
        p = torch.full((3, 5, 4), 0.05, dtype=torch.float64)
        for c in range(3):
            p[c, :, c] = 0.85
        return torch.multinomial(p[y].reshape(-1, 4), 1, generator=g).reshape(n, 5).double(), y
    rates = torch.tensor([[1.0, 8.0, 3.0], [8.0, 1.0, 3.0], [3.0, 3.0, 12.0]], dtype=torch.float64)
    return torch.poisson(rates[y], generator=g), y


FAMILIES = [("gaussian", "full"), ("gaussian", "tied"), ("gaussian", "diag"), ("gaussian", "spherical"),
            ("gaussian", "unit"),
            ("bernoulli", None), ("categorical", None), ("poisson", None)]


# every family with and without merges under the DP prior; the finite Dirichlet weights with every Gaussian
# (with and without merges) and with merges for the discrete families
_MONOTONE = ([(f, c, m, "dirichlet_process") for f, c in FAMILIES for m in (True, False)]
             + [(f, c, m, "dirichlet_distribution") for f, c in FAMILIES for m in (True, False)
                if f == "gaussian" or m])


@pytest.mark.parametrize("family,cov,merge,prior_type", _MONOTONE)
def test_cavi_bound_never_decreases(family, cov, merge, prior_type):
    X, _ = _mixture_data(family, 300, seed=0)
    kw = {"covariance_type": cov} if cov else {}
    # random soft responsibilities make every component start at the data mean: with a shared (tied)
    # precision that saddle is left very slowly, so the tied Gaussian starts from random data points
    init = "random_from_data" if cov == "tied" else "random"
    est = DirichletProcessMixture(8, emission=family, merge=merge, tol=0.0, max_iter=40, random_state=0,
                                  init_params=init, weight_concentration_prior_type=prior_type, **kw)
    with pytest.warns(ConvergenceWarning):  # tol=0: runs all iterations
        est.fit(X)
    bounds = torch.tensor(est.lower_bounds_, dtype=torch.float64)
    assert len(bounds) == 40
    # float64 rounding of a sum over 300 points: 1e-12 relative is ~1000x the accumulation error
    assert float(bounds.diff().min()) >= -1e-12 * float(bounds.abs().max())
    assert float(bounds[-1] - bounds[0]) > 0.1


@pytest.mark.parametrize("family,cov", [("gaussian", "full"), ("gaussian", "spherical"), ("bernoulli", None),
                                        ("categorical", None), ("poisson", None)])
def test_elbo_matches_monte_carlo(family, cov):
    """
    The closed-form ELBO equals E_q[log p(x, z, v, theta) - log q(z, v, theta)] estimated by
    Monte Carlo with Pyro's own densities (tolerance: 5 standard errors of the estimate).
    """
    X, _ = _mixture_data(family, 30, seed=1)
    K, alpha, M = 3, 0.7, 4000
    em = make_emission(family, cov or "full")
    phi0 = em.setup(X)
    data = SufficientStatistics(em, X)
    g = torch.Generator().manual_seed(0)
    R0 = torch.softmax(2 * torch.randn(30, K, generator=g, dtype=torch.float64), 1)
    T, k = em.sufficient_statistics(X)
    phi = em.update(phi0, R0.T @ T, R0.sum(0))
    sticks = stick_posterior(R0.sum(0), alpha) * torch.tensor([1.3, 0.8], dtype=torch.float64)
    closed = float(elbo(em, data, phi0, phi, sticks, alpha))
    # q(z): optimal responsibilities, as in the closed form
    log_rho = em.log_likelihood_matrix(T, k, em.expected_stats(phi)) + expected_log_weights(sticks)
    r = torch.softmax(log_rho, 1)

    pyro.set_rng_seed(0)
    q_v = pdist.Beta(sticks[:, 0], sticks[:, 1])
    v = q_v.sample((M,))  # (M, K-1)
    std_q = {key: val.expand((M,) + val.shape) for key, val in em.to_standard(phi).items()}
    std_p = {key: val.expand((M, K) + val.shape) for key, val in em.to_standard(phi0).items()}

    def draw(params):
        with pyro.plate("k", K, dim=-1), pyro.plate("m", M, dim=-2):
            return em.sample_theta("t", params)

    tr_q = poutine.trace(draw).get_trace(std_q)
    theta = {key[2:]: site["value"] for key, site in tr_q.nodes.items() if key.startswith("t_")}
    tr_p = poutine.trace(poutine.condition(draw, data={f"t_{key}": val for key, val in theta.items()})).get_trace(
        std_p)
    tr_q.compute_log_prob()
    tr_p.compute_log_prob()
    log_q_theta = sum(site["log_prob"] for key, site in tr_q.nodes.items() if key.startswith("t_")).sum(-1)
    log_p_theta = sum(site["log_prob"] for key, site in tr_p.nodes.items() if key.startswith("t_")).sum(-1)
    z = torch.multinomial(r, M, replacement=True, generator=g).T  # (M, N)
    flat = {key: val.reshape((M * K,) + val.shape[2:]) for key, val in theta.items()}
    ll = em.log_likelihood(X, flat).reshape(30, M, K)  # checked against log_prob in test_dpmm_emissions
    log_lik = ll.permute(1, 0, 2).gather(2, z.unsqueeze(-1)).squeeze(-1).sum(1)
    log_pi = mix_weights(v).log()
    log_pz = log_pi.gather(1, z).sum(1)
    log_qz = r.log()[torch.arange(30), z].sum(1)
    log_pv = pdist.Beta(torch.ones(K - 1, dtype=torch.float64), alpha).log_prob(v).sum(-1)
    sample = log_lik + log_pz + log_pv + log_p_theta - log_qz - q_v.log_prob(v).sum(-1) - log_q_theta
    se = float(sample.std()) / math.sqrt(M)
    assert abs(float(sample.mean()) - closed) <= 5 * se, (float(sample.mean()), closed, se)


def test_stick_weights():
    g = torch.Generator().manual_seed(0)
    sticks = 0.5 + 3 * torch.rand(5, 2, generator=g, dtype=torch.float64)
    v = pdist.Beta(sticks[:, 0], sticks[:, 1]).sample((200000,))
    pi = mix_weights(v)
    assert torch.allclose(pi.sum(-1), torch.ones(200000, dtype=torch.float64))
    # Monte Carlo over 2e5 draws: standard errors are below 1e-3
    assert torch.allclose(pi.mean(0), expected_weights(sticks), atol=5e-3)
    assert torch.allclose(pi.log().mean(0), expected_log_weights(sticks), atol=2e-2)


def test_enumerated_loss_matches_brute_force():
    """TraceEnum_ELBO's loss with point-mass guides equals -log p(x, v, theta) summed over z by hand."""
    X, _ = make_blobs(25, 2, 3, random_state=0, dtype=torch.float64)
    em = make_emission("gaussian", "full")
    em.setup(X)
    K, alpha = 4, 0.8
    model = DPMixtureModel(em, K, alpha, name="brute")
    g = torch.Generator().manual_seed(1)
    v = torch.rand(K - 1, generator=g, dtype=torch.float64)
    loc = 3 * torch.randn(K, 2, generator=g, dtype=torch.float64)
    A = torch.randn(K, 2, 2, generator=g, dtype=torch.float64)
    prec = A @ A.transpose(-1, -2) + 0.5 * torch.eye(2, dtype=torch.float64)

    def guide(X):
        with pyro.plate("brute_sticks", K - 1):
            pyro.sample("brute_v", pdist.Delta(v))
        with pyro.plate("brute_components", K):
            pyro.sample("brute_theta_precision", pdist.Delta(prec, event_dim=2))
            pyro.sample("brute_theta_loc", pdist.Delta(loc, event_dim=1))

    loss = float(TraceEnum_ELBO(max_plate_nesting=1).loss(model.model, guide, X))
    pi = mix_weights(v)
    comp = pdist.MultivariateNormal(loc, precision_matrix=prec)
    log_lik = torch.logsumexp(pi.log() + comp.log_prob(X.unsqueeze(1)), dim=1).sum()
    std0 = em.to_standard(em.prior_natural)
    W0 = std0["scale_tril"] @ std0["scale_tril"].T
    log_prior = (pdist.Beta(torch.tensor(1.0, dtype=torch.float64), alpha).log_prob(v).sum()
                 + pdist.Wishart(std0["df"], covariance_matrix=W0).log_prob(prec).sum()
                 + pdist.MultivariateNormal(std0["loc"], precision_matrix=std0["kappa"] * prec).log_prob(loc).sum())
    assert abs(loss + float(log_lik + log_prior)) < 1e-8 * abs(loss)


def test_model_generates_data():
    X, _ = make_blobs(50, 2, 3, random_state=0, dtype=torch.float64)
    est = DirichletProcessMixture(5, random_state=0).fit(X)
    m = est.pyro_model()
    pred = pyro.infer.Predictive(m.model, guide=m.guide, num_samples=3)(n_samples=7)
    assert pred[f"{m.name}_x"].shape == (3, 7, 2)
    m.clear_params()


def test_cavi_snvi_svi_reach_the_same_elbo():
    """
    From one start (soft, mostly-wrong responsibilities: 1.5 nats/point below the optimum),
    CAVI, stochastic natural-gradient VI (minibatches of 20, data scaled by N/|B|) and Pyro SVI
    with TraceEnum_ELBO reach the same exact ELBO.  Stated tolerances, in nats per point:
    SNVI 1e-3 (decaying steps, 60 epochs), SVI 5e-3 (Monte Carlo gradients, 300 Adam steps).
    """
    X, _, centers = make_blobs(200, 2, 3, separation=6.0, random_state=1, dtype=torch.float64,
                               return_centers=True)
    n, K, alpha = 200, 3, 1.0
    em = make_emission("gaussian", "diag")
    phi0 = em.setup(X)
    data = SufficientStatistics(em, X)
    g = torch.Generator().manual_seed(0)
    start = centers + 2.0 * torch.randn(centers.shape, generator=g, dtype=torch.float64)
    R = 0.4 * torch.nn.functional.one_hot(torch.cdist(X, start).argmin(1), K).double() + 0.2
    T, _ = em.sufficient_statistics(X)
    phi_init, sticks_init = em.update(phi0, R.T @ T, R.sum(0)), stick_posterior(R.sum(0), alpha)
    init = float(elbo(em, data, phi0, phi_init, sticks_init, alpha)) / n

    phi, sticks = phi_init, sticks_init
    for _ in range(100):
        res = cavi_pass(em, data, phi0, phi, sticks, alpha)
        phi, sticks = em.update(phi0, res.stats, res.counts), stick_posterior(res.counts, alpha)
    cavi = float(elbo(em, data, phi0, phi, sticks, alpha)) / n

    phi, sticks, step = phi_init, sticks_init, 0
    for _ in range(60):
        phi, sticks, step = snvi_epoch(em, data, phi0, phi, sticks, alpha, 20, step, 1.0, 0.6, g)
    snvi = float(elbo(em, data, phi0, phi, sticks, alpha)) / n

    pyro.set_rng_seed(0)
    model = DPMixtureModel(em, K, alpha)
    model.set_variational_params(phi_init, sticks_init)
    svi = SVI(model.model, model.guide, pyro.optim.ClippedAdam({"lr": 0.1, "lrd": 0.01 ** (1 / 300)}),
              TraceEnum_ELBO(max_plate_nesting=1))
    for _ in range(300):
        svi.step(X)
    phi, sticks = model.variational_params()
    model.clear_params()
    svi_bound = float(elbo(em, data, phi0, phi, sticks, alpha)) / n

    assert cavi - init > 1.0
    assert abs(snvi - cavi) < 1e-3
    assert abs(svi_bound - cavi) < 5e-3


@pytest.mark.parametrize("method,prior_type", [("snvi", "dirichlet_process"), ("svi", "dirichlet_process"),
                                               ("snvi", "dirichlet_distribution"), ("svi", "dirichlet_distribution")])
def test_estimator_stochastic_methods(method, prior_type):
    X, y = make_blobs(300, 2, 3, random_state=2, dtype=torch.float64)
    kw = {"batch_size": 50} if method == "snvi" else {"max_iter": 5, "svi_learning_rate": 0.05}
    kw["weight_concentration_prior_type"] = prior_type
    est = DirichletProcessMixture(4, covariance_type="diag", method=method, random_state=0, merge=False, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    assert est.lower_bound_ == pytest.approx(est.elbo(X))
    assert adjusted_rand_score(y, est.predict(X)) > 0.99
    if method == "snvi":
        ref = DirichletProcessMixture(4, covariance_type="diag", random_state=0, merge=False,
                                      weight_concentration_prior_type=prior_type).fit(X)
        assert est.converged_
        assert abs(est.lower_bound_ - ref.lower_bound_) < 2e-3
    else:  # a short SVI run: the bound improves on the k-means start, and the param store is left clean
        assert est.n_iter_ == 5
        assert est.lower_bounds_[-1] > est.lower_bounds_[0]
        assert not any("dpmm" in name for name in pyro.get_param_store().keys())


class _LogNormalScaleEmission:
    """A non-conjugate emission: isotropic Gaussian, Normal prior on the mean, LogNormal prior on the scale."""

    def __init__(self, n_features: int) -> None:
        self.D = n_features

    def model_theta(self, prefix: str, K: int) -> dict:
        zero = torch.zeros((), dtype=torch.float64)
        loc = pyro.sample(f"{prefix}_loc", pdist.Normal(zero, 10.0).expand([K, self.D]).to_event(1))
        scale = pyro.sample(f"{prefix}_scale", pdist.LogNormal(zero, 1.0).expand([K]))
        return {"loc": loc, "scale": scale}

    def log_likelihood(self, X: torch.Tensor, theta: dict) -> torch.Tensor:
        prec = theta["scale"].pow(-2)  # (K,)
        quad = X.square().sum(1, keepdim=True) - 2 * X @ theta["loc"].T + theta["loc"].square().sum(1)
        return -0.5 * prec * quad - self.D * theta["scale"].log() - 0.5 * self.D * math.log(2 * math.pi)

    def observation_dist(self, theta: dict, z: torch.Tensor):
        return pdist.Normal(theta["loc"][z], theta["scale"][z].unsqueeze(-1)).to_event(1)


def test_svi_covers_non_conjugate_emissions():
    """The model with a non-conjugate emission, an AutoNormal guide (z hidden, enumerated) and SVI."""
    from pyro.infer.autoguide import AutoNormal, init_to_value

    X, y, centers = make_blobs(300, 2, 3, random_state=5, dtype=torch.float64, return_centers=True)
    em = _LogNormalScaleEmission(2)
    model = DPMixtureModel(em, 4, 1.0, name="nonconj")
    g = torch.Generator().manual_seed(0)
    start = centers + torch.randn(centers.shape, generator=g, dtype=torch.float64)  # rough centres, 1 sd off
    em_loc = torch.cat([start, X.mean(0, keepdim=True)])  # and a spare component at the data mean
    sticks = torch.tensor([1 / 3, 1 / 2, 0.9], dtype=torch.float64)  # weights 0.33, 0.33, 0.30, 0.03
    init = init_to_value(values={"nonconj_theta_loc": em_loc, "nonconj_theta_scale": torch.ones(4).double(),
                                 "nonconj_v": sticks})
    guide = AutoNormal(poutine.block(model.model, hide=[model.z_name]), init_loc_fn=init)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = SVI(model.model, guide, pyro.optim.Adam({"lr": 0.05}), TraceEnum_ELBO(max_plate_nesting=1))
    losses = [svi.step(X) for _ in range(200)]
    assert sum(losses[-20:]) < sum(losses[:20])
    med = guide.median(X)
    theta = {"loc": med["nonconj_theta_loc"], "scale": med["nonconj_theta_scale"]}
    log_r = em.log_likelihood(X, theta) + mix_weights(med["nonconj_v"]).log()
    assert adjusted_rand_score(y, log_r.argmax(1)) > 0.99
    # the fitted scales are the blob's unit standard deviation (300 points: within 15%)
    used = log_r.argmax(1).unique()
    assert torch.allclose(theta["scale"][used], torch.ones(len(used), dtype=torch.float64), rtol=0.15)
    pyro.clear_param_store()
