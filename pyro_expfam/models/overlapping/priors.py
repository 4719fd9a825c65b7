# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Priors on the membership probabilities :math:`\pi_k` of an overlapping mixture.

Both are written on real-valued sites (logits of Beta variables, see
:class:`~pyro_expfam.models.overlapping.reparam.LogitBeta`), so that the
point-estimate guide is a MAP estimate that exists for every concentration
(``Beta(alpha/K, 1)`` has an infinite density at 0; its logit does not) and the
mean-field guide is a Normal on each site.

- :class:`FiniteBetaPrior`: :math:`\pi_k \sim \mathrm{Beta}(\alpha/K, 1)`
  independently, the finite model whose ``K -> infinity`` limit is the Indian
  buffet process; site ``"pi_logit"`` holds :math:`\operatorname{logit}\pi_k`.
- :class:`IBPPrior`: the Indian buffet process by stick-breaking (Teh, Görür &
  Ghahramani 2007), :math:`v_k \sim \mathrm{Beta}(\alpha, 1)`,
  :math:`\pi_k = \prod_{j\le k} v_j`, **truncated at** ``K`` **sticks**: the
  clusters beyond ``K`` are dropped, which changes the model by at most the
  prior mass of a point joining cluster ``K+1``, :math:`E[\pi_{K+1}] =
  (\alpha/(1+\alpha))^{K+1}` per point.  Site ``"v_logit"`` holds
  :math:`\operatorname{logit} v_k`.
"""

from __future__ import annotations

import math

import pyro
import torch
import torch.nn.functional as F
from torch import Tensor

from .reparam import LogitBeta

__all__ = ["FiniteBetaPrior", "IBPPrior", "MembershipPrior"]


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    return float(alpha)


class MembershipPrior:
    """
    Base class of priors on the membership probabilities.

    :param float alpha: concentration (expected number of clusters per data
        point in the ``K -> infinity`` limit).
    """

    #: name of the single real-valued site, shape ``(K,)``
    site: str = ""

    def __init__(self, alpha: float = 1.0):
        self.alpha = _check_alpha(alpha)

    def sites(self, num_clusters: int) -> dict[str, torch.Size]:
        """Global sites and their event shapes."""
        return {self.site: torch.Size([num_clusters])}

    def prior(self, num_clusters: int, like: Tensor) -> LogitBeta:
        """The prior of the site, on the device and dtype of ``like``."""
        raise NotImplementedError

    def sample(self, num_clusters: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """
        Sample the site (a ``pyro.sample`` statement) and return
        :math:`(\\log\\pi, \\log(1-\\pi))`, each of shape ``batch + (K,)``.
        """
        value = pyro.sample(self.site, self.prior(num_clusters, like).to_event(1))
        return self.log_probs(value)

    def log_probs(self, value: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`(\\log\\pi, \\log(1-\\pi))` from the site's value."""
        raise NotImplementedError

    def init_value(self, pi: Tensor) -> Tensor:
        """Site value giving membership probabilities ``pi`` (shape ``(K,)``, in (0, 1))."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"


class FiniteBetaPrior(MembershipPrior):
    r"""
    Finite model :math:`\pi_k \sim \mathrm{Beta}(\alpha/K, 1)`, on the site
    ``"pi_logit"`` :math:`= \operatorname{logit}\pi_k`.

    :param float alpha: concentration.
    """

    site = "pi_logit"

    def prior(self, num_clusters: int, like: Tensor) -> LogitBeta:
        a = like.new_full((num_clusters,), self.alpha / num_clusters)
        return LogitBeta(a, torch.ones_like(a))

    def log_probs(self, value: Tensor) -> tuple[Tensor, Tensor]:
        return F.logsigmoid(value), F.logsigmoid(-value)

    def init_value(self, pi: Tensor) -> Tensor:
        return torch.logit(pi)


class IBPPrior(MembershipPrior):
    r"""
    Indian buffet process by stick-breaking, truncated at ``K`` sticks:
    :math:`v_k \sim \mathrm{Beta}(\alpha, 1)`, :math:`\pi_k = \prod_{j\le k} v_j`,
    on the site ``"v_logit"`` :math:`= \operatorname{logit} v_k`.

    The membership probabilities decrease with ``k``; the truncation drops
    clusters whose prior probability :math:`E[\pi_{K+1}] = (\alpha/(1+\alpha))^{K+1}`
    is below the truncation level (choose ``K`` so that it is negligible, e.g.
    ``K >= 3 * expected number of clusters``).

    :param float alpha: concentration.
    """

    site = "v_logit"

    def prior(self, num_clusters: int, like: Tensor) -> LogitBeta:
        a = like.new_full((num_clusters,), self.alpha)
        return LogitBeta(a, torch.ones_like(a))

    def log_probs(self, value: Tensor) -> tuple[Tensor, Tensor]:
        log_pi = F.logsigmoid(value).cumsum(-1)
        tiny = torch.finfo(log_pi.dtype).tiny
        log1m_pi = torch.log(-torch.expm1(log_pi.clamp(max=-tiny)))
        return log_pi, log1m_pi

    def init_value(self, pi: Tensor) -> Tensor:
        pi = pi.sort(descending=True).values
        log_pi = pi.log()
        log_v = torch.cat([log_pi[:1], log_pi[1:] - log_pi[:-1]])
        v = log_v.exp().clamp(1e-4, 1 - 1e-4)
        return torch.logit(v)
