"""Pages from Jinja2 templates, autoescaped, in the user's language."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request

from athar.records import schema
from athar.web.auth import LANG_COOKIE, Principal, identify
from athar.web.locale import Speaker
from athar.web.roles import allowed


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("athar.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates are package data: no stat() per page
    )


def speaker_for(request: Request, principal: Principal | None) -> Speaker:
    if principal is None:
        try:
            principal = identify(request)
        except Exception:
            principal = None
    if principal is not None:
        return Speaker(principal.user.lang, principal.user.arabic_digits)
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in ("ar", "en"):
        return Speaker(cookie)
    accept = request.headers.get("accept-language", "")
    return Speaker("ar" if accept.lower().startswith("ar") else "en")


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    context: dict[str, Any],
    status: int = 200,
) -> HTMLResponse:
    speaker = speaker_for(request, principal)
    settings = request.app.state.athar.settings

    def can(permission: str) -> bool:
        return principal is not None and allowed(principal.user.role, permission)

    html = (
        environment()
        .get_template(template)
        .render(
            t=speaker.t,
            s=speaker,
            user=principal.user if principal else None,
            csrf=principal.session.csrf if principal and principal.session else "",
            can=can,
            path=request.url.path,
            demo_note=settings.demo_note,
            types=schema.TYPES,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)
