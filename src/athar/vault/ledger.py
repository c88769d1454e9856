"""The append-only event ledger, stored sealed in SQLite (WAL).

Tables (everything that could identify content is sealed under a key derived from the
master key; the associated data binds each sealed value to its row):

    events(seq, tag, sealed)      seq = position in the log (0-based), tag = keyed hash of
                                  the event id (to refuse duplicates), sealed = entry bytes
    blob_keys(ref, sealed, seq)   per-blob data key, sealed; seq of its item.added event
    small_blobs(ref, data)        encrypted streams of small items (same format as files)
    checkpoints(size, sealed)     signed checkpoints (the latest is the commitment)
    meta(k, v)                    sealed head: size, Merkle frontier, per-device chain heads

A write is one transaction (BEGIN IMMEDIATE: a second writer waits), ends with a fresh
signed checkpoint, and costs one fsync of the WAL however many events it holds. After
the commit the checkpoint is also appended to the separate ``checkpoints`` file, so a
restored older copy of the database is caught by ``verify`` (rollback).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from athar.crypto import aead
from athar.errors import AtharError, DiskFull, IntegrityError
from athar.vault import merkle
from athar.vault.checkpoint import Checkpoint, SignedCheckpoint, open_note, sign_checkpoint
from athar.vault.events import (
    Event,
    SignedEvent,
    parse_entry,
    parse_essentials,
    sign_event,
    utc_now,
)
from athar.vault.fsutil import PRIVATE_FILE, free_bytes, raise_if_disk_full, write_fd
from athar.vault.keyfile import UnlockedKeys

_SEQ = struct.Struct(">Q")

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, tag BLOB NOT NULL UNIQUE,
                                   sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blob_keys (ref BLOB PRIMARY KEY, sealed BLOB NOT NULL,
                                      seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS blob_keys_by_seq ON blob_keys (seq);
CREATE TABLE IF NOT EXISTS small_blobs (ref BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
"""


def event_ad(seq: int) -> bytes:
    return b"event\n" + _SEQ.pack(seq)


@dataclass
class Head:
    """What an appender needs without reading the whole log."""

    size: int = 0
    frontier: merkle.Frontier = field(default_factory=merkle.Frontier)
    devices: dict[str, tuple[int, str]] = field(default_factory=dict)  # b64 key -> (dseq, id)

    def to_bytes(self) -> bytes:
        stack = [[s, h.hex()] for s, h in self.frontier._stack]
        return json.dumps({"size": self.size, "frontier": stack, "devices": self.devices}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Head:
        doc = json.loads(data)
        frontier = merkle.Frontier()
        frontier._stack = [(int(s), bytes.fromhex(h)) for s, h in doc["frontier"]]
        frontier.size = int(doc["size"])
        devices = {k: (int(v[0]), str(v[1])) for k, v in doc["devices"].items()}
        return cls(int(doc["size"]), frontier, devices)

    def advance(self, signed: SignedEvent) -> None:
        self.frontier.append(signed.leaf)
        self.size += 1
        device = base64.b64encode(signed.event.device).decode()
        self.devices[device] = (signed.event.dseq, signed.id)


Essentials = tuple[int, str, bytes, dict[str, Any]]  # seq, kind, device key, body


@dataclass(frozen=True)
class EventReader:
    """What another process needs to read the events on its own connection (a rebuild's
    reader): the file and the events key, handed over in memory, never written."""

    db_path: Path
    event_key: bytes = field(repr=False)

    def essentials_after(self, seq: int, batch: int) -> Iterator[list[Essentials]]:
        """(seq, kind, device, body) of the events after *seq*, a batch at a time."""
        conn = sqlite3.connect(self.db_path, timeout=120, isolation_level=None)
        try:
            last = seq
            while True:
                rows = conn.execute(
                    "SELECT seq, sealed FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (last, batch),
                ).fetchall()
                if not rows:
                    return
                out = []
                for s, sealed in rows:
                    where = f"event #{s}"
                    entry = aead.open_sealed(self.event_key, sealed, event_ad(s), what=where)
                    out.append((s, *parse_essentials(entry, where)))
                yield out
                last = rows[-1][0]
        finally:
            conn.close()


class Ledger:
    def __init__(self, root: Path, keys: UnlockedKeys) -> None:
        self.db_path = root / "ledger.db"
        self.checkpoint_file = root / "checkpoints"
        self.keys = keys
        self._event_key = keys.subkey("ledger/events")
        # A keyed HMAC state copied per use: cheaper than hmac.digest, which looks the
        # hash up again on every call with OpenSSL 3.
        self._tag_mac = hmac.new(keys.subkey("ledger/tags"), digestmod=hashlib.sha256)
        self._meta_key = keys.subkey("ledger/meta")
        self._cp_key = keys.subkey("ledger/checkpoints")
        self.origin = f"athar.vault/{keys.vault_id.hex()}"
        new = not self.db_path.exists()
        try:
            if new:
                os.close(os.open(self.db_path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
            self.conn = sqlite3.connect(self.db_path, timeout=120, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA secure_delete=ON")
            if new or self.conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._migrate()
        except OSError as exc:
            raise_if_disk_full(exc)
            raise
        except sqlite3.Error as exc:
            _reraise_sqlite(exc, root)

    def _migrate(self) -> None:
        """Bring the schema up to SCHEMA_VERSION; every statement is idempotent."""
        self.conn.executescript(
            f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        )

    def close(self) -> None:
        self.conn.close()

    # -- sealing -------------------------------------------------------------------
    def tag(self, event_id: bytes) -> bytes:
        mac = self._tag_mac.copy()
        mac.update(event_id)
        return mac.digest()[:16]

    def open_event(self, seq: int, sealed: bytes) -> SignedEvent:
        where = f"event #{seq}"
        entry = aead.open_sealed(self._event_key, sealed, event_ad(seq), what=where)
        return parse_entry(entry, where)

    def head(self) -> Head:
        """The sealed summary appenders use: size, Merkle frontier, device chain heads."""
        row = self.conn.execute("SELECT v FROM meta WHERE k='head'").fetchone()
        if row is None:
            return Head()
        return Head.from_bytes(
            aead.open_sealed(self._meta_key, row[0], b"head", what="ledger head")
        )

    # -- reading -------------------------------------------------------------------
    def raw_rows(self) -> Iterator[tuple[int, bytes, bytes]]:
        yield from self.conn.execute("SELECT seq, tag, sealed FROM events ORDER BY seq")

    def events(self) -> list[SignedEvent]:
        """Every event, strictly: raises on the first damaged one (verify reports all)."""
        out = []
        for expected, (seq, _tag, sealed) in enumerate(self.raw_rows()):
            if seq != expected:
                raise IntegrityError(
                    "ledger is damaged: event #{seq} is missing; run athar verify", seq=expected
                )
            out.append(self.open_event(seq, sealed))
        return out

    def events_after(self, seq: int, batch: int = 5000) -> Iterator[list[tuple[int, SignedEvent]]]:
        """Events after position *seq*, in order, a batch at a time (for projections)."""
        last = seq
        while True:
            rows = self.conn.execute(
                "SELECT seq, sealed FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            yield [(s, self.open_event(s, sealed)) for s, sealed in rows]
            last = rows[-1][0]

    def event_reader(self) -> EventReader:
        return EventReader(self.db_path, self._event_key)

    def size(self) -> int:
        row = self.conn.execute("SELECT max(seq) FROM events").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def event_at(self, seq: int) -> SignedEvent:
        row = self.conn.execute("SELECT sealed FROM events WHERE seq=?", (seq,)).fetchone()
        if row is None:
            raise IntegrityError("ledger is damaged: event #{seq} is missing", seq=seq)
        return self.open_event(seq, row[0])

    def blob_key(self, ref: bytes) -> tuple[bytes, int] | None:
        row = self.conn.execute("SELECT sealed, seq FROM blob_keys WHERE ref=?", (ref,)).fetchone()
        return (bytes(row[0]), int(row[1])) if row else None

    def blob_keys(self) -> dict[bytes, tuple[bytes, int]]:
        rows = self.conn.execute("SELECT ref, sealed, seq FROM blob_keys")
        return {bytes(r): (bytes(s), int(q)) for r, s, q in rows}

    def inline_blob(self, ref: bytes) -> bytes | None:
        row = self.conn.execute("SELECT data FROM small_blobs WHERE ref=?", (ref,)).fetchone()
        return bytes(row[0]) if row else None

    def checkpoints(self) -> list[SignedCheckpoint]:
        """Checkpoints stored in the database, oldest first, each verified."""
        rows = self.conn.execute("SELECT size, sealed FROM checkpoints ORDER BY size")
        return [self._open_checkpoint(s, f"checkpoint at size {n}") for n, s in rows]

    def file_checkpoints(self) -> list[SignedCheckpoint]:
        """Checkpoints from the separate append-only file (survives a database rollback)."""
        if not self.checkpoint_file.exists():
            return []
        text = self.checkpoint_file.read_text()
        lines = text.split("\n")
        if lines and lines[-1] and not text.endswith("\n"):
            lines.pop()  # a torn last line (power lost mid-append) carries no claim
        out = []
        for n, line in enumerate(lines):
            if line.strip():
                try:
                    sealed = bytes.fromhex(line)
                except ValueError:
                    raise IntegrityError(
                        "checkpoints file line {n} is malformed", n=n + 1
                    ) from None
                out.append(self._open_checkpoint(sealed, f"checkpoints file line {n + 1}"))
        return out

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        row = self.conn.execute(
            "SELECT sealed FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return self._open_checkpoint(row[0], "latest checkpoint") if row else None

    def _open_checkpoint(self, sealed: bytes, what: str) -> SignedCheckpoint:
        doc = json.loads(aead.open_sealed(self._cp_key, sealed, b"checkpoint", what=what))
        return open_note(doc["note"], doc["vkey"])

    # -- writing -------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, always_checkpoint: bool = False) -> Iterator[Transaction]:
        """One atomic, durable batch: all of it lands, with a new checkpoint, or none.

        A batch that appends nothing signs no new checkpoint unless asked to.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            _reraise_sqlite(exc, self.db_path.parent)
        tx = Transaction(self, self.head())
        signed_cp: SignedCheckpoint | None = None
        try:
            self._refuse_if_retired()
            yield tx
            if tx.appended or always_checkpoint:
                signed_cp = tx.finish()
            self.conn.execute("COMMIT")
        except BaseException as exc:
            # Undo side effects (installed blob files) while still holding the write
            # lock, so no other writer can have committed the same blob meanwhile.
            for undo in reversed(tx.on_rollback):
                with contextlib.suppress(OSError):
                    undo()
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                _reraise_sqlite(exc, self.db_path.parent)
            raise
        if signed_cp is not None:
            self._append_checkpoint_file(signed_cp)

    def retired_keys(self) -> set[bytes]:
        """This device's former keys (athar.vault.rotation), sealed in meta."""
        row = self.conn.execute("SELECT v FROM meta WHERE k='retired'").fetchone()
        if row is None:
            return set()
        plain = aead.open_sealed(self._meta_key, row[0], b"retired", what="ledger head")
        return {base64.b64decode(k) for k in json.loads(plain)}

    def _refuse_if_retired(self) -> None:
        """Another process (a web server) that opened the vault before a rotation must not
        go on signing with the old key: its events would be refused everywhere."""
        if self.keys.identity.public_key in self.retired_keys():
            raise AtharError(
                "this device's key was rotated by another command; open the vault again "
                "(restart the server)"
            )

    def _seal_checkpoint(self, signed: SignedCheckpoint) -> bytes:
        doc = json.dumps({"note": signed.note, "vkey": signed.verifier_key}).encode()
        return aead.seal(self._cp_key, doc, b"checkpoint")

    def _append_checkpoint_file(self, signed: SignedCheckpoint) -> None:
        """Append to the witness file. The database commit already happened, so a failure
        here (disk full) must not be reported as a failed write: the file is cut back to
        its last whole line and simply lags until the next transaction appends again."""
        line = (self._seal_checkpoint(signed).hex() + "\n").encode()
        try:
            fd = os.open(self.checkpoint_file, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        except OSError:
            return
        try:
            whole = _last_whole_line_end(fd)
            if whole != os.fstat(fd).st_size:
                os.ftruncate(fd, whole)  # a torn line from an earlier crash
            write_fd(fd, line)
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, whole)
                os.fsync(fd)
        finally:
            os.close(fd)


def _last_whole_line_end(fd: int) -> int:
    """Offset just after the file's last newline (0 if none)."""
    size = os.fstat(fd).st_size
    pos = size
    while pos > 0:
        start = max(0, pos - 4096)
        block = os.pread(fd, pos - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


class Transaction:
    def __init__(self, ledger: Ledger, head: Head) -> None:
        self.ledger = ledger
        self.head = head
        self.appended: list[SignedEvent] = []
        self.on_rollback: list[Callable[[], None]] = []

    def append(self, kind: str, body: dict[str, Any]) -> SignedEvent:
        identity = self.ledger.keys.identity
        device = base64.b64encode(identity.public_key).decode()
        last = self.head.devices.get(device)
        event = Event(
            kind=kind,
            device=identity.public_key,
            dseq=last[0] + 1 if last else 0,
            prev=last[1] if last else None,
            time=utc_now(),
            body=body,
        )
        signed = sign_event(event, identity)
        seq = self.head.size
        ledger = self.ledger
        sealed = aead.seal(ledger._event_key, signed.entry, event_ad(seq))
        ledger.conn.execute(
            "INSERT INTO events (seq, tag, sealed) VALUES (?, ?, ?)",
            (seq, ledger.tag(signed.leaf), sealed),
        )
        self.head.advance(signed)
        self.appended.append(signed)
        return signed

    def retire(self, key: bytes) -> None:
        """Record *key* as a former key of this device (inside the rotation's transaction)."""
        ledger = self.ledger
        keys = sorted(base64.b64encode(k).decode() for k in ledger.retired_keys() | {key})
        ledger.conn.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('retired', ?)",
            (aead.seal(ledger._meta_key, json.dumps(keys).encode(), b"retired"),),
        )

    def put_blob_key(self, ref: bytes, sealed_key: bytes, seq: int) -> None:
        self.ledger.conn.execute(
            "INSERT INTO blob_keys (ref, sealed, seq) VALUES (?, ?, ?)", (ref, sealed_key, seq)
        )

    def blob_key(self, ref: bytes) -> tuple[bytes, int] | None:
        return self.ledger.blob_key(ref)

    def put_inline_blob(self, ref: bytes, data: bytes) -> None:
        self.ledger.conn.execute(
            "INSERT OR REPLACE INTO small_blobs (ref, data) VALUES (?, ?)", (ref, data)
        )

    def forget_blob(self, ref: bytes) -> None:
        """Delete a blob's key and inline data (secure_delete zeroes the freed pages)."""
        self.ledger.conn.execute("DELETE FROM blob_keys WHERE ref=?", (ref,))
        self.ledger.conn.execute("DELETE FROM small_blobs WHERE ref=?", (ref,))

    def finish(self) -> SignedCheckpoint:
        ledger = self.ledger
        cp = Checkpoint(ledger.origin, self.head.size, self.head.frontier.root(), utc_now())
        signed = sign_checkpoint(cp, ledger.keys.identity)
        ledger.conn.execute(
            "INSERT OR REPLACE INTO checkpoints (size, sealed) VALUES (?, ?)",
            (cp.size, ledger._seal_checkpoint(signed)),
        )
        ledger.conn.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('head', ?)",
            (aead.seal(ledger._meta_key, self.head.to_bytes(), b"head"),),
        )
        self.checkpoint = signed
        return signed


def _reraise_sqlite(exc: sqlite3.Error, where: Path) -> NoReturn:
    """Turn SQLite's errors into ones a user can act on."""
    name = getattr(exc, "sqlite_errorname", "")
    text = str(exc).lower()
    full = name == "SQLITE_FULL" or "disk is full" in text
    if not full and (name.startswith("SQLITE_IOERR") or "disk i/o error" in text):
        with contextlib.suppress(OSError):
            full = free_bytes(where) < (1 << 20)
    if full:
        raise DiskFull(
            "the disk is full; nothing was half-written, free some space and run the command again"
        ) from exc
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        raise AtharError("the vault is busy with another command; try again") from exc
    raise AtharError("the vault database cannot be used: {reason}", reason=str(exc)) from exc
