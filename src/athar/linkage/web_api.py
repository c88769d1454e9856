"""What the web's review queue needs beyond `link_records`: for each pair in the queue,
which comparisons agreed and which disagreed, by the run's own trained model.

`link_records` returns only the probability of each pair (a run over a large vault must
not keep every comparison column). A reviewer needs the reasons, so after a run the
pairs in the queue are scored again with the saved model in Splink's explain mode, over
only the records those pairs name: the same comparisons and m/u values, so the same
levels. Term-frequency adjustments are left out of the levels shown (they depend on the
whole list, not on the pair), so a level here says how the field compared, and the
probability shown stays the run's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from athar.linkage import model
from athar.linkage.features import feature_table
from athar.linkage.lists import ListRow
from athar.linkage.service import ReviewPair
from athar.linkage.trace import AGREE_BITS, FIELD_LABELS

# The comparisons a reviewer is shown, in reading order (the list of origin is not a
# fact about the person).
SHOWN: tuple[str, ...] = (
    *("given", "father", "grandfather", "family", "mother"),
    *("sex", "birth_year", "death_day", "place"),
)
LEVELS = ("agree", "close", "disagree", "missing")


@dataclass(frozen=True)
class FieldLevel:
    comparison: str  # given, father, …, place
    label: str  # the English msgid, rendered by the face
    level: str  # one of LEVELS
    bits: float | None  # the evidence this comparison added (log2 of the odds), if any

    def to_json(self) -> dict[str, Any]:
        return {
            "comparison": self.comparison,
            "level": self.level,
            "bits": None if self.bits is None else round(self.bits, 2),
        }


@dataclass
class PairExplanation:
    fields: list[FieldLevel] = field(default_factory=list)

    def of(self, level: str) -> list[FieldLevel]:
        return [f for f in self.fields if f.level == level]


def level_of(bits: float | None) -> str:
    """agree (≥ AGREE_BITS), close (some evidence for), disagree (evidence against) or
    missing (a field empty on either side adds no evidence)."""
    if bits is None or math.isnan(bits) or bits == 0:
        return "missing"
    if bits >= AGREE_BITS:
        return "agree"
    return "close" if bits > 0 else "disagree"


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def explain_pairs(
    rows: Sequence[ListRow], pairs: Iterable[ReviewPair], splink_model: dict[str, Any]
) -> dict[tuple[str, str], PairExplanation]:
    """Per-comparison levels for *pairs*, from the model a run saved (its
    `parameters["splink_model"]`). Pairs the blocking rules do not generate among these
    records (none should: blocking looks at the two records only) get no entry."""
    wanted = {pair_key(p.left, p.right) for p in pairs}
    if not wanted or not splink_model:
        return {}
    needed = {rid for pair in wanted for rid in pair}
    subset = [r for r in rows if r.record_id in needed]
    if len(subset) < 2:
        return {}
    link = model.linker(feature_table(subset), explain=True, trained=splink_model)
    frame = link.inference.predict(threshold_match_probability=0.0).as_pandas_dataframe()
    out: dict[tuple[str, str], PairExplanation] = {}
    for rec in frame.to_dict("records"):
        key = pair_key(str(rec["unique_id_l"]), str(rec["unique_id_r"]))
        if key not in wanted:
            continue
        found = PairExplanation()
        for comparison in SHOWN:
            value = rec.get(f"mw_{comparison}")
            bits = float(value) if _number(value) else None
            level = level_of(bits)
            label = FIELD_LABELS.get(comparison, comparison)
            found.fields.append(
                FieldLevel(comparison, label, level, None if level == "missing" else bits)
            )
        out[key] = found
    return out


def _number(value: Any) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False
