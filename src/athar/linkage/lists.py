"""Read the lists analysts receive as spreadsheets (docs/import-format.md, "Lists for
linkage") into rows, all checked before any linkage starts.

Files are read the way record imports read them (UTF-8 with or without BOM, or
Windows-1256 from Arabic Excel; a file that mixes encodings is refused). Every problem
found is reported with its file and line, at most `MAX_PROBLEMS` of them, and nothing is
written: a list with an empty name or a repeated record id is refused whole rather than
half linked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from athar.errors import InputError
from athar.records.csvimport import decode, read_file, read_rows

COLUMNS = (
    "record_id",
    "source",
    "full_name",
    "name_ar",
    "name_latin",
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
MAX_PROBLEMS = 20
_SEX = {
    "m": "m",
    "male": "m",
    "man": "m",
    "ذكر": "m",
    "رجل": "m",
    "f": "f",
    "female": "f",
    "woman": "f",
    "أنثى": "f",
    "انثى": "f",
    "امرأة": "f",
}
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


@dataclass(slots=True)  # a million of them are held while a list is linked
class ListRow:
    record_id: str
    source: str
    name: str  # the name compared: full_name, else name_ar, else name_latin
    other_name: str  # the same name in the other script, when the list gives both
    father: str
    mother: str
    sex: str | None
    birth_year: int | None
    death_day: int | None  # days since 1970-01-01
    place: str
    governorate: str
    status: str = ""  # what the date is the date of (killed, detained, …), folded


@dataclass
class Lists:
    rows: list[ListRow] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)
    notes: list[tuple[str, dict[str, object]]] = field(default_factory=list)


def _int(text: str, low: int, high: int) -> int | None:
    text = text.strip().translate(_DIGITS)
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


def _day(text: str) -> int | None:
    """ISO dates (2016-03-24), or only a year and month (2016-03: the 15th)."""
    from datetime import date

    text = text.strip().translate(_DIGITS)
    if not text:
        return None
    parts = text.replace("/", "-").split("-")
    if len(parts) == 2:
        parts.append("15")
    y, m, d = (int(p) for p in parts)  # ValueError on anything else
    return (date(y, m, d) - date(1970, 1, 1)).days


def read_lists(paths: Sequence[Path], encoding: str | None = None) -> Lists:
    """Every row of every file, or an InputError naming each problem (file, line)."""
    out = Lists()
    problems: list[str] = []
    seen: dict[str, str] = {}
    for path in paths:
        text, used = decode(read_file(path), encoding)
        out.encodings[str(path)] = used
        header, rows = read_rows(text)
        header = [h.strip().lower() for h in header]
        unknown = [h for h in header if h and h not in COLUMNS]
        if unknown:
            raise InputError(
                "{path}: unknown columns {columns}; the columns are described in "
                "docs/import-format.md",
                path=path.name,
                columns=", ".join(unknown),
            )
        if "record_id" not in header or not {"full_name", "name_ar", "name_latin"} & set(header):
            raise InputError(
                "{path}: a list needs the columns record_id and full_name", path=path.name
            )
        col = {name: header.index(name) for name in COLUMNS if name in header}
        for line, cells in rows:
            cells = cells + [""] * (len(header) - len(cells))

            def get(name: str, cells: list[str] = cells, col: dict[str, int] = col) -> str:
                i = col.get(name)
                return cells[i].strip() if i is not None else ""

            where = f"{path.name}:{line}"
            rid = get("record_id")
            if not rid:
                problems.append(f"{where}: record_id is empty")
                continue
            if rid in seen:
                problems.append(f"{where}: record_id {rid} also at {seen[rid]}")
                continue
            seen[rid] = where
            names = [n for n in (get("full_name"), get("name_ar"), get("name_latin")) if n]
            if not names or not any(ch.isalpha() for ch in names[0]):
                problems.append(f"{where}: the name is empty")
                continue
            try:
                birth_year = _int(get("birth_year"), 1880, 2100)
                age = _int(get("age"), 0, 125)
                day = _day(get("date"))
            except ValueError:
                problems.append(f"{where}: age, birth_year or date cannot be read")
                continue
            if birth_year is None and age is not None and day is not None:
                birth_year = 1970 + int(day // 365.25) - age
            sex_text = get("sex").casefold()
            out.rows.append(
                ListRow(
                    rid,
                    get("source") or path.stem,
                    names[0],
                    names[1] if len(names) > 1 else "",
                    get("father_name"),
                    get("mother_name"),
                    _SEX.get(sex_text),
                    birth_year,
                    day,
                    get("place"),
                    get("governorate"),
                    get("status").casefold(),
                )
            )
            if len(problems) >= MAX_PROBLEMS:
                break
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise InputError(
            "the lists have {n} problems; nothing was linked:\n{problems}",
            n=len(problems),
            problems="\n".join(problems),
        )
    if not out.rows:
        raise InputError("the lists have no rows")
    return out
