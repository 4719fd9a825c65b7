# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Gaussian families with their conjugate priors, by covariance type:

===========  ======================  ============================================================================
type         covariance              prior (:math:`\kappa_0` = ``mean_precision_prior``, :math:`\nu_0` = ``df``)
===========  ======================  ============================================================================
unit         :math:`I`               :math:`\mu\sim N(m_0, I/\kappa_0)`
spherical    :math:`I/\lambda`       Normal-Gamma: :math:`\lambda\sim\Gamma(\nu_0/2, s_0/2)`, :math:`s_0` a number
diag         diagonal                Normal-Gamma per feature, :math:`s_0` a vector
full         full                    Normal-Wishart: :math:`\Lambda\sim W(\nu_0, S_0^{-1})`, :math:`S_0` a matrix
tied         one full, shared        Normal-Wishart on the shared precision
===========  ======================  ============================================================================

Default hyper-parameters follow :class:`sklearn.mixture.BayesianGaussianMixture`: :math:`m_0` the data mean,
:math:`\kappa_0 = 1`, :math:`\nu_0 = D`, and the covariance prior :math:`S_0` the data covariance (full, tied),
the per-feature variances (diag) or their mean (spherical).  Data with a constant feature, or a rank-deficient
covariance (full, tied), are refused with a message naming the cause (their default prior is degenerate).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import ConjugateFamily

__all__ = ["COVARIANCE_TYPES", "GaussianFamily", "check_resolution"]

#: The covariance structures of :class:`GaussianFamily`: scikit-learn's four, plus ``"unit"`` (identity covariance).
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical", "unit")

_LOG_2PI = math.log(2 * math.pi)

#: a feature is resolved if its spread is at least this many units in the last place of its magnitude
_MIN_ULPS = 8


def check_resolution(X64: Tensor, dtype: torch.dtype) -> None:
    """
    Raise ``ValueError`` if ``dtype`` cannot resolve the spread of a feature of the data (given in float64):
    a feature whose standard deviation is below ``8`` units in the last place of its largest magnitude was
    rounded away when the data were cast to ``dtype`` (e.g. float32 data with spread 1 at an offset of 1e8,
    where float32 spacing is 8).  Exactly constant features are left to the singularity checks.

    :param Tensor X64: the data, float64 ``(N, D)``.
    :param torch.dtype dtype: the dtype the data were given in.

    Example::

        >>> X = 1e8 + torch.linspace(-20, 20, 50, dtype=torch.float64).unsqueeze(1)
        >>> check_resolution(X.float().double(), torch.float32)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: X is float32 and its feature(s) [0] vary by less than 8 float32 spacings (about 11.9 here)...
        >>> check_resolution(X, torch.float64)
    """
    if X64.shape[0] < 2:
        return
    eps = torch.finfo(dtype).eps
    ulp = eps * X64.abs().amax(0)
    std = X64.std(0)
    bad = torch.nonzero((std > 0) & (std < _MIN_ULPS * ulp)).flatten().tolist()
    if bad:
        name = str(dtype).replace("torch.", "")
        raise ValueError(
            f"X is {name} and its feature(s) {bad[:10]} vary by less than {_MIN_ULPS} {name} spacings (about "
            f"{float(ulp[bad[0]]):.3g} here) at their distance from the origin: {name} cannot represent these "
            "data; pass float64 data (or dtype=torch.float64), or shift the data towards the origin before "
            f"casting to {name}"
        )


def _finite_real(v, minimum: float, strict: bool) -> bool:
    """Whether ``v`` is a finite real number above ``minimum`` (``>=`` unless ``strict``)."""
    import numbers

    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        return False
    return float(v) > minimum if strict else float(v) >= minimum


class GaussianFamily(ConjugateFamily):
    r"""
    Real vectors ``(N, D)``, Gaussian with the covariance structure ``covariance_type`` and its conjugate prior
    (module docstring).

    :param str covariance_type: ``"full"``, ``"tied"``, ``"diag"``, ``"spherical"`` or ``"unit"``.
    :param mean_prior: :math:`m_0` ``(D,)`` (default: data mean).
    :param float mean_precision_prior: :math:`\kappa_0` (default 1).
    :param float degrees_of_freedom_prior: :math:`\nu_0` (default ``D``; must exceed ``D - 1`` for full/tied).
    :param covariance_prior: :math:`S_0`: a ``(D, D)`` matrix (full, tied), ``(D,)`` vector or number (diag),
        number (spherical); default from the data.

    >>> X = torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0]], dtype=torch.float64)
    >>> p = GaussianFamily("diag").prior(X)
    >>> p["loc"].tolist(), p["mean_precision"], p["df"], p["covariance"].tolist()
    ([1.0, 2.0], 1.0, 2.0, [1.0, 3.0])
    >>> GaussianFamily("full").prior(X)["covariance"]
    tensor([[1., 0.],
            [0., 3.]], dtype=torch.float64)
    """

    name = "gaussian"
    family = "Normal"

    def __init__(self, covariance_type: str = "full", mean_prior=None, mean_precision_prior: float | None = None,
                 degrees_of_freedom_prior: float | None = None, covariance_prior=None) -> None:
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, got {covariance_type!r}")
        for name, v in (("mean_precision_prior", mean_precision_prior),
                        ("degrees_of_freedom_prior", degrees_of_freedom_prior)):
            if v is not None and not _finite_real(v, 0.0, strict=True):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        self.covariance_type = covariance_type
        self.mean_prior = mean_prior
        self.mean_precision_prior = mean_precision_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior

    def sufficient_statistics(self, X: Tensor) -> tuple[Tensor, Tensor]:
        r"""
        ``(T, k)`` with :math:`t(x) = (x, \mathrm{vec}(x x^\top))` (full, tied), :math:`(x, x^2)` (diag),
        :math:`(x, \|x\|^2)` (spherical) or :math:`x` (unit), and :math:`k(x) = -\tfrac D2\log 2\pi`
        (:math:`-\|x\|^2/2` more for unit, whose precision is known).

        :param Tensor X: data ``(N, D)``.
        """
        N, D = X.shape
        const = X.new_full((N,), -0.5 * D * _LOG_2PI)
        kind = self.covariance_type
        if kind == "unit":
            return X, const - 0.5 * X.square().sum(1)
        if kind == "spherical":
            quad = X.square().sum(1, keepdim=True)
        elif kind == "diag":
            quad = X.square()
        else:
            quad = (X.unsqueeze(2) * X.unsqueeze(1)).reshape(N, D * D)
        return torch.cat([X, quad], 1), const

    # ---- empirical-Bayes defaults ------------------------------------------ #
    @staticmethod
    def variances(X: Tensor, singular: str = "raise") -> Tensor:
        """
        Per-feature variances of ``X`` (unbiased when ``N > 1``).  A (numerically) constant feature makes a
        data-scaled prior degenerate: ``singular="raise"`` refuses it with a message naming the features,
        ``"clamp"`` floors every variance at the dtype's ``eps``.

        :param Tensor X: data ``(N, D)``.
        :param str singular: ``"raise"`` or ``"clamp"``.

        >>> GaussianFamily.variances(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: X is singular: feature(s) [1] are constant, so the default covariance prior is degenerate; ...
        >>> GaussianFamily.variances(torch.tensor([[1.0, 2.0], [3.0, 2.0]]), singular="clamp").tolist()
        [2.0, 1.1920928955078125e-07]
        """
        if singular == "clamp":
            return X.var(0).clamp(min=torch.finfo(X.dtype).eps)
        var = X.var(0, unbiased=X.shape[0] > 1)
        scale = X.abs().amax(0).square().clamp_min(1.0)
        if bool((var <= 100 * torch.finfo(X.dtype).eps * scale).any()):
            bad = torch.nonzero(var <= 100 * torch.finfo(X.dtype).eps * scale).flatten().tolist()
            raise ValueError(
                f"X is singular: feature(s) {bad[:10]} are constant, so the default covariance prior is "
                "degenerate; drop them or pass covariance_prior"
                + (" (if X was rounded to float32 far from the origin, pass float64 data)"
                   if X.dtype != torch.float64 else "")
            )
        return var

    @staticmethod
    def covariance(X: Tensor, jitter: float | None = None) -> Tensor:
        """
        The data covariance ``(D, D)`` (unbiased; the identity for one sample).  With ``jitter``, that fraction
        of the mean variance is added to the diagonal (floored at ``1e-12``), so the matrix is invertible; without
        it, constant features are refused (:meth:`variances`).

        :param Tensor X: data ``(N, D)``.
        :param float jitter: relative diagonal loading, or ``None``.

        >>> GaussianFamily.covariance(torch.tensor([[0.0, 0.0], [2.0, 2.0]]), jitter=1e-6)
        tensor([[2.0000, 2.0000],
                [2.0000, 2.0000]])
        """
        D = X.shape[1]
        if jitter is not None:
            cov = torch.cov(X.T).reshape(D, D)
            return cov + jitter * cov.diagonal().mean().clamp(min=1e-12) * torch.eye(D, dtype=X.dtype,
                                                                                    device=X.device)
        GaussianFamily.variances(X)  # clear message for constant features
        return torch.cov(X.T).reshape(D, D) if X.shape[0] > 1 else torch.eye(D, dtype=X.dtype, device=X.device)

    def prior(self, X: Tensor, offset: Tensor | None = None) -> dict[str, Tensor | float]:
        r"""
        The prior's hyper-parameters for data ``X``: ``loc`` :math:`m_0` ``(D,)``, ``mean_precision``
        :math:`\kappa_0`, ``df`` :math:`\nu_0` and, except for ``unit``, ``covariance`` :math:`S_0` (a number
        for spherical, ``(D,)`` for diag, ``(D, D)`` for full and tied).

        :param Tensor X: training data ``(N, D)``.
        :param Tensor offset: if the model fits centred data ``X`` (= original data - ``offset``), a user's
            ``mean_prior`` is shifted by ``offset`` (in float64) into the same coordinates.
        """
        D = X.shape[1]
        if self.mean_prior is None:
            m0 = X.mean(0)
        else:
            m0 = torch.as_tensor(self.mean_prior, dtype=torch.float64, device=X.device).reshape(-1)
            if m0.shape != (D,) or not bool(torch.isfinite(m0).all()):
                raise ValueError(f"mean_prior must be a finite vector of length {D}, got shape {tuple(m0.shape)}")
            if offset is not None:
                m0 = m0 - offset.to(m0.device, torch.float64)
            m0 = m0.to(X.dtype)
        kappa0 = 1.0 if self.mean_precision_prior is None else float(self.mean_precision_prior)
        nu0 = float(D) if self.degrees_of_freedom_prior is None else float(self.degrees_of_freedom_prior)
        out: dict[str, Tensor | float] = {"loc": m0, "mean_precision": kappa0, "df": nu0}
        kind, cp = self.covariance_type, self.covariance_prior
        if kind == "spherical":
            if cp is None:
                s0 = self.variances(X).mean()
            else:
                s0 = torch.as_tensor(cp, dtype=X.dtype, device=X.device)
                if s0.numel() != 1 or not float(s0) > 0:
                    raise ValueError(f"covariance_prior must be a positive number for spherical, got {cp!r}")
                s0 = s0.reshape(())
            out["covariance"] = s0
        elif kind == "diag":
            if cp is None:
                s0 = self.variances(X)
            else:
                s0 = torch.as_tensor(cp, dtype=X.dtype, device=X.device).reshape(-1).expand(D)
                if not bool((s0 > 0).all()):
                    raise ValueError("covariance_prior must be positive (a number or a vector of length D) for diag")
            out["covariance"] = s0
        elif kind in ("full", "tied"):
            if nu0 <= D - 1:
                raise ValueError(f"The parameter 'degrees_of_freedom_prior' should be greater than {D - 1}, "
                                 f"but got {nu0:.3f}.")
            if cp is None:
                cov = self.covariance(X)
            else:
                cov = torch.as_tensor(cp, dtype=X.dtype, device=X.device)
                if cov.shape != (D, D):
                    raise ValueError(f"covariance_prior must be a ({D}, {D}) matrix for {kind}, got shape "
                                     f"{tuple(cov.shape)}")
            evals = torch.linalg.eigvalsh(cov)
            if not bool(evals[0] > 1e3 * torch.finfo(X.dtype).eps * evals[-1].clamp_min(torch.finfo(X.dtype).tiny)):
                raise ValueError(
                    "X is singular: its covariance matrix is (numerically) rank deficient, e.g. collinear or "
                    "duplicated features; remove them, use covariance_type='diag', or pass covariance_prior"
                )
            out["covariance"] = cov
        return out
