# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The blocked fast paths of the per-iteration work against simple per-component references (float64, 1e-10):

- the DP mixture's CAVI pass (:func:`~pyro_expfam.mixture.dpmm.cavi.cavi_pass`: transposed statistics in
  blocks, one GEMM for all components, in-place log-sum-exp) against the textbook expected log-likelihood of
  each Gaussian component (Bishop 10.64-10.65 and its diagonal/spherical/tied analogues) computed one
  component at a time, for one block and for several blocks with a partial last one, cached or not;
- the merge moves' entropy changes against ``xlogy`` on the whole responsibility matrix, and their decisions
  against the plain loop over candidate pairs;
- the fused EM pass of :class:`~pyro_expfam.mixture.GaussianMixture` (every covariance type) against one EM
  iteration written with ``torch.distributions.MultivariateNormal`` and per-component weighted covariances.
"""

from __future__ import annotations

import math

import pytest
import torch

import pyro_expfam.mixture.gaussian as gaussian_module
from pyro_expfam.mixture import GaussianMixture
from pyro_expfam.mixture.dpmm import (
    SufficientStatistics,
    cavi_pass,
    expected_log_weights,
    make_emission,
    stick_kl,
    stick_posterior,
)
from pyro_expfam.mixture.dpmm.cavi import _EntropyChanges, _stick_collapsed, merge_and_sort

TOL = 1e-10
COVS = ("full", "tied", "diag", "spherical")


def _data(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = 4.0 * torch.randn(3, d, generator=g, dtype=torch.float64)
    return centres[torch.arange(n) % 3] + torch.randn(n, d, generator=g, dtype=torch.float64)


def _state(cov: str, X: torch.Tensor, K: int, seed: int):
    """An emission set up on ``X`` and a variational state from random soft responsibilities."""
    em = make_emission("gaussian", cov)
    phi0 = em.setup(X)
    g = torch.Generator().manual_seed(seed)
    R0 = torch.softmax(3 * torch.randn(X.shape[0], K, generator=g, dtype=torch.float64), 1)
    T, _ = em.sufficient_statistics(X)
    phi = em.update(phi0, R0.T @ T, R0.sum(0))
    sticks = stick_posterior(R0.sum(0), 0.8)
    return em, phi0, phi, sticks


def _reference_ell(em, cov: str, phi: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``E_q[log N(x_n | theta_k)]`` one component at a time from the standard parameters, ``(N, K)``."""
    N, D = X.shape
    K = phi.shape[0]
    out = torch.empty(N, K, dtype=torch.float64)
    if cov in ("full", "tied"):
        if cov == "full":
            std = em.to_standard(phi)
        else:
            nu, L = em._shared(phi)  # the shared Wishart: W^{-1} = L L^T
            S = em.n_stats
            std = {"loc": phi[:, :D] / phi[:, S : S + 1], "kappa": phi[:, S],
                   "df": nu.expand(K), "scale_tril": torch.linalg.cholesky(torch.cholesky_inverse(L)).expand(K, D, D)}
        for k in range(K):
            m, kappa, nu, LW = std["loc"][k], std["kappa"][k], std["df"][k], std["scale_tril"][k]
            W = LW @ LW.T
            e_logdet = (sum(torch.digamma((nu - i) / 2) for i in range(D)) + D * math.log(2)
                        + 2 * LW.diagonal().log().sum())
            diff = X - m
            quad = D / kappa + nu * ((diff @ W) * diff).sum(1)
            out[:, k] = 0.5 * e_logdet - 0.5 * D * math.log(2 * math.pi) - 0.5 * quad
        return out
    std = em.to_standard(phi)
    for k in range(K):
        m, kappa, a, b = std["loc"][k], std["kappa"][k], std["shape"][k], std["rate"][k]
        e_log_lam = torch.digamma(a) - b.log()
        sq = (X - m).square()
        if cov == "diag":
            out[:, k] = (0.5 * e_log_lam - 0.5 * math.log(2 * math.pi) - 0.5 * (a / b * sq + 1 / kappa)).sum(1)
        else:
            out[:, k] = (0.5 * D * e_log_lam - 0.5 * D * math.log(2 * math.pi)
                         - 0.5 * (a / b * sq.sum(1) + D / kappa))
    return out


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=TOL, atol=TOL * max(1.0, float(b.abs().max())))


@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("chunk_bytes, max_bytes", [(1 << 20, 1 << 29), (1, 1 << 29), (1, 0)],
                         ids=["one-block", "blocks", "uncached"])
def test_cavi_pass_matches_per_component_reference(cov, chunk_bytes, max_bytes):
    X = _data(700, 3, seed=0)  # 700 = 2 x 256 + a partial block of 188 when chunk_bytes forces 256 rows
    K, alpha = 4, 0.8
    em, phi0, phi, sticks = _state(cov, X, K, seed=1)
    data = SufficientStatistics(em, X, max_bytes=max_bytes, chunk_bytes=chunk_bytes)
    assert (data.cached is None) == (max_bytes == 0)
    res = cavi_pass(em, data, phi0, phi, sticks, alpha, keep_resp=True)

    log_rho = _reference_ell(em, cov, phi, X) + expected_log_weights(sticks)
    lse = torch.logsumexp(log_rho, 1)
    r = torch.exp(log_rho - lse.unsqueeze(1))
    T, _ = em.sufficient_statistics(X)
    stats = torch.stack([(r[:, k : k + 1] * T).sum(0) for k in range(K)])
    bound = lse.sum() - stick_kl(sticks, alpha) - em.kl(phi, phi0).sum()  # the reference holds the -D/2 log 2 pi
    assert _close(res.stats, stats)
    assert _close(res.counts, r.sum(0))
    assert abs(float(res.bound - bound)) <= TOL * abs(float(bound))
    assert _close(torch.cat(list(res.resp)), r)
    # the kept responsibilities live in a reused buffer whose padding stays zero
    assert float(res.resp.blocks.sum()) == pytest.approx(X.shape[0], rel=1e-12)


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_cavi_pass_blocks_equal_one_block_other_families(family):
    """The block layout is generic: several blocks (cached or not) give one block's pass (non-Gaussian too)."""
    g = torch.Generator().manual_seed(0)
    X = (torch.bernoulli(torch.full((600, 5), 0.4, dtype=torch.float64), generator=g) if family == "bernoulli"
         else torch.poisson(torch.full((600, 5), 3.0, dtype=torch.float64), generator=g))
    em = make_emission(family, "full")
    phi0 = em.setup(X)
    R0 = torch.softmax(torch.randn(600, 3, generator=g, dtype=torch.float64), 1)
    T, kx = em.sufficient_statistics(X)
    phi = em.update(phi0, R0.T @ T, R0.sum(0))
    sticks = stick_posterior(R0.sum(0), 1.0)
    one = cavi_pass(em, SufficientStatistics(em, X), phi0, phi, sticks, 1.0)
    for max_bytes in (1 << 29, 0):
        many = cavi_pass(em, SufficientStatistics(em, X, max_bytes=max_bytes, chunk_bytes=1), phi0, phi, sticks, 1.0)
        assert _close(many.stats, one.stats) and _close(many.counts, one.counts)
        assert abs(float(many.bound - one.bound)) <= TOL * abs(float(one.bound))
    log_rho = em.log_likelihood_matrix(T, kx, em.expected_stats(phi)) + expected_log_weights(sticks)
    assert _close(one.counts, torch.softmax(log_rho, 1).sum(0))


def test_statistics_batch_and_chunks():
    X = _data(700, 3, seed=2)
    em, *_ = _state("full", X, 3, seed=0)
    T, kx = em.training_statistics(X)
    data = SufficientStatistics(em, X, chunk_bytes=1)
    assert torch.equal(torch.cat([c for c, _ in data.chunks()]), T)
    idx = torch.tensor([0, 255, 256, 511, 512, 699, 3])
    Tb, kb = data.batch(idx)
    assert torch.equal(Tb, T[idx]) and torch.equal(kb, kx[idx])


def test_entropy_changes_match_xlogy():
    X = _data(700, 3, seed=3)
    K = 4
    em, phi0, phi, sticks = _state("diag", X, K, seed=4)
    data = SufficientStatistics(em, X, chunk_bytes=1)
    res = cavi_pass(em, data, phi0, phi, sticks, 0.8, keep_resp=True)
    r = torch.cat(list(res.resp))
    ent = _EntropyChanges(res.resp)
    plain = _EntropyChanges(list(res.resp))  # without the buffer: chunk by chunk
    for i, j in [(0, 1), (2, 3), (0, 3)]:
        ri, rj = r[:, i], r[:, j]
        ref = (torch.xlogy(ri, ri) + torch.xlogy(rj, rj) - torch.xlogy(ri + rj, ri + rj)).sum()
        assert abs(float(ent.pair(i, j) - ref)) <= TOL * max(1.0, abs(float(ref)))
        assert abs(float(plain.pair(i, j) - ref)) <= TOL * max(1.0, abs(float(ref)))


def _reference_em_iteration(X, weights, means, precisions, cov, reg_covar):
    """One EM iteration (mean log-likelihood at the start, new weights/means/covariances), per component."""
    N, D = X.shape
    K = means.shape[0]
    if cov == "tied":
        precisions = precisions.expand(K, D, D)
    elif cov == "diag":
        precisions = torch.diag_embed(precisions)
    elif cov == "spherical":
        precisions = precisions[:, None, None] * torch.eye(D, dtype=X.dtype)
    log_p = torch.stack([torch.distributions.MultivariateNormal(means[k], precision_matrix=precisions[k]).log_prob(X)
                         + weights[k].log() for k in range(K)], 1)
    lse = torch.logsumexp(log_p, 1)
    r = torch.exp(log_p - lse.unsqueeze(1))
    nk = r.sum(0) + 10 * torch.finfo(X.dtype).eps
    new_means = torch.stack([(r[:, k : k + 1] * X).sum(0) / nk[k] for k in range(K)])
    covs = torch.stack([((X - new_means[k]).T * r[:, k]) @ (X - new_means[k]) / nk[k] for k in range(K)])
    eye = torch.eye(D, dtype=X.dtype)
    if cov == "full":
        new_cov = covs + reg_covar * eye
    elif cov == "tied":
        new_cov = (covs * nk[:, None, None]).sum(0) / nk.sum() + reg_covar * eye
    elif cov == "diag":
        new_cov = covs.diagonal(dim1=-2, dim2=-1) + reg_covar
    else:
        new_cov = covs.diagonal(dim1=-2, dim2=-1).mean(1) + reg_covar
    return float(lse.mean()), nk / nk.sum(), new_means, new_cov


@pytest.mark.parametrize("cov", COVS)
@pytest.mark.parametrize("blocks", ["one-block", "blocks", "uncached", "unpacked"])
def test_em_iteration_matches_per_component_reference(cov, blocks, monkeypatch):
    if blocks == "unpacked":  # the path beyond _PACKED_MAX_FEATURES: whitened residuals, per-row weighted products
        monkeypatch.setattr(gaussian_module, "_PACKED_MAX_FEATURES", 2)
    elif blocks != "one-block":
        monkeypatch.setattr(gaussian_module, "_BLOCK_BYTES", 1)  # 256-point blocks: 700 = 2 x 256 + 188
    if blocks == "uncached":
        monkeypatch.setattr(gaussian_module, "_PACKED_CACHE_BYTES", 0)
    X = _data(700, 3, seed=5)
    K, D = 3, 3
    g = torch.Generator().manual_seed(6)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    means = X[torch.randperm(700, generator=g)[:K]]
    A = torch.randn(K, D, D, generator=g, dtype=torch.float64)
    prec_full = A @ A.mT / D + 0.5 * torch.eye(D, dtype=torch.float64)
    precisions = {"full": prec_full, "tied": prec_full[0], "diag": prec_full.diagonal(dim1=-2, dim2=-1),
                  "spherical": prec_full.diagonal(dim1=-2, dim2=-1).mean(1)}[cov]
    gm = GaussianMixture(K, covariance_type=cov, max_iter=1, tol=0.0, weights_init=weights, means_init=means,
                         precisions_init=precisions, reg_covar=1e-6)
    with pytest.warns(Warning):  # one iteration does not converge
        gm.fit(X)
    bound, w, m, c = _reference_em_iteration(X, weights, means, precisions, cov, 1e-6)
    assert abs(gm.lower_bound_ - bound) <= TOL * abs(bound)
    assert _close(gm.weights_, w) and _close(gm.means_, m) and _close(gm.covariances_, c)


@pytest.mark.parametrize("cov", ["full", "tied"])
def test_em_float32_full_tied_keep_two_step_path(cov):
    """float32 full/tied keep the whitened residuals: the fused pass declines and the fit matches float64."""
    X = _data(300, 3, seed=7)
    data = gaussian_module._prepare(X.float(), cov, X.float().mean(0))
    U = torch.eye(3).expand(2, 3, 3) if cov == "full" else torch.eye(3)
    assert gaussian_module._em_pass(data, torch.full((2,), 0.5), X[:2].float(), U, cov) is None
    kw = dict(covariance_type=cov, max_iter=5, tol=0.0, random_state=0)
    with pytest.warns(Warning):
        m64 = GaussianMixture(3, **kw).fit(X).means_
    with pytest.warns(Warning):
        m32 = GaussianMixture(3, **kw).fit(X.float()).means_
    assert torch.allclose(m32.double().sort(0).values, m64.sort(0).values, atol=1e-3)


def _reference_merge(em, phi0, phi, counts, r, alpha, prior_type):
    """The merge moves one candidate pair at a time (the stick terms and ``xlogy`` entropies recomputed per pair)."""
    K = phi.shape[0]
    phi, counts = phi.clone(), counts.clone()
    occupied = counts > 1e-3
    pairs = [(i, j) for i in range(K) for j in range(i + 1, K) if occupied[i] and occupied[j]]
    ii, jj = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    gain_z = em.merge_log_partition_gain(phi, phi0, ii, jj)
    used, evaluations, n_merges = set(), 0, 0
    stick_now = float(_stick_collapsed(counts, alpha, prior_type))
    for p in torch.argsort(gain_z, descending=True).tolist():
        i, j = pairs[p]
        if evaluations >= 2 * K:
            break
        if i in used or j in used:
            continue
        new_counts = counts.clone()
        new_counts[i] += new_counts[j]
        new_counts[j] = 0
        stick_new = float(_stick_collapsed(new_counts, alpha, prior_type))
        pre = float(gain_z[p]) + stick_new - stick_now
        if pre <= 0:
            continue
        evaluations += 1
        ri, rj = r[:, i], r[:, j]
        dh = float((torch.xlogy(ri, ri) + torch.xlogy(rj, rj) - torch.xlogy(ri + rj, ri + rj)).sum())
        if pre + dh > 1e-9 * (abs(stick_now) + 1.0):
            phi[i] = phi[i] + phi[j] - phi0
            phi[j] = phi0
            counts, stick_now = new_counts, stick_new
            used.update((i, j))
            n_merges += 1
    return phi, counts, n_merges


@pytest.mark.parametrize("cov", ["full", "tied", "diag"])
@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
def test_merge_moves_match_one_pair_at_a_time(cov, prior_type):
    """Vectorised candidate stick terms and cached column entropies take the same merges as the plain loop."""
    X = _data(700, 3, seed=8)
    K = 7
    em = make_emission("gaussian", cov)
    phi0 = em.setup(X)
    # a start that splits each of the 3 clusters between components: merges are on offer
    labels = (torch.arange(700) % 3) * 2 + (torch.arange(700) // 3) % 2
    R0 = torch.nn.functional.one_hot(labels, K).double() * 0.9 + 0.1 / K
    T, _ = em.sufficient_statistics(X)
    phi = em.update(phi0, R0.T @ T, R0.sum(0))
    sticks = stick_posterior(R0.sum(0), 1.0, prior_type)
    res = cavi_pass(em, SufficientStatistics(em, X, chunk_bytes=1), phi0, phi, sticks, 1.0, keep_resp=True)
    phi1 = em.update(phi0, res.stats, res.counts)
    r = torch.cat(list(res.resp))
    ref_phi, ref_counts, ref_n = _reference_merge(em, phi0, phi1, res.counts, r, 1.0, prior_type)
    new_phi, new_counts, n = merge_and_sort(em, phi0, phi1, res.counts, res.resp, 1.0, prior_type=prior_type)
    assert n == ref_n and n >= 1
    perm = torch.argsort(ref_counts, descending=True, stable=True)
    if prior_type == "dirichlet_process" and float(_stick_collapsed(ref_counts[perm], 1.0)) > float(
            _stick_collapsed(ref_counts, 1.0)):
        ref_phi, ref_counts = ref_phi[perm], ref_counts[perm]
    assert torch.equal(new_counts, ref_counts) and torch.equal(new_phi, ref_phi)
