# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""Streaming: ``DirichletProcessMixture.partial_fit`` (stochastic natural-gradient VI over chunks), issue 13."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_expfam.datasets.blobs import make_blobs
from pyro_expfam.mixture import DirichletProcessMixture

N = 4000


def _data(seed: int = 0) -> torch.Tensor:
    X, _ = make_blobs(N, 2, 4, random_state=seed, dtype=torch.float64)
    return X[torch.randperm(N, generator=torch.Generator().manual_seed(1))]  # a stream in random order


def test_partial_fit_on_all_data_is_an_snvi_epoch():
    # one chunk holding all the data, total_size = N: the same k-means start, the same minibatches (same
    # generator), the same N/|B| scaling and step sizes as fit(method="snvi"); only the start's statistics are
    # summed in another order, so the two agree to rounding
    X = _data()
    kw = dict(method="snvi", batch_size=250, random_state=0, tol=0.0)
    stream = DirichletProcessMixture(4, total_size=N, **kw)
    for epochs in (1, 2):
        stream.partial_fit(X)
        with pytest.warns(Warning, match="did not converge"):
            batch = DirichletProcessMixture(4, max_iter=epochs, **kw).fit(X)
        torch.testing.assert_close(stream._phi, batch._phi, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(stream._sticks, batch._sticks, rtol=1e-9, atol=1e-9)
    assert stream.n_iter_ == 2 and len(stream.lower_bounds_) == 2


@pytest.mark.parametrize("seed", [0, 1])
def test_partial_fit_over_chunks_reaches_the_cavi_optimum(seed):
    # 5 passes over 8 chunks of 500 (minibatches of 200: 100 natural-gradient steps, last step size
    # 101^-0.6 = 0.063).  Tolerance 0.01 nats/point (issue 13's target); observed 0.001 (the stochastic
    # optimum lies slightly above or below CAVI's local optimum).  Same truncation K = 4 as the planted
    # clusters: with a larger truncation the stream keeps split clusters (no merge moves in snvi yet) and
    # stalls ~0.05 nats/point below.
    X = _data(seed)
    cavi = DirichletProcessMixture(4, random_state=0).fit(X)
    est = DirichletProcessMixture(4, method="snvi", batch_size=200, total_size=N, random_state=0)
    for _ in range(5):
        for chunk in X.split(500):
            est.partial_fit(chunk)
    assert abs(cavi.elbo(X) - est.elbo(X)) < 0.01
    assert est.n_iter_ == 40
    # the running count (total_size=None) is meant for a single pass (each point seen once): one pass over the
    # 8 chunks, its scaling growing with the points seen (observed 0.004 nats/point)
    run = DirichletProcessMixture(4, method="snvi", batch_size=200, random_state=0)
    for chunk in X.split(500):
        run.partial_fit(chunk)
    assert run._seen == N
    assert abs(cavi.elbo(X) - run.elbo(X)) < 0.01


def test_partial_fit_numpy_io_resume_and_restart(tmp_path):
    X = _data().numpy()
    est = DirichletProcessMixture(4, method="snvi", batch_size=200, total_size=N, random_state=0)
    est.partial_fit(X[:1000])
    assert isinstance(est.weights_, np.ndarray) and isinstance(est.predict(X[:5]), np.ndarray)
    # save/load continues the stream bit-identically (generator, step counter, points seen)
    est.save(tmp_path / "s.pt")
    loaded = DirichletProcessMixture.load(tmp_path / "s.pt")
    est.partial_fit(X[1000:2000])
    loaded.partial_fit(X[1000:2000])
    assert torch.equal(est._phi, loaded._phi) and loaded._seen == 2000
    # fit() starts over and ends the stream
    est.fit(X)
    assert "_seen" not in est.__dict__


def test_partial_fit_bad_input_leaves_the_model_intact():
    X = _data()
    assert not hasattr(DirichletProcessMixture(4), "partial_fit")  # method="cavi"
    with pytest.raises(ValueError, match="total_size must be a positive int"):
        DirichletProcessMixture(4, method="snvi", total_size=0).partial_fit(X)
    est = DirichletProcessMixture(4, method="snvi", random_state=0).partial_fit(X[:500])
    phi = est._phi.clone()
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:100, :1])
    assert torch.equal(est._phi, phi) and est.n_iter_ == 1
