"""Listing and full-text search over the projection, with filters.

Queries are folded exactly as the index was (athar.records.textnorm), then run on each
backend's own full-text index: SQLite FTS5 on the embedded store, a GIN-indexed
tsvector on PostgreSQL. Matching is on whole words; a word typed with a trailing * matches
as a prefix.

Matches come newest first, not by a relevance score: in lists of victims nearly every
record matches a common name equally well, and scoring (BM25) would have to score all of
them — a quarter of a million rows for محمد in a national list — before showing the first
page. In rowid order the index stops after one page. For the same reason SQLite is told
to drive from the full-text index (CROSS JOIN): left to itself, SQLite 3.53 sometimes
starts from a filter's index and checks the words row by row — seconds instead of
milliseconds on a million records. Lists without words are newest first too, walking the
table backwards instead of sorting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from athar.errors import InputError
from athar.records import textnorm
from athar.records.values import Problem, parse_date

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Filters:
    type: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    place: str | None = None
    violation: str | None = None
    status: str | None = None
    include_deleted: bool = False


def date_bounds(date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    """`--from 2017-03 --to 2017` → first day of the first, last day of the second."""
    try:
        low = parse_date(date_from)["start"] if date_from else None
        high = parse_date(date_to)["end"] if date_to else None
    except Problem as exc:
        raise exc.as_error("date") from None
    return low, high


def _where(filters: Filters, params: dict[str, Any], pg: bool) -> list[str]:
    clauses = [] if filters.include_deleted else ["r.deleted = :false"]
    params["false"] = False
    if filters.type:
        # Unary + keeps SQLite from choosing the (type, …) indexes for a bare type filter:
        # with half the table of one type, walking the table newest-first and stopping at
        # a page is far cheaper than collecting the whole type and sorting it.
        clauses.append("r.type = :type" if pg else "+r.type = :type")
        params["type"] = filters.type
    low, high = date_bounds(filters.date_from, filters.date_to)
    if low:
        clauses.append("r.date_end >= :date_from")
        params["date_from"] = low
    if high:
        clauses.append("r.date_start <= :date_to")
        params["date_to"] = high
    if filters.place:
        clauses.append("(r.place LIKE :place OR r.admin_area LIKE :place)")
        params["place"] = f"%{textnorm.fold(filters.place.strip())}%"
    if filters.violation:
        clauses.append(
            "EXISTS (SELECT 1 FROM terms t WHERE t.rid = r.rid "
            "AND t.vocabulary = 'violation' AND t.term = :violation)"
        )
        params["violation"] = filters.violation
    if filters.status:
        clauses.append("r.status = :status")
        params["status"] = filters.status
    return clauses


_COLUMNS = "r.id, r.type, r.title, r.date_start, r.date_end, r.status, r.deleted, r.updated"


def _fts_query(query: str, pg: bool) -> str:
    words = query.split()
    prefix = bool(words) and words[-1].endswith("*")
    terms = textnorm.query_terms(query)
    if not terms:
        raise InputError("the search has no words to look for")
    if pg:
        quoted = [f"'{t}'" for t in terms]
        if prefix:
            quoted[-1] += ":*"
        return " & ".join(quoted)
    quoted = [f'"{t}"' for t in terms]
    if prefix:
        quoted[-1] += "*"
    return " ".join(quoted)


def find(  # SQL below is assembled from fixed fragments; every user value is bound
    conn: Connection,
    pg: bool,
    query: str | None,
    filters: Filters,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": max(1, min(limit, MAX_LIMIT)), "offset": max(0, offset)}
    clauses = _where(filters, params, pg)
    if query and query.strip():
        params["q"] = _fts_query(query, pg)
        if pg:
            sql = (
                f"SELECT {_COLUMNS} FROM records_fts f JOIN records r ON r.rid = f.rid "  # noqa: S608
                "WHERE f.tsv @@ CAST(:q AS tsquery)"
            )
            order = "f.rid DESC"  # lets the planner walk the primary key for common words
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM records_fts f CROSS JOIN records r ON r.rid = f.rowid "  # noqa: S608
                "WHERE records_fts MATCH :q"
            )
            order = "f.rowid DESC"
        where = "".join(f" AND {c}" for c in clauses)
        sql = f"{sql}{where} ORDER BY {order} LIMIT :limit OFFSET :offset"
    else:
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT {_COLUMNS} FROM records r{where} "  # noqa: S608
            "ORDER BY r.rid DESC LIMIT :limit OFFSET :offset"
        )
    return [dict(row._mapping) for row in conn.execute(text(sql), params)]
