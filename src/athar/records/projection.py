"""Apply ledger events to the SQL projection, in any order, with the same result.

Each field of each record keeps the value whose (clock stamp, device) is greatest, and
remembers that winner, so applying events one by one, in batches, in a different order
on another device, or all again from scratch (`athar rebuild`) ends in the same rows. A
cleared field keeps its clock as a tombstone so an older concurrent value cannot come
back. Links and organisation vocabulary terms merge the same way.

Events are applied in batches inside one transaction together with the ledger position
they reach, so a crash loses nothing: the next open re-applies from that position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, text

from athar.crypto.identity import fingerprint
from athar.errors import AtharError
from athar.records import events as ev
from athar.records import schema, store, summary
from athar.records.hlc import ZERO, parse_stamp
from athar.records.store import history, links, meta, records, terms, vocab_terms
from athar.records.vocab import Term, Vocabularies
from athar.vault.events import SignedEvent

_CHUNK = 500  # ids per IN (...) query
DEVICE_TIE = 16  # hex characters of the device's public key kept in a clock (tie-break)


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys: the same text for the same value on every device."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_RECORD_COLUMNS = (
    "rid, id, type, deleted, title, date_start, date_end, place, admin_area, lat, lon, "
    "status, parent, created, updated, author, data, clocks"
)
_UPDATE_COLUMNS = ", ".join(f"{c.strip()} = ?" for c in _RECORD_COLUMNS.split(",")[1:])
# A person's status and dates are their latest status record's (refresh_people): an edit
# of the person's own fields leaves them alone.
_PERSON_KEEPS = {"status", "date_start", "date_end"}
_UPDATE_PERSON = ", ".join(
    f"{c.strip()} = ?" for c in _RECORD_COLUMNS.split(",")[1:] if c.strip() not in _PERSON_KEEPS
)


def compact_clocks(data: dict[str, Any], clocks: dict[str, str], created: str) -> dict[str, str]:
    """Clocks worth storing: a field set by the creating event (most of them, in most
    records) has the record's creation clock and is left implicit."""
    return {p: c for p, c in clocks.items() if c != created or p not in data}


def expand_clocks(data: dict[str, Any], stored: dict[str, str], created: str) -> dict[str, str]:
    return {**{p: created for p in data}, **stored}


@dataclass
class RecordState:
    rid: int
    id: str
    type: str
    data: dict[str, Any]
    clocks: dict[str, str]
    created: str
    updated: str
    author: str
    is_new: bool
    dirty: bool = False


@dataclass
class LinkState:
    present: bool
    attrs: dict[str, Any]
    clock: str
    is_new: bool
    dirty: bool = False


@dataclass
class ApplyStats:
    applied: int = 0
    ignored: int = 0
    touched: set[str] = field(default_factory=set)


class Malformed(Exception):
    """An event body that cannot be applied (a buggy or hostile peer); it is skipped."""


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Projection:
    def __init__(self, engine: Engine, vault_id: str, bulk: bool = False) -> None:
        self.engine = engine
        self.bulk = bulk  # loading a new store: people's statuses are derived once, at the end
        self.pg = store.is_postgres(engine)
        store.migrate(engine)
        self._bind_vault(vault_id)
        self.vocab = Vocabularies(self._extra_terms())
        self._fingerprints: dict[bytes, str] = {}

    # -- bookkeeping ---------------------------------------------------------------
    def _bind_vault(self, vault_id: str) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == "vault")).first()
            if row is None:
                conn.execute(insert(meta), [{"key": "vault", "value": vault_id}])
            elif row[0] != vault_id:
                raise AtharError(
                    "this records store belongs to another vault; use its own store or an empty one"
                )

    def _extra_terms(self) -> list[Term]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(vocab_terms)).all()
        return [Term(r.vocabulary, r.term, r.ar, r.en, builtin=False) for r in rows]

    def _meta(self, conn: Connection, key: str, default: str, lock: bool = False) -> str:
        query = select(meta.c.value).where(meta.c.key == key)
        if lock and self.pg:
            query = query.with_for_update()
        row = conn.execute(query).first()
        return str(row[0]) if row else default

    def _set_meta(self, conn: Connection, values: dict[str, str]) -> None:
        conn.execute(delete(meta).where(meta.c.key.in_(list(values))))
        conn.execute(insert(meta), [{"key": k, "value": v} for k, v in values.items()])

    def applied_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(self._meta(conn, "applied_seq", "-1"))

    def last_clock(self) -> str:
        with self.engine.connect() as conn:
            return self._meta(conn, "clock", ZERO)

    def reset(self) -> None:
        """Empty every projected table (the ledger is untouched); used by rebuild."""
        with self.engine.begin() as conn:
            if self.pg:  # TRUNCATE, not DELETE: no row-by-row work, no dead tuples to vacuum
                conn.execute(
                    text("TRUNCATE records, terms, links, history, vocab_terms, records_fts")
                )
            else:
                for table in (records, terms, links, history, vocab_terms):
                    conn.execute(delete(table))
                conn.execute(text("DELETE FROM records_fts"))
            conn.execute(delete(meta).where(meta.c.key != "vault"))
        self.vocab = Vocabularies()

    def refresh_all_people(self) -> None:
        with self.engine.begin() as conn:
            people = conn.execute(
                select(records.c.parent).where(records.c.type == "status").distinct()
            ).scalars()
            refresh_people(conn, sorted(p for p in people if p))

    # -- applying ------------------------------------------------------------------
    def _device(self, signed: SignedEvent) -> str:
        key = signed.event.device
        fp = self._fingerprints.get(key)
        if fp is None:
            fp = self._fingerprints[key] = fingerprint(key)
        return fp

    def apply(self, batch: Sequence[tuple[int, SignedEvent]]) -> ApplyStats:
        """Apply the events of *batch* not applied yet, all in one transaction."""
        stats = ApplyStats()
        if not batch:
            return stats
        with self.engine.begin() as conn:
            applied = int(self._meta(conn, "applied_seq", "-1", lock=True))
            todo = [(seq, s) for seq, s in batch if seq > applied and s.event.kind in ev.ALL_KINDS]
            last_seq = max(seq for seq, _ in batch)
            if last_seq <= applied:
                return stats
            merger = _Merger(self, conn, int(self._meta(conn, "next_rid", "1")))
            clock = self._meta(conn, "clock", ZERO)
            merger.load(todo)
            for seq, signed in todo:
                try:
                    stamp = merger.apply(seq, signed, self._device(signed))
                except Malformed:
                    stats.ignored += 1
                    continue
                stats.applied += 1
                clock = max(clock, stamp)
            merger.write()
            stats.touched = set(merger.states)
            self._set_meta(
                conn,
                {"applied_seq": str(last_seq), "next_rid": str(merger.next_rid), "clock": clock},
            )
        return stats


def _body_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(key)
    return value


def _stamp(body: dict[str, Any]) -> str:
    stamp = _body_str(body, "clock")
    try:
        parse_stamp(stamp)
    except ValueError:
        raise Malformed("clock") from None
    return stamp


class _Merger:
    """The in-memory working set of one batch: load, merge, write back."""

    def __init__(self, projection: Projection, conn: Connection, next_rid: int) -> None:
        self.p = projection
        self.conn = conn
        self.next_rid = next_rid
        self.states: dict[str, RecordState] = {}
        self.links: dict[tuple[str, str, str], LinkState] = {}
        self.history: list[tuple[str, int, str, str, str]] = []
        self.vocab: dict[tuple[str, str], dict[str, Any]] = {}

    def load(self, todo: Sequence[tuple[int, SignedEvent]]) -> None:
        ids: set[str] = set()
        link_srcs: set[str] = set()
        for _, signed in todo:
            body = signed.event.body
            if signed.event.kind in ev.RECORD_KINDS and isinstance(body.get("id"), str):
                ids.add(body["id"])
            elif signed.event.kind == ev.RECORDS_IMPORTED and isinstance(body.get("changes"), list):
                ids.update(
                    c["id"]
                    for c in body["changes"]
                    if isinstance(c, dict) and isinstance(c.get("id"), str)
                )
            elif signed.event.kind == ev.RECORD_LINKED and isinstance(body.get("src"), str):
                link_srcs.add(body["src"])
        cols = records.c
        for part in _chunks(sorted(ids)):
            rows = self.conn.execute(
                select(
                    cols.rid,
                    cols.id,
                    cols.type,
                    cols.data,
                    cols.clocks,
                    cols.created,
                    cols.updated,
                    cols.author,
                ).where(cols.id.in_(part))
            )
            for r in rows:
                data = orjson.loads(r.data)
                self.states[r.id] = RecordState(
                    r.rid,
                    r.id,
                    r.type,
                    data,
                    expand_clocks(data, orjson.loads(r.clocks), r.created),
                    r.created,
                    r.updated,
                    r.author,
                    is_new=False,
                )
        for part in _chunks(sorted(link_srcs)):
            for r in self.conn.execute(select(links).where(links.c.src.in_(part))):
                self.links[(r.src, r.rel, r.dst)] = LinkState(
                    bool(r.present), orjson.loads(r.attrs), r.clock, is_new=False
                )

    def apply(self, seq: int, signed: SignedEvent, device: str) -> str:
        kind = signed.event.kind
        body = signed.event.body
        tie = signed.event.device.hex()[:DEVICE_TIE]
        if kind == ev.RECORDS_IMPORTED:
            return self._imported(seq, body, tie, device)
        stamp = _stamp(body)
        clock = f"{stamp}|{tie}"
        if kind in ev.RECORD_KINDS:
            self._record(seq, kind, body, clock, device)
        elif kind == ev.RECORD_LINKED:
            self._link(seq, body, clock, device)
        else:
            self._term(body, clock)
        return stamp

    def _imported(self, seq: int, body: dict[str, Any], tie: str, device: str) -> str:
        changes = body.get("changes")
        if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
            raise Malformed("changes")
        stamps = [_stamp(c) for c in changes]  # all checked before any is applied
        for change, stamp in zip(changes, stamps, strict=True):
            kind = ev.RECORD_CREATED if change.get("op") == "created" else ev.RECORD_UPDATED
            self._record(seq, kind, change, f"{stamp}|{tie}", device)
        return max(stamps, default=ZERO)

    def _record(self, seq: int, kind: str, body: dict[str, Any], clock: str, device: str) -> None:
        record_id = _body_str(body, "id")
        rtype = _body_str(body, "type")
        fields = body.get("fields")
        if rtype not in schema.TYPES or not isinstance(fields, dict):
            raise Malformed("type")
        state = self.states.get(record_id)
        if state is None:
            state = RecordState(
                self.next_rid, record_id, rtype, {}, {}, clock, clock, device, is_new=True
            )
            self.next_rid += 1
            self.states[record_id] = state
        elif state.type != rtype:
            raise Malformed("type")  # an id reused for another type: keep the first
        if clock < state.created:
            state.created, state.author = clock, device
        data, clocks = state.data, state.clocks
        for path, value in fields.items():
            if clock > clocks.get(path, ""):
                clocks[path] = clock
                if value is None:
                    data.pop(path, None)
                else:
                    data[path] = value
                if clock > state.updated:
                    state.updated = clock
        state.dirty = True
        self.history.append((record_id, seq, clock, device, kind))

    def _link(self, seq: int, body: dict[str, Any], clock: str, device: str) -> None:
        key = (_body_str(body, "src"), _body_str(body, "rel"), _body_str(body, "dst"))
        present = body.get("present")
        attrs = body.get("attrs", {})
        if not isinstance(present, bool) or not isinstance(attrs, dict):
            raise Malformed("link")
        state = self.links.get(key)
        if state is None:
            state = self.links[key] = LinkState(present, attrs, clock, is_new=True, dirty=True)
        elif clock > state.clock:
            state.present, state.attrs, state.clock, state.dirty = present, attrs, clock, True
        for record_id in (key[0], key[2]):
            self.history.append((record_id, seq, clock, device, ev.RECORD_LINKED))

    def _term(self, body: dict[str, Any], clock: str) -> None:
        key = (_body_str(body, "vocabulary"), _body_str(body, "term"))
        row = {
            "vocabulary": key[0],
            "term": key[1],
            "ar": _body_str(body, "ar"),
            "en": _body_str(body, "en"),
            "clock": clock,
        }
        current = self.vocab.get(key)
        if current is None:
            found = self.conn.execute(
                select(vocab_terms).where(
                    vocab_terms.c.vocabulary == key[0], vocab_terms.c.term == key[1]
                )
            ).first()
            current = dict(found._mapping) if found else None
        if current is None or clock > current["clock"]:
            self.vocab[key] = row
            self.p.vocab.add(Term(key[0], key[1], row["ar"], row["en"], builtin=False))

    # -- writing -------------------------------------------------------------------
    def _many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """executemany straight on the driver: these are the bulk of a rebuild or import,
        where SQLAlchemy's per-row parameter processing would cost more than SQLite."""
        if rows:
            self.conn.exec_driver_sql(sql.replace("?", "%s") if self.p.pg else sql, rows)

    def write(self) -> None:
        conn, pg = self.conn, self.p.pg
        vocab = self.p.vocab
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        person_updates: list[tuple[Any, ...]] = []
        term_rows: list[tuple[int, str, str]] = []
        fts_rows: list[tuple[int, Any]] = []
        rewritten: list[int] = []
        people: set[str] = set()
        for state in self.states.values():
            if not state.dirty:
                continue
            kind = schema.TYPES[state.type]
            data = state.data
            deleted = bool(data.get(schema.DELETED))
            cols = summary.columns(kind, data)
            values = (
                state.id,
                state.type,
                deleted,
                cols["title"],
                cols["date_start"],
                cols["date_end"],
                cols["place"],
                cols["admin_area"],
                cols["lat"],
                cols["lon"],
                cols["status"],
                cols["parent"],
                state.created,
                state.updated,
                state.author,
                dumps(data),
                dumps(compact_clocks(data, state.clocks, state.created)),
            )
            if state.is_new:
                inserts.append((state.rid, *values))
            elif state.type == "person":
                person_updates.append((*values[:4], *values[6:10], *values[11:], state.rid))
                rewritten.append(state.rid)
            else:
                updates.append((*values, state.rid))
                rewritten.append(state.rid)
            if state.type == "status":
                parent = data.get("person")
                if isinstance(parent, str):
                    people.add(parent)
            if deleted:
                continue
            term_rows.extend((state.rid, v, t) for v, t in summary.term_rows(kind, data))
            words = summary.search_terms(kind, state.id, data, vocab)
            fts_rows.append((state.rid, words if pg else " ".join(words)))
        for part in _chunks(rewritten):  # type: ignore[arg-type]
            conn.execute(delete(terms).where(terms.c.rid.in_(part)))
            if pg:
                conn.execute(text("DELETE FROM records_fts WHERE rid = ANY(:r)"), {"r": list(part)})
            else:
                rowids = ",".join(str(int(rid)) for rid in part)  # integers only
                conn.execute(text(f"DELETE FROM records_fts WHERE rowid IN ({rowids})"))  # noqa: S608
        marks = ", ".join("?" * 18)
        self._many(f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES ({marks})", inserts)  # noqa: S608
        self._many(f"UPDATE records SET {_UPDATE_COLUMNS} WHERE rid = ?", updates)  # noqa: S608
        self._many(f"UPDATE records SET {_UPDATE_PERSON} WHERE rid = ?", person_updates)  # noqa: S608
        self._many("INSERT INTO terms (rid, vocabulary, term) VALUES (?, ?, ?)", term_rows)
        if pg:
            self._many(
                "INSERT INTO records_fts (rid, tsv) VALUES (?, array_to_tsvector(?::text[]))",
                fts_rows,
            )
        else:
            self._many("INSERT INTO records_fts (rowid, terms) VALUES (?, ?)", fts_rows)
        self._write_links()
        self._many(
            "INSERT INTO history (record, seq, clock, device, kind) VALUES (?, ?, ?, ?, ?)",
            self.history,
        )
        if self.vocab:
            for key in self.vocab:
                conn.execute(
                    delete(vocab_terms).where(
                        vocab_terms.c.vocabulary == key[0], vocab_terms.c.term == key[1]
                    )
                )
            conn.execute(insert(vocab_terms), list(self.vocab.values()))
        if people and not self.p.bulk:
            refresh_people(conn, sorted(people))

    def _write_links(self) -> None:
        dirty = [(k, s) for k, s in self.links.items() if s.dirty]
        if not dirty:
            return
        for key, state in dirty:
            if not state.is_new:
                self.conn.execute(
                    delete(links).where(
                        links.c.src == key[0], links.c.rel == key[1], links.c.dst == key[2]
                    )
                )
        self.conn.execute(
            insert(links),
            [
                {
                    "src": k[0],
                    "rel": k[1],
                    "dst": k[2],
                    "present": s.present,
                    "attrs": dumps(s.attrs),
                    "clock": s.clock,
                }
                for k, s in dirty
            ],
        )


_REFRESH_PERSON = (
    "UPDATE records SET (status, date_start, date_end) = ("
    "SELECT s.status, s.date_start, s.date_end FROM records s "
    "WHERE s.parent = ? AND s.type = 'status' AND s.deleted = ? "
    "ORDER BY COALESCE(s.date_start, '') DESC, s.updated DESC LIMIT 1) "
    "WHERE id = ? AND type = 'person'"
)


def refresh_people(conn: Connection, person_ids: Sequence[str]) -> None:
    """A person's current status and its date are their latest status record's (the
    latest date, then the latest edit): one statement per person, all inside SQLite or
    PostgreSQL."""
    if not person_ids:
        return
    sql = (
        _REFRESH_PERSON.replace("?", "%s") if conn.dialect.name == "postgresql" else _REFRESH_PERSON
    )
    conn.exec_driver_sql(sql, [(pid, False, pid) for pid in person_ids])
