"""Record commands: new, edit, delete, show, list, search, link, history, import, export,
rebuild, fields, vocab. Each parses, calls athar.records, renders."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from athar.cli.context import Ctx, command_ctx, open_vault, run_guarded
from athar.errors import AtharError, InputError
from athar.i18n import translate
from athar.records import csvimport, export, schema
from athar.records.formats import value_text
from athar.records.search import Filters
from athar.records.service import Records, RecordView
from athar.records.validate import record_type

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Assignments = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="FIELD=VALUE...", help='Field values, e.g. title.ar="قصف السوق" date=2017-03-12'
    ),
]
TypeArg = Annotated[
    str,
    typer.Argument(
        metavar="TYPE", help="incident, person, source, testimony, claim, missing or status"
    ),
]


@contextlib.contextmanager
def open_records(ctx: Ctx) -> Iterator[Records]:
    with open_vault(ctx) as vault:
        service = run_guarded(ctx, Records, vault, ctx.store)
        try:
            yield service
        finally:
            service.close()


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise InputError("expected FIELD=VALUE, not {item}", item=item)
        out[path.strip()] = value
    return out


def _saved(ctx: Ctx, changed: bool) -> None:
    if ctx.json:
        ctx.emit_json({"ok": True, "changed": changed})
    else:
        ctx.out.print(ctx.t("Saved") if changed else ctx.t("Nothing changed"))


def _when(clock: str) -> str:
    ms = int(clock.split("|")[0].split(".")[0])
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def new(
    context: typer.Context,
    type_name: TypeArg,
    values: Assignments = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a record: athar new incident title.ar="…" date=2017-03-12 …"""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records:
        raw = run_guarded(ctx, parse_assignments, values)
        record_id = run_guarded(ctx, records.create, type_name, raw)
    if ctx.json:
        ctx.emit_json({"ok": True, "id": record_id})
    else:
        ctx.out.print(ctx.t("Created {id}", id=record_id))


def edit(
    context: typer.Context,
    record_id: Annotated[str, typer.Argument(metavar="ID")],
    values: Assignments = None,
    json_out: JsonOpt = False,
) -> None:
    """Change fields of a record; FIELD= (nothing after =) clears a field."""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records:
        raw = run_guarded(ctx, parse_assignments, values)
        if not raw:
            raise ctx.fail(InputError("nothing to change: give FIELD=VALUE"))
        changed = run_guarded(ctx, records.update, record_id, raw)
    _saved(ctx, changed)


def delete(
    context: typer.Context,
    record_id: Annotated[str, typer.Argument(metavar="ID")],
    restore: Annotated[
        bool, typer.Option("--restore", help="Bring a deleted record back.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Hide a record (its history stays in the ledger); --restore brings it back."""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records:
        changed = run_guarded(ctx, records.delete, record_id, None, restore)
    _saved(ctx, changed)


def link(
    context: typer.Context,
    src: Annotated[str, typer.Argument(metavar="ID")],
    rel: Annotated[
        str,
        typer.Argument(metavar="RELATION", help="victim, source, testimony, claim, media, related"),
    ],
    dst: Annotated[str, typer.Argument(metavar="OTHER_ID")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the link.")] = False,
    attrs: Annotated[
        list[str] | None,
        typer.Option("--attr", help="KEY=VALUE noted on the link, e.g. role=killed"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Relate two records (or a record and a vault item): athar relate inc-… victim per-…"""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records:
        extra = run_guarded(ctx, parse_assignments, attrs)
        changed = run_guarded(ctx, records.link, src, rel, dst, present=not remove, attrs=extra)
    _saved(ctx, changed)


def _render_value(ctx: Ctx, records: Records, spec: schema.Field | None, value: Any) -> str:
    if spec is None:
        return str(value)
    if spec.vocabulary:
        terms = value if isinstance(value, list) else [value]
        separator = "، " if ctx.lang == "ar" else ", "
        return separator.join(records.vocab.label(spec.vocabulary, t, ctx.lang) for t in terms)
    return value_text(spec, value)


def _print_record(ctx: Ctx, records: Records, view: RecordView) -> None:
    kind = schema.TYPES[view.type]
    state = f" [red]({ctx.t('deleted')})[/]" if view.deleted else ""
    ctx.out.print(f"[bold]{view.id}[/]  {ctx.t(kind.label)}{state}", highlight=False)
    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="dim")
    table.add_column()
    for path, spec in kind.fields.items():
        if path in view.data:
            table.add_row(path, _render_value(ctx, records, spec, view.data[path]))
    ctx.out.print(table)
    others = [lk["dst"] if lk["direction"] == "out" else lk["src"] for lk in view.links]
    titles = records.titles(others + [c["id"] for c in view.children])
    for lk, other in zip(view.links, others, strict=True):
        arrow = "→" if lk["direction"] == "out" else "←"
        attrs = " ".join(f"{k}={v}" for k, v in lk["attrs"].items())
        ctx.out.print(
            f"  {arrow} {lk['rel']}: {other}  {titles.get(other, '')} {attrs}".rstrip(),
            highlight=False,
        )
    for child in view.children:
        label = (
            _render_value(ctx, records, schema.TYPES["status"].fields["status"], child["title"])
            if child["type"] == "status"
            else child["title"]
        )
        ctx.out.print(
            f"  • {child['type']} {child['id']}: {child['date'] or ''} {label}", highlight=False
        )
    ctx.out.print(
        f"[dim]{ctx.t('created')} {_when(view.created)} · "
        f"{ctx.t('updated')} {_when(view.updated)} · {view.author}[/]",
        highlight=False,
    )


def show_record(ctx: Ctx, ident: str) -> None:
    with open_records(ctx) as records:
        view = run_guarded(ctx, records.get, ident)
        if ctx.json:
            ctx.emit_json(view.to_json())
        else:
            _print_record(ctx, records, view)


FilterFrom = Annotated[
    str | None, typer.Option("--from", help="Earliest date (2017, 2017-03, 2017-03-12).")
]
FilterTo = Annotated[str | None, typer.Option("--to", help="Latest date.")]
FilterPlace = Annotated[
    str | None, typer.Option("--place", help="Place or area name (any spelling of it).")
]
FilterViolation = Annotated[
    str | None, typer.Option("--violation", help="Violation type (id or label).")
]
FilterStatus = Annotated[str | None, typer.Option("--status", help="Person status (id or label).")]
Limit = Annotated[int, typer.Option("--limit", help="At most this many results.")]
Offset = Annotated[int, typer.Option("--offset", help="Skip this many results.")]


def _results(ctx: Ctx, records: Records, rows: list[dict[str, Any]]) -> None:
    if ctx.json:
        ctx.emit_json(
            [
                {k: v for k, v in r.items() if k != "updated"} | {"deleted": bool(r["deleted"])}
                for r in rows
            ]
        )
        return
    table = Table(show_edge=False)
    for col in ("id", "type", "date", "title", "status"):
        table.add_column(ctx.t(col))
    status_spec = schema.TYPES["status"].fields["status"]
    for r in rows:
        date = r["date_start"] or ""
        if r["date_end"] and r["date_end"] != r["date_start"]:
            date += f"…{r['date_end']}"
        status = _render_value(ctx, records, status_spec, r["status"]) if r["status"] else ""
        table.add_row(r["id"], ctx.t(schema.TYPES[r["type"]].label), date, r["title"] or "", status)
    ctx.out.print(table)
    if not rows:
        ctx.out.print(ctx.t("No records found"))


def list_records(
    context: typer.Context,
    type_name: Annotated[str | None, typer.Argument(metavar="[TYPE]")] = None,
    date_from: FilterFrom = None,
    date_to: FilterTo = None,
    place: FilterPlace = None,
    violation: FilterViolation = None,
    status: FilterStatus = None,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted records.")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
    json_out: JsonOpt = False,
) -> None:
    """List records, newest first, with filters."""
    ctx = command_ctx(context, json_out)
    filters = Filters(type_name, date_from, date_to, place, violation, status, deleted)
    with open_records(ctx) as records:
        rows = run_guarded(ctx, records.find, None, filters, limit, offset)
        _results(ctx, records, rows)


def search(
    context: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            metavar="WORDS", help="Words in Arabic or English; end a word with * for a prefix."
        ),
    ],
    type_name: Annotated[str | None, typer.Option("--type", help="Only this record type.")] = None,
    date_from: FilterFrom = None,
    date_to: FilterTo = None,
    place: FilterPlace = None,
    violation: FilterViolation = None,
    status: FilterStatus = None,
    limit: Limit = 50,
    offset: Offset = 0,
    json_out: JsonOpt = False,
) -> None:
    """Search all records; Arabic spelling variants (hamza, ة/ه, ى/ي, diacritics) match."""
    ctx = command_ctx(context, json_out)
    filters = Filters(type_name, date_from, date_to, place, violation, status)
    with open_records(ctx) as records:
        rows = run_guarded(ctx, records.find, query, filters, limit, offset)
        _results(ctx, records, rows)


def history(
    context: typer.Context,
    record_id: Annotated[str, typer.Argument(metavar="ID")],
    json_out: JsonOpt = False,
) -> None:
    """Every change to a record: when, which device, what — and which values stand."""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records:
        entries = run_guarded(ctx, records.history, record_id)
        kind = schema.TYPES.get(records.get(record_id).type)
    if ctx.json:
        ctx.emit_json(entries)
        return
    for e in entries:
        who = e["device"] + (f" ({e['user']})" if e["user"] else "")
        ctx.out.print(
            f"[bold]{_when(e['clock'])}[/]  {e['kind']}  #{e['seq']}  {who}", highlight=False
        )
        if "import" in e:
            source = e["import"]
            ctx.out.print(
                "   "
                + ctx.t(
                    "imported from {file}, line {line}",
                    file=source["file"],
                    line=source.get("line"),
                ),
                highlight=False,
            )
        for path, change in e.get("fields", {}).items():
            mark = "✓" if change["current"] else "·"
            spec = kind.fields.get(path) if kind else None
            value = (
                "∅"
                if change["value"] is None
                else _render_value(ctx, records, spec, change["value"])
            )
            ctx.out.print(f"   {mark} {path} = {value}", highlight=False)
        if "link" in e:
            lk = e["link"]
            sign = "+" if lk["present"] else "−"
            ctx.out.print(f"   {sign} {lk['src']} {lk['rel']} {lk['dst']}", highlight=False)
    ctx.out.print(f"[dim]✓ {ctx.t('current value')}  · {ctx.t('superseded')}[/]")


def import_cmd(
    context: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="FILE.csv")],
    type_name: Annotated[
        str, typer.Option("--type", help="Record type of every row: person, incident, …")
    ],
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="COLUMN=FIELD for a column named otherwise (repeatable)."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="A column to skip (repeatable).")
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="The file's encoding (default: UTF-8, else Windows-1256)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and report; change nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Import a CSV file of records: all rows or none (docs/import-format.md)."""
    ctx = command_ctx(context, json_out)
    maps = run_guarded(
        ctx, parse_assignments, [m for item in mapping or [] for m in item.split(",")]
    )
    with open_records(ctx) as records, ctx.progress("Checking rows", count=True) as bar:
        report = run_guarded(
            ctx,
            csvimport.import_csv,
            records,
            path,
            type_name,
            mapping=maps,
            ignore=ignore or [],
            encoding=encoding,
            dry_run=dry_run,
            progress=bar,
        )
    problems = [
        {"line": p.line, "column": p.column, "message": translate(p.template, ctx.lang, **p.params)}
        for p in report.problems
    ]
    if ctx.json:
        ctx.emit_json({"ok": not problems, **report.summary(), "problem_list": problems})
    else:
        for p in problems:
            where = ctx.t("line {line}", line=p["line"]) + (
                f", {p['column']}" if p["column"] else ""
            )
            ctx.err.print(f"[red]{where}:[/] {p['message']}", highlight=False)
        summary = report.summary()
        if problems:
            ctx.err.print(
                ctx.t("{problems} problems in {rows} rows; nothing was imported", **summary)
            )
        elif dry_run:
            ctx.out.print(
                ctx.t(
                    "Dry run: {rows} rows are fine ({new} new, {updated} changed, "
                    "{unchanged} unchanged); nothing was imported",
                    **summary,
                )
            )
        else:
            ctx.out.print(
                ctx.t(
                    "Imported {rows} rows: {new} new, {updated} changed, {unchanged} unchanged",
                    **summary,
                )
            )
    if problems:
        raise typer.Exit(InputError.exit_code)


def export_cmd(
    context: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="csv, json or geojson")] = "json",
    type_name: Annotated[
        str | None, typer.Option("--type", help="Only this record type (required for csv).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of standard output.")
    ] = None,
    include_private: Annotated[
        bool,
        typer.Option(
            "--include-private", help="Also export private fields (contacts, interviewers)."
        ),
    ] = False,
) -> None:
    """Export records as CSV, JSON or GeoJSON (private fields left out by default)."""
    ctx = command_ctx(context, False)
    with open_records(ctx) as records:
        if out is None:
            count = run_guarded(
                ctx, export.export, records, fmt, sys.stdout, type_name, include_private
            )
        else:
            from athar.vault.fsutil import atomic_write_text

            def write() -> int:
                with atomic_write_text(out) as handle:
                    return export.export(records, fmt, handle, type_name, include_private)

            count = run_guarded(ctx, write)
            ctx.err.print(ctx.t("Exported {count} records to {path}", count=count, path=str(out)))


def rebuild(context: typer.Context, json_out: JsonOpt = False) -> None:
    """Recreate the records projection from the ledger (the ledger is the truth)."""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records, ctx.progress("Rebuilding", count=True) as bar:
        stats = run_guarded(ctx, records.rebuild, bar)
        counts = records.counts()
    if ctx.json:
        ctx.emit_json(
            {"ok": True, "events": stats.applied, "ignored": stats.ignored, "records": counts}
        )
    else:
        ctx.out.print(ctx.t("Rebuilt from {events} events", events=stats.applied))
        for kind, n in sorted(counts.items()):
            ctx.out.print(f"  {kind}: {n}")
        if stats.ignored:
            ctx.err.print(ctx.t("{n} malformed events were skipped", n=stats.ignored))


def fields(
    context: typer.Context,
    type_name: TypeArg,
    json_out: JsonOpt = False,
) -> None:
    """The fields of a record type, their kinds and vocabularies."""
    ctx = command_ctx(context, json_out)
    kind = run_guarded(ctx, record_type, type_name)
    rows: list[dict[str, Any]] = [
        {
            "field": spec.path,
            "kind": spec.kind,
            "vocabulary": spec.vocabulary or spec.target,
            "label": spec.label,
            "private": spec.private,
        }
        for spec in kind.fields.values()
    ]
    if ctx.json:
        ctx.emit_json(
            {"type": kind.name, "fields": rows, "links": kind.links, "required": kind.required}
        )
        return
    table = Table(show_edge=False)
    for col in ("field", "kind", "vocabulary", "label"):
        table.add_column(ctx.t(col))
    for r in rows:
        label = ctx.t(r["label"]) + (f" [red]({ctx.t('private')})[/]" if r["private"] else "")
        table.add_row(r["field"], r["kind"], r["vocabulary"] or "", label)
    ctx.out.print(table)
    ctx.out.print(
        ctx.t("Links: {links}", links=", ".join(f"{k} → {v}" for k, v in kind.links.items()) or "-")
    )


def vocab(
    context: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[VOCABULARY]")] = None,
    add: Annotated[str | None, typer.Option("--add", help="Add a term with this id.")] = None,
    ar: Annotated[str | None, typer.Option("--ar", help="Arabic label of the new term.")] = None,
    en: Annotated[str | None, typer.Option("--en", help="English label of the new term.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List vocabularies, the terms of one, or add a term (a signed event)."""
    ctx = command_ctx(context, json_out)
    with open_records(ctx) as records:
        if add:
            if not name:
                raise ctx.fail(InputError("name the vocabulary to add the term to"))
            run_guarded(ctx, records.add_term, name, add, ar or "", en or "")
        vocabs = records.vocab
        if name and name not in vocabs.terms:
            raise ctx.fail(InputError("unknown vocabulary {name}", name=name))
        data: Any = (
            [t.to_json() for t in vocabs.terms[name].values()]
            if name
            else {n: len(vocabs.terms[n]) for n in vocabs.names()}
        )
    if ctx.json:
        ctx.emit_json(data)
    elif name:
        table = Table(show_edge=False)
        for col in ("id", "ar", "en"):
            table.add_column(col)
        for t in data:
            table.add_row(t["id"], t["ar"], t["en"] + ("" if t["builtin"] else " *"))
        ctx.out.print(table)
    else:
        for n, count in data.items():
            ctx.out.print(f"{n}: {count}")


def register(app: typer.Typer) -> None:
    app.command("new")(new)
    app.command("edit")(edit)
    app.command("delete")(delete)
    app.command("relate")(link)
    app.command("list")(list_records)
    app.command("search")(search)
    app.command("history")(history)
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
    app.command("rebuild")(rebuild)
    app.command("fields")(fields)
    app.command("vocab")(vocab)


__all__ = ["AtharError", "register", "show_record"]
