"""Capture histories: read a HISTORIES.csv or a linkage clusters CSV into frequency tables.

A capture history says on which lists a person appears (1) or not (0). Estimation needs
the frequency of every observable history; the all-zeros history (on no list) is the
unknown being estimated, so a file that gives it is refused rather than used.

Both readers check everything before returning and refuse with the line and column at
fault: a count that is not a whole number, a history value other than 0 or 1, the same
history twice (adding them up silently could double a pasted block), a stratum cell left
empty, a cluster whose records name two different strata. Files in UTF-8 (with or
without BOM) or Windows-1256 are read the way record imports read them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from athar.errors import InputError
from athar.records.csvimport import decode, read_file, read_rows

MAX_LISTS = 12  # 4,095 observable histories; more lists than any documentation effort has
MAX_COUNT = 10**12
COUNT_COLUMN = "count"
CLUSTER_COLUMN = "cluster_id"
SOURCE_COLUMN = "source"
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_WHOLE = re.compile(r"[0-9]+")
FORBIDDEN_IN_NAMES = (":", ",")  # they separate names in --interactions A:B,C:D

Source = Literal["histories", "clusters"]


def pattern_matrix(n_lists: int) -> NDArray[np.int8]:
    """Every observable history as rows of 0/1, in the order of their codes 1 … 2^J − 1
    (code = the history read as a binary number, first list = most significant bit)."""
    codes = np.arange(1, 2**n_lists, dtype=np.int64)
    shifts = np.arange(n_lists - 1, -1, -1, dtype=np.int64)
    return ((codes[:, None] >> shifts[None, :]) & 1).astype(np.int8)


def pattern_code(history: Sequence[int]) -> int:
    code = 0
    for bit in history:
        code = (code << 1) | int(bit)
    return code


@dataclass(frozen=True)
class CaptureHistories:
    """The frequency of every observable history over fixed, named lists (one stratum)."""

    lists: tuple[str, ...]
    counts: NDArray[np.int64]  # counts[code - 1]: people with that history
    stratum: str | None = None

    def __post_init__(self) -> None:
        if self.counts.shape != (2 ** len(self.lists) - 1,):
            raise ValueError("counts must hold one entry per observable history")

    @classmethod
    def from_mapping(
        cls,
        lists: Sequence[str],
        frequencies: Mapping[tuple[int, ...], int],
        stratum: str | None = None,
    ) -> CaptureHistories:
        counts = np.zeros(2 ** len(lists) - 1, dtype=np.int64)
        for history, count in frequencies.items():
            counts[pattern_code(history) - 1] += count
        return cls(tuple(lists), counts, stratum)

    @property
    def n_lists(self) -> int:
        return len(self.lists)

    @property
    def patterns(self) -> NDArray[np.int8]:
        return pattern_matrix(self.n_lists)

    @property
    def observed(self) -> int:
        """Distinct people on at least one list."""
        return int(self.counts.sum())

    def list_totals(self) -> NDArray[np.int64]:
        """People on each list."""
        totals: NDArray[np.int64] = self.counts @ self.patterns.astype(np.int64)
        return totals

    def overlap(self, first: int, second: int) -> int:
        """People on both of two lists."""
        both = (self.patterns[:, first] == 1) & (self.patterns[:, second] == 1)
        return int(self.counts[both].sum())

    def without_list(self, index: int) -> CaptureHistories:
        """The same people over the other lists; only for a list that records no one, so
        that nobody moves into the unobserved cell."""
        if self.list_totals()[index] != 0:
            raise ValueError("only a list that records no one can be left out")
        keep = [j for j in range(self.n_lists) if j != index]
        patterns = self.patterns
        frequencies: dict[tuple[int, ...], int] = {}
        for row, count in zip(patterns, self.counts, strict=True):
            if count and row[index] == 0:
                frequencies[tuple(int(row[j]) for j in keep)] = int(count)
        return CaptureHistories.from_mapping(
            [self.lists[j] for j in keep], frequencies, self.stratum
        )

    def rows(self) -> Iterator[tuple[tuple[int, ...], int]]:
        """(history, count) for every history with people on it."""
        for row, count in zip(self.patterns, self.counts, strict=True):
            if count:
                yield tuple(int(x) for x in row), int(count)


@dataclass(frozen=True)
class HistoryTable:
    """What a file held: the lists, and one table per stratum (one, unnamed, without
    --stratify)."""

    lists: tuple[str, ...]
    strata: tuple[CaptureHistories, ...]
    stratify: str | None = None
    encoding: str = "utf-8"
    source: Source = "histories"

    @property
    def observed(self) -> int:
        return sum(h.observed for h in self.strata)


def load(
    path: Path,
    *,
    from_clusters: bool = False,
    stratify: str | None = None,
    encoding: str | None = None,
) -> HistoryTable:
    data = read_file(path)
    parse = parse_clusters if from_clusters else parse_histories
    return parse(data, stratify=stratify, encoding=encoding)


def _text(data: bytes | str, encoding: str | None) -> tuple[str, str]:
    if isinstance(data, str):
        return data, "text"
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("the file is not a text file")
    return decode(data, encoding)


def _name(raw: str) -> str:
    return unicodedata.normalize("NFC", raw.strip().lstrip("\ufeff").strip())


def _header(raw: Sequence[str]) -> list[str]:
    names = [_name(h) for h in raw]
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            continue  # an unnamed column (Excel leaves them) must stay empty: see _cells
        key = name.casefold()
        if key in seen:
            raise InputError("two columns are named {name}", name=name)
        seen[key] = index
    return names


def _find(header: Sequence[str], wanted: str) -> int | None:
    key = _name(wanted).casefold()
    for index, name in enumerate(header):
        if name.casefold() == key:
            return index
    return None


def _cells(header: Sequence[str], line: int, row: list[str]) -> list[str]:
    if len(row) != len(header):
        raise InputError(
            "line {line} has {found} cells but the header has {expected}",
            line=line,
            found=len(row),
            expected=len(header),
        )
    for name, cell in zip(header, row, strict=True):
        if not name and cell.strip():
            raise InputError(
                "line {line}: a column with no name holds {value}",
                line=line,
                value=cell.strip()[:40],
            )
    return [cell.strip() for cell in row]


def _whole_number(cell: str, line: int, column: str) -> int:
    ascii_cell = cell.translate(_DIGITS)
    if not _WHOLE.fullmatch(ascii_cell):
        raise InputError(
            "line {line}, column {column}: {value} is not a whole number of people (0 or more)",
            line=line,
            column=column,
            value=cell[:40] or "''",
        )
    value = int(ascii_cell)
    if value > MAX_COUNT:
        raise InputError(
            "line {line}, column {column}: {value} is too large",
            line=line,
            column=column,
            value=cell[:40],
        )
    return value


def _bit(cell: str, line: int, column: str) -> int:
    ascii_cell = cell.translate(_DIGITS)
    if ascii_cell not in ("0", "1"):
        raise InputError(
            "line {line}, column {column}: {value} is not 0 or 1 (1: on this list, 0: not); "
            "a column that is not a list can be named with --stratify",
            line=line,
            column=column,
            value=cell[:40] or "''",
        )
    return int(ascii_cell)


def _check_lists(lists: Sequence[str]) -> None:
    for name in lists:
        if any(mark in name for mark in FORBIDDEN_IN_NAMES):
            raise InputError(
                "the list name {name} contains ':' or ','; rename it (these marks separate "
                "names in --interactions)",
                name=name,
            )
    if len(lists) > MAX_LISTS:
        raise InputError(
            "{found} lists given; at most {max} can be estimated together",
            found=len(lists),
            max=MAX_LISTS,
        )


def _stratum(cell: str, line: int, column: str) -> str:
    value = _name(cell)
    if not value:
        raise InputError(
            "line {line}: the stratum column {column} is empty", line=line, column=column
        )
    return value


def parse_histories(
    data: bytes | str, *, stratify: str | None = None, encoding: str | None = None
) -> HistoryTable:
    """A HISTORIES.csv: one 0/1 column per list (its name is the list's), a ``count``
    column, and with *stratify* one more column naming each row's stratum."""
    text, used = _text(data, encoding)
    raw_header, rows = read_rows(text)
    header = _header(raw_header)
    count_at = _find(header, COUNT_COLUMN)
    if count_at is None:
        raise InputError(
            "no count column: a histories file needs one 0/1 column per list and a count "
            "column with the number of people who have that history"
        )
    stratum_at = None
    if stratify is not None:
        stratum_at = _find(header, stratify)
        if stratum_at is None or stratum_at == count_at:
            raise InputError("no column named {name} to stratify by", name=_name(stratify))
    list_at = [i for i, name in enumerate(header) if name and i not in (count_at, stratum_at)]
    lists = [header[i] for i in list_at]
    _check_lists(lists)
    if not lists:
        raise InputError("no list columns: give one 0/1 column per list")
    tables: dict[str | None, dict[tuple[int, ...], int]] = {}
    first_line: dict[tuple[str | None, tuple[int, ...]], int] = {}
    for line, row in rows:
        cells = _cells(header, line, row)
        history = tuple(_bit(cells[i], line, header[i]) for i in list_at)
        count = _whole_number(cells[count_at], line, header[count_at])
        stratum = (
            None if stratum_at is None else _stratum(cells[stratum_at], line, header[stratum_at])
        )
        key = (stratum, history)
        if key in first_line:
            raise InputError(
                "the history {history} appears on lines {first} and {second}; give each "
                "history once (add the counts if both are meant)",
                history="".join(map(str, history)),
                first=first_line[key],
                second=line,
            )
        first_line[key] = line
        table = tables.setdefault(stratum, {})
        if not any(history):
            if count:
                raise InputError(
                    "line {line}: the history with 0 on every list has a count; people on "
                    "no list are what is being estimated, so this row cannot be given",
                    line=line,
                )
            continue
        table[history] = count
    if stratum_at is None and not tables:
        raise InputError("the file has no histories")
    strata = tuple(
        CaptureHistories.from_mapping(lists, tables[key], key) for key in _ordered(tables)
    )
    if not strata:
        raise InputError("the file has no histories")
    return HistoryTable(tuple(lists), strata, _stratify_name(header, stratum_at), used)


def _ordered(keys: Iterable[str | None]) -> list[str | None]:
    return sorted(keys, key=lambda k: (k is not None, k or ""))


def _stratify_name(header: Sequence[str], index: int | None) -> str | None:
    return None if index is None else header[index]


def parse_clusters(
    data: bytes | str, *, stratify: str | None = None, encoding: str | None = None
) -> HistoryTable:
    """A linkage result: one row per record with its ``cluster_id`` (the person) and its
    ``source`` (the list). A person is captured by every source that has a record of
    them; two records of one person in the same source count once."""
    text, used = _text(data, encoding)
    raw_header, rows = read_rows(text)
    header = _header(raw_header)
    cluster_at = _find(header, CLUSTER_COLUMN)
    source_at = _find(header, SOURCE_COLUMN)
    if cluster_at is None or source_at is None:
        raise InputError(
            "a clusters file needs the columns cluster_id and source (one row per record)"
        )
    stratum_at = None
    if stratify is not None:
        stratum_at = _find(header, stratify)
        if stratum_at is None or stratum_at in (cluster_at, source_at):
            raise InputError("no column named {name} to stratify by", name=_name(stratify))
    sources_of: dict[str, set[str]] = {}
    stratum_of: dict[str, tuple[str, int]] = {}
    for line, row in rows:
        cells = _cells(header, line, row)
        cluster = cells[cluster_at]
        source = _name(cells[source_at])
        if not cluster:
            raise InputError("line {line}: the cluster_id is empty", line=line)
        if not source:
            raise InputError("line {line}: the source is empty", line=line)
        sources_of.setdefault(cluster, set()).add(source)
        if stratum_at is not None:
            value = _stratum(cells[stratum_at], line, header[stratum_at])
            known = stratum_of.setdefault(cluster, (value, line))
            if known[0] != value:
                raise InputError(
                    "cluster {cluster} is in stratum {first} on line {first_line} and in "
                    "{second} on line {line}; one person must be in one stratum",
                    cluster=cluster[:60],
                    first=known[0],
                    first_line=known[1],
                    second=value,
                    line=line,
                )
    if not sources_of:
        raise InputError("the file has no records")
    lists = sorted(set().union(*sources_of.values()))
    _check_lists(lists)
    position = {name: j for j, name in enumerate(lists)}
    tables: dict[str | None, dict[tuple[int, ...], int]] = {}
    for cluster, sources in sources_of.items():
        history = [0] * len(lists)
        for source in sources:
            history[position[source]] = 1
        stratum = stratum_of[cluster][0] if stratum_at is not None else None
        table = tables.setdefault(stratum, {})
        table[tuple(history)] = table.get(tuple(history), 0) + 1
    strata = tuple(
        CaptureHistories.from_mapping(lists, tables[key], key) for key in _ordered(tables)
    )
    return HistoryTable(tuple(lists), strata, _stratify_name(header, stratum_at), used, "clusters")
