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
  :mod:`torch.distributions` while torch's test file imports them with
  ``from torch.distributions import Normal, ...``, and restore them after
  collection);
- ``PEER_CLASSES``: ``ours`` to substitute, ``theirs`` (the baseline) to leave
  everything as it is, ``pyro`` (torch suite only) to substitute Pyro's classes
  of the same names: the second baseline of a drop-in replacement for Pyro's;
  ``patched`` (torch suite only) to import torch with the upstream series
  applied: ``torch.distributions`` from the copy in ``PEER_PATCHED_TORCH``.

Every class in ``pyro_expfam.distributions.FAMILIES`` whose name exists in the
target namespace is substituted, so families added later are picked up without
editing this file.  For the Pyro suite the name is also replaced in the modules
of ``pyro.distributions`` that imported Pyro's class (see ``_substitute``).
"""

from __future__ import annotations

import os

SUITE = os.environ.get("PEER_SUITE", "")
CLASSES = os.environ.get("PEER_CLASSES", "theirs")
SUBSTITUTED: list[str] = []
#: (module, name, torch's class) to put back once torch's test module has imported ours
_RESTORE: list[tuple[object, str, type]] = []


def _substitute(replacements: list[type]) -> None:
    import sys

    import pyro.distributions
    import torch.distributions

    namespace = {"pyro": pyro.distributions, "torch": torch.distributions}[SUITE]
    # Pyro's own modules build distributions with the names they imported (hmm.py's
    # ``from pyro.distributions.torch import Categorical``): for the Pyro suite the name is
    # replaced in every module of pyro.distributions that holds Pyro's class, so that Pyro
    # builds ours too (DiscreteHMM.filter returns our Categorical).  For the torch suite the
    # names in torch.distributions are ours only while the test module is imported (it binds
    # them with ``from torch.distributions import ...``) and are put back after collection:
    # Pyro's classes look torch's up at run time (pyro's LogNormal calls
    # ``super(torch.distributions.LogNormal, self).__init__``), which ours must not shadow.
    modules = [namespace]
    if SUITE == "pyro":
        modules += [m for n, m in list(sys.modules.items()) if n.startswith("pyro.distributions.") and m is not None]
    for cls in replacements:
        theirs = getattr(namespace, cls.__name__, None)
        if theirs is None:
            continue
        for module in modules:
            if module.__dict__.get(cls.__name__) is theirs:
                setattr(module, cls.__name__, cls)
                if SUITE == "torch":
                    _RESTORE.append((module, cls.__name__, theirs))
        SUBSTITUTED.append(cls.__name__)


if CLASSES == "patched":
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "upstream"))
    import patched_import

    patched_import.install(os.environ["PEER_PATCHED_TORCH"])
    SUBSTITUTED.append(f"torch.distributions from {os.environ['PEER_PATCHED_TORCH']}")
elif CLASSES == "ours":
    import pyro_expfam.distributions

    _substitute(list(pyro_expfam.distributions.FAMILIES))
elif CLASSES == "pyro" and SUITE == "torch":
    import pyro.distributions

    import pyro_expfam.distributions

    _substitute([getattr(pyro.distributions, c.__name__) for c in pyro_expfam.distributions.FAMILIES])


def pytest_collection_finish(session) -> None:
    for module, name, theirs in _RESTORE:
        setattr(module, name, theirs)


def pytest_report_header(config) -> str:
    if not SUBSTITUTED:
        return f"peer suite {SUITE}: their own classes (baseline)"
    return f"peer suite {SUITE}: {CLASSES} classes substituted for {', '.join(SUBSTITUTED)}"
