# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Gaussian clusters of the overlapping mixture (issue 14): the natural-parameter
MAP-EM start (:mod:`pyro_expfam.models.overlapping.gaussian`) against brute
force, and recovery of planted overlapping Gaussian sets by
``OverlappingMixture`` with its default settings, against the Bayes oracle.
"""

from __future__ import annotations

import math

import pytest
import torch

from pyro_expfam.datasets.overlapping import make_overlapping_gaussians
from pyro_expfam.models.overlapping import OverlappingMixture, OverlappingMixtureModel, match_clusters
from pyro_expfam.models.overlapping import gaussian as G
from pyro_expfam.models.overlapping.evaluation import membership_accuracy
from pyro_expfam.models.overlapping.oracle import bayes_oracle

F64 = torch.float64


def _problem(family: str, k: int = 3, n: int = 120, seed: int = 0):
    cov = "diag" if family == "normal" else "full"
    data = make_overlapping_gaussians(num_points=n, num_clusters=k, dim=2, covariance=cov, seed=seed, dtype=F64)
    X = data.X - data.X.mean(0)
    model = OverlappingMixtureModel(family, k, background="learned")
    model.setup(X)
    return data, X, model, G._Problem(model, X)


def _random_state(prob, k: int, seed: int) -> G.GaussianStart:
    g = torch.Generator().manual_seed(seed)
    return G._start_from_memberships(prob, G._kmeans(prob, k, g))


@pytest.mark.parametrize("family", ["normal", "normal_full"])
def test_set_log_likelihood_matches_torch_mvn(family):
    # log p(s | pi) + log N(x | Lambda_s^-1 h_s, Lambda_s^-1) for every point and set, against torch's MVN
    data, X, model, prob = _problem(family)
    st = _random_state(prob, 3, 0)
    joint = prob.log_joint(st.precision[None], st.h[None], st.pi[None])[0]
    lam = prob.aug @ st.precision.reshape(4, -1)
    for s in range(prob.sets.shape[0]):
        prec = lam[s].reshape(2, 2)
        mean = torch.linalg.solve(prec, prob.aug[s] @ st.h)
        z = prob.sets[s]
        log_ps = float((z * st.pi.log() + (1 - z) * (-st.pi).log1p()).sum())
        ref = torch.distributions.MultivariateNormal(mean, precision_matrix=prec).log_prob(prob.X) + log_ps
        assert torch.allclose(joint[:, s], ref, atol=1e-10)


@pytest.mark.parametrize("family", ["normal", "normal_full"])
def test_mean_step_is_the_exact_maximiser(family):
    # the weighted least-squares step zeroes the gradient of Q + log prior in h (autograd as the reference)
    data, X, model, prob = _problem(family)
    st = _random_state(prob, 3, 1)
    st = G.GaussianStart.stack([st])
    _, counts, s1, s2 = G._e_step(prob, st)
    h = G._solve_h(prob, st.precision, st.h, counts, s1).requires_grad_()
    lam, hs = prob.set_params(st.precision, h)
    mean = torch.linalg.solve(lam, hs.unsqueeze(-1)).squeeze(-1)
    q = (hs * s1).sum() - 0.5 * (lam * s2).sum() - 0.5 * (counts * (hs * mean).sum(-1)).sum()
    (grad,) = torch.autograd.grad(q + prob.log_prior(st.precision, h).sum(), h)
    assert float(grad.abs().max()) < 1e-8 * float(s1.abs().max())


@pytest.mark.parametrize("family", ["normal", "normal_full"])
def test_em_is_monotone_and_batched_equals_single(family):
    data, X, model, prob = _problem(family)
    states = [_random_state(prob, 3, seed) for seed in (2, 3)]
    batch = G.GaussianStart.stack(states)
    objective = None
    for _ in range(6):  # one EM iteration per call: the objective never decreases
        batch = G.gaussian_map_em(prob, batch, max_iter=1, tol=0.0)
        if objective is not None:
            assert bool((batch.objective >= objective - 1e-8 * objective.abs()).all())
        objective = batch.objective.clone()
    # the objective of a batch member is the one of that state alone
    alone = G.gaussian_map_em(prob, batch[1:2], max_iter=0)
    assert float(alone.objective[0]) == pytest.approx(float(batch.objective[1]), rel=1e-12)


@pytest.mark.parametrize("family", ["normal", "normal_full"])
def test_model_params_give_the_same_clusters(family):
    # the state's precisions and means, written on the model's own sites, come back from the model
    data, X, model, prob = _problem(family)
    st = _random_state(prob, 3, 4)
    st = G.GaussianStart.stack([st])
    st = G.gaussian_map_em(prob, st, max_iter=3, tol=0.0)[0]
    model.params_ = G.model_params(model, X, st)
    dist = model.cluster_distributions()  # eta_0 + eta_k: background plus one cluster
    prec = st.precision[0] + st.precision[1:]
    mean = torch.linalg.solve(prec, (st.h[0] + st.h[1:]).unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(dist.loc.to(F64), mean, atol=1e-8)
    if family == "normal":
        assert torch.allclose(dist.scale.to(F64) ** -2, torch.diagonal(prec, dim1=-2, dim2=-1), rtol=1e-8)
    else:
        assert torch.allclose(dist.precision_matrix.to(F64), prec, rtol=1e-8, atol=1e-10)
    assert torch.allclose(model.membership_prior_.to(F64), st.pi, rtol=1e-8)


def _recovered(data, Z, threshold: float = 0.9) -> int:
    perm, _ = match_clusters(data.Z, Z)
    return sum(
        int(p) >= 0 and float((Z[:, int(p)] == data.Z[:, k]).double().mean()) >= threshold for k, p in enumerate(perm)
    )


# (covariance, seed): at N = 400, K = 5, D = 3 the family's own start (init_params="auto", the Gaussian default
# before the MAP-EM start) recovers none of the 5 planted sets on these seeds (measured: diag seed 0 -> 0 of 5,
# accuracy 0.744; full seed 0 -> 0 of 5, 0.745), so the assertions below fail if the default start regresses to it
@pytest.mark.parametrize("covariance, seed", [("diag", 0), ("full", 0)])
def test_defaults_recover_planted_gaussian_sets(covariance, seed):
    n, k = 400, 5
    data = make_overlapping_gaussians(num_points=n, num_clusters=k, dim=3, covariance=covariance, seed=seed, dtype=F64)
    family = "normal" if covariance == "diag" else "normal_full"
    oracle = bayes_oracle(data)
    est = OverlappingMixture(family, k, random_state=seed).fit(data.X.numpy())
    Z = torch.as_tensor(est.predict(data.X.numpy()))
    # every planted set found (>= 90% of the points agree on membership of the matched cluster)
    assert _recovered(data, Z) == k
    # membership accuracy over N K = 2000 entries: its binomial standard error at 0.97 is about 0.004, and the
    # fitted parameters' error at N = 400 costs 1-3 points (measured 1.9 and 2.7 here, 0.8-3 points at N = 1000
    # over 10 seeds, benchmarks/README.md); 5 points is beyond both, while a start that misses a set loses > 5
    assert membership_accuracy(data.Z, Z) >= oracle.accuracy - 0.05
    assert math.isfinite(est.lower_bound_)
