# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
:func:`pyro_expfam.torch_patch.patch_torch`: the proposed upstream API on
torch's own classes.  Ground truth: torch's own ``log_prob`` (normalised by
construction) together with proportionality of the product, torch's own
``_natural_params`` / ``_log_normalizer`` (autograd gives the mean
parameters), and quadrature for the Beta example of the upstream PR.
"""

from __future__ import annotations

import io
import math
import pathlib
import unittest

import pyro
import pyro.distributions as pdist
import pytest
import torch
import torch.distributions as td
from pyro import poutine

import pyro_expfam.distributions as expfam
from pyro_expfam.torch_patch import (
    _CONSTRUCTOR_ARGS,
    PATCHED_FAMILIES,
    as_expfam,
    is_torch_patched,
    patch_torch,
    patched_torch,
    unpatch_torch,
)

# torch's own Wishart sampler warns about (and retries) near-singular float samples
pytestmark = pytest.mark.filterwarnings("ignore:Singular sample detected")

D64 = torch.float64
NEW_METHODS = (
    "_from_natural_params",
    "product_along_axis",
    "sufficient_statistics",
    "log_carrier_measure",
    "mean_parameters",
    "from_mean_parameters",
)


@pytest.fixture
def patched():
    with patched_torch():
        yield


def _close(a, b, rtol=1e-7, atol=1e-8):
    a = torch.as_tensor(a)
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype, device=a.device), rtol=rtol, atol=atol)


def _spd(shape, p, g):
    a = torch.randn(shape + (p, p), generator=g, dtype=D64)
    return a @ a.mT / p + torch.eye(p, dtype=D64)


def _u(shape, g, lo, hi):
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=D64)


#: torch constructors with random parameters for any batch shape
MAKERS = {
    "Bernoulli": lambda s, g: td.Bernoulli(probs=_u(s, g, 0.1, 0.9)),
    "Beta": lambda s, g: td.Beta(_u(s, g, 1.0, 4.0), _u(s, g, 1.0, 4.0)),
    "Binomial": lambda s, g: td.Binomial(5, probs=_u(s, g, 0.1, 0.9)),
    "Categorical": lambda s, g: td.Categorical(logits=torch.randn(s + (4,), generator=g, dtype=D64)),
    "Chi2": lambda s, g: td.Chi2(_u(s, g, 2.0, 6.0)),
    "ContinuousBernoulli": lambda s, g: td.ContinuousBernoulli(logits=torch.randn(s, generator=g, dtype=D64)),
    "Dirichlet": lambda s, g: td.Dirichlet(_u(s + (3,), g, 1.0, 4.0)),
    "Exponential": lambda s, g: td.Exponential(_u(s, g, 0.5, 1.5)),
    "Gamma": lambda s, g: td.Gamma(_u(s, g, 1.0, 4.0), _u(s, g, 0.5, 1.5)),
    "Geometric": lambda s, g: td.Geometric(probs=_u(s, g, 0.2, 0.8)),
    "InverseGamma": lambda s, g: td.InverseGamma(_u(s, g, 1.5, 3.5), _u(s, g, 0.5, 1.5)),
    "LogNormal": lambda s, g: td.LogNormal(_u(s, g, -0.5, 0.5), _u(s, g, 0.5, 1.0)),
    "Multinomial": lambda s, g: td.Multinomial(4, logits=torch.randn(s + (3,), generator=g, dtype=D64)),
    "MultivariateNormal": lambda s, g: td.MultivariateNormal(
        torch.randn(s + (3,), generator=g, dtype=D64), covariance_matrix=_spd(s, 3, g)
    ),
    "Normal": lambda s, g: td.Normal(torch.randn(s, generator=g, dtype=D64), _u(s, g, 0.5, 1.5)),
    "OneHotCategorical": lambda s, g: td.OneHotCategorical(logits=torch.randn(s + (4,), generator=g, dtype=D64)),
    "Poisson": lambda s, g: td.Poisson(_u(s, g, 0.5, 3.5)),
    "VonMises": lambda s, g: td.VonMises(_u(s, g, -math.pi, math.pi), _u(s, g, 0.5, 2.5)),
    "Wishart": lambda s, g: td.Wishart(_u(s, g, 4.0, 6.0), covariance_matrix=_spd(s, 2, g)),
    # the families with a fixed parameter hold it constant along the batch (products need that)
    "HalfNormal": lambda s, g: td.HalfNormal(_u(s, g, 0.5, 1.5)),
    "Laplace": lambda s, g: td.Laplace(torch.full(s, 0.3, dtype=D64), _u(s, g, 0.5, 1.5)),
    "NegativeBinomial": lambda s, g: td.NegativeBinomial(3.0, probs=_u(s, g, 0.2, 0.8)),
    "Pareto": lambda s, g: td.Pareto(torch.full(s, 1.5, dtype=D64), _u(s, g, 1.5, 3.5)),
    "Weibull": lambda s, g: td.Weibull(_u(s, g, 0.5, 1.5), torch.full(s, 2.0, dtype=D64)),
}
REFUSED = ("Poisson", "Binomial", "Multinomial", "NegativeBinomial", "Weibull")
CLOSED = sorted(set(MAKERS) - set(REFUSED))


def make(name, batch_shape=(3,), seed=0):
    return MAKERS[name](torch.Size(batch_shape), torch.Generator().manual_seed(seed))


def test_every_patched_family_is_tested():
    assert set(PATCHED_FAMILIES) == set(MAKERS)


# --------------------------------------------------------------------------- #
# Installation, idempotence, undo
# --------------------------------------------------------------------------- #
def test_patch_unpatch_idempotent():
    assert not is_torch_patched()
    torch_natural = td.Beta.__dict__["_natural_params"]
    patch_torch()
    try:
        installed = {(n, m): td.__dict__[n].__dict__[m] for n in PATCHED_FAMILIES for m in NEW_METHODS}
        patch_torch()  # second call: nothing changes
        for (n, m), obj in installed.items():
            assert getattr(td, n).__dict__[m] is obj
        assert td.Beta.__dict__["_natural_params"] is torch_natural  # torch's own is never replaced
        assert "_natural_params" in td.Categorical.__dict__  # added where torch has none
    finally:
        unpatch_torch()
    unpatch_torch()  # harmless when not patched
    for n in PATCHED_FAMILIES:
        for m in NEW_METHODS:
            assert m not in getattr(td, n).__dict__
    assert not hasattr(td.Categorical, "_natural_params")
    assert td.Beta.__dict__["_natural_params"] is torch_natural
    assert not is_torch_patched()


def test_context_manager_restores_state():
    with patched_torch():
        assert hasattr(td.Normal, "product_along_axis")
        with patched_torch():
            assert is_torch_patched()
        assert is_torch_patched()  # the inner block does not undo the outer one
    assert not hasattr(td.Normal, "product_along_axis")
    patch_torch()
    try:
        with patched_torch():
            pass
        assert is_torch_patched()  # patched before the block: still patched after it
    finally:
        unpatch_torch()


def test_our_classes_are_untouched(patched):
    assert expfam.Beta.product_along_axis is expfam.ExponentialFamily.product_along_axis
    assert expfam.Normal._from_natural_params.__func__ is expfam.Normal.__dict__["_from_natural_params"].__func__


def test_user_replacement_survives_unpatch():
    patch_torch()

    def mine(self, *args, **kwargs):
        return "mine"

    td.Normal.product_along_axis = mine
    unpatch_torch()
    try:
        assert td.Normal.product_along_axis is mine
    finally:
        del td.Normal.product_along_axis


# --------------------------------------------------------------------------- #
# The API on torch objects returns torch objects
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_from_natural_params_round_trip(patched, name):
    d = make(name)
    fixed = as_expfam(d)._fixed_params()
    d2 = type(d)._from_natural_params(*d._natural_params, **fixed)
    assert type(d2) is type(d)
    x = d.sample((5,))
    _close(d2.log_prob(x), d.log_prob(x))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_log_density_decomposition(patched, name):
    # log p(x) = <eta, t(x)> - A(eta) + k(x) with torch's own eta and A wherever torch defines them
    d = make(name)
    x = d.sample((4,))
    eta = d._natural_params
    stats = d.sufficient_statistics(x)
    # torch's Chi2 has Gamma's natural parameters (df/2 - 1, -1/2)
    ranks = getattr(expfam, "Gamma" if name == "Chi2" else name)._natural_param_event_dims
    total = d.log_carrier_measure(x) - d._log_normalizer(*eta)
    for e, s, r in zip(eta, stats, ranks, strict=True):
        term = e * s
        total = total + (term.sum(tuple(range(-r, 0))) if r else term)
    _close(total, d.log_prob(x), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_mean_parameters_are_gradient_of_log_normalizer(patched, name):
    d = make(name)
    eta = [torch.as_tensor(e).detach().requires_grad_() for e in d._natural_params]
    grads = torch.autograd.grad(d._log_normalizer(*eta).sum(), eta)
    for m, gr in zip(d.mean_parameters(), grads, strict=True):
        _close(m, gr.expand(m.shape), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_from_mean_parameters_round_trip(patched, name):
    d = make(name)
    fixed = as_expfam(d)._fixed_params()
    d2 = type(d).from_mean_parameters(*d.mean_parameters(), **fixed)
    # torch's Chi2 has Gamma's mean parameters (E log x, E x): their inverse is a Gamma (rate 1/2 up to rounding)
    assert type(d2) is (td.Gamma if name == "Chi2" else type(d))
    x = d.sample((5,))
    _close(d2.log_prob(x), d.log_prob(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("batch_shape,dim", [((3,), 0), ((3,), -1), ((2, 3), 0), ((2, 3), 1), ((2, 3), -2)])
def test_product_along_axis(patched, name, batch_shape, dim):
    torch.manual_seed(0)
    d = make(name, batch_shape)
    prod = d.product_along_axis(dim, keepdim=True)
    expected_family = "Gamma" if name == "Chi2" else name  # a product of Chi2 densities is a Gamma
    assert type(prod) is getattr(td, expected_family)
    bdim = dim % len(batch_shape)
    keep = list(batch_shape)
    keep[bdim] = 1
    assert prod.batch_shape == torch.Size(keep)
    dropped = torch.Size(batch_shape[:bdim] + batch_shape[bdim + 1 :])
    assert d.product_along_axis(dim, keepdim=False).batch_shape == dropped
    # proportionality: sum_i log p_i(x) - log p_prod(x) does not depend on x; p_prod is normalised
    # because it is one of torch's own distributions
    x = prod.sample((7,))  # (7,) + keep + event: broadcasts against d's batch shape
    diff = d.log_prob(x).sum(1 + bdim, keepdim=True) - prod.log_prob(x)
    _close(diff, diff[:1].expand_as(diff), rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("name", REFUSED)
def test_product_refused(patched, name):
    with pytest.raises(NotImplementedError, match="not in the span"):
        make(name).product_along_axis()


def test_upstream_poisson_example_is_refused(patched):
    # PR #32177 advertised Poisson([3, 10, 2]).product_along_axis().rate == 60: that is the
    # Conway-Maxwell-Poisson(60, nu=3), not a Poisson, so the product is refused
    with pytest.raises(NotImplementedError, match="Conway-Maxwell"):
        td.Poisson(torch.tensor([3.0, 10.0, 2.0])).product_along_axis(keepdim=False)


def test_beta_product_vs_naive_sum(patched):
    d = td.Beta(torch.tensor([2.0, 4.0], dtype=D64), torch.tensor([3.0, 1.5], dtype=D64))
    prod = d.product_along_axis(keepdim=False)
    _close(prod.concentration1, 5.0)
    _close(prod.concentration0, 3.5)
    grid = torch.linspace(1e-9, 1 - 1e-9, 200001, dtype=D64)
    truth = d.log_prob(grid.unsqueeze(-1)).sum(-1).exp()
    truth = truth / torch.trapezoid(truth, grid)
    ours = prod.log_prob(grid).exp()
    naive = td.Beta(d.concentration1.sum(), d.concentration0.sum()).log_prob(grid).exp()  # PR #32177
    tv_ours = 0.5 * torch.trapezoid((ours - truth).abs(), grid)
    tv_naive = 0.5 * torch.trapezoid((naive - truth).abs(), grid)
    assert tv_ours < 1e-6
    assert tv_naive > 0.05  # the naive sum of raw concentrations is visibly wrong


def test_pyro_objects_stay_pyro(patched):
    d = pdist.Normal(torch.zeros(3), torch.ones(3))
    prod = d.product_along_axis(-1)
    assert type(prod) is pdist.Normal
    with poutine.trace() as tr:
        pyro.sample("x", prod.to_event(1))
    assert tr.trace.nodes["x"]["value"].shape == (1,)
    assert type(pdist.Beta._from_natural_params(torch.tensor(2.0), torch.tensor(3.0))) is pdist.Beta
    assert type(pdist.Chi2(torch.tensor([2.0, 3.0])).product_along_axis(0)) is pdist.Gamma


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_preserved(patched, dtype):
    d = td.Gamma(torch.tensor([2.0, 3.0], dtype=dtype), torch.tensor([1.0, 2.0], dtype=dtype))
    prod = d.product_along_axis(0)
    assert prod.concentration.dtype == dtype
    _close(prod.concentration, torch.tensor([4.0], dtype=dtype))  # (2 - 1) + (3 - 1) + 1
    _close(prod.rate, torch.tensor([3.0], dtype=dtype))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda(patched):
    d = td.MultivariateNormal(torch.zeros(4, 2, device="cuda"), torch.eye(2, device="cuda"))
    prod = d.product_along_axis(0)
    assert prod.loc.device.type == "cuda"
    _close(prod.covariance_matrix.cpu(), torch.eye(2).unsqueeze(0) / 4, rtol=1e-5, atol=1e-6)


def test_bad_dim(patched):
    d = make("Normal", (2, 3))
    with pytest.raises(ValueError, match="out of range"):
        d.product_along_axis(2)
    with pytest.raises(TypeError, match="int"):
        d.product_along_axis(0.5)


# --------------------------------------------------------------------------- #
# The torch-style tests shown in docs/upstream.md run, against the patched torch
# --------------------------------------------------------------------------- #
_DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "upstream.md"


class _DistributionsTestCase(unittest.TestCase):
    """Stand-in for torch's ``DistributionsTestCase``: ``assertEqual`` with tolerances."""

    def assertEqual(self, a, b, atol=1e-6, rtol=1e-6, msg=None):  # noqa: N802 (unittest's name)
        if isinstance(a, torch.Size) or isinstance(b, torch.Size):
            return super().assertEqual(a, b, msg)
        a = torch.as_tensor(a)
        torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), atol=atol, rtol=rtol)


def _doc_examples():
    """A ``_get_examples()`` in torch's format covering every patched family."""
    return [(getattr(td, name), [_CONSTRUCTOR_ARGS[name](make(name, (2, 3)))]) for name in MAKERS]


@pytest.mark.skipif(not _DOC.exists(), reason="docs/upstream.md not present")
def test_upstream_doc_tests_run(patched):
    text = _DOC.read_text()
    start = text.index("```python\nclass TestExponentialFamilyAlgebra")
    code = text[start + len("```python\n") : text.index("```", start + 10)]
    namespace = {name: getattr(td, name) for name in dir(td) if not name.startswith("_")}
    namespace.update(
        torch=torch,
        math=math,
        DistributionsTestCase=_DistributionsTestCase,
        _get_examples=_doc_examples,
        _fixed=lambda d: as_expfam(d)._fixed_params(),
    )
    exec(compile(code, str(_DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(namespace["TestExponentialFamilyAlgebra"])
    result = unittest.TextTestRunner(verbosity=0, stream=io.StringIO()).run(suite)
    assert result.testsRun == 9
    assert result.wasSuccessful(), [str(f[1]) for f in result.failures + result.errors]
