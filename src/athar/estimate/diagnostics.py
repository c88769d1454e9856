"""Convergence diagnostics for MCMC draws: rank-normalised split R-hat and effective
sample size (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, the rules Stan uses).

A Gibbs sampler always returns numbers; these say whether they can be trusted. R-hat near
1 (below 1.01) means the chains, started apart, agree with each other and with their own
halves; the effective sample size says how many independent draws the correlated draws
are worth (at least 100 per chain is the usual floor for the interval's ends).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats

RHAT_OK = 1.01
ESS_OK = 400


def _split(draws: NDArray[np.float64]) -> NDArray[np.float64]:
    """(chains, draws) → (2·chains, draws/2): each chain's halves as separate chains."""
    half = draws.shape[1] // 2
    return np.vstack([draws[:, :half], draws[:, draws.shape[1] - half :]])


def _rank_normalise(draws: NDArray[np.float64]) -> NDArray[np.float64]:
    ranks = stats.rankdata(draws, method="average").reshape(draws.shape)
    return np.asarray(stats.norm.ppf((ranks - 0.375) / (draws.size + 0.25)), dtype=np.float64)


def _rhat(chains: NDArray[np.float64]) -> float:
    n = chains.shape[1]
    means = chains.mean(axis=1)
    within = float(chains.var(axis=1, ddof=1).mean())
    between = n * float(means.var(ddof=1))
    if within <= 0:
        return 1.0 if between <= 0 else math.inf
    return math.sqrt(((n - 1) / n * within + between / n) / within)


def rhat(draws: NDArray[np.float64]) -> float:
    """Rank-normalised split R-hat of (chains, draws): the larger of the bulk and the
    folded (tail) versions."""
    split = _split(np.asarray(draws, dtype=np.float64))
    bulk = _rhat(_rank_normalise(split))
    folded = _rhat(_rank_normalise(np.abs(split - np.median(split))))
    return max(bulk, folded)


def _autocovariance(chain: NDArray[np.float64]) -> NDArray[np.float64]:
    n = chain.size
    centred = chain - chain.mean()
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    acov = np.fft.irfft(spectrum * np.conjugate(spectrum), size)[:n] / n
    return np.asarray(acov, dtype=np.float64)


def ess(draws: NDArray[np.float64]) -> float:
    """Bulk effective sample size of (chains, draws), rank-normalised and split, with
    Geyer's initial monotone sequence."""
    chains = _rank_normalise(_split(np.asarray(draws, dtype=np.float64)))
    m, n = chains.shape
    if n < 4:
        return float(m * n)
    acov = np.array([_autocovariance(c) for c in chains])
    chain_var = acov[:, 0] * n / (n - 1)
    within = float(chain_var.mean())
    var_plus = within * (n - 1) / n + float(chains.mean(axis=1).var(ddof=1))
    if var_plus <= 0:
        return float(m * n)
    rho = 1 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    tau = -1.0
    previous = math.inf
    for t in range(0, n - 1, 2):
        pair = float(rho[t] + rho[t + 1])
        if pair < 0:
            break
        pair = min(pair, previous)  # the monotone part of Geyer's sequence
        previous = pair
        tau += 2 * pair
    return float(m * n / max(tau, 1.0 / math.log10(m * n + 10)))
