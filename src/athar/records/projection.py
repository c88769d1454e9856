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

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, text, update

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
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


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
    def __init__(self, engine: Engine, vault_id: str) -> None:
        self.engine = engine
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
            for table in (records, terms, links, history, vocab_terms):
                conn.execute(delete(table))
            conn.execute(text("DELETE FROM records_fts"))
            conn.execute(delete(meta).where(meta.c.key != "vault"))
        self.vocab = Vocabularies()

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
        self.history: list[dict[str, Any]] = []
        self.vocab: dict[tuple[str, str], dict[str, Any]] = {}

    def load(self, todo: Sequence[tuple[int, SignedEvent]]) -> None:
        ids: set[str] = set()
        link_srcs: set[str] = set()
        for _, signed in todo:
            body = signed.event.body
            if signed.event.kind in ev.RECORD_KINDS and isinstance(body.get("id"), str):
                ids.add(body["id"])
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
                self.states[r.id] = RecordState(
                    r.rid,
                    r.id,
                    r.type,
                    json.loads(r.data),
                    json.loads(r.clocks),
                    r.created,
                    r.updated,
                    r.author,
                    is_new=False,
                )
        for part in _chunks(sorted(link_srcs)):
            for r in self.conn.execute(select(links).where(links.c.src.in_(part))):
                self.links[(r.src, r.rel, r.dst)] = LinkState(
                    bool(r.present), json.loads(r.attrs), r.clock, is_new=False
                )

    def apply(self, seq: int, signed: SignedEvent, device: str) -> str:
        kind = signed.event.kind
        body = signed.event.body
        stamp = _stamp(body)
        clock = f"{stamp}|{signed.event.device.hex()[:DEVICE_TIE]}"
        if kind in ev.RECORD_KINDS:
            self._record(seq, kind, body, clock, device)
        elif kind == ev.RECORD_LINKED:
            self._link(seq, body, clock, device)
        else:
            self._term(body, clock)
        return stamp

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
        self.history.append(
            {
                "record": record_id,
                "seq": seq,
                "clock": clock,
                "device": device,
                "kind": kind,
                "changes": dumps({"fields": fields, "user": body.get("user")}),
            }
        )

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
        change = {"rel": key[1], "dst": key[2], "present": present, "attrs": attrs}
        for record_id in (key[0], key[2]):
            self.history.append(
                {
                    "record": record_id,
                    "seq": seq,
                    "clock": clock,
                    "device": device,
                    "kind": ev.RECORD_LINKED,
                    "changes": dumps({"link": {**change, "src": key[0]}, "user": body.get("user")}),
                }
            )

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
    def write(self) -> None:
        conn, pg = self.conn, self.p.pg
        vocab = self.p.vocab
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        term_rows: list[dict[str, Any]] = []
        fts_rows: list[dict[str, Any]] = []
        rewritten: list[int] = []
        people: set[str] = set()
        for state in self.states.values():
            if not state.dirty:
                continue
            kind = schema.TYPES[state.type]
            data = state.data
            deleted = bool(data.get(schema.DELETED))
            row = {
                "rid": state.rid,
                "id": state.id,
                "type": state.type,
                "deleted": deleted,
                **summary.columns(kind, data),
                "created": state.created,
                "updated": state.updated,
                "author": state.author,
                "data": dumps(data),
                "clocks": dumps(state.clocks),
            }
            if state.is_new:
                inserts.append(row)
            else:
                updates.append({**row, "b_rid": state.rid})
                rewritten.append(state.rid)
            if state.type == "person":
                people.add(state.id)
            elif state.type == "status":
                parent = data.get("person")
                if isinstance(parent, str):
                    people.add(parent)
            if deleted:
                continue
            term_rows.extend(
                {"rid": state.rid, "vocabulary": v, "term": t}
                for v, t in summary.term_rows(kind, data)
            )
            words = summary.search_terms(kind, state.id, data, vocab)
            fts_rows.append({"rid": state.rid, "terms": words if pg else " ".join(words)})
        for part in _chunks(rewritten):  # type: ignore[arg-type]
            conn.execute(delete(terms).where(terms.c.rid.in_(part)))
            if pg:
                conn.execute(text("DELETE FROM records_fts WHERE rid = ANY(:r)"), {"r": list(part)})
            else:
                rowids = ",".join(str(int(rid)) for rid in part)  # integers only
                conn.execute(text(f"DELETE FROM records_fts WHERE rowid IN ({rowids})"))  # noqa: S608
        if inserts:
            conn.execute(insert(records), inserts)
        if updates:
            values: dict[str, Any] = {
                c.name: bindparam(c.name) for c in records.c if c.name != "rid"
            }
            conn.execute(
                update(records).where(records.c.rid == bindparam("b_rid")).values(values), updates
            )
        if term_rows:
            conn.execute(insert(terms), term_rows)
        if fts_rows:
            if pg:
                conn.execute(
                    text(
                        "INSERT INTO records_fts (rid, tsv) "
                        "VALUES (:rid, array_to_tsvector(CAST(:terms AS text[])))"
                    ),
                    fts_rows,
                )
            else:
                conn.execute(
                    text("INSERT INTO records_fts (rowid, terms) VALUES (:rid, :terms)"), fts_rows
                )
        self._write_links()
        if self.history:
            conn.execute(insert(history), self.history)
        if self.vocab:
            for key in self.vocab:
                conn.execute(
                    delete(vocab_terms).where(
                        vocab_terms.c.vocabulary == key[0], vocab_terms.c.term == key[1]
                    )
                )
            conn.execute(insert(vocab_terms), list(self.vocab.values()))
        if people:
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


def refresh_people(conn: Connection, person_ids: Sequence[str]) -> None:
    """A person's current status, date and place come from their latest status record."""
    cols = records.c
    latest: dict[str, tuple[str, str, Any, Any, Any]] = {}
    for part in _chunks(person_ids):
        rows = conn.execute(
            select(cols.parent, cols.status, cols.date_start, cols.date_end, cols.updated).where(
                cols.type == "status", cols.parent.in_(part), cols.deleted.is_(False)
            )
        )
        for r in rows:
            key = (r.date_start or "", r.updated)
            if r.parent not in latest or key > latest[r.parent][:2]:
                latest[r.parent] = (key[0], key[1], r.status, r.date_start, r.date_end)
    changes = [
        {
            "b_id": pid,
            "status": latest[pid][2] if pid in latest else None,
            "date_start": latest[pid][3] if pid in latest else None,
            "date_end": latest[pid][4] if pid in latest else None,
        }
        for pid in person_ids
    ]
    conn.execute(
        update(records)
        .where(records.c.id == bindparam("b_id"), records.c.type == "person")
        .values(
            status=bindparam("status"),
            date_start=bindparam("date_start"),
            date_end=bindparam("date_end"),
        ),
        changes,
    )
