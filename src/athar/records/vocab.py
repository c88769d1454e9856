"""Controlled vocabularies: bilingual defaults shipped as data files, extended by events.

A term is typed by its id (airstrike) or by its label in either language (قصف جوي,
Airstrike): labels are compared in folded form, so hamza or case differences do not
matter. An organisation's own terms arrive as `vocab.term_added` events and sit beside
the defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from athar.records.textnorm import fold
from athar.records.values import bad_value

DATA_PACKAGE = "athar.records"


@dataclass(frozen=True)
class Term:
    vocabulary: str
    id: str
    ar: str
    en: str
    builtin: bool = True

    def label(self, lang: str) -> str:
        return self.ar if lang == "ar" else self.en

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ar": self.ar, "en": self.en, "builtin": self.builtin}


@cache
def builtin_vocabularies() -> dict[str, dict[str, Term]]:
    out: dict[str, dict[str, Term]] = {}
    folder = resources.files(DATA_PACKAGE).joinpath("data")
    for entry in folder.iterdir():
        if not entry.name.endswith(".json"):
            continue
        doc = json.loads(entry.read_text(encoding="utf-8"))
        name = doc["vocabulary"]
        out[name] = {t["id"]: Term(name, t["id"], t["ar"], t["en"]) for t in doc["terms"]}
    return out


class Vocabularies:
    """The defaults plus an organisation's added terms."""

    def __init__(self, extra: list[Term] | None = None) -> None:
        self.terms: dict[str, dict[str, Term]] = {
            name: dict(terms) for name, terms in builtin_vocabularies().items()
        }
        self._by_label: dict[str, dict[str, str]] = {}
        for term in extra or []:
            self.add(term)

    def add(self, term: Term) -> None:
        self.terms.setdefault(term.vocabulary, {})[term.id] = term
        self._by_label.pop(term.vocabulary, None)

    def names(self) -> list[str]:
        return sorted(self.terms)

    def _labels(self, vocabulary: str) -> dict[str, str]:
        index = self._by_label.get(vocabulary)
        if index is None:
            index = {}
            for term in self.terms.get(vocabulary, {}).values():
                for key in (term.id, term.ar, term.en):
                    index.setdefault(fold(key), term.id)
            self._by_label[vocabulary] = index
        return index

    def resolve(self, vocabulary: str, raw: str) -> str:
        """The term id for an id or a label; Problem if the vocabulary has no such term."""
        if vocabulary not in self.terms:
            raise bad_value("unknown vocabulary {name}", name=vocabulary)
        text = raw.strip()
        if text in self.terms[vocabulary]:
            return text
        found = self._labels(vocabulary).get(fold(text))
        if found is None:
            raise bad_value(
                "{value} is not a term of the {vocabulary} vocabulary "
                "(see athar vocab {vocabulary})",
                value=text[:60],
                vocabulary=vocabulary,
            )
        return found

    def term(self, vocabulary: str, term_id: str) -> Term | None:
        return self.terms.get(vocabulary, {}).get(term_id)

    def label(self, vocabulary: str, term_id: str, lang: str) -> str:
        term = self.term(vocabulary, term_id)
        return term.label(lang) if term else term_id
