# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The estimator API of the overlapping mixture: recovery of planted memberships, the IBP's number of
active clusters, random states, minibatches, early stopping, save/load/warm start, sampling, bad input,
old argument names, CUDA.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyro
import pytest
import torch

import pyro_expfam.distributions as expfam
from pyro_expfam.datasets.overlapping import make_overlapping_bars, make_overlapping_gaussians, sample_membership_sets
from pyro_expfam.models.overlapping import OverlappingMixture, match_clusters
from pyro_expfam.util import ConvergenceWarning, NotFittedError


@pytest.fixture(scope="module")
def bars():
    return make_overlapping_bars(num_points=500, num_clusters=4, side=6, seed=0)


@pytest.fixture(scope="module")
def fitted(bars):
    # the bars are drawn from the fixed-background model, which is fitted here: with the default learned background
    # the membership accuracy is 0.946 (Bayes oracle 0.982), with the fixed one 0.964
    return OverlappingMixture("bernoulli", 4, background="fixed", random_state=1, max_iter=400).fit(bars.X)


def test_recovers_planted_bars(bars, fitted):
    # N=500 images of 6x6 pixels, 4 bars, each image in 1 or 2 clusters
    perm, accuracy = match_clusters(bars.Z, fitted.predict(bars.X))
    assert accuracy >= 0.95
    # the learned clusters are the bars: P(on) > 0.5 exactly on the bar's pixels
    learned = fitted.cluster_distributions().probs > 0.5
    truth = bars.params["logits"] > 0
    assert torch.equal(learned[perm], truth)
    # membership probabilities are calibrated enough to rank: the posterior mean of a true member is higher
    probs = fitted.predict_proba(bars.X)[:, perm]
    assert float(probs[bars.Z == 1].mean()) > 0.9 and float(probs[bars.Z == 0].mean()) < 0.1


def test_ibp_finds_the_number_of_clusters(bars):
    # truncation 8, four planted bars: grown cluster by cluster with a mean-field guide, the fifth is pruned
    # the growth path with the fixed background the bars are drawn from (init_params="auto"; the default MAP-EM
    # start chooses the number of clusters by held-out likelihood instead: bench_overlapping_quality.py --estimator)
    m = OverlappingMixture(
        "bernoulli",
        8,
        prior="ibp",
        guide="mean_field",
        init_params="auto",
        background="fixed",
        random_state=0,
        max_iter=250,
    )
    m.fit(bars.X)
    assert m.n_grow_iter_ > 0
    usage = m.predict_proba(bars.X).sum(0)
    active = usage >= 0.05 * bars.X.shape[0]
    assert int(active.sum()) == 4
    assert match_clusters(bars.Z, m.predict(bars.X)[:, active])[1] >= 0.95
    pi = m.membership_prior_
    assert bool((pi[1:] <= pi[:-1] + 1e-6).all())  # stick-breaking: decreasing membership probabilities


def _params(est):
    return est.model_.params_


def _equal(a, b) -> bool:
    return all(torch.equal(_params(a)[k], _params(b)[k]) for k in _params(a))


def test_random_state_reproducible(bars):
    X = bars.X[:100]
    kw = dict(guide="mean_field", max_iter=30, tol=0, batch_size=40)
    a = OverlappingMixture("bernoulli", 3, random_state=5, **kw).fit(X)
    b = OverlappingMixture("bernoulli", 3, random_state=np.int64(5), **kw).fit(X)
    c = OverlappingMixture("bernoulli", 3, random_state=torch.Generator().manual_seed(5), **kw).fit(X)
    for key in _params(a):
        assert torch.equal(_params(a)[key], _params(b)[key])
        assert torch.equal(_params(a)[key], _params(c)[key])
    assert a.lower_bounds_ == b.lower_bounds_ and len(a.lower_bounds_) == 30
    # the global RNG is left alone (the guide is sampled inside a forked generator), also with a mean-field guide
    for guide in ("map", "mean_field"):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        OverlappingMixture("bernoulli", 2, guide=guide, random_state=0, max_iter=3, tol=0).fit(X)
        assert torch.equal(torch.rand(3), expected)
    # random_state=None draws its seed from the global RNG: fresh fits differ, set_rng_seed reproduces them
    none = [OverlappingMixture("bernoulli", 3, max_iter=3, tol=0).fit(X) for _ in range(2)]
    assert not _equal(none[0], none[1])
    runs = []
    for _ in range(2):
        pyro.set_rng_seed(7)
        runs.append(OverlappingMixture("bernoulli", 3, max_iter=3, tol=0).fit(X))
    assert _equal(runs[0], runs[1])


def test_restarts_start_from_their_own_initialisation(bars):
    # every restart gets the same initial values here: each must then retrace the same steps exactly, so the kept
    # run equals a single run (a restart that continued from the previous restart's parameters would differ)
    X = bars.X[:100]
    first = {}

    def same_init(model, X, generator):
        params = first.setdefault("params", model.init_params(X, generator))
        return {k: v.clone() for k, v in params.items()}

    kw = dict(init_params=same_init, max_iter=15, tol=0, random_state=0)
    one = OverlappingMixture("bernoulli", 3, n_init=1, **kw).fit(X)
    three = OverlappingMixture("bernoulli", 3, n_init=3, **kw).fit(X)
    assert three.lower_bounds_ == one.lower_bounds_
    for key in _params(one):
        assert torch.equal(_params(one)[key], _params(three)[key])


def test_minibatches_and_enum_objective(bars):
    X = bars.X[:200]
    m = OverlappingMixture("bernoulli", 4, random_state=0, max_iter=20, batch_size=50, tol=0, verbose=True).fit(X)
    assert len(m.lower_bounds_) == 20 and all(math.isfinite(v) for v in m.lower_bounds_)
    # the loss of a minibatch is rescaled to the full data: same order of magnitude as the full-batch loss
    full = OverlappingMixture("bernoulli", 4, random_state=0, max_iter=1, tol=0).fit(X)
    assert 0.5 < m.lower_bounds_[0] / full.lower_bounds_[0] < 2
    # the enumerated objective (TraceEnum_ELBO on the model) gives the same first loss as the marginal one
    enum = OverlappingMixture("bernoulli", 4, random_state=0, max_iter=1, tol=0, objective="enum").fit(X)
    assert enum.lower_bounds_[0] == pytest.approx(full.lower_bounds_[0], rel=1e-5)


def test_early_stopping_and_convergence_warning(bars):
    X = bars.X[:200]
    with pytest.warns(ConvergenceWarning):
        OverlappingMixture("bernoulli", 3, random_state=0, max_iter=5).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = OverlappingMixture("bernoulli", 3, random_state=0, max_iter=2000, tol=1e-4, patience=10).fit(X)
    assert m.converged_ and m.n_iter_ < 2000 and len(m.lower_bounds_) == m.n_iter_


def test_save_load_warm_start(tmp_path, bars, fitted):
    X = bars.X
    path = tmp_path / "iomm.pt"
    fitted.save(path)
    loaded = OverlappingMixture.load(path)
    assert loaded.model_.name != fitted.model_.name
    assert torch.equal(loaded.predict(X), fitted.predict(X))
    assert torch.allclose(loaded.score_samples(X), fitted.score_samples(X))
    assert loaded.lower_bounds_ == fitted.lower_bounds_
    # warm start: continues from the saved parameters and optimiser state
    before = loaded.lower_bound_
    loaded.set_params(warm_start=True, max_iter=20, tol=0).fit(X)
    assert len(loaded.lower_bounds_) == 20 and loaded.n_iter_ == 20
    assert loaded.lower_bound_ >= before - 1.0 / X.shape[0]
    # a generic family (carrier-shift machinery) given as an object round-trips as a plain description
    data = torch.distributions.Exponential(torch.tensor([1.0, 3.0])).sample((60,))
    gen = OverlappingMixture(expfam.Exponential(torch.ones(2)), 2, random_state=0, max_iter=10, tol=0).fit(data)
    gen.save(tmp_path / "gen.pt")
    again = OverlappingMixture.load(tmp_path / "gen.pt")
    assert isinstance(again.family, dict) and again.family["class"] == "ExpFamClusters"
    assert torch.allclose(again.score_samples(data), gen.score_samples(data))


def test_fitted_quantities(bars, fitted):
    X = bars.X[:50]
    probs = fitted.predict_proba(X)
    assert probs.shape == (50, 4) and bool(((probs >= 0) & (probs <= 1)).all())
    assert torch.equal(fitted.membership_probs(X), probs)
    ll = fitted.score_samples(X)
    assert ll.shape == (50,) and bool((ll < 0).all())
    assert torch.equal(fitted.log_likelihood(X), ll)
    assert fitted.score(X) == pytest.approx(float(ll.mean()))
    z = fitted.predict(X)
    assert z.dtype == torch.int64 and torch.equal(fitted.map_sets(X), z)
    assert torch.equal(fitted.infer_memberships(X), z)  # Pyro's infer_discrete MAP = the enumerated argmax
    d = fitted.cluster_distributions()
    assert isinstance(d, expfam.Bernoulli) and d.batch_shape == (4, 36)
    assert isinstance(fitted.background_distribution(), expfam.Bernoulli)
    both = fitted.set_distribution(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert torch.allclose(both.logits, d.logits[0] + d.logits[1])
    x, z = fitted.sample(1000)
    x2, z2 = fitted.sample(1000)  # an int random_state gives the same draws every call, as in scikit-learn
    assert torch.equal(x, x2) and torch.equal(z, z2)
    assert x.shape == (1000, 36) and z.shape == (1000, 4) and z.dtype == torch.int64
    # membership frequencies follow pi: standard error sqrt(0.25 / 1000) = 0.016 per cluster
    assert torch.allclose(z.double().mean(0), fitted.membership_prior_.double(), atol=0.06)
    # BIC/AIC: K pi's and K x D logits; -2 N score + p log N
    n = X.shape[0]
    assert fitted.bic(X) == pytest.approx(-2 * n * fitted.score(X) + (4 + 4 * 36) * math.log(n))
    assert fitted.aic(X) == pytest.approx(-2 * n * fitted.score(X) + 2 * (4 + 4 * 36))


def test_gaussian_models_fit_and_follow_dtype():
    data = make_overlapping_gaussians(200, 3, dim=2, seed=1, dtype=torch.float64)
    for family in ("normal", "normal_full"):
        m = OverlappingMixture(family, 3, random_state=0, max_iter=60, tol=0, n_init=2).fit(data.X)
        assert _params(m)["cluster_loc.loc"].dtype == torch.float64
        assert m.predict_proba(data.X).dtype == torch.float64
        assert m.lower_bounds_[-1] > m.lower_bounds_[0]
    d = m.cluster_distributions()
    assert isinstance(d, expfam.MultivariateNormal) and d.batch_shape == (3,)
    # float32 data: the model follows
    m32 = OverlappingMixture("normal", 2, random_state=0, max_iter=5, tol=0).fit(data.X.float())
    assert m32.score_samples(data.X.float()).dtype == torch.float32


def test_categorical_and_large_k_approximate_mode():
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(4, (80, 5), generator=g)
    m = OverlappingMixture("categorical", 3, random_state=0, max_iter=20, tol=0).fit(codes)
    assert m.predict(codes).shape == (80, 3)
    # the number of categories learned from the data is kept: a code outside it is refused, also after save/load
    with pytest.raises(ValueError, match="support"):
        m.predict(torch.full((2, 5), 7))
    # K = 32 clusters, sets of size <= 2: 1 + 32 + 496 enumerated sets
    X = torch.bernoulli(torch.full((60, 8), 0.3), generator=g)
    # (structure="overlapping": on this structureless noise "auto" would choose one cluster per point)
    big = OverlappingMixture(
        "bernoulli", 32, max_set_size=2, structure="overlapping", random_state=0, max_iter=5, tol=0
    ).fit(X)
    assert big.model_.num_membership_sets == 529
    assert int(big.predict(X).sum(-1).max()) <= 2


def test_bad_input(bars):
    m = OverlappingMixture("bernoulli", 3)
    with pytest.raises(NotFittedError):
        m.predict_proba(bars.X)
    bad = bars.X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m.fit(bad)
    with pytest.raises(ValueError, match="2D"):
        m.fit(bars.X[0])
    with pytest.raises(ValueError, match="binary"):
        m.fit(bars.X * 2)
    with pytest.raises(ValueError, match="support"):
        OverlappingMixture("categorical", 2).fit(torch.tensor([[0.0, -1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="support"):
        OverlappingMixture(expfam.Exponential(torch.ones(2)), 2).fit(torch.tensor([[1.0, -1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="too large for exact enumeration"):
        OverlappingMixture("bernoulli", 20).fit(bars.X)
    with pytest.raises(ValueError, match="max_iter"):
        OverlappingMixture(max_iter=-1).fit(bars.X)
    with pytest.raises(ValueError, match="batch_size"):
        OverlappingMixture(batch_size=0).fit(bars.X)
    with pytest.raises(ValueError, match="optimizer"):
        OverlappingMixture(optimizer=torch.optim.Adam).fit(bars.X)
    with pytest.raises(ValueError, match="init_params"):
        OverlappingMixture(init_params="nonsense").fit(bars.X)
    fitted_small = OverlappingMixture("bernoulli", 2, random_state=0, max_iter=2, tol=0).fit(bars.X[:20])
    with pytest.raises(ValueError, match="expecting 36 features"):
        fitted_small.predict_proba(bars.X[:, :10])


@pytest.mark.parametrize(
    "old, new",
    [("num_clusters", "n_components"), ("seed", "random_state"), ("progress", "verbose"), ("resume", "warm_start")],
)
def test_old_argument_names_name_the_new_ones(bars, old, new):
    with pytest.raises(TypeError, match=new):
        OverlappingMixture("bernoulli", **{old: 1})
    with pytest.raises(TypeError, match=new):
        OverlappingMixture("bernoulli", 2).fit(bars.X, **{old: 1})


def test_old_fit_arguments_are_hyper_parameters(bars):
    with pytest.raises(TypeError, match="max_iter"):
        OverlappingMixture("bernoulli", 2).fit(bars.X, num_steps=10)
    with pytest.raises(TypeError, match="random_state"):
        OverlappingMixture("bernoulli", 2).fit(bars.X, generator=torch.Generator())
    with pytest.raises(TypeError, match="optimizer"):
        OverlappingMixture("bernoulli", 2).fit(bars.X, lr=0.1)
    with pytest.raises(TypeError, match=r"OverlappingMixture\(\.\.\., n_init=\.\.\.\)"):
        OverlappingMixture("bernoulli", 2).fit(bars.X, n_init=2)


def test_planted_generators():
    z = sample_membership_sets(1000, 5, (0.0, 0.5, 0.5), torch.Generator().manual_seed(0))
    sizes = z.sum(-1)
    assert set(sizes.unique().tolist()) == {1.0, 2.0}
    # each size with probability 1/2: standard error 0.016
    assert abs(float((sizes == 1).double().mean()) - 0.5) < 0.06
    d = make_overlapping_bars(100, 4, side=6, seed=3)
    assert d.X.shape == (100, 36) and d.Z.shape == (100, 4)
    assert torch.equal(d.X, make_overlapping_bars(100, 4, side=6, seed=3).X)
    assert int((d.params["logits"] > 0).sum()) == 4 * 6
    g = make_overlapping_gaussians(100, 4, dim=3, covariance="full", seed=0)
    assert g.params["precision"].shape == (4, 3, 3)
    with pytest.raises(ValueError, match="num_clusters"):
        make_overlapping_bars(10, 20, side=6)
    with pytest.raises(ValueError, match="set_size_probs"):
        make_overlapping_gaussians(10, 2, set_size_probs=(0.5, 0.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda(bars):
    X = bars.X.cuda()
    m = OverlappingMixture("bernoulli", 4, random_state=1, max_iter=300).fit(X)
    assert _params(m)["cluster_logits.loc"].is_cuda
    z = m.predict(X)
    assert z.is_cuda and match_clusters(bars.Z, z.cpu())[1] >= 0.95
    x, _ = m.sample(10)
    assert x.is_cuda
    g = make_overlapping_gaussians(100, 3, dim=2, seed=0)
    mf = OverlappingMixture("normal_full", 3, guide="mean_field", random_state=0, max_iter=10, tol=0).fit(g.X.cuda())
    assert mf.score_samples(g.X.cuda()).is_cuda
    # the global CUDA generator is left alone too
    torch.cuda.manual_seed(7)
    expected = torch.rand(3, device="cuda")
    torch.cuda.manual_seed(7)
    OverlappingMixture("bernoulli", 2, guide="mean_field", random_state=0, max_iter=3, tol=0).fit(X)
    assert torch.equal(torch.rand(3, device="cuda"), expected)
