"""Team accounts: who may log in, with which role, and their API tokens.

Kept in their own SQLCipher file beside the records store (``web.db`` in the vault
folder), keyed with a sub-key of the vault's master key: user names, password hashes,
TOTP secrets and token hashes are unreadable without the vault passphrase. Passwords are
hashed with Argon2id (argon2-cffi); API tokens are random and stored only as SHA-256
(they carry 256 bits of entropy, so a slow hash would add nothing).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

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
    select,
    update,
)

from athar.errors import InputError
from athar.records.store import sqlite_engine
from athar.web.roles import check_role

FILE_NAME = "web.db"
MIN_PASSWORD = 10
TOKEN_PREFIX = "athar_"  # noqa: S105 - a public prefix, not a secret

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


def _user(row: object) -> User:
    return User(
        name=row.name,  # type: ignore[attr-defined]
        role=row.role,  # type: ignore[attr-defined]
        lang=row.lang,  # type: ignore[attr-defined]
        arabic_digits=bool(row.arabic_digits),  # type: ignore[attr-defined]
        totp=bool(row.totp),  # type: ignore[attr-defined]
    )


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not (2 <= len(name) <= 64) or any(c.isspace() or not c.isprintable() for c in name):
        raise InputError("a user name is 2 to 64 characters without spaces").at("name")
    return name


class Accounts:
    def __init__(self, vault_root: Path, key: bytes, hasher: PasswordHasher | None = None) -> None:
        self.engine: Engine = sqlite_engine(vault_root / FILE_NAME, key)
        metadata.create_all(self.engine)
        self.hasher = hasher or PasswordHasher()  # Argon2id, RFC 9106 low-memory profile
        # A hash to verify against when the user does not exist, so that a login for an
        # unknown name takes as long as one with a wrong password.
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    def close(self) -> None:
        self.engine.dispose()

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(users.c.name)).all())

    def add(self, name: str, password: str, role: str, lang: str = "ar") -> User:
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
            conn.execute(
                insert(users).values(
                    name=name,
                    password=self.hasher.hash(password),
                    role=role,
                    lang=lang,
                    arabic_digits=False,
                    disabled=False,
                    created=int(time.time()),
                )
            )
        return User(name, role, lang, False, False)

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

    def enable_totp(self, name: str, secret: str, code: str) -> None:
        """Turn on the second factor once the user proves their app shows the right code."""
        if not pyotp.TOTP(secret).verify(code.strip(), valid_window=1):
            raise InputError("the code does not match; check the time on your phone").at("code")
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(totp=secret))

    def disable(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(disabled=True))
            conn.execute(delete(tokens).where(tokens.c.user == name))

    # -- API tokens ---------------------------------------------------------------------
    @staticmethod
    def _token_hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def new_token(self, name: str, label: str) -> str:
        """A fresh API token; shown once, only its hash is kept."""
        label = label.strip()[:80] or "API"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(tokens).values(
                    hash=self._token_hash(token), user=name, label=label, created=int(time.time())
                )
            )
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
        return [(r.hash[:12], r.label, r.created) for r in rows]

    def revoke_token(self, name: str, prefix: str) -> bool:
        if len(prefix) < 8:
            return False
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(tokens).where(tokens.c.user == name, tokens.c.hash.like(prefix + "%"))
            )
        return bool(result.rowcount)
