# ruff: noqa: F811  (pytest fixtures imported from test_web_fixtures are redefined as arguments)
"""Every endpoint × every role: each role gets exactly the access the role table gives
it, anonymous callers get none, and no route escapes the table."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route

from athar.web.roles import allowed, roles
from test_web_fixtures import World, app_client, clients, csrf_of, fresh, world  # noqa: F401

# (method, path, permission, body kind). Paths use {incident}, {person}, {item} from the
# test world. Bodies are minimal: a 400 for a bad value still proves the door was open.
TABLE: list[tuple[str, str, str, str]] = [
    ("GET", "/", "read", ""),
    ("GET", "/records/incident", "read", ""),
    ("GET", "/records/person", "read", ""),
    ("GET", "/records/source", "read", ""),
    ("GET", "/records/claim", "read", ""),
    ("GET", "/records/missing", "read", ""),
    ("GET", "/records/incident/new", "create", ""),
    ("POST", "/records/source/new", "create", "form:type=witness&name=مصدر"),
    ("GET", "/r/{incident}", "read", ""),
    ("GET", "/r/{incident}/edit", "edit", ""),
    ("POST", "/r/{person}/edit", "edit", "form:name_ar.full=مُحَمَّد أحمد الحلبي&sex=male"),
    ("POST", "/r/{incident}/link", "edit", "form:rel=source&target={source}"),
    ("POST", "/r/{incident}/victim", "create", "form:name_ar.full=ضحية"),
    ("GET", "/search?q=محمد", "read", ""),
    ("GET", "/audit", "audit", ""),
    ("GET", "/audit/proof/1", "audit", ""),
    ("GET", "/map", "read", ""),
    ("GET", "/timeline", "read", ""),
    ("GET", "/map/incidents.geojson", "read", ""),
    ("GET", "/media", "read", ""),
    ("GET", "/media/upload", "media.upload", ""),
    ("GET", "/media/{item}", "media.view", ""),
    ("GET", "/media/{item}/raw", "media.view", ""),
    ("POST", "/media/{item}/link", "edit", "form:record={incident}"),
    ("GET", "/verification", "read", ""),
    ("GET", "/verification?status=verified", "read", ""),
    ("POST", "/media/{item}/verify", "verify", "form:status=in_review&reasoning=قيد الفحص"),
    ("GET", "/api/verification", "read", ""),
    ("GET", "/api/verification/{item}", "media.view", ""),
    (
        "POST",
        "/api/verification/{item}",
        "verify",
        'json:{"fields": {"status": "in_review", "check.date": "consistent"}}',
    ),
    ("GET", "/account", "read", ""),
    ("POST", "/account", "read", "form:action=token&label=t"),
    ("GET", "/users", "users", ""),
    ("POST", "/users", "users", "form:name=x&password=short&role=viewer"),
    ("GET", "/device", "users", ""),
    ("POST", "/device", "users", "form:password=wrong&confirm=WIPE"),  # refused: nothing wiped
    ("GET", "/api/me", "read", ""),
    ("GET", "/api/counts", "read", ""),
    ("GET", "/api/vocabularies", "read", ""),
    ("GET", "/api/records?q=محمد", "read", ""),
    ("GET", "/api/records/{incident}", "read", ""),
    ("GET", "/api/records/{incident}/history", "read", ""),
    ("POST", "/api/records/source", "create", 'json:{"fields": {"type": "witness"}}'),
    ("PATCH", "/api/records/{source}", "edit", 'json:{"fields": {"name": "شاهد عيان"}}'),
    (
        "POST",
        "/api/records/{incident}/links",
        "edit",
        'json:{"rel": "source", "target": "{source}"}',
    ),
    ("GET", "/api/items", "read", ""),
    ("GET", "/api/items/{item}/raw", "media.view", ""),
    ("GET", "/api/audit", "audit", ""),
    ("GET", "/api/audit/1/proof", "audit", ""),
    ("GET", "/api/export/incident?format=geojson", "export", ""),
    ("POST", "/api/uploads", "media.upload", 'json:{"name": "a.txt", "size": 3}'),
    ("GET", "/api/uploads/0000", "media.upload", ""),
    ("PUT", "/api/uploads/0000?offset=0", "media.upload", "raw:abc"),
    ("GET", "/publish", "publish", ""),
    ("GET", "/publish?status=all", "publish", ""),
    ("GET", "/publish/0000000000/copy", "publish", ""),
    ("POST", "/publish/0000000000/confirm", "publish", "form:back=pending"),
    ("POST", "/publish/0000000000/reject", "publish", "form:reason=وجه ظاهر"),
    ("POST", "/publish/0000000000/remake", "publish", "form:x=1&y=1&w=20&h=20"),
    ("GET", "/api/publish/copies", "publish", ""),
    ("POST", "/api/publish/copies/0000000000/confirm", "publish", "raw:"),
    ("POST", "/api/publish/copies/0000000000/reject", "publish", 'json:{"reason": "وجه ظاهر"}'),
    ("GET", "/api/docs", "read", ""),
    ("GET", "/linkage", "linkage", ""),
    ("POST", "/linkage/decide", "linkage", "form:left={person}&right={person}&decision=match"),
    ("POST", "/linkage/run", "linkage.run", ""),
    ("GET", "/trace", "trace", ""),
    ("GET", "/trace?report={person}", "trace", ""),
    ("GET", "/api/linkage/queue", "linkage", ""),
    ("GET", "/api/linkage/decisions", "linkage", ""),
    (
        "POST",
        "/api/linkage/decisions",
        "linkage",
        'json:{"left": "{person}", "right": "{person}", "decision": "match"}',
    ),
    ("POST", "/api/linkage/run", "linkage.run", ""),
    ("GET", "/api/trace/{person}", "trace", ""),
]
# Routes open to everyone, or to any logged-in user whatever the role.
OPEN = {("GET", "/login"), ("POST", "/login"), ("POST", "/prefs"), ("POST", "/logout")}
# `athar sync` routes: a device's signed request, not a role, opens them (every one of
# them refuses a session or token alone: tests/test_sync_http.py).
SYNC = {
    ("GET", "/api/sync/state"),
    ("POST", "/api/sync/push"),
    ("GET", "/api/sync/push/{transfer_id}"),
    ("PUT", "/api/sync/push/{transfer_id}"),
    ("POST", "/api/sync/push/{transfer_id}/commit"),
    ("POST", "/api/sync/pull"),
    ("GET", "/api/sync/pull/{transfer_id}"),
    ("POST", "/api/sync/pull/{transfer_id}/done"),
    ("GET", "/api/sync/mailbox"),
    ("GET", "/api/sync/mailbox/{bundle_id}"),
    ("DELETE", "/api/sync/mailbox/{bundle_id}"),
}
FRAMEWORK = {"/api/openapi.json", "/static", "/leaflet"}


def _fill(text: str, world: World) -> str:
    return (
        text.replace("{incident}", world.incident)
        .replace("{person}", world.person)
        .replace("{source}", world.source)
        .replace("{item}", world.photo)
    )


def _call(client: TestClient, method: str, path: str, body: str, csrf: str) -> Any:
    headers = {"x-csrf-token": csrf} if csrf else {}
    if body.startswith("form:"):
        data: dict[str, str] = {}
        for pair in body[5:].split("&"):
            key, _, value = pair.partition("=")
            data[key] = value
        data["csrf"] = csrf
        return client.request(method, path, data=data, follow_redirects=False)
    if body.startswith("json:"):
        return client.request(
            method,
            path,
            content=body[5:].encode(),
            headers={**headers, "content-type": "application/json"},
            follow_redirects=False,
        )
    if body.startswith("raw:"):
        return client.request(
            method, path, content=body[4:].encode(), headers=headers, follow_redirects=False
        )
    return client.request(method, path, headers=headers, follow_redirects=False)


@pytest.mark.parametrize("role", roles())
def test_every_endpoint_for_every_role(
    role: str, clients: dict[str, TestClient], world: World
) -> None:
    client = clients[role]
    csrf = csrf_of(client.get("/account").text)
    wrong = []
    for method, raw_path, permission, body in TABLE:
        path, body = _fill(raw_path, world), _fill(body, world)
        response = _call(client, method, path, body, csrf)
        if allowed(role, permission):
            ok = response.status_code in (200, 201, 303, 400, 409)
        else:
            ok = response.status_code == 403
        if not ok:
            wrong.append((method, path, response.status_code, response.text[:120]))
    assert wrong == []


def test_anonymous_gets_nothing(app_client: TestClient, world: World) -> None:
    client = fresh(app_client)
    for method, raw_path, _, body in TABLE:
        response = _call(client, method, _fill(raw_path, world), _fill(body, world), "")
        if raw_path.startswith("/api/"):
            assert response.status_code == 401, raw_path
        else:
            assert response.status_code == 303, raw_path
            assert response.headers["location"].startswith("/login?next="), raw_path


def test_api_token_obeys_the_role_too(
    clients: dict[str, TestClient], app_client: TestClient, world: World
) -> None:
    state = app_client.app.state.athar  # type: ignore[attr-defined]
    token = state.accounts.new_token("viewer", "script")
    bearer = {"authorization": f"Bearer {token}"}
    anon = fresh(app_client)
    assert anon.get("/api/me", headers=bearer).json()["role"] == "viewer"
    assert (
        anon.post(
            "/api/records/source", json={"fields": {"type": "witness"}}, headers=bearer
        ).status_code
        == 403
    )
    assert anon.get(f"/api/items/{world.photo}/raw", headers=bearer).status_code == 403
    assert anon.get("/api/me", headers={"authorization": "Bearer athar_forged"}).status_code == 401


def test_no_route_is_missing_from_the_table(app_client: TestClient) -> None:
    known = {(m, p.split("?")[0]) for m, p, _, _ in TABLE} | OPEN | SYNC
    placeholders = {
        "{record_id}",
        "{type_name}",
        "{item_id}",
        "{seq}",
        "{upload_id}",
        "{copy_id}",
    }
    missing = []
    for route in app_client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, Route) or any(route.path.startswith(f) for f in FRAMEWORK):
            continue
        for method in route.methods or ():
            if method == "HEAD":
                continue
            covered = any(
                m == method and _same_shape(route.path, p, placeholders) for m, p in known
            )
            if not covered:
                missing.append((method, route.path))
    assert missing == []


def _same_shape(template: str, path: str, placeholders: set[str]) -> bool:
    a, b = template.strip("/").split("/"), path.strip("/").split("/")
    return len(a) == len(b) and all(x == y or x in placeholders for x, y in zip(a, b, strict=True))


def test_role_table_gives_each_role_its_job() -> None:
    """The table itself, spelled out: a wrong edit to roles.json fails here."""
    expected = {
        "admin": {
            "read",
            "create",
            "edit",
            "media.view",
            "media.upload",
            "verify",
            "audit",
            "export",
            "users",
            "publish",
            "linkage",
            "linkage.run",
            "trace",
        },
        "documenter": {"read", "create", "edit", "media.view", "media.upload", "trace"},
        "verifier": {"read", "edit", "media.view", "verify", "audit", "linkage", "trace"},
        "analyst": {"read", "media.view", "export", "linkage", "linkage.run", "trace"},
        "publisher": {"read", "media.view", "audit", "export", "publish"},
        "viewer": {"read"},
    }
    from athar.web.roles import permissions

    for role, perms in expected.items():
        assert {p for p in permissions() if allowed(role, p)} == perms, role
