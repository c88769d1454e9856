# ruff: noqa: F811  (pytest fixtures imported from test_web_fixtures are redefined as arguments)
"""Accounts and sessions: rate-limited logins, TOTP, cookie flags, strict headers,
language and digits per user, accounts encrypted at rest, writes signed with the user."""

from __future__ import annotations

import re

import pyotp
from fastapi.testclient import TestClient

from athar.i18n import translate
from athar.web.accounts import FILE_NAME
from test_web_fixtures import (  # noqa: F401
    PASSWORD,
    World,
    app_client,
    clients,
    csrf_of,
    fresh,
    login,
    post_login,
    world,
)


def _post_login(client: TestClient, name: str, password: str, code: str = "") -> int:
    return int(post_login(client, name, password, code).status_code)


def test_login_is_rate_limited(app_client: TestClient) -> None:
    state = app_client.app.state.athar  # type: ignore[attr-defined]
    state.accounts.add("مراسل-١", PASSWORD, "viewer")
    client = fresh(app_client)
    codes = [
        _post_login(client, "مراسل-١", "wrong password!") for _ in range(state.limits.attempts)
    ]
    assert codes == [401] * state.limits.attempts
    assert _post_login(client, "مراسل-١", PASSWORD) == 429  # even the right password now waits
    state.limits.clear("ip:testclient", "user:مراسل-١")
    assert _post_login(client, "مراسل-١", PASSWORD) == 303


def test_unknown_user_and_wrong_password_look_alike(app_client: TestClient) -> None:
    client = fresh(app_client)
    a = client.post(
        "/login",
        data={"name": "nobody", "password": "x", "csrf": csrf_of(client.get("/login").text)},
    )
    b = client.post(
        "/login",
        data={"name": "viewer", "password": "x", "csrf": csrf_of(client.get("/login").text)},
    )
    assert a.status_code == b.status_code == 401
    assert re.sub(r'value="[^"]*"', "", a.text).replace("nobody", "") == re.sub(
        r'value="[^"]*"', "", b.text
    ).replace("viewer", "")
    app_client.app.state.athar.limits.clear("ip:testclient", "user:nobody", "user:viewer")  # type: ignore[attr-defined]


def test_login_form_needs_its_csrf_token(app_client: TestClient) -> None:
    client = fresh(app_client)
    client.get("/login")
    response = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": "forged"})
    assert response.status_code == 403


def test_totp_second_factor(app_client: TestClient) -> None:
    state = app_client.app.state.athar  # type: ignore[attr-defined]
    state.accounts.add("موثق-٢", PASSWORD, "verifier")
    client = login(fresh(app_client), "موثق-٢")
    page = client.get("/account").text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    bad = client.post(
        "/account",
        data={"action": "totp", "secret": secret, "code": "000000", "csrf": csrf_of(page)},
    )
    assert bad.status_code == 400
    ok = client.post(
        "/account",
        data={
            "action": "totp",
            "secret": secret,
            "code": pyotp.TOTP(secret).now(),
            "csrf": csrf_of(page),
        },
    )
    assert ok.status_code == 200
    other = fresh(app_client)
    assert _post_login(other, "موثق-٢", PASSWORD) == 401  # password alone is no longer enough
    assert _post_login(other, "موثق-٢", PASSWORD, pyotp.TOTP(secret).now()) == 303


def test_cookies_and_security_headers(app_client: TestClient) -> None:
    client = fresh(app_client)
    page = client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert (
        "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    )
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline
    response = client.post(
        "/login",
        data={"name": "admin", "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"]
    assert "athar_session=" in cookie
    for flag in ("HttpOnly", "Secure", "SameSite=strict"):
        assert flag.lower() in cookie.lower()
    assert "Max-Age" not in cookie.split("athar_session=")[1].split(",")[0]  # a session cookie


def test_logout_ends_the_session_on_the_server(app_client: TestClient) -> None:
    client = login(fresh(app_client), "analyst")
    stolen = client.cookies["athar_session"]
    csrf = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    thief = fresh(app_client)
    thief.cookies.set("athar_session", stolen)
    assert thief.get("/", follow_redirects=False).status_code == 303


def test_language_digits_and_dates(clients: dict[str, TestClient], world: World) -> None:
    client = clients["publisher"]
    csrf = csrf_of(client.get("/account").text)
    client.post("/prefs", data={"lang": "ar", "digits": "arabic", "csrf": csrf, "back": "/"})
    try:
        page = client.get(f"/r/{world.incident}").text
        assert '<html lang="ar" dir="rtl">' in page
        assert "١٤ آذار (مارس) ٢٠١٧" in page  # both Arabic Gregorian month names, Arabic digits
        assert (
            f'<a href="/records/incident">{translate("Incidents", "ar")}</a>'
            in client.get("/").text
        )
        client.post("/prefs", data={"lang": "ar", "digits": "latin", "csrf": csrf, "back": "/"})
        assert "14 آذار (مارس) 2017" in client.get(f"/r/{world.incident}").text
    finally:
        client.post("/prefs", data={"lang": "en", "digits": "latin", "csrf": csrf, "back": "/"})
    page = client.get(f"/r/{world.incident}").text
    assert 'dir="ltr"' in page and "14 March 2017" in page


def test_accounts_are_encrypted_at_rest(app_client: TestClient, world: World) -> None:
    state = app_client.app.state.athar  # type: ignore[attr-defined]
    token = state.accounts.new_token("admin", "نص برمجي")
    raw = (world.vault_dir / FILE_NAME).read_bytes()
    for secret in (b"documenter", "نص برمجي".encode(), token.encode(), b"argon2id", b"users"):
        assert secret not in raw
    anon = fresh(app_client)
    assert (
        anon.get("/api/me", headers={"authorization": f"Bearer {token}"}).json()["name"] == "admin"
    )


def test_every_write_is_a_signed_event_with_the_user(
    clients: dict[str, TestClient], world: World
) -> None:
    client = clients["documenter"]
    csrf = csrf_of(client.get("/account").text)
    response = client.post(
        f"/r/{world.incident}/victim",
        data={
            "name_ar.full": "فاطمة علي",
            "sex": "female",
            "age": "34",
            "status": "killed",
            "csrf": csrf,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    audit = clients["admin"].get("/api/audit").json()["events"]
    recent = audit[:3]
    assert {e["kind"] for e in recent} == {"record.created", "record.linked"}
    assert {e["user"] for e in recent} == {"documenter"}
    seq = recent[0]["seq"]
    proof = clients["admin"].get(f"/audit/proof/{seq}")
    assert proof.headers["content-disposition"].startswith("attachment")
    from athar.vault.proofs import check_proof

    assert check_proof(proof.json()).ok


def test_ordinary_pages_are_light_and_load_nothing_from_elsewhere(
    clients: dict[str, TestClient], world: World
) -> None:
    """HTML + CSS + JS of each ordinary page under 150 KB (a 256 kbit/s link: ~5 s), and
    every script, style and image from this server."""
    client = clients["admin"]
    for path in (
        "/",
        "/records/incident",
        f"/r/{world.incident}",
        "/records/incident/new",
        "/search?q=محمد",
        "/media/upload",
        "/audit",
    ):
        page = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', page), path
        assets = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', page)
        total = len(page.encode()) + sum(len(client.get(a).content) for a in assets)
        assert total < 150_000, (path, total)
