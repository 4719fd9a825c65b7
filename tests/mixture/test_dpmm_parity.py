# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
BayesianGaussianMixture parity: the tied Gaussian's joint KL and expected statistics against textbook closed
forms and Monte Carlo, one-component fits equal to scikit-learn's posterior, the finite-Dirichlet weight prior
against torch's Dirichlet KL and scikit-learn's fit, ``reg_covar`` in closed form, ``n_components=1``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

from pyro_expfam.datasets.blobs import make_blobs
from pyro_expfam.mixture.dpmm import DirichletProcessMixture, TiedGaussianEmission, stick_kl, stick_posterior
from pyro_expfam.mixture.dpmm.cavi import expected_log_weights, expected_weights


def _tied_setup(seed: int = 0):
    X, _ = make_blobs(200, 2, 3, random_state=seed, dtype=torch.float64)
    em = TiedGaussianEmission(mean_precision_prior=0.7, degrees_of_freedom_prior=3.5)
    phi0 = em.setup(X)
    g = torch.Generator().manual_seed(seed)
    R = torch.softmax(3 * torch.randn(200, 3, generator=g, dtype=torch.float64), 1)
    T, _ = em.sufficient_statistics(X)
    return X, em, phi0, em.update(phi0, R.T @ T, R.sum(0)), R


def _wishart_parts(em: TiedGaussianEmission, phi: torch.Tensor):
    nu, L = em._shared(phi)
    W = torch.cholesky_inverse(L)
    S = em.n_stats
    kappa = phi[:, S]
    return nu, W, kappa, phi[:, :em.n_features] / kappa.unsqueeze(1)


def test_tied_joint_kl_closed_form():
    """The joint KL of q(Lambda) prod_k q(mu_k | Lambda) equals the textbook Wishart KL plus E_Lambda of the
    Gaussian KLs, with the posterior read independently as nu = nu0 + N and W^{-1} from the scatter."""
    X, em, phi0, phi, R = _tied_setup()
    D, N = 2, X.shape[0]
    nu, W, kappa, m = _wishart_parts(em, phi)
    nu0, W0, kappa0, m0 = _wishart_parts(em, phi0.expand(3, -1))
    # the shared posterior from first principles
    assert float(nu) == pytest.approx(3.5 + N, abs=1e-12)
    Nk = R.sum(0)
    xbar = (R.T @ X) / Nk.unsqueeze(1)
    winv = torch.linalg.inv(W0)
    for k in range(3):
        d = X - xbar[k]
        winv = winv + (R[:, k, None] * d).T @ d + (0.7 * Nk[k] / (0.7 + Nk[k])) * torch.outer(xbar[k] - m0[0],
                                                                                              xbar[k] - m0[0])
    assert torch.allclose(torch.linalg.inv(W), winv, rtol=1e-10)

    def psi_d(a):
        return sum(torch.digamma(a - i / 2) for i in range(D))

    kl_w = (nu0 / 2 * (torch.logdet(W0) - torch.logdet(W)) + nu / 2 * (torch.trace(torch.linalg.solve(W0, W)) - D)
            + torch.mvlgamma(nu0 / 2, D) - torch.mvlgamma(nu / 2, D) + (nu - nu0) / 2 * psi_d(nu / 2))
    dm = m - m0
    kl_mu = 0.5 * (D * kappa0 / kappa - D + D * torch.log(kappa / kappa0)
                   + kappa0 * nu * torch.einsum("ki,ij,kj->k", dm, W, dm))
    expected = float(kl_w + kl_mu.sum())
    assert float(em.kl(phi, phi0).sum()) == pytest.approx(expected, rel=1e-10)
    assert float(em.kl(phi0.expand(3, -1), phi0).sum()) == pytest.approx(0.0, abs=1e-10)


def test_tied_expected_stats_monte_carlo():
    """E[Lambda mu_k], E[-Lambda/2], E[-mu_k' Lambda mu_k / 2], E[log|Lambda|] against 40000 draws (5 s.e.)."""
    X, em, phi0, phi, _ = _tied_setup(1)
    D, S = 2, em.n_stats
    nu, W, kappa, m = _wishart_parts(em, phi)
    g = torch.Generator().manual_seed(0)
    n = 40_000
    torch.manual_seed(0)
    with warnings.catch_warnings():  # torch's Wishart redraws the rare singular sample and says so
        warnings.filterwarnings("ignore", message="Singular sample detected")
        lam = torch.distributions.Wishart(nu, scale_tril=torch.linalg.cholesky(W)).sample((n,))
    lam = 0.5 * (lam + lam.transpose(-1, -2))
    es = em.expected_stats(phi)
    for k in range(3):
        z = torch.randn(n, D, generator=g, dtype=torch.float64)
        # mu ~ N(m, (kappa Lambda)^{-1}) = m + U^{-1} z with U^T U = kappa Lambda (U = L^T, L its Cholesky factor)
        mu = m[k] + torch.linalg.solve_triangular(torch.linalg.cholesky(kappa[k] * lam).transpose(-1, -2),
                                                  z.unsqueeze(-1), upper=True).squeeze(-1)
        s = em.theta_stats({"precision": lam, "loc": mu})
        mean, se = s.mean(0), s.std(0) / math.sqrt(n)
        assert bool(((es[k] - mean).abs() <= 5 * se + 1e-12).all()), (k, es[k], mean, se)
    assert es.shape == (3, S + 2)


def test_tied_merge_gain_is_joint_partition_change():
    _, em, phi0, phi, _ = _tied_setup(2)
    ii, jj = torch.tensor([0, 1]), torch.tensor([2, 2])
    gains = em.merge_log_partition_gain(phi, phi0, ii, jj)
    for g, i, j in zip(gains.tolist(), ii.tolist(), jj.tolist(), strict=True):
        merged = phi.clone()
        merged[i] = phi[i] + phi[j] - phi0
        merged[j] = phi0
        assert g == pytest.approx(float(em.joint_log_partition(merged) - em.joint_log_partition(phi)), rel=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_one_component_equals_sklearn_posterior(covariance_type):
    """With one component the responsibilities are all 1 and the variational posterior is the exact conjugate
    one; scikit-learn's BayesianGaussianMixture computes the same (its tied approximation nu0 + N/K is exact
    for K = 1), reg_covar included."""
    X, _ = make_blobs(300, 3, 2, random_state=4, dtype=torch.float64)
    Xn = X.numpy()
    ours = DirichletProcessMixture(1, covariance_type=covariance_type, reg_covar=1e-3, max_iter=2, tol=0.0)
    ref = BayesianGaussianMixture(n_components=1, covariance_type=covariance_type, reg_covar=1e-3, max_iter=2,
                                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=2: convergence warnings
        ours.fit(Xn)
        ref.fit(Xn)
    assert isinstance(ours.means_, np.ndarray)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(ours.covariances_.reshape(ref.covariances_.shape), ref.covariances_, rtol=1e-10)
    np.testing.assert_allclose(ours.degrees_of_freedom_, ref.degrees_of_freedom_, rtol=1e-12)
    np.testing.assert_allclose(ours.mean_precision_, ref.mean_precision_, rtol=1e-12)
    np.testing.assert_allclose(ours.weights_, [1.0])
    for key in ("mean_prior_", "mean_precision_prior_", "degrees_of_freedom_prior_", "covariance_prior_",
                "weight_concentration_prior_"):  # the priors used, named as scikit-learn's
        np.testing.assert_allclose(getattr(ours, key), getattr(ref, key), rtol=1e-12, err_msg=key)
    assert (ours.predict(Xn) == 0).all()


@pytest.mark.parametrize("covariance_type,factor", [("full", 1), ("tied", 1), ("diag", 1), ("spherical", 3)])
def test_reg_covar_closed_form(covariance_type, factor):
    """reg_covar adds N * reg_covar to the scatter: the expected covariance moves by N r / nu (spherical: by
    N D r / (nu0 + N D), its Gamma counting D observations per point)."""
    X, _ = make_blobs(200, 3, 2, random_state=5, dtype=torch.float64)
    fits = []
    for r in (0.0, 0.01):
        est = DirichletProcessMixture(1, covariance_type=covariance_type, reg_covar=r, max_iter=2, tol=0.0)
        with pytest.warns(Warning):
            fits.append(est.fit(X))
    delta = fits[1].covariances_ - fits[0].covariances_
    N, D = 200, 3
    expected = N * factor * 0.01 / (D + N * factor)
    if covariance_type in ("full", "tied"):
        delta = delta.reshape(D, D)
        assert torch.allclose(delta, expected * torch.eye(D, dtype=torch.float64), atol=1e-12)
    else:
        assert torch.allclose(delta, torch.full_like(delta, expected), atol=1e-12)


def test_tied_matches_sklearn():
    """Blobs sharing one anisotropic covariance: the same clusters as scikit-learn's tied fit; the covariance is
    the exact conjugate posterior's (nu = nu0 + N) given the true labels to 0.1%.  scikit-learn's approximation
    nu0 + N/K weighs the priors differently, which moves its estimate by about 2% here: within 5% of ours."""
    g = torch.Generator().manual_seed(0)
    A = torch.tensor([[2.0, 0.0], [1.2, 0.5]], dtype=torch.float64)
    y = torch.arange(1500) % 3
    centers = torch.tensor([[0.0, 0.0], [8.0, 2.0], [-6.0, 6.0]], dtype=torch.float64)
    X = (centers[y] + torch.randn(1500, 2, generator=g, dtype=torch.float64) @ A.T).numpy()
    ours = DirichletProcessMixture(6, covariance_type="tied", random_state=0).fit(X)
    ref = BayesianGaussianMixture(n_components=6, covariance_type="tied", random_state=0, max_iter=500).fit(X)
    assert adjusted_rand_score(ref.predict(X), ours.predict(X)) > 0.99
    assert adjusted_rand_score(y.numpy(), ours.predict(X)) > 0.99
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=0.05)
    # the exact conjugate posterior given the true (hard) labels: scatter, covariance prior and the spread of the
    # cluster means around the mean prior (mu_k ~ N(m0, (kappa0 Lambda)^{-1}) shares the precision)
    Xt = torch.as_tensor(X)
    m0, winv = Xt.mean(0), torch.cov(Xt.T)
    for c in range(3):
        d, n_c = Xt[y == c] - Xt[y == c].mean(0), int((y == c).sum())
        winv = winv + d.T @ d + n_c / (1 + n_c) * torch.outer(Xt[y == c].mean(0) - m0, Xt[y == c].mean(0) - m0)
    np.testing.assert_allclose(ours.covariances_, (winv / (2 + 1500)).numpy(), rtol=1e-3)
    assert ours.covariances_.shape == (2, 2) and ours.precisions_cholesky_.shape == (2, 2)
    assert ours.means_.shape == (6, 2)


def test_dirichlet_distribution_prior():
    conc = torch.tensor([3.5, 1.25, 0.5], dtype=torch.float64)
    ref = torch.distributions.kl_divergence(torch.distributions.Dirichlet(conc),
                                            torch.distributions.Dirichlet(torch.full_like(conc, 0.25)))
    assert float(stick_kl(conc, 0.25)) == pytest.approx(float(ref), rel=1e-12)
    assert torch.equal(stick_posterior(torch.tensor([3.0, 1.0, 0.0]), 0.5, "dirichlet_distribution"),
                       torch.tensor([3.5, 1.5, 0.5]))
    elog = expected_log_weights(conc)
    assert torch.allclose(elog, torch.digamma(conc) - torch.digamma(conc.sum()))
    assert torch.allclose(expected_weights(conc), conc / conc.sum())
    # against scikit-learn's fit: same clusters, weights within 1e-3 on well-separated blobs
    X, y = make_blobs(1200, 2, 3, random_state=2, dtype=torch.float64)
    Xn = X.numpy()
    ours = DirichletProcessMixture(5, weight_concentration_prior_type="dirichlet_distribution", merge=False,
                                   random_state=0).fit(Xn)
    ref = BayesianGaussianMixture(n_components=5, weight_concentration_prior_type="dirichlet_distribution",
                                  random_state=0, max_iter=1000, tol=1e-6).fit(Xn)
    assert adjusted_rand_score(ref.predict(Xn), ours.predict(Xn)) > 0.99
    assert ours.weight_concentration_.shape == (5,)
    np.testing.assert_allclose(np.sort(ours.weights_), np.sort(ref.weights_), atol=2e-3)
    with pytest.raises(ValueError, match="weight_concentration_prior_type"):
        DirichletProcessMixture(3, weight_concentration_prior_type="pitman_yor").fit(Xn)


@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
def test_single_component(prior_type):
    X, _ = make_blobs(50, 2, 1, random_state=0)
    est = DirichletProcessMixture(1, weight_concentration_prior_type=prior_type, random_state=0).fit(X)
    assert est.weights_.tolist() == [1.0] and bool((est.predict(X) == 0).all())
    assert est.weight_concentration_.shape == ((0, 2) if prior_type == "dirichlet_process" else (1,))
    Xs, labels = est.sample(10)
    assert Xs.shape == (10, 2) and bool((labels == 0).all())
