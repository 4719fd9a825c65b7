# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
The :class:`ExponentialFamily` base class: natural-parameter algebra on top of
:class:`torch.distributions.ExponentialFamily`.

A member of an exponential family has density

.. math::

    p(x \mid \eta) = \exp\big(\langle \eta, t(x)\rangle - A(\eta) + k(x)\big)

with natural parameters :math:`\eta`, sufficient statistics :math:`t(x)`, log
normaliser :math:`A` and log carrier measure :math:`k(x)`.  torch already
defines ``_natural_params``, ``_log_normalizer`` and ``_mean_carrier_measure``;
this class adds the inverse map ``_from_natural_params``, ``t(x)`` and ``k(x)``
as methods, mean parameters and their inverse, and *normalised products* of
densities.

**The product rule.**  For factors of one family,
:math:`\prod_i p(x\mid\eta_i)^{w_i} \propto \exp(\langle\sum_i w_i\eta_i, t(x)\rangle + W k(x))`
with :math:`W = \sum_i w_i`.  This is a member of the same family only when the
surplus carrier measure :math:`(W-1)k(x)` can be absorbed into the natural
parameter, i.e. when :math:`k(x) = \langle c, t(x)\rangle + k_0` for a fixed
vector :math:`c` (``k`` constant is the special case :math:`c = 0`).  Then the
product has natural parameter :math:`\sum_i w_i\eta_i + (W-1)c` and

.. math::

    \sum_i w_i \log p_i(x) = \log p_\text{prod}(x) + \log Z,\qquad
    \log Z = A(\eta_\text{prod}) - \sum_i w_i A(\eta_i) + (W-1)k_0 .

Families whose carrier measure is not in the span of ``t`` (Poisson, Binomial,
Multinomial) refuse the product with a :class:`NotImplementedError` naming the
reason, rather than returning a wrong distribution.

**KL divergence.**  Between two members of one family the KL divergence is the
Bregman divergence of the log normaliser, :func:`bregman_kl`:

.. math::

    KL(p_{\eta_p}\,\|\,p_{\eta_q}) = A(\eta_q) - A(\eta_p)
        - \langle\eta_q - \eta_p, \nabla A(\eta_p)\rangle

(the carrier measure cancels), computed from ``_natural_params``,
``_log_normalizer`` and :meth:`ExponentialFamily.mean_parameters` alone.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor
from torch.distributions import constraints

__all__ = ["ExponentialFamily", "bregman_kl", "product", "weighted_product"]

_EF = TypeVar("_EF", bound="ExponentialFamily")

_LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16)


def _validation_enabled(validate_args: bool | None) -> bool:
    return torch.distributions.Distribution._validate_args if validate_args is None else bool(validate_args)


def _representable(tensors: Sequence[Tensor]) -> bool:
    """Every entry finite and either zero or normal (not subnormal) in its dtype."""
    for t in tensors:
        t = torch.as_tensor(t)
        if not t.is_floating_point():
            continue
        tiny = torch.finfo(t.dtype).tiny
        if not bool((torch.isfinite(t) & ((t == 0) | (t.abs() >= tiny))).all()):
            return False
    return True


def _overflowed(d: torch.distributions.Distribution, tensors: Sequence[Tensor]) -> bool:
    """
    Whether ``tensors`` (natural parameters of ``d`` or of a product of its
    factors) lost their value to the floating-point range: NaN, subnormal
    entries, or infinities although ``d``'s own parameters are all finite.
    """
    has_inf = False
    for t in tensors:
        t = torch.as_tensor(t)
        if not t.is_floating_point():
            continue
        a = t.abs()
        normal = (a >= torch.finfo(t.dtype).tiny) | (a == 0)  # False for NaN and subnormals
        if bool((normal & (a < math.inf)).all()):  # one synchronisation in the common case
            continue
        if not bool(normal.all()):
            return True
        has_inf = True
    if not has_inf:
        return False
    args = type(d)._constructor_args(d).values()
    return all(bool(torch.isfinite(a).all()) for a in args if torch.is_tensor(a) and a.is_floating_point())


def _torch_family_class(cls: type) -> type | None:
    """The class of ``torch.distributions`` that ``cls`` specialises (same name), or ``None``."""
    for c in cls.__mro__:
        if c.__name__ == cls.__name__ and c.__module__.startswith("torch.distributions"):
            return c
    return None


def _as_family(cls: type[_EF], d: torch.distributions.Distribution, what: str = "product") -> _EF:
    """
    ``d`` as an instance of our family class ``cls``: ``d`` itself if it is one,
    a converted copy if it is a torch or Pyro distribution of the same family.

    :raises TypeError: naming both classes otherwise.
    """
    if isinstance(d, cls):
        return d
    base = _torch_family_class(cls)
    if base is None or not isinstance(d, base) or isinstance(d, ExponentialFamily):
        raise TypeError(
            f"{what} of distributions of different families: {cls.__name__} and "
            f"{type(d).__module__}.{type(d).__name__}"
        )
    return cls(**cls._constructor_args(d), validate_args=False)


def _astype(d: _EF, dtype: torch.dtype, what: str | None = None) -> _EF:
    """
    A copy of ``d`` with its floating-point parameters cast to ``dtype``.

    :param str what: if given, refuse (``ValueError`` naming the parameter) a
        cast under which a finite non-zero parameter overflows or underflows.
    """
    args = {}
    for key, val in type(d)._constructor_args(d).items():
        if torch.is_tensor(val) and val.is_floating_point():
            new = val.to(dtype)
            if what is not None:
                bad = ~torch.isfinite(new) | ((new == 0) & (val != 0))
                if bool((bad & torch.isfinite(val)).any()):
                    raise ValueError(
                        f"{what} is not representable in {dtype}: its parameter {key} overflows or "
                        f"underflows ({val[bad].flatten()[0].item():.3g} in float64)"
                    )
            val = new
        args[key] = val
    return type(d)(**args, validate_args=False)


def _natural_param_names(func) -> tuple[str, ...] | None:
    names = []
    for i, p in enumerate(inspect.signature(func).parameters.values()):
        if i == 0:
            continue  # cls
        if p.kind in (p.VAR_POSITIONAL,):
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return tuple(names)


def _unchecked_from_natural_params(cls: type[_EF], *natural_params: Tensor, **fixed) -> _EF:
    """``cls._from_natural_params`` without the natural-parameter-space check (for callers that checked)."""
    func = cls._from_natural_params.__func__
    if getattr(func, "_checks_natural_params", False):
        func = func.__wrapped__
    return func(cls, *natural_params, **fixed)


def _forwarding_init(cls: type) -> Callable:
    """
    A per-class ``__init__`` that forwards to :meth:`ExponentialFamily.__init__` but shows the
    signature of the family's own constructor (Pyro's/torch's), so ``inspect.signature(cls.__init__)``
    (used by Pyro's tests and by funsor to wrap distributions) sees ``Poisson(rate, ...)``, not
    ``(*args, **kwargs)``.
    """
    target = next(
        (
            c.__dict__["__init__"]
            for c in cls.__mro__[1:]
            if "__init__" in c.__dict__
            and c is not ExponentialFamily
            and not getattr(c.__dict__["__init__"], "_expfam_forwarding", False)
        ),
        None,
    )

    def __init__(self, *args, **kwargs):
        ExponentialFamily.__init__(self, *args, **kwargs)

    __init__._expfam_forwarding = True
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    if target is not None:
        __init__.__doc__ = target.__doc__
        try:
            __init__.__signature__ = inspect.signature(target)
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            pass
    return __init__


class ExponentialFamily(torch.distributions.ExponentialFamily):
    r"""
    Base class for exponential-family distributions with natural-parameter
    algebra.

    Subclasses are concrete families that also inherit from the matching Pyro
    distribution, e.g. ``class Normal(ExponentialFamily, pyro.distributions.Normal)``,
    so that they work in ``pyro.sample``, ``.expand``, ``.to_event`` and
    ``.mask`` exactly like the Pyro class they replace.

    ``ExponentialFamily`` comes *first* in the bases so that its generic
    methods (notably :meth:`conjugate_update`, which returns our class and
    raises clear errors) take precedence over Pyro's per-family ones.  The
    price: for a torch class that is not itself a torch exponential family
    (Categorical, Binomial, MultivariateNormal, ...), torch's generic
    Bregman-divergence ``entropy`` would come before the family's closed form,
    so such families define ``entropy`` explicitly (tested for every family).

    A family implements:

    - ``_natural_params`` and ``_log_normalizer`` (torch's own, where torch
      defines them; the conventions are kept so that torch's Bregman-divergence
      entropy stays valid);
    - :meth:`_from_natural_params`, the inverse of ``_natural_params``;
    - :meth:`sufficient_statistics` and :meth:`log_carrier_measure`;
    - ``_natural_param_event_dims``: the event rank of each natural parameter
      beyond the batch shape (``(0, 0)`` for Normal, ``(1, 2)`` for
      MultivariateNormal, ``(2, 0)`` for Wishart);
    - ``_natural_param_constraints``: the natural parameter space, one
      constraint per natural parameter (used to refuse products that leave it);
    - the carrier decomposition for products: ``_carrier_shift`` (the vector
      ``c`` above, or ``None`` when ``k`` is constant) and ``_carrier_constant``
      (``k_0``), or ``_product_refusal``, a sentence saying why the product
      leaves the family;
    - optionally closed-form :meth:`mean_parameters` and
      :meth:`from_mean_parameters`.
    """

    #: Event rank of each natural parameter (beyond the batch shape).
    _natural_param_event_dims: tuple[int, ...] = ()
    #: Natural parameter space, one constraint per natural parameter.
    _natural_param_constraints: tuple[constraints.Constraint, ...] = ()
    #: ``None`` if the normalised product stays in the family; otherwise the reason it does not.
    _product_refusal: str | None = None
    #: Constant part ``k_0`` of the log carrier measure ``k(x) = <c, t(x)> + k_0``.
    _carrier_constant: float = 0.0
    #: Names of the natural parameters (the arguments of ``_from_natural_params``), set per family.
    _natural_param_names: tuple[str, ...] | None = None
    #: Optional words for each natural parameter space, used in error messages.
    _natural_param_descriptions: tuple[str | None, ...] = ()

    def __init_subclass__(cls, **kwargs):
        # every family's _from_natural_params refuses natural parameters outside the natural
        # parameter space with a ValueError naming the parameter (when validation is enabled)
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            cls.__init__ = _forwarding_init(cls)
        raw = cls.__dict__.get("_from_natural_params")
        if not isinstance(raw, classmethod) or getattr(raw.__func__, "_checks_natural_params", False):
            return
        func = raw.__func__
        names = _natural_param_names(func)
        cls._natural_param_names = names

        @functools.wraps(func)
        def checked(klass, *natural_params, **fixed):
            if _validation_enabled(fixed.get("validate_args")):
                klass._check_natural_params(
                    *natural_params,
                    what=f"natural parameters passed to {klass.__name__}._from_natural_params",
                    names=names,
                    consequence=None,
                )
            return func(klass, *natural_params, **fixed)

        checked._checks_natural_params = True
        cls._from_natural_params = classmethod(checked)

    def __init__(self, *args, **kwargs):
        # torch's independent-constraint check cannot reshape tensors with zero elements
        # (``Beta(ones(0), ones(0))`` fails in torch); there is nothing to validate in them
        # (shapes only, never a tensor converted to bool: no TracerWarning under torch.jit.trace)
        if not torch.jit.is_tracing() and any(
            torch.is_tensor(a) and 0 in tuple(a.shape) for a in (*args, *kwargs.values())
        ):
            kwargs["validate_args"] = False
        super().__init__(*args, **kwargs)

    def _get_checked_instance(self, cls, _instance=None):
        # torch's check, except that our __init__ above (which only forwards to the family's) keeps the
        # family's ``expand`` valid; a subclass with an __init__ of its own still needs its own ``expand``
        init = type(self).__init__
        forwarding = init is ExponentialFamily.__init__ or getattr(init, "_expfam_forwarding", False)
        if _instance is None and not forwarding and init != cls.__init__:
            raise NotImplementedError(
                f"Subclass {type(self).__name__} of {cls.__name__} that defines a custom __init__ method "
                "must also define a custom .expand() method."
            )
        return self.__new__(type(self)) if _instance is None else _instance

    @classmethod
    def _constructor_args(cls, d: torch.distributions.Distribution) -> dict:
        """
        Keyword arguments that rebuild ``d`` (an instance of this family, ours,
        torch's or Pyro's) with this class.
        """
        from ..torch_patch import _CONSTRUCTOR_ARGS  # deferred: torch_patch imports this package lazily

        try:
            return _CONSTRUCTOR_ARGS[cls.__name__](d)
        except KeyError:
            raise NotImplementedError(f"{cls.__name__} does not implement _constructor_args") from None

    def to_event(self, reinterpreted_batch_ndims: int | None = None):
        """
        Pyro's :meth:`~pyro.distributions.torch_distribution.TorchDistributionMixin.to_event`,
        returning a :class:`pyro_expfam.distributions.Independent` (which adds
        :meth:`~pyro_expfam.distributions.Independent.product_along_axis` over
        the remaining batch dimensions).

        :param int reinterpreted_batch_ndims: number of rightmost batch
            dimensions to reinterpret as event dimensions (all if ``None``).
        """
        from .independent import _to_event

        return _to_event(self, reinterpreted_batch_ndims)

    # ------------------------------------------------------------------ #
    # Interface implemented by every family
    # ------------------------------------------------------------------ #
    @classmethod
    def _from_natural_params(cls: type[_EF], *natural_params: Tensor, **fixed) -> _EF:
        """
        Inverse of ``_natural_params``: build a distribution of this family
        from natural parameters.

        :param Tensor natural_params: natural parameters, in the order of
            ``_natural_params``, each of shape ``batch_shape + event``.
        :param fixed: parameters that are not natural parameters but define the
            family (e.g. ``total_count`` of a Binomial); see :meth:`_fixed_params`.
        :rtype: ExponentialFamily
        """
        raise NotImplementedError(f"{cls.__name__} does not implement _from_natural_params")

    def _fixed_params(self) -> dict:
        """
        Constructor arguments that are held fixed by the family and must be
        passed to :meth:`_from_natural_params` (e.g. ``{"total_count": n}``).
        """
        return {}

    def sufficient_statistics(self, value: Tensor) -> tuple[Tensor, ...]:
        """
        Sufficient statistics :math:`t(x)`, one tensor per natural parameter,
        each of shape ``sample_shape + batch_shape + event`` where ``event`` is
        that natural parameter's event shape.

        :param Tensor value: a value in the support, of shape
            ``sample_shape + batch_shape + event_shape`` (batch dimensions may
            broadcast).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement sufficient_statistics")

    def log_carrier_measure(self, value: Tensor) -> Tensor:
        """
        Log carrier (base) measure :math:`k(x)`, of shape
        ``sample_shape + batch_shape`` (broadcast).

        :param Tensor value: a value in the support.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement log_carrier_measure")

    @property
    def _carrier_shift(self) -> tuple[Tensor | float, ...] | None:
        """
        The vector ``c`` with ``k(x) = <c, t(x)> + k_0``, one entry per natural
        parameter (a number or a tensor broadcastable to that parameter's
        event shape), or ``None`` when the carrier measure is constant.
        """
        return None

    # ------------------------------------------------------------------ #
    # Generic algebra
    # ------------------------------------------------------------------ #
    def _expanded_natural_params(self) -> tuple[Tensor, ...]:
        """Natural parameters expanded to ``batch_shape + event`` each."""
        params = self._natural_params
        out = []
        for p, r in zip(params, self._natural_param_event_dims, strict=True):
            p = torch.as_tensor(p)
            event = p.shape[p.dim() - r :] if r else torch.Size()
            out.append(p.expand(self.batch_shape + event))
        return tuple(out)

    def log_prob_natural(self, value: Tensor) -> Tensor:
        r"""
        :math:`\langle\eta, t(x)\rangle - A(\eta) + k(x)`, which equals
        :meth:`log_prob` for every family (this is tested); useful to check a
        family and as a reference formula.

        :param Tensor value: a value in the support.
        """
        eta = self._natural_params
        stats = self.sufficient_statistics(value)
        result = self.log_carrier_measure(value) - self._log_normalizer(*eta)
        for e, t, r in zip(eta, stats, self._natural_param_event_dims, strict=True):
            term = e * t
            if r:
                term = term.sum(tuple(range(-r, 0)))
            result = result + term
        return result

    def mean_parameters(self) -> tuple[Tensor, ...]:
        r"""
        Mean parameters :math:`E[t(x)] = \nabla A(\eta)`, one tensor per
        natural parameter, of shape ``batch_shape + event``.

        The default differentiates :meth:`_log_normalizer` with autograd;
        families override it with closed forms.  Gradients flow back to the
        distribution's parameters.
        """
        params = self._expanded_natural_params()
        # keep a graph only when the caller can differentiate through the result
        create_graph = torch.is_grad_enabled() and any(p.requires_grad for p in params)
        with torch.enable_grad():
            eta = [p if p.requires_grad else p.detach().requires_grad_() for p in params]
            log_norm = self._log_normalizer(*eta)
            grads = torch.autograd.grad(log_norm.sum(), eta, create_graph=create_graph)
        return tuple(grads)

    @classmethod
    def from_mean_parameters(cls: type[_EF], *mean_params: Tensor, **fixed) -> _EF:
        r"""
        Inverse of :meth:`mean_parameters`: the member of the family whose
        expected sufficient statistics are ``mean_params`` (the maximum
        likelihood estimate given average sufficient statistics; EM's M-step
        and moment matching).

        :param Tensor mean_params: expected sufficient statistics, in the order
            of :meth:`sufficient_statistics`.
        :param fixed: fixed parameters of the family, see :meth:`_fixed_params`.
        :rtype: ExponentialFamily
        """
        raise NotImplementedError(f"{cls.__name__} does not implement from_mean_parameters")

    @classmethod
    def _check_natural_params(
        cls,
        *natural_params: Tensor,
        what: str = "natural parameters",
        names: Sequence[str] | None = None,
        consequence: str | None = "the normalised product does not exist",
    ) -> None:
        """
        Raise :class:`ValueError` if ``natural_params`` leave the natural
        parameter space, naming the natural parameter, its space and an
        offending value.

        :param str what: what the parameters are (e.g. "natural parameters of the product").
        :param names: names of the natural parameters (default: their indices).
        :param str consequence: appended to the message (``None``: nothing).
        """
        if len(natural_params) != len(cls._natural_param_constraints):
            raise ValueError(
                f"{cls.__name__}: expected {len(cls._natural_param_constraints)} natural parameters, "
                f"got {len(natural_params)}"
            )
        for i, (p, c) in enumerate(zip(natural_params, cls._natural_param_constraints, strict=True)):
            p = torch.as_tensor(p)
            ok = c.check(p)
            if not bool(torch.all(ok)):
                names = cls._natural_param_names if names is None else names
                name = names[i] if names is not None and i < len(names) else str(i)
                bad = ok.logical_not().expand(p.shape[: ok.dim()]) if ok.dim() else None
                sample = p if bad is None else p[bad][0]
                tail = f"; {consequence}" if consequence else ""
                desc = cls._natural_param_descriptions[i] if i < len(cls._natural_param_descriptions) else None
                desc = f" ({desc})" if desc else ""
                raise ValueError(
                    f"{cls.__name__}: {what} leave the natural parameter space: natural parameter "
                    f"{name} (index {i}) must satisfy {c}{desc}, got {sample.tolist()}{tail}"
                )

    def _product_dim(self, dim: int) -> int:
        """Normalise a batch ``dim`` (negative or non-negative) to a negative batch index."""
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"dim must be an int, got {type(dim).__name__}")
        batch_rank = len(self.batch_shape)
        if not -batch_rank <= dim < batch_rank:
            raise ValueError(
                f"dim={dim} is out of range for batch_shape {tuple(self.batch_shape)}: "
                "products reduce batch dimensions only (event dimensions never reduce)"
            )
        return dim - batch_rank if dim >= 0 else dim

    def _product_weights(self, weights: Tensor | None, like: Tensor) -> Tensor:
        """Product exponents expanded to ``batch_shape`` (all ones by default), checked."""
        if weights is None:
            return torch.ones(self.batch_shape, dtype=like.dtype, device=like.device)
        w = torch.as_tensor(weights, dtype=like.dtype, device=like.device)
        if not bool(torch.isfinite(w).all()):
            raise ValueError("weights must be finite")
        try:
            return w.expand(self.batch_shape)
        except RuntimeError as e:
            raise ValueError(
                f"weights of shape {tuple(w.shape)} do not broadcast to batch_shape {tuple(self.batch_shape)}"
            ) from e

    def _product_with_log_normalizer(
        self,
        dim: int = -1,
        keepdim: bool = True,
        weights: Tensor | None = None,
        log_normalizer: bool = True,
    ) -> tuple[ExponentialFamily, Tensor | None]:
        """The product along ``dim`` and its ``log Z`` (``None`` unless ``log_normalizer``)."""
        if self._product_refusal is not None:
            raise NotImplementedError(
                f"The normalised product of {type(self).__name__} densities is not a "
                f"{type(self).__name__}: {self._product_refusal}"
            )
        bdim = self._product_dim(dim)
        eta = self._expanded_natural_params()
        dtype = eta[0].dtype
        low = dtype in _LOW_PRECISION
        if low and _overflowed(self, eta):
            # e.g. float32 Normal scales of 1e-20 or 1e20: the natural parameters over/underflow
            return self._product_in_float64(dim, keepdim, weights, log_normalizer)
        w = self._product_weights(weights, eta[0])
        total = w.sum(bdim, keepdim=keepdim)  # W
        shift = self._carrier_shift
        new_eta = []
        for i, (p, r) in enumerate(zip(eta, self._natural_param_event_dims, strict=True)):
            wi = w.reshape(w.shape + (1,) * r)
            q = (wi * p).sum(bdim - r, keepdim=keepdim)
            if shift is not None:
                c = torch.as_tensor(shift[i], dtype=dtype, device=p.device)
                q = q + (total - 1).reshape(total.shape + (1,) * r) * c
            new_eta.append(q)
        if low and _overflowed(self, new_eta):
            return self._product_in_float64(dim, keepdim, weights, log_normalizer)
        try:
            type(self)._check_natural_params(*new_eta, what="natural parameters of the product")
        except ValueError:
            if low:  # decide in float64 whether the product really leaves the space
                return self._product_in_float64(dim, keepdim, weights, log_normalizer)
            raise
        result = _unchecked_from_natural_params(type(self), *new_eta, **self._reduced_fixed_params(bdim, keepdim))
        if not log_normalizer:
            return result, None
        # the product's own log normaliser (its fixed parameters are reduced along dim, e.g. Pareto's scale)
        log_norm = result._log_normalizer(*new_eta) - (w * self._log_normalizer(*eta)).sum(bdim, keepdim=keepdim)
        if self._carrier_constant:
            log_norm = log_norm + (total - 1) * self._carrier_constant
        return result, log_norm

    def _reduced_fixed_params(self, bdim: int, keepdim: bool) -> dict:
        """
        The fixed parameters of the product along batch dimension ``bdim``
        (negative): each must be constant along it (a product of Laplace
        densities with different ``loc`` is not a Laplace density).
        """
        out = {}
        for key, val in self._fixed_params().items():
            if not torch.is_tensor(val) or val.dim() == 0:
                out[key] = val
                continue
            v = val.expand(self.batch_shape)
            if v.shape[bdim] == 0:
                raise ValueError(
                    f"the empty product of {type(self).__name__} densities has no {key} (it is not a "
                    f"{type(self).__name__})"
                )
            first = v.narrow(bdim, 0, 1)
            if not bool((v == first).all()):
                raise ValueError(
                    f"product of {type(self).__name__} densities with different {key} along dim {bdim}: "
                    f"the family holds {key} fixed, and the product of members with different {key} is "
                    "not in the family"
                )
            out[key] = first if keepdim else first.squeeze(bdim)
        return out

    def _product_in_float64(
        self, dim: int, keepdim: bool, weights: Tensor | None, log_normalizer: bool = True
    ) -> tuple[ExponentialFamily, Tensor | None]:
        """
        The product computed in float64 and cast back to this distribution's
        dtype; refused (``ValueError``) only when the result is not representable.
        """
        dtype = self._expanded_natural_params()[0].dtype
        w = None if weights is None else torch.as_tensor(weights).to(torch.float64)
        result, log_norm = _astype(self, torch.float64)._product_with_log_normalizer(dim, keepdim, w, log_normalizer)
        what = f"the normalised product ({type(result).__name__}, computed in float64)"
        return _astype(result, dtype, what=what), (None if log_norm is None else log_norm.to(dtype))

    def product_along_axis(
        self: _EF, dim: int = -1, keepdim: bool = True, weights: Tensor | None = None
    ) -> _EF:
        r"""
        Normalised product of the densities along batch dimension ``dim``.

        For factors :math:`p_i` (the slices of this batch along ``dim``) returns
        the distribution proportional to :math:`\prod_i p_i(x)^{w_i}`.

        :param int dim: batch dimension to reduce, negative or non-negative,
            counted in ``batch_shape`` (event dimensions never reduce).
        :param bool keepdim: keep the reduced dimension with size 1.
        :param Tensor weights: optional exponents :math:`w_i`, broadcastable to
            ``batch_shape`` (0/1 weights select factors, as in overlapping
            mixtures).  Default all ones.
        :raises NotImplementedError: if the family is not closed under products
            (the message says why).
        :raises ValueError: if the product leaves the natural parameter space.

        Example::

            >>> import torch
            >>> from pyro_expfam.distributions import Normal
            >>> d = Normal(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 1.0]))
            >>> p = d.product_along_axis(-1)
            >>> p.batch_shape, p.loc, p.scale
            (torch.Size([1]), tensor([1.]), tensor([0.7071]))
        """
        return self._product_with_log_normalizer(dim, keepdim, weights, log_normalizer=False)[0]

    def bregman_kl(self, other: ExponentialFamily, mean_parameters: Sequence[Tensor] | None = None) -> Tensor:
        r"""
        :math:`KL(\mathrm{self}\,\|\,\mathrm{other})` from the log normaliser
        alone; see :func:`bregman_kl`.

        :param ExponentialFamily other: a distribution of the same family.
        :param mean_parameters: ``self.mean_parameters()`` if already computed.
        """
        return bregman_kl(self, other, mean_parameters)

    def conjugate_update(self, other: ExponentialFamily) -> tuple[ExponentialFamily, Tensor]:
        """
        Pyro's ``conjugate_update`` contract for two distributions of one family::

            fg, log_normalizer = f.conjugate_update(g)
            f.log_prob(x) + g.log_prob(x) == fg.log_prob(x) + log_normalizer

        :param ExponentialFamily other: a distribution of the same family with
            a broadcastable batch shape.
        """
        if isinstance(other, torch.distributions.Independent):
            raise TypeError("conjugate_update expects a distribution of the same family, not Independent")
        stacked = _stack([self, other])
        return stacked._product_with_log_normalizer(0, keepdim=False)


def _stack(dists: Sequence[ExponentialFamily]) -> ExponentialFamily:
    """Stack distributions of one family along a new leading batch dimension."""
    if len(dists) == 0:
        raise ValueError("product needs at least one distribution")
    ours = [d for d in dists if isinstance(d, ExponentialFamily)]
    if ours:
        cls = type(ours[0])
    else:  # torch/Pyro instances of our families are converted
        from .independent import _as_ours

        cls = type(_as_ours(dists[0]))
    dists = [d if isinstance(d, ExponentialFamily) else _as_family(cls, d) for d in dists]
    for d in dists[1:]:
        if type(d) is not cls:
            raise TypeError(
                f"product of distributions of different families: {cls.__name__} and {type(d).__name__}"
            )
        if d.event_shape != dists[0].event_shape:
            raise ValueError(
                f"product of {cls.__name__} distributions with different event shapes: "
                f"{tuple(dists[0].event_shape)} and {tuple(d.event_shape)}"
            )
    fixed = dists[0]._fixed_params()
    for d in dists[1:]:
        for key, val in d._fixed_params().items():
            if not bool(torch.all(torch.as_tensor(val) == torch.as_tensor(fixed[key]))):
                raise ValueError(f"product of {cls.__name__} distributions with different {key}")
    try:
        batch_shape = torch.broadcast_shapes(*(d.batch_shape for d in dists))
    except RuntimeError as e:
        raise ValueError(
            "product of distributions whose batch shapes do not broadcast: "
            + ", ".join(str(tuple(d.batch_shape)) for d in dists)
        ) from e
    params = list(zip(*(d.expand(batch_shape)._expanded_natural_params() for d in dists), strict=True))
    for ps in params:
        if len({p.shape for p in ps}) > 1:
            raise ValueError(
                f"product of {cls.__name__} distributions with different event shapes of their "
                "natural parameters: " + ", ".join(str(tuple(p.shape[len(batch_shape) :])) for p in ps)
            )
    stacked = [torch.stack(ps, 0) for ps in params]
    return cls._from_natural_params(*stacked, **fixed)


def product(*dists: ExponentialFamily) -> ExponentialFamily:
    r"""
    Normalised product :math:`\propto\prod_i p_i(x)` of distributions of one
    family, broadcasting their batch shapes.

    :param ExponentialFamily dists: distributions of one family.
    :raises TypeError: if the families differ.
    :raises ValueError: if batch or event shapes are incompatible or the product
        leaves the natural parameter space.
    :raises NotImplementedError: if the family is not closed under products.

    Example::

        >>> from pyro_expfam.distributions import Beta, product
        >>> p = product(Beta(2.0, 3.0), Beta(4.0, 1.5))
        >>> p.concentration1, p.concentration0
        (tensor(5.), tensor(3.5000))
    """
    return _stack(dists).product_along_axis(0, keepdim=False)


def weighted_product(dists: Sequence[ExponentialFamily], weights: Tensor | Sequence[float]) -> ExponentialFamily:
    r"""
    Normalised weighted product :math:`\propto\prod_i p_i(x)^{w_i}`.

    :param dists: distributions of one family (batch shapes broadcast).
    :param weights: one exponent per distribution: a sequence of numbers, or a
        tensor of shape ``(len(dists),) + batch_shape`` (broadcastable), e.g.
        0/1 membership indicators.
    """
    stacked = _stack(list(dists))
    ref = stacked._expanded_natural_params()[0]
    w = torch.as_tensor(weights, dtype=ref.dtype, device=ref.device)
    if w.dim() == 0 or w.shape[0] != len(dists):
        raise ValueError(f"weights must have a leading dimension of size {len(dists)}, got shape {tuple(w.shape)}")
    if w.dim() > len(stacked.batch_shape):
        raise ValueError(
            f"weights of shape {tuple(w.shape)} have more dimensions than (len(dists),) + batch_shape "
            f"= {tuple(stacked.batch_shape)}"
        )
    # right-align the trailing weight dimensions with the distributions' batch shape
    w = w.reshape(w.shape[:1] + (1,) * (len(stacked.batch_shape) - w.dim()) + w.shape[1:])
    return stacked.product_along_axis(0, keepdim=False, weights=w)


def _broadcast_two(a: torch.Size, b: torch.Size, what: str) -> torch.Size:
    """
    Broadcast two shapes in plain Python (the first ``torch.broadcast_shapes`` call in a process imports
    ``torch.fx``'s symbolic shapes and sympy, ~0.4 s, which a fitting loop should not pay).
    """
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    if any(x != y and x != 1 and y != 1 for x, y in zip(a, b, strict=True)):
        raise ValueError(f"{what} {a} and {b} do not broadcast")
    return torch.Size(y if x == 1 else x for x, y in zip(a, b, strict=True))


def bregman_kl(
    p: ExponentialFamily, q: ExponentialFamily, p_mean_parameters: Sequence[Tensor] | None = None
) -> Tensor:
    r"""
    :math:`KL(p\,\|\,q)` for two members of one exponential family, as the
    Bregman divergence of the log normaliser:

    .. math::

        KL(p\,\|\,q) = A(\eta_q) - A(\eta_p) - \langle\eta_q - \eta_p, E_p[t(x)]\rangle,

    with :math:`E_p[t(x)] = \nabla A(\eta_p)` from :meth:`ExponentialFamily.mean_parameters`
    (closed form where the family has one, autograd otherwise).  Each inner
    product runs over that natural parameter's event dimensions
    (``_natural_param_event_dims``), so matrix parameters (MultivariateNormal,
    Wishart, NormalWishart) are handled correctly.  Exact for every family;
    in floating point it loses relative accuracy when ``p`` and ``q`` are very
    close (the terms cancel), like any Bregman form.

    :param ExponentialFamily p: the first argument of the KL divergence.
    :param ExponentialFamily q: a distribution of the same class, with the same
        event shape, fixed parameters (see ``_fixed_params``) and a batch shape
        that broadcasts with ``p``'s.
    :param p_mean_parameters: ``p.mean_parameters()`` if already computed (one
        tensor per natural parameter); computed when ``None``.
    :returns: a tensor of the broadcast batch shape.
    :raises TypeError: if ``p`` and ``q`` are not pyro_expfam distributions of one class.
    :raises ValueError: if event shapes or fixed parameters differ, or batch shapes do not broadcast.

    Example::

        >>> import torch
        >>> from pyro_expfam.distributions import Beta, bregman_kl
        >>> bregman_kl(Beta(2.0, 3.0), Beta(1.0, 1.0))
        tensor(0.2349)
        >>> torch.distributions.kl_divergence(torch.distributions.Beta(2.0, 3.0), torch.distributions.Beta(1.0, 1.0))
        tensor(0.2349)
    """
    if not isinstance(p, ExponentialFamily) or not isinstance(q, ExponentialFamily):
        raise TypeError(
            f"bregman_kl expects pyro_expfam ExponentialFamily distributions, got {type(p).__name__} "
            f"and {type(q).__name__}"
        )
    if type(p) is not type(q):
        raise TypeError(f"bregman_kl between different families: {type(p).__name__} and {type(q).__name__}")
    if p.event_shape != q.event_shape:
        raise ValueError(
            f"bregman_kl: event shapes differ: {tuple(p.event_shape)} and {tuple(q.event_shape)}"
        )
    fixed_q = q._fixed_params()
    for key, val in p._fixed_params().items():
        if not bool(torch.all(torch.as_tensor(val) == torch.as_tensor(fixed_q[key]))):
            raise ValueError(f"bregman_kl: {type(p).__name__} distributions with different {key}")
    batch_shape = _broadcast_two(p.batch_shape, q.batch_shape, "bregman_kl: batch shapes")
    eta_p, eta_q = p._natural_params, q._natural_params
    mean = p.mean_parameters() if p_mean_parameters is None else tuple(p_mean_parameters)
    if len(mean) != len(eta_p):
        raise ValueError(
            f"bregman_kl: p_mean_parameters must have {len(eta_p)} tensors (one per natural parameter), "
            f"got {len(mean)}"
        )
    result = q._log_normalizer(*eta_q) - p._log_normalizer(*eta_p)
    for e_p, e_q, m, r in zip(eta_p, eta_q, mean, p._natural_param_event_dims, strict=True):
        term = (e_q - e_p) * m
        if r:
            term = term.sum(tuple(range(-r, 0)))
        result = result - term
    if result.dtype in _LOW_PRECISION and not (
        _representable([result]) and _representable(eta_p) and _representable(eta_q)
    ):
        # natural parameters over/underflow in low precision (e.g. float32 Normal(0, 1e-20)): use float64
        p64, q64 = _astype(p, torch.float64), _astype(q, torch.float64)
        result = bregman_kl(p64, q64).to(result.dtype)
    return result.expand(batch_shape)
