# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Well-separated Gaussian blobs, for clustering tests and benchmarks."""

from __future__ import annotations

import torch
from torch import Tensor

from ..util import check_device

__all__ = ["make_blobs"]


def make_blobs(
    n_samples: int,
    n_features: int,
    n_clusters: int = 5,
    cluster_std: float = 1.0,
    separation: float = 10.0,
    random_state: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    return_centers: bool = False,
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
    """
    Isotropic Gaussian blobs whose centres are at least
    ``separation * cluster_std`` apart (so two clusters overlap with
    probability at most :math:`\\Phi(-\\text{separation}/2)` per point), with
    (almost) equal cluster sizes in random order.

    Centres are drawn uniformly in a cube by rejection; the cube grows until
    the separation can be met.

    :param int n_samples: number of points ``N >= n_clusters``.
    :param int n_features: dimension ``D >= 1``.
    :param int n_clusters: number of clusters.
    :param float cluster_std: standard deviation of every coordinate within a cluster.
    :param float separation: minimum distance between centres, in units of ``cluster_std``.
    :param int random_state: seed (default: torch's global generator).
    :param dtype: floating dtype (default ``torch.get_default_dtype()``).
    :param device: device of the returned tensors.
    :param bool return_centers: also return the centres ``(n_clusters, D)``.
    :returns: ``(X, y)`` with ``X`` of shape ``(N, D)`` and labels ``y`` (``int64``), or ``(X, y, centers)``.

    Example::

        >>> from pyro_expfam.datasets.blobs import make_blobs
        >>> X, y = make_blobs(10_000, 2, 5, random_state=0)
        >>> X.shape, y.shape, y.unique().tolist()
        (torch.Size([10000, 2]), torch.Size([10000]), [0, 1, 2, 3, 4])
    """
    for name, v, lo in (("n_samples", n_samples, 1), ("n_features", n_features, 1), ("n_clusters", n_clusters, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} must be >= n_clusters={n_clusters}")
    if not float(cluster_std) > 0 or not float(separation) >= 0:
        raise ValueError("cluster_std must be positive and separation non-negative")
    dtype = dtype or torch.get_default_dtype()
    g = torch.Generator()
    g.manual_seed(random_state if random_state is not None else int(torch.randint(0, 2**62, ())))
    min_dist = separation * cluster_std
    half = max(min_dist, cluster_std) * max(1.0, n_clusters ** (1.0 / n_features))
    centers: list[Tensor] = []
    tries = 0
    while len(centers) < n_clusters:
        c = (2 * torch.rand(n_features, generator=g, dtype=torch.float64) - 1) * half
        if all(float((c - o).norm()) >= min_dist for o in centers):
            centers.append(c)
            tries = 0
        else:
            tries += 1
            if tries > 200:  # the cube is too crowded: grow it
                half *= 1.5
                tries = 0
    C = torch.stack(centers)
    y = torch.arange(n_samples) % n_clusters
    y = y[torch.randperm(n_samples, generator=g)]
    X = C[y] + cluster_std * torch.randn(n_samples, n_features, generator=g, dtype=torch.float64)
    device = check_device(device) if device is not None else None
    X, y, C = X.to(device=device, dtype=dtype), y.to(device), C.to(device=device, dtype=dtype)
    if return_centers:
        return X, y, C
    return X, y

