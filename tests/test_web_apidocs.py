# ruff: noqa: F811  (pytest fixtures imported from test_web_fixtures are redefined as arguments)
"""API docs at /api/docs (issue 4): rendered on the server from the app's own OpenAPI
schema, every /api path listed, no script and nothing from elsewhere, both languages,
linked from the account page where tokens are made."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from athar.web.locale import Speaker
from test_web_fixtures import app_client, clients, csrf_of, fresh, login, world  # noqa: F401

METHODS = ("get", "post", "put", "patch", "delete")


def test_every_api_path_and_method_is_listed(clients: dict[str, TestClient]) -> None:
    client = clients["viewer"]
    spec = client.get("/api/openapi.json").json()
    page = client.get("/api/docs")
    assert page.status_code == 200
    text = html.unescape(page.text)
    wanted = [(m.upper(), p) for p, item in spec["paths"].items() for m in METHODS if m in item]
    assert sum(p.startswith("/api/") for _, p in wanted) >= 20
    shown = set(
        re.findall(r'<code class="method">(\w+)</code> <code class="path">([^<]+)</code>', text)
    )
    assert shown == set(wanted)
    assert f"({len(wanted)})" in text  # the count in the table of contents
    # what each takes: the query parameters and JSON bodies of the schema
    assert "<code>date_from</code>" in text and "<code>reason</code>" in text
    assert "Authorization: Bearer athar_" in text


def test_page_is_self_contained_under_the_strict_policy(clients: dict[str, TestClient]) -> None:
    page = clients["admin"].get("/api/docs")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script" not in page.text and " style=" not in page.text
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)  # nothing from elsewhere
    assert page.headers["cache-control"] == "no-store"


def test_linked_from_the_account_page(clients: dict[str, TestClient]) -> None:
    account = clients["documenter"].get("/account").text
    assert 'href="/api/docs"' in account
    tokens = account.index(Speaker("en").t("API tokens"))
    assert tokens < account.index('href="/api/docs"')


def test_arabic_headings_and_right_to_left(app_client: TestClient) -> None:
    client = login(fresh(app_client), "analyst")
    csrf = csrf_of(client.get("/account").text)
    client.post("/prefs", data={"csrf": csrf, "lang": "ar", "back": "/api/docs"})
    try:
        page = client.get("/api/docs").text
        assert '<html lang="ar" dir="rtl">' in page
        ar = Speaker("ar")
        for heading in ("API documentation", "Authentication", "Errors", "Endpoints"):
            assert ar.t(heading) in page
    finally:
        client.post("/prefs", data={"csrf": csrf, "lang": "en", "back": "/"})


def test_anonymous_is_refused(app_client: TestClient) -> None:
    assert fresh(app_client).get("/api/docs").status_code == 401
