"""Team accounts: who may log in, with which role, and their API tokens.

Kept in their own SQLCipher file beside the records store (``web.db`` in the vault
folder), keyed with a sub-key of the vault's master key: user names, password hashes,
TOTP secrets and token hashes are unreadable without the vault passphrase. Passwords are
hashed with Argon2id (argon2-cffi); API tokens are random and stored only as SHA-256
(they carry 256 bits of entropy, so a slow hash would add nothing).

Every change to an account is also a signed ledger event (issue 4: every user's actions
attributable), through the *journal* the server gives: who did it and to whom, as
pseudonymous account ids (`acct-` + 16 random hex digits) and roles. A ledger travels in
bundles to other teams, so an event never holds a user name, password, TOTP secret or
token; the mapping from account id to name lives only here, in the encrypted accounts
file, and the audit page resolves it locally. Record edits made in the web app name the
same account id, so one person's actions line up across the ledger.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
    text,
    update,
)

from athar.errors import InputError
from athar.records.store import sqlite_engine
from athar.web.roles import check_role

FILE_NAME = "web.db"
MIN_PASSWORD = 10
TOKEN_PREFIX = "athar_"  # noqa: S105 - a public prefix, not a secret
ACCOUNT_PREFIX = "acct-"
TOKEN_ID = 12  # hex digits of a token's hash shown to its owner and named in events

ACCOUNT_CREATED = "account.created"
ACCOUNT_DISABLED = "account.disabled"
ACCOUNT_ROLE = "account.role_changed"
ACCOUNT_PASSWORD = "account.password_changed"  # noqa: S105 - an event kind, not a secret
ACCOUNT_TOTP = "account.totp_enabled"
ACCOUNT_TOKEN_CREATED = "account.token_created"  # noqa: S105
ACCOUNT_TOKEN_REVOKED = "account.token_revoked"  # noqa: S105
ACCOUNT_KINDS = frozenset(
    {
        ACCOUNT_CREATED,
        ACCOUNT_DISABLED,
        ACCOUNT_ROLE,
        ACCOUNT_PASSWORD,
        ACCOUNT_TOTP,
        ACCOUNT_TOKEN_CREATED,
        ACCOUNT_TOKEN_REVOKED,
    }
)

# Appends one signed event (kind, body) to the vault's ledger; raising undoes the change.
Journal = Callable[[str, dict[str, Any]], None]

metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),
    Column("password", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("totp", Text),
    Column("lang", Text, nullable=False, default="ar"),
    Column("arabic_digits", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", Integer, nullable=False),
    Column("account", Text, unique=True),
)
tokens = Table(
    "api_tokens",
    metadata,
    Column("hash", Text, primary_key=True),
    Column("user", Text, nullable=False, index=True),
    Column("label", Text, nullable=False),
    Column("created", Integer, nullable=False),
)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    lang: str
    arabic_digits: bool
    totp: bool
    account: str = ""  # the pseudonymous id ledger events carry instead of the name


def _user(row: object) -> User:
    return User(
        name=row.name,  # type: ignore[attr-defined]
        role=row.role,  # type: ignore[attr-defined]
        lang=row.lang,  # type: ignore[attr-defined]
        arabic_digits=bool(row.arabic_digits),  # type: ignore[attr-defined]
        totp=bool(row.totp),  # type: ignore[attr-defined]
        account=row.account or "",  # type: ignore[attr-defined]
    )


def new_account_id() -> str:
    return ACCOUNT_PREFIX + secrets.token_hex(8)


def ledger_journal(vault: Any) -> Journal:
    """A journal that signs and appends on the calling thread (a CLI holding the vault)."""

    def append(kind: str, body: dict[str, Any]) -> None:
        with vault.ledger.transaction() as tx:
            tx.append(kind, body)

    return append


def worker_journal(vault: Any, worker: Any) -> Journal:
    """A journal for the server: the ledger belongs to the vault thread (athar.web.worker),
    so the append runs there, and the caller waits for it (a failed append must undo the
    account change, so it cannot be left for later)."""
    direct = ledger_journal(vault)
    vault_thread = worker.call(threading.get_ident)

    def append(kind: str, body: dict[str, Any]) -> None:
        if threading.get_ident() == vault_thread:
            direct(kind, body)
        else:
            worker.call(direct, kind, body)

    return append


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not (2 <= len(name) <= 64) or any(c.isspace() or not c.isprintable() for c in name):
        raise InputError("a user name is 2 to 64 characters without spaces").at("name")
    return name


class Accounts:
    def __init__(
        self,
        vault_root: Path,
        key: bytes,
        hasher: PasswordHasher | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.engine: Engine = sqlite_engine(vault_root / FILE_NAME, key)
        metadata.create_all(self.engine)
        self._migrate()
        self.hasher = hasher or PasswordHasher()  # Argon2id, RFC 9106 low-memory profile
        self.journal = journal
        # A hash to verify against when the user does not exist, so that a login for an
        # unknown name takes as long as one with a wrong password.
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    def _migrate(self) -> None:
        """Give every account an id (files made before account ids existed)."""
        columns = {c["name"] for c in inspect(self.engine).get_columns("users")}
        with self.engine.begin() as conn:
            if "account" not in columns:
                conn.execute(text("ALTER TABLE users ADD COLUMN account TEXT"))
                conn.execute(text("CREATE UNIQUE INDEX users_account ON users (account)"))
            for (name,) in conn.execute(select(users.c.name).where(users.c.account.is_(None))):
                conn.execute(
                    update(users).where(users.c.name == name).values(account=new_account_id())
                )

    def _record(self, kind: str, body: dict[str, Any]) -> None:
        """Sign the change into the ledger; called inside the accounts transaction, so
        a failed append leaves the account as it was."""
        if self.journal is not None:
            self.journal(kind, body)

    def _who(self, conn: Any, name: str) -> tuple[str, str]:
        row = conn.execute(
            select(users.c.account, users.c.role).where(users.c.name == name)
        ).first()
        if row is None:
            raise InputError("no user called {name}", name=name[:64]).at("name")
        return str(row.account), str(row.role)

    def _body(self, conn: Any, name: str, by: str | None, **extra: Any) -> dict[str, Any]:
        account, role = self._who(conn, name)
        body: dict[str, Any] = {"account": account, "role": role}
        actor = self._who(conn, by)[0] if by is not None else account
        body["user"] = actor
        body.update(extra)
        return body

    def names(self) -> dict[str, str]:
        """Account id -> user name, for showing the ledger to this team only."""
        with self.engine.connect() as conn:
            return {r.account: r.name for r in conn.execute(select(users.c.account, users.c.name))}

    def account_of(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.account).where(users.c.name == name)).first()
        return str(row.account) if row is not None else None

    def close(self) -> None:
        self.engine.dispose()

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(users.c.name)).all())

    def add(
        self, name: str, password: str, role: str, lang: str = "ar", by: str | None = None
    ) -> User:
        """A new account; *by* names the admin who added it (None: added from the CLI)."""
        name = check_name(name)
        role = check_role(role)
        if len(password) < MIN_PASSWORD:
            raise InputError("a password needs at least {n} characters", n=MIN_PASSWORD).at(
                "password"
            )
        if lang not in ("ar", "en"):
            lang = "ar"
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise InputError("there is already a user called {name}", name=name).at("name")
            account = new_account_id()
            conn.execute(
                insert(users).values(
                    name=name,
                    password=self.hasher.hash(password),
                    role=role,
                    lang=lang,
                    arabic_digits=False,
                    disabled=False,
                    created=int(time.time()),
                    account=account,
                )
            )
            body = self._body(conn, name, by)
            if by is None:
                del body["user"]  # no account did it: the signing device answers
            self._record(ACCOUNT_CREATED, body)
        return User(name, role, lang, False, False, account)

    def get(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users).where(users.c.name == name, users.c.disabled.is_(False))
            ).first()
        return _user(row) if row is not None else None

    def all_users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(users.c.name))]

    def authenticate(self, name: str, password: str, code: str | None) -> User | None:
        """The user if the password (and TOTP code, when enabled) is right, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users).where(users.c.name == name.strip(), users.c.disabled.is_(False))
            ).first()
        try:
            self.hasher.verify(row.password if row is not None else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if row.totp and not pyotp.TOTP(row.totp).verify((code or "").strip(), valid_window=1):
            return None
        if self.hasher.check_needs_rehash(row.password):
            with self.engine.begin() as conn:
                conn.execute(
                    update(users)
                    .where(users.c.name == row.name)
                    .values(password=self.hasher.hash(password))
                )
        return _user(row)

    def needs_code(self, name: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.totp).where(users.c.name == name.strip())).first()
        return bool(row and row.totp)

    def set_prefs(self, name: str, lang: str, arabic_digits: bool) -> None:
        if lang not in ("ar", "en"):
            raise InputError("unknown language {lang}", lang=lang).at("lang")
        with self.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.name == name)
                .values(lang=lang, arabic_digits=arabic_digits)
            )

    def set_password(self, name: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise InputError("a password needs at least {n} characters", n=MIN_PASSWORD).at(
                "password"
            )
        with self.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.name == name)
                .values(password=self.hasher.hash(password))
            )
            self._record(ACCOUNT_PASSWORD, self._body(conn, name, None))

    def enable_totp(self, name: str, secret: str, code: str) -> None:
        """Turn on the second factor once the user proves their app shows the right code."""
        if not pyotp.TOTP(secret).verify(code.strip(), valid_window=1):
            raise InputError("the code does not match; check the time on your phone").at("code")
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(totp=secret))
            self._record(ACCOUNT_TOTP, self._body(conn, name, None))

    def disable(self, name: str, by: str | None = None) -> None:
        """Lock the account out and drop its tokens; *by* names the admin."""
        with self.engine.begin() as conn:
            found = conn.execute(
                update(users)
                .where(users.c.name == name, users.c.disabled.is_(False))
                .values(disabled=True)
            )
            if not found.rowcount:
                return  # no such active user: nothing changed, nothing to record
            conn.execute(delete(tokens).where(tokens.c.user == name))
            self._record(ACCOUNT_DISABLED, self._body(conn, name, by))

    def set_role(self, name: str, role: str, by: str | None = None) -> None:
        """Give the account another role; *by* names the admin."""
        role = check_role(role)
        with self.engine.begin() as conn:
            previous = self._who(conn, name)[1]
            if previous == role:
                return
            conn.execute(update(users).where(users.c.name == name).values(role=role))
            self._record(ACCOUNT_ROLE, self._body(conn, name, by, previous=previous))

    # -- API tokens ---------------------------------------------------------------------
    @staticmethod
    def _token_hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def new_token(self, name: str, label: str) -> str:
        """A fresh API token; shown once, only its hash is kept."""
        label = label.strip()[:80] or "API"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = self._token_hash(token)
        with self.engine.begin() as conn:
            conn.execute(
                insert(tokens).values(hash=digest, user=name, label=label, created=int(time.time()))
            )
            # The label is the user's own words (it may name a person or a place): not signed.
            body = self._body(conn, name, None, token_id=digest[:TOKEN_ID])
            self._record(ACCOUNT_TOKEN_CREATED, body)
        return token

    def token_user(self, token: str) -> User | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users)
                .join(tokens, tokens.c.user == users.c.name)
                .where(tokens.c.hash == self._token_hash(token), users.c.disabled.is_(False))
            ).first()
        return _user(row) if row is not None else None

    def user_tokens(self, name: str) -> list[tuple[str, str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tokens.c.hash, tokens.c.label, tokens.c.created).where(tokens.c.user == name)
            ).all()
        return [(r.hash[:TOKEN_ID], r.label, r.created) for r in rows]

    def revoke_token(self, name: str, prefix: str) -> bool:
        if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
            return False
        with self.engine.begin() as conn:
            gone = conn.execute(
                select(tokens.c.hash).where(tokens.c.user == name, tokens.c.hash.like(prefix + "%"))
            ).all()
            if not gone:
                return False
            conn.execute(
                delete(tokens).where(tokens.c.user == name, tokens.c.hash.like(prefix + "%"))
            )
            for row in gone:
                body = self._body(conn, name, None, token_id=row.hash[:TOKEN_ID])
                self._record(ACCOUNT_TOKEN_REVOKED, body)
        return True
