"""`athar bundle …` and `athar device …`: thin faces over athar.sync.service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from athar.cli.context import Ctx, command_ctx, open_vault, run_guarded
from athar.crypto.identity import fingerprint
from athar.errors import InputError
from athar.sync import receipt as receipts
from athar.sync import service
from athar.vault import rotation

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
bundle_app = typer.Typer(help="Move evidence out in encrypted bundles.", no_args_is_help=True)
device_app = typer.Typer(help="The devices this vault trusts.", no_args_is_help=True)


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().rstrip("B").rstrip("I")
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except ValueError:
        raise InputError("{value} is not a size (e.g. 2M)", value=text) from None


def _percent(text: str) -> float:
    try:
        return float(text.strip().rstrip("%")) / 100
    except ValueError:
        raise InputError("{value} is not a percentage (e.g. 20%)", value=text) from None


@bundle_app.command("export")
def export_cmd(
    context: typer.Context,
    to: Annotated[list[str], typer.Option("--to", help="age1… recipient or enrolled device.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the bundle into.")],
    since: Annotated[int | None, typer.Option("--since", help="First event to send.")] = None,
    part_size: Annotated[
        str | None, typer.Option("--part-size", help="Split into parts of this size (2M).")
    ] = None,
    redundancy: Annotated[
        str, typer.Option("--redundancy", help="Extra erasure-coded parts (20%).")
    ] = "0%",
    json_out: JsonOpt = False,
) -> None:
    """Write everything a recipient lacks, encrypted to it."""
    ctx = command_ctx(context, json_out)
    size = run_guarded(ctx, _size, part_size) if part_size else None
    red = run_guarded(ctx, _percent, redundancy)
    with open_vault(ctx) as vault, ctx.progress("Exporting") as bar:
        result = run_guarded(
            ctx,
            service.export_bundle,
            vault,
            to,
            out,
            since=since,
            part_size=size,
            redundancy=red,
            progress=bar,
        )
    if ctx.json:
        ctx.emit_json(result.to_json())
        return
    ctx.out.print(
        ctx.t(
            "Wrote {files} file(s), {bytes} bytes: events {since} to {size}, {blobs} file(s)",
            files=len(result.files),
            bytes=result.wire_bytes,
            since=result.since,
            size=result.size,
            blobs=result.blobs,
        ),
        highlight=False,
    )


@bundle_app.command("import")
def import_cmd(
    context: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Bundle files, parts or folders.")],
    accept_unknown: Annotated[
        bool, typer.Option("--accept-unknown", help="Take bundles from devices not enrolled.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Verify and import bundles; all or nothing per bundle, idempotent."""
    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault:
        outcome = run_guarded(
            ctx, service.import_bundles, vault, paths, accept_unknown=accept_unknown
        )
    if ctx.json:
        ctx.emit_json(outcome.to_json())
        return
    for rep in outcome.imported:
        ctx.out.print(
            ctx.t(
                "From {sender}: {events} new event(s), {blobs} new file(s)",
                sender=rep.sender,
                events=rep.new_events,
                blobs=rep.new_blobs,
            ),
            highlight=False,
        )
        if rep.shredded:
            ctx.out.print(
                ctx.t(
                    "{count} file(s) destroyed here too: they were shredded on another device",
                    count=rep.shredded,
                ),
                highlight=False,
            )
    for err in outcome.damaged:
        ctx.err.print(str(err), highlight=False)
    for name, need, absent in outcome.incomplete:
        ctx.err.print(
            ctx.t(
                "bundle {bundle} is incomplete: {need} more part(s) needed, from parts {missing}",
                bundle=name,
                need=need,
                missing=", ".join(absent),
            ),
            highlight=False,
        )


@bundle_app.command("receipt")
def receipt_cmd(
    context: typer.Context,
    sender: Annotated[str | None, typer.Option("--sender", help="Sender vault id.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the text here.")] = None,
    qr: Annotated[Path | None, typer.Option("--qr", help="Also draw a QR code (.png).")] = None,
    short: Annotated[
        bool, typer.Option("--short", help="One SMS (about 120 characters); sender must know us.")
    ] = False,
) -> None:
    """Sign a receipt of what this vault holds from a sender (SMS or QR sized)."""
    ctx: Ctx = context.obj
    with open_vault(ctx) as vault:
        text = run_guarded(ctx, service.make_receipt, vault, sender, short=short)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    if qr is not None:
        import segno

        segno.make(text, error="l").save(str(qr), scale=4)
    ctx.out.print(text, highlight=False, end="")


@bundle_app.command("ack")
def ack_cmd(
    context: typer.Context,
    receipt: Annotated[Path, typer.Argument(help="A receipt file from a recipient.")],
    json_out: JsonOpt = False,
) -> None:
    """Check a recipient's receipt; later exports to it start after what it holds."""
    ctx = command_ctx(context, json_out)
    text = run_guarded(ctx, receipts.read_text, receipt)
    with open_vault(ctx) as vault:
        done = run_guarded(ctx, service.ack, vault, text)
    if ctx.json:
        ctx.emit_json(done)
        return
    ctx.out.print(
        ctx.t(
            "Device {device} holds our first {size} events unchanged",
            device=done["receiver"],
            size=done["size"],
        ),
        highlight=False,
    )


@bundle_app.command("age-identity")
def age_identity_cmd(context: typer.Context) -> None:
    """Print this device's age identity (secret!) to open bundles with the age tool."""
    from athar.sync import agekeys

    ctx: Ctx = context.obj
    with open_vault(ctx) as vault:
        typer.echo(agekeys.identity_string(vault.keys.identity.encryption_secret))


@device_app.command("id")
def device_id_cmd(context: typer.Context, json_out: JsonOpt = False) -> None:
    """This device's public key and age recipient, for others to enrol it."""
    ctx: Ctx = context.obj
    with open_vault(ctx) as vault:
        data = service.card(vault)
    if json_out:
        ctx.emit_json(data)
    else:
        ctx.out.print(f"{data['fingerprint']}\n{data['key']}\n{data['age_recipient']}")


@device_app.command("enrol")
def enrol_cmd(
    context: typer.Context,
    key: Annotated[str, typer.Argument(help="The device's public key (base64).")],
    recipient: Annotated[str, typer.Argument(help="The device's age recipient (age1…).")],
    name: Annotated[str, typer.Option("--name", help="A name for it.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="It may enrol and revoke.")] = False,
) -> None:
    """Trust a device: a signed event that travels to every other device."""
    ctx: Ctx = context.obj
    with open_vault(ctx) as vault:
        dev = run_guarded(ctx, service.enrol, vault, key, recipient, name, admin)
    ctx.out.print(ctx.t("Enrolled {device}", device=dev.fingerprint), highlight=False)


@device_app.command("revoke")
def revoke_cmd(
    context: typer.Context,
    device: Annotated[str, typer.Argument(help="Fingerprint or name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
) -> None:
    """Stop trusting a device's events from now on (earlier ones stay valid)."""
    ctx: Ctx = context.obj
    with open_vault(ctx) as vault:
        dev = run_guarded(ctx, service.revoke, vault, device, reason)
    ctx.out.print(ctx.t("Revoked {device}", device=dev.fingerprint), highlight=False)


@device_app.command("rotate")
def rotate_cmd(context: typer.Context, json_out: JsonOpt = False) -> None:
    """Give this device new keys; the old key signs its own retirement. What it signed
    before stays valid; what it signs from now on is refused wherever the news arrives."""
    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault:
        link = run_guarded(ctx, rotation.rotate, vault)
        card = service.card(vault)
    data = {"old": fingerprint(link.old), "after_dseq": link.after, **card}
    if ctx.json:
        ctx.emit_json(data)
        return
    ctx.out.print(
        ctx.t(
            "Rotated: {old} is retired, this device is now {new}. Send a bundle to the "
            "other devices so they learn it; bundles already sent to the old key "
            "cannot be opened here any more and must be sent again.",
            old=data["old"],
            new=card["fingerprint"],
        ),
        highlight=False,
    )


@device_app.command("list")
def list_cmd(context: typer.Context, json_out: JsonOpt = False) -> None:
    """The devices this vault knows, and which are revoked."""
    ctx: Ctx = context.obj
    with open_vault(ctx) as vault:
        devices = [d.to_json() for d in service.members(vault).devices.values()]
    if json_out:
        ctx.emit_json(devices)
        return
    for d in devices:
        state = ctx.t("revoked") if d["revoked_after"] is not None else ""
        if d["rotated_after"] is not None:
            state += " " + ctx.t("retired (rotated)")
        admin = ctx.t("admin") if d["admin"] else ""
        ctx.out.print(f"{d['fingerprint']}  {d['name']}  {admin} {state}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(bundle_app, name="bundle")
    app.add_typer(device_app, name="device")
