"""`athar inspect`, `similar`, `verdict`, `queue`, `import-proofmode`: media verification.

Thin: each command resolves its arguments, calls ``athar.verify`` and renders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from athar.cli.context import Ctx, command_ctx, open_vault, run_guarded
from athar.cli.records_cmds import open_records, parse_assignments
from athar.i18n import translate
from athar.vault.items import Item
from athar.vault.vault import AddReport, Vault
from athar.verify import c2pa_manifest, proofmode, verification
from athar.verify.service import Ingested, MediaService, Similar, inspect_file

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Target = Annotated[str, typer.Argument(metavar="ID|FILE", help="An item id or a file.")]
TRUST_ENV = "ATHAR_C2PA_TRUST"
TrustOpt = Annotated[
    Path | None,
    typer.Option(
        "--c2pa-trust",
        metavar="PEM",
        help=f"Root certificates C2PA signers must chain to (default ${TRUST_ENV}).",
    ),
]


def _message(ctx: Ctx, entry: dict[str, Any]) -> str:
    return translate(entry["message"], ctx.lang, **entry.get("params", {}))


def c2pa_anchors(ctx: Ctx, path: Path | None = None) -> str | None:
    """The PEM trust anchors for C2PA: the option, else $ATHAR_C2PA_TRUST, else none
    (then no C2PA signer is trusted, and signed files are judged invalid)."""
    if path is None and os.environ.get(TRUST_ENV):
        path = Path(os.environ[TRUST_ENV])
    return None if path is None else run_guarded(ctx, c2pa_manifest.load_anchors, path)


def inspect(
    context: typer.Context, target: Target, trust: TrustOpt = None, json_out: JsonOpt = False
) -> None:
    """Show what a file or an item says about itself (EXIF, GPS, XMP, IPTC, container,
    PDF, C2PA provenance) and whether it can be read at all."""
    ctx = command_ctx(context, json_out)
    anchors = c2pa_anchors(ctx, trust)
    path = Path(target)
    if path.exists():
        report = run_guarded(ctx, inspect_file, path, anchors)
    else:
        with open_vault(ctx) as vault:
            item = run_guarded(ctx, vault.item, target)
            report = run_guarded(ctx, MediaService(vault, anchors).inspect_item, item)
    if ctx.json:
        ctx.emit_json(report)
        return
    meta = report["metadata"]
    ctx.out.print(f"{ctx.t('kind')}: {meta['kind']}  {meta.get('format') or ''}", highlight=False)
    if not meta["valid"]:
        ctx.out.print(f"[red]✗ {ctx.t('invalid')}:[/] {_message(ctx, meta['error'])}")
    for key, value in meta["summary"].items():
        ctx.out.print(f"{ctx.t(key)}: {value}", highlight=False)
    for name, block in meta["blocks"].items():
        table = Table(title=name, show_edge=False)
        table.add_column(ctx.t("tag"))
        table.add_column(ctx.t("value"))
        for key, value in block.items():
            table.add_row(str(key), str(value)[:200])
        ctx.out.print(table)
    for problem in meta["problems"]:
        ctx.out.print(f"[yellow]![/] {_message(ctx, problem)}", highlight=False)
    if report.get("pdq"):
        ctx.out.print(f"PDQ {report['pdq']} ({ctx.t('quality')} {report['pdq_quality']})")
    if report.get("provenance"):
        _print_provenance(ctx, report["provenance"])


def _print_provenance(ctx: Ctx, prov: dict[str, Any]) -> None:
    verdict = prov["verdict"]
    if verdict == "none":
        ctx.out.print(f"C2PA: {ctx.t('no manifest')}", highlight=False)
        return
    mark = "[green]✓" if verdict == "valid" else "[red]✗"
    ctx.out.print(f"C2PA: {mark} {ctx.t(verdict)}[/]", highlight=False)
    if verdict == "invalid" and prov.get("signature_intact"):
        ctx.out.print(
            "  " + ctx.t("the signature is intact but its signer is not a trusted one"),
            highlight=False,
        )
    signer = prov.get("signer") or {}
    for key, label in (("subject", "signer"), ("issuer", "issuer"), ("time", "signed at")):
        if signer.get(key):
            ctx.out.print(f"  {ctx.t(label)}: {signer[key]}", highlight=False)
    if prov.get("claim_generator"):
        gens = ", ".join(prov["claim_generator"])
        ctx.out.print(f"  {ctx.t('made with')}: {gens}", highlight=False)
    if prov.get("title"):
        ctx.out.print(f"  {ctx.t('title')}: {prov['title']}", highlight=False)
    for a in prov.get("assertions") or []:
        data = a.get("data")
        if isinstance(data, dict) and isinstance(data.get("actions"), list):
            acts = [str(x.get("action", "?")) for x in data["actions"] if isinstance(x, dict)]
            ctx.out.print(f"  {a['label']}: {', '.join(acts)}", highlight=False)
        else:
            ctx.out.print(f"  {a['label']}: {str(data)[:200]}", highlight=False)
    for i in prov.get("ingredients") or []:
        ctx.out.print(
            f"  {ctx.t('ingredient')}: {i.get('title', '?')} ({i.get('relationship', '')})",
            highlight=False,
        )
    for r in prov.get("reasons") or []:
        ctx.out.print(
            f"  [red]![/] {c2pa_manifest.explain(r, ctx.lang)} ({r['code']})", highlight=False
        )
    if prov.get("error"):
        ctx.out.print(f"  [red]![/] {prov['error']}", highlight=False)


def _similar_table(ctx: Ctx, found: list[Similar]) -> Table:
    table = Table(show_edge=False)
    for col in ("id", "distance", "kind", "first seen", "name", "note"):
        table.add_column(ctx.t(col))
    for s in found:
        kind = ctx.t(s.kind) + (f" ({ctx.t('crop')})" if s.via_region else "")
        if s.offset is not None:
            kind += f" @{s.offset:.1f}s"
        table.add_row(
            s.item.short_id,
            str(s.distance),
            kind,
            s.item.added[:19],
            s.item.name,
            s.item.note or "",
        )
    return table


def similar(context: typer.Context, target: Target, json_out: JsonOpt = False) -> None:
    """Archive items that are the same picture or footage as a file or item, or a
    near-copy of it (cropped, re-encoded, mirrored, cut from a longer video)."""
    ctx = command_ctx(context, json_out)
    path = Path(target)
    with open_vault(ctx) as vault:
        service = MediaService(vault)
        if path.exists():
            _, found = run_guarded(ctx, service.similar_to_file, path)
        else:
            item = run_guarded(ctx, vault.item, target)
            _, found = run_guarded(ctx, service.similar_to_item, item)
        service.save_index()
    if ctx.json:
        ctx.emit_json({"ok": True, "similar": [s.to_json() for s in found]})
    elif not found:
        ctx.out.print(ctx.t("No similar item in the archive"))
    else:
        ctx.out.print(_similar_table(ctx, found))


def ingest_added(ctx: Ctx, vault: Vault, report: AddReport) -> list[Ingested]:
    """Called by `athar add` once the files are safely in: analyse the new items and
    flag those that repeat archive material."""
    items = [r.item for r in report.results if r.status == "added" and r.item is not None]
    if not items:
        return []
    with ctx.progress("Analysing", len(items), count=True) as bar:

        def done(result: Ingested) -> None:
            bar.advance(1)
            if result.similar and not ctx.json:
                first = min(result.similar, key=lambda s: s.item.added)
                bar.print(
                    "[yellow]!"
                    + "[/] "
                    + ctx.t(
                        "{id} is a copy or near-copy of {other} (distance {distance}, "
                        "first seen {date})",
                        id=result.item.short_id,
                        other=first.item.short_id,
                        distance=first.distance,
                        date=first.item.added[:19],
                    )
                )

        service = MediaService(vault, c2pa_anchors(ctx))
        return run_guarded(ctx, service.ingest, items, done)


def verdict(
    context: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ITEM")],
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FIELD=VALUE...",
            help="status=…, reasoning=…, check.date=consistent, provenance=…, verifier=…",
        ),
    ] = None,
    corroborated_by: Annotated[
        list[str] | None,
        typer.Option("--corroborated-by", help="An item that corroborates this one."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Record or change the verification verdict of an item (a signed event each time)."""
    ctx = command_ctx(context, json_out)
    raw = run_guarded(ctx, parse_assignments, assignments)
    with open_records(ctx) as records:
        vault = records.vault
        item = run_guarded(ctx, vault.item, item_id)
        others = [run_guarded(ctx, vault.item, o) for o in corroborated_by or []]
        rid, changed = run_guarded(ctx, verification.set_verdict, records, item, raw, others)
        view = records.get(rid)
    if ctx.json:
        ctx.emit_json({"ok": True, "changed": changed, "record": view.to_json()})
        return
    ctx.out.print(ctx.t("Saved") if changed else ctx.t("Nothing changed"))
    status = view.data.get("status", "")
    ctx.out.print(
        f"{rid}  {ctx.t('status')}: {records.vocab.label('verification_status', status, ctx.lang)}"
    )


def queue(
    context: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="Only records with this status.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The verification queue: items with a verification record, latest change first."""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records:
        rows = run_guarded(ctx, verification.queue, records, status)
        items = {i.id: i for i in records.vault.items()}
        vocab = records.vocab
    if ctx.json:
        ctx.emit_json(rows)
        return
    table = Table(show_edge=False)
    for col in ("id", "item", "status", "updated", "name"):
        table.add_column(ctx.t(col))
    for r in rows:
        item: Item | None = items.get(r.get("item", ""))
        table.add_row(
            r["id"],
            item.short_id if item else r.get("item", "")[:12],
            vocab.label("verification_status", r.get("status", ""), ctx.lang),
            r["updated"][:19],
            item.name if item else "",
        )
    ctx.out.print(table)


def import_proofmode(
    context: typer.Context,
    zip_path: Annotated[Path, typer.Argument(metavar="ZIP")],
    json_out: JsonOpt = False,
) -> None:
    """Check a ProofMode export zip (OpenPGP signatures, proof hashes) and keep it in
    the vault with the outcome; nothing is extracted."""
    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault:
        report = run_guarded(ctx, proofmode.import_zip, vault, zip_path)
    if ctx.json:
        ctx.emit_json(report.to_json())
    else:
        ctx.out.print(ctx.t("Signer key: {fp}", fp=report.signer or "-"), highlight=False)
        for f in report.files:
            ctx.out.print(
                f"{f.name}  {ctx.t('signature')}: {ctx.t(f.signature)}  "
                f"{ctx.t('proof')}: {ctx.t(f.proof)}",
                highlight=False,
            )
        ctx.out.print(
            f"[green]✓ {ctx.t('ProofMode zip valid')}[/]"
            if report.ok
            else f"[red]✗ {ctx.t('ProofMode zip INVALID')}[/]"
        )
    if not report.ok:
        raise typer.Exit(6)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("similar")(similar)
    app.command("verdict")(verdict)
    app.command("queue")(queue)
    app.command("import-proofmode")(import_proofmode)
