"""Bilingual text of published pages (site, custody report) and pseudonyms.

Published material is read in Arabic and English side by side regardless of the
documenter's own interface language, so its wording lives in one data file with both
languages for every entry, rather than in the interface's message catalogs."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGS = ("ar", "en")


@cache
def labels() -> dict[str, dict[str, str]]:
    text = (resources.files("athar.publish") / "data" / "labels.json").read_text("utf-8")
    data: dict[str, dict[str, str]] = json.loads(text)
    return data


def label(key: str, lang: str, **params: object) -> str:
    entry = labels()[key]
    return entry.get(lang, entry["en"]).format(**params)
