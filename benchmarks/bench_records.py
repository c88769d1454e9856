"""Records: rebuild from 1,000,000 events, search over 1,000,000 people, CSV import.

Three goals of the records issue, each against a peer measured in the same run:

1. Rebuild of the projection from 1,000,000 ledger events, goal <= 60 s.
   Build (timed and reported, not the result): a vault whose ledger holds 1,000,000
   single-record events, a realistic mix made through ``Records.commit`` in batches of
   10,000 (55 % person creations with Arabic names, 15 % status records of those people,
   10 % incidents, 15 % edits, 5 % incident -> victim links). Bodies are built directly in
   the canonical shape of athar.records.events with ``Records.event_body`` (so the
   clock ticks as in the app); a sample of every kind is checked to read back unchanged
   through ``validate.parse_fields`` from its text form. Timed: ``Records.rebuild()`` in
   a child process on the embedded (SQLCipher) store: wall time, events/s, peak RSS
   (wait4); record counts must equal those before. One repeat runs ``athar rebuild
   --json`` instead (start-up and Argon2id unlock included).
   Peers: the read floor (every event decrypted and parsed with
   ``vault.ledger.events_after``, nothing else) and a plain SQLite load (stdlib sqlite3,
   no encryption, no SQLAlchemy) of the rows the rebuilt projection holds (records,
   terms, links, history and the FTS5 documents) from Python tuples built beforehand,
   with the same bulk settings and index-after-load order as the rebuild.

2. Search latency over 1,000,000 people, goal p95 <= 50 ms.
   A vault of 1,000,000 people (half of them with a status row, so 1,500,000 records)
   imported with ``csvimport.import_csv`` from generated CSV lists (Syrian Arabic names
   with realistic frequencies, Latin transliterations for a quarter). At least 300
   queries in categories (very common names, given+family, three-part names, rare names,
   spelling variants, prefixes, Latin, no match, with filters) through
   ``Records.find(query, Filters(...), limit=50)``, one warm-up pass, then the median of
   three timed passes per query; p50/p95/max overall and per category. Peer: the very
   SQL statements Records.find sent (captured from SQLAlchemy) run with the stdlib
   sqlite3 module on an unencrypted copy of the same rows and FTS5 documents. The same
   queries also run on a PostgreSQL store (``Records(vault, url)``) loaded from a ledger
   of 100,000 of those people (loading runs at ~600 records/s, so not the full million;
   --pg-people changes it), on a throwaway server (tests/pgserver.py; fsync off).

3. CSV import of 100,000 people, goal >= 5,000 rows/s.
   Two files: people only, and people with a status per row (two records a row). Timed:
   ``csvimport.import_csv`` on a fresh vault (created outside the timing), then the
   re-import of the same file (idempotent: every row unchanged). Peer: Python csv ->
   stdlib sqlite3 executemany into a table of the same columns, WAL, synchronous=FULL,
   one transaction (no parsing, signing or encryption).

Sizes scale with --scale or $ATHAR_BENCH_SCALE (0.01 = a one-minute smoke run). Data
lives under $ATHAR_BENCH_RECORDS_DIR (default /tmp/athar-bench-records, with a
-scale<N> suffix for other scales), never in the
repository; built vaults are reused while the code that made them and the sizes are
unchanged (--rebuild forces a new build). With --doc the "Records" section of
docs/benchmarks.md is replaced (or appended).

    python benchmarks/bench_records.py [--scale 1] [--repeats 3] [--parts rebuild,search,import]
                                       [--pg-people N | --no-pg] [--rebuild] [--doc]
"""

from __future__ import annotations

import argparse
import calendar
import csv
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchcommon import (
    PASSPHRASE,
    REPO,
    Noise,
    athar_bin,
    athar_env,
    check_disk,
    emit,
    log,
    median,
    mib,
    source_fingerprint,
    wait_for_quiet,
)

ROOT = Path(os.environ.get("ATHAR_BENCH_RECORDS_DIR", "/tmp/athar-bench-records"))
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "## 4. Records"
GENERATOR_VERSION = "3"  # bump when the generated data changes

REBUILD_EVENTS = 1_000_000
SEARCH_PEOPLE = 1_000_000
# Loading a PostgreSQL store from the ledger ran at about 600 records/s here for 200,000
# people (300,000 records: 518 s), so by default it gets 100,000 people (150,000 records);
# --pg-people 200000 (or 1000000) asks for more.
PG_PEOPLE = 100_000
IMPORT_ROWS = 100_000
COMMIT_BATCH = 10_000
SEARCH_FILE_ROWS = 100_000
GOAL_REBUILD_S = 60.0
GOAL_P95_MS = 50.0
GOAL_ROWS_PER_S = 5_000
SEARCH_PASSES = 3
LIMIT = 50


# ----------------------------------------------------------------------------------------
# Names, places and dates: the vocabulary of Syrian casualty and detention lists
# ----------------------------------------------------------------------------------------

# (name, weight, Latin spellings). Weights follow the shape of real lists: محمد is by far
# the commonest given name, a handful of others follow, then a long tail.
MALE = [
    ("محمد", 140, ("Mohammad", "Muhammad", "Mohamed", "Mohammed")),
    ("أحمد", 55, ("Ahmad", "Ahmed")),
    ("علي", 32, ("Ali",)),
    ("محمود", 26, ("Mahmoud", "Mahmud")),
    ("خالد", 24, ("Khaled", "Khalid")),
    ("عمر", 22, ("Omar", "Umar")),
    ("عبد الله", 22, ("Abdullah", "Abdallah")),
    ("حسن", 18, ("Hasan", "Hassan")),
    ("مصطفى", 16, ("Mustafa", "Moustafa")),
    ("إبراهيم", 16, ("Ibrahim",)),
    ("يوسف", 15, ("Yousef", "Yusuf")),
    ("حسين", 15, ("Hussein", "Husayn")),
    ("عبد الرحمن", 14, ("Abdulrahman", "Abd al-Rahman")),
    ("إسماعيل", 8, ("Ismail",)),
    ("عبد الكريم", 7, ("Abdulkarim",)),
    ("عبد الرزاق", 6, ("Abdulrazzaq",)),
    ("ياسر", 8, ("Yasser", "Yasir")),
    ("وليد", 7, ("Walid", "Waleed")),
    ("سامر", 6, ("Samer",)),
    ("سامي", 5, ("Sami",)),
    ("سليمان", 7, ("Suleiman", "Sulayman")),
    ("فادي", 5, ("Fadi",)),
    ("ماهر", 5, ("Maher",)),
    ("رامي", 5, ("Rami",)),
    ("عماد", 5, ("Imad",)),
    ("زياد", 5, ("Ziad", "Ziyad")),
    ("جمال", 5, ("Jamal",)),
    ("نبيل", 4, ("Nabil",)),
    ("طارق", 5, ("Tariq", "Tarek")),
    ("باسل", 4, ("Basel",)),
    ("أيمن", 5, ("Ayman",)),
    ("عادل", 4, ("Adel",)),
    ("مازن", 4, ("Mazen",)),
    ("مهند", 4, ("Muhannad",)),
    ("قاسم", 4, ("Qasim", "Kassem")),
    ("حمزة", 6, ("Hamza",)),
    ("أنس", 5, ("Anas",)),
    ("معاذ", 4, ("Muath",)),
    ("بلال", 5, ("Bilal",)),
    ("عثمان", 4, ("Othman",)),
    ("هيثم", 4, ("Haitham",)),
    ("غسان", 3, ("Ghassan",)),
    ("فراس", 3, ("Firas",)),
    ("ناصر", 4, ("Nasser",)),
    ("سعيد", 5, ("Said", "Saeed")),
    ("صالح", 5, ("Saleh",)),
    ("موسى", 5, ("Musa", "Moussa")),
    ("عيسى", 3, ("Issa",)),
    ("جهاد", 3, ("Jihad",)),
    ("رياض", 3, ("Riad",)),
    ("منير", 2, ("Munir",)),
    ("مؤمن", 2, ("Moamen",)),
    ("مؤيد", 2, ("Muayad",)),
    ("لؤي", 2, ("Louay",)),
    ("أسامة", 4, ("Osama", "Usama")),
    ("عبد الحميد", 3, ("Abdulhamid",)),
    ("عبد القادر", 4, ("Abdulqader",)),
    ("عبد السلام", 3, ("Abdulsalam",)),
    ("ضياء", 1, ("Diaa",)),
    ("زهير", 1, ("Zuhair",)),
    ("شادي", 2, ("Shadi",)),
    ("نزار", 1, ("Nizar",)),
    ("مجد", 2, ("Majd",)),
    ("كنان", 1, ("Kinan",)),
    ("ثائر", 1, ("Thaer",)),
    ("غياث", 1, ("Ghiath",)),
    ("حازم", 1, ("Hazem",)),
    ("صهيب", 1, ("Suhaib",)),
    ("يامن", 1, ("Yamen",)),
    ("عدنان", 2, ("Adnan",)),
]
FEMALE = [
    ("فاطمة", 40, ("Fatima", "Fatma")),
    ("مريم", 18, ("Maryam", "Mariam")),
    ("عائشة", 12, ("Aisha",)),
    ("خديجة", 12, ("Khadija",)),
    ("زينب", 12, ("Zainab", "Zeinab")),
    ("آمنة", 10, ("Amina",)),
    ("هدى", 6, ("Huda",)),
    ("سارة", 6, ("Sara", "Sarah")),
    ("نور", 8, ("Nour", "Noor")),
    ("رنا", 4, ("Rana",)),
    ("ريم", 5, ("Reem",)),
    ("لينا", 3, ("Lina",)),
    ("سلمى", 4, ("Salma",)),
    ("سمر", 3, ("Samar",)),
    ("هبة", 4, ("Heba",)),
    ("رغد", 2, ("Raghad",)),
    ("إيمان", 5, ("Iman", "Eman")),
    ("أسماء", 5, ("Asmaa", "Asma")),
    ("رقية", 4, ("Ruqayya",)),
    ("حنان", 3, ("Hanan",)),
    ("وفاء", 3, ("Wafaa",)),
    ("سعاد", 3, ("Suad",)),
    ("ليلى", 3, ("Layla", "Laila")),
    ("منى", 3, ("Mona", "Muna")),
    ("رهف", 3, ("Rahaf",)),
    ("بتول", 2, ("Batoul",)),
    ("شهد", 3, ("Shahd",)),
    ("جنى", 3, ("Jana",)),
    ("دعاء", 3, ("Duaa",)),
    ("نادية", 2, ("Nadia",)),
    ("سميرة", 2, ("Samira",)),
    ("ياسمين", 2, ("Yasmin",)),
    ("رؤى", 1, ("Roaa",)),
    ("غفران", 1, ("Ghufran",)),
]
# The commoner family names (with Latin spellings where lists commonly give one); a
# synthetic tail of a few thousand rarer ones is added by _tail_families().
FAMILIES = [
    ("الحلبي", ("al-Halabi", "Halabi")),
    ("الحمصي", ("al-Homsi", "Homsi")),
    ("الشامي", ("al-Shami", "Shami")),
    ("الخطيب", ("al-Khatib", "Khatib")),
    ("المصري", ("al-Masri",)),
    ("العلي", ("al-Ali",)),
    ("الأحمد", ("al-Ahmad",)),
    ("الحسن", ("al-Hasan",)),
    ("الحسين", ("al-Hussein",)),
    ("الخليل", ("al-Khalil",)),
    ("الديري", ("al-Deiri",)),
    ("الإدلبي", ("al-Idlibi", "Idlibi")),
    ("الحوراني", ("al-Hourani", "Hourani")),
    ("الزعبي", ("al-Zoubi", "Zoubi")),
    ("المحمد", ("al-Mohammad",)),
    ("العمر", ("al-Omar",)),
    ("الشيخ", ("al-Sheikh",)),
    ("النجار", ("al-Najjar", "Najjar")),
    ("الحداد", ("al-Haddad", "Haddad")),
    ("السيد", ("al-Sayed",)),
    ("القاسم", ("al-Qasim",)),
    ("الرفاعي", ("al-Rifai",)),
    ("الجاسم", ("al-Jasim",)),
    ("حمود", ("Hammoud",)),
    ("درويش", ("Darwish",)),
    ("عثمان", ("Othman",)),
    ("سليمان", ("Suleiman",)),
    ("قدور", ("Qaddour",)),
    ("زيدان", ("Zaidan",)),
    ("عبود", ("Abboud",)),
    ("شحادة", ("Shehadeh",)),
    ("الأسعد", ("al-Asaad",)),
    ("البكري", ("al-Bakri",)),
    ("الكردي", ("al-Kurdi", "Kurdi")),
    ("التركماني", ("al-Turkmani",)),
    ("الحمود", ("al-Hamoud",)),
    ("الجمعة", ("al-Jumaa",)),
    ("الصالح", ("al-Saleh",)),
    ("الخضر", ("al-Khidr",)),
    ("المحمود", ("al-Mahmoud",)),
    ("العيسى", ("al-Issa",)),
    ("المصطفى", ("al-Mustafa",)),
    ("الحاج", ("al-Hajj",)),
    ("الدالي", ("al-Dali",)),
    ("دياب", ("Diab",)),
    ("حجازي", ("Hijazi",)),
    ("طه", ("Taha",)),
    ("العبد الله", ("al-Abdullah",)),
    ("الموسى", ("al-Mousa",)),
    ("الحريري", ("al-Hariri", "Hariri")),
    ("المقداد", ("al-Miqdad",)),
    ("الشهابي", ("al-Shihabi",)),
    ("البيطار", ("al-Bitar",)),
    ("العطار", ("al-Attar",)),
    ("السقا", ("al-Saqqa",)),
    ("الدباغ", ("al-Dabbagh",)),
    ("الخياط", ("al-Khayyat",)),
    ("الطحان", ("al-Tahhan",)),
    ("الجندي", ("al-Jundi",)),
    ("الأيوبي", ("al-Ayoubi",)),
    ("الدمشقي", ("al-Dimashqi",)),
    ("الحموي", ("al-Hamawi",)),
    ("الرقاوي", ("al-Raqqawi",)),
    ("الدرعاوي", ("al-Daraawi",)),
    ("خلف", ("Khalaf",)),
    ("حسون", ("Hassoun",)),
    ("ابراهيم", ("Ibrahim",)),
    ("يوسف", ("Yousef",)),
    ("مرعي", ("Marei",)),
    ("نعسان", ("Naasan",)),
    ("بكور", ("Bakkour",)),
    ("عساف", ("Assaf",)),
    ("العثمان", ("al-Othman",)),
    ("الحمادة", ("al-Hamada",)),
    ("الفارس", ("al-Fares",)),
    ("العبيد", ("al-Obaid",)),
    ("الشمري", ("al-Shammari",)),
    ("العنزي", ("al-Anazi",)),
    ("الجبوري", ("al-Jubouri",)),
    ("البريدي", ()),
    ("القطان", ()),
    ("الحراكي", ()),
    ("الغزاوي", ()),
    ("الكيلاني", ("al-Kilani",)),
    ("المعراوي", ()),
    ("السراقبي", ()),
    ("الشغري", ()),
    ("الأتاسي", ("al-Atassi", "Atassi")),
    ("الدروبي", ("al-Droubi",)),
    ("الجمال", ()),
    ("الصباغ", ("al-Sabbagh",)),
    ("الأشقر", ()),
    ("بدران", ("Badran",)),
    ("رحال", ()),
    ("الحسيني", ()),
    ("اللبابيدي", ()),
    ("قباني", ("Qabbani",)),
    ("مراد", ("Murad",)),
]
# (Arabic, Latin, governorate, latitude, longitude, weight)
PLACES = [
    ("حلب", "Aleppo", "حلب", 36.2021, 37.1343, 14),
    ("حمص", "Homs", "حمص", 34.7324, 36.7137, 10),
    ("دوما", "Douma", "ريف دمشق", 33.5711, 36.4022, 8),
    ("إدلب", "Idlib", "إدلب", 35.9306, 36.6339, 7),
    ("درعا", "Daraa", "درعا", 32.6189, 36.1021, 7),
    ("داريا", "Darayya", "ريف دمشق", 33.4581, 36.2369, 6),
    ("دير الزور", "Deir ez-Zor", "دير الزور", 35.3359, 40.1408, 6),
    ("دمشق", "Damascus", "دمشق", 33.5138, 36.2765, 6),
    ("حماة", "Hama", "حماة", 35.1318, 36.7578, 5),
    ("الرقة", "Raqqa", "الرقة", 35.9528, 39.0079, 4),
    ("حرستا", "Harasta", "ريف دمشق", 33.5586, 36.3650, 3),
    ("معرة النعمان", "Maarat al-Numan", "إدلب", 35.6433, 36.6706, 3),
    ("عربين", "Arbin", "ريف دمشق", 33.5392, 36.3640, 2),
    ("الزبداني", "Zabadani", "ريف دمشق", 33.7247, 36.1003, 2),
    ("معضمية الشام", "Moadamiyat al-Sham", "ريف دمشق", 33.4614, 36.1953, 2),
    ("الرستن", "Rastan", "حمص", 34.9267, 36.7325, 2),
    ("سراقب", "Saraqib", "إدلب", 35.8647, 36.8006, 2),
    ("خان شيخون", "Khan Shaykhun", "إدلب", 35.4419, 36.6506, 2),
    ("جسر الشغور", "Jisr al-Shughur", "إدلب", 35.8125, 36.3181, 2),
    ("منبج", "Manbij", "حلب", 36.5281, 37.9550, 2),
    ("الباب", "al-Bab", "حلب", 36.3706, 37.5156, 2),
    ("اللاذقية", "Latakia", "اللاذقية", 35.5317, 35.7917, 2),
    ("مضايا", "Madaya", "ريف دمشق", 33.6883, 36.0972, 1),
    ("تلبيسة", "Talbiseh", "حمص", 34.8406, 36.7306, 1),
    ("الحولة", "Houla", "حمص", 34.8861, 36.5311, 1),
    ("القصير", "Qusayr", "حمص", 34.5089, 36.5800, 1),
    ("أريحا", "Ariha", "إدلب", 35.8133, 36.6086, 1),
    ("عفرين", "Afrin", "حلب", 36.5117, 36.8692, 1),
    ("البوكمال", "Abu Kamal", "دير الزور", 34.4528, 40.9186, 1),
    ("الميادين", "Mayadin", "دير الزور", 35.0194, 40.4514, 1),
    ("بصرى الشام", "Busra al-Sham", "درعا", 32.5181, 36.4819, 1),
    ("نوى", "Nawa", "درعا", 32.8911, 36.0431, 1),
    ("انخل", "Inkhil", "درعا", 33.0167, 36.1333, 1),
    ("جاسم", "Jasim", "درعا", 32.9922, 36.0600, 1),
    ("جبلة", "Jableh", "اللاذقية", 35.3614, 35.9256, 1),
    ("طرطوس", "Tartus", "طرطوس", 34.8890, 35.8866, 1),
    ("بانياس", "Baniyas", "طرطوس", 35.1822, 35.9403, 1),
    ("الحسكة", "Hasakah", "الحسكة", 36.5024, 40.7477, 1),
    ("القامشلي", "Qamishli", "الحسكة", 37.0522, 41.2317, 1),
    ("السويداء", "Suwayda", "السويداء", 32.7089, 36.5695, 1),
]
# (term id, CSV label as lists write it, weight)
STATUSES = [
    ("killed", "قتيل", 60),
    ("detained", "معتقل", 25),
    ("missing", "مفقود", 10),
    ("disappeared", "مختف قسريا", 5),
]
INCIDENT_TITLES = [
    ("قصف جوي على سوق {p}", ["attack_on_market", "attack_on_civilians"], ["airstrike"]),
    ("مجزرة في {p}", ["massacre", "killing"], ["small_arms"]),
    ("قصف مدفعي على حي سكني في {p}", ["attack_on_residential_area"], ["artillery_shelling"]),
    ("استهداف المشفى الميداني في {p}", ["attack_on_hospital"], ["airstrike", "guided_missile"]),
    ("براميل متفجرة على {p}", ["use_of_barrel_bombs", "indiscriminate_attack"], ["barrel_bomb"]),
    ("حملة اعتقالات في {p}", ["arbitrary_detention", "enforced_disappearance"], []),
    ("هجوم كيميائي على {p}", ["use_of_chemical_weapons", "killing"], ["chemical", "chlorine"]),
    ("قصف مدرسة في {p}", ["attack_on_school"], ["airstrike"]),
    ("استهداف فرن {p}", ["attack_on_bakery", "attack_on_civilians"], ["rocket", "mortar"]),
    ("قنص مدنيين في {p}", ["killing", "attack_on_civilians"], ["sniper"]),
]
_TAIL_LETTERS = "بتجحخدرزسشصضطعغفقكلمنهوي"


def _tail_families(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    """Plausible rarer family names (the long tail of a national list)."""
    out: list[str] = []
    seen = set(taken)
    patterns = (
        lambda a, b, c: f"ال{a}{b}ا{c}ي",
        lambda a, b, c: f"{a}{b}و{c}",
        lambda a, b, c: f"ال{a}ا{b}{c}ي",
        lambda a, b, c: f"{a}ا{b}{c}ي",
        lambda a, b, c: f"أبو {a}{b}{c}",
        lambda a, b, c: f"ال{a}{b}{c}اوي",
    )
    while len(out) < count:
        a, b, c = (rng.choice(_TAIL_LETTERS) for _ in range(3))
        name = rng.choice(patterns)(a, b, c)
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _cum(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


class Generator:
    """Deterministic people, statuses and incidents in canonical field values."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        tail_rng = random.Random(7)  # the same tail in every data set
        self.tail = _tail_families(tail_rng, 4000, {f for f, _ in FAMILIES})
        self.tail_set = set(self.tail)
        self.families: list[tuple[str, tuple[str, ...]]] = [
            *FAMILIES,
            *((t, ()) for t in self.tail),
        ]
        head = [1.0 / (rank + 1) ** 0.7 for rank in range(len(FAMILIES))]
        head_share, tail_share = 0.7, 0.3
        scale = head_share / sum(head)
        self.family_cum = _cum([w * scale for w in head] + [tail_share / len(self.tail)] * 4000)
        self.male_cum = _cum([w for _, w, _ in MALE])
        self.female_cum = _cum([w for _, w, _ in FEMALE])
        self.place_cum = _cum([p[5] for p in PLACES])
        self.status_cum = _cum([s[2] for s in STATUSES])

    def _pick(self, items: Sequence[Any], cum: list[float]) -> Any:
        return self.rng.choices(items, cum_weights=cum)[0]

    def male(self) -> tuple[str, int, tuple[str, ...]]:
        item: tuple[str, int, tuple[str, ...]] = self._pick(MALE, self.male_cum)
        return item

    def place(self) -> tuple[str, str, str, float, float, int]:
        item: tuple[str, str, str, float, float, int] = self._pick(PLACES, self.place_cum)
        return item

    def person(self) -> dict[str, Any]:
        rng = self.rng
        female = rng.random() < 0.2
        given = self._pick(FEMALE, self.female_cum) if female else self.male()
        family, family_latin = self._pick(self.families, self.family_cum)
        fields: dict[str, Any] = {"name_ar.given": given[0]}
        if rng.random() < 0.75:
            fields["name_ar.father"] = self.male()[0]
            if rng.random() < 0.55:
                fields["name_ar.grandfather"] = self.male()[0]
        fields["name_ar.family"] = family
        if rng.random() < 0.25:
            fields["name_latin.given"] = rng.choice(given[2])
            if family_latin:
                fields["name_latin.family"] = rng.choice(family_latin)
        roll = rng.random()
        fields["sex"] = "female" if female else ("unknown" if roll < 0.02 else "male")
        if rng.random() < 0.85:
            fields["age"] = rng.randint(0, 17) if rng.random() < 0.22 else rng.randint(18, 85)
        if rng.random() < 0.9:
            place = self.place()
            fields["origin.name_ar"] = place[0]
            fields["origin.admin_area"] = place[2]
        return fields

    def date(self) -> dict[str, Any]:
        rng = self.rng
        year = rng.randint(2011, 2020)
        month = rng.randint(1, 12)
        roll = rng.random()
        if roll < 0.6:
            day = f"{year}-{month:02d}-{rng.randint(1, 28):02d}"
            return {"start": day, "end": day, "precision": "day", "approximate": False}
        if roll < 0.9:
            last = calendar.monthrange(year, month)[1]
            return {
                "start": f"{year}-{month:02d}-01",
                "end": f"{year}-{month:02d}-{last:02d}",
                "precision": "month",
                "approximate": rng.random() < 0.1,
            }
        return {
            "start": f"{year}-01-01",
            "end": f"{year}-12-31",
            "precision": "year",
            "approximate": False,
        }

    def status(self, person_id: str | None) -> dict[str, Any]:
        term = self._pick(STATUSES, self.status_cum)[0]
        fields: dict[str, Any] = {"status": term, "date": self.date()}
        if person_id is not None:
            fields["person"] = person_id
        if self.rng.random() < 0.8:
            fields["place.name_ar"] = self.place()[0]
        return fields

    def incident(self, terms: dict[str, list[str]]) -> dict[str, Any]:
        rng = self.rng
        place = self.place()
        title, violations, weapons = rng.choice(INCIDENT_TITLES)
        killed = rng.randint(0, 40)
        high = killed + rng.randint(0, 5)
        children = rng.randint(0, killed // 3)
        women = rng.randint(0, killed // 4)
        fields: dict[str, Any] = {
            "title.ar": title.format(p=place[0]),
            "date": self.date(),
            "place.name_ar": place[0],
            "place.name_latin": place[1],
            "place.admin_area": place[2],
            "place.coordinates": {
                "lat": round(place[3] + rng.uniform(-0.02, 0.02), 6),
                "lon": round(place[4] + rng.uniform(-0.02, 0.02), 6),
            },
            "violations": sorted(set(violations)),
            "killed.total": {"min": killed, "max": high},
            "killed.children": {"min": children, "max": children},
            "killed.women": {"min": women, "max": women},
            "injured.total": {"min": killed * 2, "max": killed * 3},
            "perpetrator.category": rng.choice(terms["perpetrator"]),
            "grading": rng.choice(terms["grading"]),
        }
        if weapons:
            fields["weapons"] = sorted(set(weapons))
        if rng.random() < 0.3:
            fields["description.ar"] = (
                f"أفاد شهود عيان بسقوط {killed} قتيلًا على الأقل في {place[0]}، "
                "بينهم أطفال ونساء، ونقل الجرحى إلى المشافي الميدانية."
            )
        return fields

    def person_edit(self) -> dict[str, Any]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            return {"age": rng.randint(1, 85)}
        if roll < 0.6:
            given = self.male()
            return {"name_latin.given": rng.choice(given[2])}
        if roll < 0.8:
            place = self.place()
            return {"origin.name_ar": place[0], "origin.admin_area": place[2]}
        return {"note": "تم التحقق من الاسم عبر شاهدين من العائلة"}

    def incident_edit(self, terms: dict[str, list[str]]) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.5:
            return {"grading": rng.choice(terms["grading"])}
        return {"description.ar": "تحديث: تأكد عدد الضحايا من مصدرين مستقلين."}

    def status_edit(self) -> dict[str, Any]:
        if self.rng.random() < 0.5:
            return {"date": self.date()}
        return {"status": "killed"}


# -- CSV rendering (what a documenter's spreadsheet holds) --------------------------------
PEOPLE_HEADER = [
    "name_ar.given",
    "name_ar.father",
    "name_ar.grandfather",
    "name_ar.family",
    "name_latin.given",
    "name_latin.family",
    "sex",
    "age",
    "origin.name_ar",
    "origin.admin_area",
]
STATUS_HEADER = [*PEOPLE_HEADER, "status", "status.date", "status.place.name_ar"]
_SEX_TEXT = {"male": ("ذكر", "male", "ذكر"), "female": ("أنثى", "female"), "unknown": ("",)}
_STATUS_TEXT = {t: (label, t) for t, label, _ in STATUSES}
_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def date_cell(rng: random.Random, value: dict[str, Any]) -> str:
    start, precision = value["start"], value["precision"]
    if precision == "year":
        text = start[:4]
    elif precision == "month":
        text = start[:7]
    elif rng.random() < 0.5:
        text = f"{start[8:10]}/{start[5:7]}/{start[:4]}"  # day first, as Syrian lists
    else:
        text = start
    return f"~{text}" if value.get("approximate") else text


def person_row(gen: Generator, fields: dict[str, Any], with_status: bool) -> list[str]:
    rng = gen.rng
    row = [str(fields.get(column, "")) for column in PEOPLE_HEADER]
    row[6] = rng.choice(_SEX_TEXT[fields["sex"]])
    if "age" in fields and rng.random() < 0.1:
        row[7] = row[7].translate(_INDIC)
    if with_status:
        status = gen.status(None)
        row += [
            rng.choice(_STATUS_TEXT[status["status"]]),
            date_cell(rng, status["date"]),
            status.get("place.name_ar", ""),
        ]
    return row


def write_people_csv(
    path: Path,
    gen: Generator,
    rows: int,
    status_share: float,
    seen: set[tuple[Any, ...]],
    sample: list[dict[str, Any]] | None = None,
) -> None:
    """*rows* distinct people (distinct across files through *seen*), a *status_share*
    of them with a status in the same row."""
    header = STATUS_HEADER if status_share > 0 else PEOPLE_HEADER
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        written = 0
        while written < rows:
            fields = gen.person()
            key = tuple(sorted(fields.items()))
            if key in seen:
                continue
            seen.add(key)
            with_status = status_share > 0 and gen.rng.random() < status_share
            row = person_row(gen, fields, with_status)
            if status_share > 0 and not with_status:
                row += ["", "", ""]
            out.writerow(row)
            written += 1
            rare = fields["name_ar.family"] in gen.tail_set and gen.rng.random() < 0.05
            if sample is not None and len(sample) < 40_000 and (written % 97 == 0 or rare):
                sample.append(fields)
    tmp.replace(path)


# ----------------------------------------------------------------------------------------
# Child processes: each step runs in its own process, so its peak RSS is its own
# ----------------------------------------------------------------------------------------


def vm_hwm_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _open(vault_dir: str, store_url: str | None = None) -> tuple[Any, Any]:
    from athar.records.service import Records
    from athar.vault.vault import Vault

    vault = Vault.open(Path(vault_dir), PASSPHRASE)
    return vault, Records(vault, store_url)


def _table_counts(records: Any) -> dict[str, int]:
    from sqlalchemy import text

    out = {f"records.{k}": v for k, v in sorted(records.counts().items())}
    with records.engine.connect() as conn:
        for table in ("records", "terms", "links", "history"):
            out[table] = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar())
    return out


def child_build_ledger(vault: str, events: int, seed: int) -> dict[str, Any]:
    """The rebuild vault: *events* single-record events committed in batches."""
    from athar.records import events as ev
    from athar.records import ids, schema
    from athar.records.formats import value_text
    from athar.records.service import Records
    from athar.records.validate import check_record, parse_fields
    from athar.vault.vault import Vault

    root = Path(vault)
    shutil.rmtree(root, ignore_errors=True)
    v = Vault.create(root, PASSPHRASE)
    records = Records(v)
    gen = Generator(seed)
    rng = gen.rng
    terms = {name: sorted(records.vocab.terms[name]) for name in ("perpetrator", "grading")}
    person_t, status_t, incident_t = (schema.TYPES[n] for n in ("person", "status", "incident"))
    people: list[str] = []
    incidents: list[str] = []
    statuses: list[str] = []
    made = {"person": 0, "status": 0, "incident": 0, "updated": 0, "linked": 0}
    checked: dict[str, int] = {}

    def check(kind: Any, fields: dict[str, Any], creating: bool) -> None:
        """A sample of every kind must read back unchanged from its text form."""
        key = f"{kind.name}.{'create' if creating else 'edit'}"
        if checked.get(key, 0) >= 200:
            return
        checked[key] = checked.get(key, 0) + 1
        text = {p: value_text(kind.fields[p], v) for p, v in fields.items()}
        parsed = parse_fields(kind, text, records.vocab, creating=creating)
        if parsed != fields or (creating and check_record(kind, parsed)):
            raise RuntimeError(f"generated {key} is not canonical: {fields} != {parsed}")

    started = time.perf_counter()
    commit_s = 0.0
    done = 0
    while done < events:
        changes: list[tuple[str, dict[str, Any]]] = []
        for _ in range(min(COMMIT_BATCH, events - done)):
            roll = rng.random()
            if roll < 0.55 or len(people) < 10:
                rid = ids.new_id("person")
                fields = gen.person()
                check(person_t, fields, True)
                changes.append((ev.RECORD_CREATED, records.event_body(rid, person_t, fields)))
                people.append(rid)
                made["person"] += 1
            elif roll < 0.70:
                rid = ids.new_id("status")
                fields = gen.status(rng.choice(people))
                check(status_t, fields, True)
                changes.append((ev.RECORD_CREATED, records.event_body(rid, status_t, fields)))
                statuses.append(rid)
                made["status"] += 1
            elif roll < 0.80 or not incidents:
                rid = ids.new_id("incident")
                fields = gen.incident(terms)
                check(incident_t, fields, True)
                changes.append((ev.RECORD_CREATED, records.event_body(rid, incident_t, fields)))
                incidents.append(rid)
                made["incident"] += 1
            elif roll < 0.95:
                which = rng.random()
                if which < 0.7:
                    kind, rid, fields = person_t, rng.choice(people), gen.person_edit()
                elif which < 0.9 or not statuses:
                    kind, rid = incident_t, rng.choice(incidents)
                    fields = gen.incident_edit(terms)
                else:
                    kind, rid, fields = status_t, rng.choice(statuses), gen.status_edit()
                check(kind, fields, False)
                changes.append((ev.RECORD_UPDATED, records.event_body(rid, kind, fields)))
                made["updated"] += 1
            else:
                body: dict[str, Any] = {
                    "src": rng.choice(incidents),
                    "src_type": "incident",
                    "rel": "victim",
                    "dst": rng.choice(people),
                    "present": True,
                    "attrs": {},
                    "clock": records.clock.tick(),
                }
                changes.append((ev.RECORD_LINKED, body))
                made["linked"] += 1
        t0 = time.perf_counter()
        records.commit(changes)
        commit_s += time.perf_counter() - t0
        done += len(changes)
        if done % 100_000 == 0 or done == events:
            log(f"  built {done:,}/{events:,} events ({time.perf_counter() - started:.0f} s)")
    build_s = time.perf_counter() - started
    counts = _table_counts(records)
    size = v.ledger.size()
    records.close()
    v.close()
    return {
        "events": events,
        "ledger_size": size,
        "made": made,
        "checked_samples": checked,
        "build_s": round(build_s, 2),
        "commit_s": round(commit_s, 2),
        "build_events_per_s": round(events / build_s),
        "counts": counts,
        "peak_rss_kib": vm_hwm_kib(),
    }


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child_rebuild(vault: str) -> dict[str, Any]:
    v, records = _open(vault)
    before = _table_counts(records)
    ready_kib = vm_hwm_kib()
    noise = Noise()
    own0, kids0 = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    stats = records.rebuild()
    seconds = time.perf_counter() - t0
    foreign = noise.foreign_cpu_s()
    # CPU of each side: the writer (this process) and the reader (its child process);
    # with other load on the machine these say more than the wall time
    writer_cpu = _cpu_s(resource.RUSAGE_SELF) - own0
    reader_cpu = _cpu_s(resource.RUSAGE_CHILDREN) - kids0
    after = _table_counts(records)
    size = v.ledger.size()
    records.close()
    v.close()
    return {
        "rebuild_s": seconds,
        "writer_cpu_s": round(writer_cpu, 2),
        "reader_cpu_s": round(reader_cpu, 2),
        "applied": stats.applied,
        "ignored": stats.ignored,
        "ledger_size": size,
        "counts_before": before,
        "counts_after": after,
        "counts_equal": before == after,
        "rss_before_rebuild_kib": ready_kib,
        "peak_rss_kib": vm_hwm_kib(),
        "foreign_cpu_s": round(foreign, 2),
    }


def child_read_floor(vault: str) -> dict[str, Any]:
    from athar.records.service import APPLY_BATCH
    from athar.vault.vault import Vault

    v = Vault.open(Path(vault), PASSPHRASE)
    noise = Noise()
    t0 = time.perf_counter()
    n = 0
    kinds: dict[str, int] = {}
    for batch in v.ledger.events_after(-1, APPLY_BATCH):
        n += len(batch)
        for _, signed in batch:  # touch the parsed event, as a projection would
            kinds[signed.event.kind] = kinds.get(signed.event.kind, 0) + 1
    seconds = time.perf_counter() - t0
    foreign = noise.foreign_cpu_s()
    v.close()
    return {
        "read_s": seconds,
        "events": n,
        "kinds": kinds,
        "peak_rss_kib": vm_hwm_kib(),
        "foreign_cpu_s": round(foreign, 2),
    }


def projection_rows(records: Any) -> dict[str, Any]:
    """Every row of the projection as Python tuples, and each record's FTS document (the
    same words the projection indexed: summary.search_terms)."""
    from athar.records import schema, summary

    engine = records.engine
    out: dict[str, Any] = {}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        schema_sql = cur.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'records_fts_%' AND name != 'alembic_version'"
        ).fetchall()
        out["schema"] = [(t, n, s) for t, n, s in schema_sql]
        for table in ("records", "terms", "links", "history", "meta"):
            out[table] = cur.execute(f"SELECT * FROM {table}").fetchall()
        cols = [d[1] for d in cur.execute("PRAGMA table_info(records)").fetchall()]
    finally:
        raw.close()
    idx = {c: i for i, c in enumerate(cols)}
    fts: list[tuple[int, str]] = []
    vocab = records.vocab
    for row in out["records"]:
        if row[idx["deleted"]]:
            continue
        kind = schema.TYPES[row[idx["type"]]]
        data = json.loads(row[idx["data"]])
        words = summary.search_terms(kind, row[idx["id"]], data, vocab)
        fts.append((row[idx["rid"]], " ".join(words)))
    out["fts"] = fts
    return out


def _plain_schema(statements: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """(tables, indexes) of the projection for a plain SQLite file. stdlib sqlite3 (3.40)
    lacks FTS5's contentless_delete; the index is otherwise the same."""
    tables, indexes = [], []
    for kind, _name, sql in statements:
        sql = sql.replace(", contentless_delete=1", "")
        (indexes if kind == "index" else tables).append(sql)
    return tables, indexes


def load_plain(
    db: Path, rows: dict[str, Any], chunk: int = 20_000, with_indexes: bool = True
) -> float:
    """Load *rows* into a new plain SQLite file as a rebuild would: no journal, no sync,
    secondary indexes after the load, one transaction per chunk. Returns seconds."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    tables, indexes = _plain_schema(rows["schema"])
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-131072")
    for sql in tables:
        conn.execute(sql)
    for table, sql in (
        ("records", "INSERT INTO records VALUES ({})"),
        ("terms", "INSERT INTO terms VALUES ({})"),
        ("links", "INSERT INTO links VALUES ({})"),
        ("history", "INSERT INTO history VALUES ({})"),
        ("meta", "INSERT INTO meta VALUES ({})"),
        ("fts", "INSERT INTO records_fts (rowid, terms) VALUES ({})"),
    ):
        data = rows[table]
        if not data:
            continue
        statement = sql.format(", ".join("?" * len(data[0])))
        for start in range(0, len(data), chunk):
            conn.execute("BEGIN")
            conn.executemany(statement, data[start : start + chunk])
            conn.execute("COMMIT")
    if with_indexes:
        for sql in indexes:
            conn.execute(sql)
    conn.close()
    return time.perf_counter() - t0


def child_sqlite_load(vault: str, db: str, cache: str) -> dict[str, Any]:
    """Time a plain SQLite load of the projection's rows. The tuples are prepared once
    (read from the projection, FTS documents recomputed) and kept in *cache*."""
    import pickle

    t0 = time.perf_counter()
    if Path(cache).exists():
        with open(cache, "rb") as fh:
            rows = pickle.load(fh)
    else:
        v, records = _open(vault)
        rows = projection_rows(records)
        records.close()
        v.close()
        with open(cache, "wb") as fh:
            pickle.dump(rows, fh, protocol=pickle.HIGHEST_PROTOCOL)
    prep_s = time.perf_counter() - t0
    counts = {k: len(rows[k]) for k in ("records", "terms", "links", "history", "fts")}
    noise = Noise()
    seconds = load_plain(Path(db), rows)
    foreign = noise.foreign_cpu_s()
    size = Path(db).stat().st_size
    Path(db).unlink()
    return {
        "load_s": seconds,
        "prep_s": round(prep_s, 2),
        "rows": counts,
        "db_bytes": size,
        "sqlite": sqlite3.sqlite_version,
        "foreign_cpu_s": round(foreign, 2),
    }


def child_import_files(vault: str, files: list[str]) -> dict[str, Any]:
    """The search vault: every generated list imported in turn with import_csv."""
    from athar.records.csvimport import import_csv
    from athar.records.service import Records
    from athar.vault.vault import Vault

    root = Path(vault)
    shutil.rmtree(root, ignore_errors=True)
    v = Vault.create(root, PASSPHRASE)
    records = Records(v)
    per_file = []
    started = time.perf_counter()
    for name in files:
        t0 = time.perf_counter()
        report = import_csv(records, Path(name), "person")
        seconds = time.perf_counter() - t0
        if not report.committed or report.problems:
            raise RuntimeError(f"import of {name} failed: {report.summary()} {report.problems[:3]}")
        per_file.append({"rows": report.rows, "new": report.new, "seconds": round(seconds, 2)})
        log(f"  imported {Path(name).name}: {report.rows:,} rows in {seconds:.1f} s")
    total_s = time.perf_counter() - started
    counts = _table_counts(records)
    size = v.ledger.size()
    records.close()
    v.close()
    rows = sum(f["rows"] for f in per_file)
    return {
        "files": per_file,
        "rows": rows,
        "import_s": round(total_s, 2),
        "rows_per_s": round(rows / total_s),
        "ledger_size": size,
        "counts": counts,
        "peak_rss_kib": vm_hwm_kib(),
    }


def _filters(spec: dict[str, Any]) -> Any:
    from athar.records.search import Filters

    return Filters(**spec)


def child_search(
    vault: str, queries: str, store_url: str | None = None, capture: str | None = None
) -> dict[str, Any]:
    """Time every query through Records.find: a warm-up pass, then SEARCH_PASSES timed
    passes. With *capture*, also write the SQL each query sent (for the peer)."""
    from sqlalchemy import event

    from athar.vault.vault import Vault

    qs = json.loads(Path(queries).read_text(encoding="utf-8"))
    v = Vault.open(Path(vault), PASSPHRASE)
    from athar.records.service import Records

    t0 = time.perf_counter()
    records = Records(v, store_url)  # on a new PostgreSQL store this is the whole load
    open_s = time.perf_counter() - t0
    open_peak = vm_hwm_kib()
    counts = _table_counts(records)
    sent: list[tuple[str, Any]] = []

    def on_execute(_conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            sent.append((statement, params))

    event.listen(records.engine, "before_cursor_execute", on_execute)
    captured = []
    hits = []
    for q in qs:  # warm-up pass: results and the SQL each query sent
        sent.clear()
        rows = records.find(q["q"], _filters(q["filters"]), limit=LIMIT)
        hits.append(len(rows))
        if capture:
            finds = [s for s in sent if "records" in s[0]]
            statement, params = finds[-1]
            captured.append({"sql": statement, "params": list(params)})
    event.remove(records.engine, "before_cursor_execute", on_execute)
    if capture:
        Path(capture).write_text(json.dumps(captured, ensure_ascii=False), encoding="utf-8")
    passes: list[list[float]] = []
    noise = Noise()
    for _ in range(SEARCH_PASSES):
        times = []
        for q in qs:
            f = _filters(q["filters"])
            t = time.perf_counter()
            records.find(q["q"], f, limit=LIMIT)
            times.append((time.perf_counter() - t) * 1000)
        passes.append(times)
    foreign = noise.foreign_cpu_s()
    records.close()
    v.close()
    return {
        "open_s": round(open_s, 2),
        "open_peak_rss_kib": open_peak,
        "counts": counts,
        "hits": hits,
        "ms": [statistics.median(p[i] for p in passes) for i in range(len(qs))],
        "peak_rss_kib": vm_hwm_kib(),
        "foreign_cpu_s": round(foreign, 2),
    }


def child_search_peer_build(vault: str, db: str) -> dict[str, Any]:
    v, records = _open(vault)
    t0 = time.perf_counter()
    rows = projection_rows(records)
    records.close()
    v.close()
    prep_s = time.perf_counter() - t0
    load_s = load_plain(Path(db), rows)
    return {"prep_s": round(prep_s, 2), "load_s": round(load_s, 2), "records": len(rows["records"])}


def child_search_peer(db: str, captured: str, module: str = "sqlite3") -> dict[str, Any]:
    """The captured statements on the unencrypted copy: with stdlib sqlite3, or with the
    SQLCipher library itself opened without a key (plain SQLite, the projection's own
    version and query planner)."""
    statements = json.loads(Path(captured).read_text(encoding="utf-8"))
    if module == "sqlcipher3":
        import sqlcipher3

        conn = sqlcipher3.connect(db, isolation_level=None)  # no PRAGMA key: no encryption
        version = conn.execute("SELECT sqlite_version()").fetchone()[0]
    else:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        version = sqlite3.sqlite_version
    conn.execute("PRAGMA cache_size=-131072")
    hits = [len(conn.execute(s["sql"], s["params"]).fetchall()) for s in statements]
    passes: list[list[float]] = []
    noise = Noise()
    for _ in range(SEARCH_PASSES):
        times = []
        for s in statements:
            t = time.perf_counter()
            conn.execute(s["sql"], s["params"]).fetchall()
            times.append((time.perf_counter() - t) * 1000)
        passes.append(times)
    foreign = noise.foreign_cpu_s()
    conn.close()
    return {
        "hits": hits,
        "ms": [statistics.median(p[i] for p in passes) for i in range(len(statements))],
        "sqlite": version,
        "foreign_cpu_s": round(foreign, 2),
    }


def child_import(csv_path: str, vault: str, rebuild_after: bool = False) -> dict[str, Any]:
    from athar.records.csvimport import import_csv
    from athar.records.service import Records
    from athar.vault.vault import Vault

    root = Path(vault)
    shutil.rmtree(root, ignore_errors=True)
    v = Vault.create(root, PASSPHRASE)  # Argon2id etc.: outside the timing
    records = Records(v)
    ready_kib = vm_hwm_kib()
    noise = Noise()
    t0 = time.perf_counter()
    first = import_csv(records, Path(csv_path), "person")
    import_s = time.perf_counter() - t0
    foreign = noise.foreign_cpu_s()
    import_peak = vm_hwm_kib()
    noise = Noise()
    t0 = time.perf_counter()
    again = import_csv(records, Path(csv_path), "person")
    reimport_s = time.perf_counter() - t0
    foreign_again = noise.foreign_cpu_s()
    counts = _table_counts(records)
    reimport_peak = vm_hwm_kib()
    rebuilt: dict[str, Any] = {}
    if rebuild_after:  # what a rebuild of imported data costs (records.imported events)
        before = vm_hwm_kib()
        t0 = time.perf_counter()
        stats = records.rebuild()
        rebuilt = {
            "rebuild_s": time.perf_counter() - t0,
            "events": stats.applied,
            "rss_before_kib": before,
            "peak_rss_kib": vm_hwm_kib(),
            "counts_equal": _table_counts(records) == counts,
        }
    records.close()
    v.close()
    shutil.rmtree(root)
    return {
        "first": first.summary(),
        "again": again.summary(),
        "problems": [p.to_json() for p in first.problems[:5]],
        "import_s": import_s,
        "reimport_s": reimport_s,
        "rebuild_after": rebuilt,
        "counts": counts,
        "rss_before_import_kib": ready_kib,
        "import_peak_rss_kib": import_peak,
        "peak_rss_kib": reimport_peak,  # import and re-import (not the optional rebuild)
        "foreign_cpu_s": round(foreign, 2),
        "reimport_foreign_cpu_s": round(foreign_again, 2),
    }


def child_import_peer(csv_path: str, db: str) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    noise = Noise()
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    with open(csv_path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        columns = ", ".join(f'"{h}" TEXT' for h in header)
        conn.execute(f"CREATE TABLE people (id INTEGER PRIMARY KEY, {columns})")
        marks = ", ".join("?" * len(header))
        names = ", ".join(f'"{h}"' for h in header)
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO people ({names}) VALUES ({marks})", reader)
        conn.execute("COMMIT")
    rows = conn.execute("SELECT count(*) FROM people").fetchone()[0]
    conn.close()
    seconds = time.perf_counter() - t0
    foreign = noise.foreign_cpu_s()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return {"rows": rows, "seconds": seconds, "foreign_cpu_s": round(foreign, 2)}


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "build_ledger": child_build_ledger,
    "rebuild": child_rebuild,
    "read_floor": child_read_floor,
    "sqlite_load": child_sqlite_load,
    "import_files": child_import_files,
    "search": child_search,
    "search_peer_build": child_search_peer_build,
    "search_peer": child_search_peer,
    "import": child_import,
    "import_peer": child_import_peer,
}


# ----------------------------------------------------------------------------------------
# The parent: builds data, runs the children, collects the figures
# ----------------------------------------------------------------------------------------


def spawn(
    step: str, quiet: bool = True, cmd: list[str] | None = None, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one child step; returns (its JSON, {wall_s, peak_rss_kib, foreign_cpu_s}).

    Peak RSS comes from wait4() on exactly that child. The child's stderr (progress) is
    passed through."""
    if quiet:
        wait_for_quiet()
    out_path = ROOT / f"{step}.{os.getpid()}.out.json"
    argv = cmd or [sys.executable, str(Path(__file__).resolve()), "--child", step]
    if cmd is None:
        argv.append(json.dumps(kwargs, ensure_ascii=False))
    env = dict(os.environ)
    env.update(kwargs.pop("_env", {}) if cmd is not None else {})
    noise = Noise()
    started = time.perf_counter()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    foreign = noise.foreign_cpu_s()
    code = os.waitstatus_to_exitcode(status)
    text = out_path.read_text(encoding="utf-8")
    out_path.unlink()
    if code != 0:
        raise RuntimeError(f"step {step} exited {code}: {text[-2000:]}")
    result: dict[str, Any] = json.loads(text) if text.strip() else {}
    return result, {
        "wall_s": round(wall, 3),
        "peak_rss_kib": int(usage.ru_maxrss),
        "foreign_cpu_s": round(foreign, 2),
    }


def ledger_fingerprint() -> str:
    """Hash of the code that writes and reads the ledger (src/athar/vault, crypto and the
    record event kinds): a built ledger is reused while it is unchanged."""
    import hashlib

    digest = hashlib.sha256()
    src = REPO / "src" / "athar"
    paths = [*(src / "vault").rglob("*.py"), *(src / "crypto").rglob("*.py")]
    paths.append(src / "records" / "events.py")
    for path in sorted(paths):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def record_counts(counts: dict[str, int]) -> dict[str, int]:
    """Records of each type (what the events created), not the projection's own tables."""
    return {k: v for k, v in counts.items() if k.startswith("records.")}


def stamp_ok(stamp: Path, want: dict[str, Any]) -> dict[str, Any] | None:
    if not stamp.exists():
        return None
    info: dict[str, Any] = json.loads(stamp.read_text(encoding="utf-8"))
    return info if info.get("key") == want else None


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def latency(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50), 2),
        "p95_ms": round(pct(values, 95), 2),
        "max_ms": round(max(values), 2) if values else 0.0,
    }


# -- 1. rebuild -----------------------------------------------------------------------------
def part_rebuild(
    events: int, repeats: int, force: bool, keep_ledger: bool = False
) -> dict[str, Any]:
    base = ROOT / "rebuild"
    base.mkdir(parents=True, exist_ok=True)
    vault = base / "vault"
    stamp = base / "vault.json"
    # The ledger stays valid whatever the projection code does, so the vault is rebuilt only
    # when the ledger code (or the generator) changes.
    key = {"events": events, "ledger": ledger_fingerprint(), "generator": GENERATOR_VERSION}
    build = None if force else stamp_ok(stamp, key)
    if build is None and keep_ledger and not force and stamp.exists():
        # --keep-ledger: the ledger's bytes do not depend on code that only reads them, so a
        # ledger of the same size and generator is kept; the doc says which code built it.
        old: dict[str, Any] = json.loads(stamp.read_text(encoding="utf-8"))
        same = {k: old.get("key", {}).get(k) for k in ("events", "generator")}
        if same == {"events": events, "generator": GENERATOR_VERSION}:
            build = old
            build["kept_despite_code_change"] = old["key"]["ledger"]
            build["ledger_code_now"] = key["ledger"]
    if build is None or not vault.exists():
        stamp.unlink(missing_ok=True)
        (base / "rows.pickle").unlink(missing_ok=True)
        log(
            f"rebuild: building a vault of {events:,} record events (Records.commit, batches "
            f"of {COMMIT_BATCH:,})"
        )
        result, run = spawn("build_ledger", quiet=False, vault=str(vault), events=events, seed=1)
        build = {
            "key": key,
            **result,
            "peak_rss_kib": run["peak_rss_kib"],
            "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        stamp.write_text(json.dumps(build), encoding="utf-8")
        build["reused"] = False
        log(f"  built in {result['build_s']} s ({result['build_events_per_s']:,} events/s)")
    else:
        build["reused"] = True
        log(f"rebuild: reusing the vault built {build['built_at']}")
    disk = sum(p.stat().st_size for p in vault.rglob("*") if p.is_file())

    runs = []
    for r in range(repeats):
        cli = repeats >= 2 and r == repeats - 1  # the last repeat goes through the CLI
        order = ["athar", "read", "sqlite"] if r % 2 == 0 else ["sqlite", "read", "athar"]
        row: dict[str, Any] = {"repeat": r + 1, "order": order, "via": "cli" if cli else "api"}
        for side in order:
            if side == "athar" and cli:
                out, run = spawn(
                    "cli_rebuild",
                    cmd=[athar_bin(), "rebuild", "--json"],
                    _env=athar_env(vault),
                )
                counts = out.get("records", {})
                row.update(
                    rebuild_s=run["wall_s"],
                    applied=out.get("events"),
                    rebuild_peak_rss_kib=run["peak_rss_kib"],
                    rebuild_foreign_cpu_s=run["foreign_cpu_s"],
                    counts_equal=counts
                    == {
                        k.split(".", 1)[1]: n
                        for k, n in build["counts"].items()
                        if k.startswith("records.")
                    },
                )
            elif side == "athar":
                out, run = spawn("rebuild", vault=str(vault))
                row.update(
                    rebuild_s=out["rebuild_s"],
                    rebuild_child_wall_s=run["wall_s"],
                    applied=out["applied"],
                    ignored=out["ignored"],
                    rebuild_peak_rss_kib=run["peak_rss_kib"],
                    rss_before_rebuild_kib=out["rss_before_rebuild_kib"],
                    rebuild_foreign_cpu_s=out["foreign_cpu_s"],
                    writer_cpu_s=out["writer_cpu_s"],
                    reader_cpu_s=out["reader_cpu_s"],
                    counts_equal=out["counts_equal"]
                    and record_counts(out["counts_after"]) == record_counts(build["counts"]),
                    counts_after=out["counts_after"],
                )
            elif side == "read":
                out, run = spawn("read_floor", vault=str(vault))
                row.update(
                    read_s=out["read_s"],
                    read_events=out["events"],
                    read_peak_rss_kib=run["peak_rss_kib"],
                    read_foreign_cpu_s=out["foreign_cpu_s"],
                )
            else:
                out, run = spawn(
                    "sqlite_load",
                    vault=str(vault),
                    db=str(base / "plain.db"),
                    cache=str(base / "rows.pickle"),
                )
                row.update(
                    sqlite_load_s=out["load_s"],
                    sqlite_rows=out["rows"],
                    sqlite_db_bytes=out["db_bytes"],
                    sqlite_foreign_cpu_s=out["foreign_cpu_s"],
                )
        log(
            f"  repeat {r + 1} ({row['via']}): rebuild {row['rebuild_s']:.1f} s, read floor "
            f"{row['read_s']:.1f} s, plain SQLite load {row['sqlite_load_s']:.1f} s"
        )
        if not row["counts_equal"]:
            raise RuntimeError(f"record counts differ after the rebuild: {row}")
        runs.append(row)
    rebuild_s = median([r["rebuild_s"] for r in runs])
    read_s = median([r["read_s"] for r in runs])
    load_s = median([r["sqlite_load_s"] for r in runs])
    api = [r for r in runs if r["via"] == "api"]
    return {
        "events": events,
        "ledger_size": build["ledger_size"],
        "build": {k: v for k, v in build.items() if k != "key"},
        "vault_bytes": disk,
        "repeats": runs,
        "median_rebuild_s": round(rebuild_s, 2),
        "rebuild_events_per_s": round(events / rebuild_s),
        "median_read_floor_s": round(read_s, 2),
        "read_floor_events_per_s": round(events / read_s),
        "median_sqlite_load_s": round(load_s, 2),
        "ratio_vs_read_floor": round(rebuild_s / read_s, 2),
        "ratio_vs_sqlite_load": round(rebuild_s / load_s, 2),
        "ratio_vs_read_plus_load": round(rebuild_s / (read_s + load_s), 2),
        "rebuild_peak_rss_mib": mib(max(r["rebuild_peak_rss_kib"] for r in runs)),
        "rss_before_rebuild_mib": mib(max(r.get("rss_before_rebuild_kib", 0) for r in api))
        if api
        else None,
        "read_peak_rss_mib": mib(max(r["read_peak_rss_kib"] for r in runs)),
        "counts": build["counts"],
        "goal": f"rebuild of {REBUILD_EVENTS:,} events <= {GOAL_REBUILD_S:.0f} s",
        "goal_met": rebuild_s <= GOAL_REBUILD_S,
    }


# -- 2. search ------------------------------------------------------------------------------
_HARAKAT = ("\u064e", "\u064f", "\u0650", "\u0652")


def _variant(rng: random.Random, name: str) -> str:
    """How the same name gets typed: hamza dropped or added, ة/ه, ى/ي, harakat, tatweel."""
    out = name
    swaps = [("أ", "ا"), ("إ", "ا"), ("آ", "ا"), ("ة", "ه"), ("ى", "ي"), ("ؤ", "و"), ("ئ", "ي")]
    changed = False
    for a, b in swaps:
        if a in out:
            out = out.replace(a, b)
            changed = True
    if not changed or rng.random() < 0.5:  # diacritics, as in a typed religious name
        letters = []
        for i, ch in enumerate(out):
            letters.append(ch)
            if ch != " " and i < len(out) - 1 and out[i + 1] != " " and rng.random() < 0.6:
                letters.append(rng.choice(_HARAKAT))
        out = "".join(letters)
        if rng.random() < 0.3 and len(out) > 3:
            out = out[:2] + "ـ" + out[2:]  # tatweel
    return out


def build_queries(sample: list[dict[str, Any]], tail: list[str], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    qs: list[dict[str, Any]] = []

    def add(cat: str, q: str | None, **filters: Any) -> None:
        qs.append({"cat": cat, "q": q, "filters": filters})

    common = [
        "محمد",
        "أحمد",
        "علي",
        "محمود",
        "خالد",
        "عمر",
        "عبد",
        "حسن",
        "فاطمة",
        "مريم",
        "الحلبي",
        "الحمصي",
        "الشامي",
        "الخطيب",
        "حسين",
        "يوسف",
        "إبراهيم",
        "مصطفى",
        "الله",
        "الرحمن",
        "حلب",
        "حمص",
        "دوما",
        "ذكر",
        "قتيل",
        "معتقل",
        "ريف",
        "دمشق",
        "Mohammad",
        "Ali",
    ]
    for word in common:
        add("common single word", word)
    by_weight = sample[:]
    rng.shuffle(by_weight)
    for p in by_weight[:50]:
        add("given + family", f"{p['name_ar.given']} {p['name_ar.family']}")
    three = [p for p in by_weight if "name_ar.father" in p]
    for p in three[50:90]:
        add("three-part name", f"{p['name_ar.given']} {p['name_ar.father']} {p['name_ar.family']}")
    tail_set = set(tail)
    rare = [p for p in sample if p["name_ar.family"] in tail_set]
    rng.shuffle(rare)
    for p in rare[:25]:
        add("rare name", f"{p['name_ar.given']} {p['name_ar.family']}")
    for name in rng.sample(tail, 15):
        add("rare name", name)
    variants = [
        "مُحَمَّد",
        "احمد",
        "أحمد",
        "ابراهيم",
        "فاطمه",
        "عائشه",
        "اسماء",
        "امنه",
        "مصطفي",
        "عيسي",
        "الاحمد",
        "الادلبي",
        "محـمد",
        "عَلِي",
        "مؤمن",
        "مومن",
    ]
    for v in variants:
        add("spelling variant", v)
    for p in by_weight[100:114]:
        add(
            "spelling variant",
            f"{_variant(rng, p['name_ar.given'])} {_variant(rng, p['name_ar.family'])}",
        )
    for pre in [
        "سام*",
        "محم*",
        "خال*",
        "ياس*",
        "فاط*",
        "عبد*",
        "حس*",
        "ماه*",
        "رام*",
        "نو*",
        "الحل*",
        "الحم*",
        "زي*",
        "مؤ*",
        "moh*",
        "ahm*",
        "khal*",
        "hal*",
        "دو*",
        "دار*",
    ]:
        add("prefix", pre)
    for p in by_weight[120:130]:
        add("prefix", f"{p['name_ar.given']} {p['name_ar.family'][:3]}*")
    latin = [p for p in by_weight if "name_latin.given" in p]
    for p in latin[:20]:
        add("Latin", " ".join(p[k] for k in ("name_latin.given", "name_latin.family") if k in p))
    for word in [
        "Ahmad",
        "Khaled",
        "Fatima",
        "al-Halabi",
        "Homsi",
        "Zoubi",
        "Douma",
        "Mohamed",
        "Hussein",
        "Omar",
    ]:
        add("Latin", word)
    letters = "بتثجحخدذرزسشصضطظعغفقكلمنهوي"
    for _ in range(12):
        add("no match", "".join(rng.choice(letters) for _ in range(7)))
    for word in [
        "Zebulon",
        "qwzxv",
        "شكسبيرستان",
        "Xylophonist",
        "نيوتنيات",
        "Ptolemaios",
        "قزحطبوني",
        "Vercingetorix",
    ]:
        add("no match", word)
    places = ["دوما", "داريا", "حلب", "حمص", "إدلب", "درعا"]
    statuses = ["killed", "detained", "missing", "قتيل"]
    for p in by_weight[140:150]:
        add("filtered", p["name_ar.given"], type="person")
    for p in by_weight[150:160]:
        add("filtered", p["name_ar.given"], status=rng.choice(statuses))
    for p in by_weight[160:170]:
        year = str(rng.randint(2011, 2020))
        add("filtered", f"{p['name_ar.given']} {p['name_ar.family']}", date_from=year, date_to=year)
    for p in by_weight[170:180]:
        add("filtered", p["name_ar.given"], place=rng.choice(places))
    for p in by_weight[180:185]:
        add(
            "filtered",
            p["name_ar.family"],
            type="person",
            status="killed",
            place=rng.choice(places),
        )
    add("filtered", "محمد", type="person", status="killed", date_from="2013-08", date_to="2013-08")
    add("filtered", "فاطمة", status="detained", place="داريا")
    add("filtered", "أحمد", type="status")
    add("filtered", "علي", date_from="2012", date_to="2014", place="حمص")
    add("filtered", "خالد الحلبي", type="person", status="missing")
    for spec in [
        {"type": "person", "status": "killed"},
        {"type": "person", "place": "دوما"},
        {"status": "detained", "date_from": "2014-01", "date_to": "2014-03"},
        {"type": "status", "date_from": "2012-03", "date_to": "2012-03"},
        {"type": "person"},
    ]:
        add("filters only (no words)", None, **spec)
    return qs


def _pg_server() -> Any:
    sys.path.insert(0, str(REPO / "tests"))
    from pgserver import PostgresServer, find_bindir  # type: ignore[import-not-found]

    bindir = find_bindir()
    if bindir is None:
        return None
    return PostgresServer(bindir).start()


def part_search(people: int, pg_people: int, force: bool) -> dict[str, Any]:
    base = ROOT / "search"
    base.mkdir(parents=True, exist_ok=True)
    vault = base / "vault"
    stamp = base / "vault.json"
    files_n = max(1, -(-people // SEARCH_FILE_ROWS))
    per_file = -(-people // files_n)
    key = {"people": people, "source": source_fingerprint(), "generator": GENERATOR_VERSION}
    build = None if force else stamp_ok(stamp, key)
    gen = Generator(2)
    sample: list[dict[str, Any]] = []
    files = [base / f"people-{i:02d}.csv" for i in range(files_n)]
    for stale in set(base.glob("people-*.csv")) - set(files):
        stale.unlink()
    if build is None or not vault.exists() or not all(f.exists() for f in files):
        stamp.unlink(missing_ok=True)
        t0 = time.perf_counter()
        seen: set[tuple[Any, ...]] = set()
        left = people
        for f in files:
            write_people_csv(f, gen, min(per_file, left), 0.5, seen, sample)
            left -= min(per_file, left)
        del seen
        gen_s = time.perf_counter() - t0
        (base / "sample.json").write_text(json.dumps(sample, ensure_ascii=False))
        log(f"search: wrote {files_n} CSV lists of {people:,} people in {gen_s:.0f} s; importing")
        result, run = spawn(
            "import_files", quiet=False, vault=str(vault), files=[str(f) for f in files]
        )
        peer_db = base / "peer.db"
        peer, _ = spawn("search_peer_build", quiet=False, vault=str(vault), db=str(peer_db))
        build = {
            "key": key,
            **result,
            "peak_rss_kib": run["peak_rss_kib"],
            "csv_s": round(gen_s, 1),
            "csv_bytes": sum(f.stat().st_size for f in files),
            "peer_build": peer,
            "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        stamp.write_text(json.dumps(build), encoding="utf-8")
        build["reused"] = False
        log(
            f"  imported {result['rows']:,} rows in {result['import_s']} s "
            f"({result['rows_per_s']:,} rows/s)"
        )
    else:
        build["reused"] = True
        sample = json.loads((base / "sample.json").read_text(encoding="utf-8"))
        log(f"search: reusing the vault built {build['built_at']}")
    queries = build_queries(sample, gen.tail, seed=3)
    qfile = base / "queries.json"
    qfile.write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
    captured = base / "captured.json"

    log(
        f"search: {len(queries)} queries through Records.find (SQLCipher store), and the same "
        "SQL on an unencrypted copy (stdlib sqlite3; SQLCipher's SQLite without a key)"
    )
    peer_db = str(base / "peer.db")
    athar, athar_run = spawn("search", vault=str(vault), queries=str(qfile), capture=str(captured))
    std1, _ = spawn("search_peer", db=peer_db, captured=str(captured), module="sqlite3")
    same1, _ = spawn("search_peer", db=peer_db, captured=str(captured), module="sqlcipher3")
    same2, _ = spawn("search_peer", db=peer_db, captured=str(captured), module="sqlcipher3")
    std2, _ = spawn("search_peer", db=peer_db, captured=str(captured), module="sqlite3")
    athar2, _ = spawn("search", vault=str(vault), queries=str(qfile))

    def med2(a: dict[str, Any], b: dict[str, Any]) -> list[float]:
        return [statistics.median([x, y]) for x, y in zip(a["ms"], b["ms"], strict=True)]

    athar_ms, peer_ms, same_ms = med2(athar, athar2), med2(std1, std2), med2(same1, same2)
    mismatched = [
        queries[i]["q"]
        for i, (a, b, c) in enumerate(zip(athar["hits"], std1["hits"], same1["hits"], strict=True))
        if not a == b == c
    ]

    def by_cat(ms: list[float]) -> dict[str, dict[str, float]]:
        cats: dict[str, list[float]] = {}
        for q, t in zip(queries, ms, strict=True):
            cats.setdefault(q["cat"], []).append(t)
        return {c: latency(v) for c, v in cats.items()}

    slowest = sorted(range(len(queries)), key=lambda i: athar_ms[i], reverse=True)[:8]
    result: dict[str, Any] = {
        "people": people,
        "build": {k: v for k, v in build.items() if k != "key"},
        "queries": len(queries),
        "passes": SEARCH_PASSES * 2,
        "athar": latency(athar_ms),
        "athar_by_category": by_cat(athar_ms),
        "peer": latency(peer_ms),
        "peer_by_category": by_cat(peer_ms),
        "ratio_p50": round(pct(athar_ms, 50) / max(pct(peer_ms, 50), 1e-3), 2),
        "ratio_p95": round(pct(athar_ms, 95) / max(pct(peer_ms, 95), 1e-3), 2),
        "peer_sqlite": std1["sqlite"],
        "same_lib_sqlite": same1["sqlite"],
        "same_lib": latency(same_ms),
        "same_lib_by_category": by_cat(same_ms),
        "ratio_same_lib_p50": round(pct(athar_ms, 50) / max(pct(same_ms, 50), 1e-3), 2),
        "ratio_same_lib_p95": round(pct(athar_ms, 95) / max(pct(same_ms, 95), 1e-3), 2),
        "hit_mismatches": mismatched[:10],
        "zero_hit_queries": sum(1 for h in athar["hits"] if h == 0),
        "full_page_queries": sum(1 for h in athar["hits"] if h == LIMIT),
        "slowest": [
            {
                "cat": queries[i]["cat"],
                "q": queries[i]["q"],
                "filters": queries[i]["filters"],
                "ms": round(athar_ms[i], 1),
                "peer_ms": round(peer_ms[i], 1),
                "same_lib_ms": round(same_ms[i], 1),
                "hits": athar["hits"][i],
            }
            for i in slowest
        ],
        "search_peak_rss_mib": mib(athar_run["peak_rss_kib"]),
        "foreign_cpu_s": [athar["foreign_cpu_s"], athar2["foreign_cpu_s"]],
        "goal": f"search p95 <= {GOAL_P95_MS:.0f} ms over {SEARCH_PEOPLE:,} people",
        "goal_met": pct(athar_ms, 95) <= GOAL_P95_MS,
    }
    if pg_people > 0:
        result["postgres"] = search_postgres(
            base, vault, files, pg_people, people, qfile, queries, force
        )
    return result


def search_postgres(
    base: Path,
    vault: Path,
    files: list[Path],
    pg_people: int,
    people: int,
    qfile: Path,
    queries: list[dict[str, Any]],
    force: bool,
) -> dict[str, Any]:
    """The same queries on a PostgreSQL store loaded from the ledger (Records(vault, url):
    its catch-up is the load). With fewer people than the SQLCipher vault, a smaller vault
    is imported from the first CSV lists."""
    source = vault
    per_file = -(-people // max(1, len(files)))
    take = max(1, -(-pg_people // per_file))  # whole lists, at least pg_people people
    if take < len(files):
        source = base / "vault-pg"
        key = {
            "files": [f.name for f in files[:take]],
            "source": source_fingerprint(),
            "generator": GENERATOR_VERSION,
        }
        if force or stamp_ok(base / "vault-pg.json", key) is None or not source.exists():
            log(f"postgres: importing {take} list(s) into a smaller vault")
            spawn(
                "import_files", quiet=False, vault=str(source), files=[str(f) for f in files[:take]]
            )
            (base / "vault-pg.json").write_text(json.dumps({"key": key}), encoding="utf-8")
    server = _pg_server()
    if server is None:
        return {"skipped": "no PostgreSQL server binaries found"}
    try:
        name = server.create_database("records_bench")
        url = server.url(name)
        log("postgres: loading the store from the ledger (catch-up), then the queries")
        first, run = spawn("search", vault=str(source), queries=str(qfile), store_url=url)
        with server.connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            size = conn.execute(f"SELECT pg_database_size('{name}')").fetchone()[0]
    finally:
        server.stop()
    ms = first["ms"]
    cats: dict[str, list[float]] = {}
    for q, t in zip(queries, ms, strict=True):
        cats.setdefault(q["cat"], []).append(t)
    records_n = first["counts"]["records"]
    return {
        "server_version": version,
        "records": records_n,
        "counts": first["counts"],
        "load_s": first["open_s"],
        "load_records_per_s": round(records_n / max(first["open_s"], 1e-3)),
        "load_peak_rss_mib": mib(first["open_peak_rss_kib"]),
        "db_bytes": size,
        "latency": latency(ms),
        "by_category": {c: latency(v) for c, v in cats.items()},
        "slowest": [
            {
                "cat": queries[i]["cat"],
                "q": queries[i]["q"],
                "filters": queries[i]["filters"],
                "ms": round(ms[i], 1),
            }
            for i in sorted(range(len(ms)), key=lambda i: ms[i], reverse=True)[:5]
        ],
        "child_wall_s": run["wall_s"],
    }


# -- 3. import ------------------------------------------------------------------------------
def part_import(rows: int, repeats: int) -> dict[str, Any]:
    base = ROOT / "import"
    base.mkdir(parents=True, exist_ok=True)
    specs = {"people": (base / "people.csv", 0.0), "people+status": (base / "status.csv", 1.0)}
    key = {"rows": rows, "generator": GENERATOR_VERSION}
    if stamp_ok(base / "files.json", key) is None or not all(p.exists() for p, _ in specs.values()):
        for label, (path, share) in specs.items():
            write_people_csv(path, Generator(10 + int(share)), rows, share, set())
            log(f"import: wrote {label} list: {path.stat().st_size / 1e6:.1f} MB")
        (base / "files.json").write_text(json.dumps({"key": key}), encoding="utf-8")
    out: dict[str, Any] = {"rows": rows, "files": {}}
    for label, (path, _share) in specs.items():
        runs = []
        for r in range(repeats):
            order = ["athar", "peer"] if r % 2 == 0 else ["peer", "athar"]
            row: dict[str, Any] = {"repeat": r + 1, "order": order}
            for side in order:
                if side == "athar":
                    last = label == "people+status" and r == repeats - 1
                    res, _ = spawn(
                        "import", csv_path=str(path), vault=str(base / "vault"), rebuild_after=last
                    )
                    if res["rebuild_after"]:
                        out["rebuild_after_import"] = {
                            "file": label,
                            "records": res["counts"]["records"],
                            **res["rebuild_after"],
                        }
                    first, again = res["first"], res["again"]
                    if first["new"] != rows or again["unchanged"] != rows or not first["committed"]:
                        raise RuntimeError(f"import of {label} went wrong: {res}")
                    row.update(
                        import_s=res["import_s"],
                        reimport_s=res["reimport_s"],
                        records=res["counts"]["records"],
                        peak_rss_kib=res["peak_rss_kib"],
                        import_peak_rss_kib=res["import_peak_rss_kib"],
                        rss_before_import_kib=res["rss_before_import_kib"],
                        foreign_cpu_s=res["foreign_cpu_s"],
                        reimport_foreign_cpu_s=res["reimport_foreign_cpu_s"],
                    )
                else:
                    res, _ = spawn("import_peer", csv_path=str(path), db=str(base / "peer.db"))
                    if res["rows"] != rows:
                        raise RuntimeError(f"peer loaded {res['rows']} rows, expected {rows}")
                    row.update(peer_s=res["seconds"], peer_foreign_cpu_s=res["foreign_cpu_s"])
            log(
                f"import {label}, repeat {r + 1}: {rows / row['import_s']:,.0f} rows/s "
                f"(re-import {rows / row['reimport_s']:,.0f} rows/s), peer "
                f"{rows / row['peer_s']:,.0f} rows/s"
            )
            runs.append(row)
        imp = median([r["import_s"] for r in runs])
        again = median([r["reimport_s"] for r in runs])
        peer = median([r["peer_s"] for r in runs])
        out["files"][label] = {
            "csv_bytes": path.stat().st_size,
            "records": runs[0]["records"],
            "repeats": runs,
            "median_import_s": round(imp, 2),
            "rows_per_s": round(rows / imp),
            "records_per_s": round(runs[0]["records"] / imp),
            "median_reimport_s": round(again, 2),
            "reimport_rows_per_s": round(rows / again),
            "median_peer_s": round(peer, 3),
            "peer_rows_per_s": round(rows / peer),
            "ratio_peer_over_athar": round(imp / peer, 1),
            "peak_rss_mib": mib(max(r["peak_rss_kib"] for r in runs)),
            "import_peak_rss_mib": mib(max(r["import_peak_rss_kib"] for r in runs)),
            "rss_before_import_mib": mib(max(r["rss_before_import_kib"] for r in runs)),
            "goal_met": rows / imp >= GOAL_ROWS_PER_S,
        }
    out["goal"] = f"CSV import of {IMPORT_ROWS:,} people >= {GOAL_ROWS_PER_S:,} rows/s"
    out["goal_met"] = all(f["goal_met"] for f in out["files"].values())
    return out


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def records_machine() -> dict[str, Any]:
    from importlib import metadata

    import sqlcipher3

    from run_all import machine, tool_version

    info = machine()
    keep = (
        "athar_revision",
        "cpu",
        "cpu_extensions",
        "cores",
        "ram_gib",
        "filesystem",
        "kernel",
        "os",
        "python",
    )
    out = {k: info[k] for k in keep}
    out["disk_free_gb"] = round(shutil.disk_usage(ROOT).free / 1e9, 1)
    conn = sqlcipher3.connect(":memory:")
    out["sqlcipher"] = (
        f"{conn.execute('PRAGMA cipher_version').fetchone()[0]} "
        f"(SQLite {conn.execute('SELECT sqlite_version()').fetchone()[0]}, "
        f"sqlcipher3 {metadata.version('sqlcipher3') if _has('sqlcipher3') else '?'})"
    )
    conn.close()
    out["sqlite (stdlib sqlite3, peers)"] = sqlite3.sqlite_version
    out["sqlalchemy"] = metadata.version("sqlalchemy")
    out["psycopg"] = metadata.version("psycopg") if _has("psycopg") else "not installed"
    out["orjson"] = metadata.version("orjson")
    out["postgresql"] = tool_version(["/usr/lib/postgresql/15/bin/postgres", "--version"])
    return out


def _has(dist: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def yes(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def summary_rows(res: dict[str, Any]) -> list[str]:
    """Rows for a summary table: | benchmark | result | goal | status |."""
    rows = []
    rb, se, im = res.get("rebuild"), res.get("search"), res.get("import")
    if rb:
        rows.append(
            f"| records: rebuild from {rb['events']:,} events | **{rb['median_rebuild_s']:.1f} s** "
            f"({rb['rebuild_events_per_s']:,} events/s; peak RSS {rb['rebuild_peak_rss_mib']} "
            f"MiB) | ≤ 60 s | {yes(rb['goal_met'])} |"
        )
    if se:
        a = se["athar"]
        rows.append(
            f"| records: search over {se['people']:,} people, {se['queries']} queries | "
            f"**p95 {a['p95_ms']} ms** (p50 {a['p50_ms']}, max {a['max_ms']}) | p95 ≤ 50 ms | "
            f"{yes(se['goal_met'])} |"
        )
    if im:
        for label, f in im["files"].items():
            rows.append(
                f"| records: CSV import of {im['rows']:,} rows, {label} | "
                f"**{f['rows_per_s']:,} rows/s** (re-import {f['reimport_rows_per_s']:,}/s; "
                f"peak RSS {f['peak_rss_mib']} MiB) | ≥ 5,000 rows/s | {yes(f['goal_met'])} |"
            )
    return rows


def render(res: dict[str, Any]) -> str:
    """The "Records" section of docs/benchmarks.md."""
    out: list[str] = []
    w = out.append
    scale = res["scale"]
    w(f"{SECTION}\n")
    w(
        "Generated by `benchmarks/bench_records.py --doc` (also run by `run_all.py`). "
        f"Run on {res['date']}; the records benchmark took {res['total_s'] / 60:.1f} min"
        + (f" at **scale {scale}** (sizes below are scaled)" if scale != 1 else "")
        + f". Data lives in `{res.get('data_dir', ROOT)}` (never in the repository); built vaults "
        "are reused while the code that made them is unchanged (the rebuild's ledger: while "
        "the ledger code is; with `--rebuild`, never), and their build times are the ones "
        "measured when they were built. Timed steps run in child processes "
        "(peak RSS from `wait4`), wait for the machine to be near idle first, and record the "
        "CPU seconds other processes used meanwhile (**other CPU s**).\n"
    )
    w("| | |\n|---|---|")
    for key, value in res["machine"].items():
        w(f"| {key} | {value} |")
    w("")
    w("| benchmark | result | goal | status |\n|---|---|---|---|")
    for row in summary_rows(res):
        w(row)
    w("")
    rb, se, im = res.get("rebuild"), res.get("search"), res.get("import")
    if rb:
        render_rebuild(w, rb)
    if se:
        render_search(w, se)
    if im:
        render_import(w, im)
    return "\n".join(out) + "\n"


def render_rebuild(w: Callable[[str], None], rb: dict[str, Any]) -> None:
    b = rb["build"]
    made = b["made"]
    w(f"### 4.1 Rebuild of the projection from {rb['events']:,} events\n")
    w(
        f"The ledger holds {rb['events']:,} record events (+ `vault.created`): "
        f"{made['person']:,} person creations (Arabic given/father/grandfather/family names, "
        f"a quarter with Latin spellings, sex, age, origin), {made['status']:,} status records "
        f"of those people (killed / detained / missing / disappeared, with dates and places), "
        f"{made['incident']:,} incidents (Arabic titles, dates, places, coordinates, "
        f"violations, weapons, casualty ranges), {made['updated']:,} edits (`record.updated` "
        f"of one or two fields) and {made['linked']:,} incident → victim links, committed "
        f"through `Records.commit` in batches of {COMMIT_BATCH:,}. Build: "
        f"{b['build_s']:.0f} s ({b['build_events_per_s']:,} events/s, peak RSS "
        f"{mib(b['peak_rss_kib'])} MiB)"
        + (f", **reused** from {b['built_at']}" if b.get("reused") else ", in this run")
        + (
            " by earlier vault code (`--keep-ledger`; ledger code fingerprint "
            f"{b['kept_despite_code_change']}, now {b['ledger_code_now']}; read by this revision)"
            if b.get("kept_despite_code_change")
            else ""
        )
        + f"; vault on disk {rb['vault_bytes'] / 1e9:.2f} GB.\n"
    )
    w(
        "Timed: `Records.rebuild()` on the embedded SQLCipher store in a child process (after "
        "opening the vault); the last repeat is `athar rebuild --json` as a whole command "
        "(start-up, Argon2id unlock and the count included). Record, link and history counts "
        "are checked equal before and after. Peers, same run: **read floor** = every event "
        "decrypted and parsed by `vault.ledger.events_after` and nothing else; **plain SQLite "
        "load** = the rows the rebuilt projection holds (records, terms, links, history and "
        "the FTS5 documents, prepared as Python tuples beforehand) written by stdlib "
        "`sqlite3` without encryption, journal off, indexes after the load, like the rebuild.\n"
    )
    w(
        "| repeat | via | rebuild s | events/s | peak RSS MiB | read floor s | plain SQLite "
        "load s | counts equal | other CPU s (rebuild / read / load) |"
    )
    w("|---|---|---|---|---|---|---|---|---|")
    for r in rb["repeats"]:
        w(
            f"| {r['repeat']} | {r['via']} | {r['rebuild_s']:.1f} | "
            f"{rb['events'] / r['rebuild_s']:,.0f} | {mib(r['rebuild_peak_rss_kib'])} | "
            f"{r['read_s']:.1f} | {r['sqlite_load_s']:.1f} | {r['counts_equal']} | "
            f"{r['rebuild_foreign_cpu_s']:.1f} / {r['read_foreign_cpu_s']:.1f} / "
            f"{r['sqlite_foreign_cpu_s']:.1f} |"
        )
    w("")
    rows = rb["repeats"][0]["sqlite_rows"]
    w("| figure | value |\n|---|---|")
    w(
        f"| **median rebuild** | **{rb['median_rebuild_s']:.1f} s** = "
        f"{rb['rebuild_events_per_s']:,} events/s (goal ≤ 60 s: {yes(rb['goal_met'])}) |"
    )
    w(
        f"| median read floor (decrypt + parse only) | {rb['median_read_floor_s']:.1f} s = "
        f"{rb['read_floor_events_per_s']:,} events/s |"
    )
    w(
        f"| median plain SQLite load ({rows['records']:,} records, {rows['history']:,} history, "
        f"{rows['terms']:,} terms, {rows['links']:,} links, {rows['fts']:,} FTS docs) | "
        f"{rb['median_sqlite_load_s']:.1f} s |"
    )
    w(f"| ratio rebuild / read floor | {rb['ratio_vs_read_floor']} |")
    w(f"| ratio rebuild / plain SQLite load | {rb['ratio_vs_sqlite_load']} |")
    w(f"| ratio rebuild / (read floor + plain load) | {rb['ratio_vs_read_plus_load']} |")
    w(
        f"| peak RSS of the rebuild process | {rb['rebuild_peak_rss_mib']} MiB "
        f"(after opening, before the rebuild: {rb['rss_before_rebuild_mib']} MiB) |"
    )
    w(f"| peak RSS of the read floor process | {rb['read_peak_rss_mib']} MiB |")
    cpu = [r for r in rb["repeats"] if "writer_cpu_s" in r]
    if cpu:
        w(
            "| CPU s of the writer / reader process, API repeats | "
            + ", ".join(f"{r['writer_cpu_s']:.1f} / {r['reader_cpu_s']:.1f}" for r in cpu)
            + " |"
        )
    counts = ", ".join(
        f"{k.split('.', 1)[1]} {v:,}" for k, v in rb["counts"].items() if k.startswith("records.")
    )
    w(f"| records after the rebuild | {counts} |")
    w("")
    if rb.get("profile"):
        w("Where a rebuild's time goes (cProfile of `Records.rebuild()`, own time, top rows):\n")
        w("| function | calls | own s | cumulative s |\n|---|---|---|---|")
        for t in rb["profile"]:
            w(
                f"| `{t['function']}` | {t['calls']:,} | {t['tottime_s']:.2f} | "
                f"{t['cumtime_s']:.2f} |"
            )
        w("")


def render_search(w: Callable[[str], None], se: dict[str, Any]) -> None:
    b = se["build"]
    w(f"### 4.2 Search over {se['people']:,} people\n")
    w(
        f"{len(b['files'])} generated CSV lists ({b['csv_bytes'] / 1e6:.0f} MB) of "
        f"{b['rows']:,} distinct people — Syrian Arabic names with realistic frequencies "
        "(محمد about one man in seven, a long tail of rarer family names), a quarter with "
        "Latin spellings, ages in Arabic-Indic digits now and then, origins such as دوما, "
        "داريا, حلب, حمص, إدلب, درعا — half of the rows with a status (killed, detained, "
        f"missing, disappeared; date; place), imported with `import_csv`: "
        f"{b['counts']['records']:,} records. Import {b['import_s']:.0f} s "
        f"({b['rows_per_s']:,} rows/s, peak RSS {mib(b['peak_rss_kib'])} MiB)"
        + (f", **reused** from {b['built_at']}" if b.get("reused") else ", in this run")
        + ".\n"
    )
    w(
        f"{se['queries']} queries through `Records.find(query, Filters(...), limit=50)` on "
        "the SQLCipher store, in one process: a warm-up pass, then per query the median of "
        f"{se['passes']} timed passes (two processes × 3). {se['full_page_queries']} queries "
        f"fill the page of 50, {se['zero_hit_queries']} find nothing. Peers: the exact SQL "
        "statements `Records.find` sent (captured from SQLAlchemy) on an unencrypted copy of "
        "the same rows and FTS5 documents, run (a) with stdlib `sqlite3` (SQLite "
        f"{se['peer_sqlite']}) and (b) with the SQLCipher library opened without a key, i.e. "
        f"plain SQLite {se['same_lib_sqlite']} with the projection's own query planner. The "
        "two SQLite versions do not always choose the same plan, so (b) isolates what "
        "encryption and the Athar/SQLAlchemy layers cost, and (a) is the everyday baseline.\n"
    )
    w(
        "| category | queries | p50 ms | p95 ms | max ms | stdlib p50 / p95 ms | same-library "
        "p50 / p95 ms |"
    )
    w("|---|---|---|---|---|---|---|")
    for cat, lat in se["athar_by_category"].items():
        peer = se["peer_by_category"][cat]
        same = se["same_lib_by_category"][cat]
        w(
            f"| {cat} | {lat['n']} | {lat['p50_ms']} | {lat['p95_ms']} | {lat['max_ms']} | "
            f"{peer['p50_ms']} / {peer['p95_ms']} | {same['p50_ms']} / {same['p95_ms']} |"
        )
    a, p, q = se["athar"], se["peer"], se["same_lib"]
    w(
        f"| **all** | **{a['n']}** | **{a['p50_ms']}** | **{a['p95_ms']}** | **{a['max_ms']}** "
        f"| {p['p50_ms']} / {p['p95_ms']} | {q['p50_ms']} / {q['p95_ms']} |"
    )
    w("")
    w(
        f"Ratio Athar / stdlib sqlite3: p50 {se['ratio_p50']}, p95 {se['ratio_p95']}; Athar / "
        f"same library unencrypted: p50 {se['ratio_same_lib_p50']}, p95 "
        f"{se['ratio_same_lib_p95']}. Goal p95 ≤ 50 ms: {yes(se['goal_met'])}. Peak RSS of "
        f"the searching process {se['search_peak_rss_mib']} MiB. Result counts identical in "
        "all three: "
        + (
            "yes"
            if not se["hit_mismatches"]
            else "no: " + ", ".join(map(str, se["hit_mismatches"]))
        )
        + ".\n"
    )
    w("Slowest queries:\n")
    w("| category | query | filters | hits | ms | stdlib ms | same-library ms |")
    w("|---|---|---|---|---|---|---|")
    for s in se["slowest"]:
        filters = ", ".join(f"{k}={v}" for k, v in s["filters"].items()) or "—"
        w(
            f"| {s['cat']} | {s['q'] or '—'} | {filters} | {s['hits']} | {s['ms']} | "
            f"{s['peer_ms']} | {s['same_lib_ms']} |"
        )
    w("")
    pg = se.get("postgres")
    if pg and "skipped" not in pg:
        lat = pg["latency"]
        w(f"#### PostgreSQL store ({pg['records']:,} records)\n")
        w(
            f"`Records(vault, postgresql://…)` on a throwaway PostgreSQL {pg['server_version']} "
            "(tests/pgserver.py: unix socket, `fsync=off`, `synchronous_commit=off`, default "
            f"memory settings) loads the store from the ledger on first open: {pg['load_s']:.0f} "
            f"s ({pg['load_records_per_s']:,} records/s, peak RSS {pg['load_peak_rss_mib']} MiB, "
            f"database {pg['db_bytes'] / 1e9:.2f} GB). The same {se['queries']} queries, a "
            "warm-up pass, then the median of 3 passes per query:\n"
        )
        w("| category | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
        for cat, c in pg["by_category"].items():
            w(f"| {cat} | {c['p50_ms']} | {c['p95_ms']} | {c['max_ms']} |")
        w(f"| **all** | **{lat['p50_ms']}** | **{lat['p95_ms']}** | **{lat['max_ms']}** |")
        w("")
        w("Slowest on PostgreSQL:\n")
        w("| category | query | filters | ms |\n|---|---|---|---|")
        for s in pg["slowest"]:
            filters = ", ".join(f"{k}={v}" for k, v in s["filters"].items()) or "—"
            w(f"| {s['cat']} | {s['q'] or '—'} | {filters} | {s['ms']} |")
        w("")
    elif pg:
        w(f"PostgreSQL: skipped ({pg['skipped']}).\n")


def render_import(w: Callable[[str], None], im: dict[str, Any]) -> None:
    w(f"### 4.3 CSV import of {im['rows']:,} people\n")
    w(
        "Two generated lists (same name generator as above): **people** — names, sex, age, "
        "origin (10 columns); **people+status** — the same plus `status`, `status.date`, "
        "`status.place.name_ar` on every row, so two records a row. Timed: `import_csv` "
        "in a child process on a fresh vault (created outside the timing), then the "
        "re-import of the same file (every row unchanged). Peer, same run: Python `csv` → "
        "stdlib `sqlite3` `executemany` into a table of the same text columns, WAL, "
        "`synchronous=FULL`, one transaction (no checks, no signing, no encryption). Order "
        "alternates; medians.\n"
    )
    for label, f in im["files"].items():
        w(f"**{label}** ({f['csv_bytes'] / 1e6:.1f} MB, {f['records']:,} records)\n")
        w(
            "| repeat | order | import s | rows/s | re-import s | re-import rows/s | peer s | "
            "peak RSS MiB | other CPU s (import / re-import / peer) |"
        )
        w("|---|---|---|---|---|---|---|---|---|")
        for r in f["repeats"]:
            w(
                f"| {r['repeat']} | {' → '.join(r['order'])} | {r['import_s']:.2f} | "
                f"{im['rows'] / r['import_s']:,.0f} | {r['reimport_s']:.2f} | "
                f"{im['rows'] / r['reimport_s']:,.0f} | {r['peer_s']:.2f} | "
                f"{mib(r['peak_rss_kib'])} | {r['foreign_cpu_s']:.1f} / "
                f"{r['reimport_foreign_cpu_s']:.1f} / {r['peer_foreign_cpu_s']:.1f} |"
            )
        w("")
        w(
            f"Median **{f['rows_per_s']:,} rows/s** ({f['records_per_s']:,} records/s; goal "
            f"≥ 5,000 rows/s: {yes(f['goal_met'])}); re-import {f['reimport_rows_per_s']:,} "
            f"rows/s; peer {f['peer_rows_per_s']:,} rows/s, so the import takes "
            f"{f['ratio_peer_over_athar']}× the peer's time. Peak RSS {f['peak_rss_mib']} MiB "
            f"(after the first import {f['import_peak_rss_mib']} MiB; before it "
            f"{f['rss_before_import_mib']} MiB).\n"
        )
    ra = im.get("rebuild_after_import")
    if ra:
        w(
            f"A rebuild of such an imported vault ({ra['records']:,} records in "
            f"{ra['events']:,} `records.imported` events, after the last {ra['file']} repeat, "
            f"same process): {ra['rebuild_s']:.1f} s, peak RSS {mib(ra['peak_rss_kib'])} MiB "
            f"(before it {mib(ra['rss_before_kib'])} MiB); counts equal: "
            f"{ra['counts_equal']}.\n"
        )


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[nxt + 1 :] if nxt >= 0 else "")
    DOC.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------------------


def profile_rebuild(vault: Path) -> list[dict[str, Any]]:
    """cProfile of one in-process rebuild: where the time goes (runs in this process)."""
    import cProfile
    import pstats

    v, records = _open(str(vault))
    profiler = cProfile.Profile()
    profiler.enable()
    records.rebuild()
    profiler.disable()
    records.close()
    v.close()
    table: dict[tuple[str, int, str], Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    top = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:14]
    return [
        {
            "function": f"{Path(f).name}:{line}({func})",
            "calls": nc,
            "tottime_s": round(tt, 2),
            "cumtime_s": round(ct, 2),
        }
        for (f, line, func), (_cc, nc, tt, ct, _callers) in top
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument(
        "--scale",
        type=float,
        default=float(os.environ.get("ATHAR_BENCH_SCALE", "1")),
        help="size factor for every data set (default $ATHAR_BENCH_SCALE or 1)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="rebuild,search,import")
    parser.add_argument(
        "--pg-people",
        type=int,
        default=None,
        help=f"people in the PostgreSQL store (default {PG_PEOPLE:,} × scale)",
    )
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile one rebuild")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the data sets")
    parser.add_argument(
        "--keep-ledger",
        action="store_true",
        help="keep the built 1M-event ledger even if the vault code changed since",
    )
    parser.add_argument("--doc", action="store_true", help="write the section into the doc")
    args = parser.parse_args()
    if args.child:
        emit(CHILDREN[args.child](**json.loads(args.child_args or "{}")))
        return

    global ROOT
    if args.scale != 1 and "ATHAR_BENCH_RECORDS_DIR" not in os.environ:
        # a smoke run must not throw away the full-size data sets kept for reuse
        ROOT = ROOT.with_name(f"{ROOT.name}-scale{args.scale:g}")
    started = time.perf_counter()
    check_disk(ROOT, int(8e9 * min(1.0, args.scale)) + 10**9)
    parts = set(args.parts.split(","))
    events = max(1000, round(REBUILD_EVENTS * args.scale))
    people = max(1000, round(SEARCH_PEOPLE * args.scale))
    rows = max(500, round(IMPORT_ROWS * args.scale))
    pg_default = min(people, max(1000, round(PG_PEOPLE * args.scale)))
    pg_people = 0 if args.no_pg else (args.pg_people if args.pg_people is not None else pg_default)
    result: dict[str, Any] = {
        "benchmark": "records",
        "scale": args.scale,
        "data_dir": str(ROOT),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": records_machine(),
    }
    if "import" in parts:
        result["import"] = part_import(rows, args.repeats)
    if "rebuild" in parts:
        result["rebuild"] = part_rebuild(events, args.repeats, args.rebuild, args.keep_ledger)
        if args.profile:
            log("profiling one rebuild in process")
            result["rebuild"]["profile"] = profile_rebuild(ROOT / "rebuild" / "vault")
    if "search" in parts:
        result["search"] = part_search(people, pg_people, args.rebuild)
    result["total_s"] = round(time.perf_counter() - started, 1)
    (ROOT / "results.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    if args.doc:
        write_doc(render(result))
        log(f"wrote the Records section of {DOC.relative_to(REPO)}")
    log(f"records benchmark done in {result['total_s'] / 60:.1f} min")
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
