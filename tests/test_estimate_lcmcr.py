"""The latent-class sampler and its convergence diagnostics. The coverage study over many
simulated populations is in benchmarks/bench_estimate.py; here, one seeded population."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from athar.errors import InputError
from athar.estimate import LcmcrSettings, estimate
from athar.estimate.diagnostics import ess, rhat
from athar.estimate.histories import CaptureHistories
from athar.estimate.lcmcr import sample

SHORT = LcmcrSettings(burnin=1500, samples=300, thin=5)


def simulate(size: int, seed: int) -> CaptureHistories:
    """Two hidden groups: a third easy to record, two thirds hard (heterogeneity that a
    model of independent lists gets wrong)."""
    rng = np.random.default_rng(seed)
    probs = np.array([[0.5, 0.45, 0.6, 0.4, 0.5], [0.08, 0.12, 0.1, 0.15, 0.1]])
    group = rng.choice(2, size=size, p=[0.35, 0.65])
    caught = rng.uniform(size=(size, 5)) < probs[group]
    frequencies: dict[tuple[int, ...], int] = {}
    for row in caught[caught.any(axis=1)]:
        key = tuple(int(v) for v in row)
        frequencies[key] = frequencies.get(key, 0) + 1
    return CaptureHistories.from_mapping([f"L{i}" for i in range(5)], frequencies)


def test_recovers_a_heterogeneous_population() -> None:
    histories = simulate(1500, seed=11)
    result = sample(histories, SHORT, seed=3)
    low, high = result.ci
    assert low < 1500 < high
    assert histories.observed < low
    assert result.rhat < 1.1
    assert result.draws.shape == (4, 300)
    independence = estimate(histories, interactions="").N
    assert independence < low  # the model that ignores heterogeneity undercounts


def test_one_class_matches_the_exact_posterior() -> None:
    """With one class the model is independent lists with Beta(1, 1) priors and
    p(N) ∝ 1/N, whose posterior is known in closed form:
    p(N | data) ∝ (1/N) · N!/(N − n)! · Π_j B(n_j + 1, N − n_j + 1).
    The sampler's quantiles must match it (this checks the data augmentation of the
    unobserved cell and the conjugate updates)."""
    rng = np.random.default_rng(3)
    caught = rng.uniform(size=(800, 4)) < np.array([0.3, 0.2, 0.25, 0.15])
    frequencies: dict[tuple[int, ...], int] = {}
    for row in caught[caught.any(axis=1)]:
        key = tuple(int(v) for v in row)
        frequencies[key] = frequencies.get(key, 0) + 1
    histories = CaptureHistories.from_mapping(list("ABCD"), frequencies)
    n, on_list = histories.observed, histories.list_totals()
    sizes = np.arange(n, 6 * n)
    log_post = (
        -np.log(sizes)
        + special.gammaln(sizes + 1)
        - special.gammaln(sizes - n + 1)
        + sum(special.betaln(k + 1, sizes - k + 1) for k in on_list)
    )
    cdf = np.cumsum(np.exp(log_post - log_post.max()))
    exact = [sizes[np.searchsorted(cdf / cdf[-1], q)] for q in (0.025, 0.5, 0.975)]
    result = sample(histories, LcmcrSettings(classes=1, burnin=300, samples=2500, thin=1), 1)
    drawn = np.quantile(result.draws, [0.025, 0.5, 0.975])
    assert drawn == pytest.approx(exact, abs=6)


def test_seeded_runs_repeat() -> None:
    histories = simulate(400, seed=2)
    quick = LcmcrSettings(burnin=50, samples=20, thin=2)
    first = sample(histories, quick, seed=7).draws
    assert np.array_equal(first, sample(histories, quick, seed=7).draws)
    assert not np.array_equal(first, sample(histories, quick, seed=8).draws)


def test_stratified_total_sums_posterior_draws() -> None:
    text = "A,B,C,D,E,count,city\n" + "".join(
        ",".join(map(str, h)) + f",{c},{city}\n"
        for city, seed in (("حلب", 1), ("حمص", 2))
        for h, c in simulate(500, seed).rows()
    )
    quick = LcmcrSettings(burnin=300, samples=100, thin=2)
    result = estimate(text, method="lcmcr", stratify="city", settings=quick, seed=5)
    assert result.total is not None
    draws = [s.result.draws for s in result.strata]  # type: ignore[union-attr]
    summed = (draws[0] + draws[1]).astype(float)
    assert float(np.median(summed)) == pytest.approx(result.total.N)
    assert result.total.ci == pytest.approx(tuple(np.quantile(summed, [0.025, 0.975])))
    body = result.to_json()
    assert body["method"] == "lcmcr" and [s["stratum"] for s in body["strata"]] == ["حلب", "حمص"]
    assert set(body["strata"][0]["diagnostics"]) == {"rhat", "ess"}
    assert body["strata"][0]["settings"]["seed"] == 5


def test_settings_are_checked() -> None:
    histories = simulate(300, seed=1)
    with pytest.raises(InputError, match="fewer than 2 chains"):
        sample(histories, LcmcrSettings(chains=1))
    with pytest.raises(InputError, match="must be at least 1"):
        sample(histories, LcmcrSettings(thin=0))


def test_rhat_and_ess_on_known_chains() -> None:
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 1000))
    assert rhat(iid) < 1.01
    assert 3000 < ess(iid) < 5000
    apart = iid + np.arange(4)[:, None]
    assert rhat(apart) > 1.5
    phi = 0.9
    ar = np.zeros((4, 4000))
    for t in range(1, 4000):
        ar[:, t] = phi * ar[:, t - 1] + rng.normal(size=4)
    expected = ar.size * (1 - phi) / (1 + phi)
    assert 0.6 * expected < ess(ar) < 1.4 * expected


def test_unconverged_runs_are_flagged() -> None:
    histories = simulate(600, seed=4)
    result = sample(histories, LcmcrSettings(burnin=0, samples=5, thin=1), seed=1)
    assert any("run the sampler longer" in n.text() for n in result.notices)
