# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Conjugate updates through natural parameters.

For a likelihood :math:`p(x\mid\theta)` and a prior from an exponential family
with sufficient statistics :math:`T(\theta)`, conjugacy means that the
log-likelihood is linear in :math:`T(\theta)`:

.. math::

    \log p(x \mid \theta) = \langle s(x), T(\theta)\rangle + h(x).

Then the prior :math:`\exp(\langle\eta_0, T(\theta)\rangle - A(\eta_0) + k(\theta))`
times the likelihood of data :math:`x_{1..n}` is

.. math::

    p(\theta \mid x_{1..n}) \text{ with } \eta_n = \eta_0 + \sum_i s(x_i),\qquad
    \log p(x_{1..n}) = A(\eta_n) - A(\eta_0) + \sum_i h(x_i).

A :class:`ConjugatePair` states :math:`s` (the likelihood's sufficient
statistics written in the prior's natural coordinates; the count :math:`n`
enters through the constant entries of :math:`s`) and :math:`h`; everything
else (posterior, evidence, Pyro's ``conjugate_update`` contract, the
likelihood as a distribution over :math:`\theta`) is generic and uses the
prior family's ``_natural_params``, ``_log_normalizer`` and
``_from_natural_params`` from :mod:`pyro_expfam.distributions`.

Priors and likelihoods may be torch, Pyro or pyro_expfam distributions; a
posterior is returned in the prior's own class (a torch ``Beta`` prior gives a
torch ``Beta`` posterior).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from ..torch_patch import as_expfam, convert_family, family_name

__all__ = [
    "ConjugatePair",
    "conjugate_likelihood",
    "conjugate_pair",
    "conjugate_pairs",
    "conjugate_statistics",
    "conjugate_update",
    "log_marginal_likelihood",
    "posterior",
    "posterior_from_statistics",
    "posterior_predictive",
    "register_conjugate",
]


class ConjugatePair:
    r"""
    A conjugate (prior family, likelihood family) pair, stated through the
    prior's natural parameters.

    Subclasses set :attr:`prior` and :attr:`likelihood` (family names, e.g.
    ``"Beta"`` and ``"Bernoulli"``, or a prior class such as
    :class:`~pyro_expfam.conjugate.NormalGamma`), :attr:`event_dim`,
    :attr:`required` and implement :meth:`statistics`, :meth:`log_base` and
    :meth:`predictive`; register them with :func:`register_conjugate`.
    """

    #: prior family name (as in ``torch.distributions``) or prior class name
    prior: str = ""
    #: likelihood family name (as in ``torch.distributions``)
    likelihood: str = ""
    #: event rank of one observation
    event_dim: int = 0
    #: fixed likelihood parameters that :meth:`statistics` needs, e.g. ``("total_count",)``
    required: tuple[str, ...] = ()
    #: fixed likelihood parameters that are accepted (required ones included)
    accepted: tuple[str, ...] = ()

    def check_data(self, data: Tensor, prior, fixed: dict) -> None:
        """
        Raise :class:`ValueError` if ``data`` is outside the likelihood's support.

        :param Tensor data: observations.
        :param prior: the prior (pyro_expfam form).
        :param dict fixed: fixed likelihood parameters.
        """

    def statistics(self, data: Tensor, prior, fixed: dict) -> tuple[Tensor, ...]:
        """
        Per-observation increments :math:`s(x)` of the prior's natural
        parameters, each of shape ``obs_shape + event`` (``obs_shape`` is
        ``data``'s shape without the observation event dimensions, broadcast
        with the fixed parameters).

        :param Tensor data: observations.
        :param prior: the prior (pyro_expfam form).
        :param dict fixed: fixed likelihood parameters.
        """
        raise NotImplementedError

    def log_base(self, data: Tensor, prior, fixed: dict) -> Tensor:
        """
        The part :math:`h(x)` of :math:`\\log p(x\\mid\\theta)` that does not
        depend on :math:`\\theta`, of shape ``obs_shape``.

        :param Tensor data: observations.
        :param prior: the prior (pyro_expfam form).
        :param dict fixed: fixed likelihood parameters.
        """
        raise NotImplementedError

    def predictive(self, post, likelihood: type, fixed: dict) -> Distribution:
        """
        Closed-form posterior predictive distribution of one new observation.

        :param post: the posterior (in the prior's class).
        :param type likelihood: the likelihood class the user passed.
        :param dict fixed: fixed likelihood parameters.
        """
        raise NotImplementedError(f"no closed-form predictive for {self.prior}-{self.likelihood}")

    def stable_update(self, prior, data: Tensor, weights: Tensor | None, fixed: dict):
        r"""
        Optional: ``(posterior, log evidence)`` computed from centred
        statistics rather than through the natural parameters, for pairs where
        the natural-parameter round trip cancels catastrophically in low
        precision (the Normal–Gamma rate and the Normal–Wishart scale matrix
        subtract :math:`(\sum x)^2/n` from :math:`\sum x^2`).  Must agree with
        the natural-parameter route in exact arithmetic.  Return ``None`` to
        use the generic route.

        :param prior: the prior (pyro_expfam form).
        :param Tensor data: validated observations.
        :param Tensor weights: per-observation weights broadcast to ``obs_shape``, or ``None``.
        :param dict fixed: fixed likelihood parameters.
        """
        return None

    def likelihood_distribution(self, theta: Tensor, likelihood: type, fixed: dict) -> Distribution:
        """
        The likelihood :math:`p(\\cdot\\mid\\theta)` as a distribution (used by
        tests and by Monte Carlo checks of the predictive).

        :param Tensor theta: a value of the prior's random variable.
        :param type likelihood: the likelihood class.
        :param dict fixed: fixed likelihood parameters.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.prior}, {self.likelihood})"


_REGISTRY: dict[tuple[str, str], ConjugatePair] = {}


def register_conjugate(pair_cls: type[ConjugatePair]) -> type[ConjugatePair]:
    """
    Class decorator registering a :class:`ConjugatePair` subclass under
    ``(pair_cls.prior, pair_cls.likelihood)``.

    :param type pair_cls: the pair class.
    """
    key = (pair_cls.prior, pair_cls.likelihood)
    if not all(key):
        raise ValueError(f"{pair_cls.__name__} must set prior and likelihood")
    _REGISTRY[key] = pair_cls()
    return pair_cls


def conjugate_pairs() -> list[tuple[str, str]]:
    """The registered (prior, likelihood) pairs, sorted."""
    return sorted(_REGISTRY)


def _prior_key(prior) -> str:
    try:
        return family_name(prior)
    except TypeError:
        return type(prior).__name__


def _likelihood_key(likelihood) -> str:
    if isinstance(likelihood, Distribution):
        raise TypeError(
            f"likelihood must be a distribution class (e.g. Bernoulli), not an instance of "
            f"{type(likelihood).__name__}; pass fixed parameters such as total_count or scale as keywords"
        )
    if not (isinstance(likelihood, type) and issubclass(likelihood, Distribution)):
        raise TypeError(f"likelihood must be a distribution class, got {likelihood!r}")
    return family_name(likelihood)


def conjugate_pair(prior, likelihood: type) -> ConjugatePair:
    """
    The registered :class:`ConjugatePair` for a prior (instance) and a
    likelihood class.

    :param prior: the prior distribution (torch, Pyro or pyro_expfam).
    :param type likelihood: the likelihood's class.
    :raises TypeError: if the pair is not registered.
    """
    if isinstance(prior, Independent):
        return conjugate_pair(prior.base_dist, likelihood)
    if not isinstance(prior, Distribution):
        raise TypeError(f"prior must be a distribution, got {type(prior).__name__}")
    key = (_prior_key(prior), _likelihood_key(likelihood))
    if key not in _REGISTRY:
        raise TypeError(
            f"no conjugate pair registered for prior {key[0]} and likelihood {key[1]}; registered pairs: "
            + ", ".join(f"{p}-{q}" for p, q in conjugate_pairs())
        )
    return _REGISTRY[key]


# ---------------------------------------------------------------------- #
# Generic machinery
# ---------------------------------------------------------------------- #
def _check_fixed(pair: ConjugatePair, fixed: dict) -> None:
    accepted = set(pair.accepted) | set(pair.required)
    unknown = set(fixed) - accepted
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {sorted(unknown)} for {pair.prior}-{pair.likelihood}; "
            f"accepted: {sorted(accepted)}"
        )
    missing = [k for k in pair.required if fixed.get(k) is None]
    if missing:
        raise TypeError(f"{pair.prior}-{pair.likelihood} needs the fixed likelihood parameter(s) {missing}")


def _as_data(data, ref: Tensor, pair: ConjugatePair) -> Tensor:
    if isinstance(data, Tensor):
        x = data.to(device=ref.device, dtype=ref.dtype)
    else:
        try:
            x = torch.as_tensor(data, dtype=ref.dtype, device=ref.device)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"data must be a tensor or array of numbers, got {type(data).__name__}") from e
    if x.dim() < pair.event_dim:
        raise ValueError(f"data must have at least {pair.event_dim} dimension(s), got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("data contains NaN or infinite values")
    return x


def _ref_tensor(prior_ef) -> Tensor:
    return prior_ef._expanded_natural_params()[0]


def _broadcasts(a: torch.Size, b: torch.Size) -> bool:
    return all(x == y or x == 1 for x, y in zip(a, b))


def _sum_observations(t: Tensor, event_rank: int, batch_rank: int) -> Tensor:
    n_sample = t.dim() - event_rank - batch_rank
    if n_sample > 0:
        t = t.sum(tuple(range(n_sample)))
    return t


def _weighted(t: Tensor, w: Tensor | None, event_rank: int) -> Tensor:
    if w is None:
        return t
    return t * w.reshape(w.shape + (1,) * event_rank)


def _unwrap(prior):
    """Return (base prior, reinterpreted batch dims) for Independent priors."""
    n = 0
    while isinstance(prior, Independent):
        n += prior.reinterpreted_batch_ndims
        prior = prior.base_dist
    return prior, n


def _prepare(pair: ConjugatePair, prior_ef, data, weights, fixed) -> tuple[Tensor, Tensor | None, dict]:
    """Validate and convert data, weights and fixed parameters; weights come back broadcast to ``obs_shape``."""
    ref = _ref_tensor(prior_ef)
    x = _as_data(data, ref, pair)
    fixed = {k: v for k, v in fixed.items() if v is not None}
    pair.check_data(x, prior_ef, fixed)
    # one observation has shape batch_shape + event: the leading dimensions of data index observations
    obs_batch = x.shape[: x.dim() - pair.event_dim] if pair.event_dim else x.shape
    batch = prior_ef.batch_shape
    if len(batch) and (len(obs_batch) < len(batch) or not _broadcasts(obs_batch[len(obs_batch) - len(batch) :], batch)):
        raise ValueError(
            f"data of shape {tuple(x.shape)} does not match the prior's batch_shape {tuple(batch)}: "
            f"data must have shape (N,) + batch_shape + event_shape (batch dimensions may be 1)"
        )
    w = None
    if weights is not None:
        w = torch.as_tensor(weights, dtype=ref.dtype, device=ref.device)
        if not bool(torch.isfinite(w).all()):
            raise ValueError("weights must be finite")
        obs_shape = pair.log_base(x, prior_ef, fixed).shape
        try:
            w = w.expand(obs_shape)
        except RuntimeError as e:
            raise ValueError(
                f"weights of shape {tuple(w.shape)} do not broadcast to the observations' shape {tuple(obs_shape)}"
            ) from e
    return x, w, fixed


def _summed_prepared(pair: ConjugatePair, prior_ef, x, w, fixed) -> tuple[tuple[Tensor, ...], Tensor]:
    stats = pair.statistics(x, prior_ef, fixed)
    base = pair.log_base(x, prior_ef, fixed)
    batch_rank = len(prior_ef.batch_shape)
    ranks = prior_ef._natural_param_event_dims
    summed = tuple(
        _sum_observations(_weighted(s, w, r), r, batch_rank) for s, r in zip(stats, ranks, strict=True)
    )
    log_base = _sum_observations(_weighted(base, w, 0), 0, batch_rank)
    return summed, log_base


def _summed(pair: ConjugatePair, prior_ef, data, weights, fixed) -> tuple[tuple[Tensor, ...], Tensor]:
    x, w, fixed = _prepare(pair, prior_ef, data, weights, fixed)
    return _summed_prepared(pair, prior_ef, x, w, fixed)


def _in_prior_class(post, prior):
    if type(post) is type(prior):
        return post
    return convert_family(post, type(prior))


def _posterior_from_eta(prior_ef, eta, what: str):
    cls = type(prior_ef)
    cls._check_natural_params(*eta, what=what)
    return cls._from_natural_params(*eta, **prior_ef._fixed_params())


def _add(eta: tuple[Tensor, ...], stats: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return tuple(e + s for e, s in zip(eta, stats, strict=True))


def _update(prior, likelihood, data, weights, fixed):
    """Core of :func:`conjugate_update`: (posterior, log evidence), Independent priors included."""
    base, n = _unwrap(prior)
    pair = conjugate_pair(base, likelihood)
    _check_fixed(pair, fixed)
    prior_ef = as_expfam(base)
    eta0 = prior_ef._expanded_natural_params()
    x, w, fixed = _prepare(pair, prior_ef, data, weights, fixed)
    direct = pair.stable_update(prior_ef, x, w, fixed)
    if direct is not None:
        post, log_evidence = direct
    else:
        stats, log_base = _summed_prepared(pair, prior_ef, x, w, fixed)
        eta = _add(eta0, stats)
        post = _posterior_from_eta(prior_ef, eta, what="posterior natural parameters")
        log_evidence = prior_ef._log_normalizer(*eta) - prior_ef._log_normalizer(*eta0) + log_base
    post = _in_prior_class(post, base)
    if n:
        post = post.to_event(n) if hasattr(post, "to_event") else Independent(post, n)
        log_evidence = log_evidence.sum(tuple(range(-n, 0)))
    return post, log_evidence


def conjugate_update(
    prior: Distribution, likelihood: type, data: Tensor, weights: Tensor | None = None, **fixed
) -> tuple[Distribution, Tensor]:
    r"""
    Posterior and log evidence of a conjugate model, in the form of Pyro's
    ``conjugate_update`` contract::

        post, log_normalizer = conjugate_update(prior, Likelihood, data, **fixed)
        prior.log_prob(theta) + sum_i Likelihood(theta, **fixed).log_prob(data[i])
            == post.log_prob(theta) + log_normalizer            # for every theta

    so ``log_normalizer`` is the log marginal likelihood :math:`\log p(x_{1..n})`.

    :param prior: the prior over the likelihood's parameter (torch, Pyro or
        pyro_expfam distribution; ``Independent`` priors are supported).
    :param type likelihood: the likelihood's class (e.g. ``Bernoulli``).
    :param Tensor data: observations of shape ``sample_shape + batch_shape +
        event_shape``; all leading dimensions beyond the prior's batch rank are
        observations and are summed over.  To give the same ``n`` observations
        to every member of a batched prior use shape
        ``(n,) + (1,) * len(batch_shape) + event_shape``.
    :param Tensor weights: optional per-observation weights (shape
        ``sample_shape + batch_shape``, broadcastable): the update uses
        :math:`\sum_i w_i \log p(x_i\mid\theta)` (responsibilities in EM/VI,
        ``N/|B|`` minibatch scaling).
    :param fixed: fixed likelihood parameters (``total_count`` for Binomial,
        ``scale`` for Normal with known variance, ``scale_tril`` /
        ``covariance_matrix`` / ``precision_matrix`` for MultivariateNormal
        with known covariance).
    :returns: ``(posterior, log_normalizer)``, the posterior in the prior's class.
    :raises TypeError: for an unregistered pair or missing fixed parameters.
    :raises ValueError: for data outside the likelihood's support or a
        posterior outside the natural parameter space (e.g. negative weights).
    """
    return _update(prior, likelihood, data, weights, fixed)


def posterior(prior: Distribution, likelihood: type, data: Tensor, weights: Tensor | None = None, **fixed):
    r"""
    Posterior of a conjugate model: the prior's natural parameters plus the
    summed sufficient statistics of the data (see :func:`conjugate_update`
    for the arguments).

    :param prior: the prior distribution.
    :param type likelihood: the likelihood's class.
    :param Tensor data: observations.
    :param Tensor weights: optional per-observation weights.
    :param fixed: fixed likelihood parameters.

    Example::

        >>> import torch
        >>> from pyro_expfam.conjugate import posterior
        >>> from pyro_expfam.distributions import Bernoulli, Beta
        >>> post = posterior(Beta(1.0, 1.0), Bernoulli, torch.tensor([1.0, 1.0, 0.0]))
        >>> post.concentration1, post.concentration0
        (tensor(3.), tensor(2.))
    """
    return _update(prior, likelihood, data, weights, fixed)[0]


def log_marginal_likelihood(
    prior: Distribution, likelihood: type, data: Tensor, weights: Tensor | None = None, **fixed
) -> Tensor:
    r"""
    Log evidence :math:`\log\int p(\theta)\prod_i p(x_i\mid\theta)\,d\theta
    = A(\eta_n) - A(\eta_0) + \sum_i h(x_i)` (see :func:`conjugate_update`).

    :param prior: the prior distribution.
    :param type likelihood: the likelihood's class.
    :param Tensor data: observations.
    :param Tensor weights: optional per-observation weights.
    :param fixed: fixed likelihood parameters.
    :returns: a tensor of the prior's batch shape.
    """
    return _update(prior, likelihood, data, weights, fixed)[1]


def conjugate_statistics(
    prior: Distribution, likelihood: type, data: Tensor, weights: Tensor | None = None, **fixed
) -> tuple[Tensor, ...]:
    r"""
    The summed sufficient statistics :math:`\sum_i w_i s(x_i)` of the data in
    the prior's natural coordinates (one tensor per natural parameter of the
    prior), so that ``posterior == posterior_from_statistics(prior, likelihood, stats)``.
    Expected statistics under a variational distribution can be passed to
    :func:`posterior_from_statistics` instead (CAVI / natural-gradient steps).

    :param prior: the prior distribution (not ``Independent``).
    :param type likelihood: the likelihood's class.
    :param Tensor data: observations.
    :param Tensor weights: optional per-observation weights.
    :param fixed: fixed likelihood parameters.
    """
    pair = conjugate_pair(prior, likelihood)
    _check_fixed(pair, fixed)
    return _summed(pair, as_expfam(prior), data, weights, fixed)[0]


def posterior_from_statistics(prior: Distribution, likelihood: type, statistics) -> Distribution:
    r"""
    The distribution of the prior's family with natural parameters
    ``prior_eta + statistics`` (see :func:`conjugate_statistics`).

    :param prior: the prior distribution (not ``Independent``).
    :param type likelihood: the likelihood's class (checked for conjugacy).
    :param statistics: one tensor per natural parameter of the prior.
    :raises ValueError: if the result leaves the natural parameter space.
    """
    conjugate_pair(prior, likelihood)
    prior_ef = as_expfam(prior)
    eta0 = prior_ef._expanded_natural_params()
    if len(statistics) != len(eta0):
        raise ValueError(f"statistics must have {len(eta0)} entries, one per natural parameter, got {len(statistics)}")
    stats = tuple(torch.as_tensor(s, dtype=e.dtype, device=e.device) for s, e in zip(statistics, eta0, strict=True))
    post = _posterior_from_eta(prior_ef, _add(eta0, stats), what="posterior natural parameters")
    return _in_prior_class(post, prior)


def conjugate_likelihood(
    prior: Distribution, likelihood: type, data: Tensor, weights: Tensor | None = None, **fixed
) -> tuple[Distribution, Tensor]:
    r"""
    The likelihood of the data as a normalised distribution over the prior's
    variable, in the prior's family: returns ``(g, log_scale)`` with

    .. math::

        \sum_i \log p(x_i\mid\theta) = g.\mathrm{log\_prob}(\theta) + \mathrm{log\_scale}.

    ``g`` is what Pyro's :class:`~pyro.infer.reparam.ConjugateReparam` expects
    as its guide and what Pyro's ``prior.conjugate_update(g)`` consumes
    (``g = Beta(1 + k, 1 + n - k)`` for ``k`` successes in ``n`` Bernoulli
    trials).  Its natural parameters are :math:`\sum_i s(x_i) - c` where the
    prior's carrier measure is :math:`k(\theta) = \langle c, T(\theta)\rangle + k_0`.

    :param prior: the prior (only its family and shapes are used; not ``Independent``).
    :param type likelihood: the likelihood's class.
    :param Tensor data: observations.
    :param Tensor weights: optional per-observation weights.
    :param fixed: fixed likelihood parameters.
    :raises ValueError: if the likelihood is not normalisable over
        :math:`\theta` (e.g. a single observation for Normal–Gamma).
    """
    pair = conjugate_pair(prior, likelihood)
    _check_fixed(pair, fixed)
    prior_ef = as_expfam(prior)
    stats, log_base = _summed(pair, prior_ef, data, weights, fixed)
    shift = prior_ef._carrier_shift
    if shift is not None:
        stats = tuple(s - torch.as_tensor(c, dtype=s.dtype, device=s.device) for s, c in zip(stats, shift, strict=True))
    cls = type(prior_ef)
    try:
        cls._check_natural_params(*stats, what="natural parameters of the likelihood")
    except ValueError as e:
        raise ValueError(
            f"the likelihood of these data is not normalisable over the parameter as a {cls.__name__} ({e}); "
            "use posterior() with a proper prior instead"
        ) from e
    g = cls._from_natural_params(*stats, **prior_ef._fixed_params())
    log_scale = prior_ef._log_normalizer(*stats) + log_base - prior_ef._carrier_constant
    return _in_prior_class(g, prior), log_scale


def posterior_predictive(
    prior: Distribution,
    likelihood: type,
    data: Tensor | None = None,
    weights: Tensor | None = None,
    **fixed,
) -> Distribution:
    r"""
    Closed-form posterior predictive :math:`p(x_{new}\mid x_{1..n}) =
    \int p(x_{new}\mid\theta)\,p(\theta\mid x_{1..n})\,d\theta` (the prior
    predictive when ``data`` is ``None``):

    ==============================  ==========================================
    prior – likelihood              predictive
    ==============================  ==========================================
    Beta – Bernoulli                ``Bernoulli`` (the likelihood's class)
    Beta – Binomial                 :class:`pyro.distributions.BetaBinomial`
    Beta – Geometric                :class:`~pyro_expfam.conjugate.BetaGeometric`
    Gamma – Poisson                 :class:`pyro.distributions.GammaPoisson`
    Gamma – Exponential             :class:`~pyro_expfam.conjugate.Lomax`
    Dirichlet – Categorical         ``Categorical`` (the likelihood's class)
    Dirichlet – OneHotCategorical   ``OneHotCategorical``
    Dirichlet – Multinomial         :class:`pyro.distributions.DirichletMultinomial`
    Normal – Normal (known scale)   ``Normal``
    MVN – MVN (known covariance)    ``MultivariateNormal``
    NormalGamma – Normal            :class:`pyro.distributions.StudentT`
    NormalWishart – MVN             :class:`pyro.distributions.MultivariateStudentT`
    ==============================  ==========================================

    :param prior: the prior distribution (``Independent`` priors give an
        ``Independent`` predictive).
    :param type likelihood: the likelihood's class.
    :param Tensor data: observations (optional).
    :param Tensor weights: optional per-observation weights.
    :param fixed: fixed likelihood parameters (``total_count`` is needed by
        the Binomial and Multinomial predictives).
    """
    post = prior if data is None else _update(prior, likelihood, data, weights, fixed)[0]
    base, n = _unwrap(post)
    pair = conjugate_pair(base, likelihood)
    _check_fixed(pair, fixed)
    pred = pair.predictive(base, likelihood, {k: v for k, v in fixed.items() if v is not None})
    if n:
        pred = pred.to_event(n) if hasattr(pred, "to_event") else Independent(pred, n)
    return pred

