# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The fitting API of the overlapping mixture: recovery of planted memberships, the IBP's number of
active clusters, seeds, minibatches, early stopping, save/load/resume, sampling, bad input, CUDA.
"""

from __future__ import annotations

import math
import warnings

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
    return OverlappingMixture("bernoulli", 4).fit(bars.X, seed=1, num_steps=400)


def test_recovers_planted_bars(bars, fitted):
    # N=500 images of 6x6 pixels, 4 bars, each image in 1 or 2 clusters
    perm, accuracy = match_clusters(bars.Z, fitted.map_sets(bars.X))
    assert accuracy >= 0.95
    # the learned clusters are the bars: P(on) > 0.5 exactly on the bar's pixels
    learned = fitted.cluster_distributions().probs > 0.5
    truth = bars.params["logits"] > 0
    assert torch.equal(learned[perm], truth)
    # membership probabilities are calibrated enough to rank: the posterior mean of a true member is higher
    probs = fitted.membership_probs(bars.X)[:, perm]
    assert float(probs[bars.Z == 1].mean()) > 0.9 and float(probs[bars.Z == 0].mean()) < 0.1


def test_ibp_finds_the_number_of_clusters(bars):
    # truncation 8, four planted bars: grown cluster by cluster with a mean-field guide, the fifth is pruned
    m = OverlappingMixture("bernoulli", 8, prior="ibp", guide="mean_field")
    m.fit(bars.X, seed=0, num_steps=250)
    usage = m.membership_probs(bars.X).sum(0)
    active = usage >= 0.05 * bars.X.shape[0]
    assert int(active.sum()) == 4
    assert match_clusters(bars.Z, m.map_sets(bars.X)[:, active])[1] >= 0.95
    pi = m.membership_prior_
    assert bool((pi[1:] <= pi[:-1] + 1e-6).all())  # stick-breaking: decreasing membership probabilities


def test_seed_and_generator_reproducible(bars):
    X = bars.X[:100]
    a = OverlappingMixture("bernoulli", 3, guide="mean_field").fit(X, seed=5, num_steps=30, tol=None, batch_size=40)
    b = OverlappingMixture("bernoulli", 3, guide="mean_field").fit(X, seed=5, num_steps=30, tol=None, batch_size=40)
    g = torch.Generator().manual_seed(5)
    c = OverlappingMixture("bernoulli", 3, guide="mean_field").fit(
        X, generator=g, num_steps=30, tol=None, batch_size=40
    )
    for key in a.params_:
        assert torch.equal(a.params_[key], b.params_[key])
        assert torch.equal(a.params_[key], c.params_[key])
    assert a.loss_history_ == b.loss_history_
    # the global RNG is left alone
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    OverlappingMixture("bernoulli", 2).fit(X, seed=0, num_steps=3, tol=None)
    assert torch.equal(torch.rand(3), expected)


def test_minibatches_and_enum_objective(bars):
    X = bars.X[:200]
    m = OverlappingMixture("bernoulli", 4).fit(X, seed=0, num_steps=20, batch_size=50, tol=None, progress=True)
    assert len(m.loss_history_) == 20 and all(math.isfinite(v) for v in m.loss_history_)
    # the loss of a minibatch is rescaled to the full data: same order of magnitude as the full-batch loss
    full = OverlappingMixture("bernoulli", 4).fit(X, seed=0, num_steps=1, tol=None)
    assert 0.5 < m.loss_history_[0] / full.loss_history_[0] < 2
    # the enumerated objective (TraceEnum_ELBO on the model) gives the same first loss as the marginal one
    enum = OverlappingMixture("bernoulli", 4).fit(X, seed=0, num_steps=1, tol=None, objective="enum")
    assert enum.loss_history_[0] == pytest.approx(full.loss_history_[0], rel=1e-5)


def test_early_stopping_and_convergence_warning(bars):
    X = bars.X[:200]
    with pytest.warns(ConvergenceWarning):
        OverlappingMixture("bernoulli", 3).fit(X, seed=0, num_steps=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = OverlappingMixture("bernoulli", 3).fit(X, seed=0, num_steps=2000, tol=1e-4, patience=10)
    assert m.converged_ and m.n_steps_ < 2000 and len(m.loss_history_) == m.n_steps_


def test_save_load_resume(tmp_path, bars, fitted):
    X = bars.X
    path = tmp_path / "iomm.pt"
    fitted.save(path)
    loaded = OverlappingMixture.load(path)
    assert loaded.name != fitted.name
    assert torch.equal(loaded.map_sets(X), fitted.map_sets(X))
    assert torch.allclose(loaded.log_likelihood(X), fitted.log_likelihood(X))
    assert loaded.loss_history_ == fitted.loss_history_
    # resume: continues from the saved parameters and optimiser state, appending to the history
    before = loaded.loss_history_[-1]
    loaded.fit(X, resume=True, num_steps=20, tol=None)
    assert len(loaded.loss_history_) == len(fitted.loss_history_) + 20
    assert loaded.n_steps_ == fitted.n_steps_ + 20
    assert loaded.loss_history_[-1] <= before + 1.0
    # a generic family (carrier-shift machinery) round-trips too
    data = torch.distributions.Exponential(torch.tensor([1.0, 3.0])).sample((60,))
    gen = OverlappingMixture(expfam.Exponential(torch.ones(2)), 2).fit(data, seed=0, num_steps=10, tol=None)
    gen.save(tmp_path / "gen.pt")
    again = OverlappingMixture.load(tmp_path / "gen.pt")
    assert torch.allclose(again.log_likelihood(data), gen.log_likelihood(data))


def test_fitted_quantities(bars, fitted):
    X = bars.X[:50]
    probs = fitted.membership_probs(X)
    assert probs.shape == (50, 4) and bool(((probs >= 0) & (probs <= 1)).all())
    ll = fitted.log_likelihood(X)
    assert ll.shape == (50,) and bool((ll < 0).all())
    assert fitted.score(X) == pytest.approx(float(ll.mean()))
    d = fitted.cluster_distributions()
    assert isinstance(d, expfam.Bernoulli) and d.batch_shape == (4, 36)
    assert isinstance(fitted.background_distribution(), expfam.Bernoulli)
    both = fitted.set_distribution(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert torch.allclose(both.logits, d.logits[0] + d.logits[1])
    g = torch.Generator().manual_seed(0)
    x, z = fitted.sample(1000, generator=g)
    x2, z2 = fitted.sample(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(z, z2)
    assert x.shape == (1000, 36) and z.shape == (1000, 4)
    # membership frequencies follow pi: standard error sqrt(0.25 / 1000) = 0.016 per cluster
    assert torch.allclose(z.mean(0), fitted.membership_prior_, atol=0.06)


def test_gaussian_models_fit_and_follow_dtype():
    data = make_overlapping_gaussians(200, 3, dim=2, seed=1, dtype=torch.float64)
    for family in ("normal", "normal_full"):
        m = OverlappingMixture(family, 3).fit(data.X, seed=0, num_steps=60, tol=None, n_init=2)
        assert m.params_["cluster_loc.loc"].dtype == torch.float64
        assert m.membership_probs(data.X).dtype == torch.float64
        assert m.loss_history_[-1] < m.loss_history_[0]
    d = m.cluster_distributions()
    assert isinstance(d, expfam.MultivariateNormal) and d.batch_shape == (3,)
    # float32 data: the model follows
    m32 = OverlappingMixture("normal", 2).fit(data.X.float(), seed=0, num_steps=5, tol=None)
    assert m32.log_likelihood(data.X.float()).dtype == torch.float32


def test_categorical_and_large_k_approximate_mode():
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(4, (80, 5), generator=g)
    m = OverlappingMixture("categorical", 3).fit(codes, seed=0, num_steps=20, tol=None)
    assert m.map_sets(codes).shape == (80, 3)
    # K = 32 clusters, sets of size <= 2: 1 + 32 + 496 enumerated sets
    X = torch.bernoulli(torch.full((60, 8), 0.3), generator=g)
    big = OverlappingMixture("bernoulli", 32, max_set_size=2).fit(X, seed=0, num_steps=5, tol=None)
    assert big.num_membership_sets == 529
    assert int(big.map_sets(X).sum(-1).max()) <= 2


def test_bad_input(bars):
    m = OverlappingMixture("bernoulli", 3)
    with pytest.raises(NotFittedError):
        m.membership_probs(bars.X)
    bad = bars.X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m.fit(bad)
    with pytest.raises(ValueError, match="2-D"):
        m.fit(bars.X[0])
    with pytest.raises(ValueError, match="binary"):
        m.fit(bars.X * 2)
    with pytest.raises(ValueError, match="support"):
        OverlappingMixture("categorical", 2).fit(torch.tensor([[0.0, -1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="support"):
        OverlappingMixture(expfam.Exponential(torch.ones(2)), 2).fit(torch.tensor([[1.0, -1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="too large for exact enumeration"):
        OverlappingMixture("bernoulli", 20)
    with pytest.raises(ValueError, match="num_steps"):
        m.fit(bars.X, num_steps=-1)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(bars.X, batch_size=0)
    with pytest.raises(ValueError, match="seed or generator"):
        m.fit(bars.X, seed=0, generator=torch.Generator())
    with pytest.raises(NotFittedError):
        OverlappingMixture("bernoulli", 3).fit(bars.X, resume=True)
    fitted_small = OverlappingMixture("bernoulli", 2).fit(bars.X[:20], seed=0, num_steps=2, tol=None)
    with pytest.raises(ValueError, match="points of shape"):
        fitted_small.membership_probs(bars.X[:, :10])
    with pytest.raises(ValueError, match="not a saved"):
        OverlappingMixture.from_state_dict({"version": 99})


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
    m = OverlappingMixture("bernoulli", 4).fit(X, seed=1, num_steps=300)
    assert m.params_["cluster_logits.loc"].is_cuda
    z = m.map_sets(X)
    assert z.is_cuda and match_clusters(bars.Z, z.cpu())[1] >= 0.95
    x, _ = m.sample(10, generator=torch.Generator(device="cuda").manual_seed(0))
    assert x.is_cuda
    g = make_overlapping_gaussians(100, 3, dim=2, seed=0)
    mf = OverlappingMixture("normal_full", 3, guide="mean_field").fit(g.X.cuda(), seed=0, num_steps=10, tol=None)
    assert mf.log_likelihood(g.X.cuda()).is_cuda
