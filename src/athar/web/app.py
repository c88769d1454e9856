"""The web application factory: `create_app(vault_dir, passphrase)`.

Server-rendered pages (Jinja2) and a JSON API under /api over the same services. No
page needs a script to work except the chunked upload and the map; scripts, styles and
Leaflet are served from this server (no CDN), under a Content-Security-Policy that allows
nothing inline.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from athar.errors import AtharError, InputError
from athar.web.auth import CsrfFailed, Forbidden, LoginNeeded, identify
from athar.web.render import render, speaker_for
from athar.web.routes import device
from athar.web.state import Settings, State

LEAFLET_DIR = Path("/usr/share/javascript/leaflet")  # Debian's libjs-leaflet

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def content_security_policy(settings: Settings) -> str:
    img = " ".join(("'self'", "data:", "blob:", *settings.extra_img_src))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; media-src 'self'; font-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


class SecurityHeaders:
    """Strict headers on every response; pages and data are never cached."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"referrer-policy", b"no-referrer"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (
                b"permissions-policy",
                b"camera=(), microphone=(), geolocation=(), interest-cohort=()",
            ),
            (b"strict-transport-security", b"max-age=31536000"),
        ]

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(("/static/", "/leaflet/"))
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # Time spent in the application, for the load test to tell server time
                # from time queued in the network or the machine.
                spent = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", f"app;dur={spent:.1f}".encode()))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in self.headers if h[0] not in names]
                if b"cache-control" not in names:
                    value = b"public, max-age=86400" if static else b"no-store"
                    headers.append((b"cache-control", value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(vault_dir: Path, passphrase: str, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = State(vault_dir, passphrase, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="Athar",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.athar = state
    here = Path(__file__).parent
    app.mount("/static", StaticFiles(directory=here / "static"), name="static")
    if LEAFLET_DIR.is_dir():
        app.mount("/leaflet", StaticFiles(directory=LEAFLET_DIR), name="leaflet")

    from athar.web.routes import api, apidocs, linkage, media, pages, people, publish, sync, verify

    app.include_router(people.router)
    app.include_router(device.router)  # wipe from the browser (issue 10)
    app.include_router(pages.router)
    app.include_router(verify.router, responses=api.ERRORS, dependencies=[api.BEARER])
    app.include_router(media.router, responses=api.ERRORS, dependencies=[api.BEARER])
    app.include_router(linkage.router, responses=api.ERRORS, dependencies=[api.BEARER])
    app.include_router(publish.router, responses=api.ERRORS, dependencies=[api.BEARER])
    app.include_router(apidocs.router)
    app.include_router(api.router)
    app.include_router(sync.router)  # `athar sync` (issue 5): device-signed requests
    _handlers(app)
    app.add_middleware(device.WipedGuard)  # after a wipe: one plain page, no data
    app.add_middleware(SecurityHeaders, csp=content_security_policy(settings))
    return app


def _handlers(app: FastAPI) -> None:
    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(LoginNeeded)
    async def login_needed(request: Request, exc: LoginNeeded) -> Response:
        if is_api(request):
            return JSONResponse({"ok": False, "error": "login required"}, status_code=401)
        target = "/login?next=" + quote(request.url.path)
        if exc.pending:
            target += "&pending=" + exc.pending
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, _: Forbidden) -> Response:
        speaker = speaker_for(request, None)
        message = speaker.t("your role does not allow this")
        if is_api(request):
            return JSONResponse({"ok": False, "error": message}, status_code=403)
        return render(request, "error.html", identify(request), {"message": message}, status=403)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, _: CsrfFailed) -> Response:
        speaker = speaker_for(request, None)
        message = speaker.t("the form had expired; open the page again and resend it")
        if is_api(request):
            return JSONResponse({"ok": False, "error": message}, status_code=403)
        return render(request, "error.html", None, {"message": message}, status=403)

    @app.exception_handler(AtharError)
    async def athar_error(request: Request, exc: AtharError) -> Response:
        speaker = speaker_for(request, None)
        message = speaker.error(exc)
        if is_api(request):
            return JSONResponse(
                {"ok": False, "error": message, "kind": type(exc).__name__}, status_code=400
            )
        return render(request, "error.html", identify(request), {"message": message}, status=400)

    # A body that is not JSON (or not UTF-8) is bad input, not a server error, wherever a
    # route reads it (found by tests/test_web_scan.py on POST /api/uploads).
    @app.exception_handler(json.JSONDecodeError)
    @app.exception_handler(UnicodeDecodeError)
    async def not_json(request: Request, _: ValueError) -> Response:
        return await athar_error(request, InputError("expected a JSON object"))
