"""Rebuilding the embedded projection from the ledger with two processes.

A rebuild is the worst case of the projection: every event of the vault, read, merged
and written once. One process doing all of it used one core of two; here a reader
process decrypts and parses the events, merges every record change and prepares the
rows, while this process writes them into the new database and merges the links.

The reader keeps what the store holds of every record it made (its data and clocks as
the same JSON text): an edit of a record from an earlier batch is merged against that,
exactly as against the stored row, so the writer no longer reads records back, merges
and derives their rows while the reader waits on it (it was half the writer's work).
This costs the reader memory: about the size of the records table's JSON.

The reader also keeps every record's search words, and once its last batch is sent it
builds the full-text index itself, in memory, by the same steps the writer took; the
writer copies FTS5's rows in. Indexing was a sixth of the writer's work (the staging,
the index and its flush at commit) and the writer is the longer of the two; the reader
is idle at the end, so the indexing now runs beside the writer's last batches and the
secondary indexes. It costs the reader about 500 MiB more at its peak.

Only the reader assigns row ids, in ledger order, so the rows are the ones applying the
events one batch at a time would give (tests compare the two). The reader checks each
change the way the merge would (a record's type never changes; an imported event stops
at its first bad row) so the events it hands over always apply.

The reader is a fresh interpreter (not a fork: it carries no copy of this process's
open databases, threads or other secrets); the events key reaches it through its stdin,
in memory, never on disk.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import queue
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn, TypeVar

from sqlalchemy import Connection

from athar import errors
from athar.crypto import aead
from athar.crypto.identity import fingerprint
from athar.errors import AtharError
from athar.records import events as ev
from athar.records import schema, store
from athar.records.hlc import ZERO
from athar.records.merge import (
    Change,
    LinkState,
    Malformed,
    Merger,
    Rows,
    Stored,
    body_str,
    event_stamp,
    restore,
)
from athar.records.projection import ApplyStats, Projection
from athar.records.vocab import Vocabularies
from athar.vault.events import entry_payload, essentials_of_payload
from athar.vault.ledger import Essentials, EventReader, event_ad
from athar.vault.progress import Progress

READ_BATCH = 5000  # events per message: big enough to amortise, small enough to overlap
T = TypeVar("T")


Marked = tuple[Change, bool]  # a change, and whether its outcome counts as one event


@dataclass
class Batch:
    """What the reader sends for each batch of events."""

    last_seq: int
    events: int
    applied: int
    ignored: int
    clock: str
    next_rid: int
    rows: Rows
    forwarded: list[Marked] = field(default_factory=list)


def merge_marked(merger: Merger, marked: list[Marked]) -> tuple[int, int, str]:
    """(applied, ignored, latest clock) of the counted changes. An uncounted change was
    checked by the reader already, so its failing is a bug, not bad input."""
    applied = ignored = 0
    clock = ZERO
    for change, counted in marked:
        try:
            stamp = merger.apply(change)
        except Malformed:
            if not counted:
                raise AtharError("the rebuild passed on an event that cannot apply") from None
            ignored += 1
            continue
        if counted:
            applied += 1
            clock = max(clock, stamp)
    return applied, ignored, clock


class Router:
    """In the reader: merges every record change (new records and edits of older ones,
    whose stored state it keeps); forwards links, which the writer merges."""

    def __init__(self, hold_documents: bool = False) -> None:
        # rid -> search words of every record, kept here instead of sent (hold_documents):
        # the reader builds the full-text index itself at the end (store.search_index_rows)
        self.documents: dict[int, str] | None = {} if hold_documents else None
        # id -> stored state of every record made in earlier batches: their edits are
        # merged here too, from the same JSON the store holds (so the same state the
        # writer would load), instead of the writer reading them back from the store
        self.stored: dict[str, Stored] = {}
        self.vocab = Vocabularies()
        self.terms: dict[tuple[str, str], dict[str, Any]] = {}
        self.next_rid = 1
        self._fingerprints: dict[bytes, str] = {}

    def _device(self, key: bytes) -> str:
        device = self._fingerprints.get(key)
        if device is None:
            device = self._fingerprints[key] = fingerprint(key)
        return device

    def batch(self, events: list[Essentials]) -> Batch:
        local: list[Marked] = []
        forwarded: list[Marked] = []
        applied = ignored = 0
        clock = ZERO
        pending: dict[str, str] = {}  # types of the records this batch makes, as routed
        older: list[str] = []  # records of earlier batches that this one edits
        for seq, kind, device_key, body in events:
            if kind not in ev.ALL_KINDS:
                continue
            device = self._device(device_key)
            change = (seq, kind, body, device_key, device)
            if kind == ev.RECORD_LINKED:
                forwarded.append((change, True))
                continue
            if kind == ev.VOCAB_TERM_ADDED:
                local.append((change, True))
                continue
            single = kind != ev.RECORDS_IMPORTED
            changes = [body] if single else _import_changes(body)
            new, old, complete = (
                ([], [], False) if changes is None else self._split(changes, pending)
            )
            if complete and changes is not None:
                applied += 1
                for checked in changes:
                    if checked["clock"] > clock:
                        clock = checked["clock"]
            else:
                ignored += 1
            older.extend(edit["id"] for edit in old)
            if single:
                if new or old:
                    local.append((change, False))
                continue
            if changes is not None and (new or old):  # up to the first bad one, as merged
                part = {"changes": changes[: len(new) + len(old)]}
                local.append(((seq, kind, part, device_key, device), False))
        merger = Merger(self.vocab, self.next_rid, self.terms.get, keep=True)
        stored = self.stored
        for record_id in older:
            if record_id not in merger.states:
                merger.states[record_id] = restore(record_id, stored[record_id])
        terms_applied, terms_ignored, terms_clock = merge_marked(merger, local)
        rows = merger.rows()
        if self.documents is not None:
            self._hold_documents(rows)
        stored.update(merger.saved)
        self.terms.update(merger.terms)
        self.next_rid = merger.next_rid
        return Batch(
            last_seq=events[-1][0] if events else -1,
            events=len(events),
            applied=applied + terms_applied,
            ignored=ignored + terms_ignored,
            clock=max(clock, terms_clock),
            next_rid=self.next_rid,
            rows=rows,
            forwarded=forwarded,
        )

    def _hold_documents(self, rows: Rows) -> None:
        """Keep the batch's search documents (the latest of each record, none of a
        deleted one) instead of sending them. A vocabulary term may change the labels
        that records already indexed hold (Projection._index_again re-indexes them from
        the store's staging table): from the first term on, every document held so far
        goes to the writer with this batch, and the writer indexes as it always did."""
        documents = self.documents
        assert documents is not None
        for rid in rows.rewritten:
            documents.pop(rid, None)
        documents.update(rows.fts)
        if rows.vocab:
            rows.fts = sorted(documents.items())
            self.documents = None
        else:
            rows.fts = []

    def _split(
        self, changes: list[dict[str, Any]], pending: dict[str, str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """(changes to new records, changes to older ones, whether all are good): the
        merge stops at the first bad change of an event, and so does this."""
        new: list[dict[str, Any]] = []
        old: list[dict[str, Any]] = []
        for change in changes:
            try:
                record_id = body_str(change, "id")
                rtype = body_str(change, "type")
                event_stamp(change)
            except Malformed:
                return new, old, False
            if rtype not in schema.TYPES or not isinstance(change.get("fields"), dict):
                return new, old, False
            known = self.stored.get(record_id)
            if known is not None:
                if known[1] != rtype:
                    return new, old, False
                old.append(change)
                continue
            if pending.setdefault(record_id, rtype) != rtype:
                return new, old, False
            new.append(change)
        return new, old, True


def _import_changes(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The rows of an imported event, or None if the merge would refuse all of it."""
    changes = body.get("changes")
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        return None
    try:
        for change in changes:
            event_stamp(change)
    except Malformed:
        return None
    return changes


def _error(message: tuple[str, str, str, dict[str, Any]]) -> AtharError:
    """The reader's error, raised again here as the same kind of error."""
    tag, name, template, params = message
    kind = getattr(errors, name, None)
    if tag == "error" and isinstance(kind, type) and issubclass(kind, AtharError):
        return kind(template, **params)
    return AtharError("the rebuild's reader process failed: {error}", error=f"{name}: {template}")


_FRAME = struct.Struct(">Q")


def encode_batch(batch: Batch) -> tuple[Any, ...]:
    """A batch as plain tuples and lists, for marshal: it writes these millions of
    small rows with about a quarter less CPU than pickle (0.37 s against 0.52 s per
    100,000 events) in the reader, the busier process, and reads them as fast."""
    rows = batch.rows
    links = [(key, s.present, s.attrs, s.clock, s.is_new, s.dirty) for key, s in rows.links]
    return (
        "batch",
        (batch.last_seq, batch.events, batch.applied, batch.ignored, batch.clock),
        batch.next_rid,
        (rows.inserts, rows.updates, rows.person_updates, rows.rewritten, rows.terms),
        (rows.fts, rows.history, links, rows.vocab, rows.people),
        batch.forwarded,
    )


def decode_batch(message: tuple[Any, ...]) -> Batch:
    _, (last_seq, events, applied, ignored, clock), next_rid, first, second, forwarded = message
    inserts, updates, person_updates, rewritten, terms = first
    fts, history, links, vocab, people = second
    rows = Rows(
        inserts,
        updates,
        person_updates,
        rewritten,
        terms,
        fts,
        history,
        [(tuple(key), LinkState(*state)) for key, *state in links],
        vocab,
        people,
    )
    return Batch(last_seq, events, applied, ignored, clock, next_rid, rows, forwarded)


def _send(out: IO[bytes], message: Any) -> None:
    data = marshal.dumps(message)
    out.write(_FRAME.pack(len(data)))
    out.write(data)


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    data = stream.read(_FRAME.unpack(head)[0])
    # from our own child over an anonymous pipe: as trusted as our own code
    return marshal.loads(data)  # noqa: S302


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float) else str(v) for k, v in params.items()}


def reader_main() -> None:
    """The reader process (python -m athar.records.rebuild_worker): told the ledger file, key
    and batch size on stdin, it sends every routed batch on stdout, then None."""
    out = sys.stdout.buffer
    gc.disable()  # as in the writer: millions of acyclic objects
    try:
        spec = _receive(sys.stdin.buffer)
        assert isinstance(spec, tuple)
        search_sql = spec[3] if len(spec) > 3 else None
        router = Router(hold_documents=search_sql is not None)
        with _child("decode", spec[:3]) as messages:
            for message in messages:
                if message[0] != "payloads":
                    raise _error(message)
                events = _naming_failures(
                    lambda seq, payload, where: (seq, *essentials_of_payload(payload, where)),
                    message[1],
                )
                _send(out, encode_batch(router.batch(events)))
        _send(out, ("end",))
        if router.documents is not None:
            assert isinstance(search_sql, str)
            _send(out, ("search", store.search_index_rows(search_sql, router.documents)))
        _send(out, None)
    except AtharError as exc:
        _send(out, ("error", type(exc).__name__, exc.template, _plain(exc.params)))
    except Exception as exc:  # reported, not lost: the writer raises it as a rebuild error
        _send(out, ("crash", type(exc).__name__, str(exc), {}))
    out.flush()


def _naming_failures(
    step: Callable[[int, Any, str], T], items: Sequence[tuple[int, Any]]
) -> list[T]:
    """*step*(seq, item, where) for each (seq, item); *where* names the event only when
    one fails, run again for its message, so no name is formatted for a million others."""
    try:
        return [step(seq, item, "event") for seq, item in items]
    except AtharError:
        return [step(seq, item, f"event #{seq}") for seq, item in items]


_NEXT_EVENTS = "SELECT seq, sealed FROM events WHERE seq > ? ORDER BY seq LIMIT ?"


def decoder_main() -> None:
    """The decoder process (python -m athar.records.rebuild_worker decode), started by the
    reader: fetches, decrypts and unwraps each entry's payload (the first half of
    parse_essentials), so that on two cores these steps run beside the reader's
    merging rather than before it. Sends ("payloads", [(seq, payload), ...]) per
    batch, then None; the same reading as EventReader.essentials_after."""
    out = sys.stdout.buffer
    gc.disable()
    try:
        spec = _receive(sys.stdin.buffer)
        assert isinstance(spec, tuple)
        db_path, key, batch = str(spec[0]), bytes(spec[1]), int(spec[2])
        conn = sqlite3.connect(db_path, timeout=120, isolation_level=None)
        try:
            last = -1
            while rows := conn.execute(_NEXT_EVENTS, (last, batch)).fetchall():
                payloads = _naming_failures(
                    lambda seq, sealed, where: (
                        seq,
                        entry_payload(
                            aead.open_sealed(key, sealed, event_ad(seq), what=where), where
                        ),
                    ),
                    rows,
                )
                _send(out, ("payloads", payloads))
                last = rows[-1][0]
        finally:
            conn.close()
        _send(out, None)
    except AtharError as exc:
        _send(out, ("error", type(exc).__name__, exc.template, _plain(exc.params)))
    except Exception as exc:
        _send(out, ("crash", type(exc).__name__, str(exc), {}))
    out.flush()


@contextmanager
def _child(role: str, spec: tuple[Any, ...]) -> Iterator[Iterator[Any]]:
    """The messages of a child process running this module as *role*: a fresh
    interpreter that carries nothing of its parent but *spec*, sent on its stdin (in
    memory, never on disk); None ends them."""
    process = subprocess.Popen(
        [sys.executable, "-m", "athar.records.rebuild_worker", role],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    stdout = process.stdout
    frames: queue.Queue[tuple[Any] | None] = queue.Queue(READ_AHEAD)
    # the writer (parent of the reader) unmarshals in the thread, beside SQLite; the
    # reader (parent of the decoder) is busy in Python itself, where the thread would
    # only contend for the GIL
    ahead = role == "read"
    reading = threading.Thread(target=_read_frames, args=(stdout, frames, ahead), daemon=True)

    def messages() -> Iterator[Any]:
        while True:
            item = frames.get()
            if item is None:
                raise AtharError(
                    "the rebuild's reader process stopped unexpectedly; nothing was replaced"
                )
            # from our own child over an anonymous pipe: as trusted as our own code
            message = item[0] if ahead else marshal.loads(item[0])  # noqa: S302
            if message is None:
                return
            yield message

    try:
        _send(process.stdin, spec)
        process.stdin.close()
        reading.start()
        yield messages()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        while reading.is_alive():  # let it see the end of the pipe, however full the queue
            with contextlib.suppress(queue.Empty):
                frames.get(timeout=0.05)
        stdout.close()


READ_AHEAD = 4  # messages a child may send before its parent takes the first


def _read_frames(
    stream: IO[bytes], frames: queue.Queue[tuple[Any] | None], unmarshal: bool
) -> None:
    """A thread of the parent: takes the child's messages off the pipe as they come, so
    the child goes on with its next batch instead of waiting until the parent has done
    with the previous one (reading the pipe releases the GIL). With *unmarshal* it also
    decodes them, which then runs while the main thread is inside SQLite (which releases
    the GIL too). (message,) or (its bytes,) per message; None: the pipe ended."""
    try:
        while True:
            head = stream.read(_FRAME.size)
            if len(head) < _FRAME.size:
                return
            size = _FRAME.unpack(head)[0]
            data = stream.read(size)
            if len(data) < size:
                return
            # from our own child over an anonymous pipe: as trusted as our own code
            frames.put((marshal.loads(data) if unmarshal else data,))  # noqa: S302
    except (OSError, ValueError, EOFError, TypeError):  # the pipe, closed, or cut short
        return
    finally:
        frames.put(None)


def _batches(messages: Iterator[Any]) -> Iterator[Batch]:
    """The reader's batches, up to its ("end",). A generator function: compiled
    (setup.py), a generator expression handed on would become a list, every batch held
    in memory before the first is written."""
    for message in messages:
        if message[0] == "end":
            return
        yield decode_batch(message) if message[0] == "batch" else _raise(message)


def _raise(message: tuple[str, str, str, dict[str, Any]]) -> NoReturn:
    raise _error(message)


def rebuild_into(
    projection: Projection,
    conn: Connection,
    reader: EventReader,
    progress: Progress | None,
    indexes: Sequence[str] = (),
) -> ApplyStats:
    """Fill the new, empty store behind *projection* from every event of the ledger.

    On a bulk load into SQLite the reader keeps the search documents and, once its last
    batch is sent, indexes them itself (store.search_index_rows), beside the writer's end of
    the load; the writer then copies the index's rows in. *indexes* (the statements of
    store.drop_secondary_indexes) are created meanwhile, in this transaction, once every
    row is in: the reader's indexing and the writer's sorting then run on both cores,
    and commit writes the index pages with the rest, once."""
    search_sql = store.search_table_sql(conn) if projection.bulk and not projection.pg else None
    spec = (str(reader.db_path), reader.event_key, READ_BATCH, search_sql)
    with _child("read", spec) as messages:
        stats = write_batches(projection, conn, _batches(messages), progress)
        for statement in indexes:
            conn.exec_driver_sql(statement)
        for message in messages:
            if message[0] != "search":
                _raise(message)
            store.put_search_index(conn, message[1])
    return stats


def write_batches(
    projection: Projection, conn: Connection, batches: Iterable[Batch], progress: Progress | None
) -> ApplyStats:
    total = ApplyStats()
    clock, next_rid, last_seq = ZERO, 1, -1
    for batch in batches:
        projection.write(conn, batch.rows)
        applied, ignored, links_clock = _apply_forwarded(projection, conn, batch)
        total.applied += batch.applied + applied
        total.ignored += batch.ignored + ignored
        clock = max(clock, batch.clock, links_clock)
        next_rid, last_seq = batch.next_rid, batch.last_seq
        if progress is not None:
            progress.advance(batch.events)
    if last_seq >= 0:
        projection.set_progress(conn, last_seq, next_rid, clock)
    projection.refresh_all_people(conn)
    return total


def _apply_forwarded(
    projection: Projection, conn: Connection, batch: Batch
) -> tuple[int, int, str]:
    """Merge the edits of older records against their stored state (links are counted
    here, everything else by the reader)."""
    if not batch.forwarded:
        return 0, 0, ZERO
    merger = Merger(projection.vocab, batch.next_rid, lambda _key: None)
    projection.load(conn, merger, [change for change, _ in batch.forwarded])
    applied, ignored, clock = merge_marked(merger, batch.forwarded)
    projection.write(conn, merger.rows())
    return applied, ignored, clock
