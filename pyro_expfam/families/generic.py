# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Any family of :mod:`pyro_expfam.distributions` with its Diaconis-Ylvisaker conjugate prior
:math:`p(\eta)\propto\exp(\nu(\langle\eta, \mu_0\rangle - A(\eta)))`, whose default hyper-parameter
:math:`\mu_0` is the data's mean sufficient statistics (empirical Bayes): :class:`ExpFamFamily`, and the
resolution of a family given as a class, a class name or a prototype instance (:func:`resolve_family`).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import constraints, transform_to

from .. import distributions as expfam
from ..distributions.exp_family import ExponentialFamily
from . import checks, seeding
from .base import ConjugateFamily

__all__ = ["VECTOR_EVENT_FAMILIES", "ExpFamFamily", "family_support", "prototype_from_class", "resolve_family"]

#: families whose events are vectors sized by the data's last dimension
VECTOR_EVENT_FAMILIES = ("MultivariateNormal", "Dirichlet")


def resolve_family(family) -> tuple[type[ExponentialFamily], ExponentialFamily | None]:
    """
    ``(class, prototype instance or None)`` of a core family given as a class, a class name (case and ``_``
    ignored) or an instance.

    :param family: e.g. ``Poisson``, ``"poisson"``, ``Categorical(logits=torch.zeros(3))``.
    :raises ValueError: for an unknown name.
    :raises TypeError: for anything else.

    >>> resolve_family("multivariate_normal")
    (<class 'pyro_expfam.distributions.multivariate_normal.MultivariateNormal'>, None)
    """
    if isinstance(family, str):
        by_name = {c.__name__.lower(): c for c in expfam.FAMILIES}
        cls = by_name.get(family.lower().replace("_", ""))
        if cls is None:
            raise ValueError(
                f"family {family!r} is not a family of pyro_expfam.distributions; choose one of "
                + ", ".join(sorted(c.__name__ for c in expfam.FAMILIES))
            )
        return cls, None
    if isinstance(family, ExponentialFamily):
        return type(family), family
    if isinstance(family, type) and issubclass(family, ExponentialFamily):
        return family, None
    raise TypeError(
        "family must be a pyro_expfam.distributions family (class, class name or prototype instance), "
        f"got {family!r}"
    )


def prototype_from_class(cls: type[ExponentialFamily], dtype: torch.dtype, device: torch.device,
                         event_size: int | None = None) -> ExponentialFamily:
    """
    A member of ``cls`` with arbitrary valid parameters (used for shapes and ``t(x)`` only): scalar
    parameters, or, for families with a vector event (``MultivariateNormal``, ``Dirichlet``), parameters
    sized by ``event_size`` (the data's last dimension).

    :param type cls: the family.
    :param torch.dtype dtype: dtype of the parameters.
    :param torch.device device: their device.
    :param int event_size: the data's last dimension, for vector events.
    :raises TypeError: if no member can be built from the data's shape (pass a prototype instance instead).

    >>> prototype_from_class(expfam.MultivariateNormal, torch.float64, torch.device("cpu"), 3).event_shape
    torch.Size([3])
    """
    arg_constraints = cls.arg_constraints if isinstance(cls.arg_constraints, dict) else {}
    chosen = list(arg_constraints)
    if "logits" in chosen and "probs" in chosen:
        chosen.remove("probs")
    if "scale_tril" in chosen:  # one parameterisation of a matrix parameter
        chosen = [n for n in chosen if n not in ("covariance_matrix", "precision_matrix")]
    vector = any(arg_constraints[n].event_dim != 0 for n in chosen)
    if vector and event_size is None and cls.__name__ in VECTOR_EVENT_FAMILIES:
        raise ValueError(
            f"X must have shape (n_samples, ..., D) for the {cls.__name__} family (events are vectors), got 1-D "
            "data; Reshape your data with X.reshape(-1, 1) for one feature"
        )
    try:
        if vector and event_size is None:
            raise TypeError("its parameters are not scalars and the data's event size is unknown")
        kwargs = {}
        for name in chosen:
            c = arg_constraints[name]
            shape = (event_size,) * c.event_dim
            kwargs[name] = transform_to(c)(torch.zeros(shape, dtype=dtype, device=device))
        proto = cls(**kwargs)
        if vector and not proto.event_shape:  # e.g. Categorical: the number of categories is not the data's
            raise TypeError("its vector parameters do not describe the data's last dimension")
        return proto
    except (TypeError, ValueError, NotImplementedError) as e:
        raise TypeError(
            f"cannot build a {cls.__name__} from the data's shape ({e}); pass a prototype instance as "
            f"family instead, e.g. Categorical(logits=torch.zeros(C)) or "
            f"MultivariateNormal(torch.zeros(D), torch.eye(D)); only its shapes and fixed parameters are used"
        ) from e


def family_support(family) -> constraints.Constraint | None:
    """
    The support constraint of ``family`` (class, name or instance), or ``None`` if it depends on parameters
    or ``family`` is not a core family.

    :param family: as for :func:`resolve_family`.

    >>> family_support("Poisson")
    IntegerGreaterThan(lower_bound=0)
    """
    try:
        cls, proto = resolve_family(family)
    except (TypeError, ValueError):
        return None
    support = proto.support if proto is not None else getattr(cls, "support", None)
    return support if isinstance(support, constraints.Constraint) else None


def non_negative_support(support) -> bool:
    """
    Whether a support constraint excludes negative values (scikit-learn's ``positive_only`` data).

    :param support: a constraint.

    >>> non_negative_support(constraints.nonnegative_integer), non_negative_support(constraints.real)
    (True, False)
    """
    return checks._non_negative(support)


class ExpFamFamily(ConjugateFamily):
    r"""
    Any core family (a class, a class name or a prototype instance fixing parameter shapes and fixed
    parameters) with the Diaconis-Ylvisaker conjugate prior: ``prior_strength`` :math:`\nu` pseudo-observations
    at the mean statistics :math:`\mu_0` (default: the data's, :meth:`mean_statistics`).  Data of shape
    ``(N,) + extra_shape + event_shape`` are ``extra_shape`` independent members per sample.

    :param family: the core family.
    :param float prior_strength: :math:`\nu`.

    >>> fam = ExpFamFamily("Poisson")
    >>> X = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    >>> fam.prior(X)["mean_statistics"]
    tensor([2., 1.])
    >>> fam.check_data(X / 2)
    Traceback (most recent call last):
    ...
    ValueError: X contains values outside the support of the Poisson family: Poisson needs non-negative integer counts
    """

    name = "expfam"

    def __init__(self, family, prior_strength: float = 1.0) -> None:
        self.cls, self.prototype = resolve_family(family)
        self.family = self.cls.__name__
        self.prior_strength = checks.check_positive(prior_strength, "prior_strength")

    @property
    def support(self) -> constraints.Constraint | None:
        """The support constraint (of the prototype if given, else of the class; ``None`` if unknown)."""
        support = self.prototype.support if self.prototype is not None else getattr(self.cls, "support", None)
        return support if isinstance(support, constraints.Constraint) else None

    @property
    def non_negative(self) -> bool:  # type: ignore[override]
        return self.support is not None and non_negative_support(self.support)

    @property
    def need(self) -> str:
        return checks.support_need(self.family, self.support)

    def in_support(self, X: Tensor) -> Tensor | bool:
        return True if self.support is None else self.support.check(X)

    def member_for(self, X: Tensor) -> tuple[ExponentialFamily, tuple[int, ...]]:
        """
        The member that models one sample of ``X`` (the prototype, or one built from the class and the data's
        last dimension, expanded to the batch shape ``extra_shape``) and ``extra_shape``; it becomes the
        :attr:`prototype`.

        :param Tensor X: data ``(N,) + extra_shape + event_shape``.
        :raises ValueError: if ``X`` does not end with the family's event shape.

        >>> fam = ExpFamFamily("Bernoulli")
        >>> member, extra = fam.member_for(torch.zeros(5, 3))
        >>> member.batch_shape, extra
        (torch.Size([3]), (3,))
        """
        proto = self.prototype
        if proto is None:
            proto = prototype_from_class(self.cls, X.dtype, X.device, X.shape[-1] if X.dim() > 1 else None)
        event = tuple(proto.event_shape)
        rest = tuple(X.shape[1:])
        if len(rest) < len(event) or rest[len(rest) - len(event):] != event:
            raise ValueError(
                f"X of shape {tuple(X.shape)} does not end with the event shape {event} of the {self.family} "
                "family; expected (n_samples,) + extra_shape + event_shape"
            )
        extra = rest[: len(rest) - len(event)]
        try:
            proto = proto.expand(torch.Size(extra))
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"the prototype's batch_shape {tuple(proto.batch_shape)} does not broadcast to the data's extra "
                f"shape {extra}"
            ) from e
        self.prototype = proto
        return proto, extra

    def statistics(self, X: Tensor) -> tuple[list[Tensor], Tensor]:
        """
        The flattened sufficient statistics, one ``(N, T_j)`` per natural parameter, and the log carrier
        measure summed over ``extra_shape`` ``(N,)``, under :attr:`prototype` (set by :meth:`member_for`).

        :param Tensor X: data ``(N,) + extra_shape + event_shape``.
        """
        if self.prototype is None:
            self.member_for(X)
        proto = self.prototype
        N = X.shape[0]
        stats = [t.reshape(N, -1).to(X.dtype) for t in proto.sufficient_statistics(X)]
        carrier = proto.log_carrier_measure(X).to(X.dtype)
        carrier = carrier.reshape(N, -1).sum(1) if len(proto.batch_shape) else carrier.reshape(N)
        return stats, carrier

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        stats, carrier = self.statistics(X)
        return torch.cat(stats, 1), carrier

    @staticmethod
    def mean_statistics(stats: Tensor | list[Tensor]) -> Tensor | list[Tensor]:
        r"""
        The default :math:`\mu_0` of the prior: the mean of the statistics over the samples (per tensor of a list).

        :param stats: statistics ``(N, S)`` or a list of them.
        """
        if isinstance(stats, list | tuple):
            return [t.mean(0) for t in stats]
        return stats.mean(0)

    def prior(self, X: Tensor) -> dict[str, Tensor]:
        T, _ = self.sufficient_statistics(X)
        return {"mean_statistics": self.mean_statistics(T),
                "prior_strength": T.new_tensor(self.prior_strength)}

    def seed_features(self, X: Tensor) -> Tensor:
        """
        The standardised statistics of vector rank (:func:`~pyro_expfam.families.seeding.standardized_features`).

        :param Tensor X: data ``(N,) + extra_shape + event_shape``.
        """
        stats, _ = self.statistics(X)
        return seeding.standardized_features(stats, self.cls._natural_param_event_dims)
