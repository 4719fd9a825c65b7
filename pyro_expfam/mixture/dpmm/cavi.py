# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Coordinate-ascent and stochastic natural-gradient variational inference for the
truncated stick-breaking Dirichlet-process mixture

.. math::

    v_k\sim\mathrm{Beta}(1,\alpha)\ (k<K),\ v_K=1,\quad
    \pi_k = v_k\prod_{j<k}(1-v_j),\quad
    \theta_k\sim p(\theta\mid\phi_0),\quad z_n\sim\pi,\quad x_n\sim p(x\mid\theta_{z_n}),

with the mean-field family :math:`q(v_k)=\mathrm{Beta}(a_k,b_k)`,
:math:`q(\theta_k)=p(\theta\mid\phi_k)`, :math:`q(z_n)=\mathrm{Cat}(r_n)`.

**Exact ELBO.**  With :math:`\log\rho_{nk} = E[\log\pi_k] + E[\log p(x_n|\theta_k)]`
and :math:`q(z)` optimal (:math:`r = \mathrm{softmax}\log\rho`),

.. math::

    \mathcal L = \sum_n \mathrm{logsumexp}_k\log\rho_{nk}
        - \sum_{k<K} KL(q(v_k)\|p(v_k)) - \sum_k KL(q(\theta_k)\|p(\theta_k)).

One CAVI iteration is: E-step (``r``) and the bound above at the current
:math:`(\phi, a, b)`, then the conjugate M-step
:math:`\phi_k = \phi_0 + \sum_n r_{nk}u(x_n)`, :math:`a_k = 1+N_k`,
:math:`b_k = \alpha + \sum_{j>k}N_j`.  Both halves maximise :math:`\mathcal L`
exactly in their block, so the recorded bound never decreases.

**Merge moves** (Hughes & Sudderth 2013), on by default: after the M-step the
bound at fixed ``r`` has the closed form

.. math::

    \mathcal L(r) = \sum_k [Z(\phi_k) - Z(\phi_0)]
        + \sum_{k<K}[\log B(1+N_k, \alpha+M_k) - \log B(1,\alpha)] + \sum_n k(x_n) + H(r),

(:math:`M_k=\sum_{j>k}N_j`), so merging components ``i`` and ``j`` (adding
their responsibilities) is evaluated exactly and accepted only if it raises
:math:`\mathcal L(r)`; the same holds for reordering the sticks by size.  The
bound stays monotone, and the redundant components that a k-means start
leaves inside one true cluster disappear in a few iterations instead of
hundreds.

**Finite Dirichlet weights** (``prior_type="dirichlet_distribution"``, scikit-learn's
``weight_concentration_prior_type``): :math:`\pi\sim\mathrm{Dirichlet}(\alpha 1_K)` instead of the sticks,
:math:`q(\pi)=\mathrm{Dirichlet}(\alpha + N_k)`.  Its parameters are a 1-D ``(K,)`` tensor where the sticks
are ``(K-1, 2)``, and the weight functions below tell the two apart by that shape; the collapsed bound of the
merge moves is :math:`\sum_k\log\Gamma(\alpha+N_k) - \log\Gamma(K\alpha + N)`, invariant under reordering.

**Joint emissions** (the tied Gaussian, whose components share one precision matrix) do not factor over
components: the merge moves then ask the emission for the change of its joint log partition
(:meth:`~pyro_expfam.mixture.dpmm.emissions.ConjugateEmission.merge_log_partition_gain`).

**Stochastic natural-gradient VI** (Hoffman et al. 2013): on a minibatch
``B`` the natural gradient is ``target - current`` with
``target = phi0 + (N/|B|) sum_{n in B} r_n u(x_n)``; a step
:math:`\rho_t=(t+\tau)^{-\kappa}` moves :math:`\phi\leftarrow(1-\rho_t)\phi+\rho_t\,\mathrm{target}`
(and the sticks likewise).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .emissions import ConjugateEmission

__all__ = [
    "PRIOR_TYPES",
    "SufficientStatistics",
    "CaviResult",
    "stick_posterior",
    "expected_log_weights",
    "expected_weights",
    "stick_kl",
    "cavi_pass",
    "merge_and_sort",
    "snvi_epoch",
    "elbo",
]


# ---------------------------------------------------------------------- #
# Data statistics
# ---------------------------------------------------------------------- #
#: bytes of one block of statistics ``(S, B)`` (and of the ``(K, B)`` responsibilities computed from it): small
#: enough that both GEMMs of a pass find the block in cache (measured best on CPU: ~2x faster than ``(B, S)`` rows)
_BLOCK_BYTES = 1 << 20
#: on a GPU larger blocks (fewer kernel launches per pass)
_GPU_BLOCK_BYTES = 1 << 26


class SufficientStatistics:
    """
    The statistics ``(t(x), k(x))`` of a data set (the emission's
    :meth:`~pyro_expfam.mixture.dpmm.emissions.ConjugateEmission.training_statistics`), cached when they fit in
    ``max_bytes`` (they are constant over iterations), otherwise recomputed
    chunk by chunk.  ``X`` may live on another device than the fit (e.g. CPU
    data fitted on CUDA): chunks and minibatches are moved to ``device``.

    The cache is stored transposed, in contiguous blocks of ``chunk_rows`` points: ``(n_blocks, S, chunk_rows)``.
    A pass then runs both of its GEMMs (``W^T @ t(x)^T`` for the logits and ``R^T @ t(x)`` for the statistics)
    on a block that stays in cache, with the ``K`` components along the short dimension (:func:`cavi_pass`).
    :meth:`chunks` yields the usual ``(rows, S)`` shapes (transposed views).

    :param ConjugateEmission emission: the emission (after ``setup``).
    :param Tensor X: data ``(N, D)``.
    :param device: device of the computation (default ``X.device``).
    :param int max_bytes: cache budget.
    :param int chunk_bytes: size of a chunk of statistics (default 1 MB on CPU, 64 MB on other devices).
    """

    def __init__(self, emission: ConjugateEmission, X: Tensor, device=None,
                 max_bytes: int = 2**29, chunk_bytes: int | None = None) -> None:
        self.emission, self.X = emission, X
        self.device = torch.device(device) if device is not None else X.device
        if chunk_bytes is None:
            chunk_bytes = _BLOCK_BYTES if self.device.type == "cpu" else _GPU_BLOCK_BYTES
        self.n = X.shape[0]
        S = emission.n_stats
        row_bytes = S * X.element_size()
        self.chunk_rows = min(max(256, chunk_bytes // max(row_bytes, 1)), max(self.n, 1))
        self.cached: tuple[Tensor, Tensor] | None = None
        self._resp: Tensor | None = None
        if self.n * row_bytes <= max_bytes:
            B = self.chunk_rows
            n_blocks = -(-self.n // B)
            blocks = torch.zeros(n_blocks, S, B, dtype=X.dtype, device=self.device)
            ks = []
            for i, start in enumerate(range(0, self.n, B)):
                T, k = emission.training_statistics(X[start : start + B].to(self.device))
                blocks[i, :, : T.shape[0]] = T.T
                ks.append(k)
            self.cached = (blocks, torch.cat(ks) if ks else X.new_zeros(0))

    def _ranges(self) -> Iterator[tuple[int, int, int]]:
        for i, start in enumerate(range(0, self.n, self.chunk_rows)):
            yield i, start, min(start + self.chunk_rows, self.n)

    def blocks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(t(x)^T, k)`` over the data in order: ``(S, rows)`` blocks (contiguous when cached)."""
        for i, start, stop in self._ranges():
            if self.cached is not None:
                yield self.cached[0][i, :, : stop - start], self.cached[1][start:stop]
            else:
                T, k = self.emission.training_statistics(self.X[start:stop].to(self.device))
                yield T.T.contiguous(), k

    def chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(T, k)`` over the data in order (``T`` of shape ``(rows, S)``)."""
        for TT, k in self.blocks():
            yield TT.T, k

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """``(T, k)`` of the rows ``idx``."""
        if self.cached is not None:
            blocks, k = self.cached
            idx = idx.to(blocks.device)
            return blocks[torch.div(idx, self.chunk_rows, rounding_mode="floor"), :, idx % self.chunk_rows], k[idx]
        return self.emission.training_statistics(self.X[idx.to(self.X.device)].to(self.device))

    def resp_buffer(self, K: int, dtype: torch.dtype) -> Tensor:
        """
        A ``(n_blocks, K, chunk_rows)`` buffer for the responsibilities of a pass, allocated once (zeros) and
        reused by every pass over these data (a fresh ``N x K`` buffer per iteration costs its page faults every time).
        """
        n_blocks = -(-self.n // self.chunk_rows)
        shape = (n_blocks, K, self.chunk_rows)
        if self._resp is None or self._resp.shape != shape or self._resp.dtype != dtype:
            # zeros: the padding of the last block stays 0 (no mass, no entropy) as the passes never write it
            self._resp = torch.zeros(shape, dtype=dtype, device=self.device)
        return self._resp


# ---------------------------------------------------------------------- #
# Stick breaking
# ---------------------------------------------------------------------- #
def _tail(counts: Tensor) -> Tensor:
    """``M_k = sum_{j>k} N_j`` for ``k < K``."""
    return counts.flip(0).cumsum(0).flip(0)[1:]


def _log_beta(a: Tensor, b: Tensor) -> Tensor:
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def _check_prior_type(prior_type: str) -> None:
    if prior_type not in PRIOR_TYPES:
        raise ValueError(f"weight_concentration_prior_type must be one of {PRIOR_TYPES}, got {prior_type!r}")


def stick_posterior(counts: Tensor, alpha: float, prior_type: str = "dirichlet_process") -> Tensor:
    """
    Optimal ``q(v_k) = Beta(1 + N_k, alpha + sum_{j>k} N_j)`` for ``k < K`` (Dirichlet process), or the
    concentration ``alpha + N_k`` of ``q(pi)`` (``prior_type="dirichlet_distribution"``).

    :param Tensor counts: ``N_k``, shape ``(K,)``.
    :param float alpha: DP concentration (or the symmetric Dirichlet's concentration per component).
    :param str prior_type: ``"dirichlet_process"`` or ``"dirichlet_distribution"``.
    :returns: ``(K-1, 2)`` tensor of Beta parameters, or ``(K,)`` Dirichlet concentrations.

    Example::

        >>> stick_posterior(torch.tensor([3.0, 1.0, 0.0]), 0.5)
        tensor([[4.0000, 1.5000],
                [2.0000, 0.5000]])
        >>> stick_posterior(torch.tensor([3.0, 1.0, 0.0]), 0.5, "dirichlet_distribution")
        tensor([3.5000, 1.5000, 0.5000])
    """
    _check_prior_type(prior_type)
    if prior_type == "dirichlet_distribution":
        return alpha + counts
    return torch.stack([1 + counts[:-1], alpha + _tail(counts)], dim=1)


def expected_log_weights(sticks: Tensor) -> Tensor:
    """
    :math:`E[\\log\\pi_k]`, shape ``(K,)``, for Beta stick parameters ``(K-1, 2)`` or Dirichlet
    concentrations ``(K,)``.
    """
    if sticks.dim() == 1:
        return torch.digamma(sticks) - torch.digamma(sticks.sum())
    a, b = sticks[:, 0], sticks[:, 1]
    dab = torch.digamma(a + b)
    e_log_v = torch.digamma(a) - dab
    e_log_1mv = torch.digamma(b) - dab
    zero = sticks.new_zeros(1)
    return torch.cat([e_log_v, zero]) + torch.cat([zero, e_log_1mv.cumsum(0)])


def expected_weights(sticks: Tensor) -> Tensor:
    """:math:`E[\\pi_k]`, shape ``(K,)`` (sums to one)."""
    if sticks.dim() == 1:
        return sticks / sticks.sum()
    mean_v = sticks[:, 0] / sticks.sum(1)
    one = sticks.new_ones(1)
    return torch.cat([mean_v, one]) * torch.cat([one, (1 - mean_v).cumprod(0)])


def stick_kl(sticks: Tensor, alpha: float) -> Tensor:
    """:math:`\\sum_{k<K} KL(\\mathrm{Beta}(a_k,b_k)\\,\\|\\,\\mathrm{Beta}(1,\\alpha))`."""
    if sticks.dim() == 1:  # KL(Dirichlet(c) || Dirichlet(alpha 1_K))
        alpha_t = torch.full_like(sticks, float(alpha))
        total = sticks.sum()
        return (torch.lgamma(total) - torch.lgamma(sticks).sum() - torch.lgamma(alpha_t.sum())
                + torch.lgamma(alpha_t).sum() + ((sticks - alpha_t) * (torch.digamma(sticks)
                                                                     - torch.digamma(total))).sum())
    a, b = sticks[:, 0], sticks[:, 1]
    dab = torch.digamma(a + b)
    alpha_t = torch.as_tensor(alpha, dtype=sticks.dtype, device=sticks.device)
    kl = (_log_beta(torch.ones_like(alpha_t), alpha_t) - _log_beta(a, b) + (a - 1) * (torch.digamma(a) - dab)
          + (b - alpha) * (torch.digamma(b) - dab))
    return kl.sum()


def _stick_collapsed(counts: Tensor, alpha: float, prior_type: str = "dirichlet_process") -> Tensor:
    """Stick part of the bound after the optimal stick update (up to a constant), for each row of ``(..., K)``."""
    if prior_type == "dirichlet_distribution":
        return torch.lgamma(alpha + counts).sum(-1) - torch.lgamma(alpha * counts.shape[-1] + counts.sum(-1))
    tail = counts.flip(-1).cumsum(-1).flip(-1)[..., 1:]
    return _log_beta(1 + counts[..., :-1], alpha + tail).sum(-1)


# ---------------------------------------------------------------------- #
# CAVI
# ---------------------------------------------------------------------- #
@dataclass
class CaviResult:
    """
    Output of one E-step pass.

    :ivar bound: exact ELBO at the parameters the pass started from.
    :ivar stats: ``sum_n r_nk t(x_n)``, shape ``(K, S)``.
    :ivar counts: ``N_k``, shape ``(K,)``.
    :ivar resp: responsibilities chunks (only if requested).
    """

    bound: Tensor
    stats: Tensor
    counts: Tensor
    resp: list[Tensor]


def _log_rho_params(em: ConjugateEmission, phi: Tensor, sticks: Tensor, dtype, device):
    es = em.expected_stats(phi)
    S = em.n_stats
    const = es[:, S:] @ em.constant_stats(dtype, device) + expected_log_weights(sticks)
    return es, es[:, :S].T.contiguous(), const


def cavi_pass(
    em: ConjugateEmission,
    data: SufficientStatistics,
    phi0: Tensor,
    phi: Tensor,
    sticks: Tensor,
    alpha: float,
    accumulate: bool = True,
    keep_resp: bool = False,
    reduce=None,
) -> CaviResult:
    """
    One pass over the data: optimal responsibilities under ``(phi, sticks)``,
    the exact ELBO there, and (``accumulate``) the statistics for the M-step.

    Per block of points (:meth:`SufficientStatistics.blocks`, ``(S, B)``) the pass runs two GEMMs and a
    log-sum-exp in place: the logits ``(K, B) = W^T t(x)^T + c`` (one GEMM for all components, the components
    along the short dimension), their maximum, ``exp`` and sum over the components (contiguous rows), the
    scaling to responsibilities, and ``R t(x)`` into the ``(K, S)`` statistics.  Nothing of size ``N x K`` is
    allocated (the kept responsibilities go to a buffer owned by ``data``).

    :param ConjugateEmission em: emission.
    :param SufficientStatistics data: data statistics.
    :param Tensor phi0: prior natural parameter ``(P,)``.
    :param Tensor phi: variational natural parameters ``(K, P)``.
    :param Tensor sticks: Beta parameters ``(K-1, 2)``.
    :param float alpha: DP concentration.
    :param bool accumulate: accumulate ``R.T @ T`` and ``N_k``.
    :param bool keep_resp: keep the responsibility chunks (for merge moves): ``(rows, K)`` views (each column
        contiguous) of a buffer owned by ``data``, overwritten by its next pass that keeps them.
    :param reduce: for data-parallel fits, a callable summing a dict of tensors over the ranks
        (:meth:`pyro_expfam.parallel.Communicator.all_reduce`); ``data`` is then this rank's shard and
        the bound and statistics returned are those of all the shards (one collective per pass).
    """
    es, W, const = _log_rho_params(em, phi, sticks, phi.dtype, phi.device)
    Wt, const = W.T.contiguous(), const.unsqueeze(1)
    K = phi.shape[0]
    total = phi.new_zeros(())
    stats = phi.new_zeros(K, em.n_stats) if accumulate else None
    counts = phi.new_zeros(K)
    resps = _RespChunks()
    kept = data.resp_buffer(K, phi.dtype) if keep_resp else None
    resps.blocks = kept
    work = None
    for i, (TT, k) in enumerate(data.blocks()):
        rows = TT.shape[1]
        if kept is not None:
            L = kept[i, :, :rows]
        else:
            if work is None or work.shape[1] < rows:
                work = phi.new_empty(K, rows)
            L = work[:, :rows]
        torch.addmm(const, Wt, TT, out=L)  # logits (K, rows)
        top = L.amax(0)
        L.sub_(top).exp_()  # in place: one exp per entry gives both the normaliser and r
        norm = L.sum(0)
        total = total + top.sum() + norm.log().sum() + k.sum()
        if accumulate or keep_resp:
            L.mul_(norm.reciprocal_())
            if accumulate:
                stats.addmm_(L, TT.T)
                counts += L.sum(1)
            if keep_resp:
                resps.append(L.T)
    if reduce is not None:
        parts = {"total": total, "counts": counts}
        if accumulate:
            parts["stats"] = stats
        parts = reduce(parts)
        total, counts, stats = parts["total"], parts["counts"], parts.get("stats")
    bound = total - stick_kl(sticks, alpha) - em.kl(phi, phi0, es).sum()
    return CaviResult(bound, stats, counts, resps)


def elbo(em: ConjugateEmission, data: SufficientStatistics, phi0: Tensor, phi: Tensor, sticks: Tensor,
         alpha: float, reduce=None) -> Tensor:
    """
    The exact mean-field ELBO at ``(phi, sticks)`` with ``q(z)`` optimal (any
    fitting method's result can be compared with it); ``reduce`` as in :func:`cavi_pass`.
    """
    return cavi_pass(em, data, phi0, phi, sticks, alpha, accumulate=False, reduce=reduce).bound


class _RespChunks(list):
    """
    The responsibility chunks of a pass (``(rows, K)`` views), with ``blocks`` the zero-padded
    ``(n_blocks, K, B)`` buffer they view, so that a column over all the points is one strided tensor.
    """

    blocks: Tensor | None = None


class _EntropyChanges:
    """
    ``H(r with columns i, j merged) - H(r)`` (non-positive) for the pairs the merge moves evaluate; the
    per-chunk sums of ``r log r`` of each column are computed once and reused by every pair that uses it.
    """

    def __init__(self, resps: list[Tensor]) -> None:
        blocks = getattr(resps, "blocks", None)
        # (n_chunks, K, rows): a chunk's column is a row here (contiguous in the pass's buffer)
        self.parts = [blocks] if blocks is not None else [R.T.unsqueeze(0) for R in resps]
        self.columns: dict[int, Tensor] = {}

    @staticmethod
    def _sums(r: Tensor) -> Tensor:
        # r log r with 0 log 0 = 0: log(r + tiny) equals log(r) except where r < 2^mantissa * tiny, whose terms
        # are below 1e-280 (float64) or 1e-28 (float32); a vectorised log, ~2x faster than xlogy
        return r.add(torch.finfo(r.dtype).tiny).log_().mul_(r).sum(-1)

    def column(self, c: int) -> Tensor:
        if c not in self.columns:
            self.columns[c] = torch.cat([self._sums(P[:, c]) for P in self.parts])
        return self.columns[c]

    def pair(self, i: int, j: int) -> Tensor:
        merged = torch.cat([self._sums(P[:, i] + P[:, j]) for P in self.parts])
        return (self.column(i) + self.column(j) - merged).sum()


def merge_and_sort(
    em: ConjugateEmission,
    phi0: Tensor,
    phi: Tensor,
    counts: Tensor,
    resps: list[Tensor],
    alpha: float,
    max_evaluations: int | None = None,
    prior_type: str = "dirichlet_process",
    reduce=None,
) -> tuple[Tensor, Tensor, int]:
    """
    Exact merge moves then a stick reordering, applied to the M-step output
    ``phi = phi0 + sum_n r_n u(x_n)``; each move is accepted only if it raises
    the bound :math:`\\mathcal L(r)` (module docstring).

    :param ConjugateEmission em: emission.
    :param Tensor phi0: prior ``(P,)``.
    :param Tensor phi: M-step natural parameters ``(K, P)``.
    :param Tensor counts: ``N_k`` ``(K,)``.
    :param list resps: responsibility chunks of the E-step that produced ``phi``.
    :param float alpha: DP concentration.
    :param int max_evaluations: cap on the O(N) entropy evaluations (default ``2K``).
    :param str prior_type: ``"dirichlet_process"`` (sticks) or ``"dirichlet_distribution"``.
    :param reduce: for data-parallel fits (``resps`` are then this rank's), the callable of :func:`cavi_pass`:
        each entropy change is summed over the ranks, so every decision depends on reduced quantities only
        and all ranks take the same moves (one scalar collective per evaluated pair, at most ``2K``).
    :returns: ``(phi, counts, n_merges)``.
    """
    K = phi.shape[0]
    if max_evaluations is None:
        max_evaluations = 2 * K
    phi, counts = phi.clone(), counts.clone()
    occupied = counts > 1e-3
    iu = torch.triu_indices(K, K, offset=1, device=phi.device)
    keep = occupied[iu[0]] & occupied[iu[1]]
    ii, jj = iu[0][keep], iu[1][keep]
    n_merges = 0
    if ii.numel():
        gain_z = em.merge_log_partition_gain(phi, phi0, ii, jj)
        order = torch.argsort(gain_z, descending=True)
        gain_z, ii, jj = gain_z[order].tolist(), ii[order].tolist(), jj[order].tolist()
        used: set[int] = set()
        evaluations = 0
        entropy = _EntropyChanges(resps)
        stick_now = float(_stick_collapsed(counts, alpha, prior_type))
        rows, ii_t, jj_t = torch.arange(len(ii), device=phi.device), torch.tensor(ii), torch.tensor(jj)
        ii_t, jj_t = ii_t.to(phi.device), jj_t.to(phi.device)

        def merged_counts(counts: Tensor) -> tuple[Tensor, list[float]]:
            # every candidate's counts after its merge and their stick terms, at once (recomputed after a merge)
            new = counts.expand(len(ii), K).clone()
            new[rows, ii_t] += counts[jj_t]
            new[rows, jj_t] = 0
            return new, _stick_collapsed(new, alpha, prior_type).tolist()

        all_new, all_stick = merged_counts(counts)
        for p, (g, i, j) in enumerate(zip(gain_z, ii, jj, strict=True)):
            if evaluations >= max_evaluations:
                break
            if i in used or j in used:
                continue
            new_counts, stick_new = all_new[p], all_stick[p]
            pre = g + stick_new - stick_now
            if pre <= 0:
                continue
            evaluations += 1
            dh = entropy.pair(i, j)
            if reduce is not None:
                dh = reduce({"dh": dh})["dh"]
            gain = pre + float(dh)
            if gain > 1e-9 * (abs(stick_now) + 1.0):
                phi[i] = phi[i] + phi[j] - phi0
                phi[j] = phi0
                counts = new_counts.clone()
                stick_now = stick_new
                used.update((i, j))
                n_merges += 1
                all_new, all_stick = merged_counts(counts)
    # reorder the sticks by decreasing size if that raises the bound (Z and H do not depend on the order)
    perm = torch.argsort(counts, descending=True, stable=True)
    if prior_type == "dirichlet_process" and float(_stick_collapsed(counts[perm], alpha)) > float(
            _stick_collapsed(counts, alpha)):
        phi, counts = phi[perm], counts[perm]
    return phi, counts, n_merges


# ---------------------------------------------------------------------- #
# Stochastic natural-gradient VI
# ---------------------------------------------------------------------- #
def snvi_epoch(
    em: ConjugateEmission,
    data: SufficientStatistics,
    phi0: Tensor,
    phi: Tensor,
    sticks: Tensor,
    alpha: float,
    batch_size: int,
    step: int,
    offset: float,
    decay: float,
    generator: torch.Generator | None = None,
    prior_type: str = "dirichlet_process",
    total: float | None = None,
) -> tuple[Tensor, Tensor, int]:
    """
    One epoch of stochastic natural-gradient VI over random minibatches.

    :param int batch_size: minibatch size ``|B|``; statistics are scaled by ``N/|B|``.
    :param int step: number of steps taken before this epoch (for the schedule).
    :param float offset: :math:`\\tau` in :math:`\\rho_t = (t+\\tau)^{-\\kappa}` (``>= 1`` keeps ``rho <= 1``).
    :param float decay: :math:`\\kappa\\in(0.5, 1]`.
    :param torch.Generator generator: CPU generator for the minibatch order.
    :param str prior_type: ``"dirichlet_process"`` (sticks) or ``"dirichlet_distribution"``.
    :param float total: the size ``N`` of the whole data set in the ``N/|B|`` scaling (default ``data.n``:
        ``data`` is all the data; streaming passes the total while ``data`` is one chunk).
    :returns: ``(phi, sticks, step)`` after the epoch.
    """
    n = data.n
    total = float(n) if total is None else float(total)
    perm = torch.randperm(n, generator=generator)
    for idx in perm.split(batch_size):
        T, k = data.batch(idx)
        _, W, const = _log_rho_params(em, phi, sticks, phi.dtype, phi.device)
        R = torch.softmax(torch.addmm(const, T, W), dim=1)
        scale = total / idx.numel()
        counts = scale * R.sum(0)
        target = em.update(phi0, scale * (R.T @ T), counts)
        target_sticks = stick_posterior(counts, alpha, prior_type)
        rho = (step + offset) ** (-decay)
        phi = torch.lerp(phi, target, rho)
        sticks = torch.lerp(sticks, target_sticks, rho)
        step += 1
    return phi, sticks, step
