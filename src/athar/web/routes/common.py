"""Small helpers the route modules share."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.requests import Request

from athar.web.auth import Principal, authorize, state_of
from athar.web.state import State


def safe_next(target: str | None, default: str = "/") -> str:
    """Only paths on this server: no //host, no scheme, no backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def back(target: str | None) -> RedirectResponse:
    return RedirectResponse(safe_next(target), status_code=303)


async def form_of(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=2000)


async def posted(request: Request, permission: str) -> tuple[Principal, FormData, State]:
    """A form post: the form, the principal (checked for CSRF and role) and the state."""
    form = await form_of(request)
    return authorize(request, permission, form, unsafe=True), form, state_of(request)


def multi(form: FormData) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    return out


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "-"


def page_number(request: Request) -> int:
    """The ?page= of a listing (0-based); anything that is not a number is the first."""
    try:
        return max(0, int(request.query_params.get("page", "0")))
    except ValueError:
        return 0
