"""Record values as a reader sees them: term labels in the user's language, dates with
month names, counts in the user's digits."""

from __future__ import annotations

from typing import Any

from athar.records import schema
from athar.records.formats import value_text
from athar.records.vocab import Vocabularies
from athar.web.locale import Speaker


def shown(spec: schema.Field, value: Any, vocab: Vocabularies, speaker: Speaker) -> str:
    if value is None:
        return ""
    if spec.kind == schema.TERM and spec.vocabulary:
        return vocab.label(spec.vocabulary, str(value), speaker.lang)
    if spec.kind == schema.TERMS and spec.vocabulary:
        return (
            "، ".join(vocab.label(spec.vocabulary, str(v), speaker.lang) for v in value)
            if speaker.lang == "ar"
            else ", ".join(vocab.label(spec.vocabulary, str(v), speaker.lang) for v in value)
        )
    if spec.kind == schema.DATE:
        return speaker.date_value(value)
    if spec.kind == schema.BOOL:
        return speaker.t("yes") if value else speaker.t("no")
    return (
        speaker.num(value_text(spec, value))
        if spec.kind in (schema.RANGE, schema.AGE, schema.YEAR, schema.COUNT)
        else value_text(spec, value)
    )


def rows(
    kind: schema.RecordType, data: dict[str, Any], vocab: Vocabularies, speaker: Speaker
) -> list[tuple[str, str, str, bool]]:
    """(path, label, text, private) for every field that has a value, in schema order."""
    return [
        (
            path,
            speaker.t(spec.label) if spec.label else path,
            shown(spec, data[path], vocab, speaker),
            spec.private,
        )
        for path, spec in kind.fields.items()
        if data.get(path) is not None
    ]
