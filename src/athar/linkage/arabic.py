"""Name text as lists hand it over: cleaned, split into words, and Arabic normalised.

Casualty lists are typed in a hurry, pasted between spreadsheets and messengers, and
carry invisible direction marks, stray control characters, diacritics on some names and
not others, and every hamza and alef form. Everything downstream (keys, parsing,
comparison) starts from the words this module returns, so no later step has to guard
against bad input again. The Arabic folding itself is `athar.records.textnorm.fold`, the
same one search uses, so a name that search finds is a name linkage compares.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any, Literal

from athar.records.textnorm import fold

Script = Literal["ar", "latin", "mixed", "other", "empty"]

MAX_CHARS = 300  # the longest real full name with titles and a mother's name is ~120
MAX_TOKENS = 24

# Apostrophes and hamza/ain signs inside Latin spellings (Sa'd, Ma’moun, Saʿid) are
# dropped, not turned into spaces: they are part of the word.
_WORD_JOINERS = "'’‘`´ʼʻʿʾ′"
_KEEP_PUNCT = ",،()[]"  # the parser reads name order and nicknames from these


@cache
def load_data(name: str) -> Any:
    """A data file of this package, parsed once: name knowledge lives in data, not code."""
    return json.loads(files("athar.linkage.data").joinpath(name).read_text("utf-8"))


def _is_arabic(code: int) -> bool:
    return (
        0x0600 <= code <= 0x06FF
        or 0x0750 <= code <= 0x077F
        or 0x08A0 <= code <= 0x08FF
        or 0xFB50 <= code <= 0xFDFF
        or 0xFE70 <= code <= 0xFEFF
    )


def _is_latin(code: int) -> bool:
    return code < 0x0250 or 0x1E00 <= code <= 0x1EFF


def _separator_table() -> dict[int, str | None]:
    """One translate table for the whole Basic Multilingual Plane: punctuation, symbols
    and spaces become spaces, apostrophes vanish. Computed once; str.translate then does
    the work in C, which matters at millions of names."""
    table: dict[int, str | None] = {}
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        if ch in _WORD_JOINERS:
            table[code] = None
        elif ch in _KEEP_PUNCT or ch in "-_":
            table[code] = f" {ch} " if ch in _KEEP_PUNCT else " "
        elif unicodedata.category(ch)[0] in "PSZ":
            table[code] = " "
    return table


_SEPARATORS = _separator_table()


def clean(text: object) -> str:
    """Text that is safe to parse: no control or direction characters, bounded length.

    Direction marks (U+200E/F, U+202A-E, U+2066-9, U+061C) and zero-width joiners are
    removed inside words (they are invisible and split nothing); other controls, tabs and
    line breaks become spaces. Presentation forms (ﷲ, lam-alef ligatures) and
    compatibility characters are unfolded by NFKC. Over-long input is cut, not refused:
    one bad cell must not stop a list of a million names.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[: MAX_CHARS * 2]
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if not text.isprintable():
        text = "".join(_printable(ch) for ch in text)
    return text[:MAX_CHARS].strip()


def _printable(ch: str) -> str:
    if ch.isprintable():
        return ch
    category = unicodedata.category(ch)
    if category in ("Cc", "Zs", "Zl", "Zp"):
        return " "
    return ""  # Cf (direction marks, joiners), Co, Cs, Cn


def script_of(code: int) -> Literal["ar", "latin", "other"]:
    if _is_arabic(code):
        return "ar"
    if _is_latin(code):
        return "latin"
    return "other"


def token_script(token: str) -> Literal["ar", "latin", "other"]:
    """The script of a word, from its first letter (digits and marks say nothing)."""
    for ch in token:
        if ch.isalpha():
            return script_of(ord(ch))
    return "latin" if token.isascii() else "other"


_ARABIC_LETTER = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_OTHER_LETTER = re.compile(
    "[^\\W\\d_\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
    "A-Za-z\u00c0-\u024f\u1e00-\u1eff]"
)


def text_script(tokens: list[str]) -> Script:
    """Which scripts the letters of a name are in: ar, latin, mixed, other or empty."""
    text = "".join(tokens)
    if not any(ch.isalpha() for ch in text):
        return "empty"
    if text.isascii():
        return "latin" if _LATIN_LETTER.search(text) else "empty"
    found = [
        name
        for name, pattern in (
            ("ar", _ARABIC_LETTER),
            ("latin", _LATIN_LETTER),
            ("other", _OTHER_LETTER),
        )
        if pattern.search(text)
    ]
    if not found:
        return "empty"
    return found[0] if len(found) == 1 else "mixed"  # type: ignore[return-value]


def _split_scripts(token: str) -> list[str]:
    """'محمدHamwi' → ['محمد', 'Hamwi']: a word typed across a keyboard switch is two."""
    parts: list[str] = []
    current = ""
    current_script = ""
    for ch in token:
        script = script_of(ord(ch)) if ch.isalpha() else ""
        if script and current_script and script != current_script:
            parts.append(current)
            current = ""
        if script:
            current_script = script
        current += ch
    if current:
        parts.append(current)
    return parts


_MIXED = re.compile("[A-Za-z\u00c0-\u024f].*[\u0600-\u06ff]|[\u0600-\u06ff].*[A-Za-z\u00c0-\u024f]")


@lru_cache(maxsize=1 << 16)
def _words(text: str) -> tuple[str, ...]:
    text = text.translate(_SEPARATORS)
    if text.isascii() or not _MIXED.search(text):
        return tuple(text.split()[: MAX_TOKENS * 2])
    out: list[str] = []
    for token in text.split():
        out.extend(_split_scripts(token) if _MIXED.search(token) else (token,))
    return tuple(out[: MAX_TOKENS * 2])


def words(text: str, *, keep_punct: bool = False) -> list[str]:
    """The words of a cleaned text, in their written form (diacritics kept for display).

    With keep_punct, commas and brackets come back as their own tokens for the parser.
    """
    found = _words(text)
    if keep_punct:
        return list(found)
    return [w for w in found if w not in _KEEP_PUNCT]


@lru_cache(maxsize=1 << 17)
def fold_word(word: str) -> str:
    """One word in comparable form: `textnorm.fold` plus removal of the marks fold keeps.

    fold leaves Latin combining marks that NFKC recomposed or casefold produced; they
    carry no information for names, and removing them keeps normalisation idempotent.
    """
    folded = fold(word)
    if folded.isascii():
        return folded
    folded = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in folded if not unicodedata.combining(ch) and ch.isalnum())


@cache
def _compounds() -> tuple[frozenset[str], frozenset[str]]:
    data = load_data("name_parts.json")
    prefixes = {fold_word(w) for w in data["compound_prefixes"]["ar"]}
    prefixes |= {fold_word(w) for w, _sex in data["kunya_markers"]["ar"].items() if _sex == "m"}
    suffixes = {fold_word(w) for w in data["compound_suffixes"]["ar"]}
    return frozenset(prefixes), frozenset(suffixes)


def join_compounds(tokens: list[str]) -> list[str]:
    """Join the halves of compound names: عبد الرحمن → عبدالرحمن, نور الدين → نورالدين,
    أبو بكر → ابوبكر.

    Lists write these with and without the space; written as one word they always
    compare equal. Works on folded words. A prefix joined to another prefix stays open
    (أبو عبد الله → ابوعبدالله), so the result is the same however often it is applied.
    """
    prefixes, suffixes = _compounds()
    out: list[str] = []
    open_prefix = False
    for token in tokens:
        arabic = bool(token) and _is_arabic(ord(token[0]))
        if out and arabic and (open_prefix or (token in suffixes and _is_arabic(ord(out[-1][-1])))):
            out[-1] += token
            open_prefix = open_prefix and token in prefixes
        else:
            out.append(token)
            open_prefix = token in prefixes
    return out


@lru_cache(maxsize=1 << 18)
def normalise_ar(text: str) -> str:
    """The comparable form of a name in Arabic script (Latin words are folded too).

    Choices, all shared with search (`textnorm.fold`): diacritics, shadda, dagger alef
    and tatweel removed; أ إ آ ٱ → ا; ى → ي and ة → ه (lists use them interchangeably);
    ؤ → و and ئ → ي (the hamza carrier is what people type without hamza); a standalone
    ء is kept (علاء and علا are different names); Persian ک ی → ك ي; Arabic-Indic and
    Persian digits → 0-9. Then punctuation goes, spaces collapse and compound names are
    written as one word. Idempotent: normalising twice changes nothing.
    """
    tokens = [fold_word(w) for w in words(clean(text))]
    return " ".join(join_compounds([t for t in tokens if t]))
