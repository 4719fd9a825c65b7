# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The family layer (:mod:`pyro_expfam.families`) against ground truth, and the consistency of the three models
that use it.

- ``t(x)`` and ``k(x)``: for every family, ``<eta, t(x)> - A(eta) + k(x)`` equals scipy's log-density at a
  random parameter (exact up to float64 rounding, so ``rtol=1e-10``).
- default priors: the Gaussian defaults equal scikit-learn's ``BayesianGaussianMixture`` priors on the same
  data (``mean_prior_``, ``mean_precision_prior_``, ``degrees_of_freedom_prior_``, ``covariance_prior_``);
  the Poisson default rate is ``shape / mean``.
- consistency: the DP mixture, the overlapping model and ``ExpFamMixture`` refuse the same bad data with the
  same message (the family layer's), and take their default prior and their seeding from the family layer
  (checked by instrumenting the layer's functions and seeing each model call them).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import pyro_expfam.distributions as expfam
from pyro_expfam import families
from pyro_expfam.families import (
    BernoulliFamily,
    CategoricalFamily,
    ExpFamFamily,
    GaussianFamily,
    PoissonFamily,
    get_family,
    seeding,
)
from pyro_expfam.mixture import DirichletProcessMixture, ExpFamMixture
from pyro_expfam.mixture.dpmm import BernoulliEmission, PoissonEmission
from pyro_expfam.models.overlapping import BernoulliClusters, OverlappingMixture, OverlappingMixtureModel

N, D = 30, 3

# the model fits below run two iterations only: they test the data checks, priors and seeding, not the fit
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _log_density(T, k, eta, A):
    return T @ eta - A + k


# --------------------------------------------------------------------------- #
# t(x), k(x) against scipy
# --------------------------------------------------------------------------- #
def test_bernoulli_statistics_scipy(rng):
    X = rng.integers(0, 2, (N, D)).astype(float)
    p = rng.uniform(0.1, 0.9, D)
    T, k = BernoulliFamily().sufficient_statistics(torch.tensor(X))
    eta = np.log(p / (1 - p))
    got = _log_density(T.numpy(), k.numpy(), eta, np.log1p(np.exp(eta)).sum())
    np.testing.assert_allclose(got, stats.bernoulli.logpmf(X, p).sum(1), rtol=1e-10)


def test_poisson_statistics_scipy(rng):
    X = rng.poisson(3.0, (N, D)).astype(float)
    lam = rng.uniform(0.5, 5.0, D)
    T, k = PoissonFamily().sufficient_statistics(torch.tensor(X))
    got = _log_density(T.numpy(), k.numpy(), np.log(lam), lam.sum())
    np.testing.assert_allclose(got, stats.poisson.logpmf(X, lam).sum(1), rtol=1e-10)


def test_categorical_statistics_scipy(rng):
    V = 4
    X = rng.integers(0, V, (N, D)).astype(float)
    p = rng.dirichlet(np.ones(V), D)  # (D, V)
    fam = CategoricalFamily(n_categories=V)
    T, k = fam.sufficient_statistics(torch.tensor(X))
    got = _log_density(T.numpy(), k.numpy(), np.log(p).reshape(-1), 0.0)
    onehot = np.eye(V)[X.astype(int)]
    want = sum(stats.multinomial.logpmf(onehot[:, d], 1, p[d]) for d in range(D))
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical", "unit"])
def test_gaussian_statistics_scipy(kind, rng):
    X = rng.normal(size=(N, D))
    mu = rng.normal(size=D)
    if kind in ("full", "tied"):
        A = rng.normal(size=(D, D))
        prec = A @ A.T + np.eye(D)
    elif kind == "diag":
        prec = np.diag(rng.uniform(0.5, 2.0, D))
    elif kind == "spherical":
        prec = 1.7 * np.eye(D)
    else:
        prec = np.eye(D)
    T, k = GaussianFamily(kind).sufficient_statistics(torch.tensor(X))
    _, logdet = np.linalg.slogdet(prec)
    A_eta = 0.5 * mu @ prec @ mu - 0.5 * logdet
    if kind in ("full", "tied"):
        eta = np.concatenate([prec @ mu, (-0.5 * prec).reshape(-1)])
    elif kind == "diag":
        eta = np.concatenate([np.diag(prec) * mu, -0.5 * np.diag(prec)])
    elif kind == "spherical":
        eta = np.concatenate([1.7 * mu, [-0.5 * 1.7]])
    else:
        eta = mu
    got = _log_density(T.numpy(), k.numpy(), eta, A_eta)
    want = stats.multivariate_normal.logpdf(X, mu, np.linalg.inv(prec))
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_generic_statistics_scipy(rng):
    X = rng.gamma(2.0, 1.5, (N, D))
    fam = ExpFamFamily("Gamma")
    T, k = fam.sufficient_statistics(torch.tensor(X))
    a, b = rng.uniform(1.0, 3.0, D), rng.uniform(0.5, 2.0, D)
    # Gamma: t = (log x, x), eta = (a - 1, -b), A = lgamma(a) - a log b, k = 0
    eta = np.concatenate([a - 1, -b])
    A_eta = (np.array([math.lgamma(v) for v in a]) - a * np.log(b)).sum()
    got = _log_density(T.numpy(), k.numpy(), eta, A_eta)
    np.testing.assert_allclose(got, stats.gamma.logpdf(X, a, scale=1 / b).sum(1), rtol=1e-10)
    # the Diaconis-Ylvisaker default: the data's mean statistics
    np.testing.assert_allclose(fam.prior(torch.tensor(X))["mean_statistics"].numpy(),
                               np.concatenate([np.log(X).mean(0), X.mean(0)]), rtol=1e-12)


# --------------------------------------------------------------------------- #
# default priors
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_gaussian_default_prior_is_sklearns(kind, rng):
    from sklearn.mixture import BayesianGaussianMixture

    X = rng.normal(size=(50, D)) @ rng.normal(size=(D, D)) + 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = BayesianGaussianMixture(n_components=2, covariance_type=kind, max_iter=1, random_state=0).fit(X)
    p = GaussianFamily(kind).prior(torch.tensor(X))
    np.testing.assert_allclose(p["loc"].numpy(), ref.mean_prior_, rtol=1e-12)
    assert p["mean_precision"] == ref.mean_precision_prior_
    assert p["df"] == ref.degrees_of_freedom_prior_
    np.testing.assert_allclose(np.asarray(p["covariance"]), ref.covariance_prior_, rtol=1e-12)


def test_poisson_and_discrete_default_priors():
    X = torch.tensor([[0.0, 4.0], [2.0, 0.0], [1.0, 2.0]])
    p = PoissonFamily(shape=3.0).prior(X)
    assert p["shape"].tolist() == [3.0, 3.0] and torch.allclose(p["rate"], torch.tensor([3.0, 1.5]))
    assert torch.allclose(PoissonFamily(rate=0.5).prior(X)["rate"], torch.tensor([0.5, 0.5]))
    beta = BernoulliFamily(2.0, 3.0).prior(X.clamp(max=1))
    assert beta["a"].tolist() == [2.0, 2.0] and beta["b"].tolist() == [3.0, 3.0]
    conc = CategoricalFamily(0.5).prior(X)["concentration"]
    assert conc.shape == (2, 5) and bool((conc == 0.5).all())


def test_prior_hyperparameters_are_checked():
    with pytest.raises(ValueError, match="shape must be a positive finite number"):
        PoissonFamily(shape=0.0)
    with pytest.raises(ValueError, match="mean_precision_prior"):
        GaussianFamily("full", mean_precision_prior=-1.0)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianFamily("banana")
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        GaussianFamily("full", degrees_of_freedom_prior=0.5).prior(torch.randn(10, 3))
    with pytest.raises(ValueError, match="constant"):
        GaussianFamily("diag").prior(torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]]))


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #
def test_registry():
    assert isinstance(get_family("bernoulli"), BernoulliFamily)
    assert isinstance(get_family(expfam.Poisson), PoissonFamily)
    assert get_family("tied").covariance_type == "tied"
    assert get_family("gaussian", covariance_type="diag").covariance_type == "diag"
    assert get_family(expfam.Normal).covariance_type == "diag"
    assert get_family("one_hot_categorical").one_hot
    fam = PoissonFamily()
    assert get_family(fam) is fam
    generic = get_family(expfam.VonMises)
    assert isinstance(generic, ExpFamFamily) and generic.family == "VonMises"
    inst = get_family(expfam.Categorical(logits=torch.zeros(3)))
    assert isinstance(inst, ExpFamFamily) and inst.prototype is not None
    with pytest.raises(ValueError, match="not a family"):
        get_family("banana")
    with pytest.raises(TypeError, match="family must be"):
        get_family(3)
    with pytest.raises(ValueError, match="invalid hyper-parameters"):
        get_family("poisson", concentration=1.0)


# --------------------------------------------------------------------------- #
# the three models: one data check, one message
# --------------------------------------------------------------------------- #
def _message(fit) -> str:
    with pytest.raises(ValueError) as info:
        fit()
    return str(info.value)


def test_same_message_bernoulli_non_binary():
    X = np.zeros((20, 3))
    X[::2, 0] = 1.0
    X[3, 1] = 2.0
    want = _message(lambda: BernoulliFamily().check_data(torch.tensor(X)))
    assert want.startswith("X contains values outside the support of the Bernoulli family")
    got = {
        "dpmm": _message(lambda: DirichletProcessMixture(3, emission="bernoulli", max_iter=2).fit(X)),
        "overlapping": _message(lambda: OverlappingMixture("bernoulli", 2, max_iter=2).fit(X)),
        "em": _message(lambda: ExpFamMixture("Bernoulli", 2, max_iter=2).fit(X)),
        "emission": _message(lambda: BernoulliEmission().setup(torch.tensor(X))),
        "clusters": _message(lambda: BernoulliClusters().check_data(X)),
    }
    assert got == dict.fromkeys(got, want)


@pytest.mark.parametrize("bad", [-1.0, 0.5])
def test_same_message_poisson(bad):
    # (the overlapping model has no Poisson clusters: a product of Poisson densities is not a Poisson)
    X = np.ones((20, 2))
    X[4, 1] = bad
    want = _message(lambda: PoissonFamily().check_data(torch.tensor(X)))
    assert ("Negative values in data" in want) == (bad < 0)
    got = {
        "dpmm": _message(lambda: DirichletProcessMixture(3, emission="poisson", max_iter=2).fit(X)),
        "em": _message(lambda: ExpFamMixture("Poisson", 2, max_iter=2).fit(X)),
        "emission": _message(lambda: PoissonEmission().setup(torch.tensor(X))),
        "generic": _message(lambda: ExpFamFamily(expfam.Poisson).check_data(torch.tensor(X))),
    }
    assert got == dict.fromkeys(got, want)


def test_same_message_categorical_non_integer():
    X = np.tile([[0.0, 1.0], [2.0, 1.0]], (10, 1))
    X[3, 0] = 0.5
    want = _message(lambda: CategoricalFamily().check_data(torch.tensor(X)))
    assert want.endswith("Categorical needs non-negative integer codes")
    proto = expfam.Categorical(logits=torch.zeros(3, dtype=torch.float64))
    got = {
        "dpmm": _message(lambda: DirichletProcessMixture(3, emission="categorical", max_iter=2).fit(X)),
        "overlapping": _message(lambda: OverlappingMixture("categorical", 2, max_iter=2).fit(X)),
        "em": _message(lambda: ExpFamMixture(proto, 2, max_iter=2).fit(X)),
    }
    assert got == dict.fromkeys(got, want)


def test_nan_refused_by_every_model():
    # NaN is refused before the family layer, by BaseMixture's scikit-learn input validation (check_X)
    X = np.ones((20, 2))
    X[4, 1] = np.nan
    for fit in (lambda: DirichletProcessMixture(3, emission="poisson", max_iter=2).fit(X),
                lambda: OverlappingMixture("bernoulli", 2, max_iter=2).fit(X),
                lambda: ExpFamMixture("Poisson", 2, max_iter=2).fit(X)):
        assert "contains NaN" in _message(fit)
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        BernoulliFamily().validate(X)


# --------------------------------------------------------------------------- #
# the three models: the family layer's prior and seeding
# --------------------------------------------------------------------------- #
def _count_calls(monkeypatch, owner, name: str) -> list:
    calls = []
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def test_dpmm_takes_its_default_prior_from_the_family_layer(monkeypatch):
    X = torch.poisson(torch.full((40, 2), 3.0, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    calls = _count_calls(monkeypatch, PoissonFamily, "prior")
    m = DirichletProcessMixture(3, emission="poisson", max_iter=2, random_state=0).fit(X)
    assert calls
    # phi0 = (shape - 1, rate) with the family layer's default rate shape / mean(X)
    np.testing.assert_allclose(np.asarray(m.prior_natural_params_)[2:], (1.0 / X.mean(0)).numpy(), rtol=1e-12)
    gauss = _count_calls(monkeypatch, GaussianFamily, "prior")
    DirichletProcessMixture(2, covariance_type="diag", max_iter=2, random_state=0).fit(torch.randn(30, 2))
    assert gauss


def test_overlapping_takes_its_prior_moments_and_seeds_from_the_family_layer(monkeypatch):
    X = torch.randn(30, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    variances = _count_calls(monkeypatch, GaussianFamily, "variances")
    seeds = _count_calls(monkeypatch, seeding, "kmeans_pp_indices")
    model = OverlappingMixtureModel("normal", 3)
    model.init_params(X, torch.Generator().manual_seed(0))
    assert variances and seeds
    assert torch.allclose(model.family.hyper["var"], X.var(0))


def test_em_seeds_through_the_family_layer(monkeypatch):
    X = np.random.default_rng(0).poisson(3.0, (40, 2))
    calls = _count_calls(monkeypatch, seeding, "initial_responsibilities")
    feats = _count_calls(monkeypatch, seeding, "standardized_features")
    ExpFamMixture("Poisson", 2, max_iter=2, random_state=0).fit(X)
    assert calls and feats


def test_seeding_is_the_overlapping_models_old_kmeans_pp():
    # the same draws as the overlapping model's k-means++ had before it moved to the family layer
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    idx = seeding.kmeans_pp_indices(x, 5, torch.Generator().manual_seed(3))
    assert idx.shape == (5,) and idx.dtype == torch.int64
    g = torch.Generator().manual_seed(3)
    first = int(torch.randint(50, (1,), generator=g))
    assert int(idx[0]) == first
    # every later seed was drawn with positive weight: never a repeat while distinct points remain
    assert len(set(idx.tolist())) == 5


def test_package_exports():
    for name in families.__all__:
        assert hasattr(families, name)


@pytest.mark.parametrize("kind", ["full", "diag", "spherical", "unit"])
def test_dpmm_gaussian_statistics_are_the_family_layers(kind, rng):
    # the DP mixture keeps its CAVI coordinates (xx^T packed as its upper triangle); they are the family
    # layer's t(x) and k(x) up to that packing
    from pyro_expfam.mixture.dpmm import make_emission

    X = torch.tensor(rng.normal(size=(N, D)))
    em = make_emission("gaussian", kind)
    em.setup(X)
    T_em, k_em = em.sufficient_statistics(X)
    T, k = GaussianFamily(kind).sufficient_statistics(X)
    if kind == "full":
        iu = torch.triu_indices(D, D)
        T = torch.cat([T[:, :D], T[:, D:].reshape(N, D, D)[:, iu[0], iu[1]]], 1)
    torch.testing.assert_close(T_em, T, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(k_em, k, rtol=1e-12, atol=1e-12)
