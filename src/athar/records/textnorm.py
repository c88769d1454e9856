"""Text normalisation for search: one function, used when indexing and when querying.

Arabic is written with optional diacritics, several alef and hamza forms, ة/ه and ى/ي
used interchangeably, and tatweel for justification; Latin transliterations carry
accents and case. A search must find a name however it was typed, so both the index and
the query are reduced to the same plain form. pyarabic does the Arabic-specific steps;
the few it lacks (hamza on waw/ya, Persian letter forms, Arabic-Indic digits) are added
to the same translation table, so folding is a single pass over the text.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pyarabic import araby


def _folding_table() -> dict[int, str | None]:
    """One translation table for every character-level step, so folding is one pass.

    The Arabic classes come from pyarabic; Latin letters with accents map to their base
    letters via their Unicode decomposition, computed here once.
    """
    table: dict[int, str | None] = {}
    for block in ((0x00C0, 0x0250), (0x1E00, 0x1F00)):
        for code in range(*block):
            base = "".join(
                c for c in unicodedata.normalize("NFKD", chr(code)) if not unicodedata.combining(c)
            )
            if base and base != chr(code):
                table[code] = base
    for mark in (*araby.TASHKEEL, araby.TATWEEL, *map(chr, range(0x0653, 0x0660)), "\u0670"):
        table[ord(mark)] = None  # harakat, shadda, sukun, tatweel, small marks
    for alef in araby.ALEFAT:
        if alef not in (araby.ALEF_MAKSURA, "\u0670"):
            table[ord(alef)] = araby.ALEF  # أ إ آ ٱ → ا
    table[ord(araby.ALEF_MAKSURA)] = "ي"
    table[ord(araby.TEH_MARBUTA)] = "ه"
    table.update(
        {
            ord("ؤ"): "و",  # hamza on its carrier: ؤ → و, ئ → ي
            ord("ئ"): "ي",
            ord("ک"): "ك",  # Persian / Urdu letter forms seen in pasted text
            ord("ی"): "ي",
            ord("ە"): "ه",
            **{0x0660 + d: str(d) for d in range(10)},  # Arabic-Indic digits
            **{0x06F0 + d: str(d) for d in range(10)},  # Eastern Arabic-Indic digits
        }
    )
    return table


def _separators() -> dict[int, str]:
    """Punctuation, symbols and spaces in the scripts we index become plain spaces, so
    tokenising is str.split (several times faster than a regular expression)."""
    blocks = ((0x0000, 0x0250), (0x0600, 0x0700), (0x2000, 0x2070), (0x3000, 0x3040))
    return {
        code: " "
        for start, stop in blocks
        for code in range(start, stop)
        if unicodedata.category(chr(code))[0] in "PSZC"
    }


_TABLE = _folding_table()
_TOKEN_TABLE = {**_TABLE, **_separators()}
_NON_ALNUM = re.compile(r"[\W_]+")
_PRESENTATION_FORMS = re.compile("[\ufb50-\ufdff\ufe70-\ufeff]")
_ARTICLE = "ال"
# Latin articles and particles that lists add or drop at will (al-Halabi / Halabi).
_LATIN_PARTICLES = frozenset({"al", "el"})


def fold(text: str) -> str:
    """The comparable form of *text*: no diacritics, one alef, one ya, lower case."""
    if _PRESENTATION_FORMS.search(text):
        text = unicodedata.normalize("NFKC", text)  # ﷲ, ligatures → plain letters
    return text.translate(_TABLE).casefold()


def tokens(text: str) -> list[str]:
    if _PRESENTATION_FORMS.search(text):
        text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for token in text.translate(_TOKEN_TABLE).casefold().split():
        if token.isalnum():
            out.append(token)
        else:  # a symbol from a block the table does not cover: split there too
            out.extend(part for part in _NON_ALNUM.split(token) if part)
    return out


@lru_cache(maxsize=1 << 16)
def _index_terms_cached(text: str) -> tuple[str, ...]:
    return tuple(_index_terms(text))


def index_terms(text: str) -> list[str]:
    """Tokens to index, plus each Arabic word without its article (الحلبي → also حلبي).

    Names and places repeat endlessly in casualty lists, so short texts are cached."""
    if len(text) <= 64:
        return list(_index_terms_cached(text))
    return _index_terms(text)


def _index_terms(text: str) -> list[str]:
    out: list[str] = []
    for token in tokens(text):
        out.append(token)
        if token.startswith(_ARTICLE) and len(token) > 4:
            out.append(token[2:])
    return out


def query_terms(text: str) -> list[str]:
    """Tokens a query must match: articles dropped, since the index also holds them bare."""
    terms = [
        token[2:] if token.startswith(_ARTICLE) and len(token) > 4 else token
        for token in tokens(text)
    ]
    meaningful = [t for t in terms if t not in _LATIN_PARTICLES]
    return meaningful or terms
