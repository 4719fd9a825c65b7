# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Exactness of the overlapping mixture model: the enumerated loss against brute force over all
membership sets, the matrix-product kernels against plain autograd, the approximate mode against
exact enumeration, the Pyro tools (TraceEnum_ELBO, infer_discrete, Predictive), and refusals.
"""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import scipy.stats
import torch
from pyro import poutine
from pyro.infer import Predictive, Trace_ELBO, TraceEnum_ELBO

import pyro_expfam.distributions as expfam
from pyro_expfam.models.overlapping import (
    BernoulliClusters,
    CategoricalClusters,
    ExpFamClusters,
    MultivariateNormalClusters,
    NormalClusters,
    OverlappingMixtureModel,
    membership_sets,
)
from pyro_expfam.models.overlapping.marginal import logsumexp_matmul, logsumexp_outer
from pyro_expfam.models.overlapping.reparam import LogGamma, LogitBeta

F64 = torch.float64


def _empty_guide(*args, **kwargs):
    pass


#: families without a dedicated cluster family: ExpFamClusters around a template (batch shape = features)
GENERIC = {
    "exponential": lambda: expfam.Exponential(torch.full((3,), 1.5, dtype=F64)),
    "gamma": lambda: expfam.Gamma(torch.full((2,), 2.0, dtype=F64), torch.ones(2, dtype=F64)),
    "beta": lambda: expfam.Beta(torch.full((2,), 2.0, dtype=F64), torch.full((2,), 3.0, dtype=F64)),  # carrier shift
    "dirichlet": lambda: expfam.Dirichlet(torch.full((2, 3), 2.0, dtype=F64)),  # shift, event dim 1
    "von_mises": lambda: expfam.VonMises(torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)),
}


def _data(family: str, n: int, g: torch.Generator) -> torch.Tensor:
    if family == "bernoulli":
        return torch.bernoulli(torch.full((n, 5), 0.4, dtype=F64), generator=g)
    if family == "categorical":
        return torch.randint(3, (n, 4), generator=g).to(F64)
    if family == "one_hot_categorical":
        return torch.nn.functional.one_hot(torch.randint(3, (n, 4), generator=g), 3).to(F64)
    if family in GENERIC:
        torch.manual_seed(0)
        return GENERIC[family]().sample((n,))
    return torch.randn(n, 3, generator=g, dtype=F64)


def _model(family: str, k: int, prior: str, **kwargs) -> OverlappingMixtureModel:
    fam = {
        "bernoulli": BernoulliClusters(),
        "normal": NormalClusters(),
        "normal_full": MultivariateNormalClusters(),
        "categorical": CategoricalClusters(),
        "one_hot_categorical": CategoricalClusters(one_hot=True),
    }.get(family) or ExpFamClusters(GENERIC[family]())
    return OverlappingMixtureModel(fam, k, prior=prior, alpha=1.3, **kwargs)


def _random_values(m: OverlappingMixtureModel, g: torch.Generator) -> dict[str, torch.Tensor]:
    values = {s: 0.7 * torch.randn(shape, generator=g, dtype=F64) for s, shape in m.global_sites().items()}
    if isinstance(m.family, ExpFamClusters):  # natural parameters away from the boundary (e.g. Beta shapes > 1)
        values = {s: v + 1.0 if "_natural_" in s else v for s, v in values.items()}
    return values


def _set_distribution(m: OverlappingMixtureModel, values: dict, z: torch.Tensor):
    """
    The distribution of a point with membership set z, built independently of the GEMM path: the core's
    normalised product (product_along_axis with 0/1 weights) of the background and the clusters.
    """
    fam = m.family
    learned = fam.learn_background  # the background is then row 0 of the "background_*" sites
    if isinstance(fam, BernoulliClusters):
        row0 = values["background_logits"] if learned else torch.zeros(1, values["cluster_logits"].shape[1], dtype=F64)
        stacked = expfam.Bernoulli(logits=torch.cat([row0, values["cluster_logits"]]))
    elif isinstance(fam, NormalClusters):
        h = fam.hyper
        if learned:
            loc0, scale0 = values["background_loc"], (-0.5 * values["background_log_precision"]).exp()
        else:
            loc0, scale0 = h["loc"][None], (fam.background_scale * h["var"].sqrt())[None]
        loc = torch.cat([loc0, values["cluster_loc"]])
        scale = torch.cat([scale0, (-0.5 * values["cluster_log_precision"]).exp()])
        stacked = expfam.Normal(loc, scale)
    elif isinstance(fam, MultivariateNormalClusters):
        h = fam.hyper
        d = h["loc"].shape[0]
        rows, cols = torch.tril_indices(d, d, offset=-1)

        def wishart(prefix, lw):
            a = torch.diag_embed((0.5 * values[f"{prefix}_bartlett_log_chi2"]).exp())
            a[:, rows, cols] = values[f"{prefix}_bartlett_offdiag"]
            return lw @ a @ a.mT @ lw.T

        prec = wishart("cluster", h["wishart_tril"])
        if learned:  # Wishart scale Sigma^-1 / (df * background_scale^2)
            prec0, loc0 = wishart("background", h["wishart_tril"] / fam.background_scale), values["background_loc"]
        else:
            prec0, loc0 = torch.linalg.inv(fam.background_scale**2 * h["cov"])[None], h["loc"][None]
        stacked = expfam.MultivariateNormal(
            torch.cat([loc0, values["cluster_loc"]]), precision_matrix=torch.cat([prec0, prec])
        )
    elif isinstance(fam, CategoricalClusters):
        logits = values["cluster_log_weights"]
        row0 = values["background_log_weights"] if learned else torch.zeros_like(logits[:1])
        logits = torch.cat([row0, logits])
        cls = expfam.OneHotCategorical if fam.one_hot else expfam.Categorical
        stacked = cls(logits=logits)
    else:  # ExpFamClusters: stack the background and the clusters' natural parameters
        layout = fam.layout
        constraints = layout.family._natural_param_constraints
        if learned:
            eta0 = [
                torch.distributions.biject_to(c)(values[f"background_natural_{i}"])[0]
                for i, c in enumerate(constraints)
            ]
        else:
            eta0 = layout.unflatten(fam.hyper["background"])
        eta_k = [torch.distributions.biject_to(c)(values[f"cluster_natural_{i}"]) for i, c in enumerate(constraints)]
        stacked = layout.family._from_natural_params(
            *(torch.cat([e0[None], ek]) for e0, ek in zip(eta0, eta_k, strict=True)), **layout.fixed
        )
    w = torch.cat([torch.ones(1, dtype=F64), z]).reshape((-1,) + (1,) * (len(stacked.batch_shape) - 1))
    return stacked.product_along_axis(0, keepdim=False, weights=w)


def _pi(m: OverlappingMixtureModel, values: dict) -> torch.Tensor:
    v = torch.sigmoid(values[m.prior.site])
    return v.cumprod(-1) if m.prior.site == "v_logit" else v


def _brute_force_loss(m: OverlappingMixtureModel, values: dict, X: torch.Tensor, sets=None) -> float:
    """-(log prior of the globals + sum_n log sum_s p(s) p(x_n | s)) by explicit loops over the sets."""
    tr = poutine.trace(poutine.condition(m.model, data=values)).get_trace(X)
    log_prior = sum(
        site["fn"].log_prob(site["value"]).sum()
        for name, site in tr.nodes.items()
        if site["type"] == "sample" and name not in ("z", "x")
    )
    pi = _pi(m, values)
    k = pi.shape[0]
    if sets is None:
        sets = [torch.tensor(s, dtype=F64) for s in itertools.product([0.0, 1.0], repeat=k)]
    total = 0.0
    dists = [(z, _set_distribution(m, values, z)) for z in sets]
    for x in X:
        terms = []
        for z, d in dists:
            log_pz = (z * pi.log() + (1 - z) * (1 - pi).log()).sum()
            lp = d.log_prob(x)
            terms.append(log_pz + lp.sum())
        total = total + torch.logsumexp(torch.stack(terms), 0)
    return float(-(log_prior + total))


FAMILIES = ["bernoulli", "normal", "normal_full", "categorical", "one_hot_categorical", *GENERIC]


@pytest.mark.parametrize("prior", ["finite", "ibp"])
@pytest.mark.parametrize("family", FAMILIES)
def test_enumerated_loss_equals_brute_force(family, prior):
    g = torch.Generator().manual_seed(0)
    X = _data(family, 7, g)
    k = 3
    m = _model(family, k, prior)
    m.setup(X)
    values = _random_values(m, g)
    conditioned = poutine.condition(m.model, data=values)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(conditioned, _empty_guide, X)
    expected = _brute_force_loss(m, values, X)
    assert loss == pytest.approx(expected, abs=1e-6, rel=1e-10)
    # the collapsed model (membership sets summed out by the fused kernel) gives the same number
    marginal = Trace_ELBO().loss(poutine.condition(m.marginal_model, data=values), _empty_guide, X)
    assert marginal == pytest.approx(expected, abs=1e-6, rel=1e-10)


@pytest.mark.parametrize("family", FAMILIES)
def test_learned_background_loss_equals_brute_force(family):
    """background="learned": eta_0 is a global site with a conjugate prior; loss = brute force over all sets."""
    g = torch.Generator().manual_seed(10)
    X = _data(family, 6, g)
    m = _model(family, 3, "ibp", background="learned")
    m.setup(X)
    values = _random_values(m, g)
    assert any(s.startswith("background_") for s in values)
    expected = _brute_force_loss(m, values, X)  # includes the background's prior density
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(poutine.condition(m.model, data=values), _empty_guide, X)
    assert loss == pytest.approx(expected, abs=1e-6, rel=1e-10)
    marginal = Trace_ELBO().loss(poutine.condition(m.marginal_model, data=values), _empty_guide, X)
    assert marginal == pytest.approx(expected, abs=1e-6, rel=1e-10)
    # at its initial value the learned background is the fixed one: same likelihood
    fixed = _model(family, 3, "ibp", background="fixed")
    fixed.initialize(X, torch.Generator().manual_seed(0))
    m.initialize(X, torch.Generator().manual_seed(0))
    assert m.score(X) == pytest.approx(fixed.score(X), abs=1e-10)
    # a point in no cluster follows the background distribution
    assert torch.allclose(
        m.set_distribution(torch.zeros(3, dtype=F64)).log_prob(X), m.background_distribution().log_prob(X)
    )


@pytest.mark.parametrize("k", [1, 2, 4])
def test_marginal_equals_enumeration_all_k(k):
    g = torch.Generator().manual_seed(1)
    X = _data("bernoulli", 10, g)
    m = _model("bernoulli", k, "ibp")
    m.setup(X)
    values = _random_values(m, g)
    enum = TraceEnum_ELBO(max_plate_nesting=1).loss(poutine.condition(m.model, data=values), _empty_guide, X)
    marg = Trace_ELBO().loss(poutine.condition(m.marginal_model, data=values), _empty_guide, X)
    assert marg == pytest.approx(enum, abs=1e-6, rel=1e-10)
    assert enum == pytest.approx(_brute_force_loss(m, values, X), abs=1e-6, rel=1e-10)


def test_matches_naive_formulation_with_k_sites():
    """Our single-site GEMM model against the naive Pyro model: K enumerated Bernoulli sites (sequential)."""
    g = torch.Generator().manual_seed(2)
    X = _data("bernoulli", 8, g)
    k = 4
    m = _model("bernoulli", k, "finite")
    m.setup(X)
    values = _random_values(m, g)
    pi, logits = torch.sigmoid(values["pi_logit"]), values["cluster_logits"]

    def naive():
        with pyro.plate("data", X.shape[0], dim=-1):
            eta = 0.0
            for j in range(k):
                z = pyro.sample(f"z_{j}", dist.Bernoulli(pi[j]), infer={"enumerate": "parallel"})
                eta = eta + z.unsqueeze(-1) * logits[j]
            pyro.sample("x", dist.Bernoulli(logits=eta).to_event(1), obs=X)

    naive_loss = TraceEnum_ELBO(max_plate_nesting=1).loss(naive, _empty_guide)
    tr = poutine.trace(poutine.condition(m.model, data=values)).get_trace(X)
    log_prior = sum(tr.nodes[s]["fn"].log_prob(values[s]) for s in values)
    ours = TraceEnum_ELBO(max_plate_nesting=1).loss(poutine.condition(m.model, data=values), _empty_guide, X)
    assert ours == pytest.approx(naive_loss - float(log_prior), abs=1e-6, rel=1e-10)


def test_lockstep_trap_is_avoided():
    """
    Enumerating the K memberships inside pyro.plate("clusters") and using them outside the plate gives a
    loss without any error, but a wrong one (DESIGN.md section 2); the model's single membership-set site
    gives the brute-force value.
    """
    g = torch.Generator().manual_seed(3)
    X = _data("bernoulli", 6, g)
    k = 3
    m = _model("bernoulli", k, "finite")
    m.setup(X)
    values = _random_values(m, g)
    pi, logits = torch.sigmoid(values["pi_logit"]), values["cluster_logits"]

    def lockstep():
        with pyro.plate("data", X.shape[0], dim=-1):
            with pyro.plate("clusters", k, dim=-2):
                z = pyro.sample("z", dist.Bernoulli(pi.unsqueeze(-1)), infer={"enumerate": "parallel"})
            # z: (enum..., K or 1, N or 1); the enumerated value is shared by all K clusters ("lockstep")
            eta = (z.unsqueeze(-1) * logits.unsqueeze(-2)).sum(-3, keepdim=True)
            pyro.sample("x", dist.Bernoulli(logits=eta).to_event(1), obs=X)

    wrong = TraceEnum_ELBO(max_plate_nesting=2).loss(lockstep, _empty_guide)
    tr = poutine.trace(poutine.condition(m.model, data=values)).get_trace(X)
    log_prior = float(sum(tr.nodes[s]["fn"].log_prob(values[s]) for s in values))
    right = _brute_force_loss(m, values, X) + log_prior
    assert abs(wrong - right) > 1e-3
    ours = TraceEnum_ELBO(max_plate_nesting=1).loss(poutine.condition(m.model, data=values), _empty_guide, X)
    assert ours + log_prior == pytest.approx(right, abs=1e-6)


@pytest.mark.parametrize("prior", ["finite", "ibp"])
def test_approximate_mode(prior):
    g = torch.Generator().manual_seed(4)
    X = _data("bernoulli", 9, g)
    k = 4
    exact = _model("bernoulli", k, prior)
    exact.setup(X)
    values = _random_values(exact, g)

    def loss(m, model="model"):
        m.setup(X)
        fn = poutine.condition(getattr(m, model), data=values)
        elbo = TraceEnum_ELBO(max_plate_nesting=1) if model == "model" else Trace_ELBO()
        return elbo.loss(fn, _empty_guide, X)

    reference = loss(exact)
    for m_size in (k, k + 2):
        assert loss(_model("bernoulli", k, prior, max_set_size=m_size)) == pytest.approx(reference, abs=1e-6)
    # m < K: the sum over the sets of size <= 2 only, a lower bound on the marginal likelihood
    trunc = _model("bernoulli", k, prior, max_set_size=2)
    assert trunc.num_membership_sets == 1 + 4 + 6
    sets = [torch.tensor(s, dtype=F64) for s in itertools.product([0.0, 1.0], repeat=k) if sum(s) <= 2]
    brute = _brute_force_loss(exact, values, X, sets=sets)
    assert loss(trunc) == pytest.approx(brute, abs=1e-6)
    assert loss(trunc, "marginal_model") == pytest.approx(brute, abs=1e-6)
    assert loss(trunc) > reference


def test_renormalized_truncated_prior():
    """renormalize_sets=True: the membership prior restricted to the enumerated sets (a proper mixture)."""
    g = torch.Generator().manual_seed(11)
    X = _data("bernoulli", 9, g)
    k = 4
    m = _model("bernoulli", k, "finite", max_set_size=1, renormalize_sets=True)
    m.setup(X)
    values = _random_values(m, g)
    sets = [torch.tensor(s, dtype=F64) for s in itertools.product([0.0, 1.0], repeat=k) if sum(s) <= 1]
    pi = _pi(m, values)
    log_z = torch.logsumexp(torch.stack([(z * pi.log() + (1 - z) * (1 - pi).log()).sum() for z in sets]), 0)
    expected = _brute_force_loss(m, values, X, sets=sets) + X.shape[0] * float(log_z)
    for model, elbo in (("model", TraceEnum_ELBO(max_plate_nesting=1)), ("marginal_model", Trace_ELBO())):
        loss = elbo.loss(poutine.condition(getattr(m, model), data=values), _empty_guide, X)
        assert loss == pytest.approx(expected, abs=1e-6)
    m.params_ = {f"{s}.loc": v for s, v in values.items()}
    lp = m.log_likelihood(X)
    assert float(lp.exp().sum()) < X.shape[0]  # densities of binary points: probabilities
    # with exact enumeration the option changes nothing
    full = _model("bernoulli", k, "finite", renormalize_sets=True)
    full.setup(X)
    plain = _model("bernoulli", k, "finite")
    plain.setup(X)
    a = Trace_ELBO().loss(poutine.condition(full.marginal_model, data=values), _empty_guide, X)
    b = Trace_ELBO().loss(poutine.condition(plain.marginal_model, data=values), _empty_guide, X)
    assert a == pytest.approx(b, abs=1e-9)


def test_membership_sets_tables():
    z = membership_sets(3)
    assert z.shape == (8, 3)
    assert torch.equal(z[5], torch.tensor([1.0, 0.0, 1.0]))  # bit k is cluster k
    z2 = membership_sets(5, max_set_size=2)
    assert z2.shape == (1 + 5 + 10, 5)
    assert int(z2.sum(-1).max()) == 2 and len({tuple(r.tolist()) for r in z2}) == 16
    with pytest.raises(ValueError, match="too large for exact enumeration"):
        membership_sets(17)
    assert membership_sets(40, max_set_size=2).shape == (1 + 40 + 780, 40)


def test_fused_kernels_match_autograd():
    g = torch.Generator().manual_seed(5)
    stats = torch.randn(37, 6, generator=g, dtype=F64, requires_grad=True)
    eta = torch.randn(16, 6, generator=g, dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(logsumexp_matmul, (stats, eta))
    g_hi = torch.randn(37, 4, generator=g, dtype=F64, requires_grad=True)
    g_lo = torch.randn(37, 8, generator=g, dtype=F64, requires_grad=True)
    c = torch.randn(4, 8, generator=g, dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(logsumexp_outer, (g_hi, g_lo, c))
    # and against the plain formula, with blocks smaller than N (force several blocks)
    big = torch.randn(3000, 4, generator=g, dtype=F64)
    e = torch.randn(1024, 4, generator=g, dtype=F64)
    assert torch.allclose(logsumexp_matmul(big, e), torch.logsumexp(big @ e.T, -1))


def test_reparametrised_priors_against_scipy():
    y = torch.linspace(-6, 4, 11, dtype=F64)
    a, b = 0.3, 2.5
    lb = LogitBeta(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)).log_prob(y)
    v = torch.sigmoid(y).numpy()
    expected = scipy.stats.beta(a, b).logpdf(v) + torch.log(torch.sigmoid(y) * torch.sigmoid(-y)).numpy()
    assert torch.allclose(lb, torch.as_tensor(expected), atol=1e-10)
    lg = LogGamma(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)).log_prob(y)
    expected = scipy.stats.gamma(a, scale=1 / b).logpdf(y.exp().numpy()) + y.numpy()
    assert torch.allclose(lg, torch.as_tensor(expected), atol=1e-10)
    # samples: E[log g] = digamma(a) - log b; with 20000 samples the standard error is sqrt(psi'(a) / 20000) < 0.025
    s = LogGamma(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)).sample((20000,))
    assert float(s.mean()) == pytest.approx(float(torch.digamma(torch.tensor(a))) - math.log(b), abs=0.1)


def test_wishart_prior_by_bartlett_has_the_right_mean():
    """The Bartlett sites induce Lambda ~ Wishart(df, Sigma^-1 / df): E[Lambda] = Sigma^-1 (Monte Carlo)."""
    g = torch.Generator().manual_seed(6)
    X = torch.randn(50, 2, generator=g, dtype=F64) @ torch.tensor([[2.0, 0.0], [0.7, 0.5]], dtype=F64)
    m = _model("normal_full", 1, "finite")
    m.setup(X)
    tr = poutine.trace(m.model).get_trace(None, num_data=1)
    torch.manual_seed(0)
    log_chi2 = tr.nodes["cluster_bartlett_log_chi2"]["fn"].sample((4000,))
    offdiag = tr.nodes["cluster_bartlett_offdiag"]["fn"].sample((4000,))
    tril = m.family._precision_tril(log_chi2, offdiag).squeeze(1)
    prec = tril @ tril.mT
    expected = torch.linalg.inv(m.family.hyper["cov"])
    # Wishart(df=4) entries have relative sd ~ sqrt(2/df) = 0.7, so 4000 samples give ~1.1% standard error
    assert torch.allclose(prec.mean(0), expected, rtol=0.08, atol=0.08 * float(expected.abs().max()))


def test_posteriors_and_infer_discrete_match_brute_force():
    g = torch.Generator().manual_seed(7)
    X = _data("bernoulli", 10, g)
    k = 3
    m = _model("bernoulli", k, "finite")
    m.setup(X)
    values = _random_values(m, g)
    m.params_ = {f"{s}.loc": v for s, v in values.items()}
    pi = _pi(m, values)
    sets = membership_sets(k, dtype=F64)
    log_joint = torch.stack(
        [
            torch.stack(
                [
                    (z * pi.log() + (1 - z) * (1 - pi).log()).sum() + _set_distribution(m, values, z).log_prob(x).sum()
                    for z in sets
                ]
            )
            for x in X
        ]
    )
    post = log_joint.softmax(-1)
    assert torch.allclose(m.membership_probs(X), post @ sets, atol=1e-10)
    assert torch.allclose(m.log_likelihood(X), log_joint.logsumexp(-1), atol=1e-10)
    assert torch.equal(m.map_sets(X), sets[log_joint.argmax(-1)])
    assert torch.equal(m.infer_memberships(X, temperature=0), m.map_sets(X))
    sampled = m.infer_memberships(X, temperature=1)
    assert sampled.shape == (10, k) and bool(((sampled == 0) | (sampled == 1)).all())


def test_compute_marginals_and_sync_after_own_svi_loop():
    g = torch.Generator().manual_seed(9)
    X = _data("bernoulli", 8, g)
    m = _model("bernoulli", 3, "finite")
    m.initialize(X, g)
    pyro.clear_param_store()
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    svi = pyro.infer.SVI(m.model, m.guide, pyro.optim.Adam({"lr": 0.05}), elbo)
    for _ in range(20):
        svi.step(X)
    before = dict(m.params_)
    m.sync_params_from_store()
    store = pyro.get_param_store()
    for key, value in m.params_.items():
        assert torch.equal(value, store[f"{m.name}.{key}"].detach())
    assert any(not torch.equal(before[k], m.params_[k]) for k in before)  # the SVI loop moved them
    # Pyro's compute_marginals rebuilds the membership-set site from logits: its marginal over the
    # sets is the exact posterior P(z_i = s | x_i), whose expectation is membership_probs
    marginals = elbo.compute_marginals(m.model, m.guide, X)
    support = torch.arange(m.num_membership_sets).unsqueeze(-1)
    post = marginals["z"].log_prob(support).exp().T  # (N, S)
    torch.testing.assert_close(post.sum(-1), torch.ones(8, dtype=post.dtype))
    torch.testing.assert_close(post @ membership_sets(3, dtype=post.dtype), m.membership_probs(X))


def test_predictive_and_svi_with_pyro_tools():
    g = torch.Generator().manual_seed(8)
    X = _data("normal", 20, g)
    m = _model("normal", 3, "ibp")
    m.initialize(X, g)
    pyro.set_rng_seed(0)
    svi = pyro.infer.SVI(m.model, m.guide, pyro.optim.Adam({"lr": 0.01}), TraceEnum_ELBO(max_plate_nesting=1))
    losses = [svi.step(X) for _ in range(3)]
    assert all(math.isfinite(v) for v in losses)
    pred = Predictive(m.model, guide=m.guide, num_samples=4)(None, num_data=6)
    assert pred["z"].shape == (4, 6) and pred["x"].shape == (4, 6, 3)
    assert int(pred["z"].max()) < m.num_membership_sets
    # prior predictive (no guide): proper priors can be sampled
    prior = Predictive(m.model, num_samples=2)(None, num_data=5)
    assert prior["x"].shape == (2, 5, 3)
    # vectorised particles: TraceEnum over the sets inside a particle plate
    elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=3, vectorize_particles=True)
    assert math.isfinite(elbo.loss(m.model, m.guide, X))
    assert math.isfinite(Trace_ELBO(num_particles=3, vectorize_particles=True).loss(m.marginal_model, m.guide, X))


def test_refused_family_gives_the_core_message():
    with pytest.raises(NotImplementedError) as ours:
        OverlappingMixtureModel(expfam.Poisson(torch.ones(3)), 2)
    with pytest.raises(NotImplementedError) as core:
        expfam.Poisson(torch.ones(2, 3)).product_along_axis(0)
    assert str(ours.value) == str(core.value)
    with pytest.raises(NotImplementedError, match="not a Binomial"):
        OverlappingMixtureModel(expfam.Binomial, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="too large for exact enumeration"):
        OverlappingMixtureModel("bernoulli", 17)
    with pytest.raises(ValueError, match="num_clusters"):
        OverlappingMixtureModel("bernoulli", 0)
    with pytest.raises(ValueError, match="prior"):
        OverlappingMixtureModel("bernoulli", 2, prior="dp")
    with pytest.raises(ValueError, match="alpha"):
        OverlappingMixtureModel("bernoulli", 2, alpha=-1.0)
    with pytest.raises(ValueError, match="unknown family"):
        OverlappingMixtureModel("poisson_gamma", 2)
    with pytest.raises(TypeError, match="family"):
        OverlappingMixtureModel(3.0, 2)
    assert OverlappingMixtureModel("bernoulli", 40, max_set_size=2).num_membership_sets == 821


def test_sets_leaving_the_natural_parameter_space_are_refused():
    # Beta clusters with shapes < 1: eta(s) = eta_0 + sum_k (eta_k - 1) leaves the space (shapes <= 0)
    X = GENERIC["beta"]().sample((5,))
    m = _model("beta", 2, "finite")
    m.setup(X)
    values = {s: torch.full(shape, -3.0, dtype=F64) for s, shape in m.global_sites().items()}
    for model, elbo in ((m.model, TraceEnum_ELBO(max_plate_nesting=1)), (m.marginal_model, Trace_ELBO())):
        with pytest.raises(ValueError, match="natural parameter space"):
            elbo.loss(poutine.condition(model, data=values), _empty_guide, X)
