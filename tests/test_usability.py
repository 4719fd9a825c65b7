# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""What an experienced scikit-learn / Pyro user expects beyond correctness: clear errors, sklearn tooling."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pyro_expfam.datasets import make_blobs, make_overlapping_bars
from pyro_expfam.distributions import Poisson
from pyro_expfam.mixture import DirichletProcessMixture, ExpFamMixture, GaussianMixture
from pyro_expfam.models import OverlappingMixture
from pyro_expfam.util import check_device


def _blobs():
    X, _ = make_blobs(300, 2, 3, random_state=0, dtype=torch.float64)
    return X.numpy()


@pytest.mark.parametrize("estimator", [GaussianMixture(3, random_state=0), DirichletProcessMixture(6, random_state=0)])
def test_estimators_work_in_pipeline_and_grid_search(estimator):
    X = _blobs()
    pipe = make_pipeline(StandardScaler(), clone(estimator)).fit(X)
    assert np.isfinite(pipe.score(X))
    search = GridSearchCV(clone(estimator), {"n_components": [3, 4]}, cv=3).fit(X)
    assert search.best_params_["n_components"] in (3, 4)
    assert np.isfinite(search.best_score_)


def test_family_names_are_accepted_case_insensitively():
    C = torch.poisson(torch.full((60, 2), 3.0, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    a = ExpFamMixture("poisson", 2, random_state=0).fit(C)
    b = ExpFamMixture(Poisson, 2, random_state=0).fit(C)
    torch.testing.assert_close(a.weights_, b.weights_)
    with pytest.raises(ValueError, match="choose one of"):
        ExpFamMixture("poison", 2).fit(C)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_unavailable_device_gives_a_clear_error():
    X = _blobs()
    with pytest.raises(ValueError, match="CUDA is not available"):
        GaussianMixture(2, device="cuda").fit(X)
    with pytest.raises(ValueError, match="CUDA is not available"):
        make_overlapping_bars(10, device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        OverlappingMixture("bernoulli", 2).to(device="cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        check_device("gpu")
    assert check_device("cpu") == torch.device("cpu")


def test_batch_size_with_cavi_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        DirichletProcessMixture(5, batch_size=10).fit(_blobs())


def test_conjugate_posterior_with_mismatched_data_shape_raises():
    from pyro_expfam.conjugate import posterior
    from pyro_expfam.distributions import Bernoulli, Beta

    prior = Beta(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="batch_shape"):
        posterior(prior, Bernoulli, torch.tensor([1.0, 0.0, 1.0]))
    post = posterior(prior, Bernoulli, torch.tensor([[1.0, 0.0], [1.0, 1.0]]))  # (N, batch) is fine
    torch.testing.assert_close(post.concentration1, torch.tensor([3.0, 3.0]))


def test_integer_arrays_are_fitted_in_float64_like_sklearn():
    X = np.round(_blobs() * 10).astype(int)
    assert GaussianMixture(3, random_state=0).fit(X).means_.dtype == np.float64  # numpy in, numpy out
    # integer *tensors* follow torch's default floating dtype
    assert GaussianMixture(3, random_state=0).fit(torch.as_tensor(X)).means_.dtype == torch.get_default_dtype()
