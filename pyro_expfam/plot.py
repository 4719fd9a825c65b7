# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Plotting helpers (need matplotlib: ``pip install "pyro_expfam[plot]"``).

Each function draws on a :class:`matplotlib.axes.Axes` (a new figure when ``ax`` is ``None``) and
returns it, so plots compose with ordinary matplotlib code.  Inputs may be torch tensors (on any
device) or numpy arrays.  matplotlib is imported only when a function is called: the rest of the
package works without it.

- :func:`plot_gaussian_mixture`: the data coloured by component and the covariance ellipse of each
  component of a fitted Gaussian mixture (:class:`~pyro_expfam.mixture.gaussian.GaussianMixture`,
  :class:`~pyro_expfam.mixture.dpmm.estimator.DirichletProcessMixture` or scikit-learn's).
- :func:`plot_memberships` and :func:`plot_membership_sets`: the posterior membership
  probabilities and the MAP membership sets of an overlapping mixture, clusters by points.
- :func:`plot_trace`: ELBO or loss traces (a sequence, several labelled ones, or a fitted
  estimator's ``lower_bounds_`` / ``loss_history_``).
- :func:`plot_product`: the densities of one-dimensional factors, their normalised pointwise product
  computed numerically, and the closed-form product of the family.

Example::

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from pyro_expfam.distributions import Beta
    >>> from pyro_expfam.plot import plot_product
    >>> ax = plot_product([Beta(2.0, 3.0), Beta(4.0, 1.5)])
    >>> [line.get_label() for line in ax.get_lines()]
    ['factor 0', 'factor 1', 'normalised pointwise product', 'product()']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_gaussian_mixture", "plot_memberships", "plot_membership_sets", "plot_trace", "plot_product"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - exercised with the import blocked in tests
        raise ImportError(
            'pyro_expfam.plot needs matplotlib to draw figures: pip install "pyro_expfam[plot]" '
            "(or pip install matplotlib)"
        ) from e
    return plt


def _axes(ax):
    plt = _pyplot()
    if ax is None:
        return plt.subplots()[1]
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _array(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """A float64 numpy copy of a tensor / array / nested sequence, checked for dimension and finiteness."""
    if torch.is_tensor(x):
        x = x.detach().cpu()
        x = x.double() if x.is_floating_point() or x.dtype == torch.bool else x.to(torch.float64)
        arr = x.numpy()
    else:
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be a tensor or an array of numbers, got {type(x).__name__}") from e
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


# -- Gaussian mixtures ------------------------------------------------------------------------------


def _full_covariances(cov: np.ndarray, covariance_type: str | None, K: int, D: int) -> np.ndarray:
    """(K, D, D) covariance matrices from scikit-learn's four layouts (full, tied, diag, spherical)."""
    layouts = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
    if covariance_type not in layouts:  # infer from the shape; ambiguous only when K == D
        matches = [t for t, s in layouts.items() if cov.shape == s]
        if not matches:
            raise ValueError(
                f"covariances of shape {tuple(cov.shape)} do not fit {K} components in {D} dimensions "
                "(expected (K, D, D), (D, D), (K, D) or (K,))"
            )
        covariance_type = matches[0]
    if cov.shape != layouts[covariance_type]:
        raise ValueError(
            f"covariances of shape {tuple(cov.shape)} do not match covariance_type={covariance_type!r} "
            f"with {K} components in {D} dimensions (expected {layouts[covariance_type]})"
        )
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (K, D, D))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(D)


def plot_gaussian_mixture(
    model: Any = None,
    X: Any = None,
    *,
    means: Any = None,
    covariances: Any = None,
    weights: Any = None,
    covariance_type: str | None = None,
    labels: Any = None,
    dims: tuple[int, int] = (0, 1),
    n_std: float = 2.0,
    min_weight: float = 0.0,
    ax: Axes | None = None,
) -> Axes:
    r"""
    Covariance ellipses (the ``n_std`` contour of each component) of a fitted Gaussian mixture,
    over the data coloured by component.

    Give either a fitted ``model`` with ``means_`` and ``covariances_`` (and optionally
    ``weights_`` and ``covariance_type``: :class:`~pyro_expfam.mixture.gaussian.GaussianMixture`,
    :class:`~pyro_expfam.mixture.dpmm.estimator.DirichletProcessMixture`, including its
    ``"unit"`` covariance, scikit-learn's mixtures), or ``means`` and ``covariances`` directly.
    Covariances may be in any of scikit-learn's layouts: ``(K, D, D)`` full, ``(D, D)`` tied,
    ``(K, D)`` diagonal or ``(K,)`` spherical.

    :param model: a fitted Gaussian mixture, or ``None`` when ``means`` and ``covariances`` are given.
    :param X: optional data ``(N, D)`` to scatter underneath, coloured by ``labels`` (default:
        ``model.predict(X)`` when the model has it).
    :param means: component means ``(K, D)`` (instead of ``model``).
    :param covariances: component covariances (instead of ``model``).
    :param weights: component weights ``(K,)``; components below ``min_weight`` are not drawn.
    :param str covariance_type: ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``; inferred from
        the shape when omitted.
    :param labels: integer labels ``(N,)`` colouring ``X``.
    :param dims: the two features to show (a 2-D projection of the ellipsoids).
    :param float n_std: contour radius in standard deviations.
    :param float min_weight: hide components whose weight is below this.
    :param ax: the Axes to draw on (default: a new figure).
    :returns: the Axes, with one :class:`~matplotlib.patches.Ellipse` patch per component shown.
    :raises ValueError: if the model is not fitted, the shapes disagree or ``dims`` is invalid.

    Example::

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import torch
        >>> from pyro_expfam.plot import plot_gaussian_mixture
        >>> ax = plot_gaussian_mixture(means=torch.zeros(2, 2), covariances=torch.eye(2).expand(2, 2, 2))
        >>> len(ax.patches)
        2
    """
    if model is not None:
        if means is not None or covariances is not None:
            raise ValueError("give either model or means and covariances, not both")
        unit = getattr(model, "covariance_type", None) == "unit"  # DirichletProcessMixture: identity covariances
        if not hasattr(model, "means_") or not (unit or hasattr(model, "covariances_")):
            raise ValueError(
                f"model ({type(model).__name__}) is not a fitted Gaussian mixture: it has no means_ and "
                "covariances_ (call fit first)"
            )
        means = model.means_
        covariances = np.eye(np.shape(means)[-1]) if unit else model.covariances_
        if weights is None:
            weights = getattr(model, "weights_", None)
        if covariance_type is None:
            covariance_type = "tied" if unit else getattr(model, "covariance_type", None)
    elif means is None or covariances is None:
        raise ValueError("give a fitted model, or both means and covariances")
    mu = _array(means, "means", ndim=2)
    K, D = mu.shape
    if D < 2:
        raise ValueError(f"covariance ellipses need at least 2 features, the mixture has {D}")
    dims = tuple(dims)
    if len(dims) != 2 or len(set(dims)) != 2 or not all(isinstance(d, int) and -D <= d < D for d in dims):
        raise ValueError(f"dims must be two different feature indices in [0, {D}), got {dims}")
    cov = _full_covariances(_array(covariances, "covariances"), covariance_type, K, D)
    w = np.ones(K) if weights is None else _array(weights, "weights", ndim=1)
    if w.shape != (K,):
        raise ValueError(f"weights must have shape ({K},), got {tuple(w.shape)}")
    if not n_std > 0:
        raise ValueError(f"n_std must be positive, got {n_std}")

    ax = _axes(ax)
    from matplotlib.patches import Ellipse

    i, j = dims
    if X is not None:
        x = _array(X, "X", ndim=2)
        if x.shape[1] != D:
            raise ValueError(f"X has {x.shape[1]} features, the mixture has {D}")
        if labels is None and model is not None and hasattr(model, "predict"):
            labels = model.predict(X)
        c = None if labels is None else _array(labels, "labels", ndim=1)
        if c is not None and c.shape[0] != x.shape[0]:
            raise ValueError(f"labels has {c.shape[0]} entries, X has {x.shape[0]} rows")
        ax.scatter(
            x[:, i],
            x[:, j],
            c=c,
            s=6,
            cmap="tab10" if c is not None else None,
            alpha=0.5,
            vmin=0 if c is not None else None,
            vmax=9 if c is not None else None,
        )
    for k in range(K):
        if w[k] < min_weight:
            continue
        sub = cov[k][np.ix_([i, j], [i, j])]
        vals, vecs = np.linalg.eigh(sub)
        if vals.min() <= 0:
            raise ValueError(f"the covariance of component {k} is not positive definite")
        angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))  # direction of the largest eigenvalue
        width, height = 2 * n_std * np.sqrt(vals[::-1])
        ax.add_patch(
            Ellipse(
                (mu[k, i], mu[k, j]),
                width,
                height,
                angle=angle,
                fill=False,
                edgecolor=f"C{k % 10}" if X is None else "black",
                lw=1.2,
            )
        )
        ax.plot(mu[k, i], mu[k, j], "+", color="black", ms=8)
    ax.autoscale_view()
    ax.set_xlabel(f"feature {i % D}")
    ax.set_ylabel(f"feature {j % D}")
    return ax


# -- overlapping mixtures ---------------------------------------------------------------------------


def _points_by_clusters(values: Any, name: str, order: Any, max_points: int | None) -> np.ndarray:
    arr = _array(values, name, ndim=2)
    if order is not None:
        idx = np.asarray(order.cpu() if torch.is_tensor(order) else order, dtype=np.int64).reshape(-1)
        K = arr.shape[1]
        if len(set(idx.tolist())) != len(idx) or len(idx) == 0 or idx.min() < 0 or idx.max() >= K:
            raise ValueError(f"order must list distinct cluster indices in [0, {K}), got {idx.tolist()}")
        arr = arr[:, idx]
    if max_points is not None:
        if max_points < 1:
            raise ValueError(f"max_points must be a positive integer, got {max_points}")
        arr = arr[:max_points]
    return arr


def plot_memberships(
    probs: Any,
    *,
    order: Any = None,
    max_points: int | None = None,
    colorbar: bool = True,
    ax: Axes | None = None,
) -> Axes:
    r"""
    Heat-map of membership probabilities :math:`P(z_{ik} = 1 \mid x_i)`: clusters (rows) by
    points (columns), for an overlapping mixture (``membership_probs``) or any soft assignment.

    :param probs: membership probabilities ``(N, K)`` in :math:`[0, 1]`.
    :param order: the clusters to show, in this order (a permutation, e.g. from
        :func:`~pyro_expfam.models.overlapping.match_clusters`, or a selection).
    :param int max_points: show only the first ``max_points`` points.
    :param bool colorbar: add a colour bar.
    :param ax: the Axes to draw on (default: a new figure).
    :returns: the Axes, holding one image.
    :raises ValueError: if ``probs`` is not a 2-D array of probabilities.

    Example::

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import torch
        >>> from pyro_expfam.plot import plot_memberships
        >>> ax = plot_memberships(torch.tensor([[0.9, 0.1], [0.5, 0.7], [0.0, 1.0]]))
        >>> ax.images[0].get_array().shape   # clusters by points
        (2, 3)
    """
    arr = _points_by_clusters(probs, "probs", order, max_points)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"probs must lie in [0, 1], got values in [{arr.min():.3g}, {arr.max():.3g}]")
    ax = _axes(ax)
    im = ax.imshow(arr.T, aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("point")
    ax.set_ylabel("cluster")
    ax.set_yticks(range(arr.shape[1]))
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="membership probability")
    return ax


def plot_membership_sets(
    Z: Any,
    *,
    truth: Any = None,
    order: Any = None,
    max_points: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    r"""
    The 0/1 membership-set matrix of an overlapping mixture (e.g. ``map_sets``): clusters (rows) by
    points (columns), dark where the point belongs to the cluster.  With ``truth``, the entries
    that differ from it are marked in red.

    :param Z: membership sets ``(N, K)`` of 0/1 (or booleans).
    :param truth: optional reference sets ``(N, K)`` (e.g. the planted memberships), already
        matched to ``Z``'s clusters (``order`` is applied to ``Z`` only).
    :param order: ``Z``'s clusters to show, in this order (a permutation or a selection).
    :param int max_points: show only the first ``max_points`` points.
    :param ax: the Axes to draw on (default: a new figure).
    :returns: the Axes, holding one image (plus one marker line for the disagreements with ``truth``).
    :raises ValueError: if ``Z`` (or ``truth``) is not a 2-D 0/1 array or their shapes differ.

    Example::

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import torch
        >>> from pyro_expfam.plot import plot_membership_sets
        >>> Z = torch.tensor([[1, 0], [1, 1], [0, 1]])
        >>> ax = plot_membership_sets(Z, truth=torch.tensor([[1, 0], [0, 1], [0, 1]]))
        >>> ax.get_lines()[0].get_xydata().tolist()   # (point, cluster) of the one disagreement
        [[1.0, 0.0]]
    """
    arr = _points_by_clusters(Z, "Z", order, max_points)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("Z must hold 0/1 memberships (or booleans)")
    ax = _axes(ax)
    ax.imshow(arr.T, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    if truth is not None:
        ref = _points_by_clusters(truth, "truth", None, max_points)
        if ref.shape != arr.shape:
            raise ValueError(f"truth has shape {tuple(ref.shape)}, Z has {tuple(arr.shape)}")
        if not np.isin(ref, (0.0, 1.0)).all():
            raise ValueError("truth must hold 0/1 memberships (or booleans)")
        pts, ks = np.nonzero(ref != arr)
        ax.plot(pts, ks, "x", color="red", ms=5, label=f"{len(pts)} entries differ from truth")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("point")
    ax.set_ylabel("cluster")
    ax.set_yticks(range(arr.shape[1]))
    return ax


# -- traces -----------------------------------------------------------------------------------------


def _trace_of(obj: Any, name: str) -> np.ndarray:
    if not isinstance(obj, (np.ndarray, torch.Tensor, Sequence)):
        for attr in ("lower_bounds_", "loss_history_"):
            if hasattr(obj, attr):
                obj = getattr(obj, attr)
                break
    if torch.is_tensor(obj):
        obj = obj.detach().cpu()
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D sequence of numbers or a fitted estimator with lower_bounds_ or "
            f"loss_history_, got {type(obj).__name__}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).any():
        raise ValueError(f"{name} has no finite value")
    return arr


def plot_trace(
    trace: Any,
    *,
    label: str | None = None,
    per: float | None = None,
    logx: bool = False,
    ylabel: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """
    ELBO or loss trace(s) against the iteration number.

    :param trace: a 1-D sequence / array / tensor of values; a fitted estimator (its
        ``lower_bounds_``, e.g. EM or CAVI, or ``loss_history_``, SVI); or a mapping from labels to
        either of these, drawn as one line each with a legend.
    :param str label: the legend label of a single trace.
    :param float per: divide the values by this (e.g. the number of data points, for a loss per point).
    :param bool logx: logarithmic iteration axis.
    :param str ylabel: the y-axis label (default: "lower bound" for ``lower_bounds_``, "loss"
        for ``loss_history_``, else "value").
    :param ax: the Axes to draw on (default: a new figure).
    :returns: the Axes, with one line per trace.
    :raises ValueError: if a trace is empty, not one-dimensional, or has no finite value.

    Example::

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from pyro_expfam.plot import plot_trace
        >>> ax = plot_trace({"cavi": [-3.0, -2.5, -2.4], "svi": [-3.2, -2.9, -2.7, -2.6]})
        >>> [len(line.get_xdata()) for line in ax.get_lines()]
        [3, 4]
    """
    if per is not None and not per > 0:
        raise ValueError(f"per must be positive, got {per}")
    traces = dict(trace) if isinstance(trace, Mapping) else {label: trace}
    if not traces:
        raise ValueError("trace is an empty mapping")
    first = next(iter(traces.values()))
    if ylabel is None:
        ylabel = (
            "lower bound"
            if hasattr(first, "lower_bounds_")
            else "loss"
            if hasattr(first, "loss_history_")
            else ("value")
        )
    arrays = {name: _trace_of(t, "trace" if name is None else f"trace {name!r}") for name, t in traces.items()}
    ax = _axes(ax)
    for name, arr in arrays.items():
        y = arr / per if per is not None else arr
        ax.plot(np.arange(1, len(y) + 1), y, ".-" if len(y) <= 50 else "-", ms=3, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel + (" per point" if per is not None and ylabel in ("loss", "lower bound") else ""))
    if any(name is not None for name in arrays):
        ax.legend()
    return ax


# -- products ---------------------------------------------------------------------------------------


def _factor_list(factors: Any) -> list:
    from .distributions.exp_family import ExponentialFamily

    if isinstance(factors, ExponentialFamily):
        if len(factors.batch_shape) != 1:
            raise ValueError(
                f"a single distribution of factors must have batch_shape (n,), got {tuple(factors.batch_shape)}"
            )
        return _unbind(factors)
    if not isinstance(factors, Sequence) or isinstance(factors, str) or len(factors) == 0:
        raise TypeError(
            "factors must be a non-empty sequence of pyro_expfam distributions or one with batch_shape (n,)"
        )
    for i, f in enumerate(factors):
        if not isinstance(f, ExponentialFamily):
            raise TypeError(f"factor {i} is a {type(f).__name__}, not a pyro_expfam ExponentialFamily distribution")
        if f.batch_shape != torch.Size() or f.event_shape != torch.Size():
            raise ValueError(
                f"factor {i} must be a scalar distribution of a one-dimensional family (batch_shape () and "
                f"event_shape ()), got batch_shape {tuple(f.batch_shape)}, event_shape {tuple(f.event_shape)}"
            )
    return list(factors)


def _unbind(d) -> list:
    """The scalar distributions along the single batch dimension of ``d`` (through its natural parameters)."""
    if d.event_shape != torch.Size():
        raise ValueError(
            f"factors must come from a one-dimensional family (event_shape ()), got {tuple(d.event_shape)}"
        )
    etas = d._natural_params
    fixed = d._fixed_params()
    out = []
    for i in range(d.batch_shape[0]):
        kw = {k: (v[i] if torch.is_tensor(v) and v.dim() > 0 else v) for k, v in fixed.items()}
        out.append(type(d)._from_natural_params(*(eta[i] for eta in etas), **kw))
    return out


def _default_grid(factors: list, discrete: bool) -> torch.Tensor:
    try:
        means = torch.stack([f.mean for f in factors]).detach()
        sds = torch.stack([f.stddev for f in factors]).detach()
    except NotImplementedError as e:
        raise ValueError("give grid: the factors' mean or standard deviation is not available") from e
    ref = factors[0]
    lo, hi = (means - 4 * sds).min().item(), (means + 4 * sds).max().item()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("give grid: the factors' mean or standard deviation is not finite")
    if discrete:
        return torch.arange(max(0, math.floor(lo)), math.ceil(hi) + 1, dtype=means.dtype)
    low = getattr(ref.support, "lower_bound", None)
    high = getattr(ref.support, "upper_bound", None)
    eps = 1e-4
    if low is not None:
        lo = max(lo, float(low) + eps)
    if high is not None:
        hi = min(hi, float(high) - eps)
    return torch.linspace(lo, hi, 2001, dtype=means.dtype)


def plot_product(
    factors: Any,
    *,
    grid: Any = None,
    closed_form: bool = True,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    r"""
    The densities of one-dimensional factors :math:`p_i(x)`, their normalised pointwise product
    :math:`\prod_i p_i(x) / \int \prod_i p_i` computed on the grid (trapezoid rule, or a sum over
    the grid for discrete families), and the family's closed-form product
    (:func:`~pyro_expfam.distributions.product`), which should lie on top of it.

    For a family that is not closed under products (Poisson, Binomial) the closed form is skipped
    and the normalised pointwise product is still drawn.

    :param factors: a sequence of scalar pyro_expfam distributions of one family, or one
        distribution with ``batch_shape (n,)``.
    :param grid: the points :math:`x` (default: mean ± 4 standard deviations of the factors, inside
        the support; integers for discrete families).
    :param bool closed_form: draw the closed-form product too.
    :param labels: legend labels of the factors (default ``"factor 0"``, ``"factor 1"``, ...).
    :param ax: the Axes to draw on (default: a new figure).
    :returns: the Axes, with one line per factor, then the normalised product, then (if drawn)
        ``product()``.
    :raises TypeError: if the factors are not pyro_expfam distributions.
    :raises ValueError: if a factor is not a scalar one-dimensional distribution or the grid is invalid.

    Example::

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import torch
        >>> from pyro_expfam.distributions import Normal
        >>> from pyro_expfam.plot import plot_product
        >>> ax = plot_product(Normal(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 1.0])))
        >>> len(ax.get_lines())
        4
    """
    from .distributions.exp_family import product

    fs = _factor_list(factors)
    if labels is None:
        labels = [f"factor {i}" for i in range(len(fs))]
    elif isinstance(labels, str) or len(labels) != len(fs):
        raise ValueError(f"labels must be a sequence of {len(fs)} strings, one per factor")
    discrete = bool(getattr(fs[0].support, "is_discrete", False))
    if grid is None:
        x = _default_grid(fs, discrete)
    else:
        x = torch.as_tensor(_array(grid, "grid", ndim=1), dtype=torch.get_default_dtype())
        if x.numel() < 2 or not bool((x[1:] > x[:-1]).all()):
            raise ValueError("grid must be increasing with at least two points")
    dtype = fs[0].mean.dtype if fs[0].mean.is_floating_point() else torch.get_default_dtype()
    x = x.to(dtype)
    inside = torch.stack([f.support.check(x) for f in fs]).all(0)
    if not bool(inside.any()):
        raise ValueError("no grid point lies in the factors' support")
    x = x[inside]
    log_p = torch.stack([f.log_prob(x) for f in fs]).detach()
    total = log_p.sum(0)
    dens = (total - total.max()).exp()
    dens = dens / (dens.sum() if discrete else torch.trapezoid(dens, x))
    closed = None
    if closed_form:
        try:
            closed = product(*fs)
        except NotImplementedError:
            closed = None
    ax = _axes(ax)
    xs = x.cpu().numpy()
    style = ".:" if discrete else ":"
    for i, lp in enumerate(log_p):
        ax.plot(xs, lp.exp().cpu().numpy(), style, color="gray", alpha=0.8, label=labels[i])
    ax.plot(
        xs,
        dens.cpu().numpy(),
        "-" if not discrete else "o",
        color="black",
        lw=4,
        alpha=0.3,
        label="normalised pointwise product",
    )
    if closed is not None:
        ax.plot(
            xs,
            closed.log_prob(x).detach().exp().cpu().numpy(),
            "--" if not discrete else "x",
            color="C0",
            label="product()",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("probability" if discrete else "density")
    ax.legend(fontsize=8)
    return ax
