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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlcipher3
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
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
from sqlalchemy.pool import NullPool, QueuePool

from athar.errors import AtharError, InputError
from athar.vault.fsutil import PRIVATE_FILE, fsync_dir


def _null(value: None) -> None:
    return value


# The driver binds None and bool (not exactly int) by looking for an adapter, finding
# none, and then probing the value for a __conform__ method: an exception raised and
# cleared each time, ~2 µs, six times in an average records row (8 of the 55 CPU s a
# million-event rebuild spent writing). An adapter found at once binds the same NULL or
# integer (tests/test_records.py checks both).
sqlcipher3.register_adapter(type(None), _null)
sqlcipher3.register_adapter(bool, int)

SCHEMA_HEAD = "0002"
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
)

terms = Table(
    "terms",
    metadata,
    Column("rid", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("vocabulary", Text, primary_key=True),
    Column("term", Text, primary_key=True),
    Index("terms_lookup", "vocabulary", "term", "rid"),
    sqlite_with_rowid=False,
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
    sqlite_with_rowid=False,
)

history = Table(
    "history",
    metadata,
    Column("seq", BigInteger, primary_key=True),  # first: history grows at its end
    Column("record", Text, primary_key=True),
    Column("clock", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Index("history_record", "record", "seq"),
    sqlite_with_rowid=False,
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


def _sqlcipher_connect(path: Path, key: bytes, bulk: bool = False) -> Any:
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
    if bulk:  # a rebuild into a new file: if it crashes, the file is simply thrown away
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(f"PRAGMA cache_size=-{bulk_cache_kib()}")
    else:
        conn.execute("PRAGMA journal_mode=WAL")
        # The projection can always be rebuilt from the ledger, so NORMAL durability is
        # enough: a crash loses at most the newest applied events, re-applied on next open.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-131072")  # up to 128 MiB of decrypted pages
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def bulk_cache_kib() -> int:
    """Page cache of a rebuild: a quarter of the memory, at most 1 GiB. The load edits
    records made long before, and builds indexes and people's statuses over the whole
    store at the end; with the store in memory none of it reads and decrypts a page
    twice (a million events: 820 MB of store; 26 s less with 1 GiB than with 128 MiB)."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        memory = 0
    return max(131072, min(1 << 20, memory // 4 // 1024))


def sqlite_engine(path: Path, key: bytes, bulk: bool = False) -> Engine:
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    # The plain SQLite dialect over SQLCipher's driver: SQLAlchemy's pysqlcipher dialect
    # would derive the key from a passphrase on every connection.
    # A pool keeps connections, and with them SQLCipher's cache of decrypted pages: a new
    # connection per transaction would decrypt the indexes again every batch.
    engine = create_engine(
        "sqlite://",
        module=sqlcipher3,
        creator=lambda: _sqlcipher_connect(path, key, bulk),
        poolclass=QueuePool,
        pool_size=2,
        max_overflow=4,
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


_SIDE_FILES = ("-wal", "-shm", "-journal")


def remove_database(path: Path) -> None:
    for suffix in ("", *_SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def replace_database(fresh: Path, path: Path) -> None:
    """Put a rebuilt database in place of the old one. The old one's WAL must go first:
    SQLite would otherwise replay it into the new file."""
    with open(fresh, "rb+") as handle:
        os.fsync(handle.fileno())
    for suffix in _SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(fresh, path)
    fsync_dir(path.parent)


def drop_secondary_indexes(engine: Engine) -> list[str]:
    """Drop the indexes a bulk load does not need (all but primary keys and uniqueness);
    returns the statements that create them again."""
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        ).all()
        for name, _ in rows:
            conn.execute(text(f'DROP INDEX "{name}"'))
    return [str(sql) for _, sql in rows]


FTS_HASH_DEFAULT = 1024 * 1024  # FTS5's own default
FTS_HASH_BULK = 64 * 1024 * 1024
FTS_STAGE = "temp.fts_stage"  # a bulk load's search documents, until the end of the load
_FTS_UNSTAGE = f"INSERT INTO records_fts (rowid, terms) SELECT rowid, terms FROM {FTS_STAGE}"  # noqa: S608


@contextmanager
def bulk_load(engine: Engine) -> Iterator[Connection]:
    """One transaction over a whole load into a new file (no journal: on a crash the
    file is thrown away). Committing every batch would write the same scattered index
    pages again and again.

    Search documents are staged in a temporary table (in memory: SQLCipher keeps
    temporary storage there, so it is never written or encrypted) and put into the
    full-text index in one statement at the end. FTS5 writes a segment whenever a row
    id is smaller than the last one or is deleted, so feeding it batch by batch, with
    the deletes of records edited later, cost a rebuild a quarter of its time; streaming
    new records into it and replacing the edited ones at the end cost more than this
    (the deletes)."""
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {FTS_STAGE} (rowid INTEGER PRIMARY KEY, terms TEXT)"))
        yield conn
        # a rebuild's reader may have indexed the documents itself (nothing staged):
        # then the index is left exactly as it came (no hash-size writes)
        if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {FTS_STAGE})")).scalar():  # noqa: S608
            _fts_hash(conn, FTS_HASH_BULK)
            conn.execute(text(_FTS_UNSTAGE))
            _fts_hash(conn, FTS_HASH_DEFAULT)
        conn.execute(text(f"DROP TABLE {FTS_STAGE}"))


_FTS_HASH = "INSERT INTO records_fts (records_fts, rank) VALUES ('hashsize', ?)"


def _fts_hash(conn: Connection, size: int) -> None:
    conn.exec_driver_sql(_FTS_HASH, (size,))


# FTS5's own tables behind the contentless records_fts (no content table), in copy order
SEARCH_SHADOWS = ("data", "idx", "docsize", "config")


def search_table_sql(conn: Connection) -> str | None:
    """The statement that made the store's full-text table (SQLite), for
    search_index_rows to make the same one in memory."""
    found = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'records_fts'"
    ).scalar()
    return None if found is None else str(found)


def search_index_rows(
    create_sql: str, documents: dict[int, str]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The full-text index of *documents*, as the rows of FTS5's own tables.

    Built in memory (never on disk) by the same SQLite library (SQLCipher's), from the
    store's own CREATE statement and by the same steps as store.bulk_load (the documents
    in row id order under the bulk hash size, then the default one, then commit), so the
    rows are the ones the writer would get by indexing the documents itself. The reader
    has nothing else to do by then: this takes the indexing off the writer, which only
    copies the rows, while the writer finishes its last batches and people's statuses.
    """
    conn = sqlcipher3.connect(":memory:", isolation_level=None)
    try:
        conn.execute(create_sql)
        conn.execute("BEGIN")
        conn.execute(_FTS_HASH, (FTS_HASH_BULK,))
        conn.executemany(
            "INSERT INTO records_fts (rowid, terms) VALUES (?, ?)", sorted(documents.items())
        )
        documents.clear()
        conn.execute(_FTS_HASH, (FTS_HASH_DEFAULT,))
        conn.execute("COMMIT")
        return [
            (name, conn.execute(f"SELECT * FROM records_fts_{name}").fetchall())  # noqa: S608
            for name in SEARCH_SHADOWS
        ]
    finally:
        conn.close()


def put_search_index(conn: Connection, tables: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """Replace the (still empty) full-text index of the store being loaded with the rows
    search_index_rows made. Nothing of this load has used records_fts yet (the writer
    stages documents elsewhere), so FTS5 reads the new rows when it is next used."""
    for name, rows in tables:
        if name not in SEARCH_SHADOWS:
            raise AtharError("the rebuild's reader process failed: {error}", error=name)
        table = f"records_fts_{name}"
        conn.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608


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
