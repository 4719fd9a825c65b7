# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Family-specific checks for the matrix families MultivariateNormal and Wishart:
products against closed forms, batch-axis reduction for every batch rank,
round trips, mean parameters and error paths.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyro.distributions as pdist
import pytest
import scipy.stats
import torch

from pyro_expfam.distributions import MultivariateNormal, Wishart, product, weighted_product
from pyro_expfam.distributions.exp_family import ExponentialFamily
from pyro_expfam.distributions.multivariate_normal import negative_definite

DTYPE = torch.float64

# torch warns whenever ndim - 1 < df < ndim; several tests use such df on purpose
pytestmark = pytest.mark.filterwarnings("ignore:Low df values detected")


def random_spd(shape: tuple[int, ...], d: int, jitter: float = 0.5) -> torch.Tensor:
    a = torch.randn(shape + (d, d), dtype=DTYPE)
    return a @ a.mT / d + jitter * torch.eye(d, dtype=DTYPE)


def np_inv(x: torch.Tensor) -> np.ndarray:
    return np.linalg.inv(x.detach().numpy())


# --------------------------------------------------------------------------- #
# MultivariateNormal
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("K", [2, 3, 5])
def test_mvn_product_of_k_factors_closed_form(K):
    torch.manual_seed(0)
    d = 3
    locs = torch.randn(K, d, dtype=DTYPE)
    covs = random_spd((K,), d)
    result = product(*[MultivariateNormal(locs[i], covs[i]) for i in range(K)])
    assert isinstance(result, MultivariateNormal)
    precisions = np.stack([np_inv(covs[i]) for i in range(K)])
    expected_precision = precisions.sum(0)
    expected_cov = np.linalg.inv(expected_precision)
    expected_loc = expected_cov @ np.einsum("kij,kj->i", precisions, locs.numpy())
    np.testing.assert_allclose(result.precision_matrix.numpy(), expected_precision, rtol=1e-10)
    np.testing.assert_allclose(result.covariance_matrix.numpy(), expected_cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.loc.numpy(), expected_loc, rtol=1e-9, atol=1e-12)


def test_mvn_two_factor_log_normalizer():
    # int N(x; m1, S1) N(x; m2, S2) dx = N(m1; m2, S1 + S2)
    torch.manual_seed(1)
    d = 4
    m1, m2 = torch.randn(2, d, dtype=DTYPE)
    s1, s2 = random_spd((2,), d)
    f, g = MultivariateNormal(m1, s1), MultivariateNormal(m2, s2)
    fg, log_z = f.conjugate_update(g)
    expected = scipy.stats.multivariate_normal(m2.numpy(), (s1 + s2).numpy()).logpdf(m1.numpy())
    assert log_z.shape == ()
    assert log_z.item() == pytest.approx(expected, rel=1e-10)
    x = torch.randn(7, d, dtype=DTYPE) * 3
    lhs = f.log_prob(x) + g.log_prob(x)
    torch.testing.assert_close(lhs, fg.log_prob(x) + log_z, rtol=1e-10, atol=1e-10)


BATCH_DIMS = [
    (batch_shape, dim)
    for batch_shape in [(4,), (2, 3), (2, 3, 4)]
    for dim in range(-len(batch_shape), len(batch_shape))
]


@pytest.mark.parametrize("keepdim", [True, False])
@pytest.mark.parametrize("batch_shape,dim", BATCH_DIMS)
def test_mvn_product_along_axis_batch_ranks(batch_shape, dim, keepdim):
    torch.manual_seed(2)
    d = 2
    loc = torch.randn(batch_shape + (d,), dtype=DTYPE)
    cov = random_spd(batch_shape, d)
    dist = MultivariateNormal(loc, cov)
    result, log_z = dist._product_with_log_normalizer(dim, keepdim)

    # reference: move the reduced axis to the front and sum precisions there
    axis = dim % len(batch_shape)
    prec = torch.linalg.inv(cov)
    expected_prec = prec.sum(axis, keepdim=keepdim)
    expected_eta1 = (prec @ loc.unsqueeze(-1)).squeeze(-1).sum(axis, keepdim=keepdim)
    expected_loc = torch.linalg.solve(expected_prec, expected_eta1.unsqueeze(-1)).squeeze(-1)
    reduced = list(batch_shape)
    if keepdim:
        reduced[axis] = 1
    else:
        del reduced[axis]
    assert result.batch_shape == torch.Size(reduced)
    assert log_z.shape == torch.Size(reduced)
    torch.testing.assert_close(result.precision_matrix, expected_prec, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(result.loc, expected_loc, rtol=1e-9, atol=1e-9)

    # conjugate_update contract: sum_i log p_i(x) = log p_prod(x) + log Z for every x
    x = torch.randn((5,) + tuple(reduced) + (d,), dtype=DTYPE)
    x_in = x.unsqueeze(axis - len(batch_shape) - 1) if not keepdim else x
    lhs = dist.log_prob(x_in).sum(axis - len(batch_shape), keepdim=keepdim)
    torch.testing.assert_close(lhs, result.log_prob(x) + log_z, rtol=1e-10, atol=1e-9)


def test_mvn_natural_params_round_trip_and_cached_precision():
    torch.manual_seed(3)
    loc = torch.randn(2, 3, 4, dtype=DTYPE)
    cov = random_spd((2, 3), 4)
    dist = MultivariateNormal(loc, cov)
    eta1, eta2 = dist._natural_params
    back = MultivariateNormal._from_natural_params(eta1, eta2)
    assert isinstance(back, MultivariateNormal)
    torch.testing.assert_close(back.loc, loc, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(back.covariance_matrix, cov, rtol=1e-6, atol=1e-6)
    # the precision is kept exactly as given (no inversion round trip)
    assert torch.equal(back.precision_matrix, -(eta2 + eta2.mT))
    # the returned scale_tril is a genuine lower Cholesky factor
    assert bool(torch.distributions.constraints.lower_cholesky.check(back.scale_tril).all())
    # expand keeps the class and the cached precision
    expanded = back.expand((5, 2, 3))
    assert isinstance(expanded, MultivariateNormal)
    torch.testing.assert_close(expanded.precision_matrix[4], back.precision_matrix)


def test_mvn_from_natural_params_symmetrises_eta2():
    torch.manual_seed(4)
    dist = MultivariateNormal(torch.randn(3, dtype=DTYPE), random_spd((), 3))
    eta1, eta2 = dist._natural_params
    skew = torch.randn(3, 3, dtype=DTYPE)
    back = MultivariateNormal._from_natural_params(eta1, eta2 + skew - skew.mT)
    torch.testing.assert_close(back.covariance_matrix, dist.covariance_matrix, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(back.loc, dist.loc, rtol=1e-10, atol=1e-10)


def test_mvn_mean_parameters_closed_form_matches_autograd_and_round_trips():
    torch.manual_seed(5)
    dist = MultivariateNormal(torch.randn(3, 2, dtype=DTYPE), random_spd((3,), 2))
    closed = dist.mean_parameters()
    auto = ExponentialFamily.mean_parameters(dist)  # gradient of the log normaliser
    for c, a in zip(closed, auto, strict=True):
        torch.testing.assert_close(c, a.detach(), rtol=1e-10, atol=1e-10)
    back = MultivariateNormal.from_mean_parameters(*closed)
    torch.testing.assert_close(back.loc, dist.loc, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(back.covariance_matrix, dist.covariance_matrix, rtol=1e-6, atol=1e-6)


def test_mvn_from_mean_parameters_is_the_mle():
    rng = np.random.default_rng(6)
    data = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3)) + rng.normal(size=3)
    x = torch.as_tensor(data)
    fitted = MultivariateNormal.from_mean_parameters(x.mean(0), x.T @ x / len(x))
    np.testing.assert_allclose(fitted.loc.numpy(), data.mean(0), rtol=1e-10)
    np.testing.assert_allclose(fitted.covariance_matrix.numpy(), np.cov(data.T, bias=True), rtol=1e-9)


def test_mvn_log_prob_decomposition_and_entropy():
    torch.manual_seed(7)
    dist = MultivariateNormal(torch.randn(2, 3, dtype=DTYPE), random_spd((2,), 3))
    x = torch.randn(6, 2, 3, dtype=DTYPE)
    torch.testing.assert_close(dist.log_prob_natural(x), dist.log_prob(x), rtol=1e-10, atol=1e-10)
    closed = pdist.MultivariateNormal(dist.loc, dist.covariance_matrix).entropy()
    torch.testing.assert_close(dist.entropy(), closed)
    # with _mean_carrier_measure = 0, torch's Bregman-divergence entropy agrees
    bregman = torch.distributions.ExponentialFamily.entropy(dist)
    torch.testing.assert_close(bregman.detach(), closed, rtol=1e-10, atol=1e-10)


def test_mvn_errors():
    torch.manual_seed(8)
    cov = random_spd((), 2)
    f, g = MultivariateNormal(torch.zeros(2, dtype=DTYPE), cov), MultivariateNormal(torch.ones(2, dtype=DTYPE), cov)
    # precision * (1 - 2) is negative definite: the product does not exist
    with pytest.raises(ValueError, match="natural parameter space"):
        weighted_product([f, g], [1.0, -2.0])
    with pytest.raises(ValueError, match="positive definite"):
        MultivariateNormal._from_natural_params(torch.zeros(2, dtype=DTYPE), torch.eye(2, dtype=DTYPE))
    mu = torch.tensor([1.0, 2.0], dtype=DTYPE)
    with pytest.raises(ValueError, match="positive definite"):
        MultivariateNormal.from_mean_parameters(mu, torch.outer(mu, mu))
    with pytest.raises(ValueError, match="mean_xxT"):
        MultivariateNormal.from_mean_parameters(mu, torch.eye(3, dtype=DTYPE))


def test_negative_definite_constraint():
    m = torch.tensor([[-2.0, 0.5], [0.5, -1.0]], dtype=DTYPE)
    assert bool(negative_definite.check(m))
    assert not bool(negative_definite.check(-m))
    assert not bool(negative_definite.check(torch.zeros(2, 2, dtype=DTYPE)))
    # indefinite
    assert not bool(negative_definite.check(torch.diag(torch.tensor([-1.0, 1.0], dtype=DTYPE))))
    assert negative_definite.check(torch.stack([m, -m])).tolist() == [True, False]


# --------------------------------------------------------------------------- #
# Wishart
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("K", [2, 4])
def test_wishart_product_proportionality_and_df(K):
    torch.manual_seed(10)
    p = 3
    df = torch.tensor([4.0, 5.5, 7.0, 9.0][:K], dtype=DTYPE)
    covs = random_spd((K,), p)
    factors = [Wishart(df[i], covs[i]) for i in range(K)]
    stacked = Wishart(df, covs)
    result, log_z = stacked._product_with_log_normalizer(0, keepdim=False)
    assert isinstance(result, Wishart)
    assert result.df.item() == pytest.approx(df.sum().item() - (K - 1) * (p + 1), rel=1e-12)
    expected_prec = sum(np_inv(c) for c in covs)
    np.testing.assert_allclose(result.precision_matrix.numpy(), expected_prec, rtol=1e-10)
    # sum_i log p_i(X) - log p_prod(X) is the same constant for every SPD X, and equals log Z
    X = random_spd((20,), p, jitter=0.1) * 3
    diff = sum(f.log_prob(X) for f in factors) - result.log_prob(X)
    assert float(diff.std()) < 1e-9
    torch.testing.assert_close(diff, log_z.expand(20), rtol=1e-10, atol=1e-9)
    # and the public helper gives the same distribution
    prod = product(*factors)
    torch.testing.assert_close(prod.df, result.df)
    torch.testing.assert_close(prod.covariance_matrix, result.covariance_matrix)


def test_wishart_product_matches_scipy_density():
    # independent ground truth: the product density is scipy's Wishart up to a constant
    torch.manual_seed(11)
    p = 2
    f = Wishart(torch.tensor(5.0, dtype=DTYPE), random_spd((), p))
    g = Wishart(torch.tensor(3.5, dtype=DTYPE), random_spd((), p))
    fg, log_z = f.conjugate_update(g)
    X = random_spd((10,), p, jitter=0.2)
    ref = scipy.stats.wishart(df=fg.df.item(), scale=fg.covariance_matrix.numpy())
    np.testing.assert_allclose(fg.log_prob(X).numpy(), [ref.logpdf(x) for x in X.numpy()], rtol=1e-10)
    sf = scipy.stats.wishart(df=5.0, scale=f.covariance_matrix.numpy())
    sg = scipy.stats.wishart(df=3.5, scale=g.covariance_matrix.numpy())
    lhs = np.array([sf.logpdf(x) + sg.logpdf(x) for x in X.numpy()])
    np.testing.assert_allclose(lhs, fg.log_prob(X).numpy() + log_z.item(), rtol=1e-10)


@pytest.mark.parametrize("keepdim", [True, False])
@pytest.mark.parametrize("batch_shape,dim", BATCH_DIMS)
def test_wishart_product_along_axis_batch_ranks(batch_shape, dim, keepdim):
    # df differs along every batch axis, so reducing the scalar and the matrix
    # parameter along different axes would be caught
    torch.manual_seed(12)
    p = 2
    df = 3.0 + torch.rand(batch_shape, dtype=DTYPE) * 4
    cov = random_spd(batch_shape, p)
    dist = Wishart(df, cov)
    result, log_z = dist._product_with_log_normalizer(dim, keepdim)
    axis = dim % len(batch_shape)
    n = batch_shape[axis]
    expected_df = df.sum(axis, keepdim=keepdim) - (n - 1) * (p + 1)
    expected_prec = torch.linalg.inv(cov).sum(axis, keepdim=keepdim)
    reduced = list(batch_shape)
    if keepdim:
        reduced[axis] = 1
    else:
        del reduced[axis]
    assert result.batch_shape == torch.Size(reduced)
    torch.testing.assert_close(result.df, expected_df, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(result.precision_matrix, expected_prec, rtol=1e-10, atol=1e-10)
    X = random_spd((3,) + tuple(reduced), p)
    X_in = X.unsqueeze(axis - len(batch_shape) - 2) if not keepdim else X
    lhs = dist.log_prob(X_in).sum(axis - len(batch_shape), keepdim=keepdim)
    torch.testing.assert_close(lhs, result.log_prob(X) + log_z, rtol=1e-10, atol=1e-9)


def test_wishart_round_trips():
    torch.manual_seed(13)
    p = 3
    df = torch.tensor([[2.5, 3.0, 4.5], [6.0, 11.0, 40.0]], dtype=DTYPE)
    dist = Wishart(df, random_spd((2, 3), p))
    back = Wishart._from_natural_params(*dist._natural_params)
    assert isinstance(back, Wishart)
    torch.testing.assert_close(back.df, dist.df, rtol=1e-6, atol=0)
    torch.testing.assert_close(back.covariance_matrix, dist.covariance_matrix, rtol=1e-6, atol=1e-6)
    means = dist.mean_parameters()
    fitted = Wishart.from_mean_parameters(*means)
    torch.testing.assert_close(fitted.df, dist.df, rtol=1e-6, atol=0)
    torch.testing.assert_close(fitted.covariance_matrix, dist.covariance_matrix, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("p,df", [(1, 0.3), (1, 50.0), (2, 1.2), (4, 3.1), (4, 6.0), (3, 1e4)])
def test_wishart_from_mean_parameters_extremes(p, df):
    # df close to the lower bound p - 1, and very large df
    dist = Wishart(torch.tensor(df, dtype=DTYPE), 2.0 * torch.eye(p, dtype=DTYPE))
    fitted = Wishart.from_mean_parameters(*dist.mean_parameters())
    assert fitted.df.item() == pytest.approx(df, rel=1e-6)


def test_wishart_mean_parameters_autograd_and_monte_carlo():
    torch.manual_seed(14)
    p = 3
    dist = Wishart(torch.tensor([6.0, 9.0], dtype=DTYPE), random_spd((2,), p))
    mean_X, mean_logdet = dist.mean_parameters()
    auto = ExponentialFamily.mean_parameters(dist)
    torch.testing.assert_close(mean_X, auto[0].detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mean_logdet, auto[1].detach(), rtol=1e-10, atol=1e-10)
    # Monte Carlo: Var[log|X|] = sum_i psi'((df - i)/2) <= 3 * psi'(2) ~ 1.9, so with
    # N = 20000 the standard error of the mean is <= 0.01; tolerance 0.05 is 5 SE.
    samples = dist.sample((20000,))
    mc_logdet = torch.linalg.slogdet(samples).logabsdet.mean(0)
    torch.testing.assert_close(mc_logdet, mean_logdet, rtol=0, atol=0.05)
    # E[X_ij]: Var[X_ij] = df (V_ij^2 + V_ii V_jj) <= 9 * 2 * max(V)^2; SE ~ 0.03 * max(V); 5 SE
    tol = 5 * (9 * 2) ** 0.5 * float(dist.covariance_matrix.abs().max()) / 20000**0.5
    torch.testing.assert_close(samples.mean(0), mean_X, rtol=0, atol=tol)


def test_wishart_rsample_no_spurious_warning_and_nonsingular():
    torch.manual_seed(21)
    dist = Wishart(torch.tensor([3.5, 8.0], dtype=DTYPE), random_spd((2,), 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        samples = dist.rsample((500,))
    assert samples.shape == (500, 2, 3, 3)
    assert bool(torch.distributions.constraints.positive_definite.check(samples).all())


def test_wishart_from_mean_parameters_p1_is_gamma_mle():
    # for p = 1, Wishart(df, v) is Gamma(df/2, scale=2v): compare with scipy's Gamma MLE
    rng = np.random.default_rng(15)
    data = rng.gamma(shape=2.7, scale=1.3, size=500)
    x = torch.as_tensor(data)
    fitted = Wishart.from_mean_parameters(x.mean().reshape(1, 1), x.log().mean())
    shape, _, scale = scipy.stats.gamma.fit(data, floc=0)
    assert fitted.df.item() / 2 == pytest.approx(shape, rel=1e-6)
    assert 2 * fitted.covariance_matrix.item() == pytest.approx(scale, rel=1e-6)


def test_wishart_from_mean_parameters_gradient():
    # implicit-function gradient of df with respect to E[log|X|], against central differences
    mean_X = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 1.0]], dtype=DTYPE)
    base = Wishart(torch.tensor(7.0, dtype=DTYPE), mean_X / 7.0).mean_parameters()[1]
    ell = base.clone().requires_grad_()
    df = Wishart.from_mean_parameters(mean_X, ell).df
    (grad,) = torch.autograd.grad(df, ell)
    h = 1e-5
    fd = (Wishart.from_mean_parameters(mean_X, base + h).df - Wishart.from_mean_parameters(mean_X, base - h).df) / (
        2 * h
    )
    assert grad.item() == pytest.approx(fd.item(), rel=1e-5)


def test_wishart_log_prob_decomposition_and_entropy():
    torch.manual_seed(16)
    dist = Wishart(torch.tensor([4.0, 6.5], dtype=DTYPE), random_spd((2,), 3))
    X = random_spd((5, 2), 3)
    torch.testing.assert_close(dist.log_prob_natural(X), dist.log_prob(X), rtol=1e-10, atol=1e-10)
    bregman = torch.distributions.ExponentialFamily.entropy(dist)
    torch.testing.assert_close(bregman.detach(), dist.entropy(), rtol=1e-10, atol=1e-10)


def test_wishart_errors():
    torch.manual_seed(17)
    p = 2
    cov = random_spd((), p)
    low = Wishart(torch.tensor(p - 0.5, dtype=DTYPE), cov)  # eta2 = -0.75
    mid = Wishart(torch.tensor(p + 1.0, dtype=DTYPE), cov)  # eta2 = 0
    # eta2 = 2 * (-0.75) + 0.5 * 0 = -1.5 <= -1: df would be <= p - 1
    with pytest.raises(ValueError, match="natural parameter space"):
        weighted_product([low, mid], [2.0, 0.5])
    # precision * (1 - 2) is not positive definite
    with pytest.raises(ValueError, match="natural parameter space"):
        weighted_product([mid, mid], [1.0, -2.0])
    with pytest.raises(ValueError, match="df"):
        Wishart._from_natural_params(-torch.eye(p, dtype=DTYPE), torch.tensor(-1.0, dtype=DTYPE))
    with pytest.raises(ValueError, match="positive definite"):
        Wishart._from_natural_params(torch.eye(p, dtype=DTYPE), torch.tensor(0.0, dtype=DTYPE))
    mean_X = torch.eye(p, dtype=DTYPE)
    with pytest.raises(ValueError, match="Jensen"):
        Wishart.from_mean_parameters(mean_X, torch.tensor(0.0, dtype=DTYPE))
    with pytest.raises(ValueError, match="positive definite"):
        Wishart.from_mean_parameters(-mean_X, torch.tensor(-1.0, dtype=DTYPE))
    with pytest.raises(ValueError, match="mean_X"):
        Wishart.from_mean_parameters(torch.ones(3, dtype=DTYPE), torch.tensor(-1.0, dtype=DTYPE))


@pytest.mark.parametrize("family", ["mvn", "wishart"])
def test_float32_round_trip(family):
    torch.manual_seed(18)
    cov = random_spd((3,), 2).float()
    if family == "mvn":
        dist = MultivariateNormal(torch.randn(3, 2), cov)
        back = MultivariateNormal.from_mean_parameters(*dist.mean_parameters())
        torch.testing.assert_close(back.loc, dist.loc, rtol=1e-4, atol=1e-4)
    else:
        dist = Wishart(torch.tensor([3.0, 5.0, 12.0]), cov)
        back = Wishart.from_mean_parameters(*dist.mean_parameters())
        torch.testing.assert_close(back.df, dist.df, rtol=1e-3, atol=0)
    assert back.covariance_matrix.dtype == torch.float32
    torch.testing.assert_close(back.covariance_matrix, dist.covariance_matrix, rtol=1e-3, atol=1e-4)
    prod = dist.product_along_axis(0)
    assert prod.covariance_matrix.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("family", ["mvn", "wishart"])
def test_cuda_products_and_round_trips(family):
    torch.manual_seed(19)
    cov = random_spd((4,), 3).cuda()
    if family == "mvn":
        dist = MultivariateNormal(torch.randn(4, 3, dtype=DTYPE, device="cuda"), cov)
    else:
        dist = Wishart(torch.tensor([4.0, 5.0, 6.0, 9.0], dtype=DTYPE, device="cuda"), cov)
    prod = dist.product_along_axis(0)
    assert prod.covariance_matrix.device.type == "cuda"
    expected = torch.linalg.inv(cov).sum(0, keepdim=True)
    torch.testing.assert_close(prod.precision_matrix, expected, rtol=1e-10, atol=1e-10)
    back = type(dist).from_mean_parameters(*dist.mean_parameters())
    assert back.covariance_matrix.device.type == "cuda"
    torch.testing.assert_close(back.covariance_matrix, dist.covariance_matrix, rtol=1e-6, atol=1e-6)


def test_pyro_sample_and_expand():
    import pyro

    torch.manual_seed(20)
    mvn = MultivariateNormal(torch.zeros(3, dtype=DTYPE), random_spd((), 3))
    wis = Wishart(torch.tensor(5.0, dtype=DTYPE), random_spd((), 2))

    def model():
        with pyro.plate("n", 4):
            x = pyro.sample("x", mvn)
            w = pyro.sample("w", wis)
        return x, w

    tr = pyro.poutine.trace(model).get_trace()
    assert tr.nodes["x"]["value"].shape == (4, 3)
    assert tr.nodes["w"]["value"].shape == (4, 2, 2)
    assert isinstance(tr.nodes["x"]["fn"], MultivariateNormal)
    assert isinstance(tr.nodes["w"]["fn"], Wishart)
    assert math.isfinite(float(tr.log_prob_sum()))
