"""The linkage review queue and family tracing: pages and their JSON twins over
``athar.web.linkview``, which calls the services behind ``athar link run``, ``athar link
review`` and ``athar trace``.

Who may do what (``data/roles.json``): reviewing the queue and deciding pairs is
``linkage`` (admin, verifier, analyst: the people who judge evidence); starting a run is
``linkage.run`` (admin, analyst: it takes the machine for a while); tracing is ``trace``
(admin, documenter, verifier, analyst: documenters take the families' reports). Viewers
get none of them: a trace compares every person record at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from starlette.requests import Request

from athar.errors import AtharError, InputError
from athar.linkage import vault, web_api
from athar.linkage.files import parse_decision
from athar.web import linkview
from athar.web.auth import Principal, authorize, state_of
from athar.web.render import render, speaker_for
from athar.web.routes.api import json_body
from athar.web.routes.common import posted

router = APIRouter()
REFRESH_SECONDS = 3  # while a run works, its page reloads itself (no script needed)
MAX_NOTE = 2000


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "0")
    return int(raw) if raw.isdigit() and len(raw) < 7 else 0


def _shown_run(request: Request, principal: Principal) -> linkview.LinkRun:
    """The run whose queue is shown; the first visit after a (re)start begins one, since
    runs are kept in memory only."""
    runs = linkview.runs_of(request)
    run = runs.shown()
    if run is None:
        run = runs.start(state_of(request), principal.user.name)
    return run


@router.get("/linkage", include_in_schema=False)
async def queue_page(request: Request) -> Response:
    principal = authorize(request, "linkage")
    state = state_of(request)
    speaker = speaker_for(request, principal)
    runs = linkview.runs_of(request)
    run = _shown_run(request, principal)
    working, failed = runs.current, runs.failed
    page = _page(request)
    pairs: list[linkview.QueuePair] = []
    total = 0
    if run.result is not None:
        pairs, total = await state.worker.run(
            linkview.queue_page, state, run, principal.user.name, page, speaker.lang
        )
    vocab = state.records.vocab
    return render(
        request,
        "linkage.html",
        principal,
        {
            "run": run,
            "working": working,
            "failed": failed if failed is not run else None,
            "summary": run.summary(speaker),
            "pairs": pairs,
            "total": total,
            "page": page,
            "per_page": linkview.PER_PAGE,
            "refresh": REFRESH_SECONDS if working is not None else None,
            "status_label": lambda term: vocab.label("person_status", term, speaker.lang),
            "sex_label": lambda term: vocab.label("sex", term, speaker.lang) if term else "",
            "percent": lambda p: speaker.num(f"{100 * p:.0f}"),
            "bits": lambda b: speaker.num(f"{b:+.1f}"),
        },
    )


@router.post("/linkage/decide", include_in_schema=False)
async def decide_form(request: Request) -> Response:
    principal, form, state = await posted(request, "linkage")
    runs = linkview.runs_of(request)
    left, right = str(form.get("left", "")).strip(), str(form.get("right", "")).strip()
    verdict = str(form.get("decision", ""))
    note = str(form.get("note", ""))[:MAX_NOTE]
    run = runs.shown()
    await state.worker.run(
        linkview.decide, state, runs, left, right, verdict, note, principal.user.account
    )
    if verdict == "skip" and run is not None:
        run.skipped.setdefault(principal.user.name, set()).add(web_api.pair_key(left, right))
    raw = str(form.get("page", "0"))
    page = int(raw) if raw.isdigit() and len(raw) < 7 else 0
    return RedirectResponse(f"/linkage?page={page}#queue", status_code=303)


@router.post("/linkage/run", include_in_schema=False)
async def run_form(request: Request) -> Response:
    principal, _, state = await posted(request, "linkage.run")
    linkview.runs_of(request).start(state, principal.user.name)
    return RedirectResponse("/linkage", status_code=303)


@router.get("/trace", include_in_schema=False)
async def trace_page(request: Request) -> Response:
    principal = authorize(request, "trace")
    state = state_of(request)
    speaker = speaker_for(request, principal)
    report = request.query_params.get("report", "").strip()[:100]
    choices = await state.worker.run(linkview.reports, state.records)
    result = None
    error = None
    if report:
        try:
            result = await linkview.run_trace(state, report, speaker.lang)
        except AtharError as exc:
            error = speaker.error(exc)
    vocab = state.records.vocab
    return render(
        request,
        "trace.html",
        principal,
        {
            "choices": choices,
            "report": report,
            "result": result,
            "error": error,
            "status_label": lambda term: vocab.label("person_status", term, speaker.lang),
            "sex_label": lambda term: vocab.label("sex", term, speaker.lang) if term else "",
            "percent": lambda p: speaker.num(f"{100 * p:.0f}"),
        },
        status=400 if error else 200,
    )


# ---------------------------------------------------------------------------- the API


@router.get("/api/linkage/queue")
async def api_queue(request: Request, page: int = 0) -> dict[str, Any]:
    """The latest link run (started if none) and one page of its review queue."""
    principal = authorize(request, "linkage")
    state = state_of(request)
    speaker = speaker_for(request, principal)
    runs = linkview.runs_of(request)
    run = _shown_run(request, principal)
    working, failed = runs.current, runs.failed
    page = max(0, min(page, 1_000_000))
    pairs: list[linkview.QueuePair] = []
    total = 0
    if run.result is not None:
        pairs, total = await state.worker.run(
            linkview.queue_page, state, run, principal.user.name, page, speaker.lang
        )
    return {
        "run": run.summary(speaker),
        "working": working.summary(speaker) if working is not None else None,
        "failed": failed.summary(speaker) if failed is not None else None,
        "page": page,
        "per_page": linkview.PER_PAGE,
        "total": total,
        "pairs": [p.to_json() for p in pairs],
    }


@router.get("/api/linkage/decisions")
async def api_decisions(request: Request) -> dict[str, Any]:
    """Every reviewer decision in the ledger (the latest per pair)."""
    authorize(request, "linkage")
    state = state_of(request)
    found = await state.worker.run(vault.decisions, state.records)
    return {
        "decisions": [
            {"left": d.left, "right": d.right, "decision": "match" if d.match else "non_match"}
            for d in sorted(found, key=lambda d: (d.left, d.right))
        ]
    }


@router.post("/api/linkage/decisions")
async def api_decide(request: Request) -> dict[str, Any]:
    """{"left": "per-…", "right": "per-…", "decision": "match" | "non-match", "note": "…"}:
    a signed decision, as ``athar link review LEFT RIGHT --decision``."""
    body = await json_body(request)
    principal = authorize(request, "linkage", None, unsafe=True)
    state = state_of(request)
    try:
        match = parse_decision(str(body.get("decision", "")))
    except ValueError:
        match = None
    if match is None:
        raise InputError("the decision must be match or non-match").at("decision")
    verdict = "match" if match else "non_match"
    note = str(body.get("note") or "")[:MAX_NOTE]
    runs = linkview.runs_of(request)
    left, right = str(body.get("left", "")).strip(), str(body.get("right", "")).strip()
    event = await state.worker.run(
        linkview.decide, state, runs, left, right, verdict, note, principal.user.account
    )
    return {"ok": True, "event": event, "decision": verdict}


@router.post("/api/linkage/run")
async def api_run(request: Request) -> dict[str, Any]:
    """Start a link run in the background (or report the one already working)."""
    principal = authorize(request, "linkage.run", None, unsafe=True)
    run = linkview.runs_of(request).start(state_of(request), principal.user.name)
    return {"ok": True, "run": run.summary(speaker_for(request, principal))}


@router.get("/api/trace/{record_id}")
async def api_trace(request: Request, record_id: str, limit: int = 20) -> dict[str, Any]:
    """Ranked candidates for a missing-person report; the report's searcher is never
    read, so never answered."""
    principal = authorize(request, "trace")
    state = state_of(request)
    speaker = speaker_for(request, principal)
    limit = max(1, min(limit, 200))
    result = await linkview.run_trace(state, record_id, speaker.lang, limit)
    return {
        "report": result.report,
        "sought": result.sought.id,
        "candidates": [c.to_json() for c in result.candidates],
    }
