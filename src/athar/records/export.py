"""Export records as CSV (one type, re-importable), JSON or GeoJSON.

Private fields (contacts, interviewers, the families who report a missing person) are
left out unless asked for explicitly; deleted records are never exported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import select

from athar.errors import InputError
from athar.records import schema
from athar.records.csvimport import escape_formula
from athar.records.formats import value_text
from athar.records.service import Records
from athar.records.store import links, records
from athar.records.validate import record_type

FORMATS = ("csv", "json", "geojson")


def _rows(service: Records, type_name: str | None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    query = select(records.c.id, records.c.type, records.c.data).where(records.c.deleted.is_(False))
    if type_name:
        query = query.where(records.c.type == type_name)
    with service.engine.connect() as conn:
        for row in conn.execute(query.order_by(records.c.rid)).yield_per(2000):
            yield row.id, row.type, json.loads(row.data)


def _public(type_name: str, data: dict[str, Any], include_private: bool) -> dict[str, Any]:
    kind = schema.TYPES[type_name]
    return {
        path: value
        for path, value in sorted(data.items())
        if path in kind.fields and (include_private or not kind.fields[path].private)
    }


def _links(service: Records) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    with service.engine.connect() as conn:
        query = select(links.c.src, links.c.rel, links.c.dst).where(links.c.present.is_(True))
        for row in conn.execute(query.order_by(links.c.src, links.c.rel, links.c.dst)):
            out.setdefault(row.src, []).append({"rel": row.rel, "dst": row.dst})
    return out


def export(
    service: Records,
    fmt: str,
    out: IO[str],
    type_name: str | None = None,
    include_private: bool = False,
) -> int:
    """Write the export to *out*; returns how many records it holds."""
    if fmt not in FORMATS:
        raise InputError(
            "unknown export format {fmt}; one of: {formats}", fmt=fmt, formats=", ".join(FORMATS)
        )
    if type_name:
        type_name = record_type(type_name).name
    if fmt == "csv":
        return _csv(service, out, type_name, include_private)
    if fmt == "json":
        return _json(service, out, type_name, include_private)
    return _geojson(service, out, type_name, include_private)


def _csv(service: Records, out: IO[str], type_name: str | None, include_private: bool) -> int:
    if not type_name:
        raise InputError("a CSV export holds one record type: add --type")
    kind = schema.TYPES[type_name]
    paths = [p for p, spec in kind.fields.items() if include_private or not spec.private]
    writer = csv.writer(out)
    writer.writerow(["id", *paths])
    count = 0
    for record_id, _, data in _rows(service, type_name):
        writer.writerow([record_id, *(_cell(kind.fields[p], data.get(p)) for p in paths)])
        count += 1
    return count


def _cell(spec: schema.Field, value: Any) -> str:
    text = value_text(spec, value)
    return escape_formula(text) if spec.kind in (schema.TEXT, schema.LONGTEXT) else text


def _json(service: Records, out: IO[str], type_name: str | None, include_private: bool) -> int:
    linked = _links(service)
    out.write('{"format": "athar.records.v1", "records": [\n')
    count = 0
    for record_id, rtype, data in _rows(service, type_name):
        item = {
            "id": record_id,
            "type": rtype,
            "fields": _public(rtype, data, include_private),
            "links": linked.get(record_id, []),
        }
        out.write((",\n" if count else "") + json.dumps(item, ensure_ascii=False, sort_keys=True))
        count += 1
    out.write("\n]}\n")
    return count


def _geojson(service: Records, out: IO[str], type_name: str | None, include_private: bool) -> int:
    """RFC 7946: one Point feature per record that has coordinates (longitude first)."""
    out.write('{"type": "FeatureCollection", "features": [\n')
    count = 0
    for record_id, rtype, data in _rows(service, type_name):
        kind = schema.TYPES[rtype]
        coords = data.get(kind.coords_field) if kind.coords_field else None
        if not coords:
            continue
        properties = {"id": record_id, "type": rtype, **_public(rtype, data, include_private)}
        feature = {
            "type": "Feature",
            "id": record_id,
            "geometry": {"type": "Point", "coordinates": [coords["lon"], coords["lat"]]},
            "properties": properties,
        }
        out.write(
            (",\n" if count else "") + json.dumps(feature, ensure_ascii=False, sort_keys=True)
        )
        count += 1
    out.write("\n]}\n")
    return count
