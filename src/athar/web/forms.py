"""Record forms built from the record schema, so every field the CLI knows has a form
control, and form input goes through exactly the same parsing and validation as the
command line's (athar.records.validate): the server checks everything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from athar.errors import InputError
from athar.records import schema
from athar.records.formats import value_text
from athar.records.vocab import Vocabularies
from athar.web.locale import Speaker

# The pages for each type, in menu order; status and testimony are reached from a
# person or source.
PAGE_TYPES = ("incident", "person", "source", "claim", "missing", "status", "testimony")
MAX_FIELD = 20_000


@dataclass(frozen=True)
class Control:
    path: str
    label: str
    kind: str  # text | textarea | select | multi | checkbox | date | number
    value: str
    options: list[tuple[str, str]]
    hint: str
    error: str | None
    private: bool


_HINTS = {
    schema.DATE: "2017-03-14, 2017-03, 2017 or 2017-03-01/2017-03-20",
    schema.RANGE: "3 or 3-5",
    schema.COORDS: "33.5711,36.4022,500",
    schema.REF: "inc-…",
}


def controls(
    kind: schema.RecordType,
    vocab: Vocabularies,
    speaker: Speaker,
    values: Mapping[str, str],
    errors: Mapping[str, str],
) -> list[Control]:
    out = []
    for spec in kind.fields.values():
        options: list[tuple[str, str]] = []
        widget = "text"
        if spec.kind == schema.LONGTEXT:
            widget = "textarea"
        elif spec.kind in (schema.TERM, schema.TERMS) and spec.vocabulary:
            widget = "select" if spec.kind == schema.TERM else "multi"
            options = [
                (term_id, term.label(speaker.lang))
                for term_id, term in vocab.terms[spec.vocabulary].items()
            ]
        elif spec.kind == schema.BOOL:
            widget = "checkbox"
        out.append(
            Control(
                path=spec.path,
                label=speaker.t(spec.label) if spec.label else spec.path,
                kind=widget,
                value=values.get(spec.path, ""),
                options=options,
                hint=_HINTS.get(spec.kind, ""),
                error=errors.get(spec.path),
                private=spec.private,
            )
        )
    return out


def current_values(kind: schema.RecordType, data: Mapping[str, Any]) -> dict[str, str]:
    """A record's values as the text a form shows (and reads back to the same value)."""
    return {
        path: value_text(spec, data[path])
        for path, spec in kind.fields.items()
        if data.get(path) is not None
    }


def read_form(kind: schema.RecordType, form: Mapping[str, list[str]]) -> dict[str, str]:
    """The submitted fields of *kind* as text (multi-selects joined by commas)."""
    out: dict[str, str] = {}
    for spec in kind.fields.values():
        got = form.get(spec.path)
        if spec.kind == schema.BOOL:
            out[spec.path] = "yes" if got and got[-1] in ("yes", "on", "true") else ""
            continue
        if not got:
            continue
        text = (
            ",".join(v.strip() for v in got if v.strip()) if spec.kind == schema.TERMS else got[-1]
        )
        if len(text) > MAX_FIELD:
            raise InputError("at most {n} characters", n=MAX_FIELD).at(spec.path)
        out[spec.path] = text
    return out


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str]:
    """Only the fields the user changed: an untouched field is not re-signed, and an
    emptied one is cleared."""
    paths = set(before) | set(after)
    return {p: after.get(p, "") for p in paths if before.get(p, "") != after.get(p, "")}
