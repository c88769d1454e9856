"""The comparison table of a large list: each distinct name handled once, on every core.

A million-record list holds far fewer distinct values than records: a few thousand
places, dates and years, and names that repeat across lists. `feature_row` (name
parsing, transliteration, keys) is a pure function of a row, and each of its columns
depends on a few of the row's fields only (`DEPENDS`). So it is called once per distinct
value of those fields (a *probe*: a row with only those fields filled) and the answers
are mapped back to the records. The names, the costly part, are probed in worker
processes, one chunk of distinct names at a time; the table is the same whatever the
number of workers or the chunking, since every probe gives the same answer anywhere.

The table must be exactly `features.feature_table(rows)`. `DEPENDS` describes
feature_row; should feature_row come to read another field, a sample of rows checked
against it at every run sends the run back to the plain path (slower, still right), and
tests/test_linkage_scale.py fails so the map gets updated.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed

from athar.linkage.features import COLUMNS, INT_COLUMNS, NAME_PARTS, feature_row, feature_table
from athar.linkage.lists import ListRow

PARALLEL_FROM = 20_000  # rows; below, starting worker processes costs more than it saves
CHUNK = 4_000  # distinct names per task given to a worker
SAMPLE = 64  # rows checked against feature_row at every run

_NAME_COLUMNS = (
    *(f"{p}_{k}" for p in NAME_PARTS for k in ("norm", "key", "skel", "id")),
    "full_norm",
    "sex",
    "script",
)
# Which fields of a row each column of feature_row's answer depends on. unique_id and
# source are the row's record_id and source as they are.
DEPENDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("name", "other_name", "father", "mother", "sex"), _NAME_COLUMNS),
    (("birth_year",), ("birth_year", "birth_win")),
    (("death_day",), ("death_day", "death_win_a", "death_win_b")),
    (("place",), ("place_key",)),
    (("governorate",), ("governorate",)),
)
_COPIED = {"unique_id": "record_id", "source": "source"}
_BLANK: dict[str, Any] = {
    "record_id": "",
    "source": "",
    "name": "",
    "other_name": "",
    "father": "",
    "mother": "",
    "sex": None,
    "birth_year": None,
    "death_day": None,
    "place": "",
    "governorate": "",
    "status": "",
}


def _probe(fields: tuple[str, ...], values: tuple[Any, ...], columns: tuple[str, ...]) -> list[Any]:
    fields_ = dict(_BLANK)
    fields_.update(zip(fields, values, strict=True))
    row = feature_row(ListRow(**fields_))
    return [row[c] for c in columns]


def _probe_chunk(
    fields: tuple[str, ...], chunk: list[tuple[Any, ...]], columns: tuple[str, ...]
) -> tuple[list[list[Any]], float]:
    """One worker's task: the answers for a chunk of distinct values, column by column,
    and the CPU seconds they took (a worker's time is not counted in ours)."""
    start = time.process_time()
    answers = [_probe(fields, values, columns) for values in chunk]
    return [[a[j] for a in answers] for j in range(len(columns))], time.process_time() - start


def workers_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def feature_frame(
    rows: Sequence[ListRow], workers: int | None = None, stats: dict[str, float] | None = None
) -> pd.DataFrame:
    """`features.feature_table(rows)`, computed once per distinct value and, for large
    lists, with *workers* processes (default: one per core; 1 keeps to this process).
    *stats* receives the workers' CPU seconds and whether the plain path was taken."""
    stats = {} if stats is None else stats
    stats["worker_cpu"], stats["fallback"] = 0.0, 0.0
    if not rows:
        return feature_table(rows)
    if workers is None:
        workers = workers_available() if len(rows) >= PARALLEL_FROM else 1
    frame = distinct_table(rows, workers, stats)
    if frame is None or not _agrees(rows, frame):
        stats["fallback"] = 1.0
        return feature_table(rows)
    return frame


def distinct_table(
    rows: Sequence[ListRow], workers: int = 1, stats: dict[str, float] | None = None
) -> pd.DataFrame | None:
    """The table built from probes; None when `DEPENDS` does not cover the columns."""
    stats = {} if stats is None else stats
    covered = {c for _, columns in DEPENDS for c in columns} | set(_COPIED)
    if covered != set(COLUMNS) or len(covered) != sum(len(c) for _, c in DEPENDS) + 2:
        return None
    data: dict[str, Any] = {
        column: [getattr(r, field) for r in rows] for column, field in _COPIED.items()
    }
    for fields, columns in DEPENDS:
        get = attrgetter(*fields)
        keys = [get(r) for r in rows] if len(fields) > 1 else [(get(r),) for r in rows]
        codes, distinct = _factorise(keys)
        if fields[0] == "name" and workers > 1 and len(distinct) > CHUNK:
            answers, cpu = _in_workers(fields, distinct, columns, workers)
            stats["worker_cpu"] = stats.get("worker_cpu", 0.0) + cpu
        else:
            answers, _ = _probe_chunk(fields, distinct, columns)
        for column, answer in zip(columns, answers, strict=True):
            values = np.empty(len(distinct), dtype=object)
            values[:] = answer
            data[column] = values[codes]
    frame = pd.DataFrame({c: data[c] for c in COLUMNS})
    for column in INT_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    return frame


def _factorise(keys: list[tuple[Any, ...]]) -> tuple[np.ndarray[Any, Any], list[tuple[Any, ...]]]:
    """Each key's number among the distinct keys, in order of first appearance."""
    seen: dict[tuple[Any, ...], int] = {}
    codes = np.fromiter(
        (seen.setdefault(k, len(seen)) for k in keys), dtype=np.int64, count=len(keys)
    )
    return codes, list(seen)


def _in_workers(
    fields: tuple[str, ...], distinct: list[tuple[Any, ...]], columns: tuple[str, ...], workers: int
) -> tuple[list[list[Any]], float]:
    chunks = [distinct[i : i + CHUNK] for i in range(0, len(distinct), CHUNK)]
    # forkserver: a fresh process forks the workers, never this one (which may hold
    # threads: the web app's, DuckDB's), and the workers import only what they need
    context = multiprocessing.get_context("forkserver")
    out: list[list[Any]] = [[] for _ in columns]
    cpu = 0.0
    try:
        with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
            for answers, seconds in pool.map(
                _probe_chunk, [fields] * len(chunks), chunks, [columns] * len(chunks)
            ):
                cpu += seconds
                for column, answer in zip(out, answers, strict=True):
                    column.extend(answer)
    except (OSError, BrokenProcessPool):
        # no processes allowed here, or a main module that starts its work again when a
        # worker imports it: the same answers, in this process
        return _probe_chunk(fields, distinct, columns)[0], cpu
    return out, cpu


def _agrees(rows: Sequence[ListRow], frame: pd.DataFrame) -> bool:
    """A sample of rows spread over the list gives the same values through feature_row
    (values, not dtypes: a column all empty in the sample has another dtype)."""
    step = max(1, len(rows) // SAMPLE)
    picked = list(range(0, len(rows), step))[:SAMPLE]
    expected = feature_table([rows[i] for i in picked])
    got = frame.iloc[picked].reset_index(drop=True)
    return list(got.columns) == list(expected.columns) and all(
        _values(got[c]) == _values(expected[c]) for c in expected.columns
    )


def _values(column: pd.Series) -> list[Any]:
    return [None if v is None or v is pd.NA or v != v else v for v in column.tolist()]
