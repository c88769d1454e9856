"""`athar`'s own commands (vault, ledger, proofs, wipe): each parses, calls the vault
service, renders. The other command groups live in their *_cmds modules and are added by
athar.cli.commands."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from athar import __version__
from athar.cli.context import Bar, Ctx, command_ctx, open_vault, resolve_vault, run_guarded
from athar.crypto.identity import fingerprint
from athar.errors import InputError
from athar.i18n import pick_language
from athar.records import ids
from athar.vault.audit import audit
from athar.vault.checkpoint import load_checkpoint_file
from athar.vault.fsutil import atomic_write
from athar.vault.items import Item
from athar.vault.proofs import check_proof, load_proof
from athar.vault.vault import AddResult, Vault, wipe

app = typer.Typer(
    name="athar",
    help="Athar (أثر): an offline, encrypted evidence vault with a signed, append-only ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def main(
    context: typer.Context,
    vault: Annotated[
        Path | None,
        typer.Option("--vault", "-V", help="Vault folder (default $ATHAR_VAULT or ./athar-vault)."),
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Language of messages: ar or en.")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="ATHAR_STORE",
            help="PostgreSQL URL of the records store (default: the vault's encrypted file).",
        ),
    ] = None,
) -> None:
    context.obj = Ctx(vault=resolve_vault(vault), lang=pick_language(lang), store=store)


def _open(ctx: Ctx) -> Vault:
    return open_vault(ctx)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def init(context: typer.Context, json_out: JsonOpt = False) -> None:
    """Create a new, empty vault protected by a passphrase."""
    ctx = command_ctx(context, json_out)
    vault = run_guarded(ctx, lambda: Vault.create(ctx.vault, ctx.passphrase(confirm=True)))
    with vault:
        data = {"ok": True, "vault": str(ctx.vault), "device": vault.device_fingerprint}
    if ctx.json:
        ctx.emit_json(data)
    else:
        ctx.out.print(ctx.t("Created vault {path}", path=str(ctx.vault)))
        ctx.out.print(ctx.t("Device fingerprint: {fp}", fp=data["device"]))


def _result_line(ctx: Ctx, bar: Bar, r: AddResult) -> None:
    if ctx.json:
        return
    if r.status == "skipped":
        bar.print(f"[yellow]{ctx.t('skipped')}[/] {r.path}: {r.reason}")
    elif r.item is not None:
        label = ctx.t("added") if r.status == "added" else ctx.t("already in vault")
        bar.print(f"{label}  {r.item.short_id}  sha256:{r.item.sha256}  {r.path}")


@app.command()
def add(
    context: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to add.")],
    note: Annotated[
        str | None, typer.Option("--note", help="A note recorded with each item.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Encrypt files into the vault and record each in the signed ledger."""
    ctx = command_ctx(context, json_out)
    with _open(ctx) as vault:
        with ctx.progress("Encrypting") as bar:
            report = run_guarded(
                ctx, vault.add, paths, note, bar, lambda r: _result_line(ctx, bar, r)
            )
        from athar.cli import verify_cmds  # media analysis: NumPy, PyAV, only when adding

        analysed = verify_cmds.ingest_added(ctx, vault, report)
    summary = {
        "added": report.count("added"),
        "duplicate": report.count("duplicate"),
        "skipped": report.count("skipped"),
    }
    if ctx.json:
        ctx.emit_json(
            {
                "ok": summary["skipped"] == 0,
                **summary,
                "results": [r.to_json() for r in report.results],
                "similar": {
                    a.item.id: [s.to_json() for s in a.similar] for a in analysed if a.similar
                },
            }
        )
    else:
        ctx.out.print(
            ctx.t("{added} added, {duplicate} already present, {skipped} skipped", **summary)
        )
    if summary["skipped"]:
        raise typer.Exit(1)


def _item_table(ctx: Ctx, items: list[Item]) -> Table:
    table = Table(show_edge=False)
    for col in ("id", "added", "size", "type", "name", "note"):
        table.add_column(ctx.t(col))
    for i in items:
        name = i.name + (f" [red]({ctx.t('destroyed')})[/]" if i.shredded else "")
        table.add_row(i.short_id, i.added[:19], str(i.size), i.media_type, name, i.note or "")
    return table


@app.command("ls")
def list_items(context: typer.Context, json_out: JsonOpt = False) -> None:
    """List the items in the vault."""
    ctx = command_ctx(context, json_out)
    with _open(ctx) as vault:
        items = run_guarded(ctx, vault.items)
    if ctx.json:
        ctx.emit_json([i.to_json() for i in items])
    else:
        ctx.out.print(_item_table(ctx, items))


@app.command()
def show(
    context: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ID")],
    json_out: JsonOpt = False,
) -> None:
    """Show a record (inc-…, per-…) or an item's recorded details."""
    ctx = command_ctx(context, json_out)
    if ids.type_of(item_id.strip().lower()) is not None:
        from athar.cli import records_cmds

        records_cmds.show_record(ctx, item_id)
        return
    with _open(ctx) as vault:
        item = run_guarded(ctx, vault.item, item_id)
    if ctx.json:
        ctx.emit_json(item.to_json())
    else:
        for key, value in item.to_json().items():
            ctx.out.print(f"{ctx.t(key)}: {value}", highlight=False)


@app.command()
def get(
    context: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the file.")],
    json_out: JsonOpt = False,
) -> None:
    """Decrypt an item to a file (its SHA-256 is checked before the file appears)."""
    ctx = command_ctx(context, json_out)
    with _open(ctx) as vault:
        item = run_guarded(ctx, vault.item, item_id)
        with ctx.progress("Decrypting", item.size) as advance:
            run_guarded(ctx, vault.export, item, output, advance)
    if ctx.json:
        ctx.emit_json({"ok": True, "id": item.id, "sha256": item.sha256, "path": str(output)})
    else:
        ctx.out.print(ctx.t("Wrote {path} (SHA-256 checked)", path=str(output)))


@app.command()
def log(context: typer.Context, json_out: JsonOpt = False) -> None:
    """Print the ledger's events in order."""
    ctx = command_ctx(context, json_out)
    with _open(ctx) as vault:
        events = run_guarded(ctx, vault.events)
    rows: list[dict[str, Any]] = [
        {
            "seq": seq,
            "id": e.id,
            "kind": e.event.kind,
            "time": e.event.time,
            "device": fingerprint(e.event.device),
            "dseq": e.event.dseq,
            "body": e.event.body,
        }
        for seq, e in enumerate(events)
    ]
    if ctx.json:
        ctx.emit_json(rows)
        return
    table = Table(show_edge=False)
    for col in ("#", "id", "time", "kind", "details"):
        table.add_column(ctx.t(col))
    for r in rows:
        body = r["body"]
        detail = body.get("name") or body.get("item") or body.get("device") or ""
        table.add_row(str(r["seq"]), r["id"][:12], r["time"][:19], r["kind"], str(detail))
    ctx.out.print(table)


@app.command()
def checkpoint(
    context: typer.Context,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write it to a file.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign a checkpoint (tree size + Merkle root + time) of the ledger now."""
    ctx = command_ctx(context, json_out)
    with _open(ctx) as vault:
        signed = run_guarded(ctx, vault.checkpoint)
    if output is not None:
        signed.write(output)
    if ctx.json:
        ctx.emit_json(signed.to_json())
    else:
        ctx.out.print(signed.note, highlight=False)
        ctx.out.print(ctx.t("Signer fingerprint: {fp}", fp=fingerprint(signed.public_key)))
        if output is not None:
            ctx.out.print(ctx.t("Wrote {path}", path=str(output)))


@app.command()
def prove(
    context: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Proof file to write.")],
    at: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Make the proof against this earlier checkpoint."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a proof that an item is in the ledger, checkable without the vault."""
    ctx = command_ctx(context, json_out)
    with _open(ctx) as vault:
        item = run_guarded(ctx, vault.item, item_id)
        trusted = run_guarded(ctx, load_checkpoint_file, at) if at else None
        proof = run_guarded(ctx, vault.prove, item, trusted)
    # private: a proof names the item's file and its SHA-256
    run_guarded(
        ctx, atomic_write, output, (json.dumps(proof, indent=2, ensure_ascii=False) + "\n").encode()
    )
    if ctx.json:
        ctx.emit_json({"ok": True, "path": str(output), "tree_size": proof["tree_size"]})
    else:
        ctx.out.print(
            ctx.t(
                "Wrote proof {path} (item {id}, ledger of {size} events)",
                path=str(output),
                id=item.short_id,
                size=proof["tree_size"],
            )
        )


@app.command("check-proof")
def check_proof_cmd(
    context: typer.Context,
    proof_file: Annotated[Path, typer.Argument(metavar="PROOF")],
    checkpoint_file: Annotated[
        Path | None, typer.Option("--checkpoint", help="A checkpoint you trust.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Also check that this file is the item.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a proof file offline: needs no vault and no passphrase."""
    ctx = command_ctx(context, json_out)

    def run() -> Any:
        trusted = load_checkpoint_file(checkpoint_file) if checkpoint_file else None
        return check_proof(load_proof(proof_file), trusted, file)

    report = run_guarded(ctx, run)
    if ctx.json:
        ctx.emit_json(report.to_json())
    else:
        item = report.item
        ctx.out.print(
            ctx.t(
                "Item: {name}  sha256:{sha}",
                name=item.get("name", "?"),
                sha=item.get("sha256", "?"),
            ),
            highlight=False,
        )
        ctx.out.print(
            ctx.t(
                "Event {id} at position {index} of {size}, signed by {fp}",
                id=report.event_id[:12],
                index=report.index,
                size=report.tree_size,
                fp=report.event_signer,
            ),
            highlight=False,
        )
        ctx.out.print(ctx.t("Checkpoint signed by {fp}", fp=report.checkpoint_signer))
        if checkpoint_file is None:
            ctx.err.print(
                ctx.t(
                    "note: no --checkpoint given; the proof's own checkpoint was "
                    "used, so this shows consistency, not who signed it"
                )
            )
        for f in report.failures:
            ctx.out.print(f"[red]✗[/] {f}", highlight=False)
        ctx.out.print(
            f"[green]✓ {ctx.t('proof valid')}[/]"
            if report.ok
            else f"[red]✗ {ctx.t('proof INVALID')}[/]"
        )
    if not report.ok:
        raise typer.Exit(6)


@app.command()
def verify(
    context: typer.Context,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="Also check against a checkpoint kept elsewhere."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Full audit: every blob, every signature, every chain link, every checkpoint."""
    ctx = command_ctx(context, json_out)
    external = [run_guarded(ctx, load_checkpoint_file, p) for p in checkpoints or []]
    with _open(ctx) as vault, ctx.progress("Verifying") as bar:
        report = run_guarded(ctx, audit, vault, external, bar)
    if ctx.json:
        ctx.emit_json(report.to_json())
    else:
        ctx.out.print(
            ctx.t(
                "{events} events, {items} items, {blobs} blobs ({bytes} bytes), "
                "{cps} checkpoints checked",
                events=report.events,
                items=report.items,
                blobs=report.blobs_checked,
                bytes=report.bytes_checked,
                cps=report.checkpoints_checked,
            )
        )
        if report.root:
            ctx.out.print(
                ctx.t("Merkle root {root} over {size} events", root=report.root, size=report.size),
                highlight=False,
            )
        for note in report.notes:
            ctx.out.print(f"[yellow]![/] {note}", highlight=False)
        for p in report.problems:
            ctx.out.print(f"[red]✗[/] {p}", highlight=False)
        ctx.out.print(
            f"[green]✓ {ctx.t('vault verified: all checks passed')}[/]"
            if report.ok
            else f"[red]✗ {ctx.t('VERIFICATION FAILED: {n} problems', n=len(report.problems))}[/]"
        )
    if not report.ok:
        raise typer.Exit(6)


@app.command("wipe")
def wipe_cmd(
    context: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Panic: destroy the vault's key material at once. Needs no passphrase."""
    ctx = command_ctx(context, json_out)
    if not yes:
        if not os.isatty(0):
            raise ctx.fail(InputError("refusing to wipe without --yes when not in a terminal"))
        typer.confirm(
            ctx.t("Destroy the keys of {path}? Nothing can be recovered", path=str(ctx.vault)),
            abort=True,
            err=True,
        )
    seconds = run_guarded(ctx, wipe, ctx.vault)
    if ctx.json:
        ctx.emit_json({"ok": True, "seconds": seconds})
    else:
        ctx.out.print(
            ctx.t(
                "Key material destroyed in {ms} ms; only ciphertext remains",
                ms=f"{seconds * 1000:.1f}",
            )
        )
