# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The scikit-learn style layer: cluster recovery on blobs from default settings,
the estimator API (fit/predict/score/sample, fitted attributes, errors,
warnings), save/load and warm starts, dtypes and devices, k-means++.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from pyro_expfam.datasets.blobs import make_blobs
from pyro_expfam.mixture.dpmm import DirichletProcessMixture
from pyro_expfam.mixture.init import initial_responsibilities, kmeans, kmeans_plusplus
from pyro_expfam.util import ConvergenceWarning, NotFittedError


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "unit"])
@pytest.mark.parametrize("D", [2, 10])
def test_blobs_recovered_from_defaults(D, covariance_type):
    """N = 10^4, 5 well-separated clusters, truncation 20, default settings (CAVI): ARI >= 0.99."""
    X, y = make_blobs(10_000, D, 5, random_state=D)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = DirichletProcessMixture(20, covariance_type=covariance_type, random_state=0)
        labels = est.fit_predict(X)
    assert adjusted_rand_score(y, labels) >= 0.99
    assert labels.unique().numel() == 5
    assert int((est.weights_ > 0.01).sum()) == 5
    assert est.converged_ and est.n_iter_ < 50
    assert torch.equal(labels, est.predict(X))


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_discrete_emissions_recover_clusters(init_params):
    """Bernoulli and Poisson mixtures reach the ARI of the oracle classifier that knows the true parameters."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(900) % 3
    p = torch.rand(3, 30, generator=g)
    X = torch.bernoulli(p[y], generator=g)
    oracle = adjusted_rand_score(y, (X @ p.log().T + (1 - X) @ (1 - p).log().T).argmax(1))  # 0.898
    est = DirichletProcessMixture(10, emission="bernoulli", init_params=init_params, random_state=0).fit(X)
    assert adjusted_rand_score(y, est.predict(X)) >= oracle - 0.02
    assert int((est.weights_ > 0.01).sum()) == 3
    rates = 1 + 10 * torch.rand(3, 8, generator=g)
    Xp = torch.poisson(rates[y], generator=g)
    oracle = adjusted_rand_score(y, (Xp @ rates.log().T - rates.sum(1)).argmax(1))
    est = DirichletProcessMixture(10, emission="poisson", init_params=init_params, random_state=0).fit(Xp)
    assert adjusted_rand_score(y, est.predict(Xp)) >= oracle - 0.02
    assert est.rates_.shape == (10, 8)
    P = torch.softmax(2 * torch.randn(3, 6, 5, generator=g), -1)  # 6 categorical features, 5 categories
    Xc = torch.multinomial(P[y].reshape(-1, 5), 1, generator=g).reshape(900, 6).float()
    onehot = torch.nn.functional.one_hot(Xc.long(), 5).float().reshape(900, -1)
    oracle = adjusted_rand_score(y, (onehot @ P.log().reshape(3, -1).T).argmax(1))
    est = DirichletProcessMixture(10, emission="categorical", init_params=init_params, random_state=0).fit(Xc)
    assert adjusted_rand_score(y, est.predict(Xc)) >= oracle - 0.02
    assert est.probs_.shape == (10, 6, 5)


def test_estimator_api():
    X, y = make_blobs(600, 3, 3, random_state=0, dtype=torch.float64)
    est = DirichletProcessMixture(6, random_state=0)
    with pytest.raises(NotFittedError):
        est.predict(X)
    est.fit(X)
    proba = est.predict_proba(X)
    assert proba.shape == (600, 6) and torch.allclose(proba.sum(1), torch.ones(600, dtype=torch.float64))
    assert torch.equal(proba.argmax(1), est.predict(X))
    ss = est.score_samples(X)
    assert ss.shape == (600,) and est.score(X) == pytest.approx(float(ss.mean()))
    assert est.means_.shape == (6, 3) and est.covariances_.shape == (6, 3, 3)
    assert torch.allclose(est.precisions_ @ est.covariances_, torch.eye(3, dtype=torch.float64).expand(6, 3, 3),
                          atol=1e-8)
    assert est.weights_.sum() == pytest.approx(1.0)
    Xs, ys = est.sample(2000)
    assert Xs.shape == (2000, 3) and ys.shape == (2000,)
    # samples are drawn from the fitted components: their labels are recovered
    assert (est.predict(Xs) == ys).double().mean() > 0.99
    est2 = clone(est)
    assert est2.get_params() == est.get_params() and not hasattr(est2, "weights_")
    assert "n_components=6" in repr(est)
    # the per-point ELBO bound is monotone and recorded
    assert est.lower_bound_ == est.lower_bounds_[-1] and est.n_iter_ == len(est.lower_bounds_)


def test_matches_sklearn_clusters():
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    X, y = make_blobs(2000, 4, 4, random_state=3, dtype=torch.float64)
    ours = DirichletProcessMixture(10, random_state=0).fit(X)
    ref = sklearn_mixture.BayesianGaussianMixture(n_components=10, weight_concentration_prior_type="dirichlet_process",
                                                  random_state=0, max_iter=500).fit(X.numpy())
    assert adjusted_rand_score(ref.predict(X.numpy()), ours.predict(X)) > 0.99
    assert ours.score(X) >= ref.score(X.numpy()) - 0.05


def test_bad_input():
    X, _ = make_blobs(100, 2, 3, random_state=0)
    est = DirichletProcessMixture(5)
    bad = X.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad)
    with pytest.raises(ValueError, match="2-D"):
        est.fit(X[:, 0])
    with pytest.raises(ValueError, match="minimum of 2"):
        DirichletProcessMixture(20).fit(X[:1])
    with pytest.raises(ValueError, match="singular"):
        est.fit(torch.cat([X, 2 * X[:, :1]], 1))
    with pytest.raises(ValueError, match="constant"):
        DirichletProcessMixture(5, covariance_type="diag").fit(torch.cat([X, torch.ones(100, 1)], 1))
    with pytest.raises(ValueError, match="covariance_type"):
        DirichletProcessMixture(5, covariance_type="banana").fit(X)
    with pytest.raises(ValueError, match="method"):
        DirichletProcessMixture(5, method="gibbs").fit(X)
    with pytest.raises(ValueError, match="weight_concentration_prior"):
        DirichletProcessMixture(5, weight_concentration_prior=-1.0).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        DirichletProcessMixture(0).fit(X)
    with pytest.raises(ValueError, match="Bernoulli"):
        DirichletProcessMixture(5, emission="bernoulli").fit(X)
    with pytest.raises(ValueError, match="emission_prior"):
        DirichletProcessMixture(5, emission="poisson", mean_prior=torch.zeros(2)).fit(X.abs().round())
    with pytest.raises(TypeError, match="X must be"):
        est.fit("not data")
    est.fit(X)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :1])


@pytest.mark.parametrize("init_params", ["kmeans", "random_from_data"])
def test_truncation_above_n_samples(init_params):
    """A truncation level above the number of samples is allowed (the extra components keep the prior)."""
    X, y = make_blobs(40, 2, 2, separation=8.0, random_state=0, dtype=torch.float64)
    est = DirichletProcessMixture(50, init_params=init_params, random_state=0).fit(X)
    assert adjusted_rand_score(y, est.predict(X)) == 1.0
    assert int((est.weights_ > 0.05).sum()) == 2 and est.weights_.shape == (50,)


def test_convergence_warning():
    X, _ = make_blobs(300, 2, 3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        est = DirichletProcessMixture(5, max_iter=1, random_state=0).fit(X)
    assert not est.converged_ and est.n_iter_ == 1


def test_n_init_keeps_best_and_seed_reproducible():
    X, _ = make_blobs(500, 2, 4, random_state=1, dtype=torch.float64)
    singles = [DirichletProcessMixture(6, random_state=s, merge=False).fit(X).lower_bound_ for s in range(3)]
    a = DirichletProcessMixture(6, random_state=7, n_init=3, merge=False).fit(X)
    b = DirichletProcessMixture(6, random_state=7, n_init=3, merge=False).fit(X)
    assert a.lower_bound_ == b.lower_bound_
    assert a.lower_bound_ >= min(singles) - 1e-12


def test_save_load_and_warm_start(tmp_path):
    X, _ = make_blobs(400, 2, 3, random_state=0, dtype=torch.float64)
    est = DirichletProcessMixture(6, covariance_type="diag", max_iter=2, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X)
    path = tmp_path / "dpmm.pt"
    est.save(path)
    loaded = DirichletProcessMixture.load(path)
    assert torch.equal(loaded.predict(X), est.predict(X))
    assert loaded.score(X) == est.score(X)
    assert loaded.lower_bounds_ == est.lower_bounds_ and loaded.dtype is None
    loaded.set_params(warm_start=True, max_iter=100).fit(X)
    assert loaded.converged_
    assert loaded.lower_bounds_[0] >= est.lower_bound_ - 1e-12  # resumed, not restarted
    cold = DirichletProcessMixture(6, covariance_type="diag", random_state=0).fit(X)
    assert loaded.lower_bound_ == pytest.approx(cold.lower_bound_, abs=1e-4)
    with pytest.raises(TypeError, match="holds a"):
        from pyro_expfam.mixture.base import BaseMixture

        class Other(DirichletProcessMixture):
            pass

        Other.load(path)
    assert issubclass(DirichletProcessMixture, BaseMixture)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_data(dtype):
    X, y = make_blobs(1000, 3, 3, random_state=0, dtype=dtype)
    est = DirichletProcessMixture(8, random_state=0).fit(X)
    assert est.means_.dtype == dtype and est.predict_proba(X).dtype == dtype
    assert adjusted_rand_score(y, est.predict(X)) > 0.99
    # the dtype argument converts
    est64 = DirichletProcessMixture(8, random_state=0, dtype=torch.float64).fit(X.float())
    assert est64.means_.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("method", ["cavi", "snvi", "svi"])
def test_cuda(method, tmp_path):
    X, y = make_blobs(2000, 3, 4, random_state=0)
    kw = {"max_iter": 3} if method == "svi" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = DirichletProcessMixture(10, method=method, random_state=0, device="cuda", **kw).fit(X)
    assert est.means_.device.type == "cuda"
    labels = est.predict(X)
    assert labels.device.type == "cuda"
    if method != "svi":
        assert adjusted_rand_score(y, labels.cpu()) > 0.99
        cpu = DirichletProcessMixture(10, method=method, random_state=0, **kw).fit(X)
        assert abs(cpu.lower_bound_ - est.lower_bound_) < 1e-3
    est.save(tmp_path / "m.pt")
    assert DirichletProcessMixture.load(tmp_path / "m.pt", map_location="cpu").means_.device.type == "cpu"


def test_kmeans_plusplus_and_kmeans():
    X, y, centers = make_blobs(3000, 2, 6, random_state=4, dtype=torch.float64, return_centers=True)
    g = torch.Generator().manual_seed(0)
    seeds, idx = kmeans_plusplus(X, 6, g)
    assert torch.equal(seeds, X[idx])
    # greedy k-means++ puts one seed in each well-separated blob
    assert y[idx].unique().numel() == 6
    c, labels = kmeans(X, 6, torch.Generator().manual_seed(1))
    assert adjusted_rand_score(y, labels) == 1.0
    # Lloyd's centres are the blob means: within 4 standard errors (0.05 at 500 points per blob)
    assert torch.cdist(c, centers).min(1).values.max() < 0.2
    r = initial_responsibilities(X, 6, "random", g)
    assert torch.allclose(r.sum(1), torch.ones(3000, dtype=torch.float64))
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_plusplus(X[:3], 6)
    with pytest.raises(ValueError, match="init method"):
        initial_responsibilities(X, 6, "spectral")
