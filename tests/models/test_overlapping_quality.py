# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Fitting quality of the overlapping mixture: the EM objective is the model's MAP objective and increases; the
Bayes oracle is the exact posterior; recovery on data made by the model *and* by other processes (noisy-OR unions,
points in no cluster, non-overlapping blocks, Gaussian clusters), each judged against the oracle that knows the
true parameters.  Small N and few iterations keep each test to a few seconds; the full-size numbers are in
benchmarks/bench_overlapping_quality.py.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO

from pyro_expfam.datasets.overlapping import (
    make_bernoulli_blocks,
    make_gaussian_stripes,
    make_noisy_or,
    make_overlapping_gaussians,
    make_sparse_product,
)
from pyro_expfam.models.overlapping import (
    OverlappingMixture,
    OverlappingMixtureModel,
    match_clusters,
    membership_accuracy,
)
from pyro_expfam.models.overlapping.em import log_prior, m_step, map_em, set_summaries
from pyro_expfam.models.overlapping.init import params_from_memberships
from pyro_expfam.models.overlapping.oracle import bayes_oracle
from pyro_expfam.models.overlapping.select import fit_map, select_structure

F64 = torch.float64


def _empty_guide(*args, **kwargs):
    pass


def _values(m, params):
    return {s: params[f"{s}.loc"] for s in m.global_sites()}


@pytest.mark.parametrize("background", ["fixed", "learned"])
@pytest.mark.parametrize("family", ["bernoulli", "normal"])
def test_em_objective_is_the_map_objective_and_increases(family, background):
    g = torch.Generator().manual_seed(0)
    if family == "bernoulli":
        X = make_noisy_or(num_points=60, num_features=8, num_clusters=3, features_per_cluster=3, seed=0, dtype=F64).X
    else:
        X = make_overlapping_gaussians(num_points=60, num_clusters=3, dim=2, seed=0, dtype=F64).X
    m = OverlappingMixtureModel(family, 3, prior="ibp", background=background)
    res = map_em(m, X, max_iter=15, tol=0.0, generator=g)
    assert len(res.objective) == 15
    # generalised EM: the MAP objective never decreases (up to rounding)
    for a, b in itertools.pairwise(res.objective):
        assert b >= a - 1e-8 * abs(a)
    assert res.objective[-1] > res.objective[0]
    # the objective at the returned parameters is minus the MAP-guide loss of the Pyro model
    values = _values(m, res.params)
    loss = Trace_ELBO().loss(poutine.condition(m.marginal_model, data=values), _empty_guide, X)
    counts, sums, log_lik = set_summaries(m, values, m.family.layout.statistics(X), m.membership_sets)
    objective = float(log_lik.sum() + log_prior(m, values))
    assert objective == pytest.approx(-loss, rel=1e-10)
    assert float(counts.sum()) == pytest.approx(X.shape[0])


def test_m_step_increases_the_expected_complete_log_joint():
    X = make_noisy_or(
        num_points=50, num_features=6, num_clusters=2, features_per_cluster=3, set_size_probs=(0, 0.5, 0.5), seed=1
    ).X.double()
    m = OverlappingMixtureModel("bernoulli", 2, background="learned")
    m.setup(X)
    values = _values(m, m.init_params(X, torch.Generator().manual_seed(0)))
    sets = m.membership_sets
    counts, sums, _ = set_summaries(m, values, m.family.layout.statistics(X), sets)

    def q(vals):
        log_pi, log1m_pi = m.prior.log_probs(vals[m.prior.site])
        eta_k, eta0 = m.family.flat_clusters(vals), m.family.flat_background(vals)
        total = float(log_prior(m, vals))
        for s in range(sets.shape[0]):  # explicit sum over the sets, independent of the vectorised M-step
            z = sets[s]
            eta = eta0 + z @ eta_k
            log_p = float((z * log_pi + (1 - z) * log1m_pi).sum())
            total += float(sums[s] @ eta) - float(counts[s]) * float(torch.nn.functional.softplus(eta).sum())
            total += float(counts[s]) * log_p
        return total

    before = q(values)
    new = dict(values)
    m_step(m, new, counts, sums, sets, max_iter=20)
    assert q(new) > before + 1e-3


def test_oracle_is_the_exact_posterior():
    data = make_noisy_or(num_points=7, num_features=6, num_clusters=3, features_per_cluster=2, flip=0.1, seed=2)
    orc = bayes_oracle(data)
    masks, f = data.params["masks"].double(), data.params["flip"]
    size_probs = data.params["set_size_probs"]
    X = data.X.double()
    for n in range(X.shape[0]):
        joint = {}
        for z in itertools.product([0, 1], repeat=3):
            zt = torch.tensor(z, dtype=F64)
            size = int(zt.sum())
            prior = float(size_probs[size]) / math.comb(3, size) if size < size_probs.numel() else 0.0
            on = (zt @ masks).clamp(max=1)
            p1 = on * (1 - f) + (1 - on) * f
            like = float(torch.where(X[n] == 1, p1, 1 - p1).prod())
            joint[z] = prior * like
        total = sum(joint.values())
        assert float(orc.log_lik[n]) == pytest.approx(math.log(total), rel=1e-10)
        best = max(joint, key=joint.get)
        assert orc.map_sets[n].tolist() == list(map(float, best))
        probs = [sum(v for z, v in joint.items() if z[k]) / total for k in range(3)]
        assert orc.membership_probs[n].tolist() == pytest.approx(probs, rel=1e-9)


def _default_fit(X, k, family="bernoulli", seed=0, **kwargs):
    m = OverlappingMixtureModel(family, k, background="learned", **kwargs)
    res = fit_map(m, X, n_init=2, generator=torch.Generator().manual_seed(seed))
    m.params_ = res.params
    return m


@pytest.mark.parametrize("seed", [0, 1])
def test_noisy_or_unions_are_recovered_like_the_oracle(seed):
    # the data are OR-unions of 5 sparse feature sets with 5% flips: not the product model
    data = make_noisy_or(num_points=400, seed=seed, dtype=F64)
    oracle = bayes_oracle(data).accuracy
    m = _default_fit(data.X, 5, seed=seed)
    acc = membership_accuracy(data.Z, m.map_sets(data.X))
    # 400 x 5 entries: 2 points is 40 entries; the oracle itself is at 99.7-100%
    assert acc >= oracle - 0.02
    # the learned background is "off": a feature is on only where some cluster turns it on
    assert float(m.background_distribution().probs.median()) < 0.2


def test_estimator_defaults_recover_noisy_or_unions_like_the_oracle():
    # what a user gets from OverlappingMixture("bernoulli", 5).fit(X) with no tuning (learned background, MAP-EM
    # from NMF starts, structure by held-out likelihood).  300 x 5 entries: 2 points is 30 entries; the oracle is
    # at 100%.  The defaults before the learned background (init_params="auto", background="fixed", SVI from
    # random logits) reach 82% here, 18 points below.
    data = make_noisy_or(num_points=300, seed=0, dtype=F64)
    oracle = bayes_oracle(data).accuracy
    X = data.X.numpy()
    est = OverlappingMixture("bernoulli", 5, random_state=0).fit(X)
    assert est.structure_ == "overlapping"
    assert est.model_.family.learn_background
    assert membership_accuracy(data.Z, torch.as_tensor(est.predict(X))) >= oracle - 0.02


def test_estimator_old_defaults_stay_reachable():
    # background="fixed", init_params="auto", structure="overlapping": the model and initialisation of the
    # defaults before the learned background (no background site, no structure choice)
    X = make_noisy_or(num_points=60, num_features=8, num_clusters=3, features_per_cluster=3, seed=0, dtype=F64).X
    est = OverlappingMixture(
        "bernoulli", 3, background="fixed", init_params="auto", structure="overlapping", max_iter=5, random_state=0
    ).fit(X.numpy())
    assert not est.model_.family.learn_background
    assert not any(k.startswith("background") for k in est.model_.params_)
    assert est.structure_ == "overlapping"
    with pytest.raises(ValueError, match="background"):
        OverlappingMixture("bernoulli", 3, background="always").fit(X.numpy())
    with pytest.raises(ValueError, match="structure"):
        OverlappingMixture("bernoulli", 3, structure="single-ish").fit(X.numpy())


def test_product_model_data_recovered_like_the_oracle():
    # 1-3 of 5 clusters per point, 5% flips; the oracle is at 97.7% here (three-cluster unions are ambiguous).
    # Measured at N=600 over seeds 0-2: 1.4-2.2 points below the oracle; the 2-point target is for N=1000
    # (benchmarks/bench_overlapping_quality.py), this test allows 2.5 points at N=600.
    data = make_sparse_product(num_points=600, seed=1, dtype=F64)
    oracle = bayes_oracle(data).accuracy
    m = _default_fit(data.X, 5, seed=0)
    assert membership_accuracy(data.Z, m.map_sets(data.X)) >= oracle - 0.025


def test_points_in_no_cluster():
    # 21% of the points in no cluster, 3 traits: the empty set explains them (no always-on cluster)
    data = make_noisy_or(num_points=400, num_clusters=3, set_size_probs=(0.21, 0.4, 0.39), seed=0, dtype=F64)
    oracle = bayes_oracle(data)
    m = _default_fit(data.X, 3)
    Z = m.map_sets(data.X)
    assert membership_accuracy(data.Z, Z) >= oracle.accuracy - 0.02
    assert float(m.membership_prior_.max()) < 0.9  # no cluster stands in for the background
    assert abs(float((Z.sum(1) == 0).double().mean()) - float((data.Z.sum(1) == 0).double().mean())) < 0.03


@pytest.mark.parametrize("num_points", [100, 400])
def test_non_overlapping_blocks_give_single_cluster_sets(num_points):
    data = make_bernoulli_blocks(num_points=num_points, seed=0, dtype=F64)
    oracle = bayes_oracle(data).accuracy
    m = OverlappingMixtureModel("bernoulli", 5, background="learned")
    choice = select_structure(m, data.X, n_init=1, max_iter=60, generator=torch.Generator().manual_seed(0))
    Z = choice.model.map_sets(data.X)
    assert choice.structure == "single"
    assert float((Z.sum(1) == 1).double().mean()) >= 0.97
    # the chosen model *is* an ordinary mixture (sets of size <= 1, prior renormalised); at the oracle's accuracy
    assert membership_accuracy(data.Z, Z) >= oracle - 0.02


def test_overlapping_data_keep_the_overlapping_structure():
    data = make_noisy_or(num_points=300, seed=4, dtype=F64)
    m = OverlappingMixtureModel("bernoulli", 5, background="learned")
    choice = select_structure(m, data.X, n_init=1, generator=torch.Generator().manual_seed(0))
    assert choice.structure == "overlapping"
    assert choice.heldout_gain > 2 * choice.heldout_se


def _recovered_clusters(data, Z_hat, threshold=0.9):
    perm, _ = match_clusters(data.Z, Z_hat)
    agree = [
        float((Z_hat[:, int(p)] == data.Z[:, k]).double().mean()) if int(p) >= 0 else 0.0 for k, p in enumerate(perm)
    ]
    return sum(a >= threshold for a in agree)


@pytest.mark.parametrize("covariance", ["diag"])
def test_gaussian_planted_sets(covariance):
    data = make_overlapping_gaussians(num_points=300, num_clusters=5, dim=3, covariance=covariance, seed=0, dtype=F64)
    family = "normal" if covariance == "diag" else "normal_full"
    m = OverlappingMixtureModel(family, 5, background="learned")
    res = fit_map(m, data.X, n_init=4, generator=torch.Generator().manual_seed(0))
    m.params_ = res.params
    assert _recovered_clusters(data, m.map_sets(data.X)) >= 4
    assert bayes_oracle(data).accuracy >= 0.95  # the planted sets are identifiable at all


def test_params_from_memberships_fits_the_given_sets():
    data = make_noisy_or(num_points=300, seed=5, dtype=F64)
    m = OverlappingMixtureModel("bernoulli", 5, background="learned")
    m.setup(data.X)
    m.params_ = params_from_memberships(m, data.X, data.Z)
    # one M-step on the true sets already gives the oracle's memberships
    assert membership_accuracy(data.Z, m.map_sets(data.X)) >= bayes_oracle(data).accuracy - 0.01


def test_generators_validate_their_arguments():
    with pytest.raises(ValueError, match="flip"):
        make_noisy_or(flip=0.7)
    with pytest.raises(ValueError, match="features_per_cluster"):
        make_noisy_or(num_features=5, features_per_cluster=6)
    with pytest.raises(ValueError, match="on_prob"):
        make_bernoulli_blocks(on_prob=1.5)
    with pytest.raises(ValueError, match="num_features"):
        make_bernoulli_blocks(num_features=3, num_clusters=5)
    with pytest.raises(ValueError, match="narrow"):
        make_gaussian_stripes(narrow=-1.0)
    with pytest.raises(ValueError, match="kind"):
        bayes_oracle(type("D", (), {"params": {}, "Z": torch.zeros(2, 2), "X": torch.zeros(2, 2)})())
    with pytest.raises(ValueError, match="n_init"):
        fit_map(OverlappingMixtureModel("bernoulli", 2), torch.ones(4, 3), n_init=0)
    with pytest.raises(ValueError, match="holdout"):
        select_structure(OverlappingMixtureModel("bernoulli", 2), torch.ones(4, 3), holdout=0.9)
    with pytest.raises(ValueError, match="background"):
        OverlappingMixtureModel("bernoulli", 2, background="on")
    with pytest.raises(ValueError, match="max_iter"):
        map_em(OverlappingMixtureModel("bernoulli", 2), torch.ones(4, 3), max_iter=0)


def test_gibbs_sweeps_sample_the_exact_posterior_over_sets():
    """Many copies of one point, swept independently: the sampled sets follow the enumerated posterior."""
    from pyro_expfam.models.overlapping.gibbs import gibbs_sweep

    g = torch.Generator().manual_seed(7)
    k = 3
    m = OverlappingMixtureModel("bernoulli", k, background="learned")
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0]], dtype=F64)
    m.setup(x)
    values = {s: 0.8 * torch.randn(shape, generator=g, dtype=F64) for s, shape in m.global_sites().items()}
    m.params_ = {f"{s}.loc": v for s, v in values.items()}
    copies = 20000
    stats = m.family.layout.statistics(x.expand(copies, -1))[:, : m.family.layout.dim]
    Z = torch.zeros(copies, k, dtype=F64)
    for _ in range(6):
        gibbs_sweep(m, values, stats, Z, g)
    sets = m.membership_sets
    exact = next(m._log_joint_blocks(x))[1].softmax(-1)[0]  # posterior over the 2^K sets
    index = (Z * 2 ** torch.arange(k, dtype=F64)).sum(1).long()  # row s of membership_sets is the binary expansion
    freq = torch.bincount(index, minlength=sets.shape[0]).to(F64) / copies
    # 20000 draws: standard error <= 0.0036 per frequency
    assert torch.allclose(freq, exact, atol=0.015)


def test_gibbs_em_beats_capped_enumeration_on_large_sets():
    from pyro_expfam.models.overlapping.gibbs import gibbs_em, gibbs_map_sets
    from pyro_expfam.models.overlapping.init import guess_memberships

    data = make_noisy_or(
        num_points=400,
        num_features=60,
        num_clusters=8,
        features_per_cluster=6,
        set_size_probs=(0, 0, 0, 0.5, 0.5),
        seed=0,
        dtype=F64,
    )
    g = torch.Generator().manual_seed(0)
    capped = OverlappingMixtureModel("bernoulli", 8, max_set_size=2, background="learned")
    capped.setup(data.X)
    Z0 = guess_memberships(capped, data.X, "nmf", g)
    p0 = params_from_memberships(capped, data.X, Z0, g)
    capped.params_ = map_em(capped, data.X, params=p0, max_iter=10).params
    gm = OverlappingMixtureModel("bernoulli", 8, max_set_size=1, background="learned")
    res, Z = gibbs_em(gm, data.X, Z0, params=p0, num_iters=10, generator=g)
    gm.params_ = res.params
    acc_gibbs = membership_accuracy(data.Z, gibbs_map_sets(gm, data.X, Z0=Z, generator=g))
    acc_capped = membership_accuracy(data.Z, capped.map_sets(data.X))
    # capped enumeration cannot represent the true sets of size 3-4
    assert float(capped.map_sets(data.X).sum(1).max()) <= 2
    assert acc_gibbs > acc_capped + 0.02
