# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""GaussianMixture (EM) against scikit-learn, scipy and closed forms."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from pyro_expfam.mixture.gaussian import GaussianMixture
from pyro_expfam.util import ConvergenceWarning, NotFittedError

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
K, D = 3, 3


def _data(n: int = 600, seed: int = 0) -> np.ndarray:
    """Three overlapping correlated clusters (overlap makes EM take many iterations)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [2.5, 1.0, 0.0], [0.0, 3.0, 1.5]])
    A = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.2, -0.3, 0.7]])
    labels = rng.integers(0, K, n)
    return centres[labels] + rng.normal(size=(n, D)) @ A.T + 5.0  # offset: exercise the centring


def _init(X: np.ndarray, covariance_type: str, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    means = X[rng.choice(len(X), K, replace=False)]
    prec = {
        "full": np.stack([np.eye(D) * (1 + 0.3 * k) for k in range(K)]),
        "tied": np.eye(D) * 0.8,
        "diag": rng.uniform(0.5, 1.5, size=(K, D)),
        "spherical": rng.uniform(0.5, 1.5, size=K),
    }[covariance_type]
    return {"weights_init": np.array([0.5, 0.3, 0.2]), "means_init": means, "precisions_init": prec}


@pytest.mark.parametrize("reg_covar", [1e-6, 0.3])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_matches_sklearn_from_same_init(covariance_type, reg_covar):
    X = _data()
    kw = dict(covariance_type=covariance_type, reg_covar=reg_covar, tol=1e-6, max_iter=300,
              **_init(X, covariance_type))
    sk = SkGaussianMixture(K, **kw).fit(X)
    ours = GaussianMixture(K, **kw).fit(torch.as_tensor(X))
    assert sk.converged_ and ours.converged_
    assert ours.n_iter_ == sk.n_iter_ > 5
    # same final log-likelihood to 1e-6 relative (observed: ~1e-15)
    assert ours.score(X) == pytest.approx(sk.score(X), rel=1e-6)
    assert ours.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(ours.weights_.numpy(), sk.weights_, atol=1e-6)
    np.testing.assert_allclose(ours.means_.numpy(), sk.means_, atol=1e-6)
    np.testing.assert_allclose(ours.covariances_.numpy(), sk.covariances_, atol=1e-6)
    np.testing.assert_allclose(ours.precisions_.numpy(), sk.precisions_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.precisions_cholesky_.numpy(), sk.precisions_cholesky_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.score_samples(X).numpy(), sk.score_samples(X), rtol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X).numpy(), sk.predict_proba(X), atol=1e-6)
    assert ours.bic(X) == pytest.approx(sk.bic(X), rel=1e-6)
    assert ours.aic(X) == pytest.approx(sk.aic(X), rel=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_likelihood_never_decreases(covariance_type):
    X = torch.as_tensor(_data(seed=3))
    gm = GaussianMixture(K, covariance_type=covariance_type, tol=0.0, max_iter=60,
                         **_init(X.numpy(), covariance_type, seed=4))
    with pytest.warns(ConvergenceWarning):
        gm.fit(X)
    bounds = torch.tensor(gm.lower_bounds_, dtype=torch.float64)
    assert len(bounds) == 60
    # EM is monotone; allow rounding of a float64 mean over 600 points
    assert bool((bounds.diff() >= -1e-12 * bounds.abs()[1:]).all())
    assert bounds[-1] > bounds[0] + 0.1


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_against_scipy(covariance_type):
    X = _data(200, seed=5)
    gm = GaussianMixture(K, covariance_type=covariance_type, random_state=0, max_iter=5, tol=1e-2).fit(X)
    cov = gm.covariances_
    if covariance_type == "full":
        full = cov
    elif covariance_type == "tied":
        full = np.broadcast_to(cov, (K, D, D))
    elif covariance_type == "diag":
        full = np.stack([np.diag(c) for c in cov])
    else:
        full = np.stack([np.eye(D) * c for c in cov])
    w = gm.weights_
    dens = sum(w[k] * multivariate_normal(gm.means_[k], full[k]).pdf(X) for k in range(K))
    np.testing.assert_allclose(gm.score_samples(X), np.log(dens), rtol=1e-9)
    expected = np.linalg.inv(cov) if covariance_type in ("full", "tied") else 1.0 / cov
    np.testing.assert_allclose(gm.precisions_, expected, rtol=1e-9)
    # predictions agree with predict_proba and with fit_predict
    # numpy in, numpy out (scikit-learn's dtypes)
    proba = gm.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.dtype == np.float64 and gm.predict(X).dtype == np.int64
    np.testing.assert_allclose(proba.sum(1), np.ones(len(X)), rtol=1e-12)
    np.testing.assert_array_equal(gm.predict(X), proba.argmax(1))
    assert gm.score(X) == pytest.approx(float(gm.score_samples(X).mean()))


def test_fit_predict_consistent_and_reproducible():
    X = torch.as_tensor(_data(300, seed=7))
    a = GaussianMixture(K, random_state=3)
    labels = a.fit_predict(X)
    assert torch.equal(labels, a.predict(X))
    b = GaussianMixture(K, random_state=3).fit(X)
    torch.testing.assert_close(a.means_, b.means_)


def test_n_init_keeps_best():
    X = torch.as_tensor(_data(300, seed=8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = GaussianMixture(K, init_params="random", n_init=1, max_iter=5, random_state=0).fit(X)
        five = GaussianMixture(K, init_params="random", n_init=5, max_iter=5, random_state=0).fit(X)
    # the first of the five restarts is the single run (same generator), so the best is at least as good
    assert five.lower_bound_ >= one.lower_bound_


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_init_params_recover_planted(init_params):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    X = np.concatenate([c + rng.normal(size=(400, 2)) for c in centres])
    gm = GaussianMixture(3, init_params=init_params, n_init=2, random_state=0, max_iter=200).fit(X)
    got = gm.means_[np.argsort(gm.means_ @ [1.0, 2.0])]
    # each mean is an average of ~400 unit-variance points: sd 0.05, tolerance 5 sd
    np.testing.assert_allclose(got, centres, atol=0.25)


def test_float32_and_dtype_follow_input():
    X = _data(400, seed=9)
    kw = dict(covariance_type="full", tol=1e-6, max_iter=100, **_init(X, "full"))
    ours64 = GaussianMixture(K, **kw).fit(torch.as_tensor(X))
    ours32 = GaussianMixture(K, **kw).fit(torch.as_tensor(X, dtype=torch.float32))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert getattr(ours32, name).dtype == torch.float32
    assert ours32.predict_proba(X).dtype == torch.float32
    # float32 rounding (eps 6e-8) on a log-likelihood of ~-5 per point
    assert ours32.score(X) == pytest.approx(ours64.score(X), rel=1e-4)


def test_sample_moments():
    gm = GaussianMixture(2, covariance_type="full", max_iter=0, weights_init=[0.3, 0.7],
                         means_init=[[0.0, 0.0], [4.0, -2.0]],
                         precisions_init=np.linalg.inv([[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.25]]]),
                         random_state=0)
    gm.fit(np.random.default_rng(0).normal(size=(10, 2)))
    X, labels = gm.sample(20000)
    assert isinstance(X, np.ndarray) and labels.dtype == np.int64
    X, labels = torch.as_tensor(X), torch.as_tensor(labels)
    assert X.shape == (20000, 2) and labels.shape == (20000,)
    # mixture mean = 0.3*0 + 0.7*(4,-2); sd of the sample mean of each coordinate <= 2.5/sqrt(2e4) = 0.018
    torch.testing.assert_close(X.mean(0), torch.tensor([2.8, -1.4], dtype=X.dtype), atol=0.08, rtol=0)
    # within-component covariance of component 0: entries' standard errors ~ 2/sqrt(6000) = 0.026
    torch.testing.assert_close(X[labels == 0].T.cov(), torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=X.dtype),
                               atol=0.12, rtol=0)
    # label frequency: sd sqrt(0.21/2e4) = 0.0032
    assert abs(float((labels == 1).double().mean()) - 0.7) < 0.02


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_save_load_and_warm_start(covariance_type):
    X = torch.as_tensor(_data(300, seed=10))
    gm = GaussianMixture(K, covariance_type=covariance_type, random_state=0, **_init(X.numpy(), covariance_type))
    gm.fit(X)
    buf = io.BytesIO()
    gm.save(buf)
    buf.seek(0)
    loaded = GaussianMixture.load(buf)
    torch.testing.assert_close(loaded.score_samples(X), gm.score_samples(X))
    torch.testing.assert_close(loaded.precisions_, gm.precisions_)
    assert loaded.n_iter_ == gm.n_iter_ and loaded.converged_ == gm.converged_
    # warm start: one more iteration from the loaded state does not lower the likelihood
    loaded.set_params(warm_start=True, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loaded.fit(X)
    assert loaded.score(X) >= gm.score(X) - 1e-12


def test_not_fitted():
    gm = GaussianMixture(2)
    X = np.zeros((5, 2))
    for call in (lambda: gm.predict(X), lambda: gm.predict_proba(X), lambda: gm.score(X),
                 lambda: gm.score_samples(X), lambda: gm.sample(3), lambda: gm.save(io.BytesIO())):
        with pytest.raises(NotFittedError):
            call()


def test_convergence_warning():
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(K, max_iter=1, random_state=0).fit(_data(100))


@pytest.mark.parametrize(
    "kwargs, X, match",
    [
        ({}, np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 2.0]]), "NaN"),
        ({}, np.arange(10.0), "Expected 2D array"),
        ({"n_components": 5}, np.random.default_rng(0).normal(size=(4, 2)), "n_samples >= n_components"),
        ({"covariance_type": "banana"}, np.zeros((10, 2)), "covariance_type"),
        ({"reg_covar": -1.0}, np.zeros((10, 2)), "reg_covar"),
        ({"weights_init": [0.5, 0.6]}, np.random.default_rng(0).normal(size=(10, 2)), "sum to 1"),
        ({"means_init": np.zeros((3, 2))}, np.random.default_rng(0).normal(size=(10, 2)), "means_init"),
        ({"precisions_init": -np.ones((2, 2, 2))}, np.random.default_rng(0).normal(size=(10, 2)),
         "positive definite|symmetric"),
        ({"covariance_type": "diag", "precisions_init": np.ones((2, 3))}, np.zeros((10, 2)), "precisions_init"),
        # perfectly collinear data and no regularisation: a singular covariance
        ({"reg_covar": 0.0}, np.outer(np.arange(20.0), [1.0, 2.0]), "ill-defined empirical covariance"),
        ({"reg_covar": 0.0, "covariance_type": "diag"}, np.ones((20, 2)), "ill-defined empirical covariance"),
    ],
)
def test_bad_input(kwargs, X, match):
    kwargs = {"n_components": 2, "random_state": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**kwargs).fit(X)


def test_predict_wrong_features():
    gm = GaussianMixture(2, random_state=0).fit(_data(50))
    with pytest.raises(ValueError, match="features"):
        gm.predict(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        gm.score_samples(np.full((4, 3), math.nan))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_cuda_matches_cpu(covariance_type):
    X = _data(500, seed=11)
    kw = dict(covariance_type=covariance_type, tol=1e-6, max_iter=200, **_init(X, covariance_type))
    cpu = GaussianMixture(K, **kw).fit(torch.as_tensor(X))
    gpu = GaussianMixture(K, **kw).fit(torch.as_tensor(X, device="cuda"))
    assert gpu.means_.is_cuda and gpu.predict(X).is_cuda
    assert gpu.n_iter_ == cpu.n_iter_
    assert gpu.score(X) == pytest.approx(cpu.score(X), rel=1e-9)
    samples, labels = gpu.sample(10)
    assert samples.is_cuda and labels.is_cuda
