# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The overlapping mixture as an estimator (issues 8 and 10): numpy in -> numpy out, pyro.optim optimisers and
schedulers, a private param store, fits that commit only when they finish, bit-identical resume through
save/load, crash-safe files, float32 data far from the origin.
"""

from __future__ import annotations

import pickle

import numpy as np
import pyro
import pyro.optim
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from sklearn.base import clone

import pyro_expfam.util as util
from pyro_expfam.datasets.overlapping import make_overlapping_bars, make_overlapping_gaussians
from pyro_expfam.mixture import GaussianMixture
from pyro_expfam.models.overlapping import NormalClusters, OverlappingMixture
from pyro_expfam.models.overlapping import fit as fit_module
from pyro_expfam.util import NotFittedError


@pytest.fixture(scope="module")
def bars():
    return make_overlapping_bars(num_points=120, num_clusters=3, side=4, seed=0)


def _equal_params(a, b) -> bool:
    pa, pb = a.model_.params_, b.model_.params_
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def test_numpy_in_numpy_out_torch_in_torch_out(bars):
    X = bars.X.double().numpy()
    est = OverlappingMixture("bernoulli", 3, max_iter=10, tol=0, random_state=0).fit(X)
    z, p, ll = est.predict(X), est.predict_proba(X), est.score_samples(X)
    assert isinstance(z, np.ndarray) and z.dtype == np.int64 and z.shape == (120, 3)
    assert set(np.unique(z)) <= {0, 1}
    assert isinstance(p, np.ndarray) and p.dtype == np.float64 and isinstance(ll, np.ndarray)
    assert isinstance(est.score(X), float) and isinstance(est.membership_prior_, np.ndarray)
    xs, zs = est.sample(5)
    assert isinstance(xs, np.ndarray) and xs.shape == (5, 16) and zs.dtype == np.int64
    assert np.array_equal(est.fit_predict(X), z)
    t = OverlappingMixture("bernoulli", 3, max_iter=10, tol=0, random_state=0).fit(torch.as_tensor(X))
    assert isinstance(t.predict(X), torch.Tensor) and t.predict(X).dtype == torch.int64
    assert torch.equal(t.predict(X), torch.as_tensor(z))  # same fit either way
    # lists work too (scikit-learn's validation)
    assert est.predict(X[:2].tolist()).shape == (2, 3)


def test_pyro_optim_optimisers_and_schedulers(bars):
    X = bars.X
    # the optimiser's steps from the family's random start (the default MAP-EM start is already an optimum)
    # a scheduler is stepped once per epoch: 4 minibatches of 30 points per epoch, 8 steps -> lr 0.05 * 0.5^2
    sched = pyro.optim.ExponentialLR({"optimizer": torch.optim.Adam, "optim_args": {"lr": 0.05}, "gamma": 0.5})
    est = OverlappingMixture(
        "bernoulli", 3, init_params="auto", max_iter=8, tol=0, batch_size=30, optimizer=sched, random_state=0
    )
    est.fit(X)
    groups = [s["optimizer"]["param_groups"][0]["lr"] for s in est._resume_state["run"]["optim"].values()]
    assert groups and all(lr == pytest.approx(0.05 * 0.5**2) for lr in groups)
    assert sched.optim_objs == {}  # the user's optimiser object is not used (a fresh copy is), nor changed
    plateau = pyro.optim.ReduceLROnPlateau({"optimizer": torch.optim.SGD, "optim_args": {"lr": 0.01}})
    OverlappingMixture("bernoulli", 3, init_params="auto", max_iter=3, tol=0, optimizer=plateau, random_state=0).fit(X)
    clipped = OverlappingMixture(
        "bernoulli",
        3,
        init_params="auto",
        max_iter=30,
        tol=0,
        random_state=0,
        optimizer=pyro.optim.ClippedAdam({"lr": 0.05, "clip_norm": 10.0}),
    ).fit(X)
    assert clipped.lower_bounds_[-1] > clipped.lower_bounds_[0]
    # a larger learning rate moves further in the first step than a smaller one
    slow = OverlappingMixture(
        "bernoulli", 3, init_params="auto", max_iter=1, tol=0, random_state=0, optimizer=pyro.optim.Adam({"lr": 1e-4})
    ).fit(X)
    fast = OverlappingMixture(
        "bernoulli", 3, init_params="auto", max_iter=1, tol=0, random_state=0, optimizer=pyro.optim.Adam({"lr": 1e-1})
    ).fit(X)
    start = OverlappingMixture("bernoulli", 3, init_params="auto", max_iter=0, random_state=0).fit(X)
    key = "cluster_logits.loc"
    moved = [(e.model_.params_[key] - start.model_.params_[key]).abs().max() for e in (slow, fast)]
    assert moved[0] == pytest.approx(1e-4, rel=0.01) and moved[1] == pytest.approx(0.1, rel=0.01)


def test_private_param_store_and_hand_written_svi(bars):
    X = bars.X
    store = pyro.get_param_store()
    store.clear()
    mine = pyro.param("users_own_param", torch.tensor(1.5))
    a = OverlappingMixture("bernoulli", 3, max_iter=5, tol=0, random_state=0).fit(X)
    b = OverlappingMixture("bernoulli", 3, max_iter=5, tol=0, random_state=0, guide="mean_field").fit(X)
    assert list(store.keys()) == ["users_own_param"] and pyro.param("users_own_param") is not None
    assert torch.equal(pyro.param("users_own_param").detach(), mine.detach())
    assert _equal_params(a, OverlappingMixture("bernoulli", 3, max_iter=5, tol=0, random_state=0).fit(X))
    assert "cluster_logits.log_scale" in b.model_.params_
    # model_ is the plain Pyro model/guide pair: a hand-written SVI loop continues from the fitted values
    model = a.model_
    svi = SVI(model.marginal_model, model.guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    before = {k: v.clone() for k, v in model.params_.items()}
    svi.step(X)
    model.sync_params_from_store()
    assert any(not torch.equal(before[k], model.params_[k]) for k in before)
    store.clear()


class _Interrupt:
    """Raise KeyboardInterrupt at the n-th SVI step."""

    def __init__(self, monkeypatch, at: int):
        self.calls, self.at = 0, at
        original = fit_module._SVIRun.step

        def step(run):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return original(run)

        monkeypatch.setattr(fit_module._SVIRun, "step", step)


def test_interrupted_fit_keeps_the_previous_fit(bars, monkeypatch):
    X = bars.X
    pyro.get_param_store().clear()
    est = OverlappingMixture("bernoulli", 3, max_iter=20, tol=0, random_state=0).fit(X)
    params = {k: v.clone() for k, v in est.model_.params_.items()}
    bound, n_iter, z = est.lower_bound_, est.n_iter_, est.predict(X)
    _Interrupt(monkeypatch, at=3)
    with pytest.raises(KeyboardInterrupt):
        est.set_params(random_state=1).fit(X)
    assert all(torch.equal(params[k], est.model_.params_[k]) for k in params)
    assert (est.lower_bound_, est.n_iter_) == (bound, n_iter) and torch.equal(est.predict(X), z)
    assert len(pyro.get_param_store()) == 0
    # an interrupted warm start leaves the fitted model untouched too
    _Interrupt(monkeypatch, at=2)
    with pytest.raises(KeyboardInterrupt):
        est.set_params(warm_start=True).fit(X)
    assert all(torch.equal(params[k], est.model_.params_[k]) for k in params)
    # interrupted before any fit: still unfitted
    fresh = OverlappingMixture("bernoulli", 3, max_iter=20, tol=0, random_state=0)
    _Interrupt(monkeypatch, at=3)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    assert len(pyro.get_param_store()) == 0


RESUME_CASES = [
    dict(guide="mean_field"),
    dict(guide="map", batch_size=50),
    dict(
        guide="mean_field",
        batch_size=50,
        num_particles=2,
        optimizer=pyro.optim.ExponentialLR({"optimizer": torch.optim.Adam, "optim_args": {"lr": 0.05}, "gamma": 0.9}),
    ),
    dict(prior="ibp", grow=False, guide="mean_field", objective="enum"),
]


@pytest.mark.parametrize("kwargs", RESUME_CASES, ids=["mean_field", "minibatch", "scheduler", "ibp_enum"])
def test_resume_is_bit_identical(bars, tmp_path, kwargs):
    X = bars.X.double()
    # the SVI state is what is resumed: the family's start (the MAP-EM start's iterations are capped by max_iter)
    kwargs = dict(kwargs, init_params="auto")
    straight = OverlappingMixture("bernoulli", 3, max_iter=6, tol=0, random_state=3, **kwargs).fit(X)
    first = OverlappingMixture("bernoulli", 3, max_iter=3, tol=0, random_state=3, **kwargs).fit(X)
    first.save(tmp_path / "half.pt")
    loaded = OverlappingMixture.load(tmp_path / "half.pt")
    loaded.set_params(warm_start=True).fit(X)
    first.set_params(warm_start=True).fit(X)  # the same in memory
    for resumed in (loaded, first):
        assert _equal_params(straight, resumed)
        assert resumed.lower_bounds_ == straight.lower_bounds_[3:]
    assert loaded.n_iter_ == 3


def test_files_are_written_atomically_and_read_safely(bars, tmp_path, monkeypatch):
    X = bars.X
    est = OverlappingMixture("bernoulli", 3, max_iter=5, tol=0, random_state=0).fit(X)
    path = tmp_path / "model.pt"
    est.save(path)
    good = path.read_bytes()

    def broken(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(util, "_writer", broken)
    with pytest.raises(KeyboardInterrupt):
        est.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]
    assert torch.equal(OverlappingMixture.load(path).predict(X), est.predict(X))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        OverlappingMixture.load(bad)
    flipped = bytearray(good)
    for i in range(100, len(flipped), 97):
        flipped[i] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="bad.pt"):
        OverlappingMixture.load(bad)
    torch.save([1, 2], bad)
    with pytest.raises(ValueError, match="list"):
        OverlappingMixture.load(bad)
    GaussianMixture(2, max_iter=5, random_state=0).fit(np.random.default_rng(0).normal(size=(30, 2))).save(bad)
    with pytest.raises(TypeError, match="GaussianMixture"):
        OverlappingMixture.load(bad)


def test_objects_as_hyper_parameters_are_copied_and_saved_as_plain_data(bars, tmp_path):
    data = make_overlapping_gaussians(100, 2, dim=2, seed=0, dtype=torch.float64)
    family = NormalClusters(kappa0=0.1)
    opt = pyro.optim.ClippedAdam({"lr": 0.05, "clip_norm": 5.0})
    est = OverlappingMixture(family, 2, max_iter=5, tol=0, random_state=0, optimizer=opt).fit(data.X)
    assert not family.is_setup  # the hyper-parameter object is never set up or modified
    twin = clone(est)
    assert twin.family is not family and twin.get_params()["n_components"] == 2
    est.save(tmp_path / "g.pt")
    loaded = OverlappingMixture.load(tmp_path / "g.pt")
    assert loaded.family["class"] == "NormalClusters" and loaded.family["config"]["kappa0"] == 0.1
    assert loaded.optimizer["optim_args"] == {"lr": 0.05, "clip_norm": 5.0}
    assert torch.allclose(loaded.score_samples(data.X), est.score_samples(data.X))
    loaded.set_params(warm_start=True, max_iter=2).fit(data.X)  # the plain descriptions are valid hyper-parameters
    assert pickle.loads(pickle.dumps(est)).score(data.X) == est.score(data.X)


def test_float32_far_from_the_origin():
    data = make_overlapping_gaussians(200, 2, dim=2, seed=0, dtype=torch.float64)
    kw = dict(max_iter=40, tol=0, random_state=0)
    ref = OverlappingMixture("normal", 2, **kw).fit(data.X)
    for offset in (1e4, 1e8):  # float64 is fine anywhere: the data are centred internally
        est = OverlappingMixture("normal", 2, **kw).fit(data.X + offset)
        assert torch.allclose(est.score_samples(data.X + offset), ref.score_samples(data.X), atol=1e-6)
        assert torch.allclose(est.cluster_distributions().loc, ref.cluster_distributions().loc + offset)
    # float32 at 1e4 (about 1e-3 resolution against a spread of ~10): fit and new data are centred the same way
    x32 = (data.X + 1e4).float()
    est = OverlappingMixture("normal", 2, **kw).fit(x32)
    new = (data.X[:50] + 1e4).float()
    assert float((est.predict(new) == ref.predict(data.X[:50])).double().mean()) >= 0.95
    assert est.score(new) == pytest.approx(ref.score(data.X[:50]), abs=0.05)
    assert est.offset_.dtype == torch.float32 and float(est.offset_.mean()) == pytest.approx(1e4, rel=1e-3)
    # float32 at 1e8: values are 8 apart there, the data are rounding noise: a clear error suggesting float64
    with pytest.raises(ValueError, match="float64"):
        OverlappingMixture("normal", 2, **kw).fit((data.X + 1e8).float())


def test_model_selection_with_scikit_learn(bars):
    # GridSearchCV scores held-out folds with score(): 3 planted bars beat a single cluster
    from sklearn.model_selection import GridSearchCV

    X = bars.X.double().numpy()
    # the family's random start keeps the 7 fits quick (the default MAP-EM start with structure selection: 173 s)
    est = OverlappingMixture("bernoulli", init_params="auto", max_iter=60, random_state=0)
    search = GridSearchCV(est, {"n_components": [np.int64(1), np.int64(3)]}, cv=3).fit(X)
    assert search.best_params_["n_components"] == 3
    assert isinstance(search.best_estimator_.predict(X), np.ndarray)


def test_init_params_checked_against_the_overlapping_registry():
    # the overlapping strategies ("default", "em", "auto", callables) are accepted and the base's list
    # ("kmeans", ...) is not; the check never changes the hyper-parameter it reads
    X = np.zeros((10, 3))
    est = OverlappingMixture("bernoulli", 2, init_params="kmeans")
    with pytest.raises(ValueError, match="init_params must be one of \\['auto', 'default', 'em'\\]"):
        est.fit(X)
    assert est.init_params == "kmeans"
    OverlappingMixture("bernoulli", 2, init_params="auto", max_iter=2, tol=0)._check_base_parameters()
