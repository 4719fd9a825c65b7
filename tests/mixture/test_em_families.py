# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""ExpFamMixture: EM for mixtures of any exponential family."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch

import pyro_expfam.distributions as E
from pyro_expfam.mixture.em import ExpFamMixture
from pyro_expfam.mixture.gaussian import GaussianMixture
from pyro_expfam.util import ConvergenceWarning, NotFittedError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _order(x: torch.Tensor) -> torch.Tensor:
    """Component order by a scalar summary (mixtures are identifiable up to relabelling)."""
    return x.reshape(x.shape[0], -1).sum(1).argsort()


def test_poisson_independent_dims_recovers_planted():
    g = _gen(0)
    rates = torch.tensor([[2.0, 5.0, 1.0], [15.0, 8.0, 20.0]], dtype=torch.float64)
    z = (torch.rand(2000, generator=g) < 0.4).long()
    X = torch.poisson(rates[z], generator=g)
    m = ExpFamMixture(E.Poisson, 2, random_state=0).fit(X)
    est = m.components_.rate[_order(m.components_.rate)]
    # rate MLE of ~800/1200 points: sd sqrt(rate / n_k) <= sqrt(20/800) = 0.16; tolerance 5 sd per entry
    sd = (rates / torch.tensor([[800.0], [1200.0]], dtype=torch.float64)).sqrt()
    assert bool(((est - rates).abs() < 5 * sd).all()), est
    # weight: sd sqrt(0.24 / 2000) = 0.011
    assert abs(float(m.weights_.min()) - 0.4) < 0.055
    assert m.components_.batch_shape == (2, 3)


def test_bernoulli_binary_features_recovers_planted():
    g = _gen(1)
    p = torch.tensor([[0.1] * 10 + [0.9] * 10, [0.9] * 10 + [0.1] * 10, [0.5] * 10 + [0.8] * 10],
                     dtype=torch.float64)
    z = torch.randint(0, 3, (3000,), generator=g)
    X = torch.bernoulli(p[z], generator=g)
    m = ExpFamMixture(E.Bernoulli, 3, n_init=2, random_state=0).fit(X)
    est = m.components_.probs
    # match each planted component to its nearest fitted one
    match = torch.cdist(p, est).argmin(1)
    assert sorted(match.tolist()) == [0, 1, 2]
    # ~1000 points per component: sd sqrt(p(1-p)/1000) <= 0.016 per feature; tolerance 5 sd
    assert float((est[match] - p).abs().max()) < 0.08
    assert float((m.weights_[match] - 1 / 3).abs().max()) < 0.05  # sd sqrt(2/9/3000) = 0.0086
    assert m.components_.batch_shape == (3, 20)


def test_categorical_features_recovers_planted():
    g = _gen(2)
    probs = torch.tensor([[0.7, 0.1, 0.1, 0.05, 0.05], [0.05, 0.05, 0.1, 0.1, 0.7]], dtype=torch.float64)
    z = torch.randint(0, 2, (2000,), generator=g)
    X = torch.multinomial(probs[z], 4, replacement=True, generator=g).double()  # 4 categorical features
    m = ExpFamMixture(E.Categorical(logits=torch.zeros(5, dtype=torch.float64)), 2, random_state=0).fit(X)
    est = m.components_.probs  # (2, 4, 5)
    assert est.shape == (2, 4, 5)
    est = est[est[:, 0, 0].argsort(descending=True)]
    # ~1000 points per component: sd sqrt(p(1-p)/1000) <= 0.015; tolerance 5 sd
    assert float((est - probs.unsqueeze(1)).abs().max()) < 0.075


def test_von_mises_recovers_planted():
    g = _gen(3)
    torch.manual_seed(3)
    z = (torch.rand(2000, generator=g) < 0.5).long()
    loc = torch.tensor([-2.0, 2.0], dtype=torch.float64)
    X = E.VonMises(loc[z], torch.tensor(8.0, dtype=torch.float64)).sample()
    m = ExpFamMixture(E.VonMises, 2, random_state=0).fit(X)
    c = m.components_
    order = c.loc.argsort()
    # circular mean of ~1000 points with kappa=8: sd ~ 1/sqrt(n kappa) = 0.011; tolerance 5 sd
    assert float((c.loc[order] - loc).abs().max()) < 0.06
    # kappa MLE: sd ~ kappa * sqrt(2/n) = 0.36 for large kappa; tolerance 5 sd
    assert float((c.concentration - 8.0).abs().max()) < 1.8


def test_gamma_recovers_planted():
    g = _gen(4)
    torch.manual_seed(4)
    z = (torch.rand(2000, generator=g) < 0.5).long()
    shape = torch.tensor([2.0, 30.0], dtype=torch.float64)
    rate = torch.tensor([1.0, 3.0], dtype=torch.float64)
    X = E.Gamma(shape[z], rate[z]).sample()
    m = ExpFamMixture(E.Gamma, 2, random_state=0).fit(X)
    c = m.components_
    order = c.concentration.argsort()
    # shape MLE from ~1000 points: relative sd ~ sqrt(2/n) to sqrt(3/n) (<= 6%); tolerance ~4 sd
    torch.testing.assert_close(c.concentration[order], shape, rtol=0.25, atol=0)
    torch.testing.assert_close(c.rate[order], rate, rtol=0.25, atol=0)
    torch.testing.assert_close(c.mean[order], shape / rate, rtol=0.05, atol=0)  # mean: sd < 1.5%


def test_exponential_recovers_planted():
    g = _gen(5)
    torch.manual_seed(5)
    z = (torch.rand(4000, generator=g) < 0.5).long()
    rate = torch.tensor([0.5, 20.0], dtype=torch.float64)
    X = E.Exponential(rate[z]).sample()
    m = ExpFamMixture(E.Exponential, 2, random_state=0, max_iter=500, tol=1e-6).fit(X)
    est = m.components_.rate.sort().values
    # separated components: rate sd = rate/sqrt(2000) = 2.2%; the overlap near 0 inflates it: allow 20%
    torch.testing.assert_close(est, rate, rtol=0.2, atol=0)
    assert abs(float(m.weights_[0]) - 0.5) < 0.06


@pytest.mark.parametrize(
    "family, X",
    [
        (E.Poisson, torch.poisson(torch.rand(300, 2, generator=_gen(6), dtype=torch.float64) * 10, generator=_gen(6))),
        (E.Bernoulli, torch.bernoulli(torch.rand(300, 6, generator=_gen(7), dtype=torch.float64), generator=_gen(7))),
        (E.Normal, torch.randn(300, 2, generator=_gen(8), dtype=torch.float64) * 3),
        (E.Gamma, torch.rand(300, generator=_gen(9), dtype=torch.float64) * 5 + 0.1),
    ],
    ids=["poisson", "bernoulli", "normal", "gamma"],
)
def test_log_likelihood_never_decreases_and_gemm_matches_log_prob(family, X):
    m = ExpFamMixture(family, 3, reg=0.0, pseudo_count=0.0, tol=0.0, max_iter=40, init_params="random", random_state=0)
    with pytest.warns(ConvergenceWarning):
        m.fit(X)
    bounds = torch.tensor(m.lower_bounds_, dtype=torch.float64)
    assert bool((bounds.diff() >= -1e-12 * bounds.abs()[1:]).all())
    # the E-step's GEMM form equals the mixture's log density computed by Pyro's log_prob
    torch.testing.assert_close(m.score_samples(X), m.to_distribution().log_prob(X))


def test_normal_family_equals_diagonal_gaussian_mixture():
    """Independent Normal dims per component is GaussianMixture(covariance_type='diag') with reg_covar=0."""
    X = torch.cat([torch.randn(200, 3, generator=_gen(10), dtype=torch.float64) + 2,
                   torch.randn(200, 3, generator=_gen(11), dtype=torch.float64) * 0.5 - 1])
    kw = dict(init_params="random", random_state=5, tol=1e-8, max_iter=300)
    a = ExpFamMixture(E.Normal, 2, reg=0.0, **kw).fit(X)
    b = GaussianMixture(2, covariance_type="diag", reg_covar=0.0, **kw).fit(X)
    assert a.n_iter_ == b.n_iter_
    assert a.score(X) == pytest.approx(b.score(X), rel=1e-9)
    torch.testing.assert_close(a.components_.loc, b.means_)
    torch.testing.assert_close(a.components_.scale.square(), b.covariances_)


def test_mvn_family_equals_full_gaussian_mixture():
    X = torch.cat([torch.randn(200, 2, generator=_gen(12), dtype=torch.float64) @ torch.tensor([[1.0, 0.5], [0, 1]],
                   dtype=torch.float64) + 3, torch.randn(200, 2, generator=_gen(13), dtype=torch.float64) - 1])
    kw = dict(init_params="random", random_state=2, tol=1e-8, max_iter=300)
    proto = E.MultivariateNormal(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    a = ExpFamMixture(proto, 2, reg=0.0, **kw).fit(X)
    b = GaussianMixture(2, covariance_type="full", reg_covar=0.0, **kw).fit(X)
    assert a.n_iter_ == b.n_iter_
    assert a.score(X) == pytest.approx(b.score(X), rel=1e-9)
    torch.testing.assert_close(a.components_.covariance_matrix, b.covariances_)
    torch.testing.assert_close(a.components_.loc, b.means_)
    # the family given by name (or class) takes its event size from the data: the same fit
    for family in ("MultivariateNormal", E.MultivariateNormal):
        c = ExpFamMixture(family, 2, reg=0.0, **kw).fit(X)
        assert c.score(X) == a.score(X) and c.n_iter_ == a.n_iter_


def test_float32_saturated_binary_features_stay_finite():
    # feature 0 is always 1 in one cluster and always 0 in the other: the MLE logit is +-inf
    X = torch.zeros(400, 5)
    X[:200, 0] = 1.0
    X[:, 1:] = torch.bernoulli(torch.full((400, 4), 0.2), generator=_gen(14))
    X[:200, 1:] = 1 - X[:200, 1:]  # cluster 0: p = 0.8 on features 1-4, cluster 1: p = 0.2
    m = ExpFamMixture(E.Bernoulli, 2, random_state=0).fit(X)
    assert m.natural_params_[0].dtype == torch.float32
    assert bool(torch.isfinite(m.natural_params_[0]).all())
    assert math.isfinite(m.score(X))
    labels = m.predict(X)
    assert len(set(labels[:200].tolist())) == 1 and len(set(labels[200:].tolist())) == 1


def test_one_cluster_data_with_two_components_stays_finite():
    X = torch.poisson(torch.full((100, 2), 4.0), generator=_gen(15)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = ExpFamMixture(E.Poisson, 2, random_state=0, tol=1e-6).fit(X)
    assert bool(torch.isfinite(m.components_.rate).all())
    assert math.isfinite(m.score(X))


def test_sample_save_load_and_api():
    g = _gen(16)
    X = torch.poisson(torch.tensor([[1.0, 2.0]]).double().expand(500, 2) * (1 + 9 * (torch.rand(500, 1, generator=g)
                                                                                     < 0.5)), generator=g)
    m = ExpFamMixture("Poisson", 2, random_state=0).fit(X)
    S, labels = m.sample(4000)
    assert S.shape == (4000, 2) and labels.shape == (4000,)
    # sample mean: the mixture mean sum_k w_k rate_k; sd <= sqrt(var/4000) ~ 0.15 for the larger coordinate
    mixture_mean = (m.weights_.unsqueeze(1) * m.components_.rate).sum(0)
    torch.testing.assert_close(S.mean(0), mixture_mean, atol=0.6, rtol=0)
    buf = io.BytesIO()
    m.save(buf)
    buf.seek(0)
    loaded = ExpFamMixture.load(buf)
    torch.testing.assert_close(loaded.score_samples(X), m.score_samples(X))
    torch.testing.assert_close(loaded.components_.rate, m.components_.rate)
    assert torch.equal(m.fit_predict(X), m.predict(X))
    assert m.bic(X) > m.aic(X) > 0
    # a categorical prototype (with a vector parameter) round-trips too
    Xc = torch.randint(0, 3, (200,), generator=g).double()
    c = ExpFamMixture(E.Categorical(logits=torch.zeros(3, dtype=torch.float64)), 2, random_state=0).fit(Xc)
    buf = io.BytesIO()
    c.save(buf)
    buf.seek(0)
    torch.testing.assert_close(ExpFamMixture.load(buf).score_samples(Xc), c.score_samples(Xc))
    assert c.sample(5)[0].shape == (5,)


def test_not_fitted():
    m = ExpFamMixture(E.Poisson, 2)
    with pytest.raises(NotFittedError):
        m.predict(torch.ones(3))
    with pytest.raises(NotFittedError):
        m.sample(2)


@pytest.mark.parametrize(
    "family, X, kwargs, error, match",
    [
        (E.Poisson, torch.tensor([1.0, math.nan, 2.0]), {}, ValueError, "NaN"),
        (E.Poisson, torch.tensor([1.0, -1.0, 2.0, 3.0]), {}, ValueError, "support"),
        (E.Bernoulli, torch.tensor([[0.0, 0.5], [1.0, 1.0], [0.0, 0.0]]), {}, ValueError, "support"),
        (E.Poisson, torch.tensor([1.0]), {}, ValueError, "minimum of 2"),
        (E.Poisson, torch.tensor([1.0, 2.0, 3.0]), {"n_components": 4}, ValueError, "fewer than n_components"),
        (E.MultivariateNormal(torch.zeros(3), torch.eye(3)), torch.zeros(10, 2), {}, ValueError, "event shape"),
        (E.MultivariateNormal, torch.zeros(10, 2), {}, ValueError, "singular"),
        (E.Categorical, torch.zeros(10, 2), {}, TypeError, "prototype"),
        (torch.distributions.Normal, torch.zeros(10), {}, TypeError, "family"),
        ("NotAFamily", torch.zeros(10), {}, ValueError, "family"),
        (E.Poisson, torch.ones(10), {"reg": -1.0}, ValueError, "reg"),
        (E.Bernoulli, torch.ones(10, 2), {"pseudo_count": -1.0}, ValueError, "pseudo_count"),
        (E.Bernoulli, torch.ones(10, 2), {"pseudo_count": float("nan")}, ValueError, "pseudo_count"),
        (E.Bernoulli, torch.ones(10, 2), {"pseudo_count": "big"}, ValueError, "pseudo_count"),
        (E.Bernoulli, torch.ones(10, 2), {"pseudo_count": True}, ValueError, "pseudo_count"),
        # singular data: a constant feature has no maximum-likelihood variance / Gamma shape
        (E.Normal, torch.stack([torch.arange(10.0), torch.full((10,), 1.3)], 1), {}, ValueError, "singular"),
        (E.Gamma, torch.full((10,), 0.7), {}, ValueError, "singular"),
        (E.MultivariateNormal(torch.zeros(2), torch.eye(2)), torch.ones(10, 2).cumsum(0) * torch.tensor([1.0, 0.0]),
         {}, ValueError, "singular"),
    ],
)
def test_bad_input(family, X, kwargs, error, match):
    with pytest.raises(error, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ExpFamMixture(family, **{"n_components": 2, "random_state": 0, **kwargs}).fit(X)


def test_predict_wrong_shape():
    m = ExpFamMixture(E.Poisson, 2, random_state=0).fit(torch.poisson(torch.full((50, 3), 3.0)))
    with pytest.raises(ValueError, match="X has 2 features, but ExpFamMixture is expecting 3 features as input"):
        m.predict(torch.ones(4, 2))
    with pytest.raises(ValueError, match="shape"):
        m.predict(torch.ones(4, 3, 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_matches_cpu():
    X = torch.bernoulli(torch.rand(400, 8, generator=_gen(17), dtype=torch.float64), generator=_gen(17))
    kw = dict(init_params="random", random_state=0, tol=1e-8, max_iter=100)
    cpu = ExpFamMixture(E.Bernoulli, 3, **kw).fit(X)
    gpu = ExpFamMixture(E.Bernoulli, 3, **kw).fit(X.cuda())
    assert gpu.weights_.is_cuda and gpu.predict(X).is_cuda
    assert gpu.score(X) == pytest.approx(cpu.score(X), rel=1e-9)
    assert np.allclose(gpu.components_.probs.cpu().numpy(), cpu.components_.probs.numpy())


# ---------------------------------------------------------------------------------------------------------------
# Bernoulli mixtures against a plain numpy EM from the same initial components
# ---------------------------------------------------------------------------------------------------------------
class _RecordInit(ExpFamMixture):
    """Records the initial weights and feature probabilities (the start a plain EM is given)."""

    def _initialize_parameters(self, X, generator):
        super()._initialize_parameters(X, generator)
        self.init_ = (self._weights_.numpy().copy(), torch.sigmoid(self._natural_params[0]).numpy().copy())


def _bernoulli_mixture_log_lik(X, w, mu):
    """Per-row log density of a Bernoulli mixture (probabilities clamped to float64's resolution, as torch does)."""
    mu = np.clip(mu, np.finfo(float).eps, 1 - np.finfo(float).eps)
    logp = X @ np.log(mu).T + (1 - X) @ np.log1p(-mu).T + np.log(w)
    top = logp.max(1, keepdims=True)
    return (top + np.log(np.exp(logp - top).sum(1, keepdims=True)))[:, 0]


def _plain_em(X, w, mu, pseudo_count=0.0, reg=0.0, tol=1e-12, max_iter=5000):
    """Textbook EM for a Bernoulli mixture, written independently: MAP M-step with c pseudo-rows at the mean row."""
    pooled = X.mean(0)
    prev = -np.inf
    for _ in range(max_iter):
        mu_c = np.clip(mu, np.finfo(float).eps, 1 - np.finfo(float).eps)
        logp = X @ np.log(mu_c).T + (1 - X) @ np.log1p(-mu_c).T + np.log(w)
        top = logp.max(1, keepdims=True)
        resp = np.exp(logp - top)
        cur = float((top[:, 0] + np.log(resp.sum(1))).mean())
        resp /= resp.sum(1, keepdims=True)
        nk = resp.sum(0)
        c = reg * (nk + 1) + pseudo_count
        w = nk / nk.sum()
        mu = np.clip((resp.T @ X + c[:, None] * pooled) / (nk + c)[:, None], 0.0, 1.0)
        if abs(cur - prev) < tol:
            break
        prev = cur
    return w, mu


def _binary_digits():
    """scikit-learn's bundled 8x8 digits, pixels on above grey level 7, shuffled: (1200 train, 597 test) rows."""
    from sklearn.datasets import load_digits

    X = (load_digits().data > 7).astype(np.float64)
    X = X[np.random.default_rng(0).permutation(len(X))]
    return X[:1200], X[1200:]


def test_bernoulli_m_step_is_map_under_beta_prior():
    """The default (one pseudo-row at the data's mean) equals an independent MAP EM from the same start."""
    X = np.asarray(torch.bernoulli(torch.rand(3, 12, generator=_gen(20), dtype=torch.float64)[
        torch.randint(0, 3, (300,), generator=_gen(21))], generator=_gen(22)))
    m = _RecordInit(E.Bernoulli, 3, tol=1e-13, max_iter=5000, random_state=0).fit(X)
    w, mu = _plain_em(X, *m.init_, pseudo_count=1.0, reg=1e-6)
    order = np.argsort(w)
    np.testing.assert_allclose(np.sort(m.weights_), w[order], atol=1e-7)
    np.testing.assert_allclose(m.components_.probs.numpy()[np.argsort(m.weights_)], mu[order], atol=1e-6)
    # and pseudo_count=0 is the relative shrinkage alone (the M-step before the pseudo-count existed)
    m0 = _RecordInit(E.Bernoulli, 3, pseudo_count=0, tol=1e-13, max_iter=5000, random_state=0).fit(X)
    w0, mu0 = _plain_em(X, *m0.init_, reg=1e-6)
    np.testing.assert_allclose(m0.components_.probs.numpy()[np.argsort(m0.weights_)], mu0[np.argsort(w0)], atol=1e-6)


def test_bernoulli_defaults_on_binary_digits_match_plain_em():
    """
    Binarised digits, K=10: the default fit reaches the training log-likelihood of a MAP EM run to 1e-12 from the
    same start, within the prior's small cost of the maximum-likelihood EM's, and its held-out
    log-likelihood is the MAP EM's: features never on in a cluster no longer cost ~36 nats each on held-out images
    (the maximum-likelihood fit is 0.2 nats per image worse held out).
    """
    X_train, X_test = _binary_digits()
    m = _RecordInit(E.Bernoulli, 10, random_state=0).fit(X_train)
    w_ml, mu_ml = _plain_em(X_train, *m.init_)
    w_map, mu_map = _plain_em(X_train, *m.init_, pseudo_count=1.0)
    train_ml = _bernoulli_mixture_log_lik(X_train, w_ml, mu_ml).mean()
    train_map = _bernoulli_mixture_log_lik(X_train, w_map, mu_map).mean()
    test_ml = _bernoulli_mixture_log_lik(X_test, w_ml, mu_ml).mean()
    test_map = _bernoulli_mixture_log_lik(X_test, w_map, mu_map).mean()
    # the prior costs little on the training rows (measured 0.007 nats per image); tol=1e-4 stops within ~0.005
    # of the converged MAP fit (tol=1e-3 stopped 0.006 short here, and up to 0.09 on other splits)
    assert train_map >= train_ml - 0.02
    assert m.score(X_train) >= train_map - 0.005
    assert abs(m.score(X_test) - test_map) < 0.01
    assert m.score(X_test) > test_ml + 0.1


def test_bernoulli_maximum_likelihood_fits_without_rounding_errors():
    """reg=0, pseudo_count=0 on binarised digits: weighted means rounding past 1 used to make the M-step raise."""
    X_train, X_test = _binary_digits()
    m = _RecordInit(E.Bernoulli, 10, reg=0.0, pseudo_count=0.0, tol=1e-12, max_iter=5000, random_state=0)
    m.fit(X_train)
    w, mu = _plain_em(X_train, *m.init_)
    assert m.score(X_train) == pytest.approx(_bernoulli_mixture_log_lik(X_train, w, mu).mean(), abs=1e-6)
    # probabilities 0 and 1 are clamped to float64's resolution by the family (logits +-36), never NaN or inf
    logits = m.natural_params_[0]
    assert np.isfinite(logits).all() and np.abs(logits).max() <= 37
    held_out = m.score_samples(X_test)
    assert np.isfinite(held_out).all()
    # rows that use a clamped probability differ by the two clamps' rounding (torch's logit vs numpy's log)
    np.testing.assert_allclose(held_out, _bernoulli_mixture_log_lik(X_test, w, mu), atol=0.01)
