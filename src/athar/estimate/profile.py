"""Profile likelihood for the population size N of one log-linear model.

For a trial N, the unobserved cell is set to N − n and the Poisson model is refitted with
that cell added (it has only the intercept). The multinomial log-likelihood of N is the
negative half deviance of that fit plus ``log(n0^n0 · N! / (N^N · n0!))`` (Cormack 1992;
the same construction as Rcapture's closedpCI, with exact log-gamma instead of Stirling).
The 95% interval is every N whose log-likelihood is within χ²₁(0.95)/2 of the maximum —
not a Wald interval, which is symmetric and can fall below the number already recorded.

Each trial N needs a refit, so the fits here are a small Newton solver in numpy that
starts from the previous solution (a handful of iterations each) rather than statsmodels
(milliseconds of set-up per call); tests check both give the same deviance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special, stats

CHI2_95_HALF = float(stats.chi2.ppf(0.95, 1)) / 2
NEWTON_MAX = 200
EDGE = 1e-4  # N = n + EDGE stands for N = n (ℓ is continuous there; exactly n diverges)


def poisson_fit(
    x: NDArray[np.float64], y: NDArray[np.float64], start: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float, bool]:
    """Maximum-likelihood coefficients of a log-link Poisson GLM, its deviance, and whether
    it converged (Newton–Raphson with step halving, from *start*)."""
    beta = start.copy()
    deviance = _deviance(y, _mean(x, beta))
    for _ in range(NEWTON_MAX):
        mu = _mean(x, beta)
        gradient = x.T @ (y - mu)
        hessian = (x.T * mu) @ x
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        scale = 1.0
        while True:
            trial = beta + scale * step
            new = _deviance(y, _mean(x, trial))
            if new <= deviance + 1e-12 * max(1.0, deviance) or scale < 1e-12:
                break
            scale /= 2
        if not math.isfinite(new) or new > deviance + 1e-9 * max(1.0, deviance):
            return beta, deviance, False
        beta = trial
        done = (
            abs(deviance - new) <= 1e-11 * max(1.0, new)
            and float(np.max(np.abs(scale * step))) < 1e-7
        )
        deviance = new
        if done:
            return beta, deviance, True
    return beta, deviance, False


def _mean(x: NDArray[np.float64], beta: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.exp(np.clip(x @ beta, -700.0, 700.0))


def _deviance(y: NDArray[np.float64], mu: NDArray[np.float64]) -> float:
    return float(2 * np.sum(special.xlogy(y, y) - special.xlogy(y, mu) - (y - mu)))


@dataclass
class Profile:
    """ℓ(N) for one model; caches evaluations and warm starts."""

    x: NDArray[np.float64]  # design of the observable cells
    y: NDArray[np.float64]  # their counts
    start: NDArray[np.float64]  # coefficients of the Poisson fit
    _xa: NDArray[np.float64] = field(init=False, repr=False)
    _beta: NDArray[np.float64] = field(init=False, repr=False)
    _cache: dict[float, float] = field(init=False, repr=False, default_factory=dict)
    n: float = field(init=False)
    n_max: float = field(init=False, default=math.nan)
    l_max: float = field(init=False, default=math.nan)

    def __post_init__(self) -> None:
        zero_row = np.zeros((1, self.x.shape[1]))
        zero_row[0, 0] = 1.0
        self._xa = np.vstack([self.x, zero_row])
        self._beta = self.start.copy()
        self.n = float(self.y.sum())

    def loglik(self, big_n: float) -> float:
        if big_n in self._cache:
            return self._cache[big_n]
        n0 = big_n - self.n
        ya = np.append(self.y, n0)
        beta, deviance, converged = poisson_fit(self._xa, ya, self._beta)
        if not converged or not math.isfinite(deviance):
            restart = self.start.copy()  # the Poisson fit, its unseen cell moved to n0
            restart[0] = math.log(max(n0, 1e-12))
            beta, deviance, converged = poisson_fit(self._xa, ya, restart)
        if math.isfinite(deviance):
            self._beta = beta
        ct = (
            special.xlogy(n0, n0)
            + special.gammaln(big_n + 1)
            - special.xlogy(big_n, big_n)
            - special.gammaln(n0 + 1)
        )
        value = float(-deviance / 2 + ct)
        self._cache[big_n] = value
        return value

    def maximise(self, n_poisson: float) -> tuple[float, float]:
        """The multinomial maximum-likelihood N and ℓ there. It usually lies a little
        below the Poisson estimate; when ℓ falls from N = n on, the maximum is n itself."""
        n0 = max(n_poisson - self.n, 1e-3)
        best = (math.nan, -math.inf)
        for low, high in (
            (self.n + 0.5 * n0, n_poisson + 0.05 * n0 + 1),
            (self.n + EDGE, self.n + 3 * n0 + 10),
        ):
            found = optimize.minimize_scalar(
                lambda value: -self.loglik(value),
                bounds=(low, high),
                method="bounded",
                options={"xatol": 1e-9 * high},
            )
            best = max(best, (float(found.x), -float(found.fun)), key=lambda b: b[1])
            margin = 1e-3 * (high - low)
            if low + margin < found.x < high - margin:
                break
        edge = self.n + EDGE
        if self.loglik(edge) > best[1]:
            best = (edge, self.loglik(edge))
        self.n_max, self.l_max = best
        return best

    def interval(self, n_poisson: float, limit: float) -> tuple[float, float]:
        """The 95% profile-likelihood interval; its upper end is infinite when ℓ does not
        fall far enough below its maximum before *limit*."""
        if math.isnan(self.n_max):
            self.maximise(n_poisson)
        return self.bound(CHI2_95_HALF, lower=True, limit=limit), self.bound(
            CHI2_95_HALF, lower=False, limit=limit
        )

    def bound(self, drop: float, *, lower: bool, limit: float) -> float:
        target = self.l_max - drop

        def gap(value: float) -> float:
            return self.loglik(value) - target

        if lower:
            edge = self.n + EDGE
            if gap(edge) >= 0:
                return self.n
            return float(optimize.brentq(gap, edge, self.n_max, xtol=1e-6, rtol=1e-10))
        low = self.n_max
        high = self.n_max + max(self.n_max - self.n, 1.0)
        while gap(high) > 0:
            if high >= limit:
                return math.inf
            low, high = high, min(limit, self.n + 2 * (high - self.n))
        return float(optimize.brentq(gap, low, high, xtol=1e-6, rtol=1e-10))

    def cdf(self, big_n: float) -> float:
        """The confidence distribution Φ(signed root of 2(ℓmax − ℓ(N))): 0.025 and 0.975
        at the interval's ends; averaged over models it gives the MATA interval."""
        if big_n <= self.n:
            return 0.0
        drop = max(0.0, self.l_max - self.loglik(big_n))
        root = math.sqrt(2 * drop)
        return float(stats.norm.cdf(root if big_n >= self.n_max else -root))
