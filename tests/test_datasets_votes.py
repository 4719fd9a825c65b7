# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""load_house_votes: the shipped file against the counts its donor documents."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_expfam.datasets import load_house_votes

# the donor's documentation (house-votes-84.names): 435 members, 267 democrats, and per bill the number of
# members whose position was neither yea nor nay ("?")
_NEITHER = [12, 48, 11, 11, 15, 11, 14, 15, 22, 7, 21, 31, 25, 17, 28, 104]


def test_counts_match_the_documentation():
    X, names, party = load_house_votes()
    assert X.shape == (435, 16) and len(names) == 16 and names[0] == "handicapped-infants"
    assert set(np.unique(X).tolist()) == {0.0, 1.0}
    assert (party == "democrat").sum() == 267 and (party == "republican").sum() == 168
    Y, names2, party2 = load_house_votes("yea_nay")
    assert Y.shape == (435, 32) and names2[:2] == ["handicapped-infants=yea", "handicapped-infants=nay"]
    pairs = Y.reshape(435, 16, 2)
    np.testing.assert_array_equal(pairs[:, :, 0], X)  # the yea columns are the default encoding
    assert pairs.sum(2).max() == 1  # never both yea and nay
    assert (pairs.sum(2) == 0).sum(0).tolist() == _NEITHER
    np.testing.assert_array_equal(party, party2)


def test_known_rows_and_party_structure():
    X, names, party = load_house_votes()
    # the first row of the original file: republican,n,y,n,y,y,y,n,n,n,y,?,y,y,y,n,y
    assert party[0] == "republican"
    assert X[0].tolist() == [0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1]
    # the best-known split of the data: physician-fee-freeze is yea for nearly all republicans only
    fee = X[:, names.index("physician-fee-freeze")]
    assert fee[party == "republican"].mean() > 0.9 and fee[party == "democrat"].mean() < 0.1


def test_bad_positions():
    with pytest.raises(ValueError, match="positions"):
        load_house_votes("nay")
