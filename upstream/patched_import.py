# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Import ``torch.distributions`` from a patched copy, leaving the installed torch
untouched: used by ``tests/test_upstream_patches.py`` and by the peer-suite
runner (``tools/peer_suites``) to run tests on torch with the series applied.

``install(root)`` must run before ``import torch``: it puts an import hook first
on ``sys.meta_path`` that resolves ``torch.distributions`` and its submodules to
``root/torch/distributions``; every other torch module comes from the
installed torch.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys


class _PatchedDistributions(importlib.abc.MetaPathFinder):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def find_spec(self, name, path, target=None):
        if name != "torch.distributions" and not name.startswith("torch.distributions."):
            return None
        base = os.path.join(self.root, *name.split("."))
        if os.path.isdir(base):
            init = os.path.join(base, "__init__.py")
            return importlib.util.spec_from_file_location(name, init, submodule_search_locations=[base])
        if os.path.exists(base + ".py"):
            return importlib.util.spec_from_file_location(name, base + ".py")
        return None


def install(root: str) -> None:
    """
    Resolve ``torch.distributions`` to ``root/torch/distributions`` and import torch.

    :param str root: a directory holding ``torch/distributions`` (the patched copy).
    :raises RuntimeError: if torch was imported before (its distributions would be the installed ones).
    """
    if "torch" in sys.modules:
        raise RuntimeError("install() must run before torch is imported")
    sys.meta_path.insert(0, _PatchedDistributions(root))
    import torch

    if not torch.distributions.__file__.startswith(os.path.abspath(root)):
        raise RuntimeError(f"torch.distributions was imported from {torch.distributions.__file__}")
