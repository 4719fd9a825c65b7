# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The README's demonstration: ``python -m pyro_expfam.demo``.

Fits an overlapping mixture of Bernoulli clusters to built-in planted "bars"
data with a progress bar per initialisation, prints the planted bars next to the learned ones and
the membership accuracy, and saves the same comparison as a figure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .models.overlapping.demo import demo

__all__ = ["main"]


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> float:
    """
    Command-line entry point; returns the membership accuracy.

    :param argv: command-line arguments (default ``sys.argv[1:]``); see ``--help``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pyro_expfam.demo",
        description="Fit an overlapping mixture (Heller & Ghahramani 2007) to planted bars and report recovery.",
    )
    parser.add_argument("--prior", choices=["finite", "ibp"], default="finite", help="membership prior")
    parser.add_argument("--points", type=int, default=500, help="number of images (default 500)")
    parser.add_argument("--clusters", type=int, default=4, help="number of planted bars (default 4)")
    parser.add_argument(
        "--steps", type=int, default=1000, help="maximum SVI steps per initialisation (max_iter; default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--figure", default="pyro_expfam_demo.png", help="where to save the figure (skipped without matplotlib)"
    )
    parser.add_argument("--no-figure", action="store_true", help="do not save a figure")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    for name in ("points", "clusters", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer")
    figure = None if args.no_figure else args.figure
    if figure is not None and not _have_matplotlib():  # say so before fitting, not after
        if figure != parser.get_default("figure"):
            parser.error('--figure needs matplotlib: pip install "pyro_expfam[plot]" (or pass --no-figure)')
        print('matplotlib is not installed: no figure will be saved (pip install "pyro_expfam[plot]" for one)')
        figure = None
    return demo(
        num_points=args.points,
        num_clusters=args.clusters,
        prior=args.prior,
        num_steps=args.steps,
        seed=args.seed,
        progress=not args.no_progress,
        figure=figure,
    )


if __name__ == "__main__":
    accuracy = main()
    sys.exit(0 if accuracy >= 0.9 else 1)
