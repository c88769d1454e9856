# ruff: noqa: F811  (pytest fixtures imported from test_web_fixtures are redefined as arguments)
"""Forms: server-side validation in the user's language, data left as it was, injection
strings stored and shown inert, and a form posted after the session expired comes back."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from markupsafe import escape

from athar.i18n import translate
from athar.records import schema
from test_web_fixtures import World, app_client, clients, csrf_of, fresh, login, world  # noqa: F401

INJECTIONS = [
    "<script>alert('x')</script>",
    "'; DROP TABLE records; --",
    '"><img src=x onerror=alert(1)>',
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "{{ 7*7 }} ${7*7}",
]


def _counts(client: TestClient) -> dict[str, int]:
    counts: dict[str, int] = client.get("/api/counts").json()["records"]
    return counts


def _arabic(client: TestClient) -> str:
    csrf = csrf_of(client.get("/account").text)
    client.post("/prefs", data={"lang": "ar", "digits": "latin", "csrf": csrf, "back": "/"})
    return csrf


def _english(client: TestClient) -> None:
    csrf = csrf_of(client.get("/account").text)
    client.post("/prefs", data={"lang": "en", "digits": "latin", "csrf": csrf, "back": "/"})


def test_bad_values_are_refused_in_arabic_and_nothing_changes(
    clients: dict[str, TestClient],
) -> None:
    client = clients["documenter"]
    csrf = _arabic(client)
    try:
        before = _counts(client)
        cases = [
            (
                "incident",
                {"title.ar": "حادثة", "date": "2017-02-30"},
                "date",
                translate("{value} is not a real date", "ar", value="2017-02-30"),
            ),
            (
                "incident",
                {"title.ar": "حادثة", "killed.total": "5-2"},
                "killed.total",
                translate("the maximum {max} is less than the minimum {min}", "ar", max=2, min=5),
            ),
            (
                "incident",
                {"title.ar": "حادثة", "place.coordinates": "91,36"},
                "place.coordinates",
                translate("latitude {value} is outside −90…90", "ar", value="91"),
            ),
            ("person", {"name_ar.full": "علي", "age": "عمره كبير"}, "age", None),
            ("source", {"type": "لا يوجد نوع كهذا"}, "type", None),
            ("claim", {"party": "طرف", "claimed.killed": "-3"}, "claimed.killed", None),
            ("missing", {"person": "per-doesnotexist00000"}, "person", None),
            ("status", {"person": "", "status": "killed"}, None, None),
            ("testimony", {"text": "نص"}, None, None),
            ("incident", {}, None, None),
        ]
        for type_name, values, field, message in cases:
            response = client.post(
                f"/records/{type_name}/new", data={**values, "csrf": csrf}, follow_redirects=False
            )
            assert response.status_code == 400, (type_name, values)
            assert 'dir="rtl"' in response.text
            assert 'role="alert"' in response.text
            if field:
                assert f'id="e-{field}"' in response.text, (type_name, field)
                assert re.search(
                    rf'name="{re.escape(field)}"[^>]*aria-invalid="true"', response.text
                ) or (f'id="f-{field}"' in response.text and "aria-invalid" in response.text)
            if message:
                assert html.escape(
                    message, quote=False
                ) in response.text or message in html.unescape(response.text), message
            for value in values.values():  # the user's input is kept in the form
                if value and field:
                    assert html.escape(value) in response.text or value in html.unescape(
                        response.text
                    )
        assert _counts(client) == before
    finally:
        _english(client)


def test_english_user_gets_english_messages(clients: dict[str, TestClient]) -> None:
    client = clients["admin"]
    csrf = csrf_of(client.get("/account").text)
    response = client.post(
        "/records/incident/new", data={"title.ar": "ح", "date": "2017-13-01", "csrf": csrf}
    )
    assert response.status_code == 400
    assert 'dir="ltr"' in response.text
    assert "2017-13-01 is not a real date" in response.text


def test_missing_csrf_is_refused(clients: dict[str, TestClient]) -> None:
    client = clients["admin"]
    before = _counts(client)
    response = client.post("/records/source/new", data={"type": "witness"}, follow_redirects=False)
    assert response.status_code == 403
    response = client.post(
        "/records/source/new", data={"type": "witness", "csrf": "forged"}, follow_redirects=False
    )
    assert response.status_code == 403
    response = client.post("/api/records/source", json={"fields": {"type": "witness"}})
    assert response.status_code == 403
    assert _counts(client) == before


REQUIRED = {  # the non-text values each type needs besides its text fields
    "incident": {},
    "person": {},
    "source": {"type": "witness"},
    "claim": {},
    "missing": {"person": "{person}"},
    "status": {"person": "{person}", "status": "killed"},
    "testimony": {"consent": "record_only"},
}


def test_injection_strings_are_stored_and_shown_inert(
    clients: dict[str, TestClient], world: World
) -> None:
    client = clients["documenter"]
    csrf = csrf_of(client.get("/account").text)
    for type_name, extra in REQUIRED.items():
        kind = schema.TYPES[type_name]
        texts = [p for p, f in kind.fields.items() if f.kind in (schema.TEXT, schema.LONGTEXT)]
        data = {path: INJECTIONS[i % len(INJECTIONS)] + " قصف" for i, path in enumerate(texts)}
        data.update({k: v.replace("{person}", world.person) for k, v in extra.items()})
        response = client.post(
            f"/records/{type_name}/new", data={**data, "csrf": csrf}, follow_redirects=False
        )
        assert response.status_code == 303, (type_name, response.text[:300])
        record_id = response.headers["location"].rsplit("/", 1)[1]
        for page in (client.get(f"/r/{record_id}").text, client.get(f"/r/{record_id}/edit").text):
            for payload in INJECTIONS:  # anything with markup characters appears only escaped
                markup = any(c in payload for c in "<>\"'")
                assert payload not in page or not markup, (type_name, payload)
            assert "<script>alert" not in page and "<img src=x" not in page
        stored = client.get(f"/api/records/{record_id}").json()["fields"]
        assert {k: stored.get(k) for k in data if k in texts} == {k: data[k] for k in texts}
        if type_name == "incident":
            page = client.get(f"/r/{record_id}").text
            assert str(escape("<script>alert('x')</script>")) in page
    # the tables survived, and search still works on the text around the payloads
    assert client.get("/api/counts").status_code == 200
    found = client.get("/api/records", params={"q": "قصف", "type": "incident"}).json()["records"]
    assert found
    assert client.get("/search", params={"q": INJECTIONS[1]}).status_code in (200, 400)


def test_expired_session_mid_form_keeps_the_input(app_client: TestClient, world: World) -> None:
    client = login(fresh(app_client), "documenter")
    csrf = csrf_of(client.get("/records/incident/new").text)
    before = _counts(client)
    app_client.app.state.athar.sessions.expire(client.cookies["athar_session"])  # type: ignore[attr-defined]
    typed = {
        "title.ar": "غارة على المخبز — لم تحفظ بعد",
        "date": "2017-03-20",
        "violations": "attack_on_bakery",
    }
    response = client.post(
        "/records/incident/new", data={**typed, "csrf": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    target = response.headers["location"]
    assert target.startswith("/login?next=") and "pending=" in target
    page = client.get(target)
    assert "session had expired" in page.text
    response = client.post(
        "/login",
        data={
            "name": "documenter",
            "password": "كلمة-مرور-طويلة-١٢٣",
            "csrf": csrf_of(page.text),
            "next": "/",
            "pending": re.search(r'name="pending" value="([^"]+)"', page.text).group(1),  # type: ignore[union-attr]
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/records/incident/new?restore=")
    form = client.get(response.headers["location"]).text
    assert html.escape(typed["title.ar"]) in form or typed["title.ar"] in form
    assert 'value="2017-03-20"' in form
    assert re.search(r'<option value="attack_on_bakery" selected', form)
    assert _counts(client) == before  # nothing was applied unseen
    # the restore token works once only
    again = client.get(response.headers["location"]).text
    assert typed["title.ar"] not in again


def test_edit_changes_only_what_changed_and_records_the_user(
    clients: dict[str, TestClient], world: World
) -> None:
    client = clients["verifier"]
    csrf = csrf_of(client.get(f"/r/{world.incident}/edit").text)
    current = client.get(f"/api/records/{world.incident}").json()["fields"]
    form = {k: str(v) for k, v in current.items() if isinstance(v, str)}
    form.update(
        {
            "date": "2017-03-14",
            "place.coordinates": "33.5711,36.4022,500",
            "violations": "attack_on_market",
            "killed.total": "2",
            "grading": "fair",
            "csrf": csrf,
        }
    )
    response = client.post(f"/r/{world.incident}/edit", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    history = client.get(f"/api/records/{world.incident}/history").json()["history"]
    last = history[-1]
    assert last["user"] == "verifier"
    assert set(last["fields"]) == {"grading"}
