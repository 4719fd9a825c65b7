# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The Gamma family as a Pyro distribution with natural-parameter algebra."""
from __future__ import annotations

import math
import warnings

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints

from .exp_family import ExponentialFamily

__all__ = ["Gamma"]

_MAX_ITER = 100


def _float_tensors(*xs) -> tuple[Tensor, ...]:
    """
    Convert to tensors of one floating dtype (integers promote to the default
    float dtype) on the device of the first tensor argument, and broadcast.
    """
    ts = [torch.as_tensor(x) for x in xs]
    device = next((x.device for x in xs if isinstance(x, Tensor)), ts[0].device)
    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    ts = [t.to(device=device, dtype=dtype) for t in ts]
    return tuple(torch.broadcast_tensors(*ts))


def _converged(step: Tensor, x: Tensor) -> bool:
    """Relative step below ``sqrt(eps)``: one more Newton step then reaches rounding level."""
    tol = math.sqrt(torch.finfo(x.dtype).eps)
    return bool((step.abs() <= tol * x.abs()).all())


def _inv_digamma(y: Tensor) -> Tensor:
    """
    Inverse of the digamma function on ``(0, inf)`` by Newton's method
    (initialisation from Minka, "Estimating a Dirichlet distribution", App. C).

    :param Tensor y: any finite real values.
    """
    euler = 0.5772156649015329
    with torch.no_grad():
        y0 = y.detach()
        big = y0.clamp(max=math.log(torch.finfo(y.dtype).max) - 1).exp() + 0.5
        x = torch.where(y0 >= -2.22, big, -1.0 / (y0 + euler))
        polish = 0
        for _ in range(_MAX_ITER):
            step = (torch.digamma(x) - y0) / torch.polygamma(1, x)
            x = torch.where(step >= x, 0.5 * x, x - step)  # keep x > 0
            if _converged(step, x):
                polish += 1
                if polish == 2:
                    break
        else:
            warnings.warn("inverse digamma did not converge", RuntimeWarning, stacklevel=2)
    if y.requires_grad:  # one Newton step with autograd gives the implicit-function gradient
        x = x - (torch.digamma(x) - y) / torch.polygamma(1, x)
    return x


def _gamma_shape_from_log_gap(gap: Tensor) -> Tensor:
    r"""
    Solve :math:`\log a - \psi(a) = s` for the Gamma shape :math:`a > 0`, given
    :math:`s = \log E[x] - E[\log x] > 0`, with Minka's generalised Newton
    iteration ("Estimating a Gamma distribution", 2002), which converges in a
    handful of steps from his closed-form start.  The last step is taken with
    autograd enabled so that gradients with respect to ``gap`` are the exact
    implicit-function gradients.

    :param Tensor gap: :math:`s > 0`, any batch shape.
    """

    def update(a: Tensor, s: Tensor) -> Tensor:
        g = torch.log(a) - torch.digamma(a) - s
        return 1.0 / (1.0 / a + g / (a.square() * (1.0 / a - torch.polygamma(1, a))))

    with torch.no_grad():
        s = gap.detach()
        a = (3.0 - s + ((s - 3.0).square() + 24.0 * s).sqrt()) / (12.0 * s)
        polish = 0
        for _ in range(_MAX_ITER):
            new = update(a, s)
            new = torch.where((new > 0) & torch.isfinite(new), new, 0.5 * a)
            step, a = new - a, new
            if _converged(step, a):
                polish += 1
                if polish == 2:
                    break
        else:
            warnings.warn("Gamma shape solver did not converge", RuntimeWarning, stacklevel=3)
    if gap.requires_grad:
        a = update(a, gap)
    return a


#: Warn when rounding the mean parameters to their dtype can change the fitted shape by more than this.
_SHAPE_RTOL = 1e-2


def _gamma_shape(mean_log_x: Tensor, mean_x: Tensor) -> Tensor:
    r"""
    Gamma shape from :math:`E[\log x]` and :math:`E[x]`, solved in float64
    whatever the input dtype and cast back.  The gap
    :math:`\log E[x] - E[\log x] \approx 1/(2a)` is tiny for large shapes,
    so rounding the inputs to float32 can leave it undetermined (shape 1e6 in
    float32: 48% off); a :class:`RuntimeWarning` says so when the rounding of
    the inputs alone can move the shape by more than 1%.
    """
    dtype = mean_x.dtype
    m64, x64 = mean_log_x.to(torch.float64), mean_x.to(torch.float64)
    log_x = torch.log(x64)
    gap = log_x - m64
    if dtype != torch.float64:
        rounding = torch.finfo(dtype).eps * (log_x.abs() + m64.abs())
        if bool((rounding > _SHAPE_RTOL * gap).any()):
            worst = float((rounding / gap).max())
            warnings.warn(
                f"from_mean_parameters: in {dtype} the mean parameters determine the Gamma shape only to a "
                f"relative accuracy of about {worst:.2g} (log E[x] - E[log x] is close to the rounding error of "
                "its terms, i.e. the shape is very large); pass float64 mean parameters for an accurate fit",
                RuntimeWarning,
                stacklevel=3,
            )
    return _gamma_shape_from_log_gap(gap).to(dtype)


def _check_gamma_mean_parameters(mean_log: Tensor, mean_x: Tensor, names: tuple[str, str]) -> None:
    if not bool((torch.isfinite(mean_log) & torch.isfinite(mean_x)).all()):
        raise ValueError(f"from_mean_parameters: {names[0]} and {names[1]} must be finite")
    if not bool((mean_x > 0).all()):
        raise ValueError(f"from_mean_parameters: {names[1]} must be positive")
    if not bool((mean_log < torch.log(mean_x)).all()):
        raise ValueError(
            f"from_mean_parameters: {names[0]} must be < log({names[1]}) (Jensen's inequality, strict for "
            "any non-degenerate distribution); these mean parameters lie outside the mean-parameter space"
        )


class Gamma(ExponentialFamily, dist.Gamma):
    r"""
    ``Gamma(concentration, rate)``, a drop-in replacement for
    :class:`pyro.distributions.Gamma` with natural-parameter algebra.

    Natural parameters (torch's convention):
    :math:`\eta = (\alpha - 1, -\beta)`; sufficient statistics
    :math:`t(x) = (\log x, x)`; log normaliser
    :math:`A(\eta) = \log\Gamma(\eta_1 + 1) - (\eta_1 + 1)\log(-\eta_2)`;
    carrier measure :math:`k(x) = 0`.

    **Products** are exact: :math:`\prod_i \mathrm{Gamma}(\alpha_i, \beta_i)
    \propto \mathrm{Gamma}(\sum_i(\alpha_i - 1) + 1, \sum_i\beta_i)`.  The
    product does not exist (``ValueError``) when the resulting concentration is
    not positive, e.g. for ``Gamma(0.3, 1) * Gamma(0.5, 1)``.

    **Mean parameters** :math:`(E[\log x], E[x]) = (\psi(\alpha) - \log\beta,
    \alpha/\beta)`; the inverse map (maximum likelihood from average sufficient
    statistics) uses Minka's generalised Newton iteration for the shape.

    :param concentration: shape :math:`\alpha > 0`.
    :param rate: rate :math:`\beta > 0`.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Gamma, product
        >>> p = product(Gamma(2.0, 1.0), Gamma(3.0, 0.5))   # shapes add minus 1, rates add
        >>> p.concentration, p.rate
        (tensor(4.), tensor(1.5000))
        >>> d = Gamma.from_mean_parameters(torch.tensor(0.0), torch.tensor(2.0))   # E[log x] = 0, E[x] = 2
        >>> d.concentration, d.rate
        (tensor(0.8496), tensor(0.4248))
    """

    _natural_param_event_dims = (0, 0)
    _natural_param_constraints = (constraints.greater_than(-1.0), constraints.less_than(0.0))

    @classmethod
    def _from_natural_params(cls, eta1: Tensor, eta2: Tensor, **fixed) -> Gamma:
        return cls(eta1 + 1, -eta2, **fixed)

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, Tensor]:
        value, _ = torch.broadcast_tensors(value, self.rate)
        return torch.log(value), value

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        return torch.zeros_like(torch.broadcast_tensors(value, self.rate)[0])

    def mean_parameters(self) -> tuple[Tensor, Tensor]:
        return torch.digamma(self.concentration) - torch.log(self.rate), self.concentration / self.rate

    @classmethod
    def from_mean_parameters(cls, mean_log_x: Tensor, mean_x: Tensor, **fixed) -> Gamma:
        r"""
        The Gamma with :math:`E[\log x] =` ``mean_log_x`` and :math:`E[x] =`
        ``mean_x`` (the maximum-likelihood fit to data with these averages).

        :param Tensor mean_log_x: :math:`E[\log x]`.
        :param Tensor mean_x: :math:`E[x] > 0`.
        :raises ValueError: unless ``mean_log_x < log(mean_x)`` (outside the
            mean-parameter space no Gamma has these moments).
        """
        mean_log_x, mean_x = _float_tensors(mean_log_x, mean_x)
        _check_gamma_mean_parameters(mean_log_x, mean_x, ("mean_log_x", "mean_x"))
        concentration = _gamma_shape(mean_log_x, mean_x)
        return cls(concentration, concentration / mean_x, **fixed)
