"""Arabic and Latin names, compared the way a person tracing a relative would.

The public face of name handling for linkage and tracing:

- `normalise_ar`, `transliterate`, `latin_key`: comparable forms of name text;
- `canonical_given`: a given name's id in the variant table, any script or spelling;
- `parse_name`: a full name into given, father, grandfather, family, kunya, mother;
- `name_features`: the comparison columns the linkage computes once per record;
- `similarity`: two names compared part by part, with the reasons as codes that
  `describe` turns into sentences in the reader's language.

The reasons matter as much as the score: a mother told that a name on a list of the dead
"matches" her son's must be able to see which parts agreed and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from rapidfuzz.distance import JaroWinkler

from athar.i18n import gettext, translate
from athar.linkage.arabic import fold_word, normalise_ar, token_script, words
from athar.linkage.nameparse import NameParts, canonical_given, lexicon, parse_name
from athar.linkage.translit import latin_key, name_key, skeleton, transliterate

__all__ = [
    "FEATURE_COLUMNS",
    "PARTS",
    "NameMatch",
    "NameParts",
    "PartMatch",
    "Reason",
    "canonical_given",
    "describe",
    "explain",
    "latin_key",
    "name_features",
    "normalise_ar",
    "parse_name",
    "similarity",
    "transliterate",
]

Part = Literal["given", "father", "grandfather", "family", "mother", "kunya"]
PARTS: tuple[Part, ...] = ("given", "father", "grandfather", "family", "mother", "kunya")
Level = Literal["exact", "variant", "close", "fair", "different"]
Verdict = Literal["match", "possible", "non_match"]


def N_(message: str) -> str:
    """Marks a message for extraction (Babel's default keywords include N_) without
    translating it here: the reader's language is only known where it is shown."""
    return message


PART_LABELS: dict[str, str] = {
    "given": N_("given name"),
    "father": N_("father's name"),
    "grandfather": N_("grandfather's name"),
    "family": N_("family name"),
    "mother": N_("mother's name"),
    "kunya": N_("kunya (Abu … / Umm …)"),
}

REASONS: dict[str, str] = {
    "same": N_("{part}: the same ({a})"),
    "same_spelling": N_("{part}: the same name, spelled differently ({a} / {b})"),
    "same_script": N_("{part}: the same name in Arabic and Latin letters ({a} / {b})"),
    "similar": N_("{part}: very similar spelling ({a} / {b})"),
    "somewhat_similar": N_("{part}: somewhat similar spelling ({a} / {b})"),
    "different": N_("{part}: different ({a} / {b})"),
    "missing": N_("{part}: given in only one record ({a})"),
    "position": N_("{a} is the {part} in one record and the {other_part} in the other"),
    "order": N_("The given name and the family name are written in opposite order"),
    "kunya_only": N_("One record gives only a kunya ({a}), the other a given name ({b})"),
    "sex_differs": N_("The names show a man in one record and a woman in the other"),
    "empty": N_("One of the records has no readable name"),
}

VERDICTS: dict[str, str] = {
    "match": N_("Likely the same person's name"),
    "possible": N_("Possibly the same person's name: check the other details"),
    "non_match": N_("Probably not the same person's name"),
}

# Evidence, in bits, that two records name the same person, by part and agreement level.
# Hand-set, then checked on tests/data/linkage/name_pairs.csv; the linkage replaces
# them with weights Splink estimates from the lists themselves.
# A disagreeing father, grandfather or mother weighs more than an agreeing one: lists
# are full of people who share a given and family name, and the generations are what
# tells cousins apart.
WEIGHTS: dict[str, dict[Level, float]] = {
    "given": {"exact": 4.0, "variant": 4.0, "close": 2.0, "fair": 0.5, "different": -5.0},
    "father": {"exact": 3.0, "variant": 3.0, "close": 1.5, "fair": -0.5, "different": -5.0},
    "grandfather": {"exact": 2.0, "variant": 2.0, "close": 1.0, "fair": -0.5, "different": -5.0},
    "family": {"exact": 3.5, "variant": 3.5, "close": 2.0, "fair": -1.5, "different": -4.0},
    "mother": {"exact": 2.5, "variant": 2.5, "close": 1.0, "fair": -1.0, "different": -6.0},
    "kunya": {"exact": 3.0, "variant": 3.0, "close": 1.5, "fair": 0.0, "different": -1.0},
}
SEX_DIFFERS = -6.0
MATCH_AT = 6.0  # bits: given + family, or given + father, must agree
POSSIBLE_AT = 3.5
# Jaro-Winkler levels. Across scripts the keys are lossier (ع, short vowels), so the
# same distance means less there.
CLOSE_AT = {False: 0.93, True: 0.90}  # keyed by "the two parts are in different scripts"
FAIR_AT = {False: 0.88, True: 0.85}


# ----------------------------------------------------------------------------- forms


@dataclass(frozen=True, slots=True)
class PartForm:
    """One name part in every comparable form, computed once per distinct spelling."""

    text: str
    script: str
    norm: str  # normalise_ar (Arabic) or folded Latin; family names without article
    key: str  # the cross-script comparison key
    skel: str  # the key's consonants, for blocking
    name_id: str | None  # variant-table id for given names (and the name in a kunya)


@lru_cache(maxsize=1 << 18)
def part_form(text: str, role: str = "given") -> PartForm:
    """Comparable forms of one part. Cached: the same few thousand given and family
    names make up most of a million-record list."""
    tokens = words(text)
    scripts = {token_script(t) for t in tokens}
    script = scripts.pop() if len(scripts) == 1 else "mixed"
    norm = normalise_ar(text)
    if role == "family":
        norm = _without_article(norm)
    key = name_key(text)
    name_id: str | None = None
    if role == "kunya":
        marker, _, rest = text.partition(" ")
        inner = canonical_given(rest) if rest else None
        name_id = f"{_kunya_marker(marker)}:{inner}" if inner else None
    elif role == "family":
        # Many family names are given names (حسن, العمر, Mousa): the table then tells
        # Hasan from Hussein here too.
        bare = _without_article(" ".join(words(text)).casefold())
        name_id = canonical_given(bare) if " " not in bare else None
    else:
        name_id = canonical_given(text)
    return PartForm(text, script, norm, key, skeleton(key), name_id)


def _kunya_marker(word: str) -> str:
    """أبو / Abu / Abou → abu; أم / Umm / Om → umm: the marker in either script."""
    return "umm" if lexicon().kunya.get(fold_word(word)) == "f" else "abu"


def _without_article(norm: str) -> str:
    """al hamwi → hamwi, الحلبي → حلبي: lists add and drop the article at will."""
    tokens = norm.split()
    if len(tokens) > 1 and tokens[0] in ("al", "el", "ال"):
        tokens = tokens[1:]
    if len(tokens) == 1 and tokens[0].startswith("ال") and len(tokens[0]) >= 5:
        tokens = [tokens[0][2:]]
    return " ".join(tokens)


def _forms(parts: NameParts) -> dict[str, PartForm]:
    out: dict[str, PartForm] = {}
    for part in PARTS:
        value = getattr(parts, part)
        if value:
            form = part_form(value, part)
            if form.norm or form.key:
                out[part] = form
    return out


_COLUMNS = tuple(
    (part, f"{part}_norm", f"{part}_key", f"{part}_skel", f"{part}_id") for part in PARTS
)
FEATURE_COLUMNS: tuple[str, ...] = (
    "script",
    "sex",
    *(name for _part, *names in _COLUMNS for name in names),
    "full_norm",
    "full_key",
    "n_parts",
)
_EMPTY = dict.fromkeys(FEATURE_COLUMNS)


def name_features(parts: NameParts | str) -> dict[str, str | int | None]:
    """The comparison columns for one record, flat, for a DataFrame or Splink.

    Per part (given, father, grandfather, family, mother, kunya): `_norm` (normalised
    text), `_key` (cross-script key), `_skel` (consonant skeleton, for blocking) and
    `_id` (variant-table id). Plus `full_norm` and `full_key` over given, father,
    grandfather and family, `script`, `sex` (hint from the words) and `n_parts`.
    Columns are always the same (`FEATURE_COLUMNS`); a part a name lacks is None.
    """
    if isinstance(parts, str):
        parts = parse_name(parts)
    forms = _forms(parts)
    row: dict[str, str | int | None] = dict(_EMPTY)
    row["script"] = parts.script
    row["sex"] = parts.sex
    for part, norm, key, skel, name_id in _COLUMNS:
        form = forms.get(part)
        if form is not None:
            row[norm], row[key], row[skel], row[name_id] = (
                form.norm,
                form.key,
                form.skel,
                form.name_id,
            )
    lineage = [forms[p] for p in ("given", "father", "grandfather", "family") if p in forms]
    if lineage:
        row["full_norm"] = " ".join(f.norm for f in lineage)
        row["full_key"] = " ".join(f.key for f in lineage)
    row["n_parts"] = len(lineage) + max(0, len(parts.nasab) - 2)
    return row


# ------------------------------------------------------------------------ comparison


@dataclass(frozen=True, slots=True)
class Reason:
    """Why two names agree or differ, as a code and the values it speaks of."""

    code: str
    part: str | None = None
    a: str | None = None
    b: str | None = None
    other_part: str | None = None


@dataclass(frozen=True, slots=True)
class PartMatch:
    part: str
    level: Level
    similarity: float  # Jaro-Winkler of the best pair of forms (1.0 when equal)
    weight: float
    a: str
    b: str
    reason: str  # the reason code for this part


@dataclass(frozen=True, slots=True)
class NameMatch:
    """Two names compared. `score` is evidence in bits, not a probability: the linkage
    turns agreement levels into probabilities with weights estimated from the lists."""

    score: float
    verdict: Verdict
    parts: tuple[PartMatch, ...]
    reasons: tuple[Reason, ...]

    @property
    def is_match(self) -> bool:
        return self.verdict == "match"


def compare_forms(a: PartForm, b: PartForm) -> tuple[Level, float, str]:
    """Agreement of one part: level, similarity and reason code.

    Two Arabic spellings that normalise differently are different letters, so they are
    judged on the letters (typos) and never called the same name by their keys alone
    (السيد and السعيد share a key). Latin spellings, and Arabic against Latin, are
    judged on keys: that is what keys are for.
    """
    cross = a.script != b.script
    if a.norm and a.norm == b.norm:
        return "exact", 1.0, "same"
    if a.name_id and b.name_id:
        if a.name_id == b.name_id:
            return "variant", 1.0, "same_script" if cross else "same_spelling"
        return "different", _jw(a, b, cross), "different"  # two known, different names
    arabic = not cross and a.script == "ar"
    if a.key and a.key == b.key and not arabic:
        return "variant", 1.0, "same_script" if cross else "same_spelling"
    score = _jw(a, b, cross)
    if score >= CLOSE_AT[cross]:
        return "close", score, "similar"
    if score >= FAIR_AT[cross]:
        return "fair", score, "somewhat_similar"
    return "different", score, "different"


def _jw(a: PartForm, b: PartForm, cross: bool) -> float:
    if not cross and a.script == "ar" and a.norm and b.norm:
        return JaroWinkler.similarity(a.norm, b.norm)
    keyed = JaroWinkler.similarity(a.key, b.key) if a.key and b.key else 0.0
    if cross or not a.norm or not b.norm:
        return keyed
    return max(keyed, JaroWinkler.similarity(a.norm, b.norm))


def _part(part: str, fa: PartForm, fb: PartForm) -> PartMatch:
    level, score, code = compare_forms(fa, fb)
    return PartMatch(part, level, round(score, 4), WEIGHTS[part][level], fa.text, fb.text, code)


def _as_parts(name: NameParts | str) -> NameParts:
    return parse_name(name) if isinstance(name, str) else name


def similarity(a: NameParts | str, b: NameParts | str) -> NameMatch:
    """Compare two names part by part and say why they match or not.

    Parts are compared where both records have them; a part only one record has is
    neither for nor against. Two alignments besides the direct one are tried, because
    lists disagree on structure more than on spelling: a shorter name's last word may
    be the other's father or grandfather ("محمد أحمد" / "محمد أحمد الحلبي"), and given
    and family names may be swapped. The best-scoring reading is reported.
    """
    pa, pb = _as_parts(a), _as_parts(b)
    fa, fb = _forms(pa), _forms(pb)
    if not fa or not fb:
        return NameMatch(-10.0, "non_match", (), (Reason("empty"),))
    candidates = [_direct(fa, fb), _shifted(fa, fb), _swapped(fa, fb)]
    matches, extra = max((c for c in candidates if c is not None), key=lambda c: _total(c[0]))
    reasons = [*extra]
    score = _total(matches)
    if pa.sex and pb.sex and pa.sex != pb.sex:
        score += SEX_DIFFERS
        reasons.append(Reason("sex_differs"))
    for m in matches:
        reasons.append(Reason(m.reason, m.part, m.a, m.b if m.reason != "same" else None))
    reasons.extend(_unpaired(fa, fb, matches))
    verdict: Verdict = (
        "match" if score >= MATCH_AT else "possible" if score >= POSSIBLE_AT else "non_match"
    )
    return NameMatch(round(score, 2), verdict, tuple(matches), tuple(reasons))


_Alignment = tuple[list[PartMatch], list[Reason]]


def _total(matches: list[PartMatch]) -> float:
    return sum(m.weight for m in matches)


def _direct(fa: dict[str, PartForm], fb: dict[str, PartForm]) -> _Alignment:
    return [_part(p, fa[p], fb[p]) for p in PARTS if p in fa and p in fb], []


def _shifted(fa: dict[str, PartForm], fb: dict[str, PartForm]) -> _Alignment | None:
    """One record's last word is the other's father or grandfather: a list that gave
    given + father (+ grandfather) and no family name."""
    best: _Alignment | None = None
    for short, long, flip in ((fa, fb, False), (fb, fa, True)):
        if "family" not in short:
            continue
        for slot in ("father", "grandfather"):
            if slot not in long or slot in short:
                continue
            probe = _part(slot, short["family"], long[slot])
            if probe.level not in ("exact", "variant", "close"):
                continue
            matches = [_part(p, short[p], long[p]) for p in PARTS if p in short and p in long]
            matches = [m for m in matches if m.part != "family"] + [probe]
            if flip:
                matches = [_flip(m) for m in matches]
            reason = Reason("position", "family", short["family"].text, None, slot)
            if best is None or _total(matches) > _total(best[0]):
                best = (matches, [reason])
    return best


def _flip(m: PartMatch) -> PartMatch:
    return PartMatch(m.part, m.level, m.similarity, m.weight, m.b, m.a, m.reason)


def _swapped(fa: dict[str, PartForm], fb: dict[str, PartForm]) -> _Alignment | None:
    """Hamwi Mohammad / Mohammad Hamwi: the same two names in the other order."""
    if not all(p in fa and p in fb for p in ("given", "family")):
        return None
    if fa["given"].name_id and fb["given"].name_id:
        return None  # Ahmad Mohammad / Mohammad Ahmad: father and son as often as a swap
    first = _part("given", fa["family"], fb["given"])
    second = _part("family", fa["given"], fb["family"])
    if min(first.similarity, second.similarity) < CLOSE_AT[False] or first.level == "different":
        return None
    rest = [
        _part(p, fa[p], fb[p])
        for p in PARTS
        if p in fa and p in fb and p not in ("given", "family")
    ]
    return [first, second, *rest], [Reason("order")]


def _unpaired(
    fa: dict[str, PartForm], fb: dict[str, PartForm], matches: list[PartMatch]
) -> list[Reason]:
    compared = {m.part for m in matches}
    out: list[Reason] = []
    if "given" not in compared and "kunya" in fa and "given" in fb and "given" not in fa:
        out.append(Reason("kunya_only", "kunya", fa["kunya"].text, fb["given"].text))
    elif "given" not in compared and "kunya" in fb and "given" in fa and "given" not in fb:
        out.append(Reason("kunya_only", "kunya", fb["kunya"].text, fa["given"].text))
    for part in PARTS:
        if part in compared or (part in fa) == (part in fb):
            continue
        if part in ("given", "kunya") and any(r.code == "kunya_only" for r in out):
            continue
        only = fa.get(part) or fb.get(part)
        if only is not None and not any(only.text in (m.a, m.b) for m in matches):
            out.append(Reason("missing", part, only.text))  # unless compared elsewhere
    return out


# --------------------------------------------------------------------------- wording


def describe(reason: Reason, lang: str = "en") -> str:
    """One reason as a sentence in the reader's language (English text is the msgid)."""
    template = REASONS.get(reason.code, reason.code)
    return translate(
        template,
        lang,
        part=gettext(PART_LABELS.get(reason.part or "", reason.part or ""), lang),
        other_part=gettext(PART_LABELS.get(reason.other_part or "", reason.other_part or ""), lang),
        a=reason.a or "",
        b=reason.b or "",
    )


def explain(match: NameMatch, lang: str = "en") -> list[str]:
    """The verdict, then every reason, as sentences."""
    return [gettext(VERDICTS[match.verdict], lang), *(describe(r, lang) for r in match.reasons)]
