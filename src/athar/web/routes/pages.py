"""Dashboard, record lists, details and forms, search, audit and map."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.requests import Request

from athar.errors import AtharError, InputError
from athar.records import schema, summary, textnorm
from athar.records.export import export
from athar.records.search import Filters
from athar.records.service import Records
from athar.records.store import records as records_table
from athar.web import display, forms
from athar.web.auth import Principal, authorize, state_of
from athar.web.ledgerview import event_proof, recent
from athar.web.locale import Speaker
from athar.web.render import render, speaker_for
from athar.web.routes.common import multi, page_number, posted
from athar.web.state import State

router = APIRouter(include_in_schema=False)
PER_PAGE = 50


def kind_of(type_name: str) -> schema.RecordType:
    kind = schema.TYPES.get(type_name)
    if kind is None:
        raise InputError("unknown record type {type}", type=type_name[:20])
    return kind


def awaiting(records: Records, limit: int = 10) -> list[dict[str, Any]]:
    """Incidents not yet graded: the verifiers' queue."""
    out = []
    with records.engine.connect() as conn:
        rows = conn.execute(
            select(records_table.c.id, records_table.c.title, records_table.c.data)
            .where(records_table.c.type == "incident", records_table.c.deleted.is_(False))
            .order_by(records_table.c.rid.desc())
            .limit(500)
        )
        for row in rows:
            if "grading" not in json.loads(row.data):
                out.append({"id": row.id, "title": row.title})
                if len(out) >= limit:
                    break
    return out


@router.get("/")
async def dashboard(request: Request) -> Response:
    principal = authorize(request, "read")
    state = state_of(request)

    def gather() -> dict[str, Any]:
        return {
            "counts": state.counts(),
            "items": len(state.items()),
            "latest": state.records.find(None, Filters(), limit=10),
            "awaiting": awaiting(state.records),
        }

    return render(request, "dashboard.html", principal, await state.worker.run(gather))


def _filters(request: Request, type_name: str | None) -> Filters:
    q = request.query_params
    return Filters(
        type=type_name,
        date_from=q.get("from") or None,
        date_to=q.get("to") or None,
        place=q.get("place") or None,
        violation=q.get("violation") or None,
        status=q.get("status") or None,
    )


@router.get("/records/{type_name}")
async def record_list(request: Request, type_name: str) -> Response:
    principal = authorize(request, "read")
    state = state_of(request)
    kind = kind_of(type_name)
    speaker = speaker_for(request, principal)
    page = page_number(request)
    query = request.query_params.get("q", "")
    error = None
    rows: list[dict[str, Any]] = []
    try:
        rows = await state.worker.run(
            state.records.find,
            query or None,
            _filters(request, kind.name),
            PER_PAGE,
            page * PER_PAGE,
        )
    except AtharError as exc:
        error = speaker.error(exc)
    vocab = state.records.vocab
    return render(
        request,
        "list.html",
        principal,
        {
            "kind": kind,
            "rows": rows,
            "page": page,
            "per_page": PER_PAGE,
            "query": dict(request.query_params),
            "page_query": urlencode(
                [(k, v) for k, v in request.query_params.items() if k != "page"]
            ),
            "error": error,
            "violations": list(vocab.terms["violation"].values()),
            "statuses": list(vocab.terms["person_status"].values()),
        },
        status=400 if error else 200,
    )


def _form_page(
    request: Request,
    principal: Principal,
    state: State,
    kind: schema.RecordType,
    values: dict[str, str],
    errors: dict[str, str],
    action: str,
    record_id: str | None = None,
    status: int = 200,
) -> Response:
    speaker = speaker_for(request, principal)
    return render(
        request,
        "form.html",
        principal,
        {
            "kind": kind,
            "controls": forms.controls(kind, state.records.vocab, speaker, values, errors),
            "action": action,
            "record_id": record_id,
            "errors": errors,
        },
        status=status,
    )


def _restored(state: State, request: Request, path: str) -> dict[str, list[str]] | None:
    restored = state.pending.take(request.query_params.get("restore"))
    if restored is None or restored[0] != path:
        return None
    out: dict[str, list[str]] = {}
    for key, value in restored[1]:
        out.setdefault(key, []).append(value)
    return out


def _error_map(exc: AtharError, speaker: Speaker) -> dict[str, str]:
    field = exc.field or "_"
    message = speaker.t(exc.template, **exc.params)
    return {field: message}


@router.get("/records/{type_name}/new")
async def new_form(request: Request, type_name: str) -> Response:
    principal = authorize(request, "create")
    state = state_of(request)
    kind = kind_of(type_name)
    restored = _restored(state, request, request.url.path)
    values = forms.read_form(kind, restored) if restored else {}
    for key in ("person", "incident", "source"):  # "add a status to this person" links
        if key in kind.fields and request.query_params.get(key):
            values[key] = request.query_params[key]
    return _form_page(request, principal, state, kind, values, {}, request.url.path)


@router.post("/records/{type_name}/new")
async def create(request: Request, type_name: str) -> Response:
    principal, form, state = await posted(request, "create")
    kind = kind_of(type_name)
    speaker = speaker_for(request, principal)
    values: dict[str, str] = {}
    try:
        values = forms.read_form(kind, multi(form))
        raw = {k: v for k, v in values.items() if v}
        record_id = await state.worker.run(
            state.records.create, kind.name, raw, principal.user.account
        )
    except AtharError as exc:
        return _form_page(
            request,
            principal,
            state,
            kind,
            values,
            _error_map(exc, speaker),
            request.url.path,
            status=400,
        )
    return RedirectResponse(f"/r/{record_id}", status_code=303)


@router.get("/r/{record_id}")
async def detail(request: Request, record_id: str) -> Response:
    principal = authorize(request, "read")
    state = state_of(request)

    def gather() -> dict[str, Any]:
        view = state.records.get(record_id)
        others = [link["dst"] if link["direction"] == "out" else link["src"] for link in view.links]
        titles = state.records.titles([o for o in others if "-" in o])
        items = {i.id: i for i in state.items()}
        return {
            "view": view,
            "kind": schema.TYPES[view.type],
            "titles": titles,
            "items": items,
            "history": state.records.history(view.id),
        }

    data = await state.worker.run(gather)
    names = state.accounts.names()  # events name accounts by id; names stay on this server
    for entry in data["history"]:
        entry["user"] = names.get(entry.get("user") or "", entry.get("user"))
    speaker = speaker_for(request, principal)
    view, kind = data["view"], data["kind"]
    data["fields"] = display.rows(kind, view.data, state.records.vocab, speaker)
    data["heading"] = summary.title(kind, view.data) or view.id
    data["vocab"] = state.records.vocab
    return render(request, "detail.html", principal, data)


@router.get("/r/{record_id}/edit")
async def edit_form(request: Request, record_id: str) -> Response:
    principal = authorize(request, "edit")
    state = state_of(request)
    view = await state.worker.run(state.records.get, record_id)
    kind = schema.TYPES[view.type]
    restored = _restored(state, request, request.url.path)
    values = forms.read_form(kind, restored) if restored else forms.current_values(kind, view.data)
    return _form_page(request, principal, state, kind, values, {}, request.url.path, view.id)


@router.post("/r/{record_id}/edit")
async def edit(request: Request, record_id: str) -> Response:
    principal, form, state = await posted(request, "edit")
    view = await state.worker.run(state.records.get, record_id)
    kind = schema.TYPES[view.type]
    speaker = speaker_for(request, principal)
    values: dict[str, str] = {}
    try:
        values = forms.read_form(kind, multi(form))
        changed = forms.changes(forms.current_values(kind, view.data), values)
        if changed:
            await state.worker.run(state.records.update, view.id, changed, principal.user.account)
    except AtharError as exc:
        return _form_page(
            request,
            principal,
            state,
            kind,
            values,
            _error_map(exc, speaker),
            request.url.path,
            view.id,
            status=400,
        )
    return RedirectResponse(f"/r/{view.id}", status_code=303)


@router.post("/r/{record_id}/link")
async def link(request: Request, record_id: str) -> Response:
    principal, form, state = await posted(request, "edit")
    rel = str(form.get("rel", ""))
    target = str(form.get("target", "")).strip()
    present = str(form.get("remove", "")) != "yes"

    def run() -> str:
        source = state.records.resolve(record_id)
        state.records.link(source, rel, target, present=present, user=principal.user.account)
        return source

    return RedirectResponse(f"/r/{await state.worker.run(run)}", status_code=303)


@router.post("/r/{record_id}/victim")
async def add_victim(request: Request, record_id: str) -> Response:
    """A new person, their status and their link to the incident, in one step."""
    principal, form, state = await posted(request, "create")
    user = principal.user.account
    raw = {
        k: str(form.get(k, "")).strip()
        for k in ("name_ar.full", "name_latin.full", "sex", "age")
        if str(form.get(k, "")).strip()
    }
    status = str(form.get("status", "")).strip()

    def run() -> str:
        incident = state.records.get(record_id)
        if incident.type != "incident":
            raise InputError("{id} is not a {target} record", id=incident.id, target="incident")
        person = state.records.create("person", raw, user)
        if status:
            state.records.create(
                "status",
                {"person": person, "status": status, "incident": incident.id},
                user,
            )
        state.records.link(incident.id, "victim", person, user=user)
        return incident.id

    incident_id = await state.worker.run(run)
    return RedirectResponse(f"/r/{incident_id}", status_code=303)


@router.get("/search")
async def search_page(request: Request, q: str = "") -> Response:
    principal = authorize(request, "read")
    state = state_of(request)
    speaker = speaker_for(request, principal)
    error = None
    rows: list[dict[str, Any]] = []
    files: list[Any] = []
    if q.strip():
        try:
            rows = await state.worker.run(state.records.find, q, Filters(), PER_PAGE, 0)
        except AtharError as exc:
            error = speaker.error(exc)
        folded = textnorm.fold(q.strip())
        if folded:
            files = [
                i
                for i in await state.worker.run(state.items)
                if not i.shredded
                and (folded in textnorm.fold(i.name) or folded in textnorm.fold(i.note or ""))
            ][:PER_PAGE]
    return render(
        request,
        "search.html",
        principal,
        {"q": q, "rows": rows, "files": files, "error": error},
    )


@router.get("/audit")
async def audit_page(request: Request, who: str = "") -> Response:
    principal = authorize(request, "audit")
    state = state_of(request)
    page = page_number(request)
    names = state.accounts.names()
    entries, size = await state.worker.run(recent, state.vault, page, PER_PAGE, who or None, names)
    return render(
        request,
        "audit.html",
        principal,
        {"entries": entries, "size": size, "page": page, "per_page": PER_PAGE, "who": who},
    )


@router.get("/audit/proof/{seq}")
async def audit_proof(request: Request, seq: int) -> Response:
    authorize(request, "audit")
    state = state_of(request)
    proof = await state.worker.run(event_proof, state.vault, seq)
    return JSONResponse(
        proof,
        headers={"content-disposition": f'attachment; filename="athar-proof-{seq}.json"'},
    )


def timeline_rows(records: Records, page: int, per_page: int) -> list[dict[str, Any]]:
    """Dated incidents, latest date first (the records search orders by entry, not date)."""
    table = records_table
    with records.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.id, table.c.title, table.c.date_start, table.c.date_end)
            .where(
                table.c.type == "incident",
                table.c.deleted.is_(False),
                table.c.date_start.is_not(None),
            )
            .order_by(table.c.date_start.desc(), table.c.rid.desc())
            .limit(per_page)
            .offset(page * per_page)
        )
        return [dict(r._mapping) for r in rows]


@router.get("/timeline")
async def timeline(request: Request) -> Response:
    principal = authorize(request, "read")
    state = state_of(request)
    page = page_number(request)
    rows = await state.worker.run(timeline_rows, state.records, page, PER_PAGE)
    months: list[tuple[str, list[dict[str, Any]]]] = []
    for row in rows:
        month = str(row["date_start"])[:7]
        if not months or months[-1][0] != month:
            months.append((month, []))
        months[-1][1].append(row)
    return render(
        request,
        "timeline.html",
        principal,
        {"months": months, "page": page, "more": len(rows) == PER_PAGE},
    )


@router.get("/map")
async def map_page(request: Request) -> Response:
    principal = authorize(request, "read")
    settings = state_of(request).settings
    return render(request, "map.html", principal, {"tile_url": settings.tile_url or ""})


@router.get("/map/incidents.geojson")
async def incidents_geojson(request: Request) -> Response:
    authorize(request, "read")
    state = state_of(request)

    def run() -> str:
        out = io.StringIO()
        export(state.records, "geojson", out, "incident")
        return out.getvalue()

    return Response(await state.worker.run(run), media_type="application/geo+json")
