# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""A short demonstration: fit an overlapping mixture to planted bars and report what it recovered."""

from __future__ import annotations

import torch

from ...datasets.overlapping import make_overlapping_bars
from .evaluation import match_clusters
from .fit import OverlappingMixture

__all__ = ["demo"]


def _picture(on: torch.Tensor, side: int) -> list[str]:
    return ["".join("#" if bool(v) else "." for v in row) for row in on.reshape(side, side)]


def demo(
    num_points: int = 500,
    num_clusters: int = 4,
    side: int = 6,
    prior: str = "finite",
    num_steps: int = 1000,
    seed: int = 0,
    progress: bool = True,
    verbose: bool = True,
    figure: str | None = None,
) -> float:
    """
    Fit an overlapping mixture of Bernoulli clusters to planted "bars" data
    (:func:`~pyro_expfam.datasets.overlapping.make_overlapping_bars`: each
    image shows one or two bars), print the true and the learned bars side by
    side, and return the fraction of membership entries recovered (after
    matching clusters with the Hungarian algorithm).

    :param int num_points: number of images.
    :param int num_clusters: number of planted bars (also the model's ``K``;
        with ``prior="ibp"`` the truncation is ``2 * num_clusters``).
    :param int side: image side (``D = side^2`` pixels).
    :param str prior: ``"finite"`` (point estimates) or ``"ibp"`` (mean-field, grown).
    :param int num_steps: maximum SVI steps per initialisation (``max_iter``; also per growth stage for the IBP).
    :param int seed: random seed (data and fit's ``random_state``).
    :param bool progress: show a progress bar per initialisation (and growth stage).
    :param bool verbose: print the report.
    :param str figure: if given, save a figure of the truth against what was
        recovered (bars and membership heat-maps) to this path (needs matplotlib).
    :returns: membership accuracy in [0, 1].
    """
    data = make_overlapping_bars(num_points, num_clusters, side=side, seed=seed)
    n_init = 1 if prior == "ibp" else 2
    # the bars are drawn from the fixed-background model: fit that model
    common = dict(max_iter=num_steps, random_state=seed, verbose=progress, n_init=n_init, background="fixed")
    if prior == "ibp":  # grown cluster by cluster from the family's start
        model = OverlappingMixture(
            "bernoulli", 2 * num_clusters, prior="ibp", guide="mean_field", init_params="auto", **common
        )
    else:
        model = OverlappingMixture("bernoulli", num_clusters, prior=prior, **common)
    model.fit(data.X)
    z_hat = model.predict(data.X)
    perm, accuracy = match_clusters(data.Z, z_hat)
    if verbose:
        learned = model.cluster_distributions().probs > 0.5
        usage = model.predict_proba(data.X).sum(0)
        active = int((usage >= 0.05 * num_points).sum())
        steps = f"{model.n_iter_} SVI steps"
        if model.n_grow_iter_:
            steps += f" after {model.n_grow_iter_} steps growing it cluster by cluster"
        kept = f"the best of {n_init} initialisations" if n_init > 1 else "one initialisation"
        print(f"{num_points} images of {side}x{side} pixels, {num_clusters} planted bars, 1-2 bars per image")
        print(f"fitted {model.n_components} clusters ({prior} prior), {kept}: {steps}; {active} active")
        print("truth vs learned (pixels with P(on) > 0.5):")
        rows = [[] for _ in range(side + 1)]
        for k in range(num_clusters):
            j = int(perm[k])
            rows[0].append(f"bar {k} -> cluster {j}".ljust(2 * side + 3))
            truth = _picture(data.params["logits"][k] > 0, side)
            found = _picture(learned[j], side) if j >= 0 else ["?" * side] * side
            for r in range(side):
                rows[r + 1].append(f"{truth[r]} {found[r]}".ljust(2 * side + 3))
        for row in rows:
            print("  ".join(row))
        true_sizes = data.Z.sum(0).tolist()
        found_sizes = [float(z_hat[:, int(j)].sum()) if j >= 0 else 0.0 for j in perm]
        print("members per bar, true:    ", [int(v) for v in true_sizes])
        print("members per bar, learned: ", [int(v) for v in found_sizes])
        print(f"membership accuracy: {accuracy:.1%} of {data.Z.numel()} entries")
    if figure is not None:
        probs = model.predict_proba(data.X)
        _save_figure(figure, data, model.cluster_distributions().probs, probs, perm, side)
        if verbose:
            print(f"figure saved to {figure}")
    return accuracy


def _save_figure(path: str, data, learned_probs: torch.Tensor, membership: torch.Tensor, perm, side: int) -> None:
    """Truth vs recovered: each planted bar next to its matched cluster, and membership heat-maps."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is in the test extra
        raise ImportError('saving the demo figure needs matplotlib: pip install "pyro_expfam[plot]"') from e
    from ...plot import plot_membership_sets, plot_memberships

    K = data.Z.shape[1]
    order = [int(j) for j in perm]
    shown = min(60, data.Z.shape[0])
    fig = plt.figure(figsize=(2.0 * K + 1, 6.5), constrained_layout=True)
    grid = fig.add_gridspec(3, K)
    for k in range(K):
        ax = fig.add_subplot(grid[0, k])
        planted = torch.sigmoid(data.params["logits"][k]).reshape(side, side)
        ax.imshow(planted.cpu().numpy(), cmap="Greys", vmin=0, vmax=1)
        ax.set_title(f"planted bar {k}", fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(grid[1, k])
        j = order[k]
        if j >= 0:
            ax.imshow(learned_probs[j].reshape(side, side).detach().cpu().numpy(), cmap="Greys", vmin=0, vmax=1)
        ax.set_title(f"learned cluster {j}", fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[2, : K // 2 or 1])
    plot_membership_sets(data.Z, max_points=shown, ax=ax)
    ax.set_title(f"true memberships (first {shown} points)", fontsize=9)
    ax.set_ylabel("bar")
    ax.set_xlabel("data point")
    ax = fig.add_subplot(grid[2, K // 2 or 1 :] if K > 1 else grid[2, 0])
    empty = membership.new_zeros(shown)
    matched = torch.stack([membership[:shown, j] if j >= 0 else empty for j in order], -1)  # (shown, K)
    plot_memberships(matched, colorbar=False, ax=ax)
    ax.set_title("posterior P(z = 1 | x), matched clusters", fontsize=9)
    ax.set_xlabel("data point")
    fig.savefig(path, dpi=110)
    plt.close(fig)
