"""`athar estimate`: how many victims no list recorded. Parses, calls athar.estimate,
renders; needs no vault (it reads a CSV the user gives). The estimators are imported when
the command runs, so that other commands do not pay for loading numpy and statsmodels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from athar.cli.context import command_ctx, run_guarded
from athar.errors import InputError
from athar.estimate.settings import LcmcrSettings

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DEFAULTS = LcmcrSettings()


def estimate_cmd(
    context: typer.Context,
    histories: Annotated[
        Path | None,
        typer.Argument(
            metavar="HISTORIES.csv",
            help="One 0/1 column per list (named as the list) and a count column.",
        ),
    ] = None,
    from_clusters: Annotated[
        Path | None,
        typer.Option(
            "--from-clusters",
            help="A linkage result instead: columns cluster_id and source, one row per record.",
        ),
    ] = None,
    stratify: Annotated[
        str | None,
        typer.Option("--stratify", help="Estimate per value of this column (month, governorate)."),
    ] = None,
    interactions: Annotated[
        str | None,
        typer.Option(
            "--interactions",
            help="Fit this log-linear model only, e.g. A:B,C:D ('' for independence); "
            "without it every model is fitted and averaged.",
        ),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="loglinear or lcmcr (Bayesian latent classes).")
    ] = "loglinear",
    criterion: Annotated[
        str, typer.Option("--criterion", help="Rank log-linear models by aic or bic.")
    ] = "aic",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the lcmcr sampler.")] = 1,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw documented vs estimated totals (.png or .svg)."),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="The file's encoding (default: detected).")
    ] = None,
    chains: Annotated[int, typer.Option("--chains", help="lcmcr: chains.")] = DEFAULTS.chains,
    burnin: Annotated[
        int, typer.Option("--burnin", help="lcmcr: iterations discarded per chain.")
    ] = DEFAULTS.burnin,
    samples: Annotated[
        int, typer.Option("--samples", help="lcmcr: draws kept per chain.")
    ] = DEFAULTS.samples,
    thin: Annotated[
        int, typer.Option("--thin", help="lcmcr: iterations between kept draws.")
    ] = DEFAULTS.thin,
    classes: Annotated[
        int, typer.Option("--classes", help="lcmcr: most latent classes (K).")
    ] = DEFAULTS.classes,
    json_out: JsonOpt = False,
) -> None:
    """Estimate how many people no list recorded (multiple systems estimation)."""
    from athar.estimate import report  # numpy, scipy, statsmodels: loaded only when used
    from athar.estimate.service import EstimateResult, estimate

    ctx = command_ctx(context, json_out)
    if (histories is None) == (from_clusters is None):
        raise ctx.fail(
            InputError("give either a HISTORIES.csv file or --from-clusters FILE (one of them)")
        )
    if plot is not None:
        run_guarded(ctx, report.check_plot_path, plot)
    source = histories if histories is not None else from_clusters
    assert source is not None
    settings = LcmcrSettings(
        classes=classes, chains=chains, burnin=burnin, samples=samples, thin=thin
    )
    with ctx.progress("Estimating", count=True) as bar:
        result: EstimateResult = run_guarded(
            ctx,
            estimate,
            source,
            interactions=interactions,
            method=method,  # type: ignore[arg-type]  # checked by the service
            stratify=stratify,
            seed=seed,
            criterion=criterion,  # type: ignore[arg-type]  # checked by the service
            from_clusters=from_clusters is not None,
            encoding=encoding,
            settings=settings,
            progress=bar,
        )
    written = run_guarded(ctx, report.plot, result, plot, ctx.t) if plot is not None else None
    if ctx.json:
        data = result.to_json(ctx.lang)
        if written is not None:
            data["plot"] = str(written)
        ctx.emit_json(data)
        return
    for item in report.renderables(result, ctx.t):
        ctx.out.print(item, highlight=False)
    if written is not None:
        ctx.out.print(ctx.t("Wrote {path}", path=str(written)), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_cmd)
