"""Wiping the vault from the web app (issue 10): admins only, with the password (and TOTP
code) again, CSRF and a confirmation word in the admin's language; a refusal destroys
nothing; after the wipe the key file is gone and the server serves nothing from the
vault, to anyone, on any path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from athar.errors import VaultLocked
from athar.vault.vault import Vault
from athar.web.app import create_app
from athar.web.locale import Speaker
from athar.web.routes.device import CONFIRM_WORD
from athar.web.state import Settings
from test_web_fixtures import (
    BASE,
    PASSPHRASE,
    PASSWORD,
    World,
    build_world,
    csrf_of,
    login,
)

ARABIC_ADMIN = "مديرة-الموقع"


def _site(root: Path) -> Iterator[tuple[World, TestClient]]:
    world = build_world(root)
    app = create_app(world.vault_dir, PASSPHRASE, Settings())
    with TestClient(app, base_url=BASE) as client:
        accounts = client.app.state.athar.accounts  # type: ignore[attr-defined]
        accounts.add(ARABIC_ADMIN, PASSWORD, "admin", "ar")
        yield world, client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, TestClient]]:
    """For the tests that must leave the vault as it was (they check that they did)."""
    yield from _site(tmp_path_factory.mktemp("wipe-refused"))


@pytest.fixture
def doomed(tmp_path: Path) -> Iterator[tuple[World, TestClient]]:
    yield from _site(tmp_path)


def other(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url=BASE)


def wipe_form(client: TestClient, **fields: str) -> tuple[int, str]:
    page = client.get("/device")
    data = {"csrf": csrf_of(page.text), **fields}
    response = client.post("/device", data=data, follow_redirects=False)
    return response.status_code, response.text


def key_intact(world: World) -> bool:
    key = world.vault_dir / "key"
    if not key.exists():
        return False
    with Vault.open(world.vault_dir, PASSPHRASE) as v:
        return len(v.items()) == 1


def test_only_admins_reach_the_device_page(site: tuple[World, TestClient]) -> None:
    world, client = site
    for role in ("documenter", "verifier", "analyst", "publisher", "viewer"):
        c = login(other(client), role)
        assert c.get("/device").status_code == 403
        csrf = csrf_of(c.get("/account").text)
        word = Speaker("en").t(CONFIRM_WORD)
        r = c.post("/device", data={"csrf": csrf, "password": PASSWORD, "confirm": word})
        assert r.status_code == 403, role
    anon = other(client)
    r = anon.post("/device", data={"password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    admin = login(other(client), "admin")
    r = admin.post("/device", data={"password": PASSWORD, "confirm": "WIPE"})  # no CSRF
    assert r.status_code == 403
    page = admin.get("/device")
    assert page.status_code == 200 and 'name="confirm"' in page.text
    assert key_intact(world)


def test_wrong_password_code_or_word_destroys_nothing(site: tuple[World, TestClient]) -> None:
    world, client = site
    admin = login(other(client), "admin")
    word = Speaker("en").t(CONFIRM_WORD)
    status, text = wipe_form(admin, password="كلمة خاطئة", confirm=word)
    assert status == 400 and "nothing was destroyed" in text
    status, text = wipe_form(admin, password=PASSWORD, confirm="نعم")
    assert status == 400 and "nothing was destroyed" in text
    status, _ = wipe_form(admin, password=PASSWORD, confirm="")
    assert status == 400
    # With TOTP on, the password alone is not enough.
    accounts = client.app.state.athar.accounts  # type: ignore[attr-defined]
    secret = pyotp.random_base32()
    accounts.enable_totp("admin", secret, pyotp.TOTP(secret).now())
    status, _ = wipe_form(admin, password=PASSWORD, confirm=word)
    assert status == 400
    status, _ = wipe_form(admin, password=PASSWORD, code="000000", confirm=word)
    assert status == 400
    assert key_intact(world)
    assert admin.get("/records/incident").status_code == 200  # still serving
    # Repeated wrong passwords are slowed down like logins.
    for _ in range(3):
        status, _ = wipe_form(admin, password="x", code="000000", confirm=word)
    assert status == 429
    assert key_intact(world)


def test_arabic_page_is_right_to_left(site: tuple[World, TestClient]) -> None:
    _, client = site
    admin = login(other(client), ARABIC_ADMIN)
    page = admin.get("/device").text
    assert re.search(r'<html lang="ar" dir="rtl">', page)
    assert Speaker("ar").t("Wipe this device") in page
    assert Speaker("ar").t(CONFIRM_WORD) in page  # the word to type, in Arabic


def test_wipe_destroys_the_keys_and_the_server_serves_nothing_after(
    doomed: tuple[World, TestClient],
) -> None:
    world, client = doomed
    admin = login(other(client), ARABIC_ADMIN)
    accounts = client.app.state.athar.accounts  # type: ignore[attr-defined]
    secret = pyotp.random_base32()
    accounts.enable_totp(ARABIC_ADMIN, secret, pyotp.TOTP(secret).now())
    viewer = login(other(client), "viewer")
    assert "قصف سوق الحي الشرقي" in viewer.get(f"/r/{world.incident}").text
    word = Speaker("ar").t(CONFIRM_WORD)
    status, text = wipe_form(
        admin, password=PASSWORD, code=pyotp.TOTP(secret).now(), confirm=f"  {word} "
    )
    assert status == 410, text[:300]
    assert 'lang="ar" dir="rtl"' in text
    assert not (world.vault_dir / "key").exists()
    with pytest.raises(VaultLocked, match="wiped"):
        Vault.open(world.vault_dir, PASSPHRASE)
    secrets = ("قصف سوق الحي الشرقي", "الحلبي", "شاهد عيان", world.incident, world.photo)
    paths = [
        "/",
        f"/r/{world.incident}",
        "/records/person",
        f"/media/{world.photo}/raw",
        "/api/items",
        "/api/records?q=محمد",
        "/device",
        "/login",
        "/static/athar.css",
    ]
    for c in (viewer, admin, other(client)):
        for path in paths:
            r = c.get(path, follow_redirects=False)
            assert r.status_code == 410, path
            assert not any(s in r.text for s in secrets), path
            assert r.headers["cache-control"] == "no-store"
        r = c.post("/login", data={"name": "admin", "password": PASSWORD})
        assert r.status_code == 410
    english = other(client).get("/", headers={"accept-language": "en"}).text
    assert 'lang="en" dir="ltr"' in english and "wiped" in english
