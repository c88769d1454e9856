"""Precision and recall of a linkage against the truth, pairwise and by cluster.

Pairwise: of the record pairs put in one cluster, how many are the same person
(precision), and of the pairs that are the same person, how many were put together
(recall); counted from the cluster × person contingency table, never by listing pairs,
so a million records cost a few seconds. By cluster: a predicted cluster is right when it
holds exactly one true person's records, all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from athar.errors import InputError
from athar.records.csvimport import decode, read_file, read_rows


@dataclass(frozen=True)
class Scores:
    records: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    cluster_precision: float
    cluster_recall: float
    cluster_f1: float
    true_pairs: int
    predicted_pairs: int
    people: int
    clusters: int

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def _c2(n: int) -> int:
    return n * (n - 1) // 2


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(predicted: Mapping[str, str], truth: Mapping[str, str]) -> Scores:
    """*predicted* and *truth* map record id → cluster / person id; records missing
    from the prediction count as unlinked (their own cluster)."""
    missing_truth = [r for r in predicted if r not in truth]
    if missing_truth:
        raise InputError(
            "{n} records of the clusters are not in the truth file, e.g. {id}",
            n=len(missing_truth),
            id=missing_truth[0],
        )
    pred = {rid: predicted.get(rid, f"\0{rid}") for rid in truth}
    cell = Counter((pred[r], truth[r]) for r in truth)
    pred_sizes = Counter(pred.values())
    true_sizes = Counter(truth.values())
    tp = sum(_c2(n) for n in cell.values())
    pp = sum(_c2(n) for n in pred_sizes.values())
    tt = sum(_c2(n) for n in true_sizes.values())
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    exact = sum(1 for (c, t), n in cell.items() if n == pred_sizes[c] == true_sizes[t])
    cp, cr = exact / len(pred_sizes), exact / len(true_sizes)
    return Scores(
        len(truth),
        round(precision, 4),
        round(recall, 4),
        round(_f1(precision, recall), 4),
        round(cp, 4),
        round(cr, 4),
        round(_f1(cp, cr), 4),
        tt,
        pp,
        len(true_sizes),
        len(pred_sizes),
    )


def read_pairs_file(path: Path, key: str, value: tuple[str, ...]) -> dict[str, str]:
    """Two columns of a CSV (record id → the first of *value* present), checked."""
    text, _ = decode(read_file(path), None)
    header, rows = read_rows(text)
    header = [h.strip().lower() for h in header]
    column = next((v for v in value if v in header), None)
    if key not in header or column is None:
        raise InputError(
            "{path} needs the columns {a} and {b}", path=path.name, a=key, b=" or ".join(value)
        )
    ki, vi = header.index(key), header.index(column)
    out: dict[str, str] = {}
    for line, cells in rows:
        if len(cells) <= max(ki, vi) or not cells[ki].strip() or not cells[vi].strip():
            raise InputError("{path}:{line}: a value is missing", path=path.name, line=line)
        rid = cells[ki].strip()
        if rid in out:
            raise InputError(
                "{path}:{line}: record {id} appears twice", path=path.name, line=line, id=rid
            )
        out[rid] = cells[vi].strip()
    return out


def evaluate_files(clusters: Path, truth: Path) -> Scores:
    return score(
        read_pairs_file(clusters, "record_id", ("cluster_id",)),
        read_pairs_file(truth, "record_id", ("person_id", "cluster_id", "truth")),
    )
