# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
``kl_divergence`` on our classes (issue 9, cause 1): every pair dispatches to a
closed form, unambiguously, for pairs of our classes and mixed pairs with
torch's and Pyro's classes, and works under ``torch.no_grad()``.  Values are
checked against torch's/Pyro's own classes where they have a closed form, and
against Monte Carlo estimates of :math:`E_p[\\log p - \\log q]` elsewhere.
"""

from __future__ import annotations

import itertools
import math
import warnings

import pyro.distributions as pdist
import pytest
import torch
import torch.distributions as td
import torch.distributions.kl as tkl
from family_fixtures import FIXTURES, make

import pyro_expfam.distributions as expfam
from pyro_expfam.distributions.exp_family import _torch_family_class

OURS = list(expfam.FAMILIES)
TORCH = {cls: _torch_family_class(cls) for cls in OURS}
PYRO = {cls: getattr(pdist, TORCH[cls].__name__) for cls in OURS}
BY_NAME = {f.name: f for f in FIXTURES}


def _theirs(d, namespace_cls):
    """The same distribution as an instance of torch's or Pyro's class of the family."""
    return namespace_cls(**type(d)._constructor_args(d), validate_args=False)


def _pairs():
    universe = OURS + list(TORCH.values()) + list(PYRO.values())
    for a, b in itertools.product(universe, universe):
        if a in OURS or b in OURS:
            yield a, b


def test_dispatch_is_unambiguous_and_never_generic():
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ambiguous dispatch warns
        for a, b in _pairs():
            fn = tkl._dispatch_kl(a, b)
            assert fn is not NotImplemented, (a, b)
            assert fn is not tkl._kl_expfamily_expfamily, (a, b)
            n += 1
    assert n == (3 * len(OURS)) ** 2 - (2 * len(OURS)) ** 2


def test_dispatch_matches_torch_closed_forms():
    # where torch/Pyro have a closed form for the two torch classes, our classes get exactly that function
    for a, b in _pairs():
        ta = TORCH.get(a) or next(c for c in a.__mro__ if c.__module__.startswith("torch.distributions"))
        tb = TORCH.get(b) or next(c for c in b.__mro__ if c.__module__.startswith("torch.distributions"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = tkl._dispatch_kl(ta, tb)
        if theirs is tkl._kl_transformed_transformed and ta is tb:
            assert tkl._dispatch_kl(a, b).__name__.endswith("_bregman"), (a, b)
        elif theirs is not NotImplemented and theirs is not tkl._kl_expfamily_expfamily:
            assert tkl._dispatch_kl(a, b) is theirs, (a, b)


def _monte_carlo_kl(p, q, n=20000, seed=0):
    torch.manual_seed(seed)
    x = p.sample((n,))
    diff = p.log_prob(x) - q.log_prob(x)
    return diff.mean(0), diff.std(0) / math.sqrt(n)


@pytest.mark.parametrize("fixture", FIXTURES, ids=repr)
def test_same_family_kl_values_mixed_pairs_and_no_grad(fixture):
    p, _ = make(fixture, (3,), seed=21)
    q, _ = make(fixture, (3,), seed=22)
    cls = type(p)
    ref_fn = tkl._dispatch_kl(TORCH[cls], TORCH[cls])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            ours = td.kl_divergence(p, q)
            for pp, qq in [
                (p, _theirs(q, TORCH[cls])),
                (_theirs(p, TORCH[cls]), q),
                (p, _theirs(q, PYRO[cls])),
                (_theirs(p, PYRO[cls]), q),
            ]:
                torch.testing.assert_close(td.kl_divergence(pp, qq), ours, rtol=1e-9, atol=1e-9)
    assert ours.shape == (3,) and not ours.requires_grad
    if ref_fn not in (NotImplemented, tkl._kl_expfamily_expfamily, tkl._kl_transformed_transformed):
        # torch's/Pyro's own classes have a closed form: same value
        expected = td.kl_divergence(_theirs(p, PYRO[cls]), _theirs(q, PYRO[cls]))
        torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-9)
    else:
        # no closed form in torch: Monte Carlo, 5 standard errors (false alarm ~6e-7 per coordinate)
        mc, se = _monte_carlo_kl(p, q)
        assert bool(((ours - mc).abs() <= 5 * se + 1e-9).all()), (ours, mc, se)
    # gradients flow when enabled
    params = [v for v in p.__dict__.values() if torch.is_tensor(v) and v.is_floating_point()]
    p_grad = type(p)(**{k: (v.clone().requires_grad_() if torch.is_tensor(v) and v.is_floating_point() else v)
                        for k, v in type(p)._constructor_args(p).items()})
    kl = td.kl_divergence(p_grad, q)
    assert kl.requires_grad or not params
    torch.testing.assert_close(kl.detach(), ours)


_CROSS = [
    (a, b)
    for a, b in itertools.product(OURS, OURS)
    if TORCH[a] is not TORCH[b] and tkl._dispatch_kl(a, b).__module__ != "pyro_expfam.distributions.kl"
]


@pytest.mark.parametrize("a,b", _CROSS, ids=[f"{a.__name__}-{b.__name__}" for a, b in _CROSS])
def test_cross_family_closed_forms_match_torch(a, b):
    p, _ = make(BY_NAME[a.__name__], (3,), seed=23)
    q, _ = make(BY_NAME[b.__name__], (3,), seed=24)
    with torch.no_grad():
        try:
            theirs = td.kl_divergence(_theirs(p, TORCH[a]), _theirs(q, TORCH[b]))
        except NotImplementedError:  # e.g. LogNormal vs InverseGamma: torch's transformed pair refuses
            with pytest.raises(NotImplementedError):
                td.kl_divergence(p, q)
            return
        ours = td.kl_divergence(p, q)
        mixed = td.kl_divergence(p, _theirs(q, PYRO[b]))
    torch.testing.assert_close(ours, theirs, equal_nan=True)
    torch.testing.assert_close(mixed, theirs, equal_nan=True)


def test_cross_family_without_closed_form_raises():
    with pytest.raises(NotImplementedError, match=r"kl_divergence\(Poisson, Normal\)"):
        td.kl_divergence(expfam.Poisson(torch.tensor(1.0)), expfam.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError, match=r"kl_divergence\(MultivariateNormal, Dirichlet\)"):
        td.kl_divergence(expfam.MultivariateNormal(torch.zeros(2), torch.eye(2)), td.Dirichlet(torch.ones(2)))


@pytest.mark.parametrize("batch_shape", [(), (4,), (2, 3)], ids=str)
@pytest.mark.parametrize("size", [1, 3])
def test_kl_independent_normal_mvn(batch_shape, size):
    # the kind of check Pyro's test_kl_independent_normal_mvn makes, with our classes on both sides
    g = torch.Generator().manual_seed(size)
    loc = torch.randn(batch_shape + (size,), generator=g, dtype=torch.float64)
    scale = torch.randn(batch_shape + (size,), generator=g, dtype=torch.float64).exp()
    p1 = expfam.Normal(loc, scale).to_event(1)
    p2 = expfam.MultivariateNormal(loc, scale_tril=scale.diag_embed())
    a = torch.randn(batch_shape + (size, size), generator=g, dtype=torch.float64)
    q = expfam.MultivariateNormal(torch.randn(batch_shape + (size,), generator=g, dtype=torch.float64),
                                  covariance_matrix=a @ a.mT + 0.1 * torch.eye(size, dtype=torch.float64))
    with torch.no_grad():
        actual = td.kl_divergence(p1, q)
        expected = td.kl_divergence(p2, q)
        reference = td.kl_divergence(td.MultivariateNormal(loc, scale_tril=scale.diag_embed()),
                                     td.MultivariateNormal(q.loc, scale_tril=q.scale_tril))
    assert actual.shape == batch_shape
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(expected, reference)
    # Independent vs Independent reduces to the base pair
    q1 = expfam.Normal(loc + 1, scale * 2).to_event(1)
    torch.testing.assert_close(td.kl_divergence(p1, q1),
                               td.kl_divergence(expfam.Normal(loc, scale), expfam.Normal(loc + 1, scale * 2)).sum(-1))
