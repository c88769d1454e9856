"""Files: the list, chunked resumable upload, and a viewer that decrypts on the fly.

Nothing decrypted touches the disk: the viewer streams plaintext from the vault's blob
decryption straight into the response, with Cache-Control: no-store so the browser keeps
no copy either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request

from athar.errors import InputError
from athar.vault.items import Item
from athar.web import ranges, verifyview
from athar.web.auth import authorize, state_of
from athar.web.render import render
from athar.web.routes.common import form_of, page_number
from athar.web.routes.verify import item_context
from athar.web.uploads import MAX_CHUNK, Upload, sniffed_type

router = APIRouter()
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
INLINE_FAMILIES = ("audio/", "video/")
MEDIA_PAGE = 200  # files per page of the list
RAW_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'none'; sandbox"


@router.get("/media", include_in_schema=False)
async def media_list(request: Request) -> Response:
    principal = authorize(request, "read")
    state = state_of(request)
    items = [i for i in await state.worker.run(state.items) if not i.shredded]
    items.reverse()
    page = page_number(request)
    shown = items[page * MEDIA_PAGE : (page + 1) * MEDIA_PAGE]
    return render(
        request,
        "media.html",
        principal,
        {
            "items": shown,
            "total": len(items),
            "page": page,
            "has_next": len(items) > (page + 1) * MEDIA_PAGE,
        },
    )


@router.get("/media/upload", include_in_schema=False)
async def upload_page(request: Request) -> Response:
    principal = authorize(request, "media.upload")
    return render(request, "upload.html", principal, {"chunk": 1 << 20})


def _status(upload: Upload, **extra: Any) -> dict[str, Any]:
    return {"id": upload.id, "offset": upload.offset, "size": upload.size, **extra}


@router.post("/api/uploads")
async def upload_start(request: Request) -> Response:
    """Announce a file: {"name", "size", "note"?, "resume_key"?}; answers its upload id and
    offset: 0, or where an unfinished upload of the same file by the same user stands
    (resume_key: the client's name|size|modified time, so a restart costs nothing)."""
    body = await request.json()
    principal = authorize(request, "media.upload", None, unsafe=True)
    state = state_of(request)
    if not isinstance(body, dict):
        raise InputError("expected a JSON object")
    try:
        size = int(body.get("size", -1))
    except (TypeError, ValueError):
        raise InputError("expected a count or a range like 3-5").at("size") from None
    note = body.get("note")
    upload = state.uploads.start(
        principal.user.name,
        str(body.get("name", "")),
        size,
        str(note) if note else None,
        str(body.get("resume_key") or ""),
    )
    return JSONResponse(_status(upload, chunk=MAX_CHUNK))


@router.get("/api/uploads/{upload_id}")
async def upload_status(request: Request, upload_id: str) -> Response:
    principal = authorize(request, "media.upload")
    upload = state_of(request).uploads.get(upload_id, principal.user.name)
    return JSONResponse(_status(upload))


@router.put("/api/uploads/{upload_id}")
async def upload_chunk(request: Request, upload_id: str, offset: int) -> Response:
    """One chunk at *offset*. A chunk at the wrong offset is not stored: the answer says
    where the upload stands, and the client continues from there."""
    principal = authorize(request, "media.upload", None, unsafe=True)
    state = state_of(request)
    upload = state.uploads.get(upload_id, principal.user.name)
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > MAX_CHUNK:
            raise InputError("a chunk is at most {n} MiB", n=MAX_CHUNK >> 20)
    try:
        stored = await run_in_threadpool(state.uploads.put, upload, offset, bytes(data))
    except InputError:
        state.uploads.discard(upload)
        raise
    if not stored:
        return JSONResponse(_status(upload), status_code=409)
    if upload.offset < upload.size:
        return JSONResponse(_status(upload))
    item, media_type, duplicate = await state.worker.run(state.uploads.finish, upload)
    return JSONResponse(
        _status(upload, item=item.id, media_type=media_type, duplicate=duplicate, done=True)
    )


def _item(request: Request, item_id: str) -> Item:
    state = state_of(request)
    item: Item = state.worker.call(state.item, item_id)
    return item


@router.get("/media/{item_id}", include_in_schema=False)
async def item_page(request: Request, item_id: str) -> Response:
    principal = authorize(request, "media.view")
    state = state_of(request)
    panel = await state.worker.run(verifyview.panel, state, item_id)
    context = item_context(request, principal, state, panel)
    context.update(item=panel.item, kind=kind_of_media(panel.item.media_type))
    return render(request, "item.html", principal, context)


def kind_of_media(media_type: str) -> str:
    if media_type in INLINE_TYPES:
        return "image"
    for family in INLINE_FAMILIES:
        if media_type.startswith(family):
            return family.rstrip("/")
    if media_type.startswith("text/"):
        return "text"
    return "file"


@router.get("/media/{item_id}/raw")
@router.get("/api/items/{item_id}/raw")
async def item_raw(request: Request, item_id: str) -> Response:
    """The decrypted file, streamed; its hash is checked as it goes (a mismatch ends the
    stream with an error rather than a clean end). A single byte range is honoured, so a
    video can seek and a download cut by a dropping link can resume; a range's chunks are
    each authenticated by the vault's stream cipher, the whole-file hash only when the
    range runs to the end."""
    authorize(request, "media.view")
    state = state_of(request)
    wanted = request.headers.get("range")

    def open_stream() -> tuple[Item, Iterator[bytes]]:
        item = state.item(item_id)
        ref = state.vault.blobs.ref(bytes.fromhex(item.sha256))
        key = state.vault.ledger.blob_key(ref)
        inline = state.vault.ledger.inline_blob(ref)
        return item, state.vault.read_with_key(item, key[0] if key else None, inline)

    item, chunks = await state.worker.run(open_stream)
    try:
        span = ranges.parse(wanted, item.size)
    except ranges.Unsatisfiable:
        return Response(status_code=416, headers={"content-range": f"bytes */{item.size}"})
    first = await run_in_threadpool(next, chunks, b"")
    actual = sniffed_type(first[:8192]) or item.media_type
    if actual in INLINE_TYPES or actual.startswith(INLINE_FAMILIES):
        media_type, disposition = actual, "inline"
    elif actual == "text/plain" and item.media_type == "text/plain":
        media_type, disposition = "text/plain; charset=utf-8", "inline"
    else:
        media_type, disposition = "application/octet-stream", "attachment"

    def whole() -> Iterator[bytes]:
        yield first
        yield from chunks

    headers = {"accept-ranges": "bytes", "content-length": str(item.size)}
    body, status = whole(), 200
    if span is not None:
        body, status = ranges.window(whole(), *span, drain=span[1] == item.size - 1), 206
        headers["content-length"] = str(span[1] - span[0] + 1)
        headers["content-range"] = f"bytes {span[0]}-{span[1]}/{item.size}"

    safe_name = "".join(
        c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in item.name
    )
    return StreamingResponse(
        body,
        status_code=status,
        media_type=media_type,
        headers={
            **headers,
            "content-disposition": f'{disposition}; filename="{safe_name or item.short_id}"',
            "cache-control": "no-store",
            "content-security-policy": RAW_CSP,
        },
    )


@router.post("/media/{item_id}/link", include_in_schema=False)
async def link_item(request: Request, item_id: str) -> Response:
    """Attach a file to a record (from the file's page)."""
    form = await form_of(request)
    principal = authorize(request, "edit", form, unsafe=True)
    state = state_of(request)
    target = str(form.get("record", "")).strip()

    def run() -> str:
        item = state.item(item_id)
        record = state.records.resolve(target)
        state.records.link(record, "media", item.id, user=principal.user.account)
        return record

    record = await state.worker.run(run)
    from fastapi.responses import RedirectResponse

    return RedirectResponse(f"/r/{record}", status_code=303)
