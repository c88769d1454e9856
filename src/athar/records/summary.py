"""What a record shows in lists and what search indexes: derived from its field values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from athar.records import ids, schema, textnorm
from athar.records.schema import RecordType
from athar.records.vocab import Vocabularies
from athar.vault.items import SHORT_ID

_NAME_ORDER = ("given", "father", "grandfather", "family")


_NAME_KEYS: dict[str, tuple[str, tuple[str, ...], str]] = {}


def _name_keys(script: str) -> tuple[str, tuple[str, ...], str]:
    keys = _NAME_KEYS.get(script)
    if keys is None:
        keys = _NAME_KEYS[script] = (
            f"{script}.full",
            tuple(f"{script}.{p}" for p in _NAME_ORDER),
            f"{script}.kunya",
        )
    return keys


def person_name(data: dict[str, Any], script: str) -> str:
    full_key, part_keys, kunya_key = _name_keys(script)
    full = data.get(full_key)
    if full:
        return str(full)
    parts = [str(data[k]) for k in part_keys if data.get(k)]
    kunya = data.get(kunya_key)
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
    return dict(zip(COLUMNS, column_values(kind, data), strict=True))


COLUMNS = (
    "title",
    "date_start",
    "date_end",
    "place",
    "admin_area",
    "lat",
    "lon",
    "status",
    "parent",
)


def column_values(kind: RecordType, data: dict[str, Any]) -> tuple[Any, ...]:
    """The values of COLUMNS, in that order: what a rebuild writes for every record."""
    date = data.get(kind.date_field) if kind.date_field else None
    coords = data.get(kind.coords_field) if kind.coords_field else None
    places = [str(data[f]) for f in kind.place_fields if data.get(f)]
    admin = data.get(kind.admin_field) if kind.admin_field else None
    return (
        title(kind, data),
        date["start"] if date else None,
        date["end"] if date else None,
        _fold(" | ".join(places)) if places else None,
        _fold(str(admin)) if admin else None,
        coords["lat"] if coords else None,
        coords["lon"] if coords else None,
        data.get("status") if kind.name == "status" else None,
        data.get(kind.parent_field) if kind.parent_field else None,
    )


# Names and places repeat endlessly in casualty lists (a rebuild derives the same few
# thousand values a million times): their folded forms and words are kept, keyed on the
# raw text. Emptied when full, so a vault of unique texts costs memory only up to this.
_CACHE_MAX = 1 << 17
_SHORT = 64  # longer texts (descriptions, testimonies) are rarely repeated: not cached
_FOLDED: dict[str, str] = {}
_TEXT_WORDS: dict[str, tuple[str, ...]] = {}
_LABEL_WORDS: dict[tuple[str, str], tuple[str, ...]] = {}


def _fold(text: str) -> str:
    folded = _FOLDED.get(text)
    if folded is None:
        folded = textnorm.fold(text)
        if len(text) <= _SHORT:
            if len(_FOLDED) >= _CACHE_MAX:
                _FOLDED.clear()
            _FOLDED[text] = folded
    return folded


def _text_words(text: str) -> tuple[str, ...] | list[str]:
    words = _TEXT_WORDS.get(text)
    if words is None:
        if len(text) > _SHORT:
            return textnorm.index_terms(text)
        if len(_TEXT_WORDS) >= _CACHE_MAX:
            _TEXT_WORDS.clear()
        words = _TEXT_WORDS[text] = tuple(textnorm.index_terms(text))
    return words


def _label_words(ar: str, en: str) -> tuple[str, ...]:
    words = _LABEL_WORDS.get((ar, en))
    if words is None:
        if len(_LABEL_WORDS) >= _CACHE_MAX:
            _LABEL_WORDS.clear()
        words = _LABEL_WORDS[ar, en] = tuple(textnorm.index_terms(f"{ar} {en}"))
    return words


@dataclass(frozen=True)
class _Indexed:
    """Per record type, which fields feed filters and search: looked up by the fields a
    record has (a few) rather than by walking every field the type could have (dozens),
    since this runs for every record a rebuild or import writes."""

    terms: dict[str, tuple[str, bool]]  # path -> (vocabulary, holds a list)
    texts: frozenset[str]  # public text fields
    labels: dict[str, tuple[str, bool]]  # public vocabulary fields
    # all three in one lookup: path -> (vocabulary or None, holds a list, words from it:
    # _TEXT, _LABEL or neither)
    actions: dict[str, tuple[str | None, bool, int]]


_NO_WORDS, _TEXT, _LABEL = 0, 1, 2


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
    texts = frozenset(
        f.path for f in fields if f.kind in (schema.TEXT, schema.LONGTEXT) and not f.private
    )
    labels = {p: v for p, v in terms.items() if not kind.fields[p].private}
    actions: dict[str, tuple[str | None, bool, int]] = {}
    for path in (*terms, *texts):
        vocabulary, many = terms.get(path, (None, False))
        words = _TEXT if path in texts else _LABEL if path in labels else _NO_WORDS
        actions[path] = (vocabulary, many, words)
    return _Indexed(terms=terms, texts=texts, labels=labels, actions=actions)


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


def index_rows(
    kind: RecordType, record_id: str, data: dict[str, Any], vocab: Vocabularies
) -> tuple[list[tuple[str, str]], list[str]]:
    """term_rows and search_terms of one record in one pass over its fields (the same
    lists, in the same order): a rebuild computes both for every record."""
    actions = _indexed(kind).actions
    words = record_id.split("-") if ids.is_record_id(record_id) else textnorm.tokens(record_id)
    pairs: list[tuple[str, str]] = []
    cached = _TEXT_WORDS.get
    for path, value in data.items():
        action = actions.get(path)
        if action is None or value is None:
            continue
        vocabulary, many, source = action
        if vocabulary is not None:
            if many:
                pairs.extend([(vocabulary, term) for term in value])
            else:
                pairs.append((vocabulary, value))
        if source == _TEXT:
            text = value if type(value) is str else str(value)
            words.extend(cached(text) or _text_words(text))
        elif source == _LABEL:
            for term_id in value if many else (value,):
                term = vocab.term(vocabulary, term_id)  # type: ignore[arg-type]
                if term is not None:
                    words.extend(_label_words(term.ar, term.en))
    return list(dict.fromkeys(pairs)), list(dict.fromkeys(words))
