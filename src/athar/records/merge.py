"""Merging record events into record states and the rows that store them: no database.

Each field of each record keeps the value whose (clock stamp, device) is greatest, and
remembers that winner, so applying events one by one, in batches, in a different order
on another device, or all again from scratch (`athar rebuild`) ends in the same rows. A
cleared field keeps its clock as a tombstone so an older concurrent value cannot come
back. Links and organisation vocabulary terms merge the same way.

Kept apart from the SQL so that a rebuild can merge and prepare rows in one process
while another writes them (athar.records.rebuild).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from athar.records import events as ev
from athar.records import schema, summary
from athar.records.hlc import ZERO, is_stamp
from athar.records.vocab import Term, Vocabularies

DEVICE_TIE = 16  # hex characters of the device's public key kept in a clock (tie-break)

# (seq, kind, body, device public key, device fingerprint): what merging needs of an event
Change = tuple[int, str, dict[str, Any], bytes, str]
TermLookup = Callable[[tuple[str, str]], dict[str, Any] | None]


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys: the same text for the same value on every device."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def compact_clocks(data: dict[str, Any], clocks: dict[str, str], created: str) -> dict[str, str]:
    """Clocks worth storing: a field set by the creating event (most of them, in most
    records) has the record's creation clock and is left implicit."""
    return {p: c for p, c in clocks.items() if c != created or p not in data}


def expand_clocks(data: dict[str, Any], stored: dict[str, str], created: str) -> dict[str, str]:
    return {**{p: created for p in data}, **stored}


@dataclass(slots=True)
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


@dataclass(slots=True)
class LinkState:
    present: bool
    attrs: dict[str, Any]
    clock: str
    is_new: bool
    dirty: bool = False


# What the records table stores of a record's state (rid, type, created, updated, author,
# data JSON, compact clocks JSON): enough to merge later events into it (restore).
Stored = tuple[int, str, str, str, str, str, str]


def restore(record_id: str, stored: Stored) -> RecordState:
    """The state of a stored record, as loading it from the table gives it."""
    rid, rtype, created, updated, author, data_json, clocks_json = stored
    data = orjson.loads(data_json)
    clocks = expand_clocks(data, orjson.loads(clocks_json), created)
    return RecordState(rid, record_id, rtype, data, clocks, created, updated, author, False)


class Malformed(Exception):
    """An event body that cannot be applied (a buggy or hostile peer); it is skipped."""


@dataclass
class Rows:
    """Everything one batch writes, as plain tuples ready for executemany."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    person_updates: list[tuple[Any, ...]] = field(default_factory=list)
    rewritten: list[int] = field(default_factory=list)  # rids whose terms are replaced
    terms: list[tuple[int, str, str]] = field(default_factory=list)
    fts: list[tuple[int, Any]] = field(default_factory=list)
    history: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    links: list[tuple[tuple[str, str, str], LinkState]] = field(default_factory=list)
    vocab: list[dict[str, Any]] = field(default_factory=list)
    people: list[str] = field(default_factory=list)  # whose status may have changed


def body_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(key)
    return value


def event_stamp(body: dict[str, Any]) -> str:
    stamp = body_str(body, "clock")
    if not is_stamp(stamp):
        raise Malformed("clock")
    return stamp


def record_ids(kind: str, body: dict[str, Any]) -> list[str]:
    """The records an event changes (not the ones it links)."""
    if kind in ev.RECORD_KINDS and isinstance(body.get("id"), str):
        return [body["id"]]
    if kind == ev.RECORDS_IMPORTED and isinstance(body.get("changes"), list):
        return [
            c["id"] for c in body["changes"] if isinstance(c, dict) and isinstance(c.get("id"), str)
        ]
    return []


class Merger:
    """The working set of one batch: states loaded or created, merged, turned into rows."""

    def __init__(
        self,
        vocab: Vocabularies,
        next_rid: int,
        stored_term: TermLookup,
        pg: bool = False,
        keep: bool = False,
    ) -> None:
        self.vocab = vocab
        # rows() also lists what it stores of each record (Stored), for a rebuild's
        # reader, which merges later edits itself instead of reading the store again
        self.keep = keep
        self.saved: list[tuple[str, Stored]] = []
        self.next_rid = next_rid
        self.stored_term = stored_term
        self.pg = pg
        self.states: dict[str, RecordState] = {}
        self.links: dict[tuple[str, str, str], LinkState] = {}
        self.history: list[tuple[int, str, str, str, str]] = []
        self.terms: dict[tuple[str, str], dict[str, Any]] = {}
        self.former_people: set[str] = set()
        self._in_history: set[tuple[int, str]] = set()
        self._ties: dict[bytes, str] = {}

    def apply(self, change: Change) -> str:
        """Merge one event; its clock stamp, or Malformed."""
        seq, kind, body, device_key, device = change
        tie = self._ties.get(device_key)
        if tie is None:
            tie = self._ties[device_key] = device_key.hex()[:DEVICE_TIE]
        if kind == ev.RECORDS_IMPORTED:
            return self._imported(seq, body, tie, device)
        stamp = event_stamp(body)
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
        stamps = [event_stamp(c) for c in changes]  # all checked before any is applied
        for change, stamp in zip(changes, stamps, strict=True):
            kind = ev.RECORD_CREATED if change.get("op") == "created" else ev.RECORD_UPDATED
            self._record(seq, kind, change, f"{stamp}|{tie}", device)
        return max(stamps, default=ZERO)

    def _record(self, seq: int, kind: str, body: dict[str, Any], clock: str, device: str) -> None:
        record_id = body_str(body, "id")
        rtype = body_str(body, "type")
        fields = body.get("fields")
        if rtype not in schema.TYPES or not isinstance(fields, dict):
            raise Malformed("type")
        state = self.states.get(record_id)
        if state is None:
            # A record's first event (most events of a rebuild): every field it names
            # wins, so the field loop below would only copy them.
            self.states[record_id] = RecordState(
                self.next_rid,
                record_id,
                rtype,
                {path: value for path, value in fields.items() if value is not None},
                dict.fromkeys(fields, clock),
                clock,
                clock,
                device,
                is_new=True,
                dirty=True,
            )
            self.next_rid += 1
            self._add_history(seq, record_id, clock, device, kind)
            return
        if state.type != rtype:
            raise Malformed("type")  # an id reused for another type: keep the first
        if clock < state.created:
            state.created, state.author = clock, device
        data, clocks = state.data, state.clocks
        former = data.get("person")  # a status moved to another person: refresh both
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
        if isinstance(former, str) and data.get("person") != former:
            self.former_people.add(former)
        self._add_history(seq, record_id, clock, device, kind)

    def _link(self, seq: int, body: dict[str, Any], clock: str, device: str) -> None:
        key = (body_str(body, "src"), body_str(body, "rel"), body_str(body, "dst"))
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
            self._add_history(seq, record_id, clock, device, ev.RECORD_LINKED)

    def _add_history(self, seq: int, record_id: str, clock: str, device: str, kind: str) -> None:
        """One history row per event and record, even if an imported event (from a
        buggy or hostile peer) names a record twice."""
        if (seq, record_id) not in self._in_history:
            self._in_history.add((seq, record_id))
            self.history.append((seq, record_id, clock, device, kind))

    def _term(self, body: dict[str, Any], clock: str) -> None:
        key = (body_str(body, "vocabulary"), body_str(body, "term"))
        row = {
            "vocabulary": key[0],
            "term": key[1],
            "ar": body_str(body, "ar"),
            "en": body_str(body, "en"),
            "clock": clock,
        }
        current = self.terms.get(key) or self.stored_term(key)
        if current is None or clock > current["clock"]:
            self.terms[key] = row
            self.vocab.add(Term(key[0], key[1], row["ar"], row["en"], builtin=False))

    # -- rows ------------------------------------------------------------------------
    def rows(self) -> Rows:
        out = Rows(history=self.history, vocab=list(self.terms.values()))
        self.saved = []
        people = set(self.former_people)
        inserts, updates, person_updates = out.inserts, out.updates, out.person_updates
        rewritten, term_rows, fts = out.rewritten, out.terms, out.fts
        types, vocab, pg = schema.TYPES, self.vocab, self.pg
        for state in self.states.values():
            if not state.dirty:
                continue
            kind = types[state.type]
            data = state.data
            deleted = bool(data.get(schema.DELETED))
            title, start, end, place, admin, lat, lon, status, parent = summary.column_values(
                kind, data
            )
            created, clocks = state.created, state.clocks
            # every clock lies between created and updated; equal, and one per field
            # held, nothing is worth storing (most records: never edited)
            if state.updated == created and len(clocks) == len(data):
                stored_clocks = "{}"
            else:
                stored_clocks = dumps(compact_clocks(data, clocks, created))
            rid = state.rid
            data_json = dumps(data)
            if self.keep:
                self.saved.append(
                    (
                        state.id,
                        (
                            rid,
                            state.type,
                            created,
                            state.updated,
                            state.author,
                            data_json,
                            stored_clocks,
                        ),
                    )
                )
            # in _RECORD_COLUMNS order; an update sets the same columns but rid, found by
            # rid, and a person's keeps its status and dates (from its status records)
            row = (
                rid,
                state.id,
                state.type,
                deleted,
                title,
                start,
                end,
                place,
                admin,
                lat,
                lon,
                status,
                parent,
                created,
                state.updated,
                state.author,
                data_json,
                stored_clocks,
            )
            if state.is_new:
                inserts.append(row)
            elif state.type == "person":
                person_updates.append((*row[1:5], *row[7:11], *row[12:], rid))
                rewritten.append(rid)
            else:
                updates.append((*row[1:], rid))
                rewritten.append(rid)
            if state.type == "status":
                person = data.get("person")
                if isinstance(person, str):
                    people.add(person)
            if deleted:
                continue
            pairs, words = summary.index_rows(kind, state.id, data, vocab)
            term_rows.extend([(rid, v, t) for v, t in pairs])
            fts.append((rid, words if pg else " ".join(words)))
        out.links = [(k, s) for k, s in self.links.items() if s.dirty]
        out.people = sorted(people)
        return out
