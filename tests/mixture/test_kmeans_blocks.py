# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The blocked code paths of the k-means start (pyro_expfam.mixture.init), which real data reach only at large
N x K: forced here on small data by shrinking the block sizes, and checked against brute force (nearest
centre by ``torch.cdist``) and against the same computation in one block.
"""

import pytest
import torch

from pyro_expfam.mixture import init as I


def _data(n, d, k, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    means = 4.0 * torch.randn(k, d, generator=g, dtype=dtype)
    labels = torch.randint(k, (n,), generator=g)
    return means[labels] + torch.randn(n, d, generator=g, dtype=dtype)


@pytest.mark.parametrize("d", [1, 2, 10, 20])
@pytest.mark.parametrize("k", [1, 3, 7, 40])
@pytest.mark.parametrize("blocked", [False, True])
def test_nearest_matches_brute_force(monkeypatch, d, k, blocked):
    if blocked:  # blocks of 5 rows (or columns): the last block is partial for N=203
        monkeypatch.setattr(I, "_BLOCK_ELEMENTS", 5 * k)
        monkeypatch.setattr(I, "_CHUNK_ELEMENTS", 10)
    X = _data(203, d, 5)
    C = _data(k, d, 3, seed=1)
    expected = torch.cdist(X, C).argmin(1)
    assert torch.equal(I._nearest(X, C), expected)
    assert torch.equal(I._nearest(X.float(), C.float()), torch.cdist(X.float(), C.float()).argmin(1))


def test_nearest_ties_go_to_the_lowest_index():
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    C = torch.tensor([[2.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    # x=0 is 1 from both centre 1 and centre 2 (tie: 1); x=1 sits on centres 2 and 3 (tie: 2); x=3 -> 0
    assert I._nearest(X, C).tolist() == [1, 2, 0]


@pytest.mark.parametrize("d", [2, 10, 20])
def test_blocked_seeding_and_lloyd_equal_one_block(monkeypatch, d):
    X = _data(500, d, 6)
    c1, idx1 = I.kmeans_plusplus(X, 6, torch.Generator().manual_seed(3))
    cen1, lab1, it1 = I.kmeans(X, 6, torch.Generator().manual_seed(3), max_iter=50, tol=0.0, _return_n_iter=True)
    monkeypatch.setattr(I, "_BLOCK_ELEMENTS", 64)
    monkeypatch.setattr(I, "_CHUNK_ELEMENTS", 100)
    c2, idx2 = I.kmeans_plusplus(X, 6, torch.Generator().manual_seed(3))
    cen2, lab2, it2 = I.kmeans(X, 6, torch.Generator().manual_seed(3), max_iter=50, tol=0.0, _return_n_iter=True)
    assert torch.equal(idx1, idx2) and torch.equal(c1, X[idx1])
    assert torch.equal(lab1, lab2) and it1 == it2
    torch.testing.assert_close(cen1, cen2, rtol=1e-12, atol=1e-12)
    # with tol=0 Lloyd stops only at a fixed point (labels are the nearest centres, centres the cluster means),
    # well before max_iter on six separated blobs
    assert it1 < 50
    assert torch.equal(lab1, torch.cdist(X, cen1).argmin(1))
    means = torch.stack([X[lab1 == j].mean(0) for j in range(6)])
    torch.testing.assert_close(cen1, means, rtol=1e-10, atol=1e-10)
