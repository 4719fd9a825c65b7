# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Scoring recovered overlapping memberships against planted ones."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["match_clusters", "membership_accuracy"]


def match_clusters(Z_true, Z_pred) -> tuple[Tensor, float]:
    """
    Match predicted clusters to true ones (Hungarian algorithm,
    :func:`scipy.optimize.linear_sum_assignment`) minimising the number of
    disagreeing membership entries.

    :param Z_true: true 0/1 memberships ``(N, K_true)``.
    :param Z_pred: predicted 0/1 memberships ``(N, K_pred)`` (any ``K_pred``;
        missing clusters count as empty).
    :returns: ``(perm, accuracy)``: ``perm[k]`` is the predicted column matched
        to true cluster ``k`` (``-1`` if none), ``accuracy`` the fraction of the
        ``N x K_true`` true entries reproduced by the matched columns.
    """
    from scipy.optimize import linear_sum_assignment

    t = torch.as_tensor(Z_true).detach().cpu().to(torch.float64)
    p = torch.as_tensor(Z_pred).detach().cpu().to(torch.float64)
    if t.dim() != 2 or p.dim() != 2 or t.shape[0] != p.shape[0]:
        raise ValueError(f"Z_true and Z_pred must be (N, K) with the same N, got {tuple(t.shape)} and {tuple(p.shape)}")
    k = max(t.shape[1], p.shape[1])
    t_pad = torch.cat([t, t.new_zeros(t.shape[0], k - t.shape[1])], 1)
    p_pad = torch.cat([p, p.new_zeros(p.shape[0], k - p.shape[1])], 1)
    # disagreements[i, j] = sum_n |t_ni - p_nj|
    cost = t_pad.sum(0)[:, None] + p_pad.sum(0)[None, :] - 2 * t_pad.T @ p_pad
    rows, cols = linear_sum_assignment(cost.numpy())
    perm = torch.full((t.shape[1],), -1, dtype=torch.long)
    errors = 0.0
    for r, c in zip(rows, cols, strict=True):
        if r < t.shape[1]:
            perm[r] = int(c) if c < p.shape[1] else -1
            errors += float(cost[r, c])
    return perm, 1.0 - errors / float(np.prod(t.shape))


def membership_accuracy(Z_true, Z_pred) -> float:
    """Fraction of true membership entries recovered after :func:`match_clusters`."""
    return match_clusters(Z_true, Z_pred)[1]
