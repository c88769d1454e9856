"""Synthetic lists of the dead with known truth, to measure linkage honestly.

Real lists cannot be published with their truth, so the linkage is measured on lists
made here the way documentation groups make theirs: families (brothers share a father,
grandfather, mother and family name; cousins share a grandfather and family name),
given and family names drawn with the skew of real lists (a few names are very common),
and one error model per source: its script, how many name parts it writes,
transliteration variants, dropped or swapped parts, a kunya instead of the name, typos,
ages and dates off by a little, fields left empty. `hard` turns every error up.

Deterministic for a seed. Names come from the variant table (`data/given_names.json`)
and `data/family_names.json`; places from `data/synth_places.json`.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

Level = Literal["easy", "hard"]
COLUMNS = (
    "record_id",
    "source",
    "full_name",
    "father_name",
    "mother_name",
    "sex",
    "age",
    "birth_year",
    "date",
    "place",
    "governorate",
    "status",
)


@dataclass(frozen=True)
class SourceProfile:
    """How one documentation group writes its list."""

    name: str
    latin: float  # share of rows written in Latin letters
    parts: tuple[int, ...]  # how many name parts it writes (drawn uniformly)
    coverage: float  # share of all people it lists
    father_column: bool  # gives the father's name in its own column
    mother: float  # share of rows with the mother's name
    birth_year: bool  # records a year of birth instead of an age


PROFILES = (
    SourceProfile("vdc", 0.0, (4, 4, 3), 0.70, False, 0.5, False),
    SourceProfile("snhr", 0.0, (3, 4, 2), 0.60, False, 0.2, False),
    SourceProfile("ngo_en", 1.0, (3, 2, 4), 0.45, True, 0.0, True),
    SourceProfile("local", 0.35, (2, 3), 0.40, False, 0.1, False),
)


@dataclass(frozen=True)
class Errors:
    latin_variant: float  # a less usual Latin spelling
    article: float  # al- dropped or added
    typo: float  # one letter changed, dropped, doubled or swapped, per part
    kunya: float  # Abu/Umm X instead of the given name
    swap: float  # family name written first
    age: float  # age or birth year off by 1-2
    date: float  # date off by 1-10 days
    missing: float  # each of sex, age, date, place left empty
    hamza: float  # hamza and ta marbuta written loosely
    repeat: float  # the same person twice in one list (reported twice, merged lists)


ERRORS: dict[str, Errors] = {
    "easy": Errors(0.3, 0.1, 0.02, 0.0, 0.0, 0.1, 0.1, 0.05, 0.2, 0.01),
    "hard": Errors(0.6, 0.3, 0.05, 0.04, 0.03, 0.35, 0.35, 0.2, 0.5, 0.03),
}


@dataclass(frozen=True)
class Person:
    pid: int
    sex: str
    given: int  # index in the given-name table
    father: int
    grandfather: int
    family: int
    mother: int
    kunya_son: int  # the given name in his kunya (Abu X) or hers (Umm X)
    birth: int
    died: date
    place: int


@cache
def _data(name: str) -> dict[str, Any]:
    with resources.files("athar.linkage.data").joinpath(name).open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _names(sex: str) -> list[dict[str, Any]]:
    table = _data("given_names.json")["names"]
    return [n for n in table if n["sex"] in (sex, "u") and n["latin"]]


class _Zipf:
    """Index i drawn with weight 1/(i+1)^s: the first names of a table are the most
    common, as محمد and أحمد are in every Syrian list."""

    def __init__(self, n: int, s: float = 1.0) -> None:
        self.weights = [1.0 / (i + 1) ** s for i in range(n)]
        self.cum: list[float] = []
        total = 0.0
        for w in self.weights:
            total += w
            self.cum.append(total)

    def draw(self, rng: random.Random) -> int:
        return rng.choices(range(len(self.weights)), cum_weights=self.cum)[0]


def people(n: int, rng: random.Random) -> list[Person]:
    """n people in clans: cousins share a grandfather and family name, brothers and
    sisters also share a father and mother."""
    male, female = _names("m"), _names("f")
    families = _data("family_names.json")["names"]
    places = _data("synth_places.json")["places"]
    zm, zf, zfam = _Zipf(len(male)), _Zipf(len(female)), _Zipf(len(families), 0.8)
    out: list[Person] = []
    while len(out) < n:
        family, grandfather = zfam.draw(rng), zm.draw(rng)
        place = rng.randrange(len(places))
        for _ in range(rng.choice((1, 1, 2, 3))):
            father, mother = zm.draw(rng), zf.draw(rng)
            father_born = rng.randint(1935, 1985)
            siblings: set[tuple[str, int]] = set()  # parents do not name two children alike
            for _ in range(rng.choice((1, 2, 2, 3, 4))):
                sex = "m" if rng.random() < 0.75 else "f"
                given = (zm if sex == "m" else zf).draw(rng)
                if (sex, given) in siblings:
                    continue
                siblings.add((sex, given))
                died = date(2011, 3, 15) + timedelta(days=rng.randrange(2900))
                born = father_born + rng.randint(18, 45)
                if born >= died.year:
                    born = died.year - rng.randint(0, 12)
                out.append(
                    Person(
                        len(out),
                        sex,
                        given,
                        father,
                        grandfather,
                        family,
                        mother,
                        zm.draw(rng),
                        born,
                        died,
                        place if rng.random() < 0.8 else rng.randrange(len(places)),
                    )
                )
                if len(out) == n:
                    return out
    return out


_TYPO_AR = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
_TYPO_LATIN = "abdefghiklmnorstuyz"
_HAMZA = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ة": "ه", "ى": "ي"})


class _Writer:
    def __init__(self, rng: random.Random, errors: Errors) -> None:
        self.rng = rng
        self.e = errors
        self.male, self.female = _names("m"), _names("f")
        self.families = _data("family_names.json")["names"]
        self.places = _data("synth_places.json")["places"]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def given(self, index: int, sex: str, latin: bool) -> str:
        entry = (self.male if sex == "m" else self.female)[index]
        if not latin:
            return self._ar(self.rng.choice(entry["ar"]))
        spellings: list[str] = entry["latin"]
        usual = spellings[: min(2, len(spellings))]
        return self.rng.choice(spellings if self.chance(self.e.latin_variant) else usual)

    def family(self, index: int, latin: bool) -> str:
        entry = self.families[index]
        if latin:
            spellings: list[str] = entry["latin"]
            return self.rng.choice(
                spellings if self.chance(self.e.latin_variant) else spellings[:1]
            )
        name: str = entry["ar"]
        if self.chance(self.e.article):
            name = name[2:] if name.startswith("ال") and len(name) > 4 else "ال" + name
        return self._ar(name)

    def _ar(self, text: str) -> str:
        return text.translate(_HAMZA) if self.chance(self.e.hamza) else text

    def typo(self, text: str) -> str:
        if len(text) < 4 or not self.chance(self.e.typo):
            return text
        alphabet = _TYPO_AR if "\u0600" <= text[0] <= "\u06ff" else _TYPO_LATIN
        i = self.rng.randrange(1, len(text) - 1)
        kind = self.rng.randrange(4)
        if kind == 0:
            return text[:i] + self.rng.choice(alphabet) + text[i + 1 :]
        if kind == 1:
            return text[:i] + text[i + 1 :]
        if kind == 2:
            return text[:i] + text[i] + text[i:]
        return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]

    def record(self, p: Person, src: SourceProfile, rid: str) -> dict[str, str]:
        latin = self.chance(src.latin)
        given = self.typo(self.given(p.given, p.sex, latin))
        father = self.typo(self.given(p.father, "m", latin))
        grandfather = self.typo(self.given(p.grandfather, "m", latin))
        family = self.typo(self.family(p.family, latin))
        n_parts = self.rng.choice(src.parts)
        father_col = ""
        if self.chance(self.e.kunya):  # known by his kunya: "Abu Khalid Hamwi"
            male = p.sex == "m"
            marker = ("Abu " if male else "Umm ") if latin else ("أبو " if male else "أم ")
            parts = [marker + self.given(p.kunya_son, "m", latin), family]
        elif src.father_column:
            parts = [given, family]
            father_col = father
        elif n_parts >= 4:
            parts = [given, father, grandfather, family]
        elif n_parts == 3:
            parts = [given, father, family]
        else:
            parts = [given, family]
        if self.chance(self.e.swap) and latin:
            parts = [parts[-1].upper(), *parts[:-1]]
        mother = ""
        if self.chance(src.mother):
            mother = self.given(p.mother, "f", latin)
        place = self.places[p.place]
        year = p.birth + (self.rng.choice((-2, -1, 1, 2)) if self.chance(self.e.age) else 0)
        died = p.died + (
            timedelta(days=self.rng.choice((-10, -3, -2, -1, 1, 2, 5)))
            if self.chance(self.e.date)
            else timedelta()
        )
        row = {
            "record_id": rid,
            "source": src.name,
            "full_name": " ".join(parts),
            "father_name": father_col,
            "mother_name": mother,
            "sex": p.sex if not self.chance(self.e.missing) else "",
            "age": "" if src.birth_year else str(max(0, died.year - year)),
            "birth_year": str(year) if src.birth_year else "",
            "date": died.isoformat() if not self.chance(self.e.missing) else "",
            "place": (place["latin"] if latin else place["ar"])
            if not self.chance(self.e.missing)
            else "",
            "governorate": place["governorate"],
            "status": "killed",
        }
        if self.chance(self.e.missing):
            row["age"] = row["birth_year"] = ""
        return row


def generate(
    n_people: int, level: Level = "hard", seed: int = 7
) -> tuple[list[dict[str, str]], dict[str, int]]:
    """Rows of every source's list (shuffled) and the truth: record id → person id.
    Each person is on at least one list; on each list at most once."""
    if level not in ERRORS:
        raise ValueError(f"level must be easy or hard, not {level!r}")
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible by design
    writer = _Writer(rng, ERRORS[level])
    rows: list[dict[str, str]] = []
    truth: dict[str, int] = {}
    for person in people(n_people, rng):
        listed = [s for s in PROFILES if rng.random() < s.coverage] or [rng.choice(PROFILES)]
        listed += [s for s in listed if rng.random() < writer.e.repeat]
        for src in listed:
            rid = f"{src.name}-{len(rows):07d}"
            rows.append(writer.record(person, src, rid))
            truth[rid] = person.pid
    rng.shuffle(rows)
    return rows, truth


def write(rows: list[dict[str, str]], truth: dict[str, int], out: Path) -> tuple[Path, Path]:
    """lists.csv (all sources in one file, as `athar link dedupe` reads) and truth.csv
    (record_id, person_id) in the folder *out*."""
    out.mkdir(parents=True, exist_ok=True)
    lists, truth_file = out / "lists.csv", out / "truth.csv"
    with lists.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    with truth_file.open("w", encoding="utf-8", newline="") as f:
        tw = csv.writer(f)
        tw.writerow(("record_id", "person_id"))
        tw.writerows((rid, f"p{pid}") for rid, pid in truth.items())
    return lists, truth_file
