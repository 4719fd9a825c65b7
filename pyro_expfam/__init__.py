# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""pyro_expfam: exponential-family algebra and overlapping mixtures for Pyro."""

__version__ = "0.1.0"

from .torch_patch import patch_torch, patched_torch, unpatch_torch

__all__ = ["__version__", "patch_torch", "patched_torch", "unpatch_torch"]
