"""The device page (admins only): wipe this vault's keys from the browser, as `athar wipe`.

Someone documenting from an office can be told that a raid is coming while the server is
at home: the wipe must be reachable from any browser, and must not be reachable by
accident or by a stolen session alone. So it needs the admin's role, the CSRF token, the
admin's password again (and TOTP code when on) and a confirmation word typed in the
admin's own language. It reuses athar.vault.vault.wipe (the key file overwritten and
deleted); from then on every request, to any path, gets a plain "this device was wiped"
page: no data, no login, no error that names the vault.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.requests import Request

from athar.vault.vault import wipe
from athar.web.auth import LANG_COOKIE, Principal, authorize, state_of
from athar.web.locale import Speaker
from athar.web.render import render, speaker_for
from athar.web.routes.common import client_ip, posted

router = APIRouter(include_in_schema=False)

WIPED = "athar_wiped"  # set on app.state once the keys are gone
CONFIRM_WORD = "WIPE"  # shown and expected in the admin's language (ar: its translation)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _page(request: Request, principal: Principal, error: str | None, status: int) -> Response:
    state = state_of(request)
    word = speaker_for(request, principal).t(CONFIRM_WORD)
    context = {"fingerprint": state.vault.device_fingerprint, "word": word, "error": error}
    return render(request, "device.html", principal, context, status=status)


@router.get("/device")
async def device_page(request: Request) -> Response:
    principal = authorize(request, "users")
    return _page(request, principal, None, 200)


@router.post("/device")
async def device_wipe(request: Request) -> Response:
    principal, form, state = await posted(request, "users")
    speaker = speaker_for(request, principal)
    name = principal.user.name
    limited = (f"wipe:{name}", f"wipe-ip:{client_ip(request)}")
    if state.limits.blocked(*limited):
        return _page(request, principal, speaker.t("too many attempts; wait and try again"), 429)
    user = await run_in_threadpool(
        state.accounts.authenticate,
        name,
        str(form.get("password", "")),
        str(form.get("code", "")) or None,
    )
    if user is None:
        state.limits.fail(*limited)
        error = speaker.t("wrong password or code; nothing was destroyed")
        return _page(request, principal, error, 400)
    word = speaker.t(CONFIRM_WORD)
    if str(form.get("confirm", "")).strip().casefold() != word.casefold():
        error = speaker.t("type {word} to confirm; nothing was destroyed", word=word)
        return _page(request, principal, error, 400)
    state.limits.clear(*limited)
    root = state.vault.root
    setattr(request.app.state, WIPED, True)  # from now on nothing is served
    await state.worker.run(wipe, root)  # the same function as `athar wipe`
    state.uploads.discard_all()  # half-received uploads: ciphertext under a key now gone
    for account in state.accounts.all_users():
        state.sessions.drop_user(account.name)
    return _wiped_response(speaker)


def _wiped_response(speaker: Speaker) -> Response:
    title = html.escape(speaker.t("This device was wiped"))
    body = html.escape(
        speaker.t(
            "Its keys are destroyed; nothing stored here can be shown. Turn the server off "
            "to clear its memory."
        )
    )
    page = (
        f'<!doctype html><html lang="{speaker.lang}" dir="{speaker.dir}"><head>'
        f'<meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1><p>{body}</p></body></html>"
    )
    return Response(
        page,
        status_code=410,
        media_type="text/html; charset=utf-8",
        headers={"cache-control": "no-store"},  # not even /static/ may keep it cached
    )


class WipedGuard:
    """After a wipe, answer every request with the wiped page (and nothing else)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not getattr(scope["app"].state, WIPED, False):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = request.cookies.get(LANG_COOKIE)
        accept = request.headers.get("accept-language", "").lower()
        lang = cookie if cookie in ("ar", "en") else ("ar" if accept.startswith("ar") else "en")
        await _wiped_response(Speaker(lang))(scope, receive, send)
