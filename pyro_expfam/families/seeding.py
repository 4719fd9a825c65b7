# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Initialisation (seeding) shared by the models.

- :func:`kmeans_pp_indices`: plain k-means++ seeding (one candidate per centre), row indices far apart; the
  overlapping model seeds its clusters at these points.
- :func:`initial_responsibilities`: scikit-learn's initialisations (``"kmeans"``, ``"k-means++"``, ``"random"``,
  ``"random_from_data"``) as responsibilities, by :mod:`pyro_expfam.mixture.init`'s blocked k-means.
- :func:`standardized_features`: the space a family's k-means start runs in, its sufficient statistics of
  vector rank, standardised per column.

The models call these through the module (``seeding.initial_responsibilities(...)``), so there is one place to
change, or to instrument, the seeding of every model.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["initial_responsibilities", "kmeans_pp_indices", "standardized_features"]


def kmeans_pp_indices(x: Tensor, num: int, generator: torch.Generator | None = None) -> Tensor:
    """
    k-means++ seeding (Arthur & Vassilvitskii, one candidate per centre): ``num`` row indices of ``x``, each new
    one drawn with probability proportional to the squared distance to the nearest chosen row (uniformly if all
    distances are zero).  Runs in float64 on the CPU, so the draws do not depend on the data's device or dtype.

    :param Tensor x: data ``(N, ...)`` (flattened per row).
    :param int num: number of indices (may exceed the number of distinct rows).
    :param torch.Generator generator: CPU generator of the draws.
    :rtype: Tensor of ``int64`` indices, shape ``(num,)``.

    >>> x = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
    >>> idx = kmeans_pp_indices(x, 2, torch.Generator().manual_seed(0))
    >>> sorted(int(i) // 2 for i in idx)  # one seed in each group
    [0, 1]
    """
    x = x.reshape(x.shape[0], -1).to(torch.float64).cpu()
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=generator)
    chosen = [int(first)]
    d2 = (x - x[first]).square().sum(-1)
    for _ in range(1, num):
        w = d2.clamp(min=0)
        idx = (
            torch.multinomial(w / w.sum(), 1, generator=generator)
            if bool(w.sum() > 0)
            else torch.randint(n, (1,), generator=generator)
        )
        chosen.append(int(idx))
        d2 = torch.minimum(d2, (x - x[idx]).square().sum(-1))
    return torch.tensor(chosen)


def initial_responsibilities(X: Tensor, n_components: int, method: str = "kmeans",
                             generator: torch.Generator | None = None) -> Tensor:
    """
    Initial responsibilities ``(N, K)`` by ``method`` (scikit-learn's names), computed in the space ``X`` (for a
    family: :func:`standardized_features` or the centred data).

    :param Tensor X: features ``(N, F)``, floating.
    :param int n_components: ``K <= N``.
    :param str method: ``"kmeans"``, ``"k-means++"``, ``"random"`` or ``"random_from_data"``.
    :param torch.Generator generator: CPU generator of the draws.

    >>> X = torch.tensor([[0.0], [0.1], [10.0], [10.1]], dtype=torch.float64)
    >>> r = initial_responsibilities(X, 2, "kmeans", torch.Generator().manual_seed(0))
    >>> bool(r[0].argmax() == r[1].argmax() != r[2].argmax() == r[3].argmax())
    True
    """
    from ..mixture import init  # the blocked k-means; imported here: the mixture package imports this layer

    return init.initial_responsibilities(X, n_components, method, generator)


def standardized_features(stats: list[Tensor], ranks: tuple[int, ...]) -> Tensor:
    """
    The space a family's k-means start runs in: the flattened sufficient statistics whose natural parameters
    are scalars or vectors (matrix statistics such as ``x x^T`` dropped unless there is nothing else), each
    column centred and scaled to unit standard deviation (constant columns only centred).

    :param list stats: flattened statistics ``[(N, T_j)]``.
    :param tuple ranks: event rank of each natural parameter.

    >>> x = torch.tensor([[1.0], [2.0], [3.0]])
    >>> standardized_features([x, x.square()], (0, 0))
    tensor([[-1.0000, -0.9073],
            [ 0.0000, -0.1650],
            [ 1.0000,  1.0722]])
    """
    cols = [t for t, r in zip(stats, ranks, strict=True) if r <= 1] or stats
    F = torch.cat(cols, 1)
    std = F.std(0) if F.shape[0] > 1 else torch.ones_like(F[0])
    return (F - F.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))
