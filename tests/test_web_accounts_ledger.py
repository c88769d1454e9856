"""Account actions as signed ledger events (issue 4: every user's actions attributable):
one event per action, naming accounts by pseudonymous id and role only (a ledger travels
in bundles), never a user name, password, TOTP secret or token; names resolved only on
this server's audit page; a failed append leaves the account as it was."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from athar.errors import InputError
from athar.records.store import sqlite_engine
from athar.vault.vault import Vault
from athar.web.accounts import ACCOUNT_KINDS, FILE_NAME, Accounts, ledger_journal
from athar.web.app import create_app
from athar.web.roles import roles
from athar.web.state import Settings
from test_web_fixtures import BASE, PASSPHRASE, PASSWORD, build_world, csrf_of, login

NEW_NAME = "مراسلة-حلب"
NEW_PASSWORD = "كلمة-مرور-جديدة-٤٥٦٧"
LATER_PASSWORD = "كلمة-أخرى-طويلة-٧٨٩٠"
TOKEN_LABEL = "حاسوب سامر في المكتب"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    world = build_world(tmp_path_factory.mktemp("accounts-ledger"))
    app = create_app(world.vault_dir, PASSPHRASE, Settings())
    with TestClient(app, base_url=BASE) as client:
        yield {"client": client, "state": app.state.athar, "secrets": set()}


def signed_events(env: dict[str, Any]) -> list[Any]:
    state = env["state"]
    return list(state.worker.call(state.vault.events))


def acting(env: dict[str, Any], action: Any) -> list[Any]:
    """Run *action*; the events it appended."""
    before = len(signed_events(env))
    action()
    return signed_events(env)[before:]


def test_each_account_action_is_one_signed_event(env: dict[str, Any]) -> None:
    state, found = env["state"], env["secrets"]
    admin = login(TestClient(env["client"].app, base_url=BASE), "admin")
    csrf = csrf_of(admin.get("/users").text)
    admin_id = state.accounts.account_of("admin")

    def post(client: TestClient, path: str, **data: str) -> None:
        answer = client.post(path, data={"csrf": csrf_of(client.get(path).text), **data})
        assert answer.status_code == 200, answer.text[:300]

    def one(events: list[Any], kind: str) -> dict[str, Any]:
        assert [e.event.kind for e in events] == [kind]
        assert events[0].signature_valid()
        body: dict[str, Any] = events[0].event.body
        return body

    new = one(
        acting(
            env,
            lambda: post(admin, "/users", name=NEW_NAME, password=NEW_PASSWORD, role="viewer"),
        ),
        "account.created",
    )
    new_id = state.accounts.account_of(NEW_NAME)
    assert re.fullmatch(r"acct-[0-9a-f]{16}", new_id)
    assert new == {"account": new_id, "role": "viewer", "user": admin_id}

    body = one(
        acting(env, lambda: post(admin, "/users", action="role", name=NEW_NAME, role="documenter")),
        "account.role_changed",
    )
    assert body == {"account": new_id, "role": "documenter", "previous": "viewer", "user": admin_id}

    user = login(TestClient(env["client"].app, base_url=BASE), NEW_NAME, NEW_PASSWORD)
    body = one(
        acting(
            env,
            lambda: post(user, "/account", action="password", old=NEW_PASSWORD, new=LATER_PASSWORD),
        ),
        "account.password_changed",
    )
    assert body == {"account": new_id, "role": "documenter", "user": new_id}

    secret = pyotp.random_base32()
    found.add(secret)
    code = pyotp.TOTP(secret).now()
    one(
        acting(env, lambda: post(user, "/account", action="totp", secret=secret, code=code)),
        "account.totp_enabled",
    )

    page: dict[str, str] = {}

    def make_token() -> None:
        answer = user.post(
            "/account",
            data={
                "csrf": csrf_of(user.get("/account").text),
                "action": "token",
                "label": TOKEN_LABEL,
            },
        )
        page["token"] = re.findall(r'<code id="new-token">([^<]+)</code>', answer.text)[0]

    body = one(acting(env, make_token), "account.token_created")
    token = page["token"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    found |= {token, digest, token.removeprefix("athar_")}
    assert body["token_id"] == digest[:12]
    body = one(
        acting(env, lambda: post(user, "/account", action="revoke", token=digest[:12])),
        "account.token_revoked",
    )
    assert body["token_id"] == digest[:12]
    # revoking it again, or a token that is not there, changes nothing and records nothing
    assert acting(env, lambda: post(user, "/account", action="revoke", token=digest[:12])) == []

    body = one(
        acting(env, lambda: post(admin, "/users", action="disable", name=NEW_NAME)),
        "account.disabled",
    )
    assert body == {"account": new_id, "role": "documenter", "user": admin_id}
    assert acting(env, lambda: post(admin, "/users", action="disable", name=NEW_NAME)) == []
    assert csrf  # the users page gave the admin a form


def test_no_name_secret_or_token_in_any_event(env: dict[str, Any]) -> None:
    if not env["secrets"]:
        test_each_account_action_is_one_signed_event(env)
    events = signed_events(env)
    account_events = [e for e in events if e.event.kind in ACCOUNT_KINDS]
    assert len(account_events) >= 7
    names = set(env["state"].accounts.names().values())
    assert NEW_NAME in names and "admin" in names
    # the test world's other users are called by their roles, which events do carry
    forbidden = (names - set(roles())) | {NEW_PASSWORD, LATER_PASSWORD, PASSWORD, TOKEN_LABEL}
    forbidden |= env["secrets"]
    for signed in events:  # every event, records too: the web names accounts by id there
        dumped = json.dumps(signed.event.body, ensure_ascii=False)
        raw = signed.entry.decode("utf-8", "replace")
        for value in forbidden:
            assert value not in dumped and value not in raw, (signed.event.kind, value)
    for signed in account_events:
        body = signed.event.body
        assert set(body) <= {"account", "role", "user", "previous", "token_id"}, body
        assert all(re.fullmatch(r"acct-[0-9a-f]{16}", body[k]) for k in ("account", "user")), body
        assert body["role"] in roles()


def test_web_record_edits_name_the_account_and_audit_resolves_it(env: dict[str, Any]) -> None:
    state = env["state"]
    documenter = login(TestClient(env["client"].app, base_url=BASE), "documenter")
    csrf = csrf_of(documenter.get("/account").text)
    events = acting(
        env,
        lambda: documenter.post(
            "/records/source/new",
            data={"csrf": csrf, "type": "witness", "name": "شاهدة من حي الشعار"},
        ),
    )
    [created] = events
    assert created.event.body["user"] == state.accounts.account_of("documenter")
    admin = login(TestClient(env["client"].app, base_url=BASE), "admin")
    audit = admin.get("/audit?who=documenter").text
    assert "record.created" in audit and "acct-" not in audit
    mine = admin.get("/audit?who=" + NEW_NAME).text
    assert "account.password_changed" in mine and NEW_NAME in mine


def test_failed_append_leaves_the_account_as_it_was(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", PASSPHRASE) as vault:
        key = vault.keys.subkey("web/accounts")

        def broken(kind: str, body: dict[str, Any]) -> None:
            raise OSError("disk full")

        accounts = Accounts(tmp_path / "v", key, journal=broken)
        with pytest.raises(OSError):
            accounts.add("موثّق-١", PASSWORD, "viewer")
        assert accounts.get("موثّق-١") is None
        accounts.journal = ledger_journal(vault)
        user = accounts.add("موثّق-١", PASSWORD, "viewer")
        accounts.journal = broken
        with pytest.raises(OSError):
            accounts.set_role("موثّق-١", "admin")
        with pytest.raises(InputError, match="unknown role"):
            accounts.set_role("موثّق-١", "overlord")
        with pytest.raises(InputError, match="no user called"):
            accounts.set_role("لا-أحد", "viewer")
        assert accounts.get("موثّق-١") == user and user.role == "viewer"
        assert [e.event.kind for e in vault.events()][1:] == ["account.created"]
        accounts.close()


def test_accounts_made_before_ids_get_one(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", PASSPHRASE) as vault:
        key = vault.keys.subkey("web/accounts")
    engine = sqlite_engine(tmp_path / "v" / FILE_NAME, key)
    with engine.begin() as conn:  # the accounts file as the first web release wrote it
        conn.execute(
            text(
                "CREATE TABLE users (name TEXT PRIMARY KEY, password TEXT NOT NULL, role TEXT "
                "NOT NULL, totp TEXT, lang TEXT NOT NULL, arabic_digits BOOLEAN NOT NULL, "
                "disabled BOOLEAN NOT NULL, created INTEGER NOT NULL)"
            )
        )
        conn.execute(text("INSERT INTO users VALUES ('قديم', 'x', 'viewer', NULL, 'ar', 0, 0, 1)"))
    engine.dispose()
    accounts = Accounts(tmp_path / "v", key)
    old = accounts.get("قديم")
    assert old is not None and old.account.startswith("acct-")
    assert accounts.names() == {old.account: "قديم"}
    accounts.close()
    again = Accounts(tmp_path / "v", key)  # stable across openings
    assert again.account_of("قديم") == old.account
    again.close()
