# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Synthetic data sets with planted structure, and real data shipped with the package."""

from .blobs import make_blobs
from .overlapping import OverlappingData, make_overlapping_bars, make_overlapping_gaussians
from .votes import HouseVotes, load_house_votes

__all__ = [
    "HouseVotes", "OverlappingData", "load_house_votes", "make_blobs", "make_overlapping_bars",
    "make_overlapping_gaussians",
]
