"""`athar link …` and `athar trace`: record linkage. Parses, calls athar.linkage, renders.

`link dedupe`, `link evaluate` and `link synth` need no vault (analysts receive lists as
spreadsheets); `link run`, `link review` and `trace` work on the vault's person records.
Splink, DuckDB and pandas are imported when a command runs, so that other commands do
not pay for loading them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from athar.cli.context import Ctx, command_ctx, open_vault, run_guarded
from athar.errors import InputError
from athar.linkage.thresholds import MATCH_AT, REVIEW_FROM

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="duckdb (one machine) or spark (local or a cluster).")
]
MatchOpt = Annotated[
    float, typer.Option("--match-at", help="Join pairs with at least this match probability.")
]
ReviewOpt = Annotated[
    float,
    typer.Option("--review-from", help="Pairs from this probability up to --match-at: review."),
]

link_app = typer.Typer(
    name="link",
    help="Find the records of one person across lists (probabilistic record linkage).",
    no_args_is_help=True,
)


def _notes(ctx: Ctx, notes: list[tuple[str, dict[str, Any]]]) -> None:
    for text, params in notes:
        ctx.err.print(f"[yellow]![/] {ctx.t(text, **params)}", highlight=False)


def _summary(ctx: Ctx, result: Any, extra: dict[str, Any]) -> dict[str, Any]:
    run = result.parameters.get("run", {})
    return {
        "ok": True,
        "records": run.get("records", len(result.clustering.cluster_of)),
        "clusters": result.clusters,
        "review_pairs": len(result.review),
        "converged": run.get("converged"),
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "notes": [ctx.t(text, **params) for text, params in result.notes],
        **extra,
    }


@link_app.command("dedupe")
def dedupe_cmd(
    context: typer.Context,
    lists: Annotated[list[Path], typer.Argument(metavar="LIST.csv", help="One or more lists.")],
    out: Annotated[Path, typer.Option("--out", help="clusters.csv to write.")],
    backend: BackendOpt = "duckdb",
    decisions: Annotated[
        Path | None,
        typer.Option("--decisions", help="Reviewers' decisions: left,right,decision (CSV)."),
    ] = None,
    review: Annotated[
        Path | None, typer.Option("--review", help="Write the pairs to review to this CSV.")
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option("--params", help="Write the model's parameters (JSON); default: OUT.json."),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="The files' encoding (default: detected).")
    ] = None,
    match_at: MatchOpt = MATCH_AT,
    review_from: ReviewOpt = REVIEW_FROM,
    json_out: JsonOpt = False,
) -> None:
    """Link the records of one person across CSV lists, without a vault."""
    from athar.linkage.files import read_decisions, write_clusters, write_json, write_review
    from athar.linkage.lists import read_lists
    from athar.linkage.service import link_records

    ctx = command_ctx(context, json_out)
    if backend not in ("duckdb", "spark"):
        raise ctx.fail(InputError("unknown backend {name}; use duckdb or spark", name=backend))
    loaded = run_guarded(ctx, read_lists, lists, encoding)
    decided = run_guarded(ctx, read_decisions, decisions) if decisions else []
    with ctx.progress("Linking", count=True) as bar:
        result = run_guarded(
            ctx,
            link_records,
            loaded.rows,
            backend=backend,  # type: ignore[arg-type]  # checked above
            decisions=decided,
            match_at=match_at,
            review_from=review_from,
            progress=bar,
        )
    params_path = params or out.with_name(out.name + ".json")
    write_clusters(out, result.clustering, (r.record_id for r in loaded.rows))
    write_json(params_path, result.parameters)
    if review is not None:
        names = {r.record_id: r.name for r in loaded.rows}
        write_review(review, result.review, names)
    data = _summary(
        ctx,
        result,
        {"out": str(out), "params": str(params_path), "review": str(review) if review else None},
    )
    if ctx.json:
        ctx.emit_json(data)
        return
    _notes(ctx, result.notes)
    ctx.out.print(
        ctx.t(
            "{records} records, {clusters} people; {review} pairs to review",
            records=data["records"],
            clusters=data["clusters"],
            review=data["review_pairs"],
        )
    )
    ctx.out.print(ctx.t("Wrote {path}", path=str(out)), highlight=False)


@link_app.command("evaluate")
def evaluate_cmd(
    context: typer.Context,
    clusters: Annotated[Path, typer.Argument(metavar="CLUSTERS.csv")],
    truth: Annotated[
        Path, typer.Option("--truth", help="record_id,person_id: who each record really is.")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Pairwise and cluster precision, recall and F1 of a linkage against the truth."""
    from athar.linkage.evaluate import evaluate_files

    ctx = command_ctx(context, json_out)
    scores = run_guarded(ctx, evaluate_files, clusters, truth)
    if ctx.json:
        ctx.emit_json(scores.to_json())
        return
    table = Table(show_edge=False)
    for col in ("", "precision", "recall", "F1"):
        table.add_column(ctx.t(col))
    table.add_row(
        ctx.t("pairs"),
        f"{scores.pairwise_precision:.4f}",
        f"{scores.pairwise_recall:.4f}",
        f"{scores.pairwise_f1:.4f}",
    )
    table.add_row(
        ctx.t("clusters"),
        f"{scores.cluster_precision:.4f}",
        f"{scores.cluster_recall:.4f}",
        f"{scores.cluster_f1:.4f}",
    )
    ctx.out.print(table)
    ctx.out.print(
        ctx.t(
            "{records} records: {people} people in the truth, {clusters} clusters found",
            records=scores.records,
            people=scores.people,
            clusters=scores.clusters,
        )
    )


@link_app.command("synth")
def synth_cmd(
    context: typer.Context,
    out: Annotated[Path, typer.Argument(metavar="FOLDER", help="Where to write the lists.")],
    people: Annotated[int, typer.Option("--people", help="How many people.")] = 1000,
    level: Annotated[str, typer.Option("--level", help="easy or hard.")] = "hard",
    seed: Annotated[int, typer.Option("--seed")] = 7,
    json_out: JsonOpt = False,
) -> None:
    """Write synthetic lists (lists.csv) and their truth (truth.csv) for testing."""
    from athar.linkage.synth import generate, write

    ctx = command_ctx(context, json_out)
    if level not in ("easy", "hard"):
        raise ctx.fail(InputError("--level must be easy or hard"))
    if not 1 <= people <= 10_000_000:
        raise ctx.fail(InputError("--people must be between 1 and 10,000,000"))
    rows, truth = generate(people, level, seed)  # type: ignore[arg-type]  # checked above
    lists, truth_file = write(rows, truth, out)
    if ctx.json:
        ctx.emit_json(
            {"ok": True, "lists": str(lists), "truth": str(truth_file), "rows": len(rows)}
        )
    else:
        ctx.out.print(ctx.t("Wrote {path}", path=str(lists)), highlight=False)
        ctx.out.print(ctx.t("Wrote {path}", path=str(truth_file)), highlight=False)


@link_app.command("run")
def run_cmd(
    context: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write clusters.csv (record ids only).")
    ] = None,
    backend: BackendOpt = "duckdb",
    match_at: MatchOpt = MATCH_AT,
    review_from: ReviewOpt = REVIEW_FROM,
    json_out: JsonOpt = False,
) -> None:
    """Link the vault's person records, with every reviewer decision in the ledger."""
    from athar.linkage.files import write_clusters
    from athar.linkage.service import link_records
    from athar.linkage.vault import decisions, person_rows
    from athar.records.service import Records

    ctx = command_ctx(context, json_out)
    if backend not in ("duckdb", "spark"):
        raise ctx.fail(InputError("unknown backend {name}; use duckdb or spark", name=backend))
    with open_vault(ctx) as vault, Records(vault, ctx.store) as store:
        rows = run_guarded(ctx, person_rows, store)
        if not rows:
            raise ctx.fail(InputError("the vault has no person records with a name"))
        decided = decisions(store)
        with ctx.progress("Linking", count=True) as bar:
            result = run_guarded(
                ctx,
                link_records,
                rows,
                backend=backend,  # type: ignore[arg-type]  # checked above
                decisions=decided,
                match_at=match_at,
                review_from=review_from,
                progress=bar,
            )
    if out is not None:
        write_clusters(out, result.clustering, (r.record_id for r in rows))
    groups: dict[str, list[str]] = {}
    for rid, cid in result.clustering.cluster_of.items():
        groups.setdefault(cid, []).append(rid)
    linked = {cid: sorted(ids) for cid, ids in groups.items() if len(ids) > 1}
    data = _summary(
        ctx,
        result,
        {
            "decisions": len(decided),
            "linked": linked,
            "review": [
                {"left": p.left, "right": p.right, "match_probability": round(p.probability, 4)}
                for p in result.review
            ],
        },
    )
    if ctx.json:
        ctx.emit_json(data)
        return
    _notes(ctx, result.notes)
    for cid, ids in sorted(linked.items()):
        ctx.out.print(f"{cid}: {', '.join(ids)}", highlight=False)
    ctx.out.print(
        ctx.t(
            "{records} records, {clusters} people; {review} pairs to review",
            records=data["records"],
            clusters=data["clusters"],
            review=data["review_pairs"],
        )
    )


@link_app.command("review")
def review_cmd(
    context: typer.Context,
    left: Annotated[str | None, typer.Argument(metavar="LEFT", help="A person record.")] = None,
    right: Annotated[str | None, typer.Argument(metavar="RIGHT", help="Another one.")] = None,
    decision: Annotated[
        str | None,
        typer.Option("--decision", help="match or non-match: record it as a signed event."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the event).")] = None,
    match_at: MatchOpt = MATCH_AT,
    review_from: ReviewOpt = REVIEW_FROM,
    json_out: JsonOpt = False,
) -> None:
    """List the pairs to review, or record a reviewer's decision about two records."""
    from athar.linkage.files import parse_decision
    from athar.linkage.service import link_records
    from athar.linkage.vault import decide, decisions, person_rows
    from athar.records.service import Records

    ctx = command_ctx(context, json_out)
    if decision is not None or left is not None:
        if left is None or right is None or decision is None:
            raise ctx.fail(InputError("give LEFT, RIGHT and --decision match|non-match"))
        try:
            match = parse_decision(decision)
        except ValueError:
            match = None
        if match is None:
            raise ctx.fail(InputError("--decision must be match or non-match"))
        with open_vault(ctx) as vault, Records(vault, ctx.store) as store:
            event = run_guarded(ctx, decide, store, left, right, match, note)
        if ctx.json:
            ctx.emit_json(
                {"ok": True, "event": event, "decision": "match" if match else "non_match"}
            )
        else:
            ctx.out.print(ctx.t("Decision recorded (event {id})", id=event[:12]), highlight=False)
        return
    with open_vault(ctx) as vault, Records(vault, ctx.store) as store:
        rows = run_guarded(ctx, person_rows, store)
        result = run_guarded(
            ctx,
            link_records,
            rows,
            decisions=decisions(store),
            match_at=match_at,
            review_from=review_from,
        )
    names = {r.record_id: r.name for r in rows}
    pairs = [
        {
            "left": p.left,
            "right": p.right,
            "match_probability": round(p.probability, 4),
            "left_name": names.get(p.left, ""),
            "right_name": names.get(p.right, ""),
        }
        for p in result.review
    ]
    if ctx.json:
        ctx.emit_json({"ok": True, "pairs": pairs})
        return
    table = Table(show_edge=False)
    for col in ("left", "right", "match probability", "names"):
        table.add_column(ctx.t(col))
    for p in pairs:
        table.add_row(
            str(p["left"]),
            str(p["right"]),
            f"{p['match_probability']:.2f}",
            f"{p['left_name']} / {p['right_name']}",
        )
    ctx.out.print(table)
    ctx.out.print(ctx.t("{n} pairs to review", n=len(pairs)))


def trace_cmd(
    context: typer.Context,
    report: Annotated[str, typer.Argument(metavar="MISSING_REPORT_ID")],
    limit: Annotated[int, typer.Option("--limit", help="At most this many candidates.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Search every person record for the person a missing-person report seeks."""
    from athar.linkage.trace import trace
    from athar.records.service import Records

    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault, Records(vault, ctx.store) as store:
        found = run_guarded(ctx, trace, store, report, ctx.lang, limit)
    if ctx.json:
        ctx.emit_json({"ok": True, "candidates": [c.to_json() for c in found]})
        return
    if not found:
        ctx.out.print(ctx.t("No candidates found"))
        return
    for rank, c in enumerate(found, start=1):
        ctx.out.print(
            f"{rank}. {c.record_id}  {c.name}  "
            + ctx.t("match probability {p}", p=f"{c.probability:.2f}"),
            highlight=False,
        )
        if c.agreed:
            ctx.out.print(
                "   " + ctx.t("agreed: {fields}", fields=", ".join(c.agreed)), highlight=False
            )
        if c.close:
            ctx.out.print(
                "   " + ctx.t("close: {fields}", fields=", ".join(c.close)), highlight=False
            )
        if c.disagreed:
            ctx.out.print(
                "   " + ctx.t("disagreed: {fields}", fields=", ".join(c.disagreed)), highlight=False
            )
        for reason in c.reasons:
            ctx.out.print(f"   · {reason}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(link_app)
    app.command("trace")(trace_cmd)
