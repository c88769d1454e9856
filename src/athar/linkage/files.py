"""The files of standalone linkage: clusters out, review queue out, decisions in.

Written whole to a temporary file beside the target and renamed into place, so that a
failure midway leaves any earlier file exactly as it was. A review queue can be filled
in (the `decision` column: match or non-match) and given back as `--decisions`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from athar.errors import InputError
from athar.linkage.clusters import Clustering, Decision
from athar.linkage.service import ReviewPair
from athar.records.csvimport import decode, read_file, read_rows

_MATCH = {"match", "same", "yes", "y", "1", "true", "نعم", "مطابق", "تطابق"}
_NON_MATCH = {
    "non-match",
    "non_match",
    "nonmatch",
    "no",
    "n",
    "0",
    "false",
    "different",
    "لا",
    "غير مطابق",
}


@contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_clusters(path: Path, clustering: Clustering, order: Iterable[str]) -> None:
    with atomic_text(path) as f:
        w = csv.writer(f)
        w.writerow(("record_id", "cluster_id", "match_probability"))
        for rid in order:
            p = clustering.probability.get(rid)
            w.writerow((rid, clustering.cluster_of[rid], "" if p is None else f"{p:.4f}"))


def write_review(path: Path, review: Iterable[ReviewPair], names: Mapping[str, str]) -> int:
    n = 0
    with atomic_text(path) as f:
        w = csv.writer(f)
        w.writerow(("left", "right", "match_probability", "left_name", "right_name", "decision"))
        for pair in review:
            w.writerow(
                (
                    pair.left,
                    pair.right,
                    f"{pair.probability:.4f}",
                    names.get(pair.left, ""),
                    names.get(pair.right, ""),
                    "",
                )
            )
            n += 1
    return n


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_text(path) as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")


def parse_decision(text: str) -> bool | None:
    """match → True, non-match → False, empty → None (not decided yet)."""
    word = text.strip().casefold()
    if not word:
        return None
    if word in _MATCH:
        return True
    if word in _NON_MATCH:
        return False
    raise ValueError(text)


def read_decisions(path: Path) -> list[Decision]:
    """A decisions file: columns left, right, decision (a filled-in review queue will
    do). Rows without a decision are skipped; two rows deciding one pair differently
    are refused, since one of them must be a mistake."""
    text, _ = decode(read_file(path), None)
    header, rows = read_rows(text)
    header = [h.strip().lower() for h in header]
    if not {"left", "right", "decision"} <= set(header):
        raise InputError("{path} needs the columns left, right and decision", path=path.name)
    li, ri, di = header.index("left"), header.index("right"), header.index("decision")
    out: dict[frozenset[str], Decision] = {}
    for line, cells in rows:
        cells = cells + [""] * (len(header) - len(cells))
        try:
            match = parse_decision(cells[di])
        except ValueError:
            raise InputError(
                "{path}:{line}: decision must be match or non-match, not {value}",
                path=path.name,
                line=line,
                value=cells[di],
            ) from None
        if match is None:
            continue
        left, right = cells[li].strip(), cells[ri].strip()
        if not left or not right or left == right:
            raise InputError(
                "{path}:{line}: two different record ids are needed", path=path.name, line=line
            )
        key = frozenset((left, right))
        if key in out and out[key].match != match:
            raise InputError(
                "{path}:{line}: the pair {a} / {b} is decided both ways",
                path=path.name,
                line=line,
                a=left,
                b=right,
            )
        out[key] = Decision(left, right, match)
    return list(out.values())
