# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Reliability of :class:`DirichletProcessMixture` (issue 10): bit-identical resume for every method and
covariance type (in memory and through a file), snvi's warm start continuing its step-size schedule, an
interrupted re-fit leaving the old fit intact (and Pyro's param store clean), float32 data far from the
origin, and hyper-parameter errors that name the argument.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyro
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from pyro_expfam.datasets.blobs import make_blobs
from pyro_expfam.mixture.dpmm import DirichletProcessMixture
from pyro_expfam.util import ConvergenceWarning, NotFittedError

RESUME = [("cavi", ct) for ct in ("full", "tied", "diag", "spherical", "unit")] + [
    ("snvi", "full"), ("snvi", "tied"), ("svi", "full"), ("svi-finite", "diag")]


def _fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: every fit runs max_iter iterations
        return est.fit(X)


@pytest.mark.parametrize("method,covariance_type", RESUME)
def test_resume_is_bit_identical(method, covariance_type, tmp_path):
    """fit(3) -> save -> load -> warm fit(3) equals fit(6) with torch.equal, as does an in-memory warm start.
    From a random start CAVI switches its merge moves on after 2 iterations (the counter is saved), snvi's
    step counter sets its step size, svi's guide parameters, Adam moments and learning-rate decay are saved;
    every method's random generator state is saved.  (svi, at least 20 Pyro steps per iteration, runs 2 + 2
    iterations, 1 + 1 with the Dirichlet weights, and resumes from the file only: the in-memory warm start
    takes the same code path.)"""
    X, _ = make_blobs(300, 2, 3, random_state=0, dtype=torch.float64)
    kw = dict(covariance_type=covariance_type, method=method, tol=0.0, random_state=0, init_params="random")
    half = {"cavi": 3, "snvi": 3, "svi": 2, "svi-finite": 1}[method]
    if method == "svi-finite":  # svi with finite Dirichlet weights: its guide's concentration is saved too
        kw.update(method="svi", weight_concentration_prior_type="dirichlet_distribution")
        method = "svi"
    if method != "cavi":
        kw["batch_size"] = 64
    straight = _fit(DirichletProcessMixture(6, max_iter=2 * half, **kw), X)
    first = _fit(DirichletProcessMixture(6, max_iter=half, **kw), X)
    first.save(tmp_path / "dpmm.pt")
    loaded = DirichletProcessMixture.load(tmp_path / "dpmm.pt")
    resumed = [_fit(loaded.set_params(warm_start=True, max_iter=half), X)]
    if method != "svi":
        resumed.append(_fit(first.set_params(warm_start=True, max_iter=half), X))
    for est in resumed:
        assert torch.equal(est.natural_params_, straight.natural_params_)
        assert torch.equal(est.weight_concentration_, straight.weight_concentration_)
        assert est.lower_bounds_ == straight.lower_bounds_[half:]
    assert not [k for k in pyro.get_param_store().keys() if k.startswith("_dpmm")]


def test_snvi_warm_start_continues_the_schedule():
    """A warm start resumes the step counter (rho keeps decaying) instead of restarting at rho = 1."""
    X, _ = make_blobs(400, 2, 3, random_state=1, dtype=torch.float64)
    est = _fit(DirichletProcessMixture(6, method="snvi", batch_size=50, max_iter=2, tol=0.0, random_state=0), X)
    assert est._snvi_step == 16
    _fit(est.set_params(warm_start=True), X)
    assert est._snvi_step == 32


@pytest.mark.parametrize("method", ["cavi", "svi"])
def test_interrupted_refit_keeps_the_old_fit(method, monkeypatch):
    X, y = make_blobs(300, 2, 3, random_state=0, dtype=torch.float64)
    est = _fit(DirichletProcessMixture(6, method=method, max_iter=2 if method == "svi" else 200, random_state=0), X)
    before = {k: getattr(est, k) for k in ("natural_params_", "weight_concentration_", "means_", "weights_")}
    labels, bound, n_iter = est.predict(X), est.lower_bound_, est.n_iter_
    calls = []
    original = DirichletProcessMixture._step

    def interrupted(self, X):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, X)

    monkeypatch.setattr(DirichletProcessMixture, "_step", interrupted)
    X2, _ = make_blobs(300, 2, 5, random_state=7, dtype=torch.float64)
    with pytest.raises(KeyboardInterrupt):
        est.set_params(random_state=3, max_iter=5).fit(X2)
    assert len(calls) == 3
    for key, value in before.items():
        assert torch.equal(getattr(est, key), value), key
    assert torch.equal(est.predict(X), labels) and est.lower_bound_ == bound and est.n_iter_ == n_iter
    assert not [k for k in pyro.get_param_store().keys() if k.startswith("_dpmm")]
    # an estimator that was never fitted stays unfitted
    calls.clear()
    fresh = DirichletProcessMixture(6, method=method, max_iter=5, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        fresh.predict(X)


def _two_blobs(n: int, scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    centers = torch.tensor([[-5.0, 0.0], [5.0, 3.0]], dtype=torch.float64)
    return scale * (centers[y] + torch.randn(n, 2, generator=g, dtype=torch.float64)), y


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "unit"])
@pytest.mark.parametrize("offset,scale", [(1e4, 1.0), (1e8, 100.0)])
def test_float32_far_from_the_origin(covariance_type, offset, scale):
    """Two blobs at an offset, cast to float32: fit, score and predict on *new* data agree with a float64 fit at
    the origin (float32 spacing at the offset, 1e-3 and 8, is below the spread 1 and 100)."""
    X, y = _two_blobs(400, scale, 0)
    Xt, yt = _two_blobs(400, scale, 1)
    ref = DirichletProcessMixture(6, covariance_type=covariance_type, random_state=0).fit(X)
    est = DirichletProcessMixture(6, covariance_type=covariance_type, random_state=0).fit((X + offset).float())
    new = (Xt + offset).float()
    # float32 rounding of the data at the offset (spacing 1e-3 and 8) moves the mean log density by
    # about spacing^2 / (12 scale^2) plus float32 accumulation: 1e-3 relative
    assert est.score(new) == pytest.approx(ref.score(Xt), rel=2e-3)
    if covariance_type == "unit":  # unit variance misfits blobs of spread 100: both fits split them alike
        assert adjusted_rand_score(ref.predict(Xt), est.predict(new)) > 0.95
    else:
        assert adjusted_rand_score(yt, est.predict(new)) == 1.0 == adjusted_rand_score(yt, ref.predict(Xt))

    def big_means(e):  # the means of the components with weight > 0.1, in the original coordinates, sorted
        m = e.means_[e.weights_ > 0.1].double()
        return m[m[:, 0].argsort()]

    # means_ are float32 in the original coordinates: exact up to float32's spacing at the offset
    assert torch.allclose(big_means(est) - offset, big_means(ref), atol=1e-2 * scale + 1.2e-7 * offset)
    # the same with numpy input, numpy output
    est_np = DirichletProcessMixture(6, covariance_type=covariance_type, random_state=0).fit((X + offset).float()
                                                                                           .numpy())
    assert isinstance(est_np.score_samples(new.numpy()), np.ndarray)
    assert est_np.score(new.numpy()) == pytest.approx(est.score(new), rel=1e-5)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "unit"])
def test_float32_that_cannot_represent_the_data(covariance_type):
    """Spread 1 at 1e8: float32's spacing there is 8, the data are gone; the error says so and suggests float64."""
    X, _ = _two_blobs(200, 1.0, 0)
    with pytest.raises(ValueError, match="float32 cannot represent.*float64"):
        DirichletProcessMixture(4, covariance_type=covariance_type).fit((X + 1e8).float())
    est = DirichletProcessMixture(4, covariance_type=covariance_type, random_state=0).fit(X + 1e8)  # float64 works
    assert adjusted_rand_score(torch.arange(200) % 2, est.predict(X + 1e8)) == 1.0


@pytest.mark.parametrize("kwargs,match", [
    ({"weight_concentration_prior": float("inf")}, "weight_concentration_prior must be a positive finite number"),
    ({"weight_concentration_prior": "a"}, "weight_concentration_prior must be a positive finite number"),
    ({"weight_concentration_prior": 0.0}, "weight_concentration_prior"),
    ({"covariance_type": "unit", "degrees_of_freedom_prior": -1}, "degrees_of_freedom_prior"),
    ({"covariance_type": "unit", "degrees_of_freedom_prior": 0.5},
     "The parameter 'degrees_of_freedom_prior' should be greater than 1, but got 0.500"),
    ({"degrees_of_freedom_prior": 0.5}, "The parameter 'degrees_of_freedom_prior' should be greater than 1"),
    ({"covariance_type": "unit", "covariance_prior": 1.0}, "covariance_prior does not apply"),
    ({"mean_precision_prior": float("nan")}, "mean_precision_prior"),
    ({"reg_covar": -1e-6}, "reg_covar"),
    ({"weight_concentration_prior_type": "pitman_yor"}, "weight_concentration_prior_type"),
    ({"learning_rate_decay": "fast"}, "learning_rate_decay"),
    ({"method": "svi", "covariance_type": "tied"}, "svi"),
    ({"method": "svi", "n_components": 1}, "svi"),
    ({"dtype": torch.float16}, "dtype"),
])
def test_hyper_parameter_errors_name_the_argument(kwargs, match):
    X, _ = make_blobs(100, 2, 3, random_state=0)
    with pytest.raises(ValueError, match=match):
        DirichletProcessMixture(**{"n_components": 5, **kwargs}).fit(X)


def test_float16_refused_up_front():
    """dtype=torch.float16 is refused before any computation, with the supported dtypes named."""
    with pytest.raises(ValueError, match="float32.*float64"):
        DirichletProcessMixture(5, dtype=torch.float16).fit(np.zeros((10, 2)))


def test_checkpoint_files(monkeypatch, tmp_path):
    """An svi checkpoint (with Adam's state) survives an interrupted overwrite, and a corrupted copy gives an
    error naming the file (the file machinery is the base class's, tested in depth in test_reliability.py)."""
    from pyro_expfam import util

    X, _ = make_blobs(200, 2, 3, random_state=0, dtype=torch.float64)
    est = _fit(DirichletProcessMixture(4, method="svi", max_iter=1, random_state=0), X)
    path = tmp_path / "dpmm.pt"
    est.save(path)
    good = path.read_bytes()

    def interrupted_writer(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        f.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(util, "_writer", interrupted_writer)
    with pytest.raises(KeyboardInterrupt):
        est.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["dpmm.pt"]
    loaded = DirichletProcessMixture.load(path)
    assert torch.equal(loaded.natural_params_, est.natural_params_)
    assert set(loaded._svi_state) == {"params", "optim"}
    raw = bytearray(good)
    for i in range(0, len(raw), 7):
        raw[i] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"flipped\.pt"):
        DirichletProcessMixture.load(tmp_path / "flipped.pt")
