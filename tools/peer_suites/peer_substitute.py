# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
pytest plugin of the peer-suite runner (``tools/peer_suites/run.py``): it puts
pyro_expfam's classes in place of Pyro's or torch's before any test module or
conftest is imported.

Loaded with ``-p peer_substitute`` (``tools/peer_suites`` on ``PYTHONPATH``) and
driven by two environment variables:

- ``PEER_SUITE``: ``pyro`` (replace the names in :mod:`pyro.distributions`,
  which Pyro's tests use as ``dist.Normal``) or ``torch`` (replace the names in
  :mod:`torch.distributions`, which torch's test file imports with
  ``from torch.distributions import Normal, ...``);
- ``PEER_CLASSES``: ``ours`` to substitute, ``theirs`` (the baseline) to leave
  everything as it is.

Every class in ``pyro_expfam.distributions.FAMILIES`` whose name exists in the
target namespace is substituted, so families added later are picked up without
editing this file.
"""

from __future__ import annotations

import os

SUITE = os.environ.get("PEER_SUITE", "")
CLASSES = os.environ.get("PEER_CLASSES", "theirs")
SUBSTITUTED: list[str] = []


def _substitute() -> None:
    import pyro.distributions
    import torch.distributions

    import pyro_expfam.distributions as ours

    namespace = {"pyro": pyro.distributions, "torch": torch.distributions}[SUITE]
    for cls in ours.FAMILIES:
        if hasattr(namespace, cls.__name__):
            setattr(namespace, cls.__name__, cls)
            SUBSTITUTED.append(cls.__name__)


if CLASSES == "ours":
    _substitute()


def pytest_report_header(config) -> str:
    if CLASSES != "ours":
        return f"peer suite {SUITE}: their own classes (baseline)"
    return f"peer suite {SUITE}: pyro_expfam classes substituted for {', '.join(SUBSTITUTED)}"
