# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Fixture list for the conformance battery, in the style of Pyro's
``tests/distributions/conftest.py``: one :class:`Fixture` per family, with a
random-parameter generator for any batch shape, the ground truth used to check
products (quadrature grid, discrete support, or proportionality only), and
invalid parameters for the bad-input checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import pyro_expfam.distributions as expfam


@dataclass
class Fixture:
    #: class name in :mod:`pyro_expfam.distributions`
    name: str
    #: ``random_params(batch_shape, generator) -> dict`` of float64 constructor kwargs
    random_params: Callable[[torch.Size, torch.Generator], dict]
    #: "exact" | "shifted" | "extended" | "refused"
    product: str
    #: increasing 1-D grid for trapezoid quadrature over the support (continuous scalar families)
    grid: Callable[[], torch.Tensor] | None = None
    #: finite (or truncated) support for discrete families: tensor of shape (M,) + event_shape
    support: Callable[[], torch.Tensor] | None = None
    #: constructor kwargs violating the constraints (must raise ValueError with validate_args=True)
    bad_params: dict = field(default_factory=dict)
    #: kwargs never learned in the SVI test (e.g. total_count)
    fixed: tuple[str, ...] = ()
    #: finite support usable by TraceEnum_ELBO
    enumerable: bool = False

    @property
    def cls(self):
        return getattr(expfam, self.name)

    def __repr__(self) -> str:
        return self.name


def _u(shape, g, lo=0.0, hi=1.0):
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)


def _n(shape, g, scale=1.0):
    return scale * torch.randn(shape, generator=g, dtype=torch.float64)


def _spd(shape, p, g):
    a = torch.randn(shape + (p, p), generator=g, dtype=torch.float64)
    return a @ a.transpose(-1, -2) / p + torch.eye(p, dtype=torch.float64)


def _tril(shape, p, g):
    return torch.linalg.cholesky(_spd(shape, p, g))


def _linspace(lo, hi, n=20001):
    return lambda: torch.linspace(lo, hi, n, dtype=torch.float64)


def _logspace(lo, hi, n=40001):
    return lambda: torch.linspace(lo, hi, n, dtype=torch.float64).exp()


FIXTURES = [
    Fixture(
        "Normal",
        lambda s, g: {"loc": _n(s, g), "scale": _u(s, g, 0.5, 1.5)},
        "exact",
        grid=_linspace(-30.0, 30.0),
        bad_params={"loc": torch.tensor([0.0]), "scale": torch.tensor([-1.0])},
    ),
    Fixture(
        "MultivariateNormal",
        lambda s, g: {"loc": _n(s + (3,), g), "scale_tril": _tril(s, 3, g)},
        "exact",
        bad_params={"loc": torch.zeros(2), "covariance_matrix": torch.tensor([[1.0, 2.0], [2.0, 1.0]])},
    ),
    Fixture(
        "Bernoulli",
        lambda s, g: {"logits": _n(s, g, 2.0)},
        "exact",
        support=lambda: torch.tensor([0.0, 1.0], dtype=torch.float64),
        bad_params={"probs": torch.tensor([1.5])},
        enumerable=True,
    ),
    Fixture(
        "Categorical",
        lambda s, g: {"logits": _n(s + (4,), g)},
        "exact",
        support=lambda: torch.arange(4, dtype=torch.float64),
        bad_params={"probs": torch.tensor([-0.5, 1.5])},
        enumerable=True,
    ),
    Fixture(
        "OneHotCategorical",
        lambda s, g: {"logits": _n(s + (4,), g)},
        "exact",
        support=lambda: torch.eye(4, dtype=torch.float64),
        bad_params={"probs": torch.tensor([-0.5, 1.5])},
        enumerable=True,
    ),
    Fixture(
        "Binomial",
        lambda s, g: {"total_count": 5, "logits": _n(s, g)},
        "refused",
        bad_params={"total_count": 5, "probs": torch.tensor([1.5])},
        fixed=("total_count",),
        enumerable=True,
    ),
    Fixture(
        "Multinomial",
        lambda s, g: {"total_count": 4, "logits": _n(s + (3,), g)},
        "refused",
        bad_params={"total_count": 4, "probs": torch.tensor([-0.5, 1.5])},
        fixed=("total_count",),
    ),
    Fixture(
        "Geometric",
        lambda s, g: {"probs": _u(s, g, 0.2, 0.8)},
        "exact",
        support=lambda: torch.arange(0, 400, dtype=torch.float64),
        bad_params={"probs": torch.tensor([1.5])},
    ),
    Fixture(
        "Poisson",
        lambda s, g: {"rate": _u(s, g, 0.5, 3.5)},
        "refused",
        bad_params={"rate": torch.tensor([-1.0])},
    ),
    Fixture(
        "Exponential",
        lambda s, g: {"rate": _u(s, g, 0.5, 1.5)},
        "exact",
        grid=_linspace(0.0, 80.0),
        bad_params={"rate": torch.tensor([-1.0])},
    ),
    Fixture(
        "Gamma",
        lambda s, g: {"concentration": _u(s, g, 1.0, 4.0), "rate": _u(s, g, 0.5, 1.5)},
        "exact",
        grid=_logspace(-12.0, 5.0),
        bad_params={"concentration": torch.tensor([-1.0]), "rate": torch.tensor([1.0])},
    ),
    Fixture(
        "Chi2",
        lambda s, g: {"df": _u(s, g, 2.0, 6.0)},
        "extended",
        grid=_logspace(-12.0, 5.0),
        bad_params={"df": torch.tensor([-1.0])},
    ),
    Fixture(
        "Beta",
        lambda s, g: {"concentration1": _u(s, g, 1.0, 4.0), "concentration0": _u(s, g, 1.0, 4.0)},
        "shifted",
        grid=_linspace(1e-9, 1 - 1e-9),
        bad_params={"concentration1": torch.tensor([-1.0]), "concentration0": torch.tensor([1.0])},
    ),
    Fixture(
        "Dirichlet",
        lambda s, g: {"concentration": _u(s + (3,), g, 1.0, 4.0)},
        "shifted",
        bad_params={"concentration": torch.tensor([-1.0, 1.0])},
    ),
    Fixture(
        "ContinuousBernoulli",
        lambda s, g: {"logits": _n(s, g, 2.0)},
        "exact",
        grid=_linspace(0.0, 1.0),
        bad_params={"probs": torch.tensor([1.5])},
    ),
    Fixture(
        "LogNormal",
        lambda s, g: {"loc": _n(s, g, 0.5), "scale": _u(s, g, 0.5, 1.0)},
        "shifted",
        grid=_logspace(-15.0, 15.0),
        bad_params={"loc": torch.tensor([0.0]), "scale": torch.tensor([-1.0])},
    ),
    Fixture(
        "VonMises",
        lambda s, g: {"loc": _u(s, g, -math.pi, math.pi), "concentration": _u(s, g, 0.5, 2.5)},
        "exact",
        grid=_linspace(-math.pi, math.pi),
        bad_params={"loc": torch.tensor([0.0]), "concentration": torch.tensor([-1.0])},
    ),
    Fixture(
        "InverseGamma",
        lambda s, g: {"concentration": _u(s, g, 1.5, 3.5), "rate": _u(s, g, 0.5, 1.5)},
        "exact",
        grid=_logspace(-10.0, 12.0),
        bad_params={"concentration": torch.tensor([-1.0]), "rate": torch.tensor([1.0])},
    ),
    Fixture(
        "Wishart",
        lambda s, g: {"df": _u(s, g, 4.0, 6.0), "covariance_matrix": _spd(s, 2, g)},
        "exact",
        bad_params={"df": torch.tensor(0.5), "covariance_matrix": torch.eye(2)},
    ),
]

FIXTURES += [
    Fixture(
        "HalfNormal",
        lambda s, g: {"scale": _u(s, g, 0.5, 1.5)},
        "exact",
        grid=_linspace(0.0, 30.0),
        bad_params={"scale": torch.tensor([-1.0])},
    ),
    Fixture(
        "Laplace",
        lambda s, g: {"loc": torch.tensor(0.5, dtype=torch.float64), "scale": _u(s, g, 0.5, 1.5)},
        "exact",
        # the density has a kink at loc = 0.5, a grid point: trapezoid error O(h^2) on each side
        grid=lambda: torch.linspace(-59.5, 60.5, 24001, dtype=torch.float64),
        bad_params={"loc": torch.tensor([0.0]), "scale": torch.tensor([-1.0])},
        fixed=("loc",),
    ),
    Fixture(
        "Pareto",
        lambda s, g: {"scale": torch.tensor(1.5, dtype=torch.float64), "alpha": _u(s, g, 1.5, 3.5)},
        "exact",
        # support [1.5, inf): the grid starts at the jump; geometric spacing for the power-law tail
        grid=lambda: 1.5 * torch.linspace(0.0, 14.0, 40001, dtype=torch.float64).exp(),
        bad_params={"scale": torch.tensor([1.0]), "alpha": torch.tensor([-1.0])},
        fixed=("scale",),
    ),
    Fixture(
        "Weibull",
        lambda s, g: {"scale": _u(s, g, 0.5, 1.5), "concentration": torch.tensor(1.7, dtype=torch.float64)},
        "refused",
        bad_params={"scale": torch.tensor([-1.0]), "concentration": torch.tensor([1.0])},
        fixed=("concentration",),
    ),
    Fixture(
        "NegativeBinomial",
        lambda s, g: {"total_count": torch.tensor(3.0, dtype=torch.float64), "logits": _n(s, g, 0.5)},
        "refused",
        bad_params={"total_count": torch.tensor(3.0), "probs": torch.tensor([1.5])},
        fixed=("total_count",),
    ),
]

FIXTURE_IDS = [f.name for f in FIXTURES]


def make(fixture: Fixture, batch_shape=(3,), seed: int = 0, dtype=torch.float64, device=None):
    """Build a distribution of the fixture's family with random parameters."""
    g = torch.Generator().manual_seed(seed)
    params = fixture.random_params(torch.Size(batch_shape), g)
    params = {
        k: (v.to(dtype=dtype, device=device) if torch.is_tensor(v) and v.is_floating_point() else v)
        for k, v in params.items()
    }
    return fixture.cls(**params, validate_args=True), params
