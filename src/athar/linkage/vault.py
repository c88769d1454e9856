"""Linkage inside a vault: person records (with their status records) as lists, reviewers'
decisions as signed ledger events.

A decision is a `linkage.decision` event, `{left, right, decision, clock}`, signed by the
device that made it like every other change; the records projection ignores this kind,
and every linkage run reads all of them (the latest per pair, in ledger order, wins), so
a decision holds for every later run on every device the ledger reaches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import select

from athar.errors import InputError
from athar.linkage.clusters import Decision
from athar.linkage.lists import ListRow
from athar.records.service import Records
from athar.records.store import records as records_table

DECISION = "linkage.decision"
_NAME_PARTS = ("given", "father", "grandfather", "family")
_SEX = {"male": "m", "female": "f", "m": "m", "f": "f"}
_DEATH = ("killed", "died_in_detention", "executed", "died")


def _name(data: dict[str, Any], script: str) -> str:
    full = data.get(f"{script}.full")
    if isinstance(full, str) and full.strip():
        return full.strip()
    return " ".join(
        str(data[f"{script}.{p}"]).strip() for p in _NAME_PARTS if data.get(f"{script}.{p}")
    )


def _day(value: Any) -> int | None:
    start = value.get("start") if isinstance(value, dict) else value
    if not isinstance(start, str) or len(start) < 10:
        return None
    try:
        return (date.fromisoformat(start[:10]) - date(1970, 1, 1)).days
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, dict):  # an age range: its middle
        low, high = value.get("min"), value.get("max")
        if isinstance(low, int) and isinstance(high, int):
            return (low + high) // 2
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def person_row(record_id: str, data: dict[str, Any], status: dict[str, Any] | None) -> ListRow:
    """One person record as a linkage row: the Arabic name first (the other script is
    kept), the mother's name, sex, year of birth (or age at the status date), and the
    date and place of their latest status."""
    ar, latin = _name(data, "name_ar"), _name(data, "name_latin")
    status = status or {}
    day = _day(status.get("date"))
    birth_year = _int(data.get("birth_year"))
    age = _int(data.get("age"))
    if birth_year is None and age is not None and day is not None:
        birth_year = 1970 + int(day // 365.25) - age
    place = status.get("place.name_ar") or status.get("place.name_latin") or ""
    return ListRow(
        record_id,
        "vault",
        ar or latin,
        latin if ar else "",
        "",
        str(data.get("name_ar.mother") or data.get("name_latin.mother") or ""),
        _SEX.get(str(data.get("sex") or "").lower()),
        birth_year,
        day,
        str(place),
        str(status.get("place.admin_area") or ""),
        str(status.get("status") or "").casefold(),
    )


def person_rows(store: Records) -> list[ListRow]:
    """Every person record that is not deleted and has a readable name."""
    people: dict[str, dict[str, Any]] = {}
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    query = select(
        records_table.c.id,
        records_table.c.type,
        records_table.c.parent,
        records_table.c.date_start,
        records_table.c.data,
    ).where(records_table.c.deleted.is_(False), records_table.c.type.in_(("person", "status")))
    with store.engine.connect() as conn:
        for rid, kind, parent, when, data in conn.execute(query):
            fields = json.loads(data)
            if kind == "person":
                people[rid] = fields
            elif parent:
                best = latest.get(parent)
                if best is None or (when or "") >= best[0]:
                    latest[parent] = (when or "", fields)
    rows = []
    for rid in sorted(people):
        row = person_row(rid, people[rid], latest.get(rid, ("", None))[1])
        if row.name:
            rows.append(row)
    return rows


def decisions(store: Records) -> list[Decision]:
    """Every reviewer decision in the ledger; a later decision on a pair replaces an
    earlier one."""
    out: dict[frozenset[str], Decision] = {}
    for signed in _events(store):
        body = signed.event.body
        left, right, verdict = body.get("left"), body.get("right"), body.get("decision")
        if isinstance(left, str) and isinstance(right, str) and verdict in ("match", "non_match"):
            out[frozenset((left, right))] = Decision(left, right, verdict == "match")
    return list(out.values())


def _events(store: Records) -> Iterator[Any]:
    for signed in store.vault.events():
        if signed.event.kind == DECISION:
            yield signed


def decide(
    store: Records,
    left: str,
    right: str,
    match: bool,
    note: str | None = None,
    user: str | None = None,
) -> str:
    """Record a reviewer's decision about two person records as a signed event; *user*
    is the acting web account's pseudonymous id (the CLI's device answers for itself)."""
    a, b = store.resolve(left), store.resolve(right)
    if a == b:
        raise InputError("a decision needs two different records")
    for rid in (a, b):
        if not store.exists(rid, "person"):
            raise InputError("{id} is not a person record", id=rid)
    body: dict[str, Any] = {
        "left": min(a, b),
        "right": max(a, b),
        "decision": "match" if match else "non_match",
        "clock": store.clock.tick(),
    }
    if note:
        body["note"] = note
    if user:
        body["user"] = user
    return store.commit([(DECISION, body)])[0].id
