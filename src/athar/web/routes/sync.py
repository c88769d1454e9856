"""`athar sync` over HTTP: the server's routes under /api/sync (see docs/bundle-format.md,
"Sync over HTTP"). Thin: each route checks the device's signed request, then calls
athar.sync.server on the vault's thread.

A device authenticates with its own Ed25519 key (an RFC 9421 signature), not with a
page session; an API token may be sent as well (`Authorization: Bearer athar_…`), and is
then checked too. Errors come as the API's {"ok": false, "error", "kind"}, plus the
message template and its parameters so that the client can say it in its own language.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.requests import Request

from athar.errors import AtharError, InputError
from athar.sync.server import (
    MAX_CHUNK,
    Conflict,
    Refused,
    SignedRequest,
    SyncServer,
    Unauthenticated,
)
from athar.web.auth import state_of
from athar.web.render import speaker_for
from athar.web.roles import allowed
from athar.web.routes.api import ERRORS
from athar.web.state import State

_SERVERS: weakref.WeakKeyDictionary[State, SyncServer] = weakref.WeakKeyDictionary()
_JOBS: set[asyncio.Future[None]] = set()
OCTETS = "application/octet-stream"


def _error(request: Request, exc: AtharError) -> JSONResponse:
    params = {
        k: v if isinstance(v, int | float) and not isinstance(v, bool) else str(v)
        for k, v in exc.params.items()
    }
    body: dict[str, Any] = {
        "ok": False,
        "error": speaker_for(request, None).error(exc),
        "kind": type(exc).__name__,
        "template": exc.template,
        "params": params,
    }
    if isinstance(exc, Conflict):
        body["offset"] = exc.params["offset"]
    return JSONResponse(body, status_code=int(getattr(exc, "status", 400)))


class _SyncRoute(APIRoute):
    """Every refusal answered with its own status and the message's template."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except AtharError as exc:
                return _error(request, exc)

        return guarded


router = APIRouter(
    prefix="/api/sync",
    route_class=_SyncRoute,
    responses={**ERRORS, 409: {"description": "a chunk at the wrong offset"}},
)


def _server(state: State) -> SyncServer:
    server = _SERVERS.get(state)
    if server is None:
        server = _SERVERS[state] = SyncServer(state.vault)
    return server


async def _body(request: Request, limit: int = 1 << 20) -> bytes:
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise InputError("a chunk is 1 byte to {n} MiB", n=limit >> 20)
    return bytes(data)


async def _device(request: Request, body: bytes) -> tuple[State, SyncServer, bytes]:
    """The signing device (and, if one is sent, a valid API token whose role may add)."""
    state = state_of(request)
    server = _server(state)
    key = server.verify(SignedRequest(request.method, str(request.url), request.headers), body)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = state.accounts.token_user(header[7:].strip())
        if user is None:
            raise Unauthenticated("the API token is not valid")
        if not allowed(user.role, "create"):
            raise Refused("your role does not allow this")
    return state, server, key


def _json(body: bytes) -> dict[str, Any]:
    import json

    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise InputError("expected a JSON object") from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object")
    return data


def _launch(state: State, job: Callable[..., None], *args: Any) -> None:
    """Run *job* on the vault's thread without waiting for it (kept referenced)."""
    future = asyncio.ensure_future(state.worker.run(job, *args))
    _JOBS.add(future)
    future.add_done_callback(_JOBS.discard)


@router.get("/state")
async def sync_state(request: Request, origin: str = "") -> dict[str, Any]:
    """The server's device and its signed receipt of what it holds of *origin*."""
    state, server, key = await _device(request, await _body(request))
    result: dict[str, Any] = await state.worker.run(server.state, key, origin)
    return result


@router.post("/push")
async def push_start(request: Request) -> dict[str, Any]:
    """Announce a bundle: {"size", "sha256", "relay_to"?: device key for the mailbox}."""
    body = await _body(request)
    state, server, key = await _device(request, body)
    data = _json(body)
    try:
        size = int(data.get("size", -1))
    except (TypeError, ValueError):
        size = -1
    relay = data.get("relay_to")
    t = await state.worker.run(
        server.start_push, key, size, str(data.get("sha256", "")), str(relay) if relay else None
    )
    return {**t.status(), "chunk": MAX_CHUNK}


@router.get("/push/{transfer_id}")
async def push_status(request: Request, transfer_id: str) -> dict[str, Any]:
    _, server, key = await _device(request, await _body(request))
    return server.transfer(key, transfer_id, "push|relay").status()


@router.put("/push/{transfer_id}")
async def push_chunk(request: Request, transfer_id: str, offset: int) -> dict[str, Any]:
    """One chunk at *offset*; a chunk anywhere else is not stored (409 with the offset)."""
    body = await _body(request, MAX_CHUNK)
    _, server, key = await _device(request, body)
    t = server.transfer(key, transfer_id, "push|relay")
    await run_in_threadpool(server.put_chunk, t, offset, body)
    return t.status()


@router.post("/push/{transfer_id}/commit")
async def push_commit(request: Request, transfer_id: str) -> dict[str, Any]:
    """Check the whole bundle's SHA-256, then import it (or keep it for its recipient).
    Answers {"done": false} at once while that runs: ask again until it is done."""
    state, server, key = await _device(request, await _body(request))
    t = server.transfer(key, transfer_id, "push|relay")
    server.ready_to_commit(t)
    if server.claim(t):
        _launch(state, server.commit, key, t)
    result = server.outcome(t)
    return {"ok": True, "done": False} if result is None else {"ok": True, "done": True, **result}


@router.post("/pull")
async def pull_start(request: Request) -> dict[str, Any]:
    """{"receipt": the device's receipt of this server or null, "origin": its vault}:
    stages a bundle of what it lacks. Answers {"ready": false} at once while that runs
    (ask again with the same body); then the bundle's id, size and SHA-256, or
    {"id": null} when the device lacks nothing."""
    body = await _body(request)
    state, server, key = await _device(request, body)
    data = _json(body)
    receipt, origin = data.get("receipt"), str(data.get("origin") or "")
    t, fresh = server.pull_job(key, str(receipt) if receipt else None, origin)
    if fresh:
        _launch(state, server.run_pull, key, t)
    result = server.pull_outcome(t)
    return {"id": t.id, "ready": False} if result is None else {"ready": True, **result}


@router.get("/pull/{transfer_id}", response_class=Response)
async def pull_get(request: Request, transfer_id: str) -> Response:
    """The staged bundle; a Range request resumes a download cut off."""
    _, server, key = await _device(request, await _body(request))
    t = server.transfer(key, transfer_id, "pull")
    return FileResponse(server.pulled(t), media_type=OCTETS)


@router.post("/pull/{transfer_id}/done")
async def pull_done(request: Request, transfer_id: str) -> dict[str, Any]:
    """{"receipt"}: the device imported the bundle; the staged copy is dropped."""
    body = await _body(request)
    state, server, key = await _device(request, body)
    t = server.transfer(key, transfer_id, "pull")
    receipt = _json(body).get("receipt")
    size = await state.worker.run(server.finish_pull, key, t, str(receipt) if receipt else None)
    return {"ok": True, "held": size}


@router.get("/mailbox")
async def mailbox(request: Request) -> dict[str, Any]:
    """Bundles other devices left here for this one (the server cannot open them)."""
    state, server, key = await _device(request, await _body(request))
    return {"bundles": await state.worker.run(server.mailbox, key)}


@router.get("/mailbox/{bundle_id}", response_class=Response)
async def mailbox_get(request: Request, bundle_id: str) -> Response:
    state, server, key = await _device(request, await _body(request))
    path = await state.worker.run(server.mailbox_file, key, bundle_id)
    return FileResponse(path, media_type=OCTETS)


@router.delete("/mailbox/{bundle_id}")
async def mailbox_delete(request: Request, bundle_id: str) -> dict[str, Any]:
    state, server, key = await _device(request, await _body(request))
    await state.worker.run(server.mailbox_delete, key, bundle_id)
    return {"ok": True}
