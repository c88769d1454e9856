"""The estimate as the CLI and the web ask for it: read, refuse or estimate, add strata up.

Strata (months, governorates) are estimated independently, each with its own model
choice. Their total is the sum of the strata's estimates, with an interval that carries
each stratum's uncertainty: for the latent-class method, quantiles of the sum of the
strata's posterior draws (exact, strata being independent a posteriori); for log-linear
models, quantiles of the sum of draws from each stratum's profile-likelihood confidence
distribution (an approximation, stated in the output), never a sum of interval ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from athar.errors import InputError
from athar.estimate import lcmcr, loglinear
from athar.estimate.histories import CaptureHistories, HistoryTable, load, parse_histories
from athar.estimate.lcmcr import LcmcrResult
from athar.estimate.loglinear import Criterion, LoglinearResult, json_interval
from athar.estimate.messages import Notice, notice
from athar.estimate.models import model_count
from athar.estimate.refusals import check_all
from athar.estimate.settings import LcmcrSettings
from athar.vault.progress import Progress

Method = Literal["loglinear", "lcmcr"]
METHODS: tuple[Method, ...] = ("loglinear", "lcmcr")
TOTAL_DRAWS = 20_000
Result = LoglinearResult | LcmcrResult


@dataclass
class StratumEstimate:
    stratum: str | None
    result: Result

    def to_json(self) -> dict[str, Any]:
        body = self.result.to_json()
        body["notices"] = [n.text() for n in self.result.notices]
        return {"stratum": self.stratum, **body} if self.stratum is not None else body


@dataclass
class Total:
    observed: int
    N: float
    ci: tuple[float, float]
    interval: str  # how the total's interval was made

    def to_json(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "N": self.N,
            "unobserved": self.N - self.observed,
            "ci": json_interval(self.ci),
            "interval": self.interval,
        }


@dataclass
class EstimateResult:
    method: Method
    lists: tuple[str, ...]
    strata: list[StratumEstimate]
    stratify: str | None = None
    total: Total | None = None
    notices: list[Notice] = field(default_factory=list)
    source: str = "histories"
    encoding: str = "utf-8"
    seed: int = 0

    @property
    def observed(self) -> int:
        return self.total.observed if self.total else self.strata[0].result.observed

    @property
    def N(self) -> float:
        return self.total.N if self.total else self.strata[0].result.N

    @property
    def ci(self) -> tuple[float, float]:
        return self.total.ci if self.total else self.strata[0].result.ci

    def all_notices(self) -> list[Notice]:
        said = list(self.notices)
        for stratum in self.strata:
            said.extend(stratum.result.notices)
        return said

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        """The issue's JSON: per-model entries under ``models``, ``selected``, ``observed``
        (distinct people recorded); strata under ``strata`` with the total at top level."""
        head: dict[str, Any] = {"ok": True, "input": self.source, "encoding": self.encoding}
        if self.total is None:
            body = self.strata[0].to_json()
            body.pop("notices", None)
            return {
                **head,
                **body,
                "notices": [n.text(lang) for n in self.all_notices()],
            }
        assert self.total is not None
        return {
            **head,
            "method": self.method,
            "lists": list(self.lists),
            "stratify": self.stratify,
            **self.total.to_json(),
            "strata": [_localised(s, lang) for s in self.strata],
            "notices": [n.text(lang) for n in self.notices],
        }


def _localised(stratum: StratumEstimate, lang: str) -> dict[str, Any]:
    body = stratum.to_json()
    body["notices"] = [n.text(lang) for n in stratum.result.notices]
    return body


def estimate(
    histories: HistoryTable | CaptureHistories | Path | bytes | str,
    *,
    interactions: str | Sequence[tuple[str, str]] | None = None,
    method: Method = "loglinear",
    stratify: str | None = None,
    seed: int = 0,
    criterion: Criterion = "aic",
    from_clusters: bool = False,
    encoding: str | None = None,
    settings: LcmcrSettings | None = None,
    progress: Progress | None = None,
) -> EstimateResult:
    """Estimate the total number of people (recorded or not) from capture histories.

    *histories* is a parsed table, a file path, or the file's bytes/text (a HISTORIES.csv,
    or with *from_clusters* a linkage clusters CSV). *interactions* picks one log-linear
    model ("" for independence); without it every model is fitted and averaged."""
    if method not in METHODS:
        raise InputError("unknown method {name}; use loglinear or lcmcr", name=method)
    if criterion not in ("aic", "bic"):
        raise InputError("unknown criterion {name}; use aic or bic", name=criterion)
    if interactions is not None and method != "loglinear":
        raise InputError("--interactions chooses a log-linear model; it needs --method loglinear")
    table = _table(histories, from_clusters, stratify, encoding)
    tables, notices = check_all(table.strata, table.stratify)
    if progress is not None:
        progress.start(_work(tables, method, interactions, settings))
    advance = progress.advance if progress is not None else None
    strata: list[StratumEstimate] = []
    for index, stratum in enumerate(tables):
        result: Result
        if method == "loglinear":
            try:
                result = loglinear.estimate(
                    stratum,
                    interactions,
                    criterion=criterion,
                    all_lists=table.lists,
                    progress=advance,
                )
            except InputError as error:
                raise _in_stratum(error, stratum, table.stratify) from None
        else:
            result = lcmcr.sample(stratum, settings, _stratum_seed(seed, index), advance)
            result.seed = seed
        strata.append(StratumEstimate(stratum.stratum, result))
    total = _total(strata, method, seed) if table.stratify is not None else None
    if total is not None and not math.isfinite(total.ci[1]):
        notices.append(notice("the total's interval has no upper end: a stratum's has none"))
    return EstimateResult(
        method=method,
        lists=table.lists,
        strata=strata,
        stratify=table.stratify,
        total=total,
        notices=notices,
        source=table.source,
        encoding=table.encoding,
        seed=seed,
    )


def _table(
    histories: HistoryTable | CaptureHistories | Path | bytes | str,
    from_clusters: bool,
    stratify: str | None,
    encoding: str | None,
) -> HistoryTable:
    if isinstance(histories, HistoryTable):
        if stratify is not None and stratify != histories.stratify:
            raise InputError("the table was read without the column {name}", name=stratify)
        return histories
    if isinstance(histories, CaptureHistories):
        return HistoryTable(histories.lists, (histories,))
    if isinstance(histories, Path):
        return load(histories, from_clusters=from_clusters, stratify=stratify, encoding=encoding)
    if from_clusters:
        from athar.estimate.histories import parse_clusters

        return parse_clusters(histories, stratify=stratify, encoding=encoding)
    return parse_histories(histories, stratify=stratify, encoding=encoding)


def _work(
    tables: list[CaptureHistories],
    method: Method,
    interactions: str | Sequence[tuple[str, str]] | None,
    settings: LcmcrSettings | None,
) -> int:
    if method == "lcmcr":
        iterations = (settings or LcmcrSettings()).iterations
        return len(tables) * (iterations - iterations % max(1, iterations // 100))
    if interactions is not None:
        return len(tables)
    return sum(model_count(t.n_lists) for t in tables)


def _stratum_seed(seed: int, index: int) -> int:
    """Independent, reproducible streams per stratum from one user seed."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])


def _in_stratum(error: InputError, stratum: CaptureHistories, stratify: str | None) -> InputError:
    if stratum.stratum is None:
        return error
    label = f"{stratify}={stratum.stratum}" if stratify else stratum.stratum
    located = error.at(label)
    assert isinstance(located, InputError)
    return located


def _total(strata: list[StratumEstimate], method: Method, seed: int) -> Total:
    observed = sum(s.result.observed for s in strata)
    if method == "lcmcr":
        draws = sum(
            (
                s.result.draws.astype(np.float64)
                for s in strata
                if isinstance(s.result, LcmcrResult)
            ),
            start=np.zeros(1),
        )
        low, mid, high = np.quantile(draws, [0.025, 0.5, 0.975])
        return Total(observed, float(mid), (float(low), float(high)), "posterior draws summed")
    rng = np.random.default_rng([seed, len(strata), 1])
    total_draws = np.zeros(TOTAL_DRAWS)
    point = 0.0
    for s in strata:
        result = s.result
        assert isinstance(result, LoglinearResult)
        point += result.N
        total_draws += loglinear.confidence_draws(
            result.cdf, result.ci, result.observed, rng, TOTAL_DRAWS
        )
    low, high = np.quantile(total_draws, [0.025, 0.975])
    return Total(
        observed,
        point,
        (float(low), float(high)),
        "profile-likelihood confidence distributions summed (approximate)",
    )
