"""Turn raw field input into canonical values for one record type, or explain why not."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from athar.errors import InputError
from athar.records import ids, schema
from athar.records.schema import Field, RecordType
from athar.records.values import (
    Json,
    Problem,
    bad_value,
    int_parser,
    parse_bool,
    parse_coordinates,
    parse_date,
    parse_range,
    parse_text,
    parse_year,
)
from athar.records.vocab import Vocabularies

_SIMPLE: dict[str, Callable[[Json], Json]] = {
    schema.TEXT: parse_text,
    schema.LONGTEXT: parse_text,
    schema.BOOL: parse_bool,
    schema.YEAR: parse_year,
    schema.AGE: int_parser(0, 130),
    schema.COUNT: int_parser(0, 1_000_000),
    schema.RANGE: parse_range,
    schema.DATE: parse_date,
    schema.COORDS: parse_coordinates,
}
_LIST_SEPARATORS = str.maketrans({"،": ",", ";": ",", "؛": ",", "|": ","})


def record_type(name: str) -> RecordType:
    found = schema.TYPES.get(name.strip().lower())
    if found is None:
        raise InputError(
            "unknown record type {name}; one of: {types}",
            name=name,
            types=", ".join(schema.TYPES),
        )
    return found


def is_empty(raw: Json) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def parse_value(spec: Field, raw: Json, vocab: Vocabularies) -> Json:
    simple = _SIMPLE.get(spec.kind)
    if simple is not None:
        return simple(raw)
    if spec.kind == schema.TERM:
        if not isinstance(raw, str):
            raise bad_value("expected a term")
        return vocab.resolve(spec.vocabulary or "", raw)
    if spec.kind == schema.TERMS:
        items = raw.translate(_LIST_SEPARATORS).split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise bad_value("expected a list of terms")
        return sorted({vocab.resolve(spec.vocabulary or "", i) for i in items if i.strip()})
    if spec.kind == schema.REF:
        if not isinstance(raw, str):
            raise bad_value("expected a record id")
        text = raw.strip().lower()
        if ids.type_of(text) != spec.target or not ids.is_record_id(text):
            raise bad_value(
                "{value} is not the id of a {target} record", value=raw[:40], target=spec.target
            )
        return text
    raise AssertionError(f"unknown field kind {spec.kind}")


def parse_fields(
    kind: RecordType,
    raw: Mapping[str, Json],
    vocab: Vocabularies,
    *,
    creating: bool,
    on_problem: Callable[[str, Problem], None] | None = None,
) -> dict[str, Json]:
    """Canonical values for *raw*; None marks a field being cleared (only when editing).

    Problems raise InputError at the first one, or go to *on_problem* (the import dry run
    collects them all).
    """
    out: dict[str, Json] = {}
    for path, value in raw.items():
        spec = kind.fields.get(path)
        try:
            if spec is None:
                raise bad_value(
                    "a {type} has no field {path} (see athar fields {type})",
                    type=kind.name,
                    path=path,
                )
            if is_empty(value):
                if not creating:
                    out[path] = None
                continue
            out[path] = parse_value(spec, value, vocab)
        except Problem as exc:
            if on_problem is None:
                raise exc.as_error(path) from None
            on_problem(path, exc)
    return out


def check_record(kind: RecordType, values: Mapping[str, Json]) -> list[tuple[str, Problem]]:
    """Whole-record rules, on the values a record would have after the change."""
    problems: list[tuple[str, Problem]] = []
    for group in kind.required:
        if not any(values.get(path) not in (None, "", []) for path in group):
            problems.append(
                (
                    group[0],
                    bad_value(
                        "a {type} needs one of: {fields}", type=kind.name, fields=", ".join(group)
                    ),
                )
            )
    for outcome in ("killed", "injured"):
        total = values.get(f"{outcome}.total")
        parts = [values.get(f"{outcome}.{g}") for g in ("children", "women", "men")]
        known = [p for p in parts if isinstance(p, dict)]
        if isinstance(total, dict) and known:
            least = sum(p["min"] for p in known)
            if least > total["max"]:
                problems.append(
                    (
                        f"{outcome}.total",
                        bad_value(
                            "children, women and men add up to at least {least}, "
                            "more than the total's maximum {max}",
                            least=least,
                            max=total["max"],
                        ),
                    )
                )
    return problems


def raise_first(problems: list[tuple[str, Problem]]) -> None:
    if problems:
        path, exc = problems[0]
        raise exc.as_error(path)


def merged(current: Mapping[str, Any], changes: Mapping[str, Json]) -> dict[str, Any]:
    out = dict(current)
    for path, value in changes.items():
        if value is None:
            out.pop(path, None)
        else:
            out[path] = value
    return out
