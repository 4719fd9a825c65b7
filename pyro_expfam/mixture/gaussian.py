# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
r"""
Gaussian mixtures fitted by EM with full, tied, diagonal or spherical
covariances: a torch port of :class:`sklearn.mixture.GaussianMixture` (same
parameter names, same fitted attributes, same ``reg_covar`` and M-step, so
that from the same initial parameters both reach the same log-likelihood),
running on any device and in float32 or float64.

Precisions are held as Cholesky factors throughout, in scikit-learn's
convention: ``precisions_cholesky_`` is upper triangular with
``U @ U.T == precision``, so that the Mahalanobis term is
``||x @ U_k - mu_k @ U_k||^2``.  Implementation notes (for speed and float32
accuracy; the estimates are scikit-learn's):

- the data are centred at their pooled mean once per fit (the second
  moments ``E[x x^T] - mu mu^T`` then cancel far less in float32), and the
  constant pieces are precomputed once: ``[x, x^2]`` (diag), ``[x, ||x||^2]``
  (spherical), ``X^T X`` (tied);
- the E-step is one GEMM for all components: ``X @ [U_1 ... U_K]`` (full,
  in row chunks), ``X @ U`` (tied), ``[x, x^2] @ W`` (diag/spherical);
- the M-step's weighted sums ``resp^T @ [x, x^2]`` run as a batched GEMM over
  row blocks on CPU (a single GEMM with a 10^5-long inner dimension runs out
  of cache).

One difference from scikit-learn: ``init_params="k-means++"`` assigns every
point to its nearest seed (scikit-learn gives each component its seed point
alone, with covariance ``reg_covar``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..parallel import INIT_SAMPLE, communicator, save_on_rank0
from ..util import check_float_resolution, torch_generator
from .base import BaseMixture, FittedTensor
from .init import initial_responsibilities
from .streaming import ChunkStream

__all__ = ["GaussianMixture"]

#: step sizes of stepwise EM (:meth:`GaussianMixture.partial_fit`): ``(t + offset) ** -decay`` for the t-th chunk
_STEP_OFFSET, _STEP_DECAY = 2.0, 0.6

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _ill_defined(dtype: torch.dtype) -> str:
    msg = (  # scikit-learn's message
        "Fitting the mixture model failed because some components have ill-defined empirical covariance "
        "(for instance caused by singleton or collapsed samples). Try to decrease the number of components, "
        "increase reg_covar, or scale the input data."
    )
    if dtype != torch.float64:
        msg += " Passing float64 data instead of float32 also improves numerical accuracy."
    return msg


class _Data(NamedTuple):
    """Data prepared once per fit: centred at the pooled mean, with the constant moments of each type."""

    X: Tensor  # the data as given (its identity is the cache key)
    Xc: Tensor  # X - shift, (N, D)
    shift: Tensor | None  # pooled mean (None: not centred)
    stats: Tensor | None  # diag: [Xc, Xc**2] (N, 2D); spherical: [Xc, ||Xc||^2] (N, D+1); Xc is a view of it
    gram: Tensor | None  # tied: Xc^T Xc
    cache: dict | None = None  # full: the packed statistics, built on first use (_packed_blocks)


def _empty(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """
    An uninitialised buffer.  On CPU it is allocated by numpy, which advises the kernel to back large
    arrays with huge pages: first-touch page faults on a fresh 100 MB buffer then cost ~2x less than
    with torch's allocator.
    """
    if like.device.type == "cpu" and like.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.empty(shape, dtype=np.float32 if like.dtype == torch.float32 else np.float64))
    return like.new_empty(shape)


def _prepare(X: Tensor, covariance_type: str, shift: Tensor | None) -> _Data:
    """Data centred at ``shift`` (``None``: not centred) with the constant moments of ``covariance_type``."""
    center = shift is not None
    N, D = X.shape
    stats = gram = None
    if covariance_type in ("diag", "spherical"):
        stats = _empty((N, 2 * D if covariance_type == "diag" else D + 1), X)
        Xc = stats[:, :D]
        if center:
            torch.sub(X, shift, out=Xc)
        else:
            Xc.copy_(X)
        if covariance_type == "diag":
            torch.square(Xc, out=stats[:, D:])
        else:  # row blocks: the squares stay in cache (an N x D temporary cost ~20% of a fit at N=1e5, D=50)
            rows = _chunk_rows(X, D)
            for s in range(0, N, rows):
                torch.sum(Xc[s : s + rows].square(), 1, keepdim=True, out=stats[s : s + rows, D:])
    else:
        Xc = X
        if center:
            Xc = torch.sub(X, shift, out=_empty((N, D), X))
        if covariance_type == "tied":
            gram = _weighted_sums(Xc, Xc)
    return _Data(X, Xc, shift, stats, gram, {})


def _weighted_sums(A: Tensor, resp: Tensor, block: int = 1024) -> Tensor:
    """
    ``resp.T @ A`` for tall ``A`` ``(N, F)`` and ``resp`` ``(N, K)``, as a batched GEMM over row blocks
    (on CPU a single ``(K, N) @ (N, F)`` GEMM with a long inner dimension runs out of cache and is ~2x slower).
    """
    N = A.shape[0]
    if A.device.type != "cpu" or N < 2 * block:
        return resp.T @ A
    nb = N // block
    m = nb * block
    out = torch.bmm(resp[:m].reshape(nb, block, -1).transpose(1, 2), A[:m].reshape(nb, block, -1)).sum(0)
    if m < N:
        out.addmm_(resp[m:].T, A[m:])
    return out


#: bytes of one ``(S, B)`` block of packed statistics (with its ``(K, B)`` products it stays in cache)
_BLOCK_BYTES = 1 << 20
#: on a GPU larger blocks (fewer kernel launches per pass)
_GPU_BLOCK_BYTES = 1 << 26


def _block_rows(X: Tensor, width: int) -> int:
    """Points per block of a ``(width, B)`` statistics block (and its ``(K, B)`` products)."""
    budget = _BLOCK_BYTES if X.device.type == "cpu" else _GPU_BLOCK_BYTES
    return max(256, min(X.shape[0], budget // (max(width, 1) * X.element_size())))
#: the packed statistics of a full-covariance fit are kept when they take at most this many bytes
_PACKED_CACHE_BYTES = 1 << 29


#: the packed statistics (``D + D(D+1)/2`` columns) are used up to this many features; beyond it, building them
#: costs more than it saves (measured in benchmarks/bench_em.py: at D = 50, K = 5 the packed path made the whole
#: fit 1.8x slower) and the full-covariance fit keeps the whitened residuals and per-row weighted products
_PACKED_MAX_FEATURES = 24


def _use_packed(Xc: Tensor) -> bool:
    return Xc.shape[1] <= _PACKED_MAX_FEATURES


def _packed_width(D: int) -> int:
    return D + D * (D + 1) // 2


def _pack_block(xt: Tensor, out: Tensor) -> Tensor:
    """``[x; upper triangle of x x^T]`` of the columns ``xt`` ``(D, B)`` into ``out`` ``(D + D(D+1)/2, B)``."""
    D = xt.shape[0]
    out[:D] = xt
    pos = D
    for i in range(D):  # row i of the upper triangle, x_i * x_{i:}, in the order of torch.triu_indices
        torch.mul(xt[i : i + 1], xt[i:], out=out[pos : pos + D - i])
        pos += D - i
    return out


def _packed_blocks(data: _Data):
    """
    Yield ``(start, block)`` over the data with ``block`` ``(S, B)`` the packed statistics
    ``[x; triu(x x^T)]`` of ``B`` consecutive centred points (``S = D + D(D+1)/2``): both the E-step's
    quadratic forms and the M-step's second moments of all ``K`` components are then one GEMM per block
    (no ``N x K x D`` temporaries).  Kept in ``data.cache`` when they fit in :data:`_PACKED_CACHE_BYTES`.
    """
    Xc = data.Xc
    N, D = Xc.shape
    S = _packed_width(D)
    B = _block_rows(Xc, S)
    cache = data.cache if data.cache is not None else {}
    blocks = cache.get("packed")
    if blocks is None and N * S * Xc.element_size() <= _PACKED_CACHE_BYTES:
        blocks = Xc.new_empty(-(-N // B), S, B)
        for i, start in enumerate(range(0, N, B)):
            xt = Xc[start : start + B].T
            _pack_block(xt, blocks[i, :, : xt.shape[1]])
        cache["packed"] = blocks
    buf = None if blocks is not None else Xc.new_empty(S, B)
    for i, start in enumerate(range(0, N, B)):
        rows = min(B, N - start)
        if blocks is not None:
            yield start, blocks[i, :, :rows]
        else:
            yield start, _pack_block(Xc[start : start + rows].T, buf[:, :rows])


def _unpack_symmetric(v: Tensor, D: int) -> Tensor:
    """``(..., D, D)`` symmetric matrices from their packed upper triangles ``(..., D(D+1)/2)``."""
    iu = torch.triu_indices(D, D, device=v.device)
    M = v.new_zeros(v.shape[:-1] + (D, D))
    M[..., iu[0], iu[1]] = v
    M[..., iu[1], iu[0]] = v
    return M


def _full_second_moments(data: _Data, resp: Tensor) -> Tensor:
    """``sum_n r_nk x_n x_n^T`` for every component, ``(K * D, D)``, by one GEMM per block of packed statistics."""
    Xc = data.Xc
    N, D = Xc.shape
    K = resp.shape[1]
    if not _use_packed(Xc):
        second = Xc.new_zeros(K * D, D)
        rows = _chunk_rows(Xc, K * D)
        for start in range(0, N, rows):
            xs = Xc[start : start + rows]
            weighted = (xs.unsqueeze(1) * resp[start : start + rows].unsqueeze(2)).reshape(xs.shape[0], K * D)
            second.addmm_(weighted.T, xs)
        return second
    acc = resp.new_zeros(K, _packed_width(D))
    for start, TT in _packed_blocks(data):
        acc.addmm_(resp[start : start + TT.shape[1]].T, TT.T)
    return _unpack_symmetric(acc[:, D:], D).reshape(K * D, D)


def _em_pass(data: _Data, weights: Tensor, means: Tensor, U: Tensor, covariance_type: str) -> dict[str, Tensor] | None:
    """
    One fused E-step and M-step pass over in-memory prepared data, block by block: the ``(K, B)`` weighted
    log-densities by one GEMM of the block's statistics against all components, an in-place log-sum-exp over
    the components (contiguous rows), the responsibilities, and their weighted sums by a second GEMM on the
    same block while it is in cache; nothing of size ``N x K`` (or ``N x K x D``) is allocated.  Returns the
    sums of :func:`_moment_sums` and ``log_lik`` (the sum of the log-likelihoods), or ``None`` where the
    expanded quadratic form would lose accuracy (``full``/``tied`` in float32: the caller keeps the two-step
    path with whitened residuals).
    """
    Xc = data.Xc
    N, D = Xc.shape
    K = means.shape[0]
    if covariance_type in ("full", "tied") and Xc.dtype != torch.float64:
        return None
    if covariance_type == "full" and not _use_packed(Xc):
        return None
    log_det = _log_det_cholesky(U, covariance_type, D)
    const = log_det - 0.5 * D * math.log(2 * math.pi) + weights.log()
    if covariance_type in ("full", "tied"):
        P = U @ U.mT
        Pm = (P @ means.unsqueeze(-1)).squeeze(-1) if covariance_type == "full" else means @ P
        const = const - 0.5 * (means * Pm).sum(1)
        if covariance_type == "full":
            iu = torch.triu_indices(D, D, device=Xc.device)
            dual = P[:, iu[0], iu[1]] * torch.where(iu[0] == iu[1], 1.0, 2.0).to(P.dtype)
            Wt = torch.cat([Pm, -0.5 * dual], 1)  # against [x; triu(x x^T)]
            blocks = _packed_blocks(data)
        else:
            Wt = Pm  # against x; the shared -x^T P x / 2 is added per point
            B = _block_rows(Xc, max(D, K))
            blocks = ((s, Xc[s : s + B].T) for s in range(0, N, B))
    else:
        P = U.square()
        if covariance_type == "diag":
            const = const - 0.5 * (means.square() * P).sum(1)
            Wt = torch.cat([means * P, -0.5 * P], 1)  # against [x, x^2]
        else:
            const = const - 0.5 * P * means.square().sum(1)
            Wt = torch.cat([means * P.unsqueeze(1), -0.5 * P.unsqueeze(1)], 1)  # against [x, ||x||^2]
        F = data.stats.shape[1]
        B = _block_rows(Xc, max(F, K))
        blocks = ((s, data.stats[s : s + B].T) for s in range(0, N, B))
    const = const.unsqueeze(1)
    acc = Xc.new_zeros(K, Wt.shape[1])  # the weighted sums (K, statistics)
    nk = Xc.new_zeros(K)
    total = Xc.new_zeros(())
    buf = None
    for _, TT in blocks:
        rows = TT.shape[1]
        buf = Xc.new_empty(K, rows) if buf is None else buf
        L = buf[:, :rows]
        torch.addmm(const, Wt, TT, out=L)
        if covariance_type == "tied":
            L.sub_(0.5 * (U.mT @ TT).square_().sum(0))
        top = L.amax(0)
        L.sub_(top).exp_()
        norm = L.sum(0)
        total += top.sum() + norm.log().sum()
        L.mul_(norm.reciprocal_())
        nk += L.sum(1)
        acc.addmm_(L, TT.T)  # (K, B) @ (B, S): ~1.5x faster than (S, B) @ (B, K) into (S, K) here
    parts = {"nk": nk, "sums": (acc[:, :D] if covariance_type == "full" else acc).contiguous(), "log_lik": total}
    if covariance_type == "full":
        parts["second"] = _unpack_symmetric(acc[:, D:], D).reshape(K * D, D)
    elif covariance_type == "tied":
        parts["second"] = data.gram if data.gram is not None else Xc.T @ Xc
    return parts


def _chunk_rows(X: Tensor, width: int) -> int:
    """Rows per chunk so that an ``(rows, width)`` temporary stays in cache (CPU: 2^16 elements, measured best)."""
    budget = 2**26 if X.device.type == "cuda" else 2**16
    return max(1, budget // max(width, 1))


def _moments(data: _Data, resp: Tensor, reg_covar: float, covariance_type: str) -> tuple[Tensor, Tensor, Tensor]:
    """M-step on prepared data; the returned means are in the centred coordinates of ``data.Xc``."""
    return _moments_from_sums(_moment_sums(data, resp, covariance_type), reg_covar, covariance_type,
                              data.Xc.shape[1])


def _moment_sums(data: _Data, resp: Tensor, covariance_type: str) -> dict[str, Tensor]:
    """
    The sums over the data of the M-step: ``nk`` (K,), ``sums`` (the weighted first (and, diag/spherical,
    second) moments) and, full/tied, ``second``; sums of these over shards or chunks are those of all the data.
    """
    Xc = data.Xc
    N, D = Xc.shape
    nk = resp.sum(0)
    sums = _weighted_sums(data.stats if data.stats is not None else Xc, resp)  # (K, D), (K, 2D) or (K, D+1)
    second = None
    if covariance_type == "full":
        second = _full_second_moments(data, resp)
    elif covariance_type == "tied":
        second = data.gram if data.gram is not None else Xc.T @ Xc
    return {"nk": nk, "sums": sums} if second is None else {"nk": nk, "sums": sums, "second": second}


def _moments_from_sums(parts: dict[str, Tensor], reg_covar: float, covariance_type: str,
                       D: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(nk, means, covariances)`` from the sums of :func:`_moment_sums` (over all the data)."""
    nk, sums, second = parts["nk"], parts["sums"], parts.get("second")
    K = nk.shape[0]
    nk = nk + 10 * torch.finfo(nk.dtype).eps
    means = sums[:, :D] / nk[:, None]
    if covariance_type == "full":
        cov = second.reshape(K, D, D) / nk[:, None, None] - means.unsqueeze(2) * means.unsqueeze(1)
        cov = (cov + cov.mT) / 2
        cov.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
    elif covariance_type == "tied":
        cov = (second - (nk * means.T) @ means) / nk.sum()
        cov = (cov + cov.T) / 2
        cov.diagonal().add_(reg_covar)
    elif covariance_type == "diag":
        cov = sums[:, D:] / nk[:, None] - means.square() + reg_covar
    else:  # spherical: the mean over features of the diagonal variances
        cov = (sums[:, D] / nk - means.square().sum(1)) / D + reg_covar
    return nk, means, cov


def estimate_gaussian_parameters(
    X: Tensor, resp: Tensor, reg_covar: float, covariance_type: str
) -> tuple[Tensor, Tensor, Tensor]:
    r"""
    M-step of a Gaussian mixture: weighted counts, means and covariances
    (scikit-learn's estimates, ``reg_covar`` added to the diagonal; second
    moments are taken about the pooled mean, which avoids most of the
    cancellation in :math:`E[xx^T] - \mu\mu^T`).

    :param Tensor X: data ``(N, D)``.
    :param Tensor resp: responsibilities ``(N, K)``.
    :param float reg_covar: non-negative regularisation added to the variances.
    :param str covariance_type: ``"full"`` | ``"tied"`` | ``"diag"`` | ``"spherical"``.
    :returns: ``(nk (K,), means (K, D), covariances)`` with covariances of shape
        ``(K, D, D)``, ``(D, D)``, ``(K, D)`` or ``(K,)``.
    """
    data = _prepare(X, covariance_type, X.mean(0))
    nk, means, cov = _moments(data, resp, reg_covar, covariance_type)
    return nk, means + data.shift, cov


def precision_cholesky_from_covariances(cov: Tensor, covariance_type: str) -> Tensor:
    """
    Upper-triangular ``U`` with ``U @ U.T == inverse(cov)`` (scikit-learn's
    ``precisions_cholesky_``; ``cov ** -0.5`` for diag/spherical).

    :param Tensor cov: covariances as returned by :func:`estimate_gaussian_parameters`.
    :param str covariance_type: covariance type.
    :raises ValueError: if a covariance is not positive definite.
    """
    if covariance_type in ("full", "tied"):
        L, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()) or not bool(torch.isfinite(L).all()):
            raise ValueError(_ill_defined(cov.dtype))
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device).expand_as(L)
        return torch.linalg.solve_triangular(L, eye, upper=False).transpose(-1, -2)
    if not bool((cov > 0).all()):
        raise ValueError(_ill_defined(cov.dtype))
    return cov.rsqrt()


def _precision_cholesky_from_precisions(prec: Tensor, covariance_type: str) -> Tensor:
    """Upper-triangular ``U`` with ``U @ U.T == prec`` (Cholesky of the row/column-reversed matrix)."""
    if covariance_type in ("full", "tied"):
        L, info = torch.linalg.cholesky_ex(prec.flip(-1, -2))
        if bool((info != 0).any()):
            raise ValueError("precisions_init must be symmetric positive definite")
        return L.flip(-1, -2)
    return prec.sqrt()


def _covariances_from_precision_cholesky(U: Tensor, covariance_type: str) -> Tensor:
    if covariance_type in ("full", "tied"):
        eye = torch.eye(U.shape[-1], dtype=U.dtype, device=U.device).expand_as(U)
        U_inv = torch.linalg.solve_triangular(U, eye, upper=True)  # cov = U^-T U^-1
        return U_inv.mT @ U_inv
    return U.square().reciprocal()


def _log_det_cholesky(U: Tensor, covariance_type: str, D: int) -> Tensor:
    if covariance_type in ("full", "tied"):
        return U.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    if covariance_type == "diag":
        return U.log().sum(-1)
    return D * U.log()


def _log_prob(data: _Data, means: Tensor, U: Tensor, covariance_type: str) -> Tensor:
    """``(N, K)`` Gaussian log-densities on prepared data (``means`` in the coordinates of ``data.Xc``)."""
    Xc = data.Xc
    N, D = Xc.shape
    K = means.shape[0]
    log_det = _log_det_cholesky(U, covariance_type, D)
    if covariance_type == "full" and Xc.dtype == torch.float64 and _use_packed(Xc):
        # log N = c_k + <[x, triu(x x^T)], [P_k mu_k, -P_k/2 (off-diagonal doubled)]>: one GEMM per block of
        # packed statistics for all components.  The expansion of (x - mu)^T P (x - mu) cancels (relative
        # rounding ~eps times the squared whitened distance from the pooled mean): float64 only
        P = U @ U.mT
        Pm = (P @ means.unsqueeze(-1)).squeeze(-1)
        iu = torch.triu_indices(D, D, device=Xc.device)
        dual = P[:, iu[0], iu[1]] * torch.where(iu[0] == iu[1], 1.0, 2.0).to(P.dtype)
        Wt = torch.cat([Pm, -0.5 * dual], 1)  # (K, S)
        const = (log_det - 0.5 * (means * Pm).sum(1) - 0.5 * D * math.log(2 * math.pi)).unsqueeze(1)
        out = _empty((N, K), Xc)
        buf = None
        for start, TT in _packed_blocks(data):
            buf = Xc.new_empty(K, TT.shape[1]) if buf is None else buf
            b = buf[:, : TT.shape[1]]
            torch.addmm(const, Wt, TT, out=b)
            out[start : start + TT.shape[1]] = b.T
        return out
    if covariance_type in ("full", "tied"):
        # whitened residuals (x - mu_k) U_k for all components at once, one GEMM per row chunk
        if covariance_type == "full":
            U_cat = U.permute(1, 0, 2).reshape(D, K * D)  # [U_1 ... U_K]
            offset = (means.unsqueeze(1) @ U).reshape(K, D)
        else:
            U_cat = U
            offset = means @ U
        maha = Xc.new_empty(N, K)
        ones = Xc.new_ones(D)  # the sum over features as a matrix-vector product (torch.sum over a short
        rows = _chunk_rows(Xc, K * D)  # last dimension is ~10x slower)
        for start in range(0, N, rows):
            y = (Xc[start : start + rows] @ U_cat).reshape(-1, U_cat.shape[1] // D, D)
            torch.matmul((y - offset).square_(), ones, out=maha[start : start + rows])
    elif covariance_type == "diag":
        P = U.square()
        W = torch.cat([-2 * means * P, P], 1)  # (K, 2D) against [x, x^2]
        maha = torch.addmm((means.square() * P).sum(1), data.stats, W.T)
    else:
        P = U.square()
        W = torch.cat([-2 * means, means.new_ones(K, 1)], 1)  # (K, D+1) against [x, ||x||^2]
        maha = torch.addmm(means.square().sum(1), data.stats, W.T).mul_(P)
    return (-0.5 * (D * math.log(2 * math.pi) + maha)).add_(log_det)


def estimate_log_gaussian_prob(X: Tensor, means: Tensor, precisions_cholesky: Tensor, covariance_type: str) -> Tensor:
    """
    ``log N(x_n | mu_k, Sigma_k)`` for all points and components.

    :param Tensor X: data ``(N, D)``.
    :param Tensor means: ``(K, D)``.
    :param Tensor precisions_cholesky: Cholesky factors of the precisions (see
        :func:`precision_cholesky_from_covariances`).
    :param str covariance_type: covariance type.
    :rtype: Tensor of shape ``(N, K)``.
    """
    shift = X.mean(0)
    return _log_prob(_prepare(X, covariance_type, shift), means - shift, precisions_cholesky, covariance_type)


def _as_param(value, name: str, X: Tensor) -> Tensor:
    try:
        t = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a tensor or array of numbers") from e
    if not t.is_floating_point() and t.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} must be numeric, got dtype {t.dtype}")
    t = t.to(dtype=X.dtype, device=X.device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


class GaussianMixture(BaseMixture):
    r"""
    Gaussian mixture fitted by EM, with the parameter names, fitted
    attributes and numerics of :class:`sklearn.mixture.GaussianMixture`.

    Fitted attributes: ``weights_`` ``(K,)``, ``means_`` ``(K, D)``,
    ``covariances_``, ``precisions_``, ``precisions_cholesky_`` (shapes
    ``(K, D, D)`` full, ``(D, D)`` tied, ``(K, D)`` diag, ``(K,)`` spherical),
    ``converged_``, ``n_iter_``, ``lower_bound_`` (mean log-likelihood per
    sample at the start of the last iteration, as in scikit-learn),
    ``lower_bounds_``, ``n_features_in_``.  They are numpy arrays when the fit's
    data was numpy, else tensors on the fit's device and dtype.

    The model works in coordinates centred at the training data's mean (kept
    as the fit's *shift*): the fit and every method that takes new data
    subtract the same shift, so float32 data far from the origin keep their
    precision.  Data that float32 cannot represent at all (a spread of a few
    units in the last place of the values) are refused with an error that
    suggests float64.

    :param int n_components: number of components.
    :param str covariance_type: ``"full"`` (each component its own matrix),
        ``"tied"`` (one shared matrix), ``"diag"`` or ``"spherical"``.
    :param float tol: convergence threshold on the change of the mean
        log-likelihood per sample.
    :param float reg_covar: non-negative value added to the diagonal of every
        covariance in the M-step (scikit-learn's, same default).
    :param int max_iter: maximum EM iterations per initialisation.
    :param int n_init: number of initialisations; the best is kept.
    :param str init_params: ``"kmeans"`` (Lloyd's k-means on a k-means++
        seeding), ``"k-means++"`` (points assigned to the nearest k-means++ seed),
        ``"random"`` (random soft responsibilities) or ``"random_from_data"``.
    :param weights_init: initial weights ``(K,)`` (non-negative, summing to 1).
    :param means_init: initial means ``(K, D)``.
    :param precisions_init: initial precisions (inverse covariances), shaped
        like ``covariances_``.  When all three ``*_init`` are given, they are
        the initial parameters exactly and no k-means start is run.
    :param random_state: ``None``, an int (numpy integers too), a numpy
        ``RandomState``/``Generator`` or a CPU ``torch.Generator``.
    :param bool warm_start: continue from the fitted state on the next :meth:`fit`.
    :param verbose: show a progress bar.
    :param device: device to fit on (default: the data's).
    :param dtype: ``torch.float32`` or ``torch.float64`` (default: the data's).
    :param distributed: data-parallel EM on :mod:`torch.distributed` (:mod:`pyro_expfam.parallel`): ``False``
        (default), ``True`` (the default process group) or a ``ProcessGroup``.  ``fit(X)`` is called on every
        rank with its shard; each M-step all-reduces the weighted sums (``O(K D^2)`` numbers, independent of the
        number of points) and each bound the shards' log-likelihood sums, so every rank ends with the same
        model.  The centring shift is the global mean; the start (unless all ``*_init`` are given) runs on a
        sample gathered from all ranks (at most 10,000 points) and rank 0's initial parameters are broadcast.
        Only rank 0 writes in :meth:`save`.  Prediction is local.

    **Data given as chunks.**  :meth:`fit` also takes an iterable of ``(n_i, D)`` chunks or a
    :class:`torch.utils.data.DataLoader` (e.g. over a :class:`numpy.memmap`), so that the data never have to be
    one tensor (:mod:`pyro_expfam.mixture.streaming`): a first pass validates the chunks and takes the mean (the
    shift), a second draws a uniform sample of at most 10,000 rows (each row a uniform key, the smallest keys
    kept) on which the start (``init_params``) runs, and each EM iteration is one pass accumulating the
    M-step's sums chunk by chunk; ``verbose`` shows the passes.  From the same initial parameters the fit equals
    the fit on the concatenated chunks up to rounding; with ``distributed``, each rank streams its shard.
    ``fit_predict`` needs the data in memory.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0]).round(1)
    array([-0.1,  8. ])
    >>> gm.predict(np.array([[0.0, 0.0], [8.0, 8.0]])).dtype, round(gm.score(X), 2)
    (dtype('int64'), -3.53)
    """

    means_ = property(
        lambda self: self._output(self._public_means()), doc="component means ``(K, D)`` in data coordinates"
    )
    covariances_ = FittedTensor("component covariances (shape by ``covariance_type``)")
    precisions_cholesky_ = FittedTensor("Cholesky factors of the precisions (upper triangular, scikit-learn's)")

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state: int | np.random.RandomState | torch.Generator | None = None,
        warm_start: bool = False,
        verbose: bool | int = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        distributed=False,
    ) -> None:
        super().__init__(
            n_components,
            tol=tol,
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            dtype=dtype,
        )
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.distributed = distributed

    def _public_means(self) -> Tensor:
        self._check_is_fitted()
        return self._means_c + self._shift

    # ------------------------------------------------------------------ #
    # Checks
    # ------------------------------------------------------------------ #
    def _check_parameters(self, X: Tensor) -> None:
        if not isinstance(self.covariance_type, str) or self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}")
        r = self.reg_covar
        if isinstance(r, bool) or not isinstance(r, int | float | np.number) or not 0 <= float(r) < math.inf:
            raise ValueError(f"reg_covar must be a finite non-negative number, got {r!r}")
        K, D = int(self.n_components), X.shape[1]
        self._weights_init = self._means_init = self._precisions_init = None
        # the messages are scikit-learn's (prefixed with the argument's name), which tools and users match
        if self.weights_init is not None:
            w = _as_param(self.weights_init, "weights_init", X)
            if w.shape != (K,):
                raise ValueError(f"weights_init: The parameter 'weights' should have the shape of ({K},), but got "
                                 f"{tuple(w.shape)}")
            lo, hi = float(w.min()), float(w.max())
            if lo < 0 or hi > 1:
                raise ValueError(f"weights_init: The parameter 'weights' should be in the range [0, 1], but got "
                                 f"max value {hi:.5f}, min value {lo:.5f}")
            atol = 1e-6 if X.dtype == torch.float32 else 1e-8
            if abs(float(w.sum()) - 1.0) > atol:
                raise ValueError(f"weights_init: The parameter 'weights' should be normalized, but got "
                                 f"sum(weights) = {float(w.sum()):.5f} (it must sum to 1)")
            self._weights_init = w
        if self.means_init is not None:
            m = _as_param(self.means_init, "means_init", X)
            if m.shape != (K, D):
                raise ValueError(f"means_init: The parameter 'means' should have the shape of ({K}, {D}), but got "
                                 f"{tuple(m.shape)}")
            self._means_init = m
        if self.precisions_init is not None:
            p = _as_param(self.precisions_init, "precisions_init", X)
            ct = self.covariance_type
            shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ct]
            if p.shape != shape:
                raise ValueError(
                    f"precisions_init: The parameter '{ct} precision' should have the shape of {shape}, but got "
                    f"{tuple(p.shape)} (covariance_type={ct!r})"
                )
            if ct in ("full", "tied"):
                pd = torch.allclose(p, p.mT) and bool((torch.linalg.cholesky_ex(p)[1] == 0).all())
                if not pd:
                    raise ValueError(f"precisions_init: '{ct} precision' should be symmetric, positive-definite")
            elif bool((p <= 0).any()):
                raise ValueError(f"precisions_init: '{ct} precision' should be positive")
            self._precisions_init = p
        warm = bool(self.warm_start) and self._is_fitted()
        if warm and self._means_c.shape[1] != D:
            raise ValueError(f"X has {D} features, but the model was fitted with {self._means_c.shape[1]}")
        check_float_resolution(torch.stack([X.lo, X.hi]) if isinstance(X, ChunkStream) else X, "X")
        self._comm = communicator(self.distributed)

    def _check_stream(self) -> None:
        return None  # EM streams: each iteration passes over the chunks accumulating the M-step's sums

    def _prepare_fit(self, X: Tensor) -> None:
        comm = self._comm
        warm = bool(self.warm_start) and self._is_fitted()
        comm.check_equal((X.shape[1], str(X.dtype)), "the shards' number of features and dtype")
        self._n_total = comm.sum_int(X.shape[0], X.device)
        # the data are fixed during a fit: centre them once (a warm start keeps the fitted shift, so that
        # the continuation is exact) and keep the constant moments
        stream = isinstance(X, ChunkStream)
        if warm:
            shift = self._shift.to(device=X.device, dtype=X.dtype)
        elif comm.is_distributed or stream:
            local = X.sum if stream else X.to(torch.float64).sum(0)
            shift = (comm.all_reduce([local])[0] / self._n_total).to(X.dtype)
        else:
            shift = X.mean(0)
        self._fit_shift = shift
        self._cache = None if stream else _prepare(X, self.covariance_type, shift)

    # ------------------------------------------------------------------ #
    # EM hooks
    # ------------------------------------------------------------------ #
    def _initialize_parameters(self, X: Tensor, generator: torch.Generator) -> None:
        if self._weights_init is not None and self._means_init is not None and self._precisions_init is not None:
            # all initial parameters given: no k-means start (scikit-learn runs one and discards it)
            self._shift = self._fit_shift
            self._weights_ = self._weights_init.clone()
            self._means_c = self._means_init - self._fit_shift
            self._set_precisions_init()
            return
        comm = self._comm
        stream = isinstance(X, ChunkStream)
        if not comm.is_distributed and not stream:
            super()._initialize_parameters(X, generator)
            return
        # the start on a sample (gathered from all ranks, broadcast from rank 0): a uniform sample of each
        # rank's rows, drawn in one pass over the chunks for data given as chunks
        per_rank = min(X.shape[0], math.ceil(INIT_SAMPLE / comm.world_size))
        if stream:
            local = X.reservoir(per_rank, generator)
        else:
            local = X[torch.randperm(X.shape[0], generator=generator)[:per_rank].to(X.device)]
        sample = comm.all_gather_rows(local)
        data = _prepare(sample, self.covariance_type, self._fit_shift)
        resp = initial_responsibilities(data.Xc, int(self.n_components), self.init_params, generator)
        self._initialize_from(data, resp, sample.shape[0])
        state = comm.broadcast(self._get_state())
        self._set_state(state)

    def _set_precisions_init(self) -> None:
        self._precisions_cholesky_ = _precision_cholesky_from_precisions(self._precisions_init, self.covariance_type)
        self._covariances_ = _covariances_from_precision_cholesky(self._precisions_cholesky_, self.covariance_type)

    def _initialize(self, X: Tensor, resp: Tensor) -> None:
        self._initialize_from(self._data(X), resp, X.shape[0])

    def _initialize_from(self, data: _Data, resp: Tensor, n: int) -> None:
        self._shift = data.shift
        nk, means, cov = _moments(data, resp, self.reg_covar, self.covariance_type)
        self._weights_ = nk / n if self._weights_init is None else self._weights_init.clone()
        self._means_c = means if self._means_init is None else self._means_init - data.shift
        if self._precisions_init is None:
            self._covariances_ = cov
            self._precisions_cholesky_ = precision_cholesky_from_covariances(cov, self.covariance_type)
        else:
            self._set_precisions_init()

    def _data(self, X: Tensor) -> _Data:
        cache = self.__dict__.get("_cache")
        if cache is not None and cache.X is X:
            return cache
        return _prepare(X, self.covariance_type, self._shift.to(X))

    def _reduce(self):
        comm = self.__dict__.get("_comm")
        return comm.all_reduce if comm is not None and comm.is_distributed else None

    def _step(self, X) -> float:
        if not isinstance(X, ChunkStream):
            return self._in_memory_step(X)
        # data given as chunks: one pass accumulating the log-likelihood and the M-step's sums (summed over the
        # ranks too in a distributed fit), then the M-step
        ct, log_w, total = self.covariance_type, self._weights_.log(), None
        for chunk in X:
            data = _prepare(chunk, ct, self._fit_shift)
            # the fused pass of the in-memory fit on each chunk where it applies (float64, or diag/spherical)
            parts = _em_pass(data, self._weights_, self._means_c, self._precisions_cholesky_, ct)
            if parts is None:
                weighted = _log_prob(data, self._means_c, self._precisions_cholesky_, ct).add_(log_w)
                log_prob_norm = torch.logsumexp(weighted, dim=1)
                parts = _moment_sums(data, weighted.sub_(log_prob_norm.unsqueeze(1)).exp_(), ct)
                parts["log_lik"] = log_prob_norm.sum()
            total = parts if total is None else {k: total[k] + v for k, v in parts.items()}
        return float(self._m_step_from_sums(total, X.shape[1])["log_lik"]) / self._n_total

    def _in_memory_step(self, X: Tensor) -> float:
        """One EM iteration on in-memory data: the fused pass of :func:`_em_pass` where it applies."""
        ct = self.covariance_type
        parts = _em_pass(self._data(X), self._weights_, self._means_c, self._precisions_cholesky_, ct)
        if parts is None:
            return super()._step(X)
        return float(self._m_step_from_sums(parts, X.shape[1])["log_lik"]) / self._n_total

    def _m_step_from_sums(self, parts: dict[str, Tensor], D: int) -> dict[str, Tensor]:
        """
        The M-step from the sums of :func:`_moment_sums` over this process's data, first summed over the ranks in
        a data-parallel fit (one collective of ``O(K D^2)`` numbers); returns the sums over all the data.
        """
        reduce = self._reduce()
        if reduce is not None:
            parts = reduce(parts)
        nk, self._means_c, self._covariances_ = _moments_from_sums(parts, self.reg_covar, self.covariance_type, D)
        self._weights_ = nk / nk.sum()
        self._precisions_cholesky_ = precision_cholesky_from_covariances(self._covariances_, self.covariance_type)
        return parts

    def _m_step(self, X: Tensor, log_resp: Tensor) -> None:
        self._m_step_from_sums(_moment_sums(self._data(X), log_resp.exp(), self.covariance_type), X.shape[1])

    def _estimate_log_prob(self, X: Tensor) -> Tensor:
        data = self._data(X)
        return _log_prob(data, self._means_c, self._precisions_cholesky_, self.covariance_type)

    def fit_predict(self, X, y=None):
        """
        Fit the mixture by EM and return the most probable component of each sample.

        :param X: data ``(n_samples, n_features)``.
        :param y: ignored.
        :returns: ``int64`` labels ``(n_samples,)`` (numpy for numpy input).
        """
        self.__dict__.pop("_online", None)  # a fit starts over and ends a partial_fit stream
        try:
            return super().fit_predict(X, y)
        finally:
            self._cache = None

    # ------------------------------------------------------------------ #
    # Streaming: stepwise (online) EM
    # ------------------------------------------------------------------ #
    def partial_fit(self, X, y=None) -> GaussianMixture:
        r"""
        One step of stepwise (online) EM on a chunk of data (scikit-learn's ``partial_fit`` convention), for data
        seen once or in passes of chunks that do not fit in memory together.

        The model keeps running averages :math:`\bar s` of the per-point sufficient statistics of the M-step
        (responsibilities, weighted first and second moments).  Each chunk's E-step under the current parameters
        gives its averages :math:`\hat s_t`, then :math:`\bar s \leftarrow (1 - \eta_t) \bar s + \eta_t \hat s_t`
        with :math:`\eta_t = (t + 2)^{-0.6}` (:math:`\eta_1 = 1`), and the M-step maps :math:`\bar s` to the
        parameters (Cappé & Moulines, 2009; Liang & Klein, 2009).  The first call starts the stream: the chunk's
        mean is the shift, and ``init_params`` (or the ``*_init``) on the first chunk the start.  ``n_iter_``
        counts the calls and ``lower_bound_`` is the mean log-likelihood of the last chunk before its update.
        :meth:`fit` starts over.  The stream's running averages live in memory only (:meth:`save` keeps the
        fitted parameters; a loaded model's ``partial_fit`` starts a new stream).

        :param X: a chunk ``(n_samples, n_features)`` (tensor or array; at least ``n_components`` rows in the
            first chunk).
        :param y: ignored.
        :returns: ``self``.

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (2000, 2)), rng.normal(6, 1, (2000, 2))])[rng.permutation(4000)]
        >>> gm = GaussianMixture(2, random_state=0)
        >>> for chunk in np.array_split(X, 8):
        ...     gm = gm.partial_fit(chunk)
        >>> gm.n_iter_, bool(np.allclose(np.sort(gm.means_[:, 0]), [0.0, 6.0], atol=0.1))
        (8, True)
        """
        snapshot = {k: (v.clone() if isinstance(v, Tensor) else dict(v) if isinstance(v, dict) else v)
                    for k, v in self.__dict__.items()}
        try:
            self._partial_fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise
        finally:
            self._cache = None
        return self

    def _partial_fit(self, X) -> None:
        self._check_base_parameters()
        if self.distributed:
            raise ValueError("partial_fit is not available with distributed fitting; use distributed=False")
        online = self.__dict__.get("_online")
        X_in = X
        if online is None or not self._is_fitted():
            X = self._validate_data(X, reset=True)
            self._device, self._dtype = X.device, X.dtype
            self._check_parameters(X)
            self._prepare_fit(X)
            self._initialize_parameters(X, torch_generator(self.random_state))
            online = {"step": 0, "stats": None}
            self.lower_bounds_, self.n_iter_ = [], 0
            self._torch_io = isinstance(X_in, Tensor)
        else:
            X = self._validate_data(X, reset=False)
        ct = self.covariance_type
        data = _prepare(X, ct, self._shift)
        weighted = _log_prob(data, self._means_c, self._precisions_cholesky_, ct).add_(self._weights_.log())
        log_prob_norm = torch.logsumexp(weighted, dim=1)
        parts = _moment_sums(data, weighted.sub_(log_prob_norm.unsqueeze(1)).exp_(), ct)
        n = X.shape[0]
        step = online["step"] + 1
        eta = 1.0 if online["stats"] is None else (step + _STEP_OFFSET) ** -_STEP_DECAY
        stats = {k: v / n if online["stats"] is None else (1 - eta) * online["stats"][k] + (eta / n) * v
                 for k, v in parts.items()}
        nk, means_c, cov = _moments_from_sums(stats, self.reg_covar, ct, X.shape[1])
        bound = float(log_prob_norm.mean())
        if not math.isfinite(bound):
            raise FloatingPointError(f"partial_fit: the log-likelihood became {bound}; try float64")
        self._precisions_cholesky_ = precision_cholesky_from_covariances(cov, ct)
        self._weights_, self._means_c, self._covariances_ = nk / nk.sum(), means_c, cov
        self._online = {"step": step, "stats": stats}
        self.lower_bound_ = bound
        self.lower_bounds_ = [*self.lower_bounds_, bound]
        self.n_iter_ = int(self.n_iter_) + 1
        self.converged_ = False
        self._fitted = True

    def _estimate_weighted_log_prob(self, X: Tensor) -> Tensor:
        return self._estimate_log_prob(X).add_(self._weights_.log())

    # ------------------------------------------------------------------ #
    # State, sampling, information criteria
    # ------------------------------------------------------------------ #
    @property
    def precisions_(self):
        """Precision matrices (inverse covariances), shaped like ``covariances_``."""
        self._check_is_fitted()
        U = self._precisions_cholesky_
        return self._output(U @ U.mT if self.covariance_type in ("full", "tied") else U.square())

    def _get_state(self) -> dict[str, Tensor]:
        return {
            "weights": self._weights_,
            "means_centred": self._means_c,
            "shift": self._shift,
            "covariances": self._covariances_,
            "precisions_cholesky": self._precisions_cholesky_,
        }

    def _set_state(self, state: dict[str, Tensor]) -> None:
        self._weights_ = state["weights"]
        if "shift" in state:
            self._means_c, self._shift = state["means_centred"], state["shift"]
        else:  # checkpoints written before the fit kept its shift
            self._means_c, self._shift = state["means"], torch.zeros_like(state["means"][0])
        self._covariances_ = state["covariances"]
        self._precisions_cholesky_ = state["precisions_cholesky"]

    def _sample_components(self, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        means = self._means_c
        z = torch.randn(labels.shape[0], means.shape[1], generator=generator, dtype=torch.float64)
        z = z.to(device=means.device, dtype=means.dtype)
        cov = self._covariances_
        if self.covariance_type == "full":
            L = torch.linalg.cholesky(cov)[labels]
            x = means[labels] + (L @ z.unsqueeze(-1)).squeeze(-1)
        elif self.covariance_type == "tied":
            x = means[labels] + z @ torch.linalg.cholesky(cov).T
        else:
            std = cov.sqrt()[labels]
            x = means[labels] + z * (std if self.covariance_type == "diag" else std.unsqueeze(1))
        return x + self._shift

    def save(self, path) -> None:
        """
        Save the fitted model (see :meth:`BaseMixture.save`); after a distributed fit only rank 0 writes.

        :param path: file path or writable binary file object.
        """
        save_on_rank0(self, path, super().save)

    def _n_parameters(self) -> int:
        """Number of free parameters of the fitted model."""
        K, D = self._means_c.shape
        cov = {"full": K * D * (D + 1) / 2, "diag": K * D, "tied": D * (D + 1) / 2, "spherical": K}
        return int(cov[self.covariance_type] + K * D + K - 1)
