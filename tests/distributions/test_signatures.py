# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Our classes show their family's constructor signature (Pyro's tests and funsor read it)."""

import inspect

import pytest
import torch

from pyro_expfam.distributions import FAMILIES, Normal, Poisson


def _pyro_parent(cls):
    return next(c for c in cls.__mro__[1:] if c.__module__.startswith(("pyro.", "torch.")) and "__init__" in c.__dict__)


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.__name__)
def test_signature_is_the_family_constructor(cls):
    ours = inspect.signature(cls.__init__)
    theirs = inspect.signature(_pyro_parent(cls).__init__)
    assert ours == theirs
    assert "args" not in ours.parameters


def test_construct_from_signature_like_pyro_test_pickle():
    # Pyro's tests/distributions/test_pickle.py builds Dist(1, ..., 1) from the signature
    spec = list(inspect.signature(Poisson.__init__).parameters.values())
    nargs = sum(1 for p in spec if p.default is p.empty) - 1
    assert nargs == 1
    assert Poisson(*(1,) * nargs).rate == 1


def test_subclass_without_init_keeps_expand_and_zero_size_batches():
    class MyNormal(Normal):
        pass

    assert inspect.signature(MyNormal.__init__) == inspect.signature(Normal.__init__)
    d = MyNormal(torch.zeros(3), torch.ones(3)).expand((2, 3))
    assert type(d) is MyNormal and d.batch_shape == (2, 3)
    assert MyNormal(torch.zeros(0), torch.ones(0)).batch_shape == (0,)
