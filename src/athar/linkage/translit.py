"""One comparison key for a name in either script: محمد, Mohammad and Muhammad meet.

A standard transliteration does not help here: it renders unvowelled محمد as its
consonants with diacritics ("mḥmd"), while lists spell it Mohammad, Mohamed or Mhd, and
it cannot read a Latin spelling back. What is needed is a
deliberately lossy code in which the Arabic spelling and the usual Latin spellings of a
name fall on the same or nearby strings, so that Jaro-Winkler over keys is meaningful
across scripts. The letter values and Latin rules are data (`data/translit.json`); this
module applies them by position, joins compound names (Abdul Rahman, Noureddine) and
drops the article of family names (al-, el-, ال, ash-Sh…).

The key is a comparison code, never something to show a person.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from athar.linkage.arabic import clean, fold_word, load_data, token_script, words

_VOWELS = "aiu"


@cache
def _arabic_tables() -> tuple[dict[str, str], dict[str, str], dict[str, str], str, str]:
    data = load_data("translit.json")["arabic"]
    return (
        data["letters"],
        data["initial"],
        data["final"],
        data["final_h_after"],
        data["drop_final"],
    )


@cache
def _latin_rules() -> tuple[dict[str, str], tuple[tuple[re.Pattern[str], str], ...]]:
    data = load_data("translit.json")["latin"]
    rules = tuple((re.compile(p), r) for p, r in data["rules"])
    return data["arabizi"], rules


@cache
def _particles() -> tuple[frozenset[str], frozenset[str], tuple[str, ...], tuple[str, ...]]:
    """Articles (plain and assimilated), abd- prefixes and -din suffixes, folded."""
    data = load_data("name_parts.json")
    articles = frozenset(fold_word(w) for w in data["articles"]["ar"] + data["articles"]["latin"])
    assimilated = frozenset(data["articles"]["latin_hyphenated"])
    abd = tuple(sorted(data["compound_prefixes"]["latin"], key=len, reverse=True))
    din = tuple(
        sorted(
            (w.replace("-", "") for w in data["compound_suffixes"]["latin"]),
            key=len,
            reverse=True,
        )
    )
    return articles, assimilated, abd, din


def is_article(word: str, following: str | None) -> bool:
    """al / el / ال, or an assimilated Latin article (ash-Shami, ad-Din, ar-Rahman).

    The assimilated forms (ad, as, ar…) are only articles before a word that starts with
    their consonant, so that a name like "As" or "An" is never taken for one.
    """
    articles, assimilated, _abd, _din = _particles()
    if word in articles:
        return following is not None
    return (
        following is not None
        and word in assimilated
        and len(word) >= 2
        and following.startswith(word[1:])
    )


_DOUBLE_CONSONANT = re.compile(r"([b-df-hj-np-tv-z])\1+")
_DOUBLE_VOWEL = re.compile(r"([aiu])\1+")


def _squeeze_vowels(key: str) -> str:
    """ii, uu → i, u: a long vowel written twice (داوود, Iyyad) is still one vowel."""
    return _DOUBLE_VOWEL.sub(r"\1", key)


@lru_cache(maxsize=1 << 16)
def arabic_word_key(word: str) -> str:
    """Key of one Arabic word (already folded or not): letter values by position."""
    letters, initial, final, final_h_after, drop_final = _arabic_tables()
    word = "".join(ch for ch in word if ch in letters)
    while len(word) > 1 and word[-1] in drop_final:
        word = word[:-1]
    if not word:
        return ""
    out = [initial.get(word[0], letters[word[0]])]
    if len(word) > 1:
        out.extend(letters[ch] for ch in word[1:-1])
        last = word[-1]
        if last == "ه" and word[-2] in final_h_after:
            out.append("h")
        else:
            out.append(final.get(last, letters[last]))
    return _squeeze_vowels("".join(out))


@lru_cache(maxsize=1 << 16)
def latin_word_key(word: str) -> str:
    """Key of one Latin word: digraphs, vowel classes, then placeholders lower-cased."""
    arabizi, rules = _latin_rules()
    word = fold_word(word)
    if any(ch.isdigit() for ch in word) and any(ch.isalpha() for ch in word):
        word = "".join(arabizi.get(ch, ch) for ch in word)
    word = "".join(ch for ch in word if "a" <= ch <= "z")
    if not word:
        return ""
    # Latin doubles consonants at will (Hassan/Hasan); Arabic never writes shadda. Only
    # written doubles merge: letters that meet once a vowel is dropped (Bilal → bll)
    # stay two, as they do in Arabic (بلال).
    word = _DOUBLE_CONSONANT.sub(r"\1", word)
    for pattern, replacement in rules:
        word = pattern.sub(replacement, word)
    return _squeeze_vowels(word.lower())


def _latin_compound(word: str) -> str:
    """Abdulrahman → abd + rahman; Noureddine → nour + din; Nasrallah → nasr + la."""
    _articles, _assimilated, abd_forms, din_forms = _particles()
    for prefix in abd_forms:
        if word == prefix:
            return "abd"
        rest = word[len(prefix) :]
        if word.startswith(prefix) and len(rest) >= 2 and rest.strip("aeiouy"):
            return "abd" + _suffix_words().get(rest, latin_word_key(rest))
    for suffix in din_forms:
        head = word[: -len(suffix)]
        if word.endswith(suffix) and len(head) >= 3 and len(suffix) >= 4 and suffix != "deen":
            return latin_word_key(head) + _suffix_key(suffix)
    return latin_word_key(word)


def _suffix_key(suffix: str) -> str:
    return "la" if "la" in suffix else "din"


def _strip_article_ar(word: str, protected: frozenset[str], *, short: bool = False) -> str:
    """الحلبي → حلبي; after عبد even a short word loses it (عبد الله → له)."""
    minimum = 4 if short else 5
    if word.startswith("ال") and len(word) >= minimum and word not in protected:
        return word[2:]
    return word


def _strip_article_latin(word: str, protected: frozenset[str]) -> str:
    """Alhalabi → halabi, Alahmad → ahmad (the rest is a known name), but Alaa, Ali,
    Alawi and known names stay."""
    rest = word[2:]
    if (
        word.startswith(("al", "el"))
        and len(rest) >= 4
        and (rest[0] not in "aeiouy" or _consonant_y(rest) or rest in _latin_given())
        and word not in protected
    ):
        return rest
    return word


def _consonant_y(rest: str) -> bool:
    """Alyameny, Alyassini: y before a vowel is the consonant ي, not a vowel."""
    return rest[0] == "y" and rest[1] in "aeiou"


@cache
def _latin_given() -> frozenset[str]:
    """Latin spellings of the variant table's names, folded: after a joined article
    (Alahmad, Elomar, Alabdulwahab) a vowel does not mean the word is a name of its own."""
    out: set[str] = set()
    for entry in load_data("given_names.json")["names"]:
        for spelling in entry["latin"]:
            out.add("".join(fold_word(w) for w in words(clean(spelling))))
    return frozenset(out)


@cache
def _protected() -> frozenset[str]:
    """Given names that begin like an article (الياس, إلهام, Elias, Alaa): never stripped."""
    out: set[str] = set()
    for entry in load_data("given_names.json")["names"]:
        for spelling in entry["ar"] + entry["latin"]:
            folded = "".join(fold_word(w) for w in words(clean(spelling)))
            if folded.startswith(("ال", "al", "el")):
                out.add(folded)
    return frozenset(out)


@cache
def _suffix_words() -> dict[str, str]:
    """Second halves written as their own word (الدين, ad-Din, Eddine, الله, Allah)."""
    _articles, _assimilated, _abd, din_forms = _particles()
    out = {w: _suffix_key(w) for w in din_forms}
    out.update({"الدين": "din", "الله": "la"})
    return out


@cache
def _alef_forms() -> dict[int, str]:
    return {ord(a): "ا" for a in "أإآٱ"}


@lru_cache(maxsize=1 << 16)
def _key_fold(word: str) -> str:
    """Fold a word for keying. Unlike `normalise_ar`, ى and ة stay themselves: they tell
    a final a (مصطفى, فاطمة) from a final i or h (علي, وجيه), which Latin spellings
    write. Only the alef forms merge, so prefixes (أبو/ابو) are recognised."""
    if token_script(word) != "ar":
        return fold_word(word)
    letters = _arabic_tables()[0]
    return "".join(ch for ch in word if ch in letters).translate(_alef_forms())


def key_words(tokens: list[str]) -> list[str]:
    """Keys of a name's words, in order: compounds joined, articles dropped."""
    folded = [f for f in (_key_fold(t) for t in tokens) if f]
    protected = _protected()
    suffixes = _suffix_words()
    out: list[str] = []
    glue = False  # the previous word was abd- or abu-: this one belongs to it
    for i, word in enumerate(folded):
        following = folded[i + 1] if i + 1 < len(folded) else None
        if is_article(word, following):
            continue
        if glue and out:
            out[-1] += _word_key(word, protected, after_abd=out[-1].endswith("abd"))
            glue = out[-1].endswith(("abd", "abu"))
            continue
        if word in suffixes and out:
            out[-1] += suffixes[word]
            continue
        key = _word_key(word, protected)
        if key:
            out.append(key)
        glue = key in ("abd", "abu")
    return out


def _word_key(word: str, protected: frozenset[str], *, after_abd: bool = False) -> str:
    if token_script(word) == "ar":
        return _arabic_compound(_strip_article_ar(word, protected, short=after_abd), protected)
    if word.isascii():
        if after_abd:
            word = word[2:] if word.startswith(("al", "el")) and len(word) >= 4 else word
            return _suffix_words().get(word, latin_word_key(word))
        return _latin_compound(_strip_article_latin(word, protected))
    return word  # a third script: the folded word still matches its own copies


def _arabic_compound(word: str, protected: frozenset[str]) -> str:
    """عبدالرحمن → abd + rhmn, ابوبكر → abu + bkr, نورالدين → nur + din."""
    for prefix, head in (("عبد", "abd"), ("ابو", "abu")):
        rest = word[len(prefix) :]
        if word.startswith(prefix) and len(rest) >= 2:
            return head + arabic_word_key(_strip_article_ar(rest, protected, short=True))
    for suffix, tail in (("الدين", "din"), ("الله", "la")):
        head = word[: -len(suffix)]
        if word.endswith(suffix) and len(head) >= 2:
            return arabic_word_key(head) + tail
    return arabic_word_key(word)


@lru_cache(maxsize=1 << 18)
def name_key(text: str) -> str:
    """The comparison key of a name in any script: words' keys joined by spaces."""
    return " ".join(key_words(words(clean(text))))


def transliterate(text: str) -> str:
    """Arabic script → the Latin comparison key (Latin words in the text are keyed too).

    محمد → "mhmd", عبد الرحمن → "abdrhmn", الحموي → "hmui". Lossy on purpose: short
    vowels, the article, hamza and ain disappear; ح/ه, ق/ك, ص/س, ض/د, ط/ت merge.
    """
    return name_key(text)


def latin_key(text: str) -> str:
    """A Latin spelling → the same key space as `transliterate`.

    Mohammad / Muhammad / Mhmd → "mhmd", Abdul Rahman → "abdrhmn", al-Hamwi → "hmui",
    Hussein / Husain → "hsin" (Hasan → "hsn"). Arabic words in the text are keyed too.
    """
    return name_key(text)


def skeleton(key: str) -> str:
    """The key's consonants (and its opening vowel), a doubled one written once: for
    blocking, where recall matters more than telling Hasan from Hussein. Arabic writes a
    doubled consonant once (shadda), so a letter typed twice (حللبي) is a slip of the
    keyboard or a Latin habit (Hassan), never a different name."""
    out = []
    for w in key.split():
        kept = w[:1]
        for c in w[1:]:
            if c not in _VOWELS and c != kept[-1]:
                kept += c
        out.append(kept)
    return " ".join(out)
