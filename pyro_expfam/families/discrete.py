# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Discrete families with their conjugate priors, independent per feature:

==============  ================================  ======================  ====================================
family          data                              :math:`t(x)`, ``k(x)``  prior (default hyper-parameters)
==============  ================================  ======================  ====================================
Bernoulli       ``(N, D)`` entries in {0, 1}      :math:`x`, 0            Beta(a, b) (1, 1)
Categorical     ``(N, D)`` integer codes < ``V``  one-hot, 0              Dirichlet(c) (c = 1, V = max + 1)
Poisson         ``(N, D)`` non-negative counts    :math:`x`, -log x!      Gamma(shape, rate) (1, 1 / mean(X))
==============  ================================  ======================  ====================================
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import checks
from .base import ConjugateFamily

__all__ = ["BernoulliFamily", "CategoricalFamily", "PoissonFamily"]


class BernoulliFamily(ConjugateFamily):
    """
    Independent binary features with a Beta prior per feature.

    :param float a: prior Beta concentration of ones (default 1).
    :param float b: prior Beta concentration of zeros (default 1).

    >>> fam = BernoulliFamily(a=2.0)
    >>> X = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    >>> fam.prior(X)
    {'a': tensor([2., 2.]), 'b': tensor([1., 1.])}
    >>> T, k = fam.sufficient_statistics(X)
    >>> T.tolist(), k.tolist()
    ([[0.0, 1.0], [1.0, 1.0]], [0.0, 0.0])
    """

    name = "bernoulli"
    family = "Bernoulli"
    non_negative = True

    def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
        self.a = checks.check_positive(a, "a")
        self.b = checks.check_positive(b, "b")

    def in_support(self, X: Tensor) -> Tensor:
        return (X == 0) | (X == 1)

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        return X.reshape(X.shape[0], -1), X.new_zeros(X.shape[0])

    def prior(self, X: Tensor) -> dict[str, Tensor]:
        a = torch.full((X.shape[1],), self.a, dtype=X.dtype, device=X.device)
        return {"a": a, "b": torch.full_like(a, self.b)}


class CategoricalFamily(ConjugateFamily):
    """
    Independent categorical features given as integer codes ``(N, D)`` in ``[0, V)`` (or, with ``one_hot``,
    one-hot vectors ``(N, D, V)``), with a symmetric Dirichlet prior per feature.

    :param float concentration: Dirichlet concentration per category (default 1).
    :param int n_categories: ``V`` (default from the data: ``max(X) + 1``, at least 2).
    :param bool one_hot: the data are one-hot vectors.

    >>> fam = CategoricalFamily()
    >>> X = torch.tensor([[0.0], [2.0]])
    >>> fam.prior(X)["concentration"].shape, fam.n_categories_for(X)
    (torch.Size([1, 3]), 3)
    >>> fam.sufficient_statistics(X)[0]
    tensor([[1., 0., 0.],
            [0., 0., 1.]])
    >>> CategoricalFamily(n_categories=2).check_data(X)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    ValueError: X contains values outside the support of the Categorical family: Categorical needs integer
    codes in [0, 2)
    """

    name = "categorical"
    family = "Categorical"
    non_negative = True

    def __init__(self, concentration: float = 1.0, n_categories: int | None = None, one_hot: bool = False) -> None:
        self.concentration = checks.check_positive(concentration, "concentration")
        if n_categories is not None and (isinstance(n_categories, bool) or not isinstance(n_categories, int)
                                         or n_categories < 2):
            raise ValueError(f"n_categories must be an int >= 2, got {n_categories!r}")
        self.n_categories = n_categories
        self.one_hot = bool(one_hot)

    @property
    def need(self) -> str:
        if self.one_hot:
            return "one-hot vectors" + (f" of length {self.n_categories}" if self.n_categories else "")
        if self.n_categories is not None:
            return f"integer codes in [0, {self.n_categories})"
        return checks.SUPPORT_NEEDS["Categorical"]

    def in_support(self, X: Tensor) -> Tensor | bool:
        if self.one_hot:
            if self.n_categories is not None and X.shape[-1] != self.n_categories:
                return False
            return (((X == 0) | (X == 1)).all(-1) & (X.sum(-1) == 1))
        ok = (X >= 0) & (X == X.floor())
        return ok & (X < self.n_categories) if self.n_categories is not None else ok

    def n_categories_for(self, X: Tensor) -> int:
        """
        ``V``: the given number of categories, else ``max(X) + 1`` (at least 2; the last dimension if one-hot).

        :param Tensor X: the data.
        """
        if self.one_hot:
            return X.shape[-1]
        return self.n_categories or max(int(X.max()) + 1, 2)

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        onehot = X if self.one_hot else torch.nn.functional.one_hot(X.long(), self.n_categories_for(X)).to(X.dtype)
        return onehot.reshape(X.shape[0], -1), X.new_zeros(X.shape[0])

    def prior(self, X: Tensor) -> dict[str, Tensor]:
        shape = (X.shape[1], self.n_categories_for(X))
        return {"concentration": torch.full(shape, self.concentration, dtype=X.dtype, device=X.device)}

    def seed_features(self, X: Tensor) -> Tensor:
        return self.sufficient_statistics(X)[0]


class PoissonFamily(ConjugateFamily):
    """
    Independent counts with a Gamma prior per feature.

    :param float shape: prior Gamma shape (default 1).
    :param float rate: prior Gamma rate (default ``shape / mean(X)`` per feature, the mean floored at ``1e-3``,
        so that the prior mean is the data mean).

    >>> fam = PoissonFamily(shape=2.0)
    >>> X = torch.tensor([[0.0, 3.0], [2.0, 5.0]])
    >>> fam.prior(X)
    {'shape': tensor([2., 2.]), 'rate': tensor([2.0000, 0.5000])}
    >>> fam.sufficient_statistics(X)[1]  # -log(0! 3!), -log(2! 5!)
    tensor([-1.7918, -5.4806])
    """

    name = "poisson"
    family = "Poisson"
    non_negative = True

    def __init__(self, shape: float = 1.0, rate: float | None = None) -> None:
        self.shape = checks.check_positive(shape, "shape")
        self.rate = checks.check_positive(rate, "rate", allow_none=True)

    def in_support(self, X: Tensor) -> Tensor:
        return (X >= 0) & (X == X.round())

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        X = X.reshape(X.shape[0], -1)
        return X, -torch.lgamma(X + 1).sum(1)

    def prior(self, X: Tensor) -> dict[str, Tensor]:
        shape = torch.full((X.shape[1],), self.shape, dtype=X.dtype, device=X.device)
        rate = shape / X.mean(0).clamp_min(1e-3) if self.rate is None else torch.full_like(shape, self.rate)
        return {"shape": shape, "rate": rate}
