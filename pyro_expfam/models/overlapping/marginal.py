# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The marginal likelihood of an overlapping mixture with the membership sets
summed out: blocked, fused ``GEMM + logsumexp`` kernels that never store the
``N x S`` matrix, and :class:`OverlapMarginal`, the observation site of
:meth:`~pyro_expfam.models.overlapping.model.OverlappingMixtureModel.marginal_model`.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .likelihood import ExpFamLayout, MembershipSets, OverlapLikelihood, membership_sets, set_log_prior

__all__ = ["OverlapMarginal", "logsumexp_matmul", "logsumexp_outer"]


#: Arguments of ``exp`` are clamped below at this value (relative to the row maximum): ``exp`` of
#: float32 arguments below -87 gives subnormal numbers, ~10x slower on CPU, and the terms dropped are
#: below ``S * e^-80 < 1e-29`` relative to the sum for any ``S <= 2^16``.
_EXP_FLOOR = -80.0


def _block_rows(num_sets: int, device: torch.device) -> int:
    # CPU: blocks that stay in cache (~1 MiB); GPU: large blocks (~256 MiB in float32)
    budget = 2**26 if device.type == "cuda" else 2**18
    return max(1, budget // max(num_sets, 1))


class _LogSumExpMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, stats: Tensor, eta: Tensor) -> Tensor:
        rows = _block_rows(eta.shape[0], stats.device)
        out = stats.new_empty(stats.shape[0])
        eta_t = eta.T
        for start in range(0, stats.shape[0], rows):
            block = stats[start : start + rows] @ eta_t
            shift = block.amax(-1)
            total = block.sub_(shift[:, None]).clamp_(min=_EXP_FLOOR).exp_().sum(-1)
            out[start : start + rows] = total.log_().add_(shift)
        ctx.save_for_backward(stats, eta, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        stats, eta, out = ctx.saved_tensors
        rows = _block_rows(eta.shape[0], stats.device)
        need_stats, need_eta = ctx.needs_input_grad[:2]
        grad_stats = torch.empty_like(stats) if need_stats else None
        grad_eta = torch.zeros_like(eta) if need_eta else None
        eta_t = eta.T
        for start in range(0, stats.shape[0], rows):
            block = stats[start : start + rows]
            weights = (block @ eta_t).sub_(out[start : start + rows, None]).clamp_(min=_EXP_FLOOR).exp_()
            weights.mul_(grad[start : start + rows, None])
            if need_eta:
                grad_eta.addmm_(weights.T, block)
            if need_stats:
                grad_stats[start : start + rows] = weights @ eta
        return grad_stats, grad_eta


def logsumexp_matmul(stats: Tensor, eta: Tensor) -> Tensor:
    r"""
    :math:`\log\sum_s \exp(\text{stats} @ \text{eta}^\top)_{ns}` without
    materialising the ``(N, S)`` matrix: computed in row blocks that stay in
    cache, recomputed in the backward pass (a GEMM with a small inner dimension
    is cheaper than storing and re-reading ``N x S`` numbers).

    :param Tensor stats: ``(N, T)``.
    :param Tensor eta: ``(S, T)``, or with leading batch dimensions (then the
        plain broadcast formula is used).
    :returns: ``(N,)`` (or ``batch + (N,)``).
    """
    if stats.dim() == 2 and eta.dim() == 2:
        return _LogSumExpMatmul.apply(stats, eta)
    return torch.logsumexp(stats @ eta.mT, -1)


class _LogSumExpOuter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g_hi: Tensor, g_lo: Tensor, c: Tensor) -> Tensor:
        n, s_hi, s_lo = g_hi.shape[0], c.shape[0], c.shape[1]
        rows = min(n, _block_rows(c.numel(), g_hi.device))
        out = g_hi.new_empty(n)
        buf = g_hi.new_empty(rows, s_hi, s_lo)  # one reused block: no allocation (page faults) per block
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            block = torch.add(g_hi[start:stop, :, None], g_lo[start:stop, None, :], out=buf[: stop - start])
            block.add_(c)
            shift = block.amax((1, 2))
            total = block.sub_(shift[:, None, None]).clamp_(min=_EXP_FLOOR).exp_().sum((1, 2))
            out[start:stop] = total.log_().add_(shift)
        ctx.save_for_backward(g_hi, g_lo, c, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        g_hi, g_lo, c, out = ctx.saved_tensors
        n, s_hi, s_lo = g_hi.shape[0], c.shape[0], c.shape[1]
        rows = min(n, _block_rows(c.numel(), g_hi.device))
        grad_hi, grad_lo, grad_c = torch.empty_like(g_hi), torch.empty_like(g_lo), torch.zeros_like(c)
        flat_c = grad_c.view(-1)
        buf = g_hi.new_empty(rows, s_hi, s_lo)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            # softmax weights exp(L - lse), the shift folded into the small (rows, S_hi) factor
            shifted = (g_hi[start:stop] - out[start:stop, None])[:, :, None]
            block = torch.add(shifted, g_lo[start:stop, None, :], out=buf[: stop - start]).add_(c)
            block.clamp_(min=_EXP_FLOOR).exp_()
            g = grad[start:stop]
            grad_hi[start:stop] = block.sum(2).mul_(g[:, None])
            grad_lo[start:stop] = block.sum(1).mul_(g[:, None])
            flat_c.addmv_(block.view(stop - start, -1).T, g)
        return grad_hi, grad_lo, grad_c


def logsumexp_outer(g_hi: Tensor, g_lo: Tensor, c: Tensor) -> Tensor:
    r"""
    :math:`\log\sum_{h,l}\exp(g^{hi}_{nh} + g^{lo}_{nl} + c_{hl})`, blocked
    over rows and recomputed in the backward pass (nothing of size
    ``N x S`` is stored).

    With all ``2^K`` membership sets split into a high and a low half of the
    clusters, :math:`\langle\eta(s), t(x_n)\rangle` is the sum of two small
    GEMMs ``(N x T) @ (T x 2^{K/2})``; only the non-linear part
    :math:`c_s = -A(\eta(s)) + \log p(s)` needs all ``S`` sets, and it does
    not depend on ``n``.  Cost per (point, set): two additions and one ``exp``
    whatever the size ``T`` of the sufficient statistics.

    :param Tensor g_hi: ``(N, S_hi)``.
    :param Tensor g_lo: ``(N, S_lo)``.
    :param Tensor c: ``(S_hi, S_lo)``.
    :returns: ``(N,)``.
    """
    return _LogSumExpOuter.apply(g_hi, g_lo, c)


class OverlapMarginal(dist.TorchDistribution):
    r"""
    The likelihood of a data point with its membership set summed out over the
    enumerated sets: :math:`\log\sum_s p(z=s)\,p(x\mid s)`, computed as
    ``logsumexp`` of one GEMM whose last column carries
    :math:`-A(\eta(s)) + \log p(z=s)` (see :func:`logsumexp_matmul`).

    This is the same marginal that ``TraceEnum_ELBO`` computes by enumerating
    :class:`MembershipSets`, without the enumerated site (so it works with
    ``Trace_ELBO`` and costs less), used for fitting.

    :param Tensor log_pi: :math:`\log\pi_k`, shape ``(K,)`` (or ``batch + (K,)``).
    :param Tensor log1m_pi: :math:`\log(1-\pi_k)`.
    :param Tensor eta0: flattened background natural parameter ``(T,)``.
    :param Tensor eta_k: flattened cluster natural parameters ``(K, T)``
        (or ``batch + (K, T)``), carrier shift included.
    :param Tensor sets: enumerated membership sets ``(S, K)``.
    :param ExpFamLayout layout: the family.
    :param bool renormalize: renormalise the membership prior over the enumerated sets (see
        :func:`~pyro_expfam.models.overlapping.likelihood.set_log_prior`).
    """

    arg_constraints = {}

    def __init__(
        self, log_pi, log1m_pi, eta0, eta_k, sets, layout: ExpFamLayout, batch_shape=None, renormalize: bool = False
    ):
        self.log_pi, self.log1m_pi, self.eta0, self.eta_k = log_pi, log1m_pi, eta0, eta_k
        self.sets, self.layout, self.renormalize = sets, layout, renormalize
        if batch_shape is None:
            batch_shape = torch.broadcast_shapes(log_pi.shape[:-1], eta_k.shape[:-2])
        super().__init__(torch.Size(batch_shape), layout.event_shape, validate_args=False)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(OverlapMarginal, _instance)
        keys = ("log_pi", "log1m_pi", "eta0", "eta_k", "sets", "layout", "renormalize")
        new.__dict__.update({k: getattr(self, k) for k in keys})
        super(OverlapMarginal, new).__init__(torch.Size(batch_shape), self.event_shape, validate_args=False)
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.independent(self.layout.template.support, len(self.layout.feature_shape))

    def log_prob(self, value: Tensor) -> Tensor:
        stats = self.layout.statistics(value)
        sets = self.sets.to(self.eta_k.dtype)
        eta_s = self.eta0 + sets @ self.eta_k  # batch + (S, T)
        if self.layout.validate_sets:
            self.layout.check_natural(eta_s)
        log_prior = set_log_prior(self.log_pi, self.log1m_pi, sets, self.renormalize)
        c = log_prior - self.layout.log_normalizer(eta_s)  # batch + (S,)
        k = self.sets.shape[-1]
        if stats.dim() == 2 and c.dim() == 1 and k >= 2 and sets.shape[0] == 2**k:
            # all 2^K sets in binary order: s = h * 2^k_lo + l with l the low clusters
            k_lo = (k + 1) // 2
            zeros = stats.new_zeros(1)
            eta_lo = self.eta0 + membership_sets(k_lo, dtype=sets.dtype, device=sets.device) @ self.eta_k[:k_lo]
            eta_hi = membership_sets(k - k_lo, dtype=sets.dtype, device=sets.device) @ self.eta_k[k_lo:]
            ones = torch.ones_like(eta_lo[:, :1])
            eta_lo = torch.cat([eta_lo, ones, zeros.expand_as(ones)], -1)
            eta_hi = torch.cat([eta_hi, zeros.expand(eta_hi.shape[0], 2)], -1)
            lp = logsumexp_outer(stats @ eta_hi.T, stats @ eta_lo.T, c.reshape(2 ** (k - k_lo), 2**k_lo))
        else:
            ones = torch.ones_like(c).unsqueeze(-1)
            eta = torch.cat([eta_s, ones, c.unsqueeze(-1)], -1)
            if eta.dim() > 2 and eta.shape[-3] == 1:
                # batch dims of the globals end with the (broadcast) data dim: (..., 1, S, T)
                eta = eta.squeeze(-3)
            lp = logsumexp_matmul(stats, eta)
        return lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))

    def sample(self, sample_shape=torch.Size()):
        log_prior = set_log_prior(self.log_pi, self.log1m_pi, self.sets, self.renormalize)
        prior = MembershipSets(logits=log_prior, sets=self.sets).expand(self.batch_shape)
        index = prior.sample(sample_shape)
        return OverlapLikelihood(index, self.sets, self.eta0, self.eta_k, self.layout).sample()
