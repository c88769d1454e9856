"""Rebuilding the embedded projection from the ledger with two processes.

A rebuild is the worst case of the projection: every event of the vault, read, merged
and written once. One process doing all of it used one core of two; here a reader
process decrypts and parses the events, merges those that make new records (most of
them: a record is created once and edited a few times) and prepares their rows, while
this process writes rows into the new database and merges the edits of records made
in earlier batches, which need the stored state.

Only the reader assigns row ids, in ledger order, so the rows are the ones applying the
events one batch at a time would give (tests compare the two). The reader checks each
change the way the merge would (a record's type never changes; an imported event stops
at its first bad row) so the events it hands over always apply.

The reader is a fresh interpreter (not a fork: it carries no copy of this process's
open databases, threads or other secrets); the events key reaches it through its stdin,
in memory, never on disk.
"""

from __future__ import annotations

import gc
import marshal
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection

from athar import errors
from athar.crypto.identity import fingerprint
from athar.errors import AtharError
from athar.records import events as ev
from athar.records import schema
from athar.records.hlc import ZERO
from athar.records.merge import (
    Change,
    LinkState,
    Malformed,
    Merger,
    Rows,
    body_str,
    event_stamp,
)
from athar.records.projection import ApplyStats, Projection
from athar.records.vocab import Vocabularies
from athar.vault.ledger import Essentials, EventReader
from athar.vault.progress import Progress

READ_BATCH = 5000  # events per message: big enough to amortise, small enough to overlap


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
    """In the reader: merges what makes new records, forwards what edits older ones."""

    def __init__(self) -> None:
        self.types: dict[str, str] = {}  # id -> type of every record made in earlier batches
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
                clock = max(clock, *(c["clock"] for c in changes), ZERO)
            else:
                ignored += 1
            if single:
                if new or old:
                    (local if new else forwarded).append((change, False))
                continue
            if new:
                local.append(((seq, kind, {"changes": new}, device_key, device), False))
            if old:
                forwarded.append(((seq, kind, {"changes": old}, device_key, device), False))
        merger = Merger(self.vocab, self.next_rid, self.terms.get)
        terms_applied, terms_ignored, terms_clock = merge_marked(merger, local)
        self.types.update((rid, state.type) for rid, state in merger.states.items())
        self.terms.update(merger.terms)
        self.next_rid = merger.next_rid
        return Batch(
            last_seq=events[-1][0] if events else -1,
            events=len(events),
            applied=applied + terms_applied,
            ignored=ignored + terms_ignored,
            clock=max(clock, terms_clock),
            next_rid=self.next_rid,
            rows=merger.rows(),
            forwarded=forwarded,
        )

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
            known = self.types.get(record_id)
            if known is not None:
                if known != rtype:
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


def _reader_main() -> None:
    """The reader process (python -m athar.records.rebuild): told the ledger file, key
    and batch size on stdin, it sends every routed batch on stdout, then None."""
    out = sys.stdout.buffer
    gc.disable()  # as in the writer: millions of acyclic objects
    try:
        spec = _receive(sys.stdin.buffer)
        assert isinstance(spec, tuple)
        db_path, key, batch = spec
        router = Router()
        for events in EventReader(Path(str(db_path)), bytes(key)).essentials_after(-1, int(batch)):
            _send(out, encode_batch(router.batch(events)))
        _send(out, None)
    except AtharError as exc:
        _send(out, ("error", type(exc).__name__, exc.template, _plain(exc.params)))
    except Exception as exc:  # reported, not lost: the writer raises it as a rebuild error
        _send(out, ("crash", type(exc).__name__, str(exc), {}))
    out.flush()


@contextmanager
def _batches(reader: EventReader, batch: int) -> Iterator[Iterator[Batch]]:
    """Batches from a reader process: a fresh interpreter running this module, which
    carries nothing of this process but what it is sent (no open databases, no other
    keys); the events key goes through its stdin, in memory."""
    process = subprocess.Popen(
        [sys.executable, "-m", "athar.records.rebuild"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    stdout = process.stdout

    def messages() -> Iterator[Batch]:
        while True:
            try:
                message = _receive(stdout)
            except EOFError:
                raise AtharError(
                    "the rebuild's reader process stopped unexpectedly; nothing was replaced"
                ) from None
            if message is None:
                return
            if message[0] != "batch":
                raise _error(message)
            yield decode_batch(message)

    try:
        _send(process.stdin, (str(reader.db_path), reader.event_key, batch))
        process.stdin.close()
        yield messages()
    finally:
        stdout.close()
        if process.poll() is None:
            process.kill()
        process.wait()


def rebuild_into(
    projection: Projection, conn: Connection, reader: EventReader, progress: Progress | None
) -> ApplyStats:
    """Fill the new, empty store behind *projection* from every event of the ledger."""
    with _batches(reader, READ_BATCH) as batches:
        return write_batches(projection, conn, batches, progress)


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


if __name__ == "__main__":
    # run from the module's real name (its module globals, not a second copy as __main__)
    from athar.records.rebuild import _reader_main as main

    main()
