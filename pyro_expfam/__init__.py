# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
pyro_expfam: exponential-family algebra and overlapping mixtures for Pyro.

The package is three layers, each using only the ones above it:

- **the families**: :mod:`pyro_expfam.distributions` (exponential families with natural parameters and
  normalised products), :mod:`pyro_expfam.conjugate` (their conjugate priors) and :mod:`pyro_expfam.families`
  (the family layer every model uses: data checks, sufficient statistics, default priors, seeding);
- **the models**: :mod:`pyro_expfam.models`, the Pyro model/guide pairs (overlapping mixtures; the DP mixture's
  pair is :mod:`pyro_expfam.mixture.dpmm.model`);
- **the fitting**: :mod:`pyro_expfam.mixture`, the scikit-learn style estimators on the one ``BaseMixture``
  template (``OverlappingMixture``, in :mod:`pyro_expfam.models.overlapping.fit`, uses it too).
"""

__version__ = "0.1.0"

from .torch_patch import patch_torch, patched_torch, unpatch_torch

__all__ = ["__version__", "patch_torch", "patched_torch", "unpatch_torch"]
