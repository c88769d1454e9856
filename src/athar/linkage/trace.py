"""Family tracing: who in the vault's lists could be the person a family is looking for.

A missing-person report names the person sought (a person record) and when and where
they were last seen. Only those are compared: the reporter's name, contact and
relationship are never read here, so they cannot reach the output, a log or a
temporary table. Candidates come from every other person record, ranked by the Splink
model's match probability, each with the fields that agreed, disagreed or were missing
on one side, and the name comparison's reasons in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from athar.errors import InputError
from athar.i18n import gettext
from athar.linkage import model
from athar.linkage.features import feature_table
from athar.linkage.lists import ListRow
from athar.linkage.names import N_, PART_LABELS, explain, similarity
from athar.linkage.vault import person_row, person_rows
from athar.records.service import Records

FIELD_LABELS: dict[str, str] = {
    **PART_LABELS,
    "sex": N_("sex"),
    "birth_year": N_("year of birth"),
    "death_day": N_("date"),
    "place": N_("place"),
}
_SOURCE = "source"
AGREE_BITS = 1.0  # a comparison adding at least this much evidence (log2 odds) agreed


@dataclass
class Candidate:
    record_id: str
    probability: float
    name: str
    agreed: list[str] = field(default_factory=list)
    close: list[str] = field(default_factory=list)
    disagreed: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "match_probability": round(self.probability, 4),
            "name": self.name,
            "agreed": self.agreed,
            "close": self.close,
            "disagreed": self.disagreed,
            "reasons": self.reasons,
        }


def _level(weight: float) -> str:
    """agree, close, disagree or missing, from the evidence (match weight, bits) one
    comparison added: a field missing on either side adds none."""
    if weight != weight or weight == 0:  # NaN or the null level
        return "missing"
    if weight >= AGREE_BITS:
        return "agree"
    return "close" if weight > 0 else "disagree"


@dataclass
class Sought:
    """What a trace compares: the person sought (with the report's last-seen date and
    place) and every other person record. Read from the store first, so the ranking,
    which trains a model for seconds, need not hold the store."""

    row: ListRow
    others: list[ListRow]


def trace(
    store: Records, report_id: str, lang: str = "en", limit: int = 20, at_least: float = 0.05
) -> list[Candidate]:
    return rank(gather(store, report_id), lang, limit, at_least)


def gather(store: Records, report_id: str) -> Sought:
    report = store.get(report_id)
    if report.type != "missing":
        raise InputError("{id} is not a missing-person report", id=report.id)
    sought_id = report.data.get("person")
    if not isinstance(sought_id, str) or not store.exists(sought_id, "person"):
        raise InputError("the report {id} names no person record", id=report.id)
    sought_data = store.get(sought_id).data
    last_seen = {
        "date": report.data.get("last_seen.date"),
        "place.name_ar": report.data.get("last_seen.place.name_ar"),
        "place.name_latin": report.data.get("last_seen.place.name_latin"),
        "place.admin_area": report.data.get("last_seen.place.admin_area"),
    }
    sought = person_row(sought_id, sought_data, last_seen)
    if not sought.name:
        raise InputError("the person sought has no name to compare")
    return Sought(sought, [r for r in person_rows(store) if r.record_id != sought_id])


def rank(
    sought_with: Sought, lang: str = "en", limit: int = 20, at_least: float = 0.05
) -> list[Candidate]:
    """Candidates for the person sought, most likely first (needs no store)."""
    sought, others = sought_with.row, sought_with.others
    sought_id = sought.record_id
    if not others:
        return []
    sought.source, rows = "sought", [sought, *others]
    link = model.linker(feature_table(rows), explain=True)
    model.train(link, len(rows))
    frame = link.inference.predict(threshold_match_probability=at_least).as_pandas_dataframe()
    frame = frame[(frame.unique_id_l == sought_id) | (frame.unique_id_r == sought_id)]
    frame = frame.sort_values("match_probability", ascending=False).head(limit)
    by_id = {r.record_id: r for r in others}
    weights = [
        c
        for c in frame.columns
        if c.startswith("mw_") and not c.startswith("mw_tf_") and c != f"mw_{_SOURCE}"
    ]
    out: list[Candidate] = []
    for rec in frame.to_dict("records"):
        other = rec["unique_id_r"] if rec["unique_id_l"] == sought_id else rec["unique_id_l"]
        row = by_id[other]
        cand = Candidate(other, float(rec["match_probability"]), row.name)
        for col in weights:
            comparison = col[len("mw_") :]
            label = gettext(FIELD_LABELS.get(comparison, comparison), lang)
            weight = float(rec[col]) + float(rec.get(f"mw_tf_adj_{comparison}", 0.0) or 0.0)
            level = _level(weight)
            if level == "agree":
                cand.agreed.append(label)
            elif level == "close":
                cand.close.append(label)
            elif level == "disagree":
                cand.disagreed.append(label)
        cand.reasons = explain(similarity(sought.name, row.name), lang)
        out.append(cand)
    return out
