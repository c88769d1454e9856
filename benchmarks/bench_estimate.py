"""Estimation: agreement with published figures, coverage of the latent-class interval on
simulated populations of known size, and run times.

1. Validation. Every figure in tests/data/estimate/published.json (log-linear estimates,
   standard errors, deviances, degrees of freedom and profile-likelihood intervals printed
   in Bruno et al. 1994 / Rivest 2011, Darroch et al. 1993 and Cormack, Chang & Smith 2000,
   as reproduced by Rcapture) is recomputed and compared at the printed precision.
2. Coverage. Populations of known size N are simulated with heterogeneous capture: each
   person belongs to a hidden group that lists record with different probabilities
   ("classes": two groups, the latent-class model's own form) or has a capture propensity
   drawn from a normal distribution on the logit scale ("continuous": outside the model).
   The latent-class sampler runs with its default settings on each; we count how often its
   95% credible interval covers N, and report R-hat and effective sample sizes. The
   log-linear independence model (and, on a few populations, the full model search) is
   run on the same data for comparison.
3. Timing. The full log-linear model search over 5 lists (1,024 models, each with its
   profile-likelihood interval) on Madigan & York's (1997) five-list data, the 4-list search
   on the diabetes data, and the latent-class sampler with default settings.

    python benchmarks/bench_estimate.py [--sims 100] [--continuous-sims 50]
                                        [--loglinear-sims 10] [--workers 2] [--doc]

Progress goes to stderr, one JSON document to stdout; with --doc a markdown section for
docs/benchmarks.md is printed instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from athar.estimate import LcmcrSettings, estimate, parse_histories
from athar.estimate.histories import CaptureHistories
from athar.estimate.lcmcr import sample
from athar.estimate.loglinear import estimate as loglinear_estimate
from benchcommon import REPO, emit, log

PUBLISHED = REPO / "tests" / "data" / "estimate" / "published.json"
TRUE_N = 2000
# Madigan & York (1997), five lists; counts in R's array order (first list varies fastest),
# as printed in the dga package's README. Used for timing only (no printed estimate).
MADIGAN_YORK = [0, 27, 37, 19, 4, 4, 1, 1, 97, 22, 37, 25, 2, 1, 3, 5, 83, 36, 34, 18, 3, 5,
                0, 2, 30, 5, 23, 8, 0, 3, 0, 2]  # fmt: skip
CLASS_PROBS = np.array([[0.5, 0.45, 0.6, 0.4, 0.5], [0.08, 0.12, 0.1, 0.15, 0.1]])
CLASS_WEIGHTS = [0.3, 0.7]
LIST_EFFECTS = np.array([-1.6, -1.2, -1.0, -1.4, -1.8])  # logits, "continuous" scenario


def histories_from(caught: np.ndarray) -> CaptureHistories:
    frequencies: dict[tuple[int, ...], int] = {}
    for row in caught[caught.any(axis=1)]:
        key = tuple(int(v) for v in row)
        frequencies[key] = frequencies.get(key, 0) + 1
    return CaptureHistories.from_mapping([f"L{j + 1}" for j in range(caught.shape[1])], frequencies)


def simulate(scenario: str, seed: int) -> CaptureHistories:
    rng = np.random.default_rng([20170, seed])
    if scenario == "classes":
        group = rng.choice(len(CLASS_WEIGHTS), size=TRUE_N, p=CLASS_WEIGHTS)
        probs = CLASS_PROBS[group]
    else:
        propensity = rng.normal(0.0, 1.0, size=(TRUE_N, 1))
        probs = 1 / (1 + np.exp(-(LIST_EFFECTS[None, :] + propensity)))
    return histories_from(rng.uniform(size=probs.shape) < probs)


def one_simulation(job: tuple[str, int, bool]) -> dict[str, Any]:
    scenario, seed, with_search = job
    histories = simulate(scenario, seed)
    start = time.perf_counter()
    result = sample(histories, LcmcrSettings(), seed=seed)
    seconds = time.perf_counter() - start
    low, high = result.ci
    independence = loglinear_estimate(histories, "")
    row: dict[str, Any] = {
        "scenario": scenario,
        "seed": seed,
        "observed": histories.observed,
        "lcmcr": {
            "N": result.N,
            "ci": [low, high],
            "covered": low <= TRUE_N <= high,
            "rhat": result.rhat,
            "ess": result.ess,
            "seconds": seconds,
        },
        "independence": _covers(independence.N, independence.ci),
    }
    if with_search:
        search = loglinear_estimate(histories)
        row["averaged"] = _covers(search.N, search.ci)
        row["selected"] = _covers(search.selected.N, search.selected.ci)
    return row


def _covers(n: float, ci: tuple[float, float]) -> dict[str, Any]:
    return {"N": n, "ci": list(ci), "covered": ci[0] <= TRUE_N <= ci[1]}


def coverage(scenario: str, sims: int, search_sims: int, workers: int) -> dict[str, Any]:
    jobs = [(scenario, seed, seed < search_sims) for seed in range(sims)]
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for row in pool.map(one_simulation, jobs):
            rows.append(row)
            if len(rows) % 10 == 0:
                log(f"{scenario}: {len(rows)}/{sims} simulations")
    lc = [r["lcmcr"] for r in rows]
    summary: dict[str, Any] = {
        "scenario": scenario,
        "true_N": TRUE_N,
        "simulations": sims,
        "observed_mean": float(np.mean([r["observed"] for r in rows])),
        "lcmcr_coverage": float(np.mean([r["covered"] for r in lc])),
        "lcmcr_median_of_medians": float(np.median([r["N"] for r in lc])),
        "lcmcr_mean_width": float(np.mean([r["ci"][1] - r["ci"][0] for r in lc])),
        "lcmcr_rhat_max": float(max(r["rhat"] for r in lc)),
        "lcmcr_rhat_over_1_01": int(sum(r["rhat"] > 1.01 for r in lc)),
        "lcmcr_ess_min": float(min(r["ess"] for r in lc)),
        "lcmcr_seconds_mean": float(np.mean([r["seconds"] for r in lc])),
        "independence_coverage": float(np.mean([r["independence"]["covered"] for r in rows])),
        "independence_median": float(np.median([r["independence"]["N"] for r in rows])),
    }
    searched = [r for r in rows if "averaged" in r]
    if searched:
        summary["search_simulations"] = len(searched)
        summary["averaged_coverage"] = float(np.mean([r["averaged"]["covered"] for r in searched]))
        summary["averaged_median"] = float(np.median([r["averaged"]["N"] for r in searched]))
        summary["selected_coverage"] = float(np.mean([r["selected"]["covered"] for r in searched]))
    summary["runs"] = rows
    return summary


def validation() -> list[dict[str, Any]]:
    data = json.loads(PUBLISHED.read_text(encoding="utf-8"))["datasets"]
    rows: list[dict[str, Any]] = []
    for name, dataset in data.items():
        lines = [",".join([*dataset["lists"], "count"])]
        lines += [",".join([*h, str(c)]) for h, c in dataset["histories"].items()]
        histories = parse_histories("\n".join(lines) + "\n").strata[0]
        for entry in dataset["published"]:
            fit = loglinear_estimate(histories, entry["interactions"]).selected
            ours = {
                "N": fit.N,
                "se": fit.se,
                "deviance": fit.deviance,
                "df": fit.df,
                "ci_low": fit.ci[0],
                "ci_high": fit.ci[1],
            }
            printed = {k: entry[k] for k in ("N", "se", "deviance", "df") if k in entry}
            if "ci" in entry:
                printed["ci_low"], printed["ci_high"] = entry["ci"]
            if "ci_low" in entry:
                printed["ci_low"] = entry["ci_low"]
            for key, value in printed.items():
                digits = entry["digits"].get("ci" if key.startswith("ci") else key, 0)
                rows.append(
                    {
                        "dataset": name,
                        "model": entry["interactions"] or "independence",
                        "quantity": key,
                        "printed": value,
                        "ours": ours[key],
                        "match": round(ours[key], digits) == value,
                    }
                )
    return rows


def timed(label: str, fn: Callable[[], Any], repeats: int = 3) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    load = os.getloadavg()[0]
    log(f"{label}: best {min(times):.2f} s (load average {load:.1f})")
    return {
        "label": label,
        "best_seconds": min(times),
        "median_seconds": float(np.median(times)),
        "load_average": load,
    }


def madigan_york() -> CaptureHistories:
    frequencies = {}
    for index, count in enumerate(MADIGAN_YORK):
        history = tuple((index >> j) & 1 for j in range(5))
        if any(history):
            frequencies[history] = count
    return CaptureHistories.from_mapping(["A", "B", "C", "D", "E"], frequencies)


def timings() -> list[dict[str, Any]]:
    data = json.loads(PUBLISHED.read_text(encoding="utf-8"))["datasets"]["diabetes"]
    diabetes = CaptureHistories.from_mapping(
        data["lists"], {tuple(int(b) for b in h): c for h, c in data["histories"].items()}
    )
    five = madigan_york()
    simulated = simulate("classes", 999)
    search = loglinear_estimate(five)
    log(
        f"Madigan-York: n={five.observed}, selected {search.selected.name or 'independence'}, "
        f"N={search.N:.1f}, ci={search.ci}"
    )
    return [
        timed("log-linear search, 4 lists (64 models), diabetes", lambda: estimate(diabetes)),
        timed(
            "log-linear search, 5 lists (1,024 models), Madigan-York",
            lambda: estimate(five),
            repeats=2,
        ),
        timed("log-linear, one model, 5 lists", lambda: estimate(five, interactions="A:B")),
        timed(
            "lcmcr, default settings, Madigan-York (5 lists)",
            lambda: estimate(five, method="lcmcr"),
            repeats=2,
        ),
        timed(
            "lcmcr, default settings, simulated 5 lists (N=2000)",
            lambda: estimate(simulated, method="lcmcr"),
            repeats=2,
        ),
    ]


def _below(summary: dict[str, Any]) -> str:
    misses = [r for r in summary["runs"] if not r["lcmcr"]["covered"]]
    below = sum(r["lcmcr"]["ci"][1] < TRUE_N for r in misses)
    return f"{below} of {len(misses)}"


def render(result: dict[str, Any]) -> str:
    out = ["## Estimation (multiple systems estimation)", ""]
    out.append(
        f"Run {result['date']} on {result['machine']}; numpy {result['versions']['numpy']}, "
        f"scipy {result['versions']['scipy']}, statsmodels "
        f"{result['versions']['statsmodels']}. `python benchmarks/bench_estimate.py --doc`."
    )
    out += [
        "",
        "### Published figures (log-linear models)",
        "",
        "| data | model | quantity | printed | Athar | agrees |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["validation"]:
        ours = r["ours"] if isinstance(r["ours"], int) else f"{r['ours']:.4f}"
        out.append(
            f"| {r['dataset']} | {r['model']} | {r['quantity']} | {r['printed']} | "
            f"{ours} | {'yes' if r['match'] else '**no**'} |"
        )
    agree = sum(r["match"] for r in result["validation"])
    out += [
        "",
        f"{agree} of {len(result['validation'])} printed figures reproduced at the "
        "printed precision.",
        "",
        "### Coverage on simulated populations (true N = 2,000, 5 lists)",
        "",
        "| scenario | sims | mean recorded | latent-class 95% coverage | median estimate | "
        "mean width | misses below N | R-hat > 1.01 | min ESS | independence coverage | "
        "model-averaged coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["coverage"]:
        averaged = (
            f"{c['averaged_coverage']:.0%} of {c['search_simulations']}"
            if "averaged_coverage" in c
            else "—"
        )
        out.append(
            f"| {c['scenario']} | {c['simulations']} | {c['observed_mean']:.0f} | "
            f"**{c['lcmcr_coverage']:.0%}** | {c['lcmcr_median_of_medians']:.0f} | "
            f"{c['lcmcr_mean_width']:.0f} | {_below(c)} | {c['lcmcr_rhat_over_1_01']} | "
            f"{c['lcmcr_ess_min']:.0f} | {c['independence_coverage']:.0%} "
            f"(median {c['independence_median']:.0f}) | {averaged} |"
        )
    out += [
        "",
        "Scenario *classes*: 30 % of people are recorded by each list with probability "
        "0.40–0.60, 70 % with 0.08–0.15. Scenario *continuous*: logit of each list's "
        "probability = list effect (−1.8 … −1.0) + a person's propensity ~ Normal(0, 1). "
        "Latent-class sampler at its defaults (4 chains, 10,000 burn-in, 1,000 kept draws "
        "per chain every 20th iteration, K = 10, a = b = 0.25).",
        "",
        "### Run times (one core)",
        "",
        "| what | best of runs | load average (2-core VM shared with other work) |",
        "|---|---|---|",
    ]
    for t in result["timings"]:
        out.append(f"| {t['label']} | {t['best_seconds']:.1f} s | {t.get('load_average', 0):.1f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--continuous-sims", type=int, default=50)
    parser.add_argument(
        "--loglinear-sims",
        type=int,
        default=10,
        help="simulations that also run the full log-linear search",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--parts", default="validation,timing,coverage", help="which parts to run (comma list)"
    )
    parser.add_argument("--doc", action="store_true", help="print a markdown section")
    parser.add_argument("--save", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    checks: list[dict[str, Any]] = []
    if "validation" in parts:
        log("validation against published figures")
        checks = validation()
        log(f"{sum(r['match'] for r in checks)}/{len(checks)} printed figures reproduced")
    times: list[dict[str, Any]] = []
    if "timing" in parts:
        log("timings")
        times = timings()
    runs = []
    for scenario, sims in (("classes", args.sims), ("continuous", args.continuous_sims)):
        if sims and "coverage" in parts:
            log(f"coverage: {scenario}, {sims} simulations")
            runs.append(coverage(scenario, sims, min(args.loglinear_sims, sims), args.workers))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "versions": {p: metadata.version(p) for p in ("numpy", "scipy", "statsmodels")},
        "validation": checks,
        "timings": times,
        "coverage": runs,
    }
    if args.save:
        args.save.write_text(json.dumps(result, indent=1, default=float) + "\n", encoding="utf-8")
    if args.doc:
        sys.stdout.write(render(result))
    else:
        emit(result)


if __name__ == "__main__":
    main()
