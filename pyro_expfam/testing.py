# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Helpers to check an exponential family against ground truth, shipped with the
package (as funsor does) so that a new family can be run through the same
checks as ours.

Example::

    >>> from pyro_expfam.distributions import Gamma
    >>> from pyro_expfam.testing import check_product_contract, log_integral_along_axis
    >>> d = Gamma(torch.tensor([2.0, 3.0]), torch.tensor([1.0, 0.5]))
    >>> grid = torch.linspace(-12, 5, 40001).exp()
    >>> log_z = check_product_contract(d, dim=0)
    >>> torch.allclose(log_z, log_integral_along_axis(d, 0, grid=grid), atol=1e-4)
    True
"""

from __future__ import annotations

import torch
from torch import Tensor

from .distributions.exp_family import ExponentialFamily

__all__ = ["check_product_contract", "log_integral_along_axis"]


def _sum_along(log_p: Tensor, dim: int, batch_rank: int, keepdim: bool) -> Tensor:
    return log_p.sum(dim - batch_rank if dim >= 0 else dim, keepdim=keepdim)


def check_product_contract(
    d: ExponentialFamily,
    dim: int = -1,
    num_samples: int = 6,
    rtol: float = 1e-6,
    atol: float = 1e-6,
) -> Tensor:
    """
    Check Pyro's ``conjugate_update`` contract for ``d.product_along_axis(dim)``:
    ``sum_i log p_i(x) == log p_prod(x) + log Z`` at points ``x`` drawn from the
    product, and return ``log Z`` (of shape ``prod.batch_shape``).

    :param ExponentialFamily d: a batch of distributions of one family.
    :param int dim: the batch dimension to reduce.
    :param int num_samples: number of test points.
    :raises AssertionError: if the contract fails.
    """
    prod, log_z = d._product_with_log_normalizer(dim, keepdim=True)
    x = prod.sample((num_samples,))
    lhs = _sum_along(d.log_prob(x), dim, len(d.batch_shape), keepdim=True)
    torch.testing.assert_close(lhs, prod.log_prob(x) + log_z, rtol=rtol, atol=atol)
    return log_z


def log_integral_along_axis(
    d: torch.distributions.Distribution,
    dim: int = -1,
    grid: Tensor | None = None,
    support: Tensor | None = None,
    keepdim: bool = True,
) -> Tensor:
    r"""
    Ground truth :math:`\log\int\prod_i p_i(x)\,dx` along batch dimension
    ``dim``, by trapezoid quadrature on ``grid`` (scalar continuous families)
    or by exact summation over ``support`` (discrete families; a truncated
    support for infinite ones).

    :param d: a batch of distributions.
    :param int dim: the batch dimension whose factors are multiplied.
    :param Tensor grid: increasing 1-D grid covering the support.
    :param Tensor support: points of shape ``(M,) + event_shape``.
    :param bool keepdim: keep the reduced dimension with size 1.
    """
    if (grid is None) == (support is None):
        raise ValueError("give exactly one of grid or support")
    x = grid if grid is not None else support
    if grid is not None and (grid.dim() != 1 or d.event_shape):
        raise ValueError("quadrature needs a 1-D grid and a scalar event shape")
    points = x.reshape((x.shape[0],) + (1,) * len(d.batch_shape) + x.shape[1:])
    lp = _sum_along(d.log_prob(points), dim, len(d.batch_shape), keepdim).movedim(0, -1)
    if support is not None:
        return lp.logsumexp(-1)
    m = lp.max(-1, keepdim=True).values
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return torch.trapezoid((lp - m).exp(), x).log() + m.squeeze(-1)
