# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
The estimator contract of :mod:`pyro_expfam.mixture.base` (issues 8 and 10) on
GaussianMixture and ExpFamMixture: numpy in/numpy out, random states, fits
that commit only when they finish, bit-identical resume, crash-safe files,
float32 far from the origin.
"""

from __future__ import annotations

import errno
import os
import pickle
import warnings

import numpy as np
import pytest
import torch

import pyro_expfam.util as util
from pyro_expfam.mixture import ExpFamMixture, GaussianMixture
from pyro_expfam.util import ConvergenceWarning

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(n: int = 120, seed: int = 0, offset: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]]) * scale
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(size=(n, 2)) * scale + offset


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# ---------------------------------------------------------------------- #
# numpy in, numpy out; torch in, torch out
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_in_numpy_out(dtype):
    X = _blobs().astype(dtype)
    gm = GaussianMixture(3, random_state=0, max_iter=5)
    labels = gm.fit_predict(X)
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int64
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        value = getattr(gm, name)
        assert isinstance(value, np.ndarray) and value.dtype == dtype, name
    assert gm.predict(X).dtype == np.int64 and gm.predict_proba(X).dtype == dtype
    assert isinstance(gm.score_samples(X), np.ndarray) and isinstance(gm.score(X), float)
    s, lab = gm.sample(4)
    assert isinstance(s, np.ndarray) and lab.dtype == np.int64
    np.testing.assert_array_equal(np.round(gm.predict_proba(X)).argmax(1), labels)


def test_torch_in_torch_out():
    X = torch.as_tensor(_blobs(), dtype=torch.float32)
    gm = GaussianMixture(3, random_state=0, max_iter=5).fit(X)
    assert isinstance(gm.means_, torch.Tensor) and gm.means_.dtype == torch.float32
    assert gm.predict(X).dtype == torch.int64 and gm.predict_proba(X).dtype == torch.float32


def test_sklearn_messages_for_bad_data():
    gm = GaussianMixture(2, random_state=0, max_iter=3).fit(_blobs())
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2 features as input"):
        gm.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2 features as input"):
        gm.predict(torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianMixture(2).fit(_blobs() + 1j)
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianMixture(2).fit(torch.as_tensor(_blobs() + 1j))
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="[Ss]parse"):
        GaussianMixture(2).fit(scipy_sparse.csr_matrix(_blobs()))
    # object arrays holding floats are accepted
    X = _blobs().astype(object)
    assert GaussianMixture(2, random_state=0, max_iter=3).fit(X).means_.dtype == np.float64


# ---------------------------------------------------------------------- #
# random_state and numpy integer hyper-parameters
# ---------------------------------------------------------------------- #
def test_random_states_and_numpy_ints():
    X = _blobs()
    ref = GaussianMixture(3, init_params="random", max_iter=3, random_state=7).fit(X).means_
    same = GaussianMixture(np.int64(3), init_params="random", max_iter=np.int32(3), random_state=np.int64(7))
    np.testing.assert_array_equal(same.fit(X).means_, ref)
    # a RandomState or a numpy Generator draws the seed: reproducible from the same state
    a = GaussianMixture(3, max_iter=3, random_state=np.random.RandomState(1)).fit(X).means_
    b = GaussianMixture(3, max_iter=3, random_state=np.random.RandomState(1)).fit(X).means_
    np.testing.assert_array_equal(a, b)
    GaussianMixture(3, max_iter=3, random_state=np.random.default_rng(0)).fit(X)
    GaussianMixture(3, max_iter=3, random_state=torch.Generator().manual_seed(0)).fit(X)
    for bad in ("a", -1, 1.5):
        with pytest.raises(ValueError, match="random_state"):
            GaussianMixture(2, random_state=bad).fit(X)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, "int32"])
def test_half_dtype_refused_up_front(dtype):
    with pytest.raises(ValueError, match=r"dtype=.* is not supported: use torch.float32 or torch.float64"):
        GaussianMixture(2, dtype=dtype).fit(_blobs())


# ---------------------------------------------------------------------- #
# a fit commits only when it finishes
# ---------------------------------------------------------------------- #
def _interrupt_at(monkeypatch, cls, iteration: int, exc: type[BaseException] = KeyboardInterrupt):
    original = cls._step
    count = {"n": 0}

    def step(self, X):
        count["n"] += 1
        if count["n"] == iteration:
            raise exc("injected")
        return original(self, X)

    monkeypatch.setattr(cls, "_step", step)


@pytest.mark.parametrize(
    "make",
    [lambda: GaussianMixture(3, random_state=0, max_iter=20, tol=0),
     lambda: ExpFamMixture("Normal", 3, random_state=0, max_iter=20, tol=0)],
    ids=["GaussianMixture", "ExpFamMixture"],
)
def test_interrupted_refit_keeps_old_fit(monkeypatch, make):
    X, X_new = _blobs(seed=1), _blobs(seed=2)
    est = make().fit(X)
    before = (est.predict(X_new).copy(), est.score(X_new), est.lower_bound_, est.n_iter_,
              {k: v.clone() for k, v in est._get_state().items()})
    _interrupt_at(monkeypatch, type(est), 3)
    with pytest.raises(KeyboardInterrupt):
        est.set_params(random_state=5).fit(_blobs(seed=3) * 2.0)
    np.testing.assert_array_equal(est.predict(X_new), before[0])
    assert est.score(X_new) == before[1] and est.lower_bound_ == before[2] and est.n_iter_ == before[3]
    for k, v in est._get_state().items():
        assert torch.equal(v, before[4][k]), k
    # also in warm-start mode
    _interrupt_at(monkeypatch, type(est), 3)
    with pytest.raises(KeyboardInterrupt):
        est.set_params(warm_start=True).fit(X)
    np.testing.assert_array_equal(est.predict(X_new), before[0])


def test_interrupted_first_fit_leaves_unfitted(monkeypatch):
    from sklearn.exceptions import NotFittedError

    gm = GaussianMixture(3, random_state=0, max_iter=20, tol=0)
    _interrupt_at(monkeypatch, GaussianMixture, 3, RuntimeError)
    with pytest.raises(RuntimeError, match="injected"):
        gm.fit(_blobs())
    with pytest.raises(NotFittedError):
        gm.predict(_blobs())
    assert not hasattr(gm, "n_features_in_") and not hasattr(gm, "means_")


# ---------------------------------------------------------------------- #
# bit-identical resume
# ---------------------------------------------------------------------- #
RESUMABLE = [
    *[pytest.param(lambda ct=ct: GaussianMixture(3, covariance_type=ct, init_params="random", random_state=0, tol=0),
                   id=f"GaussianMixture-{ct}") for ct in COVARIANCE_TYPES],
    pytest.param(lambda: ExpFamMixture("Normal", 3, random_state=0, tol=0), id="ExpFamMixture-Normal"),
    pytest.param(lambda: ExpFamMixture("Poisson", 3, random_state=0, tol=0), id="ExpFamMixture-Poisson"),
]


def _data_for(est) -> np.ndarray:
    X = _blobs(seed=4)
    return np.round(np.abs(X)) if isinstance(est, ExpFamMixture) and est.family == "Poisson" else X


@pytest.mark.parametrize("make", RESUMABLE)
@pytest.mark.parametrize("through_file", [False, True], ids=["memory", "file"])
def test_resume_is_bit_identical(make, through_file, tmp_path):
    est = make()
    X = _data_for(est)
    straight = make().set_params(max_iter=6).fit(X)
    part = make().set_params(max_iter=3).fit(X)
    if through_file:
        part.save(tmp_path / "ckpt.pt")
        part = type(part).load(tmp_path / "ckpt.pt")
    part.set_params(warm_start=True, max_iter=3).fit(X)
    a, b = straight._get_state(), part._get_state()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert part.lower_bound_ == straight.lower_bound_


def test_initial_parameters_given_skip_kmeans(monkeypatch):
    import pyro_expfam.mixture.base as base

    def boom(*args, **kwargs):
        raise AssertionError("k-means start run although all initial parameters were given")

    monkeypatch.setattr(base, "initial_responsibilities", boom)
    X = _blobs()
    gm = GaussianMixture(2, weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [6.0, 1.0]],
                         precisions_init=np.stack([np.eye(2)] * 2), max_iter=0).fit(X)
    np.testing.assert_allclose(gm.means_, [[0.0, 0.0], [6.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(gm.precisions_, np.stack([np.eye(2)] * 2), atol=1e-12)
    with pytest.raises(AssertionError, match="k-means start"):
        GaussianMixture(2, means_init=[[0.0, 0.0], [6.0, 1.0]]).fit(X)


# ---------------------------------------------------------------------- #
# crash-safe files
# ---------------------------------------------------------------------- #
def _fitted() -> GaussianMixture:
    return GaussianMixture(3, random_state=0, max_iter=5).fit(_blobs())


def _failing_writer(exc: BaseException):
    def writer(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")  # something lands on disk before the failure
        f.flush()
        raise exc

    return writer


@pytest.mark.parametrize(
    "exc, raised",
    [(KeyboardInterrupt(), KeyboardInterrupt), (OSError(errno.ENOSPC, "No space left on device"), OSError),
     (RuntimeError("basic_ios::clear: iostream error"), OSError)],
    ids=["interrupted", "disk-full", "torch-iostream"],
)
def test_failed_save_leaves_old_checkpoint(monkeypatch, tmp_path, exc, raised):
    path = tmp_path / "model.pt"
    gm = _fitted()
    gm.save(path)
    good = path.read_bytes()
    monkeypatch.setattr(util, "_writer", _failing_writer(exc))
    with pytest.raises(raised) as info:
        GaussianMixture(2, random_state=1, max_iter=2).fit(_blobs()).save(path)
    if raised is OSError:
        assert str(path) in str(info.value) and "untouched" in str(info.value)
        if isinstance(exc, OSError):
            assert info.value.errno == errno.ENOSPC and "no space left" in str(info.value)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model.pt"]  # no temporary file left behind
    np.testing.assert_array_equal(GaussianMixture.load(path).means_, gm.means_)


def test_bad_files_give_clear_errors(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt.*is empty \(0 bytes\)"):
        GaussianMixture.load(empty)
    good = tmp_path / "good.pt"
    _fitted().save(good)
    raw = bytearray(good.read_bytes())
    for i in range(0, len(raw), 7):
        raw[i] ^= 0xFF
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"flipped\.pt.*(corrupted|refused)"):
        GaussianMixture.load(flipped)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"truncated\.pt.*corrupted"):
        GaussianMixture.load(truncated)
    holding_list = tmp_path / "list.pt"
    torch.save([1, 2, 3], holding_list)
    with pytest.raises(ValueError, match=r"list\.pt.*holds a list"):
        GaussianMixture.load(holding_list)
    with pytest.raises(TypeError, match="holds a GaussianMixture, not a ExpFamMixture"):
        ExpFamMixture.load(good)
    incomplete = tmp_path / "incomplete.pt"
    torch.save({"class": "GaussianMixture", "params": {}}, incomplete)
    with pytest.raises(ValueError, match=r"incomplete\.pt.*missing"):
        GaussianMixture.load(incomplete)
    with pytest.raises(FileNotFoundError, match="nope"):
        GaussianMixture.load(tmp_path / "nope.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_pickle_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"class": "GaussianMixture", "x": _Evil()}, f, protocol=2)  # torch.load's protocol
    with pytest.raises(ValueError, match="weights_only"):
        GaussianMixture.load(path)


# ---------------------------------------------------------------------- #
# float32 far from the origin
# ---------------------------------------------------------------------- #
def _two_blobs(offset: float, n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    X = np.array([[0.0, 0.0], [10.0, 10.0]])[labels] + rng.normal(size=(n, 2)) + offset
    return X, labels


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_offset_1e4_predicts_and_scores_new_data(covariance_type):
    from sklearn.metrics import adjusted_rand_score

    X, _ = _two_blobs(1e4)
    X_new, y_new = _two_blobs(1e4, seed=1)
    kw = dict(covariance_type=covariance_type, random_state=0)
    ref = GaussianMixture(2, **kw).fit(X)  # float64
    gm = GaussianMixture(2, **kw).fit(X.astype(np.float32))
    assert adjusted_rand_score(y_new, gm.predict(X_new.astype(np.float32))) == 1.0
    # the score per point is ~ -3.8; float32 data at 1e4 are rounded by ~5e-4, which moves each
    # point's density by << 0.01 nats
    assert gm.score(X_new.astype(np.float32)) == pytest.approx(ref.score(X_new), abs=0.01)
    np.testing.assert_allclose(gm.score_samples(X_new.astype(np.float32)), ref.score_samples(X_new), atol=0.02)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_offset_1e8_refused_with_float64_hint(covariance_type):
    X, _ = _two_blobs(1e8)
    with pytest.raises(ValueError, match="cannot be represented in torch.float32.*float64"):
        GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X.astype(np.float32))
    # float64 holds these data (resolution 1.5e-8 at 1e8): right answer
    X_new, y_new = _two_blobs(1e8, seed=1)
    from sklearn.metrics import adjusted_rand_score

    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert adjusted_rand_score(y_new, gm.predict(X_new)) == 1.0


def test_expfam_normal_float32_far_from_origin():
    from sklearn.metrics import adjusted_rand_score

    X, _ = _two_blobs(1e4)
    X_new, y_new = _two_blobs(1e4, seed=1)
    ref = ExpFamMixture("Normal", 2, random_state=0).fit(X)
    m = ExpFamMixture("Normal", 2, random_state=0).fit(X.astype(np.float32))
    assert adjusted_rand_score(y_new, m.predict(X_new.astype(np.float32))) == 1.0
    assert m.score(X_new.astype(np.float32)) == pytest.approx(ref.score(X_new), abs=0.01)
    # the components are reported in data coordinates
    np.testing.assert_allclose(np.sort(m.components_.loc.numpy()[:, 0]), [1e4, 1e4 + 10], atol=0.3)
    s, _ = m.sample(500)
    assert abs(float(s.mean()) - (1e4 + 5)) < 1.0
    with pytest.raises(ValueError, match="cannot be represented in torch.float32.*float64"):
        ExpFamMixture("Normal", 2, random_state=0).fit(_two_blobs(1e8)[0].astype(np.float32))
    m64 = ExpFamMixture("MultivariateNormal", 2, random_state=0).fit(_two_blobs(1e8)[0])
    X8, y8 = _two_blobs(1e8, seed=1)
    assert adjusted_rand_score(y8, m64.predict(X8)) == 1.0
