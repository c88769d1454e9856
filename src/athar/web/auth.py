"""Who is asking, and may they: sessions (cookie) for pages, bearer tokens for the API,
CSRF on every form, and the role table."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request

from athar.web.accounts import User
from athar.web.roles import allowed
from athar.web.sessions import Session
from athar.web.state import State

SESSION_COOKIE = "athar_session"
LOGIN_COOKIE = "athar_login"
LANG_COOKIE = "athar_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Principal:
    user: User
    session: Session | None  # None when the request carries an API token


class LoginNeeded(Exception):
    def __init__(self, pending: str | None = None) -> None:
        self.pending = pending


class Forbidden(Exception):
    pass


class CsrfFailed(Exception):
    pass


def state_of(request: Request) -> State:
    state: State = request.app.state.athar
    return state


def identify(request: Request) -> Principal | None:
    state = state_of(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = state.accounts.token_user(header[7:].strip())
        return Principal(user, None) if user is not None else None
    session = state.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    user = state.accounts.get(session.user)
    if user is None:  # disabled since
        state.sessions.drop(session.id)
        return None
    return Principal(user, session)


def csrf_ok(request: Request, principal: Principal, form: FormData | None) -> bool:
    if principal.session is None:
        return True  # a bearer token is not sent by the browser on its own
    sent = request.headers.get(CSRF_HEADER) or (str(form.get(CSRF_FIELD, "")) if form else "")
    return hmac.compare_digest(sent.encode(), principal.session.csrf.encode())


def authorize(
    request: Request, permission: str, form: FormData | None = None, *, unsafe: bool = False
) -> Principal:
    """The principal allowed to do *permission*, or an exception the app turns into a
    login page, a 403, or (for a form whose session expired) a login that keeps the form."""
    principal = identify(request)
    if principal is None:
        pending = None
        # Only record forms come back after a login; never keep an account form (it may
        # hold passwords) even in memory.
        if form is not None and request.url.path.startswith(("/records/", "/r/")):
            fields = [(k, str(v)) for k, v in form.multi_items() if isinstance(v, str)]
            fields = [(k, v) for k, v in fields if k != CSRF_FIELD]
            pending = state_of(request).pending.keep(request.url.path, fields)
        raise LoginNeeded(pending)
    if unsafe and not csrf_ok(request, principal, form):
        raise CsrfFailed()
    if not allowed(principal.user.role, permission):
        raise Forbidden()
    return principal
