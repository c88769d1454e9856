"""What a record shows in lists and what search indexes: derived from its field values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from athar.records import ids, schema, textnorm
from athar.records.schema import RecordType
from athar.records.vocab import Vocabularies
from athar.vault.items import SHORT_ID

_NAME_ORDER = ("given", "father", "grandfather", "family")


def person_name(data: dict[str, Any], script: str) -> str:
    full = data.get(f"{script}.full")
    if full:
        return str(full)
    parts = [str(data[f"{script}.{p}"]) for p in _NAME_ORDER if data.get(f"{script}.{p}")]
    kunya = data.get(f"{script}.kunya")
    if kunya:
        parts.append(f"({kunya})" if parts else str(kunya))
    return " ".join(parts)


def title(kind: RecordType, data: dict[str, Any]) -> str:
    name = kind.name
    if name == "incident":
        return str(data.get("title.ar") or data.get("title.en") or "")
    if name == "person":
        return person_name(data, "name_ar") or person_name(data, "name_latin")
    if name == "source":
        return str(data.get("name") or data.get("organisation") or data.get("type") or "")
    if name == "testimony":
        return str(data.get("text") or data.get("note") or "")[:80]
    if name == "claim":
        killed = data.get("claimed.killed")
        count = (
            ""
            if not killed
            else f" {killed['min']}"
            + (f"–{killed['max']}" if killed["max"] != killed["min"] else "")
        )
        label = f" {data['claimed.label']}" if data.get("claimed.label") else ""
        return f"{data.get('party', '')}:{count}{label}".strip(": ")
    if name == "missing":
        return str(data.get("person", ""))
    if name == "status":
        return str(data.get("status", ""))
    if name == "verification":
        item = str(data.get("item", ""))[:SHORT_ID]
        return f"Verification of {item}: {data.get('status', '')}".rstrip(": ")
    return ""


def columns(kind: RecordType, data: dict[str, Any]) -> dict[str, Any]:
    """The filterable summary columns of the records table."""
    date = data.get(kind.date_field) if kind.date_field else None
    coords = data.get(kind.coords_field) if kind.coords_field else None
    places = [str(data[f]) for f in kind.place_fields if data.get(f)]
    admin = data.get(kind.admin_field) if kind.admin_field else None
    return {
        "title": title(kind, data),
        "date_start": date["start"] if date else None,
        "date_end": date["end"] if date else None,
        "place": textnorm.fold(" | ".join(places)) if places else None,
        "admin_area": textnorm.fold(str(admin)) if admin else None,
        "lat": coords["lat"] if coords else None,
        "lon": coords["lon"] if coords else None,
        "status": data.get("status") if kind.name == "status" else None,
        "parent": data.get(kind.parent_field) if kind.parent_field else None,
    }


@dataclass(frozen=True)
class _Indexed:
    """Per record type, which fields feed filters and search: looked up by the fields a
    record has (a few) rather than by walking every field the type could have (dozens),
    since this runs for every record a rebuild or import writes."""

    terms: dict[str, tuple[str, bool]]  # path -> (vocabulary, holds a list)
    texts: frozenset[str]  # public text fields
    labels: dict[str, tuple[str, bool]]  # public vocabulary fields


_INDEXED: dict[str, _Indexed] = {}


def _indexed(kind: RecordType) -> _Indexed:
    found = _INDEXED.get(kind.name)
    if found is None:
        found = _INDEXED[kind.name] = _index(kind)
    return found


def _index(kind: RecordType) -> _Indexed:
    fields = kind.fields.values()
    terms = {
        f.path: (f.vocabulary, f.kind == schema.TERMS) for f in fields if f.vocabulary is not None
    }
    return _Indexed(
        terms=terms,
        texts=frozenset(
            f.path for f in fields if f.kind in (schema.TEXT, schema.LONGTEXT) and not f.private
        ),
        labels={p: v for p, v in terms.items() if not kind.fields[p].private},
    )


def term_rows(kind: RecordType, data: dict[str, Any]) -> list[tuple[str, str]]:
    """(vocabulary, term) pairs that filters look up."""
    index = _indexed(kind).terms
    out: list[tuple[str, str]] = []
    for path, value in data.items():
        spec = index.get(path)
        if spec is None or value is None:
            continue
        vocabulary, many = spec
        out.extend((vocabulary, term) for term in (value if many else [value]))
    return list(dict.fromkeys(out))  # two fields may share a term (check.date, check.content)


def search_terms(
    kind: RecordType, record_id: str, data: dict[str, Any], vocab: Vocabularies
) -> list[str]:
    """Folded words to index: every public text field, and both labels of every term.

    Private fields (contacts, interviewers) are left out, so that nobody finds a witness
    by searching for a phone number.
    """
    index = _indexed(kind)
    words = record_id.split("-") if ids.is_record_id(record_id) else textnorm.tokens(record_id)
    for path, value in data.items():
        if value is None:
            continue
        if path in index.texts:
            words.extend(textnorm.index_terms(str(value)))
            continue
        spec = index.labels.get(path)
        if spec is None:
            continue
        vocabulary, many = spec
        for term_id in value if many else [value]:
            term = vocab.term(vocabulary, term_id)
            if term is not None:
                words.extend(textnorm.index_terms(f"{term.ar} {term.en}"))
    return list(dict.fromkeys(words))
