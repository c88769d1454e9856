"""Properties of name handling that must hold for any input a list can contain."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from athar.linkage.arabic import clean, fold_word, words
from athar.linkage.nameparse import NameParts, _special_words, lexicon
from athar.linkage.names import (
    latin_key,
    name_features,
    normalise_ar,
    parse_name,
    similarity,
    transliterate,
)

# Arbitrary text, lone surrogates and unassigned code points included.
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=80)

ARABIC_WORDS = [
    "محمد", "أحمد", "علي", "الحلبي", "عبد", "الله", "الرحمن", "أبو", "خالد", "أم",
    "بن", "بنت", "الشهيد", "فاطمة", "نور", "الدين", "ال", "حموي", "إبراهيم", "والدته",
    "مصطفى", "عائشة", "الملقب", "زينب", "آل", "بني",
]  # fmt: skip
LATIN_WORDS = [
    "Mohammad", "Ahmad", "Ali", "al", "Halabi", "Abdul", "Rahman", "Abu", "Khaled",
    "Umm", "bin", "bint", "Dr.", "Fatima", "Nour", "Eddine", "el", "HAMWI", "Ibrahim",
    "mother", "aka", "Sheikh", "ash", "Shami",
]  # fmt: skip
MARKS = ["(", ")", ",", "،", "-", "\u200f", "\u202b", "\u2066", "\u0640", "\u064e", "\t", "7", "١"]
NAMEISH = st.lists(
    st.sampled_from(ARABIC_WORDS + LATIN_WORDS + MARKS) | st.text(max_size=6),
    max_size=10,
).map(" ".join)

FAST = settings(
    max_examples=int(__import__("os").environ.get("HYP_N", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(ANY_TEXT | NAMEISH)
def test_normalise_ar_is_idempotent(text: str) -> None:
    once = normalise_ar(text)
    assert normalise_ar(once) == once


@FAST
@given(ANY_TEXT | NAMEISH, ANY_TEXT | NAMEISH)
def test_nothing_raises_on_any_text(a: str, b: str) -> None:
    parts = parse_name(a)
    assert isinstance(parts, NameParts)
    name_features(parts)
    transliterate(a)
    latin_key(a)
    match = similarity(a, b)
    assert match.verdict in ("match", "possible", "non_match")


@FAST
@given(NAMEISH)
def test_keys_are_lower_case_ascii_for_arabic_and_latin(text: str) -> None:
    key = transliterate(text)
    for word in key.split():
        assert word == word.lower() or not word.isascii()


def _informative(text: str) -> set[str]:
    special = _special_words() | set(lexicon().honorifics)
    return {
        fold_word(w)
        for w in words(clean(text))
        if any(c.isalpha() for c in w) and fold_word(w) and fold_word(w) not in special
    }


def _kept(parts: NameParts) -> set[str]:
    texts = [
        parts.given,
        parts.family,
        parts.kunya,
        parts.mother,
        *parts.nasab,
        *parts.titles,
        *parts.extra,
    ]
    return {fold_word(w) for t in texts if t for w in words(t)}


@FAST
@given(NAMEISH)
def test_parse_keeps_every_informative_word(text: str) -> None:
    missing = _informative(text) - _kept(parse_name(text))
    assert not missing, (text, missing)


@FAST
@given(NAMEISH)
def test_a_name_matches_itself(text: str) -> None:
    parts = parse_name(text)
    if parts.given and parts.family:
        assert similarity(text, text).is_match
