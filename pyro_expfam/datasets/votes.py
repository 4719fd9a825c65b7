# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
A real binary multi-label data set shipped with the package: the 1984 United States Congressional Voting
Records (UCI Machine Learning Repository, CC BY 4.0; see ``data/README.md`` beside this module).
"""

from __future__ import annotations

import csv
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["HouseVotes", "load_house_votes"]

_FILE = "house_votes_84.csv"
_POSITIONS = ("yea", "yea_nay")


class HouseVotes(NamedTuple):
    """
    The data of :func:`load_house_votes` (a named tuple).

    :ivar numpy.ndarray X: ``(435, D)`` float64 array of 0/1.
    :ivar list feature_names: the ``D`` column names.
    :ivar numpy.ndarray party: ``(435,)`` array of ``"democrat"`` / ``"republican"`` (not used by unsupervised
        models).
    """

    X: np.ndarray
    feature_names: list[str]
    party: np.ndarray


def load_house_votes(positions: str = "yea") -> HouseVotes:
    """
    The votes of the 435 members of the U.S. House of Representatives on 16 key votes of 1984 (the UCI
    "Congressional Voting Records" data, donated by J. Schlimmer; source: Congressional Quarterly Almanac, 98th
    Congress, 2nd session, 1984), as binary data: each member is the set of the bills he or she voted for.

    The record distinguishes *yea* (voted, paired or announced for), *nay* (voted, paired or announced against)
    and neither (voted present or made no position known; the original file's ``?``, which is a position, not a
    missing value: 392 of the 6,960 entries).  The file ships inside the package; nothing is downloaded.

    :param str positions: ``"yea"`` (default): 16 columns, 1 where the member's position was yea (nay and
        neither are 0); ``"yea_nay"``: 32 columns, ``<bill>=yea`` and ``<bill>=nay`` for each bill (both 0 for
        neither).
    :returns: :class:`HouseVotes` ``(X, feature_names, party)``: ``X`` a ``(435, D)`` float64 array of 0/1 in
        the file's row order, the column names, and each member's party (267 democrats, 168 republicans).

    >>> from pyro_expfam.datasets import load_house_votes
    >>> X, names, party = load_house_votes()
    >>> X.shape, X.dtype, names[3], sorted(set(X.ravel().tolist()))
    ((435, 16), dtype('float64'), 'physician-fee-freeze', [0.0, 1.0])
    >>> int(X.sum()), (party == "democrat").sum().item()
    (3421, 267)
    >>> load_house_votes("yea_nay").X.shape
    (435, 32)
    """
    if positions not in _POSITIONS:
        raise ValueError(f"positions must be one of {_POSITIONS}, got {positions!r}")
    with resources.files(__package__).joinpath("data", _FILE).open("r", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    bills = header[1:]
    votes = np.array([r[1:] for r in body])
    party = np.array([r[0] for r in body])
    if positions == "yea":
        return HouseVotes((votes == "y").astype(np.float64), list(bills), party)
    X = np.stack([votes == "y", votes == "n"], axis=2).reshape(len(body), -1).astype(np.float64)
    names = [f"{b}={p}" for b in bills for p in ("yea", "nay")]
    return HouseVotes(X, names, party)
