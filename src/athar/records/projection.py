"""Apply ledger events to the SQL projection, in any order, with the same result.

The merging itself is athar.records.merge; this module loads what a batch touches from
the database and writes the merged rows back. Events are applied in batches inside one
transaction together with the ledger position they reach, so a crash loses nothing: the
next open re-applies from that position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, text

from athar.crypto.identity import fingerprint
from athar.errors import AtharError
from athar.records import events as ev
from athar.records import schema, store, summary
from athar.records.hlc import ZERO
from athar.records.merge import (
    Change,
    LinkState,
    Malformed,
    Merger,
    RecordState,
    Rows,
    dumps,
    expand_clocks,
    record_ids,
)
from athar.records.store import history, links, meta, records, terms, vocab_terms
from athar.records.vocab import Term, Vocabularies
from athar.vault.events import SignedEvent, unwrap

_CHUNK = 500  # ids per IN (...) query
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


@dataclass
class ApplyStats:
    applied: int = 0
    ignored: int = 0
    touched: set[str] = field(default_factory=set)


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
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
        self._people_derived = False

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

    def refresh_all_people(self, conn: Connection | None = None) -> None:
        """After a bulk load into a new store (where people have no status yet): every
        person's status and dates from their latest status record, in one statement
        over the records sorted by person, not one lookup per person.

        A rebuild does it inside its load (*conn*), before the secondary indexes exist,
        so that the people's rows are written once and no index follows the change;
        called again after the load, it then has nothing left to do."""
        if conn is None:
            if not self._people_derived:
                with self.engine.begin() as own:
                    self.refresh_all_people(own)
            return
        conn.exec_driver_sql(_REFRESH_ALL_PEOPLE)
        self._people_derived = self.bulk

    # -- applying ------------------------------------------------------------------
    def device(self, key: bytes) -> str:
        fp = self._fingerprints.get(key)
        if fp is None:
            fp = self._fingerprints[key] = fingerprint(key)
        return fp

    def change(self, seq: int, signed: SignedEvent) -> Change:
        event = signed.event
        return (seq, event.kind, event.body, event.device, self.device(event.device))

    def apply(
        self, batch: Sequence[tuple[int, SignedEvent]], conn: Connection | None = None
    ) -> ApplyStats:
        """Apply the events of *batch* not applied yet, all in one transaction: a new
        one, or *conn*'s, which a bulk load keeps open across many batches."""
        if conn is None:
            with self.engine.begin() as own:
                return self.apply(batch, own)
        if not batch:
            return ApplyStats()
        applied = int(self._meta(conn, "applied_seq", "-1", lock=True))
        last_seq = max(seq for seq, _ in batch)
        if last_seq <= applied:
            return ApplyStats()
        todo = [
            self.change(seq, s)
            for seq, s in ((seq, unwrap(s)) for seq, s in batch if seq > applied)
            if s.event.kind in ev.ALL_KINDS
        ]
        next_rid = int(self._meta(conn, "next_rid", "1"))
        merger = Merger(self.vocab, next_rid, lambda key: self._stored_term(conn, key), self.pg)
        self.load(conn, merger, todo)
        stats, clock = merge_all(merger, todo, self._meta(conn, "clock", ZERO))
        self.write(conn, merger.rows())
        stats.touched = set(merger.states)
        self.set_progress(conn, last_seq, merger.next_rid, clock)
        return stats

    def set_progress(self, conn: Connection, seq: int, next_rid: int, clock: str) -> None:
        self._set_meta(conn, {"applied_seq": str(seq), "next_rid": str(next_rid), "clock": clock})

    def _stored_term(self, conn: Connection, key: tuple[str, str]) -> dict[str, Any] | None:
        found = conn.execute(
            select(vocab_terms).where(
                vocab_terms.c.vocabulary == key[0], vocab_terms.c.term == key[1]
            )
        ).first()
        return dict(found._mapping) if found else None

    def load(self, conn: Connection, merger: Merger, todo: Sequence[Change]) -> None:
        """Put the stored state of every record and link *todo* touches into *merger*."""
        ids: set[str] = set()
        link_srcs: set[str] = set()
        for _, kind, body, _, _ in todo:
            ids.update(record_ids(kind, body))
            if kind == ev.RECORD_LINKED and isinstance(body.get("src"), str):
                link_srcs.add(body["src"])
        cols = records.c
        for part in _chunks(sorted(ids)):
            rows = conn.execute(
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
                merger.states[r.id] = RecordState(
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
            for r in conn.execute(select(links).where(links.c.src.in_(part))):
                merger.links[(r.src, r.rel, r.dst)] = LinkState(
                    bool(r.present), orjson.loads(r.attrs), r.clock, is_new=False
                )

    # -- writing -------------------------------------------------------------------
    def _many(self, conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """executemany straight on the driver: these are the bulk of a rebuild or import,
        where SQLAlchemy's per-row parameter processing would cost more than SQLite."""
        if rows:
            conn.exec_driver_sql(sql.replace("?", "%s") if self.pg else sql, rows)

    def write(self, conn: Connection, rows: Rows) -> None:
        pg = self.pg
        fts = store.FTS_STAGE if self.bulk and not pg else "records_fts"
        for part in _chunks(rows.rewritten):
            conn.execute(delete(terms).where(terms.c.rid.in_(part)))
        self._drop_documents(conn, rows.rewritten, fts)
        marks = ", ".join("?" * 18)
        many = self._many
        many(conn, f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES ({marks})", rows.inserts)  # noqa: S608
        many(conn, f"UPDATE records SET {_UPDATE_COLUMNS} WHERE rid = ?", rows.updates)  # noqa: S608
        many(conn, f"UPDATE records SET {_UPDATE_PERSON} WHERE rid = ?", rows.person_updates)  # noqa: S608
        many(conn, "INSERT INTO terms (rid, vocabulary, term) VALUES (?, ?, ?)", rows.terms)
        self._add_documents(conn, rows.fts, fts)
        self._write_links(conn, rows.links)
        many(
            conn,
            "INSERT INTO history (seq, record, clock, device, kind) VALUES (?, ?, ?, ?, ?)",
            rows.history,
        )
        if rows.vocab:
            relabelled: set[tuple[str, str]] = set()
            for row in rows.vocab:
                key = (row["vocabulary"], row["term"])
                before = self.vocab.term(*key)
                self.vocab.add(Term(key[0], key[1], row["ar"], row["en"], False))
                if before is None or (before.ar, before.en) != (row["ar"], row["en"]):
                    relabelled.add(key)
                conn.execute(
                    delete(vocab_terms).where(
                        vocab_terms.c.vocabulary == key[0], vocab_terms.c.term == key[1]
                    )
                )
            conn.execute(insert(vocab_terms), rows.vocab)
            self._index_again(conn, relabelled, fts)
        if rows.people and not self.bulk:
            refresh_people(conn, rows.people)

    def _index_again(self, conn: Connection, keys: set[tuple[str, str]], fts: str) -> None:
        """Index again the records that use a term whose labels just changed: a record's
        search words hold its terms' labels, and must be the current ones whichever batch
        the relabelling fell in (an incremental apply and a rebuild cut the ledger into
        different batches, and must give the same store)."""
        rids: set[int] = set()
        for vocabulary, term in sorted(keys):
            found = conn.execute(
                select(terms.c.rid).where(terms.c.vocabulary == vocabulary, terms.c.term == term)
            )
            rids.update(int(r.rid) for r in found)
        if not rids:
            return
        cols = records.c
        docs: list[tuple[int, Any]] = []
        for part in _chunks(sorted(rids)):
            for r in conn.execute(
                select(cols.rid, cols.id, cols.type, cols.data).where(cols.rid.in_(part))
            ):
                words = summary.search_terms(
                    schema.TYPES[r.type], r.id, orjson.loads(r.data), self.vocab
                )
                docs.append((int(r.rid), words if self.pg else " ".join(words)))
        self._drop_documents(conn, sorted(rids), fts)
        self._add_documents(conn, docs, fts)

    def _drop_documents(self, conn: Connection, rids: Sequence[int], fts: str) -> None:
        """Remove the search documents of *rids* (from *fts*, the index or a bulk load's
        staging table on SQLite)."""
        for part in _chunks(rids):
            if self.pg:
                conn.execute(text("DELETE FROM records_fts WHERE rid = ANY(:r)"), {"r": list(part)})
            else:
                rowids = ",".join(str(int(rid)) for rid in part)  # integers only
                conn.execute(text(f"DELETE FROM {fts} WHERE rowid IN ({rowids})"))  # noqa: S608

    def _add_documents(self, conn: Connection, docs: Sequence[tuple[int, Any]], fts: str) -> None:
        if self.pg:
            self._many(
                conn,
                "INSERT INTO records_fts (rid, tsv) VALUES (?, array_to_tsvector(?::text[]))",
                docs,
            )
        else:
            self._many(conn, f"INSERT INTO {fts} (rowid, terms) VALUES (?, ?)", docs)  # noqa: S608

    def _write_links(
        self, conn: Connection, dirty: Sequence[tuple[tuple[str, str, str], LinkState]]
    ) -> None:
        if not dirty:
            return
        for key, state in dirty:
            if not state.is_new:
                conn.execute(
                    delete(links).where(
                        links.c.src == key[0], links.c.rel == key[1], links.c.dst == key[2]
                    )
                )
        conn.execute(
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


def merge_all(merger: Merger, todo: Sequence[Change], clock: str) -> tuple[ApplyStats, str]:
    """Merge every change, skipping malformed ones; the stats and the latest clock."""
    stats = ApplyStats()
    for change in todo:
        try:
            stamp = merger.apply(change)
        except Malformed:
            stats.ignored += 1
            continue
        stats.applied += 1
        clock = max(clock, stamp)
    return stats, clock


_REFRESH_ALL_PEOPLE = (
    "UPDATE records SET status = s.status, date_start = s.date_start, date_end = s.date_end "
    "FROM (SELECT parent, status, date_start, date_end, row_number() OVER ("
    "PARTITION BY parent ORDER BY COALESCE(date_start, '') DESC, updated DESC) AS n "
    "FROM records WHERE type = 'status' AND NOT deleted AND parent IS NOT NULL) AS s "
    "WHERE s.n = 1 AND records.id = s.parent AND records.type = 'person'"
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
