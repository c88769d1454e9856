"""Shared fixtures of the web tests (imported by each tests/test_web_*.py): a real vault
with Arabic records, one account per role, and the app under an in-process client."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from athar.records.service import Records
from athar.vault.vault import Vault
from athar.web.accounts import Accounts
from athar.web.app import create_app
from athar.web.roles import roles
from athar.web.state import Settings

PASSPHRASE = "كلمة سر طويلة للاختبار — web test passphrase"
PASSWORD = "كلمة-مرور-طويلة-١٢٣"
BASE = "https://testserver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: Any, *, lifespan: str = "on", **tls: str) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port, on a thread; yields its
    base address and stops it afterwards. *tls*: ssl_certfile / ssl_keyfile."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", lifespan=lifespan, **tls
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


@dataclass
class World:
    vault_dir: Path
    incident: str
    person: str
    source: str
    photo: str


def build_world(root: Path, samples: Path | None = None) -> World:
    vault_dir = root / "vault"
    with Vault.create(vault_dir, PASSPHRASE) as vault, Records(vault) as records:
        accounts = Accounts(vault_dir, vault.keys.subkey("web/accounts"))
        for role in roles():
            accounts.add(role, PASSWORD, role, "en")
        accounts.close()
        files = root / "files"
        files.mkdir()
        png = (
            Path(__file__).resolve().parents[1]
            / "src"
            / "athar"
            / "samples"
            / "street-after-shelling.png"
        )
        (files / "صورة-الشارع.png").write_bytes(png.read_bytes())
        vault.add([files], "ملاحظة")
        photo = vault.items()[0].id
        source = records.create("source", {"type": "witness", "name": "شاهد عيان"}, "admin")
        incident = records.create(
            "incident",
            {
                "title.ar": "قصف سوق الحي الشرقي",
                "title.en": "Shelling of the eastern market",
                "date": "2017-03-14",
                "place.name_ar": "الحي الشرقي",
                "place.coordinates": "33.5711,36.4022,500",
                "violations": "attack_on_market",
                "killed.total": "2",
            },
            "admin",
        )
        person = records.create(
            "person", {"name_ar.full": "مُحَمَّد أحمد الحلبي", "sex": "male"}, "admin"
        )
        records.create(
            "status", {"person": person, "status": "killed", "date": "2017-03-14"}, "admin"
        )
        records.link(incident, "victim", person, user="admin")
        records.link(incident, "source", source, user="admin")
    return World(vault_dir, incident, person, source, photo)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="session")
def app_client(world: World) -> Iterator[TestClient]:
    app = create_app(world.vault_dir, PASSPHRASE, Settings())
    with TestClient(app, base_url=BASE) as client:
        yield client


def csrf_of(html: str) -> str:
    """The page's CSRF token (the login form's, on the login page: the last one)."""
    found = re.findall(r'name="csrf" value="([^"]*)"', html)
    assert found and found[-1], html[:500]
    return found[-1]


def post_login(client: TestClient, name: str, password: str = PASSWORD, code: str = "") -> Any:
    """The login form filled in and sent, as a browser would (its CSRF token first)."""
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "name": name,
            "password": password,
            "code": code,
            "csrf": csrf_of(page.text),
            "next": "/",
        },
        follow_redirects=False,
    )


def login(client: TestClient, name: str, password: str = PASSWORD, code: str = "") -> TestClient:
    """A client of its own (own cookie jar) logged in as *name*."""
    response = post_login(client, name, password, code)
    assert response.status_code == 303, response.text[:300]
    return client


def fresh(app_client: TestClient) -> TestClient:
    return TestClient(app_client.app, base_url=BASE)


@pytest.fixture(scope="session")
def clients(app_client: TestClient) -> dict[str, TestClient]:
    return {role: login(fresh(app_client), role) for role in roles()}
