# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Synthetic data sets with planted structure, for tests, benchmarks and tutorials."""

from .blobs import make_blobs
from .overlapping import OverlappingData, make_overlapping_bars, make_overlapping_gaussians

__all__ = ["OverlappingData", "make_blobs", "make_overlapping_bars", "make_overlapping_gaussians"]
