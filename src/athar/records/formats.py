"""Canonical values written back as the text a person (or a CSV import) would type.

Every form here reads back through athar.records.values to the same value, so an
exported CSV imports again unchanged.
"""

from __future__ import annotations

from typing import Any

from athar.records import schema
from athar.records.schema import Field


def date_text(value: dict[str, Any]) -> str:
    start, end, precision = value["start"], value["end"], value["precision"]
    if precision == "year":
        body = start[:4]
    elif precision == "month":
        body = start[:7]
    elif precision == "day":
        body = start
    else:
        body = f"{start}/{end}"
    return f"~{body}" if value.get("approximate") else body


def value_text(spec: Field, value: Any) -> str:
    if value is None:
        return ""
    kind = spec.kind
    if kind == schema.DATE:
        return date_text(value)
    if kind == schema.RANGE:
        low, high = value["min"], value["max"]
        return str(low) if low == high else f"{low}-{high}"
    if kind == schema.COORDS:
        parts = [repr(value["lat"]), repr(value["lon"])]
        if "precision_m" in value:
            parts.append(str(value["precision_m"]))
        return ",".join(parts)
    if kind == schema.TERMS:
        return ",".join(value)
    if kind == schema.BOOL:
        return "yes" if value else "no"
    return str(value)
