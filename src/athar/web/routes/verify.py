"""The verification queue and verdicts: pages and API over ``athar.web.verifyview``,
which calls the same service as ``athar verdict`` and ``athar queue``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from starlette.requests import Request

from athar.errors import AtharError, InputError
from athar.web import forms, verifyview
from athar.web.auth import Principal, authorize, state_of
from athar.web.render import render, speaker_for
from athar.web.routes.api import json_body
from athar.web.routes.common import multi, page_number, posted
from athar.web.state import State

router = APIRouter()
QUEUE_PAGE = 100  # rows per page of the queue


def item_context(
    request: Request,
    principal: Principal,
    state: State,
    panel: verifyview.Panel,
    values: dict[str, str] | None = None,
    corroborating: str = "",
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What item.html needs for the verification panel (shared with the media page)."""
    speaker = speaker_for(request, principal)
    errors = errors or {}
    vocab = state.records.vocab
    controls = forms.controls(
        verifyview.KIND, vocab, speaker, panel.values if values is None else values, errors
    )
    status = panel.values.get("status", verifyview.UNVERIFIED)
    return {
        "panel": panel,
        "controls": [c for c in controls if c.path in verifyview.FORM_FIELDS],
        "status_label": vocab.label("verification_status", status, speaker.lang),
        "corroborating_text": corroborating or " ".join(i.id for i in panel.corroborating),
        "similar_error": speaker.error(panel.similar_error) if panel.similar_error else None,
        "described": verifyview.description(panel.described, speaker.lang),
        "errors": errors,
    }


@router.get("/verification", include_in_schema=False)
async def queue_page(request: Request) -> Response:
    principal = authorize(request, "read")
    state = state_of(request)
    speaker = speaker_for(request, principal)
    status = request.query_params.get("status", "")
    error = None
    rows: list[verifyview.QueueRow] = []
    try:
        rows = await state.worker.run(verifyview.queue, state, status or None)
    except AtharError as exc:
        error = speaker.error(exc)
    vocab = state.records.vocab
    page = page_number(request)
    return render(
        request,
        "verification.html",
        principal,
        {
            "rows": rows[page * QUEUE_PAGE : (page + 1) * QUEUE_PAGE],
            "total": len(rows),
            "page": page,
            "has_next": len(rows) > (page + 1) * QUEUE_PAGE,
            "page_query": urlencode({"status": status}),
            "status": status,
            "error": error,
            "statuses": [
                (t, term.label(speaker.lang))
                for t, term in vocab.terms["verification_status"].items()
            ],
            "label": lambda term: vocab.label("verification_status", term, speaker.lang),
        },
        status=400 if error else 200,
    )


@router.post("/media/{item_id}/verify", include_in_schema=False)
async def verify_form(request: Request, item_id: str) -> Response:
    principal, form, state = await posted(request, "verify")
    speaker = speaker_for(request, principal)
    values: dict[str, str] = {}
    corroborating = str(form.get("corroborating", ""))[: forms.MAX_FIELD]
    try:
        values = forms.read_form(verifyview.KIND, multi(form))
        values.pop("item", None)
        await state.worker.run(
            lambda: verifyview.decide(state, item_id, values, corroborating, principal.user.account)
        )
    except AtharError as exc:
        panel = await state.worker.run(verifyview.panel, state, item_id)
        from athar.web.routes.media import kind_of_media

        context = item_context(
            request,
            principal,
            state,
            panel,
            values,
            corroborating,
            {exc.field or "_": speaker.error(exc)},
        )
        context.update(item=panel.item, kind=kind_of_media(panel.item.media_type))
        return render(request, "item.html", principal, context, status=400)
    return RedirectResponse(f"/media/{item_id}#verification", status_code=303)


@router.get("/api/verification")
async def api_queue(
    request: Request, status: str | None = None, offset: int = 0, limit: int = 500
) -> dict[str, Any]:
    """Files with their verification status, latest change first; `offset`/`limit` page
    through a long queue (`total` says how many there are)."""
    authorize(request, "read")
    if offset < 0 or not 1 <= limit <= 5000:
        raise InputError("offset must be 0 or more and limit between 1 and 5000")
    state = state_of(request)
    rows = await state.worker.run(verifyview.queue, state, status or None)
    page = rows[offset : offset + limit]
    return {"items": [r.to_json() for r in page], "total": len(rows), "offset": offset}


@router.get("/api/verification/{item_id}")
async def api_get(request: Request, item_id: str) -> dict[str, Any]:
    """One file's verification record, corroborating files and near-copies."""
    authorize(request, "media.view")
    state = state_of(request)
    panel = await state.worker.run(verifyview.panel, state, item_id)
    speaker = speaker_for(request, None)
    return {
        "item": panel.item.id,
        "record": panel.view.to_json() if panel.view else None,
        "status": panel.values.get("status", verifyview.UNVERIFIED),
        "corroborating": [i.id for i in panel.corroborating],
        "similar": [s.to_json() for s in panel.similar],
        "similar_error": speaker.error(panel.similar_error) if panel.similar_error else None,
    }


@router.post("/api/verification/{item_id}")
async def api_decide(request: Request, item_id: str) -> dict[str, Any]:
    """{"fields": {"status": "verified", "check.date": "consistent", …},
    "corroborating": [item ids]}: only the named fields change."""
    body = await json_body(request)
    principal = authorize(request, "verify", None, unsafe=True)
    state = state_of(request)
    fields = body.get("fields", {})
    if not isinstance(fields, dict):
        raise InputError("expected a JSON object").at("fields")
    others = body.get("corroborating", [])
    if not isinstance(others, list):
        raise InputError("expected a list of item ids").at("corroborating")
    raw = {str(k): str(v) for k, v in fields.items()}
    text = " ".join(str(o) for o in others)
    rid, changed = await state.worker.run(
        lambda: verifyview.decide(state, item_id, raw, text, principal.user.account, partial=True)
    )
    return {"ok": True, "record": rid, "changed": changed}
