# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Small numerical helpers for the joint conjugate priors."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def bisect_increasing(
    fn: Callable[[Tensor], Tensor], target: Tensor, lo: float, hi: float, iters: int = 200
) -> Tensor:
    """
    Elementwise solution ``u`` of ``fn(u) == target`` for ``fn`` increasing on
    ``[lo, hi]`` (vectorised bisection; ``iters`` halvings of the bracket).
    Values outside the bracket's image clamp to its ends.

    :param fn: an elementwise increasing function.
    :param Tensor target: right-hand side.
    :param float lo: lower end of the bracket.
    :param float hi: upper end of the bracket.
    :param int iters: number of halvings.
    """
    low = torch.full_like(target, lo)
    high = torch.full_like(target, hi)
    for _ in range(iters):
        mid = 0.5 * (low + high)
        below = fn(mid) < target
        low = torch.where(below, mid, low)
        high = torch.where(below, high, mid)
    return 0.5 * (low + high)


def cholesky_or_raise(matrix: Tensor, what: str) -> Tensor:
    """Lower Cholesky factor, raising :class:`ValueError` naming ``what`` if it is not positive definite."""
    chol, info = torch.linalg.cholesky_ex(matrix)
    if bool(info.ne(0).any()) or not bool(chol.diagonal(dim1=-2, dim2=-1).isfinite().all()):
        raise ValueError(f"{what} must be positive definite")
    return chol


def inverse_scale_tril(precision_tril: Tensor) -> Tensor:
    r"""
    Given the lower Cholesky factor ``C`` of a precision :math:`P = CC^\top`,
    the lower Cholesky factor of :math:`P^{-1}`, computed through the reversal
    permutation :math:`J`: :math:`JPJ = L_f L_f^\top`, :math:`U = J L_f J` is
    upper triangular with :math:`P = UU^\top`, so :math:`P^{-1} = U^{-\top}U^{-1}`
    and the answer is :math:`U^{-\top}` (one Cholesky, one triangular solve).
    """
    precision = precision_tril @ precision_tril.mT
    flipped = cholesky_or_raise(torch.flip(precision, (-2, -1)), "the precision matrix")
    u_t = torch.flip(flipped, (-2, -1)).mT
    eye = torch.eye(precision.shape[-1], dtype=precision.dtype, device=precision.device)
    return torch.linalg.solve_triangular(u_t, eye, upper=False)
