"""Documented casualty figures per area and per month, and estimates read from
`athar estimate --json`.

Documented figures are sums of the incidents' minimum–maximum ranges: what the records
show, a floor, never a count of everyone killed. Estimates come from another tool run
by the user and are shown beside them, labelled as such, with their interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from athar.errors import InputError
from athar.publish.site.model import Casualties, Incident

MAX_ESTIMATES_BYTES = 5_000_000


@dataclass
class Row:
    key: str  # an area name or YYYY-MM; "" when unknown
    incidents: int
    killed: Casualties | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "incidents": self.incidents,
            "killed": self.killed.to_json() if self.killed else None,
        }


def _rows(pairs: list[tuple[str, Incident]]) -> list[Row]:
    grouped: dict[str, list[Incident]] = {}
    for key, incident in pairs:
        grouped.setdefault(key, []).append(incident)
    rows = []
    for key in sorted(grouped, key=lambda k: (k == "", k)):
        totals = [t for i in grouped[key] if (t := i.killed_total()) is not None]
        killed = (
            Casualties(sum(t.low for t in totals), sum(t.high for t in totals)) if totals else None
        )
        rows.append(Row(key, len(grouped[key]), killed))
    return rows


def by_area(incidents: list[Incident]) -> list[Row]:
    return _rows([(i.text.get("place.admin_area", ""), i) for i in incidents])


def by_month(incidents: list[Incident]) -> list[Row]:
    return _rows([(i.month() or "", i) for i in incidents])


@dataclass
class Estimate:
    stratum: str | None
    observed: int
    n: float | None
    low: float | None
    high: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "stratum": self.stratum,
            "observed": self.observed,
            "N": self.n,
            "ci": [self.low, self.high],
        }


@dataclass
class Estimates:
    method: str
    lists: list[str]
    stratify: str | None
    total: Estimate
    strata: list[Estimate]

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "lists": self.lists,
            "stratify": self.stratify,
            "total": self.total.to_json(),
            "strata": [s.to_json() for s in self.strata],
        }


def _bad(path: Path, reason: str) -> InputError:
    return InputError(
        "{path} is not the output of athar estimate --json: {reason}", path=str(path), reason=reason
    )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a number")
    if value < 0:
        raise ValueError("negative")
    return float(value)


def _one(body: Any, stratum: str | None) -> Estimate:
    if not isinstance(body, dict):
        raise ValueError("an estimate is not an object")
    observed = body.get("observed")
    if isinstance(observed, bool) or not isinstance(observed, int) or observed < 0:
        raise ValueError("observed")
    ci = body.get("ci")
    if not isinstance(ci, list) or len(ci) != 2:
        raise ValueError("ci")
    n, low, high = _number(body.get("N")), _number(ci[0]), _number(ci[1])
    if low is not None and high is not None and low > high:
        raise ValueError("ci")
    return Estimate(stratum, observed, n, low, high)


def load_estimates(path: Path) -> Estimates:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(
            "cannot read {path}: {reason}", path=str(path), reason=exc.strerror or ""
        ) from None
    if len(raw) > MAX_ESTIMATES_BYTES:
        raise _bad(path, "too large")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(path, "not JSON") from None
    if not isinstance(data, dict) or data.get("ok") is not True or "N" not in data:
        raise _bad(path, "no estimate in it")
    try:
        method = data.get("method")
        lists = data.get("lists")
        if not isinstance(method, str) or not isinstance(lists, list):
            raise ValueError("method")
        strata = []
        for entry in data.get("strata") or []:
            name = entry.get("stratum") if isinstance(entry, dict) else None
            if not isinstance(name, str):
                raise ValueError("stratum")
            strata.append(_one(entry, name))
        stratify = data.get("stratify")
        return Estimates(
            method,
            [str(x) for x in lists],
            stratify if isinstance(stratify, str) else None,
            _one(data, None),
            strata,
        )
    except ValueError as exc:
        raise _bad(path, f"bad value ({exc})") from None
