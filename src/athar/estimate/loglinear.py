"""Log-linear (Poisson GLM) estimates of the number of people no list recorded.

The observed history counts are modelled as Poisson with log-mean linear in the lists
and chosen pairs of lists (statsmodels GLM). The unobserved history (on no list) has only
the intercept, so its expected count is exp(intercept) and N = n + exp(intercept). Its
standard error, as in Rcapture, is sqrt(n0 + n0² Var(intercept)): the variance of the
unseen count itself plus that of its estimate. The interval is the profile-likelihood
interval of athar.estimate.profile, never a Wald interval.

Without --interactions every hierarchical model with up to two-way interactions is fitted
(models pairing two lists that share no one are left out: their interaction has no finite
estimate), ranked by AIC or BIC (AIC = −2 log L + 2p; BIC = −2 log L + p log n, n the number
of people recorded, as in Rcapture's closedpMS), and averaged with Akaike (or BIC) weights.
The averaged standard error is Buckland et al.'s (1997) unconditional one; the averaged
interval is the model-averaged tail-area (MATA) interval of Turek & Fletcher (2012) built on
each model's profile likelihood, so it widens when good models disagree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import statsmodels.api as sm
from numpy.typing import NDArray
from scipy import optimize, stats

from athar.errors import InputError
from athar.estimate.histories import CaptureHistories
from athar.estimate.messages import Notice, notice
from athar.estimate.models import Model, all_models, all_pairs, design, parse_interactions
from athar.estimate.profile import Profile, poisson_fit

Criterion = Literal["aic", "bic"]
LIMIT_FACTOR = 1000.0  # upper ends are searched up to n + 1000 × max(n, n0)
UNSTABLE_FACTOR = 100.0  # N above 100 × n is reported as unstable
BOUNDARY_MU = 1e-7  # a fitted mean this small in an empty cell: the MLE is on the boundary
AVERAGE_MASS = 0.999  # models averaged for the interval: the best, up to this total weight


@dataclass
class ModelFit:
    """One model's estimate and fit."""

    model: Model
    lists: tuple[str, ...]
    observed: int
    N: float
    se: float
    ci: tuple[float, float]
    n_multinomial: float
    deviance: float
    df: int
    aic: float
    bic: float
    converged: bool
    boundary: bool = False
    weight: float = 0.0
    profile: Profile | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.model.name(self.lists)

    @property
    def unobserved(self) -> float:
        return self.N - self.observed

    def cdf(self, big_n: float) -> float:
        assert self.profile is not None
        return self.profile.cdf(big_n)

    def to_json(self) -> dict[str, Any]:
        return {
            "interactions": self.model.labels(self.lists),
            "N": finite(self.N),
            "unobserved": finite(self.unobserved),
            "se": finite(self.se),
            "ci": json_interval(self.ci),
            "deviance": finite(self.deviance),
            "df": self.df,
            "aic": finite(self.aic),
            "bic": finite(self.bic),
            "weight": finite(self.weight),
        }


def json_interval(ci: tuple[float, float]) -> list[float | None]:
    """[low, high]; an end that does not exist (no upper bound found) is null."""
    return [finite(v) for v in ci]


def finite(value: float) -> float | None:
    """A number for JSON: NaN and infinities (which JSON cannot hold) become null."""
    return value if math.isfinite(value) else None


def search_limit(observed: int, n0: float) -> float:
    return observed + LIMIT_FACTOR * max(float(observed), n0 if math.isfinite(n0) else 0.0)


class FitFailed(Exception):
    """A model whose fit gave no finite estimate (left out of a search)."""


def fit_model(histories: CaptureHistories, model: Model) -> ModelFit:
    try:
        fit = _fit_model(histories, model)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        raise FitFailed(str(exc)) from exc
    if not (math.isfinite(fit.N) and math.isfinite(fit.ci[0]) and math.isfinite(fit.se)):
        raise FitFailed("no finite estimate")
    return fit


def _fit_model(histories: CaptureHistories, model: Model) -> ModelFit:
    x = design(histories.patterns, model)
    y = histories.counts.astype(np.float64)
    n = histories.observed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is checked and reported below
        result = sm.GLM(y, x, family=sm.families.Poisson()).fit(maxiter=300, tol=1e-12)
    params = np.asarray(result.params, dtype=np.float64)
    mu = np.asarray(result.mu, dtype=np.float64)
    deviance = float(result.deviance)
    converged = bool(result.converged)
    var0 = float(np.asarray(result.cov_params())[0, 0])
    fitted_x, fitted_y = x, y
    empty = (y == 0) & (mu < BOUNDARY_MU)
    if empty.any():
        # The MLE is on the boundary: some empty cells are fitted as exactly empty and
        # the coefficients that do so run to infinity. Refit without those cells and
        # the columns they alone identified (the extended MLE); estimates of N agree.
        fitted_x, fitted_y, params, deviance, converged, var0 = _boundary_fit(x, y, empty)
        mu = np.exp(np.clip(x[:, _kept(x, empty)] @ params, -700, 700)) * ~empty
    n0 = math.exp(min(params[0], 700.0))
    p = x.shape[1]  # parameters counted as in Rcapture, also on the boundary
    loglik = float(stats.poisson.logpmf(histories.counts, mu).sum())
    aic = -2 * loglik + 2 * p
    profile = Profile(fitted_x, fitted_y, params)
    profile.maximise(n + n0)
    ci = profile.interval(n + n0, search_limit(n, n0))
    return ModelFit(
        model=model,
        lists=histories.lists,
        observed=n,
        N=n + n0,
        se=math.sqrt(n0 + n0 * n0 * max(var0, 0.0)),
        ci=ci,
        n_multinomial=profile.n_max,
        deviance=max(deviance, 0.0),
        df=int(len(y) - p),
        aic=aic,
        bic=aic + (math.log(n) - 2) * p,
        converged=converged,
        boundary=bool(empty.any()),
        profile=profile,
    )


def _kept(x: NDArray[np.float64], empty: NDArray[np.bool_]) -> list[int]:
    """Columns identifiable from the non-empty cells: the intercept, then each column that
    adds to the rank."""
    rows = x[~empty]
    kept = [0]
    for column in range(1, x.shape[1]):
        if np.linalg.matrix_rank(rows[:, [*kept, column]]) == len(kept) + 1:
            kept.append(column)
    return kept


def _boundary_fit(
    x: NDArray[np.float64], y: NDArray[np.float64], empty: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, bool, float]:
    columns = _kept(x, empty)
    xr, yr = x[~empty][:, columns], y[~empty]
    start = np.asarray(np.linalg.lstsq(xr, np.log(yr + 0.5), rcond=None)[0], dtype=np.float64)
    beta, deviance, converged = poisson_fit(xr, yr, start)
    mu = np.exp(xr @ beta)
    var0 = float(np.linalg.pinv((xr.T * mu) @ xr)[0, 0])
    return xr, yr, beta, deviance, converged, var0


@dataclass
class Averaged:
    """The model-averaged estimate."""

    N: float
    se: float
    ci: tuple[float, float]
    members: list[tuple[float, ModelFit]]  # (renormalised weight, fit) used for the interval

    def cdf(self, big_n: float) -> float:
        return sum(w * fit.cdf(big_n) for w, fit in self.members)

    def to_json(self) -> dict[str, Any]:
        return {
            "N": finite(self.N),
            "se": finite(self.se),
            "ci": json_interval(self.ci),
            "models_in_interval": len(self.members),
        }


@dataclass
class LoglinearResult:
    """Every model fitted for one table, best first, and the estimate to report."""

    lists: tuple[str, ...]
    observed: int
    criterion: Criterion
    fits: list[ModelFit]
    averaged: Averaged | None
    notices: list[Notice]

    @property
    def selected(self) -> ModelFit:
        return self.fits[0]

    @property
    def N(self) -> float:
        return self.averaged.N if self.averaged else self.selected.N

    @property
    def ci(self) -> tuple[float, float]:
        return self.averaged.ci if self.averaged else self.selected.ci

    def cdf(self, big_n: float) -> float:
        return self.averaged.cdf(big_n) if self.averaged else self.selected.cdf(big_n)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "loglinear",
            "lists": list(self.lists),
            "observed": self.observed,
            "N": finite(self.N),
            "unobserved": finite(self.N - self.observed),
            "ci": json_interval(self.ci),
            "criterion": self.criterion,
            "selected": self.selected.name,
            "models": [fit.to_json() for fit in self.fits],
            "averaged": self.averaged.to_json() if self.averaged else None,
        }


def estimate(
    histories: CaptureHistories,
    interactions: str | Sequence[tuple[str, str]] | None = None,
    *,
    criterion: Criterion = "aic",
    all_lists: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> LoglinearResult:
    """Fit one model (*interactions* given; "" is independence) or all of them."""
    notices: list[Notice] = []
    empty = [(i, j) for i, j in all_pairs(histories.n_lists) if histories.overlap(i, j) == 0]
    if interactions is not None:
        model = parse_interactions(interactions, histories.lists, all_lists)
        for i, j in model.pairs:
            if (i, j) in empty:
                raise InputError(
                    "no one is on both {first} and {second}, so their interaction cannot "
                    "be estimated",
                    first=histories.lists[i],
                    second=histories.lists[j],
                )
        models = [model]
    else:
        allowed = [p for p in all_pairs(histories.n_lists) if p not in empty]
        models = all_models(histories.n_lists, allowed)
        models = [m for m in models if m.n_params(histories.n_lists) <= 2**histories.n_lists - 1]
        for i, j in empty:
            notices.append(
                notice(
                    "no one is on both {first} and {second}: models with their interaction "
                    "were left out",
                    first=histories.lists[i],
                    second=histories.lists[j],
                )
            )
    fits: list[ModelFit] = []
    failed: list[str] = []
    for model in models:
        try:
            fits.append(fit_model(histories, model))
        except FitFailed:
            failed.append(model.name(histories.lists) or "∅")
        if progress is not None:
            progress(1)
    if not fits:
        raise InputError(
            "no model could be fitted to these data: {models}", models=", ".join(failed)
        )
    if failed:
        notices.append(
            notice(
                "models that could not be fitted were left out: {models}",
                models="; ".join(failed[:10]) + (" …" if len(failed) > 10 else ""),
            )
        )
    _rank(fits, criterion)
    averaged = _average(fits, histories.observed) if interactions is None else None
    notices.extend(_fit_notices(fits, histories.observed))
    return LoglinearResult(histories.lists, histories.observed, criterion, fits, averaged, notices)


def _rank(fits: list[ModelFit], criterion: Criterion) -> None:
    score = {fit.model: (fit.aic if criterion == "aic" else fit.bic) for fit in fits}
    fits.sort(key=lambda fit: (score[fit.model], len(fit.model.pairs), fit.model))
    best = score[fits[0].model]
    raw = np.array([math.exp(-(score[fit.model] - best) / 2) for fit in fits])
    for fit, weight in zip(fits, raw / raw.sum(), strict=True):
        fit.weight = float(weight)


def _average(fits: list[ModelFit], observed: int) -> Averaged:
    weights = np.array([fit.weight for fit in fits])
    values = np.array([fit.N for fit in fits])
    errors = np.array([fit.se for fit in fits])
    mean = float(weights @ values)
    se = float(weights @ np.sqrt(errors**2 + (values - mean) ** 2))
    cumulative = np.cumsum(weights)
    keep = int(np.searchsorted(cumulative, AVERAGE_MASS) + 1)
    chosen = fits[:keep]
    total = sum(fit.weight for fit in chosen)
    members = [(fit.weight / total, fit) for fit in chosen]
    averaged = Averaged(mean, se, (math.nan, math.nan), members)
    averaged.ci = (
        _mata(averaged, [f.ci[0] for f in chosen], 0.025, observed),
        _mata(averaged, [f.ci[1] for f in chosen], 0.975, observed),
    )
    return averaged


def _mata(averaged: Averaged, ends: list[float], level: float, observed: int) -> float:
    """Where the weighted confidence distributions reach *level*: between the smallest
    and the largest of the models' own interval ends."""
    low, high = min(ends), max(ends)
    if low == high:
        return low
    if not math.isfinite(high):
        finite = [e for e in ends if math.isfinite(e)] or [low]
        high = max(finite)
        limit = search_limit(observed, high - observed)
        while averaged.cdf(high) < level:
            if high >= limit:
                return math.inf
            high = min(limit, observed + 2 * (high - observed))
    return float(
        optimize.brentq(lambda v: averaged.cdf(v) - level, low, high, xtol=1e-6, rtol=1e-10)
    )


def _fit_notices(fits: list[ModelFit], observed: int) -> list[Notice]:
    said: list[Notice] = []
    best = fits[0]
    if not best.converged:
        said.append(notice("the fit of model {model} did not converge", model=best.name or "∅"))
    if best.boundary:
        said.append(
            notice(
                "model {model} fits some combinations of lists as empty (its estimate lies "
                "on the boundary); read it with care",
                model=best.name or "∅",
            )
        )
    if best.N / observed > UNSTABLE_FACTOR:
        said.append(
            notice(
                "model {model} puts the total above 100 times the number recorded; the "
                "lists say too little for a stable estimate",
                model=best.name or "∅",
            )
        )
    if not math.isfinite(best.ci[1]):
        said.append(
            notice(
                "the likelihood of model {model} stays high for any large total: its "
                "interval has no upper end",
                model=best.name or "∅",
            )
        )
    return said


def confidence_draws(
    cdf: Callable[[float], float],
    ci: tuple[float, float],
    observed: int,
    rng: np.random.Generator,
    size: int,
) -> NDArray[np.float64]:
    """Draws of N from a confidence distribution (inverse-CDF on a grid of N), to add
    strata up; an infinite draw means the distribution has no finite upper end there."""
    low, high = ci
    start = max((low - observed) / 5, 0.5)
    stop = (high - observed) * 4 if math.isfinite(high) else search_limit(observed, 0.0)
    grid = observed + np.geomspace(start, max(stop, start * 2), 120)
    levels = np.maximum.accumulate(np.array([cdf(float(v)) for v in grid]))
    u = rng.uniform(size=size)
    draws = np.interp(u, levels, grid)
    if levels[-1] < 0.999:
        draws[u > levels[-1]] = math.inf
    return draws
