# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
:class:`ConjugateFamily`, the base of the family layer: one exponential family of the data with its conjugate
prior, in the form every model of the package needs it,

.. math::

    \log p(x\mid\eta) = \langle \eta, t(x)\rangle - A(\eta) + k(x),

- :meth:`~ConjugateFamily.check_data`: the data are in the family's support (one message, naming the argument);
- :meth:`~ConjugateFamily.sufficient_statistics`: ``(T, k)``, the flattened :math:`t(x)` ``(N, S)`` and the
  log carrier measure :math:`k(x)` summed over features ``(N,)``;
- :meth:`~ConjugateFamily.prior`: the conjugate prior's hyper-parameters, the user's values where given and
  data-dependent (empirical-Bayes) defaults elsewhere;
- :meth:`~ConjugateFamily.seed_features`: the space the models' k-means start runs in.

The models keep their own coordinates on top of this (the DP mixture's variational natural parameters
:math:`\phi`, the overlapping model's real-valued Pyro sites, ``ExpFamMixture``'s mean parameters).
"""

from __future__ import annotations

from torch import Tensor

from ..util import as_data_tensor
from . import checks

__all__ = ["ConjugateFamily"]


class ConjugateFamily:
    """
    Base class of the families: a core exponential family over the data with its conjugate prior.

    Subclasses set :attr:`name` (short name of the registry), :attr:`family` (the core family's name used in
    messages) and implement :meth:`in_support`, :meth:`sufficient_statistics` and :meth:`prior`.

    Example::

        >>> import torch
        >>> from pyro_expfam.families import get_family
        >>> fam = get_family("poisson")
        >>> fam.check_data(torch.tensor([[1.0], [-2.0]]))  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: X contains values outside the support of the Poisson family: Poisson needs non-negative
        integer counts (Negative values in data)
    """

    #: short name in the registry of :func:`~pyro_expfam.families.get_family`
    name: str = "family"
    #: the core family's name, used in messages
    family: str = "ExponentialFamily"
    #: whether the support is non-negative (negative entries then get scikit-learn's phrase in the message)
    non_negative: bool = False

    # ---- data ------------------------------------------------------------ #
    @property
    def need(self) -> str:
        """What the data must hold, in words (the end of :meth:`check_data`'s message)."""
        return checks.support_need(self.family)

    def in_support(self, X: Tensor) -> Tensor | bool:
        """
        Whether every entry of ``X`` is in the support (a boolean tensor or a bool; default: any finite data).

        :param Tensor X: the data.
        """
        return True

    def check_data(self, X: Tensor, name: str = "X") -> None:
        """
        Raise the package's ``ValueError`` (:func:`~pyro_expfam.families.checks.check_support`) if ``X`` is
        outside the family's support.

        :param Tensor X: the data (a floating tensor).
        :param str name: the argument's name in the message.
        """
        checks.check_support(X, self.in_support(X), self.family, self.need, name, self.non_negative)

    def validate(self, X, name: str = "X", ndim: int | None = 2, min_rows: int = 1) -> Tensor:
        """
        Convert ``X`` to a finite floating tensor (:func:`~pyro_expfam.util.as_data_tensor`) and check its
        support: the data check of the models that take raw input (the estimators use scikit-learn's
        ``check_array`` first, then :meth:`check_data`).

        :param X: tensor, array or nested sequence.
        :param str name: the argument's name in messages.
        :param int ndim: required number of dimensions (``None``: any).
        :param int min_rows: minimum number of samples.
        :rtype: Tensor

        >>> from pyro_expfam.families import get_family
        >>> get_family("bernoulli").validate([[0, 1], [1, 1]])
        tensor([[0., 1.],
                [1., 1.]], dtype=torch.float64)
        """
        X = as_data_tensor(X, name, ndim=ndim, min_rows=min_rows)
        self.check_data(X, name)
        return X

    # ---- statistics, prior, seeding ---------------------------------------- #
    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """
        ``(T, k)``: the flattened sufficient statistics ``(N, S)`` and the log carrier measure summed over the
        features ``(N,)``.

        :param Tensor X: data ``(N, ...)``.
        """
        raise NotImplementedError

    def prior(self, X: Tensor) -> dict[str, Tensor]:
        """
        The conjugate prior's hyper-parameters for data ``X``: the values given to the constructor, and
        data-dependent defaults (empirical Bayes) for those left ``None``.

        :param Tensor X: training data ``(N, ...)``; the result follows its dtype and device.
        """
        raise NotImplementedError

    def seed_features(self, X: Tensor) -> Tensor:
        """
        The features ``(N, F)`` the models' k-means start runs in (default: the flattened data).

        :param Tensor X: data ``(N, ...)``.
        """
        return X.reshape(X.shape[0], -1)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"
