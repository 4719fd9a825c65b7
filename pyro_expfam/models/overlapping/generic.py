# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Overlapping clusters of *any* family of the core whose product is exact
(:class:`ExpFamClusters`), and :func:`make_cluster_family`, which resolves the
``family`` argument of the models.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import biject_to

from ...distributions import ExponentialFamily
from ...families import BernoulliFamily, CategoricalFamily, ConjugateFamily, ExpFamFamily, GaussianFamily, get_family
from ...util import as_data_tensor
from .families import (
    BernoulliClusters,
    CategoricalClusters,
    ClusterFamily,
    MultivariateNormalClusters,
    NormalClusters,
    _positive,
)
from .likelihood import ExpFamLayout

__all__ = ["ExpFamClusters", "make_cluster_family"]


class ExpFamClusters(ClusterFamily):
    r"""
    Any family of the core whose normalised product is exact (constant carrier
    measure, or one linear in :math:`t` — then the carrier shift is added per
    active cluster).  ``template`` is a member whose batch shape is the
    feature shape of one data point.

    Prior: the Diaconis-Ylvisaker conjugate prior
    :math:`p(\eta_k) \propto \exp(\nu(\langle\eta_k, \mu_0\rangle - A(\eta_k)))`
    with :math:`\mu_0` the data's mean sufficient statistics and
    :math:`\nu` = ``prior_strength`` pseudo-observations, on unconstrained
    sites ``"cluster_natural_<i>"`` (one per natural parameter, mapped to the
    natural parameter space by ``biject_to``; the Jacobian is included).  Its
    normalising constant is not needed for MAP or mean-field fitting, but the
    prior cannot be sampled (``Predictive`` works with a fitted guide only).
    Background: the data's maximum-likelihood fit tempered to
    ``background_weight`` times its natural parameter (a broad member), fixed
    (``background="fixed"``) or learned (``"learned"``: sites
    ``"background_natural_<i>"`` with one row, the same conjugate prior,
    initialised at the fixed value).

    :param ExponentialFamily template: a member of the family.
    :param float prior_strength: ``ν``.
    :param float background_weight: tempering of the background (in (0, 1]).
    :param str background: ``"fixed"`` or ``"learned"``.
    :raises NotImplementedError: if the family's product is not exact.
    """

    def __init__(
        self,
        template: ExponentialFamily,
        prior_strength: float = 1.0,
        background_weight: float = 0.1,
        background: str = "fixed",
    ):
        super().__init__(background)
        ExpFamLayout(template)  # refuse families whose product leaves the family, with their reason
        self._template = template
        self.prior_strength = _positive("prior_strength", prior_strength)
        self.background_weight = _positive("background_weight", background_weight)
        self._transforms = []
        for i, c in enumerate(type(template)._natural_param_constraints):
            try:
                self._transforms.append(biject_to(c))
            except NotImplementedError as e:
                raise NotImplementedError(
                    f"{type(template).__name__}: natural parameter {i} has constraint {c} without a bijection "
                    "from the reals; use the family's dedicated cluster family"
                ) from e

    def config(self) -> dict:
        return {
            "prior_strength": self.prior_strength,
            "background_weight": self.background_weight,
            "background": self.background_mode,
        }

    def _build(self) -> None:
        super()._build()
        # sums of natural parameters (plus carrier shifts) may leave the space, e.g. Beta shapes < 1
        self.layout.validate_sets = True

    def check_data(self, X, name: str = "X") -> Tensor:
        event = self._template.batch_shape + self._template.event_shape
        X = as_data_tensor(X, name, ndim=1 + len(event))
        if X.shape[1:] != event:
            raise ValueError(f"{name} must have points of shape {tuple(event)}, got {tuple(X.shape[1:])}")
        ExpFamFamily(self._template).check_data(X, name)
        return X

    def _setup(self, X: Tensor) -> dict[str, Tensor]:
        eta = self._template._expanded_natural_params()
        template = type(self._template)._from_natural_params(
            *(p.to(dtype=X.dtype, device=X.device) for p in eta), **self._template._fixed_params()
        )
        layout = ExpFamLayout(template)
        stats = layout.statistics(X)[..., : layout.dim]
        mean = ExpFamFamily.mean_statistics(stats)  # the Diaconis-Ylvisaker prior's default mean statistics
        try:
            fit = type(template).from_mean_parameters(*layout.unflatten(mean), **template._fixed_params())
            eta_ml = layout.flatten(fit._expanded_natural_params())
        except (NotImplementedError, ValueError):
            eta_ml = layout.flatten(template._expanded_natural_params())
        eta0 = self.background_weight * eta_ml
        layout.check_natural(eta0)
        return {"mean_statistics": mean, "background": eta0}

    def template(self) -> ExponentialFamily:
        eta0 = self.hyper["background"]
        params = self._template._expanded_natural_params()
        shapes = [p.shape for p in params]
        parts = eta0.split([p.numel() for p in params])
        return type(self._template)._from_natural_params(
            *(q.reshape(s) for q, s in zip(parts, shapes, strict=True)), **self._template._fixed_params()
        )

    def sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, torch.Size]:
        return {
            f"{prefix}_natural_{i}": torch.Size((num_clusters,) + s) for i, s in enumerate(self.layout.param_shapes)
        }

    def _eta(self, values: dict[str, Tensor], prefix: str = "cluster") -> tuple[list[Tensor], Tensor]:
        etas, log_jac = [], 0.0
        for (name, shape), t in zip(self.sites(1, prefix).items(), self._transforms, strict=True):
            u = values[name]
            eta = t(u)
            ldj = t.log_abs_det_jacobian(u, eta)
            nprefix = u.dim() - len(shape)
            log_jac = log_jac + ldj.sum(tuple(range(nprefix, ldj.dim())))
            etas.append(eta)
        return etas, log_jac

    def _sample_sites(self, num_clusters: int, prefix: str = "cluster") -> dict[str, Tensor]:
        values = {}
        for name, shape in self.sites(num_clusters, prefix).items():
            base = dist.ImproperUniform(torch.distributions.constraints.real, torch.Size(), shape)
            values[name] = pyro.sample(name, base)
        etas, log_jac = self._eta(values, prefix)
        mu0 = self.layout.unflatten(self.hyper["mean_statistics"])
        inner = 0.0
        for e, m, s in zip(etas, mu0, self.layout.param_shapes, strict=True):
            inner = inner + (e * m).sum(tuple(range(e.dim() - len(s) - 1, e.dim())))
        log_norm = self.layout.template._log_normalizer(*etas)
        nf = 1 + len(self.layout.feature_shape)
        log_norm = log_norm.sum(tuple(range(log_norm.dim() - nf, log_norm.dim())))
        pyro.factor(f"{prefix}_conjugate_prior", self.prior_strength * (inner - log_norm) + log_jac)
        return values

    def natural_params(self, values: dict[str, Tensor], prefix: str = "cluster") -> tuple[Tensor, ...]:
        return tuple(self._eta(values, prefix)[0])

    def init_background_values(self, X: Tensor) -> dict[str, Tensor]:
        etas = self.layout.unflatten(self.hyper["background"])
        return {
            name: t.inv(e.unsqueeze(0)).clone()
            for (name, _), t, e in zip(self.sites(1, "background").items(), self._transforms, etas, strict=True)
        }

    def init_values(self, X: Tensor, num_clusters: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        layout = self.layout
        stats = layout.statistics(X)[..., : layout.dim]
        perm = torch.randperm(X.shape[0], generator=generator).to(X.device)
        chunks = perm.chunk(num_clusters)
        means = torch.stack(
            [stats[c].mean(0) for c in chunks] + [self.hyper["mean_statistics"]] * (num_clusters - len(chunks))
        )
        cls, fixed = layout.family, layout.fixed
        try:
            fit = cls.from_mean_parameters(*layout.unflatten(means), **fixed)
            etas = fit._expanded_natural_params()
        except (NotImplementedError, ValueError):
            etas = [p.expand((num_clusters,) + p.shape) for p in layout.template._expanded_natural_params()]
        return {
            name: t.inv(e).clone()
            for (name, _), t, e in zip(self.sites(num_clusters).items(), self._transforms, etas, strict=True)
        }


#: the family names with a dedicated cluster family (resolved by the family layer's :func:`get_family`)
CLUSTER_FAMILY_NAMES = ("bernoulli", "categorical", "diag", "full", "multivariate_normal", "normal", "normal_diag",
                        "normal_full", "one_hot_categorical")


def _cluster_view(family: ConjugateFamily) -> ClusterFamily | None:
    """The dedicated cluster family (default hyperparameters) of a family-layer family, or ``None``."""
    if isinstance(family, BernoulliFamily):
        return BernoulliClusters()
    if isinstance(family, CategoricalFamily):
        return CategoricalClusters(one_hot=family.one_hot)
    if isinstance(family, GaussianFamily) and family.covariance_type in ("diag", "full"):
        return NormalClusters() if family.covariance_type == "diag" else MultivariateNormalClusters()
    return None


def make_cluster_family(family) -> ClusterFamily:
    """
    Resolve ``family`` to a :class:`ClusterFamily`: an instance is returned as
    is; a name (``"bernoulli"``, ``"normal"``/``"normal_diag"``,
    ``"normal_full"``/``"multivariate_normal"``, ``"categorical"``,
    ``"one_hot_categorical"``) or a distribution class of the core with a
    dedicated cluster family gives that family with default hyperparameters;
    any other :class:`ExponentialFamily` *instance* gives
    :class:`ExpFamClusters` around it.

    :raises NotImplementedError: if the family's product is not exact.
    :raises TypeError: for anything else.
    """
    if isinstance(family, ClusterFamily):
        return family
    if isinstance(family, str):
        key = family.lower().replace("-", "_")
        if key not in CLUSTER_FAMILY_NAMES:
            raise ValueError(f"unknown family {family!r}; expected one of {sorted(CLUSTER_FAMILY_NAMES)}")
        return _cluster_view(get_family(key))
    if isinstance(family, type):
        if issubclass(family, ExponentialFamily):
            view = _cluster_view(get_family(family))
            if view is not None:
                return view
            if family._product_refusal is not None:
                raise NotImplementedError(
                    f"The normalised product of {family.__name__} densities is not a {family.__name__}: "
                    f"{family._product_refusal}"
                )
            raise TypeError(
                f"pass an instance of {family.__name__} whose batch shape is the feature shape of one data point "
                "(e.g. family(torch.ones(D)))"
            )
    if isinstance(family, ExponentialFamily):
        return ExpFamClusters(family)
    raise TypeError(f"family must be a name, a ClusterFamily or an ExponentialFamily, got {type(family).__name__}")
