"""Where the projection lives: an encrypted SQLite file by default, PostgreSQL by URL.

The embedded store is SQLCipher (SQLite with every page encrypted, AES-256, HMAC per
page), keyed with a sub-key of the vault's master key, so a seized laptop shows no names
or text even though records are queryable SQL while the vault is open. Temporary tables
and sorts stay in memory (SQLCipher is built with TEMP_STORE=2). A team server keeps its
projection in PostgreSQL, whose disk the server's operator must encrypt; both run the
same SQL through SQLAlchemy, apart from full-text search, which each does natively.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlcipher3
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.pool import NullPool

from athar.errors import AtharError, InputError
from athar.vault.fsutil import PRIVATE_FILE

SCHEMA_HEAD = "0001"
FILE_NAME = "records.db"

metadata = MetaData()

meta = Table("meta", metadata, Column("key", Text, primary_key=True), Column("value", Text))

records = Table(
    "records",
    metadata,
    Column(
        "rid", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("id", Text, nullable=False, unique=True),
    Column("type", Text, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("title", Text),
    Column("date_start", Text),
    Column("date_end", Text),
    Column("place", Text),  # folded place names, for filtering
    Column("admin_area", Text),  # folded
    Column("lat", Float),
    Column("lon", Float),
    Column("status", Text),
    Column("parent", Text),
    Column("created", Text, nullable=False),  # clock of the first event
    Column("updated", Text, nullable=False),  # clock of the latest winning change
    Column("author", Text, nullable=False),  # device fingerprint of the creating event
    Column("data", Text, nullable=False),  # JSON {path: value}
    Column("clocks", Text, nullable=False),  # JSON {path: "stamp|device"} of each winner
    Index("records_type_date", "type", "date_start"),
    Index("records_parent", "parent"),
    Index("records_status", "type", "status"),
    Index("records_admin", "admin_area"),
)

terms = Table(
    "terms",
    metadata,
    Column("rid", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("vocabulary", Text, primary_key=True),
    Column("term", Text, primary_key=True),
    Index("terms_lookup", "vocabulary", "term", "rid"),
)

links = Table(
    "links",
    metadata,
    Column("src", Text, primary_key=True),
    Column("rel", Text, primary_key=True),
    Column("dst", Text, primary_key=True),
    Column("present", Boolean, nullable=False),
    Column("attrs", Text, nullable=False),
    Column("clock", Text, nullable=False),
    Index("links_dst", "dst"),
)

history = Table(
    "history",
    metadata,
    Column(
        "hid", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("record", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("clock", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("changes", Text, nullable=False),
    Index("history_record", "record", "clock"),
)

vocab_terms = Table(
    "vocab_terms",
    metadata,
    Column("vocabulary", Text, primary_key=True),
    Column("term", Text, primary_key=True),
    Column("ar", Text, nullable=False),
    Column("en", Text, nullable=False),
    Column("clock", Text, nullable=False),
)


def _sqlcipher_connect(path: Path, key: bytes) -> Any:
    conn = sqlcipher3.connect(str(path), timeout=120, check_same_thread=False, isolation_level=None)
    # A raw 256-bit key: no passphrase KDF per connection (the vault's Argon2id already ran).
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        conn.close()
        raise AtharError(
            "the records store {path} cannot be opened with this vault's key; "
            "move it aside and run athar rebuild",
            path=str(path),
        ) from exc
    conn.execute("PRAGMA journal_mode=WAL")
    # The projection can always be rebuilt from the ledger, so NORMAL durability is enough:
    # a crash can only lose the newest applied events, which the next open re-applies.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def sqlite_engine(path: Path, key: bytes) -> Engine:
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    # The plain SQLite dialect over SQLCipher's driver: SQLAlchemy's pysqlcipher dialect
    # would derive the key from a passphrase on every connection.
    engine = create_engine(
        "sqlite://",
        module=sqlcipher3,
        creator=lambda: _sqlcipher_connect(path, key),
        poolclass=NullPool,
    )

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # One writer at a time, decided at BEGIN rather than at the first write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def postgres_engine(url: str) -> Engine:
    if not url.startswith(("postgresql://", "postgresql+psycopg://")):
        raise InputError("a records store URL must start with postgresql://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, poolclass=NullPool)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except Exception:  # no table yet: a new store
            return None
    return str(row[0]) if row else None


def migrate(engine: Engine) -> None:
    """Bring the schema to SCHEMA_HEAD with Alembic; nearly free when already there."""
    if current_revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
