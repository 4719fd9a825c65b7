# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Tests of :mod:`pyro_expfam.plot` (Agg backend): each helper returns an Axes with the expected
artists, the drawn geometry matches closed forms (each ellipse's axes and rotation give back its
covariance; the normalised pointwise product equals the closed-form product), bad input raises a
clear error, and without matplotlib the package still imports and only drawing fails, with a message
naming the ``plot`` extra.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from pyro_expfam.distributions import Beta, Gamma, MultivariateNormal, Normal, Poisson  # noqa: E402
from pyro_expfam.plot import (  # noqa: E402
    plot_gaussian_mixture,
    plot_membership_sets,
    plot_memberships,
    plot_product,
    plot_trace,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _implied_covariance(e: Ellipse, n_std: float) -> np.ndarray:
    """The 2x2 covariance whose n_std contour is the Ellipse patch (from its axes and rotation)."""
    a = np.deg2rad(e.angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return rot @ np.diag([(e.width / (2 * n_std)) ** 2, (e.height / (2 * n_std)) ** 2]) @ rot.T


# -- Gaussian mixtures ------------------------------------------------------------------------------


def test_ellipses_are_the_n_std_contours_of_the_covariances():
    means = np.array([[0.0, 0.0], [5.0, -1.0]])
    covs = np.array([[[4.0, 1.5], [1.5, 1.0]], [[0.5, -0.3], [-0.3, 2.0]]])
    for n_std in (1.0, 2.0):
        ax = plot_gaussian_mixture(means=means, covariances=covs, n_std=n_std)
        assert isinstance(ax, Axes)
        ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
        assert len(ellipses) == 2
        for e, m, c in zip(ellipses, means, covs):
            np.testing.assert_allclose(e.center, m)
            np.testing.assert_allclose(_implied_covariance(e, n_std), c, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_covariance_layouts_give_the_full_matrix_ellipses(covariance_type):
    means = torch.tensor([[0.0, 0.0, 0.0], [3.0, 1.0, 2.0]], dtype=torch.float64)
    var = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.25, 4.0]], dtype=torch.float64)
    cov = {
        "full": torch.diag_embed(var),
        "tied": torch.diag(var[0]),
        "diag": var,
        "spherical": var[:, 0],
    }[covariance_type]
    full = {
        "full": torch.diag_embed(var),
        "tied": torch.diag(var[0]).expand(2, 3, 3),
        "diag": torch.diag_embed(var),
        "spherical": var[:, :1, None] * torch.eye(3, dtype=torch.float64),
    }[covariance_type].numpy()
    # features 0 and 2 (a projection of the 3-D ellipsoid), covariance_type inferred from the shape
    ax = plot_gaussian_mixture(means=means, covariances=cov, dims=(0, 2))
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 2
    for e, m, c in zip(ellipses, means.numpy(), full):
        np.testing.assert_allclose(e.center, m[[0, 2]])
        np.testing.assert_allclose(_implied_covariance(e, 2.0), c[np.ix_([0, 2], [0, 2])], atol=1e-12)


def test_fitted_gaussian_mixture_and_given_axes():
    from pyro_expfam.mixture.gaussian import GaussianMixture

    g = torch.Generator().manual_seed(0)
    X = torch.cat([torch.randn(60, 2, generator=g), torch.randn(60, 2, generator=g) + 6.0]).double()
    gm = GaussianMixture(2, random_state=0).fit(X)
    fig, axes = plt.subplots(1, 2)
    ax = plot_gaussian_mixture(gm, X, ax=axes[1])
    assert ax is axes[1]
    assert sum(isinstance(p, Ellipse) for p in ax.patches) == 2
    (points,) = ax.collections  # the scatter of X, coloured by gm.predict(X)
    assert points.get_offsets().shape == (120, 2)
    labels = np.asarray(gm.predict(X).cpu() if torch.is_tensor(gm.predict(X)) else gm.predict(X))
    np.testing.assert_array_equal(points.get_array(), labels)


def test_sklearn_and_dpmm_mixtures_with_min_weight():
    from sklearn.mixture import GaussianMixture as SkGM

    from pyro_expfam.mixture.dpmm.estimator import DirichletProcessMixture

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (80, 2)), rng.normal(7, 1, (80, 2))])
    sk = SkGM(2, covariance_type="diag", random_state=0).fit(X)
    ax = plot_gaussian_mixture(sk, X)
    assert sum(isinstance(p, Ellipse) for p in ax.patches) == 2
    dp = DirichletProcessMixture(n_components=6, random_state=0, max_iter=50).fit(torch.as_tensor(X))
    weights = np.asarray(torch.as_tensor(dp.weights_).cpu())
    ax = plot_gaussian_mixture(dp, min_weight=0.05)
    assert sum(isinstance(p, Ellipse) for p in ax.patches) == int((weights >= 0.05).sum()) == 2
    unit = DirichletProcessMixture(n_components=4, covariance_type="unit", random_state=0, max_iter=30).fit(X)
    ax = plot_gaussian_mixture(unit, X, min_weight=0.05)
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 2
    for e in ellipses:  # identity covariance: circles of radius n_std
        assert e.width == pytest.approx(4.0) and e.height == pytest.approx(4.0)


def test_gaussian_mixture_bad_input():
    means, covs = np.zeros((2, 2)), np.stack([np.eye(2)] * 2)

    class Unfitted:
        pass

    with pytest.raises(ValueError, match="not a fitted Gaussian mixture"):
        plot_gaussian_mixture(Unfitted())
    with pytest.raises(ValueError, match="both means and covariances"):
        plot_gaussian_mixture(means=means)
    with pytest.raises(ValueError, match="do not fit 2 components"):
        plot_gaussian_mixture(means=means, covariances=np.eye(3))
    with pytest.raises(ValueError, match="covariance_type='diag'"):
        plot_gaussian_mixture(means=means, covariances=covs, covariance_type="diag")
    with pytest.raises(ValueError, match="at least 2 features"):
        plot_gaussian_mixture(means=np.zeros((2, 1)), covariances=np.ones(2))
    with pytest.raises(ValueError, match="dims"):
        plot_gaussian_mixture(means=means, covariances=covs, dims=(0, 0))
    with pytest.raises(ValueError, match="not positive definite"):
        plot_gaussian_mixture(means=means, covariances=np.stack([np.eye(2), -np.eye(2)]))
    with pytest.raises(ValueError, match="NaN"):
        plot_gaussian_mixture(means=np.full((2, 2), np.nan), covariances=covs)
    with pytest.raises(ValueError, match="X has 3 features"):
        plot_gaussian_mixture(means=means, covariances=covs, X=np.zeros((5, 3)))
    with pytest.raises(TypeError, match="matplotlib Axes"):
        plot_gaussian_mixture(means=means, covariances=covs, ax="left")


# -- overlapping mixtures ---------------------------------------------------------------------------


def test_membership_heat_map_shows_the_probabilities_clusters_by_points():
    probs = torch.tensor([[0.9, 0.1, 0.3], [0.5, 0.7, 0.0], [0.0, 1.0, 0.2], [0.2, 0.2, 0.8]])
    ax = plot_memberships(probs, order=[2, 0, 1], max_points=3)
    (image,) = ax.images
    np.testing.assert_allclose(image.get_array(), probs[:3, [2, 0, 1]].T.numpy(), rtol=1e-6)
    assert len(ax.figure.axes) == 2  # the heat-map and its colour bar
    ax = plot_memberships(probs.numpy(), colorbar=False)
    assert len(ax.figure.axes) == 1
    ax = plot_memberships(probs, order=torch.tensor([2]), colorbar=False)  # a selection of clusters
    np.testing.assert_allclose(ax.images[0].get_array(), probs[:, [2]].T.numpy(), rtol=1e-6)


def test_membership_heat_map_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plot_memberships(torch.tensor([[1.5, 0.0]]))
    with pytest.raises(ValueError, match="2-dimensional"):
        plot_memberships(torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="distinct cluster indices"):
        plot_memberships(torch.tensor([[0.5, 0.5]]), order=[0, 0])
    with pytest.raises(ValueError, match=r"distinct cluster indices in \[0, 2\)"):
        plot_memberships(torch.tensor([[0.5, 0.5]]), order=[2])
    with pytest.raises(ValueError, match="max_points"):
        plot_memberships(torch.tensor([[0.5, 0.5]]), max_points=0)


def test_membership_sets_mark_the_disagreements_with_truth():
    Z = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]])
    truth = Z.clone()
    truth[1, 1] = 0
    truth[3, 0] = 1
    ax = plot_membership_sets(Z.bool(), truth=truth)
    (image,) = ax.images
    np.testing.assert_array_equal(image.get_array(), Z.T.numpy())
    (marks,) = ax.get_lines()
    assert sorted(map(tuple, marks.get_xydata().tolist())) == [(1.0, 1.0), (3.0, 0.0)]
    ax = plot_membership_sets(Z)  # no truth: no markers
    assert ax.get_lines() == []


def test_membership_sets_bad_input():
    with pytest.raises(ValueError, match="0/1"):
        plot_membership_sets(torch.tensor([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="truth has shape"):
        plot_membership_sets(torch.ones(3, 2), truth=torch.ones(3, 3))
    with pytest.raises(ValueError, match="truth must hold 0/1"):
        plot_membership_sets(torch.ones(3, 2), truth=torch.full((3, 2), 2.0))


# -- traces -----------------------------------------------------------------------------------------


def test_trace_from_sequences_estimators_and_mappings():
    class Fitted:
        lower_bounds_ = [-3.0, -2.0, -1.5]

    class SVIFit:
        loss_history_ = torch.tensor([30.0, 20.0])

    ax = plot_trace(Fitted())
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line.get_ydata(), [-3.0, -2.0, -1.5])
    assert ax.get_ylabel() == "lower bound"
    ax = plot_trace(SVIFit(), per=10.0, logx=True)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [3.0, 2.0])
    assert ax.get_ylabel() == "loss per point" and ax.get_xscale() == "log"
    ax = plot_trace({"a": np.arange(5.0), "b": [1.0, float("nan"), 2.0]})
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert ax.get_legend() is not None


def test_trace_bad_input():
    with pytest.raises(ValueError, match="empty"):
        plot_trace([])
    with pytest.raises(ValueError, match="1-D"):
        plot_trace(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="1-D"):
        plot_trace("loss")
    with pytest.raises(ValueError, match="no finite value"):
        plot_trace([float("nan")])
    with pytest.raises(ValueError, match="per must be positive"):
        plot_trace([1.0], per=0)
    with pytest.raises(ValueError, match="trace 'b'"):
        plot_trace({"a": [1.0], "b": []})


# -- products ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factors",
    [
        Normal(torch.tensor([0.0, 2.0, 5.0]), torch.tensor([1.0, 0.5, 2.0])),
        [Beta(2.0, 3.0), Beta(4.0, 1.5)],
        [Gamma(2.0, 1.0), Gamma(3.0, 0.5)],
    ],
    ids=["normal-batch", "beta-list", "gamma-list"],
)
def test_product_closed_form_lies_on_the_normalised_pointwise_product(factors):
    torch.set_default_dtype(torch.float64)
    try:
        ax = plot_product(factors)
    finally:
        torch.set_default_dtype(torch.float32)
    n = 3 if isinstance(factors, Normal) else 2
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == [f"factor {i}" for i in range(n)] + [
        "normalised pointwise product",
        "product()",
    ]
    numeric, closed = lines[-2].get_ydata(), lines[-1].get_ydata()
    assert np.abs(numeric - closed).max() < 1e-3 * numeric.max()


def test_product_of_poissons_is_conway_maxwell_poisson_without_closed_form():
    rates = torch.tensor([3.0, 10.0, 2.0], dtype=torch.float64)
    ax = plot_product(Poisson(rates), grid=torch.arange(0.0, 121.0), labels=["a", "b", "c"])
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["a", "b", "c", "normalised pointwise product"]
    x, p = ax.get_lines()[-1].get_xdata(), ax.get_lines()[-1].get_ydata()
    # CMP(lambda = prod rates, nu = 3): p(x) propto lambda^x / (x!)^3
    from scipy.special import gammaln

    log_cmp = x * np.log(60.0) - 3 * gammaln(x + 1)
    cmp = np.exp(log_cmp - log_cmp.max())
    np.testing.assert_allclose(p, cmp / cmp.sum(), atol=1e-10)


def test_product_bad_input():
    with pytest.raises(TypeError, match="not a pyro_expfam ExponentialFamily"):
        plot_product([torch.distributions.Normal(0.0, 1.0)])
    with pytest.raises(TypeError, match="non-empty sequence"):
        plot_product([])
    with pytest.raises(ValueError, match="batch_shape"):
        plot_product(Normal(torch.zeros(2, 2), torch.ones(2, 2)))
    with pytest.raises(ValueError, match="one-dimensional family"):
        plot_product(MultivariateNormal(torch.zeros(2, 3), torch.eye(3).expand(2, 3, 3)))
    with pytest.raises(ValueError, match="scalar distribution"):
        plot_product([Normal(torch.zeros(2), torch.ones(2))])
    with pytest.raises(ValueError, match="increasing"):
        plot_product([Normal(0.0, 1.0)], grid=[1.0, 0.0])
    with pytest.raises(ValueError, match="support"):
        plot_product([Beta(2.0, 2.0)], grid=[2.0, 3.0])
    with pytest.raises(ValueError, match="labels must be a sequence of 2"):
        plot_product([Beta(2.0, 2.0), Beta(3.0, 1.0)], labels=["one"])


# -- without matplotlib -----------------------------------------------------------------------------


def test_without_matplotlib_only_drawing_fails_naming_the_extra():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["matplotlib"] = None  # as if matplotlib were not installed
        import pyro_expfam.plot as p
        try:
            p.plot_trace([1.0, 2.0])
        except ImportError as e:
            assert "pyro_expfam[plot]" in str(e), e
            print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
