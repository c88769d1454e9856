"""Multiple systems estimation: how many people no list recorded, with honest uncertainty.

``estimate()`` (athar.estimate.service) is the entry point the CLI and the web call; the
modules each do one job: histories (reading), refusals (when not to estimate), models and
loglinear/profile (Poisson log-linear models with profile-likelihood intervals), lcmcr and
diagnostics (the Bayesian latent-class estimator and its convergence checks), report
(tables, assumptions, plot), settings (the sampler's settings).

Names are loaded on first use: numpy, scipy and statsmodels take about a second to
import, which every ``athar`` command would otherwise pay at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from athar.estimate.histories import (
        CaptureHistories,
        HistoryTable,
        load,
        parse_clusters,
        parse_histories,
    )
    from athar.estimate.lcmcr import LcmcrResult
    from athar.estimate.loglinear import LoglinearResult, ModelFit
    from athar.estimate.service import METHODS, EstimateResult, Method, estimate
    from athar.estimate.settings import LcmcrSettings

_HOME = {
    "CaptureHistories": "histories",
    "HistoryTable": "histories",
    "load": "histories",
    "parse_clusters": "histories",
    "parse_histories": "histories",
    "LcmcrResult": "lcmcr",
    "LcmcrSettings": "settings",
    "LoglinearResult": "loglinear",
    "ModelFit": "loglinear",
    "METHODS": "service",
    "EstimateResult": "service",
    "Method": "service",
    "estimate": "service",
}

__all__ = [
    "METHODS",
    "CaptureHistories",
    "EstimateResult",
    "HistoryTable",
    "LcmcrResult",
    "LcmcrSettings",
    "LoglinearResult",
    "Method",
    "ModelFit",
    "estimate",
    "load",
    "parse_clusters",
    "parse_histories",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"athar.estimate.{_HOME[name]}"), name)
    raise AttributeError(f"module 'athar.estimate' has no attribute {name!r}")
