# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Wishart family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math
import warnings

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily
from .multivariate_normal import _cholesky_or_raise, negative_definite

__all__ = ["Wishart"]

_LOG_2 = math.log(2.0)


def _mvdigamma(a: Tensor, p: int) -> Tensor:
    r"""Multivariate digamma :math:`\psi_p(a) = \sum_{i=0}^{p-1}\psi(a - i/2)`."""
    offsets = torch.arange(p, dtype=a.dtype, device=a.device) / 2
    return torch.digamma(a.unsqueeze(-1) - offsets).sum(-1)


def _mvtrigamma(a: Tensor, p: int) -> Tensor:
    r""":math:`\psi_p'(a) = \sum_{i=0}^{p-1}\psi'(a - i/2)`."""
    offsets = torch.arange(p, dtype=a.dtype, device=a.device) / 2
    return torch.polygamma(1, a.unsqueeze(-1) - offsets).sum(-1)


def _half_df_from_gap(gap: Tensor, p: int, max_iter: int = 100) -> Tensor:
    r"""
    Solve :math:`g(a) = \psi_p(a) - p\log a = c` for :math:`a > (p-1)/2`, with
    ``gap`` :math:`= c < 0`.

    :math:`g` increases strictly from :math:`-\infty` (at :math:`a = (p-1)/2`)
    to :math:`0` (as :math:`a\to\infty`), since :math:`\psi'(x) > 1/x`, so the
    root is unique.  Newton's method, vectorised over the batch and safeguarded
    by bisection on a bracket; the initial guess comes from
    :math:`g(a) \approx -p(p+1)/(4a)`.  Runs without gradients; the caller adds
    one differentiable Newton step.
    """
    lo = torch.full_like(gap, (p - 1) / 2)
    a = torch.clamp(-p * (p + 1) / (4 * gap), min=(p - 1) / 2 + 0.5)
    hi = a.clone()
    # grow the upper end of the bracket until g(hi) >= c (terminates since g -> 0 > c)
    for _ in range(max_iter):
        below = (_mvdigamma(hi, p) - p * torch.log(hi)) < gap
        if not bool(below.any()):
            break
        lo = torch.where(below, hi, lo)
        hi = torch.where(below, 2 * hi, hi)
    a = torch.minimum(a, hi)
    tol = 16 * torch.finfo(gap.dtype).eps
    for _ in range(max_iter):
        f = _mvdigamma(a, p) - p * torch.log(a) - gap
        lo = torch.where(f < 0, a, lo)
        hi = torch.where(f > 0, a, hi)
        step = f / (_mvtrigamma(a, p) - p / a)
        new = a - step
        outside = ~((new > lo) & (new < hi))
        new = torch.where(outside, (lo + hi) / 2, new)
        done = bool(((new - a).abs() <= tol * a).all())
        a = new
        if done:
            break
    return a


class Wishart(ExponentialFamily, dist.Wishart):
    r"""
    ``Wishart(df, covariance_matrix=None, precision_matrix=None, scale_tril=None)``,
    a drop-in replacement for :class:`pyro.distributions.Wishart` with
    natural-parameter algebra; the scale matrix :math:`V` is the
    ``covariance_matrix``.

    Natural parameters (torch's): :math:`\eta = (-V^{-1}/2, (\nu-p-1)/2)` of
    event ranks 2 and 0; sufficient statistics :math:`t(X) = (X, \log|X|)`;
    log normaliser :math:`A = \tfrac\nu2(\log|V| + p\log 2) + \log\Gamma_p(\nu/2)`;
    carrier measure :math:`k(X) = 0`.  Products are exact: precisions
    :math:`V^{-1}` add and :math:`\nu_\text{prod} = \sum_i\nu_i - (n-1)(p+1)`.
    The natural parameter space is :math:`\eta_1` negative definite and
    :math:`\eta_2 > -1` (i.e. :math:`\nu > p - 1`).

    :param df: degrees of freedom :math:`\nu > p - 1` (number or tensor
        broadcastable to ``batch_shape``).
    :param Tensor covariance_matrix: positive-definite scale matrix :math:`V`.
    :param Tensor precision_matrix: positive-definite :math:`V^{-1}`.
    :param Tensor scale_tril: lower Cholesky factor of :math:`V`.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Wishart
        >>> d = Wishart(torch.tensor([5.0, 6.0]), torch.eye(2).expand(2, 2, 2))
        >>> d.product_along_axis(-1).df   # 5 + 6 - (2 + 1)
        tensor([8.])
    """

    _natural_param_event_dims = (2, 0)
    _natural_param_constraints = (negative_definite, constraints.greater_than(-1.0))
    _natural_param_descriptions = (None, "eta2 = (df - p - 1) / 2 > -1, i.e. df > p - 1")
    _mean_carrier_measure = 0

    def _log_normalizer(self, eta1: Tensor, eta2: Tensor) -> Tensor:
        p = eta1.shape[-1]
        precision = -(eta1 + eta1.mT)
        chol = _cholesky_or_raise(precision, "the precision matrix (-2 * eta1)")
        if not bool((eta2 > -1).all()):
            raise ValueError("Wishart natural parameter eta2 = (df - p - 1) / 2 must be > -1")
        half_df = eta2 + (p + 1) / 2
        logdet_cov = -2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return half_df * (logdet_cov + p * _LOG_2) + torch.mvlgamma(half_df, p=p)

    def rsample(self, sample_shape: tuple[int, ...] = (), max_try_correction: int | None = None) -> Tensor:
        """
        Bartlett-decomposition sample, as torch's ``Wishart.rsample``, except
        that only samples that are numerically singular are redrawn (torch's
        version, up to at least 2.13, inverts that test: it warns "Singular
        sample detected" on every call and draws everything twice;
        pytorch/pytorch#122021).  Redrawing conditions on non-singularity,
        which matters only for df close to ``p - 1``.

        :param torch.Size sample_shape: sample shape.
        :param int max_try_correction: how many times singular samples are
            redrawn (default 10); a warning is raised if some remain singular.
        """
        if max_try_correction is None:
            max_try_correction = 10
        sample_shape = torch.Size(sample_shape)
        sample = self._bartlett_sampling(sample_shape)
        singular = ~self.support.check(sample)
        for _ in range(max_try_correction):
            if not bool(singular.any()):
                break
            fresh = self._bartlett_sampling(sample_shape)
            sample = torch.where(singular[..., None, None], fresh, sample)
            singular = ~self.support.check(sample)
        if bool(singular.any()):
            warnings.warn("Wishart.rsample: singular samples remain; consider a larger df", stacklevel=2)
        return sample

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, **fixed) -> Wishart:
        r"""
        Build ``Wishart`` from :math:`(-V^{-1}/2, (\nu-p-1)/2)`, through
        ``precision_matrix`` (no inverse of :math:`V^{-1}` is formed).

        :param Tensor eta1: minus half the precision, shape ``batch_shape + (p, p)``
            (symmetrised before use).
        :param Tensor eta2: :math:`(\nu-p-1)/2`, shape ``batch_shape``.
        :raises ValueError: if :math:`-2\eta_1` is not positive definite or
            :math:`\nu \le p - 1`.
        """
        p = eta1.shape[-1]
        precision = -(eta1 + eta1.mT)
        _cholesky_or_raise(precision, "the precision matrix (-2 * eta1)")
        eta2 = torch.as_tensor(eta2, dtype=eta1.dtype, device=eta1.device)
        df = 2 * eta2 + (p + 1)
        if not bool((df > p - 1).all()):
            raise ValueError(f"Wishart: df = 2 * eta2 + p + 1 must be greater than p - 1 = {p - 1}")
        return cls(df, precision_matrix=precision, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        r"""
        :math:`t(X) = (X, \log|X|)`.

        :param Tensor value: positive-definite matrices of shape
            ``sample_shape + batch_shape + (p, p)``.
        """
        value, _ = torch.broadcast_tensors(value, self.scale_tril)
        return value, torch.linalg.slogdet(value).logabsdet

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        """
        :math:`k(X) = 0`.

        :param Tensor value: matrices of shape ``sample_shape + batch_shape + (p, p)``.
        """
        return torch.zeros_like(torch.broadcast_tensors(value, self.scale_tril)[0][..., 0, 0])

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        r""":math:`(E[X], E[\log|X|]) = (\nu V, \psi_p(\nu/2) + p\log 2 + \log|V|)`."""
        p = self.event_shape[-1]
        logdet_cov = 2 * self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        mean_logdet = _mvdigamma(self.df / 2, p) + p * _LOG_2 + logdet_cov
        return self.mean, mean_logdet.expand(self.batch_shape)

    @classmethod
    def from_mean_parameters(cls, mean_X: Tensor, mean_logdet: Tensor, **fixed) -> Wishart:
        r"""
        The Wishart with :math:`E[X] = ` ``mean_X`` and
        :math:`E[\log|X|] = ` ``mean_logdet`` (the maximum likelihood estimate
        from average sufficient statistics).

        With :math:`M = E[X] = \nu V`, the second condition reads
        :math:`\psi_p(\nu/2) - p\log(\nu/2) = E[\log|X|] - \log|M|`, solved
        for :math:`\nu` by a safeguarded scalar Newton iteration over the
        batch; then :math:`V = M/\nu`.  By Jensen's inequality the right-hand
        side must be negative.  Gradients flow through the solution by the
        implicit function theorem.

        :param Tensor mean_X: positive-definite :math:`E[X]`, shape ``batch_shape + (p, p)``.
        :param Tensor mean_logdet: :math:`E[\log|X|]`, shape ``batch_shape``.
        :raises ValueError: if ``mean_X`` is not positive definite or
            ``mean_logdet >= logdet(mean_X)``.
        """
        mean_X = torch.as_tensor(mean_X)
        mean_logdet = torch.as_tensor(mean_logdet, dtype=mean_X.dtype, device=mean_X.device)
        if mean_X.dim() < 2 or mean_X.shape[-1] != mean_X.shape[-2]:
            raise ValueError(f"mean_X must have shape batch_shape + (p, p), got {tuple(mean_X.shape)}")
        p = mean_X.shape[-1]
        mean_X = (mean_X + mean_X.mT) / 2
        chol = _cholesky_or_raise(mean_X, "from_mean_parameters: mean_X")
        logdet_mean = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        gap = mean_logdet - logdet_mean
        if not bool((gap < 0).all()):
            raise ValueError(
                "from_mean_parameters: mean_logdet must be smaller than logdet(mean_X) (Jensen's inequality)"
            )
        with torch.no_grad():
            half_df = _half_df_from_gap(gap.detach(), p)
        # one differentiable Newton step: exact value at the root, implicit-function gradient
        f = _mvdigamma(half_df, p) - p * torch.log(half_df) - gap
        half_df = half_df - f / (_mvtrigamma(half_df, p) - p / half_df)
        df = 2 * half_df
        batch_shape = torch.broadcast_shapes(df.shape, chol.shape[:-2])
        df = df.expand(batch_shape)
        scale_tril = chol * df.rsqrt()[..., None, None]
        return cls(df, scale_tril=scale_tril, **fixed)
