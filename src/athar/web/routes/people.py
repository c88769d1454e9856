"""Logging in and out, language and digits, one's own account, and (admins) users."""

from __future__ import annotations

import secrets

import pyotp
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.requests import Request

from athar.errors import AtharError
from athar.web.auth import LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, authorize, identify, state_of
from athar.web.render import render, speaker_for
from athar.web.roles import roles
from athar.web.routes.common import back, client_ip, form_of, posted, safe_next

router = APIRouter(include_in_schema=False)


def _cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=state_of(request).settings.secure_cookies,
        samesite="strict",
        path="/",
    )


@router.get("/login")
async def login_page(request: Request, next: str = "/", pending: str = "") -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        None,
        {"login_csrf": token, "next": safe_next(next), "pending": pending, "error": None},
    )
    _cookie(response, request, LOGIN_COOKIE, token, 3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    state = state_of(request)
    form = await form_of(request)
    name = str(form.get("name", "")).strip()[:64]
    sent = str(form.get("csrf", ""))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    speaker = speaker_for(request, None)
    context = {
        "login_csrf": cookie or secrets.token_urlsafe(32),
        "next": safe_next(str(form.get("next", "/"))),
        "pending": str(form.get("pending", "")),
        "name": name,
    }
    if not cookie or not secrets.compare_digest(sent.encode(), cookie.encode()):
        error = speaker.t("the form had expired; open the page again and resend it")
        return render(request, "login.html", None, {**context, "error": error}, status=403)
    keys = (f"ip:{client_ip(request)}", f"user:{name.lower()}")
    if state.limits.blocked(*keys):
        error = speaker.t("too many failed logins; wait a few minutes and try again")
        return render(request, "login.html", None, {**context, "error": error}, status=429)
    user = await run_in_threadpool(
        state.accounts.authenticate, name, str(form.get("password", "")), str(form.get("code", ""))
    )
    if user is None:
        state.limits.fail(*keys)
        error = speaker.t("wrong name, password or code")
        return render(request, "login.html", None, {**context, "error": error}, status=401)
    state.limits.clear(f"user:{name.lower()}")
    session = state.sessions.new(user.name)
    target = context["next"]
    restored = state.pending.take(context["pending"] or None)
    if restored is not None:
        token = state.pending.keep(*restored)  # handed on to the form page, once
        target = f"{safe_next(restored[0])}?restore={token}"
    response = RedirectResponse(target, status_code=303)
    _cookie(response, request, SESSION_COOKIE, session.id, None)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    principal, _, state = await posted(request, "read")
    if principal.session is not None:
        state.sessions.drop(principal.session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/prefs")
async def prefs(request: Request) -> Response:
    """Language and digits: the user's own setting when logged in, else a cookie."""
    form = await form_of(request)
    lang = str(form.get("lang", ""))
    lang = lang if lang in ("ar", "en") else "en"
    digits = str(form.get("digits", "")) == "arabic"
    principal = identify(request)
    response = back(str(form.get("back", "/")))
    if principal is not None:
        principal = authorize(request, "read", form, unsafe=True)
        state_of(request).accounts.set_prefs(principal.user.name, lang, digits)
    _cookie(response, request, LANG_COOKIE, lang, 365 * 86400)
    return response


@router.get("/account")
async def account(request: Request) -> Response:
    principal = authorize(request, "read")
    state = state_of(request)
    return render(
        request,
        "account.html",
        principal,
        {
            "totp_secret": pyotp.random_base32(),
            "tokens": state.accounts.user_tokens(principal.user.name),
            "new_token": None,
            "error": None,
        },
    )


@router.post("/account")
async def account_change(request: Request) -> Response:
    principal, form, state = await posted(request, "read")
    name = principal.user.name
    action = str(form.get("action", ""))
    new_token = None
    error = None
    try:
        # each of these also signs a ledger event, on the vault thread: wait off the loop
        if action == "totp":
            secret, code = str(form.get("secret", "")), str(form.get("code", ""))
            await run_in_threadpool(state.accounts.enable_totp, name, secret, code)
        elif action == "token":
            label = str(form.get("label", ""))
            new_token = await run_in_threadpool(state.accounts.new_token, name, label)
        elif action == "revoke":
            await run_in_threadpool(state.accounts.revoke_token, name, str(form.get("token", "")))
        elif action == "password":
            user = await run_in_threadpool(
                state.accounts.authenticate, name, str(form.get("old", "")), None
            )
            if user is None and not principal.user.totp:
                raise AtharError("wrong name, password or code")
            await run_in_threadpool(state.accounts.set_password, name, str(form.get("new", "")))
    except AtharError as exc:
        error = speaker_for(request, principal).error(exc)
    principal = authorize(request, "read")
    return render(
        request,
        "account.html",
        principal,
        {
            "totp_secret": pyotp.random_base32(),
            "tokens": state.accounts.user_tokens(name),
            "new_token": new_token,
            "error": error,
        },
        status=400 if error else 200,
    )


@router.get("/users")
async def users_page(request: Request) -> Response:
    principal = authorize(request, "users")
    state = state_of(request)
    return render(
        request,
        "users.html",
        principal,
        {"users": state.accounts.all_users(), "roles": roles(), "error": None, "values": {}},
    )


@router.post("/users")
async def users_change(request: Request) -> Response:
    principal, form, state = await posted(request, "users")
    error = None
    values = {k: str(form.get(k, "")) for k in ("name", "role")}
    try:
        action = str(form.get("action", ""))
        target = str(form.get("name", ""))
        if action == "disable":
            if target != principal.user.name:
                await run_in_threadpool(state.accounts.disable, target, principal.user.name)
                state.sessions.drop_user(target)
        elif action == "role":
            if target != principal.user.name:  # an admin cannot demote themself by mistake
                await run_in_threadpool(
                    state.accounts.set_role, target, values["role"], principal.user.name
                )
            values = {}
        else:
            await run_in_threadpool(
                state.accounts.add,
                values["name"],
                str(form.get("password", "")),
                values["role"],
                str(form.get("lang", "ar")),
                principal.user.name,
            )
            values = {}
    except AtharError as exc:
        error = speaker_for(request, principal).error(exc)
    return render(
        request,
        "users.html",
        principal,
        {"users": state.accounts.all_users(), "roles": roles(), "error": error, "values": values},
        status=400 if error else 200,
    )
