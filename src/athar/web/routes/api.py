"""The JSON API under /api: what the pages do, for scripts and other tools.

Authenticate with `Authorization: Bearer athar_…` (a token made on the account page) or
with the page session (then unsafe methods need the X-CSRF-Token header). Errors come as
{"ok": false, "error": message in the user's language}.
"""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from starlette.requests import Request

from athar.errors import InputError
from athar.records.export import FORMATS, export
from athar.records.search import Filters
from athar.web.auth import authorize, state_of
from athar.web.ledgerview import event_proof, recent

# The spec says what the API really answers, so that a scan against it (tests/test_web_scan.py)
# can tell a wrong answer from an undocumented one: errors, the bearer scheme, the bodies.
_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["ok", "error"],
                "properties": {
                    "ok": {"const": False},
                    "error": {"type": "string"},
                    "kind": {"type": "string"},
                },
            }
        }
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad input", **_ERROR},
    401: {"description": "login required", **_ERROR},
    403: {"description": "role or CSRF refused", **_ERROR},
}
# Parses the header for the spec only; `authorize` decides (a page session works too).
BEARER = Security(HTTPBearer(auto_error=False, description="an API token, athar_…"))


def _openapi_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_FIELDS = {"fields": {"type": "object", "additionalProperties": {"type": "string"}}}
_LINK = {
    "rel": {"type": "string"},
    "target": {"type": "string"},
    "present": {"type": "boolean"},
    "attrs": {"type": "object", "additionalProperties": {"type": "string"}},
}

router = APIRouter(prefix="/api", responses=ERRORS, dependencies=[BEARER])


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InputError("expected a JSON object") from None
    if not isinstance(body, dict):
        raise InputError("expected a JSON object")
    return body


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = body.get("fields")
    if not isinstance(fields, dict):
        raise InputError("expected a JSON object").at("fields")
    return fields


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    user = authorize(request, "read").user
    return {"name": user.name, "role": user.role, "lang": user.lang}


@router.get("/counts")
async def counts(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    state = state_of(request)
    return {"records": await state.worker.run(state.counts)}


@router.get("/vocabularies")
async def vocabularies(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    vocab = state_of(request).records.vocab
    return {
        name: [term.to_json() for term in terms.values()] for name, terms in vocab.terms.items()
    }


@router.get("/records")
async def find(
    request: Request,
    q: str = "",
    type: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    place: str | None = None,
    violation: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    authorize(request, "read")
    state = state_of(request)
    filters = Filters(type, date_from, date_to, place, violation, status)
    rows = await state.worker.run(state.records.find, q or None, filters, limit, offset)
    return {"records": rows}


@router.get("/records/{record_id}")
async def get(request: Request, record_id: str) -> dict[str, Any]:
    authorize(request, "read")
    state = state_of(request)
    view = await state.worker.run(state.records.get, record_id)
    return view.to_json()


@router.get("/records/{record_id}/history")
async def history(request: Request, record_id: str) -> dict[str, Any]:
    authorize(request, "read")
    state = state_of(request)
    history = await state.worker.run(state.records.history, record_id)
    names = state.accounts.names()  # the ledger names accounts by id; show this team's names
    for entry in history:
        entry["account"] = entry.get("user")
        entry["user"] = names.get(entry.get("user") or "", entry.get("user"))
    return {"history": history}


@router.post(
    "/records/{type_name}", status_code=201, openapi_extra=_openapi_body(_FIELDS, ["fields"])
)
async def create(request: Request, type_name: str) -> dict[str, Any]:
    body = await json_body(request)
    principal = authorize(request, "create", None, unsafe=True)
    state = state_of(request)
    record_id = await state.worker.run(
        state.records.create, type_name, _fields(body), principal.user.account
    )
    return {"ok": True, "id": record_id}


@router.patch("/records/{record_id}", openapi_extra=_openapi_body(_FIELDS, ["fields"]))
async def update(request: Request, record_id: str) -> dict[str, Any]:
    body = await json_body(request)
    principal = authorize(request, "edit", None, unsafe=True)
    state = state_of(request)
    changed = await state.worker.run(
        state.records.update, record_id, _fields(body), principal.user.account
    )
    return {"ok": True, "changed": changed}


@router.post("/records/{record_id}/links", openapi_extra=_openapi_body(_LINK, ["rel", "target"]))
async def link(request: Request, record_id: str) -> dict[str, Any]:
    body = await json_body(request)
    principal = authorize(request, "edit", None, unsafe=True)
    state = state_of(request)
    attrs = body.get("attrs") or {}
    if not isinstance(attrs, dict):
        raise InputError("expected a JSON object").at("attrs")
    changed = await state.worker.run(
        lambda: state.records.link(
            record_id,
            str(body.get("rel", "")),
            str(body.get("target", "")),
            present=bool(body.get("present", True)),
            attrs={str(k): str(v) for k, v in attrs.items()},
            user=principal.user.account,
        )
    )
    return {"ok": True, "changed": changed}


@router.get("/items")
async def items(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    state = state_of(request)
    return {"items": [i.to_json() for i in await state.worker.run(state.items)]}


@router.get("/audit")
async def audit(request: Request, page: int = 0, user: str | None = None) -> dict[str, Any]:
    authorize(request, "audit")
    state = state_of(request)
    names = state.accounts.names()
    entries, size = await state.worker.run(recent, state.vault, max(0, page), 50, user, names)
    return {"size": size, "events": [e.__dict__ for e in entries]}


@router.get("/audit/{seq}/proof")
async def proof(request: Request, seq: int) -> dict[str, Any]:
    authorize(request, "audit")
    state = state_of(request)
    result: dict[str, Any] = await state.worker.run(event_proof, state.vault, seq)
    return result


@router.get("/export/{type_name}")
async def export_records(request: Request, type_name: str, format: str = "geojson") -> Response:
    """Public fields only (private ones are never exported from the web)."""
    authorize(request, "export")
    state = state_of(request)
    if format not in FORMATS:
        raise InputError(
            "unknown export format {fmt}; one of: {formats}", fmt=format, formats=", ".join(FORMATS)
        )

    def run() -> str:
        out = io.StringIO()
        export(state.records, format, out, type_name)
        return out.getvalue()

    media = {"geojson": "application/geo+json", "csv": "text/csv", "json": "application/json"}
    return Response(await state.worker.run(run), media_type=media.get(format, "text/plain"))


__all__ = ["BEARER", "ERRORS", "JSONResponse", "router"]
