"""Bayesian latent-class capture–recapture, after Manrique-Vallier (2016, Biometrics 72:
1246–1254) and his R package LCMCR.

Why: people differ in how likely they are to be documented (a well-known family in a city
is on every list; a displaced family in a village on none). Log-linear models with
pairwise terms absorb some of that, not all. Here each person belongs to one of up to K
hidden classes; within a class, lists capture independently with their own
probabilities λ[k, j]. Class weights follow a truncated stick-breaking (Dirichlet
process) prior, so the data decide how many classes matter.

Model and priors (LCMCR's defaults): λ[k, j] ~ Beta(1, 1); weights π from stick-breaking
with V_k ~ Beta(1, α), V_K = 1; α ~ Gamma(a=0.25, rate b=0.25); p(N) ∝ 1/N.

Gibbs sampler (all chains advance together as numpy arrays; seeded):
1. classes of the recorded people, by history: multinomial on π_k·P(history | k);
2. the number never recorded, n0 ~ NegativeBinomial(n, 1 − p0), p0 = Σ_k π_k Π_j (1 − λ[k, j])
   (data augmentation for the unobserved cell, exact under the 1/N prior);
3. their classes: multinomial(n0, π_k Π_j (1 − λ[k, j]) / p0);
4. λ[k, j] ~ Beta(1 + on list, 1 + not on list) within class k (the unrecorded included);
5. V_k ~ Beta(1 + n_k, α + Σ_{h>k} n_h); 6. α ~ Gamma(a + K − 1, b − Σ_{k<K} log(1 − V_k)).

The estimate is the posterior median of N with the 2.5 % and 97.5 % quantiles, pooled
over chains; R-hat and effective sample size (athar.estimate.diagnostics) come with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from athar.estimate.diagnostics import ESS_OK, RHAT_OK, ess, rhat
from athar.estimate.histories import CaptureHistories
from athar.estimate.messages import Notice, notice
from athar.estimate.settings import LcmcrSettings

TINY = 1e-300


@dataclass
class LcmcrResult:
    lists: tuple[str, ...]
    observed: int
    draws: NDArray[np.int64]  # (chains, samples) of N
    settings: LcmcrSettings
    seed: int
    notices: list[Notice] = field(default_factory=list)

    @property
    def N(self) -> float:
        return float(np.median(self.draws))

    @property
    def ci(self) -> tuple[float, float]:
        low, high = np.quantile(self.draws, [0.025, 0.975])
        return float(low), float(high)

    @property
    def rhat(self) -> float:
        return rhat(self.draws.astype(np.float64))

    @property
    def ess(self) -> float:
        return ess(self.draws.astype(np.float64))

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "lcmcr",
            "lists": list(self.lists),
            "observed": self.observed,
            "N": self.N,
            "unobserved": self.N - self.observed,
            "ci": list(self.ci),
            "mean": float(self.draws.mean()),
            "sd": float(self.draws.std(ddof=1)),
            "diagnostics": {"rhat": self.rhat, "ess": self.ess},
            "settings": {**asdict(self.settings), "seed": self.seed},
        }


def _stick(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weights π_k = V_k Π_{h<k} (1 − V_h) along the last axis."""
    remaining = np.cumprod(1 - v, axis=-1)
    shifted = np.concatenate([np.ones_like(v[..., :1]), remaining[..., :-1]], axis=-1)
    return np.asarray(v * shifted, dtype=np.float64)


def sample(
    histories: CaptureHistories,
    settings: LcmcrSettings | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> LcmcrResult:
    """Run the chains and return the kept draws of N."""
    settings = settings or LcmcrSettings()
    settings.check()
    rng = np.random.default_rng(seed)
    seen = histories.counts > 0
    x = histories.patterns[seen].astype(np.float64)  # (P, J) histories that occur
    counts = histories.counts[seen]  # (P,)
    n = histories.observed
    c, k, j = settings.chains, settings.classes, histories.n_lists

    lam = rng.beta(1.0, 1.0, size=(c, k, j))
    alpha = np.ones(c)
    v = rng.beta(1.0, 1.0, size=(c, k))
    v[:, -1] = 1.0
    kept = np.empty((c, settings.samples), dtype=np.int64)
    step = 0
    report_every = max(1, settings.iterations // 100)
    for iteration in range(settings.iterations):
        pi = _stick(v)
        log_lam, log_miss = np.log(lam + TINY), np.log1p(-lam + TINY)
        # 1. classes of the recorded, by history: (c, P, k)
        loglik = np.matmul(x, (log_lam - log_miss).transpose(0, 2, 1))
        loglik += log_miss.sum(axis=2)[:, None, :]
        weight = np.log(pi + TINY)[:, None, :] + loglik
        weight = np.exp(weight - weight.max(axis=2, keepdims=True))
        weight /= weight.sum(axis=2, keepdims=True)
        by_class = rng.multinomial(counts[None, :], weight)  # (c, P, k)
        # 2.-3. the unrecorded and their classes
        missed = pi * np.exp(log_miss.sum(axis=2))  # (c, k)
        p0 = np.clip(missed.sum(axis=1), 0.0, 1 - 1e-12)
        n0 = rng.negative_binomial(n, 1 - p0)
        hidden = rng.multinomial(n0, missed / np.maximum(missed.sum(axis=1), TINY)[:, None])
        # 4. capture probabilities per class and list
        on = np.matmul(by_class.transpose(0, 2, 1), x)
        class_size = by_class.sum(axis=1) + hidden  # (c, k)
        lam = rng.beta(1.0 + on, 1.0 + class_size[:, :, None] - on)
        # 5.-6. class weights and concentration
        later = np.cumsum(class_size[:, ::-1], axis=1)[:, ::-1] - class_size
        v = rng.beta(1.0 + class_size, alpha[:, None] + later)
        v[:, -1] = 1.0
        v[:, :-1] = np.clip(v[:, :-1], 1e-12, 1 - 1e-12)
        rate = settings.b_alpha - np.log1p(-v[:, :-1]).sum(axis=1)
        alpha = rng.gamma(settings.a_alpha + k - 1, 1.0 / rate)
        if iteration >= settings.burnin and (iteration - settings.burnin + 1) % settings.thin == 0:
            kept[:, step] = n + n0
            step += 1
        if progress is not None and (iteration + 1) % report_every == 0:
            progress(report_every)
    result = LcmcrResult(histories.lists, n, kept, settings, seed)
    result.notices.extend(_diagnose(result))
    return result


def _diagnose(result: LcmcrResult) -> list[Notice]:
    said: list[Notice] = []
    r, e = result.rhat, result.ess
    if not math.isfinite(r) or r > RHAT_OK:
        said.append(
            notice(
                "the sampler's chains disagree (R-hat {rhat}, want below 1.01): run it "
                "longer before using this estimate",
                rhat=f"{r:.3f}",
            )
        )
    if e < ESS_OK:
        said.append(
            notice(
                "the draws are worth only {ess} independent ones (want 400 or more): run "
                "the sampler longer",
                ess=f"{e:.0f}",
            )
        )
    return said
