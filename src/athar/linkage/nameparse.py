"""A full name, as a list wrote it, taken apart: given, father, grandfather, family.

Syrian lists write a person as given + father + grandfather + family ("محمد أحمد علي
الحلبي"), as given + father + family, as given + family, with ibn/bint between the
generations, with a kunya (أبو خالد, أم محمد) instead of or beside the given name, after
a title (الشهيد, الحاج, Dr.), with the family name first and a comma ("al-Hamwi,
Mohammad"), or in capitals for the family name (HAMWI Mohammad). This module reads all
of those into one `NameParts`, so that comparison can put father beside father.

What words mean (titles, kunya and nasab markers, articles, compound halves) is data in
`data/name_parts.json`; which given names exist, in which spellings, is the variant table
`data/given_names.json`. Nothing informative is thrown away: a word the parser cannot
place goes to `extra`, a dropped title to `titles`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Literal

from athar.linkage.arabic import (
    Script,
    clean,
    fold_word,
    load_data,
    normalise_ar,
    text_script,
    token_script,
    words,
)
from athar.linkage.translit import is_article, name_key

Sex = Literal["m", "f"]


@dataclass(frozen=True, slots=True)
class NameParts:
    """The parts of one written name. Each part keeps its written form (for showing to a
    person); comparison forms come from `names.name_features`."""

    raw: str
    script: Script = "empty"
    given: str | None = None
    father: str | None = None
    grandfather: str | None = None
    family: str | None = None
    kunya: str | None = None
    mother: str | None = None
    nasab: tuple[str, ...] = ()  # father, grandfather, further ancestors, in order
    titles: tuple[str, ...] = ()  # dropped titles (الشهيد, Dr.), kept for the record
    extra: tuple[str, ...] = ()  # nicknames, bracketed notes, numbers: kept, not compared
    sex: Sex | None = None  # a hint from the words themselves (بنت, أم, الشهيدة, Fatima)
    flags: tuple[str, ...] = field(default=())  # how the name was read: "comma", "nasab"…

    @property
    def is_empty(self) -> bool:
        return not (self.given or self.family or self.kunya or self.nasab)


# ---------------------------------------------------------------------------- lexicon


@dataclass(frozen=True, slots=True)
class _Lexicon:
    honorifics: dict[str, Sex | None]
    trailing: tuple[tuple[str, ...], ...]
    kunya: dict[str, Sex | None]
    nasab: dict[str, Sex | None]
    family_prefixes: frozenset[str]
    abd: frozenset[str]
    suffixes: frozenset[str]
    mother: _PhraseIndex
    father: _PhraseIndex
    alias: _PhraseIndex


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(fold_word(w) for w in words(clean(text)))


def _both(section: dict[str, list[str]]) -> list[str]:
    return [*section["ar"], *section["latin"]]


def _sexed(section: dict[str, dict[str, Sex | None]]) -> dict[str, Sex | None]:
    return {
        " ".join(_phrase(word)): sex
        for script in ("ar", "latin")
        for word, sex in section[script].items()
        if _phrase(word)
    }


_PhraseIndex = dict[str, tuple[tuple[str, ...], ...]]


def _phrases(section: dict[str, list[str]]) -> _PhraseIndex:
    """Phrases by their first word, longest first: lookup per word, not per phrase."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for phrase in sorted({p for p in map(_phrase, _both(section)) if p}, key=len, reverse=True):
        index.setdefault(phrase[0], []).append(phrase)
    return {first: tuple(found) for first, found in index.items()}


@cache
def lexicon() -> _Lexicon:
    data = load_data("name_parts.json")
    return _Lexicon(
        honorifics=_sexed(data["honorifics"]),
        trailing=tuple(p for found in _phrases(data["trailing_phrases"]).values() for p in found),
        kunya=_sexed(data["kunya_markers"]),
        nasab=_sexed(data["nasab_markers"]),
        family_prefixes=frozenset(fold_word(w) for w in _both(data["family_prefixes"])),
        abd=frozenset(fold_word(w) for w in _both(data["compound_prefixes"])),
        suffixes=frozenset(
            fold_word(w) for w in _both(data["compound_suffixes"]) if len(fold_word(w)) >= 3
        ),
        mother=_phrases(data["mother_markers"]),
        father=_phrases(data["father_markers"]),
        alias=_phrases(data["alias_markers"]),
    )


# ---------------------------------------------------------------------- variant table


@dataclass(frozen=True, slots=True)
class GivenName:
    id: str
    sex: Sex | None
    arabic: str  # the canonical Arabic spelling
    latin: str  # the first (most usual) Latin spelling


@dataclass(frozen=True, slots=True)
class _Table:
    names: dict[str, GivenName]
    by_spelling: dict[str, str]  # normalised Arabic or folded Latin spelling → id
    by_key: dict[str, str]  # comparison key → id, only where the key is unambiguous


def _spelling(text: str) -> str:
    return normalise_ar(text).replace(" ", "")


def _arabic_letters(spelling: str) -> bool:
    return any("\u0600" <= c <= "\u06ff" for c in spelling)


@cache
def variant_table() -> _Table:
    """The given-name table indexed three ways. A spelling or key shared by two names
    (Hamid: حامد and حميد) is left out of the index: a wrong canonical id would tell a
    mother that two different names are the same one."""
    names: dict[str, GivenName] = {}
    spellings: dict[str, set[str]] = {}
    keys: dict[str, set[str]] = {}
    for entry in load_data("given_names.json")["names"]:
        sex = entry["sex"] if entry["sex"] in ("m", "f") else None
        names[entry["id"]] = GivenName(entry["id"], sex, entry["ar"][0], entry["latin"][0])
        for spelling in entry["ar"] + entry["latin"]:
            spellings.setdefault(_spelling(spelling), set()).add(entry["id"])
            keys.setdefault(name_key(spelling).replace(" ", ""), set()).add(entry["id"])
    return _Table(
        names=names,
        by_spelling={s: next(iter(ids)) for s, ids in spellings.items() if len(ids) == 1},
        by_key={k: next(iter(ids)) for k, ids in keys.items() if len(ids) == 1 and k},
    )


@lru_cache(maxsize=1 << 16)
def canonical_given(name: str) -> str | None:
    """The variant table's id for a given name in any script and spelling, or None.

    Exact spellings first (normalised), then the comparison key, so that an unlisted
    Latin spelling (Mouhammad) still finds its name when its key is unambiguous.
    Spellings or keys shared by two names give None rather than a guess. An Arabic
    spelling is looked up as written only: Arabic spells a name one way up to what
    normalising folds (محمّد, أحمد/احمد), and the key, which drops inner alifs and ع,
    would turn a slip into another name (امد → عماد, زهر → زاهر) that the linkage then
    treats as proof of two people.
    """
    table = variant_table()
    spelling = _spelling(name)
    if not spelling:
        return None
    found = table.by_spelling.get(spelling)
    if found is None and not _ambiguous_spelling(spelling) and not _arabic_letters(spelling):
        found = table.by_key.get(name_key(name).replace(" ", ""))
    return found


@cache
def _ambiguous_spellings() -> frozenset[str]:
    seen: dict[str, set[str]] = {}
    for entry in load_data("given_names.json")["names"]:
        for spelling in entry["ar"] + entry["latin"]:
            seen.setdefault(_spelling(spelling), set()).add(entry["id"])
    return frozenset(s for s, ids in seen.items() if len(ids) > 1)


def _ambiguous_spelling(spelling: str) -> bool:
    return spelling in _ambiguous_spellings()


def given_name(name_id: str) -> GivenName | None:
    return variant_table().names.get(name_id)


# ----------------------------------------------------------------------------- parser


@dataclass(slots=True)
class _Unit:
    """One name element: a word, or words that belong together (عبد الرحمن, al Hamwi)."""

    words: list[str]
    kind: Literal["name", "family", "kunya", "nasab"] = "name"
    sex: Sex | None = None

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _match_phrase(folded: list[str], i: int, phrases: _PhraseIndex) -> int:
    """Length of the longest phrase starting at folded[i], or 0."""
    for phrase in phrases.get(folded[i], ()):
        if tuple(folded[i : i + len(phrase)]) == phrase:
            return len(phrase)
    return 0


def _reorder_comma(tokens: list[str]) -> tuple[list[str], list[str], bool]:
    """'al-Hamwi, Mohammad Ahmad' → 'Mohammad Ahmad al-Hamwi'.

    One comma with one or two words before it is the family-first order. One comma
    after a longer name, or after a known given name, starts a note ("Mohammad Hamwi,
    Aleppo"), which is returned apart. Several commas are just separators.
    """
    commas = [i for i, t in enumerate(tokens) if t in (",", "،")]
    if len(commas) != 1:
        return tokens, [], False
    before, after = tokens[: commas[0]], tokens[commas[0] + 1 :]
    named_before = [t for t in before if t not in "()[]"]
    named_after = [t for t in after if t not in "()[]"]
    if not named_after or not named_before:
        return before + after, [], False
    if len(named_before) <= 2 and not (
        canonical_given(named_before[0]) and not canonical_given(named_after[0])
    ):
        return after + before, [], True
    return before, named_after, False


def _split_brackets(tokens: list[str]) -> tuple[list[str], list[list[str]]]:
    """Words inside brackets are notes or a kunya: 'محمد الحلبي (أبو خالد)'."""
    main: list[str] = []
    groups: list[list[str]] = []
    depth = 0
    for token in tokens:
        if token in ("(", "["):
            depth += 1
            groups.append([])
        elif token in (")", "]"):
            depth = max(0, depth - 1)
        elif token in (",", "،"):
            continue
        elif depth and groups:
            groups[-1].append(token)
        else:
            main.append(token)
    return main, [g for g in groups if g]


def _split_markers(
    tokens: list[str], folded: list[str]
) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """Cut the name at 'mother:', 'والده', 'aka' and keep each tail under its role."""
    lex = lexicon()
    tails: dict[str, list[str]] = {}
    cuts: list[tuple[int, int, str]] = []
    i = 0
    while i < len(folded):
        for role, phrases in (("mother", lex.mother), ("father", lex.father), ("alias", lex.alias)):
            length = _match_phrase(folded, i, phrases)
            if length and i > 0:
                cuts.append((i, length, role))
                i += length - 1
                break
        i += 1
    markers: list[str] = []
    if not cuts:
        return tokens, tails, markers
    main = tokens[: cuts[0][0]]
    for n, (start, length, role) in enumerate(cuts):
        end = cuts[n + 1][0] if n + 1 < len(cuts) else len(tokens)
        markers.extend(tokens[start : start + length])
        tails.setdefault(role, []).extend(tokens[start + length : end])
    return main, tails, markers


def _drop_titles(tokens: list[str], folded: list[str]) -> tuple[int, int, list[str], Sex | None]:
    """How many leading title words and trailing blessing words to drop."""
    lex = lexicon()
    start = 0
    sex: Sex | None = None
    while start < len(folded) and folded[start] in lex.honorifics:
        sex = sex or lex.honorifics[folded[start]]
        start += 1
    end = len(folded)
    for phrase in lex.trailing:
        if end - start > len(phrase) and tuple(folded[end - len(phrase) : end]) == phrase:
            end -= len(phrase)
            break
    return start, end, tokens[:start], sex


def _group(tokens: list[str], folded: list[str]) -> list[_Unit]:
    """Words into name elements: compounds, kunyas, articles with their family name."""
    lex = lexicon()
    units: list[_Unit] = []
    i = 0
    n = len(tokens)
    while i < n:
        word = folded[i]
        following = folded[i + 1] if i + 1 < n else None
        if following is not None and word in lex.nasab and units:
            units.append(_Unit([tokens[i]], "nasab", lex.nasab[word]))
            i += 1
            continue
        if following is not None and (
            is_article(word, following)
            or word in lex.family_prefixes
            or (word.startswith("ال") and word[2:] in lex.kunya)  # الأبو بكر: a family
        ):
            take = _take_name(folded, i + 1)
            units.append(_Unit(tokens[i : i + 1 + take], "family"))
            i += 1 + take
            continue
        if (
            following is not None
            and word in lex.kunya
            and token_script(word) == token_script(following)
        ):
            take = _take_name(folded, i + 1)
            units.append(_Unit(tokens[i : i + 1 + take], "kunya", lex.kunya[word]))
            i += 1 + take
            continue
        take = _take_name(folded, i)
        units.append(_Unit(tokens[i : i + take]))
        i += take
    return units


def _take_name(folded: list[str], i: int) -> int:
    """How many words from i make one name: عبد + (ال) + X, X + (ال) + الدين."""
    lex = lexicon()
    n = len(folded)
    if i + 1 < n and (
        folded[i] in lex.kunya or is_article(folded[i], folded[i + 1])
    ):  # a family name made of a kunya or with its article: (Al-)Abu Bakr, Bani Al-Marja
        return 1 + _take_name(folded, i + 1)
    take = 1
    if folded[i] in lex.abd and i + 1 < n:
        take = 2
        if is_article(folded[i + 1], folded[i + 2] if i + 2 < n else None):
            take = 3
    if i + take < n and folded[i + take] in lex.suffixes:
        take += 1
    elif (
        i + take + 1 < n
        and is_article(folded[i + take], folded[i + take + 1])
        and folded[i + take + 1] in lex.suffixes
    ):
        take += 2
    return min(take, n - i)


def _is_upper_family(word: str) -> bool:
    return len(word) >= 2 and word.isupper()


def _has_article(unit: _Unit) -> bool:
    """al Hamwi, آل سعود, or an Arabic word that starts with ال (الحلبي)."""
    if unit.kind == "family":
        return True
    word = fold_word(unit.words[0])
    return len(unit.words) == 1 and word.startswith("ال") and len(word) >= 5


@dataclass(slots=True)
class _Roles:
    given: _Unit | None = None
    family: _Unit | None = None
    kunya: _Unit | None = None
    nasab: list[_Unit] = field(default_factory=list)
    sex: Sex | None = None
    flags: list[str] = field(default_factory=list)


def _assign(units: list[_Unit]) -> _Roles:
    """Roles by position, the way Syrian lists order names."""
    roles = _Roles()
    # Capitals first: "ZUBI Abu Muhammed" is kunya + family, "ABU HAMDAN Abdo" is a
    # family name that starts like a kunya.
    units = _capitals_last(units, roles.flags)
    # A kunya that is really a given name (أبو بكر, أم كلثوم) is a name.
    for unit in units:
        if unit.kind == "kunya" and canonical_given(unit.text):
            unit.kind = "name"
    kunya = next((u for u in units if u.kind == "kunya"), None)
    if kunya is not None and (units.index(kunya) < len(units) - 1 or len(units) == 1):
        roles.kunya = kunya
        units = [u for u in units if u is not kunya]
        if len(units) == 1 and units[0].kind == "name":
            units[0].kind = "family"  # Abu Khalid Hamwi: kunya + family name
    for unit in units:
        if unit.kind == "kunya":  # a kunya at the end is a family name: أبو زيد
            unit.kind = "family"
    if any(u.kind == "nasab" for u in units):
        roles.flags.append("nasab")
        _assign_nasab(units, roles)
        return roles
    names = _family_last(units, roles.flags)
    if len(names) == 1:
        if _has_article(names[0]):
            roles.family = names[0]
        else:
            roles.given = names[0]
    elif names:
        roles.given, roles.family, roles.nasab = names[0], names[-1], names[1:-1]
    return roles


def _capitals_last(units: list[_Unit], flags: list[str]) -> list[_Unit]:
    """HAMWI Mohammad, YUSUF Jasmin: Latin words in capitals among mixed-case ones are
    the family name, even one that is also a given name; an abbreviation in capitals
    (MHD, written without vowels) stays a given name."""
    uppers = [
        u
        for u in units
        if all(_is_upper_family(w) for w in u.words)
        and (
            not canonical_given(u.text)
            or fold_word(u.words[0]) in ("al", "el")
            or any(c in "aeiouy" for c in fold_word(u.words[0]))
        )
    ]
    if uppers and len(uppers) < len(units) and token_script(uppers[0].words[0]) == "latin":
        flags.append("capitals")
        family = _Unit([w for u in uppers for w in u.words], "family")
        return [u for u in units if u not in uppers] + [family]
    return units


def _family_last(names: list[_Unit], flags: list[str]) -> list[_Unit]:
    """Put the family name last when it comes first with its article (الحلبي محمد);
    capitals were moved by `_capitals_last`."""
    if "capitals" in flags:
        return names
    if (
        len(names) >= 2
        and _has_article(names[0])
        and not _has_article(names[-1])
        and not canonical_given(names[0].text)
    ):
        flags.append("family_first")
        return names[1:] + names[:1]
    return names


def _assign_nasab(units: list[_Unit], roles: _Roles) -> None:
    """محمد بن أحمد بن علي الحلبي: each marker names one ancestor; the rest is family."""
    rest: list[_Unit] = []
    expect_ancestor = False
    for unit in units:
        if unit.kind == "nasab":
            expect_ancestor = True
            roles.sex = roles.sex or unit.sex
        elif expect_ancestor:
            roles.nasab.append(unit)
            expect_ancestor = False
        elif roles.given is None and not roles.nasab:
            roles.given = unit
        elif not roles.nasab:
            roles.nasab.append(unit)  # given + father written without a marker, then ibn
        else:
            rest.append(unit)
    if rest:
        roles.family = _Unit([w for u in rest for w in u.words], "family")


def _sub_name(tokens: list[str]) -> str | None:
    text = " ".join(tokens)
    return text or None


@cache
def _special_words() -> frozenset[str]:
    """Every word that can change how a name is read; a name without any of them (most
    names) is read by position alone."""
    lex = lexicon()
    found: set[str] = {*lex.honorifics, *lex.kunya, *lex.nasab, *lex.family_prefixes}
    found |= {"ال" + k for k in lex.kunya}  # الأبو بكر, a family name
    found |= {*lex.abd, *lex.suffixes, *(w for p in lex.trailing for w in p)}
    found |= {
        " ".join(phrase)
        for index in (lex.mother, lex.father, lex.alias)
        for phrases in index.values()
        for phrase in phrases
    }
    data = load_data("name_parts.json")["articles"]
    found |= {fold_word(w) for w in data["ar"] + data["latin"] + data["latin_hyphenated"]}
    return frozenset(w for phrase in found for w in phrase.split())


_PLAIN_ARTICLES = frozenset({"al", "el", "ال"})


def _plain_units(tokens: list[str], folded: list[str]) -> list[str] | None:
    """The name's elements if it can be read by position alone, else None.

    That is a name of plain words, a family name perhaps with a separate article
    (al Hamwi), and nothing else: no title, marker, kunya, compound, bracket, capitals or
    article-first order. Most names in a list are like that, and skip the full parser.
    """
    if not tokens or folded[0].startswith("ال") or folded[0] in _PLAIN_ARTICLES:
        return None
    special = _special_words()
    units: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        word = folded[i]
        if word in _PLAIN_ARTICLES and i + 1 < n and folded[i + 1] not in special:
            units.append(f"{tokens[i]} {tokens[i + 1]}")
            i += 2
            continue
        if word in special or not word.isalpha() or (len(word) >= 2 and tokens[i].isupper()):
            return None
        units.append(tokens[i])
        i += 1
    return units


def _by_position(full: str, units: list[str]) -> NameParts:
    """The common case: given, ancestors, family, and nothing else to read."""
    given = units[0]
    chain = tuple(units[1:-1])
    name_id = canonical_given(given)
    entry = given_name(name_id) if name_id else None
    return NameParts(
        raw=full,
        script=text_script(units),
        given=given,
        father=chain[0] if chain else None,
        grandfather=chain[1] if len(chain) > 1 else None,
        family=units[-1] if len(units) > 1 else None,
        nasab=chain,
        sex=entry.sex if entry else None,
    )


@lru_cache(maxsize=1 << 16)
def parse_name(full: str) -> NameParts:
    """Take apart a full name in Arabic or Latin script (or both). Never raises.

    Decisions: a lone أبو/أم X at the start is a kunya, at the end a family name; أبو بكر
    and أم كلثوم are given names (they are in the variant table); three words are given,
    father, family (the usual Syrian "الاسم الثلاثي"); four or more are given, father,
    grandfather (and further ancestors), family; two are given and family; a single
    word with an article is a family name, otherwise a given name.
    """
    text = clean(full)
    tokens = _mend_compounds(words(text, keep_punct=True))
    folded = [fold_word(t) for t in tokens]
    units = _plain_units(tokens, folded)
    if units is not None:
        return _by_position(full, units)
    tokens, note, reordered = _reorder_comma(tokens)
    tokens, bracketed = _split_brackets(tokens)
    folded = [fold_word(t) for t in tokens]
    keep = [i for i, f in enumerate(folded) if f]
    tokens = [tokens[i] for i in keep]
    folded = [folded[i] for i in keep]
    tokens, tails, markers = _split_markers(tokens, folded)
    folded = folded[: len(tokens)]
    start, end, titles, title_sex = _drop_titles(tokens, folded)
    trailing = tokens[end:]
    tokens, folded = tokens[start:end], folded[start:end]
    digits = [t for t in tokens if not any(c.isalpha() for c in t)]
    kept = [i for i, t in enumerate(tokens) if any(c.isalpha() for c in t)]
    tokens, folded = [tokens[i] for i in kept], [folded[i] for i in kept]

    alias = _sub_name(tails.get("alias", []))
    extra: list[str] = [*digits, *([alias] if alias else [])]
    if note:
        extra.append(" ".join(note))
    kunya_from_brackets: str | None = None
    for group in bracketed:
        grouped = _group(group, [fold_word(w) for w in group])
        if len(grouped) == 1 and grouped[0].kind == "kunya" and not kunya_from_brackets:
            kunya_from_brackets = grouped[0].text
        else:
            extra.append(" ".join(group))

    roles = _assign(_group(tokens, folded))
    flags = [*roles.flags, *(["comma"] if reordered else []), *(["markers"] if markers else [])]
    chain = [u.text for u in roles.nasab]
    father_tail = _sub_name(tails.get("father", []))
    if father_tail and not chain:
        chain = [father_tail]
    elif father_tail:
        extra.append(father_tail)
    kunya = roles.kunya.text if roles.kunya else kunya_from_brackets
    given = roles.given.text if roles.given else None
    all_words = [*tokens, *tails.get("mother", []), *titles, *(w for g in bracketed for w in g)]
    return NameParts(
        raw=full if isinstance(full, str) else "",
        script=text_script(all_words),
        given=given,
        father=chain[0] if chain else None,
        grandfather=chain[1] if len(chain) > 1 else None,
        family=roles.family.text if roles.family else None,
        kunya=kunya,
        mother=_sub_name(tails.get("mother", [])),
        nasab=tuple(chain),
        titles=tuple(titles + trailing),
        extra=tuple(extra),
        sex=_sex_hint(roles, title_sex, given),
        flags=tuple(flags),
    )


@cache
def _arabic_abd() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Arabic compound prefixes without an article (عبد), and their first two letters."""
    found = tuple(p for p in lexicon().abd if token_script(p) == "ar" and not p.startswith("ال"))
    return found, tuple({p[:2] for p in found})


def _mend_compounds(tokens: list[str]) -> list[str]:
    """عبدا لوهاب, عب دالمطلب: the space typed one letter off inside عبد ال…, which
    would read as two names. Put back where it belongs: عبد الوهاب, عبد المطلب."""
    prefixes, heads = _arabic_abd()
    if not any(t.startswith(heads) for t in tokens):
        return tokens
    out: list[str] = []
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if i + 1 < len(tokens) and word.startswith(heads) and fold_word(word) not in prefixes:
            joined = fold_word(word + tokens[i + 1])
            prefix = next(
                (p for p in prefixes if joined.startswith(p + "ال") and len(joined) > len(p) + 3),
                None,
            )
            if prefix is not None and abs(len(fold_word(word)) - len(prefix)) == 1:
                out += [prefix, joined[len(prefix) :]]
                i += 2
                continue
        out.append(word)
        i += 1
    return out


def _sex_hint(roles: _Roles, title_sex: Sex | None, given: str | None) -> Sex | None:
    """بنت/ابن, then أم/أبو, then a title, then the given name's usual sex."""
    if roles.sex:
        return roles.sex
    if roles.kunya is not None and roles.kunya.sex:
        return roles.kunya.sex
    if title_sex:
        return title_sex
    name_id = canonical_given(given) if given else None
    entry = given_name(name_id) if name_id else None
    return entry.sex if entry else None
