"""The records service: the one API the command line and the web app both call.

Writes go to the vault's ledger first (signed events, one transaction per command) and
are then applied to the projection; reads come from the projection only.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine, select, text

from athar.errors import InputError
from athar.records import events as ev
from athar.records import ids, schema, search, store
from athar.records.hlc import Clock, stamp_time_ms
from athar.records.merge import expand_clocks
from athar.records.projection import ApplyStats, Projection
from athar.records.rebuild import rebuild_into
from athar.records.schema import RecordType
from athar.records.store import history, links, records
from athar.records.validate import check_record, merged, parse_fields, raise_first, record_type
from athar.records.values import Json, Problem, bad_value, parse_text
from athar.records.vocab import Vocabularies
from athar.vault.events import SignedEvent
from athar.vault.progress import Progress
from athar.vault.vault import Vault

MIN_PREFIX = 6
APPLY_BATCH = 20000


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection during a bulk load: it builds millions of small,
    acyclic objects, and each full collection would walk all those still alive (a tenth
    of a rebuild's time); what little cyclic garbage there is goes at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class RecordView:
    id: str
    type: str
    data: dict[str, Any]
    deleted: bool
    created: str
    updated: str
    author: str
    links: list[dict[str, Any]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "fields": self.data,
            "deleted": self.deleted,
            "created": self.created.split("|")[0],
            "updated": self.updated.split("|")[0],
            "author": self.author,
            "links": self.links,
            "children": self.children,
        }


class Records:
    def __init__(self, vault: Vault, store_url: str | None = None) -> None:
        self.vault = vault
        self.vault_id = vault.keys.vault_id.hex()
        self._file = vault.root / store.FILE_NAME
        self._file_key = vault.keys.subkey("records/store")
        if store_url:
            engine = store.postgres_engine(store_url)
        else:
            engine = store.sqlite_engine(self._file, self._file_key)
        self.projection = Projection(engine, self.vault_id)
        self.catch_up()
        self.clock = Clock(self.projection.last_clock())

    @property
    def engine(self) -> Engine:
        return self.projection.engine

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def vocab(self) -> Vocabularies:
        return self.projection.vocab

    # -- keeping the projection current ------------------------------------------------
    def catch_up(self, progress: Progress | None = None) -> ApplyStats:
        """Apply every ledger event the projection has not seen (after a crash, after
        another process wrote, after events arrived from another device)."""
        return self._feed(self.projection, progress)

    def _feed(self, projection: Projection, progress: Progress | None) -> ApplyStats:
        total = ApplyStats()
        start = projection.applied_seq()
        if progress is not None:
            progress.start(max(0, self.vault.ledger.size() - start - 1))
        for batch in self.vault.ledger.events_after(start, APPLY_BATCH):
            stats = projection.apply(batch)
            total.applied += stats.applied
            total.ignored += stats.ignored
            if progress is not None:
                progress.advance(len(batch))
        return total

    def rebuild(self, progress: Progress | None = None) -> ApplyStats:
        """Recreate the projection from the ledger alone.

        The embedded store is rebuilt into a new file, loaded without journal or secondary
        indexes (built once at the end, which is several times faster than keeping them
        up to date row by row), and only then swapped in: a crash midway leaves the old
        projection in place. A server store is emptied and refilled in place.
        """
        if self.projection.pg:
            self.projection.reset()
            stats = self._feed(self.projection, progress)
        else:
            fresh_path = self._file.with_name(store.FILE_NAME + ".rebuild")
            store.remove_database(fresh_path)
            engine = store.sqlite_engine(fresh_path, self._file_key, bulk=True)
            try:
                fresh = Projection(engine, self.vault_id, bulk=True)
                indexes = store.drop_secondary_indexes(engine)
                if progress is not None:
                    progress.start(self.vault.ledger.size())
                with paused_gc(), store.bulk_load(engine) as conn:
                    # the secondary indexes are built inside the load, while the reader
                    # builds the search index on the other core
                    stats = rebuild_into(
                        fresh, conn, self.vault.ledger.event_reader(), progress, indexes
                    )
                fresh.refresh_all_people()
            finally:
                engine.dispose()
            self.engine.dispose()
            store.replace_database(fresh_path, self._file)
            self.projection = Projection(
                store.sqlite_engine(self._file, self._file_key), self.vault_id
            )
        self.clock.observe(self.projection.last_clock())
        return stats

    def commit(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> list[SignedEvent]:
        """Sign and append *changes* in one ledger transaction, then project them."""
        if not changes:
            return []
        batch: list[tuple[int, SignedEvent]] = []
        with self.vault.ledger.transaction() as tx:
            for kind, body in changes:
                signed = tx.append(kind, body)
                batch.append((tx.head.size - 1, signed))
        if self.projection.applied_seq() == batch[0][0] - 1:
            for start in range(0, len(batch), APPLY_BATCH):
                self.projection.apply(batch[start : start + APPLY_BATCH])
        else:  # another process appended meanwhile: take everything in ledger order
            self.catch_up()
        return [signed for _, signed in batch]

    # -- reading --------------------------------------------------------------------
    def resolve(self, ident: str) -> str:
        """The full id for an id or a unique prefix of one."""
        ident = ident.strip().lower()
        if ids.is_record_id(ident):
            return ident
        if len(ident) < MIN_PREFIX or not ident.replace("-", "").isalnum() or not ident.isascii():
            raise InputError(
                "a record id looks like inc-… and has at least {n} characters: {id}",
                n=MIN_PREFIX,
                id=ident,
            )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(records.c.id).where(records.c.id.like(ident + "%")).limit(2)
            ).all()
        if not rows:
            raise InputError("no record with id {id}", id=ident)
        if len(rows) > 1:
            raise InputError("{id} matches several records; give more characters", id=ident)
        return str(rows[0][0])

    def _row(self, record_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(records).where(records.c.id == record_id)).first()

    def exists(self, record_id: str, record_type: str | None = None) -> bool:
        row = self._row(record_id)
        return row is not None and not row.deleted and (record_type in (None, row.type))

    def get(self, ident: str) -> RecordView:
        record_id = self.resolve(ident)
        row = self._row(record_id)
        if row is None:
            raise InputError("no record with id {id}", id=ident)
        view = RecordView(
            row.id,
            row.type,
            json.loads(row.data),
            bool(row.deleted),
            row.created,
            row.updated,
            row.author,
        )
        with self.engine.connect() as conn:
            for link in conn.execute(
                select(links)
                .where(
                    (links.c.src == record_id) | (links.c.dst == record_id),
                    links.c.present.is_(True),
                )
                .order_by(links.c.rel, links.c.src, links.c.dst)
            ):
                view.links.append(
                    {
                        "rel": link.rel,
                        "src": link.src,
                        "dst": link.dst,
                        "attrs": json.loads(link.attrs),
                        "direction": "out" if link.src == record_id else "in",
                    }
                )
            for child in conn.execute(
                select(
                    records.c.id,
                    records.c.type,
                    records.c.title,
                    records.c.date_start,
                    records.c.data,
                )
                .where(records.c.parent == record_id, records.c.deleted.is_(False))
                .order_by(records.c.date_start, records.c.id)
            ):
                view.children.append(
                    {
                        "id": child.id,
                        "type": child.type,
                        "title": child.title,
                        "date": child.date_start,
                        "fields": json.loads(child.data),
                    }
                )
        return view

    def find(
        self,
        query: str | None = None,
        filters: search.Filters | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        filters = filters or search.Filters()
        if filters.violation:
            filters = replace(filters, violation=self._term("violation", filters.violation))
        if filters.status:
            filters = replace(filters, status=self._term("person_status", filters.status))
        if filters.type:
            filters = replace(filters, type=record_type(filters.type).name)
        with self.engine.connect() as conn:
            return search.find(conn, self.projection.pg, query, filters, limit, offset)

    def _term(self, vocabulary: str, raw: str) -> str:
        try:
            return self.vocab.resolve(vocabulary, raw)
        except Problem as exc:
            raise exc.as_error(vocabulary) from None

    def history(self, ident: str) -> list[dict[str, Any]]:
        """Every change to a record, oldest first, with whether each field value still
        stands or was overridden by a later (or concurrent, winning) edit."""
        record_id = self.resolve(ident)
        row = self._row(record_id)
        clocks = (
            expand_clocks(json.loads(row.data), json.loads(row.clocks), row.created)
            if row is not None
            else {}
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(history)
                .where(history.c.record == record_id)
                .order_by(history.c.clock, history.c.seq)
            ).all()
        out = []
        for r in rows:
            # The projection indexes which events touched the record; what they said is
            # read from the ledger itself, so history shows exactly what was signed.
            body = self.vault.ledger.event_at(r.seq).event.body
            imported = None
            if "changes" in body:  # one row of an imported file
                imported = {"file": body.get("file"), "sha256": body.get("sha256")}
                for change in body["changes"]:
                    if change.get("id") == record_id:
                        body, imported["line"] = change, change.get("line")
                        break
            entry: dict[str, Any] = {
                "seq": r.seq,
                "time_ms": stamp_time_ms(r.clock.split("|")[0]),
                "clock": r.clock,
                "device": r.device,
                "kind": r.kind,
                "user": body.get("user"),
            }
            if imported is not None:
                entry["import"] = imported
            if r.kind == ev.RECORD_LINKED:
                entry["link"] = {k: body.get(k) for k in ("src", "rel", "dst", "present", "attrs")}
            else:
                entry["fields"] = {
                    path: {"value": value, "current": clocks.get(path) == r.clock}
                    for path, value in body.get("fields", {}).items()
                }
            out.append(entry)
        return out

    def titles(self, record_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(record_ids), 500):
                part = record_ids[start : start + 500]
                query = select(records.c.id, records.c.title).where(records.c.id.in_(part))
                out.update({r.id: r.title or "" for r in conn.execute(query)})
        return out

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT type, count(*) FROM records WHERE deleted = :f GROUP BY type"),
                {"f": False},
            ).all()
        return {str(t): int(n) for t, n in rows}

    # -- writing --------------------------------------------------------------------
    def event_body(
        self,
        record_id: str,
        kind: RecordType,
        fields: Mapping[str, Json],
        user: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": record_id,
            "type": kind.name,
            "clock": self.clock.tick(),
            "fields": dict(fields),
        }
        if user:
            body["user"] = user
        return body

    def check_refs(
        self, kind: RecordType, values: Mapping[str, Json], pending: set[str] | None = None
    ) -> None:
        for spec in kind.fields.values():
            value = values.get(spec.path)
            if (
                spec.kind == schema.REF
                and value is not None
                and value not in (pending or set())
                and not self.exists(value, spec.target)
            ):
                raise InputError(
                    "there is no {target} record {id}", target=spec.target or "", id=value
                ).at(spec.path)

    def prepare_create(
        self,
        type_name: str,
        raw: Mapping[str, Json],
        record_id: str | None = None,
        user: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        kind = record_type(type_name)
        values = parse_fields(kind, raw, self.vocab, creating=True)
        raise_first(check_record(kind, values))
        self.check_refs(kind, values)
        record_id = record_id or ids.new_id(kind.name)
        return record_id, self.event_body(record_id, kind, values, user)

    def create(self, type_name: str, raw: Mapping[str, Json], user: str | None = None) -> str:
        record_id, body = self.prepare_create(type_name, raw, user=user)
        self.commit([(ev.RECORD_CREATED, body)])
        return record_id

    def prepare_update(
        self, record_id: str, raw: Mapping[str, Json], user: str | None = None
    ) -> dict[str, Any] | None:
        """The event body that makes *raw* true of the record, or None if it already is."""
        row = self._row(record_id)
        if row is None:
            raise InputError("no record with id {id}", id=record_id)
        kind = schema.TYPES[row.type]
        current = json.loads(row.data)
        values = parse_fields(kind, raw, self.vocab, creating=False)
        changes = {p: v for p, v in values.items() if current.get(p) != v}
        if not changes:
            return None
        raise_first(check_record(kind, merged(current, changes)))
        self.check_refs(kind, changes)
        return self.event_body(record_id, kind, changes, user)

    def update(self, ident: str, raw: Mapping[str, Json], user: str | None = None) -> bool:
        body = self.prepare_update(self.resolve(ident), raw, user)
        if body is None:
            return False
        self.commit([(ev.RECORD_UPDATED, body)])
        return True

    def delete(self, ident: str, user: str | None = None, restore: bool = False) -> bool:
        record_id = self.resolve(ident)
        row = self._row(record_id)
        if row is None or bool(row.deleted) != restore:
            return False
        kind = schema.TYPES[row.type]
        body = self.event_body(record_id, kind, {schema.DELETED: None if restore else True}, user)
        self.commit([(ev.RECORD_UPDATED if restore else ev.RECORD_DELETED, body)])
        return True

    def link(
        self,
        src_ident: str,
        rel: str,
        dst_ident: str,
        *,
        present: bool = True,
        attrs: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> bool:
        src = self.resolve(src_ident)
        row = self._row(src)
        kind = schema.TYPES[row.type]
        target = kind.links.get(rel)
        if target is None:
            raise InputError(
                "a {type} cannot be linked as {rel}; it takes: {rels}",
                type=kind.name,
                rel=rel,
                rels=", ".join(kind.links) or "-",
            )
        if target == "item":
            dst = self.vault.item(dst_ident).id
        else:
            dst = self.resolve(dst_ident)
            if not self.exists(dst, target):
                raise InputError("{id} is not a {target} record", id=dst, target=target)
        clean: dict[str, str] = {}
        for key, value in (attrs or {}).items():
            try:
                clean[parse_text(key)] = parse_text(value)
            except Exception:
                raise bad_value("expected text").as_error(key) from None
        with self.engine.connect() as conn:
            existing = conn.execute(
                select(links.c.present, links.c.attrs).where(
                    links.c.src == src, links.c.rel == rel, links.c.dst == dst
                )
            ).first()
        if (
            existing is not None
            and bool(existing.present) == present
            and (not present or json.loads(existing.attrs) == clean)
        ):
            return False
        body: dict[str, Any] = {
            "src": src,
            "src_type": kind.name,
            "rel": rel,
            "dst": dst,
            "present": present,
            "attrs": clean,
            "clock": self.clock.tick(),
        }
        if user:
            body["user"] = user
        self.commit([(ev.RECORD_LINKED, body)])
        return True

    def add_term(
        self, vocabulary: str, term: str, ar: str, en: str, user: str | None = None
    ) -> None:
        if vocabulary not in self.vocab.terms:
            raise InputError("unknown vocabulary {name}", name=vocabulary)
        term = term.strip().lower()
        if not term or not term.replace("_", "").isalnum() or not term.isascii():
            raise InputError("a term id is lower-case letters, digits and _: {term}", term=term)
        ar, en = parse_text(ar), parse_text(en)
        if not ar or not en:
            raise InputError("a term needs both an Arabic and an English label")
        body: dict[str, Any] = {
            "vocabulary": vocabulary,
            "term": term,
            "ar": ar,
            "en": en,
            "clock": self.clock.tick(),
        }
        if user:
            body["user"] = user
        self.commit([(ev.VOCAB_TERM_ADDED, body)])
