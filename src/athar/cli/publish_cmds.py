"""`athar publish …`: public copies, redaction review, custody reports, the report site.
Parses, calls athar.publish, renders. The media and PDF libraries are imported when a
command runs, so other commands do not pay for loading OpenCV or WeasyPrint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from athar.cli.context import Ctx, command_ctx, open_vault, run_guarded
from athar.errors import InputError
from athar.vault.vault import Vault

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
IncludeOpt = Annotated[
    list[str] | None,
    typer.Option("--include", help="An incident to publish (repeatable)."),
]

publish_app = typer.Typer(
    help="Publish safely: public copies, redaction, custody reports, a report site.",
    no_args_is_help=True,
)


@publish_app.command("copy")
def copy_cmd(
    context: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ITEM_ID", help="The original in the vault.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the public copy here (it is kept in the vault)."),
    ] = None,
    blur: Annotated[str, typer.Option("--blur", help="faces (detect and hide) or none.")] = "faces",
    mode: Annotated[str, typer.Option("--mode", help="blur or pixelate.")] = "blur",
    region: Annotated[
        list[str] | None,
        typer.Option("--region", help="Also hide x,y,w,h (pixels; repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a public copy of an image or video: no metadata, faces hidden, provenance signed."""
    from athar.publish.copy import BLUR_CHOICES, MODES, CopyOptions, public_copy
    from athar.publish.faces import parse_region

    ctx = command_ctx(context, json_out)
    if blur not in BLUR_CHOICES:
        raise ctx.fail(InputError("--blur is faces or none, not {value}", value=blur))
    if mode not in MODES:
        raise ctx.fail(InputError("--mode is blur or pixelate, not {value}", value=mode))
    regions = tuple(run_guarded(ctx, parse_region, r) for r in region or [])
    options = CopyOptions(faces=blur == "faces", mode=mode, regions=regions)
    with open_vault(ctx) as vault, ctx.progress("Making the public copy", count=True) as bar:
        result = run_guarded(ctx, public_copy, vault, item_id, out, options, bar)
    if ctx.json:
        ctx.emit_json(result)
        return
    ctx.out.print(
        ctx.t(
            "Wrote {path}: metadata removed, {faces} face(s) and {regions} region(s) hidden",
            path=result["out"] or ctx.t("the vault"),
            faces=result["faces"]["hidden"],
            regions=len(result["regions"]),
        ),
        highlight=False,
    )
    ctx.out.print(
        ctx.t(
            "Recorded as public copy {event}. It awaits confirmation: look at it (athar "
            "serve, page Publish, or the file) and run athar publish confirm {event}; a face "
            "the detector missed stays visible.",
            event=result["event"][:16],
        ),
        highlight=False,
    )


@publish_app.command("copies")
def copies_cmd(
    context: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only copies that are pending, confirmed or rejected."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List public copies and whether a person has confirmed them."""
    from athar.publish.confirm import STATUSES, copy_states

    ctx = command_ctx(context, json_out)
    if status is not None and status not in STATUSES:
        raise ctx.fail(
            InputError("--status is pending, confirmed or rejected, not {value}", value=status)
        )
    with open_vault(ctx) as vault:
        states = run_guarded(ctx, copy_states, vault)
    states = [s for s in states if status is None or s.status == status]
    if ctx.json:
        ctx.emit_json([s.to_json() for s in states])
        return
    if not states:
        ctx.out.print(ctx.t("No public copy."))
        return
    for state in states:
        ctx.out.print(
            ctx.t(
                "{copy}  {status}  of item {original}: {faces} face(s), {regions} region(s) hidden",
                copy=state.event[:16],
                status=ctx.t(state.status),
                original=str(state.copy.get("original", ""))[:12],
                faces=(state.copy.get("faces") or {}).get("hidden", 0),
                regions=len(state.regions),
            ),
            highlight=False,
            markup=False,
        )


@publish_app.command("confirm")
def confirm_cmd(
    context: typer.Context,
    copy_id: Annotated[str, typer.Argument(metavar="COPY_ID", help="The public copy's id.")],
    json_out: JsonOpt = False,
) -> None:
    """Confirm, after looking at it, that a public copy hides everyone and may go out."""
    from athar.publish.confirm import confirm

    ctx = command_ctx(context, json_out)
    _decide(
        ctx,
        lambda vault: confirm(vault, copy_id),
        lambda copy: ctx.t("Confirmed public copy {copy}; it will be on the site.", copy=copy),
    )


@publish_app.command("reject")
def reject_cmd(
    context: typer.Context,
    copy_id: Annotated[str, typer.Argument(metavar="COPY_ID", help="The public copy's id.")],
    reason: Annotated[str, typer.Option("--reason", help="What is wrong with the copy.")],
    json_out: JsonOpt = False,
) -> None:
    """Reject a public copy: it will never be published (make a better one instead)."""
    from athar.publish.confirm import reject

    ctx = command_ctx(context, json_out)
    _decide(
        ctx,
        lambda vault: reject(vault, copy_id, reason),
        lambda copy: ctx.t("Rejected public copy {copy}; it will never be published.", copy=copy),
    )


def _decide(
    ctx: Ctx, decision: Callable[[Vault], dict[str, Any]], done: Callable[[str], str]
) -> None:
    """Record a confirm/reject decision, then say so (*done* words it for the copy)."""
    with open_vault(ctx) as vault:
        result = run_guarded(ctx, decision, vault)
    if ctx.json:
        ctx.emit_json({"ok": True, **result})
        return
    ctx.out.print(done(result["copy"][:16]), highlight=False)


@publish_app.command("review")
def review_cmd(
    context: typer.Context,
    include: IncludeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List protected names found in the free text of records about to be published."""
    from athar.publish.select import chosen_incidents, redactor_for, review
    from athar.records.service import Records

    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault, Records(vault, ctx.store) as records:
        redactor = run_guarded(ctx, redactor_for, records)
        chosen = run_guarded(ctx, chosen_incidents, records, include or [])
        findings = run_guarded(ctx, review, records, redactor, chosen)
    if ctx.json:
        ctx.emit_json([f.to_json(redactor.pseudonyms) for f in findings])
        return
    if not findings:
        ctx.out.print(ctx.t("No protected name found in the records to publish."))
        return
    for finding in findings:
        for hit in finding.hits:
            ctx.out.print(
                ctx.t(
                    "{record} {field}: “{text}” names a protected {type}; it will be "
                    "replaced by {pseudonym}",
                    record=finding.record,
                    field=finding.path,
                    text=hit.text,
                    type=hit.record_type,
                    pseudonym=redactor.pseudonyms.name(hit.record_id, hit.record_type, ctx.lang),
                ),
                highlight=False,
                markup=False,
            )


@publish_app.command("custody")
def custody_cmd(
    context: typer.Context,
    item_id: Annotated[str, typer.Argument(metavar="ITEM_ID", help="The item in the vault.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF.")],
    json_out: JsonOpt = False,
) -> None:
    """Write a chain-of-custody PDF with the item's proof attached."""
    from athar.publish.custody import write_report
    from athar.records.service import Records

    ctx = command_ctx(context, json_out)
    with open_vault(ctx) as vault, Records(vault, ctx.store) as records:
        report = run_guarded(ctx, write_report, vault, records, item_id, out)
    if ctx.json:
        ctx.emit_json({"ok": True, "out": str(out), "sha256": report["item"]["sha256"]})
        return
    ctx.out.print(
        ctx.t(
            "Wrote {path}; its attached proof can be checked with athar check-proof",
            path=str(out),
        ),
        highlight=False,
    )


@publish_app.command("site")
def site_cmd(
    context: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="The folder to write the site to.")],
    include: IncludeOpt = None,
    estimates: Annotated[
        Path | None,
        typer.Option("--estimates", help="The output of athar estimate --json to show."),
    ] = None,
    lang_default: Annotated[
        str, typer.Option("--lang-default", help="The language opened first: ar or en.")
    ] = "ar",
    tiles: Annotated[
        str | None,
        typer.Option("--tiles", help="A map tile URL template (default: no tiles, no requests)."),
    ] = None,
    media: Annotated[
        Path | None,
        typer.Option(
            "--media",
            help="A folder of public copies made before copies were kept in the vault.",
        ),
    ] = None,
    accept_flagged: Annotated[
        bool,
        typer.Option(
            "--accept-flagged", help="Publish even though the review found protected names."
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build the static bilingual report site from the records marked for publication."""
    from athar.publish.site.build import SiteOptions, build_site
    from athar.records.service import Records

    ctx = command_ctx(context, json_out)
    options = SiteOptions(
        include=include or [],
        estimates=estimates,
        lang_default=lang_default,
        tiles=tiles,
        media_dir=media,
        accept_flagged=accept_flagged,
    )
    with (
        open_vault(ctx) as vault,
        Records(vault, ctx.store) as records,
        ctx.progress("Building the site"),
    ):
        summary = run_guarded(ctx, build_site, records, out, options)
    if ctx.json:
        ctx.emit_json(summary)
        return
    ctx.out.print(
        ctx.t(
            "Wrote the site to {path}: {count} incident(s), {media} public media file(s)",
            path=summary["out"],
            count=summary["incidents"],
            media=summary["media"],
        ),
        highlight=False,
    )
    if summary["flagged"]:
        ctx.out.print(
            ctx.t(
                "{count} field(s) named protected people; they were replaced by pseudonyms",
                count=summary["flagged"],
            ),
            highlight=False,
        )
    if summary["media_without_copy"]:
        ctx.out.print(
            ctx.t(
                "{count} media item(s) have no confirmed public copy and were left out",
                count=summary["media_without_copy"],
            ),
            highlight=False,
        )
    for skipped in summary["unconfirmed"]:
        ctx.out.print(
            ctx.t(
                "Skipped public copy {copy} of item {original}: no one has confirmed it yet "
                "(look at it, then athar publish confirm {copy})",
                copy=skipped["copy"][:16],
                original=str(skipped["original"])[:12],
            ),
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.add_typer(publish_app, name="publish")
