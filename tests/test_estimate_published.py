"""Log-linear estimates reproduce figures printed in the capture–recapture literature, to
the printed precision (data and sources: tests/data/estimate/published.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm

from athar.estimate import parse_histories
from athar.estimate.histories import CaptureHistories
from athar.estimate.loglinear import estimate, fit_model
from athar.estimate.models import design, parse_interactions
from athar.estimate.profile import poisson_fit

DATA = Path(__file__).parent / "data" / "estimate" / "published.json"
PUBLISHED: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))["datasets"]
CASES = [
    pytest.param(name, entry, id=f"{name}:{entry['interactions'] or 'independence'}")
    for name, dataset in PUBLISHED.items()
    for entry in dataset["published"]
]


def as_csv(dataset: dict[str, Any]) -> str:
    """The data set as a HISTORIES.csv, so the reader is part of every check."""
    lines = [",".join([*dataset["lists"], "count"])]
    lines += [",".join([*history, str(count)]) for history, count in dataset["histories"].items()]
    return "\n".join(lines) + "\n"


def table(name: str) -> CaptureHistories:
    parsed = parse_histories(as_csv(PUBLISHED[name]))
    assert len(parsed.strata) == 1
    return parsed.strata[0]


@pytest.mark.parametrize(("name", "entry"), CASES)
def test_matches_published(name: str, entry: dict[str, Any]) -> None:
    histories = table(name)
    fit = estimate(histories, entry["interactions"]).selected
    digits = entry["digits"]
    assert fit.df == entry["df"]
    for key in ("N", "se", "deviance"):
        if key in entry:
            assert round(getattr(fit, key), digits[key]) == entry[key], key
    if "ci" in entry:
        assert [round(v, digits["ci"]) for v in fit.ci] == entry["ci"]
    if "ci_low" in entry:
        assert round(fit.ci[0], digits["ci"]) == entry["ci_low"]


def test_observed_counts() -> None:
    assert table("diabetes").observed == 2069
    assert table("darroch_r3").observed == 414
    assert table("cormack_4").observed == 215


@pytest.mark.parametrize("name", ["diabetes", "cormack_3"])
def test_profile_solver_agrees_with_statsmodels(name: str) -> None:
    """The numpy Newton solver used for the profile gives statsmodels' fit."""
    histories = table(name)
    model = parse_interactions("c1:c2,c2:c3", histories.lists)
    x = design(histories.patterns, model)
    y = histories.counts.astype(float)
    reference = sm.GLM(y, x, family=sm.families.Poisson()).fit(tol=1e-12)
    start = np.zeros(x.shape[1])
    start[0] = np.log(y.mean())
    beta, deviance, converged = poisson_fit(x, y, start)
    assert converged
    assert deviance == pytest.approx(reference.deviance, rel=1e-9, abs=1e-9)
    assert beta == pytest.approx(reference.params, rel=1e-6, abs=1e-8)


def test_profile_interval_is_where_likelihood_drops_by_chi2() -> None:
    """The interval's ends are where ℓ is 1.92 below its maximum, and ℓ is higher inside."""
    histories = table("diabetes")
    fit = fit_model(histories, parse_interactions("c1:c3,c2:c4,c3:c4", histories.lists))
    profile = fit.profile
    assert profile is not None
    low, high = fit.ci
    assert profile.l_max - profile.loglik(low) == pytest.approx(1.920729, abs=1e-4)
    assert profile.l_max - profile.loglik(high) == pytest.approx(1.920729, abs=1e-4)
    assert profile.loglik(fit.n_multinomial) >= profile.loglik((low + high) / 2)
    assert low < fit.n_multinomial < fit.N < high
    assert fit.cdf(low) == pytest.approx(0.025, abs=1e-4)
    assert fit.cdf(high) == pytest.approx(0.975, abs=1e-4)


def test_model_search_ranks_and_averages() -> None:
    result = estimate(table("diabetes"))
    assert len(result.fits) == 64  # every set of pairs over 4 lists
    aics = [f.aic for f in result.fits]
    assert aics == sorted(aics)
    assert sum(f.weight for f in result.fits) == pytest.approx(1.0)
    assert result.selected.name == "c1:c2,c1:c3,c2:c3,c2:c4,c3:c4"  # Bruno et al.'s model
    assert result.averaged is not None
    low, high = result.averaged.ci
    assert low < result.averaged.N < high
    by_bic = estimate(table("diabetes"), criterion="bic")
    bics = [f.bic for f in by_bic.fits]
    assert bics == sorted(bics)
    bruno = next(f for f in result.fits if f.name == "c1:c2,c1:c3,c2:c3,c2:c4,c3:c4")
    assert bruno.bic == pytest.approx(bruno.aic + (math.log(2069) - 2) * 10)


def test_boundary_fit_is_stable() -> None:
    """Cormack's 4-list data have empty cells that push some models to the boundary;
    their profile likelihood must not depend on the order it is evaluated in."""
    histories = table("cormack_4")
    fit = fit_model(histories, parse_interactions("WCC:MOSH,death:WCC", histories.lists))
    assert fit.boundary
    assert fit.profile is not None
    grid = [215.01, 230.0, 215.5, 260.0, 216.0]
    first = [fit.profile.loglik(v) for v in grid]
    second = [fit.profile.loglik(v) for v in reversed(grid)][::-1]
    assert first == pytest.approx(second, abs=1e-8)
    assert fit.ci[0] == 215.0  # the interval reaches the number recorded
