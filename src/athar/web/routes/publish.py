"""The publisher's confirmation page: every public copy shown before it can go out.

A face detector misses faces, so `athar publish site` carries only copies a person has
confirmed. This page lists the copies awaiting that look, shows each one as it would be
published (decrypted from the vault in memory, sent with no-store; nothing written to
disk), says what was done to it, and records the decision as a signed event through
athar.publish.confirm, with the acting account. A missed face is fixed by naming a region
to hide: a new copy is made (off the vault thread; it can take a while for a video) and
the old one is rejected as superseded.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.requests import Request

from athar.errors import AtharError, InputError
from athar.publish import confirm as service
from athar.publish.copy import copy_bytes, kept_item
from athar.publish.faces import Box
from athar.web.auth import Principal, authorize, state_of
from athar.web.render import render, speaker_for
from athar.web.routes.api import json_body
from athar.web.routes.common import posted
from athar.web.routes.media import RAW_CSP
from athar.web.state import State

router = APIRouter()
PERMISSION = "publish"
MAX_SHOWN = 40  # a card is ~3 KiB of HTML: the page stays under 150 KB on a slow link


def actor(principal: Principal) -> service.Actor:
    return service.Actor(principal.user.account or None, principal.user.role)


def _status(value: str | None) -> str:
    return value if value in (*service.STATUSES, "all") else service.PENDING


def _gather(state: State, status: str) -> dict[str, Any]:
    """Copies to show, newest first, with their kept file and their decisions (vault thread)."""
    states = service.copy_states(state.vault)
    items = state.items()
    counts = {s: sum(1 for c in states if c.status == s) for s in service.STATUSES}
    chosen = [c for c in reversed(states) if status == "all" or c.status == status]
    shown = chosen[:MAX_SHOWN]
    kept = {c.event: kept_item(c.copy, items) for c in shown}
    return {"copies": shown, "kept": kept, "counts": counts, "total": len(chosen)}


async def _page(
    request: Request,
    principal: Principal,
    status: str,
    error: str | None = None,
    code: int = 200,
) -> Response:
    state = state_of(request)
    data = await state.worker.run(_gather, state, status)
    names = state.accounts.names()
    context = {**data, "status": status, "statuses": service.STATUSES, "names": names}
    return render(request, "publish.html", principal, {**context, "error": error}, status=code)


@router.get("/publish", include_in_schema=False)
async def publish_page(request: Request, status: str | None = None) -> Response:
    principal = authorize(request, PERMISSION)
    return await _page(request, principal, _status(status))


@router.get("/publish/{copy_id}/copy", include_in_schema=False)
async def copy_file(request: Request, copy_id: str) -> Response:
    """The public copy's bytes, decrypted in memory and checked against its recorded hash."""
    authorize(request, PERMISSION)
    state = state_of(request)

    def read() -> tuple[bytes, str]:
        copy = service.find_copy(service.copy_states(state.vault), copy_id)
        items = state.items()
        kept = kept_item(copy.copy, items)
        data = copy_bytes(state.vault, copy.copy, items)
        return data, kept.media_type if kept else "application/octet-stream"

    data, media_type = await state.worker.run(read)
    if not media_type.startswith(("image/", "video/")):
        media_type = "application/octet-stream"
    return Response(
        data,
        media_type=media_type,
        headers={
            "cache-control": "no-store",
            "content-security-policy": RAW_CSP,
            "content-disposition": "inline",
        },
    )


async def _decide(request: Request, copy_id: str, action: str) -> Response:
    principal, form, state = await posted(request, PERMISSION)
    status = _status(str(form.get("back", "")))
    who = actor(principal)
    try:
        if action == "confirm":
            await state.worker.run(service.confirm, state.vault, copy_id, who)
        elif action == "reject":
            reason = str(form.get("reason", ""))
            await state.worker.run(service.reject, state.vault, copy_id, reason, who)
        else:
            region = _region(form)
            job = await state.worker.run(
                lambda: service.prepare_remake(state.vault, copy_id, region, state.items())
            )
            result = await run_in_threadpool(job.make)
            await state.worker.run(service.finish_remake, state.vault, job, result, who)
    except AtharError as exc:
        message = speaker_for(request, principal).error(exc)
        return await _page(request, principal, status, message, 400)
    return RedirectResponse(f"/publish?status={status}", status_code=303)


def _region(form: Any) -> Box:
    values = []
    for key in ("x", "y", "w", "h"):
        raw = str(form.get(key, "")).strip()
        try:
            values.append(int(raw))
        except ValueError:
            raise InputError("{field} must be a whole number of pixels", field=key).at(
                key
            ) from None
    x, y, w, h = values
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise InputError(
            "a region is x,y,w,h in pixels, e.g. 10,20,200,150: {value}",
            value=",".join(str(v) for v in values),
        ).at("x")
    return Box(x, y, w, h)


@router.post("/publish/{copy_id}/confirm", include_in_schema=False)
async def confirm_copy(request: Request, copy_id: str) -> Response:
    return await _decide(request, copy_id, "confirm")


@router.post("/publish/{copy_id}/reject", include_in_schema=False)
async def reject_copy(request: Request, copy_id: str) -> Response:
    return await _decide(request, copy_id, "reject")


@router.post("/publish/{copy_id}/remake", include_in_schema=False)
async def remake_copy(request: Request, copy_id: str) -> Response:
    return await _decide(request, copy_id, "remake")


# -- the same through the API --------------------------------------------------------
def _summary(copy: service.CopyState, names: dict[str, str]) -> dict[str, Any]:
    out = copy.to_json()
    out["decisions"] = [{**d, "user_name": names.get(str(d.get("user")))} for d in copy.decisions]
    return out


@router.get("/api/publish/copies")
async def api_copies(request: Request, status: str | None = None) -> dict[str, Any]:
    """Public copies and their confirmation status (pending, confirmed, rejected)."""
    authorize(request, PERMISSION)
    state = state_of(request)
    states = await state.worker.run(service.copy_states, state.vault)
    names = state.accounts.names()
    chosen = [c for c in states if status is None or c.status == status]
    return {"copies": [_summary(c, names) for c in chosen]}


_REASON = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"reason": {"type": "string"}},
                    "required": ["reason"],
                }
            }
        },
    }
}


@router.post("/api/publish/copies/{copy_id}/confirm")
async def api_confirm(request: Request, copy_id: str) -> dict[str, Any]:
    """Confirm a public copy after looking at it: it may go on the site."""
    principal = authorize(request, PERMISSION, None, unsafe=True)
    state = state_of(request)
    result = await state.worker.run(service.confirm, state.vault, copy_id, actor(principal))
    return {"ok": True, **result}


@router.post("/api/publish/copies/{copy_id}/reject", openapi_extra=_REASON)
async def api_reject(request: Request, copy_id: str) -> dict[str, Any]:
    """Reject a public copy, with the reason: it will never be published."""
    body = await json_body(request)
    principal = authorize(request, PERMISSION, None, unsafe=True)
    state = state_of(request)
    reason = str(body.get("reason", ""))
    result = await state.worker.run(service.reject, state.vault, copy_id, reason, actor(principal))
    return {"ok": True, **result}
