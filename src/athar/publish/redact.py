"""Finding protected names in free text, in any spelling, and replacing them.

People and sources marked protected (the `protection` vocabulary: anything but
"public"; a source with no protection level set counts as protected, a person does
not) are known by every name field they have. Each name becomes a set of targets — the
full name, given + family, given + father, the kunya — in the cross-script key space of
the linkage name handling, where محمد, Mohammad, Muhammad and Mohamed are one key. Free
text is cut into words with their positions; every run of words whose key matches a
target (word by word, exactly or with a Jaro–Winkler similarity of 0.9 for longer
words) is a hit, reported for review and replaced by the record's pseudonym.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import JaroWinkler

from athar.linkage.arabic import token_script
from athar.linkage.names import parse_name
from athar.linkage.translit import name_key
from athar.publish.pseudonyms import Pseudonyms

PROTECTED_LEVELS = ("pseudonymise", "confidential", "secret")
HIDDEN_LEVELS = ("confidential", "secret")  # never appear as records, even pseudonymised
SIMILAR = 0.9
SIMILAR_MIN_LEN = 4
# letters and digits with the Arabic marks that sit inside words (harakat, tatweel);
# "_", "-" and "'" separate words, so file names (IMG_mohammad-halabi.jpg) are scanned too
WORD = re.compile(r"[^\W_](?:[^\W_]|[\u0610-\u061A\u064B-\u065F\u0670\u0640\u06D6-\u06ED])*")
NAME_FIELDS_AR = ("given", "father", "grandfather", "family", "kunya", "full")


@dataclass(frozen=True)
class Target:
    record_id: str
    record_type: str
    keys: tuple[str, ...]  # word keys, in order


@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    text: str
    record_id: str
    record_type: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def is_protected(record_type: str, data: dict[str, Any]) -> bool:
    level = data.get("protection")
    if record_type == "source":
        return level != "public"
    return record_type == "person" and level in PROTECTED_LEVELS


def is_hidden(record_type: str, data: dict[str, Any]) -> bool:
    return is_protected(record_type, data) and (
        data.get("protection") in HIDDEN_LEVELS or (record_type == "source" and not data)
    )


def name_texts(record_type: str, data: dict[str, Any]) -> list[str]:
    """Every name a protected record is known by, as written."""
    if record_type == "source":
        return [str(data[k]) for k in ("name",) if data.get(k)]
    texts: list[str] = []
    for prefix in ("name_ar", "name_latin"):
        full = data.get(f"{prefix}.full")
        parts = [data.get(f"{prefix}.{p}") for p in ("given", "father", "grandfather", "family")]
        composed = " ".join(str(p) for p in parts if p)
        texts += [str(t) for t in (full, composed, data.get(f"{prefix}.kunya")) if t]
    return texts


def _keys(text: str) -> tuple[str, ...]:
    return tuple(name_key(text).split())


def targets_for(record_id: str, record_type: str, data: dict[str, Any]) -> list[Target]:
    out: set[tuple[str, ...]] = set()
    for text in name_texts(record_type, data):
        full = _keys(text)
        if not full:
            continue
        if len(full) == 1:  # a single word (a nickname, a kunya written together)
            out.add(full)
            continue
        out.add(full)
        parts = parse_name(text)
        for combo in ((parts.given, parts.family), (parts.given, parts.father), (parts.kunya,)):
            words = [w for w in combo if w]
            keyed = _keys(" ".join(words)) if len(words) == len(combo) else ()
            if keyed and (len(keyed) > 1 or (parts.kunya and combo == (parts.kunya,))):
                out.add(keyed)
    return [Target(record_id, record_type, keys) for keys in sorted(out)]


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    return min(len(a), len(b)) >= SIMILAR_MIN_LEN and JaroWinkler.similarity(a, b) >= SIMILAR


@dataclass
class Redactor:
    pseudonyms: Pseudonyms
    targets: list[Target] = field(default_factory=list)
    protected: dict[str, str] = field(default_factory=dict)  # record id -> record type

    def protect(self, record_id: str, record_type: str, data: dict[str, Any]) -> None:
        self.protected[record_id] = record_type
        self.targets += targets_for(record_id, record_type, data)

    def scan(self, text: str) -> list[Hit]:
        """Runs of words that spell a protected name, longest first, not overlapping."""
        if not text or not self.targets:
            return []
        spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
        # articles, "bin" and split spellings (Sa'id, al-Halabi) add words to a run
        longest = 2 * max(len(t.keys) for t in self.targets) + 2
        hits: list[Hit] = []
        i = 0
        while i < len(spans):
            best: tuple[int, Target] | None = None
            for n in range(min(longest, len(spans) - i), 0, -1):
                start, end = spans[i][0], spans[i + n - 1][1]
                keys = _keys(text[start:end])
                if not keys:
                    continue
                for target in self.targets:
                    if len(target.keys) == len(keys) and all(
                        _same_word(a, b) for a, b in zip(keys, target.keys, strict=True)
                    ):
                        best = (n, target)
                        break
                if best:
                    break
            if best is None:
                i += 1
                continue
            n, target = best
            start, end = spans[i][0], spans[i + n - 1][1]
            hits.append(Hit(start, end, text[start:end], target.record_id, target.record_type))
            i += n
        return hits

    def redact(self, text: str, lang: str | None = None) -> tuple[str, list[Hit]]:
        """The text with each hit replaced by its record's pseudonym (in the text's own
        script unless *lang* is given)."""
        hits = self.scan(text)
        out = text
        for hit in reversed(hits):
            use = lang or ("ar" if token_script(hit.text.split()[0]) == "ar" else "en")
            pseudonym = self.pseudonyms.name(hit.record_id, hit.record_type, use)
            out = out[: hit.start] + pseudonym + out[hit.end :]
        return out, hits
