"""What a person reads: tables of the estimate, the assumptions in plain words, a plot.

Every sentence goes through *t* (gettext: English msgid, Arabic in the catalog), so the
same report reads in Arabic or English. The plot shows documented against estimated
totals (per stratum when stratified) with their intervals, and for a log-linear model
search the leading models side by side, so a reader sees how much the choice of model
moves the number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from athar.errors import InputError
from athar.estimate.lcmcr import LcmcrResult
from athar.estimate.loglinear import LoglinearResult
from athar.estimate.messages import Notice
from athar.estimate.models import Model
from athar.estimate.service import EstimateResult

Translate = Callable[..., str]
MODELS_SHOWN = 15
MODEL_COLUMNS = ("model", "N", "SE", "95% interval", "deviance", "df", "AIC", "BIC", "weight")
LCMCR_COLUMNS = ("N (median)", "95% credible interval", "mean", "SD", "R-hat", "ESS")
STRATA_COLUMNS = ("recorded", "estimated", "95% interval", "unrecorded")
STRATUM_MODELS_SHOWN = 5

ASSUMPTIONS_COMMON = (
    "The people counted are one fixed group (for example, the people killed in one "
    "governorate in one month), and every list tried to record that same group.",
    "Records of the same person were linked correctly across lists: missed links make the "
    "estimate too high, wrong links make it too low.",
    "The estimate covers people the lists could have recorded; people no list could ever "
    "reach (a sealed-off area, a group no one documents) are not in it.",
    "The interval shows the uncertainty of the data under the model; it does not cover "
    "errors in the lists, in the linkage, or in the model's assumptions.",
)
ASSUMPTIONS_LOGLINEAR = (
    "Log-linear models explain the recorded overlaps by how likely each list is to record "
    "someone and by pairs of lists that tend to record the same people; the people no list "
    "recorded are assumed to follow the same pattern. Dependence among three or more lists "
    "at once is not modelled.",
)
ASSUMPTIONS_LCMCR = (
    "The latent-class model lets people differ in how likely they are to be recorded: it "
    "sorts them into hidden groups within which the lists record independently; the people "
    "no list recorded are assumed to belong to the same kinds of groups.",
)


def number(value: float, digits: int = 1) -> str:
    if not math.isfinite(value):
        return "∞"
    return f"{value:,.{digits}f}"


def interval(ci: tuple[float, float], digits: int = 1) -> str:
    return f"{number(ci[0], digits)} – {number(ci[1], digits)}"


def assumptions(result: EstimateResult, t: Translate) -> list[str]:
    specific = ASSUMPTIONS_LCMCR if result.method == "lcmcr" else ASSUMPTIONS_LOGLINEAR
    return [t(text) for text in (*ASSUMPTIONS_COMMON, *specific)]


def summary(result: EstimateResult, t: Translate) -> str:
    figures = {
        "N": number(result.N, 0),
        "low": number(result.ci[0], 0),
        "high": number(result.ci[1], 0),
        "observed": result.observed,
        "lists": len(result.lists),
    }
    if result.method == "lcmcr":
        return t(
            "Estimated total: {N} people (95% credible interval {low} – {high}); "
            "{observed} recorded on {lists} lists",
            **figures,
        )
    return t(
        "Estimated total: {N} people (95% interval {low} – {high}); "
        "{observed} recorded on {lists} lists",
        **figures,
    )


def short_name(model: Model) -> str:
    """A model in Rcapture's notation over list numbers ("[12,34]"): compact enough for a
    table where Arabic list names are not."""
    if not model.pairs:
        return ""
    sep = "" if max(j for _, j in model.pairs) < 9 else "-"
    return "[" + ",".join(f"{i + 1}{sep}{j + 1}" for i, j in model.pairs) + "]"


def legend(lists: tuple[str, ...], t: Translate) -> str:
    return t("Lists: {legend}", legend=" · ".join(f"{i + 1} = {n}" for i, n in enumerate(lists)))


def _table(columns: list[tuple[str, str]]) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 1), header_style="bold")
    for title, justify in columns:
        table.add_column(title, justify=justify, no_wrap=justify == "right")  # type: ignore[arg-type]
    return table


def model_table(result: LoglinearResult, t: Translate, limit: int = MODELS_SHOWN) -> Table:
    table = _table([(t(c), "left" if c == "model" else "right") for c in MODEL_COLUMNS])
    for fit in result.fits[:limit]:
        table.add_row(
            short_name(fit.model) or t("independence"),
            f"{fit.N:.1f}",
            f"{fit.se:.1f}",
            f"{fit.ci[0]:.1f}–{fit.ci[1]:.1f}".replace("inf", "∞"),
            f"{fit.deviance:.2f}",
            str(fit.df),
            f"{fit.aic:.2f}",
            f"{fit.bic:.2f}",
            f"{fit.weight:.3f}",
        )
    return table


def lcmcr_table(result: LcmcrResult, t: Translate) -> Table:
    table = _table([(t(c), "right") for c in LCMCR_COLUMNS])
    table.add_row(
        number(result.N, 0),
        interval(result.ci, 0),
        number(float(result.draws.mean())),
        number(float(result.draws.std(ddof=1))),
        f"{result.rhat:.3f}",
        f"{result.ess:.0f}",
    )
    return table


def strata_table(result: EstimateResult, t: Translate) -> Table:
    head = escape(result.stratify or t("stratum"))
    table = _table([(head, "left"), *((t(c), "right") for c in STRATA_COLUMNS)])
    for s in result.strata:
        table.add_row(
            escape(s.stratum or ""),
            str(s.result.observed),
            number(s.result.N, 0),
            interval(s.result.ci, 0),
            number(s.result.N - s.result.observed, 0),
        )
    if result.total is not None:
        table.add_row(
            t("total"),
            str(result.total.observed),
            number(result.total.N, 0),
            interval(result.total.ci, 0),
            number(result.total.N - result.total.observed, 0),
            style="bold",
        )
    return table


def renderables(result: EstimateResult, t: Translate) -> list[Any]:
    """Everything the CLI prints, in order (rich tables and plain lines)."""
    out: list[Any] = [summary(result, t)]
    if result.total is not None:
        out.append(strata_table(result, t))
    for s in result.strata:
        if result.total is not None:
            out.append(f"[bold]{escape(f'{result.stratify}={s.stratum}')}[/]")
        r = s.result
        if isinstance(r, LoglinearResult):
            shown = MODELS_SHOWN if result.total is None else STRATUM_MODELS_SHOWN
            out.append(escape(legend(r.lists, t)))
            out.append(model_table(r, t, shown))
            if len(r.fits) > shown:
                out.append(
                    t(
                        "… and {count} more models (--json lists them all)",
                        count=len(r.fits) - shown,
                    )
                )
            if r.averaged is not None:
                out.append(
                    t(
                        "Best model by {criterion}: {model}; averaged over models: {N} "
                        "(SE {se}, 95% interval {low} – {high})",
                        criterion=r.criterion.upper(),
                        model=short_name(r.selected.model) or t("independence"),
                        N=number(r.averaged.N),
                        se=number(r.averaged.se),
                        low=number(r.averaged.ci[0]),
                        high=number(r.averaged.ci[1]),
                    )
                )
        else:
            out.append(lcmcr_table(r, t))
            st = r.settings
            out.append(
                t(
                    "Sampler: {chains} chains, {burnin} burn-in and {samples} kept draws "
                    "(every {thin}th) each, up to {classes} classes, seed {seed}",
                    chains=st.chains,
                    burnin=st.burnin,
                    samples=st.samples,
                    thin=st.thin,
                    classes=st.classes,
                    seed=r.seed,
                )
            )
        out.extend(_notices(r.notices, t))
    out.extend(_notices(result.notices, t))
    out.append(f"[bold]{t('Assumptions')}[/]")
    out.extend(f"• {line}" for line in assumptions(result, t))
    return out


def _notices(notices: list[Notice], t: Translate) -> list[str]:
    return [f"[yellow]![/] {escape(t(n.template, **n.params))}" for n in notices]


def check_plot_path(path: Path) -> str:
    """The plot's format from its name (checked before any work is done)."""
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise InputError("the plot file must end in .png or .svg, not {name}", name=path.name)
    return suffix


def plot(result: EstimateResult, path: Path, t: Translate) -> Path:
    """Write a PNG or SVG: recorded vs estimated totals with 95% intervals (per stratum
    and in total), and for a log-linear search the leading models' estimates."""
    suffix = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    search = (
        result.total is None
        and isinstance(result.strata[0].result, LoglinearResult)
        and len(result.strata[0].result.fits) > 1
    )
    fig, axes = plt.subplots(
        1,
        2 if search else 1,
        figsize=(12 if search else 7, 4.8),
        squeeze=False,
        width_ratios=[1, 2.4] if search else None,
    )
    _totals(axes[0][0], result, t)
    if search:
        r = result.strata[0].result
        assert isinstance(r, LoglinearResult)
        _models(axes[0][1], r, t)
    fig.tight_layout()
    try:
        fig.savefig(path, format=suffix[1:], dpi=150)
    except OSError as exc:
        raise InputError(
            "cannot write {path}: {reason}", path=str(path), reason=exc.strerror or str(exc)
        ) from None
    finally:
        plt.close(fig)
    return path


def _totals(ax: Any, result: EstimateResult, t: Translate) -> None:
    rows: list[tuple[str, int, float, tuple[float, float]]] = [
        (s.stratum or t("all"), s.result.observed, s.result.N, s.result.ci) for s in result.strata
    ]
    if result.total is not None:
        rows.append((t("total"), result.total.observed, result.total.N, result.total.ci))
    positions = list(range(len(rows)))
    labels = [r[0] for r in rows]
    ax.bar(positions, [r[1] for r in rows], color="#9fb7c9", label=t("documented"))
    top = max(r[2] for r in rows)
    for x, (_, _, est, (low, high)) in zip(positions, rows, strict=True):
        upper = high if math.isfinite(high) else top * 1.5
        ax.errorbar(
            [x],
            [est],
            yerr=[[est - low], [upper - est]],
            fmt="o",
            color="#b03a2e",
            capsize=5,
            label=t("estimated (95% interval)") if x == 0 else None,
        )
        if not math.isfinite(high):
            ax.annotate("↑ ∞", (x, upper), ha="center", va="bottom")
    ax.set_xticks(positions, labels, rotation=30 if len(rows) > 4 else 0)
    ax.set_ylabel(t("people"))
    ax.set_title(t("Documented and estimated totals"))
    ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(bottom=0)


def _models(ax: Any, result: LoglinearResult, t: Translate) -> None:
    fits = result.fits[:MODELS_SHOWN]
    best = fits[0].aic if result.criterion == "aic" else fits[0].bic
    ys = list(range(len(fits)))[::-1]
    for y, fit in zip(ys, fits, strict=True):
        low, high = fit.ci
        high = high if math.isfinite(high) else fit.N * 3
        ax.plot([low, high], [y, y], color="#555555")
        ax.plot([fit.N], [y], "o", color="#b03a2e")
    delta = [(f.aic if result.criterion == "aic" else f.bic) - best for f in fits]
    ax.set_yticks(
        ys,
        [
            f"{short_name(f.model) or t('independence')}  Δ{d:.1f}"
            for f, d in zip(fits, delta, strict=True)
        ],
        fontsize=7,
    )
    ax.axvline(result.observed, color="#9fb7c9", linestyle="--", label=t("documented"))
    ax.set_xlabel(t("estimated total (95% interval)"))
    ax.set_title(t("Models by {criterion}", criterion=result.criterion.upper()))
    key = "\n".join(f"{i + 1}: {name}" for i, name in enumerate(result.lists))
    ax.text(1.02, 1.0, key, transform=ax.transAxes, va="top", ha="left", fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
