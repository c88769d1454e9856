"""The comparison table: one row per record, the columns Splink compares.

Names go through the project's name handling once per record (`names.name_features`):
normalised Arabic, cross-script keys, name parts, variant-table ids. A father's or
mother's name given in its own column fills the part the full name lacks. Places are
compared by their key, so حلب and Aleppo meet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no stubs installed

from athar.linkage.arabic import text_script, words
from athar.linkage.lists import ListRow
from athar.linkage.names import name_features, part_form

NAME_PARTS = ("given", "father", "grandfather", "family", "mother")
COLUMNS = (
    "unique_id",
    "source",
    *(f"{p}_{k}" for p in NAME_PARTS for k in ("norm", "key", "skel", "id")),
    "full_norm",
    "sex",
    "birth_year",
    "death_day",
    "death_win_a",
    "death_win_b",
    "birth_win",
    "place_key",
    "governorate",
    "script",
)


def _place_key(text: str) -> str | None:
    return part_form(text, "family").key or None if text else None


def feature_row(row: ListRow) -> dict[str, Any]:
    f = name_features(row.name)
    out: dict[str, Any] = {"unique_id": row.record_id, "source": row.source}
    for part in NAME_PARTS:
        for kind in ("norm", "key", "skel", "id"):
            out[f"{part}_{kind}"] = f[f"{part}_{kind}"]
    for part, extra in (("father", row.father), ("mother", row.mother)):
        if extra and not out[f"{part}_key"]:
            form = part_form(extra, part)
            out[f"{part}_norm"], out[f"{part}_key"] = form.norm or None, form.key or None
            out[f"{part}_skel"], out[f"{part}_id"] = form.skel or None, form.name_id
    out["full_norm"] = f["full_norm"]
    out["sex"] = row.sex or f["sex"]
    out["birth_year"] = row.birth_year
    out["death_day"] = row.death_day
    # Two-week windows, the second shifted by one week: two dates at most a week apart
    # share at least one, so a date written a few days off still meets its twin in a block.
    day = row.death_day
    out["death_win_a"] = day // 14 if day is not None else None
    out["death_win_b"] = (day + 7) // 14 if day is not None else None
    out["birth_win"] = row.birth_year // 3 if row.birth_year is not None else None
    out["place_key"] = _place_key(row.place)
    out["governorate"] = (
        part_form(row.governorate, "family").key or None if row.governorate else None
    )
    out["script"] = f["script"]
    return out


INT_COLUMNS = ("birth_year", "death_day", "death_win_a", "death_win_b", "birth_win")


def feature_table(rows: Iterable[ListRow]) -> pd.DataFrame:
    """The table row by row: what `featurepool.feature_frame` computes faster for large
    lists, and the reference it is checked against."""
    frame = pd.DataFrame.from_records([feature_row(r) for r in rows], columns=list(COLUMNS))
    for col in INT_COLUMNS:
        frame[col] = frame[col].astype("Int64")
    return frame


PLAIN_PARTS = ("given", "father", "grandfather", "family", "mother")


def plain_table(rows: Iterable[ListRow]) -> pd.DataFrame:
    """The baseline's table: the name split on spaces by position (first word given,
    last family, then father and grandfather), lower-cased, nothing else; the other
    fields as written. What Splink users compare when they have no name handling."""
    records = []
    for r in rows:
        words_ = r.name.casefold().split()
        parts = {
            "given": words_[0] if words_ else None,
            "family": words_[-1] if len(words_) > 1 else None,
            "father": words_[1] if len(words_) > 2 else (r.father.casefold() or None),
            "grandfather": words_[2] if len(words_) > 3 else None,
            "mother": r.mother.casefold() or None,
        }
        records.append(
            {
                "unique_id": r.record_id,
                "source": r.source,
                **{f"{k}_raw": v for k, v in parts.items()},
                "sex": r.sex,
                "birth_year": r.birth_year,
                "death_day": r.death_day,
                "place_key": r.place.casefold() or None,
                "governorate": r.governorate.casefold() or None,
            }
        )
    frame = pd.DataFrame.from_records(records)
    for col in ("birth_year", "death_day"):
        frame[col] = frame[col].astype("Int64")
    return frame


def third_script(rows: Iterable[ListRow]) -> list[str]:
    """Record ids whose name is in neither Arabic nor Latin letters: they are compared
    only as written (no keys, no variant table), which the user should know."""
    return [r.record_id for r in rows if text_script(words(r.name)) == "other"]
